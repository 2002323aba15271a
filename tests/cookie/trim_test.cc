// Culling cold granules out of a live object (Cookie::TrimCold): which
// granules go (a CLOCK over the present ones), that readers who planned a
// cache read are waited for, that the space is really freed, the crash
// rule, and what a failed punch does.

#include <sys/stat.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "cookie/object_key.h"
#include "io/fault_injection_env.h"
#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

class TrimTest : public CacheTest {
 protected:
  // An open cookie for "big" with granules [0, n) stored (seed 5).
  std::shared_ptr<Cookie> OpenStored(uint64_t n) {
    auto cookie = volume_->AcquireCookie("big", "aux", n * kGranule);
    AlignedBuffer buf(n * kGranule);
    buf.Fill(0, 5);
    auto written = WriteSync(*cookie, 0, buf);
    EXPECT_OK(written);
    return cookie;
  }
  static std::vector<uint64_t> Present(Cookie& cookie) {
    std::vector<uint64_t> out;
    cookie.WaitReady();
    if (!cookie.has_object()) return {~uint64_t{0}};
    ContentMap map = CookieInspector::ObjectOf(cookie)->MapSnapshot();
    for (uint64_t g = 0; g < map.num_granules(); ++g) {
      if (map.IsPresent(g)) out.push_back(g);
    }
    return out;
  }
  // Whether granule `g` reads back from the cache with the stored data.
  static bool ReadsBack(Cookie& cookie, uint64_t g) {
    Cookie::ReadPlan plan = cookie.PrepareRead(g * kGranule, kGranule);
    if (!plan.FullyCached()) return false;
    AlignedBuffer buf(kGranule);
    auto n = ReadSync(plan, g * kGranule, buf);
    return n.ok() && *n == kGranule && buf.Holds(g * kGranule, 5, kGranule);
  }
  // Blocks the backing file of "big" holds, in granules (rounded down).
  uint64_t AllocatedGranules(const Cookie& cookie) const {
    struct stat st;
    if (fstat(CookieInspector::ObjectOf(cookie)->file().fd, &st) != 0)
      return ~uint64_t{0};
    return static_cast<uint64_t>(st.st_blocks) * 512 / kGranule;
  }
  // Granules culled by a trim of up to `max`; ~0 if it failed.
  static uint64_t Trim(Cookie& cookie, uint64_t max) {
    absl::StatusOr<BackingObject::Trimmed> trimmed = cookie.TrimCold(max);
    return trimmed.ok() ? trimmed->granules : ~uint64_t{0};
  }
  // Until a trim running on another thread has cleared granule `g` (and so
  // moved on to waiting for earlier readers).
  static bool WaitCleared(Cookie& cookie, uint64_t g) {
    return Eventually(
        [&] { return !CookieInspector::ObjectOf(cookie)->IsPresent(g); },
        absl::Seconds(5), absl::Milliseconds(5));
  }
  // Outlives the cache, which TearDown closes.
  FaultInjectionEnv fault_env_{Env::Default()};
};

TEST_F(TrimTest, TheClockTakesUnreferencedGranulesFromTheHandOn) {
  OpenCache();
  auto cookie = OpenStored(16);
  // Stored granules start referenced: the hand's first turn only clears
  // their bits, the second takes granule 0.
  EXPECT_EQ(Trim(*cookie, 1), 1u);
  EXPECT_FALSE(ReadsBack(*cookie, 0));
  // Granules 1..4 are read again: a second chance each. The next seven
  // unreferenced ones from the hand (granule 1) on are 5..11.
  for (uint64_t g = 1; g <= 4; ++g) EXPECT_TRUE(ReadsBack(*cookie, g));
  EXPECT_EQ(Trim(*cookie, 7), 7u);
  EXPECT_EQ(Present(*cookie),
            (std::vector<uint64_t>{1, 2, 3, 4, 12, 13, 14, 15}));
  for (uint64_t g : Present(*cookie)) EXPECT_TRUE(ReadsBack(*cookie, g)) << g;
  // The space is freed, not only the bits.
  EXPECT_EQ(AllocatedGranules(*cookie), 8u);
  EXPECT_EQ(Stat(&CacheStats::objects_withdrawn), 0u);
  Relinquish(cookie);
}

TEST_F(TrimTest, CulledGranulesAreFetchedAndStoredAgain) {
  OpenCache();
  auto cookie = OpenStored(4);
  EXPECT_EQ(Trim(*cookie, 4), 4u);
  EXPECT_TRUE(Present(*cookie).empty());
  AlignedBuffer buf(kGranule);
  buf.Fill(2 * kGranule, 5);
  auto written = WriteSync(*cookie, 2 * kGranule, buf);
  ASSERT_OK(written);
  EXPECT_EQ(*written, kGranule);
  EXPECT_TRUE(ReadsBack(*cookie, 2));
  Relinquish(cookie);
}

TEST_F(TrimTest, ATrimWaitsForReadersThatPlannedACacheRead) {
  OpenCache();
  auto cookie = OpenStored(4);
  Cookie::ReadPlan plan = cookie->PrepareRead(0, 4 * kGranule);
  ASSERT_TRUE(plan.FullyCached());
  std::atomic<bool> trimmed{false};
  uint64_t count = 0;
  std::thread trimmer([&] {
    count = Trim(*cookie, 4);
    trimmed = true;
  });
  ASSERT_TRUE(WaitCleared(*cookie, 3));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(trimmed.load()) << "the trim did not wait for the reader";
  // The planned read still finds the data, not holes.
  AlignedBuffer buf(4 * kGranule);
  auto n = ReadSync(plan, 0, buf);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 4 * kGranule);
  EXPECT_TRUE(buf.Holds(0, 5, 4 * kGranule));
  plan.Unpin();
  trimmer.join();
  EXPECT_EQ(count, 4u);
  EXPECT_FALSE(cookie->PrepareRead(0, 4 * kGranule).FullyCached());
  Relinquish(cookie);
}

TEST_F(TrimTest, ReadersPlannedAfterTheTrimStartedAreNotWaitedFor) {
  OpenCache();
  auto cookie = OpenStored(8);
  // A reader of granules the trim leaves alone keeps its pin throughout.
  ASSERT_EQ(Trim(*cookie, 4), 4u);  // 0..3 go
  // 4..7 are read again (their bits set), 4 is being read.
  for (uint64_t g = 4; g < 8; ++g) EXPECT_TRUE(ReadsBack(*cookie, g));
  Cookie::ReadPlan early = cookie->PrepareRead(4 * kGranule, kGranule);
  ASSERT_TRUE(early.FullyCached());
  // The hand clears 4..7's bits and takes 4, then waits for `early`.
  std::thread trimmer([&] { EXPECT_EQ(Trim(*cookie, 1), 1u); });
  ASSERT_TRUE(WaitCleared(*cookie, 4));
  // A read planned now, while the trim waits for `early`, is in the next
  // epoch: releasing `early` is enough for the trim to finish.
  Cookie::ReadPlan late = cookie->PrepareRead(7 * kGranule, kGranule);
  early.Unpin();
  trimmer.join();
  late.Unpin();
  EXPECT_EQ(Present(*cookie).size(), 3u);
  Relinquish(cookie);
}

TEST_F(TrimTest, TheRecordIsDirtyUntilTheNextCheckpointAndThenLacksTheVictims) {
  OpenCache();
  auto cookie = OpenStored(8);
  ASSERT_OK(cookie->Checkpoint());
  const uint64_t hash = CookieInspector::ObjectOf(*cookie)->hash();
  auto before = volume_->DescribeObject(hash);
  ASSERT_OK(before);
  EXPECT_TRUE(before->clean);
  EXPECT_EQ(before->granules_present, 8u);
  ASSERT_EQ(Trim(*cookie, 3), 3u);
  // A crash now must not find a clean record naming punched granules.
  auto during = volume_->DescribeObject(hash);
  ASSERT_OK(during);
  EXPECT_FALSE(during->clean);
  ASSERT_OK(cookie->Checkpoint());
  auto after = volume_->DescribeObject(hash);
  ASSERT_OK(after);
  EXPECT_TRUE(after->clean);
  Relinquish(cookie);
  after = volume_->DescribeObject(hash);  // now from the record alone
  ASSERT_OK(after);
  EXPECT_TRUE(after->clean);
  EXPECT_EQ(after->granules_present, 5u);
  // Reopened: what is left is served, what went is not.
  auto again = volume_->AcquireCookie("big", "aux", 8 * kGranule);
  EXPECT_EQ(Present(*again), (std::vector<uint64_t>{3, 4, 5, 6, 7}));
  for (uint64_t g = 3; g < 8; ++g) EXPECT_TRUE(ReadsBack(*again, g)) << g;
  Relinquish(again);
}

TEST_F(TrimTest, GranulesBeingWrittenArePassedOver) {
  OpenCache();
  auto cookie = OpenStored(4);
  // A write ticket on granule 0 keeps the trim off it.
  Cookie::WriteTicket ticket = cookie->PrepareWrite(0, 1);
  ASSERT_TRUE(ticket);
  EXPECT_EQ(Trim(*cookie, 4), 3u);
  ticket.Release();
  EXPECT_EQ(Present(*cookie), (std::vector<uint64_t>{0}));
  Relinquish(cookie);
}

TEST_F(TrimTest, AFailedPunchWithdrawsTheObject) {
  OpenCache(&fault_env_);
  auto cookie = OpenStored(4);
  fault_env_.SetError(FaultInjectionEnv::kTruncate, EIO, /*count=*/1);
  auto trimmed = cookie->TrimCold(2);
  ASSERT_OK(trimmed);
  EXPECT_EQ(trimmed->granules, 0u);
  EXPECT_FALSE(cookie->has_object());
  EXPECT_EQ(Stat(&CacheStats::objects_withdrawn), 1u);
  // The reader is not told: everything now comes from the origin.
  EXPECT_FALSE(cookie->PrepareRead(0, kGranule).FullyCached());
  Relinquish(cookie);
}

TEST_F(TrimTest, WithoutHolePunchingNothingIsCulledAndNothingLost) {
  OpenCache(&fault_env_);
  auto cookie = OpenStored(4);
  fault_env_.SetError(FaultInjectionEnv::kTruncate, EOPNOTSUPP, /*count=*/1);
  auto trimmed = cookie->TrimCold(2);
  EXPECT_TRUE(absl::IsUnimplemented(trimmed.status())) << trimmed.status();
  EXPECT_EQ(Stat(&CacheStats::objects_withdrawn), 0u);
  EXPECT_EQ(Present(*cookie), (std::vector<uint64_t>{0, 1, 2, 3}));
  for (uint64_t g = 0; g < 4; ++g) EXPECT_TRUE(ReadsBack(*cookie, g)) << g;
  Relinquish(cookie);
}

}  // namespace
}  // namespace cachefs::testing

namespace cachefs::testing {
namespace {

// The events `cachefs-ctl trace` shows for the cookie layer: acquire, the
// object's lookup, stores, a trim (cull) and a withdrawal, each once.
TEST_F(TrimTest, TheTraceShowsAcquireStoreCullAndWithdraw) {
  OpenCache(&fault_env_);
  std::shared_ptr<Tracer::Listener> listener = cache_->tracer().Listen();
  auto cookie = OpenStored(4);
  ASSERT_EQ(Trim(*cookie, 1), 1u);
  fault_env_.SetError(FaultInjectionEnv::kTruncate, EIO, /*count=*/1);
  ASSERT_OK(cookie->TrimCold(1));
  Relinquish(cookie);
  cache_->tracer().Unlisten(listener);
  uint64_t dropped = 0;
  std::vector<std::string> seen;
  for (const TraceEvent& e : listener->Take(absl::ZeroDuration(), &dropped)) {
    EXPECT_EQ(e.key, "big") << e.kind;
    seen.push_back(e.kind);
  }
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(seen, (std::vector<std::string>{"acquire", "lookup", "store",
                                            "cull", "withdraw",
                                            "relinquish"}));
}

}  // namespace
}  // namespace cachefs::testing
