/* SPDX-License-Identifier: MIT */
/*
 * t_map.c - the rest of the DMA and mapping layers on bare metal: the
 * memory cursors (natural / big / little byte order, checked as raw
 * bytes), IORangeAllocator basics, the software IOMMU behind an
 * IODMACommand (map, translate, fault after unmap), IOMappedRead/Write
 * 8..64 on RAM (exact width: the neighbours stay), IOFlushProcessorCache
 * (kernel_task only, calling the platform's flush), IOMemoryMap's
 * own-address map. Bad inputs per function, as on the host.
 */
#include "bmt.h"
#include "iomem_dma.h"
#include "iomem_map.h"

#define MPAGE ((IOByteCount)4096)

static unsigned char mbuf[3 * 4096] __attribute__((aligned(4096)));
static uint64_t words[4];

static bool bytes_are(const unsigned char *p, uint64_t v, bool big)
{
	int k;
	for (k = 0; k < 8; k++)
		if (p[k] != (unsigned char)(v >> (big ? 56 - 8 * k : 8 * k)))
			return false;
	return true;
}

static void cursor_cases(void)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(mbuf + 100, 2 * MPAGE, kIODirectionOut);
	IONaturalMemoryCursor *nc = IONaturalMemoryCursor_withSpecification(1000, 0, 1);
	IOBigMemoryCursor *bc = IOBigMemoryCursor_withSpecification(1000, 0, 1);
	IOLittleMemoryCursor *lc = IOLittleMemoryCursor_withSpecification(1000, 0, 1);
	IOPhysicalSegment seg[4];
	unsigned char raw[4 * sizeof(IOPhysicalSegment)];
	IOByteCount done = 0;
	uint64_t pa = (uint64_t)(uintptr_t)(mbuf + 100);
	UInt32 n;

	BMT_OK(md != NULL && nc != NULL && bc != NULL && lc != NULL, "cursor: three cursors, a descriptor");
	if (md == NULL || nc == NULL || bc == NULL || lc == NULL)
		goto out;
	n = IONaturalMemoryCursor_getPhysicalSegments(nc, md, 0, seg, 4, 0, &done);
	BMT_OK(n == 4 && done == 4000 && seg[0].location == pa && seg[0].length == 1000 &&
	       seg[3].location == pa + 3000, "cursor: natural: 4 segments of 1000 bytes in host order");
	n = IOMemoryCursor_genPhysicalSegments((IOMemoryCursor *)bc, md, 10, raw, 2, 0, &done);
	BMT_OK(n == 2 && done == 2000 && bytes_are(raw, pa + 10, true) && bytes_are(raw + 8, 1000, true) &&
	       bytes_are(raw + 16, pa + 1010, true), "cursor: big: location and length big-endian, raw bytes");
	n = IOMemoryCursor_genPhysicalSegments((IOMemoryCursor *)lc, md, 2 * MPAGE - 5, raw, 4, 0, &done);
	BMT_OK(n == 1 && done == 5 && bytes_are(raw, pa + 2 * MPAGE - 5, false) && bytes_are(raw + 8, 5, false),
	       "cursor: little: the tail segment, little-endian raw bytes");
	BMT_OK(IONaturalMemoryCursor_getPhysicalSegments(nc, md, 2 * MPAGE, seg, 4, 0, &done) == 0 && done == 0 &&
	       IONaturalMemoryCursor_getPhysicalSegments(nc, md, 0, seg, 0, 0, NULL) == 0 &&
	       IONaturalMemoryCursor_getPhysicalSegments(nc, NULL, 0, seg, 4, 0, NULL) == 0 &&
	       IOMemoryCursor_withSpecification(NULL, 0, 0, 1) == NULL,
	       "cursor: bad: past the end, 0 segments, NULL descriptor, NULL function -> 0 / NULL");
out:
	IOMemoryCursor_release((IOMemoryCursor *)nc);
	IOMemoryCursor_release((IOMemoryCursor *)bc);
	IOMemoryCursor_release((IOMemoryCursor *)lc);
	IOMemoryDescriptor_release(md);
}

static void range_cases(void)
{
	IORangeAllocator *ra = IORangeAllocator_withRange(0xFFFF, 16, 4, 0);
	IORangeScalar a = 0, b = 0;
	BMT_OK(ra != NULL && IORangeAllocator_getFreeCount(ra) == 0x10000, "range: [0, 0xFFFF], all free");
	if (ra == NULL)
		return;
	BMT_OK(IORangeAllocator_allocate(ra, 100, &a, 0x1000) && (a & 0xFFF) == 0 &&
	       IORangeAllocator_getFreeCount(ra) == 0x10000 - 112, "range: allocate 100 aligned 4K (rounded to 112)");
	BMT_OK(IORangeAllocator_allocateRange(ra, 0x8000, 0x100) && !IORangeAllocator_allocateRange(ra, 0x8080, 16),
	       "range: allocateRange, and an overlapping one refused");
	BMT_OK(IORangeAllocator_allocate(ra, 32, &b, 0) && b != a && (b < 0x8000 || b >= 0x8100),
	       "range: another allocation avoids both");
	IORangeAllocator_deallocate(ra, a, 100);
	IORangeAllocator_deallocate(ra, b, 32);
	IORangeAllocator_deallocate(ra, 0x8000, 0x100);
	BMT_OK(IORangeAllocator_getFreeCount(ra) == 0x10000 && IORangeAllocator_getFragmentCount(ra) == 1,
	       "range: all back, one fragment");
	BMT_OK(!IORangeAllocator_allocate(ra, 0, &a, 0) && !IORangeAllocator_allocate(ra, 16, NULL, 0) &&
	       !IORangeAllocator_allocate(ra, 16, &a, 3) && !IORangeAllocator_allocate(ra, 0x20000, &a, 0) &&
	       IORangeAllocator_withRange(0xFF, 3, 0, 0) == NULL,
	       "range: bad: size 0, NULL result, alignment 3, too big, default alignment 3");
	IORangeAllocator_release(ra);
}

static void swiommu_cases(void)
{
	iomem_swiommu_desc d = { 4096, 0x100000, 0x100000, 32 };
	iomem_swiommu_desc bad = { 3000, 0, 0, 0 };
	IOMapper *mmu = iomem_swiommu_create(&d);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(mbuf, 2 * MPAGE, kIODirectionInOut);
	IODMACommand *cmd = NULL;
	IODMACommand_Segment64 seg[4];
	IOPhysicalAddress pa = 0;
	uint64_t contig = 0, iova = 0;
	UInt64 off = 0;
	UInt32 n = 4;
	iomem_swiommu_fault f;

	BMT_OK(mmu != NULL && iomem_swiommu_is(mmu) && iomem_swiommu_create(&bad) == NULL,
	       "swiommu: created (1 MiB IOVA space); page size 3000 refused");
	if (mmu == NULL || md == NULL)
		goto out;
	cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kMapped, 0, 1, mmu, NULL);
	BMT_OK(cmd != NULL && iomem_dmacmd_getMapper(cmd) == mmu &&
	       IODMACommand_setMemoryDescriptor(cmd, md, true) == kIOReturnSuccess &&
	       IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnSuccess && n == 1 &&
	       seg[0].fLength == 2 * MPAGE && seg[0].fIOVMAddr >= 0x100000 && seg[0].fIOVMAddr < 0x200000,
	       "swiommu: IODMACommand maps the buffer: one IOVA run inside the space");
	iova = n == 1 ? seg[0].fIOVMAddr : 0;
	BMT_OK(iomem_swiommu_translate(mmu, iova + 5, 100, true, &pa, &contig) == kIOReturnSuccess &&
	       pa == (uintptr_t)mbuf + 5 && contig == 100, "swiommu: translate gives the CPU-physical address");
	BMT_OK(iomem_swiommu_translate(mmu, 0x1F0000, 4, false, &pa, NULL) == kIOReturnVMError && pa == 0 &&
	       iomem_swiommu_faults(mmu, &f) == 1 && f.reason == IOMEM_SWIOMMU_FAULT_UNMAPPED && f.iova == 0x1F0000,
	       "swiommu: an unmapped IOVA faults (recorded)");
	BMT_OK(IODMACommand_clearMemoryDescriptor(cmd, true) == kIOReturnSuccess &&
	       iomem_swiommu_translate(mmu, iova, 4, false, &pa, NULL) == kIOReturnVMError &&
	       iomem_swiommu_faults(mmu, NULL) == 2, "swiommu: after complete the IOVA faults");
	BMT_OK(iomem_swiommu_translate(mmu, iova, 0, false, &pa, NULL) == kIOReturnBadArgument &&
	       iomem_swiommu_translate(mmu, iova, 4, false, NULL, NULL) == kIOReturnBadArgument &&
	       iomem_swiommu_translate(NULL, iova, 4, false, &pa, NULL) == kIOReturnBadArgument,
	       "swiommu: bad: length 0, NULL pa, NULL mapper -> BadArgument (no fault)");
out:
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(md);
	IOMapper_release(mmu);
}

static void mappedio_cases(void)
{
	IOPhysicalAddress pa = (uintptr_t)&words[0];
	volatile unsigned char *b = (volatile unsigned char *)words;
	words[0] = words[1] = 0;
	words[2] = words[3] = ~(uint64_t)0;
	IOMappedWrite8(pa + 1, 0xA5);
	BMT_OK(b[1] == 0xA5 && b[0] == 0 && b[2] == 0 && IOMappedRead8(pa + 1) == 0xA5,
	       "mappedio: 8-bit write/read, neighbours untouched");
	IOMappedWrite16(pa + 2, 0x1234);
	BMT_OK(*(volatile uint16_t *)(b + 2) == 0x1234 && b[1] == 0xA5 && b[4] == 0 && IOMappedRead16(pa + 2) == 0x1234,
	       "mappedio: 16-bit");
	IOMappedWrite32(pa + 4, 0xDEADBEEFu);
	BMT_OK(*(volatile uint32_t *)(b + 4) == 0xDEADBEEFu && b[8] == 0 && IOMappedRead32(pa + 4) == 0xDEADBEEFu,
	       "mappedio: 32-bit");
	IOMappedWrite64(pa + 8, 0x0123456789ABCDEFull);
	BMT_OK(words[1] == 0x0123456789ABCDEFull && words[2] == ~(uint64_t)0 &&
	       IOMappedRead64(pa + 8) == 0x0123456789ABCDEFull && IOMappedRead64(pa + 16) == ~(uint64_t)0,
	       "mappedio: 64-bit (on 32-bit cores: one volatile 64-bit access, two bus cycles)");
}

static struct { int flush, other; const void *addr; vm_size_t len; } fspy;
static void map_spy(unsigned op, const void *a, vm_size_t n)
{
	if (op == IOMEM_BAREMETAL_CACHE_FLUSH) {
		fspy.flush++;
		fspy.addr = a;
		fspy.len = n;
	} else {
		fspy.other++;
	}
}

static void flush_cases(void)
{
	struct iomem_task other;
	fspy.flush = fspy.other = 0;
	bmt_cache_spy = map_spy;
	BMT_OK(IOFlushProcessorCache(kernel_task, (IOVirtualAddress)(uintptr_t)(mbuf + 3), 777) == kIOReturnSuccess &&
	       fspy.flush == 1 && fspy.addr == mbuf + 3 && fspy.len == 777 && fspy.other == 0,
	       "flush: IOFlushProcessorCache(kernel_task) = the platform flush of exactly that range");
	BMT_OK(IOFlushProcessorCache(&other, (IOVirtualAddress)(uintptr_t)mbuf, 64) == kIOReturnUnsupported &&
	       IOFlushProcessorCache(NULL, (IOVirtualAddress)(uintptr_t)mbuf, 64) == kIOReturnUnsupported &&
	       fspy.flush == 1, "flush: another task (or NULL) -> Unsupported, nothing flushed");
	BMT_OK(IOFlushProcessorCache(kernel_task, (IOVirtualAddress)(uintptr_t)mbuf, 0) == kIOReturnSuccess &&
	       fspy.flush == 1, "flush: length 0 -> success, nothing flushed");
	bmt_cache_spy = NULL;
}

static void memmap_cases(void)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(mbuf + 64, 5000, kIODirectionInOut);
	IOMemoryMap *map = md != NULL ? IOMemoryDescriptor_map(md, 0) : NULL;
	IOMemoryMap *again, *ro = NULL;
	IOByteCount l = 0;
	BMT_OK(map != NULL && IOMemoryMap_getVirtualAddress(map) == (IOVirtualAddress)(uintptr_t)(mbuf + 64) &&
	       IOMemoryMap_getLength(map) == 5000 && (IOMemoryMap_getMapOptions(map) & kIOMapStatic) != 0 &&
	       IOMemoryMap_getMemoryDescriptor(map) == md, "memmap: map() of kernel memory is its own address (static)");
	BMT_OK(IOMemoryMap_getPhysicalSegment(map, 10, &l, 0) == (uintptr_t)(mbuf + 74) && l != 0 && l <= 4990 &&
	       IOMemoryMap_getPhysicalSegment(map, 5000, &l, 0) == 0 && l == 0,
	       "memmap: getPhysicalSegment through the map, range-checked");
	again = md != NULL ? IOMemoryDescriptor_map(md, 0) : NULL;
	BMT_OK(again == map && again != NULL, "memmap: a compatible second map() reuses the first (+1)");
	IOMemoryMap_release(again);
	BMT_OK(md != NULL && iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere | kIOMapReadOnly, 0, 0,
	                                                  &ro) == kIOReturnUnsupported && ro == NULL,
	       "memmap: read-only map on bare metal -> Unsupported (one address space, no MMU)");
	BMT_OK(md != NULL && iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere, 4000, 2000, &ro) ==
	       kIOReturnBadArgument && iomem_md_createMappingInTask(NULL, kernel_task, 0, kIOMapAnywhere, 0, 0, &ro) ==
	       kIOReturnBadArgument, "memmap: bad: range past the descriptor, NULL descriptor -> BadArgument");
	IOMemoryMap_release(map);
	IOMemoryDescriptor_release(md);
}

void bmt_suite_map(void)
{
	cursor_cases();
	range_cases();
	swiommu_cases();
	mappedio_cases();
	flush_cases();
	memmap_cases();
	BMT_OK(iomem_baremetal_heap_check(NULL) == kIOReturnSuccess, "map: heap invariants hold");
}
