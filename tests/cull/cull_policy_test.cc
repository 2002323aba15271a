// The CullPolicy contract, for every registered policy, and exact
// hand-traced eviction orders for each policy.

#include "cull/cull_policy.h"

#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

std::unique_ptr<CullPolicy> Make(const std::string& name, uint64_t capacity) {
  absl::StatusOr<std::unique_ptr<CullPolicy>> p =
      MakeCullPolicy(name, capacity);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

std::vector<CullKey> EvictAll(CullPolicy& p) {
  std::vector<CullKey> order;
  while (std::optional<CullKey> k = p.Evict()) order.push_back(*k);
  return order;
}

TEST(CullPolicyRegistryTest, KnowsEveryPolicyAndTheDefault) {
  const std::vector<std::string> names = CullPolicyNames();
  EXPECT_EQ(names, (std::vector<std::string>{"lru", "arc", "s3fifo", "sieve"}));
  bool has_default = false;
  for (const std::string& n : names) {
    std::unique_ptr<CullPolicy> p = Make(n, 100);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->name(), n);
    EXPECT_EQ(p->capacity(), 100u);
    has_default |= n == kDefaultCullPolicy;
  }
  EXPECT_TRUE(has_default);
}

TEST(CullPolicyRegistryTest, UnknownNameListsTheValidOnes) {
  absl::StatusOr<std::unique_ptr<CullPolicy>> p = MakeCullPolicy("lfu", 1);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "unknown cull policy 'lfu'; valid policies: lru, arc, s3fifo, "
            "sieve");
}

class CullPolicyContractTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CullPolicyContractTest, EvictsEveryResidentKeyOnceThenNothing) {
  std::unique_ptr<CullPolicy> p = Make(GetParam(), 10);
  for (CullKey k = 1; k <= 5; ++k) p->Insert(k, k);
  p->Hit(3, 3);
  EXPECT_EQ(p->size(), 5u);
  EXPECT_EQ(p->bytes(), 15u);
  EXPECT_TRUE(p->Contains(4));
  EXPECT_FALSE(p->Contains(6));
  std::vector<CullKey> order = EvictAll(*p);
  EXPECT_EQ(std::set<CullKey>(order.begin(), order.end()),
            (std::set<CullKey>{1, 2, 3, 4, 5}));
  EXPECT_EQ(order.size(), 5u);
  EXPECT_EQ(p->size(), 0u);
  EXPECT_EQ(p->bytes(), 0u);
  EXPECT_FALSE(p->Contains(3));
}

TEST_P(CullPolicyContractTest, HitResizesAndEraseForgets) {
  std::unique_ptr<CullPolicy> p = Make(GetParam(), 100);
  p->Insert(1, 10);
  p->Insert(2, 20);
  p->Hit(1, 30);  // the object grew
  EXPECT_EQ(p->bytes(), 50u);
  p->Erase(2);
  p->Erase(7);  // not resident: no-op
  EXPECT_FALSE(p->Contains(2));
  EXPECT_EQ(p->size(), 1u);
  EXPECT_EQ(p->bytes(), 30u);
  EXPECT_EQ(EvictAll(*p), std::vector<CullKey>{1});
  // An erased key can come back as a new one.
  p->Insert(2, 5);
  EXPECT_TRUE(p->Contains(2));
  EXPECT_EQ(EvictAll(*p), std::vector<CullKey>{2});
}

TEST_P(CullPolicyContractTest, PassesOverKeysThatCannotBeEvictedNow) {
  std::unique_ptr<CullPolicy> p = Make(GetParam(), 4);
  for (CullKey k = 1; k <= 6; ++k) p->Insert(k, 1);
  p->Hit(5, 1);
  auto unpinned = [](CullKey k) { return k != 1 && k != 2; };
  std::set<CullKey> evicted;
  while (std::optional<CullKey> k = p->Evict(unpinned)) {
    EXPECT_TRUE(unpinned(*k)) << *k;
    evicted.insert(*k);
  }
  EXPECT_EQ(evicted, (std::set<CullKey>{3, 4, 5, 6}));
  EXPECT_TRUE(p->Contains(1));
  EXPECT_TRUE(p->Contains(2));
  EXPECT_EQ(p->Evict([](CullKey) { return false; }), std::nullopt);
  std::vector<CullKey> rest = EvictAll(*p);
  EXPECT_EQ(std::set<CullKey>(rest.begin(), rest.end()),
            (std::set<CullKey>{1, 2}));
}

TEST_P(CullPolicyContractTest, SetCapacityEvictsNothingByItself) {
  std::unique_ptr<CullPolicy> p = Make(GetParam(), 100);
  for (CullKey k = 1; k <= 10; ++k) p->Insert(k, 10);
  p->SetCapacity(20);
  EXPECT_EQ(p->capacity(), 20u);
  EXPECT_EQ(p->size(), 10u);
  EXPECT_EQ(EvictAll(*p).size(), 10u);
}

// Random operations checked against a plain map of what is resident,
// with some keys pinned, as a daemon with open files would have.
TEST_P(CullPolicyContractTest, StaysConsistentUnderRandomOperations) {
  constexpr uint64_t kCapacity = 2000;
  std::unique_ptr<CullPolicy> p = Make(GetParam(), kCapacity);
  std::map<CullKey, uint64_t> resident;
  uint64_t used = 0;
  std::mt19937_64 rng(7);
  auto pinned = [](CullKey k) { return k % 17 == 0; };
  for (int step = 0; step < 50000; ++step) {
    const CullKey key = rng() % 400;
    const uint64_t bytes = 1 + rng() % 50;
    const int op = static_cast<int>(rng() % 10);
    auto it = resident.find(key);
    if (op == 0 && it != resident.end()) {
      p->Erase(key);
      used -= it->second;
      resident.erase(it);
    } else if (it != resident.end()) {
      p->Hit(key, bytes);
      used = used - it->second + bytes;
      it->second = bytes;
    } else {
      p->Insert(key, bytes);
      resident[key] = bytes;
      used += bytes;
    }
    while (used > kCapacity) {
      std::optional<CullKey> victim =
          p->Evict([&](CullKey k) { return !pinned(k); });
      ASSERT_TRUE(victim.has_value()) << "step " << step;
      ASSERT_FALSE(pinned(*victim)) << "step " << step;
      auto v = resident.find(*victim);
      ASSERT_NE(v, resident.end()) << "step " << step << " key " << *victim;
      used -= v->second;
      resident.erase(v);
    }
    ASSERT_EQ(p->size(), resident.size()) << "step " << step;
    ASSERT_EQ(p->bytes(), used) << "step " << step;
    ASSERT_EQ(p->Contains(key), resident.count(key) == 1) << "step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, CullPolicyContractTest,
                         ::testing::ValuesIn(CullPolicyNames()),
                         [](const auto& info) { return info.param; });

// Exact eviction orders, traced by hand from each policy's rules.

TEST(LruPolicyTest, EvictsLeastRecentlyUsedFirst) {
  std::unique_ptr<CullPolicy> p = Make("lru", 3);
  p->Insert(1, 1);
  p->Insert(2, 1);
  p->Insert(3, 1);
  p->Hit(1, 1);
  EXPECT_EQ(EvictAll(*p), (std::vector<CullKey>{2, 3, 1}));
}

TEST(SievePolicyTest, HandKeepsVisitedKeysAndWrapsAround) {
  std::unique_ptr<CullPolicy> p = Make("sieve", 3);
  p->Insert(1, 1);
  p->Insert(2, 1);
  p->Insert(3, 1);
  p->Hit(1, 1);
  // The hand starts at the oldest key, 1: visited, so its bit is cleared
  // and 2 goes; the hand rests on 3.
  EXPECT_EQ(p->Evict(), CullKey{2});
  p->Insert(4, 1);  // at the head, past 3
  EXPECT_EQ(p->Evict(), CullKey{3});
  // The hand moves on to the newest key, 4, which is unvisited; then it
  // wraps to the tail, where 1 lost its bit on the first sweep.
  EXPECT_EQ(p->Evict(), CullKey{4});
  EXPECT_EQ(p->Evict(), CullKey{1});
  EXPECT_EQ(p->Evict(), std::nullopt);
}

TEST(S3FifoPolicyTest, SmallQueuePromotesReusedKeysAndGhostsTheRest) {
  // Capacity 10: the small queue's target is 1 byte.
  std::unique_ptr<CullPolicy> p = Make("s3fifo", 10);
  p->Insert(1, 1);
  p->Hit(1, 1);
  p->Insert(2, 1);
  p->Insert(3, 1);
  // Small holds 3 bytes > 1: its oldest, 1, was used again and moves to
  // main; the next, 2, was not and is evicted into the ghost queue.
  EXPECT_EQ(p->Evict(), CullKey{2});
  // Small (3) is at its target, so main's oldest goes: 1, its counter
  // spent by the move.
  EXPECT_EQ(p->Evict(), CullKey{1});
  // 2 comes back while remembered by the ghost queue: straight to main.
  p->Insert(2, 1);
  EXPECT_EQ(p->Evict(), CullKey{2});
  EXPECT_EQ(p->Evict(), CullKey{3});
  EXPECT_EQ(p->Evict(), std::nullopt);
}

TEST(ArcPolicyTest, AdaptsTargetOnGhostHits) {
  // Capacity 2, unit sizes; each step is what a replay would do: Insert
  // on a miss, Hit on a hit, then Evict while more than 2 are resident.
  std::unique_ptr<CullPolicy> p = Make("arc", 2);
  p->Insert(1, 1);  // T1 = [1]
  p->Insert(2, 1);  // T1 = [2 1]
  p->Hit(1, 1);     // T1 = [2], T2 = [1]
  p->Insert(3, 1);  // T1 = [3 2]; p = 0, so T1 gives its LRU key
  EXPECT_EQ(p->Evict(), CullKey{2});  // B1 = [2]
  p->Insert(2, 1);                    // ghost hit in B1: p = 1, 2 to T2 = [2 1]
  // |T1| = 1 is not over p = 1, so T2 gives its LRU key.
  EXPECT_EQ(p->Evict(), CullKey{1});  // B2 = [1]
  p->Insert(1, 1);                    // ghost hit in B2: p = 0, T2 = [1 2]
  EXPECT_EQ(p->Evict(), CullKey{3});  // |T1| = 1 > 0; B1 = [3]
  p->Insert(3, 1);                    // ghost hit in B1: p = 1, T2 = [3 1 2]
  EXPECT_EQ(p->Evict(), CullKey{2});  // T1 is empty
  EXPECT_TRUE(p->Contains(1));
  EXPECT_TRUE(p->Contains(3));
  EXPECT_EQ(p->size(), 2u);
}

}  // namespace
}  // namespace cachefs
