#!/usr/bin/env bash
# Runs every cachefs test on a Debian 12 machine: installs what is missing,
# then builds and tests four ways:
#   build-clang  clang with -Wthread-safety -Werror, and the content-map
#                decoder fuzzed for CACHEFS_FUZZ_SECONDS (default 60)
#   build-asan   unit and cull tests under AddressSanitizer + UBSan (no integration
#                tests: those run as root against real mounts, below)
#   build-tsan   unit tests under ThreadSanitizer, and the NFS tests (the
#                libnfs service threads) with the daemon built with it
#   build        every test (labels unit, integration, cull)
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh

jobs=$(nproc)
fuzz_seconds=${CACHEFS_FUZZ_SECONDS:-60}

# ThreadSanitizer (clang 14, gcc 12) cannot map its shadow memory with the
# larger mmap randomization of recent kernels.
if [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ]; then
  if [ "$(id -u)" -eq 0 ]; then sysctl -qw vm.mmap_rnd_bits=28; fi
fi

step() { printf '\n=== %s\n' "$*"; }

step "clang: thread-safety analysis and the record decoder fuzzer"
CC=clang CXX=clang++ cmake -S . -B build-clang -DCACHEFS_FUZZ=ON \
  -DCACHEFS_BENCHMARKS=OFF >/dev/null
cmake --build build-clang -j"$jobs"
mkdir -p build-clang/fuzz-corpus
./build-clang/bin/record_fuzzer -max_total_time="$fuzz_seconds" \
  -print_final_stats=1 build-clang/fuzz-corpus contentmap/fuzz_corpus \
  2>&1 | tail -n 12

step "AddressSanitizer + UndefinedBehaviorSanitizer: unit and cull policy tests"
cmake -S . -B build-asan -DCACHEFS_SANITIZE=address,undefined \
  -DCACHEFS_BENCHMARKS=OFF -DCACHEFS_INTEGRATION_TESTS=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan -L "unit|cull" --output-on-failure -j"$jobs"

step "ThreadSanitizer: unit tests, the NFS origin's threads against a real server, and a stopped origin"
cmake -S . -B build-tsan -DCACHEFS_SANITIZE=thread \
  -DCACHEFS_BENCHMARKS=OFF >/dev/null
cmake --build build-tsan -j"$jobs"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan -L unit --output-on-failure -j"$jobs"
# The daemon is built with ThreadSanitizer too, and stops at its first
# report, which fails the test that mounted it; reports are kept in files
# (the daemon's stderr goes with its test's temporary directory) and shown.
rm -rf build-tsan/reports && mkdir -p build-tsan/reports
tsan_status=0
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 log_path=$PWD/build-tsan/reports/tsan" \
  ctest --test-dir build-tsan -L integration --output-on-failure -j1 \
  -R 'NfsTest|NfsCommandLineTest|(ReadThrough|WriteThrough)Test.*/Nfs4|OfflineTest' ||
  tsan_status=$?
if compgen -G "build-tsan/reports/tsan*" >/dev/null; then
  cat build-tsan/reports/tsan*
  tsan_status=1
fi
[ "$tsan_status" -eq 0 ]


step "every test"
cmake -S . -B build >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
