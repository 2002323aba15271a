// The one place that knows which backends exist: the daemon's ORIGIN
// argument names one, and each backend checks its own argument.
//
//   /a/directory                  PosixOrigin (a mounted SSHFS, NFS, ...)
//   nfs://host[:port]/export/...  NfsOrigin (libnfs, no kernel mount)

#ifndef CACHEFS_NETFS_OPEN_ORIGIN_H_
#define CACHEFS_NETFS_OPEN_ORIGIN_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netfs/nfs_origin.h"
#include "netfs/nfs_url.h"
#include "netfs/origin.h"
#include "netfs/posix_origin.h"

namespace cachefs {

struct OriginArgument {
  // The origin directory's real path, for the posix backend.
  std::string directory;
  // Or the export, for the NFS backend.
  std::optional<NfsUrl> nfs;
  // Not OK when the directory did not answer while it was checked (a
  // stopped or dead SSHFS or NFS client under it): `directory` is then
  // the path as given, made absolute, unchecked.
  absl::Status unreachable;

  // What `status` and messages call it.
  std::string Describe() const {
    return nfs.has_value() ? nfs->ToString() : directory;
  }
};

struct OriginOptions {
  PosixOrigin::Options posix;
  NfsOrigin::Options nfs;
};

// Checks ORIGIN as given on the command line: a URL must parse, a
// directory must exist and be one. Errors name the argument. A directory
// that does not answer within `timeout`, or says it cannot reach its
// server, is taken as given, with `unreachable` set.
absl::StatusOr<OriginArgument> ParseOriginArgument(
    const std::string& arg, absl::Duration timeout = absl::InfiniteDuration());

// Opens the backend `arg` names (for NFS: connects and mounts).
absl::StatusOr<std::unique_ptr<Origin>> OpenOrigin(const OriginArgument& arg,
                                                   const OriginOptions& options);

// OpenOrigin, given up after `timeout` with ETIMEDOUT (an open into a
// stopped server blocks; its thread is left to finish by itself).
absl::StatusOr<std::unique_ptr<Origin>> OpenOriginWithin(
    const OriginArgument& arg, const OriginOptions& options,
    absl::Duration timeout);

// An origin that could not be opened (`why`), opened by its first call
// after the server answers again (late_origin.h).
std::unique_ptr<Origin> OpenOriginLater(const OriginArgument& arg,
                                        const OriginOptions& options,
                                        absl::Status why);

}  // namespace cachefs

#endif  // CACHEFS_NETFS_OPEN_ORIGIN_H_
