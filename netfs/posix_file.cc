#include "netfs/posix_file.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {

absl::Status Errno(std::string_view call, std::string_view what) {
  const int err = errno;  // before anything that may change it
  return ErrnoToStatus(err,
                       absl::StrCat(std::string(call), " ", std::string(what)));
}

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

PosixFile::~PosixFile() { close(fd_); }

absl::StatusOr<size_t> PosixFile::PRead(void* buf, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    const size_t want = n - done;
    Count(stats_->reads);
    ssize_t r = pread(fd_, static_cast<char*>(buf) + done, want, offset + done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Errno("pread", "origin file");
    done += r;
    // Short means end of file for a regular file; asking again would
    // cost a server round trip on some origins.
    if (static_cast<size_t>(r) < want) break;
  }
  return done;
}

absl::StatusOr<size_t> PosixFile::PWrite(const void* buf, size_t n,
                                         uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    Count(stats_->writes);
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

absl::StatusOr<struct stat> PosixFile::Stat() {
  Count(stats_->other);
  struct stat st;
  if (fstat(fd_, &st) != 0) return Errno("fstat", "origin file");
  return st;
}

absl::Status PosixFile::Truncate(uint64_t size) {
  Count(stats_->changes);
  if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return Errno("ftruncate", "origin file");
  }
  return absl::OkStatus();
}

absl::Status PosixFile::Sync(bool datasync) {
  Count(stats_->other);
  if ((datasync ? fdatasync(fd_) : fsync(fd_)) != 0) {
    return Errno("fsync", "origin file");
  }
  return absl::OkStatus();
}

absl::Status PosixFile::Flush() {
  Count(stats_->other);
  // Closing a duplicate makes the origin's filesystem flush as if the
  // user's descriptor closed, without losing ours.
  int dup_fd = dup(fd_);
  if (dup_fd < 0) return Errno("dup", "origin file");
  if (close(dup_fd) != 0 && errno != EINTR) {
    return Errno("close", "origin file");
  }
  return absl::OkStatus();
}

absl::Status PosixFile::Allocate(int mode, uint64_t offset, uint64_t len) {
  Count(stats_->changes);
  if (fallocate(fd_, mode, static_cast<off_t>(offset),
                static_cast<off_t>(len)) != 0) {
    return Errno("fallocate", "origin file");
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> PosixFile::CopyTo(uint64_t offset, OriginFile& out,
                                         uint64_t out_offset, size_t len,
                                         unsigned flags) {
  auto* posix_out = dynamic_cast<PosixFile*>(&out);
  if (posix_out == nullptr) {
    return ErrnoToStatus(EXDEV, "copy_file_range across origins");
  }
  Count(stats_->writes);
  loff_t in_off = static_cast<loff_t>(offset);
  loff_t out_off = static_cast<loff_t>(out_offset);
  ssize_t n =
      copy_file_range(fd_, &in_off, posix_out->fd(), &out_off, len, flags);
  if (n < 0) return Errno("copy_file_range", "origin file");
  return static_cast<size_t>(n);
}

PosixDir::~PosixDir() { closedir(dir_); }

absl::Status PosixDir::Seek(uint64_t offset) {
  seekdir(dir_, static_cast<long>(offset));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<OriginDir::Entry>> PosixDir::Next() {
  errno = 0;
  struct dirent* d = readdir(dir_);
  if (d == nullptr) {
    if (errno != 0) return Errno("readdir", "origin directory");
    return std::nullopt;
  }
  return Entry{d->d_name, d->d_ino, d->d_type,
               static_cast<uint64_t>(d->d_off)};
}

}  // namespace cachefs
