/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * ktest_edu.h - QEMU's "edu" PCI device (1234:11e8, "-device edu") as a real
 * DMA engine for iomem's kernel test module. Included once by iomem_ktest.c
 * (everything is static, so each of the two test modules has its own copy).
 *
 *   ktest_edu_register()/ktest_edu_unregister()  bind our pci_driver
 *   ktest_edu                                    the bound device, or NULL
 *   ktest_edu_copy(from, to, len)                device-driven memcpy between
 *                                                two dma_addr_t's (through its
 *                                                4 KiB buffer, 2 KiB at a time)
 *   ktest_edu_mode_ok(mode)                      does the device's DMA setup
 *                                                (IOMMU domain, swiotlb) match
 *                                                the QEMU mode we were booted in
 *
 * BAR0 is mapped with plain ioremap() and accessed with readl/writeq, which
 * is what IOMappedRead/Write will wrap. The IODMACommand work uses
 * ktest_edu_copy() to prove that the segments it generates reach the right
 * bytes (swiotlb=force bounces them, the emulated VT-d translates them).
 *
 * Pitfalls (tests/kernel/README.md): QEMU 7.2's edu aborts the VM on a DMA
 * that ends exactly at the end of its buffer, so at most KTEST_EDU_CHUNK
 * bytes move per transfer; its default DMA mask is 28 bits, so the runner
 * passes "-device edu,dma_mask=..." and <module>.edu_mask_bits=N together;
 * each transfer completes 100 ms of virtual time later (-icount helps).
 */
#ifndef KTEST_EDU_H
#define KTEST_EDU_H

#include <linux/pci.h>
#include <linux/io.h>
#include <linux/iommu.h>
#include <linux/swiotlb.h>
#include <linux/dma-mapping.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/string.h>

#define KTEST_EDU_VENDOR	0x1234
#define KTEST_EDU_DEVICE	0x11e8
#define KTEST_EDU_REG_ID	0x00
#define KTEST_EDU_REG_INV	0x04
#define KTEST_EDU_REG_FACT	0x08
#define KTEST_EDU_REG_STATUS	0x20
#define KTEST_EDU_REG_DMA_SRC	0x80
#define KTEST_EDU_REG_DMA_DST	0x88
#define KTEST_EDU_REG_DMA_CNT	0x90
#define KTEST_EDU_REG_DMA_CMD	0x98
#define KTEST_EDU_DMA_RUN	0x1
#define KTEST_EDU_DMA_TO_RAM	0x2	/* direction bit: device buffer -> RAM */
#define KTEST_EDU_BUF		0x40000	/* device-side address of its buffer */
#define KTEST_EDU_BUF_SIZE	4096
#define KTEST_EDU_CHUNK		2048
#define KTEST_EDU_ID		0x010000ed

struct ktest_edu {
	struct pci_dev *pdev;
	void __iomem *bar;
	resource_size_t bar_phys, bar_len;
};

static struct ktest_edu *ktest_edu;
static unsigned int ktest_edu_mask_bits = 64;
static bool ktest_edu_registered;

static int ktest_edu_dma(u64 src, u64 dst, u64 cnt, bool to_ram)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(5000);

	writeq(src, ktest_edu->bar + KTEST_EDU_REG_DMA_SRC);
	writeq(dst, ktest_edu->bar + KTEST_EDU_REG_DMA_DST);
	writeq(cnt, ktest_edu->bar + KTEST_EDU_REG_DMA_CNT);
	writeq(KTEST_EDU_DMA_RUN | (to_ram ? KTEST_EDU_DMA_TO_RAM : 0),
	       ktest_edu->bar + KTEST_EDU_REG_DMA_CMD);
	while (readq(ktest_edu->bar + KTEST_EDU_REG_DMA_CMD) & KTEST_EDU_DMA_RUN) {
		if (time_after(jiffies, deadline)) {
			pr_info("# edu DMA timed out\n");
			return -ETIMEDOUT;
		}
		usleep_range(1000, 2000);
	}
	return 0;
}

/* Device-driven memcpy: the device reads @from into its buffer and writes
 * it out to @to, KTEST_EDU_CHUNK bytes at a time. 0 or -errno. */
static __maybe_unused int ktest_edu_copy(dma_addr_t from, dma_addr_t to, size_t len)
{
	if (!ktest_edu)
		return -ENODEV;
	while (len) {
		size_t c = min_t(size_t, len, KTEST_EDU_CHUNK);
		int ret;

		ret = ktest_edu_dma(from, KTEST_EDU_BUF, c, false);
		if (!ret)
			ret = ktest_edu_dma(KTEST_EDU_BUF, to, c, true);
		if (ret)
			return ret;
		from += c;
		to += c;
		len -= c;
	}
	return 0;
}

static const char *ktest_edu_domain_name(struct device *dev)
{
	struct iommu_domain *d = iommu_get_domain_for_dev(dev);

	if (!d)
		return "none";
	switch (d->type) {
	case IOMMU_DOMAIN_IDENTITY: return "identity";
	case IOMMU_DOMAIN_DMA: return "DMA";
	case IOMMU_DOMAIN_DMA_FQ: return "DMA-FQ";
	case IOMMU_DOMAIN_UNMANAGED: return "unmanaged";
	case IOMMU_DOMAIN_BLOCKED: return "blocked";
	}
	return "?";
}

/* Does the edu device's DMA path look like @mode (direct|swiotlb|iommu|any)? */
static bool ktest_edu_mode_ok(const char *mode)
{
	struct device *dev = &ktest_edu->pdev->dev;
	const char *d = ktest_edu_domain_name(dev);

	pr_info("# edu %s: iommu_domain=%s swiotlb_active=%d max_mapping_size=%zu dma_mask=%#llx mode=%s\n",
		pci_name(ktest_edu->pdev), d, is_swiotlb_active(dev),
		dma_max_mapping_size(dev), (unsigned long long)dma_get_mask(dev), mode);
	if (!strcmp(mode, "iommu"))
		return !strcmp(d, "DMA") || !strcmp(d, "DMA-FQ");
	if (!strcmp(mode, "swiotlb"))
		return is_swiotlb_active(dev) && !strcmp(d, "none");
	if (!strcmp(mode, "direct"))
		return !strcmp(d, "none");
	return true;
}

static int ktest_edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct ktest_edu *e;
	int ret;

	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	e->pdev = pdev;
	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	ret = pci_request_region(pdev, 0, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	e->bar_phys = pci_resource_start(pdev, 0);
	e->bar_len = pci_resource_len(pdev, 0);
	e->bar = ioremap(e->bar_phys, e->bar_len);
	if (!e->bar) {
		ret = -ENOMEM;
		goto err_release;
	}
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(ktest_edu_mask_bits));
	if (ret) {
		dev_err(&pdev->dev, "dma_set_mask_and_coherent(%u) failed\n",
			ktest_edu_mask_bits);
		goto err_unmap;
	}
	pci_set_master(pdev);
	pci_set_drvdata(pdev, e);
	ktest_edu = e;
	return 0;

err_unmap:
	iounmap(e->bar);
err_release:
	pci_release_region(pdev, 0);
err_disable:
	pci_disable_device(pdev);
err_free:
	kfree(e);
	return ret;
}

static void ktest_edu_remove(struct pci_dev *pdev)
{
	struct ktest_edu *e = pci_get_drvdata(pdev);

	pci_clear_master(pdev);
	iounmap(e->bar);
	pci_release_region(pdev, 0);
	pci_disable_device(pdev);
	if (ktest_edu == e)
		ktest_edu = NULL;
	kfree(e);
}

static const struct pci_device_id ktest_edu_ids[] = {
	{ PCI_DEVICE(KTEST_EDU_VENDOR, KTEST_EDU_DEVICE) },
	{ }
};

static struct pci_driver ktest_edu_driver = {
	.name = KBUILD_MODNAME,		/* one driver name per test module */
	.id_table = ktest_edu_ids,
	.probe = ktest_edu_probe,
	.remove = ktest_edu_remove,
};

/* probe() runs synchronously for a present, unbound edu device. A device
 * already bound by the other test module is left alone (ktest_edu stays NULL). */
static void ktest_edu_register(unsigned int mask_bits)
{
	int ret;

	ktest_edu_mask_bits = mask_bits;
	ret = pci_register_driver(&ktest_edu_driver);
	ktest_edu_registered = ret == 0;
	if (ret)
		pr_warn("pci_register_driver failed: %d\n", ret);
}

static void ktest_edu_unregister(void)
{
	if (ktest_edu_registered)
		pci_unregister_driver(&ktest_edu_driver);
	ktest_edu_registered = false;
}

#endif /* KTEST_EDU_H */
