// The ORIGIN argument of an NFS origin:
//
//   nfs://HOST[:PORT]/EXPORT[/SUBDIR][?version=3|4][&mountport=PORT]
//
// HOST is a name, an IPv4 address or a bracketed IPv6 address. PORT is the
// NFS server's port: with it, NFSv4 needs no portmapper at all, and NFSv3
// needs one only for the MOUNT protocol unless `mountport` is given too.
// The version is 4 unless asked otherwise, as with the kernel's client.

#ifndef CACHEFS_NETFS_NFS_URL_H_
#define CACHEFS_NETFS_NFS_URL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cachefs {

struct NfsUrl {
  std::string host;
  int port = 0;        // 0: the portmapper's, or 2049 for NFSv4
  int mount_port = 0;  // NFSv3's MOUNT protocol; 0: the portmapper's
  std::string path;    // "/export/subdir", never ending in '/'
  int version = 4;

  // The URL as libnfs parses it (ports as query arguments).
  std::string ForLibnfs() const;
  // The URL as the user would write it, for messages and `status`.
  std::string ToString() const;
  // Names the data, not the way to it: the same export reached over
  // another port or protocol version shares its cache volume.
  std::string VolumeKey() const;
};

// Whether `arg` is meant as an NFS URL (starts with "nfs://").
bool LooksLikeNfsUrl(const std::string& arg);

// Parses and checks an NFS URL; errors say what is wrong with it.
absl::StatusOr<NfsUrl> ParseNfsUrl(const std::string& arg);

}  // namespace cachefs

#endif  // CACHEFS_NETFS_NFS_URL_H_
