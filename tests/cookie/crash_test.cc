// The crash rule (invariant 2): after a crash, a persisted content map never
// claims a granule whose data did not reach the disk. Crashes are simulated
// with FaultInjectionEnv: DropUnsyncedData() loses every data write not yet
// fdatasync'ed, then every further call fails as if the process were gone.

#include <random>

#include "io/fault_injection_env.h"
#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

using Source = ReadSegment::Source;
constexpr uint64_t kGranules = 16;
constexpr unsigned kAllOps = ~0u;

class CrashTest : public CacheTest {
 protected:
  void Store(Cookie& cookie, uint64_t granule) {
    AlignedBuffer buf(kGranule);
    buf.Fill(granule * kGranule, kSeed);
    auto written = WriteSync(cookie, granule * kGranule, buf);
    ASSERT_OK(written);
  }
  // Crashes: unsynced data is lost and the dying process gets nothing more
  // onto the disk, then the cache is reopened on a healthy Env.
  void CrashAndReopen() {
    ASSERT_OK(env_.DropUnsyncedData());
    env_.SetError(kAllOps, EIO);
    CloseCache();
    env_.ClearFaults();
    OpenCache(&env_);
  }
  // Every granule the map claims holds exactly the data stored for it.
  void ExpectClaimsBacked(Cookie& cookie, uint64_t* claimed) {
    *claimed = 0;
    auto plan = cookie.PrepareRead(0, kGranules * kGranule);
    for (const ReadSegment& s : plan.segments()) {
      if (s.source != Source::kCache) continue;
      AlignedBuffer got(s.len);
      ASSERT_OK(ReadSync(plan, s.pos, got));
      EXPECT_TRUE(got.Holds(s.pos, kSeed, s.len))
          << "granules at " << s.pos << " claimed without their data";
      *claimed += s.len / kGranule;
    }
  }

  static constexpr uint32_t kSeed = 3;
  FaultInjectionEnv env_{Env::Default()};
};

TEST_F(CrashTest, CheckpointedGranulesSurviveACrash) {
  OpenCache(&env_);
  auto cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
  for (uint64_t g = 0; g < 4; ++g) Store(*cookie, g);
  ASSERT_OK(cookie->Checkpoint());
  cookie.reset();
  CrashAndReopen();
  cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
  uint64_t claimed = 0;
  ExpectClaimsBacked(*cookie, &claimed);
  EXPECT_EQ(claimed, 4u);
  Relinquish(cookie);
}

TEST_F(CrashTest, CrashBetweenDataWriteAndMapWriteClaimsNothing) {
  OpenCache(&env_);
  auto cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
  for (uint64_t g = 0; g < 4; ++g) Store(*cookie, g);
  cookie.reset();
  CrashAndReopen();
  cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
  uint64_t claimed = 0;
  ExpectClaimsBacked(*cookie, &claimed);
  EXPECT_EQ(claimed, 0u);
  EXPECT_EQ(Stat(&CacheStats::lookups_stale), 1u);
  Relinquish(cookie);
}

TEST_F(CrashTest, FailedSyncNeverWritesACleanMap) {
  OpenCache(&env_);
  auto cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
  for (uint64_t g = 0; g < 4; ++g) Store(*cookie, g);
  env_.SetError(FaultInjectionEnv::kSync, EIO, /*count=*/1);
  EXPECT_FALSE(cookie->Checkpoint().ok());
  cookie.reset();
  CrashAndReopen();
  cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
  uint64_t claimed = 0;
  ExpectClaimsBacked(*cookie, &claimed);
  EXPECT_EQ(claimed, 0u);
  Relinquish(cookie);
}

// Random stores and checkpoints, a crash at a random point, then every
// claim is checked against the data; 20 seeds.
TEST_F(CrashTest, RandomCrashesNeverLeaveAClaimWithoutData) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    OpenCache(&env_);
    auto cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
    int steps = 1 + rng() % 12;
    for (int i = 0; i < steps; ++i) {
      if (rng() % 4 == 0) {
        EXPECT_OK(cookie->Checkpoint());
      } else {
        Store(*cookie, rng() % kGranules);
      }
    }
    cookie.reset();
    CrashAndReopen();
    cookie = volume_->AcquireCookie("f", "aux", kGranules * kGranule);
    uint64_t claimed = 0;
    ExpectClaimsBacked(*cookie, &claimed);
    Relinquish(cookie, /*retire=*/true);
    CloseCache();
  }
}

}  // namespace
}  // namespace cachefs::testing
