// Private to io/: the request slots of the IoEngine and the bookkeeping of
// one transfer, kept apart from the threading in io_engine.cc.
//
// How a transfer moves: the caller's iovecs are copied into its slot. The
// slot's bytes are carved, front to back, into segments of at most
// `segment_bytes` and kSegmentIov iovecs; each segment is one IoOp (one
// SQE). Up to kSegmentsPerSlot segments are in flight at once and are
// submitted together, so one large read keeps several device requests busy.
// A segment that comes back short advances its own iovecs and goes again; a
// finished segment takes the next piece of the transfer, if any is left.
//
// Thread safety: a slot belongs to the thread that acquired it until its
// first submission, and to the engine's completion thread from then on;
// `armed` carries the hand-over (see io_engine.cc).

#ifndef CACHEFS_IO_IO_REQUEST_H_
#define CACHEFS_IO_IO_REQUEST_H_

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "io/env.h"
#include "io/io_engine.h"

namespace cachefs {

inline constexpr int kSegmentsPerSlot = 4;
inline constexpr int kSegmentIov = 16;
inline constexpr int kSlotInlineIov = 16;
// A transfer is split into at most kSegmentsPerSlot segments at once, none
// smaller than this (smaller requests gain nothing from being split).
inline constexpr size_t kMinSegmentBytes = 64 * 1024;

struct Segment {
  uint64_t pos = 0;        // file position of the next byte to move
  size_t remaining = 0;    // bytes still to move
  int iovcnt = 0;
  iovec iov[kSegmentIov];  // advanced in place after a short transfer
};

struct Slot {
  // Set by the submitting thread; read by the completion thread.
  IoOp::Kind kind = IoOp::Kind::kRead;
  int fd = -1;
  bool direct = false;
  uint64_t pos = 0;
  size_t total = 0;
  const iovec* iov = nullptr;  // inline_iov or overflow
  int iovcnt = 0;
  iovec inline_iov[kSlotInlineIov];
  std::vector<iovec> overflow;  // for longer lists; its capacity is kept
  IoCallback done;
  absl::Status immediate;  // completes without I/O when not OK

  // Carving cursor: the first byte not yet given to a segment.
  int next_iov = 0;
  size_t next_iov_offset = 0;
  size_t next_byte = 0;
  size_t segment_bytes = 0;

  // Progress, touched only by the completion thread once armed.
  int active_segments = 0;
  size_t eof_at = 0;  // transfer offset where a read met EOF; total if none
  int error = 0;      // first errno seen
  Segment segments[kSegmentsPerSlot];

  // Released by the submitter after filling the slot, acquired by the
  // completion thread before reading it.
  std::atomic<bool> armed{false};
};

// OK, or kInvalidArgument (EINVAL payload) naming the first misaligned
// value when `file.direct` and the transfer breaks O_DIRECT's rules.
absl::Status CheckTransfer(const char* op, const BackingFile& file,
                           uint64_t pos, std::span<const iovec> iov);

// Copies the transfer into `slot` and resets its progress and cursor.
void FillSlot(Slot& slot, IoOp::Kind kind, const BackingFile& file,
              uint64_t pos, std::span<const iovec> iov, IoCallback done);

// Whether bytes remain that no segment has taken yet.
bool HasUncarved(const Slot& slot);

// Gives the next piece of the transfer to `seg`.
// REQUIRES: HasUncarved(slot).
void CarveSegment(Slot& slot, Segment& seg);

// What to do with a segment after a completion.
enum class SegmentState { kResubmit, kDone };

// Applies `result` (bytes moved or -errno) to `seg` of `slot`. EAGAIN,
// EINTR and short transfers give kResubmit; errors and EOF are recorded in
// the slot and give kDone, as does a finished segment.
SegmentState ApplyResult(Slot& slot, Segment& seg, int64_t result);

// The transfer's outcome once no segment is active.
absl::StatusOr<size_t> SlotResult(const Slot& slot);

}  // namespace cachefs

#endif  // CACHEFS_IO_IO_REQUEST_H_
