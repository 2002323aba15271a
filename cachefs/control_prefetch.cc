#include "cachefs/control_prefetch.h"

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

}  // namespace cachefs
