#include "io/fault_injection_env.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "io/errno_status.h"
#include "io/io_engine.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using ::cachefs::testing::AllZero;
using ::cachefs::testing::FillPattern;
using ::cachefs::testing::FirstMismatch;

constexpr size_t kBlock = 8192;

class FaultInjectionEnvTest : public ::testing::Test {
 protected:
  int Open(const std::string& name) {
    absl::StatusOr<int> fd =
        env_.OpenAt(dir_.fd(), name, O_RDWR | O_CREAT, 0600);
    EXPECT_OK(fd);
    return fd.value_or(-1);
  }
  void Write(int fd, uint64_t seed, uint64_t pos, size_t len) {
    std::vector<uint8_t> buf(len);
    FillPattern(buf.data(), len, seed, pos);
    absl::StatusOr<size_t> n = env_.PWrite(fd, buf.data(), len, pos);
    ASSERT_OK(n);
    ASSERT_EQ(*n, len);
  }
  // Reads past the fault layer, into aligned memory in case fd is O_DIRECT.
  std::vector<uint8_t> Read(int fd, uint64_t pos, size_t len) {
    testing::AlignedBuffer buf(len);
    std::memset(buf.data(), 0xEE, len);
    absl::StatusOr<size_t> n = Env::Default()->PRead(fd, buf.data(), len, pos);
    EXPECT_OK(n);
    return std::vector<uint8_t>(buf.data(), buf.data() + len);
  }

  testing::TempDir dir_;
  FaultInjectionEnv env_{Env::Default()};
};

TEST_F(FaultInjectionEnvTest, SyncedDataSurvivesAndUnsyncedDataIsLost) {
  int fd = Open("f");
  Write(fd, 1, 0, kBlock);
  ASSERT_OK(env_.FDataSync(fd));
  Write(fd, 2, kBlock, kBlock);
  ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_EQ(FirstMismatch(Read(fd, 0, kBlock).data(), kBlock, 1, 0), -1);
  std::vector<uint8_t> lost = Read(fd, kBlock, kBlock);
  EXPECT_TRUE(AllZero(lost.data(), kBlock));
  close(fd);
}

TEST_F(FaultInjectionEnvTest, OverwriteAfterSyncIsLostToo) {
  int fd = Open("f");
  Write(fd, 1, 0, 3 * kBlock);
  ASSERT_OK(env_.FDataSync(fd));
  Write(fd, 2, kBlock, kBlock);  // the middle block, not synced
  ASSERT_OK(env_.DropUnsyncedData());
  std::vector<uint8_t> all = Read(fd, 0, 3 * kBlock);
  EXPECT_EQ(FirstMismatch(all.data(), kBlock, 1, 0), -1);
  EXPECT_TRUE(AllZero(all.data() + kBlock, kBlock));
  EXPECT_EQ(FirstMismatch(all.data() + 2 * kBlock, kBlock, 1, 2 * kBlock), -1);
  close(fd);
}

TEST_F(FaultInjectionEnvTest, FailedSyncLeavesDataUnsynced) {
  int fd = Open("f");
  Write(fd, 1, 0, kBlock);
  env_.SetError(FaultInjectionEnv::kSync, EIO, 1);
  absl::Status s = env_.FDataSync(fd);
  EXPECT_EQ(StatusToErrno(s), EIO) << s;
  ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_TRUE(AllZero(Read(fd, 0, kBlock).data(), kBlock));
  close(fd);
}

TEST_F(FaultInjectionEnvTest, WorksForFilesAlreadyUnlinked) {
  int open_fd = Open("kept-open");
  Write(open_fd, 1, 0, kBlock);
  ASSERT_OK(env_.UnlinkAt(dir_.fd(), "kept-open", 0));
  int closed_fd = Open("closed");
  Write(closed_fd, 2, 0, kBlock);
  close(closed_fd);
  ASSERT_OK(env_.UnlinkAt(dir_.fd(), "closed", 0));
  ASSERT_OK(env_.DropUnsyncedData());
  EXPECT_TRUE(AllZero(Read(open_fd, 0, kBlock).data(), kBlock));
  close(open_fd);
}

TEST_F(FaultInjectionEnvTest, XattrsSurviveTheCrash) {
  int fd = Open("f");
  Write(fd, 1, 0, kBlock);
  ASSERT_OK(env_.SetXattr(fd, "user.cachefs.test", "map-v1"));
  ASSERT_OK(env_.DropUnsyncedData());
  absl::StatusOr<std::string> v = env_.GetXattr(fd, "user.cachefs.test");
  ASSERT_OK(v);
  EXPECT_EQ(*v, "map-v1");
  close(fd);
}

TEST_F(FaultInjectionEnvTest, QueuedWritesAreTrackedAsUnsynced) {
  absl::StatusOr<std::unique_ptr<IoEngine>> engine =
      IoEngine::Create(&env_, IoEngineOptions{.queue_depth = 8});
  ASSERT_OK(engine);
  bool direct = false;
  absl::StatusOr<int> fd = OpenBackingFile(&env_, dir_.fd(), "obj",
                                           O_RDWR | O_CREAT, 0600, true, &direct);
  ASSERT_OK(fd);
  BackingFile file{*fd, direct};
  testing::AlignedBuffer buf(2 * kBlock);
  FillPattern(buf.data(), kBlock, 5, 0);
  FillPattern(buf.data() + kBlock, kBlock, 6, kBlock);
  iovec first = buf.iov(0, kBlock);
  ASSERT_OK((*engine)->WriteIterToCacheSync(file, 0, {&first, 1}));
  ASSERT_OK(env_.FDataSync(*fd));
  iovec second = buf.iov(kBlock, kBlock);
  ASSERT_OK((*engine)->WriteIterToCacheSync(file, kBlock, {&second, 1}));
  engine->reset();
  ASSERT_OK(env_.DropUnsyncedData());
  std::vector<uint8_t> back = Read(*fd, 0, 2 * kBlock);
  EXPECT_EQ(FirstMismatch(back.data(), kBlock, 5, 0), -1);
  EXPECT_TRUE(AllZero(back.data() + kBlock, kBlock));
  close(*fd);
}

TEST_F(FaultInjectionEnvTest, SetErrorWithCountClearsItself) {
  env_.SetError(FaultInjectionEnv::kOpen | FaultInjectionEnv::kNamespace,
                EACCES, 2);
  absl::StatusOr<int> fd = env_.OpenAt(dir_.fd(), "a", O_RDWR | O_CREAT, 0600);
  EXPECT_EQ(StatusToErrno(fd.status()), EACCES);
  absl::Status s = env_.MkdirAt(dir_.fd(), "d", 0700);
  EXPECT_EQ(StatusToErrno(s), EACCES);
  EXPECT_NE(s.message().find("injected"), absl::string_view::npos) << s;
  EXPECT_OK(env_.MkdirAt(dir_.fd(), "d", 0700));
  EXPECT_EQ(env_.injected_faults(), 2u);
  // Faults apply only to their op classes.
  env_.SetError(FaultInjectionEnv::kGetXattr, EIO);
  fd = env_.OpenAt(dir_.fd(), "a", O_RDWR | O_CREAT, 0600);
  ASSERT_OK(fd);
  EXPECT_EQ(StatusToErrno(env_.GetXattr(*fd, "user.x").status()), EIO);
  EXPECT_OK(env_.SetXattr(*fd, "user.x", "1"));
  env_.ClearFaults();
  EXPECT_OK(env_.GetXattr(*fd, "user.x"));
  close(*fd);
}

TEST_F(FaultInjectionEnvTest, ShortPWriteMovesHalf) {
  int fd = Open("f");
  env_.SetShortWrites(true);
  std::vector<uint8_t> buf(5 * 4096, 1);
  absl::StatusOr<size_t> n = env_.PWrite(fd, buf.data(), buf.size(), 0);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 2 * 4096u);
  n = env_.PWrite(fd, buf.data(), 100, 0);  // too small to shorten
  ASSERT_OK(n);
  EXPECT_EQ(*n, 100u);
  close(fd);
}

TEST_F(FaultInjectionEnvTest, NoSpaceFailsGrowthButNotPunchOrShrink) {
  int fd = Open("f");
  ASSERT_OK(env_.SetXattr(fd, "user.map", std::string(64, 'a')));
  env_.SetNoSpace(true);
  std::vector<uint8_t> buf(4096, 1);
  EXPECT_EQ(StatusToErrno(env_.PWrite(fd, buf.data(), 4096, 0).status()),
            ENOSPC);
  EXPECT_EQ(StatusToErrno(env_.FAllocate(fd, 0, 0, 1 << 20)), ENOSPC);
  EXPECT_OK(env_.FAllocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                           4096));
  EXPECT_EQ(StatusToErrno(env_.SetXattr(fd, "user.map", std::string(128, 'b'))),
            ENOSPC);
  EXPECT_OK(env_.SetXattr(fd, "user.map", std::string(32, 'c')));
  env_.SetNoSpace(false);
  EXPECT_OK(env_.PWrite(fd, buf.data(), 4096, 0));
  close(fd);
}

}  // namespace
}  // namespace cachefs
