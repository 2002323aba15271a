#include "tests/integration/model_tester.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kGranule = 256 * 1024;
constexpr uint64_t kPage = 4096;
// Index of each directory in the per-side arrays.
constexpr int kTest = 0;
constexpr int kRef = 1;
// How many of a thread's last operations a failure report shows.
constexpr size_t kHistory = 24;

// splitmix64. Not std::uniform_int_distribution, whose output the standard
// leaves to the library: a seed must replay the same operations anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n is 0.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

 private:
  uint64_t state_;
};

void FillData(char* buf, size_t n, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng.Next();
    std::memcpy(buf + i, &v, std::min<size_t>(8, n - i));
  }
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : absl::StrCat("errno ", err);
}

enum class Kind {
  kOpen,
  kClose,
  kPread,
  kRead,
  kPwrite,
  kWrite,
  kTruncate,
  kFtruncate,
  kMmapRead,
  kRename,
  kLink,
  kUnlink,
  kFsync,
  kFdatasync,
  kDropCache,
  kCopyRange,
  kFallocate,
};

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kOpen:
      return "open";
    case Kind::kClose:
      return "close";
    case Kind::kPread:
      return "pread";
    case Kind::kRead:
      return "read";
    case Kind::kPwrite:
      return "pwrite";
    case Kind::kWrite:
      return "write";
    case Kind::kTruncate:
      return "truncate";
    case Kind::kFtruncate:
      return "ftruncate";
    case Kind::kMmapRead:
      return "mmap_read";
    case Kind::kRename:
      return "rename";
    case Kind::kLink:
      return "link";
    case Kind::kUnlink:
      return "unlink";
    case Kind::kFsync:
      return "fsync";
    case Kind::kFdatasync:
      return "fdatasync";
    case Kind::kDropCache:
      return "fadvise_dontneed";
    case Kind::kCopyRange:
      return "copy_file_range";
    case Kind::kFallocate:
      return "fallocate";
  }
  return "?";
}

bool NeedsSlot(Kind kind) {
  switch (kind) {
    case Kind::kOpen:
    case Kind::kTruncate:
    case Kind::kRename:
    case Kind::kLink:
    case Kind::kUnlink:
      return false;
    default:
      return true;
  }
}

std::string FlagsName(int flags) {
  std::string s;
  switch (flags & O_ACCMODE) {
    case O_RDONLY:
      s = "O_RDONLY";
      break;
    case O_WRONLY:
      s = "O_WRONLY";
      break;
    default:
      s = "O_RDWR";
      break;
  }
  if (flags & O_CREAT) s += "|O_CREAT";
  if (flags & O_EXCL) s += "|O_EXCL";
  if (flags & O_TRUNC) s += "|O_TRUNC";
  if (flags & O_APPEND) s += "|O_APPEND";
  return s;
}

std::string FallocModeName(int mode) {
  if (mode == 0) return "0";
  std::string s;
  if (mode & FALLOC_FL_PUNCH_HOLE) s += "PUNCH_HOLE|";
  if (mode & FALLOC_FL_KEEP_SIZE) s += "KEEP_SIZE|";
  s.pop_back();
  return s;
}

struct Op {
  Kind kind = Kind::kOpen;
  int slot = -1;
  int slot2 = -1;  // copy_file_range's destination
  int name = -1;   // index into the thread's names
  int name2 = -1;  // rename's and link's target
  int flags = 0;   // open flags; fallocate mode
  uint64_t off = 0;
  uint64_t off2 = 0;  // copy_file_range's destination offset
  uint64_t len = 0;   // also truncate's size
  uint64_t data_seed = 0;
};

// What one operation returned in one directory.
struct Outcome {
  int64_t ret = 0;
  int err = 0;       // errno when ret < 0
  std::string data;  // bytes read
};

std::string DescribeOutcome(const Outcome& o) {
  if (o.ret < 0) return absl::StrCat("-1 ", ErrnoName(o.err));
  return absl::StrCat(o.ret);
}

// One descriptor slot: the same file opened in both directories.
struct Slot {
  bool open = false;
  int flags = 0;
  int name = -1;  // the name it was opened by (it may since be gone)
  int fd[2] = {-1, -1};
};

// Reads all of `fd` with pread into `out`. Returns 0 or an errno. Reads
// at most `limit` bytes, so that a file gone wrong cannot make the check
// run on unbounded.
int ReadAll(int fd, std::string* out, uint64_t limit) {
  out->clear();
  constexpr size_t kChunk = 1 << 20;
  while (out->size() < limit) {
    size_t at = out->size();
    out->resize(at + kChunk);
    ssize_t n = pread(fd, out->data() + at, kChunk, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) {
      out->resize(at);
      continue;
    }
    if (n < 0) {
      int err = errno;
      out->resize(at);
      return err;
    }
    out->resize(at + static_cast<size_t>(n));
    if (n == 0) break;
  }
  return 0;
}

// Empty when equal, else where and how `test` and `ref` differ.
std::string DescribeDifference(const std::string& test,
                               const std::string& ref) {
  if (test == ref) return "";
  size_t n = std::min(test.size(), ref.size());
  size_t i = 0;
  while (i < n && test[i] == ref[i]) ++i;
  std::string s =
      absl::StrCat(test.size(), " bytes vs ", ref.size(), " in the reference");
  if (i < n) {
    size_t j = i;
    while (j < n && test[j] != ref[j]) ++j;
    absl::StrAppend(
        &s, ", first difference at byte ", i, " (granule ", i / kGranule,
        "), differing run of ", j - i, " bytes: test 0x",
        absl::Hex(static_cast<unsigned char>(test[i])), " vs reference 0x",
        absl::Hex(static_cast<unsigned char>(ref[i])));
    // A run of zeros where the reference has data (or the reverse) points
    // at a lost write or a hole that should not be one.
    bool test_zero = std::all_of(test.begin() + i, test.begin() + j,
                                 [](char c) { return c == 0; });
    bool ref_zero = std::all_of(ref.begin() + i, ref.begin() + j,
                                [](char c) { return c == 0; });
    if (test_zero) absl::StrAppend(&s, "; the test's bytes there are zeros");
    if (ref_zero) absl::StrAppend(&s, "; the reference's bytes are zeros");
  } else {
    absl::StrAppend(&s, ", equal up to the shorter length");
  }
  return s;
}

struct Shared {
  const ModelOptions* options;
  std::string dirs[2];
  int dirfds[2];
  absl::Time deadline;
  std::atomic<bool> stop{false};
  std::mutex mu;
  absl::Status first_error;  // guarded by mu
  ModelSummary summary;      // guarded by mu
};

class ModelThread {
 public:
  ModelThread(Shared* shared, int thread)
      : shared_(*shared),
        options_(*shared->options),
        thread_(thread),
        rng_(options_.seed + static_cast<uint64_t>(thread)),
        slots_(static_cast<size_t>(options_.fd_slots)) {
    for (int k = 0; k < options_.files_per_thread; ++k) {
      names_.push_back(ModelFileName(thread, k));
    }
    ops_ = options_.ops / static_cast<uint64_t>(options_.threads);
    if (static_cast<uint64_t>(thread) <
        options_.ops % static_cast<uint64_t>(options_.threads)) {
      ++ops_;
    }
  }
  ~ModelThread() {
    for (Slot& slot : slots_) {
      for (int fd : slot.fd) {
        if (fd >= 0) close(fd);
      }
    }
  }

  absl::Status Run() {
    for (uint64_t i = 0; i < ops_; ++i) {
      if (shared_.stop.load(std::memory_order_relaxed)) {
        return absl::OkStatus();
      }
      if (absl::Now() > shared_.deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("model thread ", thread_, " did ", i, " of ", ops_,
                         " operations in the time limit ",
                         absl::FormatDuration(options_.time_limit), " (seed ",
                         options_.seed, ")"));
      }
      Op op = Generate();
      absl::Status status = Step(i, op);
      if (!status.ok()) return status;
    }
    // A last full comparison, of every file and open descriptor.
    Op none;
    none.kind = Kind::kFsync;
    absl::Status status = CheckFiles(ops_, none, /*full=*/true);
    if (!status.ok()) return status;
    return CloseAll();
  }

  void MergeSummary(ModelSummary* into) const {
    into->ops += summary_.ops;
    for (const auto& [k, v] : summary_.by_kind) into->by_kind[k] += v;
    for (const auto& [k, v] : summary_.errors) into->errors[k] += v;
    into->bytes_written += summary_.bytes_written;
    into->bytes_compared += summary_.bytes_compared;
  }

 private:
  // --- Drawing operations. Parameters may depend on the reference
  // directory's state (a file's size, a descriptor's position): that
  // state is itself a function of the operations so far, so a seed still
  // determines the whole sequence.

  Kind DrawKind() {
    struct Weighted {
      Kind kind;
      int weight;
      bool enabled;
    };
    const Weighted table[] = {
        {Kind::kOpen, 10, true},
        {Kind::kClose, 5, true},
        {Kind::kPread, 16, true},
        {Kind::kRead, 4, true},
        {Kind::kPwrite, 18, true},
        {Kind::kWrite, 6, true},
        {Kind::kTruncate, 3, true},
        {Kind::kFtruncate, 4, true},
        {Kind::kMmapRead, 5, options_.use_mmap},
        {Kind::kRename, 4, true},
        {Kind::kLink, 3, options_.use_link},
        {Kind::kUnlink, 4, true},
        {Kind::kFsync, 2, true},
        {Kind::kFdatasync, 1, true},
        {Kind::kDropCache, 3, true},
        {Kind::kCopyRange, 3, options_.use_copy_file_range},
        {Kind::kFallocate, 3, options_.use_fallocate},
    };
    int total = 0;
    for (const Weighted& w : table) total += w.enabled ? w.weight : 0;
    int pick = static_cast<int>(rng_.Below(static_cast<uint64_t>(total)));
    for (const Weighted& w : table) {
      if (!w.enabled) continue;
      if (pick < w.weight) return w.kind;
      pick -= w.weight;
    }
    return Kind::kOpen;
  }

  uint64_t RefSize(int slot) {
    struct stat st;
    if (fstat(slots_[slot].fd[kRef], &st) != 0) return 0;
    return static_cast<uint64_t>(st.st_size);
  }

  // Offsets that matter: 0, EOF, around granule boundaries, just before
  // EOF, past EOF (a sparse extension), anywhere.
  uint64_t PickOffset(uint64_t size) {
    const uint64_t max = options_.max_file_size;
    uint64_t off = 0;
    switch (rng_.Below(8)) {
      case 0:
        off = 0;
        break;
      case 1:
        off = size;
        break;
      case 2: {
        uint64_t k = 1 + rng_.Below(max / kGranule);
        off = k * kGranule - 1 + rng_.Below(3);
        break;
      }
      case 3:
        off = size + 1 + rng_.Below(512 * 1024);
        break;
      case 4:
        off = size - std::min(size, 1 + rng_.Below(4096));
        break;
      default:
        off = rng_.Below(size + 1);
        break;
    }
    return std::min(off, max);
  }

  // 1 byte to max_io_size, mostly small, sometimes page-aligned.
  uint64_t PickLen() {
    const uint64_t max = options_.max_io_size;
    switch (rng_.Below(10)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return 1 + rng_.Below(4096);
      case 4:
      case 5:
      case 6:
        return 1 + rng_.Below(std::min<uint64_t>(max, 64 * 1024));
      case 7:
        return std::min(max, kPage * (1 + rng_.Below(64)));
      case 8:
        return 1 + rng_.Below(std::max<uint64_t>(1, max / 2));
      default:
        return 1 + rng_.Below(max);
    }
  }

  // A size for truncate: around a granule boundary, anywhere, or 0.
  uint64_t PickSize() {
    const uint64_t max = options_.max_file_size;
    switch (rng_.Below(5)) {
      case 0:
        return rng_.OneIn(3) ? 0 : rng_.Below(kPage);
      case 1:
      case 2: {
        uint64_t k = rng_.Below(max / kGranule + 1);
        uint64_t s = k * kGranule + rng_.Below(3);
        return std::min(max, s == 0 ? 0 : s - 1);
      }
      default:
        return rng_.Below(max + 1);
    }
  }

  // Shortens a write so the file stays below max_file_size; false when
  // there is no room left at `at`.
  bool FitWrite(uint64_t at, uint64_t* len) {
    if (at + 1 >= options_.max_file_size) return false;
    *len = std::min(*len, options_.max_file_size - at);
    return true;
  }

  Op Generate() {
    Op op;
    op.data_seed = rng_.Next();
    op.kind = DrawKind();
    const int nslots = options_.fd_slots;
    const int nnames = options_.files_per_thread;
    op.slot = static_cast<int>(rng_.Below(static_cast<uint64_t>(nslots)));
    op.name = static_cast<int>(rng_.Below(static_cast<uint64_t>(nnames)));
    op.name2 = static_cast<int>(rng_.Below(static_cast<uint64_t>(nnames)));
    if (op.kind == Kind::kCopyRange) {
      op.slot2 = static_cast<int>(rng_.Below(static_cast<uint64_t>(nslots)));
      if (!slots_[op.slot2].open) op.slot = op.slot2;  // open that one
    }
    if (NeedsSlot(op.kind) && !slots_[op.slot].open) op.kind = Kind::kOpen;
    if (op.kind == Kind::kOpen && slots_[op.slot].open) op.kind = Kind::kClose;

    switch (op.kind) {
      case Kind::kOpen: {
        // Mostly O_RDWR: a write on an O_RDONLY descriptor (EBADF) tests
        // little, and is still drawn now and then.
        static constexpr int kAcc[] = {O_RDONLY, O_RDONLY, O_WRONLY, O_RDWR,
                                       O_RDWR,   O_RDWR,   O_RDWR,   O_RDWR};
        int flags = kAcc[rng_.Below(8)];
        if (rng_.Below(10) < 7) flags |= O_CREAT;
        if ((flags & O_CREAT) && rng_.OneIn(8)) flags |= O_EXCL;
        if ((flags & O_ACCMODE) != O_RDONLY) {
          if (rng_.OneIn(6)) flags |= O_TRUNC;
          if (rng_.OneIn(5)) flags |= O_APPEND;
        }
        op.flags = flags;
        break;
      }
      case Kind::kPread:
      case Kind::kMmapRead:
        op.off = PickOffset(RefSize(op.slot));
        if (op.kind == Kind::kMmapRead) op.off &= ~(kPage - 1);
        op.len = PickLen();
        break;
      case Kind::kRead:
        op.len = PickLen();
        break;
      case Kind::kPwrite:
      case Kind::kWrite: {
        const Slot& slot = slots_[op.slot];
        uint64_t size = RefSize(op.slot);
        op.off = PickOffset(size);
        op.len = PickLen();
        // Where the bytes land: O_APPEND writes at EOF whatever the offset
        // (pwrite too, on Linux); write() at the descriptor's position.
        uint64_t at = op.off;
        if (slot.flags & O_APPEND) {
          at = size;
        } else if (op.kind == Kind::kWrite) {
          off_t pos = lseek(slot.fd[kRef], 0, SEEK_CUR);
          at = pos < 0 ? 0 : static_cast<uint64_t>(pos);
        }
        if (!FitWrite(at, &op.len)) {
          // Full: shrink the file instead.
          op.kind = Kind::kFtruncate;
          op.len = rng_.Below(options_.max_file_size / 2);
        }
        break;
      }
      case Kind::kTruncate:
      case Kind::kFtruncate:
        op.len = PickSize();
        break;
      case Kind::kCopyRange: {
        op.off = PickOffset(RefSize(op.slot));
        op.off2 = PickOffset(RefSize(op.slot2));
        op.len = PickLen();
        if (!FitWrite(op.off2, &op.len)) op.off2 = 0;
        break;
      }
      case Kind::kFallocate: {
        static constexpr int kModes[] = {
            0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE};
        op.flags = kModes[rng_.Below(4)];
        op.off = PickOffset(RefSize(op.slot));
        op.len = PickLen();
        if (!FitWrite(op.off, &op.len)) op.off = 0;
        break;
      }
      default:
        break;
    }
    return op;
  }

  std::string Describe(const Op& op) const {
    const std::string kind = KindName(op.kind);
    auto slot = [&](int s) {
      return absl::StrCat("fd", s, "('", names_[slots_[s].name], "' ",
                          FlagsName(slots_[s].flags), ")");
    };
    switch (op.kind) {
      case Kind::kOpen:
        return absl::StrCat("fd", op.slot, " = open('", names_[op.name], "', ",
                            FlagsName(op.flags), ")");
      case Kind::kClose:
      case Kind::kFsync:
      case Kind::kFdatasync:
      case Kind::kDropCache:
        return absl::StrCat(kind, "(", slot(op.slot), ")");
      case Kind::kPread:
      case Kind::kPwrite:
      case Kind::kMmapRead:
        return absl::StrCat(kind, "(", slot(op.slot), ", off=", op.off,
                            ", len=", op.len, ")");
      case Kind::kRead:
      case Kind::kWrite:
        return absl::StrCat(kind, "(", slot(op.slot), ", len=", op.len, ")");
      case Kind::kTruncate:
        return absl::StrCat(kind, "('", names_[op.name], "', ", op.len, ")");
      case Kind::kFtruncate:
        return absl::StrCat(kind, "(", slot(op.slot), ", ", op.len, ")");
      case Kind::kRename:
      case Kind::kLink:
        return absl::StrCat(kind, "('", names_[op.name], "', '",
                            names_[op.name2], "')");
      case Kind::kUnlink:
        return absl::StrCat(kind, "('", names_[op.name], "')");
      case Kind::kCopyRange:
        return absl::StrCat(kind, "(", slot(op.slot), " off=", op.off, " -> ",
                            slot(op.slot2), " off=", op.off2, ", len=", op.len,
                            ")");
      case Kind::kFallocate:
        return absl::StrCat(kind, "(", slot(op.slot), ", ",
                            FallocModeName(op.flags), ", off=", op.off,
                            ", len=", op.len, ")");
    }
    return kind;
  }

  // --- Applying an operation to one directory.

  Outcome Apply(const Op& op, int side) {
    Outcome o;
    const int dirfd = shared_.dirfds[side];
    Slot& slot = slots_[op.slot >= 0 ? op.slot : 0];
    const int fd = slot.fd[side];
    errno = 0;
    auto result = [&](int64_t ret) {
      o.ret = ret < 0 ? -1 : ret;
      o.err = ret < 0 ? errno : 0;
    };
    switch (op.kind) {
      case Kind::kOpen: {
        int nfd =
            openat(dirfd, names_[op.name].c_str(), op.flags | O_CLOEXEC, 0644);
        result(nfd < 0 ? -1 : 0);
        slot.fd[side] = nfd;
        break;
      }
      case Kind::kClose:
        result(close(fd));
        slot.fd[side] = -1;
        break;
      case Kind::kPread:
      case Kind::kRead: {
        o.data.resize(op.len);
        ssize_t n = op.kind == Kind::kPread ? pread(fd, o.data.data(), op.len,
                                                    static_cast<off_t>(op.off))
                                            : read(fd, o.data.data(), op.len);
        result(n);
        o.data.resize(n > 0 ? static_cast<size_t>(n) : 0);
        break;
      }
      case Kind::kPwrite:
        result(pwrite(fd, wbuf_.data(), op.len, static_cast<off_t>(op.off)));
        break;
      case Kind::kWrite:
        result(write(fd, wbuf_.data(), op.len));
        break;
      case Kind::kTruncate: {
        std::string path = shared_.dirs[side] + "/" + names_[op.name];
        result(truncate(path.c_str(), static_cast<off_t>(op.len)));
        break;
      }
      case Kind::kFtruncate:
        result(ftruncate(fd, static_cast<off_t>(op.len)));
        break;
      case Kind::kMmapRead:
        MmapRead(op, fd, &o);
        break;
      case Kind::kRename:
        result(renameat(dirfd, names_[op.name].c_str(), dirfd,
                        names_[op.name2].c_str()));
        break;
      case Kind::kLink:
        result(linkat(dirfd, names_[op.name].c_str(), dirfd,
                      names_[op.name2].c_str(), 0));
        break;
      case Kind::kUnlink:
        result(unlinkat(dirfd, names_[op.name].c_str(), 0));
        break;
      case Kind::kFsync:
        result(fsync(fd));
        break;
      case Kind::kFdatasync:
        result(fdatasync(fd));
        break;
      case Kind::kDropCache: {
        // Returns the error instead of setting errno.
        int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        o.ret = rc == 0 ? 0 : -1;
        o.err = rc;
        break;
      }
      case Kind::kCopyRange: {
        loff_t in = static_cast<loff_t>(op.off);
        loff_t out = static_cast<loff_t>(op.off2);
        result(copy_file_range(fd, &in, slots_[op.slot2].fd[side], &out, op.len,
                               0));
        break;
      }
      case Kind::kFallocate:
        result(fallocate(fd, op.flags, static_cast<off_t>(op.off),
                         static_cast<off_t>(op.len)));
        break;
    }
    return o;
  }

  // Maps [off, off+len) shared and read-only and copies out the bytes
  // below EOF (touching a page past EOF would be SIGBUS). Each side uses
  // its own file's size, so a wrong size shows up as different bytes
  // rather than a crash.
  void MmapRead(const Op& op, int fd, Outcome* o) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      o->ret = -1;
      o->err = errno;
      return;
    }
    void* map = mmap(nullptr, op.len, PROT_READ, MAP_SHARED, fd,
                     static_cast<off_t>(op.off));
    if (map == MAP_FAILED) {
      o->ret = -1;
      o->err = errno;
      return;
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t n = op.off < size ? std::min(op.len, size - op.off) : 0;
    o->data.assign(static_cast<const char*>(map), n);
    munmap(map, op.len);
    o->ret = static_cast<int64_t>(n);
  }

  // --- One step: apply, compare, check the files.

  absl::Status Step(uint64_t index, const Op& op) {
    std::string what = Describe(op);
    if (op.kind == Kind::kPwrite || op.kind == Kind::kWrite) {
      wbuf_.resize(op.len);
      FillData(wbuf_.data(), op.len, op.data_seed);
    }
    Outcome test = Apply(op, kTest);
    Outcome ref = Apply(op, kRef);

    Record(index, what + " -> " + DescribeOutcome(ref));
    ++summary_.ops;
    ++summary_.by_kind[KindName(op.kind)];
    if (ref.ret < 0) ++summary_.errors[ErrnoName(ref.err)];
    if (ref.ret > 0 && (op.kind == Kind::kPwrite || op.kind == Kind::kWrite ||
                        op.kind == Kind::kCopyRange)) {
      summary_.bytes_written += static_cast<uint64_t>(ref.ret);
    }

    // Slot bookkeeping follows the reference; on a mismatch the run ends
    // anyway.
    if (op.kind == Kind::kOpen) {
      Slot& slot = slots_[op.slot];
      slot.open = ref.ret == 0 && test.ret == 0;
      if (slot.open) {
        slot.flags = op.flags;
        slot.name = op.name;
      } else {
        for (int& fd : slot.fd) {
          if (fd >= 0) close(fd);
          fd = -1;
        }
      }
    } else if (op.kind == Kind::kClose) {
      slots_[op.slot].open = false;
    }

    if (test.ret != ref.ret || (ref.ret < 0 && test.err != ref.err)) {
      return Mismatch(index, what,
                      absl::StrCat("returned ", DescribeOutcome(test),
                                   ", the reference ", DescribeOutcome(ref)));
    }
    if (test.data != ref.data) {
      summary_.bytes_compared += ref.data.size();
      return Mismatch(index, what,
                      absl::StrCat("read different bytes: ",
                                   DescribeDifference(test.data, ref.data)));
    }
    summary_.bytes_compared += ref.data.size();
    if (options_.after_op) options_.after_op(thread_, index, what);
    bool full =
        options_.full_check_interval <= 1 ||
        (index + 1) % static_cast<uint64_t>(options_.full_check_interval) == 0;
    return CheckFiles(index, op, full);
  }

  // Whether `op` can change a file's bytes or which file a name is.
  // Reads need no content check afterwards: they compared what they read.
  static bool Mutates(const Op& op) {
    switch (op.kind) {
      case Kind::kOpen:
        return (op.flags & O_TRUNC) != 0;
      case Kind::kPwrite:
      case Kind::kWrite:
      case Kind::kTruncate:
      case Kind::kFtruncate:
      case Kind::kRename:
      case Kind::kLink:
      case Kind::kCopyRange:
      case Kind::kFallocate:
        return true;
      default:
        return false;
    }
  }

  // The names whose file a mutating `op` may have changed: those it
  // names, and every name of the file behind a descriptor it wrote to
  // (there may be several after link(), or none after unlink()). Slots
  // whose file has no name left go to `unnamed_slots`.
  std::set<int> TouchedNames(const Op& op, std::vector<int>* unnamed_slots) {
    std::set<int> touched;
    if (!Mutates(op)) return touched;
    switch (op.kind) {
      case Kind::kOpen:
      case Kind::kTruncate:
        touched.insert(op.name);
        break;
      case Kind::kRename:
      case Kind::kLink:
        touched.insert(op.name);
        touched.insert(op.name2);
        break;
      default:
        break;
    }
    std::vector<int> fds;
    if (op.kind == Kind::kCopyRange) {
      fds.push_back(op.slot2);
    } else if (NeedsSlot(op.kind)) {
      fds.push_back(op.slot);
    }
    for (int s : fds) {
      struct stat fst;
      if (!slots_[s].open || fstat(slots_[s].fd[kRef], &fst) != 0) continue;
      bool named = false;
      for (int k = 0; k < static_cast<int>(names_.size()); ++k) {
        struct stat st;
        if (fstatat(shared_.dirfds[kRef], names_[k].c_str(), &st,
                    AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_ino == fst.st_ino && st.st_dev == fst.st_dev) {
          touched.insert(k);
          named = true;
        }
      }
      if (!named) unnamed_slots->push_back(s);
    }
    return touched;
  }

  // Sizes of every name and open descriptor; contents of the files `op`
  // changed, or of all when `full`.
  absl::Status CheckFiles(uint64_t index, const Op& op, bool full) {
    std::vector<int> unnamed_slots;
    const std::set<int> touched = TouchedNames(op, &unnamed_slots);
    ++checks_;
    for (int k = 0; k < static_cast<int>(names_.size()); ++k) {
      const char* name = names_[k].c_str();
      struct stat st[2];
      int err[2];
      for (int side : {kTest, kRef}) {
        err[side] = fstatat(shared_.dirfds[side], name, &st[side],
                            AT_SYMLINK_NOFOLLOW) == 0
                        ? 0
                        : errno;
      }
      std::string what = absl::StrCat("after it, '", name, "'");
      if (err[kTest] != err[kRef]) {
        return Mismatch(index, Describe(op),
                        absl::StrCat(what, ": stat gives ",
                                     err[kTest] ? ErrnoName(err[kTest]) : "OK",
                                     ", in the reference ",
                                     err[kRef] ? ErrnoName(err[kRef]) : "OK"));
      }
      if (err[kRef] != 0) continue;
      if (!S_ISREG(st[kTest].st_mode) ||
          st[kTest].st_size != st[kRef].st_size) {
        return Mismatch(
            index, Describe(op),
            absl::StrCat(
                what, ": mode 0", absl::Hex(st[kTest].st_mode), " size ",
                st[kTest].st_size, ", in the reference mode 0",
                absl::Hex(st[kRef].st_mode), " size ", st[kRef].st_size));
      }
      if (!full && touched.count(k) == 0) continue;
      int fds[2];
      for (int side : {kTest, kRef}) {
        fds[side] = openat(shared_.dirfds[side], name, O_RDONLY | O_CLOEXEC);
        err[side] = fds[side] < 0 ? errno : 0;
      }
      absl::Status status;
      if (fds[kTest] < 0 || fds[kRef] < 0) {
        status =
            Mismatch(index, Describe(op),
                     absl::StrCat(what, ": open O_RDONLY gives ",
                                  err[kTest] ? ErrnoName(err[kTest]) : "OK",
                                  ", in the reference ",
                                  err[kRef] ? ErrnoName(err[kRef]) : "OK"));
      } else {
        // Now and then the test file's cached pages are dropped first, so
        // the daemon itself serves the check.
        if (checks_ % 8 == 0) {
          posix_fadvise(fds[kTest], 0, 0, POSIX_FADV_DONTNEED);
        }
        status = CompareContents(index, op, fds, what);
      }
      for (int fd : fds) {
        if (fd >= 0) close(fd);
      }
      if (!status.ok()) return status;
    }
    for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
      const Slot& slot = slots_[s];
      if (!slot.open) continue;
      std::string what =
          absl::StrCat("after it, descriptor fd", s, " ('", names_[slot.name],
                       "' ", FlagsName(slot.flags), ")");
      struct stat st[2];
      int err[2];
      for (int side : {kTest, kRef}) {
        err[side] = fstat(slot.fd[side], &st[side]) == 0 ? 0 : errno;
      }
      if (err[kTest] != err[kRef] ||
          (err[kRef] == 0 && st[kTest].st_size != st[kRef].st_size)) {
        return Mismatch(
            index, Describe(op),
            absl::StrCat(what, ": fstat gives ",
                         err[kTest] ? ErrnoName(err[kTest])
                                    : absl::StrCat("size ", st[kTest].st_size),
                         ", in the reference ",
                         err[kRef] ? ErrnoName(err[kRef])
                                   : absl::StrCat("size ", st[kRef].st_size)));
      }
      // A file with no name left (unlinked while open) can only be read
      // through its descriptor; a named one was read by name above (on a
      // full check, read it both ways).
      bool unnamed = std::find(unnamed_slots.begin(), unnamed_slots.end(), s) !=
                     unnamed_slots.end();
      if ((slot.flags & O_ACCMODE) != O_WRONLY && (full || unnamed)) {
        absl::Status status = CompareContents(index, op, slot.fd, what);
        if (!status.ok()) return status;
      }
    }
    return absl::OkStatus();
  }

  absl::Status CompareContents(uint64_t index, const Op& op, const int fds[2],
                               const std::string& what) {
    const uint64_t limit = 4 * options_.max_file_size + (4 << 20);
    int err[2];
    for (int side : {kTest, kRef}) {
      err[side] = ReadAll(fds[side], &contents_[side], limit);
    }
    if (err[kTest] != err[kRef]) {
      return Mismatch(index, Describe(op),
                      absl::StrCat(what, ": reading it whole gives ",
                                   err[kTest] ? ErrnoName(err[kTest]) : "OK",
                                   ", in the reference ",
                                   err[kRef] ? ErrnoName(err[kRef]) : "OK"));
    }
    summary_.bytes_compared += contents_[kRef].size();
    std::string diff = DescribeDifference(contents_[kTest], contents_[kRef]);
    if (!diff.empty()) {
      return Mismatch(index, Describe(op),
                      absl::StrCat(what, ": contents differ: ", diff));
    }
    return absl::OkStatus();
  }

  absl::Status CloseAll() {
    for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
      if (!slots_[s].open) continue;
      Op op;
      op.kind = Kind::kClose;
      op.slot = s;
      std::string what = Describe(op);
      Outcome test = Apply(op, kTest);
      Outcome ref = Apply(op, kRef);
      slots_[s].open = false;
      if (test.ret != ref.ret || (ref.ret < 0 && test.err != ref.err)) {
        return Mismatch(ops_, what,
                        absl::StrCat("returned ", DescribeOutcome(test),
                                     ", the reference ", DescribeOutcome(ref)));
      }
    }
    return absl::OkStatus();
  }

  void Record(uint64_t index, std::string line) {
    history_.push_back(absl::StrCat("#", index, " ", line));
    if (history_.size() > kHistory) history_.pop_front();
  }

  absl::Status Mismatch(uint64_t index, const std::string& op,
                        const std::string& what) {
    std::string s = absl::StrCat(
        "model mismatch: seed ", options_.seed, ", thread ", thread_, " (seed ",
        options_.seed + static_cast<uint64_t>(thread_), "), op #", index,
        " of ", ops_, ": ", op, ": ", what,
        "\nreplay: CACHEFS_MODEL_SEED=", options_.seed,
        " CACHEFS_MODEL_OPS=", options_.ops, " (", options_.threads,
        " threads)\nlast operations of thread ", thread_,
        " (with the reference's results):");
    for (const std::string& line : history_) absl::StrAppend(&s, "\n  ", line);
    return absl::InternalError(s);
  }

  Shared& shared_;
  const ModelOptions& options_;
  const int thread_;
  Rng rng_;
  uint64_t ops_ = 0;
  uint64_t checks_ = 0;
  std::vector<std::string> names_;
  std::vector<Slot> slots_;
  std::string wbuf_;
  std::string contents_[2];
  std::deque<std::string> history_;
  ModelSummary summary_;
};

}  // namespace

std::string ModelFileName(int thread, int k) {
  return absl::StrCat("t", thread, "_f", k);
}

absl::Status RunModel(const ModelOptions& options,
                      const std::string& dir_under_test,
                      const std::string& reference_dir, ModelSummary* summary) {
  if (options.threads < 1 || options.files_per_thread < 1 ||
      options.fd_slots < 1 || options.max_io_size < 1 ||
      options.max_file_size < kGranule) {
    return absl::InvalidArgumentError("RunModel: bad options");
  }
  Shared shared;
  shared.options = &options;
  shared.dirs[kTest] = dir_under_test;
  shared.dirs[kRef] = reference_dir;
  shared.deadline = absl::Now() + options.time_limit;
  for (int side : {kTest, kRef}) {
    shared.dirfds[side] =
        open(shared.dirs[side].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (shared.dirfds[side] < 0) {
      absl::Status s = absl::FailedPreconditionError(absl::StrCat(
          "RunModel: open ", shared.dirs[side], ": ", strerror(errno)));
      if (side == kRef) close(shared.dirfds[kTest]);
      return s;
    }
  }
  absl::Status precondition;
  for (int side : {kTest, kRef}) {
    for (int t = 0; t < options.threads && precondition.ok(); ++t) {
      for (int k = 0; k < options.files_per_thread; ++k) {
        struct stat st;
        std::string name = ModelFileName(t, k);
        if (fstatat(shared.dirfds[side], name.c_str(), &st,
                    AT_SYMLINK_NOFOLLOW) == 0) {
          precondition = absl::FailedPreconditionError(absl::StrCat(
              "RunModel: ", shared.dirs[side], "/", name, " already exists"));
          break;
        }
      }
    }
  }
  if (precondition.ok()) {
    std::vector<std::thread> threads;
    for (int t = 0; t < options.threads; ++t) {
      threads.emplace_back([&shared, t] {
        ModelThread thread(&shared, t);
        absl::Status status = thread.Run();
        std::lock_guard<std::mutex> lock(shared.mu);
        thread.MergeSummary(&shared.summary);
        if (!status.ok() && shared.first_error.ok()) {
          shared.first_error = status;
          shared.stop.store(true);
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  for (int fd : shared.dirfds) close(fd);
  if (!precondition.ok()) return precondition;
  if (summary != nullptr) *summary = shared.summary;
  return shared.first_error;
}

}  // namespace cachefs::testing
