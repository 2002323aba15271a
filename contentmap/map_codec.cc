// EncodeMap and DecodeMap: the map payloads of object_record.h.
//
// Decoding trusts nothing: every length, count and run is checked against
// the object's granule count before it is used, the payload is validated in
// full before the map is allocated, and any mismatch is a kDataLoss error
// naming the problem.

#include "contentmap/map_codec.h"

#include <bit>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "contentmap/object_record.h"
#include "contentmap/wire.h"

namespace cachefs {
namespace {

using wire::Reader;

uint64_t GranuleCount(uint64_t size, uint32_t shift) {
  const uint64_t mask = (uint64_t{1} << shift) - 1;
  return (size >> shift) + ((size & mask) != 0 ? 1 : 0);
}

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt content map: ", what));
}

absl::Status VarintError(Reader::VarintResult result, absl::string_view what) {
  return Corrupt(absl::StrCat(what, result == Reader::VarintResult::kTruncated
                                        ? " varint truncated"
                                        : " varint overflows 64 bits"));
}

// Number of runs of present granules: the 0-to-1 transitions, counted a
// word at a time with the previous word's top bit carried in.
uint64_t CountRuns(const ContentMap& map) {
  uint64_t runs = 0;
  uint64_t carry = 0;
  for (uint64_t w : map.words()) {
    const uint64_t starts = w & ~((w << 1) | carry);
    if (starts != 0) runs += std::popcount(starts);
    carry = w >> 63;
  }
  return runs;
}

// Appends the kRuns payload of `map` to `out`. Gives up, returning false,
// once the payload reaches `limit` bytes (a bitmap would be no larger).
bool EncodeRuns(const ContentMap& map, size_t limit, std::string* out) {
  const uint64_t n = map.num_granules();
  uint64_t prev_end = 0;
  for (uint64_t g = map.NextPresent(0); g < n; g = map.NextPresent(prev_end)) {
    const uint64_t end = map.NextMissing(g);
    wire::PutVarint(out, g - prev_end);
    wire::PutVarint(out, end - g);
    if (out->size() >= limit) return false;
    prev_end = end;
  }
  return true;
}

std::string EncodeBitmap(const ContentMap& map) {
  std::string out(map.words().size() * 8, '\0');
  char* p = out.data();
  for (uint64_t word : map.words()) {
    wire::StoreU64(p, word);
    p += 8;
  }
  return out;
}

absl::StatusOr<uint64_t> DecodePrefix(std::string_view payload,
                                      uint64_t granules) {
  Reader reader(payload);
  uint64_t n = 0;
  if (auto r = reader.ReadVarint(&n); r != Reader::VarintResult::kOk) {
    return VarintError(r, "prefix length");
  }
  if (!reader.empty()) {
    return Corrupt(absl::StrCat(reader.remaining(),
                                " trailing bytes after the prefix length"));
  }
  if (n > granules) {
    return Corrupt(
        absl::StrCat("prefix of ", n, " granules in an object of ", granules));
  }
  return n;
}

// Parses a kRuns payload, calling fn(first, count) for each present run
// once the run is known to be valid.
absl::Status ParseRuns(std::string_view payload, uint64_t granules,
                       absl::FunctionRef<void(uint64_t, uint64_t)> fn) {
  Reader reader(payload);
  uint64_t pos = 0;
  for (uint64_t index = 0; !reader.empty(); ++index) {
    uint64_t gap = 0;
    uint64_t length = 0;
    if (auto r = reader.ReadVarint(&gap); r != Reader::VarintResult::kOk) {
      return VarintError(r, absl::StrCat("run ", index, " gap"));
    }
    if (auto r = reader.ReadVarint(&length); r != Reader::VarintResult::kOk) {
      return VarintError(r, absl::StrCat("run ", index, " length"));
    }
    if (length == 0) return Corrupt(absl::StrCat("run ", index, " is empty"));
    if (gap == 0 && index > 0) {
      return Corrupt(absl::StrCat("run ", index, " touches the run before it"));
    }
    // Subtractions, not additions, so huge values cannot wrap around.
    if (gap > granules - pos || length > granules - pos - gap) {
      return Corrupt(absl::StrCat("run ", index, " (gap ", gap, ", length ",
                                  length, ") ends past granule ", granules));
    }
    fn(pos + gap, length);
    pos += gap + length;
  }
  return absl::OkStatus();
}

absl::Status CheckBitmap(std::string_view payload, uint64_t granules) {
  const uint64_t words = granules / 64 + (granules % 64 != 0 ? 1 : 0);
  if (payload.size() != words * 8) {
    return Corrupt(absl::StrCat("bitmap of ", payload.size(), " bytes for ",
                                granules, " granules (needs ", words * 8, ")"));
  }
  if (granules % 64 != 0 &&
      (wire::LoadFixed(payload.data() + 8 * (words - 1), 8) >>
       (granules % 64)) != 0) {
    return Corrupt(absl::StrCat("bitmap has bits set past granule ", granules));
  }
  return absl::OkStatus();
}

absl::Status ExpectNoPayload(std::string_view payload, absl::string_view what) {
  if (payload.empty()) return absl::OkStatus();
  return Corrupt(absl::StrCat(what, " map with ", payload.size(),
                              " payload bytes (expected none)"));
}

// Sets the bits of a payload that passed validation.
void FillMap(MapEncoding encoding, std::string_view payload, ContentMap* map) {
  switch (encoding) {
    case MapEncoding::kComplete:
      map->MarkPresent(0, map->num_granules());
      break;
    case MapEncoding::kPrefix:
      map->MarkPresent(0, *DecodePrefix(payload, map->num_granules()));
      break;
    case MapEncoding::kRuns:
      ParseRuns(payload, map->num_granules(),
                [&](uint64_t first, uint64_t count) {
                  map->MarkPresent(first, count);
                })
          .IgnoreError();
      break;
    case MapEncoding::kBitmap: {
      std::vector<uint64_t> words(map->words().size());
      for (size_t i = 0; i < words.size(); ++i) {
        words[i] = wire::LoadU64(payload.data() + 8 * i);
      }
      map->SetWords(std::move(words));
      break;
    }
    default:
      break;
  }
}

}  // namespace

absl::Status CheckGeometry(uint64_t object_size, uint32_t granule_shift) {
  if (granule_shift < kMinGranuleShift || granule_shift > kMaxGranuleShift) {
    return absl::DataLossError(absl::StrCat("bad granule shift ", granule_shift,
                                            " (allowed ", kMinGranuleShift,
                                            " to ", kMaxGranuleShift, ")"));
  }
  if (GranuleCount(object_size, granule_shift) > kMaxGranules) {
    return absl::DataLossError(absl::StrCat(
        "object size ", object_size, " has more than ", kMaxGranules,
        " granules of ", uint64_t{1} << granule_shift, " bytes"));
  }
  return absl::OkStatus();
}

EncodedMap EncodeMap(const ContentMap& map) {
  if (map.empty()) return {MapEncoding::kEmpty, ""};
  if (map.complete()) return {MapEncoding::kComplete, ""};
  EncodedMap out;
  const uint64_t first_missing = map.NextMissing(0);
  if (first_missing > 0 &&
      map.NextPresent(first_missing) == map.num_granules()) {
    out.encoding = MapEncoding::kPrefix;
    wire::PutVarint(&out.payload, first_missing);
    return out;
  }
  // Each run costs at least two bytes; when that alone reaches the bitmap's
  // size, skip building the runs. There are no more runs than present
  // granules, which spares sparse maps the count.
  const size_t bitmap_size = map.words().size() * 8;
  const bool runs_may_fit = 2 * map.granules_present() < bitmap_size ||
                            2 * CountRuns(map) < bitmap_size;
  if (runs_may_fit && EncodeRuns(map, bitmap_size, &out.payload)) {
    out.encoding = MapEncoding::kRuns;
    return out;
  }
  return {MapEncoding::kBitmap, EncodeBitmap(map)};
}

absl::StatusOr<ContentMap> DecodeMap(MapEncoding encoding,
                                     std::string_view payload,
                                     uint64_t object_size,
                                     uint32_t granule_shift) {
  if (absl::Status s = CheckGeometry(object_size, granule_shift); !s.ok()) {
    return Corrupt(s.message());
  }
  const uint64_t granules = GranuleCount(object_size, granule_shift);
  // The payload is checked in full before the map is allocated.
  absl::Status valid;
  switch (encoding) {
    case MapEncoding::kEmpty:
      valid = ExpectNoPayload(payload, "empty");
      break;
    case MapEncoding::kComplete:
      valid = ExpectNoPayload(payload, "complete");
      break;
    case MapEncoding::kPrefix:
      valid = DecodePrefix(payload, granules).status();
      break;
    case MapEncoding::kRuns:
      valid = ParseRuns(payload, granules, [](uint64_t, uint64_t) {});
      break;
    case MapEncoding::kBitmap:
      valid = CheckBitmap(payload, granules);
      break;
    case MapEncoding::kExternal:
      return Corrupt("an external map reference inside a map payload");
    default:
      return Corrupt(
          absl::StrCat("unknown map encoding ", static_cast<int>(encoding)));
  }
  if (!valid.ok()) return valid;
  ContentMap map(object_size, granule_shift);
  FillMap(encoding, payload, &map);
  return map;
}

}  // namespace cachefs
