/* SPDX-License-Identifier: MIT */
/* tests/test_range_more.c - IORangeAllocator's self-check
 * (iomem_range_invariants_hold) must catch each kind of corruption: every
 * field it checks is damaged in turn on a live allocator (tree links and
 * colours, order, size classes and their lists, counters, the unused-slot
 * chain, the IOMEM_RANGE_CACHE cache), the check must say false, and true
 * again once the field is restored. Also: the statistics of an allocator
 * whose free space is all 2^64 units, and NULL arguments. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <criterion/criterion.h>

#define ALL (~(IORangeScalar)0)

/* An allocator over [0, 0xfffff], quantum 16, with @frags free fragments
 * (every other 0x100 block taken). */
static IORangeAllocator *fragmented(unsigned frags, IOOptionBits opt)
{
	IORangeAllocator *ra = IORangeAllocator_withRange(0xfffff, 16, 4, opt);
	cr_assert_not_null(ra);
	for (unsigned i = 0; i + 1 < frags; i++)
		cr_assert(IORangeAllocator_allocateRange(ra, 0x100 + (IORangeScalar)i * 0x200, 0x100));
	cr_assert_eq(IORangeAllocator_getFragmentCount(ra), frags);
	cr_assert(iomem_range_invariants_hold(ra));
	return ra;
}

/* Damage, check, repair, check: a statement pair around the check. */
#define EXPECT_CAUGHT(ra, what, damage, repair)                                                   \
	do {                                                                                       \
		damage;                                                                            \
		cr_expect(!iomem_range_invariants_hold(ra), "not caught: %s", what);               \
		repair;                                                                            \
		cr_assert(iomem_range_invariants_hold(ra), "repair of \"%s\" incomplete", what);    \
	} while (0)

static uint32_t first_in_order(const IORangeAllocator *ra)
{
	uint32_t x = ra->root;
	while (ra->nodes[x].kid[0])
		x = ra->nodes[x].kid[0];
	return x;
}

IOMEM_TEST(range_more, self_check_catches_tree_damage)
{
	IORangeAllocator *ra = fragmented(12, 0);
	iomem__range_node *n = ra->nodes;
	uint32_t r = ra->root, x = first_in_order(ra), y, k;
	IORangeScalar v;
	uint8_t b;
	cr_assert_neq(r, 0);
	cr_assert_neq(n[r].kid[0], 0, "12 fragments: the root has a left subtree");

	EXPECT_CAUGHT(ra, "nil node red", n[0].red = 1, n[0].red = 0);
	EXPECT_CAUGHT(ra, "red root", n[r].red = 1, n[r].red = 0);
	EXPECT_CAUGHT(ra, "root with a parent", n[r].parent = x, n[r].parent = 0);
	/* a fragment whose end is before its start */
	v = n[x].start;
	EXPECT_CAUGHT(ra, "start > end", n[x].start = n[x].end + 1, n[x].start = v);
	/* the next fragment overlapping (or touching) the first */
	y = iomem__range_next(n, x);
	cr_assert_neq(y, 0);
	v = n[y].start;
	EXPECT_CAUGHT(ra, "not coalesced", n[y].start = n[x].end + 1, n[y].start = v);
	b = n[x].bin;
	EXPECT_CAUGHT(ra, "size class", n[x].bin = (uint8_t)(b + 1), n[x].bin = b);
	b = n[x].odd;
	EXPECT_CAUGHT(ra, "odd flag", n[x].odd = (uint8_t)!b, n[x].odd = b);
	/* a child that names no parent (the walk climbs parent links: a cycle
	 * would not end, a cut one does; the root's check comes first) */
	k = n[r].kid[1];
	cr_assert_neq(k, 0);
	EXPECT_CAUGHT(ra, "child's parent link", n[k].parent = 0, n[k].parent = r);
	/* colours: a red node made black changes the black height of its
	 * paths; a red child under a red node */
	for (y = 1; y <= ra->capacity && !(n[y].red && n[y].parent); y++)
		;
	cr_assert_leq(y, ra->capacity, "12 fragments: some node is red");
	EXPECT_CAUGHT(ra, "black height", n[y].red = 0, n[y].red = 1);
	/* a red node whose (black) parent is not the root: that parent made red */
	for (y = 1; y <= ra->capacity && !(n[y].red && n[y].parent && n[n[y].parent].parent); y++)
		;
	cr_assert_leq(y, ra->capacity, "12 fragments: a red node two levels down");
	k = n[y].parent;
	cr_assert(!n[k].red);
	EXPECT_CAUGHT(ra, "red under red", n[k].red = 1, n[k].red = 0);
	cr_assert(iomem_range_invariants_hold(ra));
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range_more, self_check_catches_list_and_counter_damage)
{
	IORangeAllocator *ra = fragmented(6, 0);
	iomem__range_node *n = ra->nodes;
	uint32_t x = first_in_order(ra), u;
	uint64_t bm = ra->binmap;
	IORangeScalar units = ra->units;
	unsigned b = n[x].bin;

	EXPECT_CAUGHT(ra, "fragment count", ra->count++, ra->count--);
	EXPECT_CAUGHT(ra, "odd count", ra->odd++, ra->odd--);
	EXPECT_CAUGHT(ra, "free units", ra->units = units + 16, ra->units = units);
	u = ra->capacity;
	EXPECT_CAUGHT(ra, "capacity below the count", ra->capacity = ra->count - 1, ra->capacity = u);
	cr_assert(iomem_range_invariants_hold(ra));
	/* the class bitmap: a class with a list shown empty, an empty one shown full */
	EXPECT_CAUGHT(ra, "bitmap bit cleared", ra->binmap = bm & ~((uint64_t)1 << b), ra->binmap = bm);
	for (b = 0; b < 64 && (bm & ((uint64_t)1 << b)); b++)
		;
	cr_assert_lt(b, 64);
	EXPECT_CAUGHT(ra, "bitmap bit set", ra->binmap = bm | ((uint64_t)1 << b), ra->binmap = bm);
	/* a list link */
	u = n[x].prev;
	EXPECT_CAUGHT(ra, "class list prev link", n[x].prev = x, n[x].prev = u);
	/* a class list cut short (consistently: the rest of it looks fine) */
	for (b = 0; b < 64 && !(ra->head[b] && n[ra->head[b]].next); b++)
		;
	cr_assert_lt(b, 64, "a size class holds two fragments");
	x = ra->head[b];
	u = n[x].next;
	EXPECT_CAUGHT(ra, "class list short", (ra->head[b] = u, n[u].prev = 0), (ra->head[b] = x, n[u].prev = x));
	/* the unused-slot chain: cut, or running past the capacity */
	u = ra->unused;
	cr_assert_neq(u, 0, "capacity grew by halves: slots are unused");
	EXPECT_CAUGHT(ra, "unused chain cut", ra->unused = 0, ra->unused = u);
	EXPECT_CAUGHT(ra, "unused slot out of range", ra->unused = ra->capacity + 1, ra->unused = u);
	IORangeAllocator_release(ra);
	cr_expect(iomem_range_invariants_hold(NULL), "NULL: true");
}

IOMEM_TEST(range_more, self_check_catches_cache_damage)
{
	IORangeAllocator *ra = fragmented(4, IOMEM_RANGE_CACHE);
	IORangeScalar r[3];
	iomem_range_stats st;
	/* two one-quantum ranges go back into the cache */
	for (int i = 0; i < 3; i++)
		cr_assert(IORangeAllocator_allocate(ra, 16, &r[i], 0));
	IORangeAllocator_deallocate(ra, r[0], 16);
	IORangeAllocator_deallocate(ra, r[1], 16);
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_assert_geq(st.cached_ranges, 1, "a cached range to damage");
	cr_assert(iomem_range_invariants_hold(ra));
	iomem__range_cache *c = ra->cache;
	unsigned k;
	for (k = 0; k < IOMEM_RANGE_CACHE_CLASSES && c->count[k] == 0; k++)
		;
	cr_assert_lt(k, IOMEM_RANGE_CACHE_CLASSES);
	uint8_t cnt = c->count[k];
	IORangeScalar s = c->start[k][0];
	uint32_t gate = ra->gate, reserve = ra->reserve;
	EXPECT_CAUGHT(ra, "cache deeper than its depth", c->count[k] = IOMEM_RANGE_CACHE_DEPTH + 1, c->count[k] = cnt);
	EXPECT_CAUGHT(ra, "cached range misaligned", c->start[k][0] = s + 1, c->start[k][0] = s);
	EXPECT_CAUGHT(ra, "cached range also free in the tree", c->start[k][0] = 0x10, c->start[k][0] = s);
	EXPECT_CAUGHT(ra, "cache gate", ra->gate = !gate, ra->gate = gate);
	EXPECT_CAUGHT(ra, "cache reserve", ra->reserve = 0, ra->reserve = reserve);
	IORangeAllocator_deallocate(ra, r[2], 16);
	IORangeAllocator_release(ra);
}

IOMEM_TEST(range_more, stats_of_a_wholly_free_64_bit_space)
{
	IORangeAllocator *ra = IORangeAllocator_withRange(ALL, 0, 0, 0);
	iomem_range_stats st;
	cr_assert_not_null(ra);
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(st.fragments, 1);
	cr_expect_eq(st.free_units, ALL, "2^64 units free: saturated, not 0");
	cr_expect_eq(IORangeAllocator_getFreeCount(ra), ALL);
	IORangeScalar r;
	cr_assert(IORangeAllocator_allocate(ra, 1, &r, 0));
	cr_assert_eq(iomem_range_get_stats(ra, &st), kIOReturnSuccess);
	cr_expect_eq(st.free_units, ALL, "2^64 - 1 units");
	IORangeAllocator_deallocate(ra, r, 1);
	/* NULL arguments: nothing happens */
	IORangeAllocator_setFragmentCapacityIncrement(NULL, 8);
	cr_expect_eq(iomem_range_get_stats(NULL, &st), kIOReturnBadArgument);
	cr_expect_eq(iomem_range_get_stats(ra, NULL), kIOReturnBadArgument);
	IORangeAllocator_release(ra);
}
