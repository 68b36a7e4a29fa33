/* SPDX-License-Identifier: MIT */
/* tests/test_desc_stride.c - the fixed-stride getPhysicalSegment path
 * (extents all 2^k bytes but the first and last): every result checked
 * against a page-by-page (virtual) or range-by-range (physical) model, at
 * every extent boundary and around it, on 4 KiB and 16 KiB pages, with
 * aligned and unaligned starts, clipped lengths, and descriptors whose
 * extents are not uniform (the hint path). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "test_desc_util.h"

TestSuite(stride, .fini = desc_fini);

/* ---- reference models ---- */

/* The maximal segment at @off of @len virtual bytes va_of(0..len): the
 * machine's translation of each page, extended while the next page's
 * frame is adjacent. 0 / 0 at or past the end. */
static addr64_t ref_virtual(desc_va_fn va_of, void *ctx, IOByteCount len, IOByteCount off, IOByteCount *seg)
{
	addr64_t pa;
	IOByteCount n;
	if (off >= len) {
		*seg = 0;
		return 0;
	}
	pa = iomem_posix_virt_to_phys((void *)va_of(ctx, off));
	cr_assert_neq(pa, 0);
	n = DESC_PAGE - (pa & (DESC_PAGE - 1));
	while (off + n < len && iomem_posix_virt_to_phys((void *)va_of(ctx, off + n)) == pa + n)
		n += DESC_PAGE;
	*seg = n < len - off ? n : len - off;
	return pa;
}

/* The same for physical ranges: bytes laid end to end, merged while the
 * next non-empty range starts where the last one ended. */
static addr64_t ref_physical(const IOAddressRange *r, uint32_t count, IOByteCount off, IOByteCount *seg)
{
	IOByteCount start = 0;
	uint32_t i;
	for (i = 0; i < count; i++) {
		if (off < start + r[i].length) {
			addr64_t pa = r[i].address + (off - start), next = r[i].address + r[i].length;
			IOByteCount n = r[i].length - (off - start);
			uint32_t j;
			for (j = i + 1; j < count; j++) {
				if (r[j].length == 0)
					continue;
				if (r[j].address != next)
					break;
				n += r[j].length;
				next += r[j].length;
			}
			*seg = n;
			return pa;
		}
		start += r[i].length;
	}
	*seg = 0;
	return 0;
}

typedef struct ref_ctx {
	desc_va_fn va_of;          /* virtual: page translation */
	void *va_ctx;
	const IOAddressRange *r;   /* physical: the ranges */
	uint32_t count;
} ref_ctx;

static addr64_t ref_segment(const ref_ctx *rc, IOByteCount len, IOByteCount off, IOByteCount *seg)
{
	return rc->r ? ref_physical(rc->r, rc->count, off, seg) : ref_virtual(rc->va_of, rc->va_ctx, len, off, seg);
}

/* getPhysicalSegment (with and without a length), the walk engine's first
 * segment, and a short sequential walk from @off, all against the model. */
static void check_offset(IOMemoryDescriptor *md, const ref_ctx *rc, IOByteCount off)
{
	IOByteCount len = IOMemoryDescriptor_getLength(md), seg = 12345, rseg, o, wl;
	addr64_t ref = ref_segment(rc, len, off, &rseg), pa, wpa;
	iomem_md_walk w;
	int k;
	pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
	cr_assert_eq(pa, ref, "offset %llu of %llu: pa %llx, model %llx", (unsigned long long)off,
	             (unsigned long long)len, (unsigned long long)pa, (unsigned long long)ref);
	cr_assert_eq(seg, rseg, "offset %llu of %llu: length %llu, model %llu", (unsigned long long)off,
	             (unsigned long long)len, (unsigned long long)seg, (unsigned long long)rseg);
	cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(md, off, NULL, 0), ref);
	if (off >= len) {
		cr_assert_not(iomem_md_walk_init(&w, md, off));
		return;
	}
	cr_assert(iomem_md_walk_init(&w, md, off));
	wl = iomem_md_walk_next(&w, &wpa);
	cr_assert_eq(wpa, ref, "walk engine at %llu", (unsigned long long)off);
	cr_assert_eq(wl, rseg, "walk engine at %llu", (unsigned long long)off);
	for (o = off + seg, k = 0; k < 3; k++) {
		ref = ref_segment(rc, len, o, &rseg);
		cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(md, o, &seg, 0), ref, "walk at %llu", (unsigned long long)o);
		cr_assert_eq(seg, rseg, "walk at %llu", (unsigned long long)o);
		if (seg == 0)
			break;
		o += seg;
	}
}

/* Every extent boundary b of @md and b - 1, b + 1; offsets 0, 1, a prime
 * stride through the bytes, the last byte, the length and past it. */
static void check_descriptor(IOMemoryDescriptor *md, const ref_ctx *rc)
{
	IOByteCount len = IOMemoryDescriptor_getLength(md), off;
	uint32_t n, i;
	const iomem_md_extent *e = iomem_md_extents(md, &n);
	cr_assert_not_null(e);
	for (i = 0; i < n; i++) {
		IOByteCount b = e[i].end;
		check_offset(md, rc, b - 1);
		check_offset(md, rc, b);
		check_offset(md, rc, b + 1);
	}
	for (off = 0; off < len; off += 997)
		check_offset(md, rc, off);
	check_offset(md, rc, 0);
	check_offset(md, rc, 1);
	check_offset(md, rc, len - 1);
	check_offset(md, rc, len);
	check_offset(md, rc, len + 1);
	check_offset(md, rc, len + DESC_PAGE);
	check_offset(md, rc, ~(IOByteCount)0);
	/* a whole sequential walk: segments maximal, counted */
	if (rc->r == NULL)
		desc_check_walk(md, rc->va_of, rc->va_ctx, true);
}

/* Whether the extents are uniform as iomem__md_set_stride defines it, and
 * the shift it must have chosen. */
static unsigned expected_shift(IOMemoryDescriptor *md)
{
	uint32_t n, i;
	const iomem_md_extent *e = iomem_md_extents(md, &n);
	IOByteCount max = 0, prev = 0, L;
	unsigned k = 1;
	for (i = 0; i < n; i++) {
		if (e[i].end - prev > max)
			max = e[i].end - prev;
		prev = e[i].end;
	}
	while (k < 31 && ((IOByteCount)1 << k) < max)
		k++;
	L = (IOByteCount)1 << k;
	if (n == 0 || L < max)
		return 0;
	for (i = 1; i + 1 < n; i++)
		if (e[i].end - e[i - 1].end != L)
			return 0;
	return k;
}

static unsigned page_shift(void)
{
	unsigned k = 0;
	while (((IOByteCount)1 << k) < DESC_PAGE)
		k++;
	return k;
}

/* ---- virtual, scattered: one page per extent ---- */

/* A scattered descriptor over @npages pages at byte @skew of a buffer,
 * @len bytes long: fixed stride of one page, bias = skew. */
static void scattered_virtual(size_t npages, IOByteCount skew, IOByteCount len)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	unsigned char *buf = IOMallocAligned(npages * DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(buf);
	/* withAddressRange: not auto-prepared, so complete frees the extents */
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)(buf + skew), len, kIODirectionInOut,
	                                                             kernel_task);
	cr_assert_not_null(md);
	ref_ctx rc = { desc_va_linear, buf + skew, NULL, 0 };
	cr_assert_eq(md->iomem__ext_shift, 0, "not prepared");
	cr_assert_eq(md->iomem__ext_limit, 0);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, 0), kIOReturnSuccess);
	uint32_t n;
	iomem_md_extents(md, &n);
	cr_assert_eq(md->iomem__ext_shift, expected_shift(md));
	cr_assert_neq(md->iomem__ext_shift, 0, "one page per extent is uniform");
	if (n >= 3) {   /* one or two short extents may get a smaller stride */
		cr_assert_eq(md->iomem__ext_shift, page_shift());
		cr_assert_eq(md->iomem__ext_bias, skew & (DESC_PAGE - 1));
	}
	if (md->iomem__ext_bias == 0)
		cr_assert_eq(md->iomem__ext_limit, len & ~(IOByteCount)md->iomem__ext_mask,
		             "aligned path up to the last full stride");
	else
		cr_assert_eq(md->iomem__ext_limit, 0, "unaligned: the biased path");
	check_descriptor(md, &rc);
	cr_assert_eq(IOMemoryDescriptor_complete(md, 0), kIOReturnSuccess);
	cr_assert_eq(md->iomem__ext_shift, 0, "cleared with the extents");
	cr_assert_eq(md->iomem__ext_limit, 0);
	/* prepared again: recomputed */
	cr_assert_eq(IOMemoryDescriptor_prepare(md, 0), kIOReturnSuccess);
	cr_assert_eq(md->iomem__ext_shift, expected_shift(md));
	check_descriptor(md, &rc);
	cr_assert_eq(IOMemoryDescriptor_complete(md, 0), kIOReturnSuccess);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, npages * DESC_PAGE);
}

static void scattered_cases(void)
{
	scattered_virtual(16, 0, 16 * DESC_PAGE);                /* aligned, whole pages */
	scattered_virtual(16, 0, 13 * DESC_PAGE + 1);            /* aligned, one byte in the last page */
	scattered_virtual(16, 0, 13 * DESC_PAGE - 1);            /* aligned, last page short by one */
	scattered_virtual(16, 100, 15 * DESC_PAGE - 100);        /* unaligned start, aligned end */
	scattered_virtual(16, 1, 14 * DESC_PAGE + 7);            /* unaligned both ends */
	scattered_virtual(16, DESC_PAGE - 1, 10 * DESC_PAGE);    /* one byte in extent 0 */
	scattered_virtual(4, 0, DESC_PAGE);                      /* one extent */
	scattered_virtual(4, 33, 64);                            /* one short extent */
	scattered_virtual(4, DESC_PAGE - 8, 16);                 /* two short extents */
	scattered_virtual(4, DESC_PAGE + 5, 2 * DESC_PAGE);      /* skew past a page */
	iomem_test_expect_reports(0);
}

Test(stride, scattered_4k) { scattered_cases(); }

Test(stride, scattered_16k)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	scattered_cases();
}

/* ---- buffers: setLength moves the aligned path's limit ---- */

static void buffer_set_length(void)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(12 * DESC_PAGE, kIODirectionInOut, false);
	cr_assert_not_null(b);
	unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	ref_ctx rc = { desc_va_linear, p, NULL, 0 };
	IOByteCount lens[] = { 12 * DESC_PAGE, 7 * DESC_PAGE + 100, 5 * DESC_PAGE, DESC_PAGE - 1, 1, 0,
	                       11 * DESC_PAGE + DESC_PAGE / 2, 12 * DESC_PAGE };
	cr_assert_eq(b->iomem__ext_shift, page_shift());
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		IOByteCount seg;
		IOBufferMemoryDescriptor_setLength(b, lens[i]);
		cr_assert_eq(IOMemoryDescriptor_getLength(b), lens[i]);
		cr_assert_eq(b->iomem__ext_limit, lens[i] & ~(DESC_PAGE - 1));
		if (lens[i] == 0) {
			cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0), 0);
			cr_assert_eq(seg, 0);
			continue;
		}
		check_descriptor(b, &rc);
	}
	IOMemoryDescriptor_release(b);
	iomem_test_expect_reports(0);
}

Test(stride, buffer_set_length_4k) { buffer_set_length(); }

Test(stride, buffer_set_length_16k)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	buffer_set_length();
}

/* ---- other layouts: uniform or not, both paths agree with the model ---- */

static void every_layout(void)
{
	int uniform = 0, hinted = 0;
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		for (uint32_t run = 1; run <= 4; run++) {
			desc_set_layout(desc_layouts[l], run, 100 + run);
			unsigned char *buf = IOMallocAligned(40 * DESC_PAGE, DESC_PAGE);
			cr_assert_not_null(buf);
			IOByteCount skews[] = { 0, 1, DESC_PAGE / 2 };
			for (size_t s = 0; s < 3; s++) {
				IOByteCount len = 38 * DESC_PAGE - skews[s] - 3;
				IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf + skews[s], len, kIODirectionInOut);
				cr_assert_not_null(md);
				cr_assert_eq(IOMemoryDescriptor_prepare(md, 0), kIOReturnSuccess);
				cr_assert_eq(md->iomem__ext_shift, expected_shift(md), "layout %s run %u skew %llu",
				             iomem_posix_layout_name(desc_layouts[l]), run, (unsigned long long)skews[s]);
				if (md->iomem__ext_shift)
					uniform++;
				else
					hinted++;
				ref_ctx rc = { desc_va_linear, buf + skews[s], NULL, 0 };
				check_descriptor(md, &rc);
				cr_assert_eq(IOMemoryDescriptor_complete(md, 0), kIOReturnSuccess);
				IOMemoryDescriptor_release(md);
			}
			IOFreeAligned(buf, 40 * DESC_PAGE);
		}
	}
	cr_expect(uniform > 0 && hinted > 0, "both paths: %d fixed-stride, %d hint", uniform, hinted);
	iomem_test_expect_reports(0);
}

Test(stride, every_layout_4k) { every_layout(); }

Test(stride, every_layout_16k)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	every_layout();
}

/* ---- physical ranges: exact extent shapes ---- */

static IOMemoryDescriptor *physical(const IOAddressRange *r, uint32_t count, unsigned shift, IOByteCount bias)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges((IOAddressRange *)(uintptr_t)r, count,
	                                                              kIODirectionInOut, NULL);
	cr_assert_not_null(md);
	cr_assert_eq(md->iomem__ext_shift, shift, "shift %u, expected %u", md->iomem__ext_shift, shift);
	cr_assert_eq(md->iomem__ext_shift, expected_shift(md));
	if (shift)
		cr_assert_eq(md->iomem__ext_bias, bias, "bias %u, expected %llu", md->iomem__ext_bias,
		             (unsigned long long)bias);
	ref_ctx rc = { NULL, NULL, r, count };
	check_descriptor(md, &rc);
	return md;
}

#define NR(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

Test(stride, physical_shapes)
{
	const IOByteCount P = 0x1000;
	/* runs of 2 pages, not adjacent: uniform with L = 2 pages */
	IOAddressRange runs2[] = { { 0x100000, 2 * P }, { 0x200000, 2 * P }, { 0x300000, 2 * P }, { 0x400000, P } };
	/* 1, 2, 2, 1 pages: uniform, bias one page (extent 0 is half a stride) */
	IOAddressRange half[] = { { 0x100000, P }, { 0x200000, 2 * P }, { 0x300000, 2 * P }, { 0x400000, P } };
	/* 2, 1, 2 pages: a short extent in the middle: the hint path */
	IOAddressRange mid[] = { { 0x100000, 2 * P }, { 0x200000, P }, { 0x300000, 2 * P } };
	/* 2, 2, 3 pages: the last one too long */
	IOAddressRange last[] = { { 0x100000, 2 * P }, { 0x200000, 2 * P }, { 0x300000, 3 * P } };
	/* adjacent ranges merge first: extents of 2, 2, 2 pages */
	IOAddressRange merged[] = { { 0x100000, P }, { 0x101000, P }, { 0x200000, 2 * P }, { 0x300000, P },
	                            { 0x301000, P } };
	/* non-page sizes: 24, 32, 32, 5 bytes -> L = 32, bias 8 */
	IOAddressRange bytes[] = { { 0x1008, 24 }, { 0x2000, 32 }, { 0x3000, 32 }, { 0x4000, 5 } };
	/* one byte extents: L would be 1 (shift 0 means none): the hint path */
	IOAddressRange ones[] = { { 0x1000, 1 }, { 0x2000, 1 }, { 0x3000, 1 } };
	/* one or two one-byte extents: any L >= 2 fits */
	IOAddressRange one[] = { { 0x1000, 1 } };
	IOAddressRange two[] = { { 0x1000, 1 }, { 0x3000, 1 } };
	/* extents longer than 2^31: too large a stride, the hint path */
	IOAddressRange huge[] = { { 0x100000000ull, 0x100000000ull }, { 0x300000000ull, 0x100000000ull },
	                          { 0x500000000ull, 0x100000000ull } };
	/* 2^31 exactly: the largest stride */
	IOAddressRange big[] = { { 0x100000000ull, 0x80000000ull }, { 0x200000000ull, 0x80000000ull },
	                         { 0x300000000ull, 0x10 } };
	/* zero-length ranges are skipped by the builder */
	IOAddressRange zeros[] = { { 0x100000, 0 }, { 0x200000, P }, { 0x900000, 0 }, { 0x300000, P },
	                           { 0x400000, 10 } };
	IOMemoryDescriptor *md[13];
	int k = 0;
	md[k++] = physical(runs2, NR(runs2), 13, 0);
	md[k++] = physical(half, NR(half), 13, P);
	md[k++] = physical(mid, NR(mid), 0, 0);
	md[k++] = physical(last, NR(last), 0, 0);
	md[k++] = physical(merged, NR(merged), 13, 0);
	md[k++] = physical(bytes, NR(bytes), 5, 8);
	md[k++] = physical(ones, NR(ones), 0, 0);
	md[k++] = physical(one, NR(one), 1, 1);
	md[k++] = physical(two, NR(two), 1, 1);
	md[k++] = physical(huge, NR(huge), 0, 0);
	md[k++] = physical(big, NR(big), 31, 0);
	md[k++] = physical(zeros, NR(zeros), 12, 0);
	/* the aligned path's limit: the last extent end <= length */
	cr_expect_eq(md[0]->iomem__ext_limit, 6 * P, "the last multiple of the stride <= length");
	cr_expect_eq(md[1]->iomem__ext_limit, 0, "biased");
	cr_expect_eq(md[10]->iomem__ext_limit, 0x100000000ull);
	cr_expect_eq(md[11]->iomem__ext_limit, 2 * P);
	/* a sub-descriptor reaches the stride path of its parent */
	md[k] = IOSubMemoryDescriptor_withSubRange(md[0], P + 3, 5 * P, kIODirectionInOut);
	cr_assert_not_null(md[k]);
	for (IOByteCount off = 0; off <= 5 * P; off += P / 2) {
		IOByteCount seg, rseg;
		addr64_t ref = ref_physical(runs2, NR(runs2), P + 3 + off, &rseg);
		if (off >= 5 * P)
			ref = 0, rseg = 0;
		else if (rseg > 5 * P - off)
			rseg = 5 * P - off;
		cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(md[k], off, &seg, 0), ref);
		cr_assert_eq(seg, rseg);
	}
	k++;
	for (int i = k - 1; i >= 0; i--)
		IOMemoryDescriptor_release(md[i]);
	iomem_test_expect_reports(0);
}

/* The hint path and the stride path interleaved on two descriptors that
 * share nothing: a random-offset differential against the model. */
Test(stride, random_offsets_both_paths)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	unsigned char *a = IOMallocAligned(64 * DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(a);
	IOMemoryDescriptor *ua = IOMemoryDescriptor_withAddress(a + 77, 60 * DESC_PAGE, kIODirectionInOut);
	cr_assert_eq(IOMemoryDescriptor_prepare(ua, 0), kIOReturnSuccess);
	desc_set_layout(IOMEM_POSIX_LAYOUT_RUNS, 3, 9);
	unsigned char *b = IOMallocAligned(64 * DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(b);
	IOMemoryDescriptor *ub = IOMemoryDescriptor_withAddress(b, 64 * DESC_PAGE, kIODirectionInOut);
	cr_assert_eq(IOMemoryDescriptor_prepare(ub, 0), kIOReturnSuccess);
	cr_assert_neq(ua->iomem__ext_shift, 0);
	cr_assert_eq(ub->iomem__ext_shift, expected_shift(ub));
	ref_ctx ra = { desc_va_linear, a + 77, NULL, 0 }, rb = { desc_va_linear, b, NULL, 0 };
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < 4000; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		IOByteCount oa = (IOByteCount)(seed >> 20) % (60 * DESC_PAGE + 2);
		IOByteCount ob = (IOByteCount)(seed >> 7) % (64 * DESC_PAGE + 2);
		check_offset(ua, &ra, oa);
		check_offset(ub, &rb, ob);
	}
	IOMemoryDescriptor_complete(ua, 0);
	IOMemoryDescriptor_complete(ub, 0);
	IOMemoryDescriptor_release(ua);
	IOMemoryDescriptor_release(ub);
	IOFreeAligned(a, 64 * DESC_PAGE);
	IOFreeAligned(b, 64 * DESC_PAGE);
	iomem_test_expect_reports(0);
}
