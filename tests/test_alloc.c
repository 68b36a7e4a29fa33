/* SPDX-License-Identifier: MIT */
/* tests/test_alloc.c - the IOMalloc family (reference §3.1-3.3), good and
 * bad input. Runs with and without IOMEM_DEBUG (presets dev/clang/asan vs
 * release); behaviour that differs between the two is marked. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>


/* ---- IOMalloc / IOMallocZero / IOFree ---- */

IOMEM_TEST(iomalloc, sizes_are_usable_and_aligned)
{
	static const vm_size_t sizes[] = { 1, 7, 16, 100, 4095, 4096, 4097, 65536, 1u << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		unsigned char *p = IOMalloc(sizes[i]);
		cr_assert_not_null(p);
		cr_expect_eq((uintptr_t)p % IOMEM_MALLOC_ALIGN, 0);
		memset(p, 0x5a, sizes[i]);
		cr_expect(iomem_test_all_bytes(p, sizes[i], 0x5a));
		IOFree(p, sizes[i]);
	}
	iomem_test_expect_reports(0);
}

IOMEM_TEST(iomalloc, zero_size_gives_unique_pointers)
{
	void *a = IOMalloc(0), *b = IOMalloc(0);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_expect_neq(a, b);
	IOFree(a, 0);
	IOFree(b, 0);
	void *z = IOMallocZero(0);
	cr_assert_not_null(z);
	IOFree(z, 0);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(iomalloc, overflowing_sizes_return_null)
{
	cr_expect_null(IOMalloc(IOMEM_ALLOC_SIZE_MAX + 1));
	cr_expect_null(IOMalloc(~(vm_size_t)0));
	cr_expect_null(IOMallocZero(~(vm_size_t)0));
	cr_expect_null(IOMallocZero(IOMEM_ALLOC_SIZE_MAX + 1));
	iomem_test_expect_reports(0);
}

IOMEM_TEST(iomalloc, free_null_is_a_noop)
{
	IOFree(NULL, 0);
	IOFree(NULL, 123);
	IOFreeAligned(NULL, 64);
	IOFreePageable(NULL, 4096);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(iomalloc, zero_variant_is_zeroed_even_on_reused_memory)
{
	for (int round = 0; round < 64; round++) {
		vm_size_t n = 24 + (vm_size_t)round * 40;
		unsigned char *dirty = IOMalloc(n);
		cr_assert_not_null(dirty);
		memset(dirty, 0xff, n);
		IOFree(dirty, n);
		unsigned char *z = IOMallocZero(n);
		cr_assert_not_null(z);
		cr_expect(iomem_test_all_bytes(z, n, 0), "IOMallocZero(%zu) not zeroed", (size_t)n);
		IOFree(z, n);
	}
}

/* ---- IOMallocAligned / IOFreeAligned ---- */

IOMEM_TEST(aligned, alignment_rounds_up_to_a_power_of_two)
{
	static const struct { vm_offset_t asked, pow2; } cases[] = {
		{ 0, 1 }, { 1, 1 }, { 2, 2 }, { 3, 4 }, { 5, 8 }, { 16, 16 }, { 33, 64 },
		{ 64, 64 }, { 100, 128 }, { 4095, 4096 }, { 4096, 4096 }, { 65536, 65536 },
		{ 1u << 20, 1u << 20 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (vm_size_t size = 1; size <= 9000; size = size * 3 + 7) {
			unsigned char *p = IOMallocAligned(size, cases[i].asked);
			cr_assert_not_null(p);
			cr_expect_eq((uintptr_t)p % cases[i].pow2, 0, "IOMallocAligned(%zu, %zu) = %p",
			             (size_t)size, (size_t)cases[i].asked, (void *)p);
			memset(p, 0xa5, size);          /* the whole block is ours (ASan checks) */
			IOFreeAligned(p, size);
		}
	}
	iomem_test_expect_reports(0);
}

IOMEM_TEST(aligned, zero_size_returns_null)
{
	cr_expect_null(IOMallocAligned(0, 64));
	cr_expect_null(IOMallocAligned(0, 0));
	iomem_test_expect_reports(0);
}

IOMEM_TEST(aligned, alignment_beyond_32_bits_returns_null)
{
	cr_expect_null(IOMallocAligned(64, (vm_offset_t)0x80000001u));  /* rounds to 2^32 */
	cr_expect_null(IOMallocAligned(64, (vm_offset_t)0xFFFFFFFFu));
#if UINTPTR_MAX > 0xFFFFFFFFu
	cr_expect_null(IOMallocAligned(64, (vm_offset_t)1 << 32));
	cr_expect_null(IOMallocAligned(64, (vm_offset_t)1 << 40));
#endif
	cr_expect_eq(iomem_malloc_aligned_footprint(64, (vm_offset_t)0x80000001u), 0);
	cr_expect_neq(iomem_malloc_aligned_footprint(64, (vm_offset_t)0x80000000u), 0);
}

IOMEM_TEST(aligned, overflowing_size_returns_null)
{
	cr_expect_null(IOMallocAligned(IOMEM_ALLOC_SIZE_MAX, 64));
	cr_expect_null(IOMallocAligned(~(vm_size_t)0, 1));
	cr_expect_null(IOMallocAligned(IOMEM_ALLOC_SIZE_MAX - 8, 4096));
	cr_expect_eq(iomem_malloc_aligned_footprint(IOMEM_ALLOC_SIZE_MAX, 64), 0);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(aligned, overhead_is_at_most_alignment_plus_16)
{
	static const vm_offset_t aligns[] = { 0, 1, 8, 16, 64, 256, 4096, 65536 };
	static const vm_size_t sizes[] = { 1, 100, 1000, 3000, 5000, 1u << 20 };
	for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
			vm_size_t fp = iomem_malloc_aligned_footprint(sizes[s], aligns[a]);
			vm_size_t bound = (aligns[a] ? aligns[a] : 1) + 16;
			cr_expect(fp > sizes[s] && fp - sizes[s] <= bound,
			          "footprint(%zu, %zu) = %zu", (size_t)sizes[s], (size_t)aligns[a], (size_t)fp);
		}
}

IOMEM_TEST(aligned, many_live_blocks_do_not_overlap)
{
	enum { N = 512 };
	unsigned char *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = IOMallocAligned((vm_size_t)(i % 97) + 1, (vm_offset_t)1 << (i % 13));
		cr_assert_not_null(p[i]);
		memset(p[i], i & 0xff, (size_t)(i % 97) + 1);
	}
	for (int i = 0; i < N; i++) {
		cr_expect(iomem_test_all_bytes(p[i], (size_t)(i % 97) + 1, (unsigned char)(i & 0xff)));
		IOFreeAligned(p[i], (vm_size_t)(i % 97) + 1);
	}
	iomem_test_expect_reports(0);
}

#if !IOMEM__DEBUG
/* Without the debug layer the header is still validated: a pointer that is
 * not an IOMallocAligned block is reported and nothing is freed. */
IOMEM_TEST(aligned, release_foreign_pointer_is_reported_not_freed)
{
	uint64_t *block = IOMallocZero(256);
	cr_assert_not_null(block);
	IOFreeAligned(&block[8], 64);
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("IOFreeAligned");
	iomem_test_expect_report_has("not a live IOMallocAligned block");
	IOFree(block, 256);                      /* still ours: it was not freed */
}

IOMEM_TEST(aligned, release_second_free_sees_the_cleared_header)
{
	/* A real second free would read freed memory; instead check that the
	 * first free clears the header and that such a header is refused. */
	uint64_t block[64] __attribute__((aligned(64)));
	memset(block, 0, sizeof block);
	void *p = IOMallocAligned(200, 64);
	cr_assert_not_null(p);
	iomem__aligned_header *hdr = (iomem__aligned_header *)p - 1;
	cr_expect_neq(hdr->check, 0);
	iomem__aligned_header copy = *hdr;
	IOFreeAligned(p, 200);
	iomem_test_expect_reports(0);
	copy.check = 0;                              /* what the free left behind */
	((iomem__aligned_header *)&block[32])[-1] = copy;
	IOFreeAligned(&block[32], 200);
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("double free");
}

IOMEM_TEST(stats, release_build_tracks_nothing)
{
	iomem_alloc_stats st;
	memset(&st, 0xff, sizeof st);
	cr_expect_eq(iomem_stats(&st), kIOReturnUnsupported);
	cr_expect_eq(st.family[IOMEM_ALLOC_MALLOC].live_blocks, 0);
	cr_expect_eq(st.reports, 0);
	cr_expect_eq(iomem_stats(NULL), kIOReturnBadArgument);
	void *p = IOMalloc(10);
	cr_expect_eq(iomem_leak_report(NULL, NULL), 0);
	IOFree(p, 10);
}
#endif

/* ---- IOMallocPageable / IOFreePageable ---- */

IOMEM_TEST(pageable, page_aligned_zeroed_whole_pages)
{
	vm_size_t page = (vm_size_t)sysconf(_SC_PAGESIZE);
	static const vm_size_t sizes[] = { 1, 100, 4096, 5000, 65536 + 3 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		vm_size_t rounded = (sizes[i] + page - 1) / page * page;
		unsigned char *p = IOMallocPageable(sizes[i], 0);
		cr_assert_not_null(p);
		cr_expect_eq((uintptr_t)p % page, 0);
		cr_expect(iomem_test_all_bytes(p, rounded, 0));
		memset(p, 0x11, rounded);                /* the whole last page is usable */
		IOFreePageable(p, sizes[i]);
		p = IOMallocPageableZero(sizes[i], page);
		cr_assert_not_null(p);
		cr_expect(iomem_test_all_bytes(p, rounded, 0));
		IOFreePageable(p, sizes[i]);
	}
	iomem_test_expect_reports(0);
}

IOMEM_TEST(pageable, zero_size_is_one_page)
{
	unsigned char *p = IOMallocPageable(0, 1);
	cr_assert_not_null(p);
	memset(p, 1, (size_t)sysconf(_SC_PAGESIZE));
	IOFreePageable(p, 0);
}

IOMEM_TEST(pageable, alignment_above_page_size_returns_null)
{
	vm_size_t page = (vm_size_t)sysconf(_SC_PAGESIZE);
	cr_expect_null(IOMallocPageable(4096, page * 2));
	cr_expect_null(IOMallocPageable(4096, page + 1));
	cr_expect_null(IOMallocPageableZero(4096, page * 2));
#if UINTPTR_MAX > 0xFFFFFFFFu
	cr_expect_null(IOMallocPageable(4096, (vm_size_t)1 << 32));
#endif
	void *p = IOMallocPageable(4096, page);      /* exactly the page size is fine */
	cr_assert_not_null(p);
	IOFreePageable(p, 4096);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(pageable, size_above_the_maximum_returns_null)
{
	cr_expect_null(IOMallocPageable(IOMEM_PAGEABLE_MAX + 1, 0));
	cr_expect_null(IOMallocPageable(~(vm_size_t)0, 0));
	cr_expect_null(IOMallocPageableZero(IOMEM_PAGEABLE_MAX + 1, 0));
	iomem_test_expect_reports(0);
}

/* ---- IONew / IODelete / iomem_array_size ---- */

IOMEM_TEST(ionew, typed_arrays)
{
	uint32_t *a = IONew(uint32_t, 100);
	cr_assert_not_null(a);
	for (int i = 0; i < 100; i++)
		a[i] = (uint32_t)i;
	IODelete(a, uint32_t, 100);
	uint64_t *z = IONewZero(uint64_t, 33);
	cr_assert_not_null(z);
	cr_expect(iomem_test_all_bytes(z, 33 * sizeof *z, 0));
	IODelete(z, uint64_t, 33);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(ionew, overflowing_counts_return_null)
{
	cr_expect_eq(iomem_array_size(8, 4), 32);
	cr_expect_eq(iomem_array_size(0, ~(vm_size_t)0), 0);
	cr_expect_gt(iomem_array_size(16, IOMEM_ALLOC_SIZE_MAX / 8), IOMEM_ALLOC_SIZE_MAX);
	cr_expect_null(IONew(uint64_t, IOMEM_ALLOC_SIZE_MAX / 4));
	cr_expect_null(IONewZero(uint64_t, ~(vm_size_t)0));
}

IOMEM_TEST(ionew, arguments_are_evaluated_once)
{
	int n = 3;
	uint16_t *a = IONew(uint16_t, n++);
	cr_expect_eq(n, 4);
	IODelete(a, uint16_t, --n);
	cr_expect_eq(n, 3);
}

/* ---- thread safety ---- */

static void *alloc_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < 20000; i++) {
		seed = seed * 1103515245u + 12345u;
		vm_size_t n = (seed >> 16) % 512 + 1;
		void *a = IOMalloc(n);
		void *b = IOMallocAligned(n, 64);
		void *c = IOMallocZero(n);
		if (!a || !b || !c)
			return (void *)1;
		memset(a, 1, n);
		memset(b, 2, n);
		IOFree(a, n);
		IOFreeAligned(b, n);
		IOFree(c, n);
	}
	return NULL;
}

IOMEM_TEST(iomalloc, concurrent_use_is_safe)
{
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, alloc_worker, (void *)(i + 1)), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_expect_null(r);
	}
	iomem_test_expect_reports(0);
}
