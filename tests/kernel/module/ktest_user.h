/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * ktest_user.h - user memory and the kernel's DMA errors (issue #9).
 * Included once by iomem_ktest.c after ktest_dmacmd.h (it uses kd_gen,
 * KD_MAXSEG, kfill, kphys, ktest_edu); KTEST_USER_CASES goes in its table.
 *
 * The module's init runs in the insmod process, so `current` has a user
 * address space: the cases make user memory there (vm_mmap, filled with
 * copy_to_user and checked with copy_from_user) and describe it with
 * IOMemoryDescriptor_withAddressRange(..., iomem_current_task()).
 *
 *   - the task handle: the process's, the same each call, kernel_task in a
 *     kthread; a descriptor holds the mm (mm_count +1 until freed); refused
 *     from a kthread, for a foreign handle, for bad ranges (no reference
 *     kept);
 *   - prepare pins every page (page_maybe_dma_pinned), the segments are the
 *     pinned pages (the kernel's own lookup), readBytes/writeBytes go
 *     through them (kmap_local_page) and are seen by copy_from_user;
 *     complete unpins (dirtying the pages of an In preparation, not with
 *     kIODirectionCompleteWithError); prepare from a kthread
 *     (pin_user_pages_remote);
 *   - the edu device copies into and out of user memory through
 *     IODMACommand + iomem_linux_mapper_for_device, both directions, every
 *     byte and the untouched bytes around each transfer checked (64-bit and
 *     32-bit commands, all three modes);
 *   - bad input: a range with an unmapped page or none at all, a write
 *     preparation of a read-only mapping -> kIOReturnCannotWire with nothing
 *     pinned and every page's reference count as before; a mask too small
 *     for iomem's bounce memory -> kIOReturnNoResources, nothing held; a
 *     real DMA mapping error per mode (swiotlb slots exhausted by a
 *     bounced mapping in direct and swiotlb mode, an IOVA space too small
 *     with the IOMMU) -> kIOReturnNoResources, and the same slots/IOVAs
 *     map again afterwards (nothing was left mapped).
 */
#ifndef KTEST_USER_H
#define KTEST_USER_H

#include <linux/mman.h>
#include <linux/uaccess.h>
#include <linux/sched/mm.h>
#include <linux/dma-mapping.h>

/* A user mapping of @len bytes in the insmod process, or 0. */
static unsigned long ku_mmap(size_t len, unsigned long prot)
{
	unsigned long a;

	if (current->mm == NULL || (current->flags & PF_KTHREAD))
		return 0;
	a = vm_mmap(NULL, 0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, 0);
	return IS_ERR_VALUE(a) ? 0 : a;
}

static void ku_munmap(unsigned long ua, size_t len)
{
	if (ua != 0)
		vm_munmap(ua, len);
}

/* Reference count and pin state of the user page at @ua, looked up with a
 * plain (unpinned) reference that is dropped again. false: not mapped. */
static bool ku_page_state(unsigned long ua, int *refs, bool *pinned)
{
	struct page *pg;

	if (get_user_pages_fast(ua & PAGE_MASK, 1, 0, &pg) != 1)
		return false;
	*refs = page_ref_count(pg) - 1;		/* without ours */
	*pinned = page_maybe_dma_pinned(pg);
	put_page(pg);
	return true;
}

/* How many of the mapped pages of [ua, ua + len) are DMA-pinned. */
static int ku_pinned(unsigned long ua, size_t len)
{
	unsigned long a;
	int n = 0, r;
	bool p;

	for (a = ua & PAGE_MASK; a < ua + len; a += PAGE_SIZE)
		if (ku_page_state(a, &r, &p) && p)
			n++;
	return n;
}

/* Run @fn(@arg) in a kernel thread and wait for it. */
struct ku_call {
	void (*fn)(void *);
	void *arg;
	struct completion done;
};

static int ku_call_thread(void *p)
{
	struct ku_call *c = p;

	c->fn(c->arg);
	complete(&c->done);
	return 0;
}

static bool ku_in_kthread(void (*fn)(void *), void *arg)
{
	struct ku_call c;
	struct task_struct *t;

	c.fn = fn;
	c.arg = arg;
	init_completion(&c.done);
	t = kthread_run(ku_call_thread, &c, "iomem_ku");
	if (IS_ERR(t))
		return false;
	wait_for_completion(&c.done);
	return true;
}

struct ku_ctx {
	unsigned long ua;
	size_t len;
	task_t task;			/* the insmod process's */
	task_t seen;			/* iomem_current_task() in the thread */
	IOMemoryDescriptor *md;
	IOReturn ret;
	unsigned char *buf;
	IOByteCount got;
};

static void ku_thread_create(void *p)
{
	struct ku_ctx *k = p;

	k->seen = iomem_current_task();
	k->md = IOMemoryDescriptor_withAddressRange(k->ua, k->len, kIODirectionOut, k->task);
}

static void ku_thread_prepare_read(void *p)
{
	struct ku_ctx *k = p;

	k->ret = IOMemoryDescriptor_prepare(k->md, kIODirectionOut);
	if (k->ret == kIOReturnSuccess) {
		k->got = IOMemoryDescriptor_readBytes(k->md, 0, k->buf, k->len);
		IOMemoryDescriptor_complete(k->md, kIODirectionOut);
	}
}

static int ku_mm_count(void)
{
	return atomic_read(&current->mm->mm_count);
}

static void t_user_current_task(void)
{
	const size_t len = 3 * PAGE_SIZE;
	unsigned long ua = ku_mmap(len, PROT_READ | PROT_WRITE);
	task_t task = iomem_current_task();
	struct ku_ctx k = { 0 };
	IOAddressRange r[2];
	IOMemoryDescriptor *md;
	int mmc;

	if (!ua)
		SKIP("no user address space in this context");
	EXPECT(task != kernel_task);
	EXPECT(task == iomem_current_task());
	EXPECT((void *)task == (void *)current->mm);
	mmc = ku_mm_count();

	/* a descriptor holds the address space until it is freed */
	md = IOMemoryDescriptor_withAddressRange(ua + 10, len - 20, kIODirectionInOut, task);
	if (EXPECT(md != NULL)) {
		EXPECT_EQ(ku_mm_count(), mmc + 1);
		EXPECT_EQ(IOMemoryDescriptor_getLength(md), len - 20);
		IOMemoryDescriptor_release(md);
	}
	EXPECT_EQ(ku_mm_count(), mmc);

	/* a kernel thread is kernel_task and cannot make user descriptors */
	k.ua = ua;
	k.len = len;
	k.task = task;
	if (EXPECT(ku_in_kthread(ku_thread_create, &k))) {
		EXPECT(k.seen == kernel_task);
		EXPECT(k.md == NULL);
		IOMemoryDescriptor_release(k.md);
	}
	/* bad input, no reference kept */
	EXPECT(IOMemoryDescriptor_withAddressRange(ua, len, kIODirectionOut, (task_t)&k) == NULL);
	EXPECT(IOMemoryDescriptor_withAddressRange(0, len, kIODirectionOut, task) == NULL);
	EXPECT(IOMemoryDescriptor_withAddressRange(~0ull - 10, 100, kIODirectionOut, task) == NULL);
	r[0].address = ua;
	r[0].length = PAGE_SIZE;
	r[1].address = ~0ull - PAGE_SIZE;
	r[1].length = 2 * PAGE_SIZE;
	EXPECT(IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionOut, task) == NULL);
	EXPECT(IOMemoryDescriptor_withAddressRanges(NULL, 2, kIODirectionOut, task) == NULL);
	/* the general factory: virtual ranges in the task, physical ones never */
	{
		IOVirtualRange vr = { (IOVirtualAddress)ua, PAGE_SIZE };

		md = IOMemoryDescriptor_withOptions(&vr, 1, 0, task, kIOMemoryTypeVirtual | kIODirectionOut, NULL);
		EXPECT(md != NULL);
		IOMemoryDescriptor_release(md);
		EXPECT(IOMemoryDescriptor_withOptions(&vr, 1, 0, task, kIOMemoryTypePhysical, NULL) == NULL);
	}
	EXPECT_EQ(ku_mm_count(), mmc);
	ku_munmap(ua, len);
	EXPECT_REPORTS(0);
}

/* [ua + off, + len): the segments are the pages the kernel maps there */
static bool ku_check_segments(IOMemoryDescriptor *md, unsigned long ua, size_t len)
{
	IOByteCount off = 0;

	while (off < len) {
		IOByteCount seg = 0, k;
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, kIOMemoryMapperNone);

		if (!EXPECT(pa != 0 && seg > 0 && seg <= len - off))
			return false;
		for (k = 0; k < seg; k += PAGE_SIZE - offset_in_page(ua + off + k)) {
			struct page *pg;
			bool ok;

			if (!EXPECT_EQ(get_user_pages_fast((ua + off + k) & PAGE_MASK, 1, 0, &pg), 1))
				return false;
			ok = EXPECT_EQ(pa + k, page_to_phys(pg) + offset_in_page(ua + off + k));
			put_page(pg);
			if (!ok)
				return false;
		}
		off += seg;
	}
	return EXPECT_EQ(off, len);
}

static void t_user_prepare_pins_segments_bytes(void)
{
	const size_t area = 6 * PAGE_SIZE, off = 100, len = 4 * PAGE_SIZE + 500;
	unsigned long ua = ku_mmap(area, PROT_READ | PROT_WRITE);
	unsigned char *kb = vmalloc(area), *kc = vmalloc(area);
	IOMemoryDescriptor *md = NULL, *mr = NULL;
	struct ku_ctx k = { 0 };
	IOAddressRange r[2];

	if (!ua)
		SKIP("no user address space in this context");
	if (!EXPECT(kb && kc))
		goto out;
	kfill(kb, area, 41);
	if (!EXPECT_EQ(copy_to_user((void __user *)ua, kb, area), 0))
		goto out;
	md = IOMemoryDescriptor_withAddressRange(ua + off, len, kIODirectionInOut, iomem_current_task());
	if (!EXPECT(md))
		goto out;
	/* not prepared: no bytes (a contract violation under IOMEM_DEBUG) */
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, kc, 16), 0);
	EXPECT_REPORTS(IOMEM__DEBUG ? 1 : 0);
	panic_count = panic_checked = 0;
	EXPECT_EQ(ku_pinned(ua, area), 0);

	if (!EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionInOut), kIOReturnSuccess))
		goto out;
	EXPECT_EQ(ku_pinned(ua, area), 5);		/* the 5 pages it touches */
	EXPECT(!ku_pinned(ua + 5 * PAGE_SIZE, PAGE_SIZE));
	ku_check_segments(md, ua + off, len);
	/* bytes through the pinned pages */
	memset(kc, 0, area);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, kc, len), len);
	EXPECT(memcmp(kc, kb + off, len) == 0);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, PAGE_SIZE - 7, kc, 30), 30);
	EXPECT(memcmp(kc, kb + off + PAGE_SIZE - 7, 30) == 0);
	kfill(kb + off, len, 42);
	EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, 0, kb + off, len), len);
	EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, 1, NULL, 3), 3);	/* zero fill */
	memset(kb + off + 1, 0, 3);
	if (EXPECT_EQ(copy_from_user(kc, (void __user *)ua, area), 0))
		EXPECT(memcmp(kc, kb, area) == 0);	/* and not a byte around it */
	/* nested prepare: one pin, released at the last complete */
	EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionOut), kIOReturnSuccess);
	EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionOut), kIOReturnSuccess);
	EXPECT_EQ(ku_pinned(ua, area), 5);
	EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionInOut), kIOReturnSuccess);
	EXPECT_EQ(ku_pinned(ua, area), 0);

	/* two user ranges, out of order, sharing a page */
	r[0].address = ua + 3 * PAGE_SIZE + 8;
	r[0].length = PAGE_SIZE + 100;
	r[1].address = ua + 10;
	r[1].length = 3 * PAGE_SIZE;
	mr = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionOut, iomem_current_task());
	if (EXPECT(mr) && EXPECT_EQ(IOMemoryDescriptor_prepare(mr, kIODirectionNone), kIOReturnSuccess)) {
		EXPECT_EQ(ku_pinned(ua, area), 5);
		EXPECT_EQ(IOMemoryDescriptor_readBytes(mr, 0, kc, r[0].length + r[1].length),
			  r[0].length + r[1].length);
		EXPECT(memcmp(kc, kb + 3 * PAGE_SIZE + 8, r[0].length) == 0);
		EXPECT(memcmp(kc + r[0].length, kb + 10, r[1].length) == 0);
		/* prepared read-only (Out): writeBytes refuses */
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(mr, 0, kc, 4), 0);
		EXPECT_EQ(IOMemoryDescriptor_complete(mr, kIODirectionNone), kIOReturnSuccess);
		EXPECT_EQ(ku_pinned(ua, area), 0);
	}

	/* a sub-range: its prepare wires the whole parent, as IOKit's */
	{
		IOMemoryDescriptor *sub = IOSubMemoryDescriptor_withSubRange(md, PAGE_SIZE + 3, 200, kIODirectionOut);

		if (EXPECT(sub) && EXPECT_EQ(IOMemoryDescriptor_prepare(sub, kIODirectionOut), kIOReturnSuccess)) {
			EXPECT_EQ(ku_pinned(ua, area), 5);
			EXPECT_EQ(IOMemoryDescriptor_readBytes(sub, 0, kc, 200), 200);
			EXPECT(memcmp(kc, kb + off + PAGE_SIZE + 3, 200) == 0);
			EXPECT_EQ(IOMemoryDescriptor_complete(sub, kIODirectionOut), kIOReturnSuccess);
		}
		IOMemoryDescriptor_release(sub);
		EXPECT_EQ(ku_pinned(ua, area), 0);
	}

	/* prepared in another context: a kthread pins through the held mm */
	k.md = md;
	k.len = len;
	k.buf = kc;
	memset(kc, 0, area);
	if (EXPECT(ku_in_kthread(ku_thread_prepare_read, &k))) {
		EXPECT_EQ(k.ret, kIOReturnSuccess);
		EXPECT_EQ(k.got, len);
		EXPECT(memcmp(kc, kb + off, len) == 0);
	}
	EXPECT_EQ(ku_pinned(ua, area), 0);

	/* released while prepared: completed (reported under IOMEM_DEBUG), unpinned */
	if (EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionIn), kIOReturnSuccess)) {
		EXPECT_EQ(ku_pinned(ua, area), 5);
		IOMemoryDescriptor_release(md);
		md = NULL;
		EXPECT_REPORTS(IOMEM__DEBUG ? 1 : 0);
		EXPECT_EQ(ku_pinned(ua, area), 0);
	}
out:
	IOMemoryDescriptor_release(md);
	IOMemoryDescriptor_release(mr);
	ku_munmap(ua, area);
	vfree(kb);
	vfree(kc);
}

/* Sum of the reference counts of the mapped pages of [ua, ua + len) (a
 * pin weighs 1000000), and how many pages that is. */
static long ku_refs(unsigned long ua, size_t len, int *pages)
{
	unsigned long a;
	long sum = 0;
	int r;
	bool p;

	*pages = 0;
	for (a = ua & PAGE_MASK; a < ua + len; a += PAGE_SIZE)
		if (ku_page_state(a, &r, &p)) {
			sum += r + (p ? 1000000 : 0);
			(*pages)++;
		}
	return sum;
}

static void ku_expect_cannot_wire(unsigned long ua, size_t len, IODirection dir, unsigned long span_ua,
				  size_t span)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange(ua, len, dir, iomem_current_task());
	int pages;
	long before = ku_refs(span_ua, span, &pages), after;
	unsigned char b[8];

	if (!EXPECT(md))
		return;
	EXPECT_EQ(IOMemoryDescriptor_prepare(md, dir), kIOReturnCannotWire);
	EXPECT_EQ(ku_pinned(span_ua, span), 0);
	/* no pin and no reference kept; GUP's mark_page_accessed may leave
	 * one in the LRU's per-CPU activation batch (not drainable from a
	 * module), hence at most one more a page */
	after = ku_refs(span_ua, span, &pages);
	if (!EXPECT(after >= before && after - before <= pages))
		DIAG("  references of %d page(s): %ld before, %ld after", pages, before, after);
	/* still unprepared: no bytes */
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, b, sizeof(b)), 0);
	EXPECT_REPORTS(IOMEM__DEBUG ? 1 : 0);
	panic_count = panic_checked = 0;	/* each call counts its own */
	IOMemoryDescriptor_release(md);
}

static void t_user_unmapped_or_readonly_prepare_fails(void)
{
	const size_t area = 4 * PAGE_SIZE;
	unsigned long ua = ku_mmap(area, PROT_READ | PROT_WRITE);
	unsigned long ro = ku_mmap(2 * PAGE_SIZE, PROT_READ);
	unsigned char *kb = vmalloc(area);
	IOMemoryDescriptor *md;

	if (!ua || !ro)
		SKIP("no user address space in this context");
	if (!EXPECT(kb))
		goto out;
	kfill(kb, area, 43);
	if (!EXPECT_EQ(copy_to_user((void __user *)ua, kb, area), 0))
		goto out;
	/* a hole at the third page: pages 0, 1 and 3 stay unpinned */
	vm_munmap(ua + 2 * PAGE_SIZE, PAGE_SIZE);
	ku_expect_cannot_wire(ua + 5, area - 10, kIODirectionIn, ua, area);
	ku_expect_cannot_wire(ua + 5, area - 10, kIODirectionOut, ua, area);
	/* nothing mapped at all */
	ku_expect_cannot_wire(ua + 2 * PAGE_SIZE + 1, 100, kIODirectionOut, ua, area);
	/* the device would write a read-only mapping */
	ku_expect_cannot_wire(ro, 2 * PAGE_SIZE, kIODirectionIn, ro, 2 * PAGE_SIZE);

	/* the same descriptor prepares once the hole is mapped again */
	md = IOMemoryDescriptor_withAddressRange(ua + 5, area - 10, kIODirectionInOut, iomem_current_task());
	if (EXPECT(md)) {
		EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnCannotWire);
		EXPECT_EQ(vm_mmap(NULL, ua + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0), ua + 2 * PAGE_SIZE);
		if (EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess)) {
			EXPECT_EQ(ku_pinned(ua, area), 4);
			IOMemoryDescriptor_complete(md, kIODirectionNone);
		}
		IOMemoryDescriptor_release(md);
	}
	EXPECT_EQ(ku_pinned(ua, area), 0);
out:
	ku_munmap(ua, area);
	ku_munmap(ro, 2 * PAGE_SIZE);
	vfree(kb);
	EXPECT_REPORTS(0);
}

/* PG_dirty of the user page at @ua (-1: not mapped). */
static int ku_dirty(unsigned long ua)
{
	struct page *pg;
	int d;

	if (get_user_pages_fast(ua & PAGE_MASK, 1, 0, &pg) != 1)
		return -1;
	d = PageDirty(pg) ? 1 : 0;
	put_page(pg);
	return d;
}

/* A device-writable (In) preparation dirties its pages at the last
 * complete (unpin_user_pages_dirty_lock), unless completed with
 * kIODirectionCompleteWithError; a read-only (Out) one never does. */
static void t_user_complete_dirties_device_written_pages(void)
{
	const size_t area = 3 * PAGE_SIZE;
	unsigned long ua = ku_mmap(area, PROT_READ | PROT_WRITE);
	static const unsigned char one = 1;
	IOMemoryDescriptor *md;
	int i;

	if (!ua)
		SKIP("no user address space in this context");
	for (i = 0; i < 3; i++)
		if (!EXPECT_EQ(copy_to_user((void __user *)(ua + i * PAGE_SIZE), &one, 1), 0))
			goto out;
	if (ku_dirty(ua) || ku_dirty(ua + PAGE_SIZE) || ku_dirty(ua + 2 * PAGE_SIZE)) {
		ku_munmap(ua, area);
		SKIP("a fresh anonymous page is already PG_dirty here");
	}
	md = IOMemoryDescriptor_withAddressRange(ua, PAGE_SIZE, kIODirectionIn, iomem_current_task());
	if (EXPECT(md) && EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionIn), kIOReturnSuccess)) {
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionIn), kIOReturnSuccess);
		EXPECT_EQ(ku_dirty(ua), 1);
	}
	IOMemoryDescriptor_release(md);
	md = IOMemoryDescriptor_withAddressRange(ua + PAGE_SIZE, PAGE_SIZE, kIODirectionIn, iomem_current_task());
	if (EXPECT(md) && EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionIn), kIOReturnSuccess)) {
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionIn | kIODirectionCompleteWithError),
			  kIOReturnSuccess);
		EXPECT_EQ(ku_dirty(ua + PAGE_SIZE), 0);
	}
	IOMemoryDescriptor_release(md);
	md = IOMemoryDescriptor_withAddressRange(ua + 2 * PAGE_SIZE, PAGE_SIZE, kIODirectionOut, iomem_current_task());
	if (EXPECT(md) && EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionOut), kIOReturnSuccess)) {
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionOut), kIOReturnSuccess);
		EXPECT_EQ(ku_dirty(ua + 2 * PAGE_SIZE), 0);
	}
	IOMemoryDescriptor_release(md);
	EXPECT_EQ(ku_pinned(ua, area), 0);
out:
	ku_munmap(ua, area);
	EXPECT_REPORTS(0);
}

/*
 * edu copies a coherent buffer into user memory [ua + off, + len) through
 * the command's segments (device -> memory), then the memory back out
 * (memory -> device); the whole user area is read back with copy_from_user
 * each time: the transfer's bytes and none around it changed.
 */
static void ku_edu_case(unsigned long ua, size_t area, size_t off, size_t len, UInt8 bits)
{
	struct device *dev = &ktest_edu->pdev->dev;
	IODMACommand_Segment64 *s = kcalloc(KD_MAXSEG, sizeof(*s), GFP_KERNEL);
	unsigned char *kb = vmalloc(area), *kc = vmalloc(area), *co = NULL;
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddressRange(ua + off, len, kIODirectionInOut,
								     iomem_current_task());
	IOMapper *mapper = iomem_linux_mapper_for_device(dev);
	IODMACommand *cmd = NULL;
	dma_addr_t cd = 0;
	size_t o;
	int n, i;

	co = dma_alloc_coherent(dev, len, &cd, GFP_KERNEL);
	if (!EXPECT(s && kb && kc && md && mapper && co))
		goto out;
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, bits, 0, IODMACommand_kMapped,
					     0, 1, mapper, NULL);
	if (!EXPECT(cmd))
		goto out;

	/* device -> user memory */
	memset(kb, 0x5a, area);
	if (!EXPECT_EQ(copy_to_user((void __user *)ua, kb, area), 0))
		goto out;
	kfill(co, len, 51 + bits);
	/* the driver prepares (pins) user memory, the command maps it */
	if (!EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionIn), kIOReturnSuccess))
		goto out;
	EXPECT(ku_pinned(ua, area) > 0);
	if (!EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess)) {
		IOMemoryDescriptor_complete(md, kIODirectionIn);
		goto out;
	}
	n = kd_gen(cmd, s, 7);
	DIAG("user memory (%u bits, mode %s): %zu bytes at +%zu, %d segment(s), first %#llx+%#llx", bits, mode,
	     len, off, n, n > 0 ? s[0].fIOVMAddr : 0, n > 0 ? s[0].fLength : 0);
	for (i = 0, o = 0; i < n; o += s[i].fLength, i++) {
		if (bits < 64)
			EXPECT(s[i].fIOVMAddr + s[i].fLength - 1 <= DMA_BIT_MASK(bits));
		if (!EXPECT(ktest_edu_copy(cd + o, s[i].fIOVMAddr, s[i].fLength) == 0))
			break;
	}
	EXPECT_EQ(o, len);
	EXPECT_EQ(IODMACommand_synchronize(cmd, kIODirectionIn), kIOReturnSuccess);
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionIn), kIOReturnSuccess);
	EXPECT_EQ(ku_pinned(ua, area), 0);
	memcpy(kb + off, co, len);
	if (EXPECT_EQ(copy_from_user(kc, (void __user *)ua, area), 0) && !EXPECT(memcmp(kc, kb, area) == 0)) {
		for (o = 0; o < area && kc[o] == kb[o]; o++)
			;
		DIAG("  first difference at +%zu: %#x, expected %#x", o, kc[o], kb[o]);
	}

	/* user memory -> device */
	kfill(kb, area, 61 + bits);
	if (!EXPECT_EQ(copy_to_user((void __user *)ua, kb, area), 0))
		goto out;
	memset(co, 0, len);
	if (!EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionOut), kIOReturnSuccess))
		goto out;
	if (!EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess)) {
		IOMemoryDescriptor_complete(md, kIODirectionOut);
		goto out;
	}
	n = kd_gen(cmd, s, 64);
	for (i = 0, o = 0; i < n; o += s[i].fLength, i++)
		if (!EXPECT(ktest_edu_copy(s[i].fIOVMAddr, cd + o, s[i].fLength) == 0))
			break;
	EXPECT(memcmp(co, kb + off, len) == 0);
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionOut), kIOReturnSuccess);
	EXPECT_EQ(ku_pinned(ua, area), 0);
	if (EXPECT_EQ(copy_from_user(kc, (void __user *)ua, area), 0))
		EXPECT(memcmp(kc, kb, area) == 0);	/* the device only read */
out:
	IODMACommand_release(cmd);
	IOMapper_release(mapper);
	IOMemoryDescriptor_release(md);
	if (co)
		dma_free_coherent(dev, len, co, cd);
	vfree(kb);
	vfree(kc);
	kfree(s);
}

static void t_user_edu_dma_both_directions(void)
{
	const size_t area = 8 * PAGE_SIZE;
	unsigned long ua = ku_mmap(area, PROT_READ | PROT_WRITE);

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	if (!ua)
		SKIP("no user address space in this context");
	ku_edu_case(ua, area, PAGE_SIZE + 300, 5 * PAGE_SIZE + 123, 64);
	ku_edu_case(ua, area, 17, 2 * PAGE_SIZE, 64);
	/* a 32-bit device: swiotlb slots in direct mode, low IOVAs with the IOMMU */
	ku_edu_case(ua, area, PAGE_SIZE - 64, 3 * PAGE_SIZE + 128, 32);
	EXPECT_EQ(dma_get_mask(&ktest_edu->pdev->dev), DMA_BIT_MASK(edu_mask_bits));
	ku_munmap(ua, area);
	EXPECT_REPORTS(0);
}

/* numAddressBits that iomem's own bounce memory (GFP_DMA32 pages, or one
 * contiguous low buffer) cannot meet: kIOReturnNoResources, nothing held */
static void t_user_mask_too_small_for_bounce_memory(void)
{
	const size_t len = 3 * PAGE_SIZE;
	unsigned long ua = ku_mmap(len, PROT_READ | PROT_WRITE);
	unsigned char *kb = vmalloc(len);
	IOMemoryDescriptor *md = NULL;
	IODMACommand *cmd = NULL;
	bool warned = test_taint(TAINT_WARN);

	if (!ua)
		SKIP("no user address space in this context");
	if (!EXPECT(kb))
		goto out;
	kfill(kb, len, 71);
	if (!EXPECT_EQ(copy_to_user((void __user *)ua, kb, len), 0))
		goto out;
	md = IOMemoryDescriptor_withAddressRange(ua + 1, len - 2, kIODirectionInOut, iomem_current_task());
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 16, 0, IODMACommand_kUnmapped,
					     0, 1, NULL, NULL);
	if (!EXPECT(md && cmd) || !EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess))
		goto out;
	EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnNoResources);
	EXPECT(IODMACommand_getMemoryDescriptor(cmd) == NULL);
	EXPECT_EQ(ku_pinned(ua, len), 3);		/* the driver's own prepare only */
	EXPECT(warned || !test_taint(TAINT_WARN));
	/* the same memory with a 64-bit command: no bounce, its own pages */
	IODMACommand_release(cmd);
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, 64, 0, IODMACommand_kUnmapped,
					     0, 1, NULL, NULL);
	if (EXPECT(cmd) && EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess)) {
		IODMACommand_Segment64 seg;
		UInt64 off = 0;
		UInt32 k = 1;

		EXPECT_EQ(IODMACommand_gen64IOVMSegments(cmd, &off, &seg, &k), kIOReturnSuccess);
		EXPECT(ku_check_segments(md, ua + 1, len - 2));
		EXPECT_EQ(ku_pinned(ua, len), 3);
		EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	}
	EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	EXPECT_EQ(ku_pinned(ua, len), 0);
out:
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(md);
	ku_munmap(ua, len);
	vfree(kb);
	EXPECT_REPORTS(0);
}

/* One mapping attempt of @len bytes of @va through edu's DMA API mapper. */
static IOReturn ku_map_attempt(unsigned char *va, size_t len, UInt8 bits)
{
	IOMemoryDescriptor *md = IOMemoryDescriptor_withAddress(va, len, kIODirectionOut);
	IOMapper *mapper = iomem_linux_mapper_for_device(&ktest_edu->pdev->dev);
	IODMACommand *cmd = NULL;
	IOReturn r = kIOReturnNoMemory;

	if (!EXPECT(md && mapper))
		goto out;
	cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, bits, 0, IODMACommand_kMapped,
					     0, 1, mapper, NULL);
	if (!EXPECT(cmd))
		goto out;
	r = IODMACommand_setMemoryDescriptor(cmd, md, true);
	if (r == kIOReturnSuccess)
		EXPECT_EQ(IODMACommand_clearMemoryDescriptor(cmd, true), kIOReturnSuccess);
	else
		EXPECT(IODMACommand_getMemoryDescriptor(cmd) == NULL);
out:
	IODMACommand_release(cmd);
	IOMapper_release(mapper);
	IOMemoryDescriptor_release(md);
	return r;
}

/*
 * A real dma_map_sg failure per mode, surfaced as kIOReturnNoResources:
 *   direct   a 32-bit command over memory above 4 GiB bounces through
 *            swiotlb; 128 MiB do not fit its 64 MiB pool;
 *   swiotlb  every mapping bounces: the same with a 64-bit command;
 *   iommu    a 20-bit command: 2 MiB do not fit a 1 MiB IOVA space.
 * Nothing stays mapped: the kernel unmaps the part it mapped, so a second
 * attempt fails the same way and a mapping that needs most of the pool
 * (or IOVA space) right after succeeds.
 */
static void t_dma_mapping_errors_surface(void)
{
	size_t big, fits;
	unsigned char *va = NULL;
	bool warned = test_taint(TAINT_WARN);
	UInt8 bits;

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	if (!strcmp(mode, "iommu")) {
		big = 2u << 20;
		fits = 256u << 10;	/* size-aligned, below the VGA window (0xa0000) the IOMMU reserves */
		bits = 20;
	} else if (!strcmp(mode, "swiotlb") || !strcmp(mode, "direct")) {
		big = 128u << 20;
		fits = 16u << 20;	/* swiotlb holds ~32 MiB of page mappings */
		bits = !strcmp(mode, "direct") ? 32 : 64;
	} else {
		SKIP("mode any: the failure depends on the mode");
	}
	va = vmalloc(big);
	if (!EXPECT(va))
		return;
	if (bits == 32 && kphys(va) < (1ull << 32) && kphys(va + big - 1) < (1ull << 32)) {
		vfree(va);
		SKIP("direct: no memory above 4 GiB to bounce");
	}
	memset(va, 0x33, big);
	EXPECT_EQ(ku_map_attempt(va, big, bits), kIOReturnNoResources);
	EXPECT_EQ(ku_map_attempt(va, big, bits), kIOReturnNoResources);
	EXPECT_EQ(ku_map_attempt(va, fits, bits), kIOReturnSuccess);
	EXPECT_EQ(ku_map_attempt(va + big - fits, fits, bits), kIOReturnSuccess);
	EXPECT(warned || !test_taint(TAINT_WARN));
	EXPECT_EQ(dma_get_mask(&ktest_edu->pdev->dev), DMA_BIT_MASK(edu_mask_bits));
	vfree(va);
	EXPECT_REPORTS(0);
}

#define KTEST_USER_CASES                                \
	T(t_user_current_task),                         \
	T(t_user_prepare_pins_segments_bytes),          \
	T(t_user_unmapped_or_readonly_prepare_fails),   \
	T(t_user_complete_dirties_device_written_pages), \
	T(t_user_edu_dma_both_directions),              \
	T(t_user_mask_too_small_for_bounce_memory),     \
	T(t_dma_mapping_errors_surface),

#endif /* KTEST_USER_H */
