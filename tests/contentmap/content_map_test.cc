#include "contentmap/content_map.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace cachefs {
namespace {

using RunList = std::vector<ContentMap::Run>;
constexpr uint64_t kG = kDefaultGranuleSize;

TEST(ContentMapTest, GranuleCountForEdgeSizes) {
  EXPECT_EQ(ContentMap(0).num_granules(), 0u);
  EXPECT_EQ(ContentMap(1).num_granules(), 1u);
  EXPECT_EQ(ContentMap(kG - 1).num_granules(), 1u);
  EXPECT_EQ(ContentMap(kG).num_granules(), 1u);
  EXPECT_EQ(ContentMap(kG + 1).num_granules(), 2u);
  EXPECT_EQ(ContentMap(uint64_t{1} << 40).num_granules(), uint64_t{1} << 22);
  EXPECT_EQ(ContentMap(10000, 12).num_granules(), 3u);
}

TEST(ContentMapTest, EmptyObjectHasNothingAndIsComplete) {
  ContentMap map(0);
  EXPECT_TRUE(map.empty());
  EXPECT_TRUE(map.complete());
  EXPECT_FALSE(map.IsPresent(0));
  EXPECT_TRUE(map.RangePresent(0, 0));
  EXPECT_FALSE(map.RangePresent(0, 1));
  EXPECT_EQ(map.BytesPresent(), 0u);
  EXPECT_TRUE(map.Runs(0, 100).empty());
  map.MarkPresent(0, 10);  // clipped to nothing
  EXPECT_EQ(map.granules_present(), 0u);
  EXPECT_EQ(map.NextPresent(0), 0u);
  EXPECT_EQ(map.NextMissing(0), 0u);
}

TEST(ContentMapTest, OneByteObject) {
  ContentMap map(1);
  EXPECT_FALSE(map.RangePresent(0, 1));
  map.MarkPresent(0, 1);
  EXPECT_TRUE(map.complete());
  EXPECT_TRUE(map.RangePresent(0, 1));
  EXPECT_FALSE(map.RangePresent(0, 2));  // byte 1 is past the end
  EXPECT_FALSE(map.RangePresent(1, 1));
  EXPECT_EQ(map.BytesPresent(), 1u);
  EXPECT_EQ(map.Runs(0, kG), (RunList{{0, 1, true}}));
}

TEST(ContentMapTest, ObjectsAroundOneGranule) {
  for (uint64_t size : {kG - 1, kG, kG + 1}) {
    SCOPED_TRACE(size);
    ContentMap map(size);
    map.MarkPresent(0, 100);
    EXPECT_TRUE(map.complete());
    EXPECT_EQ(map.BytesPresent(), size);
    EXPECT_TRUE(map.RangePresent(0, size));
    EXPECT_FALSE(map.RangePresent(0, size + 1));
    EXPECT_TRUE(map.RangePresent(size - 1, 1));
  }
}

TEST(ContentMapTest, BytesPresentCountsPartialLastGranule) {
  ContentMap map(3 * kG + 100);
  map.MarkPresent(3, 1);
  EXPECT_EQ(map.BytesPresent(), 100u);
  map.MarkPresent(0, 1);
  EXPECT_EQ(map.BytesPresent(), kG + 100);
  map.Clear(3, 1);
  EXPECT_EQ(map.BytesPresent(), kG);
}

TEST(ContentMapTest, RangePresentAtEdges) {
  ContentMap map(10 * kG + 5);
  map.MarkPresent(2, 3);  // granules 2, 3, 4
  EXPECT_TRUE(map.RangePresent(2 * kG, 3 * kG));
  EXPECT_FALSE(map.RangePresent(2 * kG - 1, 2));
  EXPECT_FALSE(map.RangePresent(2 * kG, 3 * kG + 1));
  EXPECT_TRUE(map.RangePresent(3 * kG + 7, 1));
  EXPECT_TRUE(map.RangePresent(123, 0));
  map.MarkPresent(10, 1);
  EXPECT_TRUE(map.RangePresent(10 * kG, 5));
  EXPECT_FALSE(map.RangePresent(10 * kG, 6));
  EXPECT_FALSE(map.RangePresent(10 * kG + 5, 1));
  // A length that would wrap around 2^64 is past the end, not a wrap.
  EXPECT_FALSE(map.RangePresent(10 * kG, UINT64_MAX));
}

TEST(ContentMapTest, RunsClipToRangeAndObject) {
  ContentMap map(10 * kG);
  map.MarkPresent(0, 1);
  map.MarkPresent(3, 4);
  EXPECT_EQ(
      map.Runs(0, UINT64_MAX),
      (RunList{{0, 1, true}, {1, 2, false}, {3, 4, true}, {7, 3, false}}));
  EXPECT_EQ(map.Runs(kG / 2, 4 * kG),
            (RunList{{0, 1, true}, {1, 2, false}, {3, 2, true}}));
  EXPECT_EQ(map.Runs(9 * kG + 1, 100 * kG), (RunList{{9, 1, false}}));
  EXPECT_TRUE(map.Runs(10 * kG, kG).empty());
  EXPECT_TRUE(map.Runs(0, 0).empty());
}

TEST(ContentMapTest, RunsCrossWordBoundaries) {
  ContentMap map(300 * kG);
  map.MarkPresent(60, 10);    // spans words 0 and 1
  map.MarkPresent(128, 130);  // spans words 2 to 4
  EXPECT_EQ(map.Runs(0, 300 * kG), (RunList{{0, 60, false},
                                            {60, 10, true},
                                            {70, 58, false},
                                            {128, 130, true},
                                            {258, 42, false}}));
  EXPECT_EQ(map.granules_present(), 140u);
  EXPECT_EQ(map.NextPresent(70), 128u);
  EXPECT_EQ(map.NextMissing(128), 258u);
  EXPECT_EQ(map.NextPresent(258), 300u);
}

TEST(ContentMapTest, MarkAndClearCountIncrementally) {
  ContentMap map(1000 * kG);
  map.MarkPresent(10, 100);
  map.MarkPresent(50, 100);  // overlaps: only 40 new
  EXPECT_EQ(map.granules_present(), 140u);
  map.Clear(0, 20);
  EXPECT_EQ(map.granules_present(), 130u);
  map.Clear(990, 100);  // clipped, nothing set there
  EXPECT_EQ(map.granules_present(), 130u);
  map.MarkPresent(995, UINT64_MAX);  // clipped to the end
  EXPECT_EQ(map.granules_present(), 135u);
  EXPECT_TRUE(map.IsPresent(999));
  EXPECT_FALSE(map.IsPresent(1000));
  map.ClearAll();
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.NextPresent(0), 1000u);
}

TEST(ContentMapTest, ClearBytesClearsEveryOverlappingGranule) {
  ContentMap map(10 * kG);
  map.MarkPresent(0, 10);
  map.ClearBytes(2 * kG + 1, kG);  // touches granules 2 and 3
  EXPECT_EQ(map.Runs(0, 10 * kG),
            (RunList{{0, 2, true}, {2, 2, false}, {4, 6, true}}));
  map.ClearBytes(9 * kG, UINT64_MAX);  // saturates instead of wrapping
  EXPECT_FALSE(map.IsPresent(9));
  map.ClearBytes(0, 0);
  EXPECT_TRUE(map.IsPresent(0));
}

TEST(ContentMapTest, ShrinkDropsTailAndCutGranule) {
  ContentMap map(10 * kG);
  map.MarkPresent(0, 10);
  map.Resize(5 * kG + 10);  // cuts granule 5
  EXPECT_EQ(map.num_granules(), 6u);
  EXPECT_EQ(map.granules_present(), 5u);
  EXPECT_FALSE(map.IsPresent(5));
  map.Resize(3 * kG);  // granule-aligned: granules 0-2 stay
  EXPECT_EQ(map.granules_present(), 3u);
  EXPECT_TRUE(map.complete());
  map.Resize(0);
  EXPECT_EQ(map.num_granules(), 0u);
  EXPECT_EQ(map.granules_present(), 0u);
}

TEST(ContentMapTest, ShrinkWithinPartialLastGranuleClearsIt) {
  ContentMap map(kG + 100);
  map.MarkPresent(0, 2);
  map.Resize(kG + 50);
  EXPECT_TRUE(map.IsPresent(0));
  EXPECT_FALSE(map.IsPresent(1));
}

TEST(ContentMapTest, GrowClearsOldPartialGranuleOnly) {
  ContentMap map(2 * kG + 100);
  map.MarkPresent(0, 3);
  map.Resize(2 * kG + 200);  // grows inside the partial granule
  EXPECT_EQ(map.Runs(0, UINT64_MAX), (RunList{{0, 2, true}, {2, 1, false}}));
  ContentMap aligned(2 * kG);
  aligned.MarkPresent(0, 2);
  aligned.Resize(100 * kG);
  EXPECT_EQ(aligned.granules_present(), 2u);
  EXPECT_EQ(aligned.NextPresent(2), 100u);
}

TEST(ContentMapTest, GrowAfterShrinkExposesNoStaleBits) {
  ContentMap map(200 * kG);
  map.MarkPresent(0, 200);
  map.Resize(70 * kG);
  map.Resize(200 * kG);
  EXPECT_EQ(map.granules_present(), 70u);
  EXPECT_EQ(map.NextPresent(70), 200u);
}

TEST(ContentMapTest, SetWordsRecountsAndEquality) {
  ContentMap a(130 * kG);
  a.SetWords({0xff, 0, 0x3});
  EXPECT_EQ(a.granules_present(), 10u);
  EXPECT_TRUE(a.IsPresent(129));
  ContentMap b(130 * kG);
  b.MarkPresent(0, 8);
  b.MarkPresent(128, 2);
  EXPECT_EQ(a, b);
  b.Clear(0, 1);
  EXPECT_NE(a, b);
  EXPECT_NE(ContentMap(kG), ContentMap(kG + 1));
  EXPECT_NE(ContentMap(kG, 18), ContentMap(kG, 17));
}

TEST(ContentMapTest, MemoryUsageIsOneBitPerGranule) {
  // 1 TiB in 256 KiB granules: 4M granules, 512 KiB of bits.
  const ContentMap map(uint64_t{1} << 40);
  EXPECT_GE(map.MemoryUsage(), size_t{512} << 10);
  EXPECT_LT(map.MemoryUsage(), (size_t{512} << 10) + 1024);
}

// Applies the same random operations to a ContentMap and to a
// std::vector<bool>, and compares every query after each step.
class ModelTest : public ::testing::TestWithParam<uint64_t> {};

void ExpectMatchesModel(const ContentMap& map, const std::vector<bool>& model,
                        std::mt19937_64& rng) {
  const uint64_t n = model.size();
  uint64_t present = 0;
  for (uint64_t g = 0; g < n; ++g) {
    ASSERT_EQ(map.IsPresent(g), model[g]) << "granule " << g;
    present += model[g];
  }
  ASSERT_EQ(map.granules_present(), present);
  const uint64_t size = map.object_size();
  const uint64_t pos = size == 0 ? 0 : rng() % size;
  const uint64_t len = rng() % (8 * kG);
  bool all = len > 0 ? pos + len <= size : true;
  for (uint64_t g = pos / kG; len > 0 && g <= (pos + len - 1) / kG; ++g) {
    all = all && g < n && model[g];
  }
  EXPECT_EQ(map.RangePresent(pos, len), all) << pos << "+" << len;
  // Runs over the whole object must tile it and agree with the model.
  uint64_t next = 0;
  map.ForEachRun(0, UINT64_MAX, [&](const ContentMap::Run& run) {
    ASSERT_EQ(run.first, next);
    ASSERT_GT(run.count, 0u);
    for (uint64_t g = run.first; g < run.first + run.count; ++g) {
      ASSERT_EQ(model[g], run.present) << "granule " << g;
    }
    if (run.first + run.count < n) {
      ASSERT_NE(model[run.first + run.count], run.present);
    }
    next = run.first + run.count;
  });
  EXPECT_EQ(next, n);
}

TEST_P(ModelTest, RandomOperationsMatchVectorModel) {
  std::mt19937_64 rng(GetParam());
  uint64_t size = rng() % (700 * kG);
  ContentMap map(size);
  std::vector<bool> model(map.num_granules());
  for (int step = 0; step < 300; ++step) {
    const uint64_t n = model.size();
    const uint64_t first = n == 0 ? 0 : rng() % (n + 2);
    const uint64_t count = rng() % 150;
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2:
        map.MarkPresent(first, count);
        for (uint64_t g = first; g < n && g < first + count; ++g) {
          model[g] = true;
        }
        break;
      case 3:
      case 4:
        map.Clear(first, count);
        for (uint64_t g = first; g < n && g < first + count; ++g) {
          model[g] = false;
        }
        break;
      case 5: {
        const uint64_t new_size = rng() % (700 * kG);
        uint64_t keep = n;  // granules that survive the resize
        if (new_size < size) keep = new_size / kG;
        if (new_size > size && size % kG != 0) keep = size / kG;
        map.Resize(new_size);
        model.resize(map.num_granules());
        for (uint64_t g = keep; g < model.size(); ++g) model[g] = false;
        size = new_size;
        break;
      }
      default:
        break;  // queries only
    }
    ASSERT_NO_FATAL_FAILURE(ExpectMatchesModel(map, model, rng));
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Range<uint64_t>(1, 9));

}  // namespace
}  // namespace cachefs
