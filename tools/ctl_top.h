// `cachefs-ctl top`: a live view of one mount, made by cachefs-ctl from
// the daemon's `stats --json` (sampled every second) and its `trace
// --json` stream (the reads, summed by file).

#ifndef CACHEFS_TOOLS_CTL_TOP_H_
#define CACHEFS_TOOLS_CTL_TOP_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace cachefs {

// What one report shows: the counters at its end and at the previous
// report's, and the bytes each file was read in between.
struct TopSample {
  absl::flat_hash_map<std::string, uint64_t> counters;
  int64_t at_ns = 0;  // CLOCK_MONOTONIC
};

struct FileReads {
  uint64_t hit_bytes = 0;
  uint64_t miss_bytes = 0;
};

// The report's text (no terminal control sequences). `trace_note` is
// shown in place of the file list when the trace is not available.
std::string RenderTop(
    const std::string& mountpoint, const TopSample& before,
    const TopSample& now,
    const absl::flat_hash_map<std::string, FileReads>& files,
    const std::string& trace_note, size_t max_files);

// Runs the view until interrupted, or for `count` reports if count > 0;
// returns the exit code.
int RunTop(const std::string& mountpoint, int count);

}  // namespace cachefs

#endif  // CACHEFS_TOOLS_CTL_TOP_H_
