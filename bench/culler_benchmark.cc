// The culler's startup: scanning a cache directory of 100,000 objects into
// the cull index (the goal is under 2 s), the objects' files made once with
// one allocated block each, in the volume's real layout.
//
// The cache lives in $CACHEFS_BENCH_DIR (default /var/tmp) and is removed
// afterwards. The page cache is left warm between iterations, as it is for
// a daemon restarted on a busy machine; run with --cold (as root) to drop
// it before each start.

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "bench/bench_cache.h"
#include "benchmark/benchmark.h"
#include "cookie/cache.h"
#include "cookie/object_key.h"
#include "cull/culler.h"

namespace cachefs {
namespace {

constexpr int kObjects = 100000;
bool cold = false;

// A cache whose volume holds kObjects objects of one block each.
struct PopulatedCache : BenchCache {
  PopulatedCache() : BenchCache("culler") {
    const std::string vol = dir + "/volumes/" + VolumeDirName(kVolume) + "/";
    for (int i = 0; i < kObjects; ++i) {
      ObjectPath p =
          ObjectPathFor(HashObjectKey(kVolume, "file" + std::to_string(i)));
      std::filesystem::create_directories(vol + p.fan_dir);
      int fd = open((vol + p.fan_dir + "/" + p.name).c_str(),
                    O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (fd < 0 || fallocate(fd, 0, 0, 4096) != 0) std::abort();
      close(fd);
    }
  }
};

void BM_CullerStartWith100kObjects(benchmark::State& state) {
  static PopulatedCache populated_cache;  // removed at exit
  PopulatedCache* populated = &populated_cache;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      sync();
      int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
      if (fd >= 0) {
        (void)!write(fd, "3", 1);
        close(fd);
      }
      state.ResumeTiming();
    }
    auto culler = Culler::Start(populated->cache.get(), populated->volume,
                                CullLimits{}, kDefaultCullPolicy);
    if (!culler.ok() || (*culler)->indexed_objects() != kObjects) {
      state.SkipWithError("the index does not hold every object");
      break;
    }
    state.counters["scan_ms"] = (*culler)->scan_nanos() / 1e6;
  }
  state.counters["objects"] = kObjects;
}
BENCHMARK(BM_CullerStartWith100kObjects)->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
}  // namespace cachefs

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--cold") == 0) cachefs::cold = true;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
