/* SPDX-License-Identifier: MIT */
/*
 * bmt.h - shared by the iomem firmware test suites (tests/baremetal/suite/).
 *
 * The suites are the portable cases of the host Criterion suites (no
 * Criterion, no libc here): each check prints one TAP line through the
 * harness (common/bm.h). iomem_impl.c compiles the library with IOMEM_PANIC
 * routed to bmt_record_panic(), so a suite can provoke a contract violation
 * and check the report, as tests/test_util.h does on the host.
 */
#ifndef BMT_H
#define BMT_H

#include "bm.h"
#include "iomem.h"

/* ---- reports (IOMEM_PANIC) ---------------------------------------------- */
extern int  bmt_panic_count;
extern char bmt_panic_msg[256];
void bmt_record_panic(const char *msg);

/* ---- tiny libc stand-ins -------------------------------------------------- */
bool bmt_contains(const char *hay, const char *needle);
bool bmt_streq(const char *a, const char *b);
bool bmt_all_bytes(const void *p, size_t n, unsigned char v);
void bmt_fill(void *p, size_t n, unsigned char v);

/* xorshift32, state non-zero */
static inline uint32_t bmt_rand(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* "ok N - name"; returns cond */
#define BMT_OK(cond, name) bm_tap_ok((cond), (name))
/* a check that expects exactly n reports since the last bmt_reports_reset */
#define BMT_REPORTS(n, name) bm_tap_ok(bmt_panic_count == (n), (name))
void bmt_reports_reset(void);
void bmt_diag_u(const char *label, uint64_t v);          /* "# label = v" */
bool bmt_target_is(const char *prefix);                  /* "cm7", "a53"... */

/* ---- the suites, in the order main() runs them --------------------------- */
void bmt_suite_init(void);     /* iomem_baremetal_init: bad input, hooks; ends initialised */
void bmt_suite_alloc(void);    /* IOMalloc family, IONew, IOReturn, types */
void bmt_suite_debug(void);    /* the debug layer (or its absence) */
void bmt_suite_heap(void);     /* the O(1) heap on its own: stress, bounds, misuse */
void bmt_suite_cache(void);    /* default cache maintenance */
void bmt_suite_desc_translated(void);  /* descriptors through translation hooks (heap still empty) */
void bmt_suite_desc(void);     /* descriptors: general, buffer, physical, device, sub/multi/interleaved */
void bmt_suite_dma(void);      /* IODMAController/IODMAEventSource over a firmware ops table */
void bmt_suite_dmacmd(void);   /* IODMACommand: segments, bouncing, kNonCoherent, DriverKit shapes */
void bmt_suite_map(void);      /* cursors, IORangeAllocator, swiommu, IOMappedRead/Write, IOMemoryMap */

/* Re-initialise with t_init.c's final description plus a translation hook
 * pair (both NULL: the default identity translation). */
IOReturn bmt_desc_reinit(IOPhysicalAddress64 (*v2p)(void *, const void *),
                         void *(*p2v)(void *, IOPhysicalAddress64));

/* The hooks bmt_desc_reinit installs are trampolines (t_init.c): a suite
 * may redirect the translation (both non-NULL; NULL again: the pair given
 * to bmt_desc_reinit, else identity) and spy on cache maintenance (called
 * with IOMEM_BAREMETAL_CACHE_*, before the architecture's default runs). */
extern IOPhysicalAddress64 (*bmt_xlate_v2p)(const void *virt);
extern void *(*bmt_xlate_p2v)(IOPhysicalAddress64 phys);
extern void (*bmt_cache_spy)(unsigned op, const void *addr, vm_size_t len);
/* t_init.c's bounce arena (identity-mapped in every translation a suite
 * sets: it lies in the DMA window). One chunk of IODMACommand's bounce
 * pool is 64 pages, page-aligned; the half-fit heap promises it from a free
 * block of 128 pages (G2), so: 128 pages + one for the arena's headers. */
#define BMT_BOUNCE_BYTES (129u * 4096u)
extern uint64_t bmt_bounce_arena[BMT_BOUNCE_BYTES / 8];

/* The memory the final description gives iomem (t_init.c). Power of two
 * (the default policy) needs room: t_desc.c's 64 KiB-aligned buffer takes
 * a 128 KiB block (its IOMalloc footprint, 68 KiB, rounded up), next to
 * the debug layer's table and the other live blocks. */
#define BMT_HEAP0_BYTES (256u * 1024u)
#define BMT_HEAP1_BYTES (48u * 1024u)

#endif
