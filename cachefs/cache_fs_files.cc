// CacheFs: open files, their reads and writes, and their release.

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <utility>

#include "cachefs/cache_fs.h"
#include "cachefs/cache_fs_internal.h"
#include "io/errno_status.h"

namespace cachefs {
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

absl::StatusOr<CacheFs::Opened> CacheFs::Open(uint64_t ino, int flags) {
  Inode* inode = inodes_->Get(ino);
  const bool writes = OpensForWriting(flags);
  if (writes) siblings_.Forget(inode->key());
  // The coherency check: the one origin request a read-only open makes,
  // unless nocto lets recent attributes stand in. It asks by path, so it
  // also finds a file replaced or deleted behind a cached name (ESTALE
  // makes the kernel look the name up again and retry).
  std::optional<struct stat> recent;
  if (!options_.cto && !writes) {
    recent = RecentAttr(inode, inode->key(), options_.attr_timeout);
  }
  // What the kernel was last told of the file, however old: the fresh
  // attributes may contradict it (changed on the origin, even while
  // unmounted: the attribute snapshot answered the lookup after a
  // remount), and the kernel must then ask again or it reads with the
  // old size.
  const std::optional<struct stat> shown =
      recent.has_value()
          ? std::nullopt
          : attrs_.Get(inode->key(), std::numeric_limits<int64_t>::max(),
                       Now());
  // A reader going through the file's directory has the next files
  // fetched ahead; if nothing of this one is cached, it may have been.
  bool ahead = false;
  std::shared_ptr<PreOpen> pre_open;
  if (!writes) {
    const std::string key = inode->key();
    const size_t slash = key.rfind('/');
    siblings_.NoteOpen(
        slash == std::string::npos ? "" : key.substr(0, slash),
        slash == std::string::npos ? key : key.substr(slash + 1));
    // Whether anything is cached costs a look at the cache directory:
    // asked only when something would be done about it.
    ahead = siblings_.Has(key);
    const bool may_pre_open = !recent.has_value() && shown.has_value();
    bool cold = false;
    if (ahead || may_pre_open) {
      absl::StatusOr<std::string> path = PathOf(inode);
      cold = path.ok() && NothingCached(inode, *path);
      if (cold && !ahead) pre_open = StartPreOpen(*path, *shown);
    }
    ahead = ahead && cold;
  }
  absl::StatusOr<struct stat> st =
      recent.has_value() ? *recent : FetchAttr(inode);
  if (!st.ok()) return st.status();
  const bool kernel_stale =
      shown.has_value() &&
      (shown->st_size != st->st_size ||
       shown->st_mtim.tv_sec != st->st_mtim.tv_sec ||
       shown->st_mtim.tv_nsec != st->st_mtim.tv_nsec);
  if (!S_ISREG(st->st_mode)) return ErrnoToStatus(EISDIR, "open");
  absl::StatusOr<std::string> path = PathOf(inode);
  if (!path.ok()) return path.status();
  std::shared_ptr<OriginFile> writable;
  // Truncating on open is a change of the data: ordered with writes.
  std::optional<absl::MutexLock> truncating;
  if (writes && (flags & O_TRUNC)) truncating.emplace(&inode->write_mu);
  if (writes) {
    absl::StatusOr<std::unique_ptr<OriginFile>> opened =
        origin_->OpenFile(RequestCaller(), *path, OriginOpenFlags(flags));
    if (!opened.ok()) return opened.status();
    absl::MutexLock origin_lock(&inode->origin_mu);
    writable = inode->CountOpen(*std::move(opened));
  } else if (ActingForOtherUser()) {
    // Reads open the origin file lazily and as the daemon: the caller's
    // right to read is checked now.
    absl::Status allowed = origin_->CheckAccess(RequestCaller(), *path, R_OK);
    if (!allowed.ok()) return allowed;
  }
  absl::StatusOr<Opened> opened =
      OpenWith(inode, *st, flags, std::move(writable), kernel_stale);
  if (opened.ok() && pre_open != nullptr) {
    FinishPreOpen(inode, *shown, *st, *pre_open);
  }
  if (opened.ok() && ahead) {
    siblings_.Wait(inode->key());
    StoreFetchedAhead(inode, *st);
  }
  return opened;
}

bool CacheFs::NothingCached(Inode* inode, const std::string& path) {
  {
    absl::MutexLock lock(&inode->mu);
    if (inode->cookie != nullptr) return false;
  }
  {
    absl::MutexLock lock(&inode->origin_mu);
    if (inode->origin_file != nullptr) return false;
  }
  return !volume_->HasObject(path);
}

void CacheFs::StoreFetchedAhead(Inode* inode, const struct stat& checked) {
  // Ordered with writes: one done through cachefs before this point forgot
  // what was fetched (MarkChanged), and none can start until it is stored.
  absl::MutexLock write_lock(&inode->write_mu);
  std::optional<SiblingReadAhead::Fetched> fetched =
      siblings_.Take(inode->key());
  if (!fetched.has_value()) return;
  // The data was read after `fetched->attr` were: if the check still shows
  // them, the data is what the file holds now, as a cached object with
  // that aux data would be.
  if (MakeAuxData(fetched->attr, UseInode()) !=
          MakeAuxData(checked, UseInode()) ||
      fetched->data->length != static_cast<uint64_t>(checked.st_size)) {
    return;
  }
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&inode->mu);
    cookie = inode->cookie;
  }
  if (cookie == nullptr || cookie->object_size() != fetched->data->length) {
    return;
  }
  Cookie::FillClaim claim = cookie->ClaimFill(0, 1);
  if (!claim) return;
  iovec iov{fetched->data->data(), fetched->data->capacity()};
  cookie->CompleteFill(std::move(claim), {&iov, 1},
                       [data = fetched->data](absl::StatusOr<size_t>) {});
  Bump(stats().files_read_ahead_used);
}

// A read-only open of a file with nothing cached needs the origin file for
// its first read: opened alongside the open's check, it costs no round
// trip of its own.
std::shared_ptr<CacheFs::PreOpen> CacheFs::StartPreOpen(
    const std::string& path, const struct stat& shown) {
  if (!S_ISREG(shown.st_mode) || shown.st_size == 0) return nullptr;
  auto pre_open = std::make_shared<PreOpen>();
  origin_pool_.Dispatch([this, pre_open, path] {
    pre_open->file = origin_->OpenFile(Caller::Daemon(), path, O_RDONLY);
    pre_open->done.Notify();
  });
  return pre_open;
}

void CacheFs::FinishPreOpen(Inode* inode, const struct stat& shown,
                            const struct stat& checked, PreOpen& pre_open) {
  pre_open.done.WaitForNotification();
  if (!pre_open.file.ok()) return;  // the first read opens it, or says why
  // The origin file was opened in no set order with the check: it is this
  // file only if nothing changed from before the open was sent (what the
  // kernel was told) to the check. Else the first read opens it afresh.
  if (MakeAuxData(shown, UseInode()) != MakeAuxData(checked, UseInode())) {
    return;
  }
  if (!inodes_->by_key()) {
    absl::StatusOr<struct stat> st = (*pre_open.file)->Stat();
    if (!st.ok() || st->st_ino != inode->ino || st->st_dev != inode->dev) {
      return;
    }
  }
  absl::MutexLock lock(&inode->origin_mu);
  if (inode->origin_file == nullptr) {
    inode->origin_file = inode->CountOpen(*std::move(pre_open.file));
  }
}

absl::StatusOr<CacheFs::Opened> CacheFs::OpenWith(
    Inode* inode, const struct stat& st, int flags,
    std::shared_ptr<OriginFile> writable, bool kernel_stale,
    bool for_kernel) {
  std::string aux = MakeAuxData(st, UseInode());
  auto* file = new OpenFile;
  file->inode = inode;
  file->writable = writable;
  file->opened_attr = st;
  if (writable != nullptr) {
    absl::MutexLock lock(&inode->origin_mu);
    inode->writer = writable;
  }
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
      absl::StatusOr<std::string> path = PathOf(inode);
      if (!path.ok()) return path.status();
      absl::StatusOr<std::unique_ptr<OriginFile>> opened =
          origin_->OpenFile(Caller::Daemon(), *path, O_RDONLY);
      if (!opened.ok()) return opened.status();
      if (!inodes_->by_key()) {
        // The name may lead to another file since the open's check (one
        // put in its place on the origin): its bytes must not be read
        // as this file's. Without stable inode numbers (SSHFS) there is
        // no cheap way to tell, and the open's check stands.
        absl::StatusOr<struct stat> st = (*opened)->Stat();
        if (!st.ok()) return st.status();
        if (st->st_ino != inode->ino || st->st_dev != inode->dev) {
          return ErrnoToStatus(ESTALE, "the name " + *path +
                                           " leads to another file now");
        }
      }
      inode->origin_file = inode->CountOpen(*std::move(opened));
    }
    return inode->origin_file;
  };
  Opened result;
  result.fh = reinterpret_cast<uint64_t>(file);
  result.attr = st;
  absl::MutexLock lock(&inode->mu);
  if (inode->cookie != nullptr && inode->aux_pending) {
    // The attributes moved because of changes made through cachefs, which
    // the cached data (and the kernel's pages) already follow. They are
    // not adopted here: fetched outside write_mu, they may already be
    // behind a write in flight; the last release adopts them.
    result.keep_cache = true;
  } else {
    const bool changed =
        (!inode->last_aux.empty() && inode->last_aux != aux) || kernel_stale;
    if (for_kernel) {
      result.changed = changed;
      result.keep_cache = inode->last_aux == aux && !kernel_stale;
      inode->last_aux = aux;
    }
    const bool refetch =
        changed ||
        (inode->cookie != nullptr && inode->cookie->aux() != aux);
    if (inode->cookie == nullptr) {
      // Another inode's cookie under this key is a file the name no longer
      // leads to (replaced or deleted and made anew on the origin).
      inode->cookie = volume_->AcquireCookie(inode->key(), aux, st.st_size,
                                             /*evict_active=*/true);
    } else if (inode->cookie->aux() != aux) {
      // Held across the invalidation: only opens of this inode wait.
      inode->cookie->Invalidate(aux, st.st_size);
    }
    if (refetch) {
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
  absl::StatusOr<std::string> dir_path = PathOf(dir);
  if (!dir_path.ok()) return ErrnoToStatus(ENOENT, "create " + name);
  absl::StatusOr<Origin::CreateResult> made = origin_->Create(
      RequestCaller(), ChildKey(*dir_path, name), mode, OriginOpenFlags(flags));
  if (!made.ok()) return made.status();
  Created created;
  created.entry = AddEntry(dir, name, made->attr);
  Inode* inode = inodes_->Get(created.entry.ino);
  std::shared_ptr<OriginFile> writable;
  {
    absl::MutexLock origin_lock(&inode->origin_mu);
    writable = inode->CountOpen(std::move(made->file));
  }
  absl::StatusOr<Opened> opened =
      OpenWith(inode, made->attr, flags & ~O_TRUNC, std::move(writable));
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
  if (file->flushed.load(std::memory_order_relaxed)) NoteUsedAfterFlush(file);
  Bump(stats().fuse_reads);
  return read_path_.Read(file->stream, off, size);
}

absl::StatusOr<size_t> CacheFs::Write(uint64_t fh, const char* data,
                                      size_t size, uint64_t off) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  if (file->writable == nullptr) return ErrnoToStatus(EBADF, "write");
  if (file->flushed.load(std::memory_order_relaxed)) NoteUsedAfterFlush(file);
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

void CacheFs::NoteUsedAfterFlush(OpenFile* file) {
  absl::MutexLock lock(&file->inode->mu);
  if (file->flushed.exchange(false)) --file->inode->flushed_opens;
}

absl::Status CacheFs::Flush(uint64_t fh) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  {
    absl::MutexLock lock(&file->inode->mu);
    if (!file->flushed.exchange(true)) ++file->inode->flushed_opens;
  }
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
  // The origin may copy less than asked (a FUSE origin's kernel fallback
  // copies a pipe's worth at a time): asked on until it copies nothing.
  absl::StatusOr<size_t> copied = size_t{0};
  while (*copied < len) {
    absl::StatusOr<size_t> more =
        (*source)->CopyTo(off_in + *copied, *out->writable, off_out + *copied,
                          len - *copied, flags);
    if (!more.ok()) {
      if (*copied == 0) copied = more.status();
      break;
    }
    if (*more == 0) break;
    *copied += *more;
  }
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
  std::shared_ptr<OriginFile> origin_file;
  {
    absl::MutexLock lock(&inode->mu);
    if (file->flushed) --inode->flushed_opens;
    if (--inode->opens == 0) {
      if (inode->aux_pending && !inode->retire_on_release) {
        RefreshAuxLocked(inode);
      }
      std::shared_ptr<Cookie> cookie = std::move(inode->cookie);
      const bool retire = inode->retire_on_release;
      inode->retire_on_release = false;
      inode->aux_pending = false;
      {
        absl::MutexLock origin_lock(&inode->origin_mu);
        origin_file = std::move(inode->origin_file);
      }
      // Under the inode's lock: an open of this inode that comes before
      // the cookie is let go would take it for another inode's (the
      // file's name now leading elsewhere) and throw its data away. The
      // kernel sends RELEASE after close() returns, so the next open of
      // the file often races with it.
      if (cookie != nullptr) {
        volume_->RelinquishCookie(std::move(cookie), retire);
      }
    }
  }
  delete file;
  if (origin_file != nullptr) {
    // Closed in the background, once read-ahead lets go: a close may ask
    // the server.
    origin_pool_.Enqueue([file = std::move(origin_file)]() mutable {
      file.reset();
    });
  }
}

void CacheFs::CheckpointAll(bool wait_for_writes) {
  for (const std::shared_ptr<Cookie>& cookie : volume_->Cookies()) {
    // Busy now: the next pass.
    cookie->Checkpoint(wait_for_writes).IgnoreError();
  }
}

void CacheFs::CheckpointLoop() {
  // The cache directory is looked at more often than objects are
  // checkpointed: once it is removed or read-only, every cache write
  // fails, and the sooner the cache is withdrawn the fewer do.
  constexpr absl::Duration kDirectoryCheck = absl::Seconds(2);
  const absl::Duration interval = absl::Seconds(options_.checkpoint_interval);
  absl::Time next_checkpoint = absl::Now() + interval;
  while (!stopping_.WaitForNotificationWithTimeout(kDirectoryCheck)) {
    cache_->WithdrawIfDirectoryUnusable();
    if (options_.checkpoint_interval > 0 && absl::Now() >= next_checkpoint) {
      CheckpointAll();
      next_checkpoint = absl::Now() + interval;
    }
  }
}

}  // namespace cachefs
