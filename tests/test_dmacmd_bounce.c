/* SPDX-License-Identifier: MIT */
/*
 * tests/test_dmacmd_bounce.c - IODMACommand's bouncing (reference §2.1,
 * "Bounce / double-buffer rules"): a 32-bit device and memory above 4 GiB
 * (the POSIX machine's HIGH layout, frames at 1 TiB) mixed with memory
 * below (CONTIGUOUS layout, frames at 2 GiB).
 *
 *   sparse bouncing      only the pages above the limit are replaced; the
 *                        others are used in place
 *   double buffer        forced by misalignment, by kForceDoubleBuffer
 *   copies               MD -> bounce at prepare for Out / None, bounce -> MD
 *                        at complete for In / None, none the other way,
 *                        none with synchronize = false;
 *                        synchronize(Out) / synchronize(In) force them
 *   readBytes/writeBytes go through the bounce copy
 *   kIterateOnly         never bounces: MessageTooLarge / NotAligned
 *   exhaustion           no low memory for the limit: NoResources, nothing
 *                        leaked, the command still usable
 *   with a mapper        (kMapped + a test IOMMU) high memory is mapped, not
 *                        bounced; one map per preparation, one unmap
 * The "device" reads and writes the bounce memory through the machine's
 * physical-to-virtual map (iomem_posix_phys_to_virt). Every byte is
 * checked, both ways, with distinct patterns.
 */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "test_desc_util.h"
#include "test_dma_ref.h"

/* the bounce pool keeps an empty chunk cached (LEAD 15:36): give it back
 * before the wired-pages and leak checks */
static void bounce_fini(void)
{
	iomem_bounce_pool_trim();
	desc_fini();
}

TestSuite(dmacmd_bounce, .fini = bounce_fini, .timeout = 120);

#define PG ((uint64_t)dma_ref_page())
#define LIMIT32 0xFFFFFFFFull
#define MAXS 256

static void pattern(void *p, uint64_t n, unsigned seed)
{
	unsigned char *b = p;
	for (uint64_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 31 + i * 13 + (i >> 9) + 1);
}

/* a buffer of @pages pages whose frames come from @layout, pattern @seed */
static IOMemoryDescriptor *buf(iomem_posix_layout layout, uint64_t pages, unsigned seed)
{
	desc_set_layout(layout, 0, 0);
	IOMemoryDescriptor *md = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, (vm_size_t)(pages * PG),
	                                                             (vm_offset_t)PG);
	cr_assert_not_null(md);
	pattern(IOBufferMemoryDescriptor_getBytesNoCopy(md), pages * PG, seed);
	return md;
}

/* the mix: HIGH 2 pages | low 2 pages | HIGH 1 page | low 1 page */
typedef struct mix {
	IOMemoryDescriptor *part[4], *md;
	unsigned char *want;     /* the bytes, concatenated */
	uint64_t len;
} mix;

static void mix_make(mix *m, IODirection dir)
{
	static const uint64_t pages[4] = { 2, 2, 1, 1 };
	static const iomem_posix_layout lay[4] = { IOMEM_POSIX_LAYOUT_HIGH, IOMEM_POSIX_LAYOUT_CONTIGUOUS,
	                                           IOMEM_POSIX_LAYOUT_HIGH, IOMEM_POSIX_LAYOUT_CONTIGUOUS };
	m->len = 6 * PG;
	m->want = malloc(m->len);
	uint64_t o = 0;
	for (int i = 0; i < 4; i++) {
		m->part[i] = buf(lay[i], pages[i], 100 + (unsigned)i);
		memcpy(m->want + o, IOBufferMemoryDescriptor_getBytesNoCopy(m->part[i]), pages[i] * PG);
		o += pages[i] * PG;
	}
	m->md = IOMultiMemoryDescriptor_withDescriptors(m->part, 4, dir, false);
	cr_assert_not_null(m->md);
	cr_assert_eq(IOMemoryDescriptor_prepare(m->md, kIODirectionNone), kIOReturnSuccess);
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
}

static void mix_free(mix *m)
{
	IOMemoryDescriptor_complete(m->md, kIODirectionNone);
	IOMemoryDescriptor_release(m->md);
	for (int i = 0; i < 4; i++)
		IOMemoryDescriptor_release(m->part[i]);
	free(m->want);
}

/* the descriptor's bytes now */
static unsigned char *md_bytes(IOMemoryDescriptor *md)
{
	uint64_t n = IOMemoryDescriptor_getLength(md);
	unsigned char *b = malloc(n);
	cr_assert_eq(IOMemoryDescriptor_readBytes(md, 0, b, n), n);
	return b;
}

/* the device side: copy to/from physical memory page by page */
static bool phys_io(uint64_t pa, void *p, uint64_t len, bool write)
{
	unsigned char *b = p;
	while (len > 0) {
		uint64_t n = PG - (pa & (PG - 1));
		if (n > len)
			n = len;
		unsigned char *v = iomem_posix_phys_to_virt(pa);
		if (v == NULL)
			return false;
		if (write)
			memcpy(v, b, n);
		else
			memcpy(b, v, n);
		pa += n;
		b += n;
		len -= n;
	}
	return true;
}

/* all the segments of the prepared command, small calls */
static uint32_t walk(IODMACommand *cmd, IODMACommand_Segment64 *s, uint64_t expect_len)
{
	UInt64 off = 0, total = 0;
	uint32_t n = 0;
	for (;;) {
		UInt32 k = 3;
		cr_assert_leq(n + 3, MAXS);
		IOReturn r = IODMACommand_gen64IOVMSegments(cmd, &off, s + n, &k);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess, "genIOVMSegments: %x", (unsigned)r);
		for (UInt32 i = 0; i < k; i++)
			total += s[n + i].fLength;
		n += k;
		cr_assert_eq(off, total);
	}
	cr_assert_eq(total, expect_len, "the segments cover %llu of %llu bytes", (unsigned long long)total,
	             (unsigned long long)expect_len);
	return n;
}

/* the device reads every segment: the bytes must be @want */
static void device_reads(const IODMACommand_Segment64 *s, uint32_t n, const unsigned char *want, const char *what)
{
	uint64_t off = 0;
	for (uint32_t i = 0; i < n; i++) {
		unsigned char *b = malloc(s[i].fLength);
		cr_assert(phys_io(s[i].fIOVMAddr, b, s[i].fLength, false), "%s: segment %u not RAM", what, i);
		for (uint64_t k = 0; k < s[i].fLength; k++)
			cr_assert_eq(b[k], want[off + k], "%s: segment %u {%llx,%llx} byte %llu (offset %llu): %02x, expected %02x",
			             what, i, (unsigned long long)s[i].fIOVMAddr, (unsigned long long)s[i].fLength,
			             (unsigned long long)k, (unsigned long long)(off + k), b[k], want[off + k]);
		free(b);
		off += s[i].fLength;
	}
}

/* the device writes @data through every segment */
static void device_writes(const IODMACommand_Segment64 *s, uint32_t n, const unsigned char *data)
{
	uint64_t off = 0;
	for (uint32_t i = 0; i < n; i++) {
		cr_assert(phys_io(s[i].fIOVMAddr, (void *)(data + off), s[i].fLength, true));
		off += s[i].fLength;
	}
}

static IODMACommand *dev32(uint32_t type)
{
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, type, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	return c;
}

/* which bytes of the mix live above 4 GiB (per page of the multi) */
static bool mix_high(const mix *m, uint64_t off)
{
	IOByteCount l;
	addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(m->md, off, &l, kIOMemoryMapperNone);
	cr_assert_neq(pa, 0);
	return pa > LIMIT32;
}

IOMEM_TEST(dmacmd_bounce, sparse_replaces_only_the_pages_above)
{
	mix m;
	IODMACommand_Segment64 s[MAXS];
	mix_make(&m, kIODirectionOut);
	IODMACommand *c = dev32(IODMACommand_kUnmapped);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), m.md, "sparse bouncing uses no bounce descriptor");
	uint32_t n = walk(c, s, m.len);
	uint64_t off = 0, bounced = 0;
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_leq(s[i].fIOVMAddr + s[i].fLength - 1, LIMIT32, "segment %u above 4 GiB", i);
		IOByteCount l;
		addr64_t client = IOMemoryDescriptor_getPhysicalSegment(m.md, off, &l, kIOMemoryMapperNone);
		if (client <= LIMIT32) {
			cr_assert_eq(s[i].fIOVMAddr, client, "segment %u (offset %llu): a reachable page was bounced", i,
			             (unsigned long long)off);
		} else {
			cr_assert_neq(s[i].fIOVMAddr, client);
			cr_assert_eq(s[i].fIOVMAddr & (PG - 1), client & (PG - 1), "the bounce page keeps the page offset");
			bounced += s[i].fLength;
		}
		off += s[i].fLength;
	}
	cr_assert_eq(bounced, 3 * PG, "bounced %llu bytes, the mix has 3 pages above 4 GiB", (unsigned long long)bounced);
	/* copy-in at prepare (Out): the device reads the descriptor's bytes */
	device_reads(s, n, m.want, "sparse Out");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	mix_free(&m);
}

/* prepare's copy-in and complete's copy-back for each direction */
static void direction_case(IODirection dir, bool copy_in, bool copy_back, bool sync_flag)
{
	mix m;
	IODMACommand_Segment64 s[MAXS];
	mix_make(&m, dir);
	IODMACommand *c = dev32(IODMACommand_kMapped);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 0, true, sync_flag), kIOReturnSuccess);
	uint32_t n = walk(c, s, m.len);
	/* what the device sees */
	unsigned char *seen = malloc(m.len);
	uint64_t off = 0;
	for (uint32_t i = 0; i < n; i++) {
		cr_assert(phys_io(s[i].fIOVMAddr, seen + off, s[i].fLength, false));
		off += s[i].fLength;
	}
	for (off = 0; off < m.len; off++) {
		if (!mix_high(&m, off))
			cr_assert_eq(seen[off], m.want[off], "dir %u: an unbounced byte %llu differs", dir, (unsigned long long)off);
		else if (copy_in)
			cr_assert_eq(seen[off], m.want[off], "dir %u: bounce byte %llu not copied in at prepare", dir,
			             (unsigned long long)off);
	}
	if (!copy_in) {
		/* no copy: the bounce pages must not hold the descriptor's bytes */
		uint64_t same = 0, high = 0;
		for (off = 0; off < m.len; off++)
			if (mix_high(&m, off)) {
				high++;
				same += seen[off] == m.want[off];
			}
		cr_assert_lt(same, high / 8, "dir %u: %llu of %llu bounced bytes copied in although they must not be", dir,
		             (unsigned long long)same, (unsigned long long)high);
	}
	/* the device writes a new pattern everywhere, then complete */
	unsigned char *dev = malloc(m.len);
	pattern(dev, m.len, 77);
	device_writes(s, n, dev);
	cr_assert_eq(IODMACommand_complete(c, true, sync_flag), kIOReturnSuccess);
	unsigned char *now = md_bytes(m.md);
	for (off = 0; off < m.len; off++) {
		if (!mix_high(&m, off))
			cr_assert_eq(now[off], dev[off], "dir %u: the device's write at %llu (in place) lost", dir, (unsigned long long)off);
		else if (copy_back)
			cr_assert_eq(now[off], dev[off], "dir %u: bounce byte %llu not copied back at complete", dir,
			             (unsigned long long)off);
		else
			cr_assert_eq(now[off], m.want[off], "dir %u: bounce byte %llu copied back although it must not be", dir,
			             (unsigned long long)off);
	}
	free(now);
	free(dev);
	free(seen);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	mix_free(&m);
}

IOMEM_TEST(dmacmd_bounce, copies_for_direction_out)   { direction_case(kIODirectionOut, true, false, true); }
IOMEM_TEST(dmacmd_bounce, copies_for_direction_in)    { direction_case(kIODirectionIn, false, true, true); }
IOMEM_TEST(dmacmd_bounce, copies_for_direction_inout) { direction_case(kIODirectionInOut, true, true, true); }
IOMEM_TEST(dmacmd_bounce, copies_for_direction_none)  { direction_case(kIODirectionNone, true, true, true); }
/* synchronize = false at prepare and complete: no copy at all */
IOMEM_TEST(dmacmd_bounce, no_copies_without_synchronize) { direction_case(kIODirectionInOut, false, false, false); }

IOMEM_TEST(dmacmd_bounce, synchronize_forces_copies)
{
	IODMACommand_Segment64 s[MAXS];
	/* Out descriptor: complete will not copy back; synchronize(In) does */
	{
		mix m;
		mix_make(&m, kIODirectionOut);
		IODMACommand *c = dev32(IODMACommand_kUnmapped);
		cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, true), kIOReturnSuccess);
		uint32_t n = walk(c, s, m.len);
		unsigned char *dev = malloc(m.len);
		pattern(dev, m.len, 55);
		device_writes(s, n, dev);
		cr_assert_eq(IODMACommand_synchronize(c, kIODirectionIn), kIOReturnSuccess);
		unsigned char *now = md_bytes(m.md);
		cr_assert(memcmp(now, dev, m.len) == 0, "synchronize(In) did not copy the bounce pages back");
		free(now);
		cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
		IODMACommand_release(c);
		free(dev);
		mix_free(&m);
	}
	/* In descriptor: prepare did not copy in; synchronize(Out) does */
	{
		mix m;
		mix_make(&m, kIODirectionIn);
		IODMACommand *c = dev32(IODMACommand_kUnmapped);
		cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, true), kIOReturnSuccess);
		/* the CPU changes the descriptor after prepare */
		unsigned char *cpu = malloc(m.len);
		pattern(cpu, m.len, 66);
		cr_assert_eq(IOMemoryDescriptor_writeBytes(m.md, 0, cpu, m.len), m.len);
		cr_assert_eq(IODMACommand_synchronize(c, kIODirectionOut), kIOReturnSuccess);
		uint32_t n = walk(c, s, m.len);
		device_reads(s, n, cpu, "after synchronize(Out)");
		cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
		IODMACommand_release(c);
		free(cpu);
		mix_free(&m);
	}
}

IOMEM_TEST(dmacmd_bounce, read_write_bytes_see_the_bounce_copy)
{
	mix m;
	IODMACommand_Segment64 s[MAXS];
	mix_make(&m, kIODirectionOut);
	IODMACommand *c = dev32(IODMACommand_kUnmapped);
	/* prepare a sub-range that starts and ends inside bounced pages */
	const uint64_t po = PG / 2, pl = 5 * PG;
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, po, pl, true, true), kIOReturnSuccess);
	uint32_t n = walk(c, s, pl);
	/* the device writes; readBytes must see its bytes (the bounce copy),
	 * while the descriptor (Out: no copy back yet) keeps its own */
	unsigned char *dev = malloc(pl), *got = malloc(pl);
	pattern(dev, pl, 88);
	device_writes(s, n, dev);
	cr_assert_eq(IODMACommand_readBytes(c, 0, got, pl), pl);
	cr_assert(memcmp(got, dev, pl) == 0, "readBytes does not go through the bounce pages");
	/* writeBytes lands where the device reads */
	unsigned char *cpu = malloc(pl);
	pattern(cpu, pl, 99);
	cr_assert_eq(IODMACommand_writeBytes(c, 0, cpu, pl), pl);
	device_reads(s, n, cpu, "after writeBytes");
	unsigned char *now = md_bytes(m.md);
	for (uint64_t k = 0; k < pl; k++)
		if (mix_high(&m, po + k))
			cr_assert_eq(now[po + k], m.want[po + k], "writeBytes reached a bounced descriptor byte %llu before complete",
			             (unsigned long long)(po + k));
	free(now);
	/* a sub-range read, clamped */
	cr_assert_eq(IODMACommand_readBytes(c, pl - 100, got, 1000), 100);
	cr_assert(memcmp(got, cpu + pl - 100, 100) == 0);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	free(dev);
	free(got);
	free(cpu);
	IODMACommand_release(c);
	mix_free(&m);
}

IOMEM_TEST(dmacmd_bounce, alignment_forces_a_double_buffer)
{
	/* two ranges at odd page offsets, low memory, no address limit: only
	 * the 16-byte alignment can be violated */
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	unsigned char *arena = IOMallocAligned((vm_size_t)(6 * PG), (vm_offset_t)PG);
	cr_assert_not_null(arena);
	pattern(arena, 6 * PG, 5);
	IOAddressRange r[2] = { { (mach_vm_address_t)(uintptr_t)(arena + 3), PG + 100 },
	                        { (mach_vm_address_t)(uintptr_t)(arena + 3 * PG + 7), 2 * PG - 123 } };
	uint64_t len = r[0].length + r[1].length;
	unsigned char *want = malloc(len), *dev = malloc(len);
	memcpy(want, arena + 3, r[0].length);
	memcpy(want + r[0].length, arena + 3 * PG + 7, r[1].length);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionInOut, kernel_task);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	IODMACommand_SegmentOptions o = { sizeof o, 0, 0, 0, 16, 1, 16 };
	IODMACommand *c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, true), kIOReturnSuccess);
	cr_assert_neq(IODMACommand_getIOMemoryDescriptor(c), md, "misaligned: the double buffer must be in use");
	cr_assert_not_null(IODMACommand_getIOMemoryDescriptor(c));
	cr_assert_eq(IODMACommand_getMemoryDescriptor(c), md, "getMemoryDescriptor stays the client's");
	IODMACommand_Segment64 s[MAXS];
	uint32_t n = walk(c, s, len);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(s[i].fIOVMAddr & 15, 0, "segment %u at %llx not 16-byte aligned", i, (unsigned long long)s[i].fIOVMAddr);
	device_reads(s, n, want, "double buffer copy-in");
	pattern(dev, len, 6);
	device_writes(s, n, dev);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert(memcmp(arena + 3, dev, r[0].length) == 0, "double buffer: copy-back of range 0");
	cr_assert(memcmp(arena + 3 * PG + 7, dev + r[0].length, r[1].length) == 0, "double buffer: copy-back of range 1");
	cr_assert_eq(arena[2], (unsigned char)(5 * 31 + 2 * 13 + 1), "copy-back wrote before the range");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	cr_assert_null(IODMACommand_getIOMemoryDescriptor(c));
	IODMACommand_release(c);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(arena, (vm_size_t)(6 * PG));
	free(want);
	free(dev);
}

IOMEM_TEST(dmacmd_bounce, force_double_buffer)
{
	mix m;
	IODMACommand_Segment64 s[MAXS];
	mix_make(&m, kIODirectionInOut);
	IODMACommand *c = dev32(IODMACommand_kUnmapped);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, PG, 4 * PG, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), m.md, "sparse first");
	/* the device writes into the sparse bounce; forcing the double buffer
	 * completes (copy back) and re-prepares (copy in) */
	uint32_t n = walk(c, s, 4 * PG);
	unsigned char *dev = malloc(4 * PG);
	pattern(dev, 4 * PG, 44);
	device_writes(s, n, dev);
	cr_assert_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnSuccess);
	const IOMemoryDescriptor *bounce = IODMACommand_getIOMemoryDescriptor(c);
	cr_assert_neq(bounce, m.md, "kForceDoubleBuffer: no double buffer");
	UInt64 po, pl;
	cr_assert_eq(IODMACommand_getPreparedOffsetAndLength(c, &po, &pl), kIOReturnSuccess);
	cr_assert_eq(po, PG, "re-prepared with another offset");
	cr_assert_eq(pl, 4 * PG);
	unsigned char *now = md_bytes(m.md);
	cr_assert(memcmp(now + PG, dev, 4 * PG) == 0, "the switch did not copy the device's bytes back");
	free(now);
	n = walk(c, s, 4 * PG);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_leq(s[i].fIOVMAddr + s[i].fLength - 1, LIMIT32);
	device_reads(s, n, dev, "double buffer after the switch");
	/* already double-buffered: success, same buffer */
	cr_assert_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), bounce);
	/* synchronize(In) copies the double buffer back */
	pattern(dev, 4 * PG, 45);
	device_writes(s, n, dev);
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionIn), kIOReturnSuccess);
	now = md_bytes(m.md);
	cr_assert(memcmp(now + PG, dev, 4 * PG) == 0, "synchronize(In) with the double buffer");
	cr_assert(memcmp(now, m.want, PG) == 0, "bytes before the prepared range changed");
	cr_assert(memcmp(now + 5 * PG, m.want + 5 * PG, PG) == 0, "bytes after the prepared range changed");
	free(now);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	/* an unbounced command can be forced too */
	IOMemoryDescriptor *low = buf(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 2, 7);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, low, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), low);
	cr_assert_eq(IODMACommand_synchronize(c, IODMACommand_kForceDoubleBuffer), kIOReturnSuccess);
	cr_assert_neq(IODMACommand_getIOMemoryDescriptor(c), low);
	n = walk(c, s, 2 * PG);
	device_reads(s, n, IOBufferMemoryDescriptor_getBytesNoCopy(low), "forced double buffer of low memory");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IOMemoryDescriptor_release(low);
	free(dev);
	IODMACommand_release(c);
	mix_free(&m);
}

IOMEM_TEST(dmacmd_bounce, iterate_only_never_bounces)
{
	mix m;
	IODMACommand_Segment64 s[8];
	mix_make(&m, kIODirectionInOut);
	IODMACommand *c = dev32(IODMACommand_kUnmapped | IODMACommand_kIterateOnly);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), m.md);
	UInt64 off = 0;
	UInt32 n = 8;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnMessageTooLarge, "the first page is above 4 GiB");
	cr_assert_eq(off, 0);
	cr_assert_eq(n, 8);
	/* the low part alone is fine */
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 2 * PG, 2 * PG, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_assert_eq(s[0].fIOVMAddr, IOMemoryDescriptor_getPhysicalSegment(m.md, 2 * PG, NULL, kIOMemoryMapperNone));
	/* In/Out synchronize: no-op successes */
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionIn), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_synchronize(c, kIODirectionOut), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	/* misaligned: NotAligned, no double buffer */
	IODMACommand_SegmentOptions o = { sizeof o, 0, 0, 0, 64, 1, 64 };
	c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped | IODMACommand_kIterateOnly, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, m.md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 8, 64, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), m.md);
	off = 0;
	n = 8;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnNotAligned);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	mix_free(&m);
}

IOMEM_TEST(dmacmd_bounce, exhaustion_no_resources)
{
	/* a 21-bit device (2 MiB): the machine has 256 frames of 4 KiB below
	 * 2 MiB (its low pool starts at 1 MiB), so 300 pages above cannot be
	 * bounced, sparse or double */
	if (PG != 4096)
		cr_skip_test("written for 4 KiB pages");
	IOMemoryDescriptor *hi = buf(IOMEM_POSIX_LAYOUT_HIGH, 300, 9);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 21, 0, IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	iomem_posix_machine_stats_t before, after;
	iomem_bounce_pool_trim();
	iomem_posix_machine_stats(&before);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, hi, true), kIOReturnNoResources);
	cr_assert_null(IODMACommand_getMemoryDescriptor(c), "a failed autoPrepare leaves the descriptor attached");
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, hi, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, 0, true, true), kIOReturnNoResources);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnNotReady, "NoResources left it active");
	iomem_bounce_pool_trim();   /* the pool's cached empty chunk is not the command's */
	iomem_posix_machine_stats(&after);
	cr_assert_eq(after.low_pages, before.low_pages, "a failed bounce kept %lld low pages",
	             (long long)(after.low_pages - before.low_pages));
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	/* still usable: memory below the limit needs no bounce */
	IOMemoryDescriptor *low = IOMemoryDescriptor_withPhysicalAddress(0x1F0000, 0x2000, kIODirectionInOut);
	cr_assert_not_null(low);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, low, true), kIOReturnSuccess);
	IODMACommand_Segment64 s[4];
	UInt64 off = 0;
	UInt32 n = 4;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_assert_eq(n, 1);
	cr_assert_eq(s[0].fIOVMAddr, 0x1F0000);
	cr_assert_eq(s[0].fLength, 0x2000);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(low);
	IOMemoryDescriptor_release(hi);
}

/* (bugs-dmacmd.md, dmatest 15:22 "preflight", fixed in 0577904): the preflight must look
 * at the segments the walk will emit (after the maxSegment cut and the
 * trims), not at the physical runs (reference bounce rule 1: "any segment
 * violating an alignment rule sets misaligned"). Here the run starts 3
 * bytes into a low buffer: cut at 512, the end trimmed back to a 16-byte
 * boundary leaves a 509-byte segment, which breaks fAlignmentLength 16 -
 * so the range must be double-buffered. The descriptor also holds a page
 * above 4 GiB (outside the prepared range), so checkAddressing holds and
 * the command is not in cursor mode under any reading of the reference. */
IOMEM_TEST(dmacmd_bounce, preflight_sees_segments_after_cuts)
{
	IOMemoryDescriptor *lo = buf(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 2, 21), *hi = buf(IOMEM_POSIX_LAYOUT_HIGH, 1, 22);
	IOMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(lo, 3, PG, kIODirectionInOut);
	cr_assert_not_null(sub);
	IOMemoryDescriptor *parts[2] = { sub, hi };
	IOMemoryDescriptor *md = IOMultiMemoryDescriptor_withDescriptors(parts, 2, kIODirectionInOut, false);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	IODMACommand_SegmentOptions o = { sizeof o, 32, 512, 0, 1, 16, 16 };
	IODMACommand *c = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &o, IODMACommand_kUnmapped, NULL, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, md, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 0, PG, true, true), kIOReturnSuccess);
	/* the oracle agrees that the client layout violates the length rule */
	{
		dma_ref_spec sp = { 0, 512, 0, 1, 16, 16, true, false };
		dma_ref_seg r[64];
		uint64_t off = 0;
		uint32_t k = 64;
		cr_assert_eq(dma_ref_gen(md, 0, PG, &sp, &off, r, &k), kIOReturnNotAligned, "the oracle's preflight");
	}
	cr_assert_neq(IODMACommand_getIOMemoryDescriptor(c), md, "misaligned segments but no double buffer");
	IODMACommand_Segment64 s[MAXS];
	UInt64 off = 0, total = 0;
	uint32_t n = 0;
	for (;;) {
		UInt32 k = 8;
		IOReturn r = IODMACommand_gen64IOVMSegments(c, &off, s + n, &k);
		if (r == kIOReturnOverrun)
			break;
		cr_assert_eq(r, kIOReturnSuccess, "genIOVMSegments %x for a command that may bounce", (unsigned)r);
		n += k;
	}
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(s[i].fLength & 15, 0, "segment %u length %llu is not a multiple of 16", i, (unsigned long long)s[i].fLength);
		cr_assert(i == 0 || (s[i].fIOVMAddr & 15) == 0, "segment %u start misaligned", i);
		total += s[i].fLength;
	}
	cr_assert_eq(total, PG);
	device_reads(s, n, (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(lo) + 3, "preflight double buffer");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_release(sub);
	IOMemoryDescriptor_release(lo);
	IOMemoryDescriptor_release(hi);
}

/* (bugs-dmacmd.md, dmatest 15:22 "double buffer above the limit", fixed
 * in 508070b): a
 * device with address bits = the page shift (4 KiB: the lowest allowed)
 * and memory above: no bounce memory exists that low (the low pool starts
 * at 1 MiB). prepare must refuse (NoResources) - it succeeds with a double
 * buffer the device cannot reach (its physical mask comes out 0, i.e.
 * unrestricted), and genIOVMSegments then fails with MessageTooLarge. */
IOMEM_TEST(dmacmd_bounce, double_buffer_must_be_reachable)
{
	IOMemoryDescriptor *hi = buf(IOMEM_POSIX_LAYOUT_HIGH, 1, 23);
	unsigned sh = 0;
	while (((uint64_t)1 << sh) < PG)
		sh++;
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, (UInt8)sh, 0, IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(c);
	IOReturn r = IODMACommand_setMemoryDescriptor(c, hi, true);
	if (r == kIOReturnSuccess) {
		IODMACommand_Segment64 s[8];
		UInt64 off = 0;
		UInt32 n = 8;
		IOReturn g = IODMACommand_gen64IOVMSegments(c, &off, s, &n);
		cr_assert_eq(g, kIOReturnSuccess, "prepare succeeded but genIOVMSegments returns %x (bounce at %s)", (unsigned)g,
		             IODMACommand_getIOMemoryDescriptor(c) != hi ? "a double buffer" : "sparse pages");
		for (UInt32 i = 0; i < n; i++)
			cr_assert_leq(s[i].fIOVMAddr + s[i].fLength, PG, "segment above the limit");
		cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	} else {
		cr_assert_eq(r, kIOReturnNoResources);
		cr_assert_null(IODMACommand_getMemoryDescriptor(c));
	}
	IODMACommand_release(c);
	IOMemoryDescriptor_release(hi);
}

/* (bugs-dmacmd.md, dmatest 15:22 "one bounce page per segment", fixed in
 * 0577904): reference §2.1 step a substitutes the bounce page "one page at
 * a time, remainder pushed back", so each bounced page is its own segment. */
IOMEM_TEST(dmacmd_bounce, sparse_one_page_per_segment)
{
	IOMemoryDescriptor *hi = buf(IOMEM_POSIX_LAYOUT_HIGH, 4, 31);
	IODMACommand *c = dev32(IODMACommand_kUnmapped);
	IODMACommand_Segment64 s[MAXS];
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, hi, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 100, 3 * PG, true, true), kIOReturnSuccess);
	uint32_t n = walk(c, s, 3 * PG);
	cr_assert_eq(n, 4, "%u segments for 4 bounced source pages", n);
	cr_assert_eq(s[0].fLength, PG - 100);
	cr_assert_eq(s[1].fLength, PG);
	cr_assert_eq(s[2].fLength, PG);
	cr_assert_eq(s[3].fLength, 100);
	device_reads(s, n, (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(hi) + 100, "one page per segment");
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(hi);
}

/* ---- with a mapper: the limit is the IOMMU's, nothing bounces ------------ */

typedef struct iova_ctx {
	int maps, unmaps;
	uint64_t off, len, addr, maplen;
	uint8_t bits;
	IOMemoryDescriptor *md;
} iova_ctx;

static uint64_t iv_page_size(IOMapper *m) { (void)m; return PG; }
static IOReturn iv_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t o, uint64_t l, uint32_t opt,
                       const IODMAMapSpecification *spec, IODMACommand *cmd, const void *pl, uint64_t *a, uint64_t *al)
{
	iova_ctx *x = iomem_mapper_getContext(m);
	IOByteCount sl;
	(void)opt; (void)cmd; (void)pl;
	x->maps++;
	x->md = md;
	x->off = o;
	x->len = l;
	x->bits = spec ? spec->numAddressBits : 0;
	addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, o, &sl, kIOMemoryMapperNone);
	*a = x->addr = 0x10000000ull + (pa & (PG - 1));   /* one IOVA run below 4 GiB */
	*al = x->maplen = ((pa & (PG - 1)) + l + PG - 1) & ~(PG - 1);
	return kIOReturnSuccess;
}
static IOReturn iv_unmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *cmd, uint64_t a, uint64_t l)
{
	iova_ctx *x = iomem_mapper_getContext(m);
	(void)md; (void)cmd;
	x->unmaps++;
	cr_assert_eq(a, x->addr, "iovmUnmapMemory with another address");
	cr_assert_eq(l, x->maplen, "iovmUnmapMemory with another length");
	return kIOReturnSuccess;
}
static uint64_t iv_to_phys(IOMapper *m, uint64_t a) { (void)m; (void)a; return 0; }
static const iomem_mapper_ops iv_ops = {
	.name = "dmacmd_bounce IOVA mapper", .getPageSize = iv_page_size, .iovmMapMemory = iv_map,
	.iovmUnmapMemory = iv_unmap, .mapToPhysicalAddress = iv_to_phys,
};

IOMEM_TEST(dmacmd_bounce, mapped_high_memory_is_not_bounced)
{
	iova_ctx x;
	memset(&x, 0, sizeof x);
	IOMapper *mp = iomem_mapper_withOps(&iv_ops, &x);
	cr_assert_not_null(mp);
	IOMemoryDescriptor *hi = buf(IOMEM_POSIX_LAYOUT_HIGH, 3, 41);
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, PG, IODMACommand_kMapped, 0, 1, mp, NULL);
	cr_assert_not_null(c);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(c, hi, false), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_prepare(c, 100, 2 * PG, true, true), kIOReturnSuccess);
	cr_assert_eq(x.maps, 1, "one iovmMapMemory per preparation");
	cr_assert_eq(x.md, hi, "the client's descriptor is mapped (no bounce)");
	cr_assert_eq(x.off, 100);
	cr_assert_eq(x.len, 2 * PG);
	cr_assert_eq(x.bits, 32, "the mapper is told the device's address bits");
	cr_assert_eq(IODMACommand_getIOMemoryDescriptor(c), hi, "bounced although the mapper reaches everything");
	/* segments: the IOVA run, split at maxSegment (PG) */
	IODMACommand_Segment64 s[8];
	UInt64 off = 0;
	UInt32 n = 8;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(c, &off, s, &n), kIOReturnSuccess);
	cr_assert_eq(n, 2);
	cr_assert_eq(s[0].fIOVMAddr, x.addr);
	cr_assert_eq(s[0].fLength, PG);
	cr_assert_eq(s[1].fIOVMAddr, x.addr + PG);
	cr_assert_eq(s[1].fLength, PG);
	cr_assert_eq(off, 2 * PG);
	/* nested prepare: no second mapping; the last complete unmaps once */
	cr_assert_eq(IODMACommand_prepare(c, 100, 2 * PG, true, true), kIOReturnSuccess);
	cr_assert_eq(x.maps, 1);
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(x.unmaps, 0, "unmapped before the last complete");
	cr_assert_eq(IODMACommand_complete(c, true, true), kIOReturnSuccess);
	cr_assert_eq(x.unmaps, 1);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(c, true), kIOReturnSuccess);
	cr_assert_eq(x.unmaps, 1);
	IODMACommand_release(c);
	IOMemoryDescriptor_release(hi);
	IOMapper_release(mp);
}
