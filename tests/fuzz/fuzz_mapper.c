/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_mapper.c - the software IOMMU (iomem_swiommu) through
 * IOMapper's calls, against a model of its page table and IOVA space.
 *
 * The input describes the IOMMU (page size 512 B .. 64 KiB, base, a small
 * space of 16 .. 2048 pages so it fills up, address bits; the factory's
 * NULL domain is checked), two or three physical descriptors (page-aligned
 * pieces, pieces at any offset, pieces that continue the previous one
 * physically) and a sub-range and a multi over them, then a sequence of
 *   iovmMapMemory   any window, read-only or read/write, a specification
 *                   with an IOVA alignment (good and bad) and address bits;
 *   iovmUnmapMemory of a live mapping;
 *   iovaAlloc / iovaFree (IOMapperIOVMAlloc's hooks; bad frees too);
 *   iovmInsert      into an owned IOVA range (same or different page
 *                   offset, read-only, read/write, legacy no-access bits);
 *   translate / mapToPhysicalAddress at any IOVA, read or write;
 *   flush_cache     (the per-thread IOVA cache back to the allocator).
 * The model keeps, per IOVA page, who owns it and its entry (frame, W).
 * Checked: every return code (BadArgument, NoSpace exactly when no aligned
 * fit below the address limit exists, NotAligned exactly when a piece does
 * not tile IOMMU pages, NotReady for an unprepared descriptor), every IOVA
 * (aligned, inside the space, below the limit, disjoint from what is live),
 * the address and length of a mapping, every translation (address,
 * contiguous run, fault reason, the fault record) and the counters (mapped
 * pages, maps, unmaps, faults, free pages after a flush). At the end all
 * is given back: nothing mapped, the whole space free, nothing leaked.
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_map.h"

#define MAXPG 2048u          /* IOVA pages at most */
#define MAXLIVE 32
#define MAXPIECES 24
#define NMD 5
#define RW (kIODMAMapReadAccess | kIODMAMapWriteAccess)

/* ---- the model ---------------------------------------------------------- */

static uint64_t ps, pmask, first, count;    /* the IOMMU */
static unsigned shift, cpu_shift;
static uint16_t owner[MAXPG];               /* 0: free; else a live[] id */
static uint64_t frame[MAXPG];               /* entry: frame | 1 (present) | 2 (W) */
static uint64_t nmapped, nmaps, nunmaps, nfaults;

typedef struct live { uint64_t page, n, addr, len; bool is_map; uint16_t id; } live_t;
static live_t live[MAXLIVE];
static unsigned nlive;
static uint16_t next_id;

typedef struct piece { uint64_t pa, len; } piece;
typedef struct mdm { IOMemoryDescriptor *md; piece p[MAXPIECES]; unsigned np; uint64_t len; } mdm;
static mdm mds[NMD];
static unsigned nmd;

FZ_MODEL static void m_set(uint64_t page, uint64_t fr, bool w)
{
	uint64_t i = page - first;
	if (!(frame[i] & 1))
		nmapped++;
	frame[i] = fr | 1 | (w ? 2 : 0);
}

FZ_MODEL static void m_clear(uint64_t page, uint64_t n)
{
	for (uint64_t i = page - first; i < page - first + n; i++) {
		if (frame[i] & 1)
			nmapped--;
		frame[i] = 0;
		owner[i] = 0;
	}
}

FZ_MODEL static void m_own(uint64_t page, uint64_t n, uint16_t id)
{
	for (uint64_t i = page - first; i < page - first + n; i++) {
		FZ_CHECK(owner[i] == 0, "IOVA page %llx given out while live (owner %u)", (unsigned long long)(first + i),
		         owner[i]);
		FZ_CHECK(frame[i] == 0, "IOVA page %llx given out with an entry", (unsigned long long)(first + i));
		owner[i] = id;
	}
}

/* Whether @n free pages aligned to @align pages (0: 1) end at or below
 * page @limit. O(space). */
FZ_MODEL static bool m_fit(uint64_t n, uint64_t align, uint64_t limit)
{
	uint64_t run = 0;
	/* from the top down: run = free pages from page p upwards */
	for (uint64_t i = count; i-- > 0;) {
		uint64_t p = first + i;
		run = owner[i] ? 0 : run + 1;
		if (run >= n && (align == 0 || p % align == 0) && p + n - 1 <= limit)
			return true;
	}
	return false;
}

FZ_MODEL static uint64_t m_free_pages(void)
{
	uint64_t f = 0;
	for (uint64_t i = 0; i < count; i++)
		f += owner[i] == 0;
	return f;
}

/* translate per the model: 0 success, else the IOReturn; *pa, *cont */
FZ_MODEL static IOReturn m_translate(uint64_t iova, uint64_t len, bool w, uint64_t *pa, uint64_t *cont)
{
	uint64_t page = iova >> shift, need = 1 | (w ? 2 : 0), e, c;
	*pa = 0;
	*cont = 0;
	if (page < first || page - first >= count || !(frame[page - first] & 1))
		return kIOReturnVMError;
	e = frame[page - first];
	if ((e & need) != need)
		return kIOReturnNotWritable;
	*pa = (e & ~pmask) | (iova & pmask);
	c = ps - (iova & pmask);
	while (c < len && page + 1 - first < count) {
		uint64_t f = frame[++page - first];
		if ((f & need) != need || (f & ~pmask) != (e & ~pmask) + ps)
			break;
		e = f;
		c += ps;
	}
	*cont = c < len ? c : len;
	return kIOReturnSuccess;
}

/* The pieces of [off, off + len) of descriptor @d. */
FZ_MODEL static unsigned m_window(const mdm *d, uint64_t off, uint64_t len, piece *out)
{
	uint64_t pos = 0;
	unsigned n = 0;
	for (unsigned i = 0; i < d->np && len > 0; i++) {
		uint64_t s = pos, e = pos + d->p[i].len, a, b;
		pos = e;
		if (e <= off || s >= off + len)
			continue;
		a = off > s ? off : s;
		b = off + len < e ? off + len : e;
		out[n].pa = d->p[i].pa + (a - s);
		out[n].len = b - a;
		n++;
	}
	return n;
}

/* ---- checks ------------------------------------------------------------- */

static void check_stats(IOMapper *m, bool flushed, unsigned step)
{
	iomem_swiommu_stats st;
	FZ_CHECK(iomem_swiommu_get_stats(m, &st) == kIOReturnSuccess, "get_stats");
	FZ_CHECK(st.mapped_pages == nmapped && st.maps == nmaps && st.unmaps == nunmaps && st.faults == nfaults,
	         "step %u: mapped %llu maps %llu unmaps %llu faults %llu, model %llu %llu %llu %llu", step,
	         (unsigned long long)st.mapped_pages, (unsigned long long)st.maps, (unsigned long long)st.unmaps,
	         (unsigned long long)st.faults, (unsigned long long)nmapped, (unsigned long long)nmaps,
	         (unsigned long long)nunmaps, (unsigned long long)nfaults);
	if (flushed)
		FZ_CHECK(st.iova_free_pages == m_free_pages(), "step %u: %llu free pages, model %llu", step,
		         (unsigned long long)st.iova_free_pages, (unsigned long long)m_free_pages());
}

static void check_translate(IOMapper *m, uint64_t iova, uint64_t len, bool w, unsigned step)
{
	IOPhysicalAddress pa = 1;
	uint64_t cont = 1, wpa, wcont;
	IOReturn r = iomem_swiommu_translate(m, iova, len, w, &pa, &cont), want = m_translate(iova, len, w, &wpa, &wcont);
	FZ_CHECK(r == want && pa == wpa && cont == wcont,
	         "step %u: translate(%llx, %llu, %d) = %#x pa %llx cont %llu, model %#x %llx %llu", step,
	         (unsigned long long)iova, (unsigned long long)len, w, (unsigned)r, (unsigned long long)pa,
	         (unsigned long long)cont, (unsigned)want, (unsigned long long)wpa, (unsigned long long)wcont);
	if (r != kIOReturnSuccess) {
		iomem_swiommu_fault fl;
		nfaults++;
		FZ_CHECK(iomem_swiommu_faults(m, &fl) == nfaults, "step %u: fault count", step);
		FZ_CHECK(fl.iova == iova && fl.write == w &&
		         fl.reason == (r == kIOReturnVMError ? IOMEM_SWIOMMU_FAULT_UNMAPPED : IOMEM_SWIOMMU_FAULT_READONLY),
		         "step %u: fault record {%llx, %d, %d}", step, (unsigned long long)fl.iova, fl.write, fl.reason);
	}
	{
		uint64_t want_cpu = 0, e, page = iova >> shift;
		if (page >= first && page - first < count && ((e = frame[page - first]) & 1))
			want_cpu = (e & ~pmask) | (iova & pmask);
		FZ_CHECK(IOMapper_mapToPhysicalAddress(m, iova) == want_cpu, "step %u: mapToPhysicalAddress(%llx) = %llx, model %llx",
		         step, (unsigned long long)iova, (unsigned long long)IOMapper_mapToPhysicalAddress(m, iova),
		         (unsigned long long)want_cpu);
	}
}

/* An IOVA somewhere interesting: inside a live range, at its edges, just
 * outside the space, or anywhere. */
static uint64_t f_iova(fz *f)
{
	uint8_t how = fz_u8(f);
	if (nlive > 0 && (how & 3) != 0) {
		const live_t *l = &live[fz_u8(f) % nlive];
		uint64_t span = l->n << shift;
		return (l->page << shift) + (fz_u32(f) % (span + ps)) - ((how & 4) ? ps / 2 : 0);
	}
	switch (how % 4) {
	case 0:  return ((first + count) << shift) + fz_u16(f);
	case 1:  return (first << shift) - 1 - fz_u8(f) % ps;
	default: return (first << shift) + fz_u32(f) % (count << shift);
	}
}

/* ---- descriptors -------------------------------------------------------- */

static bool f_physical(fz *f, mdm *d)
{
	IOAddressRange r[8];
	unsigned n = 1 + fz_u8(f) % 8;
	for (unsigned i = 0; i < n; i++) {
		uint8_t how = fz_u8(f);
		uint64_t a, l;
		if (i > 0 && (how & 3) == 0)
			a = r[i - 1].address + r[i - 1].length;            /* continues the previous */
		else
			a = ((uint64_t)(1 + fz_u16(f)) << 16) + ((how & 4) ? fz_u16(f) : 0);
		switch ((how >> 3) % 4) {
		case 0:  l = (uint64_t)(1 + fz_u8(f) % 8) << 12; break;   /* CPU pages */
		case 1:  l = 1 + fz_u16(f); break;
		case 2:  l = 0; break;
		default: l = (uint64_t)(1 + fz_u8(f) % 64) << 9; break;
		}
		r[i].address = a;
		r[i].length = l;
	}
	d->md = IOMemoryDescriptor_withAddressRanges(r, n, kIODirectionInOut, NULL);
	FZ_CHECK(d->md != NULL, "physical withAddressRanges");
	d->np = 0;
	d->len = 0;
	for (unsigned i = 0; i < n; i++) {
		if (r[i].length == 0)
			continue;
		d->p[d->np].pa = r[i].address;
		d->p[d->np].len = r[i].length;
		d->np++;
		d->len += r[i].length;
	}
	if (d->len == 0) {
		IOMemoryDescriptor_release(d->md);
		return false;
	}
	return true;
}

/* ---- the operations ----------------------------------------------------- */

static void op_map(IOMapper *m, fz *f, unsigned step)
{
	static piece pc[MAXPIECES * 2];
	const mdm *d;
	uint8_t how = fz_u8(f);
	uint64_t off, len, addr = 0, maplen = 0, n, off0, align = 0, limit, at;
	unsigned np, bits = 0;
	uint32_t opts = (how & 1) ? RW : kIODMAMapReadAccess;
	IODMAMapSpecification spec;
	IOReturn r, want = kIOReturnSuccess;
	if (nmd == 0 || nlive == MAXLIVE)
		return;
	d = &mds[fz_u8(f) % nmd];
	off = fz_u32(f) % d->len;
	len = 1 + fz_u32(f) % (d->len - off);
	memset(&spec, 0, sizeof spec);
	if (how & 2) {
		switch (fz_u8(f) % 4) {
		case 0:  spec.alignment = (uint64_t)1 << fz_u8(f) % 20; break;
		case 1:  spec.alignment = ps * 3; break;                      /* not a power of two */
		default: spec.alignment = 0; break;
		}
		bits = (fz_u8(f) & 1) ? 20 + fz_u8(f) % 20 : 0;
		spec.numAddressBits = (uint8_t)bits;
	}
	if ((how & 0x1c) == 0x1c) {          /* out of the descriptor */
		r = IOMapper_iovmMapMemory(m, d->md, off, d->len - off + 1 + fz_u8(f), opts, NULL, NULL, NULL, &addr, &maplen);
		FZ_CHECK(r == kIOReturnBadArgument, "step %u: map past the end: %#x", step, (unsigned)r);
		return;
	}
	np = m_window(d, off, len, pc);
	off0 = pc[0].pa & pmask;
	n = (off0 + len + pmask) >> shift;
	limit = first + count - 1;
	if (bits != 0) {
		uint64_t top = ((uint64_t)1 << bits) >> shift;
		limit = top == 0 ? 0 : (top - 1 < limit ? top - 1 : limit);
	}
	if (spec.alignment > ps) {
		if (spec.alignment & (spec.alignment - 1))
			want = kIOReturnBadArgument;
		else
			align = spec.alignment >> shift;
	}
	if (want == kIOReturnSuccess && (n > count || !m_fit(n, align, limit)))
		want = kIOReturnNoSpace;
	if (want == kIOReturnSuccess) {
		uint64_t prev_end = pc[0].pa;
		at = off0;
		for (unsigned i = 0; i < np; i++) {
			if (((pc[i].pa ^ at) & pmask) != 0 || ((at & pmask) != 0 && pc[i].pa != prev_end)) {
				want = kIOReturnNotAligned;
				break;
			}
			prev_end = pc[i].pa + pc[i].len;
			at += pc[i].len;
		}
	}
	r = IOMapper_iovmMapMemory(m, d->md, off, len, opts, (how & 2) ? &spec : NULL, NULL, NULL, &addr, &maplen);
	FZ_CHECK(r == want, "step %u: iovmMapMemory([%llu +%llu] of %llu, %u pages, align %llu, bits %u) = %#x, model %#x",
	         step, (unsigned long long)off, (unsigned long long)len, (unsigned long long)d->len,
	         (unsigned)n, (unsigned long long)spec.alignment, bits, (unsigned)r, (unsigned)want);
	if (r != kIOReturnSuccess)
		return;
	{
		uint64_t page = addr >> shift;
		FZ_CHECK((addr & pmask) == off0 && maplen == n << shift, "step %u: map at %llx + %llx (offset %llx, %llu pages)",
		         step, (unsigned long long)addr, (unsigned long long)maplen, (unsigned long long)off0,
		         (unsigned long long)n);
		FZ_CHECK(page >= first && page - first + n <= count && page + n - 1 <= limit && (align == 0 || page % align == 0),
		         "step %u: IOVA page %llx (+%llu) outside [%llx, limit %llx] or not aligned to %llu", step,
		         (unsigned long long)page, (unsigned long long)n, (unsigned long long)first, (unsigned long long)limit,
		         (unsigned long long)align);
		live[nlive].page = page;
		live[nlive].n = n;
		live[nlive].addr = addr;
		live[nlive].len = maplen;
		live[nlive].is_map = true;
		live[nlive].id = ++next_id ? next_id : ++next_id;
		m_own(page, n, live[nlive].id);
		at = off0;
		for (unsigned i = 0; i < np; i++) {
			for (uint64_t j = at >> shift; j <= (at + pc[i].len - 1) >> shift; j++)
				m_set(page + j, pc[i].pa - at + (j << shift), (opts & kIODMAMapWriteAccess) != 0);
			at += pc[i].len;
		}
		nlive++;
		nmaps++;
	}
}

static void op_unmap_or_free(IOMapper *m, fz *f, unsigned step)
{
	unsigned i;
	live_t l;
	if (nlive == 0)
		return;
	i = fz_u8(f) % nlive;
	l = live[i];
	if (l.is_map) {
		IOReturn r = IOMapper_iovmUnmapMemory(m, NULL, NULL, l.addr, l.len);
		FZ_CHECK(r == kIOReturnSuccess, "step %u: unmap: %#x", step, (unsigned)r);
		nunmaps++;
	} else {
		m->ops->iovaFree(m, l.page << shift, l.n);
	}
	m_clear(l.page, l.n);
	live[i] = live[--nlive];
}

static void op_iova_alloc(IOMapper *m, fz *f, unsigned step)
{
	uint64_t pages = fz_u8(f) % 4 == 0 ? 1 + fz_u16(f) % 600 : 1 + fz_u8(f) % 9, iova = 0, align = 0;
	IOReturn r, want;
	if (nlive == MAXLIVE)
		return;
	if (cpu_shift > shift)
		align = (uint64_t)1 << (cpu_shift - shift);
	want = pages <= count && m_fit(pages, align, first + count - 1) ? kIOReturnSuccess : kIOReturnNoSpace;
	r = m->ops->iovaAlloc(m, pages, RW, &iova);
	FZ_CHECK(r == want, "step %u: iovaAlloc(%llu) = %#x, model %#x", step, (unsigned long long)pages, (unsigned)r,
	         (unsigned)want);
	if (r != kIOReturnSuccess)
		return;
	FZ_CHECK((iova & pmask) == 0 && (align == 0 || (iova >> shift) % align == 0), "step %u: iova %llx misaligned", step,
	         (unsigned long long)iova);
	FZ_CHECK((iova >> shift) >= first && (iova >> shift) - first + pages <= count, "step %u: iova %llx outside", step,
	         (unsigned long long)iova);
	live[nlive].page = iova >> shift;
	live[nlive].n = pages;
	live[nlive].is_map = false;
	live[nlive].id = ++next_id ? next_id : ++next_id;
	m_own(iova >> shift, pages, live[nlive].id);
	nlive++;
}

static void op_insert(IOMapper *m, fz *f, unsigned step)
{
	const live_t *l;
	uint64_t o, len, iova, pa, npg, fr;
	uint32_t opts;
	bool w;
	IOReturn r, want = kIOReturnSuccess;
	unsigned k = 0;
	for (unsigned t = 0; t < nlive; t++)
		k += !live[t].is_map;
	if (k == 0)
		return;
	k = fz_u8(f) % k;
	for (l = live; l->is_map || k-- != 0; l++)
		;
	o = fz_u32(f) % (l->n << shift);
	len = 1 + fz_u32(f) % ((l->n << shift) - o);
	iova = (l->page << shift) + o;
	pa = ((uint64_t)(1 + fz_u16(f)) << 20) + (iova & pmask);
	if (fz_u8(f) % 8 == 0)
		pa += 1 + fz_u8(f) % (ps - 1);               /* another page offset */
	switch (fz_u8(f) % 4) {
	case 0:  opts = kIODMAMapReadAccess; break;
	case 1:  opts = 0; break;                    /* legacy: read/write */
	default: opts = RW; break;
	}
	w = (opts & kIODMAMapWriteAccess) || !(opts & kIODMAMapReadAccess);
	if ((iova ^ pa) & pmask)
		want = kIOReturnNotAligned;
	r = IOMapper_iovmInsert(m, opts, l->page << shift, o, pa, len);
	FZ_CHECK(r == want, "step %u: iovmInsert(%llx + %llx, pa %llx, %llu) = %#x, model %#x", step,
	         (unsigned long long)(l->page << shift), (unsigned long long)o, (unsigned long long)pa,
	         (unsigned long long)len, (unsigned)r, (unsigned)want);
	if (r != kIOReturnSuccess)
		return;
	npg = ((iova & pmask) + len + pmask) >> shift;
	fr = pa & ~pmask;
	for (uint64_t j = 0; j < npg; j++)
		m_set((iova >> shift) + j, fr + (j << shift), w);
}

static void op_bad(IOMapper *m, fz *f, unsigned step)
{
	uint64_t a = 0, b = 0;
	IOReturn r;
	switch (fz_u8(f) % 6) {
	case 0:   /* iovaFree outside the space / misaligned: reported, nothing changes */
		m->ops->iovaFree(m, (fz_u8(f) & 1) ? ((first + count) << shift) : (first << shift) + 1 + fz_u8(f) % (ps - 1),
		                 1 + fz_u8(f) % 4);
		FZ_CHECK(fz_panic_count == 1 && strstr(fz_panic_msg, "iovaFree"), "step %u: bad iovaFree: %u report(s)", step,
		         fz_panic_count);
		fz_panic_count = 0;
		break;
	case 1:   /* insert outside the space */
		r = IOMapper_iovmInsert(m, RW, (first + count) << shift, fz_u16(f) & ~pmask, ps, 1 + fz_u16(f));
		FZ_CHECK(r == kIOReturnBadArgument, "step %u: insert outside: %#x", step, (unsigned)r);
		break;
	case 2:   /* unmap outside the space */
		r = IOMapper_iovmUnmapMemory(m, NULL, NULL, (first + count) << shift, ps);
		FZ_CHECK(r == kIOReturnBadArgument, "step %u: unmap outside: %#x", step, (unsigned)r);
		break;
	case 3:
		r = IOMapper_iovmUnmapMemory(m, NULL, NULL, first << shift, 0);
		FZ_CHECK(r == kIOReturnBadArgument, "step %u: unmap of length 0: %#x", step, (unsigned)r);
		r = IOMapper_iovmInsert(m, RW, first << shift, 0, 0, 0);
		FZ_CHECK(r == kIOReturnBadArgument, "step %u: insert of length 0: %#x", step, (unsigned)r);
		break;
	case 4:
		FZ_CHECK(m->ops->iovaAlloc(m, 0, RW, &a) == kIOReturnBadArgument, "step %u: iovaAlloc(0)", step);
		FZ_CHECK(iomem_swiommu_translate(m, first << shift, 0, false, &a, &b) == kIOReturnBadArgument,
		         "step %u: translate of length 0", step);
		FZ_CHECK(iomem_swiommu_translate(m, first << shift, 1, false, NULL, &b) == kIOReturnBadArgument,
		         "step %u: translate to NULL", step);
		break;
	default:
		if (nmd > 0) {
			r = IOMapper_iovmMapMemory(m, mds[0].md, 0, 0, RW, NULL, NULL, NULL, &a, &b);
			FZ_CHECK(r == kIOReturnBadArgument, "step %u: map of length 0: %#x", step, (unsigned)r);
			r = IOMapper_iovmMapMemory(m, mds[0].md, 0, 1, RW, NULL, NULL, NULL, NULL, &b);
			FZ_CHECK(r == kIOReturnBadArgument, "step %u: map to NULL: %#x", step, (unsigned)r);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz f = { data, size };
	iomem_swiommu_desc desc;
	IOMapper *m;
	uint64_t top_pages, base_pages;
	bool want_ok;
	unsigned step = 0, bits;

	fz_panic_count = 0;
	/* ---- the IOMMU ---- */
	memset(&desc, 0, sizeof desc);
	shift = 9 + fz_u8(&f) % 8;                   /* 512 B .. 64 KiB */
	desc.page_size = (fz_u8(&f) % 8 == 0) ? 0 : (uint64_t)1 << shift;
	if (desc.page_size == 0)
		shift = iomem__page_shift();
	ps = (uint64_t)1 << shift;
	pmask = ps - 1;
	cpu_shift = iomem__page_shift();
	count = 16 + fz_u16(&f) % (MAXPG - 15);
	bits = (fz_u8(&f) & 3) == 0 ? 0 : 20 + fz_u8(&f) % 24;
	desc.address_bits = (uint8_t)bits;
	if (bits == 0)
		bits = 32;
	base_pages = (fz_u8(&f) & 1) ? fz_u16(&f) : 0;
	desc.iova_base = base_pages << shift;
	desc.iova_size = count << shift;
	if (fz_u8(&f) % 16 == 0)                     /* not a page multiple: refused */
		desc.iova_size += 1 + fz_u8(&f) % (ps - 1);
	first = base_pages ? base_pages : 1;
	top_pages = bits - shift >= 64 ? ~(uint64_t)0 : (uint64_t)1 << (bits - shift);
	want_ok = bits >= 20 && bits <= 64 && first < top_pages && (desc.iova_size & pmask) == 0 &&
	          count <= top_pages - first;
	m = iomem_swiommu_create(&desc);
	FZ_CHECK((m != NULL) == want_ok, "swiommu_create(page %llu, base %llx, size %llx, bits %u): %p",
	         (unsigned long long)desc.page_size, (unsigned long long)desc.iova_base,
	         (unsigned long long)desc.iova_size, desc.address_bits, (void *)m);
	if (m == NULL)
		goto out;
	FZ_CHECK(iomem_swiommu_is(m) && IOMapper_getPageSize(m) == ps, "page size");

	memset(owner, 0, sizeof owner);
	memset(frame, 0, sizeof frame);
	nmapped = nmaps = nunmaps = nfaults = 0;
	nlive = 0;
	next_id = 0;

	/* ---- descriptors: 2-3 physical, a sub, a multi ---- */
	nmd = 0;
	for (unsigned k = 2 + fz_u8(&f) % 2; k-- > 0;)
		if (f_physical(&f, &mds[nmd]))
			nmd++;
	if (nmd > 0) {
		mdm *p = &mds[0], *d = &mds[nmd];
		uint64_t off = fz_u32(&f) % p->len, len = 1 + fz_u32(&f) % (p->len - off);
		d->md = IOSubMemoryDescriptor_withSubRange(p->md, off, len, kIODirectionInOut);
		FZ_CHECK(d->md != NULL, "sub");
		d->np = m_window(p, off, len, d->p);
		d->len = len;
		nmd++;
	}
	if (nmd >= 2) {
		mdm *a = &mds[fz_u8(&f) % nmd], *b = &mds[fz_u8(&f) % nmd], *d = &mds[nmd];
		IOMemoryDescriptor *kids[2] = { a->md, b->md };
		d->md = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
		FZ_CHECK(d->md != NULL, "multi");
		d->np = 0;
		for (unsigned i = 0; i < a->np; i++)
			d->p[d->np++] = a->p[i];
		for (unsigned i = 0; i < b->np; i++)
			d->p[d->np++] = b->p[i];
		d->len = a->len + b->len;
		nmd++;
	}
	/* an unprepared virtual descriptor: not ready (reported) */
	if (fz_u8(&f) % 8 == 0) {
		static unsigned char buf[8192];
		IOMemoryDescriptor *v = IOMemoryDescriptor_withAddressRange((uintptr_t)(buf + 100), 5000, kIODirectionInOut,
		                                                            kernel_task);   /* not auto-prepared */
		uint64_t a = 0, l = 0;
		IOReturn r;
		FZ_CHECK(v != NULL, "withAddressRange");
		r = IOMapper_iovmMapMemory(m, v, 0, 5000, RW, NULL, NULL, NULL, &a, &l);
		FZ_CHECK(r == kIOReturnNotReady, "unprepared descriptor: %#x", (unsigned)r);
		FZ_CHECK(fz_panic_count >= 1 && strstr(fz_panic_msg, "prepare"), "unprepared descriptor not reported: %s",
		         fz_panic_msg);
		fz_panic_count = 0;
		IOMemoryDescriptor_release(v);
	}

	/* ---- the program ---- */
	while (fz_more(&f) && step < 96) {
		uint8_t op = fz_u8(&f);
		bool flushed = false;
		step++;
		switch (op % 10) {
		case 0: case 1: op_map(m, &f, step); break;
		case 2:         op_unmap_or_free(m, &f, step); break;
		case 3:         op_iova_alloc(m, &f, step); break;
		case 4: case 5: op_insert(m, &f, step); break;
		case 6: case 7: {
			uint64_t iova = f_iova(&f), len = (fz_u8(&f) & 1) ? 1 + fz_u8(&f) : 1 + fz_u32(&f) % (64 * ps);
			check_translate(m, iova, len, (op & 16) != 0, step);
			break;
		}
		case 8:
			iomem_swiommu_flush_cache(m);
			flushed = true;
			break;
		default:
			op_bad(m, &f, step);
			break;
		}
		FZ_NO_REPORTS();
		check_stats(m, flushed, step);
	}

	/* ---- give everything back ---- */
	while (nlive > 0) {
		uint8_t one = 0;
		fz g = { &one, 1 };
		op_unmap_or_free(m, &g, step);
	}
	iomem_swiommu_flush_cache(m);
	check_stats(m, true, step);
	{
		/* inserted pages outside any live range stay mapped until the
		 * IOMMU goes: none here (inserts only go into owned ranges) */
		iomem_swiommu_stats st;
		iomem_swiommu_get_stats(m, &st);
		FZ_CHECK(st.mapped_pages == 0 && st.iova_free_pages == count, "%llu pages mapped, %llu of %llu free at the end",
		         (unsigned long long)st.mapped_pages, (unsigned long long)st.iova_free_pages,
		         (unsigned long long)count);
	}
	IOMapper_release(m);
	while (nmd > 0)
		IOMemoryDescriptor_release(mds[--nmd].md);
out:
	FZ_NO_REPORTS();
	FZ_CHECK(iomem_leak_report(NULL, NULL) == 0, "leak");
	return 0;
}
