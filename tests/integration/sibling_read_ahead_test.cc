// Reading ahead across the files of a directory (sibling_read_ahead.h), on
// real mounts: a reader going through a listed directory in order finds the
// next small files fetched before it opens them, each fetched once; what
// was fetched ahead is never read once the file changed, on the origin or
// through cachefs; a reader out of order, or the option at 0, fetches
// nothing ahead.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/files.h"

namespace cachefs::testing {
namespace {

constexpr int kFiles = 40;

std::string Name(int i) {
  char name[16];
  snprintf(name, sizeof(name), "d/f%02d", i);
  return name;
}

class SiblingReadAheadTest : public CachefsMountTest {
 protected:
  void SetUp() override {
    CachefsMountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(mkdir(ServedPath("d").c_str(), 0755), 0);
    for (int i = 0; i < kFiles; ++i) WriteServed(Name(i), Data(i));
  }
  static std::string Data(int i) { return RandomData(3000 + 100 * i, i); }
  // Lists "d" through the mount, as a reader does before going through
  // it; returns the files' numbers in the order listed.
  std::vector<int> List() {
    std::vector<int> listed;
    DIR* dir = opendir(MountedPath("d").c_str());
    EXPECT_NE(dir, nullptr);
    if (dir == nullptr) return listed;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') listed.push_back(std::stoi(e->d_name + 1));
    }
    closedir(dir);
    EXPECT_EQ(listed.size(), static_cast<size_t>(kFiles));
    return listed;
  }
  // `count` files in which no file follows the one before it, by name or
  // in `listed` order: a reader going through them in no order.
  static std::vector<int> NoOrder(const std::vector<int>& listed,
                                  size_t count) {
    std::vector<int> place(kFiles, 0);
    for (size_t i = 0; i < listed.size(); ++i) place[listed[i]] = i;
    std::vector<int> picked;
    std::vector<bool> used(kFiles, false);
    for (int step = 0; picked.size() < count && step < kFiles * kFiles;
         ++step) {
      const int f = (step * 17 + 5) % kFiles;
      if (used[f]) continue;
      if (!picked.empty()) {
        const int prev = picked.back();
        if (f == prev + 1 || place[f] == place[prev] + 1) continue;
      }
      used[f] = true;
      picked.push_back(f);
    }
    EXPECT_EQ(picked.size(), count);
    return picked;
  }
  // Waits until `counter` reaches `at_least` (the fetches run in the
  // background); false after 20 s.
  bool WaitForCounter(const std::string& counter, uint64_t at_least) {
    for (int i = 0; i < 400; ++i) {
      if (Stats()[counter] >= at_least) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // Reads file `i` once `fetched` files have been fetched ahead. The
  // fetches start in the order queued, so once that many are done, the
  // fetch of every file queued before the last one done has started, and
  // the open of such a file waits for it. A reader faster than the fetches
  // is served too, but fetches itself the files whose fetch had not
  // started: how many depends on timing, which a count cannot.
  void ReadOnceFetched(int i, uint64_t fetched) {
    ASSERT_TRUE(WaitForCounter("files_read_ahead", fetched)) << Name(i);
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), Data(i))) << Name(i);
  }
  // Mounts, lists "d" and reads its first two files by name: the next 16
  // are then fetched ahead (waited for).
  void ReadTheFirstTwoInOrder() {
    Mount();
    List();
    ASSERT_TRUE(SameBytes(ReadMounted(Name(0)), Data(0)));
    ASSERT_TRUE(SameBytes(ReadMounted(Name(1)), Data(1)));
    ASSERT_TRUE(WaitForCounter("files_read_ahead", 16));
  }
  uint64_t TotalBytes() const {
    uint64_t total = 0;
    for (int i = 0; i < kFiles; ++i) total += Data(i).size();
    return total;
  }
};

TEST_P(SiblingReadAheadTest, AReaderInNameOrderFindsTheNextFilesFetched) {
  Mount();
  List();
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_NO_FATAL_FAILURE(ReadOnceFetched(i, std::max(0, i - 1)));
  }
  std::map<std::string, uint64_t> stats = Stats();
  // The first two opens show the order; every later file was fetched
  // ahead and taken by its open.
  EXPECT_EQ(stats["files_read_ahead_used"], kFiles - 2);
  EXPECT_EQ(stats["files_read_ahead"], kFiles - 2);
  // Each file came from the origin once, ahead or by its read.
  EXPECT_EQ(stats["bytes_read_from_origin"], TotalBytes());
  EXPECT_EQ(stats["origin_reads"], static_cast<uint64_t>(kFiles));
  // And it is cached: read again, nothing comes from the origin.
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), Data(i))) << Name(i);
  }
  EXPECT_EQ(Stats()["bytes_read_from_origin"], TotalBytes());
}

TEST_P(SiblingReadAheadTest, AReaderInListedOrderFindsTheNextFilesFetched) {
  Mount();
  int place = 0;
  for (int i : List()) {
    ASSERT_NO_FATAL_FAILURE(ReadOnceFetched(i, std::max(0, place - 1)));
    ++place;
  }
  EXPECT_EQ(Stats()["files_read_ahead_used"], kFiles - 2);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], TotalBytes());
}

// Files already cached keep the order going; only the others are fetched.
TEST_P(SiblingReadAheadTest, CachedFilesAmongTheOthersKeepTheOrder) {
  Mount();
  const std::vector<int> cached = NoOrder(List(), 3);
  for (int i : cached)
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), Data(i))) << Name(i);
  ASSERT_EQ(Stats()["files_read_ahead"], 0u);
  uint64_t fetched = 0;  // files from the third on that were not cached
  for (int i = 0; i < kFiles; ++i) {
    const bool was_cached =
        std::find(cached.begin(), cached.end(), i) != cached.end();
    if (i >= 2 && !was_cached) ++fetched;
    ASSERT_NO_FATAL_FAILURE(ReadOnceFetched(i, fetched));
  }
  std::map<std::string, uint64_t> stats = Stats();
  EXPECT_EQ(stats["files_read_ahead_used"], kFiles - 2 - cached.size());
  EXPECT_EQ(stats["bytes_read_from_origin"], TotalBytes());
}

// Fetched ahead, then changed on the server before its open: the open's
// check sees the change, and the new data is read.
TEST_P(SiblingReadAheadTest,
       AFileChangedOnTheOriginAfterItWasFetchedIsReadNew) {
  ASSERT_NO_FATAL_FAILURE(ReadTheFirstTwoInOrder());
  // Same size, another modification time: only the attributes tell.
  const std::string changed = RandomData(Data(5).size(), 99);
  WriteServed(Name(5), changed);
  struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, ServedPath(Name(5)).c_str(), times, 0), 0);
  for (int i = 2; i < 8; ++i) {
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), i == 5 ? changed : Data(i)))
        << Name(i);
  }
  EXPECT_EQ(Stats()["files_read_ahead_used"], 5u);
}

// Fetched ahead, then rewritten through cachefs with data of the same size
// (over SSHFS, often within the same second: the attributes cannot tell).
TEST_P(SiblingReadAheadTest,
       AFileWrittenThroughCachefsAfterItWasFetchedIsReadNew) {
  ASSERT_NO_FATAL_FAILURE(ReadTheFirstTwoInOrder());
  const std::string rewritten = RandomData(Data(6).size(), 77);
  {
    int fd = open(MountedPath(Name(6)).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, rewritten.data(), rewritten.size(), 0),
              static_cast<ssize_t>(rewritten.size()));
    ASSERT_EQ(close(fd), 0);
  }
  for (int i = 2; i < 8; ++i) {
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), i == 6 ? rewritten : Data(i)))
        << Name(i);
  }
}

// Fetched ahead, then changed on the server in a way its attributes do not
// show (same size, same modification time): `cachefs-ctl invalidate` is
// the way out, for a file and for a directory (-r), and it drops what was
// fetched ahead too.
// Over SSHFS only: a local origin's ctime shows every change.
class SiblingReadAheadOverSshfsTest : public SiblingReadAheadTest {};

TEST_P(SiblingReadAheadOverSshfsTest, InvalidateDropsWhatWasFetchedAhead) {
  ASSERT_NO_FATAL_FAILURE(ReadTheFirstTwoInOrder());
  std::map<int, std::string> changed;
  for (int i : {4, 5, 6}) {
    struct stat before;
    ASSERT_EQ(stat(ServedPath(Name(i)).c_str(), &before), 0);
    changed[i] = RandomData(Data(i).size(), 50 + i);
    WriteServed(Name(i), changed[i]);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(utimensat(AT_FDCWD, ServedPath(Name(i)).c_str(), times, 0), 0);
  }
  auto invalidate = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("cachefs-ctl"), "invalidate"});
    auto result = RunProgram(args, absl::Seconds(20));
    ASSERT_OK(result);
    EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  };
  invalidate({mnt_.path(), MountedPath(Name(4))});
  for (int i = 2; i < 6; ++i) {
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), i == 4 ? changed[4] : Data(i)))
        << Name(i);
  }
  // Not invalidated: the change is invisible, and what was fetched is
  // served (else this test would show nothing).
  ASSERT_EQ(Stats()["files_read_ahead_used"], 3u);
  invalidate({mnt_.path(), MountedPath("d"), "-r"});
  EXPECT_TRUE(SameBytes(ReadMounted(Name(6)), changed[6]));
}

TEST_P(SiblingReadAheadTest, AReaderOutOfOrderFetchesNothingAhead) {
  Mount();
  for (int i : NoOrder(List(), 10)) {
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), Data(i))) << Name(i);
  }
  EXPECT_EQ(Stats()["files_read_ahead"], 0u);
  EXPECT_EQ(Stats()["origin_reads"], 10u);
}

TEST_P(SiblingReadAheadTest, ZeroFilesAheadTurnsItOff) {
  Mount("readahead_files=0");
  List();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(SameBytes(ReadMounted(Name(i)), Data(i))) << Name(i);
  }
  EXPECT_EQ(Stats()["files_read_ahead"], 0u);
  EXPECT_EQ(Stats()["origin_reads"], 10u);
}

INSTANTIATE_TEST_SUITE_P(Origins, SiblingReadAheadTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);
INSTANTIATE_TEST_SUITE_P(Origins, SiblingReadAheadOverSshfsTest,
                         ::testing::Values(OriginKind::kSshfs), OriginKindName);

}  // namespace
}  // namespace cachefs::testing
