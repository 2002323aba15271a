// The prefetch layer's commands, the daemon's side: `prefetch`, `jobs`,
// and the pins' `pin`, `unpin`, `pins` and `reload`. A prefetch call is
// a stream: the job's progress as lines of "progress" until it ends, then
// the line "end" and the summary (text, or one JSON object); the client
// going away cancels the job. With --background the stream says which
// job started, and the job runs on.

#ifndef CACHEFS_CACHEFS_CONTROL_PREFETCH_H_
#define CACHEFS_CACHEFS_CONTROL_PREFETCH_H_

#include <string>

#include "cachefs/control_commands.h"
#include "cachefs/control_socket.h"
#include "prefetch/prefetch.h"

namespace cachefs {

// A progress line: "progress STATE FILES_DONE FILES_TOTAL BYTES_DONE
// BYTES_TOTAL BYTES_FETCHED FILES_FAILED SECONDS\n".
std::string PrefetchProgressLine(const PrefetchJob& job);
inline constexpr char kPrefetchEndLine[] = "end\n";

// Serves one `prefetch` call on `stream`.
void StreamPrefetch(const ControlCall& call, Prefetcher& prefetcher,
                    ControlStream& stream);

// The answer to `jobs`.
std::string JobsReply(const ControlCall& call, const Prefetcher& prefetcher);

// The answer to `pin`, `unpin`, `pins` or `reload`.
std::string PinsReply(const ControlCall& call, PinSet& pins);

// The answer to `hotsets`.
std::string HotSetsReply(const ControlCall& call, HotSets& hotsets);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CONTROL_PREFETCH_H_
