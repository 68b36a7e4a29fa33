#!/usr/bin/env bash
# selftest.sh - the harness's own proof (not part of CTest: ~70 s, 21 s of
# which are deliberate hang timeouts): build + run the sample firmware on
# every target and prove that pass, failure, CPU fault and hang are all told
# apart by exit status; check the freestanding-header and mem* pitfalls.
#
# usage: selftest.sh [--install] [TARGET ...]     (default: all targets)
#   --install   run tools/install-deps first (apt-get, needs root/sudo)
# env: BM_BUILD_DIR (default ${TMPDIR:-/tmp}/bm-harness-build)
# Prints TAP for its own checks and ends with "N passed, N failed";
# exits 0 only if every check passed.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=targets.sh
. "$HERE/targets.sh"

if [ "${1:-}" = --install ]; then
    shift
    "$HERE/../../tools/install-deps" || exit 1
fi
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && read -r -a TARGETS <<<"$BM_TARGETS_ALL"
B="${BM_BUILD_DIR:-${TMPDIR:-/tmp}/bm-harness-build}"
mkdir -p "$B"
T0=$(date +%s.%N)

n=0; npass=0; nfail=0
check() { # desc cmd... ; expects exit status in $EXPECT (default 0)
    local desc="$1"; shift
    local want="${EXPECT:-0}" got log
    n=$((n + 1))
    log="$B/check-$n.log"
    "$@" >"$log" 2>&1; got=$?
    if [ "$got" = "$want" ] && { [ -z "${GREP:-}" ] || grep -qE "$GREP" "$log"; }; then
        npass=$((npass + 1)); echo "ok $n - $desc"
    else
        nfail=$((nfail + 1)); echo "not ok $n - $desc (exit $got, wanted $want${GREP:+, /$GREP/})"
        sed 's/^/#   /' "$log" | tail -25
    fi
}

build() { # target out extra-cflags [console]
    BM_CONSOLE="${4:-semihost}" EXTRA_CFLAGS="$3" \
        "$HERE/build.sh" "$1" "$2" "$HERE/selftest/sample_test.c"
}
build_run() { # target name extra-cflags console timeout
    local t="$1" elf="$B/$1/$2.elf"
    build "$t" "$elf" "$3" "$4" && "$HERE/run.sh" -t "$5" "$t" "$elf"
}

for t in "${TARGETS[@]}"; do
    bm_target "$t" >/dev/null || { n=$((n + 1)); nfail=$((nfail + 1)); echo "not ok $n - unknown target $t"; continue; }
    command -v "$BM_CC" >/dev/null && command -v "${BM_QEMU[0]}" >/dev/null || {
        n=$((n + 1)); nfail=$((nfail + 1))
        echo "not ok $n - $t: $BM_CC / ${BM_QEMU[0]} not installed (run tools/install-deps)"; continue; }

    EXPECT=0 GREP='passed, 0 failed' check "$t: sample test passes (semihosting console)" \
        build_run "$t" sample "" semihost 30
    EXPECT=0 GREP='passed, 0 failed' check "$t: sample test passes (UART console)" \
        build_run "$t" sample-uart "" uart 30
    EXPECT=1 GREP='^not ok' check "$t: failing assertion -> exit 1" \
        build_run "$t" fail "-DBM_FORCE_FAIL" semihost 30
    EXPECT=3 GREP='^Bail out! ' check "$t: CPU fault -> handler -> exit 3" \
        build_run "$t" fault "-DBM_FORCE_FAULT" semihost 30
    EXPECT=124 check "$t: hang -> runner timeout -> exit 124" \
        build_run "$t" hang "-DBM_FORCE_HANG" semihost 3

    case "$t" in rv64|rv32)
        BM_EXIT=sifive_test BM_SEMIHOSTING=0 EXPECT=0 GREP='passed, 0 failed' \
            check "$t: UART + sifive_test exit, semihosting off: pass -> 0" \
            build_run "$t" sifive-pass "" uart 30
        BM_EXIT=sifive_test BM_SEMIHOSTING=0 EXPECT=1 GREP='^not ok' \
            check "$t: UART + sifive_test exit, semihosting off: fail -> 1" \
            build_run "$t" sifive-fail "-DBM_FORCE_FAIL" uart 30
    esac
done

# ---- freestanding header check: only compiler-provided headers reachable --
freestanding_check() { # cc arch-flags...
    local cc="$1"; shift
    local inc; inc="$("$cc" "$@" -print-file-name=include)"
    printf '#include "memdma_mock.h"\nint f(void *p){md_sg_table_t a,b; a.count=md_sg_build(a.segs,8,p,100,64,32); md_sg_copy(&b,&a); return (int)b.count;}\n' >"$B/fs.c"
    "$cc" "$@" -std=c11 -ffreestanding -nostdinc -isystem "$inc" -I"$HERE/selftest" \
        -Wall -Wextra -Werror -pedantic -O2 -fno-pie -H -c "$B/fs.c" -o "$B/fs.o" 2>"$B/fs.h.txt" || { cat "$B/fs.h.txt"; return 1; }
    # every header in the -H trace must come from the compiler's own dir
    ! grep -E '^\.+ ' "$B/fs.h.txt" | grep -vE "^\.+ ($inc/|$HERE/selftest/)"
}
declare -A seen_cc=()
for t in "${TARGETS[@]}"; do
    bm_target "$t" >/dev/null 2>&1 || continue
    command -v "$BM_CC" >/dev/null || continue
    key="$BM_CC ${BM_ARCH_FLAGS[*]}"
    [ -n "${seen_cc[$key]:-}" ] && continue; seen_cc[$key]=1
    EXPECT=0 check "$t: memdma_mock.h compiles with -ffreestanding -nostdinc (compiler headers only)" \
        freestanding_check "$BM_CC" "${BM_ARCH_FLAGS[@]}"
done

# ---- loop-idiom pitfall: a byte loop inside memset() becomes a call to
# memset() (infinite recursion) unless -ffreestanding / -fno-builtin /
# -fno-tree-loop-distribute-patterns is in effect for that file.
selfcall_check() { # cc want(yes|no) flags...
    local cc="$1" want="$2"; shift 2
    "$cc" "$@" -O2 -fno-pie -c "$HERE/common/bm_libc.c" -o "$B/libc.o" || return 1
    # relocations against memset inside memset's own body
    if "${cc%gcc}objdump" -dr "$B/libc.o" |
        awk '/^[0-9a-f]+ <[a-z_]+>:/{fn=$2} /R_[A-Z0-9_]+[ \t]+memset/{print fn}' |
        grep -q '<memset>:'; then
        [ "$want" = yes ]; else [ "$want" = no ]; fi
}
declare -A seen_cc2=()
for t in "${TARGETS[@]}"; do
    bm_target "$t" >/dev/null 2>&1 || continue
    command -v "$BM_CC" >/dev/null || continue
    [ -n "${seen_cc2[$BM_CC]:-}" ] && continue; seen_cc2[$BM_CC]=1
    EXPECT=0 check "$t: bm_libc.c memset has no self-call with -ffreestanding" \
        selfcall_check "$BM_CC" no "${BM_ARCH_FLAGS[@]}" -ffreestanding
    EXPECT=0 check "$t: bm_libc.c memset has no self-call with -fno-tree-loop-distribute-patterns (hosted)" \
        selfcall_check "$BM_CC" no "${BM_ARCH_FLAGS[@]}" -fno-tree-loop-distribute-patterns
    EXPECT=0 check "$t: pitfall reproduced: hosted -O2 turns memset's loop into a call to memset" \
        selfcall_check "$BM_CC" yes "${BM_ARCH_FLAGS[@]}"
done

T1=$(date +%s.%N)
echo "1..$n"
echo "# ci.sh wall time: $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}')s, build dir $B"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
