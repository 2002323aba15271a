// Env: the one seam between cachefs and the operating system on the cache side.
//
// Every syscall that touches the cache directory (opens, xattrs, truncation,
// hole punching, statvfs, renames, unlinks, the clock) and the asynchronous
// data path (an IoQueue, io_uring by default) goes through an Env, in the
// manner of leveldb's include/leveldb/env.h. Tests wrap it
// (FaultInjectionEnv) to inject ENOSPC, EIO, short writes and crashes.
//
// Thread safety: an Env is safe for concurrent use. An IoQueue is not: its
// owner serializes Prepare/Submit/Wake, and exactly one thread calls Reap
// (io_uring's submission and completion sides are independent).

#ifndef CACHEFS_IO_ENV_H_
#define CACHEFS_IO_ENV_H_

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cachefs {

// One asynchronous data operation on an open file descriptor.
struct IoOp {
  enum class Kind : uint8_t { kRead, kWrite };
  Kind kind = Kind::kRead;
  int fd = -1;
  uint64_t offset = 0;
  const iovec* iov = nullptr;  // must stay valid until the op completes
  int iovcnt = 0;
  uint64_t user_data = 0;  // returned with the completion
};

// A submission/completion queue for data I/O on cache files.
class IoQueue {
 public:
  virtual ~IoQueue() = default;

  // Number of ops that may be outstanding at once.
  virtual unsigned depth() const = 0;

  // Queues `op` without submitting it. Fails with kResourceExhausted when the
  // submission queue is full (submit, then retry).
  virtual absl::Status Prepare(const IoOp& op) = 0;

  // Submits every prepared op; returns how many were submitted. The ops
  // belong to the thread that submits them: with io_uring, those still
  // queued for the kernel's workers when it exits fail with ECANCELED. So
  // a thread that may exit first must leave the submitting to one that
  // outlives the ops (IoEngine's completion thread does it).
  virtual absl::StatusOr<int> Submit() = 0;

  // Calls `fn(user_data, result)` for each completed op, where result is the
  // byte count or -errno. With `wait`, blocks until at least one completion
  // (which may be a Wake). Returns the number of completions handled.
  virtual absl::StatusOr<int> Reap(
      bool wait, absl::FunctionRef<void(uint64_t user_data, int64_t result)> fn) = 0;

  // Makes a blocked Reap return; the wake shows up as a completion whose
  // user_data is kWakeUserData, one per call. Any thread, no submission
  // lock needed, and nothing is submitted.
  virtual absl::Status Wake() = 0;

  static constexpr uint64_t kWakeUserData = ~uint64_t{0};
};

struct DirEntry {
  std::string name;
  unsigned char type = 0;  // DT_REG, DT_DIR, ... (DT_UNKNOWN if not known)
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env (io_uring data path). Never deleted.
  static Env* Default();

  // Files and directories. Paths are relative to `dirfd` (AT_FDCWD allowed).
  virtual absl::StatusOr<int> OpenAt(int dirfd, const std::string& path,
                                     int flags, mode_t mode) = 0;
  virtual absl::Status Close(int fd) = 0;
  // flock(fd, LOCK_EX | LOCK_NB): held until the descriptor is closed.
  // FailedPrecondition when another open file holds it.
  virtual absl::Status LockExclusive(int fd) = 0;
  virtual absl::Status MkdirAt(int dirfd, const std::string& path,
                               mode_t mode) = 0;
  virtual absl::Status UnlinkAt(int dirfd, const std::string& path,
                                int flags) = 0;
  // renameat2(2); flags such as RENAME_NOREPLACE.
  virtual absl::Status RenameAt(int olddirfd, const std::string& oldpath,
                                int newdirfd, const std::string& newpath,
                                unsigned flags) = 0;
  // linkat(2); with AT_EMPTY_PATH links an O_TMPFILE descriptor into place.
  virtual absl::Status LinkAt(int olddirfd, const std::string& oldpath,
                              int newdirfd, const std::string& newpath,
                              int flags) = 0;
  virtual absl::StatusOr<std::vector<DirEntry>> ReadDir(
      int dirfd, const std::string& path) = 0;

  // Synchronous data and metadata on an open descriptor.
  virtual absl::StatusOr<size_t> PRead(int fd, void* buf, size_t n,
                                       uint64_t offset) = 0;
  virtual absl::StatusOr<size_t> PWrite(int fd, const void* buf, size_t n,
                                        uint64_t offset) = 0;
  virtual absl::Status FDataSync(int fd) = 0;
  virtual absl::Status FTruncate(int fd, uint64_t length) = 0;
  // fallocate(2): mode 0 reserves, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE frees.
  virtual absl::Status FAllocate(int fd, int mode, uint64_t offset,
                                 uint64_t length) = 0;
  virtual absl::StatusOr<struct stat> FStat(int fd) = 0;
  virtual absl::StatusOr<struct stat> FStatAt(int dirfd,
                                              const std::string& path,
                                              int flags) = 0;
  virtual absl::StatusOr<struct statvfs> FStatVfs(int fd) = 0;

  // Extended attributes (through libattr). GetXattr fails with kNotFound
  // when the attribute does not exist.
  virtual absl::StatusOr<std::string> GetXattr(int fd,
                                               const std::string& name) = 0;
  virtual absl::Status SetXattr(int fd, const std::string& name,
                                const std::string& value) = 0;
  virtual absl::Status RemoveXattr(int fd, const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListXattr(int fd) = 0;

  // A new asynchronous queue with room for `depth` outstanding ops.
  virtual absl::StatusOr<std::unique_ptr<IoQueue>> NewIoQueue(
      unsigned depth) = 0;

  // CLOCK_REALTIME and CLOCK_MONOTONIC in nanoseconds.
  virtual int64_t NowNanos() = 0;
  virtual int64_t MonotonicNanos() = 0;
};

// Forwards every call to another Env; subclass it to override a few calls.
// Does not own the target.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  absl::StatusOr<int> OpenAt(int dirfd, const std::string& path, int flags,
                             mode_t mode) override {
    return target_->OpenAt(dirfd, path, flags, mode);
  }
  absl::Status Close(int fd) override { return target_->Close(fd); }
  absl::Status LockExclusive(int fd) override {
    return target_->LockExclusive(fd);
  }
  absl::Status MkdirAt(int dirfd, const std::string& path,
                       mode_t mode) override {
    return target_->MkdirAt(dirfd, path, mode);
  }
  absl::Status UnlinkAt(int dirfd, const std::string& path,
                        int flags) override {
    return target_->UnlinkAt(dirfd, path, flags);
  }
  absl::Status RenameAt(int olddirfd, const std::string& oldpath, int newdirfd,
                        const std::string& newpath, unsigned flags) override {
    return target_->RenameAt(olddirfd, oldpath, newdirfd, newpath, flags);
  }
  absl::Status LinkAt(int olddirfd, const std::string& oldpath, int newdirfd,
                      const std::string& newpath, int flags) override {
    return target_->LinkAt(olddirfd, oldpath, newdirfd, newpath, flags);
  }
  absl::StatusOr<std::vector<DirEntry>> ReadDir(
      int dirfd, const std::string& path) override {
    return target_->ReadDir(dirfd, path);
  }
  absl::StatusOr<size_t> PRead(int fd, void* buf, size_t n,
                               uint64_t offset) override {
    return target_->PRead(fd, buf, n, offset);
  }
  absl::StatusOr<size_t> PWrite(int fd, const void* buf, size_t n,
                                uint64_t offset) override {
    return target_->PWrite(fd, buf, n, offset);
  }
  absl::Status FDataSync(int fd) override { return target_->FDataSync(fd); }
  absl::Status FTruncate(int fd, uint64_t length) override {
    return target_->FTruncate(fd, length);
  }
  absl::Status FAllocate(int fd, int mode, uint64_t offset,
                         uint64_t length) override {
    return target_->FAllocate(fd, mode, offset, length);
  }
  absl::StatusOr<struct stat> FStat(int fd) override {
    return target_->FStat(fd);
  }
  absl::StatusOr<struct stat> FStatAt(int dirfd, const std::string& path,
                                      int flags) override {
    return target_->FStatAt(dirfd, path, flags);
  }
  absl::StatusOr<struct statvfs> FStatVfs(int fd) override {
    return target_->FStatVfs(fd);
  }
  absl::StatusOr<std::string> GetXattr(int fd,
                                       const std::string& name) override {
    return target_->GetXattr(fd, name);
  }
  absl::Status SetXattr(int fd, const std::string& name,
                        const std::string& value) override {
    return target_->SetXattr(fd, name, value);
  }
  absl::Status RemoveXattr(int fd, const std::string& name) override {
    return target_->RemoveXattr(fd, name);
  }
  absl::StatusOr<std::vector<std::string>> ListXattr(int fd) override {
    return target_->ListXattr(fd);
  }
  absl::StatusOr<std::unique_ptr<IoQueue>> NewIoQueue(
      unsigned depth) override {
    return target_->NewIoQueue(depth);
  }
  int64_t NowNanos() override { return target_->NowNanos(); }
  int64_t MonotonicNanos() override { return target_->MonotonicNanos(); }

 private:
  Env* const target_;
};

}  // namespace cachefs

#endif  // CACHEFS_IO_ENV_H_
