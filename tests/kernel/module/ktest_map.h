/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * ktest_map.h - IOMemoryMap on vmap / ioremap in the Linux backend (issue
 * #9 item 4). Included once by iomem_ktest.c after ktest_user.h (it uses
 * ku_mmap, kfill, ktest_edu); KTEST_MAP_CASES goes in its table.
 *
 *   - a new mapping of vmalloc, kmalloc, multi-range, buffer, multi and
 *     prepared user memory: bytes written through the map are seen through
 *     the descriptor (readBytes, copy_from_user) and the other way round;
 *   - every cache mode: the PTE of each mapped page carries the x86 PAT
 *     type of that mode (lookup_address), read-only maps have no _PAGE_RW;
 *     the default mode of one kernel range maps to its own address;
 *   - device memory (edu's BAR0) through ioremap: the ID register reads
 *     through the map, the inverter register answers a write;
 *   - bad input: a fixed address, pieces that do not meet on a page,
 *     realtime cache, a 64 KiB guard, read-only device memory, unprepared
 *     user memory, ranges outside the descriptor, a user task as target.
 */
#ifndef KTEST_MAP_H
#define KTEST_MAP_H

#include <asm/pgtable.h>

/* The PTE cache bits expected for a cache mode (x86 PAT through the
 * kernel's own table), or ~0 where the mode has no PTE type. */
static unsigned long km_cache_bits(IOOptionBits mode)
{
	switch (mode) {
	case kIOMapDefaultCache:
	case kIOMapCopybackCache:
		return cachemode2protval(_PAGE_CACHE_MODE_WB);
	case kIOMapInhibitCache:
		return pgprot_val(pgprot_noncached(PAGE_KERNEL)) & _PAGE_CACHE_MASK;
	case kIOMapWriteCombineCache:
		return cachemode2protval(_PAGE_CACHE_MODE_WC);
	case kIOMapWriteThruCache:
		return cachemode2protval(_PAGE_CACHE_MODE_WT);
	}
	return ~0ul;
}

/* Every page of [va, va + len) is present with @mode's cache bits, and
 * writable unless @ro. */
static bool km_check_ptes(unsigned long va, size_t len, IOOptionBits mode, bool ro)
{
	unsigned long a;

	for (a = va & PAGE_MASK; a < va + len; a += PAGE_SIZE) {
		unsigned int level;
		pte_t *pte = lookup_address(a, &level);
		unsigned long f;

		if (!EXPECT(pte && pte_present(*pte) && level == PG_LEVEL_4K))
			return false;
		f = pte_flags(*pte);
		if (!EXPECT_EQ(f & _PAGE_CACHE_MASK, km_cache_bits(mode)) || !EXPECT_EQ(!!(f & _PAGE_RW), !ro)) {
			DIAG("  page +%#lx of the map, cache mode %#x", a - (va & PAGE_MASK), mode);
			return false;
		}
	}
	return true;
}

/* Bytes [0, len) of @md through a new map in @mode: the map shows the
 * descriptor's bytes, a write through it is read back through the
 * descriptor, and writeBytes is seen through the map. */
static void km_roundtrip(const char *what, IOMemoryDescriptor *md, IOOptionBits mode, bool expect_own)
{
	IOByteCount len = IOMemoryDescriptor_getLength(md);
	unsigned char *a = vmalloc(len), *b = vmalloc(len), *p;
	IOMemoryMap *m = NULL;
	IOReturn r;

	if (!EXPECT(a && b))
		goto out;
	kfill(a, len, 81);
	if (!EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, 0, a, len), len))
		goto out;
	r = iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere | mode, 0, 0, &m);
	if (!EXPECT_EQ(r, kIOReturnSuccess)) {
		DIAG("  %s, cache mode %#x: %s", what, mode, IOReturnString(r));
		goto out;
	}
	p = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
	EXPECT_EQ(IOMemoryMap_getLength(m), len);
	EXPECT_EQ(!!(IOMemoryMap_getMapOptions(m) & kIOMapStatic), expect_own);
	if (!expect_own) {
		EXPECT(is_vmalloc_addr(p));
		km_check_ptes((unsigned long)p, len, mode, false);
	}
	EXPECT(memcmp(p, a, len) == 0);
	kfill(p, len, 82);				/* CPU -> map -> descriptor */
	memset(b, 0, len);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, b, len), len);
	EXPECT(memcmp(p, b, len) == 0);
	kfill(a, len, 83);				/* descriptor -> map */
	EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, 0, a, len), len);
	EXPECT(memcmp(p, a, len) == 0);
	EXPECT_EQ(IOMemoryMap_unmap(m), kIOReturnSuccess);
	EXPECT_EQ(IOMemoryMap_getAddress(m), 0);
	EXPECT_EQ(IOMemoryMap_unmap(m), kIOReturnSuccess);
out:
	IOMemoryMap_release(m);
	vfree(a);
	vfree(b);
}

static const IOOptionBits km_modes[] = {
	kIOMapDefaultCache, kIOMapInhibitCache, kIOMapWriteThruCache, kIOMapWriteCombineCache,
	kIOMapCopybackCache,
};

static void t_map_vmap_kinds_and_cache_modes(void)
{
	unsigned char *v = vmalloc(4 * PAGE_SIZE);
	unsigned char *k = (unsigned char *)__get_free_pages(GFP_KERNEL, 1);
	IOMemoryDescriptor *mv = NULL, *mr = NULL, *bmd = NULL, *b2 = NULL, *multi = NULL, *kids[2];
	IOAddressRange r[3];
	IOMemoryMap *m;
	unsigned char *p;
	int i;

	if (!EXPECT(v && k))
		goto out;
	/* vmalloc memory: the default mode maps to its own address */
	mv = IOMemoryDescriptor_withAddress(v + 100, 3 * PAGE_SIZE, kIODirectionInOut);
	if (EXPECT(mv)) {
		for (i = 0; i < ARRAY_SIZE(km_modes); i++)
			km_roundtrip("vmalloc", mv, km_modes[i],
				     km_modes[i] == kIOMapDefaultCache || km_modes[i] == kIOMapCopybackCache);
		/* unique: a new mapping even in the default mode, at the same page offset */
		m = IOMemoryDescriptor_createMappingInTask(mv, kernel_task, 0, kIOMapAnywhere | kIOMapUnique, 0, 0);
		if (EXPECT(m)) {
			p = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
			EXPECT(p != v + 100 && offset_in_page(p) == 100);
			EXPECT(memcmp(p, v + 100, 3 * PAGE_SIZE) == 0);
			km_check_ptes((unsigned long)p, 3 * PAGE_SIZE, kIOMapDefaultCache, false);
			IOMemoryMap_release(m);
		}
		/* read-only: no _PAGE_RW in the new mapping */
		m = IOMemoryDescriptor_createMappingInTask(mv, kernel_task, 0, kIOMapAnywhere | kIOMapReadOnly,
							   PAGE_SIZE, PAGE_SIZE);
		if (EXPECT(m)) {
			p = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
			EXPECT(memcmp(p, v + 100 + PAGE_SIZE, PAGE_SIZE) == 0);
			km_check_ptes((unsigned long)p, PAGE_SIZE, kIOMapDefaultCache, true);
			IOMemoryMap_release(m);
		}
	}
	/* three ranges - vmalloc, a kmalloc-like linear pair, vmalloc again -
	 * meeting on page boundaries: one virtually contiguous view */
	r[0].address = (uintptr_t)v + PAGE_SIZE + 40;
	r[0].length = PAGE_SIZE - 40;
	r[1].address = (uintptr_t)k;
	r[1].length = 2 * PAGE_SIZE;
	r[2].address = (uintptr_t)v;
	r[2].length = PAGE_SIZE / 2;
	mr = IOMemoryDescriptor_withAddressRanges(r, 3, kIODirectionInOut, kernel_task);
	if (EXPECT(mr) && EXPECT_EQ(IOMemoryDescriptor_prepare(mr, kIODirectionNone), kIOReturnSuccess)) {
		for (i = 0; i < ARRAY_SIZE(km_modes); i++)
			km_roundtrip("three ranges", mr, km_modes[i], false);
		/* and the bytes are the ranges' own */
		m = IOMemoryDescriptor_map(mr, kIOMapInhibitCache);
		if (EXPECT(m)) {
			p = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
			kfill(v, 4 * PAGE_SIZE, 84);
			kfill(k, 2 * PAGE_SIZE, 85);
			EXPECT(memcmp(p, v + PAGE_SIZE + 40, PAGE_SIZE - 40) == 0);
			EXPECT(memcmp(p + PAGE_SIZE - 40, k, 2 * PAGE_SIZE) == 0);
			EXPECT(memcmp(p + 3 * PAGE_SIZE - 40, v, PAGE_SIZE / 2) == 0);
			IOMemoryMap_release(m);
		}
		IOMemoryDescriptor_complete(mr, kIODirectionNone);
	}
	/* buffers (vmalloc-backed and contiguous) and a multi of them */
	bmd = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, 3 * PAGE_SIZE, PAGE_SIZE);
	b2 = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut | kIOMemoryPhysicallyContiguous,
						  2 * PAGE_SIZE, PAGE_SIZE);
	if (EXPECT(bmd && b2)) {
		IOBufferMemoryDescriptor_setLength(bmd, 3 * PAGE_SIZE);
		IOBufferMemoryDescriptor_setLength(b2, 2 * PAGE_SIZE);
		km_roundtrip("buffer", bmd, kIOMapWriteCombineCache, false);
		km_roundtrip("contiguous buffer", b2, kIOMapWriteThruCache, false);
		kids[0] = bmd;
		kids[1] = b2;
		multi = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
		if (EXPECT(multi) && EXPECT_EQ(IOMemoryDescriptor_prepare(multi, kIODirectionNone), kIOReturnSuccess)) {
			km_roundtrip("multi", multi, kIOMapDefaultCache, false);
			km_roundtrip("multi", multi, kIOMapInhibitCache, false);
			IOMemoryDescriptor_complete(multi, kIODirectionNone);
		}
	}
out:
	IOMemoryDescriptor_release(multi);
	IOMemoryDescriptor_release(bmd);
	IOMemoryDescriptor_release(b2);
	IOMemoryDescriptor_release(mr);
	IOMemoryDescriptor_release(mv);
	if (k)
		free_pages((unsigned long)k, 1);
	vfree(v);
	EXPECT_REPORTS(0);
}

static void t_map_user_memory(void)
{
	const size_t area = 4 * PAGE_SIZE, off = 300, len = 3 * PAGE_SIZE;
	unsigned long ua = ku_mmap(area, PROT_READ | PROT_WRITE);
	unsigned char *kb = vmalloc(area), *kc = vmalloc(area);
	IOMemoryDescriptor *md = NULL;
	IOMemoryMap *m = NULL;
	unsigned char *p;

	if (!ua)
		SKIP("no user address space in this context");
	if (!EXPECT(kb && kc))
		goto out;
	kfill(kb, area, 91);
	if (!EXPECT_EQ(copy_to_user((void __user *)ua, kb, area), 0))
		goto out;
	md = IOMemoryDescriptor_withAddressRange(ua + off, len, kIODirectionInOut, iomem_current_task());
	if (!EXPECT(md))
		goto out;
	/* not prepared: its pages are unknown */
	EXPECT_EQ(iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere, 0, 0, &m),
		  kIOReturnUnsupported);
	EXPECT_REPORTS(IOMEM__DEBUG ? 1 : 0);
	panic_count = panic_checked = 0;
	if (!EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionInOut), kIOReturnSuccess))
		goto out;
	/* never the user address itself, even in the default mode */
	km_roundtrip("user memory", md, kIOMapDefaultCache, false);
	m = IOMemoryDescriptor_map(md, 0);
	if (EXPECT(m)) {
		p = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
		EXPECT_EQ(offset_in_page(p), off);
		kfill(p, len, 92);
		memcpy(kb + off, p, len);
		if (EXPECT_EQ(copy_from_user(kc, (void __user *)ua, area), 0))
			EXPECT(memcmp(kc, kb, area) == 0);	/* the map's bytes, none around */
	}
	/* the map holds its pages: they outlive the complete (unpinned) and
	 * the process unmapping them */
	IOMemoryDescriptor_complete(md, kIODirectionInOut);
	EXPECT_EQ(ku_pinned(ua, area), 0);
	ku_munmap(ua, area);
	ua = 0;
	if (m) {
		p = (unsigned char *)(uintptr_t)IOMemoryMap_getAddress(m);
		EXPECT(memcmp(p, kb + off, len) == 0);
		/* still referenced (without the map's reference: freed, 0) */
		EXPECT(page_ref_count(vmalloc_to_page(p)) > 0);
		EXPECT(page_ref_count(vmalloc_to_page(p + len - 1)) > 0);
		IOMemoryMap_release(m);
	}
out:
	IOMemoryDescriptor_release(md);
	ku_munmap(ua, area);
	vfree(kb);
	vfree(kc);
	EXPECT_REPORTS(0);
}

static void t_map_device_memory_ioremap(void)
{
	IODeviceMemory *dm;
	IOMemoryMap *m;
	void __iomem *p;

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	dm = IODeviceMemory_withRange(ktest_edu->bar_phys, PAGE_SIZE);
	if (!EXPECT(dm))
		return;
	m = IOMemoryDescriptor_map(dm, kIOMapInhibitCache);
	if (EXPECT(m)) {
		p = (void __iomem *)(uintptr_t)IOMemoryMap_getAddress(m);
		EXPECT_EQ(readl(p) & 0xffff, 0x00ed);		/* edu's ID: 0xRRrr00ed */
		writel(0x12345678, p + 4);			/* the inverter */
		EXPECT_EQ(readl(p + 4), ~0x12345678u);
		EXPECT_EQ(IOMemoryMap_getPhysicalAddress(m), ktest_edu->bar_phys);
		IOMemoryMap_release(m);
	}
	/* a sub-range at an offset keeps its page offset */
	m = IOMemoryDescriptor_createMappingInTask(dm, kernel_task, 0, kIOMapAnywhere, 4, 8);
	if (EXPECT(m)) {
		p = (void __iomem *)(uintptr_t)IOMemoryMap_getAddress(m);
		EXPECT_EQ(offset_in_page(p), 4);
		writel(0xf0f0f0f0, p);
		EXPECT_EQ(readl(p), 0x0f0f0f0f);
		IOMemoryMap_release(m);
	}
	IOMemoryDescriptor_release(dm);
	EXPECT_REPORTS(0);
}

static void t_map_bad_input(void)
{
	unsigned char *v = vmalloc(3 * PAGE_SIZE);
	IOMemoryDescriptor *md = NULL, *mr = NULL, *dm = NULL;
	IOAddressRange r[2];
	IOMemoryMap *m = NULL;

	if (!EXPECT(v))
		return;
	md = IOMemoryDescriptor_withAddress(v, 3 * PAGE_SIZE, kIODirectionInOut);
	if (!EXPECT(md))
		goto out;
	/* the kernel picks a vmap's address */
	EXPECT_EQ(iomem_md_createMappingInTask(md, kernel_task, (uintptr_t)v + 64 * PAGE_SIZE,
					       kIOMapInhibitCache, 0, 0, &m), kIOReturnUnsupported);
	EXPECT(m == NULL);
	EXPECT_EQ(iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere | kIOMapRealTimeCache, 0, 0,
					       &m), kIOReturnUnsupported);
	EXPECT_EQ(iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere, PAGE_SIZE, 3 * PAGE_SIZE, &m),
		  kIOReturnBadArgument);
	/* guards: vmalloc's own page after the area; a 64 KiB one it cannot give */
	EXPECT_EQ(iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere | kIOMapGuardedLarge, 0, 0, &m),
		  kIOReturnUnsupported);
	if (EXPECT_EQ(iomem_md_createMappingInTask(md, kernel_task, 0, kIOMapAnywhere | kIOMapGuardedSmall, 0, 0,
						   &m), kIOReturnSuccess)) {
		EXPECT(is_vmalloc_addr((void *)(uintptr_t)IOMemoryMap_getAddress(m)));
		EXPECT((void *)(uintptr_t)IOMemoryMap_getAddress(m) != v);
		EXPECT(memcmp((void *)(uintptr_t)IOMemoryMap_getAddress(m), v, 3 * PAGE_SIZE) == 0);
		IOMemoryMap_release(m);
		m = NULL;
	}
	EXPECT_EQ(iomem_md_createMappingInTask(md, iomem_current_task() == kernel_task ? NULL :
					       iomem_current_task(), 0, kIOMapAnywhere, 0, 0, &m),
		  iomem_current_task() == kernel_task ? kIOReturnBadArgument : kIOReturnUnsupported);
	/* two ranges that do not meet on a page boundary */
	r[0].address = (uintptr_t)v + 10;
	r[0].length = 100;
	r[1].address = (uintptr_t)v + 2 * PAGE_SIZE;
	r[1].length = 100;
	mr = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionInOut, kernel_task);
	if (EXPECT(mr) && EXPECT_EQ(IOMemoryDescriptor_prepare(mr, kIODirectionNone), kIOReturnSuccess)) {
		EXPECT_EQ(iomem_md_createMappingInTask(mr, kernel_task, 0, kIOMapAnywhere, 0, 0, &m),
			  kIOReturnNotAligned);
		IOMemoryDescriptor_complete(mr, kIODirectionNone);
	}
	/* device memory: read-only cannot be expressed by ioremap */
	if (ktest_edu) {
		dm = IODeviceMemory_withRange(ktest_edu->bar_phys, PAGE_SIZE);
		if (EXPECT(dm))
			EXPECT_EQ(iomem_md_createMappingInTask(dm, kernel_task, 0, kIOMapAnywhere | kIOMapReadOnly,
							       0, 0, &m), kIOReturnUnsupported);
	}
	EXPECT(m == NULL);
out:
	IOMemoryDescriptor_release(dm);
	IOMemoryDescriptor_release(mr);
	IOMemoryDescriptor_release(md);
	vfree(v);
	EXPECT_REPORTS(0);
}

#define KTEST_MAP_CASES                               \
	T(t_map_vmap_kinds_and_cache_modes),          \
	T(t_map_user_memory),                         \
	T(t_map_device_memory_ioremap),               \
	T(t_map_bad_input),

#endif /* KTEST_MAP_H */
