// The cache's observer list: events reach every observer, a write is
// admitted only when all admit it (and those that did are told when
// another refuses), and a removed observer hears nothing more.

#include "cookie/cache_observer.h"

#include <string>

#include "gtest/gtest.h"

namespace cachefs {
namespace {

class Counting : public CacheObserver {
 public:
  explicit Counting(bool admit) : admit_(admit) {}
  bool AdmitWrite(uint64_t bytes) override {
    if (admit_) pending += bytes;
    return admit_;
  }
  void WriteSettled(uint64_t bytes) override { pending -= bytes; }
  bool HasRoom(uint64_t) const override { return admit_; }
  void Charge(const std::string&, uint64_t, int64_t delta) override {
    charged += delta;
  }
  void Used(const std::string&, uint64_t) override { ++used; }
  void Removed(const std::string&, uint64_t) override { ++removed; }

  int64_t pending = 0;
  int64_t charged = 0;
  int used = 0;
  int removed = 0;

 private:
  const bool admit_;
};

TEST(CacheObserversTest, EventsReachEveryObserverUntilRemoved) {
  CacheObservers observers;
  Counting a(true), b(true);
  observers.Add(&a);
  observers.Add(&b);
  observers.Charge("v", 1, 4096);
  observers.Used("v", 1);
  observers.Removed("v", 1);
  for (const Counting* c : {&a, &b}) {
    EXPECT_EQ(c->charged, 4096);
    EXPECT_EQ(c->used, 1);
    EXPECT_EQ(c->removed, 1);
  }
  observers.Remove(&a);
  observers.Used("v", 2);
  EXPECT_EQ(a.used, 1);
  EXPECT_EQ(b.used, 2);
}

TEST(CacheObserversTest, AWriteIsAdmittedOnlyWhenAllAdmitIt) {
  CacheObservers observers;
  EXPECT_TRUE(observers.AdmitWrite(10));  // no one to refuse
  Counting yes(true), no(false);
  observers.Add(&yes);
  EXPECT_TRUE(observers.AdmitWrite(10));
  EXPECT_EQ(yes.pending, 10);
  observers.WriteSettled(10);
  EXPECT_EQ(yes.pending, 0);
  observers.Add(&no);
  EXPECT_FALSE(observers.HasRoom(10));
  EXPECT_FALSE(observers.AdmitWrite(10));
  // The one that admitted it is not left waiting for it.
  EXPECT_EQ(yes.pending, 0);
}

class Keep : public CullVeto {
 public:
  explicit Keep(uint64_t hash) : hash_(hash) {}
  bool MayCull(const std::string&, uint64_t hash) override {
    return hash != hash_;
  }

 private:
  const uint64_t hash_;
};

TEST(CacheObserversTest, AnyVetoKeepsAnObject) {
  CacheObservers observers;
  EXPECT_TRUE(observers.MayCull("v", 1));
  Keep one(1), two(2);
  observers.AddVeto(&one);
  observers.AddVeto(&two);
  EXPECT_FALSE(observers.MayCull("v", 1));
  EXPECT_FALSE(observers.MayCull("v", 2));
  EXPECT_TRUE(observers.MayCull("v", 3));
  observers.RemoveVeto(&one);
  EXPECT_TRUE(observers.MayCull("v", 1));
}

}  // namespace
}  // namespace cachefs
