#include "cookie/tracer.h"

#include <time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "io/json_string.h"

namespace cachefs {
namespace {

std::string ClockTime(int64_t ns) {
  time_t seconds = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  localtime_r(&seconds, &tm);
  return absl::StrFormat("%02d:%02d:%02d.%06d", tm.tm_hour, tm.tm_min,
                         tm.tm_sec, (ns % 1000000000) / 1000);
}

}  // namespace

std::string FormatTraceEvent(const TraceEvent& event) {
  std::string out = absl::StrCat(ClockTime(event.time_ns), " ", event.kind);
  if (!event.key.empty()) absl::StrAppend(&out, " ", event.key);
  if (event.count == 1) {
    absl::StrAppend(&out, " granule ", event.first);
  } else if (event.count > 1) {
    absl::StrAppend(&out, " granules ", event.first, "-",
                    event.first + event.count - 1);
  }
  if (event.bytes != 0) absl::StrAppend(&out, " bytes ", event.bytes);
  if (!event.detail.empty()) absl::StrAppend(&out, " ", event.detail);
  return out + "\n";
}

std::string FormatTraceEventJson(const TraceEvent& event) {
  std::string out = absl::StrFormat(
      "{\"time\": %d.%06d, \"kind\": %s", event.time_ns / 1000000000,
      (event.time_ns % 1000000000) / 1000, JsonString(event.kind));
  if (!event.key.empty())
    absl::StrAppend(&out, ", \"path\": ", JsonString(event.key));
  if (event.count != 0) {
    absl::StrAppend(&out, ", \"first_granule\": ", event.first,
                    ", \"granules\": ", event.count);
  }
  if (event.bytes != 0) absl::StrAppend(&out, ", \"bytes\": ", event.bytes);
  if (!event.detail.empty()) {
    absl::StrAppend(&out, ", \"detail\": ", JsonString(event.detail));
  }
  return out + "}\n";
}

void Tracer::Listener::Push(const TraceEvent& event) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= capacity_) {
    ++dropped_;
    return;
  }
  queue_.push_back(event);
}

std::vector<TraceEvent> Tracer::Listener::Take(absl::Duration timeout,
                                               uint64_t* dropped) {
  absl::MutexLock lock(&mu_);
  auto has_events = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || dropped_ != 0;
  };
  mu_.AwaitWithTimeout(absl::Condition(&has_events), timeout);
  std::vector<TraceEvent> events(std::make_move_iterator(queue_.begin()),
                                 std::make_move_iterator(queue_.end()));
  queue_.clear();
  *dropped = std::exchange(dropped_, 0);
  return events;
}

void Tracer::Emit(TraceEvent event) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  event.time_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<Listener>& listener : listeners_) {
    listener->Push(event);
  }
}

std::shared_ptr<Tracer::Listener> Tracer::Listen(size_t capacity) {
  auto listener = std::make_shared<Listener>(capacity);
  absl::MutexLock lock(&mu_);
  listeners_.push_back(listener);
  listening_.fetch_add(1, std::memory_order_relaxed);
  return listener;
}

void Tracer::Unlisten(const std::shared_ptr<Listener>& listener) {
  absl::MutexLock lock(&mu_);
  auto it = std::find(listeners_.begin(), listeners_.end(), listener);
  if (it == listeners_.end()) return;
  listeners_.erase(it);
  listening_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace cachefs
