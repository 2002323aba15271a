#include "tools/ctl_top.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cachefs/control_socket.h"
#include "io/env.h"
#include "io/json_string.h"

namespace cachefs {
namespace {

std::string Bytes(double n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f %s", n, units[u])
                : absl::StrFormat("%.1f %s", n, units[u]);
}

uint64_t Get(const TopSample& s, const std::string& name) {
  auto it = s.counters.find(name);
  return it == s.counters.end() ? 0 : it->second;
}

uint64_t Delta(const TopSample& before, const TopSample& now,
               const std::string& name) {
  uint64_t a = Get(before, name);
  uint64_t b = Get(now, name);
  return b > a ? b - a : 0;
}

std::string Ratio(uint64_t part, uint64_t whole) {
  if (whole == 0) return "-";
  return absl::StrFormat("%.1f %%", 100.0 * part / whole);
}

absl::StatusOr<TopSample> Sample(const std::string& mountpoint) {
  absl::StatusOr<std::string> reply =
      ControlRequest(mountpoint, "stats --json");
  if (!reply.ok()) return reply.status();
  if (reply->rfind("error: ", 0) == 0) {
    return absl::FailedPreconditionError(reply->substr(7));
  }
  auto members = ParseFlatJsonObject(*reply);
  if (!members.ok()) return members.status();
  TopSample sample;
  sample.at_ns = Env::Default()->MonotonicNanos();
  for (const auto& [name, value] : *members) {
    uint64_t n = 0;
    if (absl::SimpleAtoi(value, &n)) sample.counters[name] = n;
  }
  return sample;
}

// The trace stream, read as it comes, its reads summed by file.
class TraceReads {
 public:
  explicit TraceReads(const std::string& mountpoint) {
    absl::StatusOr<int> fd = ControlConnect(mountpoint, "trace --json");
    if (!fd.ok()) {
      note_ = absl::StrCat("(no trace: ", fd.status().message(), ")");
      return;
    }
    fd_ = *fd;
  }
  ~TraceReads() {
    if (fd_ >= 0) close(fd_);
  }

  // Reads what the stream has until `deadline_ns`.
  void PumpUntil(int64_t deadline_ns) {
    while (fd_ >= 0) {
      const int64_t left = deadline_ns - Env::Default()->MonotonicNanos();
      if (left <= 0) return;
      pollfd p{fd_, POLLIN, 0};
      int ready = poll(&p, 1, static_cast<int>((left + 999999) / 1000000));
      if (ready <= 0) continue;  // timed out (or EINTR): look at the time
      char buf[65536];
      ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) {
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        Close("the daemon ended the trace");
        return;
      }
      pending_.append(buf, n);
      Consume();
    }
  }

  // The reads since the last call.
  absl::flat_hash_map<std::string, FileReads> Take() {
    return std::exchange(files_, {});
  }
  const std::string& note() const { return note_; }

 private:
  void Close(const std::string& why) {
    close(fd_);
    fd_ = -1;
    note_ = absl::StrCat("(no trace: ", why, ")");
  }

  void Consume() {
    size_t start = 0;
    while (true) {
      size_t end = pending_.find('\n', start);
      if (end == std::string::npos) break;
      std::string_view line(pending_.data() + start, end - start);
      start = end + 1;
      if (!header_seen_) {
        if (std::string(line) + "\n" != kControlReplyHeader) {
          Close("the daemon sent no answer");
          return;
        }
        header_seen_ = true;
        continue;
      }
      if (line.rfind("error: ", 0) == 0) {
        Close(std::string(line.substr(7)));
        return;
      }
      Add(line);
    }
    pending_.erase(0, start);
  }

  void Add(std::string_view line) {
    auto members = ParseFlatJsonObject(line);
    if (!members.ok()) return;
    std::string kind, path, detail;
    uint64_t bytes = 0;
    for (const auto& [name, value] : *members) {
      if (name == "kind") kind = value;
      if (name == "path") path = value;
      if (name == "detail") detail = value;
      if (name == "bytes" && !absl::SimpleAtoi(value, &bytes)) bytes = 0;
    }
    if (kind != "read") return;
    FileReads& f = files_[path];
    (detail == "hit" ? f.hit_bytes : f.miss_bytes) += bytes;
  }

  int fd_ = -1;
  bool header_seen_ = false;
  std::string pending_;
  std::string note_;
  absl::flat_hash_map<std::string, FileReads> files_;
};

}  // namespace

std::string RenderTop(const std::string& mountpoint, const TopSample& before,
                      const TopSample& now,
                      const absl::flat_hash_map<std::string, FileReads>& files,
                      const std::string& trace_note, size_t max_files) {
  const double seconds =
      std::max(1e-3, static_cast<double>(now.at_ns - before.at_ns) / 1e9);
  const uint64_t from_cache = Delta(before, now, "bytes_read_from_cache");
  const uint64_t from_origin = Delta(before, now, "bytes_read_from_origin");
  const uint64_t all_cache = Get(now, "bytes_read_from_cache");
  const uint64_t all_origin = Get(now, "bytes_read_from_origin");
  const uint64_t fetches = Delta(before, now, "origin_fetches");
  const uint64_t fetch_ns = Delta(before, now, "origin_fetch_ns");
  const uint64_t all_fetches = Get(now, "origin_fetches");
  std::string out =
      absl::StrFormat("cachefs top: %s (over %.1f s)\n", mountpoint, seconds);
  absl::StrAppendFormat(&out,
                        "hit ratio       %s of bytes read (%s since mount)\n",
                        Ratio(from_cache, from_cache + from_origin),
                        Ratio(all_cache, all_cache + all_origin));
  absl::StrAppendFormat(&out, "from cache      %s/s\n",
                        Bytes(from_cache / seconds));
  absl::StrAppendFormat(&out, "from origin     %s/s\n",
                        Bytes(from_origin / seconds));
  if (fetches != 0) {
    absl::StrAppendFormat(&out,
                          "origin latency  %.2f ms per granule (%d fetches)\n",
                          fetch_ns / 1e6 / fetches, fetches);
  } else if (all_fetches != 0) {
    absl::StrAppendFormat(
        &out, "origin latency  - (%.2f ms per granule since mount)\n",
        Get(now, "origin_fetch_ns") / 1e6 / all_fetches);
  } else {
    out += "origin latency  -\n";
  }
  absl::StrAppendFormat(
      &out, "culls           %d objects, %s (%d since mount)\n",
      Delta(before, now, "culls"), Bytes(Delta(before, now, "bytes_culled")),
      Get(now, "culls"));
  const uint64_t stored = Get(now, "bytes_stored");
  const uint64_t limit = Get(now, "cache_limit");
  absl::StrAppendFormat(&out, "stored          %s in %d objects", Bytes(stored),
                        Get(now, "objects_stored"));
  if (limit != 0) {
    absl::StrAppendFormat(&out, ", limit %s (%s)", Bytes(limit),
                          Ratio(stored, limit));
  } else {
    out += ", no limit but the disk's free space";
  }
  out += "\n";
  if (uint64_t errors =
          Get(now, "cache_io_errors") + Get(now, "checksum_errors")) {
    absl::StrAppendFormat(&out,
                          "cache faults    %d (I/O errors and checksum "
                          "mismatches since mount)\n",
                          errors);
  }
  out += "\nhottest files (bytes read in the last interval)\n";
  if (!trace_note.empty()) return out + "  " + trace_note + "\n";
  std::vector<std::pair<std::string, FileReads>> sorted(files.begin(),
                                                        files.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    uint64_t x = a.second.hit_bytes + a.second.miss_bytes;
    uint64_t y = b.second.hit_bytes + b.second.miss_bytes;
    return x != y ? x > y : a.first < b.first;
  });
  if (sorted.empty()) out += "  (no reads)\n";
  for (size_t i = 0; i < sorted.size() && i < max_files; ++i) {
    const FileReads& f = sorted[i].second;
    absl::StrAppendFormat(&out, "  %10s  %6s hit  %s\n",
                          Bytes(f.hit_bytes + f.miss_bytes),
                          Ratio(f.hit_bytes, f.hit_bytes + f.miss_bytes),
                          sorted[i].first.empty() ? "/" : sorted[i].first);
  }
  return out;
}

int RunTop(const std::string& mountpoint, int count) {
  const bool tty = isatty(STDOUT_FILENO) != 0;
  absl::StatusOr<TopSample> before = Sample(mountpoint);
  if (!before.ok()) {
    std::fprintf(stderr, "cachefs-ctl: %s\n",
                 std::string(before.status().message()).c_str());
    return 1;
  }
  TraceReads trace(mountpoint);
  for (int shown = 0; count <= 0 || shown < count; ++shown) {
    trace.PumpUntil(before->at_ns + 1000000000);
    absl::StatusOr<TopSample> now = Sample(mountpoint);
    if (!now.ok()) {
      std::fprintf(stderr, "cachefs-ctl: %s\n",
                   std::string(now.status().message()).c_str());
      return 1;
    }
    std::string report = RenderTop(mountpoint, *before, *now, trace.Take(),
                                   trace.note(), tty ? 15 : 10);
    if (tty) {
      // Home, clear the screen, then the report.
      std::fputs("\033[H\033[2J", stdout);
    } else if (shown > 0) {
      std::fputs("\n", stdout);
    }
    std::fputs(report.c_str(), stdout);
    std::fflush(stdout);
    before = std::move(now);
  }
  return 0;
}

}  // namespace cachefs
