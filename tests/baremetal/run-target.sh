#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-target.sh TARGET SRC_ROOT WORK_DIR - CTest test baremetal.<TARGET>.
#
# Builds the iomem firmware test (suite/*.c) for TARGET with the cross
# compiler, three times - IOMEM_DEBUG=0 and IOMEM_DEBUG=1 at -O2, and
# IOMEM_DEBUG=0 at -Os as firmware is built for size (the hot helpers are
# then not forced inline: tools/bm-size) - and runs each image in QEMU
# (run.sh: exit status 0 and a complete all-"ok" TAP stream). Prints the
# console output, the image's .text size and one summary line:
#   baremetal.TARGET: 3 image(s) passed, 0 failed (N TAP checks)
#
# A missing cross compiler or QEMU prints "SKIP: ..." and exits 77; with
# IOMEM_REQUIRE_ALL=1 (tools/test, CI) that is a failure instead (exit 1).
# env: BM_TIMEOUT (seconds per image, default 120), V=1 (echo commands).
set -uo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 TARGET SRC_ROOT WORK_DIR" >&2
	exit 2
fi
target=$1
src_root=$(cd "$2" && pwd) || exit 2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
. "$here/targets.sh"

skip() {
	if [ "${IOMEM_REQUIRE_ALL:-0}" = 1 ]; then
		echo "FAIL: $* (IOMEM_REQUIRE_ALL=1: a skip is a failure; run tools/install-deps)"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}

package_of() {
	case "$1" in
	arm-none-eabi-gcc) echo gcc-arm-none-eabi ;;
	aarch64-linux-gnu-gcc) echo gcc-aarch64-linux-gnu ;;
	riscv64-unknown-elf-gcc) echo gcc-riscv64-unknown-elf ;;
	qemu-system-arm | qemu-system-aarch64) echo qemu-system-arm ;;
	qemu-system-riscv32 | qemu-system-riscv64) echo qemu-system-misc ;;
	*) echo "?" ;;
	esac
}

bm_target "$target" || exit 2
for tool in "$BM_CC" "${BM_QEMU[0]}"; do
	command -v "$tool" >/dev/null 2>&1 ||
		skip "$tool not found (Debian package $(package_of "$tool"))"
done

rm -rf "$work"
mkdir -p "$work"
sources=("$here"/suite/*.c)
pass=0
fail=0
checks=0
for variant in release debug size; do
	opt=-O2
	case $variant in
	release) defs="-DIOMEM_DEBUG=0" ;;
	debug) defs="-DIOMEM_DEBUG=1" ;;
	size) defs="-DIOMEM_DEBUG=0" opt=-Os ;;
	esac
	elf=$work/iomem-$variant.elf
	echo "==== $target $variant: build"
	if ! OPT=$opt EXTRA_CFLAGS="-std=gnu99 -Werror -Wshadow -Wundef -I$src_root -I$here/suite $defs" \
		"$here/build.sh" "$target" "$elf" "${sources[@]}"; then
		echo "FAIL: $target $variant: build failed"
		fail=$((fail + 1))
		continue
	fi
	size=$("${BM_CC%gcc}size" -A "$elf" | awk '$1 == ".text" { print $2 }')
	echo "# $target $variant: .text $size bytes (whole firmware, $opt)"
	echo "==== $target $variant: run"
	"$here/run.sh" -t "${BM_TIMEOUT:-120}" -l "$work/iomem-$variant.log" "$target" "$elf"
	rc=$?
	n=$(grep -cE '^(not )?ok [0-9]+' "$work/iomem-$variant.log" || true)
	checks=$((checks + n))
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
	else
		echo "FAIL: $target $variant: run.sh exit $rc"
		fail=$((fail + 1))
	fi
done
echo "baremetal.$target: $pass image(s) passed, $fail failed ($checks TAP checks)"
[ "$fail" -eq 0 ]
