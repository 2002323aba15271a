// s3fifo: S3-FIFO (Yang et al., SOSP'23). Three FIFO queues: a small one
// (10% of the capacity) that every new key enters, a main one, and a ghost
// queue of keys recently evicted from the small one. A key leaving the
// small queue moves to main if it was used again while there, and is
// evicted into the ghost queue otherwise; a key inserted while in the
// ghost queue goes straight to main. Main is a FIFO with reinsertion: a
// key used since it last reached the tail (a 2-bit counter, decremented
// per pass) goes round again. One-time keys, most of a scan, thus leave
// after a short stay in the small queue and never push out main.

#include <algorithm>
#include <optional>

#include "cull/keyed_lists.h"
#include "cull/policies.h"

namespace cachefs {
namespace {

class S3FifoPolicy final : public CullPolicy {
 public:
  explicit S3FifoPolicy(uint64_t capacity_bytes) : CullPolicy(capacity_bytes) {}

  std::string_view name() const override { return "s3fifo"; }
  void Reserve(size_t keys) override { lists_.Reserve(keys); }

  void Insert(CullKey key, uint64_t bytes) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n != KeyedLists::kNone) {  // in the ghost queue
      lists_.SetBytes(n, bytes);
      lists_.set_mark(n, 0);
      lists_.MoveToFront(n, kMain);
      return;
    }
    lists_.Add(key, bytes, kSmall);
  }

  void Hit(CullKey key, uint64_t bytes) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n == KeyedLists::kNone || lists_.list_of(n) == kGhost) return;
    lists_.SetBytes(n, bytes);
    lists_.set_mark(n, std::min<uint8_t>(lists_.mark(n) + 1, kMaxFreq));
  }

  void Erase(CullKey key) override {
    KeyedLists::Node n = lists_.Find(key);
    if (n != KeyedLists::kNone) lists_.Remove(n);
  }

  // A key the daemon cannot remove is treated as used: from the small
  // queue it moves to main, in main it goes round again. Each step either
  // empties the small queue a little, spends one unit of a counter, passes
  // over a key or finds the victim, so the loop is bounded.
  std::optional<CullKey> Evict(
      const std::function<bool(CullKey)>& evictable) override {
    uint64_t passed_over = 0;
    while (resident_count() > 0) {
      const KeyedLists::List& small = lists_.list(kSmall);
      if (small.count > 0 &&
          (small.bytes > SmallTarget() || lists_.list(kMain).count == 0)) {
        KeyedLists::Node n = small.tail;
        const CullKey key = lists_.key(n);
        if (lists_.mark(n) >= kPromoteFreq || !evictable(key)) {
          lists_.set_mark(n, 0);
          lists_.MoveToFront(n, kMain);
          continue;
        }
        lists_.set_mark(n, 0);
        lists_.MoveToFront(n, kGhost);
        TrimGhost();
        return key;
      }
      KeyedLists::Node n = lists_.list(kMain).tail;
      const CullKey key = lists_.key(n);
      if (lists_.mark(n) > 0) {
        lists_.set_mark(n, lists_.mark(n) - 1);
        lists_.MoveToFront(n, kMain);
        continue;
      }
      if (!evictable(key)) {
        if (++passed_over > resident_count()) return std::nullopt;
        lists_.MoveToFront(n, kMain);
        continue;
      }
      lists_.Remove(n);
      return key;
    }
    return std::nullopt;
  }

  bool Contains(CullKey key) const override {
    KeyedLists::Node n = lists_.Find(key);
    return n != KeyedLists::kNone && lists_.list_of(n) != kGhost;
  }
  uint64_t size() const override { return resident_count(); }
  uint64_t bytes() const override {
    return lists_.list(kSmall).bytes + lists_.list(kMain).bytes;
  }

  void SetCapacity(uint64_t capacity_bytes) override {
    CullPolicy::SetCapacity(capacity_bytes);
    TrimGhost();
  }

 private:
  static constexpr int kSmall = 0;
  static constexpr int kMain = 1;
  static constexpr int kGhost = 2;
  static constexpr uint8_t kMaxFreq = 3;
  // Used once more while in the small queue is enough to earn main.
  static constexpr uint8_t kPromoteFreq = 1;

  uint64_t resident_count() const {
    return lists_.list(kSmall).count + lists_.list(kMain).count;
  }
  uint64_t SmallTarget() const { return capacity() / 10; }
  // The ghost queue remembers about as many bytes as main holds.
  void TrimGhost() {
    const uint64_t limit = capacity() - SmallTarget();
    while (lists_.list(kGhost).bytes > limit) {
      lists_.Remove(lists_.list(kGhost).tail);
    }
  }

  KeyedLists lists_{3};
};

}  // namespace

std::unique_ptr<CullPolicy> NewS3FifoPolicy(uint64_t capacity_bytes) {
  return std::make_unique<S3FifoPolicy>(capacity_bytes);
}

}  // namespace cachefs
