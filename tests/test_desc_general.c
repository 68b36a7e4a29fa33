/* SPDX-License-Identifier: MIT */
/* tests/test_desc_general.c - IOGeneralMemoryDescriptor (reference §1.1,
 * §1.2) and the base-class behaviour, on every layout policy; custom kinds;
 * the software machine itself. Contract violations are reported only with
 * IOMEM_DEBUG (the release preset expects none). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "test_desc_util.h"

#include <pthread.h>

TestSuite(general, .fini = desc_fini);
TestSuite(physical, .fini = desc_fini);
TestSuite(base, .fini = desc_fini);
TestSuite(custom, .fini = desc_fini);
TestSuite(machine, .fini = desc_fini);

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)

static unsigned char *alloc_pages(size_t npages)
{
	unsigned char *p = IOMallocAligned(npages * DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(p);
	return p;
}

/* ---- general virtual ---- */

Test(general, with_address_walk_read_write_on_every_layout)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 3, 7);
		unsigned char *buf = alloc_pages(6);
		unsigned char *p = buf + 100;
		IOByteCount len = 5 * DESC_PAGE - 50;
		desc_fill(buf, 6 * DESC_PAGE, 1u + (unsigned)l);
		IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(p, len, kIODirectionInOut);
		cr_assert_not_null(md);
		cr_expect_eq(IOMemoryDescriptor_getLength(md), len);
		cr_expect_eq(IOMemoryDescriptor_getDirection(md), kIODirectionInOut);
		cr_expect_eq(iomem_md_kind_of(md), IOMEM_MD_GENERAL);
		uint32_t nseg = desc_check_walk(md, desc_va_linear, p, true);
		switch (desc_layouts[l]) {
		case IOMEM_POSIX_LAYOUT_IDENTITY:
		case IOMEM_POSIX_LAYOUT_CONTIGUOUS:
		case IOMEM_POSIX_LAYOUT_HIGH:
			cr_expect_eq(nseg, 1, "layout %s: %u segments", iomem_posix_layout_name(desc_layouts[l]), nseg);
			break;
		case IOMEM_POSIX_LAYOUT_SCATTERED:
			cr_expect_eq(nseg, 6);   /* 100 + 5 pages - 50 spans 6 pages */
			break;
		default:
			cr_expect(nseg >= 1 && nseg <= 6);
		}
		if (desc_layouts[l] == IOMEM_POSIX_LAYOUT_HIGH)
			cr_expect_gt(IOMemoryDescriptor_getPhysicalAddress(md), 0xFFFFFFFFull);
		cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(md), iomem_posix_virt_to_phys(p));

		unsigned char out[300];
		cr_expect_eq(IOMemoryDescriptor_readBytes(md, DESC_PAGE - 150, out, sizeof out), sizeof out);
		cr_expect_arr_eq(out, p + DESC_PAGE - 150, sizeof out);
		unsigned char in[300];
		desc_fill(in, sizeof in, 99);
		cr_expect_eq(IOMemoryDescriptor_writeBytes(md, 2 * DESC_PAGE - 10, in, sizeof in), sizeof in);
		cr_expect_arr_eq(p + 2 * DESC_PAGE - 10, in, sizeof in);
		cr_expect_eq(IOMemoryDescriptor_writeBytes(md, 10, NULL, 64), 64);   /* zero-fill */
		for (int i = 0; i < 64; i++)
			cr_expect_eq(p[10 + i], 0);
		IOMemoryDescriptor_release(md);
		cr_expect_eq(iomem_posix_virt_to_phys(p), 0, "unwired after release");
		IOFreeAligned(buf, 6 * DESC_PAGE);
	}
	iomem_test_expect_reports(0);
}

Test(general, with_address_range_needs_prepare)
{
	unsigned char *buf = alloc_pages(2);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 2 * DESC_PAGE,
	                                                             kIODirectionInOut, kernel_task);
	IOByteCount seg = 77;
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(md), kIOPreparationIDUnprepared);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0);
	cr_expect_eq(seg, 0);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMemoryDescriptor_getPhysicalSegment");
	unsigned char out[8];
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 0, out, 8), 0);   /* walks: reported too */
	iomem_test_expect_reports(DBG_REPORTS(2));

	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	uint64_t id = IOMemoryDescriptor_getPreparationID(md);
	cr_expect_gt(id, kIOPreparationIDAlwaysPrepared);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(md), id);
	cr_expect_neq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);   /* nests */
	cr_assert_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	cr_expect_neq(iomem_posix_virt_to_phys(buf), 0, "still wired after one of two completes");
	cr_assert_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(iomem_posix_virt_to_phys(buf), 0);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(md), kIOPreparationIDUnprepared);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	cr_expect_neq(IOMemoryDescriptor_getPreparationID(md), id, "a new preparation, a new id");
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, 2 * DESC_PAGE);
	iomem_test_expect_reports(DBG_REPORTS(2));
}

Test(general, complete_without_prepare_is_reported)
{
	unsigned char *buf = alloc_pages(1);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 64, kIODirectionIn, kernel_task);
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMemoryDescriptor_complete");
	IOMemoryDescriptor_release(md);
	/* an auto-prepared descriptor: the object's own wiring is not the caller's */
	md = IOMemoryDescriptor_withAddress(buf, 64, kIODirectionIn);
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	iomem_test_expect_reports(DBG_REPORTS(2));
	cr_expect_neq(iomem_posix_virt_to_phys(buf), 0, "the auto-prepare wiring survives");
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, DESC_PAGE);
	iomem_test_expect_reports(DBG_REPORTS(2));
}

Test(general, release_while_prepared_is_reported_and_completed)
{
	unsigned char *buf = alloc_pages(3);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 3 * DESC_PAGE,
	                                                             kIODirectionOut, kernel_task);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	IOMemoryDescriptor_release(md);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMemoryDescriptor_release");
	cr_expect_eq(iomem_posix_virt_to_phys(buf), 0, "completed by release");
	IOFreeAligned(buf, 3 * DESC_PAGE);
}

Test(general, direction_rules)
{
	unsigned char *buf = alloc_pages(1);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 128, kIODirectionOut, kernel_task);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);   /* Out: read-only */
	cr_expect(IOMemoryDescriptor_getFlags(md) & kIOMemoryPreparedReadOnly);
	cr_expect_eq(IOMemoryDescriptor_prepare(md, kIODirectionIn), kIOReturnNotWritable);
	cr_expect_eq(IOMemoryDescriptor_prepare(md, kIODirectionOut), kIOReturnSuccess);
	unsigned char b[16] = { 1 };
	cr_expect_eq(IOMemoryDescriptor_writeBytes(md, 0, b, 16), 0, "wired read-only");
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 0, b, 16), 16);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	cr_expect_not(IOMemoryDescriptor_getFlags(md) & kIOMemoryPreparedReadOnly);
	/* prepared for In first: writable */
	cr_assert_eq(IOMemoryDescriptor_prepare(md, kIODirectionInOut), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_writeBytes(md, 0, b, 16), 16);
	IOMemoryDescriptor_complete(md, kIODirectionNone);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, DESC_PAGE);
	iomem_test_expect_reports(0);
}

/* POSIX has one address space: the calling thread's task is kernel_task
 * (the Linux kernel suite covers user processes, ktest_user.h). */
Test(general, current_task_is_kernel_task_on_posix)
{
	unsigned char *buf = alloc_pages(1);
	cr_expect_eq(iomem_current_task(), kernel_task);
	cr_expect_eq(iomem_current_task(), iomem_current_task());
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 64, kIODirectionIn,
	                                                             iomem_current_task());
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(general, bad_creation_input_returns_null)
{
	unsigned char *buf = alloc_pages(1);
	IOAddressRange r[2] = { { (uintptr_t)buf, 64 }, { (uintptr_t)buf + 64, 64 } };
	IOAddressRange wrap = { ~(mach_vm_address_t)0 - 10, 100 };
	IOAddressRange huge[2] = { { 0x1000, ~(mach_vm_size_t)0 - 0x2000 }, { 0x1000, 0x3000 } };
	struct iomem_task other = { 1 };
	cr_expect_null(IOMemoryDescriptor_withAddressRanges(NULL, 1, kIODirectionIn, kernel_task));
	cr_expect_null(IOMemoryDescriptor_withAddressRanges(r, 0, kIODirectionIn, kernel_task));
	cr_expect_null(IOMemoryDescriptor_withAddressRanges(&wrap, 1, kIODirectionIn, kernel_task));
	cr_expect_null(IOMemoryDescriptor_withAddressRanges(&wrap, 1, kIODirectionIn, NULL));
	cr_expect_null(IOMemoryDescriptor_withAddressRanges(huge, 2, kIODirectionIn, NULL), "total overflows");
	cr_expect_null(IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionIn, &other), "other task");
	cr_expect_null(IOMemoryDescriptor_withAddress(NULL, 64, kIODirectionIn));
	cr_expect_null(IOMemoryDescriptor_withOptions(NULL, 1, 0, kernel_task, kIOMemoryTypeVirtual, NULL));
	cr_expect_null(IOMemoryDescriptor_withOptions(r, 0, 0, kernel_task, kIOMemoryTypeVirtual, NULL));
	cr_expect_null(IOMemoryDescriptor_withOptions(r, 2, 0, NULL, kIOMemoryTypeVirtual, NULL), "virtual needs a task");
	cr_expect_null(IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task, kIOMemoryTypePhysical, NULL), "physical has none");
	cr_expect_null(IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task, kIOMemoryTypeUPL, NULL));
	cr_expect_null(IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task, kIOMemoryTypeUIO, NULL));
	cr_expect_null(IOMemoryDescriptor_withPersistentMemoryDescriptor(NULL));
	IOMemoryDescriptor *md = IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task,
	                                                        kIOMemoryTypeVirtual | kIODirectionIn, NULL);
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_getLength(md), 128);
	cr_expect_null(IOMemoryDescriptor_withPersistentMemoryDescriptor(md), "not persistent");
	IOMemoryDescriptor_release(md);
	md = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionIn | kIOMemoryPersistent, kernel_task);
	cr_assert_not_null(md);
	IOMemoryDescriptor *pmd = IOMemoryDescriptor_withPersistentMemoryDescriptor(md);
	cr_expect_eq(pmd, md);
	cr_expect_eq(iomem_md_getRetainCount(md), 2);
	IOMemoryDescriptor_release(pmd);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(general, zero_length_is_accepted)
{
	unsigned char *buf = alloc_pages(1);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf, 0, kIODirectionIn);
	IOByteCount seg = 5;
	unsigned char b[4];
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_getLength(md), 0);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0);
	cr_expect_eq(seg, 0);
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 0, b, 0), 0);
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 0, b, 1), 0);
	IOMemoryDescriptor_release(md);
	IOAddressRange r[3] = { { (uintptr_t)buf, 0 }, { (uintptr_t)buf + 8, 16 }, { (uintptr_t)buf + 100, 0 } };
	md = IOMemoryDescriptor_withAddressRanges(r, 3, kIODirectionInOut, kernel_task);
	cr_assert_not_null(md);
	cr_assert_eq(IOMemoryDescriptor_prepare(md, 0), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), iomem_posix_virt_to_phys(buf + 8));
	cr_expect_eq(seg, 16);
	IOMemoryDescriptor_complete(md, 0);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(general, read_write_range_rules)
{
	unsigned char *buf = alloc_pages(1);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf, 100, kIODirectionInOut);
	unsigned char b[200];
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 101, b, 1), 0, "offset past the end");
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 50, b, 51), 0, "modern IOKit: all or nothing");
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 50, b, ~(IOByteCount)0), 0, "overflow");
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, ~(IOByteCount)0, b, 2), 0, "overflow");
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 100, b, 0), 0);
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 0, NULL, 10), 0);
	cr_expect_eq(IOMemoryDescriptor_writeBytes(md, 50, b, 51), 0);
	cr_expect_eq(IOMemoryDescriptor_writeBytes(md, 101, b, 1), 0);
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, 0, b, 100), 100);
	cr_expect_eq(IOMemoryDescriptor_readBytes(NULL, 0, b, 1), 0);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(general, multi_range_segments_and_bytes)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 11);
		unsigned char *buf = alloc_pages(8);
		desc_fill(buf, 8 * DESC_PAGE, 5);
		IOAddressRange r[3] = {
			{ (uintptr_t)buf + 5 * DESC_PAGE + 7, DESC_PAGE },
			{ (uintptr_t)buf + 10, 2 * DESC_PAGE },
			{ (uintptr_t)buf + 2 * DESC_PAGE + 10, 300 },      /* adjacent to range 1 */
		};
		IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges(r, 3, kIODirectionInOut, kernel_task);
		cr_assert_not_null(md);
		cr_assert_eq(IOMemoryDescriptor_prepare(md, 0), kIOReturnSuccess);
		IOByteCount total = DESC_PAGE + 2 * DESC_PAGE + 300, off = 0, seg;
		cr_expect_eq(IOMemoryDescriptor_getLength(md), total);
		unsigned char *flat = malloc(total), *rd = malloc(total);
		memcpy(flat, (void *)(uintptr_t)r[0].address, DESC_PAGE);
		memcpy(flat + DESC_PAGE, (void *)(uintptr_t)r[1].address, 2 * DESC_PAGE);
		memcpy(flat + 3 * DESC_PAGE, (void *)(uintptr_t)r[2].address, 300);
		cr_expect_eq(IOMemoryDescriptor_readBytes(md, 0, rd, total), total);
		cr_expect_arr_eq(rd, flat, total);
		while (off < total) {
			addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0);
			int ri = off < DESC_PAGE ? 0 : off < 3 * DESC_PAGE ? 1 : 2;
			IOByteCount rs = ri == 0 ? 0 : ri == 1 ? DESC_PAGE : 3 * DESC_PAGE;
			cr_assert_eq(pa, iomem_posix_virt_to_phys((void *)(uintptr_t)(r[ri].address + (off - rs))));
			off += seg;
		}
		desc_fill(flat, total, 77);
		cr_expect_eq(IOMemoryDescriptor_writeBytes(md, 0, flat, total), total);
		cr_expect_arr_eq((void *)(uintptr_t)r[1].address, flat + DESC_PAGE, 2 * DESC_PAGE);
		free(flat);
		free(rd);
		IOMemoryDescriptor_complete(md, 0);
		IOMemoryDescriptor_release(md);
		IOFreeAligned(buf, 8 * DESC_PAGE);
	}
	iomem_test_expect_reports(0);
}

Test(general, wired_twice_keeps_the_frame)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	unsigned char *buf = alloc_pages(2);
	IOMemoryDescriptor *a = IOMemoryDescriptor_withAddress(buf, 2 * DESC_PAGE, kIODirectionIn);
	IOMemoryDescriptor *b = IOMemoryDescriptor_withAddress(buf + DESC_PAGE, DESC_PAGE, kIODirectionIn);
	cr_assert(a && b);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(a, DESC_PAGE, NULL, 0),
	             IOMemoryDescriptor_getPhysicalAddress(b));
	IOMemoryDescriptor_release(a);
	cr_expect_neq(iomem_posix_virt_to_phys(buf + DESC_PAGE), 0);
	cr_expect_eq(iomem_posix_virt_to_phys(buf), 0);
	IOMemoryDescriptor_release(b);
	IOFreeAligned(buf, 2 * DESC_PAGE);
}

/* ---- physical ---- */

Test(physical, ranges_coalesce_and_walk)
{
	IOAddressRange r[4] = {
		{ 0x100000, 0x1000 }, { 0x101000, 0x800 },      /* adjacent: one segment */
		{ 0x200000, 0x10 }, { 0x300000, 0 },
	};
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRanges(r, 4, kIODirectionOut, NULL);
	IOByteCount seg;
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_getLength(md), 0x1810);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0x100000);
	cr_expect_eq(seg, 0x1800);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0x1001, &seg, 0), 0x101001);
	cr_expect_eq(seg, 0x7ff);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0x1800, &seg, 0), 0x200000);
	cr_expect_eq(seg, 0x10);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0x1810, &seg, 0), 0);
	cr_expect_eq(seg, 0);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, ~(IOByteCount)0, &seg, 0), 0);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(md), 0x100000);
	/* always prepared: prepare/complete are no-ops, never reported */
	cr_expect_eq(IOMemoryDescriptor_prepare(md, kIODirectionInOut), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_complete(md, 0), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_complete(md, 0), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0x100000);
	uint64_t id = IOMemoryDescriptor_getPreparationID(md);
	cr_expect_gt(id, kIOPreparationIDAlwaysPrepared);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(md), id);
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(md, NULL, NULL), kIOReturnNotReady);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(md, kIOMemoryPurgeableVolatile, NULL), kIOReturnUnsupported);
	IOMemoryDescriptor_release(md);
	iomem_test_expect_reports(0);
}

Test(physical, reads_and_writes_reach_wired_ram)
{
	unsigned char *buf = alloc_pages(2);
	desc_fill(buf, 2 * DESC_PAGE, 3);
	IOMemoryDescriptor *v = IOMemoryDescriptor_withAddress(buf, 2 * DESC_PAGE, kIODirectionInOut);
	cr_assert_not_null(v);
	IOByteCount seg;
	addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(v, 16, &seg, 0);
	IOMemoryDescriptor *p = IOMemoryDescriptor_withPhysicalAddress(pa, seg < 200 ? seg : 200, kIODirectionInOut);
	cr_assert_not_null(p);
	unsigned char out[200];
	IOByteCount n = IOMemoryDescriptor_getLength(p);
	cr_expect_eq(IOMemoryDescriptor_readBytes(p, 0, out, n), n);
	cr_expect_arr_eq(out, buf + 16, n);
	cr_expect_eq(IOMemoryDescriptor_writeBytes(p, 0, NULL, n), n);
	cr_expect_eq(buf[16], 0);
	IOMemoryDescriptor_release(p);
	/* memory the machine does not know: nothing copied */
	p = IOMemoryDescriptor_withPhysicalAddress(0x7000, 64, kIODirectionIn);
	cr_expect_eq(IOMemoryDescriptor_readBytes(p, 0, out, 64), 0);
	IOMemoryDescriptor_release(p);
	IOMemoryDescriptor_release(v);
	IOFreeAligned(buf, 2 * DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(physical, with_options_physical_ranges)
{
	IOPhysicalRange r[2] = { { 0x5000, 0x100 }, { 0x5100, 0x100 } };
	IOMemoryDescriptor *md = IOMemoryDescriptor_withOptions(r, 2, 0, NULL, kIOMemoryTypePhysical | kIODirectionIn, NULL);
	IOByteCount seg;
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0x5000);
	cr_expect_eq(seg, 0x200);
	IOMemoryDescriptor_release(md);
}

/* ---- base class behaviour ---- */

Test(base, accessors_tags_flags_mapper_options)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withPhysicalAddress(0x10000, 0x100, kIODirectionOut);
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_getTag(md), 0);
	IOMemoryDescriptor_setTag(md, 0xabcd);
	cr_expect_eq(IOMemoryDescriptor_getTag(md), 0xabcd);
	cr_expect_eq(IOMemoryDescriptor_getFlags(md) & kIOMemoryDirectionMask, kIODirectionOut);
	cr_expect_eq(IOMemoryDescriptor_getFlags(md) & kIOMemoryTypeMask, kIOMemoryTypePhysical64);
	IOMemoryDescriptor_setMapperOptions(md, 0x1234);
	cr_expect_eq(IOMemoryDescriptor_getMapperOptions(md), 0x1234);
	IOMemoryDescriptor_retain(md);
	cr_expect_eq(iomem_md_getRetainCount(md), 2);
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_retain(NULL);
	IOMemoryDescriptor_release(NULL);
	cr_expect_eq(IOMemoryDescriptor_prepare(NULL, 0), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryDescriptor_complete(NULL, 0), kIOReturnBadArgument);
}

Test(base, perform_operation)
{
	unsigned char *buf = alloc_pages(2);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf, 2 * DESC_PAGE, kIODirectionInOut);
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_performOperation(md, kIOMemoryIncoherentIOFlush, 0, 2 * DESC_PAGE), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_performOperation(md, kIOMemoryIncoherentIOStore, 10, ~(IOByteCount)0), kIOReturnSuccess,
	             "length is clamped");
	cr_expect_eq(IOMemoryDescriptor_performOperation(md, kIOMemorySetEncrypted, 0, 1), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_performOperation(md, 7, 0, 1), kIOReturnUnsupported);
	cr_expect_eq(IOMemoryDescriptor_performOperation(md, kIOMemoryIncoherentIOFlush, 2 * DESC_PAGE, 5), kIOReturnSuccess,
	             "offset == length: nothing to do");
	cr_expect_eq(IOMemoryDescriptor_performOperation(md, kIOMemoryIncoherentIOFlush, 2 * DESC_PAGE + 1, 5), kIOReturnUnderrun);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, 2 * DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(base, purgeable_and_page_counts_of_general_memory)
{
	unsigned char *buf = alloc_pages(3);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf + 1, 2 * DESC_PAGE, kIODirectionInOut);
	IOByteCount res = 0, dirty = 0;
	IOOptionBits old;
	cr_assert_not_null(md);
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(md, &res, &dirty), kIOReturnSuccess);
	cr_expect_eq(res, 3);
	cr_expect_eq(dirty, 3);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(md, kIOMemoryPurgeableVolatile, &old), kIOReturnUnsupported);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(md, 0, &old), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(md, 5, &old), kIOReturnBadArgument);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, 3 * DESC_PAGE);
}

struct ts_arg { IOMemoryDescriptor *md; int rounds; };
static void *ts_worker(void *p)
{
	struct ts_arg *a = p;
	for (int i = 0; i < a->rounds; i++) {
		if (IOMemoryDescriptor_prepare(a->md, 0) != kIOReturnSuccess)
			return (void *)1;
		IOMemoryDescriptor_complete(a->md, 0);
	}
	return NULL;
}

Test(base, thread_safe_prepare_complete)
{
	unsigned char *buf = alloc_pages(4);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 4 * DESC_PAGE,
	                                                             kIODirectionInOut | kIOMemoryThreadSafe, kernel_task);
	cr_assert_not_null(md);
	pthread_t t[4];
	struct ts_arg a = { md, 500 };
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, ts_worker, &a);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_expect_null(r);
	}
	cr_expect_eq(iomem_posix_virt_to_phys(buf), 0);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, 4 * DESC_PAGE);
	iomem_test_expect_reports(0);
}

Test(base, sixteen_kib_pages)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	cr_assert_eq(iomem__platform_page_size(), 16384);
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	unsigned char *buf = IOMallocAligned(4 * 16384, 16384);
	cr_assert_not_null(buf);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf + 100, 3 * 16384, kIODirectionInOut);
	cr_assert_not_null(md);
	cr_expect_eq(iomem_posix_set_page_size(4096), kIOReturnBusy);
	IOByteCount seg;
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0) & 16383, 100);
	cr_expect_eq(seg, 16384 - 100, "scattered 16 KiB frames");
	cr_expect_eq(desc_check_walk(md, desc_va_linear, buf + 100, true), 4);
	IOByteCount res;
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(md, &res, NULL), kIOReturnSuccess);
	cr_expect_eq(res, 4);
	IOMemoryDescriptor_release(md);
	/* IOMallocPageable follows the machine page */
	void *pg = IOMallocPageable(100, 16384);
	cr_assert_not_null(pg);
	cr_expect_eq((uintptr_t)pg & 16383, 0);
	IOFreePageable(pg, 100);
	IOFreeAligned(buf, 4 * 16384);
	cr_expect_eq(iomem_posix_set_page_size(3000), kIOReturnBadArgument);
	cr_expect_eq(iomem_posix_set_page_size(0), kIOReturnSuccess);
	iomem_test_expect_reports(0);
}

/* ---- a driver's own kind ---- */

struct fake { IOPhysicalAddress base; int prepared, freed; };
static addr64_t fake_seg(IOMemoryDescriptor *md, IOByteCount off, IOByteCount *len, IOOptionBits o)
{
	struct fake *f = iomem_md_getContext(md);
	(void)o;
	if (len)
		*len = 0x100 - (off & 0xff);       /* 256-byte chunks, reversed in memory */
	return f->base + 0x10000 - (off & ~(IOByteCount)0xff) + (off & 0xff);
}
static IOReturn fake_prepare(IOMemoryDescriptor *md, IODirection d) { (void)d; ((struct fake *)iomem_md_getContext(md))->prepared++; return kIOReturnSuccess; }
static IOReturn fake_complete(IOMemoryDescriptor *md, IODirection d) { (void)d; ((struct fake *)iomem_md_getContext(md))->prepared--; return kIOReturnSuccess; }
static void fake_free(IOMemoryDescriptor *md) { ((struct fake *)iomem_md_getContext(md))->freed = 1; }

Test(custom, ops_table_kind)
{
	static const iomem_md_ops ops = { "fake", fake_seg, fake_prepare, fake_complete, NULL, NULL, NULL, fake_free };
	struct fake f = { 0x40000000, 0, 0 };
	IOMemoryDescriptor *md = iomem_md_withOps(&ops, &f, 0x1000, kIODirectionIn);
	cr_assert_not_null(md);
	cr_expect_eq(iomem_md_kind_of(md), IOMEM_MD_CUSTOM);
	IOByteCount seg;
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0x110, &seg, 0), 0x40000000 + 0x10000 - 0x100 + 0x10);
	cr_expect_eq(seg, 0xf0);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0x1000, &seg, 0), 0);
	cr_expect_eq(IOMemoryDescriptor_prepare(md, 0), kIOReturnSuccess);
	cr_expect_eq(f.prepared, 1);
	IOMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(md, 0x80, 0x100, kIODirectionIn);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(sub, 0, &seg, 0), 0x40000000 + 0x10000 + 0x80);
	cr_expect_eq(seg, 0x80);
	IOMemoryDescriptor_release(sub);
	cr_expect_eq(IOMemoryDescriptor_complete(md, 0), kIOReturnSuccess);
	cr_expect_eq(f.prepared, 0);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(md, kIOMemoryPurgeableVolatile, NULL), kIOReturnUnsupported);
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(md, NULL, NULL), kIOReturnNotReady);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(md), kIOPreparationIDUnsupported);
	IOMemoryDescriptor_release(md);
	cr_expect_eq(f.freed, 1);
	cr_expect_null(iomem_md_withOps(NULL, NULL, 1, 0));
	iomem_test_expect_reports(0);
}

/* ---- the machine ---- */

Test(machine, layouts_and_reverse_map)
{
	iomem_posix_phys_layout l = { (iomem_posix_layout)99, 0, 0 };
	cr_expect_eq(iomem_posix_set_phys_layout(&l), kIOReturnBadArgument);
	cr_expect_eq(iomem_posix_set_phys_layout(NULL), kIOReturnBadArgument);
	cr_expect_str_eq(iomem_posix_layout_name(IOMEM_POSIX_LAYOUT_RUNS), "runs");
	cr_expect_str_eq(iomem_posix_layout_name(IOMEM_POSIX_LAYOUT_IDENTITY), "identity");
	cr_expect_str_eq(iomem_posix_layout_name(IOMEM_POSIX_LAYOUT_CONTIGUOUS), "contiguous");
	cr_expect_str_eq(iomem_posix_layout_name(IOMEM_POSIX_LAYOUT_SCATTERED), "scattered");
	cr_expect_str_eq(iomem_posix_layout_name(IOMEM_POSIX_LAYOUT_HIGH), "high");
	cr_expect_str_eq(iomem_posix_layout_name(IOMEM_POSIX_LAYOUT_PAGEMAP), "pagemap");
	cr_expect_str_eq(iomem_posix_layout_name(IOMEM_POSIX_LAYOUT_COUNT), "unknown", "never NULL");
	iomem_posix_get_phys_layout(NULL);              /* NULL: nothing */
	iomem_posix_machine_stats(NULL);
	desc_set_layout(IOMEM_POSIX_LAYOUT_RUNS, 4, 3);
	iomem_posix_get_phys_layout(&l);
	cr_expect_eq(l.policy, IOMEM_POSIX_LAYOUT_RUNS);
	cr_expect_eq(l.run_mean, 4);
	unsigned char *buf = alloc_pages(64);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(buf, 64 * DESC_PAGE, kIODirectionIn);
	cr_assert_not_null(md);
	uint32_t n = desc_check_walk(md, desc_va_linear, buf, true);
	cr_expect(n >= 64 / 8 && n <= 64, "runs of mean 4: %u segments", n);
	for (int i = 0; i < 64; i++) {
		IOPhysicalAddress pa = iomem_posix_virt_to_phys(buf + i * DESC_PAGE + 5);
		cr_expect_eq(iomem_posix_phys_to_virt(pa), buf + i * DESC_PAGE + 5);
	}
	iomem_posix_machine_stats_t st;
	iomem_posix_machine_stats(&st);
	cr_expect_geq(st.wired_pages, 64);
	IOMemoryDescriptor_release(md);
	cr_expect_null(iomem_posix_phys_to_virt(0x12345000));
	IOFreeAligned(buf, 64 * DESC_PAGE);
}

/* ---- the explicit walk engine ---- */

Test(machine, walk_engine_matches_get_physical_segment)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 21);
		IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(40 * DESC_PAGE + 7, kIODirectionInOut, false);
		cr_assert_not_null(b);
		IOBufferMemoryDescriptor_setLength(b, 33 * DESC_PAGE + 3);
		for (IOByteCount start = 0; start < 33 * DESC_PAGE + 3; start += 5 * DESC_PAGE + 11) {
			iomem_md_walk w;
			addr64_t pa;
			IOByteCount seg, off = start, gl;
			cr_assert(iomem_md_walk_init(&w, b, start));
			while ((seg = iomem_md_walk_next(&w, &pa)) != 0) {
				cr_assert_eq(pa, IOMemoryDescriptor_getPhysicalSegment(b, off, &gl, 0));
				cr_assert_eq(seg, gl);
				off += seg;
			}
			cr_expect_eq(off, 33 * DESC_PAGE + 3);
		}
		iomem_md_walk w;
		cr_expect_not(iomem_md_walk_init(&w, b, 33 * DESC_PAGE + 3));
		IOMemoryDescriptor_release(b);
	}
	IOMemoryDescriptor *s = IOMemoryDescriptor_withPhysicalAddress(0x1000, 10, kIODirectionIn);
	IOMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(s, 0, 5, 0);
	iomem_md_walk w;
	cr_expect_not(iomem_md_walk_init(&w, sub, 0), "not a general kind");
	cr_expect(iomem_md_walk_init(&w, s, 0));
	IOMemoryDescriptor_release(sub);
	IOMemoryDescriptor_release(s);
}

/* Optional real mode: skipped where the kernel hides frame numbers. */
Test(machine, pagemap_real_frames)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_PAGEMAP, 0, 0);
	unsigned char *buf = alloc_pages(4);
	memset(buf, 0x11, 4 * DESC_PAGE);                  /* real, distinct pages */
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 4 * DESC_PAGE,
	                                                             kIODirectionInOut, kernel_task);
	cr_assert_not_null(md);
	IOReturn r = IOMemoryDescriptor_prepare(md, 0);
	if (r == kIOReturnNotPrivileged) {
		IOMemoryDescriptor_release(md);
		IOFreeAligned(buf, 4 * DESC_PAGE);
		cr_skip_test("no CAP_SYS_ADMIN: /proc/self/pagemap hides frame numbers");
	}
	cr_assert_eq(r, kIOReturnSuccess, "%s", IOReturnString(r));
	desc_check_walk(md, desc_va_linear, buf, true);
	unsigned char out[64];
	cr_expect_eq(IOMemoryDescriptor_readBytes(md, DESC_PAGE - 32, out, 64), 64);
	for (int i = 0; i < 64; i++)
		cr_expect_eq(out[i], 0x11);
	IOMemoryDescriptor_complete(md, 0);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(buf, 4 * DESC_PAGE);
	/* 16 KiB machine pages cannot use host frames */
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	unsigned char *b16 = IOMallocAligned(16384, 16384);
	memset(b16, 1, 16384);
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)b16, 16384, kIODirectionInOut, kernel_task);
	cr_expect_eq(IOMemoryDescriptor_prepare(md, 0), kIOReturnUnsupported);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(b16, 16384);
	iomem_test_expect_reports(0);
}
