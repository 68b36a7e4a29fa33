/* SPDX-License-Identifier: MIT */
/*
 * t_heap.c - iomem's O(1) heap (backends/iomem_heap.h, half-fit) on its own,
 * over private arenas: bad arenas, the per-block metadata, then for BOTH fit
 * policies (power of two, exact): a random stress test (alloc / aligned
 * alloc / free, every live block's contents, the block-size bound G3, the
 * free front gap of aligned blocks and the invariants checker verified as it
 * goes, every NULL allowed by G1/G2), full coalescing, exhaustion, the
 * census promise and G1/G2 on adversarial hole patterns, and refused frees
 * (foreign, interior, double, overwritten header). The bounds are computed
 * here from their definitions (not with the heap's own helpers).
 */
#include "bmt.h"

static uint64_t arena_a[96 * 1024 / 8];
static uint64_t arena_b[24 * 1024 / 8];
static uint64_t tiny[5][256 / 8];   /* 64-bit: two 24-byte blocks need a 128-byte list */
static iomem__heap h;

#define NSLOT 320
static struct slot { unsigned char *p; uint32_t size; uint8_t tag; } slot[NSLOT];

static bool slot_intact(const struct slot *s)
{
	return bmt_all_bytes(s->p, s->size, s->tag);
}

static bool all_slots_intact(void)
{
	unsigned i;
	for (i = 0; i < NSLOT; i++)
		if (slot[i].p != NULL && !slot_intact(&slot[i]))
			return false;
	return true;
}

static void free_all(void)
{
	unsigned i;
	for (i = 0; i < NSLOT; i++)
		if (slot[i].p != NULL) {
			iomem__heap_free(&h, slot[i].p);
			slot[i].p = NULL;
		}
}

/* The quantities of the heap's WORST-CASE FRAGMENTATION section, written
 * out here: need(s), P(n), the policy's block size b(s). */
static size_t need_of(size_t s)
{
	size_t n = (s + IOMEM__HEAP_HDR + IOMEM_HEAP_ALIGN - 1) & ~(IOMEM_HEAP_ALIGN - 1);
	return n < IOMEM__HEAP_MIN_BLOCK ? IOMEM__HEAP_MIN_BLOCK : n;
}

static size_t pow2_up(size_t n)
{
	size_t p = 1;
	while (p < n)
		p *= 2;
	return p;
}

static size_t pow2_down(size_t n)      /* n > 0 */
{
	size_t p = 1;
	while (p <= n / 2)
		p *= 2;
	return p;
}

static size_t block_of(const iomem__heap *hp, size_t s)
{
	return hp->exact_fit ? need_of(s) : pow2_up(need_of(s));
}

/* G1: alloc(s) must succeed when some free block >= P(need(s)). */
static bool g1_promised(size_t largest_free, size_t s)
{
	return largest_free >= pow2_up(need_of(s));
}

/* G2 (align > 8): ... when some free block >= P(b(s) + minimum block + a - 8). */
static bool g2_promised(const iomem__heap *hp, size_t largest_free, size_t s, size_t a)
{
	if (a <= IOMEM_HEAP_ALIGN)
		return g1_promised(largest_free, s);
	return largest_free >= pow2_up(block_of(hp, s) + IOMEM__HEAP_MIN_BLOCK + a - IOMEM_HEAP_ALIGN);
}

/* G3 for live block @p of request @s (alignment @a, 0 = none): it occupies
 * b(s) .. b(s) + minimum block - 8 bytes, its header carries no flag, and
 * the block physically before it is used or - an aligned block's front gap
 * - a free block of minimum block .. minimum block + a - 8 bytes ending at
 * it. Reads the header layout the heap documents (DESIGN). */
static bool g3_holds(const iomem__heap *hp, const void *p, size_t s, size_t a)
{
	const size_t *hdr = (const size_t *)p - 2;
	size_t size = hdr[1], b = block_of(hp, s);
	const size_t *prev = (const size_t *)hdr[0];
	if (size & (IOMEM_HEAP_ALIGN - 1))
		return false;
	if (size < b || size > b + IOMEM__HEAP_MIN_BLOCK - IOMEM_HEAP_ALIGN ||
	    iomem__heap_usable_size(hp, p) != size - IOMEM__HEAP_HDR)
		return false;
	if (prev != NULL && (prev[1] & 1u)) {      /* right after the allocation */
		size_t gap = prev[1] - 1u;
		if (a <= IOMEM_HEAP_ALIGN)
			return false;                       /* taken from a free block: its neighbour is used (G4) */
		return gap >= IOMEM__HEAP_MIN_BLOCK && gap <= IOMEM__HEAP_MIN_BLOCK + a - IOMEM_HEAP_ALIGN &&
		       (const char *)prev + gap == (const char *)hdr;
	}
	return true;
}

/* The heap over arena_a and arena_b, empty, with the given policy. */
static bool heap_fresh(bool exact)
{
	bool ok;
	iomem__heap_init(&h);
	h.exact_fit = exact;
	ok = iomem__heap_add_arena(&h, arena_a, sizeof arena_a);
	ok &= iomem__heap_add_arena(&h, arena_b, sizeof arena_b);
	return ok;
}

/* A check's name, per policy (the two strings are literals). */
#define PN(text) (h.exact_fit ? "heap, exact fit: " text : "heap, power of two: " text)

static void test_arenas(void)
{
	iomem__heap h2;
	bool ok;
	iomem__heap_init(&h);
	ok = !iomem__heap_add_arena(&h, NULL, 4096);
	ok &= !iomem__heap_add_arena(&h, (char *)arena_a + 4, 4096);
	ok &= !iomem__heap_add_arena(&h, arena_a, 32);
	BMT_OK(ok && h.diag.arenas == 0, "heap: NULL, misaligned, too small arenas refused");
	ok = iomem__heap_add_arena(&h, arena_a, sizeof arena_a);
	ok &= !iomem__heap_add_arena(&h, (char *)arena_a + 1024, 4096);
	ok &= !iomem__heap_add_arena(&h, arena_a, sizeof arena_a);
	ok &= iomem__heap_add_arena(&h, arena_b, sizeof arena_b);
	BMT_OK(ok && h.diag.arenas == 2 && iomem__heap_check(&h, NULL), "heap: overlapping arena refused, two arenas added");

	iomem__heap_init(&h2);
	ok = true;
	for (unsigned i = 0; i < 4; i++)
		ok &= iomem__heap_add_arena(&h2, tiny[i], sizeof tiny[i]);
	ok &= !iomem__heap_add_arena(&h2, tiny[4], sizeof tiny[4]);
	BMT_OK(ok && h2.diag.arenas == IOMEM_HEAP_MAX_ARENAS && iomem__heap_check(&h2, NULL),
	       "heap: a fifth arena is refused (IOMEM_HEAP_MAX_ARENAS = 4)");
}

static void test_overhead(void)
{
	unsigned char *p1, *p2, *q1, *q2;
	iomem__heap h3;
	iomem__heap_init(&h3);
	h3.exact_fit = true;
	iomem__heap_add_arena(&h3, tiny[0], sizeof tiny[0]);
	p1 = (unsigned char *)iomem__heap_alloc(&h3, 24);
	p2 = (unsigned char *)iomem__heap_alloc(&h3, 24);
	bmt_diag_u("heap: header bytes per block", IOMEM__HEAP_HDR);
	bmt_diag_u("heap: exact fit: distance between two 24-byte blocks", (uint64_t)(p2 - p1));
	BMT_OK(p1 != NULL && p2 != NULL && (size_t)(p2 - p1) - 24 == IOMEM__HEAP_HDR &&
	       (sizeof(void *) > 4 || IOMEM__HEAP_HDR <= 16),
	       "heap: exact fit: metadata per block = the header (8 bytes on 32-bit, <= 16 required)");
	iomem__heap_init(&h3);
	iomem__heap_add_arena(&h3, tiny[0], sizeof tiny[0]);
	q1 = (unsigned char *)iomem__heap_alloc(&h3, 24);
	q2 = (unsigned char *)iomem__heap_alloc(&h3, 24);
	bmt_diag_u("heap: power of two: distance between two 24-byte blocks", (uint64_t)(q2 - q1));
	BMT_OK(!h3.exact_fit && q1 != NULL && q2 != NULL && (size_t)(q2 - q1) == pow2_up(24 + IOMEM__HEAP_HDR),
	       "heap: power of two is the default: a block is request + header rounded up to a power of two");
	BMT_OK(iomem__heap_request_need(24) == need_of(24) && iomem__heap_round_list(need_of(24)) == pow2_up(need_of(24)) &&
	       iomem__heap_round_list(4096 + IOMEM__HEAP_HDR) == 8192 && iomem__heap_round_list(4096) == 4096,
	       "heap: request_need / round_list match need(s) / P(n)");
}

/* A 4 KiB request: 4 KiB + header in exact mode, 8 KiB in power of two
 * (diag.allocated); both give the block back whole. */
static void test_policy_sizes(void)
{
	void *p;
	size_t before = h.diag.allocated;
	p = iomem__heap_alloc(&h, 4096);
	BMT_OK(p != NULL && h.diag.allocated - before == (h.exact_fit ? 4096 + IOMEM__HEAP_HDR : 8192) &&
	       iomem__heap_usable_size(&h, p) == (h.exact_fit ? 4096 : 8192 - IOMEM__HEAP_HDR),
	       PN("a 4 KiB block takes 4 KiB + header (exact) / 8 KiB (power of two)"));
	iomem__heap_free(&h, p);
	p = iomem__heap_alloc_aligned(&h, 4096, 4096);
	BMT_OK(p != NULL && ((uintptr_t)p & 4095) == 0 &&
	       h.diag.allocated - before == (h.exact_fit ? 4096 + IOMEM__HEAP_HDR : 8192) &&
	       g3_holds(&h, p, 4096, 4096),
	       PN("a page-aligned 4 KiB block: the same size, its front gap a free block"));
	iomem__heap_free(&h, p);
	BMT_OK(h.diag.allocated == before && iomem__heap_check(&h, NULL), PN("... both freed whole"));
}

static void test_stress(void)
{
	enum { OPS = 40000, CHECK_EVERY = 2000 };
	uint32_t seed = h.exact_fit ? 0x2468ace1u : 0x12345678u;
	unsigned n, ooms = 0, aligned = 0, g_broken = 0, g3_broken = 0, census_broken = 0, checks_ok = 0, checks = 0;
	bool contents = true, align_ok = true, frees_ok = true;
	iomem_heap_census c;

	for (n = 0; n < OPS; n++) {
		uint32_t r = bmt_rand(&seed);
		struct slot *s = &slot[r % NSLOT];
		if (s->p != NULL) {
			contents &= slot_intact(s);
			frees_ok &= iomem__heap_free(&h, s->p);
			s->p = NULL;
		} else {
			uint32_t k = (r >> 9) % 100, size, align = 0;
			size = k < 70 ? 1 + (r >> 16) % 256 : k < 95 ? 257 + (r >> 16) % 3840 : 4097 + (r >> 16) % 12288;
			if (((r >> 12) & 3) == 0)
				align = 1u << (4 + (r >> 20) % 9);        /* 16 .. 4096 */
			s->p = (unsigned char *)(align ? iomem__heap_alloc_aligned(&h, size, align)
			                               : iomem__heap_alloc(&h, size));
			if (s->p == NULL) {
				ooms++;
				iomem__heap_check(&h, &c);
				if (g2_promised(&h, c.largest_free, size, align))
					g_broken++;
				if (c.largest_free >= IOMEM__HEAP_MIN_BLOCK &&
				    c.largest_alloc + IOMEM__HEAP_HDR != pow2_down(c.largest_free))
					census_broken++;
			} else {
				aligned += align != 0;
				align_ok &= ((uintptr_t)s->p & (IOMEM_HEAP_ALIGN - 1)) == 0 &&
				            (align == 0 || ((uintptr_t)s->p & (align - 1)) == 0) &&
				            iomem__heap_usable_size(&h, s->p) >= size;
				g3_broken += !g3_holds(&h, s->p, size, align);
				s->size = size;
				s->tag = (uint8_t)(r >> 24);
				bmt_fill(s->p, size, s->tag);
			}
		}
		if (n % CHECK_EVERY == CHECK_EVERY - 1) {
			bool inv = iomem__heap_check(&h, NULL), live = all_slots_intact();
			checks++;
			checks_ok += inv && live;
			if (!inv || !live) {
				bmt_diag_u("heap stress: check failed at operation", n);
				bmt_diag_u("heap stress: ... invariants held", inv);
			}
		}
	}
	bmt_diag_u(h.exact_fit ? "heap stress, exact fit: operations" : "heap stress, power of two: operations", OPS);
	bmt_diag_u("heap stress: aligned allocations", aligned);
	bmt_diag_u("heap stress: allocations that found no block", ooms);
	bmt_diag_u("heap stress: peak allocated bytes", h.diag.peak_allocated);
	bmt_diag_u("heap stress: capacity", h.diag.capacity);
	BMT_OK(contents && frees_ok, PN("stress: every block kept its contents until freed; every free accepted"));
	BMT_OK(align_ok, PN("stress: every block aligned as asked, usable size >= request"));
	BMT_OK(g3_broken == 0, PN("stress: G3 - every block b(s) .. b(s) + minimum block - 8, an aligned front gap free"));
	BMT_OK(checks == checks_ok && checks == OPS / CHECK_EVERY,
	       PN("stress: invariants checker (G4 included) + all live contents verified every 2000 operations"));
	BMT_OK(ooms > 0 && g_broken == 0, PN("stress: every NULL was allowed by G1/G2 (no free block of the bound's size)"));
	BMT_OK(census_broken == 0, PN("stress: at every NULL, largest_alloc + header = the largest power of two <= largest_free"));
	free_all();
	BMT_OK(iomem__heap_check(&h, &c) && c.free_blocks == 2 && c.free_bytes == h.diag.capacity &&
	       c.used_blocks == 0 && h.diag.allocated == 0,
	       PN("stress: all freed -> one free block per arena (full coalescing)"));
}

static void test_exhaustion(void)
{
	unsigned i = 0;
	iomem_heap_census c;
	size_t oom0 = h.diag.oom_count;
	while (i < NSLOT && (slot[i].p = (unsigned char *)iomem__heap_alloc(&h, 1000)) != NULL) {
		slot[i].size = 1000;
		slot[i].tag = (uint8_t)i;
		bmt_fill(slot[i].p, 1000, slot[i].tag);
		i++;
	}
	BMT_OK(i > 0 && i < NSLOT && h.diag.oom_count == oom0 + 1, PN("exhausted -> NULL, counted"));
	BMT_OK(iomem__heap_alloc_aligned(&h, 1000, 64) == NULL && iomem__heap_check(&h, &c) &&
	       all_slots_intact(), PN("exhausted heap intact, every block's contents kept"));
	BMT_OK(iomem__heap_alloc_aligned(&h, 16, 48) == NULL && iomem__heap_alloc_aligned(&h, 16, 24) == NULL,
	       PN("alignment not a power of two -> NULL"));
	BMT_OK(iomem__heap_alloc(&h, IOMEM__HEAP_MAX_REQUEST + 1) == NULL &&
	       iomem__heap_alloc(&h, ~(size_t)0) == NULL && iomem__heap_alloc_aligned(&h, ~(size_t)0, 64) == NULL,
	       PN("requests above IOMEM__HEAP_MAX_REQUEST -> NULL"));
	free_all();
}

/* Adversarial hole patterns: fill the heap with blocks of mixed sizes, free
 * a random half, then check the census promise (the largest request sure to
 * succeed is the largest power of two in the largest hole, minus the
 * header: at least half of the hole) and that it and the aligned requests
 * G2 promises succeed. */
static void test_fragmentation(void)
{
	static const uint32_t sizes[] = { 24, 200, 1000, 3000, 64, 520 };
	uint32_t seed = 0x9e3779b9u;
	unsigned round, promised = 0, kept = 0, census_ok = 0, g2_tested = 0, g2_kept = 0;
	size_t worst_waste_pct = 0;

	for (round = 0; round < 24; round++) {
		unsigned i, n = 0;
		iomem_heap_census c;
		void *p;
		size_t s, a;
		for (i = 0; i < NSLOT; i++) {
			uint32_t size = sizes[(i + round) % 6] + (bmt_rand(&seed) % 64);
			slot[i].p = (unsigned char *)iomem__heap_alloc(&h, size);
			if (slot[i].p == NULL)
				break;
			slot[i].size = size;
			slot[i].tag = (uint8_t)(i * 7);
			bmt_fill(slot[i].p, size, slot[i].tag);
			n++;
		}
		for (i = 0; i < n; i++)
			if (bmt_rand(&seed) & 1) {
				iomem__heap_free(&h, slot[i].p);
				slot[i].p = NULL;
			}
		iomem__heap_check(&h, &c);
		/* the census's promise: the largest power of two in the largest hole */
		census_ok += c.largest_free > 0 && c.largest_alloc + IOMEM__HEAP_HDR == pow2_down(c.largest_free) &&
		             2 * (c.largest_alloc + IOMEM__HEAP_HDR) > c.largest_free;
		promised++;
		p = iomem__heap_alloc(&h, c.largest_alloc);
		kept += p != NULL && g1_promised(c.largest_free, c.largest_alloc);
		iomem__heap_free(&h, p);
		/* how much of the largest hole the promise may leave unused, in percent */
		if (c.largest_free > 0) {
			size_t waste = (c.largest_free - need_of(c.largest_alloc)) * 100 / c.largest_free;
			if (waste > worst_waste_pct)
				worst_waste_pct = waste;
		}
		/* G2 for several alignments: the largest size the bound promises */
		for (a = 16; a <= 4096; a *= 4)
			for (s = c.largest_alloc; s > 8; s = s - s / 4 - 8) {
				if (!g2_promised(&h, c.largest_free, s, a))
					continue;
				g2_tested++;
				p = iomem__heap_alloc_aligned(&h, s, a);
				g2_kept += p != NULL && ((uintptr_t)p & (a - 1)) == 0 && g3_holds(&h, p, s, a);
				iomem__heap_free(&h, p);
				break;
			}
		if (!iomem__heap_check(&h, NULL) || !all_slots_intact())
			break;
		free_all();
	}
	bmt_diag_u(h.exact_fit ? "heap fragmentation, exact fit: rounds" : "heap fragmentation, power of two: rounds", round);
	bmt_diag_u("heap fragmentation: worst share of the largest hole the promise leaves (%)", worst_waste_pct);
	BMT_OK(round == 24 && census_ok == 24,
	       PN("fragmentation: largest_alloc + header = the largest power of two <= the largest hole (> half of it)"));
	BMT_OK(round == 24 && promised == kept, PN("fragmentation: G1 - the census's largest request succeeds in every hole pattern"));
	BMT_OK(g2_tested >= 24 && g2_tested == g2_kept, PN("fragmentation: G2 - aligned requests the bound promises succeed"));
	BMT_OK(worst_waste_pct < 50, PN("fragmentation: the promise leaves less than half of the largest hole"));
}

static void test_misuse(void)
{
	unsigned char *a = (unsigned char *)iomem__heap_alloc(&h, 64);
	unsigned char *b = (unsigned char *)iomem__heap_alloc(&h, 64);
	unsigned char *c = (unsigned char *)iomem__heap_alloc(&h, 64);
	static uint64_t outside[8];
	size_t rejected = h.diag.rejected_frees, saved;
	bool ok;

	bmt_fill(a, 64, 0xaa);
	bmt_fill(b, 64, 0xbb);
	bmt_fill(c, 64, 0xcc);
	ok = !iomem__heap_free(&h, &outside[2]);
	ok &= !iomem__heap_free(&h, b + 8);
	ok &= !iomem__heap_free(&h, b + 1);
	BMT_OK(ok, PN("misuse: foreign, interior and misaligned pointers refused"));
	saved = ((size_t *)b)[-1];                  /* overwrite b's size field */
	((size_t *)b)[-1] = saved + 64;
	ok = !iomem__heap_free(&h, b);
	((size_t *)b)[-1] = saved;
	BMT_OK(ok, PN("misuse: a block with an overwritten header refused"));
	ok = iomem__heap_free(&h, b) && !iomem__heap_free(&h, b);
	BMT_OK(ok, PN("misuse: double free refused"));
	BMT_OK(h.diag.rejected_frees == rejected + 5 && bmt_all_bytes(a, 64, 0xaa) && bmt_all_bytes(c, 64, 0xcc) &&
	       iomem__heap_check(&h, NULL), PN("misuse: counted, neighbours intact, invariants hold"));
	BMT_OK(iomem__heap_free(&h, NULL), PN("misuse: free(NULL) is a no-op"));
	iomem__heap_free(&h, a);
	iomem__heap_free(&h, c);
}

void bmt_suite_heap(void)
{
	int exact;
	test_arenas();
	test_overhead();
	for (exact = 0; exact < 2; exact++) {
		BMT_OK(heap_fresh(exact != 0) && iomem__heap_check(&h, NULL), PN("two arenas, empty"));
		test_policy_sizes();
		test_stress();
		test_exhaustion();
		test_fragmentation();
		test_misuse();
		BMT_OK(iomem__heap_check(&h, NULL) && h.diag.used_blocks == 0, PN("empty and consistent at the end"));
	}
}
