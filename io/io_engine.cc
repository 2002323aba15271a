// The IoEngine over an IoQueue. See io_engine.h for the model and
// io_request.h for how one transfer is split and resubmitted.
//
// Threads: any caller thread fills a slot, prepares its first segments
// under submit_mu_ and wakes the completion thread, which submits them: ops
// belong to the thread that submits them, and a caller (a FUSE worker, a
// pool thread) may exit while its writes are still queued for the kernel's
// workers, which would cancel them. The completion thread submits what is
// prepared, reaps, applies results, prepares every resubmission and
// follow-on segment of a batch, submits them with one Submit, releases
// finished slots under mu_ and then runs the callbacks with no lock held.
// The two mutexes are never held together. A blocking transfer
// (TransferSync) is driven on a private queue by its caller, which waits
// for it, so it is done before the caller could exit.
//
// Misaligned O_DIRECT transfers are rejected without I/O: the callback gets
// kInvalidArgument (errno EINVAL) naming the offending value, on the
// completion thread like every other result.

#include "io/io_engine.h"

#include <pthread.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "io/errno_status.h"
#include "io/io_request.h"

namespace cachefs {
namespace {

// The queue failed in a way that leaves transfers neither done nor
// retryable (a broken ring); carrying on would hang their callers.
[[noreturn]] void Fatal(const absl::Status& status) {
  fprintf(stderr, "cachefs IoEngine: %s\n", status.ToString().c_str());
  abort();
}

class QueueEngine final : public IoEngine {
 public:
  QueueEngine(Env* env, std::unique_ptr<IoQueue> queue, unsigned num_slots);
  ~QueueEngine() override;

  void ReadToIter(const BackingFile& file, uint64_t pos,
                  std::span<const iovec> iov, IoCallback done) override {
    Start(IoOp::Kind::kRead, file, pos, iov, std::move(done));
  }
  void WriteIterToCache(const BackingFile& file, uint64_t pos,
                        std::span<const iovec> iov, IoCallback done) override {
    Start(IoOp::Kind::kWrite, file, pos, iov, std::move(done));
  }
  IoEngineStats stats() const override;
  absl::StatusOr<size_t> TransferSync(IoOp::Kind kind, const BackingFile& file,
                                      uint64_t pos,
                                      std::span<const iovec> iov) override;

 private:
  // Runs `slot`'s transfer to the end on the calling thread, on `queue`.
  absl::Status DriveOnCaller(IoQueue& queue, Slot& slot);
  void Start(IoOp::Kind kind, const BackingFile& file, uint64_t pos,
             std::span<const iovec> iov, IoCallback done);
  Slot* AcquireSlot();
  void PostWithoutIo(Slot* slot);
  void PrepareSegment(uint64_t user_data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(submit_mu_);
  void SubmitPrepared() ABSL_EXCLUSIVE_LOCKS_REQUIRED(submit_mu_);
  bool AllFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return free_.size() == num_slots_;
  }
  bool AnyFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !free_.empty();
  }

  // Completion thread.
  void CompletionLoop();
  void OnCompletion(uint64_t user_data, int64_t result);
  void ResubmitPending();
  bool FinishPending();

  Env* const env_;
  const unsigned num_slots_;
  const std::unique_ptr<Slot[]> slots_;

  // Private queues for blocking transfers, each used by one caller at a
  // time; made on demand, so there are as many as concurrent callers.
  absl::Mutex sync_mu_;
  std::vector<std::unique_ptr<IoQueue>> sync_queues_ ABSL_GUARDED_BY(sync_mu_);

  // The queue's Prepare and Submit are used only under submit_mu_, and
  // Submit and Reap only on the completion thread.
  const std::unique_ptr<IoQueue> queue_;
  mutable absl::Mutex submit_mu_;
  uint64_t submit_batches_ ABSL_GUARDED_BY(submit_mu_) = 0;

  mutable absl::Mutex mu_;
  std::vector<Slot*> free_ ABSL_GUARDED_BY(mu_);
  std::vector<Slot*> without_io_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  IoEngineStats stats_ ABSL_GUARDED_BY(mu_);

  // Owned by the completion thread; sized once so a batch never allocates.
  std::vector<uint64_t> to_prepare_;
  std::vector<Slot*> finished_;
  std::vector<std::pair<IoCallback, absl::StatusOr<size_t>>> results_;
  uint64_t resubmissions_ = 0;

  std::thread thread_;  // last: starts once everything above exists
};

QueueEngine::QueueEngine(Env* env, std::unique_ptr<IoQueue> queue,
                         unsigned num_slots)
    : env_(env),
      num_slots_(num_slots),
      slots_(new Slot[num_slots]),
      queue_(std::move(queue)) {
  free_.reserve(num_slots_);
  without_io_.reserve(num_slots_);
  for (unsigned i = num_slots_; i > 0; --i) free_.push_back(&slots_[i - 1]);
  to_prepare_.reserve(size_t{num_slots_} * kSegmentsPerSlot);
  finished_.reserve(num_slots_);
  results_.reserve(num_slots_);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "cachefs-io");
    CompletionLoop();
  });
}

QueueEngine::~QueueEngine() {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &QueueEngine::AllFree));
    stopping_ = true;
  }
  {
    absl::MutexLock lock(&submit_mu_);
    absl::Status s = queue_->Wake();
    if (!s.ok()) Fatal(s);
  }
  thread_.join();
}

void QueueEngine::Start(IoOp::Kind kind, const BackingFile& file,
                        uint64_t pos, std::span<const iovec> iov,
                        IoCallback done) {
  const char* op = kind == IoOp::Kind::kRead ? "ReadToIter" : "WriteIterToCache";
  absl::Status check = CheckTransfer(op, file, pos, iov);
  Slot* slot = AcquireSlot();
  if (slot == nullptr) {
    done(ErrnoToStatus(EAGAIN, absl::StrCat(op, " fd ", file.fd,
                                            ": every request slot is busy "
                                            "(issued from an IoEngine "
                                            "callback, which cannot wait)")));
    return;
  }
  FillSlot(*slot, kind, file, pos,
           check.ok() ? iov : std::span<const iovec>(), std::move(done));
  if (!check.ok() || slot->total == 0) {
    slot->immediate = std::move(check);
    PostWithoutIo(slot);
    return;
  }
  int n = 0;
  while (n < kSegmentsPerSlot && HasUncarved(*slot)) {
    CarveSegment(*slot, slot->segments[n++]);
  }
  slot->active_segments = n;
  const uint64_t first = static_cast<uint64_t>(slot - slots_.get()) *
                         kSegmentsPerSlot;
  absl::MutexLock lock(&submit_mu_);
  for (int i = 0; i < n; ++i) PrepareSegment(first + i);
  // The last touch of the slot on this thread; the completion thread's
  // acquire (OnCompletion) is bound to see it, as it comes before the
  // completion thread's Submit.
  slot->armed.store(true, std::memory_order_release);
  absl::Status woken = queue_->Wake();
  if (!woken.ok()) Fatal(woken);
}

// Waits for a free slot, except on the completion thread: only it frees
// slots, so there it returns nullptr instead of waiting forever.
Slot* QueueEngine::AcquireSlot() {
  const bool on_completion_thread =
      std::this_thread::get_id() == thread_.get_id();
  absl::MutexLock lock(&mu_);
  if (on_completion_thread) {
    if (free_.empty()) return nullptr;
  } else {
    mu_.Await(absl::Condition(this, &QueueEngine::AnyFree));
  }
  Slot* slot = free_.back();
  free_.pop_back();
  return slot;
}

// Hands a slot that needs no I/O to the completion thread, so its callback
// runs there like every other.
void QueueEngine::PostWithoutIo(Slot* slot) {
  // Woken under mu_: once the slot is posted and mu_ let go, its callback
  // may run and its owner destroy the engine.
  absl::MutexLock lock(&mu_);
  without_io_.push_back(slot);
  absl::Status s = queue_->Wake();
  if (!s.ok()) Fatal(s);
}

void QueueEngine::PrepareSegment(uint64_t user_data) {
  Slot& slot = slots_[user_data / kSegmentsPerSlot];
  const Segment& seg = slot.segments[user_data % kSegmentsPerSlot];
  IoOp op{slot.kind, slot.fd, seg.pos, seg.iov, seg.iovcnt, user_data};
  // The ring holds every op the slots can have outstanding, prepared or
  // submitted, so it is never full here.
  absl::Status s = queue_->Prepare(op);
  if (!s.ok()) Fatal(s);
}

void QueueEngine::SubmitPrepared() {
  absl::StatusOr<int> n = queue_->Submit();
  if (!n.ok()) Fatal(n.status());
  if (*n > 0) ++submit_batches_;
}

IoEngineStats QueueEngine::stats() const {
  IoEngineStats out;
  {
    absl::MutexLock lock(&mu_);
    out = stats_;
  }
  absl::MutexLock lock(&submit_mu_);
  out.submit_batches = submit_batches_;
  return out;
}

void QueueEngine::CompletionLoop() {
  for (;;) {
    {
      // What callers prepared since the last pass; their wakes brought us
      // here.
      absl::MutexLock lock(&submit_mu_);
      SubmitPrepared();
    }
    bool woken = false;
    absl::StatusOr<int> n =
        queue_->Reap(/*wait=*/true, [&](uint64_t user_data, int64_t result) {
          if (user_data == IoQueue::kWakeUserData) {
            woken = true;
          } else {
            OnCompletion(user_data, result);
          }
        });
    if (!n.ok()) Fatal(n.status());
    ResubmitPending();
    const bool stopping = FinishPending();
    // Stop on the destructor's wake; it comes only once every slot is free.
    if (stopping && woken) return;
  }
}

void QueueEngine::OnCompletion(uint64_t user_data, int64_t result) {
  Slot& slot = slots_[user_data / kSegmentsPerSlot];
  Segment& seg = slot.segments[user_data % kSegmentsPerSlot];
  // Pairs with the submitter's release: the kernel orders the submission
  // before the completion, but ThreadSanitizer cannot see that.
  (void)slot.armed.load(std::memory_order_acquire);
  if (ApplyResult(slot, seg, result) == SegmentState::kResubmit) {
    ++resubmissions_;
    to_prepare_.push_back(user_data);
    return;
  }
  if (slot.error == 0 && HasUncarved(slot) && slot.next_byte < slot.eof_at) {
    CarveSegment(slot, seg);
    to_prepare_.push_back(user_data);
    return;
  }
  if (--slot.active_segments == 0) finished_.push_back(&slot);
}

void QueueEngine::ResubmitPending() {
  if (to_prepare_.empty()) return;
  absl::MutexLock lock(&submit_mu_);
  for (uint64_t user_data : to_prepare_) PrepareSegment(user_data);
  SubmitPrepared();
  to_prepare_.clear();
}

// Releases finished slots, then runs their callbacks with no lock held.
// Returns whether the engine is stopping.
bool QueueEngine::FinishPending() {
  {
    absl::MutexLock lock(&mu_);
    finished_.insert(finished_.end(), without_io_.begin(), without_io_.end());
    without_io_.clear();
  }
  IoEngineStats delta;
  delta.resubmissions = std::exchange(resubmissions_, 0);
  for (Slot* slot : finished_) {
    absl::StatusOr<size_t> result = SlotResult(*slot);
    const bool read = slot->kind == IoOp::Kind::kRead;
    (read ? delta.reads : delta.writes) += 1;
    if (result.ok()) {
      (read ? delta.bytes_read : delta.bytes_written) += *result;
    } else {
      ++delta.errors;
    }
    results_.emplace_back(std::move(slot->done), std::move(result));
  }
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    free_.insert(free_.end(), finished_.begin(), finished_.end());
    stats_.reads += delta.reads;
    stats_.writes += delta.writes;
    stats_.bytes_read += delta.bytes_read;
    stats_.bytes_written += delta.bytes_written;
    stats_.resubmissions += delta.resubmissions;
    stats_.errors += delta.errors;
    stopping = stopping_;
  }
  finished_.clear();
  for (auto& [done, result] : results_) done(std::move(result));
  results_.clear();
  return stopping;
}

absl::StatusOr<size_t> QueueEngine::TransferSync(IoOp::Kind kind,
                                                 const BackingFile& file,
                                                 uint64_t pos,
                                                 std::span<const iovec> iov) {
  const char* op = kind == IoOp::Kind::kRead ? "ReadToIter" : "WriteIterToCache";
  absl::Status check = CheckTransfer(op, file, pos, iov);
  if (!check.ok()) return check;
  std::unique_ptr<IoQueue> queue;
  {
    absl::MutexLock lock(&sync_mu_);
    if (!sync_queues_.empty()) {
      queue = std::move(sync_queues_.back());
      sync_queues_.pop_back();
    }
  }
  if (queue == nullptr) {
    absl::StatusOr<std::unique_ptr<IoQueue>> made =
        env_->NewIoQueue(kSegmentsPerSlot);
    if (!made.ok()) return Annotate(made.status(), op);
    queue = *std::move(made);
  }
  Slot slot;
  FillSlot(slot, kind, file, pos, iov, nullptr);
  absl::Status driven = DriveOnCaller(*queue, slot);
  // As on the completion thread: a broken queue leaves ops in flight that
  // nobody could finish.
  if (!driven.ok()) Fatal(driven);
  {
    absl::MutexLock lock(&sync_mu_);
    sync_queues_.push_back(std::move(queue));
  }
  absl::StatusOr<size_t> result = SlotResult(slot);
  absl::MutexLock lock(&mu_);
  const bool read = kind == IoOp::Kind::kRead;
  (read ? stats_.reads : stats_.writes) += 1;
  if (result.ok()) {
    (read ? stats_.bytes_read : stats_.bytes_written) += *result;
  } else {
    ++stats_.errors;
  }
  return result;
}

absl::Status QueueEngine::DriveOnCaller(IoQueue& queue, Slot& slot) {
  auto prepare = [&](int i) {
    const Segment& seg = slot.segments[i];
    return queue.Prepare(
        IoOp{slot.kind, slot.fd, seg.pos, seg.iov, seg.iovcnt, uint64_t(i)});
  };
  int active = 0;
  while (active < kSegmentsPerSlot && HasUncarved(slot)) {
    CarveSegment(slot, slot.segments[active]);
    absl::Status s = prepare(active++);
    if (!s.ok()) return s;
  }
  uint64_t resubmissions = 0;
  uint64_t batches = 0;
  while (active > 0) {
    absl::StatusOr<int> submitted = queue.Submit();
    if (!submitted.ok()) return submitted.status();
    if (*submitted > 0) ++batches;
    absl::Status failed;
    absl::StatusOr<int> reaped =
        queue.Reap(/*wait=*/true, [&](uint64_t i, int64_t result) {
          if (i == IoQueue::kWakeUserData || !failed.ok()) return;
          Segment& seg = slot.segments[i];
          if (ApplyResult(slot, seg, result) == SegmentState::kResubmit) {
            ++resubmissions;
            failed = prepare(static_cast<int>(i));
          } else if (slot.error == 0 && HasUncarved(slot) &&
                     slot.next_byte < slot.eof_at) {
            CarveSegment(slot, seg);
            failed = prepare(static_cast<int>(i));
          } else {
            --active;
          }
        });
    if (!reaped.ok()) return reaped.status();
    if (!failed.ok()) return failed;
  }
  {
    absl::MutexLock lock(&mu_);
    stats_.resubmissions += resubmissions;
  }
  absl::MutexLock lock(&submit_mu_);
  submit_batches_ += batches;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<IoEngine>> IoEngine::Create(
    Env* env, const IoEngineOptions& options) {
  const unsigned slots = options.queue_depth == 0 ? 1 : options.queue_depth;
  // Every slot may have all its segments in flight.
  absl::StatusOr<std::unique_ptr<IoQueue>> queue =
      env->NewIoQueue(slots * kSegmentsPerSlot);
  if (!queue.ok()) return Annotate(queue.status(), "IoEngine::Create");
  return std::unique_ptr<IoEngine>(
      new QueueEngine(env, std::move(*queue), slots));
}

}  // namespace cachefs
