/* SPDX-License-Identifier: MIT */
/*
 * tests/test_dma_ref.h - the reference model ("oracle") the DMA suites
 * compare against: IODMACommand's genIOVMSegments for an unbounced,
 * unmapped command, IOMemoryCursor's genPhysicalSegments, the naive
 * page-by-page physical map of a descriptor, and random descriptors.
 *
 * Include after iomem.h (and the POSIX backend). Header-only, static
 * functions, no Criterion: every function reports problems through its
 * return value so the oracle can itself be unit-tested (tests/test_dma_ref.c).
 *
 * Written for clarity, not speed (O(pages) per segment): it is the oracle.
 * It deliberately does NOT use iomem_walk (the engine under test): every
 * run is rebuilt from IOMemoryDescriptor_getPhysicalSegment called at
 * every page boundary.
 *
 * Semantics (reference §2.1 genIOVMSegments, steps 1-4), for one segment
 * starting at absolute descriptor offset pos:
 *   run    the maximal physically contiguous run at pos, clipped at the
 *          prepared end: iomem's documented deviation (LEAD 15:36, "clip
 *          first": no rule looks at bytes outside the prepared range).
 *          With spec->iokit_clip_order the run goes on to the end of the
 *          descriptor, as IOKit's source walk (the reference's order: a-e
 *          see the unclipped run, step f clips);
 *   a.     address limit (maxPhys = 2^bits - 1 for bits 1..63): end above
 *          maxPhys -> cursor mode: kIOReturnMessageTooLarge; start <= maxPhys:
 *          cut at maxPhys + 1; start above: a bounce page stands in for the
 *          page, so the piece is clipped at its page end (see BOUNCE below);
 *   b.     cut to max_segment;
 *   c.     trim the length to a multiple of align_length (if non-zero left);
 *   d.     when the segment ends before the prepared end: trim so the end
 *          (the next segment's start) is a multiple of align_internal (if
 *          non-zero left) - the reference's words; (from memory, XNU only
 *          does it when a, b or c pushed a remainder back: not modelled);
 *   e.     cursor mode: start & (the prepared range's first segment ?
 *          align-1 : align_internal-1), length & (align_length-1) ->
 *          kIOReturnNotAligned ("first segment" / "segments 2..n" of the
 *          reference; XNU counts per call - not modelled);
 *   f.     clip at the prepared end (and stop there);
 *   emit;  the call stops after *nsegs segments (IOKit's reserved last slot
 *          gives exactly that) or at the prepared end.
 * Because every cut pushes the rest back and IOKit restarts from the
 * descriptor at the same offset, the result is a pure function of the
 * absolute offset: the oracle keeps no state between calls.
 *
 * BOUNCE (non-cursor mode only): pieces wholly above maxPhys are reported
 * with their ORIGINAL address (> maxPhys), one page at most; the caller
 * knows those are the bounced ones and checks the command put a low
 * address there instead. Exact for alignment masks below the page size
 * (a bounce page keeps the page offset); a bounce page that happens to be
 * physically adjacent to the next run (IOKit would merge) is not modelled.
 */
#ifndef IOMEM_TEST_DMA_REF_H
#define IOMEM_TEST_DMA_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DMA_REF_PURE: on the helpers that call nothing of the library (random
 * numbers, byte fills); empty by default. The fuzzers define it as
 * FZ_MODEL + noinline: no coverage instrumentation there, and kept out of
 * line so the instrumented callers do not take their loops back in. */
#ifndef DMA_REF_PURE
#  define DMA_REF_PURE
#endif

typedef struct dma_ref_seg { uint64_t addr, len; } dma_ref_seg;

typedef struct dma_ref_spec {
	unsigned address_bits;                        /* 0 = unlimited */
	uint64_t max_segment, max_transfer;           /* 0 = unlimited */
	uint32_t align, align_length, align_internal; /* after IOKit's defaults: >= 1, powers of two */
	bool     cursor_mode;                         /* no bouncing possible: violations are errors */
	bool     iokit_clip_order;                    /* see below; false (the default): clip first */
} dma_ref_spec;

static inline uint64_t dma_ref_page(void)
{
	return (uint64_t)iomem__platform_page_size();
}

/* The piece at @pos: getPhysicalSegment clipped at the physical page end
 * and at @end. 0 when the descriptor has no address there. */
static inline uint64_t dma_ref__piece(IOMemoryDescriptor *md, uint64_t pos, uint64_t end, uint64_t *pa,
                                      IOOptionBits options)
{
	uint64_t pg = dma_ref_page(), to_page;
	IOByteCount l = 0;
	addr64_t p = IOMemoryDescriptor_getPhysicalSegment(md, (IOByteCount)pos, &l, options);
	if (p == 0 || l == 0)
		return 0;
	to_page = pg - (p & (pg - 1));
	if (l > to_page)
		l = to_page;
	if (l > end - pos)
		l = end - pos;
	*pa = p;
	return l;
}

/* The maximal physically contiguous run at @pos, at most up to @end, built
 * piece by piece. Returns its length (0: no physical address at @pos, or
 * @pos >= @end). */
static inline uint64_t dma_ref__run_at(IOMemoryDescriptor *md, uint64_t pos, uint64_t end, uint64_t *pa,
                                       IOOptionBits options)
{
	uint64_t len, p2 = 0, l2;
	if (pos >= end)
		return 0;
	len = dma_ref__piece(md, pos, end, pa, options);
	if (len == 0)
		return 0;
	while (pos + len < end) {
		l2 = dma_ref__piece(md, pos + len, end, &p2, options);
		if (l2 == 0 || p2 != *pa + len)
			break;
		len += l2;
	}
	return len;
}

/* The naive per-page physical map of [@off, @off + @len): maximal runs.
 * Returns the count, or -1 when @cap overflows or a byte has no physical
 * address (or the range leaves the descriptor). */
static inline long dma_ref_runs(IOMemoryDescriptor *md, uint64_t off, uint64_t len, dma_ref_seg *out, size_t cap)
{
	uint64_t pos = off, end = off + len;
	size_t n = 0;
	if (end < off || end > (uint64_t)IOMemoryDescriptor_getLength(md))
		return -1;
	while (pos < end) {
		uint64_t pa = 0, l = dma_ref__run_at(md, pos, end, &pa, kIOMemoryMapperNone);
		if (l == 0 || n == cap)
			return -1;
		out[n].addr = pa;
		out[n].len = l;
		n++;
		pos += l;
	}
	return (long)n;
}

/* genIOVMSegments of an unbounced, unmapped command (see the top of this
 * file). Prepared range [@prep_off, @prep_off + @prep_len); *@offset is
 * relative to @prep_off; at most *@nsegs segments into @out.
 * Returns kIOReturnSuccess (*@offset advanced past the last segment,
 * *@nsegs = count), kIOReturnOverrun (at/after the prepared end),
 * kIOReturnMessageTooLarge / kIOReturnNotAligned (cursor mode),
 * kIOReturnBadArgument (NULL pointer or *@nsegs 0), kIOReturnInternalError
 * (a byte with no physical address). On error *@offset and *@nsegs are
 * unchanged; @out may hold the segments before the failing one. */
static inline IOReturn dma_ref_gen(IOMemoryDescriptor *md, uint64_t prep_off, uint64_t prep_len,
                            const dma_ref_spec *spec, uint64_t *offset, dma_ref_seg *out, uint32_t *nsegs)
{
	uint64_t pg = dma_ref_page();
	uint64_t md_end, prep_end = prep_off + prep_len, pos, max_phys, max_seg;
	uint64_t align_mask, length_mask, internal_mask;
	uint32_t n = 0;

	if (md == NULL || spec == NULL || offset == NULL || out == NULL || nsegs == NULL || *nsegs == 0)
		return kIOReturnBadArgument;
	md_end = (uint64_t)IOMemoryDescriptor_getLength(md);
	pos = prep_off + *offset;
	if (*offset >= prep_len || pos >= prep_end)
		return kIOReturnOverrun;

	max_phys = (spec->address_bits >= 1 && spec->address_bits <= 63)
	           ? ((uint64_t)1 << spec->address_bits) - 1 : ~(uint64_t)0;
	max_seg = spec->max_segment ? spec->max_segment : ~(uint64_t)0;
	align_mask = (uint64_t)(spec->align ? spec->align : 1) - 1;
	length_mask = (uint64_t)(spec->align_length ? spec->align_length : 1) - 1;
	internal_mask = (uint64_t)(spec->align_internal ? spec->align_internal : 1) - 1;

	for (;;) {
		uint64_t addr = 0, len, reduce;
		bool last = false;

		/* 1-2: the maximal run at pos (merging done by the run builder) */
		len = dma_ref__run_at(md, pos, spec->iokit_clip_order ? md_end : prep_end, &addr, kIOMemoryMapperNone);
		if (len == 0)
			return kIOReturnInternalError;

		/* a: address limit */
		if (addr + len - 1 > max_phys) {
			if (spec->cursor_mode)
				return kIOReturnMessageTooLarge;
			if (addr <= max_phys)
				len = max_phys + 1 - addr;          /* straddles: cut at the limit */
			else if (pg - (addr & (pg - 1)) < len)
				len = pg - (addr & (pg - 1));       /* bounced page by page */
		}
		/* b: maximum segment size */
		if (len > max_seg)
			len = max_seg;
		/* c: length alignment */
		reduce = len & length_mask;
		if (reduce != 0 && len > reduce)
			len -= reduce;
		/* d: the next segment's start (when one follows in the range) */
		if (pos + len < prep_end) {
			reduce = (addr + len) & internal_mask;
			if (reduce != 0 && len > reduce)
				len -= reduce;
		}
		/* e: cursor-mode verification; the first segment of the prepared
		 * range against align, the others against align_internal */
		if (spec->cursor_mode) {
			uint64_t mask = pos == prep_off ? align_mask : internal_mask;
			if ((addr & mask) != 0 || (len & length_mask) != 0)
				return kIOReturnNotAligned;
		}
		/* f: clip at the prepared end (a no-op unless iokit_clip_order) */
		if (pos + len >= prep_end) {
			len = prep_end - pos;
			last = true;
		}
		out[n].addr = addr;
		out[n].len = len;
		n++;
		pos += len;
		if (last || n == *nsegs)
			break;
	}
	*offset = pos - prep_off;
	*nsegs = n;
	return kIOReturnSuccess;
}

/* IOMemoryCursor::genPhysicalSegments (reference §5.1) from @from:
 * @max_segment >= 1 (IOKit's 0 quirk is not modelled), the cursor's
 * @cursor_max_transfer (0: unlimited) and the call's @max_transfer (0: the
 * cursor's, truncated to 32 bits), at most @max_segs segments. Returns the
 * count (0: NULL @md, @max_segs 0, @from at/after the end); *@transfer (may
 * be NULL) = the bytes, a 32-bit counter as IOKit's. Walks with default
 * options (getPhysicalSegment(..., 0)). A byte with no physical address
 * ends the walk there (IOKit would loop; reference §5.1). */
static inline uint32_t dma_ref_cursor(IOMemoryDescriptor *md, uint64_t from, uint64_t max_segment,
                               uint64_t cursor_max_transfer, uint32_t max_transfer, dma_ref_seg *out,
                               uint32_t max_segs, uint64_t *transfer)
{
	uint32_t n = 0, total = 0, limit;
	uint64_t md_end, pos = from;

	if (transfer)
		*transfer = 0;
	if (md == NULL || max_segs == 0)
		return 0;
	limit = max_transfer ? max_transfer
	                     : (uint32_t)(cursor_max_transfer ? cursor_max_transfer : ~(uint64_t)0);
	md_end = (uint64_t)IOMemoryDescriptor_getLength(md);
	while (pos < md_end) {
		uint64_t addr = 0, len = dma_ref__run_at(md, pos, md_end, &addr, 0);
		bool stop = false;
		if (len == 0)
			break;
		if (len > max_segment)
			len = max_segment;
		total += (uint32_t)len;
		if (total >= limit) {
			len -= (uint64_t)(total - limit);
			total = limit;
			stop = true;
		}
		out[n].addr = addr;
		out[n].len = len;
		n++;
		pos += len;
		if (stop || n == max_segs)
			break;
	}
	if (transfer)
		*transfer = total;
	return n;
}

/* ---- random descriptors ------------------------------------------------- */

typedef struct dma_ref_rng { uint64_t s; } dma_ref_rng;

DMA_REF_PURE static inline uint64_t dma_ref_rand(dma_ref_rng *r)
{
	uint64_t x = r->s ? r->s : 0x9E3779B97F4A7C15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->s = x;
	return x;
}

/* uniform-ish in [lo, hi] (hi >= lo) */
DMA_REF_PURE static inline uint64_t dma_ref_range(dma_ref_rng *r, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo + 1;
	return span == 0 ? dma_ref_rand(r) : lo + dma_ref_rand(r) % span;
}

/* @n random bytes (eight per draw) */
DMA_REF_PURE static inline void dma_ref_fill(dma_ref_rng *r, void *p, size_t n)
{
	unsigned char *b = (unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		uint64_t x = dma_ref_rand(r);
		for (int k = 0; k < 8 && i < n; k++, i++, x >>= 8)
			b[i] = (unsigned char)x;
	}
}

#define DMA_REF_MAX_OBJ 64

/* What dma_ref_random_md built. @md is +1 and prepared (once, with the
 * direction given); dma_ref_md_release undoes everything. */
typedef struct dma_ref_md {
	IOMemoryDescriptor *md;           /* the top descriptor */
	uint64_t            length;
	IODirection         direction;
	/* private */
	IOMemoryDescriptor *obj[DMA_REF_MAX_OBJ];  /* every descriptor created, in order */
	unsigned            nobj;
	void               *arena[DMA_REF_MAX_OBJ];
	vm_size_t           arena_size[DMA_REF_MAX_OBJ];
	unsigned            narena;
	bool                prepared;
} dma_ref_md;

static inline void dma_ref_md_release(dma_ref_md *m)
{
	if (m->prepared)
		IOMemoryDescriptor_complete(m->md, m->direction);
	m->prepared = false;
	while (m->nobj > 0)
		IOMemoryDescriptor_release(m->obj[--m->nobj]);
	while (m->narena > 0) {
		m->narena--;
		IOFreeAligned(m->arena[m->narena], m->arena_size[m->narena]);
	}
	m->md = NULL;
	m->length = 0;
}

static inline bool dma_ref__keep(dma_ref_md *m, IOMemoryDescriptor *md)
{
	if (md == NULL || m->nobj == DMA_REF_MAX_OBJ) {
		IOMemoryDescriptor_release(md);
		return false;
	}
	m->obj[m->nobj++] = md;
	return true;
}

/* A random leaf: general virtual (1..4 ranges, random page offsets and
 * lengths, sometimes an empty range), buffer (sometimes contiguous), or
 * physical over a buffer's frames. NULL on failure (everything created so
 * far stays owned by @m). Length >= 1. */
static inline IOMemoryDescriptor *dma_ref__leaf(dma_ref_rng *r, dma_ref_md *m, uint64_t max_pages, IODirection dir)
{
	uint64_t pg = dma_ref_page();
	int kind = (int)dma_ref_range(r, 0, 2);
	if (max_pages < 1)
		max_pages = 1;
	if (kind == 0) {
		IOAddressRange ranges[4];
		uint32_t nr = (uint32_t)dma_ref_range(r, 1, 4), i;
		vm_size_t size = (vm_size_t)((max_pages + 1) * pg);
		unsigned char *a;
		uint64_t total = 0;
		if (m->narena == DMA_REF_MAX_OBJ)
			return NULL;
		a = (unsigned char *)IOMallocAligned(size, (vm_offset_t)pg);
		if (a == NULL)
			return NULL;
		m->arena[m->narena] = a;
		m->arena_size[m->narena] = size;
		m->narena++;
		dma_ref_fill(r, a, size);
		for (i = 0; i < nr; i++) {
			uint64_t len = (i > 0 && dma_ref_range(r, 0, 7) == 0) ? 0 : dma_ref_range(r, 1, max_pages * pg);
			uint64_t start;
			if (i == nr - 1 && total + len == 0)
				len = 1;
			start = dma_ref_range(r, 0, size - len);
			ranges[i].address = (mach_vm_address_t)(uintptr_t)(a + start);
			ranges[i].length = len;
			total += len;
		}
		{
			IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges(ranges, nr, dir, kernel_task);
			return dma_ref__keep(m, md) ? md : NULL;
		}
	} else if (kind == 1) {
		vm_size_t cap = (vm_size_t)dma_ref_range(r, 1, max_pages * pg);
		IOMemoryDescriptor *md = dma_ref_range(r, 0, 3) == 0
		        ? IOBufferMemoryDescriptor_withCapacity(cap, dir, true)
		        : IOBufferMemoryDescriptor_withOptions(dir, cap, 1);
		if (!dma_ref__keep(m, md))
			return NULL;
		dma_ref_fill(r, IOBufferMemoryDescriptor_getBytesNoCopy(md), cap);
		if (dma_ref_range(r, 0, 3) == 0)
			IOBufferMemoryDescriptor_setLength(md, (vm_size_t)dma_ref_range(r, 1, cap));
		return md;
	} else {
		vm_size_t cap = (vm_size_t)dma_ref_range(r, 1, max_pages * pg);
		IOByteCount seg = 0, off;
		addr64_t pa;
		IOMemoryDescriptor *keep = IOBufferMemoryDescriptor_withOptions(dir, cap, 1), *md;
		if (!dma_ref__keep(m, keep))
			return NULL;
		dma_ref_fill(r, IOBufferMemoryDescriptor_getBytesNoCopy(keep), cap);
		off = (IOByteCount)dma_ref_range(r, 0, cap - 1);
		pa = IOMemoryDescriptor_getPhysicalSegment(keep, off, &seg, kIOMemoryMapperNone);
		if (pa == 0 || seg == 0)
			return NULL;
		md = IOMemoryDescriptor_withPhysicalAddress((IOPhysicalAddress)pa,
		                                            (IOByteCount)dma_ref_range(r, 1, seg), dir);
		return dma_ref__keep(m, md) ? md : NULL;
	}
}

static inline IOMemoryDescriptor *dma_ref__node(dma_ref_rng *r, dma_ref_md *m, unsigned depth, uint64_t max_pages,
                                         IODirection dir)
{
	int kind = depth == 0 ? 0 : (int)dma_ref_range(r, 0, 3);   /* 0,1 leaf; 2 sub; 3 multi */
	if (kind <= 1)
		return dma_ref__leaf(r, m, max_pages, dir);
	if (kind == 2) {
		IOMemoryDescriptor *of = dma_ref__node(r, m, depth - 1, max_pages, dir), *md;
		uint64_t l, off, len;
		if (of == NULL)
			return NULL;
		l = (uint64_t)IOMemoryDescriptor_getLength(of);
		off = dma_ref_range(r, 0, l - 1);
		len = dma_ref_range(r, 1, l - off);
		md = IOSubMemoryDescriptor_withSubRange(of, (IOByteCount)off, (IOByteCount)len, dir);
		return dma_ref__keep(m, md) ? md : NULL;
	} else {
		IOMemoryDescriptor *ch[3], *md;
		uint32_t nc = (uint32_t)dma_ref_range(r, 2, 3), i;
		for (i = 0; i < nc; i++) {
			ch[i] = dma_ref__node(r, m, depth - 1, max_pages, dir);
			if (ch[i] == NULL)
				return NULL;
		}
		md = IOMultiMemoryDescriptor_withDescriptors(ch, nc, dir, dma_ref_range(r, 0, 1) != 0);
		return dma_ref__keep(m, md) ? md : NULL;
	}
}

/*
 * dma_ref_random_md - a random descriptor (general virtual, buffer,
 * physical over a buffer's frames, sub of any, multi of 2-3 of any) of
 * nesting depth <= @max_depth, leaves of <= @max_pages pages, every
 * descriptor created with @direction, the top prepared once with it.
 * Frames come from the POSIX layout the caller set beforehand
 * (iomem_posix_set_phys_layout). Byte contents are random (from @r).
 * Returns kIOReturnSuccess with *@out filled (@out->md +1, length >= 1), or
 * an error with nothing left allocated. Release with dma_ref_md_release.
 */
static inline IOReturn dma_ref_random_md(dma_ref_rng *r, unsigned max_depth, uint64_t max_pages, IODirection direction,
                                  dma_ref_md *out)
{
	IOMemoryDescriptor *md;
	IOReturn ret;
	memset(out, 0, sizeof *out);
	out->direction = direction;
	md = dma_ref__node(r, out, (unsigned)dma_ref_range(r, 0, max_depth), max_pages, direction);
	if (md == NULL) {
		dma_ref_md_release(out);
		return kIOReturnNoMemory;
	}
	out->md = md;
	out->length = (uint64_t)IOMemoryDescriptor_getLength(md);
	ret = IOMemoryDescriptor_prepare(md, direction);
	if (ret != kIOReturnSuccess) {
		dma_ref_md_release(out);
		return ret;
	}
	out->prepared = true;
	return kIOReturnSuccess;
}

/* A random POSIX layout: IDENTITY, CONTIGUOUS, SCATTERED, RUNS (mean 2 or
 * 8) or HIGH (when @allow_high). Returns the policy set. */
static inline iomem_posix_layout dma_ref_random_layout(dma_ref_rng *r, bool allow_high)
{
	iomem_posix_phys_layout l;
	memset(&l, 0, sizeof l);
	l.policy = (iomem_posix_layout)dma_ref_range(r, 0, allow_high ? 5 : 4);
	if (l.policy == IOMEM_POSIX_LAYOUT_PAGEMAP)   /* 5: a second chance for RUNS */
		l.policy = IOMEM_POSIX_LAYOUT_RUNS;
	if (l.policy == IOMEM_POSIX_LAYOUT_HIGH && !allow_high)
		l.policy = IOMEM_POSIX_LAYOUT_SCATTERED;
	l.run_mean = dma_ref_range(r, 0, 1) ? 2 : 8;
	l.seed = dma_ref_rand(r) | 1;
	iomem_posix_set_phys_layout(&l);
	return l.policy;
}

#endif
