/* SPDX-License-Identifier: MIT */
/*
 * t_heap.c - iomem's O(1) heap (backends/iomem_heap.h) on its own, over
 * private arenas: bad arenas, a random stress test (alloc / aligned alloc /
 * free, every live block's contents and the invariants checker verified as
 * it goes), exhaustion and full coalescing, the documented fragmentation
 * guarantees G1/G2 on adversarial hole patterns, the per-block metadata
 * bound, and refused frees (foreign, interior, double, overwritten header).
 */
#include "bmt.h"

static uint64_t arena_a[96 * 1024 / 8];
static uint64_t arena_b[24 * 1024 / 8];
static uint64_t tiny[5][128 / 8];
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

/* G1: alloc(s) must succeed when some free block >= R(need(s)). */
static bool g1_promised(size_t largest_free, size_t s)
{
	return largest_free >= iomem__heap_round_list(iomem__heap_request_need(s));
}

static bool g2_promised(size_t largest_free, size_t s, size_t a)
{
	return largest_free >= iomem__heap_round_list(iomem__heap_request_need(s) + a - IOMEM_HEAP_ALIGN);
}

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
	unsigned char *p1, *p2;
	iomem__heap h3;
	iomem__heap_init(&h3);
	iomem__heap_add_arena(&h3, tiny[0], sizeof tiny[0]);
	p1 = (unsigned char *)iomem__heap_alloc(&h3, 24);
	p2 = (unsigned char *)iomem__heap_alloc(&h3, 24);
	bmt_diag_u("heap: header bytes per block", IOMEM__HEAP_HDR);
	bmt_diag_u("heap: distance between two 24-byte blocks", (uint64_t)(p2 - p1));
	BMT_OK(p1 != NULL && p2 != NULL && (size_t)(p2 - p1) - 24 == IOMEM__HEAP_HDR &&
	       (sizeof(void *) > 4 || IOMEM__HEAP_HDR <= 16),
	       "heap: metadata per block = the header (8 bytes on 32-bit, <= 16 required)");
}

static void test_stress(void)
{
	enum { OPS = 40000, CHECK_EVERY = 2000 };
	uint32_t seed = 0x12345678u;
	unsigned n, ooms = 0, aligned = 0, g_broken = 0, checks_ok = 0, checks = 0;
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
				if (align ? g2_promised(c.largest_free, size, align) : g1_promised(c.largest_free, size))
					g_broken++;
			} else {
				aligned += align != 0;
				align_ok &= ((uintptr_t)s->p & (IOMEM_HEAP_ALIGN - 1)) == 0 &&
				            (align == 0 || ((uintptr_t)s->p & (align - 1)) == 0) &&
				            iomem__heap_usable_size(&h, s->p) >= size;
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
	bmt_diag_u("heap stress: operations", OPS);
	bmt_diag_u("heap stress: aligned allocations", aligned);
	bmt_diag_u("heap stress: allocations that found no block", ooms);
	bmt_diag_u("heap stress: peak allocated bytes", h.diag.peak_allocated);
	bmt_diag_u("heap stress: capacity", h.diag.capacity);
	BMT_OK(contents && frees_ok, "heap stress: every block kept its contents until freed; every free accepted");
	BMT_OK(align_ok, "heap stress: every block aligned as asked, usable size >= request");
	BMT_OK(checks == checks_ok && checks == OPS / CHECK_EVERY,
	       "heap stress: invariants checker + all live contents verified every 2000 operations");
	BMT_OK(ooms > 0 && g_broken == 0, "heap stress: every NULL was allowed by G1/G2 (no fitting list block)");
	free_all();
	BMT_OK(iomem__heap_check(&h, &c) && c.free_blocks == 2 && c.free_bytes == h.diag.capacity &&
	       c.used_blocks == 0 && h.diag.allocated == 0,
	       "heap stress: all freed -> one free block per arena (full coalescing)");
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
	BMT_OK(i > 0 && i < NSLOT && h.diag.oom_count == oom0 + 1, "heap: exhausted -> NULL, counted");
	BMT_OK(iomem__heap_alloc_aligned(&h, 1000, 64) == NULL && iomem__heap_check(&h, &c) &&
	       all_slots_intact(), "heap: exhausted heap intact, every block's contents kept");
	BMT_OK(iomem__heap_alloc_aligned(&h, 16, 48) == NULL, "heap: alignment not a power of two -> NULL");
	free_all();
}

/* Adversarial hole patterns: fill the heap with blocks of mixed sizes, free
 * a random half, then check that the largest request the guarantee promises
 * succeeds, plain and aligned. */
static void test_fragmentation(void)
{
	static const uint32_t sizes[] = { 24, 200, 1000, 3000, 64, 520 };
	uint32_t seed = 0x9e3779b9u;
	unsigned round, promised = 0, kept = 0, g2_tested = 0, g2_kept = 0;
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
		/* G1 on the census's promise */
		promised++;
		p = iomem__heap_alloc(&h, c.largest_alloc);
		kept += p != NULL && g1_promised(c.largest_free, c.largest_alloc);
		iomem__heap_free(&h, p);
		/* how much of the largest hole G1 may leave unused, in percent */
		if (c.largest_free > 0) {
			size_t waste = (c.largest_free - iomem__heap_request_need(c.largest_alloc)) * 100 / c.largest_free;
			if (waste > worst_waste_pct)
				worst_waste_pct = waste;
		}
		/* G2 for several alignments */
		for (a = 16; a <= 4096; a *= 4)
			for (s = c.largest_alloc; s > 8; s = s - s / 4 - 8) {
				if (!g2_promised(c.largest_free, s, a))
					continue;
				g2_tested++;
				p = iomem__heap_alloc_aligned(&h, s, a);
				g2_kept += p != NULL && ((uintptr_t)p & (a - 1)) == 0;
				iomem__heap_free(&h, p);
				break;
			}
		if (!iomem__heap_check(&h, NULL) || !all_slots_intact())
			break;
		free_all();
	}
	bmt_diag_u("heap fragmentation: rounds", round);
	bmt_diag_u("heap fragmentation: worst share of the largest hole G1 may leave (%)", worst_waste_pct);
	BMT_OK(round == 24 && promised == kept, "heap fragmentation: G1 - the census's largest request succeeds in every hole pattern");
	BMT_OK(g2_tested >= 24 && g2_tested == g2_kept, "heap fragmentation: G2 - aligned requests the bound promises succeed");
	BMT_OK(worst_waste_pct <= 7, "heap fragmentation: good fit leaves at most 1/16 (+ granule) of the largest hole");
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
	BMT_OK(ok, "heap misuse: foreign, interior and misaligned pointers refused");
	saved = ((size_t *)b)[-1];                  /* overwrite b's size field */
	((size_t *)b)[-1] = saved + 64;
	ok = !iomem__heap_free(&h, b);
	((size_t *)b)[-1] = saved;
	BMT_OK(ok, "heap misuse: a block with an overwritten header refused");
	ok = iomem__heap_free(&h, b) && !iomem__heap_free(&h, b);
	BMT_OK(ok, "heap misuse: double free refused");
	BMT_OK(h.diag.rejected_frees == rejected + 5 && bmt_all_bytes(a, 64, 0xaa) && bmt_all_bytes(c, 64, 0xcc) &&
	       iomem__heap_check(&h, NULL), "heap misuse: counted, neighbours intact, invariants hold");
	BMT_OK(iomem__heap_free(&h, NULL), "heap misuse: free(NULL) is a no-op");
	iomem__heap_free(&h, a);
	iomem__heap_free(&h, c);
}

void bmt_suite_heap(void)
{
	test_arenas();
	test_overhead();
	test_stress();
	test_exhaustion();
	test_fragmentation();
	test_misuse();
	BMT_OK(iomem__heap_check(&h, NULL) && h.diag.used_blocks == 0, "heap: empty and consistent at the end");
}
