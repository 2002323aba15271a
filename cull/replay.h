// ReplayTrace: runs a trace through a CullPolicy the way the daemon drives
// it: a hit calls Hit, a miss stores the object (Insert) unless it alone
// is larger than the cache, and whenever the cache holds more than its
// capacity the policy's Evict chooses what goes.

#ifndef CACHEFS_CULL_REPLAY_H_
#define CACHEFS_CULL_REPLAY_H_

#include "absl/status/statusor.h"
#include "cull/cache_stats.h"
#include "cull/cull_policy.h"
#include "cull/trace.h"

namespace cachefs {

// `policy` must be fresh; its capacity() is the cache size. An error means
// the policy broke its contract (evicted a key that was not resident, or
// nothing while over capacity).
absl::StatusOr<CacheStats> ReplayTrace(const Trace& trace, CullPolicy& policy);

}  // namespace cachefs

#endif  // CACHEFS_CULL_REPLAY_H_
