// The metadata store (the attribute and listing snapshots in the volume)
// under the crash rule: a crash at any point while it is saved leaves it as
// it was, or as saved whole, never one that answers wrongly or not at all.
// A crash is simulated with FaultInjectionEnv: after N calls the cache's
// disk takes nothing more (the process is gone) and unsynced data is lost.
// The cache is then mounted while the origin is unreachable, so every
// answer comes from the store.

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cachefs/cache_fs.h"
#include "cookie/cache.h"
#include "io/env.h"
#include "io/errno_status.h"
#include "io/fault_injection_env.h"
#include "netfs/fault_injection_origin.h"
#include "netfs/posix_origin.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

constexpr unsigned kAllOps = ~0u;

class MetadataCrashTest : public ::testing::Test {
 protected:
  void Mount(TempDir& origin_dir, TempDir& cache_dir,
             absl::Status unreachable = absl::OkStatus()) {
    auto posix = PosixOrigin::Open(origin_dir.path());
    ASSERT_OK(posix);
    posix_ = *std::move(posix);
    origin_ = std::make_unique<FaultInjectionOrigin>(posix_.get());
    if (!unreachable.ok()) origin_->Disconnect();
    CacheOptions options;
    options.directory = cache_dir.path();
    auto cache = Cache::Open(&env_, options);
    ASSERT_OK(cache);
    cache_ = *std::move(cache);
    auto volume = cache_->AcquireVolume("crash", "");
    ASSERT_OK(volume);
    auto fs = CacheFs::Create(CacheFsOptions(), origin_.get(), cache_.get(),
                              *volume, unreachable);
    ASSERT_OK(fs);
    fs_ = *std::move(fs);
  }
  void Unmount() {
    fs_.reset();
    cache_.reset();
    origin_.reset();
    posix_.reset();
  }
  // "size N" for the file at `path`, or its errno, as the mount answers.
  std::string Known(const std::string& path) {
    uint64_t ino = 1;
    std::string answer;
    for (absl::string_view name : absl::StrSplit(path, '/')) {
      absl::StatusOr<CacheFs::Entry> entry =
          fs_->Lookup(ino, std::string(name));
      if (!entry.ok())
        return absl::StrCat("errno ", StatusToErrno(entry.status()));
      ino = entry->ino;
      answer = absl::StrCat("size ", entry->attr.st_size);
    }
    return answer;
  }
  // The root's names as the mount lists them, or the error.
  std::string Listed() {
    absl::StatusOr<uint64_t> fh = fs_->OpenDir(1);
    if (!fh.ok()) return std::string(fh.status().message());
    std::set<std::string> names;
    absl::Status read =
        fs_->ReadDir(1, *fh, 0, /*plus=*/false,
                     [&](const std::string& name, const struct stat&, uint64_t,
                         const CacheFs::Entry*) {
                       if (name != "." && name != "..") names.insert(name);
                       return true;
                     });
    fs_->ReleaseDir(*fh);
    if (!read.ok()) return std::string(read.message());
    return absl::StrJoin(names, " ");
  }

  FaultInjectionEnv env_{Env::Default()};
  std::unique_ptr<PosixOrigin> posix_;
  std::unique_ptr<FaultInjectionOrigin> origin_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CacheFs> fs_;
};

TEST_F(MetadataCrashTest, ACrashAtAnyPointOfSavingLeavesTheOldOrTheNewStore) {
  bool finished = false;
  int crash_points = 0;
  for (int spared = 0; spared < 2000 && !finished; ++spared) {
    SCOPED_TRACE(absl::StrCat("crash after ", spared, " calls"));
    TempDir origin_dir;
    TempDir cache_dir;
    ASSERT_EQ(mkdir((origin_dir.path() + "/dir").c_str(), 0755), 0);
    std::ofstream(origin_dir.path() + "/a") << "1";
    std::ofstream(origin_dir.path() + "/dir/b") << "22";
    // The store as a clean unmount left it: a, dir and dir/b.
    Mount(origin_dir, cache_dir);
    ASSERT_OK(fs_->GetAttr(1));
    ASSERT_EQ(Known("dir/b"), "size 2");
    ASSERT_EQ(Known("a"), "size 1");
    ASSERT_EQ(Listed(), "a dir");
    Unmount();
    // The next mount learns of c, and crashes while saving what it knows.
    std::ofstream(origin_dir.path() + "/c") << "333";
    Mount(origin_dir, cache_dir);
    ASSERT_EQ(Known("c"), "size 3");
    ASSERT_EQ(Listed(), "a c dir");
    const uint64_t faults_before = env_.injected_faults();
    env_.SetErrorAfter(kAllOps, EIO, spared);
    Unmount();
    finished = env_.injected_faults() == faults_before;
    crash_points += finished ? 0 : 1;
    ASSERT_OK(env_.DropUnsyncedData());
    env_.ClearFaults();

    // Served from the store alone: the origin answers nothing.
    Mount(origin_dir, cache_dir, ErrnoToStatus(ENOTCONN, "origin stopped"));
    EXPECT_EQ(Known("a"), "size 1");
    EXPECT_EQ(Known("dir/b"), "size 2");
    const std::string c = Known("c");
    EXPECT_TRUE(c == "size 3" || c == absl::StrCat("errno ", EIO)) << c;
    const std::string listed = Listed();
    EXPECT_TRUE(listed == "a dir" || listed == "a c dir") << listed;
    if (finished) {
      // Nothing failed: all of it was saved.
      EXPECT_EQ(c, "size 3");
      EXPECT_EQ(listed, "a c dir");
    }
    Unmount();
  }
  EXPECT_TRUE(finished) << "saving never ran to its end";
  EXPECT_GT(crash_points, 3);
}

// A change in the root forgets the root's attributes; a mount made while
// the origin is unreachable starts from them, so they are saved anyway.
TEST_F(MetadataCrashTest, TheRootIsSavedAfterAChangeInIt) {
  TempDir origin_dir;
  TempDir cache_dir;
  std::ofstream(origin_dir.path() + "/a") << "1";
  Mount(origin_dir, cache_dir);
  ASSERT_EQ(Known("a"), "size 1");
  auto made = fs_->Create(1, "b", 0644, O_WRONLY);
  ASSERT_OK(made);
  fs_->Release(made->opened.fh);
  fs_->Forget(made->entry.ino, 1);
  Unmount();
  Mount(origin_dir, cache_dir, ErrnoToStatus(ENOTCONN, "origin stopped"));
  EXPECT_EQ(Known("a"), "size 1");
  EXPECT_EQ(Known("b"), "size 0");
  Unmount();
}

}  // namespace
}  // namespace cachefs::testing
