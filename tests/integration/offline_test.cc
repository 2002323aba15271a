// An origin that stops answering: its server stopped with SIGSTOP (the
// SSHFS client under the origin directory, or nfs-ganesha). What a user of
// a laptop with a far home directory checks: a file that was cached reads
// byte for byte, on a descriptor held open and on a new open, within the
// origin timeout; data never fetched and names never seen fail at once
// with EIO; changes fail with EROFS and reach nothing; once the server
// answers again, the mount is live by itself and a change made on the
// server meanwhile is seen at the next open, with nothing cached lost.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/environment.h"
#include "tests/integration/fixtures/nfs_server.h"
#include "tests/integration/fixtures/process.h"
#include "tests/integration/fixtures/sshfs_mount.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kGranule = 256 * 1024;
constexpr int kTimeoutSeconds = 2;

// The server stopped with SIGSTOP until Resume (or the end of the scope).
// A watchdog resumes it after a minute, so that a request that waits for
// the stopped server fails the test instead of hanging it.
class StoppedServer {
 public:
  explicit StoppedServer(pid_t pid) : pid_(pid) {
    EXPECT_EQ(kill(pid_, SIGSTOP), 0) << strerror(errno);
    watchdog_ = std::thread([this] {
      if (!resumed_.WaitForNotificationWithTimeout(absl::Seconds(60))) {
        fired_ = true;
        kill(pid_, SIGCONT);
      }
    });
  }
  ~StoppedServer() { Resume(); }
  void Resume() {
    if (!watchdog_.joinable()) return;
    kill(pid_, SIGCONT);
    resumed_.Notify();
    watchdog_.join();
    EXPECT_FALSE(fired_.load())
        << "something waited for the stopped server until the watchdog "
           "resumed it";
  }

 private:
  const pid_t pid_;
  absl::Notification resumed_;
  std::atomic<bool> fired_{false};
  std::thread watchdog_;
};

class OfflineTest : public CachefsMountTest {
 protected:
  // The process whose stop makes the origin hang.
  pid_t ServerPid() const {
    return nfs_ != nullptr ? nfs_->pid() : sshfs_->pid();
  }
  // What `ls -lR` shows of the mounted tree below `dir`: each name's
  // type, size and symlink target, sorted; "error ..." for what fails.
  std::vector<std::string> Tree(const std::string& dir = "") {
    std::vector<std::string> out;
    const std::string path = dir.empty() ? mnt_.path() : MountedPath(dir);
    DIR* d = opendir(path.c_str());
    if (d == nullptr) return {"error opendir " + dir + ": " + strerror(errno)};
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
    for (const std::string& name : names) {
      const std::string rel = dir.empty() ? name : dir + "/" + name;
      struct stat st;
      if (lstat(MountedPath(rel).c_str(), &st) != 0) {
        out.push_back("error lstat " + rel + ": " + strerror(errno));
        continue;
      }
      std::string line = absl::StrCat(rel, " mode ", st.st_mode & S_IFMT);
      if (S_ISREG(st.st_mode)) absl::StrAppend(&line, " size ", st.st_size);
      if (S_ISLNK(st.st_mode)) {
        char target[256] = {};
        if (readlink(MountedPath(rel).c_str(), target, sizeof(target) - 1) <
            0) {
          absl::StrAppend(&line, " readlink: ", strerror(errno));
        } else {
          absl::StrAppend(&line, " -> ", target);
        }
      }
      out.push_back(line);
      if (S_ISDIR(st.st_mode)) {
        std::vector<std::string> below = Tree(rel);
        out.insert(out.end(), below.begin(), below.end());
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // open(2) of the mounted `name`; the errno, or 0 (closing it).
  int OpenError(const std::string& name, int flags) {
    const int fd = open(MountedPath(name).c_str(), flags);
    if (fd < 0) return errno;
    close(fd);
    return 0;
  }
  // The errno of open(2) and read(2) of the mounted `name`, or 0.
  int ReadError(const std::string& name) {
    const int fd = open(MountedPath(name).c_str(), O_RDONLY);
    if (fd < 0) return errno;
    char buf[64];
    const int err = read(fd, buf, sizeof(buf)) < 0 ? errno : 0;
    close(fd);
    return err;
  }
};

TEST_P(OfflineTest, AStoppedServerLeavesCachedFilesReadableAndRefusesTheRest) {
  const std::string big = RandomData(3 * kGranule + 17, 1);
  WriteServed("big", big);
  WriteServed("small", "small file, cached");
  WriteServed("never", "never read while the server answered");
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  ASSERT_EQ(ReadMounted("big"), big);
  ASSERT_EQ(ReadMounted("small"), "small file, cached");
  const int held = open(MountedPath("big").c_str(), O_RDONLY);
  ASSERT_GE(held, 0) << strerror(errno);
  absl::Cleanup close_held = [held] { close(held); };
  const uint64_t fetched = Stats()["bytes_read_from_origin"];
  ASSERT_TRUE(OriginUp());

  StoppedServer stopped(ServerPid());
  // Past the attribute timeout the kernel asks before it reads: that ask
  // may wait for the origin timeout, once.
  absl::SleepFor(absl::Seconds(1.5));
  const absl::Time start = absl::Now();
  std::string got(big.size(), '\0');
  ASSERT_EQ(pread(held, got.data(), got.size(), 0),
            static_cast<ssize_t>(big.size()))
      << strerror(errno);
  EXPECT_EQ(got, big);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2 * kTimeoutSeconds + 2));
  // The origin is down now: nothing else waits for it.
  const absl::Time down = absl::Now();
  EXPECT_EQ(ReadMounted("small"), "small file, cached");
  EXPECT_EQ(ReadMounted("big"), big);
  EXPECT_EQ(OpenError("never", O_RDONLY), EIO);
  EXPECT_EQ(OpenError("small", O_WRONLY), EROFS);
  // A change of a known name is refused as on a read-only filesystem; a
  // new name is refused by its lookup, which cannot be answered.
  EXPECT_NE(unlink(MountedPath("small").c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(rename(MountedPath("small").c_str(), MountedPath("big").c_str()),
            0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(mkdir(MountedPath("dir").c_str(), 0755), 0);
  EXPECT_EQ(errno, EIO);
  EXPECT_LT(absl::Now() - down, absl::Seconds(kTimeoutSeconds));
  EXPECT_FALSE(OriginUp());
  std::map<std::string, uint64_t> stats = Stats();
  EXPECT_GE(stats["origin_state_changes"], 1u);
  EXPECT_GE(stats["origin_timeouts"], 1u);
  EXPECT_GT(stats["offline_reads"], 0u);
  EXPECT_GE(stats["offline_refusals"], 3u);
  EXPECT_EQ(stats["bytes_read_from_origin"], fetched);
  // Changed on the server while cachefs could not see it.
  WriteServed("small", "changed on the server");

  stopped.Resume();
  EXPECT_TRUE(OriginComesUp());
  EXPECT_EQ(ReadMounted("small"), "changed on the server");
  EXPECT_EQ(ReadMounted("never"), "never read while the server answered");
  EXPECT_EQ(ReadMounted("big"), big);
  EXPECT_EQ(ReadServed("small"), "changed on the server");
  EXPECT_EQ(access(ServedPath("dir").c_str(), F_OK), -1);
  // Nothing cached was dropped for the server's silence: the big file
  // was not fetched again.
  EXPECT_LT(Stats()["bytes_read_from_origin"], fetched + big.size());
}

TEST_P(OfflineTest, WithOfflineNeverRequestsFailWithinTheTimeout) {
  WriteServed("small", "small file, cached");
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds, ",offline=never"));
  ASSERT_EQ(ReadMounted("small"), "small file, cached");
  StoppedServer stopped(ServerPid());
  absl::SleepFor(absl::Seconds(1.5));  // past the attribute timeout
  const absl::Time start = absl::Now();
  const int err = OpenError("small", O_RDONLY);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3 * kTimeoutSeconds + 2));
  EXPECT_TRUE(err == ETIMEDOUT || err == EIO || err == ENOTCONN)
      << strerror(err);
  stopped.Resume();
  EXPECT_TRUE(Eventually([&] { return OpenError("small", O_RDONLY) == 0; },
                         absl::Seconds(20), absl::Milliseconds(200)));
  EXPECT_EQ(ReadMounted("small"), "small file, cached");
}

TEST_P(OfflineTest,
       TheTreeSeenBeforeListsWhileTheServerIsStoppedAfterARemount) {
  ASSERT_EQ(mkdir(ServedPath("dir").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(ServedPath("dir/sub").c_str(), 0755), 0);
  WriteServed("dir/sub/one", "1");
  WriteServed("dir/two", "22");
  WriteServed("top", "333");
  ASSERT_EQ(symlink("two", ServedPath("dir/link").c_str()), 0);
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  const std::vector<std::string> seen = Tree();
  ASSERT_EQ(seen.size(), 6u) << absl::StrJoin(seen, "\n");
  for (const std::string& line : seen) {
    ASSERT_EQ(line.find("error"), std::string::npos) << line;
  }
  // What was listed and looked up outlives the mount.
  Unmount();
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));

  StoppedServer stopped(ServerPid());
  EXPECT_EQ(Tree(), seen);
  EXPECT_FALSE(OriginUp());
  // Made on the server while it was stopped: listed once it answers.
  WriteServed("dir/new", "made while stopped");
  stopped.Resume();
  EXPECT_TRUE(OriginComesUp());
  std::vector<std::string> after = Tree();
  EXPECT_EQ(after.size(), seen.size() + 1) << absl::StrJoin(after, "\n");
}

TEST_P(OfflineTest,
       AMountMadeWhileTheServerIsStoppedServesTheCacheAndGoesLive) {
  ASSERT_EQ(mkdir(ServedPath("dir").c_str(), 0755), 0);
  WriteServed("dir/one", "1");
  const std::string big = RandomData(3 * kGranule + 5, 2);
  WriteServed("big", big);
  WriteServed("small", "small file, cached");
  WriteServed("never", "never read while the server answered");
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  const std::vector<std::string> seen = Tree();
  ASSERT_EQ(seen.size(), 5u) << absl::StrJoin(seen, "\n");
  ASSERT_TRUE(ReadMounted("big") == big);
  ASSERT_EQ(ReadMounted("small"), "small file, cached");
  ASSERT_EQ(ReadMounted("dir/one"), "1");
  Unmount();

  StoppedServer stopped(ServerPid());
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  EXPECT_NE(daemon_->ReadStderr().find("mounting from what the cache holds"),
            std::string::npos)
      << daemon_->ReadStderr();
  EXPECT_FALSE(OriginUp());
  const absl::Time start = absl::Now();
  EXPECT_EQ(Tree(), seen);
  EXPECT_TRUE(ReadMounted("big") == big);
  EXPECT_EQ(ReadMounted("small"), "small file, cached");
  EXPECT_EQ(ReadMounted("dir/one"), "1");
  // Listed and looked up, never read: it opens, and its data fails.
  EXPECT_EQ(ReadError("never"), EIO);
  EXPECT_EQ(OpenError("small", O_WRONLY), EROFS);
  EXPECT_LT(absl::Now() - start, absl::Seconds(kTimeoutSeconds));
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
  WriteServed("small", "changed on the server");

  stopped.Resume();
  EXPECT_TRUE(OriginComesUp());
  EXPECT_EQ(ReadMounted("small"), "changed on the server");
  EXPECT_EQ(ReadMounted("never"), "never read while the server answered");
  EXPECT_TRUE(ReadMounted("big") == big);
  // The big file came from the cache, not the server, after all that.
  EXPECT_LT(Stats()["bytes_read_from_origin"], big.size());
}

TEST_P(OfflineTest, KilledWhileTheServerIsStoppedThenRemountedReadsTheCache) {
  const std::string big = RandomData(2 * kGranule + 9, 3);
  WriteServed("big", big);
  WriteServed("small", "small file, cached");
  // Checkpoints every second: what a crash keeps is what the last one saw.
  const std::string options = absl::StrCat("origin_timeout=", kTimeoutSeconds,
                                           ",checkpoint_interval=1");
  Mount(options);
  ASSERT_TRUE(ReadMounted("big") == big);
  ASSERT_EQ(ReadMounted("small"), "small file, cached");
  absl::SleepFor(absl::Seconds(3.5));  // past two checkpoints at least

  StoppedServer stopped(ServerPid());
  EXPECT_EQ(ReadMounted("small"), "small file, cached");
  EXPECT_FALSE(OriginUp());
  Kill9();
  Mount(options);
  EXPECT_FALSE(OriginUp());
  EXPECT_TRUE(ReadMounted("big") == big);
  EXPECT_EQ(ReadMounted("small"), "small file, cached");
  EXPECT_EQ(OpenError("small", O_WRONLY), EROFS);

  stopped.Resume();
  EXPECT_TRUE(OriginComesUp());
  EXPECT_TRUE(ReadMounted("big") == big);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
}

TEST_P(OfflineTest, ACrashThenARemountThenAStoppedServerListsTheTree) {
  ASSERT_EQ(mkdir(ServedPath("dir").c_str(), 0755), 0);
  WriteServed("dir/one", "1");
  WriteServed("top", "22");
  const std::string options = absl::StrCat("origin_timeout=", kTimeoutSeconds,
                                           ",checkpoint_interval=1");
  Mount(options);
  const std::vector<std::string> seen = Tree();
  ASSERT_EQ(seen.size(), 3u) << absl::StrJoin(seen, "\n");
  EXPECT_EQ(ReadMounted("top"), "22");
  absl::SleepFor(absl::Seconds(3.5));  // past two checkpoints at least
  Kill9();
  Mount(options);
  StoppedServer stopped(ServerPid());
  EXPECT_EQ(Tree(), seen);
  EXPECT_EQ(ReadMounted("top"), "22");
  EXPECT_FALSE(OriginUp());
}

TEST_P(OfflineTest,
       AMountWithNothingCachedFailsClearlyWhileTheServerIsStopped) {
  StoppedServer stopped(ServerPid());
  const std::string opts =
      absl::StrCat("cache=", cache_dir(), ",origin_timeout=", kTimeoutSeconds);
  // Should it mount after all, the test still leaves no mount behind.
  absl::Cleanup unmount = [this] {
    RunProgram({"fusermount3", "-uz", mnt_.path()}, absl::Seconds(10))
        .IgnoreError();
  };
  auto result =
      RunProgram({BinPath("cachefs"), origin_, mnt_.path(), "-f", "-o", opts},
                 absl::Seconds(6 * kTimeoutSeconds + 10));
  ASSERT_OK(result);
  EXPECT_NE(result->exit_code, 0);
  EXPECT_NE(result->stderr_text.find("no record of it"), std::string::npos)
      << result->stderr_text;
}

// sshfs killed without unmounting: its directory answers ENOTCONN until
// sshfs is mounted there again.
class DeadSshfsTest : public OfflineTest {};

TEST_P(DeadSshfsTest, AMountOverADeadSshfsServesTheCacheUntilSshfsIsBack) {
  WriteServed("small", "small file, cached");
  WriteServed("other", "looked up, never read");
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  ASSERT_EQ(ReadMounted("small"), "small file, cached");
  struct stat st;
  ASSERT_EQ(lstat(MountedPath("other").c_str(), &st), 0) << strerror(errno);
  Unmount();

  ASSERT_EQ(kill(sshfs_->pid(), SIGKILL), 0);
  ASSERT_TRUE(Eventually(
      [&] { return stat(origin_.c_str(), &st) != 0 && errno == ENOTCONN; },
      absl::Seconds(10), absl::Milliseconds(50)));
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  EXPECT_NE(daemon_->ReadStderr().find("mounting from what the cache holds"),
            std::string::npos)
      << daemon_->ReadStderr();
  EXPECT_FALSE(OriginUp());
  EXPECT_EQ(ReadMounted("small"), "small file, cached");
  EXPECT_EQ(ReadError("other"), EIO);
  EXPECT_EQ(OpenError("small", O_WRONLY), EROFS);

  // sshfs mounted there again (the dead mount taken away first).
  sshfs_.reset();
  auto sshfs = SshfsMount::Mount(*server_, served_.path(), origin_);
  ASSERT_OK(sshfs);
  sshfs_ = *std::move(sshfs);
  WriteServed("small", "changed on the server");
  EXPECT_TRUE(OriginComesUp());
  EXPECT_EQ(ReadMounted("small"), "changed on the server");
  EXPECT_EQ(ReadMounted("other"), "looked up, never read");
}

// The SSH server killed under a running mount: sshfs loses its connection
// and ends, and the files it served answer ENOTCONN.
TEST_P(DeadSshfsTest, AKilledServerLeavesCachedFilesReadableAndRefusesTheRest) {
  const std::string big = RandomData(2 * kGranule + 3, 4);
  WriteServed("big", big);
  WriteServed("never", "never read");
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  ASSERT_TRUE(ReadMounted("big") == big);
  struct stat st;
  ASSERT_EQ(lstat(MountedPath("never").c_str(), &st), 0) << strerror(errno);
  const uint64_t fetched = Stats()["bytes_read_from_origin"];

  // sshd and its per-connection processes.
  std::vector<ProcessId> sshd = Descendants(server_->pid());
  sshd.push_back(*LiveProcess(server_->pid()));
  for (const ProcessId& p : sshd) kill(p.pid, SIGKILL);
  ASSERT_TRUE(
      Eventually([&] { return !LiveProcess(sshfs_->pid()).has_value(); },
                 absl::Seconds(10), absl::Milliseconds(50)));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(ReadMounted("big") == big);
  EXPECT_EQ(ReadError("never"), EIO);
  EXPECT_EQ(OpenError("big", O_WRONLY), EROFS);
  EXPECT_LT(absl::Now() - start, absl::Seconds(kTimeoutSeconds));
  EXPECT_FALSE(OriginUp());
  EXPECT_EQ(Stats()["bytes_read_from_origin"], fetched);

  // The server back, sshfs mounted again at the same place (what it left
  // there taken away first), a file changed meanwhile: the mount is live
  // by itself and sees the change.
  WriteServed("never", "changed while the server was gone");
  sshfs_.reset();
  auto server = SshServer::Start();
  ASSERT_OK(server);
  server_ = *std::move(server);
  auto sshfs = SshfsMount::Mount(*server_, served_.path(), origin_);
  ASSERT_OK(sshfs);
  sshfs_ = *std::move(sshfs);
  EXPECT_TRUE(OriginComesUp());
  EXPECT_EQ(ReadMounted("never"), "changed while the server was gone");
  EXPECT_TRUE(ReadMounted("big") == big);
  EXPECT_EQ(Stats()["bytes_read_from_origin"],
            fetched + std::string("changed while the server was gone").size());
}

// sshfs -o reconnect outlives its server, and answers EIO meanwhile.
TEST_P(DeadSshfsTest, WithReconnectTheEioOfALostServerMarksTheOriginDown) {
  sshfs_.reset();
  auto sshfs = SshfsMount::Mount(*server_, served_.path(), origin_,
                                 {.extra_options = {"reconnect"}});
  ASSERT_OK(sshfs);
  sshfs_ = *std::move(sshfs);
  WriteServed("small", "small file, cached");
  WriteServed("never", "never read");
  Mount(absl::StrCat("origin_timeout=", kTimeoutSeconds));
  ASSERT_EQ(ReadMounted("small"), "small file, cached");
  struct stat st;
  ASSERT_EQ(lstat(MountedPath("never").c_str(), &st), 0) << strerror(errno);

  std::vector<ProcessId> sshd = Descendants(server_->pid());
  sshd.push_back(*LiveProcess(server_->pid()));
  for (const ProcessId& p : sshd) kill(p.pid, SIGKILL);
  // sshfs goes on, answering EIO.
  ASSERT_TRUE(Eventually(
      [&] {
        return stat((origin_ + "/small").c_str(), &st) != 0 && errno == EIO;
      },
      absl::Seconds(10), absl::Milliseconds(50)));
  ASSERT_TRUE(LiveProcess(sshfs_->pid()).has_value());
  absl::SleepFor(absl::Seconds(1.5));  // past the attribute timeout
  EXPECT_EQ(ReadMounted("small"), "small file, cached");
  EXPECT_FALSE(OriginUp());
  EXPECT_EQ(ReadError("never"), EIO);
  EXPECT_EQ(OpenError("small", O_WRONLY), EROFS);
  EXPECT_GE(Stats()["origin_state_changes"], 1u);
}

INSTANTIATE_TEST_SUITE_P(Origins, OfflineTest,
                         ::testing::Values(OriginKind::kSshfs,
                                           OriginKind::kNfs4),
                         OriginKindName);

INSTANTIATE_TEST_SUITE_P(Origins, DeadSshfsTest,
                         ::testing::Values(OriginKind::kSshfs), OriginKindName);

}  // namespace
}  // namespace cachefs::testing
