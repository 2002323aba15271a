#include "cookie/dispatcher.h"

#include <utility>

namespace cachefs {

Dispatcher::Dispatcher(int threads, CacheStats* stats) : stats_(stats) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
}

Dispatcher::~Dispatcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  // Threads leave only once the queue is empty, but a pool of zero threads
  // never started any: run what is left here.
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      if (jobs_.empty()) break;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::move(job)();
  }
}

void Dispatcher::Dispatch(Job job) {
  bool pooled = false;
  {
    absl::MutexLock lock(&mu_);
    // Each queued job has claimed one idle thread already.
    if (!stopping_ && idle_ > static_cast<int>(jobs_.size())) {
      jobs_.push_back(std::move(job));
      pooled = true;
    }
  }
  if (pooled) {
    if (stats_ != nullptr) Bump(stats_->dispatch_pooled);
    return;
  }
  if (stats_ != nullptr) Bump(stats_->dispatch_inline);
  std::move(job)();
}

void Dispatcher::Enqueue(Job job) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && !threads_.empty()) {
      jobs_.push_back(std::move(job));
      if (stats_ != nullptr) Bump(stats_->dispatch_pooled);
      return;
    }
  }
  if (stats_ != nullptr) Bump(stats_->dispatch_inline);
  std::move(job)();
}

void Dispatcher::Drain() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &Dispatcher::Quiet));
}

void Dispatcher::WorkerLoop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    ++idle_;
    mu_.Await(absl::Condition(this, &Dispatcher::HasWork));
    --idle_;
    if (jobs_.empty()) return;  // stopping, nothing left
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    mu_.Unlock();
    std::move(job)();
    mu_.Lock();
    --running_;
  }
}

}  // namespace cachefs
