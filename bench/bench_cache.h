// A cache for a benchmark, opened in a fresh directory (MakeBenchDir) with
// one volume, "bench:/origin"; closed and removed on destruction.

#ifndef CACHEFS_BENCH_BENCH_CACHE_H_
#define CACHEFS_BENCH_BENCH_CACHE_H_

#include <filesystem>
#include <memory>
#include <string>

#include "bench/bench_dir.h"
#include "cookie/cache.h"

namespace cachefs {

struct BenchCache {
  static constexpr char kVolume[] = "bench:/origin";
  // `what` names the directory.
  explicit BenchCache(const std::string& what) : dir(MakeBenchDir(what)) {
    CacheOptions options;
    options.directory = dir;
    cache = *Cache::Open(Env::Default(), options);
    volume = *cache->AcquireVolume(kVolume, "");
  }
  ~BenchCache() {
    cache->dispatcher()->Drain();
    cache->RelinquishVolume(volume);
    volume.reset();
    cache.reset();
    std::filesystem::remove_all(dir);
  }
  BenchCache(const BenchCache&) = delete;
  BenchCache& operator=(const BenchCache&) = delete;

  std::string dir;
  std::unique_ptr<Cache> cache;
  std::shared_ptr<Volume> volume;
};

}  // namespace cachefs

#endif  // CACHEFS_BENCH_BENCH_CACHE_H_
