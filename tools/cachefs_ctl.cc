// cachefs-ctl: talks to the cachefs daemon behind a mount point.
//
//   cachefs-ctl stats MOUNTPOINT [--json]
//   cachefs-ctl status MOUNTPOINT [--json]
//   cachefs-ctl ls MOUNTPOINT [--json]
//   cachefs-ctl cull MOUNTPOINT [--to BYTES]

#include <limits.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cachefs/control_socket.h"
#include "netfs/mount_table.h"

namespace cachefs {
namespace {

constexpr char kUsage[] =
    "usage: cachefs-ctl COMMAND MOUNTPOINT [--json] [--to BYTES]\n"
    "\n"
    "commands:\n"
    "  stats    the cache's event counters (lookups, granules and bytes\n"
    "           read from the cache and the origin, dispatcher, faults,\n"
    "           culls, objects and bytes stored)\n"
    "  status   origin, cache directory, options in force, uptime,\n"
    "           limits, cull policy and bytes stored\n"
    "  ls       the cached objects of this mount: path, bytes cached,\n"
    "           percent of the file present, last access\n"
    "  cull     cull now, down to the run mark of -o cache_size, or to\n"
    "           --to BYTES (suffixes K, M, G, T). Open files are never\n"
    "           culled whole: one holding more than -o open_file_share\n"
    "           of the target gives up its least recently used granules\n"
    "           first, and if culling closed files is not enough, open\n"
    "           files give up more (--to 0 empties them too)\n"
    "\n"
    "options:\n"
    "  --json      print JSON instead of text (stats, status, ls)\n"
    "  --to BYTES  where cull stops\n"
    "  -h, --help\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "cachefs-ctl: %s\n", message.c_str());
  return 1;
}

int Run(const std::vector<std::string>& args) {
  std::string command, mountpoint, to;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--json") {
      json = true;
    } else if (a == "--to") {
      if (i + 1 == args.size()) return Fail("--to needs BYTES (see --help)");
      to = args[++i];
      if (to.empty() || to.find_first_not_of("0123456789KMGTkmgt") !=
                            std::string::npos) {
        return Fail("--to " + to + ": not a size (see --help)");
      }
    } else if (!a.empty() && a[0] == '-') {
      return Fail("unknown option " + a + " (see --help)");
    } else if (command.empty()) {
      command = a;
    } else if (mountpoint.empty()) {
      mountpoint = a;
    } else {
      return Fail("unexpected argument " + a + " (see --help)");
    }
  }
  if (command.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (command != "stats" && command != "status" && command != "ls" &&
      command != "cull") {
    return Fail("unknown command " + command + " (see --help)");
  }
  if (!to.empty() && command != "cull") return Fail("--to is for cull");
  if (json && command == "cull") return Fail("cull has no --json");
  if (mountpoint.empty()) return Fail(command + " needs a MOUNTPOINT");
  char real[PATH_MAX];
  if (realpath(mountpoint.c_str(), real) == nullptr) {
    if (errno == ENOTCONN) {
      return Fail(mountpoint +
                  ": the cachefs daemon of this mount is gone (transport "
                  "endpoint is not connected); clean up with "
                  "fusermount3 -u " + mountpoint);
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
  std::string request = command;
  if (json) request += " --json";
  if (!to.empty()) request += " " + to;
  auto reply = ControlRequest(real, request);
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
