// The model-based random operation tester (model_tester.h) run against a
// cachefs mount over a local origin and over SSHFS, with a plain directory
// as the reference; and tests of the tester itself, so that a green run
// means something: two plain directories agree, the same seed replays the
// same operations, and a directory changed behind the tester's back is
// reported.
//
// CACHEFS_MODEL_SEED=N replays a run (the seed is printed at the start and
// is part of every failure); CACHEFS_MODEL_OPS=N sets the operation count
// per origin kind (default 20000).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/integration/cachefs_mount.h"
#include "tests/integration/fixtures/files.h"
#include "tests/integration/model_tester.h"

namespace cachefs::testing {
namespace {

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoull(value, nullptr, 10);
}

// From CACHEFS_MODEL_SEED, else from the clock; printed either way, so a
// failure seen in a CI log can be replayed.
uint64_t ModelSeed() {
  uint64_t seed =
      EnvNumber("CACHEFS_MODEL_SEED",
                static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())));
  std::cout << "model seed: CACHEFS_MODEL_SEED=" << seed << std::endl;
  ::testing::Test::RecordProperty("model_seed", std::to_string(seed));
  return seed;
}

uint64_t ModelOps() { return EnvNumber("CACHEFS_MODEL_OPS", 20000); }

std::string SummaryText(const ModelSummary& s) {
  std::vector<std::string> kinds, errors;
  for (const auto& [k, v] : s.by_kind) kinds.push_back(absl::StrCat(k, "=", v));
  for (const auto& [k, v] : s.errors) errors.push_back(absl::StrCat(k, "=", v));
  return absl::StrCat(s.ops, " ops (", absl::StrJoin(kinds, " "),
                      "), agreed errors: ", absl::StrJoin(errors, " "), "; ",
                      s.bytes_written >> 20, " MiB written, ",
                      s.bytes_compared >> 20, " MiB compared");
}

// Every model file in `dir` and `want_dir` has the same bytes, and the
// same names exist.
void ExpectSameModelFiles(const ModelOptions& options, const std::string& dir,
                          const std::string& want_dir) {
  for (int t = 0; t < options.threads; ++t) {
    for (int k = 0; k < options.files_per_thread; ++k) {
      std::string name = ModelFileName(t, k);
      struct stat st;
      bool want_exists = stat((want_dir + "/" + name).c_str(), &st) == 0;
      bool exists = stat((dir + "/" + name).c_str(), &st) == 0;
      EXPECT_EQ(exists, want_exists) << dir << "/" << name;
      if (!exists || !want_exists) continue;
      auto want = ReadWholeFile(want_dir + "/" + name);
      ASSERT_OK(want);
      EXPECT_TRUE(SameBytes(ReadWholeFile(dir + "/" + name), *want))
          << dir << "/" << name;
    }
  }
}

// --- The tester itself, on two plain directories.

ModelOptions SmallRun(uint64_t seed) {
  ModelOptions options;
  options.seed = seed;
  options.ops = 4000;
  options.use_fallocate = true;
  return options;
}

TEST(ModelTesterTest, TwoPlainDirectoriesAgree) {
  TempDir a, b;
  ModelOptions options = SmallRun(ModelSeed());
  ModelSummary summary;
  ASSERT_OK(RunModel(options, a.path(), b.path(), &summary));
  std::cout << SummaryText(summary) << std::endl;
  EXPECT_EQ(summary.ops, options.ops);
  // The run did something worth comparing: data went through every kind
  // of operation and most of them succeeded.
  EXPECT_GT(summary.bytes_written, 10u << 20);
  for (const char* kind :
       {"open", "close", "pread", "read", "pwrite", "write", "truncate",
        "ftruncate", "mmap_read", "rename", "link", "unlink", "fsync",
        "fdatasync", "fadvise_dontneed", "copy_file_range", "fallocate"}) {
    EXPECT_GT(summary.by_kind[kind], 0u) << kind;
  }
  uint64_t errors = 0;
  for (const auto& [name, n] : summary.errors) errors += n;
  EXPECT_LT(errors, summary.ops / 4) << SummaryText(summary);
  ExpectSameModelFiles(options, a.path(), b.path());
}

TEST(ModelTesterTest, SameSeedReplaysTheSameOperations) {
  const uint64_t seed = ModelSeed();
  std::vector<std::string> runs[2];
  for (auto& trace : runs) {
    TempDir a, b;
    ModelOptions options = SmallRun(seed);
    options.ops = 2000;
    std::vector<std::string> per_thread[4];
    options.after_op = [&](int thread, uint64_t index, const std::string& op) {
      per_thread[thread].push_back(absl::StrCat(index, " ", op));
    };
    ASSERT_OK(RunModel(options, a.path(), b.path()));
    for (auto& ops : per_thread) {
      ASSERT_EQ(ops.size(), 500u);
      trace.insert(trace.end(), ops.begin(), ops.end());
    }
  }
  EXPECT_EQ(runs[0], runs[1]);
  // And another seed draws another sequence.
  TempDir a, b;
  ModelOptions options = SmallRun(seed + 1000);
  options.ops = 2000;
  std::vector<std::string> other;
  std::mutex mu;
  options.after_op = [&](int thread, uint64_t index, const std::string& op) {
    std::lock_guard<std::mutex> lock(mu);
    if (thread == 0) other.push_back(absl::StrCat(index, " ", op));
  };
  ASSERT_OK(RunModel(options, a.path(), b.path()));
  EXPECT_NE(std::vector<std::string>(runs[0].begin(), runs[0].begin() + 500),
            other);
}

// Runs the model on two plain directories with `tamper` applied to the
// one under test, once, by thread 0 from operation 300 on (as soon as it
// returns true), and returns the run's status.
absl::Status RunTampered(
    const std::function<bool(const std::string& dir)>& tamper, uint64_t seed,
    bool* tampered) {
  TempDir a, b;
  ModelOptions options = SmallRun(seed);
  std::string dir = a.path();
  *tampered = false;
  // Only just before a full check of the thread's files, which compares
  // every byte: a later operation of the thread could otherwise overwrite
  // or delete what was changed before any check read it.
  const uint64_t full_every = static_cast<uint64_t>(options.full_check_interval);
  options.after_op = [&](int thread, uint64_t index, const std::string&) {
    if (thread == 0 && index >= 300 && (index + 1) % full_every == 0 &&
        !*tampered) {
      *tampered = tamper(dir);
    }
  };
  return RunModel(options, a.path(), b.path());
}

// The first existing non-empty file of thread 0 in `dir`, or "".
std::string SomeFile(const std::string& dir) {
  for (int k = 0; k < 4; ++k) {
    std::string path = dir + "/" + ModelFileName(0, k);
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && st.st_size > 0) return path;
  }
  return "";
}

void ExpectReportedMismatch(const absl::Status& status, bool tampered,
                            uint64_t seed) {
  ASSERT_TRUE(tampered) << "the hook never found a file to change";
  ASSERT_FALSE(status.ok()) << "a changed directory went unnoticed";
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  std::string message(status.message());
  EXPECT_NE(message.find("model mismatch"), std::string::npos) << message;
  EXPECT_NE(message.find(absl::StrCat("seed ", seed)), std::string::npos)
      << message;
  EXPECT_NE(message.find("thread 0"), std::string::npos) << message;
  EXPECT_NE(message.find("op #"), std::string::npos) << message;
  EXPECT_NE(message.find("CACHEFS_MODEL_SEED="), std::string::npos) << message;
}

TEST(ModelTesterTest, ReportsAChangedByte) {
  const uint64_t seed = ModelSeed();
  bool tampered;
  absl::Status status = RunTampered(
      [](const std::string& dir) {
        std::string path = SomeFile(dir);
        if (path.empty()) return false;
        int fd = open(path.c_str(), O_RDWR);
        if (fd < 0) return false;
        struct stat st;
        fstat(fd, &st);
        off_t at = st.st_size / 2;
        char c = 0;
        bool ok = pread(fd, &c, 1, at) == 1;
        c = static_cast<char>(c ^ 0x5a);
        ok = ok && pwrite(fd, &c, 1, at) == 1;
        close(fd);
        return ok;
      },
      seed, &tampered);
  ExpectReportedMismatch(status, tampered, seed);
  EXPECT_NE(status.message().find("differ"), std::string::npos) << status;
}

TEST(ModelTesterTest, ReportsADroppedWrite) {
  // A write that never arrived: the file keeps its size but a range of it
  // goes back to zeros, as if the data had been lost.
  const uint64_t seed = ModelSeed();
  bool tampered;
  absl::Status status = RunTampered(
      [](const std::string& dir) {
        std::string path = SomeFile(dir);
        if (path.empty()) return false;
        int fd = open(path.c_str(), O_RDWR);
        if (fd < 0) return false;
        struct stat st;
        fstat(fd, &st);
        std::string zeros(std::min<off_t>(st.st_size, 4096), '\0');
        std::string old(zeros.size(), '\0');
        bool ok = pread(fd, old.data(), old.size(), 0) ==
                      static_cast<ssize_t>(old.size()) &&
                  old != zeros &&
                  pwrite(fd, zeros.data(), zeros.size(), 0) ==
                      static_cast<ssize_t>(zeros.size());
        close(fd);
        return ok;
      },
      seed, &tampered);
  ExpectReportedMismatch(status, tampered, seed);
}

TEST(ModelTesterTest, ReportsAWrongSize) {
  const uint64_t seed = ModelSeed();
  bool tampered;
  absl::Status status = RunTampered(
      [](const std::string& dir) {
        std::string path = SomeFile(dir);
        struct stat st;
        return !path.empty() && stat(path.c_str(), &st) == 0 &&
               truncate(path.c_str(), st.st_size + 1) == 0;
      },
      seed, &tampered);
  ExpectReportedMismatch(status, tampered, seed);
  EXPECT_NE(status.message().find("size"), std::string::npos) << status;
}

TEST(ModelTesterTest, ReportsALostFile) {
  const uint64_t seed = ModelSeed();
  bool tampered;
  absl::Status status = RunTampered(
      [](const std::string& dir) {
        std::string path = SomeFile(dir);
        return !path.empty() && unlink(path.c_str()) == 0;
      },
      seed, &tampered);
  ExpectReportedMismatch(status, tampered, seed);
}

// --- cachefs against a plain directory.

class ModelTest : public CachefsMountTest {};

TEST_P(ModelTest, RandomOperationsMatchAPlainDirectory) {
  Mount();
  if (HasFatalFailure()) return;
  TempDir reference;
  ModelOptions options;
  options.seed = ModelSeed();
  options.ops = ModelOps();
  // sshfs has no fallocate, and no hard links that act as one file (see
  // ModelOptions); NFS before 4.2 has no fallocate; a local origin has
  // both.
  options.use_fallocate = GetParam() == OriginKind::kLocal;
  options.use_link = GetParam() == OriginKind::kLocal ||
                     GetParam() == OriginKind::kNfs4;
  ModelSummary summary;
  absl::Time start = absl::Now();
  absl::Status status =
      RunModel(options, mnt_.path(), reference.path(), &summary);
  absl::Duration took = absl::Now() - start;
  std::cout << OriginKindName({GetParam(), 0}) << ": " << SummaryText(summary)
            << " in " << took << std::endl;
  if (!status.ok()) std::cout << daemon_->ReadStderr();
  ASSERT_OK(status);
  auto stats = Stats();
  std::cout << "cachefs: bytes_read_from_cache="
            << stats["bytes_read_from_cache"]
            << " bytes_read_from_origin=" << stats["bytes_read_from_origin"]
            << std::endl;
  // Written through: the origin holds what the reference holds, and after
  // a remount the mount still serves it.
  Unmount();
  {
    SCOPED_TRACE("the origin after unmount");
    ExpectSameModelFiles(options, served_.path(), reference.path());
  }
  Mount();
  if (HasFatalFailure()) return;
  SCOPED_TRACE("the mount after a remount");
  ExpectSameModelFiles(options, mnt_.path(), reference.path());
}

INSTANTIATE_TEST_SUITE_P(Origins, ModelTest,
                         ::testing::Values(OriginKind::kLocal,
                                           OriginKind::kSshfs,
                                           OriginKind::kNfs4),
                         OriginKindName);

}  // namespace
}  // namespace cachefs::testing
