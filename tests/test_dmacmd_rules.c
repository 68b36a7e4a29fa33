/* SPDX-License-Identifier: MIT */
/*
 * tests/test_dmacmd_rules.c - every validation rule and return code of
 * IODMACommand (reference §2.1) and its DriverKit shapes (§6): the
 * specification refusals, prepare/complete and their nesting, the
 * descriptor attachment, genIOVMSegments' arguments and end, synchronize,
 * readBytes/writeBytes clamping, the accessors, clone, weak creation,
 * Create / PrepareForDMA / CompleteDMA / GetPreparation / PerformOperation.
 *
 * After each refused call: nothing leaked (IOMEM_TEST's check), no page
 * left wired (the suite's fini), and the command still works (good_cycle).
 *
 * Deliberate deviation checked here (dmacmd brief, reference §8.3 item 8):
 * a refused prepare (nested with another range, NotAligned) does NOT
 * leave the active count raised.
 */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "test_desc_util.h"
#include "test_dma_ref.h"

static void rules_init(void)
{
	/* frames at 2 GiB and up: reachable with 32 address bits */
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
}

/* the bounce pool keeps an empty chunk cached (LEAD 15:36): give it back
 * before the wired-pages and leak checks */
static void rules_fini(void)
{
	iomem_bounce_pool_trim();
	desc_fini();
}

TestSuite(dmacmd_rules, .init = rules_init, .fini = rules_fini, .timeout = 120);

#define PG ((uint64_t)dma_ref_page())

static unsigned page_shift(void)
{
	unsigned s = 0;
	while (((uint64_t)1 << s) < PG)
		s++;
	return s;
}

/* a wired buffer of @size bytes, filled with a pattern from @seed */
static IOMemoryDescriptor *buffer(uint64_t size, IODirection dir, unsigned seed)
{
	IOMemoryDescriptor *md = IOBufferMemoryDescriptor_withOptions(dir, (vm_size_t)size, (vm_offset_t)PG);
	cr_assert_not_null(md);
	unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(md);
	for (uint64_t i = 0; i < size; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 8));
	return md;
}

static IODMACommand *cmd64(UInt8 bits, UInt64 maxseg, uint32_t type)
{
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, bits, maxseg, type, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	return c;
}

/* attach @md, prepare all, one Host64 walk that must cover it, clear */
static void good_cycle(IODMACommand *cmd, IOMemoryDescriptor *md)
{
	IODMACommand_Segment64 seg[64];
	UInt64 off = 0, total = 0;
	UInt32 n;
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess, "good cycle: attach+prepare");
	for (;;) {
		n = 64;
		IOReturn r = IODMACommand_genIOVMSegmentsWithFunction(cmd, kIODMACommandOutputHost64, &off, seg, &n);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess, "good cycle: genIOVMSegments %x", (unsigned)r);
		for (UInt32 i = 0; i < n; i++)
			total += seg[i].fLength;
	}
	cr_assert_eq(total, IOMemoryDescriptor_getLength(md), "good cycle: coverage");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess, "good cycle: clear");
	cr_assert_null(IODMACommand_getMemoryDescriptor(cmd));
}

/* ---- a test mapper (only needs to exist) -------------------------------- */

static uint64_t tm_page_size(IOMapper *m) { (void)m; return PG; }
static IOReturn tm_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t o, uint64_t l, uint32_t opt,
                       const IODMAMapSpecification *spec, IODMACommand *cmd, const void *pl, uint64_t *a, uint64_t *al)
{
	(void)m; (void)md; (void)o; (void)l; (void)opt; (void)spec; (void)cmd; (void)pl; (void)a; (void)al;
	return kIOReturnUnsupported;
}
static IOReturn tm_unmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *cmd, uint64_t a, uint64_t l)
{
	(void)m; (void)md; (void)cmd; (void)a; (void)l;
	return kIOReturnSuccess;
}
static uint64_t tm_to_phys(IOMapper *m, uint64_t a) { (void)m; (void)a; return 0; }
static const iomem_mapper_ops tm_ops = {
	.name = "dmacmd_rules test mapper", .getPageSize = tm_page_size, .iovmMapMemory = tm_map,
	.iovmUnmapMemory = tm_unmap, .mapToPhysicalAddress = tm_to_phys,
};

/* ---- specification ------------------------------------------------------ */

IOMEM_TEST(dmacmd_rules, spec_null_function_or_options)
{
	IODMACommand_SegmentOptions o = { sizeof o, 32, 0, 0, 1, 1, 1 };
	cr_assert_null(IODMACommand_withSpecification(NULL, 32, 0, IODMACommand_kMapped, 0, 1, NULL, NULL));
	cr_assert_null(IODMACommand_withSpecificationOptions(NULL, &o, IODMACommand_kMapped, NULL, NULL));
	cr_assert_null(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, NULL, IODMACommand_kMapped, NULL, NULL));
	IODMACommand *c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(c, "the same options with a function are fine");
	IOMemoryDescriptor *md = buffer(2 * PG, kIODirectionInOut, 1);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, spec_address_bits)
{
	unsigned sh = page_shift();
	static const IODMACommand_SegmentFunction f32[] = {
		kIODMACommandOutputHost32, kIODMACommandOutputBig32, kIODMACommandOutputLittle32 };
	static const IODMACommand_SegmentFunction f64[] = {
		kIODMACommandOutputHost64, kIODMACommandOutputBig64, kIODMACommandOutputLittle64 };
	IODMACommand *c;
	/* below the page shift */
	cr_assert_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, (UInt8)(sh - 1), 0, IODMACommand_kMapped, 0, 1, NULL, NULL));
	cr_assert_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 1, 0, IODMACommand_kMapped, 0, 1, NULL, NULL));
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, (UInt8)sh, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c, "bits == page shift is allowed");
	cr_assert_eq(IODMACommand_getNumAddressBits(c), sh);
	IODMACommand_release(c);
	for (int i = 0; i < 3; i++) {
		/* 32-bit outputs: > 32 refused, 0 -> 32 */
		cr_assert_null(IODMACommand_withSpecification(f32[i], 33, 0, IODMACommand_kMapped, 0, 1, NULL, NULL), "32-bit output %d, 33 bits", i);
		cr_assert_null(IODMACommand_withSpecification(f32[i], 64, 0, IODMACommand_kMapped, 0, 1, NULL, NULL));
		c = IODMACommand_withSpecification(f32[i], 0, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
		cr_assert_not_null(c);
		cr_assert_eq(IODMACommand_getNumAddressBits(c), 32, "32-bit output %d: 0 bits -> 32", i);
		IODMACommand_release(c);
		c = IODMACommand_withSpecification(f32[i], 32, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
		cr_assert_not_null(c);
		IODMACommand_release(c);
		/* 64-bit outputs: anything from the page shift to 64, 0 stays 0 */
		c = IODMACommand_withSpecification(f64[i], 0, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
		cr_assert_not_null(c);
		cr_assert_eq(IODMACommand_getNumAddressBits(c), 0);
		IODMACommand_release(c);
		c = IODMACommand_withSpecification(f64[i], 64, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
		cr_assert_not_null(c);
		cr_assert_eq(IODMACommand_getNumAddressBits(c), 64);
		IODMACommand_release(c);
	}
}

IOMEM_TEST(dmacmd_rules, spec_alignments_power_of_two)
{
	IODMACommand_SegmentOptions o;
	static const uint32_t bad[] = { 3, 6, 12, 0x1800, 0x80000001u };
	IODMACommand *c;
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		for (int field = 0; field < 3; field++) {
			memset(&o, 0, sizeof o);
			o.fStructSize = sizeof o;
			if (field == 0) o.fAlignment = bad[i];
			if (field == 1) o.fAlignmentLength = bad[i];
			if (field == 2) o.fAlignmentInternalSegments = bad[i];
			cr_assert_null(IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL),
			               "alignment field %d = %u accepted", field, bad[i]);
		}
	}
	cr_assert_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 3, NULL, NULL));
	/* zeros take the defaults: 1, 1, fAlignment */
	memset(&o, 0, sizeof o);
	o.fStructSize = sizeof o;
	o.fAlignment = 16;
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_getAlignment(c), 16);
	cr_assert_eq(IODMACommand_getAlignmentLength(c), 1);
	cr_assert_eq(IODMACommand_getAlignmentInternalSegments(c), 16, "internal 0 -> fAlignment");
	IODMACommand_release(c);
	memset(&o, 0, sizeof o);
	o.fStructSize = sizeof o;
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_getAlignment(c), 1);
	cr_assert_eq(IODMACommand_getAlignmentLength(c), 1);
	cr_assert_eq(IODMACommand_getAlignmentInternalSegments(c), 1);
	IODMACommand_release(c);
}

IOMEM_TEST(dmacmd_rules, spec_bypassed_refused_with_a_mapper)
{
	IOMapper *mp = iomem_mapper_withOps(&tm_ops, NULL);
	cr_assert_not_null(mp);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kBypassed, 0, 1, mp, NULL);
	cr_assert_null(c, "kBypassed with an explicit mapper");
	/* with no mapper at all it is accepted */
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kBypassed, 0, 1, NULL, NULL);
	cr_assert_not_null(c, "kBypassed without a mapper");
	IOMemoryDescriptor *md = buffer(PG, kIODirectionInOut, 2);
	good_cycle(c, md);
	IODMACommand_release(c);
	/* the system mapper stands in for NULL */
	iomem_mapper_set_system(mp);
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kBypassed, 0, 1, NULL, NULL);
	cr_assert_null(c, "kBypassed with a system mapper");
	/* kUnmapped ignores the mapper */
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kUnmapped, 0, 1, mp, NULL);
	cr_assert_not_null(c, "kUnmapped with a mapper");
	good_cycle(c, md);
	IODMACommand_release(c);
	iomem_mapper_set_system(NULL);
	IOMapper_release(mp);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, spec_unknown_type)
{
	for (uint32_t t = 4; t <= IODMACommand_kTypeMask; t++)
		cr_assert_null(IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, t, 0, 1, NULL, NULL), "type %u", t);
	/* the flag bits are accepted with each known type */
	static const uint32_t ok[] = { IODMACommand_kMapped, IODMACommand_kNonCoherent, IODMACommand_kUnmapped };
	for (int i = 0; i < 3; i++) {
		IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0,
		        ok[i] | IODMACommand_kNoCacheStore | IODMACommand_kOnChip | IODMACommand_kIterateOnly, 0, 1, NULL, NULL);
		cr_assert_not_null(c, "type %u with flags", ok[i]);
		IODMACommand_release(c);
	}
}

IOMEM_TEST(dmacmd_rules, spec_prepareWithSpecification)
{
	IOMemoryDescriptor *md = buffer(2 * PG, kIODirectionInOut, 3);
	IODMACommand *c = IODMACommand_withRefCon((void *)0x1234);
	cr_assert_not_null(c);
	cr_assert_eq(c->fRefCon, (void *)0x1234);
	IODMACommand_SegmentOptions o = { sizeof o, 0, 0, 0, 1, 1, 1 }, b;
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	/* no specification yet */
	cr_assert_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNotReady);
	/* every refusal: BadArgument, nothing active */
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, NULL, &o, IODMACommand_kMapped, NULL, 0, 0, true, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, kIODMACommandOutputHost64, NULL, IODMACommand_kMapped, NULL, 0, 0, true, true), kIOReturnBadArgument);
	b = o; b.fNumAddressBits = (uint8_t)(page_shift() - 1);
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, kIODMACommandOutputHost64, &b, IODMACommand_kMapped, NULL, 0, 0, true, true), kIOReturnBadArgument);
	b = o; b.fNumAddressBits = 33;
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, kIODMACommandOutputHost32, &b, IODMACommand_kMapped, NULL, 0, 0, true, true), kIOReturnBadArgument);
	b = o; b.fAlignmentLength = 24;
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, kIODMACommandOutputHost64, &b, IODMACommand_kMapped, NULL, 0, 0, true, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, kIODMACommandOutputHost64, &o, 7, NULL, 0, 0, true, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnNotReady);
	/* a good one prepares */
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, PG, PG, true, true), kIOReturnSuccess);
	UInt64 po = 1, pl = 1;
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, &po, &pl), kIOReturnSuccess);
	cr_assert_eq(po, PG);
	cr_assert_eq(pl, PG);
	/* while active: NotPermitted (reference §0.1) */
	cr_assert_eq(IODMACommand_prepareWithSpecification(c, kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, PG, PG, true, true), kIOReturnNotPermitted);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady, "NotPermitted must not have nested");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

/* ---- prepare / complete -------------------------------------------------- */

IOMEM_TEST(dmacmd_rules, prepare_without_descriptor)
{
	IODMACommand *c = cmd64(0, 0, IODMACommand_kMapped);
	cr_assert_neq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess, "clearing nothing is fine");
	IOMemoryDescriptor *md = buffer(PG, kIODirectionInOut, 4);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, prepare_beyond_the_descriptor)
{
	IOMemoryDescriptor *md = buffer(2 * PG, kIODirectionInOut, 5);
	IODMACommand *c = cmd64(0, 0, IODMACommand_kMapped);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 2 * PG + 1, 1, true, true), kIOReturnBadArgument, "offset past the end");
	cr_assert_eq(IODMACommand_prepare(c, PG, PG + 1, true, true), kIOReturnBadArgument, "end past the end");
	cr_assert_eq(IODMACommand_prepare(c, 1, 2 * PG, true, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_prepare(c, ~(UInt64)0, 2, true, true), kIOReturnBadArgument, "wrapping range");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	/* exactly to the end is fine */
	cr_assert_eq(IODMACommand_prepare(c, PG, PG, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, prepare_above_max_transfer)
{
	IOMemoryDescriptor *md = buffer(4 * PG, kIODirectionInOut, 6);
	IODMACommand_SegmentOptions o = { sizeof o, 0, 0, 2 * PG, 1, 512, 1 };
	IODMACommand *c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 2 * PG + 512, true, true), kIOReturnNoSpace);
	cr_assert_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNoSpace, "length 0 = the whole descriptor");
	/* checked before anything else: misaligned length, past the end */
	cr_assert_eq(IODMACommand_prepare(c, 0, 2 * PG + 1, true, true), kIOReturnNoSpace, "NoSpace before NotAligned");
	cr_assert_eq(IODMACommand_prepare(c, 3 * PG, 3 * PG, true, true), kIOReturnNoSpace, "NoSpace before the range check");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_prepare(c, PG, 2 * PG, true, true), kIOReturnSuccess, "exactly maxTransfer");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	/* autoPrepare of the whole (too long) descriptor: refused and detached */
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnNoSpace);
	cr_assert_null(IODMACommand_getMemoryDescriptor(c), "a failed autoPrepare must clear the descriptor");
	IOMemoryDescriptor *small = buffer(2 * PG, kIODirectionInOut, 7);
	good_cycle(c, small);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_release(small);
}

IOMEM_TEST(dmacmd_rules, prepare_not_aligned_leaves_it_inactive)
{
	IOMemoryDescriptor *md = buffer(2 * PG, kIODirectionInOut, 8);
	IODMACommand_SegmentOptions o = { sizeof o, 0, 0, 0, 1, 512, 1 };
	IODMACommand *c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kMapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 768, true, true), kIOReturnNotAligned);
	/* deviation from IOKit (§8.3 item 8): the count was not raised */
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_prepare(c, 0, 1024, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, prepare_nesting)
{
	IOMemoryDescriptor *md = buffer(4 * PG, kIODirectionInOut, 9);
	IODMACommand *c = cmd64(0, 0, IODMACommand_kMapped);
	UInt64 po, pl;
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, PG, 2 * PG, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, PG, 2 * PG, true, true), kIOReturnSuccess, "same range nests");
	cr_assert_eq(IODMACommand_prepare(c, 0, 2 * PG, true, true), kIOReturnNotReady, "other offset");
	cr_assert_eq(IODMACommand_prepare(c, PG, PG, true, true), kIOReturnNotReady, "other length");
	cr_assert_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNotReady, "the whole descriptor is another range");
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, &po, &pl), kIOReturnSuccess);
	cr_assert_eq(po, PG, "a refused nested prepare changed the offset");
	cr_assert_eq(pl, 2 * PG);
	/* two completes undo the two accepted prepares; the refused ones did
	 * not count (deviation from IOKit, §8.3 item 8) */
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnSuccess, "still active after one complete");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady, "refused nested prepares were counted");
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, &po, &pl), kIOReturnNotReady);
	/* a new first prepare may take another range */
	cr_assert_eq(IODMACommand_prepare(c, 0, PG, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, &po, &pl), kIOReturnSuccess);
	cr_assert_eq(po, 0);
	cr_assert_eq(pl, PG);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnSuccess, "NULL outputs are optional");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, descriptor_attachment)
{
	IOMemoryDescriptor *a = buffer(2 * PG, kIODirectionInOut, 10), *b = buffer(PG, kIODirectionInOut, 11);
	IODMACommand *c = cmd64(0, 0, IODMACommand_kMapped);
	uint32_t rc = iomem_md_getRetainCount(a);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, a, true), kIOReturnSuccess);
	cr_assert_eq(iomem_md_getRetainCount(a), rc + 1, "the command retains its descriptor");
	cr_assert_eq(IODMACommand_getMemoryDescriptor(c), a);
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), a, "not bounced: the client's");
	/* another descriptor while prepared: Busy, nothing changes */
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, b, true), kIOReturnBusy);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, b, false), kIOReturnBusy);
	cr_assert_eq(IODMACommand_getMemoryDescriptor(c), a);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnSuccess);
	cr_assert_eq(iomem_md_getRetainCount(b), 1, "Busy retained the other descriptor");
	/* clear without autoComplete while active: NotReady */
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, false), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_getMemoryDescriptor(c), a);
	/* the same descriptor again, autoPrepare true: success, still prepared */
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, a, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnSuccess);
	/* nest once more, then the same descriptor with autoPrepare false:
	 * completes until inactive, stays attached, not re-prepared */
	cr_assert_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, a, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_getMemoryDescriptor(c), a);
	/* inactive: switching is fine and releases the previous one */
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, b, true), kIOReturnSuccess);
	cr_assert_eq(iomem_md_getRetainCount(a), rc, "the previous descriptor was not released");
	cr_assert_eq(IODMACommand_getMemoryDescriptor(c), b);
	/* clear with autoComplete: completes, detaches, releases */
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	cr_assert_null(IODMACommand_getMemoryDescriptor(c));
	cr_assert_eq(iomem_md_getRetainCount(b), 1);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	/* releasing a command that still holds a prepared descriptor frees all */
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, a, true), kIOReturnSuccess);
	IODMACommand_retain(c);
	IODMACommand_release(c);
	cr_assert_eq(iomem_md_getRetainCount(a), rc + 1, "retain/release freed too early");
	IODMACommand_release(c);
	cr_assert_eq(iomem_md_getRetainCount(a), rc, "releasing the command must release its descriptor");
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(b);
}

/* ---- genIOVMSegments ------------------------------------------------------ */

static int out_calls;
static bool refuse_second(IODMACommand *target, IODMACommand_Segment64 seg, void *segs, UInt32 index)
{
	IODMACommand_Segment64 *s = segs;
	cr_assert_not_null(target);
	cr_assert_eq((int)index, out_calls, "output function indices out of order");
	out_calls++;
	if (index == 1)
		return false;
	s[index] = seg;
	return true;
}

IOMEM_TEST(dmacmd_rules, gen_arguments_and_end)
{
	/* a physical descriptor at a known address, three pages */
	const uint64_t base = 0x40000000;
	IOMemoryDescriptor *md = IOMemoryDescriptor_withPhysicalAddress(base, 3 * PG, kIODirectionInOut);
	cr_assert_not_null(md);
	IODMACommand *c = cmd64(0, PG, IODMACommand_kMapped);
	IODMACommand_Segment64 seg[8];
	UInt64 off = 0;
	UInt32 n = 8;
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, &n), kIOReturnNotReady, "not prepared");
	cr_assert_eq(IODMACommand_prepare(c, PG / 2, 2 * PG, true, true), kIOReturnSuccess);
	/* NULL pointers, zero count: BadArgument, values unchanged */
	cr_assert_eq(IODMACommand_genIOVMSegments(c, NULL, seg, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, NULL, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, NULL), kIOReturnBadArgument);
	n = 0;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, &n), kIOReturnBadArgument);
	cr_assert_eq(n, 0);
	cr_assert_eq(off, 0);
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, NULL, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(c, kIODMACommandOutputHost64, &off, seg, &n), kIOReturnBadArgument);
	/* offsets relative to the prepared offset; maxSegment PG */
	n = 8;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, &n), kIOReturnSuccess);
	cr_assert_eq(n, 2);
	cr_assert_eq(seg[0].fIOVMAddr, base + PG / 2);
	cr_assert_eq(seg[0].fLength, PG);
	cr_assert_eq(seg[1].fIOVMAddr, base + PG / 2 + PG);
	cr_assert_eq(seg[1].fLength, PG);
	cr_assert_eq(off, 2 * PG);
	/* at and after the end: Overrun, values unchanged */
	n = 8;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, &n), kIOReturnOverrun);
	cr_assert_eq(off, 2 * PG);
	cr_assert_eq(n, 8);
	off = 5 * PG;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, &n), kIOReturnOverrun);
	cr_assert_eq(off, 5 * PG);
	/* resume in the middle */
	off = 100;
	n = 1;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, &n), kIOReturnSuccess);
	cr_assert_eq(n, 1);
	cr_assert_eq(seg[0].fIOVMAddr, base + PG / 2 + 100);
	cr_assert_eq(seg[0].fLength, PG);
	cr_assert_eq(off, 100 + PG);
	/* an output function refusing: MessageTooLarge, values unchanged */
	off = 0;
	n = 8;
	out_calls = 0;
	cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(c, refuse_second, &off, seg, &n), kIOReturnMessageTooLarge);
	cr_assert_eq(off, 0);
	cr_assert_eq(n, 8);
	cr_assert_eq(out_calls, 2);
	cr_assert_eq(seg[0].fIOVMAddr, base + PG / 2, "the segment before the refusal stays written");
	/* a user function that accepts sees every index once */
	out_calls = 0;
	n = 1;
	cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(c, refuse_second, &off, seg, &n), kIOReturnSuccess);
	cr_assert_eq(out_calls, 1);
	cr_assert_eq(n, 1);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	off = 0;
	n = 8;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, seg, &n), kIOReturnNotReady, "completed");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IOMemoryDescriptor *b = buffer(2 * PG, kIODirectionInOut, 12);
	good_cycle(c, b);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(b);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, gen_32bit_outputs_layout)
{
	/* the 32-bit outputs: {addr, len} as two UInt32 at 8*index, in their
	 * byte order; 64-bit: two UInt64 at 16*index */
	const uint64_t base = 0x40000000 + 0x123;
	IOMemoryDescriptor *md = IOMemoryDescriptor_withPhysicalAddress(base, 0x456, kIODirectionInOut);
	cr_assert_not_null(md);
	static const IODMACommand_SegmentFunction fns[] = {
		kIODMACommandOutputBig32, kIODMACommandOutputLittle32, kIODMACommandOutputBig64, kIODMACommandOutputLittle64 };
	for (int k = 0; k < 4; k++) {
		IODMACommand *c = IODMACommand_withSpecification(fns[k], 32, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
		cr_assert_not_null(c);
		unsigned char raw[64];
		memset(raw, 0xEE, sizeof raw);
		UInt64 off = 0;
		UInt32 n = 2;
		cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnSuccess);
		cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, raw + 8, &n), kIOReturnSuccess);
		cr_assert_eq(n, 1);
		int w = k < 2 ? 4 : 8;
		uint64_t a = 0, l = 0;
		for (int i = 0; i < w; i++) {
			int ai = (k % 2 == 0) ? i : w - 1 - i;   /* big: msb first */
			a = (a << 8) | raw[8 + ai];
			l = (l << 8) | raw[8 + w + ai];
		}
		cr_assert_eq(a, base, "format %d address", k);
		cr_assert_eq(l, 0x456, "format %d length", k);
		cr_assert(iomem_test_all_bytes(raw, 8, 0xEE), "format %d wrote before the array", k);
		cr_assert(iomem_test_all_bytes(raw + 8 + 2 * w, sizeof raw - 8 - 2 * w, 0xEE), "format %d wrote past segment 0", k);
		cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
		IODMACommand_release(c);
	}
	IOMemoryDescriptor_release(md);
}

/* ---- complete / synchronize ---------------------------------------------- */

IOMEM_TEST(dmacmd_rules, complete_and_synchronize_states)
{
	IOMemoryDescriptor *md = buffer(2 * PG, kIODirectionInOut, 13);
	IODMACommand *c = cmd64(0, 0, IODMACommand_kMapped);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady, "no descriptor");
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionOut), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionInOut), kIOReturnBadArgument, "In|Out before NotReady");
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady, "attached, not prepared");
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionIn), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionInOut), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionInOut | IODMACommand_kForceDoubleBuffer), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionIn), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionOut), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnSuccess, "synchronize ended the preparation");
	cr_assert_eq(IODMACommand_complete(c, false, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(dmacmd_rules, read_write_bytes_clamped)
{
	const uint64_t size = 3 * PG, po = 0x100, pl = 2 * PG;
	IOMemoryDescriptor *md = buffer(size, kIODirectionInOut, 14);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(md);
	unsigned char *buf = malloc(size + 16), *copy = malloc(size);
	memcpy(copy, mem, size);
	IODMACommand *c = cmd64(0, 0, IODMACommand_kMapped);
	cr_assert_eq(IODMACommand_readBytes(c, 0, buf, 16), 0, "no descriptor");
	cr_assert_eq(IODMACommand_writeBytes(c, 0, buf, 16), 0);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_readBytes(c, 0, buf, 16), 0, "not prepared");
	cr_assert_eq(IODMACommand_writeBytes(c, 0, buf, 16), 0);
	cr_assert_eq(IODMACommand_prepare(c, po, pl, true, true), kIOReturnSuccess);
	/* relative to the prepared offset, clamped to the prepared length */
	memset(buf, 0, size + 16);
	cr_assert_eq(IODMACommand_readBytes(c, 0, buf, size + 16), pl);
	cr_assert(memcmp(buf, copy + po, pl) == 0);
	cr_assert_eq(IODMACommand_readBytes(c, pl - 10, buf, 100), 10);
	cr_assert(memcmp(buf, copy + po + pl - 10, 10) == 0);
	cr_assert_eq(IODMACommand_readBytes(c, pl, buf, 1), 0, "at the end");
	cr_assert_eq(IODMACommand_readBytes(c, pl + 5, buf, 1), 0, "past the end");
	cr_assert_eq(IODMACommand_readBytes(c, 7, buf, 0), 0);
	/* writeBytes: into the descriptor at po + offset, clamped */
	memset(buf, 0x5A, 100);
	cr_assert_eq(IODMACommand_writeBytes(c, pl - 30, buf, 100), 30);
	cr_assert(iomem_test_all_bytes(mem + po + pl - 30, 30, 0x5A));
	cr_assert_eq(mem[po + pl], copy[po + pl], "wrote past the prepared range");
	cr_assert_eq(mem[po + pl - 31], copy[po + pl - 31], "wrote before the offset");
	cr_assert_eq(IODMACommand_writeBytes(c, pl, buf, 1), 0);
	cr_assert_eq(IODMACommand_writeBytes(c, 0, buf, 1), 1);
	cr_assert_eq(mem[po], 0x5A);
	cr_assert_eq(mem[po - 1], copy[po - 1], "wrote before the prepared offset");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_readBytes(c, 0, buf, 16), 0, "completed");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	free(buf);
	free(copy);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

/* ---- accessors, clone, weak creation -------------------------------------- */

IOMEM_TEST(dmacmd_rules, accessors_and_legacy_form)
{
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 40, 0x10000, IODMACommand_kMapped,
	                                                 0x100000, 64, NULL, (void *)0xBEEF);
	cr_assert_not_null(c);
	cr_assert_eq(c->fRefCon, (void *)0xBEEF);
	cr_assert_eq(IODMACommand_getNumAddressBits(c), 40);
	cr_assert_eq(IODMACommand_getAlignment(c), 64);
	cr_assert_eq(IODMACommand_getAlignmentLength(c), 1, "the legacy form: length alignment 1");
	cr_assert_eq(IODMACommand_getAlignmentInternalSegments(c), 64, "the legacy form: internal = alignment");
	cr_assert_null(IODMACommand_getMemoryDescriptor(c));
	cr_assert_null(IODMACommand_getIOMemoryDescriptor(c));
	IODMACommand_release(c);
	/* alignment 0 is 1 */
	c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 0, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_getAlignment(c), 1);
	cr_assert_eq(IODMACommand_getAlignmentInternalSegments(c), 1);
	IODMACommand_release(c);
}

IOMEM_TEST(dmacmd_rules, clone_copies_alignments_as_they_are)
{
	IODMACommand_SegmentOptions o = { sizeof o, 36, 0x3000, 0x40000, 16, 32, 64 };
	IODMACommand *c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped, NULL, (void *)1);
	cr_assert_not_null(c);
	IOMemoryDescriptor *md = buffer(2 * PG, kIODirectionInOut, 15);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnSuccess);
	IODMACommand *k = IODMACommand_cloneCommand(c, (void *)2);
	cr_assert_not_null(k);
	cr_assert_neq(k, c);
	cr_assert_eq(k->fRefCon, (void *)2);
	cr_assert_eq(IODMACommand_getNumAddressBits(k), 36);
	cr_assert_eq(IODMACommand_getAlignment(k), 16);
	cr_assert_eq(IODMACommand_getAlignmentLength(k), 32, "clone swapped the length alignment (IOKit's bug, not ours)");
	cr_assert_eq(IODMACommand_getAlignmentInternalSegments(k), 64);
	cr_assert_null(IODMACommand_getMemoryDescriptor(k), "the clone has no descriptor");
	/* the clone has the limits: maxTransfer 0x40000 -> NoSpace above */
	IOMemoryDescriptor *big = buffer(0x40000 + PG, kIODirectionInOut, 16);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(k, big, true), kIOReturnNoSpace, "maxTransfer not cloned");
	/* and maxSegment 0x3000 */
	cr_assert_eq(IODMACommand_setMemoryDescriptor(k, md, true), kIOReturnSuccess);
	IODMACommand_Segment64 s[8];
	UInt64 off = 0;
	UInt32 n = 8;
	cr_assert_eq(IODMACommand_genIOVMSegments(k, &off, s, &n), kIOReturnSuccess);
	for (UInt32 i = 0; i < n; i++)
		cr_assert_leq(s[i].fLength, 0x3000, "maxSegment not cloned");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(k, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(k);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_release(big);
}

IOMEM_TEST(dmacmd_rules, weak_with_specification)
{
	IODMACommand *c = (IODMACommand *)(uintptr_t)0x1;
	cr_assert_eq(IODMACommand_weakWithSpecification(NULL, kIODMACommandOutputHost64, 32, 0, IODMACommand_kMapped, 0, 1, NULL, NULL),
	             kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_weakWithSpecification(&c, NULL, 32, 0, IODMACommand_kMapped, 0, 1, NULL, NULL), kIOReturnBadArgument);
	cr_assert_null(c, "out not cleared on failure");
	c = (IODMACommand *)(uintptr_t)0x1;
	cr_assert_eq(IODMACommand_weakWithSpecification(&c, kIODMACommandOutputHost32, 40, 0, IODMACommand_kMapped, 0, 1, NULL, NULL),
	             kIOReturnBadArgument);
	cr_assert_null(c);
	c = (IODMACommand *)(uintptr_t)0x1;
	cr_assert_eq(IODMACommand_weakWithSpecification(&c, kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 5, NULL, NULL),
	             kIOReturnBadArgument);
	cr_assert_null(c);
	cr_assert_eq(IODMACommand_weakWithSpecification(&c, kIODMACommandOutputHost64, 32, PG, IODMACommand_kMapped, 0, 1, NULL, (void *)3),
	             kIOReturnSuccess);
	cr_assert_not_null(c);
	cr_assert_eq(c->fRefCon, (void *)3);
	cr_assert_eq(IODMACommand_getNumAddressBits(c), 32);
	IOMemoryDescriptor *md = buffer(2 * PG, kIODirectionInOut, 17);
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

/* ---- DriverKit shapes ------------------------------------------------------ */

static IODMACommand *dk_create(uint64_t bits)
{
	IODMACommandSpecification spec;
	IODMACommand *c = NULL;
	memset(&spec, 0, sizeof spec);
	spec.maxAddressBits = bits;
	cr_assert_eq(IODMACommand_Create(NULL, 0, &spec, &c), kIOReturnSuccess);
	cr_assert_not_null(c);
	return c;
}

IOMEM_TEST(dmacmd_rules, driverkit_create)
{
	IODMACommandSpecification spec;
	IODMACommand *c = (IODMACommand *)(uintptr_t)0x1;
	memset(&spec, 0, sizeof spec);
	spec.maxAddressBits = 64;
	cr_assert_eq(IODMACommand_Create(NULL, 1, &spec, &c), kIOReturnBadArgument, "options must be 0");
	spec.options = 1;
	cr_assert_eq(IODMACommand_Create(NULL, 0, &spec, &c), kIOReturnBadArgument, "spec options must be 0");
	spec.options = 0;
	spec.maxAddressBits = 256;
	cr_assert_eq(IODMACommand_Create(NULL, 0, &spec, &c), kIOReturnBadArgument, "maxAddressBits must fit a byte");
	spec.maxAddressBits = 64;
	cr_assert_eq(IODMACommand_Create(NULL, 0, NULL, &c), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_Create(NULL, 0, &spec, NULL), kIOReturnBadArgument);
	c = NULL;
	cr_assert_eq(IODMACommand_Create(NULL, 0, &spec, &c), kIOReturnSuccess);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_getNumAddressBits(c), 64);
	cr_assert_eq(IODMACommand_getAlignment(c), 1);
	cr_assert_eq(IODMACommand_getAlignmentLength(c), 1);
	cr_assert_eq(IODMACommand_getAlignmentInternalSegments(c), 1);
	IODMACommand_release(c);
}

IOMEM_TEST(dmacmd_rules, driverkit_prepare_complete)
{
	const uint64_t npages = 40;
	iomem_posix_machine_stats_t st;
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	unsigned char *arena = IOMallocAligned((vm_size_t)(npages * PG), (vm_offset_t)PG);
	cr_assert_not_null(arena);
	IOAddressRange r = { (mach_vm_address_t)(uintptr_t)arena, npages * PG };
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges(&r, 1, kIODirectionOut, kernel_task);
	cr_assert_not_null(md);
	IODMACommand *c = dk_create(64);
	IOAddressSegment segs[40];
	uint64_t flags = 0;
	uint32_t count = 40;
	/* bad arguments: nothing wired afterwards */
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 1, md, 0, 0, &flags, &count, segs), kIOReturnBadArgument, "options");
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, NULL, 0, 0, &flags, &count, segs), kIOReturnBadArgument, "memory");
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, md, 0, 0, &flags, NULL, segs), kIOReturnBadArgument, "count");
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, md, 0, 0, &flags, &count, NULL), kIOReturnBadArgument, "segments");
	/* a failure after the descriptor was prepared unwinds it */
	cr_assert_neq(IODMACommand_PrepareForDMA(c, 0, md, npages * PG, PG, &flags, &count, segs), kIOReturnSuccess, "range past the end");
	iomem_posix_machine_stats(&st);
	cr_assert_eq(st.wired_pages, 0, "a failed PrepareForDMA left %llu pages wired", (unsigned long long)st.wired_pages);
	cr_assert_null(IODMACommand_getMemoryDescriptor(c), "a failed PrepareForDMA left the descriptor attached");
	cr_assert_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnNotReady);
	uint64_t go, gl;
	IOMemoryDescriptor *gm = NULL;
	cr_assert_eq(IODMACommand_GetPreparation(c, &go, &gl, &gm), kIOReturnNotReady);
	/* 40 scattered pages, 40 slots: at most 32 come back */
	count = 40;
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, md, 0, 0, &flags, &count, segs), kIOReturnSuccess);
	cr_assert_eq(count, 32, "PrepareForDMA returned %u segments (max 32)", count);
	cr_assert_eq(flags, kIOMemoryDirectionOut, "an Out descriptor is device-readable only");
	for (uint32_t i = 0; i < count; i++) {
		cr_assert_eq(segs[i].address, iomem_posix_virt_to_phys(arena + i * PG));
		cr_assert_eq(segs[i].length, PG);
	}
	iomem_posix_machine_stats(&st);
	cr_assert_eq(st.wired_pages, npages, "PrepareForDMA wires the descriptor");
	cr_assert_eq(IODMACommand_GetPreparation(c, &go, &gl, &gm), kIOReturnSuccess);
	cr_assert_eq(go, 0);
	cr_assert_eq(gl, npages * PG);
	cr_assert_eq(gm, md);
	cr_assert_eq(iomem_md_getRetainCount(md), 3, "GetPreparation: +1 (creator, command, caller)");
	IOMemoryDescriptor_release(gm);
	cr_assert_eq(IODMACommand_GetPreparation(c, NULL, NULL, NULL), kIOReturnSuccess, "NULL outputs are optional");
	/* a second PrepareForDMA while prepared: refused, the first intact */
	count = 4;
	cr_assert_neq(IODMACommand_PrepareForDMA(c, 0, md, 0, PG, &flags, &count, segs), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_GetPreparation(c, &go, &gl, NULL), kIOReturnSuccess);
	cr_assert_eq(gl, npages * PG);
	cr_assert_eq(IODMACommand_CompleteDMA(c, 1), kIOReturnBadArgument, "options must be 0");
	cr_assert_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnNotReady);
	iomem_posix_machine_stats(&st);
	cr_assert_eq(st.wired_pages, 0, "CompleteDMA completes the descriptor");
	cr_assert_eq(iomem_md_getRetainCount(md), 1);
	/* a sub-range, fewer slots, In and InOut flags */
	IOMemoryDescriptor *in = buffer(3 * PG, kIODirectionIn, 18), *io = buffer(PG, kIODirectionInOut, 19);
	count = 2;
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, in, PG, 2 * PG, &flags, &count, segs), kIOReturnSuccess);
	cr_assert_eq(flags, kIOMemoryDirectionIn);
	cr_assert_eq(count, 2);
	cr_assert_eq(segs[0].address, IOMemoryDescriptor_getPhysicalSegment(in, PG, NULL, kIOMemoryMapperNone));
	cr_assert_eq(IODMACommand_GetPreparation(c, &go, &gl, NULL), kIOReturnSuccess);
	cr_assert_eq(go, PG);
	cr_assert_eq(gl, 2 * PG);
	cr_assert_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnSuccess);
	count = 32;
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, io, 0, 0, &flags, &count, segs), kIOReturnSuccess);
	cr_assert_eq(flags, kIOMemoryDirectionInOut);
	cr_assert_eq(count, 1);
	cr_assert_eq(segs[0].length, PG);
	cr_assert_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnSuccess);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(in);
	IOMemoryDescriptor_release(io);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(arena, (vm_size_t)(npages * PG));
}

/* (bugs-dmacmd.md, dmatest 15:22 "PerformOperation", fixed in 0577904):
 * the "short copies" below are kIOReturnUnderrun (reference §6: only a
 * length above either descriptor's length is BadArgument). */
IOMEM_TEST(dmacmd_rules, driverkit_perform_operation)
{
	IOMemoryDescriptor *dma = buffer(2 * PG, kIODirectionInOut, 20), *data = buffer(PG, kIODirectionInOut, 21);
	unsigned char *dm = IOBufferMemoryDescriptor_getBytesNoCopy(dma), *dd = IOBufferMemoryDescriptor_getBytesNoCopy(data);
	unsigned char *dm0 = malloc(2 * PG), *dd0 = malloc(PG);
	memcpy(dm0, dm, 2 * PG);
	memcpy(dd0, dd, PG);
	IODMACommand *c = dk_create(64);
	IOAddressSegment segs[4];
	uint64_t flags;
	uint32_t count = 4;
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionRead, 0, 16, 0, data), kIOReturnNotReady);
	cr_assert_eq(IODMACommand_PrepareForDMA(c, 0, dma, 0, 0, &flags, &count, segs), kIOReturnSuccess);
	/* one operation at a time, known ones only */
	cr_assert_eq(IODMACommand_PerformOperation(c, 0, 0, 16, 0, data), kIOReturnBadArgument, "no operation");
	cr_assert_eq(IODMACommand_PerformOperation(c, 0x8, 0, 16, 0, data), kIOReturnBadArgument, "unknown operation");
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionRead | kIODMACommandPerformOperationOptionWrite,
	                                           0, 16, 0, data), kIOReturnBadArgument, "two operations");
	/* lengths */
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionRead, 0, 2 * PG + 1, 0, data), kIOReturnBadArgument,
	             "longer than the DMA descriptor");
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionRead, 0, PG + 1, 0, data), kIOReturnBadArgument,
	             "longer than the data descriptor");
	cr_assert(memcmp(dm, dm0, 2 * PG) == 0 && memcmp(dd, dd0, PG) == 0, "a refused operation moved bytes");
	/* Read: DMA [PG+8, +100) -> data [16, +100) */
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionRead, PG + 8, 100, 16, data), kIOReturnSuccess);
	cr_assert(memcmp(dd + 16, dm0 + PG + 8, 100) == 0, "Read");
	cr_assert(memcmp(dd, dd0, 16) == 0 && memcmp(dd + 116, dd0 + 116, PG - 116) == 0, "Read wrote outside");
	cr_assert(memcmp(dm, dm0, 2 * PG) == 0, "Read changed the DMA memory");
	/* Write: data [0, +64) -> DMA [32, +64) */
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionWrite, 32, 64, 0, data), kIOReturnSuccess);
	cr_assert(memcmp(dm + 32, dd, 64) == 0, "Write");
	cr_assert(memcmp(dm, dm0, 32) == 0 && memcmp(dm + 96, dm0 + 96, 2 * PG - 96) == 0, "Write wrote outside");
	/* Zero: DMA [200, +300) */
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionZero, 200, 300, 0, data), kIOReturnSuccess);
	cr_assert(iomem_test_all_bytes(dm + 200, 300, 0), "Zero");
	cr_assert_eq(dm[199], dm0[199]);
	cr_assert_eq(dm[500], dm0[500]);
	/* short copies: Underrun (only a length above either descriptor's
	 * length is BadArgument, reference §6) - past the prepared end, past
	 * the data descriptor's end */
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionRead, 2 * PG - 10, 100, 0, data), kIOReturnUnderrun,
	             "DMA range past the end");
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionWrite, 0, 100, PG - 50, data), kIOReturnUnderrun,
	             "data range past the end");
	cr_assert_eq(IODMACommand_CompleteDMA(c, 0), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_PerformOperation(c, kIODMACommandPerformOperationOptionZero, 0, 16, 0, data), kIOReturnNotReady);
	IODMACommand_release(c);
	free(dm0);
	free(dd0);
	IOMemoryDescriptor_release(dma);
	IOMemoryDescriptor_release(data);
}

/* Documented deviation (LEAD 15:36, bugs-dmacmd.md "clip order"): the run
 * is clipped at the prepared end BEFORE the address limit, the trims and
 * the cursor checks, so no rule looks at bytes outside the prepared range
 * (IOKit's order, reference §2.1 step f last, checks the unclipped run). */
IOMEM_TEST(dmacmd_rules, gen_clip_comes_first)
{
	/* a run straddling 4 GiB, only the part below prepared: fine for a
	 * 32-bit cursor (IOKit: MessageTooLarge) */
	IOMemoryDescriptor *md = IOMemoryDescriptor_withPhysicalAddress(0xFFFFF000ull, 0x2000, kIODirectionInOut);
	cr_assert_not_null(md);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0,
	                                                 IODMACommand_kUnmapped | IODMACommand_kIterateOnly, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	IODMACommand_Segment64 s[4];
	UInt64 off = 0;
	UInt32 n = 4;
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 0x1000, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, s, &n), kIOReturnSuccess,
	             "the address check looked past the prepared end");
	cr_assert_eq(n, 1);
	cr_assert_eq(s[0].fIOVMAddr, 0xFFFFF000ull);
	cr_assert_eq(s[0].fLength, 0x1000);
	cr_assert_eq(off, 0x1000);
	/* the whole run prepared: the cursor refuses */
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 0x2000, true, true), kIOReturnSuccess);
	off = 0;
	n = 4;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, s, &n), kIOReturnMessageTooLarge);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
	/* length alignment 0x1000 on one 0x4000 run, prepared [0, 0x3000),
	 * resumed at 0x800: the clipped 0x2800 is trimmed to 0x2000, the 0x800
	 * tail fails the cursor's length check (IOKit: one 0x2800 segment) */
	md = IOMemoryDescriptor_withPhysicalAddress(0x40000000ull, 0x4000, kIODirectionInOut);
	cr_assert_not_null(md);
	IODMACommand_SegmentOptions o = { sizeof o, 0, 0, 0, 1, 0x1000, 1 };
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped | IODMACommand_kIterateOnly,
	                                          NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 0x3000, true, true), kIOReturnSuccess);
	off = 0x800;
	n = 4;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, s, &n), kIOReturnNotAligned, "the 0x800 tail");
	cr_assert_eq(off, 0x800);
	cr_assert_eq(n, 4);
	n = 1;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_assert_eq(n, 1);
	cr_assert_eq(s[0].fIOVMAddr, 0x40000800ull);
	cr_assert_eq(s[0].fLength, 0x2000, "trimmed to the length alignment inside the prepared range");
	cr_assert_eq(off, 0x2800);
	n = 4;
	cr_assert_eq(IODMACommand_genIOVMSegments(c, &off, s, &n), kIOReturnNotAligned);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}

/* reference §2.1: without a mapper the command marks its descriptor "DMA
 * active"; the descriptor's final complete while attached is the panic
 * IOKit has (reported under IOMEM_DEBUG); after clearing, it is fine */
IOMEM_TEST(dmacmd_rules, dma_active_final_complete_reported)
{
	unsigned char *arena = IOMallocAligned((vm_size_t)(2 * PG), (vm_offset_t)PG);
	cr_assert_not_null(arena);
	IOAddressRange r = { (mach_vm_address_t)(uintptr_t)arena, 2 * PG };
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges(&r, 1, kIODirectionInOut, kernel_task);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	IODMACommand *c = cmd64(0, 0, IODMACommand_kUnmapped);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	/* the command is inactive but still holds the descriptor */
	iomem_test_expect_reports(0);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	iomem_test_expect_reports(IOMEM__DEBUG ? 1 : 0);
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("DMA active");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	/* cleared: prepare + final complete report nothing */
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	iomem_test_expect_reports(IOMEM__DEBUG ? 1 : 0);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(arena, (vm_size_t)(2 * PG));
}

/* NULL commands and pointers (our contract, iomem_dma.h): BadArgument
 * from the IOReturn calls, 0 / NULL from the others, no crash */
IOMEM_TEST(dmacmd_rules, null_arguments)
{
	IODMACommand_Segment64 s[2];
	UInt64 off = 0, a, b;
	UInt32 n = 2;
	unsigned char byte = 0;
	cr_assert_eq(IODMACommand_setMemoryDescriptor(NULL, NULL, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(NULL, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_prepare(NULL, 0, 0, true, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_complete(NULL, true, true), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_synchronize(NULL, kIODirectionIn), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(NULL, &a, &b), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_genIOVMSegments(NULL, &off, s, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_gen64IOVMSegments(NULL, &off, s, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_gen32IOVMSegments(NULL, &off, (IODMACommand_Segment32 *)(void *)s, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(NULL, kIODMACommandOutputHost64, &off, s, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_readBytes(NULL, 0, &byte, 1), 0);
	cr_assert_eq(IODMACommand_writeBytes(NULL, 0, &byte, 1), 0);
	cr_assert_null(IODMACommand_getMemoryDescriptor(NULL));
	cr_assert_null(IODMACommand_getIOMemoryDescriptor(NULL));
	cr_assert_eq(IODMACommand_getNumAddressBits(NULL), 0);
	cr_assert_null(IODMACommand_cloneCommand(NULL, NULL));
	IODMACommand_retain(NULL);
	IODMACommand_release(NULL);
	cr_assert_eq(IODMACommand_PrepareForDMA(NULL, 0, NULL, 0, 0, NULL, NULL, NULL), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_CompleteDMA(NULL, 0), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_GetPreparation(NULL, NULL, NULL, NULL), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_PerformOperation(NULL, kIODMACommandPerformOperationOptionZero, 0, 1, 0, NULL), kIOReturnBadArgument);
	/* a live command: NULL function, NULL bytes, NULL descriptor = clear */
	IOMemoryDescriptor *md = buffer(PG, kIODirectionInOut, 30);
	IODMACommand *c = cmd64(0, 0, IODMACommand_kMapped);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnSuccess);
	n = 2;
	cr_assert_eq(IODMACommand_genIOVMSegmentsWithFunction(c, NULL, &off, s, &n), kIOReturnBadArgument);
	cr_assert_eq(IODMACommand_readBytes(c, 0, NULL, 1), 0);
	cr_assert_eq(IODMACommand_writeBytes(c, 0, NULL, 1), 0);
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, NULL, NULL), kIOReturnSuccess, "still prepared");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, NULL, true), kIOReturnSuccess, "NULL clears");
	cr_assert_null(IODMACommand_getMemoryDescriptor(c));
	good_cycle(c, md);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(md);
}
