#include "contentmap/crc32c.h"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "contentmap/crc32c_internal.h"
#include "gtest/gtest.h"

namespace cachefs {
namespace {

using Crc32cFunction = uint32_t (*)(std::string_view, uint32_t);

// `size` bytes of seeded noise.
std::string RandomBytes(uint32_t seed, size_t size) {
  std::mt19937 rng(seed);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  return data;
}

// `crc` agrees with the tables on every length up to `max_end - start` at
// each start below `starts`, from the seed `crc_seed`.
void ExpectAgreesAtEveryLength(Crc32cFunction crc, const std::string& data,
                               size_t starts, size_t max_end,
                               uint32_t crc_seed) {
  for (size_t start = 0; start < starts; ++start) {
    for (size_t len = 0; len + start <= max_end; ++len) {
      const std::string_view piece(data.data() + start, len);
      ASSERT_EQ(crc(piece, crc_seed),
                crc32c_internal::Portable(piece, crc_seed))
          << start << " " << len;
    }
  }
}

TEST(Crc32cTest, StandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c_internal::Portable("123456789", 0), 0xE3069283u);
}

TEST(Crc32cTest, KnownVectors) {
  // From RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32cTest, ExtendingEqualsWhole) {
  const std::string data = "The quick brown fox jumps over the lazy dog";
  for (size_t split = 0; split <= data.size(); ++split) {
    EXPECT_EQ(Crc32c(data.substr(split), Crc32c(data.substr(0, split))),
              Crc32c(data))
        << split;
  }
}

TEST(Crc32cTest, HardwareAndPortableAgree) {
  if (!crc32c_internal::HardwareAvailable()) {
    GTEST_SKIP() << "no SSE 4.2 crc32 instruction on this CPU";
  }
  const std::string data = RandomBytes(7, 5000);
  // Every length and misalignment of the start, with a nonzero seed.
  ASSERT_NO_FATAL_FAILURE(
      ExpectAgreesAtEveryLength(crc32c_internal::Hardware, data, 9, 300, 0x1234));
  EXPECT_EQ(crc32c_internal::Hardware(data, 0),
            crc32c_internal::Portable(data, 0));
}

TEST(Crc32cTest, CombineJoinsTwoParts) {
  const std::string data = RandomBytes(9, 70000);
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{4096},
                       size_t{33333}, data.size()}) {
    const std::string_view a(data.data(), split);
    const std::string_view b(data.data() + split, data.size() - split);
    EXPECT_EQ(crc32c_internal::Combine(Crc32c(a), Crc32c(b), b.size()),
              Crc32c(data))
        << split;
  }
}

// Long enough for the three interleaved stripes, with tails of every
// length past them.
TEST(Crc32cTest, HardwareStripesAgreeWithPortable) {
  if (!crc32c_internal::HardwareAvailable()) {
    GTEST_SKIP() << "no SSE 4.2 crc32 instruction on this CPU";
  }
  const std::string data = RandomBytes(11, 300000);
  for (size_t start = 0; start < 3; ++start) {
    for (size_t len : {size_t{12287}, size_t{12288}, size_t{12289},
                       size_t{12295}, size_t{12311}, size_t{65536},
                       size_t{262144}, size_t{262144 - 5000}}) {
      const std::string_view piece(data.data() + start, len);
      ASSERT_EQ(crc32c_internal::Hardware(piece, 0xabcd),
                crc32c_internal::Portable(piece, 0xabcd))
          << start << " " << len;
    }
  }
}

// The folding path against the table one: every length around the 256-byte
// steps and the 16-byte tail, misaligned starts, nonzero seeds, a granule.
TEST(Crc32cTest, FoldedAgreesWithPortable) {
  if (!crc32c_internal::FoldedAvailable()) {
    GTEST_SKIP() << "no AVX-512 carry-less multiplication on this CPU";
  }
  const std::string data = RandomBytes(13, 300000);
  ASSERT_NO_FATAL_FAILURE(
      ExpectAgreesAtEveryLength(crc32c_internal::Folded, data, 5, 1400, 0x5678));
  for (size_t len : {size_t{65536}, size_t{262144}, size_t{262144 - 5000},
                     size_t{299999}}) {
    const std::string_view piece(data.data() + 1, len);
    ASSERT_EQ(crc32c_internal::Folded(piece, 0),
              crc32c_internal::Portable(piece, 0))
        << len;
  }
  // Runs of zeros and of ones, where a wrong constant could cancel out.
  for (char fill : {'\0', '\xff'}) {
    const std::string same(4096 + 17, fill);
    EXPECT_EQ(crc32c_internal::Folded(same, 0),
              crc32c_internal::Portable(same, 0));
  }
}

}  // namespace
}  // namespace cachefs
