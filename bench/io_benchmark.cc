// ReadToIter throughput and latency against a plain pread O_DIRECT loop,
// both on the same 1 GiB file in the same run, with the page cache bypassed.
//
// The file is $CACHEFS_BENCH_DIR/cachefs-bench-1g.dat (default /var/tmp),
// created once outside the timed region, filled with non-zero data and
// fdatasync'ed; it is left in place for the next run.
//
//   io_benchmark --benchmark_min_time=2
//
// Each benchmark reports bytes/second and p50/p99 latency in microseconds.
// "qd" is the number of requests in flight; BM_PreadDirect reaches the same
// depth with threads, one blocking pread each.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "io/env.h"
#include "io/io_engine.h"

namespace cachefs {
namespace {

constexpr uint64_t kFileSize = uint64_t{1} << 30;
constexpr size_t kFillChunk = 8 << 20;

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "io_benchmark: %s: %s\n", what.c_str(), strerror(errno));
  exit(1);
}

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct FreeDeleter {
  void operator()(uint8_t* p) const { free(p); }
};
using AlignedBuf = std::unique_ptr<uint8_t, FreeDeleter>;
AlignedBuf Aligned(size_t n) {
  return AlignedBuf(static_cast<uint8_t*>(aligned_alloc(4096, n)));
}

// Reuses the file if it has the right size and non-zero data, else writes it.
std::string PrepareFile() {
  const char* dir = getenv("CACHEFS_BENCH_DIR");
  const std::string path =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/var/tmp") +
      "/cachefs-bench-1g.dat";
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && uint64_t(st.st_size) == kFileSize) {
    int fd = open(path.c_str(), O_RDONLY);
    uint8_t first = 0;
    if (fd >= 0 && pread(fd, &first, 1, kFileSize - 1) == 1 && first != 0) {
      close(fd);
      return path;
    }
    if (fd >= 0) close(fd);
  }
  fprintf(stderr, "io_benchmark: writing %s (1 GiB)\n", path.c_str());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) Die("create " + path);
  std::vector<uint64_t> chunk(kFillChunk / 8);
  for (uint64_t off = 0; off < kFileSize; off += kFillChunk) {
    for (size_t i = 0; i < chunk.size(); ++i) {
      chunk[i] = (off + i * 8) | 0x0101010101010101ull;
    }
    if (pwrite(fd, chunk.data(), kFillChunk, off) != ssize_t(kFillChunk)) {
      Die("write " + path);
    }
  }
  if (fdatasync(fd) != 0) Die("fdatasync " + path);
  close(fd);
  return path;
}

int DirectFd() {
  static const int fd = [] {
    const std::string path = PrepareFile();
    int fd = open(path.c_str(), O_RDONLY | O_DIRECT);
    if (fd < 0) Die("open O_DIRECT " + path);
    return fd;
  }();
  return fd;
}

IoEngine* Engine() {
  static IoEngine* const engine = [] {
    absl::StatusOr<std::unique_ptr<IoEngine>> e =
        IoEngine::Create(Env::Default(), IoEngineOptions{.queue_depth = 64});
    if (!e.ok()) {
      fprintf(stderr, "%s\n", e.status().ToString().c_str());
      exit(1);
    }
    return e->release();
  }();
  return engine;
}

// Request offsets: sequential (wrapping) or uniformly random, aligned to
// the request size.
class Offsets {
 public:
  Offsets(size_t size, bool random, uint64_t start, uint64_t seed)
      : size_(size), random_(random), next_(start / size * size), rng_(seed) {}
  uint64_t Next() {
    const uint64_t slots = kFileSize / size_;
    if (random_) return rng_() % slots * size_;
    const uint64_t off = next_;
    next_ = (next_ + size_) % (slots * size_);
    return off;
  }

 private:
  const size_t size_;
  const bool random_;
  uint64_t next_;
  std::mt19937_64 rng_;
};

void ReportLatency(benchmark::State& state, std::vector<int64_t>& ns) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return double(ns[std::min(ns.size() - 1, size_t(q * ns.size()))]) / 1e3;
  };
  state.counters["p50_us"] = benchmark::Counter(at(0.50), benchmark::Counter::kAvgThreads);
  state.counters["p99_us"] = benchmark::Counter(at(0.99), benchmark::Counter::kAvgThreads);
}

// The baseline: one blocking pread per request, per thread.
void BM_PreadDirect(benchmark::State& state) {
  const size_t size = state.range(0);
  const int fd = DirectFd();
  AlignedBuf buf = Aligned(size);
  Offsets offsets(size, state.range(1) != 0,
                  kFileSize / state.threads() * state.thread_index(),
                  state.thread_index() + 1);
  std::vector<int64_t> lat;
  lat.reserve(1 << 16);
  for (auto _ : state) {
    const int64_t t0 = NowNanos();
    if (pread(fd, buf.get(), size, offsets.Next()) != ssize_t(size)) {
      state.SkipWithError("pread failed");
      break;
    }
    lat.push_back(NowNanos() - t0);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * size);
  ReportLatency(state, lat);
}

// One request in flight: ReadToIterSync.
void BM_ReadToIterSync(benchmark::State& state) {
  const size_t size = state.range(0);
  const BackingFile file{DirectFd(), true};
  IoEngine* engine = Engine();
  AlignedBuf buf = Aligned(size);
  Offsets offsets(size, state.range(1) != 0, 0, 1);
  std::vector<int64_t> lat;
  lat.reserve(1 << 16);
  for (auto _ : state) {
    iovec v{buf.get(), size};
    const int64_t t0 = NowNanos();
    absl::StatusOr<size_t> n = engine->ReadToIterSync(file, offsets.Next(), {&v, 1});
    if (!n.ok() || *n != size) {
      state.SkipWithError("ReadToIterSync failed");
      break;
    }
    lat.push_back(NowNanos() - t0);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * size);
  ReportLatency(state, lat);
}

// `qd` requests kept in flight by one thread; each iteration waits for one
// completion and issues the next request into the freed buffer.
struct AsyncRun {
  absl::Mutex mu;
  std::vector<int> done ABSL_GUARDED_BY(mu);
  int failures ABSL_GUARDED_BY(mu) = 0;
  std::vector<int64_t> start, end;
  bool HasDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !done.empty(); }
};

void BM_ReadToIterAsync(benchmark::State& state) {
  const size_t size = state.range(0);
  const int qd = int(state.range(1));
  const BackingFile file{DirectFd(), true};
  IoEngine* engine = Engine();
  AlignedBuf bufs = Aligned(size * qd);
  Offsets offsets(size, state.range(2) != 0, 0, 1);
  AsyncRun run;
  run.start.resize(qd);
  run.end.resize(qd);
  {
    absl::MutexLock lock(&run.mu);
    run.done.reserve(qd);
  }
  auto issue = [&](int slot) {
    iovec v{bufs.get() + size_t(slot) * size, size};
    run.start[slot] = NowNanos();
    AsyncRun* r = &run;
    engine->ReadToIter(file, offsets.Next(), {&v, 1},
                       [r, slot, size](absl::StatusOr<size_t> n) {
                         const int64_t t = NowNanos();
                         absl::MutexLock lock(&r->mu);
                         if (!n.ok() || *n != size) ++r->failures;
                         r->end[slot] = t;
                         r->done.push_back(slot);
                       });
  };
  auto wait_one = [&] {
    absl::MutexLock lock(&run.mu);
    run.mu.Await(absl::Condition(&run, &AsyncRun::HasDone));
    const int slot = run.done.back();
    run.done.pop_back();
    return slot;
  };
  std::vector<int64_t> lat;
  lat.reserve(1 << 16);
  for (int i = 0; i < qd; ++i) issue(i);  // fill the queue, untimed
  for (auto _ : state) {
    const int slot = wait_one();
    lat.push_back(run.end[slot] - run.start[slot]);
    issue(slot);
  }
  for (int i = 0; i < qd; ++i) wait_one();  // the timer has stopped
  absl::MutexLock lock(&run.mu);
  if (run.failures > 0) state.SkipWithError("ReadToIter failed");
  state.SetBytesProcessed(int64_t(state.iterations()) * size);
  ReportLatency(state, lat);
}

constexpr int64_t k4K = 4 << 10;  // shows the fixed cost per request
constexpr int64_t k256K = 256 << 10;
constexpr int64_t k1M = 1 << 20;

BENCHMARK(BM_PreadDirect)
    ->ArgsProduct({{k4K, k256K, k1M}, {0, 1}})
    ->ArgNames({"size", "random"})
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime();
BENCHMARK(BM_ReadToIterSync)
    ->ArgsProduct({{k4K, k256K, k1M}, {0, 1}})
    ->ArgNames({"size", "random"})
    ->UseRealTime();
BENCHMARK(BM_ReadToIterAsync)
    ->ArgsProduct({{k256K, k1M}, {4, 16, 32}, {0, 1}})
    ->ArgNames({"size", "qd", "random"})
    ->UseRealTime();

}  // namespace
}  // namespace cachefs

BENCHMARK_MAIN();
