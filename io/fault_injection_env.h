// FaultInjectionEnv: an Env for tests that injects the failures a real disk
// gives rarely: ENOSPC, EIO, short writes, and a crash that loses every data
// write not yet made durable by FDataSync (after leveldb's
// FaultInjectionTestEnv).
//
// Crash model: extended attributes and namespace changes are taken as durable
// at once (the worst case for the content-map crash rule); file data written
// since the file's last FDataSync is lost. DropUnsyncedData() makes the loss
// real by punching holes over every unsynced range, so a later read sees
// zeros where the data was.
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_IO_FAULT_INJECTION_ENV_H_
#define CACHEFS_IO_FAULT_INJECTION_ENV_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "io/env.h"

namespace cachefs {

class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* target);
  ~FaultInjectionEnv() override;

  // Which calls a fault applies to.
  enum Op : unsigned {
    kDataRead = 1u << 0,   // PRead and queued reads
    kDataWrite = 1u << 1,  // PWrite and queued writes
    kOpen = 1u << 2,
    kSync = 1u << 3,
    kSetXattr = 1u << 4,
    kGetXattr = 1u << 5,
    kTruncate = 1u << 6,   // FTruncate and FAllocate
    kNamespace = 1u << 7,  // Mkdir, Unlink, Rename, Link
  };

  // Makes calls in `ops` fail with `err` (0 clears). With `count` > 0 only
  // the next `count` such calls fail, after which the fault clears itself.
  void SetError(unsigned ops, int err, int count = 0);
  // Lets the next `spared` calls in `ops` through, then fails every call
  // in `ops` with `err` until cleared: with all ops, a process that dies
  // after that many calls, for crash-at-every-point tests.
  void SetErrorAfter(unsigned ops, int err, int spared);
  // Makes data writes (sync and queued) and fallocate/xattr growth fail with
  // ENOSPC while `on`.
  void SetNoSpace(bool on);
  // Data writes transfer only half their length (rounded down to 4096, at
  // least 4096 when the write is larger) while `on`.
  void SetShortWrites(bool on);
  void ClearFaults();

  // The crash point: loses every unsynced data write (see the class comment)
  // and forgets the unsynced ranges. Call it with no I/O in flight.
  absl::Status DropUnsyncedData();

  uint64_t injected_faults() const { return injected_.load(); }

  // Env overrides that can fault or that track durability.
  absl::StatusOr<int> OpenAt(int dirfd, const std::string& path, int flags,
                             mode_t mode) override;
  absl::Status MkdirAt(int dirfd, const std::string& path,
                       mode_t mode) override;
  absl::Status UnlinkAt(int dirfd, const std::string& path,
                        int flags) override;
  absl::Status RenameAt(int olddirfd, const std::string& oldpath, int newdirfd,
                        const std::string& newpath, unsigned flags) override;
  absl::Status LinkAt(int olddirfd, const std::string& oldpath, int newdirfd,
                      const std::string& newpath, int flags) override;
  absl::StatusOr<size_t> PRead(int fd, void* buf, size_t n,
                               uint64_t offset) override;
  absl::StatusOr<size_t> PWrite(int fd, const void* buf, size_t n,
                                uint64_t offset) override;
  absl::Status FDataSync(int fd) override;
  absl::Status FTruncate(int fd, uint64_t length) override;
  absl::Status FAllocate(int fd, int mode, uint64_t offset,
                         uint64_t length) override;
  absl::StatusOr<std::string> GetXattr(int fd,
                                       const std::string& name) override;
  absl::Status SetXattr(int fd, const std::string& name,
                        const std::string& value) override;
  absl::StatusOr<std::unique_ptr<IoQueue>> NewIoQueue(unsigned depth) override;

  // Used by the fault-injecting IoQueue. Returns the errno to fail an op of
  // kind `op` with, or 0.
  int TakeFault(Op op);
  bool short_writes() const { return short_writes_.load(); }
  // Records that [offset, offset + length) of the file behind `fd` was
  // written and is not yet durable.
  void RecordUnsynced(int fd, uint64_t offset, uint64_t length);

 private:
  struct FileId {
    dev_t dev;
    ino_t ino;
    auto operator<=>(const FileId&) const = default;
  };
  struct Fault {
    unsigned ops = 0;
    int err = 0;
    int remaining = 0;  // 0: until cleared
    int spared = 0;     // calls in `ops` let through before it applies
  };

  absl::Mutex mu_;
  Fault fault_ ABSL_GUARDED_BY(mu_);
  // Unsynced byte ranges (offset -> end) per file, with a descriptor kept
  // open so DropUnsyncedData can reach files whose names are gone.
  struct Unsynced {
    int fd = -1;
    std::map<uint64_t, uint64_t> ranges;
  };
  std::map<FileId, Unsynced> unsynced_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> no_space_{false};
  std::atomic<bool> short_writes_{false};
  std::atomic<uint64_t> injected_{0};
};

}  // namespace cachefs

#endif  // CACHEFS_IO_FAULT_INJECTION_ENV_H_
