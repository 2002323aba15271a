// cachefs ORIGIN MOUNTPOINT -o cache=DIR[,option...]
//
// Mounts a persistent local cache over the directory ORIGIN (an SSHFS, NFS
// or any other mount). Startup checks everything it can before mounting, so
// bad input gets one line on stderr, a non-zero exit and no mount.

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <cstdlib>
#include <thread>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "cachefs/cache_fs.h"
#include "cachefs/control_prefetch.h"
#include "cachefs/control_reply.h"
#include "cachefs/control_socket.h"
#include "cachefs/control_trace.h"
#include "cachefs/fuse_ops.h"
#include "cachefs/kernel_readahead.h"
#include "cookie/cache.h"
#include "cull/culler.h"
#include "io/log.h"
#include "netfs/mount_table.h"
#include "netfs/open_origin.h"
#include "netfs/posix_origin.h"

namespace cachefs {
namespace {

constexpr char kVersion[] = "0.1.0";

// Raw option values as fuse_opt_parse fills them (plain C types only).
struct CliOptions {
  char* origin = nullptr;
  char* cache = nullptr;
  char* volume = nullptr;
  char* identity = nullptr;
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  // Counts are parsed by Validate, not by fuse_opt's %u, which takes "-1"
  // for 4294967295.
  char* readahead = nullptr;
  char* kernel_readahead = nullptr;
  char* readahead_files = nullptr;
  char* prefetch_jobs = nullptr;
  char* pin = nullptr;
  char* pin_memory = nullptr;
  char* memory_pressure = nullptr;
  char* hotsets = nullptr;
  double hotset_window = 15.0;
  double hotset_ttl = 14.0;
  char* hotset_ignore = nullptr;
  double pressure_calm = 30.0;
  double pin_mapped = 10.0;
  double pin_recheck = 30.0;
  char* origin_threads = nullptr;
  char* origin_descriptors = nullptr;
  double origin_timeout = 30.0;
  char* offline = nullptr;
  char* nfs_connections = nullptr;
  char* buffers = nullptr;
  char* dispatcher_threads = nullptr;
  char* fsname = nullptr;
  int nonempty = 0;
  char* log = nullptr;
  char* log_level = nullptr;
  char* verify = nullptr;
  double checkpoint_interval = 30.0;
  char* metadata_entries = nullptr;
  int no_buffered_fallback = 0;
  int nocto = 0;
  int allow_other = 0;
  char* cache_size = nullptr;
  char* cull_policy = nullptr;
  int brun = 10, bcull = 7, bstop = 3;
  int frun = 10, fcull = 7, fstop = 3;
  int open_file_share = 50;
  int show_help = 0;
  int show_version = 0;
};

#define CACHEFS_OPT(templ, field) \
  { templ, offsetof(CliOptions, field), 1 }

const fuse_opt kOptions[] = {
    CACHEFS_OPT("cache=%s", cache),
    CACHEFS_OPT("volume=%s", volume),
    CACHEFS_OPT("identity=%s", identity),
    CACHEFS_OPT("attr_timeout=%lf", attr_timeout),
    CACHEFS_OPT("entry_timeout=%lf", entry_timeout),
    CACHEFS_OPT("readahead=%s", readahead),
    CACHEFS_OPT("kernel_readahead=%s", kernel_readahead),
    CACHEFS_OPT("readahead_files=%s", readahead_files),
    CACHEFS_OPT("prefetch_jobs=%s", prefetch_jobs),
    CACHEFS_OPT("pin=%s", pin),
    CACHEFS_OPT("pin_memory=%s", pin_memory),
    CACHEFS_OPT("memory_pressure=%s", memory_pressure),
    CACHEFS_OPT("hotsets=%s", hotsets),
    CACHEFS_OPT("hotset_window=%lf", hotset_window),
    CACHEFS_OPT("hotset_ttl=%lf", hotset_ttl),
    CACHEFS_OPT("hotset_ignore=%s", hotset_ignore),
    CACHEFS_OPT("pressure_calm=%lf", pressure_calm),
    CACHEFS_OPT("pin_mapped=%lf", pin_mapped),
    CACHEFS_OPT("pin_recheck=%lf", pin_recheck),
    CACHEFS_OPT("origin_threads=%s", origin_threads),
    CACHEFS_OPT("origin_descriptors=%s", origin_descriptors),
    CACHEFS_OPT("origin_timeout=%lf", origin_timeout),
    CACHEFS_OPT("offline=%s", offline),
    CACHEFS_OPT("nfs_connections=%s", nfs_connections),
    CACHEFS_OPT("buffers=%s", buffers),
    CACHEFS_OPT("dispatcher_threads=%s", dispatcher_threads),
    CACHEFS_OPT("checkpoint_interval=%lf", checkpoint_interval),
    CACHEFS_OPT("metadata_entries=%s", metadata_entries),
    CACHEFS_OPT("no_buffered_fallback", no_buffered_fallback),
    CACHEFS_OPT("nocto", nocto),
    CACHEFS_OPT("allow_other", allow_other),
    CACHEFS_OPT("fsname=%s", fsname),
    CACHEFS_OPT("nonempty", nonempty),
    CACHEFS_OPT("log=%s", log),
    CACHEFS_OPT("log_level=%s", log_level),
    CACHEFS_OPT("verify=%s", verify),
    CACHEFS_OPT("cache_size=%s", cache_size),
    CACHEFS_OPT("cull_policy=%s", cull_policy),
    CACHEFS_OPT("brun=%d", brun),
    CACHEFS_OPT("bcull=%d", bcull),
    CACHEFS_OPT("bstop=%d", bstop),
    CACHEFS_OPT("frun=%d", frun),
    CACHEFS_OPT("fcull=%d", fcull),
    CACHEFS_OPT("fstop=%d", fstop),
    CACHEFS_OPT("open_file_share=%d", open_file_share),
    CACHEFS_OPT("-h", show_help),
    CACHEFS_OPT("--help", show_help),
    CACHEFS_OPT("-V", show_version),
    CACHEFS_OPT("--version", show_version),
    FUSE_OPT_END,
};

int KeepMountpoint(void* data, const char* arg, int key, fuse_args*) {
  auto* opts = static_cast<CliOptions*>(data);
  if (key == FUSE_OPT_KEY_NONOPT && opts->origin == nullptr) {
    opts->origin = strdup(arg);
    return 0;  // consumed: the next non-option is the mount point
  }
  return 1;
}

void PrintUsage(const char* prog) {
  std::printf(
      "usage: %s ORIGIN MOUNTPOINT -o cache=DIR[,option...]\n"
      "\n"
      "Mounts a persistent local cache of ORIGIN at MOUNTPOINT. ORIGIN is\n"
      "a directory (an SSHFS, NFS or any other mounted export) or an NFS\n"
      "export that cachefs reaches itself through libnfs, with no kernel\n"
      "NFS mount:\n"
      "    nfs://HOST[:PORT]/EXPORT[/SUBDIR][?version=3|4][&mountport=PORT]\n"
      "(NFSv4 unless asked otherwise; PORT is the NFS port, 2049 for v4,\n"
      "the portmapper's for v3). File data read through MOUNTPOINT is kept\n"
      "in DIR and served from there on later reads and after remounts; the\n"
      "origin stays the source of truth.\n"
      "\n"
      "cachefs options:\n"
      "    -o cache=DIR              cache directory (required; created if\n"
      "                              missing; needs user xattrs)\n"
      "    -o attr_timeout=SECONDS   how long the kernel and cachefs may use\n"
      "                              attributes fetched earlier (1.0)\n"
      "    -o entry_timeout=SECONDS  the same for name lookups (1.0)\n"
      "    -o nocto                  no close-to-open check: an open trusts\n"
      "                              attributes younger than attr_timeout\n"
      "                              instead of asking the origin, and a\n"
      "                              directory listed before is listed at\n"
      "                              once and read again behind (off)\n"
      "    -o readahead=GRANULES     256 KiB granules fetched ahead of a\n"
      "                              sequential reader (8; 32 over NFS)\n"
      "    -o readahead_files=N      once files of a directory are opened\n"
      "                              one after another in listed or name\n"
      "                              order, the next N small ones (one\n"
      "                              granule at most) are fetched ahead;\n"
      "                              each open still checks them (16; 0: off)\n"
      "    -o kernel_readahead=BYTES the kernel's read-ahead window for the\n"
      "                              mount, so large reads reach cachefs as\n"
      "                              large requests, several in flight (4M;\n"
      "                              0 leaves the kernel's 128K; needs root:\n"
      "                              otherwise a note says how to set it)\n"
      "    -o origin_threads=N       origin reads in flight at once (8; 32\n"
      "                              over NFS)\n"
      "    -o prefetch_jobs=N        files (and directories) a prefetch job\n"
      "                              (cachefs-ctl prefetch) fetches at once;\n"
      "                              a user's own reads never wait behind\n"
      "                              them (4)\n"
      "    -o pin=FILE               pin the files FILE names: one path or\n"
      "                              glob a line, relative to the mount\n"
      "                              root (a directory pins its tree), '#'\n"
      "                              starts a comment line. Pinned files\n"
      "                              are fetched whole and never culled;\n"
      "                              reread on SIGHUP and cachefs-ctl reload\n"
      "    -o pin_memory=BYTES       also hold pinned files in RAM, within\n"
      "                              BYTES (K, M, G): their cache files are\n"
      "                              mapped and locked (mlock), whole files\n"
      "                              in pin order while they fit, and\n"
      "                              reads of them need no disk I/O; let go\n"
      "                              under memory pressure (0: none)\n"
      "    -o pin_mapped=SECONDS     with pin_memory: how often the files of\n"
      "                              the mount that processes map\n"
      "                              (/proc/PID/maps) are counted; the most\n"
      "                              mapped are pinned in RAM with what the\n"
      "                              budget leaves (10; 0: off)\n"
      "    -o memory_pressure=SOURCE where memory pressure is learned from:\n"
      "                              psi (/proc/pressure/memory triggers),\n"
      "                              meminfo (MemAvailable under 5%%),\n"
      "                              file:PATH (pressure while PATH starts\n"
      "                              with 1) or off (psi, else meminfo).\n"
      "                              Under pressure RAM pins are let go,\n"
      "                              least recently used first, and\n"
      "                              prefetch pauses\n"
      "    -o pressure_calm=SECONDS  how long pressure must stay away before\n"
      "                              pins are locked in RAM again (30)\n"
      "    -o hotsets=on|off         learn what each program reads in its\n"
      "                              first seconds and replay it ahead of\n"
      "                              the program's next start: into the\n"
      "                              cache, and the kernel's page cache for\n"
      "                              files it knows; a replay checks its\n"
      "                              files with the origin, in parallel (off)\n"
      "    -o hotset_window=SECONDS  how long a program is traced (15)\n"
      "    -o hotset_ttl=DAYS        when an unused trace is dropped (14)\n"
      "    -o hotset_ignore=LIST     programs never traced, by name, ':'\n"
      "                              between them (cp:cat:tar:rsync:find:\n"
      "                              grep:du:md5sum:... and cachefs's own)\n"
      "    -o pin_recheck=SECONDS    how often pinned files are checked\n"
      "                              against the origin, and fetched again\n"
      "                              if they changed (30)\n"
      "    -o origin_descriptors=N   descriptors of recently used origin\n"
      "                              paths kept open on a FUSE origin (SSHFS)\n"
      "                              to save lookups; never one per file\n"
      "                              (1024)\n"
      "    -o origin_timeout=SECONDS the longest one origin call may take;\n"
      "                              past it the call fails with ETIMEDOUT\n"
      "                              and the origin counts as down (30)\n"
      "    -o offline=auto|never     while the origin is down (auto), serve\n"
      "                              cached data and known names as of their\n"
      "                              last check; uncached data and unknown\n"
      "                              names fail with EIO, changes with EROFS;\n"
      "                              also mounts an unreachable origin the\n"
      "                              cache knows; never: every request asks\n"
      "                              the origin (auto)\n"
      "    -o nfs_connections=N      an NFS origin: TCP connections to the\n"
      "                              server, each with its own thread (4)\n"
      "    -o buffers=N              256 KiB I/O buffers in memory (256)\n"
      "    -o dispatcher_threads=N   cookie lookup/write-back threads (4)\n"
      "    -o cache_size=BYTES       most data the cache directory holds,\n"
      "                              counted as allocated blocks (suffixes\n"
      "                              K, M, G, T; default: no limit but the\n"
      "                              filesystem's free space)\n"
      "    -o brun=N,bcull=N,bstop=N free space of the cache filesystem in\n"
      "                              percent: culling starts below bcull and\n"
      "                              goes on up to brun; below bstop nothing\n"
      "                              more is cached (10, 7, 3). With\n"
      "                              cache_size the same marks apply below\n"
      "                              the limit: writes stop at the limit,\n"
      "                              culling starts bcull-bstop %% below it\n"
      "                              and runs to brun-bstop %% below it\n"
      "    -o frun=N,fcull=N,fstop=N the same for free files (10, 7, 3)\n"
      "    -o cull_policy=NAME       which objects culling removes first:\n"
      "                              %s (%s)\n"
      "    -o open_file_share=PERCENT\n"
      "                              the most of the cache one open file\n"
      "                              keeps when culling must free space;\n"
      "                              past it, its least recently used\n"
      "                              256 KiB granules go before other files\n"
      "                              (50)\n"
      "    -o verify=on|off          check every granule read from the cache\n"
      "                              against the CRC-32C taken when it was\n"
      "                              stored; a mismatch is served from the\n"
      "                              origin, logged and counted. Reads whole\n"
      "                              256 KiB granules from the cache (on)\n"
      "    -o checkpoint_interval=SECONDS\n"
      "                              how often open files' cache maps are\n"
      "                              made durable; 0: only at close (30)\n"
      "    -o metadata_entries=N     names with their attributes, and as\n"
      "                              many directory entries, kept in memory\n"
      "                              and in the cache directory (the\n"
      "                              metadata store); the least recently\n"
      "                              used go first (100000)\n"
      "    -o identity=MODE          put the origin inode number in the\n"
      "                              coherency data: auto (when the origin's\n"
      "                              are stable: not on FUSE/SSHFS), inode,\n"
      "                              none (auto)\n"
      "    -o volume=KEY             name of this origin in the cache\n"
      "                              (default: type, source and path of the\n"
      "                              export the origin lives on)\n"
      "    -o no_buffered_fallback   refuse a cache directory whose\n"
      "                              filesystem has no O_DIRECT, instead of\n"
      "                              using buffered I/O with a warning\n"
      "    -o log=FILE               log to FILE (default: stderr with -f,\n"
      "                              else syslog, which journald keeps)\n"
      "    -o log_level=LEVEL        error, warning, notice, info or debug:\n"
      "                              the least important kept (notice)\n"
      "    -o nonempty               mount over a mount point that has\n"
      "                              entries (refused otherwise: they would\n"
      "                              be hidden)\n"
      "    -o allow_other            let other users use the mount (needs\n"
      "                              root or user_allow_other in\n"
      "                              /etc/fuse.conf); turns on\n"
      "                              default_permissions (off)\n"
      "    -o default_permissions    the kernel checks modes before asking\n"
      "                              cachefs (off unless allow_other)\n"
      "    -o ro                     mount read-only (off)\n"
      "    -o fsname=NAME            the source shown in /proc/mounts and\n"
      "                              df (the origin's path)\n"
      "    -h, --help                this help\n"
      "    -V, --version             the version\n"
      "\n"
      "Writes, creates, renames and every other change go to the origin\n"
      "first; the cache follows only what the origin accepted. With\n"
      "-o allow_other and cachefs running as root, each change is made as\n"
      "the calling user, so the origin checks permissions and new files\n"
      "belong to that user. -o allow_other turns on -o default_permissions\n"
      "too: the kernel shares cached names and attributes between users,\n"
      "so only its mode checks keep one user out of another's files.\n"
      "\n"
      "Coherency is close-to-open unless -o nocto: every open compares the\n"
      "origin file's size, mtime and ctime with what was cached.\n"
      "`cachefs-ctl stats MOUNTPOINT` shows what the cache did.\n"
      "\n"
      "Example: cache an SSHFS export in /var/cache/cachefs at /srv/data:\n"
      "    sshfs host:/export /mnt/export -o dir_cache=no,attr_timeout=0,\\\n"
      "        entry_timeout=0,negative_timeout=0,direct_io\n"
      "    %s /mnt/export /srv/data -o cache=/var/cache/cachefs\n"
      "\n",
      prog, absl::StrJoin(CullPolicyNames(), ", ").c_str(),
      std::string(kDefaultCullPolicy).c_str(), prog);
  std::printf("FUSE options:\n");
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "cachefs: %s\n", message.c_str());
  std::exit(1);
}

std::string RealPath(const std::string& path, const std::string& what) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) {
    Fail(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
  }
  return buf;
}

// The real path of `path`, which need not exist yet: the longest existing
// prefix is resolved and the rest appended. REQUIRES: absolute `path`.
std::string ResolveMaybeMissing(const std::string& path) {
  std::string prefix = path;
  std::string rest;
  while (true) {
    char buf[PATH_MAX];
    if (realpath(prefix.c_str(), buf) != nullptr) {
      std::string out = buf;
      if (!rest.empty()) out += (out == "/" ? "" : "/") + rest;
      return out;
    }
    size_t slash = prefix.rfind('/');
    if (slash == std::string::npos || prefix == "/") return path;
    std::string last = prefix.substr(slash + 1);
    if (last == "..") return path;  // no lexical guessing past a missing ..
    if (!last.empty() && last != ".") rest = rest.empty() ? last : last + "/" + rest;
    prefix = slash == 0 ? "/" : prefix.substr(0, slash);
  }
}

bool Inside(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() &&
                         path.compare(0, dir.size(), dir) == 0 &&
                         (dir == "/" || path[dir.size()] == '/'));
}

// Entries of the directory `path` besides "." and "..", or 0 if it
// cannot be read (the mount itself will say why).
size_t CountEntries(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return 0;
  size_t n = 0;
  while (dirent* entry = readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") != 0 &&
        std::strcmp(entry->d_name, "..") != 0) {
      ++n;
    }
  }
  closedir(dir);
  return n;
}

// The whole number `text` of option `name` (or `fallback` when the option
// is not given), within [min, max].
unsigned Count(const char* name, const char* text, unsigned fallback,
               unsigned min, unsigned max) {
  if (text == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (*text < '0' || *text > '9' || end == text || *end != '\0' ||
      errno != 0 || value < min || value > max) {
    Fail(absl::StrFormat("-o %s=%s: must be a whole number from %u to %u",
                         name, text, min, max));
  }
  return static_cast<unsigned>(value);
}

// Everything the daemon needs, checked.
struct Config {
  OriginArgument origin;
  std::string mountpoint;
  CacheOptions cache;
  CacheFsOptions fs;
  std::string volume_key;
  double attr_timeout;
  double entry_timeout;
  std::string summary;  // options in force, for `status`
  CullLimits limits;
  std::string cull_policy;
  uint64_t kernel_readahead = 4 << 20;
  OriginOptions origin_options;
  LogOptions log;
  Prefetcher::Options prefetch;
  PinSet::Options pins;
  std::string memory_pressure = "auto";
  bool hotsets = false;
  HotSets::Options hotset;
  double pressure_calm = 30.0;
};

Config Validate(const CliOptions& cli, const fuse_cmdline_opts& cmd) {
  if (cli.origin == nullptr) Fail("no origin given (see --help)");
  if (cmd.mountpoint == nullptr) Fail("no mount point given (see --help)");
  if (cli.cache == nullptr) {
    Fail("no cache directory given: add -o cache=DIR (see --help)");
  }
  Config c;
  if (!(cli.origin_timeout > 0)) Fail("-o origin_timeout= must be above 0");
  c.origin_options.nfs.timeout = absl::Seconds(cli.origin_timeout);
  c.fs.origin_timeout = cli.origin_timeout;
  if (cli.offline != nullptr) {
    const std::string offline = cli.offline;
    if (offline != "auto" && offline != "never") {
      Fail("-o offline= must be auto or never, not \"" + offline + "\"");
    }
    c.fs.offline = offline == "auto";
  }
  absl::StatusOr<OriginArgument> origin =
      ParseOriginArgument(cli.origin, absl::Seconds(cli.origin_timeout));
  if (!origin.ok()) Fail(std::string(origin.status().message()));
  if (!origin->unreachable.ok() && !c.fs.offline) {
    Fail(std::string(origin->unreachable.message()) +
         "; with -o offline=never cachefs does not mount without it");
  }
  c.origin = *std::move(origin);
  c.mountpoint = RealPath(cmd.mountpoint, "mount point");
  struct stat mount_st;
  if (stat(c.mountpoint.c_str(), &mount_st) != 0 ||
      !S_ISDIR(mount_st.st_mode)) {
    Fail("mount point " + c.mountpoint + " is not a directory");
  }
  std::string cache_dir = cli.cache;
  if (cache_dir.empty()) Fail("-o cache= needs a directory");
  if (cache_dir[0] != '/') cache_dir = RealPath(".", "cwd") + "/" + cache_dir;
  c.cache.directory = cache_dir;
  c.cache.dispatcher_threads = static_cast<int>(
      Count("dispatcher_threads", cli.dispatcher_threads, 4, 1, 64));
  c.cache.allow_buffered_io = !cli.no_buffered_fallback;
  if (cli.verify != nullptr) {
    const std::string verify = cli.verify;
    if (verify != "on" && verify != "off") {
      Fail("-o verify=" + verify + ": expected on or off");
    }
    c.cache.verify = verify == "on";
  }
  // An NFS origin carries many reads at once on one connection, each a
  // round trip long: deeper read-ahead fills the link (bench/nfs.sh).
  const bool nfs = c.origin.nfs.has_value();
  const unsigned readahead =
      Count("readahead", cli.readahead, nfs ? 32 : 8, 0, 1024);
  c.fs.readahead_granules = readahead;
  const unsigned readahead_files =
      Count("readahead_files", cli.readahead_files, 16, 0, 128);
  c.fs.readahead_files = static_cast<int>(readahead_files);
  c.prefetch.jobs =
      static_cast<int>(Count("prefetch_jobs", cli.prefetch_jobs, 4, 1, 64));
  if (cli.pin != nullptr) {
    if (*cli.pin == '\0') Fail("-o pin= needs a file");
    c.pins.pin_file = cli.pin[0] == '/' ? std::string(cli.pin)
                                        : RealPath(".", "cwd") + "/" + cli.pin;
    // Read now, so a bad line stops the mount with the terminal still
    // there to see it.
    absl::StatusOr<std::vector<PinSet::Rule>> rules =
        PinSet::ReadPinFile(c.pins.pin_file);
    if (!rules.ok()) Fail(std::string(rules.status().message()));
  }
  if (!(cli.pin_recheck > 0)) Fail("-o pin_recheck= must be above 0");
  if (cli.memory_pressure != nullptr) {
    c.memory_pressure = cli.memory_pressure;
    if (c.memory_pressure != "psi" && c.memory_pressure != "meminfo" &&
        c.memory_pressure != "off" &&
        !(c.memory_pressure.rfind("file:", 0) == 0 &&
          c.memory_pressure.size() > 5)) {
      Fail("-o memory_pressure=" + c.memory_pressure +
           ": expected psi, meminfo, file:PATH or off");
    }
  }
  if (!(cli.pressure_calm >= 0)) Fail("-o pressure_calm= cannot be negative");
  if (cli.hotsets != nullptr) {
    const std::string on = cli.hotsets;
    if (on != "on" && on != "off") {
      Fail("-o hotsets=" + on + ": expected on or off");
    }
    c.hotsets = on == "on";
  }
  if (!(cli.hotset_window > 0)) Fail("-o hotset_window= must be above 0");
  if (!(cli.hotset_ttl > 0)) Fail("-o hotset_ttl= must be above 0");
  c.hotset.window = absl::Seconds(cli.hotset_window);
  c.hotset.ttl = absl::Hours(24) * cli.hotset_ttl;
  if (cli.hotset_ignore != nullptr) {
    c.hotset.ignore =
        absl::StrSplit(cli.hotset_ignore, ':', absl::SkipEmpty());
  }
  c.pressure_calm = cli.pressure_calm;
  if (cli.pin_memory != nullptr) {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(cli.pin_memory);
    if (!bytes.ok()) {
      Fail("-o pin_memory=" + std::string(cli.pin_memory) + ": " +
           std::string(bytes.status().message()));
    }
    const uint64_t ram = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                         static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    if (*bytes >= ram) {
      Fail(absl::StrFormat(
          "-o pin_memory=%s: more than this machine's RAM (%d bytes)",
          cli.pin_memory, ram));
    }
    c.pins.memory = *bytes;
  }
  c.pins.recheck = absl::Seconds(cli.pin_recheck);
  if (!(cli.pin_mapped >= 0)) Fail("-o pin_mapped= cannot be negative");
  c.pins.map_sample = absl::Seconds(cli.pin_mapped);
  c.origin_options.nfs.connections = static_cast<int>(
      Count("nfs_connections", cli.nfs_connections, 4, 1, 64));
  c.origin_options.posix.descriptors =
      Count("origin_descriptors", cli.origin_descriptors, 1024, 1, 16384);
  if (cli.kernel_readahead != nullptr) {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(cli.kernel_readahead);
    if (!bytes.ok()) {
      Fail("-o kernel_readahead=" + std::string(cli.kernel_readahead) + ": " +
           std::string(bytes.status().message()));
    }
    c.kernel_readahead = *bytes;
  }
  // 0 leaves the kernel's own window, 128 KiB.
  c.fs.reorder_bytes = std::max<uint64_t>(c.kernel_readahead, 128 << 10);
  c.fs.origin_threads =
      static_cast<int>(Count("origin_threads", cli.origin_threads,
                             nfs ? 32 : 8, 1, 256));
  c.fs.buffers = Count("buffers", cli.buffers, 256, 16, 65536);
  std::string identity = cli.identity ? cli.identity : "auto";
  if (identity == "auto") {
    c.fs.identity = IdentityMode::kAuto;
  } else if (identity == "inode") {
    c.fs.identity = IdentityMode::kInode;
  } else if (identity == "none") {
    c.fs.identity = IdentityMode::kNone;
  } else {
    Fail("-o identity= must be auto, inode or none, not \"" + identity + "\"");
  }
  if (cli.attr_timeout < 0 || cli.entry_timeout < 0) {
    Fail("timeouts cannot be negative");
  }
  if (cli.log_level != nullptr) {
    absl::StatusOr<LogLevel> level = ParseLogLevel(cli.log_level);
    if (!level.ok()) {
      Fail("-o log_level=" + std::string(cli.log_level) + ": " +
           std::string(level.status().message()));
    }
    c.log.level = *level;
  }
  if (cli.log != nullptr) {
    if (*cli.log == '\0') Fail("-o log= needs a file");
    c.log.sink = LogOptions::Sink::kFile;
    c.log.file = cli.log[0] == '/' ? std::string(cli.log)
                                   : RealPath(".", "cwd") + "/" + cli.log;
  }
  c.log.mount_point = c.mountpoint;
  c.attr_timeout = cli.attr_timeout;
  c.entry_timeout = cli.entry_timeout;
  c.fs.attr_timeout = cli.attr_timeout;
  c.fs.entry_timeout = cli.entry_timeout;
  c.fs.cto = !cli.nocto;
  if (cli.checkpoint_interval < 0) {
    Fail("-o checkpoint_interval cannot be negative");
  }
  c.fs.checkpoint_interval = cli.checkpoint_interval;
  c.fs.attr_cache_entries =
      Count("metadata_entries", cli.metadata_entries, 100000, 16, 100000000);
  if (cli.cache_size != nullptr) {
    absl::StatusOr<uint64_t> size = ParseByteSize(cli.cache_size);
    if (!size.ok()) {
      Fail("-o cache_size=" + std::string(cli.cache_size) + ": " +
           std::string(size.status().message()));
    }
    if (*size == 0) Fail("-o cache_size must be more than 0");
    c.limits.cache_size = *size;
  }
  c.limits.brun = cli.brun;
  c.limits.bcull = cli.bcull;
  c.limits.bstop = cli.bstop;
  c.limits.frun = cli.frun;
  c.limits.fcull = cli.fcull;
  c.limits.fstop = cli.fstop;
  c.limits.open_file_share = cli.open_file_share;
  absl::Status limits = c.limits.Validate();
  if (!limits.ok()) Fail(std::string(limits.message()));
  c.cull_policy = cli.cull_policy != nullptr ? std::string(cli.cull_policy)
                                             : std::string(kDefaultCullPolicy);
  absl::StatusOr<std::unique_ptr<CullPolicy>> policy =
      MakeCullPolicy(c.cull_policy, 1);
  if (!policy.ok()) Fail(std::string(policy.status().message()));
  auto table = ReadMountTable();
  if (!table.ok()) Fail(std::string(table.status().message()));
  if (IsMountPoint(*table, c.mountpoint)) {
    Fail("mount point " + c.mountpoint + " is busy: something is mounted there");
  }
  if (!cli.nonempty) {
    size_t entries = CountEntries(c.mountpoint);
    if (entries > 0) {
      Fail(absl::StrFormat(
          "mount point %s is not empty: %d %s would be hidden while "
          "cachefs is mounted (add -o nonempty to mount over them)",
          c.mountpoint, entries, entries == 1 ? "entry" : "entries"));
    }
  }
  const std::string& origin_dir = c.origin.directory;
  if (!origin_dir.empty() && (Inside(origin_dir, c.mountpoint) ||
                              Inside(c.mountpoint, origin_dir))) {
    Fail("the origin and the mount point must not contain each other");
  }
  std::string cache_real = ResolveMaybeMissing(cache_dir);
  if (!origin_dir.empty() && Inside(cache_real, origin_dir)) {
    Fail("cache directory " + cache_real + " is inside the origin " +
         origin_dir);
  }
  if (Inside(cache_real, c.mountpoint)) {
    Fail("cache directory " + cache_real + " is inside the mount point " +
         c.mountpoint);
  }
  if (cli.volume != nullptr) {
    c.volume_key = cli.volume;
  } else if (c.origin.nfs.has_value()) {
    c.volume_key = c.origin.nfs->VolumeKey();
  } else {
    c.volume_key = OriginVolumeKey(*table, origin_dir);
  }
  c.summary = absl::StrFormat(
      "cache=%s,attr_timeout=%g,entry_timeout=%g,readahead=%u,"
      "readahead_files=%u,kernel_readahead=%d,"
      "origin_threads=%u,prefetch_jobs=%d,buffers=%u,identity=%s,verify=%s%s",
      cache_dir, c.attr_timeout, c.entry_timeout, readahead, readahead_files,
      c.kernel_readahead, c.fs.origin_threads, c.prefetch.jobs, c.fs.buffers,
      identity,
      c.cache.verify ? "on" : "off", cli.nocto ? ",nocto" : "");
  absl::StrAppendFormat(&c.summary,
                        ",cache_size=%d,cull_policy=%s,brun=%d,bcull=%d,"
                        "bstop=%d,frun=%d,fcull=%d,fstop=%d,"
                        "open_file_share=%d",
                        c.limits.cache_size, c.cull_policy, c.limits.brun,
                        c.limits.bcull, c.limits.bstop, c.limits.frun,
                        c.limits.fcull, c.limits.fstop,
                        c.limits.open_file_share);
  return c;
}

// Reaches an NFS origin once before mounting, so that a server that
// refuses the export is an error on the terminal and no mount is made (the
// daemon connects again after daemonizing, which ends all threads). A
// directory was checked already. A server that cannot be reached is, in
// offline mode, a warning: the mount serves what the cache holds.
bool ProbeOrigin(Config& c) {
  if (c.origin.nfs.has_value()) {
    OriginOptions once = c.origin_options;
    once.nfs.connections = 1;
    absl::StatusOr<std::unique_ptr<Origin>> origin = OpenOrigin(c.origin, once);
    if (!origin.ok()) {
      if (!c.fs.offline || !SaysUnreachable(origin.status())) {
        std::fprintf(stderr, "cachefs: %s\n",
                     std::string(origin.status().message()).c_str());
        return false;
      }
      c.origin.unreachable = origin.status();
    }
  }
  return true;
}

// Opens the cache once before mounting so its errors reach the terminal
// (the daemon opens it again after daemonizing, which ends all threads).
bool ProbeCache(const Config& c) {
  auto cache = Cache::Open(Env::Default(), c.cache);
  if (!cache.ok()) {
    std::fprintf(stderr, "cachefs: %s\n",
                 std::string(cache.status().message()).c_str());
    return false;
  }
  for (const std::string& warning : (*cache)->warnings()) {
    std::fprintf(stderr, "cachefs: warning: %s\n", warning.c_str());
  }
  // Also whether another daemon has this origin's volume, before a mount
  // is made only to be taken down again. A daemon just unmounted may
  // still be writing its last records back: it gets a few seconds.
  auto volume = (*cache)->AcquireVolume(c.volume_key, "");
  for (int i = 0; i < 100 && absl::IsFailedPrecondition(volume.status());
       ++i) {
    usleep(100 * 1000);
    volume = (*cache)->AcquireVolume(c.volume_key, "");
  }
  if (!volume.ok()) {
    std::fprintf(stderr, "cachefs: %s\n",
                 std::string(volume.status().message()).c_str());
    return false;
  }
  // An origin that did not answer: the mount serves the cache, if the
  // cache knows the origin at all.
  if (!c.origin.unreachable.ok()) {
    absl::StatusOr<struct stat> root =
        CacheFs::OfflineRoot(c.fs, **volume, Env::Default(),
                             c.origin.Describe(), c.origin.unreachable);
    if (!root.ok()) {
      (*cache)->RelinquishVolume(*volume);
      std::fprintf(stderr, "cachefs: %s\n",
                   std::string(root.status().message()).c_str());
      return false;
    }
    std::fprintf(stderr,
                 "cachefs: warning: %s: mounting from what the cache holds; "
                 "the mount goes live when the origin answers\n",
                 std::string(c.origin.unreachable.message()).c_str());
  }
  (*cache)->RelinquishVolume(*volume);
  return true;
}

std::string EscapeOption(const std::string& value) {
  std::string out;
  for (char ch : value) {
    if (ch == ',' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  return out;
}

int RunSession(fuse_session* se, const fuse_cmdline_opts& cmd) {
  if (cmd.singlethread) return fuse_session_loop(se);
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
  // fuse_parse_cmdline leaves UINT_MAX for "not given", which libfuse
  // 3.14 would pass here only to log that it ignores it.
  constexpr unsigned kMostThreads = 100000;
  if (cmd.max_idle_threads <= kMostThreads) {
    fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
  }
  if (cmd.max_threads <= kMostThreads) {
    fuse_loop_cfg_set_max_threads(loop, cmd.max_threads);
  }
  int ret = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);
  return ret;
}

// After daemonizing: opens the cache for real and serves until unmounted.
// The daemon, told apart from the command that started it: in the
// background the command waits until the daemon serves (or fails), so
// that when `cachefs` returns the mount answers and `cachefs-ctl` reaches
// it, and setup errors still reach the terminal.
class Readiness {
 public:
  // Forks unless `foreground`; in the parent, waits for the child's word
  // and exits with it.
  explicit Readiness(bool foreground) {
    if (foreground) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) Fail("pipe: " + std::string(strerror(errno)));
    pid_t pid = fork();
    if (pid < 0) Fail("fork: " + std::string(strerror(errno)));
    if (pid > 0) {
      close(fds[1]);
      char code = 1;
      ssize_t n;
      do {
        n = read(fds[0], &code, 1);
      } while (n < 0 && errno == EINTR);
      _exit(n == 1 ? code : 1);
    }
    close(fds[0]);
    fd_ = fds[1];
    setsid();
    if (chdir("/") != 0) Fail("chdir /: " + std::string(strerror(errno)));
  }
  // Tells the waiting command how setup went; once serving, the daemon's
  // own output goes to /dev/null, as a daemon's does.
  void Report(int code) {
    if (fd_ < 0) return;
    const char c = static_cast<char>(code);
    if (write(fd_, &c, 1) != 1) {
      // The command is gone; nothing to tell.
    }
    close(fd_);
    fd_ = -1;
    if (code != 0) return;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) return;
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(null);
  }

 private:
  int fd_ = -1;
};

// The part of `budget` bytes the daemon may lock in RAM: as root the
// limit is raised to it; otherwise, with a lower limit, one warning says
// which and how to raise it, and pins stay on disk.
uint64_t AllowMemoryLock(uint64_t budget) {
  if (budget == 0) return 0;
  // With CAP_IPC_LOCK the limit does not apply to mlock.
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2] = {};
  if (syscall(SYS_capget, &header, caps) == 0 &&
      (caps[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32)))) {
    return budget;
  }
  struct rlimit limit;
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return 0;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= budget) {
    return budget;
  }
  struct rlimit raised = limit;
  raised.rlim_cur = budget;
  if (raised.rlim_max != RLIM_INFINITY && raised.rlim_max < budget) {
    raised.rlim_max = budget;
  }
  if (setrlimit(RLIMIT_MEMLOCK, &raised) == 0) return budget;
  LogParts(LogLevel::kWarning, "-o pin_memory=", budget,
           ": pinned files stay on disk: the limit of locked memory "
           "(RLIMIT_MEMLOCK) is ", limit.rlim_cur,
           " bytes; raise it (systemd LimitMEMLOCK=, ulimit -l, or "
           "CAP_IPC_LOCK)");
  return 0;
}

// While it lives, SIGHUP rereads the pin file instead of ending the mount
// as libfuse's handler would: the handler only wakes a thread, which
// reloads.
class ReloadOnHangup {
 public:
  explicit ReloadOnHangup(PinSet* pins) : pins_(pins) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC);
    if (wake_fd_ < 0) return;
    hangup_fd_.store(wake_fd_);
    thread_ = std::thread([this] { Loop(); });
    struct sigaction sa = {};
    sa.sa_handler = &OnHangup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, &old_);
  }
  ~ReloadOnHangup() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    sigaction(SIGHUP, &old_, nullptr);
    hangup_fd_.store(-1);
    stopping_.store(true);
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
    close(wake_fd_);
  }

 private:
  static void OnHangup(int) {
    const int fd = hangup_fd_.load();
    uint64_t one = 1;
    if (fd >= 0) (void)!write(fd, &one, sizeof(one));
  }
  void Loop() {
    uint64_t n;
    while (read(wake_fd_, &n, sizeof(n)) > 0 || errno == EINTR) {
      if (stopping_.load()) return;
      absl::Status reloaded = pins_->Reload();
      if (reloaded.ok()) {
        LogParts(LogLevel::kNotice, "SIGHUP: reread the pin file");
      } else {
        LogParts(LogLevel::kError, "SIGHUP: the pin file was not reread: ",
                 std::string(reloaded.message()));
      }
    }
  }

  static inline std::atomic<int> hangup_fd_{-1};
  PinSet* const pins_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  struct sigaction old_ = {};
  std::thread thread_;
};

int Serve(fuse_session* se, FuseContext* ctx, const Config& c,
          const fuse_cmdline_opts& cmd, Readiness& readiness) {
  auto cache = Cache::Open(Env::Default(), c.cache);
  if (!cache.ok()) {
    std::fprintf(stderr, "cachefs: %s\n",
                 std::string(cache.status().message()).c_str());
    return 1;
  }
  // A directory that did not answer at all is not asked again here.
  absl::StatusOr<std::unique_ptr<Origin>> origin =
      c.origin.unreachable.ok()
          ? OpenOriginWithin(c.origin, c.origin_options,
                             absl::Seconds(c.fs.origin_timeout))
          : absl::StatusOr<std::unique_ptr<Origin>>(c.origin.unreachable);
  absl::Status unreachable;
  if (!origin.ok() && c.fs.offline && SaysUnreachable(origin.status())) {
    unreachable = origin.status();
    origin = OpenOriginLater(c.origin, c.origin_options, unreachable);
  }
  auto volume = (*cache)->AcquireVolume(c.volume_key, "");
  if (!origin.ok() || !volume.ok()) {
    std::fprintf(stderr, "cachefs: %s\n",
                 std::string((origin.ok() ? volume.status() : origin.status())
                                 .message())
                     .c_str());
    return 1;
  }
  auto culler = Culler::Start(cache->get(), *volume, c.limits, c.cull_policy);
  if (!culler.ok()) {
    std::fprintf(stderr, "cachefs: %s\n",
                 std::string(culler.status().message()).c_str());
    return 1;
  }
  auto fs =
      CacheFs::Create(c.fs, origin->get(), cache->get(), *volume, unreachable);
  if (!fs.ok()) {
    std::fprintf(stderr, "cachefs: %s\n",
                 std::string(fs.status().message()).c_str());
    return 1;
  }
  ctx->fs = fs->get();
  // Before the control socket, which hands it jobs; gone before the
  // filesystem its jobs fetch through.
  auto prefetcher = std::make_unique<Prefetcher>(c.prefetch, fs->get(),
                                                 &(*cache)->stats());
  PinSet::Options pin_options = c.pins;
  pin_options.memory = AllowMemoryLock(c.pins.memory);
  if (pin_options.memory > 0) pin_options.mount_point = c.mountpoint;
  auto pins =
      PinSet::Start(pin_options, fs->get(), cache->get(), volume->get());
  if (!pins.ok()) {
    std::fprintf(stderr, "cachefs: %s\n",
                 std::string(pins.status().message()).c_str());
    return 1;
  }
  std::unique_ptr<PressureWatch> pressure;
  if (pin_options.memory > 0 && c.memory_pressure != "off") {
    std::unique_ptr<PressureSource> source;
    if (c.memory_pressure.rfind("file:", 0) == 0) {
      source = FilePressure(c.memory_pressure.substr(5),
                            absl::Milliseconds(100));
    } else if (c.memory_pressure != "meminfo") {
      auto psi = OpenPsiPressure("/proc/pressure/memory",
                                 absl::Milliseconds(150), absl::Seconds(2));
      if (psi.ok()) {
        source = *std::move(psi);
      } else if (c.memory_pressure == "psi") {
        std::fprintf(stderr, "cachefs: -o memory_pressure=psi: %s\n",
                     std::string(psi.status().message()).c_str());
        return 1;
      } else {
        LogParts(LogLevel::kNotice, "no PSI (",
                 std::string(psi.status().message()),
                 "): memory pressure is sampled from /proc/meminfo");
      }
    }
    if (source == nullptr) {
      source = MemAvailablePressure(0.05, absl::Seconds(1));
    }
    PressureWatch::Options watch;
    watch.budget = pin_options.memory;
    watch.calm = absl::Seconds(c.pressure_calm);
    pressure = std::make_unique<PressureWatch>(
        watch, std::move(source), pins->get(), prefetcher.get(),
        &(*cache)->stats());
  }
  std::unique_ptr<HotSets> hotsets;
  if (c.hotsets) {
    hotsets = std::make_unique<HotSets>(c.hotset, fs->get(), volume->get(),
                                        &(*cache)->stats());
    (*fs)->SetKernelStore([se](uint64_t ino, uint64_t off,
                               const std::vector<iovec>& data) {
      for (const iovec& v : data) {
        fuse_bufvec buf = FUSE_BUFVEC_INIT(v.iov_len);
        buf.buf[0].mem = v.iov_base;
        const int err = fuse_lowlevel_notify_store(
            se, ino, static_cast<off_t>(off), &buf, FUSE_BUF_SPLICE_NONBLOCK);
        if (err != 0) return -err;
        off += v.iov_len;
      }
      return 0;
    });
    ctx->hotsets = hotsets.get();
  }
  // SIGHUP rereads the pin file (libfuse's handler would end the mount).
  ReloadOnHangup reload_on_hangup(pins->get());
  MountFacts facts{c.origin.Describe(), c.mountpoint,
                   c.cache.directory,   c.volume_key,
                   c.summary,           Env::Default()->MonotonicNanos(),
                   origin->get(),       nullptr};
  facts.memory_status = [&pins, &pressure, &pin_options] {
    std::string out = absl::StrFormat(
        "%d pinned files, %d of %d bytes locked in RAM",
        (*pins)->Files().size(), (*pins)->memory_locked(), pin_options.memory);
    return absl::StrCat(out, "; memory pressure: ",
                        pressure != nullptr ? pressure->Describe()
                                            : std::string("not watched"));
  };
  auto control = ControlServer::Start(
      ControlSocketPath(c.mountpoint),
      [&](const std::string& request) {
        return ControlReply(request, facts, **cache, volume->get(),
                            culler->get(), fs->get(), prefetcher.get(),
                            pins->get(), hotsets.get());
      },
      [&](const std::string& request, ControlStream& stream) {
        absl::StatusOr<ControlCall> call = DecodeControlCall(request);
        if (call.ok() && call->command == "prefetch") {
          StreamPrefetch(*call, *prefetcher, stream);
        } else {
          StreamTrace(request, (*cache)->tracer(), stream);
        }
      });
  if (!control.ok()) {
    std::fprintf(stderr, "cachefs: warning: no control socket: %s\n",
                 std::string(control.status().message()).c_str());
  }
  // In the background stderr is gone: the log goes to syslog (journald)
  // unless it has a file of its own.
  if (!cmd.foreground && c.log.sink == LogOptions::Sink::kStderr) {
    LogOptions to_syslog = c.log;
    to_syslog.sink = LogOptions::Sink::kSyslog;
    ConfigureLog(to_syslog).IgnoreError();
  }
  LogParts(LogLevel::kInfo, "serving ", c.origin.Describe(), " (cache ", c.cache.directory,
           ", volume ", c.volume_key, ")");
  // Once the session answers (INIT would undo it), raise the kernel's
  // read-ahead window for the mount; the mount command returns after
  // that, so no read sees a window that later reads would not (a first
  // read with the kernel's default fetches less ahead than later ones).
  // It asks the mount itself (the only way to know INIT was answered), so
  // an origin that does not answer would hold the command: it waits 2 s
  // at most.
  std::thread readahead_tuner([&c, &readiness] {
    absl::Notification set;
    std::thread setter([&c, &set] {
      if (c.kernel_readahead > 0) {
        absl::Status status =
            SetKernelReadAhead(c.mountpoint, c.kernel_readahead);
        if (!status.ok()) {
          LogParts(LogLevel::kNotice,
                   "the kernel's read-ahead for the mount stays at its "
                   "default: ", std::string(status.message()));
        }
      }
      set.Notify();
    });
    set.WaitForNotificationWithTimeout(absl::Seconds(2));
    readiness.Report(0);
    setter.join();
  });
  int ret = RunSession(se, cmd);
  // libfuse's handlers end the loop on SIGTERM and SIGINT and return the
  // signal's number: an orderly stop, like an unmount, as a service
  // manager expects of a daemon it stops.
  const bool stopped = ret == SIGTERM || ret == SIGINT;
  if (stopped) {
    LogParts(LogLevel::kInfo, "stopped by signal ", ret,
             "; writing back what is open");
    ret = 0;
  } else {
    Log(LogLevel::kInfo, "unmounted; writing back what is open");
  }
  if (readahead_tuner.joinable()) readahead_tuner.join();
  control = absl::StatusOr<std::unique_ptr<ControlServer>>(nullptr);
  prefetcher.reset();  // cancels the jobs still running
  reload_on_hangup.Stop();
  facts.memory_status = nullptr;
  pressure.reset();
  pins->reset();
  ctx->hotsets = nullptr;
  hotsets.reset();
  // Checkpoints every file: those released by now, and those still held
  // when a signal stopped the daemon.
  fs->reset();
  culler->reset();  // after the objects that report to it
  return ret == 0 ? 0 : 1;
}

int Main(int argc, char* argv[]) {
  // Debian's abseil is built without NDEBUG, so by default every
  // absl::Mutex checks its lock order in one graph of all the mutexes ever
  // held together. With mutexes in every file the kernel knows, the graph
  // grows with the files read, and on a pass over a few hundred thousand
  // files the check took most of the daemon's time. It is a debugging aid:
  // on when asked for (the tests ask), off otherwise. Never under
  // ThreadSanitizer, which checks lock order itself and cannot see the
  // lock that guards abseil's graph (io/tsan_absl_sync.cc).
#ifdef ABSL_HAVE_THREAD_SANITIZER
  constexpr bool kMayCheckLockOrder = false;
#else
  constexpr bool kMayCheckLockOrder = true;
#endif
  absl::SetMutexDeadlockDetectionMode(
      kMayCheckLockOrder &&
              std::getenv("CACHEFS_MUTEX_DEADLOCK_CHECK") != nullptr
          ? absl::OnDeadlockCycle::kAbort
          : absl::OnDeadlockCycle::kIgnore);
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  CliOptions cli;
  if (fuse_opt_parse(&args, &cli, kOptions, KeepMountpoint) != 0) return 1;
  if (cli.show_help) {
    PrintUsage(argv[0]);
    return 0;
  }
  if (cli.show_version) {
    std::printf("cachefs %s (libfuse %s)\n", kVersion, fuse_pkgversion());
    return 0;
  }
  fuse_cmdline_opts cmd = {};
  if (fuse_parse_cmdline(&args, &cmd) != 0) return 1;
  Config config = Validate(cli, cmd);
  absl::Status logging = ConfigureLog(config.log);
  if (!logging.ok()) Fail(std::string(logging.message()));

  // Modes of created files are the caller's, already masked by the kernel.
  umask(0);
  // Many open cache files: raise the descriptor limit as far as allowed.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  std::string fsopts =
      "-osubtype=cachefs,fsname=" +
      EscapeOption(cli.fsname != nullptr ? cli.fsname
                                          : config.origin.Describe());
  if (cli.allow_other) {
    // The kernel reuses names and attributes one user looked up for every
    // other user without asking cachefs; only its own mode checks keep
    // users apart as a local filesystem does.
    fsopts += ",allow_other,default_permissions";
  }
  fuse_opt_add_arg(&args, fsopts.c_str());
  FuseContext ctx;
  const fuse_lowlevel_ops& ops = CacheFsOperations();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), &ctx);
  if (se == nullptr) return 1;  // libfuse said why (e.g. an unknown option)
  ctx.session = se;
  int ret = 1;
  if (ProbeOrigin(config) && ProbeCache(config) &&
      fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, cmd.mountpoint) == 0) {
      Readiness readiness(cmd.foreground);
      ret = Serve(se, &ctx, config, cmd, readiness);
      fuse_session_unmount(se);
      readiness.Report(ret == 0 ? 0 : 1);  // if it failed before serving
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  free(cmd.mountpoint);
  fuse_opt_free_args(&args);
  return ret;
}

}  // namespace
}  // namespace cachefs

int main(int argc, char* argv[]) { return cachefs::Main(argc, argv); }
