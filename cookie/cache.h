// Cache: one cache directory in service: its volumes, the I/O engine, the
// dispatcher and the counters.
//
// On-disk layout:
//   DIR/CACHEDIR.TAG           marks the directory for backup tools
//   DIR/cachefs.layout         "cachefs cache layout 1"
//   DIR/volumes/<vol>/         one per volume; xattr user.cachefs.volume
//   DIR/volumes/<vol>/<ff>/<hash16>[.map]   backing objects
//   DIR/graveyard/             discarded volumes, deleted in the background
//
// Withdrawal (taking the cache out of service) and cookie relinquishment
// share one reader/writer lock, as in the fscache rewrite: relinquish and
// instantiation hold it shared, withdrawal exclusively, so the two never
// race over an object.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_COOKIE_CACHE_H_
#define CACHEFS_COOKIE_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "contentmap/content_map.h"
#include "cookie/cache_observer.h"
#include "cookie/tracer.h"
#include "cookie/dispatcher.h"
#include "cookie/object_key.h"
#include "cookie/stats.h"
#include "cookie/volume.h"
#include "io/env.h"
#include "io/io_engine.h"

namespace cachefs {

struct CacheOptions {
  // The cache directory; created (mode 0700) if missing.
  std::string directory;
  // Dispatcher pool threads.
  int dispatcher_threads = 4;
  // I/O engine queue depth.
  unsigned io_queue_depth = 128;
  // On a filesystem that refuses O_DIRECT (tmpfs), use buffered I/O with a
  // warning instead of failing.
  bool allow_buffered_io = true;
  uint32_t granule_shift = kDefaultGranuleShift;
  // Checks every granule read from the cache against its CRC-32C.
  bool verify = true;
  // Names objects; tests inject collisions. Default: HashObjectKey.
  KeyHasher key_hasher;
};

class Cache {
 public:
  // Opens or creates the cache directory. Fails with a message naming the
  // directory if it cannot be created or written, has no user xattrs, or
  // refuses O_DIRECT while allow_buffered_io is false.
  static absl::StatusOr<std::unique_ptr<Cache>> Open(Env* env,
                                                     CacheOptions options);
  // REQUIRES: every volume relinquished.
  ~Cache();

  // Acquires the volume for `key` (printable, non-empty). A stored volume
  // whose coherency data differs is discarded and made anew.
  absl::StatusOr<std::shared_ptr<Volume>> AcquireVolume(
      std::string_view key, std::string_view coherency);
  // Drops the volume: every cookie in it must have been relinquished.
  void RelinquishVolume(std::shared_ptr<Volume> volume);

  // What the cache directory holds: backing objects and their allocated
  // bytes (blocks, not apparent size). Walks the directory.
  struct Usage {
    uint64_t objects = 0;
    uint64_t bytes = 0;
  };
  Usage ScanUsage() const;
  // The same, from an earlier walk while that is recent: a walk costs a
  // stat per object (seconds on a million), and `stats` may be asked for
  // every second (cachefs-ctl top). A walk is reused for 20 times as long
  // as it took, so walking takes at most about 5 % of one thread however
  // often it is asked, and a small cache is walked afresh each time.
  Usage RecentUsage();
  // The next RecentUsage walks: an operator's cull or eviction is seen at
  // once.
  void ForgetUsage();

  // Takes the cache out of service: every object is written back and
  // closed; cookies go on without one and new ones get none.
  void Withdraw();
  bool withdrawn() const;
  // Withdraws the cache if its directory has been removed or its
  // filesystem turned read-only (every write would fail, one object at a
  // time), and says so in the log, once. Returns why, or "" if the
  // directory is usable. Takes the service lock: never call it with a
  // cache lock held.
  std::string WithdrawIfDirectoryUnusable();

  // The observers told about every change of stored data and asked
  // before each cache write (the culler), and the vetoes the culler asks
  // before it takes an object (the prefetch layer's pins). Added before
  // any volume is acquired; not owned; removed before they go.
  void AddObserver(CacheObserver* observer) { observers_.Add(observer); }
  void RemoveObserver(CacheObserver* observer) { observers_.Remove(observer); }
  void AddCullVeto(CullVeto* veto) { observers_.AddVeto(veto); }
  void RemoveCullVeto(CullVeto* veto) { observers_.RemoveVeto(veto); }
  bool MayCull(const std::string& volume_key, uint64_t hash) {
    return observers_.MayCull(volume_key, hash);
  }
  // All of them as one.
  CacheObserver* observer() { return &observers_; }

  Env* env() const { return env_; }
  IoEngine* engine() const { return engine_.get(); }
  Dispatcher* dispatcher() { return &dispatcher_; }
  CacheStats& stats() { return stats_; }
  // The event trace of `cachefs-ctl trace`, off while nobody listens.
  Tracer& tracer() { return tracer_; }
  const CacheOptions& options() const { return options_; }
  bool direct_io() const { return direct_io_; }
  // Startup warnings for the daemon to print (e.g. buffered fallback).
  const std::vector<std::string>& warnings() const { return warnings_; }
  uint64_t HashKey(std::string_view volume_key,
                   std::string_view file_key) const;

  // The lock shared by withdrawal, instantiation and relinquishment.
  absl::Mutex& service_lock() ABSL_LOCK_RETURNED(service_mu_) {
    return service_mu_;
  }
  // Removes `name` in the cache directory's graveyard in the background.
  void Bury(int parent_fd, const std::string& name);

 private:
  Cache(Env* env, CacheOptions options, int dir_fd, bool direct_io,
        std::unique_ptr<IoEngine> engine);
  absl::StatusOr<int> OpenVolumeDir(std::string_view key,
                                    std::string_view coherency);
  // Locks the volume directory open at `fd` for this process, or says
  // that another daemon has it.
  absl::Status LockVolume(int fd, std::string_view key);

  // Constant after construction.
  Env* const env_;
  const CacheOptions options_;
  const int dir_fd_;
  const bool direct_io_;
  std::vector<std::string> warnings_;
  CacheStats stats_;
  Tracer tracer_;
  std::unique_ptr<IoEngine> engine_;
  CacheObservers observers_;

  absl::Mutex service_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  // RecentUsage's last walk; one walk at a time.
  absl::Mutex usage_mu_;
  Usage usage_ ABSL_GUARDED_BY(usage_mu_);
  // 0: walk at the next call.
  int64_t usage_valid_until_ns_ ABSL_GUARDED_BY(usage_mu_) = 0;
  bool withdrawn_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::weak_ptr<Volume>> volumes_ ABSL_GUARDED_BY(mu_);
  // Last: its destructor runs pending jobs, which use the members above.
  Dispatcher dispatcher_;
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_CACHE_H_
