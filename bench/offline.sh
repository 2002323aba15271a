#!/usr/bin/env bash
# An origin that stops answering, over SSHFS behind the latency proxy:
# the sshfs client under the origin directory is stopped with SIGSTOP, so
# its requests hang as on a stopped server. With -o origin_timeout=TIMEOUT,
# measured in one run, medians of ROUNDS:
#
#   first byte, up      a cached file's first byte, page cache dropped,
#                       the origin answering (one close-to-open check)
#   notice down         from the stop to the end of the first read of a
#                       cached file: that read's attribute check waits for
#                       the timeout, then the origin counts as down
#   first byte, down    the same as "up", once the origin is marked down
#                       (nothing asks it)
#   notice back         from SIGCONT to `cachefs-ctl status` showing it up
#
# Usage (as root): bash bench/offline.sh
# Environment: ROUNDS (5), FILES (20), DELAY_MS (5), TIMEOUT (2), WORK
# (/var/tmp), BUILD_DIR (build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
rounds=${ROUNDS:-5}
files=${FILES:-20}
delay_ms=${DELAY_MS:-5}
timeout=${TIMEOUT:-2}
[ "$(id -u)" -eq 0 ] || { echo "offline.sh: run as root" >&2; exit 1; }
command -v python3 >/dev/null || { echo "offline.sh: needs python3" >&2; exit 1; }

. bench/lib.sh
bench_setup offline

mkdir -p "$work/data"
for i in $(seq 0 "$files"); do head -c 65536 /dev/urandom >"$work/data/f$i"; done
bash tools/sshfs-export.sh start "$work/data" "$work/ssh" --delay-ms "$delay_ms" >&2
bash tools/sshfs-export.sh mount "$work/ssh" "$work/origin" >&2
sshfs_pid=$(awk -v m="$work/origin" '$3 == m {print $1}' "$work/ssh/mounts")
[[ $sshfs_pid =~ ^[0-9]+$ ]] || { echo "offline.sh: no sshfs pid" >&2; exit 1; }
mkdir -p "$work/mnt"
resume() { kill -CONT "$sshfs_pid" 2>/dev/null || true; }
trap 'resume; bench_cleanup' EXIT

# Median milliseconds to the first byte of files f1..fN (new opens).
first_byte_ms() {
  sync; echo 1 >/proc/sys/vm/drop_caches
  python3 - "$work/mnt" "$files" <<'PY'
import os, sys, time
mnt, n = sys.argv[1], int(sys.argv[2])
times = []
for i in range(1, n + 1):
    t0 = time.monotonic()
    fd = os.open(os.path.join(mnt, "f%d" % i), os.O_RDONLY)
    os.read(fd, 1)
    os.close(fd)
    times.append((time.monotonic() - t0) * 1e3)
times.sort()
print("%.3f" % times[len(times) // 2])
PY
}
origin_up() {
  $bin/cachefs-ctl status "$work/mnt" --json | grep -q '"origin_up": true'
}

declare -A r
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  rm -rf "$work/cache"
  $bin/cachefs "$work/origin" "$work/mnt" \
    -o "cache=$work/cache,origin_timeout=$timeout"
  cat "$work/mnt"/f* >/dev/null
  r[up]+=" $(first_byte_ms)"
  kill -STOP "$sshfs_pid"
  sleep 1.5  # past the attribute timeout: the next read checks
  t0=$(now)
  head -c 1 "$work/mnt/f0" >/dev/null
  t1=$(now)
  r[down_notice]+=" $(echo "$t1 - $t0" | bc -l)"
  r[down]+=" $(first_byte_ms)"
  origin_up && { echo "offline.sh: the origin was not marked down" >&2; exit 1; }
  t0=$(now)
  resume
  for _ in $(seq 1 400); do origin_up && break; sleep 0.025; done
  t1=$(now)
  origin_up || { echo "offline.sh: the origin was not marked up again" >&2; exit 1; }
  r[back]+=" $(echo "$t1 - $t0" | bc -l)"
  fusermount3 -u "$work/mnt"
  # The daemon writes its snapshots on the way out: gone before the next
  # round removes its cache.
  for _ in $(seq 1 200); do
    pgrep -f "cachefs $work/origin" >/dev/null || break
    sleep 0.05
  done
done

median() { echo "${r[$1]}" | median_in; }
echo "offline over SSHFS, ${delay_ms} ms each way, origin_timeout=${timeout}, $files files of 64 KiB, $rounds rounds (medians):"
printf '| measured | value |\n|---|---|\n'
printf '| first byte of a cached file, origin up | %.2f ms |\n' "$(median up)"
printf '| stop to the end of the first cached read (notice down) | %.2f s |\n' "$(median down_notice)"
printf '| first byte of a cached file, origin marked down | %.2f ms |\n' "$(median down)"
printf '| SIGCONT to status showing it up (notice back) | %.2f s |\n' "$(median back)"
