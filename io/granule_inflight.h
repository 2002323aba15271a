// GranuleInFlight: which granules of one backing object are being written
// to the cache right now: the user-space form of the PG_fscache page bit.
//
// A granule is marked before its cache write is issued and cleared when the
// write completes (successfully or not). A reader that finds a granule in
// flight waits for it; truncation and invalidation wait for every granule in
// their range, so no write lands in a region that was just cut away.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_IO_GRANULE_INFLIGHT_H_
#define CACHEFS_IO_GRANULE_INFLIGHT_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/synchronization/mutex.h"

namespace cachefs {

class GranuleInFlight {
 public:
  // Marks granules [first, first + count) in flight, unless one of them
  // already is; returns whether it marked them.
  bool TryBegin(uint64_t first, uint64_t count);
  // Clears granules marked by a successful TryBegin and wakes waiters.
  void End(uint64_t first, uint64_t count);
  // Returns once no granule in [first, first + count) is in flight.
  void WaitRange(uint64_t first, uint64_t count);
  // Returns once no granule at all is in flight.
  void WaitAll();
  bool AnyInRange(uint64_t first, uint64_t count) const;
  uint64_t size() const;

 private:
  mutable absl::Mutex mu_;
  absl::btree_set<uint64_t> granules_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_IO_GRANULE_INFLIGHT_H_
