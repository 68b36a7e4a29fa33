/* SPDX-License-Identifier: MIT */
/* tests/test_debug.c - the IOMEM_DEBUG layer: the IOKit contract violations
 * XNU panics on are reported (call, pointer, both sizes), nothing leaks and
 * nothing is freed through the wrong allocator; iomem_stats and
 * iomem_leak_report. Always built with the debug layer on. */
#include "test_util.h"
#undef IOMEM_DEBUG
#define IOMEM_DEBUG 1
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static iomem_alloc_family_stats family_stats(iomem_alloc_family f)
{
	iomem_alloc_stats st;
	cr_assert_eq(iomem_stats(&st), kIOReturnSuccess);
	return st.family[f];
}

static void hex_of(const void *p, char *buf, size_t n)
{
	snprintf(buf, n, "%#llx", (unsigned long long)(uintptr_t)p);
}

IOMEM_TEST(debug, stats_count_live_bytes_and_blocks_per_family)
{
	void *a = IOMalloc(100), *z = IOMallocZero(28);
	void *al = IOMallocAligned(300, 128);
	void *pg = IOMallocPageable(5000, 0);
	cr_assert(a && z && al && pg);
	iomem_alloc_family_stats m = family_stats(IOMEM_ALLOC_MALLOC);
	cr_expect_eq(m.live_bytes, 128);
	cr_expect_eq(m.live_blocks, 2);
	cr_expect_eq(m.total_allocs, 2);
	cr_expect_eq(family_stats(IOMEM_ALLOC_ALIGNED).live_bytes, 300);
	cr_expect_eq(family_stats(IOMEM_ALLOC_PAGEABLE).live_bytes, 5000);
	IOFree(a, 100);
	IOFree(z, 28);
	IOFreeAligned(al, 300);
	IOFreePageable(pg, 5000);
	m = family_stats(IOMEM_ALLOC_MALLOC);
	cr_expect_eq(m.live_bytes, 0);
	cr_expect_eq(m.live_blocks, 0);
	cr_expect_eq(m.total_frees, 2);
	cr_expect_eq(m.peak_bytes, 128);
	cr_expect_eq(family_stats(IOMEM_ALLOC_ALIGNED).live_blocks, 0);
	cr_expect_eq(family_stats(IOMEM_ALLOC_PAGEABLE).live_blocks, 0);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(debug, failed_allocations_are_counted)
{
	cr_expect_null(IOMalloc(~(vm_size_t)0));
	cr_expect_null(IOMallocAligned(0, 64));
	cr_expect_null(IOMallocPageable(100, 1u << 20));
	cr_expect_eq(family_stats(IOMEM_ALLOC_MALLOC).failed_allocs, 1);
	cr_expect_eq(family_stats(IOMEM_ALLOC_ALIGNED).failed_allocs, 1);
	cr_expect_eq(family_stats(IOMEM_ALLOC_PAGEABLE).failed_allocs, 1);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(debug, iofree_with_wrong_size_is_reported_and_freed_with_the_real_size)
{
	char ptr[32];
	void *p = IOMalloc(100);
	cr_assert_not_null(p);
	hex_of(p, ptr, sizeof ptr);
	IOFree(p, 50);
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("IOFree(");
	iomem_test_expect_report_has(ptr);
	iomem_test_expect_report_has(", 50)");
	iomem_test_expect_report_has("allocation size 100");
	cr_expect_eq(family_stats(IOMEM_ALLOC_MALLOC).live_blocks, 0);   /* not leaked */
}

IOMEM_TEST(debug, every_free_checks_the_size)
{
	void *al = IOMallocAligned(64, 64);
	void *pg = IOMallocPageable(8192, 0);
	cr_assert(al && pg);
	IOFreeAligned(al, 65);
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("IOFreeAligned(");
	iomem_test_expect_report_has("allocation size 64");
	IOFreePageable(pg, 4096);                /* would free one page of two */
	iomem_test_expect_reports(2);
	iomem_test_expect_report_has("IOFreePageable(");
	iomem_test_expect_report_has("allocation size 8192");
	cr_expect_eq(family_stats(IOMEM_ALLOC_PAGEABLE).live_blocks, 0);
}

IOMEM_TEST(debug, double_free_is_reported_and_frees_nothing)
{
	void *p = IOMalloc(40);
	cr_assert_not_null(p);
	IOFree(p, 40);
	iomem_test_expect_reports(0);
	IOFree(p, 40);
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("IOFree(");
	iomem_test_expect_report_has("double free");
	iomem_test_expect_report_has("already freed by IOFree");
	cr_expect_eq(family_stats(IOMEM_ALLOC_MALLOC).total_frees, 1);
}

IOMEM_TEST(debug, pointer_never_allocated_is_reported)
{
	static long not_ours[4];
	IOFree(&not_ours[1], 8);
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("IOFree(");
	iomem_test_expect_report_has("never allocated");
	IOFreeAligned(&not_ours[2], 8);
	iomem_test_expect_reports(2);
	iomem_test_expect_report_has("IOFreeAligned(");
	IOFreePageable(&not_ours[0], 4096);
	iomem_test_expect_reports(3);
	iomem_test_expect_report_has("IOFreePageable(");
}

IOMEM_TEST(debug, wrong_family_is_reported_and_freed_through_its_own_family)
{
	void *al = IOMallocAligned(64, 64);
	void *m = IOMalloc(64);
	void *pg = IOMallocPageable(100, 0);
	cr_assert(al && m && pg);
	IOFree(al, 64);                          /* free() of it would corrupt the heap */
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("IOFree(");
	iomem_test_expect_report_has("allocated by IOMallocAligned");
	IOFreeAligned(m, 64);
	iomem_test_expect_reports(2);
	iomem_test_expect_report_has("allocated by IOMalloc ");
	IOFree(pg, 100);
	iomem_test_expect_reports(3);
	iomem_test_expect_report_has("allocated by IOMallocPageable");
	iomem_alloc_stats st;
	iomem_stats(&st);
	for (int f = 0; f < IOMEM_ALLOC_FAMILY_COUNT; f++)
		cr_expect_eq(st.family[f].live_blocks, 0);
	cr_expect_eq(st.reports, 3);
}

struct leak_seen { int n; vm_size_t bytes; int zero_calls; int aligned; };

static void on_leak(void *ctx, const void *address, vm_size_t size,
                    iomem_alloc_family family, const char *call)
{
	struct leak_seen *s = ctx;
	cr_expect_not_null(address);
	s->n++;
	s->bytes += size;
	if (strcmp(call, "IOMallocZero") == 0)
		s->zero_calls++;
	if (family == IOMEM_ALLOC_ALIGNED)
		s->aligned++;
}

IOMEM_TEST(debug, leak_report_lists_live_blocks)
{
	void *a = IOMallocZero(10), *b = IOMallocAligned(20, 32), *c = IOMalloc(30);
	struct leak_seen seen = { 0, 0, 0, 0 };
	cr_expect_eq(iomem_leak_report(on_leak, &seen), 3);
	cr_expect_eq(seen.n, 3);
	cr_expect_eq(seen.bytes, 60);
	cr_expect_eq(seen.zero_calls, 1);
	cr_expect_eq(seen.aligned, 1);
	IOFree(a, 10);
	IOFreeAligned(b, 20);
	IOFree(c, 30);
	cr_expect_eq(iomem_leak_report(on_leak, &seen), 0);
}

IOMEM_TEST(debug, leak_report_prints_without_a_callback)
{
	void *p = IOMalloc(77);
	fflush(stderr);
	cr_expect_eq(iomem_leak_report(NULL, NULL), 1);
	IOFree(p, 77);
}

IOMEM_TEST(debug, bad_arguments)
{
	cr_expect_eq(iomem_stats(NULL), kIOReturnBadArgument);
	cr_expect_str_eq(iomem_alloc_family_name(IOMEM_ALLOC_MALLOC), "IOMalloc");
	cr_expect_str_eq(iomem_alloc_family_name(IOMEM_ALLOC_ALIGNED), "IOMallocAligned");
	cr_expect_str_eq(iomem_alloc_family_name(IOMEM_ALLOC_PAGEABLE), "IOMallocPageable");
	cr_expect_str_eq(iomem_alloc_family_name(IOMEM_ALLOC_INTERNAL), "internal");
	cr_expect_str_eq(iomem_alloc_family_name((iomem_alloc_family)99), "unknown");
}

IOMEM_TEST(debug, internal_objects_are_tracked_by_name)
{
	void *o = iomem__alloc_internal(48, "IOMemoryDescriptor");
	cr_assert_not_null(o);
	cr_expect_eq(family_stats(IOMEM_ALLOC_INTERNAL).live_bytes, 48);
	iomem__free_internal(o, 48, "IOMemoryDescriptor");
	cr_expect_eq(family_stats(IOMEM_ALLOC_INTERNAL).live_blocks, 0);
	iomem_test_expect_reports(0);
}

/* The table grows and deletes with backward shifts: a large workload freed
 * in random order must keep every entry findable (no false reports). */
IOMEM_TEST(debug, table_survives_growth_and_random_deletion)
{
	enum { N = 20000 };
	void **p = malloc(N * sizeof *p);
	int *order = malloc(N * sizeof *order);
	cr_assert(p && order);
	for (int i = 0; i < N; i++) {
		p[i] = IOMalloc((vm_size_t)(i % 61) + 1);
		cr_assert_not_null(p[i]);
		order[i] = i;
	}
	cr_expect_eq(family_stats(IOMEM_ALLOC_MALLOC).live_blocks, N);
	cr_expect_eq(iomem_leak_report(on_leak, &(struct leak_seen){ 0, 0, 0, 0 }), N);
	unsigned seed = 12345;
	for (int i = N - 1; i > 0; i--) {        /* Fisher-Yates */
		seed = seed * 1103515245u + 12345u;
		int j = (int)((seed >> 8) % (unsigned)(i + 1));
		int t = order[i]; order[i] = order[j]; order[j] = t;
	}
	for (int k = 0; k < N; k++) {
		int i = order[k];
		IOFree(p[i], (vm_size_t)(i % 61) + 1);
	}
	iomem_test_expect_reports(0);
	cr_expect_eq(family_stats(IOMEM_ALLOC_MALLOC).live_blocks, 0);
	free(p);
	free(order);
}

static void *debug_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *live[64] = { 0 };
	vm_size_t sizes[64] = { 0 };
	for (int i = 0; i < 20000; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned slot = (seed >> 10) % 64;
		if (live[slot]) {
			IOFree(live[slot], sizes[slot]);
			live[slot] = NULL;
		} else {
			sizes[slot] = (seed >> 16) % 300 + 1;
			live[slot] = IOMalloc(sizes[slot]);
			if (live[slot] == NULL)
				return (void *)1;
		}
	}
	for (unsigned s = 0; s < 64; s++)
		IOFree(live[s], sizes[s]);
	return NULL;
}

IOMEM_TEST(debug, concurrent_tracking_is_consistent)
{
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, debug_worker, (void *)(i + 7)), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_expect_null(r);
	}
	iomem_test_expect_reports(0);
	iomem_alloc_family_stats m = family_stats(IOMEM_ALLOC_MALLOC);
	cr_expect_eq(m.live_blocks, 0);
	cr_expect_eq(m.live_bytes, 0);
	cr_expect_eq(m.total_allocs, m.total_frees);
}
