#!/usr/bin/env bash
# cachefs side by side with sshfs alone and rclone's VFS cache, over the same
# SSHFS export behind the same latency, all measured in one run:
#
#   data:  FILES small files of 16 KiB, a 256 MiB file, a 1 GiB file
#   link:  a private sshd on loopback behind cachefs-latency-proxy, DELAY_MS
#          each way (5: a 10 ms round trip)
#   tools: cachefs over sshfs mounted as README asks (default options;
#          -o nocto; -o nocto,attr_timeout=3600,entry_timeout=3600);
#          sshfs alone, mounted with its own defaults (its caches on);
#          rclone mount --vfs-cache-mode full, sftp backend, same sshd,
#          hash checks off (each would run md5sum in a remote shell)
#
# Rows (medians of ROUNDS rounds, the tools interleaved in each round):
#   small cold     ms per file, reading each file whole in one process,
#                  on an empty cache
#   small warm     the same again at once, the page cache dropped
#   small warm     after drop_caches and a remount of the tool on its cache
#     remount      (cachefs keeps its cache and what it knew; rclone its cache)
#   find | stat    seconds for `find | xargs stat` of the files, warm,
#                  after drop_caches
#   1 GiB warm     MB/s of dd bs=1M from the warm cache, page cache dropped,
#                  against fio O_DIRECT 256 KiB QD8 of cachefs's backing
#                  file in the same round
#   256 MiB cold   MB/s of dd bs=1M on an empty cache, against one ssh
#                  stream (ssh cat) through the same proxy
# For cachefs, origin requests per file (origin_calls) beside each small row.
#
# Usage (as root: it drops the page cache):
#   bash bench/compare.sh
# Environment: FILES (1000), ROUNDS (3), DELAY_MS (5), WORK (/var/tmp),
# BUILD_DIR (build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
files=${FILES:-1000}
rounds=${ROUNDS:-3}
delay_ms=${DELAY_MS:-5}
[ "$(id -u)" -eq 0 ] || { echo "compare.sh: run as root (drops the page cache)" >&2; exit 1; }
for tool in rclone fio sshfs python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: needs $tool (apt-get install $tool)" >&2; exit 1; }
done

. bench/lib.sh
bench_setup compare
rclone_pid=""
compare_cleanup() {
  set +e
  if mountpoint -q "$work/rmnt"; then fusermount3 -u "$work/rmnt" || fusermount3 -uz "$work/rmnt"; fi
  if [ -n "$rclone_pid" ]; then kill "$rclone_pid" 2>/dev/null; fi
  bench_cleanup
}
trap compare_cleanup EXIT

echo "generating $files files of 16 KiB, 256 MiB and 1 GiB" >&2
mkdir -p "$work/data/small"
for i in $(seq 1 "$files"); do head -c 16384 /dev/urandom >"$work/data/small/f$i"; done
head -c $((256 << 20)) /dev/urandom >"$work/data/mid"
head -c $((1024 << 20)) /dev/urandom >"$work/data/big"

bash tools/sshfs-export.sh start "$work/data" "$work/ssh" --delay-ms "$delay_ms" >&2
port=$(cat "$work/ssh/port")
bash tools/sshfs-export.sh mount "$work/ssh" "$work/origin" >&2
mkdir -p "$work/mnt"

# Lists DIR, then reads every file of it whole, in one process; prints the
# listing's seconds and the reads' ms per file.
read_files() {
  python3 - "$1" <<'PY'
import os, sys, time
d = sys.argv[1]
t0 = time.monotonic()
names = sorted(os.listdir(d))
t1 = time.monotonic()
for n in names:
    with open(os.path.join(d, n), 'rb') as f:
        while f.read(1 << 20):
            pass
print("%.2f %.2f" % (t1 - t0, (time.monotonic() - t1) * 1000 / len(names)))
PY
}
# read_files of DIR, kept as KEY (ms per file) and KEY.list (seconds).
record() {
  local out
  out=$(read_files "$2")
  r[$1]+=" ${out#* }"
  r[$1.list]+=" ${out% *}"
}
stat_all() {  # seconds
  local t0 t1
  drop
  t0=$(now)
  find "$1" -type f -print0 | xargs -0 stat >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
dd_mbs() {  # MB/s of reading FILE, page cache dropped
  local t0 t1
  drop
  t0=$(now)
  dd if="$1" of=/dev/null bs=1M status=none
  t1=$(now)
  echo "$(stat -c %s "$1") / 1000000 / ($t1 - $t0)" | bc -l
}
calls() { $bin/cachefs-ctl stats "$work/mnt" --json | python3 -c \
  'import json,sys; print(json.load(sys.stdin)["origin_calls"])'; }
per_file() { echo "($2 - $1) / $files" | bc -l; }

# cachefs with options OPTS over the README's sshfs mount; sets row values.
run_cachefs() {
  local name=$1 opts=$2 cache=$work/cache-$1-$3 c0 c1
  rm -rf "$cache"
  $bin/cachefs "$work/origin" "$work/mnt" -o "cache=$cache${opts:+,$opts}"
  drop
  c0=$(calls)
  record "$name.cold" "$work/mnt/small"
  c1=$(calls)
  r[$name.cold.calls]+=" $(per_file "$c0" "$c1")"
  drop
  record "$name.warm" "$work/mnt/small"
  c0=$(calls)
  r[$name.warm.calls]+=" $(per_file "$c1" "$c0")"
  fusermount3 -u "$work/mnt"
  $bin/cachefs "$work/origin" "$work/mnt" -o "cache=$cache${opts:+,$opts}"
  drop
  c0=$(calls)
  record "$name.remount" "$work/mnt/small"
  c1=$(calls)
  r[$name.remount.calls]+=" $(per_file "$c0" "$c1")"
  r[$name.stat]+=" $(stat_all "$work/mnt/small")"
  if [ "$name" = cachefs ]; then
    r[$name.mid]+=" $(dd_mbs "$work/mnt/mid")"
    dd_mbs "$work/mnt/big" >/dev/null  # fills the cache
    r[$name.big]+=" $(dd_mbs "$work/mnt/big")"
    r[fio.big]+=" $(disk_mbs "$cache")"
  fi
  fusermount3 -u "$work/mnt"
}

run_sshfs() {
  local m=$work/plain
  bash tools/sshfs-export.sh mount "$work/ssh" "$m" --plain >&2
  drop
  record "sshfs.cold" "$m/small"
  drop
  record "sshfs.warm" "$m/small"
  r[sshfs.stat]+=" $(stat_all "$m/small")"
  r[sshfs.mid]+=" $(dd_mbs "$m/mid")"
  # Unmounted by stop at exit; a fresh mount per round starts cold.
  fusermount3 -u "$m"
}

run_rclone() {
  local cache=$work/rclone-$1 m=$work/rmnt
  mkdir -p "$m"
  RCLONE_CONFIG_ORIGIN_TYPE=sftp RCLONE_CONFIG_ORIGIN_HOST=127.0.0.1 \
    RCLONE_CONFIG_ORIGIN_PORT=$port RCLONE_CONFIG_ORIGIN_USER=root \
    RCLONE_CONFIG_ORIGIN_KEY_FILE=$work/ssh/id_ed25519 \
    RCLONE_CONFIG_ORIGIN_DISABLE_HASHCHECK=true \
    rclone mount "origin:$work/data" "$m" --vfs-cache-mode full \
    --cache-dir "$cache" --config /dev/null --log-level ERROR &
  rclone_pid=$!
  for _ in $(seq 100); do mountpoint -q "$m" && break; sleep 0.1; done
  drop
  record "rclone.cold" "$m/small"
  drop
  record "rclone.warm" "$m/small"
  r[rclone.stat]+=" $(stat_all "$m/small")"
  r[rclone.mid]+=" $(dd_mbs "$m/mid")"
  dd_mbs "$m/big" >/dev/null
  r[rclone.big]+=" $(dd_mbs "$m/big")"
  fusermount3 -u "$m"
  wait "$rclone_pid" || true
  rclone_pid=""
}

ssh_stream() {
  local t0 t1
  t0=$(now)
  ssh -F /dev/null -p "$port" -i "$work/ssh/id_ed25519" -o IdentitiesOnly=yes \
    -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no \
    -o BatchMode=yes -o LogLevel=ERROR 127.0.0.1 cat "$work/data/mid" >/dev/null
  t1=$(now)
  echo "268435456 / 1000000 / ($t1 - $t0)" | bc -l
}

declare -A r
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  run_cachefs cachefs "" "$round"
  run_cachefs nocto "nocto" "$round"
  run_cachefs nocto_long "nocto,attr_timeout=3600,entry_timeout=3600" "$round"
  run_sshfs
  run_rclone "$round"
  r[ssh.mid]+=" $(ssh_stream)"
done

median() {
  python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.2f" % statistics.median(v)) if v else print("-")' $1
}
m() { median "${r[$1]:-}"; }

printf '\n%s, %s files of 16 KiB, %s ms each way, median of %s rounds\n' \
  "$(date -u +%Y-%m-%d)" "$files" "$delay_ms" "$rounds"
printf '\n| | cachefs | cachefs nocto | cachefs nocto, 3600 s | sshfs alone | rclone full |\n'
printf '|---|---|---|---|---|---|\n'
row() {  # LABEL KEY: cachefs cells with their origin calls per file
  local label=$1 key=$2 cells=""
  for t in cachefs nocto nocto_long; do
    local calls=""
    [ -n "${r[$t.$key.calls]:-}" ] && calls=" ($(m "$t.$key.calls") req/file)"
    cells+=" $(m "$t.$key")$calls |"
  done
  printf '| %s |%s %s | %s |\n' "$label" "$cells" "$(m "sshfs.$key")" "$(m "rclone.$key")"
}
row "small files, cold, ms/file" cold
row "the listing before it (not in the row above), s" cold.list
row "same, warm (page cache dropped), ms/file" warm
row "the listing before it, s" warm.list
row "same, after drop_caches and a remount, ms/file" remount
row "the listing before it, s" remount.list
row '`find \| xargs stat`, warm, s' stat
printf '| 256 MiB cold, MB/s (one ssh stream: %s) | %s | | | %s | %s |\n' \
  "$(m ssh.mid)" "$(m cachefs.mid)" "$(m sshfs.mid)" "$(m rclone.mid)"
printf '| 1 GiB warm, MB/s (fio O_DIRECT 256 KiB QD8 of the backing file: %s) | %s | | | | %s |\n' \
  "$(m fio.big)" "$(m cachefs.big)" "$(m rclone.big)"
