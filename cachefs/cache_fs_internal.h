// The handles CacheFs gives the kernel, shared by its source files.
// Internal to cachefs/cache_fs*.cc.

#ifndef CACHEFS_CACHEFS_CACHE_FS_INTERNAL_H_
#define CACHEFS_CACHEFS_CACHE_FS_INTERNAL_H_

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cachefs/cache_fs.h"

namespace cachefs {

// One open(2) of a regular file.
struct CacheFs::OpenFile {
  Inode* inode = nullptr;
  std::unique_ptr<NetfsFile::Handle> data;
};

// One opendir(3).
struct CacheFs::OpenDirectory {
  absl::Mutex mu;
  // Shared with a read of it given up on (HangGuard), which may outlive
  // the handle.
  std::shared_ptr<OriginDir> dir ABSL_GUARDED_BY(mu);
  // Read from a remembered listing (offline), not from the origin.
  bool from_listing ABSL_GUARDED_BY(mu) = false;
};

// Seconds as CLOCK_MONOTONIC nanoseconds.
inline int64_t ToNanos(double seconds) {
  return static_cast<int64_t>(seconds * 1e9);
}

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CACHE_FS_INTERNAL_H_
