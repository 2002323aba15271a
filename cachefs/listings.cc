#include "cachefs/listings.h"

#include <utility>

#include "contentmap/crc32c.h"
#include "contentmap/wire.h"

namespace cachefs {
namespace {

constexpr std::string_view kMagic = "CFSLIST1";

bool Below(const std::string& key, const std::string& prefix) {
  if (prefix.empty()) return true;
  return key == prefix || (key.size() > prefix.size() &&
                           key.compare(0, prefix.size(), prefix) == 0 &&
                           key[prefix.size()] == '/');
}

void PutString16(std::string* out, std::string_view s) {
  wire::PutU16(out, static_cast<uint16_t>(s.size()));
  out->append(s);
}

class ListedDirImpl : public OriginDir {
 public:
  explicit ListedDirImpl(Listings::Listing listing)
      : listing_(std::move(listing)) {}
  absl::Status Seek(uint64_t offset) override {
    next_ = offset;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<Entry>> Next() override {
    if (next_ >= listing_.size()) return std::optional<Entry>();
    Entry e = listing_[next_++];
    e.next_offset = next_;
    return std::optional<Entry>(std::move(e));
  }

 private:
  const Listings::Listing listing_;
  uint64_t next_ = 0;
};

class RecordingDirImpl : public OriginDir {
 public:
  RecordingDirImpl(std::unique_ptr<OriginDir> dir, std::string dir_key,
                   Listings* listings)
      : dir_(std::move(dir)),
        dir_key_(std::move(dir_key)),
        listings_(listings) {}

  absl::Status Seek(uint64_t offset) override {
    absl::Status status = dir_->Seek(offset);
    if (!status.ok() || !recording_) return status;
    // Back to where an entry read before ends (the kernel's buffer took
    // fewer than were read), or to the start: the record goes on from
    // there. Anywhere else: a listing read in pieces is not recorded.
    if (offset == 0) {
      seen_.clear();
      return status;
    }
    size_t k = seen_.size();
    while (k > 0 && seen_[k - 1].next_offset != offset) --k;
    if (k == 0) {
      recording_ = false;
    } else {
      seen_.resize(k);
    }
    return status;
  }

  absl::StatusOr<std::optional<Entry>> Next() override {
    absl::StatusOr<std::optional<Entry>> next = dir_->Next();
    if (!next.ok()) {
      recording_ = false;
      return next;
    }
    if (!recording_) return next;
    if (next->has_value()) {
      seen_.push_back(**next);
    } else {
      listings_->Put(dir_key_, seen_);
      recording_ = false;  // stored once
    }
    return next;
  }

 private:
  const std::unique_ptr<OriginDir> dir_;
  const std::string dir_key_;
  Listings* const listings_;
  Listings::Listing seen_;
  bool recording_ = true;
};

}  // namespace

void Listings::Put(const std::string& dir_key, Listing listing) {
  absl::MutexLock lock(&mu_);
  PutLocked(dir_key, std::move(listing));
}

void Listings::PutLocked(const std::string& dir_key, Listing listing) {
  auto [it, added] = listings_.try_emplace(dir_key);
  if (!added) entries_ -= it->second.listing.size();
  entries_ += listing.size();
  it->second.listing = std::move(listing);
  it->second.seq = ++seq_;
  it->second.trusted = true;
  TrimLocked();
}

void Listings::PutUnlessErasedSince(const std::string& dir_key, Listing listing,
                                    uint64_t erasures) {
  absl::MutexLock lock(&mu_);
  if (erasures_ == erasures) PutLocked(dir_key, std::move(listing));
}

uint64_t Listings::erasures() const {
  absl::MutexLock lock(&mu_);
  return erasures_;
}

std::optional<Listings::Listing> Listings::Get(
    const std::string& dir_key) const {
  absl::MutexLock lock(&mu_);
  auto it = listings_.find(dir_key);
  if (it == listings_.end()) return std::nullopt;
  return it->second.listing;
}

std::optional<Listings::Listing> Listings::GetTrusted(
    const std::string& dir_key) const {
  absl::MutexLock lock(&mu_);
  auto it = listings_.find(dir_key);
  if (it == listings_.end() || !it->second.trusted) return std::nullopt;
  return it->second.listing;
}

uint64_t Listings::changes() const {
  absl::MutexLock lock(&mu_);
  return seq_ + erasures_;
}

size_t Listings::size() const {
  absl::MutexLock lock(&mu_);
  return listings_.size();
}

void Listings::Erase(const std::string& dir_key) {
  absl::MutexLock lock(&mu_);
  erased_.Erase(dir_key);
  ++erasures_;
  auto it = listings_.find(dir_key);
  if (it == listings_.end()) return;
  entries_ -= it->second.listing.size();
  listings_.erase(it);
}

void Listings::ErasePrefix(const std::string& key) {
  absl::MutexLock lock(&mu_);
  erased_.ErasePrefix(key);
  ++erasures_;
  for (auto it = listings_.lower_bound(key); it != listings_.end();) {
    if (!Below(it->first, key)) {
      if (it->first.compare(0, key.size(), key) != 0) break;
      ++it;
      continue;
    }
    entries_ -= it->second.listing.size();
    it = listings_.erase(it);
  }
  for (auto it = links_.lower_bound(key); it != links_.end();) {
    if (!Below(it->first, key)) {
      if (it->first.compare(0, key.size(), key) != 0) break;
      ++it;
      continue;
    }
    it = links_.erase(it);
  }
}

void Listings::PutLink(const std::string& key, std::string target) {
  absl::MutexLock lock(&mu_);
  Link& link = links_[key];
  link.target = std::move(target);
  link.seq = ++seq_;
  TrimLocked();
}

std::optional<std::string> Listings::GetLink(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = links_.find(key);
  if (it == links_.end()) return std::nullopt;
  return it->second.target;
}

void Listings::EraseLink(const std::string& key) {
  absl::MutexLock lock(&mu_);
  erased_.Erase(key);
  ++erasures_;
  links_.erase(key);
}

void Listings::BeginLoad() {
  absl::MutexLock lock(&mu_);
  erased_.Begin();
}

void Listings::EndLoad() {
  absl::MutexLock lock(&mu_);
  erased_.End();
}

void Listings::TrimLocked() {
  // Rare (the bound is far above a working set): a scan for the oldest.
  while (entries_ > max_entries_ && !listings_.empty()) {
    auto oldest = listings_.begin();
    for (auto it = listings_.begin(); it != listings_.end(); ++it) {
      if (it->second.seq < oldest->second.seq) oldest = it;
    }
    entries_ -= oldest->second.listing.size();
    listings_.erase(oldest);
  }
  while (links_.size() > max_entries_) {
    auto oldest = links_.begin();
    for (auto it = links_.begin(); it != links_.end(); ++it) {
      if (it->second.seq < oldest->second.seq) oldest = it;
    }
    links_.erase(oldest);
  }
}

std::string Listings::Encode() const {
  absl::MutexLock lock(&mu_);
  std::string out(kMagic);
  std::string body;
  uint32_t count = 0;
  for (const auto& [key, stored] : listings_) {
    if (key.size() > 0xffff) continue;
    PutString16(&body, key);
    wire::PutU32(&body, static_cast<uint32_t>(stored.listing.size()));
    for (const OriginDir::Entry& e : stored.listing) {
      PutString16(&body, e.name);
      wire::PutU64(&body, e.ino);
      wire::PutU8(&body, e.type);
    }
    ++count;
  }
  wire::PutU32(&out, count);
  out += body;
  body.clear();
  count = 0;
  for (const auto& [key, link] : links_) {
    if (key.size() > 0xffff || link.target.size() > 0xffff) continue;
    PutString16(&body, key);
    PutString16(&body, link.target);
    ++count;
  }
  wire::PutU32(&out, count);
  out += body;
  wire::PutU32(&out, Crc32c(out));
  return out;
}

absl::StatusOr<size_t> Listings::Decode(std::string_view data, bool behind,
                                        bool trusted) {
  if (data.size() < kMagic.size() + 12 ||
      data.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("not a listing snapshot");
  }
  const std::string_view body = data.substr(0, data.size() - 4);
  if (wire::LoadFixed(data.data() + body.size(), 4) != Crc32c(body)) {
    return absl::DataLossError("listing snapshot checksum mismatch");
  }
  wire::FieldReader in{wire::Reader(body.substr(kMagic.size()))};
  std::vector<std::pair<std::string, Listing>> listings;
  const uint64_t count = in.Get(4);
  for (uint64_t i = 0; in.ok && i < count; ++i) {
    std::string key = in.String16();
    const uint64_t n = in.Get(4);
    Listing listing;
    for (uint64_t j = 0; in.ok && j < n; ++j) {
      OriginDir::Entry e;
      e.name = in.String16();
      e.ino = static_cast<ino_t>(in.Get(8));
      e.type = static_cast<unsigned char>(in.Get(1));
      e.next_offset = j + 1;
      listing.push_back(std::move(e));
    }
    listings.emplace_back(std::move(key), std::move(listing));
  }
  std::vector<std::pair<std::string, std::string>> links;
  const uint64_t link_count = in.Get(4);
  for (uint64_t i = 0; in.ok && i < link_count; ++i) {
    std::string key = in.String16();
    std::string target = in.String16();
    links.emplace_back(std::move(key), std::move(target));
  }
  if (!in.ok || !in.reader.empty()) {
    return absl::DataLossError("listing snapshot is truncated");
  }
  absl::MutexLock lock(&mu_);
  for (auto& [key, listing] : listings) {
    if (behind) {
      if (listings_.contains(key) || erased_.Erased(key)) continue;
      // Never at the cost of what the mount listed meanwhile.
      if (entries_ + listing.size() > max_entries_) continue;
    }
    auto [it, added] = listings_.try_emplace(key);
    if (!added) entries_ -= it->second.listing.size();
    entries_ += listing.size();
    it->second.listing = std::move(listing);
    it->second.seq = ++seq_;
    it->second.trusted = trusted;
  }
  for (auto& [key, target] : links) {
    if (behind && (links_.contains(key) || erased_.Erased(key))) continue;
    Link& link = links_[key];
    link.target = std::move(target);
    link.seq = ++seq_;
  }
  TrimLocked();
  return listings.size();
}

std::unique_ptr<OriginDir> ListedDir(Listings::Listing listing) {
  return std::make_unique<ListedDirImpl>(std::move(listing));
}

std::unique_ptr<OriginDir> RecordingDir(std::unique_ptr<OriginDir> dir,
                                        std::string dir_key,
                                        Listings* listings) {
  return std::make_unique<RecordingDirImpl>(std::move(dir), std::move(dir_key),
                                            listings);
}

}  // namespace cachefs
