// FaultInjectionOrigin: an Origin that passes every call to another one,
// with what a real server gives only at random: latency, errors of one
// kind of call, and a disconnect. For tests of the read and write paths
// without a mount (as FaultInjectionEnv is for the cache disk).
//
// Thread safety: all methods may be called concurrently.

#ifndef CACHEFS_NETFS_FAULT_INJECTION_ORIGIN_H_
#define CACHEFS_NETFS_FAULT_INJECTION_ORIGIN_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "netfs/origin.h"

namespace cachefs {

class FaultInjectionOrigin : public Origin {
 public:
  // The kinds of call a fault can be aimed at.
  enum class Kind { kAttr, kOpen, kRead, kWrite, kChange, kList, kOther };

  // `base` must outlive this origin and the files it opens.
  explicit FaultInjectionOrigin(Origin* base)
      : base_(base), traits_(base->traits()) {}

  // Every call first waits this long (0: none).
  void SetLatency(absl::Duration latency);
  // The next `count` calls of `kind` fail with `err`, without reaching the
  // base origin.
  void FailNext(Kind kind, int err, int count = 1);
  // While disconnected every call fails with ENOTCONN, files opened before
  // too; Reconnect ends it.
  void Disconnect();
  void Reconnect();
  // While hung every call blocks, as on a stopped server (SIGSTOP), until
  // Resume.
  void Hang();
  void Resume();
  // Says its calls may hang (Traits::calls_may_hang), as a FUSE origin
  // does. Before anything reads the traits.
  void SetCallsMayHang(bool may_hang) { traits_.calls_may_hang = may_hang; }
  // The most reads that were waiting at once so far.
  int max_reads_in_flight() const { return max_reads_.load(); }
  // Calls that reached the base origin, of `kind`.
  uint64_t calls(Kind kind) const;

  const Traits& traits() const override { return traits_; }
  std::string Describe() const override { return base_->Describe(); }
  const OriginStats& stats() const override { return base_->stats(); }

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

  // What a call of `kind` on `what` meets before it reaches the base
  // origin: the latency, then a fault, if any. Used by the files too.
  absl::Status Enter(Kind kind, const std::string& what);

  // Reads in flight, for max_reads_in_flight().
  void ReadStarted();
  void ReadEnded() { reads_.fetch_sub(1); }

 private:
  static constexpr int kKinds = 7;

  Origin* const base_;
  Traits traits_;
  absl::Mutex mu_;
  absl::Duration latency_ ABSL_GUARDED_BY(mu_);
  bool disconnected_ ABSL_GUARDED_BY(mu_) = false;
  bool hung_ ABSL_GUARDED_BY(mu_) = false;
  int fail_err_[kKinds] ABSL_GUARDED_BY(mu_) = {};
  int fail_count_[kKinds] ABSL_GUARDED_BY(mu_) = {};
  std::atomic<uint64_t> calls_[kKinds] = {};
  std::atomic<int> reads_{0};
  std::atomic<int> max_reads_{0};
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_FAULT_INJECTION_ORIGIN_H_
