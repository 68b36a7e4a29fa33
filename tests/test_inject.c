/* SPDX-License-Identifier: MIT */
/*
 * tests/test_inject.c - allocation-failure injection (issue #12, part 2).
 *
 * Every case is one public operation. The walk runs it with the N-th
 * allocation point failing (iomem_debug_fail_allocations(N, 1)), for
 * N = 0, 1, ... until the operation passes fewer than N + 1 points (the
 * injection no longer fires), and a second time with every point from the
 * N-th on failing (so the error paths' own clean-up never needs memory).
 * Each time it checks that
 *   - the call failed with its documented error (NULL, false, an IOReturn
 *     in the case's list) whenever the injection fired, and succeeded
 *     otherwise;
 *   - nothing leaked (the debug layer's table is empty, no page is wired in
 *     the software machine, LeakSanitizer in the asan preset);
 *   - the objects involved still work: the case's check() uses them
 *     (prepare, walk against the machine's translation, read/write, range
 *     invariants) with the injection disarmed.
 * Adding a scenario = one inject_case (setup/op/check/teardown) and one
 * INJECT(name) line. Without IOMEM_DEBUG the hook does not exist: each case
 * runs once, unarmed, and must succeed.
 */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"
#include "iomem_map.h"
#include "test_desc_util.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

TestSuite(inject, .fini = desc_fini, .timeout = 120);

/* What a case works on: made by setup (unarmed), used by op (armed),
 * checked and released (unarmed). */
typedef struct inj {
	unsigned char      *buf;         /* user memory, IOMallocAligned */
	size_t              buf_bytes;
	IOMemoryDescriptor *md[4];       /* inputs (children, parents...) */
	IOMemoryDescriptor *out;         /* what op created */
	IORangeAllocator   *ra;
	IODMACommand       *cmd;
	IOMemoryMap        *map;
	IOMemoryCursor     *cursor;
	IOMapper           *mapper;
	uint64_t            iova, iova_len;
	IORangeScalar       units[64];   /* ranges op or setup took */
	unsigned            nunits;
	IOReturn            ret;
} inj;

typedef struct inject_case {
	const char *name;
	void     (*setup)(inj *s);
	IOReturn (*op)(inj *s);          /* kIOReturnSuccess or the error */
	void     (*check)(inj *s, bool op_ok);
	void     (*teardown)(inj *s);
	IOReturn   errors[4];            /* the documented errors (0-terminated) */
	bool       may_absorb;           /* a fired injection may still succeed
	                                  * (a documented fallback: IODMACommand
	                                  * double-buffers when sparse bouncing
	                                  * cannot get its pages) */
} inject_case;

#define PAGE DESC_PAGE

static void inj_buf(inj *s, size_t pages)
{
	s->buf_bytes = pages * PAGE;
	s->buf = (unsigned char *)IOMallocAligned(s->buf_bytes, PAGE);
	cr_assert_not_null(s->buf);
	desc_fill(s->buf, s->buf_bytes, 5);
}

static void inj_release_all(inj *s)
{
	for (int i = 0; i < 4; i++)
		if (s->md[i] != NULL)
			IOMemoryDescriptor_release(s->md[i]);
	if (s->out != NULL)
		IOMemoryDescriptor_release(s->out);
	if (s->ra != NULL)
		IORangeAllocator_release(s->ra);
	if (s->cmd != NULL)
		IODMACommand_release(s->cmd);
	if (s->map != NULL)
		IOMemoryMap_release(s->map);
	if (s->cursor != NULL)
		IOMemoryCursor_release(s->cursor);
	if (s->mapper != NULL) {
		if (s->iova_len != 0)
			IOMapper_iovmUnmapMemory(s->mapper, s->md[0], NULL, s->iova, s->iova_len);
		IOMapper_release(s->mapper);
	}
	if (s->buf != NULL)
		IOFreeAligned(s->buf, s->buf_bytes);
	memset(s, 0, sizeof *s);
}

/* A descriptor works: prepared, its walk matches the machine's translation
 * of @va (if given), and its bytes read back as written. */
static void inj_md_works(IOMemoryDescriptor *md, unsigned char *va)
{
	IOByteCount len = IOMemoryDescriptor_getLength(md), off = 0, seg;
	unsigned char tmp[256], back[256];
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	while (off < len) {
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
		cr_assert(pa != 0 && seg > 0 && seg <= len - off, "segment at %llu", (unsigned long long)off);
		if (va != NULL)
			cr_assert_eq(pa, iomem_posix_virt_to_phys(va + off));
		off += seg;
	}
	if (len > 0) {
		IOByteCount n = len < sizeof tmp ? len : sizeof tmp;
		desc_fill(tmp, sizeof tmp, (uint32_t)len);
		cr_assert_eq(IOMemoryDescriptor_writeBytes(md, len - n, tmp, n), n);
		cr_assert_eq(IOMemoryDescriptor_readBytes(md, len - n, back, n), n);
		cr_assert_arr_eq(back, tmp, n);
	}
	cr_assert_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
}

static void check_out_works(inj *s, bool ok)
{
	if (ok)
		inj_md_works(s->out, NULL);
	for (int i = 0; i < 4; i++)
		if (s->md[i] != NULL)
			inj_md_works(s->md[i], NULL);
}

/* ---- descriptors -------------------------------------------------------- */

static void setup_buf5(inj *s)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 3);
	inj_buf(s, 5);
}

static IOReturn op_with_address(inj *s)
{
	s->out = IOMemoryDescriptor_withAddress(s->buf + 100, 4 * PAGE, kIODirectionInOut);
	return s->out ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_with_address(inj *s, bool ok)
{
	if (ok)
		inj_md_works(s->out, s->buf + 100);
	/* the memory itself is untouched and can still be described */
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(s->buf, s->buf_bytes, kIODirectionInOut);
	cr_assert_not_null(md);
	inj_md_works(md, s->buf);
	IOMemoryDescriptor_release(md);
}

static IOReturn op_ranges_threadsafe(inj *s)
{
	IOAddressRange r[3] = {
		{ (uintptr_t)s->buf + 10, PAGE },
		{ (uintptr_t)s->buf + 3 * PAGE, 2 * PAGE },
		{ (uintptr_t)s->buf + PAGE + 7, 100 },
	};
	s->out = IOMemoryDescriptor_withAddressRanges(r, 3, kIODirectionInOut | kIOMemoryThreadSafe,
	                                              kernel_task);
	return s->out ? kIOReturnSuccess : kIOReturnNoMemory;
}

static IOReturn op_physical(inj *s)
{
	IOAddressRange r[3] = {
		{ 0x100000, 3 * PAGE }, { 0x100000 + 3 * PAGE, PAGE }, { 0x900000, 2 * PAGE },
	};
	(void)s;
	s->out = IOMemoryDescriptor_withAddressRanges(r, 3, kIODirectionInOut, NULL);
	return s->out ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_physical(inj *s, bool ok)
{
	IOByteCount seg;
	if (!ok)
		return;
	cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(s->out, 0, &seg, 0), 0x100000);
	cr_assert_eq(seg, 4 * PAGE);
	cr_assert_eq(IOMemoryDescriptor_getPhysicalSegment(s->out, 4 * PAGE, &seg, 0), 0x900000);
}

/* prepare of an existing descriptor: its state must survive a failure */
static void setup_unprepared(inj *s)
{
	setup_buf5(s);
	s->md[0] = IOMemoryDescriptor_withAddressRange((uintptr_t)s->buf + 1, 5 * PAGE - 2,
	                                               kIODirectionInOut | kIOMemoryThreadSafe, kernel_task);
	cr_assert_not_null(s->md[0]);
}

static IOReturn op_prepare(inj *s)
{
	return IOMemoryDescriptor_prepare(s->md[0], kIODirectionNone);
}

static void check_prepare(inj *s, bool ok)
{
	if (ok) {
		inj_md_works(s->md[0], s->buf + 1);    /* nested prepare */
		cr_assert_eq(IOMemoryDescriptor_complete(s->md[0], kIODirectionNone), kIOReturnSuccess);
	} else {
		cr_assert_eq(IOMemoryDescriptor_getPreparationID(s->md[0]), kIOPreparationIDUnprepared);
		cr_assert_eq(iomem_posix_virt_to_phys(s->buf + 1), 0, "nothing stays wired");
	}
	inj_md_works(s->md[0], s->buf + 1);
}

static IOReturn op_buffer_contig(inj *s)
{
	s->out = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task,
	        kIODirectionInOut | kIOMemoryPhysicallyContiguous | kIOMemoryThreadSafe, 3 * PAGE,
	        0xFFFFF000ull);
	return s->out ? kIOReturnSuccess : kIOReturnNoMemory;
}

static IOReturn op_buffer_pageable(inj *s)
{
	s->out = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut | kIOMemoryPageable, 3 * PAGE + 5, 1);
	return s->out ? kIOReturnSuccess : kIOReturnNoMemory;
}

static IOReturn op_buffer_bytes(inj *s)
{
	static const char text[] = "the bytes of a buffer descriptor";
	s->out = IOBufferMemoryDescriptor_withBytes(text, sizeof text, kIODirectionInOut, false);
	return s->out ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void setup_parent(inj *s)
{
	setup_buf5(s);
	s->md[0] = IOMemoryDescriptor_withAddressRange((uintptr_t)s->buf, 5 * PAGE, kIODirectionInOut,
	                                               kernel_task);
	cr_assert_not_null(s->md[0]);
}

static IOReturn op_sub_prepare(inj *s)
{
	IOReturn r;
	s->out = IOSubMemoryDescriptor_withSubRange(s->md[0], PAGE + 3, 2 * PAGE, kIODirectionInOut);
	if (s->out == NULL)
		return kIOReturnNoMemory;
	r = IOMemoryDescriptor_prepare(s->out, kIODirectionNone);
	if (r == kIOReturnSuccess)
		IOMemoryDescriptor_complete(s->out, kIODirectionNone);
	return r;
}

static void setup_children(inj *s)
{
	setup_buf5(s);
	s->md[0] = IOMemoryDescriptor_withAddressRange((uintptr_t)s->buf, 2 * PAGE, kIODirectionInOut,
	                                               kernel_task);
	s->md[1] = IOBufferMemoryDescriptor_withCapacity(PAGE + 9, kIODirectionInOut, false);
	s->md[2] = IOMemoryDescriptor_withAddressRange((uintptr_t)s->buf + 2 * PAGE + 5, 2 * PAGE,
	                                               kIODirectionInOut, kernel_task);
	cr_assert(s->md[0] && s->md[1] && s->md[2]);
}

static IOReturn op_multi_prepare(inj *s)
{
	IOReturn r;
	s->out = IOMultiMemoryDescriptor_withDescriptors(s->md, 3, kIODirectionInOut, false);
	if (s->out == NULL)
		return kIOReturnNoMemory;
	r = IOMemoryDescriptor_prepare(s->out, kIODirectionNone);
	if (r == kIOReturnSuccess)
		IOMemoryDescriptor_complete(s->out, kIODirectionNone);
	return r;
}

static IOReturn op_interleaved_prepare(inj *s)
{
	IOReturn r;
	s->out = IOInterleavedMemoryDescriptor_withCapacity(3, kIODirectionInOut);
	if (s->out == NULL)
		return kIOReturnNoMemory;
	for (int i = 0; i < 3; i++)
		cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(s->out, s->md[i], 1, PAGE));
	r = IOMemoryDescriptor_prepare(s->out, kIODirectionNone);
	if (r == kIOReturnSuccess)
		IOMemoryDescriptor_complete(s->out, kIODirectionNone);
	return r;
}

static void teardown_all(inj *s) { inj_release_all(s); }

static IODeviceMemory **dev_array;

static IOReturn op_device_array(inj *s)
{
	static const IODeviceMemory_InitElement list[3] = {
		{ 0xfe000000u, 0x1000, 1 }, { 0xfe100000u, 0x2000, 2 }, { 0xfe200000u, 0x10, 3 },
	};
	(void)s;
	dev_array = IODeviceMemory_arrayFromList(list, 3);
	return dev_array ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_device_array(inj *s, bool ok)
{
	(void)s;
	if (!ok)
		return;
	cr_assert_eq(IOMemoryDescriptor_getPhysicalAddress(dev_array[1]), 0xfe100000u);
	cr_assert_eq(IOMemoryDescriptor_getTag(dev_array[2]), 3);
	iomem_device_memory_array_release(dev_array, 3);
	dev_array = NULL;
}

static addr64_t custom_seg(IOMemoryDescriptor *md, IOByteCount offset, IOByteCount *length, IOOptionBits o)
{
	(void)o;
	if (offset >= IOMemoryDescriptor_getLength(md)) {
		if (length)
			*length = 0;
		return 0;
	}
	if (length)
		*length = IOMemoryDescriptor_getLength(md) - offset;
	return 0x4000 + offset;
}

static const iomem_md_ops custom_ops = { "inject", custom_seg, NULL, NULL, NULL, NULL, NULL, NULL };

static IOReturn op_custom(inj *s)
{
	s->out = iomem_md_withOps(&custom_ops, s, 3 * PAGE, kIODirectionInOut | kIOMemoryThreadSafe);
	return s->out ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_custom(inj *s, bool ok)
{
	if (ok)
		cr_assert_eq(iomem_md_getContext(s->out), s);
}

/* ---- IORangeAllocator --------------------------------------------------- */

static IOReturn op_range_create(inj *s)
{
	s->ra = IORangeAllocator_withRange(0xFFFF, 16, 4, kLocking | IOMEM_RANGE_CACHE);
	return s->ra ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_range_create(inj *s, bool ok)
{
	IORangeScalar r;
	if (!ok)
		return;
	cr_assert(IORangeAllocator_allocate(s->ra, 100, &r, 0));
	IORangeAllocator_deallocate(s->ra, r, 100);
	cr_assert_eq(IORangeAllocator_getFreeCount(s->ra), 0x10000);
	cr_assert(iomem_range_invariants_hold(s->ra));
}

/* growth: capacity 1, each allocation that splits a fragment needs a slot */
static void setup_range_full(inj *s)
{
	s->ra = IORangeAllocator_withRange(0xFFFFF, 1, 1, 0);
	cr_assert_not_null(s->ra);
}

static IOReturn op_range_grow(inj *s)
{
	/* allocateRange in the middle splits a fragment: the slot array grows */
	for (s->nunits = 0; s->nunits < 12; s->nunits++) {
		IORangeScalar start = 0x1000 + (IORangeScalar)s->nunits * 0x2000;
		if (!IORangeAllocator_allocateRange(s->ra, start, 0x100))
			return kIOReturnNoMemory;
		s->units[s->nunits] = start;
	}
	return kIOReturnSuccess;
}

static void check_range_grow(inj *s, bool ok)
{
	(void)ok;
	cr_assert(iomem_range_invariants_hold(s->ra));
	/* exactly what op took is taken: nothing more, nothing lost */
	cr_assert_eq(IORangeAllocator_getFreeCount(s->ra), 0x100000 - (IORangeScalar)s->nunits * 0x100);
	for (unsigned i = 0; i < s->nunits; i++)
		IORangeAllocator_deallocate(s->ra, s->units[i], 0x100);
	cr_assert_eq(IORangeAllocator_getFragmentCount(s->ra), 1);
	cr_assert_eq(IORangeAllocator_getFreeCount(s->ra), 0x100000);
	/* and it can grow now */
	for (unsigned i = 0; i < 12; i++)
		cr_assert(IORangeAllocator_allocateRange(s->ra, 0x1000 + (IORangeScalar)i * 0x2000, 0x100));
	cr_assert(iomem_range_invariants_hold(s->ra));
}

/* the IOVA entry point reports kIOReturnNoMemory for a failed growth */
static IOReturn op_range_below(inj *s)
{
	IORangeScalar r;
	IOReturn ret = kIOReturnSuccess;
	s->nunits = 0;
	for (unsigned i = 0; i < 8 && ret == kIOReturnSuccess; i++) {
		/* alignment leaves a gap in front: a split */
		ret = iomem__range_alloc_below(s->ra, 0x10, 0x1000, 0xFFFFF, &r);
		if (ret == kIOReturnSuccess)
			s->units[s->nunits++] = r;
	}
	return ret;
}

static void setup_range_below(inj *s)
{
	s->ra = IORangeAllocator_withRange(0xFFFFF, 1, 1, 0);
	cr_assert_not_null(s->ra);
	cr_assert(IORangeAllocator_allocateRange(s->ra, 0, 1));   /* misalign the free start */
}

static void check_range_below(inj *s, bool ok)
{
	(void)ok;
	cr_assert(iomem_range_invariants_hold(s->ra));
	cr_assert_eq(IORangeAllocator_getFreeCount(s->ra), 0xFFFFF - (IORangeScalar)s->nunits * 0x10);
	for (unsigned i = 0; i < s->nunits; i++)
		IORangeAllocator_deallocate(s->ra, s->units[i], 0x10);
	cr_assert_eq(IORangeAllocator_getFreeCount(s->ra), 0xFFFFF);
}

/* deallocate needing a new fragment: dropped, counted (as IOKit) */
static void setup_range_dealloc(inj *s)
{
	s->ra = IORangeAllocator_withRange(0, 1, 1, 0);    /* empty */
	cr_assert_not_null(s->ra);
}

static IOReturn op_range_dealloc(inj *s)
{
	for (unsigned i = 0; i < 6; i++)
		IORangeAllocator_deallocate(s->ra, (IORangeScalar)i * 0x100, 0x10);
	return IORangeAllocator_getFragmentCount(s->ra) == 6 ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_range_dealloc(inj *s, bool ok)
{
	iomem_range_stats st;
	cr_assert(iomem_range_invariants_hold(s->ra));
	cr_assert_eq(iomem_range_get_stats(s->ra, &st), kIOReturnSuccess);
	cr_assert_eq(st.fragments + st.lost_ranges, 6, "every range kept or counted as lost");
	cr_assert_eq(st.lost_units, st.lost_ranges * 0x10);
	cr_assert_eq(ok, st.lost_ranges == 0);
	/* with IOMEM_DEBUG each lost range is reported, as documented */
	cr_assert_eq(iomem_test_panic_count, IOMEM__DEBUG ? (int)st.lost_ranges : 0);
	if (st.lost_ranges)
		iomem_test_expect_report_has("the range is lost");
	iomem_test_panic_count = 0;
}


/* ---- IODMACommand, IOMemoryMap, cursors ---------------------------------- */

static IOReturn op_dmacmd_create(inj *s)
{
	s->cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kMapped, 0, 1,
	                                        NULL, NULL);
	return s->cmd ? kIOReturnSuccess : kIOReturnNoMemory;
}

/* The segments of the prepared command: all below 4 GiB, tiling the
 * descriptor, and the bytes the device would read are the descriptor's. */
static void inj_cmd_works(IODMACommand *c, IOMemoryDescriptor *md)
{
	IODMACommand_Segment64 seg[64];
	UInt64 off = 0, total = 0, len = IOMemoryDescriptor_getLength(md);
	unsigned char want[64], got[64];
	while (off < len) {
		UInt32 n = 64;
		IOReturn r = IODMACommand_gen64IOVMSegments(c, &off, seg, &n);
		cr_assert_eq(r, kIOReturnSuccess, "gen64IOVMSegments: %#x", (unsigned)r);
		cr_assert_gt(n, 0);
		for (UInt32 i = 0; i < n; i++) {
			cr_assert_leq(seg[i].fIOVMAddr + seg[i].fLength - 1, 0xFFFFFFFFull, "segment above 4 GiB");
			if (i == 0 && total == 0) {
				cr_assert(iomem__platform_phys_copy(seg[i].fIOVMAddr, got, sizeof got, false));
				cr_assert_eq(IOMemoryDescriptor_readBytes(md, 0, want, sizeof want), sizeof want);
				cr_assert_arr_eq(got, want, sizeof got, "the device reads the descriptor's bytes");
			}
			total += seg[i].fLength;
		}
	}
	cr_assert_eq(total, len);
}

/* a buffer above 4 GiB: a 32-bit device needs bouncing */
static void setup_high_buffer(inj *s)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_HIGH, 0, 0);
	s->md[0] = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, 3 * PAGE, PAGE);
	cr_assert_not_null(s->md[0]);
	desc_fill(IOBufferMemoryDescriptor_getBytesNoCopy(s->md[0]), 3 * PAGE, 9);
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
	s->cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, 0, 1,
	                                        NULL, NULL);
	cr_assert_not_null(s->cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(s->cmd, s->md[0], false), kIOReturnSuccess);
}

static IOReturn op_dmacmd_bounce(inj *s)
{
	IOReturn r = IODMACommand_prepare(s->cmd, 0, 0, true, true);
	if (r == kIOReturnSuccess) {
		inj_cmd_works(s->cmd, s->md[0]);
		cr_assert_eq(IODMACommand_complete(s->cmd, true, true), kIOReturnSuccess);
	}
	return r;
}

static void check_dmacmd_bounce(inj *s, bool ok)
{
	(void)ok;
	/* the command and its descriptor work afterwards */
	cr_assert_eq(IODMACommand_prepare(s->cmd, 0, 0, true, true), kIOReturnSuccess);
	inj_cmd_works(s->cmd, s->md[0]);
	cr_assert_eq(IODMACommand_complete(s->cmd, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(s->cmd, false), kIOReturnSuccess);
	inj_md_works(s->md[0], NULL);
}

static void setup_map_buffer(inj *s)
{
	s->md[0] = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, 2 * PAGE + 100, 1);
	cr_assert_not_null(s->md[0]);
	desc_fill(IOBufferMemoryDescriptor_getBytesNoCopy(s->md[0]), 2 * PAGE + 100, 4);
}

static IOReturn op_map(inj *s)
{
	s->map = IOMemoryDescriptor_map(s->md[0], kIOMapAnywhere);
	return s->map ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_map(inj *s, bool ok)
{
	unsigned char *b = IOBufferMemoryDescriptor_getBytesNoCopy(s->md[0]);
	IOMemoryMap *m = ok ? s->map : IOMemoryDescriptor_map(s->md[0], kIOMapAnywhere);
	unsigned char *v;
	cr_assert_not_null(m);
	v = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
	cr_assert_arr_eq(v, b, 2 * PAGE + 100, "the mapping shows the buffer");
	v[PAGE + 3] ^= 0xff;
	cr_assert_eq(b[PAGE + 3], v[PAGE + 3], "and aliases it");
	if (!ok)
		IOMemoryMap_release(m);
	inj_md_works(s->md[0], NULL);
}

static IOReturn op_cursor(inj *s)
{
	s->cursor = IOMemoryCursor_withSpecification(IONaturalMemoryCursor_outputSegment, PAGE, 0, 1);
	return s->cursor ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_cursor(inj *s, bool ok)
{
	IOPhysicalSegment seg[8];
	IOByteCount done = 0;
	IOMemoryDescriptor *md;
	if (!ok)
		return;
	md = IOBufferMemoryDescriptor_withCapacity(3 * PAGE, kIODirectionInOut, false);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryCursor_genPhysicalSegments(s->cursor, md, 0, seg, 8, 0, &done), 3);
	cr_assert_eq(done, 3 * PAGE);
	IOMemoryDescriptor_release(md);
}


/* ---- the software IOMMU (IOVA space, page table) -------------------------- */

static IOReturn op_swiommu_create(inj *s)
{
	s->mapper = iomem_swiommu_create(NULL);
	return s->mapper ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_swiommu_create(inj *s, bool ok)
{
	if (ok)
		cr_assert_eq(IOMapper_getPageSize(s->mapper), PAGE);
}

static void setup_iova(inj *s)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	s->md[0] = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, 5 * PAGE, PAGE);
	s->mapper = iomem_swiommu_create(NULL);
	cr_assert(s->md[0] && s->mapper);
}

/* every page of the mapping translates to the descriptor's */
static void inj_iova_works(inj *s, uint64_t iova)
{
	for (IOByteCount o = 0; o < 5 * PAGE; o += PAGE)
		cr_assert_eq(IOMapper_mapToPhysicalAddress(s->mapper, iova + o),
		             IOMemoryDescriptor_getPhysicalSegment(s->md[0], o, NULL, kIOMemoryMapperNone),
		             "IOVA page %llu", (unsigned long long)(o / PAGE));
}

static IOReturn op_iova(inj *s)
{
	uint64_t a = 0, l = 0;
	IOReturn r = IOMapper_iovmMapMemory(s->mapper, s->md[0], 0, 5 * PAGE,
	                                    kIODMAMapReadAccess | kIODMAMapWriteAccess, NULL, NULL, NULL, &a, &l);
	if (r == kIOReturnSuccess) {
		s->iova = a;
		s->iova_len = l;
	}
	return r;
}

static void check_iova(inj *s, bool ok)
{
	uint64_t a = 0, l = 0;
	if (ok) {
		inj_iova_works(s, s->iova);
		cr_assert_eq(IOMapper_iovmUnmapMemory(s->mapper, s->md[0], NULL, s->iova, s->iova_len), kIOReturnSuccess);
		s->iova_len = 0;
	}
	/* the mapper works afterwards: map, translate, unmap */
	cr_assert_eq(IOMapper_iovmMapMemory(s->mapper, s->md[0], 0, 5 * PAGE, kIODMAMapReadAccess, NULL, NULL, NULL,
	                                    &a, &l), kIOReturnSuccess);
	inj_iova_works(s, a);
	cr_assert_eq(IOMapper_iovmUnmapMemory(s->mapper, s->md[0], NULL, a, l), kIOReturnSuccess);
}

/* a mapped command: prepare maps through the IOMMU */
static void setup_mapped_cmd(inj *s)
{
	setup_iova(s);
	s->cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kMapped, 0, 1,
	                                        s->mapper, NULL);
	cr_assert_not_null(s->cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(s->cmd, s->md[0], false), kIOReturnSuccess);
}

static IOReturn op_mapped_prepare(inj *s)
{
	IOReturn r = IODMACommand_prepare(s->cmd, 0, 0, true, true);
	if (r == kIOReturnSuccess)
		cr_assert_eq(IODMACommand_complete(s->cmd, true, true), kIOReturnSuccess);
	return r;
}

static void check_mapped_prepare(inj *s, bool ok)
{
	IODMACommand_Segment64 seg[8];
	UInt64 off = 0;
	UInt32 n = 8;
	(void)ok;
	cr_assert_eq(IODMACommand_prepare(s->cmd, 0, 0, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_gen64IOVMSegments(s->cmd, &off, seg, &n), kIOReturnSuccess);
	cr_assert_eq(n, 1, "one IOVA segment for the scattered buffer");
	inj_iova_works(s, seg[0].fIOVMAddr);
	cr_assert_eq(IODMACommand_complete(s->cmd, true, true), kIOReturnSuccess);
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(s->cmd, false), kIOReturnSuccess);
}


/* ---- the POSIX software DMA engine (controller object, channels, threads) -- */

static IODMAController *engine;

static IOReturn op_engine_create(inj *s)
{
	iomem_posix_dma_engine_desc d = { 0x1234u, 2, 0, 0 };
	(void)s;
	engine = iomem_posix_dma_engine_create(&d);
	return engine ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_engine_create(inj *s, bool ok)
{
	(void)s;
	if (ok)
		IODMAController_release(engine);     /* stops and joins its threads */
	engine = NULL;
}

/* ---- engine transfers: event sources, starts with bounce / IOMMU, and the
 * completion and notification delivery ------------------------------------
 *
 * A fresh engine per run (setup, unarmed) with a device buffer on channel
 * 0 (and 1); the op is armed; the engine's own threads allocate nothing, so
 * the allocation points are those of the op's thread, in order. */

#define ENG_PHANDLE 0x5EEDu
#define ENG_BYTES   (3 * PAGE)

typedef struct eng_state {
	IODMAController  *engine;
	IODMAEventSource *es;
	unsigned char    *dev, *want, *got;   /* ENG_BYTES each */
	pthread_mutex_t   m;
	pthread_cond_t    c;
	int               completions, notifications;
	IOReturn          status, notify_status;
	IOByteCount       count, notify_count;
} eng_state;

static eng_state E;
static const UInt32 eng_parent[] = { ENG_PHANDLE };
static iomem_dma_provider eng_dev = { 0x5EED0001u, eng_parent, 1, NULL };

static void eng_completion(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                           AbsoluteTime ts)
{
	eng_state *e = owner;
	(void)es; (void)cmd; (void)ts;
	pthread_mutex_lock(&e->m);
	e->completions++;
	e->status = st;
	e->count = n;
	pthread_cond_broadcast(&e->c);
	pthread_mutex_unlock(&e->m);
}

static void eng_notification(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                             AbsoluteTime ts)
{
	eng_state *e = owner;
	(void)es; (void)cmd; (void)ts;
	pthread_mutex_lock(&e->m);
	e->notifications++;
	e->notify_status = st;
	e->notify_count = n;
	pthread_mutex_unlock(&e->m);
}

/* wait until @n completions were delivered in all */
static void eng_wait_completions(int n)
{
	pthread_mutex_lock(&E.m);
	while (E.completions < n)
		pthread_cond_wait(&E.c, &E.m);
	pthread_mutex_unlock(&E.m);
}

static void eng_new_engine(void)
{
	iomem_posix_dma_engine_desc d = { ENG_PHANDLE, 2, 0, 0 };
	memset(&E, 0, sizeof E);
	pthread_mutex_init(&E.m, NULL);
	pthread_cond_init(&E.c, NULL);
	E.dev = malloc(ENG_BYTES);
	E.want = malloc(ENG_BYTES);
	E.got = malloc(ENG_BYTES);
	cr_assert(E.dev && E.want && E.got);
	E.engine = iomem_posix_dma_engine_create(&d);
	cr_assert_not_null(E.engine);
	cr_assert_eq(iomem_dma_controller_register(E.engine), kIOReturnSuccess);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(E.engine, 0, E.dev, ENG_BYTES), kIOReturnSuccess);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(E.engine, 1, E.dev, ENG_BYTES), kIOReturnSuccess);
}

static IODMAEventSource *eng_new_es(void)
{
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&E, &eng_dev, eng_completion, eng_notification, 0);
	cr_assert_not_null(es);
	return es;
}

/* One transfer each way through @es on @cmd (prepared, covering @md): the
 * device sees the memory's bytes, the memory the device's; each completes
 * once with its notify's values. */
static void eng_transfer_works(IODMAEventSource *es, IODMACommand *cmd, IOMemoryDescriptor *md)
{
	unsigned char *want = E.want, *got = E.got;
	IOByteCount len = IOMemoryDescriptor_getLength(md);
	int base = E.completions;
	cr_assert_leq(len, ENG_BYTES);
	desc_fill(want, len, (uint32_t)base + 77);
	cr_assert_eq(IOMemoryDescriptor_writeBytes(md, 0, want, len), len);
	cr_assert_eq(IODMACommand_synchronize(cmd, kIODirectionOut),
	             kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait_completions(base + 1);
	cr_assert_eq(E.status, kIOReturnSuccess);
	cr_assert_eq(E.count, len);
	cr_assert_arr_eq(E.dev, want, len, "the device read the memory's bytes");
	desc_fill(E.dev, len, (uint32_t)base + 78);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionIn, 0, 0), kIOReturnSuccess);
	eng_wait_completions(base + 2);
	cr_assert_eq(E.status, kIOReturnSuccess);
	cr_assert_eq(IODMACommand_synchronize(cmd, kIODirectionIn),
	             kIOReturnSuccess);
	cr_assert_eq(IOMemoryDescriptor_readBytes(md, 0, got, len), len);
	cr_assert_arr_eq(got, E.dev, len, "the memory got the device's bytes");
	pthread_mutex_lock(&E.m);
	cr_assert_eq(E.notifications, E.completions, "a completion without its notification or the reverse");
	cr_assert_eq(E.notify_status, E.status);
	cr_assert_eq(E.notify_count, E.count);
	pthread_mutex_unlock(&E.m);
}

/* The engine is freed on the thread dropping its last reference, which may
 * be its callback thread a moment after the test's last release: wait for
 * every iomem block to be gone before the leak check. */
static void count_live(void *ctx, const void *a, vm_size_t sz, iomem_alloc_family f, const char *call)
{
	(void)a; (void)sz; (void)f; (void)call;
	++*(int *)ctx;
}

static void eng_teardown(inj *s)
{
	if (E.es != NULL)
		IODMAEventSource_release(E.es);
	if (s->cmd != NULL) {
		IODMACommand_clearMemoryDescriptor(s->cmd, true);
		IODMACommand_release(s->cmd);
		s->cmd = NULL;
	}
	cr_assert_eq(iomem_dma_controller_unregister(E.engine), kIOReturnSuccess);
	IODMAController_release(E.engine);
	inj_release_all(s);
	for (int i = 0; i < 20000; i++) {
		int n = 0;
		iomem_leak_report(count_live, &n);
		if (n == 0)
			break;
		usleep(100);
	}
	pthread_cond_destroy(&E.c);
	pthread_mutex_destroy(&E.m);
	free(E.dev);
	free(E.want);
	free(E.got);
	memset(&E, 0, sizeof E);
}

/* event source creation (the object, the channel's translation cache) */
static void setup_engine(inj *s)
{
	(void)s;
	eng_new_engine();
}

static IOReturn op_es_create(inj *s)
{
	(void)s;
	E.es = IODMAEventSource_dmaEventSource(&E, &eng_dev, eng_completion, eng_notification, 0);
	return E.es ? kIOReturnSuccess : kIOReturnNoMemory;
}

static void check_es_create(inj *s, bool ok)
{
	IODMAEventSource *es = ok ? E.es : eng_new_es();
	s->md[0] = IOBufferMemoryDescriptor_withCapacity(2 * PAGE, kIODirectionInOut, false);
	cr_assert_not_null(s->md[0]);
	s->cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, IODMACommand_kUnmapped, 0, 1,
	                                        NULL, NULL);
	cr_assert_not_null(s->cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(s->cmd, s->md[0], true), kIOReturnSuccess);
	cr_assert_eq(iomem_dma_event_source_getDMAIndex(es), 0, "a failed creation kept its channel");
	eng_transfer_works(es, s->cmd, s->md[0]);
	E.es = es;
}

/* a transfer whose command bounces (a buffer above 4 GiB, a 32-bit device):
 * prepare's bounce pages, then the start's record */
static void setup_engine_bounce(inj *s)
{
	eng_new_engine();
	E.es = eng_new_es();
	desc_set_layout(IOMEM_POSIX_LAYOUT_HIGH, 0, 0);
	s->md[0] = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, ENG_BYTES, PAGE);
	cr_assert_not_null(s->md[0]);
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	s->cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, 0, 1,
	                                        NULL, NULL);
	cr_assert_not_null(s->cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(s->cmd, s->md[0], false), kIOReturnSuccess);
}

/* prepare + one Out transfer + complete, the op's own allocations only */
static IOReturn op_engine_transfer(inj *s)
{
	unsigned char *want = E.want;
	int base = E.completions;
	IOReturn r;
	desc_fill(want, ENG_BYTES, 31);
	cr_assert_eq(IOMemoryDescriptor_writeBytes(s->md[0], 0, want, ENG_BYTES), ENG_BYTES);
	r = IODMACommand_prepare(s->cmd, 0, 0, true, true);
	if (r != kIOReturnSuccess)
		return r;
	r = IODMAEventSource_startDMACommand(E.es, s->cmd, kIODirectionOut, 0, 0);
	if (r == kIOReturnSuccess) {
		eng_wait_completions(base + 1);
		cr_assert_eq(E.status, kIOReturnSuccess);
		cr_assert_arr_eq(E.dev, want, ENG_BYTES, "the device read the memory's bytes");
	} else {
		/* a refused start delivers nothing */
		usleep(1000);
		cr_assert_eq(E.completions, base);
		cr_assert_eq(E.notifications, base);
	}
	cr_assert_eq(IODMACommand_complete(s->cmd, true, true), kIOReturnSuccess);
	return r;
}

static void check_engine_transfer(inj *s, bool ok)
{
	(void)ok;
	cr_assert_eq(IODMACommand_prepare(s->cmd, 0, 0, true, true), kIOReturnSuccess);
	eng_transfer_works(E.es, s->cmd, s->md[0]);
	cr_assert_eq(IODMACommand_complete(s->cmd, true, true), kIOReturnSuccess);
}

/* a mapped command: prepare maps through the software IOMMU (IOVA, page
 * table), the engine translates every page through it */
static void setup_engine_mapped(inj *s)
{
	eng_new_engine();
	E.es = eng_new_es();
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	s->md[0] = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, ENG_BYTES, PAGE);
	s->mapper = iomem_swiommu_create(NULL);
	cr_assert(s->md[0] && s->mapper);
	s->cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kMapped, 0, 1,
	                                        s->mapper, NULL);
	cr_assert_not_null(s->cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(s->cmd, s->md[0], false), kIOReturnSuccess);
}

/* two event sources on one engine, a start on each in flight together:
 * each start needs its own record; every delivered completion has its
 * notification, none for a refused start */
static void setup_engine_two(inj *s)
{
	eng_new_engine();
	E.es = eng_new_es();
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	for (int i = 0; i < 2; i++) {
		s->md[i] = IOBufferMemoryDescriptor_withCapacity(ENG_BYTES, kIODirectionInOut, false);
		cr_assert_not_null(s->md[i]);
	}
	s->cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, IODMACommand_kUnmapped, 0, 1,
	                                        NULL, NULL);
	cr_assert_not_null(s->cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(s->cmd, s->md[0], true), kIOReturnSuccess);
}

static IODMAEventSource *eng_second_es;
static IODMACommand *eng_second_cmd;

static IOReturn op_engine_two(inj *s)
{
	IOReturn r = kIOReturnSuccess, r1, r2;
	int started = 0;
	eng_second_es = IODMAEventSource_dmaEventSource(&E, &eng_dev, eng_completion, eng_notification, 0);
	if (eng_second_es == NULL)
		return kIOReturnNoMemory;
	eng_second_cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 64, 0, IODMACommand_kUnmapped,
	                                                0, 1, NULL, NULL);
	if (eng_second_cmd == NULL)
		return kIOReturnNoMemory;
	r = IODMACommand_setMemoryDescriptor(eng_second_cmd, s->md[1], true);
	if (r != kIOReturnSuccess)
		return r;
	r1 = IODMAEventSource_startDMACommand(E.es, s->cmd, kIODirectionOut, 0, 0);
	r2 = IODMAEventSource_startDMACommand(eng_second_es, eng_second_cmd, kIODirectionOut, 0, 0);
	started = (r1 == kIOReturnSuccess) + (r2 == kIOReturnSuccess);
	eng_wait_completions(started);
	usleep(1000);                     /* nothing more comes */
	pthread_mutex_lock(&E.m);
	cr_assert_eq(E.completions, started, "%d completions for %d starts", E.completions, started);
	cr_assert_eq(E.notifications, started);
	pthread_mutex_unlock(&E.m);
	return r1 != kIOReturnSuccess ? r1 : r2;
}

static void check_engine_two(inj *s, bool ok)
{
	(void)ok;
	eng_transfer_works(E.es, s->cmd, s->md[0]);
	if (eng_second_es != NULL && eng_second_cmd != NULL &&
	    IODMACommand_getMemoryDescriptor(eng_second_cmd) != NULL) {
		eng_transfer_works(eng_second_es, eng_second_cmd, s->md[1]);
	}
	if (eng_second_cmd != NULL) {
		IODMACommand_clearMemoryDescriptor(eng_second_cmd, true);
		IODMACommand_release(eng_second_cmd);
	}
	IODMAEventSource_release(eng_second_es);
	eng_second_es = NULL;
	eng_second_cmd = NULL;
}

/* ---- the walk ----------------------------------------------------------- */

#if IOMEM__DEBUG
static bool inj_error_ok(const inject_case *c, IOReturn r)
{
	for (int i = 0; i < 4 && c->errors[i] != 0; i++)
		if (c->errors[i] == r)
			return true;
	return false;
}
#endif

static void inj_assert_clean(const inject_case *c, uint64_t n, int mode)
{
	iomem_posix_machine_stats_t st;
	vm_size_t live;
	iomem_bounce_pool_trim();          /* the pool's cached empty chunk is not a leak */
	live = iomem_leak_report(NULL, NULL);
	iomem_posix_machine_stats(&st);
	cr_assert_eq(live, 0, "%s, point %llu (mode %d): %zu block(s) leaked", c->name,
	             (unsigned long long)n, mode, (size_t)live);
	cr_assert_eq(st.wired_pages, 0, "%s, point %llu (mode %d): %llu page(s) still wired", c->name,
	             (unsigned long long)n, mode, (unsigned long long)st.wired_pages);
}

static unsigned inject_walk(const inject_case *c)
{
	unsigned runs = 0;
#if IOMEM__DEBUG
	for (int mode = 0; mode < 2; mode++) {
		for (uint64_t n = 0;; n++) {
			inj s;
			uint64_t points;
			IOReturn r;
			memset(&s, 0, sizeof s);
			if (c->setup)
				c->setup(&s);
			iomem_debug_fail_allocations(n, mode == 0 ? 1 : UINT64_MAX);
			r = c->op(&s);
			points = iomem_debug_allocation_points();
			iomem_debug_fail_allocations(0, 0);
			runs++;
			if (points > n) {        /* the injection fired */
				if (r != kIOReturnSuccess)
					cr_assert(inj_error_ok(c, r), "%s, point %llu (mode %d): error %#x is not documented",
					          c->name, (unsigned long long)n, mode, (unsigned)r);
				else
					cr_assert(c->may_absorb, "%s, point %llu of %llu (mode %d) failed, yet the call succeeded",
					          c->name, (unsigned long long)n, (unsigned long long)points, mode);
			} else {
				cr_assert_eq(r, kIOReturnSuccess, "%s: failed (%#x) with no injection", c->name, (unsigned)r);
			}
			if (c->check)
				c->check(&s, r == kIOReturnSuccess);
			if (c->teardown)
				c->teardown(&s);
			else
				inj_release_all(&s);
			iomem_test_expect_reports(0);
			inj_assert_clean(c, n, mode);
			if (points <= n)
				break;
			cr_assert_lt(n, 10000, "%s: no end to the allocation points", c->name);
		}
	}
	printf("inject: %-22s %u runs\n", c->name, runs);
#else
	inj s;
	IOReturn r;
	memset(&s, 0, sizeof s);
	if (c->setup)
		c->setup(&s);
	r = c->op(&s);
	cr_assert_eq(r, kIOReturnSuccess, "%s: %#x", c->name, (unsigned)r);
	if (c->check)
		c->check(&s, true);
	if (c->teardown)
		c->teardown(&s);
	else
		inj_release_all(&s);
	inj_assert_clean(c, 0, 0);
	runs = 1;
#endif
	fflush(stdout);
	return runs;
}

#define NOMEM { kIOReturnNoMemory, 0 }
#define PREP_ERRORS { kIOReturnNoMemory, kIOReturnNoResources, 0 }
#define IOVA_ERRORS { kIOReturnNoMemory, kIOReturnNoResources, kIOReturnNoSpace, 0 }

#define INJECT(id, ...)                                               \
	static const inject_case id##_case = { #id, __VA_ARGS__ };    \
	Test(inject, id) { inject_walk(&id##_case); }

INJECT(with_address,       setup_buf5, op_with_address, check_with_address, NULL, NOMEM, false)
INJECT(ranges_threadsafe,  setup_buf5, op_ranges_threadsafe, check_out_works, NULL, NOMEM, false)
INJECT(physical_ranges,    NULL, op_physical, check_physical, NULL, NOMEM, false)
INJECT(prepare,            setup_unprepared, op_prepare, check_prepare, NULL, PREP_ERRORS, false)
INJECT(buffer_contiguous,  NULL, op_buffer_contig, check_out_works, NULL, NOMEM, false)
INJECT(buffer_pageable,    NULL, op_buffer_pageable, check_out_works, NULL, NOMEM, false)
INJECT(buffer_with_bytes,  NULL, op_buffer_bytes, check_out_works, NULL, NOMEM, false)
INJECT(sub_prepare,        setup_parent, op_sub_prepare, check_out_works, teardown_all, PREP_ERRORS, false)
INJECT(multi_prepare,      setup_children, op_multi_prepare, check_out_works, NULL, PREP_ERRORS, false)
INJECT(interleaved_prepare, setup_children, op_interleaved_prepare, check_out_works, NULL, PREP_ERRORS, false)
INJECT(device_array,       NULL, op_device_array, check_device_array, NULL, NOMEM, false)
INJECT(custom_kind,        NULL, op_custom, check_custom, NULL, NOMEM, false)
INJECT(range_create,       NULL, op_range_create, check_range_create, NULL, NOMEM, false)
INJECT(range_growth,       setup_range_full, op_range_grow, check_range_grow, NULL, NOMEM, false)
INJECT(range_iova_growth,  setup_range_below, op_range_below, check_range_below, NULL, NOMEM, false)
INJECT(dmacmd_create,      NULL, op_dmacmd_create, NULL, NULL, NOMEM, false)
INJECT(dmacmd_prepare_bounce, setup_high_buffer, op_dmacmd_bounce, check_dmacmd_bounce, NULL, PREP_ERRORS, true)
INJECT(memory_map,         setup_map_buffer, op_map, check_map, NULL, NOMEM, false)
INJECT(cursor_create,      NULL, op_cursor, check_cursor, NULL, NOMEM, false)
INJECT(swiommu_create,     NULL, op_swiommu_create, check_swiommu_create, NULL, NOMEM, false)
INJECT(iova_map,           setup_iova, op_iova, check_iova, NULL, IOVA_ERRORS, false)
INJECT(dmacmd_mapped_prepare, setup_mapped_cmd, op_mapped_prepare, check_mapped_prepare, NULL, IOVA_ERRORS, false)
INJECT(dma_engine_create,  NULL, op_engine_create, check_engine_create, NULL, NOMEM, false)
INJECT(range_dealloc_growth, setup_range_dealloc, op_range_dealloc, check_range_dealloc, NULL, NOMEM, false)
INJECT(dma_event_source,   setup_engine, op_es_create, check_es_create, eng_teardown, NOMEM, false)
INJECT(dma_engine_bounce,  setup_engine_bounce, op_engine_transfer, check_engine_transfer, eng_teardown,
       PREP_ERRORS, true)
INJECT(dma_engine_mapped,  setup_engine_mapped, op_engine_transfer, check_engine_transfer, eng_teardown,
       IOVA_ERRORS, false)
INJECT(dma_engine_two_sources, setup_engine_two, op_engine_two, check_engine_two, eng_teardown, PREP_ERRORS, false)

/* The hook itself: counts points, fails exactly the window asked for, and
 * the counter restarts with every call. */
#if IOMEM__DEBUG
IOMEM_TEST(inject, hook_window)
{
	IOMemoryDescriptor *md[5];
	iomem_alloc_stats st0, st1;
	cr_assert_eq(iomem_stats(&st0), kIOReturnSuccess);
	iomem_debug_fail_allocations(1, 2);
	for (int i = 0; i < 5; i++)
		md[i] = IOMemoryDescriptor_withPhysicalAddress(0x1000, 0x10, kIODirectionIn);
	/* points: md0 = 0 (object), 1 (extents: fails); md1 = 2 (object:
	 * fails); md2..md4 = two each */
	cr_assert_eq(iomem_debug_allocation_points(), 9);
	cr_assert_null(md[0]);
	cr_assert_null(md[1]);
	cr_assert_not_null(md[2]);
	cr_assert_not_null(md[3]);
	cr_assert_not_null(md[4]);
	iomem_debug_fail_allocations(0, 0);
	cr_assert_eq(iomem_debug_allocation_points(), 0);
	cr_assert_eq(iomem_stats(&st1), kIOReturnSuccess);
	cr_assert_eq(st1.family[IOMEM_ALLOC_INTERNAL].failed_allocs,
	             st0.family[IOMEM_ALLOC_INTERNAL].failed_allocs + 2);
	/* the IOMalloc family is never failed */
	iomem_debug_fail_allocations(0, UINT64_MAX);
	void *p = IOMalloc(16);
	cr_assert_not_null(p);
	IOFree(p, 16);
	cr_assert_null(IOMemoryDescriptor_withPhysicalAddress(0x1000, 0x10, kIODirectionIn));
	iomem_debug_fail_allocations(0, 0);
	for (int i = 0; i < 5; i++)
		if (md[i])
			IOMemoryDescriptor_release(md[i]);
}
#endif
