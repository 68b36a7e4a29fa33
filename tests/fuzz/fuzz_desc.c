/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_desc.c - descriptor construction and walking, every kind,
 * nested, against a model.
 *
 * The input is a program: a layout policy, then operations that create
 * descriptors (general virtual over a static pool, physical, buffer,
 * device, sub, multi, interleaved - the last three over earlier ones, so
 * they nest), prepare/complete them, and walk them. The model resolves
 * every byte offset of every descriptor to its virtual address (or its
 * physical one for physical kinds) through the tree of descriptors; the
 * checks compare against it and against the software machine's own page
 * translation:
 *   - a factory returns NULL exactly when its arguments are outside the
 *     documented domain (sub/slice out of range, ...);
 *   - getPhysicalSegment from 0 to the end: every segment starts at the
 *     model's physical address, is physically contiguous (every page start
 *     and its last byte), and the segments tile the length;
 *   - iomem_walk (iomem_dma.h) over a random window: the same, and its
 *     runs are maximal;
 *   - iomem_md_walk over the extents equals getPhysicalSegment;
 *   - readBytes/writeBytes of a random window of virtual-backed bytes move
 *     exactly the model's bytes;
 *   - at the end of each input, everything released: nothing leaked (debug
 *     layer), no page wired, no contract report.
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"

#define POOL_PAGES 24
#define MAXN 12
#define PG ((IOByteCount)iomem__platform_page_size())

static unsigned char pool[POOL_PAGES * 16384] __attribute__((aligned(16384)));

enum { K_VIRT, K_PHYS, K_BUF, K_DEV, K_SUB, K_MULTI, K_IL, K_COUNT };

typedef struct piece {        /* a range of a general kind, or a reference */
	uint64_t    addr;         /* virtual or physical address; sub: offset */
	IOByteCount len;
	int         child;        /* sub/multi/interleaved: node index */
} piece;

typedef struct node {
	IOMemoryDescriptor *md;
	int                 kind;
	IOByteCount         len;
	piece               p[4];
	int                 np;
	unsigned            prepared;   /* prepares this program made */
	bool                pageable;
} node;

static node nodes[MAXN];
static int nn;

/* The model: byte @off of node @i -> virtual address (va, when backed by
 * the pool/a buffer) or physical address (pa, physical kinds). */
FZ_MODEL static bool model_at(int i, IOByteCount off, unsigned char **va, uint64_t *pa)
{
	const node *n = &nodes[i];
	for (int k = 0; k < n->np; k++) {
		const piece *p = &n->p[k];
		if (off >= p->len) {
			off -= p->len;
			continue;
		}
		switch (n->kind) {
		case K_VIRT:
		case K_BUF:
			*va = (unsigned char *)(uintptr_t)(p->addr + off);
			*pa = 0;
			return true;
		case K_PHYS:
		case K_DEV:
			*va = NULL;
			*pa = p->addr + off;
			return true;
		case K_SUB:
			return model_at(p->child, p->addr + off, va, pa);
		default:             /* multi, interleaved: p->addr = slice offset */
			return model_at(p->child, p->addr + off, va, pa);
		}
	}
	return false;
}

/* Physical address of byte @off per the model (the machine translates
 * virtual bytes; they must be wired). */
static uint64_t model_pa(int i, IOByteCount off, unsigned char **vap)
{
	unsigned char *va = NULL;
	uint64_t pa = 0;
	FZ_CHECK(model_at(i, off, &va, &pa), "node %d offset %llu outside the model", i, (unsigned long long)off);
	if (vap)
		*vap = va;
	if (va != NULL) {
		pa = iomem_posix_virt_to_phys(va);
		FZ_CHECK(pa != 0, "node %d offset %llu: virtual byte not wired", i, (unsigned long long)off);
	}
	return pa;
}

FZ_MODEL static bool all_virtual(int i, IOByteCount off, IOByteCount len)
{
	for (IOByteCount k = 0; k < len; k++) {
		unsigned char *va = NULL;
		uint64_t pa;
		if (!model_at(i, off + k, &va, &pa) || va == NULL)
			return false;
	}
	return true;
}

/* A segment [pa, pa + len) at @off agrees with the model. */
static void check_segment(int i, IOByteCount off, uint64_t pa, IOByteCount len)
{
	uint64_t want = model_pa(i, off, NULL);
	FZ_CHECK(pa == want, "node %d (kind %d) offset %llu: pa %llx, model %llx", i, nodes[i].kind,
	         (unsigned long long)off, (unsigned long long)pa, (unsigned long long)want);
	for (IOByteCount k = PG - (pa & (PG - 1)); k < len; k += PG)
		FZ_CHECK(model_pa(i, off + k, NULL) == pa + k, "node %d: segment at %llu not contiguous at +%llu", i,
		         (unsigned long long)off, (unsigned long long)k);
	if (len > 1)
		FZ_CHECK(model_pa(i, off + len - 1, NULL) == pa + len - 1, "node %d: segment at %llu: last byte", i,
		         (unsigned long long)off);
}

/* Bytes [@o, @o + @l) of node @i (all virtual-backed): equal to @read
 * when given (what readBytes returned), then @tmp gets the bytes to write
 * back; with @read NULL, memory must now hold @tmp (writeBytes landed).
 * The value written is a function of the address: bytes two ranges alias
 * get the same value, whichever write lands last. */
FZ_MODEL static void model_bytes(int i, IOByteCount o, IOByteCount l, const unsigned char *read, unsigned char *tmp)
{
	for (IOByteCount k = 0; k < l; k++) {
		unsigned char *va = NULL;
		uint64_t pa;
		model_at(i, o + k, &va, &pa);
		if (read != NULL) {
			FZ_CHECK(read[k] == *va, "node %d: readBytes byte %llu", i, (unsigned long long)(o + k));
			tmp[k] = (unsigned char)(((uintptr_t)va * 7) >> 3 ^ o);
		} else {
			FZ_CHECK(*va == tmp[k], "node %d: writeBytes byte %llu", i, (unsigned long long)(o + k));
		}
	}
}

static void walk_all(int i, fz *f)
{
	node *n = &nodes[i];
	IOMemoryDescriptor *md = n->md;
	IOByteCount off = 0, seg, len = IOMemoryDescriptor_getLength(md);
	FZ_CHECK(len == n->len, "node %d: length %llu, model %llu", i, (unsigned long long)len,
	         (unsigned long long)n->len);
	while (off < len) {
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		FZ_CHECK(seg > 0 && seg <= len - off, "node %d: segment length %llu at %llu", i,
		         (unsigned long long)seg, (unsigned long long)off);
		check_segment(i, off, pa, seg);
		off += seg;
	}
	FZ_CHECK(IOMemoryDescriptor_getPhysicalSegment(md, len, &seg, 0) == 0 && seg == 0, "node %d: past the end", i);

	/* random offsets (the hint and the binary search) */
	for (int r = 0; r < 4 && len > 0; r++) {
		IOByteCount o = (IOByteCount)fz_u32(f) % len;
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, o, &seg, 0);
		FZ_CHECK(seg > 0 && seg <= len - o, "node %d: random segment", i);
		check_segment(i, o, pa, seg);
	}

	/* the extents walk (general kinds) agrees with getPhysicalSegment */
	{
		iomem_md_walk w;
		IOByteCount start = len ? (IOByteCount)fz_u32(f) % len : 0;
		if (iomem_md_walk_init(&w, md, start)) {
			addr64_t pa;
			IOByteCount l, o = start;
			while ((l = iomem_md_walk_next(&w, &pa)) != 0) {
				addr64_t want = IOMemoryDescriptor_getPhysicalSegment(md, o, &seg, 0);
				FZ_CHECK(pa == want && l == seg, "node %d: md_walk at %llu: %llx+%llu, segment %llx+%llu", i,
				         (unsigned long long)o, (unsigned long long)pa, (unsigned long long)l,
				         (unsigned long long)want, (unsigned long long)seg);
				o += l;
			}
			FZ_CHECK(o == len, "node %d: md_walk ends at %llu", i, (unsigned long long)o);
		}
	}

	/* the shared walk engine over a window: tiles it, maximal runs */
	if (len > 0) {
		IOByteCount a = (IOByteCount)fz_u32(f) % len, b = a + 1 + (IOByteCount)fz_u32(f) % (len - a);
		iomem_walk w;
		addr64_t pa, prev_end = 0;
		IOByteCount l, o = a;
		FZ_CHECK(iomem_walk_init(&w, md, a, b), "node %d: walk_init", i);
		while ((l = iomem_walk_next(&w, &pa)) != 0) {
			FZ_CHECK(o + l <= b, "node %d: walk overruns its window", i);
			check_segment(i, o, pa, l);
			FZ_CHECK(o == a || pa != prev_end, "node %d: walk run at %llu not maximal", i, (unsigned long long)o);
			prev_end = pa + l;
			o += l;
		}
		FZ_CHECK(!w.error && o == b, "node %d: walk [%llu, %llu) stops at %llu (error %d)", i,
		         (unsigned long long)a, (unsigned long long)b, (unsigned long long)o, w.error);
	}

	/* bytes, where the model has them */
	if (len > 0) {
		static unsigned char tmp[4096], back[4096];
		IOByteCount o = (IOByteCount)fz_u32(f) % len, l = 1 + (IOByteCount)fz_u16(f) % sizeof tmp;
		if (l > len - o)
			l = len - o;
		if (all_virtual(i, o, l)) {
			FZ_CHECK(IOMemoryDescriptor_readBytes(md, o, back, l) == l, "node %d: readBytes", i);
			model_bytes(i, o, l, back, tmp);
			FZ_CHECK(IOMemoryDescriptor_writeBytes(md, o, tmp, l) == l, "node %d: writeBytes", i);
			model_bytes(i, o, l, NULL, tmp);
		}
		FZ_CHECK(IOMemoryDescriptor_readBytes(md, len - o, back, o + 1) == 0, "node %d: read past the end", i);
	}
}

static int pick(fz *f)
{
	return nn ? (int)fz_below(f, (uint32_t)nn) : -1;
}

static void add_node(int kind, IOMemoryDescriptor *md, const piece *p, int np, bool pageable)
{
	node *n = &nodes[nn++];
	memset(n, 0, sizeof *n);
	n->md = md;
	n->kind = kind;
	n->np = np;
	n->pageable = pageable;
	for (int k = 0; k < np; k++) {
		n->p[k] = p[k];
		n->len += p[k].len;
	}
}

static void op_create(fz *f)
{
	int kind = fz_below(f, K_COUNT);
	IOOptionBits ts = (fz_u8(f) & 1) ? kIOMemoryThreadSafe : 0;
	piece p[4];
	int np, k;
	IOMemoryDescriptor *md;
	if (nn == MAXN)
		return;
	switch (kind) {
	case K_VIRT: {
		IOAddressRange r[4];
		np = 1 + fz_below(f, 4);
		for (k = 0; k < np; k++) {
			IOByteCount start = fz_u32(f) % (POOL_PAGES * PG);
			IOByteCount len = fz_u32(f) % (POOL_PAGES * PG - start + 1);
			if (fz_u8(f) & 1)
				len %= 3 * PG;                   /* mostly short ranges */
			r[k].address = (uintptr_t)pool + start;
			r[k].length = len;
			p[k].addr = r[k].address;
			p[k].len = len;
		}
		md = IOMemoryDescriptor_withAddressRanges(r, (UInt32)np, kIODirectionInOut | ts, kernel_task);
		FZ_CHECK(md != NULL, "withAddressRanges failed");
		if (fz_u8(f) & 1) {      /* prepared by the program, for a while */
			FZ_CHECK(IOMemoryDescriptor_prepare(md, kIODirectionNone) == kIOReturnSuccess, "prepare");
			add_node(K_VIRT, md, p, np, false);
			nodes[nn - 1].prepared = 1;
			return;
		}
		break;
	}
	case K_PHYS: {
		IOAddressRange r[4];
		np = 1 + fz_below(f, 4);
		for (k = 0; k < np; k++) {
			r[k].address = 0x40000000ull + (uint64_t)fz_below(f, 64) * PG + fz_u16(f) % PG;
			if (fz_u8(f) & 1)
				r[k].address += (uint64_t)fz_u8(f) << 36;
			r[k].length = fz_u32(f) % (8 * PG);
			p[k].addr = r[k].address;
			p[k].len = r[k].length;
		}
		md = IOMemoryDescriptor_withAddressRanges(r, (UInt32)np, kIODirectionInOut | ts, NULL);
		FZ_CHECK(md != NULL, "physical withAddressRanges failed");
		break;
	}
	case K_BUF: {
		uint8_t o = fz_u8(f);
		IOOptionBits opt = kIODirectionInOut | ts;
		mach_vm_size_t cap = 1 + fz_u32(f) % (6 * PG);
		mach_vm_address_t mask = 0;
		bool pageable = false;
		if (o & 1)
			opt |= kIOMemoryPhysicallyContiguous;
		else if (o & 2) {
			opt |= kIOMemoryPageable;
			pageable = true;
		}
		if ((o & 4) && !pageable)
			mask = 0xFFFFFFFFull & ~(mach_vm_address_t)(PG - 1);
		md = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, opt, cap, mask);
		FZ_CHECK(md != NULL, "buffer (options %#x, capacity %llu) failed", opt, (unsigned long long)cap);
		p[0].addr = (uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(md);
		p[0].len = (IOByteCount)cap;
		if (o & 8) {
			IOByteCount l = fz_u32(f) % (cap + 1);
			IOBufferMemoryDescriptor_setLength(md, (vm_size_t)l);
			p[0].len = l;
		}
		if (mask != 0) {
			FZ_CHECK(IOMemoryDescriptor_getPhysicalAddress(md) + cap - 1 <= 0xFFFFFFFFull,
			         "buffer above its physical mask");
		}
		add_node(K_BUF, md, p, 1, pageable);
		if (pageable) {
			FZ_CHECK(IOMemoryDescriptor_prepare(md, kIODirectionNone) == kIOReturnSuccess, "prepare pageable");
			nodes[nn - 1].prepared = 1;
		}
		return;
	}
	case K_DEV:
		p[0].addr = 0xfe000000ull + (uint64_t)fz_u16(f) * 16;
		p[0].len = fz_u32(f) % (4 * PG);
		md = IODeviceMemory_withRange(p[0].addr, p[0].len);
		FZ_CHECK(md != NULL, "IODeviceMemory_withRange failed");
		np = 1;
		break;
	case K_SUB: {
		int parent = pick(f);
		IOByteCount plen, off, len;
		if (parent < 0)
			return;
		plen = nodes[parent].len;
		off = fz_u32(f) % (plen + 2);
		len = fz_u32(f) % (plen + 2);
		md = IOSubMemoryDescriptor_withSubRange(nodes[parent].md, off, len, kIODirectionInOut);
		FZ_CHECK((md != NULL) == (off <= plen && len <= plen - off), "sub [%llu +%llu) of %llu: %p",
		         (unsigned long long)off, (unsigned long long)len, (unsigned long long)plen, (void *)md);
		if (md == NULL)
			return;
		p[0].addr = off;
		p[0].len = len;
		p[0].child = parent;
		np = 1;
		break;
	}
	case K_MULTI: {
		IOMemoryDescriptor *c[4];
		bool pg = false, mixed = false;
		if (nn == 0)
			return;
		np = 1 + fz_below(f, 4);
		for (k = 0; k < np; k++) {
			p[k].child = pick(f);
			p[k].addr = 0;
			p[k].len = nodes[p[k].child].len;
			c[k] = nodes[p[k].child].md;
			if (k == 0)
				pg = nodes[p[k].child].pageable;
			else if (nodes[p[k].child].pageable != pg)
				mixed = true;
		}
		md = IOMultiMemoryDescriptor_withDescriptors(c, (UInt32)np, kIODirectionInOut, fz_u8(f) & 1);
		FZ_CHECK(md != NULL || mixed, "multi of %d failed", np);
		if (md == NULL)
			return;
		add_node(K_MULTI, md, p, np, pg);
		return;
	}
	default: {              /* interleaved */
		unsigned cap = 1 + fz_below(f, 4), want = fz_below(f, 6);
		md = IOInterleavedMemoryDescriptor_withCapacity(cap, kIODirectionInOut);
		FZ_CHECK(md != NULL, "interleaved withCapacity(%u)", cap);
		np = 0;
		for (unsigned s = 0; s < want && nn > 0; s++) {
			int c = pick(f);
			IOByteCount clen = nodes[c].len, off = fz_u32(f) % (clen + 2), len = fz_u32(f) % (clen + 2);
			bool ok = IOInterleavedMemoryDescriptor_setMemoryDescriptor(md, nodes[c].md, off, len);
			bool want_ok = (unsigned)np < cap && off <= clen && len <= clen - off;
			FZ_CHECK(ok == want_ok, "setMemoryDescriptor(slice %u, [%llu +%llu) of %llu): %d", s,
			         (unsigned long long)off, (unsigned long long)len, (unsigned long long)clen, ok);
			if (ok) {
				p[np].child = c;
				p[np].addr = off;
				p[np].len = len;
				np++;
			}
		}
		break;
	}
	}
	add_node(kind, md, p, np, false);
}

static void op_walk(fz *f)
{
	int i = pick(f);
	IOReturn r;
	if (i < 0)
		return;
	r = IOMemoryDescriptor_prepare(nodes[i].md, kIODirectionNone);
	FZ_CHECK(r == kIOReturnSuccess, "prepare node %d (kind %d): %#x", i, nodes[i].kind, (unsigned)r);
	walk_all(i, f);
	IOMemoryDescriptor_complete(nodes[i].md, kIODirectionNone);
}

static void op_prepare_toggle(fz *f)
{
	int i = pick(f);
	if (i < 0)
		return;
	if (nodes[i].prepared && (fz_u8(f) & 1)) {
		IOMemoryDescriptor_complete(nodes[i].md, kIODirectionNone);
		nodes[i].prepared--;
	} else if (nodes[i].prepared < 3) {
		FZ_CHECK(IOMemoryDescriptor_prepare(nodes[i].md, kIODirectionNone) == kIOReturnSuccess, "prepare %d", i);
		nodes[i].prepared++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz f = { data, size };
	iomem_posix_phys_layout l;
	iomem_posix_machine_stats_t st;
	int steps = 0;
	memset(&l, 0, sizeof l);
	l.policy = (iomem_posix_layout)(fz_u8(&f) % IOMEM_POSIX_LAYOUT_PAGEMAP);
	l.run_mean = 1 + fz_u8(&f) % 8;
	l.seed = fz_u8(&f);
	FZ_CHECK(iomem_posix_set_phys_layout(&l) == kIOReturnSuccess, "layout");
	nn = 0;
	fz_panic_count = 0;
	while (fz_more(&f) && steps++ < 64) {
		switch (fz_u8(&f) % 4) {
		case 0: case 1: op_create(&f); break;
		case 2: op_walk(&f); break;
		default: op_prepare_toggle(&f); break;
		}
	}
	/* release in a program-chosen order: references keep what is needed */
	while (nn > 0) {
		int i = (int)(fz_u8(&f) % (unsigned)nn);
		while (nodes[i].prepared) {
			IOMemoryDescriptor_complete(nodes[i].md, kIODirectionNone);
			nodes[i].prepared--;
		}
		IOMemoryDescriptor_release(nodes[i].md);
		nodes[i] = nodes[--nn];
		/* a moved node's children indices stay valid: only the model
		 * needs them, and nothing is walked any more */
	}
	FZ_NO_REPORTS();
	FZ_CHECK(iomem_leak_report(NULL, NULL) == 0, "leak");
	iomem_posix_machine_stats(&st);
	FZ_CHECK(st.wired_pages == 0, "%llu page(s) still wired", (unsigned long long)st.wired_pages);
	return 0;
}
