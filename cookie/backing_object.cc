#include "cookie/backing_object.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <utility>

#include "contentmap/crc32c.h"
#include "contentmap/granule_checksums.h"
#include "contentmap/object_record.h"
#include "contentmap/record_store.h"
#include "io/errno_status.h"

namespace cachefs {

BackingObject::BackingObject(Env* env, int dir_fd, std::string name, int fd,
                             bool direct, Identity identity, ContentMap map,
                             const std::vector<uint32_t>& checksums)
    : env_(env),
      fd_(fd),
      direct_(direct),
      granule_shift_(map.granule_shift()),
      dir_fd_(dir_fd),
      name_(std::move(name)),
      identity_(std::move(identity)),
      map_(std::move(map)),
      checksums_(UnpackChecksums(map_, checksums)),
      referenced_(map_.object_size(), map_.granule_shift()) {}

BackingObject::ReadPin::ReadPin(ReadPin&& other) noexcept
    : object_(std::exchange(other.object_, nullptr)), epoch_(other.epoch_) {}

BackingObject::ReadPin& BackingObject::ReadPin::operator=(
    ReadPin&& other) noexcept {
  if (this != &other) {
    Release();
    object_ = std::exchange(other.object_, nullptr);
    epoch_ = other.epoch_;
  }
  return *this;
}

void BackingObject::ReadPin::Release() {
  if (object_ != nullptr) std::exchange(object_, nullptr)->Unpin(epoch_);
}

void BackingObject::Unpin(uint64_t epoch) {
  absl::MutexLock lock(&mu_);
  if (--pinned_[epoch % 2] == 0) unpinned_.SignalAll();
}

void BackingObject::ResizeReferenced() {
  referenced_.ResizeKeepingPartial(map_.object_size());
  checksums_.resize(map_.num_granules(), 0);
  if (hand_ >= map_.num_granules()) hand_ = 0;
}

void BackingObject::MarkStored(uint64_t first, uint64_t count,
                               const StoredChecksums& stored) {
  const uint64_t granule = uint64_t{1} << granule_shift_;
  for (uint64_t i = 0; i < count && first + i < map_.num_granules(); ++i) {
    const uint64_t g = first + i;
    const uint64_t base = g << granule_shift_;
    const uint64_t summed =
        stored.object_size > base
            ? std::min(granule, stored.object_size - base)
            : 0;
    const uint64_t now = GranuleBytes(map_, g);
    if (i >= stored.crcs.size() || now < summed) {
      // Cannot happen under a claim (a cut waits for it); never present
      // without a checksum that covers the granule.
      map_.Clear(g, 1);
      continue;
    }
    checksums_[g] = Crc32cExtendZeros(stored.crcs[i], now - summed);
    map_.MarkPresent(g, 1);
    referenced_.MarkPresent(g, 1);
  }
}

bool BackingObject::ChecksumOf(uint64_t granule, uint32_t* crc,
                               uint64_t* bytes) const {
  absl::MutexLock lock(&mu_);
  if (granule >= map_.num_granules() || !map_.IsPresent(granule)) return false;
  *crc = checksums_[granule];
  *bytes = GranuleBytes(map_, granule);
  return true;
}

void BackingObject::DropGranule(uint64_t granule) {
  int64_t delta;
  {
    absl::MutexLock lock(&mu_);
    if (granule >= map_.num_granules() || !map_.IsPresent(granule)) return;
    const uint64_t before = StoredBytes();
    map_.Clear(granule, 1);
    referenced_.Clear(granule, 1);
    delta = static_cast<int64_t>(StoredBytes()) - static_cast<int64_t>(before);
    map_changed_ = true;
  }
  ReportBytes(delta);
}

uint64_t BackingObject::hash() const {
  return std::strtoull(name().c_str(), nullptr, 16);
}

uint64_t BackingObject::StoredBytes() const {
  const uint64_t present = map_.granules_present();
  if (present == 0) return 0;
  uint64_t bytes = present << granule_shift_;
  // The last granule holds only the file's tail, written whole blocks.
  const uint64_t last = map_.num_granules() - 1;
  if (map_.IsPresent(last)) {
    const uint64_t tail = map_.object_size() - (last << granule_shift_);
    const uint64_t blocks = (tail + kDirectIoAlignment - 1) &
                            ~uint64_t{kDirectIoAlignment - 1};
    bytes -= (uint64_t{1} << granule_shift_) -
             std::min<uint64_t>(blocks, uint64_t{1} << granule_shift_);
  }
  return bytes;
}

void BackingObject::ReportBytes(int64_t delta) {
  if (observer_ == nullptr || delta == 0) return;
  std::string volume_key;
  {
    absl::MutexLock lock(&where_mu_);
    volume_key = identity_.volume_key;
  }
  observer_->Charge(volume_key, hash(), delta);
}

void BackingObject::SetMemory(std::shared_ptr<const LockedMapping> memory) {
  if (memory != nullptr && (memory->stale() || !memory->Maps(fd_))) return;
  absl::MutexLock lock(&memory_mu_);
  memory_ = std::move(memory);
}

std::shared_ptr<const LockedMapping> BackingObject::memory() const {
  absl::MutexLock lock(&memory_mu_);
  if (memory_ != nullptr && memory_->stale()) return nullptr;
  return memory_;
}

void BackingObject::DropMemory() {
  std::shared_ptr<const LockedMapping> dropped;
  {
    absl::MutexLock lock(&memory_mu_);
    dropped = std::move(memory_);
  }
  if (dropped == nullptr) return;
  // Whoever else holds it (the volume's pins) stops handing it out.
  dropped->MarkStale();
  if (observer_ == nullptr) return;
  std::string volume_key;
  {
    absl::MutexLock lock(&where_mu_);
    volume_key = identity_.volume_key;
  }
  observer_->MemoryDropped(volume_key, hash());
}

std::string BackingObject::name() const {
  absl::MutexLock lock(&where_mu_);
  return name_;
}

int BackingObject::dir_fd() const {
  absl::MutexLock lock(&where_mu_);
  return dir_fd_;
}

BackingObject::~BackingObject() {
  inflight_.WaitAll();
  env_->Close(fd_).IgnoreError();
}

void BackingObject::SetPersisted(const std::string& aux) {
  absl::MutexLock record_lock(&record_mu_);
  persisted_aux_ = aux;
  persisted_known_ = true;
  absl::MutexLock lock(&mu_);
  map_changed_ = false;
}

uint64_t BackingObject::object_size() const {
  absl::MutexLock lock(&mu_);
  return map_.object_size();
}

ContentMap BackingObject::MapSnapshot() const {
  absl::MutexLock lock(&mu_);
  return map_;
}

std::vector<ReadSegment> BackingObject::PlanRead(uint64_t pos, uint64_t len,
                                                ReadPin* pin) {
  if (pin != nullptr) pin->Release();
  std::vector<ReadSegment> segments;
  uint64_t size = object_size();
  if (pos >= size || len == 0) return segments;
  uint64_t end = std::min(size, pos + len);
  uint64_t first = pos >> granule_shift_;
  uint64_t last = (end - 1) >> granule_shift_;
  // A granule being stored is not present yet; wait so the reader finds
  // it in the cache instead of fetching it from the origin a second time.
  inflight_.WaitRange(first, last - first + 1);

  absl::MutexLock lock(&mu_);
  bool from_cache = false;
  map_.ForEachRun(pos, end - pos, [&](const ContentMap::Run& run) {
    uint64_t run_pos = std::max(pos, run.first << granule_shift_);
    uint64_t run_end = std::min(end, (run.first + run.count) << granule_shift_);
    auto source = run.present ? ReadSegment::Source::kCache
                              : ReadSegment::Source::kOrigin;
    segments.push_back({source, run_pos, run_end - run_pos});
  });
  for (const ReadSegment& s : segments) {
    if (s.source != ReadSegment::Source::kCache) continue;
    const uint64_t g = s.pos >> granule_shift_;
    referenced_.MarkPresent(g, ((s.pos + s.len - 1) >> granule_shift_) - g + 1);
    from_cache = true;
  }
  if (pin != nullptr && from_cache) {
    pin->object_ = this;
    pin->epoch_ = read_epoch_;
    ++pinned_[read_epoch_ % 2];
  }
  return segments;
}

bool BackingObject::BeginWrite(uint64_t first, uint64_t count) {
  absl::ReleasableMutexLock lock(&mu_);
  for (uint64_t g = first; g < first + count; ++g) {
    if (g >= map_.num_granules() || map_.IsPresent(g)) return false;
  }
  if (!inflight_.TryBegin(first, count)) return false;
  ++writes_in_flight_;
  lock.Release();
  DropMemory();
  return true;
}

void BackingObject::EndWrite(uint64_t first, uint64_t count,
                             const StoredChecksums* stored) {
  int64_t delta = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stored != nullptr) {
      const uint64_t before = StoredBytes();
      MarkStored(first, count, *stored);
      delta = static_cast<int64_t>(StoredBytes()) -
              static_cast<int64_t>(before);
      map_changed_ = true;
    }
    --writes_in_flight_;
  }
  // Reported before the claim ends: a withdrawal waiting for it must not
  // report the object gone first.
  ReportBytes(delta);
  inflight_.End(first, count);
}

bool BackingObject::BeginOverwrite(uint64_t first, uint64_t count) {
  while (true) {
    inflight_.WaitRange(first, count);
    absl::ReleasableMutexLock lock(&mu_);
    if (first + count > map_.num_granules()) return false;
    // TryBegin fails only if another claim slipped in since the wait.
    if (inflight_.TryBegin(first, count)) {
      ++writes_in_flight_;
      lock.Release();
      DropMemory();
      return true;
    }
  }
}

void BackingObject::SetGranules(uint64_t first, uint64_t count,
                                const StoredChecksums* stored) {
  int64_t delta;
  {
    absl::MutexLock lock(&mu_);
    const uint64_t before = StoredBytes();
    if (stored != nullptr) {
      MarkStored(first, count, *stored);
    } else {
      map_.Clear(first, count);
      referenced_.Clear(first, count);
    }
    delta = static_cast<int64_t>(StoredBytes()) - static_cast<int64_t>(before);
    map_changed_ = true;
  }
  ReportBytes(delta);
}

bool BackingObject::IsPresent(uint64_t granule) const {
  absl::MutexLock lock(&mu_);
  return granule < map_.num_granules() && map_.IsPresent(granule);
}

absl::Status BackingObject::WriteRecord(bool dirty, const ContentMap& map,
                                        const std::vector<uint32_t>& checksums,
                                        const std::string& aux) {
  ObjectRecord record;
  record.state = dirty ? ContentState::kDirty : ContentState::kClean;
  record.aux = aux;
  record.map = map;
  record.checksums = checksums;
  int dir_fd;
  std::string name;
  {
    absl::MutexLock lock(&where_mu_);
    record.volume_key = identity_.volume_key;
    record.file_key = identity_.file_key;
    dir_fd = dir_fd_;
    name = name_;
  }
  return StoreRecord(env_, dir_fd, name, fd_, record);
}

absl::Status BackingObject::MoveTo(int dir_fd, std::string name,
                                   Identity identity) {
  absl::MutexLock record_lock(&record_mu_);
  if (retired()) {
    return absl::FailedPreconditionError("object " + this->name() +
                                         " is retired");
  }
  int old_dir;
  std::string old_name;
  {
    absl::MutexLock lock(&where_mu_);
    old_dir = dir_fd_;
    old_name = name_;
  }
  RemoveSidecar(env_, dir_fd, name).IgnoreError();
  absl::Status status = env_->RenameAt(old_dir, old_name, dir_fd, name, 0);
  if (!status.ok()) {
    return Annotate(status, "moving cache object " + old_name + " to " + name);
  }
  RemoveSidecar(env_, old_dir, old_name).IgnoreError();
  {
    absl::MutexLock lock(&where_mu_);
    dir_fd_ = dir_fd;
    name_ = std::move(name);
    identity_ = std::move(identity);
  }
  // Until then the record names the old key, so a crash leaves an object
  // that no lookup accepts (a collision): safe.
  status = WriteRecord(/*dirty=*/true,
                       ContentMap(object_size(), granule_shift_), {},
                       persisted_aux_);
  if (!status.ok()) {
    return Annotate(status, "rewriting the record of " + this->name());
  }
  persisted_dirty_ = true;
  dirty_hint_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status BackingObject::EnsureDirty(const std::string& aux) {
  if (dirty_hint_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock record_lock(&record_mu_);
  if (persisted_dirty_) return absl::OkStatus();
  if (retired()) {
    return absl::FailedPreconditionError("object " + name() + " is retired");
  }
  // A dirty record's map is never trusted, so an empty one keeps it small.
  absl::Status status =
      WriteRecord(/*dirty=*/true, ContentMap(object_size(), granule_shift_),
                  {}, aux);
  if (!status.ok()) return Annotate(status, "marking " + name() + " dirty");
  persisted_dirty_ = true;
  dirty_hint_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<bool> BackingObject::Checkpoint(const std::string& aux) {
  absl::MutexLock record_lock(&record_mu_);
  if (retired()) return false;
  // Clear the hint before the snapshot: a writer that claims granules after
  // the snapshot must take the slow path and wait for us (see header).
  dirty_hint_.store(false, std::memory_order_release);
  ContentMap snapshot;
  std::vector<uint32_t> checksums;
  {
    absl::MutexLock lock(&mu_);
    if (!NoWritesInFlight()) {
      dirty_hint_.store(persisted_dirty_, std::memory_order_release);
      return absl::UnavailableError("cache writes in flight on " + name());
    }
    if (!persisted_dirty_ && !map_changed_ && persisted_known_ &&
        persisted_aux_ == aux) {
      return false;  // the record on disk says it all already
    }
    snapshot = map_;
    checksums = PackChecksums(map_, checksums_);
    map_changed_ = false;
  }
  absl::Status status = env_->FDataSync(fd_);
  if (status.ok()) {
    status = WriteRecord(/*dirty=*/false, snapshot, checksums, aux);
  }
  if (!status.ok()) {
    dirty_hint_.store(persisted_dirty_, std::memory_order_release);
    absl::MutexLock lock(&mu_);
    map_changed_ = true;
    return Annotate(status, "checkpointing " + name());
  }
  persisted_dirty_ = false;
  persisted_aux_ = aux;
  persisted_known_ = true;
  return true;
}

absl::Status BackingObject::Resize(uint64_t new_size, const std::string& aux) {
  const uint64_t old_size = object_size();
  if (new_size == old_size) return absl::OkStatus();
  DropMemory();
  absl::Status status = EnsureDirty(aux);
  if (!status.ok()) return status;
  if (new_size > old_size) {
    // The file may run past the old end (alignment padding, or a fill that
    // read the origin before a truncation): what lies there must read as
    // the zeros the origin now has. Cut first, then grow the map, so no
    // granule past the old end can be claimed and stored before the cut.
    status = env_->FTruncate(fd_, old_size);
    if (status.ok()) status = env_->FTruncate(fd_, new_size);
    if (!status.ok()) return Annotate(status, "resizing " + name());
    // Growing cuts nothing away, so nothing in flight needs waiting for.
    int64_t grown;
    {
      absl::MutexLock lock(&mu_);
      const uint64_t before = StoredBytes();
      const uint64_t last = map_.num_granules() - 1;
      const bool partial_present = map_.num_granules() > 0 &&
                                   map_.IsPresent(last) &&
                                   GranuleBytes(map_, last) <
                                       map_.granule_size();
      const uint64_t last_bytes = partial_present ? GranuleBytes(map_, last)
                                                  : 0;
      map_.ResizeKeepingPartial(std::max(new_size, map_.object_size()));
      ResizeReferenced();
      // Past the old end the file now reads as zeros (the cut above).
      if (partial_present) {
        checksums_[last] = Crc32cExtendZeros(
            checksums_[last], GranuleBytes(map_, last) - last_bytes);
      }
      map_changed_ = true;
      // A kept partial granule now counts whole: an append is about to
      // fill it (a bare extension leaves holes, counted until a rescan).
      grown = static_cast<int64_t>(StoredBytes()) -
              static_cast<int64_t>(before);
    }
    ReportBytes(grown);
    return absl::OkStatus();
  }
  int64_t cut = 0;
  // Writes in flight past the cut would land in the cut-away region, so
  // the map is resized only when none is; BeginWrite checks under mu_, so
  // none can start in between, and none can claim a granule past the end
  // once the map is resized.
  while (true) {
    uint64_t from = std::min(object_size(), new_size) >> granule_shift_;
    inflight_.WaitRange(from, ~uint64_t{0} - from);
    absl::MutexLock lock(&mu_);
    from = std::min(map_.object_size(), new_size) >> granule_shift_;
    if (inflight_.AnyInRange(from, ~uint64_t{0} - from)) continue;
    const uint64_t before = StoredBytes();
    const uint64_t cut_granule = new_size >> granule_shift_;
    const uint64_t kept_bytes = new_size & (map_.granule_size() - 1);
    std::optional<uint32_t> cut_crc;
    if (kept_bytes > 0 && cut_granule < map_.num_granules() &&
        map_.IsPresent(cut_granule)) {
      cut_crc = ChecksumOfPrefix(cut_granule, kept_bytes);
    }
    map_.ResizeKeepingPartial(new_size);
    ResizeReferenced();
    // The new partial last granule stays (the truncation below makes what
    // lies past the end read as zeros, as it does on the origin) if its
    // kept bytes could be summed anew; otherwise it goes.
    if (kept_bytes > 0 && cut_granule < map_.num_granules()) {
      if (cut_crc.has_value()) {
        checksums_[cut_granule] = *cut_crc;
      } else {
        map_.Clear(cut_granule, 1);
        referenced_.Clear(cut_granule, 1);
      }
    }
    cut = static_cast<int64_t>(StoredBytes()) - static_cast<int64_t>(before);
    map_changed_ = true;
    break;
  }
  ReportBytes(cut);
  status = env_->FTruncate(fd_, new_size);
  if (!status.ok()) return Annotate(status, "resizing " + name());
  return absl::OkStatus();
}

std::optional<uint32_t> BackingObject::ChecksumOfPrefix(uint64_t granule,
                                                        uint64_t bytes) {
  const uint64_t whole = GranuleBytes(map_, granule);
  const size_t io_length =
      (whole + kDirectIoAlignment - 1) & ~(kDirectIoAlignment - 1);
  // O_DIRECT wants an aligned buffer.
  std::unique_ptr<char, decltype(&std::free)> buffer(
      static_cast<char*>(std::aligned_alloc(kDirectIoAlignment, io_length)),
      &std::free);
  if (buffer == nullptr) return std::nullopt;
  absl::StatusOr<size_t> n = env_->PRead(fd_, buffer.get(), io_length,
                                         granule << granule_shift_);
  if (!n.ok() || *n < whole) return std::nullopt;
  // Bytes that no longer match their checksum are not summed anew.
  if (Crc32c(std::string_view(buffer.get(), whole)) != checksums_[granule]) {
    return std::nullopt;
  }
  return Crc32c(std::string_view(buffer.get(), bytes));
}

std::vector<uint64_t> BackingObject::PickColdGranules(uint64_t max) {
  std::vector<uint64_t> victims;
  const uint64_t n = map_.num_granules();
  if (n == 0 || max == 0 || map_.granules_present() == 0) return victims;
  if (hand_ >= n) hand_ = 0;
  // Two turns of the hand at most: the first may only clear reference bits.
  uint64_t g = hand_;
  for (uint64_t passed = 0; victims.size() < max && passed < 2 * n;) {
    const uint64_t next = map_.NextPresent(g);
    if (next >= n) {
      passed += n - g;
      g = 0;
      continue;
    }
    passed += next - g + 1;
    g = next;
    if (referenced_.IsPresent(g)) {
      referenced_.Clear(g, 1);
    } else if (inflight_.TryBegin(g, 1)) {  // not while being written
      victims.push_back(g);
    }
    g = g + 1 < n ? g + 1 : 0;
  }
  hand_ = g;
  return victims;
}

absl::StatusOr<BackingObject::Trimmed> BackingObject::TrimCold(
    uint64_t max_granules, const std::string& aux) {
  absl::MutexLock trim_lock(&trim_mu_);
  std::vector<uint64_t> victims;
  uint64_t freed = 0;
  {
    absl::MutexLock lock(&mu_);
    victims = PickColdGranules(max_granules);
    if (victims.empty()) return Trimmed{};
  }
  DropMemory();
  {
    absl::MutexLock lock(&mu_);
    const uint64_t stored = StoredBytes();
    for (uint64_t g : victims) map_.Clear(g, 1);
    freed = stored - StoredBytes();
    map_changed_ = true;
    // Counted as a write, as the write path does, so no checkpoint runs
    // between here and the punch. (A snapshot taken before the bits were
    // cleared is covered by EnsureDirty below: Checkpoint clears the
    // dirty hint first, so it waits for that clean record, then marks the
    // object dirty again.)
    ++writes_in_flight_;
    // Readers planned from now on see the victims absent; wait for those
    // planned before, which may be reading them.
    const uint64_t before = read_epoch_++;
    while (pinned_[before % 2] != 0) unpinned_.Wait(&mu_);
  }
  std::sort(victims.begin(), victims.end());
  absl::Status status = EnsureDirty(aux);
  size_t punched = 0;  // victims [0, punched) are holes now
  while (status.ok() && punched < victims.size()) {
    size_t end = punched + 1;
    while (end < victims.size() && victims[end] == victims[end - 1] + 1) ++end;
    status = env_->FAllocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                             victims[punched] << granule_shift_,
                             (end - punched) << granule_shift_);
    if (!status.ok()) {
      status = Annotate(status, "culling cold granules of " + name());
    } else {
      punched = end;
    }
  }
  const bool unsupported = absl::IsUnimplemented(status);
  {
    absl::MutexLock lock(&mu_);
    --writes_in_flight_;
    if (unsupported) {
      // The filesystem cannot punch holes: what was not punched still
      // holds its data, so it stays cached.
      const uint64_t stored = StoredBytes();
      for (size_t k = punched; k < victims.size(); ++k) {
        map_.MarkPresent(victims[k], 1);
      }
      freed -= StoredBytes() - stored;
    }
  }
  if (status.ok() || unsupported) ReportBytes(-static_cast<int64_t>(freed));
  for (uint64_t g : victims) inflight_.End(g, 1);
  if (!status.ok()) return status;
  return Trimmed{victims.size(), freed};
}

}  // namespace cachefs
