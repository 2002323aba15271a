// Listings: the directory listings and symlink targets the origin gave,
// kept so that they can be answered while the origin is down (offline
// mode): a listing is remembered once a directory has been read from its
// start to its end, and forgotten when cachefs changes the directory.
// Online, the origin is always asked; these are only what was last seen.
//
// Like the attribute snapshot, they are saved in the volume's directory
// every checkpoint interval and at a clean unmount, and read once at the
// next mount; they answer only while the origin is down, so one a crash
// left behind never contradicts the origin.
//
// Format, little-endian, saved on disk: never reorder:
//   "CFSLIST1"  u32 listing count
//   count x { u16 key length, key, u32 entry count,
//             entries x { u16 name length, name, u64 ino, u8 type } }
//   u32 link count
//   count x { u16 key length, key, u16 target length, target }
//   u32 CRC32C of everything before it
//
// Thread safety: safe for concurrent use.

#ifndef CACHEFS_CACHEFS_LISTINGS_H_
#define CACHEFS_CACHEFS_LISTINGS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cachefs/erased_during_load.h"
#include "netfs/origin.h"

namespace cachefs {

class Listings {
 public:
  using Listing = std::vector<OriginDir::Entry>;

  // Keeps at most `max_entries` entries over all listings, and as many
  // symlink targets; the least recently stored go first.
  explicit Listings(size_t max_entries) : max_entries_(max_entries) {}

  void Put(const std::string& dir_key, Listing listing);
  // Put, unless anything was erased since erasures() said `erasures`: a
  // listing read while cachefs changed the directory may miss the change.
  void PutUnlessErasedSince(const std::string& dir_key, Listing listing,
                            uint64_t erasures);
  uint64_t erasures() const;
  std::optional<Listing> Get(const std::string& dir_key) const;
  // Get, of a listing read by this mount or loaded trusted (saved at a
  // clean unmount): one a crash left behind may miss changes cachefs made
  // after it was saved, and answers only while the origin is down.
  std::optional<Listing> GetTrusted(const std::string& dir_key) const;
  // Forgets the listing of `dir_key`.
  void Erase(const std::string& dir_key);
  // Forgets every listing and link at or below `key` ("" is everything).
  void ErasePrefix(const std::string& key);

  void PutLink(const std::string& key, std::string target);
  std::optional<std::string> GetLink(const std::string& key) const;
  void EraseLink(const std::string& key);

  // Directories whose listings are kept.
  size_t size() const;
  // Counts every change: what is kept changed if this did.
  uint64_t changes() const;

  std::string Encode() const;
  // Adds what `data` holds; fails, adding nothing, if it is not a whole,
  // valid snapshot. Returns the listings it holds. `behind`: loaded while
  // in use (BeginLoad), so listings and links stored or erased since are
  // newer and kept.
  absl::StatusOr<size_t> Decode(std::string_view data, bool behind = false,
                                bool trusted = true);
  // Erasures from BeginLoad to EndLoad are remembered for Decode.
  void BeginLoad();
  void EndLoad();

 private:
  struct Stored {
    Listing listing;
    uint64_t seq = 0;
    bool trusted = true;  // see GetTrusted
  };
  struct Link {
    std::string target;
    uint64_t seq = 0;
  };
  void PutLocked(const std::string& dir_key, Listing listing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  mutable absl::Mutex mu_;
  std::map<std::string, Stored> listings_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Link> links_ ABSL_GUARDED_BY(mu_);
  size_t entries_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  ErasedDuringLoad erased_ ABSL_GUARDED_BY(mu_);
  uint64_t erasures_ ABSL_GUARDED_BY(mu_) = 0;
};

// A directory read from a remembered listing (offline mode).
std::unique_ptr<OriginDir> ListedDir(Listings::Listing listing);

// Wraps `dir`, read as ReadDir reads it, and stores its listing in
// `listings` under `dir_key` once it has been read from its start to its
// end (a seek elsewhere gives up on it).
std::unique_ptr<OriginDir> RecordingDir(std::unique_ptr<OriginDir> dir,
                                        std::string dir_key,
                                        Listings* listings);

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_LISTINGS_H_
