// The real traces of tests/cull/traces (see PROVENANCE.md) replayed at
// 0.1%, 1% and 10% of their footprint against every policy and MIN.
// Nothing may beat MIN, and the default policy may never miss more than
// LRU by over 1 point of miss ratio. The miss counts are pinned: they are
// the table in bench/README.md ("Cull policies"), which must change with
// them.

#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cull/belady.h"
#include "cull/cull_policy.h"
#include "cull/replay.h"
#include "cull/trace_file.h"
#include "cull/trace_reader.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

struct CapacityCase {
  double percent;  // of the footprint
  // Misses of lru, arc, s3fifo, sieve (CullPolicyNames() order).
  std::vector<uint64_t> policy_misses;
  uint64_t min_misses;
};

struct TraceCase {
  const char* name;
  const char* file;
  TraceFormat format;
  uint64_t granule;
  std::vector<CapacityCase> capacities;
};

// gtest names the case rather than dumping its bytes.
void PrintTo(const TraceCase& c, std::ostream* os) { *os << c.name; }

// Regenerate with the commands in bench/README.md, "Cull policies".
const TraceCase kCases[] = {
    {"OltpAtGranules",
     "arc-OLTP.lis.xz",
     TraceFormat::kArc,
     kDefaultTraceGranule,
     {
         {0.1, {914145, 914145, 914145, 914145}, 914145},
         {1, {589083, 539044, 542569, 529869}, 406991},
         {10, {203307, 204190, 203370, 209358}, 117039},
     }},
    {"CloudPhysicsAtGranules",
     "cloudPhysicsIO.csv",
     TraceFormat::kCsv,
     kDefaultTraceGranule,
     {
         {0.1, {51401, 51770, 76733, 67127}, 43510},
         {1, {35897, 35734, 36318, 39281}, 28181},
         {10, {22344, 23169, 22419, 23248}, 15245},
     }},
    {"SpriteAtGranules",
     "lirs-sprite.trace.gz",
     TraceFormat::kLirs,
     kDefaultTraceGranule,
     {
         {0.1, {133996, 133996, 133996, 133996}, 133996},
         {1, {59492, 59492, 131375, 75465}, 54504},
         {10, {15785, 16030, 16471, 18022}, 8892},
     }},
    {"AdaptSize",
     "adaptsize-request.trace.xz",
     TraceFormat::kWebcachesim,
     kDefaultTraceGranule,
     {
         {0.1, {58715, 57430, 57534, 57299}, 52061},
         {1, {52966, 51826, 51222, 51783}, 45135},
         {10, {47004, 44465, 44310, 44565}, 40240},
     }},
    {"OltpAtBlocks",
     "arc-OLTP.lis.xz",
     TraceFormat::kArc,
     512,
     {
         {0.1, {788745, 753637, 756953, 865003}, 594230},
         {1, {533560, 499235, 491402, 585370}, 367840},
         {10, {306044, 299243, 294080, 311793}, 217506},
     }},
    {"CloudPhysicsAtPages",
     "cloudPhysicsIO.csv",
     TraceFormat::kCsv,
     4096,
     {
         {0.1, {1039963, 1036267, 1043674, 1057176}, 1019410},
         {1, {1024107, 1025309, 1028363, 1031248}, 987277},
         {10, {998105, 941434, 936774, 951125}, 771969},
     }},
    {"SpriteAtBlocks",
     "lirs-sprite.trace.gz",
     TraceFormat::kLirs,
     4096,
     {
         {0.1, {127886, 127332, 128265, 128106}, 117040},
         {1, {112114, 108446, 106515, 114458}, 77291},
         {10, {18121, 19431, 18324, 32978}, 11575},
     }},
};

// As cachefs-cullsim computes a percentage capacity.
uint64_t PercentOf(uint64_t footprint, double percent) {
  return static_cast<uint64_t>(static_cast<double>(footprint) * percent /
                               100.0);
}

absl::StatusOr<Trace> Load(const char* file, TraceFormat format,
                           uint64_t granule) {
  TraceOptions options;
  options.format = format;
  options.granule = granule;
  return ReadTraceFile(std::string(CACHEFS_CULL_TRACES_DIR) + "/" + file,
                       options);
}

class RealTraceTest : public ::testing::TestWithParam<TraceCase> {};

TEST_P(RealTraceTest, MinBoundsEveryPolicyAndDefaultKeepsUpWithLru) {
  const TraceCase& c = GetParam();
  absl::StatusOr<Trace> trace = Load(c.file, c.format, c.granule);
  ASSERT_OK(trace);
  const std::vector<std::string> names = CullPolicyNames();
  for (const CapacityCase& cap : c.capacities) {
    const uint64_t capacity = PercentOf(trace->footprint_bytes, cap.percent);
    SCOPED_TRACE(::testing::Message() << c.name << " at " << cap.percent
                                      << "% = " << capacity << " B");
    const CacheStats min = ReplayBelady(*trace, capacity);
    EXPECT_EQ(min.misses, cap.min_misses);
    std::map<std::string, CacheStats> by_name;
    ASSERT_EQ(names.size(), cap.policy_misses.size());
    for (size_t i = 0; i < names.size(); ++i) {
      absl::StatusOr<std::unique_ptr<CullPolicy>> policy =
          MakeCullPolicy(names[i], capacity);
      ASSERT_OK(policy);
      absl::StatusOr<CacheStats> stats = ReplayTrace(*trace, **policy);
      ASSERT_OK(stats);
      EXPECT_EQ(stats->requests, trace->accesses.size());
      EXPECT_EQ(stats->misses, cap.policy_misses[i]) << names[i];
      EXPECT_LE(min.misses, stats->misses) << names[i];
      by_name[names[i]] = *stats;
    }
    const double lru = by_name["lru"].miss_ratio();
    const double dflt = by_name[std::string(kDefaultCullPolicy)].miss_ratio();
    EXPECT_LE(dflt, lru + 0.01) << kDefaultCullPolicy << " vs lru";
  }
}

INSTANTIATE_TEST_SUITE_P(Traces, RealTraceTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) {
                           return std::string(info.param.name);
                         });

// The ARC paper's Table IV for OLTP, at its page granularity (512-byte
// blocks) and cache sizes in pages: LRU hit ratios 32.83% and 53.65%,
// ARC 38.95% and 55.25% (c = 1000, 5000). Ties the policies to the
// published numbers: LRU exactly, ARC within 0.02 points.
TEST(RealTraceTest, OltpMatchesTheArcPaper) {
  absl::StatusOr<Trace> trace = Load("arc-OLTP.lis.xz", TraceFormat::kArc, 512);
  ASSERT_OK(trace);
  struct Expected {
    uint64_t pages;
    double lru_hit;
    double arc_hit;
  };
  for (const Expected& e :
       {Expected{1000, 0.3283, 0.3895}, Expected{5000, 0.5365, 0.5525}}) {
    for (const auto& [name, hit, tolerance] :
         {std::tuple{"lru", e.lru_hit, 0.00005},
          std::tuple{"arc", e.arc_hit, 0.0002}}) {
      absl::StatusOr<std::unique_ptr<CullPolicy>> policy =
          MakeCullPolicy(name, e.pages * 512);
      ASSERT_OK(policy);
      absl::StatusOr<CacheStats> stats = ReplayTrace(*trace, **policy);
      ASSERT_OK(stats);
      EXPECT_NEAR(1 - stats->miss_ratio(), hit, tolerance)
          << name << " at " << e.pages << " pages";
    }
  }
}

}  // namespace
}  // namespace cachefs
