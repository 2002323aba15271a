// Opening a cache directory: the errors a user can run into, and the
// buffered fallback on filesystems that refuse O_DIRECT.

#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

constexpr long kTmpfsMagic = 0x01021994;

bool IsTmpfs(const char* path) {
  struct statfs st;
  return statfs(path, &st) == 0 && st.f_type == kTmpfsMagic;
}

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

class TmpfsCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsTmpfs("/dev/shm")) {
      ASSERT_FALSE(InCi()) << "/dev/shm is not tmpfs; CI needs it";
      GTEST_SKIP() << "/dev/shm is not a tmpfs on this machine";
    }
  }
};

TEST_F(TmpfsCacheTest, RefusedODirectIsAClearErrorWithoutFallback) {
  TempDir dir("/dev/shm");
  CacheOptions options;
  options.directory = dir.path();
  options.allow_buffered_io = false;
  auto cache = Cache::Open(Env::Default(), options);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find("O_DIRECT"), absl::string_view::npos)
      << cache.status();
}

TEST_F(TmpfsCacheTest, BufferedFallbackWarnsAndWorks) {
  TempDir dir("/dev/shm");
  CacheOptions options;
  options.directory = dir.path();
  auto cache = Cache::Open(Env::Default(), options);
  ASSERT_OK(cache);
  EXPECT_FALSE((*cache)->direct_io());
  ASSERT_EQ((*cache)->warnings().size(), 1u);
  EXPECT_NE((*cache)->warnings()[0].find("O_DIRECT"), std::string::npos);
  auto volume = (*cache)->AcquireVolume("tmpfs-volume", "");
  ASSERT_OK(volume);
  auto cookie = (*volume)->AcquireCookie("f", "aux", kGranule + 10);
  AlignedBuffer buf(kGranule + 4096);
  buf.Fill(0, 9);
  auto written = WriteSync(*cookie, 0, buf);
  ASSERT_OK(written);
  auto plan = cookie->PrepareRead(0, kGranule + 10);
  ASSERT_TRUE(plan.FullyCached());
  AlignedBuffer got(kGranule + 4096);
  ASSERT_OK(ReadSync(*cookie, plan.object, 0, got));
  EXPECT_TRUE(got.Holds(0, 9, kGranule + 10));
  (*volume)->RelinquishCookie(cookie, false);
  (*cache)->dispatcher()->Drain();
  (*cache)->RelinquishVolume(*volume);
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
