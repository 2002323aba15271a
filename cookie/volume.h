// Volume: one origin's share of a cache (one per mounted origin), keyed by a
// printable volume key and carrying volume coherency data. A volume whose
// stored coherency data differs from what the netfs passes at acquire is
// discarded whole.
//
// A volume keeps the table of active cookies: acquiring a key that is in
// use returns the same cookie; acquiring one that is being torn down waits
// for the teardown. Instantiation and teardown run on the dispatcher.
//
// Owned by the Cache. Thread safety: safe for concurrent use.

#ifndef CACHEFS_COOKIE_VOLUME_H_
#define CACHEFS_COOKIE_VOLUME_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cookie/cookie.h"
#include "io/locked_mapping.h"

namespace cachefs {

class Cache;

class Volume {
 public:
  // Use Cache::AcquireVolume. Takes ownership of `dir_fd`.
  Volume(Cache* cache, std::string key, int dir_fd);
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  const std::string& key() const { return key_; }
  Cache* cache() const { return cache_; }

  // Acquires the cookie for `file_key`. Everything the cache needs is
  // passed in: the coherency data and the object size. If the key's object
  // on disk is stale, it is discarded during instantiation; if the key has
  // an active cookie with other aux data or size, that cookie is
  // invalidated.
  // With `evict_active`, an active cookie for the key belongs to a file
  // that has lost the name: it moves to a private key, and its object goes
  // with its last relinquish.
  std::shared_ptr<Cookie> AcquireCookie(const std::string& file_key,
                                        const std::string& aux,
                                        uint64_t object_size,
                                        bool evict_active = false);
  // Drops one use of `cookie`. The last use tears it down: the map, aux
  // data and size are written back and the file closed; with `retire`
  // (the origin file is gone) the object is deleted instead.
  void RelinquishCookie(std::shared_ptr<Cookie> cookie, bool retire);

  // The same, but only if no cookie for the key is active: null if one is.
  std::shared_ptr<Cookie> AcquireIdleCookie(const std::string& file_key,
                                            const std::string& aux,
                                            uint64_t object_size);
  // The origin file behind `cookie` was renamed to `new_key`: the cookie
  // and its object move to the new key (the object's data stays cached).
  // Fails, changing nothing, if another active cookie holds `new_key`.
  // With `retire`, the object is deleted at the last relinquish.
  absl::Status RekeyCookie(const std::shared_ptr<Cookie>& cookie,
                           const std::string& new_key, bool retire = false);
  // The origin file `file_key` is gone: deletes its object, unless a
  // cookie for the key is active (its relinquish decides).
  void DiscardObject(const std::string& file_key);
  // Whether a backing file exists under `file_key`'s name (it may still be
  // stale or another key's): a cheap local check before costlier work.
  bool HasObject(const std::string& file_key);

  // The volume's backing objects on disk, for the culler's index.
  struct StoredObject {
    uint64_t hash = 0;
    uint64_t bytes = 0;     // allocated (st_blocks), not apparent size
    int64_t last_used = 0;  // seconds since the epoch: atime or mtime
  };
  std::vector<StoredObject> ScanObjects();
  // One object as `cachefs-ctl ls` shows it: from its record, but with the
  // live map (granules and size) while a cookie uses it.
  struct ObjectInfo {
    std::string file_key;
    uint64_t bytes = 0;
    uint64_t object_size = 0;
    uint64_t granules = 0;
    uint64_t granules_present = 0;
    bool clean = false;  // the record's state
    bool in_use = false;  // a cookie has it: the map is its live one
    std::string aux;      // the coherency data the object was made for
    uint32_t granule_shift = 0;
    std::vector<bool> present;  // by granule
    std::string backing;  // the backing file, relative to the cache dir
  };
  absl::StatusOr<ObjectInfo> DescribeObject(uint64_t hash);
  // The object of `file_key`; NotFound if none is stored.
  absl::StatusOr<ObjectInfo> DescribeObjectOf(const std::string& file_key);
  // Deletes object `hash` unless a cookie uses it (or is being set up or
  // torn down with it); returns whether it is gone. Under the volume lock,
  // so no cookie can pick it up halfway.
  // With `only_unclean`, only if its record on disk still says it was
  // never closed cleanly (checked under the volume lock, so a cookie that
  // has just written a clean record keeps its object).
  bool CullObject(uint64_t hash, bool only_unclean = false);
  // The objects cookies use now.
  absl::flat_hash_set<uint64_t> ActiveHashes() const;

  size_t active_cookies() const;
  // The active cookies (used by cache withdrawal).
  std::vector<std::shared_ptr<Cookie>> Cookies() const;
  // Unlinks the object's file and sidecar, if its name is still its own.
  void UnlinkIfCurrent(const BackingObject& object);

  // Pages of object `hash`'s file held in RAM (the prefetch layer's
  // memory pins): handed to the object now if a cookie has it, and at
  // every instantiation while set (BackingObject::SetMemory).
  void SetMemoryPin(uint64_t hash, std::shared_ptr<const LockedMapping> memory);
  void DropMemoryPin(uint64_t hash);
  // The pin of object `hash`, unless none or stale.
  std::shared_ptr<const LockedMapping> MemoryPinOf(uint64_t hash) const;

  // The modification times of the 256 fan-out directories (0 for one not
  // made yet), in nanoseconds: any object made, moved or removed since
  // changes one of them.
  std::vector<int64_t> FanDirTimes();

  // Small files of the volume's own beside its objects (snapshots a mount
  // leaves for the next one). `name` is a plain name, not two hex digits.
  // Reads the whole file (kNotFound if there is none).
  absl::StatusOr<std::string> ReadFile(const std::string& name,
                                       size_t max_size);
  // Replaces the file whole: written under a temporary name, then renamed.
  absl::Status WriteFile(const std::string& name, std::string_view data);
  absl::Status RemoveFile(const std::string& name);

  // Makes an empty object for `cookie`'s key under `size` and `aux`: an
  // O_TMPFILE with a clean record, linked over whatever had the name.
  absl::StatusOr<std::shared_ptr<BackingObject>> CreateObject(
      const std::string& file_key, const std::string& aux, uint64_t size);

 private:
  struct Entry {
    std::shared_ptr<Cookie> cookie;
    int users = 0;
    bool tearing_down = false;
    bool retire = false;
    uint64_t hash = 0;
  };

  void Instantiate(const std::shared_ptr<Cookie>& cookie, uint64_t hash);
  absl::StatusOr<std::shared_ptr<BackingObject>> LookUpObject(
      const std::string& file_key, const std::string& aux, uint64_t size,
      uint64_t hash);
  void TearDown(std::shared_ptr<Cookie> cookie, bool retire);
  // The fan-out directory for `hash`, made and opened on first use and
  // kept open (borrowed by the objects in it).
  absl::StatusOr<int> FanDir(uint64_t hash);
  absl::Status LinkIntoPlace(int fan_fd, int fd, const std::string& name);

  Cache* const cache_;
  const std::string key_;
  const int dir_fd_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> cookies_ ABSL_GUARDED_BY(mu_);
  absl::CondVar torn_down_;
  // Object names in use, so two keys that hash alike never share a file.
  absl::flat_hash_map<uint64_t, std::string> names_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> evictions_{0};

  mutable absl::Mutex memory_mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<const LockedMapping>>
      memory_pins_ ABSL_GUARDED_BY(memory_mu_);

  absl::Mutex fan_mu_;
  std::array<int, 256> fan_fds_ ABSL_GUARDED_BY(fan_mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_VOLUME_H_
