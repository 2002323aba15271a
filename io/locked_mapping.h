// LockedMapping: a file's pages mapped and locked in RAM (mmap + mlock),
// read-only, for as long as the object lives: how the prefetch layer
// holds pinned files' cache files in memory, as precached does.
//
// A mapping knows which file it maps (device and inode), so a holder can
// tell it from a newer file under the same name. It can be marked stale
// (its file's data is about to change under a write that bypasses the
// page cache): readers then stop using it, and it goes when the last
// holder lets go.
//
// Thread safety: const methods and MarkStale may be called concurrently.

#ifndef CACHEFS_IO_LOCKED_MAPPING_H_
#define CACHEFS_IO_LOCKED_MAPPING_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace cachefs {

class LockedMapping {
 public:
  // Maps all of the file open at `fd` (read-only) and locks it in RAM.
  // Pages of the file cached before are dropped first (a write past the
  // page cache may have left them behind the file), so the mapping reads
  // the file as it is on disk. Fails, with the errno, when the file is
  // empty, or mmap or mlock fails (RLIMIT_MEMLOCK: EPERM or ENOMEM).
  static absl::StatusOr<std::unique_ptr<LockedMapping>> Map(int fd);
  ~LockedMapping();
  LockedMapping(const LockedMapping&) = delete;
  LockedMapping& operator=(const LockedMapping&) = delete;

  const char* data() const { return static_cast<const char*>(addr_); }
  uint64_t length() const { return length_; }
  dev_t dev() const { return dev_; }
  ino_t ino() const { return ino_; }
  // Whether the mapping is of the file open at `fd`.
  bool Maps(int fd) const;

  void MarkStale() const { stale_.store(true, std::memory_order_release); }
  bool stale() const { return stale_.load(std::memory_order_acquire); }

 private:
  LockedMapping(void* addr, uint64_t length, dev_t dev, ino_t ino)
      : addr_(addr), length_(length), dev_(dev), ino_(ino) {}

  void* const addr_;
  const uint64_t length_;
  const dev_t dev_;
  const ino_t ino_;
  mutable std::atomic<bool> stale_{false};
};

}  // namespace cachefs

#endif  // CACHEFS_IO_LOCKED_MAPPING_H_
