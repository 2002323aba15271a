#include "cookie/cache.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "contentmap/crc32c.h"
#include "cookie/tree_ops.h"
#include "io/errno_status.h"
#include "io/log.h"

namespace cachefs {
namespace {

constexpr char kVolumeXattr[] = "user.cachefs.volume";
constexpr char kLayoutFile[] = "cachefs.layout";
constexpr char kLayoutText[] = "cachefs cache layout 1\n";
constexpr char kCacheDirTag[] =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This directory is a cachefs cache; it can be recreated at will.\n";

// The volume record. Saved on disk: "CFV1", then u32 key length, the key,
// u32 coherency length, the coherency data, u32 CRC-32C of all before it;
// integers little-endian.
void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

std::string EncodeVolumeRecord(std::string_view key,
                               std::string_view coherency) {
  std::string out = "CFV1";
  PutU32(&out, key.size());
  out.append(key);
  PutU32(&out, coherency.size());
  out.append(coherency);
  PutU32(&out, Crc32c(out));
  return out;
}

// True if `bytes` is a valid record for exactly (key, coherency): encoding
// the expected record and comparing covers corruption and mismatch alike.
bool VolumeRecordMatches(std::string_view bytes, std::string_view key,
                         std::string_view coherency) {
  return bytes == EncodeVolumeRecord(key, coherency);
}

bool Printable(std::string_view key) {
  for (unsigned char c : key) {
    if (!std::isprint(c)) return false;
  }
  return !key.empty();
}

// Creates `name` in `dirfd` with `contents` unless it exists, durably: a
// crash leaves either no file or the whole file, never a torn one.
absl::Status EnsureFile(Env* env, int dirfd, const std::string& name,
                        std::string_view contents) {
  if (env->FStatAt(dirfd, name, AT_SYMLINK_NOFOLLOW).ok()) {
    return absl::OkStatus();
  }
  std::string tmp = name + ".tmp";
  absl::StatusOr<int> fd =
      env->OpenAt(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<size_t> n =
      env->PWrite(*fd, contents.data(), contents.size(), 0);
  absl::Status status = n.ok() ? env->FDataSync(*fd) : n.status();
  absl::Status closed = env->Close(*fd);
  if (status.ok()) status = closed;
  if (status.ok()) status = env->RenameAt(dirfd, tmp, dirfd, name, 0);
  if (!status.ok()) env->UnlinkAt(dirfd, tmp, 0).IgnoreError();
  return status;
}

absl::Status CheckLayout(Env* env, int dir_fd, const std::string& dir) {
  absl::StatusOr<int> fd =
      env->OpenAt(dir_fd, kLayoutFile, O_RDONLY | O_CLOEXEC, 0);
  if (absl::IsNotFound(fd.status())) {
    return EnsureFile(env, dir_fd, kLayoutFile, kLayoutText);
  }
  if (!fd.ok()) return fd.status();
  char buf[64] = {};
  absl::StatusOr<size_t> n = env->PRead(*fd, buf, sizeof(buf) - 1, 0);
  env->Close(*fd).IgnoreError();
  if (!n.ok()) return n.status();
  if (std::string_view(buf, *n) != kLayoutText) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cache directory ", dir, " holds a cache of another layout (",
        kLayoutFile, " says \"", std::string(buf, *n), "\")"));
  }
  return absl::OkStatus();
}

// The cache directory must take new files and user xattrs.
absl::Status ProbeWritable(Env* env, int dir_fd, const std::string& dir) {
  absl::StatusOr<int> fd =
      env->OpenAt(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (!fd.ok()) {
    return Annotate(
        fd.status(),
        absl::StrCat("cannot create files in cache directory ", dir));
  }
  absl::Status status = env->SetXattr(*fd, "user.cachefs.probe", "1");
  env->Close(*fd).IgnoreError();
  if (!status.ok()) {
    int err = StatusToErrno(status);
    if (err == ENOTSUP || err == EOPNOTSUPP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cache directory ", dir,
          ": its filesystem does not support user extended attributes, "
          "which hold the content maps"));
    }
    return Annotate(status, absl::StrCat("cache directory ", dir));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cache>> Cache::Open(Env* env,
                                                   CacheOptions options) {
  const std::string& dir = options.directory;
  if (dir.empty())
    return absl::InvalidArgumentError("no cache directory given");
  absl::Status status = MakeDirs(env, dir);
  if (!status.ok()) {
    return Annotate(status,
                    absl::StrCat("cannot create cache directory ", dir));
  }
  absl::StatusOr<int> dir_fd =
      env->OpenAt(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (!dir_fd.ok()) {
    return Annotate(dir_fd.status(),
                    absl::StrCat("cannot open cache directory ", dir));
  }
  auto fail = [&](absl::Status s) {
    env->Close(*dir_fd).IgnoreError();
    return s;
  };
  status = ProbeWritable(env, *dir_fd, dir);
  if (status.ok()) status = CheckLayout(env, *dir_fd, dir);
  if (status.ok())
    status = EnsureFile(env, *dir_fd, "CACHEDIR.TAG", kCacheDirTag);
  for (const char* sub : {"volumes", "graveyard"}) {
    if (!status.ok()) break;
    status = env->MkdirAt(*dir_fd, sub, 0700);
    if (absl::IsAlreadyExists(status)) status = absl::OkStatus();
  }
  if (!status.ok()) return fail(status);
  absl::StatusOr<bool> direct = DirectIoSupported(env, *dir_fd);
  if (!direct.ok()) return fail(direct.status());
  if (!*direct && !options.allow_buffered_io) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        "cache directory ", dir,
        " is on a filesystem that refuses O_DIRECT (tmpfs?); put the cache "
        "on a disk filesystem such as ext4 or xfs")));
  }
  IoEngineOptions io_options;
  io_options.queue_depth = options.io_queue_depth;
  auto engine = IoEngine::Create(env, io_options);
  if (!engine.ok()) return fail(engine.status());
  std::unique_ptr<Cache> cache(
      new Cache(env, std::move(options), *dir_fd, *direct, *std::move(engine)));
  if (!*direct) {
    cache->warnings_.push_back(absl::StrCat(
        "cache directory ", dir,
        " is on a filesystem that refuses O_DIRECT: using buffered I/O, so "
        "cached data also occupies the page cache"));
  }
  cache->Bury(cache->dir_fd_, "");  // empties what an earlier run left
  return cache;
}

Cache::Cache(Env* env, CacheOptions options, int dir_fd, bool direct_io,
             std::unique_ptr<IoEngine> engine)
    : env_(env),
      options_(std::move(options)),
      dir_fd_(dir_fd),
      direct_io_(direct_io),
      engine_(std::move(engine)),
      dispatcher_(options_.dispatcher_threads, &stats_) {}

Cache::~Cache() {
  dispatcher_.Drain();
  env_->Close(dir_fd_).IgnoreError();
}

uint64_t Cache::HashKey(std::string_view volume_key,
                        std::string_view file_key) const {
  if (options_.key_hasher) return options_.key_hasher(volume_key, file_key);
  return HashObjectKey(volume_key, file_key);
}

bool Cache::withdrawn() const {
  absl::MutexLock lock(&mu_);
  return withdrawn_;
}

absl::StatusOr<std::shared_ptr<Volume>> Cache::AcquireVolume(
    std::string_view key, std::string_view coherency) {
  if (!Printable(key)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "volume key \"", std::string(key), "\" is empty or not printable"));
  }
  absl::ReaderMutexLock service(&service_mu_);
  int vol_fd = -1;
  if (!withdrawn()) {
    absl::StatusOr<int> fd = OpenVolumeDir(key, coherency);
    if (!fd.ok())
      return Annotate(fd.status(), absl::StrCat("volume ", std::string(key)));
    vol_fd = *fd;
  }
  auto volume = std::make_shared<Volume>(this, std::string(key), vol_fd);
  Bump(stats_.volumes_acquired);
  absl::MutexLock lock(&mu_);
  volumes_.push_back(volume);
  return volume;
}

absl::Status Cache::LockVolume(int fd, std::string_view key) {
  absl::Status locked = env_->LockExclusive(fd);
  if (absl::IsFailedPrecondition(locked)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the cache ", options_.directory,
        " is already in use for this origin (volume ", std::string(key),
        ") by another cachefs daemon; one daemon per "
        "origin and cache directory"));
  }
  return locked;
}

absl::StatusOr<int> Cache::OpenVolumeDir(std::string_view key,
                                         std::string_view coherency) {
  std::string path = absl::StrCat("volumes/", VolumeDirName(key));
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  absl::StatusOr<int> fd = env_->OpenAt(dir_fd_, path, flags, 0);
  if (fd.ok()) {
    // One user per volume: a second daemon for the same origin would
    // write the same objects. Taken before the record is judged, so a
    // volume in use is never buried by another.
    absl::Status locked = LockVolume(*fd, key);
    if (!locked.ok()) {
      env_->Close(*fd).IgnoreError();
      return locked;
    }
    absl::StatusOr<std::string> record = env_->GetXattr(*fd, kVolumeXattr);
    if (record.ok() && VolumeRecordMatches(*record, key, coherency)) return fd;
    // Other coherency data, another key hashing alike, or no record: the
    // whole volume is stale.
    env_->Close(*fd).IgnoreError();
    absl::StatusOr<int> volumes = env_->OpenAt(dir_fd_, "volumes", flags, 0);
    if (!volumes.ok()) return volumes.status();
    Bury(*volumes, VolumeDirName(key));
    env_->Close(*volumes).IgnoreError();
  } else if (!absl::IsNotFound(fd.status())) {
    return fd.status();
  }
  absl::Status status = env_->MkdirAt(dir_fd_, path, 0700);
  if (!status.ok()) return status;
  fd = env_->OpenAt(dir_fd_, path, flags, 0);
  if (!fd.ok()) return fd.status();
  absl::Status locked = LockVolume(*fd, key);
  if (!locked.ok()) {
    env_->Close(*fd).IgnoreError();
    return locked;
  }
  status =
      env_->SetXattr(*fd, kVolumeXattr, EncodeVolumeRecord(key, coherency));
  if (!status.ok()) {
    env_->Close(*fd).IgnoreError();
    return status;
  }
  return fd;
}

void Cache::RelinquishVolume(std::shared_ptr<Volume> volume) {
  absl::MutexLock lock(&mu_);
  std::erase_if(volumes_, [&](const std::weak_ptr<Volume>& v) {
    auto locked = v.lock();
    return locked == nullptr || locked == volume;
  });
}

std::string Cache::WithdrawIfDirectoryUnusable() {
  std::string why;
  absl::StatusOr<struct stat> st = env_->FStat(dir_fd_);
  // A filesystem that turned read-only after an error (ext4's
  // errors=remount-ro) does not always say so in statvfs; a write to the
  // directory's access time is refused either way.
  const timespec touch_atime[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  // A failed fstat says nothing sure about the directory: the writes that
  // fail withdraw their own objects.
  if (!st.ok()) return "";
  if (st->st_nlink == 0) {
    why = "has been removed";
  } else if (futimens(dir_fd_, touch_atime) != 0 && errno == EROFS) {
    why = "is on a filesystem that is now read-only";
  }
  if (why.empty() || withdrawn()) return why;
  Bump(stats_.cache_withdrawals);
  LogEvent(LogLevel::kError, "cache-directory",
           absl::StrCat("the cache directory ", options_.directory, " ", why,
                        ": the cache is withdrawn, and every read goes to "
                        "the origin until cachefs is mounted again"),
           absl::InfiniteDuration());
  Withdraw();
  return why;
}

void Cache::Withdraw() {
  absl::WriterMutexLock service(&service_mu_);
  std::vector<std::shared_ptr<Volume>> volumes;
  {
    absl::MutexLock lock(&mu_);
    withdrawn_ = true;
    for (const auto& weak : volumes_) {
      if (auto v = weak.lock()) volumes.push_back(std::move(v));
    }
  }
  if (tracer_.active()) {
    tracer_.Emit(TraceEvent("withdraw", "").Detail("the whole cache"));
  }
  for (const auto& volume : volumes) {
    for (const auto& cookie : volume->Cookies()) {
      std::shared_ptr<BackingObject> object =
          cookie->DetachObject(/*wait_ready=*/false);
      if (object == nullptr) continue;
      object->WaitIdle();
      absl::StatusOr<bool> wrote = object->Checkpoint(cookie->aux());
      if (wrote.ok() && *wrote) Bump(stats_.checkpoints);
      object->Retire();
    }
  }
}

Cache::Usage Cache::ScanUsage() const {
  Usage usage;
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  auto entries_of = [&](int fd) {
    auto entries = env_->ReadDir(fd, ".");
    return entries.ok() ? *std::move(entries) : std::vector<DirEntry>{};
  };
  absl::StatusOr<int> volumes = env_->OpenAt(dir_fd_, "volumes", flags, 0);
  if (!volumes.ok()) return usage;
  for (const DirEntry& vol : entries_of(*volumes)) {
    if (vol.name[0] == '.') continue;
    absl::StatusOr<int> vol_fd = env_->OpenAt(*volumes, vol.name, flags, 0);
    if (!vol_fd.ok()) continue;
    for (const DirEntry& fan : entries_of(*vol_fd)) {
      if (fan.name[0] == '.') continue;
      absl::StatusOr<int> fan_fd = env_->OpenAt(*vol_fd, fan.name, flags, 0);
      if (!fan_fd.ok()) continue;
      for (const DirEntry& obj : entries_of(*fan_fd)) {
        auto st = env_->FStatAt(*fan_fd, obj.name, AT_SYMLINK_NOFOLLOW);
        if (!st.ok() || !S_ISREG(st->st_mode)) continue;
        usage.bytes += static_cast<uint64_t>(st->st_blocks) * 512;
        if (obj.name.find('.') == std::string::npos) ++usage.objects;
      }
      env_->Close(*fan_fd).IgnoreError();
    }
    env_->Close(*vol_fd).IgnoreError();
  }
  env_->Close(*volumes).IgnoreError();
  return usage;
}

Cache::Usage Cache::RecentUsage() {
  constexpr int64_t kReuseFactor = 20;
  absl::MutexLock lock(&usage_mu_);
  const int64_t now = env_->MonotonicNanos();
  if (now < usage_valid_until_ns_) return usage_;
  usage_ = ScanUsage();
  const int64_t done = env_->MonotonicNanos();
  usage_valid_until_ns_ = done + (done - now) * kReuseFactor;
  return usage_;
}

void Cache::ForgetUsage() {
  absl::MutexLock lock(&usage_mu_);
  usage_valid_until_ns_ = 0;
}

void Cache::Bury(int parent_fd, const std::string& name) {
  std::string grave;
  if (!name.empty()) {
    grave = absl::StrCat(name, ".", env_->MonotonicNanos());
    absl::StatusOr<int> yard = env_->OpenAt(
        dir_fd_, "graveyard", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (!yard.ok()) return;
    absl::Status moved = env_->RenameAt(parent_fd, name, *yard, grave, 0);
    env_->Close(*yard).IgnoreError();
    if (!moved.ok()) {
      // Could not move it aside: remove it in place, now.
      RemoveTree(env_, parent_fd, name).IgnoreError();
      return;
    }
  }
  dispatcher_.Dispatch([this, grave] {
    absl::StatusOr<int> yard = env_->OpenAt(
        dir_fd_, "graveyard", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (!yard.ok()) return;
    if (grave.empty()) {
      auto entries = env_->ReadDir(*yard, ".");
      if (entries.ok()) {
        for (const DirEntry& e : *entries) {
          if (e.name != "." && e.name != "..") {
            RemoveTree(env_, *yard, e.name).IgnoreError();
          }
        }
      }
    } else {
      RemoveTree(env_, *yard, grave).IgnoreError();
    }
    env_->Close(*yard).IgnoreError();
  });
}

}  // namespace cachefs
