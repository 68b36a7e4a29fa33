/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_alloc.c - the allocation group (performance-anchors.md §6.4, H2/H3).
 *
 * Pairs: allocate, write one byte of the block (so the allocation is real),
 * free. Sizes rotate through a fixed pool of pseudo-random sizes in
 * [16, 4096] (xorshift64, fixed seed): 131072 x uint32 = 512 KiB, so the
 * allocator's size-class branches cannot be memorised (§6.4). Candidate and
 * baseline use the same pool, each with its own cursor, and are generated
 * from the same macro, so their loops differ only in the calls.
 *
 *   malloc+free copy                 vs malloc+free        A/A control: the noise floor
 *   IOMalloc+IOFree                  vs malloc+free        diff of medians <= 1.0 ns (H3)
 *   IOMallocAligned(64)+IOFreeAligned vs aligned_alloc(64, round_up(n,64))+free  ratio <= 1.5
 *   IOMallocZero+IOFree              vs calloc+free        informational
 *   live set of 256 blocks (free oldest, allocate new): IOMalloc vs malloc, informational
 *
 * Exact figures: iomem_malloc_aligned_footprint(size, align) - size, for
 * align 16/64/256/4096 and size 1/100/1000/3000/5000, must be <= align + 16.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iomem.h"

#include "bench.h"

#define SIZE_POOL_N (BENCH_POOL_BYTES / sizeof(uint32_t)) /* 131072 */
#define SIZE_MASK ((uint32_t)(SIZE_POOL_N - 1u))
#define SIZE_MIN 16u
#define SIZE_MAX_ 4096u
#define SIZE_SEED UINT64_C(0x9E3779B97F4A7C15)
#define LIVE_N 256u /* live-set ring size (power of two) */
#define ALIGN 64u
#define AA_NOISY_NS 0.5 /* |A/A diff| above this: say the run was noisy */
#define ROUND_UP(n, a) (((n) + ((a) - 1u)) & ~(size_t)((a) - 1u))

typedef char size_pool_is_pow2[(SIZE_POOL_N & (SIZE_POOL_N - 1u)) == 0 ? 1 : -1];
typedef char live_n_is_pow2[(LIVE_N & (LIVE_N - 1u)) == 0 ? 1 : -1];

typedef struct alloc_state {
    const uint32_t *sizes; /* the shared size pool */
    uint32_t idx;          /* this kernel's cursor in the pool */
    uint32_t pos;          /* live set: oldest slot */
    void **ring;           /* live set: blocks */
    uint32_t *ring_size;   /* live set: their sizes */
} alloc_state;

/* ---- the calls under test, as function-like macros ------------------------- */
#define A_IOMALLOC(n) IOMalloc(n)
#define F_IOFREE(p, n) IOFree((p), (n))
#define A_MALLOC(n) malloc(n)
#define F_FREE(p, n) ((void)(n), free(p))
#define A_IOMALLOC_ALIGNED(n) IOMallocAligned((n), ALIGN)
#define F_IOFREE_ALIGNED(p, n) IOFreeAligned((p), (n))
#define A_ALIGNED_ALLOC(n) aligned_alloc(ALIGN, ROUND_UP((n), ALIGN))
#define A_IOMALLOC_ZERO(n) IOMallocZero(n)
#define A_CALLOC(n) calloc(1, (n))

/*
 * One pair per iteration: size from the pool, allocate, touch, escape, free.
 * The escape is an empty asm with the pointer as input and a memory clobber:
 * no instruction, but the compiler may not drop the malloc/free pair or the
 * store (clang and gcc otherwise delete `free(malloc(n))`).
 * PAIR_DEF defines one placement copy; BENCH_DEFINE_COPIES stamps out all.
 */
#define PAIR_DEF(FNAME, K, ALLOC, FREE)                                         \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                  \
    {                                                                           \
        alloc_state *st = (alloc_state *)st_;                                   \
        const uint32_t *sizes = st->sizes;                                      \
        uint32_t idx = st->idx;                                                 \
        BENCH_PAD(K);                                                           \
        for (uint64_t i = 0; i < iters; i++) {                                  \
            size_t n = sizes[idx];                                              \
            idx = (idx + 1u) & SIZE_MASK;                                       \
            BENCH_OPAQUE(n); /* a caller that does not know n < 2^32 */         \
            unsigned char *p = (unsigned char *)ALLOC(n);                       \
            if (p == NULL) {                                                    \
                st->idx = idx;                                                  \
                return -1;                                                      \
            }                                                                   \
            p[0] = (unsigned char)i;                                            \
            BENCH_ESCAPE(p);                                                    \
            FREE(p, n);                                                         \
        }                                                                       \
        st->idx = idx;                                                          \
        return 0;                                                               \
    }

BENCH_DEFINE_COPIES(k_iomalloc_pair, PAIR_DEF, A_IOMALLOC, F_IOFREE)
BENCH_DEFINE_COPIES(k_malloc_pair, PAIR_DEF, A_MALLOC, F_FREE)
/* A/A control: the same code as k_malloc_pair, at other addresses */
BENCH_DEFINE_COPIES(k_malloc_pair_copy, PAIR_DEF, A_MALLOC, F_FREE)
BENCH_DEFINE_COPIES(k_iomalloc_aligned_pair, PAIR_DEF, A_IOMALLOC_ALIGNED, F_IOFREE_ALIGNED)
BENCH_DEFINE_COPIES(k_aligned_alloc_pair, PAIR_DEF, A_ALIGNED_ALLOC, F_FREE)
BENCH_DEFINE_COPIES(k_iomalloc_zero_pair, PAIR_DEF, A_IOMALLOC_ZERO, F_IOFREE)
BENCH_DEFINE_COPIES(k_calloc_pair, PAIR_DEF, A_CALLOC, F_FREE)

/*
 * Live set: a ring of LIVE_N blocks; each iteration frees the oldest block
 * and allocates a new one in its slot. LIVE_AUX defines NAME##_fill and
 * NAME##_drain, which set the ring up before and tear it down after.
 */
#define LIVE_DEF(FNAME, K, ALLOC, FREE)                                         \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                  \
    {                                                                           \
        alloc_state *st = (alloc_state *)st_;                                   \
        const uint32_t *sizes = st->sizes;                                      \
        void **ring = st->ring;                                                 \
        uint32_t *ring_size = st->ring_size;                                    \
        uint32_t idx = st->idx, pos = st->pos;                                  \
        BENCH_PAD(K);                                                           \
        for (uint64_t i = 0; i < iters; i++) {                                  \
            FREE(ring[pos], ring_size[pos]);                                    \
            size_t n = sizes[idx];                                              \
            idx = (idx + 1u) & SIZE_MASK;                                       \
            BENCH_OPAQUE(n);                                                    \
            unsigned char *p = (unsigned char *)ALLOC(n);                       \
            ring[pos] = p;                                                      \
            ring_size[pos] = (uint32_t)n;                                       \
            if (p == NULL) {                                                    \
                st->idx = idx;                                                  \
                st->pos = pos;                                                  \
                return -1;                                                      \
            }                                                                   \
            p[0] = (unsigned char)i;                                            \
            BENCH_ESCAPE(p);                                                    \
            pos = (pos + 1u) & (LIVE_N - 1u);                                   \
        }                                                                       \
        st->idx = idx;                                                          \
        st->pos = pos;                                                          \
        return 0;                                                               \
    }

#define LIVE_AUX(NAME, ALLOC, FREE)                                             \
    static int NAME##_fill(alloc_state *st)                                     \
    {                                                                           \
        for (uint32_t k = 0; k < LIVE_N; k++) {                                 \
            size_t n = st->sizes[st->idx];                                      \
            st->idx = (st->idx + 1u) & SIZE_MASK;                               \
            st->ring[k] = ALLOC(n);                                             \
            st->ring_size[k] = (uint32_t)n;                                     \
            if (st->ring[k] == NULL)                                            \
                return -1;                                                      \
            memset(st->ring[k], 0x5a, n);                                       \
        }                                                                       \
        st->pos = 0;                                                            \
        return 0;                                                               \
    }                                                                           \
    static void NAME##_drain(alloc_state *st)                                   \
    {                                                                           \
        for (uint32_t k = 0; k < LIVE_N; k++) {                                 \
            if (st->ring[k] != NULL)                                            \
                FREE(st->ring[k], st->ring_size[k]);                            \
            st->ring[k] = NULL;                                                 \
        }                                                                       \
    }

BENCH_DEFINE_COPIES(k_iomalloc_live, LIVE_DEF, A_IOMALLOC, F_IOFREE)
BENCH_DEFINE_COPIES(k_malloc_live, LIVE_DEF, A_MALLOC, F_FREE)
LIVE_AUX(k_iomalloc_live, A_IOMALLOC, F_IOFREE)
LIVE_AUX(k_malloc_live, A_MALLOC, F_FREE)

/* ---- correctness checks before timing (a wrong answer is an error) ---------- */
static int check_semantics(bench_ctx *ctx)
{
    static const size_t sizes[] = {1, 15, 16, 100, 1000, 3000, 4096, 5000, 70000};
    static const size_t aligns[] = {1, 16, 64, 256, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = IOMalloc(n);
        if (!p) {
            bench_fail(ctx, "IOMalloc(%zu) returned NULL", n);
            return -1;
        }
        memset(p, 0xa5, n);
        IOFree(p, n);
        p = IOMallocZero(n);
        if (!p) {
            bench_fail(ctx, "IOMallocZero(%zu) returned NULL", n);
            return -1;
        }
        for (size_t k = 0; k < n; k++)
            if (p[k] != 0) {
                bench_fail(ctx, "IOMallocZero(%zu): byte %zu is not zero", n, k);
                IOFree(p, n);
                return -1;
            }
        IOFree(p, n);
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
            size_t a = aligns[j];
            p = IOMallocAligned(n, a);
            if (!p) {
                bench_fail(ctx, "IOMallocAligned(%zu, %zu) returned NULL", n, a);
                return -1;
            }
            if (((uintptr_t)p & (a - 1u)) != 0) {
                bench_fail(ctx, "IOMallocAligned(%zu, %zu) = %p is misaligned", n, a,
                           (void *)p);
                IOFreeAligned(p, n);
                return -1;
            }
            memset(p, 0xa5, n);
            IOFreeAligned(p, n);
        }
    }
    return 0;
}

/* ---- memory overhead of IOMallocAligned (exact) ------------------------------- */
static void footprint_table(bench_ctx *ctx)
{
    static const vm_offset_t aligns[] = {16, 64, 256, 4096};
    static const vm_size_t sizes[] = {1, 100, 1000, 3000, 5000};
    char name[96];
    for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            vm_size_t n = sizes[i];
            vm_offset_t a = aligns[j];
            vm_size_t fp = iomem_malloc_aligned_footprint(n, a);
            snprintf(name, sizeof name, "aligned footprint-size (align %4lu, size %4lu)",
                     (unsigned long)a, (unsigned long)n);
            if (fp == 0) {
                bench_note(ctx, "iomem_malloc_aligned_footprint(%lu, %lu) = 0 (would fail)",
                           (unsigned long)n, (unsigned long)a);
                bench_exact(ctx, "IOMallocAligned overhead <= align+16", name, INFINITY,
                            "B", (double)a + 16.0);
                continue;
            }
            /* overhead may be negative only if the footprint is smaller than
             * the request, which would be a bug: report it as-is */
            double over = (double)fp - (double)n;
            bench_exact(ctx, "IOMallocAligned overhead <= align+16", name, over, "B",
                        (double)a + 16.0);
            if (fp < n)
                bench_note(ctx, "footprint(%lu, %lu) = %lu is smaller than the size",
                           (unsigned long)n, (unsigned long)a, (unsigned long)fp);
        }
    }
}

/* ---- the group ------------------------------------------------------------------- */
int bench_group_alloc(bench_ctx *ctx)
{
    int rc = -1;
    uint32_t *sizes = malloc(SIZE_POOL_N * sizeof *sizes);
    void **ring_a = calloc(LIVE_N, sizeof *ring_a);
    void **ring_b = calloc(LIVE_N, sizeof *ring_b);
    uint32_t *rsz_a = calloc(LIVE_N, sizeof *rsz_a);
    uint32_t *rsz_b = calloc(LIVE_N, sizeof *rsz_b);
    alloc_state sa, sb;
    int live_a = 0, live_b = 0;

    if (!sizes || !ring_a || !ring_b || !rsz_a || !rsz_b) {
        bench_fail(ctx, "out of memory for the size pool");
        goto out;
    }
    uint64_t seed = SIZE_SEED;
    for (uint32_t i = 0; i < SIZE_POOL_N; i++)
        sizes[i] = (uint32_t)bench_rand_range(&seed, SIZE_MIN, SIZE_MAX_);
    bench_note(ctx, "sizes: %u-entry pool (%u KiB), uniform %u..%u, xorshift64 fixed seed; "
                    "one op = alloc + 1-byte write + free (live set: free oldest + alloc)",
               (unsigned)SIZE_POOL_N, (unsigned)(BENCH_POOL_BYTES / 1024), SIZE_MIN, SIZE_MAX_);

    if (check_semantics(ctx) != 0)
        goto out;

    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    sa.sizes = sb.sizes = sizes;

#define PAIR(CNAME, CFN, BNAME, BFN, TARGET)                                     \
    do {                                                                        \
        bench_kernel a = {.name = CNAME, .state = &sa, .copies = CFN,         \
                          .ncopies = BENCH_COPIES};                             \
        bench_kernel b = {.name = BNAME, .state = &sb, .copies = BFN,         \
                          .ncopies = BENCH_COPIES};                             \
        sa.idx = sb.idx = 0;                                                    \
        if (bench_compare(ctx, &a, &b, TARGET) != 0)                            \
            goto out;                                                           \
    } while (0)

    /* A/A control: two byte-identical kernels. Their difference is the
     * measurement floor (noise + code placement) for the 1 ns target. */
    PAIR("malloc+free (A/A control)", k_malloc_pair_copy, "malloc+free", k_malloc_pair,
         BENCH_INFO);
    {
        bench_stats aa;
        if (bench_last_stats(ctx, &aa) == 0 && fabs(aa.diff_median) > AA_NOISY_NS)
            bench_note(ctx, "the A/A control differs by %+.2f ns/op (> %.2f): this run was "
                            "noisy (other load on the CPU?); do not trust ns-level targets "
                            "from it, run again",
                       aa.diff_median, AA_NOISY_NS);
    }
    PAIR("IOMalloc+IOFree", k_iomalloc_pair, "malloc+free", k_malloc_pair,
         BENCH_DIFF_NS_LE(1.0));
    PAIR("IOMallocAligned(64)+IOFreeAligned", k_iomalloc_aligned_pair,
         "aligned_alloc(64,rup64(n))+free", k_aligned_alloc_pair, BENCH_RATIO_LE(1.5));
    PAIR("IOMallocZero+IOFree", k_iomalloc_zero_pair, "calloc+free", k_calloc_pair,
         BENCH_INFO);
#undef PAIR

    /* live set */
    sa.idx = sb.idx = 0;
    sa.ring = ring_a;
    sa.ring_size = rsz_a;
    sb.ring = ring_b;
    sb.ring_size = rsz_b;
    live_a = 1;
    if (k_iomalloc_live_fill(&sa) != 0) {
        bench_fail(ctx, "IOMalloc returned NULL while filling the live set");
        goto out;
    }
    live_b = 1;
    if (k_malloc_live_fill(&sb) != 0) {
        bench_fail(ctx, "malloc returned NULL while filling the live set");
        goto out;
    }
    {
        bench_kernel a = {.name = "live256 IOMalloc/IOFree", .state = &sa,
                          .copies = k_iomalloc_live, .ncopies = BENCH_COPIES};
        bench_kernel b = {.name = "live256 malloc/free", .state = &sb,
                          .copies = k_malloc_live, .ncopies = BENCH_COPIES};
        if (bench_compare(ctx, &a, &b, BENCH_INFO) != 0)
            goto out;
    }

    footprint_table(ctx);
    rc = 0;
out:
    if (live_a)
        k_iomalloc_live_drain(&sa);
    if (live_b)
        k_malloc_live_drain(&sb);
    free(rsz_b);
    free(rsz_a);
    free(ring_b);
    free(ring_a);
    free(sizes);
    return rc;
}
