// Env::Default(): the POSIX Env. Each call is one syscall (retried on
// EINTR), and each failure becomes a Status through ErrnoToStatus with a
// message that names the call and the path or descriptor.

#include <attr/xattr.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"
#include "io/env.h"
#include "io/errno_status.h"
#include "io/log.h"
#include "io/uring_queue.h"

namespace cachefs {
namespace {

// Calls `fn` until it does not fail with EINTR.
template <typename Fn>
auto RetryEintr(Fn fn) {
  decltype(fn()) r;
  do {
    r = fn();
  } while (r < 0 && errno == EINTR);
  return r;
}

std::string FdName(int fd) { return absl::StrCat("fd ", fd); }

std::string AtName(int dirfd, const std::string& path) {
  if (dirfd == AT_FDCWD || (!path.empty() && path[0] == '/')) return path;
  return absl::StrCat(path, " (in dir fd ", dirfd, ")");
}

absl::Status Error(const char* call, const std::string& what) {
  return ErrnoToStatus(errno, absl::StrCat(call, " ", what));
}

int64_t ClockNanos(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

class PosixEnv final : public Env {
 public:
  absl::StatusOr<int> OpenAt(int dirfd, const std::string& path, int flags,
                             mode_t mode) override {
    int fd = RetryEintr(
        [&] { return openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode); });
    if (fd < 0) return Error("openat", AtName(dirfd, path));
    return fd;
  }

  absl::Status Close(int fd) override {
    // Not retried: after EINTR the descriptor is already gone on Linux.
    if (close(fd) < 0 && errno != EINTR) return Error("close", FdName(fd));
    return absl::OkStatus();
  }

  absl::Status LockExclusive(int fd) override {
    if (RetryEintr([&] { return flock(fd, LOCK_EX | LOCK_NB); }) == 0) {
      return absl::OkStatus();
    }
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("locked by another open file: ", FdName(fd)));
    }
    return Error("flock", FdName(fd));
  }

  absl::Status MkdirAt(int dirfd, const std::string& path,
                       mode_t mode) override {
    if (mkdirat(dirfd, path.c_str(), mode) < 0) {
      return Error("mkdirat", AtName(dirfd, path));
    }
    return absl::OkStatus();
  }

  absl::Status UnlinkAt(int dirfd, const std::string& path,
                        int flags) override {
    if (unlinkat(dirfd, path.c_str(), flags) < 0) {
      return Error("unlinkat", AtName(dirfd, path));
    }
    return absl::OkStatus();
  }

  absl::Status RenameAt(int olddirfd, const std::string& oldpath, int newdirfd,
                        const std::string& newpath, unsigned flags) override {
    if (renameat2(olddirfd, oldpath.c_str(), newdirfd, newpath.c_str(),
                  flags) < 0) {
      return Error("renameat2", absl::StrCat(AtName(olddirfd, oldpath), " -> ",
                                             AtName(newdirfd, newpath)));
    }
    return absl::OkStatus();
  }

  absl::Status LinkAt(int olddirfd, const std::string& oldpath, int newdirfd,
                      const std::string& newpath, int flags) override {
    if (linkat(olddirfd, oldpath.c_str(), newdirfd, newpath.c_str(), flags) <
        0) {
      return Error("linkat", absl::StrCat(AtName(olddirfd, oldpath), " -> ",
                                          AtName(newdirfd, newpath)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<DirEntry>> ReadDir(
      int dirfd, const std::string& path) override;

  absl::StatusOr<size_t> PRead(int fd, void* buf, size_t n,
                               uint64_t offset) override;
  absl::StatusOr<size_t> PWrite(int fd, const void* buf, size_t n,
                                uint64_t offset) override;

  absl::Status FDataSync(int fd) override {
    if (RetryEintr([&] { return fdatasync(fd); }) < 0) {
      return Error("fdatasync", FdName(fd));
    }
    return absl::OkStatus();
  }

  absl::Status FTruncate(int fd, uint64_t length) override {
    if (RetryEintr([&] { return ftruncate(fd, length); }) < 0) {
      return Error("ftruncate", absl::StrCat(FdName(fd), " to ", length));
    }
    return absl::OkStatus();
  }

  absl::Status FAllocate(int fd, int mode, uint64_t offset,
                         uint64_t length) override {
    if (RetryEintr([&] { return fallocate(fd, mode, offset, length); }) < 0) {
      return Error("fallocate", absl::StrCat(FdName(fd), " mode ", mode, " [",
                                             offset, ", +", length, ")"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<struct stat> FStat(int fd) override {
    struct stat st;
    if (fstat(fd, &st) < 0) return Error("fstat", FdName(fd));
    return st;
  }

  absl::StatusOr<struct stat> FStatAt(int dirfd, const std::string& path,
                                      int flags) override {
    struct stat st;
    if (fstatat(dirfd, path.c_str(), &st, flags) < 0) {
      return Error("fstatat", AtName(dirfd, path));
    }
    return st;
  }

  absl::StatusOr<struct statvfs> FStatVfs(int fd) override {
    struct statvfs st;
    if (RetryEintr([&] { return fstatvfs(fd, &st); }) < 0) {
      return Error("fstatvfs", FdName(fd));
    }
    return st;
  }

  absl::StatusOr<std::string> GetXattr(int fd,
                                       const std::string& name) override;
  absl::Status SetXattr(int fd, const std::string& name,
                        const std::string& value) override {
    if (fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) < 0) {
      return Error("fsetxattr", absl::StrCat(FdName(fd), " ", name));
    }
    return absl::OkStatus();
  }
  absl::Status RemoveXattr(int fd, const std::string& name) override {
    if (fremovexattr(fd, name.c_str()) < 0) {
      return Error("fremovexattr", absl::StrCat(FdName(fd), " ", name));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> ListXattr(int fd) override;

  absl::StatusOr<std::unique_ptr<IoQueue>> NewIoQueue(
      unsigned depth) override;

  int64_t NowNanos() override { return ClockNanos(CLOCK_REALTIME); }
  int64_t MonotonicNanos() override { return ClockNanos(CLOCK_MONOTONIC); }
};

absl::StatusOr<std::vector<DirEntry>> PosixEnv::ReadDir(
    int dirfd, const std::string& path) {
  int fd = RetryEintr([&] {
    return openat(dirfd, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  });
  if (fd < 0) return Error("opendir", AtName(dirfd, path));
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    absl::Status s = Error("fdopendir", AtName(dirfd, path));
    close(fd);
    return s;
  }
  std::vector<DirEntry> entries;
  for (;;) {
    errno = 0;
    dirent* e = readdir(dir);
    if (e == nullptr) break;
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    entries.push_back({std::string(name), e->d_type});
  }
  absl::Status s =
      errno != 0 ? Error("readdir", AtName(dirfd, path)) : absl::OkStatus();
  closedir(dir);
  if (!s.ok()) return s;
  return entries;
}

// Loops until `n` bytes moved or end of file, so callers see a short count
// only at EOF.
absl::StatusOr<size_t> PosixEnv::PRead(int fd, void* buf, size_t n,
                                       uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = RetryEintr([&] {
      return pread(fd, static_cast<char*>(buf) + done, n - done,
                   offset + done);
    });
    if (r < 0) {
      return Error("pread", absl::StrCat(FdName(fd), " at ", offset + done));
    }
    if (r == 0) break;
    done += r;
  }
  return done;
}

absl::StatusOr<size_t> PosixEnv::PWrite(int fd, const void* buf, size_t n,
                                        uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = RetryEintr([&] {
      return pwrite(fd, static_cast<const char*>(buf) + done, n - done,
                    offset + done);
    });
    if (r < 0) {
      return Error("pwrite", absl::StrCat(FdName(fd), " at ", offset + done));
    }
    done += r;
  }
  return done;
}

absl::StatusOr<std::string> PosixEnv::GetXattr(int fd,
                                               const std::string& name) {
  // Sized by a probe; retried if the value grows between probe and read.
  for (;;) {
    ssize_t size = fgetxattr(fd, name.c_str(), nullptr, 0);
    if (size < 0) return Error("fgetxattr", absl::StrCat(FdName(fd), " ", name));
    std::string value(size, '\0');
    ssize_t r = fgetxattr(fd, name.c_str(), value.data(), value.size());
    if (r >= 0) {
      value.resize(r);
      return value;
    }
    if (errno != ERANGE) {
      return Error("fgetxattr", absl::StrCat(FdName(fd), " ", name));
    }
  }
}

absl::StatusOr<std::vector<std::string>> PosixEnv::ListXattr(int fd) {
  std::string names;
  for (;;) {
    ssize_t size = flistxattr(fd, nullptr, 0);
    if (size < 0) return Error("flistxattr", FdName(fd));
    names.resize(size);
    ssize_t r = flistxattr(fd, names.data(), names.size());
    if (r >= 0) {
      names.resize(r);
      break;
    }
    if (errno != ERANGE) return Error("flistxattr", FdName(fd));
  }
  std::vector<std::string> out;
  size_t start = 0;
  while (start < names.size()) {
    size_t end = names.find('\0', start);
    if (end == std::string::npos) end = names.size();
    if (end > start) out.emplace_back(names, start, end - start);
    start = end + 1;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<IoQueue>> PosixEnv::NewIoQueue(unsigned depth) {
  absl::StatusOr<std::unique_ptr<IoQueue>> q = NewUringQueue(depth);
  if (q.ok()) return q;
  // io_uring can be disabled (kernel.io_uring_disabled), filtered by
  // seccomp or missing; the data path still works, only without overlap.
  static absl::once_flag warned;
  absl::call_once(warned, [&] {
    Log(LogLevel::kWarning,
        absl::StrCat(std::string(q.status().message()),
                     "; falling back to synchronous pread/pwrite I/O"));
  });
  return NewSyncIoQueue(depth);
}

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv;
  return env;
}

}  // namespace cachefs
