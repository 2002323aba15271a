#include "netfs/write_path.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "io/io_engine.h"

namespace cachefs {
namespace {

// One granule to store, in its own pool buffer.
struct PendingGranule {
  uint64_t index = 0;
  Buffer buffer;
  size_t length = 0;  // file bytes in the buffer
};

// The stores of one write. Its tickets are released when the last
// completes.
struct StoreBatch {
  Cookie::WriteTicket tickets[2];
  std::atomic<int> outstanding{0};

  void Done() {
    if (outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      for (Cookie::WriteTicket& ticket : tickets) ticket.Release();
    }
  }
};

}  // namespace

WritePath::WritePath(uint32_t granule_shift, BufferPool* buffers,
                     CacheStats* stats)
    : granule_shift_(granule_shift), buffers_(buffers), stats_(stats) {}

absl::StatusOr<size_t> WritePath::Write(Cookie& cookie, OriginFile& origin,
                                        const char* data, size_t n,
                                        uint64_t off) {
  if (n == 0) return origin.PWrite(data, 0, off);
  const uint64_t granule = uint64_t{1} << granule_shift_;
  const uint64_t old_size = cookie.object_size();
  const uint64_t old_granules = (old_size + granule - 1) >> granule_shift_;
  const uint64_t first = off >> granule_shift_;
  const uint64_t last = (off + n - 1) >> granule_shift_;
  // Granules that exist already are claimed before the origin sees the
  // write; ones past the end, after the object grows to hold them, so a
  // write the origin refuses leaves even the size alone.
  Cookie::WriteTicket existing;
  if (first < old_granules) {
    existing = cookie.PrepareWrite(
        first, std::min(last, old_granules - 1) - first + 1);
  } else {
    cookie.MarkDirty();
  }

  absl::StatusOr<size_t> written = origin.PWrite(data, n, off);
  if (!written.ok() || *written == 0) {
    // An error means the origin took none of it (OriginFile::PWrite
    // reports a partial write as a short count): the cache stays as it is.
    return written;
  }
  Bump(stats_->bytes_written_to_origin, *written);

  // What the origin now holds: the old bytes, and the accepted ones.
  const uint64_t wend = off + *written;
  const uint64_t file_size = std::max(old_size, wend);
  const uint64_t wlast = (wend - 1) >> granule_shift_;
  Cookie::WriteTicket added;
  if (wend > old_size) {
    cookie.Resize(wend).IgnoreError();  // a failure withdraws the object
    const uint64_t from = std::max(first, old_granules);
    if (wlast >= from) added = cookie.PrepareWrite(from, wlast - from + 1);
  }
  if ((!existing && !added) ||
      (existing && added && !existing.SameObject(added)) ||
      (first < old_granules && !existing) ||
      (wlast >= old_granules && !added)) {
    // Part of the range has no ticket (no object, or it was replaced
    // meanwhile): store nothing; what a ticket covers stays as it was.
    if (existing) existing.Clear(existing.first(), existing.count());
    return written;
  }
  // Both tickets are on one object: either stores for the whole range.
  auto batch = std::make_shared<StoreBatch>();
  batch->tickets[0] = std::move(existing);
  batch->tickets[1] = std::move(added);
  const Cookie::WriteTicket& target =
      batch->tickets[0] ? batch->tickets[0] : batch->tickets[1];

  std::vector<PendingGranule> stores;
  for (uint64_t g = first; g <= wlast; ++g) {
    const uint64_t gs = g << granule_shift_;
    const uint64_t glen = std::min(granule, file_size - gs);
    const uint64_t ws = std::max(off, gs);
    const uint64_t we = std::min(wend, gs + glen);
    const bool whole = ws == gs && we == gs + glen;
    if (!whole && !target.IsPresent(g)) {
      Bump(stats_->granules_write_cleared);
      continue;  // the rest of it lives only on the origin
    }
    PendingGranule p;
    p.index = g;
    p.buffer = buffers_->Acquire();
    p.length = glen;
    std::memset(p.buffer.data(), 0, p.buffer.size());
    if (!whole) {
      // Present: what the write leaves alone comes from the cache.
      const uint64_t old_len =
          gs < old_size ? std::min(granule, old_size - gs) : 0;
      iovec iov{p.buffer.data(), RoundUpToIo(old_len)};
      absl::StatusOr<size_t> got = old_len == 0
                                       ? absl::StatusOr<size_t>(0)
                                       : target.ReadSync(gs, {&iov, 1});
      if (!got.ok() || *got < old_len) {
        target.Clear(g, 1);
        Bump(stats_->granules_write_cleared);
        continue;
      }
    }
    std::memcpy(p.buffer.data() + (ws - gs), data + (ws - off), we - ws);
    stores.push_back(std::move(p));
  }

  // One cache write per run of consecutive granules; the tickets go when
  // the last completes.
  std::vector<std::pair<size_t, size_t>> runs;  // [begin, end) in stores
  for (size_t i = 0; i < stores.size(); ++i) {
    if (i == 0 || stores[i].index != stores[i - 1].index + 1) {
      runs.emplace_back(i, i + 1);
    } else {
      runs.back().second = i + 1;
    }
  }
  batch->outstanding.store(static_cast<int>(runs.size()) + 1);
  for (const auto& [begin, run_end] : runs) {
    std::vector<iovec> iov;
    std::vector<Buffer> held;
    for (size_t i = begin; i < run_end; ++i) {
      iov.push_back({stores[i].buffer.data(), RoundUpToIo(stores[i].length)});
      held.push_back(std::move(stores[i].buffer));
    }
    const uint64_t count = run_end - begin;
    Bump(stats_->granules_written_through, count);
    target.Store(
        stores[begin].index, count, iov,
        [batch, held = std::move(held)](absl::StatusOr<size_t>) mutable {
          held.clear();  // back to the pool before the tickets go
          batch->Done();
        });
  }
  batch->Done();
  return written;
}

}  // namespace cachefs
