/* SPDX-License-Identifier: MIT */
/* tests/test_mappedio.c - IOMappedRead8..64 / IOMappedWrite8..64
 * (reference §4.3) on the software machine: RAM frames, simulated device
 * registers (iomem_posix_mmio_register), addresses with nothing behind
 * them, addresses that are IOVAs of a system mapper; IOFlushProcessorCache
 * (§4.4). Reports are made only with IOMEM_DEBUG. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_map.h"
#include "test_desc_util.h"

TestSuite(mappedio, .fini = desc_fini);

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)

/* Far from every frame pool of the machine (low < 2 GiB, general from
 * 2 GiB upwards as used, high from 1 TiB). */
#define NOWHERE 0x7E00000000ull
#define DEVBASE 0x7F00000000ull

IOMEM_TEST(mappedio, every_width_on_ram)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 5);
		IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(2 * DESC_PAGE, kIODirectionInOut, true);
		cr_assert_not_null(bmd);
		unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(bmd);
		memset(p, 0, 2 * DESC_PAGE);
		IOPhysicalAddress pa = IOMemoryDescriptor_getPhysicalSegment(bmd, 0, NULL, 0);
		cr_assert_neq(pa, 0);

		IOMappedWrite8(pa + 1, 0xA5);
		IOMappedWrite16(pa + 2, 0xBEEF);
		IOMappedWrite32(pa + 4, 0x12345678u);
		IOMappedWrite64(pa + 8, 0x0102030405060708ull);
		uint8_t b;
		uint16_t h;
		uint32_t w;
		uint64_t d;
		memcpy(&b, p + 1, 1);
		memcpy(&h, p + 2, 2);
		memcpy(&w, p + 4, 4);
		memcpy(&d, p + 8, 8);
		cr_expect_eq(b, 0xA5);
		cr_expect_eq(h, 0xBEEF);
		cr_expect_eq(w, 0x12345678u);
		cr_expect_eq(d, 0x0102030405060708ull);
		cr_expect_eq(p[0], 0, "byte before untouched");
		cr_expect_eq(p[16], 0, "byte after untouched");

		/* reads see what the CPU wrote */
		uint64_t v = 0x1122334455667788ull;
		memcpy(p + DESC_PAGE + 64, &v, 8);
		cr_expect_eq(IOMappedRead8(pa + DESC_PAGE + 64), 0x88);
		cr_expect_eq(IOMappedRead16(pa + DESC_PAGE + 64), 0x7788);
		cr_expect_eq(IOMappedRead32(pa + DESC_PAGE + 64), 0x55667788u);
		cr_expect_eq(IOMappedRead64(pa + DESC_PAGE + 64), v);
		cr_expect_eq(IOMappedRead32(pa + DESC_PAGE + 68), 0x11223344u);

		/* unaligned, across the page boundary (physically contiguous buffer) */
		IOMappedWrite32(pa + DESC_PAGE - 2, 0xCAFEF00Du);
		memcpy(&w, p + DESC_PAGE - 2, 4);
		cr_expect_eq(w, 0xCAFEF00Du);
		cr_expect_eq(IOMappedRead32(pa + DESC_PAGE - 2), 0xCAFEF00Du);
		IOMappedWrite64(pa + 3, 0xFFEEDDCCBBAA9988ull);
		cr_expect_eq(IOMappedRead64(pa + 3), 0xFFEEDDCCBBAA9988ull);
		cr_expect_eq(IOMappedRead16(pa + 3), 0x9988);
		IOMemoryDescriptor_release(bmd);
	}
	iomem_test_expect_reports(0);
}

/* A simulated device: a 256-byte register file, and a log of accesses. */
struct dev {
	unsigned char regs[256];
	unsigned reads, writes;
	IOByteCount last_off;
	unsigned last_width;
	uint64_t last_value;
};

static uint64_t dev_read(void *ctx, IOByteCount off, unsigned width)
{
	struct dev *d = ctx;
	uint64_t v = 0;
	d->reads++;
	d->last_off = off;
	d->last_width = width;
	memcpy(&v, d->regs + off, width);
	if (width < 8)
		v |= 0xDEAD000000000000ull;    /* garbage above the width is masked off */
	return v;
}

static void dev_write(void *ctx, IOByteCount off, unsigned width, uint64_t value)
{
	struct dev *d = ctx;
	d->writes++;
	d->last_off = off;
	d->last_width = width;
	d->last_value = value;
	memcpy(d->regs + off, &value, width);
}

IOMEM_TEST(mappedio, mmio_window_callbacks)
{
	struct dev d;
	memset(&d, 0, sizeof d);
	cr_assert_eq(iomem_posix_mmio_register(DEVBASE, 256, dev_read, dev_write, &d), kIOReturnSuccess);
	IOMappedWrite8(DEVBASE + 3, 0x7F);
	cr_expect_eq(d.last_off, 3);
	cr_expect_eq(d.last_width, 1);
	cr_expect_eq(d.last_value, 0x7F);
	IOMappedWrite16(DEVBASE + 0x10, 0xABCD);
	cr_expect_eq(d.last_width, 2);
	cr_expect_eq(d.last_value, 0xABCD);
	IOMappedWrite32(DEVBASE + 0x20, 0x89ABCDEFu);
	cr_expect_eq(d.last_off, 0x20);
	cr_expect_eq(d.last_width, 4);
	IOMappedWrite64(DEVBASE + 0xF8, 0x1020304050607080ull);
	cr_expect_eq(d.last_off, 0xF8);
	cr_expect_eq(d.last_width, 8);
	cr_expect_eq(d.last_value, 0x1020304050607080ull);
	cr_expect_eq(d.writes, 4);

	cr_expect_eq(IOMappedRead8(DEVBASE + 3), 0x7F);
	cr_expect_eq(d.last_width, 1);
	cr_expect_eq(IOMappedRead16(DEVBASE + 0x10), 0xABCD);
	cr_expect_eq(d.last_width, 2);
	cr_expect_eq(IOMappedRead32(DEVBASE + 0x20), 0x89ABCDEFu);
	cr_expect_eq(d.last_width, 4);
	cr_expect_eq(IOMappedRead64(DEVBASE + 0xF8), 0x1020304050607080ull);
	cr_expect_eq(d.last_off, 0xF8);
	cr_expect_eq(d.reads, 4);

	/* registration rules */
	cr_expect_eq(iomem_posix_mmio_register(DEVBASE + 255, 16, dev_read, dev_write, &d), kIOReturnBusy);
	cr_expect_eq(iomem_posix_mmio_register(DEVBASE - 16, 17, dev_read, NULL, &d), kIOReturnBusy);
	cr_expect_eq(iomem_posix_mmio_register(DEVBASE + 0x1000, 0, dev_read, dev_write, &d), kIOReturnBadArgument);
	cr_expect_eq(iomem_posix_mmio_register(DEVBASE + 0x1000, 16, NULL, NULL, &d), kIOReturnBadArgument);
	cr_expect_eq(iomem_posix_mmio_register(~0ull - 8, 16, dev_read, NULL, &d), kIOReturnBadArgument);
	cr_expect_eq(iomem_posix_mmio_unregister(DEVBASE + 1), kIOReturnNotFound);
	/* a write-only window: reads give all ones; a read-only one drops writes */
	cr_assert_eq(iomem_posix_mmio_register(DEVBASE + 0x1000, 16, NULL, dev_write, &d), kIOReturnSuccess);
	cr_expect_eq(IOMappedRead32(DEVBASE + 0x1000), 0xFFFFFFFFu);
	cr_assert_eq(iomem_posix_mmio_register(DEVBASE + 0x2000, 16, dev_read, NULL, &d), kIOReturnSuccess);
	unsigned w = d.writes;
	IOMappedWrite32(DEVBASE + 0x2000, 5);
	cr_expect_eq(d.writes, w);
	/* the table fills up */
	int n = 3;
	while (iomem_posix_mmio_register(DEVBASE + 0x10000 * (IOPhysicalAddress)n, 16, dev_read, NULL, &d) ==
	       kIOReturnSuccess)
		n++;
	cr_expect_eq(n, IOMEM_POSIX_MMIO_WINDOWS);
	cr_expect_eq(iomem_posix_mmio_register(DEVBASE + 0x10000 * (IOPhysicalAddress)n, 16, dev_read, NULL, &d),
	             kIOReturnNoResources);
	for (int i = 3; i < n; i++)
		cr_expect_eq(iomem_posix_mmio_unregister(DEVBASE + 0x10000 * (IOPhysicalAddress)i), kIOReturnSuccess);
	cr_expect_eq(iomem_posix_mmio_unregister(DEVBASE + 0x2000), kIOReturnSuccess);
	cr_expect_eq(iomem_posix_mmio_unregister(DEVBASE + 0x1000), kIOReturnSuccess);
	cr_expect_eq(iomem_posix_mmio_unregister(DEVBASE), kIOReturnSuccess);
	cr_expect_eq(iomem_posix_mmio_unregister(DEVBASE), kIOReturnNotFound);
	iomem_test_expect_reports(0);
	/* gone: the address has nothing behind it any more */
	cr_expect_eq(IOMappedRead8(DEVBASE + 3), 0xFF);
	iomem_test_expect_reports(DBG_REPORTS(1));
}

IOMEM_TEST(mappedio, unbacked_address_reads_ones_and_is_reported)
{
	cr_expect_eq(IOMappedRead8(NOWHERE), 0xFF);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG) {
		iomem_test_expect_report_has("IOMappedRead8");
		iomem_test_expect_report_has("0x7e00000000");
	}
	cr_expect_eq(IOMappedRead16(NOWHERE + 2), 0xFFFF);
	cr_expect_eq(IOMappedRead32(NOWHERE + 4), 0xFFFFFFFFu);
	cr_expect_eq(IOMappedRead64(NOWHERE + 8), ~0ull);
	iomem_test_expect_reports(DBG_REPORTS(4));
	IOMappedWrite16(NOWHERE + 6, 0x1234);
	iomem_test_expect_reports(DBG_REPORTS(5));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IOMappedWrite16");
	IOMappedWrite8(NOWHERE, 1);
	IOMappedWrite32(NOWHERE, 1);
	IOMappedWrite64(NOWHERE, 1);
	iomem_test_expect_reports(DBG_REPORTS(8));
	/* a frame that was RAM but is no longer wired */
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(DESC_PAGE, kIODirectionInOut, true);
	cr_assert_not_null(bmd);
	IOPhysicalAddress pa = IOMemoryDescriptor_getPhysicalSegment(bmd, 0, NULL, 0);
	IOMappedWrite32(pa, 7);
	cr_expect_eq(IOMappedRead32(pa), 7);
	IOMemoryDescriptor_release(bmd);
	cr_expect_eq(IOMappedRead32(pa), 0xFFFFFFFFu);
	iomem_test_expect_reports(DBG_REPORTS(9));
}

IOMEM_TEST(mappedio, through_the_system_mapper)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOMapper *m = iomem_swiommu_create(NULL);
	iomem_mapper_set_system(m);
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(3 * DESC_PAGE, kIODirectionInOut, false);
	cr_assert_not_null(bmd);
	unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(bmd);
	for (size_t i = 0; i < 3 * DESC_PAGE; i++)
		p[i] = (unsigned char)(i * 7u + 1u);
	uint64_t iova, len;
	cr_assert_eq(IOMapper_iovmMapMemory(m, bmd, 0, 3 * DESC_PAGE, kIODMAMapReadAccess | kIODMAMapWriteAccess,
	                                    NULL, NULL, NULL, &iova, &len), kIOReturnSuccess);
	for (IOByteCount off = 0; off < 3 * DESC_PAGE; off += DESC_PAGE / 2 + 8) {
		uint32_t want;
		memcpy(&want, p + off, 4);
		cr_expect_eq(IOMappedRead32(iova + off), want, "IOVA +%llu", (unsigned long long)off);
		cr_expect_eq(IOMappedRead8(iova + off + 1), p[off + 1]);
	}
	IOMappedWrite64(iova + 2 * DESC_PAGE + 16, 0xA1B2C3D4E5F60718ull);
	uint64_t got;
	memcpy(&got, p + 2 * DESC_PAGE + 16, 8);
	cr_expect_eq(got, 0xA1B2C3D4E5F60718ull);
	IOMappedWrite16(iova + DESC_PAGE, 0x5A5A);
	cr_expect_eq(p[DESC_PAGE], 0x5A);
	cr_expect_eq(p[DESC_PAGE + 1], 0x5A);
	iomem_test_expect_reports(0);
	/* the CPU-physical address is not an IOVA here */
	cr_assert_eq(IOMapper_iovmUnmapMemory(m, bmd, NULL, iova, len), kIOReturnSuccess);
	cr_expect_eq(IOMappedRead32(iova), 0xFFFFFFFFu);
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("not mapped");
	unsigned char before = p[0];
	IOMappedWrite8(iova, (unsigned char)(before + 1));
	cr_expect_eq(p[0], before, "a write to an unmapped IOVA is dropped");
	iomem_test_expect_reports(DBG_REPORTS(2));
	iomem_mapper_set_system(NULL);
	IOMapper_release(m);
	IOMemoryDescriptor_release(bmd);
}

IOMEM_TEST(mappedio, flush_processor_cache_rules)
{
	unsigned char buf[256];
	memset(buf, 1, sizeof buf);
	cr_expect_eq(IOFlushProcessorCache(kernel_task, (IOVirtualAddress)buf, sizeof buf), kIOReturnSuccess);
	cr_expect_eq(IOFlushProcessorCache(kernel_task, (IOVirtualAddress)buf, 0), kIOReturnSuccess);
	cr_expect_eq(IOFlushProcessorCache(NULL, (IOVirtualAddress)buf, sizeof buf), kIOReturnUnsupported);
	cr_expect_eq(IOFlushProcessorCache((task_t)(uintptr_t)buf, (IOVirtualAddress)buf, sizeof buf),
	             kIOReturnUnsupported, "any task but kernel_task");
	cr_expect(iomem_test_all_bytes(buf, sizeof buf, 1));
	iomem_test_expect_reports(0);
}
