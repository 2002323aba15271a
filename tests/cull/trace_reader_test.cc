// Each trace format parsed from small inline samples, malformed lines
// included, and trace files read plain and through xz / gzip.

#include "cull/trace_reader.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cull/trace_file.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

using ::cachefs::testing::TempDir;

std::vector<std::pair<uint32_t, uint64_t>> Accesses(const Trace& t) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  for (const TraceAccess& a : t.accesses) out.emplace_back(a.key, a.bytes);
  return out;
}

absl::StatusOr<Trace> Parse(std::string_view text, TraceFormat format,
                            uint64_t granule = kDefaultTraceGranule) {
  TraceOptions options;
  options.format = format;
  options.granule = granule;
  return ParseTrace(text, "sample", options);
}

// The error message, or "ok" if there was none.
std::string ErrorOf(std::string_view text, TraceFormat format) {
  absl::StatusOr<Trace> t = Parse(text, format);
  return t.ok() ? "ok" : std::string(t.status().message());
}

TEST(TraceFormatTest, NamesRoundTrip) {
  for (const std::string& name : TraceFormatNames()) {
    absl::StatusOr<TraceFormat> f = ParseTraceFormat(name);
    ASSERT_OK(f);
    EXPECT_EQ(TraceFormatName(*f), name);
  }
  absl::StatusOr<TraceFormat> bad = ParseTraceFormat("zst");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "unknown trace format 'zst'; valid formats: text, webcachesim, "
            "arc, lirs, csv");
}

TEST(TextTraceTest, IdsAreObjectsAndTimestampsOptional) {
  absl::StatusOr<Trace> t = Parse(
      "# id size\n"
      "a 100\n"
      "\n"
      "12.5 b 200\n"
      "a 150\n"  // a resized
      "  b\t200  \n",
      TraceFormat::kText);
  ASSERT_OK(t);
  EXPECT_EQ(Accesses(*t), (std::vector<std::pair<uint32_t, uint64_t>>{
                              {0, 100}, {1, 200}, {0, 150}, {1, 200}}));
  EXPECT_EQ(t->num_keys, 2u);
  EXPECT_EQ(t->footprint_bytes, 350u);  // each key at its largest
  EXPECT_EQ(t->source_requests, 4u);
}

TEST(TextTraceTest, MalformedLinesNameTheLine) {
  EXPECT_EQ(ErrorOf("a 1\nb\n", TraceFormat::kText),
            "sample:2: expected '[timestamp] object-id size': 'b'");
  EXPECT_EQ(ErrorOf("a 1\n\nb x\n", TraceFormat::kText),
            "sample:3: expected '[timestamp] object-id size': 'b x'");
  EXPECT_EQ(ErrorOf("t b 1\n", TraceFormat::kText),
            "sample:1: timestamp is not a number: 't b 1'");
  EXPECT_EQ(ErrorOf("a 1 2 3\n", TraceFormat::kText),
            "sample:1: expected '[timestamp] object-id size': 'a 1 2 3'");
}

TEST(WebcachesimTraceTest, IdAndSizeMakeOneObject) {
  absl::StatusOr<Trace> t = Parse(
      "1 7 100\n"
      "2 8 50\n"
      "3 7 100\n"
      "4 7 120\n",  // same id, new size: another object
      TraceFormat::kWebcachesim);
  ASSERT_OK(t);
  EXPECT_EQ(Accesses(*t), (std::vector<std::pair<uint32_t, uint64_t>>{
                              {0, 100}, {1, 50}, {0, 100}, {2, 120}}));
  EXPECT_EQ(t->footprint_bytes, 270u);
  EXPECT_EQ(ErrorOf("1 7 100\n2 x 5\n", TraceFormat::kWebcachesim),
            "sample:2: expected 'time id size' (numbers): '2 x 5'");
  EXPECT_EQ(ErrorOf("1 7\n", TraceFormat::kWebcachesim),
            "sample:1: expected 'time id size' (numbers): '1 7'");
}

TEST(ArcTraceTest, BlocksMapToGranules) {
  // Blocks of 512 B at 1 KiB granules: blocks 0-1 are granule 0, 2-3
  // granule 1...
  const std::string sample =
      "0 1 0 0\n"
      "1 3 0 1\n"   // blocks 1..3: granules 0 and 1, each once
      "8 1 0 2\n"   // granule 4
      "0 0 0 3\n";  // no blocks: nothing
  absl::StatusOr<Trace> t = Parse(sample, TraceFormat::kArc, 1024);
  ASSERT_OK(t);
  EXPECT_EQ(Accesses(*t), (std::vector<std::pair<uint32_t, uint64_t>>{
                              {0, 1024}, {0, 1024}, {1, 1024}, {2, 1024}}));
  EXPECT_EQ(t->num_keys, 3u);
  EXPECT_EQ(t->footprint_bytes, 3u * 1024);
  EXPECT_EQ(t->source_requests, 3u);
  // At the default 256 KiB granule all of it is one granule.
  absl::StatusOr<Trace> coarse = Parse(sample, TraceFormat::kArc);
  ASSERT_OK(coarse);
  EXPECT_EQ(coarse->accesses.size(), 3u);
  EXPECT_EQ(coarse->num_keys, 1u);
  EXPECT_EQ(ErrorOf("0 1 0 0\n5 1 0\n", TraceFormat::kArc),
            "sample:2: expected 'start nblocks ignore reqno' (numbers): "
            "'5 1 0'");
  EXPECT_EQ(ErrorOf("-5 1 0 0\n", TraceFormat::kArc),
            "sample:1: expected 'start nblocks ignore reqno' (numbers): "
            "'-5 1 0 0'");
  EXPECT_EQ(ErrorOf("0 99999999999 0 0\n", TraceFormat::kArc),
            "sample:1: request spans more than 1048576 granules: "
            "'0 99999999999 0 0'");
}

TEST(LirsTraceTest, OneBlockPerLine) {
  TraceOptions options;
  options.format = TraceFormat::kLirs;
  options.granule = 4096;  // the default block size: one key per block
  absl::StatusOr<Trace> t = ParseTrace("5\n7\n5\n", "sample", options);
  ASSERT_OK(t);
  EXPECT_EQ(Accesses(*t), (std::vector<std::pair<uint32_t, uint64_t>>{
                              {0, 4096}, {1, 4096}, {0, 4096}}));
  EXPECT_EQ(ErrorOf("5\n7 8\n", TraceFormat::kLirs),
            "sample:2: expected one block number: '7 8'");
  EXPECT_EQ(ErrorOf("*\n", TraceFormat::kLirs),
            "sample:1: expected one block number: '*'");
}

TEST(CsvTraceTest, HeaderNamesTheColumnsReadsAndWritesCount) {
  absl::StatusOr<Trace> t = Parse(
      "version,time,op,size,lbn\n"
      "1,5,2a,512,0\n"       // granule 0
      "1,6,28,65536,2040\n"  // bytes 1044480..1110015: granules 0 and 1
      "1,7,28,0,4000\n",     // no bytes: nothing
      TraceFormat::kCsv, 1 << 20);
  ASSERT_OK(t);
  EXPECT_EQ(Accesses(*t), (std::vector<std::pair<uint32_t, uint64_t>>{
                              {0, 1 << 20}, {0, 1 << 20}, {1, 1 << 20}}));
  // Columns in another order, names in any case.
  absl::StatusOr<Trace> swapped =
      Parse("LBN,Size\n2048,512\n", TraceFormat::kCsv, 1 << 20);
  ASSERT_OK(swapped);
  EXPECT_EQ(swapped->accesses.size(), 1u);
  EXPECT_EQ(ErrorOf("version,time,op,lbn\n1,2,28,5\n", TraceFormat::kCsv),
            "sample:1: CSV header must name the columns 'lbn' (512-byte "
            "sectors) and 'size' (bytes): 'version,time,op,lbn'");
  EXPECT_EQ(ErrorOf("size,lbn\n512,0\n512\n", TraceFormat::kCsv),
            "sample:3: expected 2 or more fields: '512'");
  EXPECT_EQ(ErrorOf("size,lbn\n512,x\n", TraceFormat::kCsv),
            "sample:2: lbn is not a number: '512,x'");
  EXPECT_EQ(ErrorOf("size,lbn\n5k,1\n", TraceFormat::kCsv),
            "sample:2: size is not a number: '5k,1'");
}

TEST(TraceReaderTest, LongLinesAreQuotedShort) {
  const std::string line(500, 'x');
  EXPECT_EQ(
      ErrorOf(line, TraceFormat::kLirs),
      "sample:1: expected one block number: '" + std::string(60, 'x') + "...'");
}

class TraceFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  // Runs a shell command on test-made paths only.
  void Shell(const std::string& command) {
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  TempDir dir_;
};

TEST_F(TraceFileTest, ReadsPlainXzAndGzip) {
  const std::string text = "a 1\nb 2\na 1\n";
  const std::string plain = Write("t.txt", text);
  Write("t.xz.src", text);
  Write("t.gz.src", text);
  Shell("xz -c '" + dir_.path() + "/t.xz.src' > '" + dir_.path() +
        "/t.txt.xz'");
  Shell("gzip -c '" + dir_.path() + "/t.gz.src' > '" + dir_.path() +
        "/t.txt.gz'");
  for (const std::string& path :
       {plain, dir_.path() + "/t.txt.xz", dir_.path() + "/t.txt.gz"}) {
    absl::StatusOr<Trace> t = ReadTraceFile(path, TraceOptions{});
    ASSERT_OK(t);
    EXPECT_EQ(t->accesses.size(), 3u) << path;
    EXPECT_EQ(t->footprint_bytes, 3u) << path;
  }
}

TEST_F(TraceFileTest, ErrorsNameTheFile) {
  const std::string missing = dir_.path() + "/none.xz";
  absl::StatusOr<Trace> t = ReadTraceFile(missing, TraceOptions{});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), missing + ": No such file or directory");

  const std::string fake_xz = Write("fake.xz", "a 1\n");
  t = ReadTraceFile(fake_xz, TraceOptions{});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            fake_xz +
                ": xz -dc failed (exit status 1); is the file damaged or "
                "not xz-compressed?");

  const std::string bad_line = Write("bad.txt", "a 1\nb\n");
  t = ReadTraceFile(bad_line, TraceOptions{});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            bad_line + ":2: expected '[timestamp] object-id size': 'b'");
}

}  // namespace
}  // namespace cachefs
