// KeyedLists: the bookkeeping every list-based policy needs. Each key has
// one node, which sits on exactly one of a policy's few doubly linked
// lists (LRU's one list; ARC's T1, T2, B1, B2; S3-FIFO's small, main and
// ghost queues), found by key in O(1). Each list keeps its length and the
// sum of its nodes' bytes.
//
// Nodes live in one vector and link by index, so a policy with 100,000s of
// keys does no allocation per operation once warmed up (freed nodes are
// reused), which matters for both the daemon and the simulator replaying
// a million requests per policy.
//
// Thread safety: none (as CullPolicy).

#ifndef CACHEFS_CULL_KEYED_LISTS_H_
#define CACHEFS_CULL_KEYED_LISTS_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cull/cull_policy.h"

namespace cachefs {

class KeyedLists {
 public:
  using Node = uint32_t;
  static constexpr Node kNone = UINT32_MAX;

  struct List {
    Node head = kNone;  // most recently pushed
    Node tail = kNone;  // oldest
    uint64_t count = 0;
    uint64_t bytes = 0;
  };

  explicit KeyedLists(int num_lists) : lists_(num_lists) {}

  void Reserve(size_t keys) {
    nodes_.reserve(keys);
    index_.reserve(keys);
  }

  // The node of `key`, or kNone.
  Node Find(CullKey key) const {
    auto it = index_.find(key);
    return it == index_.end() ? kNone : it->second;
  }

  // A new node for `key` (not present) at the head of list `list`.
  Node Add(CullKey key, uint64_t bytes, int list) {
    Node n;
    if (!free_.empty()) {
      n = free_.back();
      free_.pop_back();
    } else {
      n = static_cast<Node>(nodes_.size());
      nodes_.emplace_back();
    }
    nodes_[n] = NodeData{key, bytes, kNone, kNone, -1, 0};
    index_.emplace(key, n);
    PushFront(n, list);
    return n;
  }

  // Unlinks and forgets node `n`.
  void Remove(Node n) {
    Unlink(n);
    index_.erase(nodes_[n].key);
    free_.push_back(n);
  }

  // Moves node `n` to the head of list `list` (its own or another).
  void MoveToFront(Node n, int list) {
    Unlink(n);
    PushFront(n, list);
  }

  // Changes the bytes of node `n`, keeping its list's sum right.
  void SetBytes(Node n, uint64_t bytes) {
    NodeData& d = nodes_[n];
    lists_[d.list].bytes += bytes - d.bytes;
    d.bytes = bytes;
  }

  CullKey key(Node n) const { return nodes_[n].key; }
  uint64_t bytes(Node n) const { return nodes_[n].bytes; }
  int list_of(Node n) const { return nodes_[n].list; }
  // One small per-node counter or flag for the policy's own use (SIEVE's
  // visited bit, S3-FIFO's frequency); zero on Add.
  uint8_t mark(Node n) const { return nodes_[n].mark; }
  void set_mark(Node n, uint8_t mark) { nodes_[n].mark = mark; }
  // Toward the head (newer) / the tail (older) of n's list.
  Node newer(Node n) const { return nodes_[n].prev; }
  Node older(Node n) const { return nodes_[n].next; }

  const List& list(int l) const { return lists_[l]; }

 private:
  struct NodeData {
    CullKey key;
    uint64_t bytes;
    Node prev;  // toward head
    Node next;  // toward tail
    int8_t list;
    uint8_t mark;
  };

  void PushFront(Node n, int l) {
    NodeData& d = nodes_[n];
    List& list = lists_[l];
    d.list = static_cast<int8_t>(l);
    d.prev = kNone;
    d.next = list.head;
    if (list.head != kNone) nodes_[list.head].prev = n;
    list.head = n;
    if (list.tail == kNone) list.tail = n;
    ++list.count;
    list.bytes += d.bytes;
  }

  void Unlink(Node n) {
    NodeData& d = nodes_[n];
    List& list = lists_[d.list];
    if (d.prev != kNone)
      nodes_[d.prev].next = d.next;
    else
      list.head = d.next;
    if (d.next != kNone)
      nodes_[d.next].prev = d.prev;
    else
      list.tail = d.prev;
    --list.count;
    list.bytes -= d.bytes;
    d.prev = d.next = kNone;
    d.list = -1;
  }

  std::vector<NodeData> nodes_;
  std::vector<Node> free_;
  std::vector<List> lists_;
  absl::flat_hash_map<CullKey, Node> index_;
};

}  // namespace cachefs

#endif  // CACHEFS_CULL_KEYED_LISTS_H_
