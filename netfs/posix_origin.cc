#include "netfs/posix_origin.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "io/errno_status.h"
#include "netfs/credentials.h"
#include "netfs/mount_table.h"
#include "netfs/origin_path.h"
#include "netfs/posix_file.h"

namespace cachefs {
namespace {

// A path that reaches a descriptor through /proc, for calls without an *at
// form that accepts an O_PATH descriptor (open for I/O, xattrs).
std::string ProcPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

// openat2 that stays below `root` and follows no symlink at all (a final
// symlink is opened itself when `flags` has O_PATH | O_NOFOLLOW).
int OpenBeneath(int root, const std::string& path, int flags, mode_t mode = 0) {
  open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(
      syscall(SYS_openat2, root, path.c_str(), &how, sizeof(how)));
}

// Errors after which a kept descriptor may be the problem rather than the
// file: the name is looked up afresh.
bool MayBeStale(int err) { return err == ESTALE || err == EIO; }

Origin::Traits FuseTraits() {
  // SSHFS and other FUSE origins: inode numbers are made up per mount, and
  // SSHFS reports whole-second times.
  Origin::Traits traits;
  traits.fs_type = "fuse";
  traits.stable_inode_numbers = false;
  traits.subsecond_times = false;
  traits.calls_may_hang = true;
  return traits;
}

Origin::Traits KernelNfsTraits() {
  Origin::Traits traits;
  traits.fs_type = "nfs";
  traits.calls_may_hang = true;
  return traits;
}

absl::StatusOr<Origin::Traits> TraitsOf(int fd, const std::string& path) {
  struct statfs st;
  if (fstatfs(fd, &st) != 0) return Errno("cannot reach origin", path);
  Origin::Traits traits;
  switch (st.f_type) {
    case FUSE_SUPER_MAGIC:
      return FuseTraits();
    case NFS_SUPER_MAGIC:
      return KernelNfsTraits();
    case EXT4_SUPER_MAGIC:
      traits.fs_type = "ext4";
      break;
    case TMPFS_MAGIC:
      traits.fs_type = "tmpfs";
      break;
    default:
      traits.fs_type = absl::StrCat("0x", absl::Hex(st.f_type));
  }
  return traits;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PosixOrigin>> PosixOrigin::Open(
    const std::string& path, Options options) {
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOTDIR) {
      return absl::InvalidArgumentError(
          absl::StrCat("origin ", path, " is not a directory"));
    }
    return Errno("cannot open origin", path);
  }
  absl::StatusOr<Traits> found = TraitsOf(fd, path);
  if (!found.ok()) {
    close(fd);
    return found.status();
  }
  Traits traits = *std::move(found);
  if (listxattr(ProcPath(fd).c_str(), nullptr, 0) < 0 &&
      (errno == EOPNOTSUPP || errno == ENOSYS)) {
    traits.xattrs = false;
  }
  auto origin = std::unique_ptr<PosixOrigin>(
      new PosixOrigin(path, fd, std::move(traits), options));
  absl::StatusOr<std::string> key = CurrentOriginKey(path);
  if (key.ok()) origin->mount_key_ = *key;
  return origin;
}

Origin::Traits PosixOrigin::TraitsOfMountType(const std::string& fs_type) {
  if (fs_type == "fuse" || absl::StartsWith(fs_type, "fuse.")) {
    Traits traits = FuseTraits();
    // SSHFS has no extended attributes; whether another FUSE origin has
    // them is known once it answers.
    traits.xattrs = fs_type != "fuse.sshfs";
    return traits;
  }
  if (fs_type == "nfs" || fs_type == "nfs4") return KernelNfsTraits();
  Traits traits;
  traits.fs_type = fs_type;
  return traits;
}

PosixOrigin::PosixOrigin(std::string path, int root_fd, Traits traits,
                         Options options)
    : path_(std::move(path)),
      root_(std::make_shared<const OwnedFd>(root_fd)),
      traits_(std::move(traits)),
      keep_descriptors_(traits_.fs_type == "fuse"),
      fds_(keep_descriptors_ ? options.descriptors : 0) {}

PosixOrigin::~PosixOrigin() = default;

absl::StatusOr<PosixOrigin::Ref> PosixOrigin::Reach(
    const std::string& path, OriginStats::Counter& last, bool* looked_up) {
  if (looked_up != nullptr) *looked_up = false;
  if (path.empty()) return Root();
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  if (!keep_descriptors_) {
    Count(last);
    int fd = OpenBeneath(Root()->get(), path, O_PATH | O_NOFOLLOW);
    if (fd < 0) return Errno("lookup", path);
    if (looked_up != nullptr) *looked_up = true;
    return std::make_shared<const OwnedFd>(fd);
  }
  if (Ref kept = fds_.Find(path)) return kept;
  std::string name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  Count(last);
  int fd = openat((*parent)->get(), name.c_str(),
                  O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno("lookup", path);
  if (looked_up != nullptr) *looked_up = true;
  return fds_.Insert(path, fd);
}

absl::StatusOr<PosixOrigin::Ref> PosixOrigin::ReachParent(
    const std::string& path, std::string* name) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  if (path.empty()) {
    return absl::InvalidArgumentError("the origin root has no parent");
  }
  size_t slash = path.rfind('/');
  *name = slash == std::string::npos ? path : path.substr(slash + 1);
  return Reach(slash == std::string::npos ? "" : path.substr(0, slash),
               stats_.walks);
}

absl::StatusOr<struct stat> PosixOrigin::GetAttr(const Caller& caller,
                                                 const std::string& path) {
  ScopedCredentials as_caller(caller);
  struct stat st;
  if (keep_descriptors_ && !path.empty()) {
    if (Ref kept = fds_.Find(path)) {
      Count(stats_.attr_fetches);
      if (StatFd(kept->get(), AT_STATX_FORCE_SYNC, &st) == 0) return st;
      const int err = errno;
      fds_.Forget(path);
      if (!MayBeStale(err)) {
        errno = err;
        return Errno("stat", path);
      }
    }
    // Not kept: the lookup itself asks the server and brings the
    // attributes along; asking again would double the trips.
    bool looked_up = false;
    absl::StatusOr<Ref> ref = Reach(path, stats_.attr_fetches, &looked_up);
    if (!ref.ok()) return ref.status();
    if (!looked_up) Count(stats_.attr_fetches);  // kept by another thread
    if (StatFd((*ref)->get(),
               looked_up ? AT_STATX_DONT_SYNC : AT_STATX_FORCE_SYNC,
               &st) != 0) {
      return Errno("stat", path);
    }
    return st;
  }
  absl::StatusOr<Ref> ref = Reach(path, stats_.attr_fetches);
  if (!ref.ok()) return ref.status();
  if (path.empty()) Count(stats_.attr_fetches);
  if (StatFd((*ref)->get(), AT_STATX_FORCE_SYNC, &st) != 0) {
    int err = errno;
    if (path.empty() && err == ENOTCONN && Reconnect()) {
      if (StatFd(Root()->get(), AT_STATX_FORCE_SYNC, &st) == 0) return st;
      err = errno;
    }
    if (path.empty() && err == EIO && traits_.fs_type == "fuse") {
      // A FUSE filesystem whose root cannot be read has lost its server
      // (sshfs -o reconnect says EIO until it reconnects).
      return ErrnoToStatus(ENOTCONN,
                           absl::StrCat("stat ", path_,
                                        ": Input/output error from the FUSE "
                                        "filesystem's root: its server is "
                                        "unreachable"));
    }
    errno = err;
    return Errno("stat", path.empty() ? path_ : path);
  }
  return st;
}

PosixOrigin::Ref PosixOrigin::Root() const {
  absl::MutexLock lock(&root_mu_);
  return root_;
}

bool PosixOrigin::Reconnect() {
  // Only the same export mounted again: when a dead FUSE mount is taken
  // away, the directory beneath it (empty, perhaps on a FUSE filesystem
  // too) appears at the path, and taking that for the origin would make
  // every file look deleted.
  absl::StatusOr<std::string> key = CurrentOriginKey(path_);
  if (!mount_key_.empty() && (!key.ok() || *key != mount_key_)) return false;
  int fd = open(path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  absl::StatusOr<Traits> found = TraitsOf(fd, path_);
  if (!found.ok() || found->fs_type != traits_.fs_type) {
    close(fd);
    return false;
  }
  {
    absl::MutexLock lock(&root_mu_);
    root_ = std::make_shared<const OwnedFd>(fd);
  }
  fds_.Forget("");  // every one was reached through the dead mount
  return true;
}

absl::StatusOr<std::unique_ptr<OriginFile>> PosixOrigin::OpenFile(
    const Caller& caller, const std::string& path, int flags) {
  ScopedCredentials as_caller(caller);
  flags = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_CLOEXEC;
  if (!keep_descriptors_) {
    absl::Status valid = CheckOriginPath(path);
    if (!valid.ok()) return valid;
    Count(stats_.opens);
    int fd = OpenBeneath(Root()->get(), path.empty() ? "." : path, flags);
    if (fd < 0) return Errno("open", path);
    return std::make_unique<PosixFile>(fd, &stats_);
  }
  // Reading a FUSE origin directly: each read goes to the server as it
  // is, in parallel pieces, instead of through the origin mount's page
  // cache (which would hold the data a second time, and asks the server
  // for the file's attributes before every read unless they are cached).
  const bool direct = (flags & O_ACCMODE) == O_RDONLY;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool looked_up = false;
    absl::StatusOr<Ref> ref = Reach(path, stats_.walks, &looked_up);
    if (!ref.ok()) return ref.status();
    Count(stats_.opens);
    const std::string proc = ProcPath((*ref)->get());
    int fd = direct ? open(proc.c_str(), flags | O_DIRECT) : -1;
    if (fd < 0 && (!direct || errno == EINVAL)) fd = open(proc.c_str(), flags);
    if (fd >= 0) return std::make_unique<PosixFile>(fd, &stats_);
    const int err = errno;
    if (looked_up || !MayBeStale(err)) {
      errno = err;
      return Errno("open", path);
    }
    fds_.Forget(path);
  }
  return ErrnoToStatus(ESTALE, "open " + path);
}

absl::Status PosixOrigin::CheckAccess(const Caller& caller,
                                      const std::string& path, int mask) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  Count(stats_.other);
  if (faccessat(AT_FDCWD, ProcPath((*ref)->get()).c_str(), mask, AT_EACCESS) !=
      0) {
    return Errno("access", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OriginDir>> PosixOrigin::OpenDir(
    const Caller& caller, const std::string& path) {
  ScopedCredentials as_caller(caller);
  int fd;
  if (keep_descriptors_) {
    absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
    if (!ref.ok()) return ref.status();
    Count(stats_.dir_opens);
    fd = openat((*ref)->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else {
    absl::Status valid = CheckOriginPath(path);
    if (!valid.ok()) return valid;
    Count(stats_.dir_opens);
    fd = OpenBeneath(Root()->get(), path.empty() ? "." : path,
                     O_RDONLY | O_DIRECTORY);
  }
  if (fd < 0) return Errno("opendir", path);
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    absl::Status status = Errno("fdopendir", path);
    close(fd);
    return status;
  }
  return std::make_unique<PosixDir>(dir);
}

absl::StatusOr<std::string> PosixOrigin::ReadLink(const Caller& caller,
                                                  const std::string& path) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  Count(stats_.other);
  std::string target(PATH_MAX, '\0');
  ssize_t n = readlinkat((*ref)->get(), "", target.data(), target.size());
  if (n < 0) return Errno("readlink", path);
  target.resize(n);
  return target;
}

absl::StatusOr<struct statvfs> PosixOrigin::StatFs(const Caller& caller,
                                                   const std::string& path) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  Count(stats_.other);
  struct statvfs st;
  if (fstatvfs((*ref)->get(), &st) != 0) return Errno("statfs", path_);
  return st;
}

absl::StatusOr<std::string> PosixOrigin::GetXattr(const Caller& caller,
                                                  const std::string& path,
                                                  const std::string& name) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  const std::string proc = ProcPath((*ref)->get());
  for (int attempt = 0; attempt < 4; ++attempt) {
    Count(stats_.other);
    ssize_t size = getxattr(proc.c_str(), name.c_str(), nullptr, 0);
    if (size < 0) return Errno("getxattr", name);
    std::string value(size, '\0');
    Count(stats_.other);
    ssize_t n = getxattr(proc.c_str(), name.c_str(), value.data(), size);
    if (n >= 0) {
      value.resize(n);
      return value;
    }
    if (errno != ERANGE) return Errno("getxattr", name);
  }
  return ErrnoToStatus(ERANGE, "getxattr " + name + ": value keeps growing");
}

absl::StatusOr<std::vector<std::string>> PosixOrigin::ListXattr(
    const Caller& caller, const std::string& path) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  const std::string proc = ProcPath((*ref)->get());
  std::string buf;
  for (int attempt = 0; attempt < 4; ++attempt) {
    Count(stats_.other);
    ssize_t size = listxattr(proc.c_str(), nullptr, 0);
    if (size < 0) return Errno("listxattr", path);
    buf.assign(size, '\0');
    Count(stats_.other);
    ssize_t n = listxattr(proc.c_str(), buf.data(), size);
    if (n >= 0) {
      buf.resize(n);
      std::vector<std::string> names;
      for (size_t i = 0; i < buf.size();) {
        size_t end = buf.find('\0', i);
        if (end == std::string::npos) end = buf.size();
        names.push_back(buf.substr(i, end - i));
        i = end + 1;
      }
      return names;
    }
    if (errno != ERANGE) return Errno("listxattr", path);
  }
  return ErrnoToStatus(ERANGE, "listxattr: list keeps growing");
}

absl::StatusOr<struct stat> PosixOrigin::AttrOfMade(const std::string& path) {
  bool looked_up = false;
  absl::StatusOr<Ref> ref = Reach(path, stats_.attr_fetches, &looked_up);
  if (!ref.ok()) return ref.status();
  // Made by us just now: the kernel's attributes are fresh.
  struct stat st;
  if (StatFd((*ref)->get(), AT_STATX_DONT_SYNC, &st) != 0) {
    return Errno("stat", path);
  }
  return st;
}

absl::StatusOr<Origin::CreateResult> PosixOrigin::Create(
    const Caller& caller, const std::string& path, mode_t mode, int flags) {
  ScopedCredentials as_caller(caller);
  std::string name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  Count(stats_.opens);
  int fd = openat((*parent)->get(), name.c_str(),
                  flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Errno("create", path);
  CreateResult result;
  result.file = std::make_unique<PosixFile>(fd, &stats_);
  // The create's reply brought the attributes; no lookup needed.
  if (StatFd(fd, AT_STATX_DONT_SYNC, &result.attr) != 0) {
    return Errno("stat", path);
  }
  if (keep_descriptors_) {
    Changed(path);
    int path_fd = open(ProcPath(fd).c_str(), O_PATH | O_CLOEXEC);
    if (path_fd >= 0) fds_.Insert(path, path_fd);
  }
  return result;
}

absl::StatusOr<struct stat> PosixOrigin::MakeNode(const Caller& caller,
                                                  const std::string& path,
                                                  mode_t mode, dev_t rdev) {
  ScopedCredentials as_caller(caller);
  std::string name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  Count(stats_.changes);
  if (mknodat((*parent)->get(), name.c_str(), mode, rdev) != 0) {
    return Errno("mknod", path);
  }
  Changed(path);
  return AttrOfMade(path);
}

absl::StatusOr<struct stat> PosixOrigin::MakeDir(const Caller& caller,
                                                 const std::string& path,
                                                 mode_t mode) {
  ScopedCredentials as_caller(caller);
  std::string name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  Count(stats_.changes);
  if (mkdirat((*parent)->get(), name.c_str(), mode) != 0) {
    return Errno("mkdir", path);
  }
  Changed(path);
  return AttrOfMade(path);
}

absl::StatusOr<struct stat> PosixOrigin::MakeSymlink(const Caller& caller,
                                                     const std::string& target,
                                                     const std::string& path) {
  ScopedCredentials as_caller(caller);
  std::string name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  Count(stats_.changes);
  if (symlinkat(target.c_str(), (*parent)->get(), name.c_str()) != 0) {
    return Errno("symlink", path);
  }
  Changed(path);
  return AttrOfMade(path);
}

absl::StatusOr<struct stat> PosixOrigin::Link(const Caller& caller,
                                              const std::string& path,
                                              const std::string& new_path) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  std::string new_name;
  absl::StatusOr<Ref> new_parent = ReachParent(new_path, &new_name);
  if (!new_parent.ok()) return new_parent.status();
  Count(stats_.changes);
  // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc path does
  // not (libfuse's passthrough_hp does the same).
  if (linkat(AT_FDCWD, ProcPath((*ref)->get()).c_str(), (*new_parent)->get(),
             new_name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    return Errno("link", new_path);
  }
  Changed(new_path);
  return AttrOfMade(new_path);
}

absl::Status PosixOrigin::Unlink(const Caller& caller,
                                 const std::string& path) {
  ScopedCredentials as_caller(caller);
  std::string name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  Count(stats_.changes);
  int r = unlinkat((*parent)->get(), name.c_str(), 0);
  Changed(path);
  if (r != 0) return Errno("unlink", path);
  return absl::OkStatus();
}

absl::Status PosixOrigin::RemoveDir(const Caller& caller,
                                    const std::string& path) {
  ScopedCredentials as_caller(caller);
  std::string name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  Count(stats_.changes);
  int r = unlinkat((*parent)->get(), name.c_str(), AT_REMOVEDIR);
  if (r != 0) return Errno("rmdir", path);
  Changed(path);
  return absl::OkStatus();
}

absl::Status PosixOrigin::Rename(const Caller& caller, const std::string& path,
                                 const std::string& new_path, unsigned flags) {
  ScopedCredentials as_caller(caller);
  std::string name, new_name;
  absl::StatusOr<Ref> parent = ReachParent(path, &name);
  if (!parent.ok()) return parent.status();
  absl::StatusOr<Ref> new_parent = ReachParent(new_path, &new_name);
  if (!new_parent.ok()) return new_parent.status();
  Count(stats_.changes);
  long r = syscall(SYS_renameat2, (*parent)->get(), name.c_str(),
                   (*new_parent)->get(), new_name.c_str(), flags);
  if (r != 0) return Errno("rename", path + " to " + new_path);
  Changed(path);
  Changed(new_path);
  return absl::OkStatus();
}

absl::Status PosixOrigin::SetAttr(const Caller& caller, const std::string& path,
                                  const AttrChange& change, OriginFile* file) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  const int node = (*ref)->get();
  const std::string proc = ProcPath(node);
  auto* posix_file = dynamic_cast<PosixFile*>(file);
  if (change.mode.has_value()) {
    Count(stats_.changes);
    int r = posix_file != nullptr ? fchmod(posix_file->fd(), *change.mode)
                                  : chmod(proc.c_str(), *change.mode);
    if (r != 0) return Errno("chmod", path);
  }
  if (const mode_t bits = change.clear_set_ids & (S_ISUID | S_ISGID)) {
    struct stat st;
    Count(stats_.attr_fetches);
    if (StatFd(node, AT_STATX_FORCE_SYNC, &st) != 0) return Errno("stat", path);
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError("not a regular file: " + path);
    }
    if ((st.st_mode & bits) != 0) {
      Count(stats_.changes);
      if (chmod(proc.c_str(), st.st_mode & 07777 & ~bits) != 0) {
        return Errno("chmod", path);
      }
    }
  }
  if (change.uid.has_value() || change.gid.has_value()) {
    uid_t uid = change.uid.value_or(static_cast<uid_t>(-1));
    gid_t gid = change.gid.value_or(static_cast<gid_t>(-1));
    Count(stats_.changes);
    if (fchownat(node, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) !=
        0) {
      return Errno("chown", path);
    }
  }
  if (change.size.has_value()) {
    Count(stats_.changes);
    int r = posix_file != nullptr
                ? ftruncate(posix_file->fd(), static_cast<off_t>(*change.size))
                : truncate(proc.c_str(), static_cast<off_t>(*change.size));
    if (r != 0) return Errno("truncate", path);
  }
  if (change.atime.has_value() || change.mtime.has_value()) {
    struct timespec times[2];
    times[0] = change.atime.value_or(timespec{0, UTIME_OMIT});
    times[1] = change.mtime.value_or(timespec{0, UTIME_OMIT});
    Count(stats_.changes);
    int r;
    if (posix_file != nullptr) {
      r = futimens(posix_file->fd(), times);
    } else {
      struct stat st;
      if (StatFd(node, AT_STATX_DONT_SYNC, &st) != 0) {
        return Errno("stat", path);
      }
      // A symlink's own times: the /proc path would follow it.
      r = S_ISLNK(st.st_mode)
              ? utimensat(node, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)
              : utimensat(AT_FDCWD, proc.c_str(), times, 0);
    }
    if (r != 0) return Errno("utimensat", path);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::SetXattr(const Caller& caller,
                                   const std::string& path,
                                   const std::string& name,
                                   const std::string& value, int flags) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  Count(stats_.changes);
  if (setxattr(ProcPath((*ref)->get()).c_str(), name.c_str(), value.data(),
               value.size(), flags) != 0) {
    return Errno("setxattr", name);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::RemoveXattr(const Caller& caller,
                                      const std::string& path,
                                      const std::string& name) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  Count(stats_.changes);
  if (removexattr(ProcPath((*ref)->get()).c_str(), name.c_str()) != 0) {
    return Errno("removexattr", name);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::SyncDir(const Caller& caller, const std::string& path,
                                  bool datasync) {
  ScopedCredentials as_caller(caller);
  absl::StatusOr<Ref> ref = Reach(path, stats_.walks);
  if (!ref.ok()) return ref.status();
  Count(stats_.other);
  int fd = openat((*ref)->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  int r = datasync ? fdatasync(fd) : fsync(fd);
  absl::Status status = r == 0 ? absl::OkStatus() : Errno("fsync", path);
  close(fd);
  return status;
}

}  // namespace cachefs
