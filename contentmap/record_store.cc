// StoreRecord / LoadRecord: ObjectRecords in xattrs, with a sidecar file
// for maps too large for one xattr value. Every syscall goes through the
// Env so tests can inject faults.
//
// The sidecar is written as "<name>.map.tmp", made durable, then renamed to
// "<name>.map"; only then is the xattr pointing at it set. The reference in
// the xattr carries the sidecar's length and CRC, so any mismatch between
// the two (a crash between the rename and the xattr, a sidecar lost or
// damaged later) makes the record unreadable rather than wrong.

#include "contentmap/record_store.h"

#include <fcntl.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

constexpr char kTempSuffix[] = ".tmp";

// The largest sidecar a valid record can refer to: its encoding byte and a
// bitmap of kMaxGranules granules. Anything larger is not read into memory.
constexpr uint64_t kMaxSidecarSize = 1 + kMaxGranules / 8;

std::string SidecarName(const std::string& name) {
  return name + kSidecarSuffix;
}

absl::Status WriteAll(Env* env, int fd, std::string_view bytes) {
  uint64_t offset = 0;
  while (offset < bytes.size()) {
    absl::StatusOr<size_t> n =
        env->PWrite(fd, bytes.data() + offset, bytes.size() - offset, offset);
    if (!n.ok()) return n.status();
    if (*n == 0) return absl::DataLossError("write made no progress");
    offset += *n;
  }
  return absl::OkStatus();
}

absl::Status WriteSidecar(Env* env, int dirfd, const std::string& name,
                          std::string_view bytes) {
  const std::string final_name = SidecarName(name);
  const std::string temp_name = final_name + kTempSuffix;
  absl::StatusOr<int> fd = env->OpenAt(
      dirfd, temp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (!fd.ok()) return Annotate(fd.status(), "creating " + temp_name);
  absl::Status s = WriteAll(env, *fd, bytes);
  if (s.ok()) s = env->FDataSync(*fd);
  absl::Status closed = env->Close(*fd);
  if (s.ok()) s = closed;
  if (s.ok()) s = env->RenameAt(dirfd, temp_name, dirfd, final_name, 0);
  if (!s.ok()) {
    env->UnlinkAt(dirfd, temp_name, 0).IgnoreError();
    return Annotate(s, "writing map sidecar " + temp_name);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAll(Env* env, int fd, const std::string& what) {
  absl::StatusOr<struct stat> st = env->FStat(fd);
  if (!st.ok()) return st.status();
  const auto size = static_cast<uint64_t>(st->st_size);
  if (size > kMaxSidecarSize) {
    return absl::DataLossError(
        absl::StrCat(what, " has ", size, " bytes, more than any map needs"));
  }
  std::string bytes(size, '\0');
  uint64_t offset = 0;
  while (offset < size) {
    absl::StatusOr<size_t> n =
        env->PRead(fd, bytes.data() + offset, size - offset, offset);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return absl::DataLossError(
          absl::StrCat(what, " ended at ", offset, " of ", size, " bytes"));
    }
    offset += *n;
  }
  return bytes;
}

absl::StatusOr<std::string> ReadSidecar(Env* env, int dirfd,
                                        const std::string& name) {
  const std::string sidecar = SidecarName(name);
  absl::StatusOr<int> fd = env->OpenAt(dirfd, sidecar, O_RDONLY | O_CLOEXEC, 0);
  if (!fd.ok()) {
    // kNotFound is kept for "no record at all": a record whose sidecar is
    // gone is a damaged record.
    if (absl::IsNotFound(fd.status())) {
      return absl::DataLossError(
          absl::StrCat("map sidecar ", sidecar, " is missing"));
    }
    return Annotate(fd.status(), "opening map sidecar " + sidecar);
  }
  absl::StatusOr<std::string> bytes =
      ReadAll(env, *fd, "map sidecar " + sidecar);
  absl::Status closed = env->Close(*fd);
  if (!bytes.ok()) return Annotate(bytes.status(), "reading " + sidecar);
  if (!closed.ok()) return Annotate(closed, "closing " + sidecar);
  return bytes;
}

}  // namespace

absl::Status StoreRecord(Env* env, int dirfd, const std::string& name, int fd,
                         const ObjectRecord& record) {
  const std::string what = "storing the cachefs record of " + name;
  if (absl::Status s = ValidateRecord(record); !s.ok()) {
    return Annotate(s, what);
  }
  std::string bytes = EncodeRecord(record);
  const bool fits = bytes.size() <= kMaxInlineRecord;
  if (!fits) {
    std::string sidecar;
    bytes = EncodeRecordWithExternalMap(record, &sidecar);
    if (absl::Status s = WriteSidecar(env, dirfd, name, sidecar); !s.ok()) {
      return Annotate(s, what);
    }
  }
  if (absl::Status s = env->SetXattr(fd, kRecordXattr, bytes); !s.ok()) {
    return Annotate(s, what);
  }
  if (fits) {
    // A sidecar of an earlier, larger map is no longer referred to. Failing
    // to remove it wastes space but cannot make the record wrong.
    env->UnlinkAt(dirfd, SidecarName(name), 0).IgnoreError();
  }
  return absl::OkStatus();
}

absl::StatusOr<ObjectRecord> LoadRecord(Env* env, int dirfd,
                                        const std::string& name, int fd) {
  const std::string what = "cachefs record of " + name;
  absl::StatusOr<std::string> bytes = env->GetXattr(fd, kRecordXattr);
  if (!bytes.ok()) {
    if (absl::IsNotFound(bytes.status())) {
      return absl::NotFoundError(absl::StrCat(name, " has no cachefs record"));
    }
    return Annotate(bytes.status(), "reading the " + what);
  }
  absl::StatusOr<bool> external = RecordHasExternalMap(*bytes);
  if (!external.ok()) return Annotate(external.status(), what);
  absl::StatusOr<ObjectRecord> record;
  if (*external) {
    absl::StatusOr<std::string> sidecar = ReadSidecar(env, dirfd, name);
    if (!sidecar.ok()) return Annotate(sidecar.status(), what);
    record = DecodeRecord(*bytes, &*sidecar);
  } else {
    record = DecodeRecord(*bytes);
  }
  if (!record.ok()) return Annotate(record.status(), what);
  return record;
}

absl::Status RemoveSidecar(Env* env, int dirfd, const std::string& name) {
  const std::string sidecar = SidecarName(name);
  for (const std::string& path : {sidecar + kTempSuffix, sidecar}) {
    absl::Status s = env->UnlinkAt(dirfd, path, 0);
    if (!s.ok() && !absl::IsNotFound(s)) {
      return Annotate(s, "removing " + path);
    }
  }
  return absl::OkStatus();
}

}  // namespace cachefs
