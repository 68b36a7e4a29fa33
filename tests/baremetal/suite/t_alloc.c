/* SPDX-License-Identifier: MIT */
/*
 * t_alloc.c - the portable cases of tests/test_alloc.c and tests/test_types.c
 * on the target, over iomem's O(1) heap: IOMalloc / IOMallocZero /
 * IOMallocAligned / IOMallocPageable / IONew, sizes, alignment, zeroing,
 * overflow, exhaustion, foreign and double frees; IOReturn names and values.
 */
#include "bmt.h"

static bool heap_ok(void)
{
	return iomem_baremetal_heap_check(NULL) == kIOReturnSuccess;
}

static void suite_iomalloc(void)
{
	static const vm_size_t sizes[] = { 1, 7, 16, 100, 4095, 4096, 4097, 65536 };
	bool ok = true;
	size_t i;
	int round;
	void *a, *b, *z;

	bmt_reports_reset();
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		unsigned char *p = (unsigned char *)IOMalloc(sizes[i]);
		ok &= p != NULL && ((uintptr_t)p % IOMEM_MALLOC_ALIGN) == 0;
		if (p == NULL)
			continue;
		bmt_fill(p, sizes[i], 0x5a);
		ok &= bmt_all_bytes(p, sizes[i], 0x5a);
		IOFree(p, sizes[i]);
	}
	BMT_OK(ok && bmt_panic_count == 0, "iomalloc: sizes 1..65536 usable and aligned to IOMEM_MALLOC_ALIGN");

	a = IOMalloc(0);
	b = IOMalloc(0);
	z = IOMallocZero(0);
	BMT_OK(a != NULL && b != NULL && a != b && z != NULL, "iomalloc: size 0 gives unique pointers");
	IOFree(a, 0);
	IOFree(b, 0);
	IOFree(z, 0);

	BMT_OK(IOMalloc(IOMEM_ALLOC_SIZE_MAX + 1) == NULL && IOMalloc(~(vm_size_t)0) == NULL &&
	       IOMallocZero(~(vm_size_t)0) == NULL && IOMallocZero(IOMEM_ALLOC_SIZE_MAX + 1) == NULL,
	       "iomalloc: overflowing sizes return NULL");

	IOFree(NULL, 0);
	IOFree(NULL, 123);
	IOFreeAligned(NULL, 64);
	IOFreePageable(NULL, 4096);
	BMT_OK(bmt_panic_count == 0, "iomalloc: freeing NULL is a no-op");

	ok = true;
	for (round = 0; round < 64; round++) {
		vm_size_t n = 24 + (vm_size_t)round * 40;
		unsigned char *dirty = (unsigned char *)IOMalloc(n), *zz;
		ok &= dirty != NULL;
		if (dirty == NULL)
			break;
		bmt_fill(dirty, n, 0xff);
		IOFree(dirty, n);
		zz = (unsigned char *)IOMallocZero(n);
		ok &= zz != NULL && bmt_all_bytes(zz, n, 0);
		IOFree(zz, n);
	}
	BMT_OK(ok, "iomalloc: IOMallocZero is zeroed even on reused memory");
	BMT_OK(heap_ok() && bmt_panic_count == 0, "iomalloc: heap invariants hold, no report");
}

static void suite_aligned(void)
{
	static const struct { vm_offset_t asked, pow2; } cases[] = {
		{ 0, 1 }, { 1, 1 }, { 2, 2 }, { 3, 4 }, { 5, 8 }, { 16, 16 }, { 33, 64 },
		{ 64, 64 }, { 100, 128 }, { 4095, 4096 }, { 4096, 4096 }, { 65536, 65536 },
	};
	enum { N = 256 };
	static unsigned char *p[N];
	bool ok = true;
	size_t i;
	vm_size_t size;
	int k;

	bmt_reports_reset();
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (size = 1; size <= 9000; size = size * 3 + 7) {
			unsigned char *q = (unsigned char *)IOMallocAligned(size, cases[i].asked);
			ok &= q != NULL && ((uintptr_t)q % cases[i].pow2) == 0;
			if (q == NULL)
				continue;
			bmt_fill(q, size, 0xa5);
			IOFreeAligned(q, size);
		}
	BMT_OK(ok && bmt_panic_count == 0, "aligned: alignment rounds up to a power of two (1..65536)");

	BMT_OK(IOMallocAligned(0, 64) == NULL && IOMallocAligned(0, 0) == NULL, "aligned: size 0 returns NULL");
	BMT_OK(IOMallocAligned(64, (vm_offset_t)0x80000001u) == NULL &&
	       IOMallocAligned(64, (vm_offset_t)0xFFFFFFFFu) == NULL &&
	       iomem_malloc_aligned_footprint(64, (vm_offset_t)0x80000001u) == 0,
	       "aligned: alignment beyond 2^31 returns NULL");
	BMT_OK(IOMallocAligned(IOMEM_ALLOC_SIZE_MAX, 64) == NULL && IOMallocAligned(~(vm_size_t)0, 1) == NULL &&
	       IOMallocAligned(IOMEM_ALLOC_SIZE_MAX - 8, 4096) == NULL,
	       "aligned: overflowing sizes return NULL");
	BMT_OK(IOMallocAligned(64, (vm_offset_t)0x80000000u) == NULL,
	       "aligned: 2 GiB alignment does not fit the heap -> NULL");

	ok = true;
	for (k = 0; k < N; k++) {
		p[k] = (unsigned char *)IOMallocAligned((vm_size_t)(k % 97) + 1, (vm_offset_t)1 << (k % 10));
		ok &= p[k] != NULL && ((uintptr_t)p[k] & ((1u << (k % 10)) - 1)) == 0;
		if (p[k] != NULL)
			bmt_fill(p[k], (size_t)(k % 97) + 1, (unsigned char)k);
	}
	for (k = 0; k < N; k++) {
		if (p[k] == NULL)
			continue;
		ok &= bmt_all_bytes(p[k], (size_t)(k % 97) + 1, (unsigned char)k);
		IOFreeAligned(p[k], (vm_size_t)(k % 97) + 1);
	}
	BMT_OK(ok && bmt_panic_count == 0, "aligned: 256 live blocks of mixed alignment do not overlap");

#if !IOMEM__DEBUG
	{
		uint64_t *block = (uint64_t *)IOMallocZero(256);
		IOFreeAligned(&block[8], 64);
		BMT_OK(bmt_panic_count == 1 && bmt_contains(bmt_panic_msg, "IOFreeAligned") &&
		       bmt_contains(bmt_panic_msg, "not a live IOMallocAligned block"),
		       "aligned: release: IOFreeAligned of a foreign pointer reported, nothing freed");
		IOFree(block, 256);
	}
#endif
	BMT_OK(heap_ok(), "aligned: heap invariants hold");
}

static void suite_pageable(void)
{
	static const vm_size_t sizes[] = { 1, 100, 4096, 5000, 16384 + 3 };
	vm_size_t page = iomem__platform_page_size();
	iomem_heap_diagnostics before, after;
	bool ok = true;
	size_t i;
	unsigned char *p;

	bmt_reports_reset();
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		vm_size_t rounded = (sizes[i] + page - 1) / page * page;
		p = (unsigned char *)IOMallocPageable(sizes[i], 0);
		ok &= p != NULL && ((uintptr_t)p % page) == 0;
		if (p == NULL)
			continue;
		ok &= bmt_all_bytes(p, rounded, 0);
		bmt_fill(p, rounded, 0x11);
		IOFreePageable(p, sizes[i]);
		p = (unsigned char *)IOMallocPageableZero(sizes[i], page);
		ok &= p != NULL && ((uintptr_t)p % page) == 0 && bmt_all_bytes(p, rounded, 0);
		IOFreePageable(p, sizes[i]);
	}
	BMT_OK(ok && bmt_panic_count == 0, "pageable: page-aligned, zeroed, whole pages");

	iomem_baremetal_heap_diagnostics(&before);
	p = (unsigned char *)IOMallocPageable(0, 1);
	iomem_baremetal_heap_diagnostics(&after);
	/* G3 under the default power-of-two policy: the block is P(page + header)
	 * (+ a remainder smaller than a minimum block); the front gap stays free */
	BMT_OK(p != NULL && ((uintptr_t)p % page) == 0 &&
	       after.allocated - before.allocated >= 2 * page &&
	       after.allocated - before.allocated <= 2 * page + IOMEM__HEAP_MIN_BLOCK - 8,
	       "pageable: size 0 is one page (a 2-page block, power of two); the alignment gap goes back to the heap");
	bmt_fill(p, page, 1);
	IOFreePageable(p, 0);

	BMT_OK(IOMallocPageable(4096, page * 2) == NULL && IOMallocPageable(4096, page + 1) == NULL &&
	       IOMallocPageableZero(4096, page * 2) == NULL, "pageable: alignment above the page size returns NULL");
	BMT_OK(IOMallocPageable(IOMEM_PAGEABLE_MAX + 1, 0) == NULL && IOMallocPageable(~(vm_size_t)0, 0) == NULL,
	       "pageable: size above the maximum returns NULL");
	BMT_OK(heap_ok() && bmt_panic_count == 0, "pageable: heap invariants hold, no report");
}

static void suite_ionew(void)
{
	uint32_t *a = IONew(uint32_t, 100);
	uint64_t *z;
	int i, n = 3;
	bool ok = a != NULL;
	uint16_t *s;

	for (i = 0; ok && i < 100; i++)
		a[i] = (uint32_t)i;
	IODelete(a, uint32_t, 100);
	z = IONewZero(uint64_t, 33);
	ok &= z != NULL && bmt_all_bytes(z, 33 * sizeof *z, 0);
	IODelete(z, uint64_t, 33);
	BMT_OK(ok, "ionew: typed arrays, IONewZero zeroed");
	BMT_OK(iomem_array_size(8, 4) == 32 && iomem_array_size(0, ~(vm_size_t)0) == 0 &&
	       iomem_array_size(16, IOMEM_ALLOC_SIZE_MAX / 8) > IOMEM_ALLOC_SIZE_MAX &&
	       IONew(uint64_t, IOMEM_ALLOC_SIZE_MAX / 4) == NULL && IONewZero(uint64_t, ~(vm_size_t)0) == NULL,
	       "ionew: overflowing counts return NULL");
	s = IONew(uint16_t, n++);
	ok = n == 4;
	IODelete(s, uint16_t, --n);
	BMT_OK(ok && n == 3, "ionew: arguments are evaluated once");
}

/* Heap-specific behaviour through the IOMalloc family. */
static void suite_heap_through_iomalloc(void)
{
	iomem_heap_diagnostics d0, d1;
	iomem_heap_census c;
	unsigned char *left, *mid, *right;

	bmt_reports_reset();
	iomem_baremetal_heap_diagnostics(&d0);
	BMT_OK(IOMalloc(BMT_HEAP0_BYTES + BMT_HEAP1_BYTES) == NULL, "heap: exhausted (request above capacity) -> NULL");
	iomem_baremetal_heap_check(&c);
	BMT_OK(IOMalloc(c.largest_free) == NULL, "heap: request above the largest free block -> NULL");
	iomem_baremetal_heap_diagnostics(&d1);
	BMT_OK(d1.oom_count == d0.oom_count + 2 && d1.allocated == d0.allocated && heap_ok(),
	       "heap: failed allocations counted, nothing changed");
	left = (unsigned char *)IOMalloc(c.largest_alloc);
	BMT_OK(left != NULL, "heap: the largest request the census promises succeeds (G1)");
	IOFree(left, c.largest_alloc);

	left = (unsigned char *)IOMalloc(48);
	mid = (unsigned char *)IOMalloc(48);
	right = (unsigned char *)IOMalloc(48);
	bmt_fill(left, 48, 0x11);
	bmt_fill(mid, 48, 0x22);
	bmt_fill(right, 48, 0x33);
	IOFree(mid + 16, 32);                    /* an interior pointer */
	BMT_OK(bmt_panic_count == 1 && (IOMEM__DEBUG ? bmt_contains(bmt_panic_msg, "never allocated")
	                                             : bmt_contains(bmt_panic_msg, "not a live block")),
	       IOMEM__DEBUG ? "heap: IOFree of a foreign pointer -> reported by the debug layer"
	                    : "heap: IOFree of a foreign pointer -> refused and reported by the heap");
	BMT_OK(bmt_all_bytes(left, 48, 0x11) && bmt_all_bytes(mid, 48, 0x22) && bmt_all_bytes(right, 48, 0x33) &&
	       heap_ok(), "heap: ... no other block touched, invariants hold");
	IOFree(mid, 48);
#if !IOMEM__DEBUG
	IOFree(mid, 48);                         /* release: the heap sees the double free */
	BMT_OK(bmt_panic_count == 2 && bmt_contains(bmt_panic_msg, "double free"),
	       "heap: release: double IOFree refused and reported");
#endif
	BMT_OK(bmt_all_bytes(left, 48, 0x11) && bmt_all_bytes(right, 48, 0x33) && heap_ok(),
	       "heap: neighbours intact after the bad frees");
	IOFree(left, 48);
	IOFree(right, 48);
}

static void suite_ioreturn(void)
{
	char buf[32];
	BMT_OK(kIOReturnSuccess == 0 && kIOReturnNoMemory == (IOReturn)0xe00002bdu &&
	       kIOReturnBadArgument == (IOReturn)0xe00002c2u && kIOReturnBusy == (IOReturn)0xe00002d5u &&
	       kIOReturnNotReady == (IOReturn)0xe00002d8u && kIOReturnInvalid == (IOReturn)0xe0000001u,
	       "ioreturn: values match IOKit");
	BMT_OK(bmt_streq(IOReturnString(kIOReturnNoMemory), "kIOReturnNoMemory") &&
	       bmt_streq(IOReturnString(kIOReturnSuccess), "kIOReturnSuccess") &&
	       bmt_streq(IOReturnString(kIOReturnNotFound), "kIOReturnNotFound"),
	       "ioreturn: IOReturnString names codes");
	BMT_OK(bmt_streq(IOReturnString((IOReturn)0xe00002cbu), "IOReturn 0xe00002cb"),
	       "ioreturn: unknown code gets the formatted fallback");
	BMT_OK(bmt_streq(iomem_ioreturn_description(kIOReturnNoMemory), "can't allocate memory"),
	       "ioreturn: description");
	BMT_OK(iomem_ioreturn_format(kIOReturnBadArgument, buf, 8) == 20 && bmt_streq(buf, "kIORetu"),
	       "ioreturn: format truncates and returns the full length");
	BMT_OK(sizeof(IOPhysicalAddress) == 8 && sizeof(IOByteCount) == 8 && sizeof(vm_size_t) == sizeof(void *) &&
	       sizeof(IOVirtualAddress) == sizeof(void *), "types: sizes as on 64-bit IOKit");
}

void bmt_suite_alloc(void)
{
	suite_iomalloc();
	suite_aligned();
	suite_pageable();
	suite_ionew();
	suite_heap_through_iomalloc();
	suite_ioreturn();
}
