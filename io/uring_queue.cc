#include "io/uring_queue.h"

#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

// Transient io_uring_enter failures (the kernel is short of memory, or the
// completion ring is backed up) are retried this many times before the
// error is reported.
constexpr int kMaxSubmitRetries = 1000;

class UringQueue final : public IoQueue {
 public:
  static absl::StatusOr<std::unique_ptr<IoQueue>> Create(unsigned depth);
  // A ring whose setup failed holds no descriptor: exiting it would close
  // whatever descriptor 0 happens to be.
  ~UringQueue() override {
    if (initialized_) io_uring_queue_exit(&ring_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  unsigned depth() const override { return depth_; }
  absl::Status Prepare(const IoOp& op) override;
  absl::StatusOr<int> Submit() override;
  absl::StatusOr<int> Reap(
      bool wait,
      absl::FunctionRef<void(uint64_t user_data, int64_t result)> fn) override;
  absl::Status Wake() override;

 private:
  explicit UringQueue(unsigned depth) : depth_(depth) {}

  const unsigned depth_;
  // Not guarded by a lock: the IoQueue contract has the owner serialize the
  // submission side and one thread reap, and liburing keeps the two sides
  // independent (reaping never touches the submission ring).
  io_uring ring_;
  bool initialized_ = false;
  // Wakes go around the ring: a NOP would have to be submitted, and the
  // io_uring_enter that submits it submits every op prepared so far too,
  // tying them to the waking thread (see IoQueue::Wake).
  int wake_fd_ = -1;                  // an eventfd the reaper polls
  std::atomic<uint64_t> wakes_{0};    // Wake calls not yet reported
};

absl::StatusOr<std::unique_ptr<IoQueue>> UringQueue::Create(unsigned depth) {
  if (depth == 0) depth = 1;
  std::unique_ptr<UringQueue> q(new UringQueue(depth));
  io_uring_params params = {};
  // Room for `depth` ops and one to spare. The completion ring is twice the
  // submission ring, so it cannot overflow while at most `depth` ops are
  // outstanding. SUBMIT_ALL keeps one bad SQE from stranding the rest of a
  // batch. SINGLE_ISSUER does not fit a queue whose owner submits from
  // more than one thread over its life.
  params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP;
  int r = io_uring_queue_init_params(depth + 1, &q->ring_, &params);
  if (r == -EINVAL) {
    // Kernels before 5.18 do not know SUBMIT_ALL.
    params = {};
    params.flags = IORING_SETUP_CLAMP;
    r = io_uring_queue_init_params(depth + 1, &q->ring_, &params);
  }
  if (r < 0) {
    return ErrnoToStatus(-r, absl::StrCat("io_uring_queue_init(", depth + 1,
                                          " entries)"));
  }
  // CLAMP caps the rings quietly; callers rely on room for `depth` ops.
  if (params.sq_entries < depth) {
    io_uring_queue_exit(&q->ring_);
    return absl::ResourceExhaustedError(
        absl::StrCat("io_uring_queue_init: asked for ", depth + 1,
                     " entries, the kernel gave ", params.sq_entries));
  }
  q->initialized_ = true;
  q->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (q->wake_fd_ < 0) return ErrnoToStatus(errno, "eventfd for io_uring wakes");
  return std::unique_ptr<IoQueue>(std::move(q));
}

absl::Status UringQueue::Prepare(const IoOp& op) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    return absl::ResourceExhaustedError("io_uring submission queue is full");
  }
  if (op.kind == IoOp::Kind::kRead) {
    io_uring_prep_readv(sqe, op.fd, op.iov, op.iovcnt, op.offset);
  } else {
    io_uring_prep_writev(sqe, op.fd, op.iov, op.iovcnt, op.offset);
  }
  io_uring_sqe_set_data64(sqe, op.user_data);
  return absl::OkStatus();
}

absl::StatusOr<int> UringQueue::Submit() {
  int total = 0;
  int retries = 0;
  while (io_uring_sq_ready(&ring_) > 0) {
    int r = io_uring_submit(&ring_);
    if (r >= 0) {
      total += r;
      continue;
    }
    if (r == -EINTR) continue;
    if ((r == -EAGAIN || r == -EBUSY) && ++retries < kMaxSubmitRetries) {
      sched_yield();
      continue;
    }
    return ErrnoToStatus(-r, "io_uring_submit");
  }
  return total;
}

absl::StatusOr<int> UringQueue::Reap(
    bool wait, absl::FunctionRef<void(uint64_t, int64_t)> fn) {
  for (;;) {
    unsigned head;
    io_uring_cqe* cqe;
    unsigned n = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      fn(io_uring_cqe_get_data64(cqe), cqe->res);
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
    for (uint64_t w = wakes_.exchange(0); w > 0; --w) {
      fn(kWakeUserData, 0);
      ++n;
    }
    if (n > 0 || !wait) return static_cast<int>(n);
    // Completions that did not fit the ring wait in the kernel until asked
    // for; the ring polls readable meanwhile.
    if (io_uring_cq_has_overflow(&ring_)) {
      int r = io_uring_get_events(&ring_);
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        return ErrnoToStatus(-r, "io_uring_get_events");
      }
      continue;
    }
    // Nothing yet: sleep until the ring has completions or a wake comes.
    // A Wake counts before it writes, so a wake seen here is counted.
    pollfd fds[2] = {{ring_.ring_fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "poll of an io_uring for completions");
    }
    if (fds[1].revents & POLLIN) {
      uint64_t count;
      // Resets the eventfd; EAGAIN only if another read took it first.
      (void)!read(wake_fd_, &count, sizeof(count));
    }
  }
}

absl::Status UringQueue::Wake() {
  wakes_.fetch_add(1, std::memory_order_acq_rel);
  const uint64_t one = 1;
  while (write(wake_fd_, &one, sizeof(one)) < 0) {
    // EAGAIN only when the counter is near overflow: the reaper will wake
    // anyway.
    if (errno == EAGAIN) break;
    if (errno != EINTR) return ErrnoToStatus(errno, "waking an io_uring reaper");
  }
  return absl::OkStatus();
}

// The fallback queue. The owner's serialization covers prepared_; the
// completions cross from the submitting thread to the reaping thread under
// mu_.
class SyncIoQueue final : public IoQueue {
 public:
  explicit SyncIoQueue(unsigned depth) : depth_(depth == 0 ? 1 : depth) {
    prepared_.reserve(depth_);
  }

  unsigned depth() const override { return depth_; }

  absl::Status Prepare(const IoOp& op) override {
    if (prepared_.size() >= depth_) {
      return absl::ResourceExhaustedError("submission queue is full");
    }
    prepared_.push_back(op);
    return absl::OkStatus();
  }

  absl::StatusOr<int> Submit() override {
    int n = 0;
    for (const IoOp& op : prepared_) {
      ssize_t r = op.kind == IoOp::Kind::kRead
                      ? preadv(op.fd, op.iov, op.iovcnt, op.offset)
                      : pwritev(op.fd, op.iov, op.iovcnt, op.offset);
      Complete(op.user_data, r < 0 ? -errno : r);
      ++n;
    }
    prepared_.clear();
    return n;
  }

  absl::StatusOr<int> Reap(
      bool wait, absl::FunctionRef<void(uint64_t, int64_t)> fn) override {
    {
      absl::MutexLock lock(&mu_);
      if (wait) mu_.Await(absl::Condition(this, &SyncIoQueue::HasDone));
      reaping_.swap(done_);
    }
    for (const Completion& c : reaping_) fn(c.user_data, c.result);
    int n = static_cast<int>(reaping_.size());
    reaping_.clear();
    return n;
  }

  absl::Status Wake() override {
    Complete(kWakeUserData, 0);
    return absl::OkStatus();
  }

 private:
  struct Completion {
    uint64_t user_data;
    int64_t result;
  };

  void Complete(uint64_t user_data, int64_t result) {
    absl::MutexLock lock(&mu_);
    done_.push_back({user_data, result});
  }
  bool HasDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !done_.empty();
  }

  const unsigned depth_;
  std::vector<IoOp> prepared_;         // owner-serialized
  std::vector<Completion> reaping_;    // reaper thread only
  absl::Mutex mu_;
  std::vector<Completion> done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<IoQueue>> NewUringQueue(unsigned depth) {
  return UringQueue::Create(depth);
}

std::unique_ptr<IoQueue> NewSyncIoQueue(unsigned depth) {
  return std::make_unique<SyncIoQueue>(depth);
}

}  // namespace cachefs
