// IoEngine: the backing-store data path. It moves bytes between memory and
// cache files with exactly two calls, as the fscache rewrite has it:
// ReadToIter (cache -> memory) and WriteIterToCache (memory -> cache).
//
// How it works: one IoQueue (io_uring by default) per engine. Callers
// prepare their ops under a short submission lock and wake the completion
// thread, which submits them (ops belong to the thread that submits them,
// and callers may exit first), reaps completions, resubmits short
// transfers and EAGAIN/EINTR, and runs the caller's callback once the
// whole transfer is done. Request slots come from
// a fixed pool sized to the queue depth, so the hot path allocates nothing;
// when every slot is busy a caller waits for one.
//
// Thread safety: all methods may be called from any thread. Callbacks run on
// the completion thread and must not block on further engine I/O. A callback
// may start asynchronous I/O; if every slot is busy then, that transfer
// fails at once with kUnavailable (EAGAIN) instead of waiting, since only
// the completion thread frees slots.

#ifndef CACHEFS_IO_IO_ENGINE_H_
#define CACHEFS_IO_IO_ENGINE_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "io/env.h"

namespace cachefs {

// O_DIRECT transfers must be aligned to this in offset, length and address.
inline constexpr size_t kDirectIoAlignment = 4096;

// `n` rounded up to a whole number of kDirectIoAlignment units.
inline constexpr size_t RoundUpToIo(size_t n) {
  return (n + kDirectIoAlignment - 1) & ~(kDirectIoAlignment - 1);
}

// A cache file as the engine sees it. Owned by the caller (a cookie's
// backing object); the engine only borrows the descriptor.
struct BackingFile {
  int fd = -1;
  bool direct = true;  // opened with O_DIRECT: alignment is checked
};

// Called once per transfer with the bytes moved (short only at end of file
// for reads) or the error.
using IoCallback = absl::AnyInvocable<void(absl::StatusOr<size_t> result)>;

struct IoEngineOptions {
  // Outstanding operations at once (io_uring entries).
  unsigned queue_depth = 128;
};

struct IoEngineStats {
  uint64_t reads = 0;           // ReadToIter calls completed
  uint64_t writes = 0;          // WriteIterToCache calls completed
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t resubmissions = 0;   // short transfers, EAGAIN, EINTR
  uint64_t errors = 0;
  uint64_t submit_batches = 0;  // io_uring_enter calls that submitted ops
};

class IoEngine {
 public:
  static absl::StatusOr<std::unique_ptr<IoEngine>> Create(
      Env* env, const IoEngineOptions& options);
  virtual ~IoEngine() = default;

  // Reads file bytes [pos, pos + total length of iov) into iov.
  // REQUIRES: iov.size() >= 1; if file.direct, pos, every iov_base and every
  // iov_len are multiples of kDirectIoAlignment (asserted: a transfer that
  // breaks this is not issued; `done` gets kInvalidArgument, errno EINVAL,
  // naming the offending value).
  // The iovec array is copied; the buffers must live until `done` runs.
  virtual void ReadToIter(const BackingFile& file, uint64_t pos,
                          std::span<const iovec> iov, IoCallback done) = 0;

  // Writes iov to file bytes [pos, ...). Same requirements as ReadToIter.
  virtual void WriteIterToCache(const BackingFile& file, uint64_t pos,
                                std::span<const iovec> iov,
                                IoCallback done) = 0;

  // Blocking forms. The calling thread drives the transfer itself on a
  // private queue from a small pool (submits, waits, resubmits), so no
  // other thread is woken: a blocking read costs what a pread does.
  absl::StatusOr<size_t> ReadToIterSync(const BackingFile& file, uint64_t pos,
                                        std::span<const iovec> iov) {
    return TransferSync(IoOp::Kind::kRead, file, pos, iov);
  }
  absl::StatusOr<size_t> WriteIterToCacheSync(const BackingFile& file,
                                              uint64_t pos,
                                              std::span<const iovec> iov) {
    return TransferSync(IoOp::Kind::kWrite, file, pos, iov);
  }
  virtual absl::StatusOr<size_t> TransferSync(IoOp::Kind kind,
                                              const BackingFile& file,
                                              uint64_t pos,
                                              std::span<const iovec> iov) = 0;

  virtual IoEngineStats stats() const = 0;
};

// Opens (or creates) a cache file for the engine: with O_DIRECT when the
// filesystem supports it, buffered otherwise. `*direct` reports which.
absl::StatusOr<int> OpenBackingFile(Env* env, int dirfd,
                                    const std::string& path, int flags,
                                    mode_t mode, bool allow_buffered,
                                    bool* direct);

// Probes whether files in directory `dirfd` can be opened with O_DIRECT.
// Returns false on filesystems that refuse it (tmpfs), with no file left.
absl::StatusOr<bool> DirectIoSupported(Env* env, int dirfd);

}  // namespace cachefs

#endif  // CACHEFS_IO_IO_ENGINE_H_
