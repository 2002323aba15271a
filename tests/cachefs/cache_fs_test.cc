// The FUSE-free core of the daemon: reads through CacheFs over a real
// directory origin, and invariant 3: no cache fault ever fails a read.

#include "cachefs/cache_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <sys/resource.h>

#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "contentmap/record_store.h"
#include "io/errno_status.h"
#include "io/fault_injection_env.h"
#include "netfs/posix_origin.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

constexpr uint64_t kGranule = 256 * 1024;

class CacheFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_dir_ = origin_tmp_.path();
    content_ = RandomBytes(3 * kGranule + 123, 1);
    std::ofstream(origin_dir_ + "/file", std::ios::binary) << content_;
  }
  void Mount(Env* env, uint32_t readahead = 0,
             double checkpoint_interval = 30.0) {
    fs_.reset();
    cache_.reset();
    CacheOptions options;
    options.directory = cache_tmp_.path();
    auto cache = Cache::Open(env, options);
    ASSERT_OK(cache);
    cache_ = *std::move(cache);
    if (origin_ == nullptr) {
      auto origin = PosixOrigin::Open(origin_dir_);
      ASSERT_OK(origin);
      origin_ = *std::move(origin);
    }
    auto volume = cache_->AcquireVolume("test-volume", "");
    ASSERT_OK(volume);
    CacheFsOptions fs_options;
    fs_options.readahead_granules = readahead;  // 0 keeps counts exact
    fs_options.checkpoint_interval = checkpoint_interval;
    auto fs = CacheFs::Create(fs_options, origin_.get(), cache_.get(), *volume);
    ASSERT_OK(fs);
    fs_ = *std::move(fs);
  }
  void Unmount() {
    fs_.reset();
    cache_.reset();
  }
  // Opens `name`, reads it whole in `chunk` pieces, releases it.
  std::string ReadAll(const std::string& name, size_t chunk = 128 * 1024) {
    auto entry = fs_->Lookup(1, name);
    EXPECT_OK(entry);
    if (!entry.ok()) return "";
    auto opened = fs_->Open(entry->ino, O_RDONLY);
    EXPECT_OK(opened);
    std::string out;
    for (uint64_t off = 0;; off += chunk) {
      auto reply = fs_->Read(opened->fh, off, chunk);
      EXPECT_OK(reply);
      if (!reply.ok() || (*reply)->size() == 0) break;
      for (const iovec& v : (*reply)->iov()) {
        out.append(static_cast<const char*>(v.iov_base), v.iov_len);
      }
    }
    fs_->Release(opened->fh);
    fs_->Forget(entry->ino, 1);
    cache_->dispatcher()->Drain();
    return out;
  }
  // The record of the backing file at `path`, as a new lookup would read it.
  absl::StatusOr<ObjectRecord> LoadRecordAt(const std::string& path) {
    std::string dir = path.substr(0, path.rfind('/'));
    std::string name = path.substr(path.rfind('/') + 1);
    int dirfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    int fd = open(path.c_str(), O_RDONLY);
    absl::StatusOr<ObjectRecord> record =
        absl::NotFoundError("no backing file " + path);
    if (dirfd >= 0 && fd >= 0) {
      record = LoadRecord(Env::Default(), dirfd, name, fd);
    }
    if (fd >= 0) close(fd);
    if (dirfd >= 0) close(dirfd);
    return record;
  }
  uint64_t Stat(CacheStats::Counter CacheStats::*counter) {
    return (cache_->stats().*counter).load();
  }
  // Origin files opened since the origin was made (it outlives remounts).
  uint64_t OriginOpens() { return origin_->stats().opens.load(); }
  // The backing file of the only object in the cache.
  std::string BackingFile() {
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(cache_tmp_.path() + "/volumes")) {
      // Objects are named by 16 hex digits (other files of the volume,
      // such as the attribute snapshot, are not).
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.size() == 16 &&
          name.find_first_not_of("0123456789abcdef") == std::string::npos) {
        return e.path();
      }
    }
    return "";
  }

  TempDir origin_tmp_;
  TempDir cache_tmp_;
  FaultInjectionEnv fault_env_{Env::Default()};  // outlives the cache
  std::string origin_dir_;
  std::string content_;
  std::unique_ptr<PosixOrigin> origin_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CacheFs> fs_;
};

TEST_F(CacheFsTest, SecondReadComesFromTheCacheWithoutTouchingTheOrigin) {
  Mount(Env::Default());
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), content_.size());
  EXPECT_EQ(OriginOpens(), 1u);
  EXPECT_EQ(ReadAll("file", 100000), content_);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), content_.size());
  EXPECT_EQ(OriginOpens(), 1u);
  Unmount();
  Mount(Env::Default());
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), 0u);
  EXPECT_EQ(OriginOpens(), 1u);  // none since the remount
  EXPECT_EQ(Stat(&CacheStats::lookups_positive), 1u);
}

TEST_F(CacheFsTest, ReadErrorsOnTheCacheAreServedFromTheOrigin) {
  FaultInjectionEnv& env = fault_env_;
  Mount(&env);
  ASSERT_EQ(ReadAll("file"), content_);
  env.SetError(FaultInjectionEnv::kDataRead, EIO);
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_GE(Stat(&CacheStats::cache_io_errors), 1u);
  EXPECT_EQ(Stat(&CacheStats::objects_withdrawn), 1u);
}

TEST_F(CacheFsTest, WriteErrorsOnTheCacheNeverFailARead) {
  FaultInjectionEnv& env = fault_env_;
  Mount(&env);
  env.SetError(FaultInjectionEnv::kDataWrite, EIO);
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_GE(Stat(&CacheStats::cache_io_errors), 1u);
  env.ClearFaults();
  EXPECT_EQ(ReadAll("file"), content_);
}

TEST_F(CacheFsTest, NoSpaceIsCountedAndTheDataStillRead) {
  FaultInjectionEnv& env = fault_env_;
  Mount(&env);
  // No room for the object itself.
  env.SetNoSpace(true);
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_EQ(Stat(&CacheStats::nospace), 1u);
  EXPECT_EQ(Stat(&CacheStats::cache_io_errors), 0u);
  // An object, but no room for its data: nothing is withdrawn.
  env.SetNoSpace(false);
  auto entry = fs_->Lookup(1, "file");
  ASSERT_OK(entry);
  auto opened = fs_->Open(entry->ino, O_RDONLY);
  ASSERT_OK(opened);
  env.SetNoSpace(true);
  auto reply = fs_->Read(opened->fh, 0, content_.size());
  ASSERT_OK(reply);
  EXPECT_EQ((*reply)->size(), content_.size());
  reply->reset();
  fs_->Release(opened->fh);
  fs_->Forget(entry->ino, 1);
  cache_->dispatcher()->Drain();
  EXPECT_GE(Stat(&CacheStats::nospace), 2u);
  EXPECT_EQ(Stat(&CacheStats::objects_withdrawn), 0u);
  env.SetNoSpace(false);
  EXPECT_EQ(ReadAll("file"), content_);
}

TEST_F(CacheFsTest, CorruptRecordIsStaleAndReadsStayCorrect) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  Unmount();
  std::string backing = BackingFile();
  ASSERT_FALSE(backing.empty());
  ASSERT_EQ(setxattr(backing.c_str(), kRecordXattr, "junk", 4, 0), 0);
  Mount(Env::Default());
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_EQ(Stat(&CacheStats::lookups_stale), 1u);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), content_.size());
}

TEST_F(CacheFsTest, DeletedBackingFileIsRefetched) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  Unmount();
  ASSERT_EQ(unlink(BackingFile().c_str()), 0);
  Mount(Env::Default());
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_EQ(Stat(&CacheStats::lookups_negative), 1u);
}

TEST_F(CacheFsTest, BackingFileTruncatedWhileInUseFallsBackToTheOrigin) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  // Cut the file under a live object: the map still claims the granules.
  auto entry = fs_->Lookup(1, "file");
  ASSERT_OK(entry);
  auto opened = fs_->Open(entry->ino, O_RDONLY);
  ASSERT_OK(opened);
  // A first read from the cache: the object is looked up and in use.
  ASSERT_OK(fs_->Read(opened->fh, 0, 1));
  ASSERT_EQ(Stat(&CacheStats::lookups_positive), 1u);
  ASSERT_EQ(truncate(BackingFile().c_str(), 0), 0);
  auto reply = fs_->Read(opened->fh, 0, content_.size());
  ASSERT_OK(reply);
  std::string got;
  for (const iovec& v : (*reply)->iov()) {
    got.append(static_cast<const char*>(v.iov_base), v.iov_len);
  }
  EXPECT_EQ(got, content_);
  EXPECT_EQ(Stat(&CacheStats::objects_withdrawn), 1u);
  reply->reset();
  fs_->Release(opened->fh);
  fs_->Forget(entry->ino, 1);
}

TEST_F(CacheFsTest, OriginChangeOfTheSameSizeIsSeenAtTheNextOpen) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  std::string fresh = RandomBytes(content_.size(), 2);
  std::ofstream(origin_dir_ + "/file", std::ios::binary) << fresh;
  EXPECT_EQ(ReadAll("file"), fresh);
  EXPECT_EQ(Stat(&CacheStats::invalidations) + Stat(&CacheStats::lookups_stale),
            1u);
}

TEST_F(CacheFsTest, SequentialReadAheadServesTheSameBytes) {
  content_ = RandomBytes(40 * kGranule + 777, 3);
  std::ofstream(origin_dir_ + "/file", std::ios::binary) << content_;
  Mount(Env::Default(), /*readahead=*/4);
  EXPECT_EQ(ReadAll("file"), content_);  // origin read-ahead
  cache_->dispatcher()->Drain();
  uint64_t from_origin = Stat(&CacheStats::bytes_read_from_origin);
  EXPECT_EQ(ReadAll("file", 128 * 1024), content_);  // cache reads
  EXPECT_EQ(ReadAll("file", 100000), content_);  // unaligned requests
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), from_origin);
}

TEST_F(CacheFsTest, AnOpenHandleReadsTheNewObjectAfterAReplacement) {
  content_ = RandomBytes(16 * kGranule, 3);
  std::ofstream(origin_dir_ + "/file", std::ios::binary) << content_;
  Mount(Env::Default(), /*readahead=*/8);
  ASSERT_EQ(ReadAll("file"), content_);
  cache_->dispatcher()->Drain();
  auto entry = fs_->Lookup(1, "file");
  ASSERT_OK(entry);
  auto first = fs_->Open(entry->ino, O_RDONLY);
  ASSERT_OK(first);
  // Two sequential reads: the next granules are read ahead.
  for (uint64_t off = 0; off < 2 * kGranule; off += kGranule) {
    auto reply = fs_->Read(first->fh, off, kGranule);
    ASSERT_OK(reply);
  }
  // The file changes on the origin; a new open replaces the object.
  std::string fresh = RandomBytes(16 * kGranule, 4);
  std::ofstream(origin_dir_ + "/file", std::ios::binary) << fresh;
  struct timespec times[2] = {{0, UTIME_OMIT}, {time(nullptr) + 5, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (origin_dir_ + "/file").c_str(), times, 0), 0);
  auto second = fs_->Open(entry->ino, O_RDONLY);
  ASSERT_OK(second);
  // The first handle goes on: it reads the new object, never bytes the
  // old one held after the switch.
  auto reply = fs_->Read(first->fh, 2 * kGranule, kGranule);
  ASSERT_OK(reply);
  std::string got;
  for (const iovec& v : (*reply)->iov()) {
    got.append(static_cast<const char*>(v.iov_base), v.iov_len);
  }
  EXPECT_EQ(got, fresh.substr(2 * kGranule, kGranule));
  reply->reset();
  fs_->Release(first->fh);
  fs_->Release(second->fh);
  fs_->Forget(entry->ino, 1);
}

TEST_F(CacheFsTest, NamesNeverLeaveTheOrigin) {
  Mount(Env::Default());
  EXPECT_FALSE(fs_->Lookup(1, "..").ok());
  EXPECT_FALSE(fs_->Lookup(1, "a/b").ok());
  ASSERT_EQ(symlink("/etc/passwd", (origin_dir_ + "/out").c_str()), 0);
  auto entry = fs_->Lookup(1, "out");
  ASSERT_OK(entry);
  EXPECT_TRUE(S_ISLNK(entry->attr.st_mode));
  auto target = fs_->ReadLink(entry->ino);
  ASSERT_OK(target);
  EXPECT_EQ(*target, "/etc/passwd");
  fs_->Forget(entry->ino, 1);
}

// Write-through from the CacheFs API: origin first, then the cache.
class CacheFsWriteTest : public CacheFsTest {
 protected:
  struct Handle {
    uint64_t ino = 0;
    uint64_t fh = 0;
  };
  Handle OpenFile(const std::string& name, int flags) {
    auto entry = fs_->Lookup(1, name);
    EXPECT_OK(entry);
    if (!entry.ok()) return {};
    auto opened = fs_->Open(entry->ino, flags);
    EXPECT_OK(opened);
    if (!opened.ok()) return {};
    return {entry->ino, opened->fh};
  }
  void Close(const Handle& h) {
    EXPECT_OK(fs_->Flush(h.fh));
    fs_->Release(h.fh);
    fs_->Forget(h.ino, 1);
    cache_->dispatcher()->Drain();
  }
  void WriteAt(const Handle& h, uint64_t off, const std::string& data) {
    auto n = fs_->Write(h.fh, data.data(), data.size(), off);
    ASSERT_OK(n);
    ASSERT_EQ(*n, data.size());
    if (content_.size() < off + data.size()) content_.resize(off + data.size());
    content_.replace(off, data.size(), data);
  }
  std::string OriginContent(const std::string& name = "file") {
    std::ifstream in(origin_dir_ + "/" + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

TEST_F(CacheFsWriteTest, WrittenDataIsACacheHitAfterARemount) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);  // every granule cached
  Handle h = OpenFile("file", O_RDWR);
  WriteAt(h, kGranule, RandomBytes(kGranule, 2));          // one whole granule
  WriteAt(h, 1000, RandomBytes(5000, 3));                  // inside one
  WriteAt(h, 2 * kGranule - 7, RandomBytes(20, 4));        // across two
  WriteAt(h, content_.size() + 5000, RandomBytes(700, 5));  // past the end
  Close(h);
  EXPECT_EQ(OriginContent(), content_);
  EXPECT_EQ(Stat(&CacheStats::bytes_written_to_origin), kGranule + 5720);
  Unmount();
  Mount(Env::Default());
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), 0u);
  EXPECT_EQ(Stat(&CacheStats::lookups_positive), 1u);
}

TEST_F(CacheFsWriteTest, OpenFilesAreCheckpointedPeriodically) {
  Mount(Env::Default(), 0, /*checkpoint_interval=*/0.1);
  Handle h = OpenFile("file", O_RDWR);
  WriteAt(h, 0, RandomBytes(kGranule, 8));
  cache_->dispatcher()->Drain();
  // While the file stays open, its record is made clean in the background:
  // a crash now would keep the granule.
  bool clean = false;
  for (int i = 0; i < 100 && !clean; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    auto record = LoadRecordAt(BackingFile());
    // The counter follows the record's write: both, or wait.
    clean = record.ok() && record->state == ContentState::kClean &&
            record->map.IsPresent(0) && Stat(&CacheStats::checkpoints) >= 1;
  }
  EXPECT_TRUE(clean) << Stat(&CacheStats::checkpoints) << " checkpoints";
  Close(h);
}

TEST_F(CacheFsWriteTest, PartOfAnUncachedGranuleStaysUncached) {
  Mount(Env::Default());
  Handle h = OpenFile("file", O_RDWR);
  WriteAt(h, 10, "abc");                     // granule 0: never read
  WriteAt(h, 2 * kGranule, std::string(kGranule, 'z'));  // granule 2: whole
  Close(h);
  EXPECT_EQ(Stat(&CacheStats::granules_write_cleared), 1u);
  EXPECT_EQ(Stat(&CacheStats::granules_written_through), 1u);
  EXPECT_EQ(ReadAll("file"), content_);
  // Granules 0, 1 and 3 came from the origin; 2 from the cache.
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), content_.size() - kGranule);
}

TEST_F(CacheFsWriteTest, AWriteTheOriginRefusesChangesNothing) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  Handle h = OpenFile("file", O_RDWR);
  // The origin refuses writes past RLIMIT_FSIZE with EFBIG.
  rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  sighandler_t old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit limit = old_limit;
  limit.rlim_cur = content_.size();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  std::string data(100, 'x');
  auto n = fs_->Write(h.fh, data.data(), data.size(), content_.size() + 10);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(StatusToErrno(n.status()), EFBIG);
  Close(h);
  EXPECT_EQ(OriginContent(), content_);
  uint64_t before = Stat(&CacheStats::bytes_read_from_origin);
  EXPECT_EQ(ReadAll("file"), content_);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), before);
}

TEST_F(CacheFsWriteTest, ACacheWriteThatFailsLeavesItsGranulesAbsent) {
  FaultInjectionEnv& env = fault_env_;
  Mount(&env);
  ASSERT_EQ(ReadAll("file"), content_);
  Handle h = OpenFile("file", O_RDWR);
  env.SetError(FaultInjectionEnv::kDataWrite, ENOSPC);
  WriteAt(h, 0, RandomBytes(2 * kGranule + 10, 6));
  env.ClearFaults();
  Close(h);
  EXPECT_GE(Stat(&CacheStats::nospace), 1u);
  EXPECT_EQ(OriginContent(), content_);
  uint64_t before = Stat(&CacheStats::bytes_read_from_origin);
  EXPECT_EQ(ReadAll("file"), content_);
  // The three granules the write touched come from the origin again.
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), before + 3 * kGranule);
}

TEST_F(CacheFsWriteTest, TruncateAndExtendKeepTheCacheInStep) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  Handle h = OpenFile("file", O_RDWR);
  Origin::AttrChange shrink;
  shrink.size = kGranule + 100;
  ASSERT_OK(fs_->SetAttr(h.ino, shrink, h.fh));
  content_.resize(kGranule + 100);
  Origin::AttrChange grow;
  grow.size = 3 * kGranule;
  ASSERT_OK(fs_->SetAttr(h.ino, grow, 0));
  content_.resize(3 * kGranule, '\0');
  Close(h);
  EXPECT_EQ(OriginContent(), content_);
  Unmount();
  Mount(Env::Default());
  EXPECT_EQ(ReadAll("file"), content_);
  // Granules 0 and 1 (with zeros past the cut) are cached; 2 is new.
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), kGranule);
}

TEST_F(CacheFsWriteTest, ARenamedFileKeepsItsCachedData) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  ASSERT_OK(fs_->Rename(1, "file", 1, "renamed", 0));
  cache_->dispatcher()->Drain();
  EXPECT_EQ(Stat(&CacheStats::objects_moved), 1u);
  Unmount();
  Mount(Env::Default());
  EXPECT_EQ(ReadAll("renamed"), content_);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), 0u);
}

TEST_F(CacheFsWriteTest, AnUnlinkedFileFreesItsObjectAfterTheLastClose) {
  Mount(Env::Default());
  ASSERT_EQ(ReadAll("file"), content_);
  Handle h = OpenFile("file", O_RDONLY);
  ASSERT_OK(fs_->Unlink(1, "file"));
  EXPECT_NE(BackingFile(), "");  // still open
  auto reply = fs_->Read(h.fh, 0, content_.size());
  ASSERT_OK(reply);
  std::string got;
  for (const iovec& v : (*reply)->iov()) {
    got.append(static_cast<const char*>(v.iov_base), v.iov_len);
  }
  reply->reset();
  EXPECT_EQ(got, content_);
  fs_->Release(h.fh);
  fs_->Forget(h.ino, 1);
  cache_->dispatcher()->Drain();
  EXPECT_EQ(BackingFile(), "");
}

TEST_F(CacheFsWriteTest, CreateWriteAndNamespaceOperations) {
  Mount(Env::Default());
  auto dir = fs_->MakeDir(1, "d", 0755);
  ASSERT_OK(dir);
  auto created = fs_->Create(dir->ino, "new", 0640, O_WRONLY | O_CREAT);
  ASSERT_OK(created);
  std::string data = RandomBytes(kGranule + 17, 7);
  auto n = fs_->Write(created->opened.fh, data.data(), data.size(), 0);
  ASSERT_OK(n);
  fs_->Release(created->opened.fh);
  fs_->Forget(created->entry.ino, 1);
  auto link = fs_->Link(fs_->Lookup(dir->ino, "new")->ino, 1, "hard");
  ASSERT_OK(link);
  EXPECT_EQ(link->attr.st_nlink, 2u);
  auto symlink = fs_->MakeSymlink("d/new", 1, "soft");
  ASSERT_OK(symlink);
  EXPECT_EQ(*fs_->ReadLink(symlink->ino), "d/new");
  EXPECT_EQ(StatusToErrno(fs_->RemoveDir(1, "d")), ENOTEMPTY);
  EXPECT_EQ(StatusToErrno(fs_->MakeDir(1, "d", 0755).status()), EEXIST);
  cache_->dispatcher()->Drain();
  uint64_t before = Stat(&CacheStats::bytes_read_from_origin);
  EXPECT_EQ(ReadAll("hard"), data);
  EXPECT_EQ(Stat(&CacheStats::bytes_read_from_origin), before);
  ASSERT_OK(fs_->Unlink(dir->ino, "new"));
  EXPECT_OK(fs_->RemoveDir(1, "d"));
  struct stat st;
  EXPECT_NE(stat((origin_dir_ + "/d").c_str(), &st), 0);
  EXPECT_EQ(OriginContent("hard"), data);
}

}  // namespace
}  // namespace cachefs::testing
