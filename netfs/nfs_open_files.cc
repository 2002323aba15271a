#include "netfs/nfs_open_files.h"

#include <fcntl.h>

#include <optional>
#include <utility>

#include <nfsc/libnfs.h>

#include "absl/strings/str_cat.h"
#include "netfs/nfs_identity.h"

namespace cachefs {
namespace {

// Whether handles opened for `have` serve an open for `want`.
bool Covers(int have, int want) {
  if (have == O_RDWR) return true;
  return have == want;
}

int Union(int a, int b) { return a == b ? a : O_RDWR; }

// A file handle whose open reply came after its caller gave up.
void CloseAbandoned(struct nfs_context* nfs, void* data) {
  nfs_close_async(
      nfs, static_cast<struct nfsfh*>(data),
      [](int, struct nfs_context*, void*, void*) {}, nullptr);
}

}  // namespace

NfsOpenFiles::~NfsOpenFiles() {
  // Users are gone before the origin; what is left was never released
  // (a bug elsewhere): the server drops the state with the client's lease.
}

absl::StatusOr<struct nfsfh*> NfsOpenFiles::OpenOnServer(
    const std::string& path, int flags, int mode) {
  const std::string nfs_path = "/" + path;
  struct nfsfh* fh = nullptr;
  Count(stats_->opens);
  std::optional<absl::MutexLock> in_sequence;
  if (conn_->version() == 4) in_sequence.emplace(&sequenced_);
  absl::StatusOr<int> r = conn_->Run(
      absl::StrCat((flags & O_CREAT) ? "create " : "open ", path),
      CallerIdentity(),
      [&](struct nfs_context* nfs, NfsConnection::Callback cb, void* p) {
        if (flags & O_CREAT) {
          return nfs_create_async(nfs, nfs_path.c_str(), flags, mode, cb, p);
        }
        return nfs_open_async(nfs, nfs_path.c_str(), flags, cb, p);
      },
      [&fh](struct nfs_context*, int, void* data) {
        fh = static_cast<struct nfsfh*>(data);
      },
      &CloseAbandoned);
  if (!r.ok()) return r.status();
  return fh;
}

absl::Status NfsOpenFiles::Acquire(const std::string& path, int flags,
                                   int mode) {
  const int access = flags & O_ACCMODE;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_path_.find(path);
    if (it != by_path_.end() && !(flags & O_CREAT) &&
        it->second.generation == conn_->generation() &&
        Covers(it->second.access, access)) {
      ++it->second.users;
      return absl::OkStatus();
    }
  }
  const uint64_t generation = conn_->generation();
  absl::StatusOr<struct nfsfh*> fh = OpenOnServer(path, flags, mode);
  if (!fh.ok()) return fh.status();
  absl::MutexLock lock(&mu_);
  Shared& shared = by_path_[path];
  if (shared.generation != generation) {
    // Handles of an older context died with it.
    shared.handles.clear();
    shared.access = access;
    shared.generation = generation;
  }
  shared.handles.push_back(*fh);
  shared.access = shared.handles.size() == 1 ? access
                                             : Union(shared.access, access);
  ++shared.users;
  return absl::OkStatus();
}

absl::StatusOr<struct nfsfh*> NfsOpenFiles::Handle(const std::string& path,
                                                   int flags) {
  {
    absl::MutexLock lock(&mu_);
    auto it = by_path_.find(path);
    if (it != by_path_.end() && !it->second.handles.empty() &&
        it->second.generation == conn_->generation()) {
      return it->second.handles.back();
    }
  }
  // The connection was made again since the file was opened: its handles
  // belonged to the old context. Open it again for every user at once.
  const uint64_t generation = conn_->generation();
  absl::StatusOr<struct nfsfh*> fh =
      OpenOnServer(path, flags & ~(O_TRUNC | O_CREAT | O_EXCL), 0);
  if (!fh.ok()) return fh.status();
  absl::MutexLock lock(&mu_);
  Shared& shared = by_path_[path];
  if (shared.generation != generation) {
    shared.handles.clear();
    shared.generation = generation;
    shared.access = flags & O_ACCMODE;
  }
  shared.handles.push_back(*fh);
  shared.access = Union(shared.access, flags & O_ACCMODE);
  return *fh;
}

void NfsOpenFiles::Release(const std::string& path) {
  std::vector<struct nfsfh*> to_close;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_path_.find(path);
    if (it == by_path_.end() || --it->second.users > 0) return;
    if (it->second.generation == conn_->generation()) {
      to_close = std::move(it->second.handles);
    }
    by_path_.erase(it);
  }
  // The first CLOSE ends the shared state; the others are refused by the
  // server, and libnfs frees each handle either way.
  std::optional<absl::MutexLock> in_sequence;
  if (!to_close.empty() && conn_->version() == 4) {
    in_sequence.emplace(&sequenced_);
  }
  for (struct nfsfh* fh : to_close) {
    Count(stats_->other);
    (void)conn_->Run(
        absl::StrCat("close ", path), CallerIdentity(),
        [fh](struct nfs_context* nfs, NfsConnection::Callback cb, void* p) {
          return nfs_close_async(nfs, fh, cb, p);
        },
        [](struct nfs_context*, int, void*) {});
  }
}

}  // namespace cachefs
