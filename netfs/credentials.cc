#include "netfs/credentials.h"

#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cachefs {
namespace {

long SetThreadGroups(const std::vector<gid_t>& groups) {
  return syscall(SYS_setgroups, groups.size(), groups.data());
}

// The daemon's own supplementary groups, restored after each caller's.
const std::vector<gid_t>& DaemonGroups() {
  static const std::vector<gid_t> groups = [] {
    std::vector<gid_t> g(static_cast<size_t>(getgroups(0, nullptr) + 1));
    int n = getgroups(static_cast<int>(g.size()), g.data());
    g.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return g;
  }();
  return groups;
}

}  // namespace

const Caller& Caller::Daemon() {
  static const Caller daemon = [] {
    Caller c;
    c.uid = geteuid();
    c.gid = getegid();
    c.groups = DaemonGroups();
    return c;
  }();
  return daemon;
}

bool CanSwitchCredentials() {
  static const bool root = geteuid() == 0;
  return root;
}

ScopedCredentials::ScopedCredentials(const Caller& caller) {
  if (!CanSwitchCredentials() || (caller.uid == 0 && caller.gid == 0)) return;
  active_ = true;
  DaemonGroups();  // remembered before the first switch
  SetThreadGroups(caller.groups);
  setfsgid(caller.gid);
  setfsuid(caller.uid);
}

ScopedCredentials::~ScopedCredentials() {
  if (!active_) return;
  setfsuid(geteuid());
  setfsgid(getegid());
  SetThreadGroups(DaemonGroups());
}

}  // namespace cachefs
