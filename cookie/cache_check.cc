#include "cookie/cache_check.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "contentmap/crc32c.h"
#include "contentmap/granule_checksums.h"
#include "contentmap/object_record.h"
#include "contentmap/record_store.h"

namespace cachefs {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

bool IsHex(const std::string& s, size_t n) {
  return s.size() == n &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Closes what it holds when the check ends, which lets go of the locks.
class Descriptors {
 public:
  explicit Descriptors(Env* env) : env_(env) {}
  ~Descriptors() {
    for (int fd : fds_) env_->Close(fd).IgnoreError();
  }
  int Keep(int fd) {
    fds_.push_back(fd);
    return fd;
  }

 private:
  Env* env_;
  std::vector<int> fds_;
};

class FileCloser {
 public:
  FileCloser(Env* env, int fd) : env_(env), fd_(fd) {}
  ~FileCloser() { env_->Close(fd_).IgnoreError(); }
  FileCloser(const FileCloser&) = delete;
  FileCloser& operator=(const FileCloser&) = delete;

 private:
  Env* env_;
  int fd_;
};

// Reads every granule `record` says is present from `fd` and lists those
// whose bytes do not match their checksum (a granule cut short counts).
absl::Status BadGranules(Env* env, int fd, const ObjectRecord& record,
                         std::vector<uint64_t>* bad) {
  const ContentMap& map = record.map;
  std::string buffer(uint64_t{1} << map.granule_shift(), '\0');
  size_t next_checksum = 0;
  for (uint64_t g = map.NextPresent(0); g < map.num_granules();
       g = map.NextPresent(g + 1)) {
    const uint64_t want = GranuleBytes(map, g);
    absl::StatusOr<size_t> n =
        env->PRead(fd, buffer.data(), want, g << map.granule_shift());
    if (!n.ok()) return n.status();
    const uint32_t expected = record.checksums[next_checksum++];
    if (*n < want ||
        Crc32c(std::string_view(buffer.data(), want)) != expected) {
      bad->push_back(g);
    }
  }
  return absl::OkStatus();
}

// Checks the objects of one fan directory.
void CheckFan(Env* env, int fan_fd, const std::string& where, bool repair,
              bool verify_data, CacheCheckReport* report) {
  absl::StatusOr<std::vector<DirEntry>> names = env->ReadDir(fan_fd, ".");
  if (!names.ok()) {
    report->problems.push_back(
        {where, "unreadable", std::string(names.status().message())});
    return;
  }
  std::set<std::string> objects;
  for (const DirEntry& e : *names) {
    if (IsHex(e.name, 16)) objects.insert(e.name);
  }
  auto remove = [&](const std::string& name, CacheCheckReport::Problem p) {
    if (repair) {
      p.removed = env->UnlinkAt(fan_fd, name, 0).ok();
      if (IsHex(name, 16)) RemoveSidecar(env, fan_fd, name).IgnoreError();
    }
    report->problems.push_back(std::move(p));
  };
  for (const DirEntry& e : *names) {
    const std::string path = where + "/" + e.name;
    const std::string sidecar_of =
        e.name.size() > 4 ? e.name.substr(0, e.name.size() - 4) : "";
    if (e.name.size() == 20 && e.name.ends_with(kSidecarSuffix) &&
        IsHex(sidecar_of, 16)) {
      if (!objects.contains(sidecar_of)) {
        remove(e.name, {path, "orphaned sidecar", "its object is gone"});
      }
      continue;
    }
    if (!IsHex(e.name, 16)) continue;  // a temporary being written
    absl::StatusOr<int> fd =
        env->OpenAt(fan_fd, e.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (!fd.ok()) {
      report->problems.push_back(
          {path, "unreadable", std::string(fd.status().message())});
      continue;
    }
    absl::StatusOr<struct stat> st = env->FStat(*fd);
    absl::StatusOr<ObjectRecord> record = LoadRecord(env, fan_fd, e.name, *fd);
    FileCloser closer(env, *fd);
    ++report->objects;
    if (st.ok()) report->bytes += static_cast<uint64_t>(st->st_blocks) * 512;
    if (!record.ok()) {
      const absl::StatusCode code = record.status().code();
      // Only a record that is there and wrong, or missing: an I/O error or
      // a lack of descriptors says nothing about the object.
      const bool untrustworthy = code == absl::StatusCode::kDataLoss ||
                                 code == absl::StatusCode::kNotFound ||
                                 code == absl::StatusCode::kInvalidArgument ||
                                 code == absl::StatusCode::kFailedPrecondition;
      CacheCheckReport::Problem p{
          path, untrustworthy ? "corrupt" : "unreadable",
          absl::StrCat("its record: ", std::string(record.status().message()))};
      if (untrustworthy) {
        remove(e.name, std::move(p));
      } else {
        report->problems.push_back(std::move(p));
      }
      continue;
    }
    if (record->state != ContentState::kClean) {
      remove(e.name, {path, "dirty",
                      absl::StrCat("not closed cleanly (", record->file_key,
                                   "): its map cannot be trusted")});
      continue;
    }
    const uint64_t granule = uint64_t{1} << record->map.granule_shift();
    const uint64_t most =
        (record->map.object_size() + granule - 1) / granule * granule;
    if (st.ok() && static_cast<uint64_t>(st->st_size) > most) {
      remove(e.name,
             {path, "oversized",
              absl::StrCat("the backing file holds ", st->st_size,
                           " bytes, its record at most ", most, " (",
                           record->file_key, ")")});
      continue;
    }
    if (record->checksums.size() != record->map.granules_present()) {
      // A daemon would not use the map either (cookie/volume.cc).
      remove(e.name, {path, "checksum",
                      absl::StrCat("no checksums for its ",
                                   record->map.granules_present(),
                                   " cached granules (", record->file_key,
                                   ")")});
      continue;
    }
    if (verify_data) {
      std::vector<uint64_t> bad;
      absl::Status read = BadGranules(env, *fd, *record, &bad);
      if (!read.ok()) {
        report->problems.push_back(
            {path, "unreadable", std::string(read.message())});
        continue;
      }
      if (!bad.empty()) {
        remove(e.name,
               {path, "checksum",
                absl::StrCat(bad.size(), " of ", record->checksums.size(),
                             " cached granules do not match their checksums"
                             " (the first is granule ",
                             bad.front(), ", at byte ",
                             bad.front() << record->map.granule_shift(),
                             " of ", record->file_key, ")")});
        continue;
      }
    }
    ++report->clean_objects;
  }
}

}  // namespace

absl::StatusOr<CacheCheckReport> CheckCacheDirectory(Env* env,
                                                     const std::string& dir,
                                                     bool repair,
                                                     bool verify_data) {
  Descriptors held(env);
  absl::StatusOr<int> root = env->OpenAt(AT_FDCWD, dir, kDirFlags, 0);
  if (!root.ok()) return root.status();
  held.Keep(*root);
  absl::StatusOr<int> volumes = env->OpenAt(*root, "volumes", kDirFlags, 0);
  if (!volumes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, " is not a cachefs cache directory (no volumes/: ",
                     std::string(volumes.status().message()), ")"));
  }
  held.Keep(*volumes);
  absl::StatusOr<std::vector<DirEntry>> vols = env->ReadDir(*volumes, ".");
  if (!vols.ok()) return vols.status();
  // Every volume locked first: a daemon serving any of them could change
  // what is judged here.
  std::map<std::string, int> volume_fds;
  for (const DirEntry& v : *vols) {
    if (v.name == "." || v.name == "..") continue;
    absl::StatusOr<int> fd = env->OpenAt(*volumes, v.name, kDirFlags, 0);
    if (!fd.ok()) continue;
    held.Keep(*fd);
    absl::Status locked = env->LockExclusive(*fd);
    if (!locked.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a cachefs daemon is using ", dir, " (volume ", v.name,
          "): unmount it first; check runs on a cache no daemon uses"));
    }
    volume_fds[v.name] = *fd;
  }
  CacheCheckReport report;
  for (const auto& [name, vol_fd] : volume_fds) {
    ++report.volumes;
    const size_t removed_before = report.problems.size();
    absl::StatusOr<std::vector<DirEntry>> fans = env->ReadDir(vol_fd, ".");
    if (!fans.ok()) continue;
    for (const DirEntry& fan : *fans) {
      if (!IsHex(fan.name, 2)) continue;
      const std::string where = absl::StrCat("volumes/", name, "/", fan.name);
      absl::StatusOr<int> fan_fd = env->OpenAt(vol_fd, fan.name, kDirFlags, 0);
      if (!fan_fd.ok()) {
        report.problems.push_back(
            {where, "unreadable", std::string(fan_fd.status().message())});
        continue;
      }
      CheckFan(env, *fan_fd, where, repair, verify_data, &report);
      env->Close(*fan_fd).IgnoreError();
    }
    // The culler's index snapshot (cull/culler.cc) lists objects by name:
    // after removals the next daemon must scan instead.
    if (repair && report.problems.size() > removed_before) {
      env->UnlinkAt(vol_fd, "cull.index", 0).IgnoreError();
    }
  }
  return report;
}

}  // namespace cachefs
