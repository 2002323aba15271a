#include "contentmap/content_map.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <utility>

namespace cachefs {
namespace {

// How the bitmap is walked: bit i of word i / 64 is granule i. A granule
// range [first, end) touches words first / 64 through (end - 1) / 64; every
// operation visits those words once with the mask of the range's bits in
// each, so a full word costs one load, one compare or popcount, one store.
// Bits at or past num_granules are always zero, which lets the scans and
// the popcount-based present count ignore the end of the last word.

constexpr uint64_t kAllOnes = ~uint64_t{0};

uint64_t GranuleCount(uint64_t size, uint64_t shift) {
  const uint64_t mask = (uint64_t{1} << shift) - 1;
  return (size >> shift) + ((size & mask) != 0 ? 1 : 0);
}

size_t WordCount(uint64_t granules) {
  return static_cast<size_t>(granules / 64 + (granules % 64 != 0 ? 1 : 0));
}

// Bits [lo, hi) of a word. REQUIRES: lo < hi <= 64.
uint64_t BitRange(unsigned lo, unsigned hi) {
  const uint64_t upper = hi == 64 ? kAllOnes : (uint64_t{1} << hi) - 1;
  return upper & (kAllOnes << lo);
}

// Calls fn(word_index, mask) for each word overlapping granules
// [first, end), where mask selects the range's bits in that word. Stops
// early, returning false, when fn returns false. REQUIRES: first < end.
template <typename Fn>
bool ForEachWordMask(uint64_t first, uint64_t end, Fn fn) {
  const uint64_t first_word = first / 64;
  const uint64_t last_word = (end - 1) / 64;
  const uint64_t head = kAllOnes << (first % 64);
  const uint64_t tail = BitRange(0, (end - 1) % 64 + 1);
  if (first_word == last_word) return fn(first_word, head & tail);
  if (!fn(first_word, head)) return false;
  // Whole words, with a constant mask the compiler folds into fn.
  for (uint64_t w = first_word + 1; w < last_word; ++w) {
    if (!fn(w, kAllOnes)) return false;
  }
  return fn(last_word, tail);
}

// std::popcount without a popcnt instruction (the Debian baseline target
// has none) costs about a dozen operations; whole words that are all zeros
// or all ones, the common case when marking or clearing long ranges, skip it.
int PopCount(uint64_t x) {
  if (x == 0) return 0;
  if (x == kAllOnes) return 64;
  return std::popcount(x);
}

// Bits set in `words`, for SetWords. Whole bitmaps are counted with the
// popcnt instruction when the CPU has it: a decoded 1M-granule bitmap is
// 16K words, most of them neither empty nor full.
#if defined(__x86_64__)
__attribute__((target("popcnt"))) uint64_t CountBitsPopcnt(
    const std::vector<uint64_t>& words) {
  uint64_t count = 0;
  for (uint64_t w : words) count += __builtin_popcountll(w);
  return count;
}
#endif

uint64_t CountBits(const std::vector<uint64_t>& words) {
#if defined(__x86_64__)
  static const bool has_popcnt = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt") != 0;
  }();
  if (has_popcnt) return CountBitsPopcnt(words);
#endif
  uint64_t count = 0;
  for (uint64_t w : words) count += PopCount(w);
  return count;
}

// First granule in [from, limit) whose bit equals `value`, or limit.
// REQUIRES: limit <= 64 * words.size().
uint64_t FindBit(const std::vector<uint64_t>& words, uint64_t from,
                 uint64_t limit, bool value) {
  if (from >= limit) return limit;
  const uint64_t flip = value ? 0 : kAllOnes;
  const uint64_t last_word = (limit - 1) / 64;
  uint64_t w = from / 64;
  uint64_t bits = (words[w] ^ flip) & (kAllOnes << (from % 64));
  while (bits == 0) {
    if (++w > last_word) return limit;
    bits = words[w] ^ flip;
  }
  return std::min(limit, w * 64 + std::countr_zero(bits));
}

}  // namespace

ContentMap::ContentMap(uint64_t object_size, uint32_t granule_shift)
    : granule_shift_(granule_shift),
      object_size_(object_size),
      num_granules_(GranuleCount(object_size, granule_shift)),
      words_(WordCount(num_granules_), 0) {
  assert(granule_shift < 64);
}

bool ContentMap::IsPresent(uint64_t granule) const {
  if (granule >= num_granules_) return false;
  return (words_[granule / 64] >> (granule % 64)) & 1;
}

bool ContentMap::RangePresent(uint64_t pos, uint64_t len) const {
  if (len == 0) return true;
  if (pos >= object_size_ || len > object_size_ - pos) return false;
  return ForEachWordMask(
      GranuleOf(pos), GranuleOf(pos + len - 1) + 1,
      [&](uint64_t w, uint64_t mask) { return (words_[w] & mask) == mask; });
}

uint64_t ContentMap::BytesPresent() const {
  if (present_ == 0) return 0;
  const uint64_t tail = object_size_ & (granule_size() - 1);
  // A present partial last granule holds only `tail` bytes. Counting it
  // apart also keeps the shift below from overflowing for objects that end
  // within one granule of 2^64.
  if (tail != 0 && IsPresent(num_granules_ - 1)) {
    return ((present_ - 1) << granule_shift_) + tail;
  }
  return present_ << granule_shift_;
}

void ContentMap::ForEachRun(uint64_t pos, uint64_t len,
                            absl::FunctionRef<void(const Run&)> fn) const {
  if (len == 0 || pos >= object_size_) return;
  const uint64_t end_byte = len > object_size_ - pos ? object_size_ : pos + len;
  const uint64_t end = GranuleOf(end_byte - 1) + 1;
  uint64_t g = GranuleOf(pos);
  while (g < end) {
    const bool present = IsPresent(g);
    const uint64_t next = FindBit(words_, g, end, !present);
    fn(Run{g, next - g, present});
    g = next;
  }
}

std::vector<ContentMap::Run> ContentMap::Runs(uint64_t pos,
                                              uint64_t len) const {
  std::vector<Run> runs;
  ForEachRun(pos, len, [&](const Run& run) { runs.push_back(run); });
  return runs;
}

uint64_t ContentMap::NextPresent(uint64_t from) const {
  return FindBit(words_, from, num_granules_, true);
}

uint64_t ContentMap::NextMissing(uint64_t from) const {
  return FindBit(words_, from, num_granules_, false);
}

void ContentMap::MarkPresent(uint64_t first, uint64_t count) {
  if (first >= num_granules_ || count == 0) return;
  const uint64_t end = first + std::min(count, num_granules_ - first);
  ForEachWordMask(first, end, [&](uint64_t w, uint64_t mask) {
    present_ += PopCount(mask & ~words_[w]);
    words_[w] |= mask;
    return true;
  });
}

void ContentMap::Clear(uint64_t first, uint64_t count) {
  if (first >= num_granules_ || count == 0) return;
  const uint64_t end = first + std::min(count, num_granules_ - first);
  ForEachWordMask(first, end, [&](uint64_t w, uint64_t mask) {
    present_ -= PopCount(mask & words_[w]);
    words_[w] &= ~mask;
    return true;
  });
}

void ContentMap::ClearBytes(uint64_t pos, uint64_t len) {
  if (len == 0 || pos >= object_size_) return;
  // Saturate instead of wrapping for ranges that run past 2^64.
  const uint64_t last_byte =
      len - 1 > kAllOnes - pos ? kAllOnes : pos + len - 1;
  const uint64_t first = GranuleOf(pos);
  Clear(first, GranuleOf(last_byte) - first + 1);
}

void ContentMap::ClearAll() {
  std::fill(words_.begin(), words_.end(), 0);
  present_ = 0;
}

void ContentMap::Resize(uint64_t new_size) {
  if (new_size == object_size_) return;
  const uint64_t mask = granule_size() - 1;
  const uint64_t new_count = GranuleCount(new_size, granule_shift_);
  if (new_size < object_size_) {
    // Drop what lies past the new end, and a granule cut in two.
    const uint64_t keep = (new_size & mask) != 0 ? new_count - 1 : new_count;
    Clear(keep, num_granules_ - keep);
  } else if ((object_size_ & mask) != 0) {
    // The old partial last granule never held the bytes now inside it.
    Clear(num_granules_ - 1, 1);
  }
  const size_t old_words = words_.size();
  words_.resize(WordCount(new_count), 0);
  if (words_.size() < old_words / 2) words_.shrink_to_fit();
  num_granules_ = new_count;
  object_size_ = new_size;
}

void ContentMap::ResizeKeepingPartial(uint64_t new_size) {
  if (new_size == object_size_) return;
  const uint64_t new_count = GranuleCount(new_size, granule_shift_);
  if (new_count < num_granules_) Clear(new_count, num_granules_ - new_count);
  const size_t old_words = words_.size();
  words_.resize(WordCount(new_count), 0);
  if (words_.size() < old_words / 2) words_.shrink_to_fit();
  num_granules_ = new_count;
  object_size_ = new_size;
}

void ContentMap::SetWords(std::vector<uint64_t> words) {
  assert(words.size() == words_.size());
  words_ = std::move(words);
  // Enforce the tail invariant even when asserts are off: a stray bit past
  // the end would be counted present but could never be cleared.
  if (num_granules_ % 64 != 0 && !words_.empty()) {
    words_.back() &= BitRange(0, num_granules_ % 64);
  }
  present_ = CountBits(words_);
}

size_t ContentMap::MemoryUsage() const {
  return sizeof(*this) + words_.capacity() * sizeof(uint64_t);
}

bool ContentMap::operator==(const ContentMap& other) const {
  return granule_shift_ == other.granule_shift_ &&
         object_size_ == other.object_size_ && present_ == other.present_ &&
         words_ == other.words_;
}

}  // namespace cachefs
