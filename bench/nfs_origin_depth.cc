// Reads one file of an NFS export through cachefs's own origin layer
// (NfsOrigin, its connections and service threads), from N threads at
// once, each asking for the next 256 KiB as the origin pool's workers do:
// the rate the origin layer alone gives cachefs, set beside libnfs alone
// (nfs_read_depth) in bench/nfs.sh.
//
//   nfs_origin_depth NFS_URL /FILE THREADS
//
// Prints "threads N: R MB/s".

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "netfs/caller.h"
#include "netfs/open_origin.h"

int main(int argc, char** argv) {
  if (argc != 4 || std::atoi(argv[3]) < 1) {
    std::fprintf(stderr, "usage: nfs_origin_depth NFS_URL /FILE THREADS\n");
    return 2;
  }
  const int threads = std::atoi(argv[3]);
  auto arg = cachefs::ParseOriginArgument(argv[1]);
  if (!arg.ok()) {
    std::fprintf(stderr, "nfs_origin_depth: %s\n",
                 std::string(arg.status().message()).c_str());
    return 1;
  }
  cachefs::OriginOptions options;
  auto origin = cachefs::OpenOrigin(*arg, options);
  if (!origin.ok()) {
    std::fprintf(stderr, "nfs_origin_depth: %s\n",
                 std::string(origin.status().message()).c_str());
    return 1;
  }
  const cachefs::Caller& daemon = cachefs::Caller::Daemon();
  auto st = (*origin)->GetAttr(daemon, argv[2]);
  auto file = (*origin)->OpenFile(daemon, argv[2], O_RDONLY);
  if (!st.ok() || !file.ok()) {
    const absl::Status& why = !st.ok() ? st.status() : file.status();
    std::fprintf(stderr, "nfs_origin_depth: %s\n", why.ToString().c_str());
    return 1;
  }
  constexpr size_t kPiece = 256 * 1024;
  const uint64_t size = st->st_size;
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> failed{false};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      std::unique_ptr<char[]> buf(new char[kPiece]);
      for (uint64_t off = next.fetch_add(kPiece); off < size && !failed;
           off = next.fetch_add(kPiece)) {
        auto n = (*file)->PRead(buf.get(), kPiece, off);
        if (!n.ok()) {
          std::fprintf(stderr, "nfs_origin_depth: %s\n",
                       std::string(n.status().message()).c_str());
          failed = true;
          return;
        }
        bytes += *n;
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  if (failed) return 1;
  std::printf("threads %d: %.1f MB/s\n", threads, bytes / 1e6 / seconds);
  return 0;
}
