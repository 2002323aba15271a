// OpenBackingFile and DirectIoSupported on ext4 (/var/tmp), on tmpfs
// (/dev/shm) and on a filesystem that refuses O_DIRECT, emulated through
// the Env seam the way the kernel refuses it (EINVAL after the name is
// created). Linux 6.6 and later let tmpfs accept O_DIRECT, so the refusing
// case cannot rely on /dev/shm.

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "io/errno_status.h"
#include "io/io_engine.h"
#include "tests/io/io_test_util.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using ::cachefs::testing::AlignedBuffer;
using ::cachefs::testing::FillPattern;
using ::cachefs::testing::FirstMismatch;

bool HasODirect(int fd) { return (fcntl(fd, F_GETFL) & O_DIRECT) != 0; }

// The directory holds nothing: a probe left no file behind.
void ExpectEmpty(Env* env, int dirfd) {
  absl::StatusOr<std::vector<DirEntry>> entries = env->ReadDir(dirfd, ".");
  ASSERT_OK(entries);
  for (const DirEntry& e : *entries) ADD_FAILURE() << "left behind: " << e.name;
}

// Writes and reads back through an engine, honouring `direct`.
void ExpectRoundTrip(int fd, bool direct) {
  absl::StatusOr<std::unique_ptr<IoEngine>> engine =
      IoEngine::Create(Env::Default(), IoEngineOptions{.queue_depth = 4});
  ASSERT_OK(engine);
  BackingFile file{fd, direct};
  AlignedBuffer buf(64 * 1024);
  FillPattern(buf.data(), buf.size(), 17, 4096);
  iovec v = buf.iov(0, buf.size());
  ASSERT_OK((*engine)->WriteIterToCacheSync(file, 4096, {&v, 1}));
  std::memset(buf.data(), 0, buf.size());
  absl::StatusOr<size_t> n = (*engine)->ReadToIterSync(file, 4096, {&v, 1});
  ASSERT_OK(n);
  EXPECT_EQ(*n, buf.size());
  EXPECT_EQ(FirstMismatch(buf.data(), buf.size(), 17, 4096), -1);
}

// Refuses O_DIRECT as Linux does on a filesystem without direct I/O.
class RefusingEnv : public EnvWrapper {
 public:
  RefusingEnv() : EnvWrapper(Env::Default()) {}
  absl::StatusOr<int> OpenAt(int dirfd, const std::string& path, int flags,
                             mode_t mode) override {
    if ((flags & O_DIRECT) == 0) {
      return target()->OpenAt(dirfd, path, flags, mode);
    }
    if ((flags & O_TMPFILE) != O_TMPFILE) {
      absl::StatusOr<int> fd =
          target()->OpenAt(dirfd, path, flags & ~O_DIRECT, mode);
      if (!fd.ok()) return fd;
      close(*fd);
    }
    return ErrnoToStatus(EINVAL, "openat " + path);
  }
};

TEST(BackingFileTest, Ext4OpensWithODirect) {
  testing::TempDir dir("/var/tmp");
  absl::StatusOr<bool> supported = DirectIoSupported(Env::Default(), dir.fd());
  ASSERT_OK(supported);
  EXPECT_TRUE(*supported);
  ExpectEmpty(Env::Default(), dir.fd());
  bool direct = false;
  absl::StatusOr<int> fd = OpenBackingFile(
      Env::Default(), dir.fd(), "obj", O_RDWR | O_CREAT, 0600, false, &direct);
  ASSERT_OK(fd);
  EXPECT_TRUE(direct);
  EXPECT_TRUE(HasODirect(*fd));
  ExpectRoundTrip(*fd, direct);
  close(*fd);
}

TEST(BackingFileTest, TmpfsAnswerMatchesTheKernel) {
  struct statfs fs;
  if (statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) {
    if (testing::SkipAllowed()) GTEST_SKIP() << "/dev/shm is not tmpfs";
    FAIL() << "/dev/shm is not tmpfs (CI=true forbids skipping)";
  }
  testing::TempDir dir("/dev/shm");
  // What the kernel says, asked directly.
  int raw = openat(dir.fd(), ".", O_TMPFILE | O_RDWR | O_DIRECT, 0600);
  const bool kernel_allows = raw >= 0;
  if (raw >= 0) close(raw);

  absl::StatusOr<bool> supported = DirectIoSupported(Env::Default(), dir.fd());
  ASSERT_OK(supported);
  EXPECT_EQ(*supported, kernel_allows);
  ExpectEmpty(Env::Default(), dir.fd());

  bool direct = !kernel_allows;
  absl::StatusOr<int> fd = OpenBackingFile(
      Env::Default(), dir.fd(), "obj", O_RDWR | O_CREAT, 0600, true, &direct);
  ASSERT_OK(fd);
  EXPECT_EQ(direct, kernel_allows);
  EXPECT_EQ(HasODirect(*fd), kernel_allows);
  ExpectRoundTrip(*fd, direct);
  close(*fd);

  absl::StatusOr<int> strict = OpenBackingFile(
      Env::Default(), dir.fd(), "obj2", O_RDWR | O_CREAT, 0600, false, &direct);
  EXPECT_EQ(strict.ok(), kernel_allows) << strict.status();
  if (strict.ok()) close(*strict);
}

TEST(BackingFileTest, RefusedODirectFallsBackToBufferedWhenAllowed) {
  testing::TempDir dir;
  RefusingEnv env;
  absl::StatusOr<bool> supported = DirectIoSupported(&env, dir.fd());
  ASSERT_OK(supported);
  EXPECT_FALSE(*supported);
  ExpectEmpty(&env, dir.fd());

  bool direct = true;
  absl::StatusOr<int> fd = OpenBackingFile(
      &env, dir.fd(), "obj", O_RDWR | O_CREAT | O_EXCL, 0600, true, &direct);
  ASSERT_OK(fd);
  EXPECT_FALSE(direct);
  EXPECT_FALSE(HasODirect(*fd));
  ExpectRoundTrip(*fd, direct);
  close(*fd);
}

TEST(BackingFileTest, RefusedODirectFailsClearlyWhenBufferedIsNotAllowed) {
  testing::TempDir dir;
  RefusingEnv env;
  bool direct = true;
  absl::StatusOr<int> fd = OpenBackingFile(
      &env, dir.fd(), "obj", O_RDWR | O_CREAT | O_EXCL, 0600, false, &direct);
  ASSERT_FALSE(fd.ok());
  const std::string message(fd.status().message());
  EXPECT_NE(message.find("obj"), std::string::npos) << message;
  EXPECT_NE(message.find("does not support O_DIRECT"), std::string::npos)
      << message;
  EXPECT_EQ(StatusToErrno(fd.status()), EINVAL);
  // The file the refused open created (O_EXCL: it was new) is gone again.
  ExpectEmpty(&env, dir.fd());
}

TEST(BackingFileTest, OtherOpenErrorsPassThrough) {
  testing::TempDir dir;
  bool direct = false;
  absl::StatusOr<int> fd = OpenBackingFile(Env::Default(), dir.fd(),
                                           "missing", O_RDWR, 0, true, &direct);
  EXPECT_EQ(StatusToErrno(fd.status()), ENOENT) << fd.status();
  EXPECT_NE(fd.status().message().find("missing"), absl::string_view::npos);
}

}  // namespace
}  // namespace cachefs
