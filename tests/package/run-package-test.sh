#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-package-test.sh MODE WORK BUILD_DIR SOURCE_DIR CMAKE CC GENERATOR PKG_CONFIG
#
# The package.* CTest tests (tests/package/CMakeLists.txt):
#   install       cmake --install BUILD_DIR into WORK/stage, then move it to
#                 WORK/prefix (so everything below also proves the install
#                 tree is relocatable) and check its contents
#   find_package  consumer with find_package(iomem 0.1 REQUIRED CONFIG)
#   pkgconfig     CC $(pkg-config --cflags iomem) main.c
#   fetchcontent  consumer with FetchContent_Declare(iomem SOURCE_DIR ...)
#   subdirectory  consumer with add_subdirectory(<iomem source root>)
# Every consumer runs main.c, which must print "kIOReturnSuccess".
set -euo pipefail

if [ $# -ne 8 ]; then
	echo "usage: $0 MODE WORK BUILD_DIR SOURCE_DIR CMAKE CC GENERATOR PKG_CONFIG" >&2
	exit 2
fi
mode=$1 work=$2 build=$3 src=$4 cmake=$5 cc=$6 generator=$7 pkgconfig=$8
here=$(cd "$(dirname "$0")" && pwd)
prefix=$work/prefix

fail() {
	echo "FAIL: $*"
	exit 1
}

run() {
	echo "+ $*"
	"$@"
}

check_output() { # EXE
	local out
	echo "+ $1"
	out=$("$1") || fail "$1 exited with $?"
	echo "$out"
	[ "$out" = "kIOReturnSuccess" ] || fail "$1 printed '$out', expected 'kIOReturnSuccess'"
}

consumer() { # NAME [cmake -D args...]
	local name=$1 bdir=$work/$1
	shift
	rm -rf "$bdir"
	run "$cmake" -S "$here/$name" -B "$bdir" -G "$generator" \
		-DCMAKE_C_COMPILER="$cc" "$@"
	run "$cmake" --build "$bdir"
	check_output "$bdir/consumer"
}

case $mode in
install)
	# only this test's own paths: the consumers may be running in $work
	rm -rf "$work/stage" "$prefix"
	mkdir -p "$work"
	run "$cmake" --install "$build" --prefix "$work/stage"
	mv "$work/stage" "$prefix"
	for f in include/iomem/iomem.h include/iomem/iomem_dma.h include/iomem/iomem_map.h \
		share/cmake/iomem/iomemConfig.cmake share/cmake/iomem/iomemConfigVersion.cmake \
		share/cmake/iomem/iomemTargets.cmake share/pkgconfig/iomem.pc; do
		[ -f "$prefix/$f" ] || fail "not installed: $f"
	done
	[ -d "$prefix/include/iomem/backends" ] || fail "not installed: include/iomem/backends/"
	# relocatable: no installed file may name the install or source directory
	if grep -rlF -e "$work/stage" -e "$src" "$prefix"; then
		fail "the files above contain an absolute path (install tree not relocatable)"
	fi
	(cd "$prefix" && find . -type f | sort)
	echo "PASS: installed to $work/stage and moved to $prefix"
	;;
find_package)
	[ -d "$prefix" ] || fail "$prefix missing: run the package.install test first"
	consumer find_package -DCMAKE_PREFIX_PATH="$prefix" \
		-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
	found=$(sed -n 's/^iomem_DIR:[A-Z]*=//p' "$work/find_package/CMakeCache.txt")
	[ "$found" = "$prefix/share/cmake/iomem" ] ||
		fail "find_package used iomem_DIR=$found, expected $prefix/share/cmake/iomem"
	echo "PASS: find_package(iomem 0.1 REQUIRED CONFIG) from $found"
	;;
pkgconfig)
	[ -d "$prefix" ] || fail "$prefix missing: run the package.install test first"
	export PKG_CONFIG_PATH=$prefix/share/pkgconfig
	run "$pkgconfig" --exists --print-errors "iomem >= 0.1" || fail "pkg-config cannot find iomem >= 0.1"
	echo "iomem $("$pkgconfig" --modversion iomem)"
	cflags=$("$pkgconfig" --cflags iomem)
	libs=$("$pkgconfig" --libs iomem)
	echo "cflags: $cflags"
	echo "libs:   $libs"
	mkdir -p "$work/pkgconfig"
	# shellcheck disable=SC2086
	run "$cc" -Wall -Wextra -Werror $cflags "$here/main.c" -o "$work/pkgconfig/consumer" $libs
	check_output "$work/pkgconfig/consumer"
	echo "PASS: pkg-config consumer"
	;;
fetchcontent)
	consumer fetchcontent -DIOMEM_SOURCE_DIR="$src"
	echo "PASS: FetchContent consumer"
	;;
subdirectory)
	consumer subdirectory -DIOMEM_SOURCE_DIR="$src"
	echo "PASS: add_subdirectory consumer"
	;;
*)
	echo "unknown mode: $mode" >&2
	exit 2
	;;
esac
