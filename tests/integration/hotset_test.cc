// Learned hot sets on real mounts, over a local origin and over SSHFS: a
// program (a copy of cat under a name of its own) reads 100 files; after
// the page cache is dropped its next start finds them in the kernel's
// page cache, pushed by the replay of its trace (counters: bytes pushed,
// and a FUSE read for the first file only); `cat` itself is not learned;
// the traces survive a remount and `--forget` drops one.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "io/json_string.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

class HotSetTest : public CachefsMountTest {
 protected:
  void SetUp() override {
    CachefsMountTest::SetUp();
    CACHEFS_REQUIRE(RootPrerequisite());  // to drop the page cache
    // The program: cat under a name of its own (cat is never learned).
    program_ = cache_tmp_.path() + "/hotreader";
    std::filesystem::copy_file("/bin/cat", program_);
    ASSERT_EQ(chmod(program_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(ServedPath("d").c_str(), 0755), 0);
    WriteServed("trigger", "t");
    for (int i = 0; i < 100; ++i) {
      WriteServed(absl::StrCat("d/f", i), RandomData(20000 + 97 * i, i));
    }
  }
  // Runs `reader` over the trigger file, then (after `pause` seconds on
  // its standard input) the 100 files.
  void RunReader(const std::string& reader, int pause) {
    std::string cmd = absl::StrCat("sleep ", pause, " | ", reader, " ",
                                   MountedPath("trigger"), " -");
    for (int i = 0; i < 100; ++i) {
      absl::StrAppend(&cmd, " ", MountedPath(absl::StrCat("d/f", i)));
    }
    absl::StatusOr<ProgramResult> r =
        RunProgram({"/bin/sh", "-c", cmd + " >/dev/null"}, absl::Minutes(1));
    ASSERT_OK(r);
    ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  }
  JsonValue HotSets() {
    absl::StatusOr<ProgramResult> r = RunProgram(
        {BinPath("cachefs-ctl"), "hotsets", mnt_.path(), "--json"},
        absl::Seconds(30));
    EXPECT_OK(r);
    absl::StatusOr<JsonValue> v = ParseJson(r.ok() ? r->stdout_text : "");
    EXPECT_TRUE(v.ok()) << (r.ok() ? r->stdout_text : "");
    return v.ok() ? *v : JsonValue{};
  }
  const JsonValue* ProgramIn(const JsonValue& list, const std::string& exe) {
    for (const JsonValue& p : list.items) {
      if (p.Find("program")->text == exe) return &p;
    }
    return nullptr;
  }
  void DropPageCache() {
    sync();
    std::ofstream("/proc/sys/vm/drop_caches") << "1\n";
  }
  std::string program_;
  TempDir gate_dir_;
};

TEST_P(HotSetTest, AProgramsNextStartFindsItsFilesInThePageCache) {
  Mount("hotsets=on,hotset_window=2");
  RunReader(program_, 0);
  // Its window ends; the trace is kept.
  JsonValue learned;
  ASSERT_TRUE(Eventually(
      [&] {
        learned = HotSets();
        const JsonValue* p = ProgramIn(learned, program_);
        return p != nullptr && p->Find("files")->text == "101";
      },
      absl::Seconds(20), absl::Milliseconds(200)));
  EXPECT_GT(std::strtoull(ProgramIn(learned, program_)->Find("bytes")->text.c_str(),
                          nullptr, 10),
            2000000u);

  // The same files read by cat are not learned.
  RunReader("/bin/cat", 0);
  absl::SleepFor(absl::Milliseconds(2500));
  JsonValue after_cat = HotSets();
  EXPECT_EQ(after_cat.items.size(), 1u);
  EXPECT_EQ(ProgramIn(after_cat, "/usr/bin/cat"), nullptr);
  EXPECT_EQ(ProgramIn(after_cat, "/bin/cat"), nullptr);

  // Cold (page cache dropped), without a replay ahead: a read per file.
  DropPageCache();
  auto before = Stats();
  RunReader("/bin/cat", 0);
  const uint64_t cold_reads = Stats()["fuse_reads"] - before["fuse_reads"];
  EXPECT_GE(cold_reads, 100u);

  // The program again, page cache dropped: its first request starts the
  // replay, which has its files in the kernel's page cache by the time
  // it reads them. It waits on a FIFO until the replay has pushed them
  // (a fixed pause would race the replay on a loaded machine).
  DropPageCache();
  before = Stats();
  const std::string gate = gate_dir_.path() + "/gate";
  ASSERT_EQ(mkfifo(gate.c_str(), 0600), 0) << strerror(errno);
  std::string cmd = absl::StrCat("cat ", gate, " | ", program_, " ",
                                 MountedPath("trigger"), " -");
  for (int i = 0; i < 100; ++i) {
    absl::StrAppend(&cmd, " ", MountedPath(absl::StrCat("d/f", i)));
  }
  auto second = ChildProcess::Spawn({"/bin/sh", "-c", cmd + " >/dev/null"});
  ASSERT_OK(second);
  EXPECT_TRUE(Eventually(
      [&] {
        auto now = Stats();
        return now["hotset_bytes_pushed"] - before["hotset_bytes_pushed"] >=
               2000000u;
      },
      absl::Seconds(30), absl::Milliseconds(50)));
  std::ofstream(gate).close();  // EOF on the reader's standard input
  absl::StatusOr<int> exited = (*second)->Wait(absl::Minutes(1));
  ASSERT_OK(exited);
  ASSERT_EQ(*exited, 0);
  auto after = Stats();
  EXPECT_EQ(after["hotset_replays"] - before["hotset_replays"], 1u);
  EXPECT_GE(after["hotset_bytes_pushed"] - before["hotset_bytes_pushed"],
            2000000u);
  const uint64_t warm_reads = after["fuse_reads"] - before["fuse_reads"];
  EXPECT_LT(warm_reads, 10u) << "against " << cold_reads << " without";
  EXPECT_EQ(after["bytes_read_from_origin"], before["bytes_read_from_origin"]);
  JsonValue replayed;
  ASSERT_TRUE(Eventually(
      [&] {
        replayed = HotSets();
        const JsonValue* p = ProgramIn(replayed, program_);
        return p != nullptr && p->Find("replays")->text == "1";
      },
      absl::Seconds(10)));
  EXPECT_EQ(ProgramIn(replayed, program_)->Find("hits")->text, "101");

  // Kept across a remount; --forget drops it.
  Unmount();
  Mount("hotsets=on,hotset_window=2");
  EXPECT_NE(ProgramIn(HotSets(), program_), nullptr);
  absl::StatusOr<ProgramResult> forget = RunProgram(
      {BinPath("cachefs-ctl"), "hotsets", mnt_.path(), "--forget", program_},
      absl::Seconds(30));
  ASSERT_OK(forget);
  EXPECT_EQ(forget->exit_code, 0) << forget->stderr_text;
  EXPECT_EQ(ProgramIn(HotSets(), program_), nullptr);
  absl::StatusOr<ProgramResult> again = RunProgram(
      {BinPath("cachefs-ctl"), "hotsets", mnt_.path(), "--forget", program_},
      absl::Seconds(30));
  ASSERT_OK(again);
  EXPECT_EQ(again->exit_code, 1);
  EXPECT_NE(again->stderr_text.find("no hot set is learned for"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Origins, HotSetTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
