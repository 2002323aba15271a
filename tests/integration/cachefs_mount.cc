#include "tests/integration/cachefs_mount.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <cstdlib>

#include "io/json_string.h"

namespace cachefs::testing {

std::string OriginKindName(const ::testing::TestParamInfo<OriginKind>& info) {
  switch (info.param) {
    case OriginKind::kLocal:
      return "Local";
    case OriginKind::kSshfs:
      return "Sshfs";
    case OriginKind::kNfs4:
      return "Nfs4";
    case OriginKind::kNfs3:
      return "Nfs3";
  }
  return "Unknown";
}

std::string RandomData(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = char(v >> (8 * j));
  }
  return s;
}

void CachefsMountTest::SetUp() {
  CACHEFS_REQUIRE(FusePrerequisites());
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs"));
  CACHEFS_REQUIRE(BuiltProgramPrerequisite("cachefs-ctl"));
  cache_dir_ = cache_tmp_.path() + "/cache";
  origin_ = served_.path();
  if (GetParam() == OriginKind::kSshfs) {
    CACHEFS_REQUIRE(SshfsPrerequisites());
    auto server = SshServer::Start();
    ASSERT_OK(server);
    server_ = *std::move(server);
    auto sshfs = SshfsMount::Mount(*server_, served_.path(),
                                   sshfs_dir_.path() + "/origin");
    ASSERT_OK(sshfs);
    sshfs_ = *std::move(sshfs);
    origin_ = sshfs_->mount_point();
  }
  if (GetParam() == OriginKind::kNfs4 || GetParam() == OriginKind::kNfs3) {
    CACHEFS_REQUIRE(NfsServerPrerequisites());
    const bool v3 = GetParam() == OriginKind::kNfs3;
    auto server = NfsServer::Start(served_.path(), {.v3 = v3});
    ASSERT_OK(server);
    nfs_ = *std::move(server);
    origin_ = nfs_->Url(v3 ? 3 : 4);
  }
}

void CachefsMountTest::Mount(const std::string& options) {
  std::string opts = "cache=" + cache_dir_;
  if (!options.empty()) opts += "," + options;
  auto daemon = FuseDaemon::Start(
      {BinPath("cachefs"), origin_, mnt_.path(), "-f", "-o", opts},
      mnt_.path(), "fuse.cachefs");
  ASSERT_OK(daemon);
  daemon_ = *std::move(daemon);
}

void CachefsMountTest::Unmount() {
  ASSERT_NE(daemon_, nullptr);
  auto code = daemon_->Unmount();
  ASSERT_OK(code);
  EXPECT_EQ(*code, 0) << daemon_->ReadStderr();
  daemon_.reset();
}

void CachefsMountTest::Kill9() {
  ASSERT_NE(daemon_, nullptr);
  absl::Status unmounted = daemon_->Kill9();
  daemon_.reset();
  ASSERT_OK(unmounted);
}

void CachefsMountTest::WriteServed(const std::string& name,
                                   const std::string& data) {
  std::ofstream out(ServedPath(name), std::ios::binary | std::ios::trunc);
  out << data;
  ASSERT_TRUE(out.good()) << ServedPath(name);
}

std::string CachefsMountTest::ReadServed(const std::string& name) {
  std::ifstream in(ServedPath(name), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string CachefsMountTest::ReadMounted(const std::string& name,
                                          int extra_flags) {
  int fd = open(MountedPath(name).c_str(), O_RDONLY | extra_flags);
  EXPECT_GE(fd, 0) << MountedPath(name) << ": " << strerror(errno);
  if (fd < 0) return "";
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string out;
  // Aligned, in case of O_DIRECT.
  constexpr size_t kChunk = 1 << 20;
  void* buf = aligned_alloc(4096, kChunk);
  while (true) {
    ssize_t n = read(fd, buf, kChunk);
    EXPECT_GE(n, 0) << strerror(errno);
    if (n <= 0) break;
    out.append(static_cast<char*>(buf), n);
  }
  free(buf);
  close(fd);
  return out;
}

bool CachefsMountTest::OriginUp() {
  auto result =
      RunProgram({BinPath("cachefs-ctl"), "status", mnt_.path(), "--json"},
                 absl::Seconds(10));
  return result.ok() && result->exit_code == 0 &&
         result->stdout_text.find("\"origin_up\": true") != std::string::npos;
}

bool CachefsMountTest::OriginComesUp() {
  return Eventually([&] { return OriginUp(); }, absl::Seconds(20),
                    absl::Milliseconds(100));
}

std::map<std::string, uint64_t> CachefsMountTest::Stats() {
  std::map<std::string, uint64_t> stats;
  auto result = RunProgram(
      {BinPath("cachefs-ctl"), "stats", mnt_.path(), "--json"},
      absl::Seconds(10));
  EXPECT_OK(result);
  if (!result.ok()) return stats;
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  // {"name": 123, ...}: every value of stats --json is a number.
  auto members = ParseFlatJsonObject(result->stdout_text);
  EXPECT_OK(members);
  if (!members.ok()) return stats;
  for (const auto& [name, value] : *members) {
    stats[name] = std::strtoull(value.c_str(), nullptr, 10);
  }
  EXPECT_TRUE(stats.count("bytes_read_from_origin")) << result->stdout_text;
  return stats;
}

}  // namespace cachefs::testing
