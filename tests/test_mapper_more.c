/* SPDX-License-Identifier: MIT */
/* tests/test_mapper_more.c - IOMapper paths test_mapper.c does not reach:
 * iomem_mapper_withOps without a required hook, IOMapper_iovmUnmapMemory's
 * bad input, IOMapperIOVMAlloc / IOVMFree on a system mapper that is not
 * the software IOMMU (page-size conversion, the refused IOVAs given back),
 * and the software IOMMU's own iovaAlloc / iovaFree hooks (bad input, CPU
 * pages larger than the IOMMU's). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_map.h"
#include "test_desc_util.h"

TestSuite(mapper_more, .fini = desc_fini);

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)
#define RW (kIODMAMapReadAccess | kIODMAMapWriteAccess)

/* ---- a foreign mapper with an IOVA allocator the test controls ---- */

typedef struct fake_iova {
	uint64_t page;          /* getPageSize */
	uint64_t next;          /* what iovaAlloc hands out */
	bool fail;              /* iovaAlloc fails */
	unsigned allocs, frees;
	uint64_t alloc_pages, free_iova, free_pages;
} fake_iova;

static fake_iova *ctx_of(IOMapper *m) { return (fake_iova *)iomem_mapper_getContext(m); }
static uint64_t fk_page(IOMapper *m) { return ctx_of(m)->page; }
static IOReturn fk_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t o, uint64_t l, uint32_t opt,
                       const IODMAMapSpecification *s, IODMACommand *c, const void *pl, uint64_t *a, uint64_t *ml)
{
	(void)m; (void)md; (void)o; (void)l; (void)opt; (void)s; (void)c; (void)pl; (void)a; (void)ml;
	return kIOReturnUnsupported;
}
static IOReturn fk_unmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *c, uint64_t a, uint64_t l)
{
	(void)m; (void)md; (void)c; (void)a; (void)l;
	return kIOReturnSuccess;
}
static uint64_t fk_to_phys(IOMapper *m, uint64_t a) { (void)m; return a; }
static IOReturn fk_alloc(IOMapper *m, uint64_t pages, uint32_t opt, uint64_t *iova)
{
	fake_iova *f = ctx_of(m);
	cr_expect_eq(opt, RW, "IOMapperIOVMAlloc asks for read/write space");
	f->allocs++;
	f->alloc_pages = pages;
	if (f->fail)
		return kIOReturnNoSpace;
	*iova = f->next;
	return kIOReturnSuccess;
}
static void fk_free(IOMapper *m, uint64_t iova, uint64_t pages)
{
	fake_iova *f = ctx_of(m);
	f->frees++;
	f->free_iova = iova;
	f->free_pages = pages;
}

static const iomem_mapper_ops fk_ops = { "fake-iova", fk_page, fk_map, fk_unmap, NULL, fk_to_phys,
                                         fk_alloc, fk_free, NULL, NULL, NULL, NULL };
static const iomem_mapper_ops fk_ops_nofree = { "fake-iova-nofree", fk_page, fk_map, fk_unmap, NULL, fk_to_phys,
                                                fk_alloc, NULL, NULL, NULL, NULL, NULL };

static unsigned log2u(uint64_t v)
{
	unsigned s = 0;
	while (((uint64_t)1 << s) < v)
		s++;
	return s;
}

IOMEM_TEST(mapper_more, with_ops_needs_the_required_hooks)
{
	fake_iova f = { 4096, 0, false, 0, 0, 0, 0, 0 };
	iomem_mapper_ops o;
	cr_expect_null(iomem_mapper_withOps(NULL, &f));
	o = fk_ops; o.getPageSize = NULL;
	cr_expect_null(iomem_mapper_withOps(&o, &f), "no getPageSize");
	o = fk_ops; o.iovmMapMemory = NULL;
	cr_expect_null(iomem_mapper_withOps(&o, &f), "no iovmMapMemory");
	o = fk_ops; o.iovmUnmapMemory = NULL;
	cr_expect_null(iomem_mapper_withOps(&o, &f), "no iovmUnmapMemory");
	o = fk_ops; o.mapToPhysicalAddress = NULL;
	cr_expect_null(iomem_mapper_withOps(&o, &f), "no mapToPhysicalAddress");
	IOMapper *m = iomem_mapper_withOps(&fk_ops, &f);
	cr_assert_not_null(m, "the optional hooks may be missing");
	cr_expect_eq(iomem_mapper_getContext(m), &f);
	cr_expect_eq(IOMapper_getPageSize(m), 4096);
	/* iovmUnmapMemory: a mapper and a length are needed */
	cr_expect_eq(IOMapper_iovmUnmapMemory(NULL, NULL, NULL, 4096, 4096), kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmUnmapMemory(m, NULL, NULL, 4096, 0), kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmUnmapMemory(m, NULL, NULL, 4096, 4096), kIOReturnSuccess, "passed to the hook");
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper_more, iovm_alloc_and_free_on_a_foreign_system_mapper)
{
	const uint64_t cpu = DESC_PAGE;
	const unsigned cs = log2u(cpu);
	fake_iova f = { 4 * cpu, 0x40 * cpu, false, 0, 0, 0, 0, 0 };
	IOMapper *m = iomem_mapper_withOps(&fk_ops, &f);
	cr_assert_not_null(m);
	iomem_mapper_set_system(m);

	/* 5 CPU pages = 2 mapper pages of 4; the page number of the IOVA */
	cr_expect_eq(IOMapperIOVMAlloc(5), 0x40);
	cr_expect_eq(f.allocs, 1);
	cr_expect_eq(f.alloc_pages, 2, "CPU pages rounded up to the mapper's pages");
	cr_expect_eq(f.frees, 0);
	IOMapperIOVMFree(0x40, 5);
	cr_expect_eq(f.frees, 1);
	cr_expect_eq(f.free_iova, 0x40ull << cs);
	cr_expect_eq(f.free_pages, 2);
	cr_expect_eq(IOMapperIOVMAlloc(0), 0, "0 pages");
	cr_expect_eq(f.allocs, 1, "not asked for 0 pages");

	/* IOVAs that cannot be a 32-bit CPU page number: refused, given back */
	const uint64_t bad[] = { 0x40 * cpu + 8,                       /* not CPU-page aligned */
	                         (0x100000000ull << cs),               /* page number past 32 bits */
	                         0 };                                  /* page 0 */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		unsigned frees = f.frees;
		f.next = bad[i];
		cr_expect_eq(IOMapperIOVMAlloc(3), 0, "IOVA %llx accepted", (unsigned long long)bad[i]);
		cr_expect_eq(f.frees, frees + 1, "IOVA %llx not given back", (unsigned long long)bad[i]);
		cr_expect_eq(f.free_iova, bad[i]);
		cr_expect_eq(f.free_pages, 1);
	}
	/* the mapper has no space */
	f.fail = true;
	unsigned frees = f.frees;
	cr_expect_eq(IOMapperIOVMAlloc(1), 0);
	cr_expect_eq(f.frees, frees, "nothing to give back");
	f.fail = false;
	/* a mapper that reports page size 0: nothing asked */
	unsigned allocs = f.allocs;
	f.page = 0;
	cr_expect_eq(IOMapperIOVMAlloc(1), 0);
	cr_expect_eq(f.allocs, allocs);
	/* page size below the CPU's: more of its pages */
	f.page = cpu / 4;
	f.next = 0x80 * cpu;
	cr_expect_eq(IOMapperIOVMAlloc(3), 0x80);
	cr_expect_eq(f.alloc_pages, 12);
	IOMapperIOVMFree(0x80, 3);
	cr_expect_eq(f.free_pages, 12);
	/* bad frees: not passed on */
	frees = f.frees;
	IOMapperIOVMFree(0, 3);
	IOMapperIOVMFree(0x80, 0);
	cr_expect_eq(f.frees, frees);
	iomem_test_expect_reports(DBG_REPORTS(2));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMapperIOVMFree");
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);

	/* no iovaFree hook: a refused IOVA is simply dropped */
	fake_iova g = { cpu, 0x10 * cpu + 1, false, 0, 0, 0, 0, 0 };
	m = iomem_mapper_withOps(&fk_ops_nofree, &g);
	cr_assert_not_null(m);
	iomem_mapper_set_system(m);
	cr_expect_eq(IOMapperIOVMAlloc(1), 0);
	cr_expect_eq(g.allocs, 1);
	g.next = 0x10 * cpu;
	cr_expect_eq(IOMapperIOVMAlloc(1), 0x10);
	IOMapperIOVMFree(0x10, 1);           /* nowhere to give it: nothing */
	cr_expect_eq(g.frees, 0);
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
}

/* ---- the software IOMMU's iovaAlloc / iovaFree hooks ---- */

static iomem_swiommu_stats stats_of(IOMapper *m)
{
	iomem_swiommu_stats st;
	iomem_swiommu_flush_cache(m);
	cr_assert_eq(iomem_swiommu_get_stats(m, &st), kIOReturnSuccess);
	return st;
}

IOMEM_TEST(mapper_more, swiommu_iova_hooks_bad_input)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	uint64_t iova = 77, free0 = stats_of(m).iova_free_pages;
	cr_expect_eq(m->ops->iovaAlloc(m, 0, RW, &iova), kIOReturnBadArgument);
	cr_expect_eq(iova, 77);
	cr_expect_eq(m->ops->iovaAlloc(m, 1, RW, NULL), kIOReturnBadArgument);
	cr_assert_eq(m->ops->iovaAlloc(m, 2, RW, &iova), kIOReturnSuccess);
	cr_expect_eq(stats_of(m).iova_free_pages, free0 - 2);
	/* misaligned, 0 pages, outside the space: reported, ignored */
	m->ops->iovaFree(m, iova + 1, 2);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("iovaFree");
	m->ops->iovaFree(m, iova, 0);
	m->ops->iovaFree(m, 1ull << 40, 1);
	iomem_test_expect_reports(DBG_REPORTS(3));
	cr_expect_eq(stats_of(m).iova_free_pages, free0 - 2, "nothing freed by a bad call");
	m->ops->iovaFree(m, iova, 2);
	cr_expect_eq(stats_of(m).iova_free_pages, free0);
	IOMapper_release(m);
}

IOMEM_TEST(mapper_more, swiommu_iova_alloc_keeps_cpu_pages_whole)
{
	/* IOMMU pages a quarter of the CPU's: every IOVA starts a CPU page */
	iomem_swiommu_desc d;
	memset(&d, 0, sizeof d);
	d.page_size = DESC_PAGE / 4;
	IOMapper *m = iomem_swiommu_create(&d);
	cr_assert_not_null(m);
	uint64_t iova[6];
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(m->ops->iovaAlloc(m, 1 + (uint64_t)i % 3, RW, &iova[i]), kIOReturnSuccess);
		cr_expect_eq(iova[i] % DESC_PAGE, 0, "IOVA %llx not CPU-page aligned", (unsigned long long)iova[i]);
		for (int j = 0; j < i; j++)
			cr_expect_neq(iova[i], iova[j]);
	}
	for (int i = 0; i < 6; i++)
		m->ops->iovaFree(m, iova[i], 1 + (uint64_t)i % 3);
	iomem_swiommu_stats st = stats_of(m);
	cr_expect_eq(st.iova_free_pages, st.iova_size / st.page_size);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* ---- the software IOMMU over a descriptor without extents ---- */

/* a driver's own descriptor of 2 pages: the first page at 1 MiB, the second
 * (mode 0) right after it, (mode 1) in another frame at the same page
 * offset, (mode 2) in another frame at another offset, (mode 3) nowhere */
typedef struct two_pages { int mode; } two_pages;
static addr64_t tp_seg(IOMemoryDescriptor *md, IOByteCount off, IOByteCount *len, IOOptionBits o)
{
	const IOByteCount pg = DESC_PAGE;
	int mode = ((two_pages *)iomem_md_getContext(md))->mode;
	(void)o;
	if (off >= 2 * pg)
		return 0;
	if (off < pg) {
		if (len)
			*len = pg - off;
		return 0x100000 + off;
	}
	if (mode == 3)
		return 0;
	if (len)
		*len = 2 * pg - off;
	switch (mode) {
	case 0:  return 0x100000 + off;
	case 1:  return 0x400000 + (off - pg);
	default: return 0x400000 + 0x80 + (off - pg);
	}
}
static const iomem_md_ops tp_ops = { "two-pages", tp_seg, NULL, NULL, NULL, NULL, NULL, NULL };

IOMEM_TEST(mapper_more, swiommu_map_of_pieces_checks_every_run)
{
	static const IOReturn want[4] = { kIOReturnSuccess, kIOReturnSuccess, kIOReturnNotAligned, kIOReturnNotReady };
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	uint64_t free0 = stats_of(m).iova_free_pages;
	for (int mode = 0; mode < 4; mode++) {
		two_pages tp = { mode };
		IOMemoryDescriptor *md = iomem_md_withOps(&tp_ops, &tp, 2 * DESC_PAGE, kIODirectionInOut);
		cr_assert_not_null(md);
		uint64_t addr = 0, len = 0;
		/* from inside the first page, into the second */
		cr_expect_eq(IOMapper_iovmMapMemory(m, md, 0x10, 2 * DESC_PAGE - 0x20, RW, NULL, NULL, NULL, &addr, &len),
		             want[mode], "mode %d", mode);
		if (want[mode] == kIOReturnSuccess) {
			cr_expect_eq(addr & (DESC_PAGE - 1), 0x10);
			cr_expect_eq(len, 2 * DESC_PAGE);
			cr_expect_eq(IOMapper_mapToPhysicalAddress(m, addr), 0x100010);
			cr_expect_eq(IOMapper_mapToPhysicalAddress(m, addr - 0x10 + DESC_PAGE + 4),
			             (mode == 0 ? 0x100000 + DESC_PAGE : 0x400000) + 4);
			cr_expect_eq(stats_of(m).mapped_pages, 2);
			cr_expect_eq(IOMapper_iovmUnmapMemory(m, md, NULL, addr, len), kIOReturnSuccess);
		}
		iomem_swiommu_stats st = stats_of(m);
		cr_expect_eq(st.mapped_pages, 0, "mode %d: pages left mapped", mode);
		cr_expect_eq(st.iova_free_pages, free0, "mode %d: IOVA space not given back", mode);
		IOMemoryDescriptor_release(md);
	}
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* A range of more than 8 pages freed twice: the thread cache's list of
 * large ranges catches it (the small sizes: test_mapper.c). */
IOMEM_TEST(mapper_more, double_free_of_a_large_iovm_range_is_reported)
{
	if (!IOMEM__DEBUG)
		return;           /* without the debug layer: the caller's bug, not checked */
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	iomem_mapper_set_system(m);
	uint64_t total = stats_of(m).iova_free_pages;
	ppnum_t p = IOMapperIOVMAlloc(20);
	cr_assert_neq(p, 0);
	IOMapperIOVMFree(p, 20);
	iomem_test_expect_reports(0);
	IOMapperIOVMFree(p, 20);
	iomem_test_expect_reports(1);
	cr_expect(strstr(iomem_test_panic_msg, "freed twice") != NULL || strstr(iomem_test_panic_msg, "double") != NULL,
	          "report: %s", iomem_test_panic_msg);
	cr_expect_eq(stats_of(m).iova_free_pages, total, "given back once, not twice");
	/* and it is handed out once again */
	ppnum_t q = IOMapperIOVMAlloc(20), r = IOMapperIOVMAlloc(20);
	cr_assert(q != 0 && r != 0);
	cr_expect_neq(q, r);
	IOMapperIOVMFree(q, 20);
	IOMapperIOVMFree(r, 20);
	cr_expect_eq(stats_of(m).iova_free_pages, total);
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
}
