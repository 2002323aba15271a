// AttrCache: origin attributes by file key, kept by the daemon beyond the
// kernel's inodes. Within the entry and attribute timeouts it answers
// lookups and getattrs the kernel repeats after dropping its own caches
// (memory pressure, drop_caches) without a round trip to a slow origin,
// and, with -o nocto, the coherency check of an open; past them it answers
// lookups only provisionally (see CacheFs).
//
// Attributes belong to files, not names: the names of a file with several
// hard links (same st_dev and st_ino, st_nlink > 1) are kept as one group,
// so that what is learned or changed through one name reaches the others
// (a write through one name must not leave the old size under another).
//
// Bounded: past `capacity` entries the oldest insertions go first.
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_CACHEFS_ATTR_CACHE_H_
#define CACHEFS_CACHEFS_ATTR_CACHE_H_

#include <sys/stat.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "cachefs/erased_during_load.h"

namespace cachefs {

class AttrCache {
 public:
  explicit AttrCache(size_t capacity) : capacity_(capacity) {}

  // The attributes of `key` if they were fetched at most `max_age_ns` before
  // `now_ns` (CLOCK_MONOTONIC).
  // With `fetched_ns`, also when they were fetched.
  std::optional<struct stat> Get(const std::string& key, int64_t max_age_ns,
                                 int64_t now_ns,
                                 int64_t* fetched_ns = nullptr) const;
  // Also gives `attr` to the other cached names of the same file, keeping
  // their fetch times: the attributes are the file's, the names are only
  // as fresh as when each was last seen.
  void Put(const std::string& key, const struct stat& attr, int64_t now_ns);
  // Put of each, in order, under one lock and with room made at once: for
  // loading a snapshot of many. `behind`: the cache is in use while it
  // loads (BeginLoad), and what it learned or erased since is newer than
  // the snapshot: keys cached or erased since BeginLoad are skipped.
  struct Loaded {
    std::string key;
    struct stat attr;
    int64_t fetched_ns = 0;
  };
  void PutAll(std::vector<Loaded> loaded, bool behind = false);
  // Erasures from BeginLoad to EndLoad are remembered for PutAll.
  void BeginLoad();
  void EndLoad();
  // Records that `key` was answered provisionally. True if it already was
  // and no Put came since: the kernel used the answer without asking
  // anything more (as for a directory on the way to another name), so the
  // answer must not be repeated unchecked. False if `key` is not cached.
  bool MarkProvisional(const std::string& key);
  // The kernel asked about `key` (a getattr, an open) and was answered
  // from the cache: the provisional answer before it was checked.
  void ClearProvisional(const std::string& key);
  // Erases `key` and the other cached names of its file.
  void Erase(const std::string& key);
  // Erases `key` and every key below it ("key/..."), and the other cached
  // names of the files among them.
  void ErasePrefix(const std::string& key);
  // Calls `fn` for every entry, oldest insertion first. `fn` must not call
  // back into the cache.
  void ForEach(const std::function<void(const std::string& key,
                                        const struct stat& attr,
                                        int64_t fetched_ns)>& fn) const;
  void Clear();
  size_t size() const;
  // Counts every change: what is cached changed if this did.
  uint64_t changes() const;

 private:
  struct Entry {
    struct stat attr;
    int64_t fetched_ns = 0;
    uint64_t seq = 0;  // matches the entry's place in order_
    bool provisional = false;  // answered provisionally since the Put
  };
  using FileId = std::pair<uint64_t, uint64_t>;  // st_dev, st_ino
  static bool HasOtherNames(const struct stat& attr) {
    return attr.st_nlink > 1 && !S_ISDIR(attr.st_mode);
  }
  static FileId IdOf(const struct stat& attr) {
    return {static_cast<uint64_t>(attr.st_dev),
            static_cast<uint64_t>(attr.st_ino)};
  }
  void PutLocked(const std::string& key, const struct stat& attr,
                 int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `key` from the group of its file, if it is in one.
  void LeaveGroupLocked(const std::string& key, const Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Erases `key` and, through its group, the other names of its file.
  void EraseWithGroupLocked(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // The cached names of files with several links; few in practice.
  absl::flat_hash_map<FileId, std::vector<std::string>> groups_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<uint64_t, std::string>> order_ ABSL_GUARDED_BY(mu_);
  ErasedDuringLoad erased_ ABSL_GUARDED_BY(mu_);
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_ATTR_CACHE_H_
