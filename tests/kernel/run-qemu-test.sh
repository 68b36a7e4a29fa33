#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/kernel/run-qemu-test.sh - boots a kernel + initramfs (from
# mkinitramfs.sh) under QEMU (TCG, no KVM needed), captures the serial
# console and turns the TAP lines printed by the test modules into a
# pass/fail exit status. One boot loads every module of the initramfs.
#
# usage: run-qemu-test.sh --kernel VMLINUZ --initrd INITRD [options]
#   --mode MODE       direct (default) | swiotlb | iommu | iommu-amd
#                       direct   : q35 + edu device, plain dma-direct
#                       swiotlb  : + "swiotlb=force" (every streaming mapping
#                                  bounces)
#                       iommu    : + emulated Intel VT-d ("-device intel-iommu",
#                                  "intel_iommu=on"); edu sits behind it
#                       iommu-amd: + emulated AMD-Vi ("-device amd-iommu");
#                                  needs the generic "amd64" kernel flavour
#                                  (cloud-amd64 has no CONFIG_AMD_IOMMU)
#   --expect MODE     what the module should expect (default: same as --mode;
#                     "any" disables the direct/bounced/translated checks)
#   --module NAME     a module whose "NAME: "-prefixed lines carry TAP;
#                     repeat for several (default iomem_ktest). Each must
#                     load, print a full plan and KTEST-RESULT, and unload
#   --timeout SEC     wall-clock limit for the whole VM run (default 300)
#   --memory SIZE     guest RAM (default 512M)
#   --smp N           guest CPUs (default 1)
#   --edu-mask-bits N DMA mask of the edu device, given to QEMU and to the
#                     module (default 64)
#   --no-edu          do not add the edu PCI device (edu tests then SKIP)
#   --append "..."    extra kernel command-line words
#   --no-debug        leave out "slub_debug=FZPU init_on_alloc=0" (on by
#                     default: redzones/poisoning catch heap overflows and
#                     use of uninitialised kmalloc memory)
#   --no-icount       under TCG, do not use "-icount shift=auto,sleep=off"
#                     (on by default: idle guest time is skipped, which cuts
#                     the edu DMA waits - 100 ms of virtual time each);
#                     only applied with --smp 1
#   --out DIR         where kernel-MODE.log and NAME-MODE.tap go (default .)
#   --quiet           do not echo the console while it runs
#   env KQ_QEMU_EXTRA  extra QEMU arguments (word-split); KQ_KVM=1 uses KVM
#                      when /dev/kvm is writable (default: TCG)
#
# Exit status: 0 all tests passed (skips allowed), 1 a test failed,
#              2 harness error (timeout, crash, missing markers, bad TAP).
set -uo pipefail

KERNEL="" INITRD="" MODE=direct EXPECT="" MODULES=() TIMEOUT=300 MEM=512M SMP=1
EDU=1 EDU_BITS=64 APPEND_EXTRA="" OUT=. QUIET=0 DEBUG=1 ICOUNT=1
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) KERNEL=$2; shift 2;;
	--initrd) INITRD=$2; shift 2;;
	--mode) MODE=$2; shift 2;;
	--expect) EXPECT=$2; shift 2;;
	--no-debug) DEBUG=0; shift;;
	--no-icount) ICOUNT=0; shift;;
	--module) MODULES+=("$2"); shift 2;;
	--timeout) TIMEOUT=$2; shift 2;;
	--memory) MEM=$2; shift 2;;
	--smp) SMP=$2; shift 2;;
	--edu-mask-bits) EDU_BITS=$2; shift 2;;
	--no-edu) EDU=0; shift;;
	--append) APPEND_EXTRA=$2; shift 2;;
	--out) OUT=$2; shift 2;;
	--quiet) QUIET=1; shift;;
	-h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
	*) echo "unknown option $1" >&2; exit 2;;
	esac
done
[ -f "$KERNEL" ] || { echo "error: --kernel FILE required" >&2; exit 2; }
[ -f "$INITRD" ] || { echo "error: --initrd FILE required" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null ||
	{ echo "error: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }
[ ${#MODULES[@]} -gt 0 ] || MODULES=(iomem_ktest)
mkdir -p "$OUT"
LOG=$OUT/kernel-$MODE.log
tag="kernel-$MODE"

# TCG (pure emulation) unless KVM is asked for: on the machines this was
# developed on, a writable /dev/kvm (nested virtualisation) hung the guest
# in early boot, so KVM is opt-in (KQ_KVM=1) and untested.
ACCEL=tcg
if [ "${KQ_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then ACCEL=kvm; fi

machine="q35"
devices=()
extra=()
default_expect=$MODE
[ "$MODE" = iommu-amd ] && default_expect=iommu
append="console=ttyS0 panic=-1 oops=panic quiet"
for m in "${MODULES[@]}"; do append="$append $m.mode=${EXPECT:-$default_expect}"; done
[ "$DEBUG" = 1 ] && append="$append slub_debug=FZPU init_on_alloc=0"
# icount: virtual clock that jumps over idle periods.  Only with one vCPU:
# with -smp 2 the guest hung at "Booting SMP configuration" (QEMU 7.2).
if [ "$ACCEL" = tcg ] && [ "$ICOUNT" = 1 ] && [ "$SMP" = 1 ]; then
	extra+=(-icount shift=auto,sleep=off)
fi
case "$MODE" in
direct) ;;
swiotlb) append="$append swiotlb=force";;
iommu)
	# intremap=on needs the split irqchip under KVM; harmless under TCG.
	# The IOMMU must be created before the PCI devices it translates for.
	machine="q35,kernel-irqchip=split"
	devices+=(-device intel-iommu,intremap=on)
	append="$append intel_iommu=on";;
iommu-amd)
	devices+=(-device amd-iommu);;
*) echo "error: unknown mode $MODE" >&2; exit 2;;
esac
if [ "$EDU" = 1 ]; then
	if [ "$EDU_BITS" -ge 64 ]; then mask=0xffffffffffffffff
	else mask=$(printf '0x%x' $(( (1 << EDU_BITS) - 1 ))); fi
	devices+=(-device "edu,dma_mask=$mask")
	for m in "${MODULES[@]}"; do append="$append $m.edu_mask_bits=$EDU_BITS"; done
fi
[ -n "$APPEND_EXTRA" ] && append="$append $APPEND_EXTRA"

cmd=(qemu-system-x86_64 -machine "$machine" -accel "$ACCEL" -m "$MEM" -smp "$SMP"
	-nodefaults -display none -monitor none -serial stdio -no-reboot
	"${extra[@]}" ${KQ_QEMU_EXTRA:-} "${devices[@]}"
	-kernel "$KERNEL" -initrd "$INITRD" -append "$append")
echo "[$tag] ${cmd[*]}"
start=$(date +%s.%N)
if [ "$QUIET" = 1 ]; then
	timeout -k 10 "$TIMEOUT" "${cmd[@]}" </dev/null >"$LOG" 2>&1
	qrc=$?
else
	timeout -k 10 "$TIMEOUT" "${cmd[@]}" </dev/null 2>&1 | tee "$LOG"
	qrc=${PIPESTATUS[0]}
fi
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')

# Normalise: drop CRs and the "[    1.234567] " printk timestamp.
clean=$(tr -d '\r' <"$LOG" | sed -E 's/^\[ *[0-9]+\.[0-9]+\] //')
errors=()
case $qrc in
0) ;;
124|137) errors+=("QEMU timed out after ${TIMEOUT}s");;
*) errors+=("QEMU exited with status $qrc");;
esac
grep -q '^KQ-HARNESS: END' <<<"$clean" || errors+=("end marker 'KQ-HARNESS: END' missing")
crash=$(grep -E -m5 'Kernel panic|BUG:|BUG [^ ]+ \((Not t|T)ainted|Oops|WARNING:|general protection fault|Call Trace:|UBSAN:|KASAN:|kernel BUG|refcount_t:|list_(add|del) corruption|qemu: hardware error|hung_task|soft lockup|sleeping function called from invalid context|scheduling while atomic' <<<"$clean")
[ -n "$crash" ] && errors+=("kernel trouble on the console: $(head -1 <<<"$crash")")
taint=$(sed -n 's/^KQ-HARNESS: tainted=\([0-9]*\)$/\1/p' <<<"$clean")
# 4096 = O (out-of-tree module), 8192 = E (unsigned module): expected
if [ -n "$taint" ] && [ $(( taint & ~12288 )) -ne 0 ]; then
	errors+=("kernel tainted=$taint (beyond O/E)")
fi

# Per module: its lines carry a "NAME: " prefix; keep only TAP grammar in
# its .tap (the kernel's own "NAME: loading out-of-tree module..." lines
# are dropped). Then plan, sequential numbering, count, failures.
P=0 F=0 S=0
summaries=()
for MODULE in "${MODULES[@]}"; do
	TAP=$OUT/$MODULE-$MODE.tap
	printf '%s\n' "$clean" | sed -n "s/^$MODULE: //p" |
		grep -E '^(TAP version |1\.\.[0-9]+$|(not )?ok [0-9]+|#|Bail out!)' >"$TAP"
	grep -q "^KQ-HARNESS: insmod $MODULE rc=0" <<<"$clean" || errors+=("insmod $MODULE did not succeed")
	grep -q "^KQ-HARNESS: rmmod $MODULE rc=0" <<<"$clean" || errors+=("rmmod $MODULE did not succeed")
	grep -q "^$MODULE: KTEST-RESULT " <<<"$clean" || errors+=("no KTEST-RESULT line from $MODULE")
	read -r plan ntests pass fail skip bad < <(awk '
		/^1\.\.[0-9]+$/ { if (!plan) plan = substr($0, 4) + 0; next }
		/^(not )?ok [0-9]+/ {
			isnot = ($1 == "not"); num = isnot ? $3 : $2; n++
			if (num + 0 != n) bad++
			if (isnot && $0 !~ /# *TODO/) fail++
			else if ($0 ~ /# *SKIP/) skip++
			else pass++
		}
		END { printf "%d %d %d %d %d %d\n", plan, n, pass, fail, skip, bad }' "$TAP")
	[ "$plan" -gt 0 ] || errors+=("$MODULE: no TAP plan line")
	[ "$plan" -eq "$ntests" ] || errors+=("$MODULE: TAP plan says $plan tests, saw $ntests")
	[ "$bad" -eq 0 ] || errors+=("$MODULE: TAP test numbers out of sequence")
	grep '^not ok' "$TAP" | sed "s/^/[$tag] FAILED: $MODULE: /"
	summaries+=("$MODULE-$MODE: $pass passed, $fail failed, $skip skipped (tap=$TAP)")
	P=$((P + pass)) F=$((F + fail)) S=$((S + skip))
done

for e in "${errors[@]}"; do echo "[$tag] HARNESS ERROR: $e"; done
echo "[$tag] wall time ${elapsed}s, accel=$ACCEL, log=$LOG"
for l in "${summaries[@]}"; do echo "$l"; done
echo "$tag: $P passed, $F failed, $S skipped"
if [ ${#errors[@]} -gt 0 ]; then exit 2; fi
if [ "$F" -gt 0 ]; then exit 1; fi
exit 0
