#!/usr/bin/env bash
# The main job of cachefs, end to end on a fresh Debian 12 machine:
#   1. installs what is missing and builds;
#   2. serves a generated demo tree from a private sshd on a loopback port
#      (its own keys), behind a 5 ms-each-way latency proxy, and mounts it
#      with sshfs: a slow network origin;
#   3. mounts cachefs over it on a temporary cache and reads the tree three
#      times: cold, warm (page cache dropped), and after a remount;
#   4. prints the timings and `cachefs-ctl stats`;
# and on every exit path unmounts and stops everything it started.
# Needs root for dropping the page cache (it warns and goes on otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

bash tools/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target cachefs cachefs-ctl \
  cachefs-latency-proxy

work=$(mktemp -d /var/tmp/cachefs-demo.XXXXXX)
export CACHEFS_BIN_DIR=$repo/build/bin
cleanup() {
  set +e
  if grep -q " $work/mnt " /proc/mounts; then
    fusermount3 -u "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt"
  fi
  bash "$repo/tools/sshfs-export.sh" stop "$work/ssh" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== generating the demo tree: 300 files of 64 KiB and one of 64 MiB"
mkdir -p "$work/export/src" "$work/mnt"
for i in $(seq 1 300); do
  head -c 65536 /dev/urandom >"$work/export/src/file-$i.dat"
done
head -c $((64 << 20)) /dev/urandom >"$work/export/big.dat"

echo "== serving it over SFTP on loopback, 5 ms each way, mounted with sshfs"
bash tools/sshfs-export.sh start "$work/export" "$work/ssh" --delay-ms 5
bash tools/sshfs-export.sh mount "$work/ssh" "$work/sshfs"

mount_cachefs() {
  build/bin/cachefs "$work/sshfs" "$work/mnt" -o cache="$work/cache"
}
drop_page_cache() {
  sync
  if [ "$(id -u)" -eq 0 ]; then
    echo 3 >/proc/sys/vm/drop_caches
  else
    echo "(not root: cannot drop the page cache)"
  fi
}
# Reads every file under the mount and prints the seconds it took.
read_tree() {
  local start end
  start=$(date +%s.%N)
  find "$work/mnt" -type f -exec cat {} + >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

echo "== mounting cachefs over the sshfs mount"
mount_cachefs
cold=$(read_tree)
drop_page_cache
warm=$(read_tree)
fusermount3 -u "$work/mnt"
mount_cachefs
drop_page_cache
remount=$(read_tree)

echo "== checking every byte against the served tree"
diff -r "$work/export" "$work/mnt" && echo "identical"

printf '\n%-36s %10s\n' "read of the whole tree" "seconds"
printf '%-36s %10.2f\n' "cold (from sshfs, 5 ms latency)" "$cold"
printf '%-36s %10.2f\n' "warm (page cache dropped)" "$warm"
printf '%-36s %10.2f\n' "after unmount and remount" "$remount"
echo
echo "== cachefs-ctl stats $work/mnt (counts since the remount)"
build/bin/cachefs-ctl stats "$work/mnt"
