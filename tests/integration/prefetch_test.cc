// `cachefs-ctl prefetch` and `jobs` on real mounts, over a local origin
// and over SSHFS: a prefetched tree is read with no origin bytes, a second
// prefetch fetches nothing, a change is fetched again, a file deleted
// during a job is reported while the job goes on, an interrupted prefetch
// cancels its job and leaves only whole granules, and bad input gets a
// clear error.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "io/json_string.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kGranule = 256 * 1024;

class PrefetchTest : public CachefsMountTest {
 protected:
  // cachefs-ctl with `args` after the command and the mount point.
  ProgramResult Ctl(const std::string& command,
                    const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinPath("cachefs-ctl"), command,
                                     mnt_.path()};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<ProgramResult> result = RunProgram(argv, absl::Minutes(2));
    EXPECT_OK(result);
    return result.ok() ? *result : ProgramResult{};
  }
  // A prefetch with --json; its summary, parsed.
  JsonValue Prefetch(std::vector<std::string> args, int expect_exit = 0) {
    args.push_back("--json");
    ProgramResult r = Ctl("prefetch", args);
    EXPECT_EQ(r.exit_code, expect_exit) << r.stderr_text << r.stdout_text;
    absl::StatusOr<JsonValue> summary = ParseJson(r.stdout_text);
    EXPECT_TRUE(summary.ok()) << summary.status() << ": " << r.stdout_text;
    return summary.ok() ? *summary : JsonValue{};
  }
  static uint64_t Number(const JsonValue& object, const char* name) {
    const JsonValue* v = object.Find(name);
    EXPECT_NE(v, nullptr) << name;
    return v == nullptr ? 0 : std::strtoull(v->text.c_str(), nullptr, 10);
  }
  static std::string Text(const JsonValue& object, const char* name) {
    const JsonValue* v = object.Find(name);
    EXPECT_NE(v, nullptr) << name;
    return v == nullptr ? "" : v->text;
  }
  // The job `id` as `jobs --json` shows it; kNull if it is not listed.
  JsonValue JobOf(uint64_t id) {
    ProgramResult r = Ctl("jobs", {"--json"});
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    absl::StatusOr<JsonValue> jobs = ParseJson(r.stdout_text);
    EXPECT_TRUE(jobs.ok()) << jobs.status() << ": " << r.stdout_text;
    if (jobs.ok()) {
      for (const JsonValue& job : jobs->items) {
        if (Number(job, "job") == id) return job;
      }
    }
    return JsonValue{};
  }

  // A tree of files of odd sizes, some of several granules, in nested
  // directories; returns every file's name and data.
  std::vector<std::pair<std::string, std::string>> MakeTree() {
    std::vector<std::pair<std::string, std::string>> files;
    for (const char* dir : {"tree", "tree/src", "tree/src/deep", "tree/doc"}) {
      EXPECT_EQ(mkdir(ServedPath(dir).c_str(), 0755), 0) << dir;
    }
    const std::vector<std::pair<const char*, size_t>> sizes = {
        {"tree/top.bin", 3 * kGranule + 17},
        {"tree/empty", 0},
        {"tree/src/a.c", 4097},
        {"tree/src/b.c", 1},
        {"tree/src/deep/big.bin", 9 * kGranule + 1000},
        {"tree/doc/readme", 12345},
    };
    uint32_t seed = 1;
    for (const auto& [name, size] : sizes) {
      files.emplace_back(name, RandomData(size, seed++));
      WriteServed(name, files.back().second);
    }
    return files;
  }
};

TEST_P(PrefetchTest, APrefetchedTreeIsReadWithNoOriginBytes) {
  auto files = MakeTree();
  uint64_t total = 0;
  for (const auto& f : files) total += f.second.size();
  Mount();
  JsonValue first = Prefetch({MountedPath("tree"), "-r"});
  EXPECT_EQ(Text(first, "state"), "done");
  EXPECT_EQ(Number(first, "dirs_listed"), 4u);
  EXPECT_EQ(Number(first, "files_total"), files.size());
  EXPECT_EQ(Number(first, "files_done"), files.size());
  EXPECT_EQ(Number(first, "files_failed"), 0u);
  EXPECT_EQ(Number(first, "bytes_total"), total);
  EXPECT_EQ(Number(first, "bytes_fetched"), total);
  ASSERT_NE(first.Find("errors"), nullptr);
  EXPECT_TRUE(first.Find("errors")->items.empty());
  auto stats = Stats();
  EXPECT_EQ(stats["prefetch_files"], files.size());
  EXPECT_EQ(stats["prefetch_bytes"], total);
  const uint64_t fetched = stats["bytes_read_from_origin"];
  EXPECT_EQ(fetched, total);

  // Every file reads right, and not a byte comes from the origin.
  for (const auto& [name, data] : files) {
    EXPECT_EQ(ReadMounted(name), data) << name;
  }
  EXPECT_EQ(Stats()["bytes_read_from_origin"], fetched);

  // A second run finds everything cached and current.
  JsonValue second = Prefetch({MountedPath("tree"), "-r"});
  EXPECT_EQ(Number(second, "files_done"), files.size());
  EXPECT_EQ(Number(second, "bytes_done"), total);
  EXPECT_EQ(Number(second, "bytes_fetched"), 0u);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], fetched);

  // So does a run after a remount.
  Unmount();
  Mount();
  JsonValue third = Prefetch({MountedPath("tree"), "-r"});
  EXPECT_EQ(Number(third, "bytes_fetched"), 0u);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
}

TEST_P(PrefetchTest, AWalkLeavesNamesAndAttributesForLookupsWithNoRoundTrip) {
  auto files = MakeTree();
  Mount("attr_timeout=60,entry_timeout=60");
  JsonValue walked = Prefetch({MountedPath("tree"), "-r", "--meta-only"});
  EXPECT_EQ(Number(walked, "dirs_listed"), 4u);
  const uint64_t calls = Stats()["origin_calls"];
  ASSERT_GT(calls, 0u);
  // Every name and its attributes, as `find | xargs stat` asks them.
  for (const auto& [name, data] : files) {
    struct stat st;
    ASSERT_EQ(lstat(MountedPath(name).c_str(), &st), 0) << name;
    EXPECT_EQ(static_cast<size_t>(st.st_size), data.size()) << name;
  }
  auto stats = Stats();
  EXPECT_EQ(stats["origin_calls"], calls);
  EXPECT_EQ(stats["bytes_read_from_origin"], 0u);
}

TEST_P(PrefetchTest, AChangedFileIsFetchedAgainAndReadsNew) {
  auto files = MakeTree();
  Mount();
  Prefetch({MountedPath("tree"), "-r"});
  // Read once through the kernel, so its pages hold the old data.
  EXPECT_EQ(ReadMounted("tree/src/a.c"), files[2].second);
  const std::string changed = RandomData(2 * kGranule + 5, 99);
  WriteServed("tree/src/a.c", changed);
  const uint64_t before = Stats()["bytes_read_from_origin"];
  JsonValue again = Prefetch({MountedPath("tree/src"), "-r"});
  EXPECT_EQ(Number(again, "bytes_fetched"), changed.size());
  EXPECT_EQ(Stats()["bytes_read_from_origin"], before + changed.size());
  // The kernel's next open sees the change: new bytes, from the cache.
  int fd = open(MountedPath("tree/src/a.c").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string read_back(changed.size() + 10, '\0');
  ssize_t n = pread(fd, read_back.data(), read_back.size(), 0);
  close(fd);
  ASSERT_EQ(n, static_cast<ssize_t>(changed.size()));
  read_back.resize(n);
  EXPECT_TRUE(read_back == changed);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], before + changed.size());
}

TEST_P(PrefetchTest, AFileDeletedDuringAJobIsReportedAndTheJobGoesOn) {
  // One file at a time: the large file at the top is fetched first (a
  // directory's own files come before its subdirectories'), and the
  // victim below is deleted while it is.
  ASSERT_EQ(mkdir(ServedPath("d").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(ServedPath("d/sub").c_str(), 0755), 0);
  {
    int fd = open(ServedPath("d/large").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 256 << 20), 0);
    close(fd);
  }
  WriteServed("d/sub/victim", "gone soon");
  WriteServed("d/sub/kept", "stays");
  Mount("prefetch_jobs=1");
  ProgramResult started = Ctl("prefetch", {MountedPath("d"), "-r",
                                           "--background", "--json"});
  ASSERT_EQ(started.exit_code, 0) << started.stderr_text;
  absl::StatusOr<JsonValue> job = ParseJson(started.stdout_text);
  ASSERT_TRUE(job.ok()) << job.status() << ": " << started.stdout_text;
  const uint64_t id = Number(*job, "job");
  // Once the walk is done and the large file is under way.
  JsonValue seen;
  for (int i = 0; i < 2000; ++i) {
    seen = JobOf(id);
    if (seen.kind == JsonValue::Kind::kObject &&
        Text(seen, "state") != "walking") {
      break;
    }
    usleep(2000);
  }
  ASSERT_EQ(Text(seen, "state"), "fetching");
  ASSERT_EQ(Number(seen, "files_done"), 0u)
      << "the large file was done before the victim could be deleted";
  ASSERT_EQ(unlink(ServedPath("d/sub/victim").c_str()), 0);
  for (int i = 0; i < 600; ++i) {
    seen = JobOf(id);
    if (Text(seen, "state") == "done") break;
    usleep(100000);
  }
  ASSERT_EQ(Text(seen, "state"), "done");
  EXPECT_EQ(Number(seen, "files_total"), 3u);
  EXPECT_EQ(Number(seen, "files_done"), 3u);
  EXPECT_EQ(Number(seen, "files_failed"), 1u);
  const JsonValue* errors = seen.Find("errors");
  ASSERT_NE(errors, nullptr);
  ASSERT_EQ(errors->items.size(), 1u);
  EXPECT_EQ(Text(errors->items[0], "path"), "d/sub/victim");
  EXPECT_NE(Text(errors->items[0], "error").find("No such file"),
            std::string::npos);
  // The files after it were fetched.
  const uint64_t fetched = Stats()["bytes_read_from_origin"];
  EXPECT_EQ(ReadMounted("d/sub/kept"), "stays");
  EXPECT_EQ(Stats()["bytes_read_from_origin"], fetched);
  // The text summary of a job with no failure, which exits 0.
  ProgramResult text = Ctl("prefetch", {MountedPath("d"), "-r"});
  EXPECT_EQ(text.exit_code, 0) << text.stderr_text << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("prefetched 2 of 2 files"),
            std::string::npos)
      << text.stdout_text;
}

TEST_P(PrefetchTest, InterruptingAPrefetchCancelsItsJob) {
  {
    int fd = open(ServedPath("large").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    // Data, not a hole, so the check below compares real bytes.
    const std::string chunk = RandomData(1 << 20, 7);
    for (int i = 0; i < 512; ++i) {
      ASSERT_EQ(write(fd, chunk.data(), chunk.size()),
                static_cast<ssize_t>(chunk.size()));
    }
    close(fd);
  }
  const uint64_t size = uint64_t{512} << 20;
  Mount("prefetch_jobs=1");
  SpawnOptions quiet;
  quiet.pipe_stdout = quiet.pipe_stderr = true;
  auto client = ChildProcess::Spawn(
      {BinPath("cachefs-ctl"), "prefetch", mnt_.path(), MountedPath("large")},
      quiet);
  ASSERT_OK(client);
  // Interrupted once it has fetched something.
  for (int i = 0; i < 2000 && Stats()["bytes_read_from_origin"] == 0; ++i) {
    usleep(2000);
  }
  (*client)->Signal(SIGINT);
  absl::StatusOr<int> exited = (*client)->Wait(absl::Seconds(30));
  ASSERT_OK(exited);
  EXPECT_EQ(*exited, 128 + SIGINT);
  JsonValue job;
  for (int i = 0; i < 300; ++i) {
    job = JobOf(1);
    if (Text(job, "state") == "cancelled") break;
    usleep(100000);
  }
  ASSERT_EQ(Text(job, "state"), "cancelled");
  const uint64_t fetched = Stats()["bytes_read_from_origin"];
  EXPECT_LT(fetched, size) << "the job ran to its end before the interrupt";
  // What it stored is whole: an offline check reads every granule against
  // its checksum, and the file reads right.
  Unmount();
  ProgramResult check = RunProgram({BinPath("cachefs-ctl"), "check",
                                    cache_dir(), "--json"},
                                   absl::Minutes(2))
                            .value_or(ProgramResult{});
  EXPECT_EQ(check.exit_code, 0) << check.stdout_text << check.stderr_text;
  Mount();
  const std::string data = ReadMounted("large");
  EXPECT_EQ(data.size(), size);
  const std::string chunk = RandomData(1 << 20, 7);
  bool same = data.size() == size;
  for (size_t off = 0; same && off < size; off += chunk.size()) {
    same = data.compare(off, chunk.size(), chunk) == 0;
  }
  EXPECT_TRUE(same);
}

TEST_P(PrefetchTest, BadInputGetsAClearError) {
  MakeTree();
  Mount();
  struct Case {
    std::vector<std::string> args;
    const char* error;
  };
  const std::vector<Case> cases = {
      {{MountedPath("nope")}, "nope: No such file or directory"},
      {{MountedPath("tree")}, "tree is a directory: give -r"},
      {{"/tmp"}, "is not inside the mount"},
      {{}, "prefetch needs at least one PATH"},
      {{MountedPath("tree"), "--to", "1"}, "prefetch has no --to"},
  };
  for (const Case& c : cases) {
    ProgramResult r = Ctl("prefetch", c.args);
    EXPECT_EQ(r.exit_code, 1) << c.error;
    EXPECT_NE(r.stderr_text.find(c.error), std::string::npos)
        << "wanted \"" << c.error << "\" in: " << r.stderr_text;
  }
  ProgramResult meta = Ctl("stats", {"--meta-only"});
  EXPECT_NE(meta.stderr_text.find("stats has no --meta-only"),
            std::string::npos)
      << meta.stderr_text;
  // Not a cachefs mount.
  absl::StatusOr<ProgramResult> elsewhere = RunProgram(
      {BinPath("cachefs-ctl"), "prefetch", served_.path(), ServedPath("tree"),
       "-r"},
      absl::Seconds(30));
  ASSERT_OK(elsewhere);
  EXPECT_EQ(elsewhere->exit_code, 1);
  EXPECT_NE(elsewhere->stderr_text.find("is not a cachefs mount point"),
            std::string::npos)
      << elsewhere->stderr_text;
  // --meta-only fetches no data, and `jobs` lists what ran.
  JsonValue walked = Prefetch({MountedPath("tree"), "-r", "--meta-only"});
  EXPECT_EQ(Number(walked, "files_total"), 6u);
  EXPECT_EQ(Number(walked, "bytes_fetched"), 0u);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
  ProgramResult jobs = Ctl("jobs", {});
  EXPECT_EQ(jobs.exit_code, 0);
  EXPECT_NE(jobs.stdout_text.find("tree (meta only)"), std::string::npos)
      << jobs.stdout_text;
}

INSTANTIATE_TEST_SUITE_P(Origins, PrefetchTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
