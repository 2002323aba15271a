// Persistence of ObjectRecords on backing files, through the Env.
//
// The record lives in the xattr "user.cachefs.object" of the backing file.
// When it would exceed kMaxInlineRecord (ext4 gives all of a file's xattrs
// about one 4 KiB block), the map payload spills into a sidecar file
// "<name>.map" beside the object, and the xattr keeps a kExternal reference
// with the sidecar's length and CRC. The sidecar is written to a temporary
// name, fdatasync'ed and renamed into place before the xattr that refers to
// it is set, so a crash leaves either the old pair, or a reference whose CRC
// does not match (an unreadable record, hence a stale object), never a
// wrong map.

#ifndef CACHEFS_CONTENTMAP_RECORD_STORE_H_
#define CACHEFS_CONTENTMAP_RECORD_STORE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "contentmap/object_record.h"
#include "io/env.h"

namespace cachefs {

inline constexpr char kRecordXattr[] = "user.cachefs.object";
inline constexpr char kSidecarSuffix[] = ".map";
inline constexpr size_t kMaxInlineRecord = 3072;

// Writes `record` for the backing file `fd`, whose name in directory `dirfd`
// is `name` (used only when the map spills over).
absl::Status StoreRecord(Env* env, int dirfd, const std::string& name, int fd,
                         const ObjectRecord& record);

// Reads the record of backing file `fd`. kNotFound when it has none; other
// errors say what is wrong with it.
absl::StatusOr<ObjectRecord> LoadRecord(Env* env, int dirfd,
                                        const std::string& name, int fd);

// Removes the sidecar of `name`, if any.
absl::Status RemoveSidecar(Env* env, int dirfd, const std::string& name);

}  // namespace cachefs

#endif  // CACHEFS_CONTENTMAP_RECORD_STORE_H_
