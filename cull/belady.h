// ReplayBelady: Belady's MIN, the bound no cull policy can beat: knowing
// the whole trace, on each eviction it removes the resident object whose
// next use is farthest in the future (never, first). An object used again
// only after everything else may thus be evicted as soon as it arrives,
// which amounts to not caching it.
//
// With equal sizes this is exactly optimal. With objects of different
// sizes (text and webcachesim traces) the optimum is NP-hard to compute
// and this is the usual heuristic bound: it is what the literature reports
// as "Belady" for such traces, but a policy could in principle beat it,
// e.g. by keeping many small objects in place of one large one.

#ifndef CACHEFS_CULL_BELADY_H_
#define CACHEFS_CULL_BELADY_H_

#include <cstdint>

#include "cull/cache_stats.h"
#include "cull/trace.h"

namespace cachefs {

CacheStats ReplayBelady(const Trace& trace, uint64_t capacity_bytes);

}  // namespace cachefs

#endif  // CACHEFS_CULL_BELADY_H_
