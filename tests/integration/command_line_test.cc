// The daemon's and cachefs-ctl's command lines: bad input gets one clear
// line and a non-zero exit with nothing mounted; --help tells every option;
// mount -t fuse.cachefs works; cachefs-ctl finds the daemon from the mount
// point and says so when it cannot.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cachefs/control_socket.h"
#include "io/json_string.h"
#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/mounts.h"

namespace cachefs::testing {
namespace {

class CommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CACHEFS_REQUIRE(FusePrerequisites());
    CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs"));
    origin_ = dir_.path() + "/origin";
    mnt_ = dir_.path() + "/mnt";
    ASSERT_EQ(mkdir(origin_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0);
    std::ofstream(origin_ + "/file") << "data";
  }
  // Runs cachefs with `args` and expects a one-line error containing
  // `expected`, a non-zero exit, and no mount.
  void ExpectRejected(const std::vector<std::string>& args,
                      const std::string& expected) {
    std::vector<std::string> argv = {BinPath("cachefs")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = RunProgram(argv, absl::Seconds(20));
    ASSERT_OK(result);
    EXPECT_NE(result->exit_code, 0) << result->stderr_text;
    EXPECT_NE(result->stderr_text.find(expected), std::string::npos)
        << "stderr: " << result->stderr_text;
    std::vector<std::string> lines = absl::StrSplit(
        result->stderr_text, '\n', absl::SkipEmpty());
    EXPECT_EQ(lines.size(), 1u) << result->stderr_text;
    if (FindMount(mnt_).has_value()) {
      ADD_FAILURE() << "left a mount at " << mnt_;
      FuseUnmount(mnt_, /*lazy=*/true).IgnoreError();
    }
  }
  std::string Cache() const { return "cache=" + dir_.path() + "/cache"; }

  TempDir dir_;
  std::string origin_;
  std::string mnt_;
};

TEST_F(CommandLineTest, UnknownOption) {
  ExpectRejected({origin_, mnt_, "-o", Cache() + ",no_such_option"},
                 "no_such_option");
}

TEST_F(CommandLineTest, OfflineIsAutoOrNever) {
  ExpectRejected({origin_, mnt_, "-o", Cache() + ",offline=sometimes"},
                 "-o offline= must be auto or never");
  ExpectRejected({origin_, mnt_, "-o", Cache() + ",origin_timeout=0"},
                 "-o origin_timeout= must be above 0");
}

TEST_F(CommandLineTest, MissingCacheOption) {
  ExpectRejected({origin_, mnt_}, "cache=DIR");
}

TEST_F(CommandLineTest, MissingOrigin) {
  ExpectRejected({dir_.path() + "/nope", mnt_, "-o", Cache()}, "nope");
}

TEST_F(CommandLineTest, OriginIsNotADirectory) {
  ExpectRejected({origin_ + "/file", mnt_, "-o", Cache()}, "not a directory");
}

TEST_F(CommandLineTest, CacheDirectoryCannotBeCreated) {
  ExpectRejected({origin_, mnt_, "-o", "cache=" + origin_ + "/../mnt/x/y"},
                 "inside the mount point");
  std::ofstream(dir_.path() + "/plain") << "x";
  ExpectRejected({origin_, mnt_, "-o", "cache=" + dir_.path() + "/plain/c"},
                 "plain");
}

TEST_F(CommandLineTest, CacheDirectoryInsideTheOrigin) {
  ExpectRejected({origin_, mnt_, "-o", "cache=" + origin_ + "/.cache"},
                 "inside the origin");
  struct stat st;
  EXPECT_NE(stat((origin_ + "/.cache").c_str(), &st), 0)
      << "created a directory in the origin";
}

TEST_F(CommandLineTest, CacheFilesystemWithoutUserXattrs) {
  CACHEFS_REQUIRE(RootPrerequisite());
  std::string ramfs = dir_.path() + "/ramfs";
  ASSERT_EQ(mkdir(ramfs.c_str(), 0700), 0);
  ASSERT_EQ(mount("ramfs", ramfs.c_str(), "ramfs", 0, nullptr), 0);
  ExpectRejected({origin_, mnt_, "-o", "cache=" + ramfs + "/c"},
                 "extended attributes");
  umount2(ramfs.c_str(), MNT_DETACH);
}

TEST_F(CommandLineTest, CountsAreWholeNumbersInRange) {
  ExpectRejected({origin_, mnt_, "-o", Cache() + ",readahead=-1"},
                 "-o readahead=-1: must be a whole number from 0 to");
  ExpectRejected({origin_, mnt_, "-o", Cache() + ",origin_threads=0"},
                 "origin_threads=0: must be a whole number from 1 to");
  ExpectRejected({origin_, mnt_, "-o", Cache() + ",buffers=lots"},
                 "buffers=lots");
  ExpectRejected({origin_, mnt_, "-o", Cache() + ",origin_descriptors=99999999999"},
                 "origin_descriptors=99999999999");
}

TEST_F(CommandLineTest, MountPointIsARegularFile) {
  std::ofstream(dir_.path() + "/plain") << "x";
  ExpectRejected({origin_, dir_.path() + "/plain", "-o", Cache()},
                 "is not a directory");
}

TEST_F(CommandLineTest, MountPointWithEntriesNeedsNonempty) {
  std::ofstream(mnt_ + "/hidden") << "x";
  ExpectRejected({origin_, mnt_, "-o", Cache()},
                 "is not empty: 1 entry would be hidden");
  auto daemon = FuseDaemon::Start(
      {BinPath("cachefs"), origin_, mnt_, "-f", "-o", Cache() + ",nonempty"},
      mnt_, "fuse.cachefs");
  ASSERT_OK(daemon);
  struct stat st;
  EXPECT_EQ(stat((mnt_ + "/file").c_str(), &st), 0);
  EXPECT_NE(stat((mnt_ + "/hidden").c_str(), &st), 0);
}

TEST_F(CommandLineTest, ReadOnlyWithItsOwnSourceNameAndQuietStart) {
  auto daemon = FuseDaemon::Start({BinPath("cachefs"), origin_, mnt_, "-f",
                                   "-o", Cache() + ",ro,fsname=myexport"},
                                  mnt_, "fuse.cachefs");
  ASSERT_OK(daemon);
  auto entry = FindMount(mnt_);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->source, "myexport");
  std::string data;
  std::ifstream(mnt_ + "/file") >> data;
  EXPECT_EQ(data, "data");
  EXPECT_LT(open((mnt_ + "/new").c_str(), O_CREAT | O_WRONLY, 0644), 0);
  EXPECT_EQ(errno, EROFS);
  ASSERT_OK((*daemon)->Unmount());
  // Nothing from libfuse about thread counts nobody gave.
  EXPECT_EQ((*daemon)->ReadStderr().find("Ignoring"), std::string::npos)
      << (*daemon)->ReadStderr();
}

TEST_F(CommandLineTest, ASecondDaemonForTheSameOriginAndCacheIsRefused) {
  auto first = FuseDaemon::Start(
      {BinPath("cachefs"), origin_, mnt_, "-f", "-o", Cache()}, mnt_,
      "fuse.cachefs");
  ASSERT_OK(first);
  const std::string mnt2 = dir_.path() + "/mnt2";
  ASSERT_EQ(mkdir(mnt2.c_str(), 0755), 0);
  auto result = RunProgram({BinPath("cachefs"), origin_, mnt2, "-o", Cache()},
                           absl::Seconds(20));
  ASSERT_OK(result);
  EXPECT_NE(result->exit_code, 0);
  EXPECT_NE(result->stderr_text.find("already in use for this origin"),
            std::string::npos)
      << result->stderr_text;
  if (FindMount(mnt2).has_value()) {
    ADD_FAILURE() << "left a mount at " << mnt2;
    FuseUnmount(mnt2, /*lazy=*/true).IgnoreError();
  }
  // Another origin may share the cache directory.
  const std::string origin2 = dir_.path() + "/origin2";
  ASSERT_EQ(mkdir(origin2.c_str(), 0755), 0);
  std::ofstream(origin2 + "/other") << "more";
  auto second = FuseDaemon::Start(
      {BinPath("cachefs"), origin2, mnt2, "-f", "-o", Cache()}, mnt2,
      "fuse.cachefs");
  ASSERT_OK(second);
  std::string data;
  std::ifstream(mnt2 + "/other") >> data;
  EXPECT_EQ(data, "more");
  EXPECT_TRUE((*first)->IsMounted());
}

TEST_F(CommandLineTest, MountPointBusy) {
  auto daemon = FuseDaemon::Start(
      {BinPath("cachefs"), origin_, mnt_, "-f", "-o", Cache()}, mnt_,
      "fuse.cachefs");
  ASSERT_OK(daemon);
  auto result = RunProgram(
      {BinPath("cachefs"), origin_, mnt_, "-o", Cache()}, absl::Seconds(20));
  ASSERT_OK(result);
  EXPECT_NE(result->exit_code, 0);
  EXPECT_NE(result->stderr_text.find("busy"), std::string::npos)
      << result->stderr_text;
  EXPECT_TRUE((*daemon)->IsMounted());
}

TEST_F(CommandLineTest, HelpListsEveryOptionWithItsDefault) {
  auto result = RunProgram({BinPath("cachefs"), "--help"}, absl::Seconds(10));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 0);
  for (const char* option : {"cache=DIR",
                             "attr_timeout=",
                             "entry_timeout=",
                             "readahead=",
                             "origin_threads=",
                             "buffers=",
                             "dispatcher_threads=",
                             "identity=",
                             "volume=",
                             "no_buffered_fallback",
                             "nocto",
                             "allow_other",
                             "-f",
                             "-o ro",
                             "default_permissions",
                             "fsname=",
                             "nonempty",
                             "origin_timeout=",
                             "offline=auto|never",
                             "Example:"}) {
    EXPECT_NE(result->stdout_text.find(option), std::string::npos) << option;
  }
  auto version =
      RunProgram({BinPath("cachefs"), "--version"}, absl::Seconds(10));
  ASSERT_OK(version);
  EXPECT_EQ(version->exit_code, 0);
  EXPECT_NE(version->stdout_text.find("cachefs"), std::string::npos);
}

// Mounts with mount(8) and checks the mount works, then unmounts.
void MountWithMount8(const std::vector<std::string>& argv,
                     const std::string& mnt) {
  auto result = RunProgram(argv, absl::Seconds(20));
  ASSERT_OK(result);
  ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
  auto mount = FindMount(mnt);
  ASSERT_TRUE(mount.has_value());
  EXPECT_EQ(mount->fs_type, "fuse.cachefs");
  std::string data;
  std::ifstream(mnt + "/file") >> data;
  EXPECT_EQ(data, "data");
  auto unmounted = RunProgram({"umount", mnt}, absl::Seconds(20));
  ASSERT_OK(unmounted);
  EXPECT_EQ(unmounted->exit_code, 0) << unmounted->stderr_text;
  if (FindMount(mnt).has_value()) FuseUnmount(mnt, true).IgnoreError();
}

TEST_F(CommandLineTest, MountTypeFuseWithTheProgramPath) {
  CACHEFS_REQUIRE(RootPrerequisite());
  // The fstab form that needs no installation:
  //   /path/to/cachefs#/origin  /mnt  fuse  cache=/var/cache/cachefs  0 0
  MountWithMount8({"mount", "-t", "fuse", BinPath("cachefs") + "#" + origin_,
                   mnt_, "-o", Cache()},
                  mnt_);
}

TEST_F(CommandLineTest, MountTypeFuseCachefs) {
  CACHEFS_REQUIRE(RootPrerequisite());
  // mount(8) runs mount.fuse3, which runs "cachefs" from a fixed PATH that
  // includes /usr/local/bin, where `cmake --install` puts it. Stand in for
  // the installation unless one is there.
  const std::string installed = "/usr/local/bin/cachefs";
  bool linked = false;
  if (access(installed.c_str(), X_OK) != 0) {
    ASSERT_EQ(symlink(BinPath("cachefs").c_str(), installed.c_str()), 0)
        << strerror(errno);
    linked = true;
  }
  MountWithMount8({"mount", "-t", "fuse.cachefs", origin_, mnt_, "-o", Cache()},
                  mnt_);
  if (linked) unlink(installed.c_str());
}

// `cmake --install` into a prefix of its own: the programs, the mount
// helper (what mount(8) runs for `-t cachefs` and fstab, with the options
// only mount(8) knows left out), manual pages that render, and the
// example unit.
TEST_F(CommandLineTest, AnInstallationMountsAndHasItsManualPages) {
  CACHEFS_REQUIRE(RootPrerequisite());
  const std::string build = BinPath("cachefs").substr(
      0, BinPath("cachefs").rfind("/bin/"));
  const std::string prefix = dir_.path() + "/prefix";
  auto installed = RunProgram({"cmake", "--install", build, "--prefix", prefix},
                              absl::Seconds(60));
  ASSERT_OK(installed);
  ASSERT_EQ(installed->exit_code, 0) << installed->stderr_text;
  for (const char* file :
       {"bin/cachefs", "bin/cachefs-ctl", "sbin/mount.cachefs",
        "share/man/man8/cachefs.8", "share/man/man8/cachefs-ctl.8",
        "share/doc/cachefs/examples/cachefs-example.mount"}) {
    EXPECT_EQ(access((prefix + "/" + file).c_str(), R_OK), 0) << file;
  }
  for (const char* page : {"cachefs.8", "cachefs-ctl.8"}) {
    auto man = RunProgram({"man", "--warnings", "-l",
                           prefix + "/share/man/man8/" + page},
                          absl::Seconds(30));
    ASSERT_OK(man);
    EXPECT_EQ(man->exit_code, 0) << page << ": " << man->stderr_text;
    EXPECT_EQ(man->stderr_text, "") << page;
    EXPECT_NE(man->stdout_text.find("SYNOPSIS"), std::string::npos) << page;
  }
  // As mount(8) calls it for an fstab line "ORIGIN MNT cachefs OPTIONS".
  MountWithMount8({prefix + "/sbin/mount.cachefs", origin_, mnt_, "-o",
                   Cache() + ",_netdev,defaults,noauto,x-systemd.automount"},
                  mnt_);
  // And through mount.fuse3, naming the installed program.
  MountWithMount8({"mount", "-t", "fuse", prefix + "/bin/cachefs#" + origin_,
                   mnt_, "-o", Cache()},
                  mnt_);
}

TEST_F(CommandLineTest, CtlStatsStatusAndItsErrors) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  auto ctl = [](std::vector<std::string> args) {
    args.insert(args.begin(), BinPath("cachefs-ctl"));
    return RunProgram(args, absl::Seconds(10));
  };
  auto not_mounted = ctl({"stats", mnt_});
  ASSERT_OK(not_mounted);
  EXPECT_NE(not_mounted->exit_code, 0);
  EXPECT_NE(not_mounted->stderr_text.find("not a cachefs mount"),
            std::string::npos);
  auto daemon = FuseDaemon::Start(
      {BinPath("cachefs"), origin_, mnt_, "-f", "-o", Cache()}, mnt_,
      "fuse.cachefs");
  ASSERT_OK(daemon);
  auto stats = ctl({"stats", mnt_});
  ASSERT_OK(stats);
  EXPECT_EQ(stats->exit_code, 0) << stats->stderr_text;
  EXPECT_NE(stats->stdout_text.find("bytes_read_from_origin"),
            std::string::npos);
  auto json = ctl({"stats", mnt_, "--json"});
  ASSERT_OK(json);
  for (const char* key :
       {"cookies_acquired", "cookies_relinquished", "cookies_active",
        "lookups_positive", "lookups_negative", "lookups_stale",
        "granules_read_from_cache", "bytes_read_from_cache",
        "bytes_read_from_origin", "bytes_written_to_cache",
        "reads_fully_cached", "dispatch_pooled", "dispatch_inline",
        "invalidations", "cache_io_errors", "nospace", "objects_stored",
        "bytes_stored"}) {
    EXPECT_NE(json->stdout_text.find("\"" + std::string(key) + "\": "),
              std::string::npos)
        << key;
  }
  auto status = ctl({"status", mnt_});
  ASSERT_OK(status);
  EXPECT_EQ(status->exit_code, 0);
  EXPECT_NE(status->stdout_text.find(origin_), std::string::npos);
  EXPECT_NE(status->stdout_text.find("uptime"), std::string::npos);
  EXPECT_NE(status->stdout_text.find("origin state: up since"),
            std::string::npos)
      << status->stdout_text;
  // What this test looked up and listed so far is in the metadata store.
  EXPECT_TRUE(std::regex_search(status->stdout_text,
                                std::regex("metadata: +[1-9][0-9]* names, "
                                           "[0-9]+ listings\n")))
      << status->stdout_text;
  // The socket is the mounting user's alone.
  struct stat sock;
  ASSERT_EQ(stat(ControlSocketPath(mnt_).c_str(), &sock), 0);
  EXPECT_TRUE(S_ISSOCK(sock.st_mode));
  EXPECT_EQ(sock.st_mode & 0777, 0600u);
  EXPECT_EQ(sock.st_uid, getuid());
  // Nothing cached yet: an empty list, not an error.
  auto empty = ctl({"ls", mnt_});
  ASSERT_OK(empty);
  EXPECT_EQ(empty->exit_code, 0) << empty->stderr_text;
  EXPECT_EQ(empty->stdout_text, "");
  auto empty_json = ctl({"ls", mnt_, "--json"});
  ASSERT_OK(empty_json);
  EXPECT_EQ(empty_json->exit_code, 0) << empty_json->stderr_text;
  EXPECT_EQ(empty_json->stdout_text, "[]\n");
  auto bad = ctl({"frobnicate", mnt_});
  ASSERT_OK(bad);
  EXPECT_NE(bad->exit_code, 0);
  // The daemon dies: the mount is dead and ctl says so in one line.
  ASSERT_EQ(kill((*daemon)->pid(), SIGKILL), 0);
  auto gone = ctl({"stats", mnt_});
  ASSERT_OK(gone);
  EXPECT_NE(gone->exit_code, 0);
  EXPECT_NE(gone->stderr_text.find("daemon"), std::string::npos)
      << gone->stderr_text;
}

}  // namespace
}  // namespace cachefs::testing

namespace cachefs::testing {
namespace {

// A syslog daemon of the test's own: a datagram socket at /dev/log, where
// glibc's syslog(3) sends. On a machine whose syslog daemon already has
// /dev/log, that socket is moved aside while the test runs (only under
// CI, on a machine of its own) and put back after.
class SyslogCatcher {
 public:
  ~SyslogCatcher() {
    if (fd_ >= 0) close(fd_);
    if (bound_) unlink(kPath);
    if (moved_) rename(kAside, kPath);
  }

  absl::Status Start() {
    if (access(kPath, F_OK) == 0) {
      if (!InCi()) {
        return absl::FailedPreconditionError(
            "a syslog daemon listens on /dev/log");
      }
      if (rename(kPath, kAside) != 0) {
        return absl::InternalError("cannot move /dev/log aside");
      }
      moved_ = true;
    }
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, kPath);
    if (fd_ < 0 ||
        bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return absl::InternalError(absl::StrCat("cannot bind /dev/log: ",
                                              strerror(errno)));
    }
    bound_ = true;
    chmod(kPath, 0666);
    return absl::OkStatus();
  }

  // The messages received until one contains `until`, or `timeout` passed.
  std::vector<std::string> ReceiveUntil(const std::string& until,
                                        absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      received_.emplace_back(buf, n);
      if (received_.back().find(until) != std::string::npos) break;
    }
    return received_;
  }

 private:
  static constexpr const char* kPath = "/dev/log";
  static constexpr const char* kAside = "/dev/log.cachefs-test";
  int fd_ = -1;
  bool bound_ = false;
  bool moved_ = false;
  std::vector<std::string> received_;
};

// In the background (no -f) stderr is gone: the daemon's lines go to
// syslog as "cachefs[PID]", facility daemon, with the mount point in each.
TEST_F(CommandLineTest, InTheBackgroundItLogsToSyslog) {
  CACHEFS_REQUIRE(RootPrerequisite());
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  SyslogCatcher syslog;
  CACHEFS_REQUIRE(syslog.Start());
  auto started = RunProgram(
      {BinPath("cachefs"), origin_, mnt_, "-o", Cache() + ",log_level=info"},
      absl::Seconds(20));
  ASSERT_OK(started);
  ASSERT_EQ(started->exit_code, 0) << started->stderr_text;
  ASSERT_TRUE(FindMount(mnt_).has_value());
  // Stopped by its pid whatever happens below.
  auto status = RunProgram({BinPath("cachefs-ctl"), "status", mnt_, "--json"},
                           absl::Seconds(10));
  pid_t pid = 0;
  if (status.ok()) {
    auto fields = ParseFlatJsonObject(status->stdout_text);
    if (fields.ok()) {
      for (const auto& [name, value] : *fields) {
        if (name == "pid" && !absl::SimpleAtoi(value, &pid)) pid = 0;
      }
    }
  }
  auto stop = absl::MakeCleanup([&] {
    if (FindMount(mnt_).has_value()) FuseUnmount(mnt_, true).IgnoreError();
    if (pid > 0 && kill(pid, 0) == 0) kill(pid, SIGKILL);
  });
  ASSERT_GT(pid, 0) << (status.ok() ? status->stdout_text : "no status");
  std::string data;
  std::ifstream(mnt_ + "/file") >> data;
  EXPECT_EQ(data, "data");
  ASSERT_OK(FuseUnmount(mnt_, /*lazy=*/false));
  const std::string tag = absl::StrCat("cachefs[", pid, "]: ", mnt_, ": ");
  std::vector<std::string> lines =
      syslog.ReceiveUntil(tag + "unmounted", absl::Seconds(10));
  // <PRI> is facility * 8 + severity: daemon (3), info (6).
  const std::string info = absl::StrCat("<", LOG_DAEMON | LOG_INFO, ">");
  bool serving = false;
  bool unmounted = false;
  for (const std::string& line : lines) {
    // Daemons of tests running beside this one may log here too.
    if (line.find(absl::StrCat("cachefs[", pid, "]")) == std::string::npos) {
      continue;
    }
    EXPECT_NE(line.find(tag), std::string::npos) << line;
    EXPECT_EQ(line.rfind(info, 0), 0u) << line;
    serving |= line.find(tag + "serving " + origin_) != std::string::npos;
    unmounted |= line.find(tag + "unmounted") != std::string::npos;
  }
  EXPECT_TRUE(serving) << absl::StrJoin(lines, "\n");
  EXPECT_TRUE(unmounted) << absl::StrJoin(lines, "\n");
  for (int i = 0; i < 50 && kill(pid, 0) == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_NE(kill(pid, 0), 0) << "the daemon did not exit after its unmount";
}

}  // namespace
}  // namespace cachefs::testing
