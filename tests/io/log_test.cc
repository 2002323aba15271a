// The log: lines in a file carry their level and mount point, levels below
// the configured one are dropped, repeated events are said once per
// interval with a count, and a log file that cannot be opened is an error.

#include "io/log.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.path() + "/cachefs.log";
    LogOptions options;
    options.sink = LogOptions::Sink::kFile;
    options.file = file_;
    options.level = LogLevel::kNotice;
    options.mount_point = "/mnt/data";
    ASSERT_OK(ConfigureLog(options));
  }
  void TearDown() override { ASSERT_OK(ConfigureLog(LogOptions{})); }

  TempDir dir_;
  std::string file_;
};

TEST_F(LogTest, LinesCarryLevelAndMountPoint) {
  Log(LogLevel::kWarning, "the cache filesystem is full");
  Log(LogLevel::kInfo, "not kept at notice");
  LogParts(LogLevel::kNotice, "discarded ", 3, " files");
  const std::string text = ReadAll(file_);
  EXPECT_NE(text.find(" warning /mnt/data: the cache filesystem is full\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(" notice /mnt/data: discarded 3 files\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("not kept"), std::string::npos) << text;
}

TEST_F(LogTest, ARepeatedEventIsSaidOncePerIntervalWithACount) {
  for (int i = 0; i < 5; ++i) {
    LogEvent(LogLevel::kError, "cache-io-error", "cache I/O error",
             absl::Milliseconds(200));
  }
  absl::SleepFor(absl::Milliseconds(250));
  EXPECT_TRUE(LogEvent(LogLevel::kError, "cache-io-error", "cache I/O error",
                       absl::Milliseconds(200)));
  // Another kind is not held back by the first.
  EXPECT_TRUE(LogEvent(LogLevel::kWarning, "nospace", "full",
                       absl::Milliseconds(200)));
  const std::string text = ReadAll(file_);
  size_t lines = 0;
  for (size_t at = text.find("cache I/O error"); at != std::string::npos;
       at = text.find("cache I/O error", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 2u) << text;
  EXPECT_NE(text.find("(and 4 more like it since the last note)"),
            std::string::npos)
      << text;
}

TEST_F(LogTest, LevelsByName) {
  ASSERT_OK(ParseLogLevel("debug"));
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("loud").ok());
}

TEST_F(LogTest, ALinkIsNotFollowed) {
  const std::string target = dir_.path() + "/elsewhere";
  std::ofstream(target) << "precious\n";
  ASSERT_EQ(symlink(target.c_str(), (dir_.path() + "/link.log").c_str()), 0);
  LogOptions options;
  options.sink = LogOptions::Sink::kFile;
  options.file = dir_.path() + "/link.log";
  EXPECT_FALSE(ConfigureLog(options).ok());
  Log(LogLevel::kError, "not there");
  EXPECT_EQ(ReadAll(target), "precious\n");
}

TEST_F(LogTest, AnUnopenableFileIsAnErrorAndChangesNothing) {
  LogOptions options;
  options.sink = LogOptions::Sink::kFile;
  options.file = dir_.path() + "/no/such/dir/log";
  absl::Status status = ConfigureLog(options);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(options.file), std::string::npos) << status;
  Log(LogLevel::kError, "still here");
  EXPECT_NE(ReadAll(file_).find("still here"), std::string::npos);
}

}  // namespace
}  // namespace cachefs::testing
