// HangGuard: bounds calls that may hang. A call into an origin mounted
// through FUSE (SSHFS) or a kernel NFS client blocks in the kernel for as
// long as the server is stopped, and cannot be cancelled; so the call runs
// on a thread of its own and the caller stops waiting after the timeout,
// with ETIMEDOUT. The thread finishes whenever the server answers, and its
// result is dropped. At most kMaxStuck calls may be left behind so: past
// that, calls fail at once (the origin is down, and the front end stops
// asking it).
//
// Thread safety: safe for concurrent use. The calls may outlive the guard.

#ifndef CACHEFS_NETFS_HANG_GUARD_H_
#define CACHEFS_NETFS_HANG_GUARD_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "io/errno_status.h"

namespace cachefs {

class HangGuard {
 public:
  static constexpr int kMaxStuck = 16;

  // With `enabled` false, calls run on the caller's thread, unbounded (an
  // origin that cannot hang, or bounds its calls itself).
  HangGuard(absl::Duration timeout, bool enabled)
      : timeout_(timeout), enabled_(enabled) {}

  bool enabled() const { return enabled_; }
  // Calls given up on whose threads have not returned yet.
  int stuck() const { return stuck_->load(); }

  // Runs `fn`, waiting at most the timeout for it. `what` names the call
  // in the error.
  template <typename T>
  absl::StatusOr<T> Run(const std::string& what,
                        std::function<absl::StatusOr<T>()> fn) {
    if (!enabled_) return fn();
    if (stuck_->load() >= kMaxStuck) {
      return ErrnoToStatus(ETIMEDOUT, what + ": the origin has " +
                                          std::to_string(kMaxStuck) +
                                          " calls that did not return");
    }
    // The thread and the caller race to settle the call: finished (the
    // caller takes the result) or abandoned (the thread takes itself off
    // the stuck count when it returns).
    enum : int { kRunning, kFinished, kAbandoned };
    struct Call {
      absl::Notification done;
      absl::StatusOr<T> result = absl::UnknownError("not run");
      std::atomic<int> state{kRunning};
    };
    auto call = std::make_shared<Call>();
    std::thread([call, stuck = stuck_, fn = std::move(fn)] {
      call->result = fn();
      int running = kRunning;
      if (!call->state.compare_exchange_strong(running, kFinished)) {
        stuck->fetch_sub(1);
      }
      call->done.Notify();
    }).detach();
    if (!call->done.WaitForNotificationWithTimeout(timeout_)) {
      // Counted first, so the thread's taking off never goes below zero.
      stuck_->fetch_add(1);
      int running = kRunning;
      if (call->state.compare_exchange_strong(running, kAbandoned)) {
        return ErrnoToStatus(ETIMEDOUT, what + ": no answer within " +
                                            absl::FormatDuration(timeout_) +
                                            " (-o origin_timeout)");
      }
      stuck_->fetch_sub(1);  // it finished just now after all
      call->done.WaitForNotification();
    }
    return std::move(call->result);
  }

 private:
  const absl::Duration timeout_;
  const bool enabled_;
  const std::shared_ptr<std::atomic<int>> stuck_ =
      std::make_shared<std::atomic<int>>(0);
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_HANG_GUARD_H_
