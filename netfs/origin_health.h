// OriginHealth: whether the origin answers, decided from what its calls
// return. An error that says the server is unreachable (ENOTCONN,
// ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH, ...) or a call that outlasts the
// origin timeout marks it down; while it is down a probe asks it a cheap
// question in the background and marks it up again once it answers. The
// front end serves what the cache holds while the origin is down and asks
// the origin nothing else, so a hung server costs one timeout, not one per
// request.
//
// Each transition is logged once and counted (origin_state_changes); the
// state and since when are shown by `cachefs-ctl status`.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_NETFS_ORIGIN_HEALTH_H_
#define CACHEFS_NETFS_ORIGIN_HEALTH_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cookie/stats.h"

namespace cachefs {

class OriginHealth {
 public:
  struct Options {
    // How long one origin call may take before the origin counts as down.
    absl::Duration timeout = absl::Seconds(30);
    // How often a down origin is probed.
    absl::Duration probe_interval = absl::Seconds(1);
    // A name for the logs ("origin /srv/export").
    std::string name = "origin";
  };
  // Asks the origin one cheap question (bounded by the timeout); OK once
  // it answers.
  using Probe = std::function<absl::Status()>;

  // `stats` is borrowed. The probe runs on a thread of the health's own,
  // only while the origin is down.
  OriginHealth(Options options, Probe probe, CacheStats* stats);
  ~OriginHealth();
  OriginHealth(const OriginHealth&) = delete;
  OriginHealth& operator=(const OriginHealth&) = delete;

  bool up() const;
  // When the state last changed (the mount's start if never).
  absl::Time since() const;
  // "up since ..." or "down since ... (why)".
  std::string Describe() const;
  const Options& options() const { return options_; }

  // Takes note of an origin call's result: an unreachable origin goes
  // down, and any answer brings a down one back up. Returns `status`.
  const absl::Status& Note(const absl::Status& status);
  // A call outlasted the timeout.
  void NoteTimeout(const std::string& what);
  // Marks the origin down (the probe then watches for it).
  void MarkDown(const std::string& why);

 private:
  void MarkUp();
  void ProbeLoop();

  const Options options_;
  const Probe probe_;
  CacheStats* const stats_;
  mutable absl::Mutex mu_;
  bool up_ ABSL_GUARDED_BY(mu_) = true;
  // up_, for the many readers that need nothing else (every read asks).
  std::atomic<bool> up_now_{true};
  absl::Time since_ ABSL_GUARDED_BY(mu_);
  std::string why_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread prober_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_ORIGIN_HEALTH_H_
