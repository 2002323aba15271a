// The kernel's table of mounts, from /proc/self/mountinfo: used to name a
// volume after the export an origin directory lives on, to refuse a busy
// mount point, and by cachefs-ctl to recognize a cachefs mount.

#ifndef CACHEFS_NETFS_MOUNT_TABLE_H_
#define CACHEFS_NETFS_MOUNT_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cachefs {

struct MountEntry {
  std::string mount_point;  // where it is mounted
  std::string root;         // the directory of the filesystem mounted there
  std::string fs_type;      // "ext4", "fuse.sshfs", "fuse.cachefs", ...
  std::string source;       // "/dev/vda", "user@host:/export", ...
};

absl::StatusOr<std::vector<MountEntry>> ReadMountTable(
    const std::string& path = "/proc/self/mountinfo");

// The mount that `path` (absolute, normalized) lives on: the entry with the
// longest mount point that is `path` or a parent of it (the last such
// entry when mounts are stacked). Null if none.
const MountEntry* FindMountOf(const std::vector<MountEntry>& table,
                              const std::string& path);

// Whether `path` is itself a mount point.
bool IsMountPoint(const std::vector<MountEntry>& table,
                  const std::string& path);

// A printable key for the origin directory `path` that does not depend on
// where the export is mounted locally: "<fs type>:<source>:<path inside the
// filesystem>".
std::string OriginVolumeKey(const std::vector<MountEntry>& table,
                            const std::string& path);
// OriginVolumeKey as this process's mount table has it now: what tells a
// remount of the same export at `path` from another filesystem there.
absl::StatusOr<std::string> CurrentOriginKey(const std::string& path);

}  // namespace cachefs

#endif  // CACHEFS_NETFS_MOUNT_TABLE_H_
