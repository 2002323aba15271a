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
namespace {

size_t RoundUpToIo(size_t n) {
  return (n + kDirectIoAlignment - 1) & ~(kDirectIoAlignment - 1);
}

}  // namespace

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
  if (options_.files_ahead <= 0 || entries.empty()) return;
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Listing>& slot = listings_[dir_key];
  if (offset == 0 || slot == nullptr) {
    if (offset != 0) {  // the start of this listing was not seen
      listings_.erase(dir_key);
      return;
    }
    slot = std::make_unique<Listing>();
  } else if (offset != slot->next_offset) {
    return;  // a seek: not a listing in order
  }
  Listing& listing = *slot;
  listing.used = ++clock_;
  for (const Listed& entry : entries) {
    if (listing.entries.size() >= kMaxListed) break;
    if (!listing.index.emplace(entry.name, listing.entries.size()).second) {
      continue;
    }
    listing.entries.push_back(entry);
  }
  listing.by_name.clear();
  listing.next_offset = next_offset;
  while (listings_.size() > kListings) {
    auto oldest = listings_.begin();
    for (auto it = listings_.begin(); it != listings_.end(); ++it) {
      if (it->second->used < oldest->second->used) oldest = it;
    }
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
  if (listing.by_name.empty()) {
    listing.by_name.resize(n);
    std::iota(listing.by_name.begin(), listing.by_name.end(), 0);
    std::sort(listing.by_name.begin(), listing.by_name.end(),
              [&](uint32_t a, uint32_t b) {
                return listing.entries[a].name < listing.entries[b].name;
              });
    listing.rank.resize(n);
    for (int64_t i = 0; i < n; ++i) listing.rank[listing.by_name[i]] = i;
  }
  for (int order = 0; order < 2; ++order) {
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
  held_[key] = Held{id, false, std::nullopt, absl::Now()};
  order_.emplace_back(key, id);
  DropOldLocked();
  pool_.Enqueue([this, key, id] { Fetch(key, id); });
}

void SiblingReadAhead::DropOldLocked() {
  const absl::Time expired = absl::Now() - options_.hold;
  while (!order_.empty()) {
    auto& [key, id] = order_.front();
    auto it = held_.find(key);
    if (it == held_.end() || it->second.id != id) {  // taken or forgotten
      order_.pop_front();
      continue;
    }
    const bool over = held_.size() > options_.max_held || it->second.at < expired;
    if (!over || !it->second.done) break;  // a fetch in flight stays
    held_.erase(it);
    order_.pop_front();
  }
}

void SiblingReadAhead::Fetch(std::string key, uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
  }
  std::optional<Fetched> fetched;
  // The attributes come first: data read after them is at least as new,
  // so an open whose check still shows them may take it.
  std::optional<struct stat> attr;
  if (!cached_(key)) attr = known_attr_(key);
  if (attr.has_value() && S_ISREG(attr->st_mode) && attr->st_size > 0 &&
      static_cast<uint64_t>(attr->st_size) <= options_.max_file_size) {
    absl::StatusOr<std::unique_ptr<OriginFile>> file =
        origin_->OpenFile(key, O_RDONLY);
    if (file.ok()) {
      auto data = std::make_shared<AlignedData>(attr->st_size);
      absl::StatusOr<size_t> n = (*file)->PRead(data->data(), data->capacity(), 0);
      if (n.ok()) Bump(stats_->bytes_read_from_origin, *n);
      if (n.ok() && *n == static_cast<size_t>(attr->st_size)) {
        std::memset(data->data() + *n, 0, data->capacity() - *n);
        data->length = *n;
        fetched = Fetched{*attr, std::move(data)};
      }
    }
  }
  absl::MutexLock lock(&mu_);
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
  absl::MutexLock lock(&mu_);
  return held_.contains(key);
}

std::optional<SiblingReadAhead::Fetched> SiblingReadAhead::Take(
    const std::string& key) {
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
  auto it = held_.find(key);
  if (it == held_.end() || !it->second.done) return std::nullopt;
  std::optional<Fetched> fetched = std::move(it->second.fetched);
  held_.erase(it);
  return fetched;
}

void SiblingReadAhead::Forget(const std::string& key) {
  if (options_.files_ahead <= 0) return;
  absl::MutexLock lock(&mu_);
  held_.erase(key);
}

}  // namespace cachefs
