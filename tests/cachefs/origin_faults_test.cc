// The read and write paths of CacheFs against an origin that fails, stalls
// or goes away (FaultInjectionOrigin over a real directory): an origin
// error reaches the caller as its errno, never as wrong or lost bytes, and
// nothing it did not deliver is cached.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cachefs/cache_fs.h"
#include "cookie/cache.h"
#include "io/env.h"
#include "io/errno_status.h"
#include "netfs/fault_injection_origin.h"
#include "netfs/posix_origin.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

using Kind = FaultInjectionOrigin::Kind;

constexpr uint64_t kGranule = 256 * 1024;

class OriginFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    content_ = RandomBytes(4 * kGranule + 99, 1);
    std::ofstream(origin_tmp_.path() + "/file", std::ios::binary) << content_;
    auto posix = PosixOrigin::Open(origin_tmp_.path());
    ASSERT_OK(posix);
    posix_ = *std::move(posix);
    origin_ = std::make_unique<FaultInjectionOrigin>(posix_.get());
  }
  void Mount(uint32_t readahead = 0, uint64_t reorder_bytes = 4 << 20) {
    CacheOptions options;
    options.directory = cache_tmp_.path();
    auto cache = Cache::Open(Env::Default(), options);
    ASSERT_OK(cache);
    cache_ = *std::move(cache);
    auto volume = cache_->AcquireVolume("faults", "");
    ASSERT_OK(volume);
    CacheFsOptions fs_options;
    fs_options.readahead_granules = readahead;
    fs_options.reorder_bytes = reorder_bytes;
    // What reaches the origin, request by request (-o offline=never);
    // serving while the origin is down has tests of its own.
    fs_options.offline = offline_;
    fs_options.cto = cto_;
    fs_options.origin_timeout = origin_timeout_;
    auto fs = CacheFs::Create(fs_options, origin_.get(), cache_.get(),
                              *volume);
    ASSERT_OK(fs);
    fs_ = *std::move(fs);
  }
  // Opens `name` and reads it whole in `chunk` pieces; the first error
  // ends it.
  absl::StatusOr<std::string> ReadAll(const std::string& name,
                                      size_t chunk = 128 * 1024) {
    auto entry = fs_->Lookup(1, name);
    if (!entry.ok()) return entry.status();
    auto opened = fs_->Open(entry->ino, O_RDONLY);
    if (!opened.ok()) {
      fs_->Forget(entry->ino, 1);
      return opened.status();
    }
    std::string out;
    absl::Status status;
    for (uint64_t off = 0;; off += chunk) {
      auto reply = fs_->Read(opened->fh, off, chunk);
      if (!reply.ok()) {
        status = reply.status();
        break;
      }
      if ((*reply)->size() == 0) break;
      for (const iovec& v : (*reply)->iov()) {
        out.append(static_cast<const char*>(v.iov_base), v.iov_len);
      }
    }
    fs_->Release(opened->fh);
    fs_->Forget(entry->ino, 1);
    cache_->dispatcher()->Drain();
    if (!status.ok()) return status;
    return out;
  }
  // The names (with sizes) of directory `ino` as the filesystem lists
  // it, sorted; plus: with attributes, as readdirplus.
  absl::StatusOr<std::string> ListIno(uint64_t ino, bool plus) {
    absl::StatusOr<uint64_t> fh = fs_->OpenDir(ino);
    if (!fh.ok()) return fh.status();
    std::vector<std::string> names;
    std::vector<uint64_t> looked_up;
    absl::Status read = fs_->ReadDir(
        ino, *fh, 0, plus,
        [&](const std::string& name, const struct stat& attr, uint64_t,
            const CacheFs::Entry* e) {
          if (name != "." && name != "..") {
            names.push_back(plus ? absl::StrCat(name, ":", attr.st_size)
                                 : name);
          }
          if (e != nullptr) looked_up.push_back(e->ino);
          return true;
        });
    fs_->ReleaseDir(*fh);
    for (uint64_t looked : looked_up) fs_->Forget(looked, 1);
    if (!read.ok()) return read;
    std::sort(names.begin(), names.end());
    return absl::StrJoin(names, " ");
  }
  // Looks `dir` up below the root and lists it plus.
  absl::StatusOr<std::string> List(const std::string& dir) {
    auto entry = fs_->Lookup(1, dir);
    if (!entry.ok()) return entry.status();
    absl::StatusOr<std::string> names = ListIno(entry->ino, /*plus=*/true);
    fs_->Forget(entry->ino, 1);
    return names;
  }
  std::string OriginBytes() {
    std::ifstream in(origin_tmp_.path() + "/file", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  TempDir origin_tmp_;
  TempDir cache_tmp_;
  std::string content_;
  bool offline_ = false;  // -o offline=auto when set before Mount
  double origin_timeout_ = 30;
  bool cto_ = true;  // false: -o nocto
  std::unique_ptr<PosixOrigin> posix_;
  std::unique_ptr<FaultInjectionOrigin> origin_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CacheFs> fs_;
};

TEST_F(OriginFaultsTest, AFailedOriginReadFailsTheReadAndCachesNothingWrong) {
  Mount();
  origin_->FailNext(Kind::kRead, EIO);
  absl::StatusOr<std::string> failed = ReadAll("file");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(StatusToErrno(failed.status()), EIO) << failed.status();
  // The next read fetches what failed and gets every byte right; a third
  // one needs the origin no more.
  absl::StatusOr<std::string> again = ReadAll("file");
  ASSERT_OK(again);
  EXPECT_EQ(*again, content_);
  const uint64_t reads = origin_->calls(Kind::kRead);
  absl::StatusOr<std::string> cached = ReadAll("file");
  ASSERT_OK(cached);
  EXPECT_EQ(*cached, content_);
  EXPECT_EQ(origin_->calls(Kind::kRead), reads);
}

TEST_F(OriginFaultsTest, AFailedOriginWriteIsTheWritersErrorAndNotCached) {
  Mount();
  ASSERT_OK(ReadAll("file"));  // the cache holds the file
  auto entry = fs_->Lookup(1, "file");
  ASSERT_OK(entry);
  auto opened = fs_->Open(entry->ino, O_RDWR);
  ASSERT_OK(opened);
  const std::string patch(1000, 'x');
  origin_->FailNext(Kind::kWrite, ENOSPC);
  absl::StatusOr<size_t> written =
      fs_->Write(opened->fh, patch.data(), patch.size(), kGranule + 5);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(StatusToErrno(written.status()), ENOSPC);
  // Neither the origin nor the cache took the bytes the origin refused.
  auto reply = fs_->Read(opened->fh, kGranule, 4096);
  ASSERT_OK(reply);
  std::string back;
  for (const iovec& v : (*reply)->iov()) {
    back.append(static_cast<const char*>(v.iov_base), v.iov_len);
  }
  EXPECT_EQ(back, content_.substr(kGranule, 4096));
  reply->reset();
  EXPECT_EQ(OriginBytes(), content_);
  // The same write once the origin takes it: through to both.
  written = fs_->Write(opened->fh, patch.data(), patch.size(), kGranule + 5);
  ASSERT_OK(written);
  fs_->Release(opened->fh);
  fs_->Forget(entry->ino, 1);
  std::string want = content_;
  want.replace(kGranule + 5, patch.size(), patch);
  EXPECT_EQ(OriginBytes(), want);
  absl::StatusOr<std::string> read = ReadAll("file");
  ASSERT_OK(read);
  EXPECT_EQ(*read, want);
}

TEST_F(OriginFaultsTest, ADisconnectedOriginFailsWhatNeedsItUntilItIsBack) {
  Mount();
  origin_->Disconnect();
  absl::StatusOr<std::string> failed = ReadAll("file");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(StatusToErrno(failed.status()), ENOTCONN) << failed.status();
  origin_->Reconnect();
  absl::StatusOr<std::string> back = ReadAll("file");
  ASSERT_OK(back);
  EXPECT_EQ(*back, content_);
}

TEST_F(OriginFaultsTest, WhileTheOriginIsDownWhatIsCachedIsServed) {
  std::ofstream(origin_tmp_.path() + "/other", std::ios::binary) << "other";
  offline_ = true;
  Mount();
  ASSERT_OK(ReadAll("file"));            // cached whole
  auto other = fs_->Lookup(1, "other");  // known, never read
  ASSERT_OK(other);
  fs_->Forget(other->ino, 1);
  origin_->Disconnect();

  absl::StatusOr<std::string> cached = ReadAll("file");
  ASSERT_OK(cached);
  EXPECT_EQ(*cached, content_);
  EXPECT_FALSE(fs_->origin_health().up());
  // Data never fetched, and a name never seen: EIO at once, not the
  // origin's error, and nothing about them is cached as gone.
  absl::StatusOr<std::string> uncached = ReadAll("other");
  ASSERT_FALSE(uncached.ok());
  EXPECT_EQ(StatusToErrno(uncached.status()), EIO) << uncached.status();
  auto unknown = fs_->Lookup(1, "never-seen");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(StatusToErrno(unknown.status()), EIO) << unknown.status();
  // Every change is refused, and the origin is not asked.
  const uint64_t changes = origin_->calls(Kind::kChange);
  auto made = fs_->MakeDir(1, "dir", 0755);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(StatusToErrno(made.status()), EROFS);
  EXPECT_EQ(origin_->calls(Kind::kChange), changes);
  CacheStats& stats = fs_->stats();
  EXPECT_EQ(stats.origin_state_changes.load(), 1u);
  EXPECT_GT(stats.offline_reads.load(), 0u);
  EXPECT_GE(stats.offline_refusals.load(), 3u);
  EXPECT_GT(stats.offline_lookups.load(), 0u);

  // The probe notices the origin back; then the rest is fetched.
  origin_->Reconnect();
  ASSERT_TRUE(
      Eventually([&] { return fs_->origin_health().up(); }, absl::Seconds(10)));
  EXPECT_EQ(stats.origin_state_changes.load(), 2u);
  absl::StatusOr<std::string> fetched = ReadAll("other");
  ASSERT_OK(fetched);
  EXPECT_EQ(*fetched, "other");
}

TEST_F(OriginFaultsTest, WhileTheOriginIsDownListingsAndLinksSeenAreServed) {
  ASSERT_EQ(mkdir((origin_tmp_.path() + "/seen").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((origin_tmp_.path() + "/unseen").c_str(), 0755), 0);
  std::ofstream(origin_tmp_.path() + "/seen/one") << "1";
  std::ofstream(origin_tmp_.path() + "/seen/two") << "22";
  ASSERT_EQ(symlink("seen/one", (origin_tmp_.path() + "/link").c_str()), 0);
  offline_ = true;
  Mount();
  auto list = [&](const std::string& dir) { return List(dir); };
  auto seen = list("seen");
  ASSERT_OK(seen);
  EXPECT_EQ(*seen, "one:1 two:2");
  auto link = fs_->Lookup(1, "link");
  ASSERT_OK(link);
  ASSERT_OK(fs_->ReadLink(link->ino));
  auto unseen = fs_->Lookup(1, "unseen");  // looked up, never listed
  ASSERT_OK(unseen);
  fs_->Forget(unseen->ino, 1);
  origin_->Disconnect();

  auto offline = list("seen");
  ASSERT_OK(offline);
  EXPECT_EQ(*offline, "one:1 two:2");
  auto target = fs_->ReadLink(link->ino);
  ASSERT_OK(target);
  EXPECT_EQ(*target, "seen/one");
  auto never = list("unseen");
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(StatusToErrno(never.status()), EIO) << never.status();
  fs_->Forget(link->ino, 1);
  origin_->Reconnect();
}

TEST_F(OriginFaultsTest,
       WithNoctoAListingSeenBeforeIsAnsweredAtOnceAndReadAgain) {
  ASSERT_EQ(mkdir((origin_tmp_.path() + "/dir").c_str(), 0755), 0);
  std::ofstream(origin_tmp_.path() + "/dir/a") << "a";
  std::ofstream(origin_tmp_.path() + "/dir/b") << "b";
  cto_ = false;
  Mount();
  auto dir = fs_->Lookup(1, "dir");
  ASSERT_OK(dir);
  auto first = ListIno(dir->ino, /*plus=*/false);
  ASSERT_OK(first);
  EXPECT_EQ(*first, "a b");
  // Made on the server; then the server stops answering.
  std::ofstream(origin_tmp_.path() + "/dir/c") << "c";
  // Declared first, so that a failure resumes the origin before it waits
  // for the listing.
  std::future<absl::StatusOr<std::string>> at_once;
  origin_->Hang();
  absl::Cleanup resume = [this] { origin_->Resume(); };
  at_once = std::async(std::launch::async,
                       [&] { return ListIno(dir->ino, /*plus=*/false); });
  ASSERT_EQ(at_once.wait_for(std::chrono::seconds(10)),
            std::future_status::ready)
      << "the listing waited for the stopped origin";
  absl::StatusOr<std::string> answered = at_once.get();
  ASSERT_OK(answered);
  EXPECT_EQ(*answered, "a b");  // as last read
  EXPECT_EQ(cache_->stats().listings_answered_at_once.load(), 1u);
  std::move(resume).Invoke();
  // Read again behind that reply: a later listing shows the new name.
  EXPECT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::string> names = ListIno(dir->ino, /*plus=*/false);
        return names.ok() && *names == "a b c";
      },
      absl::Seconds(10), absl::Milliseconds(20)));
  // A change made through cachefs is listed at once.
  auto made = fs_->Create(dir->ino, "d", 0644, O_WRONLY);
  ASSERT_OK(made);
  fs_->Release(made->opened.fh);
  fs_->Forget(made->entry.ino, 1);
  auto after = ListIno(dir->ino, /*plus=*/false);
  ASSERT_OK(after);
  EXPECT_EQ(*after, "a b c d");
  fs_->Forget(dir->ino, 1);
}

TEST_F(OriginFaultsTest, WithCloseToOpenEveryListingAsksTheOrigin) {
  ASSERT_EQ(mkdir((origin_tmp_.path() + "/dir").c_str(), 0755), 0);
  std::ofstream(origin_tmp_.path() + "/dir/a") << "a";
  Mount();
  auto dir = fs_->Lookup(1, "dir");
  ASSERT_OK(dir);
  ASSERT_OK(ListIno(dir->ino, /*plus=*/false));
  std::ofstream(origin_tmp_.path() + "/dir/b") << "b";
  auto again = ListIno(dir->ino, /*plus=*/false);
  ASSERT_OK(again);
  EXPECT_EQ(*again, "a b");
  EXPECT_EQ(cache_->stats().listings_answered_at_once.load(), 0u);
  fs_->Forget(dir->ino, 1);
}

TEST_F(OriginFaultsTest, AHungOriginCostsOneTimeoutThenCachedFilesAreServed) {
  offline_ = true;
  origin_timeout_ = 0.5;
  origin_->SetCallsMayHang(true);
  Mount();
  ASSERT_OK(ReadAll("file"));
  // As a stopped server: every call blocks until it is resumed.
  origin_->Hang();
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> cached = ReadAll("file");
  const absl::Duration first = absl::Now() - start;
  ASSERT_OK(cached);
  EXPECT_EQ(*cached, content_);
  EXPECT_FALSE(fs_->origin_health().up());
  EXPECT_EQ(fs_->stats().origin_timeouts.load(), 1u);
  // One timeout, not one per request: the origin is not asked again.
  EXPECT_LT(first, absl::Seconds(2.5));
  const absl::Time again = absl::Now();
  ASSERT_OK(ReadAll("file"));
  EXPECT_LT(absl::Now() - again, absl::Seconds(0.4));
  origin_->Resume();
  ASSERT_TRUE(
      Eventually([&] { return fs_->origin_health().up(); }, absl::Seconds(10)));
  // The calls given up on return once the server does.
  EXPECT_TRUE(Eventually([&] { return fs_->stuck_origin_calls() == 0; }));
}

TEST_F(OriginFaultsTest, AnOpenFileWhoseOriginGoesAwayFailsItsUncachedReads) {
  Mount();
  auto entry = fs_->Lookup(1, "file");
  ASSERT_OK(entry);
  auto opened = fs_->Open(entry->ino, O_RDONLY);
  ASSERT_OK(opened);
  auto first = fs_->Read(opened->fh, 0, 4096);
  ASSERT_OK(first);
  first->reset();
  origin_->Disconnect();
  // A granule never fetched: an error, not zeros.
  auto far = fs_->Read(opened->fh, 3 * kGranule, 4096);
  EXPECT_FALSE(far.ok());
  if (!far.ok()) {
    EXPECT_EQ(StatusToErrno(far.status()), ENOTCONN);
  }
  origin_->Reconnect();
  far = fs_->Read(opened->fh, 3 * kGranule, 4096);
  ASSERT_OK(far);
  std::string got;
  for (const iovec& v : (*far)->iov()) {
    got.append(static_cast<const char*>(v.iov_base), v.iov_len);
  }
  EXPECT_EQ(got, content_.substr(3 * kGranule, 4096));
  // A reply holds its granules' fills until it goes, as one sent to the
  // kernel does; the last release waits for them.
  far->reset();
  fs_->Release(opened->fh);
  fs_->Forget(entry->ino, 1);
}

TEST_F(OriginFaultsTest, ASlowOriginIsReadWithSeveralGranulesInFlight) {
  Mount(/*readahead=*/8);
  origin_->SetLatency(absl::Milliseconds(20));
  absl::StatusOr<std::string> read = ReadAll("file", 1 << 20);
  ASSERT_OK(read);
  EXPECT_EQ(*read, content_);
  EXPECT_GE(origin_->max_reads_in_flight(), 2);
}

// The kernel's read-ahead sends several requests of one sequential reader
// at once, and they arrive in any order: reads inside the window fetched
// ahead keep it moving. Reading to 7 MiB of 8, a pair of 1 MiB requests
// at a time, each pair in reverse, gets the last granules (never read)
// fetched ahead too.
TEST_F(OriginFaultsTest, ReadsArrivingOutOfOrderKeepTheReadAheadGoing) {
  constexpr uint64_t kMiB = 1 << 20;
  const std::string big = RandomBytes(8 * kMiB, 7);
  std::ofstream(origin_tmp_.path() + "/big", std::ios::binary) << big;
  Mount(/*readahead=*/8);
  auto entry = fs_->Lookup(1, "big");
  ASSERT_OK(entry);
  auto opened = fs_->Open(entry->ino, O_RDONLY);
  ASSERT_OK(opened);
  auto read = [&](uint64_t off) {
    auto reply = fs_->Read(opened->fh, off, kMiB);
    ASSERT_OK(reply);
    std::string got;
    for (const iovec& v : (*reply)->iov()) {
      got.append(static_cast<const char*>(v.iov_base), v.iov_len);
    }
    EXPECT_EQ(got, big.substr(off, kMiB)) << "at " << off;
  };
  read(0);
  for (uint64_t mib = 1; mib < 7; mib += 2) {
    read((mib + 1) * kMiB);
    read(mib * kMiB);
  }
  EXPECT_TRUE(Eventually([&] {
    return fs_->stats().bytes_read_from_origin.load() == big.size();
  })) << fs_->stats().bytes_read_from_origin.load() << " bytes fetched of "
      << big.size();
  fs_->Release(opened->fh);
  fs_->Forget(entry->ino, 1);
  cache_->dispatcher()->Drain();
}

// A reader that skips ahead farther than the kernel's requests span is
// not a sequential one, even inside the window fetched ahead for it: the
// read-ahead stops rather than fetch everything it skips.
TEST_F(OriginFaultsTest, AReaderThatSkipsAheadGetsNoMoreReadAhead) {
  constexpr uint64_t kMiB = 1 << 20;
  const std::string big = RandomBytes(16 * kMiB, 8);
  std::ofstream(origin_tmp_.path() + "/big", std::ios::binary) << big;
  Mount(/*readahead=*/32, /*reorder_bytes=*/4 * kMiB);
  auto entry = fs_->Lookup(1, "big");
  ASSERT_OK(entry);
  auto opened = fs_->Open(entry->ino, O_RDONLY);
  ASSERT_OK(opened);
  auto& fetched = fs_->stats().bytes_read_from_origin;
  // From the start: a sequential reader, granules 0 to 32 fetched.
  ASSERT_OK(fs_->Read(opened->fh, 0, 4096).status());
  ASSERT_TRUE(Eventually([&] { return fetched.load() == 33 * kGranule; }))
      << fetched.load();
  // Then 4 KiB every 5 MiB: 5 MiB is inside the window, 10 and 15 MiB
  // are not, and each of the two fetches only its own granule.
  for (uint64_t mib : {5, 10, 15}) {
    auto reply = fs_->Read(opened->fh, mib * kMiB, 4096);
    ASSERT_OK(reply);
  }
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(fetched.load(), 35 * kGranule);
  fs_->Release(opened->fh);
  fs_->Forget(entry->ino, 1);
  cache_->dispatcher()->Drain();
}

}  // namespace
}  // namespace cachefs::testing
