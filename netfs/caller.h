// Caller: whom an origin operation is done for. Every Origin call takes
// one, so a backend acts as that user in its own way: the posix backend
// takes on the caller's filesystem identity around its system calls
// (credentials.h), the NFS backend sends it as AUTH_SYS credentials. The
// daemon's own work (reads ahead, prefetch) is done as Caller::Daemon().

#ifndef CACHEFS_NETFS_CALLER_H_
#define CACHEFS_NETFS_CALLER_H_

#include <sys/types.h>

#include <vector>

namespace cachefs {

struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  // Supplementary groups; empty when the daemon will not act as the
  // caller (it does not run as root), so they were not read.
  std::vector<gid_t> groups;
  pid_t pid = 0;  // the requesting process, 0 for the daemon's own work

  // The daemon process itself: its effective ids and groups.
  static const Caller& Daemon();
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_CALLER_H_
