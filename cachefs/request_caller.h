// The caller of the FUSE request a thread is serving. The front end names
// it for the length of a request (ScopedRequestCaller); CacheFs hands it to
// every origin call it makes for that request, and the daemon's own work
// (reads ahead, prefetch, the shared read-only origin files) goes as
// Caller::Daemon().

#ifndef CACHEFS_CACHEFS_REQUEST_CALLER_H_
#define CACHEFS_CACHEFS_REQUEST_CALLER_H_

#include "netfs/caller.h"

namespace cachefs {

// The caller named on this thread, or Caller::Daemon() outside a request.
const Caller& RequestCaller();

// Whether the origin will act for someone other than the daemon: a caller
// is named and the daemon can take on other users (it runs as root).
bool ActingForOtherUser();

// Names `caller` as this thread's request caller until destroyed.
class ScopedRequestCaller {
 public:
  explicit ScopedRequestCaller(Caller caller);
  ~ScopedRequestCaller();
  ScopedRequestCaller(const ScopedRequestCaller&) = delete;
  ScopedRequestCaller& operator=(const ScopedRequestCaller&) = delete;

 private:
  const Caller caller_;
  const Caller* const outer_;
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_REQUEST_CALLER_H_
