// Records for the record store tests.

#ifndef CACHEFS_TESTS_CONTENTMAP_RECORD_STORE_TEST_UTIL_H_
#define CACHEFS_TESTS_CONTENTMAP_RECORD_STORE_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <string>

#include "contentmap/object_record.h"

namespace cachefs {

// A record for an object of `size` bytes with `granules` granules marked
// present at places drawn from `seed` (fewer if draws collide).
inline ObjectRecord SparseRecord(uint64_t size, int granules, uint64_t seed) {
  ObjectRecord record;
  record.volume_key = "sshfs:host:/home";
  record.file_key = "src/file-" + std::to_string(seed);
  record.aux = "size+mtime+ctime " + std::to_string(seed);
  record.map = ContentMap(size);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < granules && record.map.num_granules() > 0; ++i) {
    record.map.MarkPresent(rng() % record.map.num_granules(), 1);
  }
  return record;
}

}  // namespace cachefs

#endif  // CACHEFS_TESTS_CONTENTMAP_RECORD_STORE_TEST_UTIL_H_
