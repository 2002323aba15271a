#include "cachefs/request_caller.h"

#include <utility>

#include "netfs/credentials.h"

namespace cachefs {
namespace {

thread_local const Caller* current = nullptr;

}  // namespace

const Caller& RequestCaller() {
  return current != nullptr ? *current : Caller::Daemon();
}

bool ActingForOtherUser() {
  if (current == nullptr || !CanSwitchCredentials()) return false;
  const Caller& daemon = Caller::Daemon();
  return current->uid != daemon.uid || current->gid != daemon.gid;
}

ScopedRequestCaller::ScopedRequestCaller(Caller caller)
    : caller_(std::move(caller)), outer_(current) {
  current = &caller_;
}

ScopedRequestCaller::~ScopedRequestCaller() { current = outer_; }

}  // namespace cachefs
