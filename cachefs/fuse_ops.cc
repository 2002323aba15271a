#include "cachefs/fuse_ops.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cachefs/request_caller.h"
#include "io/errno_status.h"
#include "io/log.h"
#include "netfs/credentials.h"

namespace cachefs {
namespace {

FuseContext& Ctx(fuse_req_t req) {
  return *static_cast<FuseContext*>(fuse_req_userdata(req));
}
CacheFs& Fs(fuse_req_t req) { return *Ctx(req).fs; }

// Failures that come from a sick origin or cache rather than from what
// the caller asked (ENOENT, EACCES...): an operator must hear of them.
bool IsFault(int err) {
  switch (err) {
    case EIO:
    case ETIMEDOUT:
    case ENOTCONN:
    case ECONNABORTED:
    case ECONNRESET:
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ESHUTDOWN:
      return true;
    default:
      return false;
  }
}

void ReplyError(fuse_req_t req, const absl::Status& status) {
  int err = StatusToErrno(status);
  if (err == 0) err = EIO;
  if (IsFault(err)) {
    LogEvent(LogLevel::kWarning, absl::StrCat("request-fault-", err),
             absl::StrCat("a request failed with ", std::strerror(err), ": ",
                          std::string(status.message())));
  }
  fuse_reply_err(req, err);
}

// The requesting process's identity. A daemon that cannot take on other
// users (it does not run as root) acts as itself for everyone; the
// supplementary groups are read (from /proc) only when it will act as
// someone else.
Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (!CanSwitchCredentials() || (ctx->uid == 0 && ctx->gid == 0)) {
    Caller daemon = Caller::Daemon();
    daemon.pid = ctx->pid;
    return daemon;
  }
  Caller caller;
  caller.uid = ctx->uid;
  caller.gid = ctx->gid;
  caller.pid = ctx->pid;
  std::vector<gid_t> groups(64);
  int n = fuse_req_getgroups(req, groups.size(), groups.data());
  if (n > static_cast<int>(groups.size())) {
    groups.resize(n);
    n = fuse_req_getgroups(req, groups.size(), groups.data());
  }
  if (n > 0) {
    caller.groups.assign(groups.begin(),
                         groups.begin() + std::min<size_t>(n, groups.size()));
  }
  return caller;
}

fuse_entry_param EntryParam(const CacheFs::Entry& entry) {
  fuse_entry_param e = {};
  e.ino = entry.ino;
  e.attr = entry.attr;
  e.attr_timeout = entry.attr_timeout;
  e.entry_timeout = entry.entry_timeout;
  return e;
}

void ReplyEntry(fuse_req_t req, const CacheFs::Entry& entry) {
  fuse_entry_param e = EntryParam(entry);
  fuse_reply_entry(req, &e);
}

void Init(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // Large requests: reads are shaped to 256 KiB granules anyway.
  conn->max_readahead = 1 << 20;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) {
    conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  }
  // The kernel drops cached pages when it sees the mtime change.
  if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) {
    conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
  }
  // open(O_TRUNC) in one request, so the origin truncates as it opens.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) {
    conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  }
  // Every listing request carries attributes, not only the first: in
  // "auto" mode the kernel lists a large directory's later entries without
  // them, and each open or stat that follows then costs an origin round
  // trip of its own instead of one per batch of 32 names.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                  FUSE_CAP_SPLICE_MOVE | FUSE_CAP_READDIRPLUS_AUTO);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto entry = Fs(req).Lookup(parent, name);
  if (!entry.ok()) return ReplyError(req, entry.status());
  ReplyEntry(req, *entry);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Fs(req).Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) {
    Fs(req).Forget(forgets[i].ino, forgets[i].nlookup);
  }
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto st = Fs(req).GetAttr(ino, fi != nullptr ? fi->fh : 0);
  if (!st.ok()) return ReplyError(req, st.status());
  fuse_reply_attr(req, &st->attr, st->timeout);
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  auto target = Fs(req).ReadLink(ino);
  if (!target.ok()) return ReplyError(req, target.status());
  fuse_reply_readlink(req, target->c_str());
}

void StatFs(fuse_req_t req, fuse_ino_t ino) {
  auto st = Fs(req).StatFs(ino);
  if (!st.ok()) return ReplyError(req, st.status());
  fuse_reply_statfs(req, &*st);
}

void ReplyXattrValue(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (size < value.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto value = Fs(req).GetXattr(ino, name);
  if (!value.ok()) return ReplyError(req, value.status());
  ReplyXattrValue(req, *value, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto names = Fs(req).ListXattr(ino);
  if (!names.ok()) return ReplyError(req, names.status());
  std::string list;
  for (const std::string& n : *names) list.append(n).push_back('\0');
  ReplyXattrValue(req, list, size);
}

void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  ScopedRequestCaller as_caller(CallerOf(req));
  fuse_reply_err(req, StatusToErrno(Fs(req).Access(ino, mask)));
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto fh = Fs(req).OpenDir(ino);
  if (!fh.ok()) return ReplyError(req, fh.status());
  fi->fh = *fh;
  fuse_reply_open(req, fi);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                   fuse_file_info* fi, bool plus) {
  std::vector<char> buf(size);
  size_t used = 0;
  auto add = [&](const std::string& name, const struct stat& attr,
                 uint64_t next, const CacheFs::Entry* entry) {
    size_t room = size - used;
    size_t n;
    if (plus) {
      fuse_entry_param e = {};
      e.attr = attr;
      if (entry != nullptr) e = EntryParam(*entry);
      n = fuse_add_direntry_plus(req, buf.data() + used, room, name.c_str(),
                                 &e, next);
    } else {
      n = fuse_add_direntry(req, buf.data() + used, room, name.c_str(), &attr,
                            next);
    }
    if (n > room) return false;
    used += n;
    return true;
  };
  absl::Status status = Fs(req).ReadDir(ino, fi->fh, offset, plus, add);
  if (!status.ok() && used == 0) return ReplyError(req, status);
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
             fuse_file_info* fi) {
  ReadDirCommon(req, ino, size, off, fi, false);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 fuse_file_info* fi) {
  ReadDirCommon(req, ino, size, off, fi, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Fs(req).ReleaseDir(fi->fh);
  fuse_reply_err(req, 0);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  absl::StatusOr<CacheFs::Opened> opened;
  {
    ScopedRequestCaller as_caller(CallerOf(req));
    opened = Fs(req).Open(ino, fi->flags);
  }
  if (!opened.ok()) return ReplyError(req, opened.status());
  fi->fh = opened->fh;
  fi->keep_cache = opened->keep_cache;
  if (opened->changed && Ctx(req).session != nullptr) {
    // The size the kernel holds may be stale: make it ask again.
    fuse_lowlevel_notify_inval_inode(Ctx(req).session, ino, -1, 0);
  }
  if (HotSets* hotsets = Ctx(req).hotsets) {
    hotsets->Note(fuse_req_ctx(req)->pid, Fs(req).KeyOf(ino), 0, 0,
                  &opened->attr);
  }
  if (fuse_reply_open(req, fi) == -ENOENT) Fs(req).Release(opened->fh);
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
          fuse_file_info* fi) {
  if (HotSets* hotsets = Ctx(req).hotsets) {
    hotsets->Note(fuse_req_ctx(req)->pid, Fs(req).KeyOf(ino), off, size);
  }
  auto reply = Fs(req).Read(fi->fh, off, size);
  if (!reply.ok()) return ReplyError(req, reply.status());
  const std::vector<iovec>& iov = (*reply)->iov();
  if (iov.empty()) {
    fuse_reply_buf(req, nullptr, 0);
  } else {
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  }
  // Destroying the reply stores the granules fetched from the origin.
}

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Fs(req).Release(fi->fh);
  fuse_reply_err(req, 0);
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
            fuse_file_info* fi) {
  absl::StatusOr<CacheFs::Created> created;
  {
    ScopedRequestCaller as_caller(CallerOf(req));
    created = Fs(req).Create(parent, name, mode, fi->flags);
  }
  if (!created.ok()) return ReplyError(req, created.status());
  fi->fh = created->opened.fh;
  fi->keep_cache = created->opened.keep_cache;
  fuse_entry_param e = EntryParam(created->entry);
  if (fuse_reply_create(req, &e, fi) == -ENOENT) {
    Fs(req).Release(created->opened.fh);
    Fs(req).Forget(created->entry.ino, 1);
  }
}

void ReplyMade(fuse_req_t req, const absl::StatusOr<CacheFs::Entry>& entry) {
  if (!entry.ok()) return ReplyError(req, entry.status());
  ReplyEntry(req, *entry);
}

void MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name,
              mode_t mode, dev_t rdev) {
  ScopedRequestCaller as_caller(CallerOf(req));
  ReplyMade(req, Fs(req).MakeNode(parent, name, mode, rdev));
}

void MakeDir(fuse_req_t req, fuse_ino_t parent, const char* name,
             mode_t mode) {
  ScopedRequestCaller as_caller(CallerOf(req));
  ReplyMade(req, Fs(req).MakeDir(parent, name, mode | S_IFDIR));
}

void MakeSymlink(fuse_req_t req, const char* target, fuse_ino_t parent,
                 const char* name) {
  ScopedRequestCaller as_caller(CallerOf(req));
  ReplyMade(req, Fs(req).MakeSymlink(target, parent, name));
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent,
          const char* new_name) {
  ScopedRequestCaller as_caller(CallerOf(req));
  ReplyMade(req, Fs(req).Link(ino, new_parent, new_name));
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ScopedRequestCaller as_caller(CallerOf(req));
  fuse_reply_err(req, StatusToErrno(Fs(req).Unlink(parent, name)));
}

void RemoveDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ScopedRequestCaller as_caller(CallerOf(req));
  fuse_reply_err(req, StatusToErrno(Fs(req).RemoveDir(parent, name)));
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name,
            fuse_ino_t new_parent, const char* new_name, unsigned flags) {
  ScopedRequestCaller as_caller(CallerOf(req));
  fuse_reply_err(req, StatusToErrno(Fs(req).Rename(parent, name, new_parent,
                                                   new_name, flags)));
}

// A write or truncate by someone other than the owner of a setuid or
// setgid file: the kernel asks, as the writer, to clear those bits, which
// the origin refuses to anyone but the owner (EPERM, and the write fails).
// A local filesystem clears them itself; cachefs does it as the daemon,
// for a caller who may write the file. Returns the bits to clear, or 0
// when `mode` is not such a request. The daemon then only takes those bits
// off the file's mode as the origin has it at that moment (never setting
// the rest of `mode`, which was computed from attributes that may be old).
mode_t SetIdsDropped(fuse_req_t req, fuse_ino_t ino, const Caller& caller,
                     mode_t mode) {
  if (!CanSwitchCredentials() || caller.uid == 0) return 0;
  absl::StatusOr<CacheFs::Attr> now = Fs(req).GetAttr(ino);
  if (!now.ok() || !S_ISREG(now->attr.st_mode) ||
      now->attr.st_uid == caller.uid) {
    return 0;
  }
  const mode_t was = now->attr.st_mode & 07777;
  const mode_t set_ids = S_ISUID | S_ISGID;
  // Some of the two bits go, nothing else changes.
  if (mode == was || (mode & ~was) != 0 ||
      (mode & ~set_ids) != (was & ~set_ids)) {
    return 0;
  }
  ScopedRequestCaller as_caller(caller);
  if (!Fs(req).Access(ino, W_OK).ok()) return 0;
  return was & ~mode;
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
             fuse_file_info* fi) {
  Origin::AttrChange change;
  if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) change.size = attr->st_size;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    change.atime = timespec{0, UTIME_NOW};
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    change.atime = attr->st_atim;
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    change.mtime = timespec{0, UTIME_NOW};
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    change.mtime = attr->st_mtim;
  }
  const Caller caller = CallerOf(req);
  const uint64_t fh = fi != nullptr ? fi->fh : 0;
  mode_t dropping = 0;
  if (change.mode.has_value()) {
    dropping = SetIdsDropped(req, ino, caller, *change.mode);
    if (dropping != 0) change.mode.reset();
  }
  absl::StatusOr<CacheFs::Attr> st = absl::InternalError("no change made");
  // A truncate sends its size with the bits to clear: the size is the
  // caller's change, made first and as the caller.
  const bool more = change.size || change.uid || change.gid || change.atime ||
                    change.mtime;
  if (more || dropping == 0) {
    ScopedRequestCaller as_caller(caller);
    st = Fs(req).SetAttr(ino, change, fh);
  }
  if (dropping != 0 && (!more || st.ok())) {
    Origin::AttrChange drop;
    drop.clear_set_ids = dropping;
    st = Fs(req).SetAttr(ino, drop, fh);
  }
  if (!st.ok()) return ReplyError(req, st.status());
  fuse_reply_attr(req, &st->attr, st->timeout);
}

void Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size,
           off_t off, fuse_file_info* fi) {
  auto written = Fs(req).Write(fi->fh, buf, size, off);
  if (!written.ok()) return ReplyError(req, written.status());
  fuse_reply_write(req, *written);
}

void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fuse_reply_err(req, StatusToErrno(Fs(req).Flush(fi->fh)));
}

void Fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  fuse_reply_err(req, StatusToErrno(Fs(req).Fsync(fi->fh, datasync != 0)));
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync,
              fuse_file_info*) {
  fuse_reply_err(req, StatusToErrno(Fs(req).FsyncDir(ino, datasync != 0)));
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name,
              const char* value, size_t size, int flags) {
  ScopedRequestCaller as_caller(CallerOf(req));
  fuse_reply_err(req, StatusToErrno(Fs(req).SetXattr(
                          ino, name, std::string(value, size), flags)));
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  ScopedRequestCaller as_caller(CallerOf(req));
  fuse_reply_err(req, StatusToErrno(Fs(req).RemoveXattr(ino, name)));
}

void Fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset,
               off_t length, fuse_file_info* fi) {
  fuse_reply_err(req, StatusToErrno(Fs(req).Fallocate(fi->fh, mode, offset,
                                                      length)));
}

void CopyFileRange(fuse_req_t req, fuse_ino_t, off_t off_in,
                   fuse_file_info* fi_in, fuse_ino_t, off_t off_out,
                   fuse_file_info* fi_out, size_t len, int flags) {
  auto copied = Fs(req).CopyFileRange(fi_in->fh, off_in, fi_out->fh, off_out,
                                      len, flags);
  if (!copied.ok()) return ReplyError(req, copied.status());
  fuse_reply_write(req, *copied);
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops = {};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.readlink = ReadLink;
  ops.statfs = StatFs;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.access = Access;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.open = Open;
  ops.read = Read;
  ops.release = Release;
  ops.create = Create;
  ops.mknod = MakeNode;
  ops.mkdir = MakeDir;
  ops.symlink = MakeSymlink;
  ops.link = Link;
  ops.unlink = Unlink;
  ops.rmdir = RemoveDir;
  ops.rename = Rename;
  ops.setattr = SetAttr;
  ops.write = Write;
  ops.flush = Flush;
  ops.fsync = Fsync;
  ops.fsyncdir = FsyncDir;
  ops.setxattr = SetXattr;
  ops.removexattr = RemoveXattr;
  ops.fallocate = Fallocate;
  ops.copy_file_range = CopyFileRange;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& CacheFsOperations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace cachefs
