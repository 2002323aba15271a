// libFuzzer target for the record and map decoders.
//
// Any input must decode to an error or to a record (map) that is
// internally consistent and survives a re-encode and decode unchanged,
// inline and through a sidecar; anything else aborts. The input format is
// in contentmap/fuzz_input.h; seeds are in contentmap/fuzz_corpus/.
//
//   CC=clang CXX=clang++ cmake -B build-fuzz -DCACHEFS_FUZZ=ON
//       -DCACHEFS_BENCHMARKS=OFF -DCACHEFS_SANITIZE=address,undefined
//   cmake --build build-fuzz --target record_fuzzer
//   mkdir -p fuzz-corpus
//   build-fuzz/bin/record_fuzzer fuzz-corpus contentmap/fuzz_corpus
//       -max_total_time=60
// (new inputs go to fuzz-corpus/, which git ignores).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "contentmap/fuzz_input.h"
#include "contentmap/object_record.h"
#include "contentmap/wire.h"

namespace cachefs {
namespace {

// Valid maps of up to kMaxGranules granules (512 MiB of bits) are legal,
// but allocating several per input would only slow the fuzzer down and hit
// its memory limit; the bound itself is covered by the unit tests.
constexpr uint64_t kMaxFuzzGranules = uint64_t{1} << 24;

void Fail(const char* what) {
  std::fprintf(stderr, "record_fuzzer: %s\n", what);
  std::abort();
}

void CheckMap(const ContentMap& map) {
  const uint64_t n = map.num_granules();
  if (map.words().size() != n / 64 + (n % 64 != 0)) Fail("word count");
  uint64_t present = 0;
  for (uint64_t w : map.words()) present += std::popcount(w);
  if (present != map.granules_present()) Fail("present count");
  if (n % 64 != 0 && (map.words().back() >> (n % 64)) != 0) {
    Fail("bit past the end");
  }
  if (map.BytesPresent() > map.object_size()) Fail("bytes present");
}

void CheckMapRoundTrip(const ContentMap& map) {
  CheckMap(map);
  const EncodedMap encoded = EncodeMap(map);
  absl::StatusOr<ContentMap> again =
      DecodeMap(encoded.encoding, encoded.payload, map.object_size(),
                map.granule_shift());
  if (!again.ok()) Fail("re-encoded map does not decode");
  if (!(*again == map)) Fail("re-encoded map differs");
}

void CheckRecordRoundTrip(const ObjectRecord& record) {
  CheckMap(record.map);
  absl::StatusOr<ObjectRecord> again = DecodeRecord(EncodeRecord(record));
  if (!again.ok()) Fail("re-encoded record does not decode");
  if (!(*again == record)) Fail("re-encoded record differs");
  std::string sidecar;
  const std::string bytes = EncodeRecordWithExternalMap(record, &sidecar);
  again = DecodeRecord(bytes, &sidecar);
  if (!again.ok()) Fail("re-encoded external record does not decode");
  if (!(*again == record)) Fail("re-encoded external record differs");
  absl::StatusOr<bool> external = RecordHasExternalMap(bytes);
  if (!external.ok() || !*external) Fail("external record not recognized");
}

// Whether a map of this geometry would be legal but too large to fuzz
// quickly (see kMaxFuzzGranules). Larger ones are still fed in, since the
// decoders reject them before allocating.
bool TooLargeToFuzz(uint64_t size, uint32_t shift) {
  if (shift < kMinGranuleShift || shift > kMaxGranuleShift) return false;
  const uint64_t floor = size >> shift;  // one short of a partial granule
  return floor >= kMaxFuzzGranules && floor <= kMaxGranules;
}

// Reads the geometry out of a record's fixed header, if it has one.
bool RecordTooLargeToFuzz(std::string_view record) {
  constexpr size_t kShiftOffset = 7;
  constexpr size_t kObjectSizeOffset = 16;
  if (record.size() < kObjectSizeOffset + 8) return false;
  return TooLargeToFuzz(wire::LoadFixed(record.data() + kObjectSizeOffset, 8),
                        static_cast<uint8_t>(record[kShiftOffset]));
}

void FuzzMap(std::string_view in) {
  if (in.size() < fuzz_input::kMapHeaderSize - 1) return;
  const auto encoding = static_cast<MapEncoding>(static_cast<uint8_t>(in[0]));
  const uint32_t shift = static_cast<uint8_t>(in[1]);
  const uint64_t size = wire::LoadFixed(in.data() + 2, 8);
  if (TooLargeToFuzz(size, shift)) return;
  absl::StatusOr<ContentMap> map = DecodeMap(
      encoding, in.substr(fuzz_input::kMapHeaderSize - 1), size, shift);
  if (map.ok()) CheckMapRoundTrip(*map);
}

void FuzzOne(std::string_view in) {
  if (in.empty()) return;
  const uint8_t mode = static_cast<uint8_t>(in[0]) % fuzz_input::kNumModes;
  in.remove_prefix(1);
  if (mode == fuzz_input::kRecord) {
    if (RecordTooLargeToFuzz(in)) return;
    absl::StatusOr<ObjectRecord> record = DecodeRecord(in);
    if (record.ok()) CheckRecordRoundTrip(*record);
    RecordHasExternalMap(in).IgnoreError();
  } else if (mode == fuzz_input::kRecordSidecar) {
    if (in.size() < 2) return;
    const size_t n =
        std::min<size_t>(wire::LoadFixed(in.data(), 2), in.size() - 2);
    if (RecordTooLargeToFuzz(in.substr(2, n))) return;
    const std::string sidecar(in.substr(2 + n));
    absl::StatusOr<ObjectRecord> record =
        DecodeRecord(in.substr(2, n), &sidecar);
    if (record.ok()) CheckRecordRoundTrip(*record);
  } else {
    FuzzMap(in);
  }
}

}  // namespace
}  // namespace cachefs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cachefs::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
