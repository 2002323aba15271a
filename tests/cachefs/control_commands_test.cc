// The control command table and the one-line calls built from it: odd
// paths survive the trip, aliases resolve, and a call that uses what its
// command does not take is refused on both sides.

#include "cachefs/control_commands.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

TEST(ControlCommandsTest, PathsSurviveTheTrip) {
  ControlCall call;
  call.command = "invalidate";
  call.recursive = true;
  call.json = true;
  call.paths = {"", "a b", "100%/x", "line\nbreak\ttab", ".", "-r"};
  const std::string line = EncodeControlCall(call);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  auto back = DecodeControlCall(line);
  ASSERT_OK(back);
  EXPECT_EQ(back->command, "invalidate");
  EXPECT_TRUE(back->recursive);
  EXPECT_TRUE(back->json);
  // "." names the root on the wire: a path "." relative to the root is
  // the root too.
  std::vector<std::string> want = call.paths;
  want[4] = "";
  EXPECT_EQ(back->paths, want);
}

TEST(ControlCommandsTest, AnAliasIsItsCommand) {
  auto call = DecodeControlCall("evict -- x");
  ASSERT_OK(call);
  EXPECT_EQ(call->command, "invalidate");
}

TEST(ControlCommandsTest, WhatACommandDoesNotTakeIsRefused) {
  EXPECT_FALSE(DecodeControlCall("cull --json").ok());
  EXPECT_FALSE(DecodeControlCall("stats -r").ok());
  EXPECT_FALSE(DecodeControlCall("ls -- x").ok());
  EXPECT_FALSE(DecodeControlCall("invalidate").ok());
  EXPECT_FALSE(DecodeControlCall("frobnicate").ok());
  EXPECT_FALSE(DecodeControlCall("invalidate -- %zz").ok());
  EXPECT_FALSE(DecodeControlCall("invalidate -- a%2").ok());
  EXPECT_FALSE(DecodeControlCall("").ok());
  auto cull = DecodeControlCall("cull --to 10M");
  ASSERT_OK(cull);
  EXPECT_EQ(cull->to, "10M");
}

TEST(ControlCommandsTest, TheUsageListsEveryCommand) {
  const std::string usage = ControlUsage();
  for (const ControlCommand& c : ControlCommands()) {
    EXPECT_NE(usage.find(std::string("  ") + c.name +
                         (c.offline ? " CACHEDIR" : " MOUNTPOINT")),
              std::string::npos)
        << c.name;
    EXPECT_EQ(std::string(c.help).back(), '\n') << c.name;
  }
}

}  // namespace
}  // namespace cachefs::testing
