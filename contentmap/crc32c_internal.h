// The CRC-32C implementations behind Crc32c(), exposed so tests can
// check each against the other. Internal to contentmap.

#ifndef CACHEFS_CONTENTMAP_CRC32C_INTERNAL_H_
#define CACHEFS_CONTENTMAP_CRC32C_INTERNAL_H_

#include <cstdint>
#include <string_view>

namespace cachefs::crc32c_internal {

// Table-driven, slicing-by-8; runs anywhere.
uint32_t Portable(std::string_view data, uint32_t crc);

// Whether this CPU has the SSE 4.2 crc32 instruction.
bool HardwareAvailable();

// The CRC-32C of A followed by B, from A's, B's and B's length.
uint32_t Combine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b);

// The crc32 instruction. REQUIRES: HardwareAvailable().
uint32_t Hardware(std::string_view data, uint32_t crc);

// Whether this CPU also has AVX-512 carry-less multiplication.
bool FoldedAvailable();

// Folding by carry-less multiplication, finished with the crc32
// instruction. REQUIRES: FoldedAvailable().
uint32_t Folded(std::string_view data, uint32_t crc);

}  // namespace cachefs::crc32c_internal

#endif  // CACHEFS_CONTENTMAP_CRC32C_INTERNAL_H_
