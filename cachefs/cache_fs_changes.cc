// CacheFs: changes of the namespace and of attributes, and what they do to
// cached objects (carried across, moved with a rename, dropped).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cachefs/cache_fs.h"
#include "cachefs/cache_fs_internal.h"
#include "absl/time/clock.h"
#include "io/errno_status.h"

namespace cachefs {

CacheFs::Entry CacheFs::AddEntry(Inode* parent, const std::string& name,
                                 const struct stat& made) {
  const std::string parent_key = parent->key();
  std::string key = ChildKey(parent_key, name);
  attrs_.Erase(parent_key);
  listings_.Erase(parent_key);
  attrs_.Put(key, made, Now());
  Inode* inode = inodes_->Intern(made, key);
  Entry entry;
  entry.ino = inodes_->IdOf(inode);
  entry.attr = Shown(inode, made);
  entry.entry_timeout = options_.entry_timeout;
  entry.attr_timeout = options_.attr_timeout;
  return entry;
}

std::string CacheFs::PrivateKey(const char* why) {
  return absl::StrCat("/", why, "/", private_keys_.fetch_add(1) + 1);
}

void CacheFs::MoveKeys(const std::string& from, const std::string& to) {
  // Open files below a renamed directory take their cookies along: left
  // under the old keys, they would be joined by whatever is made there.
  for (Inode* inode : inodes_->RenameKeys(from, to)) {
    inode->data.Rekey(inode->key());
    Forget(inodes_->IdOf(inode), 1);
  }
}

absl::StatusOr<std::string> CacheFs::PathIn(uint64_t parent,
                                            const std::string& name) {
  absl::StatusOr<std::string> dir = PathOf(inodes_->Get(parent));
  if (!dir.ok()) return ErrnoToStatus(ENOENT, name + " in a removed directory");
  return ChildKey(*dir, name);
}

absl::StatusOr<CacheFs::Entry> CacheFs::MakeNode(uint64_t parent,
                                                 const std::string& name,
                                                 mode_t mode, dev_t rdev) {
  if (absl::Status refused = RefuseIfOffline("mknod"); !refused.ok()) {
    return refused;
  }
  absl::StatusOr<std::string> path = PathIn(parent, name);
  if (!path.ok()) return path.status();
  absl::StatusOr<struct stat> made =
      origin_->MakeNode(RequestCaller(), *path, mode, rdev);
  if (!made.ok()) return made.status();
  return AddEntry(inodes_->Get(parent), name, *made);
}

absl::StatusOr<CacheFs::Entry> CacheFs::MakeDir(uint64_t parent,
                                                const std::string& name,
                                                mode_t mode) {
  if (absl::Status refused = RefuseIfOffline("mkdir"); !refused.ok()) {
    return refused;
  }
  absl::StatusOr<std::string> path = PathIn(parent, name);
  if (!path.ok()) return path.status();
  absl::StatusOr<struct stat> made =
      origin_->MakeDir(RequestCaller(), *path, mode);
  if (!made.ok()) return made.status();
  return AddEntry(inodes_->Get(parent), name, *made);
}

absl::StatusOr<CacheFs::Entry> CacheFs::MakeSymlink(const std::string& target,
                                                    uint64_t parent,
                                                    const std::string& name) {
  if (absl::Status refused = RefuseIfOffline("symlink"); !refused.ok()) {
    return refused;
  }
  absl::StatusOr<std::string> path = PathIn(parent, name);
  if (!path.ok()) return path.status();
  absl::StatusOr<struct stat> made =
      origin_->MakeSymlink(RequestCaller(), target, *path);
  if (!made.ok()) return made.status();
  return AddEntry(inodes_->Get(parent), name, *made);
}

absl::StatusOr<CacheFs::Entry> CacheFs::Link(uint64_t ino, uint64_t new_parent,
                                             const std::string& new_name) {
  if (absl::Status refused = RefuseIfOffline("link"); !refused.ok()) {
    return refused;
  }
  Inode* inode = inodes_->Get(ino);
  absl::StatusOr<std::string> path = PathOf(inode);
  if (!path.ok()) return path.status();
  absl::StatusOr<std::string> new_path = PathIn(new_parent, new_name);
  if (!new_path.ok()) return new_path.status();
  absl::StatusOr<struct stat> made = absl::UnknownError("link not attempted");
  absl::Status status = KeepObjectAcross(inode, [&] {
    made = origin_->Link(RequestCaller(), *path, *new_path);
    return made.status();
  });
  MarkChanged(inode);
  if (!status.ok()) return status;
  return AddEntry(inodes_->Get(new_parent), new_name, *made);
}

std::unique_ptr<OriginFile> CacheFs::ReadyForRemoval(Inode* inode) {
  return inode->data.ReadyForRemoval([this, inode] { return PathOf(inode); },
                                     RequestCaller());
}

void CacheFs::DropObject(Inode* inode, const std::string& key) {
  if (inode != nullptr && inode->type != S_IFREG) return;
  if (inode != nullptr && inode->data.RetireOnRelease(PrivateKey("unlinked"))) {
    return;
  }
  volume_->DiscardObject(key);
}

absl::Status CacheFs::Unlink(uint64_t parent, const std::string& name) {
  if (absl::Status refused = RefuseIfOffline("unlink"); !refused.ok()) {
    return refused;
  }
  absl::StatusOr<std::string> key = PathIn(parent, name);
  if (!key.ok()) return key.status();
  Inode* inode = inodes_->FindByKey(*key);
  std::unique_ptr<OriginFile> hold;
  if (inode != nullptr && inode->type == S_IFREG) {
    hold = ReadyForRemoval(inode);
  }
  siblings_.ForgetAndWait(*key);
  absl::Status status = origin_->Unlink(RequestCaller(), *key);
  hold.reset();
  if (inode != nullptr) MarkChanged(inode);  // one link fewer
  attrs_.Erase(*key);
  attrs_.Erase(inodes_->Get(parent)->key());
  listings_.EraseLink(*key);
  listings_.Erase(inodes_->Get(parent)->key());
  if (status.ok()) {
    DropObject(inode, *key);
    if (inode != nullptr) inodes_->SetKey(inode, PrivateKey("unlinked"));
  }
  if (inode != nullptr) Forget(inodes_->IdOf(inode), 1);
  return status;
}

absl::Status CacheFs::RemoveDir(uint64_t parent, const std::string& name) {
  if (absl::Status refused = RefuseIfOffline("rmdir"); !refused.ok()) {
    return refused;
  }
  absl::StatusOr<std::string> key = PathIn(parent, name);
  if (!key.ok()) return key.status();
  absl::Status status = origin_->RemoveDir(RequestCaller(), *key);
  attrs_.Erase(*key);
  attrs_.Erase(inodes_->Get(parent)->key());
  listings_.ErasePrefix(*key);
  listings_.Erase(inodes_->Get(parent)->key());
  if (status.ok()) {
    if (Inode* inode = inodes_->FindByKey(*key)) {
      inodes_->SetKey(inode, PrivateKey("removed"));
      Forget(inodes_->IdOf(inode), 1);
    }
  }
  return status;
}

absl::Status CacheFs::Rename(uint64_t parent, const std::string& name,
                             uint64_t new_parent, const std::string& new_name,
                             unsigned flags) {
  if (absl::Status refused = RefuseIfOffline("rename"); !refused.ok()) {
    return refused;
  }
  absl::StatusOr<std::string> from_path = PathIn(parent, name);
  if (!from_path.ok()) return from_path.status();
  absl::StatusOr<std::string> to_path = PathIn(new_parent, new_name);
  if (!to_path.ok()) return to_path.status();
  const std::string& from = *from_path;
  const std::string& to = *to_path;
  Inode* source = inodes_->FindByKey(from);
  if (source == nullptr) {
    // The kernel looks the source up before a rename, but its inode may
    // have been forgotten since: its object still needs carrying.
    absl::StatusOr<Entry> found = Lookup(parent, name);
    if (found.ok()) source = inodes_->Get(found->ino);
  }
  Inode* target = inodes_->FindByKey(to);
  auto unpin = [&] {
    if (source != nullptr) Forget(inodes_->IdOf(source), 1);
    if (target != nullptr) Forget(inodes_->IdOf(target), 1);
  };
  auto rename = [&] {
    return origin_->Rename(RequestCaller(), from, to, flags);
  };
  const bool exchange = (flags & RENAME_EXCHANGE) != 0;
  std::unique_ptr<OriginFile> hold;
  if (target != nullptr && target != source && target->type == S_IFREG &&
      !exchange) {
    // Its readers keep reading after it is replaced.
    hold = ReadyForRemoval(target);
  }
  siblings_.ForgetAndWait(from);
  siblings_.ForgetAndWait(to);
  absl::Status status;
  if (source == target && source != nullptr) {
    status = rename();  // two names of one file: nothing moves
  } else if (exchange || source == nullptr || source->key() != from) {
    // An exchange swaps two files' names; their objects are not worth the
    // bookkeeping of a swap, so both are dropped.
    status = rename();
    if (status.ok()) {
      // (A source known by another name keeps that name's object.)
      DropObject(source != nullptr && source->key() == from ? source : nullptr,
                 from);
      DropObject(target, to);
      if (exchange) {
        const std::string swap = PrivateKey("exchange");
        MoveKeys(from, swap);
        MoveKeys(to, from);
        MoveKeys(swap, to);
      } else if (target != nullptr) {
        inodes_->SetKey(target, PrivateKey("replaced"));
      }
    }
  } else {
    status = KeepObjectAcross(source, [&] {
      absl::Status renamed = rename();
      // Out of the way before the source's object takes its key.
      if (renamed.ok()) {
        DropObject(target, to);
        if (target != nullptr) {
          inodes_->SetKey(target, PrivateKey("replaced"));
        }
      }
      return renamed;
    }, to);
  }
  if (source != nullptr) MarkChanged(source);
  if (target != nullptr) MarkChanged(target);
  if (status.ok()) {
    if (!exchange && source != target) MoveKeys(from, to);
    // Entries below a renamed directory change keys too.
    attrs_.ErasePrefix(from);
    attrs_.ErasePrefix(to);
    siblings_.ForgetPrefix(from);
    siblings_.ForgetPrefix(to);
    attrs_.Erase(inodes_->Get(parent)->key());
    attrs_.Erase(inodes_->Get(new_parent)->key());
    listings_.ErasePrefix(from);
    listings_.ErasePrefix(to);
    listings_.Erase(inodes_->Get(parent)->key());
    listings_.Erase(inodes_->Get(new_parent)->key());
  }
  unpin();
  return status;
}

void CacheFs::DropFetchedAhead(const std::string& key) {
  siblings_.ForgetPrefix(key);
}

size_t CacheFs::DropCachedData(const std::vector<std::string>& keys) {
  size_t dropped = 0;
  for (const std::string& key : keys) {
    attrs_.Erase(key);
    // A change the attributes cannot show is why data is dropped: what was
    // fetched ahead may be from before it.
    siblings_.ForgetPrefix(key);
    bool had = volume_->HasObject(key);
    bool open = false;
    Inode* inode = inodes_->FindByKey(key);
    if (inode != nullptr) {
      open = inode->data.DropCachedData();
      Forget(inodes_->IdOf(inode), 1);
    }
    if (open) {
      had = true;
    } else {
      // A cookie still being torn down keeps its object a moment longer.
      for (int i = 0; i < 40 && volume_->HasObject(key); ++i) {
        volume_->DiscardObject(key);
        if (volume_->HasObject(key)) absl::SleepFor(absl::Milliseconds(25));
      }
    }
    if (had) ++dropped;
  }
  return dropped;
}

absl::StatusOr<CacheFs::Attr> CacheFs::SetAttr(uint64_t ino,
                                               const Origin::AttrChange& change,
                                               uint64_t fh) {
  if (absl::Status refused = RefuseIfOffline("setattr"); !refused.ok()) {
    return refused;
  }
  Inode* inode = inodes_->Get(ino);
  auto* file = reinterpret_cast<OpenFile*>(fh);
  OriginFile* origin_file = file != nullptr ? file->data->writable() : nullptr;
  absl::StatusOr<std::string> path = PathOf(inode);
  auto apply = [&]() -> absl::Status {
    if (path.ok())
      return origin_->SetAttr(RequestCaller(), *path, change, origin_file);
    // Unlinked through cachefs while open: only its open file can change.
    const bool size_only = change.size.has_value() && !change.mode &&
                           !change.uid && !change.gid && !change.atime &&
                           !change.mtime;
    if (origin_file == nullptr || !size_only) return path.status();
    return origin_file->Truncate(*change.size);
  };
  absl::Status status;
  if (change.size.has_value() && inode->type == S_IFREG) {
    status = inode->data.Truncate(
        apply, RequestCaller(), [inode] { return inode->key(); },
        [this, inode] { return FetchAttr(inode); }, *change.size);
  } else {
    status = KeepObjectAcross(inode, apply);
  }
  MarkChanged(inode);
  // Some origins (SFTP's setstat) change a symlink's target instead, which
  // may be any file cachefs knows.
  if (inode->type == S_IFLNK) attrs_.Clear();
  if (!status.ok()) return status;
  if (!path.ok()) {
    absl::StatusOr<struct stat> st = origin_file->Stat();
    if (!st.ok()) return st.status();
    return Attr{Shown(inode, *st), 0};
  }
  absl::StatusOr<struct stat> st = FetchAttr(inode);
  if (!st.ok()) return st.status();
  return Attr{Shown(inode, *st), options_.attr_timeout};
}

absl::Status CacheFs::SetXattr(uint64_t ino, const std::string& name,
                               const std::string& value, int flags) {
  if (absl::Status refused = RefuseIfOffline("setxattr"); !refused.ok()) {
    return refused;
  }
  if (!origin_->traits().xattrs) return NoXattrs();
  Inode* inode = inodes_->Get(ino);
  absl::StatusOr<std::string> path = PathOf(inode);
  if (!path.ok()) return path.status();
  absl::Status status = KeepObjectAcross(inode, [&] {
    return origin_->SetXattr(RequestCaller(), *path, name, value, flags);
  });
  MarkChanged(inode);
  return status;
}

absl::Status CacheFs::RemoveXattr(uint64_t ino, const std::string& name) {
  if (absl::Status refused = RefuseIfOffline("removexattr"); !refused.ok()) {
    return refused;
  }
  if (!origin_->traits().xattrs) return NoXattrs();
  Inode* inode = inodes_->Get(ino);
  absl::StatusOr<std::string> path = PathOf(inode);
  if (!path.ok()) return path.status();
  absl::Status status = KeepObjectAcross(inode, [&] {
    return origin_->RemoveXattr(RequestCaller(), *path, name);
  });
  MarkChanged(inode);
  return status;
}

absl::Status CacheFs::KeepObjectAcross(
    Inode* inode, const std::function<absl::Status()>& change,
    const std::string& new_key) {
  if (inode->type != S_IFREG) return change();
  return inode->data.KeepAcross(
      change, RequestCaller(), [inode] { return inode->key(); },
      [this, inode] { return FetchAttr(inode); }, new_key);
}

}  // namespace cachefs
