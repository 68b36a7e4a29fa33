/* SPDX-License-Identifier: MIT */
/*
 * tests/test_range.c - IORangeAllocator (iokit-semantics.md §3.4) and the
 * IOVA allocation API built on it.
 *
 *   rules     every IOKit rule: inclusive ends, withRange, alignment masks,
 *             size rounding, allocateRange, deallocate/coalescing, capacity
 *             and increment, getFreeCount, serialize, retain/release
 *   bad       bad input: size 0, NULL result, non-power-of-two alignment,
 *             ranges outside, overflow, double/overlapping deallocation,
 *             allocator full, increment 0 at capacity
 *   cache     the IOMEM_RANGE_CACHE option keeps every observable rule
 *   iova      iomem__range_alloc_below / _alloc_pages / _free_pages
 *   model     >= 100,000 random operations per configuration against a
 *             bitmap model (IOMEM_TEST_SEED=<n> reproduces a run)
 *   stress    threads on one kLocking allocator, ownership checked per unit
 *
 * Every test is an IOMEM_TEST: it fails if anything is left allocated.
 */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


TestSuite(range, .timeout = 240);

#define ALL (~(IORangeScalar)0)

/* Reports happen only with the debug layer. */
#if IOMEM__DEBUG
#  define EXPECT_REPORTS(n) iomem_test_expect_reports(n)
#  define EXPECT_REPORT_HAS(s) iomem_test_expect_report_has(s)
#else
#  define EXPECT_REPORTS(n) iomem_test_expect_reports(0)
#  define EXPECT_REPORT_HAS(s) ((void)0)
#endif

static IORangeAllocator *mk(IORangeScalar end, IORangeScalar align, UInt32 cap, IOOptionBits opt)
{
	IORangeAllocator *ra = IORangeAllocator_withRange(end, align, cap, opt);
	cr_assert_not_null(ra, "withRange(%#llx, %#llx, %u, %#x) failed", (unsigned long long)end,
	                   (unsigned long long)align, cap, opt);
	return ra;
}

/* Asserts the free fragments are exactly the @n pairs in @want. */
static void expect_fragments(IORangeAllocator *ra, const IORangeScalar *want, UInt32 n)
{
	IORangeScalar got[64];
	UInt32 count = IORangeAllocator_serialize(ra, got, 32), i;
	cr_assert_eq(count, n, "fragment count %u, want %u", count, n);
	cr_assert_eq(IORangeAllocator_getFragmentCount(ra), n);
	for (i = 0; i < 2 * n; i++)
		cr_assert_eq(got[i], want[i], "fragment scalar %u: %#llx, want %#llx", i,
		             (unsigned long long)got[i], (unsigned long long)want[i]);
	cr_assert(iomem_range_invariants_hold(ra));
}
#define FRAGS(ra, ...)                                                                  \
	do {                                                                            \
		static const IORangeScalar want_[] = {__VA_ARGS__};                     \
		expect_fragments((ra), want_, (UInt32)(sizeof want_ / sizeof want_[0] / 2)); \
	} while (0)
#define NO_FRAGS(ra) expect_fragments((ra), NULL, 0)

/* ===================================================================== */
/* rules                                                                   */

IOMEM_TEST(range, end_of_range_is_the_inclusive_last_unit)
{
	IORangeAllocator *ra = mk(0xffff, 0, 0, 0);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000);
	FRAGS(ra, 0, 0xffff);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 1);
	cr_expect(IORangeAllocator_allocateRange(ra, 0xffff, 1));   /* last unit is free */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x10000, 1));
	FRAGS(ra, 0, 0xfffe);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, end_of_range_zero_makes_an_empty_allocator)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	IORangeScalar r = 7;
	NO_FRAGS(ra);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 0);    /* IOKit: no array yet */
	cr_expect_not(IORangeAllocator_allocate(ra, 1, &r, 0));
	cr_expect_eq(r, 7);
	IORangeAllocator_deallocate(ra, 0x1000, 0x1000);              /* populate */
	FRAGS(ra, 0x1000, 0x1fff);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 1);
	IORangeAllocator_deallocate(ra, 0, 1);                        /* unit 0 alone */
	FRAGS(ra, 0, 0, 0x1000, 0x1fff);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(0);
}

IOMEM_TEST(range, initial_size_is_rounded_to_the_default_alignment)
{
	/* IOKit's init is deallocate(0, endOfRange + 1): 0x1001 rounds to 0x2000 */
	IORangeAllocator *ra = mk(0x1000, 0x1000, 0, 0);
	FRAGS(ra, 0, 0x1fff);
	IORangeAllocator_release(ra);
	ra = mk(0xfff, 0x1000, 0, 0);
	FRAGS(ra, 0, 0xfff);
	IORangeAllocator_release(ra);
	ra = mk(ALL - 1, 0x1000, 0, 0);                               /* rounds past 2^64 */
	FRAGS(ra, 0, ALL);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, the_whole_64_bit_space)
{
	IORangeAllocator *ra = mk(ALL, 0, 0, 0);
	IORangeScalar r;
	FRAGS(ra, 0, ALL);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), ALL);         /* 2^64 saturates */
	cr_assert(IORangeAllocator_allocate(ra, (IORangeScalar)1 << 63, &r, (IORangeScalar)1 << 63));
	cr_expect_eq(r & (((IORangeScalar)1 << 63) - 1), 0);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), (IORangeScalar)1 << 63);
	cr_expect(IORangeAllocator_allocateRange(ra, r ^ ((IORangeScalar)1 << 63), (IORangeScalar)1 << 63));
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0);
	NO_FRAGS(ra);
	IORangeAllocator_deallocate(ra, 0, (IORangeScalar)1 << 63);
	IORangeAllocator_deallocate(ra, (IORangeScalar)1 << 63, (IORangeScalar)1 << 63);
	FRAGS(ra, 0, ALL);
	cr_expect(IORangeAllocator_allocateRange(ra, ALL, 1));          /* the top unit */
	FRAGS(ra, 0, ALL - 1);
	IORangeAllocator_deallocate(ra, ALL, 1);
	FRAGS(ra, 0, ALL);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(0);
}

IOMEM_TEST(range, default_alignment_zero_means_one_and_must_be_a_power_of_two)
{
	IORangeAllocator *ra = mk(99, 0, 0, 0);
	IORangeScalar r;
	cr_assert(IORangeAllocator_allocate(ra, 3, &r, 0));
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 97);          /* no rounding */
	IORangeAllocator_release(ra);
	cr_expect_null(IORangeAllocator_withRange(99, 3, 0, 0));
	cr_expect_null(IORangeAllocator_withRange(99, 0x1800, 0, kLocking));
	cr_expect_null(IORangeAllocator_withRange(99, ALL, 0, 0));
	ra = mk(ALL, (IORangeScalar)1 << 63, 0, 0);
	cr_assert(IORangeAllocator_allocate(ra, 1, &r, 0));
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), (IORangeScalar)1 << 63);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, sizes_are_rounded_up_to_the_default_alignment)
{
	IORangeAllocator *ra = mk(0xffff, 16, 0, 0);
	IORangeScalar r;
	cr_assert(IORangeAllocator_allocate(ra, 1, &r, 0));
	cr_expect_eq(r % 16, 0);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000 - 16);
	cr_assert(IORangeAllocator_allocate(ra, 17, &r, 0));
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000 - 48);
	IORangeAllocator_deallocate(ra, r, 1);                        /* frees 16 */
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000 - 32);
	IORangeAllocator_deallocate(ra, r + 16, 16);
	cr_expect(IORangeAllocator_allocateRange(ra, 0x8000, 20));    /* takes 32 */
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000 - 48);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, per_call_alignment_replaces_the_default)
{
	/* One fragment [0x10, 0x100f]: no 0x1000-aligned start can hold 0x1000
	 * units, but alignment 0x10 (replacing the default 0x1000) can. */
	IORangeAllocator *ra = mk(0, 0x1000, 0, 0);
	IORangeScalar r = 1;
	IORangeAllocator_deallocate(ra, 0x10, 0x1000);
	FRAGS(ra, 0x10, 0x100f);
	cr_expect_not(IORangeAllocator_allocate(ra, 0x1000, &r, 0));
	cr_expect_not(IORangeAllocator_allocate(ra, 0x1000, &r, 0x1000));
	cr_expect_eq(r, 1);
	cr_assert(IORangeAllocator_allocate(ra, 0x1000, &r, 0x10));
	cr_expect_eq(r, 0x10);
	NO_FRAGS(ra);
	/* ...and the size is still rounded to the default, not to the call's */
	IORangeAllocator_deallocate(ra, 0x10, 0x1000);
	cr_assert(IORangeAllocator_allocate(ra, 1, &r, 1));
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, a_larger_alignment_splits_a_fragment)
{
	IORangeAllocator *ra = mk(0xffff, 0, 0, 0);
	IORangeScalar r;
	cr_assert(IORangeAllocator_allocateRange(ra, 0, 1));          /* fragment [1, 0xffff] */
	cr_assert(IORangeAllocator_allocate(ra, 0x100, &r, 0x1000));
	cr_expect_eq(r % 0x1000, 0);
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 2);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000 - 0x101);
	IORangeAllocator_deallocate(ra, r, 0x100);
	FRAGS(ra, 1, 0xffff);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, exact_fit_removes_hitting_an_end_trims_a_hole_splits)
{
	IORangeAllocator *ra = mk(0, 0, 4, 0);
	IORangeAllocator_deallocate(ra, 100, 10);                     /* [100, 109] */
	cr_assert(IORangeAllocator_allocateRange(ra, 100, 2));        /* trim the start */
	FRAGS(ra, 102, 109);
	cr_assert(IORangeAllocator_allocateRange(ra, 108, 2));        /* trim the end */
	FRAGS(ra, 102, 107);
	cr_assert(IORangeAllocator_allocateRange(ra, 104, 1));        /* split */
	FRAGS(ra, 102, 103, 105, 107);
	cr_assert(IORangeAllocator_allocateRange(ra, 105, 3));        /* exact */
	FRAGS(ra, 102, 103);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, allocate_range_takes_the_start_as_given)
{
	IORangeAllocator *ra = mk(0xffff, 0x1000, 0, 0);
	cr_assert(IORangeAllocator_allocateRange(ra, 0x10, 1));        /* not aligned, kept */
	FRAGS(ra, 0, 0xf, 0x1010, 0xffff);
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x10, 1));    /* in use */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x8, 0x10));  /* overlaps use */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0xf000, 0x2000)); /* past the end */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x100000, 1));    /* outside */
	FRAGS(ra, 0, 0xf, 0x1010, 0xffff);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, allocate_range_must_lie_in_one_fragment)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	IORangeAllocator_deallocate(ra, 0, 10);
	IORangeAllocator_deallocate(ra, 11, 10);                      /* gap at 10 */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 5, 10));
	cr_expect(IORangeAllocator_allocateRange(ra, 0, 10));
	cr_expect(IORangeAllocator_allocateRange(ra, 11, 10));
	NO_FRAGS(ra);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, deallocate_coalesces_with_both_neighbours)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	IORangeAllocator_deallocate(ra, 0, 10);
	IORangeAllocator_deallocate(ra, 20, 10);
	IORangeAllocator_deallocate(ra, 40, 10);
	FRAGS(ra, 0, 9, 20, 29, 40, 49);
	IORangeAllocator_deallocate(ra, 10, 10);                      /* joins two */
	FRAGS(ra, 0, 29, 40, 49);
	IORangeAllocator_deallocate(ra, 35, 5);                       /* joins the next */
	FRAGS(ra, 0, 29, 35, 49);
	IORangeAllocator_deallocate(ra, 30, 5);
	FRAGS(ra, 0, 49);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 50);
	IORangeAllocator_deallocate(ra, 60, 1);
	IORangeAllocator_deallocate(ra, 50, 1);                       /* joins the previous */
	FRAGS(ra, 0, 50, 60, 60);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(0);
}

IOMEM_TEST(range, capacity_counts_slots_and_grows_by_the_increment_or_by_half)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	UInt32 i, cap, prev = 0;
	for (i = 0; i < 100; i++) {
		IORangeAllocator_deallocate(ra, 2 * (IORangeScalar)i, 1);  /* one fragment each */
		cap = IORangeAllocator_getFragmentCapacity(ra);
		cr_assert_geq(cap, i + 1);
		cr_assert_geq(cap, prev);
		if (cap != prev && prev != 0)                              /* + max(1, cap / 2) */
			cr_assert_eq(cap, prev + (prev / 2 > 1 ? prev / 2 : 1), "%u -> %u", prev, cap);
		prev = cap;
	}
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 100);
	for (i = 0; i < 100; i++)
		cr_assert(IORangeAllocator_allocateRange(ra, 2 * (IORangeScalar)i, 1));
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 0);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), prev);  /* never shrinks */
	IORangeAllocator_release(ra);

	ra = mk(0xffff, 0, 10, 0);                                   /* capacity 10: IOKit's */
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 10);
	for (i = 1; i <= 10; i++)
		cr_assert(IORangeAllocator_allocateRange(ra, 2 * (IORangeScalar)i, 1));
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 11);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 20);   /* 10 + max(10, 5) */
	IORangeAllocator_setFragmentCapacityIncrement(ra, 100);
	for (i = 11; i <= 20; i++)
		cr_assert(IORangeAllocator_allocateRange(ra, 2 * (IORangeScalar)i, 1));
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 120);  /* 20 + max(100, 10) */
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, get_free_count_and_serialize)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	IORangeScalar pairs[8] = {0};
	IORangeAllocator_deallocate(ra, 300, 3);
	IORangeAllocator_deallocate(ra, 100, 1);
	IORangeAllocator_deallocate(ra, 200, 2);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 6);
	cr_expect_eq(IORangeAllocator_serialize(ra, NULL, 0), 3);
	cr_expect_eq(IORangeAllocator_serialize(ra, NULL, 5), 3);      /* NULL: nothing written */
	cr_expect_eq(IORangeAllocator_serialize(ra, pairs, 2), 3);     /* the 2 lowest */
	cr_expect_eq(pairs[0], 100);
	cr_expect_eq(pairs[1], 100);
	cr_expect_eq(pairs[2], 200);
	cr_expect_eq(pairs[3], 201);
	cr_expect_eq(pairs[4], 0);
	FRAGS(ra, 100, 100, 200, 201, 300, 302);
	cr_expect_eq(IORangeAllocator_serialize(NULL, pairs, 4), 0);
	cr_expect_eq(IORangeAllocator_getFreeCount(NULL), 0);
	cr_expect_eq(IORangeAllocator_getFragmentCount(NULL), 0);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(NULL), 0);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, retain_and_release_count_references)
{
	IORangeAllocator *ra = mk(0xff, 0, 0, kLocking);
	iomem_range_stats st;
	IORangeAllocator_retain(ra);
	IORangeAllocator_release(ra);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x100);       /* still alive */
	cr_expect_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(st.slot_size, 40);
	cr_expect_geq(st.footprint, sizeof(IORangeAllocator) + 2 * 40);
	cr_expect_eq(iomem_range_get_stats(NULL, &st), kIOReturnBadArgument);
	cr_expect_eq(iomem_range_get_stats(ra, NULL), kIOReturnBadArgument);
	IORangeAllocator_release(ra);
	IORangeAllocator_retain(NULL);
	IORangeAllocator_release(NULL);
#if IOMEM__DEBUG
	{
		iomem_alloc_stats s;
		cr_assert_eq(iomem_stats(&s), kIOReturnSuccess);
		cr_expect_eq(s.family[IOMEM_ALLOC_INTERNAL].live_blocks, 0);
		cr_expect_geq(s.family[IOMEM_ALLOC_INTERNAL].total_allocs, 2);   /* object + slots */
	}
#endif
}

IOMEM_TEST(range, k_locking_allocator_behaves_the_same)
{
	IORangeAllocator *ra = mk(0xffff, 0x10, 0, kLocking);
	IORangeScalar r;
	cr_assert(IORangeAllocator_allocate(ra, 0x20, &r, 0));
	cr_assert(IORangeAllocator_allocateRange(ra, 0x8000, 0x10));
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 2);
	IORangeAllocator_deallocate(ra, 0x8000, 0x10);
	IORangeAllocator_deallocate(ra, r, 0x20);
	FRAGS(ra, 0, 0xffff);
	IORangeAllocator_release(ra);
}

/* ===================================================================== */
/* bad input                                                               */

typedef struct snap {
	IORangeScalar pairs[64];
	UInt32 n;
	IORangeScalar free;
	UInt32 cap;
} snap;

static snap take(IORangeAllocator *ra)
{
	snap s;
	memset(&s, 0, sizeof s);
	s.n = IORangeAllocator_serialize(ra, s.pairs, 32);
	s.free = IORangeAllocator_getFreeCount(ra);
	s.cap = IORangeAllocator_getFragmentCapacity(ra);
	cr_assert(iomem_range_invariants_hold(ra));
	return s;
}

static void expect_same(IORangeAllocator *ra, const snap *a)
{
	snap b = take(ra);
	cr_assert_eq(a->n, b.n);
	cr_assert_eq(a->free, b.free);
	cr_assert_eq(a->cap, b.cap);
	cr_assert_eq(memcmp(a->pairs, b.pairs, sizeof a->pairs), 0);
}

IOMEM_TEST(range, allocate_bad_input_returns_false_and_changes_nothing)
{
	IORangeAllocator *ra = mk(0xffff, 0x10, 0, 0);
	IORangeScalar r = 0x1234;
	snap s = take(ra);
	cr_expect_not(IORangeAllocator_allocate(ra, 0, &r, 0));          /* size 0 */
	cr_expect_not(IORangeAllocator_allocate(ra, 16, NULL, 0));       /* NULL result */
	cr_expect_not(IORangeAllocator_allocate(ra, 16, &r, 3));         /* not a power of two */
	cr_expect_not(IORangeAllocator_allocate(ra, 16, &r, 0x30));
	cr_expect_not(IORangeAllocator_allocate(ra, ALL, &r, 0));        /* rounding overflows */
	cr_expect_not(IORangeAllocator_allocate(ra, ALL - 0xe, &r, 0));
	cr_expect_not(IORangeAllocator_allocate(ra, 0x10010, &r, 0));    /* larger than all */
	cr_expect_not(IORangeAllocator_allocate(NULL, 16, &r, 0));
	cr_expect_eq(r, 0x1234);
	expect_same(ra, &s);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(0);
}

IOMEM_TEST(range, allocate_range_bad_input_returns_false_and_changes_nothing)
{
	IORangeAllocator *ra = mk(0xffff, 0x10, 0, 0);
	snap s = take(ra);
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x100, 0));         /* size 0 */
	cr_expect_not(IORangeAllocator_allocateRange(ra, ALL - 0xf, 0x20));  /* wraps */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x10, ALL));        /* rounding wraps */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x10000, 0x10));    /* outside */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0xfff8, 0x10));     /* half outside */
	cr_expect_not(IORangeAllocator_allocateRange(NULL, 0, 1));
	expect_same(ra, &s);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(0);
}

IOMEM_TEST(range, deallocate_of_size_zero_or_past_the_top_is_ignored)
{
	IORangeAllocator *ra = mk(0, 0x10, 0, 0);
	snap s = take(ra);
	IORangeAllocator_deallocate(ra, 0x100, 0);
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("size 0");
	IORangeAllocator_deallocate(ra, ALL - 0xf, 0x20);
	EXPECT_REPORTS(2);
	EXPECT_REPORT_HAS("past 2^64-1");
	IORangeAllocator_deallocate(ra, 0x10, ALL);
	EXPECT_REPORTS(3);
	IORangeAllocator_deallocate(NULL, 0, 1);
	expect_same(ra, &s);
	IORangeAllocator_deallocate(ra, ALL - 0xf, 0x10);                 /* the top is fine */
	FRAGS(ra, ALL - 0xf, ALL);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(3);
}

IOMEM_TEST(range, double_deallocation_is_reported_and_absorbed)
{
	IORangeAllocator *ra = mk(0xffff, 0x10, 0, 0);
	IORangeScalar r;
	cr_assert(IORangeAllocator_allocate(ra, 0x100, &r, 0));
	IORangeAllocator_deallocate(ra, r, 0x100);
	EXPECT_REPORTS(0);
	IORangeAllocator_deallocate(ra, r, 0x100);                        /* again */
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("double or overlapping deallocation");
	EXPECT_REPORT_HAS("IORangeAllocator_deallocate(");
	FRAGS(ra, 0, 0xffff);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000);       /* counted once */
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, overlapping_deallocation_keeps_the_union)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	IORangeAllocator_deallocate(ra, 10, 10);                          /* [10, 19] */
	IORangeAllocator_deallocate(ra, 30, 10);                          /* [30, 39] */
	IORangeAllocator_deallocate(ra, 50, 10);                          /* [50, 59] */
	EXPECT_REPORTS(0);
	IORangeAllocator_deallocate(ra, 15, 40);                          /* [15, 54]: spans all three */
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("[0xf, 0x13]");                                 /* the first overlap */
	FRAGS(ra, 10, 59);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 50);
	IORangeAllocator_deallocate(ra, 0, 11);                           /* overlaps the head */
	EXPECT_REPORTS(2);
	IORangeAllocator_deallocate(ra, 5, 3);                            /* inside */
	EXPECT_REPORTS(3);
	FRAGS(ra, 0, 59);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 60);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, a_full_allocator_fails_cleanly)
{
	IORangeAllocator *ra = mk(0xfff, 0x10, 0, 0);
	IORangeScalar r, got = 0;
	snap s;
	while (IORangeAllocator_allocate(ra, 0x10, &r, 0))
		got += 0x10;
	cr_expect_eq(got, 0x1000);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0);
	s = take(ra);
	cr_expect_not(IORangeAllocator_allocate(ra, 1, &r, 0));
	cr_expect_not(IORangeAllocator_allocate(ra, 1, &r, 1));
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0, 1));
	expect_same(ra, &s);
	/* almost full: 3 holes of 0x10, a request for 0x20 fails cleanly */
	IORangeAllocator_deallocate(ra, 0x100, 0x10);
	IORangeAllocator_deallocate(ra, 0x300, 0x10);
	IORangeAllocator_deallocate(ra, 0x500, 0x10);
	s = take(ra);
	cr_expect_not(IORangeAllocator_allocate(ra, 0x20, &r, 0));
	expect_same(ra, &s);
	cr_expect(IORangeAllocator_allocate(ra, 0x10, &r, 0x100));
	cr_expect_eq(r & 0xff, 0);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(0);
}

IOMEM_TEST(range, increment_zero_at_capacity_fails_instead_of_corrupting)
{
	IORangeAllocator *ra = mk(0xffff, 0, 0, 0);                       /* capacity 1 */
	IORangeScalar r;
	iomem_range_stats st;
	snap s;
	IORangeAllocator_setFragmentCapacityIncrement(ra, 0);
	s = take(ra);
	/* a split needs a second slot: false, nothing changed (IOKit: writes
	 * past its array) */
	cr_expect_not(IORangeAllocator_allocateRange(ra, 0x100, 1));
	expect_same(ra, &s);
	cr_expect(IORangeAllocator_allocateRange(ra, 0, 1));              /* a trim: [1, 0xffff] */
	s = take(ra);
	cr_expect_not(IORangeAllocator_allocate(ra, 1, &r, 0x100));       /* would split at 0x100 */
	expect_same(ra, &s);
	/* trimming needs no slot */
	cr_expect(IORangeAllocator_allocateRange(ra, 1, 0xff));
	cr_expect(IORangeAllocator_allocate(ra, 0x100, &r, 0));
	cr_expect_eq(r, 0x100);
	cr_expect(IORangeAllocator_allocateRange(ra, 0xff00, 0x100));
	FRAGS(ra, 0x200, 0xfeff);
	/* a deallocation needing a new fragment is dropped, counted, reported */
	IORangeAllocator_deallocate(ra, 0, 0x10);
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("lost");
	FRAGS(ra, 0x200, 0xfeff);
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(st.lost_ranges, 1);
	cr_expect_eq(st.lost_units, 0x10);
	cr_expect_eq(st.capacity, 1);
	/* one that coalesces needs no slot */
	IORangeAllocator_deallocate(ra, 0x100, 0x100);
	IORangeAllocator_deallocate(ra, 0xff00, 0x100);
	FRAGS(ra, 0x100, 0xffff);
	/* growth again once the increment is non-zero */
	IORangeAllocator_setFragmentCapacityIncrement(ra, 4);
	IORangeAllocator_deallocate(ra, 0, 0x10);
	FRAGS(ra, 0, 0xf, 0x100, 0xffff);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 5);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(1);
}

IOMEM_TEST(range, increment_zero_on_an_empty_allocator_loses_the_range_cleanly)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	IORangeAllocator_setFragmentCapacityIncrement(ra, 0);
	IORangeAllocator_deallocate(ra, 0, 100);              /* IOKit: IONew(0), then writes */
	EXPECT_REPORTS(1);
	NO_FRAGS(ra);
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 0);
	IORangeAllocator_release(ra);
}

/* ===================================================================== */
/* the cache                                                               */

IOMEM_TEST(range, cache_keeps_every_observable_rule)
{
	IORangeAllocator *ra = mk(0xffff, 0x10, 0, IOMEM_RANGE_CACHE);
	IORangeScalar r, r2;
	iomem_range_stats st;
	cr_expect_eq(IORangeAllocator_getFragmentCapacity(ra), 1);     /* the reserve is not shown */
	cr_assert(IORangeAllocator_allocate(ra, 0x20, &r, 0));
	IORangeAllocator_deallocate(ra, r, 0x20);
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(st.cached_ranges, 1);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x10000);       /* cached counts as free */
	cr_assert(IORangeAllocator_allocate(ra, 0x20, &r2, 0));           /* a hit */
	cr_expect_eq(r2, r);
	IORangeAllocator_deallocate(ra, r2, 0x20);
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 1);           /* put back, merged */
	FRAGS(ra, 0, 0xffff);
	/* allocateRange on a cached range */
	cr_assert(IORangeAllocator_allocate(ra, 0x10, &r, 0));
	IORangeAllocator_deallocate(ra, r, 0x10);
	cr_expect(IORangeAllocator_allocateRange(ra, r, 0x10));
	IORangeAllocator_deallocate(ra, r, 0x10);
	/* an aligned request skips a cached range that is not aligned enough */
	cr_assert(IORangeAllocator_allocateRange(ra, 0x1010, 0x10));
	IORangeAllocator_deallocate(ra, 0x1010, 0x10);
	cr_assert(IORangeAllocator_allocate(ra, 0x10, &r, 0x100));
	cr_expect_eq(r & 0xff, 0);
	IORangeAllocator_deallocate(ra, r, 0x10);
	/* every free unit can still be had (cached ranges included) */
	{
		IORangeScalar got = 0;
		while (IORangeAllocator_allocate(ra, 0x10, &r, 0))
			got += 0x10;
		cr_expect_eq(got, 0x10000);
	}
	/* a failing allocate puts cached ranges back first: free two adjacent
	 * quanta (both cached), then ask for both at once */
	IORangeAllocator_deallocate(ra, 0x4000, 0x10);
	IORangeAllocator_deallocate(ra, 0x4010, 0x10);
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(st.cached_ranges, 2);
	cr_assert(IORangeAllocator_allocate(ra, 0x20, &r, 0));
	cr_expect_eq(r, 0x4000);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0);
	IORangeAllocator_release(ra);
	EXPECT_REPORTS(0);
}

IOMEM_TEST(range, cache_falls_back_when_full_and_gives_slots_back)
{
	IORangeAllocator *ra = mk(0xfffff, 1, 0, IOMEM_RANGE_CACHE);
	IORangeScalar r[64];
	unsigned i;
	iomem_range_stats st;
	for (i = 0; i < 64; i++)
		cr_assert(IORangeAllocator_allocate(ra, 1 + i % 4, &r[i], 0));
	for (i = 0; i < 64; i++)
		IORangeAllocator_deallocate(ra, r[i], 1 + i % 4);
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(st.cached_ranges, 4 * 16);                           /* 16 per size */
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 0x100000);
	cr_assert(iomem_range_invariants_hold(ra));
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 1);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, cache_puts_ranges_back_without_memory_even_at_a_fixed_capacity)
{
	/* increment 0: the cache may only hold what its reserve can take back */
	IORangeAllocator *ra = mk(0, 1, 4, IOMEM_RANGE_CACHE);
	IORangeScalar r;
	iomem_range_stats st;
	unsigned i;
	IORangeAllocator_setFragmentCapacityIncrement(ra, 0);
	IORangeAllocator_deallocate(ra, 0, 1000);
	for (i = 0; i < 100; i++)
		cr_assert(IORangeAllocator_allocate(ra, 1, &r, 0));
	for (i = 0; i < 100; i += 2) {                 /* 50 isolated single units */
		IORangeAllocator_deallocate(ra, i, 1);
		cr_assert(iomem_range_invariants_hold(ra), "after freeing %u", i);
	}
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), 900 + 50 - st.lost_units);
	cr_expect_gt(st.lost_units, 0);                     /* some had no slot */
	cr_expect_leq(IORangeAllocator_getFragmentCount(ra), IORangeAllocator_getFragmentCapacity(ra));
	cr_assert(iomem_range_invariants_hold(ra));
	for (i = 0; i < 100; i++)                           /* refill and empty again */
		if (IORangeAllocator_allocate(ra, 1, &r, 0))
			IORangeAllocator_deallocate(ra, r, 1);
	cr_assert(iomem_range_invariants_hold(ra));
	IORangeAllocator_release(ra);
#if IOMEM__DEBUG
	cr_expect_gt(iomem_test_panic_count, 0);            /* the losses were reported */
	iomem_test_expect_report_has("lost");
#endif
}

IOMEM_TEST(range, cache_double_free_is_reported_with_the_debug_layer)
{
#if IOMEM__DEBUG
	IORangeAllocator *ra = mk(0xffff, 0x10, 0, IOMEM_RANGE_CACHE);
	IORangeScalar r;
	cr_assert(IORangeAllocator_allocate(ra, 0x10, &r, 0));
	IORangeAllocator_deallocate(ra, r, 0x10);                         /* cached */
	IORangeAllocator_deallocate(ra, r, 0x10);                         /* again */
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has("double or overlapping");
	IORangeAllocator_deallocate(ra, 0x8000, 0x10);                    /* free in the tree */
	iomem_test_expect_reports(2);
	FRAGS(ra, 0, 0xffff);
	IORangeAllocator_release(ra);
#else
	cr_skip_test("needs IOMEM_DEBUG");
#endif
}

/* ===================================================================== */
/* IOVA API                                                                */

IOMEM_TEST(range, iova_alloc_below_a_limit)
{
	IORangeAllocator *ra = mk(0, 0x1000, 0, 0);
	IORangeScalar r, i;
	/* IOVA space [1 MiB, 8 GiB): many small holes high, one low */
	IORangeAllocator_deallocate(ra, 0x100000, 0x200000000ull - 0x100000);
	cr_assert(IORangeAllocator_allocateRange(ra, 0x100000, 0x100000000ull - 0x100000)); /* low 4G used */
	IORangeAllocator_deallocate(ra, 0x80000000ull, 0x4000);           /* 16 KiB hole below 4G */
	for (i = 0; i < 64; i++)                                        /* holes above 4G */
		cr_assert(IORangeAllocator_allocateRange(ra, 0x100000000ull + i * 0x10000 + 0x8000, 0x8000));
	cr_assert_eq(iomem__range_alloc_below(ra, 0x2000, 0, 0xffffffffull, &r), kIOReturnSuccess);
	cr_expect_geq(r, 0x80000000ull);
	cr_expect_leq(r + 0x2000 - 1, 0xffffffffull);
	cr_expect_eq(iomem__range_alloc_below(ra, 0x4000, 0, 0xffffffffull, &r), kIOReturnNoSpace);
	cr_assert_eq(iomem__range_alloc_below(ra, 0x2000, 0x2000, 0xffffffffull, &r), kIOReturnSuccess);
	cr_expect_eq(r & 0x1fff, 0);
	cr_expect_eq(iomem__range_alloc_below(ra, 0x1000, 0, 0xffffffffull, &r), kIOReturnNoSpace);
	cr_assert_eq(iomem__range_alloc_below(ra, 0x1000, 0, ALL, &r), kIOReturnSuccess);
	cr_expect_gt(r, 0xffffffffull);
	cr_expect_eq(iomem__range_alloc_below(ra, 0x1000, 3, ALL, &r), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_below(ra, 0, 0, ALL, &r), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_below(ra, 1, 0, ALL, NULL), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_below(NULL, 1, 0, ALL, &r), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_below(ra, 0x1000, 0, 0xfff, &r), kIOReturnNoSpace);
	cr_assert(iomem_range_invariants_hold(ra));
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range, iova_pages)
{
	/* an IOVA space in page numbers ([1, 0xfffff], pages of 4 KiB) and one in bytes */
	IORangeAllocator *pg = mk(0, 0, 0, IOMEM_RANGE_CACHE | kLocking);
	IORangeAllocator *by = mk(0, 0x1000, 0, 0);
	IORangeScalar a, b;
	IORangeAllocator_deallocate(pg, 1, 0xfffff);
	IORangeAllocator_deallocate(by, 0x1000, 0xfffff000ull);
	cr_assert_eq(iomem__range_alloc_pages(pg, 3, 0, 4, 0xffff, &a), kIOReturnSuccess);
	cr_expect_eq(a % 4, 0);
	cr_expect_leq(a + 2, 0xffff);
	cr_assert_eq(iomem__range_alloc_pages(by, 3, 12, 4, 0xffffffffull, &b), kIOReturnSuccess);
	cr_expect_eq(b % 0x4000, 0);
	cr_expect_eq(IORangeAllocator_getFreeCount(by), 0xfffff000ull - 0x3000);
	cr_expect_eq(iomem__range_alloc_pages(by, 0, 12, 0, ALL, &b), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_pages(by, 1, 64, 0, ALL, &b), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_pages(by, ALL >> 11, 12, 0, ALL, &b), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_pages(by, 1, 12, 3, ALL, &b), kIOReturnBadArgument);
	cr_expect_eq(iomem__range_alloc_pages(by, 0x100000, 12, 0, ALL, &b), kIOReturnNoSpace);
	iomem__range_free_pages(pg, a, 3, 0);
	cr_assert_eq(iomem__range_alloc_pages(by, 3, 12, 4, 0xffffffffull, &a), kIOReturnSuccess);
	iomem__range_free_pages(by, a, 3, 12);
	iomem__range_free_pages(by, b, 0, 12);
	EXPECT_REPORTS(1);
	iomem__range_free_pages(by, b, 3, 12);
	cr_expect_eq(IORangeAllocator_getFreeCount(pg), 0xfffff);
	cr_expect_eq(IORangeAllocator_getFragmentCount(pg), 1);
	FRAGS(by, 0x1000, 0xffffffffull);
	IORangeAllocator_release(pg);
	IORangeAllocator_release(by);
}

/* ===================================================================== */
/* randomised model                                                        */

#define MODEL_UNITS 8192u
#define MODEL_OPS   100000u
#define MODEL_LIVE  512u

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13; x ^= x >> 7; x ^= x << 17;
	return *s = x;
}

static uint64_t model_seed(void)
{
	const char *env = getenv("IOMEM_TEST_SEED");
	uint64_t seed;
	if (env && *env)
		seed = strtoull(env, NULL, 0);
	else
		seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() ^ (uint64_t)clock();
	return seed ? seed : 1;
}

typedef struct model {
	IORangeAllocator *ra;
	uint8_t free[MODEL_UNITS];            /* 1 = free in the model */
	IORangeScalar live_s[MODEL_LIVE], live_n[MODEL_LIVE];
	unsigned nlive;
	IORangeScalar nfree, dmask;
	uint64_t rng;
	int reports;                          /* expected reports */
} model;

static bool model_range_free(const model *m, IORangeScalar s, IORangeScalar n)
{
	IORangeScalar i;
	if (s >= MODEL_UNITS || n > MODEL_UNITS - s)
		return false;
	for (i = 0; i < n; i++)
		if (!m->free[s + i])
			return false;
	return true;
}

static bool model_has_fit(const model *m, IORangeScalar n, IORangeScalar amask, IORangeScalar limit)
{
	IORangeScalar s;
	for (s = 0; s + n <= MODEL_UNITS && s + n - 1 <= limit; s = ((s + 1) + amask) & ~amask)
		if (model_range_free(m, s, n))
			return true;
	return false;
}

static void model_mark(model *m, IORangeScalar s, IORangeScalar n, uint8_t v)
{
	IORangeScalar i;
	for (i = 0; i < n; i++) {
		if (m->free[s + i] != v)
			m->nfree += v ? 1 : (IORangeScalar)-1;
		m->free[s + i] = v;
	}
}

static void model_compare(model *m, uint64_t op, uint64_t seed)
{
	static IORangeScalar pairs[2 * MODEL_UNITS];
	UInt32 n = IORangeAllocator_serialize(m->ra, pairs, MODEL_UNITS), k = 0;
	IORangeScalar u = 0;
	cr_assert(iomem_range_invariants_hold(m->ra), "invariants, op %llu seed %#llx",
	          (unsigned long long)op, (unsigned long long)seed);
	while (u < MODEL_UNITS) {
		IORangeScalar e;
		if (!m->free[u]) { u++; continue; }
		for (e = u; e + 1 < MODEL_UNITS && m->free[e + 1]; e++)
			;
		cr_assert_lt(k, n, "op %llu seed %#llx: model run [%llu, %llu] missing",
		             (unsigned long long)op, (unsigned long long)seed, (unsigned long long)u,
		             (unsigned long long)e);
		cr_assert(pairs[2 * k] == u && pairs[2 * k + 1] == e,
		          "op %llu seed %#llx: fragment %u is [%llu, %llu], model [%llu, %llu] (not coalesced?)",
		          (unsigned long long)op, (unsigned long long)seed, k, (unsigned long long)pairs[2 * k],
		          (unsigned long long)pairs[2 * k + 1], (unsigned long long)u, (unsigned long long)e);
		k++;
		u = e + 1;
	}
	cr_assert_eq(k, n, "op %llu seed %#llx: %u fragments, model %u", (unsigned long long)op,
	             (unsigned long long)seed, n, k);
}

static IORangeScalar rnd_size(model *m)
{
	uint64_t r = rng_next(&m->rng);
	switch (r % 8) {
	case 0:  return 1 + r / 8 % 256;      /* sometimes big */
	case 1:  return 1;
	default: return 1 + r / 8 % 24;
	}
}

static void run_model(IORangeScalar dalign, IOOptionBits opts, UInt32 cap)
{
	static model m;
	uint64_t seed = model_seed(), op;
	unsigned counts[8] = {0};
	/* Without the debug layer a double free into the cache is not checked
	 * (documented), so only the checked configurations get them. */
	bool opts_no_overlap = (opts & IOMEM_RANGE_CACHE) && !IOMEM__DEBUG;
	memset(&m, 0, sizeof m);
	m.rng = seed;
	m.dmask = dalign - 1;
	fprintf(stderr, "range model (align %llu, options %#x): seed %#llx (IOMEM_TEST_SEED=%#llx reproduces)\n",
	        (unsigned long long)dalign, opts, (unsigned long long)seed, (unsigned long long)seed);
	m.ra = mk(MODEL_UNITS - 1, dalign, cap, opts);
	memset(m.free, 1, sizeof m.free);
	m.nfree = MODEL_UNITS;
	for (op = 0; op < MODEL_OPS; op++) {
		uint64_t r = rng_next(&m.rng);
		unsigned kind = (unsigned)(r % 100);
		IORangeScalar res = 0;
		/* keep the live set from filling: free more when it is large */
		if (m.nlive >= MODEL_LIVE - 1 || (m.nlive > MODEL_LIVE / 2 && kind < 60))
			kind = 70;
		if (kind < 40) {                                  /* allocate */
			IORangeScalar size = rnd_size(&m), n = (size + m.dmask) & ~m.dmask, amask;
			IORangeScalar al = (r >> 8) % 4 == 0 ? (IORangeScalar)1 << ((r >> 12) % 8) : 0;
			bool ok;
			amask = al ? al - 1 : m.dmask;
			ok = IORangeAllocator_allocate(m.ra, size, &res, al);
			counts[0]++;
			if (ok) {
				cr_assert_eq(res & amask, 0, "op %llu seed %#llx: %#llx not aligned to %#llx",
				             (unsigned long long)op, (unsigned long long)seed,
				             (unsigned long long)res, (unsigned long long)(amask + 1));
				cr_assert(model_range_free(&m, res, n), "op %llu seed %#llx: allocate gave [%llu +%llu] not free",
				          (unsigned long long)op, (unsigned long long)seed, (unsigned long long)res,
				          (unsigned long long)n);
				model_mark(&m, res, n, 0);
				m.live_s[m.nlive] = res; m.live_n[m.nlive++] = n;
			} else {
				counts[1]++;
				cr_assert_not(model_has_fit(&m, n, amask, ALL), "op %llu seed %#llx: allocate(%llu, align %llu) failed but fits",
				              (unsigned long long)op, (unsigned long long)seed, (unsigned long long)size,
				              (unsigned long long)al);
			}
		} else if (kind < 45) {                           /* allocate below a limit */
			IORangeScalar size = rnd_size(&m), n = (size + m.dmask) & ~m.dmask;
			IORangeScalar limit = (r >> 8) % MODEL_UNITS;
			IOReturn st = iomem__range_alloc_below(m.ra, size, 0, limit, &res);
			counts[2]++;
			if (st == kIOReturnSuccess) {
				cr_assert_leq(res + n - 1, limit);
				cr_assert(model_range_free(&m, res, n), "op %llu seed %#llx: alloc_below not free",
				          (unsigned long long)op, (unsigned long long)seed);
				model_mark(&m, res, n, 0);
				m.live_s[m.nlive] = res; m.live_n[m.nlive++] = n;
			} else {
				cr_assert_eq(st, kIOReturnNoSpace);
				cr_assert_not(model_has_fit(&m, n, m.dmask, limit), "op %llu seed %#llx: alloc_below(%llu, limit %llu) failed but fits",
				              (unsigned long long)op, (unsigned long long)seed, (unsigned long long)n,
				              (unsigned long long)limit);
			}
		} else if (kind < 52) {                           /* allocateRange */
			IORangeScalar s = (r >> 8) % (MODEL_UNITS + 64), size = rnd_size(&m);
			IORangeScalar n = (size + m.dmask) & ~m.dmask;
			bool want = model_range_free(&m, s, n);
			counts[3]++;
			cr_assert_eq(IORangeAllocator_allocateRange(m.ra, s, size), want,
			             "op %llu seed %#llx: allocateRange(%llu, %llu) != model %d",
			             (unsigned long long)op, (unsigned long long)seed, (unsigned long long)s,
			             (unsigned long long)size, want);
			if (want) {
				model_mark(&m, s, n, 0);
				m.live_s[m.nlive] = s; m.live_n[m.nlive++] = n;
			}
		} else if (kind < 96 && m.nlive) {                /* free a live range (or part) */
			unsigned i = (unsigned)((r >> 8) % m.nlive);
			IORangeScalar s = m.live_s[i], n = m.live_n[i];
			if ((r >> 20) % 4 == 0 && n > dalign) {       /* free the first part only */
				IORangeScalar part = (((r >> 24) % (n / dalign - 0) ) + 0) * dalign;
				if (part == 0) part = dalign;
				if (part < n) {
					IORangeAllocator_deallocate(m.ra, s, part);
					model_mark(&m, s, part, 1);
					m.live_s[i] = s + part; m.live_n[i] = n - part;
					counts[4]++;
					goto check;
				}
			}
			IORangeAllocator_deallocate(m.ra, s, n);
			model_mark(&m, s, n, 1);
			m.live_s[i] = m.live_s[--m.nlive]; m.live_n[i] = m.live_n[m.nlive];
			counts[5]++;
		} else if (kind >= 96 && !(opts_no_overlap)) {    /* double/overlapping free */
			IORangeScalar s = (r >> 8) % MODEL_UNITS, size = rnd_size(&m), n, u;
			unsigned i;
			bool overlap = false;
			n = (size + m.dmask) & ~m.dmask;
			if (s + n > MODEL_UNITS)
				s = MODEL_UNITS - n;
			for (u = 0; u < n; u++)
				overlap |= m.free[s + u];
			/* drop the live ranges it frees (they overlap [s, s+n)) */
			for (i = 0; i < m.nlive;) {
				if (m.live_s[i] < s + n && s < m.live_s[i] + m.live_n[i]) {
					m.live_s[i] = m.live_s[--m.nlive]; m.live_n[i] = m.live_n[m.nlive];
					/* the parts outside [s, s+n) stay allocated and unreachable: free them too */
				} else {
					i++;
				}
			}
			IORangeAllocator_deallocate(m.ra, s, size);
			model_mark(&m, s, n, 1);
			if (overlap)
				m.reports++;
			counts[6]++;
		}
	check:
		cr_assert_eq(IORangeAllocator_getFreeCount(m.ra), m.nfree, "op %llu seed %#llx: free count %llu, model %llu",
		             (unsigned long long)op, (unsigned long long)seed,
		             (unsigned long long)IORangeAllocator_getFreeCount(m.ra), (unsigned long long)m.nfree);
		if (op % 2048 == 0)
			model_compare(&m, op, seed);
#if IOMEM__DEBUG
		cr_assert_eq(iomem_test_panic_count, m.reports, "op %llu seed %#llx: %d reports, expected %d (last: %s)",
		             (unsigned long long)op, (unsigned long long)seed, iomem_test_panic_count, m.reports,
		             iomem_test_panic_msg);
#endif
	}
	model_compare(&m, op, seed);
	fprintf(stderr, "range model: %llu ops: %u alloc (%u failed), %u below-limit, %u allocateRange, "
	        "%u partial + %u whole frees, %u overlapping frees; %u fragments at the end\n",
	        (unsigned long long)op, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
	        counts[6], IORangeAllocator_getFragmentCount(m.ra));
	IORangeAllocator_release(m.ra);
}

IOMEM_TEST(range, model_align_1)          { run_model(1, 0, 0); }
IOMEM_TEST(range, model_align_4)          { run_model(4, kLocking, 0); }
IOMEM_TEST(range, model_align_4_cache)    { run_model(4, IOMEM_RANGE_CACHE, 0); }
IOMEM_TEST(range, model_align_1_cache)    { run_model(1, IOMEM_RANGE_CACHE | kLocking, 0); }

/* ===================================================================== */
/* threads                                                                 */

#define STRESS_UNITS   65536u
#define STRESS_THREADS 4u
#define STRESS_OPS     40000u

typedef struct stress_arg {
	IORangeAllocator *ra;
	uint8_t *owner;                        /* per unit: 0 or the owning thread + 1 */
	unsigned id;
	int errors;
} stress_arg;

static void *stress_thread(void *p)
{
	stress_arg *a = (stress_arg *)p;
	IORangeScalar ls[64], ln[64];
	unsigned nlive = 0, op;
	uint64_t rng = 0x1234567ull * (a->id + 1);
	uint8_t me = (uint8_t)(a->id + 1);
	for (op = 0; op < STRESS_OPS; op++) {
		uint64_t r = rng_next(&rng);
		if (nlive < 64 && (r % 2 == 0 || nlive == 0)) {
			IORangeScalar n = 1 + r / 2 % 32, s, u;
			bool ok;
			if (r / 64 % 8 == 0)
				ok = iomem__range_alloc_below(a->ra, n, 0, STRESS_UNITS / 2 - 1, &s) == kIOReturnSuccess;
			else if (r / 64 % 8 == 1)
				ok = IORangeAllocator_allocateRange(a->ra, s = r / 512 % (STRESS_UNITS - 32), n);
			else
				ok = IORangeAllocator_allocate(a->ra, n, &s, 0);
			if (!ok)
				continue;
			for (u = s; u < s + n; u++) {
				uint8_t zero = 0;
				if (!__atomic_compare_exchange_n(&a->owner[u], &zero, me, false, __ATOMIC_ACQ_REL,
				                                  __ATOMIC_ACQUIRE))
					a->errors++;                       /* handed out twice */
			}
			ls[nlive] = s; ln[nlive++] = n;
		} else if (nlive) {
			unsigned i = (unsigned)(r / 2 % nlive);
			IORangeScalar u;
			for (u = ls[i]; u < ls[i] + ln[i]; u++)
				__atomic_store_n(&a->owner[u], 0, __ATOMIC_RELEASE);
			IORangeAllocator_deallocate(a->ra, ls[i], ln[i]);
			ls[i] = ls[--nlive]; ln[i] = ln[nlive];
		}
		if (op % 4096 == 0)
			IORangeAllocator_getFreeCount(a->ra);
		if (op % 8192 == 0)
			IORangeAllocator_getFragmentCount(a->ra);      /* flushes a cache */
	}
	while (nlive) {
		IORangeScalar u;
		nlive--;
		for (u = ls[nlive]; u < ls[nlive] + ln[nlive]; u++)
			__atomic_store_n(&a->owner[u], 0, __ATOMIC_RELEASE);
		IORangeAllocator_deallocate(a->ra, ls[nlive], ln[nlive]);
	}
	return NULL;
}

static void run_stress(IOOptionBits opts)
{
	IORangeAllocator *ra = mk(STRESS_UNITS - 1, 1, 0, kLocking | opts);
	uint8_t *owner = (uint8_t *)calloc(STRESS_UNITS, 1);
	pthread_t th[STRESS_THREADS];
	stress_arg args[STRESS_THREADS];
	unsigned i;
	cr_assert_not_null(owner);
	for (i = 0; i < STRESS_THREADS; i++) {
		args[i].ra = ra; args[i].owner = owner; args[i].id = i; args[i].errors = 0;
		cr_assert_eq(pthread_create(&th[i], NULL, stress_thread, &args[i]), 0);
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(args[i].errors, 0, "thread %u saw %d units handed out twice", i, args[i].errors);
	}
	FRAGS(ra, 0, STRESS_UNITS - 1);
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), STRESS_UNITS);
	IORangeAllocator_release(ra);
	free(owner);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(range, threads_share_a_k_locking_allocator)       { run_stress(0); }
IOMEM_TEST(range, threads_share_a_cached_k_locking_allocator) { run_stress(IOMEM_RANGE_CACHE); }

/* ===================================================================== */
/* internals                                                               */

IOMEM_TEST(range, bit_scans_match_a_loop)
{
	unsigned i, j;
	for (i = 0; i < 64; i++) {
		uint64_t x = (uint64_t)1 << i;
		cr_assert_eq(iomem__ctz64(x), i);
		cr_assert_eq(iomem__flog2(x), i);
		for (j = 0; j < i; j++) {
			cr_assert_eq(iomem__ctz64(x | ((uint64_t)1 << j) | ((uint64_t)1 << 63)), j);
			cr_assert_eq(iomem__flog2(x | ((uint64_t)1 << j)), i);
		}
	}
	cr_assert_eq(iomem__flog2(~(uint64_t)0), 63);
	cr_assert_eq(iomem__range_bin(0, ALL), 63);
	cr_assert_eq(iomem__range_bin(5, 5), 0);
	cr_assert_eq(iomem__range_bin(0, 7), 3);
}

IOMEM_TEST(range, many_fragments_keep_the_tree_balanced)
{
	IORangeAllocator *ra = mk(0, 0, 0, 0);
	unsigned i;
	iomem_range_stats st;
	for (i = 0; i < 20000; i++)                                  /* ascending inserts */
		IORangeAllocator_deallocate(ra, 4 * (IORangeScalar)i, 2);
	cr_assert(iomem_range_invariants_hold(ra));
	for (i = 0; i < 20000; i += 2)                               /* merge every other gap */
		IORangeAllocator_deallocate(ra, 4 * (IORangeScalar)i + 2, 2);
	cr_assert(iomem_range_invariants_hold(ra));
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 10000);
	for (i = 0; i < 20000; i += 2)                               /* take the fragments back out */
		cr_assert(IORangeAllocator_allocateRange(ra, 4 * (IORangeScalar)i, 6));
	cr_assert(iomem_range_invariants_hold(ra));
	cr_expect_eq(IORangeAllocator_getFragmentCount(ra), 0);
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_leq(st.footprint, sizeof(IORangeAllocator) + (vm_size_t)(st.capacity + 1) * 40);
	IORangeAllocator_release(ra);
}
