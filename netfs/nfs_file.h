// The open files and directory listings of NfsOrigin. Internal to netfs/.

#ifndef CACHEFS_NETFS_NFS_FILE_H_
#define CACHEFS_NETFS_NFS_FILE_H_

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "netfs/nfs_connection.h"
#include "netfs/nfs_open_files.h"
#include "netfs/origin.h"

struct nfs_stat_64;
struct nfsfh;

namespace cachefs {

// libnfs's attributes as a struct stat (nanosecond times, the fileid as
// the inode number).
struct stat StatOf(const struct nfs_stat_64& in);

// One user's open file: a share of the connection's open of its path (see
// nfs_open_files.h).
class NfsFile : public OriginFile {
 public:
  // REQUIRES: `files` Acquired `shared` for this file; `keep` holds them.
  // The file reads and writes as `opener`.
  NfsFile(NfsOpenFiles* files, NfsOpenFiles::Ref shared,
          std::shared_ptr<void> keep, NfsConnection::Identity opener,
          OriginStats* stats, std::string path, int flags);
  ~NfsFile() override;

  // A read or write larger than one call carries goes out as pieces, all
  // at once.
  absl::StatusOr<size_t> PRead(void* buf, size_t n, uint64_t offset) override;
  absl::StatusOr<size_t> PWrite(const void* buf, size_t n,
                                uint64_t offset) override;
  absl::StatusOr<struct stat> Stat() override;
  absl::Status Truncate(uint64_t size) override;
  absl::Status Sync(bool datasync) override;
  // Every write reached the server before its call returned (as UNSTABLE
  // data the server may still hold in memory, which other clients see):
  // what close-to-open asks for. Durability is fsync's COMMIT.
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Allocate(int mode, uint64_t offset, uint64_t len) override;
  absl::StatusOr<size_t> CopyTo(uint64_t offset, OriginFile& out,
                                uint64_t out_offset, size_t len,
                                unsigned flags) override;

  // The handle valid now, for SetAttr through an open file.
  absl::StatusOr<struct nfsfh*> Handle() {
    return files_->Handle(shared_, flags_);
  }
  NfsConnection* connection() const { return conn_; }

 private:
  absl::StatusOr<size_t> ReadWith(struct nfsfh* fh, void* buf, size_t n,
                                  uint64_t offset);
  absl::StatusOr<size_t> WriteWith(struct nfsfh* fh, const void* buf,
                                   size_t n, uint64_t offset);
  // Runs `op` with the file's handle. Over NFSv4 a stateid can go stale
  // under a call (another name of the file was opened, which superseded
  // it; see nfs_open_files.h): libnfs reports that as ERANGE, and the call
  // is made once more with the handle the file has now.
  template <typename T>
  absl::StatusOr<T> WithHandle(
      absl::FunctionRef<absl::StatusOr<T>(struct nfsfh*)> op);

  // Declared first, gone last: the connection the files live on.
  const std::shared_ptr<void> keep_;
  NfsOpenFiles* const files_;
  const NfsOpenFiles::Ref shared_;
  NfsConnection* const conn_;
  OriginStats* const stats_;
  const std::string path_;
  const int flags_;
  // Who opened the file: its reads and writes are made as that user, as
  // a kernel client makes them with the open's credentials, whichever
  // thread of the daemon makes them.
  const NfsConnection::Identity opener_;
};

// A listing read whole when opened: libnfs reads a directory in one go
// (READDIRPLUS), so offsets are positions in it.
class NfsDir : public OriginDir {
 public:
  // NFSv4 lists no "." and "..", which readdir(3) users expect first:
  // they are added when missing.
  explicit NfsDir(std::vector<Entry> listed);
  absl::Status Seek(uint64_t offset) override;
  absl::StatusOr<std::optional<Entry>> Next() override;

 private:
  std::vector<Entry> entries_;
  size_t next_ = 0;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_FILE_H_
