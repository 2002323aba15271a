// Dispatcher: runs cookie instantiation, teardown and object withdrawal
// jobs, each in one go (the fscache rewrite's replacement for the object
// state machine).
//
// How it works: a small fixed pool of threads. Dispatch() hands a job to
// the pool only when a thread is idle and not already promised to an
// earlier job; otherwise the calling thread runs the job itself, so a burst
// of acquires never queues behind slow disk work. Both paths are counted.
//
// Thread safety: safe for concurrent use. Jobs run outside the lock.

#ifndef CACHEFS_COOKIE_DISPATCHER_H_
#define CACHEFS_COOKIE_DISPATCHER_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "cookie/stats.h"

namespace cachefs {

class Dispatcher {
 public:
  using Job = absl::AnyInvocable<void() &&>;

  // `stats` may be null; it must outlive the dispatcher.
  Dispatcher(int threads, CacheStats* stats);
  // Runs every queued job, then joins the threads.
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Runs `job` on an idle pool thread, or inline when none is idle.
  void Dispatch(Job job);
  // Queues `job` for the pool even if no thread is idle: for background
  // work the caller must not wait for (with zero threads it runs inline).
  void Enqueue(Job job);
  // Returns once no job is queued or running on the pool.
  void Drain();

 private:
  void WorkerLoop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !jobs_.empty() || stopping_;
  }
  bool Quiet() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return jobs_.empty() && running_ == 0;
  }

  CacheStats* const stats_;
  absl::Mutex mu_;
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_DISPATCHER_H_
