#include "io/locked_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>

#include "io/errno_status.h"

namespace cachefs {

absl::StatusOr<std::unique_ptr<LockedMapping>> LockedMapping::Map(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoToStatus(errno, "fstat");
  if (st.st_size <= 0) return ErrnoToStatus(EINVAL, "mapping an empty file");
  const uint64_t length = static_cast<uint64_t>(st.st_size);
  // Clean pages left from before a direct write could be older than the
  // file; unmapped ones go here.
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  void* addr = mmap(nullptr, length, PROT_READ, MAP_SHARED | MAP_POPULATE, fd,
                    0);
  if (addr == MAP_FAILED) return ErrnoToStatus(errno, "mmap");
  if (mlock(addr, length) != 0) {
    const int err = errno;
    munmap(addr, length);
    return ErrnoToStatus(err, "mlock");
  }
  return std::unique_ptr<LockedMapping>(
      new LockedMapping(addr, length, st.st_dev, st.st_ino));
}

LockedMapping::~LockedMapping() {
  munlock(addr_, length_);
  munmap(addr_, length_);
}

bool LockedMapping::Maps(int fd) const {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
}

}  // namespace cachefs
