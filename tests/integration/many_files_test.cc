// One pass over more files than the daemon may have descriptors: cachefs
// holds no descriptor per file the kernel knows (origin requests name files
// by path, and a FUSE origin's kept descriptors are a bounded set), so
// `find | xargs cat` over 50,000 files succeeds with the daemon limited to
// 1,024 open files. bench/many_files.sh runs the same pass over a million.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr int kDescriptorLimit = 1024;

class ManyFilesTest : public CachefsMountTest {
 protected:
  // `files` files of 10 bytes ("file NNNN\n"-like) in directories of 1,000.
  void MakeFiles(int files) {
    for (int i = 0; i < files; ++i) {
      const std::string dir = ServedPath(absl::StrCat("d", i / 1000));
      if (i % 1000 == 0) {
        ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
      }
      const std::string data = absl::StrFormat("%09d\n", i);
      int fd = open((dir + absl::StrCat("/f", i)).c_str(),
                    O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(write(fd, data.data(), data.size()), 10);
      close(fd);
    }
  }
  // cachefs under a hard limit of kDescriptorLimit open files.
  void MountLimited(const std::string& options) {
    CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs"));
    auto daemon = FuseDaemon::Start(
        {"prlimit", absl::StrCat("--nofile=", kDescriptorLimit, ":",
                                 kDescriptorLimit),
         BinPath("cachefs"), origin_, mnt_.path(), "-f", "-o",
         "cache=" + cache_dir() + (options.empty() ? "" : "," + options)},
        mnt_.path(), "fuse.cachefs", absl::Seconds(30));
    ASSERT_OK(daemon);
    daemon_ = *std::move(daemon);
  }
  int OpenDescriptors() {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(
             absl::StrCat("/proc/", daemon_->pid(), "/fd"))) {
      (void)e;
      ++n;
    }
    return n;
  }
};

TEST_P(ManyFilesTest, OnePassOverManyMoreFilesThanDescriptors) {
  // Over SSHFS each file costs a few SFTP requests: fewer files, and a
  // small set of kept descriptors so that it is evicted from many times.
  const bool sshfs = GetParam() == OriginKind::kSshfs;
  const int files = sshfs ? 3000 : 50000;
  MakeFiles(files);
  MountLimited(sshfs ? "origin_descriptors=64" : "");
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      // The second pass must reach cachefs, not the kernel's pages.
      CACHEFS_REQUIRE(RootPrerequisite());
      sync();
      std::ofstream("/proc/sys/vm/drop_caches") << "1";
    }
    // Every file read whole, in one pass, as find | xargs cat does.
    auto result = RunProgram(
        {"sh", "-c",
         absl::StrCat("find '", mnt_.path(), "' -type f -print0 | "
                      "xargs -0 cat | wc -c")},
        absl::Minutes(5));
    ASSERT_OK(result);
    EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
    EXPECT_EQ(result->stderr_text, "");
    EXPECT_EQ(std::stoll(result->stdout_text), 10LL * files) << "pass " << pass;
    EXPECT_LT(OpenDescriptors(), kDescriptorLimit / 2);
  }
  auto stats = Stats();
  // The second pass came from the cache.
  EXPECT_EQ(stats["bytes_read_from_origin"], 10u * files);
  EXPECT_GE(stats["bytes_read_from_cache"], 10u * files);
}

INSTANTIATE_TEST_SUITE_P(Origins, ManyFilesTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
