// Requests to the origin per user operation, counted on real mounts: the
// origin_* counters of `cachefs-ctl stats` are checked as numbers, never as
// timings. Over SSHFS each counted request is one SFTP round trip.
//
// What the coherency rules allow, and so what is asserted:
//   - close-to-open: a warm open asks for the file's attributes once, and
//     a name known from before (even past entry_timeout, even after the
//     kernel forgot it or the daemon restarted) costs no lookup besides;
//   - nocto within attr_timeout: nothing at all, also after drop_caches
//     and after a remount on the same cache;
//   - a listing hands out attributes: stats of what was listed ask nothing
//     within the timeouts.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/files.h"

namespace cachefs::testing {
namespace {

constexpr int kListed = 40;

class RoundTripTest : public CachefsMountTest {
 protected:
  void SetUp() override {
    CachefsMountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(mkdir(ServedPath("d").c_str(), 0755), 0);
    WriteServed("d/f", RandomData(16 * 1024, 1));
    ASSERT_EQ(mkdir(ServedPath("many").c_str(), 0755), 0);
    for (int i = 0; i < kListed; ++i) {
      WriteServed("many/f" + std::to_string(i), RandomData(100, i));
    }
  }
  // What one call of `op` asked of the origin, by counter.
  template <typename Op>
  std::map<std::string, int64_t> Asked(Op op) {
    std::map<std::string, uint64_t> before = Stats();
    op();
    std::map<std::string, uint64_t> after = Stats();
    std::map<std::string, int64_t> delta;
    for (const auto& [name, value] : after) {
      delta[name] = static_cast<int64_t>(value - before[name]);
    }
    return delta;
  }
  void DropKernelCaches() {
    sync();
    std::ofstream("/proc/sys/vm/drop_caches") << "3";
  }
  void ReadF() { EXPECT_EQ(ReadMounted("d/f"), RandomData(16 * 1024, 1)); }
  // Lists `dir` through the mount; returns how many names it holds.
  int CountListed(const std::string& dir) {
    DIR* d = opendir(MountedPath(dir).c_str());
    EXPECT_NE(d, nullptr) << dir;
    if (d == nullptr) return -1;
    int listed = 0;
    while (dirent* e = readdir(d)) listed += e->d_name[0] != '.';
    closedir(d);
    return listed;
  }
};

TEST_P(RoundTripTest, AWarmOpenUnderCloseToOpenAsksTheOriginOnce) {
  Mount("attr_timeout=0.3,entry_timeout=0.3");
  ReadF();  // cold
  for (bool drop : {false, true}) {
    if (drop) {
      CACHEFS_REQUIRE(RootPrerequisite());
      DropKernelCaches();
    }
    // Past both timeouts: the kernel asks again for the names on the way.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto asked = Asked([&] { ReadF(); });
    SCOPED_TRACE(drop ? "after drop_caches" : "dentries kept");
    EXPECT_EQ(asked["origin_attr_fetches"], 1);
    EXPECT_EQ(asked["origin_calls"], 1);
    EXPECT_EQ(asked["bytes_read_from_origin"], 0);
  }
}

// A cold open opens the origin file alongside its check, and that file is
// the one the first read uses: one open, one read, one check.
TEST_P(RoundTripTest, AColdOpenOpensTheOriginFileOnceForItsCheckAndRead) {
  Mount("attr_timeout=30,entry_timeout=30");
  struct stat st;
  ASSERT_EQ(stat(MountedPath("d/f").c_str(), &st), 0);  // looked up
  auto asked = Asked([&] { ReadF(); });
  EXPECT_EQ(asked["origin_attr_fetches"], 1);
  EXPECT_EQ(asked["origin_opens"], 1);
  EXPECT_EQ(asked["origin_reads"], 1);
  EXPECT_EQ(asked["bytes_read_from_origin"], 16 * 1024);
}

// Replaced on the server between the lookup and the open: the origin file
// opened alongside the check may be either one, and only the check says
// which the name leads to now. The new one is read, now and warm.
TEST_P(RoundTripTest, AFileReplacedAfterItsLookupIsReadAsTheNewOne) {
  Mount("attr_timeout=30,entry_timeout=30");
  for (int i = 0; i < 20; ++i) {
    const std::string name = "d/r" + std::to_string(i);
    WriteServed(name, RandomData(1000 + i, i));
    struct stat st;
    ASSERT_EQ(stat(MountedPath(name).c_str(), &st), 0);
    ASSERT_EQ(st.st_size, 1000 + i);
    const std::string replacement = RandomData(3000 + i, 100 + i);
    WriteServed(name + ".new", replacement);
    ASSERT_EQ(rename(ServedPath(name + ".new").c_str(),
                     ServedPath(name).c_str()),
              0);
    EXPECT_EQ(ReadMounted(name), replacement) << i;
    CACHEFS_REQUIRE(RootPrerequisite());
    DropKernelCaches();
    EXPECT_EQ(ReadMounted(name), replacement) << i << " warm";
  }
}

TEST_P(RoundTripTest, AWarmOpenUnderCloseToOpenAsksTheOriginOnceAfterARemount) {
  const std::string options = "attr_timeout=0.3,entry_timeout=0.3";
  Mount(options);
  ReadF();
  Unmount();
  // Past both timeouts: the names are known only provisionally.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Mount(options);
  auto asked = Asked([&] { ReadF(); });
  EXPECT_EQ(asked["origin_attr_fetches"], 1);
  // On a FUSE origin the new daemon also opens the directory once (a
  // walk), for this file and every later one in it.
  EXPECT_LE(asked["origin_walks"], 1);
  EXPECT_EQ(asked["origin_calls"], 1 + asked["origin_walks"]);
  EXPECT_EQ(asked["bytes_read_from_origin"], 0);
}

TEST_P(RoundTripTest, AFileThatBecameADirectoryIsWalkedThroughAtTheNextTry) {
  Mount("attr_timeout=0.3,entry_timeout=0.3");
  ReadF();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Replaced on the server: cachefs knows d/f, from before, as a file.
  ASSERT_EQ(unlink(ServedPath("d/f").c_str()), 0);
  ASSERT_EQ(mkdir(ServedPath("d/f").c_str(), 0755), 0);
  WriteServed("d/f/g", "inside");
  // A name known past entry_timeout is answered provisionally once (the
  // kernel may then refuse the walk: ENOTDIR), never twice unchecked.
  int fd = open(MountedPath("d/f/g").c_str(), O_RDONLY);
  if (fd < 0) {
    EXPECT_EQ(errno, ENOTDIR);
    fd = open(MountedPath("d/f/g").c_str(), O_RDONLY);
  }
  ASSERT_GE(fd, 0) << strerror(errno);
  char buf[16] = {};
  EXPECT_EQ(read(fd, buf, sizeof(buf)), 6);
  EXPECT_EQ(std::string(buf), "inside");
  close(fd);
}

TEST_P(RoundTripTest, CloseToOpenStillSeesAChangeAtTheNextOpen) {
  Mount("attr_timeout=0.3,entry_timeout=0.3");
  ReadF();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string changed = RandomData(20000, 2);
  WriteServed("d/f", changed);
  EXPECT_EQ(ReadMounted("d/f"), changed);
  unlink(ServedPath("d/f").c_str());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  struct stat st;
  EXPECT_NE(stat(MountedPath("d/f").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

// Changed on the server while cachefs was not mounted, to another size:
// the remounted daemon answers the lookup from its attribute snapshot (the
// old size), and the open's check must make the kernel drop that, or the
// read ends at the old size (or runs past the new one into zeros).
TEST_P(RoundTripTest, CloseToOpenSeesAChangeMadeWhileUnmounted) {
  const std::string options = "attr_timeout=30,entry_timeout=30";
  Mount(options);
  ReadF();
  const std::string before = ReadMounted("d/f");
  Unmount();
  for (size_t size : {before.size() / 3, before.size() * 3 + 11}) {
    const std::string changed = RandomData(size, static_cast<uint32_t>(size));
    WriteServed("d/f", changed);
    // SSHFS shows whole seconds: a change within the second of the last
    // one would look like none.
    struct stat st;
    ASSERT_EQ(stat(ServedPath("d/f").c_str(), &st), 0);
    timespec times[2] = {{st.st_mtim.tv_sec + 7, 0},
                         {st.st_mtim.tv_sec + 7, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, ServedPath("d/f").c_str(), times, 0), 0);
    Mount(options);
    EXPECT_TRUE(SameBytes(ReadMounted("d/f"), changed)) << size;
    struct stat shown;
    ASSERT_EQ(stat(MountedPath("d/f").c_str(), &shown), 0);
    EXPECT_EQ(static_cast<size_t>(shown.st_size), size);
    Unmount();
  }
}

TEST_P(RoundTripTest, NoctoWithinTheTimeoutsAsksNothing) {
  Mount("nocto,attr_timeout=3600,entry_timeout=3600");
  ReadF();  // cold
  auto asked = Asked([&] { ReadF(); });
  EXPECT_EQ(asked["origin_calls"], 0);
  CACHEFS_REQUIRE(RootPrerequisite());
  DropKernelCaches();  // the kernel forgets; cachefs does not
  asked = Asked([&] { ReadF(); });
  EXPECT_EQ(asked["origin_calls"], 0);
  EXPECT_EQ(asked["bytes_read_from_cache"], 16 * 1024);
}

TEST_P(RoundTripTest, NoctoWithinTheTimeoutsAsksNothingAfterARemount) {
  const std::string options = "nocto,attr_timeout=3600,entry_timeout=3600";
  Mount(options);
  ReadF();
  Unmount();
  Mount(options);
  auto asked = Asked([&] { ReadF(); });
  EXPECT_EQ(asked["origin_calls"], 0);
  EXPECT_EQ(asked["bytes_read_from_origin"], 0);
  // A crash leaves nothing behind: the next mount asks again.
  Kill9();
  Mount(options);
  asked = Asked([&] { ReadF(); });
  EXPECT_GE(asked["origin_attr_fetches"], 1);
  EXPECT_EQ(asked["bytes_read_from_origin"], 0);
}

TEST_P(RoundTripTest, StatsOfAListedDirectoryAskNothingPerFile) {
  Mount("attr_timeout=60,entry_timeout=60");
  auto ls_l = [&] {
    auto result = RunProgram({"ls", "-l", MountedPath("many")},
                             absl::Seconds(30));
    ASSERT_OK(result);
    EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
    EXPECT_NE(result->stdout_text.find("f39"), std::string::npos);
  };
  auto first = Asked(ls_l);
  EXPECT_GE(first["origin_attr_fetches"], kListed);
  auto again = Asked(ls_l);
  EXPECT_EQ(again["origin_attr_fetches"], 0);
  if (GetParam() == OriginKind::kSshfs) {
    // No extended attributes over SFTP: `ls -l`'s two getxattr calls per
    // file stop at the kernel, and only the listing itself is asked.
    EXPECT_LE(again["origin_calls"], 1);
  }
  CACHEFS_REQUIRE(RootPrerequisite());
  DropKernelCaches();
  auto stats = Asked([&] {
    for (int i = 0; i < kListed; ++i) {
      struct stat st;
      ASSERT_EQ(lstat(MountedPath("many/f" + std::to_string(i)).c_str(), &st),
                0);
      EXPECT_EQ(st.st_size, 100);
    }
  });
  EXPECT_EQ(stats["origin_calls"], 0);
}

// Names known from before, past the timeouts (the attribute snapshot
// keeps them across a remount): a listing answers them provisionally and
// asks the origin nothing; each open still makes its own check.
TEST_P(RoundTripTest, AListingOfKnownNamesAsksNothingAfterARemount) {
  Mount("attr_timeout=0.3,entry_timeout=0.3");
  auto list = [&] { EXPECT_EQ(CountListed("many"), kListed); };
  auto first = Asked(list);
  EXPECT_GE(first["origin_attr_fetches"], kListed);
  Unmount();
  Mount("attr_timeout=0.3,entry_timeout=0.3");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto again = Asked(list);
  EXPECT_LE(again["origin_attr_fetches"], 1);  // the directory's own, if any
  auto read =
      Asked([&] { EXPECT_EQ(ReadMounted("many/f7"), RandomData(100, 7)); });
  EXPECT_EQ(read["origin_attr_fetches"], 1);
  EXPECT_EQ(read["bytes_read_from_origin"], 100);
}

// More names than one listing request carries: every request of the
// listing brings attributes, so the stats after it ask nothing, as after
// a small directory's.
TEST_P(RoundTripTest, AListingOfALargeDirectoryHandsOutEveryAttribute) {
  constexpr int kLarge = 300;
  ASSERT_EQ(mkdir(ServedPath("large").c_str(), 0755), 0);
  for (int i = 0; i < kLarge; ++i) {
    WriteServed("large/f" + std::to_string(i), RandomData(100, i));
  }
  Mount("attr_timeout=60,entry_timeout=60");
  int listed = 0;
  auto listing = Asked([&] { listed = CountListed("large"); });
  EXPECT_EQ(listed, kLarge);
  EXPECT_GE(listing["origin_attr_fetches"], kLarge);
  auto stats = Asked([&] {
    for (int i = 0; i < kLarge; ++i) {
      struct stat st;
      ASSERT_EQ(lstat(MountedPath("large/f" + std::to_string(i)).c_str(), &st),
                0);
      EXPECT_EQ(st.st_size, 100);
    }
  });
  EXPECT_EQ(stats["origin_calls"], 0);
}

INSTANTIATE_TEST_SUITE_P(Origins, RoundTripTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
