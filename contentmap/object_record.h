// ObjectRecord: what cachefs knows about one backing object, and its on-disk
// encoding. Saved on disk: every enum and field order below is part of the
// format; never reorder, only add under a new version.
//
// Layout (all integers little-endian):
//   u32 magic 'CFS1' (0x31534643)    u16 version (2)
//   u8  content state (ContentState)  u8  granule shift
//   u8  map encoding (MapEncoding)    u8  reserved (0)
//   u16 volume key length  u16 file key length  u16 aux length
//   u64 object size
//   u32 map payload length            u32 checksums length
//   volume key, file key, aux bytes, map payload, checksums
//   u32 CRC-32C of every byte before it
//
// Checksums: a u32 CRC-32C per present granule, in granule order, of the
// granule's bytes up to the object size; or none at all (no granule of the
// object can then be verified, and cachefs trusts none of them). Version 1
// records had none and are not read.
//
// The granule shift is in [kMinGranuleShift, kMaxGranuleShift] and the
// object has at most kMaxGranules granules; a record outside these bounds
// does not decode.
//
// Map payloads, chosen to be compact for common shapes:
//   kEmpty, kComplete: no payload.
//   kPrefix:  varint n, the first n granules present (n <= granules).
//   kRuns:    varint pairs (gap, length) of present runs, in order; a gap
//             counts from the end of the previous run (from 0 for the
//             first); lengths are >= 1, and so are all gaps but the first.
//   kBitmap:  the raw bitmap words, little-endian: exactly
//             (granules + 63) / 64 u64s, no bit set past the last granule.
//   kExternal: u32 length and u32 CRC-32C of a sidecar holding the u8
//              encoding and u32 length of one of the payloads above, that
//              payload, then the checksums (the record itself then has
//              none); used when the record would not fit one xattr value
//              (see record_store.h).

#ifndef CACHEFS_CONTENTMAP_OBJECT_RECORD_H_
#define CACHEFS_CONTENTMAP_OBJECT_RECORD_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "contentmap/content_map.h"

namespace cachefs {

inline constexpr uint32_t kRecordMagic = 0x31534643;  // "CFS1"
inline constexpr uint16_t kRecordVersion = 2;
inline constexpr uint32_t kMinGranuleShift = 12;  // 4 KiB
inline constexpr uint32_t kMaxGranuleShift = 30;  // 1 GiB
// Caps the map a record can make a reader allocate at 512 MiB (a 1 PiB
// object at 256 KiB granules).
inline constexpr uint64_t kMaxGranules = uint64_t{1} << 32;

// Saved on disk: never reorder.
enum class ContentState : uint8_t {
  kClean = 0,  // every bit in the map has its data durable on disk
  kDirty = 1,  // writes may be in progress: the object is stale at lookup
};

// Saved on disk: never reorder.
enum class MapEncoding : uint8_t {
  kEmpty = 0,
  kComplete = 1,
  kPrefix = 2,
  kRuns = 3,
  kBitmap = 4,
  kExternal = 5,
};

struct ObjectRecord {
  ContentState state = ContentState::kClean;
  std::string volume_key;
  std::string file_key;
  std::string aux;  // the netfs's opaque coherency data
  ContentMap map;   // its object_size is the object size
  // CRC-32C of each present granule (see above), or empty.
  std::vector<uint32_t> checksums;

  bool operator==(const ObjectRecord&) const = default;
};

// The map payload alone, in its most compact encoding.
struct EncodedMap {
  MapEncoding encoding = MapEncoding::kEmpty;
  std::string payload;
};
EncodedMap EncodeMap(const ContentMap& map);
absl::StatusOr<ContentMap> DecodeMap(MapEncoding encoding,
                                     std::string_view payload,
                                     uint64_t object_size,
                                     uint32_t granule_shift);

// OK when `record` can be encoded: keys and aux of at most 65535 bytes, a
// granule shift and object size within the bounds above. StoreRecord checks
// this; the encoders below require it.
absl::Status ValidateRecord(const ObjectRecord& record);

// The whole record with its map inline. REQUIRES: ValidateRecord(record) is
// OK; otherwise returns an empty string, which no decoder accepts.
std::string EncodeRecord(const ObjectRecord& record);

// The record with its map replaced by a kExternal reference to `sidecar`,
// which is filled with the bytes to store beside the object. Same
// REQUIRES as EncodeRecord.
std::string EncodeRecordWithExternalMap(const ObjectRecord& record,
                                        std::string* sidecar);

// Decodes a record. Truncated, corrupt, foreign, wrong-version and
// wrong-checksum input is an error whose message says which; never a crash.
// A kExternal record needs the sidecar bytes: pass them in `sidecar` (a
// record that needs them and gets none fails with kFailedPrecondition).
absl::StatusOr<ObjectRecord> DecodeRecord(std::string_view bytes,
                                          const std::string* sidecar = nullptr);

// Whether a decoded (valid) record's map lives in a sidecar.
absl::StatusOr<bool> RecordHasExternalMap(std::string_view bytes);

}  // namespace cachefs

#endif  // CACHEFS_CONTENTMAP_OBJECT_RECORD_H_
