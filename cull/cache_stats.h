// CacheStats: what one replay of a trace against one cache measured.

#ifndef CACHEFS_CULL_CACHE_STATS_H_
#define CACHEFS_CULL_CACHE_STATS_H_

#include <cstdint>

namespace cachefs {

struct CacheStats {
  uint64_t requests = 0;  // accesses replayed
  uint64_t misses = 0;
  uint64_t request_bytes = 0;
  uint64_t miss_bytes = 0;

  double miss_ratio() const {
    return requests == 0 ? 0.0 : static_cast<double>(misses) / requests;
  }
  double byte_miss_ratio() const {
    return request_bytes == 0 ? 0.0
                              : static_cast<double>(miss_bytes) / request_bytes;
  }
};

}  // namespace cachefs

#endif  // CACHEFS_CULL_CACHE_STATS_H_
