#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-example.sh TARGET SRC_ROOT WORK_DIR EXAMPLE.c - CTest test
# baremetal.example: builds one bare-metal example firmware (examples/) for
# TARGET with IOMEM_DEBUG=0 and =1 and runs each in QEMU (run.sh: exit 0
# and a complete all-"ok" TAP stream). SKIP (77) without the toolchain,
# a failure under IOMEM_REQUIRE_ALL=1, as run-target.sh.
set -uo pipefail
[ $# -eq 4 ] || { echo "usage: $0 TARGET SRC_ROOT WORK_DIR EXAMPLE.c" >&2; exit 2; }
target=$1
src_root=$(cd "$2" && pwd) || exit 2
work=$3
example=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
. "$here/targets.sh"
bm_target "$target" || exit 2
for tool in "$BM_CC" "${BM_QEMU[0]}"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		[ "${IOMEM_REQUIRE_ALL:-0}" = 1 ] && { echo "FAIL: $tool not found"; exit 1; }
		echo "SKIP: $tool not found"
		exit 77
	fi
done
rm -rf "$work"
mkdir -p "$work"
fail=0
for dbg in 0 1; do
	elf=$work/example-d$dbg.elf
	if ! EXTRA_CFLAGS="-std=gnu99 -Werror -Wshadow -Wundef -I$src_root -DIOMEM_DEBUG=$dbg" \
		"$here/build.sh" "$target" "$elf" "$example"; then
		echo "FAIL: $(basename "$example") IOMEM_DEBUG=$dbg: build failed"
		fail=$((fail + 1))
		continue
	fi
	"$here/run.sh" -t "${BM_TIMEOUT:-60}" -l "$work/example-d$dbg.log" "$target" "$elf" || fail=$((fail + 1))
done
echo "baremetal.example ($target, $(basename "$example")): $((2 - fail)) image(s) passed, $fail failed"
[ "$fail" -eq 0 ]
