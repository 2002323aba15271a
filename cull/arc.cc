// arc: ARC (Megiddo & Modha, FAST'03), counted in bytes. Resident keys are
// on T1 (used once since they entered) or T2 (used at least twice); keys
// evicted from them are remembered, without data, on the ghost lists B1
// and B2. A miss on a B1 ghost says T1 was too small, one on a B2 ghost
// that T2 was, and the target size p of T1 moves accordingly. So ARC
// behaves as LRU when recency is what pays and shields the frequently used
// keys from scans when it is not, with no parameter to tune; that is why
// it stays close to LRU where LRU is hard to beat, at 256 KiB granules and
// small caches, and gains where there is frequency to exploit.
//
// The paper counts pages; here every size and p are bytes, and p moves by
// the size of the key that hit the ghost, scaled as in the paper by the
// ratio of the ghost lists' sizes.

#include <algorithm>
#include <optional>

#include "cull/keyed_lists.h"
#include "cull/policies.h"

namespace cachefs {
namespace {

class ArcPolicy final : public CullPolicy {
 public:
  explicit ArcPolicy(uint64_t capacity_bytes) : CullPolicy(capacity_bytes) {}

  std::string_view name() const override { return "arc"; }
  void Reserve(size_t keys) override { lists_.Reserve(keys); }

  void Insert(CullKey key, uint64_t bytes) override {
    KeyedLists::Node n = lists_.Find(key);
    last_insert_from_b2_ = false;
    if (n == KeyedLists::kNone) {
      newest_t1_ = lists_.Add(key, bytes, kT1);
    } else {
      const uint64_t b1 = lists_.list(kB1).bytes;
      const uint64_t b2 = lists_.list(kB2).bytes;
      if (lists_.list_of(n) == kB1) {
        p_ = std::min(capacity(), p_ + Delta(bytes, b1, b2));
      } else {
        const uint64_t delta = Delta(bytes, b2, b1);
        p_ = p_ > delta ? p_ - delta : 0;
        last_insert_from_b2_ = true;
      }
      lists_.SetBytes(n, bytes);
      lists_.MoveToFront(n, kT2);
      newest_t1_ = KeyedLists::kNone;
    }
    TrimGhosts();
  }

  void Hit(CullKey key, uint64_t bytes) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n == KeyedLists::kNone || IsGhost(n)) return;
    if (n == newest_t1_) newest_t1_ = KeyedLists::kNone;
    lists_.SetBytes(n, bytes);
    lists_.MoveToFront(n, kT2);
  }

  void Erase(CullKey key) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n == KeyedLists::kNone) return;
    if (n == newest_t1_) newest_t1_ = KeyedLists::kNone;
    lists_.Remove(n);
  }

  // The paper's REPLACE: the LRU end of T1 if T1 is over its target p,
  // else of T2. The key just inserted into T1 does not count toward T1
  // here, as in the paper, where REPLACE runs before it is added.
  std::optional<CullKey> Evict(
      const std::function<bool(CullKey)>& evictable) override {
    uint64_t t1 = lists_.list(kT1).bytes;
    if (newest_t1_ != KeyedLists::kNone) t1 -= lists_.bytes(newest_t1_);
    const bool from_t1 = lists_.list(kT1).count > 0 &&
                         (t1 > p_ || (last_insert_from_b2_ && t1 == p_) ||
                          lists_.list(kT2).count == 0);
    const int first = from_t1 ? kT1 : kT2;
    for (int list : {first, first == kT1 ? kT2 : kT1}) {
      for (KeyedLists::Node n = lists_.list(list).tail; n != KeyedLists::kNone;
           n = lists_.newer(n)) {
        const CullKey key = lists_.key(n);
        if (!evictable(key)) continue;
        if (n == newest_t1_) newest_t1_ = KeyedLists::kNone;
        lists_.MoveToFront(n, list == kT1 ? kB1 : kB2);
        TrimGhosts();
        return key;
      }
    }
    return std::nullopt;
  }

  bool Contains(CullKey key) const override {
    KeyedLists::Node n = lists_.Find(key);
    return n != KeyedLists::kNone && !IsGhost(n);
  }
  uint64_t size() const override {
    return lists_.list(kT1).count + lists_.list(kT2).count;
  }
  uint64_t bytes() const override {
    return lists_.list(kT1).bytes + lists_.list(kT2).bytes;
  }

  void SetCapacity(uint64_t capacity_bytes) override {
    CullPolicy::SetCapacity(capacity_bytes);
    p_ = std::min(p_, capacity_bytes);
    TrimGhosts();
  }

 private:
  static constexpr int kT1 = 0;
  static constexpr int kT2 = 1;
  static constexpr int kB1 = 2;
  static constexpr int kB2 = 3;

  // How far p moves on a hit of a `bytes` long ghost on the list holding
  // `hit_ghost_bytes`: that size, times the ratio of the other ghost
  // list to this one when the other is larger (as the paper's
  // delta = max(1, |B2| / |B1|), a real ratio).
  static uint64_t Delta(uint64_t bytes, uint64_t hit_ghost_bytes,
                        uint64_t other_ghost_bytes) {
    if (hit_ghost_bytes == 0 || hit_ghost_bytes >= other_ghost_bytes) {
      return bytes;
    }
    return static_cast<uint64_t>(static_cast<double>(bytes) *
                                 static_cast<double>(other_ghost_bytes) /
                                 static_cast<double>(hit_ghost_bytes));
  }

  bool IsGhost(KeyedLists::Node n) const {
    const int l = lists_.list_of(n);
    return l == kB1 || l == kB2;
  }

  // The paper's bounds on the history: |T1| + |B1| <= c and
  // |T1| + |T2| + |B1| + |B2| <= 2c.
  void TrimGhosts() {
    const uint64_t c = capacity();
    auto bytes = [this](int l) { return lists_.list(l).bytes; };
    while (bytes(kB1) > 0 && bytes(kT1) + bytes(kB1) > c) {
      lists_.Remove(lists_.list(kB1).tail);
    }
    while (lists_.list(kB1).count + lists_.list(kB2).count > 0 &&
           bytes(kT1) + bytes(kT2) + bytes(kB1) + bytes(kB2) > 2 * c) {
      lists_.Remove(lists_.list(lists_.list(kB2).count > 0 ? kB2 : kB1).tail);
    }
  }

  KeyedLists lists_{4};
  uint64_t p_ = 0;  // target bytes of T1
  bool last_insert_from_b2_ = false;
  // The key the last Insert put on T1, until it is hit, evicted or erased.
  KeyedLists::Node newest_t1_ = KeyedLists::kNone;
};

}  // namespace

std::unique_ptr<CullPolicy> NewArcPolicy(uint64_t capacity_bytes) {
  return std::make_unique<ArcPolicy>(capacity_bytes);
}

}  // namespace cachefs
