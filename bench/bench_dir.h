// A fresh directory for a benchmark's cache: under $CACHEFS_BENCH_DIR
// (default /var/tmp, a real disk rather than tmpfs), named for `what`.
// The caller removes it.

#ifndef CACHEFS_BENCH_BENCH_DIR_H_
#define CACHEFS_BENCH_BENCH_DIR_H_

#include <stdlib.h>

#include <cstdlib>
#include <string>

namespace cachefs {

inline std::string MakeBenchDir(const std::string& what) {
  const char* dir = std::getenv("CACHEFS_BENCH_DIR");
  std::string templ = std::string(dir != nullptr ? dir : "/var/tmp") +
                      "/cachefs-" + what + "-bench-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) std::abort();
  return templ;
}

}  // namespace cachefs

#endif  // CACHEFS_BENCH_BENCH_DIR_H_
