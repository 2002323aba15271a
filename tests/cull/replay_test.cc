// Replays of synthetic traces whose miss counts can be worked out by hand,
// for every policy and for Belady's MIN.

#include "cull/replay.h"

#include <string>
#include <vector>

#include "cull/belady.h"
#include "cull/cull_policy.h"
#include "gtest/gtest.h"
#include "tests/cull/cull_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using ::cachefs::testing::HotSetWithScansTrace;
using ::cachefs::testing::LoopTrace;
using ::cachefs::testing::UnitTrace;
using ::cachefs::testing::ZipfTrace;

uint64_t PolicyMisses(const std::string& name, const Trace& trace,
                      uint64_t capacity) {
  absl::StatusOr<std::unique_ptr<CullPolicy>> p =
      MakeCullPolicy(name, capacity);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return 0;
  absl::StatusOr<CacheStats> stats = ReplayTrace(trace, **p);
  EXPECT_TRUE(stats.ok()) << stats.status();
  return stats.ok() ? stats->misses : 0;
}

// The textbook reference string (Belady's anomaly) with 3 frames: MIN
// faults 7 times, LRU 10 times.
TEST(ReplayTest, TextbookReferenceString) {
  const Trace t = UnitTrace({1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5});
  EXPECT_EQ(ReplayBelady(t, 3).misses, 7u);
  EXPECT_EQ(PolicyMisses("lru", t, 3), 10u);
}

// A loop one key larger than the cache: LRU, and SIEVE (a FIFO when
// nothing is found visited), always evict the key needed next and miss
// every access. MIN keeps N keys for good and misses only the remaining
// one per round after the N + 1 cold misses: N + rounds.
TEST(ReplayTest, LoopOneLargerThanTheCache) {
  constexpr uint32_t kN = 100;
  constexpr int kRounds = 20;
  const Trace t = LoopTrace(kN + 1, kRounds);
  const uint64_t all = uint64_t{kN + 1} * kRounds;
  EXPECT_EQ(PolicyMisses("lru", t, kN), all);
  EXPECT_EQ(PolicyMisses("sieve", t, kN), all);
  const CacheStats min = ReplayBelady(t, kN);
  EXPECT_EQ(min.misses, kN + kRounds);
  EXPECT_EQ(min.requests, all);
  for (const std::string& name : CullPolicyNames()) {
    EXPECT_LE(min.misses, PolicyMisses(name, t, kN)) << name;
  }
}

// 4 hot keys, each used twice in a row, then a scan of 40 one-time keys,
// 10 times, in a cache of 20. The scans flush LRU's cache, so each round
// LRU misses the 4 hot keys again and the 40 scan keys: 44 per round.
// ARC and S3-FIFO keep the hot keys (T2; main) and let the scans pass
// through T1 / the small queue, so they miss only the first round's hot
// keys and every scan key, which is also what MIN does.
TEST(ReplayTest, HotSetSurvivesScansExceptUnderLru) {
  constexpr int kRounds = 10;
  const Trace t = HotSetWithScansTrace(4, 40, kRounds);
  EXPECT_EQ(PolicyMisses("lru", t, 20), 44u * kRounds);
  EXPECT_EQ(PolicyMisses("arc", t, 20), 4u + 40u * kRounds);
  EXPECT_EQ(PolicyMisses("s3fifo", t, 20), 4u + 40u * kRounds);
  EXPECT_EQ(ReplayBelady(t, 20).misses, 4u + 40u * kRounds);
}

// Independent Zipf accesses reward frequency: ARC and S3-FIFO beat LRU,
// and nothing beats MIN.
TEST(ReplayTest, ZipfOrdersPoliciesAsExpected) {
  const Trace t = ZipfTrace(10000, 0.9, 200000, 42);
  for (uint64_t capacity : {100, 1000}) {
    const uint64_t min = ReplayBelady(t, capacity).misses;
    const uint64_t lru = PolicyMisses("lru", t, capacity);
    for (const std::string& name : CullPolicyNames()) {
      EXPECT_LE(min, PolicyMisses(name, t, capacity))
          << name << " at " << capacity;
    }
    EXPECT_LT(PolicyMisses("arc", t, capacity), lru) << capacity;
    EXPECT_LT(PolicyMisses("s3fifo", t, capacity), lru) << capacity;
  }
}

TEST(ReplayTest, ObjectLargerThanTheCacheIsNeverStored) {
  Trace t;
  t.num_keys = 2;
  t.accesses = {{0, 20}, {1, 5}, {0, 20}, {1, 5}};
  for (const std::string& name : CullPolicyNames()) {
    absl::StatusOr<std::unique_ptr<CullPolicy>> p = MakeCullPolicy(name, 10);
    ASSERT_OK(p);
    absl::StatusOr<CacheStats> stats = ReplayTrace(t, **p);
    ASSERT_OK(stats);
    EXPECT_EQ(stats->misses, 3u) << name;
    EXPECT_EQ(stats->miss_bytes, 45u) << name;
    EXPECT_EQ(stats->request_bytes, 50u) << name;
    EXPECT_DOUBLE_EQ(stats->byte_miss_ratio(), 0.9) << name;
  }
  EXPECT_EQ(ReplayBelady(t, 10).misses, 3u);
}

// An object that grows on a hit pushes another out.
TEST(ReplayTest, GrowingObjectEvictsAnother) {
  Trace t;
  t.num_keys = 2;
  t.accesses = {{0, 4}, {1, 4}, {0, 8}, {1, 4}};
  absl::StatusOr<std::unique_ptr<CullPolicy>> p = MakeCullPolicy("lru", 10);
  ASSERT_OK(p);
  absl::StatusOr<CacheStats> stats = ReplayTrace(t, **p);
  ASSERT_OK(stats);
  EXPECT_EQ(stats->misses, 3u);
  EXPECT_EQ(stats->miss_bytes, 12u);
  // MIN evicts 0 instead (never used again) and so hits 1.
  EXPECT_EQ(ReplayBelady(t, 10).misses, 2u);
}

}  // namespace
}  // namespace cachefs
