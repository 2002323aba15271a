// The offline check of a cache directory (`cachefs-ctl check`): with no
// daemon running, every object's record is read and judged as a daemon
// would judge it, and what a daemon would never use again is reported
// and, on request, removed: objects whose record is unreadable or
// missing, dirty objects (their maps are never trusted after a stop
// without an unmount), objects whose backing file is larger than their
// record allows, map sidecars whose object is gone, and (with
// `verify_data`) objects holding a granule whose bytes no longer match its
// checksum, which takes reading every cached byte.
//
// Refuses to run while a daemon holds any of the directory's volumes.

#ifndef CACHEFS_COOKIE_CACHE_CHECK_H_
#define CACHEFS_COOKIE_CACHE_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "io/env.h"

namespace cachefs {

struct CacheCheckReport {
  struct Problem {
    std::string path;  // relative to the cache directory
    std::string kind;  // "corrupt", "dirty", "oversized", "checksum",
                       // "orphaned sidecar", "unreadable"
    std::string detail;
    bool removed = false;
  };
  uint64_t volumes = 0;
  uint64_t objects = 0;        // backing files seen
  uint64_t clean_objects = 0;  // usable as they are
  uint64_t bytes = 0;          // allocated by every backing file seen
  std::vector<Problem> problems;
};

absl::StatusOr<CacheCheckReport> CheckCacheDirectory(Env* env,
                                                     const std::string& dir,
                                                     bool repair,
                                                     bool verify_data);

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_CACHE_CHECK_H_
