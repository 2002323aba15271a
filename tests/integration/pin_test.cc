// Pins on real mounts, over a local origin and over SSHFS: pinned files
// are fetched whole, stay while a small cache culls everything around
// them, and after a restart; a pinned file changed on the origin is read
// new and fetched whole again; pin files and `cachefs-ctl pin` reject bad
// input clearly; SIGHUP and `cachefs-ctl reload` reread the pin file.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "io/json_string.h"
#include "tests/integration/cachefs_mount.h"

namespace cachefs::testing {
namespace {

class PinTest : public CachefsMountTest {
 protected:
  void SetUp() override {
    CachefsMountTest::SetUp();
    pin_file_ = cache_tmp_.path() + "/pins.txt";
  }
  void WritePinFile(const std::string& text) {
    std::ofstream(pin_file_, std::ios::trunc) << text;
  }
  ProgramResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinPath("cachefs-ctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<ProgramResult> result = RunProgram(argv, absl::Minutes(1));
    EXPECT_OK(result);
    return result.ok() ? *result : ProgramResult{};
  }
  JsonValue Pins() {
    ProgramResult r = Ctl({"pins", mnt_.path(), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    absl::StatusOr<JsonValue> pins = ParseJson(r.stdout_text);
    EXPECT_TRUE(pins.ok()) << pins.status() << ": " << r.stdout_text;
    return pins.ok() ? *pins : JsonValue{};
  }
  // path -> (state, size) of every pinned file.
  std::map<std::string, std::pair<std::string, uint64_t>> PinnedFiles() {
    std::map<std::string, std::pair<std::string, uint64_t>> out;
    JsonValue pins = Pins();
    const JsonValue* files = pins.Find("files");
    if (files == nullptr) return out;
    for (const JsonValue& f : files->items) {
      out[f.Find("path")->text] = {
          f.Find("state")->text,
          std::strtoull(f.Find("size")->text.c_str(), nullptr, 10)};
    }
    return out;
  }
  // Waits until exactly `want` are pinned, all on disk.
  bool AllOnDisk(const std::map<std::string, uint64_t>& want) {
    return Eventually(
        [&] {
          auto files = PinnedFiles();
          if (files.size() != want.size()) return false;
          for (const auto& [path, size] : want) {
            auto it = files.find(path);
            if (it == files.end() || it->second.first != "on disk" ||
                it->second.second != size) {
              return false;
            }
          }
          return true;
        },
        absl::Seconds(60), absl::Milliseconds(100));
  }
  std::string pin_file_;
};

TEST_P(PinTest, PinnedFilesStayWhileASmallCacheCullsAroundThem) {
  ASSERT_EQ(mkdir(ServedPath("keep").c_str(), 0755), 0);
  std::map<std::string, uint64_t> pinned;
  std::map<std::string, std::string> data;
  for (int i = 0; i < 3; ++i) {
    const std::string name = absl::StrCat("keep/k", i);
    data[name] = RandomData((1 << 20) + 100 * i, 100 + i);
    WriteServed(name, data[name]);
    pinned[name] = data[name].size();
  }
  WriteServed("extra", RandomData(300000, 5));
  WritePinFile("# kept whole\nkeep/*\n\n");
  const std::string options =
      absl::StrCat("pin=", pin_file_, ",cache_size=6M");
  Mount(options);
  ASSERT_TRUE(AllOnDisk(pinned));
  // A pin made through cachefs-ctl too.
  ProgramResult pin = Ctl({"pin", mnt_.path(), MountedPath("extra")});
  ASSERT_EQ(pin.exit_code, 0) << pin.stderr_text;
  pinned["extra"] = 300000;
  ASSERT_TRUE(AllOnDisk(pinned));
  EXPECT_EQ(Stats()["pinned_files"], 4u);

  // Four times the limit read around them.
  for (int i = 0; i < 16; ++i) {
    const std::string name = absl::StrCat("other", i);
    const std::string other = RandomData(1536 * 1024, i);
    WriteServed(name, other);
    ASSERT_TRUE(ReadMounted(name) == other) << name;
  }
  auto stats = Stats();
  EXPECT_GT(stats["culls"], 0u);
  EXPECT_TRUE(Eventually([&] { return Stats()["bytes_stored"] <= (6u << 20); }))
      << Stats()["bytes_stored"];
  // Every pinned file is still whole in the cache: read with no origin byte.
  const uint64_t before = Stats()["bytes_read_from_origin"];
  for (const auto& [name, bytes] : data) {
    EXPECT_TRUE(ReadMounted(name) == bytes) << name;
  }
  EXPECT_EQ(Stats()["bytes_read_from_origin"], before);

  // And after a restart, with the pin made through cachefs-ctl kept.
  Unmount();
  Mount(options);
  ASSERT_TRUE(AllOnDisk(pinned));
  JsonValue pins = Pins();
  bool kept = false;
  for (const JsonValue& rule : pins.Find("rules")->items) {
    kept |= rule.Find("rule")->text == "extra" &&
            rule.Find("source")->text == "cachefs-ctl pin";
  }
  EXPECT_TRUE(kept);
  for (const auto& [name, bytes] : data) {
    EXPECT_TRUE(ReadMounted(name) == bytes) << name;
  }
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
  // Unpinned, they may go.
  ProgramResult unpin = Ctl({"unpin", mnt_.path(), MountedPath("extra")});
  EXPECT_EQ(unpin.exit_code, 0) << unpin.stderr_text;
  pinned.erase("extra");
  ASSERT_TRUE(AllOnDisk(pinned));
  ProgramResult cull = Ctl({"cull", mnt_.path(), "--to", "0"});
  EXPECT_EQ(cull.exit_code, 0) << cull.stderr_text;
  for (const auto& [name, bytes] : data) {
    EXPECT_TRUE(ReadMounted(name) == bytes) << name;
  }
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
  EXPECT_EQ(ReadMounted("extra").size(), 300000u);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 300000u);
}

TEST_P(PinTest, APinnedFileChangedOnTheOriginIsFetchedWholeAgain) {
  WriteServed("data.bin", RandomData(4 << 20, 1));
  WritePinFile("data.bin\n");
  Mount(absl::StrCat("pin=", pin_file_));
  ASSERT_TRUE(AllOnDisk({{"data.bin", 4u << 20}}));
  const std::string changed = RandomData((5 << 20) + 3, 2);
  WriteServed("data.bin", changed);
  // The next open reads the new bytes (one page of them here).
  int fd = open(MountedPath("data.bin").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string head(4096, '\0');
  ASSERT_EQ(pread(fd, head.data(), head.size(), 0), 4096);
  close(fd);
  EXPECT_TRUE(head == changed.substr(0, 4096));
  // ... and the pin fetches the rest of the new version whole.
  ASSERT_TRUE(AllOnDisk({{"data.bin", changed.size()}}));
  const uint64_t before = Stats()["bytes_read_from_origin"];
  EXPECT_TRUE(ReadMounted("data.bin") == changed);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], before);
}

TEST_P(PinTest, BadPinInputIsAClearError) {
  // A bad line stops the mount, naming the file and the line.
  WritePinFile("ok/path\n# comment\n/etc/passwd\n");
  absl::StatusOr<ProgramResult> refused = RunProgram(
      {BinPath("cachefs"), origin_, mnt_.path(), "-f", "-o",
       absl::StrCat("cache=", cache_dir(), ",pin=", pin_file_)},
      absl::Seconds(30));
  ASSERT_OK(refused);
  EXPECT_NE(refused->exit_code, 0);
  EXPECT_NE(refused->stderr_text.find(absl::StrCat(
                "pin file ", pin_file_, " line 3: an absolute path")),
            std::string::npos)
      << refused->stderr_text;
  absl::StatusOr<ProgramResult> unreadable = RunProgram(
      {BinPath("cachefs"), origin_, mnt_.path(), "-f", "-o",
       absl::StrCat("cache=", cache_dir(), ",pin=", pin_file_, ".missing")},
      absl::Seconds(30));
  ASSERT_OK(unreadable);
  EXPECT_NE(unreadable->exit_code, 0);
  EXPECT_NE(unreadable->stderr_text.find("cannot read the pin file"),
            std::string::npos)
      << unreadable->stderr_text;

  // A glob that matches nothing is a warning, not an error.
  WriteServed("a", "a");
  ASSERT_EQ(mkdir(ServedPath("dir").c_str(), 0755), 0);
  WritePinFile("a\nnothing/*.so\n");
  Mount(absl::StrCat("pin=", pin_file_));
  ASSERT_TRUE(AllOnDisk({{"a", 1}}));
  ProgramResult listed = Ctl({"pins", mnt_.path()});
  EXPECT_NE(listed.stdout_text.find("warning: nothing/*.so"),
            std::string::npos)
      << listed.stdout_text;

  struct Case {
    std::vector<std::string> args;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {{"pin", mnt_.path(), MountedPath("nope")},
            "nope: No such file or directory"},
           {{"pin", mnt_.path(), "/tmp"}, "is not inside the mount"},
           {{"pin", mnt_.path(), MountedPath("dir")},
            "dir is a directory: give -r"},
           {{"unpin", mnt_.path(), MountedPath("a")},
            "no cachefs-ctl pin rule names these paths"},
           {{"pins", mnt_.path(), "-r"}, "pins has no -r"},
       }) {
    ProgramResult r = Ctl(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.error;
    EXPECT_NE(r.stderr_text.find(c.error), std::string::npos)
        << "wanted \"" << c.error << "\" in: " << r.stderr_text;
  }

  // A reload of a file gone bad is refused, and the rules stay.
  WritePinFile("a\n[oops\n");
  ProgramResult reload = Ctl({"reload", mnt_.path()});
  EXPECT_EQ(reload.exit_code, 1);
  EXPECT_NE(reload.stderr_text.find("line 2: an unclosed ["),
            std::string::npos)
      << reload.stderr_text;
  EXPECT_EQ(Pins().Find("rules")->items.size(), 2u);
  // SIGHUP rereads it once it is good, and the mount stays.
  WriteServed("b", "bb");
  WritePinFile("a\nb\n");
  ASSERT_EQ(kill(daemon_->pid(), SIGHUP), 0);
  EXPECT_TRUE(AllOnDisk({{"a", 1}, {"b", 2}}));
  EXPECT_EQ(ReadMounted("b"), "bb");
}

// The daemon's cache file of `name`, as `cachefs-ctl map --json` names it.
std::string BackingOf(const std::string& mnt,
                      const std::string& cache_dir, const std::string& path) {
  absl::StatusOr<ProgramResult> map = RunProgram(
      {BinPath("cachefs-ctl"), "map", mnt, path, "--json"}, absl::Seconds(30));
  if (!map.ok()) return "";
  absl::StatusOr<JsonValue> parsed = ParseJson(map->stdout_text);
  if (!parsed.ok() || parsed->items.empty()) return "";
  const JsonValue* backing = parsed->items[0].Find("backing");
  return backing == nullptr ? "" : cache_dir + "/" + backing->text;
}

// The fraction of `path`'s pages in the page cache (mincore).
double ResidentFraction(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  struct stat st;
  fstat(fd, &st);
  void* addr = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (addr == MAP_FAILED) return -1;
  const size_t pages = (st.st_size + 4095) / 4096;
  std::vector<unsigned char> vec(pages);
  double resident = -1;
  if (mincore(addr, st.st_size, vec.data()) == 0) {
    size_t n = 0;
    for (unsigned char v : vec) n += v & 1;
    resident = static_cast<double>(n) / pages;
  }
  munmap(addr, st.st_size);
  return resident;
}

void DropPageCache() {
  sync();
  std::ofstream("/proc/sys/vm/drop_caches") << "3\n";
}

// Bytes the daemon has locked in RAM (VmLck).
uint64_t LockedBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmLck:", 0) == 0) {
      return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
    }
  }
  return 0;
}

TEST_P(PinTest, ARamPinnedFileIsReadFromMemoryAfterTheCachesAreDropped) {
  CACHEFS_REQUIRE(RootPrerequisite());  // to drop the page cache
  const std::string data = RandomData((6 << 20) + 1234, 3);
  WriteServed("hot.bin", data);
  WritePinFile("hot.bin\n");
  Mount(absl::StrCat("pin=", pin_file_, ",pin_memory=16M"));
  ASSERT_TRUE(Eventually(
      [&] { return PinnedFiles()["hot.bin"].first == "in memory"; },
      absl::Seconds(60), absl::Milliseconds(100)))
      << Ctl({"pins", mnt_.path()}).stdout_text << daemon_->ReadStderr();
  const std::string backing =
      BackingOf(mnt_.path(), cache_dir(), MountedPath("hot.bin"));
  ASSERT_FALSE(backing.empty());
  EXPECT_GE(LockedBytes(daemon_->pid()), data.size());
  DropPageCache();
  // The locked pages stayed.
  EXPECT_EQ(ResidentFraction(backing), 1.0);
  auto before = Stats();
  EXPECT_TRUE(ReadMounted("hot.bin") == data);
  auto after = Stats();
  const uint64_t from_cache =
      after["bytes_read_from_cache"] - before["bytes_read_from_cache"];
  EXPECT_GE(from_cache, data.size());
  // Every one of them from memory: no cache disk read.
  EXPECT_EQ(after["bytes_read_from_memory"] - before["bytes_read_from_memory"],
            from_cache);
  EXPECT_EQ(after["bytes_read_from_origin"], before["bytes_read_from_origin"]);
  EXPECT_GE(after["pinned_bytes_memory"], data.size());
}

TEST_P(PinTest, TheMemoryBudgetIsNeverExceededAndGoesInPinOrder) {
  std::string rules;
  for (int i = 4; i >= 0; --i) {
    const std::string name = absl::StrCat("f", i);
    WriteServed(name, RandomData(3 << 20, i));
    rules += name + "\n";
  }
  WritePinFile(rules);
  Mount(absl::StrCat("pin=", pin_file_, ",pin_memory=10M"));
  ASSERT_TRUE(Eventually(
      [&] {
        auto files = PinnedFiles();
        int in_memory = 0;
        for (const auto& [path, state] : files) {
          in_memory += state.first == "in memory";
        }
        return in_memory == 3;
      },
      absl::Seconds(60), absl::Milliseconds(100)))
      << Ctl({"pins", mnt_.path()}).stdout_text;
  // The first three rules' files, and no more than the budget.
  auto files = PinnedFiles();
  for (const char* name : {"f4", "f3", "f2"}) {
    EXPECT_EQ(files[name].first, "in memory") << name;
  }
  for (const char* name : {"f1", "f0"}) {
    EXPECT_EQ(files[name].first, "on disk") << name;
  }
  EXPECT_LE(Stats()["pinned_bytes_memory"], 10u << 20);
  EXPECT_LE(LockedBytes(daemon_->pid()), 10u << 20);
}

TEST_P(PinTest, PressureLetsGoOfTheLeastRecentlyUsedAndTheyComeBack) {
  const std::string pressure = cache_tmp_.path() + "/pressure";
  std::ofstream(pressure) << "0";
  for (const char* name : {"a", "b", "c", "d"}) {
    WriteServed(name, RandomData(2 << 20, name[0]));
  }
  WritePinFile("a\nb\nc\nd\n");
  Mount(absl::StrCat("pin=", pin_file_, ",pin_memory=8400K,",
                     "memory_pressure=file:", pressure, ",pressure_calm=2"));
  auto in_memory = [&] {
    std::set<std::string> out;
    for (const auto& [path, state] : PinnedFiles()) {
      if (state.first == "in memory") out.insert(path);
    }
    return out;
  };
  const std::set<std::string> all = {"a", "b", "c", "d"};
  ASSERT_TRUE(Eventually([&] { return in_memory() == all; },
                         absl::Seconds(60), absl::Milliseconds(100)));
  // Used in this order: a is the least recently used.
  for (const char* name : {"a", "b", "c", "d"}) {
    EXPECT_EQ(ReadMounted(name).size(), 2u << 20);
  }
  std::ofstream(pressure, std::ios::trunc) << "1";
  // Down to half the budget: the two used longest ago go first.
  EXPECT_TRUE(Eventually(
      [&] { return in_memory() == std::set<std::string>{"c", "d"}; },
      absl::Seconds(10), absl::Milliseconds(50)));
  EXPECT_NE(Ctl({"status", mnt_.path()}).stdout_text.find("under pressure"),
            std::string::npos);
  // Pressure that goes on takes the rest.
  EXPECT_TRUE(Eventually([&] { return in_memory().empty(); },
                         absl::Seconds(10), absl::Milliseconds(50)));
  auto stats = Stats();
  EXPECT_GE(stats["memory_pressure_events"], 2u);
  EXPECT_EQ(stats["pin_releases"], 4u);
  EXPECT_EQ(stats["pinned_bytes_memory"], 0u);
  // Still pinned on disk meanwhile.
  const uint64_t before = stats["bytes_read_from_origin"];
  EXPECT_EQ(ReadMounted("a").size(), 2u << 20);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], before);
  // Once it has passed, and stayed away, they are locked again.
  std::ofstream(pressure, std::ios::trunc) << "0";
  EXPECT_TRUE(Eventually([&] { return in_memory() == all; },
                         absl::Seconds(20), absl::Milliseconds(100)));
  EXPECT_EQ(Stats()["pin_restores"], 4u);
}

TEST_P(PinTest, ARealPsiTriggerIsArmedWhereTheKernelHasPsi) {
  if (access("/proc/pressure/memory", R_OK | W_OK) != 0) {
    CACHEFS_REQUIRE(absl::FailedPreconditionError(
        "/proc/pressure/memory is missing: this kernel has no PSI"));
  }
  WriteServed("a", "a");
  WritePinFile("a\n");
  Mount(absl::StrCat("pin=", pin_file_, ",pin_memory=1M,memory_pressure=psi"));
  ProgramResult status = Ctl({"status", mnt_.path()});
  EXPECT_NE(status.stdout_text.find(
                "no pressure (psi: /proc/pressure/memory (some 150 ms "
                "stalled in 2 s))"),
            std::string::npos)
      << status.stdout_text;
}

TEST_P(PinTest, FilesProcessesMapArePinnedInMemoryWhileMapped) {
  // A program run from the mount: the kernel maps its executable.
  std::filesystem::copy_file("/bin/sleep", ServedPath("tool"));
  ASSERT_EQ(chmod(ServedPath("tool").c_str(), 0755), 0);
  WriteServed("other", RandomData(100000, 1));
  Mount("pin_memory=64M,pin_mapped=1");
  auto tool = ChildProcess::Spawn({MountedPath("tool"), "60"});
  ASSERT_OK(tool);
  std::string rule;
  ASSERT_TRUE(Eventually(
      [&] {
        JsonValue pins = Pins();
        const JsonValue* files = pins.Find("files");
        if (files == nullptr) return false;
        for (const JsonValue& f : files->items) {
          if (f.Find("path")->text == "tool" &&
              f.Find("state")->text == "in memory") {
            rule = f.Find("rule")->text;
            return true;
          }
        }
        return false;
      },
      absl::Seconds(30), absl::Milliseconds(200)))
      << Ctl({"pins", mnt_.path()}).stdout_text;
  EXPECT_EQ(rule, "mapped by 1 process");
  EXPECT_EQ(PinnedFiles().count("other"), 0u);
  // Unpinned once no process maps it.
  (*tool)->Stop();
  EXPECT_TRUE(Eventually([&] { return PinnedFiles().empty(); },
                         absl::Seconds(30), absl::Milliseconds(200)));
  EXPECT_EQ(Stats()["pinned_bytes_memory"], 0u);
}

TEST_P(PinTest, BadMemoryOptionsAreRefused) {
  for (const auto& [option, error] :
       std::vector<std::pair<std::string, std::string>>{
           {"pin_memory=lots", "-o pin_memory=lots"},
           {"pin_memory=100T", "more than this machine's RAM"},
           {"memory_pressure=sometimes",
            "expected psi, meminfo, file:PATH or off"},
       }) {
    absl::StatusOr<ProgramResult> refused = RunProgram(
        {BinPath("cachefs"), origin_, mnt_.path(), "-f", "-o",
         absl::StrCat("cache=", cache_dir(), ",", option)},
        absl::Seconds(30));
    ASSERT_OK(refused);
    EXPECT_NE(refused->exit_code, 0) << option;
    EXPECT_NE(refused->stderr_text.find(error), std::string::npos)
        << option << ": " << refused->stderr_text;
  }
}

INSTANTIATE_TEST_SUITE_P(Origins, PinTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
