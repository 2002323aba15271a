// Culler: keeps one cache directory within its limits, inside the daemon
// (a thread, not a separate cachefilesd).
//
// Limits, in the style of cachefilesd:
//   - cache_size: the data stored, counted as allocated blocks. Writes
//     stop at the limit; culling starts (bcull - bstop)% of it below the
//     limit and goes on until (brun - bstop)% below it, less a margin.
//   - brun/bcull/bstop: free space of the cache's filesystem in percent;
//     culling starts when it falls below bcull and goes on until it is
//     above brun (plus a margin); below bstop nothing more is cached.
//   - frun/fcull/fstop: the same for free files (inodes).
// "Writes stop" means AdmitWrite says no: the granule is simply not
// cached, and the read that fetched it still succeeds (counted nospace).
// The free-space floor is checked before every write from the last
// statvfs less what was admitted since, not only on the thread's period:
// at disk speed a period is enough to fill a small filesystem.
//
// The index: the objects of the culler's volume, scanned from the cache
// directory at start (oldest use first into the policy), then kept
// current from the cache's reports (CacheObserver). Several mounts may
// share one cache directory, each with its own volume and culler: each
// publishes its volume's byte count and its cache_size in the volume
// directory ("usage", rewritten at most five times a second when either
// changed) and counts the others' bytes toward the limit (a volume nobody
// published for is scanned once at start). The directory has one limit:
// the smallest cache_size of the mounts using it (a mount gives its limit
// up at unmount; after a crash it stands until that volume mounts again).
// Each culler culls its own volume only, its share of the excess in
// proportion to the bytes it holds, so mounts with different limits meet
// at one total, and a mount that holds nothing makes no passes.
// What goes, in one pass that must bring the stored bytes down to a target:
//   1. An open object (one with a cookie) holding more than
//      open_file_share% of the target gives up its least recently used
//      granules, down to that share, largest object first. An open object
//      cannot be culled whole, and without this one large file read
//      through would push out every other object.
//   2. Whole objects, the policy's victims, passed over while a cookie has
//      them (open, or I/O in flight), deleted under the volume lock so no
//      cookie can pick them up halfway (Volume::CullObject).
//   3. If the target is still not reached (only open objects are left, or
//      closed ones were taken up while being culled), open objects give up
//      cold granules again, largest first, now down to the target itself:
//      `cachefs-ctl cull --to 0` empties open files too.
//
// Thread safety: safe for concurrent use. Lock order: volume locks, then
// mu_; the culler never calls into the volume while holding mu_.

#ifndef CACHEFS_CULL_CULLER_H_
#define CACHEFS_CULL_CULLER_H_

#include <sys/statvfs.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cookie/cache.h"
#include "cookie/cache_observer.h"
#include "cookie/volume.h"
#include "cull/cull_policy.h"

namespace cachefs {

struct CullLimits {
  uint64_t cache_size = 0;  // bytes; 0: only the filesystem's limits
  int brun = 10, bcull = 7, bstop = 3;
  int frun = 10, fcull = 7, fstop = 3;
  // How much of the target one open object may keep before culling takes
  // its cold granules ahead of other objects (percent).
  int open_file_share = 50;
  // Fails naming the offending option unless 0 <= stop < cull < run < 100
  // for both triples and 0 < open_file_share <= 100.
  absl::Status Validate() const;
};

// Parses "123", "64K", "10M", "2G", "1T" (powers of 1024).
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

class Culler : public CacheObserver {
 public:
  // Builds the index of `volume`'s objects and starts the culling thread.
  // Call before the cache is used; the culler registers itself as the
  // cache's observer and unregisters when destroyed.
  static absl::StatusOr<std::unique_ptr<Culler>> Start(
      Cache* cache, std::shared_ptr<Volume> volume, CullLimits limits,
      std::string_view policy);
  ~Culler() override;

  // CacheObserver.
  bool AdmitWrite(uint64_t bytes) override;
  bool HasRoom(uint64_t bytes) const override;
  void Charge(const std::string& volume_key, uint64_t hash,
              int64_t delta) override;
  void Used(const std::string& volume_key, uint64_t hash) override;
  void Removed(const std::string& volume_key, uint64_t hash) override;
  void WriteSettled(uint64_t bytes) override;

  struct CullResult {
    uint64_t objects = 0;   // whole objects culled
    uint64_t granules = 0;  // cold granules culled from open objects
    uint64_t bytes = 0;     // both together
  };
  // Culls now until the stored bytes are at most `target` (or nothing
  // left can go).
  CullResult CullTo(uint64_t target);

  // Bytes stored in the cache directory as the culler counts them.
  uint64_t stored_bytes() const;
  size_t indexed_objects() const;
  const CullLimits& limits() const { return limits_; }
  // The directory's cache_size (see the top); 0: none.
  uint64_t cache_limit() const {
    return directory_limit_.load(std::memory_order_relaxed);
  }
  std::string policy_name() const;
  // How long the startup scan (or snapshot load) took, and which it was.
  int64_t scan_nanos() const { return scan_nanos_; }
  bool loaded_from_snapshot() const { return loaded_from_snapshot_; }

  // One indexed object, for `cachefs-ctl ls`.
  struct Entry {
    uint64_t hash = 0;
    uint64_t bytes = 0;
    int64_t last_used = 0;  // seconds since the epoch
  };
  std::vector<Entry> Entries() const;

 private:
  // 16 bytes a cached object, with the policy's own entry the daemon's
  // memory for each object it does not use (bench/README.md).
  struct Indexed {
    uint64_t bytes = 0;
    uint32_t last_used = 0;  // seconds since the epoch (until 2106)
    // Which object under the hash: a new one may take the name while the
    // old is being culled (wraps; only equality matters).
    uint32_t generation = 0;
  };
  Culler(Cache* cache, std::shared_ptr<Volume> volume, CullLimits limits,
         std::unique_ptr<CullPolicy> policy);
  void Loop();
  // The objects on disk: from the snapshot a clean shutdown left
  // (index_snapshot.h), else by scanning the volume.
  std::vector<Volume::StoredObject> LoadIndex();
  // Puts `objects` (oldest use first) into `index` and `policy`, numbering
  // them from `*generation` on.
  static void Index(const std::vector<Volume::StoredObject>& objects,
                    absl::flat_hash_map<uint64_t, Indexed>* index,
                    CullPolicy* policy, uint32_t* generation);
  // How it works: a snapshot is the exact state at start, so the mount
  // serves at once while the culling thread indexes it aside (into an
  // index and a policy of its own, swapped in when done); events arriving
  // meanwhile are queued (their bytes counted at once) and applied in
  // order after it. A scanned index is built before serving instead: a
  // scan is not one instant, so events during it would not compose.
  void FinishLoading();
  void ChargeLocked(uint64_t hash, int64_t delta, bool counted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UsedLocked(uint64_t hash, uint32_t when)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemovedLocked(uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leaves the snapshot for the next start.
  void SaveIndex();
  static constexpr size_t kMaxIndexSnapshotBytes = size_t{1} << 30;
  // Steps 1 and 3 of a pass (see the top): culls cold granules of open
  // objects holding more than `cap` bytes each, largest first, down to
  // `cap`, while more than `target` bytes are stored.
  void TrimOpenObjects(uint64_t target, uint64_t cap, CullResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  // Step 2: whole objects, the policy's choice.
  void CullWholeObjects(uint64_t target, CullResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  // Reads the filesystem's free space and files into `fs` and the sample
  // below; false if statvfs fails.
  bool SampleFilesystem(struct statvfs* fs);
  // The bstop/fstop floors, checked before every cache write: free space is
  // estimated from the last sample less what was admitted since, and
  // sampled again (and the culler woken) once that falls under bcull.
  bool AdmitToFilesystem(uint64_t bytes);
  // Samples the filesystem and returns how many bytes culling should free
  // for its limits (0: none).
  uint64_t CheckFilesystem();
  // Publishes this volume's count and limit and re-reads the other
  // volumes'.
  void ShareUsage();
  // Writes `bytes` and `limit` to this volume's usage file.
  void PublishUsage(int64_t bytes, uint64_t limit);
  // Removes the objects whose records say they were never closed (read
  // back after a stop without an unmount), and logs how many.
  void DiscardUncleanObjects();
  uint64_t CullMark() const;
  uint64_t RunMark() const;
  void Wake();

  Cache* const cache_;
  const std::shared_ptr<Volume> volume_;
  const CullLimits limits_;
  int64_t scan_nanos_ = 0;
  bool loaded_from_snapshot_ = false;
  // How the policy was made, to make the loading thread's own.
  std::string policy_name_;
  uint64_t policy_capacity_ = 1;

  // Bytes of other volumes, as they published them (or scanned at start).
  std::atomic<uint64_t> other_bytes_{0};
  // Guarded by being used only by Start and the culling thread.
  struct OtherVolume {
    uint64_t bytes = 0;
    uint64_t limit = 0;  // its cache_size, 0: none
  };
  absl::flat_hash_map<std::string, OtherVolume> others_;  // by volume dir
  int64_t published_ = -1;
  uint64_t published_limit_ = 0;
  std::atomic<uint64_t> directory_limit_;
  std::atomic<int64_t> own_bytes_{0};
  // The cache filesystem as last sampled: free bytes (less what was
  // admitted since), the bstop and bcull floors in bytes, and whether free
  // files are below fstop.
  std::atomic<int64_t> fs_free_bytes_{std::numeric_limits<int64_t>::max() / 2};
  std::atomic<int64_t> fs_stop_floor_{0};
  std::atomic<int64_t> fs_cull_floor_{0};
  std::atomic<bool> files_full_{false};
  // Bytes admitted whose writes have not landed yet: a fresh sample of
  // the filesystem does not show them, so they are taken off it.
  std::atomic<int64_t> fs_writes_in_flight_{0};
  // The largest write refused at the limit since the last pass.
  std::atomic<uint64_t> refused_bytes_{0};
  // The cache's filesystem cannot punch holes: open objects are not
  // trimmed (steps 1 and 3 do nothing).
  std::atomic<bool> trim_unsupported_{false};

  mutable absl::Mutex mu_;
  std::unique_ptr<CullPolicy> policy_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Indexed> index_ ABSL_GUARDED_BY(mu_);
  // While a snapshot is being indexed (see FinishLoading).
  struct PendingEvent {
    enum Kind : uint8_t { kCharge, kUsed, kRemoved } kind;
    uint64_t hash;
    int64_t delta;
    uint32_t when;
  };
  bool loading_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Volume::StoredObject> to_load_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingEvent> pending_ ABSL_GUARDED_BY(mu_);
  absl::Notification loaded_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  absl::CondVar wake_cv_;

  // Serializes culling passes (the thread's and CullTo's).
  absl::Mutex pass_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace cachefs

#endif  // CACHEFS_CULL_CULLER_H_
