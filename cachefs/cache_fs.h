// CacheFs: the filesystem cachefs serves, without FUSE. Each method is one
// FUSE operation's work, returning absl::Status; fuse_ops.cc only turns
// requests into calls and results into replies, so this class can be
// tested without /dev/fuse.
//
// It owns the inode table and the open handles; reads go through the
// ReadPath, and every open regular file holds a cookie from the volume.
// Coherency is close-to-open: each open asks the origin for the file's
// attributes and compares them (as aux data) with the cookie's.
//
// Thread safety: safe for concurrent use, as libfuse's multi-threaded loop
// requires.

#ifndef CACHEFS_CACHEFS_CACHE_FS_H_
#define CACHEFS_CACHEFS_CACHE_FS_H_

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cachefs/attr_cache.h"
#include "cachefs/coherency.h"
#include "cachefs/inode_table.h"
#include "cachefs/read_path.h"
#include "cookie/cache.h"
#include "io/buffer_pool.h"
#include "netfs/origin.h"

namespace cachefs {

struct CacheFsOptions {
  // Close-to-open coherency: every open asks the origin for the file's
  // attributes. Without it (-o nocto) an open trusts attributes fetched
  // within attr_timeout, as NFS's nocto does.
  bool cto = true;
  // How long the daemon, like the kernel, may answer from attributes and
  // lookups it fetched earlier.
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  // File keys whose attributes the daemon keeps.
  size_t attr_cache_entries = 100000;
  // Whether aux data includes the origin's inode numbers.
  IdentityMode identity = IdentityMode::kAuto;
  // Granules fetched ahead of a sequential reader.
  uint32_t readahead_granules = 8;
  // Origin reads in flight at once, over all files.
  int origin_threads = 8;
  // Granule buffers in memory (256 KiB each).
  size_t buffers = 256;
};

class CacheFs {
 public:
  // Borrows `origin` and `cache`; `volume` is relinquished on destruction.
  static absl::StatusOr<std::unique_ptr<CacheFs>> Create(
      CacheFsOptions options, Origin* origin, Cache* cache,
      std::shared_ptr<Volume> volume);
  ~CacheFs();

  struct Entry {
    uint64_t ino = 0;
    struct stat attr;
  };
  // The caller's identity, for access checks.
  struct Caller {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
  };

  // Namespace and attributes.
  absl::StatusOr<Entry> Lookup(uint64_t parent, const std::string& name);
  void Forget(uint64_t ino, uint64_t nlookup);
  absl::StatusOr<struct stat> GetAttr(uint64_t ino);
  absl::StatusOr<std::string> ReadLink(uint64_t ino);
  absl::StatusOr<struct statvfs> StatFs(uint64_t ino);
  absl::StatusOr<std::string> GetXattr(uint64_t ino, const std::string& name);
  absl::StatusOr<std::vector<std::string>> ListXattr(uint64_t ino);
  absl::Status Access(uint64_t ino, int mask, const Caller& caller);

  // Directories. ReadDir calls `add` for each entry from `offset` on until
  // it returns false (the reply buffer is full); with `plus`, each entry is
  // looked up too (the kernel then holds a reference on it).
  absl::StatusOr<uint64_t> OpenDir(uint64_t ino);
  using DirFiller = std::function<bool(const std::string& name,
                                       const struct stat& attr,
                                       uint64_t next_offset,
                                       const Entry* entry)>;
  absl::Status ReadDir(uint64_t ino, uint64_t fh, uint64_t offset, bool plus,
                       const DirFiller& add);
  void ReleaseDir(uint64_t fh);

  // Files.
  struct Opened {
    uint64_t fh = 0;
    bool keep_cache = false;  // the kernel's cached pages are still good
    bool changed = false;     // the origin changed since the last open
  };
  absl::StatusOr<Opened> Open(uint64_t ino, int flags);
  absl::StatusOr<std::unique_ptr<ReadReply>> Read(uint64_t fh, uint64_t off,
                                                  size_t size);
  void Release(uint64_t fh);

  CacheStats& stats() { return cache_->stats(); }
  Origin* origin() const { return origin_; }
  Cache* cache() const { return cache_; }

 private:
  struct OpenFile;
  struct OpenDirectory;
  CacheFs(CacheFsOptions options, Origin* origin, Cache* cache,
          std::shared_ptr<Volume> volume, std::unique_ptr<InodeTable> inodes,
          std::unique_ptr<BufferPool> buffers);
  bool UseInode() const;
  // Looks up every entry but "." and ".." under `parent`, in parallel.
  void LookUpAll(uint64_t parent, const std::vector<OriginDir::Entry>& entries,
                 std::vector<absl::StatusOr<Entry>>* out);
  // The inode's origin node, resolved from its key on first use.
  absl::StatusOr<const Origin::Node*> NodeOf(Inode* inode);
  // Fresh attributes from the origin, remembered in attrs_.
  absl::StatusOr<struct stat> FetchAttr(Inode* inode);
  int64_t Now() const;

  const CacheFsOptions options_;
  Origin* const origin_;
  Cache* const cache_;
  const std::shared_ptr<Volume> volume_;
  const std::unique_ptr<InodeTable> inodes_;
  const std::unique_ptr<BufferPool> buffers_;
  AttrCache attrs_;
  Dispatcher origin_pool_;
  ReadPath read_path_;
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CACHE_FS_H_
