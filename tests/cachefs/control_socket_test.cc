// The control socket's directory: used only when it is this user's own
// and closed to everyone else, since whoever controls it could stand in
// for the daemon or listen to it.

#include "cachefs/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

std::string Echo(const std::string& request) { return "got " + request; }

TEST(ControlSocketTest, APrivateDirectoryIsUsed) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/sockets";
  auto server = ControlServer::Start(dir + "/a.sock", Echo);
  ASSERT_OK(server);
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_OK(CheckPrivateDirectory(dir));
}

// A request cut short is answered with an error and never handled: its
// last path could name another file.
TEST(ControlSocketTest, AnIncompleteRequestIsNotRun) {
  TempDir tmp;
  const std::string path = tmp.path() + "/sockets/a.sock";
  int handled = 0;
  auto server = ControlServer::Start(path, [&](const std::string& r) {
    ++handled;
    return Echo(r);
  });
  ASSERT_OK(server);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(write(fd, "invalidate -- logs/app.log", 26), 26);
  shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) reply.append(buf, n);
  close(fd);
  EXPECT_NE(reply.find("error: the request was incomplete"), std::string::npos)
      << reply;
  EXPECT_EQ(handled, 0);
}

TEST(ControlSocketTest, ADirectoryOthersMayEnterIsRefused) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/sockets";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  auto server = ControlServer::Start(dir + "/a.sock", Echo);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("mode 0777"), std::string::npos)
      << server.status();
  struct stat st;
  EXPECT_NE(stat((dir + "/a.sock").c_str(), &st), 0) << "bound anyway";
}

TEST(ControlSocketTest, ALinkIsRefused) {
  TempDir tmp;
  const std::string real = tmp.path() + "/real";
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(symlink(real.c_str(), (tmp.path() + "/sockets").c_str()), 0);
  auto server = ControlServer::Start(tmp.path() + "/sockets/a.sock", Echo);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("not a directory"),
            std::string::npos)
      << server.status();
}

TEST(ControlSocketTest, AnotherUsersDirectoryIsRefused) {
  if (geteuid() != 0) {
    // Under CI a missing prerequisite is a failure, never a quiet skip.
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") FAIL() << "needs root";
    GTEST_SKIP() << "needs root to give a directory away";
  }
  TempDir tmp;
  const std::string dir = tmp.path() + "/sockets";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chown(dir.c_str(), 65534, 65534), 0);
  auto server = ControlServer::Start(dir + "/a.sock", Echo);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("belongs to uid 65534"),
            std::string::npos)
      << server.status();
}

}  // namespace
}  // namespace cachefs::testing
