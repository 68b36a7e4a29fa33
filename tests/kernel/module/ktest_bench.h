/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * ktest_bench.h - issue #9 "Measure": iomem's IODMACommand against the
 * kernel's own scatterlist path, inside the kernel, on the same vmalloc
 * buffers (64 and 1024 pages), for the edu device's struct device (so it
 * runs in the plain module only, and only in "direct" mode; elsewhere it
 * SKIPs). Printed as TAP comments "# bench ...". Included once by
 * iomem_ktest.c; KTEST_BENCH_CASES goes into its table.
 *
 * What is timed (ktime_get_ns around each iteration; KB_ROT buffers of each
 * size used in turn so no iteration reuses the previous one's cache lines;
 * median and best of the iterations):
 *   full     iomem:  IODMACommand_prepare(0, len) + genIOVMSegments of the
 *                    whole range (64 at a time) + IODMACommand_complete, on
 *                    a command created once over the buffer's descriptor
 *                    (created and prepared once) with
 *                    iomem_linux_mapper_for_device(dev) as its mapper;
 *            kernel: sg_alloc_table_from_pages (the page array is looked up
 *                    once, outside the timing) + dma_map_sgtable +
 *                    for_each_sgtable_dma_sg copying (address, length) into
 *                    the same segment array + dma_unmap_sgtable +
 *                    sg_free_table. Both DMA_BIDIRECTIONAL.
 *   full+    the same, the kernel's page lookup (vmalloc_to_page per page)
 *            inside its timing: what a driver holding only the vmalloc
 *            address, as iomem's descriptor does, must do first;
 *   part     where iomem's time goes: prepare+complete without the
 *            generate, one getPhysicalSegment walk of the descriptor, and
 *            the kernel's vmalloc_to_page loop alone;
 *   gen      iomem:  genIOVMSegments of the whole prepared range;
 *            kernel: the walk of the already-mapped sg_table
 *                    (for_each_sgtable_dma_sg into the array): a linked
 *                    walk over ready entries, the kernel's cheapest form.
 *   build    kernel: sg_alloc_table_from_pages + the walk + sg_free_table:
 *                    what producing a segment list from the pages costs the
 *                    kernel when nothing is kept between transfers; shown
 *                    against iomem's gen (iomem keeps its extents in the
 *                    prepared command).
 * The ratio printed is kernel / iomem (above 1: iomem faster), medians.
 * Both paths must produce the same segments (checked), so they did the same
 * work. Under QEMU TCG with -icount, ns are the guest's virtual time
 * (proportional to instructions executed), not wall-clock time; and the
 * suite boots with slub_debug=FZPU, which makes every kmalloc cost in
 * proportion to its size (poisoning): allocations weigh more than they
 * would in production.
 */
#ifndef KTEST_BENCH_H
#define KTEST_BENCH_H

#include <linux/scatterlist.h>
#include <linux/sort.h>
#include <linux/ktime.h>

#define KB_ROT 4
#define KB_MAXSEG 1100

struct kb_buf {
	unsigned char *va;
	struct page **pages;
	IOMemoryDescriptor *md;
	IODMACommand *cmd;
	struct sg_table sgt;
	bool mapped;
};

static int kb_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* median and best of @n samples (sorted in place) */
static void kb_stats(u64 *t, int n, u64 *median, u64 *best)
{
	sort(t, n, sizeof(*t), kb_cmp_u64, NULL);
	*median = t[n / 2];
	*best = t[0];
}

static void kb_print(const char *size, const char *what, const char *iomem_desc, const char *kern_desc,
		     u64 *ti, u64 *tk, int n)
{
	u64 mi, bi, mk, bk, r;

	kb_stats(ti, n, &mi, &bi);
	kb_stats(tk, n, &mk, &bk);
	r = mi ? mk * 100 / mi : 0;
	DIAG("bench %s %-5s iomem  %-40s median %8llu ns  best %8llu ns  (%d iterations)", size, what, iomem_desc,
	     mi, bi, n);
	DIAG("bench %s %-5s kernel %-40s median %8llu ns  best %8llu ns", size, what, kern_desc, mk, bk);
	DIAG("bench %s %-5s ratio kernel/iomem (medians) %llu.%02llu%s", size, what, r / 100, r % 100,
	     r >= 100 ? "" : "  (iomem slower)");
}

/* every segment of the prepared command into @s; the count or -1 */
static int kb_gen(IODMACommand *cmd, IODMACommand_Segment64 *s)
{
	UInt64 off = 0;
	int n = 0;

	for (;;) {
		UInt32 k = 64;
		IOReturn r;

		if (n + 64 > KB_MAXSEG)
			return -1;
		r = IODMACommand_gen64IOVMSegments(cmd, &off, s + n, &k);
		if (r == kIOReturnOverrun)
			return n;
		if (r != kIOReturnSuccess)
			return -1;
		n += k;
	}
}

/* the sg_table's segments into @s: the mapped DMA side (@dma: the nents
 * mapped entries' dma addresses) or the CPU side (the orig_nents entries'
 * page + offset as physical); the count or -1 */
static int kb_walk(struct sg_table *sgt, bool dma, IODMACommand_Segment64 *s)
{
	struct scatterlist *sg;
	int i, n = 0;

	for_each_sg(sgt->sgl, sg, dma ? sgt->nents : sgt->orig_nents, i) {
		if (n == KB_MAXSEG)
			return -1;
		s[n].fIOVMAddr = dma ? sg_dma_address(sg) : sg_phys(sg);
		s[n].fLength = dma ? sg_dma_len(sg) : sg->length;
		n++;
	}
	return n;
}

/* one timed prepare + generate + complete of @x's command: its result,
 * the time in *@t and the segment count in *@n */
static IOReturn kb_full_iomem(struct kb_buf *x, size_t len, IODMACommand_Segment64 *s, u64 *t, int *n)
{
	u64 t0 = ktime_get_ns();
	IOReturn r = IODMACommand_prepare(x->cmd, 0, len, true, true);

	*n = r == kIOReturnSuccess ? kb_gen(x->cmd, s) : -1;
	r |= IODMACommand_complete(x->cmd, true, true);
	*t = ktime_get_ns() - t0;
	return r;
}

/* one timed pass of the kernel's own path over @x (its page lookup first
 * when @lookup): 0 or the kernel's error, the time in *@t and the DMA
 * segment count in *@n */
static int kb_full_kernel(struct device *dev, struct kb_buf *x, unsigned int npages, int lookup,
			  IODMACommand_Segment64 *s, u64 *t, int *n)
{
	struct sg_table sgt;
	unsigned int j;
	u64 t0 = ktime_get_ns();
	int r;

	if (lookup)
		for (j = 0; j < npages; j++)
			x->pages[j] = vmalloc_to_page(x->va + (size_t)j * PAGE_SIZE);
	r = sg_alloc_table_from_pages(&sgt, x->pages, npages, 0, (unsigned long)npages * PAGE_SIZE,
				      GFP_KERNEL);
	if (!r) {
		r = dma_map_sgtable(dev, &sgt, DMA_BIDIRECTIONAL, 0);
		if (!r) {
			*n = kb_walk(&sgt, true, s);
			dma_unmap_sgtable(dev, &sgt, DMA_BIDIRECTIONAL, 0);
		}
		sg_free_table(&sgt);
	}
	*t = ktime_get_ns() - t0;
	return r;
}

static void kb_size(struct device *dev, const char *size, unsigned int npages, int iters)
{
	const size_t len = (size_t)npages * PAGE_SIZE;
	struct kb_buf *b = kcalloc(KB_ROT, sizeof(*b), GFP_KERNEL);
	IODMACommand_Segment64 *si = kcalloc(KB_MAXSEG, sizeof(*si), GFP_KERNEL);
	IODMACommand_Segment64 *sk = kcalloc(KB_MAXSEG, sizeof(*sk), GFP_KERNEL);
	u64 *ti = kcalloc(iters, sizeof(u64), GFP_KERNEL);
	u64 *tk = kcalloc(iters, sizeof(u64), GFP_KERNEL);
	IOMapper *mapper = iomem_linux_mapper_for_device(dev);
	int i, j, lookup, ni = 0, nk = 0;
	bool same = true;
	u64 t0m, t0b;

	if (!EXPECT(b && si && sk && ti && tk && mapper))
		goto out;
	for (i = 0; i < KB_ROT; i++) {
		b[i].va = vmalloc(len);
		b[i].pages = kvmalloc_array(npages, sizeof(struct page *), GFP_KERNEL);
		if (!EXPECT(b[i].va && b[i].pages))
			goto out;
		memset(b[i].va, i, len);
		for (j = 0; j < npages; j++)
			b[i].pages[j] = vmalloc_to_page(b[i].va + (size_t)j * PAGE_SIZE);
		b[i].md = kd_md(b[i].va, len, kIODirectionInOut);
		b[i].cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 64, 0, IODMACommand_kMapped,
							  0, 1, mapper, NULL);
		if (!EXPECT(b[i].md && b[i].cmd) ||
		    !EXPECT_EQ(IODMACommand_setMemoryDescriptor(b[i].cmd, b[i].md, false), kIOReturnSuccess))
			goto out;
	}

	/* full: prepare + generate + complete vs alloc + map + walk + unmap +
	 * free; then "full+", with the kernel's page lookup inside its timing: a
	 * driver that holds only the vmalloc address (as iomem's descriptor
	 * does) must find the pages (vmalloc_to_page) before
	 * sg_alloc_table_from_pages */
	for (lookup = 0; lookup < 2; lookup++) {
		for (i = 0; i < iters; i++) {
			if (!EXPECT_EQ(kb_full_iomem(&b[i % KB_ROT], len, si, &ti[i], &ni), kIOReturnSuccess) ||
			    !EXPECT(ni > 0) ||
			    !EXPECT_EQ(kb_full_kernel(dev, &b[(i + 1) % KB_ROT], npages, lookup, sk, &tk[i], &nk), 0) ||
			    !EXPECT(nk > 0))
				goto out;
		}
		if (!lookup)
			kb_print(size, "full", "prepare+gen+complete", "sg_alloc+dma_map_sgtable+walk+unmap+free",
				 ti, tk, iters);
		else
			kb_print(size, "full+", "prepare+gen+complete", "vmalloc_to_page+(the kernel's full above)",
				 ti, tk, iters);
	}

	/* where iomem's time goes: prepare+complete without the generate, and
	 * one walk of the descriptor's physical segments (the Linux mapper
	 * builds its sg_table from it), against the kernel's page lookup
	 * (vmalloc_to_page per page, outside the kernel's timing above) */
	for (i = 0; i < iters; i++) {
		struct kb_buf *x = &b[i % KB_ROT];
		IOByteCount off = 0, seg;
		u64 t0, t1;
		int r;

		t0 = ktime_get_ns();
		r = IODMACommand_prepare(x->cmd, 0, len, true, true);
		r |= IODMACommand_complete(x->cmd, true, true);
		t1 = ktime_get_ns();
		ti[i] = t1 - t0;
		if (!EXPECT_EQ(r, kIOReturnSuccess))
			goto out;
		x = &b[(i + 1) % KB_ROT];
		t0 = ktime_get_ns();
		while (off < len && IOMemoryDescriptor_getPhysicalSegment(x->md, off, &seg, kIOMemoryMapperNone))
			off += seg;
		t1 = ktime_get_ns();
		tk[i] = t1 - t0;
		EXPECT_EQ(off, len);
	}
	kb_stats(ti, iters, &t0m, &t0b);
	DIAG("bench %s part  iomem  prepare+complete (no gen)                median %8llu ns  best %8llu ns", size,
	     t0m, t0b);
	kb_stats(tk, iters, &t0m, &t0b);
	DIAG("bench %s part  iomem  getPhysicalSegment walk of the range     median %8llu ns  best %8llu ns", size,
	     t0m, t0b);
	for (i = 0; i < iters; i++) {
		struct kb_buf *x = &b[i % KB_ROT];
		u64 t0, t1;

		t0 = ktime_get_ns();
		for (j = 0; j < npages; j++)
			x->pages[j] = vmalloc_to_page(x->va + (size_t)j * PAGE_SIZE);
		t1 = ktime_get_ns();
		tk[i] = t1 - t0;
	}
	kb_stats(tk, iters, &t0m, &t0b);
	DIAG("bench %s part  kernel vmalloc_to_page x %-5u                    median %8llu ns  best %8llu ns", size,
	     npages, t0m, t0b);

	/* gen: both sides prepared/mapped once */
	for (i = 0; i < KB_ROT; i++) {
		if (!EXPECT_EQ(IODMACommand_prepare(b[i].cmd, 0, len, true, true), kIOReturnSuccess) ||
		    !EXPECT_EQ(sg_alloc_table_from_pages(&b[i].sgt, b[i].pages, npages, 0, len, GFP_KERNEL), 0))
			goto out;
		if (!EXPECT_EQ(dma_map_sgtable(dev, &b[i].sgt, DMA_BIDIRECTIONAL, 0), 0)) {
			sg_free_table(&b[i].sgt);
			IODMACommand_complete(b[i].cmd, true, true);
			goto out;
		}
		b[i].mapped = true;
		/* the same work: identical segment lists */
		ni = kb_gen(b[i].cmd, si);
		nk = kb_walk(&b[i].sgt, true, sk);
		same &= ni == nk && ni > 0 && !memcmp(si, sk, ni * sizeof(*si));
	}
	if (!EXPECT(same))
		DIAG("bench %s: iomem %d segments, kernel %d: the lists differ", size, ni, nk);
	for (i = 0; i < iters; i++) {
		u64 t0, t1;

		t0 = ktime_get_ns();
		ni = kb_gen(b[i % KB_ROT].cmd, si);
		t1 = ktime_get_ns();
		ti[i] = t1 - t0;
		t0 = ktime_get_ns();
		nk = kb_walk(&b[(i + 1) % KB_ROT].sgt, true, sk);
		t1 = ktime_get_ns();
		tk[i] = t1 - t0;
	}
	DIAG("bench %s: %d DMA segments of %u pages", size, nk, npages);
	kb_print(size, "gen", "genIOVMSegments (prepared)", "walk of the mapped sg_table", ti, tk, iters);

	for (i = 0; i < iters; i++) {
		struct kb_buf *x = &b[(i + 1) % KB_ROT];
		struct sg_table sgt;
		u64 t0, t1;

		t0 = ktime_get_ns();
		ni = kb_gen(b[i % KB_ROT].cmd, si);
		t1 = ktime_get_ns();
		ti[i] = t1 - t0;
		t0 = ktime_get_ns();
		if (!sg_alloc_table_from_pages(&sgt, x->pages, npages, 0, len, GFP_KERNEL)) {
			nk = kb_walk(&sgt, false, sk);
			sg_free_table(&sgt);
		}
		t1 = ktime_get_ns();
		tk[i] = t1 - t0;
	}
	kb_print(size, "build", "genIOVMSegments (prepared)", "sg_alloc_table_from_pages+walk+free", ti, tk,
		 iters);
out:
	if (b) {
		for (i = 0; i < KB_ROT; i++) {
			if (b[i].mapped) {
				dma_unmap_sgtable(dev, &b[i].sgt, DMA_BIDIRECTIONAL, 0);
				sg_free_table(&b[i].sgt);
				EXPECT_EQ(IODMACommand_complete(b[i].cmd, true, true), kIOReturnSuccess);
			}
			if (b[i].cmd)
				IODMACommand_clearMemoryDescriptor(b[i].cmd, true);
			IODMACommand_release(b[i].cmd);
			kd_md_done(b[i].md);
			kvfree(b[i].pages);
			vfree(b[i].va);
		}
	}
	IOMapper_release(mapper);
	kfree(b);
	kfree(si);
	kfree(sk);
	kfree(ti);
	kfree(tk);
}

static void t_bench_dmacmd_vs_kernel_sg(void)
{
	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	if (strcmp(mode, "direct"))
		SKIP("the measurement runs in direct mode");
	kb_size(&ktest_edu->pdev->dev, "64p", 64, 201);
	kb_size(&ktest_edu->pdev->dev, "1024p", 1024, 41);
	EXPECT_REPORTS(0);
}

#define KTEST_BENCH_CASES T(t_bench_dmacmd_vs_kernel_sg),

#endif /* KTEST_BENCH_H */
