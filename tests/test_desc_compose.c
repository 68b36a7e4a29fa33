/* SPDX-License-Identifier: MIT */
/* tests/test_desc_compose.c - IODeviceMemory, IOSubMemoryDescriptor,
 * IOMultiMemoryDescriptor, IOInterleavedMemoryDescriptor (reference
 * §1.4-1.7), ownership (§8.1) and the fixed upstream bugs (§8.3). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "test_desc_util.h"

TestSuite(device, .fini = desc_fini);
TestSuite(sub, .fini = desc_fini);
TestSuite(multi, .fini = desc_fini);
TestSuite(interleaved, .fini = desc_fini);

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)

/* ---- device ---- */

Test(device, with_range_and_sub_range)
{
	IODeviceMemory *d = IODeviceMemory_withRange(0xFE000000, 0x1000);
	IOByteCount seg;
	cr_assert_not_null(d);
	cr_expect_eq(iomem_md_kind_of(d), IOMEM_MD_DEVICE);
	cr_expect_eq(IOMemoryDescriptor_getDirection(d), kIODirectionNone);
	cr_expect(IOMemoryDescriptor_getFlags(d) & kIOMemoryMapperNone);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(d, 0x10, &seg, 0), 0xFE000010);
	cr_expect_eq(seg, 0xff0);
	IODeviceMemory *s = IODeviceMemory_withSubRange(d, 0x100, 0x20);
	cr_assert_not_null(s);
	cr_expect_eq(iomem_md_getRetainCount(d), 2, "sub retains its parent");
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(s, 0, &seg, 0), 0xFE000100);
	cr_expect_eq(seg, 0x20);
	cr_expect_null(IODeviceMemory_withSubRange(d, 0x1000, 1));
	IOMemoryDescriptor_release(d);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(s), 0xFE000100, "parent alive through the sub");
	IOMemoryDescriptor_release(s);
	iomem_test_expect_reports(0);
}

Test(device, array_from_list)
{
	IODeviceMemory_InitElement list[3] = {
		{ 0x1000, 0x100, 7 }, { 0x2000, 0x200, 8 }, { 0x3000, 0x300, 9 },
	};
	IODeviceMemory **a = IODeviceMemory_arrayFromList(list, 3);
	cr_assert_not_null(a);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(a[i]), list[i].start);
		cr_expect_eq(IOMemoryDescriptor_getLength(a[i]), list[i].length);
		cr_expect_eq(IOMemoryDescriptor_getTag(a[i]), list[i].tag);
	}
	iomem_device_memory_array_release(a, 3);
	cr_expect_null(IODeviceMemory_arrayFromList(list, 0));
	cr_expect_null(IODeviceMemory_arrayFromList(NULL, 3));
	IODeviceMemory_InitElement bad[2] = { { 0x1000, 0x100, 1 }, { ~(IOPhysicalAddress)0 - 5, 0x100, 2 } };
	cr_expect_null(IODeviceMemory_arrayFromList(bad, 2), "one element fails: the whole array fails");
	iomem_device_memory_array_release(NULL, 0);
}

/* ---- sub ---- */

Test(sub, ranges_walk_and_forwarding)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 3);
		unsigned char *buf = IOMallocAligned(8 * DESC_PAGE, DESC_PAGE);
		desc_fill(buf, 8 * DESC_PAGE, 9);
		IOMemoryDescriptor *parent = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 8 * DESC_PAGE,
		                                                                 kIODirectionInOut, kernel_task);
		cr_assert_not_null(parent);
		IOMemoryDescriptor_setTag(parent, 0x77);
		IOSubMemoryDescriptor *s = IOSubMemoryDescriptor_withSubRange(parent, DESC_PAGE + 5, 3 * DESC_PAGE,
		                                                             kIODirectionIn);
		cr_assert_not_null(s);
		cr_expect_eq(iomem_md_kind_of(s), IOMEM_MD_SUB);
		cr_expect_eq(IOMemoryDescriptor_getTag(s), 0x77, "parent's tag copied");
		cr_expect(IOMemoryDescriptor_getFlags(s) & kIOMemoryThreadSafe);
		cr_expect_eq(IOMemoryDescriptor_getDirection(s), kIODirectionIn);
		cr_expect_eq(IOMemoryDescriptor_getPreparationID(s), kIOPreparationIDUnprepared);
		/* prepare forwards: the whole parent is wired */
		cr_assert_eq(IOMemoryDescriptor_prepare(s, 0), kIOReturnSuccess);
		cr_expect_neq(iomem_posix_virt_to_phys(buf), 0);
		cr_expect_neq(iomem_posix_virt_to_phys(buf + 8 * DESC_PAGE - 1), 0);
		cr_expect_eq(IOMemoryDescriptor_getPreparationID(s), IOMemoryDescriptor_getPreparationID(parent));
		desc_check_walk(s, desc_va_linear, buf + DESC_PAGE + 5, false);
		unsigned char out[3 * 4096];
		IOByteCount n = 3 * DESC_PAGE < sizeof out ? 3 * DESC_PAGE : sizeof out;
		cr_expect_eq(IOMemoryDescriptor_readBytes(s, 0, out, n), n);
		cr_expect_arr_eq(out, buf + DESC_PAGE + 5, n);
		IOByteCount res;
		cr_expect_eq(IOMemoryDescriptor_getPageCounts(s, &res, NULL), kIOReturnSuccess);
		cr_expect_eq(res, 8, "the parent's counts");
		cr_expect_eq(IOMemoryDescriptor_complete(s, 0), kIOReturnSuccess);
		cr_expect_eq(iomem_posix_virt_to_phys(buf), 0);
		IOMemoryDescriptor_release(s);
		IOMemoryDescriptor_release(parent);
		IOFreeAligned(buf, 8 * DESC_PAGE);
	}
	iomem_test_expect_reports(0);
}

Test(sub, bad_ranges_and_zero_length)
{
	IOMemoryDescriptor *p = IOMemoryDescriptor_withPhysicalAddress(0x100000, 0x1000, kIODirectionIn);
	cr_expect_null(IOSubMemoryDescriptor_withSubRange(NULL, 0, 1, 0));
	cr_expect_null(IOSubMemoryDescriptor_withSubRange(p, 0x1001, 0, 0));
	cr_expect_null(IOSubMemoryDescriptor_withSubRange(p, 0x800, 0x801, 0));
	cr_expect_null(IOSubMemoryDescriptor_withSubRange(p, 0x10, ~(IOByteCount)0 - 8, 0), "offset + length overflows");
	IOMemoryDescriptor *z = IOSubMemoryDescriptor_withSubRange(p, 0x1000, 0, 0);
	cr_assert_not_null(z, "zero length at the end is allowed");
	IOByteCount seg = 1;
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(z, 0, &seg, 0), 0);
	cr_expect_eq(seg, 0);
	IOMemoryDescriptor_release(z);
	IOMemoryDescriptor *s = IOSubMemoryDescriptor_withSubRange(p, 0x800, 0x800, 0);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(s, 0x7ff, &seg, 0), 0x100fff);
	cr_expect_eq(seg, 1);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(s, 0x800, &seg, 0), 0);
	/* complete without prepare on a sub */
	cr_expect_eq(IOMemoryDescriptor_complete(s, 0), kIOReturnSuccess);
	iomem_test_expect_reports(DBG_REPORTS(1));
	IOMemoryDescriptor_release(s);
	IOMemoryDescriptor_release(p);
}

Test(sub, release_while_prepared_completes_the_parent)
{
	unsigned char *buf = IOMallocAligned(2 * DESC_PAGE, DESC_PAGE);
	IOMemoryDescriptor *p = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 2 * DESC_PAGE, kIODirectionIn, kernel_task);
	IOMemoryDescriptor *s = IOSubMemoryDescriptor_withSubRange(p, 0, 10, kIODirectionIn);
	cr_assert_eq(IOMemoryDescriptor_prepare(s, 0), kIOReturnSuccess);
	IOMemoryDescriptor_release(s);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMemoryDescriptor_release");
	cr_expect_eq(iomem_posix_virt_to_phys(buf), 0);
	IOMemoryDescriptor_release(p);
	IOFreeAligned(buf, 2 * DESC_PAGE);
}

/* ---- multi ---- */

Test(multi, concatenation_never_merges_across_children)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_CONTIGUOUS, 0, 0);
	IOMemoryDescriptor *c[3];
	c[0] = IOMemoryDescriptor_withPhysicalAddress(0x200000, 0x1000, kIODirectionIn);
	c[1] = IOMemoryDescriptor_withPhysicalAddress(0x201000, 0x1000, kIODirectionIn);   /* adjacent */
	c[2] = IOMemoryDescriptor_withPhysicalAddress(0x900000, 0x10, kIODirectionIn);
	IOMemoryDescriptor_setTag(c[1], 5);
	IOMultiMemoryDescriptor *m = IOMultiMemoryDescriptor_withDescriptors(c, 3, kIODirectionIn, false);
	cr_assert_not_null(m);
	cr_expect_eq(iomem_md_kind_of(m), IOMEM_MD_MULTI);
	cr_expect_eq(IOMemoryDescriptor_getTag(m), 5, "first non-zero child tag");
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(iomem_md_getRetainCount(c[i]), 2);
		IOMemoryDescriptor_release(c[i]);
	}
	cr_expect_eq(IOMemoryDescriptor_getLength(m), 0x2010);
	IOByteCount seg;
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(m, 0, &seg, 0), 0x200000);
	cr_expect_eq(seg, 0x1000, "no merge across children");
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(m, 0x1800, &seg, 0), 0x201800);
	cr_expect_eq(seg, 0x800);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(m, 0x2008, &seg, 0), 0x900008);
	cr_expect_eq(seg, 8);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(m, 0x2010, &seg, 0), 0);
	cr_expect_eq(seg, 0);
	cr_expect_eq(IOMemoryDescriptor_prepare(m, 0), kIOReturnSuccess);
	cr_expect_gt(IOMemoryDescriptor_getPreparationID(m), kIOPreparationIDAlwaysPrepared);
	cr_expect_eq(IOMemoryDescriptor_complete(m, 0), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(m, NULL, NULL), kIOReturnNotReady);
	IOMemoryDescriptor_release(m);
	iomem_test_expect_reports(0);
}

Test(multi, bytes_and_prepare_over_buffers)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 9);
		IOMemoryDescriptor *c[2];
		c[0] = IOBufferMemoryDescriptor_withCapacity(DESC_PAGE + 10, kIODirectionInOut, false);
		c[1] = IOBufferMemoryDescriptor_withCapacity(2 * DESC_PAGE, kIODirectionInOut, false);
		IOMultiMemoryDescriptor *m = IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionInOut, true);
		cr_assert_not_null(m);
		IOByteCount total = 3 * DESC_PAGE + 10;
		unsigned char *in = malloc(total), *out = malloc(total);
		desc_fill(in, total, 4);
		cr_expect_eq(IOMemoryDescriptor_writeBytes(m, 0, in, total), total);
		cr_expect_arr_eq(IOBufferMemoryDescriptor_getBytesNoCopy(c[1]), in + DESC_PAGE + 10, 2 * DESC_PAGE);
		cr_expect_eq(IOMemoryDescriptor_readBytes(m, 0, out, total), total);
		cr_expect_arr_eq(in, out, total);
		IOByteCount res;
		cr_expect_eq(IOMemoryDescriptor_getPageCounts(m, &res, NULL), kIOReturnSuccess);
		cr_expect_eq(res, 4);
		free(in);
		free(out);
		IOMemoryDescriptor_release(c[0]);
		IOMemoryDescriptor_release(c[1]);
		IOMemoryDescriptor_release(m);
	}
	iomem_test_expect_reports(0);
}

Test(multi, prepare_failure_rolls_back)
{
	unsigned char *buf = IOMallocAligned(DESC_PAGE, DESC_PAGE);
	IOMemoryDescriptor *c[2];
	c[0] = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 64, kIODirectionInOut, kernel_task);
	c[1] = IOMemoryDescriptor_withAddressRange((uintptr_t)buf + 64, 64, kIODirectionOut, kernel_task);
	cr_assert_eq(IOMemoryDescriptor_prepare(c[1], kIODirectionOut), kIOReturnSuccess);   /* read-only */
	IOMultiMemoryDescriptor *m = IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionInOut, false);
	cr_expect_eq(IOMemoryDescriptor_prepare(m, kIODirectionIn), kIOReturnNotWritable);
	cr_expect_eq(c[0]->iomem__prepare_count, 0, "child 0 completed again");
	cr_expect_eq(IOMemoryDescriptor_complete(m, 0), kIOReturnSuccess);
	iomem_test_expect_reports(DBG_REPORTS(1));
	IOMemoryDescriptor_complete(c[1], 0);
	IOMemoryDescriptor_release(c[0]);
	IOMemoryDescriptor_release(c[1]);
	IOMemoryDescriptor_release(m);
	IOFreeAligned(buf, DESC_PAGE);
}

Test(multi, bad_input)
{
	IOMemoryDescriptor *c[2];
	c[0] = IOBufferMemoryDescriptor_withCapacity(100, kIODirectionIn, false);
	c[1] = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIOMemoryPageable | kIODirectionIn, 100, 0);
	cr_expect_null(IOMultiMemoryDescriptor_withDescriptors(NULL, 2, kIODirectionIn, false));
	cr_expect_null(IOMultiMemoryDescriptor_withDescriptors(c, 0, kIODirectionIn, false));
	cr_expect_null(IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionIn, false), "mixed pageable flags");
	IOMemoryDescriptor *withnull[2] = { c[0], NULL };
	cr_expect_null(IOMultiMemoryDescriptor_withDescriptors(withnull, 2, kIODirectionIn, false));
	IOMemoryDescriptor *h[2];
	h[0] = IOMemoryDescriptor_withPhysicalAddress(0x1000, ~(IOByteCount)0 - 0x2000, kIODirectionIn);
	h[1] = IOMemoryDescriptor_withPhysicalAddress(0x1000, 0x3000, kIODirectionIn);
	cr_assert(h[0] && h[1]);
	cr_expect_null(IOMultiMemoryDescriptor_withDescriptors(h, 2, kIODirectionIn, false), "length overflow");
	cr_expect_eq(iomem_md_getRetainCount(c[0]), 1, "nothing retained on failure");
	for (int i = 0; i < 2; i++) {
		IOMemoryDescriptor_release(c[i]);
		IOMemoryDescriptor_release(h[i]);
	}
}

Test(multi, purgeable_aggregates)
{
	IOMemoryDescriptor *c[2];
	c[0] = IOBufferMemoryDescriptor_withOptions(kIOMemoryPurgeable | kIODirectionIn, 100, 0);
	c[1] = IOBufferMemoryDescriptor_withOptions(kIOMemoryPurgeable | kIODirectionIn, 100, 0);
	IOMultiMemoryDescriptor *m = IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionIn, false);
	IOOptionBits old;
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(c[1], kIOMemoryPurgeableEmpty, NULL), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(m, kIOMemoryPurgeableKeepCurrent, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableEmpty, "Empty dominates");
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(m, kIOMemoryPurgeableVolatile, &old), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(m, kIOMemoryPurgeableNonVolatile, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableVolatile);
	IOMemoryDescriptor *s = IOSubMemoryDescriptor_withSubRange(c[0], 0, 10, 0);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(s, kIOMemoryPurgeableKeepCurrent, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableNonVolatile);
	IOMemoryDescriptor_release(s);
	IOMemoryDescriptor_release(c[0]);
	IOMemoryDescriptor_release(c[1]);
	IOMemoryDescriptor_release(m);
}

/* ---- interleaved ---- */

Test(interleaved, slices_walk_and_bytes)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 13);
		IOMemoryDescriptor *a = IOBufferMemoryDescriptor_withCapacity(4 * DESC_PAGE, kIODirectionInOut, false);
		IOMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(4 * DESC_PAGE, kIODirectionInOut, false);
		unsigned char *pa = IOBufferMemoryDescriptor_getBytesNoCopy(a), *pb = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		desc_fill(pa, 4 * DESC_PAGE, 1);
		desc_fill(pb, 4 * DESC_PAGE, 2);
		IOInterleavedMemoryDescriptor *im = IOInterleavedMemoryDescriptor_withCapacity(4, kIODirectionInOut);
		cr_assert_not_null(im);
		cr_expect_eq(iomem_md_kind_of(im), IOMEM_MD_INTERLEAVED);
		cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 100, DESC_PAGE));
		cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, b, 0, 2 * DESC_PAGE));
		cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 3 * DESC_PAGE, 50), "same descriptor twice");
		cr_expect_eq(iomem_md_getRetainCount(a), 3);
		cr_expect_eq(IOMemoryDescriptor_getLength(im), 3 * DESC_PAGE + 50);
		IOByteCount total = 3 * DESC_PAGE + 50;
		unsigned char *expect = malloc(total), *out = malloc(total);
		memcpy(expect, pa + 100, DESC_PAGE);
		memcpy(expect + DESC_PAGE, pb, 2 * DESC_PAGE);
		memcpy(expect + 3 * DESC_PAGE, pa + 3 * DESC_PAGE, 50);
		cr_expect_eq(IOMemoryDescriptor_readBytes(im, 0, out, total), total);
		cr_expect_arr_eq(out, expect, total);
		IOByteCount seg;
		addr64_t p0 = IOMemoryDescriptor_getPhysicalSegment(im, DESC_PAGE - 1, &seg, 0);
		cr_expect_eq(p0, iomem_posix_virt_to_phys(pa + 100 + DESC_PAGE - 1));
		cr_expect_eq(seg, 1, "clipped to the slice");
		cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(im, total - 1, NULL, 0), iomem_posix_virt_to_phys(pa + 3 * DESC_PAGE + 49),
		             "NULL length pointer is fine (upstream bug fixed)");
		free(expect);
		free(out);
		IOMemoryDescriptor_release(a);
		IOMemoryDescriptor_release(b);
		IOMemoryDescriptor_release(im);
	}
	iomem_test_expect_reports(0);
}

Test(interleaved, full_prepared_and_bad_slices)
{
	IOMemoryDescriptor *a = IOMemoryDescriptor_withPhysicalAddress(0x300000, 0x1000, kIODirectionIn);
	cr_expect_null(IOInterleavedMemoryDescriptor_withCapacity(0, kIODirectionIn));
	IOInterleavedMemoryDescriptor *im = IOInterleavedMemoryDescriptor_withCapacity(2, kIODirectionIn);
	cr_assert_not_null(im);
	cr_expect_not(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, NULL, 0, 1));
	cr_expect_not(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0x800, 0x801), "outside");
	cr_expect_not(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 8, ~(IOByteCount)0 - 4), "overflow");
	cr_expect_not(IOInterleavedMemoryDescriptor_setMemoryDescriptor(a, a, 0, 1), "not interleaved");
	cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0, 0x10));
	cr_expect_eq(IOMemoryDescriptor_prepare(im, 0), kIOReturnSuccess);
	cr_expect_not(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0, 0x10), "already prepared");
	cr_expect_eq(IOMemoryDescriptor_complete(im, 0), kIOReturnSuccess);
	cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0x10, 0x10));
	cr_expect_not(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0x20, 0x10), "full");
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(im), kIOPreparationIDUnsupported);
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(im, NULL, NULL), kIOReturnNotReady);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(im, kIOMemoryPurgeableVolatile, NULL), kIOReturnUnsupported);
	/* clear while prepared: completes, releases, and clears the state (fixed) */
	cr_expect_eq(IOMemoryDescriptor_prepare(im, 0), kIOReturnSuccess);
	IOInterleavedMemoryDescriptor_clearMemoryDescriptors(im, kIODirectionOut);
	cr_expect_eq(IOMemoryDescriptor_getLength(im), 0);
	cr_expect_eq(IOMemoryDescriptor_getDirection(im), kIODirectionOut);
	cr_expect_eq(iomem_md_getRetainCount(a), 1);
	cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, a, 0, 0x10), "usable again after clear");
	cr_expect_eq(IOMemoryDescriptor_complete(im, 0), kIOReturnSuccess);
	iomem_test_expect_reports(DBG_REPORTS(1));
	IOMemoryDescriptor_release(im);
	IOMemoryDescriptor_release(a);
}

Test(interleaved, prepare_failure_rolls_back_prepared_slices)
{
	unsigned char *buf = IOMallocAligned(DESC_PAGE, DESC_PAGE);
	IOMemoryDescriptor *ok = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 64, kIODirectionInOut, kernel_task);
	IOMemoryDescriptor *ro = IOMemoryDescriptor_withAddressRange((uintptr_t)buf + 64, 64, kIODirectionOut, kernel_task);
	cr_assert_eq(IOMemoryDescriptor_prepare(ro, kIODirectionOut), kIOReturnSuccess);
	IOInterleavedMemoryDescriptor *im = IOInterleavedMemoryDescriptor_withCapacity(4, kIODirectionInOut);
	cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ok, 0, 64));
	cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ok, 0, 32));
	cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ro, 0, 64));
	cr_expect_eq(IOMemoryDescriptor_prepare(im, kIODirectionIn), kIOReturnNotWritable);
	cr_expect_eq(ok->iomem__prepare_count, 0, "both slices of ok completed (upstream completes the failing index)");
	cr_expect_eq(ro->iomem__prepare_count, 1);
	cr_expect(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ok, 0, 1), "not marked prepared after a failure");
	IOMemoryDescriptor_complete(ro, 0);
	IOMemoryDescriptor_release(im);
	IOMemoryDescriptor_release(ok);
	IOMemoryDescriptor_release(ro);
	IOFreeAligned(buf, DESC_PAGE);
	iomem_test_expect_reports(0);
}
