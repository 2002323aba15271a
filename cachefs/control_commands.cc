#include "cachefs/control_commands.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cachefs {
namespace {

std::string Escape(std::string_view token) {
  std::string out;
  for (char c : token) {
    switch (c) {
      case '%':
        out += "%25";
        break;
      case ' ':
        out += "%20";
        break;
      case '\t':
        out += "%09";
        break;
      case '\r':
        out += "%0D";
        break;
      case '\n':
        out += "%0A";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<std::string> Unescape(std::string_view token) {
  std::string out;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] != '%') {
      out.push_back(token[i]);
      continue;
    }
    if (i + 2 >= token.size()) {
      return absl::InvalidArgumentError("a cut %-escape in the request");
    }
    const std::string_view hex = token.substr(i + 1, 2);
    if (hex == "25") {
      out.push_back('%');
    } else if (hex == "20") {
      out.push_back(' ');
    } else if (hex == "09") {
      out.push_back('\t');
    } else if (hex == "0D") {
      out.push_back('\r');
    } else if (hex == "0A") {
      out.push_back('\n');
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("an unknown %-escape in the request: %",
                       std::string(hex)));
    }
    i += 2;
  }
  return out;
}

}  // namespace

const std::vector<ControlCommand>& ControlCommands() {
  static const auto* commands = new std::vector<ControlCommand>{
      {"stats", "[--json]",
       "the cache's event counters (lookups, granules and bytes read from\n"
       "the cache and the origin, origin requests, faults, culls, objects\n"
       "and bytes stored)\n",
       /*json=*/true},
      {"status", "[--json]",
       "origin, cache directory, options in force, uptime, limits, cull\n"
       "policy and bytes stored\n",
       /*json=*/true},
      {"ls", "[--json]",
       "the cached files of this mount: path, bytes cached, percent of the\n"
       "file present, last access\n",
       /*json=*/true},
      {"cull", "[--to BYTES]",
       "cull now, down to the run mark of -o cache_size, or to --to BYTES\n"
       "(suffixes K, M, G, T). Open files are never culled whole: one\n"
       "holding more than -o open_file_share of the target gives up its\n"
       "least recently used granules first, and if culling closed files\n"
       "is not enough, open files give up more (--to 0 empties them too)\n",
       /*json=*/false, /*paths=*/false, /*to=*/true},
      {"invalidate", "PATH... [-r] [--json]",
       "drop the cached data of files (with -r, of every cached file below\n"
       "each directory): the way out of a change on the origin that its\n"
       "attributes do not show (SSHFS has whole-second mtimes). The next\n"
       "read fetches from the origin; open files start again empty\n",
       /*json=*/true, /*paths=*/true},
      {"map", "PATH... [--json]",
       "a file's cached granules: size, granules present (a picture, one\n"
       "mark per granule or group of granules: O all present, o some,\n"
       ". none), bytes on disk, state (clean or dirty), coherency data and\n"
       "the backing file in the cache directory\n",
       /*json=*/true, /*paths=*/true},
      {"evict", "PATH... [-r] [--json]", "the same as invalidate\n",
       /*json=*/true, /*paths=*/true, /*to=*/false, "invalidate"},
      {"check", "[--repair] [--quick] [--json]",
       "offline, with no daemon using the cache: read every object's record\n"
       "and cached data and report the objects a daemon would never use\n"
       "again (corrupt or missing records, dirty objects, backing files\n"
       "larger than their records allow, granules whose bytes do not match\n"
       "their checksums) and map sidecars whose object is gone, with totals;\n"
       "--repair removes them; --quick reads the records only, not the\n"
       "data. Exits 1 if problems are left\n",
       /*json=*/true, /*paths=*/false, /*to=*/false, nullptr,
       /*offline=*/true},
      {"trace", "[--json]",
       "stream the cache's events as they happen, until interrupted: cookie\n"
       "acquire and relinquish, object lookups (positive, negative, stale),\n"
       "reads by granule range (hit or miss), fills from the origin (with\n"
       "their latency), stores into the cache, invalidations, culls and\n"
       "withdrawals; --json prints one JSON object per line. Tracing costs\n"
       "nothing while no one listens\n",
       /*json=*/true, /*paths=*/false, /*to=*/false, nullptr,
       /*offline=*/false, /*stream=*/true},
      {"top", "[-n COUNT]",
       "a live view, refreshed every second: hit ratio, bytes per second\n"
       "from the cache and from the origin, origin latency, culls, bytes\n"
       "stored against the limit, and the files read most in the last\n"
       "second; plain text, one report per second, when stdout is not a\n"
       "terminal; -n stops after COUNT reports\n",
       /*json=*/false, /*paths=*/false, /*to=*/false, nullptr,
       /*offline=*/false, /*stream=*/false, /*composite=*/true},
      {"prefetch", "PATH... [-r] [--meta-only] [--background] [--json]",
       "bring files whole into the cache (with -r, every file of each\n"
       "directory's tree): first a walk that lists every directory with\n"
       "its entries' attributes (kept, so later lookups cost no round\n"
       "trip; --meta-only stops there), then the files, several at once\n"
       "(-o prefetch_jobs). What is cached and current is skipped, so a\n"
       "second run fetches only what is missing or changed. A file that\n"
       "fails is counted and named in the summary; the job goes on. Shows\n"
       "progress on a terminal and ends with a summary (--json: one JSON\n"
       "object); interrupting it cancels the job, unless --background,\n"
       "which starts the job and returns at once. Exits 1 if a file failed\n"
       "or the job was cancelled\n",
       /*json=*/true, /*paths=*/true, /*to=*/false, nullptr,
       /*offline=*/false, /*stream=*/true, /*composite=*/false,
       /*prefetch=*/true},
      {"pin", "PATH... [-r]",
       "pin files (with -r, every file below each directory; a glob such\n"
       "as 'lib/*.so' pins what it matches, now and later): each is\n"
       "fetched whole in the background and never culled, and fetched\n"
       "again when it changes on the origin. Pins are kept in the cache\n"
       "directory across restarts\n",
       /*json=*/false, /*paths=*/true},
      {"unpin", "PATH... [-r]",
       "remove the pins cachefs-ctl pin made for these paths (with -r, also\n"
       "those below them); the files stay cached but may be culled\n",
       /*json=*/false, /*paths=*/true},
      {"pins", "[--json]",
       "the pin rules (from -o pin=FILE and cachefs-ctl pin), the files\n"
       "they pin with their state (fetching, on disk, failed) and sizes,\n"
       "and the rules that match no file\n",
       /*json=*/true},
      {"reload", "",
       "reread the pin file of -o pin=FILE (as SIGHUP does); a bad line is\n"
       "an error, and the rules in force stay\n"},
      {"hotsets", "[--json] [--forget PROGRAM]",
       "the programs whose first seconds of reading were learned (their\n"
       "executable, and the script of an interpreter), with the files and\n"
       "bytes of each trace, when it was learned and last replayed, the\n"
       "replays and hits (traced files the program then opened);\n"
       "--forget drops one program's trace\n",
       /*json=*/true, /*paths=*/false, /*to=*/false, nullptr,
       /*offline=*/false, /*stream=*/false, /*composite=*/false,
       /*prefetch=*/false, /*forget=*/true},
      {"jobs", "[--json]",
       "prefetch jobs running and the last ones ended: state, files and\n"
       "bytes done of the total, bytes fetched from the origin, rate and\n"
       "paths\n",
       /*json=*/true},
  };
  return *commands;
}

const ControlCommand* FindControlCommand(std::string_view name) {
  for (const ControlCommand& c : ControlCommands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

absl::Status CheckControlCall(const ControlCall& call) {
  const ControlCommand* command = FindControlCommand(call.command);
  if (command == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command ", call.command));
  }
  if (call.json && !command->json) {
    return absl::InvalidArgumentError(
        absl::StrCat(call.command, " has no --json"));
  }
  if (!call.to.empty() && !command->to) {
    return absl::InvalidArgumentError(
        absl::StrCat(call.command, " has no --to"));
  }
  if ((call.meta_only || call.background) && !command->prefetch) {
    return absl::InvalidArgumentError(absl::StrCat(
        call.command, " has no ",
        call.meta_only ? "--meta-only" : "--background"));
  }
  if (!call.forget.empty() && !command->forget) {
    return absl::InvalidArgumentError(
        absl::StrCat(call.command, " has no --forget"));
  }
  if (call.recursive && !command->paths) {
    return absl::InvalidArgumentError(absl::StrCat(call.command, " has no -r"));
  }
  if (command->paths && call.paths.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(call.command, " needs at least one PATH"));
  }
  if (!command->paths && !call.paths.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(call.command, " takes no PATH"));
  }
  return absl::OkStatus();
}

std::string EncodeControlCall(const ControlCall& call) {
  std::string line = Escape(call.command);
  if (call.json) line += " --json";
  if (call.recursive) line += " -r";
  if (call.meta_only) line += " --meta-only";
  if (call.background) line += " --background";
  if (!call.forget.empty()) {
    absl::StrAppend(&line, " --forget ", Escape(call.forget));
  }
  if (!call.to.empty()) absl::StrAppend(&line, " --to ", Escape(call.to));
  if (!call.paths.empty()) {
    line += " --";
    // An empty path (the mount root) is the token "."; a name "." cannot
    // be relative to the root otherwise.
    for (const std::string& path : call.paths) {
      absl::StrAppend(&line, " ", path.empty() ? "." : Escape(path));
    }
  }
  return line;
}

absl::StatusOr<ControlCall> DecodeControlCall(std::string_view line) {
  std::vector<std::string> tokens =
      absl::StrSplit(absl::string_view(line.data(), line.size()), ' ',
                     absl::SkipEmpty());
  if (tokens.empty()) return absl::InvalidArgumentError("an empty request");
  ControlCall call;
  absl::StatusOr<std::string> name = Unescape(tokens[0]);
  if (!name.ok()) return name.status();
  call.command = *name;
  bool in_paths = false;
  for (size_t i = 1; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (in_paths) {
      absl::StatusOr<std::string> path = Unescape(t);
      if (!path.ok()) return path.status();
      call.paths.push_back(*path == "." ? "" : *path);
    } else if (t == "--") {
      in_paths = true;
    } else if (t == "--json") {
      call.json = true;
    } else if (t == "-r") {
      call.recursive = true;
    } else if (t == "--meta-only") {
      call.meta_only = true;
    } else if (t == "--background") {
      call.background = true;
    } else if (t == "--forget" && i + 1 < tokens.size()) {
      absl::StatusOr<std::string> program = Unescape(tokens[++i]);
      if (!program.ok()) return program.status();
      call.forget = *program;
    } else if (t == "--to" && i + 1 < tokens.size()) {
      absl::StatusOr<std::string> to = Unescape(tokens[++i]);
      if (!to.ok()) return to.status();
      call.to = *to;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected \"", t, "\" in the request"));
    }
  }
  absl::Status checked = CheckControlCall(call);
  if (!checked.ok()) return checked;
  if (const ControlCommand* c = FindControlCommand(call.command);
      c->alias_of != nullptr) {
    call.command = c->alias_of;
  }
  return call;
}

std::string ControlUsage() {
  std::string out =
      "usage: cachefs-ctl COMMAND MOUNTPOINT [PATH...] [options]\n"
      "\n"
      "commands:\n";
  for (const ControlCommand& c : ControlCommands()) {
    absl::StrAppend(&out, "  ", c.name, c.offline ? " CACHEDIR " : " MOUNTPOINT ",
                    c.synopsis, "\n");
    for (const std::string& line : std::vector<std::string>(
             absl::StrSplit(c.help, '\n', absl::SkipEmpty()))) {
      absl::StrAppend(&out, "      ", line, "\n");
    }
  }
  out +=
      "\n"
      "options:\n"
      "  --json      print JSON instead of text\n"
      "  --to BYTES  where cull stops\n"
      "  -r          also every cached file below each PATH (prefetch:\n"
      "              every file below it)\n"
      "  --meta-only (prefetch) the walk only: names and attributes\n"
      "  --background (prefetch) start the job and return\n"
      "  --forget PROGRAM (hotsets) drop that program's trace\n"
      "  --repair    (check) remove what cannot be trusted\n"
      "  -n COUNT    (top) stop after COUNT reports\n"
      "  -h, --help  this text (cachefs-ctl COMMAND --help: that command's)\n"
      "PATHs are files or directories inside MOUNTPOINT, absolute or\n"
      "relative to the current directory.\n";
  return out;
}

}  // namespace cachefs
