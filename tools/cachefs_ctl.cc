// cachefs-ctl: talks to the cachefs daemon behind a mount point.
//
//   cachefs-ctl stats MOUNTPOINT [--json]
//   cachefs-ctl status MOUNTPOINT [--json]

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
    "usage: cachefs-ctl COMMAND MOUNTPOINT [--json]\n"
    "\n"
    "commands:\n"
    "  stats    the cache's event counters (lookups, granules and bytes\n"
    "           read from the cache and the origin, dispatcher, faults,\n"
    "           objects and bytes stored)\n"
    "  status   origin, cache directory, options in force, uptime and\n"
    "           bytes stored\n"
    "\n"
    "options:\n"
    "  --json   print one JSON object instead of text\n"
    "  -h, --help\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "cachefs-ctl: %s\n", message.c_str());
  return 1;
}

int Run(const std::vector<std::string>& args) {
  std::string command, mountpoint;
  bool json = false;
  for (const std::string& a : args) {
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--json") {
      json = true;
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
  if (command != "stats" && command != "status") {
    return Fail("unknown command " + command + " (see --help)");
  }
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
  auto reply = ControlRequest(real, json ? command + " --json" : command);
  if (!reply.ok()) {
    return Fail(std::string(reply.status().message()) +
                " (is the daemon still running?)");
  }
  if (reply->rfind("error: ", 0) == 0) return Fail(reply->substr(7));
  if (reply->empty()) return Fail("the daemon of " + std::string(real) +
                                  " sent no answer");
  std::fputs(reply->c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace cachefs

int main(int argc, char* argv[]) {
  return cachefs::Run(std::vector<std::string>(argv + 1, argv + argc));
}
