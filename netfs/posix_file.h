// The open files and directory streams of PosixOrigin, and the statx
// helper it shares with them. Internal to netfs/.

#ifndef CACHEFS_NETFS_POSIX_FILE_H_
#define CACHEFS_NETFS_POSIX_FILE_H_

#include <dirent.h>
#include <sys/stat.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "netfs/origin.h"

namespace cachefs {

// A Status for errno after `call` failed on `what`.
absl::Status Errno(std::string_view call, std::string_view what);

// statx of the descriptor itself into a struct stat. `sync` is
// AT_STATX_FORCE_SYNC (ask the server) or AT_STATX_DONT_SYNC (what the
// kernel just learned is enough). Returns 0 or -1 with errno.
int StatFd(int fd, int sync, struct stat* st);

class PosixFile : public OriginFile {
 public:
  // Takes ownership of `fd`; counts its requests in `stats`.
  PosixFile(int fd, OriginStats* stats) : fd_(fd), stats_(stats) {}
  ~PosixFile() override;
  int fd() const { return fd_; }

  absl::StatusOr<size_t> PRead(void* buf, size_t n, uint64_t offset) override;
  absl::StatusOr<size_t> PWrite(const void* buf, size_t n,
                                uint64_t offset) override;
  absl::StatusOr<struct stat> Stat() override;
  absl::Status Truncate(uint64_t size) override;
  absl::Status Sync(bool datasync) override;
  absl::Status Flush() override;
  absl::Status Allocate(int mode, uint64_t offset, uint64_t len) override;
  absl::StatusOr<size_t> CopyTo(uint64_t offset, OriginFile& out,
                                uint64_t out_offset, size_t len,
                                unsigned flags) override;

 private:
  const int fd_;
  OriginStats* const stats_;
};

class PosixDir : public OriginDir {
 public:
  // Takes ownership of `dir`.
  explicit PosixDir(DIR* dir) : dir_(dir) {}
  ~PosixDir() override;
  absl::Status Seek(uint64_t offset) override;
  absl::StatusOr<std::optional<Entry>> Next() override;

 private:
  DIR* const dir_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_POSIX_FILE_H_
