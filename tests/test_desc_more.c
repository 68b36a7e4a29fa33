/* SPDX-License-Identifier: MIT */
/* tests/test_desc_more.c - descriptor behaviour the descriptor suites do not
 * reach: a driver's own kind whose optional hooks exist (setPurgeable,
 * getPageCounts, getPreparationID, a failing complete) and how sub and multi
 * descriptors pass their results and errors on; NULL descriptors; buffer
 * alignment from a physical mask, from sharing options, and the limits. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "test_desc_util.h"

TestSuite(desc_more, .fini = desc_fini);

/* ---- a custom kind with every optional hook ---- */

typedef struct hooked {
	IOOptionBits state;          /* the purgeable state the hook keeps */
	IOReturn purge_ret, complete_ret;
	uint64_t prep_id;
	int prepared, completes;
} hooked;

static hooked *hk(IOMemoryDescriptor *md) { return (hooked *)iomem_md_getContext(md); }
static addr64_t hk_seg(IOMemoryDescriptor *md, IOByteCount off, IOByteCount *len, IOOptionBits o)
{
	(void)md; (void)o;
	if (off >= 0x2000)
		return 0;
	if (len)
		*len = 0x2000 - off;
	return 0x80000000ull + off;
}
static IOReturn hk_prepare(IOMemoryDescriptor *md, IODirection d) { (void)d; hk(md)->prepared++; return kIOReturnSuccess; }
static IOReturn hk_complete(IOMemoryDescriptor *md, IODirection d)
{
	(void)d;
	hk(md)->completes++;
	if (hk(md)->complete_ret == kIOReturnSuccess)
		hk(md)->prepared--;
	return hk(md)->complete_ret;
}
static IOReturn hk_purge(IOMemoryDescriptor *md, IOOptionBits ns, IOOptionBits *old)
{
	hooked *h = hk(md);
	if (h->purge_ret != kIOReturnSuccess)
		return h->purge_ret;
	if (old)
		*old = h->state;
	if (ns != kIOMemoryPurgeableKeepCurrent)
		h->state = ns;
	return kIOReturnSuccess;
}
static IOReturn hk_counts(IOMemoryDescriptor *md, IOByteCount *res, IOByteCount *dirty)
{
	(void)md;
	if (res)
		*res = 2;
	if (dirty)
		*dirty = 1;
	return kIOReturnSuccess;
}
static uint64_t hk_id(IOMemoryDescriptor *md) { return hk(md)->prep_id; }

static const iomem_md_ops hk_ops = { "hooked", hk_seg, hk_prepare, hk_complete, hk_purge, hk_counts, hk_id, NULL };

IOMEM_TEST(desc_more, custom_kind_optional_hooks_are_called)
{
	hooked h = { kIOMemoryPurgeableNonVolatile, kIOReturnSuccess, kIOReturnSuccess, 0x1234, 0, 0 };
	IOMemoryDescriptor *md = iomem_md_withOps(&hk_ops, &h, 0x2000, kIODirectionInOut);
	cr_assert_not_null(md);
	IOOptionBits old = 99;
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(md, kIOMemoryPurgeableVolatile, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableNonVolatile);
	cr_expect_eq(h.state, kIOMemoryPurgeableVolatile);
	IOByteCount res = 0, dirty = 0;
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(md, &res, &dirty), kIOReturnSuccess);
	cr_expect_eq(res, 2);
	cr_expect_eq(dirty, 1);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(md), 0x1234);

	/* a sub-descriptor forwards to it */
	IOSubMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(md, 0x100, 0x100, kIODirectionInOut);
	cr_assert_not_null(sub);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(sub), 0x1234);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(sub, kIOMemoryPurgeableKeepCurrent, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableVolatile);

	/* a multi-descriptor: the first child that fails decides */
	hooked h2 = { kIOMemoryPurgeableNonVolatile, kIOReturnNotPrivileged, kIOReturnSuccess,
	              kIOPreparationIDUnprepared, 0, 0 };
	IOMemoryDescriptor *md2 = iomem_md_withOps(&hk_ops, &h2, 0x2000, kIODirectionInOut);
	cr_assert_not_null(md2);
	IOMemoryDescriptor *kids[2] = { md, md2 };
	IOMultiMemoryDescriptor *multi = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
	cr_assert_not_null(multi);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(multi, kIOMemoryPurgeableNonVolatile, &old), kIOReturnNotPrivileged);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(multi), kIOPreparationIDUnprepared, "a child not prepared");
	h2.prep_id = kIOPreparationIDUnsupported;
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(multi), kIOPreparationIDUnsupported);

	/* complete: a child's error comes back, every child is still completed */
	cr_assert_eq(IOMemoryDescriptor_prepare(multi, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(h.prepared, 1);
	cr_expect_eq(h2.prepared, 1);
	h.complete_ret = kIOReturnIOError;
	cr_expect_eq(IOMemoryDescriptor_complete(multi, kIODirectionNone), kIOReturnIOError);
	cr_expect_eq(h.completes, 1);
	cr_expect_eq(h2.completes, 1, "the second child completed although the first failed");
	cr_expect_eq(h2.prepared, 0);
	/* the multi itself is no longer prepared: nothing more happens */
	cr_expect_eq(IOMemoryDescriptor_complete(multi, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(h.completes, 1);
	cr_expect_eq(h2.completes, 1);
	iomem_test_expect_reports(IOMEM__DEBUG ? 1 : 0);
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMemoryDescriptor_complete");
	IOMemoryDescriptor_release(multi);
	IOMemoryDescriptor_release(md2);
	IOMemoryDescriptor_release(sub);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(desc_more, null_descriptor_inputs)
{
	unsigned char b[4] = { 1, 2, 3, 4 };
	IOByteCount res = 5;
	cr_expect_eq(IOMemoryDescriptor_writeBytes(NULL, 0, b, 4), 0);
	cr_expect_eq(IOMemoryDescriptor_readBytes(NULL, 0, b, 4), 0);
	cr_expect_eq(IOMemoryDescriptor_performOperation(NULL, kIOMemoryIncoherentIOFlush, 0, 4), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryDescriptor_getPageCounts(NULL, &res, NULL), kIOReturnBadArgument);
	cr_expect_eq(res, 5);
	cr_expect_eq(IOMemoryDescriptor_getPreparationID(NULL), kIOPreparationIDUnsupported);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(NULL, kIOMemoryPurgeableVolatile, NULL), kIOReturnBadArgument);
	iomem_test_expect_reports(0);
}

/* ---- buffer alignment rules ---- */

IOMEM_TEST(desc_more, buffer_alignment_from_mask_and_options)
{
	const IOByteCount page = DESC_PAGE;
	IOBufferMemoryDescriptor *b;
	IOByteCount seg;
	addr64_t pa;

	/* a mask whose lowest set bit is below a page: page alignment, the
	 * whole buffer at or below the mask */
	b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionInOut, 3 * page, 0xFFFFFF00ull);
	cr_assert_not_null(b);
	pa = IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0);
	cr_expect_eq(pa & (page - 1), 0, "page aligned: %llx", (unsigned long long)pa);
	cr_expect_eq(seg, 3 * page, "physically contiguous");
	cr_expect_leq(pa + 3 * page - 1, 0xFFFFFFFFull);
	IOMemoryDescriptor_release(b);

	/* a mask whose alignment would not fit 32 bits, an alignment past 2^31 */
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionInOut, page,
	                                                               0xFFFFFFFF00000000ull));
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIODirectionInOut, page,
	                                                          (vm_offset_t)1 << 32));
	/* shared with user space: page granular, whatever the alignment asked */
	for (int i = 0; i < 4; i++) {
		b = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIODirectionInOut | kIOMemoryKernelUserShared,
		                                               100, 16);
		cr_assert_not_null(b);
		cr_expect_eq((uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(b) & (page - 1), 0);
		IOMemoryDescriptor_release(b);
	}
	iomem_test_expect_reports(0);
}

IOMEM_TEST(desc_more, host_only_and_remote_memory_bypass_the_mapper)
{
	unsigned char *p = IOMallocAligned(DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(p);
	static const IOOptionBits opt[3] = { 0, kIOMemoryHostOnly, kIOMemoryRemote };
	for (int i = 0; i < 3; i++) {
		IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange((mach_vm_address_t)(uintptr_t)p, DESC_PAGE,
		                                                            kIODirectionIn | opt[i], kernel_task);
		cr_assert_not_null(md);
		cr_expect_eq((IOMemoryDescriptor_getFlags(md) & kIOMemoryMapperNone) != 0, i != 0, "option %d", i);
		IOMemoryDescriptor_release(md);
	}
	IOFreeAligned(p, DESC_PAGE);
}

IOMEM_TEST(desc_more, physical_descriptor_of_zero_length)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withPhysicalAddress(0x10000, 0, kIODirectionIn);
	cr_assert_not_null(md, "zero length is accepted, as for virtual descriptors");
	IOByteCount seg = 7;
	cr_expect_eq(IOMemoryDescriptor_getLength(md), 0);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0);
	cr_expect_eq(seg, 0);
	cr_expect_eq(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	IOMemoryDescriptor_release(md);
}

IOMEM_TEST(desc_more, buffer_and_interleaved_calls_on_the_wrong_object)
{
	unsigned char *p = IOMallocAligned(DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(p);
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(p, DESC_PAGE, kIODirectionIn);
	cr_assert_not_null(md);
	IOOptionBits before = (IOOptionBits)IOMemoryDescriptor_getFlags(md);
	IOBufferMemoryDescriptor_setDirection(NULL, kIODirectionOut);
	cr_expect_null(IOBufferMemoryDescriptor_getBytesNoCopyRange(NULL, 0, 1));
	cr_expect_null(IOBufferMemoryDescriptor_getBytesNoCopyRange(md, 0, 1), "not a buffer");
	IOInterleavedMemoryDescriptor_clearMemoryDescriptors(NULL, kIODirectionNone);
	IOInterleavedMemoryDescriptor_clearMemoryDescriptors(md, kIODirectionNone);   /* not interleaved: nothing */
	cr_expect_eq((IOOptionBits)IOMemoryDescriptor_getFlags(md), before);
	cr_expect_eq(IOMemoryDescriptor_getLength(md), DESC_PAGE);
	IOMemoryDescriptor_release(md);
	IOFreeAligned(p, DESC_PAGE);
}
