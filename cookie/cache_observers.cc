#include <algorithm>

#include "cookie/cache_observer.h"

namespace cachefs {

void CacheObservers::Add(CacheObserver* observer) {
  absl::MutexLock lock(&mu_);
  observers_.push_back(observer);
}

void CacheObservers::Remove(CacheObserver* observer) {
  absl::MutexLock lock(&mu_);
  std::erase(observers_, observer);
}

void CacheObservers::AddVeto(CullVeto* veto) {
  absl::MutexLock lock(&veto_mu_);
  vetoes_.push_back(veto);
}

void CacheObservers::RemoveVeto(CullVeto* veto) {
  absl::MutexLock lock(&veto_mu_);
  std::erase(vetoes_, veto);
}

bool CacheObservers::MayCull(const std::string& volume_key, uint64_t hash) {
  absl::ReaderMutexLock lock(&veto_mu_);
  for (CullVeto* veto : vetoes_) {
    if (!veto->MayCull(volume_key, hash)) return false;
  }
  return true;
}

bool CacheObservers::AdmitWrite(uint64_t bytes) {
  absl::ReaderMutexLock lock(&mu_);
  for (size_t i = 0; i < observers_.size(); ++i) {
    if (observers_[i]->AdmitWrite(bytes)) continue;
    // Those that admitted it count a write that will not come.
    for (size_t j = 0; j < i; ++j) observers_[j]->WriteSettled(bytes);
    return false;
  }
  return true;
}

void CacheObservers::WriteSettled(uint64_t bytes) {
  absl::ReaderMutexLock lock(&mu_);
  for (CacheObserver* o : observers_) o->WriteSettled(bytes);
}

bool CacheObservers::HasRoom(uint64_t bytes) const {
  absl::ReaderMutexLock lock(&mu_);
  return std::all_of(observers_.begin(), observers_.end(),
                     [bytes](CacheObserver* o) { return o->HasRoom(bytes); });
}

void CacheObservers::Charge(const std::string& volume_key, uint64_t hash,
                            int64_t delta) {
  absl::ReaderMutexLock lock(&mu_);
  for (CacheObserver* o : observers_) o->Charge(volume_key, hash, delta);
}

void CacheObservers::Used(const std::string& volume_key, uint64_t hash) {
  absl::ReaderMutexLock lock(&mu_);
  for (CacheObserver* o : observers_) o->Used(volume_key, hash);
}

void CacheObservers::Removed(const std::string& volume_key, uint64_t hash) {
  absl::ReaderMutexLock lock(&mu_);
  for (CacheObserver* o : observers_) o->Removed(volume_key, hash);
}

void CacheObservers::MemoryDropped(const std::string& volume_key,
                                   uint64_t hash) {
  absl::ReaderMutexLock lock(&mu_);
  for (CacheObserver* o : observers_) o->MemoryDropped(volume_key, hash);
}

}  // namespace cachefs
