#!/usr/bin/env bash
# Write-path benchmarks of cachefs, everything measured in one run:
#   1. Sequential write: SIZE_MIB (512) MiB written with dd (bs=1M,
#      conv=fsync, so the time includes getting the data to the origin)
#      (a) to the origin directly, (b) through cachefs over that origin.
#      Then the file is read back through cachefs after dropping the page
#      cache: the read-after-write hit rate is the share of its bytes the
#      cache served (cachefs-ctl stats: bytes_read_from_cache against
#      bytes_read_from_origin).
#   2. Build: the GoogleTest sources libgtest-dev installs under
#      /usr/src/googletest are copied in and built (cmake, then make -j2)
#      twice, the second time in a fresh build directory after dropping the
#      page cache, (a) on SSHFS alone, (b) through cachefs over the same
#      SSHFS, and (c) through cachefs with -o nocto and hour-long
#      attribute timeouts. SSHFS runs against a private sshd on loopback
#      behind cachefs-latency-proxy (DELAY_MS each way).
# Origins for 1: a local directory and that SSHFS export.
#
# Usage (as root: the page cache is dropped between runs):
#   bash bench/write.sh [--only write|build]
# Environment: SIZE_MIB (512), DELAY_MS (5), WORK (default /var/tmp).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

only=all
[ "${1:-}" = "--only" ] && only=${2:?}
size_mib=${SIZE_MIB:-512}
delay_ms=${DELAY_MS:-5}
[ "$(id -u)" -eq 0 ] || { echo "write.sh: run as root (drops the page cache)" >&2; exit 1; }
[ -d /usr/src/googletest ] || { echo "write.sh: needs libgtest-dev's /usr/src/googletest" >&2; exit 1; }

. bench/lib.sh
bench_setup write
stat_of() { $bin/cachefs-ctl stats "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
write_file() { dd if="$work/source" of="$1" bs=1M conv=fsync status=none; }
read_file() { dd if="$1" of=/dev/null bs=1M status=none; }

mkdir -p "$work/served"
bash tools/sshfs-export.sh start "$work/served" "$work/ssh" --delay-ms "$delay_ms" >&2
bash tools/sshfs-export.sh mount "$work/ssh" "$work/sshfs" >&2

# sequential NAME ORIGIN_DIR
sequential() {
  local name=$1 origin=$2 mnt=$work/mnt-seq-$1 cache=$work/cache-seq-$1
  mkdir -p "$mnt"
  local a b from_cache from_origin
  a=$(timed write_file "$origin/direct")
  rm -f "$origin/direct"
  $bin/cachefs "$origin" "$mnt" -o cache="$cache"
  b=$(timed write_file "$mnt/through")
  drop
  read_file "$mnt/through"
  from_cache=$(stat_of "$mnt" bytes_read_from_cache)
  from_origin=$(stat_of "$mnt" bytes_read_from_origin)
  # Compared through 1 MiB reads: cmp's own small reads cost a round trip
  # each over SSHFS with attr_timeout=0 (about 25 minutes for 512 MiB).
  dd if="$origin/through" bs=1M status=none | cmp -s "$work/source" - || { echo "write.sh: $name: origin copy differs" >&2; exit 1; }
  printf '%-8s origin %6.2f s %7.1f MiB/s | cachefs %6.2f s %7.1f MiB/s | cachefs/origin %s | read back: %s B from cache, %s B from origin (hit rate %s%%)\n' \
    "$name" "$a" "$(mib_s "$size_mib" "$a")" "$b" "$(mib_s "$size_mib" "$b")" \
    "$(ratio "$a" "$b")" "$from_cache" "$from_origin" \
    "$(echo "scale=2; 100 * $from_cache / ($from_cache + $from_origin)" | bc -l)"
  fusermount3 -u "$mnt"
  rm -f "$origin/through"
}

# Copies in the GoogleTest sources and builds them twice under DIR; prints
# copy, first and second build seconds.
build_twice() {
  local dir=$1 copy first second
  copy=$(timed cp -r /usr/src/googletest "$dir/src")
  first=$(timed bash -c "(cmake -S '$dir/src' -B '$dir/b1' && make -C '$dir/b1' -j2) 2>&1")
  second=$(timed bash -c "(cmake -S '$dir/src' -B '$dir/b2' && make -C '$dir/b2' -j2) 2>&1")
  [ -f "$dir/b2/lib/libgtest.a" ] || { echo "write.sh: build under $dir failed" >&2; exit 1; }
  echo "$copy $first $second"
}

if [ "$only" = all ] || [ "$only" = write ]; then
  head -c $((size_mib << 20)) /dev/urandom >"$work/source"
  echo "sequential write of $size_mib MiB (dd bs=1M conv=fsync), then read back through cachefs:"
  mkdir -p "$work/local"
  sequential local "$work/local"
  sequential sshfs "$work/sshfs"
  rm -f "$work/source"
fi

if [ "$only" = all ] || [ "$only" = build ]; then
  echo "GoogleTest copied in and built twice (cmake + make -j2), SSHFS with ${delay_ms} ms each way:"
  printf '%-40s %8s %8s %8s\n' "" "copy s" "build1 s" "build2 s"
  mkdir -p "$work/sshfs/alone"
  read -r c1 f1 s1 < <(build_twice "$work/sshfs/alone")
  printf '%-40s %8.1f %8.1f %8.1f\n' "(a) SSHFS alone" "$c1" "$f1" "$s1"
  mkdir -p "$work/sshfs/cto" "$work/mnt-cto"
  $bin/cachefs "$work/sshfs/cto" "$work/mnt-cto" -o cache="$work/cache-cto"
  read -r c2 f2 s2 < <(build_twice "$work/mnt-cto")
  fusermount3 -u "$work/mnt-cto"
  printf '%-40s %8.1f %8.1f %8.1f\n' "(b) cachefs over SSHFS" "$c2" "$f2" "$s2"
  mkdir -p "$work/sshfs/nocto" "$work/mnt-nocto"
  $bin/cachefs "$work/sshfs/nocto" "$work/mnt-nocto" \
    -o cache="$work/cache-nocto",nocto,attr_timeout=3600,entry_timeout=3600
  read -r c3 f3 s3 < <(build_twice "$work/mnt-nocto")
  fusermount3 -u "$work/mnt-nocto"
  printf '%-40s %8.1f %8.1f %8.1f\n' "(c) cachefs -o nocto, timeouts 3600 s" "$c3" "$f3" "$s3"
  printf 'second build, SSHFS alone / cachefs: %s (cto), %s (nocto)\n' \
    "$(ratio "$s1" "$s2")" "$(ratio "$s1" "$s3")"
fi
