// CacheFs: the filesystem cachefs serves, without FUSE. Each method is one
// FUSE operation's work, returning absl::Status; fuse_ops.cc only turns
// requests into calls and results into replies, so this class can be
// tested without /dev/fuse.
//
// It owns the inode table and the open handles: naming, attributes and
// coherency checks are here; each regular file's data side (its cookie,
// origin files, reads and writes) is the inode's NetfsFile (netfs_file.h).
// Coherency is close-to-open: each open asks the origin for the file's
// attributes and compares them (as aux data) with the cookie's.
//
// Names and attributes (how it works): what the origin said about each key
// is kept in an AttrCache, beyond the kernel's inodes. A lookup or getattr
// answers from it while it is younger than entry_timeout / attr_timeout,
// and tells the kernel only the time left. A lookup of a name known from
// longer ago is answered from it too, but provisionally: with no time at
// all, so the kernel asks again (getattr) before it shows the attributes
// to anyone, and every operation on the file goes to the origin by path,
// which checks the name on the way. So an open of a known file costs one
// origin request, its own coherency check, not a lookup besides.
//
// Changes are written through to the origin first (write_path.h). The
// attributes a change through cachefs gives a file are not a sign that
// someone else changed it: an open file marks its aux data pending and
// adopts the next attributes it fetches; a closed file's object is carried
// across the change (and across a rename, to the new key). A file unlinked
// while open keeps its object under a private key until the last release,
// which deletes it.
//
// Thread safety: safe for concurrent use, as libfuse's multi-threaded loop
// requires.

#ifndef CACHEFS_CACHEFS_CACHE_FS_H_
#define CACHEFS_CACHEFS_CACHE_FS_H_

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cachefs/attr_cache.h"
#include "cachefs/coherency.h"
#include "cachefs/inode_table.h"
#include "cachefs/listings.h"
#include "cachefs/request_caller.h"
#include "cachefs/sibling_read_ahead.h"
#include "cookie/cache.h"
#include "io/buffer_pool.h"
#include "netfs/hang_guard.h"
#include "netfs/netfs_file.h"
#include "netfs/origin.h"
#include "netfs/origin_health.h"
#include "netfs/read_path.h"
#include "netfs/write_path.h"
#include "prefetch/prefetch.h"

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
  // The kernel's read-ahead window for the mount: how far out of order
  // one sequential reader's requests may arrive (read_path.h).
  uint64_t reorder_bytes = 4 << 20;
  // Small files of a directory fetched ahead of a reader that opens them
  // in order (sibling_read_ahead.h); 0 turns it off.
  int readahead_files = 16;
  // Origin reads in flight at once, over all files.
  int origin_threads = 8;
  // Attribute fetches in flight at once for a directory listing.
  int metadata_threads = 32;
  // Granule buffers in memory (256 KiB each).
  size_t buffers = 256;
  // Seconds between checkpoints of open files' objects (0: only at
  // release), which bounds what a crash costs the cache.
  double checkpoint_interval = 30.0;
  // Seconds one origin call may take before the origin counts as down
  // (origin_health.h); on an origin whose calls may hang (a FUSE or kernel
  // NFS mount) a caller stops waiting then.
  double origin_timeout = 30.0;
  // While the origin is down, serve what the cache and the attribute
  // cache know, as of their last check, and refuse every change
  // (-o offline=auto); without it, requests keep asking the origin.
  bool offline = true;
};

class CacheFs : public PrefetchTarget {
 public:
  // Borrows `origin` and `cache`; `volume` is relinquished on destruction.
  // With `unreachable` set (why the origin could not be opened), or when
  // the origin does not answer now, offline mode mounts from what the
  // cache knows, the origin marked down, if the cache knows the root.
  static absl::StatusOr<std::unique_ptr<CacheFs>> Create(
      CacheFsOptions options, Origin* origin, Cache* cache,
      std::shared_ptr<Volume> volume,
      absl::Status unreachable = absl::OkStatus());
  // The origin root as the cache last knew it, for a mount made while the
  // origin is unreachable (`why`); else an error that says the cache has
  // nothing to serve `origin` from.
  static absl::StatusOr<struct stat> OfflineRoot(const CacheFsOptions& options,
                                                 Volume& volume, Env* env,
                                                 const std::string& origin,
                                                 const absl::Status& why);
  ~CacheFs();

  struct Entry {
    uint64_t ino = 0;
    struct stat attr;
    // How long the kernel may keep the name and the attributes.
    double entry_timeout = 0;
    double attr_timeout = 0;
  };
  // Attributes and how long the kernel may keep them.
  struct Attr {
    struct stat attr;
    double timeout = 0;
  };

  // Namespace and attributes.
  absl::StatusOr<Entry> Lookup(uint64_t parent, const std::string& name);
  void Forget(uint64_t ino, uint64_t nlookup);
  // `fh` is the open file the kernel asks through (fstat), or 0.
  absl::StatusOr<Attr> GetAttr(uint64_t ino, uint64_t fh = 0);
  absl::StatusOr<std::string> ReadLink(uint64_t ino);
  absl::StatusOr<struct statvfs> StatFs(uint64_t ino);
  absl::StatusOr<std::string> GetXattr(uint64_t ino, const std::string& name);
  absl::StatusOr<std::vector<std::string>> ListXattr(uint64_t ino);
  // Asks the origin for the request's caller (request_caller.h).
  absl::Status Access(uint64_t ino, int mask);

  // Namespace changes, made for the request's caller.
  absl::StatusOr<Entry> MakeNode(uint64_t parent, const std::string& name,
                                 mode_t mode, dev_t rdev);
  absl::StatusOr<Entry> MakeDir(uint64_t parent, const std::string& name,
                                mode_t mode);
  absl::StatusOr<Entry> MakeSymlink(const std::string& target, uint64_t parent,
                                    const std::string& name);
  absl::StatusOr<Entry> Link(uint64_t ino, uint64_t new_parent,
                             const std::string& new_name);
  absl::Status Unlink(uint64_t parent, const std::string& name);
  absl::Status RemoveDir(uint64_t parent, const std::string& name);
  absl::Status Rename(uint64_t parent, const std::string& name,
                      uint64_t new_parent, const std::string& new_name,
                      unsigned flags);
  // Changes attributes; `fh` is the open file it comes through, or 0.
  absl::StatusOr<Attr> SetAttr(uint64_t ino,
                                      const Origin::AttrChange& change,
                                      uint64_t fh);
  absl::Status SetXattr(uint64_t ino, const std::string& name,
                        const std::string& value, int flags);
  absl::Status RemoveXattr(uint64_t ino, const std::string& name);

  // Drops the cached data and attributes of the files `keys` (as
  // `cachefs-ctl invalidate` names them): the next open checks the origin
  // and the next read fetches from it; a file open now starts again with
  // an empty object, and the kernel's pages go at its next open. Returns
  // how many of them had data cached.
  size_t DropCachedData(const std::vector<std::string>& keys);
  // Drops what was fetched ahead of its open (sibling_read_ahead.h) for
  // `key` and every file below it ("" is the root).
  void DropFetchedAhead(const std::string& key);

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
  absl::Status FsyncDir(uint64_t ino, bool datasync);

  // Files.
  struct Opened {
    uint64_t fh = 0;
    bool keep_cache = false;  // the kernel's cached pages are still good
    bool changed = false;     // the origin changed since the last open
    struct stat attr {};      // what the file was opened with
  };
  // Opens for reading or writing; a caller that is not the daemon's user
  // is checked by the origin (request_caller.h).
  absl::StatusOr<Opened> Open(uint64_t ino, int flags);
  struct Created {
    Entry entry;
    Opened opened;
  };
  absl::StatusOr<Created> Create(uint64_t parent, const std::string& name,
                                 mode_t mode, int flags);
  absl::StatusOr<std::unique_ptr<ReadReply>> Read(uint64_t fh, uint64_t off,
                                                  size_t size);
  absl::StatusOr<size_t> Write(uint64_t fh, const char* data, size_t size,
                               uint64_t off);
  // close(2) of one descriptor: the origin reports deferred errors here.
  absl::Status Flush(uint64_t fh);
  absl::Status Fsync(uint64_t fh, bool datasync);
  absl::Status Fallocate(uint64_t fh, int mode, uint64_t off, uint64_t len);
  absl::StatusOr<size_t> CopyFileRange(uint64_t fh_in, uint64_t off_in,
                                       uint64_t fh_out, uint64_t off_out,
                                       size_t len, unsigned flags);
  void Release(uint64_t fh);

  // Writes back every open file's map and aux data now; with
  // `wait_for_writes`, after the cache writes in flight have landed.
  void CheckpointAll(bool wait_for_writes = false);

  // PrefetchTarget (cache_fs_prefetch.cc): the prefetch layer's way in,
  // by path, through the same lookups, checks and read path as the
  // kernel's requests; opens it makes are not the kernel's (what the
  // kernel's pages follow is left to its own next open).
  absl::StatusOr<Node> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<Node>> List(const std::string& path) override;
  absl::StatusOr<Fetched> Fetch(const std::string& path,
                                const Progress& progress) override;
  absl::StatusOr<uint64_t> Push(const std::string& path, uint64_t off,
                                uint64_t len) override;
  // How Push hands data to the kernel's page cache (the front end's
  // notify_store): returns 0 or an errno (ENOENT: the kernel does not
  // know the inode).
  using KernelStore = std::function<int(uint64_t ino, uint64_t off,
                                        const std::vector<iovec>& data)>;
  void SetKernelStore(KernelStore store) { kernel_store_ = std::move(store); }
  // The file key of inode `ino` ("" for the root).
  std::string KeyOf(uint64_t ino);

  CacheStats& stats() { return cache_->stats(); }
  Origin* origin() const { return origin_; }
  const OriginHealth& origin_health() const { return health_; }
  // The metadata store as `status` shows it.
  struct StoreState {
    size_t names = 0;     // with attributes, from this mount or a snapshot
    size_t listings = 0;  // directories listed whole
    bool loaded = false;  // false while the snapshots still load
  };
  StoreState store_state() const;
  // Origin calls given up on after the timeout that have not returned.
  int stuck_origin_calls() const { return hang_guard_.stuck(); }
  Cache* cache() const { return cache_; }

 private:
  struct OpenFile;
  struct OpenDirectory;
  CacheFs(CacheFsOptions options, Origin* origin, Cache* cache,
          std::shared_ptr<Volume> volume, const struct stat& root_attr,
          std::unique_ptr<BufferPool> buffers);
  bool UseInode() const;
  // Looks up every entry but "." and ".." under `parent`, in parallel.
  void LookUpAll(uint64_t parent, const std::vector<OriginDir::Entry>& entries,
                 std::vector<absl::StatusOr<Entry>>* out);
  // The path origin requests name the inode by (ESTALE once unlinked).
  absl::StatusOr<std::string> PathOf(Inode* inode) const;
  // Fresh attributes from the origin, remembered in attrs_. ESTALE if the
  // inode's name now leads to another file.
  absl::StatusOr<struct stat> FetchAttr(Inode* inode);
  // The attributes the kernel is shown for `inode`.
  struct stat Shown(const Inode* inode, struct stat st) const;
  // Interns a looked-up key and fills `entry` for the kernel; `fresh`
  // says the attributes came from the origin just now.
  absl::StatusOr<Entry> MakeEntry(const std::string& key, struct stat attr,
                                  int64_t fetched, bool fresh);
  int64_t Now() const;
  // What xattr requests get when the origin has none.
  absl::Status NoXattrs() const;
  // The origin's attributes of `path` for the request's caller, bounded by
  // the origin timeout; what it says of the origin's health is noted.
  // While the origin is down (offline mode) fails at once with ENOTCONN.
  absl::StatusOr<struct stat> AskAttr(const std::string& path);
  // For `caller`: on a thread that serves no request.
  absl::StatusOr<struct stat> AskAttr(const std::string& path,
                                      const Caller& caller);
  // Takes note of what an origin call returned (origin_health.h): a
  // timeout or an unreachable origin marks it down, an answer up.
  void NoteOrigin(const absl::Status& status);
  // EIO from an origin now known to be down, as ENOTCONN: so that the
  // request is answered as offline ones are.
  absl::Status UnreachableIfDown(absl::Status status) const;
  // Whether requests are served from what is known, without the origin.
  bool Offline() const { return options_.offline && !health_.up(); }
  // EIO for a request that needs the origin while offline (counted).
  absl::Status OfflineUnknown(const std::string& what);
  // EROFS for a change asked while offline (counted), else OK.
  absl::Status RefuseIfOffline(const char* what);
  // The attributes last known for `key`, however old, if `failed` says the
  // origin cannot be reached (offline mode): what a request is answered
  // with instead of the error. Counted as an offline lookup.
  std::optional<struct stat> OfflineAttr(const std::string& key,
                                         const absl::Status& failed,
                                         int64_t* fetched = nullptr);

  // Records a change made through cachefs (see Inode::changed_ns).
  void MarkChanged(Inode* inode);
  // Attributes of `key` (the inode's name) fetched within `max_age`
  // seconds, unless the inode changed since.
  // With `fetched`, also when they were fetched.
  std::optional<struct stat> RecentAttr(Inode* inode, const std::string& key,
                                        double max_age,
                                        int64_t* fetched = nullptr);
  // A fresh lookup found `inode` under `key`, not under its own key: if
  // its own no longer leads to it (renamed on the origin), `key` becomes
  // its key, and its open object's.
  void RekeyIfMoved(Inode* inode, const std::string& key);
  // The path of `name` in the directory `parent` (ENOENT if the directory
  // was removed).
  absl::StatusOr<std::string> PathIn(uint64_t parent, const std::string& name);
  // Interns an entry a change just made under `parent`.
  Entry AddEntry(Inode* parent, const std::string& name,
                 const struct stat& made);
  // Sets up an open handle once the file's attributes are known;
  // `open_writable` opens the origin file for this handle, if it writes.
  // `kernel_stale`: `st` contradicts the attributes the kernel was last
  // given (the open then reports the file changed). Without `for_kernel`
  // (a prefetch) the open leaves alone what the kernel's pages are known
  // to follow, so the kernel's next open still sees a change.
  absl::StatusOr<Opened> OpenWith(
      Inode* inode, const struct stat& st, int flags,
      std::function<absl::StatusOr<std::unique_ptr<OriginFile>>()>
          open_writable,
      bool kernel_stale = false, bool for_kernel = true);
  // The inode at `path` from the root, looked up name by name as the
  // kernel would; each lookup on the way is added to `looked_up`, for
  // Forget once the caller is done.
  absl::StatusOr<uint64_t> Reach(const std::string& path,
                                 std::vector<uint64_t>* looked_up);
  // Opens the regular file at `path` for a prefetch: Reach, then the
  // check an open makes, then an open that is not the kernel's.
  absl::StatusOr<Opened> OpenForPrefetch(const std::string& path,
                                         std::vector<uint64_t>* looked_up);
  // An origin file opened on the pool while the open's check runs.
  struct PreOpen {
    absl::Notification done;
    absl::StatusOr<std::unique_ptr<OriginFile>> file =
        absl::UnknownError("not opened yet");
  };
  // Starts opening the origin file at `path` for a read-only open of a
  // file with nothing cached; `shown` is what the kernel was last told of
  // it. Null if not started.
  std::shared_ptr<PreOpen> StartPreOpen(const std::string& path,
                                        const struct stat& shown);
  // Keeps the pre-opened file for the handle's reads if the check
  // (`checked`) shows it is still the file the kernel was shown.
  void FinishPreOpen(Inode* inode, const struct stat& shown,
                     const struct stat& checked, PreOpen& pre_open);
  // Stores what was fetched ahead for `inode` (SiblingReadAhead) in its
  // cache object, if `checked` shows the attributes it was fetched under.
  void StoreFetchedAhead(Inode* inode, const struct stat& checked);
  // Whether nothing of `inode`'s data is cached or open.
  bool NothingCached(Inode* inode, const std::string& path);
  // Runs `change` on the origin and keeps `inode`'s cached data across it
  // (see the class comment); with `new_key`, moves it there too. (A change
  // of the size goes through NetfsFile::Truncate, under the write lock.)
  absl::Status KeepObjectAcross(Inode* inode,
                                const std::function<absl::Status()>& change,
                                const std::string& new_key = "");
  // The file keyed `key` is gone from its name: an open one keeps its
  // object under a private key until its last release; a closed one's
  // object is deleted. `inode` is the key's inode, or null.
  void DropObject(Inode* inode, const std::string& key);
  // Before the inode's name goes at the origin: handles already closed are
  // given a moment to be released and their origin files closed; for
  // handles still open the shared origin file is opened now, so their
  // readers keep their data (SSHFS cannot reopen it by name). Returns an
  // origin file to hold open until the name is gone, or null.
  [[nodiscard]] std::unique_ptr<OriginFile> ReadyForRemoval(Inode* inode);
  // Gives the inodes at and below `from` their keys under `to`.
  void MoveKeys(const std::string& from, const std::string& to);
  // A key no origin path can have.
  std::string PrivateKey(const char* why);
  // Checkpoints open objects every checkpoint_interval, and withdraws the
  // cache once its directory is gone or read-only.
  void CheckpointLoop();
  // The metadata store: the attribute and listing snapshots
  // (attr_snapshot.h, listings.h), loaded behind the mount on a thread of
  // its own, written every checkpoint interval and, `clean`, at a clean
  // unmount.
  void StartLoadingStore();
  void LoadStore(bool clean);
  // Waits until the store is loaded: for answers from it.
  void AwaitStore() const;
  void SaveAttrSnapshot(bool clean);
  // Reads the directory at `path` from the origin on the metadata pool,
  // storing its listing once read whole (-o nocto answers from it).
  void RefreshListingBehind(const std::string& path);

  const CacheFsOptions options_;
  Origin* const origin_;
  Cache* const cache_;
  const std::shared_ptr<Volume> volume_;
  const std::unique_ptr<InodeTable> inodes_;
  // The origin root's attributes at mount, and when: saved for the root if
  // nothing newer is known (SaveAttrSnapshot).
  const struct stat mount_root_attr_;
  const int64_t mounted_ns_;
  const std::unique_ptr<BufferPool> buffers_;
  AttrCache attrs_;
  // What a snapshot not saved at a clean unmount said (it may be behind
  // changes made before a crash): answered only while the origin is down,
  // never in place of asking it.
  AttrCache last_known_;
  Listings listings_;  // what offline mode answers listings and readlink with
  Dispatcher origin_pool_;
  Dispatcher metadata_pool_;
  HangGuard hang_guard_;
  OriginHealth health_;
  ReadPath read_path_;
  WritePath write_path_;
  NetfsContext files_;  // what every inode's NetfsFile works with
  SiblingReadAhead siblings_;
  std::atomic<uint64_t> private_keys_{0};
  KernelStore kernel_store_;  // set before the session runs
  absl::Notification stopping_;
  std::thread checkpointer_;
  // Set once the store is loaded (StartLoadingStore).
  absl::Notification store_loaded_;
  std::thread store_loader_;
  // Directories being read behind a reply (RefreshListingBehind).
  absl::Mutex refreshing_mu_;
  absl::flat_hash_set<std::string> refreshing_ ABSL_GUARDED_BY(refreshing_mu_);
  // What attrs_ and listings_ had changed when the store was last saved;
  // only the checkpointer and, once it has stopped, the destructor save.
  std::pair<uint64_t, uint64_t> saved_changes_{~uint64_t{0}, ~uint64_t{0}};
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CACHE_FS_H_
