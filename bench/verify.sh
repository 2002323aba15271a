#!/usr/bin/env bash
# What checking granule checksums costs on warm reads: one file, cached
# once, read through the mount with the page cache dropped, alternately
# with -o verify=on and -o verify=off (a remount each time, the same cache
# directory), ROUNDS pairs in one run. Reports the median MB/s of each and
# their ratio. The origin is a local directory: on a warm read it is never
# asked, so only the cache path is timed.
#
# Usage (as root: it drops the page cache):
#   bash bench/verify.sh [SIZE_MIB] [ROUNDS]     (defaults 1024 and 7)
# Environment: WORK (a directory on the cache disk, default /var/tmp).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
size_mib=${1:-1024}
rounds=${2:-7}
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
on=() off=()
for r in $(seq "$rounds"); do
  for v in on off; do
    mount_with "$v"
    t=$(timed read_big)
    errors=$($bin/cachefs-ctl stats "$work/mnt" --json |
      python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["bytes_read_from_origin"], s["checksum_errors"])')
    fusermount3 -u "$work/mnt"
    [ "$errors" = "0 0" ] || { echo "round $r verify=$v: origin bytes, checksum errors: $errors" >&2; exit 1; }
    mbs=$(mib_s "$size_mib" "$t")
    echo "round $r verify=$v: $mbs MiB/s" >&2
    if [ "$v" = on ]; then on+=("$mbs"); else off+=("$mbs"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_on=$(median "${on[@]}")
m_off=$(median "${off[@]}")
echo "warm ${size_mib} MiB, median of $rounds: verify=on $m_on MiB/s, verify=off $m_off MiB/s, on/off $(ratio "$m_on" "$m_off")"
