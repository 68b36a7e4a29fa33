// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * iomem_ktest_debug.c - iomem_ktest.c again, as its own module: Kbuild
 * compiles this file with -DIOMEM_DEBUG=1 (CFLAGS_iomem_ktest_debug.o), so
 * the IOMEM_DEBUG layer and its test cases are in. One source, two modules.
 */
#include "iomem_ktest.c"
