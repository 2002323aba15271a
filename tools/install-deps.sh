#!/usr/bin/env bash
# Installs, from Debian 12's packages, whatever cachefs needs to build, test
# and run that is not installed yet. Needs root (or sudo) only if something
# is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libfuse3-dev fuse3 liburing-dev libattr1-dev attr libnfs-dev
  nfs-ganesha nfs-ganesha-vfs rpcbind
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  sshfs openssh-server openssh-client bc man-db
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
