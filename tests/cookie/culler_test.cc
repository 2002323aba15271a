// The daemon's culler over a real cache directory: the index built at
// start, admission at the limit, culling to a target that passes over
// objects in use, and the accounting it keeps from the cache's reports.

#include "cull/culler.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

class CullerTest : public CacheTest {
 protected:
  // Makes `n` objects of `granules` stored granules each, all relinquished.
  void MakeObjects(int n, uint64_t granules) {
    for (int i = 0; i < n; ++i) {
      auto cookie = volume_->AcquireCookie(absl::StrCat("f", i), "aux",
                                           granules * kGranule);
      AlignedBuffer buf(granules * kGranule);
      buf.Fill(0, i);
      ASSERT_OK(WriteSync(*cookie, 0, buf));
      Relinquish(cookie);
    }
  }
  void TearDown() override {
    culler_.reset();
    CacheTest::TearDown();
  }
  std::unique_ptr<Culler> culler_;
};

TEST_F(CullerTest, TheIndexAtStartHoldsEveryObjectWithItsBlocks) {
  OpenCache();
  MakeObjects(5, 2);
  auto culler = Culler::Start(cache_.get(), volume_, CullLimits{}, "lru");
  ASSERT_OK(culler);
  culler_ = *std::move(culler);
  EXPECT_EQ(culler_->indexed_objects(), 5u);
  // Allocated blocks: the data, and nothing for the holes.
  EXPECT_GE(culler_->stored_bytes(), 10 * kGranule);
  EXPECT_LT(culler_->stored_bytes(), 11 * kGranule);
}

TEST_F(CullerTest, WritesPastTheLimitAreNotCachedAndCounted) {
  OpenCache();
  CullLimits limits;
  limits.cache_size = 3 * kGranule;
  auto culler = Culler::Start(cache_.get(), volume_, limits, "lru");
  ASSERT_OK(culler);
  culler_ = *std::move(culler);
  auto cookie = volume_->AcquireCookie("big", "aux", 8 * kGranule);
  AlignedBuffer buf(kGranule);
  for (uint64_t g = 0; g < 8; ++g) {
    buf.Fill(g * kGranule, 1);
    (void)WriteSync(*cookie, g * kGranule, buf);
  }
  // The open cookie cannot be culled: what passed the limit was refused.
  EXPECT_LE(culler_->stored_bytes(), limits.cache_size);
  EXPECT_GE(Stat(&CacheStats::nospace), 5u);
  Relinquish(cookie);
}

TEST_F(CullerTest, CullToPassesOverObjectsInUseAndFreesTheRest) {
  OpenCache();
  MakeObjects(6, 1);
  auto culler = Culler::Start(cache_.get(), volume_, CullLimits{}, "lru");
  ASSERT_OK(culler);
  culler_ = *std::move(culler);
  // f0 is the oldest, so the first victim, but it is open.
  auto held = volume_->AcquireCookie("f0", "aux", kGranule);
  held->WaitReady();
  Culler::CullResult result = culler_->CullTo(0);
  EXPECT_EQ(result.objects, 5u);
  EXPECT_EQ(Stat(&CacheStats::culls), 5u);
  EXPECT_EQ(culler_->indexed_objects(), 1u);
  // The open one still has its data.
  EXPECT_TRUE(held->PrepareRead(0, kGranule).FullyCached());
  Relinquish(held);
  // The culled ones are gone: a new cookie finds nothing.
  auto again = volume_->AcquireCookie("f3", "aux", kGranule);
  EXPECT_FALSE(again->PrepareRead(0, kGranule).FullyCached());
  Relinquish(again);
}

TEST_F(CullerTest, TheThreadCullsFromTheCullMarkDownPastTheRunMark) {
  OpenCache();
  MakeObjects(20, 1);  // 20 granules stored
  CullLimits limits;
  limits.cache_size = 16 * kGranule;
  auto culler = Culler::Start(cache_.get(), volume_, limits, "arc");
  ASSERT_OK(culler);
  culler_ = *std::move(culler);
  // Over the cull mark at start: the thread culls within its period, down
  // below the run mark (limit less brun - bstop = 7%), less a margin.
  const uint64_t run_mark = limits.cache_size - limits.cache_size / 100 * 7;
  for (int i = 0; i < 200 && culler_->stored_bytes() > run_mark; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_LE(culler_->stored_bytes(), run_mark);
  EXPECT_GT(Stat(&CacheStats::cull_passes), 0u);
  EXPECT_GE(Stat(&CacheStats::culls), 5u);
}

TEST_F(CullerTest, RemovedAndReplacedObjectsLeaveTheCount) {
  OpenCache();
  auto culler = Culler::Start(cache_.get(), volume_, CullLimits{}, "lru");
  ASSERT_OK(culler);
  culler_ = *std::move(culler);
  auto cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  AlignedBuffer buf(2 * kGranule);
  buf.Fill(0, 3);
  ASSERT_OK(WriteSync(*cookie, 0, buf));
  EXPECT_EQ(culler_->stored_bytes(), 2 * kGranule);
  // An invalidation replaces the object with an empty one.
  cookie->Invalidate("aux-2", 2 * kGranule);
  EXPECT_EQ(culler_->stored_bytes(), 0u);
  ASSERT_OK(WriteSync(*cookie, 0, buf));
  EXPECT_EQ(culler_->stored_bytes(), 2 * kGranule);
  Relinquish(cookie, /*retire=*/true);  // deleted with the origin file
  EXPECT_EQ(culler_->stored_bytes(), 0u);
  EXPECT_EQ(culler_->indexed_objects(), 0u);
}

TEST(CullLimitsTest, MarksMustBeOrdered) {
  CullLimits ok;
  EXPECT_OK(ok.Validate());
  CullLimits bad;
  bad.bcull = 2;  // below bstop
  EXPECT_FALSE(bad.Validate().ok());
  bad = CullLimits{};
  bad.frun = 100;
  EXPECT_FALSE(bad.Validate().ok());
  EXPECT_EQ(*ParseByteSize("64K"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("3g"), uint64_t{3} << 30);
  EXPECT_EQ(*ParseByteSize("1T"), uint64_t{1} << 40);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("12Q").ok());
  EXPECT_FALSE(ParseByteSize("99999999999999T").ok());
}

}  // namespace
}  // namespace cachefs::testing
