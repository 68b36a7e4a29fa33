#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/kernel/run-kernel-test.sh MODE SRC_ROOT WORK_DIR - CTest tests
# kernel.direct, kernel.swiotlb and kernel.iommu; and kernel.example (MODE
# "example"): a VM in iommu mode that loads only examples/edu_driver.c's
# module, whose self-test prints TAP.
#
#  1. builds module/ (iomem_ktest.ko and iomem_ktest_debug.ko) in
#     WORK_DIR/build against the headers of the downloaded kernel image, with
#     KCFLAGS=-Werror; any warning fails. The three tests share that build
#     (serialised with flock; Kbuild is incremental, so only the first one
#     compiles);
#  2. packs WORK_DIR/initrd-MODE.cpio.gz (busybox-static + both modules);
#  3. boots it under QEMU once (run-qemu-test.sh --mode MODE): both modules
#     load, print TAP, unload; slub_debug=FZPU init_on_alloc=0; any WARN, BUG,
#     Oops, redzone report, taint beyond O/E or hang fails.
#     Logs: WORK_DIR/results/kernel-MODE.log, <module>-MODE.tap.
#
# Prerequisites (tools/install-deps installs them all): qemu-system-x86,
# busybox-static, cpio, gzip, make, the Debian kernel headers, and the
# matching kernel image unpacked by fetch-kernel-image.sh into
# $IOMEM_KERNEL_CACHE (default /var/cache/iomem/kernel). Without one of them
# the test prints "SKIP: ..." and exits 77; with IOMEM_REQUIRE_ALL=1 that is
# a failure instead (exit 1).
#
#   IOMEM_KERNEL_CACHE    where fetch-kernel-image.sh put the image
#   IOMEM_KTEST_TIMEOUT   per-VM wall-clock limit in seconds (default 420)
set -uo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 direct|swiotlb|iommu|example SRC_ROOT WORK_DIR" >&2
	exit 2
fi
mode=$1
src_root=$(cd "$2" && pwd) || exit 2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
cache=${IOMEM_KERNEL_CACHE:-/var/cache/iomem/kernel}
modules=(iomem_ktest iomem_ktest_debug)
qmode=$mode
append=()
out=$work/results
if [ "$mode" = example ]; then
	out=$work/results/example	# not kernel.iommu's kernel-iommu.log
	# the example driver alone (the test modules would hold the edu device),
	# behind the emulated IOMMU; its dma_bits must match the runner's mask
	modules=(edu_driver)
	qmode=iommu
	append=(--append "edu_driver.dma_bits=64")
fi

skip() {
	if [ "${IOMEM_REQUIRE_ALL:-0}" = 1 ]; then
		echo "FAIL: $* (IOMEM_REQUIRE_ALL=1: a skip is a failure; run tools/install-deps as root)"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}

case "$mode" in direct|swiotlb|iommu|example) ;; *) echo "unknown mode $mode" >&2; exit 2;; esac

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
command -v cpio >/dev/null 2>&1 || skip "cpio not found (apt-get install cpio)"
command -v gzip >/dev/null 2>&1 || skip "gzip not found"
command -v make >/dev/null 2>&1 || skip "make not found"
command -v flock >/dev/null 2>&1 || skip "flock not found (util-linux)"
busybox=${BUSYBOX:-/bin/busybox}
if ! [ -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
	skip "no static $busybox (apt-get install busybox-static)"
fi
[ -f "$cache/env" ] || skip "no kernel image in $cache (tools/install-deps fetches it; or set IOMEM_KERNEL_CACHE)"
KVER="" VMLINUZ="" KDIR="" KVERSION_PKG=""
# shellcheck disable=SC1091
. "$cache/env"
[ -f "$VMLINUZ" ] || skip "kernel image $VMLINUZ missing (rerun tools/install-deps)"
[ -f "$KDIR/Makefile" ] || skip "kernel headers $KDIR missing (install linux-headers-$KVER, rerun tools/install-deps)"
if command -v dpkg-query >/dev/null 2>&1; then
	hdr=$(dpkg-query -W -f='${Version}' "linux-headers-$KVER" 2>/dev/null || true)
	if [ -n "$hdr" ] && [ "$hdr" != "$KVERSION_PKG" ]; then
		skip "kernel image $KVERSION_PKG does not match headers $hdr (rerun tools/install-deps)"
	fi
fi

mkdir -p "$work/build" "$out"
build=$work/build

# --- 1. build (once for all modes) -----------------------------------------
exec 9>"$work/build.lock"
flock 9
# every ktest_*.h case file, so a new one needs no edit here
for p in "$here"/module/Kbuild "$here"/module/Makefile "$here"/module/iomem_ktest.c \
	 "$here"/module/iomem_ktest_debug.c "$here"/module/ktest_*.h; do
	f=${p##*/}
	# keep mtimes: Kbuild's incremental build then only recompiles on change
	cmp -s "$p" "$build/$f" || cp -p "$p" "$build/$f"
done
# the example driver (examples/edu_driver.c): compiled by the same Kbuild
ex=$src_root/examples/edu_driver.c
cmp -s "$ex" "$build/edu_driver.c" || cp -p "$ex" "$build/edu_driver.c"
log=$build/build.log
echo "kernel.$mode: KVER=$KVER ($KVERSION_PKG), KDIR=$KDIR"
echo "kernel.$mode: + make -C $KDIR M=$build IOMEM_SRC=$src_root KCFLAGS=-Werror modules"
start=$SECONDS
make -C "$KDIR" M="$build" IOMEM_SRC="$src_root" KCFLAGS=-Werror modules >"$log" 2>&1
rc=$?
grep -v -e '^make' -e 'Skipping BTF generation' "$log"
if [ "$rc" -ne 0 ] || grep -Eq '(^|[[:space:]:])(warning|WARNING):' "$log"; then
	# nothing half-built may pass the next run as "up to date"
	rm -f "$build"/*.ko "$build"/*.o
	echo "FAIL: the module build failed or printed warnings (make exit $rc)"
	exit 1
fi
for m in "${modules[@]}"; do
	ko=$build/$m.ko
	[ -f "$ko" ] || { echo "FAIL: $ko was not produced"; exit 1; }
	vermagic=$(tr '\0' '\n' <"$ko" | sed -n 's/^vermagic=//p')
	case "$vermagic" in
	"$KVER "*) ;;
	*) echo "FAIL: $m.ko vermagic '$vermagic' does not match the image's $KVER"; exit 1;;
	esac
done
echo "kernel.$mode: build $((SECONDS - start))s"
initrd=$work/initrd-$mode.cpio.gz
kos=()
for m in "${modules[@]}"; do kos+=("$build/$m.ko"); done
"$here/mkinitramfs.sh" "$initrd" "${kos[@]}" || { echo "FAIL: mkinitramfs"; exit 1; }
flock -u 9

# --- 2. boot ----------------------------------------------------------------
margs=()
for m in "${modules[@]}"; do margs+=(--module "$m"); done
# 3 GiB: q35 puts 1 GiB of it above 4 GiB, where kmalloc/vmalloc take their
# pages first, so IODMACommand's 32-bit bouncing is exercised (ktest_dmacmd.h)
"$here/run-qemu-test.sh" --kernel "$VMLINUZ" --initrd "$initrd" --mode "$qmode" "${append[@]}" \
	--memory "${IOMEM_KTEST_MEMORY:-3G}" "${margs[@]}" --timeout "${IOMEM_KTEST_TIMEOUT:-420}" --out "$out" --quiet
rc=$?
if [ "$rc" -ne 0 ]; then
	echo "---- kernel console (last 80 lines of $out/kernel-$qmode.log) ----"
	tail -n 80 "$out/kernel-$qmode.log" | tr -d '\r'
	echo "FAIL: kernel.$mode (run-qemu-test.sh exit $rc)"
	exit 1
fi
echo "PASS: kernel.$mode"
exit 0
