// EncodeRecord / DecodeRecord: round trips, compactness, and clean failure
// on truncated, corrupt, foreign and wrong-version input.

#include "contentmap/object_record.h"

#include <cstdint>
#include <random>
#include <string>

#include "contentmap/crc32c.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

constexpr uint64_t kG = kDefaultGranuleSize;
constexpr uint64_t kGiB = uint64_t{1} << 30;
// Offsets into the fixed header, as object_record.h lays it out.
constexpr size_t kVersionOffset = 4;
constexpr size_t kStateOffset = 6;
constexpr size_t kShiftOffset = 7;
constexpr size_t kEncodingOffset = 8;
constexpr size_t kReservedOffset = 9;

ObjectRecord MakeRecord(uint64_t size) {
  ObjectRecord record;
  record.volume_key = "nfs:server:/export";
  record.file_key = "inode 1234 generation 5";
  record.aux = std::string("\x01\x00\xff mtime ctime", 16);
  record.map = ContentMap(size);
  return record;
}

// Recomputes the trailing CRC after a field was patched, so the decoder
// gets past the checksum to the field check under test.
std::string Reseal(std::string bytes) {
  const size_t body = bytes.size() - 4;
  const uint32_t crc = Crc32c(std::string_view(bytes).substr(0, body));
  for (int i = 0; i < 4; ++i)
    bytes[body + i] = static_cast<char>(crc >> (8 * i));
  return bytes;
}

void ExpectError(const absl::StatusOr<ObjectRecord>& decoded,
                 const std::string& message) {
  ASSERT_FALSE(decoded.ok()) << "decoded a record from bad input";
  EXPECT_NE(decoded.status().message().find(message), absl::string_view::npos)
      << decoded.status();
}

TEST(ObjectRecordTest, RoundTripsEveryField) {
  ObjectRecord record = MakeRecord(10 * kGiB + 12345);
  record.state = ContentState::kDirty;
  record.map.MarkPresent(7, 100);
  record.map.MarkPresent(40960, 1);  // the partial last granule
  ASSERT_EQ(record.map.num_granules(), 40961u);
  absl::StatusOr<ObjectRecord> decoded = DecodeRecord(EncodeRecord(record));
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, record);
  EXPECT_EQ(decoded->state, ContentState::kDirty);
  EXPECT_EQ(decoded->aux, record.aux);
  EXPECT_EQ(decoded->map.BytesPresent(), 100 * kG + 12345);
}

TEST(ObjectRecordTest, CommonShapesEncodeSmall) {
  const size_t keys = MakeRecord(0).volume_key.size() +
                      MakeRecord(0).file_key.size() + MakeRecord(0).aux.size();
  ObjectRecord record = MakeRecord(kGiB);
  EXPECT_LT(EncodeRecord(record).size() - keys, 44u);  // empty
  record.map.MarkPresent(0, 4096);
  EXPECT_LT(EncodeRecord(record).size(), 100u);  // complete 1 GiB
  EXPECT_LT(EncodeRecord(record).size() - keys, 44u);
  record.map = ContentMap(uint64_t{1} << 40);  // 1 TiB
  record.map.MarkPresent(0, 1 << 21);          // its first half
  EXPECT_LT(EncodeRecord(record).size() - keys, 44u);
  for (int i = 1; i <= 5; ++i) record.map.MarkPresent(i * 500000 + 3, 17);
  EXPECT_LT(EncodeRecord(record).size() - keys, 74u);
}

TEST(ObjectRecordTest, EveryTruncationFails) {
  ObjectRecord record = MakeRecord(kGiB);
  record.map.MarkPresent(3, 9);
  const std::string bytes = EncodeRecord(record);
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::StatusOr<ObjectRecord> decoded = DecodeRecord(bytes.substr(0, n));
    ASSERT_FALSE(decoded.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(decoded.status().message().find("truncated"),
              absl::string_view::npos)
        << decoded.status();
  }
  ExpectError(DecodeRecord(bytes.substr(0, 20)), "truncated to 20 bytes");
  ExpectError(DecodeRecord(bytes.substr(0, bytes.size() - 1)), "truncated");
  ExpectError(DecodeRecord(bytes + "x"), "1 bytes past the end");
}

TEST(ObjectRecordTest, EverySingleBitFlipFails) {
  for (MapEncoding shape :
       {MapEncoding::kEmpty, MapEncoding::kRuns, MapEncoding::kBitmap}) {
    ObjectRecord record = MakeRecord(200 * kG);
    if (shape == MapEncoding::kRuns) record.map.MarkPresent(5, 50);
    for (uint64_t g = 0; shape == MapEncoding::kBitmap && g < 200; g += 3) {
      record.map.MarkPresent(g, 1);
    }
    ASSERT_EQ(EncodeMap(record.map).encoding, shape);
    const std::string bytes = EncodeRecord(record);
    for (size_t bit = 0; bit < 8 * bytes.size(); ++bit) {
      std::string flipped = bytes;
      flipped[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      ASSERT_FALSE(DecodeRecord(flipped).ok()) << "flip of bit " << bit;
    }
  }
}

TEST(ObjectRecordTest, ErrorsNameTheProblem) {
  ObjectRecord record = MakeRecord(kGiB);
  const std::string good = EncodeRecord(record);
  std::string bytes = good;
  bytes[0] = 'X';
  ExpectError(DecodeRecord(bytes), "not a cachefs record: bad magic");
  ExpectError(DecodeRecord("CF"), "truncated to 2 bytes");
  bytes = good;
  bytes[kVersionOffset] = 1;
  ExpectError(DecodeRecord(bytes), "unsupported cachefs record version 1");
  bytes = good;
  bytes[bytes.size() - 1] ^= 0x40;
  ExpectError(DecodeRecord(bytes), "checksum mismatch");
  bytes = good;
  bytes[kShiftOffset] = 40;
  ExpectError(DecodeRecord(bytes), "checksum mismatch");
  ExpectError(DecodeRecord(Reseal(bytes)), "bad granule shift 40");
  bytes = good;
  bytes[kStateOffset] = 2;
  ExpectError(DecodeRecord(Reseal(bytes)), "unknown content state 2");
  bytes = good;
  bytes[kReservedOffset] = 1;
  ExpectError(DecodeRecord(Reseal(bytes)), "reserved byte is 1");
  bytes = good;
  bytes[kEncodingOffset] = 1;  // complete, without touching the payload
  absl::StatusOr<ObjectRecord> complete = DecodeRecord(Reseal(bytes));
  ASSERT_OK(complete);
  EXPECT_TRUE(complete->map.complete());
  bytes[kEncodingOffset] = 2;  // a prefix with no payload
  ExpectError(DecodeRecord(Reseal(bytes)), "prefix length varint truncated");
}

TEST(ObjectRecordTest, ExternalMapRoundTripsWithItsSidecar) {
  ObjectRecord record = MakeRecord(uint64_t{1} << 40);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 3000; ++i) record.map.MarkPresent(rng() % (1 << 22), 1);
  std::string sidecar;
  const std::string bytes = EncodeRecordWithExternalMap(record, &sidecar);
  EXPECT_LT(bytes.size(), 100u + record.aux.size() + record.file_key.size() +
                              record.volume_key.size());
  ASSERT_TRUE(*RecordHasExternalMap(bytes));
  EXPECT_FALSE(*RecordHasExternalMap(EncodeRecord(record)));
  absl::StatusOr<ObjectRecord> decoded = DecodeRecord(bytes, &sidecar);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, record);
}

TEST(ObjectRecordTest, ExternalMapNeedsTheRightSidecar) {
  ObjectRecord record = MakeRecord(kGiB);
  record.map.MarkPresent(1, 1);
  record.map.MarkPresent(9, 1);
  std::string sidecar;
  const std::string bytes = EncodeRecordWithExternalMap(record, &sidecar);
  absl::StatusOr<ObjectRecord> missing = DecodeRecord(bytes);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  std::string other = sidecar + "x";
  ExpectError(DecodeRecord(bytes, &other), "its record expects");
  other = sidecar;
  other.back() ^= 1;
  ExpectError(DecodeRecord(bytes, &other), "map sidecar checksum mismatch");
  // A sidecar that matches another record's reference is still rejected.
  record.map.MarkPresent(20, 1);
  std::string newer;
  EncodeRecordWithExternalMap(record, &newer);
  ExpectError(DecodeRecord(bytes, &newer), "map sidecar");
}

TEST(ObjectRecordTest, GranuleChecksumsRoundTripInlineAndInTheSidecar) {
  ObjectRecord record = MakeRecord(kGiB);
  record.map.MarkPresent(3, 2);
  record.map.MarkPresent(100, 1);
  record.checksums = {0xdeadbeef, 0x01020304, 0xffffffff};
  absl::StatusOr<ObjectRecord> decoded = DecodeRecord(EncodeRecord(record));
  ASSERT_OK(decoded);
  EXPECT_EQ(decoded->checksums, record.checksums);
  std::string sidecar;
  const std::string bytes = EncodeRecordWithExternalMap(record, &sidecar);
  decoded = DecodeRecord(bytes, &sidecar);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, record);
}

TEST(ObjectRecordTest, ChecksumsMustMatchThePresentGranules) {
  ObjectRecord record = MakeRecord(kGiB);
  record.map.MarkPresent(0, 4);
  record.checksums = {1, 2, 3};
  EXPECT_NE(ValidateRecord(record).message().find("3 granule checksums for 4"),
            absl::string_view::npos);
  EXPECT_EQ(EncodeRecord(record), "");
  record.checksums.push_back(4);
  EXPECT_OK(ValidateRecord(record));
}

TEST(ObjectRecordTest, ValidateRejectsWhatCannotBeEncoded) {
  ObjectRecord record = MakeRecord(kGiB);
  const absl::Status valid = ValidateRecord(record);
  EXPECT_OK(valid);
  record.file_key = std::string(70000, 'k');
  EXPECT_EQ(ValidateRecord(record).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeRecord(record), "");
  record = MakeRecord(kGiB);
  record.map = ContentMap(kGiB, 8);
  EXPECT_NE(ValidateRecord(record).message().find("bad granule shift 8"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace cachefs
