#include "contentmap/crc32c.h"

#include <array>
#include <cstddef>

#include "contentmap/crc32c_internal.h"
#include "contentmap/wire.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace cachefs {
namespace crc32c_internal {
namespace {

// The reflected Castagnoli polynomial 0x1EDC6F41.
constexpr uint32_t kPolynomial = 0x82F63B78;

// Slicing-by-8: table k maps a byte to its CRC contribution when followed by
// k more bytes, so eight table lookups advance the CRC by eight bytes.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ ((crc & 1) != 0 ? kPolynomial : 0);
    }
    t[0][i] = crc;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) {
      t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
  }
  return t;
}

constexpr Tables kTables = MakeTables();

// a(x) * b(x) modulo the polynomial, both reflected.
constexpr uint32_t MultiplyModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = uint32_t{1} << 31; m != 0; m >>= 1) {
    if ((a & m) != 0) product ^= b;
    b = (b & 1) != 0 ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

// x^(2^k) modulo the polynomial, for k < 64.
using Powers = std::array<uint32_t, 64>;
constexpr Powers MakePowers() {
  Powers powers{};
  uint32_t p = uint32_t{1} << 30;  // x^1
  for (uint32_t& power : powers) {
    power = p;
    p = MultiplyModP(p, p);
  }
  return powers;
}
constexpr Powers kPowers = MakePowers();

}  // namespace

uint32_t Combine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  // crc_a times x^(8 * length_b): the first part moved past the second.
  uint32_t shift = uint32_t{1} << 31;  // x^0
  for (unsigned k = 3; length_b != 0; length_b >>= 1, ++k) {
    if ((length_b & 1) != 0) shift = MultiplyModP(kPowers[k & 63], shift);
  }
  return MultiplyModP(shift, crc_a) ^ crc_b;
}

uint32_t Portable(std::string_view data, uint32_t crc) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  crc = ~crc;
  while (n >= 8) {
    const uint32_t lo = static_cast<uint32_t>(wire::LoadFixed(
                            reinterpret_cast<const char*>(p), 4)) ^
                        crc;
    const uint32_t hi = static_cast<uint32_t>(
        wire::LoadFixed(reinterpret_cast<const char*>(p + 4), 4));
    crc = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^
          kTables[5][(lo >> 16) & 0xff] ^ kTables[4][lo >> 24] ^
          kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
          kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ kTables[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

#if defined(__x86_64__)

bool HardwareAvailable() {
  // __builtin_cpu_init makes the check valid even when first called from a
  // static initializer, before the runtime would have run it.
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return available;
}

__attribute__((target("sse4.2"))) uint32_t Hardware(std::string_view data,
                                                    uint32_t crc) {
  const char* p = data.data();
  size_t n = data.size();
  // The instruction takes 3 cycles and can start one a cycle: three
  // independent stripes, combined at the end, run about three times as
  // fast as one chain (a granule is checked on every cache read).
  constexpr size_t kMinStripe = 4096;
  if (n >= 3 * kMinStripe) {
    const size_t stripe = (n / 3) & ~size_t{7};
    uint64_t c0 = static_cast<uint32_t>(~crc);
    uint64_t c1 = 0xffffffff;
    uint64_t c2 = 0xffffffff;
    for (size_t i = 0; i < stripe; i += 8) {
      c0 = _mm_crc32_u64(c0, wire::LoadU64(p + i));
      c1 = _mm_crc32_u64(c1, wire::LoadU64(p + stripe + i));
      c2 = _mm_crc32_u64(c2, wire::LoadU64(p + 2 * stripe + i));
    }
    crc = Combine(Combine(~static_cast<uint32_t>(c0),
                          ~static_cast<uint32_t>(c1), stripe),
                  ~static_cast<uint32_t>(c2), stripe);
    p += 3 * stripe;
    n -= 3 * stripe;
  }
  uint64_t c = static_cast<uint32_t>(~crc);
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, wire::LoadU64(p));
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) {
    c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p));
  }
  return ~c32;
}

#else

bool HardwareAvailable() { return false; }
uint32_t Hardware(std::string_view data, uint32_t crc) {
  return Portable(data, crc);
}

#endif

}  // namespace crc32c_internal

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  return crc32c_internal::HardwareAvailable()
             ? crc32c_internal::Hardware(data, crc)
             : crc32c_internal::Portable(data, crc);
}

}  // namespace cachefs
