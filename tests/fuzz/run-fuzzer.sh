#!/bin/sh
# SPDX-License-Identifier: MIT
# run-fuzzer.sh FUZZER SEED_CORPUS WORKDIR [libFuzzer flags...]
# Runs FUZZER on a fresh copy of nothing: new inputs go to WORKDIR (emptied
# first, so a run with -seed=N is reproducible), the seeds are read from
# SEED_CORPUS. Crash inputs are written to WORKDIR/crash-*. Prints
# libFuzzer's closing "Done N runs" line as "fuzz: NAME: N executions".
set -eu
fuzzer=$1 seeds=$2 work=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus"
log="$work/log"
rc=0
"$fuzzer" -artifact_prefix="$work/" -print_final_stats=1 "$@" "$work/corpus" "$seeds" >"$log" 2>&1 || rc=$?
name=$(basename "$fuzzer")
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
tail -n 25 "$log"
if [ "$rc" -ne 0 ]; then
	echo "fuzz: ${name#fuzz_}: FAILED (exit $rc) after ${execs:-?} executions; inputs: $work/crash-* $work/leak-* $work/timeout-*"
	exit 1
fi
echo "fuzz: ${name#fuzz_}: ${execs:-?} executions, 0 findings"
