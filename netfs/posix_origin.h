// PosixOrigin: an origin that is a directory on any mounted filesystem
// (SSHFS, NFS, CIFS, local). Every path is walked one name at a time with
// O_NOFOLLOW (or by openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so
// nothing escapes the origin and symlinks are read, never followed.
//
// How requests map to round trips on a FUSE origin (SSHFS mounted with
// entry_timeout=0, as the README asks): a descriptor of a FUSE file stands
// for its path (sshfs sends paths to the server), so the backend keeps the
// O_PATH descriptors of recently used paths in a bounded DescriptorCache.
// GetAttr of a kept path is one GETATTR, of a new one one LOOKUP (which,
// with entry_timeout=0, always asks the server and brings the attributes);
// opening a kept path is one OPEN. Directories on the way to a path are
// looked up only when not kept. Files opened for reading are opened with
// O_DIRECT there: reads go to the server in parallel pieces, not through
// the origin mount's page cache. On other filesystems a descriptor follows
// its file across renames, so nothing is kept: each request walks the path
// in the kernel's dentry cache.

#ifndef CACHEFS_NETFS_POSIX_ORIGIN_H_
#define CACHEFS_NETFS_POSIX_ORIGIN_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "netfs/descriptor_cache.h"
#include "netfs/origin.h"

namespace cachefs {

class PosixOrigin : public Origin {
 public:
  struct Options {
    // O_PATH descriptors kept for a FUSE origin (see above).
    size_t descriptors = 1024;
  };
  // Opens the origin directory `path`. Fails with a message naming it if it
  // is missing, not a directory, or cannot be opened.
  static absl::StatusOr<std::unique_ptr<PosixOrigin>> Open(
      const std::string& path, Options options);
  static absl::StatusOr<std::unique_ptr<PosixOrigin>> Open(
      const std::string& path) {
    return Open(path, Options());
  }
  // The traits of an origin on a filesystem of type `fs_type` as the mount
  // table names it ("fuse.sshfs", "nfs4", ...), for an origin that cannot
  // be asked yet (late_origin.h).
  static Traits TraitsOfMountType(const std::string& fs_type);
  ~PosixOrigin() override;

  const Traits& traits() const override { return traits_; }
  std::string Describe() const override { return path_; }
  const OriginStats& stats() const override { return stats_; }
  // Descriptors kept now (for tests of the bound).
  size_t descriptors_kept() const { return fds_.size(); }

  absl::StatusOr<struct stat> GetAttr(const Caller& caller,
                                      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<OriginFile>> OpenFile(const Caller& caller,
                                                       const std::string& path,
                                                       int flags) override;
  absl::Status CheckAccess(const Caller& caller, const std::string& path,
                           int mask) override;
  absl::StatusOr<std::unique_ptr<OriginDir>> OpenDir(
      const Caller& caller, const std::string& path) override;
  absl::StatusOr<std::string> ReadLink(const Caller& caller,
                                       const std::string& path) override;
  absl::StatusOr<struct statvfs> StatFs(const Caller& caller,
                                        const std::string& path) override;
  absl::StatusOr<std::string> GetXattr(const Caller& caller,
                                       const std::string& path,
                                       const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> ListXattr(
      const Caller& caller, const std::string& path) override;

  absl::StatusOr<CreateResult> Create(const Caller& caller,
                                      const std::string& path, mode_t mode,
                                      int flags) override;
  absl::StatusOr<struct stat> MakeNode(const Caller& caller,
                                       const std::string& path, mode_t mode,
                                       dev_t rdev) override;
  absl::StatusOr<struct stat> MakeDir(const Caller& caller,
                                      const std::string& path,
                                      mode_t mode) override;
  absl::StatusOr<struct stat> MakeSymlink(const Caller& caller,
                                          const std::string& target,
                                          const std::string& path) override;
  absl::StatusOr<struct stat> Link(const Caller& caller,
                                   const std::string& path,
                                   const std::string& new_path) override;
  absl::Status Unlink(const Caller& caller, const std::string& path) override;
  absl::Status RemoveDir(const Caller& caller,
                         const std::string& path) override;
  absl::Status Rename(const Caller& caller, const std::string& path,
                      const std::string& new_path, unsigned flags) override;
  absl::Status SetAttr(const Caller& caller, const std::string& path,
                       const AttrChange& change, OriginFile* file) override;
  absl::Status SetXattr(const Caller& caller, const std::string& path,
                        const std::string& name, const std::string& value,
                        int flags) override;
  absl::Status RemoveXattr(const Caller& caller, const std::string& path,
                           const std::string& name) override;
  absl::Status SyncDir(const Caller& caller, const std::string& path,
                       bool datasync) override;

 private:
  using Ref = DescriptorCache::Ref;
  PosixOrigin(std::string path, int root_fd, Traits traits, Options options);

  // An O_PATH descriptor of `path`. Looking up its last name counts in
  // `last` (directories above it count as walks); `looked_up` says whether
  // it was looked up just now, which on a FUSE origin means the kernel
  // asked the server and holds fresh attributes.
  absl::StatusOr<Ref> Reach(const std::string& path,
                            OriginStats::Counter& last,
                            bool* looked_up = nullptr);
  // The directory holding `path`'s last name, and that name.
  absl::StatusOr<Ref> ReachParent(const std::string& path, std::string* name);
  // Attributes of a file this backend just made at `path` (the kernel
  // holds them fresh from the change's reply, or asks once).
  absl::StatusOr<struct stat> AttrOfMade(const std::string& path);
  // Forgets the descriptors that a change of `path` may have made stale.
  void Changed(const std::string& path) { fds_.Forget(path); }

  // The root directory's descriptor.
  Ref Root() const;
  // A stat of the root that says ENOTCONN (the FUSE mount under the
  // origin directory died, as SSHFS does when it loses its server): opens
  // the directory again, to find a mount made there since. True if one was.
  bool Reconnect();

  const std::string path_;
  // The export mounted at path_ when opened (mount_table.h), "" if the
  // mount table could not be read: Reconnect takes only that export.
  std::string mount_key_;
  mutable absl::Mutex root_mu_;
  Ref root_ ABSL_GUARDED_BY(root_mu_);
  const Traits traits_;
  // Whether descriptors stand for paths and are kept (FUSE origins).
  const bool keep_descriptors_;
  DescriptorCache fds_;
  OriginStats stats_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_POSIX_ORIGIN_H_
