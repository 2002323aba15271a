// Whose request an NFS call is.

#ifndef CACHEFS_NETFS_NFS_IDENTITY_H_
#define CACHEFS_NETFS_NFS_IDENTITY_H_

#include <sys/fsuid.h>
#include <unistd.h>

#include "netfs/nfs_connection.h"

namespace cachefs {

// The calling thread's filesystem identity: what the FUSE front end took
// on for this request (setfsuid with an invalid id only reports it).
// Its supplementary groups are the thread's own (the raw setgroups system
// call that takes them on changes one thread only).
inline NfsConnection::Identity CallerIdentity() {
  NfsConnection::Identity who{
      static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1))),
      static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1))),
      {}};
  const int n = getgroups(0, nullptr);
  if (n > 0) {
    who.groups.resize(static_cast<size_t>(n));
    const int got = getgroups(n, who.groups.data());
    who.groups.resize(got > 0 ? static_cast<size_t>(got) : 0);
  }
  return who;
}

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_IDENTITY_H_
