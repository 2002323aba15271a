#include "io/buffer_pool.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

constexpr size_t kAlignment = 4096;

}  // namespace

Buffer::Buffer(Buffer&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Reset();
    pool_ = std::exchange(other.pool_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Buffer::~Buffer() { Reset(); }

void Buffer::Reset() {
  if (data_ != nullptr) pool_->Release(data_);
  pool_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

absl::StatusOr<std::unique_ptr<BufferPool>> BufferPool::Create(
    size_t buffer_size, size_t count) {
  if (buffer_size == 0 || count == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BufferPool needs a non-zero size and count, got ", buffer_size,
        " x ", count));
  }
  buffer_size = (buffer_size + kAlignment - 1) / kAlignment * kAlignment;
  if (count > SIZE_MAX / buffer_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BufferPool of ", count, " x ", buffer_size, " bytes overflows"));
  }
  // One anonymous mapping: page-aligned, and untouched pages cost nothing
  // until first use.
  void* region = mmap(nullptr, buffer_size * count, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    return ErrnoToStatus(errno, absl::StrCat("mmap of a buffer pool of ",
                                             count, " x ", buffer_size,
                                             " bytes"));
  }
  return std::unique_ptr<BufferPool>(
      new BufferPool(static_cast<uint8_t*>(region), buffer_size, count));
}

BufferPool::BufferPool(uint8_t* region, size_t buffer_size, size_t count)
    : region_(region), buffer_size_(buffer_size), count_(count) {
  free_.reserve(count);
  // Handed out lowest address first (taken from the back).
  for (size_t i = count; i > 0; --i) {
    free_.push_back(region_ + (i - 1) * buffer_size_);
  }
}

BufferPool::~BufferPool() {
  size_t returned;
  {
    absl::MutexLock lock(&mu_);
    returned = free_.size();
  }
  if (returned != count_) {
    // A live Buffer would point into unmapped memory: fail here, not later.
    fprintf(stderr, "BufferPool destroyed with %zu of %zu buffers in use\n",
            count_ - returned, count_);
    abort();
  }
  munmap(region_, buffer_size_ * count_);
}

Buffer BufferPool::Acquire() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::vector<uint8_t*>* f) { return !f->empty(); }, &free_));
  uint8_t* data = free_.back();
  free_.pop_back();
  return Buffer(this, data, buffer_size_);
}

Buffer BufferPool::TryAcquire() {
  absl::MutexLock lock(&mu_);
  if (free_.empty()) return Buffer();
  uint8_t* data = free_.back();
  free_.pop_back();
  return Buffer(this, data, buffer_size_);
}

size_t BufferPool::available() const {
  absl::MutexLock lock(&mu_);
  return free_.size();
}

void BufferPool::Release(uint8_t* data) {
  absl::MutexLock lock(&mu_);
  free_.push_back(data);
}

}  // namespace cachefs
