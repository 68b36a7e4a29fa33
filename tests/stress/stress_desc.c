/* SPDX-License-Identifier: MIT */
/*
 * tests/stress/stress_desc.c - what IOKit documents as thread-safe in the
 * memory layer, under TSan, on the POSIX software machine:
 *   - one kIOMemoryThreadSafe descriptor E that every thread prepares,
 *     writes, reads and completes at once (each in its own region), and
 *     sub descriptors of it created, prepared and released concurrently;
 *   - one descriptor D prepared once and walked (getPhysicalSegment) by
 *     every thread while others retain/release it;
 *   - private descriptors, buffers and multi descriptors created and
 *     released concurrently (the machine's frame table, the debug table);
 *   - the IOMalloc family with the debug layer's table;
 *   - the system mapper: set and copied concurrently, retain/release.
 * Checks: contents of each region, segments against the machine's
 * translation, no report, no leak, nothing left wired.
 */
#include "stress_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_map.h"

#define REGION_PAGES 2
#define ITERS 4000

static unsigned char *pool;
static size_t pool_bytes, region;
static IOMemoryDescriptor *E, *D;
static IOMapper *mappers[2];

static uint64_t m_page(IOMapper *m) { (void)m; return 4096; }
static IOReturn m_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t o, uint64_t l, uint32_t opt,
                      const IODMAMapSpecification *s, IODMACommand *c, const void *pl, uint64_t *a, uint64_t *ml)
{
	(void)m; (void)md; (void)o; (void)opt; (void)s; (void)c; (void)pl;
	*a = 0x1000;
	*ml = l;
	return kIOReturnSuccess;
}
static IOReturn m_unmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *c, uint64_t a, uint64_t l)
{
	(void)m; (void)md; (void)c; (void)a; (void)l;
	return kIOReturnSuccess;
}
static uint64_t m_phys(IOMapper *m, uint64_t a) { (void)m; return a; }
static const iomem_mapper_ops mops = {
	.name = "stress", .getPageSize = m_page, .iovmMapMemory = m_map, .iovmUnmapMemory = m_unmap,
	.mapToPhysicalAddress = m_phys,
};

static void check_walk(IOMemoryDescriptor *md, unsigned char *va, IOByteCount from, IOByteCount len)
{
	IOByteCount off = from, seg;
	while (off < from + len) {
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		STRESS_CHECK(pa != 0 && pa == iomem_posix_virt_to_phys(va + off), "segment at %llu", (unsigned long long)off);
		off += seg;
	}
}

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t seed = (id + 1) * 0x9e3779b97f4a7c15ull;
	unsigned char *mine = pool + id * region, buf[512], back[512];
	unsigned long ops = 0;
	for (int it = 0; it < ITERS && stress_running(); it++, ops++) {
		uint64_t r = stress_rnd(&seed);
		IOByteCount off = id * region + r % (region - sizeof buf);
		memset(buf, (int)(r >> 8), sizeof buf);
		switch (r % 6) {
		case 0: {                             /* E: prepare, write, read, complete */
			STRESS_CHECK(IOMemoryDescriptor_prepare(E, kIODirectionNone) == kIOReturnSuccess, "prepare E");
			STRESS_CHECK(IOMemoryDescriptor_writeBytes(E, off, buf, sizeof buf) == sizeof buf, "write E");
			STRESS_CHECK(IOMemoryDescriptor_readBytes(E, off, back, sizeof back) == sizeof back, "read E");
			STRESS_CHECK(memcmp(buf, back, sizeof buf) == 0, "E contents");
			IOMemoryDescriptor_complete(E, kIODirectionNone);
			break;
		}
		case 1: {                             /* a sub of E, concurrently */
			IOMemoryDescriptor *s = IOSubMemoryDescriptor_withSubRange(E, id * region, region, kIODirectionInOut);
			STRESS_CHECK(s != NULL, "sub");
			STRESS_CHECK(IOMemoryDescriptor_prepare(s, kIODirectionNone) == kIOReturnSuccess, "prepare sub");
			STRESS_CHECK(IOMemoryDescriptor_writeBytes(s, off - id * region, buf, sizeof buf) == sizeof buf, "write sub");
			STRESS_CHECK(memcmp(pool + off, buf, sizeof buf) == 0, "sub contents");
			check_walk(s, mine, 0, region);
			IOMemoryDescriptor_complete(s, kIODirectionNone);
			IOMemoryDescriptor_release(s);
			break;
		}
		case 2:                               /* D: walk while others retain/release */
			IOMemoryDescriptor_retain(D);
			check_walk(D, pool, (r >> 16) % (pool_bytes / 2), pool_bytes / 4);
			STRESS_CHECK(IOMemoryDescriptor_readBytes(D, off, back, 64) == 64, "read D");
			IOMemoryDescriptor_release(D);
			break;
		case 3: {                             /* private objects */
			IOMemoryDescriptor *p = IOMemoryDescriptor_withAddress(mine, region, kIODirectionInOut);
			IOMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(1 + r % 9000, kIODirectionInOut, r & 1);
			IOMemoryDescriptor *kids[2] = { p, b }, *m;
			STRESS_CHECK(p && b, "private descriptors");
			check_walk(p, mine, 0, region);
			m = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
			STRESS_CHECK(m && IOMemoryDescriptor_prepare(m, kIODirectionNone) == kIOReturnSuccess, "multi");
			IOMemoryDescriptor_complete(m, kIODirectionNone);
			IOMemoryDescriptor_release(m);
			IOMemoryDescriptor_release(p);
			IOMemoryDescriptor_release(b);
			break;
		}
		case 4: {                             /* the IOMalloc family */
			size_t n = 1 + r % 3000;
			void *a = IOMalloc(n), *b = IOMallocAligned(n, 256), *c = IOMallocPageable(n, 0);
			STRESS_CHECK(a && b && c, "IOMalloc family");
			memset(a, 1, n);
			memset(b, 2, n);
			memset(c, 3, n);
			IOFree(a, n);
			IOFreeAligned(b, n);
			IOFreePageable(c, n);
			break;
		}
		default: {                            /* the system mapper */
			IOMapper *m;
			if ((r >> 4) % 8 == 0)
				iomem_mapper_set_system(mappers[(r >> 8) & 1]);
			m = iomem_mapper_copy_system();
			if (m != NULL) {
				STRESS_CHECK(IOMapper_getPageSize(m) == 4096, "mapper page size");
				IOMapper_release(m);
			}
			break;
		}
		}
	}
	return (void *)ops;
}

int main(void)
{
	iomem_posix_machine_stats_t st;
	stress_begin("desc");
	iomem_posix_set_phys_layout(&(iomem_posix_phys_layout){ IOMEM_POSIX_LAYOUT_RUNS, 3, 1 });
	region = REGION_PAGES * iomem__platform_page_size();
	pool_bytes = STRESS_THREADS * region;
	pool = (unsigned char *)IOMallocAligned(pool_bytes, iomem__platform_page_size());
	STRESS_CHECK(pool != NULL, "pool");
	memset(pool, 0, pool_bytes);
	E = IOMemoryDescriptor_withAddressRange((uintptr_t)pool, pool_bytes, kIODirectionInOut | kIOMemoryThreadSafe,
	                                        kernel_task);
	D = IOMemoryDescriptor_withAddress(pool, pool_bytes, kIODirectionInOut);
	mappers[0] = iomem_mapper_withOps(&mops, NULL);
	mappers[1] = iomem_mapper_withOps(&mops, NULL);
	STRESS_CHECK(E && D && mappers[0] && mappers[1], "setup");
	stress_run("desc", worker);
	STRESS_CHECK(iomem_md_getRetainCount(D) == 1, "D retain count %u", iomem_md_getRetainCount(D));
	STRESS_CHECK(IOMemoryDescriptor_getPreparationID(E) == kIOPreparationIDUnprepared, "E left prepared");
	iomem_mapper_set_system(NULL);
	IOMapper_release(mappers[0]);
	IOMapper_release(mappers[1]);
	IOMemoryDescriptor_release(E);
	IOMemoryDescriptor_release(D);
	IOFreeAligned(pool, pool_bytes);
	iomem_posix_machine_stats(&st);
	STRESS_CHECK(st.wired_pages == 0, "%llu page(s) still wired", (unsigned long long)st.wired_pages);
	STRESS_CHECK(iomem_leak_report(NULL, NULL) == 0, "leaks (listed above)");
	return stress_end("desc");
}
