// The path rule every backend enforces (see origin.h): names joined by
// '/', "" for the root, no empty, "." or ".." name, no NUL.

#ifndef CACHEFS_NETFS_ORIGIN_PATH_H_
#define CACHEFS_NETFS_ORIGIN_PATH_H_

#include <string>

#include "absl/status/status.h"

namespace cachefs {

// kInvalidArgument naming `path` unless it is a path inside the origin.
absl::Status CheckOriginPath(const std::string& path);

}  // namespace cachefs

#endif  // CACHEFS_NETFS_ORIGIN_PATH_H_
