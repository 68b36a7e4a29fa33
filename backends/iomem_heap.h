/* SPDX-License-Identifier: MIT */
/*
 * backends/iomem_heap.h - iomem's O(1) heap: a half-fit allocator (one free
 * list per power of two, Ogasawara 1995; the policy of o1heap) over one or
 * more caller-given arenas.
 *
 * Written from scratch for iomem. The bare-metal backend uses it for the
 * IOMalloc family and for bounce buffers (backends/iomem_baremetal.h includes
 * this file); it has no dependency on the rest of iomem, so the host tests
 * (tests/test_bmheap.c) and the benchmark (bench/bench_bmheap.c) compile it
 * on their own:
 *
 *     #define IOMEM__HEAP_IMPLEMENTATION 1     // in one TU
 *     #include "backends/iomem_heap.h"
 *
 *     iomem__heap h;
 *     iomem__heap_init(&h);                    // power-of-two blocks
 *     iomem__heap_add_arena(&h, arena, sizeof arena);
 *     void *p = iomem__heap_alloc(&h, 100);
 *     iomem__heap_free(&h, p);
 *
 * Only <stddef.h> <stdint.h> <stdbool.h>; no libc, no floating point, no
 * TLS, no atomics, no recursion, no VLAs. Not thread-safe: the caller
 * serialises (the bare-metal backend holds its lock hooks around each call).
 *
 * CONTENTS
 *   DESIGN, FIT POLICIES, OVERHEAD, WORST-CASE FRAGMENTATION, MISUSE (below)
 *   public declarations                      iomem__heap, diagnostics, census
 *   implementation                           bit scans, lists, alloc, free,
 *                                            validation, the checker
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
 *   Free block of size s sits in list floor(log2 s); one machine word has a
 *   bit per non-empty list. A request that needs n bytes takes the first
 *   block of the first non-empty list at or above ceil(log2 n) - one mask
 *   and one count-trailing-zeros: every block there holds at least n bytes,
 *   so no list is ever searched. When those lists are all empty, the head
 *   of the list below is taken if it happens to be large enough (one more
 *   look; it lets a large request use a hole short of the next power of
 *   two). The block is split and the tail goes back to its list. Free
 *   merges with both physical neighbours (found through the header, no
 *   search). A list link knows the link pointing at it, so a block leaves
 *   its list without its list number being computed.
 *
 *   Most merges and splits leave a block in the list it was in (a 4 KiB
 *   block freed next to a 1 MiB hole leaves the hole in the 1 MiB list):
 *   then the block keeps - or takes over - its place in the list and the
 *   bitmap is not touched. That is what makes the hot allocate + free pair
 *   short; the worst case is the general path (two removals, one insertion).
 *
 *   Aligned allocation asks for a block of size + header + minimum block +
 *   alignment - 8 bytes and cuts off a front gap of at least a minimum block
 *   (when the block is not aligned already), which goes back to its list as
 *   a free block: its physically previous block is used, so no two free
 *   blocks meet. No search for an aligned spot.
 *
 *   Measured worst case per call over an adversarial sequence (wrapper entry
 *   to return, ./tools/bench --filter bmheap, ptrace single-step, x86-64
 *   gcc -O2) and on Cortex-M4 (tools/bm-heapcount): see README.md ("Bare
 *   metal") for the figures of this version.
 *
 * FIT POLICIES (iomem__heap.exact_fit, set after iomem__heap_init, before
 * the first allocation)
 *   power of two (default, o1heap's policy): an allocated block is need(s)
 *     rounded up to a power of two. Up to half of a block is unused, but the
 *     heap's worst case is bounded (below).
 *   exact: an allocated block is need(s) (the request plus the header, to
 *     the 8-byte granule); the rest of the block it came from goes back to a
 *     list. Less memory in use on average - a 4 KiB buffer takes 4 KiB + 8,
 *     not 8 KiB - but no proven bound on external fragmentation. The
 *     bare-metal backend uses it for the bounce arena.
 *   Both policies find blocks the same way (same guarantees G1, G2, G4) and
 *   run about the same number of instructions.
 *
 * OVERHEAD
 *   Per allocated block: the two-word header, 8 bytes on 32-bit targets and
 *   16 bytes on 64-bit ones, plus rounding (above); a remainder smaller than
 *   a minimum block (16 / 32 bytes) stays in the block instead of being
 *   split off. Per arena: two headers (start block and sentinel). The
 *   control block (iomem__heap) is ~0.2 KiB on 32-bit targets, ~0.5 KiB on
 *   64-bit ones.
 *
 * WORST-CASE FRAGMENTATION (what is guaranteed; tests/test_bmheap.c and the
 * on-target stress test check it)
 *   Let need(s) = max(round_up(s + header, 8), minimum block), P(n) = n
 *   rounded up to a power of two, and R(n) = P(n) (iomem__heap_round_list).
 *     G1  iomem__heap_alloc(s) succeeds whenever any free block has a size
 *         of at least P(need(s)) - within a factor 2 of best fit, whatever
 *         the history of the heap - and also when the head of the list
 *         below holds its block;
 *     G2  iomem__heap_alloc_aligned(s, a), a > 8, succeeds whenever a free
 *         block of at least P(b(s) + minimum block + a - 8) exists (b(s) as
 *         in G3), and also when the head of the list below holds that;
 *     G3  an allocated block occupies at most b(s) + minimum block - 8
 *         bytes, b(s) = P(need(s)) (power of two) or need(s) (exact); the
 *         front gap of an aligned block is a free block. Once every block is
 *         freed, each arena is one free block;
 *     G4  no two free blocks are ever adjacent (immediate coalescing), so
 *         the free space of an arena is a set of maximal holes between live
 *         blocks;
 *     G5  (power of two, unaligned requests) the worst-case memory bound
 *         o1heap states for this policy, after Robson's bound for
 *         power-of-two blocks: if the live requests never need more than M
 *         bytes in all (the peak sum of need(s)) and n is the ratio of the
 *         largest need(s) to the smallest, an arena of
 *         H = 2M(1 + ceil(log2 n)) bytes never fails a request (the factor
 *         2 is the rounding to powers of two). tests/test_bmheap.c runs
 *         random and adversarial workloads at exactly that size (also with
 *         M counted in rounded blocks) and expects no failure; the worst it
 *         has seen is 12.25 M for n = 4096, where H = 26 M.
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

#define IOMEM__HEAP_LISTS     IOMEM_HEAP_MAX_LOG2                      /* list k: [2^k, 2^(k+1)) */
#define IOMEM__HEAP_MAX_BLOCK ((size_t)1 << IOMEM_HEAP_MAX_LOG2)        /* exclusive */
#define IOMEM__HEAP_FREE      ((size_t)1)   /* size bit 0: the block is free */

/* one bit per list in a size_t */
typedef char iomem__heap_lists_fit_a_word[(IOMEM_HEAP_MAX_LOG2 < 8 * sizeof(size_t) && IOMEM_HEAP_MAX_LOG2 > 8) ? 1 : -1];

typedef struct iomem__hblock iomem__hblock;
struct iomem__hblock {
	iomem__hblock  *prev_phys;   /* physically previous block, NULL for the start block */
	size_t          size;        /* bytes incl. header | IOMEM__HEAP_FREE */
	iomem__hblock  *next_free;   /* free blocks only: overlap the payload */
	iomem__hblock **link_free;   /* the pointer to this block: a list head or the previous next_free */
};
#define IOMEM__HEAP_HDR       (2 * sizeof(void *))    /* 8 / 16 bytes */
#define IOMEM__HEAP_MIN_BLOCK (sizeof(iomem__hblock)) /* 16 / 32 bytes */
/* Largest request: its block, a power of two, is below MAX_BLOCK. */
#define IOMEM__HEAP_MAX_REQUEST (IOMEM__HEAP_MAX_BLOCK / 2 - IOMEM__HEAP_HDR)

/** Counters of one heap, kept up to date in O(1) (o1heap style). */
typedef struct iomem_heap_diagnostics {
	size_t   capacity;          /* bytes the arenas offer to blocks (headers included) */
	size_t   allocated;         /* bytes in allocated blocks (headers included) */
	size_t   peak_allocated;    /* highest value of allocated */
	size_t   peak_request;      /* largest size ever requested */
	size_t   used_blocks;       /* blocks allocated now */
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
	size_t used_bytes;          /* allocated blocks */
	size_t used_blocks;
} iomem_heap_census;

/* first: the first block after the start block (start block = first -
 * header); span: the last address a block can start at, minus first (the
 * sentinel is a minimum block further); slots: span / 8 + 1, the number of
 * places a block can start (0 in an unused slot: it matches nothing) */
typedef struct iomem__heap_arena { uintptr_t first, span, slots; } iomem__heap_arena;

/** The heap's control block; zero it with iomem__heap_init. */
typedef struct iomem__heap {
	size_t            map;                        /* bit k: list k non-empty */
	iomem__hblock    *heads[IOMEM__HEAP_LISTS];
	iomem__heap_arena arena[IOMEM_HEAP_MAX_ARENAS];
	iomem_heap_diagnostics diag;
	bool              exact_fit;                  /* FIT POLICIES; false after init */
} iomem__heap;

/* iomem__heap_init - empty heap, no arenas, power-of-two policy. */
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
 * block of @h is refused: false, nothing changes. O(1) (plus one check per
 * arena before the pointer's). */
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
/* iomem__heap_request_need - need(s): the request plus the header, to the
 * granule, at least a minimum block (the block size under the exact policy). */
IOMEM_HEAP_API size_t iomem__heap_request_need(size_t size);
/* iomem__heap_round_list - R(n) = P(n), n rounded up to a power of two: the
 * smallest free block that is sure to hold n bytes (G1, G2); 0 for 0 and for
 * n above the largest power of two. */
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
#  define IOMEM__HEAP_LIKELY(x)   __builtin_expect(!!(x), 1)
#  define IOMEM__HEAP_COLD        static __attribute__((noinline, cold))
#else
#  define IOMEM__HEAP_INLINE static inline
#  define IOMEM__HEAP_UNLIKELY(x) (x)
#  define IOMEM__HEAP_LIKELY(x)   (x)
#  define IOMEM__HEAP_COLD        static
#endif

#define IOMEM__HEAP_BITS     (8u * (unsigned)sizeof(size_t))
#define IOMEM__HEAP_BIT(k)   ((size_t)1 << (k))
#define IOMEM__HEAP_BLK(a)   ((iomem__hblock *)(a))
#define IOMEM__HEAP_SIZE(b)  ((b)->size & ~(IOMEM_HEAP_ALIGN - 1))
#define IOMEM__HEAP_END(ar)  ((ar)->first + (ar)->span + IOMEM__HEAP_MIN_BLOCK)  /* the sentinel */

/* ---- bit scans --------------------------------------------------------------
 * Index of the lowest / highest set bit of x != 0. The builtins are one
 * instruction where the core has it (x86 tzcnt/bsr, ARMv7-M rbit+clz / clz,
 * RISC-V Zbb); elsewhere the compiler's helper or the fallback below. */
IOMEM__HEAP_INLINE size_t iomem__heap_ctz(size_t x)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	size_t r;   /* the builtin returns int: gcc sign-extends it before every use as an index */
	__asm__("bsf %1, %0" : "=r"(r) : "rm"(x) : "cc");
	return r;
#elif (defined(__GNUC__) || defined(__clang__)) && SIZE_MAX > 0xFFFFFFFFu
	return (size_t)__builtin_ctzll((unsigned long long)x);
#elif defined(__GNUC__) || defined(__clang__)
	return (size_t)__builtin_ctz((unsigned)x);
#else
	size_t n = 0;
#  if SIZE_MAX > 0xFFFFFFFFu
	if (!(x & 0xFFFFFFFFu)) { n += 32; x >>= 32; }
#  endif
	if (!(x & 0xFFFFu)) { n += 16; x >>= 16; }
	if (!(x & 0xFFu))   { n += 8;  x >>= 8; }
	if (!(x & 0xFu))    { n += 4;  x >>= 4; }
	if (!(x & 0x3u))    { n += 2;  x >>= 2; }
	return n + (size_t)!(x & 1u);
#endif
}

IOMEM__HEAP_INLINE size_t iomem__heap_fls(size_t x)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	size_t r;
	__asm__("bsr %1, %0" : "=r"(r) : "rm"(x) : "cc");
	return r;
#elif (defined(__GNUC__) || defined(__clang__)) && SIZE_MAX > 0xFFFFFFFFu
	return (size_t)(63 ^ __builtin_clzll((unsigned long long)x));   /* ^: one bsr on x86 */
#elif defined(__GNUC__) || defined(__clang__)
	return (size_t)(31 ^ __builtin_clz((unsigned)x));
#else
	size_t n = 0;
#  if SIZE_MAX > 0xFFFFFFFFu
	if (x >> 32) { n += 32; x >>= 32; }
#  endif
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8)  { n += 8;  x >>= 8; }
	if (x >> 4)  { n += 4;  x >>= 4; }
	if (x >> 2)  { n += 2;  x >>= 2; }
	return n + (x >> 1);
#endif
}

/* x rotated right by 3: a multiple of 8 becomes x / 8, anything else a value
 * above every arena's slot count - one compare checks range and alignment. */
IOMEM__HEAP_INLINE size_t iomem__heap_ror3(size_t x)
{
	return (x >> 3) | (x << (IOMEM__HEAP_BITS - 3u));
}

/* *map with bit @k set / cleared. x86-64: one bts / btr on a register (gcc
 * spends three instructions on a variable shift and an or / a rotate and an
 * and). */
IOMEM__HEAP_INLINE void iomem__heap_bit_set(size_t *map, size_t k)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__asm__("bts %1, %0" : "+r"(*map) : "r"(k) : "cc");
#else
	*map |= IOMEM__HEAP_BIT(k);
#endif
}

IOMEM__HEAP_INLINE void iomem__heap_bit_clear(size_t *map, size_t k)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__asm__("btr %1, %0" : "+r"(*map) : "r"(k) : "cc");
#else
	*map &= ~IOMEM__HEAP_BIT(k);
#endif
}

/* ---- free lists ------------------------------------------------------------
 * The list operations update a copy of the bitmap (@map) that the caller
 * loads once and stores once: a call that moves blocks between lists then
 * touches the bitmap in memory only twice. */
IOMEM__HEAP_INLINE void iomem__heap_link(iomem__heap *h, size_t *map, iomem__hblock *b, size_t k)
{
	iomem__hblock **head = &h->heads[k], *first = *head;
	b->next_free = first;
	*head = b;
	b->link_free = head;
	if (first != NULL)
		first->link_free = &b->next_free;
	iomem__heap_bit_set(map, k);
}

/* Takes free block @b of @size bytes off its list. Only the last block of
 * a list can empty it, and then its list's head is NULL. */
IOMEM__HEAP_INLINE void iomem__heap_unlink(iomem__heap *h, size_t *map, iomem__hblock *b, size_t size)
{
	iomem__hblock *next = b->next_free, **link = b->link_free;
	*link = next;
	if (next != NULL) {
		next->link_free = link;
	} else {
		size_t k = iomem__heap_fls(size);
		if (h->heads[k] == NULL)
			iomem__heap_bit_clear(map, k);
	}
}

/* Takes @b, the head of list @k, off the list. */
IOMEM__HEAP_INLINE void iomem__heap_pop(iomem__heap *h, size_t *map, iomem__hblock *b, size_t k)
{
	iomem__hblock *next = b->next_free;
	h->heads[k] = next;
	if (next != NULL)
		next->link_free = &h->heads[k];
	else
		iomem__heap_bit_clear(map, k);
}

/* Free block @nb takes over the list place of free block @b (same list).
 * The store through link sits between the two field stores: gcc would
 * otherwise pair them (and the loads) through a vector register, which
 * costs more instructions than it saves. */
IOMEM__HEAP_INLINE void iomem__heap_replace(iomem__hblock *b, iomem__hblock *nb)
{
	iomem__hblock *next = b->next_free, **link = b->link_free;
	nb->link_free = link;
	*link = nb;
	nb->next_free = next;
	if (next != NULL)
		next->link_free = &nb->next_free;
}

/* Blocks of sizes @a >= @b > 0 share a list (the same highest bit). */
IOMEM__HEAP_INLINE bool iomem__heap_same_list(size_t a, size_t b)
{
	return (a ^ b) < b;
}

IOMEM_HEAP_API size_t iomem__heap_round_list(size_t n)
{
	if (n <= 1)
		return n;
	if (n - 1 >= ((size_t)1 << (IOMEM__HEAP_BITS - 1u)))
		return 0;
	return (size_t)2 << iomem__heap_fls(n - 1);
}

IOMEM_HEAP_API size_t iomem__heap_request_need(size_t size)
{
	size_t need = (size + IOMEM__HEAP_HDR + IOMEM_HEAP_ALIGN - 1) & ~(IOMEM_HEAP_ALIGN - 1);
	return need < IOMEM__HEAP_MIN_BLOCK ? IOMEM__HEAP_MIN_BLOCK : need;
}

/* The list every block of which holds @need bytes: ceil(log2 need). Blocks
 * are at least a minimum block, so the OR costs nothing and keeps need - 1
 * non-zero. */
IOMEM__HEAP_INLINE size_t iomem__heap_list_up(size_t need)
{
	return iomem__heap_fls((need - 1) | (IOMEM__HEAP_MIN_BLOCK - 1)) + 1;
}

/* The non-empty lists at or above list @k (k < IOMEM__HEAP_BITS): 0 if
 * there is none, else the lowest set bit is the list to take from. */
IOMEM__HEAP_INLINE size_t iomem__heap_lists_from(size_t map, size_t k)
{
	return map & (~(size_t)0 << k);
}

/* When no list at or above the one that is sure to fit has a block: the
 * head of list @k (the one below) if it happens to hold @need bytes - one
 * more look, still O(1), which lets a large request use a hole smaller
 * than the next power of two (exact fit; aligned requests). */
IOMEM__HEAP_INLINE iomem__hblock *iomem__heap_below(const iomem__heap *h, size_t k, size_t need)
{
	iomem__hblock *b = h->heads[k];
	return b != NULL && b->size > need ? b : NULL;   /* size has the free bit: > is >= */
}

/* Takes the first block of the first non-empty list at or above @k (else
 * iomem__heap_below's block from list k - 1) and splits @need bytes off
 * its front, the tail (if it can hold a block) going
 * back to its list - in the block's own place when that is its list.
 * Returns the block (marked used, not yet counted) or NULL. */
IOMEM__HEAP_INLINE iomem__hblock *iomem__heap_take(iomem__heap *h, size_t k, size_t need)
{
	size_t bsize, rest, map = h->map, m = iomem__heap_lists_from(map, k);
	iomem__hblock *b, *t;
	if (IOMEM__HEAP_LIKELY(m != 0)) {
		k = iomem__heap_ctz(m);
		b = h->heads[k];
	} else {
		b = iomem__heap_below(h, --k, need);
		if (b == NULL)
			return NULL;
	}
	bsize = b->size - IOMEM__HEAP_FREE;
	rest = bsize - need;
	if (rest >= IOMEM__HEAP_MIN_BLOCK) {
		t = IOMEM__HEAP_BLK((uintptr_t)b + need);
		t->prev_phys = b;
		t->size = rest | IOMEM__HEAP_FREE;
		IOMEM__HEAP_BLK((uintptr_t)t + rest)->prev_phys = t;
		if (iomem__heap_same_list(bsize, rest)) {
			iomem__heap_replace(b, t);
		} else {
			iomem__heap_pop(h, &map, b, k);
			iomem__heap_link(h, &map, t, iomem__heap_fls(rest));
			h->map = map;
		}
		bsize = need;
	} else {
		iomem__heap_pop(h, &map, b, k);
		h->map = map;
	}
	b->size = bsize;
	return b;
}

/* Counts the new block @b and returns its payload. */
IOMEM__HEAP_INLINE void *iomem__heap_count(iomem__heap *h, iomem__hblock *b)
{
	size_t allocated = h->diag.allocated + b->size;
	h->diag.allocated = allocated;
	if (allocated > h->diag.peak_allocated)
		h->diag.peak_allocated = allocated;
	h->diag.used_blocks++;
	return (void *)((uintptr_t)b + IOMEM__HEAP_HDR);
}

IOMEM__HEAP_COLD void *iomem__heap_oom(iomem__heap *h)
{
	h->diag.oom_count++;
	return NULL;
}

/* ---- init and arenas ------------------------------------------------------- */
IOMEM_HEAP_API void iomem__heap_init(iomem__heap *h)
{
	unsigned i;
	h->map = 0;
	for (i = 0; i < IOMEM__HEAP_LISTS; i++)
		h->heads[i] = NULL;
	for (i = 0; i < IOMEM_HEAP_MAX_ARENAS; i++) {
		h->arena[i].first = 0;
		h->arena[i].span = 0;
		h->arena[i].slots = 0;     /* unused: matches nothing */
	}
	h->diag.capacity = h->diag.allocated = h->diag.peak_allocated = 0;
	h->diag.peak_request = h->diag.used_blocks = 0;
	h->diag.oom_count = 0;
	h->diag.rejected_frees = 0;
	h->diag.arenas = 0;
	h->exact_fit = false;
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
	iomem__heap_link(h, &h->map, b, iomem__heap_fls(end - first));
	h->arena[n].first = first;
	h->arena[n].span = end - IOMEM__HEAP_MIN_BLOCK - first;
	h->arena[n].slots = h->arena[n].span / IOMEM_HEAP_ALIGN + 1;
	h->diag.arenas = n + 1;
	h->diag.capacity += end - first;
	return true;
}

/* ---- allocation ------------------------------------------------------------ */
IOMEM_HEAP_API void *iomem__heap_alloc(iomem__heap *h, size_t size)
{
	size_t need, k;
	iomem__hblock *b;
	if (size > h->diag.peak_request)
		h->diag.peak_request = size;
	if (IOMEM__HEAP_UNLIKELY(size > IOMEM__HEAP_MAX_REQUEST))
		return iomem__heap_oom(h);
	need = iomem__heap_request_need(size);
	k = iomem__heap_list_up(need);
	if (!h->exact_fit)
		need = IOMEM__HEAP_BIT(k);
	b = iomem__heap_take(h, k, need);
	if (IOMEM__HEAP_UNLIKELY(b == NULL))
		return iomem__heap_oom(h);
	return iomem__heap_count(h, b);
}

IOMEM_HEAP_API void *iomem__heap_alloc_aligned(iomem__heap *h, size_t size, size_t align)
{
	size_t need, bsize, gap, rest, map, m, k;
	iomem__hblock *b, *nb, *last;
	uintptr_t end;
	if (size > h->diag.peak_request)
		h->diag.peak_request = size;
	/* one test for both ranges: size < 2^j and 16 <= align <= 2^j (with j
	 * = MAX_LOG2 - 3, nothing below can overflow or pass the last list) */
	if (IOMEM__HEAP_UNLIKELY(((align - 2 * IOMEM_HEAP_ALIGN) | size) >> (IOMEM_HEAP_MAX_LOG2 - 3) != 0)) {
		if (align <= IOMEM_HEAP_ALIGN && (align & (align - 1)) == 0)
			return iomem__heap_alloc(h, size);   /* 0 .. 8: the granule */
		return iomem__heap_oom(h);
	}
	if (IOMEM__HEAP_UNLIKELY((align & (align - 1)) != 0))
		return iomem__heap_oom(h);
	if (h->exact_fit)
		need = iomem__heap_request_need(size);
	else   /* P(need(size)): powers of two from 8 on are multiples of 8 */
		need = (size_t)2 << iomem__heap_fls((size + IOMEM__HEAP_HDR - 1) | (IOMEM__HEAP_MIN_BLOCK - 1));
	/* room for the front gap: 0, or at least a minimum block (so that it
	 * can be a free block) and at most a minimum block + align - 8; the
	 * lists from ceil(log2(need + that)) on */
	map = h->map;
	k = iomem__heap_fls(need + IOMEM__HEAP_MIN_BLOCK + align - IOMEM_HEAP_ALIGN - 1);
	m = map & ((~(size_t)0 - 1) << k);
	if (IOMEM__HEAP_LIKELY(m != 0)) {
		k = iomem__heap_ctz(m);
		b = h->heads[k];
	} else {
		b = iomem__heap_below(h, k, need + IOMEM__HEAP_MIN_BLOCK + align - IOMEM_HEAP_ALIGN);
		if (IOMEM__HEAP_UNLIKELY(b == NULL))
			return iomem__heap_oom(h);
	}
	iomem__heap_pop(h, &map, b, k);
	bsize = b->size - IOMEM__HEAP_FREE;
	end = (uintptr_t)b + bsize;
	rest = bsize - need;
	nb = b;
	gap = (size_t)(-((uintptr_t)b + IOMEM__HEAP_HDR) & (uintptr_t)(align - 1));
	if (gap != 0) {   /* the front gap becomes a free block */
		gap = ((gap - IOMEM__HEAP_MIN_BLOCK) & (align - 1)) + IOMEM__HEAP_MIN_BLOCK;
		nb = IOMEM__HEAP_BLK((uintptr_t)b + gap);
		rest -= gap;
		b->size = gap | IOMEM__HEAP_FREE;
		iomem__heap_link(h, &map, b, iomem__heap_fls(gap));
		nb->prev_phys = b;
	}
	last = nb;
	if (rest >= IOMEM__HEAP_MIN_BLOCK) {   /* so does the tail */
		last = IOMEM__HEAP_BLK((uintptr_t)nb + need);
		last->prev_phys = nb;
		last->size = rest | IOMEM__HEAP_FREE;
		iomem__heap_link(h, &map, last, iomem__heap_fls(rest));
	} else {
		need += rest;
	}
	h->map = map;
	IOMEM__HEAP_BLK(end)->prev_phys = last;
	nb->size = need;
	return iomem__heap_count(h, nb);
}

/* ---- free -------------------------------------------------------------------- */
/* The block of payload @p if it is a live block of arena @ar (which holds
 * address p - header, aligned: @off = that - ar->first), else NULL. Reads
 * only words inside the arena. */
IOMEM__HEAP_INLINE iomem__hblock *iomem__heap_validate(const iomem__heap_arena *ar, const void *p, uintptr_t off)
{
	uintptr_t a = (uintptr_t)p - IOMEM__HEAP_HDR, d;
	const iomem__hblock *b = (const iomem__hblock *)a, *prev;
	size_t size = b->size;
	if ((size & (IOMEM_HEAP_ALIGN - 1)) != 0)
		return NULL;                   /* free (bit 0), foreign or overwritten */
	if (size - IOMEM__HEAP_MIN_BLOCK > ar->span - off)   /* MIN .. up to the sentinel */
		return NULL;
	if (((const iomem__hblock *)(a + size))->prev_phys != b)
		return NULL;
	/* the previous block: from the start block (first - header) up to a,
	 * aligned, ending at a (a NULL prev_phys fails the range) */
	prev = b->prev_phys;
	d = a - (uintptr_t)prev;
	if (iomem__heap_ror3(d - IOMEM__HEAP_HDR) > off / IOMEM_HEAP_ALIGN || IOMEM__HEAP_SIZE(prev) != d)
		return NULL;
	return (iomem__hblock *)a;
}

/* The arena holding block address @a (aligned), or NULL. */
IOMEM__HEAP_INLINE const iomem__heap_arena *iomem__heap_arena_of(const iomem__heap *h, uintptr_t a)
{
	unsigned i;
	for (i = 0; i < IOMEM_HEAP_MAX_ARENAS; i++)
		if (iomem__heap_ror3(a - h->arena[i].first) < h->arena[i].slots)
			return &h->arena[i];
	return NULL;
}

IOMEM__HEAP_COLD bool iomem__heap_reject(iomem__heap *h)
{
	h->diag.rejected_frees++;
	return false;
}

/* Frees @p, a pointer into arena @ar at @off (see validate). */
IOMEM__HEAP_INLINE bool iomem__heap_free_in(iomem__heap *h, const iomem__heap_arena *ar, void *p, uintptr_t off)
{
	iomem__hblock *b, *next, *prev;
	size_t size, nsize, psize, map;
	b = iomem__heap_validate(ar, p, off);
	if (IOMEM__HEAP_UNLIKELY(b == NULL))
		return iomem__heap_reject(h);
	size = b->size;
	h->diag.allocated -= size;
	h->diag.used_blocks--;
	next = IOMEM__HEAP_BLK((uintptr_t)b + size);
	prev = b->prev_phys;
	nsize = next->size;
	psize = prev->size;
	map = h->map;
	if (nsize & IOMEM__HEAP_FREE) {
		nsize -= IOMEM__HEAP_FREE;
		size += nsize;
		if (!(psize & IOMEM__HEAP_FREE) && iomem__heap_same_list(size, nsize)) {
			iomem__heap_replace(next, b);   /* b takes next's place */
			goto done;
		}
		iomem__heap_unlink(h, &map, next, nsize);
	}
	if (psize & IOMEM__HEAP_FREE) {
		psize -= IOMEM__HEAP_FREE;
		size += psize;
		b = prev;
		if (iomem__heap_same_list(size, psize)) {
			h->map = map;                   /* next may have left its list */
			goto done;                      /* prev grows in place */
		}
		iomem__heap_unlink(h, &map, b, psize);
	}
	iomem__heap_link(h, &map, b, iomem__heap_fls(size));
	h->map = map;
done:
	b->size = size | IOMEM__HEAP_FREE;
	IOMEM__HEAP_BLK((uintptr_t)b + size)->prev_phys = b;
	return true;
}

/* A pointer outside the first arena (or misaligned): the other arenas. */
IOMEM__HEAP_COLD bool iomem__heap_free_other(iomem__heap *h, void *p)
{
	uintptr_t a = (uintptr_t)p - IOMEM__HEAP_HDR;
	const iomem__heap_arena *ar = iomem__heap_arena_of(h, a);
	if (ar == NULL)
		return iomem__heap_reject(h);
	return iomem__heap_free_in(h, ar, p, a - ar->first);
}

IOMEM_HEAP_API bool iomem__heap_free(iomem__heap *h, void *p)
{
	uintptr_t off;
	if (p == NULL)
		return true;
	/* one compare: aligned and inside the first arena (unused: no slot) */
	off = (uintptr_t)p - IOMEM__HEAP_HDR - h->arena[0].first;
	if (IOMEM__HEAP_UNLIKELY(iomem__heap_ror3(off) >= h->arena[0].slots))
		return iomem__heap_free_other(h, p);
	return iomem__heap_free_in(h, &h->arena[0], p, off);
}

/* ---- queries and the checker ------------------------------------------------- */
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
	uintptr_t a = (uintptr_t)p - IOMEM__HEAP_HDR;
	const iomem__heap_arena *ar = iomem__heap_arena_of(h, a);
	const iomem__hblock *b = ar == NULL ? NULL : iomem__heap_validate(ar, p, a - ar->first);
	return b == NULL ? 0 : b->size - IOMEM__HEAP_HDR;
}

IOMEM_HEAP_API bool iomem__heap_check(const iomem__heap *h, iomem_heap_census *census)
{
	iomem_heap_census c = { 0, 0, 0, 0, 0, 0 };
	size_t listed = 0, capacity = 0;
	unsigned i;
	if (h->diag.arenas > IOMEM_HEAP_MAX_ARENAS)
		return false;
	for (i = h->diag.arenas; i < IOMEM_HEAP_MAX_ARENAS; i++)
		if (h->arena[i].slots != 0)
			return false;                      /* an unused slot that matches */
	/* 1. physical walk of every arena, from its start block */
	for (i = 0; i < h->diag.arenas; i++) {
		uintptr_t first = h->arena[i].first, end = IOMEM__HEAP_END(&h->arena[i]), a;
		const iomem__hblock *prev = (const iomem__hblock *)(first - IOMEM__HEAP_HDR);
		bool prev_free = false;
		if (first <= IOMEM__HEAP_HDR || end <= first || ((first | end) & (IOMEM_HEAP_ALIGN - 1)) != 0 ||
		    h->arena[i].span > UINTPTR_MAX - first - IOMEM__HEAP_MIN_BLOCK ||
		    h->arena[i].slots != h->arena[i].span / IOMEM_HEAP_ALIGN + 1)
			return false;
		if (prev->prev_phys != NULL || prev->size != IOMEM__HEAP_HDR)
			return false;                      /* the start block */
		capacity += end - first;
		a = first;
		while (a != end) {
			const iomem__hblock *b = (const iomem__hblock *)a;
			size_t size = IOMEM__HEAP_SIZE(b);
			bool is_free = (b->size & IOMEM__HEAP_FREE) != 0;
			if (b->prev_phys != prev || size < IOMEM__HEAP_MIN_BLOCK || size > end - a ||
			    (b->size & (IOMEM_HEAP_ALIGN - 1) & ~IOMEM__HEAP_FREE) != 0)
				return false;
			if (is_free) {
				size_t l = iomem__heap_fls(size);
				if (prev_free)
					return false;          /* two adjacent free blocks */
				if (l >= IOMEM__HEAP_LISTS || !(h->map & IOMEM__HEAP_BIT(l)))
					return false;
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
	/* 2. every list: the bitmap agrees; members are free blocks (their
	 *    physical neighbours point at them), in the right list, linked
	 *    back (so no block is listed twice), inside an arena; as many as
	 *    the walk found (so every free block is listed). O(blocks). */
	listed = 0;
	if ((h->map >> (IOMEM__HEAP_LISTS - 1) >> 1) != 0)
		return false;                              /* bits past the last list */
	for (i = 0; i < IOMEM__HEAP_LISTS; i++) {
		iomem__hblock *const *link;
		const iomem__hblock *x;
		if (((h->map & IOMEM__HEAP_BIT(i)) != 0) != (h->heads[i] != NULL))
			return false;
		link = &h->heads[i];
		for (x = h->heads[i]; x != NULL; link = &x->next_free, x = x->next_free) {
			size_t size;
			if (++listed > c.free_blocks || !iomem__heap_owns(h, x) ||
			    ((uintptr_t)x & (IOMEM_HEAP_ALIGN - 1)) != 0 ||
			    !(x->size & IOMEM__HEAP_FREE) || x->link_free != link)
				return false;
			size = IOMEM__HEAP_SIZE(x);
			if (size < IOMEM__HEAP_MIN_BLOCK || iomem__heap_fls(size) != i ||
			    !iomem__heap_owns(h, (const char *)x + size) ||
			    ((const iomem__hblock *)((uintptr_t)x + size))->prev_phys != x ||
			    !iomem__heap_owns(h, x->prev_phys) ||
			    (uintptr_t)x->prev_phys + IOMEM__HEAP_SIZE(x->prev_phys) != (uintptr_t)x)
				return false;
		}
	}
	if (listed != c.free_blocks || capacity != h->diag.capacity ||
	    c.used_bytes != h->diag.allocated || c.used_blocks != h->diag.used_blocks ||
	    c.used_bytes + c.free_bytes != capacity)
		return false;
	/* the largest request G1 promises: need(s) <= the largest power of two
	 * at or below largest_free (s = that - header is exactly its need) */
	if (c.largest_free >= IOMEM__HEAP_MIN_BLOCK)
		c.largest_alloc = IOMEM__HEAP_BIT(iomem__heap_fls(c.largest_free)) - IOMEM__HEAP_HDR;
	if (census != NULL)
		*census = c;
	return true;
}

#undef IOMEM__HEAP_BITS
#undef IOMEM__HEAP_BIT
#undef IOMEM__HEAP_BLK
#undef IOMEM__HEAP_SIZE

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM__HEAP_IMPLEMENTATION */
