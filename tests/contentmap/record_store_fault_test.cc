// StoreRecord under injected faults: a store that fails must leave either
// the previous record loadable or no loadable record, never another map.

#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "contentmap/record_store.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "io/fault_injection_env.h"
#include "tests/contentmap/record_store_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using testing::TempDir;

constexpr uint64_t kTiB = uint64_t{1} << 40;
constexpr char kName[] = "object";

// A record that fits the xattr, or one whose map spills into a sidecar.
ObjectRecord Small(uint64_t seed) { return SparseRecord(kTiB, 4, seed); }
ObjectRecord Large(uint64_t seed) { return SparseRecord(kTiB, 3000, seed); }

class RecordStoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<int> fd =
        env_.OpenAt(dir_.fd(), kName, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_OK(fd);
    fd_ = *fd;
  }
  void TearDown() override {
    env_.ClearFaults();
    if (fd_ >= 0) env_.Close(fd_).IgnoreError();
  }

  absl::Status Store(const ObjectRecord& record) {
    return StoreRecord(&env_, dir_.fd(), kName, fd_, record);
  }
  absl::StatusOr<ObjectRecord> Load() {
    return LoadRecord(&env_, dir_.fd(), kName, fd_);
  }

  // Stores `before`, then `after` with `ops` failing, and checks what a
  // load sees. Returns whether the failed store left `before` loadable.
  bool StoreWithFault(const ObjectRecord& before, const ObjectRecord& after,
                      unsigned ops) {
    EXPECT_OK(Store(before));
    env_.SetError(ops, EIO);
    const absl::Status stored = Store(after);
    env_.ClearFaults();
    absl::StatusOr<ObjectRecord> loaded = Load();
    if (stored.ok()) {
      // The fault hit nothing the store depends on (e.g. a cleanup).
      EXPECT_TRUE(loaded.ok() && *loaded == after) << loaded.status();
      return false;
    }
    EXPECT_NE(stored.message().find("object"), absl::string_view::npos)
        << stored;
    if (!loaded.ok()) {
      EXPECT_NE(loaded.status().code(), absl::StatusCode::kNotFound);
      return false;
    }
    EXPECT_TRUE(*loaded == before) << "a failed store left a different map";
    return true;
  }

  Env* default_env_ = Env::Default();
  FaultInjectionEnv env_{default_env_};
  TempDir dir_;
  int fd_ = -1;
};

TEST_F(RecordStoreFaultTest, FailedXattrWriteKeepsPreviousInlineRecord) {
  EXPECT_TRUE(StoreWithFault(Small(1), Small(2), FaultInjectionEnv::kSetXattr));
  EXPECT_TRUE(StoreWithFault(Small(3), Large(4), FaultInjectionEnv::kSetXattr));
}

TEST_F(RecordStoreFaultTest, FailedSidecarWriteKeepsPreviousRecord) {
  EXPECT_TRUE(
      StoreWithFault(Small(1), Large(2), FaultInjectionEnv::kDataWrite));
  EXPECT_TRUE(
      StoreWithFault(Large(3), Large(4), FaultInjectionEnv::kDataWrite));
  // The half-written temporary sidecar is not left behind.
  EXPECT_FALSE(env_.FStatAt(dir_.fd(), "object.map.tmp", 0).ok());
}

TEST_F(RecordStoreFaultTest, FailedSidecarSyncKeepsPreviousRecord) {
  EXPECT_TRUE(StoreWithFault(Small(1), Large(2), FaultInjectionEnv::kSync));
  EXPECT_TRUE(StoreWithFault(Large(3), Large(4), FaultInjectionEnv::kSync));
}

TEST_F(RecordStoreFaultTest, NoSpaceForSidecarKeepsPreviousRecord) {
  ASSERT_OK(Store(Large(1)));
  env_.SetNoSpace(true);
  const absl::Status stored = Store(Large(2));
  env_.SetNoSpace(false);
  EXPECT_EQ(stored.code(), absl::StatusCode::kResourceExhausted) << stored;
  absl::StatusOr<ObjectRecord> loaded = Load();
  ASSERT_OK(loaded);
  EXPECT_EQ(*loaded, Large(1));
}

TEST_F(RecordStoreFaultTest, XattrFailureAfterSidecarRenameIsUnreadable) {
  // The new sidecar is in place but the old reference still points at the
  // old one: the CRC tells them apart.
  EXPECT_FALSE(
      StoreWithFault(Large(1), Large(2), FaultInjectionEnv::kSetXattr));
  absl::StatusOr<ObjectRecord> loaded = Load();
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss)
      << loaded.status();
}

TEST_F(RecordStoreFaultTest, EveryFaultEveryShapeNeverGivesAnotherMap) {
  const unsigned kOps[] = {
      FaultInjectionEnv::kOpen, FaultInjectionEnv::kDataWrite,
      FaultInjectionEnv::kSync, FaultInjectionEnv::kSetXattr,
      FaultInjectionEnv::kNamespace};
  uint64_t seed = 10;
  for (unsigned op : kOps) {
    for (bool large_before : {false, true}) {
      for (bool large_after : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << "op " << op << " before " << large_before << " after "
                     << large_after);
        const ObjectRecord before = large_before ? Large(seed) : Small(seed);
        const ObjectRecord after =
            large_after ? Large(seed + 1) : Small(seed + 1);
        StoreWithFault(before, after, op);
        seed += 2;
      }
    }
  }
}

TEST_F(RecordStoreFaultTest, StoredSidecarSurvivesCrash) {
  ASSERT_OK(Store(Large(1)));
  ASSERT_OK(env_.DropUnsyncedData());
  absl::StatusOr<ObjectRecord> loaded = Load();
  ASSERT_OK(loaded);
  EXPECT_EQ(*loaded, Large(1));
}

TEST_F(RecordStoreFaultTest, UnreadableXattrIsAnErrorNotMissing) {
  ASSERT_OK(Store(Small(1)));
  env_.SetError(FaultInjectionEnv::kGetXattr, EIO);
  absl::StatusOr<ObjectRecord> loaded = Load();
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cachefs
