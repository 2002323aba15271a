// The input format of contentmap/record_fuzzer.cc, shared with the test
// that keeps the seed corpus in contentmap/fuzz_corpus/ current.
//
// Byte 0 picks what the rest feeds (modulo kNumModes):
//   kRecord:        all of it to DecodeRecord.
//   kRecordSidecar: u16 n, then n bytes of record and the rest as sidecar.
//   kMap:           u8 encoding, u8 granule shift, u64 object size, then
//                   the payload, to DecodeMap.
// Integers are little-endian, as in the records.

#ifndef CACHEFS_CONTENTMAP_FUZZ_INPUT_H_
#define CACHEFS_CONTENTMAP_FUZZ_INPUT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "contentmap/object_record.h"
#include "contentmap/wire.h"

namespace cachefs::fuzz_input {

enum Mode : uint8_t { kRecord = 0, kRecordSidecar = 1, kMap = 2 };
inline constexpr int kNumModes = 3;
inline constexpr size_t kMapHeaderSize = 1 + 1 + 1 + 8;  // with the mode

inline std::string RecordInput(const ObjectRecord& record) {
  return static_cast<char>(kRecord) + EncodeRecord(record);
}

inline std::string RecordSidecarInput(const ObjectRecord& record) {
  std::string sidecar;
  const std::string bytes = EncodeRecordWithExternalMap(record, &sidecar);
  std::string out(1, static_cast<char>(kRecordSidecar));
  wire::PutU16(&out, static_cast<uint16_t>(bytes.size()));
  return out + bytes + sidecar;
}

inline std::string MapInput(const ContentMap& map) {
  const EncodedMap encoded = EncodeMap(map);
  std::string out(1, static_cast<char>(kMap));
  wire::PutU8(&out, static_cast<uint8_t>(encoded.encoding));
  wire::PutU8(&out, static_cast<uint8_t>(map.granule_shift()));
  wire::PutU64(&out, map.object_size());
  return out + encoded.payload;
}

// Seeds: a small record of each map encoding in each mode, as (file name,
// contents). Deterministic, so the committed corpus can be checked.
inline std::vector<std::pair<std::string, std::string>> SeedInputs() {
  const uint64_t g = kDefaultGranuleSize;
  std::vector<std::pair<std::string, ContentMap>> maps;
  maps.emplace_back("empty", ContentMap(10 * g + 7));
  maps.emplace_back("complete", ContentMap(3 * g));
  maps.back().second.MarkPresent(0, 3);
  maps.emplace_back("prefix", ContentMap(100 * g));
  maps.back().second.MarkPresent(0, 40);
  maps.emplace_back("runs", ContentMap(1000 * g + 1));
  for (uint64_t i = 0; i < 8; ++i)
    maps.back().second.MarkPresent(i * 97, i + 1);
  maps.emplace_back("bitmap", ContentMap(300 * 4096, 12));
  for (uint64_t i = 0; i < 300; i += 3) maps.back().second.MarkPresent(i, 1);
  std::vector<std::pair<std::string, std::string>> seeds;
  for (auto& [name, map] : maps) {
    ObjectRecord record;
    record.state = name == "runs" ? ContentState::kDirty : ContentState::kClean;
    record.volume_key = "nfs:srv:/export";
    record.file_key = "dir/" + name;
    record.aux = "aux";
    record.map = map;
    if (name != "runs") {  // one record of each kind without checksums
      for (uint64_t i = 0; i < map.granules_present(); ++i) {
        record.checksums.push_back(static_cast<uint32_t>(i * 0x9E3779B1u));
      }
    }
    seeds.emplace_back("record_" + name, RecordInput(record));
    seeds.emplace_back("sidecar_" + name, RecordSidecarInput(record));
    seeds.emplace_back("map_" + name, MapInput(map));
  }
  return seeds;
}

}  // namespace cachefs::fuzz_input

#endif  // CACHEFS_CONTENTMAP_FUZZ_INPUT_H_
