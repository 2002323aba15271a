// Counts the origin files of one cachefs file that are still open, so that
// removing the file at the origin can wait for closes still in flight.
//
// Origin files are closed after the last handle that used them lets go,
// often on a background thread (a close may ask the server). An origin that
// hides files removed while open (SSHFS renames them to .fuse_hidden*) must
// not see the unlink before that close, nor while its own handling of the
// close is still under way: see NetfsFile::ReadyForRemoval.
//
// Thread safety: safe for concurrent use. Shared with the closes it counts,
// which may run after the file's Inode is gone.

#ifndef CACHEFS_NETFS_OPEN_ORIGIN_FILES_H_
#define CACHEFS_NETFS_OPEN_ORIGIN_FILES_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "netfs/origin.h"

namespace cachefs {

class OpenOriginFiles : public std::enable_shared_from_this<OpenOriginFiles> {
 public:
  // `file`, counted as open until the last reference to it is dropped and
  // it is closed.
  std::shared_ptr<OriginFile> Count(std::unique_ptr<OriginFile> file);

  // Waits until no counted file is open, or `timeout` has passed; true if
  // none is open.
  bool AwaitAllClosed(absl::Duration timeout);

  // True if a counted file is open, or the last one was closed less than
  // `period` ago.
  bool OpenWithin(absl::Duration period);

 private:
  bool AllClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return open_ == 0;
  }

  absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_closed_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_OPEN_ORIGIN_FILES_H_
