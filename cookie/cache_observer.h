// CacheObserver: what the cache's space manager (the daemon's culler)
// learns from the cache layer, and the one question it answers: may this
// much more be stored now?
//
// Calls come from any thread, some with cache locks held (a volume's, a
// backing object's); an observer must never call back into the cache from
// them, nor block on anything a cache lock holder could wait for.

#ifndef CACHEFS_COOKIE_CACHE_OBSERVER_H_
#define CACHEFS_COOKIE_CACHE_OBSERVER_H_

#include <cstdint>
#include <string>

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
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_CACHE_OBSERVER_H_
