#include "cachefs/kernel_readahead.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {

std::string ReadAheadFile(dev_t dev) {
  return absl::StrCat("/sys/class/bdi/", major(dev), ":", minor(dev),
                      "/read_ahead_kb");
}

absl::Status SetKernelReadAhead(const std::string& mountpoint,
                                uint64_t bytes) {
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, "stat " + mountpoint);
  }
  // Only a FUSE mount's own device (major 0): after an early unmount the
  // path is a plain directory, whose disk must be left alone.
  struct statfs fs;
  if (statfs(mountpoint.c_str(), &fs) != 0 || fs.f_type != FUSE_SUPER_MAGIC ||
      major(st.st_dev) != 0) {
    return absl::FailedPreconditionError(mountpoint + " is not mounted");
  }
  const std::string file = ReadAheadFile(st.st_dev);
  std::ofstream out(file);
  out << (bytes >> 10) << "\n";
  out.close();
  if (!out) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot write ", file, " (root may: echo ", bytes >> 10, " > ", file,
        ")"));
  }
  return absl::OkStatus();
}

}  // namespace cachefs
