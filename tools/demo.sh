#!/usr/bin/env bash
# The main job of cachefs on a fresh Debian 12 machine: installs what is
# missing, builds, and runs the core benchmarks (content maps, the io_uring
# backing store against plain O_DIRECT pread, cookies and the dispatcher),
# printing their tables. Scratch files go to $CACHEFS_BENCH_DIR (default
# /var/tmp, which must be on a disk filesystem for O_DIRECT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"

min_time=${CACHEFS_BENCH_MIN_TIME:-0.5}
for b in contentmap_benchmark io_benchmark cookie_benchmark; do
  printf '\n=== %s\n' "$b"
  ./build/bin/"$b" --benchmark_min_time="$min_time" \
    --benchmark_counters_tabular=true
done
