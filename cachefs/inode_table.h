// The FUSE inode table: one Inode per origin file or directory the kernel
// knows, with the kernel's lookup count, as libfuse's passthrough_hp keeps
// it. The FUSE inode number is the Inode's address (stable: the table holds
// unique_ptrs), except for the root, which is FUSE_ROOT_ID.
//
// What makes two lookups the same file: on an origin with stable inode
// numbers, the origin's (st_dev, st_ino), so hard links share one Inode and
// the kernel's page cache; elsewhere (SSHFS, whose numbers are made up and
// change when it forgets a file) the key, and the kernel is shown an st_ino
// derived from the key. An Inode holds no origin resource while its file is
// closed: origin requests name files by key, so the table can know a
// million files.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_CACHEFS_INODE_TABLE_H_
#define CACHEFS_CACHEFS_INODE_TABLE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "netfs/netfs_file.h"
#include "netfs/origin.h"

namespace cachefs {

struct Inode {
  Inode(dev_t dev, ino_t ino, mode_t type, std::string key, ino_t shown_ino,
        const NetfsContext* files)
      : dev(dev),
        ino(ino),
        type(type),
        shown_ino(shown_ino),
        data(files, dev, ino),
        key_(std::move(key)) {}

  // Constant after construction.
  const dev_t dev;        // the origin's identity of the file, where it
  const ino_t ino;        // has stable inode numbers
  const mode_t type;      // S_IFREG, S_IFDIR, ...
  const ino_t shown_ino;  // the st_ino the kernel is told

  // The file key: its path below the origin root, and the path origin
  // requests name it by. Renames and unlinks through cachefs change it
  // (InodeTable::RenameKeys, SetKey).
  std::string key() const {
    absl::MutexLock lock(&key_mu_);
    return key_;
  }

  // Guarded by the table's lock.
  uint64_t nlookup = 0;

  // When cachefs last changed the file (CLOCK_MONOTONIC ns): attributes
  // fetched before then, under this or any other of its names, are stale.
  std::atomic<int64_t> changed_ns{0};

  // The file's data side: its cookie and origin files while it is open
  // (unused for other types).
  NetfsFile data;

 private:
  friend class InodeTable;
  mutable absl::Mutex key_mu_;
  std::string key_ ABSL_GUARDED_BY(key_mu_);
};

class InodeTable {
 public:
  // `root_attr`: the attributes of the origin root. With `by_key`, files
  // are told apart by key rather than by inode number (see above).
  // `files` is what each inode's NetfsFile works with (borrowed).
  InodeTable(const struct stat& root_attr, bool by_key,
             const NetfsContext* files);
  ~InodeTable();

  static constexpr uint64_t kRootId = 1;  // FUSE_ROOT_ID

  Inode* root() const { return root_; }
  uint64_t IdOf(const Inode* inode) const;
  // The inode for a FUSE inode number. REQUIRES: the kernel holds a lookup
  // reference on it.
  Inode* Get(uint64_t id) const;

  // Returns the inode for the origin file at `key` with attributes `attr`,
  // making it if new, with one more lookup reference. A file of another
  // type than the key's inode (replaced on the origin) gets a new one.
  Inode* Intern(const struct stat& attr, std::string key);
  // Drops `n` lookup references; the inode goes at zero.
  void Forget(uint64_t id, uint64_t n);

  // Inode::changed_ns of the inode that `attr`, fetched for `key`, belongs
  // to, or 0 if there is none.
  int64_t ChangedNs(const std::string& key, const struct stat& attr) const;
  // The inode whose key is `key`, with one more lookup reference (drop it
  // with Forget), or null.
  Inode* FindByKey(const std::string& key);
  // The origin renamed `from` to `to`: the inode keyed `from` and, for a
  // directory, every inode below it get their new keys. Returns the inodes
  // below it, each with one more lookup reference (drop with Forget).
  std::vector<Inode*> RenameKeys(const std::string& from,
                                 const std::string& to);
  // Gives `inode` a new key (e.g. a private one once it is unlinked).
  void SetKey(Inode* inode, std::string key);
  // The st_ino the kernel is shown for a file at `key` with origin
  // attributes `attr` that has no inode yet (a plain directory listing).
  ino_t ShownIno(const std::string& key, const struct stat& attr) const;
  bool by_key() const { return by_key_mode_; }
  size_t size() const;

 private:
  const NetfsContext* const files_;
  Inode* const root_;
  const bool by_key_mode_;
  mutable absl::Mutex mu_;
  void IndexKey(Inode* inode, std::string key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Inode* FindLocked(const std::string& key, const struct stat& attr) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::flat_hash_map<const Inode*, std::unique_ptr<Inode>> inodes_
      ABSL_GUARDED_BY(mu_);
  // Origins with stable inode numbers: the inode of each (st_dev, st_ino).
  absl::flat_hash_map<std::pair<dev_t, ino_t>, Inode*> by_identity_
      ABSL_GUARDED_BY(mu_);
  // The newest inode for each key (an older one may keep a key the origin
  // has since given to another file).
  absl::flat_hash_map<std::string, Inode*> by_key_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_INODE_TABLE_H_
