#!/usr/bin/env bash
# Installs the Debian packages nbdboot's build, demo and tests use, when missing.
# Runs `apt-get update` only when something has to be installed.
set -euo pipefail
pkgs=(
  qemu-system-x86 busybox-static e2fsprogs musl-tools musl-dev libblkid-dev
  zstd xz-utils lz4 gzip cpio kmod file squashfs-tools
  nbd-server nbd-client nbdkit libnbd-bin python3-libnbd qemu-utils fio
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
$sudo_ apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
