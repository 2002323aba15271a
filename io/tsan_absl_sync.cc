// ThreadSanitizer builds only (CACHEFS_SANITIZE=thread): teaches TSan about
// abseil's Mutex, CondVar and Notification.
//
// Why: Debian's libabsl_synchronization.so is built without TSan, so the
// annotations abseil carries for it are compiled out and TSan sees neither
// the locks nor the futex waits behind them. Every guarded member then
// looks racy. Suppressions would hide real races too; instead, this file
// interposes the library's public entry points (the executable's
// definitions win over the shared library's, and the library reaches its
// own public functions through the PLT as well), tells TSan what each one
// does with the __tsan_mutex_* interface, and calls the real function found
// with dlsym(RTLD_NEXT).
//
// How it maps: Lock/Unlock are lock and unlock. Waiting calls (Await,
// LockWhen, CondVar::Wait, ...) are an unlock (where the lock was held) and
// then a lock that spans the whole wait, so Condition functions, which
// abseil evaluates under the lock but possibly on another thread, run in
// TSan's ignore window between pre_lock and post_lock. Notification adds a
// release/acquire pair on its own address for its lock-free fast path. A
// thread-local depth keeps calls that one entry point makes to another
// (LockWhenWithTimeout calls LockWhenWithDeadline) from being counted twice.

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#define CACHEFS_STR2(x) #x
#define CACHEFS_STR(x) CACHEFS_STR2(x)

// Named by io/CMakeLists.txt (-Wl,--undefined) so the linker always takes
// this object out of the archive.
extern "C" {
int cachefs_tsan_absl_shim = 1;
}

#if defined(__clang__)
// The definitions below stand in for abseil's annotated Lock/Unlock; the
// analysis cannot see through the calls to the real ones.
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif

namespace {

thread_local int depth = 0;

// Counts nesting; only the outermost entry point annotates.
struct Scope {
  Scope() : outer(depth++ == 0) {}
  ~Scope() { --depth; }
  const bool outer;
};

// The library's definition of `name` ("5Mutex4LockEv" and the like: the
// mangled name after the inline namespace; a leading 'K' marks a const
// member function).
template <typename Fn>
Fn Real(const char* name) {
  const std::string ns = CACHEFS_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  std::string prefix = "_ZN";
  if (*name == 'K') {
    prefix += 'K';
    ++name;
  }
  const std::string mangled =
      prefix + "4absl" + std::to_string(ns.size()) + ns + name;
  void* fn = dlsym(RTLD_NEXT, mangled.c_str());
  if (fn == nullptr) {
    fprintf(stderr, "tsan_absl_sync: %s not found\n", mangled.c_str());
    abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Mutexes this thread holds in reader mode, for Await's release.
thread_local std::vector<const void*> reader_held;

void PreLock(void* m, unsigned f) { __tsan_mutex_pre_lock(m, f); }
void PostLock(void* m, unsigned f) {
  __tsan_mutex_post_lock(m, f, 0);
  if ((f & __tsan_mutex_read_lock) != 0 &&
      (f & __tsan_mutex_try_lock_failed) == 0) {
    reader_held.push_back(m);
  }
}
void ReaderReleased(void* m) {
  auto it = std::find(reader_held.begin(), reader_held.end(), m);
  if (it != reader_held.end()) reader_held.erase(it);
}
void Unlocked(void* m, unsigned f) {
  __tsan_mutex_pre_unlock(m, f);
  __tsan_mutex_post_unlock(m, f);
  if ((f & __tsan_mutex_read_lock) != 0) ReaderReleased(m);
}

// The mode in which this thread holds `m`, for the waits that release it.
unsigned HeldMode(const void* m) {
  return std::find(reader_held.begin(), reader_held.end(), m) !=
                 reader_held.end()
             ? __tsan_mutex_read_lock
             : 0;
}

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

// Runs `real(self, args...)`, a call that takes `m` (and, if `held`, first
// lets go of it while waiting); `how` is 0 or __tsan_mutex_read_lock.
template <typename R, typename Self, typename... Args>
R Waiting(R (*real)(Self*, Args...), Self* self, Mutex* m, unsigned how,
          bool held, Args... args) {
  Scope scope;
  if (scope.outer) {
    if (held) Unlocked(m, how);
    PreLock(m, how);
  }
  struct Post {
    Mutex* m;
    unsigned how;
    bool on;
    ~Post() {
      if (on) PostLock(m, how);
    }
  } post{m, how, scope.outer};
  return real(self, args...);
}

// abseil's own deadlock detection (on in Debian's build) keeps a graph of
// every Mutex behind a SpinLock that TSan cannot see either, so creating
// and destroying mutexes on many threads at once (an NFS read's calls, 32
// reads in flight) reads as races inside GraphCycles. TSan finds lock
// order inversions itself: the graph is turned off before main (and the
// daemon's CACHEFS_MUTEX_DEADLOCK_CHECK does not turn it on under TSan).
const bool deadlock_graph_off = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// The real function, looked up once.
#define CACHEFS_REAL(type, name) static const auto real = Real<type>(name)

void Mutex::Lock() {
  CACHEFS_REAL(void (*)(Mutex*), "5Mutex4LockEv");
  Waiting(real, this, this, 0, false);
}

void Mutex::ReaderLock() {
  CACHEFS_REAL(void (*)(Mutex*), "5Mutex10ReaderLockEv");
  Waiting(real, this, this, __tsan_mutex_read_lock, false);
}

void Mutex::Unlock() {
  CACHEFS_REAL(void (*)(Mutex*), "5Mutex6UnlockEv");
  Scope scope;
  if (scope.outer) __tsan_mutex_pre_unlock(this, 0);
  real(this);
  if (scope.outer) __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderUnlock() {
  CACHEFS_REAL(void (*)(Mutex*), "5Mutex12ReaderUnlockEv");
  Scope scope;
  if (scope.outer) __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  if (scope.outer) {
    __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
    ReaderReleased(this);
  }
}

bool Mutex::TryLock() {
  CACHEFS_REAL(bool (*)(Mutex*), "5Mutex7TryLockEv");
  Scope scope;
  if (scope.outer) PreLock(this, __tsan_mutex_try_lock);
  const bool ok = real(this);
  if (scope.outer) {
    PostLock(this, ok ? __tsan_mutex_try_lock : __tsan_mutex_try_lock_failed);
  }
  return ok;
}

bool Mutex::ReaderTryLock() {
  CACHEFS_REAL(bool (*)(Mutex*), "5Mutex13ReaderTryLockEv");
  Scope scope;
  if (scope.outer) PreLock(this, __tsan_mutex_try_read_lock);
  const bool ok = real(this);
  if (scope.outer) {
    PostLock(this, ok ? __tsan_mutex_try_read_lock
                      : __tsan_mutex_try_read_lock_failed);
  }
  return ok;
}

void Mutex::LockWhen(const Condition& cond) {
  CACHEFS_REAL(void (*)(Mutex*, const Condition&),
               "5Mutex8LockWhenERKNS0_9ConditionE");
  Waiting<void, Mutex, const Condition&>(real, this, this, 0, false, cond);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  CACHEFS_REAL(void (*)(Mutex*, const Condition&),
               "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Waiting<void, Mutex, const Condition&>(real, this, this,
                                         __tsan_mutex_read_lock, false, cond);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  CACHEFS_REAL(bool (*)(Mutex*, const Condition&, Duration),
               "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Waiting<bool, Mutex, const Condition&, Duration>(
      real, this, this, 0, false, cond, timeout);
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  CACHEFS_REAL(bool (*)(Mutex*, const Condition&, Time),
               "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Waiting<bool, Mutex, const Condition&, Time>(
      real, this, this, 0, false, cond, deadline);
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond,
                                      Duration timeout) {
  CACHEFS_REAL(
      bool (*)(Mutex*, const Condition&, Duration),
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Waiting<bool, Mutex, const Condition&, Duration>(
      real, this, this, __tsan_mutex_read_lock, false, cond, timeout);
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  CACHEFS_REAL(
      bool (*)(Mutex*, const Condition&, Time),
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Waiting<bool, Mutex, const Condition&, Time>(
      real, this, this, __tsan_mutex_read_lock, false, cond, deadline);
}

void Mutex::Await(const Condition& cond) {
  CACHEFS_REAL(void (*)(Mutex*, const Condition&),
               "5Mutex5AwaitERKNS0_9ConditionE");
  Waiting<void, Mutex, const Condition&>(real, this, this, HeldMode(this),
                                         true, cond);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  CACHEFS_REAL(bool (*)(Mutex*, const Condition&, Duration),
               "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Waiting<bool, Mutex, const Condition&, Duration>(
      real, this, this, HeldMode(this), true, cond, timeout);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  CACHEFS_REAL(bool (*)(Mutex*, const Condition&, Time),
               "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Waiting<bool, Mutex, const Condition&, Time>(
      real, this, this, HeldMode(this), true, cond, deadline);
}

void CondVar::Wait(Mutex* mu) {
  CACHEFS_REAL(void (*)(CondVar*, Mutex*), "7CondVar4WaitEPNS0_5MutexE");
  Waiting<void, CondVar, Mutex*>(real, this, mu, HeldMode(mu), true, mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  CACHEFS_REAL(bool (*)(CondVar*, Mutex*, Duration),
               "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return Waiting<bool, CondVar, Mutex*, Duration>(real, this, mu, HeldMode(mu), true, mu, timeout);
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  CACHEFS_REAL(bool (*)(CondVar*, Mutex*, Time),
               "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return Waiting<bool, CondVar, Mutex*, Time>(real, this, mu, HeldMode(mu), true, mu, deadline);
}

void Notification::Notify() {
  CACHEFS_REAL(void (*)(Notification*), "12Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  CACHEFS_REAL(void (*)(const Notification*),
               "K12Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  CACHEFS_REAL(bool (*)(const Notification*, Duration),
               "K12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  CACHEFS_REAL(bool (*)(const Notification*, Time),
               "K12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
