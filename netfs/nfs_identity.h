// Whose request an NFS call is.

#ifndef CACHEFS_NETFS_NFS_IDENTITY_H_
#define CACHEFS_NETFS_NFS_IDENTITY_H_

#include "netfs/caller.h"
#include "netfs/nfs_connection.h"

namespace cachefs {

// The credentials an NFS call is sent with for `caller`.
inline NfsConnection::Identity IdentityOf(const Caller& caller) {
  return NfsConnection::Identity{caller.uid, caller.gid, caller.groups};
}

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_IDENTITY_H_
