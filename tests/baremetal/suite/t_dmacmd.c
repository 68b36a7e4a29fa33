/* SPDX-License-Identifier: MIT */
/*
 * t_dmacmd.c - IODMACommand on bare metal, under three translations set
 * through t_init.c's trampolines (bmt_xlate_v2p/p2v; the bounce arena is
 * identity-mapped in all three, it lies in the DMA window):
 *   identity         phys == virt
 *   shifted          phys = virt + 0x10000000 (still below 4 GiB)
 *   high             phys = virt + 4 GiB: every byte outside the bounce
 *                    arena is out of a 32-bit device's reach
 * Checked: segment generation against getPhysicalSegment (identity and
 * shifted), 32-bit bouncing through the bounce arena with every byte
 * compared in both directions, kNonCoherent prepare/complete calling the
 * cache maintenance (counted by a spy, then the real default instructions
 * run: DCCMVAC/DCIMVAC on M7, DC CVAC/CIVAC on A53), readBytes/writeBytes,
 * the DriverKit PrepareForDMA/CompleteDMA shapes, and bad inputs.
 */
#include "bmt.h"
#include "iomem_dma.h"

#define DPAGE ((IOByteCount)4096)
#define SHIFT ((IOPhysicalAddress64)0x10000000u)
#define HIGH  ((IOPhysicalAddress64)1 << 32)

static unsigned char dbuf[3 * 4096 + 256] __attribute__((aligned(64)));
static unsigned char tmp[3 * 4096 + 256];

/* ---- the translation ---------------------------------------------------- */
static IOPhysicalAddress64 dc_off;

static bool in_bounce(uintptr_t v)
{
	return v >= (uintptr_t)bmt_bounce_arena && v - (uintptr_t)bmt_bounce_arena < BMT_BOUNCE_BYTES;
}

static IOPhysicalAddress64 dc_v2p(const void *v)
{
	uintptr_t a = (uintptr_t)v;
	return in_bounce(a) ? (IOPhysicalAddress64)a : (IOPhysicalAddress64)a + dc_off;
}

static void *dc_p2v(IOPhysicalAddress64 p)
{
	if (p <= (IOPhysicalAddress64)UINTPTR_MAX && in_bounce((uintptr_t)p))
		return (void *)(uintptr_t)p;
	if (p < dc_off)
		return NULL;
	p -= dc_off;
	return p > (IOPhysicalAddress64)UINTPTR_MAX ? NULL : (void *)(uintptr_t)p;
}

static void xlate(IOPhysicalAddress64 off)
{
	dc_off = off;
	bmt_xlate_v2p = dc_v2p;
	bmt_xlate_p2v = dc_p2v;
}

/* ---- the cache spy ------------------------------------------------------ */
static struct { int flush, clean, inval; vm_size_t bytes; } spy;

static void dc_spy(unsigned op, const void *a, vm_size_t n)
{
	(void)a;
	if (op == IOMEM_BAREMETAL_CACHE_CLEAN)
		spy.clean++;
	else if (op == IOMEM_BAREMETAL_CACHE_INVALIDATE)
		spy.inval++;
	else
		spy.flush++;
	spy.bytes += n;
}

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31u + seed * 7u + (i >> 8));
}

static bool pattern_is(const unsigned char *p, size_t n, unsigned seed)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 31u + seed * 7u + (i >> 8)))
			return false;
	return true;
}

/* Segments of [0, len) of @md through a command with @maxseg, each
 * compared with getPhysicalSegment at the same offset; true if they agree
 * and cover the range exactly. */
static bool segments_match(IOMemoryDescriptor *md, IOByteCount len, UInt64 maxseg, UInt32 *nseg)
{
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, maxseg,
	                                                   IODMACommand_kMapped, 0, 1, NULL, NULL);
	IODMACommand_Segment64 seg[4];
	UInt64 off = 0, covered = 0;
	bool ok = cmd != NULL && IODMACommand_setMemoryDescriptor(cmd, md, true) == kIOReturnSuccess;
	*nseg = 0;
	while (ok) {
		UInt32 n = 4, i;
		IOReturn r = IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n);
		if (r == kIOReturnOverrun)
			break;
		ok = r == kIOReturnSuccess && n > 0;
		for (i = 0; ok && i < n; i++) {
			IOByteCount l = 0;
			addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, (IOByteCount)covered, &l, 0);
			ok = pa == seg[i].fIOVMAddr && seg[i].fLength <= l && seg[i].fLength != 0 &&
			     (maxseg == 0 || seg[i].fLength <= maxseg);
			covered += seg[i].fLength;
			(*nseg)++;
		}
	}
	ok = ok && covered == len;
	if (cmd != NULL) {
		IODMACommand_clearMemoryDescriptor(cmd, true);
		IODMACommand_release(cmd);
	}
	return ok;
}

static void segments_cases(const char *what, IOPhysicalAddress64 off)
{
	IOByteCount len = 2 * DPAGE + 300;
	IOMemoryDescriptor *md;
	UInt32 n1 = 0, n2 = 0;
	void *h;
	xlate(off);
	md = IOMemoryDescriptor_withAddress(dbuf + 7, len, kIODirectionInOut);
	BMT_OK(md != NULL && IOMemoryDescriptor_getPhysicalSegment(md, 0, NULL, 0) == (uintptr_t)(dbuf + 7) + off,
	       what);
	BMT_OK(md != NULL && segments_match(md, len, 0, &n1) && segments_match(md, len, 1000, &n2) && n2 >= len / 1000,
	       "dmacmd: static memory: segments == getPhysicalSegment (unlimited, and max 1000 bytes)");
	IOMemoryDescriptor_release(md);
	h = IOMalloc(5000);
	md = h != NULL ? IOMemoryDescriptor_withAddress((char *)h + 1, 4000, kIODirectionOut) : NULL;
	BMT_OK(md != NULL && segments_match(md, 4000, 512, &n1) && n1 >= 8,
	       "dmacmd: heap memory: segments == getPhysicalSegment (max 512 bytes)");
	IOMemoryDescriptor_release(md);
	IOFree(h, 5000);
}

/* The device view of a prepared command: the bytes at its segments. */
static bool device_view(IODMACommand *cmd, unsigned char *out, IOByteCount len, const unsigned char *in,
                        bool in_arena)
{
	IODMACommand_Segment32 seg[8];
	UInt64 off = 0, done = 0;
	for (;;) {
		UInt32 n = 8, i;
		IOReturn r = IODMACommand_gen32IOVMSegments(cmd, &off, seg, &n);
		if (r == kIOReturnOverrun)
			break;
		if (r != kIOReturnSuccess)
			return false;
		for (i = 0; i < n; i++) {
			unsigned char *v = (unsigned char *)dc_p2v(seg[i].fIOVMAddr);
			if (v == NULL || (in_arena && !in_bounce((uintptr_t)v)) || done + seg[i].fLength > len)
				return false;
			if (out != NULL)
				iomem__memcpy(out + done, v, seg[i].fLength);
			if (in != NULL)
				iomem__memcpy(v, in + done, seg[i].fLength);   /* the device writes */
			done += seg[i].fLength;
		}
	}
	return done == len;
}

static void bounce_cases(void)
{
	IOByteCount len = 2 * DPAGE + 333;
	IOMemoryDescriptor *md;
	IODMACommand *cmd;
	bool ok;

	xlate(HIGH);
	cmd = IODMACommand_withSpecification(kIODMACommandOutputHost32, 32, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
	BMT_OK(cmd != NULL && IODMACommand_getNumAddressBits(cmd) == 32, "bounce: 32-bit command");
	if (cmd == NULL)
		return;

	/* Out: the device reads a copy, in the bounce arena */
	pattern(dbuf + 3, len, 1);
	md = IOMemoryDescriptor_withAddress(dbuf + 3, len, kIODirectionOut);
	BMT_OK(md != NULL && IOMemoryDescriptor_getPhysicalSegment(md, 0, NULL, 0) >= HIGH,
	       "bounce: the buffer is above 4 GiB after translation");
	{
		IOReturn r = md != NULL ? IODMACommand_setMemoryDescriptor(cmd, md, true) : kIOReturnNoMemory;
		ok = r == kIOReturnSuccess;
		if (!ok)
			bmt_diag_u("bounce: setMemoryDescriptor returned", (uint64_t)(uint32_t)r);
	}
	BMT_OK(ok && IODMACommand_getIOMemoryDescriptor(cmd) != NULL, "bounce: prepared (bounced)");
	bmt_fill(tmp, sizeof tmp, 0);
	BMT_OK(ok && device_view(cmd, tmp, len, NULL, true) && pattern_is(tmp, len, 1),
	       "bounce: Out: every segment in the bounce arena, below 4 GiB; every byte copied in");
	pattern(tmp, len, 2);
	BMT_OK(ok && device_view(cmd, NULL, len, tmp, true), "bounce: Out: the device scribbles on the bounce copy");
	BMT_OK(IODMACommand_clearMemoryDescriptor(cmd, true) == kIOReturnSuccess && pattern_is(dbuf + 3, len, 1),
	       "bounce: Out: complete copies nothing back");
	IOMemoryDescriptor_release(md);

	/* In: the device writes the bounce copy, complete copies it back */
	bmt_fill(dbuf, sizeof dbuf, 0xEE);
	md = IOMemoryDescriptor_withAddress(dbuf + 3, len, kIODirectionIn);
	ok = md != NULL && IODMACommand_setMemoryDescriptor(cmd, md, true) == kIOReturnSuccess;
	pattern(tmp, len, 3);
	BMT_OK(ok && device_view(cmd, NULL, len, tmp, true), "bounce: In: the device writes every segment");
	BMT_OK(bmt_all_bytes(dbuf + 3, len, 0xEE), "bounce: In: the buffer untouched before complete");
	BMT_OK(IODMACommand_clearMemoryDescriptor(cmd, true) == kIOReturnSuccess && pattern_is(dbuf + 3, len, 3) &&
	       bmt_all_bytes(dbuf, 3, 0xEE) && bmt_all_bytes(dbuf + 3 + len, sizeof dbuf - 3 - len, 0xEE),
	       "bounce: In: complete copies every byte back, nothing outside");
	IOMemoryDescriptor_release(md);

	/* readBytes/writeBytes go through the bounce copy */
	md = IOMemoryDescriptor_withAddress(dbuf, len, kIODirectionInOut);
	ok = md != NULL && IODMACommand_setMemoryDescriptor(cmd, md, false) == kIOReturnSuccess &&
	     IODMACommand_prepare(cmd, 100, 1000, true, true) == kIOReturnSuccess;
	pattern(tmp, 1000, 4);
	BMT_OK(ok && IODMACommand_writeBytes(cmd, 0, tmp, 1000) == 1000 && IODMACommand_writeBytes(cmd, 990, tmp, 50) == 10,
	       "bounce: writeBytes clamps to the prepared length");
	bmt_fill(tmp, sizeof tmp, 0);
	BMT_OK(ok && IODMACommand_readBytes(cmd, 0, tmp, 990) == 990 && pattern_is(tmp, 990, 4) &&
	       IODMACommand_readBytes(cmd, 1000, tmp, 1) == 0,
	       "bounce: readBytes sees the bounce copy; at the end 0");
	BMT_OK(ok && device_view(cmd, tmp, 1000, NULL, true) && pattern_is(tmp, 990, 4),
	       "bounce: the device view holds what writeBytes wrote");
	BMT_OK(IODMACommand_complete(cmd, true, true) == kIOReturnSuccess && pattern_is(dbuf + 100, 990, 4),
	       "bounce: InOut complete copies the written bytes back");
	BMT_OK(IODMACommand_readBytes(cmd, 0, tmp, 10) == 0 && IODMACommand_writeBytes(cmd, 0, tmp, 10) == 0,
	       "bounce: read/writeBytes when not prepared -> 0");
	IODMACommand_clearMemoryDescriptor(cmd, true);
	IOMemoryDescriptor_release(md);
	IODMACommand_release(cmd);
}

static void noncoherent_cases(void)
{
	IODMACommand *cmd;
	IOMemoryDescriptor *md;
	xlate(0);
	spy.flush = spy.clean = spy.inval = 0;
	spy.bytes = 0;
	bmt_cache_spy = dc_spy;
	cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kNonCoherent, 0, 1,
	                                     NULL, NULL);
	md = IOMemoryDescriptor_withAddress(dbuf + 1, 5000, kIODirectionInOut);
	BMT_OK(cmd != NULL && md != NULL && IODMACommand_setMemoryDescriptor(cmd, md, false) == kIOReturnSuccess,
	       "noncoherent: command and descriptor");
	pattern(dbuf + 1, 5000, 5);
	BMT_OK(IODMACommand_prepare(cmd, 0, 0, true, true) == kIOReturnSuccess &&
	       spy.clean + spy.flush >= 1 && spy.inval == 0 && spy.bytes >= 5000,
	       "noncoherent: prepare(flushCache) cleans the range (IncoherentIOStore) through the cache hook");
	{
		int before = spy.clean + spy.flush + spy.inval;
		BMT_OK(IODMACommand_complete(cmd, true, true) == kIOReturnSuccess &&
		       spy.clean + spy.flush + spy.inval > before,
		       "noncoherent: complete(invalidateCache) maintains the range again (IncoherentIOFlush)");
		before = spy.clean + spy.flush + spy.inval;
		BMT_OK(IODMACommand_prepare(cmd, 0, 0, false, true) == kIOReturnSuccess &&
		       IODMACommand_complete(cmd, false, true) == kIOReturnSuccess &&
		       spy.clean + spy.flush + spy.inval == before,
		       "noncoherent: flushCache/invalidateCache false -> no maintenance");
	}
	BMT_OK(pattern_is(dbuf + 1, 5000, 5),
	       "noncoherent: the default maintenance ran after the spy (M7 SCB, A53 DC ops) without a fault, no byte lost");
	IODMACommand_clearMemoryDescriptor(cmd, true);
	IODMACommand_release(cmd);
	/* a coherent command does none */
	spy.flush = spy.clean = spy.inval = 0;
	cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped, 0, 1, NULL, NULL);
	BMT_OK(cmd != NULL && IODMACommand_setMemoryDescriptor(cmd, md, true) == kIOReturnSuccess &&
	       IODMACommand_clearMemoryDescriptor(cmd, true) == kIOReturnSuccess &&
	       spy.flush + spy.clean + spy.inval == 0, "noncoherent: a kMapped command does no cache maintenance");
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(md);
	bmt_cache_spy = NULL;
}

static void driverkit_cases(void)
{
	IODMACommandSpecification spec;
	IODMACommand *cmd = NULL;
	IOMemoryDescriptor *md;
	IOAddressSegment segs[32];
	uint32_t n = 32, i;
	uint64_t flags = 0, sum = 0, off = 1, len = 1;
	xlate(SHIFT);
	iomem__memset(&spec, 0, sizeof spec);
	spec.maxAddressBits = 64;
	BMT_OK(IODMACommand_Create(NULL, 0, &spec, &cmd) == kIOReturnSuccess && cmd != NULL, "driverkit: Create");
	IODMACommand_release(cmd);
	BMT_OK(IODMACommand_Create(NULL, 1, &spec, &cmd) == kIOReturnBadArgument && cmd == NULL &&
	       IODMACommand_Create(NULL, 0, NULL, &cmd) == kIOReturnBadArgument,
	       "driverkit: Create with options or without a specification -> BadArgument");
	if (IODMACommand_Create(NULL, 0, &spec, &cmd) != kIOReturnSuccess)
		return;
	md = IOMemoryDescriptor_withAddressRange((mach_vm_address_t)(uintptr_t)(dbuf + 9), 3 * DPAGE, kIODirectionIn,
	                                         kernel_task);
	BMT_OK(IODMACommand_PrepareForDMA(cmd, 0, md, 0, 0, &flags, &n, segs) == kIOReturnSuccess && n >= 1 &&
	       flags == kIOMemoryDirectionIn, "driverkit: PrepareForDMA (In: the device may write)");
	for (i = 0; i < n; i++)
		sum += segs[i].length;
	BMT_OK(segs[0].address == (uintptr_t)(dbuf + 9) + SHIFT && sum <= 3 * DPAGE && sum > 0,
	       "driverkit: segments carry the translated address");
	BMT_OK(IODMACommand_GetPreparation(cmd, &off, &len, NULL) == kIOReturnSuccess && off == 0 && len == 3 * DPAGE,
	       "driverkit: GetPreparation");
	n = 32;
	BMT_OK(IODMACommand_PrepareForDMA(cmd, 0, md, 0, 0, NULL, &n, segs) == kIOReturnBusy,
	       "driverkit: PrepareForDMA while prepared -> Busy");
	BMT_OK(IODMACommand_CompleteDMA(cmd, 0) == kIOReturnSuccess && IODMACommand_CompleteDMA(cmd, 0) == kIOReturnNotReady,
	       "driverkit: CompleteDMA, then NotReady");
	n = 0;
	BMT_OK(IODMACommand_PrepareForDMA(cmd, 0, md, 0, 0, NULL, &n, segs) == kIOReturnBadArgument &&
	       IODMACommand_PrepareForDMA(NULL, 0, md, 0, 0, NULL, &n, segs) == kIOReturnBadArgument,
	       "driverkit: PrepareForDMA with 0 segments or NULL command -> BadArgument");
	IOMemoryDescriptor_release(md);
	IODMACommand_release(cmd);
}

static void bad_inputs(void)
{
	IODMACommand_Segment64 seg[2];
	UInt64 off = 0;
	UInt32 n = 2;
	IODMACommand *cmd;
	BMT_OK(IODMACommand_withSpecification(NULL, 32, 0, 0, 0, 1, NULL, NULL) == NULL &&
	       IODMACommand_withSpecification(kIODMACommandOutputHost32, 40, 0, 0, 0, 1, NULL, NULL) == NULL &&
	       IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, 0, 0, 3, NULL, NULL) == NULL &&
	       IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, 7, 0, 1, NULL, NULL) == NULL,
	       "bad: no output function, 40 bits on a 32-bit output, alignment 3, mapping type 7 -> NULL");
	cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, 0, 0, 1, NULL, NULL);
	BMT_OK(cmd != NULL && IODMACommand_prepare(cmd, 0, 0, true, true) == kIOReturnNotReady &&
	       IODMACommand_complete(cmd, true, true) == kIOReturnNotReady &&
	       IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnNotReady,
	       "bad: no descriptor: prepare/complete/gen -> NotReady");
	BMT_OK(IODMACommand_prepare(NULL, 0, 0, true, true) == kIOReturnBadArgument &&
	       IODMACommand_complete(NULL, true, true) == kIOReturnBadArgument &&
	       IODMACommand_setMemoryDescriptor(NULL, NULL, false) == kIOReturnBadArgument &&
	       IODMACommand_gen64IOVMSegments(NULL, &off, seg, &n) == kIOReturnBadArgument,
	       "bad: NULL command -> BadArgument");
	{
		IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(dbuf, 100, kIODirectionOut);
		BMT_OK(md != NULL && IODMACommand_setMemoryDescriptor(cmd, md, false) == kIOReturnSuccess &&
		       IODMACommand_prepare(cmd, 50, 100, true, true) == kIOReturnBadArgument,
		       "bad: prepare beyond the descriptor -> BadArgument");
		n = 0;
		off = 0;
		BMT_OK(IODMACommand_prepare(cmd, 0, 0, true, true) == kIOReturnSuccess &&
		       IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnBadArgument,
		       "bad: gen with *numSegments 0 on a prepared command -> BadArgument");
		n = 2;
		off = 100;
		BMT_OK(IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnOverrun && off == 100,
		       "bad: gen at the prepared end -> Overrun (the normal end), offset unchanged");
		IODMACommand_clearMemoryDescriptor(cmd, true);
		IOMemoryDescriptor_release(md);
	}
	IODMACommand_release(cmd);
}

void bmt_suite_dmacmd(void)
{
	segments_cases("dmacmd: identity: descriptor at the CPU address", 0);
	segments_cases("dmacmd: shifted: descriptor at virt + 0x10000000", SHIFT);
	bounce_cases();
	noncoherent_cases();
	driverkit_cases();
	bad_inputs();
	iomem_bounce_pool_trim();
	bmt_xlate_v2p = NULL;
	bmt_xlate_p2v = NULL;
	BMT_OK(iomem_baremetal_heap_check(NULL) == kIOReturnSuccess, "dmacmd: heap invariants hold");
}
