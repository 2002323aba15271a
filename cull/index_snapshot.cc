#include "cull/index_snapshot.h"

#include "contentmap/crc32c.h"
#include "contentmap/wire.h"

namespace cachefs {
namespace {

constexpr std::string_view kMagic = "CFSCULL1";
constexpr size_t kEntryBytes = 24;
constexpr size_t kFanDirs = 256;

}  // namespace

std::string EncodeCullIndex(const std::vector<int64_t>& fan_dir_times,
                            const std::vector<Volume::StoredObject>& objects) {
  std::string out(kMagic);
  out.reserve(kMagic.size() + kFanDirs * 8 + 12 + objects.size() * kEntryBytes);
  for (size_t i = 0; i < kFanDirs; ++i) {
    wire::PutU64(&out, static_cast<uint64_t>(
                           i < fan_dir_times.size() ? fan_dir_times[i] : 0));
  }
  wire::PutU64(&out, objects.size());
  for (const Volume::StoredObject& o : objects) {
    wire::PutU64(&out, o.hash);
    wire::PutU64(&out, o.bytes);
    wire::PutU64(&out, static_cast<uint64_t>(o.last_used));
  }
  wire::PutU32(&out, Crc32c(out));
  return out;
}

absl::StatusOr<std::vector<Volume::StoredObject>> DecodeCullIndex(
    std::string_view data, const std::vector<int64_t>& fan_dir_times) {
  const size_t header = kMagic.size() + kFanDirs * 8 + 8;
  if (data.size() < header + 4 || data.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("not a cull index snapshot");
  }
  const uint64_t count = wire::LoadFixed(data.data() + header - 8, 8);
  if (count > (data.size() - header - 4) / kEntryBytes ||
      data.size() != header + count * kEntryBytes + 4) {
    return absl::DataLossError("cull index snapshot is truncated");
  }
  const std::string_view body = data.substr(0, data.size() - 4);
  if (wire::LoadFixed(data.data() + body.size(), 4) != Crc32c(body)) {
    return absl::DataLossError("cull index snapshot checksum mismatch");
  }
  for (size_t i = 0; i < kFanDirs; ++i) {
    const int64_t saved = static_cast<int64_t>(
        wire::LoadFixed(data.data() + kMagic.size() + i * 8, 8));
    if (i >= fan_dir_times.size() || saved != fan_dir_times[i]) {
      return absl::FailedPreconditionError(
          "objects changed since the cull index snapshot was saved");
    }
  }
  std::vector<Volume::StoredObject> objects(count);
  const char* p = data.data() + header;
  for (Volume::StoredObject& o : objects) {
    o.hash = wire::LoadFixed(p, 8);
    o.bytes = wire::LoadFixed(p + 8, 8);
    o.last_used = static_cast<int64_t>(wire::LoadFixed(p + 16, 8));
    p += kEntryBytes;
  }
  return objects;
}

}  // namespace cachefs
