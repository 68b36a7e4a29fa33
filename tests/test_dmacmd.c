/* SPDX-License-Identifier: MIT */
/* tests/test_dmacmd.c - IODMACommand (reference §2.1, §6): the specification
 * rules, the six output functions byte by byte, the state machine,
 * generation on the software machine's layouts, resuming, bouncing, a
 * mapper, the DriverKit calls and bad inputs. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "test_desc_util.h"

/* the bounce pool caches an empty chunk (hysteresis): give it back before
 * the machine's "nothing wired" check */
static void dmacmd_fini(void)
{
	iomem_bounce_pool_trim();
	desc_fini();
}

TestSuite(dmacmd, .fini = dmacmd_fini);

#define PG DESC_PAGE

/* ---- helpers --------------------------------------------------------------- */

typedef struct tbuf {
	unsigned char *base;       /* IOMallocAligned */
	size_t npages;
	IOMemoryDescriptor *md;    /* withAddress(base + lead, len) */
	size_t lead, len;
} tbuf;

static void tbuf_make(tbuf *t, size_t npages, size_t lead, size_t len, IODirection dir, uint32_t seed)
{
	t->npages = npages;
	t->base = IOMallocAligned(npages * PG, PG);
	cr_assert_not_null(t->base);
	desc_fill(t->base, npages * PG, seed);
	t->lead = lead;
	t->len = len;
	t->md = IOMemoryDescriptor_withAddress(t->base + lead, len, dir);
	cr_assert_not_null(t->md);
}

static void tbuf_free(tbuf *t)
{
	IOMemoryDescriptor_release(t->md);
	IOFreeAligned(t->base, t->npages * PG);
}

/* @npages whole pages of @layout frames, all described */
static void tbuf_pages(tbuf *t, iomem_posix_layout layout, size_t npages, IODirection dir, uint32_t seed)
{
	desc_set_layout(layout, 0, 0);
	tbuf_make(t, npages, 0, npages * PG, dir, seed);
}

/* the end of most tests: the command, then its buffer */
static void cmd_done(IODMACommand *c, tbuf *t)
{
	IODMACommand_release(c);
	tbuf_free(t);
}

/* @c (just created: must not be NULL) with @md set; returns @c. */
static IODMACommand *with_md(IODMACommand *c, IOMemoryDescriptor *md, bool autoPrepare)
{
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, autoPrepare), kIOReturnSuccess);
	return c;
}

/* the common command: Host64 output, no transfer limit, alignment 1, the
 * default mapper, on @md */
static IODMACommand *host64_on(UInt8 bits, UInt64 maxSeg, uint32_t mapping, IOMemoryDescriptor *md, bool autoPrepare)
{
	return with_md(IODMACommand_withSpecification(kIODMACommandOutputHost64, bits, maxSeg, mapping, 0, 1, NULL, NULL),
	               md, autoPrepare);
}

/* Checks @n 64-bit segments starting at relative offset @off against the
 * bytes the CPU sees at base + lead + prep_off + off (through the machine's
 * reverse map). Returns the bytes covered. */
static uint64_t check_segs64(const tbuf *t, UInt64 prep_off, UInt64 off, const IODMACommand_Segment64 *s, UInt32 n,
                             uint64_t iova_bias)
{
	uint64_t covered = 0;
	for (UInt32 i = 0; i < n; i++) {
		cr_assert_gt(s[i].fLength, 0, "segment %u empty", i);
		for (uint64_t k = 0; k < s[i].fLength; k++) {
			const unsigned char *cpu = iomem_posix_phys_to_virt(s[i].fIOVMAddr - iova_bias + k);
			cr_assert_not_null(cpu, "segment %u byte %llu: no RAM at %llx", i, (unsigned long long)k,
			                   (unsigned long long)(s[i].fIOVMAddr + k));
			cr_assert_eq(*cpu, t->base[t->lead + prep_off + off + covered + k],
			             "segment %u byte %llu differs", i, (unsigned long long)k);
		}
		covered += s[i].fLength;
	}
	return covered;
}

/* memcmp of physical memory (through the machine, page by page) */
static int phys_cmp(uint64_t pa, const void *want, size_t len)
{
	unsigned char *tmp = malloc(len ? len : 1);
	cr_assert_not_null(tmp);
	cr_assert(iomem__platform_phys_copy(pa, tmp, len, false), "no RAM at %llx", (unsigned long long)pa);
	int r = memcmp(tmp, want, len);
	free(tmp);
	return r;
}

/* Generates everything from 0 in chunks of @chunk; checks contents. */
static uint32_t gen_all(IODMACommand *cmd, const tbuf *t, UInt64 prep_off, UInt64 prep_len, UInt32 chunk,
                        uint64_t iova_bias)
{
	IODMACommand_Segment64 segs[64];
	UInt64 off = 0;
	uint32_t total = 0;
	cr_assert(chunk <= 64);
	for (;;) {
		UInt32 n = chunk;
		UInt64 before = off;
		IOReturn r = IODMACommand_gen64IOVMSegments(cmd, &off, segs, &n);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess, "gen at %llu: %s", (unsigned long long)before, IOReturnString(r));
		cr_assert(n >= 1 && n <= chunk);
		cr_assert_eq(check_segs64(t, prep_off, before, segs, n, iova_bias), off - before);
		total += n;
	}
	cr_assert_eq(off, prep_len);
	return total;
}

static bool user_out(IODMACommand *target, IODMACommand_Segment64 seg, void *segments, UInt32 index)
{
	(void)target;
	((IODMACommand_Segment64 *)segments)[index] = seg;
	return true;
}

static int refuse_after;
static bool refusing_out(IODMACommand *target, IODMACommand_Segment64 seg, void *segments, UInt32 index)
{
	(void)target;
	if ((int)index >= refuse_after)
		return false;
	((IODMACommand_Segment64 *)segments)[index] = seg;
	return true;
}

/* ---- creation and specification ------------------------------------------ */

IOMEM_TEST(dmacmd, spec_rules)
{
	IODMACommand_SegmentOptions o;
	IODMACommand *c;
	memset(&o, 0, sizeof o);
	o.fStructSize = sizeof o;

	/* NULL function / options */
	cr_expect_null(IODMACommand_withSpecificationOptions(NULL, &o, IODMACommand_kMapped, NULL, NULL));
	cr_expect_null(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, NULL, IODMACommand_kMapped, NULL, NULL));
	/* 32-bit outputs: 0 -> 32, > 32 refused */
	c = IODMACommand_withSpecification(kIODMACommandOutputBig32, 0, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_getNumAddressBits(c), 32);
	IODMACommand_release(c);
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost32, 33, 0, IODMACommand_kMapped, 0, 1, NULL, NULL));
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputLittle32, 40, 0, IODMACommand_kMapped, 0, 1, NULL, NULL));
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 40, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_getNumAddressBits(c), 40);
	cr_expect_eq(IODMACommand_getNumAddressBits(c), 40);
	IODMACommand_release(c);
	/* below the page shift */
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 11, 0, IODMACommand_kMapped, 0, 1, NULL, NULL));
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_getNumAddressBits(c), 0);
	IODMACommand_release(c);
	/* alignments: powers of two only; 0 -> 1 */
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 3, NULL, NULL));
	o.fAlignmentLength = 6;
	cr_expect_null(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL));
	o.fAlignmentLength = 0;
	o.fAlignmentInternalSegments = 12;
	cr_expect_null(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL));
	o.fAlignmentInternalSegments = 0;
	o.fAlignment = 16;
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_getAlignment(c), 16);
	cr_expect_eq(IODMACommand_getAlignmentLength(c), 1);
	cr_expect_eq(IODMACommand_getAlignmentInternalSegments(c), 16);   /* 0 -> fAlignment */
	IODMACommand_release(c);
	o.fAlignment = 0;
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_getAlignment(c), 1);
	IODMACommand_release(c);
	/* legacy form: length alignment 1, internal = alignment */
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 64, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_getAlignment(c), 64);
	cr_expect_eq(IODMACommand_getAlignmentLength(c), 1);
	cr_expect_eq(IODMACommand_getAlignmentInternalSegments(c), 64);
	IODMACommand_release(c);
	/* mapping types */
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, 4, 0, 1, NULL, NULL));
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, 0xF, 0, 1, NULL, NULL));
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0,
	                                   IODMACommand_kBypassed | IODMACommand_kIterateOnly, 0, 1, NULL, NULL);
	cr_assert_not_null(c, "kBypassed without any mapper is accepted");
	cr_expect_null(iomem_dmacmd_getMapper(c));
	IODMACommand_release(c);
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kNonCoherent, 0, 1, NULL, (void *)0x1234);
	cr_assert_not_null(c);
	cr_expect_eq(c->fRefCon, (void *)0x1234);
	IODMACommand_release(c);
}

IOMEM_TEST(dmacmd, weak_with_refcon_clone)
{
	IODMACommand *c = (IODMACommand *)0x1;
	cr_expect_eq(IODMACommand_weakWithSpecification(NULL, kIODMACommandOutputHost64, 0, 0, 0, 0, 1, NULL, NULL),
	             kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_weakWithSpecification(&c, NULL, 0, 0, 0, 0, 1, NULL, NULL), kIOReturnBadArgument);
	cr_expect_null(c);
	cr_expect_eq(IODMACommand_weakWithSpecification(&c, kIODMACommandOutputHost32, 48, 0, 0, 0, 1, NULL, NULL),
	             kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_weakWithSpecification(&c, kIODMACommandOutputLittle64, 36, 8192, 0, 1 << 20, 8,
	                                                NULL, (void *)7), kIOReturnSuccess);
	cr_assert_not_null(c);
	cr_expect_eq(c->fRefCon, (void *)7);

	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fNumAddressBits = 36;
	o.fAlignment = 8;
	o.fAlignmentLength = 4;
	o.fAlignmentInternalSegments = 32;
	IODMACommand *s = IODMACommand_withSpecificationOptions(kIODMACommandOutputLittle64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(s);
	IODMACommand *k = IODMACommand_cloneCommand(s, (void *)9);
	cr_assert_not_null(k);
	cr_expect_eq(k->fRefCon, (void *)9);
	cr_expect_eq(IODMACommand_getNumAddressBits(k), 36);
	cr_expect_eq(IODMACommand_getAlignment(k), 8);
	cr_expect_eq(IODMACommand_getAlignmentLength(k), 4);            /* not swapped (IOKit: swapped) */
	cr_expect_eq(IODMACommand_getAlignmentInternalSegments(k), 32);
	cr_expect_null(IODMACommand_cloneCommand(NULL, NULL));
	IODMACommand_retain(k);
	IODMACommand_release(k);
	IODMACommand_release(k);
	IODMACommand_release(s);
	IODMACommand_release(c);
	IODMACommand_release(NULL);
	IODMACommand_retain(NULL);

	/* withRefCon: no specification until prepareWithSpecification */
	tbuf t;
	tbuf_make(&t, 2, 0, 2 * PG, kIODirectionOut, 3);
	IODMACommand *r = IODMACommand_withRefCon((void *)5);
	cr_assert_not_null(r);
	cr_expect_eq(r->fRefCon, (void *)5);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(r, t.md, false), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_prepare(r, 0, 0, true, true), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_prepareWithSpecification(r, kIODMACommandOutputHost64, NULL, 0, NULL, 0, 0, true, true),
	             kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_prepareWithSpecification(r, kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL,
	                                                   0, 0, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_getAlignmentInternalSegments(r), 32);
	cr_expect_eq(IODMACommand_prepareWithSpecification(r, kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL,
	                                                   0, 0, true, true), kIOReturnNotPermitted);
	IODMACommand_release(r);              /* completes and releases the descriptor */
	tbuf_free(&t);
}

/* ---- output functions ------------------------------------------------------- */

IOMEM_TEST(dmacmd, output_functions_bytes)
{
	IODMACommand_Segment64 seg = { 0x1122334455667788ull, 0x99aabbccddeeff01ull };
	static const unsigned char be64[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
	                                        0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };
	static const unsigned char be32[8] = { 0x55, 0x66, 0x77, 0x88, 0xdd, 0xee, 0xff, 0x01 };
	const uint64_t n64[2] = { seg.fIOVMAddr, seg.fLength };
	const uint32_t n32[2] = { 0x55667788u, 0xddeeff01u };     /* the low halves */
	unsigned char le64[16], le32[8], h64[16], h32[8];
	for (int i = 0; i < 16; i++)
		le64[i] = be64[i < 8 ? 7 - i : 23 - i];
	for (int i = 0; i < 8; i++)
		le32[i] = be32[i < 4 ? 3 - i : 11 - i];
	memcpy(h64, n64, sizeof h64);
	memcpy(h32, n32, sizeof h32);
	/* each function writes exactly its record at @index, nothing around it */
	const struct { IODMACommand_SegmentFunction fn; UInt32 index; size_t rec; const unsigned char *want; } out[6] = {
		{ IODMACommand_OutputBig64, 1, 16, be64 }, { IODMACommand_OutputLittle64, 2, 16, le64 },
		{ IODMACommand_OutputBig32, 1, 8, be32 },  { IODMACommand_OutputLittle32, 3, 8, le32 },
		{ IODMACommand_OutputHost64, 1, 16, h64 }, { IODMACommand_OutputHost32, 2, 8, h32 },
	};
	for (int i = 0; i < 6; i++) {
		unsigned char b[48];
		size_t at = out[i].index * out[i].rec;
		memset(b, 0xEE, sizeof b);
		cr_expect(out[i].fn(NULL, seg, b, out[i].index), "output %d", i);
		cr_expect(iomem_test_all_bytes(b, at, 0xEE), "output %d: written before its record", i);
		cr_expect_eq(memcmp(b + at, out[i].want, out[i].rec), 0, "output %d: the record's bytes", i);
		cr_expect(iomem_test_all_bytes(b + at + out[i].rec, sizeof b - at - out[i].rec, 0xEE),
		          "output %d: written past its record", i);
	}
}

/* Every format through genIOVMSegments gives the same segments as Host64. */
IOMEM_TEST(dmacmd, generation_every_format)
{
	static IODMACommand_SegmentFunction fns[6] = {
		IODMACommand_OutputHost32, IODMACommand_OutputBig32, IODMACommand_OutputLittle32,
		IODMACommand_OutputHost64, IODMACommand_OutputBig64, IODMACommand_OutputLittle64 };
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_SCATTERED, 8, kIODirectionOut, 11);
	IODMACommand_Segment64 ref[16];
	IODMACommand *h = host64_on(32, 0, IODMACommand_kUnmapped, t.md, true);
	UInt64 off = 0;
	UInt32 nref = 16;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(h, &off, ref, &nref), kIOReturnSuccess);
	cr_assert_eq(nref, 8);
	for (int f = 0; f < 6; f++) {
		unsigned char out[16 * 16];
		IODMACommand *c = with_md(IODMACommand_withSpecification(fns[f], 32, 0,
		                                                         IODMACommand_kUnmapped, 0, 1, NULL, NULL), t.md, true);
		memset(out, 0xEE, sizeof out);
		UInt64 o = 0;
		UInt32 n = 16;
		cr_assert_eq(IODMACommand_genIOVMSegments(c, &o, out, &n), kIOReturnSuccess);
		cr_assert_eq(n, nref);
		cr_assert_eq(o, 8 * PG);
		size_t rec = f < 3 ? 8 : 16;
		for (UInt32 i = 0; i < n; i++) {
			unsigned char want[16];
			fns[f](NULL, ref[i], want, 0);
			cr_expect_eq(memcmp(out + i * rec, want, rec), 0, "format %d segment %u", f, i);
		}
		cr_expect(iomem_test_all_bytes(out + n * rec, sizeof out - n * rec, 0xEE));
		/* the explicit-function form, with a user function */
		IODMACommand_Segment64 u[16];
		o = 0;
		n = 16;
		cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(c, user_out, &o, u, &n), kIOReturnSuccess);
		cr_assert_eq(n, nref);
		cr_expect_eq(memcmp(u, ref, n * sizeof *u), 0);
		IODMACommand_release(c);
	}
	IODMACommand_release(h);
	tbuf_free(&t);
}

/* ---- the state machine ----------------------------------------------------- */

IOMEM_TEST(dmacmd, state_machine)
{
	tbuf t, u;
	tbuf_make(&t, 4, 0, 4 * PG, kIODirectionInOut, 1);
	tbuf_make(&u, 2, 0, 2 * PG, kIODirectionInOut, 2);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped,
	                                                 3 * PG, 1, NULL, NULL);
	cr_assert_not_null(c);
	UInt64 o, l;
	cr_expect_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNotReady);      /* no descriptor */
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_getPreparedOffsetAndLength(c, &o, &l), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_clearMemoryDescriptor(c, false), kIOReturnSuccess);   /* nothing to clear */
	/* length > maxTransfer -> NoSpace, first (whole 4 pages) */
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, t.md, true), kIOReturnNoSpace);
	cr_expect_null(IODMACommand_getMemoryDescriptor(c), "a failed autoPrepare clears");
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, t.md, false), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_getMemoryDescriptor(c), t.md);
	cr_expect_eq(IODMACommand_getIOMemoryDescriptor(c), t.md);
	cr_expect_eq(iomem_md_getRetainCount(t.md), 2);
	cr_expect_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNoSpace);
	cr_expect_eq(IODMACommand_prepare(c, 2 * PG, 3 * PG, true, true), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_prepare(c, 5 * PG, 1, true, true), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_prepare(c, PG, 2 * PG, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_getPreparedOffsetAndLength(c, &o, &l), kIOReturnSuccess);
	cr_expect_eq(o, PG);
	cr_expect_eq(l, 2 * PG);
	cr_expect_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnSuccess);
	/* nesting: the same range only; a refused one leaves the count alone */
	cr_expect_eq(IODMACommand_prepare(c, 0, 2 * PG, true, true), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_prepare(c, PG, 2 * PG, true, true), kIOReturnSuccess);
	/* a different descriptor while active -> Busy */
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, u.md, true), kIOReturnBusy);
	cr_expect_eq(IODMACommand_clearMemoryDescriptor(c, false), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_getPreparedOffsetAndLength(c, &o, &l), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);          /* the refused one did not count */
	/* same descriptor again, !autoPrepare: completes until inactive */
	cr_expect_eq(IODMACommand_prepare(c, 0, PG, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_prepare(c, 0, PG, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, t.md, false), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_getPreparedOffsetAndLength(c, &o, &l), kIOReturnNotReady);
	/* switching descriptors when inactive */
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, u.md, true), kIOReturnSuccess);
	cr_expect_eq(iomem_md_getRetainCount(t.md), 1);
	cr_expect_eq(IODMACommand_getMemoryDescriptor(c), u.md);
	cr_expect_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	cr_expect_null(IODMACommand_getMemoryDescriptor(c));
	cr_expect_eq(iomem_md_getRetainCount(u.md), 1);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, NULL, true), kIOReturnSuccess);
	IODMACommand_release(c);
	tbuf_free(&t);
	tbuf_free(&u);
}

IOMEM_TEST(dmacmd, not_aligned_prepare)
{
	tbuf t;
	tbuf_make(&t, 2, 0, 2 * PG, kIODirectionOut, 1);
	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fAlignmentLength = 512;
	IODMACommand *c = with_md(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o,
	                                                                IODMACommand_kUnmapped, NULL, NULL), t.md, false);
	cr_expect_eq(IODMACommand_prepare(c, 0, 100, true, true), kIOReturnNotAligned);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);   /* not left active */
	cr_expect_eq(IODMACommand_prepare(c, 0, 1024, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cmd_done(c, &t);
}

IOMEM_TEST(dmacmd, dma_active_report)
{
	unsigned char *p = IOMallocAligned(2 * PG, PG);
	cr_assert_not_null(p);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((mach_vm_address_t)(uintptr_t)p, 2 * PG,
	                                                            kIODirectionInOut, kernel_task);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	IODMACommand *c = host64_on(0, 0, IODMACommand_kUnmapped, md, true);
	IOMemoryDescriptor_complete(md, kIODirectionNone);     /* final complete while DMA active */
	iomem_test_expect_reports(IOMEM__DEBUG ? 1 : 0);
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("DMA active");
	/* the command's own complete needs no wiring from here on */
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(p, 2 * PG);
}

/* ---- generation ------------------------------------------------------------- */

IOMEM_TEST(dmacmd, generation_on_layouts)
{
	static const iomem_posix_layout lay[] = { IOMEM_POSIX_LAYOUT_IDENTITY, IOMEM_POSIX_LAYOUT_SCATTERED,
	                                          IOMEM_POSIX_LAYOUT_RUNS, IOMEM_POSIX_LAYOUT_HIGH,
	                                          IOMEM_POSIX_LAYOUT_CONTIGUOUS };
	for (size_t l = 0; l < sizeof lay / sizeof lay[0]; l++) {
		desc_set_layout(lay[l], 2, 99);
		tbuf t;
		tbuf_make(&t, 16, 0, 16 * PG - 300, kIODirectionOut, 40u + (unsigned)l);
		/* unconstrained, several chunk sizes */
		IODMACommand *c = host64_on(0, 0, IODMACommand_kUnmapped, t.md, true);
		uint32_t n1 = gen_all(c, &t, 0, t.len, 64, 0);
		uint32_t n2 = gen_all(c, &t, 0, t.len, 1, 0);
		uint32_t n3 = gen_all(c, &t, 0, t.len, 3, 0);
		cr_expect_eq(n1, n2);
		cr_expect_eq(n1, n3);
		if (lay[l] == IOMEM_POSIX_LAYOUT_SCATTERED)
			cr_expect_eq(n1, 16);
		if (lay[l] == IOMEM_POSIX_LAYOUT_HIGH || lay[l] == IOMEM_POSIX_LAYOUT_CONTIGUOUS)
			cr_expect_eq(n1, 1);
		cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
		IODMACommand_release(c);

		/* max segment 1000 bytes, a sub-range of the descriptor */
		c = host64_on(0, 1000, IODMACommand_kUnmapped, t.md, false);
		cr_assert_eq(IODMACommand_prepare(c, 700, 5 * PG + 13, true, true), kIOReturnSuccess);
		IODMACommand_Segment64 s[64];
		UInt64 off = 0;
		UInt32 n = 64;
		cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
		cr_expect_eq(off, 5 * PG + 13);
		for (UInt32 i = 0; i < n; i++)
			cr_expect_leq(s[i].fLength, 1000);
		cr_expect_eq(check_segs64(&t, 700, 0, s, n, 0), 5 * PG + 13);
		n = 64;
		cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnOverrun);
		IODMACommand_release(c);
		tbuf_free(&t);
	}
}

IOMEM_TEST(dmacmd, resume_and_seek)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_RUNS, 2, 5);
	tbuf t;
	tbuf_make(&t, 32, 0, 32 * PG, kIODirectionOut, 77);
	IODMACommand *c = host64_on(0, 3000, IODMACommand_kUnmapped, t.md, true);
	/* arbitrary offsets, in any order */
	static const UInt64 offs[] = { 5, 4096 * 7 + 1, 100, 32 * 4096 - 1, 0, 12345, 12345 };
	for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
		UInt64 o = offs[k] * PG / 4096;
		IODMACommand_Segment64 s[4];
		UInt32 n = 4;
		UInt64 before = o;
		cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &o, s, &n), kIOReturnSuccess);
		cr_expect_eq(check_segs64(&t, 0, before, s, n, 0), o - before);
		cr_expect_leq(s[0].fLength, 3000);
	}
	UInt64 o = 32 * PG;
	IODMACommand_Segment64 s[4];
	UInt32 n = 4;
	cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &o, s, &n), kIOReturnOverrun);
	cr_expect_eq(n, 4);
	/* an output function that refuses: MessageTooLarge, in/out unchanged */
	refuse_after = 2;
	o = 0;
	n = 4;
	cr_expect_eq(IODMACommand_genIOVMSegmentsWithFunction(c, refusing_out, &o, s, &n), kIOReturnMessageTooLarge);
	cr_expect_eq(o, 0);
	cr_expect_eq(n, 4);
	cmd_done(c, &t);
}

IOMEM_TEST(dmacmd, alignment_rules)
{
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_SCATTERED, 8, kIODirectionOut, 9);
	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fMaxSegmentSize = 1536;
	o.fAlignmentLength = 512;
	o.fAlignmentInternalSegments = 1024;
	IODMACommand *c = with_md(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o,
	                                                                IODMACommand_kUnmapped, NULL, NULL), t.md, true);
	IODMACommand_Segment64 s[64];
	UInt64 off = 0;
	UInt32 n = 64;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(off, 8 * PG);
	cr_expect_eq(check_segs64(&t, 0, 0, s, n, 0), 8 * PG);
	for (UInt32 i = 0; i < n; i++) {
		cr_expect_eq(s[i].fLength % 512, 0);
		cr_expect_leq(s[i].fLength, 1536);
		if (i > 0)
			cr_expect_eq(s[i].fIOVMAddr % 1024, 0, "segment %u at %llx", i, (unsigned long long)s[i].fIOVMAddr);
	}
	IODMACommand_release(c);

	/* a cursor (kIterateOnly) cannot fix a misaligned start */
	o.fAlignment = 4096;
	o.fAlignmentLength = 0;
	o.fAlignmentInternalSegments = 0;
	o.fMaxSegmentSize = 0;
	c = with_md(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o,
	                                                  IODMACommand_kUnmapped | IODMACommand_kIterateOnly, NULL, NULL),
	            t.md, false);
	cr_assert_eq(IODMACommand_prepare(c, 100, PG, true, true), kIOReturnSuccess);
	off = 0;
	n = 64;
	cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnNotAligned);
	cr_expect_eq(off, 0);
	cr_expect_eq(n, 64);
	cmd_done(c, &t);
}

/* ---- bouncing ----------------------------------------------------------------- */

/* HIGH layout, 32-bit device: every page is sparse-bounced; every byte
 * both directions. */
IOMEM_TEST(dmacmd, bounce_round_trip_high)
{
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_HIGH, 6, kIODirectionInOut, 21);
	unsigned char *orig = malloc(6 * PG);
	cr_assert_not_null(orig);
	memcpy(orig, t.base, 6 * PG);
	IODMACommand *c = with_md(IODMACommand_withSpecification(kIODMACommandOutputHost32, 32, 0,
	                                                         IODMACommand_kUnmapped, 0, 1, NULL, NULL), t.md, false);
	cr_assert_eq(IODMACommand_prepare(c, 100, 5 * PG, true, true), kIOReturnSuccess);
	IODMACommand_Segment32 s[32];
	UInt64 off = 0;
	UInt32 n = 32;
	cr_assert_eq(IODMACommand_gen32IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_assert_eq(off, 5 * PG);
	uint64_t at = 0;
	for (UInt32 i = 0; i < n; i++) {
		cr_assert_leq((uint64_t)s[i].fIOVMAddr + s[i].fLength - 1, 0xFFFFFFFFull, "segment %u is reachable", i);
		/* the device's view holds the data (copy-in at prepare) */
		for (uint32_t k = 0; k < s[i].fLength; k++) {
			unsigned char *cpu = iomem_posix_phys_to_virt((IOPhysicalAddress)s[i].fIOVMAddr + k);
			cr_assert_not_null(cpu);
			cr_assert_eq(*cpu, orig[100 + at + k]);
			*cpu = (unsigned char)~*cpu;       /* "the device writes" */
		}
		at += s[i].fLength;
	}
	cr_expect_eq(at, 5 * PG);
	/* readBytes sees the bounce copy; the client memory is untouched yet */
	unsigned char b[64];
	cr_expect_eq(IODMACommand_readBytes(c, PG - 10, b, 64), 64);
	for (int k = 0; k < 64; k++)
		cr_expect_eq(b[k], (unsigned char)~orig[100 + PG - 10 + k]);
	cr_expect_eq(t.base[100 + PG], orig[100 + PG]);
	/* a high descriptor is above the limit: never emitted straight */
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	for (size_t k = 0; k < 6 * PG; k++) {
		unsigned char want = (k >= 100 && k < 100 + 5 * PG) ? (unsigned char)~orig[k] : orig[k];
		cr_assert_eq(t.base[k], want, "byte %zu after copy-back", k);
	}
	/* synchronize: In/Out both -> BadArgument; not active -> NotReady */
	cr_expect_eq(IODMACommand_synchronize(c, kIODirectionOut), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_prepare(c, 0, 2 * PG, true, false), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_synchronize(c, kIODirectionInOut), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_synchronize(c, 0), kIOReturnBadArgument);
	/* synchronize=false at prepare: the bounce pages are not the data yet */
	cr_expect_eq(IODMACommand_synchronize(c, kIODirectionOut), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_readBytes(c, 0, b, 64), 64);
	cr_expect_eq(memcmp(b, t.base, 64), 0);
	cr_expect_eq(IODMACommand_writeBytes(c, 0, "hello", 5), 5);
	cr_expect_eq(IODMACommand_synchronize(c, kIODirectionIn), kIOReturnSuccess);
	cr_expect_eq(memcmp(t.base, "hello", 5), 0);
	/* force a double buffer: one contiguous low segment */
	cr_expect_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnSuccess);
	cr_expect_neq(IODMACommand_getIOMemoryDescriptor(c), t.md);
	off = 0;
	n = 32;
	cr_assert_eq(IODMACommand_gen32IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(n, 1);
	cr_expect_eq(s[0].fLength, 2 * PG);
	cr_expect_eq(memcmp(iomem_posix_phys_to_virt(s[0].fIOVMAddr), t.base, 2 * PG), 0);
	cr_expect_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	IODMACommand_release(c);
	free(orig);
	tbuf_free(&t);
}

IOMEM_TEST(dmacmd, no_bounce_for_cursor)
{
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_HIGH, 2, kIODirectionOut, 4);
	IODMACommand *c = host64_on(32, 0, IODMACommand_kUnmapped | IODMACommand_kIterateOnly, t.md, true);
	IODMACommand_Segment64 s[4];
	UInt64 off = 0;
	UInt32 n = 4;
	cr_expect_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnMessageTooLarge);
	cmd_done(c, &t);
}

IOMEM_TEST(dmacmd, misaligned_double_buffer)
{
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_SCATTERED, 4, kIODirectionOut, 8);
	IODMACommand *c = with_md(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kUnmapped,
	                                                         0, 256, NULL, NULL), t.md, false);
	cr_assert_eq(IODMACommand_prepare(c, 10, 3 * PG, true, true), kIOReturnSuccess);   /* start misaligned */
	IODMACommand_Segment64 s[8];
	UInt64 off = 0;
	UInt32 n = 8;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(n, 1);
	cr_expect_eq(s[0].fIOVMAddr % 256, 0);
	cr_expect_eq(memcmp(iomem_posix_phys_to_virt(s[0].fIOVMAddr), t.base + 10, 3 * PG), 0);
	cmd_done(c, &t);
}

/* ---- a mapper ------------------------------------------------------------------ */

#define TM_BASE 0x100000000000ull
typedef struct tmap {
	int maps, unmaps;
	uint32_t last_opts;
	uint8_t last_bits;
	uint64_t last_align;
	IOMemoryDescriptor *md;
	uint64_t off;
} tmap;

static uint64_t tm_page(IOMapper *m) { (void)m; return 4096; }
static IOReturn tm_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t off, uint64_t len, uint32_t opts,
                       const IODMAMapSpecification *spec, IODMACommand *cmd, const void *pl, uint64_t *addr, uint64_t *maplen)
{
	tmap *t = iomem_mapper_getContext(m);
	(void)cmd; (void)pl;
	t->maps++;
	t->last_opts = opts;
	t->last_bits = spec->numAddressBits;
	t->last_align = spec->alignment;
	t->md = md;
	t->off = off;
	*addr = TM_BASE + off;
	*maplen = len;
	return kIOReturnSuccess;
}
static IOReturn tm_unmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *cmd, uint64_t addr, uint64_t len)
{
	tmap *t = iomem_mapper_getContext(m);
	(void)md; (void)cmd; (void)addr; (void)len;
	t->unmaps++;
	return kIOReturnSuccess;
}
static uint64_t tm_phys(IOMapper *m, uint64_t a)
{
	tmap *t = iomem_mapper_getContext(m);
	return IOMemoryDescriptor_getPhysicalSegment(t->md, a - TM_BASE, NULL, 0);
}
static const iomem_mapper_ops tm_ops = { "test", tm_page, tm_map, tm_unmap, NULL, tm_phys, NULL, NULL, NULL,
                                         NULL, NULL, NULL };

IOMEM_TEST(dmacmd, mapped_with_test_mapper)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_HIGH, 0, 0);
	tmap ctx;
	memset(&ctx, 0, sizeof ctx);
	IOMapper *m = iomem_mapper_withOps(&tm_ops, &ctx);
	cr_assert_not_null(m);
	/* kBypassed with a mapper is refused */
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kBypassed, 0, 1, m, NULL));
	tbuf t;
	tbuf_make(&t, 8, 0, 8 * PG, kIODirectionOut, 61);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 48, 3 * PG, IODMACommand_kMapped, 0, 1, m, NULL);
	cr_assert_not_null(c);
	IOMapper_release(m);                  /* the command keeps it */
	cr_expect_eq(iomem_dmacmd_getMapper(c), m);
	cr_expect_null(iomem_dmacmd_getMapper(NULL));
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, t.md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, PG, 7 * PG, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, PG, 7 * PG, true, true), kIOReturnSuccess);
	cr_expect_eq(ctx.maps, 1, "one mapping per preparation");
	cr_expect_eq(ctx.last_opts, kIODMAMapReadAccess);                 /* Out-only: no write */
	cr_expect_eq(ctx.last_bits, 48);
	cr_expect_eq(ctx.off, PG);
	IODMACommand_Segment64 s[8];
	UInt64 off = 0;
	UInt32 n = 8;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(n, 3);                    /* 7 pages of IOVA cut at 3 pages */
	cr_expect_eq(s[0].fIOVMAddr, TM_BASE + PG);
	cr_expect_eq(s[1].fIOVMAddr, TM_BASE + 4 * PG);
	cr_expect_eq(s[2].fLength, PG);
	/* no bouncing: the HIGH memory is reached through the IOVA */
	cr_expect_eq(IODMACommand_getIOMemoryDescriptor(c), t.md);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_expect_eq(ctx.unmaps, 0);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_expect_eq(ctx.unmaps, 1);
	cmd_done(c, &t);
}

/* ---- DriverKit shapes ------------------------------------------------------------ */

IOMEM_TEST(dmacmd, driverkit_calls)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IODMACommandSpecification spec;
	memset(&spec, 0, sizeof spec);
	IODMACommand *c = (IODMACommand *)0x1;
	cr_expect_eq(IODMACommand_Create(NULL, 0, &spec, NULL), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_Create(NULL, 0, NULL, &c), kIOReturnBadArgument);
	cr_expect_null(c);
	cr_expect_eq(IODMACommand_Create(NULL, 1, &spec, &c), kIOReturnBadArgument);
	spec.options = 1;
	cr_expect_eq(IODMACommand_Create(NULL, 0, &spec, &c), kIOReturnBadArgument);
	spec.options = 0;
	spec.maxAddressBits = 256;
	cr_expect_eq(IODMACommand_Create(NULL, 0, &spec, &c), kIOReturnBadArgument);
	spec.maxAddressBits = 64;
	cr_assert_eq(IODMACommand_Create(NULL, 0, &spec, &c), kIOReturnSuccess);
	cr_assert_not_null(c);

	/* a virtual descriptor NOT prepared: PrepareForDMA wires it */
	unsigned char *p = IOMallocAligned(4 * PG, PG);
	cr_assert_not_null(p);
	desc_fill(p, 4 * PG, 3);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((mach_vm_address_t)(uintptr_t)p, 4 * PG,
	                                                            kIODirectionInOut, kernel_task);
	cr_assert_not_null(md);
	IOAddressSegment segs[40];
	uint32_t count = 40;
	uint64_t flags = 0;
	cr_expect_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_PrepareForDMA(c, 1, md, 0, 0, &flags, &count, segs), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_PrepareForDMA(c, 0, NULL, 0, 0, &flags, &count, segs), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_PrepareForDMA(c, 0, md, 0, 0, &flags, NULL, segs), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_PrepareForDMA(c, 0, md, 3 * PG, 2 * PG, &flags, &count, segs), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_GetPreparation(c, NULL, NULL, NULL), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, md, 0, 0, &flags, &count, segs), kIOReturnSuccess);
	cr_expect_eq(flags, kIOMemoryDirectionInOut);
	cr_expect_eq(count, 4);
	uint64_t sum = 0;
	for (uint32_t i = 0; i < count; i++) {
		cr_expect_eq(memcmp(iomem_posix_phys_to_virt(segs[i].address), p + sum, segs[i].length), 0);
		sum += segs[i].length;
	}
	cr_expect_eq(sum, 4 * PG);
	cr_expect_eq(IODMACommand_PrepareForDMA(c, 0, md, 0, 0, &flags, &count, segs), kIOReturnBusy);
	uint64_t o = 1, l = 0;
	IOMemoryDescriptor *got = NULL;
	cr_expect_eq(IODMACommand_GetPreparation(c, &o, &l, &got), kIOReturnSuccess);
	cr_expect_eq(o, 0);
	cr_expect_eq(l, 4 * PG);
	cr_expect_eq(got, md);
	IOMemoryDescriptor_release(got);

	/* PerformOperation: Read (DMA -> data), Write (data -> DMA), Zero */
	IOBufferMemoryDescriptor *data = IOBufferMemoryDescriptor_withCapacity(2 * PG, kIODirectionInOut, false);
	cr_assert_not_null(data);
	unsigned char *d = IOBufferMemoryDescriptor_getBytesNoCopy(data);
	cr_expect_eq(IODMACommand_PerformOperation(c, 3, 0, 10, 0, data), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_PerformOperation(c, 1, 0, 10, 0, NULL), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_PerformOperation(c, 1, 0, 3 * PG, 0, data), kIOReturnBadArgument);   /* > data */
	cr_expect_eq(IODMACommand_PerformOperation(c, 1, 0, 5 * PG, 0, data), kIOReturnBadArgument);   /* > prepared */
	memset(d, 0xA5, 2 * PG);
	cr_expect_eq(IODMACommand_PerformOperation(c, 1, 4 * PG - 10, 100, 0, data), kIOReturnUnderrun);
	cr_expect_eq(memcmp(d, p + 4 * PG - 10, 10), 0);       /* the 10 bytes that fit */
	cr_expect(iomem_test_all_bytes(d + 10, 90, 0xA5));
	cr_expect_eq(IODMACommand_PerformOperation(c, 2, 0, 100, 2 * PG - 50, data), kIOReturnUnderrun);
	cr_expect_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionRead, PG + 5, 1000, 7, data),
	             kIOReturnSuccess);
	cr_expect_eq(memcmp(d + 7, p + PG + 5, 1000), 0);
	memset(d, 0x5A, 100);
	cr_expect_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionWrite, 3, 100, 0, data),
	             kIOReturnSuccess);
	cr_expect(iomem_test_all_bytes(p + 3, 100, 0x5A));
	cr_expect_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionZero, 2 * PG, 700, 0, NULL),
	             kIOReturnSuccess);
	cr_expect(iomem_test_all_bytes(p + 2 * PG, 700, 0));

	cr_expect_eq(IODMACommand_CompleteDMA(c, 1), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_PerformOperation(c, 1, 0, 10, 0, data), kIOReturnNotReady);
	IOMemoryDescriptor_release(data);
	IOMemoryDescriptor_release(md);          /* unwired: desc_fini checks */
	IODMACommand_release(c);
	IOFreeAligned(p, 4 * PG);
}

/* ---- bad inputs -------------------------------------------------------------------- */

IOMEM_TEST(dmacmd, bad_inputs)
{
	tbuf t;
	tbuf_make(&t, 2, 0, 2 * PG, kIODirectionOut, 1);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	IODMACommand_Segment64 s[4];
	UInt64 off = 0;
	UInt32 n = 4;
	unsigned char b[8];
	cr_expect_eq(IODMACommand_genIOVMSegments(c, &off, s, &n), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_readBytes(c, 0, b, 8), 0);
	cr_expect_eq(IODMACommand_writeBytes(c, 0, b, 8), 0);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, t.md, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_genIOVMSegments(c, NULL, s, &n), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_genIOVMSegments(c, &off, NULL, &n), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_genIOVMSegments(c, &off, s, NULL), kIOReturnBadArgument);
	n = 0;
	cr_expect_eq(IODMACommand_genIOVMSegments(c, &off, s, &n), kIOReturnBadArgument);
	n = 4;
	cr_expect_eq(IODMACommand_genIOVMSegmentsWithFunction(c, NULL, &off, s, &n), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_genIOVMSegments(NULL, &off, s, &n), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_readBytes(c, 2 * PG, b, 8), 0);
	cr_expect_eq(IODMACommand_readBytes(c, 2 * PG - 3, b, 8), 3);        /* clamped */
	cr_expect_eq(IODMACommand_readBytes(c, 0, NULL, 8), 0);
	cr_expect_eq(IODMACommand_prepare(NULL, 0, 0, true, true), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_complete(NULL, true, true), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(NULL, t.md, true), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_clearMemoryDescriptor(NULL, true), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_synchronize(NULL, kIODirectionOut), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_getPreparedOffsetAndLength(NULL, NULL, NULL), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_prepareWithSpecification(NULL, kIODMACommandOutputHost64, NULL, 0, NULL, 0, 0, true, true),
	             kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_getNumAddressBits(NULL), 0);
	cr_expect_eq(IODMACommand_getAlignment(NULL), 0);
	cr_expect_eq(IODMACommand_getAlignmentLength(NULL), 0);
	cr_expect_eq(IODMACommand_getAlignmentInternalSegments(NULL), 0);
	cr_expect_null(IODMACommand_getMemoryDescriptor(NULL));
	cr_expect_null(IODMACommand_getIOMemoryDescriptor(NULL));
	cr_expect_eq(IODMACommand_CompleteDMA(NULL, 0), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_GetPreparation(NULL, NULL, NULL, NULL), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_PerformOperation(NULL, 1, 0, 0, 0, NULL), kIOReturnBadArgument);
	cr_expect_eq(IODMACommand_PrepareForDMA(NULL, 0, t.md, 0, 0, NULL, &n, (IOAddressSegment *)s), kIOReturnBadArgument);
	cmd_done(c, &t);
}

IOMEM_TEST(dmacmd, bounce_pool_reserve)
{
	cr_expect_eq(iomem_bounce_pool_reserve(100), kIOReturnSuccess);
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_HIGH, 3, kIODirectionOut, 2);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	for (int k = 0; k < 3; k++) {
		cr_assert_eq(IODMACommand_setMemoryDescriptor(c, t.md, true), kIOReturnSuccess);
		/* one bounce page a segment (reference §2.1 a) */
		cr_expect_eq(gen_all(c, &t, 0, 3 * PG, 2, 0), 3);
		cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	}
	IODMACommand_release(c);
	tbuf_free(&t);
	cr_expect_eq(iomem_bounce_pool_reserve(0), kIOReturnSuccess);
	/* one empty chunk stays cached; trim gives it back */
	iomem_posix_machine_stats_t st;
	iomem_posix_machine_stats(&st);
	cr_expect_eq(st.wired_pages, 64);
	iomem_bounce_pool_trim();
	iomem_posix_machine_stats(&st);
	cr_expect_eq(st.wired_pages, 0);
}

/* Random layouts, ranges, segment limits and chunk sizes; every segment's
 * bytes checked. The seed is printed (criterion --verbose) and fixed. */
IOMEM_TEST(dmacmd, random_generation)
{
	uint64_t seed = 0x5eed1234ull;
	cr_log_info("random_generation seed %llu", (unsigned long long)seed);
	for (int it = 0; it < 40; it++) {
		seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
		static const iomem_posix_layout lay[] = { IOMEM_POSIX_LAYOUT_SCATTERED, IOMEM_POSIX_LAYOUT_RUNS,
		                                          IOMEM_POSIX_LAYOUT_CONTIGUOUS, IOMEM_POSIX_LAYOUT_IDENTITY };
		desc_set_layout(lay[seed % 4], 1 + (uint32_t)(seed >> 8) % 4, seed);
		size_t np = 1 + (seed >> 12) % 24, lead = (seed >> 20) % PG;
		size_t len = np * PG - lead - (seed >> 32) % 64;
		tbuf t;
		tbuf_make(&t, np, lead, len, kIODirectionOut, (uint32_t)seed);
		UInt64 maxseg = (seed >> 40) % 3 == 0 ? 0 : ((seed >> 40) % 3 == 1 ? PG : 1 + (seed >> 44) % (3 * PG));
		IODMACommand *c = host64_on(0, maxseg, IODMACommand_kUnmapped, t.md, false);
		UInt64 po = (seed >> 16) % (len / 2 + 1), pl = 1 + (seed >> 24) % (len - po);
		cr_assert_eq(IODMACommand_prepare(c, po, pl, true, true), kIOReturnSuccess);
		UInt32 chunk = 1 + (UInt32)((seed >> 50) % 9);
		uint32_t nseg = gen_all(c, &t, po, pl, chunk, 0);
		cr_assert_geq(nseg, 1);
		/* a second pass from a random offset */
		UInt64 o = (seed >> 28) % pl, before = o;
		IODMACommand_Segment64 s[8];
		UInt32 n = 8;
		cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &o, s, &n), kIOReturnSuccess);
		cr_assert_eq(check_segs64(&t, po, before, s, n, 0), o - before);
		for (UInt32 k = 0; k < n; k++)
			cr_assert(maxseg == 0 || s[k].fLength <= maxseg);
		IODMACommand_release(c);
		tbuf_free(&t);
	}
}

/* No bounce memory a device this limited can reach: NoResources, nothing
 * kept, the command still usable. */
IOMEM_TEST(dmacmd, bounce_exhaustion)
{
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_HIGH, 2, kIODirectionOut, 5);
	unsigned bits = 0;
	while (((vm_size_t)1 << bits) < PG)
		bits++;
	/* 2^page_shift: only the first page of memory is reachable */
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, (UInt8)bits, 0,
	                                                 IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, t.md, true), kIOReturnNoResources);
	cr_expect_null(IODMACommand_getMemoryDescriptor(c));
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, t.md, false), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNoResources);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	UInt64 o, l;
	cr_expect_eq(IODMACommand_getPreparedOffsetAndLength(c, &o, &l), kIOReturnNotReady);
	cr_expect_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNoResources);
	IODMACommand_release(c);
	/* the same memory for a 32-bit device still bounces fine */
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(IODMACommand_setMemoryDescriptor(c, t.md, true), kIOReturnSuccess);
	cr_expect_eq(gen_all(c, &t, 0, 2 * PG, 4, 0), 2);
	cmd_done(c, &t);
}

IOMEM_TEST(dmacmd, noncoherent_prepare_complete)
{
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_SCATTERED, 3, kIODirectionInOut, 6);
	IODMACommand *c = with_md(IODMACommand_withSpecification(kIODMACommandOutputLittle64, 0, 0, IODMACommand_kNonCoherent,
	                                                         0, 1, NULL, NULL), t.md, true);
	unsigned char out[16 * 4];
	UInt64 off = 0;
	UInt32 n = 4;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, out, &n), kIOReturnSuccess);
	cr_expect_eq(n, 3);
	uint64_t a;
	memcpy(&a, out, 8);                       /* little-endian host: as stored */
	cr_expect_eq(a, iomem_posix_virt_to_phys(t.base));
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cmd_done(c, &t);
}

/* Sub and multi descriptors: the getPhysicalSegment walk. */
IOMEM_TEST(dmacmd, other_descriptor_kinds)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
	IOBufferMemoryDescriptor *a = IOBufferMemoryDescriptor_withCapacity(2 * PG, kIODirectionOut, false);
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(3 * PG, kIODirectionOut, false);
	cr_assert(a && b);
	desc_fill(IOBufferMemoryDescriptor_getBytesNoCopy(a), 2 * PG, 1);
	desc_fill(IOBufferMemoryDescriptor_getBytesNoCopy(b), 3 * PG, 2);
	IOMemoryDescriptor *kids[2] = { a, b };
	IOMemoryDescriptor *m = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionOut, false);
	cr_assert_not_null(m);
	cr_assert_eq(IOMemoryDescriptor_prepare(m, kIODirectionNone), kIOReturnSuccess);
	IODMACommand *c = host64_on(0, PG, IODMACommand_kUnmapped, m, false);
	cr_assert_eq(IODMACommand_prepare(c, 100, 4 * PG, true, true), kIOReturnSuccess);
	IODMACommand_Segment64 s[16];
	UInt64 off = 0;
	UInt32 n = 16;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(off, 4 * PG);
	unsigned char *want = malloc(4 * PG);
	cr_assert_not_null(want);
	cr_assert_eq(IOMemoryDescriptor_readBytes(m, 100, want, 4 * PG), 4 * PG);
	uint64_t at = 0;
	for (UInt32 i = 0; i < n; i++) {
		cr_expect_leq(s[i].fLength, PG);
		cr_expect_eq(phys_cmp(s[i].fIOVMAddr, want + at, s[i].fLength), 0, "segment %u", i);
		at += s[i].fLength;
	}
	cr_expect_eq(at, 4 * PG);
	/* resume in the middle */
	off = PG + 7;
	n = 2;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(phys_cmp(s[0].fIOVMAddr, want + PG + 7, s[0].fLength), 0);
	unsigned char rb[32];
	cr_expect_eq(IODMACommand_readBytes(c, 2 * PG - 16, rb, 32), 32);
	cr_expect_eq(memcmp(rb, want + 2 * PG - 16, 32), 0);
	free(want);
	IODMACommand_release(c);
	IOMemoryDescriptor_complete(m, kIODirectionNone);
	IOMemoryDescriptor_release(m);
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(b);
}

IOMEM_TEST(dmacmd, system_mapper_and_driverkit_device)
{
	tmap ctx;
	memset(&ctx, 0, sizeof ctx);
	IOMapper *m = iomem_mapper_withOps(&tm_ops, &ctx);
	cr_assert_not_null(m);
	iomem_mapper_set_system(m);
	/* NULL mapper + kMapped -> the system mapper; kBypassed refused now */
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	cr_expect_eq(iomem_dmacmd_getMapper(c), m);
	cr_expect_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kBypassed, 0, 1, NULL, NULL));
	IODMACommand *u = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(u);
	cr_expect_null(iomem_dmacmd_getMapper(u));
	IODMACommand_release(u);
	IODMACommand_release(c);
	iomem_mapper_set_system(NULL);

	/* DriverKit with a device mapper: one IOVA segment */
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IODMACommandSpecification spec;
	memset(&spec, 0, sizeof spec);
	spec.maxAddressBits = 47;                 /* the test mapper's IOVAs are at 2^44 */
	cr_assert_eq(IODMACommand_Create(m, 0, &spec, &c), kIOReturnSuccess);
	IOMapper_release(m);
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(5 * PG, kIODirectionIn, false);
	cr_assert_not_null(bmd);
	IOAddressSegment seg[4];
	uint32_t count = 4;
	uint64_t flags = 0;
	IOReturn pr = IODMACommand_PrepareForDMA(c, 0, bmd, PG, 2 * PG, &flags, &count, seg);
	cr_assert_eq(pr, kIOReturnSuccess, "%s", IOReturnString(pr));
	cr_expect_eq(count, 1);
	cr_expect_eq(seg[0].address, TM_BASE + PG);
	cr_expect_eq(seg[0].length, 2 * PG);
	cr_expect_eq(flags, kIOMemoryDirectionIn);
	cr_expect_eq(ctx.last_bits, 47);
	cr_expect_eq(ctx.last_opts, kIODMAMapReadAccess | kIODMAMapWriteAccess);
	cr_expect_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnSuccess);
	cr_expect_eq(ctx.unmaps, 1);
	IOMemoryDescriptor_release(bmd);
	IODMACommand_release(c);
}

/* The preflight sees the segments after the cuts: a start 3 bytes into a
 * page with maxSegment 512 and 16-byte length/internal alignment cannot be
 * emitted as is -> double buffer, and generation succeeds. */
IOMEM_TEST(dmacmd, preflight_after_cuts)
{
	tbuf t;
	tbuf_pages(&t, IOMEM_POSIX_LAYOUT_SCATTERED, 2, kIODirectionOut, 12);
	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fMaxSegmentSize = 512;
	o.fAlignmentLength = 16;
	o.fAlignmentInternalSegments = 16;
	IODMACommand *c = with_md(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o,
	                                                                IODMACommand_kUnmapped, NULL, NULL), t.md, false);
	cr_assert_eq(IODMACommand_prepare(c, 3, 2048, true, true), kIOReturnSuccess);
	cr_expect_neq(IODMACommand_getIOMemoryDescriptor(c), t.md, "double-buffered");
	IODMACommand_Segment64 s[8];
	UInt64 off = 0;
	UInt32 n = 8;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(off, 2048);
	cr_expect_eq(n, 4);
	for (UInt32 i = 0; i < n; i++) {
		cr_expect_eq(s[i].fLength, 512);
		cr_expect_eq(s[i].fIOVMAddr % 16, 0);
		cr_expect_eq(phys_cmp(s[i].fIOVMAddr, t.base + 3 + 512 * i, 512), 0);
	}
	/* aligned start: no double buffer */
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 16, 2048, true, true), kIOReturnSuccess);
	cr_expect_eq(IODMACommand_getIOMemoryDescriptor(c), t.md);
	cmd_done(c, &t);
}

/* ---- an extents mapper (the Linux DMA API shape) ------------------------ */

#define XM_BASE 0x200000000000ull
typedef struct xmap {
	int maps, unmaps, sync_out, sync_in;
	iomem_md_extent ext[64];
	uint32_t n;
	IOMemoryDescriptor *md;
	uint64_t off;
} xmap;

/* each page of the range gets a scattered device address: page k of the
 * prepared range at XM_BASE + 2 * k pages (+ the first byte's page offset) */
static IOReturn xm_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t off, uint64_t len, uint32_t opts,
                       const IODMAMapSpecification *spec, IODMACommand *cmd, const iomem_md_extent **ext,
                       uint32_t *count, void **handle)
{
	xmap *x = iomem_mapper_getContext(m);
	(void)opts; (void)spec; (void)cmd;
	uint64_t in = off & (PG - 1), done = 0;
	x->n = 0;
	while (done < len) {
		uint64_t piece = PG - ((in + done) & (PG - 1));
		if (piece > len - done)
			piece = len - done;
		cr_assert_lt(x->n, 64);
		x->ext[x->n].phys = XM_BASE + 2 * PG * x->n + ((in + done) & (PG - 1));
		done += piece;
		x->ext[x->n].end = done;
		x->n++;
	}
	x->maps++;
	x->md = md;
	x->off = off;
	*ext = x->ext;
	*count = x->n;
	*handle = x;
	return kIOReturnSuccess;
}
static void xm_unmap(IOMapper *m, IODMACommand *cmd, void *h)
{
	xmap *x = iomem_mapper_getContext(m);
	(void)cmd;
	cr_assert_eq(h, x);
	x->unmaps++;
}
static void xm_sync(IOMapper *m, IODMACommand *cmd, void *h, IODirection d)
{
	xmap *x = iomem_mapper_getContext(m);
	(void)cmd; (void)h;
	if (d == kIODirectionOut)
		x->sync_out++;
	else
		x->sync_in++;
}
static IOReturn xm_nomap(IOMapper *m, IOMemoryDescriptor *md, uint64_t off, uint64_t len, uint32_t opts,
                         const IODMAMapSpecification *spec, IODMACommand *cmd, const void *pl, uint64_t *a, uint64_t *l)
{
	(void)m; (void)md; (void)off; (void)len; (void)opts; (void)spec; (void)cmd; (void)pl; (void)a; (void)l;
	cr_assert_fail("iovmMapMemory called although iovmMapExtents exists");
	return kIOReturnError;
}
static IOReturn xm_nounmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *cmd, uint64_t a, uint64_t l)
{
	(void)m; (void)md; (void)cmd; (void)a; (void)l;
	return kIOReturnError;
}
static uint64_t xm_phys(IOMapper *m, uint64_t a) { (void)m; (void)a; return 0; }
static const iomem_mapper_ops xm_ops = { "extents", tm_page, xm_nomap, xm_nounmap, NULL, xm_phys, NULL, NULL, NULL,
                                         xm_map, xm_unmap, xm_sync };

IOMEM_TEST(dmacmd, extents_mapper)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
	xmap ctx;
	memset(&ctx, 0, sizeof ctx);
	IOMapper *m = iomem_mapper_withOps(&xm_ops, &ctx);
	cr_assert_not_null(m);
	tbuf t;
	tbuf_make(&t, 6, 0, 6 * PG, kIODirectionInOut, 31);
	/* 32 bits on HIGH-or-not memory: never bounced, device addresses only;
	 * maxSegment 1000 splits every extent */
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 48, 1000, IODMACommand_kMapped, 0, 1, m, NULL);
	cr_assert_not_null(c);
	IOMapper_release(m);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, t.md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 100, 4 * PG, true, true), kIOReturnSuccess);
	cr_expect_eq(ctx.maps, 1);
	cr_expect_eq(ctx.sync_out, 1);
	cr_expect_eq(ctx.off, 100);
	IODMACommand_Segment64 s[64];
	UInt64 off = 0, covered = 0;
	for (;;) {
		UInt32 n = 3;
		IOReturn r = IODMACommand_gen64IOVMSegments(c, &off, s, &n);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess);
		for (UInt32 i = 0; i < n; i++) {
			/* inside the extent holding offset covered, at the right place */
			uint32_t k = 0;
			while (ctx.ext[k].end <= covered)
				k++;
			uint64_t start = k ? ctx.ext[k - 1].end : 0;
			cr_expect_eq(s[i].fIOVMAddr, ctx.ext[k].phys + (covered - start));
			cr_expect_leq(s[i].fLength, 1000);
			cr_expect_leq(covered + s[i].fLength, ctx.ext[k].end, "a segment never crosses an extent");
			covered += s[i].fLength;
		}
	}
	cr_expect_eq(covered, 4 * PG);
	/* resume at an arbitrary offset */
	off = PG + 5;
	UInt32 n = 1;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(s[0].fIOVMAddr, ctx.ext[1].phys + (PG + 5 - ctx.ext[0].end));
	cr_expect_eq(IODMACommand_synchronize(c, kIODirectionIn), kIOReturnSuccess);
	cr_expect_eq(ctx.sync_in, 1);
	cr_expect_eq(IODMACommand_synchronize(c, kIODirectionOut), kIOReturnSuccess);
	cr_expect_eq(ctx.sync_out, 2);
	cr_expect_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_expect_eq(ctx.sync_in, 2);
	cr_expect_eq(ctx.unmaps, 1);
	/* a one-extent mapping: one segment */
	cr_assert_eq(IODMACommand_prepare(c, 0, 800, true, false), kIOReturnSuccess);
	cr_expect_eq(ctx.sync_out, 2, "synchronize=false: no sync");
	off = 0;
	n = 4;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_expect_eq(n, 1);
	cr_expect_eq(s[0].fIOVMAddr, XM_BASE);
	cr_expect_eq(s[0].fLength, 800);
	IODMACommand_release(c);                  /* completes: unmaps */
	cr_expect_eq(ctx.unmaps, 2);
	tbuf_free(&t);
}
