#include "io/granule_inflight.h"

namespace cachefs {
namespace {

// Whether `set` holds any granule in [first, first + count).
bool Overlaps(const absl::btree_set<uint64_t>& set, uint64_t first,
              uint64_t count) {
  if (count == 0) return false;
  auto it = set.lower_bound(first);
  return it != set.end() && *it - first < count;
}

}  // namespace

bool GranuleInFlight::TryBegin(uint64_t first, uint64_t count) {
  absl::MutexLock lock(&mu_);
  if (Overlaps(granules_, first, count)) return false;
  for (uint64_t i = 0; i < count; ++i) granules_.insert(first + i);
  return true;
}

void GranuleInFlight::End(uint64_t first, uint64_t count) {
  // absl::Mutex re-evaluates the waiters' conditions on unlock, so erasing
  // under the lock is all it takes to wake them.
  absl::MutexLock lock(&mu_);
  for (uint64_t i = 0; i < count; ++i) granules_.erase(first + i);
}

void GranuleInFlight::WaitRange(uint64_t first, uint64_t count) {
  struct Args {
    const absl::btree_set<uint64_t>* set;
    uint64_t first;
    uint64_t count;
  };
  absl::MutexLock lock(&mu_);
  Args args{&granules_, first, count};
  mu_.Await(absl::Condition(
      +[](Args* a) { return !Overlaps(*a->set, a->first, a->count); },
      &args));
}

void GranuleInFlight::WaitAll() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](absl::btree_set<uint64_t>* s) { return s->empty(); }, &granules_));
}

bool GranuleInFlight::AnyInRange(uint64_t first, uint64_t count) const {
  absl::MutexLock lock(&mu_);
  return Overlaps(granules_, first, count);
}

uint64_t GranuleInFlight::size() const {
  absl::MutexLock lock(&mu_);
  return granules_.size();
}

}  // namespace cachefs
