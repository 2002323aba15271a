#include "netfs/posix_origin.h"

#include <dirent.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

class FdNode : public Origin::Node {
 public:
  explicit FdNode(int fd) : fd_(fd) {}
  ~FdNode() override { close(fd_); }
  int fd() const { return fd_; }
  // A path that reaches the node through /proc, for calls without an *at
  // form that accepts an O_PATH descriptor (open for I/O, xattrs).
  std::string ProcPath() const { return absl::StrCat("/proc/self/fd/", fd_); }

 private:
  const int fd_;
};

const FdNode& AsFd(const Origin::Node& node) {
  return static_cast<const FdNode&>(node);
}

absl::Status Errno(std::string_view call, std::string_view what) {
  return ErrnoToStatus(errno, absl::StrCat(std::string(call), " ",
                                           std::string(what)));
}

absl::Status CheckName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is not a name inside the origin"));
  }
  return absl::OkStatus();
}

class PosixFile : public OriginFile {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { close(fd_); }
  int fd() const { return fd_; }
  absl::StatusOr<size_t> PRead(void* buf, size_t n, uint64_t offset) override {
    size_t done = 0;
    while (done < n) {
      const size_t want = n - done;
      ssize_t r = pread(fd_, static_cast<char*>(buf) + done, want,
                        offset + done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Errno("pread", "origin file");
      done += r;
      // Short means end of file for a regular file; asking again would
      // cost a server round trip on some origins.
      if (static_cast<size_t>(r) < want) break;
    }
    return done;
  }
  absl::StatusOr<size_t> PWrite(const void* buf, size_t n,
                                uint64_t offset) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = pwrite(fd_, static_cast<const char*>(buf) + done, n - done,
                         offset + done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        // Part written, then out of room: report the part, as write(2) does.
        if (done > 0) break;
        return Errno("pwrite", "origin file");
      }
      if (r == 0) break;
      done += r;
    }
    return done;
  }
  absl::StatusOr<struct stat> Stat() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return Errno("fstat", "origin file");
    return st;
  }
  absl::Status Truncate(uint64_t size) override {
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return Errno("ftruncate", "origin file");
    }
    return absl::OkStatus();
  }
  absl::Status Sync(bool datasync) override {
    if ((datasync ? fdatasync(fd_) : fsync(fd_)) != 0) {
      return Errno("fsync", "origin file");
    }
    return absl::OkStatus();
  }
  absl::Status Flush() override {
    // Closing a duplicate makes the origin's filesystem flush as if the
    // user's descriptor closed, without losing ours.
    int dup_fd = dup(fd_);
    if (dup_fd < 0) return Errno("dup", "origin file");
    if (close(dup_fd) != 0 && errno != EINTR) {
      return Errno("close", "origin file");
    }
    return absl::OkStatus();
  }
  absl::Status Allocate(int mode, uint64_t offset, uint64_t len) override {
    if (fallocate(fd_, mode, static_cast<off_t>(offset),
                  static_cast<off_t>(len)) != 0) {
      return Errno("fallocate", "origin file");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<size_t> CopyTo(uint64_t offset, OriginFile& out,
                                uint64_t out_offset, size_t len,
                                unsigned flags) override {
    auto* posix_out = dynamic_cast<PosixFile*>(&out);
    if (posix_out == nullptr) {
      return ErrnoToStatus(EXDEV, "copy_file_range across origins");
    }
    loff_t in_off = static_cast<loff_t>(offset);
    loff_t out_off = static_cast<loff_t>(out_offset);
    ssize_t n = copy_file_range(fd_, &in_off, posix_out->fd(), &out_off, len,
                                flags);
    if (n < 0) return Errno("copy_file_range", "origin file");
    return static_cast<size_t>(n);
  }

 private:
  const int fd_;
};

class PosixDir : public OriginDir {
 public:
  explicit PosixDir(DIR* dir) : dir_(dir) {}
  ~PosixDir() override { closedir(dir_); }
  absl::Status Seek(uint64_t offset) override {
    seekdir(dir_, static_cast<long>(offset));
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<Entry>> Next() override {
    errno = 0;
    struct dirent* d = readdir(dir_);
    if (d == nullptr) {
      if (errno != 0) return Errno("readdir", "origin directory");
      return std::nullopt;
    }
    return Entry{d->d_name, d->d_ino, d->d_type,
                 static_cast<uint64_t>(d->d_off)};
  }

 private:
  DIR* const dir_;
};

// statx into a struct stat. `sync` is AT_STATX_FORCE_SYNC (ask the server)
// or AT_STATX_DONT_SYNC (what the client just learned is enough).
int StatFd(int fd, int sync, struct stat* st) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | sync,
            STATX_BASIC_STATS, &stx) != 0) {
    return -1;
  }
  *st = {};
  st->st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  st->st_ino = stx.stx_ino;
  st->st_mode = stx.stx_mode;
  st->st_nlink = stx.stx_nlink;
  st->st_uid = stx.stx_uid;
  st->st_gid = stx.stx_gid;
  st->st_rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
  st->st_size = stx.stx_size;
  st->st_blksize = stx.stx_blksize;
  st->st_blocks = stx.stx_blocks;
  st->st_atim = {stx.stx_atime.tv_sec, stx.stx_atime.tv_nsec};
  st->st_mtim = {stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec};
  st->st_ctim = {stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec};
  return 0;
}

Origin::Traits TraitsOf(int fd) {
  Origin::Traits traits;
  struct statfs st;
  if (fstatfs(fd, &st) != 0) return traits;
  switch (st.f_type) {
    case FUSE_SUPER_MAGIC:
      // SSHFS and other FUSE origins: inode numbers are made up per mount,
      // and SSHFS reports whole-second times.
      traits.fs_type = "fuse";
      traits.stable_inode_numbers = false;
      traits.subsecond_times = false;
      break;
    case NFS_SUPER_MAGIC:
      traits.fs_type = "nfs";
      break;
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
    const std::string& path) {
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOTDIR) {
      return absl::InvalidArgumentError(
          absl::StrCat("origin ", path, " is not a directory"));
    }
    return Errno("cannot open origin", path);
  }
  Traits traits = TraitsOf(fd);
  return std::unique_ptr<PosixOrigin>(
      new PosixOrigin(path, std::make_unique<FdNode>(fd), std::move(traits)));
}

PosixOrigin::PosixOrigin(std::string path, std::unique_ptr<Node> root,
                         Traits traits)
    : path_(std::move(path)), root_(std::move(root)), traits_(std::move(traits)) {}

PosixOrigin::~PosixOrigin() = default;

absl::StatusOr<Origin::LookupResult> PosixOrigin::Lookup(
    const Node& parent, const std::string& name) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  int fd = openat(AsFd(parent).fd(), name.c_str(),
                  O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno("lookup", name);
  LookupResult result{std::make_unique<FdNode>(fd), {}};
  // The lookup that opened the descriptor brought fresh attributes along
  // (on FUSE and NFS): asking the server again would double the trips.
  if (StatFd(fd, AT_STATX_DONT_SYNC, &result.attr) != 0) {
    return Errno("stat", name);
  }
  return result;
}

absl::StatusOr<Origin::LookupResult> PosixOrigin::Resolve(
    const std::string& path) {
  if (path.empty() || path[0] == '/') {
    return absl::InvalidArgumentError("\"" + path +
                                      "\" is not a path inside the origin");
  }
  open_how how = {};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, AsFd(*root_).fd(),
                                    path.c_str(), &how, sizeof(how)));
  if (fd < 0) return Errno("resolve", path);
  LookupResult result{std::make_unique<FdNode>(fd), {}};
  if (StatFd(fd, AT_STATX_DONT_SYNC, &result.attr) != 0) {
    return Errno("stat", path);
  }
  return result;
}

absl::StatusOr<struct stat> PosixOrigin::GetAttr(const Node& node) {
  struct stat st;
  if (StatFd(AsFd(node).fd(), AT_STATX_FORCE_SYNC, &st) != 0) {
    return Errno("stat", "origin node");
  }
  return st;
}

absl::StatusOr<std::unique_ptr<OriginFile>> PosixOrigin::OpenFile(
    const Node& node, int flags) {
  int fd = open(AsFd(node).ProcPath().c_str(),
                (flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_CLOEXEC);
  if (fd < 0) return Errno("open", "origin file");
  return std::make_unique<PosixFile>(fd);
}

absl::Status PosixOrigin::CheckAccess(const Node& node, int mask) {
  if (faccessat(AT_FDCWD, AsFd(node).ProcPath().c_str(), mask, AT_EACCESS) !=
      0) {
    return Errno("access", "origin node");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OriginDir>> PosixOrigin::OpenDir(
    const Node& node) {
  int fd = openat(AsFd(node).fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opendir", "origin directory");
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    absl::Status status = Errno("fdopendir", "origin directory");
    close(fd);
    return status;
  }
  return std::make_unique<PosixDir>(dir);
}

absl::StatusOr<std::string> PosixOrigin::ReadLink(const Node& node) {
  std::string target(PATH_MAX, '\0');
  ssize_t n = readlinkat(AsFd(node).fd(), "", target.data(), target.size());
  if (n < 0) return Errno("readlink", "origin node");
  target.resize(n);
  return target;
}

absl::StatusOr<struct statvfs> PosixOrigin::StatFs(const Node& node) {
  struct statvfs st;
  if (fstatvfs(AsFd(node).fd(), &st) != 0) return Errno("statfs", path_);
  return st;
}

absl::StatusOr<std::string> PosixOrigin::GetXattr(const Node& node,
                                                  const std::string& name) {
  std::string path = AsFd(node).ProcPath();
  for (int attempt = 0; attempt < 4; ++attempt) {
    ssize_t size = getxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (size < 0) return Errno("getxattr", name);
    std::string value(size, '\0');
    ssize_t n = getxattr(path.c_str(), name.c_str(), value.data(), size);
    if (n >= 0) {
      value.resize(n);
      return value;
    }
    if (errno != ERANGE) return Errno("getxattr", name);
  }
  return ErrnoToStatus(ERANGE, "getxattr " + name + ": value keeps growing");
}

absl::StatusOr<std::vector<std::string>> PosixOrigin::ListXattr(
    const Node& node) {
  std::string path = AsFd(node).ProcPath();
  std::string buf;
  for (int attempt = 0; attempt < 4; ++attempt) {
    ssize_t size = listxattr(path.c_str(), nullptr, 0);
    if (size < 0) return Errno("listxattr", "origin node");
    buf.assign(size, '\0');
    ssize_t n = listxattr(path.c_str(), buf.data(), size);
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
    if (errno != ERANGE) return Errno("listxattr", "origin node");
  }
  return ErrnoToStatus(ERANGE, "listxattr: list keeps growing");
}

absl::StatusOr<Origin::LookupResult> PosixOrigin::LookUpMade(
    const Node& parent, const std::string& name) {
  // Made by us just now: the client's attributes are fresh.
  return Lookup(parent, name);
}

absl::StatusOr<Origin::CreateResult> PosixOrigin::Create(
    const Node& parent, const std::string& name, mode_t mode, int flags) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  int fd = openat(AsFd(parent).fd(), name.c_str(),
                  flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Errno("create", name);
  CreateResult result;
  result.file = std::make_unique<PosixFile>(fd);
  absl::StatusOr<LookupResult> entry = LookUpMade(parent, name);
  if (!entry.ok()) return entry.status();
  result.entry = *std::move(entry);
  return result;
}

absl::StatusOr<Origin::LookupResult> PosixOrigin::MakeNode(
    const Node& parent, const std::string& name, mode_t mode, dev_t rdev) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  if (mknodat(AsFd(parent).fd(), name.c_str(), mode, rdev) != 0) {
    return Errno("mknod", name);
  }
  return LookUpMade(parent, name);
}

absl::StatusOr<Origin::LookupResult> PosixOrigin::MakeDir(
    const Node& parent, const std::string& name, mode_t mode) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  if (mkdirat(AsFd(parent).fd(), name.c_str(), mode) != 0) {
    return Errno("mkdir", name);
  }
  return LookUpMade(parent, name);
}

absl::StatusOr<Origin::LookupResult> PosixOrigin::MakeSymlink(
    const std::string& target, const Node& parent, const std::string& name) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  if (symlinkat(target.c_str(), AsFd(parent).fd(), name.c_str()) != 0) {
    return Errno("symlink", name);
  }
  return LookUpMade(parent, name);
}

absl::StatusOr<Origin::LookupResult> PosixOrigin::Link(
    const Node& node, const Node& new_parent, const std::string& new_name) {
  absl::Status valid = CheckName(new_name);
  if (!valid.ok()) return valid;
  // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc path does
  // not (libfuse's passthrough_hp does the same).
  if (linkat(AT_FDCWD, AsFd(node).ProcPath().c_str(), AsFd(new_parent).fd(),
             new_name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    return Errno("link", new_name);
  }
  return LookUpMade(new_parent, new_name);
}

absl::Status PosixOrigin::Unlink(const Node& parent, const std::string& name) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  if (unlinkat(AsFd(parent).fd(), name.c_str(), 0) != 0) {
    return Errno("unlink", name);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::RemoveDir(const Node& parent,
                                    const std::string& name) {
  absl::Status valid = CheckName(name);
  if (!valid.ok()) return valid;
  if (unlinkat(AsFd(parent).fd(), name.c_str(), AT_REMOVEDIR) != 0) {
    return Errno("rmdir", name);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::Rename(const Node& parent, const std::string& name,
                                 const Node& new_parent,
                                 const std::string& new_name, unsigned flags) {
  absl::Status valid = CheckName(name);
  if (valid.ok()) valid = CheckName(new_name);
  if (!valid.ok()) return valid;
  if (syscall(SYS_renameat2, AsFd(parent).fd(), name.c_str(),
              AsFd(new_parent).fd(), new_name.c_str(), flags) != 0) {
    return Errno("rename", name + " to " + new_name);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::SetAttr(const Node& node, const AttrChange& change,
                                  OriginFile* file) {
  const FdNode& fd_node = AsFd(node);
  const std::string proc = fd_node.ProcPath();
  auto* posix_file = dynamic_cast<PosixFile*>(file);
  if (change.mode.has_value()) {
    int r = posix_file != nullptr ? fchmod(posix_file->fd(), *change.mode)
                                  : chmod(proc.c_str(), *change.mode);
    if (r != 0) return Errno("chmod", "origin node");
  }
  if (change.uid.has_value() || change.gid.has_value()) {
    uid_t uid = change.uid.value_or(static_cast<uid_t>(-1));
    gid_t gid = change.gid.value_or(static_cast<gid_t>(-1));
    if (fchownat(fd_node.fd(), "", uid, gid,
                 AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return Errno("chown", "origin node");
    }
  }
  if (change.size.has_value()) {
    int r = posix_file != nullptr
                ? ftruncate(posix_file->fd(), static_cast<off_t>(*change.size))
                : truncate(proc.c_str(), static_cast<off_t>(*change.size));
    if (r != 0) return Errno("truncate", "origin node");
  }
  if (change.atime.has_value() || change.mtime.has_value()) {
    struct timespec times[2];
    times[0] = change.atime.value_or(timespec{0, UTIME_OMIT});
    times[1] = change.mtime.value_or(timespec{0, UTIME_OMIT});
    int r;
    if (posix_file != nullptr) {
      r = futimens(posix_file->fd(), times);
    } else {
      struct stat st;
      if (fstat(fd_node.fd(), &st) != 0) return Errno("stat", "origin node");
      // A symlink's own times: the /proc path would follow it.
      r = S_ISLNK(st.st_mode)
              ? utimensat(fd_node.fd(), "", times,
                          AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)
              : utimensat(AT_FDCWD, proc.c_str(), times, 0);
    }
    if (r != 0) return Errno("utimensat", "origin node");
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::SetXattr(const Node& node, const std::string& name,
                                   const std::string& value, int flags) {
  if (setxattr(AsFd(node).ProcPath().c_str(), name.c_str(), value.data(),
               value.size(), flags) != 0) {
    return Errno("setxattr", name);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::RemoveXattr(const Node& node,
                                      const std::string& name) {
  if (removexattr(AsFd(node).ProcPath().c_str(), name.c_str()) != 0) {
    return Errno("removexattr", name);
  }
  return absl::OkStatus();
}

absl::Status PosixOrigin::SyncDir(const Node& node, bool datasync) {
  int fd = openat(AsFd(node).fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", "origin directory");
  int r = datasync ? fdatasync(fd) : fsync(fd);
  absl::Status status =
      r == 0 ? absl::OkStatus() : Errno("fsync", "origin directory");
  close(fd);
  return status;
}

}  // namespace cachefs
