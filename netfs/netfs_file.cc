#include "netfs/netfs_file.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <utility>

#include "absl/time/time.h"
#include "io/errno_status.h"

namespace cachefs {

std::vector<ReadSegment> NetfsFile::Handle::Missing(uint64_t pos,
                                                    uint64_t len) const {
  std::vector<ReadSegment> missing;
  Cookie::ReadPlan plan = stream_->cookie->PrepareRead(pos, len);
  for (const ReadSegment& s : plan.segments()) {
    if (s.source == ReadSegment::Source::kOrigin) missing.push_back(s);
  }
  return missing;
}

std::shared_ptr<OriginFile> NetfsFile::CountOpenLocked(
    std::unique_ptr<OriginFile> file) {
  if (open_origin_files_ == nullptr) {
    open_origin_files_ = std::make_shared<OpenOriginFiles>();
  }
  return open_origin_files_->Count(std::move(file));
}

void NetfsFile::AdoptOriginFile(std::unique_ptr<OriginFile> file) {
  absl::MutexLock lock(&origin_mu_);
  if (origin_file_ == nullptr) origin_file_ = CountOpenLocked(std::move(file));
}

absl::StatusOr<std::shared_ptr<OriginFile>> NetfsFile::SharedOriginFile(
    const PathFn& path) {
  absl::MutexLock lock(&origin_mu_);
  if (origin_file_ != nullptr) return origin_file_;
  absl::StatusOr<std::string> at = path();
  if (!at.ok()) return at.status();
  absl::StatusOr<std::unique_ptr<OriginFile>> opened =
      context_->origin->OpenFile(Caller::Daemon(), *at, O_RDONLY);
  if (!opened.ok()) return opened.status();
  if (context_->check_identity) {
    // The name may lead to another file since the open's check (one put
    // in its place on the origin): its bytes must not be read as this
    // file's. Without stable inode numbers (SSHFS) there is no cheap way
    // to tell, and the open's check stands.
    absl::StatusOr<struct stat> st = (*opened)->Stat();
    if (!st.ok()) return st.status();
    if (st->st_ino != ino_ || st->st_dev != dev_) {
      return ErrnoToStatus(ESTALE,
                           "the name " + *at + " leads to another file now");
    }
  }
  origin_file_ = CountOpenLocked(*std::move(opened));
  return origin_file_;
}

absl::StatusOr<NetfsFile::Opened> NetfsFile::Open(OpenRequest request) {
  const struct stat& st = request.attr;
  const std::string aux = context_->aux_of(st);
  const bool writes = request.open_for_writing != nullptr;
  // Truncating on open is a change of the data: ordered with writes.
  std::optional<absl::MutexLock> truncating;
  if (writes && (request.flags & O_TRUNC)) truncating.emplace(&write_mu_);
  std::shared_ptr<OriginFile> writable;
  if (writes) {
    absl::StatusOr<std::unique_ptr<OriginFile>> opened =
        request.open_for_writing();
    if (!opened.ok()) return opened.status();
    absl::MutexLock lock(&origin_mu_);
    writable = CountOpenLocked(*std::move(opened));
    writer_ = writable;
  }
  auto handle = std::make_unique<Handle>();
  handle->file_ = this;
  handle->writable_ = writable;
  handle->opened_attr_ = st;
  handle->stream_ = std::make_shared<ReadStream>();
  // A read-write handle reads through its own origin file (its mode may
  // not let anyone else open the file); others share one, opened lazily.
  std::weak_ptr<OriginFile> own;
  if ((request.flags & O_ACCMODE) == O_RDWR) own = writable;
  handle->stream_->origin = [this, own, path = std::move(request.path)]()
      -> absl::StatusOr<std::shared_ptr<OriginFile>> {
    if (context_->offline && context_->offline()) {
      return ErrnoToStatus(EIO, "data not cached, and the origin is down");
    }
    if (std::shared_ptr<OriginFile> mine = own.lock()) return mine;
    return SharedOriginFile(path);
  };
  Opened result;
  absl::MutexLock lock(&mu_);
  if (cookie_ != nullptr && aux_pending_) {
    // The attributes moved because of changes made through cachefs, which
    // the cached data (and the kernel's pages) already follow. They are
    // not adopted here: fetched outside write_mu_, they may already be
    // behind a write in flight; the last release adopts them.
    result.keep_cache = true;
  } else {
    const bool changed =
        (!last_aux_.empty() && last_aux_ != aux) || request.kernel_stale;
    if (request.for_kernel) {
      result.changed = changed;
      result.keep_cache = last_aux_ == aux && !request.kernel_stale;
      last_aux_ = aux;
    }
    const bool refetch =
        changed || (cookie_ != nullptr && cookie_->aux() != aux);
    if (cookie_ == nullptr) {
      // Another file's cookie under this key is a file the name no longer
      // leads to (replaced or deleted and made anew on the origin).
      // The key is read under the lock that a rename's rekeying takes, so
      // the rename either sees this cookie or this open sees its key.
      cookie_ = context_->volume->AcquireCookie(request.key(), aux, st.st_size,
                                                /*evict_active=*/true);
    } else if (cookie_->aux() != aux) {
      // Held across the invalidation: only opens of this file wait.
      cookie_->Invalidate(aux, st.st_size);
    }
    if (refetch) {
      // The origin file may have been replaced (SSHFS keeps a handle on
      // the old one): later fetches open it afresh.
      absl::MutexLock origin_lock(&origin_mu_);
      origin_file_.reset();
    }
  }
  ++opens_;
  handle->stream_->cookie = cookie_;
  const bool truncated = writes && (request.flags & O_TRUNC);
  if (truncated) request.changed();
  if (truncated && st.st_size != 0) {
    // The origin open truncated the file.
    cookie_->Resize(0).IgnoreError();
    aux_pending_ = true;
  }
  result.handle = std::move(handle);
  return result;
}

absl::StatusOr<std::unique_ptr<ReadReply>> NetfsFile::Read(Handle& handle,
                                                           uint64_t off,
                                                           size_t size) {
  if (handle.flushed_.load(std::memory_order_relaxed)) {
    NoteUsedAfterFlush(handle);
  }
  return context_->read_path->Read(handle.stream_, off, size);
}

absl::StatusOr<size_t> NetfsFile::Write(Handle& handle, const char* data,
                                        size_t size, uint64_t off,
                                        const ChangedFn& changed) {
  if (handle.writable_ == nullptr) return ErrnoToStatus(EBADF, "write");
  if (handle.flushed_.load(std::memory_order_relaxed)) {
    NoteUsedAfterFlush(handle);
  }
  absl::MutexLock write_lock(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    aux_pending_ = true;
  }
  absl::StatusOr<size_t> written = context_->write_path->Write(
      *handle.stream_->cookie, *handle.writable_, data, size, off);
  changed();
  return written;
}

void NetfsFile::NoteUsedAfterFlush(Handle& handle) {
  absl::MutexLock lock(&mu_);
  if (handle.flushed_.exchange(false)) --flushed_opens_;
}

absl::Status NetfsFile::Flush(Handle& handle) {
  {
    absl::MutexLock lock(&mu_);
    if (!handle.flushed_.exchange(true)) ++flushed_opens_;
  }
  if (handle.writable_ == nullptr) return absl::OkStatus();
  absl::Status status = handle.writable_->Flush();
  if (!status.ok()) DropAfterLostWrites(handle);
  return status;
}

absl::Status NetfsFile::Fsync(Handle& handle, bool datasync) {
  if (handle.writable_ == nullptr) return absl::OkStatus();
  absl::Status status = handle.writable_->Sync(datasync);
  if (!status.ok()) DropAfterLostWrites(handle);
  return status;
}

void NetfsFile::DropAfterLostWrites(Handle& handle) {
  // The origin took writes and then failed to keep them (NFS and SSHFS
  // report that at flush or fsync): what the cache stored from them is
  // not what the origin holds.
  Cookie& cookie = *handle.stream_->cookie;
  absl::MutexLock write_lock(&write_mu_);
  cookie.Invalidate(cookie.aux(), cookie.object_size());
}

absl::Status NetfsFile::Fallocate(Handle& handle, int mode, uint64_t off,
                                  uint64_t len, const ChangedFn& changed) {
  if (handle.writable_ == nullptr) return ErrnoToStatus(EBADF, "fallocate");
  if (len == 0) return ErrnoToStatus(EINVAL, "fallocate");
  Cookie& cookie = *handle.stream_->cookie;
  absl::MutexLock write_lock(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    aux_pending_ = true;
  }
  const uint32_t shift = context_->granule_shift;
  const bool zeroes = (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE));
  const bool shifts =
      (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE));
  Cookie::WriteTicket ticket;
  if (zeroes && off < cookie.object_size()) {
    uint64_t last = (std::min(off + len, cookie.object_size()) - 1) >> shift;
    ticket = cookie.PrepareWrite(off >> shift, last - (off >> shift) + 1);
  }
  absl::Status status = handle.writable_->Allocate(mode, off, len);
  changed();
  if (status.ok() && ticket) ticket.Clear(ticket.first(), ticket.count());
  ticket.Release();
  if (!status.ok()) return status;
  if (shifts) {
    // Everything past `off` moved: start the object over.
    absl::StatusOr<struct stat> st = handle.writable_->Stat();
    cookie.Invalidate(cookie.aux(), st.ok() ? st->st_size : 0);
  } else if (!(mode & FALLOC_FL_KEEP_SIZE) &&
             off + len > cookie.object_size()) {
    cookie.Resize(off + len).IgnoreError();
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> NetfsFile::CopyFileRange(Handle& in, uint64_t off_in,
                                                Handle& out, uint64_t off_out,
                                                size_t len, unsigned flags,
                                                const ChangedFn& changed) {
  if (out.writable_ == nullptr) return ErrnoToStatus(EBADF, "copy_file_range");
  absl::StatusOr<std::shared_ptr<OriginFile>> source = in.stream_->origin();
  if (!source.ok()) return source.status();
  NetfsFile& file = *out.file_;
  Cookie& cookie = *out.stream_->cookie;
  absl::MutexLock write_lock(&file.write_mu_);
  {
    absl::MutexLock lock(&file.mu_);
    file.aux_pending_ = true;
  }
  const uint32_t shift = file.context_->granule_shift;
  const uint64_t old_size = cookie.object_size();
  if (len > 0 && off_out + len > old_size) {
    cookie.Resize(off_out + len).IgnoreError();
  }
  Cookie::WriteTicket ticket;
  if (len > 0) {
    uint64_t first = off_out >> shift;
    ticket =
        cookie.PrepareWrite(first, ((off_out + len - 1) >> shift) - first + 1);
  }
  // The origin may copy less than asked (a FUSE origin's kernel fallback
  // copies a pipe's worth at a time): asked on until it copies nothing.
  absl::StatusOr<size_t> copied = size_t{0};
  while (*copied < len) {
    absl::StatusOr<size_t> more =
        (*source)->CopyTo(off_in + *copied, *out.writable_, off_out + *copied,
                          len - *copied, flags);
    if (!more.ok()) {
      if (*copied == 0) copied = more.status();
      break;
    }
    if (*more == 0) break;
    *copied += *more;
  }
  changed();
  // The copied bytes never passed through here: their granules go absent.
  if (copied.ok() && *copied > 0 && ticket) {
    uint64_t first = off_out >> shift;
    ticket.Clear(first, ((off_out + *copied - 1) >> shift) - first + 1);
  }
  ticket.Release();
  uint64_t reached = off_out + (copied.ok() ? *copied : 0);
  if (cookie.object_size() > std::max(old_size, reached)) {
    cookie.Resize(std::max(old_size, reached)).IgnoreError();
  }
  return copied;
}

void NetfsFile::RefreshAuxLocked(const FetchFn& fetch) {
  absl::StatusOr<struct stat> st = fetch();
  if (!st.ok() || !S_ISREG(st->st_mode) || cookie_ == nullptr) return;
  std::string aux = context_->aux_of(*st);
  cookie_->SetAux(aux);
  if (cookie_->object_size() != static_cast<uint64_t>(st->st_size)) {
    cookie_->Resize(st->st_size).IgnoreError();
  }
  last_aux_ = aux;
  aux_pending_ = false;
}

void NetfsFile::Release(std::unique_ptr<Handle> handle, const FetchFn& fetch) {
  // Closed first, so the attributes fetched below are the final ones (NFS
  // and SSHFS may finish writes at close).
  handle->writable_.reset();
  std::shared_ptr<OriginFile> origin_file;
  {
    absl::MutexLock lock(&mu_);
    if (handle->flushed_) --flushed_opens_;
    if (--opens_ == 0) {
      if (aux_pending_ && !retire_on_release_) RefreshAuxLocked(fetch);
      std::shared_ptr<Cookie> cookie = std::move(cookie_);
      const bool retire = retire_on_release_;
      retire_on_release_ = false;
      aux_pending_ = false;
      {
        absl::MutexLock origin_lock(&origin_mu_);
        origin_file = std::move(origin_file_);
      }
      // Under the lock: an open of this file that comes before the cookie
      // is let go would take it for another file's (the name now leading
      // elsewhere) and throw its data away. The kernel sends RELEASE after
      // close() returns, so the next open of the file often races with it.
      if (cookie != nullptr) {
        context_->volume->RelinquishCookie(std::move(cookie), retire);
      }
    }
  }
  handle.reset();
  if (origin_file != nullptr) {
    // Closed in the background, once read-ahead lets go: a close may ask
    // the server.
    context_->origin_pool->Enqueue(
        [file = std::move(origin_file)]() mutable { file.reset(); });
  }
}

absl::Status NetfsFile::Truncate(const std::function<absl::Status()>& change,
                                 const Caller& caller, const KeyFn& key,
                                 const FetchFn& fetch, uint64_t new_size) {
  absl::MutexLock write_lock(&write_mu_);
  return KeepAcross(change, caller, key, fetch, "", new_size);
}

absl::Status NetfsFile::KeepAcross(const std::function<absl::Status()>& change,
                                   const Caller& caller, const KeyFn& key,
                                   const FetchFn& fetch,
                                   const std::string& new_key,
                                   std::optional<uint64_t> new_size) {
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&mu_);
    cookie = cookie_;
    if (cookie != nullptr) aux_pending_ = true;
  }
  Volume& volume = *context_->volume;
  if (cookie != nullptr) {
    // Open: the cookie adopts the new attributes at its next refresh.
    absl::Status status = change();
    if (!status.ok()) return status;
    // Only a size the change itself set (under write_mu_): attributes
    // fetched now could be behind a write in flight.
    if (new_size.has_value()) cookie->Resize(*new_size).IgnoreError();
    if (!new_key.empty()) {
      absl::Status moved = volume.RekeyCookie(cookie, new_key);
      if (!moved.ok()) cookie->WithdrawObject(moved);
    }
    return absl::OkStatus();
  }
  // Closed: carry its object, if it has one, from the attributes before
  // the change to those after (at the new name, for a rename).
  const std::string old_key = key();
  if (!volume.HasObject(old_key)) return change();
  absl::StatusOr<struct stat> before = fetch();
  if (!before.ok()) return change();
  absl::Status status = change();
  if (!status.ok()) return status;
  absl::StatusOr<struct stat> after =
      context_->origin->GetAttr(caller, new_key.empty() ? old_key : new_key);
  if (!after.ok() || !S_ISREG(after->st_mode)) return absl::OkStatus();
  // Only an idle key: an active cookie under it belongs to a file open
  // under this name, which is not this one (renamed away, or replaced).
  cookie = volume.AcquireIdleCookie(old_key, context_->aux_of(*before),
                                    before->st_size);
  if (cookie == nullptr) return absl::OkStatus();
  cookie->WaitReady();
  if (after->st_size != before->st_size) {
    cookie->Resize(after->st_size).IgnoreError();
  }
  if (!new_key.empty()) {
    absl::Status moved = volume.RekeyCookie(cookie, new_key);
    if (!moved.ok()) cookie->WithdrawObject(moved);
  }
  cookie->SetAux(context_->aux_of(*after));
  volume.RelinquishCookie(std::move(cookie), false);
  return absl::OkStatus();
}

bool NetfsFile::DropCachedData() {
  // Ordered with writes: an append in flight must not see its size taken
  // back by the fresh object.
  absl::MutexLock write_lock(&write_mu_);
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&mu_);
    cookie = cookie_;
    // The next open finds the data changed: the kernel drops its pages.
    last_aux_.clear();
  }
  if (cookie == nullptr) return false;
  cookie->Invalidate(cookie->aux(), cookie->object_size());
  return true;
}

void NetfsFile::Rekey(const std::string& key) {
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&mu_);
    cookie = cookie_;
  }
  if (cookie == nullptr) return;
  absl::Status moved = context_->volume->RekeyCookie(cookie, key);
  if (!moved.ok()) cookie->WithdrawObject(moved);
}

bool NetfsFile::RetireOnRelease(const std::string& private_key) {
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&mu_);
    if (cookie_ == nullptr) return false;
    cookie = cookie_;
    retire_on_release_ = true;
  }
  absl::Status moved = context_->volume->RekeyCookie(cookie, private_key);
  if (moved.ok()) return true;
  cookie->WithdrawObject(moved);
  return false;
}

std::unique_ptr<OriginFile> NetfsFile::ReadyForRemoval(const PathFn& path,
                                                       const Caller& caller) {
  // The kernel sends RELEASE after close(2) returns, and origin files are
  // closed in the background after that: an unlink right after a close
  // (the commonest way a file goes) would find the file still open on the
  // origin, which SSHFS then hides as a .fuse_hidden file. Only handles
  // whose close has been seen are waited for, briefly; one still used
  // (through another descriptor) gets the origin file opened now, so its
  // reader keeps its data after the name is gone.
  constexpr absl::Duration kReleaseWait = absl::Milliseconds(100);
  constexpr absl::Duration kCloseWait = absl::Seconds(2);
  // How long an origin's own handling of a close may still be under way
  // after close(2) returned (FUSE sends RELEASE in the background).
  constexpr absl::Duration kOriginReleaseWindow = absl::Seconds(2);
  std::shared_ptr<OpenOriginFiles> open_files;
  {
    // Both locks held to the end, as Release takes them: a pin made after
    // the last release would hold the origin file open for good.
    absl::MutexLock lock(&mu_);
    if (opens_ > 0 && opens_ == flushed_opens_) {
      mu_.AwaitWithTimeout(
          absl::Condition(
              +[](NetfsFile* f)
                   ABSL_NO_THREAD_SAFETY_ANALYSIS { return f->opens_ == 0; },
              this),
          kReleaseWait);
    }
    absl::MutexLock origin_lock(&origin_mu_);
    if (opens_ == 0) {
      open_files = open_origin_files_;
    } else if (origin_file_ == nullptr) {
      absl::StatusOr<std::string> at = path();
      absl::StatusOr<std::unique_ptr<OriginFile>> opened =
          absl::FailedPreconditionError("no path");
      // Shared by every later reader: the daemon's, as the other shared
      // read-only origin files are.
      if (at.ok()) {
        opened = context_->origin->OpenFile(Caller::Daemon(), *at, O_RDONLY);
      }
      // (A write-only file cannot be opened to read: nothing to keep.)
      if (opened.ok()) origin_file_ = CountOpenLocked(*std::move(opened));
    }
  }
  if (open_files == nullptr) return nullptr;
  open_files->AwaitAllClosed(kCloseWait);
  if (!open_files->OpenWithin(kOriginReleaseWindow)) return nullptr;
  // A close that returned may still be in flight at an origin served by
  // FUSE: SSHFS (libfuse's high-level API) that sees the unlink during
  // its RELEASE hides the file, and the RELEASE then removes the hidden
  // file by the name it had before, which is gone: it stays for good.
  // Held open across the unlink, a fresh handle is the last to close, and
  // its RELEASE finds the hidden name.
  absl::StatusOr<std::string> at = path();
  if (!at.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<OriginFile>> hold =
      context_->origin->OpenFile(caller, *at, O_RDONLY);
  if (!hold.ok()) return nullptr;
  return *std::move(hold);
}

bool NetfsFile::InUse() {
  {
    absl::MutexLock lock(&mu_);
    if (cookie_ != nullptr) return true;
  }
  absl::MutexLock lock(&origin_mu_);
  return origin_file_ != nullptr;
}

std::shared_ptr<OriginFile> NetfsFile::AnyOpenOriginFile() {
  absl::MutexLock lock(&origin_mu_);
  return origin_file_ != nullptr ? origin_file_ : writer_.lock();
}

bool NetfsFile::KernelFollows(const std::string& aux) {
  absl::MutexLock lock(&mu_);
  return last_aux_ == aux;
}

bool NetfsFile::StoreFetchedAhead(
    const std::function<std::optional<FetchedAhead>()>& take,
    const std::string& checked_aux) {
  // Ordered with writes: one done through cachefs before this point forgot
  // what was fetched, and none can start until it is stored.
  absl::MutexLock write_lock(&write_mu_);
  std::optional<FetchedAhead> fetched = take();
  if (!fetched.has_value()) return false;
  // The data was read after `fetched->aux`'s attributes were: if the check
  // still shows them, the data is what the file holds now, as a cached
  // object with that aux data would be.
  if (fetched->aux != checked_aux) return false;
  std::shared_ptr<Cookie> cookie;
  {
    absl::MutexLock lock(&mu_);
    cookie = cookie_;
  }
  if (cookie == nullptr || cookie->object_size() != fetched->length) {
    return false;
  }
  Cookie::FillClaim claim = cookie->ClaimFill(0, 1);
  if (!claim) return false;
  claim.Complete({&fetched->iov, 1},
                 [owner = fetched->owner](absl::StatusOr<size_t>) {});
  return true;
}

}  // namespace cachefs
