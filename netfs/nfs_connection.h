// NfsConnection: one libnfs context and the thread that drives it.
//
// A libnfs context is not thread-safe, so only its service thread touches
// it. Callers hand it calls through a queue and an eventfd and wait for the
// reply; the service thread starts each call with libnfs's asynchronous
// API, so many calls (the reads of several granules of one file, say) are
// on the wire at once over one TCP connection.
//
// Every call is bounded: a caller waits at most `timeout` and then gets
// ETIMEDOUT, while a late reply is dropped on the service thread. When the
// connection breaks (the server restarted), the service thread makes a new
// context and mounts again; `generation()` then counts up, so that holders
// of file handles from the old context open their files again.

#ifndef CACHEFS_NETFS_NFS_CONNECTION_H_
#define CACHEFS_NETFS_NFS_CONNECTION_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "netfs/nfs_url.h"

struct nfs_context;

namespace cachefs {

class NfsConnection {
 public:
  // libnfs's callback type, spelled out so that this header needs no
  // libnfs header.
  using Callback = void (*)(int result, struct nfs_context* nfs, void* data,
                            void* private_data);
  // Whose request a call is: sent as the call's AUTH_SYS credentials.
  struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    // Supplementary groups; AUTH_SYS carries the first 16.
    std::vector<gid_t> groups;
    bool operator==(const Identity&) const = default;
  };

  // Makes a context and mounts `url`'s export. `name` tells this
  // connection's NFSv4 client apart from the others of the process.
  static absl::StatusOr<std::unique_ptr<NfsConnection>> Open(
      const NfsUrl& url, absl::Duration timeout, std::string name);
  ~NfsConnection();
  NfsConnection(const NfsConnection&) = delete;
  NfsConnection& operator=(const NfsConnection&) = delete;

  // Runs one call on the service thread and waits for it, at most the
  // timeout. `start` starts one asynchronous libnfs call on the context it
  // is given, passing on the callback and private data it is given, and
  // returns what libnfs returned. `take` is called on the service thread
  // with the call's result (>= 0) and data, while the caller still waits,
  // so it may write to the caller's stack. `abandon`, if set, is called
  // with the data of a successful reply that came after the caller gave up
  // (to close a file handle nobody will use). Returns the call's result,
  // or the error (the server's errno; ETIMEDOUT; ENOTCONN while the server
  // cannot be reached) with `what` in its message.
  using Abandon = void (*)(struct nfs_context* nfs, void* data);
  absl::StatusOr<int> Run(
      std::string_view what, const Identity& who,
      absl::FunctionRef<int(struct nfs_context*, Callback, void*)> start,
      absl::FunctionRef<void(struct nfs_context*, int, void*)> take,
      Abandon abandon = nullptr);

  // Memory that call i lends libnfs (`loans[i]`, if there): released only
  // once libnfs has answered or dropped the call, also when its caller gave
  // up first. libnfs 6 (LIBNFS_API_V2) receives a READ's data straight
  // into, and sends a WRITE's data straight from, the buffer it is given.
  using Loan = std::shared_ptr<void>;

  // READs and WRITEs of file data, whose failures libnfs 4.0 reports
  // apart from the rest (see OnReply).
  enum class Kind { kOther, kData };

  // Runs `n` calls at once (call i is started with `start(i, ...)` and
  // taken with `take(i, ...)`), so that they share the round trip, and
  // waits for all of them within one timeout. Returns each call's result,
  // or the first error.
  absl::StatusOr<std::vector<int>> RunAll(
      std::string_view what, const Identity& who, size_t n,
      absl::FunctionRef<int(size_t, struct nfs_context*, Callback, void*)>
          start,
      absl::FunctionRef<void(size_t, struct nfs_context*, int, void*)> take,
      Abandon abandon = nullptr, std::vector<Loan> loans = {},
      Kind kind = Kind::kOther);

  // Counts the contexts this connection has had: file handles from an
  // older one are not valid any more.
  uint64_t generation() const {
    return generation_.load(std::memory_order_acquire);
  }
  // The NFS version spoken: 3 or 4.
  int version() const { return url_.version; }
  // The largest read and write one call carries.
  uint64_t read_max() const { return read_max_; }
  uint64_t write_max() const { return write_max_; }

 private:
  struct Call;
  NfsConnection(const NfsUrl& url, absl::Duration timeout, std::string name,
                struct nfs_context* nfs, int wake_fd);
  // A mounted context, or why not.
  static absl::StatusOr<struct nfs_context*> Connect(const NfsUrl& url,
                                                     absl::Duration timeout,
                                                     const std::string& name);
  static void OnReply(int result, struct nfs_context* nfs, void* data,
                      void* private_data);
  void Serve();
  // Makes the context send `who`'s credentials with its next calls.
  void SendAs(const Identity& who);
  void StartQueued();
  // After the socket broke: a new context, mounted, or nullptr while the
  // server is away.
  void Reconnect();

  const NfsUrl url_;
  const absl::Duration timeout_;
  const std::string name_;
  const int wake_fd_;
  // Only the service thread uses the context (and Open, before it runs).
  struct nfs_context* nfs_;
  uint64_t read_max_ = 0;
  uint64_t write_max_ = 0;
  Identity sent_as_;  // the credentials the context sends now
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;
  std::deque<std::shared_ptr<Call>> queue_ ABSL_GUARDED_BY(mu_);
  // False while the server cannot be reached: calls fail at once.
  bool connected_ ABSL_GUARDED_BY(mu_) = true;

  std::thread thread_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_CONNECTION_H_
