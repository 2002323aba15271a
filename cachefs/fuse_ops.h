// The libfuse low-level operations of cachefs: each turns one request into a
// CacheFs call and its result into a reply (errno at this edge only).

#ifndef CACHEFS_CACHEFS_FUSE_OPS_H_
#define CACHEFS_CACHEFS_FUSE_OPS_H_

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>

#include "cachefs/cache_fs.h"

namespace cachefs {

// The session's userdata. `fs` is set before the session loop starts.
struct FuseContext {
  CacheFs* fs = nullptr;
  fuse_session* session = nullptr;
  // Told of every open and read with the caller's pid; may be null.
  HotSets* hotsets = nullptr;
};

const fuse_lowlevel_ops& CacheFsOperations();

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_FUSE_OPS_H_
