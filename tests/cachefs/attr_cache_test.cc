// AttrCache: the names of one file with several hard links share what is
// learned and forgotten about it; other files and names are left alone.

#include "cachefs/attr_cache.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cachefs::testing {
namespace {

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kLong = 3600 * kSecond;

struct stat FileAttr(ino_t ino, off_t size, nlink_t nlink) {
  struct stat st = {};
  st.st_mode = S_IFREG | 0644;
  st.st_dev = 7;
  st.st_ino = ino;
  st.st_size = size;
  st.st_nlink = nlink;
  return st;
}

off_t SizeOf(const AttrCache& cache, const std::string& key, int64_t now) {
  auto attr = cache.Get(key, kLong, now);
  return attr.has_value() ? attr->st_size : -1;
}

TEST(AttrCacheTest, WhatIsLearnedThroughOneLinkReachesTheOthers) {
  AttrCache cache(100);
  cache.Put("a", FileAttr(1, 10, 2), 1 * kSecond);
  cache.Put("d/b", FileAttr(1, 10, 2), 2 * kSecond);
  cache.Put("other", FileAttr(2, 10, 1), 2 * kSecond);
  cache.Put("a", FileAttr(1, 99, 2), 5 * kSecond);
  EXPECT_EQ(SizeOf(cache, "d/b", 5 * kSecond), 99);
  EXPECT_EQ(SizeOf(cache, "other", 5 * kSecond), 10);
  // b's name is as old as when it was seen: it ages out on its own clock.
  int64_t fetched = 0;
  ASSERT_TRUE(cache.Get("d/b", kLong, 5 * kSecond, &fetched).has_value());
  EXPECT_EQ(fetched, 2 * kSecond);
}

TEST(AttrCacheTest, ASlowFetchThroughOneLinkDoesNotUndoANewerOne) {
  AttrCache cache(100);
  cache.Put("a", FileAttr(1, 10, 2), 1 * kSecond);
  cache.Put("b", FileAttr(1, 10, 2), 1 * kSecond);
  cache.Erase("b");                                 // a write through b
  cache.Put("b", FileAttr(1, 50, 2), 3 * kSecond);  // fetched after it
  cache.Put("a", FileAttr(1, 10, 2), 2 * kSecond);  // began before it
  EXPECT_EQ(SizeOf(cache, "b", 3 * kSecond), 50);
  EXPECT_EQ(SizeOf(cache, "a", 3 * kSecond), 50);
}

TEST(AttrCacheTest, ForgettingOneLinkForgetsTheOthers) {
  AttrCache cache(100);
  cache.Put("a", FileAttr(1, 10, 2), kSecond);
  cache.Put("b", FileAttr(1, 10, 2), kSecond);
  cache.Put("c", FileAttr(2, 10, 2), kSecond);  // another linked file
  cache.Erase("b");
  EXPECT_EQ(SizeOf(cache, "a", kSecond), -1);
  EXPECT_EQ(SizeOf(cache, "b", kSecond), -1);
  EXPECT_EQ(SizeOf(cache, "c", kSecond), 10);
  // Below a renamed directory too.
  cache.Put("d/x", FileAttr(3, 10, 2), kSecond);
  cache.Put("y", FileAttr(3, 10, 2), kSecond);
  cache.ErasePrefix("d");
  EXPECT_EQ(SizeOf(cache, "y", kSecond), -1);
  EXPECT_EQ(SizeOf(cache, "c", kSecond), 10);
}

TEST(AttrCacheTest, ANameThatLeadsToAnotherFileLeavesItsGroup) {
  AttrCache cache(100);
  cache.Put("a", FileAttr(1, 10, 2), kSecond);
  cache.Put("b", FileAttr(1, 10, 2), kSecond);
  cache.Put("b", FileAttr(5, 20, 1), kSecond);  // replaced on the origin
  cache.Put("a", FileAttr(1, 30, 2), kSecond);
  EXPECT_EQ(SizeOf(cache, "b", kSecond), 20);
  cache.Erase("a");
  EXPECT_EQ(SizeOf(cache, "b", kSecond), 20);
}

TEST(AttrCacheTest, EvictedLinksLeaveNoStaleGroup) {
  AttrCache cache(2);
  cache.Put("a", FileAttr(1, 10, 2), kSecond);
  cache.Put("b", FileAttr(1, 10, 2), kSecond);
  cache.Put("c", FileAttr(2, 10, 1), kSecond);  // evicts a
  EXPECT_EQ(SizeOf(cache, "a", kSecond), -1);
  cache.Put("a", FileAttr(9, 1, 1), kSecond);  // a is another file now
  cache.Put("b", FileAttr(1, 50, 2), kSecond);
  EXPECT_EQ(SizeOf(cache, "a", kSecond), 1);
  cache.Erase("b");
  EXPECT_EQ(SizeOf(cache, "a", kSecond), 1);
  EXPECT_EQ(cache.size(), 1u);
}

// The store loads behind a mount that is already serving: what the mount
// learned or erased meanwhile is newer than the snapshot and stays so.
TEST(AttrCacheTest, ALoadBehindLiveUseKeepsWhatWasLearnedOrErasedSince) {
  AttrCache cache(100);
  cache.BeginLoad();
  cache.Put("learned", FileAttr(1, 20, 1), 9 * kSecond);
  cache.Put("erased", FileAttr(2, 20, 1), 9 * kSecond);
  cache.Erase("erased");
  cache.ErasePrefix("dir");
  std::vector<AttrCache::Loaded> snapshot = {
      {"learned", FileAttr(1, 10, 1), 1 * kSecond},
      {"erased", FileAttr(2, 10, 1), 1 * kSecond},
      {"dir", FileAttr(3, 10, 1), 1 * kSecond},
      {"dir/below", FileAttr(4, 10, 1), 1 * kSecond},
      {"directory", FileAttr(5, 10, 1), 1 * kSecond},
      {"untouched", FileAttr(6, 10, 1), 1 * kSecond}};
  cache.PutAll(snapshot, /*behind=*/true);
  cache.EndLoad();
  EXPECT_EQ(SizeOf(cache, "learned", 9 * kSecond), 20);
  EXPECT_EQ(SizeOf(cache, "erased", 9 * kSecond), -1);
  EXPECT_EQ(SizeOf(cache, "dir", 9 * kSecond), -1);
  EXPECT_EQ(SizeOf(cache, "dir/below", 9 * kSecond), -1);
  EXPECT_EQ(SizeOf(cache, "directory", 9 * kSecond), 10);
  EXPECT_EQ(SizeOf(cache, "untouched", 9 * kSecond), 10);
  // Not loading: a snapshot put in full replaces what is there.
  cache.PutAll(snapshot);
  EXPECT_EQ(SizeOf(cache, "learned", 9 * kSecond), 10);
  EXPECT_EQ(SizeOf(cache, "erased", 9 * kSecond), 10);
}

TEST(AttrCacheTest, ALoadBehindAFullCacheNeverPushesOutWhatWasLearned) {
  AttrCache cache(3);
  cache.BeginLoad();
  cache.Put("live", FileAttr(1, 20, 1), 9 * kSecond);
  std::vector<AttrCache::Loaded> snapshot = {
      {"oldest", FileAttr(2, 10, 1), 1 * kSecond},
      {"older", FileAttr(3, 10, 1), 2 * kSecond},
      {"newer", FileAttr(4, 10, 1), 3 * kSecond},
      {"newest", FileAttr(5, 10, 1), 4 * kSecond}};
  cache.PutAll(snapshot, /*behind=*/true);
  cache.EndLoad();
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(SizeOf(cache, "live", 9 * kSecond), 20);
  EXPECT_EQ(SizeOf(cache, "newer", 9 * kSecond), 10);
  EXPECT_EQ(SizeOf(cache, "newest", 9 * kSecond), 10);
  EXPECT_EQ(SizeOf(cache, "oldest", 9 * kSecond), -1);
}

}  // namespace
}  // namespace cachefs::testing
