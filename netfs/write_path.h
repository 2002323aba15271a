// The write path: write-through. A write goes to the origin first; only
// once the origin has accepted it does the cache change, so the cache never
// holds data the origin does not (the seed's first "still needs doing").
//
// How it works, for one write of bytes [off, off + n):
//   1. The object grows first if the write extends the file.
//   2. A write ticket on the granules it touches waits for fills and
//      stores in flight there, keeps new fills out, and marks the object
//      dirty: a crash from here on leaves an object no lookup trusts.
//   3. The origin write. If the origin refuses it, the ticket is released
//      and nothing in the cache has changed.
//   4. For each granule the accepted bytes touch: if they cover it whole
//      (up to the end of file) it is stored from the write's data; if they
//      cover part of a present granule, the granule is read from the cache,
//      patched and stored; a part of an absent granule stays absent. A
//      store that fails leaves its granules absent: never half-right.
//   5. The stores run in the background; the ticket is released when the
//      last one completes, so readers of those granules wait for them and
//      then find the new data in the cache.
// Callers serialize writes to one file (NetfsFile's write lock), so the
// cache sees them in the order the origin did.
//
// Thread safety: Write may be called concurrently for different files.

#ifndef CACHEFS_NETFS_WRITE_PATH_H_
#define CACHEFS_NETFS_WRITE_PATH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "cookie/cookie.h"
#include "cookie/stats.h"
#include "io/buffer_pool.h"
#include "netfs/origin.h"

namespace cachefs {

class WritePath {
 public:
  // Borrows both; they must outlive the WritePath.
  WritePath(uint32_t granule_shift, BufferPool* buffers, CacheStats* stats);

  // Writes `data` at `off` through `origin`, then into `cookie`'s object.
  // Returns the bytes the origin accepted.
  absl::StatusOr<size_t> Write(Cookie& cookie, OriginFile& origin,
                               const char* data, size_t n, uint64_t off);

 private:
  const uint32_t granule_shift_;
  BufferPool* const buffers_;
  CacheStats* const stats_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_WRITE_PATH_H_
