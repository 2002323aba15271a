#!/usr/bin/env bash
# cachefs over NFS reached through libnfs, against libnfs's own client and
# the link itself, all through the same latency, measured in one run:
#
#   server: nfs-ganesha (VFS backend, NFSv4, run as root) on loopback,
#           exporting a generated tree
#   link:   cachefs-latency-proxy in front of it, DELAY_MS each way (5: a
#           10 ms round trip)
#   data:   a 1 GiB file, FILES files of 16 KiB
#
# Rows (medians of ROUNDS rounds, interleaved in each round):
#   1 GiB cold       MB/s of dd bs=1M through cachefs on an empty cache
#   1 GiB warm       the same again, page cache dropped (from the cache disk)
#   cache disk       MB/s of fio reading that cached file's backing file
#                    with O_DIRECT, 256 KiB requests, 8 in flight
#   nfs-cat          MB/s of libnfs's nfs-cat of the file through the proxy
#   libnfs, N deep   MB/s of bench's nfs_read_depth: libnfs alone reading
#                    the file over one connection with DEPTH (32) reads of
#                    256 KiB in flight, as cachefs's read-ahead does
#   origin layer     MB/s of bench's nfs_origin_depth: cachefs's own
#                    origin layer (NfsOrigin, its service threads) read by
#                    DEPTH threads, as the origin pool's workers do
#   one connection   MB/s of one TCP stream of 1 GiB through the proxy
#   small files      ms per file reading FILES files, cold, warm (page cache
#                    dropped), after a remount, with and without -o nocto
# Beside each large read: the machine's CPU busy during it (percent of
# one core, all cores counted) and that of the server, the proxy and
# cachefs, since all of them share this machine's cores.
#
# The server serves every row from its page cache (the files are read on
# its side after each drop_caches): the rows measure the link and the
# client, not the server's disk.
#
# Usage (as root: ganesha's VFS backend and drop_caches need it):
#   bash bench/nfs.sh
# Environment: FILES (1000), ROUNDS (3), DELAY_MS (5), DEPTH (32),
# OPTS (more cachefs
# options, e.g. readahead=32), WORK (/var/tmp), BUILD_DIR (build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
files=${FILES:-1000}
rounds=${ROUNDS:-3}
delay_ms=${DELAY_MS:-5}
depth=${DEPTH:-32}
[ "$(id -u)" -eq 0 ] || { echo "nfs.sh: run as root" >&2; exit 1; }
for tool in ganesha.nfsd nfs-cat fio python3; do
  command -v "$tool" >/dev/null || { echo "nfs.sh: needs $tool (bash tools/install-deps.sh; apt-get install libnfs-utils fio)" >&2; exit 1; }
done

. bench/lib.sh
bench_setup nfs
cmake --build "${BUILD_DIR:-build}" -j"$(nproc)" --target nfs_read_depth \
  nfs_origin_depth >/dev/null
ganesha_pid=""
proxy_pid=""
stream_pid=""
nfs_cleanup() {
  set +e
  for m in "$work"/mnt*; do
    grep -q " $m " /proc/mounts && { fusermount3 -u "$m" || fusermount3 -uz "$m"; }
  done
  for pid in $stream_pid $proxy_pid $ganesha_pid; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  bench_cleanup
}
trap nfs_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "generating 1 GiB and $files files of 16 KiB" >&2
mkdir -p "$work/data/small" "$work/ganesha/recovery" "$work/mnt"
head -c $((1024 << 20)) /dev/urandom >"$work/data/big"
for i in $(seq 1 "$files"); do head -c 16384 /dev/urandom >"$work/data/small/f$i"; done

gport=$(free_port)
cat >"$work/ganesha/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 4; NFS_Port = $gport; Bind_Addr = 127.0.0.1;
  Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }
NFSV4 { Graceless = true; Only_Numeric_Owners = true; RecoveryBackend = fs;
  RecoveryRoot = $work/ganesha/recovery; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT { Export_Id = 1; Path = $work/data; Pseudo = $work/data;
  Access_Type = RW; Squash = No_Root_Squash; SecType = sys; Protocols = 4;
  Transports = TCP; FSAL { Name = VFS; } }
CONF
ganesha.nfsd -F -f "$work/ganesha/ganesha.conf" -L "$work/ganesha/log" \
  -p "$work/ganesha/pid" >/dev/null 2>&1 &
ganesha_pid=$!
for _ in $(seq 1 200); do
  grep -q "NFS SERVER INITIALIZED" "$work/ganesha/log" 2>/dev/null && break
  sleep 0.05
done
grep -q "NFS SERVER INITIALIZED" "$work/ganesha/log" || { echo "nfs.sh: ganesha did not start" >&2; exit 1; }

# A latency proxy to 127.0.0.1:PORT; it prints "port N" first, kept in
# FILE. Sets $started to its pid.
start_proxy() {
  "$bin/cachefs-latency-proxy" --listen 127.0.0.1:0 \
    --connect "127.0.0.1:$1" --delay-ms "$delay_ms" >"$2" &
  started=$!
  for _ in $(seq 1 200); do
    [ -s "$2" ] && break
    sleep 0.05
  done
}
start_proxy "$gport" "$work/proxy.port"
proxy_pid=$started
pport=$(awk '{print $2; exit}' "$work/proxy.port")
url="nfs://127.0.0.1:$pport$work/data"
echo "ganesha on $gport, through the proxy on $pport (${delay_ms} ms each way)" >&2

# One TCP stream of 1 GiB through the same proxy: a sender behind it, a
# counting reader in front.
sport=$(free_port)
python3 - "$sport" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
block = b"\0" * (1 << 20)
while True:
    c, _ = s.accept()
    for _ in range(1024):
        c.sendall(block)
    c.close()
PY
stream_pid=$!
start_proxy "$sport" "$work/stream-proxy.port"
stream_pid="$stream_pid $started"
spport=$(awk '{print $2; exit}' "$work/stream-proxy.port")
stream_mbs() {
  python3 - "$spport" <<'PY'
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.monotonic(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    n += len(b)
print("%.1f" % (n / 1e6 / (time.monotonic() - t0)))
PY
}

# The server's files in its page cache, after a drop: every row measures
# the link and the client, never the server's disk.
serve_from_memory() { cat "$work/data/big" "$work/data/small"/* >/dev/null; }

read_files() {  # ms per file, reading every file of DIR whole
  python3 - "$1" <<'PY'
import os, sys, time
d = sys.argv[1]
names = sorted(os.listdir(d))
t0 = time.monotonic()
for n in names:
    with open(os.path.join(d, n), 'rb') as f:
        while f.read(1 << 20):
            pass
print("%.2f" % ((time.monotonic() - t0) * 1000 / len(names)))
PY
}
# MB/s of reading FILE whole; the caller drops the page cache and puts the
# server's files in its own first.
dd_mbs() {
  local t0 t1
  t0=$(now)
  dd if="$1" of=/dev/null bs=1M status=none
  t1=$(now)
  echo "scale=1; $(stat -c %s "$1") / 1000000 / ($t1 - $t0)" | bc -l
}
nfs_cat_mbs() {
  local t0 t1
  t0=$(now)
  nfs-cat "nfs://127.0.0.1$work/data/big?version=4&nfsport=$pport" >/dev/null
  t1=$(now)
  echo "scale=1; 1073741824 / 1000000 / ($t1 - $t0)" | bc -l
}
depth_mbs() {
  "$bin/nfs_read_depth" "nfs://127.0.0.1$work/data?version=4&nfsport=$pport" \
    /big "$depth" | awk '{print $3}'
}
origin_mbs() {
  "$bin/nfs_origin_depth" "$url" big "$depth" | awk '{print $3}'
}

# CPU time so far, in clock ticks: the machine's (all cores), the
# server's, the proxy's and the cachefs daemon's (0 if none runs).
cpu_ticks() {
  local daemon
  daemon=$(pgrep -x cachefs | head -1 || true)
  awk '/^cpu /{printf "%d ", $2+$3+$4+$7+$8+$9}' /proc/stat
  for pid in "$ganesha_pid" "$proxy_pid" "$daemon"; do
    if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
      awk '{printf "%d ", $14+$15}' "/proc/$pid/stat"
    else
      printf '0 '
    fi
  done
  echo
}
# Runs "$@" (which prints one number) for row ROW: the number goes to
# r[ROW], the CPU each part used meanwhile, as percent of one core, to
# cpu[ROW.machine|server|proxy|cachefs].
declare -A r cpu
with_cpu() {
  local row=$1 t0 t1 out hz i
  local -a before after parts=(machine server proxy cachefs)
  shift
  hz=$(getconf CLK_TCK)
  read -ra before <<<"$(cpu_ticks)"
  t0=$(now)
  out=$("$@")
  t1=$(now)
  read -ra after <<<"$(cpu_ticks)"
  for i in 0 1 2 3; do
    cpu[$row.${parts[$i]}]+=" $(echo "scale=0; 100 * (${after[$i]} - ${before[$i]}) / $hz / ($t1 - $t0)" | bc -l)"
  done
  r[$row]+=" $out"
}

extra=${OPTS:-}
mount_cachefs() {
  "$bin/cachefs" "$url" "$work/mnt" -o "cache=$1${2:+,$2}${extra:+,$extra}"
}

for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  r[stream]+=" $(stream_mbs)"
  serve_from_memory
  r[nfscat]+=" $(nfs_cat_mbs)"
  with_cpu depth depth_mbs
  serve_from_memory
  with_cpu origin origin_mbs
  # A cache per round and row, so that none is removed under a daemon that
  # is still writing back after its unmount.
  cache=$work/cache-big-$round
  mount_cachefs "$cache" ""
  drop
  serve_from_memory
  with_cpu big.cold dd_mbs "$work/mnt/big"
  drop
  serve_from_memory
  r[big.warm]+=" $(dd_mbs "$work/mnt/big")"
  r[disk]+=" $(disk_mbs "$cache")"
  fusermount3 -u "$work/mnt"
  for mode in cto nocto; do
    opts=""
    [ "$mode" = nocto ] && opts=nocto
    cache=$work/cache-small-$mode-$round
    mount_cachefs "$cache" "$opts"
    drop
    serve_from_memory
    r[small.$mode.cold]+=" $(read_files "$work/mnt/small")"
    drop
    serve_from_memory
    r[small.$mode.warm]+=" $(read_files "$work/mnt/small")"
    fusermount3 -u "$work/mnt"
    mount_cachefs "$cache" "$opts"
    drop
    serve_from_memory
    r[small.$mode.remount]+=" $(read_files "$work/mnt/small")"
    fusermount3 -u "$work/mnt"
  done
done

m() { echo "${r[$1]}" | median_in; }
stream=$(m stream)
echo
echo "cachefs over NFSv4 (libnfs) at ${delay_ms} ms each way; medians of $rounds rounds"
printf '%-34s %10s %s\n' "row" "median" "ratio"
printf '%-34s %10s\n' "one TCP stream, MB/s" "$stream"
printf '%-34s %10s %s\n' "nfs-cat, MB/s" "$(m nfscat)" "$(ratio "$(m nfscat)" "$stream")x stream"
printf '%-34s %10s %s\n' "libnfs, $depth reads in flight, MB/s" "$(m depth)" "$(ratio "$(m depth)" "$stream")x stream"
printf '%-34s %10s %s\n' "origin layer, $depth threads, MB/s" "$(m origin)" "$(ratio "$(m origin)" "$stream")x stream, $(ratio "$(m origin)" "$(m depth)")x libnfs $depth deep"
printf '%-34s %10s %s\n' "cachefs 1 GiB cold, MB/s" "$(m big.cold)" "$(ratio "$(m big.cold)" "$stream")x stream, $(ratio "$(m big.cold)" "$(m nfscat)")x nfs-cat, $(ratio "$(m big.cold)" "$(m depth)")x libnfs $depth deep"
printf '%-34s %10s %s\n' "cachefs 1 GiB warm, MB/s" "$(m big.warm)" "$(ratio "$(m big.warm)" "$(m disk)")x the cache disk"
printf '%-34s %10s\n' "cache disk, O_DIRECT 256K QD8, MB/s" "$(m disk)"
for mode in cto nocto; do
  for pass in cold warm remount; do
    printf '%-34s %10s\n' "$files x 16 KiB $pass ($mode), ms/file" "$(m small.$mode.$pass)"
  done
done
mc() { echo "${cpu[$1]}" | median_in; }
echo
echo "CPU during the large reads, percent of one core ($(nproc) cores)"
printf '%-34s %8s %8s %8s %8s\n' "row" "machine" "server" "proxy" "cachefs"
for row in depth origin big.cold; do
  printf '%-34s %8s %8s %8s %8s\n' "$row" "$(mc $row.machine)" \
    "$(mc $row.server)" "$(mc $row.proxy)" "$(mc $row.cachefs)"
done
