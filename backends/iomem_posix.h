/* SPDX-License-Identifier: MIT */
/*
 * backends/iomem_posix.h - iomem's POSIX user-space backend.
 * Included by iomem.h when IOMEM_BACKEND_POSIX is selected; not on its own.
 *
 * PLATFORM CONTRACT (DESIGN.md §3)       status in this backend
 *   allocation (malloc/calloc/free)       here: the C library's allocator
 *   page-granular pageable allocation     here: mmap / munmap
 *   page size                             here: sysconf(_SC_PAGESIZE)
 *   locks                                 here: pthread mutexes
 *   log / panic                           here: stderr / abort()
 *   --- added by the issues that follow ---
 *   pseudo-physical memory                a software machine: memfd-backed RAM
 *                                         whose wired pages get frames by a
 *                                         run-time layout policy (identity,
 *                                         contiguous, scattered, runs, high)
 *   translation virt<->phys, wiring       through that machine's frame map
 *   physical access of exact width        through the reverse (frame->page) map
 *   cache maintenance                     no-op (coherent host)
 *   mapping pages at a new address        mmap of the same memfd offsets
 *   memory below a physical limit         frames chosen under the limit
 *   system IOMMU                          a simulated one (iomem_map.h)
 */
#ifndef IOMEM_POSIX_H_INCLUDED
#define IOMEM_POSIX_H_INCLUDED

#ifndef IOMEM_H_INCLUDED
#  error "iomem: include iomem.h, not backends/iomem_posix.h"
#endif

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>

#ifndef IOMEM_MALLOC_ALIGN
#  if defined(IOMEM_MALLOC)
#    define IOMEM_MALLOC_ALIGN ((vm_size_t)sizeof(void *))
#  else
/* glibc and musl guarantee 2 * sizeof(size_t) (16 on LP64). */
#    define IOMEM_MALLOC_ALIGN ((vm_size_t)(2 * sizeof(size_t)))
#  endif
#endif

IOMEM_FORCEINLINE void *iomem__platform_malloc(vm_size_t size)
{
#ifdef IOMEM_MALLOC
	return IOMEM_MALLOC(size);
#else
	return malloc(size);
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
	return calloc(1, size);
#endif
}

IOMEM_FORCEINLINE void iomem__platform_free(void *address)
{
#ifdef IOMEM_FREE
	if (address != NULL)
		IOMEM_FREE(address);
#else
	free(address);
#endif
}

/* The software machine's page size (0 = the host's); see
 * iomem_posix_set_page_size(). Defined in the implementation part. */
#ifdef __cplusplus
extern "C" {
#endif
IOMEM_API vm_size_t iomem__posix_page_size;
#ifdef __cplusplus
}
#endif

IOMEM_INLINE vm_size_t iomem__posix_host_page_size(void)
{
	/* cached: the page size is asked on every prepare and copy, and
	 * sysconf is a call through a switch; racing first calls store the
	 * same value (relaxed atomics keep that race defined) */
	static vm_size_t cached;
	vm_size_t p = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	if (IOMEM_UNLIKELY(p == 0)) {
		p = (vm_size_t)sysconf(_SC_PAGESIZE);
		__atomic_store_n(&cached, p, __ATOMIC_RELAXED);
	}
	return p;
}

/* The machine's page size: the host's unless iomem_posix_set_page_size()
 * chose a larger power of two (e.g. 16 KiB on a 4 KiB host). */
IOMEM_INLINE vm_size_t iomem__platform_page_size(void)
{
	vm_size_t p = iomem__posix_page_size;
	return p ? p : iomem__posix_host_page_size();
}

IOMEM_INLINE void *iomem__posix_mmap_private(vm_size_t bytes, int prot)
{
	void *p;
#if defined(MAP_ANONYMOUS)
	p = mmap(NULL, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#else
	int fd = open("/dev/zero", O_RDWR);
	if (fd < 0)
		return NULL;
	p = mmap(NULL, bytes, prot, MAP_PRIVATE, fd, 0);
	close(fd);
#endif
	return p == MAP_FAILED ? NULL : p;
}

/* Anonymous pages are zero-filled by the kernel, so @zero costs nothing.
 * Under a strict -std=c99 glibc hides MAP_ANONYMOUS; /dev/zero is the POSIX
 * way to get the same private zero pages. When the machine page is larger
 * than the host's, the block is over-mapped and trimmed to machine-page
 * alignment. */
IOMEM_INLINE void *iomem__platform_alloc_pages(vm_size_t bytes, bool zero)
{
	vm_size_t page = iomem__platform_page_size(), host = iomem__posix_host_page_size();
	uintptr_t p, a;
	(void)zero;
	if (page <= host)
		return iomem__posix_mmap_private(bytes, PROT_READ | PROT_WRITE);
	p = (uintptr_t)iomem__posix_mmap_private(bytes + page - host, PROT_READ | PROT_WRITE);
	if (p == 0)
		return NULL;
	a = (p + page - 1) & ~(uintptr_t)(page - 1);
	if (a != p)
		munmap((void *)p, a - p);
	if (a + bytes != p + bytes + page - host)
		munmap((void *)(a + bytes), (p + bytes + page - host) - (a + bytes));
	return (void *)a;
}

IOMEM_INLINE void iomem__platform_free_pages(void *address, vm_size_t bytes)
{
	munmap(address, bytes);
}

typedef pthread_mutex_t iomem__mutex;
#define IOMEM__MUTEX_INITIALIZER(name) PTHREAD_MUTEX_INITIALIZER

IOMEM_INLINE bool iomem__mutex_init(iomem__mutex *m)    { return pthread_mutex_init(m, NULL) == 0; }
IOMEM_INLINE void iomem__mutex_destroy(iomem__mutex *m) { pthread_mutex_destroy(m); }
IOMEM_INLINE void iomem__mutex_lock(iomem__mutex *m)    { pthread_mutex_lock(m); }
IOMEM_INLINE void iomem__mutex_unlock(iomem__mutex *m)  { pthread_mutex_unlock(m); }

IOMEM_INLINE void iomem__platform_log(const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

IOMEM_INLINE void iomem__platform_panic(const char *msg)
{
	fprintf(stderr, "iomem: %s\n", msg);
	fflush(stderr);
	abort();
}

IOMEM_FORCEINLINE void *iomem__memset(void *dst, int c, vm_size_t n)       { return memset(dst, c, n); }
IOMEM_FORCEINLINE void *iomem__memcpy(void *dst, const void *src, vm_size_t n) { return memcpy(dst, src, n); }

/* ---- the software machine (descriptor layer's platform contract) -------- *
 *
 * User space has no physical addresses, so this backend models a machine:
 *   - RAM for buffer descriptors is memfd-backed (one memfd per buffer, so
 *     IOMemoryMap can alias the same pages with mmap; the raw system call
 *     when glibc hides memfd_create's declaration); under a strict
 *     -std=c99/c11, or off Linux, it falls back to private /dev/zero pages
 *     (no aliasing possible);
 *   - any page of the process that is wired (prepare) gets a pseudo-physical
 *     frame chosen by the current layout policy, kept until its last unwire;
 *     a page wired twice keeps its frame (the wire count is per page);
 *   - a frame->page reverse map lets physical reads and writes (readBytes,
 *     writeBytes, later IOMappedRead/Write and the DMA engine) reach memory.
 * Frame pools: the low pool [1 MiB, 2 GiB) serves physically restricted or
 * contiguous buffers (inTaskWithPhysicalMask, kIOMemoryPhysicallyContiguous),
 * the general pool starts at 2 GiB (contiguous/scattered/runs policies), the
 * high pool at 1 TiB; IDENTITY uses the virtual page number. Pools restart
 * from their base when nothing is wired any more (the low pool when no low
 * frame is live), so long loops do not exhaust them.
 * One process-wide machine, protected by one lock; every call is thread-safe.
 */

#ifdef __cplusplus
extern "C" {
#endif

/** Frame layout policies of the software machine. */
typedef enum iomem_posix_layout {
	IOMEM_POSIX_LAYOUT_IDENTITY = 0,  /* physical address == virtual address */
	IOMEM_POSIX_LAYOUT_CONTIGUOUS,    /* pages wired together get consecutive frames */
	IOMEM_POSIX_LAYOUT_SCATTERED,     /* no two pages wired together are adjacent */
	IOMEM_POSIX_LAYOUT_RUNS,          /* runs of contiguous frames, mean length run_mean */
	IOMEM_POSIX_LAYOUT_HIGH,          /* contiguous frames, all above 4 GiB */
	IOMEM_POSIX_LAYOUT_PAGEMAP,       /* real frames from /proc/self/pagemap */
	IOMEM_POSIX_LAYOUT_COUNT
} iomem_posix_layout;

/* PAGEMAP: the real physical frame of each page, read from
 * /proc/self/pagemap when it is wired (the page is touched by a read first;
 * it is not locked in memory, so the frame is only a snapshot). Needs
 * CAP_SYS_ADMIN: without it the kernel hides frame numbers and prepare
 * returns kIOReturnNotPrivileged. Needs the machine page to be the host's
 * (else kIOReturnUnsupported). Two pages on one frame (e.g. untouched
 * anonymous memory on the shared zero page) -> kIOReturnCannotWire.
 * Physically restricted buffers still come from the low pool. */

/** A layout: zero-initialised is IDENTITY (run_mean 0 = 8, seed 0 = fixed). */
typedef struct iomem_posix_phys_layout {
	iomem_posix_layout policy;
	uint32_t run_mean;      /* RUNS: mean run length in pages, >= 1 */
	uint64_t seed;          /* RUNS: PRNG seed for the run lengths */
} iomem_posix_phys_layout;

/** Counters of the software machine (iomem_posix_machine_stats). */
typedef struct iomem_posix_machine_stats_t {
	uint64_t wired_pages;       /* pages holding a frame now */
	uint64_t low_pages;         /* of which from the low (restricted) pool */
	uint64_t frames_assigned;   /* total frame assignments so far */
} iomem_posix_machine_stats_t;

/**
 * iomem_posix_set_phys_layout - choose how newly wired pages get frames.
 * @layout: copied; NULL or an unknown policy -> kIOReturnBadArgument.
 * Pages already wired keep their frames. Thread-safe.
 */
IOMEM_API IOReturn iomem_posix_set_phys_layout(const iomem_posix_phys_layout *layout);

/** iomem_posix_get_phys_layout - the current layout (@out NULL: no-op). */
IOMEM_API void iomem_posix_get_phys_layout(iomem_posix_phys_layout *out);

/** iomem_posix_layout_name - "identity", "contiguous", ...; never NULL. */
IOMEM_API const char *iomem_posix_layout_name(iomem_posix_layout policy);

/**
 * iomem_posix_set_page_size - the machine's page size (what
 * iomem__platform_page_size() and every descriptor rule use).
 * @page_size: 0 = the host's; else a power of two >= the host page size
 * and <= 1 MiB, else kIOReturnBadArgument. kIOReturnBusy while any page is
 * wired. Call it at start-up, before allocating pageable memory or
 * descriptors: blocks allocated under another page size must not be freed
 * after the change.
 */
IOMEM_API IOReturn iomem_posix_set_page_size(vm_size_t page_size);

/** iomem_posix_machine_stats - snapshot of the counters (@out NULL: no-op). */
IOMEM_API void iomem_posix_machine_stats(iomem_posix_machine_stats_t *out);

/**
 * iomem_posix_virt_to_phys - the pseudo-physical address of a wired byte.
 * @address: any byte of the process. Returns 0 when its page is not wired
 * (frames exist only while wired). Thread-safe.
 */
IOMEM_API IOPhysicalAddress iomem_posix_virt_to_phys(const void *address);

/**
 * iomem_posix_phys_to_virt - the host address of a pseudo-physical byte,
 * or NULL when no wired page holds that frame. Thread-safe; the result is
 * valid while the page stays wired.
 */
IOMEM_API void *iomem_posix_phys_to_virt(IOPhysicalAddress pa);

/* -- the contract the descriptor layer uses (same names in every backend) - */

IOMEM_API IOReturn iomem__posix_wire(uintptr_t page_va, vm_size_t npages, IOPhysicalAddress *phys);
IOMEM_API void     iomem__posix_unwire(uintptr_t page_va, vm_size_t npages);
IOMEM_API bool     iomem__posix_phys_copy(IOPhysicalAddress pa, void *buf, IOByteCount len, bool to_phys);
/* For a translation cache (the software DMA engine's, iomem_dma.h):
 * iomem__posix_phys_generation is a counter bumped whenever a frame stops
 * holding its page (its last unwire), so a frame -> host translation read
 * at generation g stays right while the counter still reads g (lock-free,
 * acquire); iomem__posix_phys_frame_host gives the host address of the
 * page in frame @frame (machine pages) and the generation it was read at,
 * or NULL when no wired page holds that frame (one lock). */
IOMEM_API uint64_t iomem__posix_phys_generation(void);
IOMEM_API void    *iomem__posix_phys_frame_host(uint64_t frame, uint64_t *gen);

/* Memory a buffer descriptor owns. */
typedef struct iomem__ram {
	void             *address;
	vm_size_t         bytes;     /* whole pages */
	IOPhysicalAddress phys;      /* first byte, when contiguous */
	int               fd;        /* the memfd, or -1 */
	bool              pinned;    /* frames assigned at allocation */
} iomem__ram;

IOMEM_API IOReturn iomem__posix_ram_alloc(iomem__ram *ram, vm_size_t bytes, vm_size_t align,
                                          IOPhysicalAddress max_phys, bool contiguous);
IOMEM_API void     iomem__posix_ram_free(iomem__ram *ram);
/* The memfd behind the process address @va when it lies in buffer RAM
 * (iomem_map.h aliases it with a second mmap): returns the fd (owned by the
 * RAM, valid while the RAM lives), the file offset of @va in *@fd_offset
 * and the bytes of that RAM from @va on in *@avail; -1 when @va is not in
 * memfd-backed RAM. Thread-safe. */
IOMEM_API int      iomem__posix_ram_lookup(uintptr_t va, uint64_t *fd_offset, vm_size_t *avail);

/**
 * iomem__platform_wire - wire @npages pages starting at the page-aligned
 * kernel_task address @page_va and store each page's physical address in
 * @phys[i]. Returns kIOReturnSuccess, or kIOReturnNoResources (nothing
 * stays wired). Each successful call is undone by one iomem__platform_unwire.
 */
IOMEM_INLINE IOReturn iomem__platform_wire(uintptr_t page_va, vm_size_t npages, IOPhysicalAddress *phys)
{
	return iomem__posix_wire(page_va, npages, phys);
}
IOMEM_INLINE void iomem__platform_unwire(uintptr_t page_va, vm_size_t npages)
{
	iomem__posix_unwire(page_va, npages);
}
/* Copies @len bytes between @buf and physical memory at @pa; false (after a
 * partial copy) when a frame is not RAM the machine knows. */
IOMEM_INLINE bool iomem__platform_phys_copy(IOPhysicalAddress pa, void *buf, IOByteCount len, bool to_phys)
{
	return iomem__posix_phys_copy(pa, buf, len, to_phys);
}
/* Zero-filled page-granular RAM of at least @bytes, virtually aligned to
 * @align (>= page); with @contiguous its frames are assigned now, physically
 * contiguous, aligned to @align and ending at or below @max_phys
 * (kIOReturnNoResources when that cannot be met). */
IOMEM_INLINE IOReturn iomem__platform_ram_alloc(iomem__ram *ram, vm_size_t bytes, vm_size_t align,
                                                IOPhysicalAddress max_phys, bool contiguous)
{
	return iomem__posix_ram_alloc(ram, bytes, align, max_phys, contiguous);
}
IOMEM_INLINE void iomem__platform_ram_free(iomem__ram *ram)
{
	iomem__posix_ram_free(ram);
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_POSIX_H_INCLUDED */

/* ---- implementation (included by iomem.h's implementation part) -------- */
#if defined(IOMEM__POSIX_IMPLEMENTATION) && !defined(IOMEM__POSIX_IMPLEMENTATION_DONE)
#define IOMEM__POSIX_IMPLEMENTATION_DONE 1

#ifndef IOMEM_STATIC
vm_size_t iomem__posix_page_size;
#endif

/* An open-addressing u64 -> (u64, count) table; key 0 = empty (virtual page
 * 0 and frame 0 are never used). Linear probing, backward-shift delete. */
typedef struct iomem__pm_slot { uint64_t key, val; uint32_t count, low; } iomem__pm_slot;
typedef struct iomem__pm_table { iomem__pm_slot *slot; vm_size_t cap, count; } iomem__pm_table;

#define IOMEM__PM_LOW_BASE     ((uint64_t)1 << 20)
#define IOMEM__PM_GENERAL_BASE ((uint64_t)1 << 31)
#define IOMEM__PM_HIGH_BASE    ((uint64_t)1 << 40)

static struct {
	iomem__pm_table fwd;           /* virtual page number -> frame, wire count */
	iomem__pm_table rev;           /* frame -> virtual page number */
	iomem_posix_phys_layout layout;
	uint64_t next_general, next_high, next_low;   /* frame numbers; 0 = base */
	uint64_t rng, run_left, low_live, assigned;
	uint64_t generation;           /* frames unwired so far (atomic reads) */
} iomem__pm;
static iomem__mutex iomem__pm_lock = IOMEM__MUTEX_INITIALIZER(iomem__pm_lock);

IOMEM__PRIVATE vm_size_t iomem__pm_hash(uint64_t k, vm_size_t cap)
{
	k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33;
	return (vm_size_t)k & (cap - 1);
}

IOMEM__PRIVATE iomem__pm_slot *iomem__pm_find(iomem__pm_table *t, uint64_t key)
{
	vm_size_t i;
	if (t->cap == 0)
		return NULL;
	for (i = iomem__pm_hash(key, t->cap); t->slot[i].key != 0; i = (i + 1) & (t->cap - 1))
		if (t->slot[i].key == key)
			return &t->slot[i];
	return NULL;
}

IOMEM__PRIVATE bool iomem__pm_insert(iomem__pm_table *t, uint64_t key, uint64_t val)
{
	vm_size_t i;
	if ((t->count + 1) * 2 > t->cap) {
		vm_size_t ncap = t->cap ? t->cap * 2 : 1024, j;
		iomem__pm_slot *ns = (iomem__pm_slot *)calloc(ncap, sizeof *ns);
		if (ns == NULL)
			return false;
		for (j = 0; j < t->cap; j++) {
			if (t->slot[j].key == 0)
				continue;
			for (i = iomem__pm_hash(t->slot[j].key, ncap); ns[i].key != 0; i = (i + 1) & (ncap - 1)) {
			}
			ns[i] = t->slot[j];
		}
		free(t->slot);
		t->slot = ns;
		t->cap = ncap;
	}
	for (i = iomem__pm_hash(key, t->cap); t->slot[i].key != 0; i = (i + 1) & (t->cap - 1)) {
	}
	t->slot[i].key = key;
	t->slot[i].val = val;
	t->slot[i].count = 1;
	t->slot[i].low = 0;
	t->count++;
	return true;
}

IOMEM__PRIVATE void iomem__pm_remove(iomem__pm_table *t, iomem__pm_slot *s)
{
	vm_size_t mask = t->cap - 1, i = (vm_size_t)(s - t->slot), j = i;
	t->slot[i].key = 0;
	for (;;) {
		vm_size_t home;
		j = (j + 1) & mask;
		if (t->slot[j].key == 0)
			break;
		home = iomem__pm_hash(t->slot[j].key, t->cap);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->slot[i] = t->slot[j];
			t->slot[j].key = 0;
			i = j;
		}
	}
	t->count--;
}

IOMEM__PRIVATE unsigned iomem__pm_shift(void)
{
	vm_size_t p = iomem__platform_page_size();
	unsigned s = 0;
	while (((vm_size_t)1 << s) < p)
		s++;
	return s;
}

/* Next frame for a newly wired page @vpn under the layout. Lock held. */
IOMEM__PRIVATE uint64_t iomem__pm_new_frame(uint64_t vpn, unsigned shift)
{
	uint64_t f;
	switch (iomem__pm.layout.policy) {
	case IOMEM_POSIX_LAYOUT_IDENTITY:
		if (iomem__pm_find(&iomem__pm.rev, vpn) == NULL)
			return vpn;
		/* taken (a restricted buffer's frame): fall back to the pool */
		/* fall through */
	case IOMEM_POSIX_LAYOUT_CONTIGUOUS:
	default:
		f = iomem__pm.next_general++;
		break;
	case IOMEM_POSIX_LAYOUT_SCATTERED:
		f = iomem__pm.next_general;
		iomem__pm.next_general += 2;
		break;
	case IOMEM_POSIX_LAYOUT_RUNS:
		if (iomem__pm.run_left == 0) {
			/* geometric-ish run length in [1, 2*mean-1] */
			uint64_t x = iomem__pm.rng, mean = iomem__pm.layout.run_mean ? iomem__pm.layout.run_mean : 8;
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			iomem__pm.rng = x;
			iomem__pm.run_left = 1 + x % (2 * mean - 1);
			iomem__pm.next_general++;          /* the gap before a run */
		}
		iomem__pm.run_left--;
		f = iomem__pm.next_general++;
		break;
	case IOMEM_POSIX_LAYOUT_HIGH:
		f = iomem__pm.next_high++;
		break;
	}
	(void)shift;
	return f;
}

IOMEM__PRIVATE void iomem__pm_reset_pools(unsigned shift)
{
	iomem__pm.next_general = IOMEM__PM_GENERAL_BASE >> shift;
	iomem__pm.next_high = IOMEM__PM_HIGH_BASE >> shift;
	if (iomem__pm.low_live == 0)
		iomem__pm.next_low = IOMEM__PM_LOW_BASE >> shift;
	iomem__pm.run_left = 0;
	iomem__pm.rng = iomem__pm.layout.seed ? iomem__pm.layout.seed : 0x9E3779B97F4A7C15ull;
}

/* Unwire pages [vpn, vpn + n). Lock held. */
IOMEM__PRIVATE void iomem__pm_unwire_locked(uint64_t vpn, vm_size_t n, unsigned shift)
{
	vm_size_t i;
	for (i = 0; i < n; i++) {
		iomem__pm_slot *s = iomem__pm_find(&iomem__pm.fwd, vpn + i), *r;
		if (s == NULL)
			continue;
		if (--s->count != 0)
			continue;
		r = iomem__pm_find(&iomem__pm.rev, s->val);
		if (s->low && iomem__pm.low_live > 0)
			iomem__pm.low_live--;
		if (r != NULL) {
			iomem__pm_remove(&iomem__pm.rev, r);
			/* the frame no longer holds this page: cached translations die */
			__atomic_store_n(&iomem__pm.generation, iomem__pm.generation + 1, __ATOMIC_RELEASE);
		}
		iomem__pm_remove(&iomem__pm.fwd, s);
	}
	if (iomem__pm.fwd.count == 0 || iomem__pm.low_live == 0) {
		if (iomem__pm.fwd.count == 0)
			iomem__pm_reset_pools(shift);
		if (iomem__pm.low_live == 0)
			iomem__pm.next_low = IOMEM__PM_LOW_BASE >> shift;
	}
}

IOMEM__PRIVATE void iomem__pm_init_locked(unsigned shift)
{
	if (iomem__pm.next_general == 0)
		iomem__pm_reset_pools(shift);
}

/* The real frame of virtual page @vpn from /proc/self/pagemap (bit 63:
 * present, bits 0-54: PFN). Lock held. */
IOMEM__PRIVATE IOReturn iomem__pm_pagemap_frame(uint64_t vpn, unsigned shift, uint64_t *frame)
{
	unsigned char entry[8];
	uint64_t v = 0;
	int fd;
	if (iomem__posix_page_size != 0)
		return kIOReturnUnsupported;
	(void)*(volatile const unsigned char *)(uintptr_t)(vpn << shift);   /* fault it in */
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return kIOReturnNotPrivileged;
	if (lseek(fd, (off_t)(vpn * 8), SEEK_SET) == (off_t)-1 || read(fd, entry, 8) != 8) {
		close(fd);
		return kIOReturnCannotWire;
	}
	close(fd);
	memcpy(&v, entry, 8);                        /* a native-endian u64 */
	if (!(v >> 63))
		return kIOReturnCannotWire;              /* not present */
	v &= ((uint64_t)1 << 55) - 1;
	if (v == 0)
		return kIOReturnNotPrivileged;           /* PFNs hidden without CAP_SYS_ADMIN */
	*frame = v;
	return kIOReturnSuccess;
}

IOMEM_API IOReturn iomem__posix_wire(uintptr_t page_va, vm_size_t npages, IOPhysicalAddress *phys)
{
	unsigned shift = iomem__pm_shift();
	uint64_t vpn = (uint64_t)page_va >> shift;
	vm_size_t i;
	iomem__mutex_lock(&iomem__pm_lock);
	iomem__pm_init_locked(shift);
	for (i = 0; i < npages; i++) {
		iomem__pm_slot *s = iomem__pm_find(&iomem__pm.fwd, vpn + i);
		uint64_t f;
		if (s != NULL) {
			s->count++;
			phys[i] = (IOPhysicalAddress)s->val << shift;
			continue;
		}
		if (iomem__pm.layout.policy == IOMEM_POSIX_LAYOUT_PAGEMAP) {
			IOReturn r = iomem__pm_pagemap_frame(vpn + i, shift, &f);
			if (r == kIOReturnSuccess && iomem__pm_find(&iomem__pm.rev, f) != NULL)
				r = kIOReturnCannotWire;         /* frame already in use */
			if (r != kIOReturnSuccess) {
				iomem__pm_unwire_locked(vpn, i, shift);
				iomem__mutex_unlock(&iomem__pm_lock);
				return r;
			}
		} else {
			do
				f = iomem__pm_new_frame(vpn + i, shift);
			while (iomem__pm_find(&iomem__pm.rev, f) != NULL);
		}
		if (!iomem__pm_insert(&iomem__pm.fwd, vpn + i, f)) {
			iomem__pm_unwire_locked(vpn, i, shift);
			iomem__mutex_unlock(&iomem__pm_lock);
			return kIOReturnNoResources;
		}
		if (!iomem__pm_insert(&iomem__pm.rev, f, vpn + i)) {
			iomem__pm_unwire_locked(vpn, i + 1, shift);
			iomem__mutex_unlock(&iomem__pm_lock);
			return kIOReturnNoResources;
		}
		iomem__pm.assigned++;
		phys[i] = (IOPhysicalAddress)f << shift;
	}
	iomem__mutex_unlock(&iomem__pm_lock);
	return kIOReturnSuccess;
}

IOMEM_API void iomem__posix_unwire(uintptr_t page_va, vm_size_t npages)
{
	unsigned shift = iomem__pm_shift();
	iomem__mutex_lock(&iomem__pm_lock);
	iomem__pm_unwire_locked((uint64_t)page_va >> shift, npages, shift);
	iomem__mutex_unlock(&iomem__pm_lock);
}

IOMEM_API bool iomem__posix_phys_copy(IOPhysicalAddress pa, void *buf, IOByteCount len, bool to_phys)
{
	unsigned shift = iomem__pm_shift();
	uint64_t mask = ((uint64_t)1 << shift) - 1;
	unsigned char *b = (unsigned char *)buf;
	bool ok = true;
	iomem__mutex_lock(&iomem__pm_lock);
	while (len > 0) {
		iomem__pm_slot *r = iomem__pm_find(&iomem__pm.rev, pa >> shift);
		IOByteCount chunk = (mask + 1) - (pa & mask);
		unsigned char *host;
		if (chunk > len)
			chunk = len;
		if (r == NULL) {
			ok = false;
			break;
		}
		host = (unsigned char *)(uintptr_t)((r->val << shift) | (pa & mask));
		if (to_phys) {
			if (b != NULL)
				memcpy(host, b, (size_t)chunk);
			else
				memset(host, 0, (size_t)chunk);
		} else {
			memcpy(b, host, (size_t)chunk);
		}
		if (b != NULL)
			b += chunk;
		pa += chunk;
		len -= chunk;
	}
	iomem__mutex_unlock(&iomem__pm_lock);
	return ok;
}

IOMEM_API uint64_t iomem__posix_phys_generation(void)
{
	return __atomic_load_n(&iomem__pm.generation, __ATOMIC_ACQUIRE);
}

IOMEM_API void *iomem__posix_phys_frame_host(uint64_t frame, uint64_t *gen)
{
	unsigned shift = iomem__pm_shift();
	iomem__pm_slot *r;
	void *va = NULL;
	iomem__mutex_lock(&iomem__pm_lock);
	r = iomem__pm_find(&iomem__pm.rev, frame);
	if (r != NULL)
		va = (void *)(uintptr_t)(r->val << shift);
	*gen = iomem__pm.generation;
	iomem__mutex_unlock(&iomem__pm_lock);
	return va;
}

IOMEM_API IOPhysicalAddress iomem_posix_virt_to_phys(const void *address)
{
	unsigned shift = iomem__pm_shift();
	uint64_t va = (uint64_t)(uintptr_t)address;
	iomem__pm_slot *s;
	IOPhysicalAddress pa = 0;
	iomem__mutex_lock(&iomem__pm_lock);
	s = iomem__pm_find(&iomem__pm.fwd, va >> shift);
	if (s != NULL)
		pa = ((IOPhysicalAddress)s->val << shift) | (va & (((uint64_t)1 << shift) - 1));
	iomem__mutex_unlock(&iomem__pm_lock);
	return pa;
}

IOMEM_API void *iomem_posix_phys_to_virt(IOPhysicalAddress pa)
{
	unsigned shift = iomem__pm_shift();
	iomem__pm_slot *r;
	void *va = NULL;
	iomem__mutex_lock(&iomem__pm_lock);
	r = iomem__pm_find(&iomem__pm.rev, pa >> shift);
	if (r != NULL)
		va = (void *)(uintptr_t)((r->val << shift) | (pa & (((uint64_t)1 << shift) - 1)));
	iomem__mutex_unlock(&iomem__pm_lock);
	return va;
}

IOMEM_API IOReturn iomem_posix_set_phys_layout(const iomem_posix_phys_layout *layout)
{
	if (layout == NULL || (unsigned)layout->policy >= (unsigned)IOMEM_POSIX_LAYOUT_COUNT)
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__pm_lock);
	iomem__pm.layout = *layout;
	iomem__pm.run_left = 0;
	iomem__pm.rng = layout->seed ? layout->seed : 0x9E3779B97F4A7C15ull;
	iomem__mutex_unlock(&iomem__pm_lock);
	return kIOReturnSuccess;
}

IOMEM_API void iomem_posix_get_phys_layout(iomem_posix_phys_layout *out)
{
	if (out == NULL)
		return;
	iomem__mutex_lock(&iomem__pm_lock);
	*out = iomem__pm.layout;
	iomem__mutex_unlock(&iomem__pm_lock);
}

IOMEM_API const char *iomem_posix_layout_name(iomem_posix_layout policy)
{
	switch (policy) {
	case IOMEM_POSIX_LAYOUT_IDENTITY:   return "identity";
	case IOMEM_POSIX_LAYOUT_CONTIGUOUS: return "contiguous";
	case IOMEM_POSIX_LAYOUT_SCATTERED:  return "scattered";
	case IOMEM_POSIX_LAYOUT_RUNS:       return "runs";
	case IOMEM_POSIX_LAYOUT_HIGH:       return "high";
	case IOMEM_POSIX_LAYOUT_PAGEMAP:    return "pagemap";
	default:                            return "unknown";
	}
}

IOMEM_API IOReturn iomem_posix_set_page_size(vm_size_t page_size)
{
	vm_size_t host = iomem__posix_host_page_size();
	IOReturn ret = kIOReturnSuccess;
	if (page_size != 0 && (page_size < host || page_size > ((vm_size_t)1 << 20) ||
	                       (page_size & (page_size - 1)) != 0))
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__pm_lock);
	if (iomem__pm.fwd.count != 0) {
		ret = kIOReturnBusy;
	} else {
		unsigned shift;
		iomem__posix_page_size = page_size == host ? 0 : page_size;
		shift = iomem__pm_shift();
		iomem__pm.low_live = 0;
		iomem__pm_reset_pools(shift);
	}
	iomem__mutex_unlock(&iomem__pm_lock);
	return ret;
}

IOMEM_API void iomem_posix_machine_stats(iomem_posix_machine_stats_t *out)
{
	if (out == NULL)
		return;
	iomem__mutex_lock(&iomem__pm_lock);
	out->wired_pages = iomem__pm.fwd.count;
	out->low_pages = iomem__pm.low_live;
	out->frames_assigned = iomem__pm.assigned;
	iomem__mutex_unlock(&iomem__pm_lock);
}

/* memfd_create is a GNU declaration: without _GNU_SOURCE (a default
 * -std=gnu11 build: glibc's _DEFAULT_SOURCE, musl's _BSD_SOURCE), Linux
 * still has the system call. Under a strict
 * -std=c99/c11 neither is declared: RAM falls back to /dev/zero pages. */
#if !defined(MFD_CLOEXEC) && defined(__linux__) && (defined(_DEFAULT_SOURCE) || defined(_BSD_SOURCE))
#  include <sys/syscall.h>
#  if defined(SYS_memfd_create)
#    define IOMEM__POSIX_SYS_MEMFD 1
#  endif
#endif
#if defined(MFD_CLOEXEC) || defined(IOMEM__POSIX_SYS_MEMFD)
IOMEM__PRIVATE int iomem__posix_memfd(void)
{
#if defined(MFD_CLOEXEC)
	return memfd_create("iomem-ram", MFD_CLOEXEC);
#else
	return (int)syscall(SYS_memfd_create, "iomem-ram", 1u /* MFD_CLOEXEC */);
#endif
}
#endif

/* memfd-backed RAM blocks, for iomem__posix_ram_lookup (under the pm lock;
 * a plain array: looked up only when a mapping is created). */
typedef struct iomem__ramreg_entry { uintptr_t start; vm_size_t bytes; int fd; } iomem__ramreg_entry;
static struct { iomem__ramreg_entry *v; vm_size_t n, cap; } iomem__ramreg;

IOMEM__PRIVATE void iomem__ramreg_add(uintptr_t start, vm_size_t bytes, int fd)
{
	iomem__mutex_lock(&iomem__pm_lock);
	if (iomem__ramreg.n == iomem__ramreg.cap) {
		vm_size_t ncap = iomem__ramreg.cap ? iomem__ramreg.cap * 2 : 16;
		iomem__ramreg_entry *nv = (iomem__ramreg_entry *)realloc(iomem__ramreg.v, ncap * sizeof *nv);
		if (nv == NULL) {               /* the RAM works, it just cannot be aliased */
			iomem__mutex_unlock(&iomem__pm_lock);
			return;
		}
		iomem__ramreg.v = nv;
		iomem__ramreg.cap = ncap;
	}
	iomem__ramreg.v[iomem__ramreg.n].start = start;
	iomem__ramreg.v[iomem__ramreg.n].bytes = bytes;
	iomem__ramreg.v[iomem__ramreg.n].fd = fd;
	iomem__ramreg.n++;
	iomem__mutex_unlock(&iomem__pm_lock);
}

IOMEM__PRIVATE void iomem__ramreg_remove(uintptr_t start)
{
	vm_size_t i;
	iomem__mutex_lock(&iomem__pm_lock);
	for (i = 0; i < iomem__ramreg.n; i++) {
		if (iomem__ramreg.v[i].start == start) {
			iomem__ramreg.v[i] = iomem__ramreg.v[--iomem__ramreg.n];
			break;
		}
	}
	if (iomem__ramreg.n == 0) {
		free(iomem__ramreg.v);
		iomem__ramreg.v = NULL;
		iomem__ramreg.cap = 0;
	}
	iomem__mutex_unlock(&iomem__pm_lock);
}

IOMEM_API int iomem__posix_ram_lookup(uintptr_t va, uint64_t *fd_offset, vm_size_t *avail)
{
	vm_size_t i;
	int fd = -1;
	iomem__mutex_lock(&iomem__pm_lock);
	for (i = 0; i < iomem__ramreg.n; i++) {
		const iomem__ramreg_entry *r = &iomem__ramreg.v[i];
		if (va >= r->start && va - r->start < r->bytes) {
			fd = r->fd;
			*fd_offset = (uint64_t)(va - r->start);
			*avail = r->bytes - (va - r->start);
			break;
		}
	}
	iomem__mutex_unlock(&iomem__pm_lock);
	return fd;
}

IOMEM_API IOReturn iomem__posix_ram_alloc(iomem__ram *ram, vm_size_t bytes, vm_size_t align,
                                          IOPhysicalAddress max_phys, bool contiguous)
{
	vm_size_t page = iomem__platform_page_size(), host = iomem__posix_host_page_size(), span;
	uintptr_t res, a;
	void *p;
	int fd = -1;
	unsigned shift = iomem__pm_shift();
	ram->address = NULL;
	ram->fd = -1;
	ram->phys = 0;
	ram->pinned = false;
	if (align < page)
		align = page;
	if (bytes == 0 || bytes > IOMEM_ALLOC_SIZE_MAX - align)
		return kIOReturnBadArgument;
	bytes = (bytes + page - 1) & ~(page - 1);
	span = bytes + (align > host ? align - host : 0);
	res = (uintptr_t)iomem__posix_mmap_private(span, PROT_NONE);
	if (res == 0)
		return kIOReturnNoMemory;
	a = (res + align - 1) & ~(uintptr_t)(align - 1);
#if defined(MFD_CLOEXEC) || defined(IOMEM__POSIX_SYS_MEMFD)
	fd = iomem__posix_memfd();
	if (fd >= 0 && ftruncate(fd, (off_t)bytes) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0)
		p = mmap((void *)a, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	else
#endif
	{
#if defined(MAP_ANONYMOUS)
		p = mmap((void *)a, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
#else
		int z = open("/dev/zero", O_RDWR);
		p = z < 0 ? MAP_FAILED : mmap((void *)a, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, z, 0);
		if (z >= 0)
			close(z);
#endif
	}
	if (p == MAP_FAILED) {
		munmap((void *)res, span);
		if (fd >= 0)
			close(fd);
		return kIOReturnNoMemory;
	}
	if (a != res)
		munmap((void *)res, a - res);
	if (a + bytes != res + span)
		munmap((void *)(a + bytes), (res + span) - (a + bytes));
	ram->address = (void *)a;
	ram->bytes = bytes;
	ram->fd = fd;
	if (contiguous) {
		vm_size_t n = bytes >> shift, i;
		uint64_t align_f = (uint64_t)(align >> shift), f, vpn = (uint64_t)a >> shift;
		bool fits = false;
		iomem__mutex_lock(&iomem__pm_lock);
		iomem__pm_init_locked(shift);
		for (f = (iomem__pm.next_low + align_f - 1) & ~(align_f - 1);; f += align_f) {
			uint64_t last = ((f + n) << shift) - 1;
			if (f + n > (IOMEM__PM_GENERAL_BASE >> shift) || last > max_phys)
				break;
			for (i = 0; i < n && iomem__pm_find(&iomem__pm.rev, f + i) == NULL; i++) {
			}
			if (i == n) {
				fits = true;
				break;
			}
		}
		if (fits) {
			for (i = 0; i < n; i++) {
				if (!iomem__pm_insert(&iomem__pm.fwd, vpn + i, f + i) ||
				    !iomem__pm_insert(&iomem__pm.rev, f + i, vpn + i)) {
					iomem__pm_slot *s = iomem__pm_find(&iomem__pm.fwd, vpn + i);
					if (s != NULL)
						iomem__pm_remove(&iomem__pm.fwd, s);
					iomem__pm_unwire_locked(vpn, i, shift);
					fits = false;
					break;
				}
				iomem__pm_find(&iomem__pm.fwd, vpn + i)->low = 1;
				iomem__pm.low_live++;
				iomem__pm.assigned++;
			}
			if (fits)
				iomem__pm.next_low = f + n;
		}
		iomem__mutex_unlock(&iomem__pm_lock);
		if (!fits) {
			munmap((void *)a, bytes);
			if (fd >= 0)
				close(fd);
			ram->address = NULL;
			ram->fd = -1;
			return kIOReturnNoResources;
		}
		ram->phys = (IOPhysicalAddress)f << shift;
		ram->pinned = true;
	}
	if (fd >= 0)
		iomem__ramreg_add(a, bytes, fd);
	return kIOReturnSuccess;
}

IOMEM_API void iomem__posix_ram_free(iomem__ram *ram)
{
	if (ram->address == NULL)
		return;
	if (ram->pinned)
		iomem__posix_unwire((uintptr_t)ram->address, ram->bytes / iomem__platform_page_size());
	if (ram->fd >= 0)
		iomem__ramreg_remove((uintptr_t)ram->address);
	munmap(ram->address, ram->bytes);
	if (ram->fd >= 0)
		close(ram->fd);
	ram->address = NULL;
}

#endif /* IOMEM__POSIX_IMPLEMENTATION */
