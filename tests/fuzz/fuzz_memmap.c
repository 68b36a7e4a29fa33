/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_memmap.c - IOMemoryMap (createMappingInTask on POSIX: a
 * real second mapping of the memfd pages) against a model of the live maps
 * and the bytes.
 *
 * Once per process: two buffers (memfd RAM). Per input: their contents, a
 * sub-range of the first (any offset and length) and a multi of that
 * sub-range and the second buffer (its junction on a page boundary or
 * not), then up to 24 operations on the three descriptors (buffer, sub,
 * multi):
 *   map        any offset and length (length 0: the whole; bad ranges too),
 *              read-only or not, kIOMapUnique or not, kIOMapReference;
 *   write      through a live map (read/write maps), or through the
 *              descriptor (writeBytes);
 *   unmap      a unique map (never a super-map: sub-maps of an unmapped
 *              map dangle, as in IOKit), then its address is 0;
 *   release    any map.
 * The model predicts each map request: kIOReturnBadArgument for a range
 * outside the descriptor; kIOReturnNotAligned when the range spans the
 * multi's junction and the first piece does not end on a page (a new
 * mapping only); for a shared (not unique) request, the newest live
 * compatible map (same descriptor, same read-only bit, not unique, still
 * mapped) that contains the range: that object when the range is the
 * same, else a new sub-map at its address that keeps it alive (so a map
 * the program released may live on and be reused); else a new mapping;
 * kIOReturnNotFound for kIOMapReference when nothing fits; unique: a new
 * object. Every live map's bytes equal the descriptor's
 * (readBytes), after every write, either way (so the aliasing is real).
 * At the end everything is released: no leak, no report.
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_map.h"

#define MAXMAPS 24

static IOBufferMemoryDescriptor *bufA, *bufB;
static unsigned char *memA, *memB;
static IOByteCount pg, capA, capB;
static unsigned baseline_blocks;

/* A live map object: the program's references (prog) and its sub-maps
 * (which retain it: a map the program released lives on, and is found
 * for reuse, while a sub-map of it lives). */
typedef struct mm {
	IOMemoryMap *map;
	int md;                    /* 0 buffer A, 1 sub, 2 multi */
	IOByteCount off, len;
	bool ro, unique, unmapped;
	int parent;                /* index of the super-map, -1: none */
	unsigned seq;              /* creation order: the descriptor's list is newest first */
	unsigned prog;             /* references the program holds */
} mm;
static mm maps[MAXMAPS];
static unsigned nmaps;
static unsigned next_seq;
static IOMemoryDescriptor *mds[3];
static IOByteCount mdlen[3];
static IOByteCount sub_off, sub_len;     /* the sub-range of A */

static void count_block(void *ctx, const void *a, vm_size_t sz, iomem_alloc_family f, const char *call)
{
	(void)a; (void)sz; (void)f; (void)call;
	++*(unsigned *)ctx;
}

static unsigned live_blocks(void)
{
	unsigned n = 0;
	iomem_leak_report(count_block, &n);
	return n;
}

static void setup(void)
{
	pg = (IOByteCount)iomem__platform_page_size();
	capA = 6 * pg;
	capB = 3 * pg;
	bufA = IOBufferMemoryDescriptor_withCapacity(capA, kIODirectionInOut, false);
	bufB = IOBufferMemoryDescriptor_withCapacity(capB, kIODirectionInOut, false);
	FZ_CHECK(bufA != NULL && bufB != NULL, "buffers");
	memA = IOBufferMemoryDescriptor_getBytesNoCopy(bufA);
	memB = IOBufferMemoryDescriptor_getBytesNoCopy(bufB);
	baseline_blocks = live_blocks();
}

static uint8_t *va(const mm *m)
{
	return (uint8_t *)(uintptr_t)IOMemoryMap_getVirtualAddress(m->map);
}

/* Every mapped map shows the descriptor's bytes. */
static void check_all(unsigned step)
{
	static unsigned char tmp[16 * 16384];
	for (unsigned i = 0; i < nmaps; i++) {
		const mm *m = &maps[i];
		if (m->unmapped)
			continue;    /* (a sub-map of a unique map never exists: unique maps are not shared) */
		FZ_CHECK(IOMemoryDescriptor_readBytes(mds[m->md], m->off, tmp, m->len) == m->len, "step %u: readBytes", step);
		FZ_CHECK(memcmp(va(m), tmp, m->len) == 0, "step %u: map %u (md %d [%llu +%llu]) differs from its descriptor",
		         step, i, m->md, (unsigned long long)m->off, (unsigned long long)m->len);
	}
}

static bool compatible(const mm *m, int md, bool ro)
{
	return m->md == md && m->ro == ro && !m->unique && !m->unmapped;
}

static void op_map(fz *f, unsigned step)
{
	int md = fz_u8(f) % 3;
	uint8_t how = fz_u8(f);
	IOByteCount L = mdlen[md], off, len, eoff, elen;
	bool ro = how & 1, unique = (how & 2) != 0, ref = !unique && (how & 0x1c) == 0x1c;
	IOOptionBits opts = kIOMapAnywhere | (ro ? kIOMapReadOnly : 0) | (unique ? kIOMapUnique : 0) |
	                    (ref ? kIOMapReference : 0);
	IOMemoryMap *map = (IOMemoryMap *)1;
	IOReturn r, want = kIOReturnSuccess;
	int first = -1;            /* the live map the library reuses, -1: none */
	if (nmaps == MAXMAPS)
		return;
	switch (fz_u8(f) % 4) {
	case 0:  off = 0; len = 0; break;                       /* the whole */
	case 1:  off = fz_u16(f) % (L + 2); len = fz_u16(f) % (L + 2); break;   /* bad ones too */
	default: off = fz_u16(f) % L; len = 1 + fz_u16(f) % (L - off); break;
	}
	eoff = off;
	elen = len ? len : L - (off <= L ? off : L);
	if (off > L || (len == 0 && off != 0) || elen > L - off || elen == 0)
		want = kIOReturnBadArgument;
	/* reuse (not unique): the first compatible live map in the descriptor's
	 * list (newest first, as the library links them) that contains the
	 * range: the same object when its range is the same, else a new
	 * sub-map at its address, retaining it */
	if (want == kIOReturnSuccess && !unique) {
		for (unsigned i = 0; i < nmaps; i++)
			if (compatible(&maps[i], md, ro) && eoff >= maps[i].off && eoff + elen <= maps[i].off + maps[i].len &&
			    (first < 0 || maps[i].seq > maps[first].seq))
				first = (int)i;
		if (ref && first < 0)
			want = kIOReturnNotFound;
	}
	/* a new mapping (reuse maps nothing): the multi's first piece must end
	 * on a page when the range spans both */
	if (want == kIOReturnSuccess && first < 0 && md == 2 && eoff < sub_len && eoff + elen > sub_len &&
	    ((sub_off + sub_len) & (pg - 1)) != 0)
		want = kIOReturnNotAligned;
	r = iomem_md_createMappingInTask(mds[md], kernel_task, 0, opts, off, len, &map);
	FZ_CHECK(r == want, "step %u: map(md %d, [%llu +%llu] of %llu, options %#x) = %#x, model %#x", step, md,
	         (unsigned long long)off, (unsigned long long)len, (unsigned long long)L, opts, (unsigned)r,
	         (unsigned)want);
	if (r != kIOReturnSuccess) {
		FZ_CHECK(map == NULL, "step %u: a failed map left %p", step, (void *)map);
		return;
	}
	FZ_CHECK(IOMemoryMap_getLength(map) == elen && IOMemoryMap_GetOffset(map) == eoff &&
	         IOMemoryMap_getMemoryDescriptor(map) == mds[md] && IOMemoryMap_getAddressTask(map) == kernel_task,
	         "step %u: map of [%llu +%llu]: length %llu offset %llu", step, (unsigned long long)eoff,
	         (unsigned long long)elen, (unsigned long long)IOMemoryMap_getLength(map),
	         (unsigned long long)IOMemoryMap_GetOffset(map));
	if (first >= 0 && maps[first].off == eoff && maps[first].len == elen) {
		FZ_CHECK(map == maps[first].map, "step %u: %p, not the live map %p of that range", step, (void *)map,
		         (void *)maps[first].map);
		maps[first].prog++;
		return;
	}
	for (unsigned i = 0; i < nmaps; i++)
		FZ_CHECK(maps[i].map != map, "step %u: live map %u returned for a new mapping", step, i);
	if (first >= 0)
		FZ_CHECK((uintptr_t)IOMemoryMap_getVirtualAddress(map) ==
		         (uintptr_t)IOMemoryMap_getVirtualAddress(maps[first].map) + (eoff - maps[first].off),
		         "step %u: a sub-map not at its super-map's address", step);
	maps[nmaps].map = map;
	maps[nmaps].md = md;
	maps[nmaps].off = eoff;
	maps[nmaps].len = elen;
	maps[nmaps].ro = ro;
	maps[nmaps].unique = unique;
	maps[nmaps].unmapped = false;
	maps[nmaps].parent = first;
	maps[nmaps].seq = ++next_seq;
	maps[nmaps].prog = 1;
	nmaps++;
}

/* Removes map objects nobody holds (no program reference, no live
 * sub-map), then their super-maps the same way. */
FZ_MODEL static void m_collect(void)
{
	bool again = true;
	while (again) {
		again = false;
		for (unsigned i = 0; i < nmaps; i++) {
			bool held = maps[i].prog > 0;
			for (unsigned k = 0; k < nmaps && !held; k++)
				held = maps[k].parent == (int)i;
			if (held)
				continue;
			/* remove i: move the last one into its slot (fix parents) */
			nmaps--;
			for (unsigned k = 0; k < nmaps + 1; k++)
				if (maps[k].parent == (int)nmaps)
					maps[k].parent = (int)i;
			maps[i] = maps[nmaps];
			again = true;
			break;
		}
	}
}

static void op_write(fz *f, unsigned step)
{
	static unsigned char pat[4096];
	uint8_t how = fz_u8(f);
	unsigned char v = fz_u8(f);
	if ((how & 1) && nmaps > 0) {                  /* through a map */
		mm *m = &maps[fz_u8(f) % nmaps];
		IOByteCount o, l;
		if (m->unmapped || m->ro)
			return;
		o = fz_u16(f) % m->len;
		l = 1 + fz_u16(f) % (m->len - o);
		memset(va(m) + o, v, l);
	} else {                                       /* through a descriptor */
		int md = fz_u8(f) % 3;
		IOByteCount o = fz_u16(f) % mdlen[md], l = 1 + fz_u16(f) % (mdlen[md] - o);
		if (l > sizeof pat)
			l = sizeof pat;
		memset(pat, v, l);
		FZ_CHECK(IOMemoryDescriptor_writeBytes(mds[md], o, pat, l) == l, "step %u: writeBytes", step);
	}
}

static void op_unmap(fz *f, unsigned step)
{
	mm *m;
	if (nmaps == 0)
		return;
	m = &maps[fz_u8(f) % nmaps];
	if (!m->unique || m->prog == 0)
		return;                /* could be a super-map: its sub-maps would dangle */
	FZ_CHECK(IOMemoryMap_unmap(m->map) == kIOReturnSuccess, "step %u: unmap", step);
	FZ_CHECK(IOMemoryMap_getAddress(m->map) == 0, "step %u: unmapped map has an address", step);
	FZ_CHECK(IOMemoryMap_unmap(m->map) == kIOReturnSuccess, "step %u: unmap again", step);
	m->unmapped = true;
}

static void op_release(fz *f)
{
	unsigned i, k = 0, pick;
	for (i = 0; i < nmaps; i++)
		k += maps[i].prog;
	if (k == 0)
		return;
	pick = fz_u8(f) % k;
	for (i = 0; pick >= maps[i].prog; i++)
		pick -= maps[i].prog;
	IOMemoryMap_release(maps[i].map);
	maps[i].prog--;
	m_collect();
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t x = harness_xorshift64(&s);
		memcpy(p + i, &x, 8);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	fz f = { data, size };
	unsigned step = 0;
	IOMemoryDescriptor *kids[2];

	if (!ready) {
		setup();
		ready = true;
	}
	fz_panic_count = 0;
	fill(memA, capA, fz_u64(&f));
	fill(memB, capB, fz_u64(&f));
	if (fz_u8(&f) & 1) {                              /* the junction on a page */
		sub_off = (fz_u8(&f) % 5) * pg;
		sub_len = (1 + fz_u8(&f) % (6 - sub_off / pg)) * pg;
	} else {
		sub_off = fz_u16(&f) % capA;
		sub_len = 1 + fz_u16(&f) % (capA - sub_off);
	}
	mds[0] = bufA;
	mdlen[0] = capA;
	mds[1] = IOSubMemoryDescriptor_withSubRange(bufA, sub_off, sub_len, kIODirectionInOut);
	mdlen[1] = sub_len;
	kids[0] = mds[1];
	kids[1] = bufB;
	mds[2] = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
	mdlen[2] = sub_len + capB;
	FZ_CHECK(mds[1] != NULL && mds[2] != NULL, "sub/multi");
	nmaps = 0;

	while (fz_more(&f) && step < 24) {
		uint8_t op = fz_u8(&f);
		step++;
		switch (op % 8) {
		case 0: case 1: case 2: op_map(&f, step); break;
		case 3: case 4:         op_write(&f, step); break;
		case 5:                 op_unmap(&f, step); break;
		default:                op_release(&f); break;
		}
		FZ_NO_REPORTS();
		check_all(step);
	}
	while (nmaps > 0) {
		uint8_t zero = 0;
		fz g = { &zero, 1 };
		op_release(&g);
	}
	IOMemoryDescriptor_release(mds[2]);
	IOMemoryDescriptor_release(mds[1]);
	FZ_NO_REPORTS();
	FZ_CHECK(live_blocks() == baseline_blocks, "%u live blocks, %u after setup", live_blocks(), baseline_blocks);
	return 0;
}
