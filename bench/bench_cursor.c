/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_cursor.c - the IOMemoryCursor group (issue 6 targets,
 * performance-anchors.md §1.4 and §6.1 S3/S6/S7).
 *
 *   resumable: full walks of a physical descriptor of N non-adjacent ranges
 *     of unequal length (so extents are searched, not indexed), in calls of
 *     8 slots, the caller advancing by the transfer size (IOKit's loop):
 *     ns per segment with 4096 ranges <= 1.2x that with 16 ranges;
 *   against XNU's shape: the same walks where each call first walks
 *     getPhysicalSegment from offset 0 to fromPosition, then generates with
 *     IOKit's loop and an output call per segment: >= 50x faster at 4096
 *     ranges (the restart is quadratic; XNU's getPhysicalSegment restarts
 *     even per run, so the real XNU is slower still);
 *   byte order: big and little cursors within 10% of the natural one
 *     (ratio of medians <= 1.10), scattered pages, calls of 64 slots;
 *   scattered 4 KiB pages (one segment per page), natural cursor, calls of
 *     64 slots: <= 1.0 ns per segment; the store floor shown beside it;
 *   random positions (informational): one call of 8 slots at a random
 *     position, 4096 vs 16 ranges (O(log extents) to find the place).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iomem.h"
#include "iomem_dma.h"

#include "bench.h"

#define SLOTS_RANGES 8u
#define SLOTS_PAGES 64u
#define SCATTER_PAGES 256u
#define POS_POOL_N (BENCH_POOL_BYTES / sizeof(uint64_t)) /* 65536 */
#define POS_MASK ((uint32_t)(POS_POOL_N - 1u))

typedef UInt32 (*gen_fn)(IOMemoryCursor *, IOMemoryDescriptor *, IOByteCount, void *, UInt32, UInt32,
                         IOByteCount *);

typedef struct cur_state {
    IOMemoryCursor *c;
    IOMemoryDescriptor *md;
    IOByteCount length;
    UInt32 slots;
    IOByteCount maxSeg;
    IOPhysicalSegment *segs;
    const uint64_t *pos;      /* random positions */
    uint32_t idx;
    uint64_t nsegs;           /* segments of the last full walk */
    const IOPhysicalRange *flat; /* floor: a plain {phys,len} array */
    uint32_t nflat;
} cur_state;

/* ---- the XNU-shaped baseline (IOMemoryCursor.cpp, restated) ------------- */

static BENCH_NOINLINE void xnu_output(IOPhysicalSegment seg, void *segments, UInt32 index)
{
    ((IOPhysicalSegment *)segments)[index] = seg;
}

/* XNU's stateless lookup: every call finds fromPosition by walking the
 * descriptor's segments from offset 0 (kIOMDFirstSegment restarts at range
 * 0), then continues sequentially. */
static inline addr64_t xnu_restart_lookup(IOMemoryDescriptor *md, IOByteCount pos, IOByteCount *len)
{
    IOByteCount off = 0, l = 0;
    for (;;) {
        addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &l, 0);
        if (pa == 0)
            return 0;
        if (pos < off + l) {
            *len = l - (pos - off);
            return pa + (pos - off);
        }
        off += l;
    }
}

/* IOKit's genPhysicalSegments loop, with the output function called
 * through a volatile pointer (a virtual call in XNU). */
static void (*volatile xnu_out)(IOPhysicalSegment, void *, UInt32) = xnu_output;

static BENCH_NOINLINE UInt32 xnu_gen(IOMemoryCursor *unused, IOMemoryDescriptor *md, IOByteCount pos, void *segs,
                                     UInt32 maxSegs, UInt32 maxXfer, IOByteCount *xfer)
{
    /* the cursor's limits, as the candidate's: maxSeg 64 KiB, no max */
    const IOPhysicalLength maxSeg = 65536;
    IOPhysicalSegment cur = {0, 0}, seg = {0, 0};
    UInt32 idx = 0, total = 0;
    IOByteCount len = IOMemoryDescriptor_getLength(md);
    int first = 1;
    void (*out)(IOPhysicalSegment, void *, UInt32) = xnu_out;
    (void)unused;
    if (maxXfer == 0)
        maxXfer = 0xFFFFFFFFu;
    while (seg.location || pos < len) {
        if (!seg.location) {
            if (first) {
                seg.location = xnu_restart_lookup(md, pos, &seg.length);
                first = 0;
            } else {
                seg.location = IOMemoryDescriptor_getPhysicalSegment(md, pos, &seg.length, 0);
            }
            if (!seg.location)
                return 0;
            pos += seg.length;
        }
        if (!cur.location) {
            total += (UInt32)seg.length;
            cur = seg;
            seg.location = 0;
        } else if (cur.location + cur.length == seg.location) {
            total += (UInt32)seg.length;
            cur.length += seg.length;
            seg.location = 0;
        }
        if (!seg.location) {
            if (cur.length > maxSeg) {
                seg.location = cur.location + maxSeg;
                seg.length = cur.length - maxSeg;
                total -= (UInt32)seg.length;
                cur.length -= seg.length;
            }
            if (total >= maxXfer) {
                cur.length -= total - maxXfer;
                total = maxXfer;
                break;
            }
        }
        if (seg.location) {
            if (idx + 1 == maxSegs)
                break;
            out(cur, segs, idx++);
            cur.location = 0;
        }
    }
    if (cur.location)
        out(cur, segs, idx++);
    *xfer = total;
    return idx;
}

/* ---- kernels ---------------------------------------------------------------- */

/* One full walk per iteration: IOKit's caller loop. */
#define WALK_DEF(FNAME, K, GEN)                                                         \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                            \
    {                                                                                   \
        BENCH_PAD(K);                                                                   \
        cur_state *st = (cur_state *)st_;                                               \
        uint64_t nsegs = 0;                                                             \
        for (uint64_t i = 0; i < iters; i++) {                                          \
            IOByteCount pos = 0, x;                                                     \
            UInt32 n;                                                                   \
            nsegs = 0;                                                                  \
            while ((n = GEN(st->c, st->md, pos, st->segs, st->slots, 0, &x)) != 0) {    \
                pos += x;                                                               \
                nsegs += n;                                                             \
            }                                                                           \
            if (pos != st->length)                                                      \
                return -1;                                                              \
            BENCH_ESCAPE(st->segs);                                                     \
        }                                                                               \
        st->nsegs = nsegs;                                                              \
        return 0;                                                                       \
    }
BENCH_DEFINE_COPIES(k_walk, WALK_DEF, IOMemoryCursor_genPhysicalSegments)
BENCH_DEFINE_COPIES(k_walk_xnu, WALK_DEF, xnu_gen)

/* One call at a random position per iteration. */
static BENCH_KERNEL int k_random(void *st_, uint64_t iters)
{
    cur_state *st = (cur_state *)st_;
    uint32_t idx = st->idx;
    for (uint64_t i = 0; i < iters; i++) {
        IOByteCount x;
        UInt32 n = IOMemoryCursor_genPhysicalSegments(st->c, st->md, st->pos[idx], st->segs, st->slots, 0, &x);
        if (n == 0)
            return -1;
        idx = (idx + 1u) & POS_MASK;
    }
    BENCH_ESCAPE(st->segs);
    st->idx = idx;
    return 0;
}

/* The store floor: the same segments copied from a plain array, in the
 * same calls of `slots`. */
#define FLOOR_DEF(FNAME, K, UNUSED)                                                     \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                            \
    {                                                                                   \
        BENCH_PAD(K);                                                                   \
        cur_state *st = (cur_state *)st_;                                               \
        const IOPhysicalRange *r = st->flat;                                            \
        IOPhysicalSegment *out = st->segs;                                              \
        for (uint64_t i = 0; i < iters; i++) {                                          \
            uint32_t n = st->nflat, slots = st->slots, k = 0;                           \
            BENCH_OPAQUE(n);                                                            \
            for (uint32_t j = 0; j < n; j++) {                                          \
                out[k].location = r[j].address;                                         \
                out[k].length = r[j].length;                                            \
                if (++k == slots) {                                                     \
                    k = 0;                                                              \
                    BENCH_ESCAPE(out);                                                  \
                }                                                                       \
            }                                                                           \
            BENCH_ESCAPE(out);                                                          \
        }                                                                               \
        return 0;                                                                       \
    }
BENCH_DEFINE_COPIES(k_floor, FLOOR_DEF, 0)

/* ---- inputs ----------------------------------------------------------------- */

/* @n non-adjacent physical ranges of 512..12288 bytes */
static IOMemoryDescriptor *ranges_md(uint32_t n, uint64_t seed)
{
    IOAddressRange *r = calloc(n, sizeof *r);
    IOPhysicalAddress a = 0x100000;
    IOMemoryDescriptor *md;
    if (!r)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        r[i].length = bench_rand_range(&seed, 512, 12288);
        r[i].address = a;
        a += r[i].length + 4096 + bench_rand_range(&seed, 0, 4) * 4096;
    }
    md = IOMemoryDescriptor_withAddressRanges(r, n, kIODirectionInOut, NULL);
    free(r);
    return md;
}

static IOMemoryDescriptor *scattered_buffer(uint32_t pages)
{
    iomem_posix_phys_layout l;
    memset(&l, 0, sizeof l);
    l.policy = IOMEM_POSIX_LAYOUT_SCATTERED;
    iomem_posix_set_phys_layout(&l);
    return IOBufferMemoryDescriptor_withCapacity((vm_size_t)pages * iomem__platform_page_size(),
                                                 kIODirectionInOut, false);
}

static int count_walk(bench_ctx *ctx, cur_state *st, const bench_kernel_fn *k)
{
    if (k[0](st, 1) != 0) {
        bench_fail(ctx, "cursor walk failed");
        return -1;
    }
    return 0;
}

static void init_state(cur_state *st, IOMemoryCursor *c, IOMemoryDescriptor *md, UInt32 slots,
                       IOPhysicalSegment *segs)
{
    memset(st, 0, sizeof *st);
    st->c = c;
    st->md = md;
    st->length = IOMemoryDescriptor_getLength(md);
    st->slots = slots;
    st->segs = segs;
}

int bench_group_cursor(bench_ctx *ctx)
{
    int rc = -1;
    IOMemoryDescriptor *r16 = NULL, *r4096 = NULL, *sc = NULL;
    IOMemoryCursor *nat = NULL, *big = NULL, *lit = NULL;
    IOPhysicalSegment *segs = calloc(SLOTS_PAGES, sizeof *segs);
    uint64_t *pos_a = malloc(POS_POOL_N * sizeof *pos_a);
    uint64_t *pos_b = malloc(POS_POOL_N * sizeof *pos_b);
    IOPhysicalRange *flat = NULL;
    cur_state sa, sb, sx;
    bench_stats st;
    double seg16 = 0, seg4096 = 0;

    if (!segs || !pos_a || !pos_b) {
        bench_fail(ctx, "out of memory");
        goto out;
    }
    r16 = ranges_md(16, 0x1234567ull);
    r4096 = ranges_md(4096, 0x7654321ull);
    sc = scattered_buffer(SCATTER_PAGES);
    nat = IONaturalMemoryCursor_withSpecification(65536, 0, 1);
    big = IOBigMemoryCursor_withSpecification(65536, 0, 1);
    lit = IOLittleMemoryCursor_withSpecification(65536, 0, 1);
    if (!r16 || !r4096 || !sc || !nat || !big || !lit) {
        bench_fail(ctx, "descriptor or cursor creation failed");
        goto out;
    }

    /* ---- resumable: 4096 vs 16 ranges, and XNU's restart ---- */
    init_state(&sa, nat, r4096, SLOTS_RANGES, segs);
    init_state(&sb, nat, r16, SLOTS_RANGES, segs);
    init_state(&sx, nat, r4096, SLOTS_RANGES, segs);
    if (count_walk(ctx, &sa, k_walk) || count_walk(ctx, &sb, k_walk) || count_walk(ctx, &sx, k_walk_xnu))
        goto out;
    if (sx.nsegs != sa.nsegs) {
        bench_fail(ctx, "XNU-shaped walk gave %llu segments, the cursor %llu", (unsigned long long)sx.nsegs,
                   (unsigned long long)sa.nsegs);
        goto out;
    }
    bench_note(ctx, "ranges: %llu and %llu segments per walk, calls of %u slots, natural cursor",
               (unsigned long long)sa.nsegs, (unsigned long long)sb.nsegs, SLOTS_RANGES);
    {
        bench_kernel a = {.name = "cursor walk, 4096 ranges (per segment)", .copies = k_walk,
                          .ncopies = BENCH_COPIES, .state = &sa, .ops_per_iter = (double)sa.nsegs};
        bench_kernel b = {.name = "cursor walk, 16 ranges (per segment)", .copies = k_walk,
                          .ncopies = BENCH_COPIES, .state = &sb, .ops_per_iter = (double)sb.nsegs};
        if (bench_compare(ctx, &a, &b, BENCH_RATIO_LE(1.2)) != 0)
            goto out;
        if (bench_last_stats(ctx, &st) == 0) {
            seg4096 = st.ns_median;
            seg16 = st.base_ns_median;
        }
    }
    {
        bench_kernel a = {.name = "cursor walk, 4096 ranges (per segment)", .copies = k_walk,
                          .ncopies = BENCH_COPIES, .state = &sa, .ops_per_iter = (double)sa.nsegs};
        bench_kernel b = {.name = "XNU restart-from-zero, 4096 ranges (per segment)", .copies = k_walk_xnu,
                          .ncopies = BENCH_COPIES, .state = &sx, .ops_per_iter = (double)sx.nsegs};
        /* >= 50x faster: candidate / baseline <= 0.02 */
        if (bench_compare(ctx, &a, &b, BENCH_RATIO_LE(0.02)) != 0)
            goto out;
        if (bench_last_stats(ctx, &st) == 0)
            bench_exact(ctx, "cursor", "speed-up over XNU's restart at 4096 ranges (>= 50)",
                        st.base_ns_median / st.ns_median, "x", -1.0);
    }
    bench_exact(ctx, "cursor", "ns per segment, 4096 ranges", seg4096, "ns", -1.0);
    bench_exact(ctx, "cursor", "ns per segment, 16 ranges", seg16, "ns", -1.0);

    /* ---- scattered pages: natural vs big vs little, and the floor ---- */
    {
        uint32_t n;
        cur_state sn, sbig, slit, sf;
        iomem_md_extents(sc, &n);
        flat = calloc(n, sizeof *flat);
        if (!flat) {
            bench_fail(ctx, "out of memory");
            goto out;
        }
        for (uint32_t i = 0, off = 0; i < n; i++) {
            IOByteCount l = 0;
            flat[i].address = IOMemoryDescriptor_getPhysicalSegment(sc, off, &l, 0);
            flat[i].length = l;
            off += (uint32_t)l;
        }
        init_state(&sn, nat, sc, SLOTS_PAGES, segs);
        init_state(&sbig, big, sc, SLOTS_PAGES, segs);
        init_state(&slit, lit, sc, SLOTS_PAGES, segs);
        init_state(&sf, nat, sc, SLOTS_PAGES, segs);
        sf.flat = flat;
        sf.nflat = n;
        if (count_walk(ctx, &sn, k_walk) || count_walk(ctx, &sbig, k_walk) || count_walk(ctx, &slit, k_walk))
            goto out;
        bench_note(ctx, "scattered: %u pages of %lu bytes, %llu segments per walk, calls of %u slots",
                   SCATTER_PAGES, (unsigned long)iomem__platform_page_size(), (unsigned long long)sn.nsegs,
                   SLOTS_PAGES);
        bench_kernel kn = {.name = "natural cursor, scattered (per segment)", .copies = k_walk,
                           .ncopies = BENCH_COPIES, .state = &sn, .ops_per_iter = (double)sn.nsegs};
        bench_kernel kb = {.name = "big cursor, scattered (per segment)", .copies = k_walk,
                           .ncopies = BENCH_COPIES, .state = &sbig, .ops_per_iter = (double)sbig.nsegs};
        bench_kernel kl = {.name = "little cursor, scattered (per segment)", .copies = k_walk,
                           .ncopies = BENCH_COPIES, .state = &slit, .ops_per_iter = (double)slit.nsegs};
        bench_kernel kf = {.name = "store floor: plain array copy (per segment)", .copies = k_floor,
                           .ncopies = BENCH_COPIES, .state = &sf, .ops_per_iter = (double)n};
        if (bench_compare(ctx, &kn, &kf, BENCH_INFO) != 0)
            goto out;
        if (bench_last_stats(ctx, &st) == 0)
            bench_exact(ctx, "cursor", "scattered pages, natural: ns per segment (<= 1.0)", st.ns_median, "ns",
                        1.0);
        if (bench_compare(ctx, &kb, &kn, BENCH_RATIO_LE(1.10)) != 0 ||
            bench_compare(ctx, &kl, &kn, BENCH_RATIO_LE(1.10)) != 0)
            goto out;
    }

    /* ---- random positions (informational): O(log extents) to start ---- */
    init_state(&sa, nat, r4096, SLOTS_RANGES, segs);
    init_state(&sb, nat, r16, SLOTS_RANGES, segs);
    {
        uint64_t seed = 0x9E3779B97F4A7C15ull;
        for (uint32_t i = 0; i < POS_POOL_N; i++) {
            pos_a[i] = bench_rand_range(&seed, 0, sa.length - 1);
            pos_b[i] = bench_rand_range(&seed, 0, sb.length - 1);
        }
        sa.pos = pos_a;
        sb.pos = pos_b;
        bench_kernel a = {.name = "one call at a random position, 4096 ranges", .fn = k_random, .state = &sa};
        bench_kernel b = {.name = "one call at a random position, 16 ranges", .fn = k_random, .state = &sb};
        if (bench_compare(ctx, &a, &b, BENCH_INFO) != 0)
            goto out;
    }
    rc = 0;
out:
    IOMemoryCursor_release(nat);
    IOMemoryCursor_release(big);
    IOMemoryCursor_release(lit);
    IOMemoryDescriptor_release(r16);
    IOMemoryDescriptor_release(r4096);
    IOMemoryDescriptor_release(sc);
    free(flat);
    free(segs);
    free(pos_a);
    free(pos_b);
    return rc;
}
