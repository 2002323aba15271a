// The cull index snapshot: the objects a culler knew when its mount went
// down cleanly, saved in the volume's directory, so the next mount starts
// without reading the metadata of every object on disk (a million objects
// take seconds to scan; the snapshot loads in a fraction of one).
//
// Read once at start and removed, so a crash never leaves a snapshot that
// objects changed since could contradict: the next start scans instead.
// It also records the times of the volume's fan-out directories; if any
// differs at load (objects made or removed by anything but the mount that
// saved it), the snapshot is stale and the start scans.
//
// Format, little-endian, saved on disk: never reorder:
//   "CFSCULL1"  256 x i64 fan-out directory mtime (ns)  u64 count
//   count x { u64 hash, u64 bytes, i64 last_used (seconds since the epoch) }
//   u32 CRC32C of everything before it

#ifndef CACHEFS_CULL_INDEX_SNAPSHOT_H_
#define CACHEFS_CULL_INDEX_SNAPSHOT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cookie/volume.h"

namespace cachefs {

// The name of the snapshot in the volume's directory.
inline constexpr char kCullIndexSnapshot[] = "cull.index";

std::string EncodeCullIndex(const std::vector<int64_t>& fan_dir_times,
                            const std::vector<Volume::StoredObject>& objects);

// Fails, returning nothing, unless `data` is one whole, valid snapshot
// saved when the fan-out directories had `fan_dir_times`.
absl::StatusOr<std::vector<Volume::StoredObject>> DecodeCullIndex(
    std::string_view data, const std::vector<int64_t>& fan_dir_times);

}  // namespace cachefs

#endif  // CACHEFS_CULL_INDEX_SNAPSHOT_H_
