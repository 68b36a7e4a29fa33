/* SPDX-License-Identifier: MIT */
/*
 * backends/iomem_baremetal.h - iomem's bare-metal backend (freestanding).
 * Included by iomem.h when IOMEM_BACKEND_BAREMETAL is selected (automatic
 * when __STDC_HOSTED__ == 0); not on its own. Uses <stddef.h> <stdint.h>
 * <stdbool.h> only: no libc, no TLS, no 64-bit atomics, no floating point.
 *
 * The platform is described once at start-up:
 *
 *     static void *heap_alloc(void *user, vm_size_t n) { ... }
 *     static void  heap_free(void *user, void *p)      { ... }
 *     iomem_baremetal_init(&(iomem_baremetal_desc){
 *         .alloc = heap_alloc, .free = heap_free,      // the IOMalloc heap
 *         .lock = irq_save, .unlock = irq_restore,     // multi-core / IRQs
 *     });
 *
 * Zero means default for every field. Until iomem's built-in O(1) heap lands
 * (the bare-metal issue), the IOMalloc family needs the alloc/free hooks and
 * returns NULL without them.
 *
 * PLATFORM CONTRACT (DESIGN.md §3)       status in this backend
 *   allocation                            here: the alloc/free hooks
 *   page-granular pageable allocation     here: page-aligned blocks from the
 *                                         same heap (all memory is wired)
 *   page size                             here: desc.page_size (default 4096)
 *   locks                                 here: the lock/unlock hooks (default
 *                                         none: single core, no IRQ users)
 *   log / panic                           here: the log/panic hooks (default:
 *                                         drop / spin forever)
 *   copy / fill                           memcpy/memset, provided weakly here
 *                                         (override with your own)
 *   --- added by the issues that follow ---
 *   translation virt<->phys               hooks, identity by default
 *   DMA-reachable window, bounce arena    a low-memory arena in the desc
 *   cache maintenance                     per-architecture defaults (Cortex-M7
 *                                         SCB, ARMv8 dc civac, RISC-V Zicbom)
 *                                         or hooks
 *   physical access of exact width        volatile loads/stores
 *   system IOMMU                          an optional hook table
 */
#ifndef IOMEM_BAREMETAL_H_INCLUDED
#define IOMEM_BAREMETAL_H_INCLUDED

#ifndef IOMEM_H_INCLUDED
#  error "iomem: include iomem.h, not backends/iomem_baremetal.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#ifndef IOMEM_MALLOC_ALIGN
/* What the alloc hook (or IOMEM_MALLOC) must guarantee. */
#  define IOMEM_MALLOC_ALIGN ((vm_size_t)8)
#endif

/** Start-up description of the platform; zero-initialise, set what you have. */
typedef struct iomem_baremetal_desc {
	vm_size_t page_size;                               /* 0: 4096; a power of two */
	void *(*alloc)(void *user, vm_size_t size);        /* aligned to IOMEM_MALLOC_ALIGN */
	void  (*free)(void *user, void *address);
	void  (*lock)(void *user);                         /* e.g. mask IRQs / take a spinlock */
	void  (*unlock)(void *user);
	void  (*log)(void *user, const char *msg);
	void  (*panic)(void *user, const char *msg);       /* may return: the call then fails */
	void  *user;                                       /* passed to every hook */
} iomem_baremetal_desc;

/**
 * iomem_baremetal_init - describe the platform; call once before any other
 * iomem call (not thread-safe: at start-up, single core).
 * @desc: copied. NULL, alloc without free (or the reverse), lock without
 *        unlock (or the reverse), or a page size that is not a power of two
 *        of at least 256 -> kIOReturnBadArgument and nothing changes.
 */
IOMEM_API IOReturn iomem_baremetal_init(const iomem_baremetal_desc *desc);

IOMEM_API void     *iomem__baremetal_malloc(vm_size_t size);
IOMEM_API void      iomem__baremetal_free(void *address);
IOMEM_API vm_size_t iomem__baremetal_page_size(void);
IOMEM_API void     *iomem__baremetal_alloc_pages(vm_size_t bytes, bool zero);
IOMEM_API void      iomem__baremetal_free_pages(void *address, vm_size_t bytes);
IOMEM_API void      iomem__baremetal_lock(void);
IOMEM_API void      iomem__baremetal_unlock(void);
IOMEM_API void      iomem__baremetal_log(const char *msg);
IOMEM_API void      iomem__baremetal_panic(const char *msg);

/* The compiler may emit calls to these in freestanding code anyway; the
 * implementation provides weak definitions. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

IOMEM_FORCEINLINE void *iomem__memset(void *dst, int c, vm_size_t n)       { return memset(dst, c, n); }
IOMEM_FORCEINLINE void *iomem__memcpy(void *dst, const void *src, vm_size_t n) { return memcpy(dst, src, n); }

IOMEM_FORCEINLINE void *iomem__platform_malloc(vm_size_t size)
{
#ifdef IOMEM_MALLOC
	return IOMEM_MALLOC(size);
#else
	return iomem__baremetal_malloc(size);
#endif
}

IOMEM_FORCEINLINE void *iomem__platform_calloc(vm_size_t size)
{
	void *p = iomem__platform_malloc(size);
	if (p != NULL)
		iomem__memset(p, 0, size);
	return p;
}

IOMEM_FORCEINLINE void iomem__platform_free(void *address)
{
#ifdef IOMEM_FREE
	if (address != NULL)
		IOMEM_FREE(address);
#else
	iomem__baremetal_free(address);
#endif
}

IOMEM_INLINE vm_size_t iomem__platform_page_size(void)                  { return iomem__baremetal_page_size(); }
IOMEM_INLINE void *iomem__platform_alloc_pages(vm_size_t bytes, bool zero) { return iomem__baremetal_alloc_pages(bytes, zero); }
IOMEM_INLINE void  iomem__platform_free_pages(void *address, vm_size_t bytes) { iomem__baremetal_free_pages(address, bytes); }

/* One lock domain, the hooks'. The struct exists so that code written for
 * the other backends (a lock per object) compiles unchanged. */
typedef struct iomem__mutex { unsigned char unused; } iomem__mutex;
#define IOMEM__MUTEX_INITIALIZER(name) { 0 }
IOMEM_INLINE bool iomem__mutex_init(iomem__mutex *m)    { (void)m; return true; }
IOMEM_INLINE void iomem__mutex_destroy(iomem__mutex *m) { (void)m; }
IOMEM_INLINE void iomem__mutex_lock(iomem__mutex *m)    { (void)m; iomem__baremetal_lock(); }
IOMEM_INLINE void iomem__mutex_unlock(iomem__mutex *m)  { (void)m; iomem__baremetal_unlock(); }

/* ---- descriptor layer contract (see iomem_posix.h for the semantics) ----
 * Identity translation (physical == virtual), all memory wired; buffer RAM
 * comes from the alloc hook, page-aligned; a physical limit is checked
 * against the block's address (kIOReturnNoResources if above). */
typedef struct iomem__ram {
	void             *address;
	vm_size_t         bytes;
	IOPhysicalAddress phys;
	int               fd;        /* unused here */
	bool              pinned;
} iomem__ram;

IOMEM_API IOReturn iomem__platform_wire(uintptr_t page_va, vm_size_t npages, IOPhysicalAddress *phys);
IOMEM_API void     iomem__platform_unwire(uintptr_t page_va, vm_size_t npages);
IOMEM_API bool     iomem__platform_phys_copy(IOPhysicalAddress pa, void *buf, IOByteCount len, bool to_phys);
IOMEM_API IOReturn iomem__platform_ram_alloc(iomem__ram *ram, vm_size_t bytes, vm_size_t align,
                                             IOPhysicalAddress max_phys, bool contiguous);
IOMEM_API void     iomem__platform_ram_free(iomem__ram *ram);

IOMEM_INLINE void iomem__platform_log(const char *msg)   { iomem__baremetal_log(msg); }
IOMEM_INLINE void iomem__platform_panic(const char *msg) { iomem__baremetal_panic(msg); }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_BAREMETAL_H_INCLUDED */

/* ---- implementation (included again by iomem.h's implementation part) --- */
#if defined(IOMEM__BAREMETAL_IMPLEMENTATION) && !defined(IOMEM__BAREMETAL_IMPLEMENTATION_DONE)
#define IOMEM__BAREMETAL_IMPLEMENTATION_DONE 1

/* The platform description: set once at start-up, read-only afterwards. */
static iomem_baremetal_desc iomem__bm;

IOMEM_API IOReturn iomem_baremetal_init(const iomem_baremetal_desc *desc)
{
	vm_size_t page;
	if (desc == NULL || (desc->alloc == NULL) != (desc->free == NULL) ||
	    (desc->lock == NULL) != (desc->unlock == NULL))
		return kIOReturnBadArgument;
	page = desc->page_size ? desc->page_size : 4096;
	if (page < 256 || (page & (page - 1)) != 0)
		return kIOReturnBadArgument;
	iomem__bm = *desc;
	iomem__bm.page_size = page;
	return kIOReturnSuccess;
}

IOMEM_API void *iomem__baremetal_malloc(vm_size_t size)
{
	return iomem__bm.alloc ? iomem__bm.alloc(iomem__bm.user, size) : NULL;
}

IOMEM_API void iomem__baremetal_free(void *address)
{
	if (address != NULL && iomem__bm.free != NULL)
		iomem__bm.free(iomem__bm.user, address);
}

IOMEM_API vm_size_t iomem__baremetal_page_size(void)
{
	return iomem__bm.page_size ? iomem__bm.page_size : 4096;
}

/* All bare-metal memory is wired; "pageable" is a page-aligned heap block
 * (IOMallocAligned's header layout, so it frees without a size lookup). */
IOMEM_API void *iomem__baremetal_alloc_pages(vm_size_t bytes, bool zero)
{
	void *p = iomem__aligned_alloc_raw(bytes, iomem__baremetal_page_size());
	if (p != NULL && zero)
		iomem__memset(p, 0, bytes);
	return p;
}

IOMEM_API void iomem__baremetal_free_pages(void *address, vm_size_t bytes)
{
	iomem__aligned_free_raw(address, bytes, "IOFreePageable");
}

IOMEM_API void iomem__baremetal_lock(void)
{
	if (iomem__bm.lock != NULL)
		iomem__bm.lock(iomem__bm.user);
}

IOMEM_API void iomem__baremetal_unlock(void)
{
	if (iomem__bm.unlock != NULL)
		iomem__bm.unlock(iomem__bm.user);
}

IOMEM_API void iomem__baremetal_log(const char *msg)
{
	if (iomem__bm.log != NULL)
		iomem__bm.log(iomem__bm.user, msg);
}

IOMEM_API void iomem__baremetal_panic(const char *msg)
{
	if (iomem__bm.panic != NULL) {
		iomem__bm.panic(iomem__bm.user, msg);
		return;
	}
	for (;;) {
	}
}

IOMEM_API IOReturn iomem__platform_wire(uintptr_t page_va, vm_size_t npages, IOPhysicalAddress *phys)
{
	vm_size_t i, page = iomem__baremetal_page_size();
	for (i = 0; i < npages; i++)
		phys[i] = (IOPhysicalAddress)(page_va + i * page);
	return kIOReturnSuccess;
}

IOMEM_API void iomem__platform_unwire(uintptr_t page_va, vm_size_t npages)
{
	(void)page_va; (void)npages;
}

IOMEM_API bool iomem__platform_phys_copy(IOPhysicalAddress pa, void *buf, IOByteCount len, bool to_phys)
{
	void *v = (void *)(uintptr_t)pa;
	if ((IOPhysicalAddress)(uintptr_t)pa != pa)
		return false;                       /* not addressable on this core */
	if (!to_phys)
		iomem__memcpy(buf, v, (vm_size_t)len);
	else if (buf != NULL)
		iomem__memcpy(v, buf, (vm_size_t)len);
	else
		iomem__memset(v, 0, (vm_size_t)len);
	return true;
}

IOMEM_API IOReturn iomem__platform_ram_alloc(iomem__ram *ram, vm_size_t bytes, vm_size_t align,
                                             IOPhysicalAddress max_phys, bool contiguous)
{
	vm_size_t page = iomem__baremetal_page_size();
	if (align < page)
		align = page;
	bytes = (bytes + page - 1) & ~(page - 1);
	ram->fd = -1;
	ram->pinned = contiguous;
	ram->bytes = bytes;
	ram->address = iomem__aligned_alloc_raw(bytes, align);
	if (ram->address == NULL)
		return kIOReturnNoMemory;
	ram->phys = (IOPhysicalAddress)(uintptr_t)ram->address;
	if (contiguous && ram->phys + bytes - 1 > max_phys) {
		iomem__aligned_free_raw(ram->address, bytes, "IOBufferMemoryDescriptor");
		ram->address = NULL;
		return kIOReturnNoResources;
	}
	iomem__memset(ram->address, 0, bytes);
	return kIOReturnSuccess;
}

IOMEM_API void iomem__platform_ram_free(iomem__ram *ram)
{
	if (ram->address != NULL)
		iomem__aligned_free_raw(ram->address, ram->bytes, "IOBufferMemoryDescriptor");
	ram->address = NULL;
}

#if (defined(__GNUC__) || defined(__clang__)) && !defined(IOMEM_NO_WEAK_LIBC)
/* Byte loops through volatile pointers: the compiler must not turn them back
 * into calls to memset/memcpy (which would recurse). Weak, so a faster
 * definition of the firmware's wins at link time. */
__attribute__((weak)) void *memset(void *dst, int c, size_t n)
{
	volatile unsigned char *d = (volatile unsigned char *)dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

__attribute__((weak)) void *memcpy(void *dst, const void *src, size_t n)
{
	volatile unsigned char *d = (volatile unsigned char *)dst;
	const unsigned char *s = (const unsigned char *)src;
	while (n--)
		*d++ = *s++;
	return dst;
}
#endif

#endif /* IOMEM__BAREMETAL_IMPLEMENTATION */
