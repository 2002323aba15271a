#include "netfs/late_origin.h"

#include <cerrno>
#include <utility>

#include "io/errno_status.h"

namespace cachefs {

LateOrigin::LateOrigin(std::string description, Traits traits, absl::Status why,
                       Opener open)
    : description_(std::move(description)),
      traits_(std::move(traits)),
      open_(std::move(open)),
      last_error_(std::move(why)) {}

LateOrigin::~LateOrigin() = default;

const Origin::Traits& LateOrigin::traits() const {
  Origin* origin = opened_.load();
  return origin != nullptr ? origin->traits() : traits_;
}

const OriginStats& LateOrigin::stats() const {
  Origin* origin = opened_.load();
  return origin != nullptr ? origin->stats() : no_calls_;
}

absl::StatusOr<Origin*> LateOrigin::Reach() {
  if (Origin* origin = opened_.load(); origin != nullptr) return origin;
  {
    absl::MutexLock lock(&mu_);
    if (origin_ != nullptr) return origin_.get();
    if (opening_) {
      return ErrnoToStatus(
          ENOTCONN, "origin " + description_ + " is still unreachable (" +
                        std::string(last_error_.message()) + ")");
    }
    opening_ = true;
  }
  // Unlocked: the open may block for as long as the server is stopped.
  absl::StatusOr<std::unique_ptr<Origin>> opened = open_();
  absl::MutexLock lock(&mu_);
  opening_ = false;
  if (!opened.ok()) {
    last_error_ = opened.status();
    return ErrnoToStatus(ENOTCONN,
                         "origin " + description_ + " is unreachable (" +
                             std::string(last_error_.message()) + ")");
  }
  origin_ = *std::move(opened);
  opened_.store(origin_.get());
  return origin_.get();
}

// Every call: the real origin's answer, or why it cannot be asked.
#define CACHEFS_LATE_CALL(call)             \
  absl::StatusOr<Origin*> origin = Reach(); \
  if (!origin.ok()) return origin.status(); \
  return (*origin)->call

absl::StatusOr<struct stat> LateOrigin::GetAttr(const Caller& caller,
                                                const std::string& path) {
  CACHEFS_LATE_CALL(GetAttr(caller, path));
}

absl::StatusOr<std::unique_ptr<OriginFile>> LateOrigin::OpenFile(
    const Caller& caller, const std::string& path, int flags) {
  CACHEFS_LATE_CALL(OpenFile(caller, path, flags));
}

absl::Status LateOrigin::CheckAccess(const Caller& caller,
                                     const std::string& path, int mask) {
  CACHEFS_LATE_CALL(CheckAccess(caller, path, mask));
}

absl::StatusOr<std::unique_ptr<OriginDir>> LateOrigin::OpenDir(
    const Caller& caller, const std::string& path) {
  CACHEFS_LATE_CALL(OpenDir(caller, path));
}

absl::StatusOr<std::string> LateOrigin::ReadLink(const Caller& caller,
                                                 const std::string& path) {
  CACHEFS_LATE_CALL(ReadLink(caller, path));
}

absl::StatusOr<struct statvfs> LateOrigin::StatFs(const Caller& caller,
                                                  const std::string& path) {
  CACHEFS_LATE_CALL(StatFs(caller, path));
}

absl::StatusOr<std::string> LateOrigin::GetXattr(const Caller& caller,
                                                 const std::string& path,
                                                 const std::string& name) {
  CACHEFS_LATE_CALL(GetXattr(caller, path, name));
}

absl::StatusOr<std::vector<std::string>> LateOrigin::ListXattr(
    const Caller& caller, const std::string& path) {
  CACHEFS_LATE_CALL(ListXattr(caller, path));
}

absl::StatusOr<Origin::CreateResult> LateOrigin::Create(const Caller& caller,
                                                        const std::string& path,
                                                        mode_t mode,
                                                        int flags) {
  CACHEFS_LATE_CALL(Create(caller, path, mode, flags));
}

absl::StatusOr<struct stat> LateOrigin::MakeNode(const Caller& caller,
                                                 const std::string& path,
                                                 mode_t mode, dev_t rdev) {
  CACHEFS_LATE_CALL(MakeNode(caller, path, mode, rdev));
}

absl::StatusOr<struct stat> LateOrigin::MakeDir(const Caller& caller,
                                                const std::string& path,
                                                mode_t mode) {
  CACHEFS_LATE_CALL(MakeDir(caller, path, mode));
}

absl::StatusOr<struct stat> LateOrigin::MakeSymlink(const Caller& caller,
                                                    const std::string& target,
                                                    const std::string& path) {
  CACHEFS_LATE_CALL(MakeSymlink(caller, target, path));
}

absl::StatusOr<struct stat> LateOrigin::Link(const Caller& caller,
                                             const std::string& path,
                                             const std::string& new_path) {
  CACHEFS_LATE_CALL(Link(caller, path, new_path));
}

absl::Status LateOrigin::Unlink(const Caller& caller, const std::string& path) {
  CACHEFS_LATE_CALL(Unlink(caller, path));
}

absl::Status LateOrigin::RemoveDir(const Caller& caller,
                                   const std::string& path) {
  CACHEFS_LATE_CALL(RemoveDir(caller, path));
}

absl::Status LateOrigin::Rename(const Caller& caller, const std::string& path,
                                const std::string& new_path, unsigned flags) {
  CACHEFS_LATE_CALL(Rename(caller, path, new_path, flags));
}

absl::Status LateOrigin::SetAttr(const Caller& caller, const std::string& path,
                                 const AttrChange& change, OriginFile* file) {
  CACHEFS_LATE_CALL(SetAttr(caller, path, change, file));
}

absl::Status LateOrigin::SetXattr(const Caller& caller, const std::string& path,
                                  const std::string& name,
                                  const std::string& value, int flags) {
  CACHEFS_LATE_CALL(SetXattr(caller, path, name, value, flags));
}

absl::Status LateOrigin::RemoveXattr(const Caller& caller,
                                     const std::string& path,
                                     const std::string& name) {
  CACHEFS_LATE_CALL(RemoveXattr(caller, path, name));
}

absl::Status LateOrigin::SyncDir(const Caller& caller, const std::string& path,
                                 bool datasync) {
  CACHEFS_LATE_CALL(SyncDir(caller, path, datasync));
}

#undef CACHEFS_LATE_CALL

}  // namespace cachefs
