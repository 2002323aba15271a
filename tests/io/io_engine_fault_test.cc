// The IoEngine over FaultInjectionEnv: faults injected into queued reads and
// writes reach the callback with their errno, and short writes are
// resubmitted until the data is all there.

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"
#include "io/errno_status.h"
#include "io/fault_injection_env.h"
#include "io/io_engine.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using ::cachefs::testing::AlignedBuffer;
using ::cachefs::testing::FillPattern;
using ::cachefs::testing::FirstMismatch;

constexpr size_t kKiB = 1024;

enum class QueueKind { kUring, kSync };

class IoEngineFaultTest : public ::testing::TestWithParam<QueueKind> {
 protected:
  void SetUp() override {
    Env* base = GetParam() == QueueKind::kUring ? Env::Default() : &sync_env_;
    env_ = std::make_unique<FaultInjectionEnv>(base);
    absl::StatusOr<std::unique_ptr<IoEngine>> e =
        IoEngine::Create(env_.get(), IoEngineOptions{.queue_depth = 16});
    ASSERT_OK(e);
    engine_ = std::move(*e);
    bool direct = false;
    absl::StatusOr<int> fd = OpenBackingFile(
        env_.get(), dir_.fd(), "object", O_RDWR | O_CREAT, 0600, false,
        &direct);
    ASSERT_OK(fd);
    file_ = {*fd, direct};
  }
  void TearDown() override {
    engine_.reset();
    if (file_.fd >= 0) close(file_.fd);
  }

  absl::StatusOr<size_t> Write(uint64_t seed, uint64_t pos, size_t len) {
    AlignedBuffer buf(len);
    FillPattern(buf.data(), len, seed, pos);
    iovec v = buf.iov(0, len);
    return engine_->WriteIterToCacheSync(file_, pos, {&v, 1});
  }
  absl::StatusOr<size_t> Read(AlignedBuffer& buf, uint64_t pos) {
    iovec v = buf.iov(0, buf.size());
    return engine_->ReadToIterSync(file_, pos, {&v, 1});
  }

  testing::SyncQueueEnv sync_env_;
  testing::TempDir dir_;
  std::unique_ptr<FaultInjectionEnv> env_;
  std::unique_ptr<IoEngine> engine_;
  BackingFile file_;
};

TEST_P(IoEngineFaultTest, ShortWritesAreResubmittedUntilComplete) {
  env_->SetShortWrites(true);
  // Three iovecs, so the remainder after a short write starts mid-list.
  constexpr size_t kLen = 768 * kKiB;
  AlignedBuffer buf(kLen);
  FillPattern(buf.data(), kLen, 21, 64 * kKiB);
  std::vector<iovec> iov = {buf.iov(0, 100 * kKiB), buf.iov(100 * kKiB, 4 * kKiB),
                            buf.iov(104 * kKiB, kLen - 104 * kKiB)};
  absl::StatusOr<size_t> n =
      engine_->WriteIterToCacheSync(file_, 64 * kKiB, iov);
  ASSERT_OK(n);
  EXPECT_EQ(*n, kLen);
  EXPECT_GT(engine_->stats().resubmissions, 0u);

  env_->SetShortWrites(false);
  AlignedBuffer back(kLen);
  ASSERT_OK(Read(back, 64 * kKiB));
  EXPECT_EQ(FirstMismatch(back.data(), kLen, 21, 64 * kKiB), -1);
}

TEST_P(IoEngineFaultTest, InjectedEioOnQueuedWriteReachesCallback) {
  env_->SetError(FaultInjectionEnv::kDataWrite, EIO, /*count=*/1);
  absl::StatusOr<size_t> n = Write(1, 0, 64 * kKiB);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(StatusToErrno(n.status()), EIO) << n.status();
  EXPECT_EQ(env_->injected_faults(), 1u);
  EXPECT_EQ(engine_->stats().errors, 1u);
  // The fault was for one call only.
  n = Write(1, 0, 64 * kKiB);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 64 * kKiB);
}

TEST_P(IoEngineFaultTest, NoSpaceOnQueuedWriteIsEnospc) {
  env_->SetNoSpace(true);
  absl::StatusOr<size_t> n = Write(2, 128 * kKiB, 256 * kKiB);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(StatusToErrno(n.status()), ENOSPC) << n.status();
  EXPECT_EQ(n.status().code(), absl::StatusCode::kResourceExhausted);
  // Reads are not affected by a full disk.
  AlignedBuffer buf(4 * kKiB);
  EXPECT_OK(Read(buf, 0));
  env_->SetNoSpace(false);
  EXPECT_OK(Write(2, 128 * kKiB, 256 * kKiB));
}

TEST_P(IoEngineFaultTest, InjectedEioOnQueuedReadReachesCallback) {
  ASSERT_OK(Write(3, 0, 256 * kKiB));
  env_->SetError(FaultInjectionEnv::kDataRead, EIO);
  AlignedBuffer buf(256 * kKiB);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<size_t> n = Read(buf, 0);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(StatusToErrno(n.status()), EIO) << n.status();
  }
  env_->SetError(0, 0);
  absl::StatusOr<size_t> n = Read(buf, 0);
  ASSERT_OK(n);
  EXPECT_EQ(FirstMismatch(buf.data(), 256 * kKiB, 3, 0), -1);
}

TEST_P(IoEngineFaultTest, FaultsAmongManyTransfersHitOnlyTheFaulted) {
  // Two faults, many concurrent writes: exactly two callbacks see EIO.
  env_->SetError(FaultInjectionEnv::kDataWrite, EIO, /*count=*/2);
  constexpr int kTransfers = 32;
  constexpr size_t kLen = 16 * kKiB;  // one segment each
  AlignedBuffer buf(kTransfers * kLen);
  FillPattern(buf.data(), kTransfers * kLen, 4, 0);
  absl::Mutex mu;
  int done = 0, eio = 0, ok = 0;
  for (int i = 0; i < kTransfers; ++i) {
    iovec v = buf.iov(i * kLen, kLen);
    engine_->WriteIterToCache(file_, i * kLen, {&v, 1},
                              [&](absl::StatusOr<size_t> r) {
                                absl::MutexLock lock(&mu);
                                ++done;
                                if (r.ok()) ++ok;
                                if (StatusToErrno(r.status()) == EIO) ++eio;
                              });
  }
  absl::MutexLock lock(&mu);
  ASSERT_TRUE(mu.AwaitWithTimeout(
      absl::Condition(+[](int* d) { return *d == kTransfers; }, &done),
      absl::Seconds(60)));
  EXPECT_EQ(eio, 2);
  EXPECT_EQ(ok, kTransfers - 2);
}

INSTANTIATE_TEST_SUITE_P(
    Queues, IoEngineFaultTest,
    ::testing::Values(QueueKind::kUring, QueueKind::kSync),
    [](const ::testing::TestParamInfo<QueueKind>& info) {
      return info.param == QueueKind::kUring ? "IoUring" : "SyncFallback";
    });

}  // namespace
}  // namespace cachefs
