// Cookies and backing objects: lookup outcomes, persistence of maps and aux
// data, staleness, hash collisions, resize, and cache faults.

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "contentmap/object_record.h"
#include "contentmap/record_store.h"
#include "cookie/object_key.h"
#include "io/errno_status.h"
#include "io/fault_injection_env.h"
#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

using Source = ReadSegment::Source;

class CookieTest : public CacheTest {
 protected:
  // Stores granules [first, first + count) of `cookie` with the pattern.
  void StoreGranules(Cookie& cookie, uint64_t first, uint64_t count,
                     uint32_t seed = 7) {
    AlignedBuffer buf(count * kGranule);
    buf.Fill(first * kGranule, seed);
    auto written = WriteSync(cookie, first * kGranule, buf);
    ASSERT_OK(written);
    ASSERT_EQ(*written, count * kGranule);
  }
  // The path of the backing file for `file_key`.
  std::string ObjectFile(const std::string& file_key) const {
    uint64_t hash = hasher_ ? hasher_(volume_->key(), file_key)
                            : HashObjectKey(volume_->key(), file_key);
    ObjectPath p = ObjectPathFor(hash);
    return Options().directory + "/volumes/" + VolumeDirName(volume_->key()) +
           "/" + p.fan_dir + "/" + p.name;
  }
};

TEST_F(CookieTest, NewKeyIsANegativeLookupWithAnEmptyMap) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("file-a", "aux", 10 * kGranule);
  auto plan = cookie->PrepareRead(0, 10 * kGranule);
  ASSERT_TRUE(plan.has_object());
  ASSERT_EQ(plan.segments().size(), 1u);
  EXPECT_EQ(plan.segments()[0],
            (ReadSegment{Source::kOrigin, 0, 10 * kGranule}));
  EXPECT_EQ(Stat(&CacheStats::lookups_negative), 1u);
  EXPECT_EQ(Stat(&CacheStats::lookups_positive), 0u);
  Relinquish(cookie);
}

TEST_F(CookieTest, StoredGranulesAreServedAfterReopeningTheCache) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("file-a", "aux-1", 8 * kGranule + 100);
  StoreGranules(*cookie, 2, 3);
  // The partial last granule: data up to EOF, padded to the I/O alignment.
  AlignedBuffer tail(4096);
  tail.Fill(8 * kGranule, 7);
  ASSERT_OK(WriteSync(*cookie, 8 * kGranule, tail));
  Relinquish(cookie);
  CloseCache();

  OpenCache();
  cookie = volume_->AcquireCookie("file-a", "aux-1", 8 * kGranule + 100);
  auto plan = cookie->PrepareRead(0, 9 * kGranule);
  std::vector<ReadSegment> want = {
      {Source::kOrigin, 0, 2 * kGranule},
      {Source::kCache, 2 * kGranule, 3 * kGranule},
      {Source::kOrigin, 5 * kGranule, 3 * kGranule},
      {Source::kCache, 8 * kGranule, 100},
  };
  EXPECT_EQ(plan.segments(), want);
  EXPECT_EQ(Stat(&CacheStats::lookups_positive), 1u);
  AlignedBuffer got(3 * kGranule);
  auto read = ReadSync(plan, 2 * kGranule, got);
  ASSERT_OK(read);
  EXPECT_EQ(*read, 3 * kGranule);
  EXPECT_TRUE(got.Holds(2 * kGranule, 7, 3 * kGranule));
  AlignedBuffer got_tail(4096);
  ASSERT_OK(ReadSync(plan, 8 * kGranule, got_tail));
  EXPECT_TRUE(got_tail.Holds(8 * kGranule, 7, 100));
  Relinquish(cookie);
}

TEST_F(CookieTest, DifferentAuxDataMakesTheObjectStale) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "mtime=1", 4 * kGranule);
  StoreGranules(*cookie, 0, 4);
  Relinquish(cookie);
  cookie = volume_->AcquireCookie("f", "mtime=2", 4 * kGranule);
  EXPECT_FALSE(cookie->PrepareRead(0, 4 * kGranule).FullyCached());
  EXPECT_EQ(cookie->PrepareRead(0, 4 * kGranule).segments()[0].source,
            Source::kOrigin);
  EXPECT_EQ(Stat(&CacheStats::lookups_stale), 1u);
  Relinquish(cookie);
}

TEST_F(CookieTest, DifferentSizeMakesTheObjectStale) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 4 * kGranule);
  StoreGranules(*cookie, 0, 4);
  Relinquish(cookie);
  cookie = volume_->AcquireCookie("f", "aux", 4 * kGranule + 1);
  EXPECT_FALSE(cookie->PrepareRead(0, 4 * kGranule).FullyCached());
  EXPECT_EQ(Stat(&CacheStats::lookups_stale), 1u);
  Relinquish(cookie);
}

TEST_F(CookieTest, AuxDataSetLaterIsWrittenBackAtRelinquish) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "v1", 2 * kGranule);
  StoreGranules(*cookie, 0, 2);
  cookie->SetAux("v2");
  Relinquish(cookie);
  cookie = volume_->AcquireCookie("f", "v2", 2 * kGranule);
  EXPECT_TRUE(cookie->PrepareRead(0, 2 * kGranule).FullyCached());
  EXPECT_EQ(Stat(&CacheStats::lookups_positive), 1u);
  Relinquish(cookie);
}

TEST_F(CookieTest, HashCollisionIsDetectedNotServed) {
  hasher_ = [](std::string_view, std::string_view) { return uint64_t{42}; };
  OpenCache();
  auto a = volume_->AcquireCookie("key-a", "aux", 2 * kGranule);
  StoreGranules(*a, 0, 2, /*seed=*/1);
  Relinquish(a);
  // Same name on disk, same aux and size: only the stored key tells.
  auto b = volume_->AcquireCookie("key-b", "aux", 2 * kGranule);
  auto plan = b->PrepareRead(0, 2 * kGranule);
  ASSERT_EQ(plan.segments().size(), 1u);
  EXPECT_EQ(plan.segments()[0].source, Source::kOrigin);
  EXPECT_EQ(Stat(&CacheStats::collisions), 1u);
  EXPECT_EQ(Stat(&CacheStats::lookups_stale), 1u);
  Relinquish(b);
}

TEST_F(CookieTest, ActiveCollidingKeysNeverShareAFile) {
  hasher_ = [](std::string_view, std::string_view) { return uint64_t{42}; };
  OpenCache();
  auto a = volume_->AcquireCookie("key-a", "aux", 2 * kGranule);
  StoreGranules(*a, 0, 2, /*seed=*/1);
  auto b = volume_->AcquireCookie("key-b", "aux", 2 * kGranule);
  EXPECT_FALSE(b->PrepareRead(0, 2 * kGranule).has_object());
  EXPECT_EQ(Stat(&CacheStats::collisions), 1u);
  EXPECT_TRUE(a->PrepareRead(0, 2 * kGranule).FullyCached());
  Relinquish(b);
  Relinquish(a);
}

TEST_F(CookieTest, AClaimOrTicketLetGoWithoutStoringFreesItsGranules) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 4 * kGranule);
  {
    Cookie::FillClaim claim = cookie->ClaimFill(0, 2);
    ASSERT_TRUE(claim);
    // In flight while held: a second claim on them is refused.
    EXPECT_FALSE(cookie->ClaimFill(1, 1));
  }
  {
    Cookie::WriteTicket ticket = cookie->PrepareWrite(0, 4);
    ASSERT_TRUE(ticket);
    EXPECT_FALSE(cookie->ClaimFill(3, 1));
    // A moved ticket holds the granules once, and releases them once.
    Cookie::WriteTicket moved = std::move(ticket);
    EXPECT_FALSE(ticket);
    EXPECT_FALSE(cookie->ClaimFill(3, 1));
  }
  Cookie::FillClaim again = cookie->ClaimFill(0, 4);
  ASSERT_TRUE(again);
  again.Abort();
  EXPECT_FALSE(again);
  // Nothing was stored by any of them.
  EXPECT_FALSE(cookie->PrepareRead(0, 4 * kGranule).FullyCached());
  Relinquish(cookie);
}

TEST_F(CookieTest, CorruptRecordMakesTheObjectStale) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  StoreGranules(*cookie, 0, 2);
  Relinquish(cookie);
  std::string path = ObjectFile("f");
  std::string garbage = "CFS1 this is not a record";
  ASSERT_EQ(setxattr(path.c_str(), kRecordXattr, garbage.data(),
                     garbage.size(), 0), 0);
  cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  EXPECT_FALSE(cookie->PrepareRead(0, 2 * kGranule).FullyCached());
  EXPECT_EQ(Stat(&CacheStats::lookups_stale), 1u);
  Relinquish(cookie);
}

TEST_F(CookieTest, TruncatedBackingFileMakesTheObjectStale) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 4 * kGranule);
  StoreGranules(*cookie, 0, 4);
  Relinquish(cookie);
  ASSERT_EQ(truncate(ObjectFile("f").c_str(), kGranule), 0);
  cookie = volume_->AcquireCookie("f", "aux", 4 * kGranule);
  EXPECT_FALSE(cookie->PrepareRead(0, 4 * kGranule).FullyCached());
  EXPECT_EQ(Stat(&CacheStats::lookups_stale), 1u);
  Relinquish(cookie);
}

TEST_F(CookieTest, RetiredCookieDeletesItsObject) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  StoreGranules(*cookie, 0, 2);
  std::string path = ObjectFile("f");
  ASSERT_EQ(access(path.c_str(), F_OK), 0);
  Relinquish(cookie, /*retire=*/true);
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST_F(CookieTest, SameKeyAcquiredTwiceSharesOneCookie) {
  OpenCache();
  auto a = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  auto b = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  EXPECT_EQ(a, b);
  EXPECT_EQ(volume_->active_cookies(), 1u);
  volume_->RelinquishCookie(a, false);
  cache_->dispatcher()->Drain();
  EXPECT_EQ(volume_->active_cookies(), 1u);
  Relinquish(b);
  EXPECT_EQ(volume_->active_cookies(), 0u);
  EXPECT_EQ(Stat(&CacheStats::cookies_acquired), 2u);
  EXPECT_EQ(Stat(&CacheStats::cookies_relinquished), 1u);
  EXPECT_EQ(Stat(&CacheStats::cookies_active), 0u);
}

TEST_F(CookieTest, WritingAPresentGranuleIsSkipped) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  StoreGranules(*cookie, 0, 1);
  AlignedBuffer buf(kGranule);
  buf.Fill(0, 99);
  auto written = WriteSync(*cookie, 0, buf);
  ASSERT_OK(written);
  EXPECT_EQ(*written, 0u);
  EXPECT_EQ(Stat(&CacheStats::cache_writes_skipped), 1u);
  AlignedBuffer got(kGranule);
  ASSERT_OK(ReadSync(cookie->PrepareRead(0, kGranule), 0, got));
  EXPECT_TRUE(got.Holds(0, 7, kGranule));
  Relinquish(cookie);
}

TEST_F(CookieTest, ShrinkClearsGranulesPastTheNewEndAndKeepsTheCutOne) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 4 * kGranule);
  StoreGranules(*cookie, 0, 4);
  ASSERT_OK(cookie->Resize(2 * kGranule + 10));
  auto plan = cookie->PrepareRead(0, 4 * kGranule);
  // The backing file is cut at the new end too, so the cut granule's
  // cached part is still right.
  std::vector<ReadSegment> want = {
      {Source::kCache, 0, 2 * kGranule + 10},
  };
  EXPECT_EQ(plan.segments(), want);
  Relinquish(cookie);
  cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule + 10);
  EXPECT_EQ(cookie->PrepareRead(0, 4 * kGranule).segments(), want);
  EXPECT_EQ(Stat(&CacheStats::lookups_positive), 1u);
  Relinquish(cookie);
}

TEST_F(CookieTest, VolumeWithOtherCoherencyDataIsDiscarded) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  StoreGranules(*cookie, 0, 2);
  Relinquish(cookie);
  CloseCache();
  auto cache = Cache::Open(Env::Default(), Options());
  ASSERT_OK(cache);
  auto volume = (*cache)->AcquireVolume("test:/origin", "coherency-2");
  ASSERT_OK(volume);
  cookie = (*volume)->AcquireCookie("f", "aux", 2 * kGranule);
  EXPECT_FALSE(cookie->PrepareRead(0, 2 * kGranule).FullyCached());
  EXPECT_EQ((*cache)->stats().lookups_negative.load(), 1u);
  (*volume)->RelinquishCookie(cookie, false);
  (*cache)->dispatcher()->Drain();
  (*cache)->RelinquishVolume(*volume);
}

TEST_F(CookieTest, WithdrawnCacheSendsEverythingToTheOrigin) {
  OpenCache();
  auto cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  StoreGranules(*cookie, 0, 2);
  cache_->Withdraw();
  EXPECT_TRUE(cache_->withdrawn());
  EXPECT_FALSE(cookie->PrepareRead(0, 2 * kGranule).has_object());
  auto other = volume_->AcquireCookie("g", "aux", kGranule);
  EXPECT_FALSE(other->PrepareRead(0, kGranule).has_object());
  Relinquish(other);
  Relinquish(cookie);
  // What was stored before the withdrawal was written back cleanly.
  CloseCache();
  OpenCache();
  cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  EXPECT_TRUE(cookie->PrepareRead(0, 2 * kGranule).FullyCached());
  Relinquish(cookie);
}

// An Env whose monotonic clock only moves when told to, and whose stats
// of directory entries each take a millisecond of it while `slow` is set:
// the walk of the cache directory then takes a known time.
class SlowStatClock : public EnvWrapper {
 public:
  SlowStatClock() : EnvWrapper(Env::Default()) {}
  int64_t MonotonicNanos() override { return now_.load(); }
  absl::StatusOr<struct stat> FStatAt(int dirfd, const std::string& path,
                                      int flags) override {
    if (slow) {
      now_ += 1000000;
      ++stats;
    }
    return EnvWrapper::FStatAt(dirfd, path, flags);
  }
  void Advance(int64_t ns) { now_ += ns; }

  std::atomic<bool> slow{false};
  std::atomic<int> stats{0};

 private:
  std::atomic<int64_t> now_{1000000000};
};

// stats' objects_stored and bytes_stored: a walk of the cache directory is
// reused for 20 times as long as it took, and not after an operator's
// cull (ForgetUsage).
TEST_F(CookieTest, AWalkOfTheCacheIsReusedForTwentyTimesItsLength) {
  SlowStatClock env;
  OpenCache(&env);
  std::vector<std::shared_ptr<Cookie>> cookies;
  auto store = [&](const std::string& key) {
    cookies.push_back(volume_->AcquireCookie(key, "aux", kGranule));
    StoreGranules(*cookies.back(), 0, 1);
  };
  auto usage = [&] {
    env.slow = true;
    Cache::Usage u = cache_->RecentUsage();
    env.slow = false;
    return u;
  };
  store("a");
  store("b");
  const Cache::Usage first = usage();
  EXPECT_EQ(first.objects, 2u);
  EXPECT_GE(first.bytes, 2 * kGranule);
  const int walk_ms = env.stats.load();
  ASSERT_GE(walk_ms, 2);
  store("c");
  env.Advance((20 * walk_ms - 1) * int64_t{1000000});
  EXPECT_EQ(usage().objects, 2u) << "walked again too soon";
  EXPECT_EQ(env.stats.load(), walk_ms);
  env.Advance(int64_t{1000000});
  EXPECT_EQ(usage().objects, 3u) << "the walk was kept too long";
  store("d");
  cache_->ForgetUsage();
  EXPECT_EQ(usage().objects, 4u);
  for (auto& cookie : cookies) Relinquish(std::move(cookie));
  CloseCache();  // before `env` goes
}

}  // namespace
}  // namespace cachefs::testing
