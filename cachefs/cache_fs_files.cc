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
  if (writes) {
    absl::Status refused = RefuseIfOffline("open for writing");
    if (!refused.ok()) return refused;
    siblings_.Forget(inode->key());
  }
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
    const bool may_pre_open =
        !recent.has_value() && shown.has_value() && !Offline();
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
  if (!st.ok() && !writes) {
    // The origin is down: the file as it was at its last check, with
    // whatever of it the cache holds.
    if (std::optional<struct stat> last =
            OfflineAttr(inode->key(), st.status())) {
      st = *last;
    }
  }
  if (!st.ok()) return st.status();
  const bool kernel_stale =
      shown.has_value() &&
      (shown->st_size != st->st_size ||
       shown->st_mtim.tv_sec != st->st_mtim.tv_sec ||
       shown->st_mtim.tv_nsec != st->st_mtim.tv_nsec);
  if (!S_ISREG(st->st_mode)) return ErrnoToStatus(EISDIR, "open");
  absl::StatusOr<std::string> path = PathOf(inode);
  if (!path.ok()) return path.status();
  std::function<absl::StatusOr<std::unique_ptr<OriginFile>>()> open_writable;
  if (writes) {
    open_writable = [this, &path, flags] {
      return origin_->OpenFile(RequestCaller(), *path, OriginOpenFlags(flags));
    };
  } else if (ActingForOtherUser()) {
    // Reads open the origin file lazily and as the daemon: the caller's
    // right to read is checked now (by the origin: without it, refused).
    if (Offline()) {
      Bump(stats().offline_refusals);
      return ErrnoToStatus(EIO, "open " + *path +
                                    ": the origin, which checks the "
                                    "caller's access, is down");
    }
    absl::Status allowed = origin_->CheckAccess(RequestCaller(), *path, R_OK);
    if (!allowed.ok()) return allowed;
  }
  absl::StatusOr<Opened> opened =
      OpenWith(inode, *st, flags, std::move(open_writable), kernel_stale);
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
  return !inode->data.InUse() && !volume_->HasObject(path);
}

void CacheFs::StoreFetchedAhead(Inode* inode, const struct stat& checked) {
  // Taken under the file's write lock: a write done through cachefs before
  // then forgot what was fetched (MarkChanged).
  auto take = [&]() -> std::optional<NetfsFile::FetchedAhead> {
    std::optional<SiblingReadAhead::Fetched> fetched =
        siblings_.Take(inode->key());
    if (!fetched.has_value() ||
        fetched->data->length != static_cast<uint64_t>(checked.st_size)) {
      return std::nullopt;
    }
    NetfsFile::FetchedAhead ahead;
    ahead.aux = MakeAuxData(fetched->attr, UseInode());
    ahead.length = fetched->data->length;
    ahead.iov = {fetched->data->data(), fetched->data->capacity()};
    ahead.owner = fetched->data;
    return ahead;
  };
  if (inode->data.StoreFetchedAhead(take, MakeAuxData(checked, UseInode()))) {
    Bump(stats().files_read_ahead_used);
  }
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
  inode->data.AdoptOriginFile(*std::move(pre_open.file));
}

absl::StatusOr<CacheFs::Opened> CacheFs::OpenWith(
    Inode* inode, const struct stat& st, int flags,
    std::function<absl::StatusOr<std::unique_ptr<OriginFile>>()> open_writable,
    bool kernel_stale, bool for_kernel) {
  NetfsFile::OpenRequest request;
  request.key = [inode] { return inode->key(); };
  request.path = [this, inode] { return PathOf(inode); };
  request.attr = st;
  request.flags = flags;
  request.open_for_writing = std::move(open_writable);
  request.kernel_stale = kernel_stale;
  request.for_kernel = for_kernel;
  request.changed = [this, inode] { MarkChanged(inode); };
  absl::StatusOr<NetfsFile::Opened> opened =
      inode->data.Open(std::move(request));
  if (!opened.ok()) return opened.status();
  auto* file = new OpenFile;
  file->inode = inode;
  file->data = std::move(opened->handle);
  Opened result;
  result.fh = reinterpret_cast<uint64_t>(file);
  result.attr = st;
  result.keep_cache = opened->keep_cache;
  result.changed = opened->changed;
  return result;
}

absl::StatusOr<CacheFs::Created> CacheFs::Create(uint64_t parent,
                                                 const std::string& name,
                                                 mode_t mode, int flags) {
  if (absl::Status refused = RefuseIfOffline("create"); !refused.ok()) {
    return refused;
  }
  Inode* dir = inodes_->Get(parent);
  absl::StatusOr<std::string> dir_path = PathOf(dir);
  if (!dir_path.ok()) return ErrnoToStatus(ENOENT, "create " + name);
  absl::StatusOr<Origin::CreateResult> made = origin_->Create(
      RequestCaller(), ChildKey(*dir_path, name), mode, OriginOpenFlags(flags));
  if (!made.ok()) return made.status();
  Created created;
  created.entry = AddEntry(dir, name, made->attr);
  Inode* inode = inodes_->Get(created.entry.ino);
  absl::StatusOr<Opened> opened =
      OpenWith(inode, made->attr, flags & ~O_TRUNC,
               [&]() -> absl::StatusOr<std::unique_ptr<OriginFile>> {
                 return std::move(made->file);
               });
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
  Bump(stats().fuse_reads);
  const bool offline = Offline();
  absl::StatusOr<std::unique_ptr<ReadReply>> reply =
      file->inode->data.Read(*file->data, off, size);
  if (offline) {
    Bump(reply.ok() ? stats().offline_reads : stats().offline_refusals);
  } else if (!reply.ok()) {
    NoteOrigin(reply.status());
  }
  return reply;
}

absl::StatusOr<size_t> CacheFs::Write(uint64_t fh, const char* data,
                                      size_t size, uint64_t off) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  Inode* inode = file->inode;
  absl::Status refused = RefuseIfOffline("write");
  if (!refused.ok()) return refused;
  return inode->data.Write(*file->data, data, size, off,
                           [this, inode] { MarkChanged(inode); });
}

absl::Status CacheFs::Flush(uint64_t fh) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  return file->inode->data.Flush(*file->data);
}

absl::Status CacheFs::Fsync(uint64_t fh, bool datasync) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  return file->inode->data.Fsync(*file->data, datasync);
}

absl::Status CacheFs::Fallocate(uint64_t fh, int mode, uint64_t off,
                                uint64_t len) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  Inode* inode = file->inode;
  absl::Status refused = RefuseIfOffline("fallocate");
  if (!refused.ok()) return refused;
  if (file->data->writes() && len > 0) attrs_.Erase(inode->key());
  return inode->data.Fallocate(*file->data, mode, off, len,
                               [this, inode] { MarkChanged(inode); });
}

absl::StatusOr<size_t> CacheFs::CopyFileRange(uint64_t fh_in, uint64_t off_in,
                                              uint64_t fh_out,
                                              uint64_t off_out, size_t len,
                                              unsigned flags) {
  auto* in = reinterpret_cast<OpenFile*>(fh_in);
  auto* out = reinterpret_cast<OpenFile*>(fh_out);
  Inode* inode = out->inode;
  absl::Status refused = RefuseIfOffline("copy_file_range");
  if (!refused.ok()) return refused;
  if (out->data->writes()) attrs_.Erase(inode->key());
  return NetfsFile::CopyFileRange(*in->data, off_in, *out->data, off_out, len,
                                  flags, [this, inode] { MarkChanged(inode); });
}

void CacheFs::Release(uint64_t fh) {
  auto* file = reinterpret_cast<OpenFile*>(fh);
  Inode* inode = file->inode;
  inode->data.Release(std::move(file->data),
                      [this, inode] { return FetchAttr(inode); });
  delete file;
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
  const absl::Duration tick = options_.checkpoint_interval > 0
                                  ? std::min(kDirectoryCheck, interval)
                                  : kDirectoryCheck;
  absl::Time next_checkpoint = absl::Now() + interval;
  while (!stopping_.WaitForNotificationWithTimeout(tick)) {
    cache_->WithdrawIfDirectoryUnusable();
    if (options_.checkpoint_interval > 0 && absl::Now() >= next_checkpoint) {
      CheckpointAll();
      SaveAttrSnapshot(/*clean=*/false);
      next_checkpoint = absl::Now() + interval;
    }
  }
}

}  // namespace cachefs
