// Tracer: the structured event trace behind `cachefs-ctl trace`: cookie
// acquire and relinquish, lookups, reads (hits and misses by granule
// range), fills from the origin, stores into the cache, invalidations,
// culls and withdrawals, the events the seed's tracepoints would show.
//
// Off unless someone listens. A trace site costs one relaxed atomic load
// while nobody does:
//
//   if (tracer.active()) tracer.Emit(TraceEvent("read", key).Bytes(n));
//
// Each listener has a bounded queue: a listener that falls behind loses
// events (counted, and told in the stream), never slows the cache.
//
// Thread safety: every method may be called from any thread; Emit takes
// only the tracer's and the listeners' own locks, never a cache lock, so
// it may be called with cache locks held.

#ifndef CACHEFS_COOKIE_TRACER_H_
#define CACHEFS_COOKIE_TRACER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cachefs {

struct TraceEvent {
  TraceEvent(const char* kind, std::string key)
      : kind(kind), key(std::move(key)) {}
  TraceEvent& Granules(uint64_t first_granule, uint64_t granules) {
    first = first_granule;
    count = granules;
    return *this;
  }
  TraceEvent& Bytes(uint64_t n) {
    bytes = n;
    return *this;
  }
  TraceEvent& Detail(std::string text) {
    detail = std::move(text);
    return *this;
  }

  // "acquire", "relinquish", "lookup", "read", "fill", "store",
  // "invalidate", "cull", "withdraw".
  const char* kind;
  // The file's key (its path below the mount root) or, for cache-wide
  // events, empty.
  std::string key;
  // Granules first .. first + count - 1, when the event is about a range.
  uint64_t first = 0;
  uint64_t count = 0;
  uint64_t bytes = 0;
  // The outcome or the reason: "hit", "miss", "positive", an error.
  std::string detail;
  int64_t time_ns = 0;  // CLOCK_REALTIME, set by Emit
};

// One line: "HH:MM:SS.mmmuuu kind key [granules a-b] [bytes N] [detail]".
std::string FormatTraceEvent(const TraceEvent& event);
// One JSON object on one line.
std::string FormatTraceEventJson(const TraceEvent& event);

class Tracer {
 public:
  class Listener {
   public:
    explicit Listener(size_t capacity) : capacity_(capacity) {}
    // Waits up to `timeout` for events; returns those queued (maybe none)
    // and, in *dropped, how many were lost since the last call.
    std::vector<TraceEvent> Take(absl::Duration timeout, uint64_t* dropped);

   private:
    friend class Tracer;
    void Push(const TraceEvent& event);

    const size_t capacity_;
    absl::Mutex mu_;
    std::deque<TraceEvent> queue_ ABSL_GUARDED_BY(mu_);
    uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  };

  bool active() const { return listening_.load(std::memory_order_relaxed) > 0; }
  void Emit(TraceEvent event);

  // A new listener, served until Unlisten.
  std::shared_ptr<Listener> Listen(size_t capacity = 65536);
  void Unlisten(const std::shared_ptr<Listener>& listener);

 private:
  std::atomic<int> listening_{0};
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Listener>> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_TRACER_H_
