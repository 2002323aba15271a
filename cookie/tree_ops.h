// Directory-tree helpers over the Env: mkdir -p and rm -r.

#ifndef CACHEFS_COOKIE_TREE_OPS_H_
#define CACHEFS_COOKIE_TREE_OPS_H_

#include <string>

#include "absl/status/status.h"
#include "io/env.h"

namespace cachefs {

// Creates `path` and any missing parents (mode 0700 for those it makes).
absl::Status MakeDirs(Env* env, const std::string& path);

// Removes `path` under `dirfd` and everything below it. Stops at the first
// error it cannot get past and returns it; entries already gone are fine.
absl::Status RemoveTree(Env* env, int dirfd, const std::string& path);

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_TREE_OPS_H_
