// The committed fuzz seeds in contentmap/fuzz_corpus/ double as golden
// files of the on-disk format: this build must encode each seed's record
// to exactly the committed bytes, and decode them back. A failure here
// means the format changed (bump kRecordVersion) or a seed is stale.
//
// To rewrite the seeds after an intended change:
//   CACHEFS_UPDATE_FUZZ_CORPUS=1 build/bin/contentmap_test
//       --gtest_filter='FuzzCorpus*'

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "contentmap/fuzz_input.h"
#include "contentmap/object_record.h"
#include "contentmap/wire.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Decodes a seed the way the fuzzer reads it; every seed must be valid.
absl::Status DecodeSeed(std::string_view seed) {
  const auto mode = static_cast<fuzz_input::Mode>(seed[0]);
  seed.remove_prefix(1);
  if (mode == fuzz_input::kRecord) return DecodeRecord(seed).status();
  if (mode == fuzz_input::kRecordSidecar) {
    const size_t n = wire::LoadFixed(seed.data(), 2);
    const std::string sidecar(seed.substr(2 + n));
    return DecodeRecord(seed.substr(2, n), &sidecar).status();
  }
  return DecodeMap(static_cast<MapEncoding>(seed[0]),
                   seed.substr(fuzz_input::kMapHeaderSize - 1),
                   wire::LoadFixed(seed.data() + 2, 8),
                   static_cast<uint8_t>(seed[1]))
      .status();
}

TEST(FuzzCorpusTest, CommittedSeedsMatchThisBuildsEncoding) {
  const bool update = std::getenv("CACHEFS_UPDATE_FUZZ_CORPUS") != nullptr;
  for (const auto& [name, bytes] : fuzz_input::SeedInputs()) {
    SCOPED_TRACE(name);
    const std::string path = std::string(CACHEFS_FUZZ_CORPUS_DIR) + "/" + name;
    if (update) std::ofstream(path, std::ios::binary) << bytes;
    EXPECT_EQ(ReadFile(path), bytes)
        << path << " differs from this build's encoding";
    EXPECT_OK(DecodeSeed(bytes));
  }
}

TEST(FuzzCorpusTest, SeedsCoverEveryEncodingAndMode) {
  bool seen[6][fuzz_input::kNumModes] = {};
  for (const auto& [name, bytes] : fuzz_input::SeedInputs()) {
    const int mode = bytes[0];
    if (mode == fuzz_input::kMap) {
      seen[static_cast<uint8_t>(bytes[1])][mode] = true;
    } else {
      // Mode 1 puts the sidecar's encoding byte right after the record.
      const size_t offset = mode == fuzz_input::kRecord
                                ? 1 + 8
                                : 3 + wire::LoadFixed(bytes.data() + 1, 2);
      const int encoding = static_cast<uint8_t>(bytes[offset]);
      seen[encoding][mode] = true;
    }
  }
  for (int e = 0; e < 5; ++e) {
    for (int m = 0; m < fuzz_input::kNumModes; ++m) {
      EXPECT_TRUE(seen[e][m]) << "no seed of encoding " << e << " mode " << m;
    }
  }
}

}  // namespace
}  // namespace cachefs
