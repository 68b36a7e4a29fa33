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

IOMEM_INLINE vm_size_t iomem__platform_page_size(void)
{
	return (vm_size_t)sysconf(_SC_PAGESIZE);
}

/* Anonymous pages are zero-filled by the kernel, so @zero costs nothing.
 * Under a strict -std=c99 glibc hides MAP_ANONYMOUS; /dev/zero is the POSIX
 * way to get the same private zero pages. */
IOMEM_INLINE void *iomem__platform_alloc_pages(vm_size_t bytes, bool zero)
{
	void *p;
	(void)zero;
#if defined(MAP_ANONYMOUS)
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#else
	int fd = open("/dev/zero", O_RDWR);
	if (fd < 0)
		return NULL;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
#endif
	return p == MAP_FAILED ? NULL : p;
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

#endif /* IOMEM_POSIX_H_INCLUDED */
