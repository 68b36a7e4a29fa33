#!/usr/bin/env bash
# build.sh - cross-compile a bare-metal test firmware.
#
# usage: build.sh TARGET OUT.elf TEST.c [MORE.c ...]
#   TARGET: cm3 cm4 cm7 cm33 a53 rv64 rv32 (see targets.sh)
# env:
#   OPT=-O2            optimisation level
#   EXTRA_CFLAGS=...   extra flags for test sources (e.g. -DBM_FORCE_FAIL,
#                      -I path/to/library/include)
#   BM_OBJDIR=DIR      object directory (default: OUT without .elf + .obj)
#   BM_CONSOLE=uart    console on the board UART instead of semihosting
#   V=1                echo commands
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=targets.sh
. "$HERE/targets.sh"

if [ $# -lt 3 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
TARGET="$1"; OUT="$2"; shift 2
bm_target "$TARGET"

OBJDIR="${BM_OBJDIR:-${OUT%.elf}.obj}"
rm -rf "$OBJDIR"; mkdir -p "$OBJDIR" "$(dirname "$OUT")"

OPT="${OPT:--O2}"
# Freestanding: no libc headers/libs, no PIE (Debian's cross gcc defaults
# to PIE), no stack protector (needs __stack_chk_guard), no unwind tables.
COMMON_CFLAGS=(
    "${BM_ARCH_FLAGS[@]}"
    -std=gnu11 -ffreestanding -nostdlib -fno-common
    -fno-pie -fno-pic -fno-stack-protector
    -fno-asynchronous-unwind-tables -fno-unwind-tables
    -ffunction-sections -fdata-sections
    "$OPT" -g -Wall -Wextra
    -I"$HERE/common" -I"$HERE/selftest" -I"$HERE/$BM_PORT"
    "${BM_DEFS[@]}"
)
case "$TARGET" in
a53) COMMON_CFLAGS+=(-mno-outline-atomics) ;;  # libgcc's LSE helpers need getauxval()
esac
# Startup + libc shims must not have their loops turned into mem* calls.
NOLOOP=(-fno-tree-loop-distribute-patterns)

run() { [ "${V:-0}" = 1 ] && echo "+ $*" >&2; "$@"; }

objs=()
compile() { # src extra-flags...
    local src="$1"; shift
    local obj
    obj="$OBJDIR/$(basename "${src%.*}").o"
    run "$BM_CC" "${COMMON_CFLAGS[@]}" "$@" -c "$src" -o "$obj"
    objs+=("$obj")
}

for s in "${BM_PORT_SRCS[@]}"; do compile "$HERE/$s" "${NOLOOP[@]}"; done
compile "$HERE/common/bm_libc.c" "${NOLOOP[@]}"
compile "$HERE/common/bm_common.c"
# shellcheck disable=SC2086
for s in "$@"; do compile "$s" ${EXTRA_CFLAGS:-}; done

run "$BM_CC" "${BM_LINK_FLAGS[@]}" -nostdlib -static -no-pie \
    -T "$HERE/$BM_LDSCRIPT" -L "$HERE/$BM_LDPATH" \
    -Wl,--gc-sections -Wl,--build-id=none -Wl,--no-warn-rwx-segments -Wl,-Map="${OUT%.elf}.map" \
    "${objs[@]}" -lgcc -o "$OUT"
[ "${V:-0}" = 1 ] && echo "+ libgcc: $("$BM_CC" "${BM_LINK_FLAGS[@]}" -print-libgcc-file-name)" >&2
true
