// Countdown: waits for a known number of events, like absl::BlockingCounter,
// but built on absl::Mutex alone. Debian's abseil is not built for
// ThreadSanitizer; the project makes absl::Mutex visible to it (see
// tsan_absl_sync.cc) but not BlockingCounter's private atomics, so
// work done before a Done() would look racy to TSan.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_IO_COUNTDOWN_H_
#define CACHEFS_IO_COUNTDOWN_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace cachefs {

class Countdown {
 public:
  explicit Countdown(int count) : remaining_(count) {}
  Countdown(const Countdown&) = delete;
  Countdown& operator=(const Countdown&) = delete;

  void Done() {
    absl::MutexLock lock(&mu_);
    --remaining_;
  }
  // Returns once Done() was called `count` times.
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Countdown::Zero));
  }

 private:
  bool Zero() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return remaining_ <= 0;
  }

  absl::Mutex mu_;
  int remaining_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_IO_COUNTDOWN_H_
