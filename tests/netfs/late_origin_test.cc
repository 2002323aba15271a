// LateOrigin: an origin opened by the first call after its server answers.
// Until then every call fails with ENOTCONN (which marks an origin down)
// and changes nothing; one open runs at a time, so a call made while an
// open blocks fails at once; once open, calls reach the real origin.

#include "netfs/late_origin.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "io/errno_status.h"
#include "netfs/posix_origin.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

class LateOriginTest : public ::testing::Test {
 protected:
  void SetUp() override { std::ofstream(dir_.path() + "/f") << "data"; }

  // A late origin over dir_ whose opens fail until `reachable_` is set.
  std::unique_ptr<LateOrigin> MakeLate() {
    Origin::Traits traits = PosixOrigin::TraitsOfMountType("fuse.sshfs");
    return std::make_unique<LateOrigin>(
        "test origin", traits, absl::UnavailableError("first open"),
        [this]() -> absl::StatusOr<std::unique_ptr<Origin>> {
          opens_.fetch_add(1);
          if (block_ != nullptr) block_->WaitForNotification();
          if (!reachable_.load()) {
            return ErrnoToStatus(ENOTCONN, "open of the test origin");
          }
          auto origin = PosixOrigin::Open(dir_.path());
          if (!origin.ok()) return origin.status();
          return std::unique_ptr<Origin>(*std::move(origin));
        });
  }

  TempDir dir_;
  std::atomic<bool> reachable_{false};
  std::atomic<int> opens_{0};
  absl::Notification* block_ = nullptr;
  const Caller& me_ = Caller::Daemon();
};

TEST_F(LateOriginTest, CallsFailWithEnotconnUntilTheOriginOpens) {
  std::unique_ptr<LateOrigin> late = MakeLate();
  EXPECT_FALSE(late->opened());
  // The traits the mount table gave, until the origin is open.
  EXPECT_FALSE(late->traits().stable_inode_numbers);
  EXPECT_TRUE(late->traits().calls_may_hang);
  EXPECT_FALSE(late->traits().xattrs);

  absl::StatusOr<struct stat> st = late->GetAttr(me_, "f");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(StatusToErrno(st.status()), ENOTCONN);
  EXPECT_NE(st.status().message().find("test origin"), std::string::npos);
  EXPECT_EQ(StatusToErrno(late->Unlink(me_, "f")), ENOTCONN);
  struct stat kept;
  EXPECT_EQ(stat((dir_.path() + "/f").c_str(), &kept), 0);
  EXPECT_EQ(opens_.load(), 2);  // each call tried again
  EXPECT_EQ(late->stats().attr_fetches.load(), 0u);

  reachable_ = true;
  st = late->GetAttr(me_, "f");
  ASSERT_OK(st);
  EXPECT_EQ(st->st_size, 4);
  EXPECT_TRUE(late->opened());
  EXPECT_EQ(late->traits().fs_type,
            PosixOrigin::Open(dir_.path()).value()->traits().fs_type);
  EXPECT_EQ(late->stats().attr_fetches.load(), 1u);
  ASSERT_OK(late->GetAttr(me_, ""));
  EXPECT_EQ(opens_.load(), 3);  // opened once, kept
}

TEST_F(LateOriginTest, ACallDuringABlockedOpenFailsAtOnce) {
  absl::Notification unblock;
  block_ = &unblock;
  std::unique_ptr<LateOrigin> late = MakeLate();
  reachable_ = true;
  absl::StatusOr<struct stat> first = absl::UnknownError("not run");
  std::thread opener([&] { first = late->GetAttr(me_, "f"); });
  // Also when an assertion below returns early.
  absl::Cleanup finish = [&] {
    if (!unblock.HasBeenNotified()) unblock.Notify();
    if (opener.joinable()) opener.join();
  };
  for (int i = 0; i < 10000 && opens_.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(opens_.load(), 1);
  absl::StatusOr<struct stat> during = late->GetAttr(me_, "f");
  ASSERT_FALSE(during.ok());
  EXPECT_EQ(StatusToErrno(during.status()), ENOTCONN);
  EXPECT_EQ(opens_.load(), 1);
  std::move(finish).Invoke();
  ASSERT_OK(first);
  ASSERT_OK(late->GetAttr(me_, "f"));
}

}  // namespace
}  // namespace cachefs::testing
