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
# grep -c reads all its input: with -q it may exit at the first match and
# printf then dies of SIGPIPE, which pipefail turns into a failed match.
if [ "$(printf '%s\n' "$out" | grep -Ec -- "$regex")" = 0 ]; then
	echo "FAIL: the command failed (exit $rc) but its output does not match /$regex/"
	exit 1
fi
echo "PASS: failed as expected (exit $rc), output matches /$regex/"
exit 0
