// NFSv4 calls that cachefs sends as COMPOUNDs of its own through libnfs's
// RPC layer, because libnfs 4.0 makes them badly over NFSv4:
//
//   - SETATTR by path: libnfs OPENs the file for writing to change any
//     attribute, which fails on directories (EISDIR), on files the caller
//     may not write (chmod of one's own 0444 file), follows symlinks, and
//     truncates times to microseconds. Here: PUTROOTFH, LOOKUP each name,
//     SETATTR with the anonymous stateid, all in one round trip.
//   - CREATE of FIFOs, sockets and devices (libnfs fails or drops rdev).
//   - LINK of a symlink itself (libnfs follows it).
//   - READLINK (libnfs hands out the target without its length) and the
//     device numbers of a device file (libnfs does not ask for them).
//
// Each Start* function starts one call on a context, as libnfs's *_async
// functions do, and calls `cb` as an nfs_cb: result 0, or -errno with a
// message as the data. Run it through NfsConnection::Run.
//
// The server must not need a call per name: paths are short, and a
// COMPOUND of a few LOOKUPs is one round trip.

#ifndef CACHEFS_NETFS_NFS4_COMPOUND_H_
#define CACHEFS_NETFS_NFS4_COMPOUND_H_

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netfs/nfs_connection.h"

namespace cachefs::nfs4 {

// Names from the server's root to a file: the export's path, then the
// file's path below it.
std::vector<std::string> NamesOf(const std::string& export_path,
                                 const std::string& path);

struct AttrSet {
  std::optional<uint64_t> size;
  std::optional<mode_t> mode;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // tv_nsec may be UTIME_NOW: the server's clock.
  std::optional<struct timespec> atime;
  std::optional<struct timespec> mtime;
};

int StartSetAttr(struct nfs_context* nfs, const std::vector<std::string>& names,
                 const AttrSet& attrs, NfsConnection::Callback cb,
                 void* private_data);

// mknod of a FIFO, socket or device (`mode` holds the type).
int StartMakeSpecial(struct nfs_context* nfs,
                     const std::vector<std::string>& names, mode_t mode,
                     dev_t rdev, NfsConnection::Callback cb,
                     void* private_data);

// A new name `to` for the file `from` (a symlink stays a symlink).
int StartLink(struct nfs_context* nfs, const std::vector<std::string>& from,
              const std::vector<std::string>& to, NfsConnection::Callback cb,
              void* private_data);

// READLINK of the symlink at `names`. On success the callback's data is
// the target as a std::string* (libnfs 4.0's own READLINK over NFSv4
// hands out the target without its length or a terminating NUL).
int StartReadLink(struct nfs_context* nfs,
                  const std::vector<std::string>& names,
                  NfsConnection::Callback cb, void* private_data);

// The device numbers of the device file at `names`. On success the
// callback's data is a dev_t* (libnfs 4.0's GETATTR over NFSv4 does not
// ask for them: its stat reports 0).
int StartGetRawDev(struct nfs_context* nfs,
                   const std::vector<std::string>& names,
                   NfsConnection::Callback cb, void* private_data);

// The errno for an NFSv4 status.
int ErrnoOf(int nfsstat4);

}  // namespace cachefs::nfs4

#endif  // CACHEFS_NETFS_NFS4_COMPOUND_H_
