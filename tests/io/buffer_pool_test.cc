#include "io/buffer_pool.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

std::unique_ptr<BufferPool> MakePool(size_t size, size_t count) {
  absl::StatusOr<std::unique_ptr<BufferPool>> pool =
      BufferPool::Create(size, count);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return pool.ok() ? std::move(*pool) : nullptr;
}

TEST(BufferPoolTest, BuffersAreAlignedDistinctAndRoundedUp) {
  auto pool = MakePool(5000, 4);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->buffer_size(), 8192u);
  EXPECT_EQ(pool->count(), 4u);
  std::vector<Buffer> held;
  std::set<uint8_t*> seen;
  for (int i = 0; i < 4; ++i) {
    held.push_back(pool->Acquire());
    const Buffer& b = held.back();
    ASSERT_TRUE(b);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 4096, 0u);
    EXPECT_EQ(b.size(), 8192u);
    std::memset(b.data(), i + 1, b.size());  // the whole buffer is usable
    seen.insert(b.data());
  }
  EXPECT_EQ(seen.size(), 4u);
  // Buffers do not overlap: each still holds what was written to it.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(held[i].data()[0], i + 1);
    EXPECT_EQ(held[i].data()[8191], i + 1);
  }
}

TEST(BufferPoolTest, TryAcquireFailsWhenExhausted) {
  auto pool = MakePool(4096, 2);
  Buffer a = pool->TryAcquire();
  Buffer b = pool->TryAcquire();
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_EQ(pool->available(), 0u);
  Buffer c = pool->TryAcquire();
  EXPECT_FALSE(c);
  EXPECT_EQ(c.data(), nullptr);
  a = Buffer();  // returns a's buffer
  EXPECT_EQ(pool->available(), 1u);
  EXPECT_TRUE(pool->TryAcquire());
}

TEST(BufferPoolTest, AcquireBlocksUntilAnotherThreadReleases) {
  auto pool = MakePool(4096, 1);
  Buffer held = pool->Acquire();
  uint8_t* const data = held.data();
  absl::Notification acquired;
  uint8_t* got = nullptr;
  std::thread waiter([&] {
    Buffer b = pool->Acquire();
    got = b.data();
    acquired.Notify();
  });
  EXPECT_FALSE(acquired.WaitForNotificationWithTimeout(absl::Milliseconds(100)))
      << "Acquire returned while the only buffer was held";
  held = Buffer();
  EXPECT_TRUE(acquired.WaitForNotificationWithTimeout(absl::Seconds(30)));
  waiter.join();
  EXPECT_EQ(got, data);
  EXPECT_EQ(pool->available(), 1u);
}

TEST(BufferPoolTest, HandlesAreMovable) {
  auto pool = MakePool(4096, 2);
  Buffer a = pool->Acquire();
  uint8_t* const data = a.data();
  Buffer moved(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(moved.data(), data);
  EXPECT_EQ(pool->available(), 1u);

  Buffer other = pool->Acquire();
  EXPECT_EQ(pool->available(), 0u);
  other = std::move(moved);  // other's old buffer goes back to the pool
  EXPECT_EQ(other.data(), data);
  EXPECT_EQ(pool->available(), 1u);

  std::vector<Buffer> v;
  v.push_back(std::move(other));
  v.push_back(pool->Acquire());
  v.clear();
  EXPECT_EQ(pool->available(), 2u);
}

TEST(BufferPoolTest, RejectsEmptyPools) {
  EXPECT_FALSE(BufferPool::Create(0, 4).ok());
  EXPECT_FALSE(BufferPool::Create(4096, 0).ok());
}

}  // namespace
}  // namespace cachefs
