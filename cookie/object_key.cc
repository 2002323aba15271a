#include "cookie/object_key.h"

#include "absl/strings/str_format.h"

namespace cachefs {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t Fnv1a(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t HashObjectKey(std::string_view volume_key, std::string_view file_key) {
  uint64_t h = Fnv1a(volume_key, kFnvOffset);
  h = Fnv1a(std::string_view("\0", 1), h);
  h = Fnv1a(file_key, h);
  return SplitMix64(h);
}

ObjectPath ObjectPathFor(uint64_t hash) {
  return ObjectPath{absl::StrFormat("%02x", hash >> 56),
                    absl::StrFormat("%016x", hash)};
}

std::string VolumeDirName(std::string_view volume_key) {
  return absl::StrFormat("%016x", SplitMix64(Fnv1a(volume_key, kFnvOffset)));
}

}  // namespace cachefs
