// Cookie: the cache's handle on one origin file, held by the netfs while the
// file is in use. It carries the file key, the coherency (aux) data and the
// object size, all passed in at acquire and written back lazily, as in the
// fscache rewrite; and it gives the netfs the read and write calls of the
// cache contract in the netfs shape: PrepareRead gives a plan that owns its
// pins and reads the cache; ClaimFill a claim that stores what the origin
// gave; PrepareWrite a ticket that stores and clears the granules a write
// changes. Each releases what it holds when it goes. The backing object
// stays inside cookie/ (CookieInspector shows it to the cache's own
// layers and tests).
//
// A cookie is usable at once; its backing object is looked up or created by
// the dispatcher, and calls that need the object wait for that (a local
// lookup, never the origin). A cookie without an object (the cache was
// withdrawn, or a cache fault withdrew the object) sends every read to the
// origin.
//
// Created and owned by a Volume; the netfs holds a shared_ptr between
// Volume::AcquireCookie and Volume::RelinquishCookie.
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_COOKIE_COOKIE_H_
#define CACHEFS_COOKIE_COOKIE_H_

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cookie/backing_object.h"
#include "io/io_engine.h"

namespace cachefs {

class Volume;

class Cookie : public std::enable_shared_from_this<Cookie> {
 public:
  Cookie(Volume* volume, std::string key, std::string aux,
         uint64_t object_size);
  ~Cookie();
  Cookie(const Cookie&) = delete;
  Cookie& operator=(const Cookie&) = delete;

  // The file key; changes when the origin file is renamed through cachefs.
  std::string key() const;
  std::string aux() const;
  uint64_t object_size() const;

  // Changes whenever the file's data may change through the cookie
  // (Invalidate, Resize, PrepareWrite, MarkDirty): data read from the
  // origin under one epoch is the file's current data while it lasts.
  uint64_t data_epoch() const {
    return data_epoch_.load(std::memory_order_acquire);
  }

  // Blocks until the backing object has been looked up or created.
  void WaitReady() { ready_.WaitForNotification(); }
  bool ready() const { return ready_.HasBeenNotified(); }
  // Whether the cookie has a backing object now (none: the cache was
  // withdrawn, or a fault withdrew the object).
  bool has_object() const { return object() != nullptr; }

  // Records new coherency data, written back lazily.
  void SetAux(std::string aux);
  // The origin file was truncated or extended to `new_size`.
  absl::Status Resize(uint64_t new_size);
  // The origin's data changed: a fresh, empty object takes the old one's
  // place (made with O_TMPFILE and linked in when ready); I/O in flight
  // finishes against the old file and is then dropped.
  void Invalidate(std::string aux, uint64_t object_size);

  // A prepared read (the netfs shape): the plan for bytes [pos, pos + len)
  // (which granule-aligned runs come from the cache, which from the
  // origin) and the means to read its cache runs. It reads the object it
  // was planned on, so its reads stay valid even if the cookie is
  // invalidated meanwhile, and it pins its cache runs against culling
  // until Unpin or its end.
  class ReadPlan {
   public:
    ReadPlan() = default;
    ReadPlan(ReadPlan&&) = default;
    // Lets go of the old pin before the old object.
    ReadPlan& operator=(ReadPlan&& other) noexcept {
      pin_.Release();
      cookie_ = std::move(other.cookie_);
      object_ = std::move(other.object_);
      segments_ = std::move(other.segments_);
      pin_ = std::move(other.pin_);
      return *this;
    }

    const std::vector<ReadSegment>& segments() const { return segments_; }
    bool FullyCached() const;
    // Whether the plan was made on a cache object (none: every byte comes
    // from the origin).
    bool has_object() const { return object_ != nullptr; }
    // Whether two plans read the same cache object.
    bool SameObject(const ReadPlan& other) const {
      return object_ == other.object_;
    }

    // REQUIRES (for both reads): the cookie is not relinquished while
    // their I/O is in flight, and the plan has an object.
    // Reads cached bytes into iov (see IoEngine::ReadToIter for
    // alignment). A cache fault withdraws the object and reaches `done` as
    // an error: the caller then reads the range from the origin. So does a
    // granule whose checksum fails (CacheOptions::verify), which only that
    // granule pays for.
    void Read(uint64_t pos, std::span<const iovec> iov, IoCallback done) const;
    // The same, blocking: the calling thread drives the I/O itself, which
    // saves a thread hand-off when there is nothing else to wait for.
    absl::StatusOr<size_t> ReadSync(uint64_t pos,
                                    std::span<const iovec> iov) const;

    // Whether granule `index` is still cached: the object read is still
    // the cookie's and still holds it (a fault or a checksum may have
    // dropped it since the plan).
    bool StillCached(uint64_t index) const;
    // Withdraws the object read, if it is still the cookie's: the reader
    // found it wrong (shorter than its map).
    void Withdraw(const absl::Status& why) const;
    // Lets the cache runs be culled: their reads are done.
    void Unpin() { pin_.Release(); }

   private:
    friend class Cookie;
    std::shared_ptr<Cookie> cookie_;
    std::shared_ptr<BackingObject> object_;
    std::vector<ReadSegment> segments_;
    BackingObject::ReadPin pin_;  // after `object_`: destroyed before it
  };
  ReadPlan PrepareRead(uint64_t pos, uint64_t len);

  // A claim on granules to fill from the origin. While it is held they are
  // in flight: other readers wait for them instead of fetching them again.
  // It is released when it goes, unless Complete stored the granules.
  class FillClaim {
   public:
    FillClaim() = default;
    FillClaim(FillClaim&& other) noexcept { *this = std::move(other); }
    FillClaim& operator=(FillClaim&& other) noexcept;
    ~FillClaim() { Abort(); }

    explicit operator bool() const { return object_ != nullptr; }
    uint64_t first() const { return first_; }
    uint64_t count() const { return count_; }
    // Stores the claimed granules' origin data (laid out as for
    // WriteToCache), then releases the claim. When the cache refuses the
    // data, `done` is told before the claim is released.
    void Complete(std::span<const iovec> iov, IoCallback done);
    // Releases the claim now without storing anything.
    void Abort();

   private:
    friend class Cookie;
    std::shared_ptr<Cookie> cookie_;
    std::shared_ptr<BackingObject> object_;
    uint64_t first_ = 0;
    uint64_t count_ = 0;
  };
  // Claims granules [first, first + count); an empty claim if the cookie
  // has no object or any of them is present or in flight already.
  FillClaim ClaimFill(uint64_t first, uint64_t count);

  // Whether the cache has room for `bytes` more now: a question with no
  // effect (nothing is reserved, and a no makes no room).
  bool WouldAdmit(uint64_t bytes) const;

  // Stores origin data for granules starting at `pos` (granule aligned);
  // the data runs to the end of the last granule or the object size,
  // rounded up to the I/O alignment. Granules already present or in flight
  // are skipped (done gets 0). Bits are set when the write completes.
  void WriteToCache(uint64_t pos, std::span<const iovec> iov, IoCallback done);

  // Write-through (the netfs shape of a write). A write ticket covers
  // granules the netfs is about to change on the origin: getting it waits
  // for fills and stores in flight over them, keeps new ones out until it
  // goes, and marks the object dirty before the origin sees the change, so
  // a crash at any point leaves an object no lookup trusts.
  class WriteTicket {
   public:
    WriteTicket() = default;
    WriteTicket(WriteTicket&& other) noexcept { *this = std::move(other); }
    WriteTicket& operator=(WriteTicket&& other) noexcept;
    // Releases the claim: the caller's stores must have completed.
    ~WriteTicket() { Release(); }

    explicit operator bool() const { return object_ != nullptr; }
    uint64_t first() const { return first_; }
    uint64_t count() const { return count_; }
    // Whether two tickets are on the same cache object.
    bool SameObject(const WriteTicket& other) const {
      return object_ == other.object_;
    }
    // Whether granule `index` is cached now.
    bool IsPresent(uint64_t index) const;
    // Reads cached bytes, to patch a granule the write covers in part.
    absl::StatusOr<size_t> ReadSync(uint64_t pos,
                                    std::span<const iovec> iov) const;
    // Stores whole granules [first, first + count) of the ticket's range
    // (laid out as for WriteToCache). They become present if the write
    // succeeds and absent if it fails: never half-right.
    void Store(uint64_t first, uint64_t count, std::span<const iovec> iov,
               IoCallback done) const;
    // Marks granules absent (their data on the origin changed and the
    // cache does not have it).
    void Clear(uint64_t first, uint64_t count) const;
    // Releases the claim now.
    void Release();

   private:
    friend class Cookie;
    std::shared_ptr<Cookie> cookie_;
    std::shared_ptr<BackingObject> object_;
    uint64_t first_ = 0;
    uint64_t count_ = 0;
  };
  // Empty if the cookie has no object.
  WriteTicket PrepareWrite(uint64_t first, uint64_t count);
  // Marks the object dirty ahead of a change to the origin that touches
  // no granule it has yet (an append past its end).
  void MarkDirty();

  // Makes the map, aux data and size durable now (see BackingObject).
  // With `wait_for_writes`, once the cache writes in flight have landed;
  // otherwise a busy object is left for the next checkpoint.
  absl::Status Checkpoint(bool wait_for_writes = false);

  // Culls up to `max_granules` of the object's least recently used
  // granules (BackingObject::TrimCold). kUnimplemented if the cache's
  // filesystem cannot punch holes; any other failure withdraws the object
  // and reports nothing culled.
  absl::StatusOr<BackingObject::Trimmed> TrimCold(uint64_t max_granules);

  // Drops the backing object after a cache fault: `why` is counted and the
  // object removed once its I/O has drained. With `which`, only if that is
  // still the cookie's object.
  void WithdrawObject(const absl::Status& why,
                      const BackingObject* which = nullptr);

 private:
  friend class Volume;
  friend class Cache;
  friend class CookieInspector;
  // The current backing object, or null if the cookie has none.
  std::shared_ptr<BackingObject> object() const;
  // The cache reads of a ReadPlan (see there) on `object`.
  void ReadFromCache(const std::shared_ptr<BackingObject>& object, uint64_t pos,
                     std::span<const iovec> iov, IoCallback done);
  absl::StatusOr<size_t> ReadFromCacheSync(
      const std::shared_ptr<BackingObject>& object, uint64_t pos,
      std::span<const iovec> iov);
  // Called by the volume's instantiation job, exactly once.
  void SetObject(std::shared_ptr<BackingObject> object);
  void SetKey(std::string key);
  // The object and the aux data to write its record with, read together.
  std::pair<std::shared_ptr<BackingObject>, std::string> ObjectAndAux() const;
  // Detaches the object for teardown or withdrawal; returns it (may be
  // null). Without `wait_ready`, a cookie still being instantiated is left
  // alone (its instantiation will see the cache withdrawn).
  std::shared_ptr<BackingObject> DetachObject(bool wait_ready = true);
  // The cache write shared by fills and overwrites: admission, the write,
  // then the granules' outcome (see StoreGranules in cookie.cc).
  // Asks the cache's observer whether `bytes` may be stored now; a refusal
  // is counted as nospace.
  bool Admit(uint64_t bytes);
  void StoreGranules(std::shared_ptr<BackingObject> object, uint64_t first,
                     uint64_t count, std::span<const iovec> iov,
                     bool overwrite, IoCallback done);
  // A read served from the pages a pin holds in memory for `object`
  // (BackingObject::memory), or nullopt if they do not cover `pos`.
  std::optional<absl::StatusOr<size_t>> ReadFromMemory(
      const BackingObject& object, uint64_t pos, std::span<const iovec> iov);
  // Counts a finished cache read; withdraws the object on a fault.
  void FinishRead(const BackingObject& object,
                  const absl::StatusOr<size_t>& result);
  // With verification on, checks each granule the `n` bytes read at `pos`
  // hold whole against its checksum. A granule that fails is dropped,
  // counted and logged, and the read fails with kDataLoss (the object
  // stays: the caller fetches the range from the origin).
  absl::Status VerifyRead(BackingObject& object, uint64_t pos,
                          std::span<const iovec> iov, size_t n);
  // Counts a finished cache write; withdraws the object on a fault.
  void FinishWrite(const std::shared_ptr<BackingObject>& object,
                   uint64_t count, const absl::StatusOr<size_t>& result);

  Volume* const volume_;
  absl::Notification ready_;
  std::atomic<uint64_t> data_epoch_{0};
  // Held across a whole invalidation or resize so two never interleave.
  absl::Mutex change_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
  std::string aux_ ABSL_GUARDED_BY(mu_);
  uint64_t object_size_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<BackingObject> object_ ABSL_GUARDED_BY(mu_);
};

// The backing object behind a cookie, for the cache's own layers (the
// culler) and the tests of cookie/: not for the netfs, which goes through
// plans, claims and tickets.
class CookieInspector {
 public:
  static std::shared_ptr<BackingObject> ObjectOf(const Cookie& cookie) {
    return cookie.object();
  }
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_COOKIE_H_
