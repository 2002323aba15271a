// Tests of the integration fixtures themselves: a real sshd and sshfs end to
// end, the same through the latency proxy, FuseDaemon with sshfs as the FUSE
// program, RunProgram's timeout, and that nothing (mount, process) is left
// once the fixtures are gone.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/fixtures/environment.h"
#include "tests/integration/fixtures/files.h"
#include "tests/integration/fixtures/fuse_daemon.h"
#include "tests/integration/fixtures/latency_proxy.h"
#include "tests/integration/fixtures/mounts.h"
#include "tests/integration/fixtures/process.h"
#include "tests/integration/fixtures/ssh_server.h"
#include "tests/integration/fixtures/sshfs_mount.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

constexpr size_t kBigFile = 3 << 20;

bool StillMountedUnder(const std::string& dir) {
  std::string root = CanonicalPath(dir);
  for (const MountEntry& e : ReadMountInfo()) {
    if (absl::StartsWith(e.mount_point, root)) return true;
  }
  return false;
}

// A served directory, an sshd and (after MountIt) an sshfs mount of the
// directory. Members are destroyed in reverse: mount, server, directories.
class SshfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CACHEFS_REQUIRE(SshfsPrerequisites());
    absl::StatusOr<std::unique_ptr<SshServer>> server = SshServer::Start();
    ASSERT_OK(server);
    server_ = *std::move(server);
  }

  void MountIt(int port = 0) {
    SshfsOptions options;
    options.port = port;
    absl::StatusOr<std::unique_ptr<SshfsMount>> mount =
        SshfsMount::Mount(*server_, served_.path(), mnt(), options);
    ASSERT_OK(mount);
    mount_ = *std::move(mount);
  }

  std::string served(const std::string& name) const {
    return absl::StrCat(served_.path(), "/", name);
  }
  std::string mnt() const { return absl::StrCat(scratch_.path(), "/mnt"); }
  std::string mounted(const std::string& name) const {
    return absl::StrCat(mnt(), "/", name);
  }

  TempDir scratch_;
  TempDir served_;
  std::unique_ptr<SshServer> server_;
  std::unique_ptr<SshfsMount> mount_;
};

TEST_F(SshfsTest, ReadsWhatTheServerHas) {
  ASSERT_OK(WriteWholeFile(served("small"), Pattern(4096 + 17, 1)));
  ASSERT_OK(WriteWholeFile(served("big"), Pattern(kBigFile, 2)));
  MountIt();
  ASSERT_NO_FATAL_FAILURE();
  std::optional<MountEntry> e = FindMount(mnt());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->fs_type, kSshfsFstype);

  EXPECT_TRUE(
      SameBytes(ReadWholeFile(mounted("small")), Pattern(4096 + 17, 1)));
  EXPECT_TRUE(SameBytes(ReadWholeFile(mounted("big")), Pattern(kBigFile, 2)));
}

TEST_F(SshfsTest, WritesReachTheServer) {
  MountIt();
  ASSERT_NO_FATAL_FAILURE();
  ASSERT_OK(WriteWholeFile(mounted("written"), Pattern(100000, 3)));
  EXPECT_TRUE(SameBytes(ReadWholeFile(served("written")), Pattern(100000, 3)));
}

// No attribute, entry or directory caching: what changes on the server
// shows at once, as cachefs's coherency checks need.
TEST_F(SshfsTest, CachesNothing) {
  ASSERT_OK(WriteWholeFile(served("f"), "one"));
  MountIt();
  ASSERT_NO_FATAL_FAILURE();
  struct stat st;
  ASSERT_EQ(stat(mounted("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 3);
  ASSERT_NE(stat(mounted("later").c_str(), &st), 0);
  ASSERT_TRUE(std::filesystem::is_empty(mnt()) == false);

  ASSERT_OK(WriteWholeFile(served("f"), "three"));
  ASSERT_OK(WriteWholeFile(served("later"), "x"));
  ASSERT_EQ(stat(mounted("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(stat(mounted("later").c_str(), &st), 0);
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(mnt())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 2u);
  EXPECT_TRUE(SameBytes(ReadWholeFile(mounted("f")), "three"));
}

TEST_F(SshfsTest, ThroughLatencyProxy) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-latency-proxy"));
  absl::StatusOr<std::unique_ptr<LatencyProxy>> proxy =
      LatencyProxy::Start(server_->port(), absl::Milliseconds(5));
  ASSERT_OK(proxy);
  ASSERT_OK(WriteWholeFile(served("big"), Pattern(kBigFile, 4)));
  MountIt((*proxy)->port());
  ASSERT_NO_FATAL_FAILURE();

  // A stat is one SFTP round trip: at least 5 ms each way. The second stat
  // of the same name shows nothing is cached.
  ASSERT_OK(WriteWholeFile(served("new"), "n"));
  for (int i = 0; i < 3; ++i) {
    struct stat st;
    absl::Time start = absl::Now();
    ASSERT_EQ(stat(mounted("new").c_str(), &st), 0);
    absl::Duration took = absl::Now() - start;
    EXPECT_GE(took, absl::Milliseconds(10)) << "stat " << i;
    EXPECT_LT(took, absl::Seconds(1)) << "stat " << i;
  }
  EXPECT_TRUE(SameBytes(ReadWholeFile(mounted("big")), Pattern(kBigFile, 4)));
  mount_.reset();  // before the proxy it goes through
}

TEST_F(SshfsTest, UnmountReportsSshfsExit) {
  MountIt();
  ASSERT_NO_FATAL_FAILURE();
  pid_t pid = mount_->pid();
  EXPECT_OK(mount_->Unmount());
  EXPECT_FALSE(FindMount(mnt()).has_value());
  EXPECT_FALSE(LiveProcess(pid).has_value());
}

// sshfs is a FUSE program like cachefs, so it exercises FuseDaemon.
TEST_F(SshfsTest, FuseDaemonRunsSshfs) {
  ASSERT_OK(WriteWholeFile(served("f"), Pattern(5000, 5)));
  ASSERT_EQ(mkdir(mnt().c_str(), 0755), 0);
  absl::StatusOr<std::unique_ptr<FuseDaemon>> daemon = FuseDaemon::Start(
      SshfsArgv(*server_, served_.path(), mnt()), mnt(), kSshfsFstype);
  ASSERT_OK(daemon);
  FuseDaemon& d = **daemon;
  EXPECT_TRUE(d.IsMounted());
  EXPECT_TRUE(SameBytes(ReadWholeFile(mounted("f")), Pattern(5000, 5)));

  absl::StatusOr<int> code = d.Unmount();
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0) << d.ReadStderr();
  EXPECT_FALSE(d.IsMounted());
  EXPECT_FALSE(LiveProcess(d.pid()).has_value());
}

TEST_F(SshfsTest, FuseDaemonKill9LeavesNoMount) {
  ASSERT_EQ(mkdir(mnt().c_str(), 0755), 0);
  absl::StatusOr<std::unique_ptr<FuseDaemon>> daemon = FuseDaemon::Start(
      SshfsArgv(*server_, served_.path(), mnt()), mnt(), kSshfsFstype);
  ASSERT_OK(daemon);
  std::vector<ProcessId> procs = Descendants((*daemon)->pid());
  procs.push_back(*LiveProcess((*daemon)->pid()));
  EXPECT_OK((*daemon)->Kill9());
  EXPECT_FALSE((*daemon)->IsMounted());
  EXPECT_FALSE(LiveProcess((*daemon)->pid()).has_value());
  daemon->reset();
  for (const ProcessId& p : procs) EXPECT_TRUE(ProcessGone(p)) << p.pid;
}

TEST_F(SshfsTest, FuseDaemonReportsEarlyExit) {
  ASSERT_EQ(mkdir(mnt().c_str(), 0755), 0);
  SshfsOptions options;
  options.port = 1;  // nothing listens there: ssh fails, sshfs exits
  absl::StatusOr<std::unique_ptr<FuseDaemon>> daemon = FuseDaemon::Start(
      SshfsArgv(*server_, served_.path(), mnt(), options), mnt(), kSshfsFstype);
  ASSERT_FALSE(daemon.ok());
  EXPECT_TRUE(absl::StrContains(daemon.status().message(), "exited with"))
      << daemon.status();
  EXPECT_TRUE(absl::StrContains(daemon.status().message(), "refused"))
      << daemon.status();
  EXPECT_FALSE(FindMount(mnt()).has_value());
}

// The safety net before removing a directory that may hold mounts.
TEST_F(SshfsTest, LazyUnmountAllUnderDetachesMounts) {
  ASSERT_EQ(mkdir(mnt().c_str(), 0755), 0);
  absl::StatusOr<std::unique_ptr<FuseDaemon>> daemon = FuseDaemon::Start(
      SshfsArgv(*server_, served_.path(), mnt()), mnt(), kSshfsFstype);
  ASSERT_OK(daemon);
  LazyUnmountAllUnder(scratch_.path());
  EXPECT_FALSE(StillMountedUnder(scratch_.path()));
  absl::StatusOr<int> code = (*daemon)->WaitForExit(absl::Seconds(5));
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0);
}

// The fixtures leave nothing behind, even with a file held open in the
// mount (as a failing test might), which makes a plain unmount fail.
TEST_F(SshfsTest, NothingLeftBehind) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-latency-proxy"));
  ASSERT_OK(WriteWholeFile(served("f"), "data"));
  auto proxy = LatencyProxy::Start(server_->port(), absl::Milliseconds(1));
  ASSERT_OK(proxy);
  MountIt((*proxy)->port());
  ASSERT_NO_FATAL_FAILURE();
  std::vector<ProcessId> procs = Descendants(getpid());
  std::string names;
  for (const ProcessId& p : procs) {
    names += ReadFileOrEmpty(absl::StrCat("/proc/", p.pid, "/comm"));
  }
  // sshd and its session, the proxy, sshfs and its ssh.
  EXPECT_GE(procs.size(), 5u) << names;
  std::ifstream held(mounted("f"));
  ASSERT_TRUE(held.good());

  mount_.reset();
  proxy->reset();
  server_.reset();
  EXPECT_FALSE(StillMountedUnder(scratch_.path()));
  EXPECT_FALSE(std::filesystem::exists(mnt()));
  for (const ProcessId& p : procs) EXPECT_TRUE(ProcessGone(p)) << p.pid;
  EXPECT_TRUE(Descendants(getpid()).empty());
}

// tools/sshfs-export.sh, as the README demo and the benchmark use it.
class SshfsExportScriptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CACHEFS_REQUIRE(SshfsPrerequisites());
    CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-latency-proxy"));
  }
  // `stop` runs whatever happened, like the fixtures' destructors.
  void TearDown() override {
    if (!started_) return;
    absl::StatusOr<ProgramResult> r = Script({"stop", state()});
    EXPECT_OK(r);
  }

  absl::StatusOr<ProgramResult> Script(std::vector<std::string> args) {
    args.insert(args.begin(), kScript);
    return RunProgram(args, absl::Seconds(30));
  }
  std::string state() const { return scratch_.path() + "/state"; }
  std::string mnt() const { return scratch_.path() + "/mnt"; }

  static constexpr char kScript[] = CACHEFS_SOURCE_DIR "/tools/sshfs-export.sh";
  TempDir scratch_;
  TempDir served_;
  bool started_ = false;
};

TEST_F(SshfsExportScriptTest, StartMountStop) {
  ASSERT_OK(WriteWholeFile(served_.path() + "/f", Pattern(70000, 6)));
  started_ = true;
  absl::StatusOr<ProgramResult> r =
      Script({"start", served_.path(), state(), "--delay-ms", "2"});
  ASSERT_OK(r);
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  std::string want_export =
      absl::StrCat("export=127.0.0.1:", CanonicalPath(served_.path()), " ");
  EXPECT_TRUE(absl::StartsWith(r->stdout_text, want_export)) << r->stdout_text;
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "key=")) << r->stdout_text;

  r = Script({"mount", state(), mnt()});
  ASSERT_OK(r);
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  std::optional<MountEntry> e = FindMount(mnt());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->fs_type, kSshfsFstype);
  EXPECT_TRUE(SameBytes(ReadWholeFile(mnt() + "/f"), Pattern(70000, 6)));
  int held = open((mnt() + "/f").c_str(), O_RDONLY | O_CLOEXEC);  // busy
  ASSERT_GE(held, 0);

  r = Script({"stop", state()});
  close(held);
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  EXPECT_FALSE(StillMountedUnder(scratch_.path()));
  EXPECT_FALSE(std::filesystem::exists(mnt()));
  for (const char* name : {"/sshd.pid", "/proxy.pid", "/mounts"}) {
    EXPECT_FALSE(std::filesystem::exists(state() + name)) << name;
  }
}

// A start that fails half way (no proxy program) leaves nothing running.
TEST_F(SshfsExportScriptTest, FailedStartCleansUp) {
  started_ = true;
  setenv("CACHEFS_BIN_DIR", "/nonexistent", 1);
  absl::StatusOr<ProgramResult> r =
      Script({"start", served_.path(), state(), "--delay-ms", "2"});
  unsetenv("CACHEFS_BIN_DIR");
  ASSERT_OK(r);
  EXPECT_NE(r->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r->stderr_text, "not built")) << r->stderr_text;
  EXPECT_FALSE(std::filesystem::exists(state() + "/sshd.pid"));
}

// An echo server on a loopback port for the proxy tests: each connection
// gets back what it sends until it half-closes.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    for (std::thread& t : workers_) t.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  void AcceptLoop() {
    int c;
    while ((c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
      workers_.emplace_back([c] {
        char buf[65536];
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0) {
          if (send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        }
        close(c);
      });
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `data` (then half-closes) while reading the echo to end of file.
std::string EchoThrough(int port, const std::string& data) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return "connect failed";
  std::thread writer([fd, &data] {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n =
          send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
  });
  std::string got;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) got.append(buf, n);
  writer.join();
  close(fd);
  return got;
}

TEST(LatencyProxyTest, DelaysConcurrentConnectionsAndKeepsBytes) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-latency-proxy"));
  EchoServer echo;
  absl::StatusOr<std::unique_ptr<LatencyProxy>> proxy =
      LatencyProxy::Start(echo.port(), absl::Milliseconds(20));
  ASSERT_OK(proxy);

  // One byte there and back: 20 ms each way.
  absl::Time start = absl::Now();
  EXPECT_EQ(EchoThrough((*proxy)->port(), "x"), "x");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));

  // Four connections at once, 1 MiB each, all intact; the delay is paid
  // per chunk in flight, not per chunk in turn.
  start = absl::Now();
  std::vector<std::string> got(4);
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      got[i] = EchoThrough((*proxy)->port(), Pattern(1 << 20, 10 + i));
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(SameBytes(got[i], Pattern(1 << 20, 10 + i))) << i;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));

  // SIGTERM with a connection open: it is closed, and the exit is clean.
  int idle = ConnectLoopback((*proxy)->port());
  ASSERT_GE(idle, 0);
  EXPECT_EQ((*proxy)->Stop(), 0) << (*proxy)->ReadStderr();
  char c;
  EXPECT_LE(read(idle, &c, 1), 0);
  close(idle);
}

TEST(LatencyProxyTest, RefusesNonLoopbackAndHelps) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-latency-proxy"));
  std::string proxy = BinPath("cachefs-latency-proxy");
  absl::StatusOr<ProgramResult> r = RunProgram(
      {proxy, "--listen", "127.0.0.1:0", "--connect", "192.0.2.1:22"},
      absl::Seconds(10));
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r->stderr_text, "not a loopback address"))
      << r->stderr_text;

  r = RunProgram({proxy, "--help"}, absl::Seconds(10));
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "--delay-ms"))
      << r->stdout_text;
}

TEST(RunProgramTest, CollectsOutputAndExitCode) {
  absl::StatusOr<ProgramResult> r = RunProgram(
      {"sh", "-c", "echo out; echo err >&2; exit 3"}, absl::Seconds(10));
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
}

TEST(RunProgramTest, TimeoutKillsTheProgramAndItsChildren) {
  absl::Time start = absl::Now();
  absl::StatusOr<ProgramResult> r = RunProgram(
      {"sh", "-c", "sleep 100 & sleep 100"}, absl::Milliseconds(300));
  ASSERT_OK(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + SIGKILL);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(Descendants(getpid()).empty());

  r = RunProgram({"sleep", "100"}, absl::Milliseconds(200));
  ASSERT_OK(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_TRUE(Descendants(getpid()).empty());
}

TEST(RunProgramTest, MissingProgramIsAnError) {
  absl::StatusOr<ProgramResult> r =
      RunProgram({"/no/such/program"}, absl::Seconds(10));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "No such file"))
      << r.status();
}

TEST(EnvironmentTest, InCiFollowsTheCiVariable) {
  const char* old = std::getenv("CI");
  std::string saved = old != nullptr ? old : "";
  setenv("CI", "true", 1);
  EXPECT_TRUE(InCi());
  setenv("CI", "false", 1);
  EXPECT_FALSE(InCi());
  if (old != nullptr) {
    setenv("CI", saved.c_str(), 1);
  } else {
    unsetenv("CI");
  }
}

}  // namespace
}  // namespace cachefs::testing
