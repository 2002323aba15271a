#include "cookie/dispatcher.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace cachefs {
namespace {

TEST(DispatcherTest, RunsEveryJob) {
  CacheStats stats;
  std::atomic<int> ran{0};
  {
    Dispatcher dispatcher(3, &stats);
    for (int i = 0; i < 500; ++i) dispatcher.Dispatch([&] { ran++; });
    dispatcher.Drain();
    EXPECT_EQ(ran.load(), 500);
  }
  EXPECT_EQ(stats.dispatch_pooled.load() + stats.dispatch_inline.load(), 500u);
}

TEST(DispatcherTest, WithoutIdleThreadsTheCallerRunsTheJob) {
  CacheStats stats;
  Dispatcher dispatcher(1, &stats);
  absl::Notification release;
  absl::Notification started;
  const auto caller = std::this_thread::get_id();
  // Occupy the only thread (bounded: give the pool up to 5 s to pick it up).
  // A job the caller ran itself does not count and must not block.
  for (int i = 0; i < 500 && !started.HasBeenNotified(); ++i) {
    dispatcher.Dispatch([&] {
      if (std::this_thread::get_id() != caller &&
          !started.HasBeenNotified()) {
        started.Notify();
        release.WaitForNotification();
      }
    });
    started.WaitForNotificationWithTimeout(absl::Milliseconds(10));
  }
  ASSERT_TRUE(started.HasBeenNotified());
  uint64_t inline_before = stats.dispatch_inline.load();
  std::thread::id ran_on;
  dispatcher.Dispatch([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(stats.dispatch_inline.load(), inline_before + 1);
  release.Notify();
  dispatcher.Drain();
}

TEST(DispatcherTest, IdleThreadsTakeJobsOffTheCaller) {
  CacheStats stats;
  Dispatcher dispatcher(2, &stats);
  // The pool threads start asynchronously; once idle, a job is handed over.
  bool pooled = false;
  for (int i = 0; i < 500 && !pooled; ++i) {
    std::atomic<bool> other_thread{false};
    auto caller = std::this_thread::get_id();
    dispatcher.Dispatch([&] { other_thread = std::this_thread::get_id() != caller; });
    dispatcher.Drain();
    pooled = other_thread.load();
    if (!pooled) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(pooled);
  EXPECT_GE(stats.dispatch_pooled.load(), 1u);
}

TEST(DispatcherTest, ZeroThreadsRunsEverythingInline) {
  CacheStats stats;
  Dispatcher dispatcher(0, &stats);
  int ran = 0;
  for (int i = 0; i < 10; ++i) dispatcher.Dispatch([&] { ran++; });
  EXPECT_EQ(ran, 10);
  EXPECT_EQ(stats.dispatch_inline.load(), 10u);
  EXPECT_EQ(stats.dispatch_pooled.load(), 0u);
}

}  // namespace
}  // namespace cachefs
