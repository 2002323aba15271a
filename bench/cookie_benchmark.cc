// Cookie-layer benchmarks: dispatcher acquire/relinquish throughput, the
// memory one live cookie costs with its backing object and the map of a
// 1 GiB object, and what a trace site costs.
//
// The cache lives in $CACHEFS_BENCH_DIR (default /var/tmp) and is removed
// afterwards.

#include <malloc.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_cache.h"
#include "benchmark/benchmark.h"
#include "cookie/cache.h"
#include "cookie/tracer.h"

namespace cachefs {
namespace {

BenchCache* shared_cache = nullptr;

// Acquire a cookie (instantiation on the dispatcher: lookup of an existing
// object), wait for it, relinquish it (teardown: nothing changed, so no
// write back). Keys are spread over `kKeys` so threads rarely share one.
void BM_AcquireRelinquish(benchmark::State& state) {
  constexpr int kKeys = 4096;
  if (state.thread_index() == 0) {
    shared_cache = new BenchCache("cookie");
    for (int k = 0; k < kKeys; ++k) {  // objects exist: positive lookups
      auto c = shared_cache->volume->AcquireCookie(std::to_string(k), "aux",
                                                   uint64_t{1} << 30);
      c->WaitReady();
      shared_cache->volume->RelinquishCookie(std::move(c), false);
    }
    shared_cache->cache->dispatcher()->Drain();
  }
  int k = state.thread_index() * 977;
  for (auto _ : state) {
    auto cookie = shared_cache->volume->AcquireCookie(
        std::to_string(k++ % kKeys), "aux", uint64_t{1} << 30);
    cookie->WaitReady();
    shared_cache->volume->RelinquishCookie(std::move(cookie), false);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    CacheStats& s = shared_cache->cache->stats();
    state.counters["pooled"] = s.dispatch_pooled.load();
    state.counters["inline"] = s.dispatch_inline.load();
    delete shared_cache;
    shared_cache = nullptr;
  }
}
BENCHMARK(BM_AcquireRelinquish)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// Heap bytes per live cookie holding an object and the map of a 1 GiB
// object (4096 granules), measured with mallinfo2 over many cookies.
void BM_MemoryPerLiveCookie(benchmark::State& state) {
  constexpr int kCookies = 2000;
  rlimit limit;
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  for (auto _ : state) {
    BenchCache bench("cookie");
    std::vector<std::shared_ptr<Cookie>> cookies;
    cookies.reserve(kCookies);
    bench.cache->dispatcher()->Drain();
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < kCookies; ++i) {
      cookies.push_back(bench.volume->AcquireCookie(
          "file-" + std::to_string(i), "aux", uint64_t{1} << 30));
    }
    for (auto& c : cookies) c->WaitReady();
    bench.cache->dispatcher()->Drain();
    size_t after = mallinfo2().uordblks;
    state.counters["bytes_per_cookie"] =
        static_cast<double>(after - before) / kCookies;
    state.counters["map_bytes_1GiB"] =
        CookieInspector::ObjectOf(*cookies[0])->MapSnapshot().MemoryUsage();
    for (auto& c : cookies) bench.volume->RelinquishCookie(std::move(c), true);
  }
}
BENCHMARK(BM_MemoryPerLiveCookie)->Iterations(1)->Unit(benchmark::kMillisecond);

// A trace site as the read path has it, per read request: with no one
// listening (the normal case) and with one listener that keeps up.
void BM_TraceSite(benchmark::State& state) {
  Tracer tracer;
  std::shared_ptr<Tracer::Listener> listener;
  if (state.range(0) != 0) listener = tracer.Listen();
  const std::string key = "some/dir/a-file.bin";
  uint64_t n = 0;
  for (auto _ : state) {
    if (tracer.active()) {
      tracer.Emit(TraceEvent("read", key).Granules(n, 4).Bytes(1 << 20).Detail(
          "hit"));
    }
    benchmark::DoNotOptimize(++n);
    if (listener != nullptr && n % 1024 == 0) {
      uint64_t dropped = 0;
      benchmark::DoNotOptimize(
          listener->Take(absl::ZeroDuration(), &dropped).size());
    }
  }
  if (listener != nullptr) tracer.Unlisten(listener);
  state.SetLabel(state.range(0) != 0 ? "listening" : "no listener");
}
BENCHMARK(BM_TraceSite)->Arg(0)->Arg(1);

}  // namespace
}  // namespace cachefs

BENCHMARK_MAIN();
