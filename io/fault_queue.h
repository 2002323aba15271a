// Private to io/: the IoQueue that FaultInjectionEnv::NewIoQueue returns.
//
// How it works: Prepare asks the env for a fault. A faulted op never
// reaches the inner queue; its result (-errno) waits in the wrapper, which
// wakes the inner queue once per Submit so a blocked Reap returns and
// delivers it. Those wakes are the wrapper's own and are not passed on. For
// short writes the op's iovecs are copied, truncated, and the copy is kept
// until the op completes. Every completed write (whole or short) is
// recorded with the env as unsynced data. Any inner queue works: io_uring or
// the synchronous fallback.

#ifndef CACHEFS_IO_FAULT_QUEUE_H_
#define CACHEFS_IO_FAULT_QUEUE_H_

#include <cstddef>
#include <memory>

#include "io/env.h"
#include "io/fault_injection_env.h"

namespace cachefs {

inline constexpr size_t kShortWriteUnit = 4096;

// The length a short write transfers: half of `n`, rounded down to
// kShortWriteUnit, at least kShortWriteUnit when `n` is larger than that.
size_t ShortWriteLength(size_t n);

std::unique_ptr<IoQueue> NewFaultQueue(FaultInjectionEnv* env,
                                       std::unique_ptr<IoQueue> inner);

}  // namespace cachefs

#endif  // CACHEFS_IO_FAULT_QUEUE_H_
