// DescriptorCache: the bound, least recently used first, Forget of a path
// and everything below it, and descriptors closed only when unused.

#include "netfs/descriptor_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace cachefs::testing {
namespace {

int NewFd() { return open("/", O_PATH | O_CLOEXEC); }

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

TEST(DescriptorCacheTest, KeepsAtMostItsCapacityLeastRecentlyUsedFirst) {
  DescriptorCache cache(3);
  for (const char* p : {"a", "b", "c"}) cache.Insert(p, NewFd());
  ASSERT_NE(cache.Find("a"), nullptr);  // a is now the most recent
  cache.Insert("d", NewFd());
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Find("b"), nullptr);  // the least recently used went
  EXPECT_NE(cache.Find("a"), nullptr);
  EXPECT_NE(cache.Find("c"), nullptr);
  EXPECT_NE(cache.Find("d"), nullptr);
}

TEST(DescriptorCacheTest, ForgetTakesThePathAndEverythingBelowIt) {
  DescriptorCache cache(10);
  for (const char* p : {"d", "d/x", "d/x/y", "dd", "e"}) {
    cache.Insert(p, NewFd());
  }
  cache.Forget("d");
  EXPECT_EQ(cache.Find("d"), nullptr);
  EXPECT_EQ(cache.Find("d/x"), nullptr);
  EXPECT_EQ(cache.Find("d/x/y"), nullptr);
  EXPECT_NE(cache.Find("dd"), nullptr);  // a sibling with the same prefix
  EXPECT_NE(cache.Find("e"), nullptr);
  cache.Forget("");
  EXPECT_EQ(cache.size(), 0u);
}

TEST(DescriptorCacheTest, AnEvictedDescriptorStaysOpenWhileInUse) {
  DescriptorCache cache(1);
  DescriptorCache::Ref held = cache.Insert("a", NewFd());
  const int fd = held->get();
  cache.Insert("b", NewFd());  // evicts a
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_TRUE(IsOpen(fd));
  held.reset();
  EXPECT_FALSE(IsOpen(fd));
}

TEST(DescriptorCacheTest, CapacityZeroKeepsNothing) {
  DescriptorCache cache(0);
  DescriptorCache::Ref ref = cache.Insert("a", NewFd());
  EXPECT_NE(ref, nullptr);
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace cachefs::testing
