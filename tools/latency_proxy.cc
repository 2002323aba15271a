// cachefs-latency-proxy: a TCP proxy between loopback addresses that delays
// every chunk of bytes by a fixed time in each direction. It puts link
// latency between sshfs and a test sshd, for the end-to-end tests and
// benchmarks, without limiting bandwidth much.
//
//   cachefs-latency-proxy --listen 127.0.0.1:0 --connect 127.0.0.1:2222
//       --delay-ms 5
//
// prints "port N" (the port it listens on) as its first line on stdout, then
// serves any number of concurrent connections until SIGTERM or SIGINT, when
// it closes them all and exits with 0. Only loopback addresses are allowed.
//
// How it works: a connection has two directions. In each, a reader thread
// reads what arrives from one socket and queues it with the deadline
// "arrival + delay"; a writer thread sends the queued chunks in order to the
// other socket, each no earlier than its deadline. Reading goes on while
// earlier chunks wait, so up to kMaxQueuedBytes per direction are in flight,
// as on a real link. End of file travels through the queue as an empty
// chunk and becomes shutdown(SHUT_WR) on the other socket; an error on
// either socket ends the whole connection.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunkBytes = 64 * 1024;
constexpr size_t kMaxQueuedBytes = 8 * 1024 * 1024;

constexpr char kUsage[] =
    "usage: cachefs-latency-proxy --listen HOST:PORT --connect HOST:PORT "
    "[--delay-ms N]\n"
    "\n"
    "Forwards every TCP connection made to --listen to --connect, delaying\n"
    "each chunk of bytes by N milliseconds (default 0) in each direction.\n"
    "HOST must be a loopback address: 127.x.y.z, ::1 (as [::1]) or\n"
    "localhost. With --listen PORT 0 a free port is picked. The first line\n"
    "on stdout is always \"port N\", the port listened on. SIGTERM or SIGINT\n"
    "closes every connection and exits with 0.\n";

void Log(const std::string& msg) {
  std::fprintf(stderr, "cachefs-latency-proxy: %s\n", msg.c_str());
}

std::string Errno(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// A loopback socket address.
struct Address {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const { return addr.ss_family; }
};

// Parses HOST:PORT (HOST may be [::1]); nullopt, with *error set, for a
// malformed or non-loopback address.
std::optional<Address> ParseLoopback(const std::string& text,
                                     std::string* error) {
  size_t colon = text.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    *error = "'" + text + "' is not HOST:PORT";
    return std::nullopt;
  }
  std::string host = text.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) == 127) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(port));
      a.len = sizeof *v4;
      return a;
    }
  } else if (host.size() > 2 && host.front() == '[' && host.back() == ']' &&
             inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(),
                       &v6->sin6_addr) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(port));
      a.len = sizeof *v6;
      return a;
    }
  } else {
    *error = "'" + host + "' is not an IP address";
    return std::nullopt;
  }
  *error = "'" + host +
           "' is not a loopback address (only 127.0.0.0/8, [::1] and "
           "localhost are allowed)";
  return std::nullopt;
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool SendAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// One direction of one connection: ReadLoop and WriteLoop run on their own
// threads; Abort, from any thread, makes both return soon (the sockets
// must also be shut down to unblock a read or send).
class Direction {
 public:
  Direction(int src, int dst, Clock::duration delay,
            std::function<void()> on_error)
      : src_(src), dst_(dst), delay_(delay), on_error_(std::move(on_error)) {}

  void ReadLoop() {
    auto buf = std::make_unique<char[]>(kChunkBytes);
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &Direction::CanRead));
        if (aborted_) return;
      }
      ssize_t n = read(src_, buf.get(), kChunkBytes);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        on_error_();
        return;
      }
      Clock::time_point deadline = Clock::now() + delay_;
      absl::MutexLock lock(&mu_);
      queue_.push_back({deadline, std::string(buf.get(), n)});
      queued_bytes_ += static_cast<size_t>(n);
      if (n == 0) return;  // the end-of-file marker is queued
    }
  }

  void WriteLoop() {
    while (true) {
      Chunk chunk;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &Direction::CanWrite));
        if (aborted_) return;
        chunk = std::move(queue_.front());
        queue_.pop_front();
      }
      std::this_thread::sleep_until(chunk.deadline);
      if (chunk.bytes.empty()) {
        shutdown(dst_, SHUT_WR);
        return;
      }
      if (!SendAll(dst_, chunk.bytes)) {
        on_error_();
        return;
      }
      absl::MutexLock lock(&mu_);
      queued_bytes_ -= chunk.bytes.size();
    }
  }

  void Abort() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
  }

 private:
  struct Chunk {
    Clock::time_point deadline;
    std::string bytes;  // empty: end of file
  };

  bool CanRead() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return aborted_ || queued_bytes_ < kMaxQueuedBytes;
  }
  bool CanWrite() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return aborted_ || !queue_.empty();
  }

  const int src_;
  const int dst_;
  const Clock::duration delay_;
  const std::function<void()> on_error_;

  absl::Mutex mu_;
  std::deque<Chunk> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
};

// One proxied connection. Created by the accepting thread, run by its own
// thread (Run), aborted by either; Run closes the sockets at the end.
class Connection {
 public:
  Connection(int client, Address target, Clock::duration delay)
      : client_(client), target_(target), delay_(delay) {}

  void Run() {
    int server = socket(target_.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server >= 0 &&
        connect(server, reinterpret_cast<const sockaddr*>(&target_.addr),
                target_.len) != 0) {
      Log(Errno("connect to the target"));
      close(server);
      server = -1;
    }
    {
      absl::MutexLock lock(&mu_);
      server_ = server;
    }
    if (server >= 0 && !Aborted()) Relay(server);
    absl::MutexLock lock(&mu_);
    close(client_);
    if (server_ >= 0) close(server_);
    closed_ = true;
    done_ = true;
  }

  // Ends the connection: both sockets shut down, both directions stopped.
  void Abort() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
    if (closed_) return;
    shutdown(client_, SHUT_RDWR);
    if (server_ >= 0) shutdown(server_, SHUT_RDWR);
    if (up_) up_->Abort();
    if (down_) down_->Abort();
  }

  bool done() const { return done_; }

 private:
  bool Aborted() {
    absl::MutexLock lock(&mu_);
    return aborted_;
  }

  void Relay(int server) {
    SetNoDelay(server);
    auto on_error = [this] { Abort(); };
    Direction* up;
    Direction* down;
    {
      absl::MutexLock lock(&mu_);
      up_ = std::make_unique<Direction>(client_, server, delay_, on_error);
      down_ = std::make_unique<Direction>(server, client_, delay_, on_error);
      up = up_.get();
      down = down_.get();
    }
    std::thread threads[] = {
        std::thread(&Direction::ReadLoop, up),
        std::thread(&Direction::WriteLoop, up),
        std::thread(&Direction::ReadLoop, down),
    };
    down->WriteLoop();
    for (std::thread& t : threads) t.join();
  }

  const int client_;
  const Address target_;
  const Clock::duration delay_;
  std::atomic<bool> done_{false};

  absl::Mutex mu_;
  int server_ ABSL_GUARDED_BY(mu_) = -1;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Set once by Relay before its threads start; live until the
  // Connection is destroyed.
  std::unique_ptr<Direction> up_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Direction> down_ ABSL_GUARDED_BY(mu_);
};

struct Flags {
  Address listen;
  Address connect;
  Clock::duration delay{};
};

// Parses the command line; exits with 0 for --help and 2 on an error.
Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  bool have_listen = false, have_connect = false;
  auto fail = [](const std::string& msg) {
    Log(msg);
    std::fputs(kUsage, stderr);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      fail(arg + " needs a value");
    }
    std::string error;
    if (arg == "--listen" || arg == "--connect") {
      std::optional<Address> a = ParseLoopback(value, &error);
      if (!a) fail(arg + ": " + error);
      (arg == "--listen" ? flags.listen : flags.connect) = *a;
      (arg == "--listen" ? have_listen : have_connect) = true;
    } else if (arg == "--delay-ms") {
      int ms = -1;
      if (!absl::SimpleAtoi(value, &ms) || ms < 0 || ms > 60000) {
        fail("--delay-ms: '" + value + "' is not 0..60000");
      }
      flags.delay = std::chrono::milliseconds(ms);
    } else {
      fail("unknown flag " + arg);
    }
  }
  if (!have_listen || !have_connect) fail("--listen and --connect are needed");
  auto* c = reinterpret_cast<sockaddr_in*>(&flags.connect.addr);
  if (c->sin_port == 0) fail("--connect: the port may not be 0");
  return flags;
}

// A listening socket on `a`; prints "port N" once it listens.
int Listen(const Address& a) {
  int fd = socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0 ||
      listen(fd, 128) != 0) {
    Log(Errno("listen"));
    std::exit(1);
  }
  Address bound;
  bound.len = sizeof bound.addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound.addr), &bound.len);
  // sin_port and sin6_port sit at the same offset.
  int port = ntohs(reinterpret_cast<sockaddr_in*>(&bound.addr)->sin_port);
  std::printf("port %d\n", port);
  std::fflush(stdout);
  return fd;
}

// A connection and the thread that runs it.
struct Worker {
  std::unique_ptr<Connection> connection;
  std::thread thread;
};

// Accepts until SIGTERM or SIGINT arrives on `signal_fd`.
void Serve(int listen_fd, int signal_fd, const Flags& flags) {
  std::list<Worker> workers;
  while (true) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (poll(fds, 2, 1000) < 0 && errno != EINTR) {
      Log(Errno("poll"));
      break;
    }
    if (fds[1].revents & POLLIN) break;
    for (auto it = workers.begin(); it != workers.end();) {
      if (!it->connection->done()) {
        ++it;
        continue;
      }
      it->thread.join();
      it = workers.erase(it);
    }
    if (!(fds[0].revents & POLLIN)) continue;
    int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno != EINTR && errno != ECONNABORTED) Log(Errno("accept"));
      continue;
    }
    SetNoDelay(client);
    Worker& w = workers.emplace_back();
    w.connection =
        std::make_unique<Connection>(client, flags.connect, flags.delay);
    w.thread = std::thread(&Connection::Run, w.connection.get());
  }
  for (Worker& w : workers) w.connection->Abort();
  for (Worker& w : workers) w.thread.join();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  // Blocked in every thread, and read from a signalfd by the accept loop.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int signal_fd = signalfd(-1, &stop, SFD_CLOEXEC);
  if (signal_fd < 0) {
    Log(Errno("signalfd"));
    return 1;
  }
  int listen_fd = Listen(flags.listen);
  Serve(listen_fd, signal_fd, flags);
  close(listen_fd);
  close(signal_fd);
  return 0;
}
