#!/usr/bin/env bash
# One pass over a million files: `find | xargs cat` through cachefs over a
# local origin of FILES small files (in directories of 1,000), with the
# daemon held to 1,024 open files, cold and then warm. cachefs holds no
# descriptor per file the kernel knows, so the pass must simply succeed;
# the script prints the time, the bytes read, the daemon's largest
# descriptor count seen and its memory. (tests/integration/many_files_test
# runs 50,000 files in CI.)
#
# Usage (as root: it drops the page cache):
#   bash bench/many_files.sh [FILES]     (default 1000000)
# Environment: WORK (default /var/tmp), BUILD_DIR (build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
files=${1:-1000000}
[ "$(id -u)" -eq 0 ] || { echo "many_files.sh: run as root" >&2; exit 1; }

. bench/lib.sh
bench_setup many
echo "making $files files" >&2
python3 - "$work/origin" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d)
    with open(os.path.join(d, "f%d" % i), "w") as f:
        f.write("%09d\n" % i)
PY
mkdir -p "$work/mnt"
prlimit --nofile=1024:1024 "$bin/cachefs" "$work/origin" "$work/mnt" \
  -o cache="$work/cache"
pid=$(pgrep -f "cachefs $work/origin $work/mnt" | head -1)
max_fds=0
watch_fds() {
  while kill -0 "$pid" 2>/dev/null; do
    local n
    n=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    [ "$n" -gt "$max_fds" ] && max_fds=$n && echo "$max_fds" >"$work/max_fds"
    sleep 1
  done
}
watch_fds &
watcher=$!
printf '\n%s files of 10 bytes, daemon limited to 1,024 open files\n' "$files"
for pass in cold warm; do
  drop
  t0=$(now)
  bytes=$(find "$work/mnt" -type f -print0 | xargs -0 cat | wc -c)
  t1=$(now)
  printf '%-5s %8.1f s  %6.0f files/s  %d bytes (expected %d)\n' "$pass" \
    "$(echo "$t1 - $t0" | bc -l)" "$(echo "$files / ($t1 - $t0)" | bc -l)" \
    "$bytes" $((files * 10))
done
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
kill "$watcher" 2>/dev/null || true
printf 'most descriptors open at once: %s; daemon RSS %d MiB\n' \
  "$(cat "$work/max_fds" 2>/dev/null || echo "?")" $((rss / 1024))
fusermount3 -u "$work/mnt"
