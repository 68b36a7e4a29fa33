/* SPDX-License-Identifier: MIT */
/*
 * t_init.c - iomem_baremetal_init: every bad description is refused with
 * kIOReturnBadArgument and changes nothing; the hooks (translation, cache,
 * lock, bounce arena, IOMMU table) are called as documented; a second init
 * while blocks are live is kIOReturnBusy. Ends with the description the
 * other suites run under: two heap arenas, a DMA window, a bounce arena.
 */
#include "bmt.h"

static uint64_t heap0[BMT_HEAP0_BYTES / 8];
static uint64_t heap1[BMT_HEAP1_BYTES / 8];
/* one chunk of IODMACommand's bounce pool (bmt.h) */
uint64_t bmt_bounce_arena[BMT_BOUNCE_BYTES / 8] __attribute__((aligned(4096)));
static uint64_t small_arena[64 / 8];

/* ---- recording hooks ---- */
static struct {
	int flush, clean, inval, lock, unlock;
	const void *addr;
	vm_size_t len;
} rec;

static void h_flush(void *u, const void *a, vm_size_t n) { (void)u; rec.flush++; rec.addr = a; rec.len = n; }
static void h_clean(void *u, const void *a, vm_size_t n) { (void)u; rec.clean++; rec.addr = a; rec.len = n; }
static void h_inval(void *u, const void *a, vm_size_t n) { (void)u; rec.inval++; rec.addr = a; rec.len = n; }
static void h_lock(void *u)   { (void)u; rec.lock++; }
static void h_unlock(void *u) { (void)u; rec.unlock++; }
static void *h_alloc(void *u, vm_size_t n) { (void)u; (void)n; return NULL; }
static void h_free(void *u, void *p) { (void)u; (void)p; }

/* a pretend bus: physical = virtual + 0x1000 */
#define BUS_OFFSET 0x1000u
static IOPhysicalAddress64 h_v2p(void *u, const void *v) { (void)u; return (IOPhysicalAddress64)(uintptr_t)v + BUS_OFFSET; }
static void *h_p2v(void *u, IOPhysicalAddress64 p) { (void)u; return (void *)(uintptr_t)(p - BUS_OFFSET); }

static IOReturn h_map(void *u, IOPhysicalAddress64 p, IOPhysicalLength64 l, IOOptionBits o, uint64_t *iova)
{
	(void)u; (void)l; (void)o; *iova = p; return kIOReturnSuccess;
}
static IOReturn h_unmap(void *u, uint64_t iova, IOPhysicalLength64 l) { (void)u; (void)iova; (void)l; return kIOReturnSuccess; }

/* ---- the hooks bmt_desc_reinit installs: trampolines a later suite can
 * redirect (the debug image cannot re-initialise once its allocation table
 * lives in the heap) ---- */
IOPhysicalAddress64 (*bmt_xlate_v2p)(const void *virt);
void *(*bmt_xlate_p2v)(IOPhysicalAddress64 phys);
void (*bmt_cache_spy)(unsigned op, const void *addr, vm_size_t len);
static IOPhysicalAddress64 (*tr_v2p_fn)(void *, const void *);
static void *(*tr_p2v_fn)(void *, IOPhysicalAddress64);

static IOPhysicalAddress64 tr_v2p(void *u, const void *v)
{
	if (bmt_xlate_v2p != NULL)
		return bmt_xlate_v2p(v);
	return tr_v2p_fn != NULL ? tr_v2p_fn(u, v) : (IOPhysicalAddress64)(uintptr_t)v;
}
static void *tr_p2v(void *u, IOPhysicalAddress64 p)
{
	if (bmt_xlate_p2v != NULL)
		return bmt_xlate_p2v(p);
	if (tr_p2v_fn != NULL)
		return tr_p2v_fn(u, p);
	return p > (IOPhysicalAddress64)UINTPTR_MAX ? NULL : (void *)(uintptr_t)p;
}
/* the spy sees the call, then the architecture's default runs */
static void tr_cache(unsigned op, const void *a, vm_size_t n)
{
	if (bmt_cache_spy != NULL)
		bmt_cache_spy(op, a, n);
	iomem_baremetal_cache_default(op, a, n);
}
static void tr_flush(void *u, const void *a, vm_size_t n) { (void)u; tr_cache(IOMEM_BAREMETAL_CACHE_FLUSH, a, n); }
static void tr_clean(void *u, const void *a, vm_size_t n) { (void)u; tr_cache(IOMEM_BAREMETAL_CACHE_CLEAN, a, n); }
static void tr_inval(void *u, const void *a, vm_size_t n) { (void)u; tr_cache(IOMEM_BAREMETAL_CACHE_INVALIDATE, a, n); }

IOReturn bmt_desc_reinit(IOPhysicalAddress64 (*v2p)(void *, const void *),
                         void *(*p2v)(void *, IOPhysicalAddress64))
{
	iomem_baremetal_desc d = {
		.heap = { { heap0, sizeof heap0 }, { heap1, sizeof heap1 } },
		.dma_base = (uintptr_t)bmt_bounce_arena, .dma_length = sizeof bmt_bounce_arena,
		.bounce = { bmt_bounce_arena, sizeof bmt_bounce_arena },
		.virt_to_phys = tr_v2p, .phys_to_virt = tr_p2v,
		.cache_flush = tr_flush, .cache_clean = tr_clean, .cache_invalidate = tr_inval,
	};
	IOReturn r;
	if ((v2p == NULL) != (p2v == NULL))
		return kIOReturnBadArgument;
	r = iomem_baremetal_init(&d);
	if (r == kIOReturnSuccess) {
		tr_v2p_fn = v2p;
		tr_p2v_fn = p2v;
	}
	return r;
}

static bool init_bad(const iomem_baremetal_desc *d)
{
	return iomem_baremetal_init(d) == kIOReturnBadArgument;
}

void bmt_suite_init(void)
{
	iomem_baremetal_desc d;
	iomem_heap_diagnostics diag;
	iomem_baremetal_iommu half = { h_map, NULL, NULL }, full = { h_map, h_unmap, NULL };
	void *p;

	/* ---- bad input: refused, nothing changes ---- */
	BMT_OK(init_bad(NULL), "init: NULL desc -> kIOReturnBadArgument");
	d = (iomem_baremetal_desc){ .alloc = h_alloc };
	BMT_OK(init_bad(&d), "init: alloc hook without free -> BadArgument");
	d = (iomem_baremetal_desc){ .lock = h_lock };
	BMT_OK(init_bad(&d), "init: lock hook without unlock -> BadArgument");
	d = (iomem_baremetal_desc){ .virt_to_phys = h_v2p };
	BMT_OK(init_bad(&d), "init: virt_to_phys without phys_to_virt -> BadArgument");
	d = (iomem_baremetal_desc){ .page_size = 3000 };
	BMT_OK(init_bad(&d), "init: page size not a power of two -> BadArgument");
	d = (iomem_baremetal_desc){ .page_size = 128 };
	BMT_OK(init_bad(&d), "init: page size below 256 -> BadArgument");
	d = (iomem_baremetal_desc){ .heap = { { (char *)heap0 + 4, 4096 } } };
	BMT_OK(init_bad(&d), "init: misaligned heap arena -> BadArgument");
	d = (iomem_baremetal_desc){ .heap = { { small_arena, 32 } } };
	BMT_OK(init_bad(&d), "init: heap arena of 32 bytes (too small) -> BadArgument");
	d = (iomem_baremetal_desc){ .heap = { { NULL, 4096 } } };
	BMT_OK(init_bad(&d), "init: NULL heap arena with a size -> BadArgument");
	d = (iomem_baremetal_desc){ .heap = { { heap0, 4096 }, { (char *)heap0 + 2048, 4096 } } };
	BMT_OK(init_bad(&d), "init: overlapping heap arenas -> BadArgument");
	d = (iomem_baremetal_desc){ .heap = { { heap0, 4096 } }, .alloc = h_alloc, .free = h_free };
	BMT_OK(init_bad(&d), "init: heap arenas and alloc hooks together -> BadArgument");
	d = (iomem_baremetal_desc){ .dma_base = ~(IOPhysicalAddress64)0 - 10, .dma_length = 100 };
	BMT_OK(init_bad(&d), "init: DMA window wrapping around -> BadArgument");
	d = (iomem_baremetal_desc){ .dma_base = (uintptr_t)bmt_bounce_arena + sizeof bmt_bounce_arena, .dma_length = 1u << 20,
	                            .bounce = { bmt_bounce_arena, sizeof bmt_bounce_arena } };
	BMT_OK(init_bad(&d), "init: bounce arena outside the DMA window -> BadArgument");
	d = (iomem_baremetal_desc){ .heap = { { heap0, 8192 } }, .bounce = { (char *)heap0 + 4096, 4096 } };
	BMT_OK(init_bad(&d), "init: bounce arena overlapping a heap arena -> BadArgument");
	d = (iomem_baremetal_desc){ .bounce = { (char *)bmt_bounce_arena + 1, 4096 } };
	BMT_OK(init_bad(&d), "init: misaligned bounce arena -> BadArgument");
	d = (iomem_baremetal_desc){ .iommu = &half };
	BMT_OK(init_bad(&d), "init: IOMMU table without unmap -> BadArgument");
	d = (iomem_baremetal_desc){ .cache_line = 48 };
	BMT_OK(init_bad(&d), "init: cache line not a power of two -> BadArgument");
	d = (iomem_baremetal_desc){ .heap_exact_fit = true };
	BMT_OK(init_bad(&d), "init: heap_exact_fit without heap arenas -> BadArgument");
	d = (iomem_baremetal_desc){ .alloc = h_alloc, .free = h_free, .heap_exact_fit = true };
	BMT_OK(init_bad(&d), "init: heap_exact_fit with alloc hooks (no iomem heap) -> BadArgument");

	BMT_OK(IOMalloc(16) == NULL && IOMallocAligned(16, 16) == NULL && IOMallocPageable(1, 0) == NULL,
	       "init: after refused inits there is still no heap (IOMalloc -> NULL)");
	BMT_OK(iomem_baremetal_heap_diagnostics(&diag) == kIOReturnNotReady && diag.capacity == 0,
	       "init: heap diagnostics without a heap -> kIOReturnNotReady");
	BMT_OK(iomem_baremetal_heap_check(NULL) == kIOReturnNotReady, "init: heap check without a heap -> kIOReturnNotReady");
	BMT_OK(iomem_baremetal_heap_diagnostics(NULL) == kIOReturnBadArgument, "init: heap diagnostics(NULL) -> BadArgument");
	BMT_OK(iomem__platform_page_size() == 4096, "init: default page size 4096");

	/* ---- hooks: translation, cache, locks, bounce arena, IOMMU ---- */
	d = (iomem_baremetal_desc){
		.page_size = 1024,
		.heap = { { heap1, sizeof heap1 } },
		.lock = h_lock, .unlock = h_unlock,
		.virt_to_phys = h_v2p, .phys_to_virt = h_p2v,
		.dma_base = (uintptr_t)bmt_bounce_arena + BUS_OFFSET, .dma_length = sizeof bmt_bounce_arena,
		.bounce = { bmt_bounce_arena, sizeof bmt_bounce_arena },
		.cache_flush = h_flush, .cache_clean = h_clean, .cache_invalidate = h_inval,
		.cache_line = 64,
		.iommu = &full,
	};
	BMT_OK(iomem_baremetal_init(&d) == kIOReturnSuccess, "init: full description with every hook accepted");
	BMT_OK(iomem__platform_page_size() == 1024, "init: page size 1024 taken");
	BMT_OK(iomem__platform_virt_to_phys(heap1) == (uintptr_t)heap1 + BUS_OFFSET &&
	       iomem__platform_phys_to_virt((uintptr_t)heap1 + BUS_OFFSET) == (void *)heap1,
	       "init: translation goes through the hooks");
	iomem__platform_cache_flush((char *)heap1 + 3, 100);
	BMT_OK(rec.flush == 1 && rec.addr == (char *)heap1 + 3 && rec.len == 100, "init: cache flush -> the flush hook, exact range");
	iomem__platform_cache_clean(heap1, 7);
	BMT_OK(rec.clean == 1 && rec.addr == heap1 && rec.len == 7, "init: cache clean -> the clean hook, exact range");
	iomem__platform_cache_invalidate(heap1, 64);
	BMT_OK(rec.inval == 1 && rec.len == 64, "init: cache invalidate -> the invalidate hook");
	iomem__platform_cache_flush(heap1, 0);
	BMT_OK(rec.flush == 1, "init: zero-length cache maintenance calls no hook");
	BMT_OK(iomem__platform_cache_line() == 64, "init: cache line from the description");
	BMT_OK(iomem__baremetal_iommu() == &full, "init: IOMMU table stored");
	BMT_OK(iomem__platform_dma_reachable((uintptr_t)bmt_bounce_arena + BUS_OFFSET, sizeof bmt_bounce_arena) &&
	       !iomem__platform_dma_reachable((uintptr_t)bmt_bounce_arena + BUS_OFFSET, sizeof bmt_bounce_arena + 1) &&
	       !iomem__platform_dma_reachable((uintptr_t)bmt_bounce_arena + BUS_OFFSET - 1, 2),
	       "init: DMA window bounds are exact");
	rec.lock = rec.unlock = 0;
	p = iomem__platform_bounce_alloc(1000, 256);
	BMT_OK(p != NULL && ((uintptr_t)p & 255) == 0 && (char *)p >= (char *)bmt_bounce_arena &&
	       (char *)p + 1000 <= (char *)bmt_bounce_arena + sizeof bmt_bounce_arena, "init: bounce block aligned, inside the bounce arena");
	BMT_OK(rec.lock == 1 && rec.unlock == 1, "init: the heap runs under the lock hooks");
	BMT_OK(iomem__platform_bounce_alloc(sizeof bmt_bounce_arena, 8) == NULL, "init: bounce arena exhausted -> NULL");
	d.page_size = 0;
	BMT_OK(iomem_baremetal_init(&d) == kIOReturnBusy, "init: again with a live bounce block -> kIOReturnBusy");
	BMT_OK(iomem__platform_page_size() == 1024, "init: ... and nothing changed");
	iomem__platform_bounce_free(p);
	/* the bounce arena is exact fit: one 64-page chunk (IODMACommand's) and
	 * then 16 pages fit its 129 pages; power of two would need a free block
	 * of 256 pages for the first (G2: P(P(64 pages + 8) + 16 + 4088)) */
	p = iomem__platform_bounce_alloc(64 * 4096, 4096);
	{
		void *q = iomem__platform_bounce_alloc(16 * 4096, 4096);
		BMT_OK(p != NULL && q != NULL && ((uintptr_t)p & 4095) == 0 && ((uintptr_t)q & 4095) == 0 &&
		       (char *)p >= (char *)bmt_bounce_arena && (char *)q >= (char *)bmt_bounce_arena &&
		       (char *)p + 64 * 4096 <= (char *)bmt_bounce_arena + sizeof bmt_bounce_arena &&
		       (char *)q + 16 * 4096 <= (char *)bmt_bounce_arena + sizeof bmt_bounce_arena &&
		       ((char *)q >= (char *)p + 64 * 4096 || (char *)q + 16 * 4096 <= (char *)p),
		       "init: bounce arena is exact fit: a 64-page chunk and 16 pages fit 129 pages");
		iomem__platform_bounce_free(q);
	}
	iomem__platform_bounce_free(p);
	/* 128 pages are not promised (G1: a free block of 256 pages), but the
	 * heap's one look at the list below finds the 129-page block */
	p = iomem__platform_bounce_alloc(128 * 4096, 8);
	BMT_OK(p != NULL, "init: ... 128 pages fit too (the list below's head holds them)");
	iomem__platform_bounce_free(p);
	BMT_OK(iomem__platform_bounce_alloc(129 * 4096, 8) == NULL, "init: ... 129 pages do not (exhausted -> NULL)");

	/* no bounce arena, no DMA window: bounce memory is NULL (IODMACommand
	 * then bounces through buffer RAM), everything is reachable */
	d = (iomem_baremetal_desc){ .heap = { { heap1, sizeof heap1 } } };
	BMT_OK(iomem_baremetal_init(&d) == kIOReturnSuccess && iomem__platform_bounce_alloc(64, 8) == NULL &&
	       iomem__platform_dma_reachable(~(IOPhysicalAddress64)0 - 4095, 4096),
	       "init: no bounce arena -> bounce alloc NULL; no DMA window -> all reachable");
	bmt_reports_reset();
	iomem__platform_bounce_free(heap1);          /* no bounce arena: nothing to free, no report */
	BMT_OK(bmt_panic_count == 0, "init: ... bounce free without a bounce arena is a no-op");

	/* ---- the heap's fit policy: desc.heap_exact_fit ---- */
	{
		int exact;
		for (exact = 0; exact < 2; exact++) {
			iomem_heap_diagnostics d0, d1, d2;
			void *q;
			vm_size_t grew, pgrew;
			d = (iomem_baremetal_desc){ .heap = { { heap0, sizeof heap0 } }, .heap_exact_fit = exact != 0 };
			BMT_OK(iomem_baremetal_init(&d) == kIOReturnSuccess,
			       exact ? "init: heap_exact_fit = true accepted" : "init: heap_exact_fit = false (power of two) accepted");
			iomem_baremetal_heap_diagnostics(&d0);
			/* the debug layer would keep its table in the heap (no re-init
			 * after that): the debug image calls the backend's entry */
#if IOMEM__DEBUG
			p = iomem__platform_malloc(4096);
#else
			p = IOMalloc(4096);
#endif
			iomem_baremetal_heap_diagnostics(&d1);
			q = iomem__platform_alloc_pages(4096, true);
			iomem_baremetal_heap_diagnostics(&d2);
			grew = d1.allocated - d0.allocated;
			pgrew = d2.allocated - d1.allocated;
			bmt_diag_u(exact ? "init: exact fit: heap bytes taken by a 4 KiB IOMalloc"
			                 : "init: power of two: heap bytes taken by a 4 KiB IOMalloc", grew);
			BMT_OK(p != NULL && grew == (exact ? 4096 + IOMEM__HEAP_HDR : 8192),
			       exact ? "init: exact fit: a 4 KiB IOMalloc takes 4 KiB + header (diag.allocated)"
			             : "init: power of two: a 4 KiB IOMalloc takes 8 KiB (diag.allocated)");
			BMT_OK(q != NULL && ((uintptr_t)q & 4095) == 0 && pgrew == (exact ? 4096 + IOMEM__HEAP_HDR : 8192),
			       exact ? "init: exact fit: a 4 KiB page takes 4 KiB + header, the alignment gap stays free"
			             : "init: power of two: a 4 KiB page takes 8 KiB, the alignment gap stays free");
			iomem__platform_free_pages(q, 4096);
#if IOMEM__DEBUG
			iomem__platform_free(p);
#else
			IOFree(p, 4096);
#endif
			iomem_baremetal_heap_diagnostics(&d1);
			BMT_OK(d1.allocated == 0 && iomem_baremetal_heap_check(NULL) == kIOReturnSuccess,
			       exact ? "init: exact fit: all given back, heap consistent"
			             : "init: power of two: all given back, heap consistent");
		}
	}

	/* ---- the description the other suites run under ---- */
	d = (iomem_baremetal_desc){
		.heap = { { heap0, sizeof heap0 }, { heap1, sizeof heap1 } },
		.dma_base = (uintptr_t)bmt_bounce_arena, .dma_length = sizeof bmt_bounce_arena,
		.bounce = { bmt_bounce_arena, sizeof bmt_bounce_arena },
	};
	BMT_OK(iomem_baremetal_init(&d) == kIOReturnSuccess, "init: two heap arenas, DMA window, bounce arena");
	BMT_OK(iomem_baremetal_heap_diagnostics(&diag) == kIOReturnSuccess && diag.arenas == 2 &&
	       diag.capacity == sizeof heap0 + sizeof heap1 - 4 * IOMEM__HEAP_HDR &&
	       diag.used_blocks == 0, "init: heap capacity = both arenas minus their start blocks and sentinels");
	BMT_OK(iomem__platform_virt_to_phys(heap0) == (uintptr_t)heap0 &&
	       iomem__platform_phys_to_virt((uintptr_t)heap0) == (void *)heap0, "init: identity translation by default");
	BMT_OK(iomem__baremetal_iommu() == NULL, "init: no IOMMU by default");
}
