/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_dmacmd.c - IODMACommand specifications + prepare /
 * genIOVMSegments / complete sequences, and IOMemoryCursor, differential
 * against the naive reference generators of the tests (tests/test_dma_ref.h:
 * dma_ref_gen, dma_ref_cursor).
 *
 * The input seeds a random layout (HIGH included) and a random prepared
 * descriptor (general / buffer / physical / sub / multi, nested), then
 * chooses a specification (address bits, maxSegment, the three
 * alignments, maxTransfer), a prepared range anywhere, and a sequence of
 * generation calls with any capacity at any resume offset. The command is
 * kIterateOnly (cursor mode by definition: no bouncing, every limit
 * violation is an error), where the oracle is exact:
 *   - prepare's refusals (NoSpace for a range above maxTransfer, NotAligned
 *     for a length the length alignment rejects);
 *   - every call's return code, segments, new offset and count, and on an
 *     error offset and count unchanged;
 *   - complete after prepare; clearMemoryDescriptor; release.
 * Then an IOMemoryCursor (natural) over the same descriptor against
 * dma_ref_cursor. At the end nothing is leaked or left wired, no report.
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "test_dma_ref.h"

#define CAP 16

static uint32_t f_align(fz *f, uint64_t pg)
{
	uint8_t b = fz_u8(f);
	uint32_t a = 1;
	if (b % 3 != 0)
		return (b & 4) ? 0 : 1;          /* 0 takes the default */
	for (unsigned k = 1 + (b >> 3) % 12; k-- && (uint64_t)a * 2 <= pg;)
		a *= 2;
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static dma_ref_seg want[CAP], ref_cur[CAP];
	static IODMACommand_Segment64 got[CAP];
	static IOPhysicalSegment cseg[CAP];
	fz f = { data, size };
	uint64_t pg = dma_ref_page(), L, off, len, lmask;
	dma_ref_rng rng;
	dma_ref_md m;
	dma_ref_spec sp;
	IODMACommand_SegmentOptions o;
	IODMACommand *cmd;
	IOReturn pr;
	iomem_posix_machine_stats_t st;
	bool want_no_space = false, want_not_aligned = false;
	unsigned bits;

	fz_panic_count = 0;
	rng.s = fz_u64(&f) | 1;
	dma_ref_random_layout(&rng, true);
	FZ_CHECK(dma_ref_random_md(&rng, 2, 4, kIODirectionInOut, &m) == kIOReturnSuccess, "random md");
	L = m.length;

	/* ---- the specification ---- */
	memset(&o, 0, sizeof o);
	o.fStructSize = sizeof o;
	switch (fz_u8(&f) % 4) {
	case 0: bits = 0; break;
	case 1: bits = 32; break;
	case 2: bits = 40 + fz_u8(&f) % 3; break;
	default: bits = 31 + fz_u8(&f) % 34; break;
	}
	o.fNumAddressBits = (uint8_t)bits;
	switch (fz_u8(&f) % 3) {
	case 0: o.fMaxSegmentSize = 0; break;
	case 1: o.fMaxSegmentSize = 1 + fz_u32(&f) % (3 * pg); break;
	default: o.fMaxSegmentSize = (uint64_t)1 << (9 + fz_u8(&f) % 6); break;
	}
	o.fAlignment = f_align(&f, pg);
	o.fAlignmentLength = f_align(&f, pg);
	o.fAlignmentInternalSegments = f_align(&f, pg);
	{       /* maxSegment below the alignments cannot be met: not generated */
		uint64_t need = o.fAlignmentLength > 1 ? o.fAlignmentLength : 1;
		uint64_t ia = o.fAlignmentInternalSegments ? o.fAlignmentInternalSegments : (o.fAlignment ? o.fAlignment : 1);
		if (ia > need)
			need = ia;
		if (o.fMaxSegmentSize != 0 && o.fMaxSegmentSize < need)
			o.fMaxSegmentSize = need * (1 + fz_u8(&f) % 3);
	}
	memset(&sp, 0, sizeof sp);
	sp.address_bits = bits;
	sp.max_segment = o.fMaxSegmentSize;
	sp.align = o.fAlignment ? o.fAlignment : 1;
	sp.align_length = o.fAlignmentLength ? o.fAlignmentLength : 1;
	sp.align_internal = o.fAlignmentInternalSegments ? o.fAlignmentInternalSegments : sp.align;
	sp.cursor_mode = true;
	lmask = sp.align_length - 1;

	/* ---- the prepared range: anywhere ---- */
	off = fz_u32(&f) % L;
	len = 1 + fz_u32(&f) % (L - off);
	if (len & lmask) {
		if ((len & ~lmask) != 0 && (fz_u8(&f) & 7) != 0)
			len &= ~lmask;
		else
			want_not_aligned = true;
	}
	switch (fz_u8(&f) % 6) {
	case 0: o.fMaxTransferSize = len + fz_u16(&f); break;
	case 1: o.fMaxTransferSize = len > 1 ? 1 + fz_u32(&f) % (len - 1) : 0; break;
	default: o.fMaxTransferSize = 0; break;
	}
	want_no_space = o.fMaxTransferSize != 0 && len > o.fMaxTransferSize;
	sp.max_transfer = o.fMaxTransferSize;

	cmd = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o,
	        ((fz_u8(&f) & 1) ? IODMACommand_kUnmapped : IODMACommand_kMapped) | IODMACommand_kIterateOnly, NULL, NULL);
	FZ_CHECK(cmd != NULL, "withSpecificationOptions (bits %u)", bits);
	FZ_CHECK(IODMACommand_setMemoryDescriptor(cmd, m.md, false) == kIOReturnSuccess, "setMemoryDescriptor");
	pr = IODMACommand_prepare(cmd, off, len, true, true);
	if (want_no_space || want_not_aligned) {
		IOReturn w = want_no_space ? kIOReturnNoSpace : kIOReturnNotAligned;
		FZ_CHECK(pr == w, "prepare(%llu, %llu) = %#x, expected %#x", (unsigned long long)off,
		         (unsigned long long)len, (unsigned)pr, (unsigned)w);
		FZ_CHECK(IODMACommand_complete(cmd, true, true) == kIOReturnNotReady, "a refused prepare left it active");
	} else {
		uint64_t pos = 0;
		FZ_CHECK(pr == kIOReturnSuccess, "prepare(%llu, %llu) = %#x", (unsigned long long)off, (unsigned long long)len,
		         (unsigned)pr);
		for (int call = 0; call < 64 && fz_more(&f); call++) {
			uint32_t cap = 1 + fz_u8(&f) % CAP, rn = cap, cn = cap;
			uint64_t ro = pos, co = pos;
			IOReturn rret = dma_ref_gen(m.md, off, len, &sp, &ro, want, &rn);
			IOReturn cret = IODMACommand_gen64IOVMSegments(cmd, &co, got, &cn);
			FZ_CHECK(cret == rret, "call %d at %llu (cap %u, prepared %llu+%llu, bits %u maxSeg %llu align %u/%u/%u): %#x, reference %#x",
			         call, (unsigned long long)pos, cap, (unsigned long long)off, (unsigned long long)len, bits,
			         (unsigned long long)sp.max_segment, sp.align, sp.align_length, sp.align_internal,
			         (unsigned)cret, (unsigned)rret);
			if (cret != kIOReturnSuccess) {
				FZ_CHECK(co == pos && cn == cap, "offset/count changed on error");
			} else {
				FZ_CHECK(cn == rn, "call %d at %llu: %u segments, reference %u", call, (unsigned long long)pos, cn, rn);
				for (uint32_t i = 0; i < cn; i++)
					FZ_CHECK(got[i].fIOVMAddr == want[i].addr && got[i].fLength == want[i].len,
					         "call %d at %llu seg %u: {%llx, %llx}, reference {%llx, %llx}", call,
					         (unsigned long long)pos, i, (unsigned long long)got[i].fIOVMAddr,
					         (unsigned long long)got[i].fLength, (unsigned long long)want[i].addr,
					         (unsigned long long)want[i].len);
				FZ_CHECK(co == ro, "call %d: offset %llu, reference %llu", call, (unsigned long long)co,
				         (unsigned long long)ro);
				pos = co;
			}
			/* resume anywhere, past the end too */
			if (cret != kIOReturnSuccess || (fz_u8(&f) & 7) == 0)
				pos = fz_u32(&f) % (len + 2);
		}
		FZ_CHECK(IODMACommand_complete(cmd, true, true) == kIOReturnSuccess, "complete");
	}
	FZ_CHECK(IODMACommand_clearMemoryDescriptor(cmd, false) == kIOReturnSuccess, "clear");
	IODMACommand_release(cmd);

	/* ---- a cursor over the same descriptor ---- */
	{
		uint64_t maxseg = 1 + fz_u32(&f) % (4 * pg), cmax = (fz_u8(&f) & 1) ? fz_u32(&f) % (8 * pg) : 0;
		IOMemoryCursor *c = IOMemoryCursor_withSpecification(IONaturalMemoryCursor_outputSegment, maxseg, cmax, 1);
		FZ_CHECK(c != NULL, "cursor");
		for (int call = 0; call < 8 && fz_more(&f); call++) {
			uint64_t from = fz_u32(&f) % (L + 1), rt = 0;
			uint32_t maxs = 1 + fz_u8(&f) % CAP, mt = (fz_u8(&f) & 1) ? fz_u32(&f) % (8 * pg) : 0;
			IOByteCount ct = 0;
			uint32_t rn = dma_ref_cursor(m.md, from, maxseg, cmax, mt, ref_cur, maxs, &rt);
			uint32_t cn = IOMemoryCursor_genPhysicalSegments(c, m.md, from, cseg, maxs, mt, &ct);
			FZ_CHECK(cn == rn && ct == rt, "cursor from %llu (maxSeg %llu, max %llu/%u, %u segs): %u segments %llu bytes, reference %u %llu",
			         (unsigned long long)from, (unsigned long long)maxseg, (unsigned long long)cmax, mt, maxs, cn,
			         (unsigned long long)ct, rn, (unsigned long long)rt);
			for (uint32_t i = 0; i < cn; i++)
				FZ_CHECK(cseg[i].location == ref_cur[i].addr && cseg[i].length == ref_cur[i].len,
				         "cursor seg %u: {%llx, %llx}, reference {%llx, %llx}", i, (unsigned long long)cseg[i].location,
				         (unsigned long long)cseg[i].length, (unsigned long long)ref_cur[i].addr,
				         (unsigned long long)ref_cur[i].len);
		}
		IOMemoryCursor_release(c);
	}

	dma_ref_md_release(&m);
	iomem_bounce_pool_trim();
	FZ_NO_REPORTS();
	FZ_CHECK(iomem_leak_report(NULL, NULL) == 0, "leak");
	iomem_posix_machine_stats(&st);
	FZ_CHECK(st.wired_pages == 0, "%llu page(s) still wired", (unsigned long long)st.wired_pages);
	return 0;
}
