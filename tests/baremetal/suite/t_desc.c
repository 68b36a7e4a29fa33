/* SPDX-License-Identifier: MIT */
/*
 * t_desc.c - the portable cases of tests/test_desc_general.c,
 * test_desc_buffer.c and test_desc_compose.c on the target, over the
 * bare-metal hooks (>>bm-desc: wiring through the translation, physical copy
 * through phys_to_virt, buffer RAM from the O(1) heap):
 *   general descriptors over heap and static memory, buffer descriptors
 *   (capacity, alignment, physical mask, accessors, bytes), physical and
 *   device descriptors, sub / multi / interleaved, prepare/complete nesting,
 *   bad input and the debug layer's reports; 32-bit specifics (64-bit
 *   IOByteCount and IOPhysicalAddress, phys above 4 GiB fails cleanly).
 *
 * Two entry points (see main.c):
 *   bmt_suite_desc_translated() runs right after t_init.c, while the heap is
 *   still empty: it re-initialises with the same memory plus a translation
 *   hook pair (phys = virt + BMT_XLATE_OFFSET) and checks segments, bytes
 *   and the physical mask through it. The debug image keeps its allocation
 *   table in the heap from then on, so it cannot go back to the default
 *   translation (kIOReturnBusy): there the hooks stay, switched to identity.
 *   bmt_suite_desc() runs the identity cases.
 */
#include "bmt.h"

#define PAGE ((IOByteCount)4096)
#define DBG(n) (IOMEM__DEBUG ? (n) : 0)
#define BMT_XLATE_OFFSET ((IOPhysicalAddress64)0x40000000u)
#define IS32 (sizeof(void *) == 4)

static unsigned char sbuf[3 * 4096] __attribute__((aligned(4096)));
static unsigned char scratch[3 * 4096 + 64];
static unsigned char scratch2[3 * 4096 + 64];

/* ---- a translation hook pair whose offset can be switched ---------------- */

static IOPhysicalAddress64 xl_offset;      /* 0: identity */
static IOPhysicalAddress64 xl_win_lo, xl_win_hi;   /* hi != 0: only [lo, hi) mapped */
static int xl_v2p_calls, xl_p2v_calls;

static IOPhysicalAddress64 xl_v2p(void *u, const void *v)
{
	(void)u;
	xl_v2p_calls++;
	return (IOPhysicalAddress64)(uintptr_t)v + xl_offset;
}

static void *xl_p2v(void *u, IOPhysicalAddress64 p)
{
	IOPhysicalAddress64 v;
	(void)u;
	xl_p2v_calls++;
	if (xl_win_hi != 0 && (p < xl_win_lo || p >= xl_win_hi))
		return NULL;
	if (p < xl_offset)
		return NULL;
	v = p - xl_offset;
	if (v > (IOPhysicalAddress64)UINTPTR_MAX)
		return NULL;                        /* not addressable on this core */
	return (void *)(uintptr_t)v;
}

static uint64_t pa_of(const void *v)
{
	return (uint64_t)(uintptr_t)v + xl_offset;
}

/* ---- helpers ------------------------------------------------------------- */

static bool heap_ok(void)
{
	return iomem_baremetal_heap_check(NULL) == kIOReturnSuccess;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7u + seed);
}

static bool same(const void *a, const void *b, size_t n)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	size_t i;
	for (i = 0; i < n; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* Walks @md from 0: every segment starts at pa_of(@va + offset), stays
 * inside it, and the walk covers the length exactly; returns the number of
 * segments, or 0 on a mismatch. */
static uint32_t walk_linear(IOMemoryDescriptor *md, const unsigned char *va)
{
	IOByteCount off = 0, len = IOMemoryDescriptor_getLength(md), seg = 0;
	uint32_t n = 0;
	while (off < len) {
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		if (pa != pa_of(va + off) || seg == 0 || seg > len - off)
			return 0;
		off += seg;
		n++;
	}
	if (IOMemoryDescriptor_getPhysicalSegment(md, len, &seg, 0) != 0 || seg != 0)
		return 0;
	return n;
}

/* ---- general descriptors ------------------------------------------------- */

static void general_over(unsigned char *buf, IOByteCount len, const char *what)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf + 5, len, kIODirectionInOut);
	IOByteCount seg = 0;
	bool ok;

	bmt_reports_reset();
	BMT_OK(md != NULL && iomem_md_kind_of(md) == IOMEM_MD_GENERAL && IOMemoryDescriptor_getLength(md) == len,
	       what);
	if (md == NULL)
		return;
	ok = IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == pa_of(buf + 5) && seg == len &&
	     walk_linear(md, buf + 5) == 1 &&
	     IOMemoryDescriptor_getPhysicalSegment(md, len - 1, &seg, 0) == pa_of(buf + 5 + len - 1) && seg == 1;
	BMT_OK(ok, "general: one segment, equal to the (translated) address, at every offset");
	fill_pattern(buf + 5, (size_t)len, 3);
	bmt_fill(scratch, sizeof scratch, 0);
	ok = IOMemoryDescriptor_readBytes(md, 0, scratch, len) == len && same(scratch, buf + 5, (size_t)len);
	fill_pattern(scratch, (size_t)len, 99);
	ok &= IOMemoryDescriptor_writeBytes(md, 0, scratch, len) == len && same(scratch, buf + 5, (size_t)len);
	ok &= IOMemoryDescriptor_readBytes(md, len - 7, scratch2, 7) == 7 && same(scratch2, buf + 5 + len - 7, 7);
	ok &= IOMemoryDescriptor_writeBytes(md, 100, NULL, 50) == 50 && bmt_all_bytes(buf + 105, 50, 0) &&
	      buf[104] == scratch[99] && buf[155] == scratch[150];
	BMT_OK(ok, "general: readBytes/writeBytes round trip through phys_to_virt, NULL source zero-fills");
	IOMemoryDescriptor_release(md);
	BMT_OK(bmt_panic_count == 0, "general: ... no report");
}

static void general_ranges_prepare(unsigned char *buf)
{
	IOAddressRange r[3] = {
		{ (uintptr_t)buf + 2 * PAGE + 7, 1000 },
		{ (uintptr_t)buf + 10, PAGE },
		{ (uintptr_t)buf + PAGE + 10, 300 },        /* adjacent to range 1 */
	};
	IOByteCount seg = 77, total = 1000 + PAGE + 300;
	IOMemoryDescriptor *md;
	uint64_t id;
	unsigned char out[8];
	bool ok;

	bmt_reports_reset();
	md = IOMemoryDescriptor_withAddressRanges(r, 3, kIODirectionInOut, kernel_task);
	BMT_OK(md != NULL && IOMemoryDescriptor_getLength(md) == total, "ranges: three ranges, lengths add up");
	if (md == NULL)
		return;
	BMT_OK(IOMemoryDescriptor_getPreparationID(md) == kIOPreparationIDUnprepared &&
	       IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == 0 && seg == 0 &&
	       IOMemoryDescriptor_readBytes(md, 0, out, 8) == 0,
	       "ranges: not prepared -> no segment, no bytes");
	BMT_REPORTS(DBG(2), IOMEM__DEBUG ? "ranges: debug: both walks of an unprepared descriptor reported"
	                                 : "ranges: release: no report");
	if (IOMEM__DEBUG)
		BMT_OK(bmt_contains(bmt_panic_msg, "not prepared"), "ranges: debug: report names the cause");
	bmt_reports_reset();
	BMT_OK(IOMemoryDescriptor_prepare(md, kIODirectionNone) == kIOReturnSuccess, "ranges: prepare");
	id = IOMemoryDescriptor_getPreparationID(md);
	ok = id > kIOPreparationIDAlwaysPrepared;
	ok &= IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == pa_of(buf + 2 * PAGE + 7) && seg == 1000;
	ok &= IOMemoryDescriptor_getPhysicalSegment(md, 1000, &seg, 0) == pa_of(buf + 10) && seg == PAGE + 300;
	ok &= IOMemoryDescriptor_getPhysicalSegment(md, total - 1, &seg, 0) == pa_of(buf + PAGE + 309) && seg == 1;
	BMT_OK(ok, "ranges: segments merge adjacent ranges, not the others");
	fill_pattern(buf, 3 * PAGE, 11);
	ok = IOMemoryDescriptor_readBytes(md, 0, scratch, total) == total && same(scratch, buf + 2 * PAGE + 7, 1000) &&
	     same(scratch + 1000, buf + 10, (size_t)(PAGE + 300));
	fill_pattern(scratch, (size_t)total, 200);
	ok &= IOMemoryDescriptor_writeBytes(md, 0, scratch, total) == total &&
	      same(buf + 10, scratch + 1000, (size_t)(PAGE + 300)) && same(buf + 2 * PAGE + 7, scratch, 1000);
	BMT_OK(ok, "ranges: bytes cross range boundaries both ways");
	ok = IOMemoryDescriptor_prepare(md, kIODirectionNone) == kIOReturnSuccess &&
	     IOMemoryDescriptor_getPreparationID(md) == id &&
	     IOMemoryDescriptor_complete(md, kIODirectionNone) == kIOReturnSuccess &&
	     IOMemoryDescriptor_getPhysicalSegment(md, 0, NULL, 0) != 0 &&
	     IOMemoryDescriptor_complete(md, kIODirectionNone) == kIOReturnSuccess &&
	     IOMemoryDescriptor_getPreparationID(md) == kIOPreparationIDUnprepared &&
	     IOMemoryDescriptor_prepare(md, kIODirectionNone) == kIOReturnSuccess &&
	     IOMemoryDescriptor_getPreparationID(md) != id;
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	BMT_OK(ok && bmt_panic_count == 0, "ranges: prepare nests; last complete unprepares; new preparation, new id");
	IOMemoryDescriptor_release(md);
}

static void general_identity(void)
{
	unsigned char *h = (unsigned char *)IOMallocAligned(3 * PAGE, PAGE);
	IOMemoryDescriptor *md;
	unsigned char b[16] = { 1 };
	IOAddressRange rz[3];
	IOByteCount seg = 5;
	bool ok;

	general_over(sbuf, 2 * PAGE + 100, "general: static memory, withAddress (auto-prepared)");
	BMT_OK(h != NULL, "general: heap buffer of 3 pages");
	if (h == NULL)
		return;
	general_over(h, 2 * PAGE + 100, "general: heap memory, withAddress (auto-prepared)");
	general_ranges_prepare(h);
	general_ranges_prepare(sbuf);

	/* direction rules */
	bmt_reports_reset();
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)h, 128, kIODirectionOut, kernel_task);
	ok = md != NULL && IOMemoryDescriptor_prepare(md, kIODirectionNone) == kIOReturnSuccess &&
	     (IOMemoryDescriptor_getFlags(md) & kIOMemoryPreparedReadOnly) &&
	     IOMemoryDescriptor_prepare(md, kIODirectionIn) == kIOReturnNotWritable &&
	     IOMemoryDescriptor_writeBytes(md, 0, b, 16) == 0 && IOMemoryDescriptor_readBytes(md, 0, b, 16) == 16;
	if (md != NULL) {
		IOMemoryDescriptor_complete(md, kIODirectionNone);
		ok &= IOMemoryDescriptor_prepare(md, kIODirectionInOut) == kIOReturnSuccess &&
		      IOMemoryDescriptor_writeBytes(md, 0, b, 16) == 16;
		IOMemoryDescriptor_complete(md, kIODirectionNone);
		IOMemoryDescriptor_release(md);
	}
	BMT_OK(ok && bmt_panic_count == 0, "general: Out is wired read-only (writeBytes 0, prepare In NotWritable)");

	/* zero lengths */
	md = IOMemoryDescriptor_withAddress(h, 0, kIODirectionIn);
	ok = md != NULL && IOMemoryDescriptor_getLength(md) == 0 &&
	     IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == 0 && seg == 0 &&
	     IOMemoryDescriptor_readBytes(md, 0, b, 0) == 0 && IOMemoryDescriptor_readBytes(md, 0, b, 1) == 0;
	IOMemoryDescriptor_release(md);
	rz[0].address = (uintptr_t)h; rz[0].length = 0;
	rz[1].address = (uintptr_t)h + 8; rz[1].length = 16;
	rz[2].address = (uintptr_t)h + 100; rz[2].length = 0;
	md = IOMemoryDescriptor_withAddressRanges(rz, 3, kIODirectionInOut, kernel_task);
	ok &= md != NULL && IOMemoryDescriptor_prepare(md, 0) == kIOReturnSuccess &&
	      IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == pa_of(h + 8) && seg == 16;
	if (md != NULL) {
		IOMemoryDescriptor_complete(md, 0);
		IOMemoryDescriptor_release(md);
	}
	BMT_OK(ok && bmt_panic_count == 0, "general: zero-length descriptor and empty ranges accepted");

	/* range rules: all or nothing, overflow */
	md = IOMemoryDescriptor_withAddress(h, 100, kIODirectionInOut);
	bmt_fill(h, 100, 0x3c);
	bmt_fill(scratch, 200, 0xee);
	ok = md != NULL &&
	     IOMemoryDescriptor_readBytes(md, 101, scratch, 1) == 0 &&
	     IOMemoryDescriptor_readBytes(md, 50, scratch, 51) == 0 &&
	     IOMemoryDescriptor_readBytes(md, 50, scratch, ~(IOByteCount)0) == 0 &&
	     IOMemoryDescriptor_readBytes(md, ~(IOByteCount)0, scratch, 2) == 0 &&
	     IOMemoryDescriptor_readBytes(md, (IOByteCount)1 << 32, scratch, 1) == 0 &&
	     IOMemoryDescriptor_readBytes(md, 0, scratch, ((IOByteCount)1 << 32) + 1) == 0 &&
	     IOMemoryDescriptor_readBytes(md, 100, scratch, 0) == 0 &&
	     IOMemoryDescriptor_readBytes(md, 0, NULL, 10) == 0 &&
	     bmt_all_bytes(scratch, 200, 0xee);
	ok &= IOMemoryDescriptor_writeBytes(md, 50, scratch, 51) == 0 &&
	      IOMemoryDescriptor_writeBytes(md, 101, scratch, 1) == 0 &&
	      IOMemoryDescriptor_writeBytes(md, 0, NULL, ((IOByteCount)1 << 32) + 100) == 0 &&
	      IOMemoryDescriptor_writeBytes(md, ((IOByteCount)1 << 32), NULL, 1) == 0 &&
	      bmt_all_bytes(h, 100, 0x3c);
	ok &= IOMemoryDescriptor_readBytes(md, 0, scratch, 100) == 100 && bmt_all_bytes(scratch, 100, 0x3c) &&
	      IOMemoryDescriptor_readBytes(NULL, 0, scratch, 1) == 0 && IOMemoryDescriptor_writeBytes(NULL, 0, b, 1) == 0;
	IOMemoryDescriptor_release(md);
	BMT_OK(ok && bmt_panic_count == 0,
	       "general: out-of-range / overflowing (64-bit) offsets and lengths: all or nothing, nothing touched");
	IOFreeAligned(h, 3 * PAGE);
}

static void general_bad_input(void)
{
	unsigned char *h = (unsigned char *)IOMallocAligned(PAGE, PAGE);
	IOAddressRange r[2], wrap = { ~(mach_vm_address_t)0 - 10, 100 }, high = { (mach_vm_address_t)1 << 32, 16 };
	IOAddressRange huge[2] = { { 0x1000, ~(mach_vm_size_t)0 - 0x2000 }, { 0x1000, 0x3000 } };
	IOAddressRange beyond = { (mach_vm_address_t)UINTPTR_MAX - 15, 32 };
	struct iomem_task other = { 1 };
	IOVirtualRange vr[2];
	IOMemoryDescriptor *md, *pmd;
	bool ok;

	bmt_reports_reset();
	r[0].address = (uintptr_t)h; r[0].length = 64;
	r[1].address = (uintptr_t)h + 64; r[1].length = 64;
	ok = IOMemoryDescriptor_withAddressRanges(NULL, 1, kIODirectionIn, kernel_task) == NULL &&
	     IOMemoryDescriptor_withAddressRanges(r, 0, kIODirectionIn, kernel_task) == NULL &&
	     IOMemoryDescriptor_withAddressRanges(&wrap, 1, kIODirectionIn, kernel_task) == NULL &&
	     IOMemoryDescriptor_withAddressRanges(&wrap, 1, kIODirectionIn, NULL) == NULL &&
	     IOMemoryDescriptor_withAddressRanges(huge, 2, kIODirectionIn, NULL) == NULL &&
	     IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionIn, &other) == NULL &&
	     IOMemoryDescriptor_withAddress(NULL, 64, kIODirectionIn) == NULL &&
	     IOMemoryDescriptor_withAddressRanges(&beyond, 1, kIODirectionIn, kernel_task) == NULL &&
	     IOMemoryDescriptor_withOptions(NULL, 1, 0, kernel_task, kIOMemoryTypeVirtual, NULL) == NULL &&
	     IOMemoryDescriptor_withOptions(r, 0, 0, kernel_task, kIOMemoryTypeVirtual, NULL) == NULL &&
	     IOMemoryDescriptor_withOptions(r, 2, 0, NULL, kIOMemoryTypeVirtual, NULL) == NULL &&
	     IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task, kIOMemoryTypePhysical, NULL) == NULL &&
	     IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task, kIOMemoryTypeUPL, NULL) == NULL &&
	     IOMemoryDescriptor_withPersistentMemoryDescriptor(NULL) == NULL;
	BMT_OK(ok, "bad input: NULL / zero / wrapping / overflowing ranges, other task, wrong types -> NULL");
	md = IOMemoryDescriptor_withAddressRanges(&high, 1, kIODirectionIn, kernel_task);
	BMT_OK(IS32 ? md == NULL : md != NULL,
	       IS32 ? "bad input: 32-bit: a virtual range above 4 GiB -> NULL (not truncated)"
	            : "bad input: 64-bit: a virtual range above 4 GiB is a valid (unprepared) descriptor");
	IOMemoryDescriptor_release(md);
	vr[0].address = (IOVirtualAddress)(uintptr_t)h; vr[0].length = 64;
	vr[1].address = (IOVirtualAddress)(uintptr_t)h + 64; vr[1].length = 64;
	md = IOMemoryDescriptor_withOptions(vr, 2, 0, kernel_task, kIOMemoryTypeVirtual | kIODirectionIn, NULL);
	ok = md != NULL && IOMemoryDescriptor_getLength(md) == 128 &&
	     IOMemoryDescriptor_withPersistentMemoryDescriptor(md) == NULL;
	IOMemoryDescriptor_release(md);
	md = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionIn | kIOMemoryPersistent, kernel_task);
	pmd = IOMemoryDescriptor_withPersistentMemoryDescriptor(md);
	ok &= md != NULL && pmd == md && iomem_md_getRetainCount(md) == 2;
	IOMemoryDescriptor_release(pmd);
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_release(NULL);
	IOMemoryDescriptor_retain(NULL);
	ok &= IOMemoryDescriptor_prepare(NULL, 0) == kIOReturnBadArgument &&
	      IOMemoryDescriptor_complete(NULL, 0) == kIOReturnBadArgument;
	BMT_OK(ok && bmt_panic_count == 0, "bad input: withOptions(IOVirtualRange), persistent retain, NULL no-ops");

	/* complete without prepare; release of a prepared descriptor */
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)h, 64, kIODirectionIn, kernel_task);
	ok = md != NULL && IOMemoryDescriptor_complete(md, kIODirectionNone) == kIOReturnSuccess;
	BMT_OK(ok && bmt_panic_count == DBG(1) &&
	       (!IOMEM__DEBUG || bmt_contains(bmt_panic_msg, "IOMemoryDescriptor_complete")),
	       IOMEM__DEBUG ? "bad input: debug: complete without prepare reported, ignored"
	                    : "bad input: release: complete without prepare ignored");
	IOMemoryDescriptor_release(md);
	md = IOMemoryDescriptor_withAddress(h, 64, kIODirectionIn);
	ok = md != NULL && IOMemoryDescriptor_complete(md, kIODirectionNone) == kIOReturnSuccess &&
	     IOMemoryDescriptor_getPhysicalSegment(md, 0, NULL, 0) == pa_of(h);
	BMT_OK(ok && bmt_panic_count == DBG(2),
	       "bad input: complete of an auto-prepared descriptor: its own wiring survives");
	IOMemoryDescriptor_release(md);
	bmt_reports_reset();
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)h, PAGE, kIODirectionOut, kernel_task);
	ok = md != NULL && IOMemoryDescriptor_prepare(md, 0) == kIOReturnSuccess &&
	     IOMemoryDescriptor_prepare(md, 0) == kIOReturnSuccess;
	IOMemoryDescriptor_release(md);
	BMT_OK(ok && bmt_panic_count == DBG(1) &&
	       (!IOMEM__DEBUG || bmt_contains(bmt_panic_msg, "IOMemoryDescriptor_release")),
	       IOMEM__DEBUG ? "bad input: debug: release of a prepared descriptor reported (then completed)"
	                    : "bad input: release: release of a prepared descriptor completes it");
	IOFreeAligned(h, PAGE);
	BMT_OK(heap_ok(), "bad input: heap invariants hold");
}

/* ---- buffers ------------------------------------------------------------- */

static void buffer_cases(void)
{
	IOBufferMemoryDescriptor *b, *bs[4];
	IOByteCount seg, cap = 2 * PAGE + 123;
	unsigned char *p;
	static const char msg[] = "the quick brown fox";
	iomem_heap_diagnostics d0, d1;
	struct iomem_task other = { 1 };
	int i;
	bool ok;

	bmt_reports_reset();
	iomem_baremetal_heap_diagnostics(&d0);
	b = IOBufferMemoryDescriptor_withCapacity((vm_size_t)cap, kIODirectionInOut, false);
	BMT_OK(b != NULL && iomem_md_kind_of(b) == IOMEM_MD_BUFFER && IOMemoryDescriptor_getLength(b) == cap &&
	       IOBufferMemoryDescriptor_getCapacity(b) == cap, "buffer: withCapacity: kind, length = capacity");
	if (b == NULL)
		return;
	p = (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(b);
	BMT_OK(p != NULL && ((uintptr_t)p & (PAGE - 1)) == 0 && bmt_all_bytes(p, (size_t)cap, 0),
	       "buffer: heap RAM, page-aligned, zero-filled");
	/* the RAM is one aligned heap block: 3 pages + header rounded up to
	 * 4 pages (power of two), not 3 pages + alignment slack rounded to 8 */
	iomem_baremetal_heap_diagnostics(&d1);
	bmt_diag_u("buffer: heap bytes taken by a 3-page buffer (object included)", d1.allocated - d0.allocated);
	BMT_OK(d1.allocated - d0.allocated >= 4 * PAGE && d1.allocated - d0.allocated < 5 * PAGE,
	       "buffer: 3 pages of RAM take a 4-page heap block (+ the object), the alignment gap stays free");
	BMT_OK(walk_linear(b, p) == 1 && IOMemoryDescriptor_getPhysicalAddress(b) == pa_of(p),
	       "buffer: prepared at creation; one segment at the buffer's (translated) address");
	fill_pattern(p, (size_t)cap, 42);
	ok = IOMemoryDescriptor_readBytes(b, 0, scratch, cap) == cap && same(scratch, p, (size_t)cap);
	fill_pattern(scratch, (size_t)cap, 43);
	ok &= IOMemoryDescriptor_writeBytes(b, 0, scratch, cap) == cap && same(scratch, p, (size_t)cap);
	ok &= IOMemoryDescriptor_writeBytes(b, PAGE - 3, NULL, 10) == 10 && bmt_all_bytes(p + PAGE - 3, 10, 0) &&
	      p[PAGE - 4] == scratch[PAGE - 4] && p[PAGE + 7] == scratch[PAGE + 7];
	BMT_OK(ok, "buffer: readBytes/writeBytes round trip; NULL source zero-fills across a page");
	bmt_fill(scratch, 64, 0xee);
	ok = IOMemoryDescriptor_readBytes(b, cap - 10, scratch, 11) == 0 &&
	     IOMemoryDescriptor_writeBytes(b, cap - 10, scratch, 11) == 0 &&
	     IOMemoryDescriptor_writeBytes(b, cap - 10, NULL, 11) == 0 &&
	     IOMemoryDescriptor_readBytes(b, cap, scratch, 1) == 0 &&
	     IOMemoryDescriptor_writeBytes(b, ~(IOByteCount)0 - 2, scratch, 4) == 0 &&
	     p[cap - 10] == (unsigned char)((cap - 10) * 7u + 43) &&
	     bmt_all_bytes(scratch, 64, 0xee);
	BMT_OK(ok, "buffer: out-of-range reads/writes: all or nothing, nothing copied");
	ok = IOMemoryDescriptor_prepare(b, 0) == kIOReturnSuccess && IOMemoryDescriptor_complete(b, 0) == kIOReturnSuccess &&
	     IOMemoryDescriptor_getPhysicalAddress(b) == pa_of(p) &&
	     IOMemoryDescriptor_complete(b, 0) == kIOReturnSuccess &&
	     IOMemoryDescriptor_getPhysicalAddress(b) == pa_of(p);
	BMT_OK(ok && bmt_panic_count == DBG(1), "buffer: prepare nests on the buffer's own wiring; an extra complete "
	       "cannot undo it (reported under IOMEM_DEBUG)");
	IOMemoryDescriptor_release(b);
	bmt_reports_reset();

	/* accessors: setLength, appendBytes, getBytesNoCopyRange */
	b = IOBufferMemoryDescriptor_withCapacity(64, kIODirectionInOut, false);
	p = b ? (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(b) : NULL;
	ok = p != NULL;
	if (ok) {
		IOBufferMemoryDescriptor_setLength(b, 65);
		ok &= IOMemoryDescriptor_getLength(b) == 64;
		IOBufferMemoryDescriptor_setLength(b, 10);
		ok &= IOMemoryDescriptor_getLength(b) == 10 && IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0) == pa_of(p) &&
		      seg == 10 && IOMemoryDescriptor_getPhysicalSegment(b, 10, &seg, 0) == 0 &&
		      IOMemoryDescriptor_readBytes(b, 5, scratch, 6) == 0;
		ok &= IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 0, 10) == p &&
		      IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 9, 1) == p + 9 &&
		      IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 9, 2) == NULL &&
		      IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 10, 0) == NULL &&
		      IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 1, ~(vm_size_t)0) == NULL;
		BMT_OK(ok, "buffer: setLength (ignored above capacity), segments end at the length, NoCopyRange bounds");
		ok = IOBufferMemoryDescriptor_appendBytes(b, "0123456789", 10) && IOMemoryDescriptor_getLength(b) == 20 &&
		     same(p + 10, "0123456789", 10);
		bmt_fill(scratch, 100, 0xee);
		ok &= IOBufferMemoryDescriptor_appendBytes(b, scratch, 100) && IOMemoryDescriptor_getLength(b) == 64 &&
		      p[63] == 0xee && !IOBufferMemoryDescriptor_appendBytes(b, NULL, 1) &&
		      IOBufferMemoryDescriptor_appendBytes(b, NULL, 0);
		ok &= IOMemoryDescriptor_readBytes(b, 10, scratch2, 10) == 10 && same(scratch2, "0123456789", 10);
		IOBufferMemoryDescriptor_setDirection(b, kIODirectionOut);
		ok &= IOMemoryDescriptor_getDirection(b) == kIODirectionOut && IOBufferMemoryDescriptor_getCapacity(b) == 64;
		BMT_OK(ok, "buffer: appendBytes grows, truncates at capacity, NULL only with length 0");
	}
	IOMemoryDescriptor_release(b);

	b = IOBufferMemoryDescriptor_withBytes(msg, sizeof msg, kIODirectionOut, false);
	ok = b != NULL && IOMemoryDescriptor_getLength(b) == sizeof msg &&
	     IOMemoryDescriptor_readBytes(b, 0, scratch, sizeof msg) == sizeof msg && same(scratch, msg, sizeof msg) &&
	     IOMemoryDescriptor_writeBytes(b, 0, "x", 1) == 0;
	IOMemoryDescriptor_release(b);
	b = IOBufferMemoryDescriptor_withBytes(msg, sizeof msg, kIODirectionOut, true);
	ok &= b != NULL && same(IOBufferMemoryDescriptor_getBytesNoCopy(b), msg, sizeof msg);
	IOMemoryDescriptor_release(b);
	BMT_OK(ok, "buffer: withBytes copies; an Out buffer is wired read-only");

	/* alignment and contiguity */
	ok = true;
	for (i = 0; i < 4; i++) {
		vm_offset_t al = (vm_offset_t)PAGE << i;      /* 4 KiB .. 32 KiB */
		bs[i] = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIODirectionInOut, 100 + (vm_size_t)i, al);
		p = bs[i] ? (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(bs[i]) : NULL;
		ok &= p != NULL && ((uintptr_t)p & (al - 1)) == 0 &&
		      (IOMemoryDescriptor_getPhysicalAddress(bs[i]) & (al - 1)) == 0 &&
		      IOMemoryDescriptor_getLength(bs[i]) == 100 + (IOByteCount)i;
	}
	for (i = 0; i < 4; i++)
		IOMemoryDescriptor_release(bs[i]);
	b = IOBufferMemoryDescriptor_withCapacity(3 * PAGE, kIODirectionIn, true);
	ok &= b != NULL && (IOMemoryDescriptor_getPhysicalAddress(b) & (4 * PAGE - 1)) == 0 &&
	      IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0) != 0 && seg == 3 * PAGE;
	IOMemoryDescriptor_release(b);
	b = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIODirectionIn, 100, 1);
	ok &= b != NULL && ((uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(b) & (PAGE - 1)) == 0;
	IOMemoryDescriptor_release(b);
	BMT_OK(ok, "buffer: inTaskWithOptions alignment 1..32 KiB (virtual and physical); contiguous withCapacity");

	/* pageable: needs prepare */
	b = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIOMemoryPageable | kIODirectionInOut, 3 * PAGE, 0);
	bmt_reports_reset();
	ok = b != NULL && IOMemoryDescriptor_getPhysicalAddress(b) == 0 && bmt_panic_count == DBG(1);
	if (b != NULL) {
		ok &= IOMemoryDescriptor_prepare(b, 0) == kIOReturnSuccess &&
		      walk_linear(b, (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(b)) == 1 &&
		      IOMemoryDescriptor_complete(b, 0) == kIOReturnSuccess;
	}
	IOMemoryDescriptor_release(b);
	BMT_OK(ok && bmt_panic_count == DBG(1), "buffer: pageable: no segment before prepare (debug: reported), walks after");
	bmt_reports_reset();

	/* bad input */
	ok = IOBufferMemoryDescriptor_withCapacity(0, kIODirectionIn, false) == NULL &&
	     IOBufferMemoryDescriptor_withOptions(kIODirectionIn, 0, 1) == NULL &&
	     IOBufferMemoryDescriptor_inTaskWithOptions(&other, 0, 4096, 1) == NULL &&
	     IOBufferMemoryDescriptor_inTaskWithOptions(NULL, 0, 4096, 1) == NULL &&
	     IOBufferMemoryDescriptor_withBytes(NULL, 10, kIODirectionIn, false) == NULL &&
	     IOBufferMemoryDescriptor_withBytes("x", 0, kIODirectionIn, false) == NULL &&
	     IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIOMemoryPageable | kIOMemoryPhysicallyContiguous,
	                                                4096, 1) == NULL &&
	     IOBufferMemoryDescriptor_withOptions(0, ~(vm_size_t)0, 1) == NULL &&
	     IOBufferMemoryDescriptor_withOptions(0, 4096, (vm_offset_t)0x80000001u) == NULL &&
	     IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, 0, ((mach_vm_size_t)1 << 32) + 4096, 0) == NULL;
	BMT_OK(ok && bmt_panic_count == 0, "buffer: bad input (capacity 0 / huge / > 4 GiB, task, NULL bytes, "
	       "pageable+contiguous, alignment) -> NULL");
	iomem_baremetal_heap_diagnostics(&d1);
	BMT_OK(IOBufferMemoryDescriptor_withCapacity(BMT_HEAP0_BYTES + BMT_HEAP1_BYTES, kIODirectionIn, false) == NULL,
	       "buffer: capacity above the heap -> NULL");
	iomem_baremetal_heap_diagnostics(&d1);
	BMT_OK(d1.used_blocks == d0.used_blocks && heap_ok() && bmt_panic_count == 0,
	       "buffer: every buffer's RAM went back to the heap, invariants hold");
}

/* Physical masks, relative to where the heap is (after translation). */
static void buffer_masks(void)
{
	IOBufferMemoryDescriptor *b;
	IOByteCount seg = 0;
	addr64_t pa;
	unsigned char *h = (unsigned char *)IOMalloc(16);
	uint64_t where = pa_of(h), mask_lo;
	bool ok;

	IOFree(h, 16);
	bmt_reports_reset();
	b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionInOut, 5 * PAGE, 0xFFFFF000ull);
	pa = b ? IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0) : 0;
	BMT_OK(b != NULL && seg == 5 * PAGE && pa + seg - 1 <= 0xFFFFFFFFull && (pa & (PAGE - 1)) == 0 &&
	       pa == pa_of(IOBufferMemoryDescriptor_getBytesNoCopy(b)),
	       "mask: below 4 GiB (the heap can): contiguous, page-aligned, below the mask");
	IOMemoryDescriptor_release(b);
	b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn, 100, 0xFFFF0000ull);
	pa = b ? IOMemoryDescriptor_getPhysicalAddress(b) : 1;
	BMT_OK(b != NULL && (pa & 0xFFFF) == 0 && pa + 99 <= 0xFFFFFFFFull && IOMemoryDescriptor_getLength(b) == 100,
	       "mask: alignment from the lowest mask bit (64 KiB)");
	IOMemoryDescriptor_release(b);
	/* a mask just below where the heap is (all ones below the top bit of
	 * its physical address): the heap cannot satisfy it */
	mask_lo = 0x2000;
	while (mask_lo <= where / 2)
		mask_lo <<= 1;                  /* the top bit of where */
	mask_lo = (mask_lo - 1) & ~(uint64_t)(PAGE - 1);
	b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn, PAGE, mask_lo);
	BMT_OK(b == NULL, "mask: below the heap's physical addresses (the heap cannot) -> NULL");
	IOMemoryDescriptor_release(b);
	ok = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn, 4096, 0xFF000ull) == NULL &&
	     IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIOMemoryPageable, 4096, 0xFFFFF000ull) == NULL;
	BMT_OK(ok, "mask: below 1 MiB -> NULL; pageable with a mask -> NULL");
	/* the lowest mask bit above 2^31: a 4 GiB alignment the heap cannot give */
	b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn, PAGE, 0xF00000000ull);
	pa = b ? IOMemoryDescriptor_getPhysicalAddress(b) : 0;
	BMT_OK(b == NULL || (pa & 0xFFFFFFFFull) == 0, "mask: lowest bit 2^32 -> 4 GiB aligned or NULL (not truncated)");
	IOMemoryDescriptor_release(b);
	BMT_OK(heap_ok() && bmt_panic_count == 0, "mask: heap invariants hold, no report");
}

/* ---- physical and device descriptors ------------------------------------ */

static void physical_cases(void)
{
	IOMemoryDescriptor *md, *s;
	IODeviceMemory *d, *ds, **arr;
	IOPhysicalRange pr[2];
	IOAddressRange ar[2];
	IODeviceMemory_InitElement list[3] = { { 0x1000, 0x100, 7 }, { 0x2000, 0x200, 8 }, { 0x3000, 0x300, 9 } };
	IODeviceMemory_InitElement bad[2] = { { 0x1000, 0x100, 1 }, { ~(IOPhysicalAddress)0 - 5, 0x100, 2 } };
	IOByteCount seg = 0;
	unsigned char *h = (unsigned char *)IOMallocAligned(2 * PAGE, PAGE);
	bool ok;
	int i;

	bmt_reports_reset();
	if (h == NULL) {
		BMT_OK(false, "physical: heap buffer");
		return;
	}
	/* a physical descriptor over heap RAM: bytes reach the RAM */
	fill_pattern(h, 2 * PAGE, 17);
	md = IOMemoryDescriptor_withPhysicalAddress(pa_of(h) + 3, 2 * PAGE - 3, kIODirectionInOut);
	ok = md != NULL && IOMemoryDescriptor_getPreparationID(md) > kIOPreparationIDAlwaysPrepared &&
	     IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == pa_of(h) + 3 && seg == 2 * PAGE - 3 &&
	     IOMemoryDescriptor_prepare(md, 0) == kIOReturnSuccess && IOMemoryDescriptor_complete(md, 0) == kIOReturnSuccess &&
	     IOMemoryDescriptor_complete(md, 0) == kIOReturnSuccess;
	ok &= IOMemoryDescriptor_readBytes(md, 0, scratch, 2 * PAGE - 3) == 2 * PAGE - 3 && same(scratch, h + 3, 2 * PAGE - 3);
	fill_pattern(scratch, 2 * PAGE, 18);
	ok &= IOMemoryDescriptor_writeBytes(md, 10, scratch, PAGE) == PAGE && same(h + 13, scratch, PAGE) &&
	      IOMemoryDescriptor_writeBytes(md, 0, NULL, 3) == 3 && bmt_all_bytes(h + 3, 3, 0);
	IOMemoryDescriptor_release(md);
	BMT_OK(ok && bmt_panic_count == 0, "physical: over heap RAM: always prepared, one segment, bytes via phys_to_virt");

	/* ranges coalesce; withOptions(IOPhysicalRange) */
	ar[0].address = pa_of(h); ar[0].length = 100;
	ar[1].address = pa_of(h) + 100; ar[1].length = 50;
	md = IOMemoryDescriptor_withAddressRanges(ar, 2, kIODirectionIn, NULL);
	ok = md != NULL && IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == pa_of(h) && seg == 150;
	IOMemoryDescriptor_release(md);
	pr[0].address = (IOPhysicalAddress)pa_of(h + PAGE); pr[0].length = 8;
	pr[1].address = (IOPhysicalAddress)pa_of(h); pr[1].length = 8;
	md = IOMemoryDescriptor_withOptions(pr, 2, 0, NULL, kIOMemoryTypePhysical | kIODirectionIn, NULL);
	ok &= md != NULL && IOMemoryDescriptor_getLength(md) == 16 &&
	      IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) == pa_of(h + PAGE) && seg == 8 &&
	      IOMemoryDescriptor_getPhysicalSegment(md, 8, &seg, 0) == pa_of(h) && seg == 8 &&
	      IOMemoryDescriptor_readBytes(md, 0, scratch, 16) == 16 && same(scratch, h + PAGE, 8) && same(scratch + 8, h, 8);
	IOMemoryDescriptor_release(md);
	BMT_OK(ok, "physical: adjacent ranges coalesce; IOPhysicalRange through withOptions");

	/* 64-bit physical addresses: segments above 4 GiB, never dereferenced */
	md = IOMemoryDescriptor_withPhysicalAddress(0x123456789000ull, 0x180000000ull, kIODirectionIn);
	ok = md != NULL && IOMemoryDescriptor_getLength(md) == 0x180000000ull &&
	     IOMemoryDescriptor_getPhysicalSegment(md, 0x100000010ull, &seg, 0) == 0x123456789000ull + 0x100000010ull &&
	     seg == 0x180000000ull - 0x100000010ull;
	if (IS32)    /* phys_to_virt has no address for it: fails cleanly */
		ok &= md != NULL && IOMemoryDescriptor_readBytes(md, 0, scratch, 16) == 0 &&
		      IOMemoryDescriptor_writeBytes(md, 0, NULL, 16) == 0;
	IOMemoryDescriptor_release(md);
	BMT_OK(ok, IS32 ? "physical: 64-bit addresses and lengths; 32-bit: bytes above 4 GiB fail cleanly (0)"
	                : "physical: 64-bit addresses and lengths");

	/* device memory */
	d = IODeviceMemory_withRange(0xFE000000u, 0x1000);
	ok = d != NULL && iomem_md_kind_of(d) == IOMEM_MD_DEVICE && IOMemoryDescriptor_getDirection(d) == kIODirectionNone &&
	     (IOMemoryDescriptor_getFlags(d) & kIOMemoryMapperNone) &&
	     IOMemoryDescriptor_getPhysicalSegment(d, 0x10, &seg, 0) == 0xFE000010u && seg == 0xff0;
	ds = d ? IODeviceMemory_withSubRange(d, 0x100, 0x20) : NULL;
	ok &= ds != NULL && iomem_md_getRetainCount(d) == 2 &&
	      IOMemoryDescriptor_getPhysicalSegment(ds, 0, &seg, 0) == 0xFE000100u && seg == 0x20 &&
	      IODeviceMemory_withSubRange(d, 0x1000, 1) == NULL;
	IOMemoryDescriptor_release(d);
	ok &= ds != NULL && IOMemoryDescriptor_getPhysicalAddress(ds) == 0xFE000100u;
	IOMemoryDescriptor_release(ds);
	BMT_OK(ok, "device: withRange / withSubRange, sub keeps the parent alive");
	arr = IODeviceMemory_arrayFromList(list, 3);
	ok = arr != NULL;
	for (i = 0; ok && i < 3; i++)
		ok &= IOMemoryDescriptor_getPhysicalAddress(arr[i]) == list[i].start &&
		      IOMemoryDescriptor_getLength(arr[i]) == list[i].length && IOMemoryDescriptor_getTag(arr[i]) == list[i].tag;
	iomem_device_memory_array_release(arr, 3);
	ok &= IODeviceMemory_arrayFromList(list, 0) == NULL && IODeviceMemory_arrayFromList(NULL, 3) == NULL &&
	      IODeviceMemory_arrayFromList(bad, 2) == NULL;
	iomem_device_memory_array_release(NULL, 0);
	BMT_OK(ok && bmt_panic_count == 0, "device: arrayFromList; one bad element fails the whole array");

	/* sub ranges of a physical parent */
	md = IOMemoryDescriptor_withPhysicalAddress(pa_of(h), 0x1000, kIODirectionIn);
	ok = md != NULL && IOSubMemoryDescriptor_withSubRange(NULL, 0, 1, 0) == NULL &&
	     IOSubMemoryDescriptor_withSubRange(md, 0x1001, 0, 0) == NULL &&
	     IOSubMemoryDescriptor_withSubRange(md, 0x800, 0x801, 0) == NULL &&
	     IOSubMemoryDescriptor_withSubRange(md, 0x10, ~(IOByteCount)0 - 8, 0) == NULL &&
	     IOSubMemoryDescriptor_withSubRange(md, (IOByteCount)1 << 32, 1, 0) == NULL;
	BMT_OK(ok, "sub: NULL parent, outside the parent, overflowing offset + length -> NULL");
	s = md ? IOSubMemoryDescriptor_withSubRange(md, 0x1000, 0, 0) : NULL;
	ok = s != NULL && IOMemoryDescriptor_getPhysicalSegment(s, 0, &seg, 0) == 0 && seg == 0;
	IOMemoryDescriptor_release(s);
	s = md ? IOSubMemoryDescriptor_withSubRange(md, 0x800, 0x800, 0) : NULL;
	ok &= s != NULL && IOMemoryDescriptor_getPhysicalSegment(s, 0x7ff, &seg, 0) == pa_of(h) + 0xfff && seg == 1 &&
	      IOMemoryDescriptor_getPhysicalSegment(s, 0x800, &seg, 0) == 0 &&
	      IOMemoryDescriptor_readBytes(s, 0x7f0, scratch, 16) == 16 && same(scratch, h + 0xff0, 16);
	BMT_OK(ok, "sub: zero length at the end allowed; segments clipped to the sub range");
	bmt_reports_reset();
	if (s != NULL)
		IOMemoryDescriptor_complete(s, 0);
	BMT_OK(bmt_panic_count == DBG(1), IOMEM__DEBUG ? "sub: debug: complete without prepare reported"
	                                              : "sub: release: complete without prepare ignored");
	IOMemoryDescriptor_release(s);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(h, 2 * PAGE);
}

/* ---- sub / multi / interleaved over virtual memory ----------------------- */

static void compose_cases(void)
{
	unsigned char *h = (unsigned char *)IOMallocAligned(4 * PAGE, PAGE), *pa, *pb;
	IOMemoryDescriptor *parent, *s, *c[3], *m, *a, *bb, *ok_md, *ro;
	IOInterleavedMemoryDescriptor *im;
	IOByteCount seg = 0, total, res = 0;
	bool ok;

	bmt_reports_reset();
	if (h == NULL) {
		BMT_OK(false, "compose: heap buffer");
		return;
	}
	fill_pattern(h, 4 * PAGE, 9);
	/* sub of a virtual parent: prepare forwards */
	parent = IOMemoryDescriptor_withAddressRange((uintptr_t)h, 4 * PAGE, kIODirectionInOut, kernel_task);
	if (parent != NULL)
		IOMemoryDescriptor_setTag(parent, 0x77);
	s = parent ? IOSubMemoryDescriptor_withSubRange(parent, PAGE + 5, 2 * PAGE, kIODirectionIn) : NULL;
	ok = s != NULL && iomem_md_kind_of(s) == IOMEM_MD_SUB && IOMemoryDescriptor_getTag(s) == 0x77 &&
	     (IOMemoryDescriptor_getFlags(s) & kIOMemoryThreadSafe) && IOMemoryDescriptor_getDirection(s) == kIODirectionIn &&
	     IOMemoryDescriptor_getPreparationID(s) == kIOPreparationIDUnprepared;
	ok &= s != NULL && IOMemoryDescriptor_prepare(s, 0) == kIOReturnSuccess &&
	      IOMemoryDescriptor_getPreparationID(s) == IOMemoryDescriptor_getPreparationID(parent) &&
	      walk_linear(s, h + PAGE + 5) == 1 &&
	      IOMemoryDescriptor_readBytes(s, 0, scratch, 2 * PAGE) == 2 * PAGE && same(scratch, h + PAGE + 5, 2 * PAGE) &&
	      IOMemoryDescriptor_getPageCounts(s, &res, NULL) == kIOReturnSuccess && res == 4 &&
	      IOMemoryDescriptor_complete(s, 0) == kIOReturnSuccess &&
	      IOMemoryDescriptor_getPreparationID(parent) == kIOPreparationIDUnprepared;
	BMT_OK(ok && bmt_panic_count == 0, "sub: over virtual memory: tag, flags, prepare forwarded, walk, bytes");
	ok = s != NULL && IOMemoryDescriptor_prepare(s, 0) == kIOReturnSuccess;
	IOMemoryDescriptor_release(s);
	BMT_OK(ok && bmt_panic_count == DBG(1) && parent != NULL &&
	       IOMemoryDescriptor_getPreparationID(parent) == kIOPreparationIDUnprepared,
	       "sub: release while prepared completes the parent (debug: reported)");
	IOMemoryDescriptor_release(parent);
	bmt_reports_reset();

	/* multi: never merges across children */
	c[0] = IOMemoryDescriptor_withPhysicalAddress(pa_of(h), PAGE, kIODirectionIn);
	c[1] = IOMemoryDescriptor_withPhysicalAddress(pa_of(h) + PAGE, PAGE, kIODirectionIn);   /* adjacent */
	c[2] = IOMemoryDescriptor_withPhysicalAddress(pa_of(h) + 3 * PAGE, 16, kIODirectionIn);
	if (c[1] != NULL)
		IOMemoryDescriptor_setTag(c[1], 5);
	m = IOMultiMemoryDescriptor_withDescriptors(c, 3, kIODirectionIn, false);
	ok = m != NULL && iomem_md_kind_of(m) == IOMEM_MD_MULTI && IOMemoryDescriptor_getTag(m) == 5 &&
	     iomem_md_getRetainCount(c[0]) == 2 && IOMemoryDescriptor_getLength(m) == 2 * PAGE + 16;
	IOMemoryDescriptor_release(c[0]);
	IOMemoryDescriptor_release(c[1]);
	IOMemoryDescriptor_release(c[2]);
	ok &= m != NULL && IOMemoryDescriptor_getPhysicalSegment(m, 0, &seg, 0) == pa_of(h) && seg == PAGE &&
	      IOMemoryDescriptor_getPhysicalSegment(m, PAGE + 0x800, &seg, 0) == pa_of(h) + PAGE + 0x800 && seg == 0x800 &&
	      IOMemoryDescriptor_getPhysicalSegment(m, 2 * PAGE + 8, &seg, 0) == pa_of(h) + 3 * PAGE + 8 && seg == 8 &&
	      IOMemoryDescriptor_getPhysicalSegment(m, 2 * PAGE + 16, &seg, 0) == 0 && seg == 0 &&
	      IOMemoryDescriptor_readBytes(m, 2 * PAGE - 4, scratch, 20) == 20 && same(scratch, h + 2 * PAGE - 4, 4) &&
	      same(scratch + 4, h + 3 * PAGE, 16) &&
	      IOMemoryDescriptor_prepare(m, 0) == kIOReturnSuccess &&
	      IOMemoryDescriptor_getPreparationID(m) > kIOPreparationIDAlwaysPrepared &&
	      IOMemoryDescriptor_complete(m, 0) == kIOReturnSuccess;
	IOMemoryDescriptor_release(m);
	BMT_OK(ok && bmt_panic_count == 0, "multi: physical children, no merge across them, bytes cross children");

	/* multi over buffers */
	c[0] = IOBufferMemoryDescriptor_withCapacity(PAGE + 10, kIODirectionInOut, false);
	c[1] = IOBufferMemoryDescriptor_withCapacity(2 * PAGE, kIODirectionInOut, false);
	m = IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionInOut, true);
	total = 3 * PAGE + 10;
	fill_pattern(scratch, (size_t)total, 4);
	ok = m != NULL && IOMemoryDescriptor_writeBytes(m, 0, scratch, total) == total &&
	     same(IOBufferMemoryDescriptor_getBytesNoCopy(c[1]), scratch + PAGE + 10, 2 * PAGE) &&
	     IOMemoryDescriptor_readBytes(m, 0, scratch2, total) == total && same(scratch, scratch2, (size_t)total) &&
	     IOMemoryDescriptor_getPageCounts(m, &res, NULL) == kIOReturnSuccess && res == 4;
	IOMemoryDescriptor_release(c[0]);
	IOMemoryDescriptor_release(c[1]);
	IOMemoryDescriptor_release(m);
	BMT_OK(ok, "multi: over two buffers: writeBytes/readBytes across the boundary");

	/* multi: bad input, prepare failure rolls back */
	c[0] = IOBufferMemoryDescriptor_withCapacity(100, kIODirectionIn, false);
	c[1] = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIOMemoryPageable | kIODirectionIn, 100, 0);
	c[2] = NULL;
	ok = IOMultiMemoryDescriptor_withDescriptors(NULL, 2, kIODirectionIn, false) == NULL &&
	     IOMultiMemoryDescriptor_withDescriptors(c, 0, kIODirectionIn, false) == NULL &&
	     IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionIn, false) == NULL &&
	     IOMultiMemoryDescriptor_withDescriptors(c + 1, 2, kIODirectionIn, false) == NULL;
	IOMemoryDescriptor_release(c[1]);
	c[1] = IOMemoryDescriptor_withPhysicalAddress(0x1000, ~(IOByteCount)0 - 0x2000, kIODirectionIn);
	c[2] = IOMemoryDescriptor_withPhysicalAddress(0x1000, 0x3000, kIODirectionIn);
	ok &= IOMultiMemoryDescriptor_withDescriptors(c + 1, 2, kIODirectionIn, false) == NULL &&
	      iomem_md_getRetainCount(c[0]) == 1 && iomem_md_getRetainCount(c[1]) == 1;
	IOMemoryDescriptor_release(c[0]);
	IOMemoryDescriptor_release(c[1]);
	IOMemoryDescriptor_release(c[2]);
	BMT_OK(ok && bmt_panic_count == 0, "multi: NULL / zero / NULL child / mixed pageable / overflowing length -> NULL");
	c[0] = IOMemoryDescriptor_withAddressRange((uintptr_t)h, 64, kIODirectionInOut, kernel_task);
	c[1] = IOMemoryDescriptor_withAddressRange((uintptr_t)h + 64, 64, kIODirectionOut, kernel_task);
	ok = c[0] && c[1] && IOMemoryDescriptor_prepare(c[1], kIODirectionOut) == kIOReturnSuccess;
	m = IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionInOut, false);
	ok &= m != NULL && IOMemoryDescriptor_prepare(m, kIODirectionIn) == kIOReturnNotWritable &&
	      c[0]->iomem__prepare_count == 0 && IOMemoryDescriptor_complete(m, 0) == kIOReturnSuccess;
	BMT_OK(ok && bmt_panic_count == DBG(1), "multi: a failed prepare rolls back the prepared children");
	IOMemoryDescriptor_complete(c[1], 0);
	IOMemoryDescriptor_release(c[0]);
	IOMemoryDescriptor_release(c[1]);
	IOMemoryDescriptor_release(m);
	bmt_reports_reset();

	/* interleaved */
	a = IOBufferMemoryDescriptor_withCapacity(2 * PAGE, kIODirectionInOut, false);
	bb = IOBufferMemoryDescriptor_withCapacity(2 * PAGE, kIODirectionInOut, false);
	im = IOInterleavedMemoryDescriptor_withCapacity(4, kIODirectionInOut);
	ok = a && bb && im && iomem_md_kind_of(im) == IOMEM_MD_INTERLEAVED;
	if (ok) {
		pa = (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(a);
		pb = (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(bb);
		bmt_fill(pa, 2 * PAGE, 1);
		bmt_fill(pb, 2 * PAGE, 2);
		pa[100] = 0xa0;
		pb[0] = 0xb0;
		ok &= IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 100, PAGE) &&
		      IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, bb, 0, PAGE) &&
		      IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, PAGE + 50, 50) &&
		      iomem_md_getRetainCount(a) == 3 && IOMemoryDescriptor_getLength(im) == 2 * PAGE + 50;
		total = 2 * PAGE + 50;
		ok &= IOMemoryDescriptor_readBytes(im, 0, scratch, total) == total && scratch[0] == 0xa0 &&
		      bmt_all_bytes(scratch + 1, PAGE - 1, 1) && scratch[PAGE] == 0xb0 &&
		      bmt_all_bytes(scratch + PAGE + 1, PAGE - 1, 2) && bmt_all_bytes(scratch + 2 * PAGE, 50, 1);
		ok &= IOMemoryDescriptor_getPhysicalSegment(im, PAGE - 1, &seg, 0) == pa_of(pa + 100 + PAGE - 1) && seg == 1 &&
		      IOMemoryDescriptor_getPhysicalSegment(im, total - 1, NULL, 0) == pa_of(pa + PAGE + 99);
		ok &= IOMemoryDescriptor_writeBytes(im, PAGE - 2, NULL, 4) == 4 && pa[100 + PAGE - 2] == 0 &&
		      pa[100 + PAGE - 1] == 0 && pb[0] == 0 && pb[1] == 0 && pb[2] == 2;
	}
	BMT_OK(ok && bmt_panic_count == 0, "interleaved: slices of two buffers: bytes, clipped segments, NULL length");
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(bb);
	IOMemoryDescriptor_release(im);

	a = IOMemoryDescriptor_withPhysicalAddress(pa_of(h), 0x1000, kIODirectionIn);
	im = IOInterleavedMemoryDescriptor_withCapacity(2, kIODirectionIn);
	ok = a && im && IOInterleavedMemoryDescriptor_withCapacity(0, kIODirectionIn) == NULL &&
	     !IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, NULL, 0, 1) &&
	     !IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0x800, 0x801) &&
	     !IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 8, ~(IOByteCount)0 - 4) &&
	     !IOInterleavedMemoryDescriptor_setMemoryDescriptor(a, a, 0, 1) &&
	     IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0, 0x10) &&
	     IOMemoryDescriptor_prepare(im, 0) == kIOReturnSuccess &&
	     !IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0, 0x10) &&
	     IOMemoryDescriptor_complete(im, 0) == kIOReturnSuccess &&
	     IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0x10, 0x10) &&
	     !IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0x20, 0x10) &&
	     IOMemoryDescriptor_getPreparationID(im) == kIOPreparationIDUnsupported &&
	     IOMemoryDescriptor_prepare(im, 0) == kIOReturnSuccess;
	if (im != NULL)
		IOInterleavedMemoryDescriptor_clearMemoryDescriptors(im, kIODirectionOut);
	ok &= im && IOMemoryDescriptor_getLength(im) == 0 && IOMemoryDescriptor_getDirection(im) == kIODirectionOut &&
	      iomem_md_getRetainCount(a) == 1 && IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0, 0x10) &&
	      IOMemoryDescriptor_complete(im, 0) == kIOReturnSuccess;
	BMT_OK(ok && bmt_panic_count == DBG(1), "interleaved: bad / full / prepared slices refused; clear while prepared");
	IOMemoryDescriptor_release(im);
	IOMemoryDescriptor_release(a);
	bmt_reports_reset();

	ok_md = IOMemoryDescriptor_withAddressRange((uintptr_t)h, 64, kIODirectionInOut, kernel_task);
	ro = IOMemoryDescriptor_withAddressRange((uintptr_t)h + 64, 64, kIODirectionOut, kernel_task);
	im = IOInterleavedMemoryDescriptor_withCapacity(4, kIODirectionInOut);
	ok = ok_md && ro && im && IOMemoryDescriptor_prepare(ro, kIODirectionOut) == kIOReturnSuccess &&
	     IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ok_md, 0, 64) &&
	     IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ok_md, 0, 32) &&
	     IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ro, 0, 64) &&
	     IOMemoryDescriptor_prepare(im, kIODirectionIn) == kIOReturnNotWritable &&
	     ok_md->iomem__prepare_count == 0 && ro->iomem__prepare_count == 1 &&
	     IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ok_md, 0, 1);
	if (ro != NULL)
		IOMemoryDescriptor_complete(ro, 0);
	IOMemoryDescriptor_release(im);
	IOMemoryDescriptor_release(ok_md);
	IOMemoryDescriptor_release(ro);
	BMT_OK(ok && bmt_panic_count == 0, "interleaved: a failed prepare rolls back every prepared slice");
	IOFreeAligned(h, 4 * PAGE);
	BMT_OK(heap_ok(), "compose: heap invariants hold");
}

/* ---- non-identity translation ------------------------------------------- */

static unsigned char win[2 * 4096] __attribute__((aligned(4096)));

static void translated_window(void)
{
	IOMemoryDescriptor *md;
	bool ok;

	/* only the first page of win is mapped: a physically contiguous
	 * segment that runs past it must not be copied through the mapping */
	bmt_fill(win, sizeof win, 0x77);
	xl_win_lo = pa_of(win);
	xl_win_hi = pa_of(win) + PAGE;
	md = IOMemoryDescriptor_withPhysicalAddress(pa_of(win) + PAGE - 16, 32, kIODirectionInOut);
	ok = md != NULL && IOMemoryDescriptor_readBytes(md, 0, scratch, 16) == 16 &&
	     IOMemoryDescriptor_readBytes(md, 0, scratch, 32) < 32 &&
	     IOMemoryDescriptor_writeBytes(md, 0, NULL, 32) < 32 &&
	     bmt_all_bytes(win + PAGE, PAGE, 0x77);
	IOMemoryDescriptor_release(md);
	xl_win_lo = xl_win_hi = 0;
	BMT_OK(ok, "translated: a segment running past phys_to_virt's mapping is not copied beyond it");
}

void bmt_suite_desc_translated(void)
{
	iomem_heap_diagnostics diag;

	/* the same memory as t_init.c's final description, plus the hooks */
	BMT_OK(iomem_baremetal_heap_diagnostics(&diag) == kIOReturnSuccess && diag.used_blocks == 0,
	       "translated: heap still empty after t_init");
	BMT_OK(bmt_desc_reinit(xl_v2p, xl_p2v) == kIOReturnSuccess,
	       "translated: re-init with a virt_to_phys/phys_to_virt pair (phys = virt + 0x40000000)");
	xl_offset = BMT_XLATE_OFFSET;
	BMT_OK(iomem__platform_virt_to_phys(sbuf) == (uintptr_t)sbuf + BMT_XLATE_OFFSET &&
	       iomem__platform_phys_to_virt((uintptr_t)sbuf + BMT_XLATE_OFFSET) == (void *)sbuf &&
	       iomem__platform_phys_to_virt(0x1000) == NULL, "translated: hooks in place");
	xl_v2p_calls = xl_p2v_calls = 0;
	general_over(sbuf, 2 * PAGE + 100, "translated: general descriptor over static memory");
	BMT_OK(xl_v2p_calls >= 3, "translated: wiring used virt_to_phys");
	{
		/* a physical descriptor has no virtual address: its bytes can only
		 * go through phys_to_virt (prepared virtual memory is copied through
		 * its own addresses) */
		IOMemoryDescriptor *pmd = IOMemoryDescriptor_withPhysicalAddress(
		        (IOPhysicalAddress)((uintptr_t)sbuf + BMT_XLATE_OFFSET), 64, kIODirectionInOut);
		int p2v = xl_p2v_calls;
		unsigned char pb[64];
		BMT_OK(pmd != NULL && IOMemoryDescriptor_readBytes(pmd, 0, pb, 64) == 64 &&
		       xl_p2v_calls > p2v && pb[0] == sbuf[0] && pb[63] == sbuf[63],
		       "translated: bytes of a physical descriptor used phys_to_virt");
		IOMemoryDescriptor_release(pmd);
	}
	general_ranges_prepare(sbuf);
	buffer_cases();
	buffer_masks();
	{
		IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn,
		                                                                               PAGE, 0x3FFFF000ull);
		BMT_OK(b == NULL, "translated: mask below 1 GiB: every heap address is above it after translation -> NULL");
		IOMemoryDescriptor_release(b);
	}
	physical_cases();
	compose_cases();
	translated_window();
	if (IS32) {
		IOMemoryDescriptor *md = IOMemoryDescriptor_withPhysicalAddress(BMT_XLATE_OFFSET + ((uint64_t)1 << 32),
		                                                                 64, kIODirectionInOut);
		BMT_OK(md != NULL && IOMemoryDescriptor_readBytes(md, 0, scratch, 64) == 0 &&
		       IOMemoryDescriptor_writeBytes(md, 0, NULL, 64) == 0,
		       "translated: 32-bit: phys_to_virt has no address above 4 GiB -> bytes fail cleanly");
		IOMemoryDescriptor_release(md);
	}
	xl_offset = 0;
	/* back to the default translation; the debug image keeps its table in
	 * the heap, so there the hooks stay (now identity) */
	{
		IOReturn r = bmt_desc_reinit(NULL, NULL);
		BMT_OK(IOMEM__DEBUG ? r == kIOReturnBusy : r == kIOReturnSuccess,
		       IOMEM__DEBUG ? "translated: debug: re-init Busy (debug table in the heap): hooks stay, identity"
		                    : "translated: back to the default translation");
	}
	BMT_OK(iomem__platform_virt_to_phys(sbuf) == (uintptr_t)sbuf, "translated: identity again");
}

void bmt_suite_desc(void)
{
	general_identity();
	general_bad_input();
	buffer_cases();
	buffer_masks();
	physical_cases();
	compose_cases();
}
