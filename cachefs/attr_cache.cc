#include "cachefs/attr_cache.h"

#include <utility>

namespace cachefs {

std::optional<struct stat> AttrCache::Get(const std::string& key,
                                          int64_t max_age_ns, int64_t now_ns,
                                          int64_t* fetched_ns) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || now_ns - it->second.fetched_ns > max_age_ns) {
    return std::nullopt;
  }
  if (fetched_ns != nullptr) *fetched_ns = it->second.fetched_ns;
  return it->second.attr;
}

void AttrCache::Put(const std::string& key, const struct stat& attr,
                    int64_t now_ns) {
  absl::MutexLock lock(&mu_);
  uint64_t seq = next_seq_++;
  entries_[key] = Entry{attr, now_ns, seq, /*provisional=*/false};
  order_.emplace_back(seq, key);
  while (entries_.size() > capacity_ && !order_.empty()) {
    auto [old_seq, old_key] = std::move(order_.front());
    order_.pop_front();
    auto it = entries_.find(old_key);
    if (it != entries_.end() && it->second.seq == old_seq) entries_.erase(it);
  }
  // Re-insertions leave stale places behind; drop them once they dominate.
  if (order_.size() > 2 * capacity_ + 1024) {
    std::deque<std::pair<uint64_t, std::string>> live;
    for (auto& place : order_) {
      auto it = entries_.find(place.second);
      if (it != entries_.end() && it->second.seq == place.first) {
        live.push_back(std::move(place));
      }
    }
    order_.swap(live);
  }
}

bool AttrCache::MarkProvisional(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  return std::exchange(it->second.provisional, true);
}

void AttrCache::ClearProvisional(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) it->second.provisional = false;
}

void AttrCache::Erase(const std::string& key) {
  absl::MutexLock lock(&mu_);
  entries_.erase(key);
}

void AttrCache::ForEach(
    const std::function<void(const std::string&, const struct stat&,
                             int64_t)>& fn) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [seq, key] : order_) {
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.seq != seq) continue;
    fn(key, it->second.attr, it->second.fetched_ns);
  }
}

void AttrCache::ErasePrefix(const std::string& key) {
  const std::string below = key + "/";
  absl::MutexLock lock(&mu_);
  absl::erase_if(entries_, [&](const auto& entry) {
    return entry.first == key || entry.first.compare(0, below.size(), below) == 0;
  });
}

size_t AttrCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

void AttrCache::Clear() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
  order_.clear();
}

}  // namespace cachefs
