// The ObjectRecord encoding; the layout is declared in object_record.h.
//
// Decoding checks, in order: magic, version, that the length declared by
// the header is the length given, the CRC, then each field, then the map
// (map_codec.cc). The CRC comes before the fields so that a flipped bit is
// reported as the corruption it is rather than as whatever the flipped
// field happens to say.

#include "contentmap/object_record.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "contentmap/crc32c.h"
#include "contentmap/map_codec.h"
#include "contentmap/wire.h"

namespace cachefs {
namespace {

// Offsets of the fixed fields, in the order object_record.h lists them.
constexpr size_t kVersionOffset = 4;
constexpr size_t kStateOffset = 6;
constexpr size_t kShiftOffset = 7;
constexpr size_t kEncodingOffset = 8;
constexpr size_t kReservedOffset = 9;
constexpr size_t kVolumeKeyLengthOffset = 10;
constexpr size_t kFileKeyLengthOffset = 12;
constexpr size_t kAuxLengthOffset = 14;
constexpr size_t kObjectSizeOffset = 16;
constexpr size_t kPayloadLengthOffset = 24;
constexpr size_t kChecksumsLengthOffset = 28;
constexpr size_t kHeaderSize = 32;  // every fixed field before the keys
constexpr size_t kTrailerSize = 4;  // the CRC
constexpr size_t kMaxFieldLength = 0xffff;
constexpr size_t kExternalPayloadSize = 8;  // u32 length, u32 CRC
constexpr size_t kSidecarHeaderSize = 5;    // u8 encoding, u32 map length

// A record whose envelope (magic, version, lengths, CRC) checked out; the
// field values are not validated yet.
struct Envelope {
  uint8_t state = 0;
  uint8_t granule_shift = 0;
  uint8_t encoding = 0;
  uint8_t reserved = 0;
  uint64_t object_size = 0;
  std::string_view volume_key;
  std::string_view file_key;
  std::string_view aux;
  std::string_view payload;
  std::string_view checksums;
};

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt cachefs record: ", what));
}

std::string PackChecksums(const std::vector<uint32_t>& checksums) {
  std::string out;
  out.reserve(checksums.size() * 4);
  for (uint32_t crc : checksums) wire::PutU32(&out, crc);
  return out;
}

std::string Encode(const ObjectRecord& record, MapEncoding encoding,
                   std::string_view payload, std::string_view checksums) {
  std::string out;
  out.reserve(kHeaderSize + record.volume_key.size() + record.file_key.size() +
              record.aux.size() + payload.size() + checksums.size() +
              kTrailerSize);
  wire::PutU32(&out, kRecordMagic);
  wire::PutU16(&out, kRecordVersion);
  wire::PutU8(&out, static_cast<uint8_t>(record.state));
  wire::PutU8(&out, static_cast<uint8_t>(record.map.granule_shift()));
  wire::PutU8(&out, static_cast<uint8_t>(encoding));
  wire::PutU8(&out, 0);  // reserved
  wire::PutU16(&out, static_cast<uint16_t>(record.volume_key.size()));
  wire::PutU16(&out, static_cast<uint16_t>(record.file_key.size()));
  wire::PutU16(&out, static_cast<uint16_t>(record.aux.size()));
  wire::PutU64(&out, record.map.object_size());
  wire::PutU32(&out, static_cast<uint32_t>(payload.size()));
  wire::PutU32(&out, static_cast<uint32_t>(checksums.size()));
  out += record.volume_key;
  out += record.file_key;
  out += record.aux;
  out += payload;
  out += checksums;
  wire::PutU32(&out, Crc32c(out));
  return out;
}

// Checks magic, version and length: everything needed to trust the header's
// field lengths.
absl::Status CheckFraming(std::string_view bytes) {
  if (bytes.size() < 4) {
    return Corrupt(absl::StrCat("truncated to ", bytes.size(),
                                " bytes, too short for its magic"));
  }
  const uint32_t magic = wire::LoadFixed(bytes.data(), 4);
  if (magic != kRecordMagic) {
    return absl::DataLossError(absl::StrFormat(
        "not a cachefs record: bad magic 0x%08x (expected 0x%08x)", magic,
        kRecordMagic));
  }
  if (bytes.size() < kHeaderSize + kTrailerSize) {
    return Corrupt(absl::StrCat("truncated to ", bytes.size(),
                                " bytes, shorter than the ",
                                kHeaderSize + kTrailerSize, "-byte minimum"));
  }
  const uint16_t version = wire::LoadFixed(bytes.data() + kVersionOffset, 2);
  if (version != kRecordVersion) {
    return absl::DataLossError(
        absl::StrCat("unsupported cachefs record version ", version,
                     " (this build reads version ", kRecordVersion, ")"));
  }
  const uint64_t declared =
      kHeaderSize + wire::LoadFixed(bytes.data() + kVolumeKeyLengthOffset, 2) +
      wire::LoadFixed(bytes.data() + kFileKeyLengthOffset, 2) +
      wire::LoadFixed(bytes.data() + kAuxLengthOffset, 2) +
      wire::LoadFixed(bytes.data() + kPayloadLengthOffset, 4) +
      wire::LoadFixed(bytes.data() + kChecksumsLengthOffset, 4) + kTrailerSize;
  if (bytes.size() < declared) {
    return Corrupt(absl::StrCat("truncated to ", bytes.size(),
                                " bytes, its header declares ", declared));
  }
  if (bytes.size() > declared) {
    return Corrupt(absl::StrCat(bytes.size() - declared,
                                " bytes past the end its header declares"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Envelope> ParseEnvelope(std::string_view bytes) {
  if (absl::Status s = CheckFraming(bytes); !s.ok()) return s;
  const size_t body = bytes.size() - kTrailerSize;
  const uint32_t stored = wire::LoadFixed(bytes.data() + body, 4);
  const uint32_t computed = Crc32c(bytes.substr(0, body));
  if (stored != computed) {
    return Corrupt(
        absl::StrFormat("checksum mismatch (stored 0x%08x, computed 0x%08x)",
                        stored, computed));
  }
  // Framing succeeded, so every read below is in bounds.
  const char* p = bytes.data();
  Envelope env;
  env.state = static_cast<uint8_t>(p[kStateOffset]);
  env.granule_shift = static_cast<uint8_t>(p[kShiftOffset]);
  env.encoding = static_cast<uint8_t>(p[kEncodingOffset]);
  env.reserved = static_cast<uint8_t>(p[kReservedOffset]);
  env.object_size = wire::LoadFixed(p + kObjectSizeOffset, 8);
  wire::Reader reader(bytes.substr(kHeaderSize, body - kHeaderSize));
  reader.ReadBytes(wire::LoadFixed(p + kVolumeKeyLengthOffset, 2),
                   &env.volume_key);
  reader.ReadBytes(wire::LoadFixed(p + kFileKeyLengthOffset, 2), &env.file_key);
  reader.ReadBytes(wire::LoadFixed(p + kAuxLengthOffset, 2), &env.aux);
  reader.ReadBytes(wire::LoadFixed(p + kPayloadLengthOffset, 4), &env.payload);
  reader.ReadBytes(wire::LoadFixed(p + kChecksumsLengthOffset, 4),
                   &env.checksums);
  return env;
}

absl::Status CheckFields(const Envelope& env) {
  if (env.state > static_cast<uint8_t>(ContentState::kDirty)) {
    return Corrupt(absl::StrCat("unknown content state ", env.state));
  }
  if (env.reserved != 0) {
    return Corrupt(
        absl::StrCat("reserved byte is ", env.reserved, ", expected 0"));
  }
  if (absl::Status s = CheckGeometry(env.object_size, env.granule_shift);
      !s.ok()) {
    return Corrupt(s.message());
  }
  return absl::OkStatus();
}

// The sidecar bytes of a kExternal record, checked against the reference.
absl::StatusOr<std::string_view> CheckSidecar(std::string_view reference,
                                              const std::string* sidecar) {
  if (reference.size() != kExternalPayloadSize) {
    return Corrupt(absl::StrCat("external map reference of ", reference.size(),
                                " bytes, expected ", kExternalPayloadSize));
  }
  if (sidecar == nullptr) {
    return absl::FailedPreconditionError(
        "cachefs record keeps its map in a sidecar, which was not given");
  }
  const uint32_t length = wire::LoadFixed(reference.data(), 4);
  const uint32_t crc = wire::LoadFixed(reference.data() + 4, 4);
  if (sidecar->size() != length) {
    return absl::DataLossError(absl::StrCat("map sidecar has ", sidecar->size(),
                                            " bytes, its record expects ",
                                            length));
  }
  const uint32_t computed = Crc32c(*sidecar);
  if (computed != crc) {
    return absl::DataLossError(absl::StrFormat(
        "map sidecar checksum mismatch (record expects 0x%08x, sidecar has "
        "0x%08x)",
        crc, computed));
  }
  if (sidecar->size() < kSidecarHeaderSize) {
    return Corrupt(absl::StrCat("map sidecar of ", sidecar->size(),
                                " bytes, shorter than its header"));
  }
  return std::string_view(*sidecar);
}

// The checksums of `map`'s present granules, from their packed bytes:
// none at all, or exactly one per present granule.
absl::StatusOr<std::vector<uint32_t>> UnpackChecksums(std::string_view bytes,
                                                      const ContentMap& map) {
  std::vector<uint32_t> checksums;
  if (bytes.empty()) return checksums;
  if (bytes.size() != map.granules_present() * 4) {
    return Corrupt(absl::StrCat(bytes.size(), " bytes of granule checksums for ",
                                map.granules_present(),
                                " present granules (4 bytes each)"));
  }
  checksums.reserve(bytes.size() / 4);
  for (size_t i = 0; i < bytes.size(); i += 4) {
    checksums.push_back(wire::LoadFixed(bytes.data() + i, 4));
  }
  return checksums;
}

}  // namespace

absl::Status ValidateRecord(const ObjectRecord& record) {
  for (const std::string* field :
       {&record.volume_key, &record.file_key, &record.aux}) {
    if (field->size() > kMaxFieldLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("record key or aux of ", field->size(),
                       " bytes exceeds ", kMaxFieldLength));
    }
  }
  absl::Status s =
      CheckGeometry(record.map.object_size(), record.map.granule_shift());
  if (!s.ok()) return absl::InvalidArgumentError(s.message());
  if (!record.checksums.empty() &&
      record.checksums.size() != record.map.granules_present()) {
    return absl::InvalidArgumentError(
        absl::StrCat("record has ", record.checksums.size(),
                     " granule checksums for ", record.map.granules_present(),
                     " present granules"));
  }
  return absl::OkStatus();
}

std::string EncodeRecord(const ObjectRecord& record) {
  if (!ValidateRecord(record).ok()) return "";
  EncodedMap map = EncodeMap(record.map);
  return Encode(record, map.encoding, map.payload,
                PackChecksums(record.checksums));
}

std::string EncodeRecordWithExternalMap(const ObjectRecord& record,
                                        std::string* sidecar) {
  sidecar->clear();
  if (!ValidateRecord(record).ok()) return "";
  EncodedMap map = EncodeMap(record.map);
  wire::PutU8(sidecar, static_cast<uint8_t>(map.encoding));
  wire::PutU32(sidecar, static_cast<uint32_t>(map.payload.size()));
  *sidecar += map.payload;
  *sidecar += PackChecksums(record.checksums);
  std::string reference;
  wire::PutU32(&reference, static_cast<uint32_t>(sidecar->size()));
  wire::PutU32(&reference, Crc32c(*sidecar));
  return Encode(record, MapEncoding::kExternal, reference, "");
}

absl::StatusOr<ObjectRecord> DecodeRecord(std::string_view bytes,
                                          const std::string* sidecar) {
  absl::StatusOr<Envelope> env = ParseEnvelope(bytes);
  if (!env.ok()) return env.status();
  if (absl::Status s = CheckFields(*env); !s.ok()) return s;
  auto encoding = static_cast<MapEncoding>(env->encoding);
  std::string_view payload = env->payload;
  std::string_view checksums = env->checksums;
  if (encoding == MapEncoding::kExternal) {
    if (!checksums.empty()) {
      return Corrupt("granule checksums beside an external map");
    }
    absl::StatusOr<std::string_view> side = CheckSidecar(payload, sidecar);
    if (!side.ok()) return side.status();
    encoding = static_cast<MapEncoding>(static_cast<uint8_t>((*side)[0]));
    const uint64_t length = wire::LoadFixed(side->data() + 1, 4);
    if (length > side->size() - kSidecarHeaderSize) {
      return Corrupt(absl::StrCat("map sidecar declares a ", length,
                                  "-byte map in ",
                                  side->size() - kSidecarHeaderSize));
    }
    payload = side->substr(kSidecarHeaderSize, length);
    checksums = side->substr(kSidecarHeaderSize + length);
    if (encoding == MapEncoding::kExternal) {
      return Corrupt("map sidecar refers to another sidecar");
    }
  }
  absl::StatusOr<ContentMap> map =
      DecodeMap(encoding, payload, env->object_size, env->granule_shift);
  if (!map.ok()) return map.status();
  absl::StatusOr<std::vector<uint32_t>> sums = UnpackChecksums(checksums, *map);
  if (!sums.ok()) return sums.status();
  ObjectRecord record;
  record.state = static_cast<ContentState>(env->state);
  record.volume_key = std::string(env->volume_key);
  record.file_key = std::string(env->file_key);
  record.aux = std::string(env->aux);
  record.map = *std::move(map);
  record.checksums = *std::move(sums);
  return record;
}

absl::StatusOr<bool> RecordHasExternalMap(std::string_view bytes) {
  absl::StatusOr<Envelope> env = ParseEnvelope(bytes);
  if (!env.ok()) return env.status();
  return env->encoding == static_cast<uint8_t>(MapEncoding::kExternal);
}

}  // namespace cachefs
