// Helpers for the io/ tests: aligned buffers with recognisable contents, an
// Env whose IoQueue is the synchronous fallback, and the CI skip rule.

#ifndef CACHEFS_TESTS_IO_IO_TEST_UTIL_H_
#define CACHEFS_TESTS_IO_IO_TEST_UTIL_H_

#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "io/env.h"
#include "io/uring_queue.h"
#include "tests/test_util.h"

namespace cachefs::testing {

// A zeroed, 4096-aligned heap buffer.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size)
      : size_(size),
        data_(static_cast<uint8_t*>(std::aligned_alloc(4096, Round(size)))) {
    std::memset(data_.get(), 0, Round(size));
  }
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  iovec iov(size_t offset, size_t len) const {
    return {data_.get() + offset, len};
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  static size_t Round(size_t n) { return (n + 4095) / 4096 * 4096 + 4096; }
  size_t size_;
  std::unique_ptr<uint8_t, Free> data_;
};

// The byte a pattern `seed` puts at file position `pos`; never all zero
// over a block, so a hole punched over it shows.
inline uint8_t PatternByte(uint64_t seed, uint64_t pos) {
  uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ seed * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<uint8_t>(x | 1);
}

inline void FillPattern(uint8_t* buf, size_t len, uint64_t seed,
                        uint64_t pos) {
  for (size_t i = 0; i < len; ++i) buf[i] = PatternByte(seed, pos + i);
}

// Index of the first byte that differs from the pattern, or -1.
inline int64_t FirstMismatch(const uint8_t* buf, size_t len, uint64_t seed,
                             uint64_t pos) {
  for (size_t i = 0; i < len; ++i) {
    if (buf[i] != PatternByte(seed, pos + i)) return static_cast<int64_t>(i);
  }
  return -1;
}

inline bool AllZero(const uint8_t* buf, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (buf[i] != 0) return false;
  }
  return true;
}

// Env::Default with the synchronous fallback queue instead of io_uring.
class SyncQueueEnv : public EnvWrapper {
 public:
  SyncQueueEnv() : EnvWrapper(Env::Default()) {}
  absl::StatusOr<std::unique_ptr<IoQueue>> NewIoQueue(
      unsigned depth) override {
    return NewSyncIoQueue(depth);
  }
};

// Tests may skip when the filesystem they need is missing, but not in CI.
inline bool SkipAllowed() {
  const char* ci = std::getenv("CI");
  return ci == nullptr || std::string(ci) != "true";
}

}  // namespace cachefs::testing

#endif  // CACHEFS_TESTS_IO_IO_TEST_UTIL_H_
