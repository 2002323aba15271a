// Writes a metadata store of N entries into a volume directory, as a clean
// unmount would leave it: the attributes of N files in directories of
// 1,000 (and of the directories and the root), the listings of those
// directories, and the clean marker. For bench/metadata_store.sh, which
// times a mount over it; made directly, since a million lookups through a
// mount take a quarter of an hour.
//
//   metadata_fill VOLUME_DIR N

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_format.h"
#include "cachefs/attr_cache.h"
#include "cachefs/attr_snapshot.h"
#include "cachefs/listings.h"

namespace {

int64_t ClockNanos(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

bool Write(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  return out.good();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: metadata_fill VOLUME_DIR N\n");
    return 2;
  }
  const std::string dir = argv[1];
  const size_t n = std::strtoull(argv[2], nullptr, 10);
  constexpr size_t kPerDir = 1000;
  const cachefs::SnapshotClock now{ClockNanos(CLOCK_MONOTONIC),
                                   ClockNanos(CLOCK_REALTIME)};
  cachefs::AttrCache attrs(n + n / kPerDir + 2);
  cachefs::Listings listings(n + 1);
  struct stat st = {};
  st.st_dev = 42;
  st.st_nlink = 1;
  st.st_uid = getuid();
  st.st_gid = getgid();
  st.st_blksize = 4096;
  st.st_mtim.tv_sec = now.realtime_ns / 1000000000;
  st.st_ctim = st.st_atim = st.st_mtim;
  struct stat dir_st = st;
  dir_st.st_mode = S_IFDIR | 0755;
  dir_st.st_ino = 1;
  attrs.Put("", dir_st, now.monotonic_ns);
  cachefs::Listings::Listing root;
  uint64_t ino = 2;
  for (size_t d = 0; d * kPerDir < n; ++d) {
    const std::string dir_key = absl::StrFormat("d%05d", d);
    dir_st.st_ino = ino++;
    attrs.Put(dir_key, dir_st, now.monotonic_ns);
    root.push_back(
        {dir_key, static_cast<ino_t>(dir_st.st_ino), DT_DIR, root.size() + 1});
    cachefs::Listings::Listing listing;
    for (size_t f = d * kPerDir; f < n && f < (d + 1) * kPerDir; ++f) {
      const std::string name = absl::StrFormat("file-%07d", f);
      st.st_mode = S_IFREG | 0644;
      st.st_ino = ino++;
      st.st_size = 1000 + f % 5000;
      st.st_blocks = (st.st_size + 511) / 512;
      attrs.Put(dir_key + "/" + name, st, now.monotonic_ns);
      listing.push_back(
          {name, static_cast<ino_t>(st.st_ino), DT_REG, listing.size() + 1});
    }
    listings.Put(dir_key, std::move(listing));
  }
  listings.Put("", std::move(root));
  const int64_t max_age = int64_t{3600} * 1000000000;
  if (!Write(dir + "/attrs",
             cachefs::EncodeAttrSnapshot(attrs, now, max_age)) ||
      !Write(dir + "/listings", listings.Encode()) ||
      !Write(dir + "/attrs.clean", "clean\n")) {
    std::fprintf(stderr, "metadata_fill: cannot write into %s\n", dir.c_str());
    return 1;
  }
  std::printf("%zu entries\n", attrs.size());
  return 0;
}
