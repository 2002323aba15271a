#!/usr/bin/env bash
# What checking granule checksums costs on warm reads: one file, cached
# once, read through the mount with the page cache dropped, with
# -o verify=on and -o verify=off in turn (a remount each time, the same
# cache directory), ROUNDS pairs in one run, the order swapped every other
# pair. Single reads on this kind of machine swing by a third, so the
# figure is the median of the pairs' ratios, each pair read within a second
# or two. The origin is a local directory: on a warm read it is never
# asked, so only the cache path is timed.
#
# Usage (as root: it drops the page cache):
#   bash bench/verify.sh [SIZE_MIB] [ROUNDS]     (defaults 1024 and 15)
# Environment: WORK (a directory on the cache disk, default /var/tmp).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
size_mib=${1:-1024}
rounds=${2:-15}
[ "$(id -u)" -eq 0 ] || { echo "verify.sh: run as root (drops the page cache)" >&2; exit 1; }

. bench/lib.sh
bench_setup verify
mkdir -p "$work/origin" "$work/mnt"
head -c $((size_mib << 20)) /dev/urandom >"$work/origin/big"
cache=$work/cache
mount_with() {
  $bin/cachefs "$work/origin" "$work/mnt" -o cache="$cache",verify="$1"
}
read_big() { dd if="$work/mnt/big" of=/dev/null bs=1M 2>/dev/null; }

mount_with on
read_big  # cold: fills the cache
fusermount3 -u "$work/mnt"
on=() off=() ratios=()
for r in $(seq "$rounds"); do
  order="on off"
  [ $((r % 2)) -eq 0 ] && order="off on"
  declare -A secs=()
  for v in $order; do
    mount_with "$v"
    t=$(timed read_big)
    errors=$($bin/cachefs-ctl stats "$work/mnt" --json |
      python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["bytes_read_from_origin"], s["checksum_errors"])')
    fusermount3 -u "$work/mnt"
    [ "$errors" = "0 0" ] || { echo "round $r verify=$v: origin bytes, checksum errors: $errors" >&2; exit 1; }
    secs[$v]=$t
    mbs=$(mib_s "$size_mib" "$t")
    if [ "$v" = on ]; then on+=("$mbs"); else off+=("$mbs"); fi
  done
  # Throughput on/off is time off/on.
  ratios+=("$(echo "scale=4; ${secs[off]} / ${secs[on]}" | bc -l)")
  echo "round $r ($order): on ${on[-1]} MiB/s, off ${off[-1]} MiB/s, on/off ${ratios[-1]}" >&2
done
lowest() { printf '%s\n' "$@" | sort -n | head -1; }
highest() { printf '%s\n' "$@" | sort -n | tail -1; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "warm ${size_mib} MiB, $rounds pairs: median verify=on $(median "${on[@]}") MiB/s, verify=off $(median "${off[@]}") MiB/s; median of the pairs' on/off $(median "${ratios[@]}") (from $(lowest "${ratios[@]}") to $(highest "${ratios[@]}"))"
