/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_desc.c - the descriptor walk group (issue 4 targets,
 * performance-anchors.md §6.1 S1/S3/S7).
 *
 *   contiguous 1 GiB buffer, sequential getPhysicalSegment walk: calls per
 *     walk <= 2 and ns per walk < 50 (exact figures from the measurement);
 *   fully scattered 64-page buffer, sequential walk: ns per segment <= 2,
 *     against a from-scratch walk over a plain {phys,len} array (the floor);
 *   random-offset getPhysicalSegment, 4096-extent vs 16-extent descriptor:
 *     ratio of medians <= 4 (offsets rotate through a 512 KiB pool);
 *   memory: header bytes (<= 256) and bytes per extent (<= 16).
 *
 * Descriptors are built on the POSIX software machine with the
 * contiguous / scattered layout policies.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iomem.h"

#include "bench.h"

/* Keep a value alive without claiming memory changed (BENCH_ESCAPE's
 * "memory" clobber would force every descriptor field to be reloaded, which
 * no real driver loop storing segments into a ring of its own does). */
#define ESCAPE_REG(v) __asm__ __volatile__("" : : "r"(v))

#define OFF_POOL_N (BENCH_POOL_BYTES / sizeof(uint64_t)) /* 65536 */
#define OFF_MASK ((uint32_t)(OFF_POOL_N - 1u))

typedef struct walk_state {
    IOMemoryDescriptor *md;
    IOByteCount length;
    const uint64_t *offs; /* random offsets */
    uint32_t idx;
    uint64_t calls;       /* last walk's call count */
    const IOPhysicalRange *flat; /* baseline: plain segment array */
    uint32_t nflat;
} walk_state;

/* one full sequential walk per iteration */
static BENCH_KERNEL int k_walk(void *st_, uint64_t iters)
{
    walk_state *st = (walk_state *)st_;
    IOMemoryDescriptor *md = st->md;
    uint64_t calls = 0;
    for (uint64_t i = 0; i < iters; i++) {
        IOByteCount off = 0, len = st->length, seg;
        BENCH_OPAQUE(len);
        calls = 0;
        while (off < len) {
            addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
            ESCAPE_REG(pa);
            calls++;
            if (pa == 0)
                return -1;
            off += seg;
        }
    }
    st->calls = calls;
    return 0;
}

/* the explicit walk engine (what IODMACommand will use) */
static BENCH_KERNEL int k_engine(void *st_, uint64_t iters)
{
    walk_state *st = (walk_state *)st_;
    uint64_t calls = 0;
    for (uint64_t i = 0; i < iters; i++) {
        iomem_md_walk w;
        addr64_t pa;
        IOByteCount seg;
        calls = 0;
        if (!iomem_md_walk_init(&w, st->md, 0))
            return -1;
        while ((seg = iomem_md_walk_next(&w, &pa)) != 0) {
            ESCAPE_REG(pa);
            ESCAPE_REG(seg);
            calls++;
        }
    }
    st->calls = calls;
    return 0;
}

/* baseline: the same loop over a plain array of {phys, len} */
static BENCH_KERNEL int k_walk_flat(void *st_, uint64_t iters)
{
    walk_state *st = (walk_state *)st_;
    const IOPhysicalRange *r = st->flat;
    uint32_t n = st->nflat;
    for (uint64_t i = 0; i < iters; i++) {
        BENCH_OPAQUE(n);
        for (uint32_t j = 0; j < n; j++) {
            addr64_t pa = r[j].address;
            IOByteCount len = r[j].length;
            ESCAPE_REG(pa);
            ESCAPE_REG(len);
        }
    }
    return 0;
}

static BENCH_KERNEL int k_random(void *st_, uint64_t iters)
{
    walk_state *st = (walk_state *)st_;
    IOMemoryDescriptor *md = st->md;
    const uint64_t *offs = st->offs;
    uint32_t idx = st->idx;
    for (uint64_t i = 0; i < iters; i++) {
        IOByteCount seg;
        addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, offs[idx], &seg, 0);
        idx = (idx + 1u) & OFF_MASK;
        BENCH_ESCAPE(pa);
        BENCH_ESCAPE(seg);
    }
    st->idx = idx;
    return 0;
}

static void set_layout(iomem_posix_layout p)
{
    iomem_posix_phys_layout l;
    memset(&l, 0, sizeof l);
    l.policy = p;
    iomem_posix_set_phys_layout(&l);
}

static IOMemoryDescriptor *scattered_buffer(uint64_t pages)
{
    set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
    return IOBufferMemoryDescriptor_withCapacity((vm_size_t)(pages * iomem__platform_page_size()),
                                                 kIODirectionInOut, false);
}

/* Runs of mean 2 pages: extents of unequal length, so getPhysicalSegment
 * cannot use the fixed-stride path and searches (O(log extents)). */
static IOMemoryDescriptor *runs_buffer(uint64_t pages)
{
    iomem_posix_phys_layout l;
    memset(&l, 0, sizeof l);
    l.policy = IOMEM_POSIX_LAYOUT_RUNS;
    l.run_mean = 2;
    l.seed = 7;
    iomem_posix_set_phys_layout(&l);
    return IOBufferMemoryDescriptor_withCapacity((vm_size_t)(pages * iomem__platform_page_size()),
                                                 kIODirectionInOut, false);
}

static void fill_offsets(uint64_t *offs, IOByteCount length, uint64_t seed)
{
    for (uint32_t i = 0; i < OFF_POOL_N; i++)
        offs[i] = bench_rand_range(&seed, 0, length - 1);
}

/* Random-offset getPhysicalSegment on a descriptor with many extents
 * against one with few, interleaved; target: many / few <= 4. */
static int random_pair(bench_ctx *ctx, IOMemoryDescriptor *many, IOMemoryDescriptor *few,
                       const char *many_name, const char *few_name, uint64_t *offs_a, uint64_t *offs_b)
{
    walk_state wa, wb;
    uint32_t na, nb;
    memset(&wa, 0, sizeof wa);
    memset(&wb, 0, sizeof wb);
    fill_offsets(offs_a, IOMemoryDescriptor_getLength(many), UINT64_C(0x9E3779B97F4A7C15));
    fill_offsets(offs_b, IOMemoryDescriptor_getLength(few), UINT64_C(0xD1B54A32D192ED03));
    wa.md = many;
    wa.offs = offs_a;
    wb.md = few;
    wb.offs = offs_b;
    iomem_md_extents(many, &na);
    iomem_md_extents(few, &nb);
    bench_note(ctx, "%s: %u-extent vs %u-extent descriptors, %u-offset pools", many_name, na, nb,
               (unsigned)OFF_POOL_N);
    bench_kernel a = {.name = many_name, .fn = k_random, .state = &wa};
    bench_kernel b = {.name = few_name, .fn = k_random, .state = &wb};
    return bench_compare(ctx, &a, &b, BENCH_RATIO_LE(4.0));
}

int bench_group_desc(bench_ctx *ctx)
{
    int rc = -1;
    IOMemoryDescriptor *big = NULL, *s64 = NULL, *e4096 = NULL, *e16 = NULL, *r8192 = NULL, *r32 = NULL;
    uint64_t *offs_a = malloc(OFF_POOL_N * sizeof *offs_a);
    uint64_t *offs_b = malloc(OFF_POOL_N * sizeof *offs_b);
    IOPhysicalRange *flat = NULL;
    walk_state wa, wb;
    bench_stats st;
    uint32_t n;

    if (!offs_a || !offs_b) {
        bench_fail(ctx, "out of memory");
        goto out;
    }
    memset(&wa, 0, sizeof wa);
    memset(&wb, 0, sizeof wb);

    /* ---- contiguous 1 GiB ---- */
    set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS);
    big = IOBufferMemoryDescriptor_withCapacity((vm_size_t)1 << 30, kIODirectionInOut, true);
    if (!big) {
        bench_fail(ctx, "1 GiB contiguous buffer descriptor failed");
        goto out;
    }
    iomem_md_extents(big, &n);
    bench_note(ctx, "1 GiB contiguous buffer: %u extent(s), page %lu", n,
               (unsigned long)iomem__platform_page_size());
    wa.md = big;
    wa.length = IOMemoryDescriptor_getLength(big);
    {
        bench_kernel a = {.name = "walk contiguous 1 GiB (per walk)", .fn = k_walk, .state = &wa};
        if (bench_compare(ctx, &a, NULL, BENCH_INFO) != 0)
            goto out;
        if (bench_last_stats(ctx, &st) == 0)
            bench_exact(ctx, "desc walk", "contiguous 1 GiB: ns per full walk (< 50)", st.ns_median, "ns", 50.0);
        bench_exact(ctx, "desc walk", "contiguous 1 GiB: getPhysicalSegment calls per walk (<= 2)",
                    (double)wa.calls, "calls", 2.0);
    }

    /* ---- scattered 64 pages ---- */
    s64 = scattered_buffer(64);
    if (!s64) {
        bench_fail(ctx, "64-page scattered buffer failed");
        goto out;
    }
    iomem_md_extents(s64, &n);
    flat = calloc(n, sizeof *flat);
    if (!flat) {
        bench_fail(ctx, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        IOByteCount seg = 0, off = 0;
        for (uint32_t j = 0; j < i; j++)
            off += flat[j].length;
        flat[i].address = IOMemoryDescriptor_getPhysicalSegment(s64, off, &seg, 0);
        flat[i].length = seg;
    }
    memset(&wa, 0, sizeof wa);
    wa.md = s64;
    wa.length = IOMemoryDescriptor_getLength(s64);
    wb.flat = flat;
    wb.nflat = n;
    {
        bench_kernel a = {.name = "walk scattered 64 pages (per segment)", .fn = k_walk, .state = &wa,
                          .ops_per_iter = (double)n};
        bench_kernel b = {.name = "plain {phys,len} array walk (per segment)", .fn = k_walk_flat, .state = &wb,
                          .ops_per_iter = (double)n};
        if (bench_compare(ctx, &a, &b, BENCH_INFO) != 0)
            goto out;
        if (bench_last_stats(ctx, &st) == 0)
            bench_exact(ctx, "desc walk", "scattered 64 pages: ns per segment (<= 2)", st.ns_median, "ns", 2.0);
        bench_exact(ctx, "desc walk", "scattered 64 pages: segments", (double)wa.calls, "segs", -1.0);
    }
    {
        bench_kernel a = {.name = "iomem_md_walk scattered 64 (per segment)", .fn = k_engine, .state = &wa,
                          .ops_per_iter = (double)n};
        bench_kernel b = {.name = "plain {phys,len} array walk (per segment)", .fn = k_walk_flat, .state = &wb,
                          .ops_per_iter = (double)n};
        if (bench_compare(ctx, &a, &b, BENCH_INFO) != 0)
            goto out;
        if (bench_last_stats(ctx, &st) == 0)
            bench_exact(ctx, "desc walk", "scattered 64 pages, walk engine: ns per segment (<= 2)", st.ns_median,
                        "ns", 2.0);
    }

    /* ---- random offsets: many vs few extents, uniform (fixed-stride path)
     *      and runs of mean 2 pages (the searching path) ---- */
    e4096 = scattered_buffer(4096);
    e16 = scattered_buffer(16);
    r8192 = runs_buffer(8192);
    r32 = runs_buffer(32);
    if (!e4096 || !e16 || !r8192 || !r32) {
        bench_fail(ctx, "buffers for the random-offset test failed");
        goto out;
    }
    if (random_pair(ctx, e4096, e16, "random getPhysicalSegment, 4096 extents",
                    "random getPhysicalSegment, 16 extents", offs_a, offs_b) != 0 ||
        random_pair(ctx, r8192, r32, "random getPhysicalSegment, runs, ~4096 extents",
                    "random getPhysicalSegment, runs, ~16 extents", offs_a, offs_b) != 0)
        goto out;

    /* ---- memory ---- */
    {
        uint32_t na;
        iomem_md_extents(e4096, &na);
        bench_exact(ctx, "desc memory", "descriptor header bytes (<= 256)",
                    (double)sizeof(IOMemoryDescriptor), "B", 256.0);
        bench_exact(ctx, "desc memory", "bytes per extent (<= 16)", (double)sizeof(iomem_md_extent), "B", 16.0);
        bench_exact(ctx, "desc memory", "prepared 4096-extent buffer: header + extents",
                    (double)(sizeof(IOMemoryDescriptor) + (size_t)na * sizeof(iomem_md_extent)), "B",
                    256.0 + 16.0 * na);
    }
    rc = 0;
out:
    IOMemoryDescriptor_release(big);
    IOMemoryDescriptor_release(s64);
    IOMemoryDescriptor_release(e4096);
    IOMemoryDescriptor_release(e16);
    IOMemoryDescriptor_release(r8192);
    IOMemoryDescriptor_release(r32);
    free(flat);
    free(offs_a);
    free(offs_b);
    return rc;
}
