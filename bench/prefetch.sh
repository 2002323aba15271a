#!/usr/bin/env bash
# Prefetch of a tree over SSHFS behind the latency proxy, against a plain
# cold `cat` of the same tree through cachefs and against one ssh stream
# through the same proxy, all in one run, interleaved; and a user's own
# cold read while a prefetch runs, against the same read on a quiet mount.
#
#   data:  a tree of mixed files, MIB MiB in all (sizes from 4 KiB to
#          16 MiB, in a few directories)
#   link:  a private sshd on loopback behind cachefs-latency-proxy,
#          DELAY_MS each way (5: a 10 ms round trip)
#
# Rows (medians of ROUNDS rounds, each on an empty cache):
#   cat        MB/s of `find TREE -type f | xargs cat` through cachefs
#   prefetch   MB/s of `cachefs-ctl prefetch MNT TREE -r` (default
#              prefetch_jobs), and its ratio to cat
#   ssh        MB/s of one ssh stream (ssh cat of a 256 MiB file)
#   read alone      ms to read a 16 KiB file outside the tree, cold
#   read beside     the same while a prefetch of the tree runs
#
# Usage (as root: it drops the page cache):
#   bash bench/prefetch.sh
# Environment: MIB (1024), ROUNDS (3), DELAY_MS (5), WORK (/var/tmp),
# BUILD_DIR (build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
mib=${MIB:-1024}
rounds=${ROUNDS:-3}
delay_ms=${DELAY_MS:-5}
[ "$(id -u)" -eq 0 ] || { echo "prefetch.sh: run as root (drops the page cache)" >&2; exit 1; }
for tool in sshfs python3; do
  command -v "$tool" >/dev/null || { echo "prefetch.sh: needs $tool" >&2; exit 1; }
done

. bench/lib.sh
bench_setup prefetch

echo "generating a tree of $mib MiB" >&2
python3 - "$work/data" "$mib" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(7)
sizes = [4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20]
made, i = 0, 0
chunk = os.urandom(16 << 20)
while made < total:
    d = os.path.join(root, "tree", "d%d" % (i % 8))
    os.makedirs(d, exist_ok=True)
    size = min(rng.choice(sizes), total - made)
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(chunk[:size])
    made += size
    i += 1
os.makedirs(os.path.join(root, "side"), exist_ok=True)
for j in range(64):
    with open(os.path.join(root, "side", "s%d" % j), "wb") as f:
        f.write(os.urandom(16 << 10))
with open(os.path.join(root, "stream"), "wb") as f:
    for _ in range(16):
        f.write(chunk)
print(i, "files", file=sys.stderr)
PY

bash tools/sshfs-export.sh start "$work/data" "$work/ssh" --delay-ms "$delay_ms" >&2
port=$(cat "$work/ssh/port")
bash tools/sshfs-export.sh mount "$work/ssh" "$work/origin" >&2
mkdir -p "$work/mnt"
bytes=$(du -sb "$work/data/tree" | cut -f1)

mount_cachefs() {
  rm -rf "$work/cache"
  $bin/cachefs "$work/origin" "$work/mnt" -o "cache=$work/cache"
  drop
}
unmount_cachefs() { fusermount3 -u "$work/mnt"; }
mbs() { echo "$bytes / 1000000 / $1" | bc -l; }
# ms to read side file N of the mount, cold.
read_ms() {
  python3 - "$work/mnt/side/s$1" <<'PY'
import sys, time
t = time.monotonic()
with open(sys.argv[1], "rb") as f:
    f.read()
print("%.2f" % ((time.monotonic() - t) * 1000))
PY
}

declare -A r
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  mount_cachefs
  t=$(timed bash -c "find '$work/mnt/tree' -type f -print0 | xargs -0 cat")
  r[cat]+=" $(mbs "$t")"
  unmount_cachefs

  mount_cachefs
  t=$(timed $bin/cachefs-ctl prefetch "$work/mnt" "$work/mnt/tree" -r)
  r[prefetch]+=" $(mbs "$t")"
  unmount_cachefs

  t0=$(now)
  ssh -F /dev/null -p "$port" -i "$work/ssh/id_ed25519" -o IdentitiesOnly=yes \
    -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no \
    -o BatchMode=yes -o LogLevel=ERROR 127.0.0.1 cat "$work/data/stream" >/dev/null
  t1=$(now)
  r[ssh]+=" $(echo "268435456 / 1000000 / ($t1 - $t0)" | bc -l)"

  # A user's cold reads, on a quiet mount and beside a prefetch.
  mount_cachefs
  for j in 0 1 2 3 4 5 6 7; do r[alone]+=" $(read_ms $j)"; done
  $bin/cachefs-ctl prefetch "$work/mnt" "$work/mnt/tree" -r >/dev/null &
  pf=$!
  sleep 2
  for j in 8 9 10 11 12 13 14 15; do
    r[beside]+=" $(read_ms $j)"
    sleep 0.2
  done
  kill -INT "$pf" 2>/dev/null || true
  wait "$pf" || true
  unmount_cachefs
done

cat_mbs=$(echo "${r[cat]}" | median_in)
pf_mbs=$(echo "${r[prefetch]}" | median_in)
ssh_mbs=$(echo "${r[ssh]}" | median_in)
alone=$(echo "${r[alone]}" | median_in)
beside=$(echo "${r[beside]}" | median_in)
echo
echo "prefetch.sh $(date -u +%Y-%m-%d): $bytes bytes in the tree, ${delay_ms} ms each way, $rounds rounds"
printf '| measured (median) | MB/s or ms | ratio |\n|---|---|---|\n'
printf '| `cat` of the tree through cachefs, cold | %.1f MB/s | 1 |\n' "$cat_mbs"
printf '| `cachefs-ctl prefetch -r` of the tree, cold | %.1f MB/s | %.2fx cat, %.2fx ssh |\n' \
  "$pf_mbs" "$(ratio "$pf_mbs" "$cat_mbs")" "$(ratio "$pf_mbs" "$ssh_mbs")"
printf '| one ssh stream | %.1f MB/s | |\n' "$ssh_mbs"
printf '| 16 KiB cold read, quiet mount | %.1f ms | 1 |\n' "$alone"
printf '| the same during a prefetch | %.1f ms | %.2fx |\n' "$beside" "$(ratio "$beside" "$alone")"
