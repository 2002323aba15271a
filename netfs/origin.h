// Origin: the server side of cachefs, the source of truth for every file.
// One interface over every backend: a mounted directory (SSHFS, NFS, CIFS,
// local; posix_origin.h) and NFS reached directly through libnfs
// (nfs_origin.h).
//
// Files are named by their paths below the origin root, as cachefs keys
// them: a backend holds no state per file cachefs knows, so a million
// known files cost the origin nothing (descriptors a backend keeps to save
// round trips are a bounded set of its own).
//
// Thread safety: all methods may be called concurrently.

#ifndef CACHEFS_NETFS_ORIGIN_H_
#define CACHEFS_NETFS_ORIGIN_H_

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "netfs/caller.h"
#include "netfs/origin_stats.h"

namespace cachefs {

// One open origin file. Every method may be called from many threads at
// once.
class OriginFile {
 public:
  virtual ~OriginFile() = default;
  // Reads up to n bytes at offset; fewer only at end of file.
  virtual absl::StatusOr<size_t> PRead(void* buf, size_t n,
                                       uint64_t offset) = 0;
  // Writes n bytes at offset; returns how many the origin accepted (fewer
  // only when it ran out of room midway).
  virtual absl::StatusOr<size_t> PWrite(const void* buf, size_t n,
                                        uint64_t offset) = 0;
  virtual absl::StatusOr<struct stat> Stat() = 0;
  virtual absl::Status Truncate(uint64_t size) = 0;
  virtual absl::Status Sync(bool datasync) = 0;
  // What close(2) of one user descriptor means to the origin: NFS and
  // SSHFS report deferred write errors here.
  virtual absl::Status Flush() = 0;
  // fallocate(2).
  virtual absl::Status Allocate(int mode, uint64_t offset, uint64_t len) = 0;
  // copy_file_range(2) from this file into `out`; returns bytes copied.
  virtual absl::StatusOr<size_t> CopyTo(uint64_t offset, OriginFile& out,
                                        uint64_t out_offset, size_t len,
                                        unsigned flags) = 0;
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

// Whether `status` says the origin could not be reached (ENOTCONN,
// ETIMEDOUT, ECONNREFUSED, ...), as opposed to an answer from it such as
// ENOENT or EACCES.
bool SaysUnreachable(const absl::Status& status);

class Origin {
 public:
  struct CreateResult {
    struct stat attr;
    std::unique_ptr<OriginFile> file;
  };
  // The attributes SetAttr changes; unset ones stay as they are. A time's
  // tv_nsec may be UTIME_NOW.
  struct AttrChange {
    std::optional<mode_t> mode;
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::optional<uint64_t> size;
    std::optional<struct timespec> atime;
    std::optional<struct timespec> mtime;
    // Setuid and setgid bits to take off the file's mode as it is at the
    // moment of the change, on the very file reached (nothing else of the
    // mode changes): what a write by a non-owner does on a local
    // filesystem. Made as the daemon, so it can only ever remove bits.
    mode_t clear_set_ids = 0;
  };
  // What cachefs may rely on, per backend and mount.
  struct Traits {
    std::string fs_type;        // "fuse.sshfs", "nfs", "ext4", ...
    // Inode numbers survive a remount of the origin (not on SSHFS).
    bool stable_inode_numbers = true;
    // Timestamps carry sub-second precision (SSHFS: whole seconds).
    bool subsecond_times = true;
    // Extended attributes exist at all (not on SSHFS).
    bool xattrs = true;
    // A call may block for as long as the server does not answer (a FUSE
    // or kernel NFS mount): the caller bounds it (hang_guard.h).
    bool calls_may_hang = false;
  };

  virtual ~Origin() = default;

  virtual const Traits& traits() const = 0;
  // A short printable description, e.g. the origin directory's path.
  virtual std::string Describe() const = 0;
  // What was asked of the origin so far.
  virtual const OriginStats& stats() const = 0;

  // Every call names files by their path below the origin root: names
  // joined by '/', "" for the root itself. Each name is one directory
  // entry: not empty, not "." or "..". Anything else is refused with
  // kInvalidArgument. A backend never follows a symlink on a path and never
  // leaves the origin; a missing file is kNotFound.
  //
  // Every call is made for a Caller (caller.h), whose permissions the
  // origin checks and who owns what the call makes; an OriginFile acts for
  // the caller that opened it.

  // The attributes of the file at `path` (a symlink's own), fresh from the
  // server: one request, whether the name was asked about before or not.
  virtual absl::StatusOr<struct stat> GetAttr(const Caller& caller,
                                              const std::string& path) = 0;
  // Opens a regular file; `flags` as for open(2), without O_CREAT.
  virtual absl::StatusOr<std::unique_ptr<OriginFile>> OpenFile(
      const Caller& caller, const std::string& path, int flags) = 0;
  // access(2) for `caller`.
  virtual absl::Status CheckAccess(const Caller& caller,
                                   const std::string& path, int mask) = 0;
  virtual absl::StatusOr<std::unique_ptr<OriginDir>> OpenDir(
      const Caller& caller, const std::string& path) = 0;
  virtual absl::StatusOr<std::string> ReadLink(const Caller& caller,
                                               const std::string& path) = 0;
  virtual absl::StatusOr<struct statvfs> StatFs(const Caller& caller,
                                                const std::string& path) = 0;
  // Extended attributes; GetXattr of a missing name is kNotFound.
  virtual absl::StatusOr<std::string> GetXattr(const Caller& caller,
                                               const std::string& path,
                                               const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListXattr(
      const Caller& caller, const std::string& path) = 0;

  // Changes. The origin checks `caller`'s permissions; its errno reaches
  // the caller unchanged.
  // Those that make a file return its attributes.
  virtual absl::StatusOr<CreateResult> Create(const Caller& caller,
                                              const std::string& path,
                                              mode_t mode, int flags) = 0;
  // mknod(2): regular files, FIFOs, sockets and devices.
  virtual absl::StatusOr<struct stat> MakeNode(const Caller& caller,
                                               const std::string& path,
                                               mode_t mode, dev_t rdev) = 0;
  virtual absl::StatusOr<struct stat> MakeDir(const Caller& caller,
                                              const std::string& path,
                                              mode_t mode) = 0;
  virtual absl::StatusOr<struct stat> MakeSymlink(const Caller& caller,
                                                  const std::string& target,
                                                  const std::string& path) = 0;
  virtual absl::StatusOr<struct stat> Link(const Caller& caller,
                                           const std::string& path,
                                           const std::string& new_path) = 0;
  virtual absl::Status Unlink(const Caller& caller,
                              const std::string& path) = 0;
  virtual absl::Status RemoveDir(const Caller& caller,
                                 const std::string& path) = 0;
  // renameat2(2); RENAME_NOREPLACE and RENAME_EXCHANGE where the backend
  // has them (EINVAL where not).
  virtual absl::Status Rename(const Caller& caller, const std::string& path,
                              const std::string& new_path, unsigned flags) = 0;
  // Through `file` when the change comes from an open file (ftruncate,
  // fchmod), which permission checks treat differently.
  virtual absl::Status SetAttr(const Caller& caller, const std::string& path,
                               const AttrChange& change, OriginFile* file) = 0;
  virtual absl::Status SetXattr(const Caller& caller, const std::string& path,
                                const std::string& name,
                                const std::string& value, int flags) = 0;
  virtual absl::Status RemoveXattr(const Caller& caller,
                                   const std::string& path,
                                   const std::string& name) = 0;
  virtual absl::Status SyncDir(const Caller& caller, const std::string& path,
                               bool datasync) = 0;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_ORIGIN_H_
