// The FUSE inode table: one Inode per origin file or directory the kernel
// knows, with the kernel's lookup count, as libfuse's passthrough_hp keeps
// it. The FUSE inode number is the Inode's address (stable: the table holds
// unique_ptrs), except for the root, which is FUSE_ROOT_ID.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_CACHEFS_INODE_TABLE_H_
#define CACHEFS_CACHEFS_INODE_TABLE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cookie/cookie.h"
#include "netfs/origin.h"

namespace cachefs {

struct Inode {
  Inode(std::unique_ptr<Origin::Node> node, dev_t dev, ino_t ino,
        mode_t type, std::string key)
      : dev(dev), ino(ino), type(type), key(std::move(key)),
        node(std::move(node)) {}

  // Constant after construction.
  const dev_t dev;
  const ino_t ino;
  const mode_t type;      // S_IFREG, S_IFDIR, ...
  const std::string key;  // the file key: its path below the origin root

  // Guarded by the table's lock.
  uint64_t nlookup = 0;

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

  // The origin file, opened at the first read that misses the cache and
  // closed at the last release. Held across the open on purpose, so the
  // origin is asked once.
  absl::Mutex origin_mu ABSL_ACQUIRED_AFTER(mu);
  std::shared_ptr<OriginFile> origin_file ABSL_GUARDED_BY(origin_mu);
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
  size_t size() const;

 private:
  Inode* const root_;
  mutable absl::Mutex mu_;
  std::map<std::pair<dev_t, ino_t>, std::unique_ptr<Inode>> inodes_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_INODE_TABLE_H_
