#include "cachefs/control_reply.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cachefs/control_commands.h"
#include "cachefs/control_prefetch.h"
#include "io/json_string.h"

namespace cachefs {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;  // raw JSON

std::string Json(const Fields& fields) {
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", JsonString(fields[i].first), ": ",
                    fields[i].second);
  }
  return out + "}\n";
}

std::string StatsReply(bool json, const MountFacts& facts, Cache& cache,
                       Culler* culler) {
  auto counters = cache.stats().Snapshot();
  if (facts.origin_object != nullptr) {
    for (auto& counter : facts.origin_object->stats().Snapshot()) {
      counters.push_back(std::move(counter));
    }
  }
  Cache::Usage usage = cache.RecentUsage();
  counters.push_back({"objects_stored", usage.objects});
  counters.push_back({"bytes_stored", usage.bytes});
  if (culler != nullptr) {
    counters.push_back({"cache_size", culler->limits().cache_size});
    // The smallest cache_size of the mounts sharing the directory.
    counters.push_back({"cache_limit", culler->cache_limit()});
    counters.push_back({"bytes_counted", culler->stored_bytes()});
  }
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

std::string StatusReply(bool json, const MountFacts& facts, Cache& cache,
                        Culler* culler, CacheFs* fs) {
  const bool origin_up = fs == nullptr || fs->origin_health().up();
  const std::string origin_state =
      fs != nullptr ? fs->origin_health().Describe() : "unknown";
  const CacheFs::StoreState store =
      fs != nullptr ? fs->store_state() : CacheFs::StoreState();
  const std::string store_line =
      absl::StrCat(store.names, " names, ", store.listings, " listings",
                   store.loaded ? "" : " (loading)");
  Cache::Usage usage = cache.RecentUsage();
  double uptime = (cache.env()->MonotonicNanos() - facts.started_ns) / 1e9;
  std::string policy = culler != nullptr ? culler->policy_name() : "none";
  uint64_t limit = culler != nullptr ? culler->cache_limit() : 0;
  if (json) {
    return Json(
        {{"origin", JsonString(facts.origin)},
         {"mountpoint", JsonString(facts.mountpoint)},
         {"cache_dir", JsonString(facts.cache_dir)},
         {"volume", JsonString(facts.volume_key)},
         {"options", JsonString(facts.options)},
         {"pid", absl::StrCat(getpid())},
         {"origin_up", origin_up ? "true" : "false"},
         {"origin_state", JsonString(origin_state)},
         {"metadata_names", absl::StrCat(store.names)},
         {"metadata_listings", absl::StrCat(store.listings)},
         {"metadata_loaded", store.loaded ? "true" : "false"},
         {"uptime_seconds", absl::StrFormat("%.1f", uptime)},
         {"direct_io", cache.direct_io() ? "true" : "false"},
         {"withdrawn", cache.withdrawn() ? "true" : "false"},
         {"objects_stored", absl::StrCat(usage.objects)},
         {"bytes_stored", absl::StrCat(usage.bytes)},
         {"cache_size",
          absl::StrCat(culler != nullptr ? culler->limits().cache_size : 0)},
         {"cache_limit", absl::StrCat(limit)},
         {"cull_policy", JsonString(policy)},
         {"pins",
          JsonString(facts.memory_status ? facts.memory_status() : "")}});
  }
  return absl::StrFormat(
      "origin:       %s\norigin state: %s\nmetadata:     %s\n"
      "mount point:  %s\n"
      "cache:        %s\nvolume:       "
      "%s\noptions:      %s\npid:          %d\nuptime:       %.1f s\n"
      "cache I/O:    %s\nstored:       %d objects, %d bytes\n"
      "limit:        %s\ncull policy:  %s\npins:         %s\n",
      facts.origin, origin_state, store_line, facts.mountpoint, facts.cache_dir,
      facts.volume_key, facts.options, getpid(), uptime,
      cache.withdrawn()
          ? "withdrawn (the cache directory is gone or read-only: every read "
            "goes to the origin)"
      : cache.direct_io() ? "O_DIRECT"
                          : "buffered (no O_DIRECT)",
      usage.objects, usage.bytes,
      limit == 0 ? std::string("free space of the cache filesystem")
      : culler->limits().cache_size == limit
          ? absl::StrCat(limit, " bytes")
          : absl::StrCat(limit,
                         " bytes (the smallest cache_size of the "
                         "mounts sharing the cache directory)"),
      policy, facts.memory_status ? facts.memory_status() : "none");
}

std::string LsReply(bool json, Volume& volume, Culler* culler) {
  if (culler == nullptr) return "error: this mount keeps no cull index\n";
  std::vector<Culler::Entry> entries = culler->Entries();
  std::sort(entries.begin(), entries.end(),
            [](const Culler::Entry& a, const Culler::Entry& b) {
              return a.last_used > b.last_used;
            });
  std::string out = json ? "[" : "";
  bool first = true;
  for (const Culler::Entry& e : entries) {
    absl::StatusOr<Volume::ObjectInfo> info = volume.DescribeObject(e.hash);
    if (!info.ok()) continue;  // culled or replaced meanwhile
    const double percent =
        info->granules == 0 ? 100.0
                            : 100.0 * info->granules_present / info->granules;
    char when[32] = "-";
    time_t t = static_cast<time_t>(e.last_used);
    struct tm tm;
    if (e.last_used > 0 && localtime_r(&t, &tm) != nullptr) {
      strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    }
    if (json) {
      absl::StrAppend(&out, first ? "\n  " : ",\n  ",
                      Json({{"path", JsonString(info->file_key)},
                            {"bytes", absl::StrCat(info->bytes)},
                            {"size", absl::StrCat(info->object_size)},
                            {"percent_present",
                             absl::StrFormat("%.1f", percent)},
                            {"last_access", absl::StrCat(e.last_used)}}));
      out.pop_back();  // Json() ends with a newline
    } else {
      absl::StrAppendFormat(&out, "%12d %6.1f%% %s  %s\n", info->bytes,
                            percent, when, info->file_key);
    }
    first = false;
  }
  if (json) out += first ? "]\n" : "\n]\n";
  return out;
}

std::string CullReply(const std::string& to, Culler* culler) {
  if (culler == nullptr) return "error: this mount does not cull\n";
  uint64_t target;
  if (to.empty()) {
    const uint64_t limit = culler->cache_limit();
    if (limit == 0) {
      return "error: no -o cache_size on this mount: give --to BYTES\n";
    }
    const CullLimits& l = culler->limits();
    target = limit - limit / 100 * static_cast<uint64_t>(l.brun - l.bstop);
  } else {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(to);
    if (!bytes.ok()) {
      return absl::StrCat("error: ", std::string(bytes.status().message()),
                          "\n");
    }
    target = *bytes;
  }
  const uint64_t before = culler->stored_bytes();
  Culler::CullResult r = culler->CullTo(target);
  return absl::StrFormat(
      "culled %d objects and %d granules of open files, %d bytes; stored "
      "%d -> %d bytes (target %d)\n",
      r.objects, r.granules, r.bytes, before, culler->stored_bytes(), target);
}

// The cached files at or below `dir` ("" is the root), by their records.
std::vector<std::string> CachedKeysBelow(const std::string& dir,
                                         Volume& volume, Culler* culler) {
  std::vector<std::string> keys;
  if (culler == nullptr) return keys;
  const std::string prefix = dir.empty() ? "" : dir + "/";
  for (const Culler::Entry& e : culler->Entries()) {
    absl::StatusOr<Volume::ObjectInfo> info = volume.DescribeObject(e.hash);
    if (info.ok() && info->file_key.compare(0, prefix.size(), prefix) == 0) {
      keys.push_back(info->file_key);
    }
  }
  return keys;
}

std::string InvalidateReply(const ControlCall& call, Volume& volume,
                            Culler* culler, CacheFs& fs) {
  std::vector<std::string> keys;
  for (const std::string& path : call.paths) {
    if (!path.empty()) keys.push_back(path);
    if (call.recursive) {
      fs.DropFetchedAhead(path);
      std::vector<std::string> below = CachedKeysBelow(path, volume, culler);
      keys.insert(keys.end(), below.begin(), below.end());
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const size_t dropped = fs.DropCachedData(keys);
  if (call.json) {
    return Json({{"files_named", absl::StrCat(keys.size())},
                 {"files_dropped", absl::StrCat(dropped)}});
  }
  return absl::StrFormat("dropped the cached data of %d of %d %s\n", dropped,
                         keys.size(), keys.size() == 1 ? "file" : "files");
}

// At most 64 marks: O (all of the marked granules present), o (some), .
std::string MapPicture(const std::vector<bool>& present) {
  const size_t per_mark = std::max<size_t>(1, (present.size() + 63) / 64);
  std::string out;
  for (size_t g = 0; g < present.size(); g += per_mark) {
    size_t have = 0, n = 0;
    for (; n < per_mark && g + n < present.size(); ++n) have += present[g + n];
    out.push_back(have == n ? 'O' : have > 0 ? 'o' : '.');
  }
  return out;
}

std::string MapReply(const ControlCall& call, Volume& volume) {
  std::string out;
  std::vector<std::string> errors;
  if (call.json) out = "[";
  bool first = true;
  for (const std::string& path : call.paths) {
    absl::StatusOr<Volume::ObjectInfo> info = volume.DescribeObjectOf(path);
    if (!info.ok()) {
      if (!call.json) {
        return absl::StrCat("error: ", std::string(info.status().message()),
                            "\n");
      }
      absl::StrAppend(&out, first ? "\n  " : ",\n  ",
                      Json({{"path", JsonString(path)},
                            {"error", JsonString(std::string(
                                          info.status().message()))}}));
      out.pop_back();
      first = false;
      continue;
    }
    const uint64_t granule = uint64_t{1} << info->granule_shift;
    const double percent =
        info->granules == 0 ? 100.0
                            : 100.0 * info->granules_present / info->granules;
    // Shown as it is when it is text (it is, from a POSIX origin).
    const bool text = std::all_of(info->aux.begin(), info->aux.end(),
                                  [](char c) { return c >= 0x20 && c < 0x7f; });
    const std::string aux =
        text ? info->aux : "hex " + absl::BytesToHexString(info->aux);
    const char* state = info->clean ? "clean" : "dirty";
    if (call.json) {
      std::string runs = "[";
      for (size_t g = 0; g < info->present.size();) {
        if (!info->present[g]) {
          ++g;
          continue;
        }
        size_t end = g;
        while (end + 1 < info->present.size() && info->present[end + 1]) ++end;
        absl::StrAppend(&runs, runs.size() > 1 ? ", " : "", "[", g, ", ", end,
                        "]");
        g = end + 1;
      }
      runs += "]";
      absl::StrAppend(
          &out, first ? "\n  " : ",\n  ",
          Json({{"path", JsonString(path)},
                {"size", absl::StrCat(info->object_size)},
                {"granule_bytes", absl::StrCat(granule)},
                {"granules", absl::StrCat(info->granules)},
                {"granules_present", absl::StrCat(info->granules_present)},
                {"bytes", absl::StrCat(info->bytes)},
                {"state", JsonString(state)},
                {"in_use", info->in_use ? "true" : "false"},
                {"aux", JsonString(aux)},
                {"backing", JsonString(info->backing)},
                {"present_runs", runs}}));
      out.pop_back();
    } else {
      absl::StrAppendFormat(
          &out,
          "%s\n  size %d bytes in %d granules of %d KiB: %d present "
          "(%.1f%%), %d bytes on disk\n  state %s%s\n  aux %s\n  backing %s\n"
          "  [%s]\n",
          path, info->object_size, info->granules, granule >> 10,
          info->granules_present, percent, info->bytes, state,
          info->in_use ? ", in use (the map shown is the live one)" : "", aux,
          info->backing, MapPicture(info->present));
    }
    first = false;
  }
  if (call.json) out += first ? "]\n" : "\n]\n";
  return out;
}

}  // namespace

std::string ControlReply(const std::string& request, const MountFacts& facts,
                         Cache& cache, Volume* volume, Culler* culler,
                         CacheFs* fs, Prefetcher* prefetcher, PinSet* pins,
                         HotSets* hotsets) {
  absl::StatusOr<ControlCall> call = DecodeControlCall(request);
  if (!call.ok()) {
    return absl::StrCat("error: ", std::string(call.status().message()), "\n");
  }
  const std::string& name = call->command;
  if (name == "stats") return StatsReply(call->json, facts, cache, culler);
  if (name == "status") {
    return StatusReply(call->json, facts, cache, culler, fs);
  }
  if (name == "ls" && volume != nullptr) {
    return LsReply(call->json, *volume, culler);
  }
  if (name == "cull") {
    std::string reply = CullReply(call->to, culler);
    cache.ForgetUsage();  // what the cull freed shows at once
    return reply;
  }
  if (name == "map" && volume != nullptr) return MapReply(*call, *volume);
  if (name == "invalidate" && volume != nullptr && fs != nullptr) {
    std::string reply = InvalidateReply(*call, *volume, culler, *fs);
    cache.ForgetUsage();
    return reply;
  }
  if ((name == "pin" || name == "unpin" || name == "pins" ||
       name == "reload") &&
      pins != nullptr) {
    return PinsReply(*call, *pins);
  }
  if (name == "hotsets" && hotsets != nullptr) {
    return HotSetsReply(*call, *hotsets);
  }
  if (name == "jobs" && prefetcher != nullptr) {
    return JobsReply(*call, *prefetcher);
  }
  return absl::StrCat("error: this mount does not answer ", name, "\n");
}

}  // namespace cachefs
