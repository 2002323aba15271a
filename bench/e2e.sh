#!/usr/bin/env bash
# End-to-end read benchmark of cachefs, everything measured in one run on
# the same data:
#   data:    one 1 GiB file read sequentially; a tree of 2,000 files of
#            16 KiB, each read whole (sizes can be scaled, see below)
#   origins: a local directory; SSHFS from a private sshd on loopback behind
#            cachefs-latency-proxy (5 ms each way, so >= 10 ms per round trip)
#   (a) read from the origin directly
#   (b) read through cachefs, cold (empty cache)
#   (c) read through cachefs, warm, after dropping the page cache
#   (d) the cache disk's own O_DIRECT read of the same bytes (the backing
#       files, with dd iflag=direct)
# For the tree over SSHFS, (b) and (c) are also measured with -o nocto
# (opens trust attributes younger than attr_timeout=3600 s).
#
# Usage (as root: the page cache is dropped between runs):
#   bash bench/e2e.sh [--origin local|sshfs|both]
# Environment: BIG_MIB (1024), TREE_FILES (2000), FILE_KIB (16),
# DELAY_MS (5), WORK (a directory on the cache disk, default /var/tmp).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

origins=both
[ "${1:-}" = "--origin" ] && origins=${2:?}
big_mib=${BIG_MIB:-1024}
tree_files=${TREE_FILES:-2000}
file_kib=${FILE_KIB:-16}
delay_ms=${DELAY_MS:-5}
[ "$(id -u)" -eq 0 ] || { echo "e2e.sh: run as root (drops the page cache)" >&2; exit 1; }

. bench/lib.sh
bench_setup e2e
read_big() { dd if="$1/big" of=/dev/null bs=1M status=none; }
read_tree() { find "$1/tree" -type f -exec cat {} + >/dev/null; }
# O_DIRECT reads, 1 MiB at a time, in one process, of the backing files
# under a cache directory: those larger than 100 MiB (big) or the rest.
direct_read() {
  python3 - "$1" "$2" <<'PY'
import mmap, os, sys
root, which = sys.argv[1] + "/volumes", sys.argv[2]
buf = mmap.mmap(-1, 1 << 20)  # page-aligned, as O_DIRECT needs
for d, _, files in os.walk(root):
    for f in files:
        path = os.path.join(d, f)
        if "." in f or (os.path.getsize(path) > 100 << 20) != (which == "big"):
            continue
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        while os.readv(fd, [buf]) > 0:
            pass
        os.close(fd)
PY
}

echo "generating ${big_mib} MiB file and ${tree_files} files of ${file_kib} KiB" >&2
mkdir -p "$work/data/tree"
head -c $((big_mib << 20)) /dev/urandom >"$work/data/big"
for i in $(seq 1 "$tree_files"); do
  d=$work/data/tree/d$((i % 20))
  mkdir -p "$d"
  head -c $((file_kib << 10)) /dev/urandom >"$d/f$i"
done
tree_mib=$(echo "scale=3; $tree_files * $file_kib / 1024" | bc -l)

# run ORIGIN_NAME ORIGIN_DIR: the four measurements on one origin.
run() {
  local name=$1 origin=$2 mnt=$work/mnt-$1 cache=$work/cache-$1
  mkdir -p "$mnt"
  local a_big a_tree b_big b_tree c_big c_tree d_big d_tree
  a_big=$(timed read_big "$origin")
  a_tree=$(timed read_tree "$origin")
  $bin/cachefs "$origin" "$mnt" -o cache="$cache"
  b_big=$(timed read_big "$mnt")
  b_tree=$(timed read_tree "$mnt")
  c_big=$(timed read_big "$mnt")
  c_tree=$(timed read_tree "$mnt")
  fusermount3 -u "$mnt"
  d_big=$(timed direct_read "$cache" big)
  d_tree=$(timed direct_read "$cache" tree)
  printf '\n%s origin\n' "$name"
  printf '%-34s %10s %10s %10s %10s\n' "" "big s" "big MiB/s" "tree s" "tree MiB/s"
  for row in "a origin directly:$a_big:$a_tree" "b cachefs cold:$b_big:$b_tree" \
    "c cachefs warm:$c_big:$c_tree" "d cache disk O_DIRECT:$d_big:$d_tree"; do
    IFS=: read -r label tb tt <<<"$row"
    printf '%-34s %10.2f %10.1f %10.2f %10.1f\n' "($label)" "$tb" \
      "$(mib_s "$big_mib" "$tb")" "$tt" "$(mib_s "$tree_mib" "$tt")"
  done
  printf 'ratios: big c/d (throughput) %s   big b/a %s   tree a/c (speedup) %s   tree b/a %s\n' \
    "$(ratio "$d_big" "$c_big")" "$(ratio "$a_big" "$b_big")" \
    "$(ratio "$a_tree" "$c_tree")" "$(ratio "$a_tree" "$b_tree")"
  if [ "$name" = sshfs ]; then
    local n_cold n_warm cache2=$work/cache-$1-nocto
    $bin/cachefs "$origin" "$mnt" -o cache="$cache2",nocto,attr_timeout=3600,entry_timeout=3600
    n_cold=$(timed read_tree "$mnt")
    n_warm=$(timed read_tree "$mnt")
    fusermount3 -u "$mnt"
    printf 'tree with -o nocto,attr_timeout=3600,entry_timeout=3600: cold %.2f s, warm %.2f s, a/warm %s\n' \
      "$n_cold" "$n_warm" "$(ratio "$a_tree" "$n_warm")"
  fi
}

if [ "$origins" = local ] || [ "$origins" = both ]; then
  run local "$work/data"
fi
if [ "$origins" = sshfs ] || [ "$origins" = both ]; then
  bash tools/sshfs-export.sh start "$work/data" "$work/ssh" --delay-ms "$delay_ms" >&2
  bash tools/sshfs-export.sh mount "$work/ssh" "$work/sshfs" >&2
  run sshfs "$work/sshfs"
fi
