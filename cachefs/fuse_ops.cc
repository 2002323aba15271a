#include "cachefs/fuse_ops.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "io/errno_status.h"

namespace cachefs {
namespace {

FuseContext& Ctx(fuse_req_t req) {
  return *static_cast<FuseContext*>(fuse_req_userdata(req));
}
CacheFs& Fs(fuse_req_t req) { return *Ctx(req).fs; }

void ReplyError(fuse_req_t req, const absl::Status& status) {
  int err = StatusToErrno(status);
  fuse_reply_err(req, err == 0 ? EIO : err);
}

void ReplyEntry(fuse_req_t req, const CacheFs::Entry& entry) {
  fuse_entry_param e = {};
  e.ino = entry.ino;
  e.attr = entry.attr;
  e.attr_timeout = Ctx(req).attr_timeout;
  e.entry_timeout = Ctx(req).entry_timeout;
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
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                  FUSE_CAP_SPLICE_MOVE);
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

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto st = Fs(req).GetAttr(ino);
  if (!st.ok()) return ReplyError(req, st.status());
  fuse_reply_attr(req, &*st, Ctx(req).attr_timeout);
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
  const fuse_ctx* ctx = fuse_req_ctx(req);
  CacheFs::Caller caller;
  caller.uid = ctx->uid;
  caller.gid = ctx->gid;
  std::vector<gid_t> groups(64);
  int n = fuse_req_getgroups(req, groups.size(), groups.data());
  if (n > static_cast<int>(groups.size())) {
    groups.resize(n);
    n = fuse_req_getgroups(req, groups.size(), groups.data());
  }
  if (n > 0) caller.groups.assign(groups.begin(), groups.begin() + n);
  fuse_reply_err(req, StatusToErrno(Fs(req).Access(ino, mask, caller)));
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
      if (entry != nullptr) {
        e.ino = entry->ino;
        e.attr_timeout = Ctx(req).attr_timeout;
        e.entry_timeout = Ctx(req).entry_timeout;
      }
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
  auto opened = Fs(req).Open(ino, fi->flags);
  if (!opened.ok()) return ReplyError(req, opened.status());
  fi->fh = opened->fh;
  fi->keep_cache = opened->keep_cache;
  if (opened->changed && Ctx(req).session != nullptr) {
    // The size the kernel holds may be stale: make it ask again.
    fuse_lowlevel_notify_inval_inode(Ctx(req).session, ino, -1, 0);
  }
  if (fuse_reply_open(req, fi) == -ENOENT) Fs(req).Release(opened->fh);
}

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off,
          fuse_file_info* fi) {
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

// Until the write path exists the mount is read-only.
void ReadOnly(fuse_req_t req) { fuse_reply_err(req, EROFS); }

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
  ops.setattr = [](fuse_req_t req, fuse_ino_t, struct stat*, int,
                   fuse_file_info*) { ReadOnly(req); };
  ops.mknod = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
    ReadOnly(req);
  };
  ops.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) {
    ReadOnly(req);
  };
  ops.unlink = [](fuse_req_t req, fuse_ino_t, const char*) { ReadOnly(req); };
  ops.rmdir = [](fuse_req_t req, fuse_ino_t, const char*) { ReadOnly(req); };
  ops.symlink = [](fuse_req_t req, const char*, fuse_ino_t, const char*) {
    ReadOnly(req);
  };
  ops.rename = [](fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t,
                  const char*, unsigned) { ReadOnly(req); };
  ops.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
    ReadOnly(req);
  };
  ops.create = [](fuse_req_t req, fuse_ino_t, const char*, mode_t,
                  fuse_file_info*) { ReadOnly(req); };
  ops.write = [](fuse_req_t req, fuse_ino_t, const char*, size_t, off_t,
                 fuse_file_info*) { ReadOnly(req); };
  ops.setxattr = [](fuse_req_t req, fuse_ino_t, const char*, const char*,
                    size_t, int) { ReadOnly(req); };
  ops.removexattr = [](fuse_req_t req, fuse_ino_t, const char*) {
    ReadOnly(req);
  };
  ops.fallocate = [](fuse_req_t req, fuse_ino_t, int, off_t, off_t,
                     fuse_file_info*) { ReadOnly(req); };
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& CacheFsOperations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace cachefs
