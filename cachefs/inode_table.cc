#include "cachefs/inode_table.h"

#include <vector>

namespace cachefs {

InodeTable::InodeTable(const struct stat& root_attr)
    : root_(new Inode(nullptr, root_attr.st_dev, root_attr.st_ino, S_IFDIR,
                      "")) {
  root_->nlookup = 1;  // the kernel never forgets the root
}

InodeTable::~InodeTable() { delete root_; }

uint64_t InodeTable::IdOf(const Inode* inode) const {
  if (inode == root_) return kRootId;
  return reinterpret_cast<uint64_t>(inode);
}

Inode* InodeTable::Get(uint64_t id) const {
  if (id == kRootId) return root_;
  return reinterpret_cast<Inode*>(id);
}

Inode* InodeTable::Intern(std::unique_ptr<Origin::Node> node,
                          const struct stat& st, std::string key) {
  Inode* inode;
  {
    absl::MutexLock lock(&mu_);
    if (st.st_dev == root_->dev && st.st_ino == root_->ino) {
      return root_;  // a bind mount or loop leading back to the root
    }
    auto& slot = inodes_[{st.st_dev, st.st_ino}];
    if (slot == nullptr) {
      slot = std::make_unique<Inode>(std::move(node), st.st_dev, st.st_ino,
                                     st.st_mode & S_IFMT, key);
      ++slot->nlookup;
      by_key_[key] = slot.get();
      return slot.get();
    }
    inode = slot.get();
    ++inode->nlookup;
  }
  if (node != nullptr) {
    absl::MutexLock lock(&inode->node_mu);
    if (inode->node == nullptr) inode->node = std::move(node);
  }
  return inode;
}

void InodeTable::Forget(uint64_t id, uint64_t n) {
  Inode* inode = Get(id);
  if (inode == root_) return;
  std::unique_ptr<Inode> dead;
  absl::MutexLock lock(&mu_);
  inode->nlookup = n >= inode->nlookup ? 0 : inode->nlookup - n;
  if (inode->nlookup == 0) {
    auto it = inodes_.find({inode->dev, inode->ino});
    if (it != inodes_.end() && it->second.get() == inode) {
      auto by_key = by_key_.find(inode->key());
      if (by_key != by_key_.end() && by_key->second == inode) {
        by_key_.erase(by_key);
      }
      dead = std::move(it->second);
      inodes_.erase(it);
    }
  }
}

int64_t InodeTable::ChangedNs(dev_t dev, ino_t ino) const {
  absl::MutexLock lock(&mu_);
  if (dev == root_->dev && ino == root_->ino) return 0;
  auto it = inodes_.find({dev, ino});
  if (it == inodes_.end()) return 0;
  return it->second->changed_ns.load(std::memory_order_acquire);
}

Inode* InodeTable::FindByKey(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  ++it->second->nlookup;
  return it->second;
}

void InodeTable::IndexKey(Inode* inode, std::string key) {
  std::string old = inode->key();
  auto it = by_key_.find(old);
  if (it != by_key_.end() && it->second == inode) by_key_.erase(it);
  by_key_[key] = inode;
  absl::MutexLock lock(&inode->key_mu_);
  inode->key_ = std::move(key);
}

std::vector<Inode*> InodeTable::RenameKeys(const std::string& from,
                                           const std::string& to) {
  absl::MutexLock lock(&mu_);
  const std::string prefix = from + "/";
  std::vector<std::pair<Inode*, std::string>> moves;
  std::vector<Inode*> below;
  for (const auto& [key, inode] : by_key_) {
    if (key == from) {
      moves.emplace_back(inode, to);
    } else if (key.compare(0, prefix.size(), prefix) == 0) {
      moves.emplace_back(inode, to + key.substr(from.size()));
      ++inode->nlookup;
      below.push_back(inode);
    }
  }
  // Drop every old key first: one rename's new keys may be another's old.
  for (const auto& [inode, key] : moves) by_key_.erase(inode->key());
  for (auto& [inode, key] : moves) IndexKey(inode, std::move(key));
  return below;
}

void InodeTable::SetKey(Inode* inode, std::string key) {
  if (inode == root_) return;
  absl::MutexLock lock(&mu_);
  IndexKey(inode, std::move(key));
}

size_t InodeTable::size() const {
  absl::MutexLock lock(&mu_);
  return inodes_.size() + 1;
}

}  // namespace cachefs
