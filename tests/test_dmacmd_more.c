/* SPDX-License-Identifier: MIT */
/* tests/test_dmacmd_more.c - IODMACommand paths the main suites do not
 * reach: genIOVMSegmentsWithFunction with each built-in output function,
 * genIOVMSegments on a command whose own output function is the caller's
 * (and on one with none yet), an output function that refuses at every
 * position on every engine path (whole extents, split runs, pieces, one
 * IOVA run, the rule walk, sub-descriptors), and the iomem_walk API. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_map.h"
#include "iomem_dma.h"
#include "test_desc_util.h"

static void more_fini(void)
{
	iomem_bounce_pool_trim();
	desc_fini();
}

TestSuite(dmacmd_more, .fini = more_fini);

#define PG DESC_PAGE
#define MAXSEG 256

static IODMACommand_SegmentFunction const builtin_fns[6] = {
	IODMACommand_OutputHost32, IODMACommand_OutputBig32,    IODMACommand_OutputLittle32,
	IODMACommand_OutputHost64, IODMACommand_OutputBig64,    IODMACommand_OutputLittle64,
};

/* a buffer of @npages pages and a descriptor over [lead, lead + len) */
typedef struct mbuf {
	unsigned char *base;
	size_t npages;
	IOMemoryDescriptor *md;
} mbuf;

static void mbuf_make(mbuf *b, size_t npages, size_t lead, size_t len, uint32_t seed)
{
	b->npages = npages;
	b->base = IOMallocAligned(npages * PG, PG);
	cr_assert_not_null(b->base);
	desc_fill(b->base, npages * PG, seed);
	b->md = IOMemoryDescriptor_withAddress(b->base + lead, len, kIODirectionOut);
	cr_assert_not_null(b->md);
}

static void mbuf_free(mbuf *b)
{
	IOMemoryDescriptor_release(b->md);
	IOFreeAligned(b->base, b->npages * PG);
}

/* @npages whole pages of @layout frames, all described */
static void mbuf_pages(mbuf *b, iomem_posix_layout layout, size_t npages, uint32_t seed)
{
	desc_set_layout(layout, 0, 0);
	mbuf_make(b, npages, 0, npages * PG, seed);
}

/* an unmapped Host64 command with @md attached, not prepared */
static IODMACommand *host64_attached(UInt8 bits, IOMemoryDescriptor *md)
{
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, bits, 0, IODMACommand_kUnmapped, 0, 1,
	                                                 NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	return c;
}

/* a Host64 / user command over @md, prepared (autoPrepare) */
static IODMACommand *cmd_on(IODMACommand_SegmentFunction fn, const IODMACommand_SegmentOptions *o, uint32_t mapping,
                            IOMapper *m, IOMemoryDescriptor *md)
{
	IODMACommand *c = IODMACommand_withSpecificationOptions(fn, o, mapping, m, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnSuccess);
	return c;
}

/* Every segment of @c from 0 (Host64 output), at most MAXSEG. */
static UInt32 gen_ref(IODMACommand *c, IODMACommand_Segment64 *ref)
{
	UInt64 off = 0;
	UInt32 total = 0;
	for (;;) {
		UInt32 n = MAXSEG - total;
		IOReturn r = IODMACommand_gen64IOVMSegments(c, &off, ref + total, &n);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess, "%s", IOReturnString(r));
		total += n;
		cr_assert_lt(total, MAXSEG);
	}
	return total;
}

static bool copy_out(IODMACommand *target, IODMACommand_Segment64 seg, void *segments, UInt32 index)
{
	(void)target;
	((IODMACommand_Segment64 *)segments)[index] = seg;
	return true;
}

/* refuses the segment of index refuse_at (and any later one) */
static UInt32 refuse_at;
static bool refuse_out(IODMACommand *target, IODMACommand_Segment64 seg, void *segments, UInt32 index)
{
	(void)target;
	if (index >= refuse_at)
		return false;
	((IODMACommand_Segment64 *)segments)[index] = seg;
	return true;
}

/* ---- genIOVMSegmentsWithFunction with the built-in functions ---- */

IOMEM_TEST(dmacmd_more, with_function_builtin_outputs_match_host64)
{
	mbuf b;
	mbuf_pages(&b, IOMEM_POSIX_LAYOUT_SCATTERED, 8, 5);
	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fNumAddressBits = 32;
	IODMACommand *c = cmd_on(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped, NULL, b.md);
	IODMACommand_Segment64 ref[MAXSEG];
	UInt32 nref = gen_ref(c, ref);
	cr_assert_eq(nref, 8, "scattered: one segment a page");
	for (int f = 0; f < 6; f++) {
		unsigned char out[16 * 16], want[16];
		size_t rec = f < 3 ? 8 : 16;
		UInt64 off = 0;
		UInt32 n = 16;
		memset(out, 0xEE, sizeof out);
		cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(c, builtin_fns[f], &off, out, &n), kIOReturnSuccess,
		             "function %d", f);
		cr_assert_eq(n, nref);
		cr_expect_eq(off, 8 * PG);
		for (UInt32 i = 0; i < n; i++) {
			builtin_fns[f](NULL, ref[i], want, 0);
			cr_expect_eq(memcmp(out + i * rec, want, rec), 0, "function %d segment %u", f, i);
		}
		cr_expect(iomem_test_all_bytes(out + n * rec, sizeof out - n * rec, 0xEE), "written past the segments");
		/* resumed in the middle, two at a time */
		off = 3 * PG;
		n = 2;
		cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(c, builtin_fns[f], &off, out, &n), kIOReturnSuccess);
		cr_expect_eq(n, 2);
		cr_expect_eq(off, 5 * PG);
		builtin_fns[f](NULL, ref[4], want, 0);
		cr_expect_eq(memcmp(out + rec, want, rec), 0, "function %d resumed", f);
		/* at the end: the normal end */
		n = 4;
		cr_expect_eq(IODMACommand_genIOVMSegmentsWithFunction(c, builtin_fns[f], &off, out, &n), kIOReturnSuccess);
		cr_expect_eq(n, 3);
		cr_expect_eq(off, 8 * PG);
		n = 2;
		cr_expect_eq(IODMACommand_genIOVMSegmentsWithFunction(c, builtin_fns[f], &off, out, &n), kIOReturnOverrun);
	}
	UInt64 off = 0;
	UInt32 n = 4;
	cr_expect_eq(IODMACommand_genIOVMSegmentsWithFunction(c, NULL, &off, ref, &n), kIOReturnBadArgument);
	IODMACommand_release(c);
	mbuf_free(&b);
}

/* ---- a command whose output function is the caller's ---- */

IOMEM_TEST(dmacmd_more, user_output_command_through_gen_iovm_segments)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_RUNS, 2, 8);
	mbuf b;
	mbuf_make(&b, 12, 100, 11 * PG, 6);
	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fMaxSegmentSize = 3000;
	IODMACommand *h = cmd_on(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped, NULL, b.md);
	IODMACommand *u = cmd_on(copy_out, &o, IODMACommand_kUnmapped, NULL, b.md);
	IODMACommand_Segment64 ref[MAXSEG], got[MAXSEG];
	UInt32 nref = gen_ref(h, ref);
	cr_assert_gt(nref, 4);
	UInt64 off = 0;
	UInt32 total = 0;
	for (;;) {                       /* three at a time, the command's own function */
		UInt32 n = 3;
		IOReturn r = IODMACommand_genIOVMSegments(u, &off, got + total, &n);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess, "%s", IOReturnString(r));
		total += n;
		cr_assert_leq(total, nref);
	}
	cr_assert_eq(total, nref);
	cr_expect_eq(off, 11 * PG);
	cr_expect_eq(memcmp(got, ref, nref * sizeof *got), 0);
	IODMACommand_release(u);
	IODMACommand_release(h);

	/* no specification yet: no output function, nothing generated */
	IODMACommand *r = IODMACommand_withRefCon(NULL);
	cr_assert_not_null(r);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(r, b.md, false), kIOReturnSuccess);
	off = 0;
	UInt32 n = 4;
	cr_expect_eq(IODMACommand_genIOVMSegments(r, &off, got, &n), kIOReturnNotReady);
	cr_expect_eq(off, 0);
	cr_expect_eq(n, 4);
	IODMACommand_release(r);
	mbuf_free(&b);
}

/* ---- an output function that refuses, on every engine path ---- */

typedef struct refuse_case {
	const char *name;
	iomem_posix_layout layout;
	size_t lead, len;
	uint64_t max_seg, align_len, align_int;
	bool mapped, sub;
} refuse_case;

/* @n segments equal @ref but for an address bias (two commands that map
 * the same descriptor get different IOVA runs of the same shape) */
static bool same_segs(const IODMACommand_Segment64 *got, const IODMACommand_Segment64 *ref, UInt32 n, uint64_t bias)
{
	for (UInt32 i = 0; i < n; i++)
		if (got[i].fLength != ref[i].fLength || got[i].fIOVMAddr - bias != ref[i].fIOVMAddr)
			return false;
	return true;
}

/* With refuse_at = k < segments in the call: kIOReturnMessageTooLarge,
 * *offset and *numSegments unchanged, and the k segments stored before the
 * refusal are the right ones. */
static void refuse_everywhere(const refuse_case *t)
{
	desc_set_layout(t->layout, 3, 21);
	mbuf b;
	mbuf_make(&b, 16, t->lead, t->len, 9);
	IOMemoryDescriptor *md = b.md, *sub = NULL;
	if (t->sub) {
		sub = IOSubMemoryDescriptor_withSubRange(b.md, 10, t->len - 20, kIODirectionOut);
		cr_assert_not_null(sub);
		md = sub;
	}
	IOMapper *m = t->mapped ? iomem_swiommu_create(NULL) : NULL;
	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fMaxSegmentSize = t->max_seg;
	o.fAlignmentLength = t->align_len;
	o.fAlignmentInternalSegments = t->align_int;
	uint32_t mapping = t->mapped ? IODMACommand_kMapped : IODMACommand_kUnmapped;
	IODMACommand *h = cmd_on(kIODMACommandOutputHost64, &o, mapping, m, md);
	IODMACommand_Segment64 ref[MAXSEG];
	UInt32 nref = gen_ref(h, ref);
	cr_assert_gt(nref, 0, "%s", t->name);
	IODMACommand *u = cmd_on(refuse_out, &o, mapping, m, md);
	/* ... and the same segments when nothing is refused (the user engine) */
	IODMACommand_Segment64 got[MAXSEG];
	refuse_at = MAXSEG;
	UInt64 off = 0;
	UInt32 n = MAXSEG;
	cr_assert_eq(IODMACommand_genIOVMSegments(u, &off, got, &n), kIOReturnSuccess, "%s", t->name);
	cr_assert_eq(n, nref, "%s: %u segments, want %u", t->name, n, nref);
	uint64_t bias = got[0].fIOVMAddr - ref[0].fIOVMAddr;
	cr_expect(t->mapped || bias == 0, "%s: unmapped, yet other addresses", t->name);
	cr_expect(same_segs(got, ref, n, bias), "%s", t->name);
	for (UInt32 k = 0; k < nref; k++) {
		refuse_at = k;
		memset(got, 0, sizeof got);
		off = 0;
		n = MAXSEG;
		cr_assert_eq(IODMACommand_genIOVMSegments(u, &off, got, &n), kIOReturnMessageTooLarge,
		             "%s: refused at %u", t->name, k);
		cr_expect_eq(off, 0, "%s: offset moved", t->name);
		cr_expect_eq(n, MAXSEG, "%s: count changed", t->name);
		cr_expect(same_segs(got, ref, k, bias), "%s: stored before %u", t->name, k);
		/* from the middle: the first segment of the call is index 0 */
		if (k > 0) {
			UInt64 mid = 0;
			for (UInt32 i = 0; i < k; i++)
				mid += ref[i].fLength;
			refuse_at = 0;
			off = mid;
			n = MAXSEG;
			cr_expect_eq(IODMACommand_genIOVMSegments(u, &off, got, &n), kIOReturnMessageTooLarge,
			             "%s: refused at once from %llu", t->name, (unsigned long long)mid);
			cr_expect_eq(off, mid);
		}
	}
	IODMACommand_release(u);
	IODMACommand_release(h);
	if (sub != NULL)
		IOMemoryDescriptor_release(sub);
	mbuf_free(&b);
	if (m != NULL)
		IOMapper_release(m);
}

IOMEM_TEST(dmacmd_more, refusing_output_function_on_every_path)
{
	const refuse_case cases[] = {      /* PG: the page size, known at run time */
		{ "whole extents", IOMEM_POSIX_LAYOUT_SCATTERED, 0, 9 * PG, 0, 0, 0, false, false },
		{ "runs, partial ends", IOMEM_POSIX_LAYOUT_RUNS, 300, 12 * PG, 0, 0, 0, false, false },
		{ "split, power of two", IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 10 * PG, 1024, 0, 0, false, false },
		{ "split runs, power of two", IOMEM_POSIX_LAYOUT_RUNS, 64, 12 * PG, 2048, 0, 0, false, false },
		{ "split, not a power of two", IOMEM_POSIX_LAYOUT_RUNS, 0, 12 * PG, 3000, 0, 0, false, false },
		{ "rule walk", IOMEM_POSIX_LAYOUT_SCATTERED, 0, 8 * PG, 1536, 512, 1024, false, false },
		{ "one IOVA run", IOMEM_POSIX_LAYOUT_SCATTERED, 128, 8 * PG, 0, 0, 0, true, false },
		{ "IOVA run split", IOMEM_POSIX_LAYOUT_SCATTERED, 0, 8 * PG, 4096, 0, 0, true, false },
		{ "sub-descriptor", IOMEM_POSIX_LAYOUT_SCATTERED, 0, 8 * PG, 0, 0, 0, false, true },
		{ "sub-descriptor split", IOMEM_POSIX_LAYOUT_RUNS, 0, 10 * PG, 1000, 0, 0, false, true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		refuse_everywhere(&cases[i]);
}

/* ---- the iomem_walk API (maximal physical runs) ---- */

/* Walks @md over [off, end) and checks the runs against the descriptor's
 * own segments: contiguous, maximal, covering exactly [off, min(end, len)). */
static unsigned walk_check(IOMemoryDescriptor *md, IOByteCount off, IOByteCount end)
{
	IOByteCount len = IOMemoryDescriptor_getLength(md), stop = end < len ? end : len, at = off;
	iomem_walk w;
	addr64_t pa, prev_end = 0;
	IOByteCount l;
	unsigned runs = 0;
	cr_assert(iomem_walk_init(&w, md, off, end));
	cr_expect_eq(iomem_walk_offset(&w), off);
	while ((l = iomem_walk_next(&w, &pa)) != 0) {
		IOByteCount seg;
		cr_expect_eq(pa, IOMemoryDescriptor_getPhysicalSegment(md, at, &seg, kIOMemoryMapperNone),
		             "run at %llu", (unsigned long long)at);
		cr_expect(runs == 0 || pa != prev_end, "run at %llu continues the last: not maximal",
		          (unsigned long long)at);
		at += l;
		cr_expect_eq(iomem_walk_offset(&w), at);
		prev_end = pa + l;
		runs++;
	}
	cr_expect(!w.error);
	cr_expect_eq(at, stop);
	return runs;
}

IOMEM_TEST(dmacmd_more, walk_runs_extents_and_pieces)
{
	mbuf b;
	mbuf_pages(&b, IOMEM_POSIX_LAYOUT_SCATTERED, 8, 1);
	/* extents (a prepared virtual descriptor), end clipped at the length */
	cr_expect_eq(walk_check(b.md, 0, 100 * PG), 8);
	cr_expect_eq(walk_check(b.md, PG / 2, 3 * PG), 3);
	/* pieces (a sub-descriptor: getPhysicalSegment), merged runs */
	IOMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(b.md, 100, 6 * PG, kIODirectionOut);
	cr_assert_not_null(sub);
	cr_expect_eq(walk_check(sub, 0, ~(IOByteCount)0), 7);
	cr_expect_eq(walk_check(sub, 2 * PG, 3 * PG + 7), 2);
	/* empty walks: offset at or past the end */
	iomem_walk w;
	addr64_t pa;
	cr_expect(!iomem_walk_init(&w, sub, 6 * PG, ~(IOByteCount)0));
	cr_expect_eq(iomem_walk_next(&w, &pa), 0);
	cr_expect(!iomem_walk_init(&w, b.md, 3 * PG, 2 * PG));
	cr_expect_eq(iomem_walk_next(&w, &pa), 0);
	cr_expect(!w.error);
	IOMemoryDescriptor_release(sub);
	mbuf_free(&b);

	/* contiguous memory: one run however it is cut */
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
	mbuf_make(&b, 4, 0, 4 * PG, 2);
	sub = IOSubMemoryDescriptor_withSubRange(b.md, 1, 4 * PG - 2, kIODirectionOut);
	cr_assert_not_null(sub);
	cr_expect_eq(walk_check(sub, 0, 4 * PG), 1);
	IOMemoryDescriptor_release(sub);
	mbuf_free(&b);
}

IOMEM_TEST(dmacmd_more, walk_of_an_unprepared_descriptor_reports_the_error)
{
	unsigned char *p = IOMallocAligned(2 * PG, PG);
	cr_assert_not_null(p);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((mach_vm_address_t)(uintptr_t)p, 2 * PG,
	                                                            kIODirectionOut, kernel_task);
	cr_assert_not_null(md);
	IOMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(md, 0, PG, kIODirectionOut);
	cr_assert_not_null(sub);
	iomem_walk w;
	addr64_t pa;
	cr_assert(iomem_walk_init(&w, sub, 0, PG), "a non-extent walk starts; the error comes with the first run");
	cr_expect_eq(iomem_walk_next(&w, &pa), 0);
	cr_expect(w.error, "no physical address: the walk's error flag");
	cr_expect_eq(iomem_walk_next(&w, &pa), 0, "stays at the end");
	IOMemoryDescriptor_release(sub);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(p, 2 * PG);
}

/* ---- an extents mapper that fails or breaks its contract ---- */

typedef struct badx {
	int mode;                 /* 0: fails, 1: no extents, 2: extents short of the length */
	unsigned maps, unmaps;
	iomem_md_extent ext[1];
} badx;

static uint64_t bx_page(IOMapper *m) { (void)m; return 4096; }
static IOReturn bx_nomap(IOMapper *m, IOMemoryDescriptor *md, uint64_t off, uint64_t len, uint32_t opts,
                         const IODMAMapSpecification *spec, IODMACommand *cmd, const void *pl, uint64_t *a, uint64_t *l)
{
	(void)m; (void)md; (void)off; (void)len; (void)opts; (void)spec; (void)cmd; (void)pl; (void)a; (void)l;
	cr_assert_fail("iovmMapMemory called although iovmMapExtents exists");
	return kIOReturnError;
}
static IOReturn bx_nounmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *cmd, uint64_t a, uint64_t l)
{
	(void)m; (void)md; (void)cmd; (void)a; (void)l;
	return kIOReturnError;
}
static uint64_t bx_phys(IOMapper *m, uint64_t a) { (void)m; (void)a; return 0; }
static IOReturn bx_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t off, uint64_t len, uint32_t opts,
                       const IODMAMapSpecification *spec, IODMACommand *cmd, const iomem_md_extent **ext,
                       uint32_t *count, void **handle)
{
	badx *x = iomem_mapper_getContext(m);
	(void)md; (void)off; (void)opts; (void)spec; (void)cmd;
	x->maps++;
	if (x->mode == 0)
		return kIOReturnNoResources;
	x->ext[0].phys = 0x10000;
	x->ext[0].end = len - 1;
	*ext = x->ext;
	*count = x->mode == 1 ? 0 : 1;
	*handle = x;
	return kIOReturnSuccess;
}
static void bx_unmap(IOMapper *m, IODMACommand *cmd, void *h)
{
	badx *x = iomem_mapper_getContext(m);
	(void)cmd;
	cr_assert_eq(h, x);
	x->unmaps++;
}
static const iomem_mapper_ops bx_ops = { "bad-extents", bx_page, bx_nomap, bx_nounmap, NULL, bx_phys, NULL, NULL,
                                         NULL, bx_map, bx_unmap, NULL };

IOMEM_TEST(dmacmd_more, extents_mapper_failures_leave_the_command_unprepared)
{
	static const IOReturn want[3] = { kIOReturnNoResources, kIOReturnInternalError, kIOReturnInternalError };
	mbuf b;
	mbuf_pages(&b, IOMEM_POSIX_LAYOUT_CONTIGUOUS, 4, 3);
	for (int mode = 0; mode < 3; mode++) {
		badx x;
		memset(&x, 0, sizeof x);
		x.mode = mode;
		IOMapper *m = iomem_mapper_withOps(&bx_ops, &x);
		cr_assert_not_null(m);
		IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 48, 0, IODMACommand_kMapped, 0, 1,
		                                                 m, NULL);
		cr_assert_not_null(c);
		cr_assert_eq(IODMACommand_setMemoryDescriptor(c, b.md, false), kIOReturnSuccess);
		cr_expect_eq(IODMACommand_prepare(c, 0, 2 * PG, true, true), want[mode], "mode %d", mode);
		cr_expect_eq(x.maps, 1);
		cr_expect_eq(x.unmaps, mode == 0 ? 0u : 1u, "mode %d: a mapping that broke the contract is unmapped", mode);
		cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady, "mode %d: left prepared", mode);
		UInt64 off = 0;
		UInt32 n = 4;
		IODMACommand_Segment64 s[4];
		cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnNotReady);
		IODMACommand_release(c);
		IOMapper_release(m);
		cr_expect_eq(x.unmaps, mode == 0 ? 0u : 1u, "mode %d: unmapped twice", mode);
	}
	mbuf_free(&b);
}

/* ---- small rules ---- */

IOMEM_TEST(dmacmd_more, clone_of_a_command_without_specification)
{
	IODMACommand *r = IODMACommand_withRefCon((void *)1);
	cr_assert_not_null(r);
	IODMACommand *k = IODMACommand_cloneCommand(r, (void *)2);
	cr_assert_not_null(k);
	cr_expect_neq(k, r);
	cr_expect_eq(k->fRefCon, (void *)2);
	/* no specification either: prepare says so until one is given */
	mbuf b;
	mbuf_make(&b, 1, 0, PG, 4);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(k, b.md, false), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_prepare(k, 0, 0, true, true), kIOReturnNotReady);
	IODMACommand_release(k);
	IODMACommand_release(r);
	mbuf_free(&b);
}

IOMEM_TEST(dmacmd_more, force_double_buffer_on_a_nested_preparation_is_busy)
{
	mbuf b;
	mbuf_pages(&b, IOMEM_POSIX_LAYOUT_SCATTERED, 4, 8);
	IODMACommand *c = host64_attached(0, b.md);
	cr_assert_eq(IODMACommand_prepare(c, 0, 4 * PG, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 4 * PG, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnBusy);
	/* still prepared twice, in place (four scattered pages: four segments) */
	IODMACommand_Segment64 s[8];
	UInt64 off = 0;
	UInt32 n = 8;
	cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(n, 4);
	cr_expect_eq(s[0].fIOVMAddr, iomem_posix_virt_to_phys(b.base));
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	/* once only: now it double-buffers (one segment) */
	cr_expect_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnSuccess);
	off = 0;
	n = 8;
	cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(n, 1);
	cr_expect_neq(s[0].fIOVMAddr, iomem_posix_virt_to_phys(b.base));
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	IODMACommand_release(c);
	mbuf_free(&b);
}

/* ---- fAlignment through a mapper: only the first byte can misfit ---- */

IOMEM_TEST(dmacmd_more, mapped_alignment_bounces_a_misaligned_start)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	static const size_t lead[2] = { 0, 100 };
	for (int i = 0; i < 2; i++) {
		mbuf b;
		mbuf_make(&b, 3, lead[i], 2 * PG, 12u + (unsigned)i);
		IODMACommand_SegmentOptions o;
		memset(&o, 0, sizeof o);
		o.fAlignment = 512;
		IODMACommand *c = cmd_on(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, m, b.md);
		IODMACommand_Segment64 s[4];
		UInt64 off = 0;
		UInt32 n = 4;
		cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
		cr_expect_eq(n, 1, "one IOVA run");
		cr_expect_eq(s[0].fLength, 2 * PG);
		cr_expect_eq(s[0].fIOVMAddr % 512, 0, "lead %zu: IOVA %llx not 512-aligned", lead[i],
		             (unsigned long long)s[0].fIOVMAddr);
		uint64_t pa = IOMapper_mapToPhysicalAddress(m, s[0].fIOVMAddr);
		cr_assert_neq(pa, 0);
		if (lead[i] == 0)
			cr_expect_eq(pa, iomem_posix_virt_to_phys(b.base), "aligned: the memory itself");
		else
			cr_expect_neq(pa, iomem_posix_virt_to_phys(b.base + lead[i]), "misaligned: a bounce copy");
		/* the device sees the data either way (Out: copied at prepare) */
		for (UInt64 k = 0; k < 2 * PG; k += PG / 2) {
			const unsigned char *cpu = iomem_posix_phys_to_virt(IOMapper_mapToPhysicalAddress(m, s[0].fIOVMAddr + k));
			cr_assert_not_null(cpu);
			cr_expect_eq(*cpu, b.base[lead[i] + k], "lead %zu byte %llu", lead[i], (unsigned long long)k);
		}
		IODMACommand_release(c);
		mbuf_free(&b);
	}
	iomem_swiommu_flush_cache(m);
	IOMapper_release(m);
}

/* ---- a descriptor with no physical address behind it ---- */

static addr64_t nowhere_seg(IOMemoryDescriptor *md, IOByteCount off, IOByteCount *len, IOOptionBits o)
{
	(void)md; (void)off; (void)o;
	if (len)
		*len = 0;
	return 0;
}
static const iomem_md_ops nowhere_ops = { "nowhere", nowhere_seg, NULL, NULL, NULL, NULL, NULL, NULL };

IOMEM_TEST(dmacmd_more, no_physical_address_is_not_ready)
{
	IOMemoryDescriptor *md = iomem_md_withOps(&nowhere_ops, NULL, 2 * PG, kIODirectionOut);
	cr_assert_not_null(md);
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	IODMACommand_SegmentOptions o;
	IODMACommand_Segment64 s[4];
	UInt64 off;
	UInt32 n;
	/* no rule to check: prepare has nothing to look at; generating finds nothing */
	memset(&o, 0, sizeof o);
	IODMACommand *c = cmd_on(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped, NULL, md);
	off = 0;
	n = 4;
	cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnNotReady);
	cr_expect_eq(off, 0);
	off = 0;
	n = 4;
	cr_expect_eq(IODMACommand_genIOVMSegmentsWithFunction(c, copy_out, &off, s, &n), kIOReturnNotReady);
	IODMACommand_release(c);
	/* an address limit or an alignment rule: the preflight finds nothing */
	o.fNumAddressBits = 32;
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnNotReady);
	cr_expect_null(IODMACommand_getMemoryDescriptor(c), "a failed autoPrepare clears");
	IODMACommand_release(c);
	/* through a mapper with an alignment rule: the first byte has no page */
	memset(&o, 0, sizeof o);
	o.fAlignment = 512;
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, m, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnNotReady);
	IODMACommand_release(c);
	IOMapper_release(m);
	IOMemoryDescriptor_release(md);
}

/* ---- sparse bouncing: the bounce-page table grows between preparations ---- */

IOMEM_TEST(dmacmd_more, sparse_bounce_table_grows)
{
	mbuf b;
	mbuf_pages(&b, IOMEM_POSIX_LAYOUT_HIGH, 6, 31);
	IODMACommand *c = host64_attached(32, b.md);
	static const UInt64 pages[3] = { 1, 5, 2 };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(IODMACommand_prepare(c, PG, pages[i] * PG, true, true), kIOReturnSuccess, "%llu pages",
		             (unsigned long long)pages[i]);
		IODMACommand_Segment64 s[16];
		UInt64 off = 0, at = 0;
		UInt32 n = 16;
		cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
		cr_expect_eq(off, pages[i] * PG);
		for (UInt32 k = 0; k < n; k++) {
			cr_expect_leq(s[k].fIOVMAddr + s[k].fLength - 1, 0xFFFFFFFFull, "segment %u below 4 GiB", k);
			for (UInt64 q = 0; q < s[k].fLength;) {        /* page by page: the device's view */
				UInt64 a = s[k].fIOVMAddr + q, chunk = PG - (a & (PG - 1));
				if (chunk > s[k].fLength - q)
					chunk = s[k].fLength - q;
				const unsigned char *dev = iomem_posix_phys_to_virt(a);
				cr_assert_not_null(dev);
				cr_expect_eq(memcmp(dev, b.base + PG + at + q, (size_t)chunk), 0, "%llu pages: segment %u",
				             (unsigned long long)pages[i], k);
				q += chunk;
			}
			at += s[k].fLength;
		}
		cr_expect_eq(at, pages[i] * PG);
		cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	}
	IODMACommand_release(c);
	mbuf_free(&b);
}
