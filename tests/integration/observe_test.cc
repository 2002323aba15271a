// Watching a running mount from outside: `cachefs-ctl trace` streams the
// cache's events while files are read, changed and culled, and `cachefs-ctl
// top` reports rates, the hit ratio and the hottest files, over each origin.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "io/json_string.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

constexpr size_t kGranule = 256 * 1024;

class ObserveTest : public CachefsMountTest {
 protected:
  // A `cachefs-ctl trace` writing to trace_path(), started once it has
  // been seen to receive events (a read of a probe file shows up in it).
  std::unique_ptr<ChildProcess> StartTrace(const std::vector<std::string>&
                                               extra = {"--json"}) {
    std::vector<std::string> argv = {BinPath("cachefs-ctl"), "trace",
                                     mnt_.path()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    SpawnOptions options;
    options.stdout_path = trace_path();
    options.stderr_path = trace_path() + ".err";
    auto trace = ChildProcess::Spawn(argv, options);
    EXPECT_OK(trace);
    if (!trace.ok()) return nullptr;
    if (!served_probe_) {
      WriteServed("probe", "p");
      served_probe_ = true;
    }
    // Only a read of the probe proves it: a relinquish of the probe from
    // before the client connected can arrive after it has.
    const bool listening = Eventually(
        [&] {
          ReadMounted("probe");
          return TracedARead("probe");
        },
        absl::Seconds(10), absl::Milliseconds(50));
    EXPECT_TRUE(listening) << ReadFileOrEmpty(trace_path() + ".err");
    return *std::move(trace);
  }
  std::string trace_path() const { return out_.path() + "/trace"; }

  // Whether the trace, text or JSON, has a read event of `name`.
  bool TracedARead(const std::string& name) {
    for (absl::string_view line :
         absl::StrSplit(ReadFileOrEmpty(trace_path()), '\n')) {
      if (absl::StrContains(line, " read " + name + " ") ||
          (absl::StrContains(line, "\"kind\": \"read\"") &&
           absl::StrContains(line, "\"path\": \"" + name + "\""))) {
        return true;
      }
    }
    return false;
  }

  // The JSON events of the trace about `path`, each as name -> value.
  std::vector<std::map<std::string, std::string>> EventsOf(
      const std::string& path) {
    std::vector<std::map<std::string, std::string>> events;
    for (absl::string_view line :
         absl::StrSplit(ReadFileOrEmpty(trace_path()), '\n',
                        absl::SkipEmpty())) {
      auto members =
          ParseFlatJsonObject(std::string_view(line.data(), line.size()));
      EXPECT_TRUE(members.ok()) << line;
      if (!members.ok()) continue;
      std::map<std::string, std::string> event(members->begin(),
                                               members->end());
      if (event["path"] == path) events.push_back(std::move(event));
    }
    return events;
  }

  TempDir out_;
  bool served_probe_ = false;
};

// Kinds of `events` in order, with "read" and "store" followed by their
// outcome ("read:miss").
std::vector<std::string> Kinds(
    const std::vector<std::map<std::string, std::string>>& events) {
  std::vector<std::string> kinds;
  for (auto e : events) {
    std::string kind = e["kind"];
    if (kind == "read" || kind == "lookup") kind += ":" + e["detail"];
    if (kinds.empty() || kinds.back() != kind) kinds.push_back(kind);
  }
  return kinds;
}

bool Has(const std::vector<std::string>& kinds, const std::string& kind) {
  for (const std::string& k : kinds) {
    if (k == kind) return true;
  }
  return false;
}

TEST_P(ObserveTest, TraceShowsAFileReadCachedChangedAndCulled) {
  const std::string v1 = RandomData(3 * kGranule + 100, 1);
  WriteServed("f", v1);
  Mount();
  auto trace = StartTrace();
  ASSERT_NE(trace, nullptr);

  // Cold: the object is looked up and not found, the read misses, its
  // granules are fetched from the origin and stored.
  ASSERT_EQ(ReadMounted("f"), v1);
  // Warm: the same bytes from the cache.
  ASSERT_EQ(ReadMounted("f"), v1);
  // Changed on the origin while the file is held open: the next open
  // invalidates the cached data.
  int held = open(MountedPath("f").c_str(), O_RDONLY);
  ASSERT_GE(held, 0);
  const std::string v2 = RandomData(kGranule, 2);
  WriteServed("f", v2);
  struct stat st;
  ASSERT_EQ(stat(ServedPath("f").c_str(), &st), 0);
  timespec times[2] = {{st.st_mtim.tv_sec + 5, 0}, {st.st_mtim.tv_sec + 5, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, ServedPath("f").c_str(), times, 0), 0);
  EXPECT_EQ(ReadMounted("f"), v2);
  ASSERT_EQ(close(held), 0);
  // Culled to nothing once closed.
  auto cull = RunProgram(
      {BinPath("cachefs-ctl"), "cull", mnt_.path(), "--to", "0"},
      absl::Seconds(30));
  ASSERT_OK(cull);
  ASSERT_EQ(cull->exit_code, 0) << cull->stderr_text;
  // The culls have no path: wait for them, then stop the client.
  ASSERT_TRUE(Eventually(
      [&] {
        return absl::StrContains(ReadFileOrEmpty(trace_path()),
                                 "\"kind\": \"cull\"");
      },
      absl::Seconds(10), absl::Milliseconds(50)));
  EXPECT_EQ(trace->Stop(), 128 + SIGTERM);

  const std::vector<std::string> kinds = Kinds(EventsOf("f"));
  std::string all;
  for (const std::string& k : kinds) all += k + " ";
  ASSERT_GE(kinds.size(), 4u) << all;
  EXPECT_EQ(kinds[0], "acquire") << all;
  EXPECT_EQ(kinds[1], "lookup:negative") << all;
  EXPECT_TRUE(Has(kinds, "read:miss")) << all;
  EXPECT_TRUE(Has(kinds, "fill")) << all;
  EXPECT_TRUE(Has(kinds, "store")) << all;
  EXPECT_TRUE(Has(kinds, "read:hit")) << all;
  EXPECT_TRUE(Has(kinds, "invalidate")) << all;
  EXPECT_TRUE(Has(kinds, "relinquish")) << all;
  // The first read's misses and fills cover the whole file; every fill
  // says how long the origin took.
  uint64_t filled = 0;
  for (auto e : EventsOf("f")) {
    if (e["kind"] != "fill") continue;
    filled += std::stoull(e["bytes"]);
    EXPECT_TRUE(absl::StrContains(e["detail"], " ms")) << e["detail"];
  }
  EXPECT_GE(filled, v1.size());
}

TEST_P(ObserveTest, TraceClientsThatGoAwayFreeTheirStreams) {
  WriteServed("f", RandomData(1000, 3));
  Mount();
  // More clients one after another than the daemon serves at once: each
  // one gone must have freed its stream. And text, not JSON.
  for (int i = 0; i < 10; ++i) {
    auto trace = StartTrace({});
    ASSERT_NE(trace, nullptr) << i;
    EXPECT_TRUE(absl::StrContains(ReadFileOrEmpty(trace_path()),
                                  " read probe granule 0 bytes 1 "))
        << ReadFileOrEmpty(trace_path());
    trace->Stop();
  }
  // The mount is unharmed.
  EXPECT_EQ(ReadMounted("f"), RandomData(1000, 3));
}

TEST_P(ObserveTest, TopShowsTheReadsOfTheHottestFile) {
  const std::string hot = RandomData(2 * kGranule, 4);
  WriteServed("hot", hot);
  WriteServed("cold", "c");
  Mount();
  ASSERT_EQ(ReadMounted("cold"), "c");
  SpawnOptions options;
  options.stdout_path = out_.path() + "/top";
  options.stderr_path = out_.path() + "/top.err";
  auto top = ChildProcess::Spawn(
      {BinPath("cachefs-ctl"), "top", mnt_.path(), "-n", "3"}, options);
  ASSERT_OK(top);
  // Reads all along, until top has written its three reports.
  for (int i = 0; i < 400 && (*top)->Running(); ++i) {
    ASSERT_EQ(ReadMounted("hot"), hot);
    usleep(10 * 1000);
  }
  auto code = (*top)->Wait(absl::Seconds(10));
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(out_.path() + "/top.err");
  const std::string report = ReadFileOrEmpty(out_.path() + "/top");
  // Three reports, plain text (stdout is not a terminal).
  std::vector<std::string> reports = absl::StrSplit(report, "cachefs top: ");
  EXPECT_EQ(reports.size(), 4u) << report;
  EXPECT_FALSE(absl::StrContains(report, "\033")) << report;
  for (const char* line :
       {"hit ratio ", "from cache ", "from origin ", "origin latency ",
        "culls ", "stored ", "hottest files"}) {
    EXPECT_TRUE(absl::StrContains(report, line)) << line << "\n" << report;
  }
  // The last report: hot is the file read most, and read from the cache.
  const std::string& last = reports.back();
  size_t list = last.find("hottest files");
  ASSERT_NE(list, std::string::npos) << last;
  std::vector<std::string> lines =
      absl::StrSplit(last.substr(list), '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u) << last;
  EXPECT_TRUE(absl::EndsWith(lines[1], " hot")) << last;
  EXPECT_TRUE(absl::StrContains(lines[1], "100.0 % hit")) << last;
  EXPECT_TRUE(absl::StrContains(last, "hit ratio       100.0 %")) << last;
}

TEST_P(ObserveTest, TopAndTraceOfADirectoryThatIsNoMountSayItClearly) {
  Mount();
  for (const char* command : {"top", "trace"}) {
    auto result = RunProgram(
        {BinPath("cachefs-ctl"), command, out_.path()}, absl::Seconds(10));
    ASSERT_OK(result);
    EXPECT_EQ(result->exit_code, 1);
    EXPECT_TRUE(
        absl::StrContains(result->stderr_text, "is not a cachefs mount point"))
        << result->stderr_text;
  }
}

INSTANTIATE_TEST_SUITE_P(Origins, ObserveTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
