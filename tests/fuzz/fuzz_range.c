/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_range.c - IORangeAllocator operation sequences against a
 * bitmap model.
 *
 * The input picks the configuration (default alignment, capacity, kLocking,
 * IOMEM_RANGE_CACHE) and then a sequence of allocate / allocateRange /
 * iomem__range_alloc_below / deallocate (of live ranges, parts of them, or
 * anything: double and overlapping frees, ranges outside the initial one,
 * size 0) / setFragmentCapacityIncrement. After every operation:
 *   - a successful allocation is aligned and was wholly free in the model;
 *   - a failed allocate/alloc_below means no aligned fit exists in the model
 *     (unless growth was switched off: then a missing slot may be why);
 *   - allocateRange succeeds exactly when the model says the range is free;
 *   - a deallocation is reported (IOMEM_DEBUG) exactly when it overlaps free
 *     space, is of size 0, or was dropped for lack of a slot;
 *   - getFreeCount, serialize (the fragments, coalesced) and
 *     iomem_range_invariants_hold agree with the model.
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#define UNITS 1024u            /* the allocator's initial range [0, UNITS) */
#define SPACE (UNITS + 128u)   /* the model also covers ranges given back beyond it */
#define MAXLIVE 256

static uint8_t mfree[SPACE];
static IORangeScalar live_s[MAXLIVE], live_n[MAXLIVE];
static unsigned nlive;
static IORangeScalar nfree;

FZ_MODEL static bool m_free(IORangeScalar s, IORangeScalar n)
{
	if (s >= SPACE || n > SPACE - s)
		return false;
	for (IORangeScalar i = 0; i < n; i++)
		if (!mfree[s + i])
			return false;
	return true;
}

FZ_MODEL static bool m_fit(IORangeScalar n, IORangeScalar amask, IORangeScalar limit)
{
	for (IORangeScalar s = 0; s + n <= SPACE && s + n - 1 <= limit; s = ((s + 1) + amask) & ~amask)
		if (m_free(s, n))
			return true;
	return false;
}

FZ_MODEL static void m_mark(IORangeScalar s, IORangeScalar n, uint8_t v)
{
	for (IORangeScalar i = 0; i < n; i++) {
		if (mfree[s + i] != v)
			nfree += v ? 1 : (IORangeScalar)-1;
		mfree[s + i] = v;
	}
}

FZ_MODEL static bool m_any_free(IORangeScalar s, IORangeScalar n)
{
	for (IORangeScalar u = 0; u < n; u++)
		if (mfree[s + u])
			return true;
	return false;
}

/* Live ranges [s, s+n) freed (wholly or partly) are no longer the
 * program's: the parts outside it stay allocated, unreachable. */
FZ_MODEL static void m_forget_live(IORangeScalar s, IORangeScalar n)
{
	for (unsigned i = 0; i < nlive;) {
		if (live_s[i] < s + n && s < live_s[i] + live_n[i]) {
			live_s[i] = live_s[--nlive];
			live_n[i] = live_n[nlive];
		} else {
			i++;
		}
	}
}

FZ_MODEL static void m_take(IORangeScalar s, IORangeScalar n)
{
	m_mark(s, n, 0);
	if (nlive < MAXLIVE) {
		live_s[nlive] = s;
		live_n[nlive++] = n;
	}
	/* else: it stays allocated, unreachable for the program; fine */
}

/* The model's free fragments equal the allocator's @n serialized @pairs. */
FZ_MODEL static void m_compare_fragments(const IORangeScalar *pairs, UInt32 n, unsigned step)
{
	IORangeScalar u = 0;
	UInt32 k = 0;
	while (u < SPACE) {
		IORangeScalar e;
		if (!mfree[u]) {
			u++;
			continue;
		}
		for (e = u; e + 1 < SPACE && mfree[e + 1]; e++)
			;
		FZ_CHECK(k < n && pairs[2 * k] == u && pairs[2 * k + 1] == e,
		         "step %u: fragment %u is [%llu, %llu], model [%llu, %llu]", step, k,
		         k < n ? (unsigned long long)pairs[2 * k] : 0ull, k < n ? (unsigned long long)pairs[2 * k + 1] : 0ull,
		         (unsigned long long)u, (unsigned long long)e);
		k++;
		u = e + 1;
	}
	FZ_CHECK(k == n, "step %u: %u fragments, model %u", step, n, k);
}

static void compare(IORangeAllocator *ra, unsigned step)
{
	static IORangeScalar pairs[2 * SPACE];
	UInt32 n = IORangeAllocator_serialize(ra, pairs, SPACE);
	FZ_CHECK(iomem_range_invariants_hold(ra), "step %u: invariants", step);
	FZ_CHECK(IORangeAllocator_getFreeCount(ra) == nfree, "step %u: free count %llu, model %llu", step,
	         (unsigned long long)IORangeAllocator_getFreeCount(ra), (unsigned long long)nfree);
	m_compare_fragments(pairs, n, step);
	FZ_CHECK(IORangeAllocator_getFragmentCount(ra) == n, "step %u: getFragmentCount", step);
}

static IORangeScalar f_size(fz *f)
{
	uint8_t b = fz_u8(f);
	switch (b & 3) {
	case 0:  return b >> 2;                     /* 0..63, 0 included */
	case 1:  return 1;
	case 2:  return 1 + fz_u8(f) % 16;
	default: return 1 + fz_u16(f) % 300;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz f = { data, size };
	uint8_t cfg = fz_u8(&f);
	IORangeScalar dalign = (IORangeScalar)1 << (cfg & 3), dmask = dalign - 1;
	UInt32 cap = fz_u8(&f) % 8;
	IOOptionBits opts = ((cfg & 4) ? kLocking : 0) | ((cfg & 8) ? IOMEM_RANGE_CACHE : 0);
	bool growth = true;
	IORangeAllocator *ra = IORangeAllocator_withRange(UNITS - 1, dalign, cap, opts);
	unsigned step = 0;
	FZ_CHECK(ra != NULL, "withRange");
	memset(mfree, 0, sizeof mfree);
	memset(mfree, 1, UNITS);
	nfree = UNITS;
	nlive = 0;
	fz_panic_count = 0;
	compare(ra, 0);
	while (fz_more(&f) && step < 256) {
		uint8_t op = fz_u8(&f);
		IORangeScalar res = 0;
		step++;
		switch (op % 8) {
		case 0:
		case 1: {                                  /* allocate */
			IORangeScalar sz = f_size(&f), n = (sz + dmask) & ~dmask, al = 0, amask = dmask;
			uint8_t a = fz_u8(&f);
			bool ok, bad_al = false;
			if (a & 1) {
				al = (IORangeScalar)1 << (a >> 1) % 9;
				amask = al - 1;
			} else if (a & 2) {
				al = 3 + 2 * (IORangeScalar)(a >> 2);    /* not a power of two */
				bad_al = true;
			}
			ok = IORangeAllocator_allocate(ra, sz, &res, al);
			if (sz == 0 || bad_al) {
				FZ_CHECK(!ok, "step %u: allocate(%llu, align %llu) succeeded", step, (unsigned long long)sz,
				         (unsigned long long)al);
			} else if (ok) {
				FZ_CHECK((res & amask) == 0 && m_free(res, n), "step %u: allocate gave [%llu +%llu]", step,
				         (unsigned long long)res, (unsigned long long)n);
				m_take(res, n);
			} else {
				FZ_CHECK(!growth || !m_fit(n, amask, ~(IORangeScalar)0),
				         "step %u: allocate(%llu, align %llu) failed but fits", step, (unsigned long long)sz,
				         (unsigned long long)al);
			}
			break;
		}
		case 2: {                                  /* IOVA: below a limit */
			IORangeScalar sz = f_size(&f), n = (sz + dmask) & ~dmask, limit = fz_u16(&f) % SPACE;
			IOReturn r = iomem__range_alloc_below(ra, sz, 0, limit, &res);
			if (sz == 0) {
				FZ_CHECK(r == kIOReturnBadArgument, "step %u: alloc_below size 0: %#x", step, (unsigned)r);
			} else if (r == kIOReturnSuccess) {
				FZ_CHECK(res + n - 1 <= limit && (res & dmask) == 0 && m_free(res, n),
				         "step %u: alloc_below gave [%llu +%llu] (limit %llu)", step, (unsigned long long)res,
				         (unsigned long long)n, (unsigned long long)limit);
				m_take(res, n);
			} else {
				FZ_CHECK(r == kIOReturnNoSpace || (!growth && r == kIOReturnNoResources),
				         "step %u: alloc_below: %#x", step, (unsigned)r);
				FZ_CHECK(!growth || !m_fit(n, dmask, limit), "step %u: alloc_below(%llu, limit %llu) failed but fits",
				         step, (unsigned long long)n, (unsigned long long)limit);
			}
			break;
		}
		case 3: {                                  /* allocateRange */
			IORangeScalar s = fz_u16(&f) % SPACE, sz = f_size(&f), n = (sz + dmask) & ~dmask;
			bool want = sz != 0 && m_free(s, n), ok = IORangeAllocator_allocateRange(ra, s, sz);
			FZ_CHECK(ok == want || (!growth && want && !ok), "step %u: allocateRange(%llu, %llu) = %d, model %d",
			         step, (unsigned long long)s, (unsigned long long)sz, ok, want);
			if (ok)
				m_take(s, n);
			break;
		}
		case 4:
		case 5: {                                  /* free a live range, or its front */
			unsigned i;
			IORangeScalar s, n;
			iomem_range_stats st0, st1;
			if (nlive == 0)
				break;
			i = fz_u8(&f) % nlive;
			s = live_s[i];
			n = live_n[i];
			iomem_range_get_stats(ra, &st0);
			if ((op & 8) && n > dalign) {
				IORangeScalar part = dalign * (1 + fz_u8(&f) % (n / dalign - 1));
				IORangeAllocator_deallocate(ra, s, part);
				live_s[i] = s + part;
				live_n[i] = n - part;
				n = part;
			} else {
				IORangeAllocator_deallocate(ra, s, n);
				live_s[i] = live_s[--nlive];
				live_n[i] = live_n[nlive];
			}
			iomem_range_get_stats(ra, &st1);
			if (st1.lost_ranges != st0.lost_ranges) {
				FZ_CHECK(!growth, "step %u: range lost with growth on", step);
				FZ_CHECK(fz_panic_count == 1 && strstr(fz_panic_msg, "lost"), "step %u: lost range not reported", step);
				fz_panic_count = 0;
			} else {
				m_mark(s, n, 1);
			}
			break;
		}
		case 6: {                                  /* deallocate anything */
			IORangeScalar s = fz_u16(&f) % SPACE, sz = f_size(&f), n = (sz + dmask) & ~dmask;
			bool overlap;
			iomem_range_stats st0, st1;
			if (s + n > SPACE)
				s = SPACE - n;
			overlap = m_any_free(s, n);
			iomem_range_get_stats(ra, &st0);
			IORangeAllocator_deallocate(ra, s, sz);
			iomem_range_get_stats(ra, &st1);
			if (sz == 0) {
				FZ_CHECK(fz_panic_count == 1 && strstr(fz_panic_msg, "size 0"), "step %u: size 0 not reported", step);
			} else if (st1.lost_ranges != st0.lost_ranges) {
				FZ_CHECK(!growth, "step %u: range lost with growth on", step);
				FZ_CHECK(fz_panic_count >= 1, "step %u: lost range not reported", step);
			} else {
				FZ_CHECK(fz_panic_count == (overlap ? 1u : 0u), "step %u: deallocate(%llu, %llu) overlap %d, %u report(s): %s",
				         step, (unsigned long long)s, (unsigned long long)sz, overlap, fz_panic_count,
				         fz_panic_count ? fz_panic_msg : "");
				m_mark(s, n, 1);
				m_forget_live(s, n);
			}
			fz_panic_count = 0;
			break;
		}
		default: {                                 /* growth increment */
			UInt32 inc = fz_u8(&f) % 4;
			IORangeAllocator_setFragmentCapacityIncrement(ra, inc);
			growth = inc != 0;
			break;
		}
		}
		FZ_NO_REPORTS();
		FZ_CHECK(IORangeAllocator_getFreeCount(ra) == nfree, "step %u: free count %llu, model %llu", step,
		         (unsigned long long)IORangeAllocator_getFreeCount(ra), (unsigned long long)nfree);
		if ((step & 7) == 0 || !fz_more(&f))
			compare(ra, step);         /* the full check, O(n log n) */
	}
	compare(ra, step);
	if (fz_u8(&f) & 1) {                           /* an extra reference */
		IORangeAllocator_retain(ra);
		IORangeAllocator_release(ra);
	}
	IORangeAllocator_release(ra);
	FZ_NO_REPORTS();
	FZ_CHECK(iomem_leak_report(NULL, NULL) == 0, "leak");
	return 0;
}
