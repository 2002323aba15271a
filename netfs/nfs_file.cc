#include "netfs/nfs_file.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <nfsc/libnfs.h>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

using Callback = NfsConnection::Callback;

// What one WRITE call carries. libnfs 4.0 encodes an NFSv4 COMPOUND into
// a 4 KiB buffer whatever its payload, so larger writes fail to encode
// there: pieces of 3.5 KiB leave room for the RPC header, credentials and
// a file handle of NFS's largest size. Pieces go out together, so a large
// write still costs one round trip.
size_t WritePiece(const NfsConnection& conn) {
#ifndef LIBNFS_API_V2
  if (conn.version() == 4) return 3584;
#endif
  return conn.write_max();
}

// Bytes up to the first short piece of `results` (the end of the file, or
// what the server took), `length(i)` being what piece i asked for.
template <typename Length>
size_t Contiguous(const std::vector<int>& results, Length length) {
  size_t done = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const size_t n = std::min<size_t>(static_cast<size_t>(results[i]),
                                      length(i));
    done += n;
    if (n < length(i)) break;
  }
  return done;
}

}  // namespace

struct stat StatOf(const struct nfs_stat_64& in) {
  struct stat st = {};
  st.st_dev = static_cast<dev_t>(in.nfs_dev);
  st.st_ino = static_cast<ino_t>(in.nfs_ino);
  st.st_mode = static_cast<mode_t>(in.nfs_mode);
  st.st_nlink = static_cast<nlink_t>(in.nfs_nlink);
  st.st_uid = static_cast<uid_t>(in.nfs_uid);
  st.st_gid = static_cast<gid_t>(in.nfs_gid);
  st.st_rdev = static_cast<dev_t>(in.nfs_rdev);
  st.st_size = static_cast<off_t>(in.nfs_size);
  st.st_blksize = static_cast<blksize_t>(in.nfs_blksize);
  st.st_blocks = static_cast<blkcnt_t>(in.nfs_blocks);
  st.st_atim = {static_cast<time_t>(in.nfs_atime),
                static_cast<long>(in.nfs_atime_nsec)};
  st.st_mtim = {static_cast<time_t>(in.nfs_mtime),
                static_cast<long>(in.nfs_mtime_nsec)};
  st.st_ctim = {static_cast<time_t>(in.nfs_ctime),
                static_cast<long>(in.nfs_ctime_nsec)};
  return st;
}

NfsFile::NfsFile(NfsOpenFiles* files, NfsOpenFiles::Ref shared,
                 std::shared_ptr<void> keep, NfsConnection::Identity opener,
                 OriginStats* stats, std::string path, int flags)
    : keep_(std::move(keep)),
      files_(files),
      shared_(std::move(shared)),
      conn_(&files->connection()),
      stats_(stats),
      path_(std::move(path)),
      flags_(flags),
      opener_(std::move(opener)) {}

NfsFile::~NfsFile() { files_->Release(shared_); }

template <typename T>
absl::StatusOr<T> NfsFile::WithHandle(
    absl::FunctionRef<absl::StatusOr<T>(struct nfsfh*)> op) {
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<struct nfsfh*> fh = Handle();
    if (!fh.ok()) return fh.status();
    absl::StatusOr<T> result = op(*fh);
    if (result.ok() || attempt > 0 || conn_->version() != 4 ||
        StatusToErrno(result.status()) != ERANGE) {
      return result;
    }
  }
}

absl::StatusOr<size_t> NfsFile::PRead(void* buf, size_t n, uint64_t offset) {
  if (n == 0) return 0;
  return WithHandle<size_t>(
      [&](struct nfsfh* fh) { return ReadWith(fh, buf, n, offset); });
}

absl::StatusOr<size_t> NfsFile::ReadWith(struct nfsfh* fh, void* buf,
                                         size_t n, uint64_t offset) {
  const size_t piece = conn_->read_max();
  const size_t pieces = (n + piece - 1) / piece;
  auto length = [&](size_t i) { return std::min(piece, n - i * piece); };
  Count(stats_->reads, pieces);
  std::vector<NfsConnection::Loan> loans;
#ifdef LIBNFS_API_V2
  // libnfs 6 writes the reply into the buffer it is given whenever it
  // comes, also after this caller gave up: each piece gets its own,
  // which lives as long as libnfs may use it.
  std::vector<char*> into;
  for (size_t i = 0; i < pieces; ++i) {
    auto bounce = std::shared_ptr<char[]>(new char[length(i)]);
    into.push_back(bounce.get());
    loans.push_back(std::move(bounce));
  }
#endif
  absl::StatusOr<std::vector<int>> got = conn_->RunAll(
      absl::StrCat("read ", path_), opener_, pieces,
      [&](size_t i, struct nfs_context* nfs, Callback cb, void* p) {
#ifdef LIBNFS_API_V2
        return nfs_pread_async(nfs, fh, into[i], length(i), offset + i * piece,
                               cb, p);
#else
        return nfs_pread_async(nfs, fh, offset + i * piece, length(i), cb, p);
#endif
      },
      [&](size_t i, struct nfs_context*, int result, void* data) {
#ifdef LIBNFS_API_V2
        (void)data;  // NULL: the bytes are in into[i]
        const char* from = into[i];
#else
        const char* from = static_cast<const char*>(data);
#endif
        std::memcpy(static_cast<char*>(buf) + i * piece, from,
                    std::min<size_t>(static_cast<size_t>(result), length(i)));
      },
      nullptr, std::move(loans), NfsConnection::Kind::kData);
  if (!got.ok()) return got.status();
  return Contiguous(*got, length);
}

absl::StatusOr<size_t> NfsFile::PWrite(const void* buf, size_t n,
                                       uint64_t offset) {
  if (n == 0) return 0;
  return WithHandle<size_t>(
      [&](struct nfsfh* fh) { return WriteWith(fh, buf, n, offset); });
}

absl::StatusOr<size_t> NfsFile::WriteWith(struct nfsfh* fh, const void* buf,
                                          size_t n, uint64_t offset) {
  const size_t piece = WritePiece(*conn_);
  const size_t pieces = (n + piece - 1) / piece;
  auto length = [&](size_t i) { return std::min(piece, n - i * piece); };
  Count(stats_->writes, pieces);
  std::vector<NfsConnection::Loan> loans;
#ifdef LIBNFS_API_V2
  // libnfs 6 sends from the buffer it is given, perhaps after this caller
  // gave up (or again, the rest of a short NFSv3 write): a copy that lives
  // as long as libnfs may use it.
  std::vector<const char*> from;
  for (size_t i = 0; i < pieces; ++i) {
    auto copy = std::shared_ptr<char[]>(new char[length(i)]);
    std::memcpy(copy.get(), static_cast<const char*>(buf) + i * piece,
                length(i));
    from.push_back(copy.get());
    loans.push_back(std::move(copy));
  }
#endif
  absl::StatusOr<std::vector<int>> put = conn_->RunAll(
      absl::StrCat("write ", path_), opener_, pieces,
      [&](size_t i, struct nfs_context* nfs, Callback cb, void* p) {
#ifdef LIBNFS_API_V2
        return nfs_pwrite_async(nfs, fh, from[i], length(i), offset + i * piece,
                                cb, p);
#else
        const char* src = static_cast<const char*>(buf) + i * piece;
        return nfs_pwrite_async(nfs, fh, offset + i * piece, length(i), src,
                                cb, p);
#endif
      },
      [](size_t, struct nfs_context*, int, void*) {}, nullptr,
      std::move(loans), NfsConnection::Kind::kData);
  if (!put.ok()) return put.status();
  return Contiguous(*put, length);
}

absl::StatusOr<struct stat> NfsFile::Stat() {
  return WithHandle<struct stat>(
      [&](struct nfsfh* fh) -> absl::StatusOr<struct stat> {
        Count(stats_->other);
        struct stat st = {};
        absl::StatusOr<int> r = conn_->Run(
            absl::StrCat("fstat ", path_), opener_,
            [&](struct nfs_context* nfs, Callback cb, void* p) {
              return nfs_fstat64_async(nfs, fh, cb, p);
            },
            [&st](struct nfs_context*, int, void* data) {
              st = StatOf(*static_cast<struct nfs_stat_64*>(data));
            });
        if (!r.ok()) return r.status();
        return st;
      });
}

absl::Status NfsFile::Truncate(uint64_t size) {
  return WithHandle<int>([&](struct nfsfh* fh) -> absl::StatusOr<int> {
           Count(stats_->other);
           return conn_->Run(
               absl::StrCat("truncate ", path_), opener_,
               [&](struct nfs_context* nfs, Callback cb, void* p) {
                 return nfs_ftruncate_async(nfs, fh, size, cb, p);
               },
               [](struct nfs_context*, int, void*) {});
         })
      .status();
}

absl::Status NfsFile::Sync(bool) {
  return WithHandle<int>([&](struct nfsfh* fh) -> absl::StatusOr<int> {
           Count(stats_->other);
           return conn_->Run(
               absl::StrCat("fsync ", path_), opener_,
               [&](struct nfs_context* nfs, Callback cb, void* p) {
                 return nfs_fsync_async(nfs, fh, cb, p);
               },
               [](struct nfs_context*, int, void*) {});
         })
      .status();
}

absl::Status NfsFile::Allocate(int, uint64_t, uint64_t) {
  return ErrnoToStatus(
      EOPNOTSUPP, absl::StrCat("fallocate ", path_, ": not in NFSv3 or NFSv4.0"));
}

absl::StatusOr<size_t> NfsFile::CopyTo(uint64_t, OriginFile&, uint64_t,
                                       size_t, unsigned) {
  // The kernel copies through reads and writes instead.
  return ErrnoToStatus(EXDEV, absl::StrCat("copy_file_range from ", path_,
                                           ": not in NFSv3 or NFSv4.0"));
}

NfsDir::NfsDir(std::vector<Entry> listed) {
  bool dots = false;
  for (const Entry& e : listed) dots = dots || e.name == ".";
  if (!dots) {
    for (const char* name : {".", ".."}) {
      // No fileid comes with them; any but 0, which some programs take for
      // a deleted entry.
      entries_.push_back(Entry{name, 1, DT_DIR, 0});
    }
  }
  for (Entry& e : listed) entries_.push_back(std::move(e));
  for (size_t i = 0; i < entries_.size(); ++i) entries_[i].next_offset = i + 1;
}

absl::Status NfsDir::Seek(uint64_t offset) {
  next_ = std::min<uint64_t>(offset, entries_.size());
  return absl::OkStatus();
}

absl::StatusOr<std::optional<OriginDir::Entry>> NfsDir::Next() {
  if (next_ >= entries_.size()) return std::optional<Entry>();
  return std::optional<Entry>(entries_[next_++]);
}

}  // namespace cachefs
