/* SPDX-License-Identifier: MIT */
/*
 * tests/test_desc_random.c - randomised differential test of every
 * descriptor kind (nested sub/multi/interleaved over general, buffer and
 * physical leaves) on random layout policies, against a reference model
 * written here: a tree that maps each byte offset to the host address that
 * holds it; the expected physical address is the machine's page-by-page
 * translation of that address. Checked: getLength, a full
 * getPhysicalSegment walk (start address, contiguity of every page of every
 * segment, maximality for general leaves at the top), random-offset
 * lookups, readBytes and writeBytes of random sub-ranges, past-the-end.
 *
 * The seed is printed; IOMEM_TEST_SEED=<n> reproduces a run,
 * IOMEM_TEST_CASES=<n> changes the number of cases (default 10000).
 */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "test_desc_util.h"

#include <stdio.h>
#include <time.h>

TestSuite(random, .fini = desc_fini, .timeout = 280);

enum { N_GENERAL, N_BUFFER, N_PHYS, N_SUB, N_MULTI, N_INTERLEAVED };
#define MAXCH 4
#define MAXR 4
#define ARENA_PAGES 48

typedef struct node {
	int kind;
	IOMemoryDescriptor *md;
	IOByteCount length;
	/* general: ranges; phys: base va in ra[0] */
	uintptr_t ra[MAXR];
	IOByteCount rl[MAXR];
	int nr;
	IOMemoryDescriptor *keep;        /* phys: the buffer that owns the memory */
	struct node *ch[MAXCH];
	IOByteCount choff[MAXCH], chlen[MAXCH];
	int nch;
} node;

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
	return rng;
}
static uint64_t rr(uint64_t lo, uint64_t hi) { return lo + rnd() % (hi - lo + 1); }

static unsigned char *arena;
static uint64_t seed_used;
static int case_no;

/* host address of byte @off and how many bytes from it are virtually contiguous */
static uintptr_t model_va(const node *n, IOByteCount off, IOByteCount *run)
{
	switch (n->kind) {
	case N_GENERAL:
		for (int i = 0; i < n->nr; i++) {
			if (off < n->rl[i]) {
				*run = n->rl[i] - off;
				return n->ra[i] + (uintptr_t)off;
			}
			off -= n->rl[i];
		}
		cr_assert_fail("model: offset outside (seed %llu case %d)", (unsigned long long)seed_used, case_no);
		return 0;
	case N_BUFFER:
	case N_PHYS:
		*run = n->length - off;
		return n->ra[0] + (uintptr_t)off;
	case N_SUB: {
		uintptr_t v = model_va(n->ch[0], n->choff[0] + off, run);
		if (*run > n->length - off)
			*run = n->length - off;
		return v;
	}
	default:   /* multi / interleaved: slices choff/chlen of children */
		for (int i = 0; i < n->nch; i++) {
			if (off < n->chlen[i]) {
				uintptr_t v = model_va(n->ch[i], n->choff[i] + off, run);
				if (*run > n->chlen[i] - off)
					*run = n->chlen[i] - off;
				return v;
			}
			off -= n->chlen[i];
		}
		cr_assert_fail("model: offset outside (seed %llu case %d)", (unsigned long long)seed_used, case_no);
		return 0;
	}
}

static IOPhysicalAddress model_pa(const node *n, IOByteCount off)
{
	IOByteCount run;
	return iomem_posix_virt_to_phys((void *)model_va(n, off, &run));
}

static void model_copy(const node *n, IOByteCount off, IOByteCount len, unsigned char *dst, const unsigned char *src)
{
	while (len > 0) {
		IOByteCount run;
		unsigned char *v = (unsigned char *)model_va(n, off, &run);
		if (run > len)
			run = len;
		if (dst)
			memcpy(dst, v, run);
		else
			memcpy(v, src, run);
		if (dst)
			dst += run;
		else
			src += run;
		off += run;
		len -= run;
	}
}

static node *gen(int depth);

static node *new_node(int kind)
{
	node *n = calloc(1, sizeof *n);
	cr_assert_not_null(n);
	n->kind = kind;
	return n;
}

static node *gen_leaf(void)
{
	IOByteCount pg = DESC_PAGE;
	int k = (int)rr(0, 2);
	node *n;
	if (k == N_GENERAL) {
		n = new_node(N_GENERAL);
		n->nr = (int)rr(1, MAXR);
		IOAddressRange r[MAXR];
		for (int i = 0; i < n->nr; i++) {
			IOByteCount len = rr(0, 9) == 0 ? 0 : rr(1, 3 * pg);
			IOByteCount start = rr(0, ARENA_PAGES * pg - len);
			n->ra[i] = (uintptr_t)arena + (uintptr_t)start;
			n->rl[i] = len;
			n->length += len;
			r[i].address = n->ra[i];
			r[i].length = len;
		}
		n->md = IOMemoryDescriptor_withAddressRanges(r, (UInt32)n->nr, kIODirectionInOut, kernel_task);
		cr_assert_not_null(n->md);
	} else if (k == N_BUFFER) {
		n = new_node(N_BUFFER);
		IOByteCount cap = rr(1, 5 * pg);
		bool contig = rr(0, 3) == 0;
		n->md = contig ? IOBufferMemoryDescriptor_withCapacity(cap, kIODirectionInOut, true)
		               : IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, cap, 1);
		cr_assert_not_null(n->md);
		n->length = cap;
		if (rr(0, 3) == 0) {
			n->length = rr(1, cap);
			IOBufferMemoryDescriptor_setLength(n->md, n->length);
		}
		n->ra[0] = (uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(n->md);
		desc_fill((void *)n->ra[0], n->length, (uint32_t)rnd());
	} else {
		/* physical: a contiguous segment of a fresh buffer */
		n = new_node(N_PHYS);
		IOByteCount cap = rr(1, 4 * pg), seg;
		n->keep = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, cap, 1);
		cr_assert_not_null(n->keep);
		IOByteCount off = rr(0, cap - 1);
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(n->keep, off, &seg, 0);
		cr_assert_neq(pa, 0);
		n->length = rr(1, seg);
		n->ra[0] = (uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(n->keep) + (uintptr_t)off;
		desc_fill((void *)n->ra[0], n->length, (uint32_t)rnd());
		n->md = IOMemoryDescriptor_withPhysicalAddress(pa, n->length, kIODirectionInOut);
		cr_assert_not_null(n->md);
	}
	return n;
}

static node *gen(int depth)
{
	int k = depth >= 3 ? (int)rr(0, 2) : (int)rr(0, 5);
	node *n;
	if (k <= N_PHYS)
		return gen_leaf();
	n = new_node(k);
	if (k == N_SUB) {
		node *c = gen(depth + 1);
		IOByteCount off = rr(0, c->length), len = rr(0, c->length - off);
		n->ch[0] = c;
		n->nch = 1;
		n->choff[0] = off;
		n->length = len;
		n->md = IOSubMemoryDescriptor_withSubRange(c->md, off, len, kIODirectionInOut);
		cr_assert_not_null(n->md);
	} else if (k == N_MULTI) {
		IOMemoryDescriptor *mds[MAXCH];
		n->nch = (int)rr(1, MAXCH);
		for (int i = 0; i < n->nch; i++) {
			n->ch[i] = gen(depth + 1);
			n->choff[i] = 0;
			n->chlen[i] = n->ch[i]->length;
			n->length += n->chlen[i];
			mds[i] = n->ch[i]->md;
		}
		n->md = IOMultiMemoryDescriptor_withDescriptors(mds, (UInt32)n->nch, kIODirectionInOut, rr(0, 1));
		cr_assert_not_null(n->md);
	} else {
		n->nch = (int)rr(1, MAXCH);
		n->md = IOInterleavedMemoryDescriptor_withCapacity(MAXCH, kIODirectionInOut);
		cr_assert_not_null(n->md);
		for (int i = 0; i < n->nch; i++) {
			/* sometimes the same child twice */
			if (i > 0 && rr(0, 3) == 0) {
				n->ch[i] = n->ch[i - 1];   /* freed once (free_tree) */
			} else {
				n->ch[i] = gen(depth + 1);
			}
			node *c = n->ch[i];
			IOByteCount off = rr(0, c->length), len = rr(0, c->length - off);
			n->choff[i] = off;
			n->chlen[i] = len;
			n->length += len;
			cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(n->md, c->md, off, len));
		}
	}
	return n;
}

static void free_tree(node *n)
{
	for (int i = 0; i < n->nch; i++)
		if (i == n->nch - 1 || n->ch[i] != n->ch[i + 1])
			free_tree(n->ch[i]);
	IOMemoryDescriptor_release(n->md);
	IOMemoryDescriptor_release(n->keep);
	free(n);
}

static bool is_general(const node *n) { return n->kind == N_GENERAL || n->kind == N_BUFFER || n->kind == N_PHYS; }

static void check_segment(const node *n, IOByteCount off, addr64_t pa, IOByteCount seg, const char *what)
{
	IOByteCount pg = DESC_PAGE, k;
	cr_assert_eq(pa, model_pa(n, off), "%s: seed %llu case %d kind %d offset %llu: pa %llx model %llx", what,
	             (unsigned long long)seed_used, case_no, n->kind, (unsigned long long)off,
	             (unsigned long long)pa, (unsigned long long)model_pa(n, off));
	cr_assert(seg >= 1 && seg <= n->length - off, "%s: seed %llu case %d: bad length %llu", what,
	          (unsigned long long)seed_used, case_no, (unsigned long long)seg);
	for (k = pg - (pa & (pg - 1)); k < seg; k += pg)
		cr_assert_eq(model_pa(n, off + k), pa + k, "%s: seed %llu case %d: segment at %llu not contiguous at +%llu",
		             what, (unsigned long long)seed_used, case_no, (unsigned long long)off, (unsigned long long)k);
	cr_assert_eq(model_pa(n, off + seg - 1), pa + seg - 1, "%s: seed %llu case %d: last byte", what,
	             (unsigned long long)seed_used, case_no);
}

static void run_case(void)
{
	static const iomem_posix_layout pol[] = {
		IOMEM_POSIX_LAYOUT_IDENTITY, IOMEM_POSIX_LAYOUT_CONTIGUOUS, IOMEM_POSIX_LAYOUT_SCATTERED,
		IOMEM_POSIX_LAYOUT_RUNS, IOMEM_POSIX_LAYOUT_HIGH };
	desc_set_layout(pol[rr(0, 4)], (uint32_t)rr(1, 6), rnd() | 1);
	node *top = gen(0);
	IOMemoryDescriptor *md = top->md;
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionInOut), kIOReturnSuccess,
	             "seed %llu case %d: prepare", (unsigned long long)seed_used, case_no);
	cr_assert_eq(IOMemoryDescriptor_getLength(md), top->length, "seed %llu case %d: length",
	             (unsigned long long)seed_used, case_no);
	/* full walk */
	IOByteCount off = 0, seg;
	while (off < top->length) {
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		check_segment(top, off, pa, seg, "walk");
		if (is_general(top) && off + seg < top->length)
			cr_assert_neq(model_pa(top, off + seg), pa + seg, "seed %llu case %d: segment not maximal",
			              (unsigned long long)seed_used, case_no);
		off += seg;
	}
	cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(md, top->length, &seg, 0), 0);
	cr_assert_eq(seg, 0);
	if (top->length == 0)
		goto done;
	/* random offsets */
	for (int i = 0; i < 4; i++) {
		off = rr(0, top->length - 1);
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		check_segment(top, off, pa, seg, "random");
	}
	/* readBytes / writeBytes of random sub-ranges */
	{
		IOByteCount o = rr(0, top->length - 1), l = rr(1, top->length - o);
		unsigned char *got = malloc(l), *want = malloc(l);
		cr_assert_eq(IOMemoryDescriptor_readBytes(md, o, got, l), l, "seed %llu case %d: readBytes",
		             (unsigned long long)seed_used, case_no);
		model_copy(top, o, l, want, NULL);
		cr_assert_arr_eq(got, want, l, "seed %llu case %d: readBytes content", (unsigned long long)seed_used, case_no);
		/* Ranges may alias (overlapping ranges, a child sliced twice):
		 * both writers go in offset order, so the last write wins alike.
		 * Compare writeBytes' result with the model's own write. */
		unsigned char *after = malloc(l);
		desc_fill(got, l, (uint32_t)rnd());
		model_copy(top, o, l, NULL, got);                 /* scramble first */
		desc_fill(want, l, (uint32_t)rnd());
		cr_assert_eq(IOMemoryDescriptor_writeBytes(md, o, want, l), l);
		model_copy(top, o, l, after, NULL);
		model_copy(top, o, l, NULL, want);
		model_copy(top, o, l, got, NULL);
		cr_assert_arr_eq(after, got, l, "seed %llu case %d: writeBytes content", (unsigned long long)seed_used, case_no);
		free(after);
		cr_assert_eq(IOMemoryDescriptor_readBytes(md, o, got, top->length - o + 1), 0);
		free(got);
		free(want);
	}
done:
	cr_assert_eq(IOMemoryDescriptor_complete(md, kIODirectionInOut), kIOReturnSuccess);
	free_tree(top);
}

static void run_cases(int n)
{
	const char *s = getenv("IOMEM_TEST_SEED"), *c = getenv("IOMEM_TEST_CASES");
	seed_used = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) * 2654435761u) ^ (uint64_t)clock();
	if (seed_used == 0)
		seed_used = 1;
	if (c)
		n = atoi(c);
	rng = seed_used;
	fprintf(stderr, "desc random: seed %llu, %d cases, page %llu (reproduce: IOMEM_TEST_SEED=%llu)\n",
	        (unsigned long long)seed_used, n, (unsigned long long)DESC_PAGE, (unsigned long long)seed_used);
	arena = IOMallocAligned(ARENA_PAGES * DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(arena);
	desc_fill(arena, ARENA_PAGES * DESC_PAGE, 12345);
	for (case_no = 0; case_no < n; case_no++)
		run_case();
	IOFreeAligned(arena, ARENA_PAGES * DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(random, differential_10000_cases)
{
	run_cases(10000);
}

Test(random, differential_16k_pages)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	run_cases(2000);
}
