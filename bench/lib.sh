# Shared by the end-to-end benchmark scripts (sourced, not run): builds the
# programs they need, makes a work directory that is unmounted, stopped and
# removed on every exit path, and times commands with a cold page cache.
#
#   bench_setup NAME   builds in $BUILD_DIR (default build), sets $bin to
#                      its programs and $work (under $WORK, default
#                      /var/tmp) and the cleanup trap; the scripts keep
#                      mounts in $work/mnt* and an sshfs export's state in
#                      $work/ssh.

bench_setup() {
  local build=${BUILD_DIR:-build}
  cmake -S . -B "$build" >/dev/null
  cmake --build "$build" -j"$(nproc)" --target cachefs cachefs-ctl \
    cachefs-latency-proxy >/dev/null
  export CACHEFS_BIN_DIR=$PWD/$build/bin
  bin=$CACHEFS_BIN_DIR
  work=$(mktemp -d "${WORK:-/var/tmp}/cachefs-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  set +e
  for m in "$work"/mnt*; do
    grep -q " $m " /proc/mounts && { fusermount3 -u "$m" || fusermount3 -uz "$m"; }
  done
  bash tools/sshfs-export.sh stop "$work/ssh" >/dev/null 2>&1
  rm -rf "$work"
}

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
# Seconds to run "$@" with a cold page cache (its stdout discarded).
timed() {
  local t0 t1
  drop
  t0=$(now)
  "$@" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
mib_s() { echo "scale=1; $1 / $2" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
# The median of the numbers on standard input, separated by spaces.
median_in() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# MB/s of fio reading the largest backing file (over 1000 MiB) in cache
# directory CACHE with O_DIRECT, 256 KiB requests, 8 in flight, with a
# cold page cache: the cache disk's own rate for a warm read to be set
# against.
disk_mbs() {
  local backing
  backing=$(find "$1/volumes" -type f -size +1000M | head -1)
  drop
  fio --name=qd8 --filename="$backing" --rw=read --bs=256k \
    --iodepth=8 --ioengine=io_uring --direct=1 --size=1G \
    --output-format=terse --terse-version=3 | awk -F';' '{print $7 * 1024 / 1e6}'
}
