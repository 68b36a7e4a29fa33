/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * ktest_dmacmd.h - IODMACommand inside the kernel (issue #9 item 3).
 * Included once by iomem_ktest.c after its TAP helpers (EXPECT, kphys,
 * kfill, ...), so both test modules run these cases.
 *
 * Without a device (kUnmapped): the segments are CPU-physical addresses,
 * checked page by page against the kernel's translation (virt_to_phys,
 * vmalloc_to_page) for kmalloc, vmalloc and buffer descriptors, resumed at
 * every segment and in the middle of one, in every output format; a 32-bit
 * command over memory above 4 GiB bounces through iomem's own GFP_DMA32
 * pages (the runner gives the VM 3 GiB: q35 puts 1 GiB of it at 4 GiB, and
 * kmalloc/vmalloc take ZONE_NORMAL first, so the buffers land there; with
 * no memory above 4 GiB that case SKIPs).
 *
 * With the edu device (plain module only: the first module binds it): the
 * command's mapper is iomem_linux_mapper_for_device(&pdev->dev), so the
 * segments are dma_addr_ts from dma_map_sgtable - physical in "direct",
 * swiotlb slots in "swiotlb" (bytes move by the map/iovmSync copies), IOVAs
 * in "iommu" - and edu's DMA engine copies between them and a coherent
 * buffer in both directions, checked byte by byte; a 32-bit command
 * narrows the device's mask for the mapping (segments below 4 GiB: swiotlb
 * in direct mode, low IOVAs with the IOMMU).
 */
#ifndef KTEST_DMACMD_H
#define KTEST_DMACMD_H

#define KD_MAXSEG 512

/* All segments of @cmd's prepared range, @batch at a time (resuming at the
 * returned offset), into @segs (KD_MAXSEG). The count, or -1. */
static int kd_gen(IODMACommand *cmd, IODMACommand_Segment64 *segs, UInt32 batch)
{
	UInt64 off = 0, total = 0;
	int n = 0;

	for (;;) {
		UInt32 k = batch;
		IOReturn r;

		if (n + (int)k > KD_MAXSEG)
			k = KD_MAXSEG - n;
		if (!EXPECT(k > 0))
			return -1;
		r = IODMACommand_gen64IOVMSegments(cmd, &off, segs + n, &k);
		if (r == kIOReturnOverrun)
			break;
		if (!EXPECT_EQ(r, kIOReturnSuccess))
			return -1;
		if (!EXPECT(k > 0 && k <= batch))
			return -1;
		while (k--)
			total += segs[n++].fLength;
		if (!EXPECT_EQ(off, total))
			return -1;
	}
	return n;
}

/* the segments are the CPU-physical addresses of @va .. @va + @len */
static bool kd_check_phys(const IODMACommand_Segment64 *segs, int n, const unsigned char *va, size_t len)
{
	size_t off = 0;
	int i;

	for (i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < segs[i].fLength; k += PAGE_SIZE - offset_in_page(va + off + k))
			if (!EXPECT_EQ(segs[i].fIOVMAddr + k, kphys(va + off + k))) {
				DIAG("  segment %d of %d, +%#zx", i, n, k);
				return false;
			}
		off += segs[i].fLength;
	}
	return EXPECT_EQ(off, len);
}

static IOMemoryDescriptor *kd_md(void *va, size_t len, IODirection dir)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(va, len, dir);

	if (md && !EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess)) {
		IOMemoryDescriptor_release(md);
		md = NULL;
	}
	return md;
}

static void kd_md_done(IOMemoryDescriptor *md)
{
	if (md) {
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
		IOMemoryDescriptor_release(md);
	}
}

/* physical segments of one descriptor: all at once, one at a time, cut at
 * maxSegmentSize, and resumed in the middle of a segment */
static void kd_phys_case(const char *what, unsigned char *va, size_t len)
{
	IODMACommand_Segment64 *a = kcalloc(KD_MAXSEG, sizeof(*a), GFP_KERNEL);
	IODMACommand_Segment64 *b = kcalloc(KD_MAXSEG, sizeof(*b), GFP_KERNEL);
	IOMemoryDescriptor *md = kd_md(va, len, kIODirectionInOut);
	IODMACommand *cmd = NULL, *cut = NULL;
	int na, nb, i;

	if (!EXPECT(a && b && md))
		goto out;
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 64, 0, IODMACommand_kUnmapped,
					     0, 1, NULL, NULL);
	cut = IODMACommand_withSpecification(IODMACommand_OutputHost64, 64, 1000, IODMACommand_kUnmapped,
					     0, 1, NULL, NULL);
	if (!EXPECT(cmd && cut))
		goto out;
	EXPECT(iomem_dmacmd_getMapper(cmd) == NULL);
	if (!EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess))
		goto out;
	na = kd_gen(cmd, a, 64);
	nb = kd_gen(cmd, b, 1);
	DIAG("%s: %zu bytes, %d physical segment(s)", what, len, na);
	if (EXPECT(na > 0) && EXPECT_EQ(na, nb)) {
		EXPECT(memcmp(a, b, na * sizeof(*a)) == 0);
		kd_check_phys(a, na, va, len);
		/* maximal: the next segment does not continue the previous one */
		for (i = 1; i < na; i++)
			EXPECT(a[i].fIOVMAddr != a[i - 1].fIOVMAddr + a[i - 1].fLength);
	}
	/* resumed in the middle: the segment starts at that byte */
	{
		UInt64 off = len / 2 + 3;
		UInt32 k = 1;

		if (EXPECT_EQ(IODMACommand_gen64IOVMSegments(cmd, &off, b, &k), kIOReturnSuccess)) {
			EXPECT_EQ(b[0].fIOVMAddr, kphys(va + len / 2 + 3));
			EXPECT_EQ(off, len / 2 + 3 + b[0].fLength);
		}
		off = len;
		k = 1;
		EXPECT_EQ(IODMACommand_gen64IOVMSegments(cmd, &off, b, &k), kIOReturnOverrun);
	}
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	/* maxSegmentSize 1000 */
	if (EXPECT_EQ(IODMACommand_setMemoryDescriptor(cut, md, true), kIOReturnSuccess)) {
		nb = kd_gen(cut, b, 7);
		if (EXPECT(nb >= (int)DIV_ROUND_UP(len, 1000))) {
			for (i = 0; i < nb; i++)
				EXPECT(b[i].fLength <= 1000);
			kd_check_phys(b, nb, va, len);
		}
		EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cut, true), kIOReturnSuccess);
	}
out:
	IODMACommand_release(cmd);
	IODMACommand_release(cut);
	kd_md_done(md);
	kfree(a);
	kfree(b);
}

static void t_dmacmd_physical_segments(void)
{
	const size_t klen = 3 * PAGE_SIZE + 200, vlen = 8 * PAGE_SIZE - 100;
	unsigned char *k = kmalloc(klen + 37, GFP_KERNEL);
	unsigned char *v = vmalloc(8 * PAGE_SIZE);
	IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(6 * PAGE_SIZE, kIODirectionInOut,
									     false);

	if (!EXPECT(k && v && bmd))
		goto out;
	kfill(k, klen + 37, 3);
	kfill(v, 8 * PAGE_SIZE, 4);
	kd_phys_case("kmalloc", k + 37, klen);
	kd_phys_case("vmalloc", v + 100, vlen);
	{
		unsigned char *p = IOBufferMemoryDescriptor_getBytesNoCopy(bmd);
		IOMemoryDescriptor *md = (IOMemoryDescriptor *)bmd;
		IODMACommand_Segment64 *s = kcalloc(KD_MAXSEG, sizeof(*s), GFP_KERNEL);
		IODMACommand *cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 64, 0,
								   IODMACommand_kUnmapped, 0, 1, NULL, NULL);
		int n;

		if (EXPECT(p && s && cmd) &&
		    EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess)) {
			if (EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess)) {
				n = kd_gen(cmd, s, 3);
				DIAG("IOBufferMemoryDescriptor: %d physical segment(s)", n);
				if (EXPECT(n > 0))
					kd_check_phys(s, n, p, 6 * PAGE_SIZE);
				EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
			}
			EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
		}
		IODMACommand_release(cmd);
		kfree(s);
	}
out:
	if (bmd)
		IOMemoryDescriptor_release((IOMemoryDescriptor *)bmd);
	kfree(k);
	vfree(v);
	EXPECT_REPORTS(0);
}

/* every output format writes the same segments (one prepared command,
 * genIOVMSegmentsWithFunction); the 32-bit ones truncate an address above
 * 4 GiB, as IOKit's do */
static void t_dmacmd_output_formats(void)
{
	const size_t len = 2 * PAGE_SIZE + 500;
	unsigned char *v = vmalloc(3 * PAGE_SIZE);
	IODMACommand_Segment64 ref[8];
	union { u64 q[16]; u32 d[16]; } out;
	IOMemoryDescriptor *md = NULL;
	IODMACommand *cmd = NULL;
	bool above = false;
	int n, i, f;

	if (!EXPECT(v))
		return;
	md = kd_md(v + 300, len, kIODirectionOut);
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 64, 0, IODMACommand_kUnmapped,
					     0, 1, NULL, NULL);
	if (!EXPECT(md && cmd) ||
	    !EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess))
		goto out;
	{
		UInt64 off = 0;
		UInt32 k = 8;

		if (!EXPECT_EQ(IODMACommand_gen64IOVMSegments(cmd, &off, ref, &k), kIOReturnSuccess) ||
		    !EXPECT_EQ(off, len))
			goto out;
		n = k;
	}
	kd_check_phys(ref, n, v + 300, len);
	for (i = 0; i < n; i++)
		above |= ref[i].fIOVMAddr + ref[i].fLength > 0x100000000ull;
	for (f = 0; f < 5; f++) {
		static const IODMACommand_SegmentFunction fn[5] = {
			IODMACommand_OutputBig64, IODMACommand_OutputLittle64, IODMACommand_OutputHost32,
			IODMACommand_OutputBig32, IODMACommand_OutputLittle32 };
		UInt64 off = 0;
		UInt32 k = 8;
		IOReturn r;

		memset(&out, 0xa5, sizeof(out));
		r = IODMACommand_genIOVMSegmentsWithFunction(cmd, fn[f], &off, &out, &k);
		if (!EXPECT_EQ(r, kIOReturnSuccess) || !EXPECT_EQ(k, n))
			continue;
		for (i = 0; i < n; i++) {
			u64 a, l;

			switch (f) {
			case 0: a = be64_to_cpu((__force __be64)out.q[2 * i]);
				l = be64_to_cpu((__force __be64)out.q[2 * i + 1]); break;
			case 1: a = le64_to_cpu((__force __le64)out.q[2 * i]);
				l = le64_to_cpu((__force __le64)out.q[2 * i + 1]); break;
			case 2: a = out.d[2 * i]; l = out.d[2 * i + 1]; break;
			case 3: a = be32_to_cpu((__force __be32)out.d[2 * i]);
				l = be32_to_cpu((__force __be32)out.d[2 * i + 1]); break;
			default: a = le32_to_cpu((__force __le32)out.d[2 * i]);
				l = le32_to_cpu((__force __le32)out.d[2 * i + 1]); break;
			}
			/* the 32-bit functions truncate (IOKit: they never refuse;
			 * the specification's 32-bit limit is what keeps them exact) */
			EXPECT_EQ(a, f >= 2 ? (u32)ref[i].fIOVMAddr : ref[i].fIOVMAddr);
			EXPECT_EQ(l, ref[i].fLength);
		}
	}
	DIAG("%d segment(s), %s 4 GiB", n, above ? "some above" : "all below");
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
out:
	IODMACommand_release(cmd);
	kd_md_done(md);
	vfree(v);
	EXPECT_REPORTS(0);
}

/* no device: a 32-bit command over memory above 4 GiB bounces through
 * iomem's GFP_DMA32 pages; copy-in at prepare, copy-back at complete and
 * synchronize(In) */
static void t_dmacmd_bounce_without_device(void)
{
	const size_t len = 3 * PAGE_SIZE - 64;
	unsigned char *buf = kmalloc(3 * PAGE_SIZE, GFP_KERNEL), *want = kmalloc(len, GFP_KERNEL);
	IODMACommand_Segment64 *s = kcalloc(KD_MAXSEG, sizeof(*s), GFP_KERNEL);
	IOMemoryDescriptor *md = NULL;
	IODMACommand *cmd = NULL;
	size_t off;
	int n = 0, i;

	if (!EXPECT(buf && want && s))
		goto out;
	if (kphys(buf) + 3 * PAGE_SIZE <= 0x100000000ull) {
		cur_skip = "kmalloc memory below 4 GiB (the VM has no memory above it)";
		goto out;
	}
	kfill(buf, 3 * PAGE_SIZE, 11);
	md = kd_md(buf + 32, len, kIODirectionInOut);
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 32, 0, IODMACommand_kUnmapped,
					     0, 1, NULL, NULL);
	if (!EXPECT(md && cmd) ||
	    !EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess))
		goto out;
	n = kd_gen(cmd, s, 16);
	if (!EXPECT(n > 0))
		goto clear;
	DIAG("buffer at %#llx: %d bounced segment(s), first %#llx",
	     (unsigned long long)kphys(buf), n, s[0].fIOVMAddr);
	/* below 4 GiB, not the buffer, and the copy-in happened */
	for (i = 0, off = 0; i < n; off += s[i].fLength, i++) {
		EXPECT(s[i].fIOVMAddr + s[i].fLength <= 0x100000000ull);
		EXPECT(s[i].fIOVMAddr != kphys(buf + 32 + off));
		EXPECT(pfn_valid(s[i].fIOVMAddr >> PAGE_SHIFT));
		EXPECT(memcmp(phys_to_virt(s[i].fIOVMAddr), buf + 32 + off, s[i].fLength) == 0);
	}
	EXPECT_EQ(off, len);
	/* "the device" writes the bounce pages; synchronize(In) copies back */
	kfill(want, len, 12);
	for (i = 0, off = 0; i < n; off += s[i].fLength, i++)
		memcpy(phys_to_virt(s[i].fIOVMAddr), want + off, s[i].fLength);
	EXPECT(memcmp(buf + 32, want, len) != 0);
	EXPECT_EQ(IODMACommand_synchronize(cmd, kIODirectionIn), kIOReturnSuccess);
	EXPECT(memcmp(buf + 32, want, len) == 0);
	/* and again, through complete */
	kfill(want, len, 13);
	for (i = 0, off = 0; i < n; off += s[i].fLength, i++)
		memcpy(phys_to_virt(s[i].fIOVMAddr), want + off, s[i].fLength);
clear:
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	if (n > 0)
		EXPECT(memcmp(buf + 32, want, len) == 0);
out:
	IODMACommand_release(cmd);
	kd_md_done(md);
	iomem_bounce_pool_trim();
	kfree(buf);
	kfree(want);
	kfree(s);
	EXPECT_REPORTS(0);
}

/* ---- with the edu device ------------------------------------------------ */

static void t_dmacmd_linux_mapper_bad_input(void)
{
	IOMapper *m;

	EXPECT(iomem_linux_mapper_for_device(NULL) == NULL);
	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	m = iomem_linux_mapper_for_device(&ktest_edu->pdev->dev);
	if (!EXPECT(m))
		return;
	EXPECT_EQ(IOMapper_getPageSize(m), PAGE_SIZE);
	EXPECT_EQ(IOMapper_mapToPhysicalAddress(m, 0x1000), 0);	/* unknown */
	EXPECT_EQ(dma_get_min_align_mask(&ktest_edu->pdev->dev), PAGE_SIZE - 1);
	IOMapper_release(m);
	EXPECT_REPORTS(0);
}

/*
 * One descriptor through IODMACommand with the device mapper, both ways:
 * edu writes a pattern from a coherent buffer into every segment (device ->
 * memory, seen after complete), then reads every segment into the coherent
 * buffer (memory -> device, after prepare). @bits: the command's
 * numAddressBits.
 */
static void kd_edu_case(const char *what, unsigned char *va, size_t len, UInt8 bits)
{
	struct device *dev = &ktest_edu->pdev->dev;
	IODMACommand_Segment64 *s = kcalloc(KD_MAXSEG, sizeof(*s), GFP_KERNEL);
	IOMemoryDescriptor *md = kd_md(va, len, kIODirectionInOut);
	IOMapper *mapper = iomem_linux_mapper_for_device(dev);
	IODMACommand *cmd = NULL;
	unsigned char *co = NULL;
	dma_addr_t cd = 0;
	size_t off;
	int n, i, same = 0;
	bool bounced;

	co = dma_alloc_coherent(dev, len, &cd, GFP_KERNEL);
	if (!EXPECT(s && md && mapper && co))
		goto out;
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, bits, 0, IODMACommand_kMapped,
					     0, 1, mapper, NULL);
	if (!EXPECT(cmd) || !EXPECT(iomem_dmacmd_getMapper(cmd) == mapper))
		goto out;

	/* device -> memory */
	memset(va, 0x6b, len);
	kfill(co, len, 21);
	if (!EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess))
		goto out;
	n = kd_gen(cmd, s, 5);
	DIAG("%s (%u bits, mode %s): %zu bytes, %d segment(s), first %#llx+%#llx (phys %#llx)", what, bits,
	     mode, len, n, n > 0 ? s[0].fIOVMAddr : 0, n > 0 ? s[0].fLength : 0, (unsigned long long)kphys(va));
	for (i = 0, off = 0; i < n; off += s[i].fLength, i++) {
		/* IOMMU, swiotlb (min_align_mask) and dma-direct keep the page offset */
		EXPECT_EQ(offset_in_page(s[i].fIOVMAddr), offset_in_page(va + off));
		if (bits < 64)
			EXPECT(s[i].fIOVMAddr + s[i].fLength - 1 <= DMA_BIT_MASK(bits));
		same += s[i].fIOVMAddr == kphys(va + off);
		if (!EXPECT(ktest_edu_copy(cd + off, s[i].fIOVMAddr, s[i].fLength) == 0))
			break;
	}
	if (n > 0) {
		EXPECT_EQ(off, len);
		if (!strcmp(mode, "direct") && bits == 64)
			kd_check_phys(s, n, va, len);	/* dma == phys */
		if (!strcmp(mode, "swiotlb") || !strcmp(mode, "iommu"))
			EXPECT_EQ(same, 0);		/* slots / IOVAs, never the page itself */
	}
	/* synchronize(In) -> iovmSync -> dma_sync_sgtable_for_cpu: visible now */
	EXPECT_EQ(IODMACommand_synchronize(cmd, kIODirectionIn), kIOReturnSuccess);
	EXPECT(memcmp(va, co, len) == 0);
	/* bounced (swiotlb slots): the last complete syncs again from them, so
	 * the device's bytes win over the CPU's; otherwise va IS the memory */
	bounced = n > 0 && same == 0 && strcmp(mode, "iommu") != 0;
	if (bounced)
		memset(va, 0x6b, len);
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	EXPECT(memcmp(va, co, len) == 0);

	/* memory -> device: what the CPU wrote before prepare, then after it
	 * (synchronize(Out) -> dma_sync_sgtable_for_device) */
	kfill(va, len, 22);
	memset(co, 0, len);
	if (!EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess))
		goto out;
	n = kd_gen(cmd, s, 64);
	for (i = 0, off = 0; i < n; off += s[i].fLength, i++)
		if (!EXPECT(ktest_edu_copy(s[i].fIOVMAddr, cd + off, s[i].fLength) == 0))
			break;
	EXPECT(memcmp(va, co, len) == 0);
	kfill(va, len, 23);
	EXPECT_EQ(IODMACommand_synchronize(cmd, kIODirectionOut), kIOReturnSuccess);
	for (i = 0, off = 0; i < n; off += s[i].fLength, i++)
		if (!EXPECT(ktest_edu_copy(s[i].fIOVMAddr, cd + off, s[i].fLength) == 0))
			break;
	EXPECT(memcmp(va, co, len) == 0);
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
out:
	IODMACommand_release(cmd);
	IOMapper_release(mapper);
	kd_md_done(md);
	if (co)
		dma_free_coherent(dev, len, co, cd);
	kfree(s);
}

/* a 30-bit command: IOVAs below 1 GiB with the IOMMU; dma-direct cannot
 * promise swiotlb slots below 4 GiB, so a mapping that must bounce is
 * refused (kIOReturnMessageTooLarge) - without the kernel's WARN */
static void kd_edu_narrow(unsigned char *va, size_t len)
{
	struct device *dev = &ktest_edu->pdev->dev;
	IODMACommand_Segment64 *s = kcalloc(KD_MAXSEG, sizeof(*s), GFP_KERNEL);
	IOMemoryDescriptor *md = kd_md(va, len, kIODirectionOut);
	IOMapper *mapper = iomem_linux_mapper_for_device(dev);
	IODMACommand *cmd = NULL;
	bool warned = test_taint(TAINT_WARN), above = false;
	size_t off;
	IOReturn r;
	int n, i;

	if (!EXPECT(s && md && mapper) || !strcmp(mode, "any"))
		goto out;	/* the outcome depends on the mode */
	for (off = 0; off < len; off += PAGE_SIZE)
		above |= kphys(va + off) >= (1ull << 30);
	above |= kphys(va + len - 1) >= (1ull << 30);
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 30, 0, IODMACommand_kMapped,
					     0, 1, mapper, NULL);
	if (!EXPECT(cmd))
		goto out;
	r = IODMACommand_setMemoryDescriptor(cmd, md, true);
	DIAG("30 bits, mode %s, memory %s 1 GiB: %s", mode, above ? "above" : "below",
	     IOReturnString(r));
	if (!strcmp(mode, "iommu") || (!strcmp(mode, "direct") && !above)) {
		if (!EXPECT_EQ(r, kIOReturnSuccess))
			goto out;
		n = kd_gen(cmd, s, 64);
		for (i = 0; i < n; i++)
			EXPECT(s[i].fIOVMAddr + s[i].fLength <= (1ull << 30));
		EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	} else {
		EXPECT_EQ(r, kIOReturnMessageTooLarge);
		EXPECT(IODMACommand_getMemoryDescriptor(cmd) == NULL);
	}
	EXPECT(warned || !test_taint(TAINT_WARN));
	EXPECT_EQ(dma_get_mask(dev), DMA_BIT_MASK(edu_mask_bits));
out:
	IODMACommand_release(cmd);
	IOMapper_release(mapper);
	kd_md_done(md);
	kfree(s);
}

static void t_dmacmd_edu_device_mapper(void)
{
	const size_t klen = 2 * PAGE_SIZE + 300, vlen = 4 * PAGE_SIZE - 200;
	unsigned char *k, *v;

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	k = kmalloc(klen + 40, GFP_KERNEL);
	v = vmalloc(4 * PAGE_SIZE);
	if (EXPECT(k && v)) {
		kd_edu_case("kmalloc", k + 40, klen, 64);
		kd_edu_case("vmalloc", v + 100, vlen, 64);
		/* a 32-bit device: the mask narrows for the mapping */
		kd_edu_case("vmalloc", v + 100, vlen, 32);
		kd_edu_narrow(v + 100, vlen);
		EXPECT_EQ(dma_get_mask(&ktest_edu->pdev->dev), DMA_BIT_MASK(edu_mask_bits));
	}
	kfree(k);
	vfree(v);
	EXPECT_REPORTS(0);
}

/* ---- smoke tests of what landed on main beside IODMACommand ------------- */

/* IONaturalMemoryCursor over kmalloc and vmalloc memory: the kernel's
 * physical addresses, cut at the cursor's maxSegmentSize */
static void t_cursor_physical_segments(void)
{
	const size_t len = 5 * PAGE_SIZE - 300;
	unsigned char *bufs[2] = { kmalloc(len + 50, GFP_KERNEL), vmalloc(5 * PAGE_SIZE) };
	IONaturalMemoryCursor *c = IONaturalMemoryCursor_withSpecification(PAGE_SIZE, 0, 1);
	IOPhysicalSegment seg[16];
	int b;

	if (!EXPECT(bufs[0] && bufs[1] && c))
		goto out;
	for (b = 0; b < 2; b++) {
		unsigned char *va = bufs[b] + 50;
		IOMemoryDescriptor *md = kd_md(va, len, kIODirectionOut);
		IOByteCount ts = 0, off = 0;
		UInt32 n, i;

		if (!EXPECT(md))
			continue;
		n = IOMemoryCursor_genPhysicalSegments(c, md, 0, seg, 16, 0, &ts);
		EXPECT_EQ(ts, len);
		EXPECT(n >= 5);
		for (i = 0; i < n; i++) {
			EXPECT(seg[i].length <= PAGE_SIZE);
			EXPECT_EQ(seg[i].location, kphys(va + off));
			EXPECT_EQ(seg[i].location + seg[i].length - 1, kphys(va + off + seg[i].length - 1));
			off += seg[i].length;
		}
		EXPECT_EQ(off, len);
		EXPECT_EQ(IOMemoryCursor_genPhysicalSegments(c, md, len, seg, 16, 0, &ts), 0);
		EXPECT_EQ(ts, 0);
		kd_md_done(md);
	}
out:
	IOMemoryCursor_release(c);
	kfree(bufs[0]);
	vfree(bufs[1]);
	EXPECT_REPORTS(0);
}

/* the software IOMMU as an IODMACommand mapper inside the kernel: the
 * segments are IOVAs below 4 GiB that translate to the kernel's pages */
static void t_swiommu_dmacmd_iovas_translate(void)
{
	const size_t len = 6 * PAGE_SIZE - 500;
	unsigned char *v = vmalloc(6 * PAGE_SIZE);
	IODMACommand_Segment64 *s = kcalloc(KD_MAXSEG, sizeof(*s), GFP_KERNEL);
	IOMapper *m = iomem_swiommu_create(NULL);
	IOMemoryDescriptor *md = NULL;
	IODMACommand *cmd = NULL;
	size_t off;
	int n, i;

	if (!EXPECT(v && s && m) || !EXPECT(iomem_swiommu_is(m)))
		goto out;
	md = kd_md(v + 200, len, kIODirectionInOut);
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 32, 0, IODMACommand_kMapped, 0, 1, m,
					     NULL);
	if (!EXPECT(md && cmd) ||
	    !EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess))
		goto out;
	n = kd_gen(cmd, s, 8);
	EXPECT_EQ(n, 1);	/* one IOVA run */
	for (i = 0, off = 0; i < n; off += s[i].fLength, i++) {
		size_t k;

		EXPECT(s[i].fIOVMAddr + s[i].fLength <= 0x100000000ull);
		for (k = 0; k < s[i].fLength; k += PAGE_SIZE - offset_in_page(v + 200 + off + k)) {
			IOPhysicalAddress pa = 0;

			EXPECT_EQ(iomem_swiommu_translate(m, s[i].fIOVMAddr + k, 1, true, &pa, NULL),
				  kIOReturnSuccess);
			EXPECT_EQ(pa, kphys(v + 200 + off + k));
			EXPECT_EQ(IOMapper_mapToPhysicalAddress(m, s[i].fIOVMAddr + k), kphys(v + 200 + off + k));
		}
	}
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	/* unmapped at the last complete: a fault */
	if (n > 0) {
		IOPhysicalAddress pa = 1;

		EXPECT_EQ(iomem_swiommu_translate(m, s[0].fIOVMAddr, 1, false, &pa, NULL), kIOReturnVMError);
		EXPECT_EQ(pa, 0);
	}
out:
	IODMACommand_release(cmd);
	kd_md_done(md);
	IOMapper_release(m);
	vfree(v);
	kfree(s);
	EXPECT_REPORTS(0);
}

/* IOMappedRead/Write on RAM (kmap, any alignment) and, in the plain module,
 * on edu's BAR0 registers (ioremap + readl/writel); IOFlushProcessorCache */
static void t_mappedio_and_cache_flush(void)
{
	u64 *buf = kmalloc(64, GFP_KERNEL);
	phys_addr_t p;
	IOMapper *sys = iomem_mapper_copy_system();

	if (!EXPECT(buf) || !EXPECT(sys == NULL))	/* physical = CPU-physical */
		goto out;
	p = virt_to_phys(buf);
	memset(buf, 0, 64);
	IOMappedWrite64(p, 0x1122334455667788ull);
	EXPECT_EQ(buf[0], 0x1122334455667788ull);
	EXPECT_EQ(IOMappedRead32(p + 4), 0x11223344u);
	EXPECT_EQ(IOMappedRead16(p + 1), 0x6677u);	/* unaligned: a byte copy */
	IOMappedWrite8(p + 9, 0xab);
	IOMappedWrite16(p + 10, 0xcdef);
	IOMappedWrite32(p + 12, 0x01020304);
	EXPECT_EQ(buf[1], 0x01020304cdefab00ull);
	EXPECT_EQ(IOMappedRead8(p + 15), 0x01);
	EXPECT_EQ(IOMappedRead64(p + 8), 0x01020304cdefab00ull);
	if (ktest_edu) {
		phys_addr_t bar = ktest_edu->bar_phys;

		EXPECT_EQ(IOMappedRead32(bar + KTEST_EDU_REG_ID), KTEST_EDU_ID);
		IOMappedWrite32(bar + KTEST_EDU_REG_INV, 0x0badf00d);
		EXPECT_EQ(IOMappedRead32(bar + KTEST_EDU_REG_INV), ~0x0badf00du);
		EXPECT_EQ(readl(ktest_edu->bar + KTEST_EDU_REG_INV), ~0x0badf00du);
	}
	EXPECT_EQ(IOFlushProcessorCache(kernel_task, (IOVirtualAddress)buf, 64), kIOReturnSuccess);
	EXPECT_EQ(IOFlushProcessorCache(kernel_task, (IOVirtualAddress)buf, 0), kIOReturnSuccess);
	EXPECT_EQ(IOFlushProcessorCache((task_t)NULL, (IOVirtualAddress)buf, 64), kIOReturnUnsupported);
out:
	IOMapper_release(sys);
	kfree(buf);
	EXPECT_REPORTS(0);
}

#endif /* KTEST_DMACMD_H */
