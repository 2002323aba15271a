// Listings: what the origin last listed, kept for offline mode.

#include "cachefs/listings.h"

#include <string>
#include <vector>

#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

Listings::Listing Names(const std::vector<std::string>& names) {
  Listings::Listing listing;
  for (const std::string& name : names) {
    OriginDir::Entry e;
    e.name = name;
    e.ino = 100 + listing.size();
    e.type = 8;  // DT_REG
    e.next_offset = listing.size() + 1;
    listing.push_back(e);
  }
  return listing;
}

std::vector<std::string> NamesOf(const Listings::Listing& listing) {
  std::vector<std::string> names;
  for (const OriginDir::Entry& e : listing) names.push_back(e.name);
  return names;
}

// A directory of the origin, read by offsets as a real one is.
class FakeDir : public OriginDir {
 public:
  explicit FakeDir(Listings::Listing listing) : listing_(std::move(listing)) {}
  absl::Status Seek(uint64_t offset) override {
    next_ = offset;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<Entry>> Next() override {
    if (next_ >= listing_.size()) return std::optional<Entry>();
    return std::optional<Entry>(listing_[next_++]);
  }

 private:
  Listings::Listing listing_;
  uint64_t next_ = 0;
};

// Reads `dir` from `offset` to its end.
std::vector<std::string> ReadFrom(OriginDir& dir, uint64_t offset) {
  std::vector<std::string> names;
  EXPECT_OK(dir.Seek(offset));
  for (int i = 0; i < 100; ++i) {
    auto next = dir.Next();
    EXPECT_OK(next);
    if (!next.ok() || !next->has_value()) break;
    names.push_back((*next)->name);
  }
  return names;
}

TEST(ListingsTest, ARenamedOrRemovedDirectoryTakesWhatIsBelowIt) {
  Listings listings(100);
  listings.Put("a", Names({"x"}));
  listings.Put("a/b", Names({"y"}));
  listings.Put("a.txt", Names({"z"}));
  listings.Put("ab", Names({"w"}));
  listings.PutLink("a/l", "target");
  listings.ErasePrefix("a");
  EXPECT_FALSE(listings.Get("a").has_value());
  EXPECT_FALSE(listings.Get("a/b").has_value());
  EXPECT_FALSE(listings.GetLink("a/l").has_value());
  EXPECT_TRUE(listings.Get("a.txt").has_value());
  EXPECT_TRUE(listings.Get("ab").has_value());
  listings.ErasePrefix("");
  EXPECT_FALSE(listings.Get("ab").has_value());
}

TEST(ListingsTest, TheOldestListingGoesFirstPastTheBound) {
  Listings listings(5);
  listings.Put("one", Names({"a", "b"}));
  listings.Put("two", Names({"c", "d"}));
  listings.Put("three", Names({"e", "f"}));
  EXPECT_FALSE(listings.Get("one").has_value());
  EXPECT_TRUE(listings.Get("two").has_value());
  EXPECT_TRUE(listings.Get("three").has_value());
}

TEST(ListingsTest, ASnapshotBringsBackListingsAndLinks) {
  Listings listings(100);
  listings.Put("", Names({".", "..", "d", "l"}));
  listings.Put("d", Names({"f1", "f2"}));
  listings.PutLink("l", "d/f1");
  const std::string saved = listings.Encode();

  Listings loaded(100);
  auto count = loaded.Decode(saved);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 2u);
  auto d = loaded.Get("d");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(NamesOf(*d), (std::vector<std::string>{"f1", "f2"}));
  EXPECT_EQ((*d)[1].ino, 101u);
  EXPECT_EQ(loaded.GetLink("l"), std::optional<std::string>("d/f1"));

  // A flipped byte or a cut: nothing is added.
  for (size_t at : {size_t{12}, saved.size() / 2, saved.size() - 1}) {
    std::string bad = saved;
    bad[at] ^= 0x40;
    Listings none(100);
    EXPECT_FALSE(none.Decode(bad).ok()) << at;
    EXPECT_FALSE(none.Get("d").has_value());
  }
  Listings none(100);
  EXPECT_FALSE(none.Decode(saved.substr(0, saved.size() - 9)).ok());
}

TEST(ListingsTest, OnlyADirectoryReadToItsEndIsRecorded) {
  Listings listings(100);
  const Listings::Listing names = Names({"a", "b", "c", "d"});
  {
    // Read in two pieces; the kernel's buffer took only "a" of the first
    // two entries read, so the second read goes back to after "a".
    auto dir = RecordingDir(std::make_unique<FakeDir>(names), "dir", &listings);
    ASSERT_OK(dir->Seek(0));
    ASSERT_OK(dir->Next());
    ASSERT_OK(dir->Next());
    EXPECT_FALSE(listings.Get("dir").has_value());
    EXPECT_EQ(ReadFrom(*dir, 1), (std::vector<std::string>{"b", "c", "d"}));
  }
  auto recorded = listings.Get("dir");
  ASSERT_TRUE(recorded.has_value());
  EXPECT_EQ(NamesOf(*recorded), (std::vector<std::string>{"a", "b", "c", "d"}));

  // A read that starts in the middle records nothing.
  auto partial =
      RecordingDir(std::make_unique<FakeDir>(names), "other", &listings);
  ReadFrom(*partial, 2);
  EXPECT_FALSE(listings.Get("other").has_value());

  // What was recorded reads back as a directory.
  auto listed = ListedDir(*recorded);
  EXPECT_EQ(ReadFrom(*listed, 0),
            (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(ReadFrom(*listed, 3), (std::vector<std::string>{"d"}));
}

TEST(ListingsTest, ALoadBehindLiveUseKeepsWhatWasListedOrErasedSince) {
  Listings saved(100);
  saved.Put("listed", Names({"old"}));
  saved.Put("erased", Names({"old"}));
  saved.Put("dir/sub", Names({"old"}));
  saved.Put("untouched", Names({"old"}));
  saved.PutLink("link", "old-target");
  const std::string snapshot = saved.Encode();

  Listings live(100);
  live.BeginLoad();
  live.Put("listed", Names({"new"}));
  live.Put("erased", Names({"new"}));
  live.Erase("erased");
  live.ErasePrefix("dir");
  live.EraseLink("link");
  ASSERT_TRUE(live.Decode(snapshot, /*behind=*/true).ok());
  live.EndLoad();
  EXPECT_EQ(NamesOf(*live.Get("listed")), std::vector<std::string>{"new"});
  EXPECT_FALSE(live.Get("erased").has_value());
  EXPECT_FALSE(live.Get("dir/sub").has_value());
  EXPECT_FALSE(live.GetLink("link").has_value());
  EXPECT_EQ(NamesOf(*live.Get("untouched")), std::vector<std::string>{"old"});
}

// A listing a crash left behind may miss what cachefs changed after it was
// saved: it answers only while the origin is down (Get), never online.
TEST(ListingsTest, AnUntrustedListingIsNotTrusted) {
  Listings saved(100);
  saved.Put("dir", Names({"a"}));
  Listings crashed(100);
  ASSERT_TRUE(crashed
                  .Decode(saved.Encode(), /*behind=*/false,
                          /*trusted=*/false)
                  .ok());
  EXPECT_TRUE(crashed.Get("dir").has_value());
  EXPECT_FALSE(crashed.GetTrusted("dir").has_value());
  crashed.Put("dir", Names({"a", "b"}));  // read again by this mount
  EXPECT_TRUE(crashed.GetTrusted("dir").has_value());
}

}  // namespace
}  // namespace cachefs::testing
