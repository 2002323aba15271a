#include "netfs/open_origin.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "io/errno_status.h"
#include "netfs/hang_guard.h"
#include "netfs/late_origin.h"
#include "netfs/mount_table.h"

namespace cachefs {

namespace {

// The directory's real path, checked to be a directory.
absl::StatusOr<std::string> RealDirectory(const std::string& arg) {
  char buf[PATH_MAX];
  if (realpath(arg.c_str(), buf) == nullptr) {
    return ErrnoToStatus(errno, absl::StrCat("origin ", arg));
  }
  struct stat st;
  if (stat(buf, &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("origin ", buf));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("origin ", buf, " is not a directory"));
  }
  return std::string(buf);
}

// `arg` made absolute and free of "." and "..", without asking the
// filesystem.
std::string LexicalAbsolute(const std::string& arg) {
  std::string joined = arg;
  if (arg.empty() || arg[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) {
      joined = absl::StrCat(cwd, "/", arg);
    }
  }
  std::vector<std::string> names;
  for (absl::string_view name : absl::StrSplit(joined, '/')) {
    if (name.empty() || name == ".") continue;
    if (name == "..") {
      if (!names.empty()) names.pop_back();
      continue;
    }
    names.emplace_back(name);
  }
  return "/" + absl::StrJoin(names, "/");
}

}  // namespace

absl::StatusOr<OriginArgument> ParseOriginArgument(const std::string& arg,
                                                   absl::Duration timeout) {
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
  HangGuard guard(timeout, /*enabled=*/timeout != absl::InfiniteDuration());
  absl::StatusOr<std::string> directory = guard.Run<std::string>(
      "check of origin " + arg, [arg] { return RealDirectory(arg); });
  if (directory.ok()) {
    out.directory = *std::move(directory);
  } else if (SaysUnreachable(directory.status())) {
    out.directory = LexicalAbsolute(arg);
    out.unreachable = directory.status();
  } else {
    return directory.status();
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

absl::StatusOr<std::unique_ptr<Origin>> OpenOriginWithin(
    const OriginArgument& arg, const OriginOptions& options,
    absl::Duration timeout) {
  HangGuard guard(timeout, /*enabled=*/true);
  return guard.Run<std::unique_ptr<Origin>>(
      "open of origin " + arg.Describe(),
      [arg, options] { return OpenOrigin(arg, options); });
}

std::unique_ptr<Origin> OpenOriginLater(const OriginArgument& arg,
                                        const OriginOptions& options,
                                        absl::Status why) {
  Origin::Traits traits = NfsOrigin::KnownTraits();
  std::string mounted;  // the export at the directory now
  if (!arg.nfs.has_value()) {
    traits = Origin::Traits();
    absl::StatusOr<std::vector<MountEntry>> table = ReadMountTable();
    const MountEntry* mount =
        table.ok() ? FindMountOf(*table, arg.directory) : nullptr;
    if (mount != nullptr) {
      traits = PosixOrigin::TraitsOfMountType(mount->fs_type);
      mounted = OriginVolumeKey(*table, arg.directory);
    }
  }
  return std::make_unique<LateOrigin>(
      arg.Describe(), std::move(traits), std::move(why),
      [arg, options, mounted]() -> absl::StatusOr<std::unique_ptr<Origin>> {
        // The same export only: a dead mount taken away leaves the
        // directory beneath it, which is not the origin.
        if (!mounted.empty()) {
          absl::StatusOr<std::string> now = CurrentOriginKey(arg.directory);
          if (!now.ok() || *now != mounted) {
            return ErrnoToStatus(
                ENOTCONN, absl::StrCat("origin ", arg.directory, " holds ",
                                       now.ok() ? *now : "nothing known",
                                       ", not ", mounted));
          }
        }
        return OpenOrigin(arg, options);
      });
}

}  // namespace cachefs
