#include "netfs/open_origin_files.h"

#include <utility>

namespace cachefs {

std::shared_ptr<OriginFile> OpenOriginFiles::Count(
    std::unique_ptr<OriginFile> file) {
  {
    absl::MutexLock lock(&mu_);
    ++open_;
  }
  return std::shared_ptr<OriginFile>(
      file.release(), [self = shared_from_this()](OriginFile* closing) {
        delete closing;
        absl::MutexLock lock(&self->mu_);
        --self->open_;
        self->last_closed_ = absl::Now();
      });
}

bool OpenOriginFiles::AwaitAllClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(this, &OpenOriginFiles::AllClosed), timeout);
}

bool OpenOriginFiles::OpenWithin(absl::Duration period) {
  absl::MutexLock lock(&mu_);
  return open_ > 0 || absl::Now() - last_closed_ < period;
}

}  // namespace cachefs
