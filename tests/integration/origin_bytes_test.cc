// Bytes read from the origin, counted on real mounts: read-ahead toward
// the origin only where the reader is going, and a granule the cache cannot
// keep fetched once per read pass, not once per kernel request.

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kGranule = 256 * 1024;

class OriginBytesTest : public CachefsMountTest {
 protected:
  // Reads [off, off + len) of `name` through the mount in 1 MiB reads,
  // with the kernel's cached pages dropped first.
  std::string ReadRange(const std::string& name, uint64_t off, uint64_t len) {
    int fd = open(MountedPath(name).c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << strerror(errno);
    if (fd < 0) return "";
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    std::string out(len, '\0');
    for (uint64_t done = 0; done < len;) {
      ssize_t n = pread(fd, out.data() + done, std::min(kMiB, len - done),
                        off + done);
      EXPECT_GT(n, 0) << strerror(errno);
      if (n <= 0) break;
      done += n;
    }
    close(fd);
    return out;
  }
};

TEST_P(OriginBytesTest, RereadingCachedRangesReadsNothingFromTheOrigin) {
  // A 2 GiB sparse file with data at three offsets, read 1 MiB at each.
  const std::vector<uint64_t> offsets = {100 * kMiB, 700 * kMiB + 12345,
                                         1500 * kMiB + 4096};
  {
    int fd = open(ServedPath("sparse").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 2048 * kMiB), 0);
    for (size_t i = 0; i < offsets.size(); ++i) {
      std::string data = RandomData(2 * kMiB, 50 + i);
      ASSERT_EQ(pwrite(fd, data.data(), data.size(), offsets[i] - kMiB / 2),
                static_cast<ssize_t>(data.size()));
    }
    close(fd);
  }
  auto read_all = [&] {
    for (size_t i = 0; i < offsets.size(); ++i) {
      std::string want = RandomData(2 * kMiB, 50 + i).substr(kMiB / 2, kMiB);
      EXPECT_EQ(ReadRange("sparse", offsets[i], kMiB), want) << offsets[i];
    }
  };
  Mount();
  read_all();
  const uint64_t first_pass = Stats()["bytes_read_from_origin"];
  EXPECT_GE(first_pass, offsets.size() * kMiB);
  Unmount();
  for (int run = 0; run < 20; ++run) {
    Mount();
    // What the cache held before the reads, and what each read fetched,
    // to tell a lost granule from a read that strayed.
    auto map = RunProgram({BinPath("cachefs-ctl"), "map", mnt_.path(),
                           MountedPath("sparse")},
                          absl::Seconds(20));
    std::string fetched;
    uint64_t before = 0;
    for (size_t i = 0; i < offsets.size(); ++i) {
      std::string want = RandomData(2 * kMiB, 50 + i).substr(kMiB / 2, kMiB);
      EXPECT_EQ(ReadRange("sparse", offsets[i], kMiB), want) << offsets[i];
      const uint64_t now = Stats()["bytes_read_from_origin"];
      fetched += " " + std::to_string(now - before);
      before = now;
    }
    std::map<std::string, uint64_t> stats = Stats();
    std::string nonzero;
    for (const auto& [name, value] : stats) {
      if (value != 0) nonzero += " " + name + "=" + std::to_string(value);
    }
    EXPECT_EQ(stats["bytes_read_from_origin"], 0u)
        << "run " << run << "; bytes fetched per range:" << fetched
        << "; map before the reads: "
        << (map.ok() ? map->stdout_text : map.status().ToString())
        << "; stats:" << nonzero;
    Unmount();
    if (HasFailure()) break;
  }
}

TEST_P(OriginBytesTest, AGranuleTheCacheRefusesIsFetchedOncePerPass) {
  const uint64_t kSize = 24 * kMiB + 100000;
  const std::string content = RandomData(kSize, 7);
  WriteServed("big", content);
  // Room for nothing: every granule read is refused by the cache.
  Mount("cache_size=4096");
  for (int pass = 1; pass <= 2; ++pass) {
    int fd = open(MountedPath("big").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    std::string got;
    std::vector<char> buf(128 * 1024);  // the kernel's request size
    ssize_t n;
    while ((n = read(fd, buf.data(), buf.size())) > 0) got.append(buf.data(), n);
    close(fd);
    ASSERT_EQ(got.size(), kSize);
    EXPECT_TRUE(got == content);
    auto stats = Stats();
    EXPECT_EQ(stats["granules_written_to_cache"], 0u);
    // Fetched once per pass; the slack is for the kernel, which now and
    // then asks again for a lone page it was given (a 4 KiB read inside a
    // granule read whole before): the cache has nothing to keep it in.
    EXPECT_LE(stats["bytes_read_from_origin"], pass * (kSize + 2 * kGranule));
    EXPECT_GE(stats["bytes_read_from_origin"], pass * kSize);
  }
}

INSTANTIATE_TEST_SUITE_P(Origins, OriginBytesTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
