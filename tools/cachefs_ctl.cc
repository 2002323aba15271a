// cachefs-ctl: talks to the cachefs daemon behind a mount point. Its
// commands, their arguments and its usage text come from the control
// command table (cachefs/control_commands.h).

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cachefs/control_commands.h"
#include "cachefs/control_prefetch.h"
#include "cachefs/control_socket.h"
#include "cookie/cache_check.h"
#include "io/env.h"
#include "io/json_string.h"
#include "netfs/mount_table.h"
#include "tools/ctl_top.h"

namespace cachefs {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "cachefs-ctl: %s\n", message.c_str());
  return 1;
}

// `path` made absolute and its "." and ".." resolved by name (it need not
// exist: a file gone from the origin may still be cached).
std::string Lexical(const std::string& path) {
  std::string absolute = path;
  if (absolute.empty() || absolute[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
    absolute = std::string(cwd) + "/" + path;
  }
  std::vector<std::string> parts;
  for (const std::string& part : std::vector<std::string>(
           absl::StrSplit(absolute, '/', absl::SkipEmpty()))) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const std::string& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

// The key of `path` inside the mount at `mount` ("" for its root): by
// its real path when it exists, else by name.
bool KeyOf(const std::string& path, const std::string& mount,
           std::string* key) {
  char real[PATH_MAX];
  std::string resolved =
      realpath(path.c_str(), real) != nullptr ? real : Lexical(path);
  if (resolved == mount) {
    key->clear();
    return true;
  }
  if (resolved.compare(0, mount.size() + 1, mount + "/") != 0) return false;
  *key = resolved.substr(mount.size() + 1);
  return true;
}

// `cachefs-ctl check CACHEDIR`: exits 1 if problems are left.
int Check(const std::string& dir, bool repair, bool quick, bool json) {
  absl::StatusOr<CacheCheckReport> report =
      CheckCacheDirectory(Env::Default(), dir, repair, !quick);
  if (!report.ok()) return Fail(std::string(report.status().message()));
  size_t left = 0;
  for (const auto& p : report->problems) left += !p.removed;
  if (json) {
    std::printf(
        "{\"volumes\": %llu, \"objects\": %llu, \"clean_objects\": "
        "%llu, \"bytes\": %llu, \"problems\": [",
        static_cast<unsigned long long>(report->volumes),
        static_cast<unsigned long long>(report->objects),
        static_cast<unsigned long long>(report->clean_objects),
        static_cast<unsigned long long>(report->bytes));
    for (size_t i = 0; i < report->problems.size(); ++i) {
      const auto& p = report->problems[i];
      std::printf(
          "%s\n  {\"path\": %s, \"kind\": %s, \"detail\": %s, "
          "\"removed\": %s}",
          i ? "," : "", JsonString(p.path).c_str(), JsonString(p.kind).c_str(),
          JsonString(p.detail).c_str(), p.removed ? "true" : "false");
    }
    std::printf("%s]}\n", report->problems.empty() ? "" : "\n");
  } else {
    for (const auto& p : report->problems) {
      std::printf("%s: %s: %s%s\n", p.path.c_str(), p.kind.c_str(),
                  p.detail.c_str(), p.removed ? " (removed)" : "");
    }
    std::printf(
        "%llu volumes, %llu objects (%llu clean), %llu bytes; "
        "%zu problems, %zu left\n",
        static_cast<unsigned long long>(report->volumes),
        static_cast<unsigned long long>(report->objects),
        static_cast<unsigned long long>(report->clean_objects),
        static_cast<unsigned long long>(report->bytes), report->problems.size(),
        left);
  }
  return left == 0 ? 0 : 1;
}

// A byte count for people.
std::string Human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof(out), u == 0 ? "%.0f %s" : "%.1f %s", bytes,
                units[u]);
  return out;
}

// One progress line of the daemon (control_prefetch.h), drawn as a bar.
std::string ProgressBar(const std::string& line) {
  std::vector<std::string> f = absl::StrSplit(line, ' ');
  uint64_t files_done, files_total, bytes_done, bytes_total, failed;
  double seconds;
  if (f.size() != 9 || !absl::SimpleAtoi(f[2], &files_done) ||
      !absl::SimpleAtoi(f[3], &files_total) ||
      !absl::SimpleAtoi(f[4], &bytes_done) ||
      !absl::SimpleAtoi(f[5], &bytes_total) ||
      !absl::SimpleAtoi(f[7], &failed) || !absl::SimpleAtod(f[8], &seconds)) {
    return "";
  }
  if (f[1] == "walking") {
    char out[128];
    std::snprintf(out, sizeof(out), "walking: %llu files, %s so far",
                  static_cast<unsigned long long>(files_total),
                  Human(static_cast<double>(bytes_total)).c_str());
    return out;
  }
  const double part =
      bytes_total > 0 ? std::min(1.0, static_cast<double>(bytes_done) /
                                          static_cast<double>(bytes_total))
      : files_total > 0 ? static_cast<double>(files_done) / files_total
                        : 1.0;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(part * kWidth);
  std::string bar = "[" + std::string(filled, '#') +
                    std::string(kWidth - filled, '.') + "]";
  const double rate = seconds > 0 ? bytes_done / seconds : 0;
  std::string left = "--";
  if (rate > 0 && bytes_total >= bytes_done) {
    const uint64_t s = static_cast<uint64_t>((bytes_total - bytes_done) / rate);
    char t[32];
    std::snprintf(t, sizeof(t), "%llu:%02llu",
                  static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
    left = t;
  }
  char out[256];
  std::snprintf(out, sizeof(out),
                "%s %3.0f%%  %llu/%llu files  %s/%s  %s/s  %s left%s", bar.c_str(),
                part * 100, static_cast<unsigned long long>(files_done),
                static_cast<unsigned long long>(files_total),
                Human(static_cast<double>(bytes_done)).c_str(),
                Human(static_cast<double>(bytes_total)).c_str(),
                Human(rate).c_str(), left.c_str(),
                failed > 0 ? ("  " + std::to_string(failed) + " failed").c_str()
                           : "");
  return out;
}

// Lists every directory below `dir` (a path on the mount) without a stat
// of its entries: the kernel asks cachefs for the listings with
// attributes (readdirplus), which the prefetch's walk has just fetched,
// and keeps names and attributes: precached's statx walk, whose
// lookups then cost no round trip. Bounded by the tree.
void PrimeKernel(const std::string& dir) {
  std::vector<std::string> dirs = {dir};
  while (!dirs.empty()) {
    std::string d = std::move(dirs.back());
    dirs.pop_back();
    DIR* listing = opendir(d.c_str());
    if (listing == nullptr) continue;
    while (dirent* e = readdir(listing)) {
      const std::string name = e->d_name;
      if (e->d_type == DT_DIR && name != "." && name != "..") {
        dirs.push_back(d + "/" + name);
      }
    }
    closedir(listing);
  }
}

// `cachefs-ctl prefetch`: progress on a terminal (stderr), then the
// daemon's summary. Interrupting it closes the connection, which cancels
// the job in the daemon. Exits 1 if a file failed or the job was cancelled.
int RunPrefetch(const std::string& mount, const ControlCall& call) {
  const bool show = !call.background && isatty(STDERR_FILENO);
  std::string pending;   // a line not yet whole
  std::string last;      // the last progress line
  bool ended = false;
  bool drawn = false;
  absl::Status streamed = ControlStreamRequest(
      mount, EncodeControlCall(call), [&](std::string_view data) {
        if (ended || call.background) {
          std::fwrite(data.data(), 1, data.size(), stdout);
          return true;
        }
        pending.append(data.data(), data.size());
        size_t nl;
        while (!ended && (nl = pending.find('\n')) != std::string::npos) {
          std::string line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          if (line + "\n" == kPrefetchEndLine) {
            ended = true;
            if (drawn) std::fputs("\r\033[K", stderr);
            std::fwrite(pending.data(), 1, pending.size(), stdout);
            pending.clear();
          } else if (line.rfind("progress ", 0) == 0) {
            last = line;
            if (show) {
              std::fprintf(stderr, "\r\033[K%s", ProgressBar(line).c_str());
              drawn = true;
            }
          }
        }
        return true;
      });
  if (!streamed.ok()) {
    if (drawn) std::fputs("\n", stderr);
    return Fail(std::string(streamed.message()));
  }
  if (call.background) return 0;
  if (!ended) return Fail("the daemon ended the prefetch stream early");
  for (const std::string& path : call.paths) {
    if (call.recursive) PrimeKernel(path.empty() ? mount : mount + "/" + path);
  }
  std::vector<std::string> f = absl::StrSplit(last, ' ');
  uint64_t failed = 0;
  if (f.size() != 9 || !absl::SimpleAtoi(f[7], &failed)) {
    return Fail("unexpected progress line from the daemon: " + last);
  }
  return failed > 0 || f[1] == "cancelled" ? 1 : 0;
}

int Run(const std::vector<std::string>& args) {
  ControlCall call;
  std::string mountpoint;
  std::vector<std::string> paths;
  bool help = false;
  bool repair = false;
  bool quick = false;
  int count = 0;  // top's reports; 0: until interrupted
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      help = true;
    } else if (a == "--json") {
      call.json = true;
    } else if (a == "--repair") {
      repair = true;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "-r") {
      call.recursive = true;
    } else if (a == "--meta-only") {
      call.meta_only = true;
    } else if (a == "--background") {
      call.background = true;
    } else if (a == "--forget") {
      if (i + 1 == args.size() || args[i + 1].empty()) {
        return Fail("--forget needs a PROGRAM (see cachefs-ctl hotsets)");
      }
      call.forget = args[++i];
    } else if (a == "-n") {
      if (i + 1 == args.size() || !absl::SimpleAtoi(args[i + 1], &count) ||
          count <= 0) {
        return Fail("-n needs a COUNT of 1 or more (see --help)");
      }
      ++i;
    } else if (a == "--to") {
      if (i + 1 == args.size()) return Fail("--to needs BYTES (see --help)");
      call.to = args[++i];
      if (call.to.empty() || call.to.find_first_not_of("0123456789KMGTkmgt") !=
                                 std::string::npos) {
        return Fail("--to " + call.to + ": not a size (see --help)");
      }
    } else if (!a.empty() && a[0] == '-') {
      return Fail("unknown option " + a + " (see --help)");
    } else if (call.command.empty()) {
      call.command = a;
    } else if (mountpoint.empty()) {
      mountpoint = a;
    } else {
      paths.push_back(a);
    }
  }
  const ControlCommand* command =
      call.command.empty() ? nullptr : FindControlCommand(call.command);
  if (help) {
    if (command == nullptr) {
      std::fputs(ControlUsage().c_str(), stdout);
    } else {
      std::printf("usage: cachefs-ctl %s %s %s\n\n%s", command->name,
                  command->offline ? "CACHEDIR" : "MOUNTPOINT",
                  command->synopsis, command->help);
    }
    return 0;
  }
  if (call.command.empty()) {
    std::fputs(ControlUsage().c_str(), stderr);
    return 2;
  }
  if (command == nullptr) {
    return Fail("unknown command " + call.command + " (see --help)");
  }
  if ((repair || quick) && !command->offline) {
    return Fail(std::string(repair ? "--repair" : "--quick") + " is for check");
  }
  if (count != 0 && !command->composite) {
    return Fail("-n is for top");
  }
  if (command->offline) {
    if (mountpoint.empty()) return Fail(call.command + " needs a CACHEDIR");
    if (!paths.empty()) return Fail("unexpected argument " + paths[0]);
    return Check(mountpoint, repair, quick, call.json);
  }
  if (mountpoint.empty()) return Fail(call.command + " needs a MOUNTPOINT");
  // Checked before the paths are resolved: "cull MNT extra" is an error.
  call.paths.assign(paths.size(), "x");
  absl::Status usable = CheckControlCall(call);
  if (!usable.ok()) {
    return Fail(std::string(usable.message()) + " (see cachefs-ctl " +
                call.command + " --help)");
  }
  char real[PATH_MAX];
  if (realpath(mountpoint.c_str(), real) == nullptr) {
    if (errno == ENOTCONN) {
      return Fail(mountpoint +
                  ": the cachefs daemon of this mount is gone (transport "
                  "endpoint is not connected); clean up with "
                  "fusermount3 -u " +
                  mountpoint);
    }
    return Fail(mountpoint + ": " + std::strerror(errno));
  }
  auto table = ReadMountTable();
  if (!table.ok()) return Fail(std::string(table.status().message()));
  const MountEntry* mount = FindMountOf(*table, real);
  if (mount == nullptr || mount->mount_point != real ||
      mount->fs_type != "fuse.cachefs") {
    return Fail(std::string(real) + " is not a cachefs mount point");
  }
  call.paths.clear();
  for (const std::string& path : paths) {
    std::string key;
    if (!KeyOf(path, real, &key)) {
      return Fail(path + " is not inside the mount " + std::string(real));
    }
    call.paths.push_back(key);
  }
  if (command->composite) return RunTop(real, count);
  if (command->prefetch) return RunPrefetch(real, call);
  if (command->stream) {
    absl::Status streamed = ControlStreamRequest(
        real, EncodeControlCall(call), [](std::string_view data) {
          // Line by line as it comes: a pipe to grep sees each event.
          return std::fwrite(data.data(), 1, data.size(), stdout) ==
                     data.size() &&
                 std::fflush(stdout) == 0;
        });
    if (!streamed.ok()) return Fail(std::string(streamed.message()));
    return 0;
  }
  auto reply = ControlRequest(real, EncodeControlCall(call));
  if (!reply.ok()) {
    return Fail(std::string(reply.status().message()) +
                " (is the daemon still running?)");
  }
  if (reply->rfind("error: ", 0) == 0) return Fail(reply->substr(7));
  std::fputs(reply->c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace cachefs

int main(int argc, char* argv[]) {
  return cachefs::Run(std::vector<std::string>(argv + 1, argv + argc));
}
