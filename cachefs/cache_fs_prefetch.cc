// CacheFs as the prefetch layer's PrefetchTarget: by path, through the
// lookups, coherency checks and read path the kernel's requests take.

#include <fcntl.h>

#include <algorithm>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cachefs/cache_fs.h"
#include "cachefs/cache_fs_internal.h"
#include "cachefs/coherency.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

PrefetchTarget::Node NodeOf(const std::string& path, const struct stat& st) {
  PrefetchTarget::Node node;
  node.path = path;
  node.directory = S_ISDIR(st.st_mode);
  node.regular = S_ISREG(st.st_mode);
  node.size = node.regular ? static_cast<uint64_t>(st.st_size) : 0;
  node.mtime_ns = st.st_mtim.tv_sec * int64_t{1000000000} + st.st_mtim.tv_nsec;
  return node;
}

}  // namespace

absl::StatusOr<uint64_t> CacheFs::Reach(const std::string& path,
                                        std::vector<uint64_t>* looked_up) {
  uint64_t ino = InodeTable::kRootId;
  for (absl::string_view name : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StatusOr<Entry> entry = Lookup(ino, std::string(name));
    if (!entry.ok()) return entry.status();
    looked_up->push_back(entry->ino);
    ino = entry->ino;
  }
  return ino;
}

absl::StatusOr<PrefetchTarget::Node> CacheFs::Stat(const std::string& path) {
  std::vector<uint64_t> looked_up;
  absl::Cleanup forget = [&] {
    for (uint64_t ino : looked_up) Forget(ino, 1);
  };
  absl::StatusOr<uint64_t> ino = Reach(path, &looked_up);
  if (!ino.ok()) return ino.status();
  absl::StatusOr<Attr> attr = GetAttr(*ino);
  if (!attr.ok()) return attr.status();
  return NodeOf(path, attr->attr);
}

absl::StatusOr<std::vector<PrefetchTarget::Node>> CacheFs::List(
    const std::string& path) {
  std::vector<uint64_t> looked_up;
  absl::Cleanup forget = [&] {
    for (uint64_t ino : looked_up) Forget(ino, 1);
  };
  absl::StatusOr<uint64_t> ino = Reach(path, &looked_up);
  if (!ino.ok()) return ino.status();
  absl::StatusOr<uint64_t> fh = OpenDir(*ino);
  if (!fh.ok()) return fh.status();
  absl::Cleanup release = [&] { ReleaseDir(*fh); };
  std::vector<Node> nodes;
  const std::string prefix = path.empty() ? "" : path + "/";
  // A listing with attributes (readdirplus): they are fetched in
  // parallel and kept, so the lookups of a later pass cost nothing.
  absl::Status listed = ReadDir(
      *ino, *fh, 0, /*plus=*/true,
      [&](const std::string& name, const struct stat& attr, uint64_t,
          const Entry* entry) {
        if (entry != nullptr) looked_up.push_back(entry->ino);
        if (name != "." && name != "..") {
          nodes.push_back(NodeOf(prefix + name, attr));
        }
        return true;
      });
  if (!listed.ok()) return listed;
  return nodes;
}

absl::StatusOr<CacheFs::Opened> CacheFs::OpenForPrefetch(
    const std::string& path, std::vector<uint64_t>* looked_up) {
  absl::StatusOr<uint64_t> ino = Reach(path, looked_up);
  if (!ino.ok()) return ino.status();
  Inode* inode = inodes_->Get(*ino);
  // The check an open makes (close-to-open, or recent attributes under
  // nocto): what is cached and still current is kept, the rest goes.
  std::optional<struct stat> recent;
  if (!options_.cto) {
    recent = RecentAttr(inode, inode->key(), options_.attr_timeout);
  }
  absl::StatusOr<struct stat> st =
      recent.has_value() ? *recent : FetchAttr(inode);
  if (!st.ok()) return st.status();
  if (!S_ISREG(st->st_mode)) {
    return ErrnoToStatus(EISDIR, path + ": not a regular file");
  }
  return OpenWith(inode, *st, O_RDONLY, nullptr, false, /*for_kernel=*/false);
}

absl::StatusOr<PrefetchTarget::Fetched> CacheFs::Fetch(
    const std::string& path, const Progress& progress) {
  std::vector<uint64_t> looked_up;
  absl::Cleanup forget = [&] {
    for (uint64_t ino : looked_up) Forget(ino, 1);
  };
  absl::StatusOr<Opened> opened = OpenForPrefetch(path, &looked_up);
  if (!opened.ok()) return opened.status();
  absl::Cleanup release = [&] { Release(opened->fh); };
  auto* file = reinterpret_cast<OpenFile*>(opened->fh);
  NetfsFile::Handle& handle = *file->data;
  handle.ReadExactly();
  const uint64_t size = handle.size();
  // Pieces of a few granules: the read path fetches a piece's missing
  // granules all at once, and a stop waits for one piece at most.
  const uint64_t piece = uint64_t{8} << cache_->options().granule_shift;
  Fetched fetched;
  for (uint64_t pos = 0; pos < size; pos += piece) {
    const uint64_t len = std::min(piece, size - pos);
    for (const ReadSegment& s : handle.Missing(pos, len)) {
      const uint64_t from = std::max(s.pos, pos);
      const uint64_t to = std::min({s.pos + s.len, pos + len, size});
      if (from >= to) continue;
      // Dropping the reply stores what it fetched.
      absl::StatusOr<std::unique_ptr<ReadReply>> reply =
          handle.file().Read(handle, from, to - from);
      if (!reply.ok()) return reply.status();
      fetched.bytes_fetched += to - from;
    }
    fetched.bytes = pos + len;
    if (!progress(fetched.bytes, fetched.bytes_fetched)) {
      return absl::CancelledError("prefetch " + path + " stopped");
    }
  }
  return fetched;
}

std::string CacheFs::KeyOf(uint64_t ino) { return inodes_->Get(ino)->key(); }

absl::StatusOr<uint64_t> CacheFs::Push(const std::string& path, uint64_t off,
                                       uint64_t len) {
  std::vector<uint64_t> looked_up;
  absl::Cleanup forget = [&] {
    for (uint64_t ino : looked_up) Forget(ino, 1);
  };
  absl::StatusOr<Opened> opened = OpenForPrefetch(path, &looked_up);
  if (!opened.ok()) return opened.status();
  absl::Cleanup release = [&] { Release(opened->fh); };
  auto* file = reinterpret_cast<OpenFile*>(opened->fh);
  Inode* inode = file->inode;
  const struct stat* st = &opened->attr;
  const uint64_t ino = looked_up.back();  // a file, so not the root
  NetfsFile::Handle& handle = *file->data;
  handle.ReadExactly();
  const uint64_t size = handle.size();
  const uint64_t end = std::min(size, off + len);
  const uint64_t piece = uint64_t{4} << cache_->options().granule_shift;
  // The kernel's pages hold what the kernel was last told of the file:
  // data of another version must not go there.
  bool to_kernel = false;
  to_kernel = kernel_store_ != nullptr &&
              inode->data.KernelFollows(MakeAuxData(*st, UseInode()));
  uint64_t pushed = 0;
  for (uint64_t pos = off; pos < end; pos += piece) {
    absl::StatusOr<std::unique_ptr<ReadReply>> reply =
        handle.file().Read(handle, pos, std::min(piece, end - pos));
    if (!reply.ok()) return reply.status();
    if (!to_kernel || (*reply)->iov().empty()) continue;
    if (kernel_store_(ino, pos, (*reply)->iov()) != 0) {
      to_kernel = false;  // the kernel does not know the file now
      continue;
    }
    pushed += (*reply)->size();
  }
  return pushed;
}

}  // namespace cachefs
