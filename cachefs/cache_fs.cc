#include "cachefs/cache_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io/countdown.h"
#include "io/errno_status.h"

namespace cachefs {

struct CacheFs::OpenFile {
  Inode* inode = nullptr;
  std::shared_ptr<ReadStream> stream;
};

struct CacheFs::OpenDirectory {
  absl::Mutex mu;
  std::unique_ptr<OriginDir> dir ABSL_GUARDED_BY(mu);
};

absl::StatusOr<std::unique_ptr<CacheFs>> CacheFs::Create(
    CacheFsOptions options, Origin* origin, Cache* cache,
    std::shared_ptr<Volume> volume) {
  absl::StatusOr<struct stat> root_attr = origin->GetAttr(origin->Root());
  if (!root_attr.ok()) {
    return Annotate(root_attr.status(), "origin " + origin->Describe());
  }
  // The root node is shared with the origin; the table gets its own.
  absl::StatusOr<std::unique_ptr<OriginDir>> probe = origin->OpenDir(origin->Root());
  if (!probe.ok()) {
    return Annotate(probe.status(),
                    "cannot list origin " + origin->Describe());
  }
  auto buffers = BufferPool::Create(uint64_t{1} << cache->options().granule_shift,
                                    options.buffers);
  if (!buffers.ok()) return buffers.status();
  auto inodes = std::make_unique<InodeTable>(*root_attr);
  return std::unique_ptr<CacheFs>(
      new CacheFs(std::move(options), origin, cache, std::move(volume),
                  std::move(inodes), *std::move(buffers)));
}

CacheFs::CacheFs(CacheFsOptions options, Origin* origin, Cache* cache,
                 std::shared_ptr<Volume> volume,
                 std::unique_ptr<InodeTable> inodes,
                 std::unique_ptr<BufferPool> buffers)
    : options_(std::move(options)),
      origin_(origin),
      cache_(cache),
      volume_(std::move(volume)),
      inodes_(std::move(inodes)),
      buffers_(std::move(buffers)),
      attrs_(options_.attr_cache_entries),
      origin_pool_(options_.origin_threads, nullptr),
      read_path_({cache->options().granule_shift, options_.readahead_granules},
                 buffers_.get(), &origin_pool_, &cache->stats()) {}

CacheFs::~CacheFs() {
  origin_pool_.Drain();
  cache_->dispatcher()->Drain();
  cache_->RelinquishVolume(volume_);
}

bool CacheFs::UseInode() const {
  switch (options_.identity) {
    case IdentityMode::kInode:
      return true;
    case IdentityMode::kNone:
      return false;
    case IdentityMode::kAuto:
      break;
  }
  return origin_->traits().stable_inode_numbers;
}

int64_t CacheFs::Now() const { return cache_->env()->MonotonicNanos(); }

static int64_t ToNanos(double seconds) {
  return static_cast<int64_t>(seconds * 1e9);
}

absl::StatusOr<const Origin::Node*> CacheFs::NodeOf(Inode* inode) {
  if (inode == inodes_->root()) return &origin_->Root();
  absl::MutexLock lock(&inode->node_mu);
  if (inode->node == nullptr) {
    absl::StatusOr<Origin::LookupResult> found = origin_->Resolve(inode->key);
    if (!found.ok()) return found.status();
    // The path may name another file by now; where inode numbers mean
    // something, say so rather than serve it under the old identity.
    if (origin_->traits().stable_inode_numbers &&
        (found->attr.st_ino != inode->ino || found->attr.st_dev != inode->dev)) {
      return ErrnoToStatus(ESTALE, "resolve " + inode->key);
    }
    inode->node = std::move(found->node);
  }
  return inode->node.get();
}

absl::StatusOr<struct stat> CacheFs::FetchAttr(Inode* inode) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return node.status();
  absl::StatusOr<struct stat> st = origin_->GetAttr(**node);
  if (st.ok()) attrs_.Put(inode->key, *st, Now());
  return st;
}

absl::StatusOr<CacheFs::Entry> CacheFs::Lookup(uint64_t parent,
                                               const std::string& name) {
  Inode* dir = inodes_->Get(parent);
  std::string key = ChildKey(dir->key, name);
  Entry entry;
  std::unique_ptr<Origin::Node> node;
  if (auto cached = attrs_.Get(key, ToNanos(options_.entry_timeout), Now())) {
    entry.attr = *cached;
  } else {
    absl::StatusOr<const Origin::Node*> dir_node = NodeOf(dir);
    if (!dir_node.ok()) return dir_node.status();
    absl::StatusOr<Origin::LookupResult> found =
        origin_->Lookup(**dir_node, name);
    if (!found.ok()) return found.status();
    entry.attr = found->attr;
    node = std::move(found->node);
    attrs_.Put(key, entry.attr, Now());
  }
  Inode* inode = inodes_->Intern(std::move(node), entry.attr, std::move(key));
  entry.ino = inodes_->IdOf(inode);
  return entry;
}

void CacheFs::Forget(uint64_t ino, uint64_t nlookup) {
  inodes_->Forget(ino, nlookup);
}

absl::StatusOr<struct stat> CacheFs::GetAttr(uint64_t ino) {
  return FetchAttr(inodes_->Get(ino));
}

absl::StatusOr<std::string> CacheFs::ReadLink(uint64_t ino) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inodes_->Get(ino));
  if (!node.ok()) return node.status();
  return origin_->ReadLink(**node);
}

absl::StatusOr<struct statvfs> CacheFs::StatFs(uint64_t ino) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inodes_->Get(ino));
  if (!node.ok()) return node.status();
  return origin_->StatFs(**node);
}

absl::StatusOr<std::string> CacheFs::GetXattr(uint64_t ino,
                                              const std::string& name) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inodes_->Get(ino));
  if (!node.ok()) return node.status();
  return origin_->GetXattr(**node, name);
}

absl::StatusOr<std::vector<std::string>> CacheFs::ListXattr(uint64_t ino) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inodes_->Get(ino));
  if (!node.ok()) return node.status();
  return origin_->ListXattr(**node);
}

absl::Status CacheFs::Access(uint64_t ino, int mask, const Caller& caller) {
  absl::StatusOr<struct stat> st = GetAttr(ino);
  if (!st.ok()) return st.status();
  if (mask == F_OK) return absl::OkStatus();
  mode_t bits;
  if (caller.uid == 0) {
    // root may read and write anything, and execute what anyone may.
    bool exec_ok = S_ISDIR(st->st_mode) || (st->st_mode & 0111) != 0;
    if ((mask & X_OK) && !exec_ok) return ErrnoToStatus(EACCES, "access");
    return absl::OkStatus();
  }
  if (caller.uid == st->st_uid) {
    bits = (st->st_mode >> 6) & 7;
  } else if (caller.gid == st->st_gid ||
             std::find(caller.groups.begin(), caller.groups.end(),
                       st->st_gid) != caller.groups.end()) {
    bits = (st->st_mode >> 3) & 7;
  } else {
    bits = st->st_mode & 7;
  }
  if ((mask & bits) != static_cast<mode_t>(mask)) {
    return ErrnoToStatus(EACCES, "access");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> CacheFs::OpenDir(uint64_t ino) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inodes_->Get(ino));
  if (!node.ok()) return node.status();
  absl::StatusOr<std::unique_ptr<OriginDir>> dir = origin_->OpenDir(**node);
  if (!dir.ok()) return dir.status();
  auto* handle = new OpenDirectory;
  absl::MutexLock lock(&handle->mu);
  handle->dir = *std::move(dir);
  return reinterpret_cast<uint64_t>(handle);
}

absl::Status CacheFs::ReadDir(uint64_t ino, uint64_t fh, uint64_t offset,
                              bool plus, const DirFiller& add) {
  auto* handle = reinterpret_cast<OpenDirectory*>(fh);
  absl::MutexLock lock(&handle->mu);
  absl::Status status = handle->dir->Seek(offset);
  if (!status.ok()) return status;
  // Entries go out in batches; with `plus` a batch's lookups run in
  // parallel, so a slow origin costs one round trip per batch, not per name.
  constexpr size_t kBatch = 32;
  while (true) {
    std::vector<OriginDir::Entry> batch;
    while (batch.size() < kBatch) {
      absl::StatusOr<std::optional<OriginDir::Entry>> next =
          handle->dir->Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) break;
      batch.push_back(**std::move(next));
    }
    if (batch.empty()) return absl::OkStatus();
    std::vector<absl::StatusOr<Entry>> looked_up(
        batch.size(), absl::UnknownError("not looked up"));
    if (plus) LookUpAll(ino, batch, &looked_up);
    for (size_t i = 0; i < batch.size(); ++i) {
      const OriginDir::Entry& e = batch[i];
      struct stat attr = {};
      attr.st_ino = e.ino;
      attr.st_mode = static_cast<mode_t>(e.type) << 12;
      const Entry* entry = nullptr;
      if (plus && looked_up[i].ok()) {
        entry = &*looked_up[i];
        attr = entry->attr;
      } else if (plus && e.name != "." && e.name != "..") {
        continue;  // gone since the listing: skip it
      }
      if (!add(e.name, attr, e.next_offset, entry)) {
        // Did not fit: the kernel never saw these.
        for (size_t j = i; j < batch.size(); ++j) {
          if (plus && looked_up[j].ok()) Forget(looked_up[j]->ino, 1);
        }
        return absl::OkStatus();
      }
    }
  }
}

void CacheFs::LookUpAll(uint64_t parent,
                        const std::vector<OriginDir::Entry>& entries,
                        std::vector<absl::StatusOr<Entry>>* out) {
  Countdown done(static_cast<int>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) {
    auto job = [&, i] {
      const std::string& name = entries[i].name;
      if (name != "." && name != "..") (*out)[i] = Lookup(parent, name);
      done.Done();
    };
    if (i + 1 < entries.size()) {
      origin_pool_.Dispatch(std::move(job));
    } else {
      job();
    }
  }
  done.Wait();
}

void CacheFs::ReleaseDir(uint64_t fh) {
  delete reinterpret_cast<OpenDirectory*>(fh);
}

absl::StatusOr<CacheFs::Opened> CacheFs::Open(uint64_t ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) {
    return ErrnoToStatus(EROFS, "open for writing");
  }
  Inode* inode = inodes_->Get(ino);
  // The coherency check: the one origin request an open makes, unless
  // nocto lets recent attributes stand in.
  std::optional<struct stat> recent;
  if (!options_.cto) {
    recent = attrs_.Get(inode->key, ToNanos(options_.attr_timeout), Now());
  }
  absl::StatusOr<struct stat> st =
      recent.has_value() ? *recent : FetchAttr(inode);
  if (!st.ok()) return st.status();
  if (!S_ISREG(st->st_mode)) return ErrnoToStatus(EISDIR, "open");
  std::string aux = MakeAuxData(*st, UseInode());
  auto* file = new OpenFile;
  file->inode = inode;
  file->stream = std::make_shared<ReadStream>();
  file->stream->size = st->st_size;
  file->stream->origin = [this, inode]() -> absl::StatusOr<std::shared_ptr<OriginFile>> {
    absl::MutexLock lock(&inode->origin_mu);
    if (inode->origin_file == nullptr) {
      absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
      if (!node.ok()) return node.status();
      absl::StatusOr<std::unique_ptr<OriginFile>> opened =
          origin_->OpenFile(**node);
      if (!opened.ok()) return opened.status();
      Bump(cache_->stats().origin_opens);
      inode->origin_file = *std::move(opened);
    }
    return inode->origin_file;
  };
  Opened result;
  result.fh = reinterpret_cast<uint64_t>(file);
  absl::MutexLock lock(&inode->mu);
  result.changed = !inode->last_aux.empty() && inode->last_aux != aux;
  result.keep_cache = inode->last_aux == aux;
  inode->last_aux = aux;
  if (inode->cookie == nullptr) {
    inode->cookie = volume_->AcquireCookie(inode->key, aux, st->st_size);
  } else if (inode->cookie->aux() != aux) {
    // Held across the invalidation: only opens of this inode wait.
    inode->cookie->Invalidate(aux, st->st_size);
  }
  ++inode->opens;
  file->stream->cookie = inode->cookie;
  return result;
}

absl::StatusOr<std::unique_ptr<ReadReply>> CacheFs::Read(uint64_t fh,
                                                         uint64_t off,
                                                         size_t size) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  return read_path_.Read(file->stream, off, size);
}

void CacheFs::Release(uint64_t fh) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  Inode* inode = file->inode;
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&inode->mu);
    if (--inode->opens == 0) {
      cookie = std::move(inode->cookie);
      absl::MutexLock origin_lock(&inode->origin_mu);
      inode->origin_file.reset();  // closes once read-ahead lets go
    }
  }
  delete file;
  if (cookie != nullptr) volume_->RelinquishCookie(std::move(cookie), false);
}

}  // namespace cachefs
