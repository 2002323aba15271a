// Opening cache files for the IoEngine, and probing a directory for
// O_DIRECT support.
//
// Linux checks O_DIRECT support at open time and fails with EINVAL after
// the name has been looked up (and, with O_CREAT, created), so a refused
// direct open is told apart from other EINVALs by repeating it without
// O_DIRECT.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"
#include "io/io_engine.h"

namespace cachefs {
namespace {

bool IsTmpFile(int flags) { return (flags & O_TMPFILE) == O_TMPFILE; }

// The probe's fallback for filesystems without O_TMPFILE: a fresh name,
// opened again with O_DIRECT and removed.
absl::StatusOr<bool> ProbeWithName(Env* env, int dirfd) {
  static std::atomic<uint64_t> counter{0};
  const std::string name = absl::StrCat(".cachefs-odirect-probe.", getpid(),
                                        ".", counter.fetch_add(1));
  absl::StatusOr<int> created =
      env->OpenAt(dirfd, name, O_CREAT | O_EXCL | O_RDWR, 0600);
  if (!created.ok()) return created.status();
  env->Close(*created).IgnoreError();
  absl::StatusOr<int> direct = env->OpenAt(dirfd, name, O_RDWR | O_DIRECT, 0);
  absl::Status removed = env->UnlinkAt(dirfd, name, 0);
  if (direct.ok()) env->Close(*direct).IgnoreError();
  if (!removed.ok()) return removed;
  if (direct.ok()) return true;
  if (StatusToErrno(direct.status()) == EINVAL) return false;
  return direct.status();
}

}  // namespace

absl::StatusOr<int> OpenBackingFile(Env* env, int dirfd,
                                    const std::string& path, int flags,
                                    mode_t mode, bool allow_buffered,
                                    bool* direct) {
  absl::StatusOr<int> fd = env->OpenAt(dirfd, path, flags | O_DIRECT, mode);
  if (fd.ok() || StatusToErrno(fd.status()) != EINVAL) {
    if (fd.ok() && direct != nullptr) *direct = true;
    return fd;
  }
  int retry_flags = flags & ~O_DIRECT;
  // The refused open already created the file that O_EXCL asked for.
  const bool created = !IsTmpFile(flags) && (flags & O_CREAT) != 0 &&
                       (flags & O_EXCL) != 0;
  if (created) retry_flags &= ~O_EXCL;
  absl::StatusOr<int> buffered = env->OpenAt(dirfd, path, retry_flags, mode);
  if (!buffered.ok()) return buffered.status();  // EINVAL was not O_DIRECT
  if (allow_buffered) {
    if (direct != nullptr) *direct = false;
    return buffered;
  }
  env->Close(*buffered).IgnoreError();
  if (created) env->UnlinkAt(dirfd, path, 0).IgnoreError();
  return ErrnoToStatus(
      EINVAL, absl::StrCat("open ", path,
                           ": the filesystem does not support O_DIRECT "
                           "(direct I/O) and buffered I/O was not allowed"));
}

absl::StatusOr<bool> DirectIoSupported(Env* env, int dirfd) {
  absl::StatusOr<int> fd =
      env->OpenAt(dirfd, ".", O_TMPFILE | O_RDWR | O_DIRECT, 0600);
  if (fd.ok()) {
    env->Close(*fd).IgnoreError();
    return true;
  }
  int err = StatusToErrno(fd.status());
  if (err == EINVAL) {
    // Either O_DIRECT or O_TMPFILE was refused; without O_DIRECT tells which.
    absl::StatusOr<int> plain = env->OpenAt(dirfd, ".", O_TMPFILE | O_RDWR, 0600);
    if (plain.ok()) {
      env->Close(*plain).IgnoreError();
      return false;
    }
    err = StatusToErrno(plain.status());
    if (err != EINVAL && err != EOPNOTSUPP && err != EISDIR) {
      return plain.status();
    }
  } else if (err != EOPNOTSUPP && err != EISDIR) {
    return fd.status();
  }
  return ProbeWithName(env, dirfd);
}

}  // namespace cachefs
