// Byte-level helpers for the contentmap on-disk formats: little-endian
// fixed-width integers and LEB128 varints, written to a std::string and read
// back through a bounds-checked Reader. Internal to contentmap.
//
// The formats are little-endian whatever the host.

#ifndef CACHEFS_CONTENTMAP_WIRE_H_
#define CACHEFS_CONTENTMAP_WIRE_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace cachefs::wire {

// A u64 needs at most 10 varint bytes: 9 full groups of 7 bits and 1 bit.
inline constexpr size_t kMaxVarintLength = 10;

inline void PutFixed(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out->push_back(static_cast<char>(value >> (8 * i)));
  }
}
inline void PutU8(std::string* out, uint8_t v) { PutFixed(out, v, 1); }
inline void PutU16(std::string* out, uint16_t v) { PutFixed(out, v, 2); }
inline void PutU32(std::string* out, uint32_t v) { PutFixed(out, v, 4); }
inline void PutU64(std::string* out, uint64_t v) { PutFixed(out, v, 8); }

inline uint64_t LoadFixed(const char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  return value;
}
inline void StoreFixed(char* p, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<char>(value >> (8 * i));
}

// The bulk paths (bitmaps, checksums) load and store whole words; on a
// little-endian host that is a plain memcpy.
inline uint64_t LoadU64(const char* p) {
  if constexpr (std::endian::native == std::endian::little) {
    uint64_t value;
    std::memcpy(&value, p, sizeof(value));
    return value;
  }
  return LoadFixed(p, 8);
}
inline void StoreU64(char* p, uint64_t value) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &value, sizeof(value));
    return;
  }
  StoreFixed(p, value, 8);
}

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads a byte string front to back. Every read either succeeds in full or
// fails without consuming anything, so a caller can report where it stopped.
class Reader {
 public:
  enum class VarintResult { kOk, kTruncated, kOverflow };

  explicit Reader(std::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

  bool ReadBytes(size_t n, std::string_view* bytes) {
    if (data_.size() < n) return false;
    *bytes = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }

  // A value that needs more than 64 bits (a 10th byte above 1, or an 11th
  // byte) is kOverflow, not silently wrapped.
  VarintResult ReadVarint(uint64_t* value) {
    uint64_t result = 0;
    for (size_t i = 0; i < kMaxVarintLength; ++i) {
      if (i >= data_.size()) return VarintResult::kTruncated;
      const uint64_t byte = static_cast<unsigned char>(data_[i]);
      if (i == kMaxVarintLength - 1 && byte > 1) return VarintResult::kOverflow;
      result |= (byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) {
        data_.remove_prefix(i + 1);
        *value = result;
        return VarintResult::kOk;
      }
    }
    return VarintResult::kOverflow;
  }

 private:
  std::string_view data_;
};

// Reads fixed-width fields and 16-bit-length strings front to back, for
// the snapshot formats; `ok` turns false at the first that is missing and
// stays false (the fields after it read as 0 and "").
struct FieldReader {
  Reader reader;
  bool ok = true;
  uint64_t Get(int bytes) {
    std::string_view b;
    if (!ok || !reader.ReadBytes(bytes, &b)) {
      ok = false;
      return 0;
    }
    return LoadFixed(b.data(), bytes);
  }
  std::string String16() {
    const uint64_t size = Get(2);
    std::string_view s;
    if (!ok || !reader.ReadBytes(size, &s)) {
      ok = false;
      return "";
    }
    return std::string(s);
  }
};

}  // namespace cachefs::wire

#endif  // CACHEFS_CONTENTMAP_WIRE_H_
