// ContentMap: which granules of one cache object hold data, 1 bit per
// granule (256 KiB by default), for objects of any size.
//
// The map is the only truth about presence: SEEK_DATA/SEEK_HOLE and FIEMAP
// are never consulted, because filesystems add or drop blocks of zeros at
// will. A granule's bit is set only after its data write completed.
//
// The last granule may be partial (object_size not a multiple of the
// granule); its bit covers the bytes up to object_size.
//
// Thread safety: none; the owner (a cookie's backing object) locks.

#ifndef CACHEFS_CONTENTMAP_CONTENT_MAP_H_
#define CACHEFS_CONTENTMAP_CONTENT_MAP_H_

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"

namespace cachefs {

inline constexpr uint32_t kDefaultGranuleShift = 18;  // 256 KiB
inline constexpr uint64_t kDefaultGranuleSize = uint64_t{1}
                                                << kDefaultGranuleShift;

class ContentMap {
 public:
  // A run of consecutive granules that are all present or all missing.
  struct Run {
    uint64_t first = 0;  // granule index
    uint64_t count = 0;
    bool present = false;
    bool operator==(const Run&) const = default;
  };

  explicit ContentMap(uint64_t object_size = 0,
                      uint32_t granule_shift = kDefaultGranuleShift);

  uint32_t granule_shift() const { return granule_shift_; }
  uint64_t granule_size() const { return uint64_t{1} << granule_shift_; }
  uint64_t object_size() const { return object_size_; }
  uint64_t num_granules() const { return num_granules_; }
  uint64_t granules_present() const { return present_; }
  bool empty() const { return present_ == 0; }
  bool complete() const { return present_ == num_granules_; }

  // Granule index holding byte `pos`.
  uint64_t GranuleOf(uint64_t pos) const { return pos >> granule_shift_; }

  bool IsPresent(uint64_t granule) const;
  // Whether every granule overlapping bytes [pos, pos + len) is present.
  // Bytes at or past object_size count as missing; len 0 is trivially true.
  bool RangePresent(uint64_t pos, uint64_t len) const;
  // Bytes of the object covered by present granules (the partial last
  // granule counts its real length).
  uint64_t BytesPresent() const;

  // Calls fn for each run of present or missing granules overlapping bytes
  // [pos, pos + len), clipped to the object. No allocation.
  void ForEachRun(uint64_t pos, uint64_t len,
                  absl::FunctionRef<void(const Run&)> fn) const;
  std::vector<Run> Runs(uint64_t pos, uint64_t len) const;
  // First present (or missing) granule at or after `from`, or num_granules().
  uint64_t NextPresent(uint64_t from) const;
  uint64_t NextMissing(uint64_t from) const;

  // Sets granules [first, first + count) clipped to the object.
  void MarkPresent(uint64_t first, uint64_t count);
  // Clears granules [first, first + count) clipped to the object.
  void Clear(uint64_t first, uint64_t count);
  // Clears every granule overlapping bytes [pos, pos + len).
  void ClearBytes(uint64_t pos, uint64_t len);
  void ClearAll();

  // Changes the object size. Granules past the new end are dropped; when
  // shrinking into the middle of a granule, that now-partial granule is
  // cleared too (its cached tail would be stale data beyond EOF).
  // When growing, a previously partial last granule is cleared (its bytes
  // beyond the old end were never cached).
  void Resize(uint64_t new_size);
  // The same, but a granule that is or becomes the partial last one stays
  // present: for a backing file whose bytes past the end are known to read
  // as zeros, as the origin's do after a truncation or extension.
  void ResizeKeepingPartial(uint64_t new_size);

  // Raw words for the codec: bit i of word i/64 is granule i.
  const std::vector<uint64_t>& words() const { return words_; }
  // Replaces the bits. REQUIRES: words.size() == (num_granules + 63) / 64 and
  // no bit set at or past num_granules().
  void SetWords(std::vector<uint64_t> words);

  size_t MemoryUsage() const;
  bool operator==(const ContentMap& other) const;

 private:
  uint64_t granule_shift_;
  uint64_t object_size_;
  uint64_t num_granules_;
  uint64_t present_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace cachefs

#endif  // CACHEFS_CONTENTMAP_CONTENT_MAP_H_
