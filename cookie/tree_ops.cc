#include "cookie/tree_ops.h"

#include <dirent.h>
#include <fcntl.h>

#include "io/errno_status.h"

namespace cachefs {

absl::Status MakeDirs(Env* env, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory path");
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    absl::Status status = env->MkdirAt(AT_FDCWD, prefix, 0700);
    if (!status.ok() && !absl::IsAlreadyExists(status)) return status;
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

absl::Status RemoveTree(Env* env, int dirfd, const std::string& path) {
  absl::Status status = env->UnlinkAt(dirfd, path, 0);
  if (status.ok() || absl::IsNotFound(status)) return absl::OkStatus();
  int err = StatusToErrno(status);
  if (err != EISDIR && err != EPERM) return status;
  absl::StatusOr<int> fd =
      env->OpenAt(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<std::vector<DirEntry>> entries = env->ReadDir(*fd, ".");
  if (entries.ok()) {
    for (const DirEntry& entry : *entries) {
      if (entry.name == "." || entry.name == "..") continue;
      status = RemoveTree(env, *fd, entry.name);
      if (!status.ok()) break;
    }
  } else {
    status = entries.status();
  }
  env->Close(*fd).IgnoreError();
  if (!status.ok()) return status;
  status = env->UnlinkAt(dirfd, path, AT_REMOVEDIR);
  if (absl::IsNotFound(status)) return absl::OkStatus();
  return status;
}

}  // namespace cachefs
