// Helpers shared by the map codec and the record codec. Internal to
// contentmap; the public codec is in object_record.h.

#ifndef CACHEFS_CONTENTMAP_MAP_CODEC_H_
#define CACHEFS_CONTENTMAP_MAP_CODEC_H_

#include <cstdint>

#include "absl/status/status.h"

namespace cachefs {

// OK when a map of `object_size` bytes in granules of 2^granule_shift bytes
// is one the format allows (see object_record.h); otherwise a kDataLoss
// error saying which bound it breaks. Checked before anything is allocated.
absl::Status CheckGeometry(uint64_t object_size, uint32_t granule_shift);

}  // namespace cachefs

#endif  // CACHEFS_CONTENTMAP_MAP_CODEC_H_
