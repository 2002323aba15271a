// ErasedDuringLoad: what a cache erased while a snapshot was being loaded
// into it behind live use (the metadata store loads after the mount
// serves). A snapshot is older than anything the mount learned since it
// started: an entry the mount erased in the meantime (a file it deleted, a
// directory it changed) must not come back from the snapshot.
//
// Thread safety: none; its owner calls it under its own lock.

#ifndef CACHEFS_CACHEFS_ERASED_DURING_LOAD_H_
#define CACHEFS_CACHEFS_ERASED_DURING_LOAD_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace cachefs {

class ErasedDuringLoad {
 public:
  void Begin() {
    loading_ = true;
    keys_.clear();
    prefixes_.clear();
  }
  void End() {
    loading_ = false;
    keys_.clear();
    prefixes_.clear();
  }
  bool loading() const { return loading_; }

  void Erase(const std::string& key) {
    if (loading_) keys_.insert(key);
  }
  // `key` and everything below it ("" is everything).
  void ErasePrefix(const std::string& key) {
    if (loading_) prefixes_.push_back(key);
  }
  // Whether `key` was erased since Begin.
  bool Erased(std::string_view key) const {
    if (keys_.contains(absl::string_view(key.data(), key.size()))) {
      return true;
    }
    for (const std::string& prefix : prefixes_) {
      if (prefix.empty() || key == prefix ||
          (key.size() > prefix.size() && key[prefix.size()] == '/' &&
           key.substr(0, prefix.size()) == prefix)) {
        return true;
      }
    }
    return false;
  }

 private:
  bool loading_ = false;
  absl::flat_hash_set<std::string> keys_;
  // Few: a rename or removal of a directory each.
  std::vector<std::string> prefixes_;
};

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_ERASED_DURING_LOAD_H_
