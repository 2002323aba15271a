#include "cull/culler.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cookie/object_key.h"
#include "cookie/stats.h"
#include "cull/index_snapshot.h"
#include "io/log.h"

namespace cachefs {
namespace {

uint32_t WallSeconds() { return static_cast<uint32_t>(std::time(nullptr)); }

absl::Status CheckTriple(const char* kind, int run, int cull, int stop) {
  if (!(0 <= stop && stop < cull && cull < run && run < 100)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "-o ", kind, "run=", run, ",", kind, "cull=", cull, ",", kind,
        "stop=", stop, ": need 0 <= ", kind, "stop < ", kind, "cull < ", kind,
        "run < 100"));
  }
  return absl::OkStatus();
}

// Allocated bytes of the regular files below `path`.
uint64_t DirectoryBytes(const std::string& path) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return bytes;
}

}  // namespace

absl::Status CullLimits::Validate() const {
  absl::Status status = CheckTriple("b", brun, bcull, bstop);
  if (status.ok()) status = CheckTriple("f", frun, fcull, fstop);
  if (status.ok() && !(0 < open_file_share && open_file_share <= 100)) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "-o open_file_share=", open_file_share,
        ": need a percentage from 1 to 100"));
  }
  return status;
}

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string digits(text);
  uint64_t scale = 1;
  if (!digits.empty()) {
    switch (std::toupper(static_cast<unsigned char>(digits.back()))) {
      case 'K': scale = uint64_t{1} << 10; break;
      case 'M': scale = uint64_t{1} << 20; break;
      case 'G': scale = uint64_t{1} << 30; break;
      case 'T': scale = uint64_t{1} << 40; break;
      default: scale = 0;
    }
    if (scale != 0) {
      digits.pop_back();
    } else {
      scale = 1;
    }
  }
  uint64_t value = 0;
  if (digits.empty() || !absl::SimpleAtoi(digits, &value) ||
      value > std::numeric_limits<uint64_t>::max() / scale) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(text),
                     "\" is not a size (a number with K, M, G or T)"));
  }
  return value * scale;
}

absl::StatusOr<std::unique_ptr<Culler>> Culler::Start(
    Cache* cache, std::shared_ptr<Volume> volume, CullLimits limits,
    std::string_view policy_name) {
  absl::Status valid = limits.Validate();
  if (!valid.ok()) return valid;
  const int64_t started = cache->env()->MonotonicNanos();
  uint64_t capacity = limits.cache_size;
  struct statvfs fs;
  if (capacity == 0 && statvfs(cache->options().directory.c_str(), &fs) == 0) {
    capacity = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  }
  absl::StatusOr<std::unique_ptr<CullPolicy>> policy =
      MakeCullPolicy(policy_name, std::max<uint64_t>(capacity, 1));
  if (!policy.ok()) return policy.status();
  std::unique_ptr<Culler> culler(new Culler(cache, std::move(volume), limits,
                                            *std::move(policy)));
  culler->policy_name_ = std::string(policy_name);
  culler->policy_capacity_ = std::max<uint64_t>(capacity, 1);
  std::vector<Volume::StoredObject> objects = culler->LoadIndex();
  // Oldest use first, so the policy's order starts as close to recency as
  // the files' times tell (a snapshot is saved in that order).
  auto older = [](const Volume::StoredObject& a, const Volume::StoredObject& b) {
    return a.last_used < b.last_used;
  };
  if (!std::is_sorted(objects.begin(), objects.end(), older)) {
    std::sort(objects.begin(), objects.end(), older);
  }
  uint64_t own = 0;
  for (const Volume::StoredObject& o : objects) own += o.bytes;
  culler->own_bytes_.store(static_cast<int64_t>(own));
  if (culler->loaded_from_snapshot_) {
    // Exact as of now: the culling thread indexes it while the mount
    // serves, and events meanwhile wait in order (see Index).
    absl::MutexLock lock(&culler->mu_);
    culler->loading_ = true;
    culler->to_load_ = std::move(objects);
  } else {
    absl::MutexLock lock(&culler->mu_);
    culler->Index(objects, &culler->index_, culler->policy_.get(),
                  &culler->next_generation_);
    culler->loaded_.Notify();
  }
  culler->ShareUsage();
  culler->scan_nanos_ = cache->env()->MonotonicNanos() - started;
  culler->CheckFilesystem();
  cache->AddObserver(culler.get());
  Culler* raw = culler.get();
  culler->thread_ = std::thread([raw] { raw->Loop(); });
  return culler;
}

Culler::Culler(Cache* cache, std::shared_ptr<Volume> volume,
               CullLimits limits, std::unique_ptr<CullPolicy> policy)
    : cache_(cache),
      volume_(std::move(volume)),
      limits_(limits),
      directory_limit_(limits.cache_size),
      policy_(std::move(policy)) {}

Culler::~Culler() {
  stopping_.Notify();
  Wake();
  if (thread_.joinable()) thread_.join();
  cache_->RemoveObserver(this);
  SaveIndex();
  // Its bytes stay in the directory; its limit no longer binds the others.
  if (published_limit_ != 0) {
    PublishUsage(own_bytes_.load(std::memory_order_relaxed), 0);
  }
}

std::vector<Volume::StoredObject> Culler::LoadIndex() {
  // Read once: a crash from now on must leave no snapshot behind.
  absl::StatusOr<std::string> data =
      volume_->ReadFile(kCullIndexSnapshot, kMaxIndexSnapshotBytes);
  volume_->RemoveFile(kCullIndexSnapshot).IgnoreError();
  if (data.ok()) {
    absl::StatusOr<std::vector<Volume::StoredObject>> objects =
        DecodeCullIndex(*data, volume_->FanDirTimes());
    if (objects.ok()) {
      loaded_from_snapshot_ = true;
      return *std::move(objects);
    }
    Log(LogLevel::kWarning,
        absl::StrCat("scanning the cache instead of its index: ",
                     std::string(objects.status().message())));
  }
  return volume_->ScanObjects();
}

void Culler::SaveIndex() {
  std::vector<Volume::StoredObject> objects;
  {
    absl::MutexLock lock(&mu_);
    objects.reserve(index_.size());
    for (const auto& [hash, e] : index_) {
      objects.push_back({hash, e.bytes, e.last_used});
    }
  }
  // In the order the next start inserts them, so it need not sort.
  std::sort(objects.begin(), objects.end(),
            [](const Volume::StoredObject& a, const Volume::StoredObject& b) {
              return a.last_used < b.last_used;
            });
  absl::Status saved = volume_->WriteFile(
      kCullIndexSnapshot, EncodeCullIndex(volume_->FanDirTimes(), objects));
  if (!saved.ok()) {
    Log(LogLevel::kWarning, absl::StrCat("cannot save the cull index: ",
                                         std::string(saved.message())));
  }
}

uint64_t Culler::stored_bytes() const {
  int64_t own = own_bytes_.load(std::memory_order_relaxed);
  return other_bytes_.load(std::memory_order_relaxed) +
         static_cast<uint64_t>(std::max<int64_t>(own, 0));
}

void Culler::PublishUsage(int64_t bytes, uint64_t limit) {
  const std::string path = cache_->options().directory + "/volumes/" +
                           VolumeDirName(volume_->key()) + "/usage";
  const std::string text = absl::StrCat(bytes, " ", limit, "\n");
  // Written whole and renamed into place, so readers never see half.
  int fd = open((path + ".new").c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  bool whole = write(fd, text.data(), text.size()) ==
               static_cast<ssize_t>(text.size());
  close(fd);
  if (whole && rename((path + ".new").c_str(), path.c_str()) == 0) {
    published_ = bytes;
    published_limit_ = limit;
  }
}

void Culler::ShareUsage() {
  const std::string volumes = cache_->options().directory + "/volumes";
  const std::string own_dir = VolumeDirName(volume_->key());
  const int64_t own = own_bytes_.load(std::memory_order_relaxed);
  if (own != published_ || published_limit_ != limits_.cache_size) {
    PublishUsage(own, limits_.cache_size);
  }
  DIR* dir = opendir(volumes.c_str());
  if (dir == nullptr) return;
  uint64_t others = 0;
  uint64_t limit = limits_.cache_size;
  while (struct dirent* d = readdir(dir)) {
    const std::string name = d->d_name;
    if (name.empty() || name[0] == '.' || name == own_dir) continue;
    std::ifstream in(volumes + "/" + name + "/usage");
    uint64_t bytes = 0;
    if (in >> bytes) {
      OtherVolume& other = others_[name];
      other.bytes = bytes;
      if (!(in >> other.limit)) other.limit = 0;
    } else if (!others_.contains(name)) {
      // Never published (no culling daemon has run it): count it once.
      others_[name].bytes = DirectoryBytes(volumes + "/" + name);
    }
    const OtherVolume& other = others_[name];
    others += other.bytes;
    if (other.limit != 0 && (limit == 0 || other.limit < limit)) {
      limit = other.limit;
    }
  }
  closedir(dir);
  other_bytes_.store(others, std::memory_order_relaxed);
  directory_limit_.store(limit, std::memory_order_relaxed);
}

size_t Culler::indexed_objects() const {
  loaded_.WaitForNotification();
  absl::MutexLock lock(&mu_);
  return index_.size();
}

std::string Culler::policy_name() const {
  absl::MutexLock lock(&mu_);
  return std::string(policy_->name());
}

std::vector<Culler::Entry> Culler::Entries() const {
  loaded_.WaitForNotification();
  std::vector<Entry> out;
  absl::MutexLock lock(&mu_);
  out.reserve(index_.size());
  for (const auto& [hash, e] : index_) {
    out.push_back(Entry{hash, e.bytes, e.last_used});
  }
  return out;
}

uint64_t Culler::CullMark() const {
  const uint64_t size = cache_limit();
  return size - size / 100 * static_cast<uint64_t>(limits_.bcull - limits_.bstop);
}

uint64_t Culler::RunMark() const {
  const uint64_t size = cache_limit();
  return size - size / 100 * static_cast<uint64_t>(limits_.brun - limits_.bstop);
}

void Culler::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
  wake_cv_.Signal();
}

bool Culler::HasRoom(uint64_t bytes) const {
  if (static_cast<int64_t>(bytes) >
      fs_free_bytes_.load(std::memory_order_relaxed) -
          fs_stop_floor_.load(std::memory_order_relaxed)) {
    return false;
  }
  if (files_full_.load(std::memory_order_relaxed)) return false;
  const int64_t in_flight = std::max<int64_t>(
      fs_writes_in_flight_.load(std::memory_order_relaxed), 0);
  const uint64_t limit = cache_limit();
  return limit == 0 ||
         stored_bytes() + static_cast<uint64_t>(in_flight) + bytes <= limit;
}

bool Culler::AdmitWrite(uint64_t bytes) {
  if (!AdmitToFilesystem(bytes)) return false;
  const uint64_t limit = cache_limit();
  if (limit == 0) return true;
  // Writes admitted before and still in flight count too (they include
  // this one): otherwise many at once could all pass the limit together.
  const uint64_t after =
      stored_bytes() +
      static_cast<uint64_t>(std::max<int64_t>(
          fs_writes_in_flight_.load(std::memory_order_relaxed), 0));
  const bool admitted = after <= limit;
  if (!admitted && bytes <= limit) {
    // The cull mark may lie less than a write below the limit: the next
    // pass must make room for this write even if what is stored is under
    // the mark.
    uint64_t seen = refused_bytes_.load(std::memory_order_relaxed);
    while (seen < bytes && !refused_bytes_.compare_exchange_weak(
                               seen, bytes, std::memory_order_relaxed)) {
    }
  }
  if (after > CullMark()) Wake();
  if (!admitted) {
    LogEvent(LogLevel::kWarning, "cache-full",
             absl::StrCat("culling is not keeping up: the cache holds ",
                          stored_bytes(), " bytes of its limit of ", limit,
                          "; data read meanwhile is served from the origin "
                          "and not cached"));
    // Not written after all: neither taken from the free space nor in flight.
    fs_free_bytes_.fetch_add(static_cast<int64_t>(bytes),
                             std::memory_order_relaxed);
    WriteSettled(bytes);
  }
  return admitted;
}

void Culler::Charge(const std::string& volume_key, uint64_t hash,
                    int64_t delta) {
  if (volume_key != volume_->key()) return;
  absl::MutexLock lock(&mu_);
  if (loading_) {
    // Counted now, so admission sees it; indexed once the load is done.
    own_bytes_.fetch_add(delta, std::memory_order_relaxed);
    pending_.push_back({PendingEvent::kCharge, hash, delta, 0});
    return;
  }
  ChargeLocked(hash, delta, /*counted=*/false);
}

void Culler::ChargeLocked(uint64_t hash, int64_t delta, bool counted) {
  auto [it, fresh] = index_.try_emplace(hash, Indexed{0, WallSeconds()});
  if (fresh) it->second.generation = next_generation_++;
  if (!policy_->Contains(hash)) policy_->Insert(hash, 0);
  int64_t now = static_cast<int64_t>(it->second.bytes) + delta;
  if (now < 0) now = 0;
  const int64_t change = now - static_cast<int64_t>(it->second.bytes);
  // A delta counted while loading may have been clamped here.
  own_bytes_.fetch_add(counted ? change - delta : change,
                       std::memory_order_relaxed);
  it->second.bytes = static_cast<uint64_t>(now);
}

void Culler::Used(const std::string& volume_key, uint64_t hash) {
  if (volume_key != volume_->key()) return;
  absl::MutexLock lock(&mu_);
  if (loading_) {
    pending_.push_back({PendingEvent::kUsed, hash, 0, WallSeconds()});
    return;
  }
  UsedLocked(hash, WallSeconds());
}

void Culler::UsedLocked(uint64_t hash, uint32_t when) {
  auto [it, fresh] = index_.try_emplace(hash, Indexed{0, 0});
  if (fresh) it->second.generation = next_generation_++;
  it->second.last_used = when;
  if (fresh || !policy_->Contains(hash)) {
    policy_->Insert(hash, it->second.bytes);
  } else {
    policy_->Hit(hash, it->second.bytes);
  }
}

void Culler::Removed(const std::string& volume_key, uint64_t hash) {
  if (volume_key != volume_->key()) return;
  absl::MutexLock lock(&mu_);
  if (loading_) {
    pending_.push_back({PendingEvent::kRemoved, hash, 0, 0});
    return;
  }
  RemovedLocked(hash);
}

void Culler::RemovedLocked(uint64_t hash) {
  auto it = index_.find(hash);
  if (it == index_.end()) return;
  own_bytes_.fetch_sub(static_cast<int64_t>(it->second.bytes),
                       std::memory_order_relaxed);
  index_.erase(it);
  policy_->Erase(hash);
}

Culler::CullResult Culler::CullTo(uint64_t target) {
  loaded_.WaitForNotification();
  absl::MutexLock pass(&pass_mu_);
  CullResult result;
  const uint64_t share = static_cast<uint64_t>(limits_.open_file_share);
  TrimOpenObjects(target, target / 100 * share + target % 100 * share / 100,
                  &result);
  CullWholeObjects(target, &result);
  TrimOpenObjects(target, 0, &result);
  return result;
}

void Culler::TrimOpenObjects(uint64_t target, uint64_t cap,
                             CullResult* result) {
  CacheStats& stats = cache_->stats();
  const uint64_t granule = uint64_t{1} << cache_->options().granule_shift;
  if (trim_unsupported_.load(std::memory_order_relaxed)) return;
  // Objects that gave nothing (every present granule being written, or
  // the trim failed and withdrew the object): not asked again this pass.
  absl::flat_hash_set<uint64_t> spent;
  // Bounded: every round culls granules or spends an object.
  for (int round = 0; round < 4096 && !stopping_.HasBeenNotified(); ++round) {
    const uint64_t stored = stored_bytes();
    if (stored <= target) return;
    struct Open {
      uint64_t hash;
      std::shared_ptr<Cookie> cookie;
      uint64_t bytes = 0;
    };
    std::vector<Open> open;
    // Taken before mu_: the volume's lock comes first.
    for (std::shared_ptr<Cookie>& cookie : volume_->Cookies()) {
      std::shared_ptr<BackingObject> object =
          cookie->ready() ? CookieInspector::ObjectOf(*cookie) : nullptr;
      if (object != nullptr && !spent.contains(object->hash()) &&
          cache_->MayCull(volume_->key(), object->hash())) {
        open.push_back({object->hash(), std::move(cookie)});
      }
    }
    {
      absl::MutexLock lock(&mu_);
      for (Open& o : open) {
        auto it = index_.find(o.hash);
        o.bytes = it == index_.end() ? 0 : it->second.bytes;
      }
    }
    std::erase_if(open, [cap](const Open& o) { return o.bytes <= cap; });
    if (open.empty()) return;
    std::sort(open.begin(), open.end(),
              [](const Open& a, const Open& b) { return a.bytes > b.bytes; });
    // From the largest, down to the next one's size or the cap (objects
    // of equal size share the excess), but no more than the target asks.
    const uint64_t excess = stored - target;
    const uint64_t floor =
        std::max(cap, open.size() > 1 ? open[1].bytes : uint64_t{0});
    uint64_t bytes = open[0].bytes - floor;
    if (bytes == 0) {
      size_t ties = 1;
      while (ties < open.size() && open[ties].bytes == open[0].bytes) ++ties;
      bytes = std::min(excess / ties, open[0].bytes - cap);
    }
    bytes = std::min(excess, bytes);
    const uint64_t granules =
        std::max<uint64_t>(1, (bytes + granule - 1) / granule);
    absl::StatusOr<BackingObject::Trimmed> trimmed =
        open[0].cookie->TrimCold(granules);
    if (absl::IsUnimplemented(trimmed.status())) {
      Log(LogLevel::kWarning,
          absl::StrCat("the cache directory's filesystem cannot punch "
                       "holes: open files are culled no more: ",
                       std::string(trimmed.status().message())));
      trim_unsupported_.store(true, std::memory_order_relaxed);
      return;
    }
    if (!trimmed.ok() || trimmed->granules == 0) {
      spent.insert(open[0].hash);
      continue;
    }
    result->granules += trimmed->granules;
    result->bytes += trimmed->bytes;
    Bump(stats.granules_culled, trimmed->granules);
    Bump(stats.bytes_culled, trimmed->bytes);
  }
}

void Culler::CullWholeObjects(uint64_t target, CullResult* result) {
  CacheStats& stats = cache_->stats();
  // Bounded: every round removes an object, or fails to; failures end the
  // pass after a while (an object taken up again, an unlink that fails).
  int failures = 0;
  for (size_t round = 0; stored_bytes() > target && round < (1u << 24) &&
                         failures < 64 && !stopping_.HasBeenNotified();
       ++round) {
    // Taken before mu_: the volume's lock comes first.
    const absl::flat_hash_set<uint64_t> active = volume_->ActiveHashes();
    std::optional<CullKey> victim;
    uint32_t generation = 0;
    {
      absl::MutexLock lock(&mu_);
      victim = policy_->Evict([&](CullKey key) {
        return !active.contains(key) && cache_->MayCull(volume_->key(), key);
      });
      if (victim.has_value()) {
        auto it = index_.find(*victim);
        if (it != index_.end()) generation = it->second.generation;
      }
    }
    if (!victim.has_value()) break;
    if (!volume_->CullObject(*victim)) {
      // Picked up by a cookie since the snapshot: it stays.
      ++failures;
      absl::MutexLock lock(&mu_);
      auto it = index_.find(*victim);
      if (it != index_.end() && !policy_->Contains(*victim)) {
        policy_->Insert(*victim, it->second.bytes);
      }
      continue;
    }
    uint64_t bytes = 0;
    {
      absl::MutexLock lock(&mu_);
      auto it = index_.find(*victim);
      // A new object may have taken the name since; it stays indexed.
      if (it != index_.end() && it->second.generation == generation) {
        bytes = it->second.bytes;
        own_bytes_.fetch_sub(static_cast<int64_t>(bytes),
                             std::memory_order_relaxed);
        index_.erase(it);
      }
    }
    ++result->objects;
    result->bytes += bytes;
    Bump(stats.culls);
    Bump(stats.bytes_culled, bytes);
  }
}


bool Culler::SampleFilesystem(struct statvfs* fs) {
  if (statvfs(cache_->options().directory.c_str(), fs) != 0 ||
      fs->f_blocks == 0) {
    return false;
  }
  const int64_t total = static_cast<int64_t>(fs->f_blocks * fs->f_frsize);
  fs_stop_floor_.store(total / 100 * limits_.bstop, std::memory_order_relaxed);
  fs_cull_floor_.store(total / 100 * limits_.bcull, std::memory_order_relaxed);
  fs_free_bytes_.store(static_cast<int64_t>(fs->f_bavail * fs->f_frsize) -
                           fs_writes_in_flight_.load(std::memory_order_relaxed),
                       std::memory_order_relaxed);
  const double free_files =
      fs->f_files == 0 ? 100.0 : 100.0 * fs->f_favail / fs->f_files;
  files_full_.store(free_files < limits_.fstop, std::memory_order_relaxed);
  return true;
}

bool Culler::AdmitToFilesystem(uint64_t bytes) {
  const int64_t want = static_cast<int64_t>(bytes);
  int64_t free = fs_free_bytes_.fetch_sub(want, std::memory_order_relaxed) -
                 want;
  if (free < fs_cull_floor_.load(std::memory_order_relaxed)) {
    // Between samples the estimate only falls; culling and deletions may
    // have freed space since, so ask the filesystem before refusing.
    struct statvfs fs;
    if (SampleFilesystem(&fs)) {
      free = fs_free_bytes_.fetch_sub(want, std::memory_order_relaxed) - want;
    }
    Wake();
  }
  if (free < fs_stop_floor_.load(std::memory_order_relaxed) ||
      files_full_.load(std::memory_order_relaxed)) {
    fs_free_bytes_.fetch_add(want, std::memory_order_relaxed);
    Wake();
    LogEvent(LogLevel::kWarning, "cache-filesystem-floor",
             "culling is not keeping up: the cache filesystem's free space "
             "or free files are below the bstop or fstop floor; data read "
             "meanwhile is served from the origin and not cached");
    return false;
  }
  fs_writes_in_flight_.fetch_add(want, std::memory_order_relaxed);
  return true;
}

void Culler::WriteSettled(uint64_t bytes) {
  fs_writes_in_flight_.fetch_sub(static_cast<int64_t>(bytes),
                                 std::memory_order_relaxed);
}

uint64_t Culler::CheckFilesystem() {
  struct statvfs fs;
  if (!SampleFilesystem(&fs)) return 0;
  const double free_blocks = 100.0 * fs.f_bavail / fs.f_blocks;
  const double free_files =
      fs.f_files == 0 ? 100.0 : 100.0 * fs.f_favail / fs.f_files;
  uint64_t need = 0;
  if (free_blocks < limits_.bcull) {
    // Up to brun, and half a point more so culling does not restart at once.
    const double want = (limits_.brun + 0.5 - free_blocks) / 100.0;
    need = static_cast<uint64_t>(want * fs.f_blocks) * fs.f_frsize;
  }
  if (free_files < limits_.fcull) {
    // Objects are files: free a share of them, in bytes as the policy sees.
    const double want = (limits_.frun + 0.5 - free_files) / 100.0;
    const uint64_t files = static_cast<uint64_t>(want * fs.f_files);
    absl::MutexLock lock(&mu_);
    if (!index_.empty()) {
      need = std::max(need, stored_bytes() / index_.size() * files);
    }
  }
  return need;
}

void Culler::Index(const std::vector<Volume::StoredObject>& objects,
                   absl::flat_hash_map<uint64_t, Indexed>* index,
                   CullPolicy* policy, uint32_t* generation) {
  index->reserve(objects.size());
  policy->Reserve(objects.size());
  for (const Volume::StoredObject& o : objects) {
    (*index)[o.hash] = Indexed{o.bytes, static_cast<uint32_t>(o.last_used),
                               (*generation)++};
    policy->Insert(o.hash, o.bytes);
  }
}

void Culler::FinishLoading() {
  std::vector<Volume::StoredObject> objects;
  {
    absl::MutexLock lock(&mu_);
    if (!loading_) return;
    objects = std::move(to_load_);
  }
  // Built aside and swapped in: events meanwhile take mu_ only to queue.
  absl::flat_hash_map<uint64_t, Indexed> index;
  std::unique_ptr<CullPolicy> policy =
      *MakeCullPolicy(policy_name_, policy_capacity_);
  uint32_t generation = 1;
  Index(objects, &index, policy.get(), &generation);
  objects = {};
  {
    absl::MutexLock lock(&mu_);
    index_ = std::move(index);
    policy_ = std::move(policy);
    next_generation_ = generation;
    // The snapshot was the state at start; what happened since follows.
    for (const PendingEvent& e : pending_) {
      switch (e.kind) {
        case PendingEvent::kCharge:
          ChargeLocked(e.hash, e.delta, /*counted=*/true);
          break;
        case PendingEvent::kUsed:
          UsedLocked(e.hash, e.when);
          break;
        case PendingEvent::kRemoved:
          RemovedLocked(e.hash);
          break;
      }
    }
    pending_ = {};
    loading_ = false;
  }
  loaded_.Notify();
  // A million objects' worth of lists is gone: give the memory back.
  malloc_trim(0);
}

void Culler::DiscardUncleanObjects() {
  std::vector<std::pair<uint64_t, uint32_t>> objects;
  {
    absl::MutexLock lock(&mu_);
    objects.reserve(index_.size());
    for (const auto& [hash, e] : index_) objects.push_back({hash, e.generation});
  }
  uint64_t discarded = 0, bytes = 0;
  for (const auto& [hash, generation] : objects) {
    if (stopping_.HasBeenNotified()) break;
    absl::MutexLock pass(&pass_mu_);
    absl::StatusOr<Volume::ObjectInfo> info = volume_->DescribeObject(hash);
    // Objects in use are left to their cookies, which judged them already.
    if (!info.ok() || info->clean || !volume_->CullObject(hash, /*only_unclean=*/true)) {
      continue;
    }
    ++discarded;
    absl::MutexLock lock(&mu_);
    auto it = index_.find(hash);
    if (it != index_.end() && it->second.generation == generation) {
      bytes += it->second.bytes;
      own_bytes_.fetch_sub(static_cast<int64_t>(it->second.bytes),
                           std::memory_order_relaxed);
      policy_->Erase(hash);
      index_.erase(it);
    }
  }
  if (discarded > 0) {
    Bump(cache_->stats().objects_unclean_discarded, discarded);
    Log(LogLevel::kNotice,
        absl::StrCat("discarded ", discarded, " cached ",
                     discarded == 1 ? "file" : "files", " (", bytes,
                     " bytes) that were not closed cleanly: the daemon "
                     "stopped without unmounting; they are fetched from the "
                     "origin again when read"));
  }
}

void Culler::Loop() {
  FinishLoading();
  // After a stop without an unmount (no index snapshot), objects that were
  // being written then hold maps that are never trusted again.
  if (!loaded_from_snapshot_) DiscardUncleanObjects();
  while (!stopping_.HasBeenNotified()) {
    {
      absl::MutexLock lock(&mu_);
      // Often enough for mounts sharing the directory to see each other's
      // usage before either passes the limit by much.
      if (!wake_) wake_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(200));
      wake_ = false;
    }
    if (stopping_.HasBeenNotified()) break;
    ShareUsage();
    const uint64_t need = CheckFilesystem();
    const uint64_t stored = stored_bytes();
    const uint64_t refused = refused_bytes_.exchange(0);
    const uint64_t limit = cache_limit();
    uint64_t target = std::numeric_limits<uint64_t>::max();
    if (limit != 0 && stored + refused > CullMark()) {
      // Down to the run mark, less a margin of half a point of the limit.
      const uint64_t margin = limit / 200;
      const uint64_t run = RunMark();
      target = run > margin ? run - margin : 0;
      // And room for the refused write, whatever the marks say.
      target = std::min(target, limit - std::min(limit, refused));
    }
    if (need > 0) target = std::min(target, stored > need ? stored - need : 0);
    if (target == std::numeric_limits<uint64_t>::max() || stored <= target) {
      continue;
    }
    // This volume's share of the excess, by the bytes it holds: the other
    // mounts cull theirs at the same time.
    const uint64_t own = static_cast<uint64_t>(
        std::max<int64_t>(own_bytes_.load(std::memory_order_relaxed), 0));
    const uint64_t excess = stored - target;
    const uint64_t share = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(excess) * own + stored - 1) / stored);
    if (share == 0) continue;  // holds nothing: nothing to pass over
    Bump(cache_->stats().cull_passes);
    CullTo(stored - share);
  }
}

}  // namespace cachefs
