/* SPDX-License-Identifier: MIT */
/* tests/test_mapper_notls.c - tests/test_mapper.c built without the per-
 * thread IOVA cache (IOMEM_SWIOMMU_NO_TLS=1); the definitions are in
 * tests/CMakeLists.txt. A file of its own rather than SOURCE test_mapper.c:
 * the coverage data names the header's static functions after the main file,
 * and two builds of one file with different code would clash (llvm-cov keeps
 * one of them). */
#include "test_mapper.c"
