#include "cull/trace_file.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace cachefs {
namespace {

absl::Status ErrnoError(const std::string& what, int err) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": ", std::strerror(err)));
}

// Runs `tool -dc` with the trace file as its standard input and parses its
// output. The file is opened here rather than by the tool so that a
// missing file is reported plainly, not as the tool's failure.
absl::StatusOr<Trace> ReadDecompressed(const std::string& path,
                                       const char* tool,
                                       const TraceOptions& options) {
  const int file = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file < 0) return ErrnoError(path, errno);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    close(file);
    return ErrnoError("pipe", err);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, file, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  char arg0[16], arg1[] = "-dc";
  std::snprintf(arg0, sizeof(arg0), "%s", tool);
  char* argv[] = {arg0, arg1, nullptr};
  pid_t pid;
  const int spawn_err =
      posix_spawnp(&pid, tool, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(file);
  close(pipe_fds[1]);
  if (spawn_err != 0) {
    close(pipe_fds[0]);
    return ErrnoError(absl::StrCat("running ", tool, " for ", path), spawn_err);
  }
  std::FILE* in = fdopen(pipe_fds[0], "r");
  absl::StatusOr<Trace> trace = in == nullptr ? ErrnoError("fdopen", errno)
                                              : ReadTrace(in, path, options);
  if (in != nullptr)
    std::fclose(in);
  else
    close(pipe_fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  // A parse error closes the pipe early and the tool dies of SIGPIPE;
  // the parse error is the one worth reporting.
  if (trace.ok() && !(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) {
    return absl::DataLossError(absl::StrCat(
        path, ": ", tool, " -dc failed (",
        WIFEXITED(wstatus) ? absl::StrCat("exit status ", WEXITSTATUS(wstatus))
                           : absl::StrCat("signal ", WTERMSIG(wstatus)),
        "); is the file damaged or not ", tool, "-compressed?"));
  }
  return trace;
}

}  // namespace

absl::StatusOr<Trace> ReadTraceFile(const std::string& path,
                                    const TraceOptions& options) {
  if (path == "-") return ReadTrace(stdin, "<stdin>", options);
  if (absl::EndsWith(path, ".xz")) return ReadDecompressed(path, "xz", options);
  if (absl::EndsWith(path, ".gz")) {
    return ReadDecompressed(path, "gzip", options);
  }
  std::FILE* in = std::fopen(path.c_str(), "re");
  if (in == nullptr) return ErrnoError(path, errno);
  absl::StatusOr<Trace> trace = ReadTrace(in, path, options);
  std::fclose(in);
  return trace;
}

}  // namespace cachefs
