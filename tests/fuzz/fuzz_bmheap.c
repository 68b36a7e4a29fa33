/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_bmheap.c - the bare-metal heap (backends/iomem_heap.h)
 * against a shadow map of its arenas.
 *
 * The input chooses the fit policy (power of two or exact) and one or two
 * arenas (offsets, sizes), then a sequence of alloc / alloc_aligned (good
 * and bad alignments) / free of live blocks / bad frees (interior, stale,
 * misaligned, foreign pointers, NULL); sizes run up to SIZE_MAX. The
 * shadow map records which live block owns each arena byte (its whole
 * usable size); each block is filled with its own byte. Checked after
 * every operation:
 *   - a new block is aligned, lies in an arena, overlaps no live block;
 *   - G1 exactly: iomem__heap_alloc(s) succeeds if and only if a free block
 *     of P(need(s)) bytes exists (the census taken just before);
 *   - G2: alloc_aligned(s, a) succeeds whenever a free block of
 *     P(b(s) + minimum block + a - 8) exists, b(s) the policy's block;
 *   - G3: the block holds b(s) .. b(s) + minimum block - 8 bytes; the
 *     block before it is used, or (aligned) a free front gap of minimum
 *     block .. minimum block + a - 8 bytes - no lent gaps;
 *   - a bad free is refused (false, rejected_frees + 1) and changes nothing;
 *   - every live block still holds its byte when freed (no corruption);
 *   - iomem__heap_check() holds and its census matches the model; once
 *     all is freed each arena is one free block.
 */
#include "fuzz_util.h"
#define IOMEM__HEAP_IMPLEMENTATION 1
#include "backends/iomem_heap.h"

#define A0 (64u * 1024u)
#define A1 (16u * 1024u)
#define MAXLIVE 512

static uint64_t arena0[A0 / 8], arena1[A1 / 8];
static uint16_t shadow0[A0 / 8], shadow1[A1 / 8];   /* owner per 8-byte granule, 0 = none */

typedef struct blk { unsigned char *p; size_t size, granules; uint16_t id; } blk;
static blk live[MAXLIVE];
static unsigned nlive;
static uint16_t next_id;

/* the census the guarantees are checked against (the heap's own walk) */
static bool FZ_CENSUS(const iomem__heap *h, iomem_heap_census *c)
{
	FZ_CHECK(iomem__heap_check(h, c), "heap invariants");
	return true;
}

/* P(n), need(s), b(s): the heap's own definitions (frozen API) */
#define P(n)    iomem__heap_round_list(n)
#define NEED(s) iomem__heap_request_need(s)
static size_t bsz(const iomem__heap *h, size_t s) { return h->exact_fit ? NEED(s) : P(NEED(s)); }

/* Beyond G1/G2: when no list that is sure to fit has a block, the heap takes
 * the head of the list below if that holds @want bytes. Call it before the
 * allocation (it reads the lists as they were). */
static bool below_fits(const iomem__heap *h, size_t want)
{
	size_t k = 0, pw = P(want);
	const iomem__hblock *b;
	while (((size_t)2 << k) <= pw)
		k++;                                   /* k = log2 P(want) */
	b = h->heads[k - 1];
	return b != NULL && (b->size & ~(size_t)7) >= want;
}

/* G3 and the front gap of the new block at @p (align 0: unaligned). */
static void check_block(const iomem__heap *h, const void *p, size_t s, size_t align)
{
	const iomem__hblock *b = (const iomem__hblock *)((const char *)p - IOMEM__HEAP_HDR), *prev = b->prev_phys;
	size_t size = b->size, want = bsz(h, s);
	FZ_CHECK((size & 7) == 0 && size >= want && size <= want + IOMEM__HEAP_MIN_BLOCK - 8,
	         "G3 (%s): alloc(%zu, %zu): block of %zu, b(s) %zu", h->exact_fit ? "exact" : "pow2", s, align, size, want);
	FZ_CHECK(iomem__heap_usable_size(h, p) == size - IOMEM__HEAP_HDR, "usable size");
	FZ_CHECK(prev != NULL, "no previous block");
	if (prev->size & IOMEM__HEAP_FREE) {
		size_t gap = prev->size - IOMEM__HEAP_FREE;
		FZ_CHECK(align > 8 && gap >= IOMEM__HEAP_MIN_BLOCK && gap <= IOMEM__HEAP_MIN_BLOCK + align - 8,
		         "alloc(%zu, %zu): free block of %zu before it (front gap?)", s, align, gap);
	}
}

/* The model's loops are not coverage feedback: only the heap's are. */
#define MODEL __attribute__((no_sanitize("coverage")))

MODEL static uint16_t *shadow_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (a >= (uintptr_t)arena0 && a < (uintptr_t)arena0 + A0)
		return &shadow0[(a - (uintptr_t)arena0) / 8];
	if (a >= (uintptr_t)arena1 && a < (uintptr_t)arena1 + A1)
		return &shadow1[(a - (uintptr_t)arena1) / 8];
	return NULL;
}

MODEL static void track(iomem__heap *h, unsigned char *p, size_t size, size_t align)
{
	size_t g, n = iomem__heap_usable_size(h, p) / 8;
	FZ_CHECK(((uintptr_t)p & (IOMEM_HEAP_ALIGN - 1)) == 0, "block %p misaligned", (void *)p);
	FZ_CHECK(align <= 8 || ((uintptr_t)p & (align - 1)) == 0, "block %p not aligned to %zu", (void *)p, align);
	FZ_CHECK(iomem__heap_owns(h, p), "block %p outside the arenas", (void *)p);
	FZ_CHECK(iomem__heap_usable_size(h, p) >= size, "usable size %zu < %zu", iomem__heap_usable_size(h, p), size);
	for (g = 0; g < n; g++) {
		uint16_t *s = shadow_of(p + 8 * g);
		FZ_CHECK(s != NULL, "block %p + %zu leaves its arena", (void *)p, 8 * g);
		FZ_CHECK(*s == 0, "block %p (%zu bytes) overlaps live block %u", (void *)p, size, *s);
		*s = next_id;
	}
	n = (size + 7) / 8;
	memset(p, (int)(next_id & 0xff), size);
	if (nlive < MAXLIVE) {
		live[nlive].p = p;
		live[nlive].size = size;
		live[nlive].granules = iomem__heap_usable_size(h, p) / 8;
		live[nlive++].id = next_id;
	} else {
		/* no room in the model: give it straight back */
		for (g = 0; g < iomem__heap_usable_size(h, p) / 8; g++)
			*shadow_of(p + 8 * g) = 0;
		FZ_CHECK(iomem__heap_free(h, p), "free of a new block");
	}
	next_id = (uint16_t)(next_id == 0xffff ? 1 : next_id + 1);
}

MODEL static void untrack(unsigned i)
{
	blk *b = &live[i];
	static unsigned char want[4096];
	for (size_t k = 0; k < b->size; k += sizeof want) {
		size_t n = b->size - k < sizeof want ? b->size - k : sizeof want;
		memset(want, (int)(b->id & 0xff), n);
		FZ_CHECK(memcmp(b->p + k, want, n) == 0, "block %p (%zu bytes) overwritten near byte %zu", (void *)b->p,
		         b->size, k);
	}
	for (size_t g = 0; g < b->granules; g++)
		*shadow_of(b->p + 8 * g) = 0;
	live[i] = live[--nlive];
}

MODEL static bool is_live_start(const void *p)
{
	for (unsigned i = 0; i < nlive; i++)
		if (live[i].p == p)
			return true;
	return false;
}

static size_t f_size(fz *f)
{
	uint8_t b = fz_u8(f);
	switch (b & 3) {
	case 0:  return b >> 2;
	case 1:  return fz_u8(f);
	case 2:  return fz_u16(f) % 4096;
	default:
		switch ((b >> 2) & 7) {                  /* near the limits: always NULL */
		case 0:  return IOMEM__HEAP_MAX_REQUEST - 64 + (size_t)(b >> 5) * 8;
		case 1:  return SIZE_MAX - (size_t)(b >> 5) * 7;
		case 2:  return IOMEM__HEAP_MAX_REQUEST / 4 + (size_t)(b >> 5);
		default: return fz_u32(f) % (A0 + 1024);     /* too big, sometimes */
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz f = { data, size };
	iomem__heap h;
	iomem_heap_census c;
	uint8_t cfg = fz_u8(&f);
	size_t off0 = 8 * (size_t)(fz_u8(&f) % 32), len0 = A0 - off0 - 8 * (size_t)(fz_u8(&f) % 64);
	unsigned step = 0, rejected = 0;
	unsigned char *stale[8] = { 0 };
	unsigned nstale = 0;
	iomem__heap_init(&h);
	FZ_CHECK(!h.exact_fit, "init: power of two");
	h.exact_fit = (cfg & 2) != 0;
	FZ_CHECK(iomem__heap_add_arena(&h, (char *)arena0 + off0, len0), "arena 0");
	if (cfg & 1)
		FZ_CHECK(iomem__heap_add_arena(&h, arena1, A1 - 8 * (size_t)(fz_u8(&f) % 64)), "arena 1");
	memset(shadow0, 0, sizeof shadow0);
	memset(shadow1, 0, sizeof shadow1);
	nlive = 0;
	next_id = 1;
	while (fz_more(&f) && step < 300) {
		uint8_t op = fz_u8(&f);
		step++;
		switch (op % 6) {
		case 0:
		case 1: {
			size_t s = f_size(&f);
			void *p;
			bool promised, below;
			FZ_CENSUS(&h, &c);
			promised = s <= IOMEM__HEAP_MAX_REQUEST && c.largest_free >= P(NEED(s));
			below = s <= IOMEM__HEAP_MAX_REQUEST && below_fits(&h, bsz(&h, s));
			p = iomem__heap_alloc(&h, s);
			FZ_CHECK((p != NULL) == (promised || below),
			         "step %u: G1: alloc(%zu) %s with a largest free block of %zu (list below: %d)", step, s,
			         p ? "succeeded" : "failed", c.largest_free, below);
			if (p != NULL) {
				check_block(&h, p, s, 0);
				track(&h, (unsigned char *)p, s, 0);
			}
			break;
		}
		case 2: {
			size_t s = f_size(&f), a;
			uint8_t ab = fz_u8(&f);
			void *p;
			bool bad = false, below;
			if (ab & 0x80) {
				a = 3 + 2 * (size_t)(ab & 0x3f);          /* not a power of two */
				bad = true;
			} else {
				a = (size_t)1 << (ab % 13);
			}
			FZ_CENSUS(&h, &c);
			below = !bad && s <= IOMEM__HEAP_MAX_REQUEST / 4 &&
			        below_fits(&h, a <= 8 ? bsz(&h, s) : bsz(&h, s) + IOMEM__HEAP_MIN_BLOCK + a - 8);
			p = iomem__heap_alloc_aligned(&h, s, a);
			if (bad) {
				FZ_CHECK(p == NULL, "step %u: alloc_aligned(%zu, %zu) succeeded", step, s, a);
			} else if (a <= 8) {
				bool promised = s <= IOMEM__HEAP_MAX_REQUEST && c.largest_free >= P(NEED(s));
				FZ_CHECK((p != NULL) == (promised || below),
				         "step %u: G1: alloc_aligned(%zu, %zu) %s, largest free %zu", step, s, a,
				         p ? "succeeded" : "failed", c.largest_free);
			} else if (s > IOMEM__HEAP_MAX_REQUEST / 4) {
				FZ_CHECK(p == NULL, "step %u: alloc_aligned(%zu, %zu) succeeded", step, s, a);
			} else if (p == NULL) {
				size_t want = P(bsz(&h, s) + IOMEM__HEAP_MIN_BLOCK + a - 8);
				FZ_CHECK(c.largest_free < want, "step %u: alloc_aligned(%zu, %zu) failed with a free block of %zu (G2)",
				         step, s, a, c.largest_free);
			}
			if (p != NULL) {
				check_block(&h, p, s, a);
				track(&h, (unsigned char *)p, s, a);
			}
			break;
		}
		case 3:
		case 4: {
			unsigned i;
			unsigned char *p;
			size_t before = h.diag.allocated, bsize;
			if (nlive == 0)
				break;
			i = fz_u8(&f) % nlive;
			p = live[i].p;
			bsize = iomem__heap_usable_size(&h, p) + IOMEM__HEAP_HDR;
			untrack(i);
			FZ_CHECK(iomem__heap_free(&h, p), "step %u: free of live block %p refused", step, (void *)p);
			FZ_CHECK(h.diag.allocated == before - bsize, "step %u: free: allocated", step);
			stale[nstale++ % 8] = p;
			break;
		}
		default: {                                /* a bad free */
			unsigned char *p = NULL;
			uint8_t k = fz_u8(&f);
			static uint64_t foreign[4];
			switch (k % 5) {
			case 0:
				if (nlive)
					p = live[fz_u8(&f) % nlive].p + 8 * (1 + fz_u8(&f) % 4);   /* interior */
				break;
			case 1:
				if (nlive)
					p = live[fz_u8(&f) % nlive].p + 1 + fz_u8(&f) % 7;         /* misaligned */
				break;
			case 2:
				p = stale[fz_u8(&f) % 8];                                       /* stale */
				break;
			case 3:
				p = (unsigned char *)&foreign[1];                               /* foreign */
				break;
			default:
				p = (unsigned char *)arena0 + off0 + 8 * (size_t)(fz_u16(&f) % (len0 / 8)); /* anywhere */
				break;
			}
			if (p == NULL || is_live_start(p))
				break;
			FZ_CHECK(!iomem__heap_free(&h, p), "step %u: bad free of %p accepted", step, (void *)p);
			rejected++;
			break;
		}
		}
		if ((step & 7) == 0 || !fz_more(&f))
			FZ_CHECK(iomem__heap_check(&h, &c) && c.used_blocks == nlive, "step %u: heap invariants", step);
		FZ_CHECK(h.diag.used_blocks == nlive, "step %u: %zu used blocks, model %u", step,
		         c.used_blocks, nlive);
		FZ_CHECK(h.diag.rejected_frees == rejected, "step %u: rejected_frees %zu, model %u", step,
		         h.diag.rejected_frees, rejected);
	}
	while (nlive > 0) {
		unsigned char *p = live[nlive - 1].p;
		untrack(nlive - 1);
		FZ_CHECK(iomem__heap_free(&h, p), "final free");
	}
	FZ_CHECK(iomem__heap_check(&h, &c) && c.used_blocks == 0 && c.free_blocks == h.diag.arenas,
	         "empty heap: %zu free blocks in %u arenas", c.free_blocks, h.diag.arenas);
	return 0;
}
