#include "netfs/open_origin.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {

absl::StatusOr<OriginArgument> ParseOriginArgument(const std::string& arg) {
  OriginArgument out;
  if (LooksLikeNfsUrl(arg)) {
    absl::StatusOr<NfsUrl> url = ParseNfsUrl(arg);
    if (!url.ok()) return url.status();
    out.nfs = *std::move(url);
    return out;
  }
  if (arg.find("://") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "origin ", arg,
        ": not a directory, and nfs:// is the only URL scheme cachefs "
        "reaches by itself (mount other exports and give their directory)"));
  }
  char buf[PATH_MAX];
  if (realpath(arg.c_str(), buf) == nullptr) {
    return ErrnoToStatus(errno, absl::StrCat("origin ", arg));
  }
  out.directory = buf;
  struct stat st;
  if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("origin ", out.directory, " is not a directory"));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Origin>> OpenOrigin(
    const OriginArgument& arg, const OriginOptions& options) {
  if (arg.nfs.has_value()) {
    absl::StatusOr<std::unique_ptr<NfsOrigin>> nfs =
        NfsOrigin::Open(*arg.nfs, options.nfs);
    if (!nfs.ok()) return nfs.status();
    return std::unique_ptr<Origin>(*std::move(nfs));
  }
  absl::StatusOr<std::unique_ptr<PosixOrigin>> posix =
      PosixOrigin::Open(arg.directory, options.posix);
  if (!posix.ok()) return posix.status();
  return std::unique_ptr<Origin>(*std::move(posix));
}

}  // namespace cachefs
