// Synthetic traces for the cull tests, built in memory with keys already
// dense, as the trace readers produce them.

#ifndef CACHEFS_TESTS_CULL_CULL_TEST_UTIL_H_
#define CACHEFS_TESTS_CULL_CULL_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cull/trace.h"

namespace cachefs::testing {

// A trace of the given keys, each `bytes` long.
inline Trace UnitTrace(const std::vector<uint32_t>& keys, uint64_t bytes = 1) {
  Trace t;
  for (uint32_t k : keys) {
    t.accesses.push_back({k, bytes});
    if (k + 1 > t.num_keys) t.num_keys = k + 1;
  }
  t.footprint_bytes = t.num_keys * bytes;
  t.source_requests = t.accesses.size();
  return t;
}

// Keys 0..n-1 in order, `rounds` times.
inline Trace LoopTrace(uint32_t n, int rounds) {
  std::vector<uint32_t> keys;
  for (int r = 0; r < rounds; ++r) {
    for (uint32_t k = 0; k < n; ++k) keys.push_back(k);
  }
  return UnitTrace(keys);
}

// `rounds` times: each of `hot` keys twice in a row (0,0,1,1,...), then a
// scan of `scan` keys never seen before or after.
inline Trace HotSetWithScansTrace(uint32_t hot, uint32_t scan, int rounds) {
  std::vector<uint32_t> keys;
  uint32_t next_fresh = hot;
  for (int r = 0; r < rounds; ++r) {
    for (uint32_t k = 0; k < hot; ++k) {
      keys.push_back(k);
      keys.push_back(k);
    }
    for (uint32_t i = 0; i < scan; ++i) keys.push_back(next_fresh++);
  }
  return UnitTrace(keys);
}

// `n` accesses to `num_keys` keys drawn from a Zipf(alpha) distribution
// (key 0 the most popular) with a fixed seed, so the trace is the same on
// every run and machine (mt19937_64 is fully specified; the inverse CDF
// is computed here rather than by a library distribution).
inline Trace ZipfTrace(uint32_t num_keys, double alpha, uint64_t n,
                       uint64_t seed) {
  std::vector<double> cdf(num_keys);
  double sum = 0;
  for (uint32_t k = 0; k < num_keys; ++k) {
    sum += 1.0 / std::pow(k + 1.0, alpha);
    cdf[k] = sum;
  }
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> keys;
  keys.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    // 53 random bits as a uniform double in [0, 1).
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
    uint32_t lo = 0, hi = num_keys - 1;
    while (lo < hi) {
      const uint32_t mid = (lo + hi) / 2;
      if (cdf[mid] > u)
        hi = mid;
      else
        lo = mid + 1;
    }
    keys.push_back(lo);
  }
  return UnitTrace(keys);
}

}  // namespace cachefs::testing

#endif  // CACHEFS_TESTS_CULL_CULL_TEST_UTIL_H_
