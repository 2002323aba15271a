#include "contentmap/granule_checksums.h"

#include <algorithm>
#include <string_view>

#include "contentmap/crc32c.h"

namespace cachefs {

uint64_t GranuleBytes(const ContentMap& map, uint64_t index) {
  const uint64_t base = index << map.granule_shift();
  if (base >= map.object_size()) return 0;
  return std::min(map.granule_size(), map.object_size() - base);
}

std::vector<uint32_t> PackChecksums(const ContentMap& map,
                                    const std::vector<uint32_t>& per_granule) {
  std::vector<uint32_t> packed;
  packed.reserve(map.granules_present());
  for (uint64_t g = map.NextPresent(0); g < map.num_granules();
       g = map.NextPresent(g + 1)) {
    packed.push_back(g < per_granule.size() ? per_granule[g] : 0);
  }
  return packed;
}

std::vector<uint32_t> UnpackChecksums(const ContentMap& map,
                                      const std::vector<uint32_t>& packed) {
  std::vector<uint32_t> per_granule(map.num_granules(), 0);
  size_t i = 0;
  for (uint64_t g = map.NextPresent(0);
       g < map.num_granules() && i < packed.size();
       g = map.NextPresent(g + 1)) {
    per_granule[g] = packed[i++];
  }
  return per_granule;
}

uint32_t Crc32cExtendZeros(uint32_t crc, uint64_t n) {
  // Bounded by a granule in practice; the hardware CRC does 64 KiB of
  // zeros in a few microseconds.
  static constexpr char kZeros[64 * 1024] = {};
  while (n > 0) {
    const size_t step = std::min<uint64_t>(n, sizeof(kZeros));
    crc = Crc32c(std::string_view(kZeros, step), crc);
    n -= step;
  }
  return crc;
}

}  // namespace cachefs
