// CacheFs: construction, names and attributes, directories. Files are in
// cache_fs_files.cc, changes of the namespace in cache_fs_changes.cc.

#include "cachefs/cache_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "cachefs/attr_snapshot.h"
#include "cachefs/cache_fs_internal.h"
#include "io/countdown.h"
#include "io/errno_status.h"
#include "io/log.h"
#include "netfs/hang_guard.h"

namespace cachefs {
namespace {

// The most entries a directory read behind a reply is read for.
constexpr int kMaxListedEntries = 1 << 24;

bool IsPrivateKey(const std::string& key) {
  return !key.empty() && key[0] == '/';
}

}  // namespace

namespace {

constexpr char kAttrSnapshot[] = "attrs";
constexpr char kListingSnapshot[] = "listings";
// Present beside the two while they are what a clean unmount saved.
constexpr char kCleanSnapshot[] = "attrs.clean";
// Per entry: the fixed fields and a key of up to PATH_MAX.
constexpr size_t kMaxSnapshotEntryBytes = 120 + 4096;

int64_t SnapshotMaxAgeOf(const CacheFsOptions& options) {
  // Entries past the timeouts still answer lookups provisionally, as they
  // do before a remount; a month bounds what a long-unused cache carries.
  constexpr double kMonth = 30 * 24 * 3600.0;
  return ToNanos(
      std::max({options.attr_timeout, options.entry_timeout, kMonth}));
}

// The origin root's attributes as the attribute snapshot has them.
absl::StatusOr<struct stat> RootFromSnapshot(const CacheFsOptions& options,
                                             Volume& volume, Env* env) {
  absl::StatusOr<std::string> data = volume.ReadFile(
      kAttrSnapshot, options.attr_cache_entries * kMaxSnapshotEntryBytes);
  if (!data.ok()) return data.status();
  SnapshotClock now{env->MonotonicNanos(), env->NowNanos()};
  absl::StatusOr<std::optional<struct stat>> root =
      FindInAttrSnapshot(*data, now, SnapshotMaxAgeOf(options), "");
  if (!root.ok()) return root.status();
  if (!root->has_value()) return absl::NotFoundError("no entry for the root");
  return **root;
}

}  // namespace

absl::StatusOr<struct stat> CacheFs::OfflineRoot(const CacheFsOptions& options,
                                                 Volume& volume, Env* env,
                                                 const std::string& origin,
                                                 const absl::Status& why) {
  absl::StatusOr<struct stat> root = RootFromSnapshot(options, volume, env);
  if (root.ok()) return root;
  return absl::UnavailableError(absl::StrCat(
      "origin ", origin, " is unreachable (", why.message(),
      ") and the cache has no record of it to serve from (",
      root.status().message(), "): mount once while the origin answers"));
}

absl::StatusOr<std::unique_ptr<CacheFs>> CacheFs::Create(
    CacheFsOptions options, Origin* origin, Cache* cache,
    std::shared_ptr<Volume> volume, absl::Status unreachable) {
  absl::StatusOr<struct stat> root_attr = absl::UnknownError("not asked");
  if (unreachable.ok()) {
    // Bounded: the server may have stopped since the origin was opened.
    HangGuard guard(absl::Seconds(options.origin_timeout),
                    origin->traits().calls_may_hang);
    root_attr = guard.Run<struct stat>("stat of the origin root", [origin] {
      return origin->GetAttr(Caller::Daemon(), "");
    });
    if (root_attr.ok()) {
      absl::Status listed =
          guard
              .Run<bool>("listing of the origin root",
                         [origin]() -> absl::StatusOr<bool> {
                           absl::StatusOr<std::unique_ptr<OriginDir>> dir =
                               origin->OpenDir(Caller::Daemon(), "");
                           if (!dir.ok()) return dir.status();
                           return true;
                         })
              .status();
      if (!listed.ok()) {
        return Annotate(listed, "cannot list origin " + origin->Describe());
      }
    } else if (!options.offline || !SaysUnreachable(root_attr.status())) {
      return Annotate(root_attr.status(), "origin " + origin->Describe());
    } else {
      unreachable = root_attr.status();
    }
  }
  if (!unreachable.ok()) {
    root_attr = OfflineRoot(options, *volume, cache->env(), origin->Describe(),
                            unreachable);
    if (!root_attr.ok()) return root_attr.status();
  }
  auto buffers = BufferPool::Create(
      uint64_t{1} << cache->options().granule_shift, options.buffers);
  if (!buffers.ok()) return buffers.status();
  std::unique_ptr<CacheFs> fs(new CacheFs(std::move(options), origin, cache,
                                          std::move(volume), *root_attr,
                                          *std::move(buffers)));
  fs->StartLoadingStore();
  // A store of the usual size is loaded before the mount serves, so that
  // its first requests are answered from it as the rules allow; a huge one
  // goes on loading behind the mount.
  fs->store_loaded_.WaitForNotificationWithTimeout(absl::Milliseconds(500));
  // Logs once that the mount serves from the cache until the probe finds
  // the origin.
  if (!unreachable.ok())
    fs->health_.MarkDown(std::string(unreachable.message()));
  return fs;
}

void CacheFs::StartLoadingStore() {
  // Saved at a clean unmount, the snapshots are what the mount knew at its
  // end. Otherwise (a crash) changes made after the last periodic save may
  // contradict them: their attributes are kept apart, as the last known
  // answer while the origin is down, and the origin is asked as if there
  // were none. (Listings are only ever answered offline.)
  const bool clean = volume_->ReadFile(kCleanSnapshot, 16).ok();
  volume_->RemoveFile(kCleanSnapshot).IgnoreError();
  // Loaded behind the mount, which serves meanwhile: a million entries take
  // seconds. Until then requests ask the origin as without a store, and
  // answers from the store (offline) wait for it; what the mount learns or
  // erases first is newer than the store and stays.
  attrs_.BeginLoad();
  last_known_.BeginLoad();
  listings_.BeginLoad();
  store_loader_ = std::thread([this, clean] {
    LoadStore(clean);
    attrs_.EndLoad();
    last_known_.EndLoad();
    listings_.EndLoad();
    store_loaded_.Notify();
  });
}

void CacheFs::LoadStore(bool clean) {
  absl::StatusOr<std::string> listings = volume_->ReadFile(
      kListingSnapshot, options_.attr_cache_entries * kMaxSnapshotEntryBytes);
  if (listings.ok()) {
    absl::StatusOr<size_t> loaded =
        listings_.Decode(*listings, /*behind=*/true, /*trusted=*/clean);
    if (!loaded.ok()) {
      Log(LogLevel::kWarning,
          absl::StrCat("ignoring the listing snapshot: ",
                       std::string(loaded.status().message())));
    }
  }
  absl::StatusOr<std::string> data = volume_->ReadFile(
      kAttrSnapshot, options_.attr_cache_entries * kMaxSnapshotEntryBytes);
  if (!data.ok()) return;
  SnapshotClock now{Now(), cache_->env()->NowNanos()};
  absl::StatusOr<size_t> loaded =
      DecodeAttrSnapshot(*data, now, SnapshotMaxAgeOf(options_),
                         clean ? &attrs_ : &last_known_, /*behind=*/true);
  if (!loaded.ok()) {
    Log(LogLevel::kWarning,
        absl::StrCat("ignoring the attribute snapshot: ",
                     std::string(loaded.status().message())));
  }
}

void CacheFs::AwaitStore() const { store_loaded_.WaitForNotification(); }

CacheFs::StoreState CacheFs::store_state() const {
  return StoreState{attrs_.size() + last_known_.size(), listings_.size(),
                    store_loaded_.HasBeenNotified()};
}

void CacheFs::SaveAttrSnapshot(bool clean) {
  // A store saved half loaded would lose the other half.
  if (!store_loaded_.HasBeenNotified()) return;
  // A million entries take seconds to write: an idle mount writes none.
  const std::pair<uint64_t, uint64_t> changes{attrs_.changes(),
                                              listings_.changes()};
  if (!clean && changes == saved_changes_) return;
  saved_changes_ = changes;
  if (!clean) volume_->RemoveFile(kCleanSnapshot).IgnoreError();
  // The root's attributes are what a mount made while the origin is
  // unreachable starts from: always saved, though a change in the root
  // forgets them.
  if (!attrs_.Get("", std::numeric_limits<int64_t>::max(), Now())) {
    const int64_t asked = Now();
    absl::StatusOr<struct stat> root = AskAttr("", Caller::Daemon());
    if (root.ok()) {
      attrs_.Put("", *root, asked);
    } else {
      attrs_.Put("", mount_root_attr_, mounted_ns_);
    }
  }
  absl::Status listed =
      volume_->WriteFile(kListingSnapshot, listings_.Encode());
  if (!listed.ok()) {
    Log(LogLevel::kWarning, absl::StrCat("cannot save the listing snapshot: ",
                                         std::string(listed.message())));
  }
  SnapshotClock now{Now(), cache_->env()->NowNanos()};
  std::string data =
      EncodeAttrSnapshot(attrs_, now, SnapshotMaxAgeOf(options_));
  if (!clean && last_known_.size() > 0) {
    // What the crash before left, for the next crash too, under what this
    // mount has learned since.
    AttrCache merged(options_.attr_cache_entries);
    last_known_.ForEach([&](const std::string& key, const struct stat& st,
                            int64_t fetched) { merged.Put(key, st, fetched); });
    attrs_.ForEach([&](const std::string& key, const struct stat& st,
                       int64_t fetched) { merged.Put(key, st, fetched); });
    data = EncodeAttrSnapshot(merged, now, SnapshotMaxAgeOf(options_));
  }
  absl::Status saved = volume_->WriteFile(kAttrSnapshot, data);
  if (!saved.ok()) {
    Log(LogLevel::kWarning, absl::StrCat("cannot save the attribute snapshot: ",
                                         std::string(saved.message())));
  }
  if (clean && saved.ok() && listed.ok()) {
    volume_->WriteFile(kCleanSnapshot, "clean\n").IgnoreError();
  }
}

namespace {

// Files of one granule at most: fetched in one origin read, stored as one.
SiblingReadAhead::Options SiblingOptions(const CacheFsOptions& options,
                                         uint32_t granule_shift) {
  SiblingReadAhead::Options o;
  o.files_ahead = options.readahead_files;
  o.max_file_size = uint64_t{1} << granule_shift;
  // Room for both orders' fetches in flight, and as many done.
  o.max_held = std::max<size_t>(64, 4 * std::max(0, options.readahead_files));
  return o;
}

}  // namespace

CacheFs::CacheFs(CacheFsOptions options, Origin* origin, Cache* cache,
                 std::shared_ptr<Volume> volume, const struct stat& root_attr,
                 std::unique_ptr<BufferPool> buffers)
    : options_(std::move(options)),
      origin_(origin),
      cache_(cache),
      volume_(std::move(volume)),
      inodes_(std::make_unique<InodeTable>(
          root_attr, !origin->traits().stable_inode_numbers, &files_)),
      mount_root_attr_(root_attr),
      mounted_ns_(cache->env()->MonotonicNanos()),
      buffers_(std::move(buffers)),
      attrs_(options_.attr_cache_entries),
      last_known_(options_.attr_cache_entries),
      listings_(options_.attr_cache_entries),
      origin_pool_(options_.origin_threads, nullptr),
      metadata_pool_(std::max(1, options_.metadata_threads) - 1, nullptr),
      hang_guard_(absl::Seconds(options_.origin_timeout),
                  origin->traits().calls_may_hang),
      health_(
          OriginHealth::Options{absl::Seconds(options_.origin_timeout),
                                absl::Seconds(1),
                                "origin " + origin->Describe()},
          [this] {
            return hang_guard_
                .Run<struct stat>("stat of the origin root",
                                  [origin = origin_] {
                                    return origin->GetAttr(Caller::Daemon(),
                                                           "");
                                  })
                .status();
          },
          &cache->stats()),
      read_path_({cache->options().granule_shift, options_.readahead_granules,
                  options_.reorder_bytes, cache->options().verify},
                 buffers_.get(), &origin_pool_, &cache->stats(),
                 &cache->tracer()),
      write_path_(cache->options().granule_shift, buffers_.get(),
                  &cache->stats()),
      files_{
          origin,
          volume_.get(),
          &read_path_,
          &write_path_,
          &origin_pool_,
          cache->options().granule_shift,
          origin->traits().stable_inode_numbers,
          [this](const struct stat& st) { return MakeAuxData(st, UseInode()); },
          [this] { return Offline(); }},
      siblings_(
          SiblingOptions(options_, cache->options().granule_shift), origin,
          &cache->stats(),
          [this](const std::string& key) {
            return attrs_.Get(key, std::numeric_limits<int64_t>::max(),
                              Now());
          },
          [this](const std::string& key) { return volume_->HasObject(key); }) {
  checkpointer_ = std::thread([this] { CheckpointLoop(); });
}

CacheFs::~CacheFs() {
  if (store_loader_.joinable()) store_loader_.join();
  siblings_.Stop();
  stopping_.Notify();
  if (checkpointer_.joinable()) checkpointer_.join();
  metadata_pool_.Drain();
  origin_pool_.Drain();
  // The files released last are torn down (and checkpointed) first.
  cache_->dispatcher()->Drain();
  // Files the kernel still holds when the daemon stops are never released
  // (held open through a SIGTERM): what their reads stored would otherwise
  // be known only to the periodic checkpoint, and fetched again after the
  // next mount.
  CheckpointAll(/*wait_for_writes=*/true);
  SaveAttrSnapshot(/*clean=*/true);
  cache_->dispatcher()->Drain();
  cache_->RelinquishVolume(volume_);
}

bool CacheFs::UseInode() const {
  switch (options_.identity) {
    case IdentityMode::kInode:
      return true;
    case IdentityMode::kNone:
      return false;
    case IdentityMode::kAuto:
      break;
  }
  return origin_->traits().stable_inode_numbers;
}

int64_t CacheFs::Now() const { return cache_->env()->MonotonicNanos(); }

absl::StatusOr<std::string> CacheFs::PathOf(Inode* inode) const {
  std::string key = inode->key();
  // A private key: the file's name is gone (unlinked through cachefs).
  if (IsPrivateKey(key)) return ErrnoToStatus(ESTALE, "file has no name");
  return key;
}

struct stat CacheFs::Shown(const Inode* inode, struct stat st) const {
  st.st_ino = inode->shown_ino;
  return st;
}

absl::StatusOr<struct stat> CacheFs::AskAttr(const std::string& path) {
  return AskAttr(path, RequestCaller());
}

absl::StatusOr<struct stat> CacheFs::AskAttr(const std::string& path,
                                             const Caller& caller) {
  if (Offline()) {
    return ErrnoToStatus(ENOTCONN, "stat " + path + ": the origin is down");
  }
  absl::StatusOr<struct stat> st = hang_guard_.Run<struct stat>(
      "stat " + path, [origin = origin_, caller, path] {
        return origin->GetAttr(caller, path);
      });
  NoteOrigin(st.status());
  if (!st.ok()) return UnreachableIfDown(st.status());
  return st;
}

void CacheFs::NoteOrigin(const absl::Status& status) {
  if (StatusToErrno(status) == ETIMEDOUT) {
    health_.NoteTimeout(std::string(status.message()));
  } else if (StatusToErrno(status) == EIO &&
             origin_->traits().fs_type == "fuse") {
    // sshfs -o reconnect answers EIO while it cannot reach its server: an
    // EIO is the file's own only if the origin's root still answers (a
    // FUSE origin's root that fails says ENOTCONN, posix_origin.h).
    health_.Note(hang_guard_
                     .Run<struct stat>("stat of the origin root",
                                       [origin = origin_] {
                                         return origin->GetAttr(
                                             Caller::Daemon(), "");
                                       })
                     .status());
  } else {
    health_.Note(status);
  }
}

absl::Status CacheFs::UnreachableIfDown(absl::Status status) const {
  if (StatusToErrno(status) == EIO && Offline()) {
    return ErrnoToStatus(
        ENOTCONN, std::string(status.message()) + " (the origin is down)");
  }
  return status;
}

absl::Status CacheFs::RefuseIfOffline(const char* what) {
  if (!Offline()) return absl::OkStatus();
  Bump(stats().offline_refusals);
  return ErrnoToStatus(EROFS, absl::StrCat(what, ": the origin is down"));
}

std::optional<struct stat> CacheFs::OfflineAttr(const std::string& key,
                                                const absl::Status& failed,
                                                int64_t* fetched) {
  // Not Offline(): the origin may have come back since `failed`, and the
  // request is still answered, once, as of the last check.
  if (!options_.offline || !SaysUnreachable(failed)) {
    return std::nullopt;
  }
  AwaitStore();
  std::optional<struct stat> known =
      attrs_.Get(key, std::numeric_limits<int64_t>::max(), Now(), fetched);
  if (!known.has_value()) {
    known = last_known_.Get(key, std::numeric_limits<int64_t>::max(), Now(),
                            fetched);
  }
  if (known.has_value()) Bump(stats().offline_lookups);
  return known;
}

absl::StatusOr<struct stat> CacheFs::FetchAttr(Inode* inode) {
  absl::StatusOr<std::string> path = PathOf(inode);
  if (!path.ok()) return path.status();
  // Stamped with when the fetch began: a change racing with it must make
  // the result stale (see Inode::changed_ns).
  const int64_t started = Now();
  absl::StatusOr<struct stat> st = AskAttr(*path);
  if (!st.ok()) {
    if (absl::IsNotFound(st.status())) attrs_.Erase(*path);
    return st.status();
  }
  attrs_.Put(*path, *st, started);
  // The name may lead to another file by now (replaced on the origin):
  // ESTALE makes the kernel look it up again rather than mix the two.
  const bool other_type = (st->st_mode & S_IFMT) != inode->type;
  const bool other_file = !inodes_->by_key() && inode != inodes_->root() &&
                          (st->st_ino != inode->ino || st->st_dev != inode->dev);
  if (other_type || other_file) {
    return ErrnoToStatus(ESTALE, "the name " + *path + " leads elsewhere now");
  }
  return st;
}

void CacheFs::MarkChanged(Inode* inode) {
  inode->changed_ns.store(Now(), std::memory_order_release);
  attrs_.Erase(inode->key());
  siblings_.Forget(inode->key());
}

std::optional<struct stat> CacheFs::RecentAttr(Inode* inode,
                                               const std::string& key,
                                               double max_age,
                                               int64_t* fetched) {
  int64_t when = 0;
  std::optional<struct stat> cached =
      attrs_.Get(key, ToNanos(max_age), Now(), &when);
  if (cached.has_value() &&
      inode->changed_ns.load(std::memory_order_acquire) >= when) {
    return std::nullopt;
  }
  // Attributes of whatever the name leads to now: maybe another file.
  if (cached.has_value() &&
      ((cached->st_mode & S_IFMT) != inode->type ||
       (!inodes_->by_key() && inode != inodes_->root() &&
        (cached->st_ino != inode->ino || cached->st_dev != inode->dev)))) {
    return std::nullopt;
  }
  if (cached.has_value()) attrs_.ClearProvisional(key);
  if (fetched != nullptr) *fetched = when;
  return cached;
}

absl::StatusOr<CacheFs::Entry> CacheFs::MakeEntry(const std::string& key,
                                                  struct stat attr,
                                                  int64_t fetched,
                                                  bool fresh) {
  Inode* inode = inodes_->Intern(attr, key);
  Entry entry;
  entry.ino = inodes_->IdOf(inode);
  if (inode->key() != key && inode != inodes_->root()) {
    if (IsPrivateKey(inode->key())) {
      // Unlinked through cachefs under one name, still linked under this
      // one: origin requests name it by this one now.
      inodes_->SetKey(inode, key);
    } else if (fresh) {
      RekeyIfMoved(inode, key);
    }
  }
  if (inode->changed_ns.load(std::memory_order_acquire) >= fetched) {
    // Changed through cachefs since (perhaps under another name): what the
    // kernel gets must not undo what it knows, e.g. a file's new size.
    fetched = Now();
    absl::StatusOr<struct stat> now = FetchAttr(inode);
    if (!now.ok()) {
      Forget(entry.ino, 1);
      return now.status();
    }
    attr = *now;
  }
  entry.attr = Shown(inode, attr);
  const double age = static_cast<double>(Now() - fetched) / 1e9;
  // Past entry_timeout the name is answered provisionally (see the class
  // comment): the kernel keeps nothing and asks again before use.
  if (age <= options_.entry_timeout) {
    entry.entry_timeout = options_.entry_timeout - age;
    entry.attr_timeout = std::max(0.0, options_.attr_timeout - age);
  }
  return entry;
}

void CacheFs::RekeyIfMoved(Inode* inode, const std::string& key) {
  // Another name of the same file: a hard link, or a rename on the origin.
  // The inode keeps the name it has while that still leads to it.
  const std::string old_key = inode->key();
  absl::StatusOr<struct stat> old = AskAttr(old_key);
  if (old.ok() && old->st_ino == inode->ino && old->st_dev == inode->dev) {
    return;
  }
  // No answer is not an answer: the name may still lead to it.
  if (SaysUnreachable(old.status())) return;
  inodes_->SetKey(inode, key);
  inode->data.Rekey(key);
}

absl::StatusOr<CacheFs::Entry> CacheFs::Lookup(uint64_t parent,
                                               const std::string& name) {
  absl::StatusOr<std::string> dir_path = PathOf(inodes_->Get(parent));
  if (!dir_path.ok()) return ErrnoToStatus(ENOENT, "lookup " + name);
  std::string key = ChildKey(*dir_path, name);
  int64_t fetched = 0;
  std::optional<struct stat> known = attrs_.Get(
      key, std::numeric_limits<int64_t>::max(), Now(), &fetched);
  // A cached entry for a file changed through cachefs since may be a name
  // that is gone (a fetch racing an unlink): ask the origin by name.
  if (known.has_value() && inodes_->ChangedNs(key, *known) >= fetched) {
    known.reset();
  }
  // Past entry_timeout the answer is provisional. The kernel asks again
  // before it shows or opens the file, but not before it walks through a
  // name: a file here that is a directory on the origin now would fail
  // that walk (ENOTDIR). So a non-directory is answered provisionally
  // once; asked again with nothing in between, it is fetched. (A directory
  // that is a file now fails the walk on the origin, correctly.)
  if (known.has_value() && !S_ISDIR(known->st_mode) &&
      Now() - fetched > ToNanos(options_.entry_timeout) &&
      attrs_.MarkProvisional(key)) {
    known.reset();
  }
  if (known.has_value()) return MakeEntry(key, *known, fetched, false);
  fetched = Now();
  absl::StatusOr<struct stat> found = AskAttr(key);
  if (!found.ok()) {
    if (absl::IsNotFound(found.status())) attrs_.Erase(key);
    if (std::optional<struct stat> last =
            OfflineAttr(key, found.status(), &fetched)) {
      // As of its last check, which is older than the timeouts: the
      // kernel keeps nothing, and once the origin is back, it answers.
      return MakeEntry(key, *last, fetched, false);
    }
    if (options_.offline && SaysUnreachable(found.status())) {
      Bump(stats().offline_refusals);
      return ErrnoToStatus(
          EIO, "lookup " + key + ": not known, and the origin is down");
    }
    return found.status();
  }
  attrs_.Put(key, *found, fetched);
  return MakeEntry(key, *found, fetched, true);
}

void CacheFs::Forget(uint64_t ino, uint64_t nlookup) {
  inodes_->Forget(ino, nlookup);
}

absl::StatusOr<CacheFs::Attr> CacheFs::GetAttr(uint64_t ino, uint64_t fh) {
  Inode* inode = inodes_->Get(ino);
  const std::string key = inode->key();
  absl::Status by_name = ErrnoToStatus(ESTALE, "file has no name");
  if (!IsPrivateKey(key)) {
    int64_t fetched = 0;
    if (std::optional<struct stat> recent =
            RecentAttr(inode, key, options_.attr_timeout, &fetched)) {
      const double age = static_cast<double>(Now() - fetched) / 1e9;
      return Attr{Shown(inode, *recent),
                  std::max(0.0, options_.attr_timeout - age)};
    }
    absl::StatusOr<struct stat> st = FetchAttr(inode);
    if (st.ok()) return Attr{Shown(inode, *st), options_.attr_timeout};
    if (std::optional<struct stat> last = OfflineAttr(key, st.status())) {
      return Attr{Shown(inode, *last), 0};
    }
    if (StatusToErrno(st.status()) != ESTALE) return st.status();
    by_name = st.status();
  }
  // The name is gone (unlinked through cachefs) or leads to another file
  // now, but the file is open (fstat): an open origin file knows it.
  const NetfsFile::Handle* handle =
      fh != 0 ? reinterpret_cast<OpenFile*>(fh)->data.get() : nullptr;
  OriginFile* file = handle != nullptr ? handle->writable() : nullptr;
  std::shared_ptr<OriginFile> shared;
  if (file == nullptr) {
    shared = inode->data.AnyOpenOriginFile();
    file = shared.get();
  }
  if (file == nullptr) {
    if (handle == nullptr) return by_name;
    return Attr{Shown(inode, handle->opened_attr()), 0};
  }
  absl::StatusOr<struct stat> st = file->Stat();
  if (!st.ok()) return st.status();
  return Attr{Shown(inode, *st), 0};
}

absl::Status CacheFs::OfflineUnknown(const std::string& what) {
  Bump(stats().offline_refusals);
  return ErrnoToStatus(EIO, what + ": not known, and the origin is down");
}

absl::StatusOr<std::string> CacheFs::ReadLink(uint64_t ino) {
  absl::StatusOr<std::string> path = PathOf(inodes_->Get(ino));
  if (!path.ok()) return path.status();
  if (!Offline()) {
    absl::StatusOr<std::string> target = hang_guard_.Run<std::string>(
        "readlink " + *path,
        [origin = origin_, caller = RequestCaller(), path = *path] {
          return origin->ReadLink(caller, path);
        });
    NoteOrigin(target.status());
    if (target.ok()) listings_.PutLink(*path, *target);
    if (target.ok() || !options_.offline || !SaysUnreachable(target.status())) {
      return target;
    }
  }
  AwaitStore();
  std::optional<std::string> last = listings_.GetLink(*path);
  if (!last.has_value()) return OfflineUnknown("readlink " + *path);
  Bump(stats().offline_lookups);
  return *last;
}

absl::StatusOr<struct statvfs> CacheFs::StatFs(uint64_t) {
  if (Offline()) return OfflineUnknown("statfs");
  return origin_->StatFs(RequestCaller(), "");
}

absl::Status CacheFs::NoXattrs() const {
  // ENOSYS, not EOPNOTSUPP: the kernel then answers every later request
  // itself (with EOPNOTSUPP), so `ls -l` stops asking twice per file.
  return ErrnoToStatus(ENOSYS, "the origin has no extended attributes");
}

absl::StatusOr<std::string> CacheFs::GetXattr(uint64_t ino,
                                              const std::string& name) {
  if (!origin_->traits().xattrs) return NoXattrs();
  absl::StatusOr<std::string> path = PathOf(inodes_->Get(ino));
  if (!path.ok()) return path.status();
  if (Offline()) return OfflineUnknown("getxattr " + *path);
  return origin_->GetXattr(RequestCaller(), *path, name);
}

absl::StatusOr<std::vector<std::string>> CacheFs::ListXattr(uint64_t ino) {
  if (!origin_->traits().xattrs) return NoXattrs();
  absl::StatusOr<std::string> path = PathOf(inodes_->Get(ino));
  if (!path.ok()) return path.status();
  if (Offline()) return OfflineUnknown("listxattr " + *path);
  return origin_->ListXattr(RequestCaller(), *path);
}

absl::Status CacheFs::Access(uint64_t ino, int mask) {
  Inode* inode = inodes_->Get(ino);
  if (mask == F_OK) {
    absl::Status exists = FetchAttr(inode).status();
    if (OfflineAttr(inode->key(), exists).has_value()) return absl::OkStatus();
    return exists;
  }
  absl::StatusOr<std::string> path = PathOf(inode);
  if (!path.ok()) return path.status();
  if (Offline()) return OfflineUnknown("access " + *path);
  return origin_->CheckAccess(RequestCaller(), *path, mask);
}

absl::StatusOr<uint64_t> CacheFs::OpenDir(uint64_t ino) {
  absl::StatusOr<std::string> path = PathOf(inodes_->Get(ino));
  if (!path.ok()) return path.status();
  if (!options_.cto && !Offline()) {
    // Without close-to-open, as attributes within attr_timeout, a listing
    // read whole before is answered at once; it is read again behind the
    // reply, so the next listing shows what changed meanwhile.
    if (std::optional<Listings::Listing> last = listings_.GetTrusted(*path)) {
      RefreshListingBehind(*path);
      Bump(stats().listings_answered_at_once);
      auto* handle = new OpenDirectory;
      absl::MutexLock lock(&handle->mu);
      handle->dir = ListedDir(*std::move(last));
      handle->from_listing = true;
      return reinterpret_cast<uint64_t>(handle);
    }
  }
  if (!Offline()) {
    absl::StatusOr<std::unique_ptr<OriginDir>> dir =
        hang_guard_.Run<std::unique_ptr<OriginDir>>(
            "opendir " + *path,
            [origin = origin_, caller = RequestCaller(), path = *path] {
              return origin->OpenDir(caller, path);
            });
    NoteOrigin(dir.status());
    if (!dir.ok()) dir = UnreachableIfDown(dir.status());
    if (dir.ok()) {
      auto* handle = new OpenDirectory;
      absl::MutexLock lock(&handle->mu);
      handle->dir = RecordingDir(*std::move(dir), *path, &listings_);
      return reinterpret_cast<uint64_t>(handle);
    }
    if (!options_.offline || !SaysUnreachable(dir.status())) {
      return dir.status();
    }
  }
  // The origin is down: the listing as it was last read whole.
  AwaitStore();
  std::optional<Listings::Listing> last = listings_.Get(*path);
  if (!last.has_value()) return OfflineUnknown("the listing of " + *path);
  Bump(stats().offline_lookups);
  auto* handle = new OpenDirectory;
  absl::MutexLock lock(&handle->mu);
  handle->dir = ListedDir(*std::move(last));
  handle->from_listing = true;
  return reinterpret_cast<uint64_t>(handle);
}

void CacheFs::RefreshListingBehind(const std::string& path) {
  {
    absl::MutexLock lock(&refreshing_mu_);
    if (!refreshing_.insert(path).second) return;  // one at a time
  }
  const uint64_t erasures = listings_.erasures();
  metadata_pool_.Enqueue([this, path, erasures, caller = RequestCaller()] {
    // Read whole on the guarded thread, which touches nothing of this
    // filesystem: it may outlive it, stuck in a stopped server.
    absl::StatusOr<Listings::Listing> read = hang_guard_.Run<Listings::Listing>(
        "readdir " + path,
        [origin = origin_, caller,
         path]() -> absl::StatusOr<Listings::Listing> {
          absl::StatusOr<std::unique_ptr<OriginDir>> dir =
              origin->OpenDir(caller, path);
          if (!dir.ok()) return dir.status();
          Listings::Listing listing;
          for (int i = 0; i < kMaxListedEntries; ++i) {
            absl::StatusOr<std::optional<OriginDir::Entry>> next =
                (*dir)->Next();
            if (!next.ok()) return next.status();
            if (!next->has_value()) return listing;
            listing.push_back(**std::move(next));
          }
          return absl::ResourceExhaustedError(absl::StrCat(
              "readdir ", path, ": more than ", kMaxListedEntries, " entries"));
        });
    NoteOrigin(read.status());
    if (read.ok()) {
      listings_.PutUnlessErasedSince(path, *std::move(read), erasures);
    } else if (absl::IsNotFound(read.status())) {
      listings_.Erase(path);
    }
    absl::MutexLock lock(&refreshing_mu_);
    refreshing_.erase(path);
  });
}

absl::Status CacheFs::ReadDir(uint64_t ino, uint64_t fh, uint64_t offset,
                              bool plus, const DirFiller& add) {
  auto* handle = reinterpret_cast<OpenDirectory*>(fh);
  const std::string dir_key = inodes_->Get(ino)->key();
  absl::MutexLock lock(&handle->mu);
  absl::Status status = handle->dir->Seek(offset);
  if (!status.ok()) return status;
  // What the kernel was given, in order, for reading ahead across files.
  std::vector<SiblingReadAhead::Listed> listed;
  uint64_t listed_to = offset;
  absl::Cleanup note_listed = [&] {
    siblings_.NoteListed(dir_key, offset, listed, listed_to);
  };
  const uint64_t small_file = uint64_t{1} << cache_->options().granule_shift;
  // Entries go out in batches; with `plus` a batch's attributes are
  // fetched in parallel, so a slow origin costs one round trip per batch,
  // not per name.
  constexpr size_t kBatch = 32;
  auto read_batch =
      [](OriginDir& dir) -> absl::StatusOr<std::vector<OriginDir::Entry>> {
    std::vector<OriginDir::Entry> batch;
    while (batch.size() < kBatch) {
      absl::StatusOr<std::optional<OriginDir::Entry>> next = dir.Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) break;
      batch.push_back(**std::move(next));
    }
    return batch;
  };
  while (true) {
    absl::StatusOr<std::vector<OriginDir::Entry>> read =
        handle->from_listing
            ? read_batch(*handle->dir)
            : hang_guard_.Run<std::vector<OriginDir::Entry>>(
                  "readdir " + dir_key,
                  [dir = handle->dir, read_batch] { return read_batch(*dir); });
    if (!handle->from_listing) NoteOrigin(read.status());
    if (!read.ok() && offset == 0 && listed.empty() && options_.offline &&
        SaysUnreachable(read.status())) {
      // The origin went down under a fresh read: the listing as last read
      // whole, if there is one, from its start.
      AwaitStore();
      std::optional<Listings::Listing> last = listings_.Get(dir_key);
      if (!last.has_value()) return OfflineUnknown("the listing of " + dir_key);
      Bump(stats().offline_lookups);
      handle->dir = ListedDir(*std::move(last));
      handle->from_listing = true;
      continue;
    }
    if (!read.ok()) return read.status();
    std::vector<OriginDir::Entry> batch = *std::move(read);
    if (batch.empty()) return absl::OkStatus();
    std::vector<absl::StatusOr<Entry>> looked_up(
        batch.size(), absl::UnknownError("not looked up"));
    if (plus) LookUpAll(ino, batch, &looked_up);
    for (size_t i = 0; i < batch.size(); ++i) {
      const OriginDir::Entry& e = batch[i];
      struct stat attr = {};
      attr.st_ino = e.ino;
      attr.st_mode = static_cast<mode_t>(e.type) << 12;
      if (e.name != "." && e.name != "..") {
        attr.st_ino = inodes_->ShownIno(ChildKey(dir_key, e.name), attr);
      }
      const Entry* entry = nullptr;
      if (plus && looked_up[i].ok()) {
        entry = &*looked_up[i];
        attr = entry->attr;
      } else if (plus && e.name != "." && e.name != "..") {
        continue;  // gone since the listing: skip it
      }
      if (!add(e.name, attr, e.next_offset, entry)) {
        // Did not fit: the kernel never saw these.
        for (size_t j = i; j < batch.size(); ++j) {
          if (plus && looked_up[j].ok()) Forget(looked_up[j]->ino, 1);
        }
        return absl::OkStatus();
      }
      listed.push_back(SiblingReadAhead::Listed{
          e.name, entry != nullptr && S_ISREG(attr.st_mode) &&
                      attr.st_size > 0 &&
                      static_cast<uint64_t>(attr.st_size) <= small_file});
      listed_to = e.next_offset;
    }
  }
}

void CacheFs::LookUpAll(uint64_t parent,
                        const std::vector<OriginDir::Entry>& entries,
                        std::vector<absl::StatusOr<Entry>>* out) {
  absl::StatusOr<std::string> dir_path = PathOf(inodes_->Get(parent));
  if (!dir_path.ok()) return;
  // A listing hands the kernel attributes: names never fetched are fetched
  // now, all at once (an SSHFS origin may still take them one at a time:
  // it looks up new names in a directory in turn). Names known from longer
  // ago than entry_timeout are answered provisionally, as a lookup answers
  // them (see the class comment): a pass that opens each file makes its
  // close-to-open check anyway, and after a remount every name would
  // otherwise cost the listing a lookup at the origin.
  std::vector<size_t> to_fetch;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& name = entries[i].name;
    if (name == "." || name == "..") continue;
    const std::string key = ChildKey(*dir_path, name);
    int64_t fetched = 0;
    std::optional<struct stat> known = attrs_.Get(
        key, std::numeric_limits<int64_t>::max(), Now(), &fetched);
    if (known.has_value() && inodes_->ChangedNs(key, *known) < fetched) {
      (*out)[i] = MakeEntry(key, *known, fetched, false);
    } else {
      to_fetch.push_back(i);
    }
  }
  Countdown done(static_cast<int>(to_fetch.size()));
  // Taken here: the jobs run on other threads, which serve no request.
  const Caller& caller = RequestCaller();
  for (size_t n = 0; n < to_fetch.size(); ++n) {
    auto job = [&, i = to_fetch[n]] {
      const std::string key = ChildKey(*dir_path, entries[i].name);
      int64_t fetched = Now();
      // Bounded, and answered as of the last check once the origin is
      // down, as a lookup is.
      absl::StatusOr<struct stat> st = AskAttr(key, caller);
      if (st.ok()) {
        attrs_.Put(key, *st, fetched);
        (*out)[i] = MakeEntry(key, *st, fetched, true);
      } else if (std::optional<struct stat> last =
                     OfflineAttr(key, st.status(), &fetched)) {
        (*out)[i] = MakeEntry(key, *last, fetched, false);
      } else {
        (*out)[i] = st.status();
      }
      done.Done();
    };
    if (n + 1 < to_fetch.size()) {
      metadata_pool_.Dispatch(std::move(job));
    } else {
      job();
    }
  }
  done.Wait();
}

void CacheFs::ReleaseDir(uint64_t fh) {
  delete reinterpret_cast<OpenDirectory*>(fh);
}

absl::Status CacheFs::FsyncDir(uint64_t ino, bool datasync) {
  absl::StatusOr<std::string> path = PathOf(inodes_->Get(ino));
  if (!path.ok()) return path.status();
  return origin_->SyncDir(RequestCaller(), *path, datasync);
}

}  // namespace cachefs
