// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * edu_driver.c - a small Linux PCI driver for QEMU's "edu" device
 * (1234:11e8, "-device edu"), written with iomem's IOKit API instead of the
 * kernel's DMA and MMIO calls:
 *
 *   registers   IOMappedRead32/64 and IOMappedWrite32/64 on BAR0's physical
 *               address (iomem ioremaps it: readl/writeq underneath);
 *   memory      one IOBufferMemoryDescriptor (kernel virtual memory, not
 *               physically contiguous);
 *   DMA         an IODMACommand whose mapper is the PCI device
 *               (iomem_linux_mapper_for_device: IOKit lets a device stand
 *               where the mapper goes), so its segments are the dma_addr_ts
 *               of the kernel's DMA API - swiotlb and the IOMMU included.
 *
 * At probe it checks the device (ID, the inverter register), then moves the
 * first half of the buffer into edu's 4 KiB buffer and back into the second
 * half, segment by segment, polling edu's DMA command register, and checks
 * every byte. It prints "edu_driver: PASS ..." or "edu_driver: FAIL ...",
 * and, at the end of module_init, the same verdict as one TAP test (the
 * kernel suite's CTest kernel.example loads it alone and checks that).
 *
 * Build (as the kernel test suite does, tests/kernel/module/Kbuild):
 *   make -C /lib/modules/$(uname -r)/build M=$PWD IOMEM_SRC=/path/to/iomem modules
 * with this file in $PWD and "obj-m := edu_driver.o", "ccflags-y += -I$(IOMEM_SRC)".
 * Load it on a VM with "-device edu,dma_mask=0xffffffffffffffff" and
 * "insmod edu_driver.ko dma_bits=64" (edu's default DMA mask is 28 bits:
 * dma_bits must match QEMU's dma_mask). No other driver may hold the device.
 *
 * edu's registers (QEMU docs/specs/edu.rst): 0x00 ID, 0x04 inverter,
 * 0x80/0x88/0x90/0x98 DMA source/destination/count/command; the device's
 * buffer is at device address 0x40000. Each transfer completes 100 ms of
 * virtual time later; QEMU 7.2 aborts on a transfer ending exactly at the
 * buffer's end, so at most 2048 bytes move at a time here.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/delay.h>
#include <linux/jiffies.h>

#define EDU_ID		0x00
#define EDU_INV		0x04
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_DMA_RUN	0x1
#define EDU_DMA_TO_RAM	0x2
#define EDU_BUF		0x40000ull
#define EDU_CHUNK	2048u
#define EDU_XFER	(2 * PAGE_SIZE + 700)	/* across 3 pages */

static uint dma_bits = 28;
module_param(dma_bits, uint, 0444);
MODULE_PARM_DESC(dma_bits, "DMA address bits of the edu device (QEMU's dma_mask)");

/* The self-test's verdict for the TAP line module_init prints (probe runs
 * synchronously inside pci_register_driver): -ENODEV until a probe ran. */
static int edu_selftest_result = -ENODEV;

struct edu {
	IOPhysicalAddress regs;		/* BAR0, physical */
	IOMapper *mapper;		/* the device, as IODMACommand's mapper */
};

/* one edu transfer between RAM address @ram and device buffer offset @dev */
static int edu_dma(struct edu *e, UInt64 ram, UInt64 dev, UInt64 len, bool to_ram)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(5000);

	IOMappedWrite64(e->regs + EDU_DMA_SRC, to_ram ? EDU_BUF + dev : ram);
	IOMappedWrite64(e->regs + EDU_DMA_DST, to_ram ? ram : EDU_BUF + dev);
	IOMappedWrite64(e->regs + EDU_DMA_CNT, len);
	IOMappedWrite64(e->regs + EDU_DMA_CMD, EDU_DMA_RUN | (to_ram ? EDU_DMA_TO_RAM : 0));
	while (IOMappedRead64(e->regs + EDU_DMA_CMD) & EDU_DMA_RUN) {
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(1000, 2000);
	}
	return 0;
}

/* Move [@from, @from + @len) of @cmd's prepared range to the device
 * buffer's first @len bytes (@len <= EDU_CHUNK), or those bytes back into
 * it (@to_ram), one edu transfer per generated segment. */
static int edu_move(struct edu *e, IODMACommand *cmd, UInt64 from, UInt64 len, bool to_ram)
{
	UInt64 off = from, dev = 0;

	while (dev < len) {
		IODMACommand_Segment64 seg;
		UInt32 n = 1;
		UInt64 done = 0;
		IOReturn r = IODMACommand_gen64IOVMSegments(cmd, &off, &seg, &n);

		if (r != kIOReturnSuccess) {
			pr_err("gen64IOVMSegments: %s\n", IOReturnString(r));
			return -EIO;
		}
		if (seg.fLength > len - dev)
			seg.fLength = len - dev;
		while (done < seg.fLength) {
			UInt64 c = min_t(UInt64, seg.fLength - done, EDU_CHUNK);
			/* byte i of the transfer is byte i of the device buffer */
			int ret = edu_dma(e, seg.fIOVMAddr + done, dev + done, c, to_ram);

			if (ret)
				return ret;
			done += c;
		}
		dev += seg.fLength;
	}
	return 0;
}

static int edu_selftest(struct pci_dev *pdev, struct edu *e)
{
	IOBufferMemoryDescriptor *buf;
	IODMACommand *cmd;
	unsigned char *p;
	size_t i, bad = 0, half = EDU_XFER;
	UInt64 xfer;
	int ret = 0;

	if (IOMappedRead32(e->regs + EDU_ID) != 0x010000ed) {
		pr_err("FAIL: not an edu device (ID %#x)\n", IOMappedRead32(e->regs + EDU_ID));
		return -ENODEV;
	}
	IOMappedWrite32(e->regs + EDU_INV, 0x12345678);
	if (IOMappedRead32(e->regs + EDU_INV) != ~0x12345678u) {
		pr_err("FAIL: the inverter register does not invert\n");
		return -EIO;
	}

	buf = IOBufferMemoryDescriptor_withCapacity(2 * half, kIODirectionInOut, false);
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, (UInt8)dma_bits, 0,
					     IODMACommand_kMapped, 0, 1, e->mapper, NULL);
	if (!buf || !cmd) {
		ret = -ENOMEM;
		goto out;
	}
	p = IOBufferMemoryDescriptor_getBytesNoCopy(buf);
	for (i = 0; i < half; i++) {
		p[i] = (unsigned char)(i * 7 + (i >> 9));
		p[half + i] = 0x6b;
	}
	/* prepare: the buffer is mapped for the device (dma_map_sg underneath) */
	if (IODMACommand_setMemoryDescriptor(cmd, buf, true) != kIOReturnSuccess) {
		pr_err("FAIL: setMemoryDescriptor\n");
		ret = -EIO;
		goto out;
	}
	/* a round trip through edu in pieces of EDU_CHUNK: each piece out to
	 * the device buffer, then back into the second half */
	for (xfer = 0; xfer < half && !ret; xfer += EDU_CHUNK) {
		UInt64 c = min_t(UInt64, half - xfer, EDU_CHUNK);

		ret = edu_move(e, cmd, xfer, c, false);
		if (!ret)
			ret = edu_move(e, cmd, half + xfer, c, true);
	}
	/* complete: dma_unmap_sg (swiotlb copies the device's bytes back) */
	IODMACommand_clearMemoryDescriptor(cmd, true);
	if (ret) {
		pr_err("FAIL: DMA error %d\n", ret);
		goto out;
	}
	for (i = 0; i < half; i++)
		bad += p[half + i] != p[i];
	if (bad) {
		pr_err("FAIL: %zu of %zu bytes differ after the round trip\n", bad, half);
		ret = -EIO;
	} else {
		pr_info("PASS: %zu bytes through edu's DMA engine and back, every byte checked (%s)\n", half,
			dev_name(&pdev->dev));
	}
out:
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(buf);
	return ret;
}

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edu *e;
	int ret;

	e = devm_kzalloc(&pdev->dev, sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pci_request_region(pdev, 0, KBUILD_MODNAME);
	if (ret)
		return ret;
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(dma_bits));
	if (ret)
		goto fail;
	pci_set_master(pdev);
	e->regs = pci_resource_start(pdev, 0);
	e->mapper = iomem_linux_mapper_for_device(&pdev->dev);
	if (!e->mapper) {
		ret = -ENOMEM;
		goto fail;
	}
	pci_set_drvdata(pdev, e);
	ret = edu_selftest(pdev, e);
	edu_selftest_result = ret;
	if (ret == 0)
		return 0;
	IOMapper_release(e->mapper);
fail:
	pci_release_region(pdev, 0);
	return ret;
}

static void edu_remove(struct pci_dev *pdev)
{
	struct edu *e = pci_get_drvdata(pdev);

	pci_clear_master(pdev);
	IOMapper_release(e->mapper);
	pci_release_region(pdev, 0);
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = KBUILD_MODNAME,
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
};
static int __init edu_init(void)
{
	int ret = pci_register_driver(&edu_driver);
	bool ok = ret == 0 && edu_selftest_result == 0;

	pr_info("TAP version 13\n");
	pr_info("1..1\n");
	pr_info("%s 1 - edu DMA round trip through IODMACommand, every byte checked\n", ok ? "ok" : "not ok");
	if (!ok)
		pr_info("# pci_register_driver %d, self-test %d\n", ret, edu_selftest_result);
	pr_info("KTEST-RESULT pass=%d fail=%d skip=0\n", ok, !ok);
	return ret;
}

static void __exit edu_exit(void)
{
	pci_unregister_driver(&edu_driver);
}

module_init(edu_init);
module_exit(edu_exit);

MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("iomem example: QEMU edu PCI driver with the IOKit memory and DMA API");
MODULE_AUTHOR("the iomem authors");
