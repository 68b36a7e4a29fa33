/* SPDX-License-Identifier: MIT */
/*
 * backends/iomem_baremetal.h - iomem's bare-metal backend (freestanding).
 * Included by iomem.h when IOMEM_BACKEND_BAREMETAL is selected (automatic
 * when __STDC_HOSTED__ == 0); not on its own. Uses <stddef.h> <stdint.h>
 * <stdbool.h> only: no libc, no TLS, no 64-bit atomics, no floating point.
 *
 * The platform is described once at start-up; zero means default for every
 * field:
 *
 *     static uint64_t heap[64 * 1024 / 8];            // 8-byte aligned
 *     iomem_baremetal_init(&(iomem_baremetal_desc){
 *         .heap = { { heap, sizeof heap } },          // iomem's O(1) heap
 *         .lock = irq_save, .unlock = irq_restore,    // multi-core / IRQs
 *     });
 *
 * FILES
 *   backends/iomem_baremetal.h   this file: the description, the platform
 *                                contract, cache maintenance per architecture
 *   backends/iomem_heap.h        the O(1) heap (half-fit: one free list per
 *                                power of two, o1heap's policy) behind the
 *                                IOMalloc family and the bounce arena;
 *                                self-contained, included from here
 *
 * PLATFORM CONTRACT (DESIGN.md §3)       status in this backend
 *   allocation                            iomem's O(1) heap over desc.heap[]
 *                                         arenas (fit policy:
 *                                         desc.heap_exact_fit); or the
 *                                         alloc/free hooks; neither: the
 *                                         IOMalloc family returns NULL
 *   page-granular pageable allocation     page-aligned blocks of the same heap
 *                                         (all memory is wired); buffer RAM
 *                                         (IOBufferMemoryDescriptor) too
 *   page size                             desc.page_size (default 4096)
 *   locks                                 desc.lock/unlock (default none)
 *   log / panic                           desc.log/panic (default: drop / spin)
 *   copy / fill                           memcpy/memset, provided weakly here
 *   translation virt<->phys               desc.virt_to_phys/phys_to_virt,
 *                                         identity by default:
 *                                         iomem__platform_virt_to_phys/_phys_to_virt
 *   DMA-reachable window, bounce arena    desc.dma_base/dma_length and
 *                                         desc.bounce (its own O(1) heap,
 *                                         exact fit):
 *                                         iomem__platform_dma_reachable,
 *                                         iomem__platform_bounce_alloc/free
 *   cache maintenance                     desc.cache_* hooks, else per
 *                                         architecture (below):
 *                                         iomem__platform_cache_flush/clean/invalidate
 *   system IOMMU                          desc.iommu hook table (none by default;
 *                                         stored for IOMapper)
 *   physical access of exact width        volatile loads/stores (iomem_map.h)
 *
 * DEFAULT CACHE MAINTENANCE (when the matching desc.cache_* hook is NULL)
 *   Cortex-M7/M55/M85    SCB DCCIMVAC / DCCMVAC / DCIMVAC by address, 32-byte
 *                        lines, DSB+ISB; detected at iomem_baremetal_init from
 *                        CPUID (read it privileged)
 *   Cortex-M3/M4/M33     nothing to do (no data cache): a compiler barrier
 *   ARMv8-A (AArch64)    DC CIVAC / DC CVAC / DC IVAC per CTR_EL0.DminLine
 *                        line, then DSB SY
 *   RISC-V with Zicbom   cbo.flush / cbo.clean / cbo.inval (block size
 *   (-march=..._zicbom)  IOMEM_BAREMETAL_CBOM_BLOCK, default 64), FENCE
 *   RISC-V without       FENCE RW,RW only: a non-coherent SoC must give hooks
 *   x86                  CLFLUSH per 64-byte line, MFENCE
 *   anything else        a compiler barrier: give hooks
 *   invalidate never discards bytes outside [addr, addr+len): a partial line
 *   at either end is cleaned and invalidated instead.
 *   A hook may call iomem_baremetal_cache_default() to run this default and
 *   add to it (an outer L2 controller, counting). Users of the maintenance:
 *   IOFlushProcessorCache (flush), IOMemoryDescriptor_performOperation
 *   (kIOMemoryIncoherentIOFlush = flush, ...IOStore = clean) and through it
 *   IODMACommand kNonCoherent (prepare: store, last complete: flush).
 *
 * LOCKING
 *   lock/unlock bracket every heap operation, the debug layer's table, and
 *   every object lock (a kIOMemoryThreadSafe descriptor, a kLocking range
 *   allocator): there is one lock domain, and it NESTS - preparing a
 *   thread-safe descriptor holds its lock while the heap's is taken. So the
 *   hooks must be re-entrant on one core: for a single core with interrupt
 *   handlers that allocate, mask interrupts in lock and restore in unlock with
 *   a nesting depth (keep the saved state and the depth in *user, e.g. PRIMASK
 *   on Cortex-M or mstatus.MIE on RISC-V); for several cores add a spinlock
 *   with an owner and a depth. Without hooks nothing is locked: call iomem
 *   from one context only.
 */
#ifndef IOMEM_BAREMETAL_H_INCLUDED
#define IOMEM_BAREMETAL_H_INCLUDED

#ifndef IOMEM_H_INCLUDED
#  error "iomem: include iomem.h, not backends/iomem_baremetal.h"
#endif

#include "iomem_heap.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef IOMEM_MALLOC_ALIGN
/* What the heap, the alloc hook (or IOMEM_MALLOC) guarantee. */
#  define IOMEM_MALLOC_ALIGN ((vm_size_t)8)
#endif

/* Arenas iomem_baremetal_desc.heap can hold. */
#define IOMEM_BAREMETAL_MAX_ARENAS IOMEM_HEAP_MAX_ARENAS

#ifndef IOMEM_BAREMETAL_CBOM_BLOCK
#  define IOMEM_BAREMETAL_CBOM_BLOCK 64   /* RISC-V Zicbom cache-block size */
#endif

/** A memory region given to iomem: IOMEM_MALLOC_ALIGN-aligned, at least
 * IOMEM_HEAP_ARENA_MIN (64) bytes; size 0 = unused slot. */
typedef struct iomem_baremetal_arena {
	void     *base;
	vm_size_t size;
} iomem_baremetal_arena;

/** An IOMMU in front of the devices (used by IOMapper; stored for now). */
typedef struct iomem_baremetal_iommu {
	/* Map [phys, phys+length) for a device; *iova receives its address. */
	IOReturn (*map)(void *user, IOPhysicalAddress64 phys, IOPhysicalLength64 length,
	                IOOptionBits options, uint64_t *iova);
	IOReturn (*unmap)(void *user, uint64_t iova, IOPhysicalLength64 length);
	void *user;
} iomem_baremetal_iommu;

/** Start-up description of the platform; zero-initialise, set what you have. */
typedef struct iomem_baremetal_desc {
	vm_size_t page_size;                               /* 0: 4096; a power of two >= 256 */
	void *(*alloc)(void *user, vm_size_t size);        /* aligned to IOMEM_MALLOC_ALIGN */
	void  (*free)(void *user, void *address);
	void  (*lock)(void *user);                         /* e.g. mask IRQs / take a spinlock */
	void  (*unlock)(void *user);
	void  (*log)(void *user, const char *msg);
	void  (*panic)(void *user, const char *msg);       /* may return: the call then fails */
	void  *user;                                       /* passed to every hook */

	/* The IOMalloc heap: iomem's O(1) heap over these arenas (all zero:
	 * the alloc/free hooks if given, else no heap). Not with alloc/free. */
	iomem_baremetal_arena heap[IOMEM_BAREMETAL_MAX_ARENAS];
	/* The heap's fit policy (backends/iomem_heap.h, FIT POLICIES); needs
	 * heap[] arenas. Let b = the request plus the block header (8 bytes,
	 * 16 on 64-bit cores), rounded up to 8.
	 * false (default): power of two. A block takes b rounded up to a power
	 *   of two, so up to half of it is unused; in exchange the heap has a
	 *   proven bound: if the live blocks never hold more than M bytes (sum
	 *   of b) and n = largest / smallest block, an arena of
	 *   2M(1 + ceil(log2 n)) bytes never fails a request (Robson's bound,
	 *   as o1heap states it). Pick it when the heap is sized from that
	 *   bound (long-running or safety-critical firmware).
	 * true: exact fit. A block takes b: a 4 KiB IOMalloc takes 4 KiB + 8,
	 *   not 8 KiB. No proven bound on fragmentation: size the heap from a
	 *   measured peak (iomem_baremetal_heap_diagnostics, peak_allocated)
	 *   with margin. Pick it when many blocks are 2^k bytes or whole pages
	 *   (DMA buffers, IOBufferMemoryDescriptor RAM, IOMallocPageable),
	 *   which power of two would double.
	 * Either way an allocation succeeds whenever some free block holds b
	 * rounded up to a power of two (a page-aligned one - IOMallocPageable,
	 * buffer RAM - whenever one holds the block it takes + page + 8,
	 * rounded up; + 24 on 64-bit cores), and every call runs in the same
	 * O(1) time. */
	bool heap_exact_fit;

	/* Translation: both or neither; NULL = identity (phys == virt). */
	IOPhysicalAddress64 (*virt_to_phys)(void *user, const void *virt);
	void *(*phys_to_virt)(void *user, IOPhysicalAddress64 phys);  /* NULL if unmapped */

	/* What devices can reach: [dma_base, dma_base + dma_length); length 0 =
	 * everything. Bounce buffers come from @bounce, which must lie inside:
	 * its own heap, always exact fit. IODMACommand takes bounce pages 64
	 * at a time, page-aligned, and the heap promises such a block from a
	 * free block of 128 pages (G2); a smaller hole of at least 65 pages +
	 * 16 bytes (32 on 64-bit cores) serves it only when it heads its list
	 * (the heap's one look below). So: a page-aligned arena of 128 pages +
	 * 2 block headers (16 bytes; 32 on 64-bit cores) for the first chunk
	 * (4096-byte pages: 512 KiB + 16) and 65 pages more for each further
	 * chunk live at once; an arena only ever used for one chunk at a time
	 * may be 66 pages. */
	IOPhysicalAddress64 dma_base;
	IOPhysicalLength64  dma_length;
	iomem_baremetal_arena bounce;

	/* Data-cache maintenance of [addr, addr+len); NULL = the architecture's
	 * default (see DEFAULT CACHE MAINTENANCE). flush = clean + invalidate. */
	void (*cache_flush)(void *user, const void *addr, vm_size_t len);
	void (*cache_clean)(void *user, const void *addr, vm_size_t len);
	void (*cache_invalidate)(void *user, const void *addr, vm_size_t len);
	vm_size_t cache_line;                              /* 0: detected; else a power of two */

	const iomem_baremetal_iommu *iommu;                /* NULL: no IOMMU */
} iomem_baremetal_desc;

/**
 * iomem_baremetal_init - describe the platform; call once at start-up before
 * any other iomem call (not thread-safe: single core, before interrupts use
 * iomem). Calling it again is allowed only while iomem's heaps hold no block.
 * @desc: copied; the arenas become iomem's until the next successful init.
 *
 * Returns kIOReturnSuccess, or, with nothing changed:
 *   kIOReturnBadArgument  @desc NULL; alloc without free (or the reverse),
 *                         lock without unlock, virt_to_phys without
 *                         phys_to_virt (or the reverses); page_size or
 *                         cache_line not a power of two (page_size < 256);
 *                         an arena (heap[] or bounce) with a NULL or
 *                         misaligned base, smaller than IOMEM_HEAP_ARENA_MIN,
 *                         wrapping around, or overlapping another; heap
 *                         arenas together with alloc/free hooks;
 *                         heap_exact_fit without heap arenas; a DMA window
 *                         that wraps around; a bounce arena outside the DMA
 *                         window; an iommu table without map or unmap;
 *   kIOReturnBusy         the heap or the bounce arena still holds blocks
 *                         from the previous description.
 */
IOMEM_API IOReturn iomem_baremetal_init(const iomem_baremetal_desc *desc);

/**
 * iomem_baremetal_heap_diagnostics - the O(1) counters of iomem's heap
 * (capacity, allocated and peak bytes, live blocks, failed allocations,
 * refused frees). @out: filled in. Returns kIOReturnSuccess;
 * kIOReturnBadArgument for NULL; kIOReturnNotReady (out zeroed) when no heap
 * arena was given. Thread-safe (under the lock hooks).
 */
IOMEM_API IOReturn iomem_baremetal_heap_diagnostics(iomem_heap_diagnostics *out);

/**
 * iomem_baremetal_heap_check - the invariants checker: walks every block and
 * free list of iomem's heap (O(blocks), for tests and debugging).
 * @census: may be NULL; receives free/used bytes and blocks, the largest free
 * block and the largest request sure to succeed now.
 * Returns kIOReturnSuccess if every invariant holds, kIOReturnInternalError
 * if one does not (the heap is corrupted: something wrote outside its block),
 * kIOReturnNotReady without a heap. Thread-safe (under the lock hooks).
 */
IOMEM_API IOReturn iomem_baremetal_heap_check(iomem_heap_census *census);

IOMEM_API void     *iomem__baremetal_malloc(vm_size_t size);
IOMEM_API void      iomem__baremetal_free(void *address);
IOMEM_API vm_size_t iomem__baremetal_page_size(void);
IOMEM_API void     *iomem__baremetal_alloc_pages(vm_size_t bytes, bool zero);
IOMEM_API void      iomem__baremetal_free_pages(void *address, vm_size_t bytes);
IOMEM_API void      iomem__baremetal_lock(void);
IOMEM_API void      iomem__baremetal_unlock(void);
IOMEM_API void      iomem__baremetal_log(const char *msg);
IOMEM_API void      iomem__baremetal_panic(const char *msg);
IOMEM_API IOPhysicalAddress64 iomem__baremetal_virt_to_phys(const void *virt);
IOMEM_API void     *iomem__baremetal_phys_to_virt(IOPhysicalAddress64 phys);
IOMEM_API bool      iomem__baremetal_dma_reachable(IOPhysicalAddress64 phys, IOPhysicalLength64 length);
IOMEM_API void     *iomem__baremetal_bounce_alloc(vm_size_t size, vm_size_t alignment);
IOMEM_API void      iomem__baremetal_bounce_free(void *address);
/**
 * iomem_baremetal_cache_default - the architecture's default data-cache
 * maintenance of [@addr, @addr + @len) (DEFAULT CACHE MAINTENANCE above),
 * whatever cache hooks are set: for a cache hook that wraps it (the L1
 * default, then an outer L2 controller; or a hook that counts calls).
 * @op: IOMEM_BAREMETAL_CACHE_FLUSH (clean + invalidate), _CLEAN or
 * _INVALIDATE (any other value: flush). Partial lines at either end of an
 * invalidate are flushed instead (the neighbours' bytes survive). No
 * errors; @len 0 does nothing. Thread-safe (touches no iomem state).
 */
enum { IOMEM_BAREMETAL_CACHE_FLUSH = 0, IOMEM_BAREMETAL_CACHE_CLEAN = 1, IOMEM_BAREMETAL_CACHE_INVALIDATE = 2 };
IOMEM_API void iomem_baremetal_cache_default(unsigned op, const void *addr, vm_size_t len);

IOMEM_API void      iomem__baremetal_cache(unsigned op, const void *addr, vm_size_t len);
IOMEM_API vm_size_t iomem__baremetal_cache_line(void);
IOMEM_API const iomem_baremetal_iommu *iomem__baremetal_iommu(void);

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
 * Identity translation unless the hooks say otherwise, all memory wired;
 * buffer RAM is an aligned block of iomem's heap (else of the alloc hook);
 * a physical limit is checked against the block's address
 * (kIOReturnNoResources if above). */
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

/* Translation (the descriptor layer's physical segments): identity unless
 * the hooks were given. phys_to_virt returns NULL for an address with no
 * mapping (identity: one that does not fit a pointer). Thread-safe. */
IOMEM_INLINE IOPhysicalAddress64 iomem__platform_virt_to_phys(const void *virt)
{
	return iomem__baremetal_virt_to_phys(virt);
}
IOMEM_INLINE void *iomem__platform_phys_to_virt(IOPhysicalAddress64 phys)
{
	return iomem__baremetal_phys_to_virt(phys);
}

/* True if devices can reach all of [phys, phys+length) (the DMA window). */
IOMEM_INLINE bool iomem__platform_dma_reachable(IOPhysicalAddress64 phys, IOPhysicalLength64 length)
{
	return iomem__baremetal_dma_reachable(phys, length);
}

/* Bounce memory inside the DMA window (IODMACommand), from desc.bounce; NULL
 * when there is none or it is exhausted. */
IOMEM_INLINE void *iomem__platform_bounce_alloc(vm_size_t size, vm_size_t alignment)
{
	return iomem__baremetal_bounce_alloc(size, alignment);
}
IOMEM_INLINE void iomem__platform_bounce_free(void *address) { iomem__baremetal_bounce_free(address); }

/* Data-cache maintenance of [addr, addr+len) for IOFlushProcessorCache,
 * performOperation and non-coherent DMA: flush = clean + invalidate (before
 * and after a bidirectional transfer), clean = write back (before a device
 * reads memory), invalidate = discard (after a device wrote memory; partial
 * lines at the ends are cleaned too, so no neighbouring byte is lost). The
 * desc hooks, else the architecture's default. Thread-safe. */
enum { IOMEM__CACHE_FLUSH = 0, IOMEM__CACHE_CLEAN = 1, IOMEM__CACHE_INVALIDATE = 2 };
IOMEM_INLINE void iomem__platform_cache_flush(const void *addr, vm_size_t len)
{
	iomem__baremetal_cache(IOMEM__CACHE_FLUSH, addr, len);
}
IOMEM_INLINE void iomem__platform_cache_clean(const void *addr, vm_size_t len)
{
	iomem__baremetal_cache(IOMEM__CACHE_CLEAN, addr, len);
}
IOMEM_INLINE void iomem__platform_cache_invalidate(const void *addr, vm_size_t len)
{
	iomem__baremetal_cache(IOMEM__CACHE_INVALIDATE, addr, len);
}
/* The data-cache line the maintenance works in (0: no data cache known). */
IOMEM_INLINE vm_size_t iomem__platform_cache_line(void) { return iomem__baremetal_cache_line(); }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_BAREMETAL_H_INCLUDED */

/* ---- implementation (included again by iomem.h's implementation part) --- */
#if defined(IOMEM__BAREMETAL_IMPLEMENTATION) && !defined(IOMEM__BAREMETAL_IMPLEMENTATION_DONE)
#define IOMEM__BAREMETAL_IMPLEMENTATION_DONE 1

/* >>bm-heap: iomem's O(1) heap (backends/iomem_heap.h), compiled here. */
#define IOMEM__HEAP_IMPLEMENTATION 1
#include "iomem_heap.h"

/* The platform description: set once at start-up, read-only afterwards. */
static iomem_baremetal_desc iomem__bm;
static iomem__heap iomem__bm_heap;        /* the IOMalloc heap, if heap[] given */
static iomem__heap iomem__bm_bounce;      /* bounce buffers, if bounce given */
static bool iomem__bm_heap_on, iomem__bm_bounce_on;
static vm_size_t iomem__bm_dline;         /* detected data-cache line (Cortex-M) */

IOMEM__PRIVATE bool iomem__bm_arena_bad(const iomem_baremetal_arena *a)
{
	uintptr_t base = (uintptr_t)a->base;
	return a->size != 0 &&
	       (a->base == NULL || (base & (IOMEM_MALLOC_ALIGN - 1)) != 0 ||
	        a->size < IOMEM_HEAP_ARENA_MIN || a->size > UINTPTR_MAX - base);
}

IOMEM__PRIVATE bool iomem__bm_arenas_overlap(const iomem_baremetal_arena *a, const iomem_baremetal_arena *b)
{
	uintptr_t x = (uintptr_t)a->base, y = (uintptr_t)b->base;
	return a->size != 0 && b->size != 0 && x < y + b->size && y < x + a->size;
}

IOMEM__PRIVATE void iomem__bm_detect_cache(void)
{
#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
	/* SCB CPUID part number: Cortex-M7 0xC27, M55 0xD22, M85 0xD23 have a
	 * data cache with 32-byte lines; M4 (0xC24), M33 (0xD21) have none. */
	uint32_t part = (*(volatile uint32_t *)0xE000ED00u >> 4) & 0xFFFu;
	iomem__bm_dline = (part == 0xC27u || part == 0xD22u || part == 0xD23u) ? 32 : 0;
#else
	iomem__bm_dline = 0;
#endif
}

IOMEM_API IOReturn iomem_baremetal_init(const iomem_baremetal_desc *desc)
{
	vm_size_t page;
	unsigned i, j;
	bool arenas = false;
	if (desc == NULL || (desc->alloc == NULL) != (desc->free == NULL) ||
	    (desc->lock == NULL) != (desc->unlock == NULL) ||
	    (desc->virt_to_phys == NULL) != (desc->phys_to_virt == NULL))
		return kIOReturnBadArgument;
	page = desc->page_size ? desc->page_size : 4096;
	if (page < 256 || (page & (page - 1)) != 0 || (desc->cache_line & (desc->cache_line - 1)) != 0)
		return kIOReturnBadArgument;
	for (i = 0; i < IOMEM_BAREMETAL_MAX_ARENAS; i++) {
		if (iomem__bm_arena_bad(&desc->heap[i]) ||
		    iomem__bm_arenas_overlap(&desc->heap[i], &desc->bounce))
			return kIOReturnBadArgument;
		for (j = 0; j < i; j++)
			if (iomem__bm_arenas_overlap(&desc->heap[i], &desc->heap[j]))
				return kIOReturnBadArgument;
		arenas |= desc->heap[i].size != 0;
	}
	if ((arenas && desc->alloc != NULL) || (desc->heap_exact_fit && !arenas) ||
	    iomem__bm_arena_bad(&desc->bounce))
		return kIOReturnBadArgument;
	if (desc->dma_length != 0 && desc->dma_length - 1 > UINT64_MAX - desc->dma_base)
		return kIOReturnBadArgument;
	if (desc->bounce.size != 0 && desc->dma_length != 0) {
		const char *b = (const char *)desc->bounce.base;
		IOPhysicalAddress64 lo, hi, last = desc->dma_base + (desc->dma_length - 1);
		lo = desc->virt_to_phys ? desc->virt_to_phys(desc->user, b)
		                        : (IOPhysicalAddress64)(uintptr_t)b;
		hi = desc->virt_to_phys ? desc->virt_to_phys(desc->user, b + desc->bounce.size - 1)
		                        : (IOPhysicalAddress64)(uintptr_t)(b + desc->bounce.size - 1);
		if (lo < desc->dma_base || hi > last || hi < lo)
			return kIOReturnBadArgument;
	}
	if (desc->iommu != NULL && (desc->iommu->map == NULL || desc->iommu->unmap == NULL))
		return kIOReturnBadArgument;
	if ((iomem__bm_heap_on && iomem__bm_heap.diag.used_blocks != 0) ||
	    (iomem__bm_bounce_on && iomem__bm_bounce.diag.used_blocks != 0))
		return kIOReturnBusy;

	iomem__bm = *desc;
	iomem__bm.page_size = page;
	iomem__heap_init(&iomem__bm_heap);
	iomem__bm_heap.exact_fit = desc->heap_exact_fit;
	for (i = 0; i < IOMEM_BAREMETAL_MAX_ARENAS; i++)
		if (desc->heap[i].size != 0)
			(void)iomem__heap_add_arena(&iomem__bm_heap, desc->heap[i].base, desc->heap[i].size);
	iomem__bm_heap_on = arenas;
	/* Bounce buffers are always exact fit: they are DMA-sized (whole pages,
	 * IODMACommand takes them 64 pages at a time) and short-lived (one
	 * prepare/complete), so rounding to a power of two would double a
	 * dedicated, usually small arena for no gain - the bound the power of
	 * two buys is for long-lived mixed-size workloads, not a pool of large
	 * page runs that all go back soon. */
	iomem__heap_init(&iomem__bm_bounce);
	iomem__bm_bounce.exact_fit = true;
	if (desc->bounce.size != 0)
		(void)iomem__heap_add_arena(&iomem__bm_bounce, desc->bounce.base, desc->bounce.size);
	iomem__bm_bounce_on = desc->bounce.size != 0;
	iomem__bm_detect_cache();
	return kIOReturnSuccess;
}

IOMEM_API IOReturn iomem_baremetal_heap_diagnostics(iomem_heap_diagnostics *out)
{
	if (out == NULL)
		return kIOReturnBadArgument;
	if (!iomem__bm_heap_on) {
		iomem__memset(out, 0, sizeof *out);
		return kIOReturnNotReady;
	}
	iomem__baremetal_lock();
	*out = iomem__bm_heap.diag;
	iomem__baremetal_unlock();
	return kIOReturnSuccess;
}

IOMEM_API IOReturn iomem_baremetal_heap_check(iomem_heap_census *census)
{
	bool ok;
	if (!iomem__bm_heap_on)
		return kIOReturnNotReady;
	iomem__baremetal_lock();
	ok = iomem__heap_check(&iomem__bm_heap, census);
	iomem__baremetal_unlock();
	return ok ? kIOReturnSuccess : kIOReturnInternalError;
}

IOMEM_API void *iomem__baremetal_malloc(vm_size_t size)
{
	void *p;
	if (iomem__bm_heap_on) {
		iomem__baremetal_lock();
		p = iomem__heap_alloc(&iomem__bm_heap, size);
		iomem__baremetal_unlock();
		return p;
	}
	return iomem__bm.alloc ? iomem__bm.alloc(iomem__bm.user, size) : NULL;
}

IOMEM_API void iomem__baremetal_free(void *address)
{
	bool ok;
	if (address == NULL)
		return;
	if (iomem__bm_heap_on) {
		iomem__baremetal_lock();
		ok = iomem__heap_free(&iomem__bm_heap, address);
		iomem__baremetal_unlock();
		if (IOMEM_UNLIKELY(!ok))
			iomem__report("iomem heap: free(%p): not a live block of the heap (foreign "
			              "pointer, double free or overwritten header); nothing freed", address);
		return;
	}
	if (iomem__bm.free != NULL)
		iomem__bm.free(iomem__bm.user, address);
}

IOMEM_API vm_size_t iomem__baremetal_page_size(void)
{
	return iomem__bm.page_size ? iomem__bm.page_size : 4096;
}

/* Aligned memory for pageable pages and buffer RAM: with iomem's heap an
 * aligned heap block (the front gap goes back to the heap, so a page takes
 * its policy's block - 8 KiB under power of two, 4 KiB + 8 exact - instead
 * of an IOMalloc of page + alignment slack rounded up again); over the
 * alloc hooks IOMallocAligned's header layout (@who names the call in its
 * reports). */
IOMEM__PRIVATE void *iomem__bm_aligned_get(vm_size_t bytes, vm_size_t align)
{
	void *p;
	if (!iomem__bm_heap_on)
		return iomem__aligned_alloc_raw(bytes, align);
	iomem__baremetal_lock();
	p = iomem__heap_alloc_aligned(&iomem__bm_heap, bytes, align);
	iomem__baremetal_unlock();
	return p;
}

IOMEM__PRIVATE void iomem__bm_aligned_put(void *address, vm_size_t bytes, const char *who)
{
	if (iomem__bm_heap_on)
		iomem__baremetal_free(address);
	else
		iomem__aligned_free_raw(address, bytes, who);
}

/* All bare-metal memory is wired; "pageable" is a page-aligned block. */
IOMEM_API void *iomem__baremetal_alloc_pages(vm_size_t bytes, bool zero)
{
	void *p = iomem__bm_aligned_get(bytes, iomem__baremetal_page_size());
	if (p != NULL && zero)
		iomem__memset(p, 0, bytes);
	return p;
}

IOMEM_API void iomem__baremetal_free_pages(void *address, vm_size_t bytes)
{
	iomem__bm_aligned_put(address, bytes, "IOFreePageable");
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

/* >>bm-translate: translation, DMA window, bounce arena, IOMMU */

IOMEM_API IOPhysicalAddress64 iomem__baremetal_virt_to_phys(const void *virt)
{
	if (iomem__bm.virt_to_phys != NULL)
		return iomem__bm.virt_to_phys(iomem__bm.user, virt);
	return (IOPhysicalAddress64)(uintptr_t)virt;
}

IOMEM_API void *iomem__baremetal_phys_to_virt(IOPhysicalAddress64 phys)
{
	if (iomem__bm.phys_to_virt != NULL)
		return iomem__bm.phys_to_virt(iomem__bm.user, phys);
	if (phys > (IOPhysicalAddress64)UINTPTR_MAX)
		return NULL;
	return (void *)(uintptr_t)phys;
}

IOMEM_API bool iomem__baremetal_dma_reachable(IOPhysicalAddress64 phys, IOPhysicalLength64 length)
{
	IOPhysicalAddress64 last;
	if (length == 0)
		return true;
	if (length - 1 > UINT64_MAX - phys)
		return false;
	if (iomem__bm.dma_length == 0)
		return true;
	last = phys + (length - 1);
	return phys >= iomem__bm.dma_base &&
	       last - iomem__bm.dma_base <= iomem__bm.dma_length - 1;
}

IOMEM_API void *iomem__baremetal_bounce_alloc(vm_size_t size, vm_size_t alignment)
{
	void *p;
	if (!iomem__bm_bounce_on)
		return NULL;
	iomem__baremetal_lock();
	p = iomem__heap_alloc_aligned(&iomem__bm_bounce, size, alignment);
	iomem__baremetal_unlock();
	return p;
}

IOMEM_API void iomem__baremetal_bounce_free(void *address)
{
	bool ok;
	if (address == NULL || !iomem__bm_bounce_on)
		return;
	iomem__baremetal_lock();
	ok = iomem__heap_free(&iomem__bm_bounce, address);
	iomem__baremetal_unlock();
	if (IOMEM_UNLIKELY(!ok))
		iomem__report("iomem bounce arena: free(%p): not a live bounce block; nothing freed", address);
}

IOMEM_API const iomem_baremetal_iommu *iomem__baremetal_iommu(void)
{
	return iomem__bm.iommu;
}

/* >>bm-cache: data-cache maintenance, hooks or per-architecture defaults */

IOMEM_API vm_size_t iomem__baremetal_cache_line(void)
{
	if (iomem__bm.cache_line != 0)
		return iomem__bm.cache_line;
#if defined(__aarch64__)
	{
		uint64_t ctr;
		__asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
		return (vm_size_t)4 << ((ctr >> 16) & 0xFu);
	}
#elif defined(__riscv) && defined(__riscv_zicbom)
	return IOMEM_BAREMETAL_CBOM_BLOCK;
#elif defined(__x86_64__) || defined(__i386__)
	return 64;
#else
	return iomem__bm_dline;
#endif
}

#if (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__aarch64__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
     defined(__ARM_ARCH_8_1M_MAIN__) || (defined(__riscv) && defined(__riscv_zicbom)) || \
     defined(__x86_64__) || defined(__i386__))
#  define IOMEM__BM_CACHE_OPS 1
/* One line at @p: op, with INVALIDATE of a partial line turned into FLUSH. */
IOMEM__PRIVATE void iomem__bm_cache_line_op(unsigned op, uintptr_t p)
{
#  if defined(__aarch64__)
	if (op == IOMEM__CACHE_CLEAN)
		__asm__ volatile("dc cvac, %0" : : "r"(p) : "memory");
	else if (op == IOMEM__CACHE_INVALIDATE)
		__asm__ volatile("dc ivac, %0" : : "r"(p) : "memory");
	else
		__asm__ volatile("dc civac, %0" : : "r"(p) : "memory");
#  elif defined(__riscv)
	if (op == IOMEM__CACHE_CLEAN)
		__asm__ volatile("cbo.clean (%0)" : : "r"(p) : "memory");
	else if (op == IOMEM__CACHE_INVALIDATE)
		__asm__ volatile("cbo.inval (%0)" : : "r"(p) : "memory");
	else
		__asm__ volatile("cbo.flush (%0)" : : "r"(p) : "memory");
#  elif defined(__x86_64__) || defined(__i386__)
	(void)op;   /* clflush writes back and invalidates: right for all three */
	__asm__ volatile("clflush (%0)" : : "r"(p) : "memory");
#  else  /* ARMv7-M / ARMv8-M SCB: DCCMVAC, DCIMVAC, DCCIMVAC */
	uintptr_t reg = op == IOMEM__CACHE_CLEAN ? 0xE000EF68u
	              : op == IOMEM__CACHE_INVALIDATE ? 0xE000EF5Cu : 0xE000EF70u;
	*(volatile uint32_t *)reg = (uint32_t)p;
#  endif
}

IOMEM__PRIVATE void iomem__bm_barrier(void)
{
#  if defined(__aarch64__)
	__asm__ volatile("dsb sy" : : : "memory");
#  elif defined(__riscv)
	__asm__ volatile("fence rw, rw" : : : "memory");
#  elif defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("mfence" : : : "memory");
#  else
	__asm__ volatile("dsb\n\tisb" : : : "memory");
#  endif
}
#endif

IOMEM_API void iomem__baremetal_cache(unsigned op, const void *addr, vm_size_t len)
{
	void (*hook)(void *, const void *, vm_size_t) =
		op == IOMEM__CACHE_CLEAN ? iomem__bm.cache_clean :
		op == IOMEM__CACHE_INVALIDATE ? iomem__bm.cache_invalidate : iomem__bm.cache_flush;
	if (len == 0)
		return;
	if (hook != NULL) {
		hook(iomem__bm.user, addr, len);
		return;
	}
	iomem_baremetal_cache_default(op, addr, len);
}

IOMEM_API void iomem_baremetal_cache_default(unsigned op, const void *addr, vm_size_t len)
{
	if (op > IOMEM__CACHE_INVALIDATE)
		op = IOMEM__CACHE_FLUSH;
	if (len == 0)
		return;
#if defined(IOMEM__BM_CACHE_OPS)
	{
		uintptr_t a = (uintptr_t)addr, end, p;
		vm_size_t line = iomem__baremetal_cache_line();
		if (line == 0) {                        /* no data cache (Cortex-M4/M33) */
			__asm__ volatile("" : : : "memory");
			return;
		}
		end = len > UINTPTR_MAX - a ? UINTPTR_MAX : a + len;
		iomem__bm_barrier();                    /* earlier stores before the clean */
		for (p = a & ~(uintptr_t)(line - 1);; p += line) {
			unsigned o = op;
			if (o == IOMEM__CACHE_INVALIDATE && (p < a || end - p < line))
				o = IOMEM__CACHE_FLUSH;         /* keep the neighbours' bytes */
			iomem__bm_cache_line_op(o, p);
			if (end - p <= line)
				break;
		}
		iomem__bm_barrier();
	}
#elif defined(__riscv) && (defined(__GNUC__) || defined(__clang__))
	(void)addr;
	__asm__ volatile("fence rw, rw" : : : "memory");   /* no cache ops without Zicbom */
#elif defined(__GNUC__) || defined(__clang__)
	(void)addr;
	__asm__ volatile("" : : : "memory");
#else
	(void)addr;
#endif
}

/* >>bm-desc: the descriptor layer's contract (wiring, physical copy, buffer RAM) */

IOMEM_API IOReturn iomem__platform_wire(uintptr_t page_va, vm_size_t npages, IOPhysicalAddress *phys)
{
	vm_size_t i, page = iomem__baremetal_page_size();
	for (i = 0; i < npages; i++)          /* identity unless the translation hook says otherwise */
		phys[i] = iomem__baremetal_virt_to_phys((const void *)(page_va + i * page));
	return kIOReturnSuccess;
}

IOMEM_API void iomem__platform_unwire(uintptr_t page_va, vm_size_t npages)
{
	(void)page_va; (void)npages;
}

/* Page by page: phys_to_virt maps an address, not a run, so every page of
 * the segment is translated on its own (a run may leave the mapping, or on
 * a 32-bit core cross 4 GiB). All or nothing: every page is checked first. */
IOMEM_API bool iomem__platform_phys_copy(IOPhysicalAddress pa, void *buf, IOByteCount len, bool to_phys)
{
	IOPhysicalAddress64 page = iomem__baremetal_page_size(), p, end = pa + len;   /* no wrap: ranges are checked */
	unsigned char *b = (unsigned char *)buf;
	for (p = pa; p < end; ) {
		if (iomem__baremetal_phys_to_virt(p) == NULL)
			return false;               /* not addressable on this core */
		if ((p | (page - 1)) == ~(IOPhysicalAddress64)0)
			break;                      /* the last page of the address space */
		p = (p | (page - 1)) + 1;
	}
	for (p = pa; p < end; ) {
		vm_size_t n = (vm_size_t)((end - p < page - (p & (page - 1))) ? end - p : page - (p & (page - 1)));
		void *v = iomem__baremetal_phys_to_virt(p);
		if (!to_phys)
			iomem__memcpy(b, v, n);
		else if (b != NULL)
			iomem__memcpy(v, b, n);
		else
			iomem__memset(v, 0, n);
		if (b != NULL)
			b += n;
		p += n;
	}
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
	ram->address = iomem__bm_aligned_get(bytes, align);
	if (ram->address == NULL)
		return kIOReturnNoMemory;
	ram->phys = iomem__baremetal_virt_to_phys(ram->address);
	if (contiguous && ram->phys + bytes - 1 > max_phys) {
		iomem__bm_aligned_put(ram->address, bytes, "IOBufferMemoryDescriptor");
		ram->address = NULL;
		return kIOReturnNoResources;
	}
	iomem__memset(ram->address, 0, bytes);
	return kIOReturnSuccess;
}

IOMEM_API void iomem__platform_ram_free(iomem__ram *ram)
{
	if (ram->address != NULL)
		iomem__bm_aligned_put(ram->address, ram->bytes, "IOBufferMemoryDescriptor");
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
