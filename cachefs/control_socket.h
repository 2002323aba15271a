// The control socket: how cachefs-ctl reaches the daemon behind a mount
// point. The socket's path is derived from the mount point's absolute path,
// so the client finds it from the mount point alone:
//   root:   /run/cachefs/<hash>.sock
//   others: $XDG_RUNTIME_DIR/cachefs/<hash>.sock, else /tmp/cachefs-<uid>/
// The directory is 0700 and the socket 0600, owned by the mounting user;
// a directory that is not (made first by someone else) is not used, by
// the daemon or by the client.
//
// Protocol: the client sends one line, a call of control_commands.h
// ("stats --json"), and reads the reply until the daemon closes the
// socket. The daemon answers with the line "cachefs-control 1", then the
// reply, which may be empty; a reply starting with "error: " is a failure.
// A command that streams (trace) goes on writing until the client closes
// its end or the daemon stops.

#ifndef CACHEFS_CACHEFS_CONTROL_SOCKET_H_
#define CACHEFS_CACHEFS_CONTROL_SOCKET_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "absl/status/statusor.h"

namespace cachefs {

// OK if `dir` is a directory (not a link) of this user that no one else
// may enter; else says what is wrong with it.
absl::Status CheckPrivateDirectory(const std::string& dir);

// The first line of every reply: what follows is a whole answer, which
// may be empty (an empty list), and a connection closed before it is not.
inline constexpr char kControlReplyHeader[] = "cachefs-control 1\n";

// The longest request line a daemon takes (many paths fit in it).
inline constexpr size_t kMaxControlRequest = 1 << 20;

// The socket path for a mount point (an absolute, normalized path).
std::string ControlSocketPath(const std::string& mountpoint);

// The connection of a streaming command, as its streamer sees it.
class ControlStream {
 public:
  ControlStream(int fd, const std::atomic<bool>* stopping)
      : fd_(fd), stopping_(stopping) {}
  // False once the client has gone or the daemon stops; then the
  // streamer returns.
  bool Write(std::string_view data);
  bool open();

 private:
  const int fd_;
  const std::atomic<bool>* const stopping_;
  bool closed_ = false;
};

// Serves the control socket on a thread of its own until destroyed.
class ControlServer {
 public:
  using Handler = std::function<std::string(const std::string& request)>;
  // Answers a request of a streaming command, on a thread of its own,
  // after the reply header; returns once the stream is no longer open.
  using Streamer =
      std::function<void(const std::string& request, ControlStream& stream)>;
  // At most this many streams at once; more are refused.
  static constexpr int kMaxStreams = 8;

  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(
      const std::string& path, Handler handler, Streamer streamer = nullptr);
  ~ControlServer();  // ends the streams, stops serving, removes the socket

 private:
  struct StreamThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  ControlServer(std::string path, dev_t dev, ino_t ino, int listen_fd,
                int stop_fd, Handler handler, Streamer streamer);
  void Serve();
  // Answers the connection, or hands it to a stream thread (which then
  // closes it); false if it was handed over.
  bool Answer(int fd);
  // Joins the stream threads that have ended.
  void ReapStreams();

  const std::string path_;
  // The socket file this server bound (see the destructor).
  const dev_t socket_dev_;
  const ino_t socket_ino_;
  const int listen_fd_;
  const int stop_fd_;  // an eventfd that ends Serve()
  const Handler handler_;
  const Streamer streamer_;
  std::atomic<bool> stopping_{false};
  std::vector<StreamThread> streams_;  // only Serve() and ~ControlServer
  std::thread thread_;
};

// Sends `request` to the daemon behind `mountpoint` and returns its reply.
absl::StatusOr<std::string> ControlRequest(const std::string& mountpoint,
                                           const std::string& request);

// Sends the request of a streaming command and hands each piece of the
// stream to `on_data` until the daemon ends it or `on_data` returns false.
// An "error: " reply comes back as the error.
absl::Status ControlStreamRequest(
    const std::string& mountpoint, const std::string& request,
    const std::function<bool(std::string_view data)>& on_data);

// The connection to the daemon behind `mountpoint`, with `request` sent.
absl::StatusOr<int> ControlConnect(const std::string& mountpoint,
                                   const std::string& request);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CONTROL_SOCKET_H_
