// NfsOrigin: an NFS export reached directly through libnfs, with no kernel
// NFS mount and no root on the client.
//
// A small pool of NfsConnections (one TCP connection, one libnfs context
// and one service thread each) carries the calls. Calls on paths go to the
// connections in turn; an open file stays on the connection it was opened
// on, where its handle (and, for NFSv4, its open state) lives, and several
// of its reads are in flight there at once. After a server restart a
// connection mounts again and each file opens itself again by its path.
//
// Every call is sent with its Caller's uid, gid and groups as its AUTH_SYS
// credentials, so the server checks permissions and owns new files as it
// would for that user. Over NFSv4 files are opened by each user and access
// mode on connections of their own: open state belongs to one client and
// open-owner, which the server ties to the credentials that made it, and a
// handle opened for one user must never serve another. An open file reads
// and writes as the caller that opened it. Paths are resolved by libnfs
// from the export root;
// a symlink met on the way is followed inside the export (NFS servers
// resolve nothing across exports), never outside it.

#ifndef CACHEFS_NETFS_NFS_ORIGIN_H_
#define CACHEFS_NETFS_NFS_ORIGIN_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "netfs/nfs_connection.h"
#include "netfs/nfs_open_files.h"
#include "netfs/nfs_url.h"
#include "netfs/origin.h"

namespace cachefs {

class NfsOrigin : public Origin {
 public:
  struct Options {
    // TCP connections to the server, each with its own service thread.
    int connections = 4;
    // The longest one call may take; then it fails with ETIMEDOUT.
    absl::Duration timeout = absl::Seconds(30);
  };
  // Connects and mounts the export. Fails with the server's reason (or
  // ETIMEDOUT) and the URL in the message.
  static absl::StatusOr<std::unique_ptr<NfsOrigin>> Open(const NfsUrl& url,
                                                         Options options);
  // What every NFS origin is, known before it is reached.
  static Traits KnownTraits();
  ~NfsOrigin() override;

  const Traits& traits() const override { return traits_; }
  std::string Describe() const override { return url_.ToString(); }
  const OriginStats& stats() const override { return stats_; }

  absl::StatusOr<struct stat> GetAttr(const Caller& caller,
                                      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<OriginFile>> OpenFile(const Caller& caller,
                                                       const std::string& path,
                                                       int flags) override;
  absl::Status CheckAccess(const Caller& caller, const std::string& path,
                           int mask) override;
  absl::StatusOr<std::unique_ptr<OriginDir>> OpenDir(
      const Caller& caller, const std::string& path) override;
  absl::StatusOr<std::string> ReadLink(const Caller& caller,
                                       const std::string& path) override;
  absl::StatusOr<struct statvfs> StatFs(const Caller& caller,
                                        const std::string& path) override;
  absl::StatusOr<std::string> GetXattr(const Caller& caller,
                                       const std::string& path,
                                       const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> ListXattr(
      const Caller& caller, const std::string& path) override;

  absl::StatusOr<CreateResult> Create(const Caller& caller,
                                      const std::string& path, mode_t mode,
                                      int flags) override;
  absl::StatusOr<struct stat> MakeNode(const Caller& caller,
                                       const std::string& path, mode_t mode,
                                       dev_t rdev) override;
  absl::StatusOr<struct stat> MakeDir(const Caller& caller,
                                      const std::string& path,
                                      mode_t mode) override;
  absl::StatusOr<struct stat> MakeSymlink(const Caller& caller,
                                          const std::string& target,
                                          const std::string& path) override;
  absl::StatusOr<struct stat> Link(const Caller& caller,
                                   const std::string& path,
                                   const std::string& new_path) override;
  absl::Status Unlink(const Caller& caller, const std::string& path) override;
  absl::Status RemoveDir(const Caller& caller,
                         const std::string& path) override;
  absl::Status Rename(const Caller& caller, const std::string& path,
                      const std::string& new_path, unsigned flags) override;
  absl::Status SetAttr(const Caller& caller, const std::string& path,
                       const AttrChange& change, OriginFile* file) override;
  absl::Status SetXattr(const Caller& caller, const std::string& path,
                        const std::string& name, const std::string& value,
                        int flags) override;
  absl::Status RemoveXattr(const Caller& caller, const std::string& path,
                           const std::string& name) override;
  absl::Status SyncDir(const Caller& caller, const std::string& path,
                       bool datasync) override;

 private:
  // A connection of one user other than the daemon's, with its files.
  struct UserConnection {
    std::unique_ptr<NfsConnection> conn;
    std::unique_ptr<NfsOpenFiles> files;
  };
  // Users with connections of their own at most; an idle one makes room.
  static constexpr size_t kMaxUserConnections = 64;

  NfsOrigin(NfsUrl url, Options options, std::string client_name,
            std::vector<std::unique_ptr<NfsConnection>> pool);
  // Where `caller` opens files for `access` (O_RDONLY, O_WRONLY
  // or O_RDWR): the daemon's own pool for its reads and for all of NFSv3,
  // else a connection of that user and access mode (made at its first
  // open; see nfs_open_files.h). `keep` holds the latter alive for as long
  // as the file is open.
  absl::StatusOr<NfsOpenFiles*> FilesForCaller(
      const Caller& caller, int access, std::shared_ptr<UserConnection>* keep);
  // The next connection in turn, with its open files.
  NfsOpenFiles& PickFiles();
  // The next connection, for a call on a path.
  NfsConnection& Pick() { return PickFiles().connection(); }
  // lstat of `path` on `conn` as `caller`, counted in `counter`.
  absl::StatusOr<struct stat> StatOn(const Caller& caller, NfsConnection& conn,
                                     const std::string& path,
                                     OriginStats::Counter& counter);
  // After `path` was removed or renamed: no open file is shared under
  // that name any more (see NfsOpenFiles::Forget).
  void ForgetOpen(const std::string& path);
  // SetAttr over NFSv4: one COMPOUND by path (see nfs4_compound.h).
  absl::Status SetAttrV4(const Caller& caller, const std::string& path,
                         const AttrChange& change);
  // Runs a call as `caller` that returns only a status, counted in
  // `counter`.
  absl::Status Simple(const Caller& caller, std::string_view what,
                      const std::string& path, OriginStats::Counter& counter,
                      absl::FunctionRef<int(struct nfs_context*,
                                            NfsConnection::Callback, void*)>
                          start);

  const NfsUrl url_;
  const Options options_;
  // NFSv4 client names are this plus a suffix per connection.
  const std::string client_name_;
  const Traits traits_;
  std::vector<std::unique_ptr<NfsConnection>> pool_;
  // One per connection, in the same order; gone before the connections.
  std::vector<std::unique_ptr<NfsOpenFiles>> files_;
  std::atomic<size_t> next_{0};
  absl::Mutex users_mu_;
  // By uid << 2 | access mode.
  absl::flat_hash_map<uint64_t, std::shared_ptr<UserConnection>> by_user_
      ABSL_GUARDED_BY(users_mu_);
  OriginStats stats_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_ORIGIN_H_
