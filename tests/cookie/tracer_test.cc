#include "cookie/tracer.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "io/json_string.h"

namespace cachefs {
namespace {

TEST(TracerTest, ActiveOnlyWhileSomeoneListens) {
  Tracer tracer;
  EXPECT_FALSE(tracer.active());
  auto a = tracer.Listen();
  auto b = tracer.Listen();
  EXPECT_TRUE(tracer.active());
  tracer.Unlisten(a);
  EXPECT_TRUE(tracer.active());
  tracer.Unlisten(b);
  EXPECT_FALSE(tracer.active());
  tracer.Unlisten(b);  // twice is harmless
  EXPECT_FALSE(tracer.active());
}

TEST(TracerTest, EveryListenerGetsEveryEventInOrder) {
  Tracer tracer;
  auto a = tracer.Listen();
  auto b = tracer.Listen();
  tracer.Emit(TraceEvent("acquire", "dir/f").Bytes(10));
  tracer.Emit(TraceEvent("read", "dir/f").Granules(0, 2).Detail("miss"));
  for (const auto& listener : {a, b}) {
    uint64_t dropped = 1;
    std::vector<TraceEvent> events =
        listener->Take(absl::ZeroDuration(), &dropped);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(dropped, 0u);
    EXPECT_STREQ(events[0].kind, "acquire");
    EXPECT_STREQ(events[1].kind, "read");
    EXPECT_EQ(events[1].count, 2u);
    EXPECT_GT(events[0].time_ns, 0);
    EXPECT_LE(events[0].time_ns, events[1].time_ns);
  }
  tracer.Unlisten(a);
  tracer.Emit(TraceEvent("relinquish", "dir/f"));
  uint64_t dropped = 0;
  EXPECT_TRUE(a->Take(absl::ZeroDuration(), &dropped).empty());
  EXPECT_EQ(b->Take(absl::ZeroDuration(), &dropped).size(), 1u);
  tracer.Unlisten(b);
}

TEST(TracerTest, AListenerThatFallsBehindLosesEventsAndIsToldHowMany) {
  Tracer tracer;
  auto listener = tracer.Listen(/*capacity=*/3);
  for (int i = 0; i < 10; ++i) tracer.Emit(TraceEvent("read", "f"));
  uint64_t dropped = 0;
  EXPECT_EQ(listener->Take(absl::ZeroDuration(), &dropped).size(), 3u);
  EXPECT_EQ(dropped, 7u);
  EXPECT_TRUE(listener->Take(absl::Milliseconds(1), &dropped).empty());
  EXPECT_EQ(dropped, 0u);
  tracer.Unlisten(listener);
}

TEST(TracerTest, TextAndJsonSayTheSame) {
  TraceEvent e("read", "a dir/\"odd\" name");
  e.Granules(4, 3).Bytes(786432).Detail("hit");
  e.time_ns = 1700000000123456789;
  const std::string text = FormatTraceEvent(e);
  EXPECT_NE(text.find(" read a dir/\"odd\" name granules 4-6 bytes 786432 hit\n"),
            std::string::npos)
      << text;
  auto members = ParseFlatJsonObject(FormatTraceEventJson(e));
  ASSERT_TRUE(members.ok()) << members.status();
  std::vector<std::pair<std::string, std::string>> want = {
      {"time", "1700000000.123456"}, {"kind", "read"},
      {"path", "a dir/\"odd\" name"}, {"first_granule", "4"},
      {"granules", "3"},           {"bytes", "786432"},
      {"detail", "hit"}};
  EXPECT_EQ(*members, want);
  // A cache-wide event has no path, range or bytes.
  TraceEvent w("withdraw", "");
  w.Detail("the whole cache");
  auto wm = ParseFlatJsonObject(FormatTraceEventJson(w));
  ASSERT_TRUE(wm.ok());
  EXPECT_EQ(wm->size(), 3u);
}

}  // namespace
}  // namespace cachefs
