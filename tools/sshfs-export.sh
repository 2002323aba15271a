#!/usr/bin/env bash
# Serves a local directory over SFTP from a private sshd on a loopback port,
# optionally behind cachefs-latency-proxy, and mounts it with sshfs: an
# "origin" like a remote SSHFS mount, for the README demo and the
# end-to-end benchmark. Everything it starts is tracked by PID in STATE_DIR.
#
#   tools/sshfs-export.sh start DIR STATE_DIR [--delay-ms N]
#       Fresh keys and sshd_config in STATE_DIR, sshd on a free port of
#       127.0.0.1 serving DIR (and a latency proxy in front with --delay-ms).
#       Mounts nothing. Prints:
#         export=127.0.0.1:/abs/DIR port=N key=STATE_DIR/id_ed25519
#       where N is the port clients use (the proxy's, if any).
#   tools/sshfs-export.sh mount STATE_DIR MOUNTPOINT [--plain]
#       Mounts the export at MOUNTPOINT (created if missing) with sshfs in
#       the foreground, in the background, without caching in sshfs (the
#       options README gives for an origin under cachefs); with --plain,
#       with sshfs's own defaults instead (its caches on), as sshfs alone
#       would be mounted.
#   tools/sshfs-export.sh stop STATE_DIR
#       Unmounts what `mount` mounted and stops every process `start` and
#       `mount` started. Safe after a partial start, and to repeat.
#
# The proxy is looked for in $CACHEFS_BIN_DIR (default build/bin).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${CACHEFS_BIN_DIR:-$repo/build/bin}
# sshfs without caches: each stat and lookup reaches the server, as cachefs
# needs for its coherency checks (sshfs 3.x spells sshfs 2's cache=no as
# dir_cache=no; the timeouts are the kernel's). direct_io: reads go to the
# server as they are, several at once, without an attribute request before
# each and without a second copy in the origin mount's page cache.
sshfs_nocache="dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0,direct_io"

die() {
  echo "sshfs-export: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# True while PID runs (a zombie does not count).
alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# Runs "$@" every 0.1 s until it succeeds, at most TENTHS times.
wait_until() {
  local tenths=$1 i
  shift
  for ((i = 0; i < tenths; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  "$@"
}

not_alive() { ! alive "$1"; }

# Stops PID if it still runs and its name is COMM (so a reused PID is safe):
# SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
  local pid=$1 comm=$2
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_until 50 not_alive "$pid" && return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait_until 20 not_alive "$pid" || echo "sshfs-export: pid $pid survives SIGKILL" >&2
}

# Children of PID (sshd's per-connection processes). The name in a stat
# line may hold spaces, so fields are counted after its closing ')'.
children_of() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
    awk -v p="$1" '{ pid = $1; sub(/^.*\) /, ""); if ($2 == p) print pid }'
}

# True when mountinfo shows MOUNTPOINT (canonical, no whitespace) as FSTYPE.
mounted_as() {
  awk -v mp="$1" -v type="$2" '
    { for (i = 7; i <= NF && $i != "-"; i++) {} }
    $5 == mp && $(i + 1) == type { found = 1 }
    END { exit !found }' /proc/self/mountinfo
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

sshd_config() {
  local state=$1 port=$2
  cat <<CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $state/host_ed25519
AuthorizedKeysFile $state/authorized_keys
PidFile $state/sshd.pidfile
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PrintMotd no
UseDNS no
MaxStartups 100
Subsystem sftp internal-sftp
CONFIG
}

# Starts sshd on PORT; fails (1) if it does not listen, 3 if the port is
# taken. Leaves its PID in sshd.pid either way.
start_sshd_on() {
  local state=$1 port=$2 i
  sshd_config "$state" "$port" >"$state/sshd_config"
  : >"$state/sshd.log"
  setsid /usr/sbin/sshd -D -e -f "$state/sshd_config" \
    </dev/null >>"$state/sshd.log" 2>&1 &
  echo $! >"$state/sshd.pid"
  local ready="Server listening on 127.0.0.1 port $port."
  for ((i = 0; i < 100; i++)); do
    if grep -qF "$ready" "$state/sshd.log"; then return 0; fi
    if ! alive "$(cat "$state/sshd.pid")"; then
      grep -q "Address already in use" "$state/sshd.log" && return 3
      return 1
    fi
    sleep 0.1
  done
  return 1
}

start_sshd() {
  local state=$1 port rc attempt
  for ((attempt = 0; attempt < 10; attempt++)); do
    port=$((20000 + RANDOM % 12000))  # below the ephemeral range
    port_in_use "$port" && continue
    rc=0
    start_sshd_on "$state" "$port" || rc=$?
    if ((rc == 0)); then
      echo "$port" >"$state/sshd.port"
      return 0
    fi
    stop_pid "$(cat "$state/sshd.pid")" sshd
    ((rc == 3)) || die "sshd did not start; $state/sshd.log says:
$(cat "$state/sshd.log")"
  done
  die "no free port for sshd after 10 tries"
}

start_proxy() {
  local state=$1 delay=$2 proxy="$bin_dir/cachefs-latency-proxy"
  [[ -x $proxy ]] || die "$proxy is not built (cmake --build build --target cachefs-latency-proxy)"
  setsid "$proxy" --listen 127.0.0.1:0 \
    --connect "127.0.0.1:$(cat "$state/sshd.port")" --delay-ms "$delay" \
    </dev/null >"$state/proxy.out" 2>"$state/proxy.log" &
  echo $! >"$state/proxy.pid"
  wait_until 100 grep -qs '^port [0-9]' "$state/proxy.out" ||
    die "the latency proxy did not start: $(cat "$state/proxy.log")"
  sed -n 's/^port \([0-9]*\)$/\1/p' "$state/proxy.out" >"$state/port"
}

cmd_start() {
  (($# >= 2)) || usage
  local dir=$1 state=$2 delay=""
  shift 2
  while (($#)); do
    case $1 in
      --delay-ms) (($# >= 2)) || usage; delay=$2; shift 2 ;;
      --delay-ms=*) delay=${1#*=}; shift ;;
      *) usage ;;
    esac
  done
  [[ -z $delay || $delay =~ ^[0-9]+$ ]] || die "--delay-ms wants milliseconds"
  [[ -d $dir ]] || die "$dir is not a directory"
  dir=$(cd "$dir" && pwd -P)
  mkdir -p "$state"
  state=$(cd "$state" && pwd -P)
  if [[ -f $state/sshd.pid ]] && alive "$(cat "$state/sshd.pid")"; then
    die "$state already has a running sshd: run stop first"
  fi
  cmd_stop "$state"  # what a failed start may have left
  # On failure, stop what this start started.
  trap 'cmd_stop "$state" >/dev/null 2>&1' EXIT
  [[ -d /run/sshd ]] || mkdir -p /run/sshd 2>/dev/null || true
  rm -f "$state"/host_ed25519* "$state"/id_ed25519* "$state/port" "$state/proxy.pid"
  ssh-keygen -q -t ed25519 -N '' -C sshfs-export -f "$state/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C sshfs-export -f "$state/id_ed25519"
  cp "$state/id_ed25519.pub" "$state/authorized_keys"
  echo "$dir" >"$state/export"
  start_sshd "$state"
  if [[ -n $delay ]]; then
    start_proxy "$state" "$delay"
  else
    cp "$state/sshd.port" "$state/port"
  fi
  trap - EXIT
  echo "export=127.0.0.1:$dir port=$(cat "$state/port") key=$state/id_ed25519"
}

# True once MOUNTPOINT is an sshfs mount that answers a stat.
serving() {
  mounted_as "$1" fuse.sshfs && timeout 5 stat "$1" >/dev/null 2>&1
}

cmd_mount() {
  (($# == 2 || $# == 3)) || usage
  local state=$1 mnt=$2 created=0 i cache_opts=",$sshfs_nocache"
  if (($# == 3)); then
    [[ $3 == --plain ]] || usage
    cache_opts=""
  fi
  [[ -f $state/port && -f $state/export ]] || die "$state: run start first"
  state=$(cd "$state" && pwd -P)
  [[ $mnt != *[[:space:]]* ]] || die "mount points with whitespace are not supported"
  if [[ ! -d $mnt ]]; then
    mkdir -p "$mnt"
    created=1
  fi
  mnt=$(cd "$mnt" && pwd -P)
  mounted_as "$mnt" fuse.sshfs && die "$mnt is already an sshfs mount"
  local opts="IdentityFile=$state/id_ed25519,IdentitiesOnly=yes"
  opts+=",UserKnownHostsFile=/dev/null,StrictHostKeyChecking=no,BatchMode=yes"
  opts+=",LogLevel=ERROR,port=$(cat "$state/port")$cache_opts"
  setsid sshfs "127.0.0.1:$(cat "$state/export")" "$mnt" -f -F /dev/null \
    -o "$opts" </dev/null >>"$state/sshfs.log" 2>&1 &
  local pid=$!
  echo "$pid $created $mnt" >>"$state/mounts"
  for ((i = 0; i < 100; i++)); do
    if serving "$mnt"; then
      echo "mounted $mnt"
      return 0
    fi
    alive "$pid" || break
    sleep 0.1
  done
  stop_mount "$pid" "$created" "$mnt"
  die "sshfs did not mount $mnt; $state/sshfs.log says:
$(tail -n 20 "$state/sshfs.log")"
}

# Unmounts MOUNTPOINT (lazily if busy), stops sshfs PID, removes the mount
# point if `mount` created it.
stop_mount() {
  local pid=$1 created=$2 mnt=$3
  if mounted_as "$mnt" fuse.sshfs; then
    if fusermount3 -u "$mnt" 2>/dev/null; then
      wait_until 30 not_alive "$pid" || true
    else  # busy: detach it; sshfs would wait for the last close
      fusermount3 -uz "$mnt" || true
    fi
  fi
  stop_pid "$pid" sshfs
  if mounted_as "$mnt" fuse.sshfs; then fusermount3 -uz "$mnt" || true; fi
  if ((created)); then rmdir "$mnt" 2>/dev/null || true; fi
}

cmd_stop() {
  (($# == 1)) || usage
  local state=$1 pid created mnt child
  [[ -d $state ]] || return 0
  if [[ -f $state/mounts ]]; then
    while read -r pid created mnt; do
      stop_mount "$pid" "$created" "$mnt"
    done <"$state/mounts"
    rm -f "$state/mounts"
  fi
  if [[ -f $state/proxy.pid ]]; then
    stop_pid "$(cat "$state/proxy.pid")" cachefs-latency
    rm -f "$state/proxy.pid"
  fi
  if [[ -f $state/sshd.pid ]]; then
    pid=$(cat "$state/sshd.pid")
    local sessions
    sessions=$(children_of "$pid")
    stop_pid "$pid" sshd
    for child in $sessions; do stop_pid "$child" sshd; done
    rm -f "$state/sshd.pid"
  fi
  rm -f "$state/port"
}

(($# >= 1)) || usage
command=$1
shift
case $command in
  start) cmd_start "$@" ;;
  mount) cmd_mount "$@" ;;
  stop) cmd_stop "$@" ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
