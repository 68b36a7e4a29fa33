/* SPDX-License-Identifier: MIT */
/*
 * size_fw.c - the minimal firmware tools/bm-size measures, one feature
 * level per build (-DBM_SIZE_LEVEL=N), each adding to the previous one:
 *   0  the harness alone (startup, console, exit): the baseline
 *   1  iomem_baremetal_init over one heap arena + IOMalloc/IOFree
 *   2  + one IOMemoryDescriptor (withAddress, getPhysicalSegment, release)
 *   3  + one IODMACommand (withSpecification, setMemoryDescriptor,
 *        gen64IOVMSegments, clearMemoryDescriptor, release)
 * Built with IOMEM_DEBUG=0 at -Os (tools/bm-size passes both).
 */
#include "bm.h"
#if BM_SIZE_LEVEL >= 1
#  define IOMEM_IMPLEMENTATION
#  include "iomem.h"
#  if BM_SIZE_LEVEL >= 3
#    include "iomem_dma.h"
#  endif
static uint64_t heap[16384 / 8];
#endif
#if BM_SIZE_LEVEL >= 2
static unsigned char buf[512];
#endif

int main(void)
{
	int rc = 0;
#if BM_SIZE_LEVEL >= 1
	iomem_baremetal_desc d = { .heap = { { heap, sizeof heap } } };
	void *p;
	if (iomem_baremetal_init(&d) != kIOReturnSuccess)
		return 1;
	p = IOMalloc(100);
	rc |= p == NULL;
	IOFree(p, 100);
#endif
#if BM_SIZE_LEVEL >= 2
	{
		IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf, sizeof buf, kIODirectionOut);
		rc |= md == NULL || IOMemoryDescriptor_getPhysicalSegment(md, 0, NULL, 0) != (uintptr_t)buf;
#  if BM_SIZE_LEVEL >= 3
		{
			IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0,
			                                                   IODMACommand_kMapped, 0, 1, NULL, NULL);
			IODMACommand_Segment64 seg[4];
			UInt64 off = 0;
			UInt32 n = 4;
			rc |= cmd == NULL || IODMACommand_setMemoryDescriptor(cmd, md, true) != kIOReturnSuccess ||
			      IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) != kIOReturnSuccess;
			IODMACommand_clearMemoryDescriptor(cmd, true);
			IODMACommand_release(cmd);
		}
#  endif
		IOMemoryDescriptor_release(md);
	}
#endif
	BM_OK(rc == 0, "bm-size firmware ran");      /* one TAP line: run.sh judges it */
	return bm_tap_done();
}
