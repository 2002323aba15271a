// Whose request an NFS call is.

#ifndef CACHEFS_NETFS_NFS_IDENTITY_H_
#define CACHEFS_NETFS_NFS_IDENTITY_H_

#include <sys/fsuid.h>

#include "netfs/nfs_connection.h"

namespace cachefs {

// The calling thread's filesystem identity: what the FUSE front end took
// on for this request (setfsuid with an invalid id only reports it).
inline NfsConnection::Identity CallerIdentity() {
  return NfsConnection::Identity{
      static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1))),
      static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1)))};
}

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_IDENTITY_H_
