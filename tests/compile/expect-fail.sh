#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# expect-fail.sh REGEX COMMAND... - passes when COMMAND fails AND its output
# matches the extended regex REGEX (used for "must not compile" checks).
set -uo pipefail
regex=$1
shift
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -eq 0 ]; then
	echo "FAIL: the command succeeded but was expected to fail: $*"
	exit 1
fi
# (a here-string, not a pipe: with pipefail, grep -q exiting at the first
# match makes a long printf die of SIGPIPE and the pipeline "fail")
if ! grep -Eq -- "$regex" <<<"$out"; then
	echo "FAIL: the command failed (exit $rc) but its output does not match /$regex/"
	exit 1
fi
echo "PASS: failed as expected (exit $rc), output matches /$regex/"
exit 0
