#include "netfs/nfs_open_files.h"

#include <fcntl.h>

#include <utility>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

// The file handle behind an open file, which tells two names of one file
// apart from two files. libnfs hands it out (nfs_get_fh) as its private
// struct nfs_fh, which has been these two fields in every version.
struct FileHandleView {
  int len;
  char* val;
};

std::string FileHandleOf(struct nfsfh* fh) {
  const auto* view =
      reinterpret_cast<const FileHandleView*>(nfs_get_fh(fh));
  if (view == nullptr || view->len <= 0 || view->val == nullptr) return "";
  return std::string(view->val, static_cast<size_t>(view->len));
}

// A file handle whose open reply came after its caller gave up.
void CloseAbandoned(struct nfs_context* nfs, void* data) {
  nfs_close_async(
      nfs, static_cast<struct nfsfh*>(data),
      [](int, struct nfs_context*, void*, void*) {}, nullptr);
}

}  // namespace

absl::StatusOr<struct nfsfh*> NfsOpenFiles::OpenOnServer(
    const std::string& path, int flags, int mode,
    const NfsConnection::Identity& who) {
  const std::string nfs_path = "/" + path;
  struct nfsfh* fh = nullptr;
  Count(stats_->opens);
  absl::StatusOr<int> r = conn_->Run(
      absl::StrCat((flags & O_CREAT) ? "create " : "open ", path), who,
      [&](struct nfs_context* nfs, NfsConnection::Callback cb, void* p) {
        if (flags & O_CREAT) {
#ifdef LIBNFS_API_V2
          // libnfs 6 has no nfs_create_async: open2 with O_CREAT is it.
          return nfs_open2_async(nfs, nfs_path.c_str(), flags, mode, cb, p);
#else
          return nfs_create_async(nfs, nfs_path.c_str(), flags, mode, cb, p);
#endif
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

absl::StatusOr<NfsOpenFiles::Ref> NfsOpenFiles::Acquire(
    const std::string& path, int flags, int mode,
    const NfsConnection::Identity& who, bool* reused) {
  absl::MutexLock in_sequence(&sequenced_);
  const uint64_t generation = conn_->generation();
  {
    absl::MutexLock lock(&mu_);
    auto it = by_path_.find(path);
    if (it != by_path_.end() && it->second->generation == generation) {
      if ((flags & O_CREAT) && (flags & O_EXCL)) {
        return ErrnoToStatus(EEXIST, absl::StrCat("create ", path));
      }
      ++it->second->users;
      *reused = true;
      return it->second;
    }
  }
  absl::StatusOr<struct nfsfh*> fh = OpenOnServer(path, flags, mode, who);
  if (!fh.ok()) return fh.status();
  const std::string handle = FileHandleOf(*fh);
  absl::MutexLock lock(&mu_);
  *reused = false;
  if (auto same = by_handle_.find(handle);
      !handle.empty() && same != by_handle_.end() &&
      same->second->generation == generation) {
    // Another name of a file open here (a hard link): the server took
    // this OPEN as one more of the same state, whose stateid only the
    // new handle holds now. Every user goes on with the new handle; the
    // old one is left to the context (libnfs frees a handle only as it
    // closes it, and the state must be closed once).
    Ref file = same->second;
    file->fh = *fh;
    ++file->users;
    by_path_[path] = file;
    return file;
  }
  // An entry of an older context stays with its users; its handle died
  // with that context.
  Ref file = std::make_shared<Shared>();
  file->path = path;
  file->opener = who;
  file->handle = handle;
  file->fh = *fh;
  file->generation = generation;
  file->users = 1;
  by_path_[path] = file;
  if (!handle.empty()) by_handle_[handle] = file;
  return file;
}

absl::StatusOr<struct nfsfh*> NfsOpenFiles::Handle(const Ref& file,
                                                   int flags) {
  {
    absl::MutexLock lock(&mu_);
    if (file->generation == conn_->generation()) return file->fh;
  }
  // The connection was made again since the file was opened: its handle
  // belonged to the old context. Open it again for every user at once.
  absl::MutexLock in_sequence(&sequenced_);
  const uint64_t generation = conn_->generation();
  {
    absl::MutexLock lock(&mu_);
    if (file->generation == generation) return file->fh;
  }
  absl::StatusOr<struct nfsfh*> fh = OpenOnServer(
      file->path, flags & ~(O_TRUNC | O_CREAT | O_EXCL), 0, file->opener);
  if (!fh.ok()) return fh.status();
  absl::MutexLock lock(&mu_);
  file->fh = *fh;
  file->generation = generation;
  return *fh;
}

void NfsOpenFiles::Release(const Ref& file) {
  absl::MutexLock in_sequence(&sequenced_);
  {
    absl::MutexLock lock(&mu_);
    if (--file->users > 0) return;
    absl::erase_if(by_path_,
                   [&](const auto& entry) { return entry.second == file; });
    if (auto it = by_handle_.find(file->handle);
        it != by_handle_.end() && it->second == file) {
      by_handle_.erase(it);
    }
    if (file->generation != conn_->generation()) return;
  }
  struct nfsfh* fh = file->fh;
  Count(stats_->other);
  (void)conn_->Run(
      absl::StrCat("close ", file->path), file->opener,
      [fh](struct nfs_context* nfs, NfsConnection::Callback cb, void* p) {
        return nfs_close_async(nfs, fh, cb, p);
      },
      [](struct nfs_context*, int, void*) {});
}

void NfsOpenFiles::Forget(const std::string& path) {
  absl::MutexLock lock(&mu_);
  const std::string below = path + "/";
  absl::erase_if(by_path_, [&](const auto& entry) {
    return entry.first == path || entry.first.rfind(below, 0) == 0;
  });
}

}  // namespace cachefs
