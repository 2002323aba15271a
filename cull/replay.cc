#include "cull/replay.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cachefs {

absl::StatusOr<CacheStats> ReplayTrace(const Trace& trace, CullPolicy& policy) {
  const uint64_t capacity = policy.capacity();
  // The replay keeps its own account of what is resident, so that a policy
  // that loses or invents keys is caught rather than trusted.
  std::vector<uint8_t> resident(trace.num_keys, 0);
  std::vector<uint64_t> resident_bytes(trace.num_keys, 0);
  uint64_t used = 0;
  CacheStats stats;
  for (uint64_t i = 0; i < trace.accesses.size(); ++i) {
    const TraceAccess& a = trace.accesses[i];
    ++stats.requests;
    stats.request_bytes += a.bytes;
    if (resident[a.key]) {
      policy.Hit(a.key, a.bytes);
      used = used - resident_bytes[a.key] + a.bytes;
      resident_bytes[a.key] = a.bytes;
    } else {
      ++stats.misses;
      stats.miss_bytes += a.bytes;
      if (a.bytes > capacity) continue;  // would evict everything, for nothing
      policy.Insert(a.key, a.bytes);
      resident[a.key] = 1;
      resident_bytes[a.key] = a.bytes;
      used += a.bytes;
    }
    while (used > capacity) {
      std::optional<CullKey> victim = policy.Evict();
      if (!victim.has_value() || *victim >= trace.num_keys ||
          !resident[*victim]) {
        return absl::InternalError(absl::StrCat(
            "policy ", std::string(policy.name()), " at access ", i, ": ",
            victim.has_value() ? absl::StrCat("evicted key ", *victim,
                                              ", which is not resident")
                               : "evicted nothing while over capacity"));
      }
      resident[*victim] = 0;
      used -= resident_bytes[*victim];
    }
  }
  return stats;
}

}  // namespace cachefs
