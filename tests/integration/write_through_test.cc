// Write-through on real mounts, over a local directory and over SSHFS:
// what was written is a cache hit afterwards, renames and unlinks carry
// the cache along, and changes made on the server while files are open
// through cachefs are seen, whole, at the next open.

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr size_t kGranule = 256 * 1024;

// Equality of file contents, reported briefly: sizes and the first
// differing offset, not megabytes of bytes.
::testing::AssertionResult SameBytes(const std::string& got,
                                     const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure()
         << "got " << got.size() << " bytes, want " << want.size()
         << "; first difference at offset " << i;
}

class WriteThroughTest : public CachefsMountTest {
 protected:
  // Writes `data` to a mounted file in `chunk`-sized write(2) calls.
  void WriteMounted(const std::string& name, const std::string& data,
                    size_t chunk, int flags = O_CREAT | O_TRUNC) {
    int fd = open(MountedPath(name).c_str(), O_WRONLY | flags, 0644);
    ASSERT_GE(fd, 0) << name << ": " << strerror(errno);
    for (size_t off = 0; off < data.size(); off += chunk) {
      size_t n = std::min(chunk, data.size() - off);
      ASSERT_EQ(write(fd, data.data() + off, n), static_cast<ssize_t>(n))
          << strerror(errno);
    }
    ASSERT_EQ(close(fd), 0) << strerror(errno);
  }
  // Backing files in the cache (data objects, not sidecars or records).
  int CountObjects() {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             cache_dir() + "/volumes", ec)) {
      // Objects are named by 16 hex digits (not sidecars, not "usage").
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.size() == 16 &&
          name.find_first_not_of("0123456789abcdef") == std::string::npos) {
        ++n;
      }
    }
    return n;
  }
  // Gives a served file an mtime `seconds` away from now: SSHFS shows
  // whole seconds, so a rewrite within the same second would look the same.
  void ShiftServedMtime(const std::string& name, int seconds) {
    struct timeval times[2];
    gettimeofday(&times[0], nullptr);
    times[0].tv_sec += seconds;
    times[1] = times[0];
    ASSERT_EQ(utimes(ServedPath(name).c_str(), times), 0);
  }
  // Polls `cachefs-ctl stats` until `name` reaches `want` (the daemon
  // tears cookies down in the background after the last close).
  bool WaitForStat(const std::string& name, uint64_t want) {
    for (int i = 0; i < 100; ++i) {
      if (Stats()[name] >= want) return true;
      usleep(50 * 1000);
    }
    return false;
  }
};

TEST_P(WriteThroughTest, WrittenDataIsReadFromTheCacheBeforeAndAfterRemount) {
  Mount();
  const std::string big = RandomData(3 * 1024 * 1024 + 4321, 1);
  WriteMounted("big", big, 1 << 20);
  const std::string small = RandomData(700 * 1024 + 5, 2);
  WriteMounted("small", small, 128 * 1024);  // half-granule writes
  EXPECT_TRUE(SameBytes(ReadServed("big"), big));
  EXPECT_TRUE(SameBytes(ReadServed("small"), small));
  EXPECT_TRUE(SameBytes(ReadMounted("big"), big));
  EXPECT_TRUE(SameBytes(ReadMounted("small"), small));
  auto stats = Stats();
  EXPECT_EQ(stats["bytes_read_from_origin"], 0u);
  EXPECT_EQ(stats["bytes_written_to_origin"], big.size() + small.size());
  EXPECT_EQ(stats["granules_write_cleared"], 0u);
  Unmount();
  Mount();
  EXPECT_TRUE(SameBytes(ReadMounted("big"), big));
  EXPECT_TRUE(SameBytes(ReadMounted("small"), small));
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
}

TEST_P(WriteThroughTest, OverwritesInsideCachedFilesStayCached) {
  std::string data = RandomData(5 * kGranule + 99, 3);
  WriteServed("f", data);
  Mount();
  ASSERT_TRUE(SameBytes(ReadMounted("f"), data));
  int fd = open(MountedPath("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  struct Piece {
    size_t off;
    size_t len;
  };
  // Unaligned, granule-crossing, whole-granule and extending writes.
  for (Piece p : {Piece{7, 13}, Piece{kGranule - 100, 300},
                  Piece{2 * kGranule, kGranule}, Piece{4 * kGranule + 5, 4096},
                  Piece{data.size() - 10, 5000}}) {
    std::string bytes = RandomData(p.len, static_cast<uint32_t>(p.off));
    ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), p.off),
              static_cast<ssize_t>(bytes.size()));
    if (data.size() < p.off + p.len) data.resize(p.off + p.len);
    data.replace(p.off, p.len, bytes);
  }
  ASSERT_EQ(close(fd), 0);
  uint64_t origin_before = Stats()["bytes_read_from_origin"];
  EXPECT_TRUE(SameBytes(ReadMounted("f"), data));
  EXPECT_TRUE(SameBytes(ReadServed("f"), data));
  EXPECT_EQ(Stats()["bytes_read_from_origin"], origin_before);
}

TEST_P(WriteThroughTest, TruncateThroughTheMountKeepsTheRestCached) {
  std::string data = RandomData(3 * kGranule + 10, 4);
  WriteServed("f", data);
  Mount();
  ASSERT_TRUE(SameBytes(ReadMounted("f"), data));
  ASSERT_EQ(truncate(MountedPath("f").c_str(), kGranule + 7), 0);
  data.resize(kGranule + 7);
  ASSERT_EQ(truncate(MountedPath("f").c_str(), 2 * kGranule), 0);
  data.resize(2 * kGranule, '\0');
  EXPECT_TRUE(SameBytes(ReadServed("f"), data));
  uint64_t origin_before = Stats()["bytes_read_from_origin"];
  EXPECT_TRUE(SameBytes(ReadMounted("f"), data));
  // Granule 0 and the cut granule 1 stay cached (zeros past the cut).
  EXPECT_EQ(Stats()["bytes_read_from_origin"], origin_before);
}

TEST_P(WriteThroughTest, ARenamedFileKeepsItsCacheUnderTheNewName) {
  std::string data = RandomData(2 * kGranule + 3, 5);
  WriteServed("old", data);
  ASSERT_EQ(mkdir(ServedPath("dir").c_str(), 0755), 0);
  Mount();
  ASSERT_TRUE(SameBytes(ReadMounted("old"), data));
  ASSERT_EQ(rename(MountedPath("old").c_str(), MountedPath("dir/new").c_str()),
            0);
  EXPECT_TRUE(SameBytes(ReadServed("dir/new"), data));
  EXPECT_TRUE(WaitForStat("objects_moved", 1));
  Unmount();
  Mount();
  EXPECT_TRUE(SameBytes(ReadMounted("dir/new"), data));
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
}

TEST_P(WriteThroughTest, AnUnlinkedFileIsReadableUntilClosedThenItsCacheGoes) {
  std::string data = RandomData(kGranule + 77, 6);
  WriteServed("f", data);
  Mount();
  ASSERT_TRUE(SameBytes(ReadMounted("f"), data));
  ASSERT_EQ(CountObjects(), 1);
  int fd = open(MountedPath("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(MountedPath("f").c_str()), 0);
  struct stat st;
  EXPECT_NE(stat(ServedPath("f").c_str(), &st), 0);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string got(data.size(), '\0');
  EXPECT_EQ(pread(fd, got.data(), got.size(), 0),
            static_cast<ssize_t>(data.size()));
  EXPECT_EQ(got, data);
  EXPECT_EQ(CountObjects(), 1);  // still open
  ASSERT_EQ(close(fd), 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = CountObjects() == 0;
    if (!gone) usleep(50 * 1000);
  }
  EXPECT_TRUE(gone) << CountObjects() << " objects left";
}

// Changes made on the server while a file is open through cachefs: the
// next open sees exactly what the server holds.
TEST_P(WriteThroughTest, ServerChangesToOpenFilesAreSeenWholeAtTheNextOpen) {
  const std::string v1 = RandomData(3 * kGranule + 1, 7);
  WriteServed("f", v1);
  Mount();
  ASSERT_TRUE(SameBytes(ReadMounted("f"), v1));
  int held = open(MountedPath("f").c_str(), O_RDONLY);
  ASSERT_GE(held, 0);

  // Overwrite with another size.
  const std::string v2 = RandomData(2 * kGranule + 500, 8);
  WriteServed("f", v2);
  ShiftServedMtime("f", 10);
  EXPECT_TRUE(SameBytes(ReadMounted("f"), v2));

  // Same-size rewrite.
  std::string v3 = RandomData(v2.size(), 9);
  WriteServed("f", v3);
  ShiftServedMtime("f", 20);
  EXPECT_TRUE(SameBytes(ReadMounted("f"), v3));

  // Truncate.
  ASSERT_EQ(truncate(ServedPath("f").c_str(), kGranule / 2), 0);
  ShiftServedMtime("f", 30);
  EXPECT_TRUE(SameBytes(ReadMounted("f"), v3.substr(0, kGranule / 2)));

  // Rename over: another file takes the name.
  const std::string v4 = RandomData(kGranule + 12345, 10);
  WriteServed("other", v4);
  ShiftServedMtime("other", 40);
  ASSERT_EQ(rename(ServedPath("other").c_str(), ServedPath("f").c_str()), 0);
  EXPECT_TRUE(SameBytes(ReadMounted("f"), v4));

  // Delete.
  ASSERT_EQ(unlink(ServedPath("f").c_str()), 0);
  errno = 0;
  EXPECT_LT(open(MountedPath("f").c_str(), O_RDONLY), 0);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(close(held), 0);
}

// Readers keep opening and reading a file while the server replaces it:
// no read fails or returns bytes of no version, and once the changes stop
// every open sees the last version.
TEST_P(WriteThroughTest, InvalidationUnderLoad) {
  const size_t size = 4 * kGranule;
  WriteServed("f", std::string(size, 'a'));
  Mount();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> stale_opens{0};
  std::atomic<int> reads{0};
  absl::Mutex first_failure_mu;
  std::string first_failure;
  auto failed = [&](const std::string& what) {
    ++failures;
    absl::MutexLock lock(&first_failure_mu);
    if (first_failure.empty()) first_failure = what;
  };
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      std::string buf(size, '\0');
      for (int i = 0; i < 100000 && !stop.load(); ++i) {
        int fd = open(MountedPath("f").c_str(), O_RDONLY);
        if (fd < 0) {
          // The name was replaced again while the kernel retried its
          // lookup (as on NFS): the open is refused, never served wrong.
          if (errno == ESTALE) {
            ++stale_opens;
          } else {
            failed(absl::StrCat("open: ", strerror(errno)));
          }
          continue;
        }
        ssize_t n = pread(fd, buf.data(), buf.size(), 0);
        const int read_errno = errno;
        close(fd);
        if (n < 0 && read_errno == ESTALE && GetParam() != OriginKind::kSshfs) {
          // Replaced after the open and before its data was fetched: the
          // new file's bytes are refused rather than read as the old's
          // (locally by the identity check; over NFS the server itself
          // answers ESTALE for the replaced file, as to any NFS client).
          ++stale_opens;
          continue;
        }
        if (n != static_cast<ssize_t>(size)) {
          failed(absl::StrCat("pread returned ", n, " ",
                              n < 0 ? strerror(read_errno) : ""));
          continue;
        }
        for (char c : buf) {
          if (c < 'a' || c > 'a' + 9) {
            failed(absl::StrCat("byte ", static_cast<int>(c)));
            break;
          }
          // With stable inode numbers every read is of one version.
          if (GetParam() == OriginKind::kLocal && c != buf[0]) {
            failed(absl::StrCat("versions ", std::string(1, buf[0]), " and ",
                                std::string(1, c), " in one read"));
            break;
          }
        }
        ++reads;
      }
    });
  }
  for (int v = 1; v < 10; ++v) {
    std::string name = absl::StrCat("f.", v);
    WriteServed(name, std::string(size, static_cast<char>('a' + v)));
    ShiftServedMtime(name, 10 * v);
    ASSERT_EQ(rename(ServedPath(name).c_str(), ServedPath("f").c_str()), 0);
    usleep(100 * 1000);
  }
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0) << "first: " << first_failure;
  EXPECT_GT(reads.load(), 10 * stale_opens.load());
  EXPECT_TRUE(SameBytes(ReadMounted("f"), std::string(size, 'a' + 9)));
}

// A change on the origin that its attributes do not show is served from
// the cache until `cachefs-ctl invalidate` drops the file's data; -r drops
// every cached file below a directory. (Over SSHFS a same-size rewrite
// with the mtime put back is such a change; a local origin shows it in
// the ctime, so there the dropped data is seen in what is read again.)
TEST_P(WriteThroughTest, InvalidateDropsWhatTheAttributesCannotShow) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  ASSERT_EQ(mkdir(ServedPath("dir").c_str(), 0755), 0);
  const std::string old_a = RandomData(kGranule + 10, 31);
  const std::string b = RandomData(5000, 32);
  WriteServed("dir/a", old_a);
  WriteServed("dir/sub b", b);  // a name with a space
  Mount("attr_timeout=0,entry_timeout=0");
  ASSERT_TRUE(SameBytes(ReadMounted("dir/a"), old_a));
  ASSERT_TRUE(SameBytes(ReadMounted("dir/sub b"), b));
  std::string want_a = old_a;
  if (GetParam() == OriginKind::kSshfs) {
    // Rewritten behind cachefs's back, size and times as before.
    struct stat st;
    ASSERT_EQ(stat(ServedPath("dir/a").c_str(), &st), 0);
    want_a = RandomData(old_a.size(), 33);
    WriteServed("dir/a", want_a);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ASSERT_EQ(utimensat(AT_FDCWD, ServedPath("dir/a").c_str(), times, 0), 0);
    ASSERT_TRUE(SameBytes(ReadMounted("dir/a"), old_a))
        << "the rewrite was seen without invalidate: the test shows nothing";
  }
  auto ctl = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinPath("cachefs-ctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = RunProgram(argv, absl::Seconds(20));
    EXPECT_OK(result);
    if (!result.ok()) return std::string();
    EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
    return result->stdout_text;
  };
  // What reading `name` whole fetches from the origin.
  auto fetched = [&](const std::string& name, const std::string& want) {
    const uint64_t before = Stats()["bytes_read_from_origin"];
    EXPECT_TRUE(SameBytes(ReadMounted(name), want)) << name;
    return Stats()["bytes_read_from_origin"] - before;
  };
  EXPECT_EQ(ctl({"invalidate", mnt_.path(), MountedPath("dir/a")}),
            "dropped the cached data of 1 of 1 file\n");
  EXPECT_EQ(fetched("dir/a", want_a), want_a.size());
  EXPECT_EQ(fetched("dir/sub b", b), 0u);
  // The whole directory, by a path relative to the working directory.
  char cwd[PATH_MAX];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(chdir(MountedPath("dir").c_str()), 0) << strerror(errno);
  const std::string json = ctl({"evict", mnt_.path(), "-r", "--json", "."});
  ASSERT_EQ(chdir(cwd), 0);
  EXPECT_NE(json.find("\"files_dropped\": 2"), std::string::npos) << json;
  EXPECT_EQ(fetched("dir/sub b", b), b.size());
  EXPECT_EQ(fetched("dir/a", want_a), want_a.size());
}

// `cachefs-ctl map` shows which granules of a file are cached.
TEST_P(WriteThroughTest, MapShowsTheCachedGranules) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  const std::string data = RandomData(12 * kGranule - 1000, 41);
  WriteServed("f", data);
  Mount();
  // The last 8 granules, from granule 4 to the end.
  int fd = open(MountedPath("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string tail(data.size() - 4 * kGranule, '\0');
  ASSERT_EQ(pread(fd, tail.data(), tail.size(), 4 * kGranule),
            static_cast<ssize_t>(tail.size()));
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(tail, data.substr(4 * kGranule));
  // Released (the daemon writes the clean record in the background).
  for (int i = 0; i < 100 && Stats()["cookies_active"] > 0; ++i) {
    usleep(50 * 1000);
  }
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), BinPath("cachefs-ctl"));
    auto result = RunProgram(args, absl::Seconds(20));
    EXPECT_OK(result);
    return result.ok() ? *result : ProgramResult{};
  };
  ProgramResult text = run({"map", mnt_.path(), MountedPath("f")});
  EXPECT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_NE(text.stdout_text.find("12 granules of 256 KiB: 8 present"),
            std::string::npos)
      << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("[....OOOOOOOO]"), std::string::npos)
      << text.stdout_text;
  ProgramResult json = run({"map", mnt_.path(), MountedPath("f"), "--json"});
  EXPECT_NE(json.stdout_text.find("\"present_runs\": [[4, 11]]"),
            std::string::npos)
      << json.stdout_text;
  EXPECT_NE(json.stdout_text.find("\"state\": \"clean\""), std::string::npos)
      << json.stdout_text;
  ProgramResult missing = run({"map", mnt_.path(), MountedPath("nothing")});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.stderr_text.find("no cached data for nothing"),
            std::string::npos)
      << missing.stderr_text;
}

// Hard links over a local origin (SSHFS makes up an inode number per path,
// so its links are not one file to the kernel or to cachefs).
class HardLinkTest : public WriteThroughTest {
 protected:
  off_t MountedSize(const std::string& name) {
    struct stat st;
    if (stat(MountedPath(name).c_str(), &st) != 0) return -1;
    return st.st_size;
  }
};

// What is written through one name is what every other name shows, also
// when the kernel has forgotten the file and asks cachefs again within the
// timeouts, and after a remount.
TEST_P(HardLinkTest, AWriteThroughOneNameIsSeenThroughTheOthers) {
  Mount("attr_timeout=30,entry_timeout=30");
  const std::string v1 = RandomData(1000, 11);
  WriteMounted("a", v1, v1.size());
  ASSERT_EQ(link(MountedPath("a").c_str(), MountedPath("b").c_str()), 0)
      << strerror(errno);
  ASSERT_EQ(MountedSize("b"), 1000);  // cachefs now knows b's attributes
  const std::string more = RandomData(5000, 12);
  WriteMounted("a", more, more.size(), O_APPEND);
  const std::string v2 = v1 + more;
  EXPECT_EQ(MountedSize("b"), 6000);
  EXPECT_TRUE(SameBytes(ReadMounted("b"), v2));
  {
    CACHEFS_REQUIRE(RootPrerequisite());
    sync();
    std::ofstream("/proc/sys/vm/drop_caches") << "3";
    SCOPED_TRACE("after drop_caches");
    EXPECT_EQ(MountedSize("b"), 6000);
    EXPECT_TRUE(SameBytes(ReadMounted("b"), v2));
  }
  const std::string v3 = RandomData(300, 13);
  WriteMounted("b", v3, v3.size());  // truncates the file: a shrinks too
  Unmount();
  Mount("attr_timeout=30,entry_timeout=30");
  SCOPED_TRACE("after a remount");
  EXPECT_EQ(MountedSize("a"), 300);
  EXPECT_EQ(MountedSize("b"), 300);
  EXPECT_TRUE(SameBytes(ReadMounted("a"), v3));
  EXPECT_TRUE(SameBytes(ReadMounted("b"), v3));
}

INSTANTIATE_TEST_SUITE_P(Origins, HardLinkTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kNfs4),
                         OriginKindName);

INSTANTIATE_TEST_SUITE_P(Origins, WriteThroughTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs,
                                           OriginKind::kNfs4,
                                           OriginKind::kNfs3),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing

namespace cachefs::testing {
namespace {

// libfuse's test_syscalls test 31 with a real directory: a file made on
// the server behind cachefs's back, seen (and read, every other time),
// then unlinked through cachefs, is gone at once, and from the server
// too: an origin file still open or closing at the unlink would stay
// there as one of SSHFS's .fuse_hidden files.
TEST_P(WriteThroughTest, AServerMadeFileUnlinkedThroughTheMountIsGoneAtOnce) {
  Mount();
  for (int i = 0; i < 100; ++i) {
    const std::string name = "made" + std::to_string(i % 7);
    WriteServed(name, RandomData(1000 + i, i));
    struct stat st;
    ASSERT_EQ(lstat(MountedPath(name).c_str(), &st), 0) << i;
    if (i % 2 == 0) {
      EXPECT_EQ(ReadMounted(name).size(), 1000u + i);
    }
    ASSERT_EQ(unlink(MountedPath(name).c_str()), 0) << i;
    errno = 0;
    EXPECT_NE(lstat(MountedPath(name).c_str(), &st), 0) << i;
    EXPECT_EQ(errno, ENOENT) << i;
    // A file removed while a handle on it closes is hidden for as long as
    // the close takes at an SSHFS origin, but must not stay.
    std::vector<std::string> left;
    for (int tries = 0; tries < 100; ++tries) {
      left.clear();
      for (const auto& e :
           std::filesystem::directory_iterator(ServedPath(""))) {
        left.push_back(e.path().filename());
      }
      if (left.empty()) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_TRUE(left.empty()) << i << ": " << absl::StrJoin(left, " ");
  }
}

}  // namespace
}  // namespace cachefs::testing
