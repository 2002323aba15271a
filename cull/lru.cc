// lru: evicts the least recently used key. The baseline every other
// policy is measured against; at 256 KiB granules it is hard to beat,
// because the file-level reuse cachefs sees is mostly recency.

#include <optional>

#include "cull/keyed_lists.h"
#include "cull/policies.h"

namespace cachefs {
namespace {

class LruPolicy final : public CullPolicy {
 public:
  explicit LruPolicy(uint64_t capacity_bytes) : CullPolicy(capacity_bytes) {}

  std::string_view name() const override { return "lru"; }
  void Reserve(size_t keys) override { lists_.Reserve(keys); }

  void Insert(CullKey key, uint64_t bytes) override {
    lists_.Add(key, bytes, kList);
  }

  void Hit(CullKey key, uint64_t bytes) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n == KeyedLists::kNone) return;
    lists_.SetBytes(n, bytes);
    lists_.MoveToFront(n, kList);
  }

  void Erase(CullKey key) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n != KeyedLists::kNone) lists_.Remove(n);
  }

  // Skipped keys keep their place, so they are the first candidates again
  // once released; the cost is one step per skipped key.
  std::optional<CullKey> Evict(
      const std::function<bool(CullKey)>& evictable) override {
    for (KeyedLists::Node n = lists_.list(kList).tail; n != KeyedLists::kNone;
         n = lists_.newer(n)) {
      const CullKey key = lists_.key(n);
      if (!evictable(key)) continue;
      lists_.Remove(n);
      return key;
    }
    return std::nullopt;
  }

  bool Contains(CullKey key) const override {
    return lists_.Find(key) != KeyedLists::kNone;
  }
  uint64_t size() const override { return lists_.list(kList).count; }
  uint64_t bytes() const override { return lists_.list(kList).bytes; }

 private:
  static constexpr int kList = 0;
  KeyedLists lists_{1};
};

}  // namespace

std::unique_ptr<CullPolicy> NewLruPolicy(uint64_t capacity_bytes) {
  return std::make_unique<LruPolicy>(capacity_bytes);
}

}  // namespace cachefs
