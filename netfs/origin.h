// Origin: the server side of cachefs, the source of truth for every file.
// One interface over every backend: a mounted directory (SSHFS, NFS, CIFS,
// local; posix_origin.h) and, later, NFS reached directly through libnfs.
//
// Nodes name origin files and directories independently of their paths (an
// O_PATH descriptor for a mounted directory), so a node stays valid across
// renames, as FUSE inodes must. A name handed to Lookup is a single path
// component: the backend never lets it climb out of the origin, and never
// follows a symlink itself.
//
// Thread safety: all methods may be called concurrently.

#ifndef CACHEFS_NETFS_ORIGIN_H_
#define CACHEFS_NETFS_ORIGIN_H_

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cachefs {

// One open origin file. PRead may be called from many threads at once.
class OriginFile {
 public:
  virtual ~OriginFile() = default;
  // Reads up to n bytes at offset; fewer only at end of file.
  virtual absl::StatusOr<size_t> PRead(void* buf, size_t n,
                                       uint64_t offset) = 0;
  virtual absl::StatusOr<struct stat> Stat() = 0;
};

// One open directory stream. Used by one thread at a time.
class OriginDir {
 public:
  struct Entry {
    std::string name;
    ino_t ino = 0;
    unsigned char type = 0;  // DT_*
    uint64_t next_offset = 0;  // pass to Seek to continue after this entry
  };
  virtual ~OriginDir() = default;
  virtual absl::Status Seek(uint64_t offset) = 0;
  // The next entry, or nullopt at the end.
  virtual absl::StatusOr<std::optional<Entry>> Next() = 0;
};

class Origin {
 public:
  // A reference to one origin file or directory.
  class Node {
   public:
    virtual ~Node() = default;
  };
  struct LookupResult {
    std::unique_ptr<Node> node;
    struct stat attr;
  };
  // What cachefs may rely on, per backend and mount.
  struct Traits {
    std::string fs_type;        // "fuse.sshfs", "nfs", "ext4", ...
    // Inode numbers survive a remount of the origin (not on SSHFS).
    bool stable_inode_numbers = true;
    // Timestamps carry sub-second precision (SSHFS: whole seconds).
    bool subsecond_times = true;
  };

  virtual ~Origin() = default;

  virtual const Traits& traits() const = 0;
  // A short printable description, e.g. the origin directory's path.
  virtual std::string Describe() const = 0;

  virtual const Node& Root() const = 0;
  // Looks up one path component. "" "." ".." and names with '/' are
  // refused with kInvalidArgument; a missing name is kNotFound.
  virtual absl::StatusOr<LookupResult> Lookup(const Node& parent,
                                              const std::string& name) = 0;
  // Resolves a relative path of one or more components below the root,
  // without following any symlink and without leaving the origin.
  virtual absl::StatusOr<LookupResult> Resolve(const std::string& path) = 0;
  // The node's attributes, fresh from the server (no client-side cache).
  virtual absl::StatusOr<struct stat> GetAttr(const Node& node) = 0;
  // Opens a regular file for reading.
  virtual absl::StatusOr<std::unique_ptr<OriginFile>> OpenFile(
      const Node& node) = 0;
  virtual absl::StatusOr<std::unique_ptr<OriginDir>> OpenDir(
      const Node& node) = 0;
  virtual absl::StatusOr<std::string> ReadLink(const Node& node) = 0;
  virtual absl::StatusOr<struct statvfs> StatFs(const Node& node) = 0;
  // Extended attributes; GetXattr of a missing name is kNotFound.
  virtual absl::StatusOr<std::string> GetXattr(const Node& node,
                                               const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListXattr(
      const Node& node) = 0;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_ORIGIN_H_
