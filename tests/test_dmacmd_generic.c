/* SPDX-License-Identifier: MIT */
/* tests/test_dmacmd_generic.c - tests/test_dmacmd.c built with one generic
 * engine (IOMEM_DMA_SPECIALIZE=0); the definitions are in
 * tests/CMakeLists.txt. A file of its own rather than SOURCE test_dmacmd.c:
 * the coverage data names the header's static functions after the main file,
 * and two builds of one file with different code would clash (llvm-cov keeps
 * one of them). */
#include "test_dmacmd.c"
