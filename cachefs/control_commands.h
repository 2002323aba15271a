// The control commands in one table, shared by the daemon (which answers
// them), cachefs-ctl (which parses its command line with it) and the
// usage text: a new command is a row here and a handler in the daemon
// (control_reply.cc), nothing else.
//
// A call travels as one line: the command, its flags ("--json", "-r",
// "--to BYTES", "--meta-only", "--background"), then "--" and its paths, relative to the mount root.
// Tokens are separated by spaces; a token's '%', space, tab, CR and LF
// are written as %25, %20, %09, %0D and %0A.

#ifndef CACHEFS_CACHEFS_CONTROL_COMMANDS_H_
#define CACHEFS_CACHEFS_CONTROL_COMMANDS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cachefs {

struct ControlCommand {
  const char* name;
  const char* synopsis;  // what follows "cachefs-ctl NAME MOUNTPOINT"
  const char* help;      // lines of the usage text, each ending in \n
  bool json = false;     // takes --json
  bool paths = false;    // takes PATH... (at least one) and -r
  bool to = false;       // takes --to BYTES
  const char* alias_of = nullptr;  // another row's name, or null
  // Run by cachefs-ctl itself on a cache directory, with no daemon: the
  // argument is CACHEDIR, not MOUNTPOINT, and --repair is taken.
  bool offline = false;
  // Answered by a stream of lines until the client goes away.
  bool stream = false;
  // Run by cachefs-ctl itself from other commands' answers (takes -n).
  bool composite = false;
  // Takes --meta-only and --background (prefetch).
  bool prefetch = false;
  // Takes --forget PROGRAM (hotsets).
  bool forget = false;
};

// Every command, in the order the usage text lists them.
const std::vector<ControlCommand>& ControlCommands();
// The row named `name` (an alias's own row), or null.
const ControlCommand* FindControlCommand(std::string_view name);

struct ControlCall {
  std::string command;  // a row's name, aliases resolved
  bool json = false;
  bool recursive = false;
  std::string to;
  bool meta_only = false;
  bool background = false;
  std::string forget;
  std::vector<std::string> paths;  // relative to the mount root; "" is it
};

std::string EncodeControlCall(const ControlCall& call);
// Checks the call against its command's row.
absl::StatusOr<ControlCall> DecodeControlCall(std::string_view line);
// Checks that `call` uses only what its command takes.
absl::Status CheckControlCall(const ControlCall& call);

// The usage text of cachefs-ctl.
std::string ControlUsage();

}  // namespace cachefs

#endif  // CACHEFS_CACHEFS_CONTROL_COMMANDS_H_
