// Conversions between errno values and absl::Status.
//
// Below the FUSE layer every failure is an absl::Status. The errno that
// caused it travels with it as a payload, so the FUSE edge can hand the
// kernel the very errno the origin or the cache disk returned.

#ifndef CACHEFS_IO_ERRNO_STATUS_H_
#define CACHEFS_IO_ERRNO_STATUS_H_

#include <string_view>

#include "absl/status/status.h"

namespace cachefs {

// Returns a Status whose message is "<what>: <strerror(err)>", whose code is
// the closest absl code to `err`, and which carries `err` as a payload.
// REQUIRES: err > 0.
absl::Status ErrnoToStatus(int err, std::string_view what);

// The errno to reply with for `status`: its errno payload when it has one,
// otherwise a code-based mapping (e.g. kNotFound -> ENOENT). OK maps to 0.
int StatusToErrno(const absl::Status& status);

// Prefixes the message of a non-OK status, keeping its code and payloads.
absl::Status Annotate(const absl::Status& status, std::string_view context);

}  // namespace cachefs

#endif  // CACHEFS_IO_ERRNO_STATUS_H_
