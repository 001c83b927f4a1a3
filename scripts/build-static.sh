#!/usr/bin/env bash
# Builds one static station binary with Embedded Swift and musl.
#   scripts/build-static.sh OUTPUT DIR...
# Every .swift file of the DIRs is compiled as one module (Embedded Swift has
# no separate modules here), with Sources/CShims/include/shim.h as the
# bridging header, then linked statically with musl-gcc and stripped.
# Recipe: ../shared/notes/embedded-swift.md.
set -euo pipefail
out=$1; shift
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(dirname "$out")/.work-$(basename "$out")
mkdir -p "$work/inc"
# musl has no linux/ or asm/ headers: lend it the kernel's uapi headers.
ln -sfn /usr/include/linux "$work/inc/linux"
ln -sfn /usr/include/x86_64-linux-gnu/asm "$work/inc/asm"
ln -sfn /usr/include/asm-generic "$work/inc/asm-generic"
swiftc_bin=$(command -v swiftc)
clang_inc=$(echo "$(dirname "$(readlink -f "$swiftc_bin")")"/../lib/clang/*/include)
files=()
for d in "$@"; do
  for f in "$top/$d"/*.swift; do files+=("$f"); done
done
# -function-sections puts each function in its own section so that the linker's
# --gc-sections can drop the unused ones (the init shrank from 432 to 326 KB).
swiftc -enable-experimental-feature Embedded -wmo -Osize -parse-as-library -Xfrontend -function-sections \
  -module-name "$(basename "$out" | tr -c 'A-Za-z0-9\n' '_')" \
  -Xcc -nostdinc -Xcc -isystem -Xcc /usr/include/x86_64-linux-musl \
  -Xcc -isystem -Xcc "$work/inc" -Xcc -isystem -Xcc "$clang_inc" \
  -Xcc -D_GNU_SOURCE \
  -import-bridging-header "$top/Sources/CShims/include/shim.h" \
  "${files[@]}" -c -o "$work/main.o" 2> >(grep -v 'libc not found' >&2)
# String operations on Characters need the Unicode tables (a few hundred KB
# before --gc-sections keeps only what is used).
unicode="$(dirname "$(readlink -f "$swiftc_bin")")/../lib/swift/embedded/x86_64-unknown-linux-gnu/libswiftUnicodeDataTables.a"
musl-gcc -Os -c "$top/Sources/StaticRuntime/runtime.c" -o "$work/runtime.o"
musl-gcc -static -Os -Wl,--gc-sections "$work/main.o" "$work/runtime.o" "$unicode" -o "$out"
strip "$out"
