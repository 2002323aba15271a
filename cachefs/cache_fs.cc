#include "cachefs/cache_fs.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io/countdown.h"
#include "io/errno_status.h"

namespace cachefs {

struct CacheFs::OpenFile {
  Inode* inode = nullptr;
  std::shared_ptr<ReadStream> stream;
  // The origin file opened for this handle's writes; null if it only reads.
  std::shared_ptr<OriginFile> writable;
};

namespace {

// The open(2) flags that mean something to the origin file. O_APPEND is
// not among them: the kernel gives every write its offset, and an origin
// descriptor in append mode would ignore it.
int OriginOpenFlags(int flags) {
  return flags & (O_ACCMODE | O_TRUNC | O_SYNC | O_DSYNC);
}

bool OpensForWriting(int flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
}

}  // namespace

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
                 buffers_.get(), &origin_pool_, &cache->stats()),
      write_path_(cache->options().granule_shift, buffers_.get(),
                  &cache->stats()) {
  if (options_.checkpoint_interval > 0) {
    checkpointer_ = std::thread([this] { CheckpointLoop(); });
  }
}

CacheFs::~CacheFs() {
  stopping_.Notify();
  if (checkpointer_.joinable()) checkpointer_.join();
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
    const std::string key = inode->key();
    // A private key: the file's name is gone.
    if (key.empty() || key[0] == '/') return ErrnoToStatus(ESTALE, "resolve");
    absl::StatusOr<Origin::LookupResult> found = origin_->Resolve(key);
    if (!found.ok()) return found.status();
    // The path may name another file by now; where inode numbers mean
    // something, say so rather than serve it under the old identity.
    if (origin_->traits().stable_inode_numbers &&
        (found->attr.st_ino != inode->ino || found->attr.st_dev != inode->dev)) {
      return ErrnoToStatus(ESTALE, "resolve " + key);
    }
    inode->node = std::move(found->node);
  }
  return inode->node.get();
}

absl::StatusOr<struct stat> CacheFs::FetchAttr(Inode* inode) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return node.status();
  // Stamped with when the fetch began: a change racing with it must make
  // the result stale (see Inode::changed_ns).
  const int64_t started = Now();
  absl::StatusOr<struct stat> st = origin_->GetAttr(**node);
  if (st.ok()) attrs_.Put(inode->key(), *st, started);
  return st;
}

void CacheFs::MarkChanged(Inode* inode) {
  inode->changed_ns.store(Now(), std::memory_order_release);
  attrs_.Erase(inode->key());
}

std::optional<struct stat> CacheFs::RecentAttr(Inode* inode,
                                               const std::string& key,
                                               double max_age) {
  int64_t fetched = 0;
  std::optional<struct stat> cached =
      attrs_.Get(key, ToNanos(max_age), Now(), &fetched);
  if (cached.has_value() &&
      inode->changed_ns.load(std::memory_order_acquire) >= fetched) {
    return std::nullopt;
  }
  return cached;
}

absl::StatusOr<CacheFs::Entry> CacheFs::Lookup(uint64_t parent,
                                               const std::string& name) {
  Inode* dir = inodes_->Get(parent);
  std::string key = ChildKey(dir->key(), name);
  Entry entry;
  std::unique_ptr<Origin::Node> node;
  int64_t fetched = 0;
  std::optional<struct stat> attr =
      attrs_.Get(key, ToNanos(options_.entry_timeout), Now(), &fetched);
  // A cached entry for a file changed through cachefs since may be a name
  // that is gone (a fetch racing an unlink): ask the origin by name.
  if (attr.has_value() &&
      inodes_->ChangedNs(attr->st_dev, attr->st_ino) >= fetched) {
    attr.reset();
  }
  if (attr.has_value()) {
    entry.attr = *attr;
  } else {
    absl::StatusOr<const Origin::Node*> dir_node = NodeOf(dir);
    if (!dir_node.ok()) return dir_node.status();
    fetched = Now();
    absl::StatusOr<Origin::LookupResult> found =
        origin_->Lookup(**dir_node, name);
    if (!found.ok()) return found.status();
    entry.attr = found->attr;
    node = std::move(found->node);
    attrs_.Put(key, entry.attr, fetched);
  }
  Inode* inode = inodes_->Intern(std::move(node), entry.attr, std::move(key));
  entry.ino = inodes_->IdOf(inode);
  if (inode->changed_ns.load(std::memory_order_acquire) >= fetched) {
    // Changed through cachefs since (perhaps under another name): what the
    // kernel gets must not undo what it knows, e.g. a file's new size.
    absl::StatusOr<struct stat> fresh = FetchAttr(inode);
    if (!fresh.ok()) {
      Forget(entry.ino, 1);
      return fresh.status();
    }
    entry.attr = *fresh;
  }
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

absl::Status CacheFs::Access(uint64_t ino, int mask) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inodes_->Get(ino));
  if (!node.ok()) return node.status();
  if (mask == F_OK) return origin_->GetAttr(**node).status();
  return origin_->CheckAccess(**node, mask);
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
  Inode* inode = inodes_->Get(ino);
  const bool writes = OpensForWriting(flags);
  // The coherency check: the one origin request a read-only open makes,
  // unless nocto lets recent attributes stand in.
  std::optional<struct stat> recent;
  if (!options_.cto && !writes) {
    recent = RecentAttr(inode, inode->key(), options_.attr_timeout);
  }
  absl::StatusOr<struct stat> st =
      recent.has_value() ? *recent : FetchAttr(inode);
  if (!st.ok()) return st.status();
  if (!S_ISREG(st->st_mode)) return ErrnoToStatus(EISDIR, "open");
  if (!recent.has_value() && !NameStillLeadsTo(inode, *st)) {
    // The kernel's cached name is stale (the file was replaced or deleted
    // on the origin): ESTALE makes it look the name up again and retry,
    // and that lookup must ask the origin.
    attrs_.Erase(inode->key());
    return ErrnoToStatus(ESTALE, "open " + inode->key());
  }
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return node.status();
  std::shared_ptr<OriginFile> writable;
  // Truncating on open is a change of the data: ordered with writes.
  std::optional<absl::MutexLock> truncating;
  if (writes && (flags & O_TRUNC)) truncating.emplace(&inode->write_mu);
  if (writes) {
    absl::StatusOr<std::unique_ptr<OriginFile>> opened =
        origin_->OpenFile(**node, OriginOpenFlags(flags));
    if (!opened.ok()) return opened.status();
    writable = *std::move(opened);
  } else if (ActingForOtherUser()) {
    // Reads open the origin file lazily and as the daemon: the caller's
    // right to read is checked now.
    absl::Status allowed = origin_->CheckAccess(**node, R_OK);
    if (!allowed.ok()) return allowed;
  }
  return OpenWith(inode, *st, flags, std::move(writable));
}

bool CacheFs::NameStillLeadsTo(Inode* inode, const struct stat& st) {
  // Only inode numbers that mean something can tell; on SSHFS a node is
  // its path anyway, so its attributes already are the name's.
  if (!origin_->traits().stable_inode_numbers || inode == inodes_->root()) {
    return true;
  }
  const std::string key = inode->key();
  if (key.empty() || key[0] == '/') return st.st_nlink > 0;
  absl::StatusOr<Origin::LookupResult> found = origin_->Resolve(key);
  if (found.ok()) {
    return found->attr.st_ino == inode->ino && found->attr.st_dev == inode->dev;
  }
  // Gone from this name, but still linked: opened through another name.
  return st.st_nlink > 0 && !absl::IsNotFound(found.status());
}

absl::StatusOr<CacheFs::Opened> CacheFs::OpenWith(
    Inode* inode, const struct stat& st, int flags,
    std::shared_ptr<OriginFile> writable) {
  std::string aux = MakeAuxData(st, UseInode());
  auto* file = new OpenFile;
  file->inode = inode;
  file->writable = writable;
  file->stream = std::make_shared<ReadStream>();
  // A read-write handle reads through its own origin file (its mode may
  // not let anyone else open the file); others share one, opened lazily.
  std::weak_ptr<OriginFile> own;
  if ((flags & O_ACCMODE) == O_RDWR) own = writable;
  file->stream->origin =
      [this, inode, own]() -> absl::StatusOr<std::shared_ptr<OriginFile>> {
    if (std::shared_ptr<OriginFile> mine = own.lock()) return mine;
    absl::MutexLock lock(&inode->origin_mu);
    if (inode->origin_file == nullptr) {
      absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
      if (!node.ok()) return node.status();
      absl::StatusOr<std::unique_ptr<OriginFile>> opened =
          origin_->OpenFile(**node, O_RDONLY);
      if (!opened.ok()) return opened.status();
      Bump(cache_->stats().origin_opens);
      inode->origin_file = *std::move(opened);
    }
    return inode->origin_file;
  };
  Opened result;
  result.fh = reinterpret_cast<uint64_t>(file);
  absl::MutexLock lock(&inode->mu);
  if (inode->cookie != nullptr && inode->aux_pending) {
    // The attributes moved because of changes made through cachefs, which
    // the cached data (and the kernel's pages) already follow. They are
    // not adopted here: fetched outside write_mu, they may already be
    // behind a write in flight; the last release adopts them.
    result.keep_cache = true;
  } else {
    result.changed = !inode->last_aux.empty() && inode->last_aux != aux;
    result.keep_cache = inode->last_aux == aux;
    inode->last_aux = aux;
    if (inode->cookie == nullptr) {
      // Another inode's cookie under this key is a file the name no longer
      // leads to (replaced or deleted and made anew on the origin).
      inode->cookie = volume_->AcquireCookie(inode->key(), aux, st.st_size,
                                             /*evict_active=*/true);
    } else if (inode->cookie->aux() != aux) {
      // Held across the invalidation: only opens of this inode wait.
      inode->cookie->Invalidate(aux, st.st_size);
    }
    if (result.changed) {
      // The origin file may have been replaced (SSHFS keeps a handle on
      // the old one): later fetches open it afresh.
      absl::MutexLock origin_lock(&inode->origin_mu);
      inode->origin_file.reset();
    }
  }
  ++inode->opens;
  file->stream->cookie = inode->cookie;
  if (writable != nullptr && (flags & O_TRUNC)) MarkChanged(inode);
  if (writable != nullptr && (flags & O_TRUNC) && st.st_size != 0) {
    // The origin open truncated the file.
    inode->cookie->Resize(0).IgnoreError();
    inode->aux_pending = true;
  }
  return result;
}

absl::StatusOr<CacheFs::Created> CacheFs::Create(uint64_t parent,
                                                 const std::string& name,
                                                 mode_t mode, int flags) {
  Inode* dir = inodes_->Get(parent);
  absl::StatusOr<const Origin::Node*> dir_node = NodeOf(dir);
  if (!dir_node.ok()) return dir_node.status();
  absl::StatusOr<Origin::CreateResult> made =
      origin_->Create(**dir_node, name, mode, OriginOpenFlags(flags));
  if (!made.ok()) return made.status();
  std::shared_ptr<OriginFile> writable = std::move(made->file);
  Created created;
  created.entry = AddEntry(dir, name, std::move(made->entry));
  absl::StatusOr<Opened> opened =
      OpenWith(inodes_->Get(created.entry.ino), created.entry.attr,
               flags & ~O_TRUNC, std::move(writable));
  if (!opened.ok()) {
    Forget(created.entry.ino, 1);
    return opened.status();
  }
  created.opened = *opened;
  return created;
}

absl::StatusOr<std::unique_ptr<ReadReply>> CacheFs::Read(uint64_t fh,
                                                         uint64_t off,
                                                         size_t size) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  return read_path_.Read(file->stream, off, size);
}

absl::StatusOr<size_t> CacheFs::Write(uint64_t fh, const char* data,
                                      size_t size, uint64_t off) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  if (file->writable == nullptr) return ErrnoToStatus(EBADF, "write");
  Inode* inode = file->inode;
  absl::MutexLock write_lock(&inode->write_mu);
  {
    absl::MutexLock lock(&inode->mu);
    inode->aux_pending = true;
  }
  absl::StatusOr<size_t> written = write_path_.Write(
      *file->stream->cookie, *file->writable, data, size, off);
  MarkChanged(inode);
  return written;
}

absl::Status CacheFs::Flush(uint64_t fh) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  if (file->writable == nullptr) return absl::OkStatus();
  absl::Status status = file->writable->Flush();
  if (!status.ok()) DropAfterLostWrites(file);
  return status;
}

absl::Status CacheFs::Fsync(uint64_t fh, bool datasync) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  if (file->writable == nullptr) return absl::OkStatus();
  absl::Status status = file->writable->Sync(datasync);
  if (!status.ok()) DropAfterLostWrites(file);
  return status;
}

void CacheFs::DropAfterLostWrites(OpenFile* file) {
  // The origin took writes and then failed to keep them (NFS and SSHFS
  // report that at flush or fsync): what the cache stored from them is
  // not what the origin holds.
  Cookie& cookie = *file->stream->cookie;
  absl::MutexLock write_lock(&file->inode->write_mu);
  cookie.Invalidate(cookie.aux(), cookie.object_size());
}

absl::Status CacheFs::Fallocate(uint64_t fh, int mode, uint64_t off,
                                uint64_t len) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  if (file->writable == nullptr) return ErrnoToStatus(EBADF, "fallocate");
  if (len == 0) return ErrnoToStatus(EINVAL, "fallocate");
  Inode* inode = file->inode;
  Cookie& cookie = *file->stream->cookie;
  absl::MutexLock write_lock(&inode->write_mu);
  {
    absl::MutexLock lock(&inode->mu);
    inode->aux_pending = true;
  }
  attrs_.Erase(inode->key());
  const uint32_t shift = cache_->options().granule_shift;
  const bool zeroes = (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE));
  const bool shifts =
      (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE));
  Cookie::FillClaim claim;
  if (zeroes && off < cookie.object_size()) {
    uint64_t last = (std::min(off + len, cookie.object_size()) - 1) >> shift;
    claim = cookie.ClaimOverwrite(off >> shift, last - (off >> shift) + 1);
  }
  absl::Status status = file->writable->Allocate(mode, off, len);
  MarkChanged(inode);
  if (status.ok() && claim) {
    cookie.ClearOverwrite(claim, claim.first, claim.count);
  }
  cookie.ReleaseOverwrite(std::move(claim));
  if (!status.ok()) return status;
  if (shifts) {
    // Everything past `off` moved: start the object over.
    absl::StatusOr<struct stat> st = file->writable->Stat();
    cookie.Invalidate(cookie.aux(), st.ok() ? st->st_size : 0);
  } else if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > cookie.object_size()) {
    cookie.Resize(off + len).IgnoreError();
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> CacheFs::CopyFileRange(uint64_t fh_in, uint64_t off_in,
                                              uint64_t fh_out,
                                              uint64_t off_out, size_t len,
                                              unsigned flags) {
  auto* in = reinterpret_cast<OpenFile*>(fh_in);
  auto* out = reinterpret_cast<OpenFile*>(fh_out);
  if (out->writable == nullptr) return ErrnoToStatus(EBADF, "copy_file_range");
  absl::StatusOr<std::shared_ptr<OriginFile>> source = in->stream->origin();
  if (!source.ok()) return source.status();
  Inode* inode = out->inode;
  Cookie& cookie = *out->stream->cookie;
  absl::MutexLock write_lock(&inode->write_mu);
  {
    absl::MutexLock lock(&inode->mu);
    inode->aux_pending = true;
  }
  attrs_.Erase(inode->key());
  const uint32_t shift = cache_->options().granule_shift;
  const uint64_t old_size = cookie.object_size();
  if (len > 0 && off_out + len > old_size) {
    cookie.Resize(off_out + len).IgnoreError();
  }
  Cookie::FillClaim claim;
  if (len > 0) {
    uint64_t first = off_out >> shift;
    claim = cookie.ClaimOverwrite(first, ((off_out + len - 1) >> shift) -
                                             first + 1);
  }
  absl::StatusOr<size_t> copied =
      (*source)->CopyTo(off_in, *out->writable, off_out, len, flags);
  MarkChanged(inode);
  // The copied bytes never passed through here: their granules go absent.
  if (copied.ok() && *copied > 0 && claim) {
    uint64_t first = off_out >> shift;
    cookie.ClearOverwrite(claim, first,
                          ((off_out + *copied - 1) >> shift) - first + 1);
  }
  cookie.ReleaseOverwrite(std::move(claim));
  uint64_t reached = off_out + (copied.ok() ? *copied : 0);
  if (cookie.object_size() > std::max(old_size, reached)) {
    cookie.Resize(std::max(old_size, reached)).IgnoreError();
  }
  return copied;
}

void CacheFs::RefreshAuxLocked(Inode* inode) {
  absl::StatusOr<struct stat> st = FetchAttr(inode);
  if (!st.ok() || !S_ISREG(st->st_mode) || inode->cookie == nullptr) return;
  std::string aux = MakeAuxData(*st, UseInode());
  inode->cookie->SetAux(aux);
  if (inode->cookie->object_size() != static_cast<uint64_t>(st->st_size)) {
    inode->cookie->Resize(st->st_size).IgnoreError();
  }
  inode->last_aux = aux;
  inode->aux_pending = false;
}

void CacheFs::Release(uint64_t fh) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  Inode* inode = file->inode;
  // Closed first, so the attributes fetched below are the final ones (NFS
  // and SSHFS may finish writes at close).
  file->writable.reset();
  std::shared_ptr<Cookie> cookie;
  bool retire = false;
  {
    absl::MutexLock lock(&inode->mu);
    if (--inode->opens == 0) {
      if (inode->aux_pending && !inode->retire_on_release) {
        RefreshAuxLocked(inode);
      }
      cookie = std::move(inode->cookie);
      retire = inode->retire_on_release;
      inode->retire_on_release = false;
      inode->aux_pending = false;
      absl::MutexLock origin_lock(&inode->origin_mu);
      inode->origin_file.reset();  // closes once read-ahead lets go
    }
  }
  delete file;
  if (cookie != nullptr) volume_->RelinquishCookie(std::move(cookie), retire);
}

void CacheFs::CheckpointAll() {
  for (const std::shared_ptr<Cookie>& cookie : volume_->Cookies()) {
    cookie->Checkpoint().IgnoreError();  // busy now: the next pass
  }
}

void CacheFs::CheckpointLoop() {
  const absl::Duration interval = absl::Seconds(options_.checkpoint_interval);
  while (!stopping_.WaitForNotificationWithTimeout(interval)) CheckpointAll();
}

// Namespace changes.

CacheFs::Entry CacheFs::AddEntry(Inode* parent, const std::string& name,
                                 Origin::LookupResult made) {
  const std::string parent_key = parent->key();
  std::string key = ChildKey(parent_key, name);
  attrs_.Erase(parent_key);
  attrs_.Put(key, made.attr, Now());
  Entry entry;
  entry.attr = made.attr;
  Inode* inode = inodes_->Intern(std::move(made.node), made.attr, key);
  entry.ino = inodes_->IdOf(inode);
  return entry;
}

std::string CacheFs::PrivateKey(const char* why) {
  return absl::StrCat("/", why, "/", private_keys_.fetch_add(1) + 1);
}

void CacheFs::MoveKeys(const std::string& from, const std::string& to) {
  // Open files below a renamed directory take their cookies along: left
  // under the old keys, they would be joined by whatever is made there.
  for (Inode* inode : inodes_->RenameKeys(from, to)) {
    std::shared_ptr<Cookie> cookie;
    {
      absl::MutexLock lock(&inode->mu);
      cookie = inode->cookie;
    }
    if (cookie != nullptr) {
      absl::Status moved = volume_->RekeyCookie(cookie, inode->key());
      if (!moved.ok()) cookie->WithdrawObject(moved);
    }
    Forget(inodes_->IdOf(inode), 1);
  }
}

absl::StatusOr<CacheFs::Entry> CacheFs::MakeNode(uint64_t parent,
                                                 const std::string& name,
                                                 mode_t mode, dev_t rdev) {
  Inode* dir = inodes_->Get(parent);
  absl::StatusOr<const Origin::Node*> node = NodeOf(dir);
  if (!node.ok()) return node.status();
  absl::StatusOr<Origin::LookupResult> made =
      origin_->MakeNode(**node, name, mode, rdev);
  if (!made.ok()) return made.status();
  return AddEntry(dir, name, *std::move(made));
}

absl::StatusOr<CacheFs::Entry> CacheFs::MakeDir(uint64_t parent,
                                                const std::string& name,
                                                mode_t mode) {
  Inode* dir = inodes_->Get(parent);
  absl::StatusOr<const Origin::Node*> node = NodeOf(dir);
  if (!node.ok()) return node.status();
  absl::StatusOr<Origin::LookupResult> made =
      origin_->MakeDir(**node, name, mode);
  if (!made.ok()) return made.status();
  return AddEntry(dir, name, *std::move(made));
}

absl::StatusOr<CacheFs::Entry> CacheFs::MakeSymlink(const std::string& target,
                                                    uint64_t parent,
                                                    const std::string& name) {
  Inode* dir = inodes_->Get(parent);
  absl::StatusOr<const Origin::Node*> node = NodeOf(dir);
  if (!node.ok()) return node.status();
  absl::StatusOr<Origin::LookupResult> made =
      origin_->MakeSymlink(target, **node, name);
  if (!made.ok()) return made.status();
  return AddEntry(dir, name, *std::move(made));
}

absl::StatusOr<CacheFs::Entry> CacheFs::Link(uint64_t ino, uint64_t new_parent,
                                             const std::string& new_name) {
  Inode* inode = inodes_->Get(ino);
  Inode* dir = inodes_->Get(new_parent);
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return node.status();
  absl::StatusOr<const Origin::Node*> dir_node = NodeOf(dir);
  if (!dir_node.ok()) return dir_node.status();
  absl::StatusOr<Origin::LookupResult> made =
      absl::UnknownError("link not attempted");
  absl::Status status = KeepObjectAcross(inode, [&] {
    made = origin_->Link(**node, **dir_node, new_name);
    return made.status();
  });
  MarkChanged(inode);
  if (!status.ok()) return status;
  return AddEntry(dir, new_name, *std::move(made));
}

void CacheFs::PinOriginFile(Inode* inode) {
  {
    absl::MutexLock lock(&inode->mu);
    if (inode->opens == 0) return;
  }
  absl::MutexLock lock(&inode->origin_mu);
  if (inode->origin_file != nullptr) return;
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return;
  absl::StatusOr<std::unique_ptr<OriginFile>> opened =
      origin_->OpenFile(**node, O_RDONLY);
  if (!opened.ok()) return;  // a write-only file: nothing to read anyway
  Bump(cache_->stats().origin_opens);
  inode->origin_file = *std::move(opened);
}

void CacheFs::DropObject(Inode* inode, const std::string& key) {
  if (inode != nullptr && inode->type != S_IFREG) return;
  std::shared_ptr<Cookie> cookie;
  if (inode != nullptr) {
    absl::MutexLock lock(&inode->mu);
    if (inode->cookie != nullptr) {
      cookie = inode->cookie;
      inode->retire_on_release = true;
    }
  }
  if (cookie != nullptr) {
    absl::Status moved = volume_->RekeyCookie(cookie, PrivateKey("unlinked"));
    if (moved.ok()) return;
    cookie->WithdrawObject(moved);
  }
  volume_->DiscardObject(key);
}

absl::Status CacheFs::Unlink(uint64_t parent, const std::string& name) {
  Inode* dir = inodes_->Get(parent);
  absl::StatusOr<const Origin::Node*> dir_node = NodeOf(dir);
  if (!dir_node.ok()) return dir_node.status();
  const std::string key = ChildKey(dir->key(), name);
  Inode* inode = inodes_->FindByKey(key);
  if (inode != nullptr && inode->type == S_IFREG) PinOriginFile(inode);
  absl::Status status = origin_->Unlink(**dir_node, name);
  if (inode != nullptr) MarkChanged(inode);  // one link fewer
  attrs_.Erase(key);
  attrs_.Erase(dir->key());
  if (status.ok()) {
    DropObject(inode, key);
    if (inode != nullptr) inodes_->SetKey(inode, PrivateKey("unlinked"));
  }
  if (inode != nullptr) Forget(inodes_->IdOf(inode), 1);
  return status;
}

absl::Status CacheFs::RemoveDir(uint64_t parent, const std::string& name) {
  Inode* dir = inodes_->Get(parent);
  absl::StatusOr<const Origin::Node*> dir_node = NodeOf(dir);
  if (!dir_node.ok()) return dir_node.status();
  const std::string key = ChildKey(dir->key(), name);
  absl::Status status = origin_->RemoveDir(**dir_node, name);
  attrs_.Erase(key);
  attrs_.Erase(dir->key());
  if (status.ok()) {
    if (Inode* inode = inodes_->FindByKey(key)) {
      inodes_->SetKey(inode, PrivateKey("removed"));
      Forget(inodes_->IdOf(inode), 1);
    }
  }
  return status;
}

absl::Status CacheFs::Rename(uint64_t parent, const std::string& name,
                             uint64_t new_parent, const std::string& new_name,
                             unsigned flags) {
  Inode* dir = inodes_->Get(parent);
  Inode* new_dir = inodes_->Get(new_parent);
  absl::StatusOr<const Origin::Node*> dir_node = NodeOf(dir);
  if (!dir_node.ok()) return dir_node.status();
  absl::StatusOr<const Origin::Node*> new_dir_node = NodeOf(new_dir);
  if (!new_dir_node.ok()) return new_dir_node.status();
  const std::string from = ChildKey(dir->key(), name);
  const std::string to = ChildKey(new_dir->key(), new_name);
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
    return origin_->Rename(**dir_node, name, **new_dir_node, new_name, flags);
  };
  const bool exchange = (flags & RENAME_EXCHANGE) != 0;
  if (target != nullptr && target != source && target->type == S_IFREG &&
      !exchange) {
    PinOriginFile(target);  // its readers keep reading after it is replaced
  }
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
    attrs_.Clear();
  }
  unpin();
  return status;
}

absl::StatusOr<struct stat> CacheFs::SetAttr(uint64_t ino,
                                             const Origin::AttrChange& change,
                                             uint64_t fh) {
  Inode* inode = inodes_->Get(ino);
  auto* file = reinterpret_cast<OpenFile*>(fh);
  OriginFile* origin_file = file != nullptr ? file->writable.get() : nullptr;
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return node.status();
  auto apply = [&] { return origin_->SetAttr(**node, change, origin_file); };
  absl::Status status;
  if (change.size.has_value() && inode->type == S_IFREG) {
    absl::MutexLock write_lock(&inode->write_mu);
    status = KeepObjectAcross(inode, apply, "", change.size);
  } else {
    status = KeepObjectAcross(inode, apply);
  }
  MarkChanged(inode);
  if (!status.ok()) return status;
  return FetchAttr(inode);
}

absl::Status CacheFs::SetXattr(uint64_t ino, const std::string& name,
                               const std::string& value, int flags) {
  Inode* inode = inodes_->Get(ino);
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return node.status();
  absl::Status status = KeepObjectAcross(
      inode, [&] { return origin_->SetXattr(**node, name, value, flags); });
  MarkChanged(inode);
  return status;
}

absl::Status CacheFs::RemoveXattr(uint64_t ino, const std::string& name) {
  Inode* inode = inodes_->Get(ino);
  absl::StatusOr<const Origin::Node*> node = NodeOf(inode);
  if (!node.ok()) return node.status();
  absl::Status status = KeepObjectAcross(
      inode, [&] { return origin_->RemoveXattr(**node, name); });
  MarkChanged(inode);
  return status;
}

absl::Status CacheFs::FsyncDir(uint64_t ino, bool datasync) {
  absl::StatusOr<const Origin::Node*> node = NodeOf(inodes_->Get(ino));
  if (!node.ok()) return node.status();
  return origin_->SyncDir(**node, datasync);
}

absl::Status CacheFs::KeepObjectAcross(
    Inode* inode, const std::function<absl::Status()>& change,
    const std::string& new_key, std::optional<uint64_t> new_size) {
  if (inode->type != S_IFREG) return change();
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&inode->mu);
    cookie = inode->cookie;
    if (cookie != nullptr) inode->aux_pending = true;
  }
  if (cookie != nullptr) {
    // Open: the cookie adopts the new attributes at its next refresh.
    absl::Status status = change();
    if (!status.ok()) return status;
    // Only a size the change itself set (under write_mu): attributes
    // fetched now could be behind a write in flight.
    if (new_size.has_value()) cookie->Resize(*new_size).IgnoreError();
    if (!new_key.empty()) {
      absl::Status moved = volume_->RekeyCookie(cookie, new_key);
      if (!moved.ok()) cookie->WithdrawObject(moved);
    }
    return absl::OkStatus();
  }
  // Closed: carry its object, if it has one, from the attributes before
  // the change to those after.
  const std::string key = inode->key();
  if (!volume_->HasObject(key)) return change();
  absl::StatusOr<struct stat> before = FetchAttr(inode);
  if (!before.ok()) return change();
  absl::Status status = change();
  if (!status.ok()) return status;
  absl::StatusOr<struct stat> after = FetchAttr(inode);
  if (!after.ok() || !S_ISREG(after->st_mode)) return absl::OkStatus();
  // Only an idle key: an active cookie under it belongs to a file open
  // under this name, which is not this one (renamed away, or replaced).
  cookie = volume_->AcquireIdleCookie(key, MakeAuxData(*before, UseInode()),
                                      before->st_size);
  if (cookie == nullptr) return absl::OkStatus();
  cookie->WaitReady();
  if (after->st_size != before->st_size) {
    cookie->Resize(after->st_size).IgnoreError();
  }
  if (!new_key.empty()) {
    absl::Status moved = volume_->RekeyCookie(cookie, new_key);
    if (!moved.ok()) cookie->WithdrawObject(moved);
  }
  cookie->SetAux(MakeAuxData(*after, UseInode()));
  volume_->RelinquishCookie(std::move(cookie), false);
  return absl::OkStatus();
}

}  // namespace cachefs
