/* SPDX-License-Identifier: MIT */
/* tests/test_range_nodebug.c - tests/test_range.c built without the debug
 * layer; the definitions are in tests/CMakeLists.txt. A file of its own
 * rather than SOURCE test_range.c: the coverage data names the header's
 * static functions after the main file, and two builds of one file with
 * different code would clash (llvm-cov keeps one of them). */
#include "test_range.c"
