#!/usr/bin/env bash
# Downloads the Debian kernel package that linux-image-amd64 depends on
# (apt-get download, no root filesystem changes), unpacks it into a cache
# outside the repository, runs depmod (the .deb ships no modules.dep) and
# writes kernel.env there:
#   NBDBOOT_KVER      kernel release, e.g. 6.1.0-41-amd64
#   NBDBOOT_VMLINUZ   the kernel image for QEMU's -kernel
#   NBDBOOT_MODROOT   DIR such that DIR/lib/modules/$NBDBOOT_KVER holds the modules
# Prints the path of kernel.env. Cache: $NBDBOOT_CACHE or ~/.cache/nbdboot.
set -euo pipefail
cache=${NBDBOOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nbdboot}
mkdir -p "$cache"
env_file=$cache/kernel.env
if [ -f "$env_file" ]; then
  # shellcheck disable=SC1090
  . "$env_file"
  if [ -f "$NBDBOOT_VMLINUZ" ] && [ -f "$NBDBOOT_MODROOT/lib/modules/$NBDBOOT_KVER/modules.dep" ]; then
    echo "$env_file"; exit 0
  fi
fi
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get update -qq >&2
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "kernel.sh: cannot tell which kernel linux-image-amd64 depends on (apt-cache depends linux-image-amd64)" >&2; exit 1; }
kver=${pkg#linux-image-}
root=$cache/kernel-$kver
if [ ! -f "$root/boot/vmlinuz-$kver" ]; then
  echo "kernel.sh: downloading $pkg" >&2
  dl=$(mktemp -d); trap 'rm -rf "$dl"' EXIT
  (cd "$dl" && apt-get download "$pkg" >&2) || { apt-get update -qq >&2; (cd "$dl" && apt-get download "$pkg" >&2); }
  rm -rf "$root.tmp"; mkdir -p "$root.tmp"
  dpkg-deb -x "$dl"/*.deb "$root.tmp"
  rm -rf "$root"; mv "$root.tmp" "$root"
fi
[ -f "$root/lib/modules/$kver/modules.dep" ] || depmod -b "$root" "$kver"
cat >"$env_file" <<ENV
NBDBOOT_KVER=$kver
NBDBOOT_VMLINUZ=$root/boot/vmlinuz-$kver
NBDBOOT_MODROOT=$root
ENV
echo "$env_file"
