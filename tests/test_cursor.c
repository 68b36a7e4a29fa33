/* SPDX-License-Identifier: MIT */
/* tests/test_cursor.c - IOMemoryCursor and the natural/big/little cursors
 * (reference §5): every rule of genPhysicalSegments, the byte orders read
 * back as raw bytes, bad input, resuming at any position, and a property
 * check on random descriptors. Contract violations are reported only with
 * IOMEM_DEBUG (the release preset expects none). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"
#include "test_desc_util.h"
#include "test_dma_ref.h"

#include <pthread.h>

TestSuite(cursor, .fini = desc_fini);

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)
#define NOLIMIT ((IOPhysicalLength)0)

/* a physical descriptor over @n ranges (no RAM behind it: only addresses) */
static IOMemoryDescriptor *phys_md(const IOAddressRange *r, UInt32 n)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges((IOAddressRange *)r, n, kIODirectionInOut, NULL);
	cr_assert_not_null(md);
	return md;
}

static void expect_seg(const IOPhysicalSegment *s, IOPhysicalAddress loc, IOPhysicalLength len, int i)
{
	cr_expect_eq(s->location, loc, "segment %d: location %llx, want %llx", i,
	             (unsigned long long)s->location, (unsigned long long)loc);
	cr_expect_eq(s->length, len, "segment %d: length %llx, want %llx", i,
	             (unsigned long long)s->length, (unsigned long long)len);
}

/* three runs: 0x10000+0x3000, then 0x20000+0x1800 continued by the next
 * range at 0x21800+0x800 (one run of 0x2000), then 0x30000+0x100 */
static const IOAddressRange three_runs[] = {
	{ 0x10000, 0x3000 }, { 0x20000, 0x1800 }, { 0x21800, 0x800 }, { 0x30000, 0x100 },
};
#define THREE_RUNS_LEN (0x3000 + 0x2000 + 0x100)

/* A natural cursor (alignment 1) and a descriptor over three_runs. */
static IOMemoryCursor *natural_on_three_runs(IOPhysicalLength maxSeg, IOPhysicalLength maxTransfer,
                                             IOMemoryDescriptor **md)
{
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(maxSeg, maxTransfer, 1);
	cr_assert_not_null(c);
	*md = phys_md(three_runs, 4);
	return c;
}

/* The end of a test: both released, and no contract violation reported. */
static void release_both(IOMemoryCursor *c, IOMemoryDescriptor *md)
{
	IOMemoryCursor_release(c);
	IOMemoryDescriptor_release(md);
	iomem_test_expect_reports(0);
}

/* ---- creation ---- */

IOMEM_TEST(cursor, with_specification_rules)
{
	IOMemoryCursor *c;
	cr_expect_null(IOMemoryCursor_withSpecification(NULL, 4096, 0, 1), "NULL segment function");
	cr_expect_null(IONaturalMemoryCursor_withSpecification(4096, (IOPhysicalLength)0xFFFFFFFFu + 1, 1),
	               "maxTransferSize > UINT_MAX");
	cr_expect_null(IOBigMemoryCursor_withSpecification(4096, ~(IOPhysicalLength)0, 1));
	c = IOLittleMemoryCursor_withSpecification(4096, 0xFFFFFFFFu, 1);
	cr_expect_not_null(c, "maxTransferSize == UINT_MAX is allowed");
	IOMemoryCursor_release(c);
	c = IOMemoryCursor_withSpecification(IONaturalMemoryCursor_outputSegment, 0, 0, 0);
	cr_expect_not_null(c, "all defaults (alignment 0 accepted)");
	IOMemoryCursor_retain(c);
	IOMemoryCursor_release(c);
	IOMemoryCursor_release(c);
	IOMemoryCursor_retain(NULL);
	IOMemoryCursor_release(NULL);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(cursor, alignment_is_ignored_and_reported)
{
	IOMemoryDescriptor *md = phys_md(three_runs, 4);
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(0x1000, 0, 64);
	IOPhysicalSegment s[8];
	IOByteCount x;
	cr_assert_not_null(c, "IOKit accepts any alignment");
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("alignment");
	/* no alignment logic: the first segment starts where the data does */
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0x10, s, 8, 0, &x), 6);
	expect_seg(&s[0], 0x10010, 0x1000, 0);
	expect_seg(&s[2], 0x12010, 0xff0, 2);
	IOMemoryCursor_release(c);
	IOMemoryDescriptor_release(md);
}

/* ---- the generation rules ---- */

IOMEM_TEST(cursor, merges_runs_and_splits_at_max_segment_size)
{
	IOMemoryDescriptor *md;
	IONaturalMemoryCursor *c = natural_on_three_runs(0x1000, 0, &md);
	IOPhysicalSegment s[16];
	IOByteCount x = 99;
	UInt32 n = IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 16, 0, &x);
	cr_assert_eq(n, 6);
	expect_seg(&s[0], 0x10000, 0x1000, 0);
	expect_seg(&s[1], 0x11000, 0x1000, 1);
	expect_seg(&s[2], 0x12000, 0x1000, 2);
	expect_seg(&s[3], 0x20000, 0x1000, 3);     /* the two ranges merged, then split */
	expect_seg(&s[4], 0x21000, 0x1000, 4);
	expect_seg(&s[5], 0x30000, 0x100, 5);
	cr_expect_eq(x, THREE_RUNS_LEN);
	/* splitting starts at the run's start, not at page boundaries */
	n = IONaturalMemoryCursor_getPhysicalSegments(c, md, 0x3800, s, 16, 0, &x);
	cr_assert_eq(n, 3);
	expect_seg(&s[0], 0x20800, 0x1000, 0);
	expect_seg(&s[1], 0x21800, 0x800, 1);
	expect_seg(&s[2], 0x30000, 0x100, 2);
	cr_expect_eq(x, 0x1900);
	IOMemoryCursor_release(c);

	/* maxSegmentSize larger than every run: the maximal runs */
	c = IONaturalMemoryCursor_withSpecification(0x100000, 0, 1);
	n = IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 16, 0, &x);
	cr_assert_eq(n, 3);
	expect_seg(&s[0], 0x10000, 0x3000, 0);
	expect_seg(&s[1], 0x20000, 0x2000, 1);
	expect_seg(&s[2], 0x30000, 0x100, 2);
	cr_expect_eq(x, THREE_RUNS_LEN);
	release_both(c, md);
}

IOMEM_TEST(cursor, max_segment_size_zero_means_largest)
{
	/* decided: IOKit would emit zero-length segments until the array is
	 * full (and a caller advancing by the transfer size loops forever) */
	IOAddressRange r = { 0x100000000ull, 0x180000000ull };   /* 6 GiB at 4 GiB */
	IOMemoryDescriptor *md = phys_md(&r, 1);
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(0, 0, 1);
	IOPhysicalSegment s[4];
	IOByteCount x;
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 4, 0, &x), 1);
	expect_seg(&s[0], 0x100000000ull, 0xFFFFFFFFu, 0);   /* one call moves < 4 GiB */
	cr_expect_eq(x, 0xFFFFFFFFu);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, x, s, 4, 0, &x), 1);
	expect_seg(&s[0], 0x100000000ull + 0xFFFFFFFFu, 0x180000000ull - 0xFFFFFFFFu, 0);
	IOMemoryCursor_release(c);
	/* > 4 GiB is clamped, as IOKit: each 6 GiB run still yields < 4 GiB */
	c = IONaturalMemoryCursor_withSpecification(0x200000000ull, 0, 1);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 4, 0, &x), 1);
	cr_expect_eq(s[0].length, 0xFFFFFFFFu);
	release_both(c, md);
}

IOMEM_TEST(cursor, max_transfer_size_trims_and_per_call_overrides)
{
	IOMemoryDescriptor *md;
	IOMemoryCursor *c = natural_on_three_runs(0x1000, 0x2800, &md);
	IOPhysicalSegment s[16];
	IOByteCount x;
	/* the cursor's maximum: 0x2800 bytes, the last segment trimmed */
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 16, 0, &x), 3);
	expect_seg(&s[2], 0x12000, 0x800, 2);
	cr_expect_eq(x, 0x2800);
	/* the next call continues exactly there */
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, x, s, 16, 0, &x), 3);
	expect_seg(&s[0], 0x12800, 0x800, 0);
	expect_seg(&s[1], 0x20000, 0x1000, 1);
	expect_seg(&s[2], 0x21000, 0x1000, 2);
	cr_expect_eq(x, 0x2800);
	/* a per-call maximum overrides the cursor's, smaller or LARGER (IOKit) */
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 16, 0x100, &x), 1);
	expect_seg(&s[0], 0x10000, 0x100, 0);
	cr_expect_eq(x, 0x100);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 16, 0x4000, &x), 4);
	expect_seg(&s[3], 0x20000, 0x1000, 3);
	cr_expect_eq(x, 0x4000);
	/* a limit ending exactly at a run's end */
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 16, 0x3000, &x), 3);
	cr_expect_eq(x, 0x3000);
	release_both(c, md);
}

IOMEM_TEST(cursor, last_slot_takes_what_the_limits_allow)
{
	IOMemoryDescriptor *md;
	IOMemoryCursor *c = natural_on_three_runs(0x1000, 0, &md);
	IOPhysicalSegment s[4];
	IOByteCount x, pos = 0, total = 0;
	UInt32 n, calls = 0;
	/* two slots: both full segments (the second one is the reserved last one) */
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 2, 0, &x), 2);
	expect_seg(&s[1], 0x11000, 0x1000, 1);
	cr_expect_eq(x, 0x2000);
	IOMemoryCursor_release(c);
	/* a maximal run fits one slot whatever follows */
	c = IONaturalMemoryCursor_withSpecification(0x100000, 0, 1);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0x100, s, 1, 0, &x), 1);
	expect_seg(&s[0], 0x10100, 0x2f00, 0);
	cr_expect_eq(x, 0x2f00);
	/* one slot per call walks the descriptor run by run */
	while ((n = IONaturalMemoryCursor_getPhysicalSegments(c, md, pos, s, 1, 0, &x)) != 0) {
		cr_assert_eq(n, 1);
		cr_assert_eq(s[0].length, x);
		pos += x;
		total += x;
		calls++;
	}
	cr_expect_eq(calls, 3);
	cr_expect_eq(total, THREE_RUNS_LEN);
	cr_expect_eq(x, 0, "exhausted: transfer 0");
	release_both(c, md);
}

IOMEM_TEST(cursor, end_of_descriptor)
{
	IOMemoryDescriptor *md;
	IOMemoryCursor *c = natural_on_three_runs(0x1000, 0, &md);
	IOPhysicalSegment s[4];
	IOByteCount x = 1;
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, THREE_RUNS_LEN - 1, s, 4, 0, &x), 1);
	expect_seg(&s[0], 0x300ff, 1, 0);
	cr_expect_eq(x, 1);
	x = 7;
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, THREE_RUNS_LEN, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0);
	x = 7;
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, ~(IOByteCount)0, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0);
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, THREE_RUNS_LEN, s, 4, 0, NULL), 0);
	/* transferSize is optional */
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 4, 0, NULL), 4);
	release_both(c, md);
}

/* ---- byte orders, read back as raw bytes ---- */

static uint64_t be64_at(const unsigned char *p)
{
	uint64_t v = 0;
	for (int k = 0; k < 8; k++)
		v = (v << 8) | p[k];
	return v;
}

static uint64_t le64_at(const unsigned char *p)
{
	uint64_t v = 0;
	for (int k = 7; k >= 0; k--)
		v = (v << 8) | p[k];
	return v;
}

static const IOAddressRange odd_ranges[] = {
	{ 0x0102030405060000ull, 0x0708 }, { 0x1112131415160000ull, 0x1718 },
};

/* IOKit counts the transfer in a UInt32 that wraps when runs pass 4 GiB
 * (two 3 GiB runs: 6 GiB emitted, 2 GiB reported); iomem stops at the
 * 32-bit maximum and reports it exactly. */
IOMEM_TEST(cursor, one_call_never_moves_4_GiB)
{
	static const IOAddressRange r[] = { { 0x100000000ull, 0xC0000000ull }, { 0x300000000ull, 0xC0000000ull } };
	IOMemoryDescriptor *md = phys_md(r, 2);
	IOMemoryCursor *c = IOBigMemoryCursor_withSpecification(0, 0, 1);
	unsigned char raw[4 * 16];
	IOByteCount x;
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0, raw, 4, 0, &x), 2);
	cr_expect_eq(be64_at(raw + 8), 0xC0000000ull);
	cr_expect_eq(be64_at(raw + 16), 0x300000000ull);
	cr_expect_eq(be64_at(raw + 24), 0xFFFFFFFFull - 0xC0000000ull);
	cr_expect_eq(x, 0xFFFFFFFFull);
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(c, md, x, raw, 4, 0, &x), 1);
	cr_expect_eq(be64_at(raw), 0x300000000ull + 0xFFFFFFFFull - 0xC0000000ull);
	cr_expect_eq(x, 0x180000000ull - 0xFFFFFFFFull);
	release_both(c, md);
}

IOMEM_TEST(cursor, big_and_little_byte_order_as_raw_bytes)
{
	IOMemoryDescriptor *md = phys_md(odd_ranges, 2);
	IOMemoryCursor *cur[3] = {
		IONaturalMemoryCursor_withSpecification(0, 0, 1),
		IOBigMemoryCursor_withSpecification(0, 0, 1),
		IOLittleMemoryCursor_withSpecification(0, 0, 1),
	};
	for (int k = 0; k < 3; k++) {
		unsigned char raw[3 * sizeof(IOPhysicalSegment)];
		IOPhysicalSegment host[3];
		IOByteCount x;
		cr_assert_not_null(cur[k]);
		memset(raw, 0xEE, sizeof raw);
		cr_assert_eq(IOMemoryCursor_genPhysicalSegments(cur[k], md, 0, raw, 2, 0, &x), 2);
		cr_expect_eq(x, 0x0708 + 0x1718);
		cr_expect(iomem_test_all_bytes(raw + 2 * sizeof(IOPhysicalSegment), sizeof(IOPhysicalSegment), 0xEE),
		          "nothing past the segments written");
		memcpy(host, raw, sizeof host);
		for (int i = 0; i < 2; i++) {
			const unsigned char *p = raw + i * sizeof(IOPhysicalSegment);
			switch (k) {
			case 0:
				cr_expect_eq(host[i].location, odd_ranges[i].address);
				cr_expect_eq(host[i].length, odd_ranges[i].length);
				break;
			case 1:
				cr_expect_eq(be64_at(p), odd_ranges[i].address);
				cr_expect_eq(be64_at(p + 8), odd_ranges[i].length);
				cr_expect_eq(p[0], i ? 0x11 : 0x01, "most significant byte first");
				break;
			default:
				cr_expect_eq(le64_at(p), odd_ranges[i].address);
				cr_expect_eq(le64_at(p + 8), odd_ranges[i].length);
				cr_expect_eq(p[7], i ? 0x11 : 0x01, "most significant byte last");
			}
		}
		IOMemoryCursor_release(cur[k]);
	}
	IOMemoryDescriptor_release(md);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(cursor, output_functions_called_directly)
{
	unsigned char raw[40];
	IOPhysicalSegment seg = { 0x8877665544332211ull, 0x00000000CAFEF00Dull };
	IOPhysicalSegment arr[3];
	memset(arr, 0, sizeof arr);
	naturalOutputSegment(seg, arr, 2);
	cr_expect_eq(arr[2].location, seg.location);
	cr_expect_eq(arr[2].length, seg.length);
	cr_expect(iomem_test_all_bytes(arr, 2 * sizeof(IOPhysicalSegment), 0));
	/* big/little: element 1 of an array starting at an odd address */
	memset(raw, 0, sizeof raw);
	bigOutputSegment(seg, raw + 1, 1);
	cr_expect_eq(be64_at(raw + 17), seg.location);
	cr_expect_eq(be64_at(raw + 25), seg.length);
	cr_expect(iomem_test_all_bytes(raw, 17, 0));
	cr_expect(iomem_test_all_bytes(raw + 33, sizeof raw - 33, 0));
	memset(raw, 0, sizeof raw);
	littleOutputSegment(seg, raw + 1, 1);
	cr_expect_eq(le64_at(raw + 17), seg.location);
	cr_expect_eq(le64_at(raw + 25), seg.length);
	cr_expect(iomem_test_all_bytes(raw, 17, 0));
	OutputSegmentFunc f = IOBigMemoryCursor_outputSegment;
	IOMemoryCursor_OutputSegmentFunc g = f;
	cr_expect(g == bigOutputSegment);
	iomem_test_expect_reports(0);
}

/* ---- a user segment function ---- */

typedef struct user_rec { IOPhysicalSegment seg; UInt32 index; } user_rec;

static void user_output(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex)
{
	user_rec *r = (user_rec *)segments;
	r[segmentIndex].seg = segment;
	r[segmentIndex].index = segmentIndex;
}

IOMEM_TEST(cursor, user_segment_function)
{
	IOMemoryDescriptor *md = phys_md(three_runs, 4);
	IOMemoryCursor *c = IOMemoryCursor_withSpecification(user_output, 0x1000, 0, 1);
	user_rec r[8];
	IOByteCount x;
	memset(r, 0xAB, sizeof r);
	cr_assert_not_null(c);
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0, r, 5, 0, &x), 5);
	for (UInt32 i = 0; i < 5; i++)
		cr_expect_eq(r[i].index, i);
	expect_seg(&r[0].seg, 0x10000, 0x1000, 0);
	expect_seg(&r[4].seg, 0x21000, 0x1000, 4);
	cr_expect_eq(x, 0x5000);
	cr_expect(iomem_test_all_bytes(&r[5], 3 * sizeof r[0], 0xAB), "nothing past maxSegments");
	release_both(c, md);
}

/* a cursor made with a built-in function by hand is that built-in cursor */
IOMEM_TEST(cursor, built_in_function_through_with_specification)
{
	IOMemoryDescriptor *md = phys_md(odd_ranges, 2);
	IOMemoryCursor *c = IOMemoryCursor_withSpecification(littleOutputSegment, 0, 0, 1);
	unsigned char raw[32];
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0, raw, 2, 0, NULL), 2);
	cr_expect_eq(le64_at(raw + 16), odd_ranges[1].address);
	IOMemoryCursor_release(c);
	IOMemoryDescriptor_release(md);
}

/* ---- bad input ---- */

IOMEM_TEST(cursor, bad_input_returns_zero_and_clears_the_transfer_size)
{
	IOMemoryDescriptor *md;
	IOMemoryCursor *c = natural_on_three_runs(0x1000, 0, &md);
	IOPhysicalSegment s[4];
	IOByteCount x;
	memset(s, 0x5A, sizeof s);
	x = 7;
	cr_expect_eq(IOMemoryCursor_genPhysicalSegments(NULL, md, 0, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0, "NULL cursor");
	x = 7;
	cr_expect_eq(IOMemoryCursor_genPhysicalSegments(c, NULL, 0, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0, "NULL descriptor");
	x = 7;
	cr_expect_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0, NULL, 4, 0, &x), 0);
	cr_expect_eq(x, 0, "NULL segments");
	x = 7;
	cr_expect_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0, s, 0, 0, &x), 0);
	cr_expect_eq(x, 0, "zero maxSegments");
	x = 7;
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, THREE_RUNS_LEN, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0, "fromPosition at the end");
	x = 7;
	cr_expect_eq(IOBigMemoryCursor_getPhysicalSegments(c, md, THREE_RUNS_LEN + 1, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0, "fromPosition past the end");
	cr_expect(iomem_test_all_bytes(s, sizeof s, 0x5A), "nothing written");
	release_both(c, md);
}

IOMEM_TEST(cursor, unprepared_descriptor_is_refused)
{
	unsigned char *buf = IOMallocAligned(2 * DESC_PAGE, DESC_PAGE);
	IOMemoryDescriptor *md, *sub;
	IOMemoryCursor *c = IOLittleMemoryCursor_withSpecification(0, 0, 1);
	IOPhysicalSegment s[4];
	IOByteCount x = 7;
	cr_assert_not_null(buf);
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 2 * DESC_PAGE, kIODirectionInOut, kernel_task);
	cr_assert_not_null(md);
	memset(s, 0x5A, sizeof s);
	cr_expect_eq(IOLittleMemoryCursor_getPhysicalSegments(c, md, 0, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0);
	cr_expect(iomem_test_all_bytes(s, sizeof s, 0x5A));
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMemoryCursor_genPhysicalSegments");
	/* through a sub descriptor: the parent's getPhysicalSegment reports */
	sub = IOSubMemoryDescriptor_withSubRange(md, 16, 64, kIODirectionInOut);
	cr_assert_not_null(sub);
	x = 7;
	cr_expect_eq(IOLittleMemoryCursor_getPhysicalSegments(c, sub, 0, s, 4, 0, &x), 0);
	cr_expect_eq(x, 0);
	cr_expect(iomem_test_all_bytes(s, sizeof s, 0x5A));
	iomem_test_expect_reports(DBG_REPORTS(2));
	/* prepared, it works */
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(IOLittleMemoryCursor_getPhysicalSegments(c, sub, 0, s, 4, 0, &x), 1);
	cr_expect_eq(x, 64);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	IOMemoryDescriptor_release(sub);
	IOMemoryDescriptor_release(md);
	IOMemoryCursor_release(c);
	IOFreeAligned(buf, 2 * DESC_PAGE);
	iomem_test_expect_reports(DBG_REPORTS(2));
}

IOMEM_TEST(cursor, zero_physical_address_ends_the_walk)
{
	/* IOKit asserts, then loops forever in release builds */
	static const IOAddressRange r[] = { { 0x5000, 0x100 }, { 0, 0x200 }, { 0x9000, 0x50 } };
	IOMemoryDescriptor *md = phys_md(r, 3);
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(0, 0, 1);
	IOPhysicalSegment s[4];
	IOByteCount x;
	memset(s, 0x5A, sizeof s);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 4, 0, &x), 1);
	expect_seg(&s[0], 0x5000, 0x100, 0);
	cr_expect_eq(x, 0x100);
	cr_expect(iomem_test_all_bytes(&s[1], 3 * sizeof s[0], 0x5A));
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, x, s, 4, 0, &x), 0, "the error position");
	cr_expect_eq(x, 0);
	/* past the hole it works again */
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0x300, s, 4, 0, &x), 1);
	expect_seg(&s[0], 0x9000, 0x50, 0);
	IOMemoryDescriptor_release(md);
	/* the same with extents of unequal lengths (the searching path) */
	static const IOAddressRange r2[] = { { 0x5000, 0x100 }, { 0x7000, 0x300 }, { 0, 0x200 }, { 0x9000, 0x50 } };
	md = phys_md(r2, 4);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, 0, s, 4, 0, &x), 2);
	expect_seg(&s[1], 0x7000, 0x300, 1);
	cr_expect_eq(x, 0x400);
	cr_expect_eq(IONaturalMemoryCursor_getPhysicalSegments(c, md, x, s, 4, 0, &x), 0);
	release_both(c, md);
}

/* a driver's kind whose getPhysicalSegment fails in the middle */
static addr64_t holey_seg(IOMemoryDescriptor *md, IOByteCount off, IOByteCount *len, IOOptionBits o)
{
	(void)md; (void)o;
	if (off >= 0x200 && off < 0x300) {
		*len = 0;
		return 0;
	}
	*len = 0x80 - (off & 0x7f);              /* 128-byte pieces, contiguous */
	return 0x700000 + off;
}

IOMEM_TEST(cursor, custom_descriptor_with_a_hole)
{
	static const iomem_md_ops ops = { "holey", holey_seg, NULL, NULL, NULL, NULL, NULL, NULL };
	IOMemoryDescriptor *md = iomem_md_withOps(&ops, NULL, 0x400, kIODirectionIn);
	IOMemoryCursor *c = IOBigMemoryCursor_withSpecification(0x180, 0, 1);
	unsigned char raw[4 * 16];
	IOByteCount x;
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0x10, raw, 4, 0, &x), 2, "pieces merged, split at 0x180");
	cr_expect_eq(be64_at(raw), 0x700010);
	cr_expect_eq(be64_at(raw + 8), 0x180);
	cr_expect_eq(be64_at(raw + 16), 0x700190);
	cr_expect_eq(be64_at(raw + 24), 0x70);
	cr_expect_eq(x, 0x1f0);
	cr_expect_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0x200, raw, 4, 0, &x), 0);
	cr_expect_eq(x, 0);
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(c, md, 0x300, raw, 4, 0, &x), 1);
	cr_expect_eq(x, 0x100);
	release_both(c, md);
}

/* ---- composed descriptors ---- */

IOMEM_TEST(cursor, multi_and_sub_merge_contiguous_children)
{
	/* IOKit's cursor merges any contiguous runs, across children too */
	IOMemoryDescriptor *a = IOMemoryDescriptor_withPhysicalAddress(0x40000, 0x1000, kIODirectionInOut);
	IOMemoryDescriptor *b = IOMemoryDescriptor_withPhysicalAddress(0x41000, 0x800, kIODirectionInOut);
	IOMemoryDescriptor *d = IOMemoryDescriptor_withPhysicalAddress(0x90000, 0x100, kIODirectionInOut);
	IOMemoryDescriptor *kids[3] = { a, b, d };
	IOMemoryDescriptor *m = IOMultiMemoryDescriptor_withDescriptors(kids, 3, kIODirectionInOut, false);
	IOMemoryDescriptor *sub;
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(0, 0, 1);
	IOPhysicalSegment s[4];
	IOByteCount x;
	cr_assert_not_null(m);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, m, 0x10, s, 4, 0, &x), 2);
	expect_seg(&s[0], 0x40010, 0x17f0, 0);
	expect_seg(&s[1], 0x90000, 0x100, 1);
	cr_expect_eq(x, 0x18f0);
	sub = IOSubMemoryDescriptor_withSubRange(m, 0x800, 0x1000, kIODirectionInOut);
	cr_assert_not_null(sub);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, sub, 0, s, 4, 0x900, &x), 1);
	expect_seg(&s[0], 0x40800, 0x900, 0);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, sub, x, s, 4, 0, &x), 1, "the sub ends in b");
	expect_seg(&s[0], 0x41100, 0x700, 0);
	cr_assert_eq(IONaturalMemoryCursor_getPhysicalSegments(c, m, 0x1000, s, 4, 0, &x), 2);
	expect_seg(&s[0], 0x41000, 0x800, 0);
	expect_seg(&s[1], 0x90000, 0x100, 1);
	IOMemoryDescriptor_release(sub);
	IOMemoryDescriptor_release(m);
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(b);
	IOMemoryDescriptor_release(d);
	IOMemoryCursor_release(c);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(cursor, interleaved_slices)
{
	IOMemoryDescriptor *a = IOMemoryDescriptor_withPhysicalAddress(0x50000, 0x3000, kIODirectionInOut);
	IOMemoryDescriptor *il = IOInterleavedMemoryDescriptor_withCapacity(3, kIODirectionInOut);
	IOMemoryCursor *c = IOLittleMemoryCursor_withSpecification(0x800, 0, 1);
	unsigned char raw[8 * 16];
	IOByteCount x;
	cr_assert_not_null(a);
	cr_assert_not_null(il);
	/* slices 0x2000+0x100, then 0x0+0x1000, then 0x1000+0x80: the last one
	 * continues the second physically, so they merge */
	cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(il, a, 0x2000, 0x100));
	cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(il, a, 0, 0x1000));
	cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(il, a, 0x1000, 0x80));
	cr_assert_eq(IOMemoryDescriptor_prepare(il, kIODirectionNone), kIOReturnSuccess);
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(c, il, 0, raw, 8, 0, &x), 4);
	cr_expect_eq(le64_at(raw), 0x52000);
	cr_expect_eq(le64_at(raw + 8), 0x100);
	cr_expect_eq(le64_at(raw + 16), 0x50000);
	cr_expect_eq(le64_at(raw + 24), 0x800);
	cr_expect_eq(le64_at(raw + 32), 0x50800);
	cr_expect_eq(le64_at(raw + 40), 0x800);
	cr_expect_eq(le64_at(raw + 48), 0x51000);
	cr_expect_eq(le64_at(raw + 56), 0x80);
	cr_expect_eq(x, 0x1180);
	IOMemoryDescriptor_complete(il, kIODirectionNone);
	IOMemoryCursor_release(c);
	IOMemoryDescriptor_release(il);
	IOMemoryDescriptor_release(a);
	iomem_test_expect_reports(0);
}

/* ---- virtual memory on every layout: against the machine's translation ---- */

IOMEM_TEST(cursor, buffers_on_every_layout)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 3, 11);
		IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(9 * DESC_PAGE, kIODirectionInOut, false);
		unsigned char *va;
		IOMemoryCursor *c = IOBigMemoryCursor_withSpecification(3 * DESC_PAGE / 2, 0, 1);
		unsigned char raw[64 * 16];
		IOByteCount x, pos = 100;
		UInt32 n;
		cr_assert_not_null(bmd);
		va = IOBufferMemoryDescriptor_getBytesNoCopy(bmd);
		while ((n = IOMemoryCursor_genPhysicalSegments(c, bmd, pos, raw, 3, 0, &x)) != 0) {
			IOByteCount acc = 0;
			for (UInt32 i = 0; i < n; i++) {
				uint64_t loc = be64_at(raw + 16 * i), len = be64_at(raw + 16 * i + 8);
				cr_assert(len > 0 && len <= 3 * DESC_PAGE / 2);
				for (IOByteCount k = 0; k < len; k += 512)
					cr_assert_eq(iomem_posix_virt_to_phys(va + pos + acc + k), loc + k,
					             "layout %s: offset %llu", iomem_posix_layout_name(desc_layouts[l]),
					             (unsigned long long)(pos + acc + k));
				acc += len;
			}
			cr_assert_eq(acc, x);
			pos += x;
		}
		cr_expect_eq(pos, 9 * DESC_PAGE);
		IOMemoryCursor_release(c);
		IOMemoryDescriptor_release(bmd);
	}
	iomem_test_expect_reports(0);
}

/* Fixed-stride extents (scattered pages) ending exactly where the call
 * ends: at the descriptor's end, or at a transfer limit on a page boundary;
 * with room to spare and with exactly enough slots. */
IOMEM_TEST(cursor, scattered_pages_to_an_exact_end)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 5);
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(12 * DESC_PAGE, kIODirectionInOut, false);
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(0, 0, 1);
	IOPhysicalSegment s[20];
	IOByteCount x;
	cr_assert_not_null(bmd);
	unsigned char *va = IOBufferMemoryDescriptor_getBytesNoCopy(bmd);
	for (UInt32 slots = 11; slots <= 20; slots++) {
		for (IOByteCount from = 0; from <= 2 * DESC_PAGE; from += DESC_PAGE / 2) {
			IOByteCount want = 12 * DESC_PAGE - from;
			UInt32 pages = (UInt32)((want + DESC_PAGE - 1) / DESC_PAGE), n;
			memset(s, 0x5A, sizeof s);
			n = IONaturalMemoryCursor_getPhysicalSegments(c, bmd, from, s, slots, 0, &x);
			cr_assert_eq(n, pages < slots ? pages : slots, "from %llu, %u slots: %u segments",
			             (unsigned long long)from, slots, n);
			for (UInt32 i = 0; i < n; i++) {
				IOByteCount off = from + (IOByteCount)i * DESC_PAGE - (i ? from % DESC_PAGE : 0);
				cr_assert_eq(s[i].location, iomem_posix_virt_to_phys(va + off));
				cr_assert(s[i].length > 0 && s[i].length <= DESC_PAGE);
			}
			if (n == pages)
				cr_assert_eq(x, want);
			cr_assert(iomem_test_all_bytes(&s[n], (20 - n) * sizeof s[0], 0x5A));
			/* a transfer limit on a page boundary */
			n = IONaturalMemoryCursor_getPhysicalSegments(c, bmd, from, s, slots, (UInt32)(5 * DESC_PAGE), &x);
			cr_assert_eq(x, 5 * DESC_PAGE);
			cr_assert_eq(n, from % DESC_PAGE ? 6 : 5);
			cr_assert_neq(s[n - 1].length, 0);
		}
	}
	IOMemoryCursor_release(c);
	IOMemoryDescriptor_release(bmd);
	iomem_test_expect_reports(0);
}

/* ---- random descriptors: every IOKit rule as a property ---- */

/* Checks one call's output against the rules, with getPhysicalSegment as
 * the only source of truth: the segments cover [pos, pos + x) in order,
 * each is physically contiguous and <= maxSeg; a segment shorter than
 * maxSeg ends a maximal run (or the transfer); the call stops only at the
 * end, at the transfer limit, or with every slot used. */
static void check_call(IOMemoryDescriptor *md, IOByteCount pos, const IOPhysicalSegment *s, UInt32 n,
                       IOByteCount x, IOByteCount maxSeg, UInt32 maxSegs, IOByteCount limit)
{
	IOByteCount len = IOMemoryDescriptor_getLength(md), off = pos;
	cr_assert(n <= maxSegs);
	for (UInt32 i = 0; i < n; i++) {
		IOByteCount run, seen = 0;
		cr_assert(s[i].length > 0 && s[i].length <= maxSeg, "segment %u length %llu", i,
		          (unsigned long long)s[i].length);
		while (seen < s[i].length) {
			addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off + seen, &run, 0);
			cr_assert_eq(pa, s[i].location + seen, "pos %llu segment %u", (unsigned long long)pos, i);
			seen += run;
		}
		off += s[i].length;
		if (i + 1 < n && s[i].length < maxSeg) {
			/* maximal: the next byte is not physically adjacent */
			cr_assert_neq(IOMemoryDescriptor_getPhysicalSegment(md, off, NULL, 0), s[i].location + s[i].length,
			              "segment %u not maximal", i);
		}
	}
	cr_assert_eq(off - pos, x);
	cr_assert(x <= limit);
	if (n < maxSegs)
		cr_assert(off == len || x == limit, "stopped early at %llu", (unsigned long long)off);
}

static IOMemoryDescriptor *random_phys_md(uint64_t *seed, UInt32 nranges)
{
	IOAddressRange *r = calloc(nranges, sizeof *r);
	IOPhysicalAddress a = 0x100000;
	cr_assert_not_null(r);
	for (UInt32 i = 0; i < nranges; i++) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t v = *seed >> 33;
		r[i].length = 1 + v % 9000;
		if (v & 1)
			a += 0x10000 + (v % 7) * 0x1000;   /* a gap: a new run */
		r[i].address = a;
		a += r[i].length;
	}
	IOMemoryDescriptor *md = phys_md(r, nranges);
	free(r);
	return md;
}

IOMEM_TEST(cursor, random_descriptors_positions_and_specifications)
{
	uint64_t seed = 0x5eed0001ull;
	IOPhysicalSegment s[40];
	fprintf(stderr, "cursor random test seed %#llx\n", (unsigned long long)seed);
	for (int iter = 0; iter < 200; iter++) {
		IOMemoryDescriptor *md = random_phys_md(&seed, 1 + (UInt32)(seed >> 40) % 300);
		IOByteCount len = IOMemoryDescriptor_getLength(md);
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		IOByteCount maxSeg = 1 + (seed >> 20) % 20000;
		UInt32 cursorMax = (seed >> 50) & 1 ? 0 : 1 + (UInt32)((seed >> 36) % 60000);
		IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(maxSeg, cursorMax, 1);
		cr_assert_not_null(c);
		for (int call = 0; call < 20; call++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			IOByteCount pos = (seed >> 16) % (len + 10);
			UInt32 maxSegs = 1 + (UInt32)(seed >> 58) % 40;
			UInt32 xferArg = (seed >> 8) & 3 ? 0 : 1 + (UInt32)((seed >> 30) % 50000);
			IOByteCount limit = xferArg ? xferArg : (cursorMax ? cursorMax : 0xFFFFFFFFu), x = 12345;
			memset(s, 0x5A, sizeof s);
			UInt32 n = IONaturalMemoryCursor_getPhysicalSegments(c, md, pos, s, maxSegs, xferArg, &x);
			if (pos >= len) {
				cr_assert_eq(n, 0);
				cr_assert_eq(x, 0);
			} else {
				cr_assert(n >= 1, "iter %d call %d: nothing at %llu", iter, call, (unsigned long long)pos);
				check_call(md, pos, s, n, x, maxSeg, maxSegs, limit);
			}
			cr_assert(iomem_test_all_bytes(&s[n], (40 - n) * sizeof s[0], 0x5A), "written past n");
		}
		IOMemoryCursor_release(c);
		IOMemoryDescriptor_release(md);
	}
	iomem_test_expect_reports(0);
}

/* A full walk in calls of k slots gives the same segments, whatever k,
 * except that a run may be cut where a call ended. */
IOMEM_TEST(cursor, resume_gives_the_same_bytes_whatever_the_call_size)
{
	uint64_t seed = 0x5eed0002ull;
	fprintf(stderr, "cursor resume test seed %#llx\n", (unsigned long long)seed);
	IOMemoryDescriptor *md = random_phys_md(&seed, 4096);
	IOByteCount len = IOMemoryDescriptor_getLength(md);
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(0x3000, 0, 1);
	for (UInt32 k = 1; k <= 64; k *= 4) {
		IOPhysicalSegment s[64];
		IOByteCount pos = 0, x;
		UInt32 n, calls = 0;
		while ((n = IONaturalMemoryCursor_getPhysicalSegments(c, md, pos, s, k, 0, &x)) != 0) {
			check_call(md, pos, s, n, x, 0x3000, k, 0xFFFFFFFFu);
			if (pos + x < len)
				cr_assert_eq(n, k, "a call stops early only at the end");
			pos += x;
			calls++;
		}
		cr_expect_eq(pos, len, "calls of %u: stopped at %llu of %llu", k, (unsigned long long)pos,
		             (unsigned long long)len);
		cr_expect_gt(calls, 0);
	}
	release_both(c, md);
}

/* ---- threads: one cursor, one descriptor, concurrent calls ---- */

typedef struct thr_arg { IOMemoryCursor *c; IOMemoryDescriptor *md; IOByteCount total; } thr_arg;

static void *thr_walk(void *p)
{
	thr_arg *a = (thr_arg *)p;
	for (int rep = 0; rep < 50; rep++) {
		IOPhysicalSegment s[7];
		IOByteCount pos = 0, x;
		while (IONaturalMemoryCursor_getPhysicalSegments(a->c, a->md, pos, s, 7, 0, &x) != 0)
			pos += x;
		a->total += pos;
	}
	return NULL;
}

IOMEM_TEST(cursor, concurrent_calls_on_one_cursor)
{
	uint64_t seed = 0x5eed0003ull;
	IOMemoryDescriptor *md = random_phys_md(&seed, 500);
	IOMemoryCursor *c = IONaturalMemoryCursor_withSpecification(0x2000, 0, 1);
	thr_arg a[2] = { { c, md, 0 }, { c, md, 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, thr_walk, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		cr_expect_eq(a[i].total, 50 * IOMemoryDescriptor_getLength(md));
	release_both(c, md);
}

/* ---- differential: against the reference model (tests/test_dma_ref.h) ---- */

/* decodes segment @i of @raw written by a cursor of @format (0 natural,
 * 1 big, 2 little, 3 user = natural layout) */
static IOPhysicalSegment decode_seg(const unsigned char *raw, UInt32 i, int format)
{
	IOPhysicalSegment s;
	const unsigned char *p = raw + (size_t)i * sizeof(IOPhysicalSegment);
	if (format == 1) {
		s.location = be64_at(p);
		s.length = be64_at(p + 8);
	} else if (format == 2) {
		s.location = le64_at(p);
		s.length = le64_at(p + 8);
	} else {
		memcpy(&s, p, sizeof s);
	}
	return s;
}

static void compare_with_ref(IOMemoryCursor *c, int format, IOMemoryDescriptor *md, IOByteCount from,
                             uint64_t effMaxSeg, uint64_t cursorMax, UInt32 xferArg, UInt32 maxSegs,
                             const char *what)
{
	enum { CAP = 48 };
	unsigned char raw[(CAP + 1) * sizeof(IOPhysicalSegment)];
	dma_ref_seg ref[CAP];
	uint64_t rx = 0;
	IOByteCount x = 777;
	uint32_t rn;
	UInt32 n;
	cr_assert(maxSegs <= CAP);
	memset(raw, 0x5A, sizeof raw);
	n = IOMemoryCursor_genPhysicalSegments(c, md, from, raw, maxSegs, xferArg, &x);
	rn = dma_ref_cursor(md, from, effMaxSeg, cursorMax, xferArg, ref, maxSegs, &rx);
	cr_assert_eq(n, rn, "%s: from %llu: %u segments, reference %u", what, (unsigned long long)from, n, rn);
	cr_assert_eq(x, rx, "%s: from %llu: transfer %llu, reference %llu", what, (unsigned long long)from,
	             (unsigned long long)x, (unsigned long long)rx);
	for (UInt32 i = 0; i < n; i++) {
		IOPhysicalSegment s = decode_seg(raw, i, format);
		cr_assert(s.location == ref[i].addr && s.length == ref[i].len,
		          "%s: from %llu segment %u: {%llx, %llx}, reference {%llx, %llx}", what,
		          (unsigned long long)from, i, (unsigned long long)s.location, (unsigned long long)s.length,
		          (unsigned long long)ref[i].addr, (unsigned long long)ref[i].len);
	}
	cr_assert(iomem_test_all_bytes(raw + (size_t)n * sizeof(IOPhysicalSegment),
	                               sizeof raw - (size_t)n * sizeof(IOPhysicalSegment), 0x5A),
	          "%s: written past the %u segments", what, n);
}

static void user_natural(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex)
{
	memcpy((unsigned char *)segments + (size_t)segmentIndex * sizeof segment, &segment, sizeof segment);
}

Test(cursor, differential_against_the_reference_model, .timeout = 120)
{
	uint64_t seed = 0xC0A5C0A5ull ^ (uint64_t)0x6;
	dma_ref_rng r = { seed };
	int cases = 0;
	fprintf(stderr, "cursor differential test seed %#llx\n", (unsigned long long)seed);
	for (int iter = 0; iter < 150; iter++) {
		dma_ref_md m;
		dma_ref_random_layout(&r, true);
		cr_assert_eq(dma_ref_random_md(&r, 2, 6, kIODirectionInOut, &m), kIOReturnSuccess, "iter %d", iter);
		/* a random specification: maxSegmentSize 0 and > 4 GiB included */
		uint64_t pick = dma_ref_range(&r, 0, 9), maxSeg, effMaxSeg, cursorMax;
		maxSeg = pick == 0 ? 0 : pick == 1 ? 0x123456789ull : pick < 5 ? dma_ref_range(&r, 1, 600)
		                                                            : dma_ref_range(&r, 1, 5 * DESC_PAGE);
		effMaxSeg = (maxSeg == 0 || maxSeg > 0xFFFFFFFFu) ? 0xFFFFFFFFu : maxSeg;
		cursorMax = dma_ref_range(&r, 0, 2) == 0 ? 0 : dma_ref_range(&r, 1, 8 * DESC_PAGE);
		int format = (int)dma_ref_range(&r, 0, 3);
		IOMemoryCursor *c = format == 0 ? IONaturalMemoryCursor_withSpecification(maxSeg, cursorMax, 1)
		                  : format == 1 ? IOBigMemoryCursor_withSpecification(maxSeg, cursorMax, 1)
		                  : format == 2 ? IOLittleMemoryCursor_withSpecification(maxSeg, cursorMax, 1)
		                                : IOMemoryCursor_withSpecification(user_natural, maxSeg, cursorMax, 1);
		cr_assert_not_null(c);
		/* random positions, each call independent */
		for (int k = 0; k < 12; k++) {
			IOByteCount from = dma_ref_range(&r, 0, m.length + 2);
			UInt32 xferArg = dma_ref_range(&r, 0, 2) ? 0 : (UInt32)dma_ref_range(&r, 1, 6 * DESC_PAGE);
			UInt32 maxSegs = (UInt32)dma_ref_range(&r, 1, 48);
			compare_with_ref(c, format, m.md, from, effMaxSeg, cursorMax, xferArg, maxSegs, "random position");
			cases++;
		}
		/* IOKit's loop: resume where the last call stopped, to the end */
		{
			IOByteCount pos = 0, x;
			UInt32 maxSegs = (UInt32)dma_ref_range(&r, 1, 6);
			unsigned char raw[6 * sizeof(IOPhysicalSegment)];
			while (pos < m.length) {
				compare_with_ref(c, format, m.md, pos, effMaxSeg, cursorMax, 0, maxSegs, "sequential");
				cr_assert_neq(IOMemoryCursor_genPhysicalSegments(c, m.md, pos, raw, maxSegs, 0, &x), 0);
				pos += x;
				cases++;
			}
			cr_assert_eq(pos, m.length);
		}
		IOMemoryCursor_release(c);
		dma_ref_md_release(&m);
	}
	fprintf(stderr, "cursor differential test: %d calls compared\n", cases);
	iomem_test_assert_no_leaks();
	iomem_test_expect_reports(0);
}
