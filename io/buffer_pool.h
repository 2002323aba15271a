// BufferPool: a fixed set of equally sized, page-aligned buffers for
// O_DIRECT transfers, allocated once so the hot path never allocates.
//
// Thread safety: safe for concurrent use. A Buffer is owned by one user at a
// time and returns itself to the pool when destroyed.

#ifndef CACHEFS_IO_BUFFER_POOL_H_
#define CACHEFS_IO_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace cachefs {

class BufferPool;

// A borrowed buffer; movable, returned to its pool on destruction.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return data_ != nullptr; }

 private:
  friend class BufferPool;
  Buffer(BufferPool* pool, uint8_t* data, size_t size)
      : pool_(pool), data_(data), size_(size) {}
  void Reset();

  BufferPool* pool_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class BufferPool {
 public:
  // `buffer_size` is rounded up to a multiple of 4096.
  static absl::StatusOr<std::unique_ptr<BufferPool>> Create(size_t buffer_size,
                                                            size_t count);
  ~BufferPool();  // REQUIRES: every Buffer has been returned.

  size_t buffer_size() const { return buffer_size_; }
  size_t count() const { return count_; }

  // Blocks until a buffer is free.
  Buffer Acquire();
  // Returns an empty Buffer if none is free.
  Buffer TryAcquire();
  size_t available() const;

 private:
  friend class Buffer;
  BufferPool(uint8_t* region, size_t buffer_size, size_t count);
  void Release(uint8_t* data);

  uint8_t* const region_;
  const size_t buffer_size_;
  const size_t count_;
  mutable absl::Mutex mu_;
  std::vector<uint8_t*> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_IO_BUFFER_POOL_H_
