// CRC-32C (Castagnoli), the checksum of every record cachefs writes to disk.

#ifndef CACHEFS_CONTENTMAP_CRC32C_H_
#define CACHEFS_CONTENTMAP_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace cachefs {

// Extends `crc` (0 to start) with `data`.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace cachefs

#endif  // CACHEFS_CONTENTMAP_CRC32C_H_
