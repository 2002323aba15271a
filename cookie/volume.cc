#include "cookie/volume.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "contentmap/object_record.h"
#include "contentmap/record_store.h"
#include "cookie/cache.h"
#include "io/errno_status.h"
#include "io/log.h"

namespace cachefs {
namespace {

// Why a stored object cannot be used for (key, aux, size), or "" if it can.
std::string StaleReason(const absl::StatusOr<ObjectRecord>& record,
                        const struct stat& st, const std::string& volume_key,
                        const std::string& file_key, const std::string& aux,
                        uint64_t size, uint32_t granule_shift) {
  if (!record.ok()) return std::string(record.status().message());
  if (record->volume_key != volume_key || record->file_key != file_key) {
    return "hash collision with another key";
  }
  if (record->state != ContentState::kClean) return "not closed cleanly";
  if (record->aux != aux) return "coherency data differ";
  if (record->map.object_size() != size) return "object size differs";
  if (record->map.granule_shift() != granule_shift) {
    return "granule size differs";
  }
  if (!record->map.empty() && record->checksums.empty()) {
    return "no granule checksums";
  }
  // A backing file cut short behind our back cannot hold what the map says.
  uint64_t last = record->map.num_granules();
  while (last > 0 && !record->map.IsPresent(last - 1)) --last;
  uint64_t needed = std::min(size, last << granule_shift);
  if (static_cast<uint64_t>(st.st_size) < needed)
    return "backing file truncated";
  return "";
}

}  // namespace

Volume::Volume(Cache* cache, std::string key, int dir_fd)
    : cache_(cache), key_(std::move(key)), dir_fd_(dir_fd) {
  fan_fds_.fill(-1);
}

Volume::~Volume() {
  Env* env = cache_->env();
  for (int fd : fan_fds_) {
    if (fd >= 0) env->Close(fd).IgnoreError();
  }
  if (dir_fd_ >= 0) env->Close(dir_fd_).IgnoreError();
}

std::shared_ptr<Cookie> Volume::AcquireCookie(const std::string& file_key,
                                              const std::string& aux,
                                              uint64_t object_size,
                                              bool evict_active) {
  uint64_t hash = cache_->HashKey(key_, file_key);
  std::shared_ptr<Cookie> cookie;
  bool fresh = false;
  // Bounded: each pass evicts one holder of the key, and each holder is
  // evicted once.
  for (int pass = 0; evict_active && pass < 64; ++pass) {
    std::shared_ptr<Cookie> holder;
    {
      absl::MutexLock lock(&mu_);
      auto it = cookies_.find(file_key);
      if (it == cookies_.end() || it->second.tearing_down) break;
      holder = it->second.cookie;
    }
    // Its file lost the name: its data goes with its last user.
    absl::Status moved = RekeyCookie(
        holder, absl::StrCat("/evicted/", evictions_.fetch_add(1) + 1),
        /*retire=*/true);
    if (!moved.ok()) break;
  }
  {
    absl::MutexLock lock(&mu_);
    while (true) {
      auto it = cookies_.find(file_key);
      if (it == cookies_.end()) break;
      if (!it->second.tearing_down) {
        ++it->second.users;
        cookie = it->second.cookie;
        break;
      }
      // The previous cookie for this key is still writing back; the new
      // one must not look up the object before that is done.
      torn_down_.Wait(&mu_);
    }
    if (cookie == nullptr) {
      cookie = std::make_shared<Cookie>(this, file_key, aux, object_size);
      cookies_[file_key] = Entry{cookie, 1, false, false, hash};
      fresh = true;
    }
  }
  CacheStats& stats = cache_->stats();
  Bump(stats.cookies_acquired);
  if (Tracer& tracer = cache_->tracer(); tracer.active()) {
    tracer.Emit(TraceEvent("acquire", file_key)
                    .Bytes(object_size)
                    .Detail(fresh ? "new cookie" : "joined"));
  }
  if (fresh) {
    Bump(stats.cookies_active);
    cache_->dispatcher()->Dispatch(
        [this, cookie, hash] { Instantiate(cookie, hash); });
  } else if (cookie->aux() != aux || cookie->object_size() != object_size) {
    cookie->Invalidate(aux, object_size);
  }
  return cookie;
}

std::shared_ptr<Cookie> Volume::AcquireIdleCookie(const std::string& file_key,
                                                  const std::string& aux,
                                                  uint64_t object_size) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cookies_.find(file_key);
    if (it != cookies_.end() && !it->second.tearing_down) return nullptr;
  }
  // A cookie acquired in between is joined, as AcquireCookie would; the
  // caller's aux then only invalidates if it differs, as for any open.
  return AcquireCookie(file_key, aux, object_size);
}

void Volume::RelinquishCookie(std::shared_ptr<Cookie> cookie, bool retire) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cookies_.find(cookie->key());
    if (it == cookies_.end() || it->second.cookie != cookie) return;
    it->second.retire |= retire;
    if (--it->second.users > 0) return;
    it->second.tearing_down = true;
    retire = it->second.retire;
  }
  if (Tracer& tracer = cache_->tracer(); tracer.active()) {
    tracer.Emit(TraceEvent("relinquish", cookie->key())
                    .Detail(retire ? "retired (its file is gone)" : ""));
  }
  cache_->dispatcher()->Dispatch(
      [this, cookie = std::move(cookie), retire]() mutable {
        TearDown(std::move(cookie), retire);
      });
}

absl::Status Volume::RekeyCookie(const std::shared_ptr<Cookie>& cookie,
                                 const std::string& new_key, bool retire) {
  cookie->WaitReady();
  const uint64_t new_hash = cache_->HashKey(key_, new_key);
  absl::ReaderMutexLock service(&cache_->service_lock());
  absl::MutexLock lock(&mu_);
  const std::string old_key = cookie->key();
  if (old_key == new_key) return absl::OkStatus();
  while (true) {
    auto it = cookies_.find(new_key);
    if (it == cookies_.end()) break;
    if (!it->second.tearing_down) {
      return absl::FailedPreconditionError(
          absl::StrCat("cache key ", new_key, " is in use"));
    }
    torn_down_.Wait(&mu_);
  }
  auto it = cookies_.find(old_key);
  if (it == cookies_.end() || it->second.cookie != cookie) {
    return absl::FailedPreconditionError(
        absl::StrCat("cookie for ", old_key, " is not active"));
  }
  Entry entry = it->second;
  entry.retire |= retire;
  cookies_.erase(it);
  auto name = names_.find(entry.hash);
  if (name != names_.end() && name->second == old_key) names_.erase(name);
  entry.hash = new_hash;
  cookies_[new_key] = entry;
  cookie->SetKey(new_key);
  // All under the volume lock: a cookie acquired for either key now must
  // not look up a file that is half moved.
  std::shared_ptr<BackingObject> object = cookie->object();
  if (object == nullptr) return absl::OkStatus();
  absl::Status status;
  auto [owner, inserted] = names_.emplace(new_hash, new_key);
  if (!inserted && owner->second != new_key) {
    Bump(cache_->stats().collisions);
    status = absl::AlreadyExistsError("another active key has the name");
  }
  if (status.ok() && cache_->withdrawn()) {
    status = absl::FailedPreconditionError("the cache is withdrawn");
  }
  absl::StatusOr<int> fan_fd = FanDir(new_hash);
  if (status.ok() && !fan_fd.ok()) status = fan_fd.status();
  const uint64_t old_hash = object->hash();
  if (status.ok()) {
    status = object->MoveTo(*fan_fd, ObjectPathFor(new_hash).name,
                            BackingObject::Identity{key_, new_key});
  }
  if (status.ok()) {
    Bump(cache_->stats().objects_moved);
    if (CacheObserver* observer = cache_->observer()) {
      observer->Removed(key_, old_hash);
      observer->Removed(key_, new_hash);  // a stale object it replaced
      observer->Used(key_, new_hash);
      ContentMap map = object->MapSnapshot();
      observer->Charge(key_, new_hash,
                       static_cast<int64_t>(map.granules_present())
                           << map.granule_shift());
    }
  }
  if (!status.ok()) {
    // Keeping it under the old name would serve a later file there.
    object->Retire();
    cookie->WithdrawObject(status, object.get());
    UnlinkIfCurrent(*object);
  }
  return absl::OkStatus();
}

void Volume::DiscardObject(const std::string& file_key) {
  Env* env = cache_->env();
  const uint64_t hash = cache_->HashKey(key_, file_key);
  absl::ReaderMutexLock service(&cache_->service_lock());
  if (cache_->withdrawn()) return;
  absl::MutexLock lock(&mu_);
  if (cookies_.contains(file_key) || names_.contains(hash)) return;
  absl::StatusOr<int> fan_fd = FanDir(hash);
  if (!fan_fd.ok()) return;
  std::string name = ObjectPathFor(hash).name;
  absl::StatusOr<int> fd = env->OpenAt(*fan_fd, name, O_RDONLY | O_CLOEXEC, 0);
  if (!fd.ok()) return;
  // Only the key's own object: another key may hash to the same name.
  absl::StatusOr<ObjectRecord> record = LoadRecord(env, *fan_fd, name, *fd);
  env->Close(*fd).IgnoreError();
  if (record.ok() && record->file_key != file_key) return;
  env->UnlinkAt(*fan_fd, name, 0).IgnoreError();
  RemoveSidecar(env, *fan_fd, name).IgnoreError();
  Bump(cache_->stats().objects_discarded);
  if (CacheObserver* observer = cache_->observer()) {
    observer->Removed(key_, hash);
  }
}

bool Volume::HasObject(const std::string& file_key) {
  const uint64_t hash = cache_->HashKey(key_, file_key);
  absl::StatusOr<int> fan_fd = FanDir(hash);
  if (!fan_fd.ok()) return false;
  return cache_->env()
      ->FStatAt(*fan_fd, ObjectPathFor(hash).name, AT_SYMLINK_NOFOLLOW)
      .ok();
}

std::vector<Volume::StoredObject> Volume::ScanObjects() {
  std::vector<StoredObject> out;
  Env* env = cache_->env();
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  absl::StatusOr<std::vector<DirEntry>> fans = env->ReadDir(dir_fd_, ".");
  if (!fans.ok()) return out;
  for (const DirEntry& fan : *fans) {
    if (fan.name.size() != 2) continue;
    absl::StatusOr<int> fan_fd = env->OpenAt(dir_fd_, fan.name, flags, 0);
    if (!fan_fd.ok()) continue;
    absl::StatusOr<std::vector<DirEntry>> names = env->ReadDir(*fan_fd, ".");
    for (const DirEntry& obj : names.ok() ? *names : std::vector<DirEntry>{}) {
      if (obj.name.size() != 16 ||
          obj.name.find_first_not_of("0123456789abcdef") != std::string::npos) {
        continue;
      }
      absl::StatusOr<struct stat> st =
          env->FStatAt(*fan_fd, obj.name, AT_SYMLINK_NOFOLLOW);
      if (!st.ok() || !S_ISREG(st->st_mode)) continue;
      StoredObject o;
      o.hash = std::strtoull(obj.name.c_str(), nullptr, 16);
      o.bytes = static_cast<uint64_t>(st->st_blocks) * 512;
      o.last_used = std::max(st->st_atim.tv_sec, st->st_mtim.tv_sec);
      out.push_back(o);
    }
    env->Close(*fan_fd).IgnoreError();
  }
  return out;
}

absl::StatusOr<Volume::ObjectInfo> Volume::DescribeObject(uint64_t hash) {
  Env* env = cache_->env();
  absl::StatusOr<int> fan_fd = FanDir(hash);
  if (!fan_fd.ok()) return fan_fd.status();
  const std::string name = ObjectPathFor(hash).name;
  absl::StatusOr<int> fd = env->OpenAt(*fan_fd, name, O_RDONLY | O_CLOEXEC, 0);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<ObjectRecord> record = LoadRecord(env, *fan_fd, name, *fd);
  absl::StatusOr<struct stat> st = env->FStat(*fd);
  env->Close(*fd).IgnoreError();
  if (!record.ok()) return record.status();
  if (!st.ok()) return st.status();
  ObjectInfo info;
  info.file_key = record->file_key;
  info.bytes = static_cast<uint64_t>(st->st_blocks) * 512;
  info.object_size = record->map.object_size();
  info.granules = record->map.num_granules();
  info.granules_present = record->map.granules_present();
  info.clean = record->state == ContentState::kClean;
  info.aux = record->aux;
  const ObjectPath where = ObjectPathFor(hash);
  info.backing = absl::StrCat("volumes/", VolumeDirName(key_), "/",
                              where.fan_dir, "/", where.name);
  auto describe_map = [&info](const ContentMap& map) {
    info.object_size = map.object_size();
    info.granules = map.num_granules();
    info.granules_present = map.granules_present();
    info.granule_shift = map.granule_shift();
    info.present.assign(map.num_granules(), false);
    for (uint64_t g = 0; g < map.num_granules(); ++g) {
      info.present[g] = map.IsPresent(g);
    }
  };
  describe_map(record->map);
  // An object in use is described by its live map: the record on disk may
  // be a dirty one, which names no granules at all.
  std::shared_ptr<Cookie> user;
  {
    absl::MutexLock lock(&mu_);
    auto name = names_.find(hash);
    auto entry =
        name == names_.end() ? cookies_.end() : cookies_.find(name->second);
    if (entry != cookies_.end() && !entry->second.tearing_down) {
      user = entry->second.cookie;
    }
  }
  std::shared_ptr<BackingObject> live =
      user != nullptr && user->ready() ? user->object() : nullptr;
  if (live != nullptr && live->hash() == hash) {
    describe_map(live->MapSnapshot());
    info.in_use = true;
  }
  return info;
}

absl::StatusOr<Volume::ObjectInfo> Volume::DescribeObjectOf(
    const std::string& file_key) {
  absl::StatusOr<ObjectInfo> info =
      DescribeObject(cache_->HashKey(key_, file_key));
  if (info.ok() && info->file_key != file_key) {
    return absl::NotFoundError(
        absl::StrCat("no cached data for ", file_key,
                     " (its object name holds another file's)"));
  }
  if (absl::IsNotFound(info.status())) {
    return absl::NotFoundError(absl::StrCat("no cached data for ", file_key));
  }
  return info;
}

bool Volume::CullObject(uint64_t hash, bool only_unclean) {
  Env* env = cache_->env();
  absl::ReaderMutexLock service(&cache_->service_lock());
  absl::MutexLock lock(&mu_);
  // In use (a cookie has it, or is being set up or torn down with it).
  if (names_.contains(hash)) return false;
  for (const auto& [key, entry] : cookies_) {
    if (entry.hash == hash) return false;
  }
  absl::StatusOr<int> fan_fd = FanDir(hash);
  if (!fan_fd.ok()) return false;
  const std::string name = ObjectPathFor(hash).name;
  if (only_unclean) {
    absl::StatusOr<int> fd =
        env->OpenAt(*fan_fd, name, O_RDONLY | O_CLOEXEC, 0);
    if (!fd.ok()) return false;
    absl::StatusOr<ObjectRecord> record = LoadRecord(env, *fan_fd, name, *fd);
    env->Close(*fd).IgnoreError();
    if (!record.ok() || record->state == ContentState::kClean) return false;
  }
  absl::Status gone = env->UnlinkAt(*fan_fd, name, 0);
  RemoveSidecar(env, *fan_fd, name).IgnoreError();
  const bool culled = gone.ok() || absl::IsNotFound(gone);
  if (Tracer& tracer = cache_->tracer(); culled && tracer.active()) {
    tracer.Emit(TraceEvent("cull", "")
                    .Detail(absl::StrCat("object ", name,
                                         only_unclean ? " (unclean)" : "")));
  }
  return culled;
}

absl::flat_hash_set<uint64_t> Volume::ActiveHashes() const {
  absl::flat_hash_set<uint64_t> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [hash, key] : names_) out.insert(hash);
  for (const auto& [key, entry] : cookies_) out.insert(entry.hash);
  return out;
}

size_t Volume::active_cookies() const {
  absl::MutexLock lock(&mu_);
  return cookies_.size();
}

std::vector<std::shared_ptr<Cookie>> Volume::Cookies() const {
  std::vector<std::shared_ptr<Cookie>> out;
  absl::MutexLock lock(&mu_);
  out.reserve(cookies_.size());
  for (const auto& [key, entry] : cookies_) out.push_back(entry.cookie);
  return out;
}

void Volume::Instantiate(const std::shared_ptr<Cookie>& cookie, uint64_t hash) {
  absl::ReaderMutexLock service(&cache_->service_lock());
  if (cache_->withdrawn()) {
    cookie->SetObject(nullptr);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = names_.emplace(hash, cookie->key());
    if (!inserted && it->second != cookie->key()) {
      // Another active key owns this name: go uncached rather than share.
      Bump(cache_->stats().collisions);
      cookie->SetObject(nullptr);
      return;
    }
  }
  auto object =
      LookUpObject(cookie->key(), cookie->aux(), cookie->object_size(), hash);
  if (!object.ok()) {
    CountCacheFault(cache_->stats(), object.status());
    LogEvent(LogLevel::kWarning, "no-cache-object",
             absl::StrCat("no cache object for ", cookie->key(),
                          " (served from the origin): ",
                          std::string(object.status().message())),
             absl::Seconds(10));
    cookie->SetObject(nullptr);
    return;
  }
  (*object)->SetMemory(MemoryPinOf(hash));
  cookie->SetObject(*std::move(object));
}

void Volume::SetMemoryPin(uint64_t hash,
                          std::shared_ptr<const LockedMapping> memory) {
  {
    absl::MutexLock lock(&memory_mu_);
    memory_pins_[hash] = memory;
  }
  for (const std::shared_ptr<Cookie>& cookie : Cookies()) {
    if (!cookie->ready()) continue;  // it takes the pin when it is
    std::shared_ptr<BackingObject> object = cookie->object();
    if (object != nullptr && object->hash() == hash) object->SetMemory(memory);
  }
}

void Volume::DropMemoryPin(uint64_t hash) {
  std::shared_ptr<const LockedMapping> dropped;
  {
    absl::MutexLock lock(&memory_mu_);
    auto it = memory_pins_.find(hash);
    if (it == memory_pins_.end()) return;
    dropped = std::move(it->second);
    memory_pins_.erase(it);
  }
  for (const std::shared_ptr<Cookie>& cookie : Cookies()) {
    if (!cookie->ready()) continue;
    std::shared_ptr<BackingObject> object = cookie->object();
    if (object != nullptr && object->memory() == dropped) {
      object->SetMemory(nullptr);
    }
  }
}

std::shared_ptr<const LockedMapping> Volume::MemoryPinOf(uint64_t hash) const {
  absl::MutexLock lock(&memory_mu_);
  auto it = memory_pins_.find(hash);
  if (it == memory_pins_.end() || it->second->stale()) return nullptr;
  return it->second;
}

absl::StatusOr<std::shared_ptr<BackingObject>> Volume::LookUpObject(
    const std::string& file_key, const std::string& aux, uint64_t size,
    uint64_t hash) {
  Env* env = cache_->env();
  const CacheOptions& options = cache_->options();
  absl::StatusOr<int> fan_fd = FanDir(hash);
  if (!fan_fd.ok()) return fan_fd.status();
  std::string name = ObjectPathFor(hash).name;
  bool direct = false;
  absl::StatusOr<int> fd =
      OpenBackingFile(env, *fan_fd, name, O_RDWR | O_CLOEXEC, 0,
                      options.allow_buffered_io, &direct);
  Tracer& tracer = cache_->tracer();
  if (!fd.ok()) {
    if (!absl::IsNotFound(fd.status())) return fd.status();
    Bump(cache_->stats().lookups_negative);
    if (tracer.active()) {
      tracer.Emit(TraceEvent("lookup", file_key).Detail("negative"));
    }
    return CreateObject(file_key, aux, size);
  }
  absl::StatusOr<ObjectRecord> record = LoadRecord(env, *fan_fd, name, *fd);
  absl::StatusOr<struct stat> st = env->FStat(*fd);
  std::string stale = st.ok() ? StaleReason(record, *st, key_, file_key, aux,
                                            size, options.granule_shift)
                              : std::string(st.status().message());
  if (tracer.active()) {
    tracer.Emit(TraceEvent("lookup", file_key)
                    .Detail(stale.empty() ? "positive" : "stale: " + stale));
  }
  if (stale.empty()) {
    Bump(cache_->stats().lookups_positive);
    auto object = std::make_shared<BackingObject>(
        env, *fan_fd, name, *fd, direct,
        BackingObject::Identity{key_, file_key}, std::move(record->map),
        record->checksums);
    object->SetObserver(cache_->observer());
    object->SetPersisted(aux);
    if (CacheObserver* observer = cache_->observer())
      observer->Used(key_, hash);
    return object;
  }
  if (record.ok() && record->file_key != file_key) {
    Bump(cache_->stats().collisions);
  }
  Bump(cache_->stats().lookups_stale);
  env->Close(*fd).IgnoreError();
  return CreateObject(file_key, aux, size);
}

absl::StatusOr<int> Volume::FanDir(uint64_t hash) {
  Env* env = cache_->env();
  size_t index = hash >> 56;
  {
    absl::MutexLock lock(&fan_mu_);
    if (fan_fds_[index] >= 0) return fan_fds_[index];
  }
  std::string fan = ObjectPathFor(hash).fan_dir;
  absl::Status made = env->MkdirAt(dir_fd_, fan, 0700);
  if (!made.ok() && !absl::IsAlreadyExists(made)) return made;
  absl::StatusOr<int> fd =
      env->OpenAt(dir_fd_, fan, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (!fd.ok()) return fd.status();
  absl::MutexLock lock(&fan_mu_);
  if (fan_fds_[index] >= 0) {  // another thread opened it meanwhile
    env->Close(*fd).IgnoreError();
  } else {
    fan_fds_[index] = *fd;
  }
  return fan_fds_[index];
}

absl::StatusOr<std::shared_ptr<BackingObject>> Volume::CreateObject(
    const std::string& file_key, const std::string& aux, uint64_t size) {
  Env* env = cache_->env();
  const CacheOptions& options = cache_->options();
  uint64_t hash = cache_->HashKey(key_, file_key);
  std::string name = ObjectPathFor(hash).name;
  absl::StatusOr<int> fan_fd = FanDir(hash);
  if (!fan_fd.ok()) return fan_fd.status();
  bool direct = false;
  absl::StatusOr<int> fd =
      OpenBackingFile(env, *fan_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600,
                      options.allow_buffered_io, &direct);
  if (!fd.ok()) return fd.status();
  auto object = std::make_shared<BackingObject>(
      env, *fan_fd, name, *fd, direct, BackingObject::Identity{key_, file_key},
      ContentMap(size, options.granule_shift));
  object->SetObserver(cache_->observer());
  ObjectRecord record;
  record.volume_key = key_;
  record.file_key = file_key;
  record.aux = aux;
  record.map = ContentMap(size, options.granule_shift);
  absl::Status status = env->FTruncate(*fd, size);
  if (status.ok()) status = StoreRecord(env, *fan_fd, name, *fd, record);
  if (status.ok()) status = LinkIntoPlace(*fan_fd, *fd, name);
  if (!status.ok()) {
    object->Retire();
    return Annotate(status, absl::StrCat("creating cache object ", name,
                                         " for ", file_key));
  }
  object->SetPersisted(aux);
  if (CacheObserver* observer = cache_->observer()) {
    observer->Removed(key_, hash);  // whatever had the name before
    observer->Used(key_, hash);
  }
  return object;
}

absl::Status Volume::LinkIntoPlace(int fan_fd, int fd,
                                   const std::string& name) {
  Env* env = cache_->env();
  // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc path does
  // not. A temporary name, then rename, replaces the old object atomically.
  std::string tmp = name + ".new";
  std::string proc = absl::StrCat("/proc/self/fd/", fd);
  env->UnlinkAt(fan_fd, tmp, 0).IgnoreError();  // left by a crash
  absl::Status status =
      env->LinkAt(AT_FDCWD, proc, fan_fd, tmp, AT_SYMLINK_FOLLOW);
  if (!status.ok()) return status;
  status = env->RenameAt(fan_fd, tmp, fan_fd, name, 0);
  if (!status.ok()) {
    env->UnlinkAt(fan_fd, tmp, 0).IgnoreError();
    return status;
  }
  // A sidecar of the object we replaced would not match our record.
  RemoveSidecar(env, fan_fd, name).IgnoreError();
  return absl::OkStatus();
}

void Volume::TearDown(std::shared_ptr<Cookie> cookie, bool retire) {
  // Before the service lock: instantiation needs it too, and a withdrawal
  // waiting for it would block instantiation behind us.
  cookie->WaitReady();
  {
    absl::ReaderMutexLock service(&cache_->service_lock());
    std::shared_ptr<BackingObject> object = cookie->DetachObject();
    if (object != nullptr) {
      object->WaitIdle();
      if (retire) {
        object->Retire();
        UnlinkIfCurrent(*object);
      } else {
        absl::StatusOr<bool> wrote = object->Checkpoint(cookie->aux());
        if (wrote.ok() && *wrote) Bump(cache_->stats().checkpoints);
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto name = names_.find(cache_->HashKey(key_, cookie->key()));
    if (name != names_.end() && name->second == cookie->key()) {
      names_.erase(name);
    }
    cookies_.erase(cookie->key());
    torn_down_.SignalAll();
  }
  Bump(cache_->stats().cookies_relinquished);
  cache_->stats().cookies_active.fetch_sub(1, std::memory_order_relaxed);
}

std::vector<int64_t> Volume::FanDirTimes() {
  std::vector<int64_t> times(256, 0);
  for (size_t i = 0; i < times.size(); ++i) {
    absl::StatusOr<struct stat> st = cache_->env()->FStatAt(
        dir_fd_, ObjectPathFor(uint64_t{i} << 56).fan_dir, AT_SYMLINK_NOFOLLOW);
    if (st.ok()) {
      times[i] = int64_t{st->st_mtim.tv_sec} * 1000000000 + st->st_mtim.tv_nsec;
    }
  }
  return times;
}

absl::StatusOr<std::string> Volume::ReadFile(const std::string& name,
                                             size_t max_size) {
  Env* env = cache_->env();
  absl::StatusOr<int> fd =
      env->OpenAt(dir_fd_, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (!fd.ok()) return fd.status();
  std::string data;
  absl::StatusOr<struct stat> st = env->FStat(*fd);
  absl::Status status = st.status();
  if (status.ok() && static_cast<uint64_t>(st->st_size) > max_size) {
    status = absl::OutOfRangeError(
        absl::StrCat(name, " is larger than ", max_size, " bytes"));
  }
  if (status.ok()) {
    data.resize(st->st_size);
    absl::StatusOr<size_t> n = env->PRead(*fd, data.data(), data.size(), 0);
    status = n.status();
    if (n.ok()) data.resize(*n);
  }
  env->Close(*fd).IgnoreError();
  if (!status.ok()) return Annotate(status, "reading " + name);
  return data;
}

absl::Status Volume::WriteFile(const std::string& name, std::string_view data) {
  Env* env = cache_->env();
  const std::string tmp = name + ".tmp";
  absl::StatusOr<int> fd =
      env->OpenAt(dir_fd_, tmp,
                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (!fd.ok()) return Annotate(fd.status(), "writing " + name);
  absl::StatusOr<size_t> n = env->PWrite(*fd, data.data(), data.size(), 0);
  absl::Status status = n.status();
  if (status.ok() && *n != data.size()) {
    status = absl::DataLossError("short write");
  }
  if (status.ok()) status = env->FDataSync(*fd);
  env->Close(*fd).IgnoreError();
  if (status.ok()) status = env->RenameAt(dir_fd_, tmp, dir_fd_, name, 0);
  if (!status.ok()) {
    env->UnlinkAt(dir_fd_, tmp, 0).IgnoreError();
    return Annotate(status, "writing " + name);
  }
  return absl::OkStatus();
}

absl::Status Volume::RemoveFile(const std::string& name) {
  absl::Status status = cache_->env()->UnlinkAt(dir_fd_, name, 0);
  if (absl::IsNotFound(status)) return absl::OkStatus();
  return status;
}

void Volume::UnlinkIfCurrent(const BackingObject& object) {
  Env* env = cache_->env();
  auto linked =
      env->FStatAt(object.dir_fd(), object.name(), AT_SYMLINK_NOFOLLOW);
  auto mine = env->FStat(object.file().fd);
  if (!linked.ok() || !mine.ok() || linked->st_ino != mine->st_ino ||
      linked->st_dev != mine->st_dev) {
    return;  // the name belongs to a newer object now
  }
  env->UnlinkAt(object.dir_fd(), object.name(), 0).IgnoreError();
  RemoveSidecar(env, object.dir_fd(), object.name()).IgnoreError();
  if (CacheObserver* observer = cache_->observer()) {
    observer->Removed(key_, object.hash());
  }
}

}  // namespace cachefs
