#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "io/env.h"
#include "io/errno_status.h"
#include "io/io_engine.h"
#include "io/uring_queue.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

class PosixEnvTest : public ::testing::Test {
 protected:
  Env* env_ = Env::Default();
  testing::TempDir dir_;
};

TEST_F(PosixEnvTest, ErrorsNameTheCallAndPathAndKeepErrno) {
  absl::StatusOr<int> fd = env_->OpenAt(dir_.fd(), "no-such", O_RDONLY, 0);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusToErrno(fd.status()), ENOENT);
  EXPECT_NE(fd.status().message().find("openat"), absl::string_view::npos);
  EXPECT_NE(fd.status().message().find("no-such"), absl::string_view::npos);

  absl::Status s = env_->FDataSync(-1);
  EXPECT_EQ(StatusToErrno(s), EBADF);
  EXPECT_NE(s.message().find("fd -1"), absl::string_view::npos) << s;
}

TEST_F(PosixEnvTest, XattrsRoundTripAndMissingIsNotFound) {
  absl::StatusOr<int> fd =
      env_->OpenAt(dir_.fd(), "f", O_RDWR | O_CREAT, 0600);
  ASSERT_OK(fd);
  absl::StatusOr<std::string> missing = env_->GetXattr(*fd, "user.none");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusToErrno(missing.status()), ENODATA);

  const std::string big(3000, 'x');
  ASSERT_OK(env_->SetXattr(*fd, "user.big", big));
  ASSERT_OK(env_->SetXattr(*fd, "user.empty", ""));
  EXPECT_EQ(env_->GetXattr(*fd, "user.big").value_or(""), big);
  absl::StatusOr<std::string> empty = env_->GetXattr(*fd, "user.empty");
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, "");
  absl::StatusOr<std::vector<std::string>> names = env_->ListXattr(*fd);
  ASSERT_OK(names);
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"user.big", "user.empty"}));
  ASSERT_OK(env_->RemoveXattr(*fd, "user.big"));
  EXPECT_EQ(env_->GetXattr(*fd, "user.big").status().code(),
            absl::StatusCode::kNotFound);
  close(*fd);
}

TEST_F(PosixEnvTest, NamespaceCallsAndReadDir) {
  ASSERT_OK(env_->MkdirAt(dir_.fd(), "sub", 0700));
  absl::StatusOr<int> fd =
      env_->OpenAt(dir_.fd(), "sub/a", O_RDWR | O_CREAT, 0600);
  ASSERT_OK(fd);
  ASSERT_OK(env_->Close(*fd));
  ASSERT_OK(env_->LinkAt(dir_.fd(), "sub/a", dir_.fd(), "sub/b", 0));
  absl::Status s =
      env_->RenameAt(dir_.fd(), "sub/a", dir_.fd(), "sub/b", RENAME_NOREPLACE);
  EXPECT_EQ(StatusToErrno(s), EEXIST) << s;
  ASSERT_OK(env_->RenameAt(dir_.fd(), "sub/a", dir_.fd(), "sub/c", 0));
  absl::StatusOr<std::vector<DirEntry>> entries = env_->ReadDir(dir_.fd(), "sub");
  ASSERT_OK(entries);
  std::vector<std::string> names;
  for (const DirEntry& e : *entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"b", "c"}));
  absl::StatusOr<struct stat> st = env_->FStatAt(dir_.fd(), "sub/b", 0);
  ASSERT_OK(st);
  EXPECT_EQ(st->st_nlink, 2u);
  ASSERT_OK(env_->UnlinkAt(dir_.fd(), "sub/b", 0));
  ASSERT_OK(env_->UnlinkAt(dir_.fd(), "sub/c", 0));
  ASSERT_OK(env_->UnlinkAt(dir_.fd(), "sub", AT_REMOVEDIR));
}

TEST_F(PosixEnvTest, DataCallsMoveEveryByte) {
  absl::StatusOr<int> fd =
      env_->OpenAt(dir_.fd(), "f", O_RDWR | O_CREAT, 0600);
  ASSERT_OK(fd);
  std::vector<uint8_t> data(100000);
  testing::FillPattern(data.data(), data.size(), 1, 50);
  EXPECT_EQ(env_->PWrite(*fd, data.data(), data.size(), 50).value_or(0),
            data.size());
  ASSERT_OK(env_->FDataSync(*fd));
  std::vector<uint8_t> back(200000);
  // Short only at end of file.
  EXPECT_EQ(env_->PRead(*fd, back.data(), back.size(), 50).value_or(0),
            data.size());
  EXPECT_EQ(testing::FirstMismatch(back.data(), data.size(), 1, 50), -1);
  ASSERT_OK(env_->FTruncate(*fd, 1000));
  EXPECT_EQ(env_->FStat(*fd).value().st_size, 1000);
  ASSERT_OK(env_->FAllocate(*fd, 0, 0, 1 << 20));
  EXPECT_EQ(env_->FStat(*fd).value().st_size, 1 << 20);
  absl::StatusOr<struct statvfs> vfs = env_->FStatVfs(*fd);
  ASSERT_OK(vfs);
  EXPECT_GT(vfs->f_blocks, 0u);
  close(*fd);
}

TEST_F(PosixEnvTest, ClocksAdvance) {
  const int64_t wall = env_->NowNanos();
  EXPECT_NEAR(static_cast<double>(wall) / 1e9, static_cast<double>(time(nullptr)),
              5.0);
  const int64_t a = env_->MonotonicNanos();
  usleep(2000);
  const int64_t b = env_->MonotonicNanos();
  EXPECT_GE(b - a, 2000000);
}

// Both queues behind NewIoQueue honour the IoQueue contract.
void ExerciseQueue(IoQueue& q, int fd) {
  testing::AlignedBuffer out_buf(4096), in_buf(4096);
  uint8_t* out = out_buf.data();
  uint8_t* in = in_buf.data();
  testing::FillPattern(out, 4096, 3, 8192);
  iovec wv{out, 4096};
  ASSERT_OK(q.Prepare({IoOp::Kind::kWrite, fd, 8192, &wv, 1, 7}));
  EXPECT_EQ(q.Submit().value_or(-1), 1);
  std::vector<std::pair<uint64_t, int64_t>> seen;
  auto collect = [&](uint64_t ud, int64_t res) { seen.emplace_back(ud, res); };
  while (seen.empty()) ASSERT_OK(q.Reap(true, collect));
  EXPECT_EQ(seen[0], (std::pair<uint64_t, int64_t>{7, 4096}));

  iovec rv{in, 4096};
  ASSERT_OK(q.Prepare({IoOp::Kind::kRead, fd, 8192, &rv, 1, 8}));
  EXPECT_EQ(q.Submit().value_or(-1), 1);
  ASSERT_OK(q.Wake());
  seen.clear();
  while (seen.size() < 2) ASSERT_OK(q.Reap(true, collect));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen[0], (std::pair<uint64_t, int64_t>{8, 4096}));
  EXPECT_EQ(seen[1].first, IoQueue::kWakeUserData);
  EXPECT_EQ(testing::FirstMismatch(in, 4096, 3, 8192), -1);
  EXPECT_EQ(q.Reap(false, collect).value_or(-1), 0);
}

TEST_F(PosixEnvTest, UringQueueHonoursTheContract) {
  absl::StatusOr<std::unique_ptr<IoQueue>> q = env_->NewIoQueue(4);
  ASSERT_OK(q);
  EXPECT_EQ((*q)->depth(), 4u);
  absl::StatusOr<int> fd =
      env_->OpenAt(dir_.fd(), "f", O_RDWR | O_CREAT | O_DIRECT, 0600);
  ASSERT_OK(fd);
  ExerciseQueue(**q, *fd);
  close(*fd);
}

TEST_F(PosixEnvTest, SyncFallbackQueueHonoursTheContract) {
  std::unique_ptr<IoQueue> q = NewSyncIoQueue(4);
  absl::StatusOr<int> fd =
      env_->OpenAt(dir_.fd(), "f", O_RDWR | O_CREAT | O_DIRECT, 0600);
  ASSERT_OK(fd);
  ExerciseQueue(*q, *fd);
  // Full after depth() prepared ops.
  uint8_t byte;
  iovec v{&byte, 1};
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(q->Prepare({IoOp::Kind::kRead, *fd, 0, &v, 1, uint64_t(i)}));
  }
  EXPECT_EQ(q->Prepare({IoOp::Kind::kRead, *fd, 0, &v, 1, 9}).code(),
            absl::StatusCode::kResourceExhausted);
  close(*fd);
}

// In a child process: io_uring_setup fails with ENOSYS (as it does when
// io_uring is disabled or filtered), then an engine must still move data.
// Exits 0 when the data came back right.
void RunWithoutIoUring(const std::string& dir) {
  // The death test's child made `dir` for itself and ends without running
  // destructors: it removes what it made on every way out.
  auto leave = [&dir](int code) {
    unlink((dir + "/f").c_str());
    rmdir(dir.c_str());
    _exit(code);
  };
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    leave(2);
  }
  absl::StatusOr<std::unique_ptr<IoEngine>> engine =
      IoEngine::Create(Env::Default(), IoEngineOptions{.queue_depth = 4});
  absl::StatusOr<int> fd = Env::Default()->OpenAt(
      AT_FDCWD, dir + "/f", O_RDWR | O_CREAT | O_DIRECT, 0600);
  if (!engine.ok() || !fd.ok()) leave(3);
  BackingFile file{*fd, true};
  testing::AlignedBuffer buf(256 * 1024);
  testing::FillPattern(buf.data(), buf.size(), 4, 0);
  iovec v = buf.iov(0, buf.size());
  absl::StatusOr<size_t> written =
      (*engine)->WriteIterToCacheSync(file, 0, {&v, 1});
  if (written.value_or(0) != buf.size()) {
    fprintf(stderr, "write: %s\n", written.status().ToString().c_str());
    leave(4);
  }
  std::memset(buf.data(), 0, buf.size());
  if ((*engine)->ReadToIterSync(file, 0, {&v, 1}).value_or(0) != buf.size() ||
      testing::FirstMismatch(buf.data(), buf.size(), 4, 0) != -1) {
    leave(5);
  }
  engine->reset();
  // A second queue falls back too, without a second warning.
  fprintf(stderr, "second queue\n");
  if (!Env::Default()->NewIoQueue(4).ok()) leave(6);
  fflush(stderr);
  leave(0);
}

TEST_F(PosixEnvTest, FallsBackToSynchronousIoWithoutIoUring) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(RunWithoutIoUring(dir_.path()), ::testing::ExitedWithCode(0),
              "io_uring_queue_init.*Function not implemented; falling back "
              "to synchronous pread/pwrite I/O\n(.|\n)*second queue\n$");
}

}  // namespace
}  // namespace cachefs
