// NetfsFile: the data side of one origin file, between the filesystem that
// names it and the cache that keeps its data, as the kernel's fs/netfs is
// between a network filesystem and fscache. It owns what every open of the
// file shares: the cookie, the origin files, the aux data the kernel's
// pages follow, and the write lock that keeps the cache in the origin's
// order of changes. It knows nothing of FUSE, inodes or names: the caller
// passes the file's key and a way to its origin path where one is needed,
// since renames change both.
//
// The rule it keeps for every operation: the origin first, then the cache.
// Reads go through the ReadPath (origin data is stored as it passes),
// writes through the WritePath (the origin must accept a change before the
// cache takes it). Coherency is the caller's to decide (when to fetch
// attributes); the file compares what it is given with its cookie's aux
// data and drops cached data that no longer matches.
//
// Thread safety: safe for concurrent use, as the FUSE loop requires.

#ifndef CACHEFS_NETFS_NETFS_FILE_H_
#define CACHEFS_NETFS_NETFS_FILE_H_

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cookie/cookie.h"
#include "cookie/dispatcher.h"
#include "cookie/volume.h"
#include "netfs/caller.h"
#include "netfs/open_origin_files.h"
#include "netfs/origin.h"
#include "netfs/read_path.h"
#include "netfs/write_path.h"

namespace cachefs {

// What every NetfsFile of one mount shares. Borrowed: all of it must
// outlive the files.
struct NetfsContext {
  Origin* origin = nullptr;
  Volume* volume = nullptr;
  ReadPath* read_path = nullptr;
  WritePath* write_path = nullptr;
  // Where origin files are closed (a close may ask the server).
  Dispatcher* origin_pool = nullptr;
  uint32_t granule_shift = 18;
  // Whether an origin file opened by name must be checked to be this file
  // (origins with stable inode numbers; see InodeTable).
  bool check_identity = false;
  // The aux data for attributes `st` (coherency.h).
  std::function<std::string(const struct stat& st)> aux_of;
  // Whether the origin is down and must not be asked (origin_health.h):
  // data the cache does not hold is then refused at once. May be empty.
  std::function<bool()> offline;
};

class NetfsFile {
 public:
  // A way to the file's origin path now (ESTALE once it has none).
  using PathFn = std::function<absl::StatusOr<std::string>()>;
  // The file's cache key now.
  using KeyFn = std::function<std::string()>;
  // Fresh attributes of the file from the origin, by its name.
  using FetchFn = std::function<absl::StatusOr<struct stat>()>;
  // Told as soon as the origin has changed the file's data through
  // cachefs, while the change still holds the write lock (the caller's
  // attributes from before it are stale); for an open that truncates, also
  // the file's lock. It must not call back into the file.
  using ChangedFn = std::function<void()>;

  // `dev` and `ino` are the origin's identity of the file.
  NetfsFile(const NetfsContext* context, dev_t dev, ino_t ino)
      : context_(context), dev_(dev), ino_(ino) {}
  NetfsFile(const NetfsFile&) = delete;
  NetfsFile& operator=(const NetfsFile&) = delete;

  // One open(2) of the file.
  class Handle {
   public:
    NetfsFile& file() const { return *file_; }
    // Whether it was opened for writing.
    bool writes() const { return writable_ != nullptr; }
    // The attributes it was opened with: what fstat answers once the name
    // leads elsewhere and no origin file is open (the cached data is that
    // version).
    const struct stat& opened_attr() const { return opened_attr_; }
    // The origin file this handle writes through, or null.
    OriginFile* writable() const { return writable_.get(); }
    // The file size its cookie holds.
    uint64_t size() const { return stream_->cookie->object_size(); }
    // A reader that asks for exactly what it wants (a prefetch) gets no
    // sequential read-ahead. Before any read.
    void ReadExactly() { stream_->read_ahead = false; }
    // The runs of [pos, pos + len) the cache does not hold now.
    std::vector<ReadSegment> Missing(uint64_t pos, uint64_t len) const;

   private:
    friend class NetfsFile;
    NetfsFile* file_ = nullptr;
    std::shared_ptr<ReadStream> stream_;
    std::shared_ptr<OriginFile> writable_;
    struct stat opened_attr_ {};
    // Closed (FLUSH) and not used since; set and cleared under the file's
    // mu_, counted in flushed_opens_.
    std::atomic<bool> flushed_{false};
  };

  struct OpenRequest {
    KeyFn key;            // the cache key, read under the file's lock
    PathFn path;          // for the origin file reads open lazily
    struct stat attr {};  // checked attributes, fetched for this open
    int flags = 0;
    // Opens the origin file this handle writes through; empty for a
    // handle that only reads. With O_TRUNC it truncates the origin file,
    // under the write lock.
    std::function<absl::StatusOr<std::unique_ptr<OriginFile>>()>
        open_for_writing;
    // `attr` contradicts what the kernel was last shown: report a change.
    bool kernel_stale = false;
    // Not the kernel's open (a prefetch): leaves alone what the kernel's
    // pages are known to follow, so its next open still sees a change.
    bool for_kernel = true;
    // Told of an open that truncated the file.
    ChangedFn changed = [] {};
  };
  struct Opened {
    std::unique_ptr<Handle> handle;
    bool keep_cache = false;  // the kernel's pages are still good
    bool changed = false;     // the origin changed since the last open
  };
  // Revalidates: compares `attr` with the cookie's aux data, acquires the
  // cookie at the first open and drops cached data that no longer
  // matches; then opens a handle. Fails only if the origin file for
  // writing cannot be opened.
  absl::StatusOr<Opened> Open(OpenRequest request);
  // Keeps `file`, opened by name while the open's check ran, as the shared
  // origin file for reads, unless one is open already.
  void AdoptOriginFile(std::unique_ptr<OriginFile> file);

  absl::StatusOr<std::unique_ptr<ReadReply>> Read(Handle& handle, uint64_t off,
                                                  size_t size);
  absl::StatusOr<size_t> Write(Handle& handle, const char* data, size_t size,
                               uint64_t off, const ChangedFn& changed);
  absl::Status Fallocate(Handle& handle, int mode, uint64_t off, uint64_t len,
                         const ChangedFn& changed);
  // Copies from `in`'s file to `out`'s at the origin; the copied granules
  // of `out` go absent (their data never passed through here).
  static absl::StatusOr<size_t> CopyFileRange(Handle& in, uint64_t off_in,
                                              Handle& out, uint64_t off_out,
                                              size_t len, unsigned flags,
                                              const ChangedFn& changed);
  // close(2) of one descriptor: the origin reports deferred errors here.
  absl::Status Flush(Handle& handle);
  absl::Status Fsync(Handle& handle, bool datasync);
  // The last release of the file gives up its cookie; if changes were made
  // through it, the cookie first adopts `fetch`'s attributes as aux data.
  void Release(std::unique_ptr<Handle> handle, const FetchFn& fetch);

  // Runs `change` (of the file's attributes or name) on the origin and
  // keeps the cached data across it: an open file's cookie adopts the
  // next attributes it fetches; a closed file's object is carried from
  // the attributes before (`fetch`) to those after (asked for at
  // `new_key`, or `key()`), and moved to `new_key` if given. With
  // `new_size`, the change set the size to it.
  absl::Status KeepAcross(const std::function<absl::Status()>& change,
                          const Caller& caller, const KeyFn& key,
                          const FetchFn& fetch, const std::string& new_key = "",
                          std::optional<uint64_t> new_size = {});
  // KeepAcross for a change of the size, ordered with writes.
  absl::Status Truncate(const std::function<absl::Status()>& change,
                        const Caller& caller, const KeyFn& key,
                        const FetchFn& fetch, uint64_t new_size);

  // Drops the cached data (cachefs-ctl invalidate): an open file starts
  // again with an empty object, and the kernel's pages go at its next
  // open. Returns whether the file is open.
  bool DropCachedData();
  // The file's key changed to `key`: the open cookie moves along.
  void Rekey(const std::string& key);
  // The file's name is gone at the origin: an open file's object moves to
  // `private_key` and goes with the last release. Returns false if the
  // file is not open.
  bool RetireOnRelease(const std::string& private_key);
  // Before the file's name goes at the origin (see the .cc).
  [[nodiscard]] std::unique_ptr<OriginFile> ReadyForRemoval(
      const PathFn& path, const Caller& caller);

  // Whether the file is open or has an origin file open.
  bool InUse();
  // An origin file open for the file now, for reading or writing, or null.
  std::shared_ptr<OriginFile> AnyOpenOriginFile();
  // Whether the kernel's pages were last given data with aux data `aux`.
  bool KernelFollows(const std::string& aux);
  // Stores data fetched ahead of any open, `data` of `length` bytes (the
  // whole file) read under aux data `fetched_aux`, as the open cookie's
  // first granule if `checked_aux` is still the file's. `take` is asked
  // under the write lock, so no write through cachefs comes between.
  struct FetchedAhead {
    std::string aux;
    uint64_t length = 0;
    iovec iov{};
    std::shared_ptr<void> owner;  // keeps `iov` alive until stored
  };
  bool StoreFetchedAhead(
      const std::function<std::optional<FetchedAhead>()>& take,
      const std::string& checked_aux);

 private:
  // Adopts fresh attributes as the cookie's aux data.
  void RefreshAuxLocked(const FetchFn& fetch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The origin lost writes it had taken: drop what the cache stored.
  void DropAfterLostWrites(Handle& handle);
  // A handle closed once is used again (through a dup'd descriptor).
  void NoteUsedAfterFlush(Handle& handle);
  // The shared origin file for reads, opened at the first need.
  absl::StatusOr<std::shared_ptr<OriginFile>> SharedOriginFile(
      const PathFn& path);
  std::shared_ptr<OriginFile> CountOpenLocked(std::unique_ptr<OriginFile> file)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(origin_mu_);

  const NetfsContext* const context_;
  const dev_t dev_;
  const ino_t ino_;

  // Serializes the changes of file data (writes, truncation, fallocate),
  // so the cache sees them in the order the origin did.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  std::shared_ptr<Cookie> cookie_ ABSL_GUARDED_BY(mu_);
  int opens_ ABSL_GUARDED_BY(mu_) = 0;
  // Of those, the handles whose close(2) has been seen (FLUSH) and that
  // have not been used since: their RELEASE is on its way.
  int flushed_opens_ ABSL_GUARDED_BY(mu_) = 0;
  // The aux data the last open saw: equal at the next open means the
  // kernel's page cache is still good.
  std::string last_aux_ ABSL_GUARDED_BY(mu_);
  // Changes made through cachefs since the cookie's aux data was last
  // taken from the origin: the cached data follows them, so the next
  // attributes fetched are adopted as the new aux data, not compared.
  bool aux_pending_ ABSL_GUARDED_BY(mu_) = false;
  // Unlinked while open: the object goes with the last release.
  bool retire_on_release_ ABSL_GUARDED_BY(mu_) = false;

  // The origin file, opened at the first read that misses the cache and
  // closed at the last release. Held across the open on purpose, so the
  // origin is asked once.
  absl::Mutex origin_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::shared_ptr<OriginFile> origin_file_ ABSL_GUARDED_BY(origin_mu_);
  // The origin file of the last open for writing, while it is open: what
  // tells a file's attributes once its name is gone (unlinked through
  // cachefs while open), if no origin file for reading is open.
  std::weak_ptr<OriginFile> writer_ ABSL_GUARDED_BY(origin_mu_);
  // Counts the origin files above until they are closed; made at the
  // first one (most files never have one).
  std::shared_ptr<OpenOriginFiles> open_origin_files_
      ABSL_GUARDED_BY(origin_mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NETFS_FILE_H_
