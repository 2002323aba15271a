#include "cookie/cookie.h"

#include <algorithm>
#include <cstring>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "contentmap/crc32c.h"
#include "cookie/cache.h"
#include "cookie/volume.h"
#include "io/errno_status.h"
#include "io/log.h"

namespace cachefs {
namespace {

// CRC-32C of bytes [offset, offset + len) of the data `iov` lays out.
uint32_t Crc32cOfIov(std::span<const iovec> iov, uint64_t offset,
                     uint64_t len) {
  uint32_t crc = 0;
  for (const iovec& v : iov) {
    if (len == 0) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    const size_t take = std::min<uint64_t>(v.iov_len - offset, len);
    crc = Crc32c(
        std::string_view(static_cast<const char*>(v.iov_base) + offset, take),
        crc);
    offset = 0;
    len -= take;
  }
  return crc;
}

}  // namespace

Cookie::Cookie(Volume* volume, std::string key, std::string aux,
               uint64_t object_size)
    : volume_(volume),
      key_(std::move(key)),
      aux_(std::move(aux)),
      object_size_(object_size) {}

Cookie::~Cookie() = default;

std::string Cookie::key() const {
  absl::MutexLock lock(&mu_);
  return key_;
}

void Cookie::SetKey(std::string key) {
  absl::MutexLock lock(&mu_);
  key_ = std::move(key);
}

std::string Cookie::aux() const {
  absl::MutexLock lock(&mu_);
  return aux_;
}

uint64_t Cookie::object_size() const {
  absl::MutexLock lock(&mu_);
  return object_size_;
}

std::shared_ptr<BackingObject> Cookie::object() const {
  absl::MutexLock lock(&mu_);
  return object_;
}

std::pair<std::shared_ptr<BackingObject>, std::string> Cookie::ObjectAndAux()
    const {
  absl::MutexLock lock(&mu_);
  return {object_, aux_};
}

void Cookie::SetAux(std::string aux) {
  absl::MutexLock lock(&mu_);
  aux_ = std::move(aux);
}

void Cookie::SetObject(std::shared_ptr<BackingObject> object) {
  {
    absl::MutexLock lock(&mu_);
    object_ = std::move(object);
  }
  ready_.Notify();
}

std::shared_ptr<BackingObject> Cookie::DetachObject(bool wait_ready) {
  if (!wait_ready && !ready()) return nullptr;
  WaitReady();
  absl::MutexLock change_lock(&change_mu_);
  absl::MutexLock lock(&mu_);
  return std::move(object_);
}

absl::Status Cookie::Resize(uint64_t new_size) {
  data_epoch_.fetch_add(1, std::memory_order_acq_rel);
  WaitReady();
  absl::MutexLock change_lock(&change_mu_);
  std::shared_ptr<BackingObject> object;
  std::string aux;
  {
    absl::MutexLock lock(&mu_);
    object_size_ = new_size;
    object = object_;
    aux = aux_;
  }
  if (object == nullptr) return absl::OkStatus();
  absl::Status status = object->Resize(new_size, aux);
  if (!status.ok()) WithdrawObject(status);
  return status;
}

void Cookie::Invalidate(std::string aux, uint64_t object_size) {
  data_epoch_.fetch_add(1, std::memory_order_acq_rel);
  WaitReady();
  Cache* cache = volume_->cache();
  Bump(cache->stats().invalidations);
  if (Tracer& tracer = cache->tracer(); tracer.active()) {
    tracer.Emit(TraceEvent("invalidate", key())
                    .Bytes(object_size)
                    .Detail("new size " + std::to_string(object_size)));
  }
  absl::ReaderMutexLock service(&cache->service_lock());
  absl::MutexLock change_lock(&change_mu_);
  absl::StatusOr<std::shared_ptr<BackingObject>> fresh =
      absl::FailedPreconditionError("the cache is withdrawn");
  if (!cache->withdrawn()) {
    fresh = volume_->CreateObject(key(), aux, object_size);
    if (!fresh.ok()) CountCacheFault(cache->stats(), fresh.status());
  }
  std::shared_ptr<BackingObject> old;
  {
    absl::MutexLock lock(&mu_);
    aux_ = std::move(aux);
    object_size_ = object_size;
    old = std::move(object_);
    if (fresh.ok()) object_ = *std::move(fresh);
  }
  if (old == nullptr) return;
  // The old file's name now belongs to the fresh object (or to nothing);
  // its I/O drains and its descriptor closes when the last reader lets go.
  old->Retire();
}

bool Cookie::ReadPlan::FullyCached() const {
  for (const ReadSegment& s : segments_) {
    if (s.source != ReadSegment::Source::kCache) return false;
  }
  return !segments_.empty();
}

void Cookie::ReadPlan::Read(uint64_t pos, std::span<const iovec> iov,
                            IoCallback done) const {
  cookie_->ReadFromCache(object_, pos, iov, std::move(done));
}

absl::StatusOr<size_t> Cookie::ReadPlan::ReadSync(
    uint64_t pos, std::span<const iovec> iov) const {
  return cookie_->ReadFromCacheSync(object_, pos, iov);
}

bool Cookie::ReadPlan::StillCached(uint64_t index) const {
  return object_ != nullptr && cookie_->object() == object_ &&
         object_->IsPresent(index);
}

void Cookie::ReadPlan::Withdraw(const absl::Status& why) const {
  if (object_ != nullptr) cookie_->WithdrawObject(why, object_.get());
}

Cookie::ReadPlan Cookie::PrepareRead(uint64_t pos, uint64_t len) {
  WaitReady();
  ReadPlan plan;
  plan.cookie_ = shared_from_this();
  plan.object_ = object();
  if (plan.object_ == nullptr) {
    uint64_t size = object_size();
    if (pos < size && len > 0) {
      plan.segments_.push_back(
          {ReadSegment::Source::kOrigin, pos, std::min(len, size - pos)});
    }
    return plan;
  }
  plan.segments_ = plan.object_->PlanRead(pos, len, &plan.pin_);
  return plan;
}

std::optional<absl::StatusOr<size_t>> Cookie::ReadFromMemory(
    const BackingObject& object, uint64_t pos, std::span<const iovec> iov) {
  std::shared_ptr<const LockedMapping> memory = object.memory();
  if (memory == nullptr || pos >= memory->length()) return std::nullopt;
  // As a read of the file would: up to its end.
  size_t n = 0;
  for (const iovec& v : iov) {
    if (pos + n >= memory->length()) break;
    const size_t take =
        std::min<uint64_t>(v.iov_len, memory->length() - (pos + n));
    std::memcpy(v.iov_base, memory->data() + pos + n, take);
    n += take;
  }
  Bump(volume_->cache()->stats().bytes_read_from_memory, n);
  return absl::StatusOr<size_t>(n);
}

void Cookie::ReadFromCache(const std::shared_ptr<BackingObject>& object,
                           uint64_t pos, std::span<const iovec> iov,
                           IoCallback done) {
  if (std::optional<absl::StatusOr<size_t>> from_memory =
          ReadFromMemory(*object, pos, iov)) {
    absl::StatusOr<size_t> result = *std::move(from_memory);
    FinishRead(*object, result);
    if (result.ok()) {
      absl::Status verified = VerifyRead(*object, pos, iov, *result);
      if (!verified.ok()) result = std::move(verified);
    }
    std::move(done)(std::move(result));
    return;
  }
  // The iovecs are the caller's until `done`; a copy of the array for the
  // check after the read.
  std::vector<iovec> where(iov.begin(), iov.end());
  volume_->cache()->engine()->ReadToIter(
      object->file(), pos, iov,
      [self = shared_from_this(), object, pos, where = std::move(where),
       done = std::move(done)](absl::StatusOr<size_t> result) mutable {
        self->FinishRead(*object, result);
        if (result.ok()) {
          absl::Status verified =
              self->VerifyRead(*object, pos, where, *result);
          if (!verified.ok()) result = std::move(verified);
        }
        std::move(done)(std::move(result));
      });
}

absl::StatusOr<size_t> Cookie::ReadFromCacheSync(
    const std::shared_ptr<BackingObject>& object, uint64_t pos,
    std::span<const iovec> iov) {
  std::optional<absl::StatusOr<size_t>> from_memory =
      ReadFromMemory(*object, pos, iov);
  absl::StatusOr<size_t> result =
      from_memory.has_value()
          ? *std::move(from_memory)
          : volume_->cache()->engine()->ReadToIterSync(object->file(), pos,
                                                       iov);
  FinishRead(*object, result);
  if (result.ok()) {
    absl::Status verified = VerifyRead(*object, pos, iov, *result);
    if (!verified.ok()) return verified;
  }
  return result;
}

absl::Status Cookie::VerifyRead(BackingObject& object, uint64_t pos,
                                std::span<const iovec> iov, size_t n) {
  Cache* cache = volume_->cache();
  if (!cache->options().verify || n == 0) return absl::OkStatus();
  const uint32_t shift = object.granule_shift();
  const uint64_t granule = uint64_t{1} << shift;
  absl::Status status;
  for (uint64_t g = (pos + granule - 1) >> shift; (g << shift) < pos + n; ++g) {
    uint32_t expected;
    uint64_t bytes;
    const uint64_t base = g << shift;
    // Only granules the read holds whole can be checked; the read path
    // asks for whole granules when verifying.
    if (!object.ChecksumOf(g, &expected, &bytes) || base + bytes > pos + n) {
      continue;
    }
    const uint32_t actual = Crc32cOfIov(iov, base - pos, bytes);
    if (actual == expected) continue;
    Bump(cache->stats().checksum_errors);
    object.DropGranule(g);
    status = absl::DataLossError(absl::StrFormat(
        "checksum mismatch in granule %d (byte %d) of cache object %s "
        "(%s): stored 0x%08x, read 0x%08x",
        g, base, object.name(), key(), expected, actual));
    LogEvent(LogLevel::kError, "checksum",
             absl::StrCat(status.message(),
                          "; the data is fetched from the origin again"),
             absl::Seconds(10));
  }
  return status;
}

void Cookie::FinishRead(const BackingObject& object,
                        const absl::StatusOr<size_t>& result) {
  CacheStats& stats = volume_->cache()->stats();
  if (!result.ok()) {
    WithdrawObject(result.status(), &object);
    return;
  }
  const uint32_t shift = object.granule_shift();
  Bump(stats.bytes_read_from_cache, *result);
  Bump(stats.granules_read_from_cache,
       (*result + (uint64_t{1} << shift) - 1) >> shift);
}

Cookie::FillClaim& Cookie::FillClaim::operator=(FillClaim&& other) noexcept {
  if (this != &other) {
    Abort();
    cookie_ = std::move(other.cookie_);
    object_ = std::move(other.object_);
    first_ = other.first_;
    count_ = other.count_;
  }
  return *this;
}

Cookie::FillClaim Cookie::ClaimFill(uint64_t first, uint64_t count) {
  WaitReady();
  std::shared_ptr<BackingObject> object = this->object();
  if (object == nullptr || count == 0 || !object->BeginWrite(first, count)) {
    return FillClaim{};
  }
  FillClaim claim;
  claim.cookie_ = shared_from_this();
  claim.object_ = std::move(object);
  claim.first_ = first;
  claim.count_ = count;
  return claim;
}

void Cookie::FillClaim::Abort() {
  if (object_ != nullptr) object_->EndWrite(first_, count_);
  object_.reset();
  cookie_.reset();
}

void Cookie::FillClaim::Complete(std::span<const iovec> iov, IoCallback done) {
  std::shared_ptr<Cookie> cookie = std::move(cookie_);
  std::shared_ptr<BackingObject> object = std::move(object_);
  const uint64_t first = first_;
  const uint64_t count = count_;
  absl::Status dirty = object->EnsureDirty(cookie->aux());
  if (!dirty.ok()) {
    // Told before the claim ends, as when the cache is full (below).
    std::move(done)(dirty);
    object->EndWrite(first, count);
    cookie->FinishWrite(object, count, dirty);
    return;
  }
  cookie->StoreGranules(std::move(object), first, count, iov,
                        /*overwrite=*/false, std::move(done));
}

void Cookie::WriteToCache(uint64_t pos, std::span<const iovec> iov,
                          IoCallback done) {
  WaitReady();
  std::shared_ptr<BackingObject> object = this->object();
  uint64_t len = 0;
  for (const iovec& v : iov) len += v.iov_len;
  FillClaim claim;
  if (object != nullptr && len > 0) {
    uint32_t shift = object->granule_shift();
    uint64_t first = pos >> shift;
    claim = ClaimFill(first, ((pos + len - 1) >> shift) - first + 1);
  }
  if (!claim) {
    Bump(volume_->cache()->stats().cache_writes_skipped);
    std::move(done)(size_t{0});
    return;
  }
  claim.Complete(iov, std::move(done));
}

Cookie::WriteTicket& Cookie::WriteTicket::operator=(
    WriteTicket&& other) noexcept {
  if (this != &other) {
    Release();
    cookie_ = std::move(other.cookie_);
    object_ = std::move(other.object_);
    first_ = other.first_;
    count_ = other.count_;
  }
  return *this;
}

Cookie::WriteTicket Cookie::PrepareWrite(uint64_t first, uint64_t count) {
  data_epoch_.fetch_add(1, std::memory_order_acq_rel);
  WaitReady();
  std::shared_ptr<BackingObject> object = this->object();
  if (object == nullptr || count == 0) return WriteTicket{};
  if (!object->BeginOverwrite(first, count)) {
    // Past the object's end: the object missed a resize, so what it holds
    // for this range cannot be kept in step.
    WithdrawObject(absl::FailedPreconditionError("overwrite past the end"),
                   object.get());
    return WriteTicket{};
  }
  absl::Status dirty = object->EnsureDirty(aux());
  if (!dirty.ok()) {
    // The change must not reach the origin while a clean record could
    // still vouch for the old data: give up the object instead.
    object->EndWrite(first, count);
    FinishWrite(object, count, dirty);
    WithdrawObject(dirty, object.get());
    return WriteTicket{};
  }
  WriteTicket ticket;
  ticket.cookie_ = shared_from_this();
  ticket.object_ = std::move(object);
  ticket.first_ = first;
  ticket.count_ = count;
  return ticket;
}

bool Cookie::WriteTicket::IsPresent(uint64_t index) const {
  return object_->IsPresent(index);
}

absl::StatusOr<size_t> Cookie::WriteTicket::ReadSync(
    uint64_t pos, std::span<const iovec> iov) const {
  return cookie_->ReadFromCacheSync(object_, pos, iov);
}

void Cookie::WriteTicket::Release() {
  if (object_ != nullptr) object_->EndWrite(first_, count_);
  object_.reset();
  cookie_.reset();
}

void Cookie::MarkDirty() {
  data_epoch_.fetch_add(1, std::memory_order_acq_rel);
  WaitReady();
  std::shared_ptr<BackingObject> object = this->object();
  if (object == nullptr) return;
  absl::Status dirty = object->EnsureDirty(aux());
  if (!dirty.ok()) WithdrawObject(dirty, object.get());
}

void Cookie::WriteTicket::Store(uint64_t first, uint64_t count,
                                std::span<const iovec> iov,
                                IoCallback done) const {
  cookie_->StoreGranules(object_, first, count, iov, /*overwrite=*/true,
                         std::move(done));
}

void Cookie::StoreGranules(std::shared_ptr<BackingObject> object,
                           uint64_t first, uint64_t count,
                           std::span<const iovec> iov, bool overwrite,
                           IoCallback done) {
  // A fill ends its claim with the outcome; an overwrite only records it
  // (its claim is released once all its stores are done). Either way a
  // granule not stored is not present.
  auto settle = [overwrite, first, count](
                    BackingObject& o,
                    const BackingObject::StoredChecksums* stored) {
    if (overwrite) {
      o.SetGranules(first, count, stored);
    } else {
      o.EndWrite(first, count, stored);
    }
  };
  uint64_t len = 0;
  for (const iovec& v : iov) len += v.iov_len;
  Tracer& tracer = volume_->cache()->tracer();
  if (!Admit(len)) {
    if (tracer.active()) {
      tracer.Emit(TraceEvent("store", key())
                      .Granules(first, count)
                      .Bytes(len)
                      .Detail("refused: the cache is full"));
    }
    absl::Status full = ErrnoToStatus(ENOSPC, "cache full");
    if (overwrite) {
      settle(*object, nullptr);
      std::move(done)(std::move(full));
    } else {
      // A fill's caller may keep the data elsewhere (the read path does):
      // told before its claim ends, so a reader waiting for the claim
      // finds it there.
      std::move(done)(std::move(full));
      settle(*object, nullptr);
    }
    return;
  }
  BackingFile file = object->file();
  const uint32_t shift = object->granule_shift();
  uint64_t pos = first << shift;
  // Summed before the write, from the very bytes written.
  BackingObject::StoredChecksums sums;
  sums.object_size = std::min(object->object_size(), pos + len);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t from = i << shift;
    const uint64_t base = pos + from;
    if (base >= sums.object_size) break;
    sums.crcs.push_back(Crc32cOfIov(
        iov, from, std::min(uint64_t{1} << shift, sums.object_size - base)));
  }
  volume_->cache()->engine()->WriteIterToCache(
      file, pos, iov,
      [self = shared_from_this(), object = std::move(object), first, count, len,
       overwrite, settle, sums = std::move(sums),
       done = std::move(done)](absl::StatusOr<size_t> result) mutable {
        if (result.ok() && *result != len) {
          result =
              absl::DataLossError("short cache write on " + object->name());
        }
        settle(*object, result.ok() ? &sums : nullptr);
        Cache* cache = self->volume_->cache();
        if (CacheObserver* observer = cache->observer()) {
          observer->WriteSettled(len);
        }
        if (Tracer& tracer = cache->tracer(); tracer.active()) {
          tracer.Emit(
              TraceEvent("store", self->key())
                  .Granules(first, count)
                  .Bytes(len)
                  .Detail(result.ok()
                              ? (overwrite ? "written" : "filled")
                              : std::string(result.status().message())));
        }
        self->FinishWrite(object, count, result);
        std::move(done)(std::move(result));
      });
}

bool Cookie::WouldAdmit(uint64_t bytes) const {
  CacheObserver* observer = volume_->cache()->observer();
  return observer == nullptr || observer->HasRoom(bytes);
}

bool Cookie::Admit(uint64_t bytes) {
  Cache* cache = volume_->cache();
  CacheObserver* observer = cache->observer();
  if (observer == nullptr || observer->AdmitWrite(bytes)) return true;
  Bump(cache->stats().nospace);
  return false;
}

void Cookie::WriteTicket::Clear(uint64_t first, uint64_t count) const {
  object_->SetGranules(first, count, nullptr);
}

void Cookie::FinishWrite(const std::shared_ptr<BackingObject>& object,
                         uint64_t count, const absl::StatusOr<size_t>& result) {
  CacheStats& stats = volume_->cache()->stats();
  if (result.ok()) {
    Bump(stats.granules_written_to_cache, count);
    Bump(stats.bytes_written_to_cache, *result);
    return;
  }
  // ENOSPC must not poison the cache: the granule just stays uncached.
  int err = StatusToErrno(result.status());
  if (err == ENOSPC || err == EDQUOT) {
    CountCacheFault(stats, result.status());
    return;
  }
  WithdrawObject(result.status(), object.get());
}

absl::Status Cookie::Checkpoint(bool wait_for_writes) {
  WaitReady();
  auto [object, aux] = ObjectAndAux();
  if (object == nullptr) return absl::OkStatus();
  if (wait_for_writes) object->WaitIdle();
  absl::StatusOr<bool> wrote = object->Checkpoint(aux);
  if (wrote.ok() && *wrote) Bump(volume_->cache()->stats().checkpoints);
  return wrote.status();
}

absl::StatusOr<BackingObject::Trimmed> Cookie::TrimCold(uint64_t max_granules) {
  if (!ready()) return BackingObject::Trimmed{};
  // Keeps teardown (DetachObject) from checkpointing halfway through.
  absl::MutexLock change_lock(&change_mu_);
  auto [object, aux] = ObjectAndAux();
  if (object == nullptr) return BackingObject::Trimmed{};
  absl::StatusOr<BackingObject::Trimmed> trimmed =
      object->TrimCold(max_granules, aux);
  if (Tracer& tracer = volume_->cache()->tracer();
      trimmed.ok() && trimmed->granules > 0 && tracer.active()) {
    tracer.Emit(TraceEvent("cull", key())
                    .Bytes(trimmed->bytes)
                    .Detail(absl::StrCat(trimmed->granules,
                                         " cold granules of an open file")));
  }
  if (trimmed.ok() || absl::IsUnimplemented(trimmed.status())) return trimmed;
  // A retired object (replaced meanwhile) fails to mark itself dirty; it is
  // on its way out anyway.
  if (!object->retired()) WithdrawObject(trimmed.status(), object.get());
  return BackingObject::Trimmed{};
}

void Cookie::WithdrawObject(const absl::Status& why,
                            const BackingObject* which) {
  Cache* cache = volume_->cache();
  std::shared_ptr<BackingObject> old;
  {
    absl::MutexLock lock(&mu_);
    // A fault on an object already replaced or withdrawn changes nothing.
    if (object_ == nullptr || (which != nullptr && object_.get() != which)) {
      return;
    }
    old = std::move(object_);
  }
  Bump(cache->stats().cache_io_errors);
  Bump(cache->stats().objects_withdrawn);
  old->Retire();
  if (Tracer& tracer = cache->tracer(); tracer.active()) {
    tracer.Emit(
        TraceEvent("withdraw", key()).Detail(std::string(why.message())));
  }
  LogEvent(
      LogLevel::kWarning, "withdraw",
      absl::StrCat("withdrew the cache object ", old->name(), " of ", key(),
                   " (its data is fetched from the origin "
                   "again): ",
                   std::string(why.message())),
      absl::Seconds(10));
  // The file may hold garbage; remove it once its I/O has drained. Its
  // name is ours only if no invalidation has linked a new object over it.
  cache->dispatcher()->Dispatch([volume = volume_, old = std::move(old)] {
    old->WaitIdle();
    volume->UnlinkIfCurrent(*old);
  });
}

}  // namespace cachefs
