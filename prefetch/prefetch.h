// The prefetch layer: fills the disk cache ahead of use, whole files or
// whole trees, as `cachefs-ctl prefetch` asks (vmtouch -t or cvmfs_preload
// for a cachefs mount).
//
// A job first walks what it was given (precached's statx walk: every
// directory is listed with its entries' attributes, which the filesystem
// keeps, so the lookups that follow cost no round trip), then fetches the
// files it found, several at once. The filesystem fetches only what its
// cache lacks, under its own coherency rules, so a second job over the
// same tree fetches only what is missing or changed. A file that fails
// (gone since the walk, EACCES) is counted and named in the job's errors;
// the job goes on. A cancelled job stops between pieces of a file: what it
// stored is stored whole.
//
// The layer knows nothing of FUSE: it reaches the files through
// PrefetchTarget, which the filesystem (cachefs/CacheFs) implements.
//
// Thread safety: Prefetcher's methods may be called concurrently.

#ifndef CACHEFS_PREFETCH_PREFETCH_H_
#define CACHEFS_PREFETCH_PREFETCH_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cookie/stats.h"

namespace cachefs {

// What the prefetch layer needs of the filesystem it fills. Paths are
// relative to the mount root ("" is the root). Called from the layer's
// own threads, several at once.
class PrefetchTarget {
 public:
  struct Node {
    std::string path;
    bool directory = false;
    bool regular = false;  // a regular file (only those are fetched)
    uint64_t size = 0;
  };
  // How much of a file a fetch went over, and how much of that it had to
  // read from the origin (the rest was cached already).
  struct Fetched {
    uint64_t bytes = 0;
    uint64_t bytes_fetched = 0;
  };
  // Told the bytes done and fetched so far; returns false to stop.
  using Progress = std::function<bool(uint64_t done, uint64_t fetched)>;

  virtual ~PrefetchTarget() = default;
  // The node at `path`, checked under the coherency rules in force.
  virtual absl::StatusOr<Node> Stat(const std::string& path) = 0;
  // The entries of the directory `path` (not "." and ".."), with their
  // attributes, which the target keeps for the lookups that follow.
  virtual absl::StatusOr<std::vector<Node>> List(const std::string& path) = 0;
  // Brings the file `path` whole into the cache. A stop asked through
  // `progress` ends it with kCancelled.
  virtual absl::StatusOr<Fetched> Fetch(const std::string& path,
                                        const Progress& progress) = 0;
};

struct PrefetchRequest {
  std::vector<std::string> paths;
  bool recursive = false;  // directories' trees; without it, an error
  bool meta_only = false;  // the walk alone, no data
};

// A job as its owner sees it.
struct PrefetchJob {
  enum class State { kWalking, kFetching, kDone, kCancelled };
  uint64_t id = 0;
  PrefetchRequest request;
  State state = State::kWalking;
  uint64_t dirs_listed = 0;
  uint64_t files_total = 0;  // regular files found by the walk
  uint64_t files_done = 0;   // fetched, or failed
  uint64_t files_failed = 0;
  uint64_t bytes_total = 0;  // their sizes at the walk
  uint64_t bytes_done = 0;
  uint64_t bytes_fetched = 0;  // read from the origin for it
  double seconds = 0;          // since the start, to the end once ended
  // The first failures, path and what went wrong (at most kMaxErrors;
  // files_failed counts them all).
  std::vector<std::pair<std::string, std::string>> errors;
  static constexpr size_t kMaxErrors = 100;

  bool ended() const {
    return state == State::kDone || state == State::kCancelled;
  }
};

const char* PrefetchStateName(PrefetchJob::State state);

class Prefetcher {
 public:
  struct Options {
    // Directories listed and files fetched at once, per job.
    int jobs = 4;
    // Ended jobs kept for `jobs` and for their owner's last look.
    size_t ended_kept = 16;
  };
  // Borrows `target` and `stats` (may be null); both must outlive it.
  Prefetcher(Options options, PrefetchTarget* target, CacheStats* stats);
  // Cancels every job and waits for them.
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Starts a job; fails at once, with nothing started, if a path does not
  // exist or is a directory without `recursive`.
  absl::StatusOr<uint64_t> Start(PrefetchRequest request);
  // Running jobs and the last ended ones, oldest first.
  std::vector<PrefetchJob> Jobs() const;
  // The job `id`, or nullopt if it is not known (any more).
  std::optional<PrefetchJob> Job(uint64_t id) const;
  // Asks job `id` to stop; false if it is not running.
  bool Cancel(uint64_t id);
  // Waits up to `timeout` for job `id` to end; returns how it stands.
  std::optional<PrefetchJob> Wait(uint64_t id, absl::Duration timeout);

 private:
  struct Running;
  // Marks the job ended (done, or cancelled).
  void Finish(Running* job);
  void Walk(Running* job, const std::vector<PrefetchTarget::Node>& roots);
  void FetchAll(Running* job, const std::vector<PrefetchTarget::Node>& files);
  void Fail(Running* job, const std::string& path, const absl::Status& why);
  PrefetchJob Snapshot(const Running& job) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ReapEnded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  PrefetchTarget* const target_;
  CacheStats* const stats_;

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Every job not yet reaped, oldest first.
  std::list<std::unique_ptr<Running>> jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachefs

#endif  // CACHEFS_PREFETCH_PREFETCH_H_
