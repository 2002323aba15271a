// NetfsFile without a mount and without CacheFs: one origin file's reads
// and writes through a real cache, on a real directory behind
// FaultInjectionOrigin. What a user of the file would check: the bytes,
// how often the origin is asked, and that a change the origin refuses or
// loses leaves no byte in the cache the origin does not hold.

#include "netfs/netfs_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "cookie/cache.h"
#include "cookie/dispatcher.h"
#include "io/buffer_pool.h"
#include "io/env.h"
#include "io/errno_status.h"
#include "netfs/fault_injection_origin.h"
#include "netfs/posix_origin.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

using Kind = FaultInjectionOrigin::Kind;

constexpr uint64_t kGranule = 256 * 1024;

// Size and times, as cachefs's aux data without the inode number.
std::string AuxOf(const struct stat& st) {
  return absl::StrCat(st.st_size, ":", st.st_mtim.tv_sec, ".",
                      st.st_mtim.tv_nsec, ":", st.st_ctim.tv_sec, ".",
                      st.st_ctim.tv_nsec);
}

class NetfsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    content_ = RandomBytes(3 * kGranule + 1234, 7);
    WriteOrigin(content_);
    auto posix = PosixOrigin::Open(origin_tmp_.path());
    ASSERT_OK(posix);
    posix_ = *std::move(posix);
    origin_ = std::make_unique<FaultInjectionOrigin>(posix_.get());
    CacheOptions options;
    options.directory = cache_tmp_.path();
    auto cache = Cache::Open(Env::Default(), options);
    ASSERT_OK(cache);
    cache_ = *std::move(cache);
    auto volume = cache_->AcquireVolume("netfs", "");
    ASSERT_OK(volume);
    volume_ = *std::move(volume);
    auto buffers = BufferPool::Create(kGranule, 64);
    ASSERT_OK(buffers);
    buffers_ = *std::move(buffers);
    pool_ = std::make_unique<Dispatcher>(4, nullptr);
    ReadPath::Options read_options;
    read_options.readahead_granules = 0;
    read_path_ =
        std::make_unique<ReadPath>(read_options, buffers_.get(), pool_.get(),
                                   &cache_->stats(), &cache_->tracer());
    write_path_ =
        std::make_unique<WritePath>(18, buffers_.get(), &cache_->stats());
    context_.origin = origin_.get();
    context_.volume = volume_.get();
    context_.read_path = read_path_.get();
    context_.write_path = write_path_.get();
    context_.origin_pool = pool_.get();
    context_.check_identity = true;
    context_.aux_of = AuxOf;
    struct stat st = OriginStat();
    file_ = std::make_unique<NetfsFile>(&context_, st.st_dev, st.st_ino);
  }
  void TearDown() override {
    file_.reset();
    pool_->Drain();
    cache_->dispatcher()->Drain();
    if (volume_ != nullptr) cache_->RelinquishVolume(volume_);
  }

  void WriteOrigin(const std::string& data) {
    std::ofstream(origin_tmp_.path() + "/file",
                  std::ios::binary | std::ios::trunc)
        << data;
  }
  std::string OriginBytes() {
    std::ifstream in(origin_tmp_.path() + "/file", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  struct stat OriginStat() {
    struct stat st {};
    EXPECT_EQ(::stat((origin_tmp_.path() + "/file").c_str(), &st), 0);
    return st;
  }
  NetfsFile::FetchFn Fetch() {
    return [this]() -> absl::StatusOr<struct stat> { return OriginStat(); };
  }

  // Opens the file as it stands on the origin now.
  absl::StatusOr<NetfsFile::Opened> Open(int flags = O_RDONLY) {
    NetfsFile::OpenRequest request;
    request.key = [] { return std::string("file"); };
    request.path = []() -> absl::StatusOr<std::string> { return "file"; };
    request.attr = OriginStat();
    request.flags = flags;
    if ((flags & O_ACCMODE) != O_RDONLY) {
      request.open_for_writing = [this, flags] {
        return origin_->OpenFile(Caller::Daemon(), "file",
                                 flags & (O_ACCMODE | O_TRUNC));
      };
    }
    return file_->Open(std::move(request));
  }
  // Reads [off, off + n) through `handle`; the reply is let go at once,
  // which stores what it fetched.
  absl::StatusOr<std::string> Read(NetfsFile::Handle& handle, uint64_t off,
                                   size_t n) {
    auto reply = file_->Read(handle, off, n);
    if (!reply.ok()) return reply.status();
    std::string out;
    for (const iovec& v : (*reply)->iov()) {
      out.append(static_cast<const char*>(v.iov_base), v.iov_len);
    }
    reply->reset();
    cache_->dispatcher()->Drain();
    return out;
  }
  absl::StatusOr<std::string> ReadAll(NetfsFile::Handle& handle) {
    std::string out;
    for (uint64_t off = 0;; off += 128 * 1024) {
      absl::StatusOr<std::string> piece = Read(handle, off, 128 * 1024);
      if (!piece.ok()) return piece.status();
      if (piece->empty()) return out;
      out += *piece;
    }
  }
  void Release(NetfsFile::Opened& opened) {
    file_->Release(std::move(opened.handle), Fetch());
    pool_->Drain();
    cache_->dispatcher()->Drain();
  }

  TempDir origin_tmp_;
  TempDir cache_tmp_;
  std::string content_;
  std::unique_ptr<PosixOrigin> posix_;
  std::unique_ptr<FaultInjectionOrigin> origin_;
  std::unique_ptr<Cache> cache_;
  std::shared_ptr<Volume> volume_;
  std::unique_ptr<BufferPool> buffers_;
  std::unique_ptr<Dispatcher> pool_;
  std::unique_ptr<ReadPath> read_path_;
  std::unique_ptr<WritePath> write_path_;
  NetfsContext context_;
  std::unique_ptr<NetfsFile> file_;
};

TEST_F(NetfsFileTest, ASecondOpenReadsEveryByteFromTheCache) {
  auto first = Open();
  ASSERT_OK(first);
  EXPECT_FALSE(first->changed);
  auto bytes = ReadAll(*first->handle);
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, content_);
  EXPECT_GE(origin_->calls(Kind::kRead), 4u);
  Release(*first);

  const uint64_t reads = origin_->calls(Kind::kRead);
  auto second = Open();
  ASSERT_OK(second);
  EXPECT_TRUE(second->keep_cache);
  EXPECT_FALSE(second->changed);
  auto again = ReadAll(*second->handle);
  ASSERT_OK(again);
  EXPECT_EQ(*again, content_);
  EXPECT_EQ(origin_->calls(Kind::kRead), reads);
  Release(*second);
}

TEST_F(NetfsFileTest, AFileChangedOnTheOriginIsReadAfresh) {
  auto first = Open();
  ASSERT_OK(first);
  ASSERT_OK(ReadAll(*first->handle));
  Release(*first);
  // Same size, other bytes and a later mtime: the aux data differs.
  std::string changed = RandomBytes(content_.size(), 8);
  WriteOrigin(changed);
  struct timespec later[2] = {{0, UTIME_OMIT},
                              {OriginStat().st_mtim.tv_sec + 5, 0}};
  ASSERT_EQ(
      ::utimensat(AT_FDCWD, (origin_tmp_.path() + "/file").c_str(), later, 0),
      0);
  auto second = Open();
  ASSERT_OK(second);
  EXPECT_TRUE(second->changed);
  EXPECT_FALSE(second->keep_cache);
  auto bytes = ReadAll(*second->handle);
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, changed);
  Release(*second);
}

TEST_F(NetfsFileTest, AWriteTheOriginRefusesChangesNothingCached) {
  auto opened = Open(O_RDWR);
  ASSERT_OK(opened);
  ASSERT_OK(ReadAll(*opened->handle));
  const std::string patch(1000, 'x');
  origin_->FailNext(Kind::kWrite, ENOSPC);
  absl::StatusOr<size_t> refused =
      file_->Write(*opened->handle, patch.data(), patch.size(), 100, [] {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(StatusToErrno(refused.status()), ENOSPC);
  EXPECT_EQ(OriginBytes(), content_);
  const uint64_t reads = origin_->calls(Kind::kRead);
  auto bytes = ReadAll(*opened->handle);
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, content_);
  EXPECT_EQ(origin_->calls(Kind::kRead), reads);
  Release(*opened);
}

TEST_F(NetfsFileTest, AnAcceptedWriteReachesTheOriginAndTheCache) {
  auto opened = Open(O_RDWR);
  ASSERT_OK(opened);
  ASSERT_OK(ReadAll(*opened->handle));
  const std::string patch(1000, 'x');
  int changes = 0;
  absl::StatusOr<size_t> written =
      file_->Write(*opened->handle, patch.data(), patch.size(), kGranule - 10,
                   [&] { ++changes; });
  ASSERT_OK(written);
  EXPECT_EQ(*written, patch.size());
  EXPECT_EQ(changes, 1);
  std::string expected = content_;
  expected.replace(kGranule - 10, patch.size(), patch);
  EXPECT_EQ(OriginBytes(), expected);
  // The cached granules were patched: no origin read to see the write.
  const uint64_t reads = origin_->calls(Kind::kRead);
  auto bytes = ReadAll(*opened->handle);
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, expected);
  EXPECT_EQ(origin_->calls(Kind::kRead), reads);
  Release(*opened);
  // The release adopted the attributes the write gave the file: the next
  // open keeps the data.
  auto again = Open();
  ASSERT_OK(again);
  EXPECT_FALSE(again->changed);
  auto reread = ReadAll(*again->handle);
  ASSERT_OK(reread);
  EXPECT_EQ(*reread, expected);
  EXPECT_EQ(origin_->calls(Kind::kRead), reads);
  Release(*again);
}

TEST_F(NetfsFileTest, TruncateShortensWhatIsServed) {
  auto opened = Open(O_RDWR);
  ASSERT_OK(opened);
  ASSERT_OK(ReadAll(*opened->handle));
  OriginFile* writable = opened->handle->writable();
  ASSERT_NE(writable, nullptr);
  ASSERT_OK(file_->Truncate([&] { return writable->Truncate(kGranule + 5); },
                            Caller::Daemon(), [] { return "file"; }, Fetch(),
                            kGranule + 5));
  EXPECT_EQ(opened->handle->size(), kGranule + 5);
  auto bytes = ReadAll(*opened->handle);
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, content_.substr(0, kGranule + 5));
  Release(*opened);
}

TEST_F(NetfsFileTest, AFlushThatLosesWritesDropsTheCachedData) {
  auto opened = Open(O_RDWR);
  ASSERT_OK(opened);
  ASSERT_OK(ReadAll(*opened->handle));
  origin_->FailNext(Kind::kOther, EIO);
  absl::Status flushed = file_->Flush(*opened->handle);
  ASSERT_FALSE(flushed.ok());
  EXPECT_EQ(StatusToErrno(flushed), EIO);
  // Nothing the cache holds may be trusted: it is read from the origin.
  const uint64_t reads = origin_->calls(Kind::kRead);
  auto bytes = ReadAll(*opened->handle);
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, content_);
  EXPECT_GT(origin_->calls(Kind::kRead), reads);
  Release(*opened);
}

TEST_F(NetfsFileTest, CachedDataIsServedWhileTheOriginIsGone) {
  auto opened = Open();
  ASSERT_OK(opened);
  ASSERT_OK(ReadAll(*opened->handle));
  origin_->Disconnect();
  auto bytes = ReadAll(*opened->handle);
  origin_->Reconnect();
  ASSERT_OK(bytes);
  EXPECT_EQ(*bytes, content_);
  Release(*opened);
}

TEST_F(NetfsFileTest, AnUncachedReadFailsWithTheOriginsError) {
  auto opened = Open();
  ASSERT_OK(opened);
  origin_->Disconnect();
  auto bytes = Read(*opened->handle, 0, 4096);
  origin_->Reconnect();
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(StatusToErrno(bytes.status()), ENOTCONN);
  Release(*opened);
}

}  // namespace
}  // namespace cachefs::testing
