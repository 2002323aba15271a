#include "netfs/origin_health.h"

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "io/errno_status.h"
#include "io/log.h"
#include "netfs/origin.h"

namespace cachefs {

OriginHealth::OriginHealth(Options options, Probe probe, CacheStats* stats)
    : options_(std::move(options)), probe_(std::move(probe)), stats_(stats) {
  absl::MutexLock lock(&mu_);
  since_ = absl::Now();
  prober_ = std::thread([this] { ProbeLoop(); });
}

OriginHealth::~OriginHealth() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  prober_.join();
}

bool OriginHealth::up() const {
  return up_now_.load(std::memory_order_acquire);
}

absl::Time OriginHealth::since() const {
  absl::MutexLock lock(&mu_);
  return since_;
}

std::string OriginHealth::Describe() const {
  absl::MutexLock lock(&mu_);
  const std::string when =
      absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", since_, absl::LocalTimeZone());
  if (up_) return absl::StrCat("up since ", when);
  return absl::StrCat("down since ", when, " (", why_, ")");
}

const absl::Status& OriginHealth::Note(const absl::Status& status) {
  if (SaysUnreachable(status)) {
    MarkDown(std::string(status.message()));
  } else {
    MarkUp();  // any answer at all, an error too, is the origin's
  }
  return status;
}

void OriginHealth::NoteTimeout(const std::string& what) {
  Bump(stats_->origin_timeouts);
  MarkDown(what);
}

void OriginHealth::MarkDown(const std::string& why) {
  {
    absl::MutexLock lock(&mu_);
    if (!up_) return;
    up_ = false;
    up_now_.store(false, std::memory_order_release);
    since_ = absl::Now();
    why_ = why;
  }
  Bump(stats_->origin_state_changes);
  LogParts(LogLevel::kWarning, options_.name, " is down (", why,
           "): serving what the cache holds until it answers again");
}

void OriginHealth::MarkUp() {
  if (up_now_.load(std::memory_order_acquire)) return;  // the common case
  absl::Duration down_for;
  {
    absl::MutexLock lock(&mu_);
    if (up_) return;
    up_ = true;
    up_now_.store(true, std::memory_order_release);
    down_for = absl::Now() - since_;
    since_ = absl::Now();
    why_.clear();
  }
  Bump(stats_->origin_state_changes);
  LogParts(LogLevel::kNotice, options_.name, " answers again after ",
           absl::FormatDuration(absl::Trunc(down_for, absl::Milliseconds(1))));
}

void OriginHealth::ProbeLoop() {
  auto down_or_stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !up_ || stopping_;
  };
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&down_or_stopping));
      if (stopping_) return;
    }
    if (probe_().ok()) {
      MarkUp();
      continue;
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping),
                             options_.probe_interval)) {
      return;
    }
  }
}

}  // namespace cachefs
