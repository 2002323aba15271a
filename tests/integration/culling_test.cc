// Culling on a real mount with a small -o cache_size: however much is read
// and written through it, what the cache directory holds stays at the limit
// (plus granules in flight), open files keep their cached data (a huge one
// only its share, so it cannot push the others out), every read is right,
// and cachefs-ctl ls / cull work.

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kLimit = 4 << 20;
// What may be written past the limit while culling catches up: the
// granules of the reads and writes in flight at once.
constexpr uint64_t kInFlight = 2 << 20;

class CullTest : public CachefsMountTest {
 protected:
  // Allocated bytes of every file under the cache directory's volumes.
  uint64_t StoredBytes() {
    uint64_t bytes = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             cache_dir() + "/volumes", ec)) {
      struct stat st;
      if (e.is_regular_file() && stat(e.path().c_str(), &st) == 0) {
        bytes += static_cast<uint64_t>(st.st_blocks) * 512;
      }
    }
    return bytes;
  }
  std::string Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinPath("cachefs-ctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = RunProgram(argv, absl::Seconds(20));
    EXPECT_OK(result);
    if (!result.ok()) return "";
    EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
    return result->stdout_text;
  }
  // Puts the cache directory on a tmpfs mounted with `options` (as root),
  // so its filesystem is small; it is detached at TearDown.
  void CacheOnTmpfs(const std::string& options) {
    CACHEFS_REQUIRE(RootPrerequisite());
    ASSERT_EQ(mount("tmpfs", cache_tmp_.path().c_str(), "tmpfs", 0,
                    options.c_str()),
              0)
        << strerror(errno);
    tmpfs_ = true;
  }
  void TearDown() override {
    if (!tmpfs_) return;
    if (daemon_ != nullptr) Unmount();
    umount2(cache_tmp_.path().c_str(), MNT_DETACH);
  }
  // Free blocks and free files of the cache's filesystem, in percent.
  std::pair<double, double> FreePercent() {
    struct statvfs fs;
    EXPECT_EQ(statvfs(cache_tmp_.path().c_str(), &fs), 0) << strerror(errno);
    return {100.0 * fs.f_bavail / fs.f_blocks,
            100.0 * fs.f_favail / fs.f_files};
  }
  bool tmpfs_ = false;
};

TEST_P(CullTest, StoredBytesStayWithinTheLimitAndOpenFilesKeepTheirData) {
  // An open file, read whole first: culling must pass it over.
  const std::string pinned = RandomData(1 << 20, 99);
  WriteServed("pinned", pinned);
  Mount(absl::StrCat("cache_size=", kLimit));
  int fd = open(MountedPath("pinned").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_TRUE(ReadMounted("pinned") == pinned);
  const uint64_t pinned_origin_bytes = Stats()["bytes_read_from_origin"];

  // Five times the limit, read and written, in 1.5 MiB files.
  uint64_t max_stored = 0;
  for (int i = 0; i < 14; ++i) {
    const std::string name = absl::StrCat("f", i);
    const std::string data = RandomData(1536 * 1024, i);
    if (i % 2 == 0) {
      WriteServed(name, data);
      ASSERT_TRUE(ReadMounted(name) == data) << name;
    } else {
      std::ofstream(MountedPath(name), std::ios::binary) << data;
      ASSERT_TRUE(ReadMounted(name) == data) << name;
    }
    max_stored = std::max(max_stored, StoredBytes());
  }
  EXPECT_LE(max_stored, kLimit + kInFlight);
  // Settled: at or under the limit.
  EXPECT_TRUE(Eventually([&] { return StoredBytes() <= kLimit; }))
      << StoredBytes() << " bytes stored";
  auto stats = Stats();
  EXPECT_GT(stats["culls"], 0u);
  EXPECT_GT(stats["bytes_culled"], 0u);
  EXPECT_GT(stats["cull_passes"], 0u);

  // The open file's data is still cached: no origin read for it.
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string got(pinned.size(), '\0');
  ASSERT_EQ(pread(fd, got.data(), got.size(), 0),
            static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, pinned);
  const uint64_t origin_after = Stats()["bytes_read_from_origin"];
  // (The reads of f0..f13 went to the origin too; count only pinned's.)
  EXPECT_EQ(origin_after - stats["bytes_read_from_origin"], 0u)
      << "pinned was fetched again after " << pinned_origin_bytes;

  // Every file still reads right, cached or not.
  for (int i = 0; i < 14; ++i) {
    EXPECT_TRUE(ReadMounted(absl::StrCat("f", i)) == RandomData(1536 * 1024, i));
  }

  // ls lists the open file; cull --to 0 leaves only what is in use.
  EXPECT_NE(Ctl({"ls", mnt_.path()}).find("pinned"), std::string::npos);
  std::string culled = Ctl({"cull", mnt_.path(), "--to", "0"});
  EXPECT_NE(culled.find("culled"), std::string::npos) << culled;
  std::string listed = Ctl({"ls", mnt_.path(), "--json"});
  EXPECT_NE(listed.find("\"path\": \"pinned\""), std::string::npos) << listed;
  EXPECT_EQ(listed.find("\"path\": \"f1\""), std::string::npos) << listed;
  EXPECT_EQ(close(fd), 0);
}

TEST_P(CullTest, ARestartFindsTheLimitAlreadyPassedAndCulls) {
  for (int i = 0; i < 6; ++i) {
    WriteServed(absl::StrCat("f", i), RandomData(1 << 20, i));
  }
  Mount();  // no limit: everything is cached
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(ReadMounted(absl::StrCat("f", i)) == RandomData(1 << 20, i));
  }
  Unmount();
  ASSERT_GT(StoredBytes(), 5u << 20);
  Mount("cache_size=2M");
  EXPECT_TRUE(Eventually([&] { return StoredBytes() <= (2u << 20); }))
      << StoredBytes() << " bytes stored";
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(ReadMounted(absl::StrCat("f", i)) == RandomData(1 << 20, i));
  }
}

TEST_P(CullTest, TwoMountsOnOneCacheDirectoryShareItsLimit) {
  // A second origin and mount point, beside the fixture's.
  TempDir other_origin;
  TempDir other_mnt;
  for (int i = 0; i < 8; ++i) {
    WriteServed(absl::StrCat("a", i), RandomData(1 << 20, i));
    std::ofstream(other_origin.path() + "/b" + std::to_string(i),
                  std::ios::binary)
        << RandomData(1 << 20, 100 + i);
  }
  Mount(absl::StrCat("cache_size=", kLimit));
  auto other = FuseDaemon::Start(
      {BinPath("cachefs"), other_origin.path(), other_mnt.path(), "-f", "-o",
       absl::StrCat("cache=", cache_dir(), ",cache_size=", kLimit)},
      other_mnt.path(), "fuse.cachefs");
  ASSERT_OK(other);
  uint64_t max_stored = 0;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(ReadMounted(absl::StrCat("a", i)) == RandomData(1 << 20, i));
    std::ifstream in(other_mnt.path() + "/b" + std::to_string(i),
                     std::ios::binary);
    std::string got(std::istreambuf_iterator<char>(in), {});
    ASSERT_TRUE(got == RandomData(1 << 20, 100 + i)) << "b" << i;
    max_stored = std::max(max_stored, StoredBytes());
    usleep(300 * 1000);  // the mounts tell each other five times a second
  }
  // 16 MiB read through the two, into one 4 MiB directory: each mount
  // learns the other's usage a few times a second, so the two may pass the
  // limit together for a moment, but never by the other's whole share.
  EXPECT_LE(max_stored, 2 * kLimit);
  EXPECT_TRUE(Eventually([&] { return StoredBytes() <= kLimit; }))
      << StoredBytes() << " bytes stored";
  auto code = (*other)->Unmount();
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0) << (*other)->ReadStderr();
}

// A second mount with a smaller cache_size than the first already holds:
// the smaller limit is the directory's, both mounts cull their share of
// the excess, the second caches what it reads, and neither makes passes
// that cull nothing.
TEST_P(CullTest, ASmallerLimitOfASecondMountBindsTheWholeDirectory) {
  constexpr size_t kFile = 256 * 1024;
  TempDir other_origin;
  TempDir other_mnt;
  for (int i = 0; i < 32; ++i) {
    WriteServed(absl::StrCat("a", i), RandomData(kFile, i));
  }
  for (int i = 0; i < 8; ++i) {
    std::ofstream(other_origin.path() + "/b" + std::to_string(i),
                  std::ios::binary)
        << RandomData(kFile, 100 + i);
  }
  Mount(absl::StrCat("cache_size=", 4 * kLimit));
  for (int i = 0; i < 32; ++i) {
    ASSERT_TRUE(ReadMounted(absl::StrCat("a", i)) == RandomData(kFile, i));
  }
  // The granules go to the cache after the reads are answered.
  ASSERT_TRUE(Eventually([&] { return StoredBytes() >= (8u << 20); }))
      << StoredBytes() << " bytes stored";
  auto other = FuseDaemon::Start(
      {BinPath("cachefs"), other_origin.path(), other_mnt.path(), "-f", "-o",
       absl::StrCat("cache=", cache_dir(), ",cache_size=", kLimit)},
      other_mnt.path(), "fuse.cachefs");
  ASSERT_OK(other);
  auto other_stats = [&] {
    std::map<std::string, uint64_t> stats;
    std::string text = Ctl({"stats", other_mnt.path(), "--json"});
    for (const char* key : {"granules_written_to_cache", "cull_passes",
                            "bytes_read_from_origin", "cache_limit"}) {
      const std::string quoted = absl::StrCat("\"", key, "\": ");
      const size_t at = text.find(quoted);
      if (at != std::string::npos) {
        stats[key] = std::stoull(text.substr(at + quoted.size()));
      }
    }
    return stats;
  };
  // The first mount learns the smaller limit and culls down to it.
  EXPECT_TRUE(Eventually([&] { return StoredBytes() <= kLimit; }))
      << StoredBytes() << " bytes stored";
  EXPECT_EQ(Stats()["cache_limit"], kLimit);
  EXPECT_EQ(other_stats()["cache_limit"], kLimit);
  // The second mount caches what it reads (the first gives up its share
  // of the room): the file it read last comes from its cache again.
  auto read_b = [&](int i) {
    const std::string path = other_mnt.path() + "/b" + std::to_string(i);
    int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << path;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(std::string(std::istreambuf_iterator<char>(in), {}) ==
                RandomData(kFile, 100 + i))
        << path;
    usleep(300 * 1000);  // the mounts tell each other five times a second
  };
  for (int i = 0; i < 8; ++i) read_b(i);
  const uint64_t first_pass = other_stats()["bytes_read_from_origin"];
  EXPECT_GE(first_pass, 8 * kFile);
  read_b(7);
  auto stats = other_stats();
  EXPECT_GE(stats["granules_written_to_cache"], 4u);
  EXPECT_EQ(stats["bytes_read_from_origin"], first_pass);
  EXPECT_TRUE(Eventually([&] { return StoredBytes() <= kLimit; }))
      << StoredBytes() << " bytes stored";
  // At rest neither mount passes (a culler that cannot reach the limit
  // by its own volume would, five times a second).
  const uint64_t passes = stats["cull_passes"] + Stats()["cull_passes"];
  usleep(1500 * 1000);
  EXPECT_LE(other_stats()["cull_passes"] + Stats()["cull_passes"], passes + 2);
  // Unmounted, the second gives its limit up.
  auto code = (*other)->Unmount();
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0) << (*other)->ReadStderr();
  EXPECT_TRUE(Eventually([&] { return Stats()["cache_limit"] == 4 * kLimit; }));
}

// Reads `size` bytes of the file open on `fd`, from its start.
std::string ReadOpen(int fd, size_t size) {
  std::string got(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, got.data() + done, std::min<size_t>(size - done, 1 << 20),
                      static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  got.resize(done);
  return got;
}

TEST_P(CullTest, AHugeOpenFileGivesUpItsColdGranulesNotTheOtherFiles) {
  constexpr uint64_t kHuge = 6 * kLimit;
  for (int i = 0; i < 6; ++i) {
    WriteServed(absl::StrCat("s", i), RandomData(256 * 1024, i));
  }
  const std::string huge = RandomData(kHuge, 77);
  WriteServed("huge", huge);
  Mount(absl::StrCat("cache_size=", kLimit));
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(ReadMounted(absl::StrCat("s", i)) ==
                RandomData(256 * 1024, i));
  }
  // Six times the limit, read through one open file, twice.
  int fd = open(MountedPath("huge").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  uint64_t max_stored = 0;
  for (int pass = 0; pass < 2; ++pass) {
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    EXPECT_TRUE(ReadOpen(fd, kHuge) == huge) << "pass " << pass;
    max_stored = std::max(max_stored, StoredBytes());
  }
  EXPECT_LE(max_stored, kLimit + kInFlight);
  EXPECT_TRUE(Eventually([&] { return StoredBytes() <= kLimit; }))
      << StoredBytes() << " bytes stored";
  auto stats = Stats();
  EXPECT_GT(stats["granules_culled"], 0u);
  EXPECT_EQ(stats["culls"], 0u) << "a small file was culled whole";
  // ls shows the huge file partly cached, from its live map: not nothing,
  // and no more than the limit allows.
  std::string listed = Ctl({"ls", mnt_.path(), "--json"});
  const size_t entry = listed.find("\"path\": \"huge\"");
  ASSERT_NE(entry, std::string::npos) << listed;
  const std::string key = "\"percent_present\": ";
  const size_t at = listed.find(key, entry);
  ASSERT_NE(at, std::string::npos) << listed;
  const double percent = std::stod(listed.substr(at + key.size()));
  EXPECT_GT(percent, 0.0) << listed;
  EXPECT_LE(percent, 100.0 * kLimit / kHuge) << listed;

  // The small files are all still cached: no origin read for them.
  const uint64_t origin_before = Stats()["bytes_read_from_origin"];
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(ReadMounted(absl::StrCat("s", i)) ==
                RandomData(256 * 1024, i));
  }
  EXPECT_EQ(Stats()["bytes_read_from_origin"] - origin_before, 0u);
  EXPECT_EQ(close(fd), 0);

  // The same read with open_file_share=100 (the huge file may take the
  // whole cache) pushes the small files out: the share is what kept them.
  Unmount();
  Mount(absl::StrCat("cache_size=", kLimit, ",open_file_share=100"));
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(ReadMounted(absl::StrCat("s", i)) ==
                RandomData(256 * 1024, i));
  }
  fd = open(MountedPath("huge").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  EXPECT_TRUE(ReadOpen(fd, kHuge) == huge);
  EXPECT_TRUE(Eventually([&] { return Stats()["culls"] > 0; }))
      << "without the share no small file was culled; "
                      << Ctl({"stats", mnt_.path()}) << Ctl({"ls", mnt_.path()});
  EXPECT_EQ(close(fd), 0);
}

TEST_P(CullTest, TheCacheFilesystemsFreeSpaceAndFilesAreKeptAsFloors) {
  // 32 MiB and 300 inodes: the default marks (run 10%, cull 7%, stop 3%)
  // are what limits the cache, there is no cache_size.
  ASSERT_NO_FATAL_FAILURE(CacheOnTmpfs("size=32m,nr_inodes=300,mode=0700"));
  if (IsSkipped()) return;
  for (int i = 0; i < 12; ++i) {
    WriteServed(absl::StrCat("big", i), RandomData(4 << 20, i));
  }
  for (int i = 0; i < 300; ++i) {
    WriteServed(absl::StrCat("small", i), RandomData(8192, 1000 + i));
  }
  Mount();

  // 48 MiB read into a 32 MiB filesystem: it never fills up, and once the
  // culler has run it has at least the cull mark free.
  double least_free = 100;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(ReadMounted(absl::StrCat("big", i)) == RandomData(4 << 20, i))
        << i;
    least_free = std::min(least_free, FreePercent().first);
  }
  EXPECT_GT(least_free, 1.0);
  EXPECT_TRUE(Eventually([&] { return FreePercent().first >= 7.0; }))
      << FreePercent().first << "% free";
  const uint64_t culls_for_space = Stats()["culls"];
  EXPECT_GT(culls_for_space, 0u);

  // 300 small files, one cache file each, into 300 inodes: the same for
  // free files.
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(ReadMounted(absl::StrCat("small", i)) ==
                RandomData(8192, 1000 + i))
        << i;
  }
  EXPECT_TRUE(Eventually([&] { return FreePercent().second >= 7.0; }))
      << FreePercent().second << "% of files free";
  EXPECT_GT(Stats()["culls"], culls_for_space);
  // Everything still reads right, cached or not.
  for (int i = 0; i < 12; i += 3) {
    EXPECT_TRUE(ReadMounted(absl::StrCat("big", i)) == RandomData(4 << 20, i));
  }
}

TEST_P(CullTest, BadLimitsAreRefusedBeforeMounting) {
  for (const std::string& opts :
       {std::string("cache_size=lots"), std::string("brun=5,bcull=7"),
        std::string("cull_policy=nonesuch"), std::string("fstop=9,fcull=8"),
        std::string("open_file_share=0")}) {
    auto result = RunProgram({BinPath("cachefs"), origin_, mnt_.path(), "-f",
                              "-o", "cache=" + cache_dir() + "," + opts},
                             absl::Seconds(20));
    ASSERT_OK(result);
    EXPECT_NE(result->exit_code, 0) << opts;
    EXPECT_NE(result->stderr_text.find("cachefs: "), std::string::npos)
        << opts << ": " << result->stderr_text;
  }
}

INSTANTIATE_TEST_SUITE_P(Origins, CullTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
