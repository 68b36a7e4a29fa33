/* SPDX-License-Identifier: MIT */
/*
 * examples/desc_tour.c - a buffer descriptor prepared, walked and read back,
 * on the POSIX software machine (pseudo-physical memory).
 *
 *   cc -DIOMEM_DEBUG -I. examples/desc_tour.c -o desc_tour -lpthread && ./desc_tour
 *
 * What a driver does before DMA: allocate a DMA buffer (here below 4 GiB
 * and physically contiguous, as for a 32-bit device, and a plain one on a
 * scattered layout), walk its physical segments to build the device's
 * scatter/gather list, and copy data in and out through the descriptor.
 * Exits 0 when every check passed and nothing leaked.
 */
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <stdio.h>
#include <string.h>

static int walk(const char *what, IOMemoryDescriptor *md)
{
	IOByteCount off = 0, len = IOMemoryDescriptor_getLength(md), seg;
	int n = 0;
	printf("%s: %llu bytes\n", what, (unsigned long long)len);
	while (off < len) {
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		if (pa == 0)
			return -1;
		if (n < 4)
			printf("  segment %d: phys 0x%llx, %llu bytes\n", n, (unsigned long long)pa,
			       (unsigned long long)seg);
		off += seg;
		n++;
	}
	if (n > 4)
		printf("  ... %d segments in all\n", n);
	return n;
}

int main(void)
{
	static const char msg[] = "hello, device";
	iomem_posix_phys_layout layout = { IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0 };
	IOBufferMemoryDescriptor *ring, *buf;
	char back[sizeof msg];
	int ok = 1;

	/* 1. A descriptor ring for a 32-bit device: below 4 GiB, contiguous. */
	ring = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionInOut,
	                                                       16 * 1024, 0xFFFFF000ull);   /* +1 */
	if (ring == NULL)
		return 1;
	ok &= walk("ring (mask 0xFFFFF000)", ring) == 1;
	ok &= IOMemoryDescriptor_getPhysicalAddress(ring) + 16 * 1024 - 1 <= 0xFFFFFFFFull;

	/* 2. A data buffer on a machine whose pages are scattered. */
	iomem_posix_set_phys_layout(&layout);
	buf = IOBufferMemoryDescriptor_withCapacity(5 * 4096, kIODirectionInOut, false);  /* +1 */
	if (buf == NULL)
		return 1;
	/* wired at creation; another prepare nests, as before a transfer */
	ok &= IOMemoryDescriptor_prepare(buf, kIODirectionNone) == kIOReturnSuccess;
	ok &= walk("data buffer (scattered layout)", buf) >= 2;   /* 5 with 4 KiB pages */

	/* 3. Copy in and read back through physical memory. */
	ok &= IOMemoryDescriptor_writeBytes(buf, 4090, msg, sizeof msg) == sizeof msg;   /* crosses a page */
	ok &= IOMemoryDescriptor_readBytes(buf, 4090, back, sizeof back) == sizeof back;
	ok &= memcmp(back, msg, sizeof msg) == 0;
	printf("read back: \"%s\"\n", back);
	ok &= IOMemoryDescriptor_readBytes(buf, 5 * 4096 - 2, back, 4) == 0;  /* out of range: nothing */

	IOMemoryDescriptor_complete(buf, kIODirectionNone);
	IOMemoryDescriptor_release(buf);
	IOMemoryDescriptor_release(ring);

	ok &= iomem_leak_report(NULL, NULL) == 0;
	printf("%s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}
