#include "cachefs/attr_cache.h"

#include <algorithm>
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
  PutLocked(key, attr, now_ns);
}

void AttrCache::PutAll(std::vector<Loaded> loaded, bool behind) {
  size_t first = 0;
  {
    absl::MutexLock lock(&mu_);
    if (behind) {
      // Loaded entries never push out what the mount learned meanwhile,
      // which is newer: the snapshot's oldest are left out instead.
      const size_t room =
          capacity_ > entries_.size() ? capacity_ - entries_.size() : 0;
      if (loaded.size() > room) first = loaded.size() - room;
    }
    entries_.reserve(
        std::min(capacity_, entries_.size() + (loaded.size() - first)));
  }
  // In chunks, so that requests are not held up for the whole load.
  constexpr size_t kChunk = 4096;
  for (size_t begin = first; begin < loaded.size(); begin += kChunk) {
    absl::MutexLock lock(&mu_);
    const size_t end = std::min(loaded.size(), begin + kChunk);
    for (size_t i = begin; i < end; ++i) {
      Loaded& entry = loaded[i];
      if (behind) {
        if (entries_.size() >= capacity_) return;
        if (entries_.contains(entry.key) || erased_.Erased(entry.key)) {
          continue;
        }
      }
      PutLocked(entry.key, entry.attr, entry.fetched_ns);
    }
  }
}

void AttrCache::BeginLoad() {
  absl::MutexLock lock(&mu_);
  erased_.Begin();
}

void AttrCache::EndLoad() {
  absl::MutexLock lock(&mu_);
  erased_.End();
}

void AttrCache::PutLocked(const std::string& key, const struct stat& attr,
                          int64_t now_ns) {
  ++changes_;
  uint64_t seq = next_seq_++;
  auto [place, fresh] = entries_.try_emplace(key);
  if (!fresh) LeaveGroupLocked(key, place->second);
  place->second = Entry{attr, now_ns, seq, /*provisional=*/false};
  if (HasOtherNames(attr)) {
    std::vector<std::string>& group = groups_[IdOf(attr)];
    // The newest fetch of the file wins: a slow fetch through one name
    // must not put back what a later one through another name replaced.
    const Entry* newest = nullptr;
    for (const std::string& other : group) {
      auto it = entries_.find(other);
      if (it != entries_.end() && it->second.fetched_ns > now_ns &&
          (newest == nullptr || it->second.fetched_ns > newest->fetched_ns)) {
        newest = &it->second;
      }
    }
    if (newest != nullptr) {
      place->second.attr = newest->attr;
    } else {
      for (const std::string& other : group) {
        auto it = entries_.find(other);
        if (it != entries_.end()) it->second.attr = attr;
      }
    }
    group.push_back(key);
  }
  order_.emplace_back(seq, key);
  while (entries_.size() > capacity_ && !order_.empty()) {
    auto [old_seq, old_key] = std::move(order_.front());
    order_.pop_front();
    auto it = entries_.find(old_key);
    if (it != entries_.end() && it->second.seq == old_seq) {
      LeaveGroupLocked(old_key, it->second);
      entries_.erase(it);
    }
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

void AttrCache::LeaveGroupLocked(const std::string& key, const Entry& entry) {
  if (!HasOtherNames(entry.attr)) return;
  auto group = groups_.find(IdOf(entry.attr));
  if (group == groups_.end()) return;
  std::vector<std::string>& names = group->second;
  names.erase(std::remove(names.begin(), names.end(), key), names.end());
  if (names.empty()) groups_.erase(group);
}

void AttrCache::EraseWithGroupLocked(const std::string& key) {
  ++changes_;
  erased_.Erase(key);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (!HasOtherNames(it->second.attr)) {
    entries_.erase(it);
    return;
  }
  auto group = groups_.find(IdOf(it->second.attr));
  entries_.erase(it);
  if (group == groups_.end()) return;
  // Every member is in entries_ with this file's id: Put and the erasures
  // keep the groups exact.
  for (const std::string& name : group->second) {
    erased_.Erase(name);
    entries_.erase(name);
  }
  groups_.erase(group);
}

void AttrCache::Erase(const std::string& key) {
  absl::MutexLock lock(&mu_);
  EraseWithGroupLocked(key);
}

void AttrCache::ForEach(
    const std::function<void(const std::string&, const struct stat&,
                             int64_t)>& fn) const {
  absl::MutexLock lock(&mu_);
  // By insertion from the entries themselves: a walk of order_ would look
  // each key up again, a cache miss apiece over a million entries.
  std::vector<std::pair<uint64_t, const std::pair<const std::string, Entry>*>>
      by_seq;
  by_seq.reserve(entries_.size());
  for (const auto& entry : entries_)
    by_seq.emplace_back(entry.second.seq, &entry);
  std::sort(by_seq.begin(), by_seq.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [seq, entry] : by_seq) {
    fn(entry->first, entry->second.attr, entry->second.fetched_ns);
  }
}

void AttrCache::ErasePrefix(const std::string& key) {
  const std::string below = key + "/";
  absl::MutexLock lock(&mu_);
  erased_.ErasePrefix(key);
  std::vector<std::string> gone;
  for (const auto& [name, entry] : entries_) {
    if (name == key || name.compare(0, below.size(), below) == 0) {
      gone.push_back(name);
    }
  }
  for (const std::string& name : gone) EraseWithGroupLocked(name);
}

uint64_t AttrCache::changes() const {
  absl::MutexLock lock(&mu_);
  return changes_;
}

size_t AttrCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

void AttrCache::Clear() {
  absl::MutexLock lock(&mu_);
  erased_.ErasePrefix("");
  ++changes_;
  entries_.clear();
  groups_.clear();
  order_.clear();
}

}  // namespace cachefs
