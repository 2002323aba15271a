#include "netfs/fault_injection_origin.h"

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

using Kind = FaultInjectionOrigin::Kind;

// A file of the base origin whose calls meet the faults first.
class FaultInjectionFile : public OriginFile {
 public:
  FaultInjectionFile(FaultInjectionOrigin* origin,
                     std::unique_ptr<OriginFile> base, std::string path)
      : origin_(origin), base_(std::move(base)), path_(std::move(path)) {}

  absl::StatusOr<size_t> PRead(void* buf, size_t n,
                               uint64_t offset) override {
    origin_->ReadStarted();
    absl::Status entered = origin_->Enter(Kind::kRead, "read " + path_);
    absl::StatusOr<size_t> got =
        entered.ok() ? base_->PRead(buf, n, offset) : entered;
    origin_->ReadEnded();
    return got;
  }
  absl::StatusOr<size_t> PWrite(const void* buf, size_t n,
                                uint64_t offset) override {
    absl::Status entered = origin_->Enter(Kind::kWrite, "write " + path_);
    if (!entered.ok()) return entered;
    return base_->PWrite(buf, n, offset);
  }
  absl::StatusOr<struct stat> Stat() override {
    absl::Status entered = origin_->Enter(Kind::kAttr, "fstat " + path_);
    if (!entered.ok()) return entered;
    return base_->Stat();
  }
  absl::Status Truncate(uint64_t size) override {
    absl::Status entered = origin_->Enter(Kind::kWrite, "truncate " + path_);
    if (!entered.ok()) return entered;
    return base_->Truncate(size);
  }
  absl::Status Sync(bool datasync) override {
    absl::Status entered = origin_->Enter(Kind::kOther, "fsync " + path_);
    if (!entered.ok()) return entered;
    return base_->Sync(datasync);
  }
  absl::Status Flush() override {
    absl::Status entered = origin_->Enter(Kind::kOther, "flush " + path_);
    if (!entered.ok()) return entered;
    return base_->Flush();
  }
  absl::Status Allocate(int mode, uint64_t offset, uint64_t len) override {
    absl::Status entered = origin_->Enter(Kind::kWrite, "fallocate " + path_);
    if (!entered.ok()) return entered;
    return base_->Allocate(mode, offset, len);
  }
  absl::StatusOr<size_t> CopyTo(uint64_t offset, OriginFile& out,
                                uint64_t out_offset, size_t len,
                                unsigned flags) override {
    absl::Status entered =
        origin_->Enter(Kind::kWrite, "copy_file_range " + path_);
    if (!entered.ok()) return entered;
    auto* other = dynamic_cast<FaultInjectionFile*>(&out);
    return base_->CopyTo(offset, other != nullptr ? *other->base_ : out,
                         out_offset, len, flags);
  }
  OriginFile* base() const { return base_.get(); }

 private:
  FaultInjectionOrigin* const origin_;
  const std::unique_ptr<OriginFile> base_;
  const std::string path_;
};

OriginFile* BaseOf(OriginFile* file) {
  auto* injected = dynamic_cast<FaultInjectionFile*>(file);
  return injected != nullptr ? injected->base() : file;
}

}  // namespace

void FaultInjectionOrigin::SetLatency(absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  latency_ = latency;
}

void FaultInjectionOrigin::FailNext(Kind kind, int err, int count) {
  absl::MutexLock lock(&mu_);
  fail_err_[static_cast<int>(kind)] = err;
  fail_count_[static_cast<int>(kind)] = count;
}

void FaultInjectionOrigin::Disconnect() {
  absl::MutexLock lock(&mu_);
  disconnected_ = true;
}

void FaultInjectionOrigin::Reconnect() {
  absl::MutexLock lock(&mu_);
  disconnected_ = false;
}

void FaultInjectionOrigin::Hang() {
  absl::MutexLock lock(&mu_);
  hung_ = true;
}

void FaultInjectionOrigin::Resume() {
  absl::MutexLock lock(&mu_);
  hung_ = false;
}

uint64_t FaultInjectionOrigin::calls(Kind kind) const {
  return calls_[static_cast<int>(kind)].load();
}

void FaultInjectionOrigin::ReadStarted() {
  const int now = reads_.fetch_add(1) + 1;
  int max = max_reads_.load();
  while (now > max && !max_reads_.compare_exchange_weak(max, now)) {
  }
}

absl::Status FaultInjectionOrigin::Enter(Kind kind, const std::string& what) {
  absl::Duration latency;
  int err = 0;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* hung) { return !*hung; }, &hung_));
    latency = latency_;
    const int k = static_cast<int>(kind);
    if (disconnected_) {
      err = ENOTCONN;
    } else if (fail_count_[k] > 0) {
      --fail_count_[k];
      err = fail_err_[k];
    }
  }
  if (latency > absl::ZeroDuration()) absl::SleepFor(latency);
  if (err != 0) return ErrnoToStatus(err, absl::StrCat(what, " (injected)"));
  calls_[static_cast<int>(kind)].fetch_add(1);
  return absl::OkStatus();
}

absl::StatusOr<struct stat> FaultInjectionOrigin::GetAttr(
    const Caller& caller, const std::string& path) {
  absl::Status entered = Enter(Kind::kAttr, "stat " + path);
  if (!entered.ok()) return entered;
  return base_->GetAttr(caller, path);
}

absl::StatusOr<std::unique_ptr<OriginFile>> FaultInjectionOrigin::OpenFile(
    const Caller& caller, const std::string& path, int flags) {
  absl::Status entered = Enter(Kind::kOpen, "open " + path);
  if (!entered.ok()) return entered;
  absl::StatusOr<std::unique_ptr<OriginFile>> file =
      base_->OpenFile(caller, path, flags);
  if (!file.ok()) return file.status();
  return std::unique_ptr<OriginFile>(
      new FaultInjectionFile(this, *std::move(file), path));
}

absl::Status FaultInjectionOrigin::CheckAccess(const Caller& caller,
                                               const std::string& path,
                                               int mask) {
  absl::Status entered = Enter(Kind::kOther, "access " + path);
  if (!entered.ok()) return entered;
  return base_->CheckAccess(caller, path, mask);
}

absl::StatusOr<std::unique_ptr<OriginDir>> FaultInjectionOrigin::OpenDir(
    const Caller& caller, const std::string& path) {
  absl::Status entered = Enter(Kind::kList, "list " + path);
  if (!entered.ok()) return entered;
  return base_->OpenDir(caller, path);
}

absl::StatusOr<std::string> FaultInjectionOrigin::ReadLink(
    const Caller& caller, const std::string& path) {
  absl::Status entered = Enter(Kind::kOther, "readlink " + path);
  if (!entered.ok()) return entered;
  return base_->ReadLink(caller, path);
}

absl::StatusOr<struct statvfs> FaultInjectionOrigin::StatFs(
    const Caller& caller, const std::string& path) {
  absl::Status entered = Enter(Kind::kOther, "statfs " + path);
  if (!entered.ok()) return entered;
  return base_->StatFs(caller, path);
}

absl::StatusOr<std::string> FaultInjectionOrigin::GetXattr(
    const Caller& caller, const std::string& path, const std::string& name) {
  absl::Status entered = Enter(Kind::kOther, "getxattr " + path);
  if (!entered.ok()) return entered;
  return base_->GetXattr(caller, path, name);
}

absl::StatusOr<std::vector<std::string>> FaultInjectionOrigin::ListXattr(
    const Caller& caller, const std::string& path) {
  absl::Status entered = Enter(Kind::kOther, "listxattr " + path);
  if (!entered.ok()) return entered;
  return base_->ListXattr(caller, path);
}

absl::StatusOr<Origin::CreateResult> FaultInjectionOrigin::Create(
    const Caller& caller, const std::string& path, mode_t mode, int flags) {
  absl::Status entered = Enter(Kind::kOpen, "create " + path);
  if (!entered.ok()) return entered;
  absl::StatusOr<CreateResult> made = base_->Create(caller, path, mode, flags);
  if (!made.ok()) return made.status();
  made->file = std::unique_ptr<OriginFile>(
      new FaultInjectionFile(this, std::move(made->file), path));
  return made;
}

absl::StatusOr<struct stat> FaultInjectionOrigin::MakeNode(
    const Caller& caller, const std::string& path, mode_t mode, dev_t rdev) {
  absl::Status entered = Enter(Kind::kChange, "mknod " + path);
  if (!entered.ok()) return entered;
  return base_->MakeNode(caller, path, mode, rdev);
}

absl::StatusOr<struct stat> FaultInjectionOrigin::MakeDir(
    const Caller& caller, const std::string& path, mode_t mode) {
  absl::Status entered = Enter(Kind::kChange, "mkdir " + path);
  if (!entered.ok()) return entered;
  return base_->MakeDir(caller, path, mode);
}

absl::StatusOr<struct stat> FaultInjectionOrigin::MakeSymlink(
    const Caller& caller, const std::string& target, const std::string& path) {
  absl::Status entered = Enter(Kind::kChange, "symlink " + path);
  if (!entered.ok()) return entered;
  return base_->MakeSymlink(caller, target, path);
}

absl::StatusOr<struct stat> FaultInjectionOrigin::Link(
    const Caller& caller, const std::string& path,
    const std::string& new_path) {
  absl::Status entered = Enter(Kind::kChange, "link " + path);
  if (!entered.ok()) return entered;
  return base_->Link(caller, path, new_path);
}

absl::Status FaultInjectionOrigin::Unlink(const Caller& caller,
                                          const std::string& path) {
  absl::Status entered = Enter(Kind::kChange, "unlink " + path);
  if (!entered.ok()) return entered;
  return base_->Unlink(caller, path);
}

absl::Status FaultInjectionOrigin::RemoveDir(const Caller& caller,
                                             const std::string& path) {
  absl::Status entered = Enter(Kind::kChange, "rmdir " + path);
  if (!entered.ok()) return entered;
  return base_->RemoveDir(caller, path);
}

absl::Status FaultInjectionOrigin::Rename(const Caller& caller,
                                          const std::string& path,
                                          const std::string& new_path,
                                          unsigned flags) {
  absl::Status entered = Enter(Kind::kChange, "rename " + path);
  if (!entered.ok()) return entered;
  return base_->Rename(caller, path, new_path, flags);
}

absl::Status FaultInjectionOrigin::SetAttr(const Caller& caller,
                                           const std::string& path,
                                           const AttrChange& change,
                                           OriginFile* file) {
  absl::Status entered = Enter(Kind::kChange, "setattr " + path);
  if (!entered.ok()) return entered;
  return base_->SetAttr(caller, path, change, BaseOf(file));
}

absl::Status FaultInjectionOrigin::SetXattr(const Caller& caller,
                                            const std::string& path,
                                            const std::string& name,
                                            const std::string& value,
                                            int flags) {
  absl::Status entered = Enter(Kind::kChange, "setxattr " + path);
  if (!entered.ok()) return entered;
  return base_->SetXattr(caller, path, name, value, flags);
}

absl::Status FaultInjectionOrigin::RemoveXattr(const Caller& caller,
                                               const std::string& path,
                                               const std::string& name) {
  absl::Status entered = Enter(Kind::kChange, "removexattr " + path);
  if (!entered.ok()) return entered;
  return base_->RemoveXattr(caller, path, name);
}

absl::Status FaultInjectionOrigin::SyncDir(const Caller& caller,
                                           const std::string& path,
                                           bool datasync) {
  absl::Status entered = Enter(Kind::kOther, "fsync " + path);
  if (!entered.ok()) return entered;
  return base_->SyncDir(caller, path, datasync);
}

}  // namespace cachefs
