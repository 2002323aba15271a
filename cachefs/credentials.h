// The calling user's identity for origin operations. A daemon running as
// root (with allow_other) serves many users; it takes on each caller's
// filesystem uid, gid and supplementary groups around the origin call, so
// the origin checks permissions as it would for that user and new files
// belong to the caller, as on a local filesystem.
//
// setfsuid, setfsgid and the raw setgroups system call change the calling
// thread only (glibc's setgroups() would change every thread), so this is
// safe in a multi-threaded daemon as long as the origin call runs on the
// same thread.

#ifndef CACHEFS_CACHEFS_CREDENTIALS_H_
#define CACHEFS_CACHEFS_CREDENTIALS_H_

#include <sys/types.h>

#include <vector>

namespace cachefs {

struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// Whether this process can act as other users (it runs as root).
bool CanSwitchCredentials();
// Whether the calling thread is inside an active ScopedCredentials.
bool ActingForOtherUser();

// Takes on `caller`'s filesystem identity for the current thread until
// destroyed. Does nothing unless CanSwitchCredentials() and the caller
// differs from the daemon.
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

#endif  // CACHEFS_CACHEFS_CREDENTIALS_H_
