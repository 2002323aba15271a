// StoreRecord / LoadRecord on a real filesystem (TempDir, /var/tmp by
// default): inline records in the xattr, and sidecars for large maps.

#include "contentmap/record_store.h"

#include <fcntl.h>

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "io/env.h"
#include "tests/contentmap/record_store_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using testing::TempDir;

class RecordStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<int> fd =
        env_->OpenAt(dir_.fd(), kName, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_OK(fd);
    fd_ = *fd;
  }
  void TearDown() override {
    if (fd_ >= 0) env_->Close(fd_).IgnoreError();
  }

  bool SidecarExists() { return env_->FStatAt(dir_.fd(), kSidecar, 0).ok(); }

  static constexpr char kName[] = "object";
  static constexpr char kSidecar[] = "object.map";
  Env* env_ = Env::Default();
  TempDir dir_;
  int fd_ = -1;
};

TEST_F(RecordStoreTest, NoRecordIsNotFound) {
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound)
      << loaded.status();
}

TEST_F(RecordStoreTest, SmallRecordLivesInTheXattr) {
  ObjectRecord record = SparseRecord(uint64_t{1} << 30, 5, 1);
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, record);
  ASSERT_OK(stored);
  absl::StatusOr<std::string> xattr = env_->GetXattr(fd_, kRecordXattr);
  ASSERT_OK(xattr);
  EXPECT_LE(xattr->size(), kMaxInlineRecord);
  EXPECT_FALSE(*RecordHasExternalMap(*xattr));
  EXPECT_FALSE(SidecarExists());
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  ASSERT_OK(loaded);
  EXPECT_EQ(*loaded, record);
}

TEST_F(RecordStoreTest, DirtyStateRoundTrips) {
  ObjectRecord record = SparseRecord(12345, 0, 1);
  record.state = ContentState::kDirty;
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, record);
  ASSERT_OK(stored);
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->state, ContentState::kDirty);
  record.state = ContentState::kClean;
  const absl::Status again = StoreRecord(env_, dir_.fd(), kName, fd_, record);
  ASSERT_OK(again);
  loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->state, ContentState::kClean);
}

TEST_F(RecordStoreTest, TebibyteSparseObjectRoundTripsThroughSidecar) {
  const uint64_t size = uint64_t{1} << 40;
  const absl::Status truncated = env_->FTruncate(fd_, size);
  ASSERT_OK(truncated);
  const ObjectRecord record = SparseRecord(size, 20000, 42);
  ASSERT_GT(record.map.granules_present(), 19900u);
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, record);
  ASSERT_OK(stored);
  EXPECT_TRUE(SidecarExists());
  absl::StatusOr<std::string> xattr = env_->GetXattr(fd_, kRecordXattr);
  ASSERT_OK(xattr);
  EXPECT_TRUE(*RecordHasExternalMap(*xattr));
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  ASSERT_OK(loaded);
  EXPECT_EQ(*loaded, record);
  EXPECT_EQ(loaded->map.granules_present(), record.map.granules_present());
  EXPECT_EQ(loaded->map.Runs(0, size), record.map.Runs(0, size));
}

TEST_F(RecordStoreTest, SmallerMapReplacesSidecarWithInlineRecord) {
  const ObjectRecord big = SparseRecord(uint64_t{1} << 40, 5000, 1);
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, big);
  ASSERT_OK(stored);
  ASSERT_TRUE(SidecarExists());
  const ObjectRecord small = SparseRecord(uint64_t{1} << 40, 3, 2);
  const absl::Status again = StoreRecord(env_, dir_.fd(), kName, fd_, small);
  ASSERT_OK(again);
  EXPECT_FALSE(SidecarExists());
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  ASSERT_OK(loaded);
  EXPECT_EQ(*loaded, small);
}

TEST_F(RecordStoreTest, MissingSidecarIsAnErrorNotAnEmptyMap) {
  const ObjectRecord record = SparseRecord(uint64_t{1} << 40, 5000, 3);
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, record);
  ASSERT_OK(stored);
  const absl::Status removed = RemoveSidecar(env_, dir_.fd(), kName);
  ASSERT_OK(removed);
  EXPECT_FALSE(SidecarExists());
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find("object.map is missing"),
            absl::string_view::npos)
      << loaded.status();
  // Removing what is already gone is not an error.
  const absl::Status removed_again = RemoveSidecar(env_, dir_.fd(), kName);
  EXPECT_OK(removed_again);
}

TEST_F(RecordStoreTest, DamagedSidecarIsAnError) {
  const ObjectRecord record = SparseRecord(uint64_t{1} << 40, 5000, 4);
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, record);
  ASSERT_OK(stored);
  absl::StatusOr<int> side = env_->OpenAt(dir_.fd(), kSidecar, O_RDWR, 0);
  ASSERT_OK(side);
  const char byte = 0x5a;
  absl::StatusOr<size_t> wrote = env_->PWrite(*side, &byte, 1, 100);
  ASSERT_OK(wrote);
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("checksum mismatch"),
            absl::string_view::npos)
      << loaded.status();
  const absl::Status shortened = env_->FTruncate(*side, 10);
  ASSERT_OK(shortened);
  loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("has 10 bytes"),
            absl::string_view::npos)
      << loaded.status();
  env_->Close(*side).IgnoreError();
}

TEST_F(RecordStoreTest, SidecarOfAnotherStoreIsRejected) {
  // Stands in for a crash between the sidecar's rename and the xattr:
  // the old reference meets the new sidecar.
  const ObjectRecord first = SparseRecord(uint64_t{1} << 40, 5000, 5);
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, first);
  ASSERT_OK(stored);
  absl::StatusOr<std::string> old_xattr = env_->GetXattr(fd_, kRecordXattr);
  ASSERT_OK(old_xattr);
  const ObjectRecord second = SparseRecord(uint64_t{1} << 40, 5000, 6);
  const absl::Status again = StoreRecord(env_, dir_.fd(), kName, fd_, second);
  ASSERT_OK(again);
  const absl::Status reverted = env_->SetXattr(fd_, kRecordXattr, *old_xattr);
  ASSERT_OK(reverted);
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  EXPECT_FALSE(loaded.ok()) << "loaded a map made of two stores";
}

TEST_F(RecordStoreTest, CorruptXattrIsAnErrorNamingTheObject) {
  const absl::Status set = env_->SetXattr(fd_, kRecordXattr, "garbage!");
  ASSERT_OK(set);
  absl::StatusOr<ObjectRecord> loaded = LoadRecord(env_, dir_.fd(), kName, fd_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find("object"), absl::string_view::npos);
  EXPECT_NE(loaded.status().message().find("bad magic"),
            absl::string_view::npos)
      << loaded.status();
}

TEST_F(RecordStoreTest, UnencodableRecordIsRefusedBeforeWriting) {
  ObjectRecord record = SparseRecord(1000, 0, 1);
  record.aux = std::string(70000, 'a');
  const absl::Status stored = StoreRecord(env_, dir_.fd(), kName, fd_, record);
  EXPECT_EQ(stored.code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::string> xattr = env_->GetXattr(fd_, kRecordXattr);
  EXPECT_TRUE(absl::IsNotFound(xattr.status())) << xattr.status();
}

}  // namespace
}  // namespace cachefs
