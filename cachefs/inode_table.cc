#include "cachefs/inode_table.h"

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
                                     st.st_mode & S_IFMT, std::move(key));
      ++slot->nlookup;
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
      dead = std::move(it->second);
      inodes_.erase(it);
    }
  }
}

size_t InodeTable::size() const {
  absl::MutexLock lock(&mu_);
  return inodes_.size() + 1;
}

}  // namespace cachefs
