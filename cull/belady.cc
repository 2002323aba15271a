#include "cull/belady.h"

#include <queue>
#include <vector>

namespace cachefs {

CacheStats ReplayBelady(const Trace& trace, uint64_t capacity_bytes) {
  const uint64_t n = trace.accesses.size();
  // next_use[i]: the index of the next access to the key of access i, or
  // n (never).
  std::vector<uint64_t> next_use(n);
  {
    std::vector<uint64_t> upcoming(trace.num_keys, n);
    for (uint64_t i = n; i-- > 0;) {
      next_use[i] = upcoming[trace.accesses[i].key];
      upcoming[trace.accesses[i].key] = i;
    }
  }
  // A max-heap of (next use, key) for resident keys. A key's entry goes
  // stale when it is used again (a new entry is pushed) or evicted;
  // stale entries are skipped when they surface, so each access costs
  // O(log n) amortized.
  struct Entry {
    uint64_t next;
    uint32_t key;
    bool operator<(const Entry& o) const { return next < o.next; }
  };
  std::priority_queue<Entry> heap;
  std::vector<uint8_t> resident(trace.num_keys, 0);
  std::vector<uint64_t> resident_bytes(trace.num_keys, 0);
  std::vector<uint64_t> current_next(trace.num_keys, 0);
  uint64_t used = 0;
  CacheStats stats;
  for (uint64_t i = 0; i < n; ++i) {
    const TraceAccess& a = trace.accesses[i];
    ++stats.requests;
    stats.request_bytes += a.bytes;
    if (resident[a.key]) {
      used = used - resident_bytes[a.key] + a.bytes;
    } else {
      ++stats.misses;
      stats.miss_bytes += a.bytes;
      if (a.bytes > capacity_bytes) continue;
      resident[a.key] = 1;
      used += a.bytes;
    }
    resident_bytes[a.key] = a.bytes;
    current_next[a.key] = next_use[i];
    heap.push({next_use[i], a.key});
    while (used > capacity_bytes) {
      const Entry top = heap.top();
      heap.pop();
      if (!resident[top.key] || current_next[top.key] != top.next) continue;
      resident[top.key] = 0;
      used -= resident_bytes[top.key];
    }
  }
  return stats;
}

}  // namespace cachefs
