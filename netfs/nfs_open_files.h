// NfsOpenFiles: the open files of one NfsConnection, shared by path.
//
// NFSv4 keeps one open state per file and open-owner, and libnfs 4.0 sends
// every OPEN of a context as one owner: a second OPEN of an open file
// would supersede the first one's stateid (whose reads then fail) and one
// CLOSE ends the state for both. So a file is opened at most once per
// connection; later openers share its handle, and the last to let go
// closes it; so do the users of the file's other names (hard links), once
// its handle shows it is the same file. A connection opens files for one
// user and one access mode
// only (NfsOrigin picks it), so a shared handle never serves an open its
// opener could not have made.
//
// NFSv4.0 also numbers each open-owner's OPEN, OPEN_CONFIRM and CLOSE in
// sequence, and libnfs 4.0 sends them as they come: two in flight at once
// on one context reach the server out of order and fail with
// NFS4ERR_BAD_SEQID. So opens and closes on one connection go one at a
// time (the other connections go on in parallel). NFSv3 keeps no open
// state; sharing costs it nothing and saves it lookups.

#ifndef CACHEFS_NETFS_NFS_OPEN_FILES_H_
#define CACHEFS_NETFS_NFS_OPEN_FILES_H_

#include <cstdint>
#include <memory>
#include <string>

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
  // One file open on the connection, shared by its users.
  struct Shared {
    std::string path;         // as opened
    NfsConnection::Identity opener;  // who opened it: opens again, closes
    std::string handle;       // the NFS file handle
    struct nfsfh* fh = nullptr;
    int users = 0;            // guarded by the owner's mu_
    uint64_t generation = 0;  // the connection's, when opened
  };
  using Ref = std::shared_ptr<Shared>;

  NfsOpenFiles(NfsConnection* conn, OriginStats* stats)
      : conn_(conn), stats_(stats) {}

  NfsConnection& connection() const { return *conn_; }

  // One more user of `path` with `flags` (O_ACCMODE, O_TRUNC, O_SYNC and
  // O_DSYNC count); opens it on the server unless it is open here already
  // (`*reused`: then O_TRUNC is not applied). With O_CREAT it creates the
  // file (`mode`; O_EXCL fails with EEXIST on a file open here). Opens as
  // `who`.
  absl::StatusOr<Ref> Acquire(const std::string& path, int flags, int mode,
                              const NfsConnection::Identity& who, bool* reused);
  // The file's handle on the connection's current context; after a
  // reconnect, the file is opened again by its path.
  absl::StatusOr<struct nfsfh*> Handle(const Ref& file, int flags);
  // One user fewer; the last closes the file on the server.
  void Release(const Ref& file);
  // `path` (and everything below it) was removed or renamed: later opens
  // of the name open what is there now, while users of the file opened
  // under it go on using it.
  void Forget(const std::string& path);

 private:
  // Opens (or creates) `path` on the server as `who`.
  absl::StatusOr<struct nfsfh*> OpenOnServer(
      const std::string& path, int flags, int mode,
      const NfsConnection::Identity& who);

  NfsConnection* const conn_;
  OriginStats* const stats_;
  // Held across each open and close (see above), and so across the check
  // whether a file is open here and its opening.
  absl::Mutex sequenced_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Ref> by_path_ ABSL_GUARDED_BY(mu_);
  // The same files by NFS file handle: names of one file share it.
  absl::flat_hash_map<std::string, Ref> by_handle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_OPEN_FILES_H_
