/* SPDX-License-Identifier: MIT */
/*
 * tests/stress/stress_dma.c - the DMA and mapping layers' thread-safe
 * parts under TSan (POSIX software machine):
 *   - IOMemoryMap: every thread maps a shared buffer descriptor (and
 *     sub-ranges of it) with kIOMapAnywhere, writes its own region through
 *     its mapping, checks it through the buffer, unmaps; retain/release of
 *     a long-lived map (the descriptors' map lists, one internal lock);
 *   - IODMACommand: one command per thread, each over its own buffer above
 *     4 GiB, 32-bit device: prepare bounces through the shared bounce pool
 *     (its lock), segments all below 4 GiB;
 *   - IOMemoryCursor: one cursor shared by every thread (immutable,
 *     documented as usable from any number of threads at once).
 * Checks: contents, limits, no report, no leak, nothing left wired.
 */
#include "stress_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "iomem_map.h"

#define ITERS 3000

static IOMemoryDescriptor *buf, *high[STRESS_THREADS];
/* IOMEM_STRESS_DMA_SHARED=1: every command on ONE descriptor (direction
 * Out: no copy-back races between the commands). Open finding: the
 * descriptor's DMA-active count is not atomic (bugs-robust.md). */
static int shared;
static IOMemoryMap *shared_map;
static IOMemoryCursor *cursor;
static size_t page, region;

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t seed = (id + 7) * 0x9e3779b97f4a7c15ull;
	unsigned char *b = IOBufferMemoryDescriptor_getBytesNoCopy(buf);
	unsigned long ops = 0;
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped,
	                                                   0, 1, NULL, NULL);
	STRESS_CHECK(cmd != NULL, "command");
	IOMemoryDescriptor *mine = high[shared ? 0 : id];
	for (int it = 0; it < ITERS && stress_running(); it++, ops++) {
		uint64_t r = stress_rnd(&seed);
		switch (r % 4) {
		case 0: {                                  /* a map of my region */
			IOMemoryMap *m = IOMemoryDescriptor_createMappingInTask(buf, kernel_task, 0, kIOMapAnywhere,
			                                                        id * region, region);
			unsigned char *v;
			STRESS_CHECK(m != NULL, "map");
			v = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
			memset(v, (int)(r >> 8), region);
			STRESS_CHECK(b[id * region + (r >> 16) % region] == (unsigned char)(r >> 8), "map aliases the buffer");
			IOMemoryMap_release(m);
			break;
		}
		case 1:                                    /* the shared map */
			IOMemoryMap_retain(shared_map);
			STRESS_CHECK(IOMemoryMap_getLength(shared_map) == IOMemoryDescriptor_getLength(buf), "shared map");
			IOMemoryMap_release(shared_map);
			break;
		case 2: {                                  /* bounce through the shared pool */
			IODMACommand_Segment64 seg[16];
			UInt64 off = 0, total = 0;
			UInt32 n = 16;
			STRESS_CHECK(IODMACommand_setMemoryDescriptor(cmd, mine, false) == kIOReturnSuccess, "setMemoryDescriptor");
			STRESS_CHECK(IODMACommand_prepare(cmd, 0, 0, true, true) == kIOReturnSuccess, "prepare");
			while (IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnSuccess) {
				for (UInt32 i = 0; i < n; i++) {
					STRESS_CHECK(seg[i].fIOVMAddr + seg[i].fLength - 1 <= 0xFFFFFFFFull, "segment above 4 GiB");
					total += seg[i].fLength;
				}
				n = 16;
			}
			STRESS_CHECK(total == IOMemoryDescriptor_getLength(mine), "segments cover %llu bytes", (unsigned long long)total);
			STRESS_CHECK(IODMACommand_complete(cmd, true, true) == kIOReturnSuccess, "complete");
			STRESS_CHECK(IODMACommand_clearMemoryDescriptor(cmd, false) == kIOReturnSuccess, "clear");
			break;
		}
		default: {                                 /* the shared cursor */
			IOPhysicalSegment s[8];
			IOByteCount done = 0;
			UInt32 k = IOMemoryCursor_genPhysicalSegments(cursor, buf, (r >> 8) % region, s, 8, 0, &done);
			STRESS_CHECK(k > 0 && done > 0, "cursor");
			for (UInt32 i = 0; i < k; i++)
				STRESS_CHECK(s[i].length <= page, "cursor segment longer than its maximum");
			break;
		}
		}
	}
	IODMACommand_release(cmd);
	return (void *)ops;
}

int main(void)
{
	iomem_posix_machine_stats_t st;
	stress_begin("dma");
	page = iomem__platform_page_size();
	region = page;
	shared = getenv("IOMEM_STRESS_DMA_SHARED") != NULL;
	iomem_posix_set_phys_layout(&(iomem_posix_phys_layout){ IOMEM_POSIX_LAYOUT_HIGH, 0, 0 });
	for (int i = 0; i < STRESS_THREADS; i++) {
		/* one per command: two commands copying back into the same
		 * bytes would be the caller's race */
		high[i] = IOBufferMemoryDescriptor_withOptions(shared ? kIODirectionOut : kIODirectionInOut, 3 * page, page);
		STRESS_CHECK(high[i] != NULL, "buffer above 4 GiB");
	}
	iomem_posix_set_phys_layout(&(iomem_posix_phys_layout){ IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0 });
	buf = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut | kIOMemoryThreadSafe, STRESS_THREADS * region, page);
	STRESS_CHECK(buf != NULL, "buffer");
	shared_map = IOMemoryDescriptor_map(buf, kIOMapAnywhere);
	cursor = IOMemoryCursor_withSpecification(IONaturalMemoryCursor_outputSegment, page, 0, 1);
	STRESS_CHECK(shared_map && cursor, "map, cursor");
	stress_run("dma", worker);
	IOMemoryCursor_release(cursor);
	IOMemoryMap_release(shared_map);
	IOMemoryDescriptor_release(buf);
	for (int i = 0; i < STRESS_THREADS; i++)
		IOMemoryDescriptor_release(high[i]);
	iomem_bounce_pool_trim();
	iomem_posix_machine_stats(&st);
	STRESS_CHECK(st.wired_pages == 0, "%llu page(s) still wired", (unsigned long long)st.wired_pages);
	STRESS_CHECK(iomem_leak_report(NULL, NULL) == 0, "leaks (listed above)");
	return stress_end("dma");
}
