// ReadTraceFile: a trace from a path, "-" meaning standard input. Names
// ending in .xz or .gz are decompressed on the fly by `xz -dc` or
// `gzip -dc` run as child processes, so no compression library is needed.

#ifndef CACHEFS_CULL_TRACE_FILE_H_
#define CACHEFS_CULL_TRACE_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "cull/trace.h"
#include "cull/trace_reader.h"

namespace cachefs {

absl::StatusOr<Trace> ReadTraceFile(const std::string& path,
                                    const TraceOptions& options);

}  // namespace cachefs

#endif  // CACHEFS_CULL_TRACE_FILE_H_
