/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_seggen.c - segment generation (issue #5 item 5; targets of
 * performance-anchors.md §6.1 S1 S3-S9 and §6.2 B1).
 *
 * The library kernel is IODMACommand_genIOVMSegments on a command prepared
 * once per descriptor (kUnmapped | kIterateOnly, OutputHost64), run over the
 * whole prepared range into a segment array, calls repeated until
 * kIOReturnOverrun. The baselines (bench/seg_models.h) read the same
 * descriptors' pages: page16 (store floor), merge_branchy, linux_model,
 * fbsd_model, xnu_model.
 *
 * Inputs: descriptors wired on the POSIX software machine with the layouts
 * contiguous, scattered, runs of mean 8 and of mean 2; 64, 1024 and 262144
 * pages (1 GiB); max segment 4K, 64K, 1M. Each size has a pool of
 * descriptors whose page arrays total >= BENCH_POOL_BYTES, used
 * round-robin. The segment lists of every baseline and of the library are
 * checked against a plain reference once per configuration (bench_fail on
 * a mismatch).
 *
 * Then: S4 runs2 vs scattered per page, S6 BE/LE/32 vs host64, S7 resume
 * with 4096 vs 16 ranges, S1/S5 one 1 GiB physical extent unsplit and
 * split, S9 a 64-page I/O end to end, B1 bounce slot cost and bounce copy
 * throughput.
 *
 * Output: the framework's table (one row per comparison: ns/page, the
 * baseline, ratio of medians and of bests, PASS/MISS), then notes: the
 * matrix (pattern, pages, maxseg, segments per descriptor, ns/page median
 * and best, ns/segment, iomem/baseline ratio for each baseline, targets)
 * and one line per issue #5 target. Figures below 10 ns are recorded as
 * exact figures in ps (the framework prints exact figures as integers).
 * On a machine shared with other busy processes run with --cputime.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "iomem_dma.h"

#include "bench.h"
#include "seg_models.h"

/* 1 once IODMACommand is implemented (branch dmacmd merged); 0 measures a
 * stand-in (the inline iomem_walk engine + split) so the harness runs. */
#ifndef SEGGEN_HAVE_DMACMD
#define SEGGEN_HAVE_DMACMD 1
#endif

#define SG_INLINE static inline __attribute__((always_inline))
#define SG_MAX_PAGES 262144u
#define SG_NMAXSEG 3
static const uint64_t sg_maxsegs[SG_NMAXSEG] = {4096u, 65536u, 1048576u};
static const char *const sg_maxseg_names[SG_NMAXSEG] = {"4K", "64K", "1M"};
#define SG_NSIZES 3
static const uint32_t sg_sizes[SG_NSIZES] = {64u, 1024u, SG_MAX_PAGES};

enum { PAT_CONTIG, PAT_SCATTER, PAT_RUNS8, PAT_RUNS2, PAT_N };
static const char *const sg_pat_names[PAT_N] = {"contiguous", "scattered", "runs8", "runs2"};

/* ---- inputs ---------------------------------------------------------------- */
typedef struct sg_pool {
    const char *name;
    int pat;
    uint32_t pages, ndesc;
    uint8_t *va;
    size_t va_bytes;
    IOMemoryDescriptor **md;
    uint64_t *pfn;     /* ndesc * pages frame numbers (NULL: not needed) */
    uintptr_t *lpages; /* linux struct page pointers, same order */
} sg_pool;

static void set_layout(iomem_posix_layout policy, uint32_t run_mean, uint64_t seed)
{
    iomem_posix_phys_layout l;
    memset(&l, 0, sizeof l);
    l.policy = policy;
    l.run_mean = run_mean;
    l.seed = seed;
    iomem_posix_set_phys_layout(&l);
}

static void set_pattern(int pat)
{
    switch (pat) {
    case PAT_CONTIG:
        set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
        break;
    case PAT_SCATTER:
        set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
        break;
    case PAT_RUNS8:
        set_layout(IOMEM_POSIX_LAYOUT_RUNS, 8, 0x5EED0008u);
        break;
    default:
        set_layout(IOMEM_POSIX_LAYOUT_RUNS, 2, 0x5EED0002u);
        break;
    }
}

static void pool_free(sg_pool *p)
{
    if (p->md) {
        for (uint32_t d = 0; d < p->ndesc; d++)
            if (p->md[d]) {
                IOMemoryDescriptor_complete(p->md[d], kIODirectionNone);
                IOMemoryDescriptor_release(p->md[d]);
            }
        free(p->md);
    }
    if (p->va)
        munmap(p->va, p->va_bytes);
    free(p->pfn);
    free(p->lpages);
    memset(p, 0, sizeof *p);
}

static void *map_va(size_t bytes)
{
    void *va = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return va == MAP_FAILED ? NULL : va;
}

/* @ndesc descriptors of @pages pages each, wired under @layout_pat
 * (iomem_posix_set_phys_layout before prepare); @ranges_per_desc > 1 makes
 * each descriptor @ranges_per_desc one-page ranges on every other virtual
 * page (a general descriptor with many ranges). @want_pages: read the page
 * arrays back (getPhysicalSegment per page) for the baselines. */
static int pool_build(bench_ctx *ctx, sg_pool *p, const char *name, int layout_pat, iomem_posix_layout raw,
                      uint32_t pages, uint32_t ndesc, uint32_t ranges_per_desc, int want_pages)
{
    const size_t page = SEG_PAGE_SIZE;
    size_t per = (size_t)pages * page * (ranges_per_desc > 1 ? 2u : 1u);
    memset(p, 0, sizeof *p);
    p->name = name;
    p->pat = layout_pat;
    p->pages = pages;
    p->ndesc = ndesc;
    p->va_bytes = per * ndesc;
    p->va = map_va(p->va_bytes);
    p->md = calloc(ndesc, sizeof *p->md);
    if (!p->va || !p->md) {
        bench_fail(ctx, "%s: out of memory", name);
        return -1;
    }
    if (layout_pat >= 0)
        set_pattern(layout_pat);
    else
        set_layout(raw, 0, 0);
    for (uint32_t d = 0; d < ndesc; d++) {
        uint8_t *base = p->va + (size_t)d * per;
        if (ranges_per_desc > 1) {
            IOAddressRange *r = calloc(ranges_per_desc, sizeof *r);
            if (!r) {
                bench_fail(ctx, "%s: out of memory", name);
                return -1;
            }
            for (uint32_t i = 0; i < ranges_per_desc; i++) {
                r[i].address = (mach_vm_address_t)(uintptr_t)(base + (size_t)i * 2u * page);
                r[i].length = page;
            }
            p->md[d] = IOMemoryDescriptor_withAddressRanges(r, ranges_per_desc, kIODirectionInOut, kernel_task);
            free(r);
        } else {
            p->md[d] = IOMemoryDescriptor_withAddressRange((mach_vm_address_t)(uintptr_t)base, (mach_vm_size_t)pages * page,
                                                           kIODirectionInOut, kernel_task);
        }
        if (!p->md[d]) {
            bench_fail(ctx, "%s: descriptor %u failed", name, d);
            return -1;
        }
        if (IOMemoryDescriptor_prepare(p->md[d], kIODirectionNone) != kIOReturnSuccess) {
            IOMemoryDescriptor_release(p->md[d]);
            p->md[d] = NULL;
            bench_fail(ctx, "%s: prepare of descriptor %u failed", name, d);
            return -1;
        }
    }
    if (!want_pages)
        return 0;
    p->pfn = malloc((size_t)ndesc * pages * sizeof *p->pfn);
    p->lpages = malloc((size_t)ndesc * pages * sizeof *p->lpages);
    if (!p->pfn || !p->lpages) {
        bench_fail(ctx, "%s: out of memory", name);
        return -1;
    }
    for (uint32_t d = 0; d < ndesc; d++)
        for (uint32_t j = 0; j < pages; j++) {
            IOByteCount len = 0;
            addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(p->md[d], (IOByteCount)j * page, &len, 0);
            size_t k = (size_t)d * pages + j;
            if (pa == 0 || (pa & (page - 1)) != 0) {
                bench_fail(ctx, "%s: no physical page %u of descriptor %u", name, j, d);
                return -1;
            }
            p->pfn[k] = pa >> SEG_PAGE_SHIFT;
            p->lpages[k] = LSG_VMEMMAP + (uintptr_t)p->pfn[k] * LSG_PAGE_STRUCT;
        }
    return 0;
}

/* ---- kernel state ----------------------------------------------------------- */
typedef struct sg_state {
    sg_pool *p;
    uint64_t maxseg;
    uint32_t idx;
    seg16 *out; /* shared output, SG_MAX_PAGES entries */
    uint32_t out_cap;
    linux_sgt *lsgt;
    fbsd_tag ftag;
    fbsd_pmap fpm;
    xnu_cmd xcmd;
    xnu_internal_seg_fn xout;
    IODMACommand **cmd; /* one per descriptor, or [0] only (end to end) */
    uint32_t ncmd;
    UInt32 gen_chunk; /* segments per genIOVMSegments call (0: all that fit) */
    size_t seg_bytes; /* 16 (64-bit outputs) or 8 */
    uint64_t last_segs;
    /* bounce / copy */
    void *src, *dst;
    size_t copy_bytes;
} sg_state;

SG_INLINE uint32_t sg_next_idx(const sg_state *st, uint32_t idx)
{
    return idx + 1u == st->p->ndesc ? 0u : idx + 1u;
}

SG_INLINE int body_page16(sg_state *st, uint32_t idx)
{
    const uint32_t n = st->p->pages;
    uint32_t k = seg_page16(st->p->pfn + (size_t)idx * n, n, st->out);
    BENCH_ESCAPE(st->out);
    st->last_segs = k;
    return 0;
}

SG_INLINE int body_merge(sg_state *st, uint32_t idx)
{
    const uint32_t n = st->p->pages;
    uint32_t k = seg_merge_branchy(st->p->pfn + (size_t)idx * n, n, st->maxseg, st->out);
    BENCH_ESCAPE(st->out);
    st->last_segs = k;
    return 0;
}

SG_INLINE int body_linux(sg_state *st, uint32_t idx)
{
    const uint32_t n = st->p->pages;
    uint32_t k = seg_linux_model(st->lsgt, st->p->lpages + (size_t)idx * n, n, st->maxseg, ~(uint64_t)0);
    BENCH_ESCAPE(st->lsgt->chunks);
    st->last_segs = k;
    return k ? 0 : -1;
}

SG_INLINE int body_fbsd(sg_state *st, uint32_t idx)
{
    const uint32_t n = st->p->pages;
    uintptr_t va = st->fpm.base + (uintptr_t)idx * n * SEG_PAGE_SIZE;
    uint32_t k = seg_fbsd_model(&st->ftag, &st->fpm, va, (uint64_t)n * SEG_PAGE_SIZE, st->out);
    BENCH_ESCAPE(st->out);
    st->last_segs = k;
    return k ? 0 : -1;
}

SG_INLINE int body_xnu(sg_state *st, uint32_t idx)
{
    const uint32_t n = st->p->pages;
    xnu_md md = {st->p->pfn + (size_t)idx * n, (uint64_t)n * SEG_PAGE_SIZE};
    xnu_internal_seg_fn f = st->xout;
    BENCH_OPAQUE(f);
    uint32_t k = seg_xnu_model(&st->xcmd, f, &md, st->out, st->out_cap);
    BENCH_ESCAPE(st->out);
    st->last_segs = k;
    return k ? 0 : -1;
}

#if SEGGEN_HAVE_DMACMD
/* genIOVMSegments over the whole prepared range; repeated calls until
 * kIOReturnOverrun. Output wraps to the array start when full. */
SG_INLINE int sg_gen_all(sg_state *st, IODMACommand *cmd)
{
    UInt64 off = 0;
    uint32_t n = 0;
    uint64_t total = 0;
    for (;;) {
        UInt32 k;
        IOReturn r;
        if (n == st->out_cap || (st->gen_chunk && st->out_cap - n < st->gen_chunk))
            n = 0; /* full: start over (a driver hands the array to the device) */
        k = st->gen_chunk ? st->gen_chunk : st->out_cap - n;
        r = IODMACommand_genIOVMSegments(cmd, &off, (uint8_t *)st->out + (size_t)n * st->seg_bytes, &k);
        if (r == kIOReturnOverrun)
            break;
        if (r != kIOReturnSuccess || k == 0)
            return -1;
        n += k;
        total += k;
    }
    BENCH_ESCAPE(st->out);
    st->last_segs = total;
    return 0;
}

SG_INLINE int body_iomem(sg_state *st, uint32_t idx)
{
    return sg_gen_all(st, st->cmd[idx]);
}

/* one genIOVMSegments call from offset 0 (no terminating Overrun call) */
SG_INLINE int body_iomem_once(sg_state *st, uint32_t idx)
{
    UInt64 off = 0;
    UInt32 k = st->out_cap;
    if (IODMACommand_genIOVMSegments(st->cmd[idx], &off, st->out, &k) != kIOReturnSuccess)
        return -1;
    BENCH_ESCAPE(st->out);
    st->last_segs = k;
    return 0;
}
#else
/* stand-in: the library's walk engine and a maxseg split, emitted inline */
SG_INLINE int body_iomem(sg_state *st, uint32_t idx)
{
    iomem_walk w;
    addr64_t pa;
    IOByteCount len;
    seg16 *o = st->out;
    uint64_t max = st->maxseg;
    uint32_t k = 0;
    if (!iomem_walk_init(&w, st->p->md[idx], 0, ~(IOByteCount)0))
        return -1;
    while ((len = iomem_walk_next(&w, &pa)) != 0) {
        while (len > max) {
            o[k].addr = pa;
            o[k].len = max;
            k++;
            pa += max;
            len -= max;
        }
        o[k].addr = pa;
        o[k].len = len;
        k++;
    }
    BENCH_ESCAPE(o);
    st->last_segs = k;
    return 0;
}
#endif

#define SG_KDEF(FNAME, K, BODY)                                                                \
    static BENCH_KERNEL int FNAME(void *st_, uint64_t iters)                                   \
    {                                                                                          \
        BENCH_PAD(K);                                                                          \
        sg_state *st = (sg_state *)st_;                                                        \
        uint32_t idx = st->idx;                                                                \
        for (uint64_t i = 0; i < iters; i++) {                                                 \
            if (BODY(st, idx) != 0)                                                            \
                return -1;                                                                     \
            idx = sg_next_idx(st, idx);                                                        \
        }                                                                                      \
        st->idx = idx;                                                                         \
        return 0;                                                                              \
    }
BENCH_DEFINE_COPIES(k_page16, SG_KDEF, body_page16)
BENCH_DEFINE_COPIES(k_merge, SG_KDEF, body_merge)
BENCH_DEFINE_COPIES(k_linux, SG_KDEF, body_linux)
BENCH_DEFINE_COPIES(k_fbsd, SG_KDEF, body_fbsd)
BENCH_DEFINE_COPIES(k_xnu, SG_KDEF, body_xnu)
BENCH_DEFINE_COPIES(k_iomem, SG_KDEF, body_iomem)

#if SEGGEN_HAVE_DMACMD
/* S9: one 64-page I/O end to end on one command */
SG_INLINE int body_io(sg_state *st, uint32_t idx)
{
    IODMACommand *cmd = st->cmd[0];
    if (IODMACommand_setMemoryDescriptor(cmd, st->p->md[idx], false) != kIOReturnSuccess)
        return -1;
    if (IODMACommand_prepare(cmd, 0, 0, true, true) != kIOReturnSuccess)
        return -1;
    if (sg_gen_all(st, cmd) != 0)
        return -1;
    if (IODMACommand_complete(cmd, true, true) != kIOReturnSuccess)
        return -1;
    return IODMACommand_clearMemoryDescriptor(cmd, false) == kIOReturnSuccess ? 0 : -1;
}
/* B1: prepare + complete without copies (bounce slot alloc + free when bounced) */
SG_INLINE int body_prepcomp(sg_state *st, uint32_t idx)
{
    IODMACommand *cmd = st->cmd[idx];
    if (IODMACommand_prepare(cmd, 0, 0, false, false) != kIOReturnSuccess)
        return -1;
    return IODMACommand_complete(cmd, false, false) == kIOReturnSuccess ? 0 : -1;
}
/* bounce copy: memory -> bounce of a prepared, bounced command */
SG_INLINE int body_sync(sg_state *st, uint32_t idx)
{
    return IODMACommand_synchronize(st->cmd[idx], kIODirectionOut) == kIOReturnSuccess ? 0 : -1;
}
BENCH_DEFINE_COPIES(k_io, SG_KDEF, body_io)
BENCH_DEFINE_COPIES(k_iomem_once, SG_KDEF, body_iomem_once)
BENCH_DEFINE_COPIES(k_prepcomp, SG_KDEF, body_prepcomp)
BENCH_DEFINE_COPIES(k_sync, SG_KDEF, body_sync)

/* the same bytes as the bounce copy of descriptor idx, with memcpy */
SG_INLINE int body_memcpy(sg_state *st, uint32_t idx)
{
    size_t off = (size_t)idx * st->copy_bytes;
    memcpy((uint8_t *)st->dst + off, (const uint8_t *)st->src + off, st->copy_bytes);
    BENCH_ESCAPE(st->dst);
    return 0;
}
BENCH_DEFINE_COPIES(k_memcpy, SG_KDEF, body_memcpy)
#endif

/* ---- commands ------------------------------------------------------------------ */
#if SEGGEN_HAVE_DMACMD
static void cmds_free(sg_state *st)
{
    if (!st->cmd)
        return;
    for (uint32_t i = 0; i < st->ncmd; i++)
        if (st->cmd[i]) {
            if (IODMACommand_getMemoryDescriptor(st->cmd[i]))
                IODMACommand_clearMemoryDescriptor(st->cmd[i], true);
            IODMACommand_release(st->cmd[i]);
        }
    free(st->cmd);
    st->cmd = NULL;
    st->ncmd = 0;
}

/* one command per descriptor of the pool; @attach 1: setMemoryDescriptor
 * with autoPrepare, 2: without, 0: no descriptor */
static int cmds_make(bench_ctx *ctx, sg_state *st, IODMACommand_SegmentFunction fn, UInt8 bits,
                     uint64_t maxseg, IODMACommand_MappingOptions opts, uint32_t n, int attach)
{
    st->cmd = calloc(n, sizeof *st->cmd);
    st->ncmd = n;
    if (!st->cmd) {
        bench_fail(ctx, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        IOReturn r;
        st->cmd[i] = IODMACommand_withSpecification(fn, bits, maxseg, opts, 0, 1, NULL, NULL);
        if (!st->cmd[i]) {
            bench_fail(ctx, "IODMACommand_withSpecification(bits %u, maxseg %llu, opts 0x%x) failed", bits,
                       (unsigned long long)maxseg, (unsigned)opts);
            return -1;
        }
        if (!attach)
            continue;
        r = IODMACommand_setMemoryDescriptor(st->cmd[i], st->p->md[i], attach == 1);
        if (r != kIOReturnSuccess) {
            bench_fail(ctx, "%s: setMemoryDescriptor(autoPrepare %d) failed: 0x%x", st->p->name, attach == 1,
                       (unsigned)r);
            return -1;
        }
    }
    return 0;
}
#endif

/* ---- checking ------------------------------------------------------------------- */
static int same_list(const seg16 *a, uint32_t na, const seg16 *b, uint32_t nb)
{
    if (na != nb)
        return 0;
    for (uint32_t i = 0; i < na; i++)
        if (a[i].addr != b[i].addr || a[i].len != b[i].len)
            return 0;
    return 1;
}

static uint32_t lsg_to_list(const linux_sgt *t, seg16 *out)
{
    uint32_t k = 0;
    for (lsg *s = t->sgl; s != NULL && k < t->nents; s = lsg_next(s)) {
        out[k].addr = s->dma_address;
        out[k].len = s->dma_length;
        k++;
    }
    return k;
}

#if SEGGEN_HAVE_DMACMD
/* decode a genIOVMSegments output of format @f into {addr,len} */
enum { FMT_H64, FMT_B64, FMT_L64, FMT_H32, FMT_B32, FMT_L32, FMT_N };
static const char *const fmt_names[FMT_N] = {"OutputHost64", "OutputBig64", "OutputLittle64",
                                             "OutputHost32", "OutputBig32", "OutputLittle32"};
static uint64_t load_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static void decode(int f, const void *raw, uint32_t n, seg16 *out)
{
    const uint8_t *b = (const uint8_t *)raw;
    int w = f >= FMT_H32 ? 4 : 8;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + (size_t)i * 2u * (size_t)w;
        if (f == FMT_H64) {
            memcpy(&out[i], e, 16);
        } else if (f == FMT_H32) {
            uint32_t a, l;
            memcpy(&a, e, 4);
            memcpy(&l, e + 4, 4);
            out[i].addr = a;
            out[i].len = l;
        } else if (f == FMT_B64 || f == FMT_B32) {
            out[i].addr = load_be(e, w);
            out[i].len = load_be(e + w, w);
        } else {
            out[i].addr = load_le(e, w);
            out[i].len = load_le(e + w, w);
        }
    }
}

#endif

/* Check every baseline (and the library) against the reference for
 * descriptors 0 and ndesc-1. Returns 0, or -1 after bench_fail. */
static int check_config(bench_ctx *ctx, sg_state *st, seg16 *ref, seg16 *tmp)
{
    const sg_pool *p = st->p;
    uint32_t ds[2] = {0, p->ndesc - 1};
    for (int t = 0; t < 2; t++) {
        uint32_t d = ds[t], nref, n;
        const char *who = NULL;
        nref = seg_reference(p->pfn + (size_t)d * p->pages, p->pages, st->maxseg, ref);
        if (body_merge(st, d) || (memcpy(tmp, st->out, st->last_segs * sizeof *tmp), 0) ||
            !same_list(ref, nref, tmp, (uint32_t)st->last_segs))
            who = "merge_branchy";
        else if (body_linux(st, d) || (n = lsg_to_list(st->lsgt, tmp), !same_list(ref, nref, tmp, n)))
            who = "linux_model";
        else if (body_fbsd(st, d) || !same_list(ref, nref, st->out, (uint32_t)st->last_segs))
            who = "fbsd_model";
        else if (body_xnu(st, d) || !same_list(ref, nref, st->out, (uint32_t)st->last_segs))
            who = "xnu_model";
        else if (body_iomem(st, d) || !same_list(ref, nref, st->out, (uint32_t)st->last_segs))
            who = "iomem";
        else if (body_page16(st, d) || st->last_segs != p->pages)
            who = "page16";
        if (who) {
            bench_fail(ctx, "%s n=%u maxseg=%llu descriptor %u: %s's segment list differs from the reference "
                            "(%u segments)",
                       p->name, p->pages, (unsigned long long)st->maxseg, d, who, nref);
            return -1;
        }
    }
    return 0;
}

/* ---- the matrix ------------------------------------------------------------------ */
typedef struct sg_row {
    double ns_page_med, ns_page_best, segs_per_desc;
    double ratio[5];
} sg_row;

/* the targets of issue #5, one line each, printed after the matrix */
typedef struct sg_sum {
    int n;
    struct {
        int pass; /* 1 PASS, 0 MISS, -1 informational */
        char line[160];
    } t[40];
} sg_sum;

static void sum_add(sg_sum *s, int pass, const char *fmt, ...) BENCH_PRINTF(3, 4);
static void sum_add(sg_sum *s, int pass, const char *fmt, ...)
{
    va_list ap;
    if (s->n >= (int)(sizeof s->t / sizeof s->t[0]))
        return;
    s->t[s->n].pass = pass;
    va_start(ap, fmt);
    vsnprintf(s->t[s->n].line, sizeof s->t[s->n].line, fmt, ap);
    va_end(ap);
    s->n++;
}

/* the last comparison against a ratio or difference target */
static BENCH_UNUSED void sum_last(bench_ctx *ctx, sg_sum *sum, const char *what, bench_target t)
{
    bench_stats s;
    if (bench_last_stats(ctx, &s) != 0)
        return;
    if (t.kind == BENCH_TARGET_RATIO_MAX)
        sum_add(sum, s.ratio_median <= t.value, "%s: ratio %.3f (best %.3f) vs <= %.2f", what, s.ratio_median,
                s.ratio_best, t.value);
    else if (t.kind == BENCH_TARGET_DIFF_NS_MAX)
        sum_add(sum, s.diff_median <= t.value, "%s: %+.1f ns (%.1f vs %.1f ns) vs <= %.0f ns", what, s.diff_median,
                s.ns_median, s.base_ns_median, t.value);
}

static const char *const base_names[5] = {"page16", "merge_branchy", "linux_model", "fbsd_model", "xnu_model"};

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bench_target matrix_target(int pat, int ms, int b)
{
    if (pat == PAT_SCATTER) {
        if (b == 0)
            return BENCH_RATIO_LE(4.0); /* S3's in-binary gate: <= 4x the page16 store floor */
        if (b == 2)
            return BENCH_RATIO_LE(1.0 / 3.0); /* S8: >= 3x linux */
        if (b >= 3)
            return BENCH_RATIO_LE(0.2); /* S8: >= 5x fbsd/xnu */
    } else if (pat == PAT_CONTIG && ms >= 1 && b >= 2) {
        return BENCH_RATIO_LE(0.1); /* S8: >= 10x on contiguous page lists */
    }
    return BENCH_INFO;
}

static int run_config(bench_ctx *ctx, sg_state *st, int ms, seg16 *ref, seg16 *tmp, sg_row *row)
{
    sg_pool *p = st->p;
    char name[96], bname[5][48];
    uint64_t total = 0;
    bench_stats s;
    double meds[5];
    for (uint32_t d = 0; d < p->ndesc; d++)
        total += seg_reference(p->pfn + (size_t)d * p->pages, p->pages, st->maxseg, ref);
    row->segs_per_desc = (double)total / p->ndesc;
    if (check_config(ctx, st, ref, tmp) != 0)
        return -1;
    snprintf(name, sizeof name, "%s n=%u max=%s: iomem (ns/page)", sg_pat_names[p->pat], p->pages,
             sg_maxseg_names[ms]);
    const bench_kernel_fn *copies[5] = {k_page16, k_merge, k_linux, k_fbsd, k_xnu};
    bench_kernel cand = {.name = name, .copies = k_iomem, .ncopies = BENCH_COPIES, .state = st,
                         .ops_per_iter = p->pages};
    for (int b = 0; b < 5; b++) {
        snprintf(bname[b], sizeof bname[b], "%s", base_names[b]);
        bench_kernel base = {.name = bname[b], .copies = copies[b], .ncopies = BENCH_COPIES, .state = st,
                             .ops_per_iter = p->pages};
        if (bench_compare(ctx, &cand, &base, matrix_target(p->pat, ms, b)) != 0)
            return -1;
        if (bench_last_stats(ctx, &s) != 0)
            return -1;
        meds[b] = s.ns_median;
        if (b == 0 || s.ns_best < row->ns_page_best)
            row->ns_page_best = s.ns_best;
        row->ratio[b] = s.ratio_median;
    }
    /* the candidate ran in all five comparisons: the median of its five
     * medians (one noisy comparison on a shared machine cannot set it) */
    qsort(meds, 5, sizeof meds[0], cmp_dbl);
    row->ns_page_med = meds[2];
    {
        char en[96];
        double ns_seg = row->ns_page_med * p->pages / row->segs_per_desc;
        if (p->pat == PAT_SCATTER) {
            snprintf(en, sizeof en, "S3 scattered n=%u max=%s: ns/segment (<= 1.0)", p->pages, sg_maxseg_names[ms]);
            bench_exact(ctx, "seggen S3 scattered ns/seg", en, ns_seg * 1000.0, "ps", 1000.0);
        } else {
            snprintf(en, sizeof en, "%s n=%u max=%s: ns/segment", sg_pat_names[p->pat], p->pages, sg_maxseg_names[ms]);
            bench_exact(ctx, "seggen matrix ns/seg", en, ns_seg * 1000.0, "ps", -1.0);
        }
    }
    return 0;
}

#if SEGGEN_HAVE_DMACMD
/* ---- beyond the matrix: S4 S6 S7 S1/S5 S9 B1 ------------------------------------ */
static void st_init(sg_state *st, sg_pool *p, uint64_t maxseg, seg16 *out)
{
    memset(st, 0, sizeof *st);
    st->p = p;
    st->maxseg = maxseg;
    st->out = out;
    st->out_cap = SG_MAX_PAGES;
    st->seg_bytes = sizeof(seg16);
}

static bench_kernel kern(const char *name, const bench_kernel_fn *copies, sg_state *st, double ops)
{
    bench_kernel k = {.name = name, .copies = copies, .ncopies = BENCH_COPIES, .state = st, .ops_per_iter = ops};
    return k;
}

/* S4: runs of mean 2 per page vs scattered per page (both genIOVMSegments) */
static int run_s4(bench_ctx *ctx, sg_sum *sum, sg_pool *pools, seg16 *out)
{
    int rc = -1;
    for (int si = 1; si < SG_NSIZES; si++) {
        sg_state a, b;
        char an[96], bn[96];
        st_init(&a, &pools[PAT_RUNS2 * SG_NSIZES + si], 1u << 20, out);
        st_init(&b, &pools[PAT_SCATTER * SG_NSIZES + si], 1u << 20, out);
        if (cmds_make(ctx, &a, kIODMACommandOutputHost64, 64, a.maxseg,
                      IODMACommand_kUnmapped | IODMACommand_kIterateOnly, a.p->ndesc, 1) == 0 &&
            cmds_make(ctx, &b, kIODMACommandOutputHost64, 64, b.maxseg,
                      IODMACommand_kUnmapped | IODMACommand_kIterateOnly, b.p->ndesc, 1) == 0) {
            snprintf(an, sizeof an, "S4 runs2 n=%u max=1M: genIOVMSegments (ns/page)", a.p->pages);
            snprintf(bn, sizeof bn, "scattered n=%u (ns/page)", b.p->pages);
            bench_kernel ka = kern(an, k_iomem, &a, a.p->pages), kb = kern(bn, k_iomem, &b, b.p->pages);
            rc = bench_compare(ctx, &ka, &kb, BENCH_RATIO_LE(1.5));
            snprintf(an, sizeof an, "S4 runs2/scattered per page, n=%u, max 1M (ABAB)", a.p->pages);
            if (rc == 0)
                sum_last(ctx, sum, an, BENCH_RATIO_LE(1.5));
        } else {
            rc = -1;
        }
        cmds_free(&a);
        cmds_free(&b);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* S6: the five other output formats vs Host64, scattered 1024 pages */
static int run_s6(bench_ctx *ctx, sg_sum *sum, sg_pool *p, seg16 *out, seg16 *ref, seg16 *tmp)
{
    static IODMACommand_SegmentFunction const fns[FMT_N] = {
        kIODMACommandOutputHost64, kIODMACommandOutputBig64, kIODMACommandOutputLittle64,
        kIODMACommandOutputHost32, kIODMACommandOutputBig32, kIODMACommandOutputLittle32};
    sg_state h, f;
    int rc = -1;
    uint32_t nref = seg_reference(p->pfn, p->pages, ~(uint64_t)0, ref);
    st_init(&h, p, 0, out);
    if (cmds_make(ctx, &h, fns[FMT_H64], 64, 0, IODMACommand_kUnmapped | IODMACommand_kIterateOnly, p->ndesc, 1))
        goto done;
    for (int fi = 1; fi < FMT_N; fi++) {
        char fn[96], hn[96];
        int is32 = fi >= FMT_H32;
        st_init(&f, p, 0, out);
        f.seg_bytes = is32 ? 8u : 16u;
        if (cmds_make(ctx, &f, fns[fi], is32 ? 32 : 64, 0, IODMACommand_kUnmapped | IODMACommand_kIterateOnly,
                      p->ndesc, 1) != 0) {
            cmds_free(&f);
            goto done;
        }
        if (body_iomem(&f, 0) != 0 || f.last_segs != nref ||
            (decode(fi, out, nref, tmp), !same_list(ref, nref, tmp, nref))) {
            bench_fail(ctx, "S6: %s output differs from the reference", fmt_names[fi]);
            cmds_free(&f);
            goto done;
        }
        snprintf(fn, sizeof fn, "S6 scattered n=%u: %s (ns/page)", p->pages, fmt_names[fi]);
        snprintf(hn, sizeof hn, "OutputHost64 (ns/page)");
        bench_kernel kf = kern(fn, k_iomem, &f, p->pages), kh = kern(hn, k_iomem, &h, p->pages);
        int r = bench_compare(ctx, &kf, &kh, BENCH_RATIO_LE(1.10));
        snprintf(fn, sizeof fn, "S6 %s / OutputHost64", fmt_names[fi]);
        if (r == 0)
            sum_last(ctx, sum, fn, BENCH_RATIO_LE(1.10));
        cmds_free(&f);
        if (r != 0)
            goto done;
    }
    rc = 0;
done:
    cmds_free(&h);
    return rc;
}

/* S7: resume in calls of 4 segments, 4096 one-page ranges vs 16 */
static int run_s7(bench_ctx *ctx, sg_sum *sum, seg16 *out, seg16 *ref)
{
    sg_pool many, few;
    sg_state a, b;
    int rc = -1;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    /* pools of >= 512 KiB of extents */
    if (pool_build(ctx, &many, "ranges4096", PAT_SCATTER, 0, 4096, 8, 4096, 1) != 0 ||
        pool_build(ctx, &few, "ranges16", PAT_SCATTER, 0, 16, 2048, 16, 1) != 0)
        goto done;
    st_init(&a, &many, 0, out);
    st_init(&b, &few, 0, out);
    a.gen_chunk = b.gen_chunk = 4;
    if (cmds_make(ctx, &a, kIODMACommandOutputHost64, 64, 0, IODMACommand_kUnmapped | IODMACommand_kIterateOnly,
                  many.ndesc, 1) != 0 ||
        cmds_make(ctx, &b, kIODMACommandOutputHost64, 64, 0, IODMACommand_kUnmapped | IODMACommand_kIterateOnly,
                  few.ndesc, 1) != 0)
        goto done;
    {
        uint32_t n1 = seg_reference(many.pfn, many.pages, ~(uint64_t)0, ref);
        if (body_iomem(&a, 0) != 0 || a.last_segs != n1 || !same_list(ref, n1, out, n1)) {
            bench_fail(ctx, "S7: 4096-range descriptor: segment list differs from the reference");
            goto done;
        }
    }
    {
        bench_kernel ka = kern("S7 resume, 4 segs/call, 4096 ranges (ns/seg)", k_iomem, &a, 4096);
        bench_kernel kb = kern("16 ranges (ns/seg)", k_iomem, &b, 16);
        rc = bench_compare(ctx, &ka, &kb, BENCH_RATIO_LE(1.2));
        if (rc == 0)
            sum_last(ctx, sum, "S7 resume 4096 / 16 ranges per segment", BENCH_RATIO_LE(1.2));
    }
done:
    cmds_free(&a);
    cmds_free(&b);
    pool_free(&many);
    pool_free(&few);
    return rc;
}

/* S1/S5: one 1 GiB physical extent, unsplit and split by maxSegmentSize */
static int run_s1(bench_ctx *ctx, sg_sum *sum, sg_pool *contig1g, seg16 *out)
{
    static const uint64_t maxs[4] = {0, 1u << 20, 1u << 16, 1u << 12};
    static const char *const names[4] = {"unsplit", "1M", "64K", "4K"};
    const IOPhysicalAddress base = (IOPhysicalAddress)1 << 32;
    const uint64_t len = (uint64_t)1 << 30;
    sg_pool p;
    sg_state a, m;
    int rc = -1;
    memset(&p, 0, sizeof p);
    p.name = "phys1g";
    p.pages = (uint32_t)(len >> SEG_PAGE_SHIFT);
    p.ndesc = 1;
    p.md = calloc(1, sizeof *p.md);
    if (!p.md)
        return -1;
    p.md[0] = IOMemoryDescriptor_withPhysicalAddress(base, (IOByteCount)len, kIODirectionInOut);
    if (!p.md[0]) {
        bench_fail(ctx, "S1: withPhysicalAddress(1 GiB) failed");
        free(p.md);
        return -1;
    }
    IOMemoryDescriptor_prepare(p.md[0], kIODirectionNone); /* balanced by pool_free */
    for (int i = 0; i < 4; i++) {
        char an[96], en[96];
        uint64_t segs = maxs[i] ? len / maxs[i] : 1, step = maxs[i] ? maxs[i] : len;
        bench_stats s;
        st_init(&a, &p, maxs[i], out);
        if (cmds_make(ctx, &a, kIODMACommandOutputHost64, 64, maxs[i],
                      IODMACommand_kUnmapped | IODMACommand_kIterateOnly, 1, 1) != 0)
            goto fail;
        if (body_iomem(&a, 0) != 0 || a.last_segs != segs) {
            bench_fail(ctx, "S1: 1 GiB extent, max %s: %llu segments, expected %llu", names[i],
                       (unsigned long long)a.last_segs, (unsigned long long)segs);
            goto fail;
        }
        for (uint64_t k = 0; k < segs; k++)
            if (out[k].addr != base + k * step || out[k].len != step) {
                bench_fail(ctx, "S1: 1 GiB extent, max %s: segment %llu wrong", names[i], (unsigned long long)k);
                goto fail;
            }
        if (i == 0) {
            /* against merge_branchy over the same 1 GiB as a page list (contiguous pool) */
            st_init(&m, contig1g, (uint64_t)1 << 40, out);
            bench_kernel ka = kern("S1 1 GiB one extent, unsplit (ns/generation)", k_iomem, &a, 1);
            bench_kernel km = kern("merge_branchy 1 GiB page list", k_merge, &m, 1);
            if (bench_compare(ctx, &ka, &km, BENCH_INFO) != 0)
                goto fail;
            if (bench_last_stats(ctx, &s) != 0)
                goto fail;
            /* S1's gate ">= 1000x faster than merge_branchy", as a ratio in ppm
             * (the table prints ratio targets with two decimals) */
            bench_exact(ctx, "seggen S1 one extent", "S1 1 GiB one extent / merge_branchy page list: ratio in ppm (<= 1000)",
                        s.ratio_median * 1e6, "ppm", 1000.0);
            bench_exact(ctx, "seggen S1 one extent", "S1 1 GiB one extent unsplit: ns per generation (<= 10)",
                        s.ns_median * 1000.0, "ps", 10000.0);
            sum_add(sum, s.ns_median <= 10.0, "S1 1 GiB one extent unsplit: %.1f ns per generation (best %.1f) vs <= 10 ns",
                    s.ns_median, s.ns_best);
            sum_add(sum, s.ratio_median <= 0.001, "S1 vs merge_branchy on the 1 GiB page list: %.0fx faster vs >= 1000x",
                    1.0 / s.ratio_median);
            {
                /* the same without the terminating kIOReturnOverrun call */
                bench_kernel k1 = kern("S1 1 GiB one extent, unsplit, first call only (ns/call)", k_iomem_once, &a, 1);
                if (bench_compare(ctx, &k1, NULL, BENCH_INFO) != 0 || bench_last_stats(ctx, &s) != 0)
                    goto fail;
                bench_exact(ctx, "seggen S1 one extent", "S1 1 GiB one extent unsplit: first call only, ns (info)",
                            s.ns_median * 1000.0, "ps", -1.0);
                sum_add(sum, -1, "S1 (info) the same, one call without the Overrun call: %.1f ns (best %.1f)",
                        s.ns_median, s.ns_best);
            }
        } else {
            snprintf(an, sizeof an, "S1/S5 1 GiB one extent, split %s (ns/seg)", names[i]);
            bench_kernel ka = kern(an, k_iomem, &a, (double)segs);
            if (bench_compare(ctx, &ka, NULL, BENCH_INFO) != 0 || bench_last_stats(ctx, &s) != 0)
                goto fail;
            snprintf(en, sizeof en, "S1 1 GiB split %s: ns per generation (<= 10 + 0.5/seg)", names[i]);
            bench_exact(ctx, "seggen S1 one extent", en, s.ns_median * (double)segs, "ns", 10.0 + 0.5 * (double)segs);
            snprintf(en, sizeof en, "S5 split fast path %s: ns/segment (<= 0.5)", names[i]);
            bench_exact(ctx, "seggen S5 split ns/seg", en, s.ns_median * 1000.0, "ps", 500.0);
            sum_add(sum, s.ns_median * (double)segs <= 10.0 + 0.5 * (double)segs,
                    "S1 1 GiB split %s (%llu segs): %.0f ns per generation vs <= %.0f ns", names[i],
                    (unsigned long long)segs, s.ns_median * (double)segs, 10.0 + 0.5 * (double)segs);
            sum_add(sum, s.ns_median <= 0.5, "S5 split %s: %.3f ns/seg (best %.3f) vs <= 0.5", names[i], s.ns_median,
                    s.ns_best);
        }
        cmds_free(&a);
    }
    rc = 0;
fail:
    cmds_free(&a);
    pool_free(&p);
    return rc;
}

/* S9: 64-page scattered I/O end to end */
static int run_s9(bench_ctx *ctx, sg_sum *sum, sg_pool *p, seg16 *out, linux_sgt *lsgt)
{
    sg_state a, l;
    bench_stats s;
    int rc = -1;
    st_init(&a, p, 0, out);
    if (cmds_make(ctx, &a, kIODMACommandOutputHost64, 64, 0, IODMACommand_kUnmapped, 1, 0) != 0)
        goto done;
    st_init(&l, p, (uint64_t)1 << 40, out);
    l.lsgt = lsgt;
    {
        bench_kernel ka = kern("S9 64-page scattered I/O: set+prepare+gen+complete+clear (ns/IO)", k_io, &a, 1);
        bench_kernel kl = kern("linux_model sg build+map (ns/IO)", k_linux, &l, 1);
        if (bench_compare(ctx, &ka, &kl, BENCH_INFO) != 0 || bench_last_stats(ctx, &s) != 0)
            goto done;
        bench_exact(ctx, "seggen S9 I/O", "S9 64-page scattered I/O end to end: ns (<= 100)", s.ns_median, "ns",
                    100.0);
        sum_add(sum, s.ns_median <= 100.0, "S9 64-page scattered I/O end to end: %.1f ns (best %.1f) vs <= 100 ns",
                s.ns_median, s.ns_best);
    }
    rc = 0;
done:
    cmds_free(&a);
    return rc;
}

/* B1: bounce slot cost (prepare+complete of a bounced 1-page I/O minus the
 * same unbounced) and bounce copy throughput vs memcpy of the same bytes */
static int run_b1(bench_ctx *ctx, sg_sum *sum, sg_pool *low1, seg16 *out)
{
    sg_pool high1, high16, high1c;
    sg_state a, b, c, m;
    int rc = -1;
    void *dst = NULL;
    memset(&high1, 0, sizeof high1);
    memset(&high16, 0, sizeof high16);
    memset(&high1c, 0, sizeof high1c);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    if (pool_build(ctx, &high1, "high1", -1, IOMEM_POSIX_LAYOUT_HIGH, 1, 64, 1, 1) != 0)
        goto done;
    st_init(&a, &high1, 0, out);
    st_init(&b, low1, 0, out);
    if (cmds_make(ctx, &a, kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, high1.ndesc, 2) != 0 ||
        cmds_make(ctx, &b, kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, low1->ndesc, 2) != 0)
        goto done;
    /* the HIGH page must come out bounced (below 4 GiB, another address), the low one not */
    {
        IOReturn r = IODMACommand_prepare(a.cmd[0], 0, 0, false, false);
        int bad = r != kIOReturnSuccess || body_iomem(&a, 0) != 0 || a.last_segs != 1 ||
                  out[0].addr + out[0].len > ((uint64_t)1 << 32) || out[0].addr == high1.pfn[0] << SEG_PAGE_SHIFT;
        if (r == kIOReturnSuccess)
            IODMACommand_complete(a.cmd[0], false, false);
        if (bad) {
            bench_note(ctx, "B1 MISSING: a HIGH page on a 32-bit command was not bounced (prepare 0x%x)", (unsigned)r);
            rc = 0;
            goto done;
        }
        r = IODMACommand_prepare(b.cmd[0], 0, 0, false, false);
        bad = r != kIOReturnSuccess || body_iomem(&b, 0) != 0 || out[0].addr != low1->pfn[0] << SEG_PAGE_SHIFT;
        if (r == kIOReturnSuccess)
            IODMACommand_complete(b.cmd[0], false, false);
        if (bad) {
            bench_fail(ctx, "B1: the low page was bounced or failed (prepare 0x%x)", (unsigned)r);
            goto done;
        }
    }
    {
        bench_kernel ka = kern("B1 prepare+complete, HIGH page, 32-bit (sparse bounce, no copy)", k_prepcomp, &a, 1);
        bench_kernel kb = kern("same, low page (no bounce)", k_prepcomp, &b, 1);
        if (bench_compare(ctx, &ka, &kb, BENCH_DIFF_NS_LE(20.0)) != 0)
            goto done;
        sum_last(ctx, sum, "B1 bounce slot alloc+free (default pool)", BENCH_DIFF_NS_LE(20.0));
    }
    /* the same with a bounce reserve (the pool then never goes back to the
     * platform allocator); the default above is reserve 0 */
    if (iomem_bounce_pool_reserve(64) == kIOReturnSuccess) {
        bench_kernel ka = kern("B1 same, iomem_bounce_pool_reserve(64)", k_prepcomp, &a, 1);
        bench_kernel kb = kern("same, low page (no bounce)", k_prepcomp, &b, 1);
        int r = bench_compare(ctx, &ka, &kb, BENCH_DIFF_NS_LE(20.0));
        iomem_bounce_pool_reserve(0);
        if (r == 0)
            sum_last(ctx, sum, "B1 bounce slot alloc+free (reserve 64)", BENCH_DIFF_NS_LE(20.0));
        if (r != 0)
            goto done;
    } else {
        bench_note(ctx, "B1: iomem_bounce_pool_reserve(64) failed; reserve row not measured");
    }
    cmds_free(&a);
    cmds_free(&b);
    /* copy throughput: 1 page and 16 pages, 4 descriptors each, prepared (bounced) */
    for (int t = 0; t < 2; t++) {
        sg_pool *hp = t == 0 ? &high1c : &high16;
        uint32_t pages = t == 0 ? 1u : 16u;
        char cn[96];
        if (pool_build(ctx, hp, t == 0 ? "high1c" : "high16", -1, IOMEM_POSIX_LAYOUT_HIGH, pages, 4, 1, 1) != 0)
            goto done;
        memset(hp->va, 0x5A, hp->va_bytes); /* resident source */
        st_init(&c, hp, 0, out);
        if (cmds_make(ctx, &c, kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, hp->ndesc, 1) != 0)
            goto done;
        free(dst);
        dst = malloc(hp->va_bytes);
        if (!dst) {
            bench_fail(ctx, "out of memory");
            goto done;
        }
        memset(dst, 0, hp->va_bytes);
        st_init(&m, hp, 0, out);
        m.src = hp->va;
        m.dst = dst;
        m.copy_bytes = (size_t)pages * SEG_PAGE_SIZE;
        snprintf(cn, sizeof cn, "B1 bounce copy synchronize(Out), %u KiB", pages * 4u);
        bench_kernel kc = kern(cn, k_sync, &c, 1), km = kern("memcpy of the same bytes", k_memcpy, &m, 1);
        if (bench_compare(ctx, &kc, &km, BENCH_RATIO_LE(1.25)) != 0)
            goto done;
        snprintf(cn, sizeof cn, "B1 bounce copy %u KiB / memcpy (>= 80%% throughput)", pages * 4u);
        sum_last(ctx, sum, cn, BENCH_RATIO_LE(1.25));
        cmds_free(&c);
    }
    bench_note(ctx, "B1 copy: ratio <= 1.25 means the bounce copy reaches >= 80%% of memcpy throughput");
    rc = 0;
done:
    free(dst);
    cmds_free(&a);
    cmds_free(&b);
    cmds_free(&c);
    pool_free(&high1);
    pool_free(&high16);
    pool_free(&high1c);
    return rc;
}
#endif

/* ---- the group ------------------------------------------------------------------- */
#define NPOOLS (PAT_N * SG_NSIZES)

int bench_group_seggen(bench_ctx *ctx)
{
    int rc = -1;
    sg_pool pools[NPOOLS];
    sg_row rows[NPOOLS][SG_NMAXSEG];
    sg_state st;
    sg_pool low1;
    sg_sum sum;
    seg16 *out = NULL, *ref = NULL, *tmp = NULL;
    linux_sgt lsgt;
    uint64_t t0 = bench_now_ns();
    memset(pools, 0, sizeof pools);
    memset(&low1, 0, sizeof low1);
    memset(&sum, 0, sizeof sum);
    memset(rows, 0, sizeof rows);
    memset(&st, 0, sizeof st);
    memset(&lsgt, 0, sizeof lsgt);

    if (iomem__platform_page_size() != SEG_PAGE_SIZE) {
        bench_fail(ctx, "the models assume 4 KiB pages (machine page %lu)",
                   (unsigned long)iomem__platform_page_size());
        return -1;
    }
    out = malloc(SG_MAX_PAGES * sizeof *out);
    ref = malloc(SG_MAX_PAGES * sizeof *ref);
    tmp = malloc(SG_MAX_PAGES * sizeof *tmp);
    lsgt.nchunks = SG_MAX_PAGES / (LSG_PER_CHUNK - 1u) + 2u;
    lsgt.chunks = calloc((size_t)lsgt.nchunks * LSG_PER_CHUNK, sizeof(lsg));
    if (!out || !ref || !tmp || !lsgt.chunks) {
        bench_fail(ctx, "out of memory");
        goto out;
    }
    memset(out, 0, SG_MAX_PAGES * sizeof *out); /* fault the output in */
#if SEGGEN_HAVE_DMACMD
    /* B1's unbounced pages: first, so they are below 4 GiB */
    if (pool_build(ctx, &low1, "low1", PAT_CONTIG, 0, 1, 64, 1, 1) != 0)
        goto out;
#endif

    /* Pools. Scattered first: their frames stay below 4 GiB (the POSIX
     * machine hands out frames upwards from 2 GiB), which the 32-bit
     * outputs (S6) need. */
    {
        static const int order[PAT_N] = {PAT_SCATTER, PAT_CONTIG, PAT_RUNS8, PAT_RUNS2};
        for (int oi = 0; oi < PAT_N; oi++) {
            int pat = order[oi];
            for (int si = 0; si < SG_NSIZES; si++) {
                uint32_t pages = sg_sizes[si];
                uint32_t ndesc = (uint32_t)(BENCH_POOL_BYTES / sizeof(uint64_t)) / pages;
                sg_pool *p = &pools[pat * SG_NSIZES + si];
                if (ndesc == 0)
                    ndesc = 1;
                if (pool_build(ctx, p, sg_pat_names[pat], pat, 0, pages, ndesc, 1, 1) != 0)
                    goto out;
            }
        }
    }
    bench_note(ctx, "setup: %u pools wired in %.1f s (page arrays >= %u KiB per pool, round-robin)", NPOOLS,
               (double)(bench_now_ns() - t0) / 1e9, BENCH_POOL_BYTES / 1024u);
#if !SEGGEN_HAVE_DMACMD
    bench_note(ctx, "IODMACommand is not implemented on this branch yet: the 'iomem' candidate is a STAND-IN "
                    "(iomem_walk + maxseg split, inline), not genIOVMSegments; S1 S5-S7 S9 B1 not measured");
#endif

    /* ---- the matrix ---- */
    for (int pat = 0; pat < PAT_N; pat++)
        for (int si = 0; si < SG_NSIZES; si++)
            for (int ms = 0; ms < SG_NMAXSEG; ms++) {
                sg_pool *p = &pools[pat * SG_NSIZES + si];
                memset(&st, 0, sizeof st);
                st.p = p;
                st.maxseg = sg_maxsegs[ms];
                st.out = out;
                st.out_cap = SG_MAX_PAGES;
                st.lsgt = &lsgt;
                st.seg_bytes = sizeof(seg16);
                st.ftag = (fbsd_tag){.maxsegsz = st.maxseg, .boundary = 0, .lowaddr = ~(uint64_t)0,
                                     .nsegments = p->pages, .could_bounce = 0};
                st.fpm = (fbsd_pmap){p->pfn, (uintptr_t)p->va};
                st.xcmd = (xnu_cmd){.op = xnu_walk_segments, .out_seg = xnu_output_host64,
                                    .max_seg = st.maxseg, .max_phys = ~(uint64_t)0};
                st.xout = xnu_client_output;
#if SEGGEN_HAVE_DMACMD
                if (cmds_make(ctx, &st, kIODMACommandOutputHost64, 64, st.maxseg,
                              IODMACommand_kUnmapped | IODMACommand_kIterateOnly, p->ndesc, 1) != 0) {
                    cmds_free(&st);
                    goto out;
                }
#endif
                int r = run_config(ctx, &st, ms, ref, tmp, &rows[pat * SG_NSIZES + si][ms]);
#if SEGGEN_HAVE_DMACMD
                cmds_free(&st);
#endif
                if (r != 0)
                    goto out;
            }

    /* the table */
    bench_note(ctx, "segment-generation matrix (iomem = %s; ns/page: median of the candidate's medians "
                    "in its 5 comparisons (best: lowest sample); ns/seg = ns/page * pages / segs; "
                    "ratio = iomem/baseline, medians, ABAB in the same comparison):",
               SEGGEN_HAVE_DMACMD ? "IODMACommand_genIOVMSegments, Host64" : "STAND-IN walk");
    bench_note(ctx, "%-10s %6s %4s | %9s | %13s | %7s | %6s %6s %6s %6s %6s | %s", "pattern", "pages", "max",
               "segs/desc", "ns/page (best)", "ns/seg", "page16", "merge", "linux", "fbsd", "xnu",
               "targets (S3 ns/seg<=1, S3 /page16<=4; S8 linux/fbsd/xnu)");
    for (int pat = 0; pat < PAT_N; pat++)
        for (int si = 0; si < SG_NSIZES; si++)
            for (int ms = 0; ms < SG_NMAXSEG; ms++) {
                const sg_row *w = &rows[pat * SG_NSIZES + si][ms];
                char tg[64] = "-";
                double ns_seg = w->ns_page_med * sg_sizes[si] / w->segs_per_desc;
#define PM_(c) ((c) ? "PASS" : "MISS")
                if (pat == PAT_SCATTER)
                    snprintf(tg, sizeof tg, "S3 %s %s; S8 %s/%s/%s", PM_(ns_seg <= 1.0), PM_(w->ratio[0] <= 4.0),
                             PM_(w->ratio[2] <= 1.0 / 3.0),
                             PM_(w->ratio[3] <= 0.2), PM_(w->ratio[4] <= 0.2));
                else if (pat == PAT_CONTIG && ms >= 1)
                    snprintf(tg, sizeof tg, "S8 %s/%s/%s", PM_(w->ratio[2] <= 0.1), PM_(w->ratio[3] <= 0.1),
                             PM_(w->ratio[4] <= 0.1));
#undef PM_
                bench_note(ctx, "%-10s %6u %4s | %9.1f | %6.3f (%5.3f) | %7.3f | %6.3f %6.3f %6.3f %6.3f %6.3f | %s",
                           sg_pat_names[pat], sg_sizes[si], sg_maxseg_names[ms], w->segs_per_desc,
                           w->ns_page_med, w->ns_page_best, ns_seg,
                           w->ratio[0], w->ratio[1], w->ratio[2], w->ratio[3], w->ratio[4], tg);
            }

    /* S3 and S8 from the matrix: the worst configuration of each */
    {
        double w3 = 0, ws[5] = {0}, wc[5] = {0};
        for (int si = 0; si < SG_NSIZES; si++)
            for (int ms = 0; ms < SG_NMAXSEG; ms++) {
                const sg_row *r = &rows[PAT_SCATTER * SG_NSIZES + si][ms];
                double ns_seg = r->ns_page_med * sg_sizes[si] / r->segs_per_desc;
                if (ns_seg > w3)
                    w3 = ns_seg;
                for (int b = 2; b < 5; b++) {
                    if (r->ratio[b] > ws[b])
                        ws[b] = r->ratio[b];
                    if (ms >= 1 && rows[PAT_CONTIG * SG_NSIZES + si][ms].ratio[b] > wc[b])
                        wc[b] = rows[PAT_CONTIG * SG_NSIZES + si][ms].ratio[b];
                }
            }
        sum_add(&sum, w3 <= 1.0, "S3 scattered (9 configs): worst %.3f ns/seg vs <= 1.0", w3);
        {
            double w0 = 0;
            for (int si = 0; si < SG_NSIZES; si++)
                for (int ms = 0; ms < SG_NMAXSEG; ms++)
                    if (rows[PAT_SCATTER * SG_NSIZES + si][ms].ratio[0] > w0)
                        w0 = rows[PAT_SCATTER * SG_NSIZES + si][ms].ratio[0];
            sum_add(&sum, w0 <= 4.0, "S3 scattered / page16 store floor (9 configs): worst ratio %.3f vs <= 4", w0);
        }
        for (int b = 2; b < 5; b++)
            sum_add(&sum, ws[b] <= (b == 2 ? 1.0 / 3.0 : 0.2),
                    "S8 scattered vs %s (9 configs): worst ratio %.3f = %.1fx faster vs >= %dx", base_names[b], ws[b],
                    1.0 / ws[b], b == 2 ? 3 : 5);
        {
            /* S4 at every maxseg, from the matrix (medians of separate
             * comparisons, not ABAB-paired): runs of mean 2 per page vs
             * scattered per page, and runs2's own ns/page */
            double w4 = 0, wp = 0;
            int w4ms = 0, w4si = 0;
            for (int si = 1; si < SG_NSIZES; si++)
                for (int ms = 0; ms < SG_NMAXSEG; ms++) {
                    double r2 = rows[PAT_RUNS2 * SG_NSIZES + si][ms].ns_page_med;
                    double sc = rows[PAT_SCATTER * SG_NSIZES + si][ms].ns_page_med;
                    if (r2 / sc > w4) {
                        w4 = r2 / sc;
                        w4ms = ms;
                        w4si = si;
                    }
                    if (r2 > wp)
                        wp = r2;
                }
            sum_add(&sum, w4 <= 1.5, "S4 (matrix) runs2/scattered per page, n=1024/262144, max 4K/64K/1M: worst %.2f "
                                     "(n=%u max=%s) vs <= 1.5", w4, sg_sizes[w4si], sg_maxseg_names[w4ms]);
            sum_add(&sum, wp <= 1.5, "S4 (matrix) runs2 ns/page, n=1024/262144, max 4K/64K/1M: worst %.2f vs <= 1.5", wp);
        }
        for (int b = 2; b < 5; b++)
            sum_add(&sum, wc[b] <= 0.1,
                    "S8 contiguous page lists vs %s (max 64K/1M, 6 configs): worst ratio %.3f = %.1fx faster vs >= 10x",
                    base_names[b], wc[b], 1.0 / wc[b]);
    }
#if SEGGEN_HAVE_DMACMD
    if (run_s4(ctx, &sum, pools, out) != 0 ||
        run_s6(ctx, &sum, &pools[PAT_SCATTER * SG_NSIZES + 1], out, ref, tmp) != 0 ||
        run_s7(ctx, &sum, out, ref) != 0 || run_s1(ctx, &sum, &pools[PAT_CONTIG * SG_NSIZES + 2], out) != 0 ||
        run_s9(ctx, &sum, &pools[PAT_SCATTER * SG_NSIZES + 0], out, &lsgt) != 0 ||
        run_b1(ctx, &sum, &low1, out) != 0)
        goto out;
#endif
    {
        int np = 0, nt = 0;
        for (int i = 0; i < sum.n; i++) {
            np += sum.t[i].pass > 0;
            nt += sum.t[i].pass >= 0;
        }
        bench_note(ctx, "issue #5 targets: %d of %d PASS (median figures)", np, nt);
        for (int i = 0; i < sum.n; i++)
            bench_note(ctx, "  %s %s", sum.t[i].pass > 0 ? "PASS" : sum.t[i].pass == 0 ? "MISS" : "info",
                       sum.t[i].line);
    }
    rc = 0;
out:
    pool_free(&low1);
    for (int i = 0; i < NPOOLS; i++)
        pool_free(&pools[i]);
    free(out);
    free(ref);
    free(tmp);
    free(lsgt.chunks);
    return rc;
}
