// Granule checksums through a real mount: bytes changed in a backing file
// behind the daemon's back (a failing disk, a stray write) are caught by
// their CRC-32C when read, the granule is fetched again from the origin,
// the reader sees the origin's data, and the operator sees a counter and a
// log line; `cachefs-ctl check` finds the same damage offline. With
// -o verify=off the damage reaches the reader: the check is what stops it.

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/files.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kGranule = 256 * 1024;

class ChecksumTest : public CachefsMountTest {
 protected:
  // The backing file of `name`, as `cachefs-ctl map --json` names it.
  std::string BackingFileOf(const std::string& name) {
    auto map = RunProgram({BinPath("cachefs-ctl"), "map", mnt_.path(),
                           MountedPath(name), "--json"},
                          absl::Seconds(20));
    EXPECT_OK(map);
    if (!map.ok()) return "";
    const std::string key = "\"backing\": \"";
    const size_t at = map->stdout_text.find(key);
    EXPECT_NE(at, std::string::npos) << map->stdout_text;
    if (at == std::string::npos) return "";
    const size_t from = at + key.size();
    return cache_dir() + "/" +
           map->stdout_text.substr(from, map->stdout_text.find('"', from) -
                                             from);
  }

  // Overwrites 4 bytes at `offset` of `path` with their complement.
  void Flip(const std::string& path, uint64_t offset) {
    int fd = open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
    char bytes[4];
    ASSERT_EQ(pread(fd, bytes, 4, offset), 4);
    for (char& c : bytes) c = static_cast<char>(~c);
    ASSERT_EQ(pwrite(fd, bytes, 4, offset), 4);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }

  ProgramResult Check(std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("cachefs-ctl"), "check", cache_dir()});
    auto result = RunProgram(args, absl::Seconds(60));
    EXPECT_OK(result);
    return result.ok() ? *result : ProgramResult{};
  }

  // Caches `data` as "file" and returns its backing file, unmounted.
  std::string CacheAndUnmount(const std::string& data) {
    WriteServed("file", data);
    Mount();
    if (HasFatalFailure()) return "";
    EXPECT_EQ(ReadMounted("file"), data);
    const std::string backing = BackingFileOf("file");
    Unmount();
    return backing;
  }
};

TEST_P(ChecksumTest, ADamagedGranuleIsFetchedAgainAndReported) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  const std::string data = RandomData(4 * kGranule + 5000, 61);
  const std::string backing = CacheAndUnmount(data);
  ASSERT_FALSE(backing.empty());
  Flip(backing, kGranule + 1234);      // granule 1
  Flip(backing, 4 * kGranule + 4000);  // the partial last granule
  const std::string log = cache_tmp_.path() + "/cachefs.log";
  Mount("log=" + log);
  if (HasFatalFailure()) return;
  EXPECT_EQ(ReadMounted("file"), data);
  auto stats = Stats();
  EXPECT_EQ(stats["checksum_errors"], 2u);
  // Just the two damaged granules came from the origin again.
  EXPECT_EQ(stats["bytes_read_from_origin"], kGranule + 5000);
  // Stored again, with their checksums: the next read is clean.
  EXPECT_EQ(ReadMounted("file"), data);
  stats = Stats();
  EXPECT_EQ(stats["checksum_errors"], 2u);
  EXPECT_EQ(stats["bytes_read_from_origin"], kGranule + 5000);
  std::string text = ReadWholeFile(log).value_or("");
  EXPECT_NE(text.find("checksum mismatch in granule"), std::string::npos)
      << text;
  // And across a restart too.
  Unmount();
  Mount();
  if (HasFatalFailure()) return;
  EXPECT_EQ(ReadMounted("file"), data);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
  EXPECT_EQ(Stats()["checksum_errors"], 0u);
}

TEST_P(ChecksumTest, WithVerifyOffTheDamageReachesTheReader) {
  const std::string data = RandomData(2 * kGranule, 62);
  const std::string backing = CacheAndUnmount(data);
  ASSERT_FALSE(backing.empty());
  Flip(backing, 100);
  Mount("verify=off");
  if (HasFatalFailure()) return;
  const std::string got = ReadMounted("file");
  ASSERT_EQ(got.size(), data.size());
  EXPECT_NE(got.substr(100, 4), data.substr(100, 4));
  EXPECT_EQ(got.substr(104), data.substr(104));
  EXPECT_EQ(Stats()["checksum_errors"], 0u);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], 0u);
}

TEST_P(ChecksumTest, CheckFindsDamagedDataOfflineAndRepairRemovesIt) {
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  const std::string data = RandomData(3 * kGranule, 63);
  const std::string backing = CacheAndUnmount(data);
  ASSERT_FALSE(backing.empty());
  ProgramResult clean = Check({});
  EXPECT_EQ(clean.exit_code, 0) << clean.stdout_text << clean.stderr_text;
  Flip(backing, 2 * kGranule + 10);
  // Records only: the damage is in the data.
  ProgramResult quick = Check({"--quick"});
  EXPECT_EQ(quick.exit_code, 0) << quick.stdout_text;
  ProgramResult found = Check({"--json"});
  EXPECT_EQ(found.exit_code, 1) << found.stdout_text << found.stderr_text;
  EXPECT_NE(found.stdout_text.find("\"kind\": \"checksum\""), std::string::npos)
      << found.stdout_text;
  EXPECT_NE(found.stdout_text.find("granule 2"), std::string::npos)
      << found.stdout_text;
  ProgramResult repaired = Check({"--repair"});
  EXPECT_EQ(repaired.exit_code, 0) << repaired.stdout_text;
  EXPECT_NE(repaired.stdout_text.find("1 problems, 0 left"), std::string::npos)
      << repaired.stdout_text;
  EXPECT_NE(access(backing.c_str(), F_OK), 0);
  Mount();
  if (HasFatalFailure()) return;
  EXPECT_EQ(ReadMounted("file"), data);
  EXPECT_EQ(Stats()["bytes_read_from_origin"], data.size());
}

INSTANTIATE_TEST_SUITE_P(Origins, ChecksumTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
