// Private to io/: the two IoQueue implementations behind PosixEnv.
//
// NewUringQueue is the real data path: one io_uring whose submission side is
// driven by the queue's owner (under its submission lock) and whose
// completion side is reaped by one thread; wakes come through an eventfd
// the reaper polls beside the ring. NewSyncIoQueue is the fallback when
// ring setup fails (io_uring disabled by sysctl, seccomp, an old kernel):
// Submit performs each op with preadv/pwritev on the thread that submits
// (for the IoEngine, its completion thread) and hands the result to Reap,
// so callers see the same contract, only without overlap.

#ifndef CACHEFS_IO_URING_QUEUE_H_
#define CACHEFS_IO_URING_QUEUE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "io/env.h"

namespace cachefs {

// Fails (with the errno of io_uring_queue_init) when no ring can be set up.
absl::StatusOr<std::unique_ptr<IoQueue>> NewUringQueue(unsigned depth);

std::unique_ptr<IoQueue> NewSyncIoQueue(unsigned depth);

}  // namespace cachefs

#endif  // CACHEFS_IO_URING_QUEUE_H_
