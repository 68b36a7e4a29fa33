#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coverage-report.sh PROFILE_DIR SOURCE_DIR BINARY... - merge the suites'
# raw profiles (clang source-based coverage, the coverage preset) and print
# line and branch coverage of the three headers and the POSIX backend, then
# one summary line that tools/test picks up:
#   coverage: lines 96.1% (8123/8452), branches 86.0% (...) [targets: lines >= 95%, branches >= 85%]
# Fails only when there is nothing to report (the targets are printed, not
# enforced: see the line's "below target" marks).
set -euo pipefail
dir=$1 src=$2
shift 2
profdata=$(command -v llvm-profdata-14 || command -v llvm-profdata)
cov=$(command -v llvm-cov-14 || command -v llvm-cov)
shopt -s nullglob
raw=("$dir"/*.profraw)
if [ "${#raw[@]}" -eq 0 ]; then
	echo "coverage: no profiles in $dir" >&2
	exit 1
fi
"$profdata" merge -sparse "${raw[@]}" -o "$dir/merged.profdata"
objs=()
first=$1
shift
for b in "$@"; do objs+=(-object "$b"); done
files=("$src/iomem.h" "$src/iomem_dma.h" "$src/iomem_map.h" "$src/backends/iomem_posix.h")
"$cov" report "$first" "${objs[@]}" -instr-profile "$dir/merged.profdata" \
	-show-branch-summary -show-region-summary=false -show-instantiation-summary=false \
	"${files[@]}" | tee "$dir/report.txt"
# TOTAL line: Functions Missed Executed Lines Missed Cover Branches Missed Cover
total=$(grep '^TOTAL' "$dir/report.txt")
read -r _ fn fnmiss fncov ln lnmiss lncov br brmiss brcov <<<"$total"
mark() { awk -v v="${1%\%}" -v t="$2" 'BEGIN { if (v + 0 < t) printf " (below target)" }'; }
echo "coverage: lines $lncov ($((ln - lnmiss))/$ln)$(mark "$lncov" 95), branches $brcov ($((br - brmiss))/$br)$(mark "$brcov" 85), functions $fncov [targets: lines >= 95%, branches >= 85%]"
"$cov" export "$first" "${objs[@]}" -instr-profile "$dir/merged.profdata" -format=lcov "${files[@]}" >"$dir/coverage.lcov" 2>/dev/null || true
echo "coverage: per-line data in $dir/coverage.lcov; uncovered lines: $cov show -instr-profile $dir/merged.profdata $first ${files[0]}"
