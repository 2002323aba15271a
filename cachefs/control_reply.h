// What the daemon answers on its control socket: `stats` and `status`,
// as readable text or, with --json, one JSON object.

#ifndef CACHEFS_CACHEFS_CONTROL_REPLY_H_
#define CACHEFS_CACHEFS_CONTROL_REPLY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "cachefs/cache_fs.h"
#include "cookie/cache.h"
#include "cookie/volume.h"
#include "cull/culler.h"
#include "netfs/origin.h"
#include "prefetch/prefetch.h"

namespace cachefs {

// Facts about the running mount for `status`.
struct MountFacts {
  std::string origin;
  std::string mountpoint;
  std::string cache_dir;
  std::string volume_key;
  std::string options;  // the options in force, as "key=value,..."
  int64_t started_ns = 0;  // CLOCK_MONOTONIC
  // The origin, whose counters `stats` shows, asked each time (an origin
  // opened after the mount, late_origin.h, has others once it opens); may
  // be null.
  const Origin* origin_object = nullptr;
  // Pins held in memory and memory pressure, a line for `status`; may be
  // empty.
  std::function<std::string()> memory_status;
};

// Answers one control request, a call of control_commands.h as one line;
// anything else gets "error: ...". `culler` may be null (no culling), and
// so may `prefetcher`, `pins` and `hotsets`.
std::string ControlReply(const std::string& request, const MountFacts& facts,
                         Cache& cache, Volume* volume, Culler* culler,
                         CacheFs* fs, Prefetcher* prefetcher = nullptr,
                         PinSet* pins = nullptr, HotSets* hotsets = nullptr);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CONTROL_REPLY_H_
