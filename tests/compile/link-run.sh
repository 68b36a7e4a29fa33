#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# link-run.sh EXE COMPILER ARGS... - compiles and links ARGS into EXE with
# COMPILER, then runs EXE; passes when both succeed.
set -euo pipefail
exe=$1
compiler=$2
shift 2
rm -f "$exe"
echo "+ $compiler $* -o $exe"
"$compiler" "$@" -o "$exe"
echo "+ $exe"
"$exe"
