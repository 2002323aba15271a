// CacheObserver: what the cache's observers (the daemon's culler, the
// prefetch layer) learn from the cache layer, and the one question the
// space manager answers: may this much more be stored now?
//
// Calls come from any thread, some with cache locks held (a volume's, a
// backing object's); an observer must never call back into the cache from
// them, nor block on anything a cache lock holder could wait for.

#ifndef CACHEFS_COOKIE_CACHE_OBSERVER_H_
#define CACHEFS_COOKIE_CACHE_OBSERVER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace cachefs {

class CacheObserver {
 public:
  virtual ~CacheObserver() = default;

  // Whether `bytes` more cached data may be written now. False when that
  // would pass a hard stop: the data is then simply not cached.
  virtual bool AdmitWrite(uint64_t bytes) = 0;
  // An admitted write of `bytes` has landed or failed: until then the
  // filesystem's free space does not show it, and the observer counts it.
  virtual void WriteSettled(uint64_t /*bytes*/) {}
  // The same question asked ahead of time, with no effect (a refused
  // AdmitWrite makes culling free room for the write; this does not).
  virtual bool HasRoom(uint64_t /*bytes*/) const { return true; }
  // Object `hash` of volume `volume_key` holds `delta` bytes more (or
  // fewer) cached data.
  virtual void Charge(const std::string& volume_key, uint64_t hash,
                      int64_t delta) = 0;
  // The object was opened for a reader or writer: an access.
  virtual void Used(const std::string& volume_key, uint64_t hash) = 0;
  // The object's file is gone (deleted, replaced by a fresh one, moved to
  // another name): whatever was counted for it is freed.
  virtual void Removed(const std::string& volume_key, uint64_t hash) = 0;
  // The object let go of the pages a pin held in memory for it, before a
  // change of its data (BackingObject::SetMemory).
  virtual void MemoryDropped(const std::string& /*volume_key*/,
                             uint64_t /*hash*/) {}
};

// Whether the culler may take an object, or granules of one: asked by the
// culler, answered by whoever keeps objects on purpose (the prefetch
// layer's pins). Asked with the culler's lock held: answer from memory,
// never calling into the cache or the culler.
class CullVeto {
 public:
  virtual ~CullVeto() = default;
  // False keeps object `hash` of volume `volume_key` whole in the cache.
  virtual bool MayCull(const std::string& volume_key, uint64_t hash) = 0;
};

// The observers of one cache as one observer: each event goes to every
// one of them, and a write is admitted when all of them admit it. Vetoes
// are kept beside them, under a lock of their own (a veto is asked with
// the culler's lock held, and the culler is told events under the
// observers' lock).
//
// Thread safety: all methods may be called concurrently; Add and Remove
// wait for calls in progress, so a removed observer is called no more.
class CacheObservers final : public CacheObserver {
 public:
  void Add(CacheObserver* observer);
  void Remove(CacheObserver* observer);
  void AddVeto(CullVeto* veto);
  void RemoveVeto(CullVeto* veto);
  // False if any veto keeps the object.
  bool MayCull(const std::string& volume_key, uint64_t hash);

  bool AdmitWrite(uint64_t bytes) override;
  void WriteSettled(uint64_t bytes) override;
  bool HasRoom(uint64_t bytes) const override;
  void Charge(const std::string& volume_key, uint64_t hash,
              int64_t delta) override;
  void Used(const std::string& volume_key, uint64_t hash) override;
  void Removed(const std::string& volume_key, uint64_t hash) override;
  void MemoryDropped(const std::string& volume_key, uint64_t hash) override;

 private:
  mutable absl::Mutex mu_;
  std::vector<CacheObserver*> observers_ ABSL_GUARDED_BY(mu_);
  absl::Mutex veto_mu_;
  std::vector<CullVeto*> vetoes_ ABSL_GUARDED_BY(veto_mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_CACHE_OBSERVER_H_
