#include "io/io_request.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

bool Aligned(uint64_t v) { return v % kDirectIoAlignment == 0; }

const char* OpName(IoOp::Kind kind) {
  return kind == IoOp::Kind::kRead ? "ReadToIter" : "WriteIterToCache";
}

// Drops the first `n` bytes of the segment's iovecs.
void Advance(Segment& seg, size_t n) {
  seg.pos += n;
  seg.remaining -= n;
  int i = 0;
  while (i < seg.iovcnt && n >= seg.iov[i].iov_len) {
    n -= seg.iov[i].iov_len;
    ++i;
  }
  if (i < seg.iovcnt) {
    seg.iov[i].iov_base = static_cast<char*>(seg.iov[i].iov_base) + n;
    seg.iov[i].iov_len -= n;
  }
  if (i > 0) {
    std::copy(seg.iov + i, seg.iov + seg.iovcnt, seg.iov);
    seg.iovcnt -= i;
  }
}

}  // namespace

absl::Status CheckTransfer(const char* op, const BackingFile& file,
                           uint64_t pos, std::span<const iovec> iov) {
  if (iov.empty()) {
    return ErrnoToStatus(EINVAL, absl::StrCat(op, " fd ", file.fd,
                                              ": no iovecs"));
  }
  if (!file.direct) return absl::OkStatus();
  std::string bad;
  if (!Aligned(pos)) bad = absl::StrCat("pos ", pos);
  for (size_t i = 0; bad.empty() && i < iov.size(); ++i) {
    auto base = reinterpret_cast<uintptr_t>(iov[i].iov_base);
    if (!Aligned(base) || !Aligned(iov[i].iov_len)) {
      bad = absl::StrCat("iov[", i, "] = {", absl::Hex(base), ", ",
                         iov[i].iov_len, "}");
    }
  }
  if (bad.empty()) return absl::OkStatus();
  return ErrnoToStatus(
      EINVAL, absl::StrCat(op, " fd ", file.fd, ": O_DIRECT transfer with ",
                           bad, " not aligned to ", kDirectIoAlignment));
}

void FillSlot(Slot& slot, IoOp::Kind kind, const BackingFile& file,
              uint64_t pos, std::span<const iovec> iov, IoCallback done) {
  slot.kind = kind;
  slot.fd = file.fd;
  slot.direct = file.direct;
  slot.pos = pos;
  if (iov.size() <= kSlotInlineIov) {
    std::copy(iov.begin(), iov.end(), slot.inline_iov);
    slot.iov = slot.inline_iov;
  } else {
    slot.overflow.assign(iov.begin(), iov.end());
    slot.iov = slot.overflow.data();
  }
  slot.iovcnt = static_cast<int>(iov.size());
  slot.total = 0;
  for (const iovec& v : iov) slot.total += v.iov_len;
  slot.done = std::move(done);
  slot.immediate = absl::OkStatus();
  slot.next_iov = 0;
  slot.next_iov_offset = 0;
  slot.next_byte = 0;
  size_t share = (slot.total + kSegmentsPerSlot - 1) / kSegmentsPerSlot;
  share = (share + kDirectIoAlignment - 1) / kDirectIoAlignment *
          kDirectIoAlignment;
  slot.segment_bytes = std::max(kMinSegmentBytes, share);
  slot.active_segments = 0;
  slot.eof_at = slot.total;
  slot.error = 0;
}

bool HasUncarved(const Slot& slot) { return slot.next_byte < slot.total; }

void CarveSegment(Slot& slot, Segment& seg) {
  seg.pos = slot.pos + slot.next_byte;
  seg.iovcnt = 0;
  const size_t want =
      std::min(slot.segment_bytes, slot.total - slot.next_byte);
  size_t got = 0;
  // Every cut falls on an iovec boundary or a multiple of segment_bytes, so
  // aligned transfers give aligned segments.
  while (got < want && seg.iovcnt < kSegmentIov) {
    const iovec& v = slot.iov[slot.next_iov];
    const size_t take = std::min(v.iov_len - slot.next_iov_offset, want - got);
    if (take > 0) {
      seg.iov[seg.iovcnt++] = {
          static_cast<char*>(v.iov_base) + slot.next_iov_offset, take};
    }
    got += take;
    slot.next_iov_offset += take;
    if (slot.next_iov_offset == v.iov_len) {
      ++slot.next_iov;
      slot.next_iov_offset = 0;
    }
  }
  seg.remaining = got;
  slot.next_byte += got;
}

SegmentState ApplyResult(Slot& slot, Segment& seg, int64_t result) {
  const bool read = slot.kind == IoOp::Kind::kRead;
  if (result == -EAGAIN || result == -EINTR) return SegmentState::kResubmit;
  if (result < 0) {
    if (slot.error == 0) slot.error = static_cast<int>(-result);
    return SegmentState::kDone;
  }
  if (result == 0) {
    // A read of 0 is end of file. A write of 0 would never finish.
    if (read) {
      slot.eof_at = std::min<size_t>(slot.eof_at, seg.pos - slot.pos);
    } else if (slot.error == 0) {
      slot.error = EIO;
    }
    return SegmentState::kDone;
  }
  Advance(seg, std::min<uint64_t>(result, seg.remaining));
  if (seg.remaining == 0) return SegmentState::kDone;
  if (read && slot.direct && !Aligned(seg.pos)) {
    // O_DIRECT reads stop at an unaligned offset only at end of file, and
    // the unaligned remainder could not be issued anyway.
    slot.eof_at = std::min<size_t>(slot.eof_at, seg.pos - slot.pos);
    return SegmentState::kDone;
  }
  return SegmentState::kResubmit;
}

absl::StatusOr<size_t> SlotResult(const Slot& slot) {
  if (!slot.immediate.ok()) return slot.immediate;
  if (slot.error != 0) {
    return ErrnoToStatus(slot.error,
                         absl::StrCat(OpName(slot.kind), " fd ", slot.fd,
                                      " at ", slot.pos, " (+", slot.total,
                                      ")"));
  }
  return slot.kind == IoOp::Kind::kRead ? slot.eof_at : slot.total;
}

}  // namespace cachefs
