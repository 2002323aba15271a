#!/usr/bin/env bash
# Startup of cachefs over a cache that holds many objects: the time from
# starting the daemon until the first read through the mount is served, and
# the daemon's memory per cached object once it serves.
#
#   (a) the first start over the objects: the culler scans the cache
#   (b) a start after a clean unmount: the culler loads the index snapshot
#       the unmount left (cull/index_snapshot.h)
#   (c) a start after a crash (kill -9): no snapshot, a scan again
# Each with the page cache dropped first (as after a reboot) and kept.
#
# The objects are files of one allocated block each, in the volume's real
# layout (fan-out directories, 16-hex-digit names), made directly rather
# than through cachefs so that a million take a minute, not an hour.
#
# Usage (as root: it drops the page cache):
#   bash bench/startup.sh [OBJECTS]     (default 1000000)
# Environment: WORK (a directory on the cache disk, default /var/tmp).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
objects=${1:-1000000}
[ "$(id -u)" -eq 0 ] || { echo "startup.sh: run as root (drops the page cache)" >&2; exit 1; }

. bench/lib.sh
bench_setup startup
mkdir -p "$work/origin" "$work/mnt"
echo hello >"$work/origin/file"
cache=$work/cache

start() {  # prints seconds until the first read is served
  local t0 t1
  t0=$(now)
  $bin/cachefs "$work/origin" "$work/mnt" -o cache="$cache",volume=bench
  cat "$work/mnt/file" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
daemon_pid() { pgrep -f "cachefs $work/origin $work/mnt" | head -1; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$(daemon_pid)/status"; }
stop() { fusermount3 -u "$work/mnt"; sleep 0.5; }
crash() { kill -9 "$(daemon_pid)"; sleep 0.2; fusermount3 -uz "$work/mnt" || true; }

# An empty cache: the baseline for memory.
start >/dev/null
empty_rss=$(rss_kib)
stop

echo "making $objects objects" >&2
voldir=$(find "$cache/volumes" -mindepth 1 -maxdepth 1 -type d | head -1)
python3 - "$voldir" "$objects" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for fan in range(256):
    os.makedirs(os.path.join(root, "%02x" % fan), exist_ok=True)
for _ in range(n):
    name = "%016x" % rng.getrandbits(64)
    fd = os.open(os.path.join(root, name[:2], name), os.O_CREAT | os.O_WRONLY, 0o600)
    os.posix_fallocate(fd, 0, 4096)
    os.close(fd)
PY
sync

printf '\n%s objects; seconds until the first read is served, daemon RSS\n' "$objects"
printf '%-44s %10s %10s %14s\n' "" "cold s" "warm s" "RSS B/object"
row() {  # LABEL PREPARE: PREPARE runs before each start
  local label=$1 prepare=$2 cold warm rss
  $prepare; drop; cold=$(start); stop
  $prepare; warm=$(start); rss=$(rss_kib); stop
  printf '%-44s %10.2f %10.2f %14.0f\n' "$label" "$cold" "$warm" \
    "$(echo "($rss - $empty_rss) * 1024 / $objects" | bc -l)"
}
no_snapshot() { rm -f "$voldir/cull.index"; }
keep_snapshot() { :; }
row "(a) scan (no snapshot)" no_snapshot
# The stop of (a) left a snapshot; (b) uses it each time.
row "(b) index snapshot of a clean unmount" keep_snapshot
after_crash() { start >/dev/null; crash; }
row "(c) after kill -9 (scan)" after_crash
