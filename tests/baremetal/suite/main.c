/* SPDX-License-Identifier: MIT */
/* main.c - the iomem firmware test: every suite, then the end-of-run checks
 * (no leak under IOMEM_DEBUG, heap invariants hold). Exit status 0 iff every
 * TAP line is "ok". */
#include "bmt.h"

int main(void)
{
	iomem_heap_census c;
	bm_puts("# iomem " IOMEM_VERSION_STRING " on ");
	bm_puts(bm_target_name());
	bm_puts(IOMEM__DEBUG ? ", IOMEM_DEBUG=1\n" : ", IOMEM_DEBUG=0\n");

	bmt_suite_init();
	bmt_suite_desc_translated();
	bmt_suite_alloc();
	bmt_suite_debug();
	bmt_suite_heap();
	bmt_suite_cache();
	bmt_suite_desc();
	bmt_suite_dma();
	bmt_suite_dmacmd();
	bmt_suite_map();

#if IOMEM__DEBUG
	BMT_OK(iomem_leak_report(NULL, NULL) == 0, "end: nothing leaked (debug layer)");
#endif
	BMT_OK(iomem_baremetal_heap_check(&c) == kIOReturnSuccess, "end: heap invariants hold");
	bmt_diag_u("end: heap used blocks (debug table included)", c.used_blocks);
	return bm_tap_done();
}
