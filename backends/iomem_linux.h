/* SPDX-License-Identifier: MIT */
/*
 * backends/iomem_linux.h - iomem's Linux kernel backend (Kbuild modules).
 * Included by iomem.h when IOMEM_BACKEND_LINUX is selected (automatic under
 * __KERNEL__); not on its own. Kernel headers only, no libc, no floating
 * point, no VLAs, small stack frames.
 *
 * PLATFORM CONTRACT (DESIGN.md §3)       status in this backend
 *   allocation                            here: kvmalloc / kvzalloc / kvfree
 *                                         (GFP_KERNEL: may sleep, as IOMalloc;
 *                                         above INT_MAX: NULL, not kvmalloc's WARN)
 *   page-granular pageable allocation     here: vmalloc / vzalloc / vfree
 *   page size                             here: PAGE_SIZE
 *   locks                                 here: spinlock_t with IRQs saved, so
 *                                         iomem's bookkeeping is usable from
 *                                         any context that may free. Freeing
 *                                         itself follows kvfree: a block that
 *                                         kvmalloc took from vmalloc (large
 *                                         sizes, and all pageable memory)
 *                                         must be freed in process context
 *   descriptor lock (iomem__sleep_lock)   here: struct mutex: prepare allocates
 *                                         and wires under it (process context)
 *   log / panic                           here: pr_info / WARN (the call then
 *                                         returns its documented error)
 *   --- added by the issues that follow ---
 *   translation virt->phys                virt_to_phys, vmalloc_to_page
 *   wiring user memory                    here: pin_user_pages_remote on the
 *                                         mm the descriptor captured (mmgrab),
 *                                         unpin_user_pages(_dirty_lock)
 *   DMA addresses                         the DMA API on a struct device
 *                                         (swiotlb and the IOMMU are the kernel's)
 *   physical access of exact width        ioremap + readb..readq / writeb..writeq
 *   cache maintenance                     dma_sync_* / the arch's flush
 *   mapping pages at a new address        vmap with a pgprot per cache mode
 *   memory below a physical limit         GFP_DMA32 / dma_alloc_*
 *   system IOMMU                          the kernel IOMMU API where the device
 *                                         has a domain
 */
#ifndef IOMEM_LINUX_H_INCLUDED
#define IOMEM_LINUX_H_INCLUDED

#ifndef IOMEM_H_INCLUDED
#  error "iomem: include iomem.h, not backends/iomem_linux.h"
#endif

#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/bug.h>
#include <linux/printk.h>
#include <linux/highmem.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/version.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/mmap_lock.h>

#ifndef IOMEM_MALLOC_ALIGN
#  if defined(IOMEM_MALLOC)
#    define IOMEM_MALLOC_ALIGN ((vm_size_t)sizeof(void *))
#  else
/* kmalloc's guaranteed minimum; kvmalloc's vmalloc fallback is page-aligned. */
#    define IOMEM_MALLOC_ALIGN ((vm_size_t)ARCH_KMALLOC_MINALIGN)
#  endif
#endif

/* kvmalloc() refuses sizes above INT_MAX with a WARN (a tainted kernel);
 * IOKit's contract for a request that cannot be met is a plain NULL. */
#define IOMEM__LINUX_KVMALLOC_MAX ((vm_size_t)INT_MAX)

IOMEM_FORCEINLINE void *iomem__platform_malloc(vm_size_t size)
{
#ifdef IOMEM_MALLOC
	return IOMEM_MALLOC(size);
#else
	if (unlikely(size > IOMEM__LINUX_KVMALLOC_MAX))
		return NULL;
	return kvmalloc(size, GFP_KERNEL);
#endif
}

IOMEM_FORCEINLINE void *iomem__platform_calloc(vm_size_t size)
{
#ifdef IOMEM_MALLOC
	void *p = IOMEM_MALLOC(size);
	if (p != NULL)
		memset(p, 0, size);
	return p;
#else
	if (unlikely(size > IOMEM__LINUX_KVMALLOC_MAX))
		return NULL;
	return kvzalloc(size, GFP_KERNEL);
#endif
}

IOMEM_FORCEINLINE void iomem__platform_free(void *address)
{
#ifdef IOMEM_FREE
	if (address != NULL)
		IOMEM_FREE(address);
#else
	kvfree(address);
#endif
}

IOMEM_INLINE vm_size_t iomem__platform_page_size(void)
{
	return (vm_size_t)PAGE_SIZE;
}

IOMEM_INLINE void *iomem__platform_alloc_pages(vm_size_t bytes, bool zero)
{
	return zero ? vzalloc(bytes) : vmalloc(bytes);
}

IOMEM_INLINE void iomem__platform_free_pages(void *address, vm_size_t bytes)
{
	(void)bytes;
	vfree(address);
}

typedef struct iomem__mutex {
	spinlock_t    lock;
	unsigned long flags;   /* written only by the holder */
} iomem__mutex;
#define IOMEM__MUTEX_INITIALIZER(name) { __SPIN_LOCK_UNLOCKED(name.lock), 0 }

IOMEM_INLINE bool iomem__mutex_init(iomem__mutex *m)    { spin_lock_init(&m->lock); m->flags = 0; return true; }
IOMEM_INLINE void iomem__mutex_destroy(iomem__mutex *m) { (void)m; }
IOMEM_INLINE void iomem__mutex_lock(iomem__mutex *m)
{
	unsigned long flags;
	spin_lock_irqsave(&m->lock, flags);
	m->flags = flags;
}
IOMEM_INLINE void iomem__mutex_unlock(iomem__mutex *m)
{
	spin_unlock_irqrestore(&m->lock, m->flags);
}

/* The descriptors' per-object lock: prepare allocates (GFP_KERNEL) under it,
 * which a spinlock with IRQs off does not allow. mutex_init gives every
 * descriptor lock one lockdep class; a sub of a sub nests two of them. */
#define IOMEM__HAVE_SLEEP_LOCK 1
typedef struct mutex iomem__sleep_lock;
IOMEM_INLINE bool iomem__sleep_lock_init(iomem__sleep_lock *l)    { mutex_init(l); return true; }
IOMEM_INLINE void iomem__sleep_lock_destroy(iomem__sleep_lock *l) { mutex_destroy(l); }
IOMEM_INLINE void iomem__sleep_lock_lock(iomem__sleep_lock *l)    { mutex_lock(l); }
IOMEM_INLINE void iomem__sleep_lock_unlock(iomem__sleep_lock *l)  { mutex_unlock(l); }

IOMEM_INLINE void iomem__platform_log(const char *msg)
{
	pr_info("%s\n", msg);
}

IOMEM_INLINE void iomem__platform_panic(const char *msg)
{
	WARN(1, "iomem: %s\n", msg);
}

IOMEM_FORCEINLINE void *iomem__memset(void *dst, int c, vm_size_t n)       { return memset(dst, c, n); }
IOMEM_FORCEINLINE void *iomem__memcpy(void *dst, const void *src, vm_size_t n) { return memcpy(dst, src, n); }

/* ---- descriptor layer contract (see iomem_posix.h for the semantics) ----
 * kernel_task memory only: direct-map addresses through virt_to_phys,
 * vmalloc addresses through vmalloc_to_page. Kernel memory is never paged
 * out, so wiring is a translation and unwiring does nothing. Physical copies
 * go through kmap_local_page on RAM pages (pfn_valid); anything else (MMIO)
 * fails. */
typedef struct iomem__ram {
	void             *address;
	vm_size_t         bytes;
	IOPhysicalAddress phys;
	int               fd;        /* unused here */
	bool              pinned;    /* alloc_pages_exact (contiguous) vs vzalloc */
} iomem__ram;

IOMEM_INLINE IOPhysicalAddress iomem__linux_virt_to_phys(uintptr_t va)
{
	if (is_vmalloc_addr((const void *)va)) {
		struct page *pg = vmalloc_to_page((const void *)va);
		return pg ? (IOPhysicalAddress)page_to_phys(pg) + (va & ~PAGE_MASK) : 0;
	}
	return (IOPhysicalAddress)virt_to_phys((void *)va);
}

IOMEM_INLINE IOReturn iomem__platform_wire(uintptr_t page_va, vm_size_t npages, IOPhysicalAddress *phys)
{
	vm_size_t i;
	for (i = 0; i < npages; i++) {
		phys[i] = iomem__linux_virt_to_phys(page_va + i * PAGE_SIZE);
		if (phys[i] == 0)
			return kIOReturnCannotWire;
	}
	return kIOReturnSuccess;
}

IOMEM_INLINE void iomem__platform_unwire(uintptr_t page_va, vm_size_t npages)
{
	(void)page_va; (void)npages;
}

IOMEM_INLINE bool iomem__platform_phys_copy(IOPhysicalAddress pa, void *buf, IOByteCount len, bool to_phys)
{
	unsigned char *b = (unsigned char *)buf;
	while (len > 0) {
		unsigned long pfn = (unsigned long)(pa >> PAGE_SHIFT);
		IOByteCount off = pa & ~(IOPhysicalAddress)PAGE_MASK, chunk = PAGE_SIZE - off;
		unsigned char *v;
		if (chunk > len)
			chunk = len;
		if (!pfn_valid(pfn))
			return false;
		v = (unsigned char *)kmap_local_page(pfn_to_page(pfn));
		if (to_phys) {
			if (b)
				memcpy(v + off, b, chunk);
			else
				memset(v + off, 0, chunk);
		} else {
			memcpy(b, v + off, chunk);
		}
		kunmap_local(v);
		if (b)
			b += chunk;
		pa += chunk;
		len -= chunk;
	}
	return true;
}

IOMEM_INLINE IOReturn iomem__platform_ram_alloc(iomem__ram *ram, vm_size_t bytes, vm_size_t align,
                                                IOPhysicalAddress max_phys, bool contiguous)
{
	ram->address = NULL;
	ram->fd = -1;
	ram->phys = 0;
	ram->pinned = contiguous;
	bytes = PAGE_ALIGN(bytes);
	ram->bytes = bytes;
	if (contiguous) {
		/* __GFP_NOWARN: a block above the buddy allocator's largest order
		 * is a plain failure (NULL), not a WARN that taints the kernel */
		gfp_t gfp = GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN;
		if (max_phys <= 0xFFFFFFFFull)
			gfp |= GFP_DMA32;
		/* alloc_pages_exact(n) takes a buddy block of order get_order(n),
		 * naturally aligned to its size, and frees the tail: aligned to
		 * @align (a power of two) only when n >= align. So ask for
		 * max(bytes, align) and keep it all (freed with that size). */
		if (align > bytes)
			ram->bytes = bytes = align;
		ram->address = alloc_pages_exact(bytes, gfp);
		if (ram->address == NULL)
			return kIOReturnNoMemory;
		ram->phys = (IOPhysicalAddress)virt_to_phys(ram->address);
		if (ram->phys + bytes - 1 > max_phys || (align > PAGE_SIZE && (ram->phys & (align - 1)) != 0)) {
			free_pages_exact(ram->address, bytes);
			ram->address = NULL;
			return kIOReturnNoResources;
		}
		return kIOReturnSuccess;
	}
	if (align > PAGE_SIZE)
		return kIOReturnUnsupported;
	ram->address = vzalloc(bytes);
	return ram->address ? kIOReturnSuccess : kIOReturnNoMemory;
}

IOMEM_INLINE void iomem__platform_ram_free(iomem__ram *ram)
{
	if (ram->address == NULL)
		return;
	if (ram->pinned)
		free_pages_exact(ram->address, ram->bytes);
	else
		vfree(ram->address);
	ram->address = NULL;
}

/* ---- user tasks (the calling process's memory) ---------------------------
 * A user task_t is the process's struct mm_struct *, cast (iomem_current_task
 * returns it; it is only compared, never dereferenced by callers). A
 * descriptor over it captures the mm with mmgrab at creation - which must
 * run in that process, the only place the pointer can be checked - and
 * mmdrop's it when freed. prepare may then run in any process context
 * (another process, a kthread, a workqueue): mmget_not_zero keeps the
 * address space alive while pin_user_pages_remote pins the pages under
 * mmap_read_lock; an address space that is gone (the process exited) is
 * refused with kIOReturnCannotWire. FOLL_WRITE when the device writes
 * (kIODirectionIn); complete unpins (dirty for a writable pin, so the page
 * cache sees the device's bytes). mmdrop/mmput are GPL-only exports: a module
 * under a GPL-incompatible license builds with IOMEM_LINUX_GPL_SYMBOLS=0 (or
 * just IOMEM_LINUX_USER_TASKS=0); then every user task is refused, as on the
 * other backends, and the dmaengine controller (iomem_dma.h) is left out. */
#ifndef IOMEM_LINUX_GPL_SYMBOLS
#  define IOMEM_LINUX_GPL_SYMBOLS 1
#endif
#ifndef IOMEM_LINUX_USER_TASKS
#  define IOMEM_LINUX_USER_TASKS IOMEM_LINUX_GPL_SYMBOLS
#endif

/* The calling thread's task: its mm, or NULL in a kernel thread (which has
 * no user memory; the caller maps NULL to kernel_task). */
IOMEM_INLINE void *iomem__platform_current_mm(void)
{
	if (current->flags & PF_KTHREAD)
		return NULL;
	return current->mm;
}

#if IOMEM_LINUX_USER_TASKS
#define IOMEM__HAVE_USER_TASKS 1

typedef struct iomem__utask {
	struct mm_struct *mm;        /* mmgrab'ed at creation */
	struct page     **pages;     /* pinned while prepared, else NULL */
	unsigned long     npages;
	bool              write;     /* pinned with FOLL_WRITE */
} iomem__utask;

/* Capture @mm for a descriptor; NULL unless @mm is the caller's own. */
IOMEM_INLINE iomem__utask *iomem__platform_task_attach(void *mm)
{
	iomem__utask *u;
	if (mm == NULL || mm != iomem__platform_current_mm())
		return NULL;
	u = (iomem__utask *)kzalloc(sizeof *u, GFP_KERNEL);
	if (u == NULL)
		return NULL;
	mmgrab((struct mm_struct *)mm);
	u->mm = (struct mm_struct *)mm;
	return u;
}

IOMEM_INLINE void iomem__platform_task_detach(iomem__utask *u)
{
	if (u == NULL)
		return;
	if (u->pages != NULL) {          /* not reached: the descriptor completes first */
		unpin_user_pages(u->pages, u->npages);
		kvfree(u->pages);
	}
	mmdrop(u->mm);
	kfree(u);
}

/* Pin every page of @ranges (@npages in all) in @u's mm, all or nothing;
 * the physical address of each page into @phys. kIOReturnCannotWire for a
 * page that is not mapped (or not pinnable: VM_IO/VM_PFNMAP, a write pin of
 * a read-only mapping) or an address space that is gone; kIOReturnNoMemory
 * when the kernel has no memory for it. */
IOMEM_INLINE IOReturn iomem__platform_user_wire(iomem__utask *u, const IOAddressRange *ranges, uint32_t count,
                                                vm_size_t npages, IOPhysicalAddress *phys, bool write)
{
	struct page **pages;
	unsigned long done = 0;
	unsigned int gup = write ? FOLL_WRITE : 0;
	IOReturn ret = kIOReturnSuccess;
	uint32_t i;
	if (npages > (vm_size_t)(INT_MAX / sizeof(*pages)))
		return kIOReturnNoMemory;
	pages = (struct page **)kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL);
	if (pages == NULL)
		return kIOReturnNoMemory;
	if (!mmget_not_zero(u->mm)) {
		kvfree(pages);
		return kIOReturnCannotWire;
	}
	mmap_read_lock(u->mm);
	for (i = 0; i < count && ret == kIOReturnSuccess; i++) {
		unsigned long start = (unsigned long)ranges[i].address & PAGE_MASK, left;
		if (ranges[i].length == 0)
			continue;
		left = (unsigned long)(((ranges[i].address + ranges[i].length - 1) >> PAGE_SHIFT) -
		                       (ranges[i].address >> PAGE_SHIFT) + 1);
		while (left > 0) {
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
			long got = pin_user_pages_remote(u->mm, start, left, gup, pages + done, NULL);
#else
			long got = pin_user_pages_remote(u->mm, start, left, gup, pages + done, NULL, NULL);
#endif
			if (got <= 0) {
				ret = got == -ENOMEM ? kIOReturnNoMemory : kIOReturnCannotWire;
				break;
			}
			done += (unsigned long)got;
			start += (unsigned long)got << PAGE_SHIFT;
			left -= (unsigned long)got;
		}
	}
	mmap_read_unlock(u->mm);
	mmput(u->mm);
	if (ret != kIOReturnSuccess) {
		unpin_user_pages(pages, done);   /* nothing stays pinned */
		kvfree(pages);
		return ret;
	}
	for (done = 0; done < npages; done++)
		phys[done] = (IOPhysicalAddress)page_to_phys(pages[done]);
	u->pages = pages;
	u->npages = npages;
	u->write = write;
	return kIOReturnSuccess;
}

/* Unpin what user_wire pinned; dirty the pages of a writable pin unless
 * @abort (kIODirectionCompleteWithError: the device's data is not kept). */
IOMEM_INLINE void iomem__platform_user_unwire(iomem__utask *u, bool abort)
{
	if (u->pages == NULL)
		return;
	if (u->write && !abort)
		unpin_user_pages_dirty_lock(u->pages, u->npages, true);
	else
		unpin_user_pages(u->pages, u->npages);
	kvfree(u->pages);
	u->pages = NULL;
	u->npages = 0;
}
#endif /* IOMEM_LINUX_USER_TASKS */

#endif /* IOMEM_LINUX_H_INCLUDED */
