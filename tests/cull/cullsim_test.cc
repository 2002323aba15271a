// cachefs-cullsim itself: its --json output parsed and checked against
// the same replays run in process, and its one-line errors.

#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cull/belady.h"
#include "cull/cull_policy.h"
#include "cull/replay.h"
#include "cull/trace_file.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace cachefs {
namespace {

struct CommandResult {
  int exit_status = -1;
  std::string out;  // stdout and stderr
};

CommandResult RunCullsim(const std::string& args) {
  const std::string command =
      std::string(CACHEFS_CULLSIM_PATH) + " " + args + " 2>&1";
  CommandResult r;
  std::FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Just enough JSON for the simulator's output: an array of flat objects
// whose values are strings, numbers or booleans. Values are kept as their
// text (strings unquoted). Returns false on anything else.
using JsonObject = std::map<std::string, std::string>;

class FlatJsonParser {
 public:
  explicit FlatJsonParser(const std::string& s) : s_(s) {}

  bool ParseArray(std::vector<JsonObject>* out) {
    if (!Eat('[')) return false;
    if (Eat(']')) return AtEnd();
    do {
      JsonObject o;
      if (!ParseObject(&o)) return false;
      out->push_back(std::move(o));
    } while (Eat(','));
    return Eat(']') && AtEnd();
  }

 private:
  void SkipSpace() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_])))
      ++i_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool AtEnd() {
    SkipSpace();
    return i_ == s_.size();
  }
  bool ParseString(std::string* out) {
    if (!Eat('"')) return false;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out->push_back(s_[i_++]);
    }
    return Eat('"');
  }
  bool ParseObject(JsonObject* o) {
    if (!Eat('{')) return false;
    do {
      std::string key, value;
      if (!ParseString(&key) || !Eat(':')) return false;
      SkipSpace();
      if (i_ < s_.size() && s_[i_] == '"') {
        if (!ParseString(&value)) return false;
      } else {
        while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' &&
               !std::isspace(static_cast<unsigned char>(s_[i_]))) {
          value.push_back(s_[i_++]);
        }
        if (value.empty()) return false;
      }
      (*o)[key] = value;
    } while (Eat(','));
    return Eat('}');
  }

  const std::string& s_;
  size_t i_ = 0;
};

const std::string kSprite =
    std::string(CACHEFS_CULL_TRACES_DIR) + "/lirs-sprite.trace.gz";

TEST(CullsimTest, JsonMatchesTheInProcessReplays) {
  CommandResult r = RunCullsim(
      "--json --format lirs --granule 4K "
      "--policy all --capacity 1%,64K " +
      kSprite);
  ASSERT_EQ(r.exit_status, 0) << r.out.substr(0, 500);
  std::vector<JsonObject> rows;
  ASSERT_TRUE(FlatJsonParser(r.out).ParseArray(&rows)) << r.out.substr(0, 500);
  const std::vector<std::string> names = CullPolicyNames();
  ASSERT_EQ(rows.size(), 2 * (names.size() + 1));

  TraceOptions options;
  options.format = TraceFormat::kLirs;
  options.granule = 4096;
  absl::StatusOr<Trace> trace = ReadTraceFile(kSprite, options);
  ASSERT_OK(trace);
  const uint64_t one_percent = trace->footprint_bytes / 100;
  size_t i = 0;
  for (uint64_t capacity : {one_percent, uint64_t{64} << 10}) {
    for (size_t p = 0; p <= names.size(); ++p, ++i) {
      const JsonObject& row = rows[i];
      const std::string name = p < names.size() ? names[p] : "min";
      SCOPED_TRACE(name + " at " + std::to_string(capacity));
      EXPECT_EQ(row.at("policy"), name);
      EXPECT_EQ(row.at("default"),
                name == kDefaultCullPolicy ? "true" : "false");
      EXPECT_EQ(row.at("capacity_bytes"), std::to_string(capacity));
      EXPECT_EQ(row.at("requests"), std::to_string(trace->accesses.size()));
      CacheStats stats;
      if (name == "min") {
        stats = ReplayBelady(*trace, capacity);
      } else {
        absl::StatusOr<std::unique_ptr<CullPolicy>> policy =
            MakeCullPolicy(name, capacity);
        ASSERT_OK(policy);
        absl::StatusOr<CacheStats> s = ReplayTrace(*trace, **policy);
        ASSERT_OK(s);
        stats = *s;
      }
      EXPECT_EQ(row.at("misses"), std::to_string(stats.misses));
      EXPECT_NEAR(std::stod(row.at("miss_ratio")), stats.miss_ratio(), 1e-6);
      EXPECT_NEAR(std::stod(row.at("byte_miss_ratio")), stats.byte_miss_ratio(),
                  1e-6);
    }
  }
}

TEST(CullsimTest, BadInputIsOneLineAndExitStatus2) {
  struct Case {
    std::string args;
    std::string message;
  };
  const Case cases[] = {
      {"--policy lfu " + kSprite,
       "cachefs-cullsim: unknown cull policy 'lfu'; valid policies: lru, "
       "arc, s3fifo, sieve, or default, min, all\n"},
      {"--capacity 5Q --format lirs " + kSprite,
       "cachefs-cullsim: capacity '5Q' is not a byte count (e.g. 4096, "
       "512K, 2G)\n"},
      {"--capacity 150% --format lirs " + kSprite,
       "cachefs-cullsim: capacity '150%' is not a percentage from 0% to "
       "100%\n"},
      {"--format zst " + kSprite,
       "cachefs-cullsim: unknown trace format 'zst'; valid formats: text, "
       "webcachesim, arc, lirs, csv\n"},
      {"--bogus " + kSprite,
       "cachefs-cullsim: unknown option --bogus (see --help)\n"},
      {"", "cachefs-cullsim: no TRACE given (see --help)\n"},
      {"--format arc " + kSprite,
       "cachefs-cullsim: " + kSprite +
           ":1: expected 'start nblocks ignore reqno' (numbers): '0'\n"},
  };
  for (const Case& c : cases) {
    CommandResult r = RunCullsim(c.args);
    EXPECT_EQ(r.exit_status, 2) << c.args;
    EXPECT_EQ(r.out, c.message) << c.args;
  }
}

TEST(CullsimTest, HelpListsThePolicies) {
  CommandResult r = RunCullsim("--help");
  EXPECT_EQ(r.exit_status, 0);
  for (const std::string& name : CullPolicyNames()) {
    EXPECT_NE(r.out.find(name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace cachefs
