// SiblingReadAhead: reading ahead across the files of a directory.
//
// A reader that opens the files of a directory one after another (`cat *`,
// `grep -r`, `tar c`, a build reading its sources) pays, per cold file, the
// two dependent round trips of an origin open and an origin read, however
// small the file. Once two opens in a row follow the order of the
// directory's last listing (as listed, or by name), the next small files in
// that order are fetched whole from the origin in the background, several
// at once, before anyone opens them.
//
// What is fetched is not trusted by itself: it is held in memory with the
// attributes the name had before the fetch started, and an open takes it
// only if its own check (close-to-open, or recent attributes under nocto)
// shows those attributes still. The open then stores it in the file's
// cache object as if its first read had fetched it. A change made through
// cachefs forgets what was fetched for the file.
//
// Bounded everywhere: the listings of a few directories, a few threads,
// files of at most one granule with one name, and what is held (oldest
// dropped first, none kept longer than a minute).
//
// Thread safety: all methods may be called concurrently.

#ifndef CACHEFS_CACHEFS_SIBLING_READ_AHEAD_H_
#define CACHEFS_CACHEFS_SIBLING_READ_AHEAD_H_

#include <sys/stat.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cookie/dispatcher.h"
#include "cookie/stats.h"
#include "netfs/origin.h"

namespace cachefs {

// File data in memory aligned for direct I/O, zero-padded to a multiple of
// the alignment, so it can be written to the cache as it is.
class AlignedData {
 public:
  explicit AlignedData(size_t capacity);
  ~AlignedData();
  AlignedData(const AlignedData&) = delete;
  AlignedData& operator=(const AlignedData&) = delete;

  char* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  size_t length = 0;  // bytes of file data

 private:
  char* data_;
  size_t capacity_;
};

class SiblingReadAhead {
 public:
  struct Options {
    // Files fetched ahead of the reader (0 turns read-ahead across files
    // off).
    int files_ahead = 16;
    // Origin fetches in flight at once.
    int threads = 4;
    // Only files of at most this size are fetched.
    uint64_t max_file_size = 256 * 1024;
    // Fetched files held, waiting for their open.
    size_t max_held = 64;
    absl::Duration hold = absl::Minutes(1);
  };
  // Attributes of a key known now (fetched from the origin at some time in
  // the past), or nullopt.
  using KnownAttr =
      std::function<std::optional<struct stat>(const std::string&)>;
  // Whether the cache has an object for the key already.
  using Cached = std::function<bool(const std::string&)>;

  // Borrows `origin` and `stats`.
  SiblingReadAhead(Options options, Origin* origin, CacheStats* stats,
                   KnownAttr known_attr, Cached cached);
  ~SiblingReadAhead();
  // Stops: fetches not started are dropped; returns once those in flight
  // have finished.
  void Stop();

  // One listed entry of a directory.
  struct Listed {
    std::string name;
    bool small_file = false;  // a regular file of at most max_file_size
  };
  // Entries of directory `dir_key`, listed from `offset` on, in order;
  // `next_offset` continues after the last. A listing from offset 0 starts
  // the directory's record afresh.
  void NoteListed(const std::string& dir_key, uint64_t offset,
                  const std::vector<Listed>& entries, uint64_t next_offset);
  // A read-only open of `name` in `dir_key` (files already cached are
  // part of the order too; they are not fetched).
  void NoteOpen(const std::string& dir_key, const std::string& name);

  struct Fetched {
    struct stat attr;  // what the name showed before the fetch
    std::shared_ptr<AlignedData> data;
  };
  // Whether `key` was fetched ahead or its fetch is under way. A fetch
  // still queued is dropped (false): the open is quicker on its own.
  bool Has(const std::string& key);
  // Waits (up to a bound) for a fetch of `key` under way to finish.
  void Wait(const std::string& key);
  // Takes what was fetched ahead for `key`, if its fetch finished.
  std::optional<Fetched> Take(const std::string& key);
  // `key` changed through cachefs: what was fetched for it is not its data.
  void Forget(const std::string& key);
  // The same for `key` and every key below it ("" is everything).
  void ForgetPrefix(const std::string& key);
  // Forget, then waits for a fetch of `key` under way to close its origin
  // file: before the name goes at the origin (SSHFS hides a file removed
  // while open, see NetfsFile::ReadyForRemoval).
  void ForgetAndWait(const std::string& key);

 private:
  struct Listing {
    std::deque<Listed> entries;  // in listed order; never moved
    // Name -> position; the names are the entries'.
    absl::flat_hash_map<absl::string_view, uint32_t> index;
    // Positions in name order and each position's place in it, made once
    // the listing is complete.
    std::vector<uint32_t> by_name;
    std::vector<uint32_t> rank;
    bool complete = false;
    uint64_t next_offset = 0;
    // For each order (listed, by name): where the last open was, how
    // many in a row followed the order, and how far fetches were started.
    struct Track {
      int64_t last = -2;
      int run = 0;
      int64_t ahead_to = 0;
    } track[2];
    uint64_t used = 0;  // for dropping the least recently used listing
  };
  struct Held {
    uint64_t id = 0;  // the fetch that made it
    bool started = false;
    bool done = false;
    std::optional<Fetched> fetched;
    absl::Time at;
  };

  void Start(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Fetch(std::string key, uint64_t id);
  void DropOldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  static constexpr size_t kListings = 8;
  // Names kept over all listings, and the most a listing is sorted by name
  // for (beyond it, only the listed order is followed).
  static constexpr size_t kMaxListed = 400000;
  static constexpr size_t kMaxSorted = 50000;

  const Options options_;
  Origin* const origin_;
  CacheStats* const stats_;
  const KnownAttr known_attr_;
  const Cached cached_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Listing>> listings_
      ABSL_GUARDED_BY(mu_);
  uint64_t clock_ ABSL_GUARDED_BY(mu_) = 0;
  // Fetches in flight and fetched files, by key; `order_` is their keys in
  // the order they were started.
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::string, uint64_t>> order_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  size_t listed_ ABSL_GUARDED_BY(mu_) = 0;  // names over all listings
  // Fetches running now, by key (a forgotten one runs on until it ends).
  absl::flat_hash_map<std::string, int> running_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  Dispatcher pool_;  // last: joined before the rest goes
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_SIBLING_READ_AHEAD_H_
