/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_iova.c - the iova group: IOMapper's IOVA space through the C
 * accessors (performance-anchors.md §3, §6.3), on the software IOMMU set as
 * the system mapper.
 *
 *   IOVM pair     IOMapperIOVMAlloc(n) + IOMapperIOVMFree(p, n), n = 1..8
 *                 CPU pages rotating through a 512 KiB pool, vs the same
 *                 loop without the calls: difference of medians <= 15 ns
 *                 (a hit in the per-thread IOVA cache: no lock, no atomic)
 *   range pair    the same loop on a bare IORangeAllocator with
 *                 IOMEM_RANGE_CACHE (the allocator the IOMMU sits on; no
 *                 lock, no page table): informational
 *   mapped I/O    IODMACommand prepare + gen64IOVMSegments (all) + complete
 *                 of a prepared 64-page buffer with scattered frames, kMapped
 *                 through the software IOMMU (one IOVA run: 64 entries set
 *                 and cleared) vs kUnmapped (64 physical segments): ratio of
 *                 medians <= 3
 *   locked pair   the pair plus iomem_swiommu_flush_cache after each free:
 *                 every allocation takes the locked path (IOMMU lock, range
 *                 allocator), the flush the registry and IOMMU locks:
 *                 informational, what the per-thread cache saves
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iomem.h"
#include "iomem_map.h"
#include "iomem_dma.h"

#include "bench.h"

#define POOL_N (BENCH_POOL_BYTES / sizeof(uint32_t))
#define POOL_MASK ((uint32_t)(POOL_N - 1u))
#define SEED UINT64_C(0x9E3779B97F4A7C15)

typedef struct iova_state {
    const uint32_t *sizes;
    uint32_t ci;
    IORangeAllocator *ra;
    IOMapper *m;
} iova_state;

#define IOVM_ALLOC(st, n, out) ((*(out) = IOMapperIOVMAlloc((unsigned)(n))) == 0)
#define IOVM_FREE(st, s, n) IOMapperIOVMFree((ppnum_t)(s), (unsigned)(n))
#define RA_ALLOC(st, n, out) (!IORangeAllocator_allocate((st)->ra, (n), (out), 0))
#define RA_FREE(st, s, n) IORangeAllocator_deallocate((st)->ra, (s), (n))
/* the pair, then iomem_swiommu_flush_cache: every allocation misses the
 * thread cache (the locked path) */
#define OPS_ALLOC(st, n, out) IOVM_ALLOC(st, n, out)
#define OPS_FREE(st, s, n) (IOVM_FREE(st, s, n), iomem_swiommu_flush_cache((st)->m))
#define NO_ALLOC(st, n, out) (*(out) = (n) + 1u, 0)
#define NO_FREE(st, s, n) ((void)(s), (void)(n))

#define PAIR_DEF(FNAME, K, ALLOC, FREE)                                         \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                  \
    {                                                                           \
        iova_state *st = (iova_state *)st_;                                     \
        const uint32_t *sizes = st->sizes;                                      \
        uint32_t ci = st->ci;                                                   \
        BENCH_PAD(K);                                                           \
        for (uint64_t i = 0; i < iters; i++) {                                  \
            uint64_t n = sizes[ci], s;                                          \
            ci = (ci + 1u) & POOL_MASK;                                         \
            BENCH_OPAQUE(n);                                                    \
            if (ALLOC(st, n, &s)) {                                             \
                st->ci = ci;                                                    \
                return -1;                                                      \
            }                                                                   \
            BENCH_ESCAPE(s);                                                    \
            FREE(st, s, n);                                                     \
        }                                                                       \
        st->ci = ci;                                                            \
        return 0;                                                               \
    }

BENCH_DEFINE_COPIES(k_iovm_pair, PAIR_DEF, IOVM_ALLOC, IOVM_FREE)
BENCH_DEFINE_COPIES(k_ra_pair, PAIR_DEF, RA_ALLOC, RA_FREE)
BENCH_DEFINE_COPIES(k_ops_pair, PAIR_DEF, OPS_ALLOC, OPS_FREE)
BENCH_DEFINE_COPIES(k_no_pair, PAIR_DEF, NO_ALLOC, NO_FREE)

/* ---- one I/O through an IODMACommand ---- */
typedef struct io_state {
    IODMACommand *cmd;
    UInt64 bytes;
} io_state;

#define IO_DEF(FNAME, K, unused)                                                \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                  \
    {                                                                           \
        io_state *st = (io_state *)st_;                                         \
        IODMACommand_Segment64 seg[72];                                         \
        BENCH_PAD(K);                                                           \
        for (uint64_t i = 0; i < iters; i++) {                                  \
            UInt64 off = 0, sum = 0;                                            \
            UInt32 n = 72;                                                      \
            if (IODMACommand_prepare(st->cmd, 0, 0, true, true) != kIOReturnSuccess) \
                return -1;                                                      \
            if (IODMACommand_gen64IOVMSegments(st->cmd, &off, seg, &n) != kIOReturnSuccess) \
                return -1;                                                      \
            for (UInt32 j = 0; j < n; j++)                                      \
                sum += seg[j].fLength;                                          \
            BENCH_ESCAPE(seg);                                                  \
            if (sum != st->bytes || IODMACommand_complete(st->cmd, true, true) != kIOReturnSuccess) \
                return -1;                                                      \
        }                                                                       \
        return 0;                                                               \
    }

BENCH_DEFINE_COPIES(k_io_mapped, IO_DEF, 0)
BENCH_DEFINE_COPIES(k_io_unmapped, IO_DEF, 0)

/* 64 pages with scattered frames, mapped vs unmapped command. */
static int bench_io(bench_ctx *ctx, IOMapper *m)
{
    int rc = -1;
    iomem_posix_phys_layout scattered = {IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0}, old;
    IOBufferMemoryDescriptor *bmd;
    io_state mapped = {NULL, 64u * 4096u}, unmapped = {NULL, 64u * 4096u};
    iomem_posix_get_phys_layout(&old);
    iomem_posix_set_phys_layout(&scattered);
    bmd = IOBufferMemoryDescriptor_withCapacity(64u * 4096u, kIODirectionInOut, false);
    iomem_posix_set_phys_layout(&old);
    mapped.cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, IODMACommand_kMapped, 0, 1, m,
                                                NULL);
    unmapped.cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, IODMACommand_kUnmapped, 0, 1,
                                                  NULL, NULL);
    if (!bmd || !mapped.cmd || !unmapped.cmd ||
        IODMACommand_setMemoryDescriptor(mapped.cmd, bmd, false) != kIOReturnSuccess ||
        IODMACommand_setMemoryDescriptor(unmapped.cmd, bmd, false) != kIOReturnSuccess) {
        bench_fail(ctx, "could not set up the 64-page commands");
        goto out;
    }
    {
        bench_kernel a = {.name = "64-page I/O, kMapped (swiommu)", .state = &mapped, .copies = k_io_mapped,
                          .ncopies = BENCH_COPIES};
        bench_kernel b = {.name = "64-page I/O, kUnmapped", .state = &unmapped, .copies = k_io_unmapped,
                          .ncopies = BENCH_COPIES};
        if (bench_compare(ctx, &a, &b, BENCH_RATIO_LE(3.0)) != 0)
            goto out;
    }
    rc = 0;
out:
    if (mapped.cmd) {
        IODMACommand_clearMemoryDescriptor(mapped.cmd, true);
        IODMACommand_release(mapped.cmd);
    }
    if (unmapped.cmd) {
        IODMACommand_clearMemoryDescriptor(unmapped.cmd, true);
        IODMACommand_release(unmapped.cmd);
    }
    if (bmd)
        IOMemoryDescriptor_release(bmd);
    return rc;
}

static void exact_ns(bench_ctx *ctx, const char *family, const char *name, double limit)
{
    bench_stats s;
    if (bench_last_stats(ctx, &s) == 0)
        bench_exact(ctx, family, name, s.diff_median, "ns", limit);
}

/* A wrong answer is an internal error: check the accessors first. */
static int check_semantics(bench_ctx *ctx, IOMapper *m)
{
    ppnum_t a = IOMapperIOVMAlloc(3), b = IOMapperIOVMAlloc(3);
    int ok = a != 0 && b != 0 && (a + 3 <= b || b + 3 <= a);
    if (ok && IOMapperInsertPage(a, 2, 0x1234) != a + 2)
        ok = 0;
    if (ok && IOMapper_mapToPhysicalAddress(m, ((uint64_t)a + 2) << 12) != (uint64_t)0x1234 << 12)
        ok = 0;
    if (a)
        IOMapperIOVMFree(a, 3);
    if (b)
        IOMapperIOVMFree(b, 3);
    if (ok && IOMapper_mapToPhysicalAddress(m, ((uint64_t)a + 2) << 12) != 0)
        ok = 0;
    if (!ok)
        bench_fail(ctx, "IOMapperIOVMAlloc/InsertPage/IOVMFree give wrong answers; not timing them");
    return ok ? 0 : -1;
}

int bench_group_iova(bench_ctx *ctx)
{
    int rc = -1;
    uint32_t *sizes = malloc(POOL_N * sizeof *sizes);
    uint64_t seed = SEED;
    iova_state iovm, ra, ops, none;
    IOMapper *m = NULL;

    memset(&iovm, 0, sizeof iovm);
    memset(&ra, 0, sizeof ra);
    memset(&ops, 0, sizeof ops);
    memset(&none, 0, sizeof none);
    if (!sizes) {
        bench_fail(ctx, "out of memory for the pool");
        goto out;
    }
    for (uint32_t i = 0; i < POOL_N; i++)
        sizes[i] = (uint32_t)bench_rand_range(&seed, 1, 8);
    iovm.sizes = ra.sizes = ops.sizes = none.sizes = sizes;
    {
        iomem_swiommu_desc d = {4096, 0, 0, 32};
        m = iomem_swiommu_create(&d);
    }
    ra.ra = IORangeAllocator_withRange(((uint64_t)1 << 40) - 1, 1, 0, IOMEM_RANGE_CACHE);
    if (!m || !ra.ra || iomem__platform_page_size() != 4096) {
        bench_fail(ctx, "could not create the software IOMMU / range allocator (or the page is not 4 KiB)");
        goto out;
    }
    iomem_mapper_set_system(m);
    ops.m = m;
    bench_note(ctx, "software IOMMU as the system mapper: 4 KiB pages, IOVA [4 KiB, 4 GiB); "
                    "sizes 1..8 pages from a %u-entry pool (xorshift64, fixed seed)", (unsigned)POOL_N);
    if (check_semantics(ctx, m) != 0)
        goto out;
    {
        bench_kernel a = {.name = "IOMapperIOVMAlloc+IOMapperIOVMFree", .state = &iovm,
                          .copies = k_iovm_pair, .ncopies = BENCH_COPIES};
        bench_kernel b = {.name = "same loop, no calls", .state = &none, .copies = k_no_pair,
                          .ncopies = BENCH_COPIES};
        if (bench_compare(ctx, &a, &b, BENCH_DIFF_NS_LE(15.0)) != 0)
            goto out;
        exact_ns(ctx, "iova: IOVM pair <= 15 ns", "IOMapperIOVMAlloc+Free, hot", 15.0);
    }
    {
        bench_kernel a = {.name = "IOMapperIOVMAlloc+IOMapperIOVMFree", .state = &iovm,
                          .copies = k_iovm_pair, .ncopies = BENCH_COPIES};
        bench_kernel b = {.name = "IORangeAllocator cached pair", .state = &ra, .copies = k_ra_pair,
                          .ncopies = BENCH_COPIES};
        if (bench_compare(ctx, &a, &b, BENCH_INFO) != 0)
            goto out;
    }
    if (bench_io(ctx, m) != 0)
        goto out;
    {
        bench_kernel a = {.name = "pair + flush (locked path)", .state = &ops,
                          .copies = k_ops_pair, .ncopies = BENCH_COPIES};
        bench_kernel b = {.name = "same loop, no calls", .state = &none, .copies = k_no_pair,
                          .ncopies = BENCH_COPIES};
        if (bench_compare(ctx, &a, &b, BENCH_INFO) != 0)
            goto out;
    }
    rc = 0;
out:
    iomem_mapper_set_system(NULL);
    if (m)
        IOMapper_release(m);
    if (ra.ra)
        IORangeAllocator_release(ra.ra);
    free(sizes);
    return rc;
}
