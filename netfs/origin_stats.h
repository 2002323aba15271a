// OriginStats: what cachefs asked of the origin, one counter per kind of
// request, shown by `cachefs-ctl stats` beside the cache's own counters.
// Each counted request may cost a round trip to the server (one SFTP or NFS
// request for a backend on SSHFS or NFS), so `calls`, their sum, is the
// number to watch over a slow link.
//
// Thread safety: every field is an independent relaxed atomic.

#ifndef CACHEFS_NETFS_ORIGIN_STATS_H_
#define CACHEFS_NETFS_ORIGIN_STATS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cachefs {

struct OriginStats {
  using Counter = std::atomic<uint64_t>;

  // Fresh attributes of one file (a lookup by name or a getattr).
  Counter attr_fetches{0};
  // Directories looked up only to reach a path below them.
  Counter walks{0};
  // Files opened, for reading or writing, and files created.
  Counter opens{0};
  // Reads and writes of open files.
  Counter reads{0};
  Counter writes{0};
  // Directory listings opened.
  Counter dir_opens{0};
  // Namespace and attribute changes (mkdir, unlink, rename, chmod, ...).
  Counter changes{0};
  // Everything else: readlink, statfs, access, xattrs, fsync, flush,
  // truncate and fstat of open files, ...
  Counter other{0};

  // Every counter by its stable name ("origin_" + kind), then their sum
  // as "origin_calls".
  std::vector<std::pair<std::string, uint64_t>> Snapshot() const;
};

inline void Count(OriginStats::Counter& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace cachefs

#endif  // CACHEFS_NETFS_ORIGIN_STATS_H_
