// nfs_read_depth: how fast libnfs alone reads one file over one connection
// with N reads in flight; the baseline for cachefs's cold read over NFS
// (bench/nfs.sh), which goes through the same library and connection.
//
//   nfs_read_depth 'nfs://HOST/EXPORT?version=4&nfsport=PORT' /FILE DEPTH
//
// Prints "depth N: X MB/s". Reads are 256 KiB (one granule), issued in
// order, a new one as each reply arrives.

#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <nfsc/libnfs.h>

namespace {

constexpr uint64_t kPiece = 256 * 1024;

struct Reader {
  struct nfs_context* nfs = nullptr;
  struct nfsfh* fh = nullptr;
  uint64_t size = 0;
  uint64_t next = 0;
  uint64_t bytes = 0;
  int in_flight = 0;
  bool failed = false;
};

// One read in flight; libnfs 6 reads into the buffer it is given.
struct Pending {
  Reader* reader;
  std::unique_ptr<char[]> buffer;
};

void Issue(Reader& r);

void OnRead(int result, struct nfs_context* nfs, void*, void* private_data) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(private_data));
  Reader& r = *pending->reader;
  --r.in_flight;
  if (result < 0) {
    // libnfs 4.0's data is not always a message here; its last error is.
    std::fprintf(stderr, "nfs_read_depth: read failed: %s\n",
                 nfs_get_error(nfs));
    r.failed = true;
    return;
  }
  r.bytes += static_cast<uint64_t>(result);
  Issue(r);
}

void Issue(Reader& r) {
  if (r.failed || r.next >= r.size) return;
  const uint64_t offset = r.next;
  r.next += kPiece;
  ++r.in_flight;
  auto* pending = new Pending{&r, nullptr};
#ifdef LIBNFS_API_V2
  pending->buffer = std::make_unique<char[]>(kPiece);
  const int rc = nfs_pread_async(r.nfs, r.fh, pending->buffer.get(), kPiece,
                                 offset, OnRead, pending);
#else
  const int rc = nfs_pread_async(r.nfs, r.fh, offset, kPiece, OnRead, pending);
#endif
  if (rc != 0) {
    std::fprintf(stderr, "nfs_read_depth: %s\n", nfs_get_error(r.nfs));
    delete pending;
    --r.in_flight;
    r.failed = true;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::atoi(argv[3]) < 1) {
    std::fprintf(stderr, "usage: nfs_read_depth NFS_URL /FILE DEPTH\n");
    return 2;
  }
  const int depth = std::atoi(argv[3]);
  Reader r;
  r.nfs = nfs_init_context();
  struct nfs_url* url = nfs_parse_url_dir(r.nfs, argv[1]);
  if (url == nullptr) {
    std::fprintf(stderr, "nfs_read_depth: %s\n", nfs_get_error(r.nfs));
    return 1;
  }
  if (nfs_mount(r.nfs, url->server, url->path) != 0 ||
      nfs_open(r.nfs, argv[2], O_RDONLY, &r.fh) != 0) {
    std::fprintf(stderr, "nfs_read_depth: %s\n", nfs_get_error(r.nfs));
    return 1;
  }
  struct nfs_stat_64 st;
  if (nfs_fstat64(r.nfs, r.fh, &st) != 0) {
    std::fprintf(stderr, "nfs_read_depth: %s\n", nfs_get_error(r.nfs));
    return 1;
  }
  r.size = st.nfs_size;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < depth; ++i) Issue(r);
  while (r.in_flight > 0) {
    pollfd fd = {nfs_get_fd(r.nfs), static_cast<short>(nfs_which_events(r.nfs)),
                 0};
    if (poll(&fd, 1, 1000) < 0) break;
    if (nfs_service(r.nfs, fd.revents) < 0) {
      std::fprintf(stderr, "nfs_read_depth: %s\n", nfs_get_error(r.nfs));
      return 1;
    }
  }
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  nfs_close(r.nfs, r.fh);
  nfs_destroy_url(url);
  nfs_destroy_context(r.nfs);
  if (r.failed) return 1;
  std::printf("depth %d: %.1f MB/s\n", depth, r.bytes / 1e6 / seconds);
  return 0;
}
