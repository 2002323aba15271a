// Opening a cache directory: the errors a user can run into, and the
// buffered fallback on filesystems that refuse O_DIRECT.

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "cookie/object_key.h"
#include "io/errno_status.h"
#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

TEST(CacheOpenTest, CreatesTheDirectoryAndItsParents) {
  TempDir dir;
  CacheOptions options;
  options.directory = dir.path() + "/a/b/cache";
  auto cache = Cache::Open(Env::Default(), options);
  ASSERT_OK(cache);
  EXPECT_EQ(access((options.directory + "/CACHEDIR.TAG").c_str(), F_OK), 0);
  EXPECT_TRUE((*cache)->direct_io());
  EXPECT_TRUE((*cache)->warnings().empty());
}

TEST(CacheOpenTest, AFileInsteadOfADirectoryIsAnError) {
  TempDir dir;
  std::string file = dir.path() + "/plain";
  std::ofstream(file) << "x";
  CacheOptions options;
  options.directory = file;
  auto cache = Cache::Open(Env::Default(), options);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find(file), absl::string_view::npos)
      << cache.status();
}

TEST(CacheOpenTest, AnotherLayoutIsRefused) {
  TempDir dir;
  std::ofstream(dir.path() + "/cachefs.layout") << "cachefs cache layout 99\n";
  CacheOptions options;
  options.directory = dir.path();
  auto cache = Cache::Open(Env::Default(), options);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find("layout"), absl::string_view::npos);
}

// A filesystem that refuses O_DIRECT, as ramfs does and tmpfs did before
// Linux 6.6: every O_DIRECT open fails with EINVAL.
class NoDirectIoEnv : public EnvWrapper {
 public:
  NoDirectIoEnv() : EnvWrapper(Env::Default()) {}
  absl::StatusOr<int> OpenAt(int dirfd, const std::string& path, int flags,
                             mode_t mode) override {
    if (flags & O_DIRECT) return ErrnoToStatus(EINVAL, "open " + path);
    return EnvWrapper::OpenAt(dirfd, path, flags, mode);
  }
};

TEST(CacheOpenTest, RefusedODirectIsAClearErrorWithoutFallback) {
  TempDir dir;
  NoDirectIoEnv env;
  CacheOptions options;
  options.directory = dir.path();
  options.allow_buffered_io = false;
  auto cache = Cache::Open(&env, options);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find("O_DIRECT"), absl::string_view::npos)
      << cache.status();
}

TEST(CacheOpenTest, BufferedFallbackWarnsAndWorks) {
  TempDir dir;
  NoDirectIoEnv env;
  CacheOptions options;
  options.directory = dir.path();
  auto cache = Cache::Open(&env, options);
  ASSERT_OK(cache);
  EXPECT_FALSE((*cache)->direct_io());
  ASSERT_EQ((*cache)->warnings().size(), 1u);
  EXPECT_NE((*cache)->warnings()[0].find("O_DIRECT"), std::string::npos);
  auto volume = (*cache)->AcquireVolume("no-direct-volume", "");
  ASSERT_OK(volume);
  auto cookie = (*volume)->AcquireCookie("f", "aux", kGranule + 10);
  AlignedBuffer buf(kGranule + 4096);
  buf.Fill(0, 9);
  auto written = WriteSync(*cookie, 0, buf);
  ASSERT_OK(written);
  auto plan = cookie->PrepareRead(0, kGranule + 10);
  ASSERT_TRUE(plan.FullyCached());
  ASSERT_FALSE(CookieInspector::ObjectOf(*cookie)->file().direct);
  AlignedBuffer got(kGranule + 4096);
  ASSERT_OK(ReadSync(plan, 0, got));
  EXPECT_TRUE(got.Holds(0, 9, kGranule + 10));
  (*volume)->RelinquishCookie(cookie, false);
  (*cache)->dispatcher()->Drain();
  (*cache)->RelinquishVolume(*volume);
}

// ramfs has neither O_DIRECT nor user xattrs: the real thing, mounted by
// the test (root only).
TEST(CacheOpenTest, FilesystemWithoutUserXattrsIsRefused) {
  TempDir dir;
  std::string mnt = dir.path() + "/ramfs";
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  if (mount("ramfs", mnt.c_str(), "ramfs", 0, nullptr) != 0) {
    ASSERT_FALSE(InCi()) << "cannot mount ramfs: " << std::strerror(errno);
    GTEST_SKIP() << "cannot mount ramfs (not root?): " << std::strerror(errno);
  }
  CacheOptions options;
  options.directory = mnt + "/cache";
  auto cache = Cache::Open(Env::Default(), options);
  umount2(mnt.c_str(), MNT_DETACH);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find("extended attributes"),
            absl::string_view::npos)
      << cache.status();
}

// Two daemons over one origin would write the same objects: the second
// is refused while the first holds the volume; other origins share the
// directory, and the volume is free again once let go.
TEST(CacheOpenTest, AVolumeHasOneUserAtATime) {
  TempDir dir;
  CacheOptions options;
  options.directory = dir.path() + "/cache";
  auto first = Cache::Open(Env::Default(), options);
  auto second = Cache::Open(Env::Default(), options);
  ASSERT_OK(first);
  ASSERT_OK(second);
  auto held = (*first)->AcquireVolume("origin-a", "");
  ASSERT_OK(held);
  const std::string volume_dir =
      options.directory + "/volumes/" + VolumeDirName("origin-a");
  struct stat before, after;
  ASSERT_EQ(stat(volume_dir.c_str(), &before), 0);
  auto refused = (*second)->AcquireVolume("origin-a", "other coherency");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("already in use"),
            std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find(options.directory),
            std::string::npos)
      << refused.status();
  // Not buried by the refused one, whose coherency data differs.
  ASSERT_EQ(stat(volume_dir.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_OK((*second)->AcquireVolume("origin-b", ""));
  (*first)->RelinquishVolume(*held);
  held->reset();
  EXPECT_OK((*second)->AcquireVolume("origin-a", ""));
}

TEST(CacheOpenTest, BadVolumeKeyIsRejected) {
  TempDir dir;
  CacheOptions options;
  options.directory = dir.path();
  auto cache = Cache::Open(Env::Default(), options);
  ASSERT_OK(cache);
  EXPECT_FALSE((*cache)->AcquireVolume("", "").ok());
  EXPECT_FALSE((*cache)->AcquireVolume(std::string("a\nb"), "").ok());
}

}  // namespace
}  // namespace cachefs::testing
