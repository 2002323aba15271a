// CullPolicy: decides which cached object the culler removes next when the
// cache is over its size limit. The same objects are used by the daemon and
// by cachefs-cullsim, so what the simulator measures is what the daemon does.
//
// The owner (the daemon's culler, or the simulator) keeps the cache within
// its capacity: after an Insert or a Hit that grew an object it calls Evict
// until bytes() <= capacity(). The policy only orders the objects; it never
// removes anything by itself except in Evict, and it keeps whatever history
// it needs (ghost entries of evicted keys) within a bound proportional to
// its capacity.
//
// Thread safety: none. A multi-threaded owner serializes every call with
// one mutex of its own; no call blocks or calls back into the owner except
// Evict's `evictable` predicate, which must not call the policy.

#ifndef CACHEFS_CULL_CULL_POLICY_H_
#define CACHEFS_CULL_CULL_POLICY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cachefs {

// What the owner caches under one key: a whole object (a file's cache
// object) or one granule of one, as the owner chooses. Keys are opaque.
using CullKey = uint64_t;

class CullPolicy {
 public:
  virtual ~CullPolicy() = default;

  // The name MakeCullPolicy knows this policy by.
  virtual std::string_view name() const = 0;

  // `key` was just stored, `bytes` long; it must not be resident already.
  // A key the policy evicted recently may carry history (a ghost entry)
  // that decides where it goes now.
  virtual void Insert(CullKey key, uint64_t bytes) = 0;

  // `key`, resident, was used again; its size is now `bytes` (objects grow
  // as granules are fetched, and shrink on truncation).
  virtual void Hit(CullKey key, uint64_t bytes) = 0;

  // `key` left the cache for a reason other than culling (deleted,
  // invalidated by a change on the origin). No-op if it is not resident.
  // Its history, if any, is dropped too: a deleted object's past says
  // nothing about whatever takes its key next.
  virtual void Erase(CullKey key) = 0;

  // Chooses the next victim and removes it from the policy. Keys for which
  // `evictable` returns false (open, I/O in flight) are passed over and
  // stay resident, in whatever position the policy gives a skipped key.
  // Returns nullopt when nothing resident is evictable.
  virtual std::optional<CullKey> Evict(
      const std::function<bool(CullKey)>& evictable) = 0;
  // Evict with every key evictable.
  std::optional<CullKey> Evict() {
    return Evict([](CullKey) { return true; });
  }

  // Room for `keys` resident keys, made at once: a daemon indexing a
  // million objects at start grows nothing twice.
  virtual void Reserve(size_t /*keys*/) {}

  // Whether `key` is resident (inserted and not yet evicted or erased).
  virtual bool Contains(CullKey key) const = 0;
  // Resident keys and the sum of their sizes.
  virtual uint64_t size() const = 0;
  virtual uint64_t bytes() const = 0;

  // The cache size the policy sizes its internal queues and history for.
  // SetCapacity lets the owner follow a limit that changes (a new
  // cache_size, the disk filling up); it evicts nothing by itself.
  uint64_t capacity() const { return capacity_; }
  virtual void SetCapacity(uint64_t capacity_bytes) {
    capacity_ = capacity_bytes;
  }

 protected:
  explicit CullPolicy(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

 private:
  uint64_t capacity_;
};

// The policy the daemon uses when -o cull_policy is not given. Chosen by
// the replays of the real traces in tests/cull/traces (bench/README.md,
// "Cull policies").
inline constexpr std::string_view kDefaultCullPolicy = "arc";

// Every policy name MakeCullPolicy accepts, in a stable order.
std::vector<std::string> CullPolicyNames();

// A new policy `name` for a cache of `capacity_bytes`. An unknown name is
// InvalidArgument naming the valid ones.
absl::StatusOr<std::unique_ptr<CullPolicy>> MakeCullPolicy(
    std::string_view name, uint64_t capacity_bytes);

}  // namespace cachefs

#endif  // CACHEFS_CULL_CULL_POLICY_H_
