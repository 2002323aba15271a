// Fixtures for the cookie-layer tests: a cache in a temporary directory,
// aligned buffers, and blocking forms of the asynchronous cookie calls.

#ifndef CACHEFS_TESTS_COOKIE_COOKIE_TEST_UTIL_H_
#define CACHEFS_TESTS_COOKIE_COOKIE_TEST_UTIL_H_

#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "cookie/cache.h"
#include "cookie/cookie.h"
#include "gtest/gtest.h"
#include "io/env.h"
#include "tests/test_util.h"

namespace cachefs::testing {

inline constexpr uint64_t kGranule = kDefaultGranuleSize;

// A page-aligned buffer filled with a pattern that depends on `seed` and
// the byte's position in the file, so misplaced data is caught.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size)
      : size_(size),
        data_(static_cast<uint8_t*>(std::aligned_alloc(4096, RoundUp(size)))) {}
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  iovec iov() const { return iovec{data_, size_}; }

  void Fill(uint64_t file_pos, uint32_t seed) {
    for (size_t i = 0; i < size_; ++i) data_[i] = PatternByte(file_pos + i, seed);
  }
  // Whether the buffer holds the pattern for [file_pos, file_pos + n).
  bool Holds(uint64_t file_pos, uint32_t seed, size_t n) const {
    for (size_t i = 0; i < n; ++i) {
      if (data_[i] != PatternByte(file_pos + i, seed)) return false;
    }
    return true;
  }
  static uint8_t PatternByte(uint64_t pos, uint32_t seed) {
    uint64_t x = (pos / 8 + 1) * 0x9e3779b97f4a7c15ull + seed;
    return static_cast<uint8_t>((x >> 29) ^ (pos & 7) ^ (x >> 47));
  }

 private:
  static size_t RoundUp(size_t n) { return n == 0 ? 4096 : (n + 4095) & ~size_t{4095}; }
  size_t size_;
  uint8_t* data_;
};

inline absl::StatusOr<size_t> WriteSync(Cookie& cookie, uint64_t pos,
                                        const AlignedBuffer& buf) {
  absl::Notification done;
  absl::StatusOr<size_t> result;
  iovec iov = buf.iov();
  cookie.WriteToCache(pos, {&iov, 1}, [&](absl::StatusOr<size_t> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

// Reads cached bytes at `pos` through `plan`, waiting for the read.
inline absl::StatusOr<size_t> ReadSync(const Cookie::ReadPlan& plan,
                                       uint64_t pos, const AlignedBuffer& buf) {
  absl::Notification done;
  absl::StatusOr<size_t> result;
  iovec iov = buf.iov();
  plan.Read(pos, {&iov, 1}, [&](absl::StatusOr<size_t> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

// A test with a cache directory of its own.
class CacheTest : public ::testing::Test {
 protected:
  CacheOptions Options() const {
    CacheOptions options;
    options.directory = dir_.path() + "/cache";
    options.dispatcher_threads = 2;
    options.key_hasher = hasher_;
    return options;
  }
  void OpenCache(Env* env = Env::Default()) {
    volume_.reset();
    cache_.reset();
    auto cache = Cache::Open(env, Options());
    ASSERT_OK(cache);
    cache_ = *std::move(cache);
    auto volume = cache_->AcquireVolume("test:/origin", "coherency-1");
    ASSERT_OK(volume);
    volume_ = *std::move(volume);
  }
  // Relinquishes `cookie` and waits for its teardown.
  void Relinquish(std::shared_ptr<Cookie> cookie, bool retire = false) {
    volume_->RelinquishCookie(std::move(cookie), retire);
    cache_->dispatcher()->Drain();
  }
  void CloseCache() {
    if (cache_ == nullptr) return;
    cache_->dispatcher()->Drain();
    cache_->RelinquishVolume(volume_);
    volume_.reset();
    cache_.reset();
  }
  void TearDown() override { CloseCache(); }
  uint64_t Stat(CacheStats::Counter CacheStats::*counter) const {
    return (cache_->stats().*counter).load();
  }

  TempDir dir_;
  KeyHasher hasher_;
  std::unique_ptr<Cache> cache_;
  std::shared_ptr<Volume> volume_;
};

}  // namespace cachefs::testing

#endif  // CACHEFS_TESTS_COOKIE_COOKIE_TEST_UTIL_H_
