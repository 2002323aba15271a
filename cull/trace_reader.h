// Trace readers: parse the access trace formats cachefs-cullsim replays
// into a Trace.
//
//   text         one request per line: `[timestamp] object-id size`. The id
//                is any token without blanks, the size is in bytes, the
//                optional leading timestamp is a number and is ignored.
//                Lines that are blank or start with '#' are skipped. The
//                same id with a new size is the same object, resized.
//   webcachesim  `time id size` (webcachesim, AdaptSize): as text with the
//                timestamp, but an (id, size) pair is one object, as in
//                those simulators, and the id must be a number.
//   arc          block requests `start nblocks ignore reqno` (the ARC
//                paper's traces), in blocks of block_size (default 512 B).
//   lirs         one block number per line (the LIRS paper's traces), in
//                blocks of block_size (default 4 KiB).
//   csv          a header line naming the columns, then one request per
//                line; the columns `lbn` (start, in 512-byte sectors) and
//                `size` (bytes) are used, the others (op, time...) ignored,
//                so reads and writes both count (cloudPhysicsIO.csv).
//
// Block formats are replayed at granule-sized keys, as cachefs caches
// them: a request for bytes [start, start + length) is one access to each
// granule it overlaps (each counted once), of granule bytes.
//
// A malformed line is an InvalidArgument error naming the trace and the
// line number.

#ifndef CACHEFS_CULL_TRACE_READER_H_
#define CACHEFS_CULL_TRACE_READER_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cull/trace.h"

namespace cachefs {

enum class TraceFormat { kText, kWebcachesim, kArc, kLirs, kCsv };

inline constexpr uint64_t kDefaultTraceGranule = uint64_t{256} << 10;

struct TraceOptions {
  TraceFormat format = TraceFormat::kText;
  // Key size for the block formats (arc, lirs, csv); ignored by the object
  // formats (text, webcachesim), whose objects are replayed whole.
  uint64_t granule = kDefaultTraceGranule;
  // Block size of the arc and lirs formats; 0 means the format's default.
  uint64_t block_size = 0;
};

// "text", "webcachesim", "arc", "lirs", "csv".
std::vector<std::string> TraceFormatNames();
std::string_view TraceFormatName(TraceFormat format);
absl::StatusOr<TraceFormat> ParseTraceFormat(std::string_view name);
// The block size the arc and lirs formats assume when block_size is 0.
uint64_t DefaultBlockSize(TraceFormat format);

// Reads `in` to its end. `name` is used in error messages.
absl::StatusOr<Trace> ReadTrace(std::FILE* in, std::string_view name,
                                const TraceOptions& options);
// The same, from text in memory.
absl::StatusOr<Trace> ParseTrace(std::string_view text, std::string_view name,
                                 const TraceOptions& options);

}  // namespace cachefs

#endif  // CACHEFS_CULL_TRACE_READER_H_
