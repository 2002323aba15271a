// Granule checksums: a CRC-32C per present granule of an object, over the
// granule's bytes up to the object size (so the partial last granule is
// summed without the zero padding its block-aligned write adds).
//
// In memory an object keeps one entry per granule, indexed by granule; a
// record keeps only the present granules' entries, in granule order (see
// object_record.h). These convert between the two.

#ifndef CACHEFS_CONTENTMAP_GRANULE_CHECKSUMS_H_
#define CACHEFS_CONTENTMAP_GRANULE_CHECKSUMS_H_

#include <cstdint>
#include <vector>

#include "contentmap/content_map.h"

namespace cachefs {

// The bytes granule `index` of `map` holds: a whole granule, or the tail.
uint64_t GranuleBytes(const ContentMap& map, uint64_t index);

// The entries of `map`'s present granules, in order.
std::vector<uint32_t> PackChecksums(const ContentMap& map,
                                    const std::vector<uint32_t>& per_granule);
// One entry per granule of `map` from `packed` (one per present granule;
// REQUIRES: packed.size() == map.granules_present()).
std::vector<uint32_t> UnpackChecksums(const ContentMap& map,
                                      const std::vector<uint32_t>& packed);

// The CRC-32C `crc` extended by `n` zero bytes: what a granule's checksum
// becomes when the object grows past its old end and the bytes in
// between read as zeros.
uint32_t Crc32cExtendZeros(uint32_t crc, uint64_t n);

}  // namespace cachefs

#endif  // CACHEFS_CONTENTMAP_GRANULE_CHECKSUMS_H_
