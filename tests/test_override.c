/* SPDX-License-Identifier: MIT */
/* tests/test_override.c - IOMEM_MALLOC / IOMEM_FREE replace the system
 * allocator under the whole IOMalloc family (global macros: defined before
 * every include of iomem.h in the program - here, its only TU). */
#include <stdlib.h>
#include <stdint.h>

static unsigned long counted_mallocs, counted_frees;

static void *counting_malloc(size_t n)
{
	counted_mallocs++;
	return malloc(n);
}

static void counting_free(void *p)
{
	counted_frees++;
	free(p);
}

#define IOMEM_MALLOC(size) counting_malloc(size)
#define IOMEM_FREE(ptr)    counting_free(ptr)
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <criterion/criterion.h>


IOMEM_TEST(override, every_family_goes_through_the_hooks)
{
	unsigned long m0 = counted_mallocs, f0 = counted_frees;
	void *a = IOMalloc(10);
	unsigned char *z = IOMallocZero(100);
	void *al = IOMallocAligned(100, 256);
	cr_assert(a && z && al);
	for (int i = 0; i < 100; i++)
		cr_expect_eq(z[i], 0);             /* zeroed even without calloc */
	cr_expect_eq((uintptr_t)al % 256, 0);
	cr_expect_geq(counted_mallocs - m0, 3);
	IOFree(a, 10);
	IOFree(z, 100);
	IOFreeAligned(al, 100);
	cr_expect_geq(counted_frees - f0, 3);
	IOFree(NULL, 5);                          /* NULL never reaches the hook */
	iomem_test_expect_reports(0);
}
