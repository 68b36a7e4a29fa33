/* SPDX-License-Identifier: MIT */
/*
 * examples/alloc_tour.c - the IOMalloc family and the debug layer, end to end.
 *
 *   cc -DIOMEM_DEBUG -I. examples/alloc_tour.c -o alloc_tour -lpthread && ./alloc_tour
 *
 * Allocates the way an IOKit driver does (general, zeroed, aligned for a
 * descriptor ring, pageable for a big table, typed arrays), checks the
 * debug layer's accounting, and frees everything with the sizes IOKit
 * wants back. Exits 0 when nothing leaked.
 */
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <stdio.h>
#include <string.h>

struct rx_desc { uint64_t addr; uint32_t len; uint32_t flags; };

int main(void)
{
	enum { RING = 256, TABLE = 3 * 4096 + 100 };
	struct rx_desc *ring = IOMallocAligned(RING * sizeof *ring, 4096); /* +1 */
	char *scratch = IOMallocZero(512);                                  /* +1 */
	uint32_t *map = IONew(uint32_t, 1024);                              /* +1 */
	void *table = IOMallocPageable(TABLE, 0);                           /* +1 */
	iomem_alloc_stats st;

	if (!ring || !scratch || !map || !table) {
		fprintf(stderr, "allocation failed: %s\n", IOReturnString(kIOReturnNoMemory));
		return 1;
	}
	memset(ring, 0, RING * sizeof *ring);
	printf("ring %p page-aligned: %s\n", (void *)ring,
	       ((uintptr_t)ring & 4095) == 0 ? "yes" : "no");

	if (iomem_stats(&st) == kIOReturnSuccess)
		printf("live: %llu bytes in %llu blocks (IOMalloc family), aligned %llu, pageable %llu\n",
		       (unsigned long long)st.family[IOMEM_ALLOC_MALLOC].live_bytes,
		       (unsigned long long)st.family[IOMEM_ALLOC_MALLOC].live_blocks,
		       (unsigned long long)st.family[IOMEM_ALLOC_ALIGNED].live_bytes,
		       (unsigned long long)st.family[IOMEM_ALLOC_PAGEABLE].live_bytes);
	else
		printf("build with -DIOMEM_DEBUG to see the accounting\n");

	IOFreePageable(table, TABLE);               /* every free takes the size */
	IODelete(map, uint32_t, 1024);
	IOFree(scratch, 512);
	IOFreeAligned(ring, RING * sizeof *ring);

	printf("still allocated: %zu block(s)\n", (size_t)iomem_leak_report(NULL, NULL));
	return iomem_leak_report(NULL, NULL) == 0 ? 0 : 1;
}
