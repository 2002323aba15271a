// The control socket: how cachefs-ctl reaches the daemon behind a mount
// point. The socket's path is derived from the mount point's absolute path,
// so the client finds it from the mount point alone:
//   root:   /run/cachefs/<hash>.sock
//   others: $XDG_RUNTIME_DIR/cachefs/<hash>.sock, else /tmp/cachefs-<uid>/
// The directory is 0700 and the socket 0600, owned by the mounting user;
// a directory that is not (made first by someone else) is not used, by
// the daemon or by the client.
//
// Protocol: the client sends one line ("stats", "stats --json", "status",
// "status --json") and reads the reply until the daemon closes the socket.
// The daemon answers with the line "cachefs-control 1", then the reply,
// which may be empty; a reply starting with "error: " is a failure.

#ifndef CACHEFS_CACHEFS_CONTROL_SOCKET_H_
#define CACHEFS_CACHEFS_CONTROL_SOCKET_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace cachefs {

// OK if `dir` is a directory (not a link) of this user that no one else
// may enter; else says what is wrong with it.
absl::Status CheckPrivateDirectory(const std::string& dir);

// The longest request line a daemon takes (many paths fit in it).
inline constexpr size_t kMaxControlRequest = 1 << 20;

// The socket path for a mount point (an absolute, normalized path).
std::string ControlSocketPath(const std::string& mountpoint);

// Serves the control socket on a thread of its own until destroyed.
class ControlServer {
 public:
  using Handler = std::function<std::string(const std::string& request)>;
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(
      const std::string& path, Handler handler);
  ~ControlServer();  // stops serving and removes the socket

 private:
  ControlServer(std::string path, dev_t dev, ino_t ino, int listen_fd,
                int stop_fd, Handler handler);
  void Serve();
  void Answer(int fd);

  const std::string path_;
  // The socket file this server bound (see the destructor).
  const dev_t socket_dev_;
  const ino_t socket_ino_;
  const int listen_fd_;
  const int stop_fd_;  // an eventfd that ends Serve()
  const Handler handler_;
  std::thread thread_;
};

// Sends `request` to the daemon behind `mountpoint` and returns its reply.
absl::StatusOr<std::string> ControlRequest(const std::string& mountpoint,
                                           const std::string& request);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CONTROL_SOCKET_H_
