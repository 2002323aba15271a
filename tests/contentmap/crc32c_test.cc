#include "contentmap/crc32c.h"

#include <random>
#include <string>

#include "contentmap/crc32c_internal.h"
#include "gtest/gtest.h"

namespace cachefs {
namespace {

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
  std::mt19937 rng(7);
  std::string data(5000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  // Every length and misalignment of the start, with a nonzero seed.
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; len + start <= 300; ++len) {
      const std::string_view piece(data.data() + start, len);
      ASSERT_EQ(crc32c_internal::Hardware(piece, 0x1234),
                crc32c_internal::Portable(piece, 0x1234))
          << start << " " << len;
    }
  }
  EXPECT_EQ(crc32c_internal::Hardware(data, 0),
            crc32c_internal::Portable(data, 0));
}

TEST(Crc32cTest, CombineJoinsTwoParts) {
  std::mt19937 rng(9);
  std::string data(70000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
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
  std::mt19937 rng(11);
  std::string data(300000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
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
  std::mt19937 rng(13);
  std::string data(300000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 5; ++start) {
    for (size_t len = 0; len + start <= 1400; ++len) {
      const std::string_view piece(data.data() + start, len);
      ASSERT_EQ(crc32c_internal::Folded(piece, 0x5678),
                crc32c_internal::Portable(piece, 0x5678))
          << start << " " << len;
    }
  }
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
