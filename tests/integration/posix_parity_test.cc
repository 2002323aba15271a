// POSIX parity: the same operations on a cachefs mount and on a native
// directory give the same results, errno included. A table of cases, each a
// setup (files, directories, symlinks, owners, xattrs made in a fresh
// directory) and an operation that returns its return value, its errno and
// what it left behind (mode, size, nlink, owner, times, content, listing,
// link target, xattrs). Every case runs once in a fresh directory of the
// mount and once in a fresh directory of a plain TempDir, and the two
// outcomes must be equal. The mount's origin is a local directory; over
// SSHFS the root cases run too, compared with the SSHFS mount itself.
//
// Each side of a case runs in a forked child with a time limit, so a hung
// FUSE request fails the case instead of the whole program, and so that the
// permission cases can drop to an unprivileged uid/gid (setgroups,
// setresgid, setresuid) for the operation: the mount is then started with
// -o allow_other (which turns on default_permissions; once more with both
// given explicitly), and cachefs
// must act with the caller's credentials so that the origin enforces
// permissions and new files belong to the caller, as on a local
// filesystem. The setup, and what a case observes afterwards that its
// caller could not, run as root.
//
// A case also names the errno it is about (0 for success), checked against
// the native run: a case that stopped testing what its name says is a bug
// in the table, not a parity result. PosixParityTableTest runs the table
// on two native directories, without a mount.

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/environment.h"
#include "tests/integration/fixtures/files.h"

namespace cachefs::testing {
namespace {

// The unprivileged caller of the permission cases: no passwd entry needed.
constexpr uid_t kUid = 12345;
constexpr gid_t kGid = 12345;
// A supplementary group of that caller, and a user it is not.
constexpr gid_t kGroup = 23456;
constexpr uid_t kOtherUid = 54321;

// How long one side of one case (setup and operation) may take.
constexpr absl::Duration kCaseTimeout = absl::Seconds(30);
constexpr char kHung[] = "no result (hung)";

// Case::want_err for a case whose native result depends on the machine
// (e.g. a sysctl), so only parity is checked.
constexpr int kAnyResult = -1;

std::string ErrName(int err) {
  if (err == 0) return "0";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : absl::StrCat("errno ", err);
}

// What an operation did: its return value (descriptors are not comparable,
// so opens give 0), errno when it failed, and what it left behind, in
// words.
struct Outcome {
  int64_t ret = 0;
  int err = 0;
  std::string seen;
  // The setup (or dropping privileges) failed; `seen` says how.
  bool setup_failed = false;

  // Appends observations. In `Sys(call).Then({...})` the call, and its
  // errno, come before the observations are made.
  Outcome Then(std::initializer_list<std::string> observations) const {
    Outcome o = *this;
    for (const std::string& s : observations) {
      if (!o.seen.empty()) o.seen += "; ";
      o.seen += s;
    }
    return o;
  }

  bool operator==(const Outcome& other) const = default;
};

void PrintTo(const Outcome& o, std::ostream* os) {
  if (o.setup_failed) {
    *os << "{setup failed: " << o.seen << "}";
    return;
  }
  *os << "{ret=" << o.ret << " errno=" << ErrName(o.err) << " seen: "
      << o.seen << "}";
}
std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  PrintTo(o, &os);
  return os;
}

// The result of a system call, taking errno at once.
Outcome Sys(int64_t ret) { return {ret, ret < 0 ? errno : 0, "", false}; }

// The directory a case runs in. r("a/b") is the absolute path of a/b
// there, valid as long as r is.
class Root {
 public:
  explicit Root(std::string dir) : dir_(std::move(dir)) {}
  const char* operator()(absl::string_view name) const {
    paths_.push_back(absl::StrCat(dir_, "/", name));
    return paths_.back().c_str();
  }
  const char* self() const { return dir_.c_str(); }

 private:
  const std::string dir_;
  mutable std::deque<std::string> paths_;
};

// ---------------------------------------------------------------------
// Setup: each step notes its failure in the child's setup_errors, so a
// table entry stays a list of steps.

std::string& SetupErrors() {
  static std::string errors;
  return errors;
}

// The case directory, left out of setup errors so that the two sides'
// errors compare equal.
std::string& SetupRoot() {
  static std::string root;
  return root;
}

void Note(bool ok, absl::string_view what, absl::string_view path) {
  if (ok) return;
  const int err = errno;
  absl::ConsumePrefix(&path, SetupRoot());
  if (path.empty()) path = "the case directory";
  absl::StrAppend(&SetupErrors(), what, " ", path, ": ", ErrName(err), "; ");
}

void MakeDir(const char* path, mode_t mode = 0755) {
  Note(mkdir(path, mode) == 0, "mkdir", path);
}

void MakeFile(const char* path, absl::string_view data) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  Note(fd >= 0, "create", path);
  if (fd < 0) return;
  Note(write(fd, data.data(), data.size()) == ssize_t(data.size()), "write",
       path);
  Note(close(fd) == 0, "close", path);
}

void MakeSymlink(const char* target, const char* path) {
  Note(symlink(target, path) == 0, "symlink", path);
}

void MakeLink(const char* from, const char* to) {
  Note(link(from, to) == 0, "link", to);
}

void MakeFifo(const char* path) {
  Note(mkfifo(path, 0644) == 0, "mkfifo", path);
}

void SetMode(const char* path, mode_t mode) {
  Note(chmod(path, mode) == 0, "chmod", path);
}

void SetOwner(const char* path, uid_t uid, gid_t gid) {
  Note(lchown(path, uid, gid) == 0, "lchown", path);
}

void SetTimes(const char* path, time_t atime, time_t mtime) {
  struct timespec ts[2] = {{atime, 0}, {mtime, 0}};
  Note(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0, "utimensat",
       path);
}

void SetXattr(const char* path, const char* name, absl::string_view value) {
  Note(setxattr(path, name, value.data(), value.size(), 0) == 0, "setxattr",
       path);
}

// Reads `path` whole: through the mount this fills the cache, so that the
// operation then changes a file cachefs holds data for.
void WarmCache(const char* path) {
  Note(ReadWholeFile(path).ok(), "read", path);
}

// ---------------------------------------------------------------------
// Observations: never fail, describe errors in their text.

std::string Describe(absl::string_view data) {
  if (data.size() <= 64) return absl::StrCat("'", absl::CEscape(data), "'");
  uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return absl::StrFormat("%d bytes fnv %016x", data.size(), h);
}

// lstat: type and mode, size (not for directories, whose size is the
// filesystem's business), nlink, and rdev for devices.
std::string Stat(const char* path) {
  struct stat st;
  if (lstat(path, &st) != 0) return absl::StrCat("lstat:", ErrName(errno));
  std::string s = absl::StrFormat("mode=0%o", st.st_mode);
  if (!S_ISDIR(st.st_mode)) absl::StrAppend(&s, " size=", st.st_size);
  absl::StrAppend(&s, " nlink=", st.st_nlink);
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    absl::StrAppend(&s, " rdev=", major(st.st_rdev), ",", minor(st.st_rdev));
  }
  return s;
}

std::string Owner(const char* path) {
  struct stat st;
  if (lstat(path, &st) != 0) return absl::StrCat("lstat:", ErrName(errno));
  return absl::StrCat("uid=", st.st_uid, " gid=", st.st_gid);
}

std::string Times(const char* path) {
  struct stat st;
  if (lstat(path, &st) != 0) return absl::StrCat("lstat:", ErrName(errno));
  return absl::StrFormat("atime=%d.%09d mtime=%d.%09d", st.st_atim.tv_sec,
                         st.st_atim.tv_nsec, st.st_mtim.tv_sec,
                         st.st_mtim.tv_nsec);
}

// Whether mtime is within a minute of now (UTIME_NOW).
std::string MtimeIsNow(const char* path) {
  struct stat st;
  if (lstat(path, &st) != 0) return absl::StrCat("lstat:", ErrName(errno));
  int64_t off = int64_t{st.st_mtim.tv_sec} - absl::ToUnixSeconds(absl::Now());
  return off > -60 && off < 60 ? "mtime is now" : "mtime is not now";
}

std::string Exists(const char* path) {
  struct stat st;
  if (lstat(path, &st) == 0) return "exists";
  return errno == ENOENT ? "absent" : absl::StrCat("lstat:", ErrName(errno));
}

// The content, read through a fresh descriptor after dropping the page
// cache, so that on the mount the daemon serves it.
std::string Content(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::StrCat("open:", ErrName(errno));
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) data.append(buf, n);
  std::string result = n < 0 ? absl::StrCat("read:", ErrName(errno))
                             : Describe(data);
  close(fd);
  return result;
}

// What a descriptor shows: nlink and size by fstat, and content by pread.
std::string FdState(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::StrCat("fstat:", ErrName(errno));
  std::string data(st.st_size, '\0');
  ssize_t n = pread(fd, data.data(), data.size(), 0);
  if (n < 0) return absl::StrCat("pread:", ErrName(errno));
  data.resize(n);
  return absl::StrCat("fd nlink=", st.st_nlink, " size=", st.st_size,
                      " data=", Describe(data));
}

// Sorted names, "." and ".." included; with `types`, each with its
// d_type.
std::string List(const char* path, bool types = false) {
  DIR* dir = opendir(path);
  if (dir == nullptr) return absl::StrCat("opendir:", ErrName(errno));
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* d = readdir(dir)) {
    std::string name = d->d_name;
    if (types) absl::StrAppend(&name, "(", int{d->d_type}, ")");
    names.push_back(std::move(name));
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return absl::StrCat("readdir:", ErrName(err));
  std::sort(names.begin(), names.end());
  return absl::StrCat("[", absl::StrJoin(names, " "), "]");
}

std::string Target(const char* path) {
  char buf[4096];
  ssize_t n = readlink(path, buf, sizeof(buf));
  if (n < 0) return absl::StrCat("readlink:", ErrName(errno));
  return absl::StrCat("-> ", Describe(absl::string_view(buf, n)));
}

std::string Xattr(const char* path, const char* name) {
  char buf[65536];
  ssize_t n = lgetxattr(path, name, buf, sizeof(buf));
  if (n < 0) return absl::StrCat(name, ":", ErrName(errno));
  return absl::StrCat(name, "=", Describe(absl::string_view(buf, n)));
}

std::string Xattrs(const char* path) {
  char buf[65536];
  ssize_t n = llistxattr(path, buf, sizeof(buf));
  if (n < 0) return absl::StrCat("listxattr:", ErrName(errno));
  std::vector<std::string> names;
  for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) {
    names.push_back(buf + i);
  }
  std::sort(names.begin(), names.end());
  return absl::StrCat("xattrs [", absl::StrJoin(names, " "), "]");
}

// ---------------------------------------------------------------------
// Operations on descriptors.

// Opens `path`, runs `fn` on the descriptor and closes it. A failed open is
// the outcome; a failed close (where FUSE reports a failed flush) is added
// to it.
Outcome WithFd(const char* path, int flags,
               const std::function<Outcome(int fd)>& fn, mode_t mode = 0644) {
  int fd = open(path, flags | O_CLOEXEC, mode);
  if (fd < 0) return Sys(-1).Then({"open failed"});
  Outcome o = fn(fd);
  if (close(fd) != 0) o = o.Then({absl::StrCat("close:", ErrName(errno))});
  return o;
}

// open(2) and close: the descriptor's number is not part of the outcome.
Outcome Open(const char* path, int flags, mode_t mode = 0644) {
  return WithFd(path, flags, [](int) { return Outcome{}; }, mode);
}

Outcome Write(int fd, absl::string_view data) {
  return Sys(write(fd, data.data(), data.size()));
}

Outcome Pwrite(int fd, absl::string_view data, off_t off) {
  return Sys(pwrite(fd, data.data(), data.size(), off));
}

Outcome Pread(int fd, size_t n, off_t off) {
  std::string buf(n, '\0');
  Outcome o = Sys(pread(fd, buf.data(), n, off));
  buf.resize(std::max<int64_t>(o.ret, 0));
  return o.Then({absl::StrCat("read ", Describe(buf))});
}

Outcome Rename2(const char* from, const char* to, unsigned flags) {
  return Sys(renameat2(AT_FDCWD, from, AT_FDCWD, to, flags));
}

Outcome Utimens(const char* path, struct timespec atime,
                struct timespec mtime, int flags = 0) {
  struct timespec ts[2] = {atime, mtime};
  return Sys(utimensat(AT_FDCWD, path, ts, flags));
}

// ---------------------------------------------------------------------
// The table.

struct Case {
  std::string name;
  // The errno the case is about, 0 for success, or kAnyResult.
  int want_err;
  // Runs as root in the case's fresh directory.
  std::function<void(const Root&)> setup;
  // Runs as the case's caller (root, or the unprivileged user).
  std::function<Outcome(const Root&)> op;
  // Observations made as root after `op`, of what its caller may not see.
  std::function<std::string(const Root&)> after = nullptr;
};

std::vector<Case> RootCases() {
  const std::string kLongName(256, 'n');
  const std::string kBig = Pattern(600 * 1024, 7);
  return {
      // open and create
      {"create with O_CREAT|O_EXCL", 0, nullptr,
       [](const Root& r) {
         return Open(r("f"), O_WRONLY | O_CREAT | O_EXCL, 0640)
             .Then({Stat(r("f")), Content(r("f"))});
       }},
      {"O_CREAT|O_EXCL on an existing file", EEXIST,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Open(r("f"), O_WRONLY | O_CREAT | O_EXCL).Then({
             Content(r("f"))});
       }},
      {"O_CREAT on an existing file keeps it", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Open(r("f"), O_WRONLY | O_CREAT, 0600).Then({
             Stat(r("f")), Content(r("f"))});
       }},
      {"O_CREAT|O_TRUNC empties an existing file", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return Open(r("f"), O_WRONLY | O_CREAT | O_TRUNC).Then({
             Stat(r("f")), Content(r("f"))});
       }},
      {"O_RDONLY|O_TRUNC truncates", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Open(r("f"), O_RDONLY | O_TRUNC).Then({Stat(r("f"))});
       }},
      {"open a missing file", ENOENT, nullptr,
       [](const Root& r) {
         return Open(r("missing"), O_RDONLY).Then({Exists(r("missing"))});
       }},
      {"O_CREAT in a missing directory", ENOENT, nullptr,
       [](const Root& r) { return Open(r("nodir/f"), O_WRONLY | O_CREAT); }},
      {"open a directory O_WRONLY", EISDIR,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) { return Open(r("d"), O_WRONLY); }},
      {"open a directory O_RDWR", EISDIR,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) { return Open(r("d"), O_RDWR); }},
      {"O_CREAT on an existing directory", EISDIR,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) { return Open(r("d"), O_RDONLY | O_CREAT); }},
      {"O_DIRECTORY on a file", ENOTDIR,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) { return Open(r("f"), O_RDONLY | O_DIRECTORY); }},
      {"a file used as a directory in a path", ENOTDIR,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) { return Open(r("f/x"), O_RDONLY); }},
      {"O_CREAT of a name with a trailing slash", EISDIR, nullptr,
       [](const Root& r) {
         return Open(r("new/"), O_WRONLY | O_CREAT).Then({Exists(r("new"))});
       }},
      {"O_CREAT through a dangling symlink creates its target", 0,
       [](const Root& r) { MakeSymlink("target", r("l")); },
       [](const Root& r) {
         return Open(r("l"), O_WRONLY | O_CREAT, 0600).Then({
             Stat(r("target")), Stat(r("l"))});
       }},
      {"O_CREAT|O_EXCL on a dangling symlink", EEXIST,
       [](const Root& r) { MakeSymlink("target", r("l")); },
       [](const Root& r) {
         return Open(r("l"), O_WRONLY | O_CREAT | O_EXCL).Then({
             Exists(r("target"))});
       }},
      {"O_NOFOLLOW on a symlink", ELOOP,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         MakeSymlink("f", r("l"));
       },
       [](const Root& r) { return Open(r("l"), O_RDONLY | O_NOFOLLOW); }},
      {"create a 256-byte name", ENAMETOOLONG, nullptr,
       [kLongName](const Root& r) {
         return Open(r(kLongName), O_WRONLY | O_CREAT).Then({List(r.self())});
       }},
      {"create with umask 0", 0, nullptr,
       [](const Root& r) {
         umask(0);
         return Open(r("f"), O_WRONLY | O_CREAT, 0666).Then({Stat(r("f"))});
       }},
      {"create with umask 077", 0, nullptr,
       [](const Root& r) {
         umask(077);
         return Open(r("f"), O_WRONLY | O_CREAT, 0666).Then({Stat(r("f"))});
       }},

      // mkdir and rmdir
      {"mkdir", 0, nullptr,
       [](const Root& r) {
         return Sys(mkdir(r("d"), 0750)).Then({Stat(r("d")), Stat(r.self()),
                                                List(r("d"))});
       }},
      {"mkdir with the sticky bit and umask 0", 0, nullptr,
       [](const Root& r) {
         umask(0);
         return Sys(mkdir(r("d"), 01777)).Then({Stat(r("d"))});
       }},
      {"mkdir over an existing directory", EEXIST,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) { return Sys(mkdir(r("d"), 0755)); }},
      {"mkdir over an existing file", EEXIST,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(mkdir(r("f"), 0755)).Then({Stat(r("f"))});
       }},
      {"mkdir over a dangling symlink", EEXIST,
       [](const Root& r) { MakeSymlink("target", r("l")); },
       [](const Root& r) {
         return Sys(mkdir(r("l"), 0755)).Then({Exists(r("target"))});
       }},
      {"mkdir in a missing parent", ENOENT, nullptr,
       [](const Root& r) { return Sys(mkdir(r("nodir/d"), 0755)); }},
      {"mkdir under a file", ENOTDIR,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) { return Sys(mkdir(r("f/d"), 0755)); }},
      {"rmdir an empty directory", 0,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return Sys(rmdir(r("d"))).Then({Exists(r("d")), Stat(r.self())});
       }},
      {"rmdir a non-empty directory", ENOTEMPTY,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "data");
       },
       [](const Root& r) {
         return Sys(rmdir(r("d"))).Then({List(r("d"))});
       }},
      {"rmdir a file", ENOTDIR,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) { return Sys(rmdir(r("f"))).Then({Exists(r("f"))}); }},
      {"rmdir a missing directory", ENOENT, nullptr,
       [](const Root& r) { return Sys(rmdir(r("d"))); }},
      {"rmdir a symlink to a directory", ENOTDIR,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeSymlink("d", r("l"));
       },
       [](const Root& r) {
         return Sys(rmdir(r("l"))).Then({Exists(r("l")), Exists(r("d"))});
       }},
      {"rmdir of a path ending in .", EINVAL,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return Sys(rmdir(r("d/."))).Then({Exists(r("d"))});
       }},

      // unlink
      {"unlink a file", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         MakeFile(r("g"), "data");
       },
       [](const Root& r) {
         return Sys(unlink(r("f"))).Then({Exists(r("f")), List(r.self())});
       }},
      {"unlink a directory", EISDIR,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) { return Sys(unlink(r("d"))).Then({Exists(r("d"))}); }},
      {"unlink a missing file", ENOENT, nullptr,
       [](const Root& r) { return Sys(unlink(r("f"))); }},
      {"unlink a symlink keeps its target", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         MakeSymlink("f", r("l"));
       },
       [](const Root& r) {
         return Sys(unlink(r("l"))).Then({Exists(r("l")), Content(r("f"))});
       }},
      {"unlink one of two hard links", 0,
       [](const Root& r) {
         MakeFile(r("a"), "data");
         MakeLink(r("a"), r("b"));
       },
       [](const Root& r) {
         return Sys(unlink(r("a"))).Then({Exists(r("a")), Stat(r("b")),
                                          Content(r("b"))});
       }},
      {"an unlinked open file stays readable and writable", 0,
       [](const Root& r) {
         MakeFile(r("f"), "alpha");
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [&r](int fd) {
           Outcome o = Sys(unlink(r("f")));
           return o.Then({Exists(r("f")), FdState(fd),
                          Pwrite(fd, "beta", 5).Then({FdState(fd)}).seen});
         });
       }},

      // rename
      {"rename a file to a new name", 0,
       [](const Root& r) { MakeFile(r("a"), "alpha"); },
       [](const Root& r) {
         return Sys(rename(r("a"), r("b"))).Then({List(r.self()),
                                                  Content(r("b"))});
       }},
      {"rename a file over a file", 0,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeFile(r("b"), "beta");
         WarmCache(r("a"));
         WarmCache(r("b"));
       },
       [](const Root& r) {
         return Sys(rename(r("a"), r("b"))).Then({
             Exists(r("a")), Stat(r("b")), Content(r("b"))});
       }},
      {"rename a file over a directory", EISDIR,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeDir(r("d"));
       },
       [](const Root& r) {
         return Sys(rename(r("a"), r("d"))).Then({List(r.self())});
       }},
      {"rename a directory over a file", ENOTDIR,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeDir(r("d"));
       },
       [](const Root& r) {
         return Sys(rename(r("d"), r("a"))).Then({List(r.self())});
       }},
      {"rename a directory over a non-empty directory", ENOTEMPTY,
       [](const Root& r) {
         MakeDir(r("a"));
         MakeDir(r("b"));
         MakeFile(r("b/f"), "data");
       },
       [](const Root& r) {
         return Sys(rename(r("a"), r("b"))).Then({List(r("b"))});
       }},
      {"rename a directory over an empty directory", 0,
       [](const Root& r) {
         MakeDir(r("a"));
         MakeFile(r("a/f"), "data");
         MakeDir(r("b"));
       },
       [](const Root& r) {
         return Sys(rename(r("a"), r("b"))).Then({
             List(r.self()), List(r("b")), Content(r("b/f"))});
       }},
      {"rename a directory into its own subdirectory", EINVAL,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeDir(r("d/sub"));
       },
       [](const Root& r) {
         return Sys(rename(r("d"), r("d/sub/d"))).Then({List(r("d/sub"))});
       }},
      {"rename a missing file", ENOENT, nullptr,
       [](const Root& r) { return Sys(rename(r("a"), r("b"))); }},
      {"rename into a missing directory", ENOENT,
       [](const Root& r) { MakeFile(r("a"), "alpha"); },
       [](const Root& r) {
         return Sys(rename(r("a"), r("nodir/b"))).Then({Exists(r("a"))});
       }},
      {"rename a file onto itself", 0,
       [](const Root& r) { MakeFile(r("a"), "alpha"); },
       [](const Root& r) {
         return Sys(rename(r("a"), r("a"))).Then({Content(r("a"))});
       }},
      {"rename a hard link onto its twin", 0,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeLink(r("a"), r("b"));
       },
       [](const Root& r) {
         return Sys(rename(r("a"), r("b"))).Then({List(r.self()),
                                                  Stat(r("b"))});
       }},
      {"rename a file across directories", 0,
       [](const Root& r) {
         MakeDir(r("d1"));
         MakeDir(r("d2"));
         MakeFile(r("d1/f"), "data");
         WarmCache(r("d1/f"));
       },
       [](const Root& r) {
         return Sys(rename(r("d1/f"), r("d2/g"))).Then({
             List(r("d1")), List(r("d2")), Content(r("d2/g"))});
       }},
      {"rename a directory across directories", 0,
       [](const Root& r) {
         MakeDir(r("d1"));
         MakeDir(r("d2"));
         MakeDir(r("d1/sub"));
         MakeFile(r("d1/sub/f"), "data");
       },
       [](const Root& r) {
         return Sys(rename(r("d1/sub"), r("d2/sub"))).Then({
             Stat(r("d1")), Stat(r("d2")), Content(r("d2/sub/f"))});
       }},
      {"RENAME_NOREPLACE onto an existing file", EEXIST,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeFile(r("b"), "beta");
       },
       [](const Root& r) {
         return Rename2(r("a"), r("b"), RENAME_NOREPLACE).Then({
             Content(r("a")), Content(r("b"))});
       }},
      {"RENAME_NOREPLACE onto a missing name", 0,
       [](const Root& r) { MakeFile(r("a"), "alpha"); },
       [](const Root& r) {
         return Rename2(r("a"), r("b"), RENAME_NOREPLACE).Then({
             List(r.self()), Content(r("b"))});
       }},
      {"RENAME_EXCHANGE of two files", 0,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeFile(r("b"), "beta");
         WarmCache(r("a"));
         WarmCache(r("b"));
       },
       [](const Root& r) {
         return Rename2(r("a"), r("b"), RENAME_EXCHANGE).Then({
             Content(r("a")), Content(r("b"))});
       }},
      {"RENAME_EXCHANGE of a file and a directory", 0,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeDir(r("d"));
         MakeFile(r("d/f"), "data");
       },
       [](const Root& r) {
         return Rename2(r("a"), r("d"), RENAME_EXCHANGE).Then({
             Stat(r("a")), Stat(r("d")), List(r("a")), Content(r("d")),
             Content(r("a/f"))});
       }},
      {"RENAME_EXCHANGE with a missing target", ENOENT,
       [](const Root& r) { MakeFile(r("a"), "alpha"); },
       [](const Root& r) {
         return Rename2(r("a"), r("b"), RENAME_EXCHANGE).Then({
             List(r.self())});
       }},
      {"RENAME_EXCHANGE|RENAME_NOREPLACE", EINVAL,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeFile(r("b"), "beta");
       },
       [](const Root& r) {
         return Rename2(r("a"), r("b"), RENAME_EXCHANGE | RENAME_NOREPLACE);
       }},
      {"rename a symlink", 0,
       [](const Root& r) { MakeSymlink("somewhere", r("l")); },
       [](const Root& r) {
         return Sys(rename(r("l"), r("m"))).Then({Target(r("m")),
                                                  Exists(r("l"))});
       }},
      {"rename over an open file leaves its data to the descriptor", 0,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeFile(r("b"), "beta");
         WarmCache(r("a"));
         WarmCache(r("b"));
       },
       [](const Root& r) {
         return WithFd(r("b"), O_RDONLY, [&r](int fd) {
           Outcome o = Sys(rename(r("a"), r("b")));
           posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
           return o.Then({FdState(fd), Content(r("b"))});
         });
       }},

      // link
      {"link a file", 0,
       [](const Root& r) { MakeFile(r("a"), "alpha"); },
       [](const Root& r) {
         return Sys(link(r("a"), r("b"))).Then({
             Stat(r("a")), Stat(r("b")), Content(r("b"))});
       }},
      {"a write through one hard link shows through the other", 0,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         WarmCache(r("a"));
       },
       [](const Root& r) {
         Outcome o = Sys(link(r("a"), r("b")));
         return o.Then({WithFd(r("b"), O_WRONLY | O_APPEND, [](int fd) {
                          return Write(fd, "+more");
                        }).seen,
                        Content(r("a")), Stat(r("a"))});
       }},
      {"a same-size overwrite through one hard link shows through the other",
       0,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeLink(r("a"), r("b"));
         WarmCache(r("a"));
         WarmCache(r("b"));
       },
       [](const Root& r) {
         return WithFd(r("b"), O_WRONLY, [](int fd) {
           return Write(fd, "ALPHA");
         }).Then({Content(r("a")), Content(r("b"))});
       }},
      {"link a directory", EPERM,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return Sys(link(r("d"), r("e"))).Then({Exists(r("e"))});
       }},
      {"link onto an existing name", EEXIST,
       [](const Root& r) {
         MakeFile(r("a"), "alpha");
         MakeFile(r("b"), "beta");
       },
       [](const Root& r) {
         return Sys(link(r("a"), r("b"))).Then({Stat(r("a")),
                                                Content(r("b"))});
       }},
      {"link a missing file", ENOENT, nullptr,
       [](const Root& r) { return Sys(link(r("a"), r("b"))); }},
      {"link a symlink", 0,
       [](const Root& r) { MakeSymlink("somewhere", r("l")); },
       [](const Root& r) {
         return Sys(linkat(AT_FDCWD, r("l"), AT_FDCWD, r("m"), 0)).Then({
             Stat(r("m")), Target(r("m"))});
       }},

      // symlink
      {"symlink and readlink", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(symlink("f", r("l"))).Then({Target(r("l")), Stat(r("l")),
                                                Content(r("l"))});
       }},
      {"symlink onto an existing name", EEXIST,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(symlink("x", r("f"))).Then({Stat(r("f"))});
       }},
      {"symlink in a missing directory", ENOENT, nullptr,
       [](const Root& r) { return Sys(symlink("x", r("nodir/l"))); }},
      {"readlink of a regular file", EINVAL,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         char buf[64];
         return Sys(readlink(r("f"), buf, sizeof(buf)));
       }},
      {"readlink into a short buffer truncates", 0,
       [](const Root& r) { MakeSymlink("abcdefgh", r("l")); },
       [](const Root& r) {
         char buf[4];
         Outcome o = Sys(readlink(r("l"), buf, sizeof(buf)));
         return o.Then({std::string(buf, std::max<int64_t>(o.ret, 0))});
       }},
      {"a symlink with a 1000-byte target", 0, nullptr,
       [](const Root& r) {
         std::string target(1000, 't');
         return Sys(symlink(target.c_str(), r("l"))).Then({Target(r("l")),
                                                           Stat(r("l"))});
       }},
      {"a chain of symlinks is followed", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "data");
         MakeSymlink("d", r("l1"));
         MakeSymlink("l1/f", r("l2"));
       },
       [](const Root& r) {
         return Sys(access(r("l2"), R_OK)).Then({Content(r("l2"))});
       }},

      // mknod
      {"mknod a FIFO", 0, nullptr,
       [](const Root& r) {
         return Sys(mknod(r("p"), S_IFIFO | 0640, 0)).Then({Stat(r("p"))});
       }},
      {"mknod a regular file", 0, nullptr,
       [](const Root& r) {
         return Sys(mknod(r("f"), S_IFREG | 0640, 0)).Then({Stat(r("f")),
                                                            Content(r("f"))});
       }},
      {"mknod a character device", 0, nullptr,
       [](const Root& r) {
         return Sys(mknod(r("c"), S_IFCHR | 0600, makedev(1, 3))).Then({
             Stat(r("c"))});
       }},
      {"mknod a socket", 0, nullptr,
       [](const Root& r) {
         return Sys(mknod(r("s"), S_IFSOCK | 0644, 0)).Then({Stat(r("s"))});
       }},
      {"mknod onto an existing name", EEXIST,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(mknod(r("f"), S_IFIFO | 0644, 0)).Then({Stat(r("f"))});
       }},
      {"open a FIFO non-blocking for reading", 0,
       [](const Root& r) { MakeFifo(r("p")); },
       [](const Root& r) { return Open(r("p"), O_RDONLY | O_NONBLOCK); }},

      // chmod and chown
      {"chmod", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) { return Sys(chmod(r("f"), 0600)).Then({Stat(r("f"))}); }},
      {"fchmod", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           return Sys(fchmod(fd, 0751)).Then({FdState(fd)});
         }).Then({Stat(r("f"))});
       }},
      {"chmod a directory to 01777", 0,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return Sys(chmod(r("d"), 01777)).Then({Stat(r("d"))});
       }},
      {"chmod with setuid and setgid bits", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(chmod(r("f"), 06755)).Then({Stat(r("f"))});
       }},
      {"chmod a missing file", ENOENT, nullptr,
       [](const Root& r) { return Sys(chmod(r("f"), 0600)); }},
      {"chmod through a symlink changes its target", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         MakeSymlink("f", r("l"));
       },
       [](const Root& r) {
         return Sys(chmod(r("l"), 0604)).Then({Stat(r("f")), Stat(r("l"))});
       }},
      {"chown to another user", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(chown(r("f"), kUid, kGid)).Then({Owner(r("f"))});
       }},
      {"fchown of the group only", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           return Sys(fchown(fd, -1, kGroup));
         }).Then({Owner(r("f"))});
       }},
      {"lchown of a symlink leaves its target", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         MakeSymlink("f", r("l"));
       },
       [](const Root& r) {
         return Sys(lchown(r("l"), kUid, kGid)).Then({Owner(r("l")),
                                                      Owner(r("f"))});
       }},
      {"chown drops the setuid bit", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetMode(r("f"), 04755);
       },
       [](const Root& r) {
         return Sys(chown(r("f"), kUid, kGid)).Then({Stat(r("f"))});
       }},
      {"chown a missing file", ENOENT, nullptr,
       [](const Root& r) { return Sys(chown(r("f"), kUid, kGid)); }},

      // utimensat
      {"utimensat with explicit times", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Utimens(r("f"), {1000000000, 123456789}, {1100000000, 5})
             .Then({Times(r("f"))});
       }},
      {"utimensat with UTIME_OMIT for atime", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetTimes(r("f"), 1000, 2000);
       },
       [](const Root& r) {
         return Utimens(r("f"), {0, UTIME_OMIT}, {5000, 500})
             .Then({Times(r("f"))});
       }},
      {"utimensat with UTIME_NOW for mtime", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetTimes(r("f"), 1000, 2000);
       },
       [](const Root& r) {
         Outcome o = Utimens(r("f"), {3000, 0}, {0, UTIME_NOW});
         struct stat st = {};
         lstat(r("f"), &st);
         return o.Then({absl::StrCat("atime=", st.st_atim.tv_sec),
                        MtimeIsNow(r("f"))});
       }},
      {"futimens", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY, [](int fd) {
           struct timespec ts[2] = {{1200000000, 0}, {1300000000, 7}};
           return Sys(futimens(fd, ts));
         }).Then({Times(r("f"))});
       }},
      {"utimensat on a missing file", ENOENT, nullptr,
       [](const Root& r) { return Utimens(r("f"), {1, 0}, {2, 0}); }},
      {"utimensat AT_SYMLINK_NOFOLLOW on a symlink", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetTimes(r("f"), 1000, 2000);
         MakeSymlink("f", r("l"));
       },
       [](const Root& r) {
         return Utimens(r("l"), {4000, 0}, {5000, 0}, AT_SYMLINK_NOFOLLOW)
             .Then({Times(r("l")), Times(r("f"))});
       }},

      // truncate
      {"truncate shrinks", 0,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return Sys(truncate(r("f"), 4)).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"truncate extends with zeros", 0,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return Sys(truncate(r("f"), 16)).Then({Stat(r("f")),
                                                Content(r("f"))});
       }},
      {"truncate a cached file", 0,
       [kBig](const Root& r) {
         MakeFile(r("f"), kBig);
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return Sys(truncate(r("f"), 300000)).Then({Stat(r("f")),
                                                    Content(r("f"))});
       }},
      {"truncate a cached file and extend it again", 0,
       [kBig](const Root& r) {
         MakeFile(r("f"), kBig);
         WarmCache(r("f"));
       },
       [](const Root& r) {
         Outcome o = Sys(truncate(r("f"), 1000));
         return o.Then({Sys(truncate(r("f"), 600000)).seen, Stat(r("f")),
                        Content(r("f"))});
       }},
      {"ftruncate on an O_RDONLY descriptor", EINVAL,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           return Sys(ftruncate(fd, 2));
         }).Then({Stat(r("f"))});
       }},
      {"ftruncate then write", 0,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           Outcome o = Sys(ftruncate(fd, 3));
           return o.Then({Pwrite(fd, "xyz", 5).seen, FdState(fd)});
         }).Then({Content(r("f"))});
       }},
      {"truncate to a negative size", EINVAL,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return Sys(truncate(r("f"), -1)).Then({Stat(r("f"))});
       }},
      {"truncate a directory", EISDIR,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) { return Sys(truncate(r("d"), 0)); }},
      {"truncate a missing file", ENOENT, nullptr,
       [](const Root& r) { return Sys(truncate(r("f"), 0)); }},

      // write and read
      {"write then read back", 0, nullptr,
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_CREAT, [](int fd) {
           return Write(fd, "hello, world");
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"O_APPEND writes go to the end", 0,
       [](const Root& r) { MakeFile(r("f"), "start"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_APPEND, [](int fd) {
           Outcome o = Write(fd, "+one");
           lseek(fd, 0, SEEK_SET);
           return o.Then({Write(fd, "+two").seen,
                          absl::StrCat("offset ", lseek(fd, 0, SEEK_CUR))});
         }).Then({Content(r("f"))});
       }},
      {"pwrite on an O_APPEND descriptor appends", 0,
       [](const Root& r) { MakeFile(r("f"), "start"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_APPEND, [](int fd) {
           return Pwrite(fd, "X", 0);
         }).Then({Content(r("f"))});
       }},
      {"pwrite past the end leaves a hole of zeros", 0,
       [](const Root& r) { MakeFile(r("f"), "head"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY, [](int fd) {
           return Pwrite(fd, "tail", 20);
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"pwrite far past the end of a cached file", 0,
       [kBig](const Root& r) {
         MakeFile(r("f"), kBig);
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY, [](int fd) {
           return Pwrite(fd, "tail", 3 * 1024 * 1024 + 1);
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"write on an O_RDONLY descriptor", EBADF,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) { return Write(fd, "x"); })
             .Then({Content(r("f"))});
       }},
      {"read on an O_WRONLY descriptor", EBADF,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY, [](int fd) {
           char c;
           return Sys(read(fd, &c, 1));
         });
       }},
      {"overwrite the middle of a cached file", 0,
       [kBig](const Root& r) {
         MakeFile(r("f"), kBig);
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY, [](int fd) {
           return Pwrite(fd, "XYZ", 262143);
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"rewrite a cached file with the same size", 0,
       [](const Root& r) {
         MakeFile(r("f"), "aaaa");
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY, [](int fd) {
           return Write(fd, "bbbb");
         }).Then({Content(r("f"))});
       }},
      {"a 3 MiB write reads back", 0, nullptr,
       [](const Root& r) {
         std::string data = Pattern(3 * 1024 * 1024 + 5, 11);
         return WithFd(r("f"), O_WRONLY | O_CREAT | O_EXCL, [&data](int fd) {
           return Write(fd, data);
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"read at the end of a file", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           return Pread(fd, 10, 4);
         });
       }},
      {"read straddling the end of a file", 0,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           return Pread(fd, 100, 6);
         });
       }},
      {"stat sees the size while the file is open for writing", 0, nullptr,
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_CREAT, [&r](int fd) {
           return Write(fd, "0123456789").Then({Stat(r("f"))});
         });
       }},
      {"a shared writable mapping writes the file", 0,
       [](const Root& r) {
         MakeFile(r("f"), "0123456789");
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           void* p = mmap(nullptr, 10, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                          0);
           if (p == MAP_FAILED) return Sys(-1).Then({"mmap failed"});
           memcpy(p, "abc", 3);
           Outcome o = Sys(msync(p, 10, MS_SYNC));
           munmap(p, 10);
           return o;
         }).Then({Content(r("f"))});
       }},
      {"a private mapping reads the file", 0,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           void* p = mmap(nullptr, 10, PROT_READ, MAP_PRIVATE, fd, 0);
           if (p == MAP_FAILED) return Sys(-1).Then({"mmap failed"});
           std::string data(static_cast<const char*>(p), 10);
           munmap(p, 10);
           return Outcome{}.Then({Describe(data)});
         });
       }},
      {"an O_DIRECT write reads back", 0, nullptr,
       [](const Root& r) {
         constexpr size_t kSize = 8192;
         void* buf = aligned_alloc(4096, kSize);
         const std::string data = Pattern(kSize, 5);
         memcpy(buf, data.data(), kSize);
         Outcome o = WithFd(
             r("f"), O_RDWR | O_CREAT | O_DIRECT, [buf](int fd) {
               Outcome w = Sys(pwrite(fd, buf, kSize, 0));
               memset(buf, 0, kSize);
               Outcome rd = Sys(pread(fd, buf, 4096, 4096));
               return w.Then({absl::StrCat("pread ", rd.ret, " ",
                                           ErrName(rd.err), " ",
                                           Describe(absl::string_view(
                                               static_cast<char*>(buf),
                                               std::max<int64_t>(rd.ret, 0))))});
             });
         free(buf);
         return o.Then({Stat(r("f")), Content(r("f"))});
       }},
      {"an O_SYNC write reads back", 0,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_SYNC, [](int fd) {
           return Pwrite(fd, "sync", 8);
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"a write through one descriptor is read through another", 0,
       [](const Root& r) {
         MakeFile(r("f"), "old data");
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [&r](int reader) {
           return WithFd(r("f"), O_WRONLY, [reader](int writer) {
             return Pwrite(writer, "new", 0).Then({FdState(reader)});
           });
         });
       }},
      {"lseek SEEK_END after writes", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           Pwrite(fd, "more", 10);
           return Sys(lseek(fd, 0, SEEK_END));
         });
       }},
      {"write to a directory descriptor", EBADF,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return WithFd(r("d"), O_RDONLY | O_DIRECTORY, [](int fd) {
           return Write(fd, "x");
         });
       }},
      {"read a directory descriptor", EISDIR,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return WithFd(r("d"), O_RDONLY | O_DIRECTORY, [](int fd) {
           return Pread(fd, 10, 0);
         });
       }},

      // fsync
      {"fsync a file", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY, [](int fd) {
           Write(fd, "more");
           return Sys(fsync(fd));
         }).Then({Content(r("f"))});
       }},
      {"fdatasync a file", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_APPEND, [](int fd) {
           Write(fd, "more");
           return Sys(fdatasync(fd));
         }).Then({Content(r("f"))});
       }},
      {"fsync a read-only descriptor", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) { return Sys(fsync(fd)); });
       }},
      {"fsync a directory", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "data");
       },
       [](const Root& r) {
         return WithFd(r("d"), O_RDONLY | O_DIRECTORY, [](int fd) {
           return Sys(fsync(fd));
         });
       }},

      // xattrs
      {"setxattr then getxattr", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(setxattr(r("f"), "user.color", "blue", 4, 0)).Then({
             Xattr(r("f"), "user.color")});
       }},
      {"listxattr", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetXattr(r("f"), "user.b", "2");
         SetXattr(r("f"), "user.a", "1");
       },
       [](const Root& r) {
         char buf[1024];
         return Sys(listxattr(r("f"), buf, sizeof(buf))).Then({
             Xattrs(r("f"))});
       }},
      {"listxattr size query", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetXattr(r("f"), "user.name", "v");
       },
       [](const Root& r) { return Sys(listxattr(r("f"), nullptr, 0)); }},
      {"XATTR_CREATE on an existing xattr", EEXIST,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetXattr(r("f"), "user.k", "old");
       },
       [](const Root& r) {
         return Sys(setxattr(r("f"), "user.k", "new", 3, XATTR_CREATE)).Then({
             Xattr(r("f"), "user.k")});
       }},
      {"XATTR_REPLACE on a missing xattr", ENODATA,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(setxattr(r("f"), "user.k", "new", 3, XATTR_REPLACE))
             .Then({Xattrs(r("f"))});
       }},
      {"XATTR_REPLACE on an existing xattr", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetXattr(r("f"), "user.k", "old");
       },
       [](const Root& r) {
         return Sys(setxattr(r("f"), "user.k", "newer", 5, XATTR_REPLACE))
             .Then({Xattr(r("f"), "user.k")});
       }},
      {"removexattr", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetXattr(r("f"), "user.k", "v");
         SetXattr(r("f"), "user.other", "w");
       },
       [](const Root& r) {
         return Sys(removexattr(r("f"), "user.k")).Then({
             Xattr(r("f"), "user.k"), Xattrs(r("f"))});
       }},
      {"removexattr of a missing xattr", ENODATA,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) { return Sys(removexattr(r("f"), "user.k")); }},
      {"getxattr of a missing xattr", ENODATA,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         char buf[16];
         return Sys(getxattr(r("f"), "user.k", buf, sizeof(buf)));
       }},
      {"getxattr into a short buffer", ERANGE,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetXattr(r("f"), "user.k", "a long value");
       },
       [](const Root& r) {
         char buf[4];
         return Sys(getxattr(r("f"), "user.k", buf, sizeof(buf)));
       }},
      {"getxattr size query", 0,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         SetXattr(r("f"), "user.k", "a long value");
       },
       [](const Root& r) {
         return Sys(getxattr(r("f"), "user.k", nullptr, 0));
       }},
      {"xattr on a directory", 0,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return Sys(setxattr(r("d"), "user.k", "dir", 3, 0)).Then({
             Xattr(r("d"), "user.k")});
       }},
      {"user xattr on a symlink", EPERM,
       [](const Root& r) {
         MakeFile(r("f"), "data");
         MakeSymlink("f", r("l"));
       },
       [](const Root& r) {
         return Sys(lsetxattr(r("l"), "user.k", "v", 1, 0)).Then({
             Xattrs(r("f"))});
       }},
      {"an empty xattr value", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(setxattr(r("f"), "user.empty", "", 0, 0)).Then({
             Xattr(r("f"), "user.empty"), Xattrs(r("f"))});
       }},
      {"a 4000-byte xattr value", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         std::string value = Pattern(4000, 3);
         return Sys(setxattr(r("f"), "user.big", value.data(), value.size(),
                             0))
             .Then({Xattr(r("f"), "user.big")});
       }},
      {"fsetxattr and fremovexattr", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           Outcome o = Sys(fsetxattr(fd, "user.a", "1", 1, 0));
           return o.Then({Sys(fsetxattr(fd, "user.b", "2", 1, 0)).seen,
                          Sys(fremovexattr(fd, "user.a")).seen});
         }).Then({Xattrs(r("f"))});
       }},
      {"setxattr in an unknown namespace", EOPNOTSUPP,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return Sys(setxattr(r("f"), "bogus.k", "v", 1, 0));
       }},
      {"getxattr of a missing file", ENOENT, nullptr,
       [](const Root& r) {
         char buf[16];
         return Sys(getxattr(r("f"), "user.k", buf, sizeof(buf)));
       }},

      // fallocate
      {"fallocate extends the size", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, 0, 0, 10000));
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"fallocate with FALLOC_FL_KEEP_SIZE", 0,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 100000));
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"punch a hole", 0,
       [](const Root& r) { MakeFile(r("f"), std::string(20000, 'x')); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                4096, 8192));
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"punch a hole in a cached file", 0,
       [kBig](const Root& r) {
         MakeFile(r("f"), kBig);
         WarmCache(r("f"));
       },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                200000, 100000));
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"punch a hole without FALLOC_FL_KEEP_SIZE", EOPNOTSUPP,
       [](const Root& r) { MakeFile(r("f"), std::string(20000, 'x')); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
         }).Then({Content(r("f"))});
       }},
      {"fallocate FALLOC_FL_ZERO_RANGE", 0,
       [](const Root& r) { MakeFile(r("f"), std::string(20000, 'x')); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, FALLOC_FL_ZERO_RANGE, 100, 200));
         }).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"fallocate on an O_RDONLY descriptor", EBADF,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDONLY, [](int fd) {
           return Sys(fallocate(fd, 0, 0, 10000));
         }).Then({Stat(r("f"))});
       }},
      {"fallocate of a zero length", EINVAL,
       [](const Root& r) { MakeFile(r("f"), "data"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, 0, 0, 0));
         });
       }},

      // copy_file_range
      {"copy_file_range between two files", 0,
       [](const Root& r) {
         MakeFile(r("src"), "0123456789abcdef");
         MakeFile(r("dst"), "");
       },
       [](const Root& r) {
         return WithFd(r("src"), O_RDONLY, [&r](int in) {
           return WithFd(r("dst"), O_WRONLY, [in](int out) {
             return Sys(copy_file_range(in, nullptr, out, nullptr, 16, 0));
           });
         }).Then({Stat(r("dst")), Content(r("dst"))});
       }},
      {"copy_file_range at offsets", 0,
       [](const Root& r) {
         MakeFile(r("src"), "0123456789abcdef");
         MakeFile(r("dst"), "ABCDEFGHIJ");
       },
       [](const Root& r) {
         return WithFd(r("src"), O_RDONLY, [&r](int in) {
           return WithFd(r("dst"), O_WRONLY, [in](int out) {
             loff_t in_off = 10, out_off = 4;
             Outcome o =
                 Sys(copy_file_range(in, &in_off, out, &out_off, 4, 0));
             return o.Then({absl::StrCat("offsets ", in_off, " ", out_off)});
           });
         }).Then({Content(r("dst"))});
       }},
      {"copy_file_range of a large cached file", 0,
       [kBig](const Root& r) {
         MakeFile(r("src"), kBig);
         WarmCache(r("src"));
         MakeFile(r("dst"), "old");
         WarmCache(r("dst"));
       },
       [kBig](const Root& r) {
         return WithFd(r("src"), O_RDONLY, [&r, &kBig](int in) {
           return WithFd(r("dst"), O_WRONLY | O_TRUNC, [in, &kBig](int out) {
             int64_t total = 0;
             while (total < int64_t(kBig.size())) {
               ssize_t n = copy_file_range(in, nullptr, out, nullptr,
                                           kBig.size() - total, 0);
               if (n <= 0) return Sys(n);
               total += n;
             }
             return Outcome{total, 0, "", false};
           });
         }).Then({Stat(r("dst")), Content(r("dst"))});
       }},
      {"copy_file_range from the end of the source", 0,
       [](const Root& r) {
         MakeFile(r("src"), "0123");
         MakeFile(r("dst"), "");
       },
       [](const Root& r) {
         return WithFd(r("src"), O_RDONLY, [&r](int in) {
           return WithFd(r("dst"), O_WRONLY, [in](int out) {
             loff_t in_off = 4;
             return Sys(copy_file_range(in, &in_off, out, nullptr, 10, 0));
           });
         }).Then({Stat(r("dst"))});
       }},
      {"copy_file_range overlapping within one file", EINVAL,
       [](const Root& r) { MakeFile(r("f"), "0123456789"); },
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           loff_t in_off = 0, out_off = 2;
           return Sys(copy_file_range(fd, &in_off, fd, &out_off, 5, 0));
         }).Then({Content(r("f"))});
       }},
      {"copy_file_range into an O_RDONLY descriptor", EBADF,
       [](const Root& r) {
         MakeFile(r("src"), "0123");
         MakeFile(r("dst"), "");
       },
       [](const Root& r) {
         return WithFd(r("src"), O_RDONLY, [&r](int in) {
           return WithFd(r("dst"), O_RDONLY, [in](int out) {
             return Sys(copy_file_range(in, nullptr, out, nullptr, 4, 0));
           });
         });
       }},

      // statfs, readdir, access
      {"statfs", 0, nullptr,
       [](const Root& r) {
         struct statfs s = {};
         Outcome o = Sys(statfs(r.self(), &s));
         return o.Then({absl::StrCat("namelen=", s.f_namelen)});
       }},
      {"listing after creates, unlinks and renames", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         for (const char* name : {"d/a", "d/b", "d/c"}) MakeFile(r(name), "x");
         MakeDir(r("d/sub"));
       },
       [](const Root& r) {
         List(r("d"));  // so a listing is there to go stale
         Outcome o = Sys(unlink(r("d/b")));
         return o.Then({
             Open(r("d/e"), O_WRONLY | O_CREAT).seen,
             Sys(mkdir(r("d/f"), 0755)).seen, Sys(rmdir(r("d/sub"))).seen,
             Sys(rename(r("d/c"), r("d/g"))).seen, List(r("d"))});
       }},
      {"listing of an empty directory", 0,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         return Outcome{}.Then({List(r("d")), Stat(r("d"))});
       }},
      {"listing reports entry types", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "x");
         MakeDir(r("d/sub"));
         MakeSymlink("f", r("d/l"));
         MakeFifo(r("d/p"));
       },
       [](const Root& r) { return Outcome{}.Then({List(r("d"), true)}); }},
      {"listing of 300 names after renaming half", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         for (int i = 0; i < 300; ++i) {
           MakeFile(r(absl::StrCat("d/name-", i)), "");
         }
       },
       [](const Root& r) {
         Outcome o;
         for (int i = 0; i < 300; i += 2) {
           if (rename(r(absl::StrCat("d/name-", i)),
                      r(absl::StrCat("d/renamed-", i))) != 0) {
             return Sys(-1);
           }
         }
         return o.Then({List(r("d"))});
       }},
      {"opendir a file", ENOTDIR,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Open(r("f"), O_RDONLY | O_DIRECTORY); }},
      {"opendir a missing directory", ENOENT, nullptr,
       [](const Root& r) { return Open(r("d"), O_RDONLY | O_DIRECTORY); }},
      {"access F_OK", 0,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(access(r("f"), F_OK)); }},
      {"access of a missing file", ENOENT, nullptr,
       [](const Root& r) { return Sys(access(r("f"), F_OK)); }},
      {"access X_OK without execute bits", EACCES,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(access(r("f"), X_OK)); }},
      {"access X_OK with one execute bit", 0,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetMode(r("f"), 0610);
       },
       [](const Root& r) { return Sys(access(r("f"), X_OK)); }},
      {"access R_OK|W_OK", 0,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetMode(r("f"), 0);
       },
       [](const Root& r) { return Sys(access(r("f"), R_OK | W_OK)); }},
      {"access through a file", ENOTDIR,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(access(r("f/x"), F_OK)); }},
      {"access of a dangling symlink", ENOENT,
       [](const Root& r) { MakeSymlink("nowhere", r("l")); },
       [](const Root& r) { return Sys(access(r("l"), F_OK)); }},
      {"faccessat AT_SYMLINK_NOFOLLOW of a dangling symlink", 0,
       [](const Root& r) { MakeSymlink("nowhere", r("l")); },
       [](const Root& r) {
         return Sys(faccessat(AT_FDCWD, r("l"), F_OK, AT_SYMLINK_NOFOLLOW));
       }},

      // a few sequences
      {"a file created in a renamed directory", 0,
       [](const Root& r) { MakeDir(r("d")); },
       [](const Root& r) {
         Outcome o = Sys(rename(r("d"), r("e")));
         return o.Then({WithFd(r("e/f"), O_WRONLY | O_CREAT, [](int fd) {
                          return Write(fd, "in e");
                        }).seen,
                        List(r("e")), Content(r("e/f")), Exists(r("d"))});
       }},
      {"a name reused for a directory after its file is unlinked", 0,
       [](const Root& r) {
         MakeFile(r("n"), "file");
         WarmCache(r("n"));
       },
       [](const Root& r) {
         Outcome o = Sys(unlink(r("n")));
         return o.Then({Sys(mkdir(r("n"), 0755)).seen, Stat(r("n")),
                        Content(r("n"))});
       }},
      {"a new file of the same size where a cached file's directory was", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "first");
         WarmCache(r("d/f"));
       },
       [](const Root& r) {
         Outcome o = Sys(rename(r("d"), r("e")));
         return o.Then({Sys(mkdir(r("d"), 0755)).seen,
                        WithFd(r("d/f"), O_WRONLY | O_CREAT, [](int fd) {
                          return Write(fd, "other");
                        }).seen,
                        Content(r("d/f")), Content(r("e/f"))});
       }},
      {"a file replaced by a new one of the same size", 0,
       [](const Root& r) {
         MakeFile(r("f"), "first");
         WarmCache(r("f"));
       },
       [](const Root& r) {
         Outcome o = Sys(unlink(r("f")));
         return o.Then({WithFd(r("f"), O_WRONLY | O_CREAT, [](int fd) {
                          return Write(fd, "other");
                        }).seen,
                        Content(r("f"))});
       }},
  };
}

// Cases whose operation runs as kUid:kGid with supplementary groups kGid
// and kGroup. Each setup makes what it needs below a root-owned 0755 case
// directory.
std::vector<Case> UserCases() {
  // A directory the caller owns.
  auto own_dir = [](const Root& r) {
    MakeDir(r("d"));
    SetOwner(r("d"), kUid, kGid);
  };
  // A file the caller owns, in a root-owned directory.
  auto own_file = [](const Root& r) {
    MakeFile(r("f"), "mine");
    SetOwner(r("f"), kUid, kGid);
  };
  // A sticky world-writable directory with a file of root's and one of the
  // caller's.
  auto sticky = [](const Root& r) {
    MakeDir(r("t"));
    SetMode(r("t"), 01777);
    MakeFile(r("t/roots"), "root's");
    SetMode(r("t/roots"), 0666);
    MakeFile(r("t/mine"), "mine");
    SetOwner(r("t/mine"), kUid, kGid);
  };
  // A setgid directory of group kGroup that anyone may write.
  auto setgid_dir = [](const Root& r) {
    MakeDir(r("g"));
    SetOwner(r("g"), 0, kGroup);
    SetMode(r("g"), 02777);
  };
  return {
      {"a new file belongs to its creator", 0, own_dir,
       [](const Root& r) {
         return Open(r("d/f"), O_WRONLY | O_CREAT, 0640).Then({
             Owner(r("d/f")), Stat(r("d/f"))});
       }},
      {"a new directory belongs to its creator", 0, own_dir,
       [](const Root& r) {
         return Sys(mkdir(r("d/sub"), 0700)).Then({Owner(r("d/sub")),
                                                   Stat(r("d/sub"))});
       }},
      {"a new symlink belongs to its creator", 0, own_dir,
       [](const Root& r) {
         return Sys(symlink("x", r("d/l"))).Then({Owner(r("d/l"))});
       }},
      {"a new FIFO belongs to its creator", 0, own_dir,
       [](const Root& r) {
         return Sys(mknod(r("d/p"), S_IFIFO | 0600, 0)).Then({
             Owner(r("d/p")), Stat(r("d/p"))});
       }},
      {"a hard link made by the caller keeps the file's owner", 0,
       [own_dir](const Root& r) {
         own_dir(r);
         MakeFile(r("d/f"), "x");
         SetOwner(r("d/f"), kUid, kGid);
       },
       [](const Root& r) {
         return Sys(link(r("d/f"), r("d/g"))).Then({Owner(r("d/g")),
                                                    Stat(r("d/g"))});
       }},
      {"write and read back one's own new file", 0, own_dir,
       [](const Root& r) {
         return WithFd(r("d/f"), O_RDWR | O_CREAT | O_EXCL, [](int fd) {
           return Write(fd, "user data").Then({FdState(fd)});
         }).Then({Content(r("d/f")), Owner(r("d/f"))});
       }},
      {"a write by another user clears setuid and setgid", 0,
       [](const Root& r) {
         MakeFile(r("f"), "root's");
         SetMode(r("f"), 06777);
       },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_APPEND,
                       [](int fd) { return Write(fd, " and more"); })
             .Then({Stat(r("f")), Content(r("f"))});
       }},
      {"a truncate by another user clears setuid", 0,
       [](const Root& r) {
         MakeFile(r("f"), "root's");
         SetMode(r("f"), 04777);
       },
       [](const Root& r) {
         return Sys(truncate(r("f"), 2)).Then({Stat(r("f")), Content(r("f"))});
       }},
      {"another user without write permission keeps setuid", EACCES,
       [](const Root& r) {
         MakeFile(r("f"), "root's");
         SetMode(r("f"), 04755);
       },
       [](const Root& r) {
         return Open(r("f"), O_WRONLY).Then({Stat(r("f"))});
       }},
      {"create in a root-owned 0755 directory", EACCES, nullptr,
       [](const Root& r) { return Open(r("f"), O_WRONLY | O_CREAT); },
       [](const Root& r) { return Exists(r("f")); }},
      {"mkdir in a root-owned 0755 directory", EACCES, nullptr,
       [](const Root& r) { return Sys(mkdir(r("d"), 0755)); },
       [](const Root& r) { return Exists(r("d")); }},
      {"symlink in a root-owned 0755 directory", EACCES, nullptr,
       [](const Root& r) { return Sys(symlink("x", r("l"))); }},
      {"mknod in a root-owned 0755 directory", EACCES, nullptr,
       [](const Root& r) { return Sys(mknod(r("p"), S_IFIFO | 0644, 0)); }},
      {"unlink in a root-owned 0755 directory", EACCES,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(unlink(r("f"))); },
       [](const Root& r) { return Exists(r("f")); }},
      {"rmdir in a root-owned 0755 directory", EACCES, own_dir,
       [](const Root& r) { return Sys(rmdir(r("d"))); },
       [](const Root& r) { return Exists(r("d")); }},
      {"rename in a root-owned 0755 directory", EACCES, own_file,
       [](const Root& r) { return Sys(rename(r("f"), r("g"))); },
       [](const Root& r) { return List(r.self()); }},
      {"rename out of a root-owned directory into one's own", EACCES,
       [own_dir, own_file](const Root& r) {
         own_dir(r);
         own_file(r);
       },
       [](const Root& r) { return Sys(rename(r("f"), r("d/f"))); },
       [](const Root& r) { return List(r("d")); }},
      {"link into a root-owned 0755 directory", EACCES,
       [own_dir](const Root& r) {
         own_dir(r);
         MakeFile(r("d/f"), "x");
         SetOwner(r("d/f"), kUid, kGid);
       },
       [](const Root& r) { return Sys(link(r("d/f"), r("g"))); }},
      {"read a root-owned 0600 file", EACCES,
       [](const Root& r) {
         MakeFile(r("f"), "secret");
         SetMode(r("f"), 0600);
       },
       [](const Root& r) { return Open(r("f"), O_RDONLY); }},
      {"read a root-owned 0600 file the cache holds", EACCES,
       [](const Root& r) {
         MakeFile(r("f"), "secret");
         SetMode(r("f"), 0600);
         WarmCache(r("f"));
       },
       [](const Root& r) { return Open(r("f"), O_RDONLY); }},
      {"read a root-owned 0644 file", 0,
       [](const Root& r) { MakeFile(r("f"), "public"); },
       [](const Root& r) {
         return Open(r("f"), O_RDONLY).Then({Content(r("f"))});
       }},
      {"read a 0640 file through a supplementary group", 0,
       [](const Root& r) {
         MakeFile(r("f"), "group data");
         SetOwner(r("f"), 0, kGroup);
         SetMode(r("f"), 0640);
       },
       [](const Root& r) {
         return Sys(access(r("f"), R_OK)).Then({Content(r("f"))});
       }},
      {"read a 0604 file whose group excludes the caller", EACCES,
       [](const Root& r) {
         MakeFile(r("f"), "not for the group");
         SetOwner(r("f"), 0, kGid);
         SetMode(r("f"), 0604);
       },
       [](const Root& r) { return Open(r("f"), O_RDONLY); }},
      {"write a 0660 file through a supplementary group", 0,
       [](const Root& r) {
         MakeFile(r("f"), "group data");
         SetOwner(r("f"), 0, kGroup);
         SetMode(r("f"), 0660);
       },
       [](const Root& r) {
         return WithFd(r("f"), O_WRONLY | O_APPEND, [](int fd) {
           return Write(fd, "+user");
         });
       },
       [](const Root& r) { return Content(r("f")); }},
      {"write a root-owned 0644 file", EACCES,
       [](const Root& r) { MakeFile(r("f"), "public"); },
       [](const Root& r) { return Open(r("f"), O_WRONLY); },
       [](const Root& r) { return Content(r("f")); }},
      {"O_CREAT on an existing root-owned 0600 file", EACCES,
       [](const Root& r) {
         MakeFile(r("f"), "secret");
         SetMode(r("f"), 0600);
       },
       [](const Root& r) { return Open(r("f"), O_RDONLY | O_CREAT); }},
      {"truncate a root-owned 0644 file", EACCES,
       [](const Root& r) { MakeFile(r("f"), "public"); },
       [](const Root& r) { return Sys(truncate(r("f"), 0)); },
       [](const Root& r) { return Stat(r("f")); }},
      {"truncate one's own file", 0, own_file,
       [](const Root& r) {
         return Sys(truncate(r("f"), 2)).Then({Content(r("f"))});
       }},
      {"create in a directory writable through a supplementary group", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         SetOwner(r("d"), 0, kGroup);
         SetMode(r("d"), 0775);
       },
       [](const Root& r) {
         return Open(r("d/f"), O_WRONLY | O_CREAT).Then({Owner(r("d/f"))});
       }},
      {"open a file below a directory without search permission", EACCES,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "public");
         SetMode(r("d"), 0700);
       },
       [](const Root& r) { return Open(r("d/f"), O_RDONLY); }},
      {"stat a file below a directory without search permission", EACCES,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "public");
         SetMode(r("d"), 0700);
       },
       [](const Root& r) {
         struct stat st;
         return Sys(stat(r("d/f"), &st));
       }},
      {"list a directory without read permission", EACCES,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "public");
         SetMode(r("d"), 0711);
       },
       [](const Root& r) { return Open(r("d"), O_RDONLY | O_DIRECTORY); }},
      {"open a file in an execute-only directory", 0,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeFile(r("d/f"), "public");
         SetMode(r("d"), 0711);
       },
       [](const Root& r) {
         return Open(r("d/f"), O_RDONLY).Then({Content(r("d/f"))});
       }},
      {"chmod another user's file", EPERM,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(chmod(r("f"), 0777)); },
       [](const Root& r) { return Stat(r("f")); }},
      {"chmod one's own file", 0, own_file,
       [](const Root& r) { return Sys(chmod(r("f"), 0604)).Then({Stat(r("f"))}); }},
      {"chmod g+s of one's own file of a foreign group drops the bit", 0,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetOwner(r("f"), kUid, 0);
       },
       [](const Root& r) {
         return Sys(chmod(r("f"), 02755)).Then({Stat(r("f"))});
       }},
      {"chown one's own file to another user", EPERM, own_file,
       [](const Root& r) { return Sys(chown(r("f"), kOtherUid, -1)); },
       [](const Root& r) { return Owner(r("f")); }},
      {"chgrp one's own file to a group one is not in", EPERM, own_file,
       [](const Root& r) { return Sys(chown(r("f"), -1, 0)); },
       [](const Root& r) { return Owner(r("f")); }},
      {"chgrp one's own file to a supplementary group", 0, own_file,
       [](const Root& r) {
         return Sys(chown(r("f"), -1, kGroup)).Then({Owner(r("f"))});
       }},
      {"chown another user's file to oneself", EPERM,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(chown(r("f"), kUid, kGid)); },
       [](const Root& r) { return Owner(r("f")); }},
      {"unlink another user's file in a sticky directory", EPERM, sticky,
       [](const Root& r) { return Sys(unlink(r("t/roots"))); },
       [](const Root& r) { return List(r("t")); }},
      {"rename another user's file in a sticky directory", EPERM, sticky,
       [](const Root& r) { return Sys(rename(r("t/roots"), r("t/moved"))); },
       [](const Root& r) { return List(r("t")); }},
      {"unlink one's own file in a sticky directory", 0, sticky,
       [](const Root& r) {
         return Sys(unlink(r("t/mine"))).Then({List(r("t"))});
       }},
      {"write another user's 0666 file in a sticky directory", 0, sticky,
       [](const Root& r) {
         return WithFd(r("t/roots"), O_WRONLY | O_APPEND, [](int fd) {
           return Write(fd, "+user");
         }).Then({Content(r("t/roots")), Owner(r("t/roots"))});
       }},
      {"a setgid directory's new file takes its group", 0, setgid_dir,
       [](const Root& r) {
         return Open(r("g/f"), O_WRONLY | O_CREAT, 0664).Then({
             Owner(r("g/f")), Stat(r("g/f"))});
       }},
      {"a setgid directory's new directory takes its group and bit", 0,
       setgid_dir,
       [](const Root& r) {
         return Sys(mkdir(r("g/sub"), 0755)).Then({Owner(r("g/sub")),
                                                   Stat(r("g/sub"))});
       }},
      {"a setgid directory's new FIFO takes its group", 0, setgid_dir,
       [](const Root& r) {
         return Sys(mknod(r("g/p"), S_IFIFO | 0644, 0)).Then({
             Owner(r("g/p"))});
       }},
      {"access W_OK of a root-owned 0644 file", EACCES,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(access(r("f"), W_OK)); }},
      {"access R_OK of a root-owned 0644 file", 0,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) { return Sys(access(r("f"), R_OK)); }},
      {"access X_OK of a root-owned 0744 file", EACCES,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetMode(r("f"), 0744);
       },
       [](const Root& r) { return Sys(access(r("f"), X_OK)); }},
      {"setxattr on another user's 0644 file", EACCES,
       [](const Root& r) { MakeFile(r("f"), "x"); },
       [](const Root& r) {
         return Sys(setxattr(r("f"), "user.k", "v", 1, 0));
       },
       [](const Root& r) { return Xattrs(r("f")); }},
      {"setxattr on one's own file", 0, own_file,
       [](const Root& r) {
         return Sys(setxattr(r("f"), "user.k", "v", 1, 0)).Then({
             Xattr(r("f"), "user.k")});
       }},
      {"getxattr of a 0600 root file", EACCES,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetXattr(r("f"), "user.k", "v");
         SetMode(r("f"), 0600);
       },
       [](const Root& r) {
         char buf[16];
         return Sys(getxattr(r("f"), "user.k", buf, sizeof(buf)));
       }},
      {"getxattr of a 0644 root file", 0,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetXattr(r("f"), "user.k", "v");
       },
       [](const Root& r) {
         return Outcome{}.Then({Xattr(r("f"), "user.k")});
       }},
      {"listxattr of a 0600 root file", 0,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetXattr(r("f"), "user.k", "v");
         SetMode(r("f"), 0600);
       },
       [](const Root& r) { return Outcome{}.Then({Xattrs(r("f"))}); }},
      {"readlink below a directory without search permission", EACCES,
       [](const Root& r) {
         MakeDir(r("d"));
         MakeSymlink("target", r("d/l"));
         SetMode(r("d"), 0700);
       },
       [](const Root& r) {
         char buf[64];
         return Sys(readlink(r("d/l"), buf, sizeof(buf)));
       }},
      {"utimensat UTIME_NOW of another user's writable file", 0,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetMode(r("f"), 0666);
         SetTimes(r("f"), 1000, 2000);
       },
       [](const Root& r) {
         return Sys(utimensat(AT_FDCWD, r("f"), nullptr, 0)).Then({
             MtimeIsNow(r("f"))});
       }},
      {"utimensat with explicit times of another user's writable file", EPERM,
       [](const Root& r) {
         MakeFile(r("f"), "x");
         SetMode(r("f"), 0666);
         SetTimes(r("f"), 1000, 2000);
       },
       [](const Root& r) { return Utimens(r("f"), {5, 0}, {6, 0}); },
       [](const Root& r) { return Times(r("f")); }},
      {"utimensat with explicit times of one's own file", 0, own_file,
       [](const Root& r) {
         return Utimens(r("f"), {5, 0}, {6, 0}).Then({Times(r("f"))});
       }},
      // fs.protected_hardlinks decides; both sides run on this kernel.
      {"link to another user's 0600 file", kAnyResult,
       [own_dir](const Root& r) {
         own_dir(r);
         MakeFile(r("f"), "secret");
         SetMode(r("f"), 0600);
       },
       [](const Root& r) { return Sys(link(r("f"), r("d/f"))); },
       [](const Root& r) { return Stat(r("f")); }},
      {"fallocate one's own file", 0, own_file,
       [](const Root& r) {
         return WithFd(r("f"), O_RDWR, [](int fd) {
           return Sys(fallocate(fd, 0, 0, 8192));
         }).Then({Stat(r("f"))});
       }},
  };
}

// ---------------------------------------------------------------------
// Running a case.

struct Credentials {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

const Credentials& User() {
  static const Credentials* user = new Credentials{kUid, kGid, {kGid, kGroup}};
  return *user;
}

std::string Serialize(const Outcome& o) {
  return absl::StrCat(o.setup_failed ? 1 : 0, " ", o.ret, " ", o.err, "\n",
                      o.seen);
}

Outcome Deserialize(const std::string& text) {
  Outcome o;
  size_t eol = text.find('\n');
  int setup_failed = 0;
  long long ret = 0;
  int err = 0;
  if (eol == std::string::npos ||
      sscanf(text.c_str(), "%d %lld %d", &setup_failed, &ret, &err) != 3) {
    return {-1, -1, absl::StrCat("garbled report: ", text), true};
  }
  o.setup_failed = setup_failed != 0;
  o.ret = ret;
  o.err = err;
  o.seen = text.substr(eol + 1);
  return o;
}

// Runs `fn` in a forked child and returns the Outcome it reports; a child
// that crashes or outlives `timeout` is an Outcome with setup_failed set
// that says so (and is killed).
Outcome InChild(const std::function<Outcome()>& fn) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return {-1, errno, "pipe2 failed", true};
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return {-1, errno, "fork failed", true};
  }
  if (pid == 0) {
    close(fds[0]);
    std::string report = Serialize(fn());
    for (size_t done = 0; done < report.size();) {
      ssize_t n = write(fds[1], report.data() + done, report.size() - done);
      if (n <= 0) _exit(2);
      done += n;
    }
    _exit(0);  // no atexit handlers: they belong to the test
  }
  close(fds[1]);
  std::string report;
  const absl::Time deadline = absl::Now() + kCaseTimeout;
  bool timed_out = false;
  while (true) {
    int wait_ms = int(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (wait_ms <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    int ready = poll(&p, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[65536];
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, n);
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return {-1, -1,
            absl::StrCat(kHung, " after ", absl::FormatDuration(kCaseTimeout)),
            true};
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return {-1, -1,
            absl::StrCat("child died with shell status ", ShellExitCode(status),
                         "; reported: ", report),
            true};
  }
  return Deserialize(report);
}

bool DropPrivileges(const Credentials& who) {
  return setgroups(who.groups.size(), who.groups.data()) == 0 &&
         setresgid(who.gid, who.gid, who.gid) == 0 &&
         setresuid(who.uid, who.uid, who.uid) == 0;
}

// One side of a case: a fresh root-owned 0755 directory `dir` and the setup
// in it as root, the operation as `who` (root when unset), then `after` as
// root.
Outcome RunSide(const Case& c, const std::string& dir,
                const std::optional<Credentials>& who) {
  Outcome o = InChild([&]() -> Outcome {
    umask(022);
    SetupErrors().clear();
    SetupRoot() = dir;
    Root r(dir);
    MakeDir(r.self());
    if (SetupErrors().empty() && c.setup) c.setup(r);
    if (!SetupErrors().empty()) return {-1, 0, SetupErrors(), true};
    if (who.has_value() && !DropPrivileges(*who)) {
      return {-1, errno,
              absl::StrCat("dropping to uid ", who->uid, ": ",
                           ErrName(errno)),
              true};
    }
    return c.op(r);
  });
  if (o.setup_failed || !c.after) return o;
  Outcome after = InChild([&]() -> Outcome {
    Root r(dir);
    return {0, 0, c.after(r), false};
  });
  if (after.setup_failed) return after;
  return o.Then({absl::StrCat("after: ", after.seen)});
}

// A directory name for case `index`: its name in lower-case letters,
// digits and dashes.
std::string CaseDirName(const std::string& prefix, size_t index,
                        const std::string& name) {
  std::string leaf = absl::StrFormat("%s%03d-", prefix, index);
  for (char c : name) {
    if (leaf.size() >= 80) break;
    if (isalnum(static_cast<unsigned char>(c))) {
      leaf += static_cast<char>(tolower(static_cast<unsigned char>(c)));
    } else if (leaf.back() != '-') {
      leaf += '-';
    }
  }
  return leaf;
}

// Runs every case under `tested` and under `reference` and expects equal
// outcomes; `prefix` keeps the case directories of several tables apart.
// When `reference` is a native directory (`native`), also checks that each
// case does there what it is about. Returns how many cases differed; stops
// at the first case that hangs, since the mount is then likely stuck.
// Cases in `known` (name -> why) may differ: they are reported, not
// failed.
int RunTable(const std::vector<Case>& cases, const std::string& tested,
             const std::string& reference, bool native,
             const std::string& prefix,
             const std::optional<Credentials>& who,
             const std::map<std::string, std::string>& known = {}) {
  std::set<std::string> names;
  for (const Case& c : cases) names.insert(c.name);
  for (const auto& [name, why] : known) {
    EXPECT_TRUE(names.count(name)) << "no case named \"" << name << "\"";
  }
  names.clear();
  int differed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    EXPECT_TRUE(names.insert(c.name).second) << "two cases named " << c.name;
    const std::string leaf = CaseDirName(prefix, i, c.name);
    const Outcome want = RunSide(c, reference + "/" + leaf, who);
    const Outcome got = RunSide(c, tested + "/" + leaf, who);
    if (want.setup_failed && native) {
      ADD_FAILURE() << "case \"" << c.name
                    << "\" fails on a native directory, a bug in the test: "
                    << want;
      continue;
    }
    // A non-native reference may lack what a setup needs (SSHFS has no
    // xattrs, no FIFOs): then the mount must fail the setup the same way.
    if (native && c.want_err != kAnyResult && !want.setup_failed) {
      EXPECT_EQ(ErrName(want.err), ErrName(c.want_err))
          << "case \"" << c.name << "\": natively " << want
          << ", not what the case is about (a bug in the test)";
    }
    if (auto it = known.find(c.name); it != known.end()) {
      if (!(got == want)) {
        std::cout << "[ KNOWN    ] case \"" << c.name << "\" differs: got "
                  << got << ", want " << want << ": " << it->second << "\n";
      }
      continue;
    }
    EXPECT_EQ(got, want) << "case \"" << c.name << "\" (" << leaf << ")";
    if (!(got == want)) ++differed;
    if (got.setup_failed && absl::StrContains(got.seen, kHung)) {
      ADD_FAILURE() << "case \"" << c.name << "\" hung under " << tested
                    << "; the remaining " << cases.size() - i - 1
                    << " cases are not run";
      return differed + 1;
    }
  }
  return differed;
}

// Makes `path` traversable and readable by the unprivileged caller.
void OpenUp(const std::string& path) {
  ASSERT_EQ(chmod(path.c_str(), 0755), 0) << path << ": " << strerror(errno);
}

// The table itself: two native directories agree on every case, and every
// case does natively what its name says. Needs no mount.
TEST(PosixParityTableTest, TwoNativeDirectoriesAgree) {
  CACHEFS_REQUIRE(RootPrerequisite());
  TempDir a, b;
  ASSERT_NO_FATAL_FAILURE(OpenUp(a.path()));
  ASSERT_NO_FATAL_FAILURE(OpenUp(b.path()));
  EXPECT_EQ(RunTable(RootCases(), a.path(), b.path(), true, "r",
                     std::nullopt),
            0);
  EXPECT_EQ(RunTable(UserCases(), a.path(), b.path(), true, "u", User()), 0);
}

// Cases where cachefs over SSHFS may give other results than SSHFS itself,
// for reasons of SSHFS's own: whole-second mtimes (README.md, "Over
// SSHFS") and SFTP's way of setting times. They are reported, not failed.
const std::map<std::string, std::string>& KnownSshfsDifferences() {
  static const auto* known = new std::map<std::string, std::string>{
      {"a same-size overwrite through one hard link shows through the other",
       "the cache key is the path, and SSHFS's whole-second mtime leaves the "
       "other name's cached data looking current"},
      {"utimensat with UTIME_OMIT for atime",
       "SSHFS sets an omitted atime to the current time (SFTP sets both "
       "times at once), so the two sides' atimes are their own moments"},
      {"utimensat AT_SYMLINK_NOFOLLOW on a symlink",
       "SFTP's setstat follows the symlink and changes its target behind "
       "cachefs, which shows the target's cached times for attr_timeout"},
      {"a shared writable mapping writes the file",
       "SSHFS mounted with direct_io (as cachefs asks) refuses shared "
       "writable mappings; cachefs maps its own pages and writes them "
       "through"},
  };
  return *known;
}

// Cases where cachefs over NFS (libnfs 4.0 against nfs-ganesha's VFS
// backend) gives other results than a local filesystem, for reasons of
// the protocol, the client library or the server, not of cachefs: they
// are reported, not failed. Over NFS the mount is compared with a native
// directory, as there is no kernel NFS client here to compare with.
std::map<std::string, std::string> KnownNfsDifferences(int version) {
  std::map<std::string, std::string> known = {
      {"RENAME_NOREPLACE onto a missing name", "NFS has no rename flags"},
      {"RENAME_EXCHANGE of two files", "NFS has no rename flags"},
      {"RENAME_EXCHANGE of a file and a directory", "NFS has no rename flags"},
      {"fallocate extends the size", "no ALLOCATE before NFSv4.2"},
      {"fallocate with FALLOC_FL_KEEP_SIZE", "no ALLOCATE before NFSv4.2"},
      {"punch a hole", "no DEALLOCATE before NFSv4.2"},
      {"punch a hole in a cached file", "no DEALLOCATE before NFSv4.2"},
      {"fallocate FALLOC_FL_ZERO_RANGE", "no ALLOCATE before NFSv4.2"},
      {"fallocate one's own file", "no ALLOCATE before NFSv4.2"},
      {"statfs", "the name length limit is the server's"},
      {"utimensat AT_SYMLINK_NOFOLLOW on a symlink",
       "nfs-ganesha's VFS backend leaves a symlink's own times alone"},
  };
  for (const char* name :
       {"setxattr then getxattr", "listxattr", "listxattr size query",
        "XATTR_CREATE on an existing xattr",
        "XATTR_REPLACE on a missing xattr",
        "XATTR_REPLACE on an existing xattr", "removexattr",
        "removexattr of a missing xattr", "getxattr of a missing xattr",
        "getxattr into a short buffer", "getxattr size query",
        "xattr on a directory", "user xattr on a symlink",
        "an empty xattr value", "a 4000-byte xattr value",
        "fsetxattr and fremovexattr", "setxattr on another user's 0644 file",
        "setxattr on one's own file", "getxattr of a 0600 root file",
        "getxattr of a 0644 root file", "listxattr of a 0600 root file"}) {
    known[name] = "no extended attributes before NFSv4.2";
  }
  if (version == 4) {
    for (const char* name :
         {"a write by another user clears setuid and setgid",
          "write a 0660 file through a supplementary group"}) {
      known[name] =
          "libnfs 4.0 checks ACCESS on the parent directory when it opens "
          "a file for writing over NFSv4, so a writer needs write "
          "permission there too";
    }
  } else {
    for (const char* name :
         {"an unlinked open file stays readable and writable",
          "rename over an open file leaves its data to the descriptor"}) {
      known[name] =
          "NFSv3 keeps no open state: a file removed on the server is gone "
          "for its open descriptors too (ESTALE)";
    }
    known["link a symlink"] = "libnfs 4.0 follows a symlink it links";
    for (const char* name :
         {"utimensat with explicit times", "utimensat with UTIME_OMIT for atime",
          "futimens"}) {
      known[name] = "libnfs 4.0 sets NFSv3 times in microseconds";
    }
    known["utimensat UTIME_NOW of another user's writable file"] =
        "libnfs 4.0 sends the client's clock for \"now\", which NFSv3 "
        "lets only the owner set";
  }
  return known;
}

// Over a local directory, and over NFS, the mount is compared with a
// native directory. Over SSHFS it is compared with the SSHFS mount it
// serves (a directory of its own there): SSHFS itself differs from a local
// filesystem in most cases (nlink always 1, no xattrs, no mknod but of
// regular files, its server's umask, no rename flags), and what cachefs
// promises is to pass the origin's behaviour through unchanged.
class PosixParityTest : public CachefsMountTest {
 protected:
  void SetUp() override {
    CachefsMountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // chown, mknod of a device and dropping to another uid need root.
    CACHEFS_REQUIRE(RootPrerequisite());
    // The served root is the mount's root: the unprivileged caller must be
    // able to enter both it and the native directory.
    OpenUp(served_.path());
    OpenUp(native_.path());
    if (GetParam() == OriginKind::kSshfs) {
      reference_ = origin_ + "/parity-reference";
      ASSERT_EQ(mkdir(reference_.c_str(), 0755), 0) << strerror(errno);
    } else {
      reference_ = native_.path();
    }
  }

  // Differences reported rather than failed, for this origin.
  std::map<std::string, std::string> Known() const {
    switch (GetParam()) {
      case OriginKind::kSshfs:
        return KnownSshfsDifferences();
      case OriginKind::kNfs4:
        return KnownNfsDifferences(4);
      case OriginKind::kNfs3:
        return KnownNfsDifferences(3);
      case OriginKind::kLocal:
        break;
    }
    return {};
  }
  // Those of Known() that name one of `cases`.
  std::map<std::string, std::string> KnownIn(
      const std::vector<Case>& cases) const {
    std::map<std::string, std::string> known = Known();
    std::map<std::string, std::string> in;
    for (const Case& c : cases) {
      if (auto it = known.find(c.name); it != known.end()) in.insert(*it);
    }
    return in;
  }
  int RunRootCases() {
    return RunTable(RootCases(), mnt_.path(), reference_,
                    GetParam() == OriginKind::kLocal, "r", std::nullopt,
                    KnownIn(RootCases()));
  }
  int RunUserCases() {
    return RunTable(UserCases(), mnt_.path(), reference_,
                    GetParam() == OriginKind::kLocal, "u", User(),
                    KnownIn(UserCases()));
  }

  TempDir native_;
  std::string reference_;
};

TEST_P(PosixParityTest, AsRoot) {
  Mount();
  EXPECT_EQ(RunRootCases(), 0) << RootCases().size() << " cases";
  Unmount();
}

// The permission cases need an origin that enforces permissions for the
// caller: a local directory, or NFS, which sends each caller's uid and
// groups (AUTH_SYS). SSHFS acts as its login user for everyone.
class PosixParityPermissionTest : public PosixParityTest {};

TEST_P(PosixParityPermissionTest, AsAnotherUserWithAllowOther) {
  Mount("allow_other");
  EXPECT_EQ(RunUserCases(), 0) << UserCases().size() << " cases";
  Unmount();
}

// With default_permissions the kernel checks permissions before cachefs
// sees a request; the results must not change.
TEST_P(PosixParityPermissionTest, WithDefaultPermissions) {
  Mount("allow_other,default_permissions");
  EXPECT_EQ(RunRootCases(), 0) << RootCases().size() << " cases as root";
  EXPECT_EQ(RunUserCases(), 0) << UserCases().size() << " cases as a user";
  Unmount();
}

INSTANTIATE_TEST_SUITE_P(Origins, PosixParityTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs,
                                           OriginKind::kNfs4,
                                           OriginKind::kNfs3),
                         OriginKindName);
INSTANTIATE_TEST_SUITE_P(Origins, PosixParityPermissionTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kNfs4,
                                           OriginKind::kNfs3),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
