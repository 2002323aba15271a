// The FUSE inode table: one Inode per origin file or directory the kernel
// knows, with the kernel's lookup count, as libfuse's passthrough_hp keeps
// it. The FUSE inode number is the Inode's address (stable: the table holds
// unique_ptrs), except for the root, which is FUSE_ROOT_ID.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_CACHEFS_INODE_TABLE_H_
#define CACHEFS_CACHEFS_INODE_TABLE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "cookie/cookie.h"
#include "netfs/origin.h"

namespace cachefs {

struct Inode {
  Inode(std::unique_ptr<Origin::Node> node, dev_t dev, ino_t ino,
        mode_t type, std::string key)
      : dev(dev), ino(ino), type(type), node(std::move(node)),
        key_(std::move(key)) {}

  // Constant after construction.
  const dev_t dev;
  const ino_t ino;
  const mode_t type;      // S_IFREG, S_IFDIR, ...

  // The file key: its path below the origin root. Renames and unlinks
  // through cachefs change it (InodeTable::RenameKeys, SetKey).
  std::string key() const {
    absl::MutexLock lock(&key_mu_);
    return key_;
  }

  // Guarded by the table's lock.
  uint64_t nlookup = 0;

  // When cachefs last changed the file (CLOCK_MONOTONIC ns): attributes
  // fetched before then, under this or any other of its names, are stale.
  std::atomic<int64_t> changed_ns{0};

  // The origin node, resolved from `key` when first needed: an inode made
  // from cached attributes has none until the origin must be asked. Set
  // once, never changed after.
  absl::Mutex node_mu;
  std::unique_ptr<Origin::Node> node ABSL_GUARDED_BY(node_mu);

  // Open-file state, shared by every open of the inode.
  absl::Mutex mu;
  std::shared_ptr<Cookie> cookie ABSL_GUARDED_BY(mu);
  int opens ABSL_GUARDED_BY(mu) = 0;
  // The aux data the last open saw: equal at the next open means the
  // kernel's page cache is still good.
  std::string last_aux ABSL_GUARDED_BY(mu);
  // Changes made through cachefs since the cookie's aux data was last
  // taken from the origin: the cached data follows them, so the next
  // attributes fetched are adopted as the new aux data, not compared.
  bool aux_pending ABSL_GUARDED_BY(mu) = false;
  // Unlinked while open: the object goes with the last release.
  bool retire_on_release ABSL_GUARDED_BY(mu) = false;

  // Serializes the changes of file data (writes, truncation, fallocate),
  // so the cache sees them in the order the origin did.
  absl::Mutex write_mu ABSL_ACQUIRED_BEFORE(mu);

  // The origin file, opened at the first read that misses the cache and
  // closed at the last release. Held across the open on purpose, so the
  // origin is asked once.
  absl::Mutex origin_mu ABSL_ACQUIRED_AFTER(mu);
  std::shared_ptr<OriginFile> origin_file ABSL_GUARDED_BY(origin_mu);

 private:
  friend class InodeTable;
  mutable absl::Mutex key_mu_;
  std::string key_ ABSL_GUARDED_BY(key_mu_);
};

class InodeTable {
 public:
  // `root_attr`: the attributes of the origin root (whose node the origin
  // keeps).
  explicit InodeTable(const struct stat& root_attr);
  ~InodeTable();

  static constexpr uint64_t kRootId = 1;  // FUSE_ROOT_ID

  Inode* root() const { return root_; }
  uint64_t IdOf(const Inode* inode) const;
  // The inode for a FUSE inode number. REQUIRES: the kernel holds a lookup
  // reference on it.
  Inode* Get(uint64_t id) const;

  // Returns the inode for an origin file with attributes `attr`, making it
  // if new, with one more lookup reference. `node` (may be null) and `key`
  // are used if the inode is new or has no node yet.
  Inode* Intern(std::unique_ptr<Origin::Node> node, const struct stat& attr,
                std::string key);
  // Drops `n` lookup references; the inode goes at zero.
  void Forget(uint64_t id, uint64_t n);

  // Inode::changed_ns of the inode for (dev, ino), or 0 if there is none.
  int64_t ChangedNs(dev_t dev, ino_t ino) const;
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
  size_t size() const;

 private:
  Inode* const root_;
  mutable absl::Mutex mu_;
  void IndexKey(Inode* inode, std::string key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::map<std::pair<dev_t, ino_t>, std::unique_ptr<Inode>> inodes_
      ABSL_GUARDED_BY(mu_);
  // The newest inode for each key (an older one may keep a key the origin
  // has since given to another file).
  absl::flat_hash_map<std::string, Inode*> by_key_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_INODE_TABLE_H_
