// The kernel's read-ahead window for the mount. FUSE lets the daemon only
// lower it at INIT (the kernel starts a FUSE mount at 128 KiB, so large
// sequential reads reach the daemon as 128 KiB requests with about one in
// flight); the mount's backing device's read_ahead_kb in sysfs raises it.
// Writing that needs root.

#ifndef CACHEFS_CACHEFS_KERNEL_READAHEAD_H_
#define CACHEFS_CACHEFS_KERNEL_READAHEAD_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace cachefs {

// The sysfs file of the backing device `dev` (a FUSE mount's st_dev).
std::string ReadAheadFile(dev_t dev);

// Sets the read-ahead window of the mount at `mountpoint` to `bytes`
// (rounded down to KiB). Asks the mount for its device first, so call it
// once the session serves requests (after INIT, which would undo it).
absl::Status SetKernelReadAhead(const std::string& mountpoint, uint64_t bytes);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_KERNEL_READAHEAD_H_
