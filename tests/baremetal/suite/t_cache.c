/* SPDX-License-Identifier: MIT */
/*
 * t_cache.c - the default data-cache maintenance (no hooks): the right line
 * size per core, and flush / clean / invalidate over aligned, unaligned,
 * tiny and large ranges execute without a fault and lose no byte (QEMU
 * models no cache, so coherency itself cannot be observed here; the hook
 * path's exact ranges are checked in t_init.c).
 *   cm7: SCB DCCIMVAC/DCCMVAC/DCIMVAC, 32-byte lines (CPUID 0xC27)
 *   a53: DC CIVAC/CVAC/IVAC + DSB, line from CTR_EL0 (64)
 *   cm3/cm4/cm33: no data cache -> line 0, no-op
 *   rv32/rv64: no Zicbom in -march (QEMU 7.2 lacks it) -> FENCE only
 */
#include "bmt.h"

static unsigned char buf[3 * 4096] __attribute__((aligned(64)));

void bmt_suite_cache(void)
{
	vm_size_t line = iomem__platform_cache_line();
	size_t i;
	bool ok = true;

	bmt_diag_u("cache: data-cache line used by the default maintenance", line);
	if (bmt_target_is("cm7"))
		BMT_OK(line == 32, "cache: Cortex-M7 detected from CPUID, 32-byte lines");
	else if (bmt_target_is("a53"))
		BMT_OK(line == 64, "cache: Cortex-A53 line from CTR_EL0.DminLine = 64");
	else
		BMT_OK(line == 0, "cache: no data cache maintenance on this core (line 0)");

	for (i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 13 + 1);
	iomem__platform_cache_clean(buf, sizeof buf);
	iomem__platform_cache_flush(buf + 3, 61);            /* inside one or two lines */
	iomem__platform_cache_flush(buf + 1, 1);
	iomem__platform_cache_invalidate(buf + 5, 200);      /* partial lines at both ends */
	iomem__platform_cache_invalidate(buf + 64, 128);     /* whole lines */
	iomem__platform_cache_clean(buf + 4095, 2);          /* across a page */
	iomem__platform_cache_flush(buf, sizeof buf);
	iomem__platform_cache_invalidate(buf, 0);
	for (i = 0; i < sizeof buf; i++)
		ok &= buf[i] == (unsigned char)(i * 13 + 1);
	BMT_OK(ok, "cache: flush/clean/invalidate (aligned, unaligned, 1 byte, 12 KiB) execute, no byte lost");

	/* an IOMalloc'd buffer, as a driver would hand it to a device */
	{
		unsigned char *p = (unsigned char *)IOMallocAligned(1000, 64);
		ok = p != NULL;
		if (p != NULL) {
			bmt_fill(p, 1000, 0x5c);
			iomem__platform_cache_clean(p, 1000);
			iomem__platform_cache_invalidate(p, 1000);
			ok = bmt_all_bytes(p, 1000, 0x5c);
			IOFreeAligned(p, 1000);
		}
		BMT_OK(ok, "cache: maintenance of an IOMallocAligned DMA buffer");
	}
}
