/* SPDX-License-Identifier: MIT */
/*
 * bench/seg_models.h - from-scratch baselines for the segment-generation
 * group (bench_seggen.c), shaped like the peers of performance-anchors.md §1
 * and §5.1. No peer code is copied: each model reproduces the *shape* of
 * its peer's algorithm (passes, per-page/per-segment work, record sizes,
 * indirect calls), without the kernel context (no locks, no page-table
 * walks), so they are lower bounds on the peers' costs.
 *
 * Every model reads the same input, one descriptor's pages, and writes the
 * same segment list {addr, len} (page-aligned runs, split at maxseg), which
 * the group checks once against a plain reference.
 *
 *   seg_page16         the store floor: one 16-byte {addr,len} per page, no merge
 *   seg_merge_branchy  the naive scalar merge loop (extend or emit)
 *   seg_linux_model    sg_alloc_table_from_pages (count pass + fill pass over
 *                      struct-page pointers, 32-byte chained sg entries) then
 *                      dma_map_sg / dma-direct (a third pass: phys->dma + mask)
 *   seg_fbsd_model     _bus_dmamap_load_buffer: per page an out-of-line
 *                      pmap_kextract-like translation, MIN with maxsegsz, the
 *                      bounce test, then addseg (boundary clip, coalesce)
 *   seg_xnu_model      IODMACommand::genIOVMSegments: runs from a
 *                      dmaCommandOperation(kIOMDWalkSegments)-like call through a
 *                      function pointer that scans the page list page by page,
 *                      merge / maxSegmentSize split, then two indirect calls per
 *                      output segment (clientOutputSegment -> OutputHost64)
 *
 * Page size: SEG_PAGE_SHIFT (4 KiB, what the POSIX machine uses here).
 */
#ifndef IOMEM_BENCH_SEG_MODELS_H
#define IOMEM_BENCH_SEG_MODELS_H

#include <stdint.h>
#include <string.h>

#define SEG_PAGE_SHIFT 12u
#define SEG_PAGE_SIZE ((uint64_t)1 << SEG_PAGE_SHIFT)
#define SEG_INLINE static inline __attribute__((always_inline))
#define SEG_NOINLINE static __attribute__((noinline))

/* the output record of every model (same layout as IODMACommand_Segment64) */
typedef struct seg16 {
    uint64_t addr, len;
} seg16;

/* ---- reference (untimed, obviously correct) ------------------------------ */
static inline uint32_t seg_reference(const uint64_t *pfn, uint32_t n, uint64_t maxseg, seg16 *out)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t a = pfn[i] << SEG_PAGE_SHIFT;
        if (k > 0 && out[k - 1].addr + out[k - 1].len == a && out[k - 1].len + SEG_PAGE_SIZE <= maxseg)
            out[k - 1].len += SEG_PAGE_SIZE;
        else
            out[k++] = (seg16){a, SEG_PAGE_SIZE};
    }
    return k;
}

/* ---- page16: the store floor ---------------------------------------------- */
SEG_INLINE uint32_t seg_page16(const uint64_t *pfn, uint32_t n, seg16 *out)
{
    for (uint32_t i = 0; i < n; i++) {
        out[i].addr = pfn[i] << SEG_PAGE_SHIFT;
        out[i].len = SEG_PAGE_SIZE;
    }
    return n;
}

/* ---- merge_branchy ---------------------------------------------------------- */
SEG_INLINE uint32_t seg_merge_branchy(const uint64_t *pfn, uint32_t n, uint64_t maxseg, seg16 *out)
{
    uint64_t cur = pfn[0] << SEG_PAGE_SHIFT, len = SEG_PAGE_SIZE;
    uint32_t k = 0;
    for (uint32_t i = 1; i < n; i++) {
        uint64_t a = pfn[i] << SEG_PAGE_SHIFT;
        if (a == cur + len && len + SEG_PAGE_SIZE <= maxseg) {
            len += SEG_PAGE_SIZE;
        } else {
            out[k].addr = cur;
            out[k].len = len;
            k++;
            cur = a;
            len = SEG_PAGE_SIZE;
        }
    }
    out[k].addr = cur;
    out[k].len = len;
    return k + 1;
}

/* ---- linux_model ------------------------------------------------------------ */
/* struct scatterlist on 64-bit: 32 bytes */
typedef struct lsg {
    uintptr_t page_link; /* struct page * | SG_CHAIN | SG_END */
    uint32_t offset, length;
    uint64_t dma_address;
    uint32_t dma_length, dma_flags;
} lsg;

#define LSG_CHAIN 0x01u
#define LSG_END 0x02u
#define LSG_PAGE_LINK_MASK ((uintptr_t)3)
#define LSG_PER_CHUNK (4096u / sizeof(lsg)) /* 128, the last one is the chain link */
/* SPARSEMEM_VMEMMAP: struct page pointers are vmemmap + pfn (64-byte struct page);
 * the pointers are never dereferenced, so the base is only a number */
#define LSG_VMEMMAP ((uintptr_t)0x40000000000ull)
#define LSG_PAGE_STRUCT 64u

typedef struct linux_sgt {
    lsg *chunks;      /* preallocated 4 KiB chunks (kmalloc stand-in: a bump index) */
    uint32_t nchunks; /* capacity */
    lsg *sgl;         /* the table after a run */
    uint32_t nents;
} linux_sgt;

SEG_INLINE uintptr_t lsg_page_to_pfn(uintptr_t page) { return (page - LSG_VMEMMAP) / LSG_PAGE_STRUCT; }
SEG_INLINE int lsg_mergeable(uintptr_t a, uintptr_t b)
{
    /* pfn(a) == pfn(b) + 1 (the zone-device pgmap test is omitted) */
    return lsg_page_to_pfn(a) == lsg_page_to_pfn(b) + 1;
}
SEG_INLINE int lsg_is_chain(const lsg *s) { return (s->page_link & LSG_CHAIN) != 0; }
SEG_INLINE int lsg_is_last(const lsg *s) { return (s->page_link & LSG_END) != 0; }
SEG_INLINE lsg *lsg_chain_ptr(const lsg *s) { return (lsg *)(s->page_link & ~LSG_PAGE_LINK_MASK); }
SEG_INLINE lsg *lsg_next(lsg *s)
{
    if (lsg_is_last(s))
        return NULL;
    s++;
    if (lsg_is_chain(s))
        s = lsg_chain_ptr(s);
    return s;
}

/* sg_alloc_append_table_from_pages + dma_direct_map_sg; returns nents (0: failure) */
SEG_INLINE uint32_t seg_linux_model(linux_sgt *t, const uintptr_t *pages, uint32_t n,
                                    uint64_t max_segment, uint64_t dma_mask)
{
    uint32_t chunks = 1, cur_page, i, j, used = 0, ci = 0;
    uint64_t seg_len = 0;
    lsg *s = NULL, *chunk = NULL;
    max_segment &= ~(SEG_PAGE_SIZE - 1); /* rounded down to PAGE_SIZE */
    /* pass 1: count the chunks */
    for (i = 1; i < n; i++) {
        seg_len += SEG_PAGE_SIZE;
        if (seg_len >= max_segment || !lsg_mergeable(pages[i], pages[i - 1])) {
            chunks++;
            seg_len = 0;
        }
    }
    /* pass 2: find each chunk's end again, fill sg entries (chained chunks) */
    cur_page = 0;
    for (uint32_t c = 0; c < chunks; c++) {
        uint64_t chunk_size;
        seg_len = 0;
        for (j = cur_page + 1; j < n; j++) {
            seg_len += SEG_PAGE_SIZE;
            if (seg_len >= max_segment || !lsg_mergeable(pages[j], pages[j - 1]))
                break;
        }
        chunk_size = (uint64_t)(j - cur_page) << SEG_PAGE_SHIFT;
        /* get_next_sg: a new chunk when this one is full, chained from its last slot */
        if (chunk == NULL || used == LSG_PER_CHUNK - 1u) {
            lsg *nc;
            if (ci == t->nchunks)
                return 0;
            nc = t->chunks + (size_t)ci++ * LSG_PER_CHUNK;
            nc[LSG_PER_CHUNK - 1u].page_link = 0;
            if (chunk == NULL)
                t->sgl = nc;
            else
                chunk[LSG_PER_CHUNK - 1u].page_link = (uintptr_t)nc | LSG_CHAIN;
            chunk = nc;
            used = 0;
        }
        s = &chunk[used++];
        s->page_link = 0;
        /* sg_set_page: keep the flag bits, set page, offset, length */
        s->page_link = (s->page_link & LSG_PAGE_LINK_MASK) | pages[cur_page];
        s->offset = 0;
        s->length = (uint32_t)chunk_size;
        cur_page = j;
    }
    s->page_link |= LSG_END; /* sg_mark_end */
    t->nents = chunks;
    /* dma_map_sg, dma-direct: for_each_sg phys -> dma, dma_capable check */
    i = 0;
    for (s = t->sgl; s != NULL; s = lsg_next(s)) {
        uint64_t phys = ((uint64_t)lsg_page_to_pfn(s->page_link & ~LSG_PAGE_LINK_MASK) << SEG_PAGE_SHIFT) + s->offset;
        uint64_t dma = phys; /* phys_to_dma: identity */
        if (dma + s->length - 1 > dma_mask)
            return 0; /* would go to swiotlb */
        s->dma_address = dma;
        s->dma_length = s->length;
        i++;
    }
    return i;
}

/* ---- fbsd_model --------------------------------------------------------------- */
typedef struct fbsd_pmap {
    const uint64_t *pfn; /* the "page table" of the buffer's virtual range */
    uintptr_t base;      /* virtual address of pfn[0] */
} fbsd_pmap;

/* pmap_kextract stand-in: out of line, as in the kernel */
SEG_NOINLINE uint64_t fbsd_kextract(const fbsd_pmap *pm, uintptr_t va)
{
    return (pm->pfn[(va - pm->base) >> SEG_PAGE_SHIFT] << SEG_PAGE_SHIFT) | (va & (SEG_PAGE_SIZE - 1));
}

typedef struct fbsd_tag {
    uint64_t maxsegsz, boundary, lowaddr;
    uint32_t nsegments;
    int could_bounce;
} fbsd_tag;

/* _bus_dmamap_addseg: clip at the boundary, coalesce or open a segment */
SEG_INLINE uint64_t fbsd_addseg(const fbsd_tag *tag, seg16 *segs, int *segp, uint64_t curaddr, uint64_t sgsize)
{
    int seg;
    uint64_t bmask = 0;
    if (tag->boundary > 0) {
        bmask = ~(tag->boundary - 1);
        if (((curaddr ^ (curaddr + sgsize - 1)) & bmask) != 0)
            sgsize = ((curaddr + tag->boundary) & bmask) - curaddr;
    }
    seg = *segp;
    if (seg == -1) {
        seg = 0;
        segs[seg].addr = curaddr;
        segs[seg].len = sgsize;
    } else if (curaddr == segs[seg].addr + segs[seg].len && segs[seg].len + sgsize <= tag->maxsegsz &&
               (tag->boundary == 0 || (segs[seg].addr & bmask) == (curaddr & bmask))) {
        segs[seg].len += sgsize;
    } else {
        if (++seg >= (int)tag->nsegments)
            return 0;
        segs[seg].addr = curaddr;
        segs[seg].len = sgsize;
    }
    *segp = seg;
    return sgsize;
}

/* bounce_bus_dmamap_load_buffer for a kernel virtual buffer; returns nsegs (0: EFBIG) */
SEG_INLINE uint32_t seg_fbsd_model(const fbsd_tag *tag, const fbsd_pmap *pm, uintptr_t vaddr, uint64_t buflen,
                                   seg16 *segs)
{
    int seg = -1;
    while (buflen > 0) {
        uint64_t curaddr = fbsd_kextract(pm, vaddr);
        uint64_t sgsize = SEG_PAGE_SIZE - (curaddr & (SEG_PAGE_SIZE - 1));
        if (sgsize > tag->maxsegsz)
            sgsize = tag->maxsegsz;
        if (buflen < sgsize)
            sgsize = buflen;
        if (tag->could_bounce && curaddr + sgsize - 1 > tag->lowaddr)
            return 0; /* bouncing is not modelled */
        sgsize = fbsd_addseg(tag, segs, &seg, curaddr, sgsize);
        if (sgsize == 0)
            return 0;
        vaddr += sgsize;
        buflen -= sgsize;
    }
    return (uint32_t)(seg + 1);
}

/* ---- xnu_model ---------------------------------------------------------------- */
typedef struct xnu_md {
    const uint64_t *page_list; /* upl_page_info-like: one frame number per page */
    uint64_t length;           /* bytes (whole pages) */
} xnu_md;

typedef struct xnu_walk_state {
    uint64_t offset;  /* in: where to walk from */
    uint64_t ioaddr;  /* out: physical address of the run */
    uint64_t length;  /* out: run length */
} xnu_walk_state;

typedef int (*xnu_dma_op_fn)(const xnu_md *md, xnu_walk_state *st);

/* dmaCommandOperation(kIOMDWalkSegments) for a page-list IOPL: find the
 * page of the offset, then grow the run page by page while contiguous */
SEG_NOINLINE int xnu_walk_segments(const xnu_md *md, xnu_walk_state *st)
{
    uint64_t off = st->offset;
    uint32_t ind = (uint32_t)(off >> SEG_PAGE_SHIFT);
    uint64_t page_addr = md->page_list[ind];
    uint64_t len = SEG_PAGE_SIZE - (off & (SEG_PAGE_SIZE - 1));
    uint64_t limit = md->length - off;
    st->ioaddr = (page_addr << SEG_PAGE_SHIFT) + (off & (SEG_PAGE_SIZE - 1));
    while (len < limit && ++page_addr == md->page_list[++ind])
        len += SEG_PAGE_SIZE;
    if (len > limit)
        len = limit;
    st->length = len;
    return 0;
}

typedef struct xnu_cmd xnu_cmd;
typedef int (*xnu_seg_fn)(xnu_cmd *cmd, seg16 seg, void *segs, uint32_t idx);
typedef int (*xnu_internal_seg_fn)(void *ref, xnu_cmd *cmd, seg16 seg, void *segs, uint32_t idx);

struct xnu_cmd {
    xnu_dma_op_fn op;        /* the descriptor's dmaCommandOperation (virtual) */
    xnu_seg_fn out_seg;      /* fOutSeg: OutputHost64 & co. */
    uint64_t max_seg;        /* fMaxSegmentSize */
    uint64_t max_phys;       /* from fNumAddressBits */
    uint64_t align_mask_len, align_mask_internal;
};

SEG_NOINLINE int xnu_output_host64(xnu_cmd *cmd, seg16 seg, void *segs, uint32_t idx)
{
    (void)cmd;
    ((seg16 *)segs)[idx] = seg;
    return 1;
}

/* clientOutputSegment: address-bits check, then the client's function */
SEG_NOINLINE int xnu_client_output(void *ref, xnu_cmd *cmd, seg16 seg, void *segs, uint32_t idx)
{
    (void)ref;
    if (seg.addr + seg.len - 1 > cmd->max_phys)
        return 0;
    return cmd->out_seg(cmd, seg, segs, idx);
}

/* genIOVMSegments over [0, md->length): returns the segment count (0: error) */
SEG_INLINE uint32_t seg_xnu_model(xnu_cmd *cmd, xnu_internal_seg_fn out_fn, const xnu_md *md, void *segs,
                                  uint32_t max_segs)
{
    uint64_t offset = 0, end = md->length;
    xnu_walk_state st;
    seg16 cur = {0, 0}, state = {0, 0};
    uint32_t idx = 0;
    while (state.addr != 0 || offset < end) {
        if (state.addr == 0) {
            st.offset = offset;
            if (cmd->op(md, &st) != 0)
                return 0;
            state.addr = st.ioaddr;
            state.len = st.length;
            offset += st.length;
        }
        if (cur.addr == 0) {
            cur = state;
            state.addr = 0;
        } else if (cur.addr + cur.len == state.addr) {
            cur.len += state.len;
            state.addr = 0;
        }
        /* maxPhys: the run must stay below the address limit (checked only) */
        if (cur.addr + cur.len - 1 > cmd->max_phys)
            return 0;
        if (cur.len > cmd->max_seg) {
            /* the rest goes back to the pending state (nothing is pending
             * here: an unmerged run was output when it arrived) */
            uint64_t remain = cur.len - cmd->max_seg;
            state.addr = cur.addr + cmd->max_seg;
            state.len = remain;
            cur.len = cmd->max_seg;
        }
        if ((cur.len & cmd->align_mask_len) != 0 || (idx && (cur.addr & cmd->align_mask_internal) != 0))
            return 0;
        if (state.addr != 0 || offset >= end) {
            if (idx >= max_segs || !out_fn(NULL, cmd, cur, segs, idx))
                return 0;
            idx++;
            cur.addr = 0;
            cur.len = 0;
        }
    }
    return idx;
}

#endif /* IOMEM_BENCH_SEG_MODELS_H */
