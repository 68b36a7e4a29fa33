/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_memmap.c - the memmap group: IOMemoryDescriptor_map of a
 * descriptor that is already mapped (the reuse path: lock, find a
 * compatible live map in the descriptor's list, retain) plus the
 * IOMemoryMap_release that balances it.
 *
 *   reuse        128 one-page buffers, each with two live maps (a read-only
 *                one at the head of its list, which the request must skip,
 *                and the compatible read-write one); one iteration maps a
 *                buffer chosen at random and releases the map.
 *                Target: <= 100 ns per map + release (median).
 *   baseline     the same work written the IOKit way from scratch: a
 *                pthread mutex, a linked list of map records compared on
 *                task/options/range, an atomic retain; then the mutex and
 *                an atomic release.
 *
 * Buffer indices rotate through a 512 KiB pool (xorshift64, fixed seed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iomem.h"
#include "iomem_map.h"

#include "bench.h"

#define POOL_N (BENCH_POOL_BYTES / sizeof(uint32_t)) /* 131072 entries */
#define POOL_MASK ((uint32_t)(POOL_N - 1u))
#define SEED UINT64_C(0x9E3779B97F4A7C15)
#define NBUF 128u

/* ---- the baseline: an IOKit-shaped list under a mutex ---------------------- */
typedef struct base_map {
    struct base_map *next;
    uint32_t refcount;
    uint32_t options;
    void *task;
    uint64_t offset, length, address;
} base_map;

typedef struct base_md {
    base_map *maps;
    uint64_t length;
} base_md;

static pthread_mutex_t base_lock = PTHREAD_MUTEX_INITIALIZER;

static BENCH_NOINLINE base_map *base_map_reuse(base_md *md, uint32_t options)
{
    base_map *m;
    pthread_mutex_lock(&base_lock);
    for (m = md->maps; m != NULL; m = m->next) {
        if (m->task == (void *)kernel_task && !((m->options ^ options) & 0xC0001000u) &&
            m->offset == 0 && m->length >= md->length && m->address != 0)
            break;
    }
    if (m != NULL)
        __atomic_fetch_add(&m->refcount, 1u, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&base_lock);
    return m;
}

static BENCH_NOINLINE void base_map_release(base_map *m)
{
    pthread_mutex_lock(&base_lock);
    __atomic_sub_fetch(&m->refcount, 1u, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&base_lock);
}

typedef struct memmap_state {
    const uint32_t *idx;
    uint32_t ci;
    IOMemoryDescriptor *md[NBUF];
    IOMemoryMap *held[NBUF][2];
    base_md bmd[NBUF];
    base_map bmap[NBUF][2];
} memmap_state;

#define IOM_MAP(st, i) IOMemoryDescriptor_map((st)->md[i], 0)
#define IOM_REL(m) IOMemoryMap_release((IOMemoryMap *)(m))
#define BASE_MAP(st, i) base_map_reuse(&(st)->bmd[i], kIOMapAnywhere)
#define BASE_REL(m) base_map_release((base_map *)(m))

#define REUSE_DEF(FNAME, K, MAP, REL)                                           \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                  \
    {                                                                           \
        memmap_state *st = (memmap_state *)st_;                                 \
        const uint32_t *idx = st->idx;                                          \
        uint32_t ci = st->ci;                                                   \
        BENCH_PAD(K);                                                           \
        for (uint64_t i = 0; i < iters; i++) {                                  \
            uint32_t b = idx[ci];                                               \
            ci = (ci + 1u) & POOL_MASK;                                         \
            BENCH_OPAQUE(b);                                                    \
            void *m = (void *)MAP(st, b);                                       \
            if (m == NULL) {                                                    \
                st->ci = ci;                                                    \
                return -1;                                                      \
            }                                                                   \
            BENCH_ESCAPE(m);                                                    \
            REL(m);                                                             \
        }                                                                       \
        st->ci = ci;                                                            \
        return 0;                                                               \
    }

BENCH_DEFINE_COPIES(k_iom_reuse, REUSE_DEF, IOM_MAP, IOM_REL)
BENCH_DEFINE_COPIES(k_base_reuse, REUSE_DEF, BASE_MAP, BASE_REL)

static void state_free(memmap_state *st)
{
    for (uint32_t i = 0; i < NBUF; i++) {
        IOMemoryMap_release(st->held[i][0]);
        IOMemoryMap_release(st->held[i][1]);
        IOMemoryDescriptor_release(st->md[i]);
    }
}

static int state_init(bench_ctx *ctx, memmap_state *st, const uint32_t *idx)
{
    memset(st, 0, sizeof *st);
    st->idx = idx;
    for (uint32_t i = 0; i < NBUF; i++) {
        st->md[i] = IOBufferMemoryDescriptor_withCapacity(4096, kIODirectionInOut, false);
        if (st->md[i] == NULL) {
            bench_fail(ctx, "IOBufferMemoryDescriptor_withCapacity failed");
            return -1;
        }
        /* the read-write map first: the read-only one is then at the head
         * of the list and every lookup has to skip it */
        st->held[i][0] = IOMemoryDescriptor_map(st->md[i], 0);
        st->held[i][1] = IOMemoryDescriptor_map(st->md[i], kIOMapReadOnly);
        if (st->held[i][0] == NULL || st->held[i][1] == NULL || st->held[i][0] == st->held[i][1]) {
            bench_fail(ctx, "IOMemoryDescriptor_map failed");
            return -1;
        }
        st->bmd[i].length = 4096;
        for (int k = 0; k < 2; k++) {
            base_map *bm = &st->bmap[i][k];
            bm->refcount = 1;
            bm->options = kIOMapAnywhere | (k ? kIOMapReadOnly : 0u);
            bm->task = (void *)kernel_task;
            bm->length = 4096;
            bm->address = IOMemoryMap_getAddress(st->held[i][k]);
            bm->next = st->bmd[i].maps;
            st->bmd[i].maps = bm;
        }
    }
    /* semantics before timing: reuse gives the held object back */
    for (uint32_t i = 0; i < NBUF; i++) {
        IOMemoryMap *m = IOMemoryDescriptor_map(st->md[i], 0);
        int same = m == st->held[i][0];
        IOMemoryMap_release(m);
        if (!same || iomem_map_getRetainCount(st->held[i][0]) != 1) {
            bench_fail(ctx, "IOMemoryDescriptor_map did not reuse the live map");
            return -1;
        }
    }
    return 0;
}

int bench_group_memmap(bench_ctx *ctx)
{
    int rc = -1;
    uint32_t *idx = malloc(POOL_N * sizeof *idx);
    memmap_state *st = malloc(sizeof *st);
    uint64_t seed = SEED;
    if (!idx || !st) {
        bench_fail(ctx, "out of memory for the pools");
        goto out;
    }
    for (uint32_t i = 0; i < POOL_N; i++)
        idx[i] = (uint32_t)bench_rand_range(&seed, 0, NBUF - 1);
    bench_note(ctx, "%u one-page buffers, each with a read-write and a read-only live map; "
                    "buffer chosen from a %u-entry pool (xorshift64, fixed seed)",
               NBUF, (unsigned)POOL_N);
    if (state_init(ctx, st, idx) != 0) {
        state_free(st);
        goto out;
    }
    {
        bench_kernel a = {.name = "IOMemoryDescriptor_map (reuse) + IOMemoryMap_release", .state = st,
                          .copies = k_iom_reuse, .ncopies = BENCH_COPIES};
        bench_kernel b = {.name = "mutex + list lookup + atomic retain/release (IOKit-shaped)", .state = st,
                          .copies = k_base_reuse, .ncopies = BENCH_COPIES};
        bench_stats s;
        if (bench_compare(ctx, &a, &b, BENCH_INFO) != 0) {
            state_free(st);
            goto out;
        }
        if (bench_last_stats(ctx, &s) == 0)
            bench_exact(ctx, "memmap: map of an already-mapped descriptor <= 100 ns",
                        "map (reuse) + release, ns/op (median)", s.ns_median, "ns", 100.0);
    }
    state_free(st);
    rc = 0;
out:
    free(idx);
    free(st);
    return rc;
}
