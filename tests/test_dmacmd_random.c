/* SPDX-License-Identifier: MIT */
/*
 * tests/test_dmacmd_random.c - randomised differential test of
 * IODMACommand's genIOVMSegments against the reference model
 * dma_ref_gen (tests/test_dma_ref.h).
 *
 * Every case: a random layout (HIGH included), a random prepared
 * descriptor (general / buffer / physical / sub / multi), a random
 * specification (output format, address bits, maxSegment, the three
 * alignments, maxTransfer, mapping type), a random prepared sub-range,
 * then a walk with random call sizes and random resume offsets. Checked:
 * prepare's code (NoSpace / NotAligned first), then
 *   - unbounced cases: every call's code, segments, new offset and count
 *     equal the oracle's (errors leave *offset / *numSegments unchanged);
 *   - cases the reference bounces: coverage (lengths add up to the
 *     prepared length), limits (address bits, maxSegment, alignments), the
 *     bytes behind every segment equal the descriptor's, pages already
 *     reachable are not bounced (sparse), the double buffer is reported by
 *     getIOMemoryDescriptor;
 *   - readBytes through the command, and writeBytes + complete landing in
 *     the descriptor (copy-back when bounced).
 *
 * Tests:
 *   iterate_only       kIterateOnly (cursor mode by definition): the oracle
 *                      in cursor mode, any alignment, any resume offset.
 *   unmapped           the other types (no mapper exists: CPU-physical);
 *                      specs whose walk needs no bounce are compared
 *                      exactly, the others checked as bounced outputs (or,
 *                      when the reference's cursor-mode rule applies, for
 *                      the oracle's error).
 *   any_prepared_end   kIterateOnly with prepared ends anywhere (not only
 *                      at a physical run's end): iomem clips the run at the
 *                      prepared end first (documented deviation from the
 *                      reference's step order; dma_ref_gen's default).
 * In the others the prepared range ends where a physical run ends, so they
 * do not depend on that order.
 *
 * 11,000 cases per run (3000 + 5000 + 800 + 1200, + 500 + 500 with 16 KiB pages).
 * The seed is printed and in every failure message; IOMEM_TEST_SEED=<n>
 * reproduces, IOMEM_TEST_CASES=<n> changes the number of cases.
 */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "test_desc_util.h"
#include "test_dma_ref.h"

#include <stdio.h>
#include <time.h>

/* the bounce pool keeps an empty chunk cached (LEAD 15:36): give it back
 * before the wired-pages and leak checks */
static void random_fini(void)
{
	iomem_bounce_pool_trim();
	desc_fini();
}

TestSuite(dmacmd_random, .fini = random_fini, .timeout = 280);

#define MAXSEGS 2048
#define CALLCAP 64

enum { F_HOST32, F_BIG32, F_LITTLE32, F_HOST64, F_BIG64, F_LITTLE64, F_COUNT };
static const IODMACommand_SegmentFunction fmt_fn[F_COUNT] = {
	IODMACommand_OutputHost32, IODMACommand_OutputBig32, IODMACommand_OutputLittle32,
	IODMACommand_OutputHost64, IODMACommand_OutputBig64, IODMACommand_OutputLittle64,
};

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}
static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* segment @i of the raw output of format @f */
static dma_ref_seg decode(int f, const unsigned char *raw, uint32_t i)
{
	dma_ref_seg s;
	switch (f) {
	case F_HOST32: {
		IODMACommand_Segment32 x;
		memcpy(&x, raw + 8 * i, sizeof x);
		s.addr = x.fIOVMAddr;
		s.len = x.fLength;
		break;
	}
	case F_BIG32:    s.addr = be(raw + 8 * i, 4);  s.len = be(raw + 8 * i + 4, 4);   break;
	case F_LITTLE32: s.addr = le(raw + 8 * i, 4);  s.len = le(raw + 8 * i + 4, 4);   break;
	case F_HOST64: {
		IODMACommand_Segment64 x;
		memcpy(&x, raw + 16 * i, sizeof x);
		s.addr = x.fIOVMAddr;
		s.len = x.fLength;
		break;
	}
	case F_BIG64:    s.addr = be(raw + 16 * i, 8); s.len = be(raw + 16 * i + 8, 8);  break;
	default:         s.addr = le(raw + 16 * i, 8); s.len = le(raw + 16 * i + 8, 8);  break;
	}
	return s;
}

enum { T_ITERATE, T_UNMAPPED, T_ANY_END, T_LOW_BITS };

static dma_ref_rng rng;
static uint64_t seed_used;
static int case_no;
static struct { unsigned long exact, bounced, cursor_err, refused, calls; } stats;

static char desc[400];   /* the case, for failure messages */
#define CTX "seed %llu case %d [%s]: "
#define CTXA (unsigned long long)seed_used, case_no, desc

static uint64_t rr(uint64_t lo, uint64_t hi) { return dma_ref_range(&rng, lo, hi); }

static uint32_t rand_align(uint64_t pg)
{
	if (rr(0, 2) != 0)
		return rr(0, 1) ? 0 : 1;        /* 0 takes the default */
	uint32_t a = 1;
	unsigned k = (unsigned)rr(1, 12);
	while (k-- && (uint64_t)a * 2 <= pg)
		a *= 2;
	return a;
}

/* the bytes behind physical [pa, pa+len) equal @want */
static bool phys_bytes_equal(uint64_t pa, uint64_t len, const unsigned char *want)
{
	uint64_t pg = dma_ref_page();
	while (len > 0) {
		uint64_t n = pg - (pa & (pg - 1));
		if (n > len)
			n = len;
		const unsigned char *v = iomem_posix_phys_to_virt(pa);
		if (v == NULL || memcmp(v, want, n) != 0)
			return false;
		pa += n;
		want += n;
		len -= n;
	}
	return true;
}

static bool iterate_of(uint32_t mapping) { return (mapping & IODMACommand_kIterateOnly) != 0; }

/* two runs share a physical byte */
static bool aliased(const dma_ref_seg *r, long n)
{
	for (long i = 0; i < n; i++)
		for (long j = i + 1; j < n; j++)
			if (r[i].addr < r[j].addr + r[j].len && r[j].addr < r[i].addr + r[i].len)
				return true;
	return false;
}

/* oracle for one call with the command's values */
static IOReturn ref_call(IOMemoryDescriptor *md, uint64_t po, uint64_t pl, const dma_ref_spec *sp, uint64_t *off,
                         dma_ref_seg *out, uint32_t *n)
{
	return dma_ref_gen(md, po, pl, sp, off, out, n);
}

/* the oracle's whole walk (in calls of MAXSEGS: positions, not calls,
 * decide every rule); the first call's segments in @out, *@n of them;
 * returns Success or the walk's first error */
static IOReturn ref_full(IOMemoryDescriptor *md, uint64_t po, uint64_t pl, const dma_ref_spec *sp, dma_ref_seg *out,
                         uint32_t *n)
{
	static dma_ref_seg scratch[MAXSEGS];
	uint64_t off = 0;
	uint32_t stored = 0;
	bool first = true;
	for (;;) {
		uint32_t k = MAXSEGS;
		IOReturn r = dma_ref_gen(md, po, pl, sp, &off, first ? out : scratch, &k);
		if (r == kIOReturnOverrun)
			break;
		if (r != kIOReturnSuccess) {
			*n = stored;
			return r;
		}
		if (first)
			stored = k;
		first = false;
	}
	*n = stored;
	return kIOReturnSuccess;
}

static void run_case(int type)
{
	static dma_ref_seg runs[MAXSEGS], want[MAXSEGS], got[MAXSEGS];
	static uint64_t rawbuf[2 * CALLCAP];   /* 8-byte aligned: Segment64 stores */
	unsigned char *raw = (unsigned char *)rawbuf;
	uint64_t pg = dma_ref_page();
	unsigned shift = 0;
	dma_ref_md m;
	while (((uint64_t)1 << shift) < pg)
		shift++;

	dma_ref_random_layout(&rng, true);
	cr_assert_eq(dma_ref_random_md(&rng, 2, 4, kIODirectionInOut, &m), kIOReturnSuccess, CTX "random md", CTXA);
	IOMemoryDescriptor *md = m.md;
	uint64_t L = m.length;
	long nruns = dma_ref_runs(md, 0, L, runs, MAXSEGS);
	cr_assert_gt(nruns, 0, CTX "runs", CTXA);
	uint64_t highest = 0;
	for (long i = 0; i < nruns; i++)
		if (runs[i].addr + runs[i].len - 1 > highest)
			highest = runs[i].addr + runs[i].len - 1;

	/* ---- the specification ---- */
	int f = rr(0, 2) ? F_HOST64 : (int)rr(0, F_COUNT - 1);
	bool is32 = f <= F_LITTLE32;
	unsigned bits;
	switch (rr(0, 5)) {
	case 0: bits = 0; break;
	case 1: bits = 32; break;
	case 2: bits = (unsigned)rr(40, 42); break;          /* around the HIGH pool (1 TiB) */
	case 3: bits = 64; break;
	default: bits = (unsigned)rr(31, 64); break;
	}
	if (is32 && bits > 32)
		bits = (unsigned)rr(31, 32);
	/* below 2^31 no bounce memory may exist (the machine's low pool is
	 * [1 MiB, 2 GiB)): those limits have their own test */
	if (type == T_LOW_BITS)
		bits = (unsigned)rr(shift, 30);
	IODMACommand_SegmentOptions o;
	memset(&o, 0, sizeof o);
	o.fStructSize = sizeof o;
	o.fNumAddressBits = (uint8_t)bits;
	switch (rr(0, 3)) {
	case 0: case 1: o.fMaxSegmentSize = 0; break;
	case 2: o.fMaxSegmentSize = rr(0, 7) == 0 ? rr(1, 63) : rr(64, 3 * pg); break;
	default: o.fMaxSegmentSize = (uint64_t)1 << rr(9, shift + 2); break;
	}
	if (rr(0, 1)) {
		o.fAlignment = rand_align(pg);
		o.fAlignmentLength = rand_align(pg);
		o.fAlignmentInternalSegments = rand_align(pg);
	}
	/* maxSegment below the length or internal alignment cannot be met by
	 * any layout (the trims would leave nothing): not generated here */
	{
		uint64_t need = o.fAlignmentLength > 1 ? o.fAlignmentLength : 1;
		uint64_t ia = o.fAlignmentInternalSegments ? o.fAlignmentInternalSegments : (o.fAlignment ? o.fAlignment : 1);
		if (ia > need)
			need = ia;
		if (o.fMaxSegmentSize != 0 && o.fMaxSegmentSize < need)
			o.fMaxSegmentSize = need * rr(1, 3);
	}
	uint32_t mapping;
	if (type == T_UNMAPPED || type == T_LOW_BITS) {
		static const uint32_t types[] = { IODMACommand_kMapped, IODMACommand_kUnmapped,
		                                  IODMACommand_kNonCoherent, IODMACommand_kBypassed };
		mapping = types[rr(0, 3)];
	} else {
		mapping = (rr(0, 1) ? IODMACommand_kUnmapped : IODMACommand_kMapped) | IODMACommand_kIterateOnly;
	}
	dma_ref_spec sp;
	memset(&sp, 0, sizeof sp);
	sp.address_bits = (is32 && bits == 0) ? 32 : bits;
	sp.max_segment = o.fMaxSegmentSize;
	sp.align = o.fAlignment ? o.fAlignment : 1;
	sp.align_length = o.fAlignmentLength ? o.fAlignmentLength : 1;
	sp.align_internal = o.fAlignmentInternalSegments ? o.fAlignmentInternalSegments : sp.align;
	uint64_t lmask = sp.align_length - 1;

	/* ---- the prepared range ---- */
	uint64_t off = rr(0, L - 1), end;
	if (type == T_ANY_END) {
		end = rr(off + 1, L);
	} else {
		/* the end of a run (of the whole descriptor) after off */
		uint64_t ends[MAXSEGS], pos = 0;
		int ne = 0;
		for (long i = 0; i < nruns; i++) {
			pos += runs[i].len;
			if (pos > off)
				ends[ne++] = pos;
		}
		end = ends[rr(0, (uint64_t)ne - 1)];
	}
	uint64_t len = end - off;
	bool want_not_aligned = false;
	if (len & lmask) {
		if ((len & ~lmask) != 0 && rr(0, 7) != 0) {
			off = end - (len & ~lmask);   /* keep the end, shrink from the front */
			len = end - off;
		} else {
			want_not_aligned = true;
		}
	}
	int xfer_kind = (int)rr(0, 9);
	o.fMaxTransferSize = xfer_kind <= 6 ? 0 : xfer_kind <= 8 ? len + rr(0, 2 * pg) : (len > 1 ? rr(1, len - 1) : 0);
	bool want_no_space = o.fMaxTransferSize != 0 && len > o.fMaxTransferSize;
	sp.max_transfer = o.fMaxTransferSize;

	snprintf(desc, sizeof desc, "md kind %d len %llu, prepared %llu+%llu, fmt %d bits %u maxSeg %llu maxXfer %llu align %u/%u/%u type %x",
	         (int)iomem_md_kind_of(md), (unsigned long long)L, (unsigned long long)off, (unsigned long long)len, f,
	         sp.address_bits, (unsigned long long)sp.max_segment, (unsigned long long)o.fMaxTransferSize, sp.align,
	         sp.align_length, sp.align_internal, mapping);
	IODMACommand *cmd = IODMACommand_withSpecificationOptions(fmt_fn[f], &o, mapping, NULL, NULL);
	cr_assert_not_null(cmd, CTX "withSpecificationOptions (bits %u f %d)", CTXA, bits, f);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, md, false), kIOReturnSuccess, CTX "setMemoryDescriptor", CTXA);
	IOReturn pr = IODMACommand_prepare(cmd, off, len, true, true);
	if (want_no_space || want_not_aligned) {
		IOReturn w = want_no_space ? kIOReturnNoSpace : kIOReturnNotAligned;
		cr_assert_eq(pr, w, CTX "prepare(%llu, %llu) = %x, expected %x (maxXfer %llu, alignLength %u)", CTXA,
		             (unsigned long long)off, (unsigned long long)len, (unsigned)pr, (unsigned)w,
		             (unsigned long long)o.fMaxTransferSize, sp.align_length);
		cr_assert_eq(IODMACommand_complete(cmd, true, true), kIOReturnNotReady, CTX "refused prepare left the command active", CTXA);
		stats.refused++;
		goto out;
	}
	if (pr == kIOReturnNoResources && sp.address_bits < 31 && !iterate_of(mapping)) {
		/* no bounce memory that low (the low pool starts at 1 MiB and
		 * ends at 2 GiB): a refusal that must leave nothing behind */
		cr_assert_eq(IODMACommand_complete(cmd, true, true), kIOReturnNotReady, CTX "NoResources left it active", CTXA);
		stats.refused++;
		goto out;
	}
	cr_assert_eq(pr, kIOReturnSuccess, CTX "prepare(%llu, %llu) = %x", CTXA, (unsigned long long)off,
	             (unsigned long long)len, (unsigned)pr);

	/* ---- what the reference does with it ---- */
	uint64_t max_phys = (sp.address_bits >= 1 && sp.address_bits <= 63) ? ((uint64_t)1 << sp.address_bits) - 1 : ~(uint64_t)0;
	bool iterate = (mapping & IODMACommand_kIterateOnly) != 0;
	/* checkAddressing: the descriptor's highest page beyond the bits */
	bool check_addressing = sp.address_bits != 0 && sp.address_bits < 64 && highest > max_phys;
	/* preflight (no address cut, positions as one call): misaligned? */
	dma_ref_spec pf = sp;
	pf.address_bits = 0;
	pf.cursor_mode = true;
	uint32_t nw;
	bool misaligned = ref_full(md, off, len, &pf, want, &nw) == kIOReturnNotAligned;
	bool above = false;
	{
		long n = dma_ref_runs(md, off, len, got, MAXSEGS);
		cr_assert_gt(n, 0);
		for (long i = 0; i < n; i++)
			if (got[i].addr + got[i].len - 1 > max_phys)
				above = true;
	}
	/* The reference's cursor-mode rule: iterate-only, or !checkAddressing
	 * and ("no alignment requirement" or one chunk whose page offset
	 * satisfies it). Whether "alignment requirement" means the start
	 * alignment only (XNU's source mask) or any of the three, and what
	 * "one chunk" is, the reference leaves open: without checkAddressing
	 * and with any alignment > 1 the mode is "ambiguous" and a misfit may
	 * give either the oracle's cursor error or a (double-buffer) bounce. */
	bool cursor = iterate || (!check_addressing && sp.align == 1 && sp.align_length == 1 && sp.align_internal == 1);
	bool ambiguous = !iterate && !check_addressing && !cursor;
	bool clean = !misaligned && !above;
	/* ambiguous + misfit: the command's choice decides which check runs */
	bool amb_bounced = ambiguous && !clean && IODMACommand_getIOMemoryDescriptor(cmd) != md;
	sp.cursor_mode = cursor || (ambiguous && !clean && !amb_bounced);
	if (ambiguous && !clean && !amb_bounced) {
		cursor = true;
		ambiguous = false;
	}

	unsigned char *mdbytes = malloc(L);
	cr_assert_eq(IOMemoryDescriptor_readBytes(md, 0, mdbytes, L), L);

	if (clean || cursor) {
		/* exact: call by call against the oracle; resume offsets random
		 * where the mode cannot matter, else at segment starts */
		uint64_t pos = 0;
		uint32_t nstarts = 0;
		static uint64_t starts[MAXSEGS];
		dma_ref_spec spx = sp;
		if (ambiguous)
			spx.cursor_mode = false;   /* clean: both modes give the same full walk */
		{
			uint32_t n;
			IOReturn rf = ref_full(md, off, len, &spx, want, &n);
			if (rf == kIOReturnSuccess) {
				uint64_t p = 0;
				for (uint32_t i = 0; i < n; i++) {
					starts[nstarts++] = p;
					p += want[i].len;
				}
			}
		}
		for (int call = 0; call < 200; call++) {
			uint32_t cap = rr(0, 3) == 0 ? (uint32_t)rr(1, CALLCAP) : (uint32_t)rr(1, 4);
			uint64_t ro = pos, co = pos;
			uint32_t rn = cap, cn = cap;
			IOReturn rret = ref_call(md, off, len, &spx, &ro, want, &rn);
			memset(rawbuf, 0xA5, sizeof rawbuf);
			IOReturn cret = f == F_HOST64 && rr(0, 1) ? IODMACommand_gen64IOVMSegments(cmd, &co, (IODMACommand_Segment64 *)(void *)raw, &cn)
			              : f == F_HOST32 && rr(0, 1) ? IODMACommand_gen32IOVMSegments(cmd, &co, (IODMACommand_Segment32 *)(void *)raw, &cn)
			              : IODMACommand_genIOVMSegments(cmd, &co, raw, &cn);
			stats.calls++;
			cr_assert_eq(cret, rret, CTX "call %d at %llu (cap %u, prepared %llu+%llu, bits %u maxSeg %llu align %u/%u/%u, %s%s): "
			             "genIOVMSegments %x, reference %x", CTXA, call, (unsigned long long)pos, cap,
			             (unsigned long long)off, (unsigned long long)len, sp.address_bits,
			             (unsigned long long)sp.max_segment, sp.align, sp.align_length, sp.align_internal,
			             iterate ? "iterate-only" : "not iterate-only", spx.cursor_mode ? ", cursor" : "",
			             (unsigned)cret, (unsigned)rret);
			if (cret != kIOReturnSuccess) {
				cr_assert_eq(co, pos, CTX "offset changed on error", CTXA);
				cr_assert_eq(cn, cap, CTX "count changed on error", CTXA);
			} else {
				cr_assert_eq(cn, rn, CTX "call %d at %llu: %u segments, reference %u", CTXA, call,
				             (unsigned long long)pos, cn, rn);
				for (uint32_t i = 0; i < cn; i++) {
					dma_ref_seg s = decode(f, raw, i);
					cr_assert(s.addr == want[i].addr && s.len == want[i].len,
					          CTX "call %d at %llu seg %u: {%llx, %llx}, reference {%llx, %llx}", CTXA, call,
					          (unsigned long long)pos, i, (unsigned long long)s.addr, (unsigned long long)s.len,
					          (unsigned long long)want[i].addr, (unsigned long long)want[i].len);
				}
				cr_assert_eq(co, ro, CTX "call %d: offset %llu, reference %llu", CTXA, call,
				             (unsigned long long)co, (unsigned long long)ro);
			}
			if (cret == kIOReturnOverrun)
				break;
			pos = cret == kIOReturnSuccess ? co : pos;
			/* jump */
			if (cret != kIOReturnSuccess || rr(0, 7) == 0) {
				if (cret != kIOReturnSuccess && rr(0, 1))
					break;
				if ((spx.cursor_mode && !ambiguous) || type == T_ANY_END || iterate)
					pos = rr(0, len);                    /* anywhere, the end included */
				else if (nstarts > 0)
					pos = rr(0, 7) == 0 ? len : starts[rr(0, nstarts - 1)];
				else
					break;
			}
		}
		if (rr(0, 3) == 0) {
			/* past the end: Overrun, values unchanged */
			uint64_t co = len + rr(0, 3);
			uint32_t cn = 4;
			cr_assert_eq(IODMACommand_genIOVMSegments(cmd, &co, raw, &cn), kIOReturnOverrun, CTX "past the end", CTXA);
		}
		if (cursor && !clean)
			stats.cursor_err++;
		else
			stats.exact++;
		/* unbounced: the command shows the client's descriptor */
		if (clean)
			cr_assert_eq(IODMACommand_getIOMemoryDescriptor(cmd), md, CTX "unbounced but getIOMemoryDescriptor is not the client's", CTXA);
	} else {
		/* bounced (reference, or the command's choice when ambiguous):
		 * check coverage, limits, bytes */
		/* sparse unless misaligned; a failed page-list allocation falls
		 * back to the double buffer (reference bounce rule 4) */
		bool sparse = !misaligned && IODMACommand_getIOMemoryDescriptor(cmd) == md;
		dma_ref_seg *all = malloc((size_t)(len + 1) * sizeof *all);   /* segments >= 1 byte */
		uint32_t n = 0;
		uint64_t pos = 0;
		stats.bounced++;
		if (misaligned)
			cr_assert_neq(IODMACommand_getIOMemoryDescriptor(cmd), md, CTX "double buffer expected (misaligned)", CTXA);
		for (;;) {
			uint32_t cap = (uint32_t)rr(1, CALLCAP), cn = cap;
			uint64_t co = pos;
			IOReturn r = IODMACommand_genIOVMSegments(cmd, &co, raw, &cn);
			if (r == kIOReturnOverrun)
				break;
			cr_assert_eq(r, kIOReturnSuccess, CTX "bounced walk at %llu: %x (bits %u maxSeg %llu align %u/%u/%u, %s)",
			             CTXA, (unsigned long long)pos, (unsigned)r, sp.address_bits, (unsigned long long)sp.max_segment,
			             sp.align, sp.align_length, sp.align_internal, sparse ? "sparse" : "double");
			cr_assert(cn >= 1 && cn <= cap);
			uint64_t sum = 0;
			for (uint32_t i = 0; i < cn; i++) {
				all[n] = decode(f, raw, i);
				sum += all[n].len;
				cr_assert(all[n].len >= 1 && sum <= len - pos, CTX "segment past the prepared end", CTXA);
				n++;
			}
			cr_assert_eq(co, pos + sum, CTX "offset does not follow the lengths", CTXA);
			pos = co;
		}
		cr_assert_eq(pos, len, CTX "bounced walk covers %llu of %llu", CTXA, (unsigned long long)pos, (unsigned long long)len);
		pos = 0;
		for (uint32_t i = 0; i < n; i++) {
			dma_ref_seg s = all[i];
			cr_assert(s.len >= 1, CTX "empty segment", CTXA);
			cr_assert(s.addr + s.len - 1 <= max_phys, CTX "segment %u {%llx,%llx} above the %u-bit limit", CTXA, i,
			          (unsigned long long)s.addr, (unsigned long long)s.len, sp.address_bits);
			if (sp.max_segment)
				cr_assert(s.len <= sp.max_segment, CTX "segment %u longer than maxSegment", CTXA, i);
			if (!sparse && (sp.max_segment == 0 || sp.max_segment >= pg)) {
				uint64_t am = (uint64_t)(i == 0 ? sp.align : sp.align_internal) - 1;
				cr_assert((s.addr & am) == 0, CTX "double buffer: segment %u start %llx misaligned", CTXA, i,
				          (unsigned long long)s.addr);
				cr_assert((s.len & lmask) == 0, CTX "double buffer: segment %u length %llx", CTXA, i,
				          (unsigned long long)s.len);
			}
			cr_assert(phys_bytes_equal(s.addr, s.len, mdbytes + off + pos),
			          CTX "segment %u {%llx,%llx} (offset %llu): bytes differ from the descriptor's", CTXA, i,
			          (unsigned long long)s.addr, (unsigned long long)s.len, (unsigned long long)pos);
			if (sparse) {
				/* reachable client bytes are used in place */
				IOByteCount cl = 0;
				addr64_t cpa = IOMemoryDescriptor_getPhysicalSegment(md, off + pos, &cl, kIOMemoryMapperNone);
				if (cpa + s.len - 1 <= max_phys && cl >= s.len)
					cr_assert_eq(s.addr, cpa, CTX "sparse: segment %u at offset %llu bounced although reachable", CTXA,
					             i, (unsigned long long)pos);
				/* (one bounce page per segment: dmacmd_bounce.sparse_one_page_per_segment) */
			}
			pos += s.len;
		}
		free(all);
	}

	/* readBytes through the command: the prepared bytes */
	{
		unsigned char *b = malloc(len + 1);
		uint64_t ro = rr(0, len - 1), rl = rr(1, len - ro + 1);
		uint64_t exp = rl > len - ro ? len - ro : rl;
		cr_assert_eq(IODMACommand_readBytes(cmd, ro, b, rl), exp, CTX "readBytes(%llu, %llu)", CTXA,
		             (unsigned long long)ro, (unsigned long long)rl);
		cr_assert(memcmp(b, mdbytes + off + ro, exp) == 0, CTX "readBytes content", CTXA);
		/* writeBytes, then complete: the descriptor holds the bytes
		 * (copied back when bounced); skipped when two offsets share a
		 * byte (overlapping ranges), where copy-back order decides */
		dma_ref_fill(&rng, b, exp);
		cr_assert_eq(IODMACommand_writeBytes(cmd, ro, b, exp), exp, CTX "writeBytes", CTXA);
		cr_assert_eq(IODMACommand_complete(cmd, true, true), kIOReturnSuccess, CTX "complete", CTXA);
		unsigned char *after = malloc(L);
		cr_assert_eq(IOMemoryDescriptor_readBytes(md, 0, after, L), L);
		if (!aliased(runs, nruns))
			cr_assert(memcmp(after + off + ro, b, exp) == 0,
			          CTX "writeBytes(%llu, %llu) + complete: the bytes are not in the descriptor", CTXA,
			          (unsigned long long)ro, (unsigned long long)exp);
		free(after);
		free(b);
	}
	free(mdbytes);
out:
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess, CTX "clear", CTXA);
	IODMACommand_release(cmd);
	dma_ref_md_release(&m);
}

static void run_cases(int type, int n, const char *name)
{
	const char *s = getenv("IOMEM_TEST_SEED"), *c = getenv("IOMEM_TEST_CASES");
	seed_used = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) * 2654435761u) ^ (uint64_t)clock() ^ (uint64_t)type;
	if (seed_used == 0)
		seed_used = 1;
	if (c)
		n = atoi(c);
	rng.s = seed_used;
	fprintf(stderr, "dmacmd_random %s: seed %llu, %d cases, page %llu (reproduce: IOMEM_TEST_SEED=%llu)\n", name,
	        (unsigned long long)seed_used, n, (unsigned long long)dma_ref_page(), (unsigned long long)seed_used);
	for (case_no = 0; case_no < n; case_no++)
		run_case(type);
	fprintf(stderr, "dmacmd_random %s: %lu exact, %lu cursor errors, %lu bounced, %lu refused prepares, %lu calls\n",
	        name, stats.exact, stats.cursor_err, stats.bounced, stats.refused, stats.calls);
	iomem_test_expect_reports(0);
}

IOMEM_TEST(dmacmd_random, iterate_only)
{
	run_cases(T_ITERATE, 3000, "iterate_only");
	cr_assert_gt(stats.exact, 100);
	cr_assert_gt(stats.cursor_err, 100);
}

IOMEM_TEST(dmacmd_random, unmapped)
{
	run_cases(T_UNMAPPED, 5000, "unmapped");
	cr_assert_gt(stats.exact, 100);
	cr_assert_gt(stats.bounced, 100);
}

/* Address limits below 2^31: the bounce memory may not exist that low.
 * A prepare may then fail (NoResources), but a prepare that succeeds must
 * give segments the device reaches. */
IOMEM_TEST(dmacmd_random, unmapped_low_address_bits)
{
	run_cases(T_LOW_BITS, 800, "unmapped_low_address_bits");
	cr_assert_gt(stats.refused, 10);
}

/* Prepared ends anywhere, not only where a run ends: iomem clips the run
 * at the prepared end before the limits and trims (documented deviation,
 * LEAD 15:36; dma_ref_gen models it by default). */
IOMEM_TEST(dmacmd_random, any_prepared_end)
{
	run_cases(T_ANY_END, 1200, "any_prepared_end");
}

/* 16 KiB pages: the page shift, alignments up to a page and the bounce
 * page granularity all move */
IOMEM_TEST(dmacmd_random, iterate_only_16k_pages)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	run_cases(T_ITERATE, 500, "iterate_only_16k_pages");
	cr_assert_gt(stats.exact, 10);
}

IOMEM_TEST(dmacmd_random, unmapped_16k_pages)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	run_cases(T_UNMAPPED, 500, "unmapped_16k_pages");
	cr_assert_gt(stats.bounced, 10);
}
