// cachefs-cullsim: replays an access trace against the daemon's cull
// policies (the very CullPolicy objects the daemon uses) and against
// Belady's MIN bound, and prints the miss ratios per policy and capacity.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "cull/belady.h"
#include "cull/cull_policy.h"
#include "cull/replay.h"
#include "cull/trace_file.h"
#include "cull/trace_reader.h"
#include "io/json_string.h"

namespace cachefs {
namespace {

constexpr char kMinName[] = "min";

std::string Usage() {
  return absl::StrCat(
      "usage: cachefs-cullsim [options] TRACE\n"
      "\n"
      "Replays TRACE (a file, or - for standard input; names ending in .xz\n"
      "or .gz are decompressed with xz -dc / gzip -dc) against cull\n"
      "policies and prints, per policy and capacity, the miss ratio and the\n"
      "byte miss ratio, with Belady's MIN bound for the same capacity and,\n"
      "when lru and min are both replayed, the share of the LRU-to-MIN gap\n"
      "each policy closes.\n"
      "\n"
      "options:\n"
      "  --policy NAME[,NAME...]  policies to replay (default: all): ",
      absl::StrJoin(CullPolicyNames(), ", "),
      ";\n"
      "                           default (the daemon's default, ",
      std::string(kDefaultCullPolicy),
      "),\n"
      "                           min (Belady's bound), all (every policy and "
      "min)\n"
      "  --capacity C[,C...]      cache sizes: bytes with an optional suffix\n"
      "                           K, M, G or T (powers of 1024), or a\n"
      "                           percentage of the trace's footprint (the\n"
      "                           bytes of all distinct objects), e.g. 1%\n"
      "                           (default: 0.1%,1%,10%)\n"
      "  --format NAME            trace format: ",
      absl::StrJoin(TraceFormatNames(), ", "),
      " (default:\n"
      "                           csv for names ending .csv, arc for .lis,\n"
      "                           before any .xz/.gz; text otherwise)\n"
      "  --granule BYTES          key size for block traces (arc, lirs, csv);\n"
      "                           default 256K, as cachefs caches; the block\n"
      "                           size replays at block granularity\n"
      "  --block-size BYTES       block size of arc and lirs traces (default\n"
      "                           512 for arc, 4K for lirs)\n"
      "  --json                   print a JSON array, one object per (policy,\n"
      "                           capacity)\n"
      "  -h, --help\n"
      "\n"
      "Formats: text is `[timestamp] object-id size` per line ('#' starts a\n"
      "comment line); webcachesim is `time id size`, an (id, size) pair\n"
      "being one object; arc is `start nblocks ignore reqno`; lirs is one\n"
      "block number per line; csv has a header naming its columns, of\n"
      "which lbn (512-byte sectors) and size (bytes) are used.\n"
      "Requests counts accesses: a block request is one access per granule\n"
      "it overlaps.\n"
      "\n"
      "Exit status: 0 on success, 2 on bad options or a bad trace, 1 if a\n"
      "policy broke its contract.\n");
}

struct Capacity {
  std::string spec;  // as given
  uint64_t bytes = 0;
};

struct Options {
  std::vector<std::string> policies;  // resolved names, "min" included
  std::vector<std::string> capacity_specs = {"0.1%", "1%", "10%"};
  std::string format;  // empty: from the file name
  TraceOptions trace;
  bool json = false;
  std::string path;
};

absl::StatusOr<uint64_t> ParseBytes(absl::string_view s,
                                    absl::string_view what) {
  absl::string_view digits = s;
  uint64_t multiplier = 1;
  if (!s.empty()) {
    switch (absl::ascii_toupper(s.back())) {
      case 'K':
        multiplier = uint64_t{1} << 10;
        break;
      case 'M':
        multiplier = uint64_t{1} << 20;
        break;
      case 'G':
        multiplier = uint64_t{1} << 30;
        break;
      case 'T':
        multiplier = uint64_t{1} << 40;
        break;
      default:
        break;
    }
    if (multiplier != 1) digits.remove_suffix(1);
  }
  uint64_t n;
  if (!absl::SimpleAtoi(digits, &n) || n > UINT64_MAX / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", s, "' is not a byte count (e.g. 4096, 512K, 2G)"));
  }
  return n * multiplier;
}

absl::StatusOr<uint64_t> ParseCapacity(absl::string_view spec,
                                       uint64_t footprint) {
  if (absl::EndsWith(spec, "%")) {
    double percent;
    if (!absl::SimpleAtod(spec.substr(0, spec.size() - 1), &percent) ||
        !(percent >= 0 && percent <= 100)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "capacity '", spec, "' is not a percentage from 0% to 100%"));
    }
    return static_cast<uint64_t>(static_cast<double>(footprint) * percent /
                                 100.0);
  }
  return ParseBytes(spec, "capacity");
}

absl::StatusOr<std::vector<std::string>> ResolvePolicies(
    absl::string_view list) {
  std::vector<std::string> names;
  auto add = [&names](std::string name) {
    for (const std::string& n : names) {
      if (n == name) return;
    }
    names.push_back(std::move(name));
  };
  for (absl::string_view name : absl::StrSplit(list, ',')) {
    if (name == "all") {
      for (const std::string& n : CullPolicyNames()) add(n);
      add(kMinName);
    } else if (name == "default") {
      add(std::string(kDefaultCullPolicy));
    } else if (name == kMinName) {
      add(kMinName);
    } else {
      absl::StatusOr<std::unique_ptr<CullPolicy>> p =
          MakeCullPolicy(std::string(name), 0);
      if (!p.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(p.status().message(), ", or default, min, all"));
      }
      add(std::string(name));
    }
  }
  return names;
}

std::string FormatFromName(absl::string_view path) {
  absl::string_view base = path;
  for (absl::string_view suffix : {".xz", ".gz"}) {
    if (absl::EndsWith(base, suffix)) base.remove_suffix(suffix.size());
  }
  if (absl::EndsWith(base, ".csv")) return "csv";
  if (absl::EndsWith(base, ".lis")) return "arc";
  return "text";
}

absl::StatusOr<Options> ParseArgs(const std::vector<std::string>& args,
                                  bool* help) {
  Options o;
  std::string policy_list = "all";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      *help = true;
      return o;
    }
    // Options take their value as the next argument or after '='.
    std::string flag = a, value;
    bool has_value = false;
    if (absl::StartsWith(a, "--")) {
      if (size_t eq = a.find('='); eq != std::string::npos) {
        flag = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_value = true;
      }
    }
    auto take_value = [&]() -> absl::StatusOr<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(flag + " needs a value");
      }
      return args[++i];
    };
    if (flag == "--json") {
      o.json = true;
    } else if (flag == "--policy" || flag == "--capacity" ||
               flag == "--format" || flag == "--granule" ||
               flag == "--block-size") {
      absl::StatusOr<std::string> v = take_value();
      if (!v.ok()) return v.status();
      if (flag == "--policy") {
        policy_list = *v;
      } else if (flag == "--capacity") {
        o.capacity_specs = absl::StrSplit(*v, ',');
      } else if (flag == "--format") {
        o.format = *v;
      } else {
        absl::StatusOr<uint64_t> bytes = ParseBytes(*v, flag);
        if (!bytes.ok()) return bytes.status();
        if (*bytes == 0) {
          return absl::InvalidArgumentError(flag + " must be at least 1");
        }
        (flag == "--granule" ? o.trace.granule : o.trace.block_size) = *bytes;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return absl::InvalidArgumentError("unknown option " + a +
                                        " (see --help)");
    } else if (o.path.empty()) {
      o.path = a;
    } else {
      return absl::InvalidArgumentError("unexpected argument " + a +
                                        " (one TRACE only; see --help)");
    }
  }
  if (o.path.empty()) {
    return absl::InvalidArgumentError("no TRACE given (see --help)");
  }
  absl::StatusOr<std::vector<std::string>> policies =
      ResolvePolicies(policy_list);
  if (!policies.ok()) return policies.status();
  o.policies = *std::move(policies);
  if (o.format.empty()) o.format = FormatFromName(o.path);
  absl::StatusOr<TraceFormat> format = ParseTraceFormat(o.format);
  if (!format.ok()) return format.status();
  o.trace.format = *format;
  return o;
}

struct Result {
  std::string policy;
  const Capacity* capacity;
  CacheStats stats;
};

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "cachefs-cullsim: %.*s\n",
               static_cast<int>(message.size()), message.data());
  return code;
}

int Run(const std::vector<std::string>& args) {
  bool help = false;
  absl::StatusOr<Options> options = ParseArgs(args, &help);
  if (help) {
    std::fputs(Usage().c_str(), stdout);
    return 0;
  }
  if (!options.ok()) return Fail(2, options.status().message());
  absl::StatusOr<Trace> trace = ReadTraceFile(options->path, options->trace);
  if (!trace.ok()) return Fail(2, trace.status().message());
  if (trace->accesses.empty()) {
    return Fail(2, options->path + ": no requests in the trace");
  }
  std::vector<Capacity> capacities;
  for (const std::string& spec : options->capacity_specs) {
    absl::StatusOr<uint64_t> bytes =
        ParseCapacity(spec, trace->footprint_bytes);
    if (!bytes.ok()) return Fail(2, bytes.status().message());
    capacities.push_back({spec, *bytes});
  }

  std::vector<Result> results;
  for (const Capacity& capacity : capacities) {
    for (const std::string& name : options->policies) {
      if (name == kMinName) {
        results.push_back(
            {name, &capacity, ReplayBelady(*trace, capacity.bytes)});
        continue;
      }
      absl::StatusOr<std::unique_ptr<CullPolicy>> policy =
          MakeCullPolicy(name, capacity.bytes);
      if (!policy.ok()) return Fail(2, policy.status().message());
      absl::StatusOr<CacheStats> stats = ReplayTrace(*trace, **policy);
      if (!stats.ok()) return Fail(1, stats.status().message());
      results.push_back({name, &capacity, *stats});
    }
  }

  // The share of the LRU-to-MIN gap a result closes, when both were run.
  auto gap_closed = [&results](const Result& r) -> std::optional<double> {
    const Result *lru = nullptr, *min = nullptr;
    for (const Result& o : results) {
      if (o.capacity != r.capacity) continue;
      if (o.policy == "lru") lru = &o;
      if (o.policy == kMinName) min = &o;
    }
    if (lru == nullptr || min == nullptr ||
        lru->stats.misses <= min->stats.misses) {
      return std::nullopt;
    }
    return static_cast<double>(static_cast<int64_t>(lru->stats.misses) -
                               static_cast<int64_t>(r.stats.misses)) /
           static_cast<double>(lru->stats.misses - min->stats.misses);
  };

  const std::string format(TraceFormatName(options->trace.format));
  if (options->json) {
    std::vector<std::string> objects;
    for (const Result& r : results) {
      std::string o = absl::StrCat(
          "{\"trace\": ", JsonString(options->path),
          ", \"format\": ", JsonString(format),
          ", \"policy\": ", JsonString(r.policy),
          ", \"default\": ", r.policy == kDefaultCullPolicy ? "true" : "false",
          ", \"capacity\": ", JsonString(r.capacity->spec),
          ", \"capacity_bytes\": ", r.capacity->bytes,
          ", \"footprint_bytes\": ", trace->footprint_bytes,
          ", \"requests\": ", r.stats.requests,
          ", \"misses\": ", r.stats.misses,
          ", \"miss_ratio\": ", absl::StrFormat("%.6f", r.stats.miss_ratio()),
          ", \"request_bytes\": ", r.stats.request_bytes,
          ", \"miss_bytes\": ", r.stats.miss_bytes, ", \"byte_miss_ratio\": ",
          absl::StrFormat("%.6f", r.stats.byte_miss_ratio()));
      if (std::optional<double> g = gap_closed(r)) {
        absl::StrAppend(
            &o, ", \"lru_min_gap_closed\": ", absl::StrFormat("%.4f", *g));
      }
      objects.push_back(o + "}");
    }
    std::printf("[\n  %s\n]\n", absl::StrJoin(objects, ",\n  ").c_str());
    return 0;
  }
  std::printf(
      "# %s: format %s%s; %lu requests, %lu accesses, %u objects, "
      "footprint %lu B\n",
      options->path.c_str(), format.c_str(),
      trace->num_keys > 0 && (options->trace.format == TraceFormat::kArc ||
                              options->trace.format == TraceFormat::kLirs ||
                              options->trace.format == TraceFormat::kCsv)
          ? absl::StrCat(", granule ", options->trace.granule, " B").c_str()
          : "",
      static_cast<unsigned long>(trace->source_requests),
      static_cast<unsigned long>(trace->accesses.size()), trace->num_keys,
      static_cast<unsigned long>(trace->footprint_bytes));
  std::printf("%-10s %16s  %-8s %10s %10s %11s %16s %11s\n", "capacity",
              "capacity_bytes", "policy", "requests", "misses", "miss_ratio",
              "byte_miss_ratio", "gap_closed");
  for (const Result& r : results) {
    std::optional<double> g = gap_closed(r);
    std::printf("%-10s %16lu  %-8s %10lu %10lu %11.4f %16.4f %11s\n",
                r.capacity->spec.c_str(),
                static_cast<unsigned long>(r.capacity->bytes), r.policy.c_str(),
                static_cast<unsigned long>(r.stats.requests),
                static_cast<unsigned long>(r.stats.misses),
                r.stats.miss_ratio(), r.stats.byte_miss_ratio(),
                g ? absl::StrFormat("%.1f%%", 100 * *g).c_str() : "-");
  }
  return 0;
}

}  // namespace
}  // namespace cachefs

int main(int argc, char** argv) {
  return cachefs::Run(std::vector<std::string>(argv + 1, argv + argc));
}
