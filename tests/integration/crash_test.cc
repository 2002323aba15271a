// Crash safety of the cache: the daemon is killed with SIGKILL while
// threads of the test read, write, truncate and create files through the
// mount, the dead mount is dropped (fusermount3 -uz), a new daemon mounts
// the same cache directory, and every file must then read through the
// mount exactly as the origin holds it. Twenty rounds over a local origin
// (and a few over SSHFS), one cache directory throughout, so each round
// starts on whatever the crashes before it left behind.
//
// The promise under test (README, "What is promised after a crash"): a
// cached granule is served only if its data is known to be on disk and the
// object's aux data still matches the origin; an object that was being
// written when the daemon died is discarded. The test also requires that
// the cache still serves data after a crash, so it cannot pass by caching
// nothing: files cached by a session that ended cleanly, and not touched
// since, must come from the cache after a remount.
//
// A second test does the same under a small -o cache_size, so kills also
// land while culling punches cold granules out of open files.
//
// CACHEFS_CRASH_SEED=N replays a run (round r uses N + r); the seed is
// printed at the start and in every failure.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/files.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kGranule = 256 * 1024;
constexpr int kThreads = 4;
// Files every thread writes to, shared: w0..w5.
constexpr int kSharedFiles = 6;
// Names each thread creates, overwrites and unlinks: n<thread>_<k>.
constexpr int kOwnFiles = 3;
// Files written once on the origin before the first mount and never
// again: s0..s3.
const uint64_t kStableSizes[] = {kGranule * 4 + 3, 700 * 1024, kGranule,
                                 2 * 1024 * 1024 + 1};
constexpr uint64_t kMaxSharedSize = 2560 * 1024;
// Bounds on one round's I/O, should the kill never stop it.
constexpr int kMaxOpsPerThread = 200000;
constexpr absl::Duration kMaxIoTime = absl::Seconds(30);

std::string SharedName(int k) { return absl::StrCat("w", k); }
std::string StableName(int k) { return absl::StrCat("s", k); }
std::string OwnName(int t, int k) { return absl::StrCat("n", t, "_", k); }

uint64_t CrashSeed() {
  const char* env = std::getenv("CACHEFS_CRASH_SEED");
  uint64_t seed = env != nullptr && *env != '\0'
                      ? std::strtoull(env, nullptr, 10)
                      : static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  std::cout << "crash seed: CACHEFS_CRASH_SEED=" << seed << std::endl;
  ::testing::Test::RecordProperty("crash_seed", std::to_string(seed));
  return seed;
}

// A dead connection: what the FUSE kernel answers once the daemon is gone
// (ENOTCONN for new requests, ECONNABORTED for those it aborted).
bool Disconnected(int err) { return err == ENOTCONN || err == ECONNABORTED; }

// What one I/O thread did in one round.
struct IoResult {
  uint64_t ops = 0;
  uint64_t writes = 0;
  uint64_t reads = 0;
  bool disconnected = false;
  // The first error seen before the kill: the mount misbehaved while the
  // daemon was alive.
  std::string unexpected;
};

// Reads and writes done so far by all threads of a round, so the kill
// can wait until both kinds are under way.
struct SharedProgress {
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> writes{0};
};

// Mixed reads and writes through `dirfd` (the mount's root, so that once
// the mount is detached every call fails instead of landing in the
// directory below it) until the connection dies or `stop` is set.
void IoThread(int thread, uint64_t seed, int dirfd,
              const std::atomic<bool>* killing, const std::atomic<bool>* stop,
              SharedProgress* progress, IoResult* result) {
  std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(thread));
  std::vector<char> buf(1 << 20);
  int fds[kSharedFiles];
  std::fill(std::begin(fds), std::end(fds), -1);
  const absl::Time deadline = absl::Now() + kMaxIoTime;
  auto fail = [&](const std::string& what) {
    int err = errno;
    if (Disconnected(err)) {
      result->disconnected = true;
    } else if (!killing->load() && result->unexpected.empty()) {
      result->unexpected =
          absl::StrCat("thread ", thread, ": ", what, ": ", strerror(err));
    }
  };
  for (int i = 0;
       i < kMaxOpsPerThread && !stop->load() && absl::Now() < deadline; ++i) {
    const int k = static_cast<int>(rng() % kSharedFiles);
    const std::string name = SharedName(k);
    if (fds[k] < 0 || rng() % 8 == 0) {
      if (fds[k] >= 0) close(fds[k]);
      fds[k] = openat(dirfd, name.c_str(), O_RDWR | O_CLOEXEC);
      if (fds[k] < 0) {
        fail("open " + name);
        break;
      }
    }
    const int fd = fds[k];
    const uint64_t dice = rng() % 100;
    bool ok = true;
    std::string what;
    if (dice < 40) {
      uint64_t off = rng() % kMaxSharedSize;
      uint64_t len =
          1 + rng() % std::min<uint64_t>(buf.size(), kMaxSharedSize - off);
      uint64_t fill = rng();
      for (uint64_t j = 0; j < len; j += 8) {
        std::memcpy(buf.data() + j, &fill, std::min<uint64_t>(8, len - j));
        fill = fill * 6364136223846793005ull + 1442695040888963407ull;
      }
      what = absl::StrCat("pwrite ", name, " off ", off, " len ", len);
      ok = pwrite(fd, buf.data(), len, static_cast<off_t>(off)) >= 0;
      if (ok) {
        ++result->writes;
        ++progress->writes;
      }
    } else if (dice < 70) {
      uint64_t off = rng() % kMaxSharedSize;
      uint64_t len = 1 + rng() % buf.size();
      what = absl::StrCat("pread ", name, " off ", off, " len ", len);
      ok = pread(fd, buf.data(), len, static_cast<off_t>(off)) >= 0;
      if (ok) {
        ++result->reads;
        ++progress->reads;
      }
    } else if (dice < 80) {
      // Across granule boundaries, shrinking and extending.
      uint64_t size =
          (rng() % (kMaxSharedSize / kGranule + 1)) * kGranule + rng() % 2;
      if (size > 0 && rng() % 2 == 0) --size;
      size = std::min(size, kMaxSharedSize);
      what = absl::StrCat("ftruncate ", name, " to ", size);
      ok = ftruncate(fd, static_cast<off_t>(size)) == 0;
      if (ok) {
        ++result->writes;
        ++progress->writes;
      }
    } else if (dice < 90) {
      // A file created (or overwritten) whole.
      std::string own = OwnName(thread, static_cast<int>(rng() % kOwnFiles));
      what = "create " + own;
      int nfd = openat(dirfd, own.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ok = nfd >= 0;
      if (ok) {
        uint64_t len = rng() % (300 * 1024);
        std::memset(buf.data(), static_cast<int>('a' + rng() % 26), len);
        ok = write(nfd, buf.data(), len) >= 0;
        int saved = errno;
        close(nfd);
        errno = saved;
        if (ok) {
          ++result->writes;
          ++progress->writes;
        }
      }
    } else if (dice < 94) {
      std::string own = OwnName(thread, static_cast<int>(rng() % kOwnFiles));
      what = "unlink " + own;
      ok = unlinkat(dirfd, own.c_str(), 0) == 0 || errno == ENOENT;
    } else if (dice < 97) {
      what = "fsync " + name;
      ok = fsync(fd) == 0;
    } else {
      // Sequential reads from the start, as a reader of the whole file.
      what = "read " + name;
      ok = lseek(fd, 0, SEEK_SET) == 0;
      for (int j = 0; ok && j < 4; ++j) {
        ssize_t n = read(fd, buf.data(), 256 * 1024);
        ok = n >= 0;
        if (n <= 0) break;
      }
      if (ok) {
        ++result->reads;
        ++progress->reads;
      }
    }
    if (!ok) {
      fail(what);
      break;
    }
    ++result->ops;
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

// The names in `dir`, without sshfs's .fuse_hidden files (an open file
// unlinked on an sshfs origin lingers under such a name).
std::set<std::string> ListDir(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  EXPECT_NE(d, nullptr) << dir << ": " << strerror(errno);
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || absl::StartsWith(name, ".fuse_hidden")) {
      continue;
    }
    names.insert(name);
  }
  closedir(d);
  return names;
}

class CrashTest : public CachefsMountTest {
 protected:
  // One round's I/O: threads start, the daemon is killed after `delay`,
  // the threads see the dead connection and stop.
  void RunIoAndKill(uint64_t seed, absl::Duration delay) {
    int dirfd = open(mnt_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dirfd, 0) << strerror(errno);
    std::atomic<bool> killing{false};
    std::atomic<bool> stop{false};
    std::vector<IoResult> results(kThreads);
    SharedProgress progress;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back(IoThread, t, seed, dirfd, &killing, &stop,
                           &progress, &results[t]);
    }
    // The delay counts from the first read and write: over a slow origin
    // the first few operations may all be of one kind.
    const absl::Time give_up = absl::Now() + kMaxIoTime;
    while ((progress.reads.load() == 0 || progress.writes.load() == 0) &&
           absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    absl::SleepFor(delay);
    killing.store(true);
    Kill9();
    // Anything still running stops at its next operation.
    stop.store(true);
    for (std::thread& t : threads) t.join();
    close(dirfd);
    if (HasFatalFailure()) return;
    uint64_t writes = 0, reads = 0, ops = 0;
    bool disconnected = false;
    for (const IoResult& r : results) {
      EXPECT_EQ(r.unexpected, "") << "an error while the daemon ran";
      writes += r.writes;
      reads += r.reads;
      ops += r.ops;
      disconnected |= r.disconnected;
    }
    std::cout << "  " << ops << " ops (" << writes << " writes, " << reads
              << " reads) in " << delay << ", then SIGKILL"
              << (disconnected ? "; threads saw the dead connection" : "")
              << std::endl;
    // The kill has to land on running I/O, or the round tests nothing.
    EXPECT_GT(writes, 0u);
    EXPECT_GT(reads, 0u);
  }

  // Every file of the origin, read through the mount with its pages
  // dropped (so the daemon answers, from the cache or the origin), equals
  // the origin's bytes; and the mount lists the same names.
  void ExpectMountMatchesOrigin() {
    std::set<std::string> want = ListDir(OriginDir());
    EXPECT_EQ(ListDir(mnt_.path()), want);
    for (const std::string& name : want) {
      absl::StatusOr<std::string> origin_bytes =
          ReadWholeFile(OriginDir() + "/" + name);
      ASSERT_OK(origin_bytes);
      EXPECT_TRUE(SameBytes(ReadMounted(name), *origin_bytes)) << name;
    }
  }

  void KillRounds(int rounds, const std::string& options,
                  bool require_served);
  uint64_t granules_culled_ = 0;

  void WriteInitialFiles(uint64_t seed) {
    for (size_t k = 0; k < std::size(kStableSizes); ++k) {
      ASSERT_OK(WriteWholeFile(ServedPath(StableName(static_cast<int>(k))),
                               Pattern(kStableSizes[k], seed + k)));
    }
    for (int k = 0; k < kSharedFiles; ++k) {
      ASSERT_OK(
          WriteWholeFile(ServedPath(SharedName(k)),
                         Pattern((k + 1) * 300 * 1024 + k, seed + 100 + k)));
    }
  }
};

// Kills the daemon `rounds` times during I/O on one cache directory,
// mounted with `options`; after each remount every file must read as the
// origin holds it. Counts in granules_culled_ the granules culled from
// open files in the sessions after the remounts.
void CrashTest::KillRounds(int rounds, const std::string& options,
                           bool require_served) {
  const uint64_t base_seed = CrashSeed();
  WriteInitialFiles(base_seed);
  if (HasFatalFailure()) return;
  // A first session that reads everything and ends cleanly, so the cache
  // holds clean objects the crashes below must neither lose nor corrupt.
  Mount(options);
  if (HasFatalFailure()) return;
  ExpectMountMatchesOrigin();
  Unmount();
  if (HasFatalFailure()) return;

  Mount(options);
  if (HasFatalFailure()) return;
  int rounds_served_from_cache = 0;
  absl::Time start = absl::Now();
  for (int round = 0; round < rounds; ++round) {
    const uint64_t seed = base_seed + static_cast<uint64_t>(round);
    SCOPED_TRACE(absl::StrCat("round ", round, ", round seed ", seed,
                              " (CACHEFS_CRASH_SEED=", base_seed, ")"));
    std::mt19937_64 rng(seed);
    absl::Duration delay = absl::Milliseconds(50 + rng() % 451);
    std::cout << "round " << round << " seed " << seed << ":" << std::endl;
    RunIoAndKill(seed, delay);
    if (HasFatalFailure()) return;
    Mount(options);  // the same cache directory
    if (HasFatalFailure()) return;
    // The files no round writes, first: what the new daemon serves of
    // them from the cache survived the crash.
    for (size_t k = 0; k < std::size(kStableSizes); ++k) {
      std::string name = StableName(static_cast<int>(k));
      absl::StatusOr<std::string> origin_bytes =
          ReadWholeFile(OriginDir() + "/" + name);
      ASSERT_OK(origin_bytes);
      EXPECT_TRUE(SameBytes(ReadMounted(name), *origin_bytes)) << name;
    }
    std::map<std::string, uint64_t> stats = Stats();
    std::cout << "  after remount: bytes_read_from_cache="
              << stats["bytes_read_from_cache"]
              << " bytes_read_from_origin=" << stats["bytes_read_from_origin"]
              << " lookups_stale=" << stats["lookups_stale"] << std::endl;
    if (stats["bytes_read_from_cache"] > 0) ++rounds_served_from_cache;
    ExpectMountMatchesOrigin();
    // A second read: now served by whatever the first one cached.
    ExpectMountMatchesOrigin();
    if (HasFailure()) {
      ADD_FAILURE() << "replay with CACHEFS_CRASH_SEED=" << base_seed
                    << " (failed in round " << round << ", seed " << seed
                    << ")";
      return;
    }
    granules_culled_ += Stats()["granules_culled"];
    // Now and then a clean unmount, so that later crashes also hit
    // objects that were clean when written to.
    if (rng() % 3 == 0) {
      Unmount();
      if (HasFatalFailure()) return;
      Mount(options);
      if (HasFatalFailure()) return;
    }
  }
  std::cout << rounds << " rounds in " << (absl::Now() - start) << std::endl;
  if (require_served) {
    EXPECT_GT(rounds_served_from_cache, 0)
        << "after no remount did the cache serve a byte";
  }
  Unmount();
  return;
}

TEST_P(CrashTest, KillNineDuringIoThenTheMountReadsAsTheOrigin) {
  KillRounds(GetParam() == OriginKind::kLocal ? 20 : 8, "",
             /*require_served=*/true);
}

// The same under a limit far below what the files hold: culling runs all
// the time, and the open files written and read give up cold granules
// (hole punches), so kills also land between a trim's map change and its
// punch.
TEST_P(CrashTest, KillNineWhileCullingThenTheMountReadsAsTheOrigin) {
  const int rounds = GetParam() == OriginKind::kLocal ? 8 : 3;
  KillRounds(rounds, "cache_size=2M", /*require_served=*/false);
  // Whether a trim lands before a kill is up to the random operations:
  // more rounds, a bounded number of times, until one has.
  for (int more = 0; more < 3 && granules_culled_ == 0 && !HasFailure();
       ++more) {
    KillRounds(rounds, "cache_size=2M", /*require_served=*/false);
  }
  EXPECT_GT(granules_culled_, 0u) << "no granule of an open file was culled";
}

// A file open for writing when the daemon is killed: the next daemon
// discards its cached data (the map was never made durable) and says so
// once, with the count, in its log; the other files stay cached.
TEST_P(CrashTest, AfterKillNineTheLogSaysHowManyFilesWereDiscarded) {
  const std::string written = RandomData(600 * 1024, 21);
  const std::string kept = RandomData(300 * 1024, 22);
  WriteServed("written", written);
  WriteServed("kept", kept);
  Mount();
  if (HasFatalFailure()) return;
  ASSERT_EQ(ReadMounted("written"), written);
  ASSERT_EQ(ReadMounted("kept"), kept);
  // Both released (the kernel sends the release after close returns, and
  // the daemon writes the clean records in the background).
  for (int i = 0; i < 100 && Stats()["cookies_active"] > 0; ++i) {
    usleep(50 * 1000);
  }
  ASSERT_EQ(Stats()["cookies_active"], 0u);
  int fd = open(MountedPath("written").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(pwrite(fd, "changed", 7, 1000), 7) << strerror(errno);
  Kill9();
  close(fd);  // on a dead mount: the daemon never saw the close
  const std::string log = cache_tmp_.path() + "/cachefs.log";
  Mount("log=" + log);
  if (HasFatalFailure()) return;
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = ReadWholeFile(log).value_or("");
    if (text.find("not closed cleanly") != std::string::npos) break;
    usleep(100 * 1000);
  }
  EXPECT_NE(text.find(" notice " + mnt_.path() +
                      ": discarded 1 cached file ("),
            std::string::npos)
      << text;
  EXPECT_EQ(Stats()["objects_unclean_discarded"], 1u);
  std::string want = written;
  want.replace(1000, 7, "changed");
  EXPECT_EQ(ReadMounted("written"), want);
  EXPECT_EQ(ReadMounted("kept"), kept);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], want.size());
}

// `cachefs-ctl check` on the cache left by a kill -9, with a record
// damaged and a sidecar left behind on top: it reports each, refuses to
// run while a daemon uses the cache, removes them with --repair, and the
// next mount serves every file as the origin holds it.
TEST_P(CrashTest, CheckFindsAndRepairsWhatCannotBeTrusted) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  const std::string a = RandomData(600 * 1024, 51);
  const std::string b = RandomData(300 * 1024, 52);
  const std::string c = RandomData(200 * 1024, 53);
  WriteServed("a", a);
  WriteServed("b", b);
  WriteServed("c", c);
  Mount();
  if (HasFatalFailure()) return;
  for (const auto& [name, data] : {std::pair{"a", a}, {"b", b}, {"c", c}}) {
    ASSERT_EQ(ReadMounted(name), data);
  }
  for (int i = 0; i < 100 && Stats()["cookies_active"] > 0; ++i) {
    usleep(50 * 1000);
  }
  auto check = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("cachefs-ctl"), "check", cache_dir()});
    auto result = RunProgram(args, absl::Seconds(60));
    EXPECT_OK(result);
    return result.ok() ? *result : ProgramResult{};
  };
  ProgramResult busy = check({});
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE(busy.stderr_text.find("daemon is using"), std::string::npos)
      << busy.stderr_text;
  // Where b's object is, as `map` tells.
  auto map = RunProgram({BinPath("cachefs-ctl"), "map", mnt_.path(),
                         MountedPath("b"), "--json"},
                        absl::Seconds(20));
  ASSERT_OK(map);
  const size_t at = map->stdout_text.find("\"backing\": \"");
  ASSERT_NE(at, std::string::npos) << map->stdout_text;
  const size_t from = at + std::strlen("\"backing\": \"");
  const std::string b_object =
      cache_dir() + "/" +
      map->stdout_text.substr(from, map->stdout_text.find('"', from) - from);
  int fd = open(MountedPath("a").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(pwrite(fd, "new", 3, 0), 3);
  Kill9();
  close(fd);
  // b's record damaged, and a sidecar with no object.
  ASSERT_FALSE(b_object.empty());
  const std::string fan = b_object.substr(0, b_object.rfind('/'));
  ASSERT_EQ(setxattr(b_object.c_str(), "user.cachefs.object", "garbage", 7, 0),
            0);
  std::ofstream(fan + "/00000000000000ff.map") << "left";
  ProgramResult found = check({"--json"});
  EXPECT_EQ(found.exit_code, 1) << found.stderr_text;
  for (const char* kind : {"\"kind\": \"dirty\"", "\"kind\": \"corrupt\"",
                           "\"kind\": \"orphaned sidecar\""}) {
    EXPECT_NE(found.stdout_text.find(kind), std::string::npos)
        << kind << " in " << found.stdout_text;
  }
  EXPECT_NE(found.stdout_text.find("\"clean_objects\": 1"), std::string::npos)
      << found.stdout_text;
  ProgramResult repaired = check({"--repair"});
  EXPECT_EQ(repaired.exit_code, 0) << repaired.stdout_text;
  EXPECT_NE(repaired.stdout_text.find("3 problems, 0 left"), std::string::npos)
      << repaired.stdout_text;
  ProgramResult again = check({});
  EXPECT_EQ(again.exit_code, 0) << again.stdout_text;
  EXPECT_NE(again.stdout_text.find("1 objects (1 clean)"), std::string::npos)
      << again.stdout_text;
  Mount();
  if (HasFatalFailure()) return;
  std::string want_a = a;
  want_a.replace(0, 3, "new");
  EXPECT_EQ(ReadMounted("a"), want_a);
  EXPECT_EQ(ReadMounted("b"), b);
  EXPECT_EQ(ReadMounted("c"), c);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], a.size() + b.size());
}


INSTANTIATE_TEST_SUITE_P(Origins, CrashTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs,
                                           OriginKind::kNfs4),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
