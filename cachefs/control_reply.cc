#include "cachefs/control_reply.h"

#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cachefs {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

using Fields = std::vector<std::pair<std::string, std::string>>;  // raw JSON

std::string Json(const Fields& fields) {
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", JsonString(fields[i].first), ": ",
                    fields[i].second);
  }
  return out + "}\n";
}

std::string StatsReply(bool json, Cache& cache) {
  auto counters = cache.stats().Snapshot();
  Cache::Usage usage = cache.ScanUsage();
  counters.push_back({"objects_stored", usage.objects});
  counters.push_back({"bytes_stored", usage.bytes});
  if (json) {
    Fields fields;
    for (const auto& [name, value] : counters) {
      fields.push_back({name, absl::StrCat(value)});
    }
    return Json(fields);
  }
  std::string out;
  for (const auto& [name, value] : counters) {
    absl::StrAppendFormat(&out, "%-28s %20d\n", name, value);
  }
  return out;
}

std::string StatusReply(bool json, const MountFacts& facts, Cache& cache) {
  Cache::Usage usage = cache.ScanUsage();
  double uptime = (cache.env()->MonotonicNanos() - facts.started_ns) / 1e9;
  if (json) {
    return Json({{"origin", JsonString(facts.origin)},
                 {"mountpoint", JsonString(facts.mountpoint)},
                 {"cache_dir", JsonString(facts.cache_dir)},
                 {"volume", JsonString(facts.volume_key)},
                 {"options", JsonString(facts.options)},
                 {"pid", absl::StrCat(getpid())},
                 {"uptime_seconds", absl::StrFormat("%.1f", uptime)},
                 {"direct_io", cache.direct_io() ? "true" : "false"},
                 {"objects_stored", absl::StrCat(usage.objects)},
                 {"bytes_stored", absl::StrCat(usage.bytes)}});
  }
  return absl::StrFormat(
      "origin:       %s\nmount point:  %s\ncache:        %s\nvolume:       "
      "%s\noptions:      %s\npid:          %d\nuptime:       %.1f s\n"
      "cache I/O:    %s\nstored:       %d objects, %d bytes\n",
      facts.origin, facts.mountpoint, facts.cache_dir, facts.volume_key,
      facts.options, getpid(), uptime,
      cache.direct_io() ? "O_DIRECT" : "buffered (no O_DIRECT)", usage.objects,
      usage.bytes);
}

}  // namespace

std::string ControlReply(const std::string& request, const MountFacts& facts,
                         Cache& cache) {
  if (request == "stats") return StatsReply(false, cache);
  if (request == "stats --json") return StatsReply(true, cache);
  if (request == "status") return StatusReply(false, facts, cache);
  if (request == "status --json") return StatusReply(true, facts, cache);
  return "error: unknown request \"" + request + "\"\n";
}

}  // namespace cachefs
