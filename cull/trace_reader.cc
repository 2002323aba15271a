#include "cull/trace_reader.h"

#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace cachefs {
namespace {

constexpr std::pair<TraceFormat, std::string_view> kFormats[] = {
    {TraceFormat::kText, "text"}, {TraceFormat::kWebcachesim, "webcachesim"},
    {TraceFormat::kArc, "arc"},   {TraceFormat::kLirs, "lirs"},
    {TraceFormat::kCsv, "csv"},
};

// CSV sectors are always 512 bytes (SCSI LBNs of the CloudPhysics traces).
constexpr uint64_t kCsvSectorBytes = 512;
// A corrupt line must not make one request expand into billions of
// accesses: a request may span at most this many granules (256 GiB at
// 256 KiB granules).
constexpr uint64_t kMaxGranulesPerRequest = uint64_t{1} << 20;

// Error messages quote a line, but never more than this of it.
std::string Excerpt(absl::string_view line) {
  constexpr size_t kMax = 60;
  if (line.size() <= kMax) return std::string(line);
  return absl::StrCat(line.substr(0, kMax), "...");
}

std::vector<absl::string_view> Fields(absl::string_view line) {
  return absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

// Turns lines into accesses, giving each distinct key a dense number.
class TraceParser {
 public:
  TraceParser(std::string_view name, const TraceOptions& options)
      : name_(name), options_(options) {
    block_size_ = options.block_size != 0 ? options.block_size
                                          : DefaultBlockSize(options.format);
  }

  absl::Status Validate() const {
    if (options_.granule == 0) {
      return absl::InvalidArgumentError("granule must be at least 1 byte");
    }
    if (block_size_ == 0 && (options_.format == TraceFormat::kArc ||
                             options_.format == TraceFormat::kLirs)) {
      return absl::InvalidArgumentError("block size must be at least 1 byte");
    }
    return absl::OkStatus();
  }

  absl::Status ParseLine(absl::string_view line, uint64_t line_no) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) return absl::OkStatus();
    switch (options_.format) {
      case TraceFormat::kText:
        return ParseText(line, line_no);
      case TraceFormat::kWebcachesim:
        return ParseWebcachesim(line, line_no);
      case TraceFormat::kArc:
        return ParseArc(line, line_no);
      case TraceFormat::kLirs:
        return ParseLirs(line, line_no);
      case TraceFormat::kCsv:
        return ParseCsv(line, line_no);
    }
    return absl::InternalError("unknown trace format");
  }

  Trace Finish() && {
    trace_.num_keys = static_cast<uint32_t>(key_bytes_.size());
    trace_.footprint_bytes = 0;
    for (uint64_t b : key_bytes_) trace_.footprint_bytes += b;
    return std::move(trace_);
  }

 private:
  absl::Status LineError(uint64_t line_no, absl::string_view what,
                         absl::string_view line) const {
    return absl::InvalidArgumentError(absl::StrCat(
        name_, ":", line_no, ": ", what, ": '", Excerpt(line), "'"));
  }

  absl::Status ParseText(absl::string_view line, uint64_t line_no) {
    if (line[0] == '#') return absl::OkStatus();
    std::vector<absl::string_view> f = Fields(line);
    double timestamp;
    uint64_t size;
    if (f.size() == 3 && !absl::SimpleAtod(f[0], &timestamp)) {
      return LineError(line_no, "timestamp is not a number", line);
    }
    if ((f.size() != 2 && f.size() != 3) ||
        !absl::SimpleAtoi(f.back(), &size)) {
      return LineError(line_no, "expected '[timestamp] object-id size'", line);
    }
    ++trace_.source_requests;
    const absl::string_view id = f[f.size() - 2];
    auto [it, added] = text_keys_.try_emplace(id, key_bytes_.size());
    Access(it->second, added, size);
    return absl::OkStatus();
  }

  absl::Status ParseWebcachesim(absl::string_view line, uint64_t line_no) {
    std::vector<absl::string_view> f = Fields(line);
    double time;
    uint64_t id, size;
    if (f.size() != 3 || !absl::SimpleAtod(f[0], &time) ||
        !absl::SimpleAtoi(f[1], &id) || !absl::SimpleAtoi(f[2], &size)) {
      return LineError(line_no, "expected 'time id size' (numbers)", line);
    }
    ++trace_.source_requests;
    auto [it, added] =
        numeric_keys_.try_emplace(std::pair(id, size), key_bytes_.size());
    Access(it->second, added, size);
    return absl::OkStatus();
  }

  absl::Status ParseArc(absl::string_view line, uint64_t line_no) {
    std::vector<absl::string_view> f = Fields(line);
    uint64_t start, count, ignored;
    if (f.size() != 4 || !absl::SimpleAtoi(f[0], &start) ||
        !absl::SimpleAtoi(f[1], &count) || !absl::SimpleAtoi(f[2], &ignored) ||
        !absl::SimpleAtoi(f[3], &ignored)) {
      return LineError(line_no,
                       "expected 'start nblocks ignore reqno' (numbers)", line);
    }
    return ByteRange(start, count, block_size_, line, line_no);
  }

  absl::Status ParseLirs(absl::string_view line, uint64_t line_no) {
    uint64_t block;
    if (!absl::SimpleAtoi(line, &block)) {
      return LineError(line_no, "expected one block number", line);
    }
    return ByteRange(block, 1, block_size_, line, line_no);
  }

  absl::Status ParseCsv(absl::string_view line, uint64_t line_no) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ',');
    for (absl::string_view& field : f)
      field = absl::StripAsciiWhitespace(field);
    if (!csv_header_seen_) {
      csv_header_seen_ = true;
      for (size_t i = 0; i < f.size(); ++i) {
        const std::string column = absl::AsciiStrToLower(f[i]);
        if (column == "lbn") csv_lbn_ = i;
        if (column == "size") csv_size_ = i;
      }
      if (csv_lbn_ == kNoColumn || csv_size_ == kNoColumn) {
        return LineError(line_no,
                         "CSV header must name the columns 'lbn' (512-byte "
                         "sectors) and 'size' (bytes)",
                         line);
      }
      return absl::OkStatus();
    }
    uint64_t lbn, size;
    if (f.size() <= std::max(csv_lbn_, csv_size_)) {
      return LineError(
          line_no,
          absl::StrCat("expected ", std::max(csv_lbn_, csv_size_) + 1,
                       " or more fields"),
          line);
    }
    if (!absl::SimpleAtoi(f[csv_lbn_], &lbn)) {
      return LineError(line_no, "lbn is not a number", line);
    }
    if (!absl::SimpleAtoi(f[csv_size_], &size)) {
      return LineError(line_no, "size is not a number", line);
    }
    if (size == 0) return absl::OkStatus();  // touches no data
    // A request in bytes is a range of 1-byte "blocks" from lbn * 512.
    if (lbn > UINT64_MAX / kCsvSectorBytes) {
      return LineError(line_no, "lbn out of range", line);
    }
    return ByteRange(lbn * kCsvSectorBytes, size, 1, line, line_no);
  }

  // `count` units of `unit` bytes from unit `start`: one access per
  // granule overlapped.
  absl::Status ByteRange(uint64_t start, uint64_t count, uint64_t unit,
                         absl::string_view line, uint64_t line_no) {
    if (count == 0) return absl::OkStatus();
    if (start > UINT64_MAX / unit ||
        count > (UINT64_MAX - start * unit) / unit) {
      return LineError(line_no, "request out of range", line);
    }
    const uint64_t g = options_.granule;
    const uint64_t first = start * unit / g;
    const uint64_t last = (start * unit + count * unit - 1) / g;
    if (last - first >= kMaxGranulesPerRequest) {
      return LineError(line_no,
                       absl::StrCat("request spans more than ",
                                    kMaxGranulesPerRequest, " granules"),
                       line);
    }
    ++trace_.source_requests;
    for (uint64_t granule = first; granule <= last; ++granule) {
      auto [it, added] =
          numeric_keys_.try_emplace(std::pair(granule, 0), key_bytes_.size());
      Access(it->second, added, g);
    }
    return absl::OkStatus();
  }

  void Access(uint64_t key, bool added, uint64_t bytes) {
    if (added) key_bytes_.push_back(0);
    key_bytes_[key] = std::max(key_bytes_[key], bytes);
    trace_.accesses.push_back({static_cast<uint32_t>(key), bytes});
  }

  static constexpr size_t kNoColumn = SIZE_MAX;

  const std::string name_;
  const TraceOptions options_;
  uint64_t block_size_;
  Trace trace_;
  std::vector<uint64_t> key_bytes_;  // largest size seen, per dense key
  absl::flat_hash_map<std::string, uint64_t> text_keys_;
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint64_t> numeric_keys_;
  bool csv_header_seen_ = false;
  size_t csv_lbn_ = kNoColumn;
  size_t csv_size_ = kNoColumn;
};

}  // namespace

std::vector<std::string> TraceFormatNames() {
  std::vector<std::string> names;
  for (const auto& [format, name] : kFormats) names.emplace_back(name);
  return names;
}

std::string_view TraceFormatName(TraceFormat format) {
  for (const auto& [f, name] : kFormats) {
    if (f == format) return name;
  }
  return "unknown";
}

absl::StatusOr<TraceFormat> ParseTraceFormat(std::string_view name) {
  for (const auto& [format, n] : kFormats) {
    if (n == name) return format;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown trace format '", std::string(name),
      "'; valid formats: ", absl::StrJoin(TraceFormatNames(), ", ")));
}

uint64_t DefaultBlockSize(TraceFormat format) {
  switch (format) {
    case TraceFormat::kArc:
      return 512;  // the ARC paper's traces are in 512-byte sectors
    case TraceFormat::kLirs:
      return 4096;  // a file-system block, as in the LIRS paper's buffers
    default:
      return 0;
  }
}

absl::StatusOr<Trace> ReadTrace(std::FILE* in, std::string_view name,
                                const TraceOptions& options) {
  TraceParser parser(name, options);
  if (absl::Status s = parser.Validate(); !s.ok()) return s;
  char* buf = nullptr;
  size_t cap = 0;
  uint64_t line_no = 0;
  absl::Status status;
  ssize_t n;
  while (status.ok() && (n = getline(&buf, &cap, in)) >= 0) {
    status = parser.ParseLine(absl::string_view(buf, n), ++line_no);
  }
  const bool read_error = status.ok() && std::ferror(in);
  free(buf);
  if (!status.ok()) return status;
  if (read_error) {
    return absl::DataLossError(
        absl::StrCat(std::string(name), ": read error after line ", line_no));
  }
  return std::move(parser).Finish();
}

absl::StatusOr<Trace> ParseTrace(std::string_view text, std::string_view name,
                                 const TraceOptions& options) {
  TraceParser parser(name, options);
  if (absl::Status s = parser.Validate(); !s.ok()) return s;
  uint64_t line_no = 0;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    if (absl::Status s = parser.ParseLine(line, line_no); !s.ok()) return s;
  }
  return std::move(parser).Finish();
}

}  // namespace cachefs
