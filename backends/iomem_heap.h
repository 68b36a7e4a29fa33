/* SPDX-License-Identifier: MIT */
/*
 * backends/iomem_heap.h - iomem's O(1) heap: a two-level segregated fit
 * (TLSF-class) allocator over one or more caller-given arenas.
 *
 * Written from scratch for iomem. The bare-metal backend uses it for the
 * IOMalloc family (backends/iomem_baremetal.h includes this file); it has no
 * dependency on the rest of iomem, so the host tests (tests/test_bmheap.c)
 * and the benchmark (bench/bench_bmheap.c) compile it on their own:
 *
 *     #define IOMEM__HEAP_IMPLEMENTATION 1     // in one TU
 *     #include "backends/iomem_heap.h"
 *
 * Only <stddef.h> <stdint.h> <stdbool.h>; no libc, no floating point, no
 * TLS, no atomics, no recursion, no VLAs. Not thread-safe: the caller
 * serialises (the bare-metal backend holds its lock hooks around each call).
 *
 * DESIGN
 * ======
 *   Every block starts with a two-word header: the address of the physically
 *   previous block (NULL for an arena's first block) and the block's size in
 *   bytes, header included, a multiple of IOMEM_HEAP_ALIGN, with bit 0 set
 *   while the block is free. A free block also keeps the links of its free
 *   list in its first payload words, so the smallest block is four words.
 *   Each arena ends with a header-only sentinel (size 0, "used") so that
 *   coalescing never walks off the arena.
 *
 *   Free blocks sit in FL x SL segregated lists: the first level is the power
 *   of two of the size, the second splits each power of two into
 *   IOMEM__HEAP_SL_COUNT (16) equal ranges; sizes below 128 bytes get one
 *   exact list per 8-byte granule. Two bitmaps say which lists are non-empty,
 *   so finding a list is two find-first-set instructions.
 *
 *   Allocation rounds the request up to the next list boundary ("good fit"),
 *   so the first block of the first non-empty list at or above it always
 *   fits: no list is ever searched. The block is split and the tail goes
 *   back to a list. Free merges with both physical neighbours (found through
 *   the header, no search) and inserts the result. Aligned allocation asks
 *   for size + alignment + one minimum block, then cuts the front gap off as
 *   a free block: still no search. Every operation therefore runs a bounded
 *   number of steps independent of the number of blocks (x86-64 -O2: see
 *   bench/bench_bmheap.c for the measured worst case in instructions).
 *
 * OVERHEAD
 *   Per allocated block: the two-word header, 8 bytes on 32-bit targets and
 *   16 bytes on 64-bit ones, plus rounding of the request to
 *   IOMEM_HEAP_ALIGN; a remainder smaller than a minimum block (16 / 32
 *   bytes) is left in the block instead of being split off.
 *
 * WORST-CASE FRAGMENTATION (what is guaranteed; tests/test_bmheap.c and the
 * on-target stress test check it)
 *   Let need(s) = max(round_up(s + header, 8), minimum block) and R(n) be n
 *   rounded up to the next list boundary: R(n) = n for n < 128, else
 *   R(n) < n + n/16. Then
 *     G1  iomem__heap_alloc(s) succeeds whenever any free block has a size
 *         of at least R(need(s)), i.e. it fails only if every free block is
 *         smaller than need(s) * 17/16 - good fit is within 1/16 of best
 *         fit, whatever the history of the heap;
 *     G2  iomem__heap_alloc_aligned(s, a) succeeds whenever a free block of
 *         at least R(need(s) + a + minimum block - 8) exists;
 *     G3  an allocated block occupies at most need(s) + minimum block - 8
 *         bytes (internal fragmentation), for aligned blocks the front gap
 *         is returned to the heap;
 *     G4  no two free blocks are ever adjacent (immediate coalescing), so the
 *         free space of an arena is a set of maximal holes between live
 *         blocks; the heap as a whole can fail only by external
 *         fragmentation, which no non-moving allocator avoids (Robson: for
 *         sizes in [m, n], any allocator can be forced to need about
 *         M * log2(n/m) / 2 bytes for M live bytes).
 *   The measured figures (random workloads, adversarial hole patterns) are
 *   in tests/test_bmheap.c.
 *
 * MISUSE
 *   iomem__heap_free validates the pointer before touching anything: it must
 *   be aligned, lie inside an arena, carry a "used" header whose size stays
 *   in the arena, and both physical neighbours must point back at it. A
 *   pointer that fails (foreign pointer, double free, interior pointer,
 *   overwritten header) is refused - false is returned, nothing is written,
 *   no other block is affected - and counted in rejected_frees.
 */
#ifndef IOMEM_HEAP_H_INCLUDED
#define IOMEM_HEAP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifndef IOMEM_HEAP_API
#  if defined(IOMEM_API) && !defined(IOMEM_STATIC)
#    define IOMEM_HEAP_API IOMEM_API
#  elif defined(__GNUC__) || defined(__clang__)
#    define IOMEM_HEAP_API static __attribute__((unused))
#  else
#    define IOMEM_HEAP_API static
#  endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Alignment of every block the heap returns, and its size granule. */
#define IOMEM_HEAP_ALIGN ((size_t)8)

/* Most arenas one heap manages (the bare-metal desc has this many slots). */
#ifndef IOMEM_HEAP_MAX_ARENAS
#  define IOMEM_HEAP_MAX_ARENAS 4
#endif

/* Smallest arena accepted (a smaller one cannot hold a block + sentinel). */
#define IOMEM_HEAP_ARENA_MIN ((size_t)64)

/* Blocks are smaller than 2^IOMEM_HEAP_MAX_LOG2 bytes; a larger arena is
 * used up to that size. 31 on 32-bit targets, 38 (256 GiB) on 64-bit. */
#ifndef IOMEM_HEAP_MAX_LOG2
#  if UINTPTR_MAX > 0xFFFFFFFFu
#    define IOMEM_HEAP_MAX_LOG2 38
#  else
#    define IOMEM_HEAP_MAX_LOG2 31
#  endif
#endif

#define IOMEM__HEAP_SL_LOG2  4
#define IOMEM__HEAP_SL_COUNT (1 << IOMEM__HEAP_SL_LOG2)
#define IOMEM__HEAP_FL_SHIFT (IOMEM__HEAP_SL_LOG2 + 3)            /* 128 bytes */
#define IOMEM__HEAP_SMALL    ((size_t)1 << IOMEM__HEAP_FL_SHIFT)
#define IOMEM__HEAP_FL_COUNT (IOMEM_HEAP_MAX_LOG2 - IOMEM__HEAP_FL_SHIFT + 1)
#define IOMEM__HEAP_MAX_BLOCK ((size_t)1 << IOMEM_HEAP_MAX_LOG2)  /* exclusive */
#define IOMEM__HEAP_FREE     ((size_t)1)

typedef char iomem__heap_fl_fits_32_bits[(IOMEM__HEAP_FL_COUNT <= 32 && IOMEM__HEAP_FL_COUNT > 0) ? 1 : -1];

typedef struct iomem__hblock iomem__hblock;
struct iomem__hblock {
	iomem__hblock *prev_phys;   /* physically previous block, NULL for the first */
	size_t         size;        /* bytes incl. header | IOMEM__HEAP_FREE */
	iomem__hblock *next_free;   /* free blocks only: overlap the payload */
	iomem__hblock *prev_free;
};
#define IOMEM__HEAP_HDR       (2 * sizeof(void *))    /* 8 / 16 bytes */
#define IOMEM__HEAP_MIN_BLOCK (sizeof(iomem__hblock)) /* 16 / 32 bytes */

/** Counters of one heap, kept up to date in O(1) (o1heap style). */
typedef struct iomem_heap_diagnostics {
	size_t   capacity;          /* bytes the arenas offer to blocks (headers included) */
	size_t   allocated;         /* bytes in allocated blocks, headers included */
	size_t   peak_allocated;    /* highest value of allocated */
	size_t   peak_request;      /* largest size ever requested */
	size_t   used_blocks;       /* blocks allocated now */
	size_t   alloc_count;       /* successful allocations */
	size_t   free_count;        /* successful frees */
	size_t   oom_count;         /* allocations that returned NULL */
	size_t   rejected_frees;    /* frees refused: not a live block of this heap */
	unsigned arenas;            /* arenas added */
} iomem_heap_diagnostics;

/** What iomem__heap_check() counted while walking every block. */
typedef struct iomem_heap_census {
	size_t free_bytes;          /* headers included */
	size_t free_blocks;
	size_t largest_free;        /* largest free block, header included */
	size_t largest_alloc;       /* largest request that is sure to succeed now (G1) */
	size_t used_bytes;
	size_t used_blocks;
} iomem_heap_census;

typedef struct iomem__heap_arena { uintptr_t begin, end; } iomem__heap_arena; /* end = sentinel */

/** The heap's control block; zero it with iomem__heap_init. */
typedef struct iomem__heap {
	uint32_t          fl_map;
	uint32_t          sl_map[IOMEM__HEAP_FL_COUNT];
	iomem__hblock    *heads[IOMEM__HEAP_FL_COUNT][IOMEM__HEAP_SL_COUNT];
	iomem__heap_arena arena[IOMEM_HEAP_MAX_ARENAS];
	iomem_heap_diagnostics diag;
} iomem__heap;

/* iomem__heap_init - empty heap, no arenas. */
IOMEM_HEAP_API void   iomem__heap_init(iomem__heap *h);
/* iomem__heap_add_arena - give [base, base+size) to the heap. base must be
 * IOMEM_HEAP_ALIGN-aligned, size >= IOMEM_HEAP_ARENA_MIN (rounded down to
 * the granule, clamped below 2^IOMEM_HEAP_MAX_LOG2), no overlap with an arena
 * already added, fewer than IOMEM_HEAP_MAX_ARENAS so far. Returns false (and
 * changes nothing) otherwise. */
IOMEM_HEAP_API bool   iomem__heap_add_arena(iomem__heap *h, void *base, size_t size);
/* iomem__heap_alloc - @size bytes aligned to IOMEM_HEAP_ALIGN, or NULL. 0 is
 * a valid size (a minimum block). O(1). */
IOMEM_HEAP_API void  *iomem__heap_alloc(iomem__heap *h, size_t size);
/* iomem__heap_alloc_aligned - @align 0 or a power of two (<= 8 means 8);
 * anything else -> NULL. O(1): no search for an aligned spot. */
IOMEM_HEAP_API void  *iomem__heap_alloc_aligned(iomem__heap *h, size_t size, size_t align);
/* iomem__heap_free - NULL is a no-op (true). A pointer that is not a live
 * block of @h is refused: false, nothing changes. O(1). */
IOMEM_HEAP_API bool   iomem__heap_free(iomem__heap *h, void *p);
/* iomem__heap_owns - @p lies inside one of @h's arenas (any byte). */
IOMEM_HEAP_API bool   iomem__heap_owns(const iomem__heap *h, const void *p);
/* iomem__heap_usable_size - payload bytes of the live block @p, 0 if @p is not
 * one. */
IOMEM_HEAP_API size_t iomem__heap_usable_size(const iomem__heap *h, const void *p);
/* iomem__heap_check - the invariants checker: walks every block of every
 * arena and every free list (O(blocks)); true iff all hold. @census (may be
 * NULL) receives the counts. */
IOMEM_HEAP_API bool   iomem__heap_check(const iomem__heap *h, iomem_heap_census *census);
/* iomem__heap_request_need - block bytes a request of @size takes (need(s)). */
IOMEM_HEAP_API size_t iomem__heap_request_need(size_t size);
/* iomem__heap_round_list - R(n): n rounded up to the next list boundary. */
IOMEM_HEAP_API size_t iomem__heap_round_list(size_t n);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_HEAP_H_INCLUDED */

/* ---- implementation ------------------------------------------------------- */
#if defined(IOMEM__HEAP_IMPLEMENTATION) && !defined(IOMEM__HEAP_IMPLEMENTATION_DONE)
#define IOMEM__HEAP_IMPLEMENTATION_DONE 1

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define IOMEM__HEAP_INLINE static inline __attribute__((always_inline))
#  define IOMEM__HEAP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define IOMEM__HEAP_INLINE static inline
#  define IOMEM__HEAP_UNLIKELY(x) (x)
#endif

/* Index of the lowest / highest set bit; x != 0. */
IOMEM__HEAP_INLINE unsigned iomem__heap_ffs32(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
	return (unsigned)__builtin_ctz(x);
#else
	unsigned n = 0;
	if (!(x & 0xFFFFu)) { n += 16; x >>= 16; }
	if (!(x & 0xFFu))   { n += 8;  x >>= 8; }
	if (!(x & 0xFu))    { n += 4;  x >>= 4; }
	if (!(x & 0x3u))    { n += 2;  x >>= 2; }
	return n + (unsigned)!(x & 1u);
#endif
}

IOMEM__HEAP_INLINE unsigned iomem__heap_fls(size_t x)
{
#if (defined(__GNUC__) || defined(__clang__)) && SIZE_MAX > 0xFFFFFFFFu
	return 63u - (unsigned)__builtin_clzll((unsigned long long)x);
#elif defined(__GNUC__) || defined(__clang__)
	return 31u - (unsigned)__builtin_clz((unsigned)x);
#else
	unsigned n = 0;
#  if SIZE_MAX > 0xFFFFFFFFu
	if (x >> 32) { n += 32; x >>= 32; }
#  endif
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8)  { n += 8;  x >>= 8; }
	if (x >> 4)  { n += 4;  x >>= 4; }
	if (x >> 2)  { n += 2;  x >>= 2; }
	return n + (unsigned)(x >> 1);
#endif
}

#define IOMEM__HEAP_BLK(a)   ((iomem__hblock *)(a))
#define IOMEM__HEAP_SIZE(b)  ((b)->size & ~IOMEM__HEAP_FREE)
#define IOMEM__HEAP_NEXT(b)  IOMEM__HEAP_BLK((uintptr_t)(b) + IOMEM__HEAP_SIZE(b))

/* The list a block of @size (a multiple of 8, < MAX_BLOCK) belongs to. */
IOMEM__HEAP_INLINE void iomem__heap_mapping(size_t size, unsigned *fl, unsigned *sl)
{
	if (size < IOMEM__HEAP_SMALL) {
		*fl = 0;
		*sl = (unsigned)(size >> 3);
	} else {
		unsigned f = iomem__heap_fls(size);
		*fl = f - (IOMEM__HEAP_FL_SHIFT - 1);
		*sl = (unsigned)(size >> (f - IOMEM__HEAP_SL_LOG2)) ^ IOMEM__HEAP_SL_COUNT;
	}
}

IOMEM__HEAP_INLINE void iomem__heap_insert(iomem__heap *h, iomem__hblock *b)
{
	unsigned fl, sl;
	iomem__hblock *head;
	iomem__heap_mapping(IOMEM__HEAP_SIZE(b), &fl, &sl);
	head = h->heads[fl][sl];
	b->next_free = head;
	b->prev_free = NULL;
	if (head != NULL)
		head->prev_free = b;
	h->heads[fl][sl] = b;
	h->sl_map[fl] |= (uint32_t)1 << sl;
	h->fl_map |= (uint32_t)1 << fl;
}

IOMEM__HEAP_INLINE void iomem__heap_remove(iomem__heap *h, iomem__hblock *b)
{
	unsigned fl, sl;
	iomem__hblock *next = b->next_free, *prev = b->prev_free;
	iomem__heap_mapping(IOMEM__HEAP_SIZE(b), &fl, &sl);
	if (next != NULL)
		next->prev_free = prev;
	if (prev != NULL) {
		prev->next_free = next;
	} else {
		h->heads[fl][sl] = next;
		if (next == NULL) {
			h->sl_map[fl] &= ~((uint32_t)1 << sl);
			if (h->sl_map[fl] == 0)
				h->fl_map &= ~((uint32_t)1 << fl);
		}
	}
}

IOMEM_HEAP_API size_t iomem__heap_round_list(size_t n)
{
	if (n < IOMEM__HEAP_SMALL)
		return n;
	{
		size_t step_mask = ((size_t)1 << (iomem__heap_fls(n) - IOMEM__HEAP_SL_LOG2)) - 1;
		return (n + step_mask) & ~step_mask;
	}
}

IOMEM_HEAP_API size_t iomem__heap_request_need(size_t size)
{
	size_t need = (size + IOMEM__HEAP_HDR + IOMEM_HEAP_ALIGN - 1) & ~(IOMEM_HEAP_ALIGN - 1);
	return need < IOMEM__HEAP_MIN_BLOCK ? IOMEM__HEAP_MIN_BLOCK : need;
}

/* Takes a free block of at least @search bytes off its list, or NULL. */
IOMEM__HEAP_INLINE iomem__hblock *iomem__heap_take(iomem__heap *h, size_t search)
{
	unsigned fl, sl;
	uint32_t map;
	iomem__hblock *b, *next;
	if (search >= IOMEM__HEAP_SMALL)   /* round up: every block of the list fits */
		search += ((size_t)1 << (iomem__heap_fls(search) - IOMEM__HEAP_SL_LOG2)) - 1;
	if (IOMEM__HEAP_UNLIKELY(search >= IOMEM__HEAP_MAX_BLOCK))
		return NULL;
	iomem__heap_mapping(search, &fl, &sl);
	map = h->sl_map[fl] & (~(uint32_t)0 << sl);
	if (map == 0) {
		map = h->fl_map & ~(((uint32_t)2 << fl) - 1u);
		if (map == 0)
			return NULL;
		fl = iomem__heap_ffs32(map);
		map = h->sl_map[fl];
	}
	sl = iomem__heap_ffs32(map);
	b = h->heads[fl][sl];
	next = b->next_free;            /* remove the head */
	h->heads[fl][sl] = next;
	if (next != NULL) {
		next->prev_free = NULL;
	} else {
		h->sl_map[fl] &= ~((uint32_t)1 << sl);
		if (h->sl_map[fl] == 0)
			h->fl_map &= ~((uint32_t)1 << fl);
	}
	return b;
}

/* Marks @b (off the lists, size @bsize) used with @need bytes; the tail goes
 * back to a list when it can hold a block. Returns the payload. */
IOMEM__HEAP_INLINE void *iomem__heap_carve(iomem__heap *h, iomem__hblock *b, size_t bsize, size_t need)
{
	size_t rest = bsize - need;
	if (rest >= IOMEM__HEAP_MIN_BLOCK) {
		iomem__hblock *t = IOMEM__HEAP_BLK((uintptr_t)b + need);
		t->prev_phys = b;
		t->size = rest | IOMEM__HEAP_FREE;
		IOMEM__HEAP_BLK((uintptr_t)t + rest)->prev_phys = t;
		iomem__heap_insert(h, t);
		bsize = need;
	}
	b->size = bsize;
	h->diag.allocated += bsize;
	if (h->diag.allocated > h->diag.peak_allocated)
		h->diag.peak_allocated = h->diag.allocated;
	h->diag.used_blocks++;
	h->diag.alloc_count++;
	return (void *)((uintptr_t)b + IOMEM__HEAP_HDR);
}

IOMEM_HEAP_API void iomem__heap_init(iomem__heap *h)
{
	unsigned i, j;
	h->fl_map = 0;
	for (i = 0; i < IOMEM__HEAP_FL_COUNT; i++) {
		h->sl_map[i] = 0;
		for (j = 0; j < IOMEM__HEAP_SL_COUNT; j++)
			h->heads[i][j] = NULL;
	}
	for (i = 0; i < IOMEM_HEAP_MAX_ARENAS; i++)
		h->arena[i].begin = h->arena[i].end = 0;
	h->diag.capacity = h->diag.allocated = h->diag.peak_allocated = 0;
	h->diag.peak_request = h->diag.used_blocks = 0;
	h->diag.alloc_count = h->diag.free_count = h->diag.oom_count = 0;
	h->diag.rejected_frees = 0;
	h->diag.arenas = 0;
}

IOMEM_HEAP_API bool iomem__heap_add_arena(iomem__heap *h, void *base, size_t size)
{
	uintptr_t a = (uintptr_t)base, end;
	unsigned i, n = h->diag.arenas;
	iomem__hblock *b, *s;
	if (base == NULL || (a & (IOMEM_HEAP_ALIGN - 1)) != 0 || size < IOMEM_HEAP_ARENA_MIN ||
	    size > UINTPTR_MAX - a || n >= IOMEM_HEAP_MAX_ARENAS)
		return false;
	for (i = 0; i < n; i++)   /* overlap with an arena already added */
		if (a < h->arena[i].end + IOMEM__HEAP_HDR && h->arena[i].begin < a + size)
			return false;
	size &= ~(IOMEM_HEAP_ALIGN - 1);
	if (size - IOMEM__HEAP_HDR >= IOMEM__HEAP_MAX_BLOCK)
		size = IOMEM__HEAP_MAX_BLOCK - IOMEM_HEAP_ALIGN + IOMEM__HEAP_HDR;
	end = a + size - IOMEM__HEAP_HDR;
	b = IOMEM__HEAP_BLK(a);
	s = IOMEM__HEAP_BLK(end);
	b->prev_phys = NULL;
	b->size = (end - a) | IOMEM__HEAP_FREE;
	s->prev_phys = b;
	s->size = 0;                       /* sentinel: "used", size 0 */
	iomem__heap_insert(h, b);
	h->arena[n].begin = a;
	h->arena[n].end = end;
	h->diag.arenas = n + 1;
	h->diag.capacity += end - a;
	return true;
}

IOMEM_HEAP_API void *iomem__heap_alloc(iomem__heap *h, size_t size)
{
	size_t need;
	iomem__hblock *b;
	if (size > h->diag.peak_request)
		h->diag.peak_request = size;
	if (IOMEM__HEAP_UNLIKELY(size >= IOMEM__HEAP_MAX_BLOCK))
		goto oom;
	need = iomem__heap_request_need(size);
	b = iomem__heap_take(h, need);
	if (IOMEM__HEAP_UNLIKELY(b == NULL))
		goto oom;
	return iomem__heap_carve(h, b, IOMEM__HEAP_SIZE(b), need);
oom:
	h->diag.oom_count++;
	return NULL;
}

IOMEM_HEAP_API void *iomem__heap_alloc_aligned(iomem__heap *h, size_t size, size_t align)
{
	size_t need, bsize;
	uintptr_t p, q;
	iomem__hblock *b;
	if (align <= IOMEM_HEAP_ALIGN && (align & (align - 1)) == 0)
		return iomem__heap_alloc(h, size);
	if (size > h->diag.peak_request)
		h->diag.peak_request = size;
	if (IOMEM__HEAP_UNLIKELY((align & (align - 1)) != 0 || size >= IOMEM__HEAP_MAX_BLOCK / 2 ||
	                         align >= IOMEM__HEAP_MAX_BLOCK / 2))   /* no overflow below */
		goto oom;
	need = iomem__heap_request_need(size);
	/* worst case: a front gap of a minimum block plus (align - 8) */
	b = iomem__heap_take(h, need + align + IOMEM__HEAP_MIN_BLOCK - IOMEM_HEAP_ALIGN);
	if (IOMEM__HEAP_UNLIKELY(b == NULL))
		goto oom;
	bsize = IOMEM__HEAP_SIZE(b);
	p = (uintptr_t)b + IOMEM__HEAP_HDR;
	q = (p + align - 1) & ~(uintptr_t)(align - 1);
	if (q != p) {
		size_t gap;
		iomem__hblock *nb;
		if (q - p < IOMEM__HEAP_MIN_BLOCK)   /* the gap must hold a free block */
			q = (p + IOMEM__HEAP_MIN_BLOCK + align - 1) & ~(uintptr_t)(align - 1);
		gap = q - p;
		nb = IOMEM__HEAP_BLK((uintptr_t)b + gap);
		nb->prev_phys = b;
		IOMEM__HEAP_BLK((uintptr_t)b + bsize)->prev_phys = nb;
		b->size = gap | IOMEM__HEAP_FREE;     /* its neighbour before is used */
		iomem__heap_insert(h, b);
		b = nb;
		bsize -= gap;
	}
	return iomem__heap_carve(h, b, bsize, need);
oom:
	h->diag.oom_count++;
	return NULL;
}

/* The block of payload @p if it is a live block of @h, else NULL. Reads only
 * words inside @h's arenas. */
IOMEM__HEAP_INLINE iomem__hblock *iomem__heap_validate(const iomem__heap *h, const void *p)
{
	uintptr_t a = (uintptr_t)p - IOMEM__HEAP_HDR, begin = 0, end = 0;
	const iomem__hblock *b, *prev;
	size_t size;
	unsigned i;
	if (((uintptr_t)p & (IOMEM_HEAP_ALIGN - 1)) != 0)
		return NULL;
	for (i = 0; i < IOMEM_HEAP_MAX_ARENAS; i++)
		if (a - h->arena[i].begin < h->arena[i].end - h->arena[i].begin) {
			begin = h->arena[i].begin;
			end = h->arena[i].end;
			break;
		}
	if (end == 0)
		return NULL;
	b = (const iomem__hblock *)a;
	size = b->size;
	if ((size & (IOMEM_HEAP_ALIGN - 1)) != 0 || size < IOMEM__HEAP_MIN_BLOCK || size > end - a)
		return NULL;                   /* free (bit 0), foreign or overwritten */
	if (((const iomem__hblock *)(a + size))->prev_phys != b)
		return NULL;
	prev = b->prev_phys;
	if (prev == NULL) {
		if (a != begin)
			return NULL;
	} else if ((uintptr_t)prev < begin || (uintptr_t)prev >= a ||
	           ((uintptr_t)prev & (IOMEM_HEAP_ALIGN - 1)) != 0 ||
	           (uintptr_t)prev + IOMEM__HEAP_SIZE(prev) != a) {
		return NULL;
	}
	return (iomem__hblock *)a;
}

IOMEM_HEAP_API bool iomem__heap_free(iomem__heap *h, void *p)
{
	iomem__hblock *b, *next, *prev;
	size_t size;
	if (p == NULL)
		return true;
	b = iomem__heap_validate(h, p);
	if (IOMEM__HEAP_UNLIKELY(b == NULL)) {
		h->diag.rejected_frees++;
		return false;
	}
	size = b->size;
	h->diag.allocated -= size;
	h->diag.used_blocks--;
	h->diag.free_count++;
	next = IOMEM__HEAP_BLK((uintptr_t)b + size);
	if (next->size & IOMEM__HEAP_FREE) {
		iomem__heap_remove(h, next);
		size += IOMEM__HEAP_SIZE(next);
	}
	prev = b->prev_phys;
	if (prev != NULL && (prev->size & IOMEM__HEAP_FREE)) {
		iomem__heap_remove(h, prev);
		size += IOMEM__HEAP_SIZE(prev);
		b = prev;
	}
	b->size = size | IOMEM__HEAP_FREE;
	IOMEM__HEAP_BLK((uintptr_t)b + size)->prev_phys = b;
	iomem__heap_insert(h, b);
	return true;
}

IOMEM_HEAP_API bool iomem__heap_owns(const iomem__heap *h, const void *p)
{
	unsigned i;
	for (i = 0; i < h->diag.arenas; i++)
		if ((uintptr_t)p - h->arena[i].begin < h->arena[i].end + IOMEM__HEAP_HDR - h->arena[i].begin)
			return true;
	return false;
}

IOMEM_HEAP_API size_t iomem__heap_usable_size(const iomem__heap *h, const void *p)
{
	const iomem__hblock *b = iomem__heap_validate(h, p);
	return b != NULL ? b->size - IOMEM__HEAP_HDR : 0;
}

IOMEM_HEAP_API bool iomem__heap_check(const iomem__heap *h, iomem_heap_census *census)
{
	iomem_heap_census c = { 0, 0, 0, 0, 0, 0 };
	size_t listed = 0, capacity = 0;
	unsigned i, fl, sl;
	if (h->diag.arenas > IOMEM_HEAP_MAX_ARENAS)
		return false;
	/* 1. physical walk of every arena */
	for (i = 0; i < h->diag.arenas; i++) {
		uintptr_t begin = h->arena[i].begin, end = h->arena[i].end, a = begin;
		const iomem__hblock *prev = NULL;
		bool prev_free = false;
		if (begin == 0 || end <= begin || ((begin | end) & (IOMEM_HEAP_ALIGN - 1)) != 0)
			return false;
		capacity += end - begin;
		while (a != end) {
			const iomem__hblock *b = (const iomem__hblock *)a;
			size_t size = IOMEM__HEAP_SIZE(b);
			bool is_free = (b->size & IOMEM__HEAP_FREE) != 0;
			if (b->prev_phys != prev || size < IOMEM__HEAP_MIN_BLOCK ||
			    (size & (IOMEM_HEAP_ALIGN - 1)) != 0 || size > end - a)
				return false;
			if (is_free) {
				iomem__hblock *x;
				if (prev_free)
					return false;          /* two adjacent free blocks */
				iomem__heap_mapping(size, &fl, &sl);
				if (!(h->sl_map[fl] & ((uint32_t)1 << sl)) || !(h->fl_map & ((uint32_t)1 << fl)))
					return false;
				for (x = h->heads[fl][sl]; x != NULL && x != b; x = x->next_free)
					if (++listed > h->diag.capacity)   /* a cycle */
						return false;
				if (x != b)
					return false;          /* free but not on its list */
				c.free_bytes += size;
				c.free_blocks++;
				if (size > c.largest_free)
					c.largest_free = size;
			} else {
				c.used_bytes += size;
				c.used_blocks++;
			}
			prev = b;
			prev_free = is_free;
			a += size;
		}
		if (((const iomem__hblock *)end)->prev_phys != prev || ((const iomem__hblock *)end)->size != 0)
			return false;                      /* sentinel */
	}
	/* 2. every list: bitmaps agree, members are free, in the right list,
	 *    doubly linked, inside an arena; their number matches the walk */
	listed = 0;
	for (fl = 0; fl < IOMEM__HEAP_FL_COUNT; fl++) {
		if (((h->fl_map >> fl) & 1u) != (h->sl_map[fl] != 0))
			return false;
		for (sl = 0; sl < IOMEM__HEAP_SL_COUNT; sl++) {
			const iomem__hblock *x, *back = NULL;
			if (((h->sl_map[fl] >> sl) & 1u) != (h->heads[fl][sl] != NULL))
				return false;
			for (x = h->heads[fl][sl]; x != NULL; back = x, x = x->next_free) {
				unsigned f2, s2;
				if (++listed > c.free_blocks || !iomem__heap_owns(h, x) ||
				    !(x->size & IOMEM__HEAP_FREE) || x->prev_free != back)
					return false;
				iomem__heap_mapping(IOMEM__HEAP_SIZE(x), &f2, &s2);
				if (f2 != fl || s2 != sl)
					return false;
			}
		}
	}
	if (listed != c.free_blocks || capacity != h->diag.capacity ||
	    c.used_bytes != h->diag.allocated || c.used_blocks != h->diag.used_blocks ||
	    c.used_bytes + c.free_bytes != capacity)
		return false;
	/* the largest request G1 promises: need(s) <= the largest list
	 * boundary at or below largest_free */
	if (c.largest_free >= IOMEM__HEAP_MIN_BLOCK) {
		size_t bound = c.largest_free;
		if (bound >= IOMEM__HEAP_SMALL)
			bound &= ~(((size_t)1 << (iomem__heap_fls(bound) - IOMEM__HEAP_SL_LOG2)) - 1);
		c.largest_alloc = bound - IOMEM__HEAP_HDR;
	}
	if (census != NULL)
		*census = c;
	return true;
}

#undef IOMEM__HEAP_BLK
#undef IOMEM__HEAP_SIZE
#undef IOMEM__HEAP_NEXT

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM__HEAP_IMPLEMENTATION */
