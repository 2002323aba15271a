#include "io/fault_queue.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace cachefs {
namespace {

class FaultQueue final : public IoQueue {
 public:
  FaultQueue(FaultInjectionEnv* env, std::unique_ptr<IoQueue> inner)
      : env_(env), inner_(std::move(inner)) {}

  unsigned depth() const override { return inner_->depth(); }
  absl::Status Prepare(const IoOp& op) override;
  absl::StatusOr<int> Submit() override;
  absl::StatusOr<int> Reap(
      bool wait,
      absl::FunctionRef<void(uint64_t user_data, int64_t result)> fn) override;
  absl::Status Wake() override { return inner_->Wake(); }

 private:
  struct Completion {
    uint64_t user_data;
    int64_t result;
  };
  // What Reap needs to know about an op in the inner queue.
  struct InFlight {
    bool write = false;
    int fd = -1;
    uint64_t offset = 0;
    std::vector<iovec> iov;  // the truncated copy for a short write
  };

  int DeliverFaults(absl::FunctionRef<void(uint64_t, int64_t)> fn);

  FaultInjectionEnv* const env_;
  const std::unique_ptr<IoQueue> inner_;
  std::vector<Completion> prepared_faults_;  // owner-serialized, like Prepare

  absl::Mutex mu_;
  std::vector<Completion> faults_ ABSL_GUARDED_BY(mu_);
  int own_wakes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);
};

absl::Status FaultQueue::Prepare(const IoOp& op) {
  const bool write = op.kind == IoOp::Kind::kWrite;
  if (int err = env_->TakeFault(write ? FaultInjectionEnv::kDataWrite
                                      : FaultInjectionEnv::kDataRead)) {
    prepared_faults_.push_back({op.user_data, -int64_t{err}});
    return absl::OkStatus();
  }
  IoOp forwarded = op;
  InFlight entry{write, op.fd, op.offset, {}};
  if (write && env_->short_writes()) {
    size_t total = 0;
    for (int i = 0; i < op.iovcnt; ++i) total += op.iov[i].iov_len;
    size_t left = ShortWriteLength(total);
    for (int i = 0; i < op.iovcnt && left > 0; ++i) {
      const size_t take = std::min(left, op.iov[i].iov_len);
      entry.iov.push_back({op.iov[i].iov_base, take});
      left -= take;
    }
    // The vector's buffer does not move when the entry is moved into the
    // map, so the pointer stays valid until the op completes.
    forwarded.iov = entry.iov.data();
    forwarded.iovcnt = static_cast<int>(entry.iov.size());
  }
  {
    absl::MutexLock lock(&mu_);
    in_flight_[op.user_data] = std::move(entry);
  }
  absl::Status s = inner_->Prepare(forwarded);
  if (!s.ok()) {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(op.user_data);
  }
  return s;
}

absl::StatusOr<int> FaultQueue::Submit() {
  absl::StatusOr<int> n = inner_->Submit();
  if (!n.ok() || prepared_faults_.empty()) return n;
  const int faults = static_cast<int>(prepared_faults_.size());
  {
    absl::MutexLock lock(&mu_);
    faults_.insert(faults_.end(), prepared_faults_.begin(),
                   prepared_faults_.end());
    ++own_wakes_;
  }
  prepared_faults_.clear();
  // Makes a Reap blocked in the inner queue come back for the faults.
  absl::Status woken = inner_->Wake();
  if (!woken.ok()) return woken;
  return *n + faults;
}

int FaultQueue::DeliverFaults(absl::FunctionRef<void(uint64_t, int64_t)> fn) {
  std::vector<Completion> faults;
  {
    absl::MutexLock lock(&mu_);
    faults.swap(faults_);
  }
  for (const Completion& c : faults) fn(c.user_data, c.result);
  return static_cast<int>(faults.size());
}

absl::StatusOr<int> FaultQueue::Reap(
    bool wait, absl::FunctionRef<void(uint64_t, int64_t)> fn) {
  int n = DeliverFaults(fn);
  for (;;) {
    absl::StatusOr<int> inner = inner_->Reap(
        wait && n == 0, [&](uint64_t user_data, int64_t result) {
          InFlight entry;
          {
            absl::MutexLock lock(&mu_);
            if (user_data == kWakeUserData) {
              if (own_wakes_ > 0) {
                --own_wakes_;
                return;
              }
            } else if (auto it = in_flight_.find(user_data);
                       it != in_flight_.end()) {
              entry = std::move(it->second);
              in_flight_.erase(it);
            }
          }
          if (entry.write && result > 0) {
            env_->RecordUnsynced(entry.fd, entry.offset, result);
          }
          fn(user_data, result);
          ++n;
        });
    if (!inner.ok()) return inner.status();
    n += DeliverFaults(fn);
    // Only our own wakes came back, for faults an earlier Reap already
    // delivered: wait again rather than return nothing from a waiting Reap.
    if (n > 0 || !wait) return n;
  }
}

}  // namespace

std::unique_ptr<IoQueue> NewFaultQueue(FaultInjectionEnv* env,
                                       std::unique_ptr<IoQueue> inner) {
  return std::make_unique<FaultQueue>(env, std::move(inner));
}

}  // namespace cachefs
