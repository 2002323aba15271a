// BackingObject: the sparse cache file that holds one origin file's cached
// data, with its content map and the granules now being written.
//
// Crash rule (invariant 2: a bit in a persisted map means the granule's
// data is on disk). How it works:
//   1. Before the first cache write after the object was last clean, a
//      record with state kDirty is written (EnsureDirty). A dirty record
//      found at lookup makes the object stale, whatever its map says.
//   2. Bits are set in memory only when a data write completed.
//   3. Checkpoint: snapshot the map while no write is in flight, fdatasync
//      the file, then write a kClean record with that snapshot. A write that
//      starts meanwhile blocks in EnsureDirty until the clean record is
//      written, then marks the object dirty again.
// So a persisted clean map only ever names granules that were synced
// before it was written.
//
// Owned by a Cookie through a shared_ptr; I/O in flight holds another
// reference, so an invalidation can swap in a new object while old I/O
// finishes against the old file. A retired object (replaced or withdrawn)
// never writes its record again.
//
// Every present granule has a CRC-32C of its bytes up to the object size
// (granule_checksums.h), set with its bit from the data that was written
// and kept in step by Resize; the record carries them, so reads from the
// cache can be verified after a restart too.
//
// Cold granules can be culled from a live object (TrimCold), so one large
// open file need not push every other object out of the cache. Recency is
// a CLOCK over the present granules: a granule read from the cache or
// stored gets its reference bit set; the hand clears set bits as it passes
// and culls granules whose bit is clear. A trim clears the victims' map
// bits and claims them as in flight (so no fill can store them meanwhile),
// then waits for the cache reads planned before the bits went (read pins,
// counted per epoch), marks the object dirty (a clean record may still
// name them) and only then punches them out of the file.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_COOKIE_BACKING_OBJECT_H_
#define CACHEFS_COOKIE_BACKING_OBJECT_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "contentmap/content_map.h"
#include "cookie/cache_observer.h"
#include "io/locked_mapping.h"
#include "io/env.h"
#include "io/granule_inflight.h"
#include "io/io_engine.h"

namespace cachefs {

// Where one byte range of a read comes from.
struct ReadSegment {
  enum class Source : uint8_t { kCache, kOrigin };
  Source source = Source::kOrigin;
  uint64_t pos = 0;
  uint64_t len = 0;
  bool operator==(const ReadSegment&) const = default;
};

class BackingObject {
 public:
  struct Identity {
    std::string volume_key;
    std::string file_key;
  };

  // Takes ownership of `fd` (the file); borrows `dir_fd` (its directory,
  // kept open by the volume).
  // `checksums` holds one entry per present granule of `map`, in order
  // (as a record keeps them).
  BackingObject(Env* env, int dir_fd, std::string name, int fd, bool direct,
                Identity identity, ContentMap map,
                const std::vector<uint32_t>& checksums = {});
  // Tells `observer` (may be null) of every change of the granules held.
  void SetObserver(CacheObserver* observer) { observer_ = observer; }
  // The hash the file is named by (its name, in hex).
  uint64_t hash() const;
  // Records that the on-disk record is clean and holds `aux` and the
  // current map (a positive lookup or a freshly made object).
  void SetPersisted(const std::string& aux);
  ~BackingObject();
  BackingObject(const BackingObject&) = delete;
  BackingObject& operator=(const BackingObject&) = delete;

  BackingFile file() const { return BackingFile{fd_, direct_}; }
  // Where the file is linked; changed only by MoveTo.
  std::string name() const;
  int dir_fd() const;
  uint64_t object_size() const;
  uint32_t granule_shift() const { return granule_shift_; }
  ContentMap MapSnapshot() const;

  // Keeps the cache granules of a read plan from being punched out until
  // the reads are done (see TrimCold). Movable; releases when destroyed.
  // The object must outlive it.
  class ReadPin {
   public:
    ReadPin() = default;
    ReadPin(ReadPin&& other) noexcept;
    ReadPin& operator=(ReadPin&& other) noexcept;
    ~ReadPin() { Release(); }
    void Release();

   private:
    friend class BackingObject;
    BackingObject* object_ = nullptr;
    uint64_t epoch_ = 0;
  };

  // Splits bytes [pos, pos + len), clipped to the object size, into runs
  // served by the cache and runs to fetch from the origin, on granule
  // boundaries. Waits first for cache writes in flight over the range.
  // The cache runs count as used (their reference bits are set). With
  // `pin`, and if any run comes from the cache, pins them for the reads.
  std::vector<ReadSegment> PlanRead(uint64_t pos, uint64_t len,
                                    ReadPin* pin = nullptr);

  // Culls up to `max_granules` present granules that were least recently
  // used (see the class comment), passing over granules being written.
  // Returns how many were culled and the bytes freed (also reported to the
  // observer). kUnimplemented if the filesystem cannot punch holes (the
  // granules not punched stay cached); any other failure to mark the
  // object dirty or to punch leaves the victims absent, and the caller
  // withdraws the object.
  struct Trimmed {
    uint64_t granules = 0;
    uint64_t bytes = 0;
  };
  absl::StatusOr<Trimmed> TrimCold(uint64_t max_granules,
                                   const std::string& aux);

  // The checksums of data about to be stored in granules [first, ...): one
  // per granule, each over the granule's bytes up to `object_size` (the
  // object size when they were computed; a granule that has grown since
  // is extended with zeros when they are applied).
  struct StoredChecksums {
    std::vector<uint32_t> crcs;
    uint64_t object_size = 0;
  };

  // Claims granules [first, first + count) for a cache write: fails if any
  // is present already or in flight. REQUIRES: EndWrite after a success.
  bool BeginWrite(uint64_t first, uint64_t count);
  // Releases the claim; with `stored` (the checksums of what was written)
  // the granules become present.
  void EndWrite(uint64_t first, uint64_t count,
                const StoredChecksums* stored = nullptr);

  // Claims granules [first, first + count) for an overwrite with data the
  // origin accepted: waits for writes in flight over them instead of
  // failing, and does not care whether they are present. Fails only past
  // the end of the object. REQUIRES: EndWrite after a success.
  bool BeginOverwrite(uint64_t first, uint64_t count);
  // Inside an overwrite claim: granules [first, first + count) now hold
  // the file's data with these checksums (present), or, with null, may not
  // (absent).
  void SetGranules(uint64_t first, uint64_t count,
                   const StoredChecksums* stored);
  bool IsPresent(uint64_t granule) const;

  // The checksum of present granule `granule` and the bytes it covers;
  // false if the granule is not present.
  bool ChecksumOf(uint64_t granule, uint32_t* crc, uint64_t* bytes) const;
  // A granule's data failed its checksum: it is no longer present (a fill
  // stores it afresh). The next checkpoint records that.
  void DropGranule(uint64_t granule);

  // Persists a dirty record unless the on-disk record is dirty already.
  absl::Status EnsureDirty(const std::string& aux);
  // Makes the current map durable as a clean record (see the class
  // comment). Returns whether it wrote one (not if the record on disk says
  // it all already), or kUnavailable, changing nothing, if writes are in
  // flight.
  absl::StatusOr<bool> Checkpoint(const std::string& aux);
  // Truncates or extends the object: waits for writes over the affected
  // granules, marks the object dirty, resizes file and map.
  absl::Status Resize(uint64_t new_size, const std::string& aux);
  // Waits for every write in flight.
  void WaitIdle() { inflight_.WaitAll(); }

  // The origin file was renamed: moves the backing file to `name` in
  // `dir_fd` (replacing whatever is there) and rewrites the record under
  // the new identity, marked dirty until the next checkpoint.
  absl::Status MoveTo(int dir_fd, std::string name, Identity identity);

  // Pages of the backing file held in RAM by a pin (the prefetch layer):
  // reads of what they cover are served from them. Taken only if the
  // mapping is of this very file and not stale; dropped, marked stale and
  // the observer told (MemoryDropped) before anything changes the file's
  // data, since a direct write does not reach mapped pages.
  void SetMemory(std::shared_ptr<const LockedMapping> memory);
  // The mapping to read from, or null.
  std::shared_ptr<const LockedMapping> memory() const;

  // Stops all further record writes (the object was replaced or withdrawn).
  void Retire() { retired_.store(true); }
  bool retired() const { return retired_.load(); }

 private:
  absl::Status WriteRecord(bool dirty, const ContentMap& map,
                           const std::vector<uint32_t>& checksums,
                           const std::string& aux)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(record_mu_);
  bool NoWritesInFlight() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return writes_in_flight_ == 0;
  }

  // The bytes the present granules take on disk, as the filesystem
  // allocates them (the partial last granule only up to its last block).
  uint64_t StoredBytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reports a change of StoredBytes, made under mu_, to the observer. Call
  // without mu_ held.
  void ReportBytes(int64_t delta);
  // Before the file's data changes: see SetMemory.
  void DropMemory();
  void Unpin(uint64_t epoch);
  // Keeps the reference bits and checksums the size of the map.
  void ResizeReferenced() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks granules present with `stored`'s checksums.
  void MarkStored(uint64_t first, uint64_t count,
                  const StoredChecksums& stored)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The checksum of the first `bytes` of present granule `granule`, read
  // back from the file, if what is there still matches its checksum.
  std::optional<uint32_t> ChecksumOfPrefix(uint64_t granule, uint64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Picks up to `max` victims for TrimCold and claims them in inflight_.
  std::vector<uint64_t> PickColdGranules(uint64_t max)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Env* const env_;
  CacheObserver* observer_ = nullptr;  // set before the object is shared
  const int fd_;
  const bool direct_;
  const uint32_t granule_shift_;

  mutable absl::Mutex where_mu_ ABSL_ACQUIRED_AFTER(record_mu_);
  int dir_fd_ ABSL_GUARDED_BY(where_mu_);
  std::string name_ ABSL_GUARDED_BY(where_mu_);
  Identity identity_ ABSL_GUARDED_BY(where_mu_);

  GranuleInFlight inflight_;
  std::atomic<bool> retired_{false};

  mutable absl::Mutex memory_mu_;
  std::shared_ptr<const LockedMapping> memory_ ABSL_GUARDED_BY(memory_mu_);

  // Serializes trims, which wait for readers without holding mu_.
  absl::Mutex trim_mu_ ABSL_ACQUIRED_BEFORE(record_mu_);

  // Serializes record writes, and is held across them on purpose: a
  // write may not start while a clean record is being made (see above).
  absl::Mutex record_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool persisted_dirty_ ABSL_GUARDED_BY(record_mu_) = false;
  // What the on-disk record says, so an unchanged object is not written.
  std::string persisted_aux_ ABSL_GUARDED_BY(record_mu_);
  bool persisted_known_ ABSL_GUARDED_BY(record_mu_) = false;

  mutable absl::Mutex mu_;
  ContentMap map_ ABSL_GUARDED_BY(mu_);
  // One per granule; meaningful for present granules only.
  std::vector<uint32_t> checksums_ ABSL_GUARDED_BY(mu_);
  int writes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // The map differs from the one in the on-disk record.
  bool map_changed_ ABSL_GUARDED_BY(mu_) = true;
  // CLOCK reference bits, one per granule, and the hand (see TrimCold).
  ContentMap referenced_ ABSL_GUARDED_BY(mu_);
  uint64_t hand_ ABSL_GUARDED_BY(mu_) = 0;
  // Read pins: readers planned in epoch e are counted in pinned_[e % 2].
  uint64_t read_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pinned_[2] ABSL_GUARDED_BY(mu_) = {0, 0};
  absl::CondVar unpinned_;
  std::atomic<bool> dirty_hint_{false};  // lock-free fast path of EnsureDirty
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_BACKING_OBJECT_H_
