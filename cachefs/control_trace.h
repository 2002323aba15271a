// `cachefs-ctl trace`: the daemon's side of the event stream. Listens to
// the cache's tracer for as long as the client reads, and writes each
// event as a line of text or of JSON.

#ifndef CACHEFS_CACHEFS_CONTROL_TRACE_H_
#define CACHEFS_CACHEFS_CONTROL_TRACE_H_

#include <string>

#include "cachefs/control_socket.h"
#include "cookie/tracer.h"

namespace cachefs {

// Serves one `trace` request on `stream` until the client goes away or the
// daemon stops.
void StreamTrace(const std::string& request, Tracer& tracer,
                 ControlStream& stream);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CONTROL_TRACE_H_
