// A cachefs mount for integration tests: the daemon over an origin that is
// a local directory or a real SSHFS export from an sshd on loopback, with
// helpers to change the origin behind cachefs's back and to read
// `cachefs-ctl stats --json`.

#ifndef CACHEFS_TESTS_INTEGRATION_CACHEFS_MOUNT_H_
#define CACHEFS_TESTS_INTEGRATION_CACHEFS_MOUNT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/fixtures/environment.h"
#include "tests/integration/fixtures/fuse_daemon.h"
#include "tests/integration/fixtures/nfs_server.h"
#include "tests/integration/fixtures/process.h"
#include "tests/integration/fixtures/ssh_server.h"
#include "tests/integration/fixtures/sshfs_mount.h"
#include "tests/test_util.h"

namespace cachefs::testing {

// kNfs4 and kNfs3: an export of nfs-ganesha on loopback, reached by
// cachefs itself through libnfs (nfs://...), with no kernel NFS client.
enum class OriginKind { kLocal, kSshfs, kNfs4, kNfs3 };

std::string OriginKindName(const ::testing::TestParamInfo<OriginKind>& info);

// Parameterized over the origin kind. Members are destroyed in reverse
// order: cachefs, then the NFS server, sshfs, sshd, then the directories.
class CachefsMountTest : public ::testing::TestWithParam<OriginKind> {
 protected:
  void SetUp() override;

  // Starts cachefs on the origin; `options` are appended to cache=DIR.
  void Mount(const std::string& options = "");
  void Unmount();
  // A crash: SIGKILL to the daemon, then fusermount3 -uz of the dead
  // mount. Mount() again starts a new daemon on the same cache directory.
  void Kill9();

  // The directory the origin serves, written to directly: a change made
  // on the server, behind cachefs's back.
  std::string ServedPath(const std::string& name) const {
    return served_.path() + "/" + name;
  }
  // The origin as a directory to read, as cachefs's origin sees it: the
  // SSHFS mount, or the served directory itself (a local or NFS origin).
  std::string OriginDir() const {
    return nfs_ != nullptr ? served_.path() : origin_;
  }
  std::string MountedPath(const std::string& name) const {
    return mnt_.path() + "/" + name;
  }
  const std::string& cache_dir() const { return cache_dir_; }
  void WriteServed(const std::string& name, const std::string& data);
  // The file as the server has it.
  std::string ReadServed(const std::string& name);
  // Reads a file through the mount whole, first dropping its cached pages
  // so the daemon is asked. `extra_flags` go to open(2).
  std::string ReadMounted(const std::string& name, int extra_flags = 0);
  // `cachefs-ctl stats --json` as numbers.
  std::map<std::string, uint64_t> Stats();
  // `cachefs-ctl status --json` says the origin is up (not in offline
  // mode, origin_health.h).
  bool OriginUp();
  // OriginUp within 20 s: the probe notices a server back within about a
  // second.
  bool OriginComesUp();

  TempDir served_;
  TempDir sshfs_dir_;
  TempDir cache_tmp_;
  TempDir mnt_;
  std::string origin_;
  std::string cache_dir_;
  std::unique_ptr<SshServer> server_;
  std::unique_ptr<SshfsMount> sshfs_;
  std::unique_ptr<NfsServer> nfs_;
  std::unique_ptr<FuseDaemon> daemon_;
};

std::string RandomData(size_t n, uint32_t seed);

}  // namespace cachefs::testing

#endif  // CACHEFS_TESTS_INTEGRATION_CACHEFS_MOUNT_H_
