#include "netfs/descriptor_cache.h"

#include <unistd.h>

#include <vector>

namespace cachefs {

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) close(fd_);
}

DescriptorCache::~DescriptorCache() = default;

DescriptorCache::Ref DescriptorCache::Find(const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

DescriptorCache::Ref DescriptorCache::Insert(const std::string& path, int fd) {
  Ref ref = std::make_shared<const OwnedFd>(fd);
  if (capacity_ == 0) return ref;
  // Closed outside the lock: the last reference may be the cache's.
  std::vector<Ref> evicted;
  absl::MutexLock lock(&mu_);
  auto it = by_path_.find(path);
  if (it != by_path_.end()) {
    evicted.push_back(std::move(it->second->second));
    lru_.erase(it->second);
    by_path_.erase(it);
  }
  lru_.emplace_front(path, ref);
  by_path_[path] = lru_.begin();
  while (lru_.size() > capacity_) {
    by_path_.erase(lru_.back().first);
    evicted.push_back(std::move(lru_.back().second));
    lru_.pop_back();
  }
  return ref;
}

void DescriptorCache::Forget(const std::string& path) {
  std::vector<Ref> dropped;
  {
    absl::MutexLock lock(&mu_);
    const std::string prefix = path + "/";
    for (auto it = lru_.begin(); it != lru_.end();) {
      const std::string& p = it->first;
      if (path.empty() || p == path || p.compare(0, prefix.size(), prefix) == 0) {
        by_path_.erase(p);
        dropped.push_back(std::move(it->second));
        it = lru_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

size_t DescriptorCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

}  // namespace cachefs
