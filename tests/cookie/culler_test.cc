// The daemon's culler over a real cache directory: the index built at
// start, admission at the limit, culling to a target that passes over
// objects in use, and the accounting it keeps from the cache's reports.

#include "cull/culler.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cull/index_snapshot.h"
#include "io/log.h"
#include "tests/cookie/cookie_test_util.h"

namespace cachefs::testing {
namespace {

class CullerTest : public CacheTest {
 protected:
  // Makes `n` objects of `granules` stored granules each, all relinquished.
  void MakeObjects(int n, uint64_t granules) {
    for (int i = 0; i < n; ++i) {
      auto cookie = volume_->AcquireCookie(absl::StrCat("f", i), "aux",
                                           granules * kGranule);
      AlignedBuffer buf(granules * kGranule);
      buf.Fill(0, i);
      ASSERT_OK(WriteSync(*cookie, 0, buf));
      Relinquish(cookie);
    }
  }
  // Starts the culler under test (after stopping the one before, which
  // leaves its index snapshot). With `scan`, without the snapshot.
  void StartCuller(const CullLimits& limits = {},
                   std::string_view policy = "lru", bool scan = false) {
    culler_.reset();
    if (scan) ASSERT_OK(volume_->RemoveFile(kCullIndexSnapshot));
    auto culler = Culler::Start(cache_.get(), volume_, limits, policy);
    ASSERT_OK(culler);
    culler_ = *std::move(culler);
  }
  void TearDown() override {
    culler_.reset();
    CacheTest::TearDown();
  }
  std::unique_ptr<Culler> culler_;
};

TEST_F(CullerTest, TheIndexAtStartHoldsEveryObjectWithItsBlocks) {
  OpenCache();
  MakeObjects(5, 2);
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  EXPECT_EQ(culler_->indexed_objects(), 5u);
  // Allocated blocks: the data, and nothing for the holes.
  EXPECT_GE(culler_->stored_bytes(), 10 * kGranule);
  EXPECT_LT(culler_->stored_bytes(), 11 * kGranule);
}

TEST_F(CullerTest, WritesPastTheLimitAreNotCachedAndCounted) {
  OpenCache();
  CullLimits limits;
  limits.cache_size = 3 * kGranule;
  ASSERT_NO_FATAL_FAILURE(StartCuller(limits));
  auto cookie = volume_->AcquireCookie("big", "aux", 8 * kGranule);
  AlignedBuffer two(2 * kGranule);
  two.Fill(0, 1);
  ASSERT_OK(WriteSync(*cookie, 0, two));
  // Six granules at once can never fit under a limit of three: refused
  // whole, the reader's data simply not cached.
  AlignedBuffer six(6 * kGranule);
  six.Fill(2 * kGranule, 1);
  EXPECT_FALSE(WriteSync(*cookie, 2 * kGranule, six).ok());
  EXPECT_LE(culler_->stored_bytes(), limits.cache_size);
  EXPECT_EQ(Stat(&CacheStats::nospace), 1u);
  EXPECT_FALSE(cookie->PrepareRead(2 * kGranule, kGranule).FullyCached());
  Relinquish(cookie);
}

TEST_F(CullerTest, WritesAdmittedTogetherStayWithinTheLimit) {
  OpenCache();
  CullLimits limits;
  limits.cache_size = 4 * kGranule;
  ASSERT_NO_FATAL_FAILURE(StartCuller(limits));
  TempDir logs;
  LogOptions to_file;
  to_file.sink = LogOptions::Sink::kFile;
  to_file.file = logs.path() + "/cachefs.log";
  ASSERT_OK(ConfigureLog(to_file));
  // Admitted, not yet landed: nothing is stored, but each counts.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(culler_->AdmitWrite(kGranule)) << i;
  EXPECT_FALSE(culler_->AdmitWrite(kGranule));
  EXPECT_FALSE(culler_->AdmitWrite(kGranule));
  // Said once, not per refused write.
  std::stringstream read;
  read << std::ifstream(to_file.file).rdbuf();
  const std::string log = read.str();
  ASSERT_OK(ConfigureLog(LogOptions{}));
  const size_t said = log.find("culling is not keeping up");
  EXPECT_NE(said, std::string::npos) << log;
  EXPECT_EQ(log.find("culling is not keeping up", said + 1), std::string::npos)
      << log;
  EXPECT_FALSE(culler_->HasRoom(kGranule));
  // One lands (and is charged elsewhere) or fails: room again.
  culler_->WriteSettled(kGranule);
  EXPECT_TRUE(culler_->HasRoom(kGranule));
  EXPECT_TRUE(culler_->AdmitWrite(kGranule));
  for (int i = 0; i < 4; ++i) culler_->WriteSettled(kGranule);
}

TEST_F(CullerTest, CullToPassesOverObjectsInUseAndFreesTheRest) {
  OpenCache();
  MakeObjects(6, 1);
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  // f0 is the oldest, so the first victim, but it is open.
  auto held = volume_->AcquireCookie("f0", "aux", kGranule);
  held->WaitReady();
  // Down to 2.5 of the 6 granules: the open one is within its share (half
  // of that), so whole closed ones go, oldest first, passing over f0.
  Culler::CullResult result = culler_->CullTo(5 * kGranule / 2);
  EXPECT_EQ(result.objects, 4u);
  EXPECT_EQ(result.granules, 0u);
  EXPECT_EQ(Stat(&CacheStats::culls), 4u);
  EXPECT_EQ(culler_->indexed_objects(), 2u);
  // The open one still has its data.
  EXPECT_TRUE(held->PrepareRead(0, kGranule).FullyCached());
  Relinquish(held);
  // The culled ones are gone: a new cookie finds nothing.
  int still_cached = 0;
  for (int i = 1; i < 6; ++i) {
    auto again = volume_->AcquireCookie(absl::StrCat("f", i), "aux", kGranule);
    if (again->PrepareRead(0, kGranule).FullyCached()) ++still_cached;
    Relinquish(again);
  }
  EXPECT_EQ(still_cached, 1);
}

// Keeps the objects of the keys it was given (a pin's answer).
class KeepKeys : public CullVeto {
 public:
  KeepKeys(Cache* cache, std::string volume_key,
           std::vector<std::string> keys) {
    for (const std::string& key : keys) {
      kept_.push_back(cache->HashKey(volume_key, key));
    }
  }
  bool MayCull(const std::string&, uint64_t hash) override {
    ++asked_;
    return std::find(kept_.begin(), kept_.end(), hash) == kept_.end();
  }
  int asked_ = 0;

 private:
  std::vector<uint64_t> kept_;
};

TEST_F(CullerTest, AVetoKeepsObjectsWholeWhileOthersGo) {
  OpenCache();
  MakeObjects(6, 1);
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  // f0 and f1 are the oldest, so the first victims; kept by the veto.
  KeepKeys keep(cache_.get(), volume_->key(), {"f0", "f1"});
  cache_->AddCullVeto(&keep);
  Culler::CullResult result = culler_->CullTo(0);
  EXPECT_EQ(result.objects, 4u);
  EXPECT_GT(keep.asked_, 0);
  // An open object the veto keeps gives up no granules either.
  auto open = volume_->AcquireCookie("f0", "aux", kGranule);
  open->WaitReady();
  result = culler_->CullTo(0);
  EXPECT_EQ(result.objects + result.granules, 0u);
  EXPECT_TRUE(open->PrepareRead(0, kGranule).FullyCached());
  Relinquish(open);
  auto other = volume_->AcquireCookie("f1", "aux", kGranule);
  EXPECT_TRUE(other->PrepareRead(0, kGranule).FullyCached());
  Relinquish(other);
  // Without the veto they go too.
  cache_->RemoveCullVeto(&keep);
  result = culler_->CullTo(0);
  EXPECT_EQ(result.objects, 2u);
  EXPECT_EQ(culler_->indexed_objects(), 0u);
}

TEST_F(CullerTest, TheThreadCullsFromTheCullMarkDownPastTheRunMark) {
  OpenCache();
  MakeObjects(20, 1);  // 20 granules stored
  CullLimits limits;
  limits.cache_size = 16 * kGranule;
  ASSERT_NO_FATAL_FAILURE(StartCuller(limits, "arc"));
  // Over the cull mark at start: the thread culls within its period, down
  // below the run mark (limit less brun - bstop = 7%), less a margin.
  const uint64_t run_mark = limits.cache_size - limits.cache_size / 100 * 7;
  Eventually([&] { return culler_->stored_bytes() <= run_mark; },
             absl::Seconds(10));
  EXPECT_LE(culler_->stored_bytes(), run_mark);
  EXPECT_GT(Stat(&CacheStats::cull_passes), 0u);
  EXPECT_GE(Stat(&CacheStats::culls), 5u);
}

TEST_F(CullerTest, RemovedAndReplacedObjectsLeaveTheCount) {
  OpenCache();
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  auto cookie = volume_->AcquireCookie("f", "aux", 2 * kGranule);
  AlignedBuffer buf(2 * kGranule);
  buf.Fill(0, 3);
  ASSERT_OK(WriteSync(*cookie, 0, buf));
  EXPECT_EQ(culler_->stored_bytes(), 2 * kGranule);
  // An invalidation replaces the object with an empty one.
  cookie->Invalidate("aux-2", 2 * kGranule);
  EXPECT_EQ(culler_->stored_bytes(), 0u);
  ASSERT_OK(WriteSync(*cookie, 0, buf));
  EXPECT_EQ(culler_->stored_bytes(), 2 * kGranule);
  Relinquish(cookie, /*retire=*/true);  // deleted with the origin file
  EXPECT_EQ(culler_->stored_bytes(), 0u);
  EXPECT_EQ(culler_->indexed_objects(), 0u);
}

TEST(CullLimitsTest, MarksMustBeOrdered) {
  CullLimits ok;
  EXPECT_OK(ok.Validate());
  CullLimits bad;
  bad.bcull = 2;  // below bstop
  EXPECT_FALSE(bad.Validate().ok());
  bad = CullLimits{};
  bad.frun = 100;
  EXPECT_FALSE(bad.Validate().ok());
  EXPECT_EQ(*ParseByteSize("64K"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("3g"), uint64_t{3} << 30);
  EXPECT_EQ(*ParseByteSize("1T"), uint64_t{1} << 40);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("12Q").ok());
  EXPECT_FALSE(ParseByteSize("99999999999999T").ok());
}

// Granules of an open object, as its map has them.
uint64_t PresentGranules(const Cookie& cookie) {
  return CookieInspector::ObjectOf(cookie)->MapSnapshot().granules_present();
}

TEST_F(CullerTest, AnOpenObjectPastItsShareGivesUpColdGranulesFirst) {
  OpenCache();
  MakeObjects(2, 1);  // closed, and the oldest: the policy's first victims
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  auto a = volume_->AcquireCookie("a", "aux", 12 * kGranule);
  auto b = volume_->AcquireCookie("b", "aux", 4 * kGranule);
  AlignedBuffer buf(12 * kGranule);
  buf.Fill(0, 9);
  ASSERT_OK(WriteSync(*a, 0, buf));
  AlignedBuffer small(4 * kGranule);
  small.Fill(0, 9);
  ASSERT_OK(WriteSync(*b, 0, small));
  // 18 granules stored; 7 must go. One open object may keep half of the
  // target (5.5 granules): a, past it, gives 7; b, within it, nothing.
  const uint64_t stored = culler_->stored_bytes();
  Culler::CullResult result = culler_->CullTo(stored - 7 * kGranule);
  EXPECT_EQ(result.objects, 0u);
  EXPECT_EQ(result.granules, 7u);
  EXPECT_EQ(Stat(&CacheStats::granules_culled), 7u);
  EXPECT_EQ(Stat(&CacheStats::culls), 0u);
  EXPECT_EQ(PresentGranules(*a), 5u);
  EXPECT_EQ(PresentGranules(*b), 4u);
  EXPECT_LE(culler_->stored_bytes(), stored - 7 * kGranule);
  // One more: a is within its share now (5), so a closed object goes.
  result = culler_->CullTo(stored - 8 * kGranule);
  EXPECT_EQ(result.granules, 0u);
  EXPECT_EQ(result.objects, 1u);
  EXPECT_EQ(PresentGranules(*a), 5u);
  Relinquish(a);
  Relinquish(b);
}

TEST_F(CullerTest, ObjectsOfEqualSizeShareTheExcess) {
  OpenCache();
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  auto a = volume_->AcquireCookie("a", "aux", 8 * kGranule);
  auto b = volume_->AcquireCookie("b", "aux", 8 * kGranule);
  AlignedBuffer buf(8 * kGranule);
  buf.Fill(0, 9);
  ASSERT_OK(WriteSync(*a, 0, buf));
  ASSERT_OK(WriteSync(*b, 0, buf));
  // 16 granules, target 12: both are past the share (6); 2 each.
  Culler::CullResult result = culler_->CullTo(12 * kGranule);
  EXPECT_EQ(result.granules, 4u);
  EXPECT_EQ(PresentGranules(*a), 6u);
  EXPECT_EQ(PresentGranules(*b), 6u);
  Relinquish(a);
  Relinquish(b);
}

TEST_F(CullerTest, ClosedObjectsGoWholeOnceOpenOnesAreWithinTheirShare) {
  OpenCache();
  MakeObjects(4, 1);
  CullLimits limits;
  limits.open_file_share = 100;
  ASSERT_NO_FATAL_FAILURE(StartCuller(limits));
  auto a = volume_->AcquireCookie("a", "aux", 4 * kGranule);
  AlignedBuffer buf(4 * kGranule);
  buf.Fill(0, 9);
  ASSERT_OK(WriteSync(*a, 0, buf));
  // Open objects may keep the whole target: closed ones go first.
  Culler::CullResult result =
      culler_->CullTo(culler_->stored_bytes() - 2 * kGranule);
  EXPECT_EQ(result.objects, 2u);
  EXPECT_EQ(result.granules, 0u);
  EXPECT_EQ(PresentGranules(*a), 4u);
  Relinquish(a);
}

TEST_F(CullerTest, AFileReadOpenPastTheLimitLeavesTheOthersCached) {
  OpenCache();
  MakeObjects(4, 1);
  CullLimits limits;
  limits.cache_size = 16 * kGranule;
  ASSERT_NO_FATAL_FAILURE(StartCuller(limits, "arc"));
  // 40 granules stored one by one through one open cookie, 2.5 times the
  // limit, with the culler thread running beside.
  auto big = volume_->AcquireCookie("big", "aux", 40 * kGranule);
  AlignedBuffer buf(kGranule);
  for (uint64_t g = 0; g < 40; ++g) {
    buf.Fill(g * kGranule, 4);
    (void)WriteSync(*big, g * kGranule, buf);
    EXPECT_LE(culler_->stored_bytes(), limits.cache_size);
    if (g % 4 == 3) absl::SleepFor(absl::Milliseconds(20));
  }
  Eventually([&] { return Stat(&CacheStats::granules_culled) > 0; },
             absl::Seconds(2), absl::Milliseconds(20));
  EXPECT_GT(Stat(&CacheStats::granules_culled), 0u);
  EXPECT_EQ(Stat(&CacheStats::culls), 0u);
  // The oldest granules went first.
  EXPECT_GT(PresentGranules(*big), 0u);
  EXPECT_FALSE(big->PrepareRead(0, kGranule).FullyCached());
  Relinquish(big);
  for (int i = 0; i < 4; ++i) {
    auto f = volume_->AcquireCookie(absl::StrCat("f", i), "aux", kGranule);
    EXPECT_TRUE(f->PrepareRead(0, kGranule).FullyCached()) << i;
    Relinquish(f);
  }
}

TEST_F(CullerTest, AWriteRefusedBelowTheCullMarkStillStartsAPass) {
  OpenCache();
  // 14.3 granules stored, under a limit of 15.2 whose cull mark (4% below,
  // 14.6) is less than a granule below it: the next granule does not fit,
  // yet nothing stored passes the mark.
  const uint64_t size = 14 * kGranule + 3 * kGranule / 10;
  auto old = volume_->AcquireCookie("old", "aux", size);
  AlignedBuffer buf((size + 4095) & ~uint64_t{4095});
  buf.Fill(0, 2);
  ASSERT_OK(WriteSync(*old, 0, buf));
  Relinquish(old);
  CullLimits limits;
  limits.cache_size = 15 * kGranule + kGranule / 5;
  ASSERT_NO_FATAL_FAILURE(StartCuller(limits));
  auto fresh = volume_->AcquireCookie("new", "aux", kGranule);
  AlignedBuffer one(kGranule);
  one.Fill(0, 3);
  EXPECT_FALSE(WriteSync(*fresh, 0, one).ok());
  // The refusal makes the thread cull: the write fits a moment later.
  EXPECT_TRUE(Eventually([&] { return WriteSync(*fresh, 0, one).ok(); },
                         absl::Seconds(2), absl::Milliseconds(20)));
  EXPECT_GT(Stat(&CacheStats::cull_passes), 0u);
  Relinquish(fresh);
}

TEST_F(CullerTest, TheCountFollowsTheBlocksAFileTakes) {
  OpenCache();
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  // A partial last granule takes only its blocks, as a restart's scan of
  // the files would count them.
  const uint64_t size = 2 * kGranule + 10000;
  const uint64_t blocks = 2 * kGranule + 12288;
  auto cookie = volume_->AcquireCookie("f", "aux", size);
  AlignedBuffer buf(blocks);
  buf.Fill(0, 1);
  ASSERT_OK(WriteSync(*cookie, 0, buf));
  EXPECT_EQ(culler_->stored_bytes(), blocks);
  auto trimmed = cookie->TrimCold(3);
  ASSERT_OK(trimmed);
  EXPECT_EQ(trimmed->granules, 3u);
  EXPECT_EQ(trimmed->bytes, blocks);
  EXPECT_EQ(culler_->stored_bytes(), 0u);
  ASSERT_OK(WriteSync(*cookie, 0, buf));
  Relinquish(cookie);
  ASSERT_NO_FATAL_FAILURE(StartCuller({}, "lru", /*scan=*/true));
  // The record may take a block of its own, no more.
  EXPECT_GE(culler_->stored_bytes(), blocks);
  EXPECT_LE(culler_->stored_bytes(), blocks + 4096);
}

TEST_F(CullerTest, AppendsAreCountedAsTheBlocksTheyFill) {
  OpenCache();
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  auto cookie = volume_->AcquireCookie("log", "aux", 0);
  cookie->WaitReady();
  // Appends of 12 KiB, as the write path makes them: the object grows,
  // then the granule is stored whole up to the new end.
  constexpr uint64_t kStep = 12288;
  for (uint64_t size = kStep; size <= 30 * kStep; size += kStep) {
    ASSERT_OK(cookie->Resize(size));
    const uint64_t first = (size - kStep) / kGranule;
    const uint64_t last = (size - 1) / kGranule;
    Cookie::WriteTicket ticket = cookie->PrepareWrite(first, last - first + 1);
    ASSERT_TRUE(ticket);
    AlignedBuffer buf(size - first * kGranule);
    buf.Fill(first * kGranule, 1);
    iovec iov = buf.iov();
    absl::Notification stored;
    ticket.Store(first, last - first + 1, {&iov, 1},
                 [&](absl::StatusOr<size_t>) { stored.Notify(); });
    stored.WaitForNotification();
    ticket.Release();
    EXPECT_EQ(culler_->stored_bytes(), size) << size;
  }
  Relinquish(cookie);
}

TEST_F(CullerTest, ACleanRestartLoadsTheSnapshotAndAScanAgreesWithIt) {
  OpenCache();
  MakeObjects(20, 2);
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  EXPECT_FALSE(culler_->loaded_from_snapshot());  // none yet: a scan
  const uint64_t scanned = culler_->stored_bytes();
  EXPECT_EQ(culler_->indexed_objects(), 20u);
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  EXPECT_TRUE(culler_->loaded_from_snapshot());
  EXPECT_EQ(culler_->indexed_objects(), 20u);
  EXPECT_EQ(culler_->stored_bytes(), scanned);
  // Read once: while the mount runs there is no snapshot a crash could
  // leave behind.
  EXPECT_TRUE(absl::IsNotFound(
      volume_->ReadFile(kCullIndexSnapshot, 1 << 20).status()));
  ASSERT_NO_FATAL_FAILURE(StartCuller({}, "lru", /*scan=*/true));
  EXPECT_FALSE(culler_->loaded_from_snapshot());
  EXPECT_EQ(culler_->stored_bytes(), scanned);
}

TEST_F(CullerTest, ObjectsMadeBehindTheSnapshotMakeTheStartScan) {
  OpenCache();
  MakeObjects(5, 1);
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  culler_.reset();  // leaves the snapshot
  // Objects made while no culler ran (another tool, or a crash of one).
  for (int i = 0; i < 3; ++i) {
    auto cookie = volume_->AcquireCookie(absl::StrCat("late", i), "aux",
                                         kGranule);
    AlignedBuffer buf(kGranule);
    buf.Fill(0, i);
    ASSERT_OK(WriteSync(*cookie, 0, buf));
    Relinquish(cookie);
  }
  cache_->dispatcher()->Drain();
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  EXPECT_FALSE(culler_->loaded_from_snapshot());
  EXPECT_EQ(culler_->indexed_objects(), 8u);
}

TEST_F(CullerTest, WritesWhileTheSnapshotLoadsAreCountedAfterIt) {
  OpenCache();
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  culler_.reset();
  // A large snapshot, so its loading takes a while.
  constexpr int kSnapshotted = 200000;
  std::vector<Volume::StoredObject> objects(kSnapshotted);
  for (int i = 0; i < kSnapshotted; ++i) {
    objects[i] = {0x1000000000ull + static_cast<uint64_t>(i), 4096, i};
  }
  ASSERT_OK(volume_->WriteFile(
      kCullIndexSnapshot, EncodeCullIndex(volume_->FanDirTimes(), objects)));
  ASSERT_NO_FATAL_FAILURE(StartCuller());
  EXPECT_TRUE(culler_->loaded_from_snapshot());
  // Counted at once, loaded or not: admission sees every byte.
  EXPECT_EQ(culler_->stored_bytes(), uint64_t{kSnapshotted} * 4096);
  MakeObjects(4, 2);  // most likely while the index loads
  EXPECT_EQ(culler_->indexed_objects(), kSnapshotted + 4u);
  EXPECT_EQ(culler_->stored_bytes(),
            uint64_t{kSnapshotted} * 4096 + 8 * kGranule);
}

TEST(CullIndexSnapshotTest, DamagedTruncatedOrOutdatedSnapshotsAreRefused) {
  const std::vector<int64_t> times(256, 42);
  std::vector<Volume::StoredObject> objects = {{1, 4096, 10}, {2, 8192, 20}};
  const std::string data = EncodeCullIndex(times, objects);
  auto back = DecodeCullIndex(data, times);
  ASSERT_OK(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].hash, 2u);
  EXPECT_EQ((*back)[1].bytes, 8192u);
  EXPECT_EQ((*back)[1].last_used, 20);
  for (size_t at : {size_t{3}, size_t{20}, data.size() - 30, data.size() - 1}) {
    std::string bad = data;
    bad[at] ^= 1;
    EXPECT_FALSE(DecodeCullIndex(bad, times).ok()) << at;
  }
  EXPECT_FALSE(DecodeCullIndex(data.substr(0, data.size() - 24), times).ok());
  std::vector<int64_t> later = times;
  later[7] = 43;  // a fan-out directory changed since
  EXPECT_FALSE(DecodeCullIndex(data, later).ok());
}

TEST(CullLimitsTest, OpenShareIsAPercentage) {
  CullLimits limits;
  limits.open_file_share = 0;
  EXPECT_FALSE(limits.Validate().ok());
  limits.open_file_share = 101;
  EXPECT_FALSE(limits.Validate().ok());
  limits.open_file_share = 100;
  EXPECT_TRUE(limits.Validate().ok());
}

}  // namespace
}  // namespace cachefs::testing
