#include "cachefs/control_trace.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cachefs/control_commands.h"

namespace cachefs {

void StreamTrace(const std::string& request, Tracer& tracer,
                 ControlStream& stream) {
  absl::StatusOr<ControlCall> call = DecodeControlCall(request);
  if (!call.ok() || call->command != "trace") {
    stream.Write(absl::StrCat("error: not a trace request: ", request, "\n"));
    return;
  }
  const bool json = call->json;
  std::shared_ptr<Tracer::Listener> listener = tracer.Listen();
  // Bounded by the client: each turn waits at most this long for events,
  // then looks whether the client is still there.
  constexpr absl::Duration kTurn = absl::Milliseconds(200);
  while (stream.open()) {
    uint64_t dropped = 0;
    std::vector<TraceEvent> events = listener->Take(kTurn, &dropped);
    std::string out;
    if (dropped != 0) {
      out = json ? absl::StrCat("{\"kind\": \"dropped\", \"events\": ", dropped,
                                "}\n")
                 : absl::StrCat("(", dropped,
                                " events dropped: the reader fell behind)\n");
    }
    for (const TraceEvent& event : events) {
      out += json ? FormatTraceEventJson(event) : FormatTraceEvent(event);
    }
    if (!out.empty() && !stream.Write(out)) break;
  }
  tracer.Unlisten(listener);
}

}  // namespace cachefs
