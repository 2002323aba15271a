// A model-based random operation tester in the spirit of fsx and fsstress:
// a seeded random sequence of file operations (open with various flags,
// pread/read past EOF, pwrite/write of 1 byte to ~1 MiB including sparse
// extensions and appends, truncate/ftruncate across 256 KiB granule
// boundaries, mmap reads, rename over existing files, link, unlink of open
// files, fsync, copy_file_range, fallocate, close) is applied to a directory
// under test and to a reference directory on a plain local filesystem, and
// every result is compared: return value, errno, bytes read, and after every
// step the sizes and contents of the files.
//
// Several threads run at once, each owning its own file names
// (t<thread>_f<k>) in the shared directory, so the outcome does not depend
// on how the threads interleave: thread t draws its operations from seed+t,
// and the same seed replays the same sequence. A mismatch stops every thread
// and is returned with the seed, the thread, the operation's index and the
// operation itself, and the thread's last operations.
//
//   ModelOptions options;
//   options.seed = 42;
//   absl::Status s = RunModel(options, mnt + "/model", reference.path());

#ifndef CACHEFS_TESTS_INTEGRATION_MODEL_TESTER_H_
#define CACHEFS_TESTS_INTEGRATION_MODEL_TESTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace cachefs::testing {

struct ModelOptions {
  uint64_t seed = 1;
  int threads = 4;
  // Operations in all, split evenly across the threads.
  uint64_t ops = 20000;
  int files_per_thread = 4;
  // Open descriptors a thread juggles at once (per directory).
  int fd_slots = 3;
  // Writes and extending truncates stay below this, so that a run of 20,000
  // operations reads and compares a bounded amount of data.
  uint64_t max_file_size = uint64_t{3} << 20;
  uint64_t max_io_size = uint64_t{1} << 20;
  // Which operations are drawn, besides the basic ones. fallocate is off by
  // default: a FUSE origin such as sshfs has none (EOPNOTSUPP), while the
  // reference's local filesystem has it. Links are on, but sshfs cannot
  // have them: its inode numbers are made up per path, so two links are
  // two files to it (copy_file_range between them does not see the
  // overlap, and rename of one onto the other, open, loses a name).
  bool use_mmap = true;
  bool use_link = true;
  bool use_copy_file_range = true;
  bool use_fallocate = false;
  // Every operation is followed by a stat of all the thread's names and
  // open descriptors and a full read of the files it touched; every
  // `full_check_interval` operations (and at the end) every file of the
  // thread is read whole and compared.
  int full_check_interval = 32;
  // The run fails (instead of running on) once this much time has passed.
  absl::Duration time_limit = absl::Minutes(10);
  // Called in the worker thread after operation `index` of `thread` has
  // been applied to both directories and its results compared, before the
  // files are checked. `op` describes the operation. For tests of the
  // tester (changing a directory behind its back) and for tracing.
  std::function<void(int thread, uint64_t index, const std::string& op)>
      after_op;
};

// What a run did, for the test's log.
struct ModelSummary {
  uint64_t ops = 0;
  // Operations by kind ("pwrite", "open", ...).
  std::map<std::string, uint64_t> by_kind;
  // Operations that failed with the same errno in both directories, by
  // errno name ("ENOENT", ...): a run where everything fails tests little.
  std::map<std::string, uint64_t> errors;
  uint64_t bytes_written = 0;
  uint64_t bytes_compared = 0;
};

// The name thread `thread` uses for its file number `k`.
std::string ModelFileName(int thread, int k);

// Runs the model on `dir_under_test` and `reference_dir`, both existing and
// holding none of the model's names. OK when every result agreed; otherwise
// an Internal error describing the first mismatch (seed, thread, operation
// index, operation, both outcomes). Leaves the files in place.
absl::Status RunModel(const ModelOptions& options,
                      const std::string& dir_under_test,
                      const std::string& reference_dir,
                      ModelSummary* summary = nullptr);

}  // namespace cachefs::testing

#endif  // CACHEFS_TESTS_INTEGRATION_MODEL_TESTER_H_
