// What the daemon answers on its control socket: `stats` and `status`,
// as readable text or, with --json, one JSON object.

#ifndef CACHEFS_CACHEFS_CONTROL_REPLY_H_
#define CACHEFS_CACHEFS_CONTROL_REPLY_H_

#include <cstdint>
#include <string>

#include "cookie/cache.h"
#include "cookie/volume.h"
#include "cull/culler.h"

namespace cachefs {

// Facts about the running mount for `status`.
struct MountFacts {
  std::string origin;
  std::string mountpoint;
  std::string cache_dir;
  std::string volume_key;
  std::string options;  // the options in force, as "key=value,..."
  int64_t started_ns = 0;  // CLOCK_MONOTONIC
};

// Answers one control request ("stats", "status", "ls", each with an
// optional " --json", and "cull" with an optional " BYTES"); anything else
// gets "error: ...". `culler` may be null (no culling).
std::string ControlReply(const std::string& request, const MountFacts& facts,
                         Cache& cache, Volume* volume, Culler* culler);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CONTROL_REPLY_H_
