// Acting as a caller on a local or mounted filesystem. A daemon running as
// root (with allow_other) serves many users; the posix backend takes on
// each caller's filesystem uid, gid and supplementary groups around its
// system calls, so the origin checks permissions as it would for that user
// and new files belong to the caller, as on a local filesystem.
//
// setfsuid, setfsgid and the raw setgroups system call change the calling
// thread only (glibc's setgroups() would change every thread), so this is
// safe in a multi-threaded daemon as long as the origin call runs on the
// same thread.

#ifndef CACHEFS_NETFS_CREDENTIALS_H_
#define CACHEFS_NETFS_CREDENTIALS_H_

#include "netfs/caller.h"

namespace cachefs {

// Whether this process can act as other users (it runs as root).
bool CanSwitchCredentials();

// Takes on `caller`'s filesystem identity for the current thread until
// destroyed, then the daemon's again. Does nothing unless
// CanSwitchCredentials() and the caller is not root (uid and gid 0).
class ScopedCredentials {
 public:
  explicit ScopedCredentials(const Caller& caller);
  ~ScopedCredentials();
  ScopedCredentials(const ScopedCredentials&) = delete;
  ScopedCredentials& operator=(const ScopedCredentials&) = delete;

  bool active() const { return active_; }

 private:
  bool active_ = false;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_CREDENTIALS_H_
