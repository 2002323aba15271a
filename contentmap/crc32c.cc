#include "contentmap/crc32c.h"

#include <array>
#include <cstddef>

#include "contentmap/crc32c_internal.h"
#include "contentmap/wire.h"

#if defined(__x86_64__)
#include <immintrin.h>
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

// x^e modulo the polynomial, reflected.
constexpr uint32_t XPowerModP(uint64_t e) {
  uint32_t power = uint32_t{1} << 31;  // x^0
  for (unsigned k = 0; e != 0; e >>= 1, ++k) {
    if ((e & 1) != 0) power = MultiplyModP(kPowers[k & 63], power);
  }
  return power;
}

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

bool FoldedAvailable() {
  static const bool available = [] {
    __builtin_cpu_init();
    return HardwareAvailable() && __builtin_cpu_supports("avx512f") != 0 &&
           __builtin_cpu_supports("vpclmulqdq") != 0;
  }();
  return available;
}

namespace {

// The constants that move a 128-bit lane of reflected data `bits` further
// along the message: its low quadword is multiplied by x^(bits+31), its
// high one by x^(bits-33) (a reflected carry-less product comes out one
// bit short, and each constant sits in the low half of its quadword, a
// factor x^32).
__attribute__((target("sse4.2,pclmul"))) __m128i FoldConstants(
    uint64_t bits) {
  return _mm_set_epi64x(XPowerModP(bits - 33), XPowerModP(bits + 31));
}

// The same in each of the four lanes.
__attribute__((target("avx512f"))) __m512i FoldConstants512(uint64_t bits) {
  const int64_t lo = XPowerModP(bits + 31);
  const int64_t hi = XPowerModP(bits - 33);
  return _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
}

__attribute__((target("avx512f,avx512vl,vpclmulqdq"))) __m512i Fold512(
    __m512i x, __m512i k, __m512i next) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                   _mm512_clmulepi64_epi128(x, k, 0x11), next,
                                   0x96);
}

__attribute__((target("sse4.2,pclmul"))) __m128i Fold128(__m128i x,
                                                         __m128i k) {
  return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
                       _mm_clmulepi64_si128(x, k, 0x11));
}

}  // namespace

__attribute__((target("sse4.2,pclmul,avx512f,avx512vl,vpclmulqdq")))
uint32_t Folded(std::string_view data, uint32_t crc) {
  // Four 512-bit accumulators of four 128-bit lanes each take 256 bytes a
  // step; every lane is moved 256 bytes along by carry-less multiplication
  // and the next data added, which keeps the message's value modulo the
  // polynomial. The lanes are folded into one at the end, and the crc32
  // instruction finishes from its 16 bytes: about 4 times the instruction
  // alone, which a granule checked on every cache read is worth.
  constexpr size_t kStep = 256;
  if (data.size() < 2 * kStep) return Hardware(data, crc);
  static const __m512i k_step = FoldConstants512(kStep * 8);
  static const __m512i k_zmm = FoldConstants512(64 * 8);
  static const __m128i k_48 = FoldConstants(48 * 8);
  static const __m128i k_32 = FoldConstants(32 * 8);
  static const __m128i k_16 = FoldConstants(16 * 8);
  const char* p = data.data();
  size_t n = data.size();
  // The running CRC enters as the first 32 bits of the message.
  __m512i x0 = _mm512_xor_si512(
      _mm512_loadu_si512(p),
      _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, static_cast<uint32_t>(~crc)));
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  p += kStep;
  n -= kStep;
  for (; n >= kStep; p += kStep, n -= kStep) {
    x0 = Fold512(x0, k_step, _mm512_loadu_si512(p));
    x1 = Fold512(x1, k_step, _mm512_loadu_si512(p + 64));
    x2 = Fold512(x2, k_step, _mm512_loadu_si512(p + 128));
    x3 = Fold512(x3, k_step, _mm512_loadu_si512(p + 192));
  }
  x1 = Fold512(x0, k_zmm, x1);
  x2 = Fold512(x1, k_zmm, x2);
  x3 = Fold512(x2, k_zmm, x3);
  alignas(64) __m128i lanes[4];
  _mm512_store_si512(lanes, x3);
  __m128i x = _mm_xor_si128(
      _mm_xor_si128(Fold128(lanes[0], k_48), Fold128(lanes[1], k_32)),
      _mm_xor_si128(Fold128(lanes[2], k_16), lanes[3]));
  for (; n >= 16; p += 16, n -= 16) {
    x = _mm_xor_si128(Fold128(x, k_16),
                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  uint64_t c = _mm_crc32_u64(0, static_cast<uint64_t>(_mm_cvtsi128_si64(x)));
  c = _mm_crc32_u64(c, static_cast<uint64_t>(_mm_extract_epi64(x, 1)));
  // What is left, under 16 bytes, as the instruction alone does it.
  return Hardware(std::string_view(p, n), ~static_cast<uint32_t>(c));
}

#else

bool HardwareAvailable() { return false; }
uint32_t Hardware(std::string_view data, uint32_t crc) {
  return Portable(data, crc);
}
bool FoldedAvailable() { return false; }
uint32_t Folded(std::string_view data, uint32_t crc) {
  return Portable(data, crc);
}

#endif

}  // namespace crc32c_internal

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  if (crc32c_internal::FoldedAvailable()) {
    return crc32c_internal::Folded(data, crc);
  }
  return crc32c_internal::HardwareAvailable()
             ? crc32c_internal::Hardware(data, crc)
             : crc32c_internal::Portable(data, crc);
}

}  // namespace cachefs
