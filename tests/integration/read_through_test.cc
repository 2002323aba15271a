// Reading through a real cachefs mount over a local directory and over a
// real SSHFS export: every byte compared with the origin, persistence
// across remounts, coherency after changes on the server, and concurrency.

#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kGranule = 256 * 1024;

const std::vector<size_t>& Sizes() {
  static const std::vector<size_t> sizes = {
      0, 1, 4095, 4096, kGranule - 1, kGranule, kGranule + 1,
      10 * 1024 * 1024 + 7};
  return sizes;
}

std::string SizeName(size_t size) { return "file-" + std::to_string(size); }

class ReadThroughTest : public CachefsMountTest {
 protected:
  void WriteAllSizes() {
    for (size_t size : Sizes()) {
      WriteServed(SizeName(size), RandomData(size, static_cast<uint32_t>(size)));
    }
  }
  void ExpectAllSizesRead() {
    for (size_t size : Sizes()) {
      EXPECT_EQ(ReadMounted(SizeName(size)),
                RandomData(size, static_cast<uint32_t>(size)))
          << SizeName(size);
    }
  }
};

TEST_P(ReadThroughTest, EveryByteMatchesTheOriginColdAndWarm) {
  WriteAllSizes();
  Mount();
  ExpectAllSizesRead();
  uint64_t total = 0;
  for (size_t s : Sizes()) total += s;
  auto cold = Stats();
  EXPECT_GE(cold["bytes_read_from_origin"], total);
  ExpectAllSizesRead();  // page cache dropped: served by the cache
  auto warm = Stats();
  EXPECT_EQ(warm["bytes_read_from_origin"], cold["bytes_read_from_origin"]);
  EXPECT_GT(warm["bytes_read_from_cache"], cold["bytes_read_from_cache"]);
  EXPECT_EQ(warm["origin_opens"], cold["origin_opens"]);
}

TEST_P(ReadThroughTest, RemountServesEverythingFromTheCache) {
  WriteAllSizes();
  Mount();
  ExpectAllSizesRead();
  Unmount();
  Mount();
  ExpectAllSizesRead();
  auto stats = Stats();
  EXPECT_EQ(stats["bytes_read_from_origin"], 0u);
  EXPECT_EQ(stats["origin_opens"], 0u);
  EXPECT_EQ(stats["lookups_stale"], 0u);
  EXPECT_GE(stats["lookups_positive"], Sizes().size() - 1);
  EXPECT_GT(stats["objects_stored"], 0u);
}

// Stopped (SIGTERM, as systemd stops it) while a file is held open: the
// kernel never releases that file, and what it cached is still kept for
// the next mount, not only what the last periodic checkpoint saw.
TEST_P(ReadThroughTest, StoppingTheDaemonKeepsWhatAFileHeldOpenCached) {
  const std::string data = RandomData(8 * kGranule + 5, 7);
  WriteServed("held", data);
  Mount();
  int fd = open(MountedPath("held").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::string got(data.size(), '\0');
  ASSERT_EQ(pread(fd, got.data(), got.size(), 0),
            static_cast<ssize_t>(data.size()));
  ASSERT_EQ(got, data);
  // The stores of the read are under way; the stop must wait for them.
  ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
  // Held through the stop. Under load the process's exit can wait for
  // the last handle on the mount to go, so it is let go after a while.
  auto code = daemon_->WaitForExit(absl::Seconds(5));
  close(fd);
  if (!code.ok()) code = daemon_->WaitForExit(absl::Seconds(20));
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0) << daemon_->ReadStderr();
  daemon_.reset();  // drops the mount if the daemon left it behind
  Mount();
  EXPECT_EQ(ReadMounted("held"), data);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
}

TEST_P(ReadThroughTest, SparseFourGiBFileReadAtScatteredOffsets) {
  constexpr uint64_t kSize = uint64_t{4} << 30;
  {
    int fd = open(ServedPath("sparse").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kSize), 0);
    for (uint64_t i = 0; i < 16; ++i) {
      std::string chunk = RandomData(4096, 100 + i);
      uint64_t off = i * (kSize / 16) + i * 12345;
      ASSERT_EQ(pwrite(fd, chunk.data(), chunk.size(), off), 4096);
    }
    close(fd);
  }
  Mount();
  for (int pass = 0; pass < 2; ++pass) {
    int mounted = open(MountedPath("sparse").c_str(), O_RDONLY);
    int served = open(ServedPath("sparse").c_str(), O_RDONLY);
    ASSERT_GE(mounted, 0);
    ASSERT_GE(served, 0);
    posix_fadvise(mounted, 0, 0, POSIX_FADV_DONTNEED);
    struct stat st;
    ASSERT_EQ(fstat(mounted, &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);
    for (uint64_t i = 0; i < 16; ++i) {
      uint64_t data = i * (kSize / 16) + i * 12345;
      uint64_t off = data < 1000 ? 0 : data - 1000;  // straddles the data
      std::string want(10000, '\0'), got(10000, '\0');
      ASSERT_EQ(pread(served, want.data(), want.size(), off), 10000);
      ASSERT_EQ(pread(mounted, got.data(), got.size(), off), 10000);
      EXPECT_EQ(got, want) << "offset " << off << " pass " << pass;
    }
    std::string tail(100, 'x');
    EXPECT_EQ(pread(mounted, tail.data(), 100, kSize - 50), 50);
    close(mounted);
    close(served);
  }
}

TEST_P(ReadThroughTest, RandomRangesFromEightThreads) {
  const size_t kSize = 10 * 1024 * 1024 + 7;
  const std::string content = RandomData(kSize, 77);
  WriteServed("random", content);
  Mount();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads bypass the page cache, so the daemon sees them.
      int fd = open(MountedPath("random").c_str(),
                    O_RDONLY | (t % 2 ? O_DIRECT : 0));
      if (fd < 0) {
        mismatches[t] = -1;
        return;
      }
      std::mt19937 rng(t);
      void* buf = aligned_alloc(4096, 1 << 20);
      for (int i = 0; i < 100; ++i) {
        uint64_t off = rng() % kSize;
        size_t len = 1 + rng() % (600 * 1024);
        ssize_t n = pread(fd, buf, len, off);
        size_t want = std::min<uint64_t>(len, kSize - off);
        if (n != static_cast<ssize_t>(want) ||
            content.compare(off, want, static_cast<char*>(buf), want) != 0) {
          ++mismatches[t];
        }
      }
      free(buf);
      close(fd);
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(mismatches[t], 0) << "thread " << t << "; cachefs said:\n"
                                << daemon_->ReadStderr();
  }
}

TEST_P(ReadThroughTest, ChangesOnTheOriginAreSeenAtTheNextOpen) {
  const std::string before = RandomData(3 * kGranule, 5);
  WriteServed("changing", before);
  WriteServed("growing", before);
  Mount();
  ASSERT_EQ(ReadMounted("changing"), before);
  ASSERT_EQ(ReadMounted("growing"), before);
  // Same size, new bytes. SSHFS reports whole-second mtimes, so the change
  // is dated well apart from the first version.
  const std::string after = RandomData(3 * kGranule, 6);
  WriteServed("changing", after);
  const std::string longer = RandomData(5 * kGranule + 3, 7);
  WriteServed("growing", longer);
  for (const char* name : {"changing", "growing"}) {
    struct timespec times[2] = {{0, UTIME_OMIT}, {time(nullptr) + 10, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, ServedPath(name).c_str(), times, 0), 0);
  }
  // Without dropping the page cache first: the open must do it.
  auto read_plain = [&](const std::string& name) {
    int fd = open(MountedPath(name).c_str(), O_RDONLY);
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
    close(fd);
    return out;
  };
  EXPECT_EQ(read_plain("changing"), after);
  EXPECT_EQ(read_plain("growing"), longer);
  EXPECT_GE(Stats()["invalidations"] + Stats()["lookups_stale"], 2u);
  // And the fresh data is what the cache now keeps.
  Unmount();
  Mount();
  EXPECT_EQ(ReadMounted("changing"), after);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
}

TEST_P(ReadThroughTest, DirectAndSyncOpensReadCorrectBytes) {
  const std::string content = RandomData(kGranule * 2 + 999, 9);
  WriteServed("flags", content);
  Mount();
  EXPECT_EQ(ReadMounted("flags", O_DIRECT), content);
  EXPECT_EQ(ReadMounted("flags", O_SYNC), content);
  EXPECT_EQ(ReadMounted("flags", O_DIRECT | O_SYNC), content);
}

TEST_P(ReadThroughTest, DirectoriesSymlinksAndChangesReachTheServer) {
  ASSERT_EQ(mkdir(ServedPath("dir").c_str(), 0755), 0);
  WriteServed("dir/a", "alpha");
  ASSERT_EQ(symlink("dir/a", ServedPath("link").c_str()), 0);
  Mount();
  EXPECT_EQ(ReadMounted("link"), "alpha");
  char target[64] = {};
  EXPECT_EQ(readlink(MountedPath("link").c_str(), target, sizeof(target)), 5);
  EXPECT_STREQ(target, "dir/a");
  struct stat st;
  ASSERT_EQ(stat(MountedPath("dir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(access(MountedPath("dir/a").c_str(), R_OK), 0);
  int fd = open(MountedPath("dir/a").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0) << strerror(errno);
  EXPECT_EQ(write(fd, "beta", 4), 4);
  EXPECT_EQ(close(fd), 0);
  EXPECT_EQ(ReadMounted("link"), "alphabeta");
  EXPECT_EQ(mkdir(MountedPath("new").c_str(), 0755), 0);
  ASSERT_EQ(stat(ServedPath("new").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  std::ifstream served(ServedPath("dir/a"));
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(served), {}),
            "alphabeta");
  errno = 0;
  EXPECT_LT(open(MountedPath("missing").c_str(), O_RDONLY), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST_P(ReadThroughTest, LargeDirectoryListsEveryNameOnce) {
  ASSERT_EQ(mkdir(ServedPath("big").c_str(), 0755), 0);
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < 1500; ++i) {
    std::string name = "entry-with-a-longish-name-" + std::to_string(i);
    WriteServed("big/" + name, std::to_string(i));
    want.insert(name);
  }
  Mount();
  for (int pass = 0; pass < 2; ++pass) {
    DIR* dir = opendir(MountedPath("big").c_str());
    ASSERT_NE(dir, nullptr);
    std::multiset<std::string> got;
    while (struct dirent* d = readdir(dir)) got.insert(d->d_name);
    closedir(dir);
    EXPECT_EQ(got, std::multiset<std::string>(want.begin(), want.end()))
        << "pass " << pass;
  }
  EXPECT_EQ(ReadMounted("big/entry-with-a-longish-name-777"), "777");
}

TEST_P(ReadThroughTest, CacheFaultsNeverFailARead) {
  const std::string content = RandomData(4 * kGranule + 1, 11);
  WriteServed("f", content);
  Mount();
  ASSERT_EQ(ReadMounted("f"), content);
  Unmount();
  // Corrupt every record, remount: stale, refetched, correct.
  auto corrupt = RunProgram(
      {"sh", "-c", "find " + cache_dir() + "/volumes -type f ! -name '*.*' "
                   "-exec setfattr -n user.cachefs.object -v junk {} +"},
      absl::Seconds(10));
  ASSERT_OK(corrupt);
  Mount();
  EXPECT_EQ(ReadMounted("f"), content);
  EXPECT_EQ(Stats()["lookups_stale"], 1u);
  // Cut the backing file under the live object.
  ASSERT_OK(RunProgram({"sh", "-c", "find " + cache_dir() +
                                        "/volumes -type f ! -name '*.*' "
                                        "-exec truncate -s 0 {} +"},
                       absl::Seconds(10)));
  EXPECT_EQ(ReadMounted("f"), content);
  Unmount();
  // Delete every backing file.
  ASSERT_OK(RunProgram({"sh", "-c", "find " + cache_dir() +
                                        "/volumes -type f -delete"},
                       absl::Seconds(10)));
  Mount();
  EXPECT_EQ(ReadMounted("f"), content);
}

INSTANTIATE_TEST_SUITE_P(Origins, ReadThroughTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs,
                                           OriginKind::kNfs4,
                                           OriginKind::kNfs3),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
