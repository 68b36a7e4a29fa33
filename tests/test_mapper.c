/* SPDX-License-Identifier: MIT */
/* tests/test_mapper.c - IOMapper (reference §4.1): the software IOMMU
 * (iovmMapMemory / iovmUnmapMemory / iovmInsert / mapToPhysicalAddress, the
 * device-side translate and its faults, IOVA exhaustion, address bits,
 * alignment, page sizes other than the CPU's, the per-thread IOVA cache)
 * and the C accessors IOMapperIOVMAlloc / IOVMFree / InsertPage /
 * InsertPPNPages with and without a system mapper. Contract violations are
 * reported only with IOMEM_DEBUG (the release preset expects none). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_map.h"
#include "iomem_dma.h"
#include "test_desc_util.h"

#include <pthread.h>

TestSuite(mapper, .fini = desc_fini);

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)
#define RW (kIODMAMapReadAccess | kIODMAMapWriteAccess)

static IOMapper *swiommu(uint64_t page, uint64_t base, uint64_t size, uint8_t bits)
{
	iomem_swiommu_desc d;
	memset(&d, 0, sizeof d);
	d.page_size = page;
	d.iova_base = base;
	d.iova_size = size;
	d.address_bits = bits;
	IOMapper *m = iomem_swiommu_create(&d);
	cr_assert_not_null(m);
	return m;
}

static iomem_swiommu_stats stats_of(IOMapper *m)
{
	iomem_swiommu_stats st;
	cr_assert_eq(iomem_swiommu_get_stats(m, &st), kIOReturnSuccess);
	return st;
}

/* All of the space is free again and nothing is mapped. */
static void expect_all_free(IOMapper *m)
{
	iomem_swiommu_flush_cache(m);
	iomem_swiommu_stats st = stats_of(m);
	cr_expect_eq(st.mapped_pages, 0, "%llu pages still mapped", (unsigned long long)st.mapped_pages);
	cr_expect_eq(st.iova_free_pages, st.iova_size / st.page_size, "free %llu of %llu pages",
	             (unsigned long long)st.iova_free_pages, (unsigned long long)(st.iova_size / st.page_size));
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 131u + seed * 7u + (i >> 9));
}

static IODMAMapSpecification spec_bits(uint8_t bits, uint64_t alignment)
{
	IODMAMapSpecification s;
	memset(&s, 0, sizeof s);
	s.numAddressBits = bits;
	s.alignment = alignment;
	return s;
}

/* A read/write buffer of @pages pages (not contiguous); with @bytes, filled
 * with pattern @seed and its bytes returned there. */
static IOBufferMemoryDescriptor *rw_buffer(size_t pages, unsigned seed, unsigned char **bytes)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(pages * DESC_PAGE, kIODirectionInOut, false);
	cr_assert_not_null(b);
	if (bytes != NULL) {
		*bytes = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		fill(*bytes, pages * DESC_PAGE, seed);
	}
	return b;
}

/* Reads @len bytes the device would see at @iova through translate, run by
 * run, and compares them with @expect. Returns the number of runs. */
static unsigned device_read_check(IOMapper *m, uint64_t iova, const unsigned char *expect, uint64_t len)
{
	unsigned runs = 0;
	uint64_t done = 0;
	while (done < len) {
		IOPhysicalAddress pa;
		uint64_t cont;
		cr_assert_eq(iomem_swiommu_translate(m, iova + done, len - done, false, &pa, &cont), kIOReturnSuccess,
		             "translate at +%llu", (unsigned long long)done);
		cr_assert(cont > 0 && cont <= len - done);
		unsigned char *buf = malloc(cont);
		cr_assert_not_null(buf);
		cr_assert(iomem__platform_phys_copy(pa, buf, cont, false));
		cr_assert_arr_eq(buf, expect + done, cont, "bytes at +%llu", (unsigned long long)done);
		free(buf);
		done += cont;
		runs++;
	}
	return runs;
}

/* ---- creation ---- */

IOMEM_TEST(mapper, create_defaults_and_bad_descriptions)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	cr_expect(iomem_swiommu_is(m));
	cr_expect_eq(IOMapper_getPageSize(m), DESC_PAGE);
	iomem_swiommu_stats st = stats_of(m);
	cr_expect_eq(st.page_size, DESC_PAGE);
	cr_expect_eq(st.iova_base, DESC_PAGE, "IOVA 0 is never handed out");
	cr_expect_eq(st.iova_base + st.iova_size, 1ull << 32);
	cr_expect_eq(st.iova_free_pages, st.iova_size / DESC_PAGE);
	cr_expect_eq(st.mapped_pages, 0);
	IOMapper_release(m);

	iomem_swiommu_desc bad[] = {
		{ 1000, 0, 0, 0 },                  /* not a power of two */
		{ 256, 0, 0, 0 },                   /* too small */
		{ 1ull << 31, 0, 0, 0 },            /* too large */
		{ 4096, 0, 0, 19 },                 /* too few address bits */
		{ 4096, 0, 0, 65 },                 /* too many */
		{ 4096, 4096 + 8, 0, 0 },           /* unaligned base */
		{ 4096, 4096, 4096 * 3 + 1, 0 },    /* unaligned size */
		{ 4096, 1ull << 32, 0, 32 },        /* base at the top */
		{ 4096, 1ull << 31, (1ull << 31) + 4096, 32 }, /* ends past 2^32 */
		{ 4096, 0, 0, 64 },                 /* 2^52 pages: too many */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_null(iomem_swiommu_create(&bad[i]), "bad description %zu accepted", i);

	/* a mapper of another kind is not a software IOMMU */
	cr_expect(!iomem_swiommu_is(NULL));
	cr_expect_eq(iomem_swiommu_get_stats(NULL, &st), kIOReturnBadArgument);
	m = iomem_swiommu_create(NULL);
	cr_expect_eq(iomem_swiommu_get_stats(m, NULL), kIOReturnBadArgument);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* ---- map / translate / unmap ---- */

IOMEM_TEST(mapper, map_translate_unmap_on_every_layout)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 3, 11);
		IOMapper *m = iomem_swiommu_create(NULL);
		unsigned char *buf = IOMallocAligned(6 * DESC_PAGE, DESC_PAGE);
		cr_assert_not_null(buf);
		fill(buf, 6 * DESC_PAGE, (unsigned)l);
		unsigned char *p = buf + 100;
		IOByteCount len = 5 * DESC_PAGE - 50;
		IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(p, len, kIODirectionInOut);
		cr_assert_not_null(md);
		IODMAMapSpecification spec = spec_bits(32, 0);
		uint64_t addr = 0, maplen = 0;
		cr_assert_eq(IOMapper_iovmMapMemory(m, md, 0, len, RW, &spec, NULL, NULL, &addr, &maplen),
		             kIOReturnSuccess, "layout %s", iomem_posix_layout_name(desc_layouts[l]));
		cr_expect_eq(addr & (DESC_PAGE - 1), 100, "page offset kept");
		cr_expect_eq(maplen % DESC_PAGE, 0);
		cr_expect_geq(maplen, len + 100);
		cr_expect_leq(addr + len, 1ull << 32);
		iomem_swiommu_stats st = stats_of(m);
		cr_expect_eq(st.mapped_pages, 6);   /* 100 + 5 pages - 50 spans 6 pages */
		cr_expect_eq(st.maps, 1);
		/* every byte the CPU reaches through the descriptor, the device reaches
		 * through one contiguous IOVA run */
		for (IOByteCount off = 0; off < len; off += 997) {
			IOByteCount seg;
			addr64_t cpu = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
			cr_expect_eq(IOMapper_mapToPhysicalAddress(m, addr + off), cpu);
		}
		unsigned runs = device_read_check(m, addr, p, len);
		if (desc_layouts[l] == IOMEM_POSIX_LAYOUT_SCATTERED)
			cr_expect_eq(runs, 6);
		else if (desc_layouts[l] == IOMEM_POSIX_LAYOUT_CONTIGUOUS)
			cr_expect_eq(runs, 1);
		/* write access granted */
		IOPhysicalAddress pa;
		uint64_t cont;
		cr_expect_eq(iomem_swiommu_translate(m, addr + len - 1, 1, true, &pa, &cont), kIOReturnSuccess);
		cr_expect_eq(cont, 1);
		cr_expect_eq(iomem_swiommu_faults(m, NULL), 0);

		cr_assert_eq(IOMapper_iovmUnmapMemory(m, md, NULL, addr, maplen), kIOReturnSuccess);
		/* invalidated: every page now faults */
		for (IOByteCount off = 0; off < len; off += DESC_PAGE) {
			cr_expect_eq(iomem_swiommu_translate(m, addr + off, 4, false, &pa, &cont), kIOReturnVMError);
			cr_expect_eq(pa, 0);
			cr_expect_eq(cont, 0);
		}
		iomem_swiommu_fault f;
		cr_expect_eq(iomem_swiommu_faults(m, &f), 5);
		cr_expect_eq(f.reason, IOMEM_SWIOMMU_FAULT_UNMAPPED);
		cr_expect_eq(f.iova, addr + 4 * DESC_PAGE);
		cr_expect(!f.write);
		cr_expect_eq(IOMapper_mapToPhysicalAddress(m, addr), 0);
		st = stats_of(m);
		cr_expect_eq(st.unmaps, 1);
		cr_expect_eq(st.faults, 5);
		expect_all_free(m);
		IOMemoryDescriptor_release(md);
		IOFreeAligned(buf, 6 * DESC_PAGE);
		IOMapper_release(m);
	}
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, sub_range_of_a_buffer)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOMapper *m = iomem_swiommu_create(NULL);
	unsigned char *p;
	IOBufferMemoryDescriptor *bmd = rw_buffer(8, 5, &p);
	uint64_t addr, maplen;
	IOByteCount off = 3 * DESC_PAGE - 7, len = 2 * DESC_PAGE + 20;
	cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, off, len, RW, NULL, NULL, NULL, &addr, &maplen), kIOReturnSuccess);
	cr_expect_eq(addr & (DESC_PAGE - 1), DESC_PAGE - 7);
	cr_expect_eq(maplen, 4 * DESC_PAGE);
	cr_expect_eq(device_read_check(m, addr, p + off, len), 4);
	cr_expect_eq(stats_of(m).mapped_pages, 4);
	/* the bytes right before and after the range are not the device's */
	IOPhysicalAddress pa;
	cr_expect_eq(iomem_swiommu_translate(m, addr + len + DESC_PAGE, 1, false, &pa, NULL), kIOReturnVMError);
	/* bad ranges (the IOMapper wrapper's checks) */
	cr_expect_eq(IOMapper_iovmMapMemory(m, bmd, 8 * DESC_PAGE, 1, RW, NULL, NULL, NULL, &addr, &maplen),
	             kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmMapMemory(m, bmd, 0, 0, RW, NULL, NULL, NULL, &addr, &maplen), kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmMapMemory(m, bmd, 0, 1, RW, NULL, NULL, NULL, NULL, &maplen), kIOReturnBadArgument);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, addr, maplen), kIOReturnSuccess);
	expect_all_free(m);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* Kinds without extents go through getPhysicalSegment (merged runs). */
IOMEM_TEST(mapper, sub_and_multi_descriptors)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOMapper *m = iomem_swiommu_create(NULL);
	unsigned char *pa_, *pb;
	IOBufferMemoryDescriptor *a = rw_buffer(6, 21, &pa_), *b = rw_buffer(2, 22, &pb);
	IOSubMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(a, DESC_PAGE + 100, 3 * DESC_PAGE,
	                                                                kIODirectionInOut);
	cr_assert_not_null(sub);
	cr_assert_eq(IOMemoryDescriptor_prepare(sub, kIODirectionNone), kIOReturnSuccess);
	uint64_t addr, len;
	cr_assert_eq(IOMapper_iovmMapMemory(m, sub, 0, 3 * DESC_PAGE, RW, NULL, NULL, NULL, &addr, &len),
	             kIOReturnSuccess);
	cr_expect_eq(addr & (DESC_PAGE - 1), 100);
	cr_expect_eq(device_read_check(m, addr, pa_ + DESC_PAGE + 100, 3 * DESC_PAGE), 4);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, sub, NULL, addr, len), kIOReturnSuccess);
	cr_assert_eq(IOMemoryDescriptor_complete(sub, kIODirectionNone), kIOReturnSuccess);

	IOMemoryDescriptor *kids[2] = { a, b };
	IOMultiMemoryDescriptor *multi = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
	cr_assert_not_null(multi);
	cr_assert_eq(IOMemoryDescriptor_prepare(multi, kIODirectionNone), kIOReturnSuccess);
	cr_assert_eq(IOMapper_iovmMapMemory(m, multi, 5 * DESC_PAGE, 3 * DESC_PAGE, RW, NULL, NULL, NULL, &addr, &len),
	             kIOReturnSuccess);
	cr_expect_eq(len, 3 * DESC_PAGE);
	device_read_check(m, addr, pa_ + 5 * DESC_PAGE, DESC_PAGE);
	device_read_check(m, addr + DESC_PAGE, pb, 2 * DESC_PAGE);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, multi, NULL, addr, len), kIOReturnSuccess);
	cr_assert_eq(IOMemoryDescriptor_complete(multi, kIODirectionNone), kIOReturnSuccess);
	expect_all_free(m);
	IOMemoryDescriptor_release(multi);
	IOMemoryDescriptor_release(sub);
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(b);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, read_only_mapping_faults_on_write)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(2 * DESC_PAGE, kIODirectionOut, false);
	cr_assert_not_null(bmd);
	uint64_t addr, maplen;
	cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 0, 2 * DESC_PAGE, kIODMAMapReadAccess, NULL, NULL, NULL, &addr,
	                                    &maplen), kIOReturnSuccess);
	IOPhysicalAddress pa;
	uint64_t cont;
	cr_expect_eq(iomem_swiommu_translate(m, addr + 10, 2 * DESC_PAGE - 10, false, &pa, &cont), kIOReturnSuccess);
	cr_expect_eq(pa, IOMemoryDescriptor_getPhysicalSegment(bmd, 10, NULL, 0));
	cr_expect_eq(iomem_swiommu_translate(m, addr + 10, 4, true, &pa, &cont), kIOReturnNotWritable);
	cr_expect_eq(pa, 0);
	cr_expect_eq(cont, 0);
	iomem_swiommu_fault f;
	cr_expect_eq(iomem_swiommu_faults(m, &f), 1);
	cr_expect_eq(f.reason, IOMEM_SWIOMMU_FAULT_READONLY);
	cr_expect(f.write);
	cr_expect_eq(f.iova, addr + 10);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, addr, maplen), kIOReturnSuccess);
	cr_expect_eq(iomem_swiommu_translate(m, addr + 10, 4, true, &pa, &cont), kIOReturnVMError);
	cr_expect_eq(iomem_swiommu_faults(m, &f), 2);
	cr_expect_eq(f.reason, IOMEM_SWIOMMU_FAULT_UNMAPPED);
	expect_all_free(m);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, translate_bad_arguments_are_not_faults)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	IOPhysicalAddress pa = 1;
	uint64_t cont = 1;
	cr_expect_eq(iomem_swiommu_translate(NULL, DESC_PAGE, 1, false, &pa, &cont), kIOReturnBadArgument);
	cr_expect_eq(pa, 0);
	cr_expect_eq(cont, 0);
	cr_expect_eq(iomem_swiommu_translate(m, DESC_PAGE, 1, false, NULL, &cont), kIOReturnBadArgument);
	cr_expect_eq(iomem_swiommu_translate(m, DESC_PAGE, 0, false, &pa, &cont), kIOReturnBadArgument);
	cr_expect_eq(iomem_swiommu_faults(m, NULL), 0);
	cr_expect_eq(iomem_swiommu_faults(NULL, NULL), 0);
	/* outside the space: a fault, not a crash */
	cr_expect_eq(iomem_swiommu_translate(m, 0, 1, false, &pa, NULL), kIOReturnVMError);
	cr_expect_eq(iomem_swiommu_translate(m, ~0ull, 1, true, &pa, NULL), kIOReturnVMError);
	cr_expect_eq(iomem_swiommu_faults(m, NULL), 2);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, ~0ull), 0);
	cr_expect_eq(IOMapper_iovmUnmapMemory(m, NULL, NULL, ~0ull - DESC_PAGE, DESC_PAGE), kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmUnmapMemory(m, NULL, NULL, 0, DESC_PAGE), kIOReturnBadArgument);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* A minimal foreign mapper: not a software IOMMU. */
static uint64_t fake_page(IOMapper *m) { (void)m; return 4096; }
static IOReturn fake_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t o, uint64_t l, uint32_t opt,
                         const IODMAMapSpecification *s, IODMACommand *c, const void *pl, uint64_t *a, uint64_t *ml)
{
	(void)m; (void)md; (void)o; (void)l; (void)opt; (void)s; (void)c; (void)pl; (void)a; (void)ml;
	return kIOReturnUnsupported;
}
static IOReturn fake_unmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *c, uint64_t a, uint64_t l)
{
	(void)m; (void)md; (void)c; (void)a; (void)l;
	return kIOReturnUnsupported;
}
static uint64_t fake_to_phys(IOMapper *m, uint64_t a) { (void)m; return a; }

IOMEM_TEST(mapper, foreign_mapper_is_not_a_swiommu)
{
	static const iomem_mapper_ops ops = { "fake", fake_page, fake_map, fake_unmap, NULL, fake_to_phys,
	                                      NULL, NULL, NULL, NULL, NULL, NULL };
	IOMapper *m = iomem_mapper_withOps(&ops, NULL);
	cr_assert_not_null(m);
	IOPhysicalAddress pa;
	iomem_swiommu_stats st;
	cr_expect(!iomem_swiommu_is(m));
	cr_expect_eq(iomem_swiommu_translate(m, 4096, 1, false, &pa, NULL), kIOReturnBadArgument);
	cr_expect_eq(iomem_swiommu_faults(m, NULL), 0);
	cr_expect_eq(iomem_swiommu_get_stats(m, &st), kIOReturnBadArgument);
	iomem_swiommu_flush_cache(m);                 /* a no-op */
	/* as the system mapper without iovaAlloc/iovmInsert: the accessors fail */
	iomem_mapper_set_system(m);
	cr_expect_eq(IOMapperIOVMAlloc(1), 0);
	cr_expect_eq(IOMapperInsertPage(5, 0, 9), 0, "insert refused");
	IOMapperIOVMFree(5, 1);                        /* no iovaFree: nothing */
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* ---- IOVA space: exhaustion, address bits, alignment ---- */

IOMEM_TEST(mapper, iova_exhaustion_leaks_nothing)
{
	IOMapper *m = swiommu(0, 0, 16 * DESC_PAGE, 0);
	IOBufferMemoryDescriptor *a = rw_buffer(10, 0, NULL), *b = rw_buffer(10, 0, NULL);
	uint64_t aa, al, ba, bl;
	cr_assert_eq(IOMapper_iovmMapMemory(m, a, 0, 10 * DESC_PAGE, RW, NULL, NULL, NULL, &aa, &al), kIOReturnSuccess);
	cr_expect_eq(IOMapper_iovmMapMemory(m, b, 0, 10 * DESC_PAGE, RW, NULL, NULL, NULL, &ba, &bl), kIOReturnNoSpace);
	cr_expect_eq(stats_of(m).mapped_pages, 10, "the failed map left nothing mapped");
	cr_expect_eq(stats_of(m).iova_free_pages, 6);
	cr_assert_eq(IOMapper_iovmMapMemory(m, b, 0, 6 * DESC_PAGE, RW, NULL, NULL, NULL, &ba, &bl), kIOReturnSuccess);
	cr_expect_eq(stats_of(m).iova_free_pages, 0);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, a, NULL, aa, al), kIOReturnSuccess);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, b, NULL, ba, bl), kIOReturnSuccess);
	expect_all_free(m);

	/* descriptor-less IOVA space, one page at a time, down to nothing */
	uint64_t iova[17];
	int n = 0;
	while (n < 17 && m->ops->iovaAlloc(m, 1, RW, &iova[n]) == kIOReturnSuccess)
		n++;
	cr_expect_eq(n, 16);
	cr_expect_eq(m->ops->iovaAlloc(m, 1, RW, &iova[16]), kIOReturnNoSpace);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			cr_assert_neq(iova[i], iova[j]);
	for (int i = 0; i < n; i++)
		m->ops->iovaFree(m, iova[i], 1);
	/* a request for the whole space finds it, cached ranges included */
	uint64_t all;
	cr_expect_eq(m->ops->iovaAlloc(m, 16, RW, &all), kIOReturnSuccess);
	m->ops->iovaFree(m, all, 16);
	cr_expect_eq(m->ops->iovaAlloc(m, 17, RW, &all), kIOReturnNoSpace);
	expect_all_free(m);
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(b);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, address_bits_are_respected)
{
	/* a space straddling 4 GiB: 4 pages below, 60 above */
	IOMapper *m = swiommu(0, (1ull << 32) - 4 * DESC_PAGE, 64 * DESC_PAGE, 40);
	IOBufferMemoryDescriptor *bmd = rw_buffer(8, 0, NULL);
	IODMAMapSpecification s32 = spec_bits(32, 0), s0 = spec_bits(0, 0), s33 = spec_bits(33, 0);
	uint64_t addr, maplen, a2, l2;
	cr_expect_eq(IOMapper_iovmMapMemory(m, bmd, 0, 8 * DESC_PAGE, RW, &s32, NULL, NULL, &addr, &maplen),
	             kIOReturnNoSpace);
	cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 0, 2 * DESC_PAGE, RW, &s32, NULL, NULL, &addr, &maplen),
	             kIOReturnSuccess);
	cr_expect_leq(addr + maplen, 1ull << 32);
	cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 0, 8 * DESC_PAGE, RW, &s0, NULL, NULL, &a2, &l2), kIOReturnSuccess);
	cr_expect_geq(a2, (1ull << 32) - 4 * DESC_PAGE);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, a2, l2), kIOReturnSuccess);
	cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 0, 8 * DESC_PAGE, RW, &s33, NULL, NULL, &a2, &l2), kIOReturnSuccess);
	cr_expect_leq(a2 + l2, 1ull << 33);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, a2, l2), kIOReturnSuccess);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, addr, maplen), kIOReturnSuccess);
	/* fewer bits than the space's start: nothing fits */
	IODMAMapSpecification s20 = spec_bits(20, 0);
	cr_expect_eq(IOMapper_iovmMapMemory(m, bmd, 0, DESC_PAGE, RW, &s20, NULL, NULL, &addr, &maplen),
	             kIOReturnNoSpace);
	expect_all_free(m);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, alignment_of_the_first_page)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	IOBufferMemoryDescriptor *bmd = rw_buffer(3, 0, NULL);
	uint64_t addr[8], len[8];
	for (int i = 0; i < 8; i++) {
		IODMAMapSpecification s = spec_bits(0, 16 * DESC_PAGE);
		cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 0, 3 * DESC_PAGE, RW, &s, NULL, NULL, &addr[i], &len[i]),
		             kIOReturnSuccess);
		cr_expect_eq(addr[i] % (16 * DESC_PAGE), 0, "IOVA %llx", (unsigned long long)addr[i]);
	}
	IODMAMapSpecification bad = spec_bits(0, 3 * DESC_PAGE);
	uint64_t a, l;
	cr_expect_eq(IOMapper_iovmMapMemory(m, bmd, 0, DESC_PAGE, RW, &bad, NULL, NULL, &a, &l), kIOReturnBadArgument);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, addr[i], len[i]), kIOReturnSuccess);
	expect_all_free(m);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, runs_that_do_not_tile_pages_are_refused)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	IOAddressRange r[2] = { { 0x40000000ull, DESC_PAGE / 2 }, { 0x50000000ull + 100, DESC_PAGE } };
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionInOut, NULL);
	cr_assert_not_null(md);
	uint64_t a, l;
	cr_expect_eq(IOMapper_iovmMapMemory(m, md, 0, IOMemoryDescriptor_getLength(md), RW, NULL, NULL, NULL, &a, &l),
	             kIOReturnNotAligned);
	expect_all_free(m);
	/* same offsets in their pages, but the second piece starts inside the
	 * first one's page on another frame: that page cannot hold both */
	IOAddressRange shared[2] = { { 0x40000000ull, DESC_PAGE / 2 }, { 0x50000000ull + DESC_PAGE / 2, DESC_PAGE } };
	IOMemoryDescriptor *md3 = IOMemoryDescriptor_withAddressRanges(shared, 2, kIODirectionInOut, NULL);
	cr_assert_not_null(md3);
	cr_expect_eq(IOMapper_iovmMapMemory(m, md3, 0, IOMemoryDescriptor_getLength(md3), RW, NULL, NULL, NULL, &a, &l),
	             kIOReturnNotAligned);
	IOMemoryDescriptor_release(md3);
	/* a piece that continues the previous one physically may share its page */
	IOAddressRange cont2[2] = { { 0x40000000ull, DESC_PAGE / 2 }, { 0x40000000ull + DESC_PAGE / 2, DESC_PAGE } };
	md3 = IOMemoryDescriptor_withAddressRanges(cont2, 2, kIODirectionInOut, NULL);
	cr_assert_not_null(md3);
	cr_assert_eq(IOMapper_iovmMapMemory(m, md3, 0, IOMemoryDescriptor_getLength(md3), RW, NULL, NULL, NULL, &a, &l),
	             kIOReturnSuccess);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, a + DESC_PAGE + 5), 0x40000000ull + DESC_PAGE + 5);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, md3, NULL, a, l), kIOReturnSuccess);
	IOMemoryDescriptor_release(md3);
	expect_all_free(m);
	/* page-aligned pieces tile: accepted, and the IOVA run joins them */
	IOAddressRange ok[2] = { { 0x40000000ull + 100, DESC_PAGE - 100 }, { 0x50000000ull, DESC_PAGE + 8 } };
	IOMemoryDescriptor *md2 = IOMemoryDescriptor_withAddressRanges(ok, 2, kIODirectionInOut, NULL);
	cr_assert_not_null(md2);
	cr_assert_eq(IOMapper_iovmMapMemory(m, md2, 0, 2 * DESC_PAGE + 8 - 100, RW, NULL, NULL, NULL, &a, &l),
	             kIOReturnSuccess);
	cr_expect_eq(l, 3 * DESC_PAGE);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, a), 0x40000000ull + 100);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, a + DESC_PAGE - 100), 0x50000000ull);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, a + 2 * DESC_PAGE - 100 + 7), 0x50000000ull + DESC_PAGE + 7);
	IOPhysicalAddress pa;
	uint64_t cont;
	cr_expect_eq(iomem_swiommu_translate(m, a, 1ull << 20, false, &pa, &cont), kIOReturnSuccess);
	cr_expect_eq(cont, DESC_PAGE - 100, "a run ends where the frames stop being contiguous");
	cr_expect_eq(iomem_swiommu_translate(m, a + DESC_PAGE - 100, 1ull << 20, true, &pa, &cont), kIOReturnSuccess);
	cr_expect_eq(cont, 2 * DESC_PAGE, "to the end of the mapping");
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, md2, NULL, a, l), kIOReturnSuccess);
	expect_all_free(m);
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_release(md2);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, unprepared_descriptor_is_not_ready)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	unsigned char *buf = IOMallocAligned(2 * DESC_PAGE, DESC_PAGE);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 2 * DESC_PAGE, kIODirectionInOut,
	                                                             kernel_task);
	cr_assert_not_null(md);
	uint64_t a, l;
	cr_expect_eq(IOMapper_iovmMapMemory(m, md, 0, 2 * DESC_PAGE, RW, NULL, NULL, NULL, &a, &l), kIOReturnNotReady);
	/* (the descriptor layer reports the caller's unprepared descriptor) */
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("not prepared");
	expect_all_free(m);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	cr_assert_eq(IOMapper_iovmMapMemory(m, md, 0, 2 * DESC_PAGE, RW, NULL, NULL, NULL, &a, &l), kIOReturnSuccess);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, md, NULL, a, l), kIOReturnSuccess);
	cr_assert_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	expect_all_free(m);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, 2 * DESC_PAGE);
	IOMapper_release(m);
	iomem_test_expect_reports(DBG_REPORTS(1));
}

/* ---- IOMMU pages other than the CPU's ---- */

IOMEM_TEST(mapper, smaller_iommu_pages)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOMapper *m = swiommu(1024, 0, 0, 0);
	cr_expect_eq(IOMapper_getPageSize(m), 1024);
	unsigned char *p;
	IOBufferMemoryDescriptor *bmd = rw_buffer(3, 9, &p);
	uint64_t a, l;
	cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 1500, 2 * DESC_PAGE, RW, NULL, NULL, NULL, &a, &l), kIOReturnSuccess);
	cr_expect_eq(a & 1023, 1500 & 1023);
	cr_expect_eq(l % 1024, 0);
	device_read_check(m, a, p + 1500, 2 * DESC_PAGE);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, a, l), kIOReturnSuccess);
	expect_all_free(m);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, larger_iommu_pages_need_contiguous_frames)
{
	uint64_t big = 4 * DESC_PAGE;
	IOMapper *m = swiommu(big, 0, 0, 0);
	/* physically contiguous and aligned to the IOMMU page: one run */
	IOBufferMemoryDescriptor *c = IOBufferMemoryDescriptor_withCapacity(8 * DESC_PAGE, kIODirectionInOut, true);
	cr_assert_not_null(c);
	unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(c);
	fill(p, 8 * DESC_PAGE, 3);
	uint64_t a, l;
	cr_assert_eq(IOMapper_iovmMapMemory(m, c, 100, 6 * DESC_PAGE, RW, NULL, NULL, NULL, &a, &l), kIOReturnSuccess);
	cr_expect_eq(a & (big - 1), (IOMemoryDescriptor_getPhysicalSegment(c, 100, NULL, 0)) & (big - 1));
	cr_expect_eq(device_read_check(m, a, p + 100, 6 * DESC_PAGE), 1);
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, c, NULL, a, l), kIOReturnSuccess);
	/* scattered CPU pages cannot fill a larger IOMMU page */
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOBufferMemoryDescriptor *s = rw_buffer(8, 0, NULL);
	cr_expect_eq(IOMapper_iovmMapMemory(m, s, 0, 8 * DESC_PAGE, RW, NULL, NULL, NULL, &a, &l), kIOReturnNotAligned);
	expect_all_free(m);
	IOMemoryDescriptor_release(c);
	IOMemoryDescriptor_release(s);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* ---- iovmInsert ---- */

IOMEM_TEST(mapper, iovm_insert)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	uint64_t iova;
	cr_assert_eq(m->ops->iovaAlloc(m, 4, RW, &iova), kIOReturnSuccess);
	cr_expect_eq(IOMapper_iovmInsert(m, RW, iova, DESC_PAGE, 0x12340000ull, 2 * DESC_PAGE), kIOReturnSuccess);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, iova + DESC_PAGE + 5), 0x12340000ull + 5);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, iova + 3 * DESC_PAGE - 1), 0x12340000ull + 2 * DESC_PAGE - 1);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, iova), 0, "page 0 of the range not inserted");
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, iova + 3 * DESC_PAGE), 0);
	IOPhysicalAddress pa;
	uint64_t cont;
	cr_expect_eq(iomem_swiommu_translate(m, iova + DESC_PAGE, 8 * DESC_PAGE, true, &pa, &cont), kIOReturnSuccess);
	cr_expect_eq(pa, 0x12340000ull);
	cr_expect_eq(cont, 2 * DESC_PAGE);
	/* read-only insert */
	cr_expect_eq(IOMapper_iovmInsert(m, kIODMAMapReadAccess, iova, 3 * DESC_PAGE, 0x99990000ull, DESC_PAGE),
	             kIOReturnSuccess);
	cr_expect_eq(iomem_swiommu_translate(m, iova + 3 * DESC_PAGE, 1, true, &pa, &cont), kIOReturnNotWritable);
	cr_expect_eq(iomem_swiommu_translate(m, iova + 3 * DESC_PAGE, 1, false, &pa, &cont), kIOReturnSuccess);
	cr_expect_eq(pa, 0x99990000ull);
	/* bad inserts */
	cr_expect_eq(IOMapper_iovmInsert(m, RW, iova, 0, 0x12340000ull + 8, DESC_PAGE), kIOReturnNotAligned);
	cr_expect_eq(IOMapper_iovmInsert(m, RW, iova, 0, 0x12340000ull, 0), kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmInsert(m, RW, 1ull << 32, 0, 0x12340000ull, DESC_PAGE), kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmInsert(m, RW, ~0ull - DESC_PAGE + 1, DESC_PAGE, 0, DESC_PAGE), kIOReturnBadArgument);
	cr_expect_eq(IOMapper_iovmInsert(NULL, RW, iova, 0, 0, DESC_PAGE), kIOReturnBadArgument);
	cr_expect_eq(stats_of(m).mapped_pages, 3);
	/* freeing the space unmaps what was inserted */
	m->ops->iovaFree(m, iova, 4);
	cr_expect_eq(iomem_swiommu_translate(m, iova + DESC_PAGE, 1, false, &pa, &cont), kIOReturnVMError);
	expect_all_free(m);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* ---- concurrency: translate from another thread ---- */

struct xlate_ctx {
	IOMapper *m;
	uint64_t iova;
	volatile int stop;
	unsigned long ok, faults;
};

static void *xlate_thread(void *arg)
{
	struct xlate_ctx *c = arg;
	while (!c->stop) {
		IOPhysicalAddress pa;
		uint64_t cont;
		IOReturn r = iomem_swiommu_translate(c->m, __atomic_load_n(&c->iova, __ATOMIC_RELAXED), 64, false, &pa, &cont);
		if (r == kIOReturnSuccess)
			c->ok++;
		else
			c->faults++;
	}
	return NULL;
}

IOMEM_TEST(mapper, translate_races_map_and_unmap)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	IOBufferMemoryDescriptor *bmd = rw_buffer(4, 0, NULL);
	struct xlate_ctx c = { m, DESC_PAGE, 0, 0, 0 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, xlate_thread, &c), 0);
	for (int i = 0; i < 2000; i++) {
		uint64_t a, l;
		cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 0, 4 * DESC_PAGE, RW, NULL, NULL, NULL, &a, &l), kIOReturnSuccess);
		__atomic_store_n(&c.iova, a + (uint64_t)(i % 4) * DESC_PAGE, __ATOMIC_RELAXED);
		cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, a, l), kIOReturnSuccess);
	}
	c.stop = 1;
	pthread_join(t, NULL);
	cr_expect_eq(iomem_swiommu_faults(m, NULL), c.faults, "every failed translate is a counted fault");
	expect_all_free(m);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* ---- the C accessors ---- */

IOMEM_TEST(mapper, accessors_without_a_system_mapper_are_identity)
{
	iomem_mapper_set_system(NULL);
	cr_expect_null(iomem_mapper_copy_system());
	cr_expect_eq(IOMapperIOVMAlloc(4), 0);
	IOMapperIOVMFree(123, 4);
	IOMapperIOVMFree(0, 0);
	cr_expect_eq(IOMapperInsertPage(5, 3, 0x4242), 0x4242);
	cr_expect_eq(IOMapperInsertPage(0, 0, 77), 77, "no mapper: no panic either");
	ppnum_t list[2] = { 1, 2 };
	IOMapperInsertPPNPages(5, 0, list, 2);
	IOMapperInsertPPNPages(0, 0, NULL, 2);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, accessors_with_a_system_mapper)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	iomem_mapper_set_system(m);
	IOMapper *c = iomem_mapper_copy_system();
	cr_expect_eq(c, m);
	IOMapper_release(c);
	uint64_t total = stats_of(m).iova_free_pages;

	ppnum_t p = IOMapperIOVMAlloc(4);
	cr_assert_neq(p, 0);
	cr_expect_eq(IOMapperInsertPage(p, 1, 0x5000), p + 1);
	IOPhysicalAddress pa;
	uint64_t cont;
	cr_expect_eq(iomem_swiommu_translate(m, ((uint64_t)p + 1) * DESC_PAGE + 8, 4, true, &pa, &cont), kIOReturnSuccess);
	cr_expect_eq(pa, 0x5000ull * DESC_PAGE + 8);
	cr_expect_eq(iomem_swiommu_translate(m, (uint64_t)p * DESC_PAGE, 4, false, &pa, &cont), kIOReturnVMError,
	             "allocated but not inserted");
	ppnum_t list[3] = { 0x7000, 0x7001, 0x9000 };
	IOMapperInsertPPNPages(p, 1, list, 3);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(IOMapper_mapToPhysicalAddress(m, ((uint64_t)p + 1 + (uint64_t)i) * DESC_PAGE),
		             (uint64_t)list[i] * DESC_PAGE);
	cr_expect_eq(iomem_swiommu_translate(m, ((uint64_t)p + 1) * DESC_PAGE, 3 * DESC_PAGE, false, &pa, &cont),
	             kIOReturnSuccess);
	cr_expect_eq(cont, 2 * DESC_PAGE);
	cr_expect_eq(stats_of(m).mapped_pages, 3);
	IOMapperIOVMFree(p, 4);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(iomem_swiommu_translate(m, ((uint64_t)p + (uint64_t)i) * DESC_PAGE, 1, false, &pa, &cont),
		             kIOReturnVMError, "page %d still mapped after IOMapperIOVMFree", i);
	cr_expect_eq(stats_of(m).mapped_pages, 0);

	/* many at once: distinct, then all back */
	ppnum_t many[100];
	for (int i = 0; i < 100; i++) {
		many[i] = IOMapperIOVMAlloc(1u + (unsigned)(i % 9));
		cr_assert_neq(many[i], 0);
		for (int j = 0; j < i; j++)
			cr_assert(many[i] + (unsigned)(i % 9) < many[j] || many[j] + (unsigned)(j % 9) < many[i],
			          "ranges %d and %d overlap", i, j);
	}
	for (int i = 0; i < 100; i++)
		IOMapperIOVMFree(many[i], 1u + (unsigned)(i % 9));
	cr_expect_eq(IOMapperIOVMAlloc(0), 0);
	iomem_swiommu_flush_cache(m);
	cr_expect_eq(stats_of(m).iova_free_pages, total);
	expect_all_free(m);
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, accessors_bad_inputs)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	iomem_mapper_set_system(m);
	cr_expect_eq(IOMapperInsertPage(0, 1, 0x5000), 0);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMapperInsertPage");
	IOMapperIOVMFree(0, 1);
	iomem_test_expect_reports(DBG_REPORTS(2));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMapperIOVMFree");
	IOMapperInsertPPNPages(0, 0, NULL, 1);
	iomem_test_expect_reports(DBG_REPORTS(3));
	IOMapperIOVMFree(0x7FFFFFFF, 1);                /* outside the space */
	iomem_test_expect_reports(DBG_REPORTS(4));
	cr_expect_eq(IOMapperInsertPage(0xFFFFFFFF, 1, 1), 0, "page number past 32 bits");
	cr_expect_eq(IOMapperInsertPage(0x7FFFFFFF, 0, 1), 0, "outside the space: refused");
	ppnum_t one = 1;
	IOMapperInsertPPNPages(0x7FFFFFFF, 0, &one, 1);
	iomem_test_expect_reports(DBG_REPORTS(5));
	expect_all_free(m);
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
}

IOMEM_TEST(mapper, iovm_alloc_page_numbers_must_fit_32_bits)
{
	/* an IOVA space wholly above 2^44 bytes: page numbers >= 2^32 */
	IOMapper *m = swiommu(0, 1ull << 46, 1024 * DESC_PAGE, 48);
	iomem_mapper_set_system(m);
	uint64_t before = stats_of(m).iova_free_pages;
	cr_expect_eq(IOMapperIOVMAlloc(1), 0);
	cr_expect_eq(IOMapperIOVMAlloc(20), 0);
	iomem_swiommu_flush_cache(m);
	cr_expect_eq(stats_of(m).iova_free_pages, before, "the space was given back");
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, iovm_alloc_with_smaller_iommu_pages)
{
	IOMapper *m = swiommu(1024, 0, 0, 0);
	iomem_mapper_set_system(m);
	ppnum_t p = IOMapperIOVMAlloc(2);
	cr_assert_neq(p, 0);
	cr_expect_eq(IOMapperInsertPage(p, 1, 0x300), p + 1);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, ((uint64_t)p + 1) * DESC_PAGE + DESC_PAGE - 1),
	             0x300ull * DESC_PAGE + DESC_PAGE - 1, "the whole CPU page is mapped");
	cr_expect_eq(stats_of(m).mapped_pages, DESC_PAGE / 1024);
	IOMapperIOVMFree(p, 2);
	expect_all_free(m);
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* The per-thread IOVA cache goes back to the IOMMU when its thread exits. */
static void *alloc_free_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 50; i++) {
		ppnum_t a = IOMapperIOVMAlloc(1), b = IOMapperIOVMAlloc(3);
		if (a == 0 || b == 0)
			return (void *)1;
		IOMapperIOVMFree(b, 3);
		IOMapperIOVMFree(a, 1);
	}
	for (int i = 0; i < 40; i++) {     /* more than the cache holds */
		ppnum_t x = IOMapperIOVMAlloc(2);
		if (x == 0)
			return (void *)1;
		IOMapperIOVMFree(x, 2);
	}
	return NULL;
}

IOMEM_TEST(mapper, thread_caches_return_at_thread_exit)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	iomem_mapper_set_system(m);
	uint64_t total = stats_of(m).iova_free_pages;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, alloc_free_thread, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_expect_null(r);
	}
	cr_expect_eq(stats_of(m).iova_free_pages, total, "a thread's cached ranges were lost at its exit");
	/* the same with a second IOMMU, released while the thread still uses it */
	IOMapper *m2 = iomem_swiommu_create(NULL);
	iomem_mapper_set_system(m2);
	IOMapper_release(m2);
	cr_assert_eq(pthread_create(&t[0], NULL, alloc_free_thread, NULL), 0);
	pthread_join(t[0], NULL);
	iomem_mapper_set_system(NULL);                 /* frees m2 */
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, double_iovm_free_is_reported)
{
	/* without the debug layer a double free is the caller's bug, handed out
	 * twice later (as with any magazine cache): only the report is tested */
	if (!IOMEM__DEBUG)
		return;
	IOMapper *m = iomem_swiommu_create(NULL);
	iomem_mapper_set_system(m);
	ppnum_t p = IOMapperIOVMAlloc(2);
	cr_assert_neq(p, 0);
	IOMapperIOVMFree(p, 2);
	IOMapperIOVMFree(p, 2);
	iomem_test_expect_reports(1);
	/* the thread cache's check, or the range allocator's (no cache) */
	cr_expect(strstr(iomem_test_panic_msg, "freed twice") != NULL || strstr(iomem_test_panic_msg, "double") != NULL,
	          "report: %s", iomem_test_panic_msg);
	expect_all_free(m);
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
}

/* ---- IODMACommand through the software IOMMU (reference §2.1) ---- */

/* Generates every segment of @cmd; returns their count. */
static unsigned gen_all(IODMACommand *cmd, IODMACommand_Segment64 *seg, unsigned max)
{
	UInt64 off = 0;
	unsigned total = 0;
	for (;;) {
		UInt32 n = max - total;
		IOReturn r = IODMACommand_gen64IOVMSegments(cmd, &off, seg + total, &n);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess, "%s", IOReturnString(r));
		total += n;
		if (total == max)
			break;
	}
	return total;
}

IOMEM_TEST(mapper, dmacommand_mapped_emits_iovas)
{
	static const iomem_posix_layout layouts[] = { IOMEM_POSIX_LAYOUT_SCATTERED, IOMEM_POSIX_LAYOUT_RUNS,
	                                              IOMEM_POSIX_LAYOUT_HIGH };
	for (int l = 0; l < 3; l++) {
		desc_set_layout(layouts[l], 3, 17);
		IOMapper *m = iomem_swiommu_create(NULL);
		iomem_swiommu_stats st = stats_of(m);
		unsigned char *buf = IOMallocAligned(9 * DESC_PAGE, DESC_PAGE);
		cr_assert_not_null(buf);
		fill(buf, 9 * DESC_PAGE, 40u + (unsigned)l);
		unsigned char *p = buf + 300;
		IOByteCount len = 8 * DESC_PAGE - 100;
		IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(p, len, kIODirectionInOut);
		cr_assert_not_null(md);
		IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0,
		                                                   IODMACommand_kMapped, 0, 1, m, NULL);
		cr_assert_not_null(cmd);
		cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess);
		IODMACommand_Segment64 seg[32];
		unsigned n = gen_all(cmd, seg, 32);
		cr_expect_eq(n, 1, "layout %s: one contiguous IOVA run, got %u segments",
		             iomem_posix_layout_name(layouts[l]), n);
		UInt64 done = 0;
		for (unsigned i = 0; i < n; i++) {
			cr_expect_geq(seg[i].fIOVMAddr, st.iova_base, "an IOVA, not a physical address");
			cr_expect_leq(seg[i].fIOVMAddr + seg[i].fLength, st.iova_base + st.iova_size);
			device_read_check(m, seg[i].fIOVMAddr, p + done, seg[i].fLength);
			done += seg[i].fLength;
		}
		cr_expect_eq(done, len);
		cr_expect_eq(stats_of(m).maps, 1);
		cr_assert_eq(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
		IOPhysicalAddress pa;
		cr_expect_eq(iomem_swiommu_translate(m, seg[0].fIOVMAddr, 1, false, &pa, NULL), kIOReturnVMError,
		             "complete unmapped the IOVA run");
		cr_expect_eq(stats_of(m).unmaps, 1);
		expect_all_free(m);
		IODMACommand_release(cmd);
		IOMemoryDescriptor_release(md);
		IOFreeAligned(buf, 9 * DESC_PAGE);
		IOMapper_release(m);
	}
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, dmacommand_out_only_is_read_only_for_the_device)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(3 * DESC_PAGE, kIODirectionOut, false);
	cr_assert_not_null(bmd);
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 1,
	                                                   m, NULL);
	cr_assert_not_null(cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, bmd, true), kIOReturnSuccess);
	IODMACommand_Segment64 seg[8];
	cr_assert_geq(gen_all(cmd, seg, 8), 1);
	IOPhysicalAddress pa;
	cr_expect_eq(iomem_swiommu_translate(m, seg[0].fIOVMAddr, 8, false, &pa, NULL), kIOReturnSuccess);
	cr_expect_eq(iomem_swiommu_translate(m, seg[0].fIOVMAddr, 8, true, &pa, NULL), kIOReturnNotWritable);
	iomem_swiommu_fault f;
	cr_expect_eq(iomem_swiommu_faults(m, &f), 1);
	cr_expect_eq(f.reason, IOMEM_SWIOMMU_FAULT_READONLY);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	expect_all_free(m);
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(mapper, dmacommand_system_mapper_and_bypass)
{
	IOMapper *m = iomem_swiommu_create(NULL);
	/* kBypassed with a mapper: refused (reference §2.1) */
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kBypassed, 0, 1,
	                                              m, NULL));
	iomem_mapper_set_system(m);
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kBypassed, 0, 1,
	                                              NULL, NULL), "the system mapper counts too");
	/* NULL + kMapped: the system mapper */
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kMapped, 0, 1,
	                                                   NULL, NULL);
	cr_assert_not_null(cmd);
	cr_expect_eq(iomem_dmacmd_getMapper(cmd), m);
	IOBufferMemoryDescriptor *bmd = rw_buffer(2, 0, NULL);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, bmd, true), kIOReturnSuccess);
	IODMACommand_Segment64 seg[8];
	unsigned n = gen_all(cmd, seg, 8);
	cr_expect_eq(n, 1);
	cr_expect_eq(IOMapper_mapToPhysicalAddress(m, seg[0].fIOVMAddr),
	             IOMemoryDescriptor_getPhysicalSegment(bmd, 0, NULL, 0));
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	IODMACommand_release(cmd);
	/* kUnmapped: CPU-physical segments, the mapper not used */
	cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, bmd, true), kIOReturnSuccess);
	cr_assert_geq(gen_all(cmd, seg, 8), 1);
	cr_expect_eq(seg[0].fIOVMAddr, IOMemoryDescriptor_getPhysicalSegment(bmd, 0, NULL, 0));
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	cr_expect_eq(stats_of(m).maps, 1);
	IODMACommand_release(cmd);
	expect_all_free(m);
	iomem_mapper_set_system(NULL);
	IOMemoryDescriptor_release(bmd);
	IOMapper_release(m);
	iomem_test_expect_reports(0);
}

/* ---- end to end: map -> IOMMU -> device -> buffer (issue #8, done-when) --- */

/* A simulated device's DMA read or write of @len bytes at IOVA @iova: every
 * byte goes through the IOMMU's translate (a fault fails the transfer) and
 * then through physical memory. Returns the bytes moved. */
static uint64_t device_dma(IOMapper *m, uint64_t iova, unsigned char *buf, uint64_t len, bool write)
{
	uint64_t done = 0;
	while (done < len) {
		IOPhysicalAddress pa = 0;
		uint64_t contig = 0;
		if (iomem_swiommu_translate(m, iova + done, len - done, write, &pa, &contig) != kIOReturnSuccess ||
		    contig == 0)
			break;
		if (contig > len - done)
			contig = len - done;
		if (!iomem__platform_phys_copy(pa, buf + done, contig, write))
			break;
		done += contig;
	}
	return done;
}

IOMEM_TEST(mapper, map_write_device_reads_through_iommu_buffer_sees_device_write)
{
	enum { LEN = 6 * 4096 + 300 };
	iomem_posix_phys_layout l = { IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0 };
	cr_assert_eq(iomem_posix_set_phys_layout(&l), kIOReturnSuccess);
	IOMapper *m = swiommu(0, 0, 0, 32);
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(LEN, kIODirectionInOut, false);
	cr_assert_not_null(bmd);
	IOMemoryMap *map = IOMemoryDescriptor_map(bmd, kIOMapAnywhere);
	cr_assert_not_null(map);
	unsigned char *via_map = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(map);
	unsigned char *via_buf = IOBufferMemoryDescriptor_getBytesNoCopy(bmd);
	cr_assert(via_map != NULL && via_map != via_buf, "a real second mapping");

	static unsigned char want[LEN], got[LEN];
	fill(want, LEN, 5);
	memcpy(via_map, want, LEN);                       /* the CPU writes through the map */

	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0,
	                                                   IODMACommand_kMapped, 0, 1, m, NULL);
	cr_assert_not_null(cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, bmd, true), kIOReturnSuccess);

	/* the device reads every generated IOVA segment through the IOMMU */
	IODMACommand_Segment64 seg[8];
	UInt64 off = 0, total = 0;
	UInt32 n = 8;
	unsigned nseg = 0;
	memset(got, 0, sizeof got);
	while (IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnSuccess) {
		for (UInt32 i = 0; i < n; i++, nseg++) {
			cr_assert_eq(IOMapper_mapToPhysicalAddress(m, seg[i].fIOVMAddr),
			             IOMemoryDescriptor_getPhysicalSegment(bmd, total, NULL, kIOMemoryMapperNone),
			             "segment %u is an IOVA of the buffer's byte %llu", nseg, (unsigned long long)total);
			cr_assert_eq(device_dma(m, seg[i].fIOVMAddr, got + total, seg[i].fLength, false), seg[i].fLength);
			total += seg[i].fLength;
		}
		n = 8;
	}
	cr_assert_eq(total, LEN);
	cr_assert_lt(nseg, 7u, "one IOVA run for %d scattered pages, cut only by the device limits", LEN / 4096);
	cr_assert_eq(memcmp(got, want, LEN), 0, "the device read what the CPU wrote through the map");

	/* the device writes; the CPU sees it through the buffer and the map */
	fill(want, LEN, 9);
	off = 0; total = 0; n = 8;
	while (IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnSuccess) {
		for (UInt32 i = 0; i < n; i++) {
			cr_assert_eq(device_dma(m, seg[i].fIOVMAddr, want + total, seg[i].fLength, true), seg[i].fLength);
			total += seg[i].fLength;
		}
		n = 8;
	}
	cr_assert_eq(memcmp(via_buf, want, LEN), 0, "the buffer sees the device's write");
	cr_assert_eq(memcmp(via_map, want, LEN), 0, "and so does the map");

	/* after complete the IOVAs are gone: a late device access faults */
	uint64_t faults = iomem_swiommu_faults(m, NULL);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	cr_assert_eq(device_dma(m, seg[0].fIOVMAddr, got, 16, false), 0);
	cr_assert_eq(iomem_swiommu_faults(m, NULL), faults + 1);

	IODMACommand_release(cmd);
	IOMemoryMap_release(map);
	IOMemoryDescriptor_release(bmd);
	expect_all_free(m);
	IOMapper_release(m);
	l.policy = IOMEM_POSIX_LAYOUT_IDENTITY;
	iomem_posix_set_phys_layout(&l);
}
