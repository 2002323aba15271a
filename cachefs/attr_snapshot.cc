#include "cachefs/attr_snapshot.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "contentmap/crc32c.h"
#include "contentmap/wire.h"

namespace cachefs {
namespace {

constexpr std::string_view kMagic = "CFSATTR1";
// An entry with an empty key: the count a snapshot's size allows.
constexpr uint64_t kMinEntryBytes =
    2 + 8 + 8 + 4 + 8 + 4 + 4 + 8 + 8 + 8 + 8 + 3 * (8 + 4) + 8;

void PutTime(std::string* out, const struct timespec& t) {
  wire::PutU64(out, static_cast<uint64_t>(t.tv_sec));
  wire::PutU32(out, static_cast<uint32_t>(t.tv_nsec));
}

struct timespec GetTime(wire::FieldReader& in) {
  struct timespec t;
  t.tv_sec = static_cast<time_t>(in.Get(8));
  t.tv_nsec = static_cast<long>(in.Get(4));
  return t;
}

}  // namespace

std::string EncodeAttrSnapshot(const AttrCache& cache, SnapshotClock now,
                               int64_t max_age_ns) {
  std::string out(kMagic);
  wire::PutU64(&out, static_cast<uint64_t>(now.realtime_ns));
  const size_t count_at = out.size();
  wire::PutU32(&out, 0);  // the count, filled in below
  out.reserve(out.size() + cache.size() * (kMinEntryBytes + 32) + 4);
  std::string& body = out;
  uint32_t count = 0;
  cache.ForEach([&](const std::string& key, const struct stat& st,
                    int64_t fetched) {
    const int64_t age = now.monotonic_ns - fetched;
    if (age > max_age_ns || key.size() > 0xffff) return;
    wire::PutU16(&body, static_cast<uint16_t>(key.size()));
    body.append(key);
    wire::PutU64(&body, st.st_dev);
    wire::PutU64(&body, st.st_ino);
    wire::PutU32(&body, st.st_mode);
    wire::PutU64(&body, st.st_nlink);
    wire::PutU32(&body, st.st_uid);
    wire::PutU32(&body, st.st_gid);
    wire::PutU64(&body, st.st_rdev);
    wire::PutU64(&body, static_cast<uint64_t>(st.st_size));
    wire::PutU64(&body, static_cast<uint64_t>(st.st_blksize));
    wire::PutU64(&body, static_cast<uint64_t>(st.st_blocks));
    PutTime(&body, st.st_atim);
    PutTime(&body, st.st_mtim);
    PutTime(&body, st.st_ctim);
    wire::PutU64(&body, static_cast<uint64_t>(now.realtime_ns - age));
    ++count;
  });
  std::string count_field;
  wire::PutU32(&count_field, count);
  out.replace(count_at, count_field.size(), count_field);
  wire::PutU32(&out, Crc32c(out));
  return out;
}

namespace {

// Calls `fn(key, attr, fetched on the monotonic clock)` for each entry of
// `data` fetched at most `max_age_ns` before `now`, as it parses them; an
// error says `data` is not a whole, valid snapshot (`fn` may have been
// called for some entries before).
template <typename Fn>
absl::Status ParseAttrSnapshot(std::string_view data, SnapshotClock now,
                               int64_t max_age_ns, uint64_t* count_out, Fn fn) {
  if (data.size() < kMagic.size() + 16 ||
      data.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("not an attribute snapshot");
  }
  const std::string_view body = data.substr(0, data.size() - 4);
  if (wire::LoadFixed(data.data() + body.size(), 4) != Crc32c(body)) {
    return absl::DataLossError("attribute snapshot checksum mismatch");
  }
  wire::FieldReader in{wire::Reader(body.substr(kMagic.size()))};
  in.Get(8);  // when it was saved
  const uint64_t count = in.Get(4);
  *count_out = std::min<uint64_t>(count, body.size() / kMinEntryBytes);
  for (uint64_t i = 0; in.ok && i < count; ++i) {
    std::string_view key;
    const uint64_t key_size = in.Get(2);
    if (!in.ok || !in.reader.ReadBytes(key_size, &key)) {
      in.ok = false;
      break;
    }
    struct stat st = {};
    st.st_dev = in.Get(8);
    st.st_ino = in.Get(8);
    st.st_mode = static_cast<mode_t>(in.Get(4));
    st.st_nlink = in.Get(8);
    st.st_uid = static_cast<uid_t>(in.Get(4));
    st.st_gid = static_cast<gid_t>(in.Get(4));
    st.st_rdev = in.Get(8);
    st.st_size = static_cast<off_t>(in.Get(8));
    st.st_blksize = static_cast<blksize_t>(in.Get(8));
    st.st_blocks = static_cast<blkcnt_t>(in.Get(8));
    st.st_atim = GetTime(in);
    st.st_mtim = GetTime(in);
    st.st_ctim = GetTime(in);
    const int64_t fetched = static_cast<int64_t>(in.Get(8));
    const int64_t age = now.realtime_ns - fetched;
    // From the future (the clock went back) or too old: worthless.
    if (!in.ok || age < 0 || age > max_age_ns) continue;
    fn(key, st, now.monotonic_ns - age);
  }
  if (!in.ok || !in.reader.empty()) {
    return absl::DataLossError("attribute snapshot is truncated");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<size_t> DecodeAttrSnapshot(std::string_view data,
                                          SnapshotClock now, int64_t max_age_ns,
                                          AttrCache* cache, bool behind) {
  std::vector<AttrCache::Loaded> entries;
  uint64_t count = 0;
  absl::Status parsed = ParseAttrSnapshot(
      data, now, max_age_ns, &count,
      [&](std::string_view key, const struct stat& st, int64_t fetched) {
        if (entries.empty()) entries.reserve(count);
        entries.push_back({std::string(key), st, fetched});
      });
  if (!parsed.ok()) return parsed;
  const size_t loaded = entries.size();
  cache->PutAll(std::move(entries), behind);
  return loaded;
}

absl::StatusOr<std::optional<struct stat>> FindInAttrSnapshot(
    std::string_view data, SnapshotClock now, int64_t max_age_ns,
    std::string_view key) {
  std::optional<struct stat> found;
  uint64_t count = 0;
  absl::Status parsed = ParseAttrSnapshot(
      data, now, max_age_ns, &count,
      [&](std::string_view entry_key, const struct stat& st, int64_t) {
        if (entry_key == key) found = st;
      });
  if (!parsed.ok()) return parsed;
  return found;
}

}  // namespace cachefs
