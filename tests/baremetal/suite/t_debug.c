/* SPDX-License-Identifier: MIT */
/*
 * t_debug.c - the portable cases of tests/test_debug.c on the target: with
 * IOMEM_DEBUG the contract violations are reported (call, pointer, sizes),
 * nothing leaks and nothing is freed through the wrong allocator; the
 * debug layer's table lives in iomem's heap. Without IOMEM_DEBUG: the stats
 * are unsupported and the leak report is empty.
 */
#include "bmt.h"

#if IOMEM__DEBUG
static iomem_alloc_family_stats family_stats(iomem_alloc_family f)
{
	iomem_alloc_stats st;
	iomem_stats(&st);
	return st.family[f];
}

struct leak_seen { int n; vm_size_t bytes; int zero_calls; int aligned; };

static void on_leak(void *ctx, const void *address, vm_size_t size, iomem_alloc_family family, const char *call)
{
	struct leak_seen *s = (struct leak_seen *)ctx;
	s->n += address != NULL;
	s->bytes += size;
	s->zero_calls += bmt_streq(call, "IOMallocZero");
	s->aligned += family == IOMEM_ALLOC_ALIGNED;
}

void bmt_suite_debug(void)
{
	static long not_ours[4];
	iomem_alloc_stats st;
	void *a, *z, *al, *pg, *m;
	struct leak_seen seen = { 0, 0, 0, 0 };
	int f;
	bool ok;

	bmt_reports_reset();
	iomem_stats(&st);
	ok = st.family[IOMEM_ALLOC_MALLOC].live_blocks == 0;
	a = IOMalloc(100);
	z = IOMallocZero(28);
	al = IOMallocAligned(300, 128);
	pg = IOMallocPageable(5000, 0);
	ok &= a && z && al && pg && family_stats(IOMEM_ALLOC_MALLOC).live_bytes == 128 &&
	      family_stats(IOMEM_ALLOC_MALLOC).live_blocks == 2 &&
	      family_stats(IOMEM_ALLOC_ALIGNED).live_bytes == 300 &&
	      family_stats(IOMEM_ALLOC_PAGEABLE).live_bytes == 5000;
	IOFree(a, 100);
	IOFree(z, 28);
	IOFreeAligned(al, 300);
	IOFreePageable(pg, 5000);
	ok &= family_stats(IOMEM_ALLOC_MALLOC).live_blocks == 0 && family_stats(IOMEM_ALLOC_ALIGNED).live_blocks == 0 &&
	      family_stats(IOMEM_ALLOC_PAGEABLE).live_blocks == 0;
	BMT_OK(ok && bmt_panic_count == 0, "debug: stats count live bytes and blocks per family");

	a = IOMalloc(100);
	IOFree(a, 50);
	BMT_OK(bmt_panic_count == 1 && bmt_contains(bmt_panic_msg, "IOFree(") && bmt_contains(bmt_panic_msg, ", 50)") &&
	       bmt_contains(bmt_panic_msg, "allocation size 100") && family_stats(IOMEM_ALLOC_MALLOC).live_blocks == 0,
	       "debug: IOFree with a wrong size reported, freed with the real size");

	bmt_reports_reset();
	a = IOMalloc(40);
	IOFree(a, 40);
	IOFree(a, 40);
	BMT_OK(bmt_panic_count == 1 && bmt_contains(bmt_panic_msg, "double free") &&
	       bmt_contains(bmt_panic_msg, "already freed by IOFree"), "debug: double free reported, nothing freed");

	bmt_reports_reset();
	IOFree(&not_ours[1], 8);
	ok = bmt_panic_count == 1 && bmt_contains(bmt_panic_msg, "never allocated");
	IOFreeAligned(&not_ours[2], 8);
	ok &= bmt_panic_count == 2 && bmt_contains(bmt_panic_msg, "IOFreeAligned(");
	IOFreePageable(&not_ours[0], 4096);
	ok &= bmt_panic_count == 3 && bmt_contains(bmt_panic_msg, "IOFreePageable(");
	BMT_OK(ok, "debug: pointers never allocated are reported by every free");

	bmt_reports_reset();
	al = IOMallocAligned(64, 64);
	m = IOMalloc(64);
	pg = IOMallocPageable(100, 0);
	IOFree(al, 64);
	ok = bmt_panic_count == 1 && bmt_contains(bmt_panic_msg, "allocated by IOMallocAligned");
	IOFreeAligned(m, 64);
	ok &= bmt_panic_count == 2 && bmt_contains(bmt_panic_msg, "allocated by IOMalloc ");
	IOFree(pg, 100);
	ok &= bmt_panic_count == 3 && bmt_contains(bmt_panic_msg, "allocated by IOMallocPageable");
	iomem_stats(&st);
	for (f = 0; f < IOMEM_ALLOC_FAMILY_COUNT; f++)
		ok &= st.family[f].live_blocks == 0;
	BMT_OK(ok && iomem_baremetal_heap_check(NULL) == kIOReturnSuccess,
	       "debug: wrong family reported and freed through its own family (heap intact)");

	a = IOMallocZero(10);
	al = IOMallocAligned(20, 32);
	m = IOMalloc(30);
	BMT_OK(iomem_leak_report(on_leak, &seen) == 3 && seen.n == 3 && seen.bytes == 60 && seen.zero_calls == 1 &&
	       seen.aligned == 1, "debug: leak report lists live blocks");
	IOFree(a, 10);
	IOFreeAligned(al, 20);
	IOFree(m, 30);
	BMT_OK(iomem_leak_report(on_leak, &seen) == 0, "debug: leak report empty after the frees");

	bmt_reports_reset();
	BMT_OK(IOMalloc(~(vm_size_t)0) == NULL && IOMallocAligned(0, 64) == NULL &&
	       IOMallocPageable(100, 1u << 20) == NULL && bmt_panic_count == 0,
	       "debug: failed allocations return NULL without a report");
}
#else
void bmt_suite_debug(void)
{
	iomem_alloc_stats st;
	BMT_OK(iomem_stats(&st) == kIOReturnUnsupported && st.reports == 0 && iomem_leak_report(NULL, NULL) == 0,
	       "debug: off: iomem_stats unsupported, leak report empty");
}
#endif
