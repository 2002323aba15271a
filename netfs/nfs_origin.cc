#include "netfs/nfs_origin.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include <nfsc/libnfs.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "io/errno_status.h"
#include "netfs/nfs4_compound.h"
#include "netfs/nfs_file.h"
#include "netfs/nfs_identity.h"
#include "netfs/nfs_open_files.h"
#include "netfs/origin_path.h"

namespace cachefs {
namespace {

using Callback = NfsConnection::Callback;

// The NFS path of an origin path: libnfs resolves it from the export root.
std::string NfsPath(const std::string& path) { return "/" + path; }

absl::Status NotSupported(std::string_view what, const std::string& path) {
  return ErrnoToStatus(EOPNOTSUPP,
                       absl::StrCat(std::string(what), " ", path,
                                    ": NFSv3 and NFSv4.0 have no xattrs"));
}

// Runs `start`, taking nothing from its reply.
absl::Status RunSimple(
    NfsConnection& conn, const Caller& caller, std::string_view what,
    absl::FunctionRef<int(struct nfs_context*, Callback, void*)> start) {
  absl::StatusOr<int> r = conn.Run(what, IdentityOf(caller), start,
                                   [](struct nfs_context*, int, void*) {});
  return r.status();
}

unsigned char DirentType(uint32_t nfs_type) {
  switch (nfs_type) {
    case 1: return DT_REG;
    case 2: return DT_DIR;
    case 3: return DT_BLK;
    case 4: return DT_CHR;
    case 5: return DT_LNK;
    case 6: return DT_SOCK;
    case 7: return DT_FIFO;
    default: return DT_UNKNOWN;
  }
}

struct timeval ToTimeval(const struct timespec& ts) {
  if (ts.tv_nsec == UTIME_NOW) {
    struct timeval now;
    gettimeofday(&now, nullptr);
    return now;
  }
  return {ts.tv_sec, ts.tv_nsec / 1000};
}

}  // namespace

absl::StatusOr<std::unique_ptr<NfsOrigin>> NfsOrigin::Open(const NfsUrl& url,
                                                           Options options) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const std::string client_name = absl::StrCat("cachefs.", host, ".", getpid());
  std::vector<std::unique_ptr<NfsConnection>> pool;
  for (int i = 0; i < std::max(1, options.connections); ++i) {
    absl::StatusOr<std::unique_ptr<NfsConnection>> conn = NfsConnection::Open(
        url, options.timeout, absl::StrCat(client_name, ".", i));
    if (!conn.ok()) return conn.status();
    pool.push_back(*std::move(conn));
  }
  return std::unique_ptr<NfsOrigin>(
      new NfsOrigin(url, options, client_name, std::move(pool)));
}

Origin::Traits NfsOrigin::KnownTraits() {
  return Traits{.fs_type = "nfs",
                .stable_inode_numbers = true,
                .subsecond_times = true,
                .xattrs = false};
}

NfsOrigin::NfsOrigin(NfsUrl url, Options options, std::string client_name,
                     std::vector<std::unique_ptr<NfsConnection>> pool)
    : url_(std::move(url)),
      options_(options),
      client_name_(std::move(client_name)),
      traits_(KnownTraits()),
      pool_(std::move(pool)) {
  for (auto& conn : pool_) {
    files_.push_back(std::make_unique<NfsOpenFiles>(conn.get(), &stats_));
  }
}

absl::StatusOr<NfsOpenFiles*> NfsOrigin::FilesForCaller(
    const Caller& caller, int access, std::shared_ptr<UserConnection>* keep) {
  const uid_t uid = caller.uid;
  // NFSv3 keeps no open state: any connection serves anyone.
  if (url_.version == 3 || (uid == geteuid() && access == O_RDONLY)) {
    return &PickFiles();
  }
  const uint64_t key = (uint64_t{uid} << 2) | static_cast<uint64_t>(access);
  absl::MutexLock lock(&users_mu_);
  if (auto it = by_user_.find(key); it != by_user_.end()) {
    *keep = it->second;
    return it->second->files.get();
  }
  if (by_user_.size() >= kMaxUserConnections) {
    // Only the map holds an idle user's connection: no file is open on it.
    for (auto it = by_user_.begin(); it != by_user_.end(); ++it) {
      if (it->second.use_count() == 1) {
        by_user_.erase(it);
        break;
      }
    }
    if (by_user_.size() >= kMaxUserConnections) {
      return ErrnoToStatus(
          EMFILE, absl::StrCat("open for uid ", uid, ": ",
                               kMaxUserConnections,
                               " NFS connections hold open files"));
    }
  }
  absl::StatusOr<std::unique_ptr<NfsConnection>> conn = NfsConnection::Open(
      url_, options_.timeout,
      absl::StrCat(client_name_, ".u", uid, ".", access));
  if (!conn.ok()) return conn.status();
  auto user = std::make_shared<UserConnection>();
  user->conn = *std::move(conn);
  user->files = std::make_unique<NfsOpenFiles>(user->conn.get(), &stats_);
  by_user_[key] = user;
  *keep = user;
  return user->files.get();
}

NfsOrigin::~NfsOrigin() = default;

NfsOpenFiles& NfsOrigin::PickFiles() {
  return *files_[next_.fetch_add(1, std::memory_order_relaxed) %
                 files_.size()];
}

absl::StatusOr<struct stat> NfsOrigin::StatOn(const Caller& caller,
                                              NfsConnection& conn,
                                              const std::string& path,
                                              OriginStats::Counter& counter) {
  Count(counter);
  const std::string nfs_path = NfsPath(path);
  struct stat st = {};
  absl::StatusOr<int> r = conn.Run(
      absl::StrCat("stat ", path), IdentityOf(caller),
      [&](struct nfs_context* nfs, Callback cb, void* p) {
        return nfs_lstat64_async(nfs, nfs_path.c_str(), cb, p);
      },
      [&st](struct nfs_context*, int, void* data) {
        st = StatOf(*static_cast<struct nfs_stat_64*>(data));
      });
  if (!r.ok()) return r.status();
  // libnfs 4.0's stat over NFSv4 does not ask for a device's numbers:
  // a second call of our own does, for device files only.
  if (url_.version == 4 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
    const std::vector<std::string> names = nfs4::NamesOf(url_.path, path);
    absl::StatusOr<int> dev = conn.Run(
        absl::StrCat("stat ", path), IdentityOf(caller),
        [&](struct nfs_context* nfs, Callback cb, void* p) {
          return nfs4::StartGetRawDev(nfs, names, cb, p);
        },
        [&st](struct nfs_context*, int, void* data) {
          if (data != nullptr) st.st_rdev = *static_cast<dev_t*>(data);
        });
    if (!dev.ok()) return dev.status();
  }
  return st;
}

absl::Status NfsOrigin::Simple(
    const Caller& caller, std::string_view what, const std::string& path,
    OriginStats::Counter& counter,
    absl::FunctionRef<int(struct nfs_context*, Callback, void*)> start) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  Count(counter);
  return RunSimple(Pick(), caller, absl::StrCat(std::string(what), " ", path),
                   start);
}

absl::StatusOr<struct stat> NfsOrigin::GetAttr(const Caller& caller,
                                               const std::string& path) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  return StatOn(caller, Pick(), path, stats_.attr_fetches);
}

absl::StatusOr<std::unique_ptr<OriginFile>> NfsOrigin::OpenFile(
    const Caller& caller, const std::string& path, int flags) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  flags &= O_ACCMODE | O_TRUNC | O_SYNC | O_DSYNC;
  std::shared_ptr<UserConnection> keep;
  absl::StatusOr<NfsOpenFiles*> files =
      FilesForCaller(caller, flags & O_ACCMODE, &keep);
  if (!files.ok()) return files.status();
  // Truncation is a SETATTR of its own: libnfs truncates at open only for
  // writers (O_RDONLY|O_TRUNC truncates on Linux), and not a file that is
  // open already.
  bool reused = false;
  absl::StatusOr<NfsOpenFiles::Ref> opened =
      (*files)->Acquire(path, flags & ~O_TRUNC, 0, IdentityOf(caller), &reused);
  if (!opened.ok()) return opened.status();
  auto file = std::make_unique<NfsFile>(*files, *std::move(opened),
                                        std::move(keep), IdentityOf(caller),
                                        &stats_, path, flags & ~O_TRUNC);
  if (flags & O_TRUNC) {
    AttrChange truncate;
    truncate.size = 0;
    absl::Status truncated = SetAttr(caller, path, truncate, nullptr);
    if (!truncated.ok()) return truncated;
  }
  return file;
}

absl::Status NfsOrigin::CheckAccess(const Caller& caller,
                                    const std::string& path, int mask) {
  const std::string nfs_path = NfsPath(path);
  return Simple(caller, "access", path, stats_.other,
                [&](struct nfs_context* nfs, Callback cb, void* p) {
                  return nfs_access_async(nfs, nfs_path.c_str(), mask, cb, p);
                });
}

absl::StatusOr<std::unique_ptr<OriginDir>> NfsOrigin::OpenDir(
    const Caller& caller, const std::string& path) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  Count(stats_.dir_opens);
  const std::string nfs_path = NfsPath(path);
  std::vector<OriginDir::Entry> entries;
  absl::StatusOr<int> r = Pick().Run(
      absl::StrCat("list ", path), IdentityOf(caller),
      [&](struct nfs_context* nfs, Callback cb, void* p) {
        return nfs_opendir_async(nfs, nfs_path.c_str(), cb, p);
      },
      [&entries](struct nfs_context* nfs, int, void* data) {
        auto* dir = static_cast<struct nfsdir*>(data);
        while (struct nfsdirent* d = nfs_readdir(nfs, dir)) {
          OriginDir::Entry e;
          e.name = d->name;
          e.ino = static_cast<ino_t>(d->inode);
          e.type = DirentType(d->type);
          entries.push_back(std::move(e));
        }
        nfs_closedir(nfs, dir);
      },
      [](struct nfs_context* nfs, void* data) {
        nfs_closedir(nfs, static_cast<struct nfsdir*>(data));
      });
  if (!r.ok()) return r.status();
  return std::make_unique<NfsDir>(std::move(entries));
}

absl::StatusOr<std::string> NfsOrigin::ReadLink(const Caller& caller,
                                                const std::string& path) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  Count(stats_.other);
  const std::string nfs_path = NfsPath(path);
  std::string target;
  absl::StatusOr<int> r = Pick().Run(
      absl::StrCat("readlink ", path), IdentityOf(caller),
      [&](struct nfs_context* nfs, Callback cb, void* p) {
        if (url_.version == 4) {
          return nfs4::StartReadLink(nfs, nfs4::NamesOf(url_.path, path), cb,
                                     p);
        }
        return nfs_readlink_async(nfs, nfs_path.c_str(), cb, p);
      },
      [&](struct nfs_context*, int, void* data) {
        if (url_.version == 4) {
          if (data != nullptr) target = *static_cast<std::string*>(data);
        } else {
          target = static_cast<const char*>(data);
        }
      });
  if (!r.ok()) return r.status();
  return target;
}

absl::StatusOr<struct statvfs> NfsOrigin::StatFs(const Caller& caller,
                                                 const std::string& path) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  Count(stats_.other);
  const std::string nfs_path = NfsPath(path);
  struct statvfs out = {};
  absl::StatusOr<int> r = Pick().Run(
      absl::StrCat("statfs ", path), IdentityOf(caller),
      [&](struct nfs_context* nfs, Callback cb, void* p) {
        return nfs_statvfs64_async(nfs, nfs_path.c_str(), cb, p);
      },
      [&out](struct nfs_context*, int, void* data) {
        const auto* in = static_cast<const struct nfs_statvfs_64*>(data);
        out.f_bsize = in->f_bsize;
        out.f_frsize = in->f_frsize ? in->f_frsize : in->f_bsize;
        out.f_blocks = in->f_blocks;
        out.f_bfree = in->f_bfree;
        out.f_bavail = in->f_bavail;
        out.f_files = in->f_files;
        out.f_ffree = in->f_ffree;
        out.f_favail = in->f_favail;
        out.f_fsid = in->f_fsid;
        out.f_flag = in->f_flag;
        out.f_namemax = in->f_namemax ? in->f_namemax : 255;
      });
  if (!r.ok()) return r.status();
  return out;
}

absl::StatusOr<std::string> NfsOrigin::GetXattr(const Caller& /*caller*/,
                                                const std::string& path,
                                                const std::string&) {
  return NotSupported("getxattr", path);
}

absl::StatusOr<std::vector<std::string>> NfsOrigin::ListXattr(
    const Caller& /*caller*/, const std::string& path) {
  return NotSupported("listxattr", path);
}

absl::Status NfsOrigin::SetXattr(const Caller& /*caller*/,
                                 const std::string& path, const std::string&,
                                 const std::string&, int) {
  return NotSupported("setxattr", path);
}

absl::Status NfsOrigin::RemoveXattr(const Caller& /*caller*/,
                                    const std::string& path,
                                    const std::string&) {
  return NotSupported("removexattr", path);
}

absl::StatusOr<Origin::CreateResult> NfsOrigin::Create(const Caller& caller,
                                                       const std::string& path,
                                                       mode_t mode, int flags) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  const int open_flags = flags & (O_ACCMODE | O_TRUNC | O_SYNC | O_DSYNC);
  std::shared_ptr<UserConnection> keep;
  absl::StatusOr<NfsOpenFiles*> files =
      FilesForCaller(caller, open_flags & O_ACCMODE, &keep);
  if (!files.ok()) return files.status();
  bool reused = false;
  absl::StatusOr<NfsOpenFiles::Ref> made = (*files)->Acquire(
      path, open_flags | O_CREAT | (flags & O_EXCL),
      static_cast<int>(mode & 07777), IdentityOf(caller), &reused);
  if (!made.ok()) return made.status();
  auto file = std::make_unique<NfsFile>(*files, *std::move(made),
                                        std::move(keep), IdentityOf(caller),
                                        &stats_, path, open_flags & ~O_TRUNC);
  if (reused && (open_flags & O_TRUNC)) {
    AttrChange truncate;
    truncate.size = 0;
    absl::Status truncated = SetAttr(caller, path, truncate, nullptr);
    if (!truncated.ok()) return truncated;
  }
  absl::StatusOr<struct stat> st = file->Stat();
  if (!st.ok()) return st.status();
  if (!reused && (st->st_mode & 07777) != (mode & 07777)) {
    // libnfs's NFSv4 OPEN creates with its own mode, not the one asked
    // for: set it as a second step, as the open file's owner may.
    AttrChange chmod;
    chmod.mode = mode & 07777;
    absl::Status changed = SetAttr(caller, path, chmod, file.get());
    if (!changed.ok()) return changed;
    st->st_mode = (st->st_mode & S_IFMT) | (mode & 07777);
  }
  return CreateResult{*st, std::move(file)};
}

absl::StatusOr<struct stat> NfsOrigin::MakeNode(const Caller& caller,
                                                const std::string& path,
                                                mode_t mode, dev_t rdev) {
  if (S_ISREG(mode)) {
    absl::StatusOr<CreateResult> made =
        Create(caller, path, mode, O_WRONLY | O_EXCL);
    if (!made.ok()) return made.status();
    return made->attr;
  }
  const std::string nfs_path = NfsPath(path);
  const std::vector<std::string> names = nfs4::NamesOf(url_.path, path);
  absl::Status status = Simple(
      caller, "mknod", path, stats_.changes,
      [&](struct nfs_context* nfs, Callback cb, void* p) {
        if (url_.version == 4) {
          return nfs4::StartMakeSpecial(nfs, names, mode, rdev, cb, p);
        }
        return nfs_mknod_async(nfs, nfs_path.c_str(), static_cast<int>(mode),
                               static_cast<int>(rdev), cb, p);
      });
  if (!status.ok()) return status;
  return StatOn(caller, Pick(), path, stats_.attr_fetches);
}

absl::StatusOr<struct stat> NfsOrigin::MakeDir(const Caller& caller,
                                               const std::string& path,
                                               mode_t mode) {
  const std::string nfs_path = NfsPath(path);
  absl::Status status = Simple(
      caller, "mkdir", path, stats_.changes,
      [&](struct nfs_context* nfs, Callback cb, void* p) {
        return nfs_mkdir2_async(nfs, nfs_path.c_str(),
                                static_cast<int>(mode & 07777), cb, p);
      });
  if (!status.ok()) return status;
  return StatOn(caller, Pick(), path, stats_.attr_fetches);
}

absl::StatusOr<struct stat> NfsOrigin::MakeSymlink(const Caller& caller,
                                                   const std::string& target,
                                                   const std::string& path) {
  const std::string nfs_path = NfsPath(path);
  absl::Status status = Simple(
      caller, "symlink", path, stats_.changes,
      [&](struct nfs_context* nfs, Callback cb, void* p) {
        return nfs_symlink_async(nfs, target.c_str(), nfs_path.c_str(), cb,
                                 p);
      });
  if (!status.ok()) return status;
  return StatOn(caller, Pick(), path, stats_.attr_fetches);
}

absl::StatusOr<struct stat> NfsOrigin::Link(const Caller& caller,
                                            const std::string& path,
                                            const std::string& new_path) {
  absl::Status valid = CheckOriginPath(new_path);
  if (!valid.ok()) return valid;
  const std::string from = NfsPath(path);
  const std::string to = NfsPath(new_path);
  const std::vector<std::string> from_names = nfs4::NamesOf(url_.path, path);
  const std::vector<std::string> to_names = nfs4::NamesOf(url_.path, new_path);
  absl::Status status =
      Simple(caller, "link", path, stats_.changes,
             [&](struct nfs_context* nfs, Callback cb, void* p) {
               if (url_.version == 4) {
                 return nfs4::StartLink(nfs, from_names, to_names, cb, p);
               }
               return nfs_link_async(nfs, from.c_str(), to.c_str(), cb, p);
             });
  if (!status.ok()) return status;
  return StatOn(caller, Pick(), new_path, stats_.attr_fetches);
}

absl::Status NfsOrigin::Unlink(const Caller& caller, const std::string& path) {
  const std::string nfs_path = NfsPath(path);
  absl::Status status =
      Simple(caller, "unlink", path, stats_.changes,
             [&](struct nfs_context* nfs, Callback cb, void* p) {
               return nfs_unlink_async(nfs, nfs_path.c_str(), cb, p);
             });
  if (status.ok()) ForgetOpen(path);
  return status;
}

absl::Status NfsOrigin::RemoveDir(const Caller& caller,
                                  const std::string& path) {
  const std::string nfs_path = NfsPath(path);
  absl::Status status =
      Simple(caller, "rmdir", path, stats_.changes,
             [&](struct nfs_context* nfs, Callback cb, void* p) {
               return nfs_rmdir_async(nfs, nfs_path.c_str(), cb, p);
             });
  if (status.ok()) ForgetOpen(path);
  return status;
}

void NfsOrigin::ForgetOpen(const std::string& path) {
  for (auto& files : files_) files->Forget(path);
  absl::MutexLock lock(&users_mu_);
  for (auto& [key, user] : by_user_) user->files->Forget(path);
}

absl::Status NfsOrigin::Rename(const Caller& caller, const std::string& path,
                               const std::string& new_path, unsigned flags) {
  if (flags != 0) {
    return ErrnoToStatus(EINVAL, absl::StrCat("rename ", path,
                                              ": NFS has no rename flags"));
  }
  absl::Status valid = CheckOriginPath(new_path);
  if (!valid.ok()) return valid;
  const std::string from = NfsPath(path);
  const std::string to = NfsPath(new_path);
  absl::Status status =
      Simple(caller, "rename", path, stats_.changes,
             [&](struct nfs_context* nfs, Callback cb, void* p) {
               return nfs_rename_async(nfs, from.c_str(), to.c_str(), cb, p);
             });
  if (status.ok()) {
    ForgetOpen(path);
    ForgetOpen(new_path);
  }
  return status;
}

absl::Status NfsOrigin::SetAttr(const Caller& caller, const std::string& path,
                                const AttrChange& change, OriginFile* file) {
  absl::Status valid = CheckOriginPath(path);
  if (!valid.ok()) return valid;
  if (url_.version == 4) return SetAttrV4(caller, path, change);
  auto* nfs_file = dynamic_cast<NfsFile*>(file);
  NfsConnection& conn = nfs_file != nullptr ? *nfs_file->connection() : Pick();
  const std::string nfs_path = NfsPath(path);
  std::optional<struct nfsfh*> fh;
  if (nfs_file != nullptr) {
    absl::StatusOr<struct nfsfh*> handle = nfs_file->Handle();
    if (!handle.ok()) return handle.status();
    fh = *handle;
  }
  // What a change leaves as it is, NFS's SETATTR of libnfs's calls wants
  // spelled out: taken from the file as it is now.
  std::optional<struct stat> now;
  auto current = [&]() -> absl::StatusOr<struct stat> {
    if (!now.has_value()) {
      absl::StatusOr<struct stat> st =
          StatOn(caller, conn, path, stats_.attr_fetches);
      if (!st.ok()) return st.status();
      now = *st;
    }
    return *now;
  };

  std::optional<mode_t> mode = change.mode;
  if (change.clear_set_ids != 0 && !mode.has_value()) {
    absl::StatusOr<struct stat> st = current();
    if (!st.ok()) return st.status();
    if ((st->st_mode & change.clear_set_ids) != 0) {
      mode = st->st_mode & 07777 & ~change.clear_set_ids;
    }
  }
  if (mode.has_value()) {
    const int m = static_cast<int>(*mode & 07777);
    Count(stats_.changes);
    absl::Status s = RunSimple(
        conn, caller, absl::StrCat("chmod ", path),
        [&](struct nfs_context* nfs, Callback cb, void* p) {
          return fh ? nfs_fchmod_async(nfs, *fh, m, cb, p)
                    : nfs_lchmod_async(nfs, nfs_path.c_str(), m, cb, p);
        });
    if (!s.ok()) return s;
  }
  if (change.uid.has_value() || change.gid.has_value()) {
    int uid = -1;
    int gid = -1;
    if (!change.uid.has_value() || !change.gid.has_value()) {
      absl::StatusOr<struct stat> st = current();
      if (!st.ok()) return st.status();
      uid = static_cast<int>(st->st_uid);
      gid = static_cast<int>(st->st_gid);
    }
    if (change.uid.has_value()) uid = static_cast<int>(*change.uid);
    if (change.gid.has_value()) gid = static_cast<int>(*change.gid);
    Count(stats_.changes);
    absl::Status s = RunSimple(
        conn, caller, absl::StrCat("chown ", path),
        [&](struct nfs_context* nfs, Callback cb, void* p) {
          return fh ? nfs_fchown_async(nfs, *fh, uid, gid, cb, p)
                    : nfs_lchown_async(nfs, nfs_path.c_str(), uid, gid, cb,
                                       p);
        });
    if (!s.ok()) return s;
  }
  if (change.size.has_value()) {
    const uint64_t size = *change.size;
    Count(stats_.changes);
    absl::Status s = RunSimple(
        conn, caller, absl::StrCat("truncate ", path),
        [&](struct nfs_context* nfs, Callback cb, void* p) {
          return fh ? nfs_ftruncate_async(nfs, *fh, size, cb, p)
                    : nfs_truncate_async(nfs, nfs_path.c_str(), size, cb, p);
        });
    if (!s.ok()) return s;
  }
  if (change.atime.has_value() || change.mtime.has_value()) {
    struct timeval times[2];
    if (!change.atime.has_value() || !change.mtime.has_value()) {
      absl::StatusOr<struct stat> st = current();
      if (!st.ok()) return st.status();
      times[0] = {st->st_atim.tv_sec, st->st_atim.tv_nsec / 1000};
      times[1] = {st->st_mtim.tv_sec, st->st_mtim.tv_nsec / 1000};
    }
    if (change.atime.has_value()) times[0] = ToTimeval(*change.atime);
    if (change.mtime.has_value()) times[1] = ToTimeval(*change.mtime);
    Count(stats_.changes);
    absl::Status s = RunSimple(
        conn, caller, absl::StrCat("utimes ", path),
        [&](struct nfs_context* nfs, Callback cb, void* p) {
          return nfs_lutimes_async(nfs, nfs_path.c_str(), times, cb, p);
        });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status NfsOrigin::SetAttrV4(const Caller& caller, const std::string& path,
                                  const AttrChange& change) {
  nfs4::AttrSet set;
  set.size = change.size;
  set.mode = change.mode;
  set.uid = change.uid;
  set.gid = change.gid;
  set.atime = change.atime;
  set.mtime = change.mtime;
  if (change.clear_set_ids != 0 && !set.mode.has_value()) {
    absl::StatusOr<struct stat> st =
        StatOn(caller, Pick(), path, stats_.attr_fetches);
    if (!st.ok()) return st.status();
    if ((st->st_mode & change.clear_set_ids) != 0) {
      set.mode = st->st_mode & 07777 & ~change.clear_set_ids;
    }
  }
  const std::vector<std::string> names = nfs4::NamesOf(url_.path, path);
  Count(stats_.changes);
  return RunSimple(Pick(), caller, absl::StrCat("setattr ", path),
                   [&](struct nfs_context* nfs, Callback cb, void* p) {
                     return nfs4::StartSetAttr(nfs, names, set, cb, p);
                   });
}

absl::Status NfsOrigin::SyncDir(const Caller& /*caller*/,
                                const std::string& path, bool) {
  // Changes to a directory are made on the server's stable storage before
  // NFS replies to them.
  return CheckOriginPath(path);
}

}  // namespace cachefs
