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
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cookie/cache.h"
#include "cookie/cache_observer.h"
#include "cookie/stats.h"
#include "cookie/volume.h"

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

// Pins: files kept whole in the cache. A pin rule is a path or a glob
// (fnmatch(3), one component at a time: "lib/*.so", "data/2024-*") relative
// to the mount root; a rule that names a directory pins every file below
// it. Rules come from a pin file (-o pin=FILE: one rule a line, "#"
// starts a comment line; reread by Reload) and from `cachefs-ctl pin`,
// which are kept in the volume's directory across restarts.
//
// A pinned file is fetched whole, in the background, and never culled:
// the set answers the culler's veto for the objects of pinned files. When
// a pinned file's object is replaced (the file changed on the origin and
// an open found it) or dropped, it is fetched whole again; every
// `recheck` all pinned files are checked against the origin, which
// fetches what changed.
//
// Thread safety: all methods may be called concurrently. MayCull and the
// CacheObserver calls answer from memory under a lock that is never held
// while the set calls out.
class PinSet : public CullVeto, public CacheObserver {
 public:
  struct Options {
    std::string pin_file;  // empty: none
    absl::Duration recheck = absl::Seconds(30);
  };
  // A rule and where it came from ("FILE:LINE", or "cachefs-ctl pin").
  struct Rule {
    std::string pattern;
    std::string source;
  };
  // The rules of a pin file; a bad line is an error naming the file and
  // the line.
  static absl::StatusOr<std::vector<Rule>> ReadPinFile(
      const std::string& path);

  // Reads the pin file and the pins kept in `volume`, registers with
  // `cache` and starts fetching. Borrows everything.
  static absl::StatusOr<std::unique_ptr<PinSet>> Start(Options options,
                                                       PrefetchTarget* target,
                                                       Cache* cache,
                                                       Volume* volume);
  ~PinSet() override;

  // Rereads the pin file; on an error the rules in force stay.
  absl::Status Reload();
  // Adds rules for `paths` (relative to the mount root; a path that does
  // not exist is refused, and so is a directory without `recursive`; a
  // glob that matches nothing is not); kept in the volume. Returns how
  // many were new.
  absl::StatusOr<size_t> Pin(const std::vector<std::string>& paths,
                             bool recursive);
  // Removes the `cachefs-ctl pin` rules for `paths` (with `below`, also
  // those under them); returns how many went.
  size_t Unpin(const std::vector<std::string>& paths, bool below);

  struct PinnedFile {
    enum class State { kFetching, kOnDisk, kFailed };
    std::string path;
    State state = State::kFetching;
    uint64_t size = 0;      // at the last fetch
    std::string rule;       // the first rule that pins it
    std::string error;      // why the last fetch failed
  };
  std::vector<Rule> Rules() const;
  std::vector<PinnedFile> Files() const;
  // Rules whose last resolution matched no file (a warning each).
  std::vector<Rule> Unmatched() const;
  // Returns once every pinned file is on disk or failed, the rules
  // resolved, or `timeout` passed; false then.
  bool WaitSettled(absl::Duration timeout);

  // CullVeto.
  bool MayCull(const std::string& volume_key, uint64_t hash) override;
  // CacheObserver: only removals matter (a pinned object replaced).
  bool AdmitWrite(uint64_t) override { return true; }
  void Charge(const std::string&, uint64_t, int64_t) override {}
  void Used(const std::string&, uint64_t) override {}
  void Removed(const std::string& volume_key, uint64_t hash) override;

 private:
  struct File {
    PinnedFile shown;
    uint64_t hash = 0;
    bool due = true;  // to be fetched (again)
  };
  PinSet(Options options, PrefetchTarget* target, Cache* cache,
         Volume* volume);
  void Loop();
  // The files the rules name now, each with the first rule naming it.
  std::vector<std::pair<std::string, std::string>> Resolve(
      const std::vector<Rule>& rules, std::vector<Rule>* unmatched);
  void ResolveRule(const Rule& rule, const std::string& dir, size_t part,
                   const std::vector<std::string>& parts,
                   std::vector<std::pair<std::string, std::string>>* out);
  void AddTree(const std::string& dir, const std::string& rule,
               std::vector<std::pair<std::string, std::string>>* out);
  absl::Status SaveRules() ABSL_LOCKS_EXCLUDED(mu_);
  void UpdateStats() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  PrefetchTarget* const target_;
  Cache* const cache_;
  Volume* const volume_;

  mutable absl::Mutex mu_;
  std::vector<Rule> file_rules_ ABSL_GUARDED_BY(mu_);
  std::vector<Rule> ctl_rules_ ABSL_GUARDED_BY(mu_);
  std::vector<Rule> unmatched_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, File> files_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> hashes_ ABSL_GUARDED_BY(mu_);
  bool resolve_ ABSL_GUARDED_BY(mu_) = true;
  bool busy_ ABSL_GUARDED_BY(mu_) = true;  // the loop has work in hand
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cachefs

#endif  // CACHEFS_PREFETCH_PREFETCH_H_
