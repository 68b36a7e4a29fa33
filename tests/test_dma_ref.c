/* SPDX-License-Identifier: MIT */
/*
 * tests/test_dma_ref.c - unit tests of the DMA reference model
 * (tests/test_dma_ref.h) on hand-computed cases, so a bug in the oracle
 * shows here instead of hiding in the differential suites.
 *
 * The hand cases use physical descriptors (exact, chosen addresses; no
 * RAM behind them is needed for getPhysicalSegment) combined in a multi
 * descriptor, so the runs are known:
 *   "abcd": [0x100000,+0x3000) [0x103000,+0x1000) [0x200800,+0x1800) [0x300000,+0x2000)
 *           runs {0x100000,0x4000} {0x200800,0x1800} {0x300000,0x2000}, length 0x7800.
 */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "test_desc_util.h"
#include "test_dma_ref.h"

TestSuite(dma_ref, .fini = desc_fini, .timeout = 120);

typedef struct phys_set {
	IOMemoryDescriptor *md, *ch[8];
	unsigned n;
} phys_set;

static void phys_make(phys_set *s, const dma_ref_seg *r, unsigned n)
{
	cr_assert(n <= 8);
	s->n = n;
	for (unsigned i = 0; i < n; i++) {
		s->ch[i] = IOMemoryDescriptor_withPhysicalAddress(r[i].addr, r[i].len, kIODirectionInOut);
		cr_assert_not_null(s->ch[i]);
	}
	s->md = IOMultiMemoryDescriptor_withDescriptors(s->ch, n, kIODirectionInOut, false);
	cr_assert_not_null(s->md);
	cr_assert_eq(IOMemoryDescriptor_prepare(s->md, kIODirectionInOut), kIOReturnSuccess);
}

static void phys_free(phys_set *s)
{
	IOMemoryDescriptor_complete(s->md, kIODirectionInOut);
	IOMemoryDescriptor_release(s->md);
	for (unsigned i = 0; i < s->n; i++)
		IOMemoryDescriptor_release(s->ch[i]);
}

static const dma_ref_seg abcd[] = {
	{ 0x100000, 0x3000 }, { 0x103000, 0x1000 }, { 0x200800, 0x1800 }, { 0x300000, 0x2000 },
};

static void expect_segs(const dma_ref_seg *got, uint32_t n, const dma_ref_seg *want, uint32_t wn)
{
	cr_assert_eq(n, wn, "segment count %u, expected %u", n, wn);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(got[i].addr, want[i].addr, "segment %u: addr %llx, expected %llx", i,
		             (unsigned long long)got[i].addr, (unsigned long long)want[i].addr);
		cr_assert_eq(got[i].len, want[i].len, "segment %u: len %llx, expected %llx", i,
		             (unsigned long long)got[i].len, (unsigned long long)want[i].len);
	}
}

/* one call of the oracle, expecting @ret and (on success) @want and the new offset */
static void gen_expect(IOMemoryDescriptor *md, uint64_t po, uint64_t pl, const dma_ref_spec *spec, uint64_t *off,
                       uint32_t nsegs, IOReturn ret, const dma_ref_seg *want, uint32_t wn, uint64_t new_off)
{
	dma_ref_seg out[32] = { { 0, 0 } };
	uint64_t o = *off;
	uint32_t n = nsegs;
	cr_assert(nsegs <= 32);
	IOReturn r = dma_ref_gen(md, po, pl, spec, &o, out, &n);
	cr_assert_eq(r, ret, "dma_ref_gen returned %x, expected %x", (unsigned)r, (unsigned)ret);
	if (ret != kIOReturnSuccess) {
		cr_assert_eq(o, *off, "offset changed on error");
		cr_assert_eq(n, nsegs, "count changed on error");
		return;
	}
	expect_segs(out, n, want, wn);
	cr_assert_eq(o, new_off, "offset %llx, expected %llx", (unsigned long long)o, (unsigned long long)new_off);
	*off = o;
}

IOMEM_TEST(dma_ref, runs_hand_computed)
{
	phys_set s;
	dma_ref_seg out[8] = { { 0, 0 } };
	static const dma_ref_seg all[] = { { 0x100000, 0x4000 }, { 0x200800, 0x1800 }, { 0x300000, 0x2000 } };
	static const dma_ref_seg mid[] = { { 0x101000, 0x3000 }, { 0x200800, 0x800 } };
	phys_make(&s, abcd, 4);
	cr_assert_eq(IOMemoryDescriptor_getLength(s.md), 0x7800);
	long n = dma_ref_runs(s.md, 0, 0x7800, out, 8);
	cr_assert_eq(n, 3);
	expect_segs(out, (uint32_t)n, all, 3);
	n = dma_ref_runs(s.md, 0x1000, 0x3800, out, 8);
	expect_segs(out, (uint32_t)n, mid, 2);
	cr_assert_eq(dma_ref_runs(s.md, 0, 0x7800, out, 2), -1, "cap overflow");
	cr_assert_eq(dma_ref_runs(s.md, 0x7000, 0x801, out, 8), -1, "past the end");
	cr_assert_eq(dma_ref_runs(s.md, 0x7800, 0, out, 8), 0);
	phys_free(&s);
}

IOMEM_TEST(dma_ref, runs_follow_the_machine)
{
	/* a 3-page buffer: scattered -> 3 runs of a page at the machine's frames;
	 * contiguous -> 1 run */
	uint64_t pg = dma_ref_page();
	dma_ref_seg out[8] = { { 0, 0 } };
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOMemoryDescriptor *b = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, 3 * pg, pg);
	cr_assert_not_null(b);
	unsigned char *va = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	long n = dma_ref_runs(b, 0, 3 * pg, out, 8);
	cr_assert_eq(n, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(out[i].addr, iomem_posix_virt_to_phys(va + i * pg));
		cr_assert_eq(out[i].len, pg);
	}
	IOMemoryDescriptor_release(b);
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
	b = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, 3 * pg, pg);
	cr_assert_not_null(b);
	va = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	n = dma_ref_runs(b, 10, 3 * pg - 10, out, 8);
	cr_assert_eq(n, 1);
	cr_assert_eq(out[0].addr, iomem_posix_virt_to_phys(va + 10));
	cr_assert_eq(out[0].len, 3 * pg - 10);
	IOMemoryDescriptor_release(b);
}

IOMEM_TEST(dma_ref, gen_unlimited_and_overrun)
{
	phys_set s;
	dma_ref_spec sp = { 0, 0, 0, 1, 1, 1, false, false };
	static const dma_ref_seg all[] = { { 0x100000, 0x4000 }, { 0x200800, 0x1800 }, { 0x300000, 0x2000 } };
	uint64_t off = 0;
	phys_make(&s, abcd, 4);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 10, kIOReturnSuccess, all, 3, 0x7800);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 10, kIOReturnOverrun, NULL, 0, 0);
	off = 0;
	gen_expect(s.md, 0, 0x7800, &sp, &off, 0, kIOReturnBadArgument, NULL, 0, 0);
	/* the last-slot rule: one segment per call */
	off = 0;
	gen_expect(s.md, 0, 0x7800, &sp, &off, 1, kIOReturnSuccess, all, 1, 0x4000);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 1, kIOReturnSuccess, all + 1, 1, 0x5800);
	/* prepared sub-range: offsets relative, clip at the prepared end */
	{
		static const dma_ref_seg want[] = { { 0x100800, 0x3800 }, { 0x200800, 0x800 } };
		off = 0;
		gen_expect(s.md, 0x800, 0x4000, &sp, &off, 10, kIOReturnSuccess, want, 2, 0x4000);
		gen_expect(s.md, 0x800, 0x4000, &sp, &off, 10, kIOReturnOverrun, NULL, 0, 0);
		off = 0x3800;   /* resume in the middle of a run */
		gen_expect(s.md, 0x800, 0x4000, &sp, &off, 10, kIOReturnSuccess, want + 1, 1, 0x4000);
	}
	phys_free(&s);
}

IOMEM_TEST(dma_ref, gen_max_segment_and_resume)
{
	phys_set s;
	dma_ref_spec sp = { 0, 0x1800, 0, 1, 1, 1, true, false };
	static const dma_ref_seg want[] = {
		{ 0x100000, 0x1800 }, { 0x101800, 0x1800 }, { 0x103000, 0x1000 },
		{ 0x200800, 0x1800 }, { 0x300000, 0x1800 }, { 0x301800, 0x800 },
	};
	uint64_t off = 0;
	phys_make(&s, abcd, 4);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 10, kIOReturnSuccess, want, 6, 0x7800);
	off = 0;
	gen_expect(s.md, 0, 0x7800, &sp, &off, 2, kIOReturnSuccess, want, 2, 0x3000);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 2, kIOReturnSuccess, want + 2, 2, 0x5800);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 2, kIOReturnSuccess, want + 4, 2, 0x7800);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 2, kIOReturnOverrun, NULL, 0, 0);
	phys_free(&s);
}

IOMEM_TEST(dma_ref, gen_internal_alignment_after_a_cut)
{
	phys_set s;
	dma_ref_spec sp = { 0, 0x1800, 0, 1, 1, 0x1000, false, false };
	/* b cuts at 0x1800, d pulls the end back to a 0x1000 boundary; the
	 * 0x200800 run ends aligned: kept whole, misaligned start and all
	 * (not cursor mode) */
	static const dma_ref_seg want[] = {
		{ 0x100000, 0x1000 }, { 0x101000, 0x1000 }, { 0x102000, 0x1000 }, { 0x103000, 0x1000 },
		{ 0x200800, 0x1800 }, { 0x300000, 0x1000 }, { 0x301000, 0x1000 },
	};
	uint64_t off = 0;
	phys_make(&s, abcd, 4);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 10, kIOReturnSuccess, want, 7, 0x7800);
	/* cursor mode: segment 4 starts misaligned for align_internal */
	sp.cursor_mode = true;
	off = 0;
	gen_expect(s.md, 0, 0x7800, &sp, &off, 10, kIOReturnNotAligned, NULL, 0, 0);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 4, kIOReturnSuccess, want, 4, 0x4000);
	/* resuming does not make it a "first" segment */
	gen_expect(s.md, 0, 0x7800, &sp, &off, 10, kIOReturnNotAligned, NULL, 0, 0);
	/* the first segment of a range prepared from 0x4000 is checked against
	 * align (1 here), not align_internal */
	off = 0;
	gen_expect(s.md, 0x4000, 0x3800, &sp, &off, 10, kIOReturnSuccess, want + 4, 3, 0x3800);
	sp.align = 0x1000;
	off = 0;
	gen_expect(s.md, 0x4000, 0x3800, &sp, &off, 10, kIOReturnNotAligned, NULL, 0, 0);
	phys_free(&s);
}

IOMEM_TEST(dma_ref, gen_internal_alignment_at_a_run_end)
{
	/* d also trims a segment that ends at its run's end (the reference:
	 * "so that the next segment's start is aligned"), not at the prepared
	 * end: {0x100000,0x1800} -> 0x1000 + a 0x800 tail */
	static const dma_ref_seg two[] = { { 0x100000, 0x1800 }, { 0x200000, 0x1000 } };
	static const dma_ref_seg want[] = { { 0x100000, 0x1000 }, { 0x101000, 0x800 }, { 0x200000, 0x1000 } };
	dma_ref_spec sp = { 0, 0, 0, 1, 1, 0x1000, false, false };
	phys_set s;
	uint64_t off = 0;
	phys_make(&s, two, 2);
	gen_expect(s.md, 0, 0x2800, &sp, &off, 8, kIOReturnSuccess, want, 3, 0x2800);
	sp.cursor_mode = true;   /* every start aligned: fine in cursor mode too */
	off = 0;
	gen_expect(s.md, 0, 0x2800, &sp, &off, 8, kIOReturnSuccess, want, 3, 0x2800);
	/* prepared up to 0x1800 only: nothing follows, no trim */
	off = 0;
	gen_expect(s.md, 0, 0x1800, &sp, &off, 8, kIOReturnSuccess, two, 1, 0x1800);
	phys_free(&s);
}

IOMEM_TEST(dma_ref, gen_length_alignment)
{
	phys_set s;
	dma_ref_spec sp = { 0, 0, 0, 1, 0x1000, 1, true, false };
	static const dma_ref_seg want[] = { { 0x100000, 0x4000 }, { 0x200800, 0x1000 } };
	uint64_t off = 0;
	phys_make(&s, abcd, 4);
	/* 0x1800 -> trimmed to 0x1000; the 0x800 rest cannot be trimmed
	 * (nothing would be left) and fails the cursor length check */
	gen_expect(s.md, 0, 0x7800, &sp, &off, 2, kIOReturnSuccess, want, 2, 0x5000);
	gen_expect(s.md, 0, 0x7800, &sp, &off, 2, kIOReturnNotAligned, NULL, 0, 0);
	/* not cursor mode: the short piece is emitted as it is */
	sp.cursor_mode = false;
	{
		static const dma_ref_seg rest[] = { { 0x201800, 0x800 }, { 0x300000, 0x2000 } };
		gen_expect(s.md, 0, 0x7800, &sp, &off, 4, kIOReturnSuccess, rest, 2, 0x7800);
	}
	phys_free(&s);
}

IOMEM_TEST(dma_ref, gen_clip_order)
{
	/* one 0x4000 run, prepared [0, 0x3000), resumed at 0x800 with
	 * align_length 0x1000. Clip first (ours): 0x2800 trimmed to 0x2000,
	 * then a 0x800 tail (NotAligned in cursor mode). IOKit's order: c trims
	 * the unclipped 0x3800 to 0x3000, f clips to 0x2800: one segment. */
	static const dma_ref_seg one[] = { { 0x100000, 0x4000 } };
	static const dma_ref_seg ours[] = { { 0x100800, 0x2000 }, { 0x102800, 0x800 } };
	static const dma_ref_seg iokit[] = { { 0x100800, 0x2800 } };
	dma_ref_spec sp = { 0, 0, 0, 1, 0x1000, 1, false, false };
	phys_set s;
	uint64_t off = 0x800;
	phys_make(&s, one, 1);
	gen_expect(s.md, 0, 0x3000, &sp, &off, 8, kIOReturnSuccess, ours, 2, 0x3000);
	sp.cursor_mode = true;
	off = 0x800;
	gen_expect(s.md, 0, 0x3000, &sp, &off, 8, kIOReturnNotAligned, NULL, 0, 0);
	gen_expect(s.md, 0, 0x3000, &sp, &off, 1, kIOReturnSuccess, ours, 1, 0x2800);
	gen_expect(s.md, 0, 0x3000, &sp, &off, 1, kIOReturnNotAligned, NULL, 0, 0);
	sp.iokit_clip_order = true;   /* the checked length is the trimmed 0x3000 */
	off = 0x800;
	gen_expect(s.md, 0, 0x3000, &sp, &off, 8, kIOReturnSuccess, iokit, 1, 0x3000);
	sp.cursor_mode = false;
	off = 0x800;
	gen_expect(s.md, 0, 0x3000, &sp, &off, 8, kIOReturnSuccess, iokit, 1, 0x3000);
	phys_free(&s);
}

IOMEM_TEST(dma_ref, gen_address_limit)
{
	/* [0x1FF000, +0x3000) crosses 2^21 */
	static const dma_ref_seg one[] = { { 0x1FF000, 0x3000 } };
	static const dma_ref_seg want[] = { { 0x1FF000, 0x1000 }, { 0x200000, 0x1000 }, { 0x201000, 0x1000 } };
	static const dma_ref_seg want800[] = { { 0x1FF800, 0x800 }, { 0x200000, 0x1000 }, { 0x201000, 0x800 } };
	dma_ref_spec sp = { 21, 0, 0, 1, 1, 1, true, false };
	phys_set s;
	uint64_t off = 0;
	if (dma_ref_page() != 0x1000)
		cr_skip_test("hand case written for 4 KiB pages");
	phys_make(&s, one, 1);
	gen_expect(s.md, 0, 0x3000, &sp, &off, 8, kIOReturnMessageTooLarge, NULL, 0, 0);
	/* only the part below the limit prepared: fine (clip first) ... */
	gen_expect(s.md, 0, 0x1000, &sp, &off, 8, kIOReturnSuccess, want, 1, 0x1000);
	/* ... but in IOKit's order the check sees the unclipped run */
	sp.iokit_clip_order = true;
	off = 0;
	gen_expect(s.md, 0, 0x1000, &sp, &off, 8, kIOReturnMessageTooLarge, NULL, 0, 0);
	sp.address_bits = 22;   /* a limit the whole run fits */
	gen_expect(s.md, 0, 0x1000, &sp, &off, 8, kIOReturnSuccess, want, 1, 0x1000);
	sp.address_bits = 21;
	sp.iokit_clip_order = false;
	/* not cursor mode: cut at the limit, then the pages above one by one
	 * (reported with their own addresses: they are the bounced ones) */
	sp.cursor_mode = false;
	off = 0;
	gen_expect(s.md, 0, 0x3000, &sp, &off, 8, kIOReturnSuccess, want, 3, 0x3000);
	off = 0;
	gen_expect(s.md, 0x800, 0x2000, &sp, &off, 8, kIOReturnSuccess, want800, 3, 0x2000);
	/* 64 bits = unlimited */
	sp.address_bits = 64;
	sp.cursor_mode = true;
	off = 0;
	gen_expect(s.md, 0, 0x3000, &sp, &off, 8, kIOReturnSuccess, one, 1, 0x3000);
	phys_free(&s);
}

IOMEM_TEST(dma_ref, cursor_hand_computed)
{
	phys_set s;
	dma_ref_seg out[16] = { { 0, 0 } };
	uint64_t xfer = 1;
	phys_make(&s, abcd, 4);
	{
		static const dma_ref_seg want[] = {
			{ 0x100000, 0x1800 }, { 0x101800, 0x1800 }, { 0x103000, 0x1000 },
			{ 0x200800, 0x1800 }, { 0x300000, 0x1800 }, { 0x301800, 0x800 },
		};
		uint32_t n = dma_ref_cursor(s.md, 0, 0x1800, 0, 0, out, 16, &xfer);
		expect_segs(out, n, want, 6);
		cr_assert_eq(xfer, 0x7800);
		/* per-call transfer limit: the segment is trimmed */
		n = dma_ref_cursor(s.md, 0, 0x1800, 0, 0x2000, out, 16, &xfer);
		static const dma_ref_seg w2[] = { { 0x100000, 0x1800 }, { 0x101800, 0x800 } };
		expect_segs(out, n, w2, 2);
		cr_assert_eq(xfer, 0x2000);
		/* the cursor's own limit when the call passes 0 */
		n = dma_ref_cursor(s.md, 0, 0x1800, 0x1000, 0, out, 16, &xfer);
		cr_assert_eq(n, 1);
		cr_assert_eq(out[0].addr, 0x100000);
		cr_assert_eq(out[0].len, 0x1000);
		cr_assert_eq(xfer, 0x1000);
		/* max_segs */
		n = dma_ref_cursor(s.md, 0, 0x1800, 0, 0, out, 2, &xfer);
		expect_segs(out, n, want, 2);
		cr_assert_eq(xfer, 0x3000);
		/* resume at the returned position */
		n = dma_ref_cursor(s.md, 0x3000, 0x1800, 0, 0, out, 16, &xfer);
		expect_segs(out, n, want + 2, 4);
		cr_assert_eq(xfer, 0x4800);
	}
	{
		static const dma_ref_seg runs[] = { { 0x100000, 0x4000 }, { 0x200800, 0x1800 }, { 0x300000, 0x2000 } };
		uint32_t n = dma_ref_cursor(s.md, 0, ~(uint64_t)0, 0, 0, out, 16, &xfer);
		expect_segs(out, n, runs, 3);
		cr_assert_eq(dma_ref_cursor(s.md, 0x7800, 0x1000, 0, 0, out, 16, &xfer), 0);
		cr_assert_eq(xfer, 0);
		cr_assert_eq(dma_ref_cursor(s.md, 0, 0x1000, 0, 0, out, 0, &xfer), 0);
		cr_assert_eq(dma_ref_cursor(NULL, 0, 0x1000, 0, 0, out, 4, &xfer), 0);
	}
	phys_free(&s);
}

IOMEM_TEST(dma_ref, random_md_builder)
{
	dma_ref_rng r = { 12345 };
	dma_ref_seg runs[512];
	int kinds_seen = 0;
	for (int i = 0; i < 300; i++) {
		dma_ref_md m;
		dma_ref_random_layout(&r, true);
		cr_assert_eq(dma_ref_random_md(&r, 2, 4, kIODirectionInOut, &m), kIOReturnSuccess, "case %d", i);
		cr_assert_not_null(m.md);
		cr_assert_geq(m.length, 1);
		cr_assert_eq(m.length, IOMemoryDescriptor_getLength(m.md));
		kinds_seen |= 1 << iomem_md_kind_of(m.md);
		long n = dma_ref_runs(m.md, 0, m.length, runs, 512);
		cr_assert_gt(n, 0, "case %d", i);
		uint64_t sum = 0;
		for (long k = 0; k < n; k++) {
			sum += runs[k].len;
			if (k > 0)
				cr_assert_neq(runs[k - 1].addr + runs[k - 1].len, runs[k].addr, "runs not maximal");
		}
		cr_assert_eq(sum, m.length);
		/* every byte readable through the descriptor */
		unsigned char *buf = malloc(m.length);
		cr_assert_eq(IOMemoryDescriptor_readBytes(m.md, 0, buf, m.length), m.length);
		free(buf);
		dma_ref_md_release(&m);
		cr_assert_null(m.md);
	}
	cr_assert_gt(__builtin_popcount(kinds_seen), 2, "too few descriptor kinds (%x)", kinds_seen);
}
