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
#include <sys/stat.h>
#include <sys/types.h>

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
    int64_t mtime_ns = 0;
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
  // Brings bytes [off, off + len) of the file `path` into the cache, and
  // into the kernel's page cache for the mount if the kernel knows the
  // file now; returns the bytes pushed there.
  virtual absl::StatusOr<uint64_t> Push(const std::string& path, uint64_t off,
                                        uint64_t len) = 0;
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
  // While paused (memory pressure), jobs start no new file.
  void Pause(bool paused) { paused_.store(paused); }

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
  std::atomic<bool> paused_{false};

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
    // Bytes of pinned files also held in RAM (-o pin_memory): their cache
    // files mapped and locked (mmap + mlock), whole files in rule order
    // while they fit; reads are then served from memory. 0: none.
    uint64_t memory = 0;
    // precached's dynamic whitelist: every `map_sample`, the files below
    // `mount_point` that running processes map (/proc/PID/maps) are
    // counted, and the most mapped (at most `max_mapped`) pinned after
    // the rules, so in RAM with what the budget leaves. Zero: off.
    std::string mount_point;
    absl::Duration map_sample = absl::Seconds(10);
    size_t max_mapped = 64;
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
    // kReleased: on disk, its memory let go under memory pressure.
    enum class State { kFetching, kOnDisk, kInMemory, kReleased, kFailed };
    std::string path;
    State state = State::kFetching;
    uint64_t size = 0;      // at the last fetch
    uint64_t memory = 0;    // bytes locked in RAM for it
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
  void Used(const std::string& volume_key, uint64_t hash) override;
  void Removed(const std::string& volume_key, uint64_t hash) override;
  void MemoryDropped(const std::string& volume_key, uint64_t hash) override;

  // Memory pressure (see prefetch/memory_pressure.h): under it, memory
  // pins go least recently used first until at most `keep` bytes are
  // locked; once it has passed, they are taken again.
  void ReleaseMemory(uint64_t keep);
  void RestoreMemory();
  uint64_t memory_locked() const;

 private:
  struct File {
    PinnedFile shown;
    uint64_t hash = 0;
    size_t order = 0;   // of its rule among the rules
    int64_t used = 0;   // last opened (a counter, for LRU)
    bool due = true;    // to be fetched (again)
    bool released = false;  // its memory went under pressure
  };
  PinSet(Options options, PrefetchTarget* target, Cache* cache,
         Volume* volume);
  void Loop();
  // Samples /proc/*/maps every map_sample (see Options).
  void SampleMaps();
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
  // Locks pinned files on disk in RAM, in rule order, within the budget.
  void AdmitToMemory() ABSL_LOCKS_EXCLUDED(mu_);
  // Lets go of the memory of files not wanted in it any more.
  void DropMemoryOf(const std::vector<uint64_t>& hashes)
      ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  PrefetchTarget* const target_;
  Cache* const cache_;
  Volume* const volume_;

  mutable absl::Mutex mu_;
  std::vector<Rule> file_rules_ ABSL_GUARDED_BY(mu_);
  std::vector<Rule> ctl_rules_ ABSL_GUARDED_BY(mu_);
  std::vector<Rule> mapped_rules_ ABSL_GUARDED_BY(mu_);
  std::vector<Rule> unmatched_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, File> files_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> hashes_ ABSL_GUARDED_BY(mu_);
  bool resolve_ ABSL_GUARDED_BY(mu_) = true;
  bool admit_ ABSL_GUARDED_BY(mu_) = false;  // memory to take again
  bool busy_ ABSL_GUARDED_BY(mu_) = true;  // the loop has work in hand
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Memory pins are let go (pressure) and not taken until restored.
  bool memory_released_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t memory_locked_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t use_clock_ ABSL_GUARDED_BY(mu_) = 0;
  bool warned_memlock_ ABSL_GUARDED_BY(mu_) = false;
  bool warned_mappings_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  std::thread sampler_;
};

// Hot sets: what each program reads when it starts, learned from the
// requests the front end sees (each carries the caller's pid) and
// replayed ahead of the program when it starts again, as precached's
// per-program traces are.
//
// A program is its executable (/proc/PID/exe), and for an interpreter
// (python, perl, ruby, node, sh, bash, java...) its script too (the first
// argument that is not an option). A process of a program is traced for
// its first `window`: the files it opens and the ranges it reads, in the
// order it first asks for them; the trace replaces the program's last
// one when the window ends, and is kept in the volume's directory. Bulk
// readers (cp, cat, tar, rsync, find, grep, du, md5sum, ...: `ignore`)
// are never traced.
//
// When a new process of a traced program makes its first request, its
// trace is replayed on the set's own threads: each file is checked
// against the origin (a file whose size or mtime moved since is dropped
// from the trace), its ranges brought into the cache, and pushed into
// the kernel's page cache where the kernel knows the file. The program's
// own requests never wait for a replay.
//
// Thread safety: all methods may be called concurrently.
class HotSets {
 public:
  struct Options {
    absl::Duration window = absl::Seconds(15);
    absl::Duration ttl = absl::Hours(24 * 14);
    // Programs never traced, by the base name of their executable (or
    // script).
    std::vector<std::string> ignore = DefaultIgnore();
    size_t max_files = 10000;  // per trace
    int threads = 4;           // replay
  };
  static std::vector<std::string> DefaultIgnore();

  // Borrows everything; loads the traces kept in `volume`.
  HotSets(Options options, PrefetchTarget* target, Volume* volume,
          CacheStats* stats);
  // Saves the traces.
  ~HotSets();

  // A request of process `pid` for bytes [off, off + len) of the file
  // `key`; an open gives the attributes it opened the file with.
  void Note(pid_t pid, const std::string& key, uint64_t off, uint64_t len,
            const struct stat* opened = nullptr);

  struct Program {
    std::string name;
    uint64_t files = 0;
    uint64_t bytes = 0;
    int64_t learned = 0;      // seconds since the epoch
    int64_t last_replay = 0;  // 0: never
    uint64_t replays = 0;
    uint64_t hits = 0;        // files of the trace the program then read
  };
  std::vector<Program> Programs() const;
  // Drops the trace of the program named `name`; false if there is none.
  bool Forget(const std::string& name);
  // Writes the traces to the volume now.
  absl::Status Save();
  // Returns once no replay runs or `timeout` passed; false then.
  bool WaitIdle(absl::Duration timeout);

 private:
  struct Range {
    uint64_t off, len;
  };
  struct TracedFile {
    std::string path;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::vector<Range> ranges;  // merged, in the order first asked
  };
  struct Trace {
    std::string program;
    int64_t learned = 0;
    int64_t last_replay = 0;
    uint64_t replays = 0;
    uint64_t hits = 0;
    std::vector<TracedFile> files;
  };
  // A process seen: what program it is and, while its window lasts, what
  // it asked for.
  struct Process {
    uint64_t start_time = 0;  // /proc/PID/stat, against pid reuse
    std::string program;      // empty: ignored
    absl::Time until;         // end of its window
    std::shared_ptr<Trace> recording;  // null once the window ended
    absl::flat_hash_map<std::string, size_t> index;  // path -> file
    std::shared_ptr<Trace> replayed;   // the trace replayed for it
    absl::flat_hash_set<std::string> hit;  // files of it opened
  };
  static void AddRange(std::vector<Range>* ranges, uint64_t off,
                       uint64_t len);

  // The program of `pid`, "" to ignore it.
  std::string ProgramOf(pid_t pid) const;
  void Finish(Process& process) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishExpired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Replay(std::shared_ptr<Trace> trace);
  void Load();

  const Options options_;
  PrefetchTarget* const target_;
  Volume* const volume_;
  CacheStats* const stats_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Trace>> traces_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<pid_t, Process> processes_ ABSL_GUARDED_BY(mu_);
  int replaying_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> replays_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// Memory pressure: where the signal comes from. PSI triggers on
// /proc/pressure/memory where the kernel has them, MemAvailable sampled
// from /proc/meminfo where not, or a file whose first byte is '1' while
// there is pressure (for tests, or a policy daemon of one's own).
class PressureSource {
 public:
  virtual ~PressureSource() = default;
  // Waits up to `timeout` for a sign of pressure; true if there was one.
  virtual bool Wait(absl::Duration timeout) = 0;
  // What it is, for `status` ("psi: some 150000 us in 2 s", ...).
  virtual std::string Describe() const = 0;
};

// A PSI trigger on `path`: pressure when tasks stalled on memory for
// `stall` within each `window` (a multiple of 2 s, unless the daemon has
// CAP_SYS_RESOURCE). Fails where the kernel has no PSI.
absl::StatusOr<std::unique_ptr<PressureSource>> OpenPsiPressure(
    const std::string& path, absl::Duration stall, absl::Duration window);
// Pressure while MemAvailable is below `min_available` of MemTotal,
// sampled every `period`.
std::unique_ptr<PressureSource> MemAvailablePressure(double min_available,
                                                     absl::Duration period);
// Pressure while the file at `path` starts with '1', looked at every
// `period`.
std::unique_ptr<PressureSource> FilePressure(std::string path,
                                             absl::Duration period);

// Lets go of memory pins under pressure and takes them again after it,
// with hysteresis: the first sign releases pins least recently used first
// down to `low_watermark` of the budget, a sign while still under
// pressure releases the rest; only once `calm` has passed with no sign
// are they locked again. Prefetch jobs pause meanwhile. Each transition
// is logged and counted (memory_pressure_events, pin_releases,
// pin_restores).
class PressureWatch {
 public:
  struct Options {
    double low_watermark = 0.5;
    absl::Duration calm = absl::Seconds(30);
    uint64_t budget = 0;  // -o pin_memory
  };
  // Borrows everything; starts watching on a thread of its own.
  PressureWatch(Options options, std::unique_ptr<PressureSource> source,
                PinSet* pins, Prefetcher* prefetcher, CacheStats* stats);
  ~PressureWatch();
  // "none", "pressure" or "calming" and the source, for `status`.
  std::string Describe() const;

 private:
  void Loop();

  const Options options_;
  const std::unique_ptr<PressureSource> source_;
  PinSet* const pins_;
  Prefetcher* const prefetcher_;
  CacheStats* const stats_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> state_{0};  // 0 none, 1 pressure
  std::thread thread_;
};

}  // namespace cachefs

#endif  // CACHEFS_PREFETCH_PREFETCH_H_
