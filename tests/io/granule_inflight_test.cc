#include "io/granule_inflight.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cachefs {
namespace {

TEST(GranuleInFlightTest, TryBeginConflictsWithAnyOverlap) {
  GranuleInFlight g;
  EXPECT_TRUE(g.TryBegin(10, 4));  // 10..13
  EXPECT_EQ(g.size(), 4u);
  EXPECT_FALSE(g.TryBegin(13, 2));
  EXPECT_FALSE(g.TryBegin(8, 3));
  EXPECT_FALSE(g.TryBegin(0, 100));
  EXPECT_EQ(g.size(), 4u) << "a failed TryBegin marks nothing";
  EXPECT_TRUE(g.TryBegin(14, 1));
  EXPECT_TRUE(g.TryBegin(9, 1));
  EXPECT_TRUE(g.AnyInRange(0, 10));
  EXPECT_FALSE(g.AnyInRange(0, 9));
  EXPECT_FALSE(g.AnyInRange(15, ~uint64_t{0} - 15));
  g.End(10, 4);
  EXPECT_TRUE(g.TryBegin(11, 2));
  EXPECT_EQ(g.size(), 4u);
}

TEST(GranuleInFlightTest, WaitRangeBlocksUntilEndFromAnotherThread) {
  GranuleInFlight g;
  ASSERT_TRUE(g.TryBegin(5, 2));
  ASSERT_TRUE(g.TryBegin(20, 1));
  absl::Notification returned;
  std::thread waiter([&] {
    g.WaitRange(0, 10);
    returned.Notify();
  });
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Milliseconds(100)))
      << "WaitRange returned with granules 5 and 6 in flight";
  g.End(5, 2);
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(30)));
  waiter.join();
  // A range with nothing in flight does not wait, whatever is elsewhere.
  g.WaitRange(21, 100);
  EXPECT_TRUE(g.AnyInRange(20, 1));
}

TEST(GranuleInFlightTest, WaitAllWaitsForEveryGranule) {
  GranuleInFlight g;
  ASSERT_TRUE(g.TryBegin(1, 1));
  ASSERT_TRUE(g.TryBegin(1000, 3));
  absl::Notification returned;
  std::thread waiter([&] {
    g.WaitAll();
    returned.Notify();
  });
  g.End(1, 1);
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  g.End(1000, 3);
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(30)));
  waiter.join();
  EXPECT_EQ(g.size(), 0u);
}

}  // namespace
}  // namespace cachefs
