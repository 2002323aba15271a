// Trace: a cache access trace as the replays consume it, one access per
// element, with keys renumbered densely (0 .. num_keys - 1) so the replay
// and the MIN bound can keep per-key state in plain arrays.

#ifndef CACHEFS_CULL_TRACE_H_
#define CACHEFS_CULL_TRACE_H_

#include <cstdint>
#include <vector>

namespace cachefs {

struct TraceAccess {
  uint32_t key = 0;
  // The object's size at this access; the same key may change size
  // (text format), as cached files do.
  uint64_t bytes = 0;
};

struct Trace {
  std::vector<TraceAccess> accesses;
  uint32_t num_keys = 0;
  // Sum over keys of each key's largest size: what a cache holding
  // everything would need. Percentage capacities are of this.
  uint64_t footprint_bytes = 0;
  // Lines that held a request (a block request may be several accesses).
  uint64_t source_requests = 0;
};

}  // namespace cachefs

#endif  // CACHEFS_CULL_TRACE_H_
