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
 *   log / panic                           here: pr_info / WARN (the call then
 *                                         returns its documented error)
 *   --- added by the issues that follow ---
 *   translation virt->phys                virt_to_phys, vmalloc_to_page
 *   wiring user memory                    pin_user_pages / unpin_user_pages
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
#include <linux/string.h>
#include <linux/bug.h>
#include <linux/printk.h>

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

#endif /* IOMEM_LINUX_H_INCLUDED */
