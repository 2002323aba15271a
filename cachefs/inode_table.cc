#include "cachefs/inode_table.h"

#include <vector>


namespace cachefs {
namespace {

// A number for `key` that is the same in every mount, so a file keeps its
// st_ino across remounts (FNV-1a: absl's hash is seeded per process). 0 and
// 1 are left out: 0 means no inode to some tools, 1 is the root.
ino_t KeyIno(const std::string& key) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
  return static_cast<ino_t>(h < 2 ? h + 2 : h);
}

}  // namespace

InodeTable::InodeTable(const struct stat& root_attr, bool by_key,
                       const NetfsContext* files)
    : files_(files),
      root_(new Inode(root_attr.st_dev, root_attr.st_ino, S_IFDIR, "",
                      by_key ? 1 : root_attr.st_ino, files)),
      by_key_mode_(by_key) {
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

ino_t InodeTable::ShownIno(const std::string& key,
                           const struct stat& attr) const {
  if (key.empty()) return root_->shown_ino;
  return by_key_mode_ ? KeyIno(key) : attr.st_ino;
}

Inode* InodeTable::FindLocked(const std::string& key,
                              const struct stat& attr) const {
  if (by_key_mode_) {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : it->second;
  }
  auto it = by_identity_.find({attr.st_dev, attr.st_ino});
  return it == by_identity_.end() ? nullptr : it->second;
}

Inode* InodeTable::Intern(const struct stat& st, std::string key) {
  absl::MutexLock lock(&mu_);
  if (key.empty() || (!by_key_mode_ && st.st_dev == root_->dev &&
                      st.st_ino == root_->ino)) {
    return root_;  // or a bind mount or loop leading back to it
  }
  Inode* inode = FindLocked(key, st);
  if (inode != nullptr && inode->type == (st.st_mode & S_IFMT)) {
    ++inode->nlookup;
    return inode;
  }
  auto owned =
      std::make_unique<Inode>(st.st_dev, st.st_ino, st.st_mode & S_IFMT, key,
                              ShownIno(key, st), files_);
  inode = owned.get();
  inode->nlookup = 1;
  inodes_[inode] = std::move(owned);
  if (!by_key_mode_) by_identity_[{st.st_dev, st.st_ino}] = inode;
  by_key_[key] = inode;
  return inode;
}

void InodeTable::Forget(uint64_t id, uint64_t n) {
  Inode* inode = Get(id);
  if (inode == root_) return;
  std::unique_ptr<Inode> dead;  // destroyed after the lock is released
  absl::MutexLock lock(&mu_);
  inode->nlookup = n >= inode->nlookup ? 0 : inode->nlookup - n;
  if (inode->nlookup != 0) return;
  auto it = inodes_.find(inode);
  if (it == inodes_.end()) return;
  auto by_key = by_key_.find(inode->key());
  if (by_key != by_key_.end() && by_key->second == inode) by_key_.erase(by_key);
  auto identity = by_identity_.find({inode->dev, inode->ino});
  if (identity != by_identity_.end() && identity->second == inode) {
    by_identity_.erase(identity);
  }
  dead = std::move(it->second);
  inodes_.erase(it);
}

int64_t InodeTable::ChangedNs(const std::string& key,
                              const struct stat& attr) const {
  absl::MutexLock lock(&mu_);
  if (key.empty()) return 0;
  Inode* inode = FindLocked(key, attr);
  return inode == nullptr ? 0
                          : inode->changed_ns.load(std::memory_order_acquire);
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
