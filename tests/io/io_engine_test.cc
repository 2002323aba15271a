#include "io/io_engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "io/errno_status.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using ::cachefs::testing::AlignedBuffer;
using ::cachefs::testing::FillPattern;
using ::cachefs::testing::FirstMismatch;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;

enum class QueueKind { kUring, kSync };

class IoEngineTest : public ::testing::TestWithParam<QueueKind> {
 protected:
  void SetUp() override {
    env_ = GetParam() == QueueKind::kUring ? Env::Default() : &sync_env_;
    engine_ = MakeEngine(128);
    bool direct = false;
    absl::StatusOr<int> fd = OpenBackingFile(
        env_, dir_.fd(), "object", O_RDWR | O_CREAT, 0600, false, &direct);
    ASSERT_OK(fd);
    ASSERT_TRUE(direct) << dir_.path() << " should support O_DIRECT";
    file_ = {*fd, true};
  }
  void TearDown() override {
    engine_.reset();
    if (file_.fd >= 0) close(file_.fd);
  }

  std::unique_ptr<IoEngine> MakeEngine(unsigned depth) {
    absl::StatusOr<std::unique_ptr<IoEngine>> e =
        IoEngine::Create(env_, IoEngineOptions{.queue_depth = depth});
    EXPECT_OK(e);
    return e.ok() ? std::move(*e) : nullptr;
  }

  // Writes the pattern `seed` over [pos, pos + len) through the engine.
  void WritePattern(uint64_t seed, uint64_t pos, size_t len) {
    AlignedBuffer buf(len);
    FillPattern(buf.data(), len, seed, pos);
    iovec v = buf.iov(0, len);
    absl::StatusOr<size_t> n = engine_->WriteIterToCacheSync(file_, pos, {&v, 1});
    ASSERT_OK(n);
    ASSERT_EQ(*n, len);
  }

  testing::SyncQueueEnv sync_env_;
  Env* env_ = nullptr;
  testing::TempDir dir_;
  std::unique_ptr<IoEngine> engine_;
  BackingFile file_;
};

TEST_P(IoEngineTest, WriteThenReadBackAtAlignedOffsets) {
  const struct {
    uint64_t pos;
    size_t len;
  } cases[] = {{0, 4 * kKiB},          {4 * kKiB, 64 * kKiB},
               {256 * kKiB, 256 * kKiB}, {3 * kMiB + 8 * kKiB, kMiB + 4 * kKiB},
               {16 * kMiB, 2 * kMiB}};
  uint64_t seed = 1;
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "pos " << c.pos << " len " << c.len);
    WritePattern(seed, c.pos, c.len);
    AlignedBuffer back(c.len);
    iovec v = back.iov(0, c.len);
    absl::StatusOr<size_t> n = engine_->ReadToIterSync(file_, c.pos, {&v, 1});
    ASSERT_OK(n);
    EXPECT_EQ(*n, c.len);
    EXPECT_EQ(FirstMismatch(back.data(), c.len, seed, c.pos), -1);
    // And through an independent path: the Env's pread.
    AlignedBuffer check(c.len);
    ASSERT_OK(env_->PRead(file_.fd, check.data(), c.len, c.pos));
    EXPECT_EQ(FirstMismatch(check.data(), c.len, seed, c.pos), -1);
    ++seed;
  }
}

TEST_P(IoEngineTest, MultiIovecTransfersScatterAndGather) {
  // 40 scattered 4 KiB pieces, written in reverse buffer order: more
  // iovecs than a slot holds inline and than one segment takes.
  constexpr int kPieces = 40;
  constexpr uint64_t kPos = 512 * kKiB;
  AlignedBuffer src(kPieces * 8 * kKiB);
  std::vector<iovec> out;
  for (int i = 0; i < kPieces; ++i) {
    uint8_t* piece = src.data() + (kPieces - 1 - i) * 8 * kKiB;
    FillPattern(piece, 4 * kKiB, 7, kPos + i * 4 * kKiB);
    out.push_back({piece, 4 * kKiB});
    if (i % 7 == 0) out.push_back({piece, 0});  // empty entries are skipped
  }
  absl::StatusOr<size_t> w = engine_->WriteIterToCacheSync(file_, kPos, out);
  ASSERT_OK(w);
  ASSERT_EQ(*w, kPieces * 4 * kKiB);

  // Read it back cut differently: 12 KiB, 100 KiB, and the rest.
  AlignedBuffer a(12 * kKiB), b(100 * kKiB), c(48 * kKiB);
  std::vector<iovec> in = {a.iov(0, 12 * kKiB), b.iov(0, 100 * kKiB),
                           c.iov(0, 48 * kKiB)};
  absl::StatusOr<size_t> r = engine_->ReadToIterSync(file_, kPos, in);
  ASSERT_OK(r);
  ASSERT_EQ(*r, 160 * kKiB);
  EXPECT_EQ(FirstMismatch(a.data(), 12 * kKiB, 7, kPos), -1);
  EXPECT_EQ(FirstMismatch(b.data(), 100 * kKiB, 7, kPos + 12 * kKiB), -1);
  EXPECT_EQ(FirstMismatch(c.data(), 48 * kKiB, 7, kPos + 112 * kKiB), -1);
}

TEST_P(IoEngineTest, OneLargeTransferIsOneSubmitBatch) {
  WritePattern(3, 0, 4 * kMiB);
  const IoEngineStats before = engine_->stats();
  AlignedBuffer buf(4 * kMiB);
  iovec v = buf.iov(0, 4 * kMiB);
  ASSERT_OK(engine_->ReadToIterSync(file_, 0, {&v, 1}));
  const IoEngineStats after = engine_->stats();
  EXPECT_EQ(after.reads - before.reads, 1u);
  EXPECT_EQ(after.bytes_read - before.bytes_read, 4 * kMiB);
  // All segments of the read leave in one batch; any later batch is a
  // resubmission.
  EXPECT_EQ(after.submit_batches - before.submit_batches,
            1 + (after.resubmissions - before.resubmissions));
  EXPECT_EQ(FirstMismatch(buf.data(), 4 * kMiB, 3, 0), -1);
}

TEST_P(IoEngineTest, ConcurrentTransfersFromEightThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 24;
  constexpr size_t kLen = 64 * kKiB;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AlignedBuffer buf(kPerThread * kLen);
      absl::Mutex mu;
      int pending = 0;
      auto wait_all = [&] {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(+[](int* p) { return *p == 0; }, &pending));
      };
      auto issue = [&](bool write) {
        for (int i = 0; i < kPerThread; ++i) {
          const uint64_t pos = (static_cast<uint64_t>(t) * kPerThread + i) * kLen;
          iovec v = buf.iov(i * kLen, kLen);
          if (write) FillPattern(buf.data() + i * kLen, kLen, 100 + t, pos);
          {
            absl::MutexLock lock(&mu);
            ++pending;
          }
          auto done = [&](absl::StatusOr<size_t> r) {
            if (!r.ok() || *r != kLen) failures.fetch_add(1);
            absl::MutexLock lock(&mu);
            --pending;
          };
          if (write) {
            engine_->WriteIterToCache(file_, pos, {&v, 1}, done);
          } else {
            engine_->ReadToIter(file_, pos, {&v, 1}, done);
          }
        }
        wait_all();
      };
      issue(/*write=*/true);
      std::memset(buf.data(), 0, kPerThread * kLen);
      issue(/*write=*/false);
      for (int i = 0; i < kPerThread; ++i) {
        const uint64_t pos = (static_cast<uint64_t>(t) * kPerThread + i) * kLen;
        if (FirstMismatch(buf.data() + i * kLen, kLen, 100 + t, pos) != -1) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(engine_->stats().errors, 0u);
}

TEST_P(IoEngineTest, MoreTransfersThanQueueDepthWaitForSlots) {
  engine_ = MakeEngine(2);
  constexpr int kTransfers = 64;
  constexpr size_t kLen = 128 * kKiB;
  WritePattern(9, 0, kTransfers * kLen);
  AlignedBuffer buf(kTransfers * kLen);
  std::atomic<int> ok{0};
  std::atomic<int> left{kTransfers};
  absl::Notification all_done;
  for (int i = 0; i < kTransfers; ++i) {
    iovec v = buf.iov(i * kLen, kLen);
    engine_->ReadToIter(file_, i * kLen, {&v, 1},
                        [&](absl::StatusOr<size_t> r) {
                          if (r.ok() && *r == kLen) ok.fetch_add(1);
                          if (left.fetch_sub(1) == 1) all_done.Notify();
                        });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(ok.load(), kTransfers);
  EXPECT_EQ(FirstMismatch(buf.data(), kTransfers * kLen, 9, 0), -1);
}

TEST_P(IoEngineTest, ReadPastEndOfFileReturnsShortCount) {
  WritePattern(5, 0, 300 * kKiB);
  // Spans several segments; EOF falls inside the third.
  AlignedBuffer buf(kMiB);
  iovec v = buf.iov(0, kMiB);
  absl::StatusOr<size_t> n = engine_->ReadToIterSync(file_, 0, {&v, 1});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 300 * kKiB);
  EXPECT_EQ(FirstMismatch(buf.data(), 300 * kKiB, 5, 0), -1);
  // Entirely past EOF.
  n = engine_->ReadToIterSync(file_, 2 * kMiB, {&v, 1});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0u);
  // A file size that is not a multiple of 4096.
  ASSERT_OK(env_->FTruncate(file_.fd, 300 * kKiB + 100));
  iovec tail = buf.iov(0, 8 * kKiB);
  n = engine_->ReadToIterSync(file_, 296 * kKiB, {&tail, 1});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 4 * kKiB + 100);
}

// Writes started by threads that exit straight away, as FUSE workers and
// pool threads do, all land: the kernel cancels queued ops of a thread
// that exits, so the engine must not leave them in that thread's name.
// Writes that extend a file on tmpfs are among those the kernel hands to
// its workers.
TEST_P(IoEngineTest, WritesFromThreadsThatExitAllLand) {
  testing::TempDir shm("/dev/shm");
  bool direct = true;
  absl::StatusOr<int> fd = OpenBackingFile(env_, shm.fd(), "object",
                                           O_RDWR | O_CREAT, 0600, true,
                                           &direct);
  ASSERT_OK(fd);
  const BackingFile files[] = {{*fd, direct}, file_};
  constexpr int kThreads = 16;
  constexpr size_t kLen = 256 * kKiB;
  AlignedBuffer buf(kThreads * kLen);
  FillPattern(buf.data(), kThreads * kLen, 11, 0);
  for (const BackingFile& file : files) {
    std::atomic<int> left{kThreads};
    std::atomic<int> landed{0};
    absl::Mutex mu;
    std::string errors;
    absl::Notification all_done;
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        iovec v = buf.iov(i * kLen, kLen);
        engine_->WriteIterToCache(
            file, i * kLen, {&v, 1}, [&](absl::StatusOr<size_t> r) {
              if (r.ok() && *r == kLen) {
                landed.fetch_add(1);
              } else {
                absl::MutexLock lock(&mu);
                errors += r.status().ToString() + "\n";
              }
              if (left.fetch_sub(1) == 1) all_done.Notify();
            });
      });
    }
    // Gone before their writes are done.
    for (std::thread& t : threads) t.join();
    ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
    absl::MutexLock lock(&mu);
    EXPECT_EQ(landed.load(), kThreads)
        << (file.fd == *fd ? "on /dev/shm: " : "in the test directory: ")
        << errors;
  }
  close(*fd);
}

TEST_P(IoEngineTest, MisalignedDirectTransferFailsWithInvalidArgument) {
  AlignedBuffer buf(64 * kKiB);
  const std::thread::id caller = std::this_thread::get_id();
  struct Case {
    const char* what;
    uint64_t pos;
    iovec v;
  } cases[] = {{"pos", 512, buf.iov(0, 4 * kKiB)},
               {"iov_base", 0, buf.iov(512, 4 * kKiB)},
               {"iov_len", 0, buf.iov(0, 4 * kKiB + 1)}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    for (bool write : {false, true}) {
      absl::Notification done;
      absl::Status status;
      std::thread::id ran_on;
      auto cb = [&](absl::StatusOr<size_t> r) {
        // Moved, not copied: a copy would leave this thread releasing a
        // reference to the same rep after Notify, through abseil's
        // uninstrumented refcount, which TSan reports as a race.
        status = std::move(r).status();
        ran_on = std::this_thread::get_id();
        done.Notify();
      };
      if (write) {
        engine_->WriteIterToCache(file_, c.pos, {&c.v, 1}, cb);
      } else {
        engine_->ReadToIter(file_, c.pos, {&c.v, 1}, cb);
      }
      ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
      EXPECT_EQ(StatusToErrno(status), EINVAL);
      EXPECT_NE(status.message().find("aligned"), absl::string_view::npos)
          << status;
      EXPECT_NE(ran_on, caller) << "callbacks run on the completion thread";
    }
  }
  // Nothing reached the file.
  absl::StatusOr<struct stat> st = env_->FStat(file_.fd);
  ASSERT_OK(st);
  EXPECT_EQ(st->st_size, 0);
  EXPECT_EQ(engine_->stats().errors, 6u);
}

TEST_P(IoEngineTest, BufferedFileAcceptsUnalignedTransfers) {
  absl::StatusOr<int> fd =
      env_->OpenAt(dir_.fd(), "buffered", O_RDWR | O_CREAT, 0600);
  ASSERT_OK(fd);
  BackingFile buffered{*fd, false};
  std::vector<uint8_t> data(10000);
  FillPattern(data.data(), data.size(), 11, 777);
  iovec v{data.data() + 3, data.size() - 3};
  EXPECT_OK(engine_->WriteIterToCacheSync(buffered, 780, {&v, 1}));
  std::vector<uint8_t> back(data.size() - 3);
  iovec r{back.data(), back.size()};
  absl::StatusOr<size_t> n = engine_->ReadToIterSync(buffered, 780, {&r, 1});
  ASSERT_OK(n);
  EXPECT_EQ(*n, back.size());
  EXPECT_EQ(FirstMismatch(back.data(), back.size(), 11, 780), -1);
  close(*fd);
}

TEST_P(IoEngineTest, ErrorsFromTheKernelKeepTheirErrno) {
  BackingFile bad{file_.fd + 1000, true};  // not an open descriptor
  AlignedBuffer buf(4 * kKiB);
  iovec v = buf.iov(0, 4 * kKiB);
  absl::StatusOr<size_t> n = engine_->ReadToIterSync(bad, 0, {&v, 1});
  EXPECT_EQ(StatusToErrno(n.status()), EBADF) << n.status();
}

TEST_P(IoEngineTest, EmptyTransferCompletesWithZeroBytes) {
  AlignedBuffer buf(4 * kKiB);
  iovec v = buf.iov(0, 0);
  absl::StatusOr<size_t> n = engine_->ReadToIterSync(file_, 0, {&v, 1});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0u);
  n = engine_->WriteIterToCacheSync(file_, 0, {&v, 1});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0u);
}

TEST_P(IoEngineTest, CallbacksMayIssueIoButNeverWaitForASlot) {
  engine_ = MakeEngine(1);
  WritePattern(8, 0, 64 * kKiB);
  AlignedBuffer a(16 * kKiB), b(16 * kKiB), c(16 * kKiB);
  absl::Mutex mu;
  absl::Status second, third;
  int done = 0;
  iovec va = a.iov(0, 16 * kKiB);
  engine_->ReadToIter(file_, 0, {&va, 1}, [&](absl::StatusOr<size_t> r) {
    EXPECT_OK(r);
    // The finished transfer's slot is free again: this one gets it...
    iovec vb = b.iov(0, 16 * kKiB);
    engine_->ReadToIter(file_, 16 * kKiB, {&vb, 1},
                        [&](absl::StatusOr<size_t> r2) {
                          absl::MutexLock lock(&mu);
                          second = std::move(r2).status();
                          ++done;
                        });
    // ...and with the only slot taken, this one fails instead of waiting
    // for a slot that only this thread could free.
    iovec vc = c.iov(0, 16 * kKiB);
    engine_->ReadToIter(file_, 32 * kKiB, {&vc, 1},
                        [&](absl::StatusOr<size_t> r3) {
                          absl::MutexLock lock(&mu);
                          third = std::move(r3).status();
                          ++done;
                        });
  });
  absl::MutexLock lock(&mu);
  ASSERT_TRUE(mu.AwaitWithTimeout(
      absl::Condition(+[](int* d) { return *d == 2; }, &done),
      absl::Seconds(60)));
  EXPECT_OK(second);
  EXPECT_EQ(StatusToErrno(third), EAGAIN) << third;
  EXPECT_EQ(FirstMismatch(b.data(), 16 * kKiB, 8, 16 * kKiB), -1);
}

TEST_P(IoEngineTest, DestructorWaitsForTransfersInFlight) {
  constexpr int kTransfers = 48;
  constexpr size_t kLen = 256 * kKiB;
  WritePattern(13, 0, kTransfers * kLen);
  AlignedBuffer buf(kTransfers * kLen);
  std::atomic<int> ok{0};
  for (int i = 0; i < kTransfers; ++i) {
    iovec v = buf.iov(i * kLen, kLen);
    engine_->ReadToIter(file_, i * kLen, {&v, 1},
                        [&](absl::StatusOr<size_t> r) {
                          if (r.ok() && *r == kLen) ok.fetch_add(1);
                        });
  }
  // Destroy with the reads in flight, watched so a hang fails the test.
  absl::Notification destroyed;
  std::thread destroyer([&] {
    engine_.reset();
    destroyed.Notify();
  });
  const bool finished =
      destroyed.WaitForNotificationWithTimeout(absl::Seconds(60));
  if (!finished) {
    ADD_FAILURE() << "IoEngine destructor hung with I/O in flight";
    std::abort();
  }
  destroyer.join();
  EXPECT_EQ(ok.load(), kTransfers);
  EXPECT_EQ(FirstMismatch(buf.data(), kTransfers * kLen, 13, 0), -1);
}

INSTANTIATE_TEST_SUITE_P(
    Queues, IoEngineTest, ::testing::Values(QueueKind::kUring, QueueKind::kSync),
    [](const ::testing::TestParamInfo<QueueKind>& info) {
      return info.param == QueueKind::kUring ? "IoUring" : "SyncFallback";
    });

}  // namespace
}  // namespace cachefs
