// The cache directory taken away under a running mount: removed, or its
// filesystem turned read-only. The cache is withdrawn once, said once in
// the log, and every read goes on from the origin, right.

#include <sys/mount.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr size_t kGranule = 256 * 1024;

class CacheDirectoryTest : public CachefsMountTest {
 protected:
  // Reads `name` until it is `want` and the cache has been withdrawn.
  void ExpectWithdrawnAndServed(const std::string& name,
                                const std::string& want) {
    EXPECT_TRUE(Eventually([&] { return Stats()["cache_withdrawals"] == 1; },
                           absl::Seconds(15), absl::Milliseconds(100)));
    EXPECT_EQ(ReadMounted(name), want);
    // Changed on the origin: seen, with no cache to hold the old bytes.
    const std::string changed = RandomData(kGranule + 7, 99);
    WriteServed(name, changed);
    struct stat st;
    ASSERT_EQ(stat(ServedPath(name).c_str(), &st), 0);
    timespec times[2] = {{st.st_mtim.tv_sec + 5, 0},
                         {st.st_mtim.tv_sec + 5, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, ServedPath(name).c_str(), times, 0), 0);
    EXPECT_EQ(ReadMounted(name), changed);
    EXPECT_EQ(ReadMounted(name), changed);
    const uint64_t withdrawals = Stats()["cache_withdrawals"];
    EXPECT_EQ(withdrawals, 1u);
  }
  // The lines of the daemon's log (stderr, under -f) that contain `text`.
  int LogLinesWith(const std::string& log, const std::string& text) {
    int n = 0;
    for (size_t at = log.find(text); at != std::string::npos;
         at = log.find(text, at + 1)) {
      ++n;
    }
    return n;
  }
};

TEST_P(CacheDirectoryTest, ARemovedCacheDirectoryWithdrawsTheCacheOnce) {
  const std::string data = RandomData(3 * kGranule, 1);
  WriteServed("f", data);
  Mount();
  ASSERT_EQ(ReadMounted("f"), data);
  std::filesystem::remove_all(cache_dir());
  ExpectWithdrawnAndServed("f", data);
  const std::string log = daemon_->ReadStderr();
  Unmount();
  EXPECT_EQ(LogLinesWith(log, "has been removed: the cache is withdrawn"), 1)
      << log;
}

// A small ext4 filesystem on a loop device, mounted with
// errors=remount-ro, as the cache directory; /sys/fs/ext4/DEV/
// trigger_fs_error then makes it read-only the way a disk error would,
// with the cache's files open. Unmounted (lazily: the daemon may still
// hold files in it) even when the test fails; the loop device goes with
// its last user.
class ErrorProneFilesystem {
 public:
  ErrorProneFilesystem(const std::string& image, std::string mount_point)
      : mount_point_(std::move(mount_point)) {
    auto made = RunProgram(
        {"sh", "-c",
         "truncate -s 64M '" + image + "' && mkfs.ext4 -q -F '" + image + "'"},
        absl::Seconds(60));
    if (!made.ok() || made->exit_code != 0) {
      error_ =
          "mkfs.ext4: " + (made.ok() ? made->stderr_text
                                     : std::string(made.status().message()));
      return;
    }
    auto mounted = RunProgram(
        {"mount", "-o", "loop,errors=remount-ro", image, mount_point_},
        absl::Seconds(30));
    if (!mounted.ok() || mounted->exit_code != 0) {
      error_ = "mount -o loop: " +
               (mounted.ok() ? mounted->stderr_text
                             : std::string(mounted.status().message()));
      return;
    }
    mounted_ = true;
    auto source = RunProgram({"findmnt", "-no", "SOURCE", mount_point_},
                             absl::Seconds(10));
    if (source.ok()) {
      std::string dev = source->stdout_text;
      while (!dev.empty() && dev.back() == '\n') dev.pop_back();
      device_ = dev.substr(dev.rfind('/') + 1);
    }
  }
  ~ErrorProneFilesystem() {
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
  }
  // Empty when mounted, else what failed.
  const std::string& error() const { return error_; }
  bool TriggerError() {
    std::ofstream trigger("/sys/fs/ext4/" + device_ + "/trigger_fs_error");
    trigger << "cachefs test\n";
    trigger.flush();
    return trigger.good();
  }

 private:
  const std::string mount_point_;
  std::string device_;
  std::string error_;
  bool mounted_ = false;
};

TEST_P(CacheDirectoryTest,
       ACacheFilesystemTurnedReadOnlyWithdrawsTheCacheOnce) {
  CACHEFS_REQUIRE(RootPrerequisite());
  const std::string data = RandomData(3 * kGranule, 2);
  WriteServed("f", data);
  ASSERT_EQ(mkdir(cache_dir().c_str(), 0700), 0);
  ErrorProneFilesystem fs(cache_tmp_.path() + "/cache.img", cache_dir());
  ASSERT_EQ(fs.error(), "");
  Mount();
  ASSERT_EQ(ReadMounted("f"), data);
  ASSERT_TRUE(fs.TriggerError());
  ExpectWithdrawnAndServed("f", data);
  const std::string log = daemon_->ReadStderr();
  Unmount();
  EXPECT_EQ(LogLinesWith(log,
                         "is on a filesystem that is now read-only: the "
                         "cache is withdrawn"),
            1)
      << log;
}

INSTANTIATE_TEST_SUITE_P(Origins, CacheDirectoryTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
