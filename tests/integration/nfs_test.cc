// NFS origins reached through libnfs, against nfs-ganesha on loopback:
// changes made on the server behind cachefs's back, a server that restarts
// or stops answering, and what the command line says about an export it
// cannot use. The read, write, parity, model and crash groups run over NFS
// in their own files.

#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/mounts.h"
#include "tests/integration/fixtures/ports.h"

namespace cachefs::testing {
namespace {

constexpr size_t kGranule = 256 * 1024;

class NfsTest : public CachefsMountTest {
 protected:
  // Reads `name` through the mount with O_DIRECT in 1 MiB pieces, each
  // straight from the daemon. Returns the bytes, or the errno of the first
  // failure in *err.
  std::string ReadDirect(const std::string& name, int* err) {
    *err = 0;
    int fd = open(MountedPath(name).c_str(), O_RDONLY | O_DIRECT);
    if (fd < 0) {
      *err = errno;
      return "";
    }
    constexpr size_t kPiece = 1 << 20;
    void* buf = aligned_alloc(4096, kPiece);
    std::string out;
    while (true) {
      ssize_t n = read(fd, buf, kPiece);
      if (n < 0) {
        *err = errno;
        break;
      }
      if (n == 0) break;
      out.append(static_cast<char*>(buf), static_cast<size_t>(n));
    }
    free(buf);
    close(fd);
    return out;
  }
};

TEST_P(NfsTest, ChangesOnTheServerAreSeenAtTheNextOpen) {
  const std::string v1 = RandomData(2 * kGranule + 5, 1);
  for (const char* name : {"overwritten", "same", "truncated", "deleted",
                           "replaced", "replacement"}) {
    WriteServed(name, v1);
  }
  Mount();
  for (const char* name : {"overwritten", "same", "truncated", "deleted",
                           "replaced"}) {
    ASSERT_EQ(ReadMounted(name), v1) << name;
  }

  const std::string longer = RandomData(3 * kGranule + 7, 2);
  WriteServed("overwritten", longer);
  // Same size, and the old mtime put back to the nanosecond: only the
  // ctime and the bytes tell.
  struct stat before;
  ASSERT_EQ(stat(ServedPath("same").c_str(), &before), 0);
  const std::string same_size = RandomData(v1.size(), 3);
  WriteServed("same", same_size);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, ServedPath("same").c_str(), times, 0), 0);
  ASSERT_EQ(truncate(ServedPath("truncated").c_str(), 1000), 0);
  ASSERT_EQ(unlink(ServedPath("deleted").c_str()), 0);
  const std::string other = RandomData(kGranule + 1, 4);
  WriteServed("replacement", other);
  ASSERT_EQ(rename(ServedPath("replacement").c_str(),
                   ServedPath("replaced").c_str()),
            0);

  EXPECT_EQ(ReadMounted("overwritten"), longer);
  EXPECT_EQ(ReadMounted("same"), same_size);
  EXPECT_EQ(ReadMounted("truncated"), v1.substr(0, 1000));
  EXPECT_EQ(ReadMounted("replaced"), other);
  EXPECT_LT(open(MountedPath("deleted").c_str(), O_RDONLY), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST_P(NfsTest, AServerRestartDuringALongReadNeverGivesAWrongByte) {
  constexpr size_t kSize = 48 << 20;
  const std::string content = RandomData(kSize, 5);
  WriteServed("long", content);
  Mount("origin_timeout=5");
  // Reads while the server goes away and comes back: each read gives the
  // right bytes or fails; none gives a wrong byte. The connections are
  // made again by themselves once the server listens again. (The reader
  // is the thread: the server's parent-death signal is tied to the thread
  // that starts it.)
  std::atomic<bool> restarted{false};
  std::atomic<bool> wrong{false};
  std::atomic<int> failures{0};
  std::atomic<bool> whole_after_restart{false};
  std::thread reader([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!whole_after_restart && absl::Now() < deadline) {
      const bool after = restarted.load();
      int err = 0;
      const std::string got = ReadDirect("long", &err);
      if (content.compare(0, got.size(), got) != 0) {
        wrong = true;
        return;
      }
      if (err != 0) {
        ++failures;
        absl::SleepFor(absl::Milliseconds(100));
      }
      whole_after_restart = after && err == 0 && got.size() == kSize;
    }
  });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_OK(nfs_->Restart());
  restarted = true;
  reader.join();
  std::cout << failures << " reads failed while the server restarted\n";
  EXPECT_FALSE(wrong) << "a read gave wrong bytes";
  EXPECT_TRUE(whole_after_restart) << "no whole read after the restart; "
                                   << daemon_->ReadStderr();
  // Cached data reads on while the origin counts as down; a name never
  // seen needs it back, which the probe notices within a second or so.
  EXPECT_TRUE(OriginComesUp());
  WriteServed("after", "written after the restart");
  EXPECT_EQ(ReadMounted("after"), "written after the restart");
}

TEST_P(NfsTest, AStoppedServerFailsRequestsInTimeAndTheCacheStays) {
  const std::string cached = RandomData(3 * kGranule, 6);
  WriteServed("cached", cached);
  WriteServed("uncached", "never read before the server stopped");
  Mount("origin_timeout=2");
  ASSERT_EQ(ReadMounted("cached"), cached);
  const uint64_t fetched = Stats()["bytes_read_from_origin"];

  ASSERT_EQ(kill(nfs_->pid(), SIGSTOP), 0);
  const absl::Time start = absl::Now();
  // The open fails, or, where the name is known from before (offline
  // mode serves it as of its last check), the read of its data does.
  int fd = open(MountedPath("uncached").c_str(), O_RDONLY);
  int err = errno;
  char byte;
  if (fd >= 0 && read(fd, &byte, 1) < 0)
    err = errno;
  else if (fd >= 0)
    err = 0;
  const absl::Duration waited = absl::Now() - start;
  ASSERT_EQ(kill(nfs_->pid(), SIGCONT), 0);
  if (fd >= 0) close(fd);
  EXPECT_TRUE(err == ETIMEDOUT || err == EIO || err == ENOTCONN)
      << "reading data only the stopped server has: " << strerror(err);
  // The kernel's lookup, then the open: each bounded by origin_timeout.
  EXPECT_LT(waited, absl::Seconds(3 * 2 + 2)) << waited;

  // The server answers again: nothing cached was dropped for its silence.
  EXPECT_EQ(ReadMounted("cached"), cached);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], fetched);
  // Once the mount has noticed, the rest is fetched.
  EXPECT_TRUE(Eventually(
      [&] {
        const int fd = open(MountedPath("uncached").c_str(), O_RDONLY);
        if (fd < 0) return false;
        const bool read_one = read(fd, &byte, 1) == 1;
        close(fd);
        return read_one;
      },
      absl::Seconds(20), absl::Milliseconds(200)));
  EXPECT_EQ(ReadMounted("uncached"), "never read before the server stopped");
}

// Whether a file made immutable on `dir`'s filesystem refuses a write on
// a descriptor opened before (ext4 does; tmpfs does not), which the test
// below needs of the served directory.
absl::Status ImmutableRefusesOpenWriters(const std::string& dir) {
  const std::string probe = dir + "/.immutable-probe";
  const int fd = open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) return absl::InternalError("cannot create " + probe);
  int flags = 0;
  absl::Status status;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) {
    status = absl::FailedPreconditionError(
        absl::StrCat("no file flags on the filesystem of ", dir));
  } else {
    const int unlocked = flags;
    flags |= FS_IMMUTABLE_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) {
      status = absl::FailedPreconditionError(
          absl::StrCat("cannot make a file immutable under ", dir));
    } else {
      if (write(fd, "x", 1) >= 0) {
        status = absl::FailedPreconditionError(absl::StrCat(
            "the filesystem of ", dir,
            " lets open descriptors write to an immutable file"));
      }
      ioctl(fd, FS_IOC_SETFLAGS, &unlocked);
    }
  }
  close(fd);
  unlink(probe.c_str());
  return status;
}

// A write the server refuses fails with the server's errno, not a
// stand-in (libnfs 4.0 reports every NFSv3 READ and WRITE error as
// EFAULT), and nothing of it lands. The file is made immutable on the
// server after the open, so only the WRITE itself is refused (EPERM).
TEST_P(NfsTest, AWriteTheServerRefusesFailsWithTheServersError) {
  CACHEFS_REQUIRE(ImmutableRefusesOpenWriters(OriginDir()));
  WriteServed("locked", "as it was");
  Mount();
  const int fd = open(MountedPath("locked").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  const int served = open(ServedPath("locked").c_str(), O_RDONLY);
  ASSERT_GE(served, 0) << strerror(errno);
  int flags = 0;
  ASSERT_EQ(ioctl(served, FS_IOC_GETFLAGS, &flags), 0) << strerror(errno);
  const int unlocked = flags;
  flags |= FS_IMMUTABLE_FL;
  ASSERT_EQ(ioctl(served, FS_IOC_SETFLAGS, &flags), 0) << strerror(errno);

  const ssize_t n = pwrite(fd, "changed", 7, 0);
  const int err = errno;
  const int synced = fsync(fd);
  const int sync_err = errno;
  EXPECT_EQ(ioctl(served, FS_IOC_SETFLAGS, &unlocked), 0) << strerror(errno);
  close(served);
  close(fd);
  if (n >= 0) {
    // A cache that took the write must fail its fsync the same way.
    EXPECT_NE(synced, 0) << "the refused write was acknowledged";
    EXPECT_EQ(sync_err, EPERM) << strerror(sync_err);
  } else {
    EXPECT_EQ(err, EPERM) << strerror(err);
  }
  EXPECT_EQ(ReadServed("locked"), "as it was");
}

INSTANTIATE_TEST_SUITE_P(Origins, NfsTest,
                         ::testing::Values(OriginKind::kNfs4,
                                           OriginKind::kNfs3),
                         OriginKindName);

// The command line with an NFS origin that cannot be used: one clear line
// on stderr, a failed exit, and nothing mounted.
class NfsCommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CACHEFS_REQUIRE(FusePrerequisites());
    CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs"));
    mnt_ = dir_.path() + "/mnt";
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0);
  }
  void ExpectRejected(const std::string& origin, const std::string& options,
                      const std::string& expected) {
    auto result = RunProgram({BinPath("cachefs"), origin, mnt_, "-o",
                              "cache=" + dir_.path() + "/cache" + options},
                             absl::Seconds(30));
    ASSERT_OK(result);
    EXPECT_NE(result->exit_code, 0) << result->stderr_text;
    EXPECT_NE(result->stderr_text.find(expected), std::string::npos)
        << "stderr: " << result->stderr_text;
    std::vector<std::string> lines =
        absl::StrSplit(result->stderr_text, '\n', absl::SkipEmpty());
    EXPECT_EQ(lines.size(), 1u) << result->stderr_text;
    if (FindMount(mnt_).has_value()) {
      ADD_FAILURE() << "left a mount at " << mnt_;
      FuseUnmount(mnt_, /*lazy=*/true).IgnoreError();
    }
  }

  TempDir dir_;
  TempDir served_;
  std::string mnt_;
};

TEST_F(NfsCommandLineTest, AnUnparsableUrlIsRefused) {
  ExpectRejected("nfs://127.0.0.1:99999/x", "", "bad port");
  ExpectRejected("nfs://127.0.0.1", "", "no export path");
  ExpectRejected("nfs://127.0.0.1/x?version=5", "", "version must be 3 or 4");
  ExpectRejected("nfs://127.0.0.1/x?colour=red", "", "unknown argument");
  ExpectRejected("smb://127.0.0.1/x", "", "nfs:// is the only URL scheme");
}

TEST_F(NfsCommandLineTest, AServerThatDoesNotAnswerIsAnErrorInTime) {
  // Something listens, and never says a word.
  absl::StatusOr<int> port = PickFreePort();
  ASSERT_OK(port);
  auto listener = ChildProcess::Spawn(
      {"python3", "-c",
       absl::StrCat("import socket,time\n"
                    "s=socket.socket()\n"
                    "s.bind(('127.0.0.1',", *port, "))\n"
                    "s.listen(8)\n"
                    "time.sleep(60)\n")});
  ASSERT_OK(listener);
  for (int i = 0; i < 200 && !CanConnect(*port); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const absl::Time start = absl::Now();
  ExpectRejected(absl::StrCat("nfs://127.0.0.1:", *port, "/x"),
                 ",origin_timeout=2", "did not answer within 2s");
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ExpectRejected("nfs://127.0.0.1:1/x", "", "Connection refused");
}

TEST_F(NfsCommandLineTest, AMissingOrRefusedExportIsAnError) {
  CACHEFS_REQUIRE(NfsServerPrerequisites());
  {
    auto server = NfsServer::Start(served_.path(), {});
    ASSERT_OK(server);
    ExpectRejected(absl::StrCat("nfs://127.0.0.1:", (*server)->port(),
                                "/no/such/export"),
                   "", "No such file or directory");
  }
  NfsServer::Options refusing;
  refusing.access = "NONE";
  auto server = NfsServer::Start(served_.path(), refusing);
  ASSERT_OK(server);
  ExpectRejected((*server)->Url(4), "", "cannot mount");
}

}  // namespace
}  // namespace cachefs::testing
