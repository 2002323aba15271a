#!/usr/bin/env bash
# A program's start over SSHFS behind the latency proxy: it reads FILES
# files (4 KiB to 4 MiB, MIB MiB in all) in a fixed order, through
# cachefs with its default close-to-open coherency. Measured in one run,
# interleaved, medians of ROUNDS:
#
#   cold         empty cache, page cache dropped
#   warm         from the disk cache, page cache dropped (-o hotsets=off)
#   learned      the same with the program's hot set replayed ahead of it
#                (learned by a run before; -o hotsets=on)
#   pinned       its files pinned in RAM (-o pin=FILE,pin_memory=...)
#   page cache   run again at once: the kernel's page cache holds it all
#
# "Page cache dropped" is `echo 1 > drop_caches` (pages only: the kernel
# keeps the names it knows, as after memory pressure, so a replay can push
# pages to them). Also the daemon's RSS per pinned file and per file of a
# learned trace.
#
# Usage (as root): bash bench/program_start.sh
# Environment: FILES (300), MIB (200), ROUNDS (3), DELAY_MS (5), WORK
# (/var/tmp), BUILD_DIR (build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
files=${FILES:-300}
mib=${MIB:-200}
rounds=${ROUNDS:-3}
delay_ms=${DELAY_MS:-5}
[ "$(id -u)" -eq 0 ] || { echo "program_start.sh: run as root" >&2; exit 1; }
command -v python3 >/dev/null || { echo "program_start.sh: needs python3" >&2; exit 1; }

. bench/lib.sh
bench_setup program-start

python3 - "$work/data" "$files" "$mib" <<'PY'
import os, random, sys
root, n, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) << 20
rng = random.Random(3)
# Sizes spread from 4 KiB to 4 MiB, scaled to the total.
raw = [4096 * (2 ** rng.uniform(0, 10)) for _ in range(n)]
scale = total / sum(raw)
chunk = os.urandom(4 << 20)
os.makedirs(os.path.join(root, "app"), exist_ok=True)
for i, r in enumerate(raw):
    size = max(4096, min(4 << 20, int(r * scale)))
    with open(os.path.join(root, "app", "m%03d" % i), "wb") as f:
        f.write(chunk[:size])
PY
bytes=$(du -sb "$work/data/app" | cut -f1)
# The program: cat under a name of its own (cat itself is never learned).
cp /bin/cat "$work/startprog"
list=()
for i in $(seq 0 $((files - 1))); do list+=("$work/mnt/app/$(printf 'm%03d' "$i")"); done
printf '%s\n' "${list[@]#$work/mnt/}" >"$work/pins"

bash tools/sshfs-export.sh start "$work/data" "$work/ssh" --delay-ms "$delay_ms" >&2
bash tools/sshfs-export.sh mount "$work/ssh" "$work/origin" >&2
mkdir -p "$work/mnt"

drop_pages() { sync; echo 1 >/proc/sys/vm/drop_caches; }
run() {  # seconds of one start
  local t0 t1
  t0=$(now)
  "$work/startprog" "${list[@]}" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
mount_cachefs() { $bin/cachefs "$work/origin" "$work/mnt" -o "cache=$work/cache${1:+,$1}"; }
unmount_cachefs() { fusermount3 -u "$work/mnt"; }
stat_of() { $bin/cachefs-ctl stats "$work/mnt" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$(pgrep -f "cachefs $work/origin" | head -1)/status"; }

declare -A r
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  rm -rf "$work/cache"
  mount_cachefs "hotsets=off"
  sync; echo 3 >/proc/sys/vm/drop_caches
  r[cold]+=" $(run)"
  drop_pages
  r[warm]+=" $(run)"
  r[hit]+=" $(run)"
  unmount_cachefs

  mount_cachefs "hotsets=on,hotset_window=600"
  run >/dev/null  # learns (the window is the whole run)
  # The trace is taken once its window ends: at the remount.
  unmount_cachefs
  mount_cachefs "hotsets=on"
  rss_before=$(rss_kb)
  entries=$($bin/cachefs-ctl hotsets "$work/mnt" --json | python3 -c "import json,sys; print(sum(p['files'] for p in json.load(sys.stdin)))")
  r[trace_entries]+=" $entries"
  run >/dev/null  # the kernel learns the names again
  drop_pages
  pushed0=$(stat_of hotset_bytes_pushed)
  r[learned]+=" $(run)"
  r[pushed]+=" $(( $(stat_of hotset_bytes_pushed) - pushed0 ))"
  unmount_cachefs

  mount_cachefs "hotsets=off,pin=$work/pins,pin_memory=$(( mib + 64 ))M"
  for _ in $(seq 600); do
    [ "$(stat_of pinned_bytes_memory)" -ge "$bytes" ] && break
    sleep 0.2
  done
  r[pinned_rss_kb]+=" $(rss_kb)"
  drop_pages
  r[pinned]+=" $(run)"
  unmount_cachefs
  mount_cachefs "hotsets=off"
  r[plain_rss_kb]+=" $(rss_kb)"
  unmount_cachefs
done

cold=$(echo "${r[cold]}" | median_in)
warm=$(echo "${r[warm]}" | median_in)
learned=$(echo "${r[learned]}" | median_in)
pinned=$(echo "${r[pinned]}" | median_in)
hit=$(echo "${r[hit]}" | median_in)
echo
echo "program_start.sh $(date -u +%Y-%m-%d): $files files, $bytes bytes, ${delay_ms} ms each way, $rounds rounds"
printf '| start (median) | seconds | against warm |\n|---|---|---|\n'
printf '| cold | %.2f | %.2fx |\n' "$cold" "$(ratio "$warm" "$cold")"
printf '| warm (disk cache, page cache dropped) | %.2f | 1 |\n' "$warm"
printf '| learned hot set replayed | %.2f | %.2fx faster |\n' "$learned" "$(ratio "$warm" "$learned")"
printf '| pinned in RAM | %.2f | %.2fx faster |\n' "$pinned" "$(ratio "$warm" "$pinned")"
printf '| page cache hit | %.2f | %.2fx faster |\n' "$hit" "$(ratio "$warm" "$hit")"
printf 'pinned against a page cache hit: %.2fx its time\n' "$(ratio "$pinned" "$hit")"
printf 'bytes pushed by a replay: %s\n' "$(echo "${r[pushed]}" | median_in)"
printf 'daemon RSS: %s KiB plain, %s KiB with %s files pinned in RAM (%s bytes locked)\n' \
  "$(echo "${r[plain_rss_kb]}" | median_in)" "$(echo "${r[pinned_rss_kb]}" | median_in)" "$files" "$bytes"
