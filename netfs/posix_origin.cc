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

class PosixFile : public OriginFile {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { close(fd_); }
  absl::StatusOr<size_t> PRead(void* buf, size_t n, uint64_t offset) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = pread(fd_, static_cast<char*>(buf) + done, n - done,
                        offset + done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Errno("pread", "origin file");
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
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is not a name inside the origin"));
  }
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
    const Node& node) {
  int fd = open(AsFd(node).ProcPath().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", "origin file");
  return std::make_unique<PosixFile>(fd);
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

}  // namespace cachefs
