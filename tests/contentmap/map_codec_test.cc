// EncodeMap / DecodeMap: which encoding each shape gets, round trips, and
// rejection of every kind of inconsistent payload.

#include <cstdint>
#include <random>
#include <string>

#include "contentmap/object_record.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

constexpr uint64_t kG = kDefaultGranuleSize;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint32_t kShift = kDefaultGranuleShift;

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

// Encodes `map`, checks the encoding chosen, and checks it decodes back.
void ExpectRoundTrip(const ContentMap& map, MapEncoding expected) {
  const EncodedMap encoded = EncodeMap(map);
  EXPECT_EQ(encoded.encoding, expected);
  absl::StatusOr<ContentMap> decoded =
      DecodeMap(encoded.encoding, encoded.payload, map.object_size(),
                map.granule_shift());
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, map);
  EXPECT_EQ(decoded->granules_present(), map.granules_present());
}

void ExpectCorrupt(MapEncoding encoding, const std::string& payload,
                   uint64_t object_size, const std::string& message,
                   uint32_t shift = kShift) {
  absl::StatusOr<ContentMap> decoded =
      DecodeMap(encoding, payload, object_size, shift);
  ASSERT_FALSE(decoded.ok())
      << "decoded a map of " << decoded->granules_present() << " granules";
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find(message), absl::string_view::npos)
      << decoded.status();
}

TEST(MapCodecTest, CommonShapesGetCompactEncodings) {
  ContentMap map(kGiB);
  ExpectRoundTrip(map, MapEncoding::kEmpty);
  EXPECT_TRUE(EncodeMap(map).payload.empty());
  map.MarkPresent(0, 1000);
  ExpectRoundTrip(map, MapEncoding::kPrefix);
  EXPECT_EQ(EncodeMap(map).payload, Varint(1000));
  map.MarkPresent(0, map.num_granules());
  ExpectRoundTrip(map, MapEncoding::kComplete);
  EXPECT_TRUE(EncodeMap(map).payload.empty());
  map.Clear(10, 5);
  map.Clear(3000, 1);
  ExpectRoundTrip(map, MapEncoding::kRuns);
  // Runs (0,10) (5,2985) (1,1095): six varints.
  EXPECT_EQ(EncodeMap(map).payload, Varint(0) + Varint(10) + Varint(5) +
                                        Varint(2985) + Varint(1) +
                                        Varint(1095));
}

TEST(MapCodecTest, EmptyObjectAndPartialLastGranule) {
  ExpectRoundTrip(ContentMap(0), MapEncoding::kEmpty);
  ContentMap map(5 * kG + 1);
  map.MarkPresent(5, 1);  // only the one-byte last granule
  ExpectRoundTrip(map, MapEncoding::kRuns);
}

TEST(MapCodecTest, ScatteredPicksSmallerOfRunsAndBitmap) {
  // Every other granule: a bitmap is 1 bit each, runs 2 bytes each.
  ContentMap dense(4096 * kG);
  for (uint64_t g = 0; g < 4096; g += 2) dense.MarkPresent(g, 1);
  ExpectRoundTrip(dense, MapEncoding::kBitmap);
  EXPECT_EQ(EncodeMap(dense).payload.size(), 4096u / 8);
  // A few granules in a 1M-granule map: runs are far smaller.
  ContentMap sparse(uint64_t{1} << 20 << kShift);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) sparse.MarkPresent(rng() % (1 << 20), 1);
  ExpectRoundTrip(sparse, MapEncoding::kRuns);
  EXPECT_LT(EncodeMap(sparse).payload.size(), 200u * 4);
}

TEST(MapCodecTest, RandomMapsRoundTrip) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 200; ++i) {
    ContentMap map(rng() % (3000 * kG), 12 + rng() % 19);
    const int ops = rng() % 40;
    for (int op = 0; op < ops; ++op) {
      const uint64_t n = map.num_granules() + 1;
      map.MarkPresent(rng() % n, rng() % (rng() % 2 ? 3 : n));
    }
    const EncodedMap encoded = EncodeMap(map);
    absl::StatusOr<ContentMap> decoded =
        DecodeMap(encoded.encoding, encoded.payload, map.object_size(),
                  map.granule_shift());
    ASSERT_OK(decoded);
    ASSERT_EQ(*decoded, map);
    // The runs encoding is used only when no larger than the bitmap.
    EXPECT_LE(encoded.payload.size(), map.words().size() * 8);
  }
}

TEST(MapCodecTest, RejectsBadGeometry) {
  ExpectCorrupt(MapEncoding::kEmpty, "", kGiB, "bad granule shift 11", 11);
  ExpectCorrupt(MapEncoding::kEmpty, "", kGiB, "bad granule shift 31", 31);
  ExpectCorrupt(MapEncoding::kEmpty, "", kGiB, "bad granule shift 64", 64);
  // 2^63 bytes in 4 KiB granules would be a 2^51-granule map.
  ExpectCorrupt(MapEncoding::kEmpty, "", uint64_t{1} << 63, "granules", 12);
  ExpectCorrupt(MapEncoding::kEmpty, "", (kMaxGranules << 12) + 1,
                "more than 4294967296 granules", 12);
  ExpectCorrupt(MapEncoding::kRuns, Varint(0) + Varint(1), UINT64_MAX,
                "granules", 30);
}

TEST(MapCodecTest, RejectsPayloadWhereNoneBelongs) {
  ExpectCorrupt(MapEncoding::kEmpty, "x", kGiB, "empty map with 1 payload");
  ExpectCorrupt(MapEncoding::kComplete, "xy", kGiB,
                "complete map with 2 payload");
  ExpectCorrupt(MapEncoding::kExternal, "", kGiB, "external map reference");
  ExpectCorrupt(static_cast<MapEncoding>(9), "", kGiB,
                "unknown map encoding 9");
}

TEST(MapCodecTest, RejectsBadPrefix) {
  ExpectCorrupt(MapEncoding::kPrefix, Varint(4097), kGiB,
                "prefix of 4097 granules in an object of 4096");
  ExpectCorrupt(MapEncoding::kPrefix, "", kGiB,
                "prefix length varint truncated");
  ExpectCorrupt(MapEncoding::kPrefix, "\x85", kGiB, "varint truncated");
  ExpectCorrupt(MapEncoding::kPrefix, Varint(5) + "z", kGiB,
                "1 trailing bytes");
  ExpectCorrupt(MapEncoding::kPrefix, std::string(10, '\xff') + '\x01', kGiB,
                "varint overflows 64 bits");
  // The 10th byte may carry only the top bit of a u64.
  ExpectCorrupt(MapEncoding::kPrefix, std::string(9, '\xff') + '\x02', kGiB,
                "varint overflows 64 bits");
}

TEST(MapCodecTest, RejectsBadRuns) {
  ExpectCorrupt(MapEncoding::kRuns, Varint(3) + Varint(0), kGiB,
                "run 0 is empty");
  ExpectCorrupt(MapEncoding::kRuns,
                Varint(0) + Varint(2) + Varint(0) + Varint(2), kGiB,
                "run 1 touches the run before it");
  ExpectCorrupt(MapEncoding::kRuns, Varint(4000) + Varint(97), kGiB,
                "run 0 (gap 4000, length 97) ends past granule 4096");
  ExpectCorrupt(MapEncoding::kRuns, Varint(4097) + Varint(1), kGiB,
                "ends past granule");
  // Values chosen so that an unchecked sum would wrap around to small.
  ExpectCorrupt(MapEncoding::kRuns, Varint(10) + Varint(UINT64_MAX - 5), kGiB,
                "ends past");
  ExpectCorrupt(MapEncoding::kRuns,
                Varint(1) + Varint(1) + Varint(UINT64_MAX) + Varint(1), kGiB,
                "run 1");
  ExpectCorrupt(MapEncoding::kRuns, Varint(1), kGiB,
                "run 0 length varint truncated");
  ExpectCorrupt(MapEncoding::kRuns, std::string(11, '\x80'), kGiB,
                "run 0 gap varint overflows");
}

TEST(MapCodecTest, RejectsBadBitmap) {
  const uint64_t size = 100 * kG;  // 2 words
  std::string bitmap(16, '\0');
  absl::StatusOr<ContentMap> zeros =
      DecodeMap(MapEncoding::kBitmap, bitmap, size, kShift);
  ASSERT_OK(zeros);
  EXPECT_TRUE(zeros->empty());
  ExpectCorrupt(MapEncoding::kBitmap, bitmap.substr(0, 15), size,
                "bitmap of 15 bytes for 100 granules (needs 16)");
  ExpectCorrupt(MapEncoding::kBitmap, bitmap + '\0', size, "needs 16");
  bitmap[12] = 0x10;  // bit 100: granule 100 of a 100-granule object
  ExpectCorrupt(MapEncoding::kBitmap, bitmap, size,
                "bits set past granule 100");
}

}  // namespace
}  // namespace cachefs
