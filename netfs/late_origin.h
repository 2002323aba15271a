// LateOrigin: an origin that did not answer when cachefs mounted. The mount
// serves what the cache holds (offline mode) until the origin can be
// opened; every call before that fails with ENOTCONN, which marks the
// origin down, and tries to open it again, so the front end's probe is
// what brings the mount to life. Once opened, every call goes to the real
// origin.
//
// Its traits are what the mount table says of the origin until it opens
// (the front end fixes its inode numbering at mount time from them).
//
// Thread safety: all methods may be called concurrently. One open runs at
// a time; calls meanwhile fail at once, as an open into a stopped server
// may block until the server runs again.

#ifndef CACHEFS_NETFS_LATE_ORIGIN_H_
#define CACHEFS_NETFS_LATE_ORIGIN_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "netfs/origin.h"

namespace cachefs {

class LateOrigin : public Origin {
 public:
  using Opener = std::function<absl::StatusOr<std::unique_ptr<Origin>>()>;

  // `why` is what the first open said; `open` is tried again on calls.
  LateOrigin(std::string description, Traits traits, absl::Status why,
             Opener open);
  ~LateOrigin() override;

  // Whether the real origin is open.
  bool opened() const { return opened_.load() != nullptr; }

  const Traits& traits() const override;
  std::string Describe() const override { return description_; }
  const OriginStats& stats() const override;

  absl::StatusOr<struct stat> GetAttr(const Caller& caller,
                                      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<OriginFile>> OpenFile(const Caller& caller,
                                                       const std::string& path,
                                                       int flags) override;
  absl::Status CheckAccess(const Caller& caller, const std::string& path,
                           int mask) override;
  absl::StatusOr<std::unique_ptr<OriginDir>> OpenDir(
      const Caller& caller, const std::string& path) override;
  absl::StatusOr<std::string> ReadLink(const Caller& caller,
                                       const std::string& path) override;
  absl::StatusOr<struct statvfs> StatFs(const Caller& caller,
                                        const std::string& path) override;
  absl::StatusOr<std::string> GetXattr(const Caller& caller,
                                       const std::string& path,
                                       const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> ListXattr(
      const Caller& caller, const std::string& path) override;
  absl::StatusOr<CreateResult> Create(const Caller& caller,
                                      const std::string& path, mode_t mode,
                                      int flags) override;
  absl::StatusOr<struct stat> MakeNode(const Caller& caller,
                                       const std::string& path, mode_t mode,
                                       dev_t rdev) override;
  absl::StatusOr<struct stat> MakeDir(const Caller& caller,
                                      const std::string& path,
                                      mode_t mode) override;
  absl::StatusOr<struct stat> MakeSymlink(const Caller& caller,
                                          const std::string& target,
                                          const std::string& path) override;
  absl::StatusOr<struct stat> Link(const Caller& caller,
                                   const std::string& path,
                                   const std::string& new_path) override;
  absl::Status Unlink(const Caller& caller, const std::string& path) override;
  absl::Status RemoveDir(const Caller& caller,
                         const std::string& path) override;
  absl::Status Rename(const Caller& caller, const std::string& path,
                      const std::string& new_path, unsigned flags) override;
  absl::Status SetAttr(const Caller& caller, const std::string& path,
                       const AttrChange& change, OriginFile* file) override;
  absl::Status SetXattr(const Caller& caller, const std::string& path,
                        const std::string& name, const std::string& value,
                        int flags) override;
  absl::Status RemoveXattr(const Caller& caller, const std::string& path,
                           const std::string& name) override;
  absl::Status SyncDir(const Caller& caller, const std::string& path,
                       bool datasync) override;

 private:
  // The real origin, or why there is none (ENOTCONN).
  absl::StatusOr<Origin*> Reach();

  const std::string description_;
  const Traits traits_;
  const Opener open_;
  const OriginStats no_calls_;
  // Set once, by the open that succeeds; read without the lock.
  std::atomic<Origin*> opened_{nullptr};

  absl::Mutex mu_;
  std::unique_ptr<Origin> origin_ ABSL_GUARDED_BY(mu_);
  bool opening_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_LATE_ORIGIN_H_
