// Names of backing objects and volume directories.
//
// A backing object is named from a stable 64-bit hash of its volume key and
// file key, as 16 hex digits, fanned out over 256 subdirectories named by
// the hash's top byte. The full keys live in the object's record, so two
// keys that hash alike are told apart at lookup (a collision), never served
// for each other.

#ifndef CACHEFS_COOKIE_OBJECT_KEY_H_
#define CACHEFS_COOKIE_OBJECT_KEY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace cachefs {

// Hashes (volume key, file key). Stable across runs, builds and machines:
// it names files on disk.
using KeyHasher =
    std::function<uint64_t(std::string_view volume_key, std::string_view file_key)>;

// The default hasher: FNV-1a over both keys with a separator, then a
// splitmix64 finalizer to spread the fan-out byte.
uint64_t HashObjectKey(std::string_view volume_key, std::string_view file_key);

// Where one object lives inside its volume directory.
struct ObjectPath {
  std::string fan_dir;  // "a7"
  std::string name;     // "a7c3...": 16 hex digits
};
ObjectPath ObjectPathFor(uint64_t hash);

// The directory name of a volume under <cache>/volumes/.
std::string VolumeDirName(std::string_view volume_key);

}  // namespace cachefs

#endif  // CACHEFS_COOKIE_OBJECT_KEY_H_
