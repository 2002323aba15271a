// PosixOrigin over a local directory: files are named by paths below the
// root, no path leaves the root or follows a symlink, and each request is
// counted in the origin's stats.

#include "netfs/posix_origin.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "io/errno_status.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

class PosixOriginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir((dir_.path() + "/d").c_str(), 0755), 0);
    std::ofstream(dir_.path() + "/d/f") << "data";
    ASSERT_EQ(symlink("/etc", (dir_.path() + "/link").c_str()), 0);
    auto origin = PosixOrigin::Open(dir_.path());
    ASSERT_OK(origin);
    origin_ = *std::move(origin);
  }
  TempDir dir_;
  std::unique_ptr<PosixOrigin> origin_;
  const Caller& me_ = Caller::Daemon();
};

TEST_F(PosixOriginTest, PathsNameFilesBelowTheRoot) {
  auto st = origin_->GetAttr(me_, "d/f");
  ASSERT_OK(st);
  EXPECT_TRUE(S_ISREG(st->st_mode));
  EXPECT_EQ(st->st_size, 4);
  auto root = origin_->GetAttr(me_, "");
  ASSERT_OK(root);
  EXPECT_TRUE(S_ISDIR(root->st_mode));
  auto file = origin_->OpenFile(me_, "d/f", O_RDONLY);
  ASSERT_OK(file);
  char buf[8];
  auto n = (*file)->PRead(buf, sizeof(buf), 0);
  ASSERT_OK(n);
  EXPECT_EQ(std::string(buf, *n), "data");
  EXPECT_TRUE(absl::IsNotFound(origin_->GetAttr(me_, "d/missing").status()));
}

TEST_F(PosixOriginTest, PathsThatWouldLeaveTheRootAreRefused) {
  for (const char* bad : {"..", "d/..", "/d", "d//f", "d/", ".", "d/./f"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(origin_->GetAttr(me_, bad).status()))
        << bad;
    EXPECT_FALSE(origin_->OpenFile(me_, bad, O_RDONLY).ok()) << bad;
  }
}

TEST_F(PosixOriginTest, SymlinksAreReadNeverFollowed) {
  auto st = origin_->GetAttr(me_, "link");
  ASSERT_OK(st);
  EXPECT_TRUE(S_ISLNK(st->st_mode));
  auto target = origin_->ReadLink(me_, "link");
  ASSERT_OK(target);
  EXPECT_EQ(*target, "/etc");
  // A path through the symlink would leave the origin.
  EXPECT_FALSE(origin_->GetAttr(me_, "link/passwd").ok());
  EXPECT_FALSE(origin_->OpenFile(me_, "link/passwd", O_RDONLY).ok());
}

TEST_F(PosixOriginTest, EachRequestIsCounted) {
  const OriginStats& stats = origin_->stats();
  const uint64_t fetches = stats.attr_fetches.load();
  ASSERT_OK(origin_->GetAttr(me_, "d/f").status());
  EXPECT_EQ(stats.attr_fetches.load(), fetches + 1);
  const uint64_t opens = stats.opens.load();
  auto file = origin_->OpenFile(me_, "d/f", O_RDONLY);
  ASSERT_OK(file);
  EXPECT_EQ(stats.opens.load(), opens + 1);
  char buf[4];
  ASSERT_OK((*file)->PRead(buf, 4, 0).status());
  EXPECT_GE(stats.reads.load(), 1u);
  uint64_t calls = 0;
  for (const auto& [name, value] : stats.Snapshot()) {
    if (name == "origin_calls") calls = value;
  }
  EXPECT_GE(calls, 3u);
}

TEST_F(PosixOriginTest, ChangesByPath) {
  auto made = origin_->MakeDir(me_, "d/sub", 0755);
  ASSERT_OK(made);
  EXPECT_TRUE(S_ISDIR(made->st_mode));
  auto created = origin_->Create(me_, "d/sub/n", 0644, O_WRONLY);
  ASSERT_OK(created);
  ASSERT_OK(created->file->PWrite("xyz", 3, 0).status());
  created->file.reset();
  ASSERT_OK(origin_->Rename(me_, "d/sub", "moved", 0));
  auto moved = origin_->GetAttr(me_, "moved/n");
  ASSERT_OK(moved);
  EXPECT_EQ(moved->st_size, 3);
  ASSERT_OK(origin_->Unlink(me_, "moved/n"));
  ASSERT_OK(origin_->RemoveDir(me_, "moved"));
  EXPECT_TRUE(absl::IsNotFound(origin_->GetAttr(me_, "moved").status()));
}

// Each call acts for the Caller it is given, whatever the thread's own
// identity: the origin checks that caller's permissions and what the call
// makes belongs to it. Needs root, which can act as others.
TEST_F(PosixOriginTest, EachCallActsForItsCaller) {
  if (geteuid() != 0) {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string_view(ci) == "true") {
      FAIL() << "acting as another user needs root, and CI runs as root";
    }
    GTEST_SKIP() << "acting as another user needs root";
  }
  Caller nobody;
  nobody.uid = 65534;
  nobody.gid = 65534;
  nobody.pid = getpid();
  ASSERT_EQ(chmod(dir_.path().c_str(), 0777), 0);
  ASSERT_EQ(chmod((dir_.path() + "/d/f").c_str(), 0600), 0);

  auto created = origin_->Create(nobody, "theirs", 0644, O_WRONLY);
  ASSERT_OK(created);
  EXPECT_EQ(created->attr.st_uid, 65534u);
  EXPECT_EQ(created->attr.st_gid, 65534u);
  auto made = origin_->MakeDir(nobody, "their_dir", 0755);
  ASSERT_OK(made);
  EXPECT_EQ(made->st_uid, 65534u);

  // Root's file, mode 0600: the daemon may read it, the caller may not.
  EXPECT_OK(origin_->CheckAccess(me_, "d/f", R_OK));
  EXPECT_EQ(StatusToErrno(origin_->CheckAccess(nobody, "d/f", R_OK)), EACCES);
  EXPECT_EQ(StatusToErrno(origin_->OpenFile(nobody, "d/f", O_RDONLY).status()),
            EACCES);
  EXPECT_EQ(StatusToErrno(origin_->Unlink(nobody, "d/f")), EACCES);
  EXPECT_OK(origin_->GetAttr(me_, "d/f").status());

  // The thread's identity is the daemon's again after each call.
  std::ifstream readable(dir_.path() + "/d/f");
  EXPECT_TRUE(readable.good());
}

}  // namespace
}  // namespace cachefs::testing
