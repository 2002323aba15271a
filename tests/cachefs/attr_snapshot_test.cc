// The attribute snapshot: a round trip keeps what is young enough, with
// its age; old, future-dated and damaged snapshots bring nothing back.

#include "cachefs/attr_snapshot.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

constexpr int64_t kSecond = 1000000000;

struct stat AttrOfSize(off_t size) {
  struct stat st = {};
  st.st_mode = S_IFREG | 0644;
  st.st_size = size;
  st.st_ino = 1000 + size;
  st.st_mtim = {1700000000, 123456789};
  return st;
}

TEST(AttrSnapshotTest, ARoundTripKeepsTheAttributesAndTheirAge) {
  AttrCache saved(100);
  // Fetched 5 and 50 seconds before "now" on the saving side.
  saved.Put("young", AttrOfSize(1), 100 * kSecond - 5 * kSecond);
  saved.Put("dir/old", AttrOfSize(2), 100 * kSecond - 50 * kSecond);
  std::string data = EncodeAttrSnapshot(
      saved, {100 * kSecond, 1800000000 * kSecond}, 60 * kSecond);
  // Loaded 10 s later, on another monotonic clock, keeping 30 s.
  AttrCache loaded(100);
  auto count = DecodeAttrSnapshot(
      data, {7 * kSecond, 1800000010 * kSecond}, 30 * kSecond, &loaded);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 1u);  // 15 s old is kept, 60 s old is not
  int64_t fetched = 0;
  auto young = loaded.Get("young", 30 * kSecond, 7 * kSecond, &fetched);
  ASSERT_TRUE(young.has_value());
  EXPECT_EQ(young->st_size, 1);
  EXPECT_EQ(young->st_ino, 1001u);
  EXPECT_EQ(young->st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(fetched, 7 * kSecond - 15 * kSecond);
  EXPECT_FALSE(loaded.Get("dir/old", 3600 * kSecond, 7 * kSecond).has_value());
}

TEST(AttrSnapshotTest, EntriesFromTheFutureAreDropped) {
  AttrCache saved(10);
  saved.Put("f", AttrOfSize(1), 10 * kSecond);
  std::string data =
      EncodeAttrSnapshot(saved, {10 * kSecond, 2000 * kSecond}, kSecond);
  AttrCache loaded(10);
  // The wall clock went back by an hour since.
  auto count = DecodeAttrSnapshot(data, {0, 2000 * kSecond - 3600 * kSecond},
                                  3600 * kSecond, &loaded);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0u);
}

TEST(AttrSnapshotTest, ADamagedSnapshotBringsNothingBack) {
  AttrCache saved(10);
  for (int i = 0; i < 5; ++i) {
    saved.Put("f" + std::to_string(i), AttrOfSize(i), 10 * kSecond);
  }
  const std::string data =
      EncodeAttrSnapshot(saved, {10 * kSecond, 2000 * kSecond}, kSecond);
  for (size_t at : {size_t{0}, size_t{9}, data.size() / 2, data.size() - 1}) {
    std::string bad = data;
    bad[at] ^= 0x40;
    AttrCache loaded(10);
    EXPECT_FALSE(DecodeAttrSnapshot(bad, {10 * kSecond, 2000 * kSecond},
                                    kSecond, &loaded)
                     .ok())
        << at;
    EXPECT_EQ(loaded.size(), 0u);
  }
  AttrCache loaded(10);
  EXPECT_FALSE(DecodeAttrSnapshot(data.substr(0, data.size() - 7),
                                  {10 * kSecond, 2000 * kSecond}, kSecond,
                                  &loaded)
                   .ok());
  EXPECT_EQ(loaded.size(), 0u);
}

}  // namespace
}  // namespace cachefs::testing
