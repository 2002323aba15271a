#include "netfs/read_path.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "io/countdown.h"
#include "io/env.h"
#include "io/io_engine.h"

namespace cachefs {
namespace {

void Keep(ReadStream& stream, uint64_t index, uint64_t epoch, const void* data,
          size_t length) {
  absl::MutexLock lock(&stream.mu);
  for (auto it = stream.kept.begin(); it != stream.kept.end(); ++it) {
    if (it->index == index) {
      stream.kept.erase(it);
      break;
    }
  }
  stream.kept.push_back(ReadStream::KeptGranule{
      index, epoch, std::string(static_cast<const char*>(data), length)});
  if (stream.kept.size() > ReadStream::kKeptGranules) stream.kept.pop_front();
}

// Starts the cache write of one fetched granule; its buffer goes back to
// the pool when the write completes. With `stream`, a granule the cache
// refuses is kept there instead (see ReadStream::kept).
void StoreGranule(Cookie::FillClaim claim, Buffer buffer, size_t length,
                  std::shared_ptr<ReadStream> stream = nullptr,
                  uint64_t epoch = 0) {
  size_t io_length = RoundUpToIo(length);
  std::memset(buffer.data() + length, 0, io_length - length);
  iovec iov{buffer.data(), io_length};
  const uint64_t index = claim.first();
  claim.Complete({&iov, 1},
                 [buffer = std::move(buffer), stream = std::move(stream), index,
                  epoch, length](absl::StatusOr<size_t> stored) {
                   if (!stored.ok() && stream != nullptr) {
                     Keep(*stream, index, epoch, buffer.data(), length);
                   }
                 });
}

}  // namespace

ReadReply::~ReadReply() {
  for (Granule& g : granules_) {
    // Only a granule this read used part of is worth keeping: the kernel
    // asks for the rest in another request, while one it used whole is
    // not asked for again.
    std::shared_ptr<ReadStream> keep_in =
        g.want_from > 0 || g.want_to < g.length ? stream_ : nullptr;
    if (g.claim) {
      StoreGranule(std::move(g.claim), std::move(g.buffer), g.length,
                   std::move(keep_in), epoch_);
    } else if (g.from_origin && g.length > 0 && keep_in != nullptr) {
      Keep(*keep_in, g.index, epoch_, g.buffer.data(), g.length);
    }
  }
}

size_t ReadReply::size() const {
  size_t n = 0;
  for (const iovec& v : iov_) n += v.iov_len;
  return n;
}

ReadPath::ReadPath(Options options, BufferPool* buffers,
                   Dispatcher* origin_pool, CacheStats* stats, Tracer* tracer)
    : options_(options),
      buffers_(buffers),
      origin_pool_(origin_pool),
      stats_(stats),
      tracer_(tracer) {}

uint64_t ReadPath::GranuleLength(uint64_t index, uint64_t file_size) const {
  uint64_t start = index << options_.granule_shift;
  return std::min(uint64_t{1} << options_.granule_shift, file_size - start);
}

absl::StatusOr<std::unique_ptr<ReadReply>> ReadPath::Read(
    const std::shared_ptr<ReadStream>& stream, uint64_t off, size_t size) {
  auto reply = std::make_unique<ReadReply>();
  reply->stream_ = stream;
  reply->epoch_ = stream->cookie->data_epoch();
  // The size as of now: writes through cachefs move it while files are open.
  const uint64_t file_size = stream->cookie->object_size();
  if (off >= file_size || size == 0) return reply;
  const uint32_t shift = options_.granule_shift;
  const uint64_t end = std::min<uint64_t>(off + size, file_size);
  for (uint64_t g = off >> shift; g <= (end - 1) >> shift; ++g) {
    ReadReply::Granule granule;
    granule.index = g;
    granule.length = GranuleLength(g, file_size);
    uint64_t base = g << shift;
    granule.want_from = std::max(off, base) - base;
    granule.want_to = std::min<uint64_t>(end - base, granule.length);
    reply->granules_.push_back(std::move(granule));
    reply->granules_.back().buffer = buffers_->Acquire();
  }
  bool missed = false;
  absl::Status status = FillGranules(*stream, *reply, &missed);
  if (!status.ok()) {
    for (ReadReply::Granule& g : reply->granules_) g.claim.Abort();
    return status;
  }
  // The reply covers [off, end), ending early if the origin file turned out
  // shorter than it was at open.
  for (const ReadReply::Granule& g : reply->granules_) {
    uint64_t base = g.index << shift;
    uint64_t from = std::max(off, base) - base;
    uint64_t to = std::min<uint64_t>(end - base, g.length);
    if (to > from) reply->iov_.push_back({g.buffer.data() + from, to - from});
    if (g.length < GranuleLength(g.index, file_size)) break;
  }
  if (tracer_->active()) TraceRead(*stream, *reply, off, end);
  ReadAhead(stream, off, end - off, missed);
  return reply;
}

void ReadPath::TraceRead(const ReadStream& stream, const ReadReply& reply,
                         uint64_t off, uint64_t end) const {
  const uint32_t shift = options_.granule_shift;
  const std::vector<ReadReply::Granule>& granules = reply.granules_;
  const std::string key = stream.cookie->key();
  for (size_t i = 0; i < granules.size();) {
    size_t j = i;
    uint64_t bytes = 0;
    while (j < granules.size() &&
           granules[j].from_cache == granules[i].from_cache) {
      const uint64_t base = granules[j].index << shift;
      bytes += std::min<uint64_t>(end, base + granules[j].length) -
               std::max(off, base);
      ++j;
    }
    tracer_->Emit(TraceEvent("read", key)
                      .Granules(granules[i].index, j - i)
                      .Bytes(bytes)
                      .Detail(granules[i].from_cache ? "hit" : "miss"));
    i = j;
  }
}

void ReadPath::CountFetch(const ReadStream& stream, uint64_t index,
                          size_t bytes, int64_t started_ns,
                          const char* why) const {
  const int64_t took = Env::Default()->MonotonicNanos() - started_ns;
  Bump(stats_->bytes_read_from_origin, bytes);
  Bump(stats_->origin_fetches);
  Bump(stats_->origin_fetch_ns,
       static_cast<uint64_t>(std::max<int64_t>(0, took)));
  if (tracer_->active()) {
    tracer_->Emit(TraceEvent("fill", stream.cookie->key())
                      .Granules(index, 1)
                      .Bytes(bytes)
                      .Detail(absl::StrFormat("%s, %.3f ms", why, took / 1e6)));
  }
}

namespace {

// A run of granules of one reply that are present in the cache: one cache
// read.
struct CacheRun {
  size_t begin = 0;  // [begin, end) in the reply's granules
  size_t end = 0;
  uint64_t pos = 0;   // file position of the read
  size_t needed = 0;  // bytes the read must return
  bool ok = false;
};

// Marks the granules `plan` serves from the cache.
void MarkSources(const Cookie::ReadPlan& plan, uint32_t shift,
                 std::vector<ReadReply::Granule>& granules) {
  const uint64_t first = granules.front().index;
  for (const ReadSegment& s : plan.segments()) {
    if (s.source != ReadSegment::Source::kCache) continue;
    for (uint64_t g = s.pos >> shift; g <= (s.pos + s.len - 1) >> shift; ++g) {
      granules[g - first].from_cache = true;
    }
  }
}

// The cache reads for `granules`, each granule's iovec in `iovs`. Inside a
// run granules are wanted whole, so the pieces are contiguous; only the
// run's ends are trimmed to what the reply needs.
std::vector<CacheRun> CacheRunsOf(std::vector<ReadReply::Granule>& granules,
                                  uint32_t shift, bool whole,
                                  std::vector<iovec>* iovs) {
  std::vector<CacheRun> runs;
  iovs->assign(granules.size(), iovec{});
  for (size_t i = 0; i < granules.size(); ++i) {
    ReadReply::Granule& g = granules[i];
    if (!g.from_cache) continue;
    size_t from = whole ? 0 : g.want_from & ~(kDirectIoAlignment - 1);
    size_t to = RoundUpToIo(whole ? g.length : g.want_to);
    (*iovs)[i] = {g.buffer.data() + from, to - from};
    if (runs.empty() || runs.back().end != i) {
      runs.push_back({i, i, (g.index << shift) + from, 0, false});
    }
    runs.back().end = i + 1;
    runs.back().needed += g.want_to - from;
  }
  return runs;
}

}  // namespace

// Copies a granule kept by an earlier read of the stream into `g`.
bool FromKept(ReadStream& stream, uint64_t epoch, ReadReply::Granule& g) {
  absl::MutexLock lock(&stream.mu);
  for (const ReadStream::KeptGranule& kept : stream.kept) {
    if (kept.index != g.index || kept.epoch != epoch) continue;
    std::memcpy(g.buffer.data(), kept.data.data(), kept.data.size());
    g.length = kept.data.size();
    return true;
  }
  return false;
}

absl::Status ReadPath::FillGranules(ReadStream& stream, ReadReply& reply,
                                    bool* missed) {
  const uint32_t shift = options_.granule_shift;
  std::vector<ReadReply::Granule>& granules = reply.granules_;
  Cookie::ReadPlan plan = stream.cookie->PrepareRead(
      granules.front().index << shift, granules.size() << shift);
  MarkSources(plan, shift, granules);
  for (ReadReply::Granule& g : granules) {
    if (!g.from_cache) *missed = true;
  }
  std::vector<iovec> iovs;
  std::vector<CacheRun> runs =
      CacheRunsOf(granules, shift, options_.whole_granules, &iovs);
  auto finish_run = [&](CacheRun& run, const absl::StatusOr<size_t>& result) {
    run.ok = result.ok() && *result >= run.needed;
    if (result.ok() && !run.ok) {
      plan.Withdraw(absl::DataLossError("cache file shorter than its map at " +
                                        std::to_string(run.pos)));
    }
  };
  auto run_iov = [&](const CacheRun& run) {
    return std::span<const iovec>(&iovs[run.begin], run.end - run.begin);
  };
  // A plain hit: this thread does the I/O, no hand-off to wait for.
  const bool single_hit =
      runs.size() == 1 && runs[0].end - runs[0].begin == granules.size();
  if (single_hit) {
    finish_run(runs[0], plan.ReadSync(runs[0].pos, run_iov(runs[0])));
  }
  // The cache runs may be culled once read; the last reader lets go.
  std::atomic<size_t> runs_left{runs.size()};
  auto run_done = [&] {
    if (runs_left.fetch_sub(1) == 1) plan.Unpin();
  };
  if (single_hit) run_done();
  if (runs.empty()) plan.Unpin();
  if (single_hit && runs[0].ok) {
    Bump(stats_->reads_fully_cached);
    return absl::OkStatus();
  }
  // Otherwise all cache runs in flight at once, the origin meanwhile.
  Countdown cache_reads(single_hit ? 0 : static_cast<int>(runs.size()));
  for (size_t r = 0; !single_hit && r < runs.size(); ++r) {
    plan.Read(runs[r].pos, run_iov(runs[r]),
              [&, r](absl::StatusOr<size_t> result) {
                finish_run(runs[r], result);
                run_done();
                cache_reads.Done();
              });
  }
  std::vector<ReadReply::Granule*> missing;
  for (ReadReply::Granule& g : granules) {
    if (g.from_cache || FromKept(stream, reply.epoch_, g)) continue;
    g.claim = stream.cookie->ClaimFill(g.index, 1);
    if (g.claim) {
      // A fetch that held the claim until just now may have kept the
      // granule here on its way out (the cache refused it).
      if (FromKept(stream, reply.epoch_, g)) {
        g.claim.Abort();
        continue;
      }
    } else if (TakeOthersFetch(stream, reply.epoch_, g)) {
      // Another request claimed it since the plan (the kernel reads a
      // granule in several requests, some at once): its fetch will do.
      continue;
    }
    missing.push_back(&g);
  }
  absl::Status status = FetchFromOrigin(stream, missing);
  cache_reads.Wait();
  if (!status.ok()) return status;
  // A cache fault is never the reader's problem: fetch those granules too.
  // A fault that withdrew the object spoils the whole run; a checksum
  // mismatch only drops the granules that failed, and the others of the
  // run were read whole and checked.
  std::vector<ReadReply::Granule*> retry;
  for (const CacheRun& run : runs) {
    for (size_t i = run.begin; !run.ok && i < run.end; ++i) {
      ReadReply::Granule& g = granules[i];
      if (plan.StillCached(g.index)) continue;
      g.from_cache = false;
      // Stored again when fetched, if the object is still there.
      g.claim = stream.cookie->ClaimFill(g.index, 1);
      retry.push_back(&g);
    }
  }
  if (!retry.empty()) return FetchFromOrigin(stream, retry);
  if (missing.empty()) Bump(stats_->reads_fully_cached);
  return absl::OkStatus();
}

bool ReadPath::TakeOthersFetch(ReadStream& stream, uint64_t epoch,
                               ReadReply::Granule& g) {
  const uint32_t shift = options_.granule_shift;
  // Waits for the fetch in flight, if there is one.
  Cookie::ReadPlan plan =
      stream.cookie->PrepareRead(g.index << shift, uint64_t{1} << shift);
  if (FromKept(stream, epoch, g)) return true;
  if (!plan.FullyCached()) return false;
  iovec iov{g.buffer.data(), RoundUpToIo(g.length)};
  absl::StatusOr<size_t> n = plan.ReadSync(g.index << shift, {&iov, 1});
  if (!n.ok() || *n < g.length) return false;
  g.from_cache = true;
  return true;
}

absl::Status ReadPath::FetchFromOrigin(
    ReadStream& stream, std::vector<ReadReply::Granule*> granules) {
  if (granules.empty()) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<OriginFile>> file = stream.origin();
  if (!file.ok()) return file.status();
  const uint32_t shift = options_.granule_shift;
  std::vector<absl::Status> results(granules.size());
  Countdown fetched(static_cast<int>(granules.size()));
  for (size_t i = 0; i < granules.size(); ++i) {
    auto fetch = [&, i] {
      ReadReply::Granule& g = *granules[i];
      // The whole granule, not just up to the size seen before the claim:
      // a write may have extended the file since, and the stored granule
      // must hold all of it.
      const int64_t started = Env::Default()->MonotonicNanos();
      absl::StatusOr<size_t> n =
          (*file)->PRead(g.buffer.data(), size_t{1} << shift, g.index << shift);
      if (n.ok()) {
        CountFetch(stream, g.index, *n, started, "for a read");
        g.from_origin = *n >= g.length;
        if (*n < g.length) g.claim.Abort();  // the file shrank: cache none
        g.length = *n;
      }
      // Moved so that no reference is released here after Done().
      results[i] = std::move(n).status();
      fetched.Done();
    };
    // The last one runs here: this thread would only wait anyway.
    if (i + 1 < granules.size()) {
      origin_pool_->Dispatch(std::move(fetch));
    } else {
      fetch();
    }
  }
  fetched.Wait();
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void ReadPath::ReadAhead(const std::shared_ptr<ReadStream>& stream,
                         uint64_t off, size_t size, bool missed) {
  const uint32_t shift = options_.granule_shift;
  const uint64_t end = off + size;
  uint64_t first, last;
  {
    absl::MutexLock lock(&stream->mu);
    // The kernel's read-ahead sends several requests of one sequential
    // reader at once, and they reach cachefs in any order: a read inside
    // the window fetched ahead, no farther from where the reader got to
    // than those requests span, is the same reader going on, not a seek.
    // (A reader that skips less than that is taken for a sequential one.)
    const bool in_window = (off >> shift) < stream->readahead_end;
    const uint64_t span = options_.reorder_bytes;
    const bool sequential = off == stream->next_offset ||
                            (in_window && off + span >= stream->next_offset &&
                             off <= stream->next_offset + span);
    stream->next_offset = sequential ? std::max(stream->next_offset, end) : end;
    if (!sequential || options_.readahead_granules == 0 ||
        !stream->read_ahead) {
      stream->readahead_end = 0;
      return;
    }
    if (!missed && !in_window) return;
    uint64_t granules =
        (stream->cookie->object_size() + (uint64_t{1} << shift) - 1) >> shift;
    first = std::max((end + (uint64_t{1} << shift) - 1) >> shift,
                     stream->readahead_end);
    last = std::min(granules,
                    ((end - 1) >> shift) + 1 + options_.readahead_granules);
    if (first >= last) return;
    stream->readahead_end = last;
  }
  // A granule fetched ahead that the cache then refuses would be fetched
  // again when the reader gets there.
  if (!stream->cookie->WouldAdmit((last - first) << shift)) return;
  // The jobs hold the origin file itself: they may outlive the handle.
  std::shared_ptr<OriginFile> file;
  for (uint64_t g = first; g < last; ++g) {
    Cookie::FillClaim claim = stream->cookie->ClaimFill(g, 1);
    if (!claim) continue;  // present, in flight, or no cache object
    Buffer buffer = buffers_->TryAcquire();
    if (file == nullptr) {
      absl::StatusOr<std::shared_ptr<OriginFile>> opened = stream->origin();
      if (opened.ok()) file = *std::move(opened);
    }
    if (!buffer || file == nullptr) return;  // the reader fetches it
    origin_pool_->Enqueue([this, stream, file, g, claim = std::move(claim),
                           buffer = std::move(buffer)]() mutable {
      size_t length = GranuleLength(g, stream->cookie->object_size());
      const int64_t started = Env::Default()->MonotonicNanos();
      absl::StatusOr<size_t> n = file->PRead(buffer.data(), buffer.size(),
                                             g << options_.granule_shift);
      if (!n.ok() || *n < length) return;  // the claim goes unfilled
      CountFetch(*stream, g, *n, started, "read-ahead");
      StoreGranule(std::move(claim), std::move(buffer), *n);
    });
  }
}

}  // namespace cachefs
