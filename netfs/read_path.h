// The read path: shapes a kernel read to whole 256 KiB granules, serves
// present granules from the cache (ReadToIter), fetches missing ones from
// the origin (several in flight), replies as soon as the data is in memory,
// and stores the origin's granules in the cache in the background.
//
// How it works, for one read of bytes [off, off + size):
//   1. The granules it touches get one pool buffer each. PrepareRead waits
//      for any of them being stored right now (the PG_fscache wait).
//   2. Missing granules are claimed (ClaimFill) so concurrent readers wait
//      for this fetch instead of repeating it, then read from the origin in
//      parallel on the origin pool; present ones are read from the cache.
//   3. A cache read that fails withdraws the object (invariant 3) and the
//      granules are fetched from the origin instead.
//   4. The caller replies from the buffers, then ReadReply's destructor
//      completes the fetched granules' fill claims (stores them); their
//      buffers return to the pool when the cache write completes.
// A read that continues the previous one on the same handle also claims and
// fetches the next granules ahead of the reader (sequential read-ahead).
//
// Thread safety: Read may be called concurrently.

#ifndef CACHEFS_NETFS_READ_PATH_H_
#define CACHEFS_NETFS_READ_PATH_H_

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cookie/cookie.h"
#include "cookie/dispatcher.h"
#include "cookie/stats.h"
#include "cookie/tracer.h"
#include "io/buffer_pool.h"
#include "netfs/origin.h"

namespace cachefs {

// Per-open-handle state the read path keeps.
struct ReadStream {
  std::shared_ptr<Cookie> cookie;  // its object_size() is the file size
  // Opens the origin file on first use; shared by the handle's reads.
  std::function<absl::StatusOr<std::shared_ptr<OriginFile>>()> origin;
  // Whether a sequential reader has granules fetched ahead of it; off for
  // a reader that asks for exactly what it wants (a prefetch), whose
  // fetches must be its own to be counted as its own. Set before reads.
  bool read_ahead = true;

  absl::Mutex mu;
  uint64_t next_offset ABSL_GUARDED_BY(mu) =
      0;  // where a sequential read goes on
  uint64_t readahead_end ABSL_GUARDED_BY(mu) =
      0;  // granules claimed ahead, up to
  // The last few granules fetched from the origin, and only partly read,
  // that the cache could not keep (no object, no room): the kernel asks
  // for a granule in several requests, some after it asked for the next
  // granule, and the origin should be asked for it once. Valid while the
  // cookie's data epoch is `epoch`; the oldest goes first.
  struct KeptGranule {
    uint64_t index = 0;
    uint64_t epoch = 0;
    std::string data;
  };
  static constexpr size_t kKeptGranules = 8;
  std::deque<KeptGranule> kept ABSL_GUARDED_BY(mu);
};

// The data of one read, in pool buffers. Destroying it starts the cache
// writes of the granules fetched from the origin.
class ReadReply {
 public:
  // One granule of the reply, in its own pool buffer.
  struct Granule {
    uint64_t index = 0;
    Buffer buffer;
    size_t length = 0;  // bytes of file data in the buffer
    // The part the reply needs, as offsets in the granule: a cache hit
    // reads only that (rounded to the I/O alignment), a miss the whole
    // granule.
    size_t want_from = 0;
    size_t want_to = 0;
    bool from_cache = false;
    bool from_origin = false;  // fetched by this read
    Cookie::FillClaim claim;   // set while this read owns the fetch
  };

  ~ReadReply();
  const std::vector<iovec>& iov() const { return iov_; }
  size_t size() const;

 private:
  friend class ReadPath;
  std::shared_ptr<ReadStream> stream_;
  uint64_t epoch_ = 0;  // the cookie's data epoch when the read began
  std::vector<Granule> granules_;
  std::vector<iovec> iov_;
};

class ReadPath {
 public:
  struct Options {
    uint32_t granule_shift = 18;
    uint32_t readahead_granules = 8;
    // How far apart the requests of one sequential reader may arrive: the
    // kernel sends the requests of its read-ahead window at once, and they
    // reach the daemon in any order.
    uint64_t reorder_bytes = 4 << 20;
    // Read cached granules whole, so each can be checked against its
    // checksum (CacheOptions::verify).
    bool whole_granules = false;
  };
  // Borrows everything; all must outlive the ReadPath.
  ReadPath(Options options, BufferPool* buffers, Dispatcher* origin_pool,
           CacheStats* stats, Tracer* tracer);

  absl::StatusOr<std::unique_ptr<ReadReply>> Read(
      const std::shared_ptr<ReadStream>& stream, uint64_t off, size_t size);

 private:
  // Sets `*missed` when any granule was not in the cache.
  absl::Status FillGranules(ReadStream& stream, ReadReply& reply, bool* missed);
  // After a failed ClaimFill of `g`: waits for the request that has it in
  // flight and takes the granule from the cache or the stream's kept
  // granule; false if neither has it.
  bool TakeOthersFetch(ReadStream& stream, uint64_t epoch,
                       ReadReply::Granule& g);
  absl::Status FetchFromOrigin(ReadStream& stream,
                               std::vector<ReadReply::Granule*> granules);
  // Sequential read-ahead: claims missing granules past the read and
  // fetches them from the origin in the background, but only where the
  // reader is going: after a read that missed the cache, or one inside
  // the window read ahead before. A reader of cached data asks nothing.
  void ReadAhead(const std::shared_ptr<ReadStream>& stream, uint64_t off,
                 size_t size, bool missed);
  uint64_t GranuleLength(uint64_t index, uint64_t file_size) const;
  // One trace event per run of the reply's granules served alike: "hit"
  // from the cache, "miss" fetched for it (or by a read beside it).
  void TraceRead(const ReadStream& stream, const ReadReply& reply, uint64_t off,
                 uint64_t end) const;
  // A granule read from the origin: counted, timed and traced.
  void CountFetch(const ReadStream& stream, uint64_t index, size_t bytes,
                  int64_t started_ns, const char* why) const;

  const Options options_;
  BufferPool* const buffers_;
  Dispatcher* const origin_pool_;
  CacheStats* const stats_;
  Tracer* const tracer_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_READ_PATH_H_
