#!/usr/bin/env bash
# Culling with one huge open file, over SSHFS (DELAY_MS each way, a private
# sshd on loopback behind cachefs-latency-proxy):
#   1. SMALL_FILES (128) files of 1 MiB are read through cachefs, so they
#      are cached.
#   2. A HUGE_MIB (1024) MiB file, held open the whole time, is read whole
#      through a cache limited to CACHE_MIB (512) MiB.
#   3. The small files are read again with a cold page cache: the share of
#      their bytes the cache still had, and the time it took.
# Run with -o open_file_share=50 (the default: the huge file keeps at most
# half the cache) and =100 (it may take all of it, as when culling took
# whole objects only), and once with no limit, for the huge file's read
# rate without culling.
#
# Usage (as root: the page cache is dropped between runs):
#   bash bench/cull.sh
# Environment: SMALL_FILES, HUGE_MIB, CACHE_MIB, DELAY_MS (5), WORK.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

small_files=${SMALL_FILES:-128}
huge_mib=${HUGE_MIB:-1024}
cache_mib=${CACHE_MIB:-512}
delay_ms=${DELAY_MS:-5}
[ "$(id -u)" -eq 0 ] || { echo "cull.sh: run as root (drops the page cache)" >&2; exit 1; }

. bench/lib.sh
bench_setup cull
stat_of() { $bin/cachefs-ctl stats "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
read_smalls() {
  for i in $(seq 1 "$small_files"); do cat "$1/s$i"; done | cksum
}

mkdir -p "$work/served"
for i in $(seq 1 "$small_files"); do
  head -c $((1 << 20)) /dev/urandom >"$work/served/s$i"
done
head -c $((huge_mib << 20)) /dev/urandom >"$work/served/huge"
want=$(read_smalls "$work/served")
bash tools/sshfs-export.sh start "$work/served" "$work/ssh" --delay-ms "$delay_ms" >&2
bash tools/sshfs-export.sh mount "$work/ssh" "$work/sshfs" >&2

# run NAME OPTIONS: prints one result line.
run() {
  local name=$1 opts=$2 mnt=$work/mnt-$1 cache=$work/cache-$1
  mkdir -p "$mnt"
  $bin/cachefs "$work/sshfs" "$mnt" -o "cache=$cache$opts"
  [ "$(read_smalls "$mnt")" = "$want" ] || { echo "cull.sh: $name: small files differ" >&2; exit 1; }
  exec 3<"$mnt/huge"
  local huge_s before after again_s from_origin kept
  huge_s=$(timed dd if="$mnt/huge" of=/dev/null bs=1M status=none)
  # Settled: the culler runs five times a second.
  sleep 1
  before=$(stat_of "$mnt" bytes_read_from_origin)
  drop
  again_s=$(timed read_smalls "$mnt")
  after=$(stat_of "$mnt" bytes_read_from_origin)
  [ "$(read_smalls "$mnt")" = "$want" ] || { echo "cull.sh: $name: small files differ after" >&2; exit 1; }
  from_origin=$((after - before))
  kept=$(echo "scale=1; 100 - 100 * $from_origin / ($small_files * 1048576)" | bc -l)
  printf '%-10s huge file %6.2f s %6.1f MiB/s | small files again %6.2f s, %5s%% from cache | stored %s B, culls %s, granules culled %s\n' \
    "$name" "$huge_s" "$(mib_s "$huge_mib" "$huge_s")" "$again_s" "$kept" \
    "$(stat_of "$mnt" bytes_counted)" "$(stat_of "$mnt" culls)" \
    "$(stat_of "$mnt" granules_culled)"
  exec 3<&-
  fusermount3 -u "$mnt"
}

echo "$small_files small files of 1 MiB cached, then a $huge_mib MiB file read while open; cache $cache_mib MiB; SSHFS with $delay_ms ms each way:"
run share50 ",cache_size=${cache_mib}M"
run share100 ",cache_size=${cache_mib}M,open_file_share=100"
run nolimit ""
