// NfsOpenFiles: the open files of one NfsConnection, shared by path.
//
// NFSv4 keeps one open state per file and open-owner, and libnfs sends
// every OPEN of a context as the same owner: two opens of one file on a
// connection share one state, and the CLOSE of either ends it for both
// (the other's reads then fail with a bad stateid). So every opener of a
// file on a connection shares its handles, and they are closed when the
// last opener lets go. An open that needs more access than the handles
// have (a write after reads) opens again, which the server takes as an
// upgrade of the same state. NFSv3 keeps no open state; sharing costs it
// nothing and saves it OPEN's lookups.
//
// NFSv4.0 also numbers each open-owner's OPEN, OPEN_CONFIRM and CLOSE in
// sequence, and libnfs 4.0 sends them as they come: two in flight at once
// on one context reach the server out of order and fail with
// NFS4ERR_BAD_SEQID. So opens and closes on one NFSv4 connection go one at
// a time (the other connections of the pool go on in parallel).

#ifndef CACHEFS_NETFS_NFS_OPEN_FILES_H_
#define CACHEFS_NETFS_NFS_OPEN_FILES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "netfs/nfs_connection.h"
#include "netfs/origin_stats.h"

struct nfsfh;

namespace cachefs {

class NfsOpenFiles {
 public:
  NfsOpenFiles(NfsConnection* conn, OriginStats* stats)
      : conn_(conn), stats_(stats) {}
  ~NfsOpenFiles();

  NfsConnection& connection() const { return *conn_; }

  // One more user of `path` with `flags` (O_ACCMODE, O_TRUNC, O_SYNC and
  // O_DSYNC count); opens it on the server unless an open handle will do.
  // With O_CREAT it creates the file (`mode`, and O_EXCL as asked).
  absl::Status Acquire(const std::string& path, int flags, int mode = 0);
  // A handle of `path` valid on the connection's current context, for a
  // user that Acquired it; after a reconnect, the file is opened again.
  absl::StatusOr<struct nfsfh*> Handle(const std::string& path, int flags);
  // One user fewer; the last closes the handles on the server.
  void Release(const std::string& path);

 private:
  struct Shared {
    // Every handle opened for the users: all stand for one open state.
    std::vector<struct nfsfh*> handles;
    int access = 0;  // O_RDONLY, O_WRONLY or O_RDWR the handles allow
    int users = 0;
    uint64_t generation = 0;  // the connection's, when opened
  };
  // Opens (or creates) `path` on the server.
  absl::StatusOr<struct nfsfh*> OpenOnServer(const std::string& path,
                                             int flags, int mode);

  NfsConnection* const conn_;
  OriginStats* const stats_;
  // Held across each OPEN and CLOSE call over NFSv4 (see above).
  absl::Mutex sequenced_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Shared> by_path_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_OPEN_FILES_H_
