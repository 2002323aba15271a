#include "cachefs/sibling_read_ahead.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>
#include <utility>

#include "cachefs/coherency.h"
#include "io/io_engine.h"

namespace cachefs {

AlignedData::AlignedData(size_t capacity)
    : data_(static_cast<char*>(
          std::aligned_alloc(kDirectIoAlignment, RoundUpToIo(capacity)))),
      capacity_(RoundUpToIo(capacity)) {
  if (data_ == nullptr) throw std::bad_alloc();
}

AlignedData::~AlignedData() { std::free(data_); }

SiblingReadAhead::SiblingReadAhead(Options options, Origin* origin,
                                   CacheStats* stats, KnownAttr known_attr,
                                   Cached cached)
    : options_(std::move(options)),
      origin_(origin),
      stats_(stats),
      known_attr_(std::move(known_attr)),
      cached_(std::move(cached)),
      pool_(options_.files_ahead > 0 ? std::max(1, options_.threads) : 0,
            nullptr) {}

SiblingReadAhead::~SiblingReadAhead() { Stop(); }

void SiblingReadAhead::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  pool_.Drain();
}

void SiblingReadAhead::NoteListed(const std::string& dir_key, uint64_t offset,
                                  const std::vector<Listed>& entries,
                                  uint64_t next_offset) {
  if (options_.files_ahead <= 0) return;
  absl::MutexLock lock(&mu_);
  auto found = listings_.find(dir_key);
  if (offset == 0) {
    if (found != listings_.end()) {
      listed_ -= found->second->entries.size();
      listings_.erase(found);
    }
    found = listings_.emplace(dir_key, std::make_unique<Listing>()).first;
  } else if (found == listings_.end() || offset != found->second->next_offset ||
             found->second->complete) {
    return;  // not a listing in order from its start
  }
  Listing& listing = *found->second;
  listing.used = ++clock_;
  // No entries: the end of the directory.
  if (entries.empty()) listing.complete = true;
  for (const Listed& entry : entries) {
    if (listed_ >= kMaxListed) break;
    if (listing.index.contains(entry.name)) continue;
    listing.entries.push_back(entry);
    listing.index.emplace(listing.entries.back().name,
                          listing.entries.size() - 1);
    ++listed_;
  }
  listing.next_offset = next_offset;
  // The least recently used listings go first.
  while (listings_.size() > kListings ||
         (listed_ >= kMaxListed && listings_.size() > 1)) {
    auto oldest = listings_.begin();
    for (auto it = listings_.begin(); it != listings_.end(); ++it) {
      if (it->second->used < oldest->second->used) oldest = it;
    }
    if (oldest->second.get() == &listing) break;
    listed_ -= oldest->second->entries.size();
    listings_.erase(oldest);
  }
}

void SiblingReadAhead::NoteOpen(const std::string& dir_key,
                                const std::string& name) {
  if (options_.files_ahead <= 0) return;
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  auto found = listings_.find(dir_key);
  if (found == listings_.end()) return;
  Listing& listing = *found->second;
  listing.used = ++clock_;
  auto at = listing.index.find(name);
  if (at == listing.index.end()) return;
  const int64_t n = static_cast<int64_t>(listing.entries.size());
  if (listing.complete && listing.by_name.empty() &&
      n <= static_cast<int64_t>(kMaxSorted)) {
    listing.by_name.resize(n);
    std::iota(listing.by_name.begin(), listing.by_name.end(), 0);
    std::sort(listing.by_name.begin(), listing.by_name.end(),
              [&](uint32_t a, uint32_t b) {
                return listing.entries[a].name < listing.entries[b].name;
              });
    listing.rank.resize(n);
    for (int64_t i = 0; i < n; ++i) listing.rank[listing.by_name[i]] = i;
  }
  const int orders = listing.by_name.empty() ? 1 : 2;
  for (int order = 0; order < orders; ++order) {
    const int64_t pos = order == 0 ? at->second : listing.rank[at->second];
    Listing::Track& track = listing.track[order];
    if (pos == track.last + 1) {
      ++track.run;
    } else {
      track.run = 0;
      track.ahead_to = 0;
    }
    track.last = pos;
    // Two opens in a row in this order: the reader is going through the
    // directory.
    if (track.run < 1) continue;
    const int64_t to = std::min(n, pos + 1 + options_.files_ahead);
    for (int64_t q = std::max(pos + 1, track.ahead_to); q < to; ++q) {
      const Listed& entry =
          listing.entries[order == 0 ? q : listing.by_name[q]];
      if (entry.small_file) Start(ChildKey(dir_key, entry.name));
    }
    track.ahead_to = std::max(track.ahead_to, to);
  }
}

void SiblingReadAhead::Start(const std::string& key) {
  if (held_.contains(key)) return;
  const uint64_t id = next_id_++;
  held_[key] = Held{id, false, false, std::nullopt, absl::Now()};
  order_.emplace_back(key, id);
  DropOldLocked();
  pool_.Enqueue([this, key, id] { Fetch(key, id); });
}

void SiblingReadAhead::DropOldLocked() {
  const absl::Time expired = absl::Now() - options_.hold;
  size_t done = 0;
  for (const auto& [key, id] : order_) {
    auto it = held_.find(key);
    if (it != held_.end() && it->second.id == id && it->second.done) ++done;
  }
  // Oldest first; a fetch queued or under way stays (its open may wait).
  std::deque<std::pair<std::string, uint64_t>> kept;
  for (auto& [key, id] : order_) {
    auto it = held_.find(key);
    if (it == held_.end() || it->second.id != id) continue;  // gone
    if (it->second.done &&
        (done > options_.max_held || it->second.at < expired)) {
      held_.erase(it);
      --done;
      continue;
    }
    kept.emplace_back(std::move(key), id);
  }
  order_ = std::move(kept);
}

void SiblingReadAhead::Fetch(std::string key, uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(key);
    if (stopping_ || it == held_.end() || it->second.id != id) return;
    it->second.started = true;
    ++running_[key];
  }
  std::optional<Fetched> fetched;
  // The attributes come first: data read after them is at least as new,
  // so an open whose check still shows them may take it. A file with other
  // names could change through one of them unnoticed: left alone.
  std::optional<struct stat> attr;
  if (!cached_(key)) attr = known_attr_(key);
  if (attr.has_value() && S_ISREG(attr->st_mode) && attr->st_nlink == 1 &&
      attr->st_size > 0 &&
      static_cast<uint64_t>(attr->st_size) <= options_.max_file_size) {
    absl::StatusOr<std::unique_ptr<OriginFile>> file =
        origin_->OpenFile(Caller::Daemon(), key, O_RDONLY);
    if (file.ok()) {
      auto data = std::make_shared<AlignedData>(attr->st_size);
      absl::StatusOr<size_t> n =
          (*file)->PRead(data->data(), data->capacity(), 0);
      if (n.ok()) Bump(stats_->bytes_read_from_origin, *n);
      if (n.ok() && *n == static_cast<size_t>(attr->st_size)) {
        std::memset(data->data() + *n, 0, data->capacity() - *n);
        data->length = *n;
        fetched = Fetched{*attr, std::move(data)};
      }
    }
  }  // the origin file is closed here
  absl::MutexLock lock(&mu_);
  if (--running_[key] == 0) running_.erase(key);
  auto it = held_.find(key);
  if (it == held_.end() || it->second.id != id) return;  // forgotten
  if (!fetched.has_value()) {
    held_.erase(it);
    return;
  }
  Bump(stats_->files_read_ahead);
  it->second.done = true;
  it->second.fetched = std::move(fetched);
  it->second.at = absl::Now();
}

bool SiblingReadAhead::Has(const std::string& key) {
  if (options_.files_ahead <= 0) return false;
  absl::MutexLock lock(&mu_);
  auto it = held_.find(key);
  if (it == held_.end()) return false;
  if (!it->second.started) {
    held_.erase(it);
    return false;
  }
  return true;
}

void SiblingReadAhead::Wait(const std::string& key) {
  absl::MutexLock lock(&mu_);
  struct Settled {
    SiblingReadAhead* self;
    const std::string* key;
    bool operator()() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
      auto it = self->held_.find(*key);
      return it == self->held_.end() || it->second.done;
    }
  } settled{this, &key};
  // Bounded: a fetch stuck on the origin leaves the open to ask itself.
  mu_.AwaitWithTimeout(absl::Condition(&settled), absl::Seconds(30));
}

std::optional<SiblingReadAhead::Fetched> SiblingReadAhead::Take(
    const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(key);
  if (it == held_.end() || !it->second.done) return std::nullopt;
  std::optional<Fetched> fetched = std::move(it->second.fetched);
  held_.erase(it);
  DropOldLocked();
  return fetched;
}

void SiblingReadAhead::Forget(const std::string& key) {
  if (options_.files_ahead <= 0) return;
  absl::MutexLock lock(&mu_);
  held_.erase(key);
}

void SiblingReadAhead::ForgetPrefix(const std::string& key) {
  if (options_.files_ahead <= 0) return;
  const std::string below = key.empty() ? "" : key + "/";
  absl::MutexLock lock(&mu_);
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->first == key || it->first.compare(0, below.size(), below) == 0) {
      held_.erase(it++);
    } else {
      ++it;
    }
  }
}

void SiblingReadAhead::ForgetAndWait(const std::string& key) {
  if (options_.files_ahead <= 0) return;
  absl::MutexLock lock(&mu_);
  held_.erase(key);
  struct Closed {
    SiblingReadAhead* self;
    const std::string* key;
    bool operator()() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
      return !self->running_.contains(*key);
    }
  } closed{this, &key};
  mu_.AwaitWithTimeout(absl::Condition(&closed), absl::Seconds(30));
}

}  // namespace cachefs
