#include "io/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace cachefs {
namespace {

// Debian's abseil has a string_view of its own.
absl::string_view View(std::string_view s) { return {s.data(), s.size()}; }

struct Held {
  absl::Time last;
  uint64_t suppressed = 0;
};

class LogState {
 public:
  absl::Status Configure(const LogOptions& options) {
    int fd = -1;
    if (options.sink == LogOptions::Sink::kFile) {
      // Not through a symbolic link, and only a regular file: a daemon
      // running as root must not append to whatever a link names.
      fd = open(options.file.c_str(),
                O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
      if (fd < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot open the log file ", options.file, ": ",
            std::strerror(errno)));
      }
      struct stat st;
      if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return absl::InvalidArgumentError(absl::StrCat(
            "the log file ", options.file, " is not a regular file"));
      }
    }
    absl::MutexLock lock(&mu_);
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
    if (options.sink == LogOptions::Sink::kSyslog &&
        options_.sink != LogOptions::Sink::kSyslog) {
      openlog("cachefs", LOG_PID, LOG_DAEMON);
    }
    options_ = options;
    // A new destination hears every kind of event afresh.
    held_.clear();
    return absl::OkStatus();
  }

  void Write(LogLevel level, std::string_view message) {
    absl::MutexLock lock(&mu_);
    WriteLocked(level, message);
  }

  bool Event(LogLevel level, std::string_view kind, std::string_view message,
             absl::Duration interval) {
    absl::MutexLock lock(&mu_);
    if (level > options_.level) return false;
    const absl::Time now = absl::Now();
    auto [it, fresh] = held_.try_emplace(std::string(kind));
    if (!fresh && now - it->second.last < interval) {
      ++it->second.suppressed;
      return false;
    }
    std::string line(message);
    if (it->second.suppressed > 0) {
      absl::StrAppend(&line, " (and ", it->second.suppressed,
                      " more like it since the last note)");
    }
    it->second = Held{now, 0};
    WriteLocked(level, line);
    return true;
  }

 private:
  void WriteLocked(LogLevel level, std::string_view message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (level > options_.level) return;
    const std::string where =
        options_.mount_point.empty() ? "" : options_.mount_point + ": ";
    const std::string_view name = LogLevelName(level);
    switch (options_.sink) {
      case LogOptions::Sink::kSyslog: {
        static constexpr int kPriority[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE,
                                            LOG_INFO, LOG_DEBUG};
        std::string line = absl::StrCat(where, View(message));
        syslog(kPriority[static_cast<int>(level)], "%s", line.c_str());
        return;
      }
      case LogOptions::Sink::kFile: {
        std::string line = absl::StrCat(
            absl::FormatTime("%Y-%m-%dT%H:%M:%E3S%Ez", absl::Now(),
                             absl::LocalTimeZone()),
            " ", View(name), " ", where, View(message), "\n");
        if (write(fd_, line.data(), line.size()) < 0) {
          // Nowhere left to say it.
        }
        return;
      }
      case LogOptions::Sink::kStderr: {
        std::string line = absl::StrCat(
            "cachefs: ", where,
            level <= LogLevel::kWarning ? absl::StrCat(View(name), ": ") : "",
            View(message), "\n");
        std::fputs(line.c_str(), stderr);
        return;
      }
    }
  }

  absl::Mutex mu_;
  LogOptions options_ ABSL_GUARDED_BY(mu_);
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);
};

LogState& State() {
  static LogState* state = new LogState;
  return *state;
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarning,
                         LogLevel::kNotice, LogLevel::kInfo,
                         LogLevel::kDebug}) {
    if (name == LogLevelName(level)) return level;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level \"", View(name),
                   "\" (error, warning, notice, info or debug)"));
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kNotice:
      return "notice";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

absl::Status ConfigureLog(const LogOptions& options) {
  return State().Configure(options);
}

void Log(LogLevel level, std::string_view message) {
  State().Write(level, message);
}

bool LogEvent(LogLevel level, std::string_view kind, std::string_view message,
              absl::Duration interval) {
  return State().Event(level, kind, message, interval);
}

}  // namespace cachefs
