// DescriptorCache: a bounded set of O_PATH descriptors for origin paths,
// the least recently used let go first. A backend keeps the descriptors of
// paths it used lately so the next request for them (or for names inside
// them) skips the lookups of the path's directories; the bound keeps a
// pass over a million files far below the process's descriptor limit.
//
// A descriptor is closed when it has left the set and its last Ref is
// gone, so a caller may use one it found while another thread evicts it.
//
// Thread safety: safe for concurrent use; no lock is held across a
// syscall (closing happens outside it).

#ifndef CACHEFS_NETFS_DESCRIPTOR_CACHE_H_
#define CACHEFS_NETFS_DESCRIPTOR_CACHE_H_

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace cachefs {

// One owned descriptor; closed on destruction.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }

 private:
  const int fd_;
};

class DescriptorCache {
 public:
  using Ref = std::shared_ptr<const OwnedFd>;

  // Keeps at most `capacity` descriptors (0: keeps none).
  explicit DescriptorCache(size_t capacity) : capacity_(capacity) {}
  ~DescriptorCache();

  // The descriptor kept for `path`, marked most recently used, or null.
  Ref Find(const std::string& path);
  // Takes ownership of `fd` for `path`, replacing any kept before, and
  // returns it (held by the caller even if the cache keeps nothing).
  Ref Insert(const std::string& path, int fd);
  // Lets go of `path` and of every path below it ("" means all).
  void Forget(const std::string& path);
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  using Lru = std::list<std::pair<std::string, Ref>>;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  absl::flat_hash_map<std::string, Lru::iterator> by_path_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_DESCRIPTOR_CACHE_H_
