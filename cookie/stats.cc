#include "cookie/stats.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"
#include "io/log.h"

namespace cachefs {

std::vector<std::pair<std::string, uint64_t>> CacheStats::Snapshot() const {
  auto get = [](const Counter& c) { return c.load(std::memory_order_relaxed); };
  return {
      {"cookies_acquired", get(cookies_acquired)},
      {"cookies_relinquished", get(cookies_relinquished)},
      {"cookies_active", get(cookies_active)},
      {"volumes_acquired", get(volumes_acquired)},
      {"lookups_positive", get(lookups_positive)},
      {"lookups_negative", get(lookups_negative)},
      {"lookups_stale", get(lookups_stale)},
      {"collisions", get(collisions)},
      {"dispatch_pooled", get(dispatch_pooled)},
      {"dispatch_inline", get(dispatch_inline)},
      {"granules_read_from_cache", get(granules_read_from_cache)},
      {"bytes_read_from_cache", get(bytes_read_from_cache)},
      {"bytes_read_from_origin", get(bytes_read_from_origin)},
      {"bytes_read_from_memory", get(bytes_read_from_memory)},
      {"origin_fetches", get(origin_fetches)},
      {"origin_fetch_ns", get(origin_fetch_ns)},
      {"files_read_ahead", get(files_read_ahead)},
      {"files_read_ahead_used", get(files_read_ahead_used)},
      {"granules_written_to_cache", get(granules_written_to_cache)},
      {"bytes_written_to_cache", get(bytes_written_to_cache)},
      {"reads_fully_cached", get(reads_fully_cached)},
      {"cache_writes_skipped", get(cache_writes_skipped)},
      {"bytes_written_to_origin", get(bytes_written_to_origin)},
      {"granules_written_through", get(granules_written_through)},
      {"granules_write_cleared", get(granules_write_cleared)},
      {"invalidations", get(invalidations)},
      {"checkpoints", get(checkpoints)},
      {"objects_withdrawn", get(objects_withdrawn)},
      {"cache_withdrawals", get(cache_withdrawals)},
      {"objects_moved", get(objects_moved)},
      {"objects_discarded", get(objects_discarded)},
      {"objects_unclean_discarded", get(objects_unclean_discarded)},
      {"cache_io_errors", get(cache_io_errors)},
      {"checksum_errors", get(checksum_errors)},
      {"nospace", get(nospace)},
      {"culls", get(culls)},
      {"granules_culled", get(granules_culled)},
      {"bytes_culled", get(bytes_culled)},
      {"cull_passes", get(cull_passes)},
      {"prefetch_files", get(prefetch_files)},
      {"prefetch_bytes", get(prefetch_bytes)},
      {"pinned_files", get(pinned_files)},
      {"pinned_bytes_disk", get(pinned_bytes_disk)},
      {"pinned_bytes_memory", get(pinned_bytes_memory)},
      {"pin_releases", get(pin_releases)},
      {"pin_restores", get(pin_restores)},
      {"memory_pressure_events", get(memory_pressure_events)},
      {"hotset_programs", get(hotset_programs)},
      {"hotset_replays", get(hotset_replays)},
      {"hotset_bytes_pushed", get(hotset_bytes_pushed)},
      {"fuse_reads", get(fuse_reads)},
      {"origin_state_changes", get(origin_state_changes)},
      {"origin_timeouts", get(origin_timeouts)},
      {"offline_lookups", get(offline_lookups)},
      {"offline_reads", get(offline_reads)},
      {"offline_refusals", get(offline_refusals)},
      {"listings_answered_at_once", get(listings_answered_at_once)},
  };
}

void CountCacheFault(CacheStats& stats, const absl::Status& status) {
  int err = StatusToErrno(status);
  if (err == ENOSPC || err == EDQUOT) {
    Bump(stats.nospace);
    LogEvent(LogLevel::kWarning, "nospace",
             absl::StrCat("the cache filesystem is full (",
                          std::string(status.message()),
                          "): data is served from the origin uncached "
                          "until culling makes room"));
    return;
  }
  Bump(stats.cache_io_errors);
  LogEvent(LogLevel::kError, "cache-io-error",
           absl::StrCat("cache I/O error: ", std::string(status.message())));
}

}  // namespace cachefs
