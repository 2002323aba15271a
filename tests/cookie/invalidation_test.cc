// Invalidation with I/O in flight, and many threads acquiring and
// relinquishing the same keys (run under ThreadSanitizer in CI).

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "io/countdown.h"
#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

using Source = ReadSegment::Source;

TEST_F(CacheTest, InvalidationLetsReadsInFlightFinishOnTheOldObject) {
  OpenCache();
  constexpr uint64_t kGranules = 16;
  auto cookie = volume_->AcquireCookie("f", "v1", kGranules * kGranule);
  AlignedBuffer all(kGranules * kGranule);
  all.Fill(0, 11);
  ASSERT_OK(WriteSync(*cookie, 0, all));
  auto plan = cookie->PrepareRead(0, kGranules * kGranule);
  ASSERT_TRUE(plan.FullyCached());

  constexpr int kReads = 64;
  std::vector<std::unique_ptr<AlignedBuffer>> bufs;
  std::vector<iovec> iovs(kReads);
  std::atomic<int> ok{0};
  Countdown done(kReads);
  for (int i = 0; i < kReads; ++i) {
    bufs.push_back(std::make_unique<AlignedBuffer>(kGranule));
    iovs[i] = bufs.back()->iov();
    plan.Read((i % kGranules) * kGranule, {&iovs[i], 1},
              [&](absl::StatusOr<size_t> r) {
                if (r.ok() && *r == kGranule) ok.fetch_add(1);
                done.Done();
              });
  }
  cookie->Invalidate("v2", kGranules * kGranule);
  // New reads see an empty object at once.
  auto fresh = cookie->PrepareRead(0, kGranules * kGranule);
  ASSERT_TRUE(fresh.has_object());
  EXPECT_FALSE(fresh.SameObject(plan));
  ASSERT_EQ(fresh.segments().size(), 1u);
  EXPECT_EQ(fresh.segments()[0].source, Source::kOrigin);
  done.Wait();
  EXPECT_EQ(ok.load(), kReads);
  for (int i = 0; i < kReads; ++i) {
    EXPECT_TRUE(bufs[i]->Holds((i % kGranules) * kGranule, 11, kGranule));
  }
  EXPECT_EQ(Stat(&CacheStats::invalidations), 1u);
  // Data stored after the invalidation is what the new object keeps.
  AlignedBuffer one(kGranule);
  one.Fill(0, 12);
  ASSERT_OK(WriteSync(*cookie, 0, one));
  plan = {};
  Relinquish(cookie);
  cookie = volume_->AcquireCookie("f", "v2", kGranules * kGranule);
  auto after = cookie->PrepareRead(0, kGranules * kGranule);
  ASSERT_EQ(after.segments().size(), 2u);
  EXPECT_EQ(after.segments()[0], (ReadSegment{Source::kCache, 0, kGranule}));
  AlignedBuffer got(kGranule);
  ASSERT_OK(ReadSync(after, 0, got));
  EXPECT_TRUE(got.Holds(0, 12, kGranule));
  Relinquish(cookie);
}

TEST_F(CacheTest, AcquiringWithNewAuxInvalidatesTheActiveCookie) {
  OpenCache();
  auto a = volume_->AcquireCookie("f", "v1", 2 * kGranule);
  AlignedBuffer buf(2 * kGranule);
  buf.Fill(0, 5);
  ASSERT_OK(WriteSync(*a, 0, buf));
  auto b = volume_->AcquireCookie("f", "v2", 2 * kGranule);
  EXPECT_EQ(a, b);
  EXPECT_EQ(b->aux(), "v2");
  EXPECT_FALSE(b->PrepareRead(0, 2 * kGranule).FullyCached());
  volume_->RelinquishCookie(a, false);
  Relinquish(b);
}

TEST_F(CacheTest, ManyThreadsAcquireAndRelinquishTheSameKeys) {
  OpenCache();
  constexpr int kThreads = 8;
  constexpr int kIterations = 150;
  constexpr uint64_t kGranules = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      std::mt19937 rng(t + 1);
      AlignedBuffer buf(kGranule);
      for (int i = 0; i < kIterations; ++i) {
        std::string key = "key-" + std::to_string(rng() % 4);
        auto cookie = volume_->AcquireCookie(key, "aux", kGranules * kGranule);
        uint64_t g = rng() % kGranules;
        if (rng() % 2 == 0) {
          buf.Fill(g * kGranule, 21);
          EXPECT_OK(WriteSync(*cookie, g * kGranule, buf));
        } else {
          auto plan = cookie->PrepareRead(g * kGranule, kGranule);
          if (plan.FullyCached()) {
            EXPECT_OK(ReadSync(plan, g * kGranule, buf));
            EXPECT_TRUE(buf.Holds(g * kGranule, 21, kGranule));
          }
        }
        volume_->RelinquishCookie(std::move(cookie), false);
      }
    });
  }
  for (auto& t : threads) t.join();
  cache_->dispatcher()->Drain();
  EXPECT_EQ(volume_->active_cookies(), 0u);
  EXPECT_EQ(Stat(&CacheStats::cookies_active), 0u);
  EXPECT_EQ(Stat(&CacheStats::cookies_acquired), uint64_t{kThreads} * kIterations);
  // Whatever each key's map claims now is backed by the right data.
  for (int k = 0; k < 4; ++k) {
    auto cookie = volume_->AcquireCookie("key-" + std::to_string(k), "aux",
                                         kGranules * kGranule);
    auto plan = cookie->PrepareRead(0, kGranules * kGranule);
    for (const ReadSegment& s : plan.segments()) {
      if (s.source != Source::kCache) continue;
      AlignedBuffer got(s.len);
      ASSERT_OK(ReadSync(plan, s.pos, got));
      EXPECT_TRUE(got.Holds(s.pos, 21, s.len));
    }
    Relinquish(cookie);
  }
}

TEST_F(CacheTest, WithdrawalRacingRelinquishmentLosesNothing) {
  OpenCache();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i) {
        auto cookie = volume_->AcquireCookie(
            "k" + std::to_string((t * 50 + i) % 7), "aux", kGranule);
        cookie->PrepareRead(0, kGranule);
        volume_->RelinquishCookie(std::move(cookie), false);
      }
    });
  }
  cache_->Withdraw();
  for (auto& t : threads) t.join();
  cache_->dispatcher()->Drain();
  EXPECT_EQ(volume_->active_cookies(), 0u);
  EXPECT_EQ(Stat(&CacheStats::cookies_active), 0u);
}

}  // namespace
}  // namespace cachefs::testing
