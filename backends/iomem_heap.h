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
 *   previous block and the block's size in bytes, header included, a
 *   multiple of IOMEM_HEAP_ALIGN, with bit 0 set while the block is free. A
 *   free block also keeps its free-list links in its first payload words
 *   (the next block, and the address of the link that points at it), so the
 *   smallest block is four words. Each arena starts with a header-only
 *   "start block" and ends with a header-only sentinel, both "used", so that
 *   every block has a physical predecessor and coalescing never walks off
 *   the arena.
 *
 *   Free blocks sit in segregated lists, numbered by size: one list per
 *   8-byte granule below 128 bytes, then IOMEM__HEAP_SL_COUNT (16) lists per
 *   power of two (list = 16 * (log2(size) - 7) + the 4 bits after the top
 *   one, one shift and an add - no branch). A two-level bitmap (one bit per
 *   list in 32-bit words, one bit per non-empty word) finds the first
 *   non-empty list at or above any list in two find-first-set instructions.
 *
 *   Allocation rounds the request up to the next list boundary ("good fit"),
 *   so the first block of the first non-empty list at or above it always
 *   fits: no list is ever searched. The block is split and the tail goes
 *   back to a list. Free merges with both physical neighbours (found through
 *   the header, no search) and inserts the result; a list link knows the
 *   link pointing at it, so a block leaves its list without its list number
 *   being computed. Aligned allocation asks for size + alignment - 8 and
 *   cuts the front gap off: as a free block when it can hold one (its
 *   previous block is used, so no two free blocks meet), else (a gap smaller
 *   than a minimum block) it is lent to the physically previous block -
 *   used, or the arena's start block - with its size in the gap's last word
 *   and a flag in the aligned block's header, and comes back when the
 *   aligned block (or the previous one) is freed. Still no search.
 *
 *   Every operation therefore runs a bounded number of steps independent of
 *   the number of blocks. Measured worst case per call over an adversarial
 *   sequence (wrapper entry to return): x86-64 gcc -O2 (bench/bench_bmheap.c,
 *   ptrace single-step) alloc 114, aligned alloc 172, free 135 instructions;
 *   Cortex-M4 -O2 (tools/bm-heapcount, QEMU trace) 121 / 177 / 132. The
 *   floor of this design is the free with both neighbours free: checking the
 *   pointer (~25), two list removals that may empty a list (two-level bitmap
 *   update each) and one insertion. RISC-V without Zbb pays libgcc's
 *   software count-leading-zeros on every list number.
 *
 * OVERHEAD
 *   Per allocated block: the two-word header, 8 bytes on 32-bit targets and
 *   16 bytes on 64-bit ones, plus rounding of the request to
 *   IOMEM_HEAP_ALIGN; a remainder smaller than a minimum block (16 / 32
 *   bytes) is left in the block instead of being split off. Per arena: two
 *   headers (start block and sentinel). The control block (iomem__heap) is
 *   ~1.7 KiB on 32-bit targets, ~4.3 KiB on 64-bit ones.
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
 *         at least R(need(s) + a - 8) exists;
 *     G3  an allocated block occupies at most need(s) + minimum block - 8
 *         bytes (internal fragmentation); an aligned one may in addition
 *         have lent its physically previous block a front gap smaller than
 *         a minimum block (8 / 24 bytes at most on 32 / 64-bit targets),
 *         which comes back with either block; larger front gaps are free
 *         blocks. Once every block is freed, each arena is one free block;
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

/* Smallest arena accepted (a smaller one cannot hold the start block, a
 * minimum block and the sentinel on a 64-bit target). */
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
#define IOMEM__HEAP_LISTS    (IOMEM__HEAP_FL_COUNT * IOMEM__HEAP_SL_COUNT)
/* one spare word: a search one past the last list reads zero */
#define IOMEM__HEAP_WORDS    (IOMEM__HEAP_LISTS / 32 + 1)
#define IOMEM__HEAP_MAX_BLOCK ((size_t)1 << IOMEM_HEAP_MAX_LOG2)  /* exclusive */
#define IOMEM__HEAP_FREE     ((size_t)1)   /* size bit 0: the block is free */
#define IOMEM__HEAP_LENT     ((size_t)2)   /* size bit 1: the word before the header is a front gap lent to the previous block */

typedef char iomem__heap_words_fit_32_bits[(IOMEM__HEAP_WORDS <= 32 && IOMEM__HEAP_FL_COUNT > 0) ? 1 : -1];

typedef struct iomem__hblock iomem__hblock;
struct iomem__hblock {
	iomem__hblock  *prev_phys;   /* physically previous block, NULL for the start block */
	size_t          size;        /* bytes incl. header | IOMEM__HEAP_FREE */
	iomem__hblock  *next_free;   /* free blocks only: overlap the payload */
	iomem__hblock **link_free;   /* the pointer to this block: a list head or the previous next_free */
};
#define IOMEM__HEAP_HDR       (2 * sizeof(void *))    /* 8 / 16 bytes */
#define IOMEM__HEAP_MIN_BLOCK (sizeof(iomem__hblock)) /* 16 / 32 bytes */

/** Counters of one heap, kept up to date in O(1) (o1heap style). */
typedef struct iomem_heap_diagnostics {
	size_t   capacity;          /* bytes the arenas offer to blocks (headers included) */
	size_t   allocated;         /* bytes in allocated blocks (headers and lent front gaps included) */
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
	size_t used_bytes;          /* allocated blocks + front gaps lent to the start blocks */
	size_t used_blocks;
} iomem_heap_census;

/* first: the first block after the start block (start block = first -
 * header); first + span: the last address a block can start at (the
 * sentinel is a minimum block further) */
typedef struct iomem__heap_arena { uintptr_t first, span; } iomem__heap_arena;

/** The heap's control block; zero it with iomem__heap_init. */
typedef struct iomem__heap {
	uint32_t          top;                        /* bit w: map[w] != 0 */
	uint32_t          map[IOMEM__HEAP_WORDS];     /* bit i % 32 of map[i / 32]: list i non-empty */
	iomem__hblock    *heads[IOMEM__HEAP_LISTS];
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
	return 63u ^ (unsigned)__builtin_clzll((unsigned long long)x);   /* ^: one bsr on x86 */
#elif defined(__GNUC__) || defined(__clang__)
	return 31u ^ (unsigned)__builtin_clz((unsigned)x);
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
#define IOMEM__HEAP_SIZE(b)  ((b)->size & ~(IOMEM_HEAP_ALIGN - 1))
#define IOMEM__HEAP_END(ar)  ((ar)->first + (ar)->span + IOMEM__HEAP_MIN_BLOCK)  /* the sentinel */

/* The list of a block of @size bytes (0 < size < MAX_BLOCK): below 128 one
 * list per granule (size / 8), above 16 per power of two. Setting bit 7
 * makes the small sizes fall into the same formula without a branch. */
IOMEM__HEAP_INLINE unsigned iomem__heap_list(size_t size)
{
	unsigned f = iomem__heap_fls(size | IOMEM__HEAP_SMALL);
	return (f << IOMEM__HEAP_SL_LOG2) + (unsigned)(size >> (f - IOMEM__HEAP_SL_LOG2)) -
	       (IOMEM__HEAP_FL_SHIFT << IOMEM__HEAP_SL_LOG2);
}

/* The first list whose every block holds @n bytes (0 < n < MAX_BLOCK):
 * the list after n - 1's. May be IOMEM__HEAP_LISTS (no such list). */
IOMEM__HEAP_INLINE unsigned iomem__heap_list_up(size_t n)
{
	return iomem__heap_list(n - 1) + 1;
}

IOMEM__HEAP_INLINE void iomem__heap_link(iomem__heap *h, iomem__hblock *b, unsigned i)
{
	iomem__hblock **head = &h->heads[i], *first = *head;
	*head = b;
	b->link_free = head;
	b->next_free = first;
	if (first != NULL)
		first->link_free = &b->next_free;
	h->map[i >> 5] |= (uint32_t)1 << (i & 31);
	h->top |= (uint32_t)1 << (i >> 5);
}

/* List @i became empty. */
IOMEM__HEAP_INLINE void iomem__heap_emptied(iomem__heap *h, unsigned i)
{
	uint32_t m = h->map[i >> 5] & ~((uint32_t)1 << (i & 31));
	h->map[i >> 5] = m;
	if (m == 0)
		h->top &= ~((uint32_t)1 << (i >> 5));
}

/* Takes free block @b off its list; its list number is needed only when
 * the list becomes empty, and then it is where its head sits. */
IOMEM__HEAP_INLINE void iomem__heap_unlink(iomem__heap *h, iomem__hblock *b)
{
	iomem__hblock *next = b->next_free, **link = b->link_free;
	*link = next;
	if (next != NULL)
		next->link_free = link;
	else if ((uintptr_t)link - (uintptr_t)h->heads < sizeof h->heads)
		iomem__heap_emptied(h, (unsigned)(link - h->heads));
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

/* Takes the first block of the first non-empty list at or above list @i off
 * its list, or NULL. */
IOMEM__HEAP_INLINE iomem__hblock *iomem__heap_take(iomem__heap *h, unsigned i)
{
	unsigned w = i >> 5;
	uint32_t m = h->map[w] & (~(uint32_t)0 << (i & 31));
	iomem__hblock *b, *next;
	if (m == 0) {
		uint32_t t = h->top & (~(uint32_t)1 << w);
		if (t == 0)
			return NULL;
		w = iomem__heap_ffs32(t);
		m = h->map[w];
	}
	i = (w << 5) + iomem__heap_ffs32(m);
	b = h->heads[i];
	next = b->next_free;
	h->heads[i] = next;
	if (next != NULL)
		next->link_free = &h->heads[i];
	else
		iomem__heap_emptied(h, i);
	return b;
}

/* Marks @b (off the lists, size @bsize) used with @need bytes; the tail goes
 * back to a list when it can hold a block. Returns the payload. */
IOMEM__HEAP_INLINE void *iomem__heap_carve(iomem__heap *h, iomem__hblock *b, size_t bsize, size_t need,
                                           size_t lent)
{
	size_t rest = bsize - need;
	if (rest >= IOMEM__HEAP_MIN_BLOCK) {
		iomem__hblock *t = IOMEM__HEAP_BLK((uintptr_t)b + need);
		t->prev_phys = b;
		t->size = rest | IOMEM__HEAP_FREE;
		IOMEM__HEAP_BLK((uintptr_t)t + rest)->prev_phys = t;
		iomem__heap_link(h, t, iomem__heap_list(rest));
		bsize = need;
	}
	b->size = bsize | lent;
	h->diag.allocated += bsize;
	if (h->diag.allocated > h->diag.peak_allocated)
		h->diag.peak_allocated = h->diag.allocated;
	h->diag.used_blocks++;
	h->diag.alloc_count++;
	return (void *)((uintptr_t)b + IOMEM__HEAP_HDR);
}

IOMEM_HEAP_API void iomem__heap_init(iomem__heap *h)
{
	unsigned i;
	h->top = 0;
	for (i = 0; i < IOMEM__HEAP_WORDS; i++)
		h->map[i] = 0;
	for (i = 0; i < IOMEM__HEAP_LISTS; i++)
		h->heads[i] = NULL;
	for (i = 0; i < IOMEM_HEAP_MAX_ARENAS; i++) {
		h->arena[i].first = 1;     /* unused: no aligned address is in it */
		h->arena[i].span = 0;
	}
	h->diag.capacity = h->diag.allocated = h->diag.peak_allocated = 0;
	h->diag.peak_request = h->diag.used_blocks = 0;
	h->diag.alloc_count = h->diag.free_count = h->diag.oom_count = 0;
	h->diag.rejected_frees = 0;
	h->diag.arenas = 0;
}

IOMEM_HEAP_API bool iomem__heap_add_arena(iomem__heap *h, void *base, size_t size)
{
	uintptr_t a = (uintptr_t)base, first, end;
	unsigned i, n = h->diag.arenas;
	iomem__hblock *s, *b, *e;
	if (base == NULL || (a & (IOMEM_HEAP_ALIGN - 1)) != 0 || size < IOMEM_HEAP_ARENA_MIN ||
	    size > UINTPTR_MAX - a || n >= IOMEM_HEAP_MAX_ARENAS)
		return false;
	for (i = 0; i < n; i++)   /* overlap with an arena already added */
		if (a < IOMEM__HEAP_END(&h->arena[i]) + IOMEM__HEAP_HDR && h->arena[i].first - IOMEM__HEAP_HDR < a + size)
			return false;
	size &= ~(IOMEM_HEAP_ALIGN - 1);
	if (size - 2 * IOMEM__HEAP_HDR >= IOMEM__HEAP_MAX_BLOCK)
		size = IOMEM__HEAP_MAX_BLOCK - IOMEM_HEAP_ALIGN + 2 * IOMEM__HEAP_HDR;
	first = a + IOMEM__HEAP_HDR;
	end = a + size - IOMEM__HEAP_HDR;
	s = IOMEM__HEAP_BLK(a);
	b = IOMEM__HEAP_BLK(first);
	e = IOMEM__HEAP_BLK(end);
	s->prev_phys = NULL;               /* start block: "used", header only */
	s->size = IOMEM__HEAP_HDR;
	b->prev_phys = s;
	b->size = (end - first) | IOMEM__HEAP_FREE;
	e->prev_phys = b;
	e->size = 0;                       /* sentinel: "used", size 0 */
	iomem__heap_link(h, b, iomem__heap_list(end - first));
	h->arena[n].first = first;
	h->arena[n].span = end - IOMEM__HEAP_MIN_BLOCK - first;
	h->diag.arenas = n + 1;
	h->diag.capacity += end - first;
	return true;
}

IOMEM_HEAP_API void *iomem__heap_alloc(iomem__heap *h, size_t size)
{
	size_t need;
	iomem__hblock *b;
	if (size > h->diag.peak_request)
		h->diag.peak_request = size;
	if (IOMEM__HEAP_UNLIKELY(size >= IOMEM__HEAP_MAX_BLOCK - IOMEM__HEAP_HDR - IOMEM_HEAP_ALIGN))
		goto oom;
	need = iomem__heap_request_need(size);
	b = iomem__heap_take(h, iomem__heap_list_up(need));
	if (IOMEM__HEAP_UNLIKELY(b == NULL))
		goto oom;
	return iomem__heap_carve(h, b, b->size - IOMEM__HEAP_FREE, need, 0);
oom:
	h->diag.oom_count++;
	return NULL;
}

IOMEM_HEAP_API void *iomem__heap_alloc_aligned(iomem__heap *h, size_t size, size_t align)
{
	size_t need, bsize, gap, lent = 0;
	iomem__hblock *b;
	if (align <= IOMEM_HEAP_ALIGN && (align & (align - 1)) == 0)
		return iomem__heap_alloc(h, size);
	if (size > h->diag.peak_request)
		h->diag.peak_request = size;
	if (IOMEM__HEAP_UNLIKELY((align & (align - 1)) != 0 || size >= IOMEM__HEAP_MAX_BLOCK / 2 ||
	                         align >= IOMEM__HEAP_MAX_BLOCK / 2))   /* no overflow below */
		goto oom;
	need = iomem__heap_request_need(size);
	/* the payload moves forward by at most align - 8 */
	b = iomem__heap_take(h, iomem__heap_list_up(need + align - IOMEM_HEAP_ALIGN));
	if (IOMEM__HEAP_UNLIKELY(b == NULL))
		goto oom;
	bsize = b->size - IOMEM__HEAP_FREE;
	gap = (size_t)(-((uintptr_t)b + IOMEM__HEAP_HDR) & (uintptr_t)(align - 1));
	if (gap != 0) {
		/* a gap that can hold a block becomes a free one (its previous
		 * block is used: no two free blocks meet); a smaller one is lent
		 * to the previous block - used or the start block - and its last
		 * word says how much: it comes back when this block is freed (or
		 * with the previous block, if that goes first) */
		iomem__hblock *prev = b->prev_phys, *nb = IOMEM__HEAP_BLK((uintptr_t)b + gap);
		if (gap >= IOMEM__HEAP_MIN_BLOCK) {
			b->size = gap | IOMEM__HEAP_FREE;
			iomem__heap_link(h, b, iomem__heap_list(gap));
			prev = b;
		} else {
			prev->size += gap;
			h->diag.allocated += gap;
			((size_t *)nb)[-1] = gap;
			lent = IOMEM__HEAP_LENT;
		}
		nb->prev_phys = prev;
		bsize -= gap;
		IOMEM__HEAP_BLK((uintptr_t)nb + bsize)->prev_phys = nb;
		b = nb;
	}
	return iomem__heap_carve(h, b, bsize, need, lent);
oom:
	h->diag.oom_count++;
	return NULL;
}

/* The block of payload @p if it is a live block of @h, else NULL. Reads only
 * words inside @h's arenas. */
IOMEM__HEAP_INLINE iomem__hblock *iomem__heap_validate(const iomem__heap *h, const void *p)
{
	uintptr_t a = (uintptr_t)p - IOMEM__HEAP_HDR, off, d;
	const iomem__heap_arena *ar = h->arena;
	const iomem__hblock *b = (const iomem__hblock *)a;
	size_t size;
	if (((uintptr_t)p & (IOMEM_HEAP_ALIGN - 1)) != 0)
		return NULL;
	off = a - ar->first;
	if (off > ar->span) {           /* not the first arena (unused slots match nothing) */
		for (;;) {
			if (++ar == h->arena + IOMEM_HEAP_MAX_ARENAS)
				return NULL;
			off = a - ar->first;
			if (off <= ar->span)
				break;
		}
	}
	size = b->size;
	if ((size & (IOMEM_HEAP_ALIGN - 1) & ~IOMEM__HEAP_LENT) != 0)
		return NULL;                   /* free (bit 0), foreign or overwritten */
	size &= ~IOMEM__HEAP_LENT;
	if (size - IOMEM__HEAP_MIN_BLOCK > ar->span - off)   /* MIN .. up to the sentinel */
		return NULL;
	if (((const iomem__hblock *)(a + size))->prev_phys != b)
		return NULL;
	/* the previous block: from the start block (first - header) up to a,
	 * aligned, ending at a (a NULL prev_phys fails the range) */
	d = a - (uintptr_t)b->prev_phys;
	if ((d & (IOMEM_HEAP_ALIGN - 1)) != 0 || d - IOMEM__HEAP_HDR > off ||
	    IOMEM__HEAP_SIZE(b->prev_phys) != d)
		return NULL;
	return (iomem__hblock *)a;
}

IOMEM_HEAP_API bool iomem__heap_free(iomem__heap *h, void *p)
{
	iomem__hblock *b, *next, *prev;
	size_t size, nsize, lent;
	if (p == NULL)
		return true;
	b = iomem__heap_validate(h, p);
	if (IOMEM__HEAP_UNLIKELY(b == NULL)) {
		h->diag.rejected_frees++;
		return false;
	}
	size = b->size;
	lent = size & IOMEM__HEAP_LENT;
	size -= lent;
	h->diag.allocated -= size;
	h->diag.used_blocks--;
	h->diag.free_count++;
	next = IOMEM__HEAP_BLK((uintptr_t)b + size);
	nsize = next->size;
	if (nsize & IOMEM__HEAP_FREE) {
		iomem__heap_unlink(h, next);
		size += nsize - IOMEM__HEAP_FREE;
	} else {
		next->size = nsize & ~IOMEM__HEAP_LENT;   /* a gap it lent us is part of us */
	}
	prev = b->prev_phys;
	if (prev->size & IOMEM__HEAP_FREE) {
		iomem__heap_unlink(h, prev);
		size += prev->size - IOMEM__HEAP_FREE;
		b = prev;
	} else if (lent != 0) {
		/* take the front gap back from the previous block; a gap word
		 * its owner overwrote is left alone (the gap stays with it) */
		size_t gap = ((size_t *)b)[-1], d = (uintptr_t)b - (uintptr_t)prev;
		if ((gap & (IOMEM_HEAP_ALIGN - 1)) == 0 && gap - IOMEM_HEAP_ALIGN < d - IOMEM__HEAP_HDR) {
			prev->size -= gap;
			h->diag.allocated -= gap;
			size += gap;
			b = IOMEM__HEAP_BLK((uintptr_t)b - gap);
			b->prev_phys = prev;
		}
	}
	b->size = size | IOMEM__HEAP_FREE;
	IOMEM__HEAP_BLK((uintptr_t)b + size)->prev_phys = b;
	iomem__heap_link(h, b, iomem__heap_list(size));
	return true;
}

IOMEM_HEAP_API bool iomem__heap_owns(const iomem__heap *h, const void *p)
{
	unsigned i;
	for (i = 0; i < h->diag.arenas; i++) {
		uintptr_t lo = h->arena[i].first - IOMEM__HEAP_HDR;
		if ((uintptr_t)p - lo < IOMEM__HEAP_END(&h->arena[i]) + IOMEM__HEAP_HDR - lo)
			return true;
	}
	return false;
}

IOMEM_HEAP_API size_t iomem__heap_usable_size(const iomem__heap *h, const void *p)
{
	const iomem__hblock *b = iomem__heap_validate(h, p), *next;
	size_t n;
	if (b == NULL)
		return 0;
	n = IOMEM__HEAP_SIZE(b);
	next = (const iomem__hblock *)((uintptr_t)b + n);
	n -= IOMEM__HEAP_HDR;
	if ((next->size & (IOMEM__HEAP_FREE | IOMEM__HEAP_LENT)) == IOMEM__HEAP_LENT)
		n -= ((const size_t *)next)[-1];   /* lent to the next block */
	return n;
}

IOMEM_HEAP_API bool iomem__heap_check(const iomem__heap *h, iomem_heap_census *census)
{
	iomem_heap_census c = { 0, 0, 0, 0, 0, 0 };
	size_t listed = 0, capacity = 0;
	unsigned i, w;
	if (h->diag.arenas > IOMEM_HEAP_MAX_ARENAS)
		return false;
	/* 1. physical walk of every arena, from its start block */
	for (i = 0; i < h->diag.arenas; i++) {
		uintptr_t first = h->arena[i].first, end = IOMEM__HEAP_END(&h->arena[i]), a;
		const iomem__hblock *prev = (const iomem__hblock *)(first - IOMEM__HEAP_HDR);
		bool prev_free = false;
		if (first <= IOMEM__HEAP_HDR || end <= first || ((first | end) & (IOMEM_HEAP_ALIGN - 1)) != 0 ||
		    h->arena[i].span > UINTPTR_MAX - first - IOMEM__HEAP_MIN_BLOCK)
			return false;
		if (prev->prev_phys != NULL || prev->size < IOMEM__HEAP_HDR ||
		    (prev->size & (IOMEM_HEAP_ALIGN - 1)) != 0 || prev->size - IOMEM__HEAP_HDR >= end - first)
			return false;                      /* the start block */
		capacity += end - first;
		c.used_bytes += prev->size - IOMEM__HEAP_HDR;   /* lent front gaps */
		a = (uintptr_t)prev + prev->size;
		while (a != end) {
			const iomem__hblock *b = (const iomem__hblock *)a;
			size_t size = IOMEM__HEAP_SIZE(b);
			bool is_free = (b->size & IOMEM__HEAP_FREE) != 0;
			if (b->prev_phys != prev || size < IOMEM__HEAP_MIN_BLOCK || size > end - a ||
			    (b->size & 4) != 0 || (b->size & 3) == 3)
				return false;
			if (b->size & IOMEM__HEAP_LENT) {  /* the gap word, and what it leaves the previous block */
				size_t gap = ((const size_t *)b)[-1];
				size_t keep = prev->prev_phys == NULL ? IOMEM__HEAP_HDR : IOMEM__HEAP_MIN_BLOCK;
				if (prev_free || gap == 0 || (gap & (IOMEM_HEAP_ALIGN - 1)) != 0 ||
				    gap > IOMEM__HEAP_SIZE(prev) - keep)
					return false;
			}
			if (is_free) {
				const iomem__hblock *x;
				unsigned l = iomem__heap_list(size);
				if (prev_free)
					return false;          /* two adjacent free blocks */
				if (!(h->map[l >> 5] & ((uint32_t)1 << (l & 31))) || !(h->top & ((uint32_t)1 << (l >> 5))))
					return false;
				for (x = h->heads[l]; x != NULL && x != b; x = x->next_free)
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
	 *    linked back, inside an arena; their number matches the walk */
	listed = 0;
	for (w = 0; w < IOMEM__HEAP_WORDS; w++)
		if (((h->top >> w) & 1u) != (h->map[w] != 0))
			return false;
	if (IOMEM__HEAP_WORDS < 32 && (h->top >> (IOMEM__HEAP_WORDS % 32)) != 0)
		return false;
	for (i = 0; i < IOMEM__HEAP_WORDS * 32; i++) {
		iomem__hblock *const *link;
		const iomem__hblock *x;
		bool bit = ((h->map[i >> 5] >> (i & 31)) & 1u) != 0;
		if (i >= IOMEM__HEAP_LISTS) {
			if (bit)
				return false;
			continue;
		}
		if (bit != (h->heads[i] != NULL))
			return false;
		link = &h->heads[i];
		for (x = h->heads[i]; x != NULL; link = &x->next_free, x = x->next_free) {
			if (++listed > c.free_blocks || !iomem__heap_owns(h, x) ||
			    ((uintptr_t)x & (IOMEM_HEAP_ALIGN - 1)) != 0 ||
			    !(x->size & IOMEM__HEAP_FREE) || x->link_free != link ||
			    iomem__heap_list(IOMEM__HEAP_SIZE(x)) != i)
				return false;
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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM__HEAP_IMPLEMENTATION */
