// Content map queries, updates and codec on 1M-granule maps (a 256 GiB
// object at 256 KiB granules). Maps are built before the timed loop.

#include <cstdint>
#include <random>
#include <string>

#include "benchmark/benchmark.h"
#include "contentmap/content_map.h"
#include "contentmap/crc32c.h"
#include "contentmap/crc32c_internal.h"
#include "contentmap/object_record.h"

namespace cachefs {
namespace {

constexpr uint64_t kGranules = uint64_t{1} << 20;
constexpr uint64_t kG = kDefaultGranuleSize;
constexpr uint64_t kObjectSize = kGranules * kG;

enum Shape : int64_t { kEmpty, kComplete, kPrefix, kSparse, kScattered };

const char* ShapeName(int64_t shape) {
  switch (shape) {
    case kEmpty:
      return "empty";
    case kComplete:
      return "complete";
    case kPrefix:
      return "prefix";
    case kSparse:
      return "sparse_1k_runs";
    default:
      return "scattered_half";
  }
}

// kSparse: 1000 random runs of 1-16 granules (encodes as runs).
// kScattered: each granule present with probability 1/2 (as a bitmap).
ContentMap MakeMap(int64_t shape) {
  ContentMap map(kObjectSize);
  std::mt19937_64 rng(1);
  switch (shape) {
    case kEmpty:
      break;
    case kComplete:
      map.MarkPresent(0, kGranules);
      break;
    case kPrefix:
      map.MarkPresent(0, kGranules / 3);
      break;
    case kSparse:
      for (int i = 0; i < 1000; ++i) {
        map.MarkPresent(rng() % kGranules, 1 + rng() % 16);
      }
      break;
    default:
      for (uint64_t g = 0; g < kGranules; ++g) {
        if (rng() & 1) map.MarkPresent(g, 1);
      }
      break;
  }
  return map;
}

// RangePresent on a complete map (the worst case: no early exit) over
// ranges of state.range(0) granules.
// The checksum of one granule, as every cache read checks it, by each
// implementation this CPU has: 0 folding with AVX-512 carry-less
// multiplication (what Crc32c uses where it can), 1 the crc32 instruction
// in three stripes, 2 the portable tables.
void BM_GranuleChecksum(benchmark::State& state) {
  std::string granule(kG, '\0');
  std::mt19937 rng(3);
  for (char& c : granule) c = static_cast<char>(rng());
  const int64_t which = state.range(0);
  if ((which == 0 && !crc32c_internal::FoldedAvailable()) ||
      (which == 1 && !crc32c_internal::HardwareAvailable())) {
    state.SkipWithError("not on this CPU");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        which == 0   ? crc32c_internal::Folded(granule, 0)
        : which == 1 ? crc32c_internal::Hardware(granule, 0)
                     : crc32c_internal::Portable(granule, 0));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kG);
  state.SetLabel(which == 0 ? "folded" : which == 1 ? "crc32 instruction"
                                                    : "portable");
}
BENCHMARK(BM_GranuleChecksum)->Arg(0)->Arg(1)->Arg(2);

void BM_RangePresent(benchmark::State& state) {
  const ContentMap map = MakeMap(kComplete);
  const uint64_t len = state.range(0) * kG;
  std::mt19937_64 rng(2);
  for (auto _ : state) {
    const uint64_t pos = rng() % (kObjectSize - len + 1);
    benchmark::DoNotOptimize(map.RangePresent(pos, len));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RangePresent)->Arg(4)->Arg(64)->Arg(kGranules);

void BM_ForEachRunWholeMap(benchmark::State& state) {
  const ContentMap map = MakeMap(state.range(0));
  uint64_t runs = 0;
  for (auto _ : state) {
    runs = 0;
    map.ForEachRun(0, kObjectSize, [&](const ContentMap::Run& run) {
      benchmark::DoNotOptimize(run);
      ++runs;
    });
  }
  state.SetLabel(ShapeName(state.range(0)));
  state.counters["runs"] = static_cast<double>(runs);
  state.SetItemsProcessed(state.iterations() * kGranules);
}
BENCHMARK(BM_ForEachRunWholeMap)->Arg(kComplete)->Arg(kSparse);

void BM_MarkPresent(benchmark::State& state) {
  ContentMap map = MakeMap(kEmpty);
  const uint64_t count = state.range(0);
  std::mt19937_64 rng(3);
  for (auto _ : state) {
    map.MarkPresent(rng() % (kGranules - count + 1), count);
  }
  benchmark::DoNotOptimize(map.granules_present());
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_MarkPresent)->Arg(1)->Arg(64)->Arg(kGranules);

void BM_Clear(benchmark::State& state) {
  ContentMap map = MakeMap(kComplete);
  const uint64_t count = state.range(0);
  std::mt19937_64 rng(4);
  for (auto _ : state) {
    map.Clear(rng() % (kGranules - count + 1), count);
  }
  benchmark::DoNotOptimize(map.granules_present());
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_Clear)->Arg(1)->Arg(64)->Arg(kGranules);

void BM_BytesPresent(benchmark::State& state) {
  ContentMap map(kObjectSize - 1000);  // with a partial last granule
  map.MarkPresent(0, kGranules);
  for (auto _ : state) benchmark::DoNotOptimize(map.BytesPresent());
}
BENCHMARK(BM_BytesPresent);

ObjectRecord MakeRecord(int64_t shape) {
  ObjectRecord record;
  record.volume_key = "nfs:server:/export";
  record.file_key = "some/dir/a-file-name";
  record.aux = std::string(32, 'a');
  record.map = MakeMap(shape);
  return record;
}

void BM_EncodeRecord(benchmark::State& state) {
  const ObjectRecord record = MakeRecord(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string encoded = EncodeRecord(record);
    bytes = encoded.size();
    benchmark::DoNotOptimize(encoded.data());
  }
  state.SetLabel(ShapeName(state.range(0)));
  state.counters["record_bytes"] = static_cast<double>(bytes);
}

void BM_DecodeRecord(benchmark::State& state) {
  const std::string encoded = EncodeRecord(MakeRecord(state.range(0)));
  for (auto _ : state) {
    auto decoded = DecodeRecord(encoded);
    if (!decoded.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(decoded);
  }
  state.SetLabel(ShapeName(state.range(0)));
  state.counters["record_bytes"] = static_cast<double>(encoded.size());
  state.SetBytesProcessed(state.iterations() * encoded.size());
}

BENCHMARK(BM_EncodeRecord)->DenseRange(kEmpty, kScattered);
BENCHMARK(BM_DecodeRecord)->DenseRange(kEmpty, kScattered);

// Memory of an empty map, reported as counters (the timing is not the
// point): one bit per granule plus the object.
void BM_MemoryUsage(benchmark::State& state) {
  for (auto _ : state) {
    ContentMap gib(uint64_t{1} << 30);
    ContentMap tib(uint64_t{1} << 40);
    state.counters["bytes_1GiB_object"] =
        static_cast<double>(gib.MemoryUsage());
    state.counters["bytes_1TiB_object"] =
        static_cast<double>(tib.MemoryUsage());
  }
}
BENCHMARK(BM_MemoryUsage)->Iterations(1);

}  // namespace
}  // namespace cachefs

BENCHMARK_MAIN();
