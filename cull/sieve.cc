// sieve: SIEVE (Zhang et al., NSDI'24). One FIFO queue and a "hand" that
// sweeps it from the oldest key toward the newest: a key used since the
// hand last passed (visited bit set) has the bit cleared and is kept in
// place; the first unvisited key is the victim. New keys enter at the
// head. Hits only set a bit, which is cheaper than LRU's move-to-front and
// lets one-time keys leave before keys that were used twice.

#include <optional>

#include "cull/keyed_lists.h"
#include "cull/policies.h"

namespace cachefs {
namespace {

class SievePolicy final : public CullPolicy {
 public:
  explicit SievePolicy(uint64_t capacity_bytes) : CullPolicy(capacity_bytes) {}

  std::string_view name() const override { return "sieve"; }
  void Reserve(size_t keys) override { lists_.Reserve(keys); }

  void Insert(CullKey key, uint64_t bytes) override {
    lists_.Add(key, bytes, kQueue);
  }

  void Hit(CullKey key, uint64_t bytes) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n == KeyedLists::kNone) return;
    lists_.SetBytes(n, bytes);
    lists_.set_mark(n, kVisited);
  }

  void Erase(CullKey key) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n == KeyedLists::kNone) return;
    if (hand_ == n) hand_ = lists_.newer(n);
    lists_.Remove(n);
  }

  // A key the daemon cannot remove is passed over like a visited one but
  // keeps its bit. Two sweeps clear every bit, so past that nothing is
  // evictable.
  std::optional<CullKey> Evict(
      const std::function<bool(CullKey)>& evictable) override {
    const uint64_t limit = 2 * lists_.list(kQueue).count + 1;
    KeyedLists::Node n = hand_;
    for (uint64_t steps = 0; steps < limit; ++steps) {
      if (n == KeyedLists::kNone) n = lists_.list(kQueue).tail;
      if (n == KeyedLists::kNone) break;
      if (lists_.mark(n) == kVisited) {
        lists_.set_mark(n, 0);
        n = lists_.newer(n);
        continue;
      }
      const CullKey key = lists_.key(n);
      if (!evictable(key)) {
        n = lists_.newer(n);
        continue;
      }
      hand_ = lists_.newer(n);
      lists_.Remove(n);
      return key;
    }
    hand_ = n;
    return std::nullopt;
  }

  bool Contains(CullKey key) const override {
    return lists_.Find(key) != KeyedLists::kNone;
  }
  uint64_t size() const override { return lists_.list(kQueue).count; }
  uint64_t bytes() const override { return lists_.list(kQueue).bytes; }

 private:
  static constexpr int kQueue = 0;
  static constexpr uint8_t kVisited = 1;
  KeyedLists lists_{1};
  // The next key the sweep looks at; kNone means start at the tail.
  KeyedLists::Node hand_ = KeyedLists::kNone;
};

}  // namespace

std::unique_ptr<CullPolicy> NewSievePolicy(uint64_t capacity_bytes) {
  return std::make_unique<SievePolicy>(capacity_bytes);
}

}  // namespace cachefs
