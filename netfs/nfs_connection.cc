#include "netfs/nfs_connection.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-zdr.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "io/errno_status.h"
#include "io/log.h"

namespace cachefs {
namespace {

// How often the service thread wakes without I/O: libnfs expires timed-out
// requests only when serviced.
constexpr int kTickMs = 100;

// What one READ or WRITE may carry. libnfs 4.0 learns the server's limits
// over NFSv3 only (FSINFO) and reports 0 for NFSv4; 1 MiB is what Linux's
// knfsd and nfs-ganesha allow by default.
uint64_t TransferSize(uint64_t reported) {
  return reported != 0 ? reported : uint64_t{1} << 20;
}

// Why a connection's server cannot be reached, or OK when a TCP
// connection to it succeeds.
absl::Status ReachServer(const NfsUrl& url) {
  const int port = url.port != 0 ? url.port : (url.version == 4 ? 2049 : 111);
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(url.host.c_str(), std::to_string(port).c_str(), &hints,
                  &found) != 0) {
    return absl::NotFoundError(absl::StrCat("no host named ", url.host));
  }
  absl::Status status;
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat(url.host, " port ", port));
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(found);
  return status;
}

// The error of a failed mount, in words a user can act on.
absl::Status MountError(const NfsUrl& url, absl::Duration timeout, int rc,
                        const char* libnfs_error) {
  const std::string what = absl::StrCat("cannot mount ", url.ToString());
  const std::string said = libnfs_error != nullptr ? libnfs_error : "";
  if (said.find("timed out") != std::string::npos) {
    return ErrnoToStatus(
        ETIMEDOUT, absl::StrCat(what, ": the server did not answer within ",
                                absl::FormatDuration(timeout),
                                " (-o origin_timeout)"));
  }
  if (absl::Status reach = ReachServer(url); !reach.ok()) {
    return Annotate(reach, what);
  }
  const int err = rc < -1 ? -rc : EIO;
  return ErrnoToStatus(err, absl::StrCat(what, ": ", said));
}

// How a failed call ends: its errno and message.
struct Failure {
  int result;
  std::string text;
};

// libnfs passes a failed call's message as its data, with two exceptions.
// An NFSv3 READ or WRITE the server refused fails with EFAULT whatever the
// server said, with the server's raw reply as the data; the message, the
// context's last error, names the server's errno ("NFS: Write failed with
// NFS3ERR_NOSPC(-28)"), which is what the caller gets. And EFAULT
// otherwise means the RPC itself failed: EIO.
Failure FailureOf(int result, struct nfs_context* nfs, void* data,
                  NfsConnection::Kind kind) {
  if (kind == NfsConnection::Kind::kData &&
      (result == -EFAULT || result == -ENOMEM)) {
    const char* last = nfs_get_error(nfs);
    std::string text = last != nullptr ? last : "";
    if (result == -EFAULT && (absl::StartsWith(text, "NFS: Read failed with ") ||
                              absl::StartsWith(text, "NFS: Write failed with "))) {
      const size_t open = text.rfind('(');
      const size_t close = text.rfind(')');
      int server = 0;
      if (open != std::string::npos && close != std::string::npos &&
          open < close &&
          absl::SimpleAtoi(text.substr(open + 1, close - open - 1), &server) &&
          server < 0) {
        return {server, std::move(text)};
      }
    }
    return {result == -EFAULT ? -EIO : result, std::move(text)};
  }
  std::string text = data != nullptr ? static_cast<const char*>(data) : "";
  return {result == -EFAULT ? -EIO : result, std::move(text)};
}

}  // namespace

struct NfsConnection::Call {
  size_t index = 0;  // in its batch
  Identity who;
  Abandon abandon = nullptr;
  // Memory libnfs may use until it calls back: the reply's holder keeps
  // this Call (and so the loan) alive until then.
  Loan loan;
  Kind kind = Kind::kOther;
  // The caller's functions; used only while the caller waits.
  absl::FunctionRef<int(size_t, struct nfs_context*, Callback, void*)>* start;
  absl::FunctionRef<void(size_t, struct nfs_context*, int, void*)>* take;

  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  // The caller gave up: its functions must not run any more.
  bool abandoned ABSL_GUARDED_BY(mu) = false;
  // The service thread is inside `start` or `take`, so the caller may not
  // leave yet even after giving up.
  int busy ABSL_GUARDED_BY(mu) = 0;
  int result ABSL_GUARDED_BY(mu) = 0;
  std::string error ABSL_GUARDED_BY(mu);

  // Marks the call finished with `result` (and libnfs's message for it).
  void Finish(int r, std::string message) {
    absl::MutexLock lock(&mu);
    result = r;
    error = std::move(message);
    done = true;
  }
};

absl::StatusOr<struct nfs_context*> NfsConnection::Connect(
    const NfsUrl& url, absl::Duration timeout, const std::string& name) {
  struct nfs_context* nfs = nfs_init_context();
  if (nfs == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("origin ", url.ToString(), ": no libnfs context"));
  }
  // libnfs counts timeouts in whole seconds.
  const int64_t ms = std::max<int64_t>(
      1000, (absl::ToInt64Milliseconds(timeout) + 999) / 1000 * 1000);
  nfs_set_timeout(nfs, static_cast<int>(ms));
  // Attributes and listings come from the server every time they are
  // asked for: cachefs keeps its own, under its coherency rules.
  nfs_set_dircache(nfs, 0);
  // A broken connection is made again here, with a new context, so that
  // no call waits on a reconnect loop inside libnfs.
  nfs_set_autoreconnect(nfs, 0);
#ifdef LIBNFS_API_V2
  // libnfs 6 retransmits a timed-out call (retrans=2 by default, like a
  // hard mount) instead of failing it: a call ends at its timeout here.
  nfs_set_retrans(nfs, 0);
#endif
  // Modes arrive with the caller's umask applied by the kernel already.
  nfs_umask(nfs, 0);
  if (url.version == 4) nfs4_set_client_name(nfs, name.c_str());
  struct nfs_url* parsed = nfs_parse_url_dir(nfs, url.ForLibnfs().c_str());
  if (parsed == nullptr) {
    absl::Status status = absl::InvalidArgumentError(absl::StrCat(
        "origin ", url.ToString(), ": ", nfs_get_error(nfs)));
    nfs_destroy_context(nfs);
    return status;
  }
  const int rc = nfs_mount(nfs, parsed->server, parsed->path);
  nfs_destroy_url(parsed);
  if (rc != 0) {
    absl::Status status = MountError(url, timeout, rc, nfs_get_error(nfs));
    nfs_destroy_context(nfs);
    return status;
  }
  return nfs;
}

absl::StatusOr<std::unique_ptr<NfsConnection>> NfsConnection::Open(
    const NfsUrl& url, absl::Duration timeout, std::string name) {
  absl::StatusOr<struct nfs_context*> nfs = Connect(url, timeout, name);
  if (!nfs.ok()) return nfs.status();
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    nfs_destroy_context(*nfs);
    return ErrnoToStatus(errno, "eventfd for an NFS connection");
  }
  return std::unique_ptr<NfsConnection>(
      new NfsConnection(url, timeout, std::move(name), *nfs, wake_fd));
}

NfsConnection::NfsConnection(const NfsUrl& url, absl::Duration timeout,
                             std::string name, struct nfs_context* nfs,
                             int wake_fd)
    : url_(url),
      timeout_(timeout),
      name_(std::move(name)),
      wake_fd_(wake_fd),
      nfs_(nfs),
      read_max_(TransferSize(nfs_get_readmax(nfs))),
      write_max_(TransferSize(nfs_get_writemax(nfs))),
      sent_as_{getuid(), getgid(), {}} {
  thread_ = std::thread([this] { Serve(); });
}

NfsConnection::~NfsConnection() {
  stopping_.store(true);
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  // Calls still queued were never started: they fail.
  std::deque<std::shared_ptr<Call>> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(queue_);
  }
  for (auto& call : left) call->Finish(-ESHUTDOWN, "the origin is closing");
  // Destroying the context ends the calls in flight with an error.
  if (nfs_ != nullptr) nfs_destroy_context(nfs_);
  close(wake_fd_);
}

absl::StatusOr<int> NfsConnection::Run(
    std::string_view what, const Identity& who,
    absl::FunctionRef<int(struct nfs_context*, Callback, void*)> start,
    absl::FunctionRef<void(struct nfs_context*, int, void*)> take,
    Abandon abandon) {
  absl::StatusOr<std::vector<int>> results = RunAll(
      what, who, 1,
      [&](size_t, struct nfs_context* nfs, Callback cb, void* p) {
        return start(nfs, cb, p);
      },
      [&](size_t, struct nfs_context* nfs, int result, void* data) {
        take(nfs, result, data);
      },
      abandon);
  if (!results.ok()) return results.status();
  return (*results)[0];
}

absl::StatusOr<std::vector<int>> NfsConnection::RunAll(
    std::string_view what, const Identity& who, size_t n,
    absl::FunctionRef<int(size_t, struct nfs_context*, Callback, void*)> start,
    absl::FunctionRef<void(size_t, struct nfs_context*, int, void*)> take,
    Abandon abandon, std::vector<Loan> loans, Kind kind) {
  std::vector<std::shared_ptr<Call>> calls;
  calls.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto call = std::make_shared<Call>();
    call->index = i;
    call->who = who;
    call->abandon = abandon;
    if (i < loans.size()) call->loan = std::move(loans[i]);
    call->kind = kind;
    call->start = &start;
    call->take = &take;
    calls.push_back(std::move(call));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!connected_) {
      return ErrnoToStatus(
          ENOTCONN, absl::StrCat(std::string(what), ": ", url_.ToString(),
                                 " cannot be reached"));
    }
    queue_.insert(queue_.end(), calls.begin(), calls.end());
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));

  // Every call is waited for, also after one failed or timed out: the
  // caller's functions must not run once this returns.
  const absl::Time deadline = absl::Now() + timeout_;
  std::vector<int> results(n, 0);
  absl::Status first_error;
  for (std::shared_ptr<Call>& call : calls) {
    absl::MutexLock lock(&call->mu);
    if (!call->mu.AwaitWithDeadline(absl::Condition(&call->done), deadline)) {
      call->abandoned = true;
      auto idle = [](Call* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu) {
        return c->busy == 0;
      };
      call->mu.Await(absl::Condition(+idle, call.get()));
      if (first_error.ok()) {
        first_error = ErrnoToStatus(
            ETIMEDOUT,
            absl::StrCat(std::string(what), ": no answer from ",
                         url_.ToString(), " in ",
                         absl::FormatDuration(timeout_)));
      }
      continue;
    }
    if (call->result < 0) {
      LogParts(LogLevel::kDebug, "NFS call failed: ", std::string(what),
               ": ", std::strerror(-call->result), " (", call->error, ")");
    }
    if (call->result < 0 && first_error.ok()) {
      first_error = ErrnoToStatus(
          -call->result,
          call->error.empty()
              ? std::string(what)
              : absl::StrCat(std::string(what), " (", call->error, ")"));
    }
    results[call->index] = call->result;
  }
  if (!first_error.ok()) return first_error;
  return results;
}

void NfsConnection::OnReply(int result, struct nfs_context* nfs, void* data,
                            void* private_data) {
  auto* holder = static_cast<std::shared_ptr<Call>*>(private_data);
  std::shared_ptr<Call> call = std::move(*holder);
  delete holder;
  bool run_take = false;
  {
    absl::MutexLock lock(&call->mu);
    if (!call->abandoned && result >= 0) {
      run_take = true;
      ++call->busy;
    }
  }
  if (run_take) {
    (*call->take)(call->index, nfs, result, data);
    absl::MutexLock lock(&call->mu);
    --call->busy;
    call->result = result;
    call->done = true;
    return;
  }
  if (result >= 0) {
    if (call->abandon != nullptr) call->abandon(nfs, data);
    call->Finish(result, "");
    return;
  }
  Failure failure = FailureOf(result, nfs, data, call->kind);
  call->Finish(failure.result, std::move(failure.text));
}

void NfsConnection::StartQueued() {
  std::deque<std::shared_ptr<Call>> calls;
  {
    absl::MutexLock lock(&mu_);
    calls.swap(queue_);
  }
  for (std::shared_ptr<Call>& call : calls) {
    {
      absl::MutexLock lock(&call->mu);
      if (call->abandoned) continue;
      ++call->busy;
    }
    if (nfs_ == nullptr) {
      absl::MutexLock lock(&call->mu);
      --call->busy;
      call->result = -ENOTCONN;
      call->error = "the server cannot be reached";
      call->done = true;
      continue;
    }
    if (!(call->who == sent_as_)) SendAs(call->who);
    auto* holder = new std::shared_ptr<Call>(call);
    const int rc =
        (*call->start)(call->index, nfs_, &NfsConnection::OnReply, holder);
    absl::MutexLock lock(&call->mu);
    --call->busy;
    if (rc != 0 && !call->done) {
      // Not queued, so no reply will come (libnfs keeps no reference).
      delete holder;
      call->result = rc < -1 ? rc : -EIO;
      call->error = nfs_get_error(nfs_);
      call->done = true;
    }
  }
}

void NfsConnection::SendAs(const Identity& who) {
  // AUTH_SYS carries at most 16 groups (RFC 5531).
  std::vector<uint32_t> groups(who.groups.begin(),
                               who.groups.begin() +
                                   std::min<size_t>(who.groups.size(), 16));
  struct AUTH* auth = libnfs_authunix_create(
      "cachefs", who.uid, who.gid, static_cast<uint32_t>(groups.size()),
      groups.data());
  if (auth == nullptr) return;  // out of memory: the old credentials stay
  nfs_set_auth(nfs_, auth);
  sent_as_ = who;
}

void NfsConnection::Reconnect() {
  if (nfs_ != nullptr) {
    LogParts(LogLevel::kWarning, "lost the connection to ", url_.ToString(),
             ": ", nfs_get_error(nfs_));
    {
      absl::MutexLock lock(&mu_);
      connected_ = false;
    }
    // Ends every call in flight with an error.
    nfs_destroy_context(nfs_);
    nfs_ = nullptr;
  }
  absl::StatusOr<struct nfs_context*> nfs = Connect(url_, timeout_, name_);
  if (!nfs.ok()) {
    LogParts(LogLevel::kInfo, "not connected again yet: ",
             std::string(nfs.status().message()));
    return;
  }
  nfs_ = *nfs;
  sent_as_ = Identity{getuid(), getgid(), {}};
  generation_.fetch_add(1, std::memory_order_acq_rel);
  LogParts(LogLevel::kNotice, "connected to ", url_.ToString(), " again");
  absl::MutexLock lock(&mu_);
  connected_ = true;
}

void NfsConnection::Serve() {
  // Named, so that top -H and perf show it apart from the origin pool.
  pthread_setname_np(pthread_self(), "cachefs-nfs");
  absl::Time next_reconnect = absl::InfinitePast();
  while (!stopping_.load()) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, 0, 0}};
    if (nfs_ != nullptr) {
      fds[1].fd = nfs_get_fd(nfs_);
      fds[1].events = static_cast<short>(nfs_which_events(nfs_));
    }
    if (poll(fds, 2, kTickMs) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      uint64_t n;
      (void)!read(wake_fd_, &n, sizeof(n));
    }
    if (stopping_.load()) break;
    StartQueued();
    if (nfs_ != nullptr) {
      if (nfs_service(nfs_, fds[1].revents) < 0) {
        Reconnect();
        next_reconnect = absl::Now() + absl::Seconds(1);
      }
    } else if (absl::Now() >= next_reconnect) {
      Reconnect();
      next_reconnect = absl::Now() + absl::Seconds(1);
    }
  }
}

}  // namespace cachefs
