#include "cachefs/control_prefetch.h"

#include <time.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "io/json_string.h"

namespace cachefs {
namespace {

std::string Size(uint64_t bytes) {
  if (bytes < (1 << 10)) return absl::StrCat(bytes, " B");
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (uint64_t{1} << 30)) {
    return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  }
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

std::string Paths(const PrefetchJob& job) {
  std::vector<std::string> shown;
  for (const std::string& p : job.request.paths) {
    shown.push_back(p.empty() ? "." : p);
  }
  return absl::StrJoin(shown, " ");
}

double Rate(const PrefetchJob& job) {
  return job.seconds > 0 ? job.bytes_done / job.seconds : 0;
}

std::string JobJson(const PrefetchJob& job) {
  std::string paths = "[";
  for (size_t i = 0; i < job.request.paths.size(); ++i) {
    absl::StrAppend(&paths, i ? ", " : "",
                    JsonString(job.request.paths[i].empty()
                                   ? "."
                                   : job.request.paths[i]));
  }
  paths += "]";
  std::string errors = "[";
  for (size_t i = 0; i < job.errors.size(); ++i) {
    absl::StrAppend(&errors, i ? ", " : "", "{\"path\": ",
                    JsonString(job.errors[i].first), ", \"error\": ",
                    JsonString(job.errors[i].second), "}");
  }
  errors += "]";
  return absl::StrFormat(
      "{\"job\": %d, \"state\": %s, \"meta_only\": %s, \"recursive\": %s, "
      "\"paths\": %s, \"dirs_listed\": %d, \"files_total\": %d, "
      "\"files_done\": %d, \"files_failed\": %d, \"bytes_total\": %d, "
      "\"bytes_done\": %d, \"bytes_fetched\": %d, \"seconds\": %.3f, "
      "\"errors\": %s}",
      job.id, JsonString(PrefetchStateName(job.state)),
      job.request.meta_only ? "true" : "false",
      job.request.recursive ? "true" : "false", paths, job.dirs_listed,
      job.files_total, job.files_done, job.files_failed, job.bytes_total,
      job.bytes_done, job.bytes_fetched, job.seconds, errors);
}

std::string Summary(const PrefetchJob& job) {
  std::string out;
  const char* how =
      job.state == PrefetchJob::State::kCancelled ? "cancelled: " : "";
  if (job.request.meta_only) {
    out = absl::StrFormat(
        "%swalked %d directories and %d files (%s) in %.2f s\n", how,
        job.dirs_listed, job.files_total, Size(job.bytes_total), job.seconds);
  } else {
    out = absl::StrFormat(
        "%sprefetched %d of %d files, %s of %s in %.2f s (%s/s); %s "
        "fetched from the origin, the rest was cached\n",
        how, job.files_done - job.files_failed, job.files_total,
        Size(job.bytes_done), Size(job.bytes_total), job.seconds,
        Size(static_cast<uint64_t>(Rate(job))), Size(job.bytes_fetched));
  }
  if (job.files_failed > 0) {
    absl::StrAppendFormat(&out, "%d failed:\n", job.files_failed);
    for (const auto& [path, why] : job.errors) {
      absl::StrAppend(&out, "  ", path, ": ", why, "\n");
    }
    if (job.errors.size() < job.files_failed) {
      absl::StrAppendFormat(&out, "  (and %d more)\n",
                            job.files_failed - job.errors.size());
    }
  }
  return out;
}

}  // namespace

std::string PrefetchProgressLine(const PrefetchJob& job) {
  return absl::StrFormat("progress %s %d %d %d %d %d %d %.3f\n",
                         PrefetchStateName(job.state), job.files_done,
                         job.files_total, job.bytes_done, job.bytes_total,
                         job.bytes_fetched, job.files_failed, job.seconds);
}

void StreamPrefetch(const ControlCall& call, Prefetcher& prefetcher,
                    ControlStream& stream) {
  PrefetchRequest request;
  request.paths = call.paths;
  request.recursive = call.recursive;
  request.meta_only = call.meta_only;
  absl::StatusOr<uint64_t> id = prefetcher.Start(std::move(request));
  if (!id.ok()) {
    stream.Write(absl::StrCat("error: ", id.status().message(), "\n"));
    return;
  }
  if (call.background) {
    stream.Write(call.json ? absl::StrCat("{\"job\": ", *id, "}\n")
                           : absl::StrCat("started prefetch job ", *id,
                                          " (see cachefs-ctl jobs)\n"));
    return;
  }
  // Bounded by the job and by the client: each turn waits at most this
  // long and looks whether the client is still there (a client gone
  // cancels the job within a turn); every few turns it reports.
  constexpr absl::Duration kTurn = absl::Milliseconds(50);
  constexpr int kTurnsPerReport = 5;
  for (int turn = 1;; ++turn) {
    std::optional<PrefetchJob> job = prefetcher.Wait(*id, kTurn);
    if (!job.has_value()) {
      stream.Write("error: the prefetch job is gone\n");
      return;
    }
    if (job->ended()) {
      stream.Write(absl::StrCat(PrefetchProgressLine(*job), kPrefetchEndLine,
                                call.json ? JobJson(*job) + "\n"
                                          : Summary(*job)));
      return;
    }
    if (!stream.open() || (turn % kTurnsPerReport == 0 &&
                           !stream.Write(PrefetchProgressLine(*job)))) {
      prefetcher.Cancel(*id);
      prefetcher.Wait(*id, absl::Seconds(30));
      return;
    }
  }
}

std::string JobsReply(const ControlCall& call, const Prefetcher& prefetcher) {
  std::vector<PrefetchJob> jobs = prefetcher.Jobs();
  if (call.json) {
    std::string out = "[";
    for (size_t i = 0; i < jobs.size(); ++i) {
      absl::StrAppend(&out, i ? ",\n  " : "\n  ", JobJson(jobs[i]));
    }
    return out + (jobs.empty() ? "]\n" : "\n]\n");
  }
  std::string out;
  if (!jobs.empty()) {
    out = absl::StrFormat("%-5s %-9s %-15s %-25s %-12s %s\n", "JOB", "STATE",
                          "FILES", "BYTES", "RATE", "PATHS");
  }
  for (const PrefetchJob& job : jobs) {
    absl::StrAppendFormat(
        &out, "%-5d %-9s %-15s %-25s %-12s %s%s\n", job.id,
        PrefetchStateName(job.state),
        absl::StrCat(job.files_done, "/", job.files_total),
        absl::StrCat(Size(job.bytes_done), "/", Size(job.bytes_total)),
        absl::StrCat(Size(static_cast<uint64_t>(Rate(job))), "/s"),
        Paths(job), job.request.meta_only ? " (meta only)" : "");
  }
  return out;
}

namespace {

const char* PinStateName(PinSet::PinnedFile::State state) {
  switch (state) {
    case PinSet::PinnedFile::State::kFetching:
      return "fetching";
    case PinSet::PinnedFile::State::kOnDisk:
      return "on disk";
    case PinSet::PinnedFile::State::kInMemory:
      return "in memory";
    case PinSet::PinnedFile::State::kReleased:
      return "released";
    case PinSet::PinnedFile::State::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string PinsList(bool json, PinSet& pins) {
  const std::vector<PinSet::Rule> rules = pins.Rules();
  const std::vector<PinSet::Rule> unmatched = pins.Unmatched();
  const std::vector<PinSet::PinnedFile> files = pins.Files();
  uint64_t on_disk = 0, in_memory = 0;
  for (const auto& f : files) {
    if (f.state != PinSet::PinnedFile::State::kFetching &&
        f.state != PinSet::PinnedFile::State::kFailed) {
      on_disk += f.size;
    }
    in_memory += f.memory;
  }
  if (json) {
    auto rule_list = [](const std::vector<PinSet::Rule>& list) {
      std::string out = "[";
      for (size_t i = 0; i < list.size(); ++i) {
        absl::StrAppend(&out, i ? ", " : "", "{\"rule\": ",
                        JsonString(list[i].pattern), ", \"source\": ",
                        JsonString(list[i].source), "}");
      }
      return out + "]";
    };
    std::string out = absl::StrCat(
        "{\"pinned_files\": ", files.size(),
        ", \"pinned_bytes_disk\": ", on_disk,
        ", \"pinned_bytes_memory\": ", in_memory, ", \"rules\": ",
        rule_list(rules), ", \"unmatched\": ", rule_list(unmatched),
        ", \"files\": [");
    for (size_t i = 0; i < files.size(); ++i) {
      const auto& f = files[i];
      absl::StrAppend(&out, i ? ",\n  " : "\n  ", "{\"path\": ",
                      JsonString(f.path), ", \"state\": ",
                      JsonString(PinStateName(f.state)), ", \"size\": ",
                      f.size, ", \"rule\": ", JsonString(f.rule),
                      ", \"error\": ", JsonString(f.error), "}");
    }
    return out + (files.empty() ? "]}\n" : "\n]}\n");
  }
  std::string out;
  if (rules.empty()) return "no pins\n";
  absl::StrAppendFormat(&out, "%d rules pin %d files, %s on disk, %s in memory\n",
                        rules.size(), files.size(), Size(on_disk),
                        Size(in_memory));
  for (const auto& r : unmatched) {
    absl::StrAppend(&out, "warning: ", r.pattern, " (", r.source,
                    ") matches no file\n");
  }
  for (const auto& f : files) {
    absl::StrAppendFormat(&out, "%-9s %12s  %s%s\n", PinStateName(f.state),
                          Size(f.size), f.path,
                          f.error.empty() ? "" : "  (" + f.error + ")");
  }
  return out;
}

}  // namespace

std::string PinsReply(const ControlCall& call, PinSet& pins) {
  if (call.command == "pins") return PinsList(call.json, pins);
  if (call.command == "reload") {
    absl::Status reloaded = pins.Reload();
    if (!reloaded.ok()) return absl::StrCat("error: ", reloaded.message(), "\n");
    return absl::StrFormat("reloaded: %d rules\n", pins.Rules().size());
  }
  if (call.command == "pin") {
    absl::StatusOr<size_t> added = pins.Pin(call.paths, call.recursive);
    if (!added.ok()) return absl::StrCat("error: ", added.status().message(), "\n");
    return absl::StrFormat(
        "pinned %d new %s; fetching in the background (see cachefs-ctl "
        "pins)\n",
        *added, *added == 1 ? "path" : "paths");
  }
  if (call.command == "unpin") {
    const size_t removed = pins.Unpin(call.paths, call.recursive);
    if (removed == 0) {
      return "error: no cachefs-ctl pin rule names these paths (see "
             "cachefs-ctl pins)\n";
    }
    return absl::StrFormat("unpinned %d %s\n", removed,
                           removed == 1 ? "rule" : "rules");
  }
  return absl::StrCat("error: not a pin command: ", call.command, "\n");
}

std::string HotSetsReply(const ControlCall& call, HotSets& hotsets) {
  if (!call.forget.empty()) {
    if (!hotsets.Forget(call.forget)) {
      return absl::StrCat("error: no hot set is learned for ", call.forget,
                          " (see cachefs-ctl hotsets)\n");
    }
    return absl::StrCat("forgot the hot set of ", call.forget, "\n");
  }
  const std::vector<HotSets::Program> programs = hotsets.Programs();
  auto when = [](int64_t t) -> std::string {
    if (t == 0) return "never";
    char out[32];
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    if (localtime_r(&tt, &tm) == nullptr) return "?";
    strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%S", &tm);
    return out;
  };
  if (call.json) {
    std::string out = "[";
    for (size_t i = 0; i < programs.size(); ++i) {
      const auto& p = programs[i];
      absl::StrAppend(
          &out, i ? ",\n  " : "\n  ", "{\"program\": ", JsonString(p.name),
          ", \"files\": ", p.files, ", \"bytes\": ", p.bytes,
          ", \"learned\": ", p.learned, ", \"last_replay\": ", p.last_replay,
          ", \"replays\": ", p.replays, ", \"hits\": ", p.hits, "}");
    }
    return out + (programs.empty() ? "]\n" : "\n]\n");
  }
  if (programs.empty()) return "no hot sets learned\n";
  std::string out;
  for (const auto& p : programs) {
    absl::StrAppendFormat(
        &out,
        "%s\n  %d files, %s; learned %s; replayed %d times, last %s; %d "
        "hits\n",
        p.name, p.files, Size(p.bytes), when(p.learned), p.replays,
        when(p.last_replay), p.hits);
  }
  return out;
}

}  // namespace cachefs
