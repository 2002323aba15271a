#include "cachefs/attr_snapshot.h"

#include <tuple>
#include <vector>

#include "contentmap/crc32c.h"
#include "contentmap/wire.h"

namespace cachefs {
namespace {

constexpr std::string_view kMagic = "CFSATTR1";

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
  std::string body;
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
  std::string out(kMagic);
  wire::PutU64(&out, static_cast<uint64_t>(now.realtime_ns));
  wire::PutU32(&out, count);
  out += body;
  wire::PutU32(&out, Crc32c(out));
  return out;
}

absl::StatusOr<size_t> DecodeAttrSnapshot(std::string_view data,
                                          SnapshotClock now,
                                          int64_t max_age_ns,
                                          AttrCache* cache) {
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
  std::vector<std::tuple<std::string, struct stat, int64_t>> entries;
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
    if (age < 0 || age > max_age_ns) continue;
    entries.emplace_back(std::string(key), st, now.monotonic_ns - age);
  }
  if (!in.ok || !in.reader.empty()) {
    return absl::DataLossError("attribute snapshot is truncated");
  }
  for (const auto& [key, st, fetched] : entries) cache->Put(key, st, fetched);
  return entries.size();
}

}  // namespace cachefs
