/* SPDX-License-Identifier: MIT */
/* tests/test_desc_buffer.c - IOBufferMemoryDescriptor (reference §1.3) on
 * every layout policy, with 4 KiB and 16 KiB pages. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "test_desc_util.h"

TestSuite(buffer, .fini = desc_fini);
TestSuite(buffer_mask, .fini = desc_fini);
TestSuite(buffer_accessors, .fini = desc_fini);

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void basic_on_every_layout(void)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 3, 1);
		vm_size_t cap = 5 * DESC_PAGE + 123;
		IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(cap, kIODirectionInOut, false);
		cr_assert_not_null(b);
		cr_expect_eq(iomem_md_kind_of(b), IOMEM_MD_BUFFER);
		cr_expect_eq(IOMemoryDescriptor_getLength(b), cap, "length == capacity after creation");
		cr_expect_eq(IOBufferMemoryDescriptor_getCapacity(b), cap);
		unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		cr_assert_not_null(p);
		cr_expect_eq((uintptr_t)p & (DESC_PAGE - 1), 0);
		cr_expect(all_zero(p, cap), "zero-filled");
		/* prepared at creation: walks without prepare */
		uint32_t n = desc_check_walk(b, desc_va_linear, p, true);
		if (desc_layouts[l] == IOMEM_POSIX_LAYOUT_SCATTERED)
			cr_expect_eq(n, 6);
		if (desc_layouts[l] == IOMEM_POSIX_LAYOUT_CONTIGUOUS)
			cr_expect_eq(n, 1);
		desc_fill(p, cap, 42);
		unsigned char *rd = malloc(cap);
		cr_expect_eq(IOMemoryDescriptor_readBytes(b, 0, rd, cap), cap);
		cr_expect_arr_eq(rd, p, cap);
		desc_fill(rd, cap, 43);
		cr_expect_eq(IOMemoryDescriptor_writeBytes(b, 0, rd, cap), cap);
		cr_expect_arr_eq(rd, p, cap);
		free(rd);
		/* prepare nests on top of the buffer's own wiring */
		cr_expect_eq(IOMemoryDescriptor_prepare(b, 0), kIOReturnSuccess);
		cr_expect_eq(IOMemoryDescriptor_complete(b, 0), kIOReturnSuccess);
		cr_expect_neq(IOMemoryDescriptor_getPhysicalAddress(b), 0);
		IOMemoryDescriptor_release(b);
	}
	iomem_test_expect_reports(0);
}

Test(buffer, with_capacity_on_every_layout) { basic_on_every_layout(); }

Test(buffer, with_capacity_on_every_layout_16k)
{
	cr_assert_eq(iomem_posix_set_page_size(16384), kIOReturnSuccess);
	basic_on_every_layout();
}

Test(buffer, bad_input)
{
	struct iomem_task other = { 1 };
	cr_expect_null(IOBufferMemoryDescriptor_withCapacity(0, kIODirectionIn, false));
	cr_expect_null(IOBufferMemoryDescriptor_withOptions(kIODirectionIn, 0, 1));
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithOptions(&other, kIOMemoryPageable, 4096, 1));
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithOptions(NULL, 0, 4096, 1));
	cr_expect_null(IOBufferMemoryDescriptor_withBytes(NULL, 10, kIODirectionIn, false));
	cr_expect_null(IOBufferMemoryDescriptor_withBytes("x", 0, kIODirectionIn, false));
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIOMemoryPageable |
	               kIOMemoryPhysicallyContiguous, 4096, 1), "pageable cannot be contiguous");
	cr_expect_null(IOBufferMemoryDescriptor_withOptions(0, ~(vm_size_t)0, 1));
	iomem_test_expect_reports(0);
}

Test(buffer, contiguous_on_scattered_layout)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(16 * DESC_PAGE, kIODirectionInOut, true);
	cr_assert_not_null(b);
	IOByteCount seg;
	addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0);
	cr_expect_eq(seg, 16 * DESC_PAGE, "one segment");
	cr_expect_eq(pa & (16 * DESC_PAGE - 1), 0, "withCapacity(contiguous): alignment = capacity");
	cr_expect_eq(desc_check_walk(b, desc_va_linear, IOBufferMemoryDescriptor_getBytesNoCopy(b), true), 1);
	IOMemoryDescriptor_release(b);
	/* a non-power-of-two capacity: alignment rounded up */
	b = IOBufferMemoryDescriptor_withCapacity(3 * DESC_PAGE, kIODirectionIn, true);
	cr_assert_not_null(b);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(b) & (4 * DESC_PAGE - 1), 0);
	IOMemoryDescriptor_release(b);
	/* HostPhysicallyContiguous and alignment > page force contiguity too */
	b = IOBufferMemoryDescriptor_withOptions(kIODirectionIn | kIOMemoryHostPhysicallyContiguous, 4 * DESC_PAGE, 1);
	cr_assert_not_null(b);
	cr_expect_eq(desc_check_walk(b, desc_va_linear, IOBufferMemoryDescriptor_getBytesNoCopy(b), true), 1);
	IOMemoryDescriptor_release(b);
	b = IOBufferMemoryDescriptor_withOptions(kIODirectionIn, 2 * DESC_PAGE, 8 * DESC_PAGE);
	cr_assert_not_null(b);
	cr_expect_eq((uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(b) & (8 * DESC_PAGE - 1), 0);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(b) & (8 * DESC_PAGE - 1), 0);
	cr_expect_eq(desc_check_walk(b, desc_va_linear, IOBufferMemoryDescriptor_getBytesNoCopy(b), true), 1);
	IOMemoryDescriptor_release(b);
	iomem_test_expect_reports(0);
}

Test(buffer, out_buffer_is_wired_read_only)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(100, kIODirectionOut, false);
	cr_assert_not_null(b);
	cr_expect_eq(IOMemoryDescriptor_writeBytes(b, 0, "abc", 3), 0, "as XNU: prepared for Out only");
	memcpy(IOBufferMemoryDescriptor_getBytesNoCopy(b), "abc", 3);
	char out[3];
	cr_expect_eq(IOMemoryDescriptor_readBytes(b, 0, out, 3), 3);
	cr_expect_arr_eq(out, "abc", 3);
	IOMemoryDescriptor_release(b);
}

Test(buffer, pageable_needs_prepare)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task,
	                                    kIOMemoryPageable | kIODirectionInOut, 3 * DESC_PAGE, 0);
	cr_assert_not_null(b);
	cr_expect(IOMemoryDescriptor_getFlags(b) & kIOMemoryBufferPageable);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(b), 0);
	iomem_test_expect_reports(DBG_REPORTS(1));
	cr_assert_eq(IOMemoryDescriptor_prepare(b, 0), kIOReturnSuccess);
	cr_expect_eq(desc_check_walk(b, desc_va_linear, IOBufferMemoryDescriptor_getBytesNoCopy(b), true) >= 1, 1);
	cr_assert_eq(IOMemoryDescriptor_complete(b, 0), kIOReturnSuccess);
	IOMemoryDescriptor_release(b);
	iomem_test_expect_reports(DBG_REPORTS(1));
}

Test(buffer, purgeable_states)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withOptions(kIOMemoryPurgeable | kIODirectionInOut,
	                                                                   DESC_PAGE, 0);
	IOOptionBits old = 0;
	cr_assert_not_null(b);
	memset(IOBufferMemoryDescriptor_getBytesNoCopy(b), 0x5a, DESC_PAGE);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(b, kIOMemoryPurgeableKeepCurrent, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableNonVolatile);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(b, kIOMemoryPurgeableVolatile, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableNonVolatile);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(b, kIOMemoryPurgeableEmpty, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableVolatile);
	cr_expect(all_zero(IOBufferMemoryDescriptor_getBytesNoCopy(b), DESC_PAGE), "emptied");
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(b, kIOMemoryPurgeableNonVolatile, NULL), kIOReturnSuccess);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(b, kIOMemoryPurgeableKeepCurrent, &old), kIOReturnSuccess);
	cr_expect_eq(old, kIOMemoryPurgeableNonVolatile);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(b, 9, &old), kIOReturnBadArgument);
	IOMemoryDescriptor_release(b);
	b = IOBufferMemoryDescriptor_withCapacity(10, kIODirectionIn, false);
	cr_expect_eq(IOMemoryDescriptor_setPurgeable(b, kIOMemoryPurgeableVolatile, &old), kIOReturnUnsupported);
	IOMemoryDescriptor_release(b);
}

/* ---- physical mask ---- */

Test(buffer_mask, below_4g_contiguous_on_every_layout)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 5);
		IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task,
		                                    kIODirectionInOut, 64 * DESC_PAGE, 0xFFFFF000ull);
		cr_assert_not_null(b);
		IOByteCount seg;
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0);
		cr_expect_eq(seg, 64 * DESC_PAGE, "contiguous");
		cr_expect_leq(pa + seg - 1, 0xFFFFFFFFull, "below 4 GiB (layout %s)", iomem_posix_layout_name(desc_layouts[l]));
		cr_expect_eq(pa & (DESC_PAGE - 1), 0);
		IOMemoryDescriptor_release(b);
	}
}

Test(buffer_mask, alignment_from_lowest_mask_bit)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task,
	                                    kIODirectionIn, 100, 0x3FFF0000ull);
	cr_assert_not_null(b);
	addr64_t pa = IOMemoryDescriptor_getPhysicalAddress(b);
	cr_expect_eq(pa & 0xFFFF, 0, "64 KiB aligned");
	cr_expect_leq(pa + 99, 0x3FFFFFFFull);
	cr_expect_eq(IOMemoryDescriptor_getLength(b), 100);
	IOMemoryDescriptor_release(b);
}

Test(buffer_mask, masks_that_cannot_be_met)
{
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn, 4096, 0xFF000ull),
	               "below 1 MiB: the low pool starts there");
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn,
	               (mach_vm_size_t)4 << 30, 0xFFFFF000ull), "4 GiB below 4 GiB");
	cr_expect_null(IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIOMemoryPageable, 4096, 0xFFFFF000ull));
	iomem_posix_machine_stats_t st;
	iomem_posix_machine_stats(&st);
	cr_expect_eq(st.low_pages, 0);
}

Test(buffer_mask, many_restricted_buffers_do_not_overlap)
{
	IOBufferMemoryDescriptor *b[16];
	for (int i = 0; i < 16; i++) {
		b[i] = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionInOut, 3 * DESC_PAGE, 0xFFFFF000ull);
		cr_assert_not_null(b[i]);
		memset(IOBufferMemoryDescriptor_getBytesNoCopy(b[i]), i, 3 * DESC_PAGE);
	}
	for (int i = 0; i < 16; i++) {
		IOPhysicalAddress pa = IOMemoryDescriptor_getPhysicalAddress(b[i]);
		for (int j = 0; j < i; j++) {
			IOPhysicalAddress q = IOMemoryDescriptor_getPhysicalAddress(b[j]);
			cr_expect(pa + 3 * DESC_PAGE <= q || q + 3 * DESC_PAGE <= pa);
		}
		unsigned char *v = iomem_posix_phys_to_virt(pa + DESC_PAGE);
		cr_expect_eq(v[0], i);
	}
	for (int i = 0; i < 16; i++)
		IOMemoryDescriptor_release(b[i]);
}

/* ---- accessors ---- */

Test(buffer_accessors, set_length_append_no_copy_range)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(64, kIODirectionInOut, false);
	cr_assert_not_null(b);
	unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	IOBufferMemoryDescriptor_setLength(b, 65);
	cr_expect_eq(IOMemoryDescriptor_getLength(b), 64, "ignored above capacity");
	IOBufferMemoryDescriptor_setLength(b, 10);
	cr_expect_eq(IOMemoryDescriptor_getLength(b), 10);
	IOByteCount seg;
	cr_expect_neq(IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0), 0);
	cr_expect_eq(seg, 10, "segments end at the length");
	cr_expect_eq(IOMemoryDescriptor_getPhysicalSegment(b, 10, &seg, 0), 0);
	cr_expect_eq(IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 0, 10), p);
	cr_expect_eq(IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 9, 1), p + 9);
	cr_expect_null(IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 9, 2));
	cr_expect_null(IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 10, 0), "start == length is NULL");
	cr_expect_null(IOBufferMemoryDescriptor_getBytesNoCopyRange(b, 1, ~(vm_size_t)0), "overflow");
	cr_expect(IOBufferMemoryDescriptor_appendBytes(b, "0123456789", 10));
	cr_expect_eq(IOMemoryDescriptor_getLength(b), 20);
	cr_expect_arr_eq(p + 10, "0123456789", 10);
	unsigned char big[100];
	memset(big, 0xee, sizeof big);
	cr_expect(IOBufferMemoryDescriptor_appendBytes(b, big, sizeof big), "truncates silently");
	cr_expect_eq(IOMemoryDescriptor_getLength(b), 64);
	cr_expect_eq(p[63], 0xee);
	cr_expect_not(IOBufferMemoryDescriptor_appendBytes(b, NULL, 1));
	cr_expect(IOBufferMemoryDescriptor_appendBytes(b, NULL, 0));
	IOBufferMemoryDescriptor_setDirection(b, kIODirectionOut);
	cr_expect_eq(IOMemoryDescriptor_getDirection(b), kIODirectionOut);
	cr_expect_eq(IOBufferMemoryDescriptor_getCapacity(b), 64);
	IOMemoryDescriptor_release(b);
	/* not a buffer */
	IOMemoryDescriptor *ph = IOMemoryDescriptor_withPhysicalAddress(0x1000, 8, kIODirectionIn);
	cr_expect_null(IOBufferMemoryDescriptor_getBytesNoCopy(ph));
	cr_expect_eq(IOBufferMemoryDescriptor_getCapacity(ph), 0);
	cr_expect_not(IOBufferMemoryDescriptor_appendBytes(ph, "x", 1));
	IOMemoryDescriptor_release(ph);
}

Test(buffer_accessors, with_bytes)
{
	static const char msg[] = "the quick brown fox";
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withBytes(msg, sizeof msg, kIODirectionOut, false);
	cr_assert_not_null(b);
	cr_expect_eq(IOMemoryDescriptor_getLength(b), sizeof msg);
	cr_expect_eq(IOBufferMemoryDescriptor_getCapacity(b), sizeof msg);
	char out[sizeof msg];
	cr_expect_eq(IOMemoryDescriptor_readBytes(b, 0, out, sizeof msg), sizeof msg);
	cr_expect_str_eq(out, msg);
	IOMemoryDescriptor_release(b);
	b = IOBufferMemoryDescriptor_withBytes(msg, sizeof msg, kIODirectionOut, true);
	cr_assert_not_null(b);
	cr_expect_str_eq((char *)IOBufferMemoryDescriptor_getBytesNoCopy(b), msg);
	IOMemoryDescriptor_release(b);
	b = IOBufferMemoryDescriptor_inTaskWithOptionsTagged(kernel_task, kIODirectionIn, 10, 1, 7, 8);
	cr_assert_not_null(b);
	IOMemoryDescriptor_release(b);
}
