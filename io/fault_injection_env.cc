#include "io/fault_injection_env.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"
#include "io/fault_queue.h"

namespace cachefs {
namespace {

absl::Status Injected(int err, const char* call, const std::string& what) {
  return ErrnoToStatus(err, absl::StrCat("injected fault: ", call, " ", what));
}

std::string FdName(int fd) { return absl::StrCat("fd ", fd); }

// Adds [start, end) to a set of disjoint ranges, merging what it touches.
void AddRange(std::map<uint64_t, uint64_t>& ranges, uint64_t start,
              uint64_t end) {
  auto it = ranges.upper_bound(start);
  if (it != ranges.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) {
      start = prev->first;
      end = std::max(end, prev->second);
      ranges.erase(prev);
    }
  }
  while (it != ranges.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = ranges.erase(it);
  }
  ranges[start] = end;
}

}  // namespace

size_t ShortWriteLength(size_t n) {
  if (n <= kShortWriteUnit) return n;
  return std::max(n / 2 / kShortWriteUnit * kShortWriteUnit, kShortWriteUnit);
}

FaultInjectionEnv::FaultInjectionEnv(Env* target) : EnvWrapper(target) {}

FaultInjectionEnv::~FaultInjectionEnv() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, file] : unsynced_) {
    if (file.fd >= 0) close(file.fd);
  }
}

void FaultInjectionEnv::SetError(unsigned ops, int err, int count) {
  absl::MutexLock lock(&mu_);
  fault_ = err == 0 ? Fault{} : Fault{ops, err, count};
}

void FaultInjectionEnv::SetErrorAfter(unsigned ops, int err, int spared) {
  absl::MutexLock lock(&mu_);
  fault_ = err == 0 ? Fault{} : Fault{ops, err, 0, spared};
}

void FaultInjectionEnv::SetNoSpace(bool on) { no_space_.store(on); }
void FaultInjectionEnv::SetShortWrites(bool on) { short_writes_.store(on); }

void FaultInjectionEnv::ClearFaults() {
  SetError(0, 0);
  SetNoSpace(false);
  SetShortWrites(false);
}

int FaultInjectionEnv::TakeFault(Op op) {
  {
    absl::MutexLock lock(&mu_);
    if (fault_.err != 0 && (fault_.ops & op) != 0 && fault_.spared > 0) {
      --fault_.spared;
    } else if (fault_.err != 0 && (fault_.ops & op) != 0) {
      const int err = fault_.err;
      if (fault_.remaining > 0 && --fault_.remaining == 0) fault_ = Fault{};
      injected_.fetch_add(1);
      return err;
    }
  }
  if (op == kDataWrite && no_space_.load()) {
    injected_.fetch_add(1);
    return ENOSPC;
  }
  return 0;
}

void FaultInjectionEnv::RecordUnsynced(int fd, uint64_t offset,
                                       uint64_t length) {
  if (length == 0) return;
  absl::StatusOr<struct stat> st = target()->FStat(fd);
  if (!st.ok()) return;  // a descriptor we cannot name cannot be punched
  const FileId id{st->st_dev, st->st_ino};
  {
    absl::MutexLock lock(&mu_);
    auto it = unsynced_.find(id);
    if (it != unsynced_.end()) {
      AddRange(it->second.ranges, offset, offset + length);
      return;
    }
  }
  // First unsynced write to this file: keep a descriptor of our own, taken
  // outside the lock.
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = unsynced_.try_emplace(id);
    if (inserted) it->second.fd = std::exchange(dup_fd, -1);
    AddRange(it->second.ranges, offset, offset + length);
  }
  if (dup_fd >= 0) close(dup_fd);
}

absl::Status FaultInjectionEnv::DropUnsyncedData() {
  std::map<FileId, Unsynced> files;
  {
    absl::MutexLock lock(&mu_);
    files.swap(unsynced_);
  }
  absl::Status first;
  for (auto& [id, file] : files) {
    if (file.fd < 0) continue;  // re-added by a failed sync after a drop
    for (const auto& [start, end] : file.ranges) {
      absl::Status s = target()->FAllocate(
          file.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start,
          end - start);
      if (first.ok()) first = s;
    }
    close(file.fd);
  }
  return first;
}

absl::StatusOr<int> FaultInjectionEnv::OpenAt(int dirfd,
                                              const std::string& path,
                                              int flags, mode_t mode) {
  if (int err = TakeFault(kOpen)) return Injected(err, "openat", path);
  return target()->OpenAt(dirfd, path, flags, mode);
}

absl::Status FaultInjectionEnv::MkdirAt(int dirfd, const std::string& path,
                                        mode_t mode) {
  if (int err = TakeFault(kNamespace)) return Injected(err, "mkdirat", path);
  return target()->MkdirAt(dirfd, path, mode);
}

absl::Status FaultInjectionEnv::UnlinkAt(int dirfd, const std::string& path,
                                         int flags) {
  if (int err = TakeFault(kNamespace)) return Injected(err, "unlinkat", path);
  return target()->UnlinkAt(dirfd, path, flags);
}

absl::Status FaultInjectionEnv::RenameAt(int olddirfd,
                                         const std::string& oldpath,
                                         int newdirfd,
                                         const std::string& newpath,
                                         unsigned flags) {
  if (int err = TakeFault(kNamespace)) {
    return Injected(err, "renameat2", absl::StrCat(oldpath, " -> ", newpath));
  }
  return target()->RenameAt(olddirfd, oldpath, newdirfd, newpath, flags);
}

absl::Status FaultInjectionEnv::LinkAt(int olddirfd, const std::string& oldpath,
                                       int newdirfd, const std::string& newpath,
                                       int flags) {
  if (int err = TakeFault(kNamespace)) {
    return Injected(err, "linkat", absl::StrCat(oldpath, " -> ", newpath));
  }
  return target()->LinkAt(olddirfd, oldpath, newdirfd, newpath, flags);
}

absl::StatusOr<size_t> FaultInjectionEnv::PRead(int fd, void* buf, size_t n,
                                                uint64_t offset) {
  if (int err = TakeFault(kDataRead)) return Injected(err, "pread", FdName(fd));
  return target()->PRead(fd, buf, n, offset);
}

absl::StatusOr<size_t> FaultInjectionEnv::PWrite(int fd, const void* buf,
                                                 size_t n, uint64_t offset) {
  if (int err = TakeFault(kDataWrite)) {
    return Injected(err, "pwrite", FdName(fd));
  }
  if (short_writes()) n = ShortWriteLength(n);
  absl::StatusOr<size_t> written = target()->PWrite(fd, buf, n, offset);
  if (written.ok()) RecordUnsynced(fd, offset, *written);
  return written;
}

absl::Status FaultInjectionEnv::FDataSync(int fd) {
  if (int err = TakeFault(kSync)) return Injected(err, "fdatasync", FdName(fd));
  absl::StatusOr<struct stat> st = target()->FStat(fd);
  if (!st.ok()) return target()->FDataSync(fd);
  const FileId id{st->st_dev, st->st_ino};
  // Take the ranges out first: a write that completes while the sync runs
  // stays unsynced, the pessimistic reading of the race.
  std::map<uint64_t, uint64_t> syncing;
  {
    absl::MutexLock lock(&mu_);
    auto it = unsynced_.find(id);
    if (it != unsynced_.end()) syncing.swap(it->second.ranges);
  }
  absl::Status s = target()->FDataSync(fd);
  if (!s.ok() && !syncing.empty()) {
    absl::MutexLock lock(&mu_);
    auto& ranges = unsynced_[id].ranges;
    for (const auto& [start, end] : syncing) AddRange(ranges, start, end);
  }
  return s;
}

absl::Status FaultInjectionEnv::FTruncate(int fd, uint64_t length) {
  if (int err = TakeFault(kTruncate)) {
    return Injected(err, "ftruncate", FdName(fd));
  }
  return target()->FTruncate(fd, length);
}

absl::Status FaultInjectionEnv::FAllocate(int fd, int mode, uint64_t offset,
                                          uint64_t length) {
  if (int err = TakeFault(kTruncate)) {
    return Injected(err, "fallocate", FdName(fd));
  }
  // Punching a hole frees space; only reserving it can run out.
  if (no_space_.load() && (mode & FALLOC_FL_PUNCH_HOLE) == 0) {
    injected_.fetch_add(1);
    return Injected(ENOSPC, "fallocate", FdName(fd));
  }
  return target()->FAllocate(fd, mode, offset, length);
}

absl::StatusOr<std::string> FaultInjectionEnv::GetXattr(
    int fd, const std::string& name) {
  if (int err = TakeFault(kGetXattr)) {
    return Injected(err, "fgetxattr", absl::StrCat(FdName(fd), " ", name));
  }
  return target()->GetXattr(fd, name);
}

absl::Status FaultInjectionEnv::SetXattr(int fd, const std::string& name,
                                         const std::string& value) {
  if (int err = TakeFault(kSetXattr)) {
    return Injected(err, "fsetxattr", absl::StrCat(FdName(fd), " ", name));
  }
  if (no_space_.load()) {
    // Only growth needs space: a value no longer than the old one fits.
    absl::StatusOr<std::string> old = target()->GetXattr(fd, name);
    const size_t old_size = old.ok() ? old->size() : 0;
    if (value.size() > old_size) {
      injected_.fetch_add(1);
      return Injected(ENOSPC, "fsetxattr", absl::StrCat(FdName(fd), " ", name));
    }
  }
  return target()->SetXattr(fd, name, value);
}

absl::StatusOr<std::unique_ptr<IoQueue>> FaultInjectionEnv::NewIoQueue(
    unsigned depth) {
  absl::StatusOr<std::unique_ptr<IoQueue>> inner = target()->NewIoQueue(depth);
  if (!inner.ok()) return inner.status();
  return NewFaultQueue(this, std::move(*inner));
}

}  // namespace cachefs
