/* SPDX-License-Identifier: MIT */
/*
 * tests/test_bmheap.c - the bare-metal backend's O(1) heap
 * (backends/iomem_heap.h) and iomem_baremetal_init, compiled and run on the
 * host: the whole bare-metal backend is built here (IOMEM_BACKEND_BAREMETAL
 * on a hosted compiler, the libc's memset/memcpy instead of the weak ones).
 *
 *   heapcore   the allocator on its own: arenas, alignment, a long random
 *              stress against a shadow copy of every block, misuse
 *   bound      the documented fragmentation guarantees G1..G3, exhaustively
 *              over fragmented heaps
 *   backend    iomem_baremetal_init's bad input, kIOReturnBusy, the IOMalloc
 *              family over the heap, reports, the lock hooks under threads
 * The same cases run on the seven emulated cores (tests/baremetal/suite/).
 */
#include "test_util.h"
#define IOMEM_BACKEND_BAREMETAL 1
#define IOMEM_NO_WEAK_LIBC 1
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BYTES (4u << 20)
static uint64_t arena[ARENA_BYTES / 8];
static uint64_t arena2[64 * 1024 / 8];

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- heapcore ---------------------------------------------------------- */

Test(heapcore, arenas_bad_input_changes_nothing)
{
	iomem__heap h;
	iomem__heap_init(&h);
	cr_expect_not(iomem__heap_add_arena(&h, NULL, 4096));
	cr_expect_not(iomem__heap_add_arena(&h, (char *)arena + 4, 4096));
	cr_expect_not(iomem__heap_add_arena(&h, arena, IOMEM_HEAP_ARENA_MIN - 8));
	cr_expect_eq(h.diag.arenas, 0);
	cr_expect_null(iomem__heap_alloc(&h, 1));
	cr_assert(iomem__heap_add_arena(&h, arena, 8192));
	cr_expect_not(iomem__heap_add_arena(&h, (char *)arena + 4096, 8192));  /* overlap */
	cr_expect_not(iomem__heap_add_arena(&h, arena, 8192));
	cr_expect(iomem__heap_add_arena(&h, (char *)arena + 8192, 8192));  /* adjacent is fine */
	cr_expect_eq(h.diag.arenas, 2);
	cr_expect(iomem__heap_check(&h, NULL));
}

Test(heapcore, header_and_minimum_block)
{
	iomem__heap h;
	iomem__heap_init(&h);
	cr_assert(iomem__heap_add_arena(&h, arena, 4096));
	cr_expect_eq(IOMEM__HEAP_HDR, 2 * sizeof(void *));
	char *a = iomem__heap_alloc(&h, 0), *b = iomem__heap_alloc(&h, 1), *c = iomem__heap_alloc(&h, 24);
	cr_assert(a && b && c);
	cr_expect_eq((size_t)(b - a), IOMEM__HEAP_MIN_BLOCK);
	cr_expect_eq((size_t)(c - b), IOMEM__HEAP_MIN_BLOCK);
	cr_expect_eq(iomem__heap_usable_size(&h, c), 24 + (24 + IOMEM__HEAP_HDR) % 8);
	cr_expect_eq(iomem__heap_usable_size(&h, c + 8), 0);
	cr_expect(iomem__heap_check(&h, NULL));
}

Test(heapcore, every_alignment_without_waste)
{
	iomem__heap h;
	iomem__heap_init(&h);
	cr_assert(iomem__heap_add_arena(&h, arena, ARENA_BYTES));
	for (size_t a = 1; a <= (1u << 20); a *= 2)
		for (size_t s = 0; s < 5000; s = s * 2 + 3) {
			void *p = iomem__heap_alloc_aligned(&h, s, a);
			cr_assert_not_null(p, "alloc_aligned(%zu, %zu)", s, a);
			cr_expect_eq((uintptr_t)p % (a < 8 ? 8 : a), 0);
			memset(p, 0x3c, s);
			cr_expect_leq(h.diag.allocated, iomem__heap_request_need(s) + 2 * (IOMEM__HEAP_MIN_BLOCK -
			              IOMEM_HEAP_ALIGN), "G3: block + tail remainder + a lent front gap < minimum block");
			cr_expect_geq(iomem__heap_usable_size(&h, p), s);
			cr_assert(iomem__heap_free(&h, p));
			cr_expect_eq(h.diag.allocated, 0, "the front gap came back with the block");
		}
	cr_expect_null(iomem__heap_alloc_aligned(&h, 16, 24));
	cr_expect_null(iomem__heap_alloc_aligned(&h, 16, 3));
	iomem_heap_census c;
	cr_expect(iomem__heap_check(&h, &c));
	cr_expect_eq(c.free_blocks, 1);
}

/* A front gap smaller than a minimum block is lent to the previous block:
 * its owner's usable size does not include it, it comes back when either
 * block is freed (in both orders), and an overwritten gap word is ignored
 * (the gap stays with the previous block) without harm. */
Test(heapcore, lent_front_gap_comes_back)
{
	unsigned lent_seen = 0;
	for (unsigned order = 0; order < 3; order++)
		for (size_t k = 0; k < 16; k++) {
			iomem__heap h;
			iomem_heap_census c;
			iomem__heap_init(&h);
			cr_assert(iomem__heap_add_arena(&h, arena, 65536));
			unsigned char *f = iomem__heap_alloc(&h, k * 8), *q = iomem__heap_alloc_aligned(&h, 100, 64);
			cr_assert(f && q && (uintptr_t)q % 64 == 0);
			size_t fu = iomem__heap_usable_size(&h, f);
			cr_expect(fu >= k * 8 && f + fu + IOMEM__HEAP_HDR <= q, "k %zu: the lent gap is not usable by f", k);
			memset(f, 0xf1, fu);
			memset(q, 0x71, iomem__heap_usable_size(&h, q));
			cr_assert(iomem__heap_check(&h, NULL));
			bool lent = (((size_t *)q)[-1] & IOMEM__HEAP_LENT) != 0;
			lent_seen += lent;
			if (order == 2 && lent)
				((size_t *)(q - IOMEM__HEAP_HDR))[-1] = 5000;   /* f overran into the gap word */
			cr_assert(iomem__heap_free(&h, order == 1 ? f : q));
			cr_assert(iomem__heap_check(&h, NULL), "k %zu order %u", k, order);
			if (order != 1)
				cr_expect(iomem_test_all_bytes(f, k * 8, 0xf1));
			cr_assert(iomem__heap_free(&h, order == 1 ? q : f));
			cr_assert(iomem__heap_check(&h, &c));
			cr_expect_eq(c.free_blocks, 1, "k %zu order %u: everything came back", k, order);
			cr_expect_eq(h.diag.allocated, 0);
		}
	cr_expect_geq(lent_seen, 3 * 2, "some gaps were lent");
}

Test(heapcore, random_stress_against_a_shadow)
{
	enum { SLOTS = 4096, OPS = 1000000 };
	static struct { unsigned char *p; size_t n; unsigned char tag; } slot[SLOTS];
	iomem__heap h;
	uint64_t seed = 0x243f6a8885a308d3ull;
	size_t ooms = 0;
	iomem__heap_init(&h);
	cr_assert(iomem__heap_add_arena(&h, arena, 768 * 1024));
	cr_assert(iomem__heap_add_arena(&h, (char *)arena + ARENA_BYTES / 2 + 64, 768 * 1024));
	cr_assert(iomem__heap_add_arena(&h, arena2, sizeof arena2));
	for (long op = 0; op < OPS; op++) {
		uint64_t r = rnd(&seed);
		size_t i = r % SLOTS;
		if (slot[i].p) {
			cr_assert(iomem_test_all_bytes(slot[i].p, slot[i].n, slot[i].tag), "block %zu corrupted at op %ld", i, op);
			cr_assert(iomem__heap_free(&h, slot[i].p));
			slot[i].p = NULL;
			continue;
		}
		size_t n = (r >> 16) % 100 < 80 ? (r >> 24) % 512 : (r >> 24) % 8192;
		size_t a = ((r >> 40) & 7) == 0 ? (size_t)1 << ((r >> 43) % 16) : 0;
		unsigned char *p = a ? iomem__heap_alloc_aligned(&h, n, a) : iomem__heap_alloc(&h, n);
		if (!p) {
			ooms++;
			continue;
		}
		cr_assert(a == 0 || (uintptr_t)p % a == 0);
		slot[i].p = p;
		slot[i].n = n;
		slot[i].tag = (unsigned char)(r >> 56);
		memset(p, slot[i].tag, n);
		if (op % 50000 == 0)
			cr_assert(iomem__heap_check(&h, NULL), "invariants broken at op %ld", op);
	}
	cr_expect_gt(ooms, 0, "the stress should reach exhaustion");
	for (size_t i = 0; i < SLOTS; i++)
		if (slot[i].p) {
			cr_assert(iomem_test_all_bytes(slot[i].p, slot[i].n, slot[i].tag));
			cr_assert(iomem__heap_free(&h, slot[i].p));
		}
	iomem_heap_census c;
	cr_assert(iomem__heap_check(&h, &c));
	cr_expect_eq(c.free_blocks, 3, "one free block per arena after everything is freed");
	cr_expect_eq(c.free_bytes, h.diag.capacity);
	cr_expect_eq(h.diag.used_blocks, 0);
}

Test(heapcore, misuse_is_refused_and_touches_nothing)
{
	iomem__heap h;
	static uint64_t outside[16];
	iomem__heap_init(&h);
	cr_assert(iomem__heap_add_arena(&h, arena, 65536));
	unsigned char *a = iomem__heap_alloc(&h, 64), *b = iomem__heap_alloc(&h, 64), *c = iomem__heap_alloc(&h, 64);
	memset(a, 0xaa, 64);
	memset(b, 0xbb, 64);
	memset(c, 0xcc, 64);
	cr_expect_not(iomem__heap_free(&h, &outside[4]));
	cr_expect_not(iomem__heap_free(&h, b + 16));
	cr_expect_not(iomem__heap_free(&h, b + 3));
	cr_expect_not(iomem__heap_free(&h, (char *)arena + 65536 - 8));   /* the sentinel */
	size_t saved = ((size_t *)b)[-1];
	((size_t *)b)[-1] = saved * 3;
	cr_expect_not(iomem__heap_free(&h, b));
	((size_t *)b)[-1] = saved;
	cr_expect(iomem__heap_free(&h, b));
	cr_expect_not(iomem__heap_free(&h, b));                       /* double free */
	cr_expect_eq(h.diag.rejected_frees, 6);
	cr_expect(iomem_test_all_bytes(a, 64, 0xaa) && iomem_test_all_bytes(c, 64, 0xcc));
	cr_expect(iomem__heap_check(&h, NULL));
	cr_expect(iomem__heap_free(&h, NULL));
}

Test(heapcore, checker_detects_corruption)
{
	iomem__heap h;
	iomem__heap_init(&h);
	cr_assert(iomem__heap_add_arena(&h, arena, 65536));
	unsigned char *a = iomem__heap_alloc(&h, 100), *b = iomem__heap_alloc(&h, 100);
	cr_assert(iomem__heap_check(&h, NULL));
	memset(a, 0, 100 + IOMEM__HEAP_HDR + 8);           /* overflow into b's header */
	cr_expect_not(iomem__heap_check(&h, NULL));
	(void)b;
}

/* ---- bound: the documented worst-case fragmentation guarantees --------- */

Test(bound, list_rounding_is_within_one_sixteenth)
{
	for (size_t n = 8; n < (1u << 22); n += (n >> 6) | 8) {
		size_t r = iomem__heap_round_list(n);
		cr_assert_geq(r, n);
		cr_assert_leq(r - n, n < 128 ? 0 : n / 16, "R(%zu) = %zu", n, r);
		cr_assert_eq(iomem__heap_round_list(r), r, "R(%zu) is a list boundary", n);
	}
}

/* Fragment the heap in many patterns; then EVERY request the guarantee G1
 * covers must succeed, G2 likewise for aligned requests, and G3 must bound
 * each block's footprint. */
Test(bound, g1_g2_g3_hold_over_fragmented_heaps)
{
	enum { SLOTS = 2000 };
	static void *slot[SLOTS];
	uint64_t seed = 0x13198a2e03707344ull;
	iomem__heap h;
	iomem__heap_init(&h);
	cr_assert(iomem__heap_add_arena(&h, arena, 1u << 20));
	for (int round = 0; round < 40; round++) {
		size_t n = 0;
		while (n < SLOTS) {
			size_t s = rnd(&seed) % (round % 2 ? 600 : 6000);
			size_t before = h.diag.allocated;
			if (!(slot[n] = iomem__heap_alloc(&h, s)))
				break;
			cr_assert_leq(h.diag.allocated - before,
			              iomem__heap_request_need(s) + IOMEM__HEAP_MIN_BLOCK - IOMEM_HEAP_ALIGN, "G3");
			n++;
		}
		for (size_t i = 0; i < n; i++)
			if (rnd(&seed) % 3) {
				iomem__heap_free(&h, slot[i]);
				slot[i] = NULL;
			}
		iomem_heap_census c;
		cr_assert(iomem__heap_check(&h, &c));
		for (size_t s = 0; s <= c.largest_free; s += 8) {
			bool promised = c.largest_free >= iomem__heap_round_list(iomem__heap_request_need(s));
			void *p = iomem__heap_alloc(&h, s);
			if (promised)
				cr_assert_not_null(p, "G1: round %d, request %zu, largest free %zu", round, s, c.largest_free);
			if (s + IOMEM__HEAP_HDR > c.largest_free)
				cr_assert_null(p, "no free block can hold %zu", s);
			iomem__heap_free(&h, p);
		}
		cr_expect_geq(c.largest_alloc + IOMEM__HEAP_HDR, c.largest_free - c.largest_free / 16 - 8,
		              "the census promise is within 1/16 of the largest hole");
		for (size_t a = 16; a <= 8192; a *= 2)
			for (size_t s = 0; s <= c.largest_free; s += 64) {
				bool promised = c.largest_free >= iomem__heap_round_list(
					iomem__heap_request_need(s) + a - IOMEM_HEAP_ALIGN);
				void *p = iomem__heap_alloc_aligned(&h, s, a);
				if (promised)
					cr_assert_not_null(p, "G2: request %zu align %zu", s, a);
				iomem__heap_free(&h, p);
			}
		for (size_t i = 0; i < n; i++)
			iomem__heap_free(&h, slot[i]);
		cr_assert(iomem__heap_check(&h, &c));
		cr_assert_eq(c.free_blocks, 1);
	}
}

/* ---- backend: iomem_baremetal_init and the IOMalloc family over the heap */

static IOPhysicalAddress64 v2p(void *u, const void *v) { (void)u; return (uintptr_t)v + 0x100000; }
static void *p2v(void *u, IOPhysicalAddress64 p) { (void)u; return (void *)(uintptr_t)(p - 0x100000); }
static void *halloc(void *u, vm_size_t n) { (void)u; return malloc(n); }
static void hfree(void *u, void *p) { (void)u; free(p); }

Test(backend, bad_descriptions_are_refused_and_change_nothing)
{
	static const iomem_baremetal_iommu half = { NULL, NULL, NULL };
	const iomem_baremetal_desc bad[] = {
		{ .alloc = halloc },
		{ .virt_to_phys = v2p },
		{ .page_size = 1000 },
		{ .page_size = 128 },
		{ .heap = { { (char *)arena + 1, 4096 } } },
		{ .heap = { { arena, 48 } } },
		{ .heap = { { NULL, 4096 } } },
		{ .heap = { { (void *)(UINTPTR_MAX - 4095), 8192 } } },
		{ .heap = { { arena, 8192 }, { (char *)arena + 4096, 8192 } } },
		{ .heap = { { arena, 8192 } }, .alloc = halloc, .free = hfree },
		{ .dma_base = UINT64_MAX, .dma_length = 2 },
		{ .dma_base = 0, .dma_length = 4096, .bounce = { arena2, 4096 } },
		{ .bounce = { arena, 4096 }, .heap = { { arena, 8192 } } },
		{ .bounce = { arena2, 16 } },
		{ .iommu = &half },
		{ .cache_line = 96 },
	};
	cr_expect_eq(iomem_baremetal_init(NULL), kIOReturnBadArgument);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(iomem_baremetal_init(&bad[i]), kIOReturnBadArgument, "bad[%zu]", i);
	cr_expect_null(IOMalloc(8));
	iomem_heap_diagnostics d;
	cr_expect_eq(iomem_baremetal_heap_diagnostics(&d), kIOReturnNotReady);
	cr_expect_eq(iomem__platform_page_size(), 4096);
	iomem_test_expect_reports(0);
}

Test(backend, iomalloc_family_over_the_heap)
{
	cr_assert_eq(iomem_baremetal_init(&(iomem_baremetal_desc){
		.heap = { { arena, ARENA_BYTES / 2 }, { arena2, sizeof arena2 } } }), kIOReturnSuccess);
	void *a = IOMalloc(100), *z = IOMallocZero(300), *al = IOMallocAligned(1000, 256);
	unsigned char *pg = IOMallocPageable(5000, 0);
	cr_assert(a && z && al && pg);
	cr_expect(iomem_test_all_bytes(z, 300, 0));
	cr_expect_eq((uintptr_t)al % 256, 0);
	cr_expect_eq((uintptr_t)pg % 4096, 0);
	cr_expect(iomem_test_all_bytes(pg, 8192, 0));
	iomem_heap_diagnostics d;
	cr_assert_eq(iomem_baremetal_heap_diagnostics(&d), kIOReturnSuccess);
	cr_expect_eq(d.arenas, 2);
	cr_expect_geq(d.used_blocks, 4);
	cr_expect_eq(iomem_baremetal_init(&(iomem_baremetal_desc){ .heap = { { arena2, 4096 } } }),
	             kIOReturnBusy, "live blocks: a second init is refused");
	IOFree(a, 100);
	IOFree(z, 300);
	IOFreeAligned(al, 1000);
	IOFreePageable(pg, 5000);
	cr_expect_null(IOMalloc(ARENA_BYTES));
	cr_expect_eq(iomem_baremetal_heap_check(NULL), kIOReturnSuccess);
	iomem_test_expect_reports(0);
}

Test(backend, foreign_free_is_reported_and_harmless)
{
	cr_assert_eq(iomem_baremetal_init(&(iomem_baremetal_desc){ .heap = { { arena, 65536 } } }), kIOReturnSuccess);
	unsigned char *a = IOMalloc(64), *b = IOMalloc(64);
	memset(a, 1, 64);
	memset(b, 2, 64);
	IOFree(b + 16, 48);
	iomem_test_expect_reports(1);
	iomem_test_expect_report_has(IOMEM__DEBUG ? "never allocated" : "not a live block");
	cr_expect(iomem_test_all_bytes(a, 64, 1) && iomem_test_all_bytes(b, 64, 2));
	cr_expect_eq(iomem_baremetal_heap_check(NULL), kIOReturnSuccess);
	IOFree(a, 64);
	IOFree(b, 64);
}

Test(backend, hooks_translation_window_bounce)
{
	cr_assert_eq(iomem_baremetal_init(&(iomem_baremetal_desc){
		.virt_to_phys = v2p, .phys_to_virt = p2v,
		.dma_base = (uintptr_t)arena2 + 0x100000, .dma_length = sizeof arena2,
		.bounce = { arena2, sizeof arena2 },
		.alloc = halloc, .free = hfree }), kIOReturnSuccess);
	cr_expect_eq(iomem__platform_virt_to_phys(arena), (uintptr_t)arena + 0x100000);
	cr_expect_eq(iomem__platform_phys_to_virt((uintptr_t)arena + 0x100000), (void *)arena);
	cr_expect(iomem__platform_dma_reachable((uintptr_t)arena2 + 0x100000, sizeof arena2));
	cr_expect_not(iomem__platform_dma_reachable((uintptr_t)arena2 + 0x100000, sizeof arena2 + 1));
	cr_expect_not(iomem__platform_dma_reachable(UINT64_MAX, 2));
	void *p = iomem__platform_bounce_alloc(4096, 4096);
	cr_assert_not_null(p);
	cr_expect_eq((uintptr_t)p % 4096, 0);
	cr_expect(p >= (void *)arena2 && (char *)p + 4096 <= (char *)arena2 + sizeof arena2);
	void *m = IOMalloc(10);                  /* the alloc hooks: no heap arenas */
	cr_assert_not_null(m);
	IOFree(m, 10);
	cr_expect_eq(iomem_baremetal_heap_check(NULL), kIOReturnNotReady);
	iomem__platform_bounce_free(p);
	/* x86 default cache maintenance: CLFLUSH, 64-byte lines */
	cr_expect_eq(iomem__platform_cache_line(), 64);
	iomem__platform_cache_flush(arena, 1000);
	iomem__platform_cache_invalidate((char *)arena + 3, 100);
	iomem_test_expect_reports(0);
}

static pthread_mutex_t hook_mutex = PTHREAD_MUTEX_INITIALIZER;
static void hlock(void *u) { (void)u; pthread_mutex_lock(&hook_mutex); }
static void hunlock(void *u) { (void)u; pthread_mutex_unlock(&hook_mutex); }

static void *worker(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		size_t n = rnd(&seed) % 700 + 1;
		unsigned char *a = IOMalloc(n), *b = IOMallocAligned(n, 64);
		if (!a || !b)
			return (void *)1;
		memset(a, 1, n);
		memset(b, 2, n);
		if (!iomem_test_all_bytes(a, n, 1))
			return (void *)2;
		IOFree(a, n);
		IOFreeAligned(b, n);
	}
	return NULL;
}

Test(backend, lock_hooks_make_it_thread_safe)
{
	cr_assert_eq(iomem_baremetal_init(&(iomem_baremetal_desc){
		.heap = { { arena, ARENA_BYTES } }, .lock = hlock, .unlock = hunlock }), kIOReturnSuccess);
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)(i + 1)), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_expect_null(r);
	}
	cr_expect_eq(iomem_baremetal_heap_check(NULL), kIOReturnSuccess);
	iomem_test_expect_reports(0);
}
