/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_cursor.c - IOMemoryCursor: the natural, big and little
 * built-in cursors and generic ones (a user segment function), against two
 * references:
 *   - physical descriptors (any address up to 2^64 - 1, lengths up to
 *     2^36, address 0 = "no physical address"), alone, as a sub-range or
 *     in a multi: an exact model of the runs (ranges concatenated, merged
 *     where physically adjacent), so segments of 4 GiB and more, the
 *     32-bit transfer limit and the fixed-stride extents (uniform ranges)
 *     are reached; the factories' NULL domain is checked too;
 *   - virtual descriptors from test_dma_ref.h (dma_ref_random_md: general,
 *     buffer, physical-over-buffer, sub, multi, nested), against the naive
 *     generator dma_ref_cursor.
 * The input then picks the cursor (kind, maxSegmentSize 0 / small / large
 * / past 32 bits, maxTransferSize, alignment) and a sequence of calls: any
 * position (the descriptor's resume hint and the binary search), any
 * maxSegments and per-call maxTransferSize, transferSize NULL or not, bad
 * arguments. Checked on every call: the count, the transfer, each segment
 * decoded from the cursor's byte order, no element written past the count,
 * and, for bad input, 0 with *transferSize 0. Then a walk from 0 advancing
 * by the transfer covers the whole descriptor (or stops where the model
 * has no physical address). At the end nothing is leaked or wired and no
 * report was made but the expected ones (alignment > 1).
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "test_dma_ref.h"

#define CAP 24              /* segments per call at most */
#define MAXR 12             /* ranges per physical descriptor */
#define MAXP (3 * MAXR)     /* pieces of the top descriptor */

/* ---- the exact model of a physical descriptor --------------------------- */

typedef struct run { uint64_t off, pa, len; } run;   /* a maximal run at offset off */

static run runs[MAXP];
static unsigned nruns;
static uint64_t total;

FZ_MODEL static void m_reset(void)
{
	nruns = 0;
	total = 0;
}

/* Appends [pa, pa + len) at the end; merges with the previous run when
 * physically adjacent (as the extents builder and the walk engine do). */
FZ_MODEL static void m_add(uint64_t pa, uint64_t len)
{
	if (len == 0)
		return;
	if (nruns > 0 && runs[nruns - 1].pa + runs[nruns - 1].len == pa) {
		runs[nruns - 1].len += len;
	} else {
		FZ_CHECK(nruns < MAXP, "model full");
		runs[nruns].off = total;
		runs[nruns].pa = pa;
		runs[nruns].len = len;
		nruns++;
	}
	total += len;
}

/* The runs of [off, off + len) of the current model, into @out (as pieces
 * to append to another model). */
FZ_MODEL static unsigned m_window(uint64_t off, uint64_t len, run *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < nruns && len > 0; i++) {
		uint64_t s = runs[i].off, e = s + runs[i].len, a, b;
		if (e <= off || s >= off + len)
			continue;
		a = off > s ? off : s;
		b = off + len < e ? off + len : e;
		out[n].pa = runs[i].pa + (a - s);
		out[n].len = b - a;
		n++;
	}
	return n;
}

/* genPhysicalSegments per the model: from @from, limit @limit (already
 * the effective one), runs cut into @maxseg pieces, at most @maxsegs;
 * a run whose first byte has address 0 ends the call. */
FZ_MODEL static uint32_t m_cursor(uint64_t from, uint64_t maxseg, uint64_t limit, uint32_t maxsegs,
                                  dma_ref_seg *out, uint64_t *xfer)
{
	uint64_t end = total - from > limit ? from + limit : total, pos = from;
	uint32_t n = 0;
	*xfer = 0;
	for (unsigned i = 0; i < nruns && pos < end && n < maxsegs; i++) {
		uint64_t s = runs[i].off, e = s + runs[i].len, pa, len;
		if (e <= pos)
			continue;
		pa = runs[i].pa + (pos - s);
		len = (e < end ? e : end) - pos;
		if (pa == 0)
			break;
		while (len > 0 && n < maxsegs) {
			uint64_t l = len > maxseg ? maxseg : len;
			out[n].addr = pa;
			out[n].len = l;
			n++;
			pa += l;
			pos += l;
			len -= l;
			*xfer += l;
		}
	}
	return n;
}

/* ---- output decoding ---------------------------------------------------- */

enum { C_NATURAL, C_BIG, C_LITTLE, C_USER_NATURAL, C_USER_BIG, C_USER_LITTLE, C_KINDS };

static uint64_t ld(const unsigned char *p, bool big)
{
	uint64_t v = 0;
	for (int k = 0; k < 8; k++)
		v |= (uint64_t)p[big ? 7 - k : k] << (8 * k);
	return v;
}

/* The user functions: IOKit drivers pass their own; these forward to the
 * exported stores, so the generic (per-segment call) path is compared with
 * the same byte orders. A call past the caller's array is a finding. */
static uint32_t user_cap;
static void user_natural(IOPhysicalSegment s, void *segs, UInt32 i)
{
	FZ_CHECK(i < user_cap, "segment function called with index %u (maxSegments %u)", i, user_cap);
	IONaturalMemoryCursor_outputSegment(s, segs, i);
}
static void user_big(IOPhysicalSegment s, void *segs, UInt32 i)
{
	FZ_CHECK(i < user_cap, "segment function called with index %u (maxSegments %u)", i, user_cap);
	IOBigMemoryCursor_outputSegment(s, segs, i);
}
static void user_little(IOPhysicalSegment s, void *segs, UInt32 i)
{
	FZ_CHECK(i < user_cap, "segment function called with index %u (maxSegments %u)", i, user_cap);
	IOLittleMemoryCursor_outputSegment(s, segs, i);
}

static IOMemoryCursor *make_cursor(int kind, uint64_t maxseg, uint64_t maxxfer, uint64_t align)
{
	switch (kind) {
	case C_NATURAL:      return IONaturalMemoryCursor_withSpecification(maxseg, maxxfer, align);
	case C_BIG:          return IOBigMemoryCursor_withSpecification(maxseg, maxxfer, align);
	case C_LITTLE:       return IOLittleMemoryCursor_withSpecification(maxseg, maxxfer, align);
	case C_USER_NATURAL: return IOMemoryCursor_withSpecification(user_natural, maxseg, maxxfer, align);
	case C_USER_BIG:     return IOMemoryCursor_withSpecification(user_big, maxseg, maxxfer, align);
	default:             return IOMemoryCursor_withSpecification(user_little, maxseg, maxxfer, align);
	}
}

/* ---- descriptors -------------------------------------------------------- */

static IOAddressRange rg[MAXR];

/* Physical ranges from the input: modes for adjacency (merging), a
 * uniform stride (the fixed-stride extents), huge lengths, address 0 and
 * the top of the address space. Returns the count; the model gets them. */
static UInt32 f_ranges(fz *f, bool *overflow)
{
	UInt32 n = 1 + fz_below(f, MAXR), i;
	uint8_t mode = fz_u8(f);
	unsigned shift = 9 + fz_u8(f) % 16;          /* uniform stride 512 .. 16 MiB */
	uint64_t sum = 0;
	bool bad = false;
	for (i = 0; i < n; i++) {
		uint8_t how = fz_u8(f);
		uint64_t a, l;
		switch (how % 8) {
		case 0: case 1:                               /* adjacent to the previous one */
			a = i ? rg[i - 1].address + rg[i - 1].length : 0x100000;
			break;
		case 2:
			a = 0;                                    /* no physical address */
			break;
		case 3:
			a = ~(uint64_t)0 - fz_u32(f);             /* the very top */
			break;
		case 4:
			a = (uint64_t)fz_u16(f) << 32 | (uint64_t)fz_u16(f) << 12;
			break;
		default:
			a = (uint64_t)fz_u32(f) << (how >> 5);    /* page-ish, up to 2^39 */
			break;
		}
		if (mode & 1) {                               /* uniform: the stride, ends shorter */
			l = (uint64_t)1 << shift;
			if (i == 0 || i == n - 1)
				l -= fz_u16(f) % l;
		} else {
			switch (fz_u8(f) % 6) {
			case 0:  l = 0; break;
			case 1:  l = ((uint64_t)1 << 32) + fz_u32(f) % 0x100000;  break;   /* past 4 GiB */
			case 2:  l = (uint64_t)fz_u8(f) << 28 | fz_u16(f); break;
			default: l = 1 + fz_u32(f) % (1u << (8 + (how & 15))); break;
			}
		}
		rg[i].address = a;
		rg[i].length = l;
		if (l > ~(uint64_t)0 - a || l > ~(uint64_t)0 - sum)
			bad = true;
		sum += l;
	}
	*overflow = bad;
	return n;
}

/* The top descriptor: physical (maybe device memory), or a sub-range of
 * it, or a multi of two or three (each its own ranges). NULL when the
 * factory refused, as it must (checked). *@own: what to release. */
static IOMemoryDescriptor *f_physical(fz *f, IOMemoryDescriptor **own, unsigned *nown)
{
	static run tmp[3][MAXP];
	unsigned ntmp[3] = { 0, 0, 0 }, nkids = 1, k;
	uint8_t shape = fz_u8(f) % 4;
	IOMemoryDescriptor *kids[3];
	IOMemoryDescriptor *md;
	if (shape == 3)
		nkids = 2 + fz_u8(f) % 2;
	for (k = 0; k < nkids; k++) {
		bool overflow;
		UInt32 n = f_ranges(f, &overflow);
		IOMemoryDescriptor *c = IOMemoryDescriptor_withAddressRanges(rg, n, kIODirectionInOut, NULL);
		if (overflow) {          /* a range past 2^64 - 1, or the total */
			FZ_CHECK(c == NULL, "withAddressRanges: overflowing ranges accepted");
			return NULL;
		}
		FZ_CHECK(c != NULL, "withAddressRanges(%u ranges) failed", n);
		own[(*nown)++] = c;
		m_reset();
		for (UInt32 i = 0; i < n; i++)
			m_add(rg[i].address, rg[i].length);
		ntmp[k] = m_window(0, total, tmp[k]);
		kids[k] = c;
	}
	if (shape == 2 && total > 0) {          /* a sub-range */
		uint64_t off = fz_u64(f) % total, len = 1 + fz_u64(f) % (total - off);
		md = IOSubMemoryDescriptor_withSubRange(kids[0], off, len, kIODirectionInOut);
		FZ_CHECK(md != NULL, "sub [%llu +%llu) of %llu", (unsigned long long)off, (unsigned long long)len,
		         (unsigned long long)total);
		own[(*nown)++] = md;
		ntmp[0] = m_window(off, len, tmp[0]);
	} else if (shape == 3) {                /* lengths < 2^40 each: no overflow */
		md = IOMultiMemoryDescriptor_withDescriptors(kids, nkids, kIODirectionInOut, false);
		FZ_CHECK(md != NULL, "multi of %u failed", nkids);
		own[(*nown)++] = md;
	} else {
		md = kids[0];
	}
	m_reset();
	for (k = 0; k < nkids; k++)
		for (unsigned i = 0; i < ntmp[k]; i++)
			m_add(tmp[k][i].pa, tmp[k][i].len);
	FZ_CHECK(IOMemoryDescriptor_getLength(md) == total, "length %llu, model %llu",
	         (unsigned long long)IOMemoryDescriptor_getLength(md), (unsigned long long)total);
	return md;
}

/* ---- one call ----------------------------------------------------------- */

static unsigned char out[(CAP + 1) * sizeof(IOPhysicalSegment)];
static dma_ref_seg want[CAP];

static void check_call(IOMemoryCursor *c, int kind, IOMemoryDescriptor *md, bool exact, uint64_t from,
                       uint32_t maxsegs, uint32_t mt, bool want_xfer, uint64_t maxseg, uint64_t cmax,
                       uint64_t *xfer_out, uint32_t *n_out)
{
	IOByteCount xfer = 0xdead;
	uint64_t wx = 0, limit = mt ? mt : (uint32_t)(cmax ? cmax : ~(uint64_t)0);
	uint32_t n, wn;
	bool big = kind == C_BIG || kind == C_USER_BIG, natural = kind == C_NATURAL || kind == C_USER_NATURAL;
	memset(out, 0xA5, sizeof out);
	user_cap = maxsegs;
	n = IOMemoryCursor_genPhysicalSegments(c, md, from, out, maxsegs, mt, want_xfer ? &xfer : NULL);
	if (exact)
		wn = m_cursor(from, maxseg, limit, maxsegs, want, &wx);
	else
		wn = dma_ref_cursor(md, from, maxseg, cmax, mt, want, maxsegs, &wx);
	FZ_CHECK(n == wn && (!want_xfer || xfer == wx),
	         "cursor %d from %llu (maxSeg %llu, max %llu/%u, %u segs): %u segments %llu bytes, model %u %llu", kind,
	         (unsigned long long)from, (unsigned long long)maxseg, (unsigned long long)cmax, mt, maxsegs, n,
	         (unsigned long long)xfer, wn, (unsigned long long)wx);
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *p = out + (size_t)i * sizeof(IOPhysicalSegment);
		uint64_t loc, len;
		if (natural) {
			IOPhysicalSegment s;
			memcpy(&s, p, sizeof s);
			loc = s.location;
			len = s.length;
		} else {
			loc = ld(p, big);
			len = ld(p + 8, big);
		}
		FZ_CHECK(loc == want[i].addr && len == want[i].len, "cursor %d from %llu seg %u: {%llx, %llx}, model {%llx, %llx}",
		         kind, (unsigned long long)from, i, (unsigned long long)loc, (unsigned long long)len,
		         (unsigned long long)want[i].addr, (unsigned long long)want[i].len);
	}
	for (size_t b = (size_t)n * sizeof(IOPhysicalSegment); b < sizeof out; b++)
		FZ_CHECK(out[b] == 0xA5, "cursor %d: byte %zu written past %u segments", kind, b, n);
	*xfer_out = wx;
	*n_out = n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static IOMemoryDescriptor *own[8];
	fz f = { data, size };
	unsigned nown = 0, reports = 0;
	dma_ref_md m;
	bool exact, have_m = false, prepared = false;
	IOMemoryDescriptor *md;
	IOMemoryCursor *c;
	uint64_t maxseg, cmax, align, eff_maxseg, L;
	int kind;
	iomem_posix_machine_stats_t st;

	fz_panic_count = 0;
	exact = fz_u8(&f) % 4 != 0;
	if (exact) {
		md = f_physical(&f, own, &nown);
		/* physical kinds need no prepare; a prepared one must work alike */
		prepared = md != NULL && (fz_u8(&f) & 1);
		if (prepared)
			FZ_CHECK(IOMemoryDescriptor_prepare(md, kIODirectionNone) == kIOReturnSuccess, "prepare physical");
	} else {
		dma_ref_rng rng;
		rng.s = fz_u64(&f) | 1;
		dma_ref_random_layout(&rng, true);
		FZ_CHECK(dma_ref_random_md(&rng, 2, 3, kIODirectionInOut, &m) == kIOReturnSuccess, "random md");
		have_m = true;
		md = m.md;
	}

	/* ---- the cursor ---- */
	kind = fz_u8(&f) % C_KINDS;
	switch (fz_u8(&f) % 6) {
	case 0:  maxseg = 0; break;                                    /* IOKit's default: the largest */
	case 1:  maxseg = ((uint64_t)1 << 32) + fz_u16(&f); break;     /* clamped to 2^32 - 1 */
	case 2:  maxseg = (uint64_t)1 << fz_u8(&f) % 33; break;
	default: maxseg = 1 + fz_u32(&f) % (1u << (4 + fz_u8(&f) % 28)); break;
	}
	switch (fz_u8(&f) % 5) {
	case 0:  cmax = 0xFFFFFFFFull + 1 + fz_u16(&f); break;         /* refused */
	case 1:  cmax = 1 + fz_u32(&f); break;
	case 2:  cmax = 0xFFFFFFFFull; break;
	default: cmax = 0; break;
	}
	align = (fz_u8(&f) & 7) == 0 ? 2 + fz_u8(&f) : fz_u8(&f) & 1;
	c = make_cursor(kind, maxseg, cmax, align);
	if (cmax > 0xFFFFFFFFull) {
		FZ_CHECK(c == NULL, "cursor with maxTransferSize %llu accepted", (unsigned long long)cmax);
		goto out;
	}
	FZ_CHECK(c != NULL, "cursor %d (maxSeg %llu, max %llu)", kind, (unsigned long long)maxseg, (unsigned long long)cmax);
	if (align > 1)
		reports++;                   /* "alignment ... is ignored" (IOMEM_DEBUG) */
	FZ_CHECK(fz_panic_count == reports, "%u report(s), expected %u: %s", fz_panic_count, reports, fz_panic_msg);
	fz_panic_count = 0;
	eff_maxseg = (maxseg == 0 || maxseg > 0xFFFFFFFFull) ? 0xFFFFFFFFull : maxseg;

	if (md == NULL) {                        /* refused descriptor: bad input only */
		IOByteCount x = 7;
		FZ_CHECK(IOMemoryCursor_genPhysicalSegments(c, NULL, 0, out, 4, 0, &x) == 0 && x == 0, "NULL descriptor");
		IOMemoryCursor_release(c);
		goto out;
	}
	L = IOMemoryDescriptor_getLength(md);

	/* ---- calls anywhere ---- */
	{
		uint64_t pos = 0, wx;
		uint32_t n;
		for (int call = 0; call < 16 && fz_more(&f); call++) {
			uint8_t how = fz_u8(&f);
			uint32_t maxsegs = 1 + fz_below(&f, CAP), mt = 0;
			if (how & 2)
				mt = (how & 4) ? fz_u32(&f) : 1 + fz_u16(&f);
			if ((how & 0x38) == 0x38) {          /* bad input: 0, *transferSize 0 */
				IOByteCount x = 7;
				uint32_t r;
				switch (fz_u8(&f) % 4) {
				case 0:  r = IOMemoryCursor_genPhysicalSegments(NULL, md, 0, out, maxsegs, mt, &x); break;
				case 1:  r = IOMemoryCursor_genPhysicalSegments(c, md, 0, NULL, maxsegs, mt, &x); break;
				case 2:  r = IOMemoryCursor_genPhysicalSegments(c, md, 0, out, 0, mt, &x); break;
				default: r = IOMemoryCursor_genPhysicalSegments(c, md, L + fz_u8(&f), out, maxsegs, mt, &x); break;
				}
				FZ_CHECK(r == 0 && x == 0, "bad input: %u segments, transfer %llu", r, (unsigned long long)x);
				continue;
			}
			if (L == 0)
				pos = 0;                          /* every call: 0 */
			else if (how & 1)                     /* anywhere, else where the last call stopped */
				pos = fz_u64(&f) % L;
			else if (pos >= L)
				pos = 0;
			check_call(c, kind, md, exact, pos, maxsegs, mt, (how & 0x20) == 0, eff_maxseg, cmax, &wx, &n);
			pos += wx;
		}

		/* ---- a whole walk ---- */
		if (fz_u8(&f) & 1) {
			uint32_t maxsegs = 1 + fz_below(&f, CAP), calls = 0;
			pos = 0;
			while (pos < L && calls++ < 64) {
				check_call(c, kind, md, exact, pos, maxsegs, 0, true, eff_maxseg, cmax, &wx, &n);
				if (n == 0)
					break;
				pos += wx;
			}
		}
	}
	if (fz_u8(&f) & 1) {
		IOMemoryCursor_retain(c);
		IOMemoryCursor_release(c);
	}
	IOMemoryCursor_release(c);

out:
	if (prepared)
		IOMemoryDescriptor_complete(md, kIODirectionNone);
	while (nown > 0)
		IOMemoryDescriptor_release(own[--nown]);
	if (have_m)
		dma_ref_md_release(&m);
	FZ_NO_REPORTS();
	FZ_CHECK(iomem_leak_report(NULL, NULL) == 0, "leak");
	iomem_posix_machine_stats(&st);
	FZ_CHECK(st.wired_pages == 0, "%llu page(s) still wired", (unsigned long long)st.wired_pages);
	return 0;
}
