// The daemon's log: what an operator must know, said once, with the mount
// point in every line. Where it goes is chosen once at startup: stderr
// (the default, and in the foreground), syslog (in the background, so
// journald keeps it) or a file of one's own (-o log=FILE).
//
// Events that can repeat per request (cache I/O errors, a full cache
// filesystem, origin failures) go through LogEvent, which says each kind
// once per interval with the number of times it happened meanwhile, so
// a flood of failing reads is a line a minute, not a line a read.
//
// Thread safety: every function may be called from any thread.

#ifndef CACHEFS_IO_LOG_H_
#define CACHEFS_IO_LOG_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace cachefs {

enum class LogLevel { kError = 0, kWarning, kNotice, kInfo, kDebug };

// "error", "warning", "notice", "info" or "debug".
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);
std::string_view LogLevelName(LogLevel level);

struct LogOptions {
  enum class Sink { kStderr, kSyslog, kFile };
  Sink sink = Sink::kStderr;
  std::string file;            // for kFile: appended to, made 0640
  LogLevel level = LogLevel::kNotice;  // the least important level kept
  std::string mount_point;     // in every line, once mounted
};

// Replaces the log's configuration, and forgets which events were said
// lately (the next of each kind is written). Fails, changing nothing, if
// the file cannot be opened.
absl::Status ConfigureLog(const LogOptions& options);

// Writes one line at `level` if the configuration keeps that level.
void Log(LogLevel level, std::string_view message);

template <typename... Parts>
void LogParts(LogLevel level, const Parts&... parts) {
  Log(level, absl::StrCat(parts...));
}

// Logs `message` for the event `kind` unless the same kind was logged less
// than `interval` ago; the next line that is written says how many were
// held back. Returns whether this one was written.
bool LogEvent(LogLevel level, std::string_view kind, std::string_view message,
              absl::Duration interval = absl::Minutes(1));

}  // namespace cachefs

#endif  // CACHEFS_IO_LOG_H_
