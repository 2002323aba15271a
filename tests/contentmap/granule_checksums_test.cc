#include "contentmap/granule_checksums.h"

#include <string>

#include "contentmap/crc32c.h"
#include "gtest/gtest.h"

namespace cachefs {
namespace {

constexpr uint32_t kShift = 18;  // 256 KiB granules

TEST(GranuleChecksumsTest, GranuleBytesCountsTheTailOnly) {
  ContentMap map((3 << kShift) + 100, kShift);
  EXPECT_EQ(GranuleBytes(map, 0), uint64_t{1} << kShift);
  EXPECT_EQ(GranuleBytes(map, 3), 100u);
  EXPECT_EQ(GranuleBytes(map, 4), 0u);
}

TEST(GranuleChecksumsTest, PackKeepsThePresentGranulesInOrder) {
  ContentMap map(8 << kShift, kShift);
  map.MarkPresent(1, 1);
  map.MarkPresent(5, 2);
  std::vector<uint32_t> per_granule = {10, 11, 12, 13, 14, 15, 16, 17};
  std::vector<uint32_t> packed = PackChecksums(map, per_granule);
  EXPECT_EQ(packed, (std::vector<uint32_t>{11, 15, 16}));
  EXPECT_EQ(UnpackChecksums(map, packed),
            (std::vector<uint32_t>{0, 11, 0, 0, 0, 15, 16, 0}));
}

TEST(GranuleChecksumsTest, ExtendingByZerosEqualsSummingThem) {
  const std::string data = "granule tail";
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{4095},
                     uint64_t{64 * 1024}, uint64_t{200000}}) {
    EXPECT_EQ(Crc32cExtendZeros(Crc32c(data), n),
              Crc32c(data + std::string(n, '\0')))
        << n;
  }
}

}  // namespace
}  // namespace cachefs
