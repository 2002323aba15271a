// OpenOriginFiles: an unlink waits for origin files whose last reference is
// dropped on another thread, and only as long as it is told to.

#include "netfs/open_origin_files.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace cachefs::testing {
namespace {

// An origin file that only records its close.
class ClosingFile : public OriginFile {
 public:
  explicit ClosingFile(std::atomic<bool>* closed) : closed_(closed) {}
  ~ClosingFile() override {
    absl::SleepFor(absl::Milliseconds(20));  // a close that asks a server
    closed_->store(true);
  }
  absl::StatusOr<size_t> PRead(void*, size_t, uint64_t) override {
    return absl::UnimplementedError("PRead");
  }
  absl::StatusOr<size_t> PWrite(const void*, size_t, uint64_t) override {
    return absl::UnimplementedError("PWrite");
  }
  absl::StatusOr<struct stat> Stat() override {
    return absl::UnimplementedError("Stat");
  }
  absl::Status Truncate(uint64_t) override {
    return absl::UnimplementedError("Truncate");
  }
  absl::Status Sync(bool) override { return absl::UnimplementedError("Sync"); }
  absl::Status Flush() override { return absl::UnimplementedError("Flush"); }
  absl::Status Allocate(int, uint64_t, uint64_t) override {
    return absl::UnimplementedError("Allocate");
  }
  absl::StatusOr<size_t> CopyTo(uint64_t, OriginFile&, uint64_t, size_t,
                                unsigned) override {
    return absl::UnimplementedError("CopyTo");
  }

 private:
  std::atomic<bool>* const closed_;
};

TEST(OpenOriginFilesTest, NothingCountedIsAllClosed) {
  auto files = std::make_shared<OpenOriginFiles>();
  EXPECT_TRUE(files->AwaitAllClosed(absl::ZeroDuration()));
}

TEST(OpenOriginFilesTest, AWaitEndsOnlyOnceTheCloseHasFinished) {
  auto files = std::make_shared<OpenOriginFiles>();
  std::atomic<bool> closed{false};
  std::shared_ptr<OriginFile> file =
      files->Count(std::make_unique<ClosingFile>(&closed));
  std::shared_ptr<OriginFile> reader = file;  // read-ahead still holds it
  file.reset();
  EXPECT_FALSE(files->AwaitAllClosed(absl::Milliseconds(10)));
  std::thread background([held = std::move(reader)]() mutable {
    absl::SleepFor(absl::Milliseconds(30));
    held.reset();
  });
  EXPECT_TRUE(files->AwaitAllClosed(absl::Seconds(10)));
  EXPECT_TRUE(closed.load());
  background.join();
}

TEST(OpenOriginFilesTest, TheCounterMayGoBeforeTheFiles) {
  std::atomic<bool> closed{false};
  std::shared_ptr<OriginFile> file;
  {
    auto files = std::make_shared<OpenOriginFiles>();
    file = files->Count(std::make_unique<ClosingFile>(&closed));
  }  // the inode is forgotten while its origin file is still closing
  file.reset();
  EXPECT_TRUE(closed.load());
}

TEST(OpenOriginFilesTest, SeveralFilesAreWaitedForTogether) {
  auto files = std::make_shared<OpenOriginFiles>();
  std::atomic<bool> first{false};
  std::atomic<bool> second{false};
  std::shared_ptr<OriginFile> a =
      files->Count(std::make_unique<ClosingFile>(&first));
  std::shared_ptr<OriginFile> b =
      files->Count(std::make_unique<ClosingFile>(&second));
  a.reset();
  EXPECT_FALSE(files->AwaitAllClosed(absl::Milliseconds(1)));
  b.reset();
  EXPECT_TRUE(files->AwaitAllClosed(absl::ZeroDuration()));
  EXPECT_TRUE(first.load() && second.load());
}

TEST(OpenOriginFilesTest, AFileIsRecentWhileOpenAndForAWhileAfterItsClose) {
  auto files = std::make_shared<OpenOriginFiles>();
  EXPECT_FALSE(files->OpenWithin(absl::Hours(1)));  // never opened
  std::atomic<bool> closed{false};
  std::shared_ptr<OriginFile> file =
      files->Count(std::make_unique<ClosingFile>(&closed));
  EXPECT_TRUE(files->OpenWithin(absl::ZeroDuration()));
  file.reset();
  EXPECT_TRUE(files->OpenWithin(absl::Hours(1)));
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_FALSE(files->OpenWithin(absl::Milliseconds(10)));
}

}  // namespace
}  // namespace cachefs::testing
