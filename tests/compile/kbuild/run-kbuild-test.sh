#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-kbuild-test.sh SRC_ROOT WORK_DIR [EXTRA_KCFLAGS] - CTest tests
# kbuild.module and kbuild.module_debug (EXTRA_KCFLAGS=-DIOMEM_DEBUG=1).
#
# Copies this directory to WORK_DIR and builds iomem_compile.ko there as an
# out-of-tree module against installed kernel headers, with KCFLAGS=-Werror;
# any warning in the build output fails the test.
#
# Kernel headers: $IOMEM_KDIR if set, else the release that Debian's
# linux-headers-$IOMEM_KFLAVOUR (default cloud-amd64) metapackage points at,
# else the running kernel's, else the newest /lib/modules/*/build.
# Without headers (or make) the test prints "SKIP: ..." and exits 77; with
# IOMEM_REQUIRE_ALL=1 that is a failure instead (exit 1).
set -uo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 SRC_ROOT WORK_DIR [EXTRA_KCFLAGS]" >&2
	exit 2
fi
src_root=$(cd "$1" && pwd) || exit 2
work=$2
kcflags="-Werror${3:+ $3}"
here=$(cd "$(dirname "$0")" && pwd)

skip() {
	if [ "${IOMEM_REQUIRE_ALL:-0}" = 1 ]; then
		echo "FAIL: $* (IOMEM_REQUIRE_ALL=1: a skip is a failure; run tools/install-deps)"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}

find_kdir() {
	local flavour kver d
	if [ -n "${IOMEM_KDIR:-}" ]; then
		echo "$IOMEM_KDIR"
		return
	fi
	flavour=${IOMEM_KFLAVOUR:-cloud-amd64}
	if command -v dpkg-query >/dev/null 2>&1; then
		# same resolution as the metapackage: its Depends names the release
		kver=$(dpkg-query -W -f='${Depends}\n' "linux-headers-$flavour" 2>/dev/null |
			tr ',' '\n' | sed -n 's/^ *linux-headers-\([0-9][^ ]*\).*/\1/p' | head -1)
		if [ -n "$kver" ] && [ -f "/lib/modules/$kver/build/Makefile" ]; then
			echo "/lib/modules/$kver/build"
			return
		fi
	fi
	for d in "/lib/modules/$(uname -r)/build" \
		$(printf '%s\n' /lib/modules/*/build | sort -rV); do
		if [ -f "$d/Makefile" ]; then
			echo "$d"
			return
		fi
	done
}

command -v make >/dev/null 2>&1 || skip "make not found"
kdir=$(find_kdir)
[ -n "$kdir" ] || skip "no kernel headers found (install linux-headers-cloud-amd64, or set IOMEM_KDIR)"
[ -f "$kdir/Makefile" ] || skip "$kdir/Makefile missing (IOMEM_KDIR=${IOMEM_KDIR:-})"

rm -rf "$work"
mkdir -p "$work"
cp "$here/Kbuild" "$here/Makefile" "$here/iomem_compile.c" "$work/"

log=$work/build.log
echo "kbuild: KDIR=$kdir"
echo "kbuild: + make -C $kdir M=$work IOMEM_SRC=$src_root KCFLAGS='$kcflags' modules"
make -C "$kdir" M="$work" IOMEM_SRC="$src_root" KCFLAGS="$kcflags" modules >"$log" 2>&1
rc=$?
cat "$log"

if [ "$rc" -ne 0 ]; then
	echo "FAIL: module build failed (make exit $rc)"
	exit 1
fi
if grep -Eq '(^|[[:space:]:])(warning|WARNING):' "$log"; then
	echo "FAIL: the module build printed warnings:"
	grep -E '(^|[[:space:]:])(warning|WARNING):' "$log"
	exit 1
fi
if [ ! -f "$work/iomem_compile.ko" ]; then
	echo "FAIL: $work/iomem_compile.ko was not produced"
	exit 1
fi
echo "PASS: iomem_compile.ko built against $kdir"
exit 0
