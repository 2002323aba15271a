// The attribute snapshot: what an AttrCache knew when its mount went down
// cleanly, saved in the volume's directory so that the next mount answers
// known names and attributes within their timeouts without asking the
// origin (nocto with long timeouts: no round trip at all after a remount).
//
// Times are kept on CLOCK_MONOTONIC in memory and saved as wall-clock
// times; an entry from the future (the clock went back) is dropped. The
// snapshot is saved every checkpoint interval and at a clean unmount; one
// not saved at a clean unmount may be behind changes made since, and
// CacheFs answers from it only while the origin is down.
//
// Format, little-endian, saved on disk: never reorder:
//   "CFSATTR1"  u64 saved_at (realtime ns)  u32 count
//   count x { u16 key length, key, u64 dev, u64 ino, u32 mode, u64 nlink,
//             u32 uid, u32 gid, u64 rdev, u64 size, u64 blksize,
//             u64 blocks, 3 x (i64 sec, u32 nsec) for atime, mtime, ctime,
//             i64 fetched (realtime ns) }
//   u32 CRC32C of everything before it

#ifndef CACHEFS_CACHEFS_ATTR_SNAPSHOT_H_
#define CACHEFS_CACHEFS_ATTR_SNAPSHOT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cachefs/attr_cache.h"

namespace cachefs {

// The clocks a snapshot converts between.
struct SnapshotClock {
  int64_t monotonic_ns = 0;
  int64_t realtime_ns = 0;
};

// Entries of `cache` fetched at most `max_age_ns` before `now`.
std::string EncodeAttrSnapshot(const AttrCache& cache, SnapshotClock now,
                               int64_t max_age_ns);

// Puts the entries of `data` fetched at most `max_age_ns` before `now`
// into `cache` (`behind`: see AttrCache::BeginLoad); returns how many.
// Fails, adding nothing, if `data` is not a whole, valid snapshot.
absl::StatusOr<size_t> DecodeAttrSnapshot(std::string_view data,
                                          SnapshotClock now, int64_t max_age_ns,
                                          AttrCache* cache,
                                          bool behind = false);

// The attributes `data` holds for `key`, if any, without loading the rest.
absl::StatusOr<std::optional<struct stat>> FindInAttrSnapshot(
    std::string_view data, SnapshotClock now, int64_t max_age_ns,
    std::string_view key);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_ATTR_SNAPSHOT_H_
