#include "cachefs/control_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cachefs/control_commands.h"
#include "cookie/object_key.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

std::string SocketDir() {
  if (getuid() == 0) return "/run/cachefs";
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && *runtime == '/') {
    return absl::StrCat(runtime, "/cachefs");
  }
  return absl::StrCat("/tmp/cachefs-", getuid());
}

std::string DirOf(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

absl::StatusOr<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("control socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Writes all of `data`; the peer may go away, which is not our failure
// (false then).
bool WriteAll(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

}  // namespace

absl::Status CheckPrivateDirectory(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return ErrnoToStatus(errno, "lstat " + dir);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "control socket directory ", dir,
        " is not a directory (a symbolic link or a file): not using it"));
  }
  if (st.st_uid != getuid()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "control socket directory %s belongs to uid %d, not to uid %d: "
        "not using it (another user may have made it)",
        dir, st.st_uid, getuid()));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "control socket directory %s has mode %04o: not using it (only its "
        "owner may reach it: chmod 700 %s)",
        dir, st.st_mode & 07777, dir));
  }
  return absl::OkStatus();
}

std::string ControlSocketPath(const std::string& mountpoint) {
  // The volume-name hash: stable, and short enough for sun_path.
  return absl::StrCat(SocketDir(), "/", VolumeDirName(mountpoint), ".sock");
}

bool ControlStream::Write(std::string_view data) {
  if (!open()) return false;
  if (!WriteAll(fd_, data)) closed_ = true;
  return !closed_;
}

bool ControlStream::open() {
  if (closed_ || stopping_->load()) return false;
  // The client sends nothing after its request: readable means it closed.
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) > 0 && p.revents != 0) closed_ = true;
  return !closed_;
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(
    const std::string& path, Handler handler, Streamer streamer) {
  const std::string dir = DirOf(path);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "mkdir " + dir);
  }
  absl::Status private_dir = CheckPrivateDirectory(dir);
  if (!private_dir.ok()) return private_dir;
  absl::StatusOr<sockaddr_un> addr = Address(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket");
  unlink(path.c_str());           // left by a daemon that died
  mode_t old_mask = umask(0177);  // the socket is born 0600
  int bound = bind(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr));
  umask(old_mask);
  if (bound != 0 || listen(fd, 16) != 0) {
    absl::Status status = ErrnoToStatus(errno, "bind " + path);
    close(fd);
    return status;
  }
  int stop = eventfd(0, EFD_CLOEXEC);
  if (stop < 0) {
    absl::Status status = ErrnoToStatus(errno, "eventfd");
    close(fd);
    return status;
  }
  struct stat bound_at = {};
  stat(path.c_str(), &bound_at);
  std::unique_ptr<ControlServer> server(
      new ControlServer(path, bound_at.st_dev, bound_at.st_ino, fd, stop,
                        std::move(handler), std::move(streamer)));
  server->thread_ = std::thread([s = server.get()] { s->Serve(); });
  return server;
}

ControlServer::ControlServer(std::string path, dev_t dev, ino_t ino,
                             int listen_fd, int stop_fd, Handler handler,
                             Streamer streamer)
    : path_(std::move(path)),
      socket_dev_(dev),
      socket_ino_(ino),
      listen_fd_(listen_fd),
      stop_fd_(stop_fd),
      handler_(std::move(handler)),
      streamer_(std::move(streamer)) {}

ControlServer::~ControlServer() {
  stopping_ = true;
  uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) < 0) std::abort();
  if (thread_.joinable()) thread_.join();
  // Each streamer sees the stream closed within its wait for events.
  for (StreamThread& s : streams_) s.thread.join();
  close(listen_fd_);
  close(stop_fd_);
  // Only our own socket: a daemon mounted at the same point since (after
  // an unmount that did not wait for us) has bound its own there.
  struct stat now;
  if (stat(path_.c_str(), &now) == 0 && now.st_dev == socket_dev_ &&
      now.st_ino == socket_ino_) {
    unlink(path_.c_str());
  }
}

void ControlServer::Serve() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ReapStreams();
    if (Answer(fd)) close(fd);
  }
}

void ControlServer::ReapStreams() {
  for (size_t i = 0; i < streams_.size();) {
    if (streams_[i].done->load()) {
      streams_[i].thread.join();
      streams_[i] = std::move(streams_.back());
      streams_.pop_back();
    } else {
      ++i;
    }
  }
}

bool ControlServer::Answer(int fd) {
  // One short line; a client that dawdles gets two seconds.
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string request;
  char buf[4096];
  while (request.find('\n') == std::string::npos &&
         request.size() <= kMaxControlRequest) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    request.append(buf, n);
  }
  const size_t end = request.find('\n');
  // A request cut short (too long, or the client went away) is never run:
  // its last path could name another file.
  if (end == std::string::npos || end > kMaxControlRequest) {
    WriteAll(fd, absl::StrCat(kControlReplyHeader,
                              "error: the request was incomplete or longer "
                              "than ",
                              kMaxControlRequest, " bytes\n"));
    return true;
  }
  request.resize(end);
  absl::StatusOr<ControlCall> call = DecodeControlCall(request);
  const ControlCommand* command =
      call.ok() ? FindControlCommand(call->command) : nullptr;
  if (command == nullptr || !command->stream) {
    WriteAll(fd, kControlReplyHeader + handler_(request));
    return true;
  }
  if (streamer_ == nullptr || streams_.size() >= kMaxStreams) {
    WriteAll(fd, absl::StrCat(kControlReplyHeader, "error: ",
                              streamer_ == nullptr
                                  ? "this daemon streams nothing"
                                  : absl::StrCat("already ", kMaxStreams,
                                                 " streams open"),
                              "\n"));
    return true;
  }
  WriteAll(fd, kControlReplyHeader);
  // A client that stops reading (suspended with Ctrl-Z) must not hold a
  // stream thread forever: a write that cannot go on for 10 s ends it.
  timeval send_timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([this, fd, done, request = std::move(request)] {
    ControlStream stream(fd, &stopping_);
    streamer_(request, stream);
    close(fd);
    done->store(true);
  });
  streams_.push_back({std::move(thread), std::move(done)});
  return false;
}

absl::StatusOr<int> ControlConnect(const std::string& mountpoint,
                                   const std::string& request) {
  std::string path = ControlSocketPath(mountpoint);
  if (request.size() > kMaxControlRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is longer than ", kMaxControlRequest,
                     " bytes: name fewer paths at once"));
  }
  // A socket in a directory another user controls could be anyone's.
  struct stat dir_st;
  if (lstat(DirOf(path).c_str(), &dir_st) == 0) {
    absl::Status private_dir = CheckPrivateDirectory(DirOf(path));
    if (!private_dir.ok()) return private_dir;
  }
  absl::StatusOr<sockaddr_un> addr = Address(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    absl::Status status =
        ErrnoToStatus(errno, absl::StrCat("cannot reach the cachefs daemon of ",
                                          mountpoint, " at ", path));
    close(fd);
    return status;
  }
  WriteAll(fd, request + "\n");
  return fd;
}

absl::StatusOr<std::string> ControlRequest(const std::string& mountpoint,
                                           const std::string& request) {
  const std::string path = ControlSocketPath(mountpoint);
  absl::StatusOr<int> connected = ControlConnect(mountpoint, request);
  if (!connected.ok()) return connected.status();
  const int fd = *connected;
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string reply;
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = ErrnoToStatus(errno, "reading from " + path);
      close(fd);
      return status;
    }
    if (n == 0) break;
    reply.append(buf, n);
  }
  close(fd);
  if (reply.rfind(kControlReplyHeader, 0) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "the cachefs daemon of ", mountpoint, " sent no answer at ", path));
  }
  return reply.substr(sizeof(kControlReplyHeader) - 1);
}

absl::Status ControlStreamRequest(
    const std::string& mountpoint, const std::string& request,
    const std::function<bool(std::string_view data)>& on_data) {
  absl::StatusOr<int> connected = ControlConnect(mountpoint, request);
  if (!connected.ok()) return connected.status();
  const int fd = *connected;
  // The header may come before the streamer's first line: the reply is
  // held until its first bytes tell whether it is an error.
  constexpr size_t kHeader = sizeof(kControlReplyHeader) - 1;
  constexpr std::string_view kError = "error: ";
  std::string head;
  char buf[65536];
  bool decided = false;
  absl::Status status = absl::OkStatus();
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoToStatus(errno, "reading the stream of " + mountpoint);
      break;
    }
    if (n == 0) break;
    std::string_view data(buf, n);
    if (!decided) {
      head.append(data);
      if (head.size() < kHeader + kError.size()) continue;
      decided = true;
      if (head.rfind(kControlReplyHeader, 0) != 0) break;
      data = std::string_view(head).substr(kHeader);
      if (data.substr(0, kError.size()) == kError) {
        // The rest of the error line, to the end of the reply.
        std::string error(data.substr(kError.size()));
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) error.append(buf, n);
        while (!error.empty() && error.back() == '\n') error.pop_back();
        status = absl::FailedPreconditionError(error);
        break;
      }
    }
    if (!data.empty() && !on_data(data)) break;
  }
  close(fd);
  if (!status.ok()) return status;
  if (head.rfind(kControlReplyHeader, 0) != 0) {
    return absl::UnavailableError(
        absl::StrCat("the cachefs daemon of ", mountpoint, " sent no answer"));
  }
  // A stream that ended before it could be told apart: a short answer.
  if (!decided && head.size() > kHeader) {
    on_data(std::string_view(head).substr(kHeader));
  }
  return status;
}

}  // namespace cachefs
