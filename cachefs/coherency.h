// What cachefs stores beside cached data to tell whether the origin file
// still holds that data (the cookie's aux data), and the key that names a
// file across remounts.
//
// Aux data: size, mtime and ctime in nanoseconds, and the origin's file
// identity when the origin's inode numbers are stable (not on SSHFS, which
// makes them up per mount). Any difference at open means the origin changed
// behind cachefs's back, and the cached data is dropped.
//
// File key: the path below the origin root. It survives remounting an
// SSHFS origin; a file renamed on the origin (not through cachefs) is a new
// key, so it is fetched again and the old object is left for the culler.

#ifndef CACHEFS_CACHEFS_COHERENCY_H_
#define CACHEFS_CACHEFS_COHERENCY_H_

#include <sys/stat.h>

#include <string>

namespace cachefs {

enum class IdentityMode {
  kAuto,   // the inode number when the origin's are stable
  kInode,  // always the inode number
  kNone,   // never (size and times only)
};

// The aux data for a file with attributes `st`.
std::string MakeAuxData(const struct stat& st, bool use_inode);

// The key of `name` inside the directory whose key is `parent_key` ("" for
// the origin root).
std::string ChildKey(const std::string& parent_key, const std::string& name);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_COHERENCY_H_
