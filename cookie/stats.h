// CacheStats: event counters in the style of the kernel's fscache stats,
// shown by `cachefs-ctl stats`. Each field is one monotonic counter except
// where marked as a gauge.
//
// Thread safety: every field is an independent relaxed atomic.

#ifndef CACHEFS_COOKIE_STATS_H_
#define CACHEFS_COOKIE_STATS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace cachefs {

struct CacheStats {
  using Counter = std::atomic<uint64_t>;

  // Cookies.
  Counter cookies_acquired{0};
  Counter cookies_relinquished{0};
  Counter cookies_active{0};  // gauge
  Counter volumes_acquired{0};
  // Instantiation lookups: an object found and current, none found, or
  // found but stale (aux or size differ, dirty, hash collision, unreadable).
  Counter lookups_positive{0};
  Counter lookups_negative{0};
  Counter lookups_stale{0};
  Counter collisions{0};
  // The dispatcher: jobs handed to an idle pool thread, or run by the caller.
  Counter dispatch_pooled{0};
  Counter dispatch_inline{0};
  // Data.
  Counter granules_read_from_cache{0};
  Counter bytes_read_from_cache{0};
  Counter bytes_read_from_origin{0};
  // Of bytes_read_from_cache, those served from pages a pin holds in
  // memory, with no disk I/O.
  Counter bytes_read_from_memory{0};
  // Granule reads from the origin and the time they took, summed: their
  // quotient is the origin's latency as the read path sees it.
  Counter origin_fetches{0};
  // Small files of a directory fetched whole ahead of their open
  // (sibling_read_ahead.h), and those an open took.
  Counter files_read_ahead{0};
  Counter files_read_ahead_used{0};
  Counter origin_fetch_ns{0};
  Counter granules_written_to_cache{0};
  Counter bytes_written_to_cache{0};
  Counter reads_fully_cached{0};
  Counter cache_writes_skipped{0};  // granule already present or in flight
  // Write-through: bytes the origin accepted through cachefs, and granules
  // the writes stored in the cache or had to leave uncached (partly
  // written and not cached before).
  Counter bytes_written_to_origin{0};
  Counter granules_written_through{0};
  Counter granules_write_cleared{0};
  // Object lifecycle.
  Counter invalidations{0};
  Counter checkpoints{0};
  Counter objects_withdrawn{0};
  // The whole cache taken out of service (its directory removed or made
  // read-only).
  Counter cache_withdrawals{0};
  Counter objects_moved{0};      // carried along by a rename
  Counter objects_discarded{0};  // their origin file was deleted
  // Found not closed cleanly after a stop without an unmount.
  Counter objects_unclean_discarded{0};
  Counter cache_io_errors{0};
  // Granules read from the cache whose data failed its checksum.
  Counter checksum_errors{0};
  Counter nospace{0};
  // Culling: objects and bytes removed to stay inside the limits (whole
  // objects, and cold granules of open ones), and the passes that did it.
  Counter culls{0};
  Counter granules_culled{0};
  Counter bytes_culled{0};
  Counter cull_passes{0};
  // Prefetch (prefetch/prefetch.h): files brought whole into the cache by
  // prefetch jobs, and the bytes those jobs read from the origin.
  Counter prefetch_files{0};
  Counter prefetch_bytes{0};
  // Pins: files pinned (gauge) and the bytes of those whole on disk
  // (gauge).
  Counter pinned_files{0};
  Counter pinned_bytes_disk{0};
  Counter pinned_bytes_memory{0};  // gauge
  // Memory pins let go under memory pressure, and taken again after it.
  Counter pin_releases{0};
  Counter pin_restores{0};
  Counter memory_pressure_events{0};
  // Hot sets: programs with a trace (gauge), traces replayed, and the
  // bytes the replays pushed into the kernel's page cache.
  Counter hotset_programs{0};
  Counter hotset_replays{0};
  Counter hotset_bytes_pushed{0};
  // Read requests from the kernel.
  Counter fuse_reads{0};
  // The origin going down and coming back (origin_health.h), calls that
  // outlasted -o origin_timeout, and what was served or refused while it
  // was down: lookups and attributes answered from what was known, reads
  // served from the cache, and requests refused (uncached data, changes).
  Counter origin_state_changes{0};
  Counter origin_timeouts{0};
  Counter offline_lookups{0};
  Counter offline_reads{0};
  Counter offline_refusals{0};
  // With -o nocto: directory listings answered at once as last read, and
  // read again from the origin behind the reply.
  Counter listings_answered_at_once{0};

  // Every counter by its stable name, for printing and JSON.
  std::vector<std::pair<std::string, uint64_t>> Snapshot() const;
};

// Adds `n` to a counter with relaxed ordering.
inline void Bump(CacheStats::Counter& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

// Counts a failed cache operation: ENOSPC (and EDQUOT) as `nospace`, which
// never poisons the cache, anything else as `cache_io_errors`.
void CountCacheFault(CacheStats& stats, const absl::Status& status);

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_STATS_H_
