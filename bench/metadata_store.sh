#!/usr/bin/env bash
# The metadata store at scale: a volume whose store holds ENTRIES names
# (files in directories of 1,000, their attributes and the listings), as a
# clean unmount leaves it. Times the daemon from start to the first read
# served through the mount and to the store loaded (a store too large to
# load within 0.5 s loads behind the mount), the clean unmount that saves
# the store again, and the daemon's RSS per entry once loaded.
#
# Usage (as root: it drops the page cache):
#   bash bench/metadata_store.sh [ENTRIES]     (default 1000000)
# Environment: WORK (a directory on the cache disk, default /var/tmp).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
entries=${1:-1000000}
[ "$(id -u)" -eq 0 ] || { echo "metadata_store.sh: run as root (drops the page cache)" >&2; exit 1; }

. bench/lib.sh
bench_setup metadata
cmake --build "${BUILD_DIR:-build}" --target metadata_fill >/dev/null
mkdir -p "$work/origin" "$work/mnt"
echo hello >"$work/origin/file"
cache=$work/cache
opts="cache=$cache,volume=bench,metadata_entries=$((entries + entries / 1000 + 16)),origin_timeout=2"

daemon_pid() { pgrep -f "cachefs $work/origin $work/mnt" | head -1; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$(daemon_pid)/status"; }
loaded() { $bin/cachefs-ctl status "$work/mnt" --json | grep -q '"metadata_loaded": true'; }
start() {  # prints seconds until the first read is served and until loaded
  local t0 t1 t2 i
  t0=$(now)
  $bin/cachefs "$work/origin" "$work/mnt" -o "$opts"
  cat "$work/mnt/file" >/dev/null
  t1=$(now)
  for i in $(seq 6000); do loaded && break; sleep 0.01; done
  t2=$(now)
  echo "$(echo "$t1 - $t0" | bc -l) $(echo "$t2 - $t0" | bc -l)"
}
stop() {  # prints seconds the clean unmount takes
  local t0 t1 pid
  pid=$(daemon_pid)
  t0=$(now)
  fusermount3 -u "$work/mnt"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

# An empty store: the baseline for memory.
$bin/cachefs "$work/origin" "$work/mnt" -o "$opts"
cat "$work/mnt/file" >/dev/null
empty_rss=$(rss_kib)
stop >/dev/null
voldir=$(find "$cache/volumes" -mindepth 1 -maxdepth 1 -type d | head -1)

printf '\n%s entries in the store\n' "$entries"
printf '%-12s %14s %14s %12s %12s\n' "page cache" "first read s" "loaded s" "unmount s" "RSS B/entry"
row() {  # LABEL PREPARE
  local times rss down
  $bin/metadata_fill "$voldir" "$entries" >/dev/null
  $2
  times=($(start)); rss=$(rss_kib); down=$(stop)
  printf '%-12s %14.2f %14.2f %12.2f %12.0f\n' "$1" "${times[0]}" "${times[1]}" \
    "$down" "$(echo "($rss - $empty_rss) * 1024 / $entries" | bc -l)"
}
row cold drop
row warm :
bytes=$(stat -c %s "$voldir/attrs")
lbytes=$(stat -c %s "$voldir/listings")
printf 'on disk: attrs %d B (%.0f B/entry), listings %d B (%.0f B/entry)\n' \
  "$bytes" "$(echo "$bytes / $entries" | bc -l)" \
  "$lbytes" "$(echo "$lbytes / $entries" | bc -l)"
