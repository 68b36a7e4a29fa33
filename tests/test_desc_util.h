/* SPDX-License-Identifier: MIT */
/*
 * tests/test_desc_util.h - shared by the descriptor suites (after iomem.h).
 * Layout policies, a fini hook that also checks the software machine has no
 * page left wired, and a segment-walk checker against the machine's own
 * page-by-page translation.
 */
#ifndef IOMEM_TEST_DESC_UTIL_H
#define IOMEM_TEST_DESC_UTIL_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

static const iomem_posix_layout desc_layouts[] = {
	IOMEM_POSIX_LAYOUT_IDENTITY, IOMEM_POSIX_LAYOUT_CONTIGUOUS, IOMEM_POSIX_LAYOUT_SCATTERED,
	IOMEM_POSIX_LAYOUT_RUNS, IOMEM_POSIX_LAYOUT_HIGH,
};
#define DESC_NLAYOUTS ((int)(sizeof desc_layouts / sizeof desc_layouts[0]))

static inline void desc_set_layout(iomem_posix_layout p, uint32_t run_mean, uint64_t seed)
{
	iomem_posix_phys_layout l;
	memset(&l, 0, sizeof l);
	l.policy = p;
	l.run_mean = run_mean;
	l.seed = seed;
	cr_assert_eq(iomem_posix_set_phys_layout(&l), kIOReturnSuccess);
}

/* Criterion (2.4) ignores assertion failures in a .fini hook: the test is
 * still counted as passing and the exit status is 0. So the end-of-test
 * checks print and abort(), which Criterion reports as a crash in teardown
 * and turns into a non-zero exit status. */
static void desc_fini(void)
{
	iomem_posix_machine_stats_t st;
	vm_size_t live;
	iomem_posix_machine_stats(&st);
	live = iomem_leak_report(NULL, NULL);
	if (st.wired_pages != 0 || live != 0) {
		fprintf(stderr, "desc_fini: %llu page(s) still wired, %zu block(s) leaked\n",
		        (unsigned long long)st.wired_pages, (size_t)live);
		abort();
	}
}

#define DESC_PAGE ((IOByteCount)iomem__platform_page_size())

/* Walks @md from 0 and checks every segment against the machine's page
 * translation of the virtual bytes @va(offset) given by @va_of: the start
 * address, contiguity of every page inside the segment, and (when
 * @maximal) that the next byte is not physically adjacent. Returns the
 * number of segments. */
typedef uintptr_t (*desc_va_fn)(void *ctx, IOByteCount off);

static inline uint32_t desc_check_walk(IOMemoryDescriptor *md, desc_va_fn va_of, void *ctx, bool maximal)
{
	IOByteCount off = 0, len = IOMemoryDescriptor_getLength(md), seg;
	uint32_t n = 0;
	while (off < len) {
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		IOByteCount k;
		cr_assert_neq(pa, 0, "segment at %llu", (unsigned long long)off);
		cr_assert(seg > 0 && seg <= len - off);
		cr_assert_eq(pa, iomem_posix_virt_to_phys((void *)va_of(ctx, off)),
		             "offset %llu: pa %llx", (unsigned long long)off, (unsigned long long)pa);
		/* every page start inside the segment, and its last byte */
		for (k = DESC_PAGE - ((pa) & (DESC_PAGE - 1)); k < seg; k += DESC_PAGE)
			cr_assert_eq(iomem_posix_virt_to_phys((void *)va_of(ctx, off + k)), pa + k);
		cr_assert_eq(iomem_posix_virt_to_phys((void *)va_of(ctx, off + seg - 1)), pa + seg - 1);
		if (maximal && off + seg < len)
			cr_assert_neq(iomem_posix_virt_to_phys((void *)va_of(ctx, off + seg)), pa + seg,
			              "segment at %llu not maximal", (unsigned long long)off);
		off += seg;
		n++;
	}
	cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(md, len, &seg, 0), 0);
	cr_assert_eq(seg, 0);
	return n;
}

/* va_of for one contiguous virtual block */
static inline uintptr_t desc_va_linear(void *ctx, IOByteCount off)
{
	return (uintptr_t)ctx + (uintptr_t)off;
}

static inline void desc_fill(void *p, size_t n, uint32_t seed)
{
	unsigned char *b = (unsigned char *)p;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (unsigned char)(seed >> 16);
	}
}

#endif
