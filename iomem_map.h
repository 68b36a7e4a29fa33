/* SPDX-License-Identifier: MIT */
/*
 * iomem_map.h - IOKit's mapped memory for iomem: IOMemoryMap, IOMapper and
 *               its IOVM calls, IOMappedRead/Write 8-64, IOFlushProcessorCache
 *
 * Include after (or instead of) iomem.h; it includes iomem.h itself. The
 * implementation is compiled in the TU that defines IOMEM_IMPLEMENTATION,
 * like iomem.h's. Backends, configuration macros and the debug layer are
 * described at the top of iomem.h.
 *
 * TABLE OF CONTENTS                        (search for ">>name" to jump)
 *   >>memmap          IOMemoryMap: map, createMappingInTask, setMapping,
 *                     the accessors, unmap, redirect, wireRange; DriverKit
 *                     CreateMapping / GetAddress / GetLength / GetOffset
 *   >>mapper          IOMapper: system and per-device mappers, iovmMapMemory /
 *                     iovmUnmapMemory / iovmInsert / mapToPhysicalAddress,
 *                     IOMapperIOVMAlloc / IOMapperIOVMFree / IOMapperInsertPage,
 *                     the software IOMMU (iomem_swiommu_*),
 *                     iomem_linux_mapper_for_device (Linux: a struct device)
 *   >>mappedio        IOMappedRead8/16/32/64, IOMappedWrite8/16/32/64, the
 *                     POSIX MMIO windows (iomem_posix_mmio_register)
 *   >>cache           IOFlushProcessorCache
 *   >>implementation  the part compiled once (IOMEM_IMPLEMENTATION):
 *     >>impl-mapper     the IOMapper object and the system mapper
 *     >>impl-memmap     IOMemoryMap: the pieces of a descriptor, the
 *                       backends' mapping, reuse, the accessors
 *     >>impl-swiommu    the software IOMMU (page table, IOVA space, faults,
 *                       the per-thread IOVA cache)
 *     >>impl-iovm       IOMapperIOVMAlloc / IOVMFree / InsertPage / PPNPages
 *     >>impl-mappedio   IOMappedRead/Write, the POSIX MMIO windows
 *     >>impl-cache      IOFlushProcessorCache
 *     >>impl-linuxdev   Linux: iomem_linux_mapper_for_device (the DMA API
 *                       as an extent mapper)
 *
 * The map options and cache modes are in iomem.h. The README's feature
 * table says what works on which backend today.
 *
 * LICENSE: MIT (see iomem.h).
 */
#ifndef IOMEM_MAP_H_INCLUDED
#define IOMEM_MAP_H_INCLUDED

#include "iomem.h"

#ifndef IOMEM__BACKEND_CONFLICT   /* iomem.h gave the one clear error */

#ifdef __cplusplus
extern "C" {
#endif

/* >>memmap ================================================================ */
/*
 * IOMemoryMap (reference §4.2, §1.1): bytes [offset, offset + length) of a
 * descriptor made addressable in a task. iomem has one address space,
 * kernel_task; any other task -> kIOReturnUnsupported (NULL).
 *
 * HOW A MAPPING IS MADE (createMappingInTask, in IOKit's order):
 *   kIOMapStatic     records @atAddress as the mapping; nothing is mapped
 *                    and unmap never deallocates it (setMapping);
 *   kIOMapUnique     always a new mapping (never shared, never reused);
 *   otherwise        a *compatible* live map is reused (same task, same
 *                    kIOMapReadOnly and guard bits, same cache mode unless
 *                    the request asks the default, the address when fixed,
 *                    the range inside it): the same object +1 when the range
 *                    is the same, else a new sub-map sharing its address;
 *   kIOMapReference  reuse only: kIOReturnNotFound (NULL) when nothing fits;
 *   else the backend maps:
 *     POSIX: a real second virtual mapping of the same pages: every piece of
 *       the descriptor (buffer RAM, a general range, a sub's, a multi's or an
 *       interleaved descriptor's children, physical frames that are buffer
 *       RAM) is mmap'ed from its memfd into one reserved range, so a write
 *       through the map is seen through the buffer and vice versa;
 *       kIOMapReadOnly maps PROT_READ (a write faults: SIGSEGV). Memory that
 *       is not memfd RAM (malloc'ed or stack memory, device frames, and all
 *       RAM off Linux or in a strict -std=c99/c11 build) cannot be
 *       aliased in user space: a single-range kernel_task descriptor mapped
 *       at offset 0 with kIOMapAnywhere and without kIOMapUnique,
 *       kIOMapReadOnly or a guard then maps to its own address (a static
 *       mapping, what IOKit does for same-task mappings of kernel memory);
 *       anything else is kIOReturnUnsupported.
 *     bare metal: one address space: a range that is virtually contiguous
 *       maps to itself (static); read-only, guards, a fixed address other
 *       than its own or scattered pieces -> kIOReturnUnsupported.
 *     Linux: the own-address (static) case above when the cache mode is
 *       the default or copyback; otherwise a new kernel mapping, kIOMapAnywhere
 *       only (the kernel picks the address; a fixed one -> Unsupported):
 *       RAM pages (kmalloc, vmalloc, buffer, physical RAM, prepared user
 *       memory; multi/sub/interleaved of those) with vmap, the cache mode
 *       as its pgprot (default/copyback: PAGE_KERNEL, inhibit and the
 *       posted modes: pgprot_noncached, writethrough/writecombine: the
 *       x86 PAT type; an architecture without one -> Unsupported;
 *       realtime -> Unsupported), kIOMapReadOnly -> PAGE_KERNEL_RO; one
 *       physical range that is not RAM (device memory) with ioremap /
 *       ioremap_wc / ioremap_wt / ioremap_cache (default and inhibit:
 *       ioremap, i.e. uncached), kIOMapReadOnly -> Unsupported there.
 *       Guards: the vmalloc area's own guard page after each mapping (the
 *       one before is the previous area's); kIOMapGuardedLarge -> Unsupported.
 *       A vmap with a cache mode other than the linear map's makes an
 *       alias of another memory type (as pgprot-based remapping does
 *       anywhere in the kernel); on x86 the CPU tolerates it but the
 *       strongest guarantee is still IOFlushProcessorCache / the DMA API.
 *       The map and unmap (vunmap/iounmap) need process context.
 *   Pieces after the first must start, and pieces before the last must end,
 *   on a page boundary (else kIOReturnNotAligned): a map is page-granular.
 * Cache modes (kIOMapCacheMask) are recorded in the map options on every
 * backend and not applied (POSIX cannot; coherent hosts need nothing).
 * kIOMapPrefault is accepted and ignored.
 *
 * OWNERSHIP (reference §8.1 item 3): a map retains its descriptor (and a
 * sub-map its super-map); the descriptor keeps only a weak list of its live
 * maps, for reuse. The last IOMemoryMap_release unmaps and frees the map,
 * so a descriptor released while maps live stays alive until the last map
 * goes. Getters return +0.
 *
 * THREAD SAFETY: every call is thread-safe (one internal lock guards the
 * descriptors' map lists, as IOKit's global memory lock); unmap, redirect
 * and wireRange of one map must not race with each other (caller
 * serialises), as the map's address changes under them.
 *
 * DEVIATIONS: on POSIX, map() of a buffer is a second mapping where IOKit
 * would hand back the buffer's own kernel address (so aliasing is real and
 * testable); a sub-map is also found for a fixed-address request whose
 * address is the one the sub-range has in the live map (IOKit compares
 * the live map's own start only); unique maps are never shared;
 * IOMemoryMap_getPhysicalSegment range-checks @offset against the map;
 * taskDied is not provided (there are no other tasks); a failed
 * kIOMapOverwrite mapping leaves its range unmapped.
 */

/**
 * iomem_md_createMappingInTask - createMappingInTask with the reason: the
 * new or reused map (+1) in *@map, or NULL with the error returned.
 * Arguments as IOMemoryDescriptor_createMappingInTask. Returns
 * kIOReturnSuccess;
 * kIOReturnBadArgument  NULL @md, @map or @intoTask; @length 0 on an empty
 *                       descriptor; @offset + @length past the descriptor
 *                       (or overflowing); a guard without kIOMapAnywhere;
 *                       a fixed (or static) @atAddress of 0;
 * kIOReturnUnsupported  a task other than kernel_task; memory the backend
 *                       cannot map (see above);
 * kIOReturnNotFound     kIOMapReference and no compatible live map;
 * kIOReturnNotAligned   pieces not page-aligned where they meet; a fixed
 *                       @atAddress whose page offset differs from the
 *                       memory's;
 * kIOReturnNoSpace      a fixed @atAddress that is taken (without
 *                       kIOMapOverwrite, which replaces what is there);
 * kIOReturnNoMemory     no memory for the object, or no address space;
 * kIOReturnVMError      a mmap of a piece failed (nothing stays mapped).
 */
IOMEM_API IOReturn iomem_md_createMappingInTask(IOMemoryDescriptor *md, task_t intoTask,
        mach_vm_address_t atAddress, IOOptionBits options, mach_vm_size_t offset,
        mach_vm_size_t length, IOMemoryMap **map);

/**
 * IOMemoryDescriptor_createMappingInTask - map bytes [@offset, @offset +
 * @length) of @md (@length 0: the whole descriptor, then @offset must be 0)
 * into @intoTask at @atAddress (kIOMapAnywhere: anywhere, @atAddress
 * ignored). @options: kIOMap* (see above). Returns a +1 map, or NULL on any
 * error (IOKit surfaces none; iomem_md_createMappingInTask says which).
 */
IOMEM_API IOMemoryMap *IOMemoryDescriptor_createMappingInTask(IOMemoryDescriptor *md, task_t intoTask,
        mach_vm_address_t atAddress, IOOptionBits options, mach_vm_size_t offset, mach_vm_size_t length);
/**
 * IOMemoryDescriptor_map - createMappingInTask(@md, kernel_task, 0,
 * @options | kIOMapAnywhere, 0, 0): the whole descriptor. +1 or NULL.
 */
IOMEM_API IOMemoryMap *IOMemoryDescriptor_map(IOMemoryDescriptor *md, IOOptionBits options);
/**
 * IOMemoryDescriptor_setMapping - record that @md is already mapped at
 * @mapAddress in @task: createMappingInTask(@md, @task, @mapAddress,
 * @options | kIOMapStatic, 0, 0). Nothing is mapped or ever unmapped; later
 * compatible requests reuse it. +1 or NULL (@mapAddress 0, another task).
 */
IOMEM_API IOMemoryMap *IOMemoryDescriptor_setMapping(IOMemoryDescriptor *md, task_t task,
        IOVirtualAddress mapAddress, IOOptionBits options);

/** IOMemoryMap_retain - +1. NULL is a no-op. Thread-safe. */
IOMEM_API void IOMemoryMap_retain(IOMemoryMap *map);
/** IOMemoryMap_release - -1; the last release unmaps, leaves the
 * descriptor's list and releases the descriptor (and super-map). NULL is a
 * no-op. Thread-safe. */
IOMEM_API void IOMemoryMap_release(IOMemoryMap *map);
/** iomem_map_getRetainCount - the current reference count (diagnostics). */
IOMEM_API uint32_t iomem_map_getRetainCount(IOMemoryMap *map);

/** IOMemoryMap_getVirtualAddress / getAddress - the address of the first
 * mapped byte (the same value; 0 once unmapped, or for NULL). */
IOMEM_API IOVirtualAddress IOMemoryMap_getVirtualAddress(IOMemoryMap *map);
IOMEM_API mach_vm_address_t IOMemoryMap_getAddress(IOMemoryMap *map);
/** IOMemoryMap_getLength / getSize - the bytes mapped (0 for NULL; kept
 * after unmap, as IOKit). */
IOMEM_API IOByteCount IOMemoryMap_getLength(IOMemoryMap *map);
IOMEM_API mach_vm_size_t IOMemoryMap_getSize(IOMemoryMap *map);
/** IOMemoryMap_getAddressTask - the task mapped into (a sub-map: its
 * super-map's); NULL once unmapped or for NULL. */
IOMEM_API task_t IOMemoryMap_getAddressTask(IOMemoryMap *map);
/** IOMemoryMap_getMemoryDescriptor - the descriptor (+0), NULL for NULL. */
IOMEM_API IOMemoryDescriptor *IOMemoryMap_getMemoryDescriptor(IOMemoryMap *map);
/** IOMemoryMap_getMapOptions - the options it was made with (plus
 * kIOMapStatic when it maps to the memory's own address), 0 for NULL. */
IOMEM_API IOOptionBits IOMemoryMap_getMapOptions(IOMemoryMap *map);
/**
 * IOMemoryMap_getPhysicalSegment - the descriptor's getPhysicalSegment at
 * the map's offset + @offset, *@length (may be NULL) clipped to the map.
 * 0 (and *@length 0) for @offset >= the map's length or NULL @map.
 */
IOMEM_API IOPhysicalAddress IOMemoryMap_getPhysicalSegment(IOMemoryMap *map, IOByteCount offset,
        IOByteCount *length, IOOptionBits options);
/** IOMemoryMap_getPhysicalAddress - getPhysicalSegment(map, 0, NULL, 0). */
IOMEM_API IOPhysicalAddress IOMemoryMap_getPhysicalAddress(IOMemoryMap *map);
/**
 * IOMemoryMap_unmap - deallocate the mapping's address space (not for a
 * static map, a sub-map or a map at the memory's own address) and set the
 * address to 0 (Linux: vunmap/iounmap, process context; a vmap's page
 * references are dropped). The object stays valid (release it). Unmapping again is a
 * no-op: kIOReturnSuccess, as IOKit. kIOReturnBadArgument for NULL. Sub-maps
 * of an unmapped map keep a dangling address, as in IOKit.
 */
IOMEM_API IOReturn IOMemoryMap_unmap(IOMemoryMap *map);
/**
 * IOMemoryMap_redirect - @newBackingMemory NULL: block access to the
 * mapping (the pages become PROT_NONE: any access faults) until it is
 * redirected again. Non-NULL: re-point the mapping's address at bytes
 * [@offset, @offset + length) of @newBackingMemory (retained; the old
 * descriptor released) - only for kIOMapUnique maps, except that
 * redirecting a map to its own descriptor and offset just unblocks it.
 * @options: unused (IOKit: none defined). Returns kIOReturnSuccess;
 * kIOReturnBadArgument (NULL @map, the range is outside @newBackingMemory);
 * kIOReturnNotReady (unmapped); kIOReturnUnsupported (a map whose address
 * iomem did not allocate - static, sub-map, own address - or another
 * backend than POSIX; re-pointing a map that is not kIOMapUnique; memory
 * that cannot be aliased); kIOReturnNotAligned (a page offset other than
 * the map's); kIOReturnVMError (a mmap failed: the range is left blocked).
 */
IOMEM_API IOReturn IOMemoryMap_redirect(IOMemoryMap *map, IOMemoryDescriptor *newBackingMemory,
        IOOptionBits options, mach_vm_size_t offset);
/**
 * IOMemoryMap_wireRange - @options with kIODirectionIn/Out bits: wire
 * (POSIX: mlock) the pages of [@offset, @offset + @length) of the map;
 * without: unwire them (munlock). Bare metal and Linux kernel memory is
 * always wired: success. Returns kIOReturnSuccess; kIOReturnBadArgument
 * (NULL map, range outside the map or overflowing, @length 0);
 * kIOReturnNotReady (unmapped); kIOReturnNotPrivileged / kIOReturnNoResources
 * (mlock refused: no privilege / over RLIMIT_MEMLOCK).
 */
IOMEM_API IOReturn IOMemoryMap_wireRange(IOMemoryMap *map, uint32_t options, mach_vm_size_t offset,
        mach_vm_size_t length);

/* DriverKit shapes (reference §6): IOMemoryDescriptor::CreateMapping. */
enum {
	kIOMemoryMapFixedAddress          = 0x00000001,
	kIOMemoryMapReadOnly              = 0x00000002,
	kIOMemoryMapGuardedMask           = 0x0000001C,
	kIOMemoryMapGuardedDefault        = 0x00000000,
	kIOMemoryMapGuardedNone           = 0x00000004,
	kIOMemoryMapGuardedSmall          = 0x00000008,
	kIOMemoryMapGuardedLarge          = 0x0000000C,
	kIOMemoryMapCacheModeDefault      = 0x00000000,
	kIOMemoryMapCacheModeInhibit      = 0x00000100,
	kIOMemoryMapCacheModeCopyback     = 0x00000200,
	kIOMemoryMapCacheModeWriteThrough = 0x00000400,
	kIOMemoryMapCacheModeRealTime     = 0x00000800
};

/**
 * IOMemoryDescriptor_CreateMapping - DriverKit's CreateMapping: map
 * [@offset, @offset + @length) (@length 0: the whole descriptor) with
 * kIOMemoryMap* @options; @address is the fixed address with
 * kIOMemoryMapFixedAddress (else ignored); @alignment is ignored (as the
 * kernel does). Not fixed -> kIOMapAnywhere with small guard pages unless
 * kIOMemoryMapGuardedNone; fixed -> no guard; ReadOnly -> kIOMapReadOnly.
 * A new map (+1) in *@map. Returns kIOReturnSuccess; kIOReturnBadArgument
 * (NULL @md or @map, an unknown cache mode); kIOReturnError (the mapping
 * failed; iomem_md_createMappingInTask gives the reason).
 */
IOMEM_API kern_return_t IOMemoryDescriptor_CreateMapping(IOMemoryDescriptor *md, uint64_t options,
        uint64_t address, uint64_t offset, uint64_t length, uint64_t alignment, IOMemoryMap **map);
/** IOMemoryMap_GetAddress / GetLength / GetOffset - plain getters (0 for NULL). */
IOMEM_API uint64_t IOMemoryMap_GetAddress(IOMemoryMap *map);
IOMEM_API uint64_t IOMemoryMap_GetLength(IOMemoryMap *map);
IOMEM_API uint64_t IOMemoryMap_GetOffset(IOMemoryMap *map);

/* >>mapper ================================================================ */
/*
 * IOMapper (reference §4.1): an IOMMU. Its modern interface is an ops table
 * a platform (or a test) implements; iomem ships a simulated IOMMU on POSIX
 * and wraps the kernel's IOMMU API on Linux. The system mapper is the one
 * IODMACommand uses when given NULL (kIOMapperSystem) with kMapped; there
 * is none until a platform sets one (iomem_mapper_set_system).
 *
 * How IODMACommand uses a mapper: at the first prepare (kMapped, mapper
 * present) it calls iovmMapMemory(mapper, md, offset, length, options,
 * &spec, cmd, NULL, &addr, &maplen) once for the whole prepared range (of
 * the bounce buffer when one is in use) and emits segments from the one
 * contiguous IOVA run [addr, addr + length); at the last complete it calls
 * iovmUnmapMemory(mapper, md, cmd, addr, maplen) with the same values.
 */

/* IODMAMapSpecification (IOKit layout, the device a void *). */
typedef struct IODMAMapSpecification {
	uint64_t alignment;         /* of the IOVA of the first byte's page */
	void    *device;            /* the per-device handle, or NULL */
	uint32_t options;
	uint8_t  numAddressBits;    /* the IOVA must end below 2^bits; 0 = 64 */
	uint8_t  resvA[3];
	uint32_t resvB[4];
} IODMAMapSpecification;

enum {
	kIODMAMapReadAccess           = 0x00000001,
	kIODMAMapWriteAccess          = 0x00000002,
	kIODMAMapPhysicallyContiguous = 0x00000010,
	kIODMAMapDeviceMemory         = 0x00000020,
	kIODMAMapPagingPath           = 0x00000040,
	kIODMAMapIdentityMap          = 0x00000080,
	kIODMAMapPageListFullyOccupied = 0x00000100,
	kIODMAMapFixedAddress         = 0x00000200
};

/**
 * iomem_mapper_ops - what an IOMMU implements. Every hook gets the mapper;
 * its context is iomem_mapper_getContext(mapper).
 *   getPageSize          the IOMMU page size (a power of two).
 *   iovmMapMemory        map bytes [@descriptorOffset, +@length) of the
 *                        prepared @memory; *@mapAddress = the IOVA of the
 *                        byte at @descriptorOffset (its page offset kept),
 *                        *@mapLength = the bytes of IOVA space used (may be
 *                        more: page rounding). @mapOptions: kIODMAMap*
 *                        access bits. @pageList is always NULL here.
 *                        kIOReturnNoSpace / kIOReturnNoResources when the
 *                        IOVA space or the table is full.
 *   iovmUnmapMemory      undo one iovmMapMemory (same address and length).
 *   iovmInsert           map physical [@physicalAddress, +@length) at IOVA
 *                        @mapAddress + @offset (IOMapperInsertPage).
 *   mapToPhysicalAddress the CPU-physical address behind an IOVA (0: none).
 *   iovaAlloc/iovaFree   IOVA space without a descriptor, in pages
 *                        (IOMapperIOVMAlloc/Free); may be NULL (-> 0).
 *   free                 the last release; may be NULL.
 *
 * Optional, for a mapper whose mappings are not one contiguous IOVA run
 * (the Linux DMA API: dma_map_sg through swiotlb or dma-direct gives a
 * segment list). When iovmMapExtents is set IODMACommand uses it instead
 * of iovmMapMemory:
 *   iovmMapExtents       map bytes [@descriptorOffset, +@length) of the
 *                        prepared @memory and return the device addresses
 *                        as extents: (*@extents)[i].phys is a device
 *                        address, .end the end offset of that piece
 *                        relative to @descriptorOffset (the last .end ==
 *                        @length). The array stays valid until
 *                        iovmUnmapExtents(@handle). Errors as iovmMapMemory.
 *   iovmUnmapExtents     undo one iovmMapExtents.
 *   iovmSync             make the device's writes visible to the CPU
 *                        (@direction kIODirectionIn) or the CPU's writes to
 *                        the device (kIODirectionOut); may be NULL
 *                        (coherent). IODMACommand calls it at prepare (Out),
 *                        complete (In) and synchronize.
 */
typedef struct iomem_mapper_ops {
	const char *name;
	uint64_t (*getPageSize)(IOMapper *mapper);
	IOReturn (*iovmMapMemory)(IOMapper *mapper, IOMemoryDescriptor *memory, uint64_t descriptorOffset,
	                          uint64_t length, uint32_t mapOptions, const IODMAMapSpecification *mapSpecification,
	                          IODMACommand *dmaCommand, const void *pageList,
	                          uint64_t *mapAddress, uint64_t *mapLength);
	IOReturn (*iovmUnmapMemory)(IOMapper *mapper, IOMemoryDescriptor *memory, IODMACommand *dmaCommand,
	                            uint64_t mapAddress, uint64_t mapLength);
	IOReturn (*iovmInsert)(IOMapper *mapper, uint32_t options, uint64_t mapAddress, uint64_t offset,
	                       uint64_t physicalAddress, uint64_t length);
	uint64_t (*mapToPhysicalAddress)(IOMapper *mapper, uint64_t mappedAddress);
	IOReturn (*iovaAlloc)(IOMapper *mapper, uint64_t pages, uint32_t mapOptions, uint64_t *iova);
	void     (*iovaFree)(IOMapper *mapper, uint64_t iova, uint64_t pages);
	void     (*free)(IOMapper *mapper);
	IOReturn (*iovmMapExtents)(IOMapper *mapper, IOMemoryDescriptor *memory, uint64_t descriptorOffset,
	                           uint64_t length, uint32_t mapOptions, const IODMAMapSpecification *mapSpecification,
	                           IODMACommand *dmaCommand, const iomem_md_extent **extents, uint32_t *count,
	                           void **handle);
	void     (*iovmUnmapExtents)(IOMapper *mapper, IODMACommand *dmaCommand, void *handle);
	void     (*iovmSync)(IOMapper *mapper, IODMACommand *dmaCommand, void *handle, IODirection direction);
} iomem_mapper_ops;

/** iomem_mapper_withOps - a mapper over @ops (kept; must outlive it) and
 * @context. +1, or NULL (NULL @ops or a required hook missing: getPageSize,
 * iovmMapMemory, iovmUnmapMemory, mapToPhysicalAddress). Thread-safe. */
IOMEM_API IOMapper *iomem_mapper_withOps(const iomem_mapper_ops *ops, void *context);
IOMEM_API void *iomem_mapper_getContext(IOMapper *mapper);
IOMEM_API void IOMapper_retain(IOMapper *mapper);
IOMEM_API void IOMapper_release(IOMapper *mapper);
/** iomem_mapper_set_system - make @mapper (retained; NULL: none) the system
 * mapper; the previous one is released. Set it before creating commands,
 * and not while the C accessors (IOMapperIOVMAlloc...) or IOMappedRead/
 * Write may run on other threads: they read it without a reference. */
IOMEM_API void iomem_mapper_set_system(IOMapper *mapper);
/** iomem_mapper_copy_system - the system mapper, +1, or NULL when none. */
IOMEM_API IOMapper *iomem_mapper_copy_system(void);

/* The ops as IOKit's member functions (argument checks, then the hook). */
IOMEM_API uint64_t IOMapper_getPageSize(IOMapper *mapper);
IOMEM_API IOReturn IOMapper_iovmMapMemory(IOMapper *mapper, IOMemoryDescriptor *memory,
        uint64_t descriptorOffset, uint64_t length, uint32_t mapOptions,
        const IODMAMapSpecification *mapSpecification, IODMACommand *dmaCommand,
        const void *pageList, uint64_t *mapAddress, uint64_t *mapLength);
IOMEM_API IOReturn IOMapper_iovmUnmapMemory(IOMapper *mapper, IOMemoryDescriptor *memory,
        IODMACommand *dmaCommand, uint64_t mapAddress, uint64_t mapLength);
IOMEM_API IOReturn IOMapper_iovmInsert(IOMapper *mapper, uint32_t options, uint64_t mapAddress,
        uint64_t offset, uint64_t physicalAddress, uint64_t length);
IOMEM_API uint64_t IOMapper_mapToPhysicalAddress(IOMapper *mapper, uint64_t mappedAddress);

/* ---- the C accessors (reference §4.1) ------------------------------------ */
/*
 * IOKit's exported C calls on the system mapper, in CPU pages (ppnum_t page
 * numbers, as XNU's ptoa/atop). They use the system mapper WITHOUT taking
 * a reference (one atomic load, as XNU reads gSystem): set the system
 * mapper at start-up and do not replace or clear it while these calls,
 * IOMappedRead/Write or IOFlushProcessorCache may run on other threads.
 * Thread-safe otherwise (the mapper's own lock).
 */

/**
 * IOMapperIOVMAlloc - @pages CPU pages of read/write IOVA space on the
 * system mapper, with no page mapped yet (IOMapperInsertPage fills it).
 * Returns the IOVA's page number, or 0: no system mapper (IOKit's identity
 * case), @pages 0, no IOVA space (the mapper's iovaAlloc failed or is
 * missing), or a page number that does not fit 32 bits (the space is given
 * back). The range is the caller's until IOMapperIOVMFree. O(1) with the
 * software IOMMU (a per-thread cache of recently freed ranges, then the
 * range allocator's instant fit).
 */
IOMEM_API ppnum_t IOMapperIOVMAlloc(unsigned pages);

/**
 * IOMapperIOVMFree - give back @pages CPU pages at page @addr (what
 * IOMapperIOVMAlloc returned, same count): every page mapped in it is
 * unmapped first (later device accesses fault). No system mapper, @addr 0
 * or @pages 0, a range outside the mapper's space: nothing (reported with
 * IOMEM_DEBUG when a mapper exists). O(@pages).
 */
IOMEM_API void IOMapperIOVMFree(ppnum_t addr, unsigned pages);

/**
 * IOMapperInsertPage - map the physical CPU page @page read/write at IOVA
 * page @addr + @offset. Returns @addr + @offset; @page itself when there is
 * no system mapper (IOKit's identity: the IOVA is the physical page).
 * @addr 0 (IOKit panics): reported with IOMEM_DEBUG, returns 0. Returns 0
 * also when @addr + @offset does not fit 32 bits or the mapper refuses
 * (outside its IOVA space; IOKit has no error path here). O(1).
 */
IOMEM_API ppnum_t IOMapperInsertPage(ppnum_t addr, unsigned offset, ppnum_t page);

/**
 * IOMapperInsertPPNPages - map @pageCount physical CPU pages from
 * @pageList read/write at IOVA pages @addr + @offset onwards (the legacy
 * page-list insert). No system mapper: nothing (identity). @addr 0, a NULL
 * @pageList with a non-zero count, or a page outside the mapper's space:
 * reported with IOMEM_DEBUG, nothing more is mapped. O(@pageCount).
 */
IOMEM_API void IOMapperInsertPPNPages(ppnum_t addr, unsigned offset, ppnum_t *pageList, IOItemCount pageCount);

/* ---- the software IOMMU (iomem's addition; every backend) --------------- */
/*
 * iomem_swiommu: a plain-software IOMMU implementing iomem_mapper_ops, for
 * tests, simulations (the software DMA engine translates through it) and
 * platforms without one. It has
 *   - an IOVA space [iova_base, iova_base + iova_size) managed by an
 *     IORangeAllocator (vmem-style instant fit) in IOMMU pages, with a
 *     per-thread cache of recently freed ranges on POSIX (1..8 pages by
 *     size, and up to 8 larger ones of up to 512 pages, exact size);
 *   - a two-level page table (IOVA page -> physical frame + read/write
 *     bits): O(1) per page to map, unmap and translate; its 4 KiB leaves are
 *     allocated on first use and kept until the mapper is freed;
 *   - the device side: iomem_swiommu_translate, which records every access
 *     to an unmapped IOVA and every write to a read-only page as a FAULT.
 * iovmMapMemory maps the prepared range with one contiguous IOVA run; its
 * runs must tile IOMMU pages (every physical run but the first starts on an
 * IOMMU page boundary, which any descriptor whose pieces are page-aligned
 * satisfies), else kIOReturnNotAligned. Read access always; write access
 * when the options carry kIODMAMapWriteAccess.
 * THREAD SAFETY: one lock per IOMMU (may sleep: the descriptor layer's
 * iomem__sleep_lock); every call, translate included, may come from any
 * thread. An unmap is complete when it returns: later translates fault.
 * CONFIGURATION (impl): IOMEM_SWIOMMU_NO_TLS turns the per-thread cache off
 * (every allocation then takes the lock). Without IOMEM_DEBUG a range freed
 * twice into a thread's cache is not detected (it may be handed out twice,
 * as with any magazine cache); with IOMEM_DEBUG it is reported.
 */

/** Creation parameters; a zero field takes the default noted. */
typedef struct iomem_swiommu_desc {
	uint64_t page_size;     /* IOMMU page: power of two in [512, 1 GiB]; 0: CPU page */
	uint64_t iova_base;     /* first IOVA byte, page-aligned; 0: one page (IOVA 0 is never used) */
	uint64_t iova_size;     /* bytes, a page multiple; 0: up to 2^address_bits */
	uint8_t  address_bits;  /* IOVA width 20..64; 0: 32 (the space must end below 2^bits) */
} iomem_swiommu_desc;

/** Why a translate faulted. */
typedef enum iomem_swiommu_fault_reason {
	IOMEM_SWIOMMU_FAULT_NONE = 0,   /* no fault yet */
	IOMEM_SWIOMMU_FAULT_UNMAPPED,   /* no entry for the IOVA page (or outside the space) */
	IOMEM_SWIOMMU_FAULT_READONLY    /* a write to a read-only page */
} iomem_swiommu_fault_reason;

/** One recorded fault. */
typedef struct iomem_swiommu_fault {
	uint64_t                   iova;
	bool                       write;
	iomem_swiommu_fault_reason reason;
} iomem_swiommu_fault;

/** Counters (iomem_swiommu_get_stats). */
typedef struct iomem_swiommu_stats {
	uint64_t  page_size;
	uint64_t  iova_base, iova_size;   /* the space, bytes */
	uint64_t  iova_free_pages;        /* free in the allocator (per-thread caches excluded) */
	uint64_t  mapped_pages;           /* page-table entries present */
	uint64_t  maps, unmaps;           /* successful iovmMapMemory / iovmUnmapMemory */
	uint64_t  faults;
	vm_size_t table_bytes;            /* directory + leaves */
} iomem_swiommu_stats;

/**
 * iomem_swiommu_create - a software IOMMU as an IOMapper (+1; release with
 * IOMapper_release, which frees the table and the IOVA space; IOVAs still
 * in use then are simply gone). @desc: NULL = all defaults (CPU page, IOVA
 * [page, 4 GiB), 32 address bits). NULL for a bad @desc (page size not a
 * power of two in range, unaligned base or size, a space past
 * 2^address_bits or more than 2^30 pages, address_bits outside 20..64) or
 * no memory. Thread-safe. O(space / 512 pages) for the directory.
 */
IOMEM_API IOMapper *iomem_swiommu_create(const iomem_swiommu_desc *desc);

/** iomem_swiommu_is - true when @mapper is a software IOMMU. */
IOMEM_API bool iomem_swiommu_is(IOMapper *mapper);

/**
 * iomem_swiommu_translate - what a device sees: the CPU-physical address
 * of IOVA @iova in *@pa and, in *@contiguous (may be NULL), how many bytes
 * from there (at most @length) are mapped physically contiguously with the
 * access's permission (read; read+write when @write).
 * Returns kIOReturnSuccess; a FAULT, recorded and counted (see
 * iomem_swiommu_faults), for the page holding @iova only:
 *   kIOReturnVMError      no mapping (unmapped page, or outside the space)
 *   kIOReturnNotWritable  @write and the page is read-only;
 * kIOReturnBadArgument (not a fault): @mapper not a software IOMMU, @pa
 * NULL or @length 0. *@pa and *@contiguous are 0 on every error. O(pages
 * covered), under the IOMMU's lock.
 */
IOMEM_API IOReturn iomem_swiommu_translate(IOMapper *mapper, uint64_t iova, uint64_t length, bool write,
                                           IOPhysicalAddress *pa, uint64_t *contiguous);

/** iomem_swiommu_faults - faults recorded so far (0 for NULL or another
 * mapper); the last one into *@last (may be NULL; reason NONE when none). */
IOMEM_API uint64_t iomem_swiommu_faults(IOMapper *mapper, iomem_swiommu_fault *last);

/** iomem_swiommu_get_stats - snapshot into @out. kIOReturnBadArgument for
 * a NULL @out or a mapper that is not a software IOMMU. */
IOMEM_API IOReturn iomem_swiommu_get_stats(IOMapper *mapper, iomem_swiommu_stats *out);

/**
 * iomem_swiommu_flush_cache - give the calling thread's cached IOVA ranges
 * of @mapper back to its allocator (other threads keep theirs until they
 * allocate from a full space or exit). A no-op where there is no
 * per-thread cache. Thread-safe.
 */
IOMEM_API void iomem_swiommu_flush_cache(IOMapper *mapper);

#if defined(IOMEM_BACKEND_LINUX)
struct device;
/**
 * iomem_linux_mapper_for_device - a mapper over the kernel's DMA API for
 * @dev (IOKit allows a device where a mapper goes: pass the result as the
 * mapper argument of IODMACommand_withSpecification / IODMACommand_Create).
 * Its segments are dma_addr_ts from dma_map_sg_attrs on @dev, so swiotlb and
 * the IOMMU are the kernel's (iovmMapExtents / iovmUnmapExtents / iovmSync;
 * iovmMapMemory, the one-run form, returns kIOReturnUnsupported).
 *
 * Per mapping (the first prepare of a command): an sg_table with one entry
 * per physical page piece of the prepared range (RAM only: pfn_valid),
 * dma_map_sg_attrs with the direction from the map options (ReadAccess only
 * -> DMA_TO_DEVICE, WriteAccess only -> DMA_FROM_DEVICE, both ->
 * DMA_BIDIRECTIONAL), the MAPPED entries become the extents (adjacent ones
 * merged), dma_unmap_sgtable at the last complete (the original nents),
 * dma_sync_sgtable_for_device/for_cpu for iovmSync.
 *
 * Device state: numAddressBits narrower than the device's DMA mask narrows
 * the mask (dma_set_mask_and_coherent) for the dma_map call only and
 * restores it (serialised per mapper; the driver's own mappings of @dev
 * made meanwhile see the narrower, i.e. safe, mask). With dma-direct, a
 * mapping that must bounce (a page above that mask, or swiotlb=force) is
 * refused up front (kIOReturnMessageTooLarge, instead of the kernel's WARN)
 * when there is no swiotlb or the limit is below 4 GiB (the swiotlb pool
 * is only promised to be below 4 GiB). With an IOMMU the IOVAs are
 * allocated below the limit; kIOReturnNoResources when the kernel refuses
 * the mask (dma_set_mask). The device's min_align_mask is raised to
 * PAGE_SIZE - 1 once, here, when the device has dma_parms, so swiotlb keeps
 * each byte's page offset as an IOMMU does (it cannot change while mappings
 * live: swiotlb recomputes slots with it). max_seg_size is left alone:
 * IODMACommand cuts segments at maxSegmentSize itself.
 *
 * mapToPhysicalAddress returns 0 (unknown: the DMA API has no reverse
 * lookup). +1, or NULL for a NULL @dev or no memory. The device must
 * outlive the mapper (no get_device: that and dma_map_sgtable are
 * GPL-only exports; this mapper uses plain EXPORT_SYMBOLs only). A mapping
 * the kernel refuses (dma_map_sg_attrs returns 0: IOVA space or swiotlb
 * slots exhausted) -> kIOReturnNoResources. Process context (may sleep).
 */
IOMEM_API IOMapper *iomem_linux_mapper_for_device(struct device *dev);
#endif


/* >>mappedio ============================================================== */
/*
 * IOMappedRead8..64 / IOMappedWrite8..64 (reference §4.3): a physical
 * access of exactly that width. @address is whatever getPhysicalSegment
 * returned: with a system mapper it is an IOVA, translated first through
 * mapToPhysicalAddress; without one it is the physical address. No
 * alignment or error return, as in IOKit. Per backend:
 *   POSIX      the software machine: a registered MMIO window
 *              (iomem_posix_mmio_register) gets a callback with the offset
 *              and width; else the wired RAM frame behind the address
 *              (exact-width volatile access; an unaligned access that
 *              crosses a page is copied bytewise)
 *   bare metal the platform's phys_to_virt hook, exact-width volatile
 *   Linux      RAM (pfn_valid): kmap_local + exact-width access; anything
 *              else: ioremap + readb..readq / writeb..writeq (may sleep)
 * An address with nothing behind it (no RAM, no MMIO window, an IOVA the
 * mapper has not mapped, ioremap failing): reported with IOMEM_DEBUG
 * ("IOMappedRead32: nothing at physical 0x..."), reads return all ones,
 * writes are dropped - never a crash (a PCI master abort looks the same).
 * Thread-safety: as the memory behind; the system mapper rule of the C
 * accessors applies.
 */
IOMEM_API UInt8  IOMappedRead8(IOPhysicalAddress address);
IOMEM_API UInt16 IOMappedRead16(IOPhysicalAddress address);
IOMEM_API UInt32 IOMappedRead32(IOPhysicalAddress address);
IOMEM_API UInt64 IOMappedRead64(IOPhysicalAddress address);
IOMEM_API void   IOMappedWrite8(IOPhysicalAddress address, UInt8 value);
IOMEM_API void   IOMappedWrite16(IOPhysicalAddress address, UInt16 value);
IOMEM_API void   IOMappedWrite32(IOPhysicalAddress address, UInt32 value);
IOMEM_API void   IOMappedWrite64(IOPhysicalAddress address, UInt64 value);

#if defined(IOMEM_BACKEND_POSIX)
/* Simulated device registers for the software machine (iomem's addition).
 * @offset is from the window's base, @width the access size in bytes
 * (1, 2, 4, 8); a read returns the value in the low @width bytes. */
typedef uint64_t (*iomem_posix_mmio_read_fn)(void *context, IOByteCount offset, unsigned width);
typedef void     (*iomem_posix_mmio_write_fn)(void *context, IOByteCount offset, unsigned width, uint64_t value);

enum { IOMEM_POSIX_MMIO_WINDOWS = 16 };   /* windows registered at once */

/**
 * iomem_posix_mmio_register - route IOMappedRead/Write of physical
 * [@base, @base + @length) to @read_cb / @write_cb with @context (a NULL
 * callback: reads give all ones / writes are dropped). A window takes
 * precedence over RAM frames at the same address. Returns
 * kIOReturnSuccess; kIOReturnBadArgument (@length 0, a range past 2^64,
 * both callbacks NULL); kIOReturnBusy (overlaps a registered window);
 * kIOReturnNoResources (IOMEM_POSIX_MMIO_WINDOWS already registered).
 * Thread-safe; callbacks run without iomem's locks held (they may call
 * IOMappedRead/Write themselves).
 */
IOMEM_API IOReturn iomem_posix_mmio_register(IOPhysicalAddress base, IOByteCount length,
                                             iomem_posix_mmio_read_fn read_cb,
                                             iomem_posix_mmio_write_fn write_cb, void *context);
/**
 * iomem_posix_mmio_unregister - remove the window registered at @base.
 * kIOReturnNotFound when there is none. Thread-safe; an access already in
 * a callback of this window may still be running when it returns.
 */
IOMEM_API IOReturn iomem_posix_mmio_unregister(IOPhysicalAddress base);
#endif

/* >>cache ================================================================= */
/**
 * IOFlushProcessorCache - clean (write back) the data cache over
 * [@address, @address + @length) of @task (reference §4.4), so a device
 * that does not snoop sees the data.
 * Returns kIOReturnSuccess; kIOReturnUnsupported for a task other than
 * kernel_task (as IOKit), and on Linux architectures other than x86 (no
 * cache clean is exported to modules; use the DMA API there). Per backend:
 * POSIX no-op (the host is coherent); bare metal the platform's
 * cache_flush hook (clean + invalidate; without a hook the architecture's
 * default: M7 SCB by address, ARMv8-A dc civac, RISC-V Zicbom, x86 clflush,
 * nothing on cores without a data cache);
 * Linux x86 no-op (DMA is cache-coherent). Length 0: success. Thread-safe.
 */
IOMEM_API IOReturn IOFlushProcessorCache(task_t task, IOVirtualAddress address, IOByteCount length);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* !IOMEM__BACKEND_CONFLICT */
#endif /* IOMEM_MAP_H_INCLUDED */

/* >>implementation ======================================================== */

#if defined(IOMEM_IMPLEMENTATION) && !defined(IOMEM_MAP__IMPLEMENTATION_INCLUDED) && \
    !defined(IOMEM__BACKEND_CONFLICT)
#define IOMEM_MAP__IMPLEMENTATION_INCLUDED 1

/* >>impl-mapper: the IOMapper object, the system mapper ----------------- */

struct IOMapper {
	const iomem_mapper_ops *ops;
	void                   *context;
	uint32_t                refcount;
};

static iomem__mutex iomem__mapper_system_lock = IOMEM__MUTEX_INITIALIZER(iomem__mapper_system_lock);
static IOMapper *iomem__mapper_system;
/* The system mapper's software IOMMU state when it is one (else NULL): the
 * C accessors' hot path reads this one pointer. */
static void *iomem__mapper_system_sw;
IOMEM__PRIVATE void iomem__swiommu_destroy(IOMapper *mapper);

/* The system mapper is also read without the lock (the C accessors,
 * IOMappedRead/Write): a release store, an acquire load. */
#if defined(__GNUC__) || defined(__clang__)
#  define IOMEM__MAP_LOAD_PTR(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#  define IOMEM__MAP_STORE_PTR(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#else
#  define IOMEM__MAP_LOAD_PTR(p)     (*(p))
#  define IOMEM__MAP_STORE_PTR(p, v) (*(p) = (v))
#endif

IOMEM_API IOMapper *iomem_mapper_withOps(const iomem_mapper_ops *ops, void *context)
{
	IOMapper *m;
	if (ops == NULL || ops->getPageSize == NULL || ops->iovmMapMemory == NULL ||
	    ops->iovmUnmapMemory == NULL || ops->mapToPhysicalAddress == NULL)
		return NULL;
	m = (IOMapper *)iomem__alloc_internal(sizeof *m, "IOMapper");
	if (m == NULL)
		return NULL;
	m->ops = ops;
	m->context = context;
	m->refcount = 1;
	return m;
}

IOMEM_API void *iomem_mapper_getContext(IOMapper *mapper)
{
	return mapper ? mapper->context : NULL;
}

IOMEM_API void IOMapper_retain(IOMapper *mapper)
{
	if (mapper != NULL)
		iomem__ref_retain(&mapper->refcount);
}

IOMEM_API void IOMapper_release(IOMapper *mapper)
{
	if (mapper == NULL || iomem__ref_release(&mapper->refcount) != 0)
		return;
	if (mapper->ops->free != NULL)
		mapper->ops->free(mapper);
	iomem__free_internal(mapper, sizeof *mapper, "IOMapper");
}

IOMEM_API void iomem_mapper_set_system(IOMapper *mapper)
{
	IOMapper *old;
	IOMapper_retain(mapper);
	iomem__mutex_lock(&iomem__mapper_system_lock);
	old = iomem__mapper_system;
	IOMEM__MAP_STORE_PTR(&iomem__mapper_system, mapper);
	IOMEM__MAP_STORE_PTR(&iomem__mapper_system_sw,
	                     mapper != NULL && mapper->ops->free == iomem__swiommu_destroy ? mapper->context : NULL);
	iomem__mutex_unlock(&iomem__mapper_system_lock);
	IOMapper_release(old);
}

IOMEM_API IOMapper *iomem_mapper_copy_system(void)
{
	IOMapper *m;
	iomem__mutex_lock(&iomem__mapper_system_lock);
	m = iomem__mapper_system;
	IOMapper_retain(m);
	iomem__mutex_unlock(&iomem__mapper_system_lock);
	return m;
}

IOMEM_API uint64_t IOMapper_getPageSize(IOMapper *mapper)
{
	return mapper ? mapper->ops->getPageSize(mapper) : 0;
}

IOMEM_API IOReturn IOMapper_iovmMapMemory(IOMapper *mapper, IOMemoryDescriptor *memory,
        uint64_t descriptorOffset, uint64_t length, uint32_t mapOptions,
        const IODMAMapSpecification *mapSpecification, IODMACommand *dmaCommand,
        const void *pageList, uint64_t *mapAddress, uint64_t *mapLength)
{
	if (mapper == NULL || memory == NULL || length == 0 || mapAddress == NULL || mapLength == NULL ||
	    descriptorOffset > IOMemoryDescriptor_getLength(memory) ||
	    length > IOMemoryDescriptor_getLength(memory) - descriptorOffset)
		return kIOReturnBadArgument;
	return mapper->ops->iovmMapMemory(mapper, memory, descriptorOffset, length, mapOptions,
	                                  mapSpecification, dmaCommand, pageList, mapAddress, mapLength);
}

IOMEM_API IOReturn IOMapper_iovmUnmapMemory(IOMapper *mapper, IOMemoryDescriptor *memory,
        IODMACommand *dmaCommand, uint64_t mapAddress, uint64_t mapLength)
{
	if (mapper == NULL || mapLength == 0)
		return kIOReturnBadArgument;
	return mapper->ops->iovmUnmapMemory(mapper, memory, dmaCommand, mapAddress, mapLength);
}

IOMEM_API IOReturn IOMapper_iovmInsert(IOMapper *mapper, uint32_t options, uint64_t mapAddress,
        uint64_t offset, uint64_t physicalAddress, uint64_t length)
{
	if (mapper == NULL || length == 0)
		return kIOReturnBadArgument;
	if (mapper->ops->iovmInsert == NULL)
		return kIOReturnUnsupported;
	return mapper->ops->iovmInsert(mapper, options, mapAddress, offset, physicalAddress, length);
}

IOMEM_API uint64_t IOMapper_mapToPhysicalAddress(IOMapper *mapper, uint64_t mappedAddress)
{
	return mapper ? mapper->ops->mapToPhysicalAddress(mapper, mappedAddress) : mappedAddress;
}

/* >>impl-memmap: IOMemoryMap -------------------------------------------- */

#if defined(IOMEM_BACKEND_POSIX)
#include <errno.h>
#endif

struct IOMemoryMap {
	IOMemoryMap        *next;          /* in memory->iomem__maps (iomem__map_lock) */
	IOMemoryDescriptor *memory;        /* retained */
	IOMemoryMap        *super;         /* retained: a sub-map shares its address */
	task_t              task;          /* NULL once unmapped */
	mach_vm_address_t   address;       /* 0 once unmapped */
	mach_vm_size_t      offset, length;
	uintptr_t           reserve;       /* address space this map owns (guards included), 0: none */
	vm_size_t           reserve_bytes;
	uint8_t             ioremapped;    /* Linux: reserve is an ioremap (else a vmap) */
	void               *pages;         /* Linux vmap: its struct page array (a reference each) */
	IOOptionBits        options;
	uint32_t            refcount;
};

/* Guards every descriptor's map list and the address/reserve of every map
 * (IOKit: the global memory lock). Never held across an allocation or a
 * system call, so a spinlock (Linux) is fine. */
static iomem__mutex iomem__map_lock = IOMEM__MUTEX_INITIALIZER(iomem__map_lock);

/* ---- the pieces of a descriptor, as kernel_task virtual ranges --------- */

typedef IOReturn (*iomem__map_piece_fn)(void *ctx, uintptr_t va, IOByteCount len);

/* Physical bytes -> the virtual pages holding them (a page at a time: the
 * frames of a range need not be virtually contiguous). Only RAM the
 * platform can translate back; Linux: none (Unsupported). */
IOMEM__PRIVATE IOReturn iomem__map_phys_pieces(IOPhysicalAddress pa, IOByteCount len,
                                               iomem__map_piece_fn fn, void *ctx)
{
#if defined(IOMEM_BACKEND_POSIX) || defined(IOMEM_BACKEND_BAREMETAL)
	IOByteCount page = (IOByteCount)iomem__platform_page_size();
	while (len > 0) {
		IOByteCount n = page - (pa & (page - 1));
		void *va;
		IOReturn ret;
		if (n > len)
			n = len;
#if defined(IOMEM_BACKEND_POSIX)
		va = iomem_posix_phys_to_virt(pa);
#else
		va = iomem__platform_phys_to_virt(pa);
#endif
		if (va == NULL)
			return kIOReturnUnsupported;
		ret = fn(ctx, (uintptr_t)va, n);
		if (ret != kIOReturnSuccess)
			return ret;
		pa += n;
		len -= n;
	}
	return kIOReturnSuccess;
#elif defined(IOMEM_BACKEND_LINUX)
	/* RAM through the linear map (all of it on 64-bit; highmem: none) */
	while (len > 0) {
		IOByteCount n = PAGE_SIZE - (pa & ~(IOPhysicalAddress)PAGE_MASK);
		unsigned long pfn = (unsigned long)(pa >> PAGE_SHIFT);
		void *va;
		IOReturn ret;
		if (n > len)
			n = len;
		va = pfn_valid(pfn) ? page_address(pfn_to_page(pfn)) : NULL;
		if (va == NULL)
			return kIOReturnUnsupported;
		ret = fn(ctx, (uintptr_t)va + (uintptr_t)(pa & ~(IOPhysicalAddress)PAGE_MASK), n);
		if (ret != kIOReturnSuccess)
			return ret;
		pa += n;
		len -= n;
	}
	return kIOReturnSuccess;
#else
	(void)pa; (void)len; (void)fn; (void)ctx;
	return kIOReturnUnsupported;
#endif
}

/* Calls @fn for the virtual pieces of bytes [@off, @off + @len) of @md, in
 * order (the caller checked the range). Recursion depth = nesting depth. */
IOMEM__PRIVATE IOReturn iomem__map_pieces(IOMemoryDescriptor *md, IOByteCount off, IOByteCount len,
                                          iomem__map_piece_fn fn, void *ctx)
{
	IOReturn ret = kIOReturnSuccess;
	IOByteCount start = 0, n;
	uint32_t i;
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_GENERAL:
	case IOMEM_MD_BUFFER:
	case IOMEM_MD_DEVICE:
		if (md->iomem__u.g.user != NULL)
			goto by_segments;          /* user addresses: not the kernel's */
		for (i = 0; i < md->iomem__u.g.count && len > 0; i++) {
			const IOAddressRange *r = &md->iomem__u.g.ranges[i];
			IOByteCount end = start + r->length;
			if (off < end) {
				n = end - off < len ? end - off : len;
				if (md->iomem__physical)
					ret = iomem__map_phys_pieces(r->address + (off - start), n, fn, ctx);
				else
					ret = fn(ctx, (uintptr_t)(r->address + (off - start)), n);
				if (ret != kIOReturnSuccess)
					return ret;
				off += n;
				len -= n;
			}
			start = end;
		}
		break;
	case IOMEM_MD_SUB:
		return iomem__map_pieces(md->iomem__u.sub.parent, md->iomem__u.sub.offset + off, len, fn, ctx);
	case IOMEM_MD_MULTI:
		for (i = 0; i < md->iomem__u.multi.count && len > 0; i++) {
			IOByteCount end = md->iomem__u.multi.end[i];
			if (off < end) {
				n = end - off < len ? end - off : len;
				ret = iomem__map_pieces(md->iomem__u.multi.child[i], off - start, n, fn, ctx);
				if (ret != kIOReturnSuccess)
					return ret;
				off += n;
				len -= n;
			}
			start = end;
		}
		break;
	case IOMEM_MD_INTERLEAVED:
		for (i = 0; i < md->iomem__u.il.count && len > 0; i++) {
			IOByteCount end = md->iomem__u.il.end[i];
			if (off < end) {
				n = end - off < len ? end - off : len;
				ret = iomem__map_pieces(md->iomem__u.il.slice[i].md,
				                        md->iomem__u.il.slice[i].offset + (off - start), n, fn, ctx);
				if (ret != kIOReturnSuccess)
					return ret;
				off += n;
				len -= n;
			}
			start = end;
		}
		break;
	case IOMEM_MD_CUSTOM:
	by_segments:
		/* only its physical segments are known (it must be prepared) */
		while (len > 0) {
			IOByteCount seg = 0;
			addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, kIOMemoryMapperNone);
			if (pa == 0 || seg == 0)
				return kIOReturnUnsupported;
			n = seg < len ? seg : len;
			ret = iomem__map_phys_pieces(pa, n, fn, ctx);
			if (ret != kIOReturnSuccess)
				return ret;
			off += n;
			len -= n;
		}
		break;
	}
	return len == 0 ? kIOReturnSuccess : kIOReturnBadArgument;
}

/* What the pieces of a range allow (pass 1), and the state of pass 2. */
typedef struct iomem__map_plan {
	IOByteCount done;          /* bytes seen so far */
	uintptr_t   first, next;   /* byte 0's address; where a contiguous next piece starts */
	uintptr_t   mask;          /* mapping granule - 1 (POSIX: the host page) */
	uintptr_t   base;          /* pass 2: the page of byte 0 in the new mapping */
	int         prot;          /* pass 2 */
	bool        contiguous;    /* all pieces virtually contiguous */
	bool        aligned;       /* separate pieces meet on page boundaries */
	bool        aliasable;     /* POSIX: every byte is memfd RAM */
} iomem__map_plan;

IOMEM__PRIVATE IOReturn iomem__map_plan_piece(void *ctx, uintptr_t va, IOByteCount len)
{
	iomem__map_plan *p = (iomem__map_plan *)ctx;
	if (len == 0)
		return kIOReturnSuccess;
	if (p->done == 0) {
		p->first = va;
	} else if (va != p->next) {
		/* a separate piece: it gets its own pages, so it must start on a
		 * page, where the bytes before it end */
		p->contiguous = false;
		if ((va & p->mask) != 0 || ((p->first + p->done) & p->mask) != 0)
			p->aligned = false;
	}
	p->next = va + (uintptr_t)len;
	p->done += len;
#if defined(IOMEM_BACKEND_POSIX)
	while (p->aliasable) {
		uint64_t o;
		vm_size_t avail;
		if (iomem__posix_ram_lookup(va, &o, &avail) < 0)
			p->aliasable = false;
		else if (avail >= len)
			break;
		else {
			va += avail;
			len -= avail;
		}
	}
#endif
	return kIOReturnSuccess;
}

IOMEM__PRIVATE IOReturn iomem__map_plan_make(IOMemoryDescriptor *md, IOByteCount off, IOByteCount len,
                                             iomem__map_plan *p)
{
	iomem__memset(p, 0, sizeof *p);
#if defined(IOMEM_BACKEND_POSIX)
	p->mask = (uintptr_t)iomem__posix_host_page_size() - 1;
#else
	p->mask = (uintptr_t)iomem__platform_page_size() - 1;
#endif
	p->contiguous = p->aligned = p->aliasable = true;
	return iomem__map_pieces(md, off, len, iomem__map_plan_piece, p);
}

#if defined(IOMEM_BACKEND_POSIX)
/* Pass 2: mmap each piece from its memfd at its place in the mapping. */
IOMEM__PRIVATE IOReturn iomem__map_alias_piece(void *ctx, uintptr_t va, IOByteCount len)
{
	iomem__map_plan *p = (iomem__map_plan *)ctx;
	uintptr_t pos = (p->first & p->mask) + (uintptr_t)p->done;   /* from base */
	p->done += len;
	while (len > 0) {
		uint64_t o;
		vm_size_t avail;
		int fd = iomem__posix_ram_lookup(va, &o, &avail);
		uintptr_t in = va & p->mask;
		IOByteCount n;
		vm_size_t bytes;
		if (fd < 0)
			return kIOReturnUnsupported;
		n = len < avail ? len : avail;
		bytes = (vm_size_t)((in + n + p->mask) & ~(IOByteCount)p->mask);
		if (mmap((void *)(p->base + pos - in), bytes, p->prot, MAP_SHARED | MAP_FIXED, fd,
		         (off_t)(o - in)) == MAP_FAILED)
			return kIOReturnVMError;
		va += (uintptr_t)n;
		pos += (uintptr_t)n;
		len -= n;
	}
	return kIOReturnSuccess;
}

/* PROT_NONE address space: anywhere (@hint 0), at @hint without replacing
 * anything (@replace false; NULL when taken), or over whatever is there. */
IOMEM__PRIVATE void *iomem__map_reserve(uintptr_t hint, vm_size_t bytes, bool replace)
{
	int flags = MAP_PRIVATE, fd = -1;
	void *p;
#if defined(MAP_ANONYMOUS)
	flags |= MAP_ANONYMOUS;
#else
	fd = open("/dev/zero", O_RDWR);
	if (fd < 0)
		return NULL;
#endif
	if (hint != 0 && replace)
		flags |= MAP_FIXED;
#if defined(MAP_FIXED_NOREPLACE)
	else if (hint != 0)
		flags |= MAP_FIXED_NOREPLACE;
#endif
	p = mmap((void *)hint, bytes, PROT_NONE, flags, fd, 0);
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED)
		return NULL;
	if (hint != 0 && (uintptr_t)p != hint) {    /* a kernel that took it as a hint */
		munmap(p, bytes);
		return NULL;
	}
	return p;
}

IOMEM__PRIVATE IOReturn iomem__map_alias(IOMemoryDescriptor *md, IOMemoryMap *m, mach_vm_address_t at,
                                         iomem__map_plan *p)
{
	uintptr_t pageoff = p->first & p->mask;
	vm_size_t span, guard = 0, total;
	void *r;
	IOReturn ret;
	if (m->length > (mach_vm_size_t)(IOMEM_ALLOC_SIZE_MAX / 2))
		return kIOReturnNoMemory;
	span = (vm_size_t)((pageoff + m->length + p->mask) & ~(mach_vm_size_t)p->mask);
	if (m->options & kIOMapGuardedMask)        /* one VM page, or 64 KiB, on each side */
		guard = (m->options & kIOMapGuardedLarge) ? (vm_size_t)65536 : iomem__platform_page_size();
	total = span + 2 * guard;
	if (m->options & kIOMapAnywhere) {
		r = IOMEM__FAIL_POINT() ? NULL : iomem__map_reserve(0, total, false);
		if (r == NULL)
			return kIOReturnNoMemory;
	} else {
		if ((at & p->mask) != pageoff)
			return kIOReturnNotAligned;
		if ((mach_vm_address_t)(uintptr_t)at != at || at - pageoff > (mach_vm_address_t)(UINTPTR_MAX - total))
			return kIOReturnNoSpace;
		r = iomem__map_reserve((uintptr_t)(at - pageoff), total, (m->options & kIOMapOverwrite) != 0);
		if (r == NULL)
			return kIOReturnNoSpace;
	}
	p->base = (uintptr_t)r + guard;
	p->prot = (m->options & kIOMapReadOnly) ? PROT_READ : PROT_READ | PROT_WRITE;
	p->done = 0;
	ret = iomem__map_pieces(md, (IOByteCount)m->offset, (IOByteCount)m->length, iomem__map_alias_piece, p);
	if (ret != kIOReturnSuccess) {
		munmap(r, total);
		return ret;
	}
	m->address = (mach_vm_address_t)(p->base + pageoff);
	m->reserve = (uintptr_t)r;
	m->reserve_bytes = total;
	return kIOReturnSuccess;
}
#endif /* IOMEM_BACKEND_POSIX */

#if defined(IOMEM_BACKEND_LINUX)
/* The pgprot of a cache mode for RAM, false when the kernel has none. */
IOMEM__PRIVATE bool iomem__linux_map_prot(IOOptionBits options, pgprot_t *prot)
{
	pgprot_t p = (options & kIOMapReadOnly) ? PAGE_KERNEL_RO : PAGE_KERNEL;
	switch (options & kIOMapCacheMask) {
	case kIOMapDefaultCache:
	case kIOMapCopybackCache:
	case kIOMapCopybackInnerCache:
		break;
	case kIOMapInhibitCache:
	case kIOMapPostedWrite:
	case kIOMapPostedReordered:
	case kIOMapPostedCombinedReordered:
		p = pgprot_noncached(p);
		break;
#if defined(CONFIG_X86)
	/* cachemode2protval: the PAT bits (a plain export, unlike
	 * pgprot_writecombine / pgprot_writethrough) */
	case kIOMapWriteCombineCache:
		p = __pgprot((pgprot_val(p) & ~_PAGE_CACHE_MASK) | cachemode2protval(_PAGE_CACHE_MODE_WC));
		break;
	case kIOMapWriteThruCache:
		p = __pgprot((pgprot_val(p) & ~_PAGE_CACHE_MASK) | cachemode2protval(_PAGE_CACHE_MODE_WT));
		break;
#else
	case kIOMapWriteCombineCache:
		p = pgprot_writecombine(p);
		break;
#endif
	default:
		return false;
	}
	*prot = p;
	return true;
}

/* Pass 2 on Linux: the struct page of every mapped page, in order. A piece
 * that continues the previous one mid-page shares its last page. */
typedef struct iomem__linux_pages {
	struct page **pages;
	unsigned long n, cap;
	uintptr_t     next;     /* where a piece continuing the last page starts */
} iomem__linux_pages;

IOMEM__PRIVATE IOReturn iomem__linux_map_piece(void *ctx, uintptr_t va, IOByteCount len)
{
	iomem__linux_pages *l = (iomem__linux_pages *)ctx;
	uintptr_t a = va & PAGE_MASK, end = va + (uintptr_t)len;
	if (len == 0)
		return kIOReturnSuccess;
	if (l->n > 0 && va == l->next && (va & ~PAGE_MASK) != 0)
		a += PAGE_SIZE;                        /* its first page is already there */
	for (; a < end; a += PAGE_SIZE) {
		struct page *pg = virt_addr_valid((void *)a) ? virt_to_page((void *)a)
		                                             : vmalloc_to_page((void *)a);
		if (pg == NULL || l->n >= l->cap)
			return kIOReturnUnsupported;     /* nothing mapped there */
		l->pages[l->n++] = pg;
	}
	l->next = end;
	return kIOReturnSuccess;
}

/* One physical range that is not RAM: ioremap with the cache mode. */
IOMEM__PRIVATE IOReturn iomem__linux_map_io(IOMemoryMap *m, IOPhysicalAddress pa)
{
	IOPhysicalAddress base = pa & PAGE_MASK;
	vm_size_t bytes = (vm_size_t)PAGE_ALIGN((pa - base) + m->length);
	void __iomem *v;
	if (m->options & kIOMapReadOnly)
		return kIOReturnUnsupported;
	switch (m->options & kIOMapCacheMask) {
	case kIOMapDefaultCache:
	case kIOMapInhibitCache:
	case kIOMapPostedWrite:
	case kIOMapPostedReordered:
	case kIOMapPostedCombinedReordered:
		v = ioremap(base, bytes);
		break;
	case kIOMapWriteCombineCache:
		v = ioremap_wc(base, bytes);
		break;
	case kIOMapWriteThruCache:
		v = ioremap_wt(base, bytes);
		break;
	case kIOMapCopybackCache:
	case kIOMapCopybackInnerCache:
		v = ioremap_cache(base, bytes);
		break;
	default:
		return kIOReturnUnsupported;
	}
	if (v == NULL)
		return kIOReturnVMError;
	m->reserve = (uintptr_t)v;
	m->reserve_bytes = bytes;
	m->ioremapped = 1;
	m->address = (mach_vm_address_t)((uintptr_t)v + (uintptr_t)(pa - base));
	return kIOReturnSuccess;
}

/* A new kernel mapping of the pieces (@p from pass 1). */
IOMEM__PRIVATE IOReturn iomem__linux_map(IOMemoryDescriptor *md, IOMemoryMap *m, const iomem__map_plan *p)
{
	iomem__linux_pages l;
	pgprot_t prot;
	void *v = NULL;
	unsigned long i = 0;
	IOReturn ret;
	if (!(m->options & kIOMapAnywhere))
		return kIOReturnUnsupported;           /* vmap picks the address */
	if ((m->options & kIOMapGuardedMask) == kIOMapGuardedLarge)
		return kIOReturnUnsupported;           /* the guard is vmalloc's one page */
	if (!iomem__linux_map_prot(m->options, &prot))
		return kIOReturnUnsupported;
	l.cap = (unsigned long)(((p->first & ~PAGE_MASK) + m->length + PAGE_SIZE - 1) >> PAGE_SHIFT);
	l.n = 0;
	l.next = 0;
	l.pages = (struct page **)kvmalloc_array(l.cap, sizeof *l.pages, GFP_KERNEL);
	if (l.pages == NULL)
		return kIOReturnNoMemory;
	ret = iomem__map_pieces(md, (IOByteCount)m->offset, (IOByteCount)m->length, iomem__linux_map_piece, &l);
	if (ret == kIOReturnSuccess && l.n != l.cap)
		ret = kIOReturnNotAligned;             /* not reached: pass 1 checked */
	if (ret == kIOReturnSuccess) {
		v = vmap(l.pages, (unsigned int)l.n, VM_MAP, prot);
		if (v == NULL)
			ret = kIOReturnNoMemory;
	}
	if (ret != kIOReturnSuccess) {
		kvfree(l.pages);
		return ret;
	}
	/* vmap takes no page references: the map holds one on every
	 * refcounted page, so pages outlive a complete (user memory unpinned,
	 * then unmapped by the process) while the map lives. A page without a
	 * count of its own (a tail of a non-compound high-order allocation)
	 * stays its allocator's. Bit 0 of the entry (struct pages are
	 * aligned) records the reference for unmap. */
	for (i = 0; i < l.n; i++)
		if (folio_try_get(page_folio(l.pages[i])))
			l.pages[i] = (struct page *)((uintptr_t)l.pages[i] | 1u);
	m->reserve = (uintptr_t)v;
	m->reserve_bytes = (vm_size_t)l.n << PAGE_SHIFT;
	m->pages = l.pages;
	m->ioremapped = 0;
	m->address = (mach_vm_address_t)((uintptr_t)v + (p->first & ~PAGE_MASK));
	return kIOReturnSuccess;
}
#endif /* IOMEM_BACKEND_LINUX */

/* The backend's doMap: sets m->address (and what the map owns). */
IOMEM__PRIVATE IOReturn iomem__map_do(IOMemoryDescriptor *md, IOMemoryMap *m, mach_vm_address_t at)
{
	iomem__map_plan p;
	IOOptionBits o = m->options;
	bool own;
	IOReturn ret;
#if defined(IOMEM_BACKEND_LINUX)
	if (IOMEM__MD_IS_GENERAL(md) && md->iomem__physical) {
		/* device memory: one range, no struct pages -> ioremap */
		IOByteCount seg = 0;
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, (IOByteCount)m->offset, &seg,
		                                                    kIOMemoryMapperNone);
		if (pa != 0 && !pfn_valid((unsigned long)(pa >> PAGE_SHIFT))) {
			if (seg < m->length || !(o & kIOMapAnywhere))
				return kIOReturnUnsupported;
			return iomem__linux_map_io(m, pa);
		}
	}
#endif
	ret = iomem__map_plan_make(md, (IOByteCount)m->offset, (IOByteCount)m->length, &p);
	if (ret != kIOReturnSuccess)
		return ret;
#if defined(IOMEM_BACKEND_POSIX)
	if (p.aliasable) {
		if (!p.aligned)
			return kIOReturnNotAligned;
		return iomem__map_alias(md, m, at, &p);
	}
#endif
#if defined(IOMEM_BACKEND_LINUX)
	if (!p.aligned)
		return kIOReturnNotAligned;
	/* IOKit's same-task rule (below), for the cache modes the linear map
	 * and vmalloc already have; anything else is a new mapping */
	own = p.contiguous && (md->iomem__kind == IOMEM_MD_GENERAL || md->iomem__kind == IOMEM_MD_BUFFER) &&
	      !md->iomem__physical && md->iomem__u.g.user == NULL && md->iomem__u.g.count == 1 &&
	      m->offset == 0 && (o & kIOMapAnywhere) &&
	      !(o & (kIOMapUnique | kIOMapReadOnly | kIOMapGuardedMask)) &&
	      ((o & kIOMapCacheMask) == kIOMapDefaultCache || (o & kIOMapCacheMask) == kIOMapCopybackCache);
	(void)at;
	if (!own)
		return iomem__linux_map(md, m, &p);
#else
	if (!p.contiguous)
		return p.aligned ? kIOReturnUnsupported : kIOReturnNotAligned;
#if defined(IOMEM_BACKEND_BAREMETAL)
	/* one address space: the memory is mapped where it is */
	own = !(o & (kIOMapReadOnly | kIOMapGuardedMask)) &&
	      ((o & kIOMapAnywhere) || at == (mach_vm_address_t)p.first);
#else
	/* IOKit's same-task rule (IOGeneralMemoryDescriptor::doMap): one
	 * virtual range of the task, mapped whole from its start, anywhere,
	 * not unique, not guarded; read-only too, since a real read-only
	 * alias is impossible here */
	own = (md->iomem__kind == IOMEM_MD_GENERAL || md->iomem__kind == IOMEM_MD_BUFFER) &&
	      !md->iomem__physical && md->iomem__u.g.count == 1 && m->offset == 0 &&
	      (o & kIOMapAnywhere) && !(o & (kIOMapUnique | kIOMapReadOnly | kIOMapGuardedMask));
	(void)at;
#endif
	if (!own)
		return kIOReturnUnsupported;
#endif /* !IOMEM_BACKEND_LINUX */
	m->address = (mach_vm_address_t)p.first;
	m->options |= kIOMapStatic;
	return kIOReturnSuccess;
}

/* copyCompatible (reference §4.2): may @m serve the request? Map lock held. */
IOMEM__PRIVATE bool iomem__map_compatible(const IOMemoryMap *m, task_t task, mach_vm_address_t at,
                                          IOOptionBits options, mach_vm_size_t offset, mach_vm_size_t length)
{
	IOOptionBits cache = options & kIOMapCacheMask;
	if (m->address == 0 || m->task != task || (m->options & kIOMapUnique))
		return false;
	if ((m->options ^ options) & (kIOMapReadOnly | kIOMapGuardedMask))
		return false;
	if (cache != kIOMapDefaultCache && cache != (m->options & kIOMapCacheMask))
		return false;
	if (offset < m->offset || offset - m->offset > m->length || length > m->length - (offset - m->offset))
		return false;
	if (!(options & kIOMapAnywhere) && at != m->address + (offset - m->offset))
		return false;
	return true;
}

IOMEM__PRIVATE IOMemoryMap *iomem__map_new(IOMemoryDescriptor *md, task_t task, IOOptionBits options,
                                           mach_vm_size_t offset, mach_vm_size_t length)
{
	IOMemoryMap *m = (IOMemoryMap *)iomem__alloc_internal(sizeof *m, "IOMemoryMap");
	if (m == NULL)
		return NULL;
	m->memory = md;
	m->task = task;
	m->options = options;
	m->offset = offset;
	m->length = length;
	m->refcount = 1;
	return m;
}

/* Publishes @m (retaining its descriptor) in the descriptor's list. */
IOMEM__PRIVATE void iomem__map_link(IOMemoryMap *m)
{
	IOMemoryDescriptor_retain(m->memory);
	iomem__mutex_lock(&iomem__map_lock);
	m->next = m->memory->iomem__maps;
	m->memory->iomem__maps = m;
	iomem__mutex_unlock(&iomem__map_lock);
}

/* Takes @m out of its descriptor's list. Map lock held. */
IOMEM__PRIVATE void iomem__map_unlink_locked(IOMemoryMap *m)
{
	IOMemoryMap **pp = &m->memory->iomem__maps;
	while (*pp != NULL && *pp != m)
		pp = &(*pp)->next;
	if (*pp == m)
		*pp = m->next;
	m->next = NULL;
}

IOMEM_API IOReturn iomem_md_createMappingInTask(IOMemoryDescriptor *md, task_t intoTask,
        mach_vm_address_t atAddress, IOOptionBits options, mach_vm_size_t offset,
        mach_vm_size_t length, IOMemoryMap **map)
{
	IOMemoryMap *m, *found = NULL;
	IOReturn ret;
	if (map == NULL)
		return kIOReturnBadArgument;
	*map = NULL;
	if (md == NULL || intoTask == NULL)
		return kIOReturnBadArgument;
	if (intoTask != kernel_task)
		return kIOReturnUnsupported;
	if (length == 0)
		length = md->iomem__length;
	if (length == 0 || offset > md->iomem__length || length > md->iomem__length - offset)
		return kIOReturnBadArgument;
	if ((options & kIOMapGuardedMask) && !(options & kIOMapAnywhere))
		return kIOReturnBadArgument;
	if (!(options & kIOMapAnywhere) && atAddress == 0)
		return kIOReturnBadArgument;

	if (options & kIOMapStatic) {
		/* setMapping: record what the caller mapped */
		m = iomem__map_new(md, intoTask, options & ~(IOOptionBits)kIOMapAnywhere, offset, length);
		if (m == NULL)
			return kIOReturnNoMemory;
		m->address = atAddress;
		iomem__map_link(m);
		*map = m;
		return kIOReturnSuccess;
	}
	if (!(options & kIOMapUnique)) {
		iomem__mutex_lock(&iomem__map_lock);
		for (found = md->iomem__maps; found != NULL; found = found->next)
			if (iomem__map_compatible(found, intoTask, atAddress, options, offset, length))
				break;
		if (found != NULL)
			iomem__ref_retain(&found->refcount);
		iomem__mutex_unlock(&iomem__map_lock);
		if (found != NULL && found->offset == offset && found->length == length) {
			*map = found;                    /* the same object, +1 */
			return kIOReturnSuccess;
		}
	}
	if (found == NULL && (options & kIOMapReference))
		return kIOReturnNotFound;
	if (found != NULL) {
		/* a sub-map sharing the live map's address; it keeps our reference */
		m = iomem__map_new(md, intoTask, (options & ~(IOOptionBits)kIOMapCacheMask) |
		                   (found->options & kIOMapCacheMask), offset, length);
		if (m == NULL) {
			IOMemoryMap_release(found);
			return kIOReturnNoMemory;
		}
		m->super = found;
		m->address = found->address + (offset - found->offset);
		iomem__map_link(m);
		*map = m;
		return kIOReturnSuccess;
	}
	m = iomem__map_new(md, intoTask, options, offset, length);
	if (m == NULL)
		return kIOReturnNoMemory;
	ret = iomem__map_do(md, m, atAddress);
	if (ret != kIOReturnSuccess) {
		iomem__free_internal(m, sizeof *m, "IOMemoryMap");
		return ret;
	}
	iomem__map_link(m);
	*map = m;
	return kIOReturnSuccess;
}

IOMEM_API IOMemoryMap *IOMemoryDescriptor_createMappingInTask(IOMemoryDescriptor *md, task_t intoTask,
        mach_vm_address_t atAddress, IOOptionBits options, mach_vm_size_t offset, mach_vm_size_t length)
{
	IOMemoryMap *m;
	(void)iomem_md_createMappingInTask(md, intoTask, atAddress, options, offset, length, &m);
	return m;
}

IOMEM_API IOMemoryMap *IOMemoryDescriptor_map(IOMemoryDescriptor *md, IOOptionBits options)
{
	IOMemoryMap *m;
	(void)iomem_md_createMappingInTask(md, kernel_task, 0, options | kIOMapAnywhere, 0, 0, &m);
	return m;
}

IOMEM_API IOMemoryMap *IOMemoryDescriptor_setMapping(IOMemoryDescriptor *md, task_t task,
        IOVirtualAddress mapAddress, IOOptionBits options)
{
	IOMemoryMap *m;
	(void)iomem_md_createMappingInTask(md, task, (mach_vm_address_t)mapAddress, options | kIOMapStatic, 0, 0, &m);
	return m;
}

IOMEM_API void IOMemoryMap_retain(IOMemoryMap *map)
{
	if (map != NULL)
		iomem__ref_retain(&map->refcount);
}

IOMEM_API void IOMemoryMap_release(IOMemoryMap *map)
{
	uint32_t left;
	if (map == NULL)
		return;
#if (defined(__GNUC__) || defined(__clang__)) && !defined(IOMEM_BACKEND_BAREMETAL)
	{
		/* not the last reference: drop it without the lock (a lookup
		 * only ever raises a count it sees under the lock, so this can
		 * never hide a 1 -> 0 from it) */
		uint32_t c = __atomic_load_n(&map->refcount, __ATOMIC_RELAXED);
		while (c > 1)
			if (__atomic_compare_exchange_n(&map->refcount, &c, c - 1, true,
			                                __ATOMIC_RELEASE, __ATOMIC_RELAXED))
				return;
	}
#endif
	/* the last one under the lock, so a reuse lookup never retains a
	 * dying map */
	iomem__mutex_lock(&iomem__map_lock);
	left = iomem__ref_release(&map->refcount);
	if (left == 0)
		iomem__map_unlink_locked(map);
	iomem__mutex_unlock(&iomem__map_lock);
	if (left != 0)
		return;
	(void)IOMemoryMap_unmap(map);
	IOMemoryDescriptor_release(map->memory);
	IOMemoryMap_release(map->super);
	iomem__free_internal(map, sizeof *map, "IOMemoryMap");
}

IOMEM_API uint32_t iomem_map_getRetainCount(IOMemoryMap *map)
{
	return map ? IOMEM__LOAD_RELAXED32(&map->refcount) : 0;
}

IOMEM_API IOVirtualAddress IOMemoryMap_getVirtualAddress(IOMemoryMap *map)
{
	return map ? (IOVirtualAddress)map->address : 0;
}

IOMEM_API mach_vm_address_t IOMemoryMap_getAddress(IOMemoryMap *map)
{
	return map ? map->address : 0;
}

IOMEM_API IOByteCount IOMemoryMap_getLength(IOMemoryMap *map)
{
	return map ? (IOByteCount)map->length : 0;
}

IOMEM_API mach_vm_size_t IOMemoryMap_getSize(IOMemoryMap *map)
{
	return map ? map->length : 0;
}

IOMEM_API task_t IOMemoryMap_getAddressTask(IOMemoryMap *map)
{
	if (map == NULL || map->address == 0)
		return NULL;
	return map->super != NULL ? IOMemoryMap_getAddressTask(map->super) : map->task;
}

IOMEM_API IOMemoryDescriptor *IOMemoryMap_getMemoryDescriptor(IOMemoryMap *map)
{
	return map ? map->memory : NULL;
}

IOMEM_API IOOptionBits IOMemoryMap_getMapOptions(IOMemoryMap *map)
{
	return map ? map->options : 0;
}

IOMEM_API IOPhysicalAddress IOMemoryMap_getPhysicalSegment(IOMemoryMap *map, IOByteCount offset,
        IOByteCount *length, IOOptionBits options)
{
	IOByteCount l = 0;
	addr64_t pa = 0;
	if (map != NULL && offset < map->length) {
		pa = IOMemoryDescriptor_getPhysicalSegment(map->memory, (IOByteCount)map->offset + offset, &l, options);
		if (l > map->length - offset)
			l = (IOByteCount)map->length - offset;
	}
	if (length != NULL)
		*length = l;
	return pa;
}

IOMEM_API IOPhysicalAddress IOMemoryMap_getPhysicalAddress(IOMemoryMap *map)
{
	return IOMemoryMap_getPhysicalSegment(map, 0, NULL, 0);
}

IOMEM_API IOReturn IOMemoryMap_unmap(IOMemoryMap *map)
{
	uintptr_t r;
	vm_size_t bytes;
#if defined(IOMEM_BACKEND_LINUX)
	struct page **pages;
#endif
	if (map == NULL)
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__map_lock);
	r = map->reserve;
	bytes = map->reserve_bytes;
#if defined(IOMEM_BACKEND_LINUX)
	pages = (struct page **)map->pages;
	map->pages = NULL;
#endif
	map->reserve = 0;
	map->address = 0;
	map->task = NULL;
	iomem__mutex_unlock(&iomem__map_lock);
#if defined(IOMEM_BACKEND_POSIX)
	if (r != 0)
		munmap((void *)r, bytes);
#elif defined(IOMEM_BACKEND_LINUX)
	if (r != 0 && map->ioremapped) {
		iounmap((void __iomem *)r);
	} else if (r != 0) {
		unsigned long i, n = (unsigned long)(bytes >> PAGE_SHIFT);
		vunmap((void *)r);
		for (i = 0; i < n; i++)
			if ((uintptr_t)pages[i] & 1u)
				put_page((struct page *)((uintptr_t)pages[i] & ~(uintptr_t)1u));
		kvfree(pages);
	}
#else
	(void)r; (void)bytes;
#endif
	return kIOReturnSuccess;
}

IOMEM_API IOReturn IOMemoryMap_redirect(IOMemoryMap *map, IOMemoryDescriptor *newBackingMemory,
        IOOptionBits options, mach_vm_size_t offset)
{
#if defined(IOMEM_BACKEND_POSIX)
	uintptr_t mask = (uintptr_t)iomem__posix_host_page_size() - 1, base;
	vm_size_t bytes;
	int prot;
	iomem__map_plan p;
	IOMemoryDescriptor *old;
	IOReturn ret;
#endif
	(void)options;
	if (map == NULL)
		return kIOReturnBadArgument;
	if (map->address == 0)
		return kIOReturnNotReady;
	if (map->reserve == 0)
		return kIOReturnUnsupported;     /* not an address iomem allocated */
#if defined(IOMEM_BACKEND_POSIX)
	base = (uintptr_t)map->address & ~mask;
	bytes = (vm_size_t)((((uintptr_t)map->address & mask) + map->length + mask) & ~(mach_vm_size_t)mask);
	prot = (map->options & kIOMapReadOnly) ? PROT_READ : PROT_READ | PROT_WRITE;
	if (newBackingMemory == NULL)
		return mprotect((void *)base, bytes, PROT_NONE) == 0 ? kIOReturnSuccess : kIOReturnVMError;
	if (newBackingMemory == map->memory && offset == map->offset)
		return mprotect((void *)base, bytes, prot) == 0 ? kIOReturnSuccess : kIOReturnVMError;
	if (offset > newBackingMemory->iomem__length || map->length > newBackingMemory->iomem__length - offset)
		return kIOReturnBadArgument;
	if (!(map->options & kIOMapUnique))
		return kIOReturnUnsupported;
	ret = iomem__map_plan_make(newBackingMemory, (IOByteCount)offset, (IOByteCount)map->length, &p);
	if (ret != kIOReturnSuccess)
		return ret;
	if (!p.aliasable)
		return kIOReturnUnsupported;
	if (!p.aligned || (p.first & mask) != ((uintptr_t)map->address & mask))
		return kIOReturnNotAligned;
	p.base = base;
	p.prot = prot;
	p.done = 0;
	ret = iomem__map_pieces(newBackingMemory, (IOByteCount)offset, (IOByteCount)map->length,
	                        iomem__map_alias_piece, &p);
	if (ret != kIOReturnSuccess) {
		/* half re-pointed: block it all rather than show a mix */
		(void)iomem__map_reserve(base, bytes, true);
		return ret;
	}
	IOMemoryDescriptor_retain(newBackingMemory);
	iomem__mutex_lock(&iomem__map_lock);
	iomem__map_unlink_locked(map);
	old = map->memory;
	map->memory = newBackingMemory;
	map->offset = offset;
	map->next = newBackingMemory->iomem__maps;
	newBackingMemory->iomem__maps = map;
	iomem__mutex_unlock(&iomem__map_lock);
	IOMemoryDescriptor_release(old);
	return kIOReturnSuccess;
#else
	(void)newBackingMemory; (void)offset;
	return kIOReturnUnsupported;
#endif
}

IOMEM_API IOReturn IOMemoryMap_wireRange(IOMemoryMap *map, uint32_t options, mach_vm_size_t offset,
        mach_vm_size_t length)
{
#if defined(IOMEM_BACKEND_POSIX)
	uintptr_t mask = (uintptr_t)iomem__posix_host_page_size() - 1, start, end;
	int rc;
#endif
	if (map == NULL || length == 0 || offset > map->length || length > map->length - offset)
		return kIOReturnBadArgument;
	if (map->address == 0)
		return kIOReturnNotReady;
#if defined(IOMEM_BACKEND_POSIX)
	start = ((uintptr_t)map->address + (uintptr_t)offset) & ~mask;
	end = ((uintptr_t)map->address + (uintptr_t)(offset + length) + mask) & ~mask;
	if (options & kIODirectionOutIn)
		rc = mlock((void *)start, end - start);
	else
		rc = munlock((void *)start, end - start);
	if (rc != 0)
		return errno == EPERM ? kIOReturnNotPrivileged : kIOReturnNoResources;
#else
	(void)options;
#endif
	return kIOReturnSuccess;
}

IOMEM_API kern_return_t IOMemoryDescriptor_CreateMapping(IOMemoryDescriptor *md, uint64_t options,
        uint64_t address, uint64_t offset, uint64_t length, uint64_t alignment, IOMemoryMap **map)
{
	IOOptionBits o = 0;
	(void)alignment;                    /* ignored by the kernel too */
	if (map != NULL)
		*map = NULL;
	if (md == NULL || map == NULL)
		return kIOReturnBadArgument;
	switch (options & 0xF00u) {
	case kIOMemoryMapCacheModeDefault:      break;
	case kIOMemoryMapCacheModeInhibit:      o |= kIOMapInhibitCache; break;
	case kIOMemoryMapCacheModeCopyback:     o |= kIOMapCopybackCache; break;
	case kIOMemoryMapCacheModeWriteThrough: o |= kIOMapWriteThruCache; break;
	case kIOMemoryMapCacheModeRealTime:     o |= kIOMapRealTimeCache; break;
	default:                                return kIOReturnBadArgument;
	}
	if (options & kIOMemoryMapReadOnly)
		o |= kIOMapReadOnly;
	if (!(options & kIOMemoryMapFixedAddress)) {
		o |= kIOMapAnywhere;
		address = 0;
		switch (options & kIOMemoryMapGuardedMask) {
		case kIOMemoryMapGuardedDefault:
		case kIOMemoryMapGuardedSmall:  o |= kIOMapGuardedSmall; break;
		case kIOMemoryMapGuardedLarge:  o |= kIOMapGuardedLarge; break;
		case kIOMemoryMapGuardedNone:   break;
		default:                        return kIOReturnBadArgument;
		}
	}
	return iomem_md_createMappingInTask(md, kernel_task, address, o, offset, length, map) == kIOReturnSuccess
	       ? kIOReturnSuccess : kIOReturnError;
}

IOMEM_API uint64_t IOMemoryMap_GetAddress(IOMemoryMap *map) { return map ? map->address : 0; }
IOMEM_API uint64_t IOMemoryMap_GetLength(IOMemoryMap *map)  { return map ? map->length : 0; }
IOMEM_API uint64_t IOMemoryMap_GetOffset(IOMemoryMap *map)  { return map ? map->offset : 0; }
/* >>impl-swiommu: the software IOMMU ------------------------------------ */

/* Page-table entries: the frame's physical address | these bits (a page
 * is present when R is set). A leaf holds 512 entries and, after them, the
 * number of entries present (so a free can see "nothing mapped here" with
 * one load per leaf). */
#define IOMEM__SWIOMMU_R          ((uint64_t)1)
#define IOMEM__SWIOMMU_W          ((uint64_t)2)
#define IOMEM__SWIOMMU_LEAF_SHIFT 9u
#define IOMEM__SWIOMMU_LEAF_N     ((uint64_t)1 << IOMEM__SWIOMMU_LEAF_SHIFT)
#define IOMEM__SWIOMMU_LEAF_BYTES ((vm_size_t)((IOMEM__SWIOMMU_LEAF_N + 1) * sizeof(uint64_t)))

/* The per-thread IOVA cache needs thread-local storage and pthread keys:
 * POSIX with GCC/Clang only. Entries are read without the lock on its
 * paths, so they are relaxed atomics there (plain under the lock
 * elsewhere: 64-bit atomics need libatomic on 32-bit bare-metal cores). */
#if defined(IOMEM_BACKEND_POSIX) && (defined(__GNUC__) || defined(__clang__)) && !defined(IOMEM_SWIOMMU_NO_TLS)
#  define IOMEM__SWIOMMU_MAG 1
#  define IOMEM__PTE_LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#  define IOMEM__PTE_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#  define IOMEM__DIR_LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#  define IOMEM__DIR_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#else
#  define IOMEM__SWIOMMU_MAG 0
#  define IOMEM__PTE_LOAD(p)     (*(p))
#  define IOMEM__PTE_STORE(p, v) (*(p) = (v))
#  define IOMEM__DIR_LOAD(p)     (*(p))
#  define IOMEM__DIR_STORE(p, v) (*(p) = (v))
#endif

typedef struct iomem__swiommu {
	iomem__sleep_lock   lock;
	unsigned            shift;         /* log2 of the IOMMU page */
	unsigned            cpu_shift;     /* log2 of the CPU page at creation */
	uint64_t            mask;          /* IOMMU page - 1 */
	uint64_t            first, count;  /* the space in IOMMU pages: [first, first + count) */
	uint64_t            last32;        /* last page a 32-bit page number can start a range at */
	bool                same_page;     /* IOMMU page == CPU page (the C accessors' hot path) */
	IORangeAllocator   *ra;            /* free IOVA pages (page numbers) */
	uint64_t          **dir;           /* ndir leaves, allocated on first use */
	uint64_t            ndir;
	uint64_t            mapped, maps, unmaps, faults, leaves;
	iomem_swiommu_fault last;
	uint64_t            id;            /* never reused: tags per-thread cache entries */
	struct iomem__swiommu *next;       /* the registry of live IOMMUs (IOMEM__SWIOMMU_MAG) */
} iomem__swiommu;

/* A software IOMMU is recognised by its free hook (C++ has no tentative
 * definition of the ops table; declared with the system mapper above). */

IOMEM_FORCEINLINE iomem__swiommu *iomem__swiommu_of(IOMapper *m)
{
	return (m != NULL && m->ops->free == iomem__swiommu_destroy) ? (iomem__swiommu *)m->context : NULL;
}

/* Whether IOVA pages [page, page + n) lie in the space (no overflow). */
IOMEM_FORCEINLINE bool iomem__swiommu_inside(const iomem__swiommu *s, uint64_t page, uint64_t n)
{
	return page >= s->first && n <= s->count && page - s->first <= s->count - n;
}

/* The entry of an IOVA page inside the space, or NULL when its leaf does
 * not exist yet. */
IOMEM_FORCEINLINE uint64_t *iomem__swiommu_pte(iomem__swiommu *s, uint64_t page)
{
	uint64_t i = page - s->first;
	uint64_t *leaf = IOMEM__DIR_LOAD(&s->dir[i >> IOMEM__SWIOMMU_LEAF_SHIFT]);
	return leaf ? &leaf[i & (IOMEM__SWIOMMU_LEAF_N - 1)] : NULL;
}

/* Lock held: a writer of consecutive entries that looks a leaf up once
 * per 512 entries and updates its count once per leaf (a map writes one
 * entry per page of many runs). Space-relative entry indices. */
typedef struct iomem__swiommu_cur {
	uint64_t *leaf;
	uint64_t  li;        /* the leaf's index in the directory; ~0: none */
	uint64_t  added;     /* entries made present in this leaf, not counted yet */
} iomem__swiommu_cur;

IOMEM_FORCEINLINE void iomem__swiommu_cur_flush(iomem__swiommu *s, iomem__swiommu_cur *c)
{
	if (c->added != 0) {
		IOMEM__PTE_STORE(&c->leaf[IOMEM__SWIOMMU_LEAF_N], c->leaf[IOMEM__SWIOMMU_LEAF_N] + c->added);
		s->mapped += c->added;
		c->added = 0;
	}
}

/* Entries [i, i + np) := @f, @f + @step, ... (@f carries the access bits).
 * False when a leaf cannot be allocated (the entries before stay set). */
IOMEM_FORCEINLINE bool iomem__swiommu_cur_put(iomem__swiommu *s, iomem__swiommu_cur *c, uint64_t i, uint64_t np,
                                              uint64_t f, uint64_t step)
{
	for (; np != 0; np--, i++, f += step) {
		uint64_t *e;
		if (IOMEM_UNLIKELY((i >> IOMEM__SWIOMMU_LEAF_SHIFT) != c->li)) {
			iomem__swiommu_cur_flush(s, c);
			c->li = i >> IOMEM__SWIOMMU_LEAF_SHIFT;
			c->leaf = s->dir[c->li];
			if (c->leaf == NULL) {
				c->leaf = (uint64_t *)iomem__alloc_internal(IOMEM__SWIOMMU_LEAF_BYTES, "iomem_swiommu page table");
				if (c->leaf == NULL) {
					c->li = ~(uint64_t)0;
					return false;
				}
				IOMEM__DIR_STORE(&s->dir[c->li], c->leaf);
				s->leaves++;
			}
		}
		e = &c->leaf[i & (IOMEM__SWIOMMU_LEAF_N - 1)];
		c->added += !(*e & IOMEM__SWIOMMU_R);
		IOMEM__PTE_STORE(e, f);
	}
	return true;
}

/* Lock held: map [page, page + n) to consecutive frames from @pa. False
 * when a leaf cannot be allocated (the pages before it stay mapped). */
IOMEM__PRIVATE bool iomem__swiommu_set(iomem__swiommu *s, uint64_t page, uint64_t n, uint64_t pa, uint64_t bits)
{
	iomem__swiommu_cur c = { NULL, ~(uint64_t)0, 0 };
	bool ok = iomem__swiommu_cur_put(s, &c, page - s->first, n, pa | bits, s->mask + 1);
	iomem__swiommu_cur_flush(s, &c);
	return ok;
}

/* Lock held: unmap [page, page + n) (inside the space). */
IOMEM__PRIVATE void iomem__swiommu_clear(iomem__swiommu *s, uint64_t page, uint64_t n)
{
	while (n != 0) {
		uint64_t i = page - s->first, j = i & (IOMEM__SWIOMMU_LEAF_N - 1), k = IOMEM__SWIOMMU_LEAF_N - j;
		uint64_t *leaf = s->dir[i >> IOMEM__SWIOMMU_LEAF_SHIFT];
		if (k > n)
			k = n;
		if (leaf != NULL && leaf[IOMEM__SWIOMMU_LEAF_N] != 0) {
			uint64_t t, removed = 0;
			for (t = 0; t < k; t++) {
				if (leaf[j + t] != 0) {
					IOMEM__PTE_STORE(&leaf[j + t], 0);
					removed++;
				}
			}
			IOMEM__PTE_STORE(&leaf[IOMEM__SWIOMMU_LEAF_N], leaf[IOMEM__SWIOMMU_LEAF_N] - removed);
			s->mapped -= removed;
		}
		page += k;
		n -= k;
	}
}

/* Whether no page of [page, page + n) (inside the space, n <= 512) is
 * mapped; no lock needed (the caller owns the range). Usually one load per
 * leaf (its count of entries present). */
IOMEM_FORCEINLINE bool iomem__swiommu_none_mapped(iomem__swiommu *s, uint64_t page, uint64_t n)
{
	uint64_t i = page - s->first, e = i + n - 1;
	uint64_t *a = IOMEM__DIR_LOAD(&s->dir[i >> IOMEM__SWIOMMU_LEAF_SHIFT]);
	uint64_t *b = IOMEM__DIR_LOAD(&s->dir[e >> IOMEM__SWIOMMU_LEAF_SHIFT]);
	if (IOMEM_LIKELY((a == NULL || IOMEM__PTE_LOAD(&a[IOMEM__SWIOMMU_LEAF_N]) == 0) &&
	                 (b == NULL || IOMEM__PTE_LOAD(&b[IOMEM__SWIOMMU_LEAF_N]) == 0)))
		return true;
	for (; n != 0; n--, page++) {
		uint64_t *p = iomem__swiommu_pte(s, page);
		if (p != NULL && IOMEM__PTE_LOAD(p) != 0)
			return false;
	}
	return true;
}

/* ---- the per-thread IOVA cache (POSIX) --------------------------------- *
 * Linux's per-CPU "rcache" idea with a thread as the CPU: a thread keeps up
 * to 16 recently freed ranges of each size 1..8 IOMMU pages and 8 larger
 * ones (up to 512 pages, matched by exact size: repeated I/O of one size)
 * of ONE IOMMU,
 * so a hot IOMapperIOVMAlloc/Free pair takes no lock and no atomic
 * read-modify-write. The ranges stay allocated in the range allocator.
 * They go back: when the thread uses another IOMMU, on
 * iomem_swiommu_flush_cache, when an allocation finds the space full, and
 * at thread exit (a pthread key destructor, through the registry of live
 * IOMMUs, so an IOMMU freed meanwhile is never touched). */
#define IOMEM__SWIOMMU_MAG_CLASSES 8u
#define IOMEM__SWIOMMU_MAG_DEPTH   16u
#define IOMEM__SWIOMMU_MAG_BIG     8u     /* larger ranges (9..512 pages), exact size */

#if IOMEM__SWIOMMU_MAG
typedef struct iomem__swiommu_mag {
	uint64_t id;                     /* the IOMMU the entries belong to, 0: none */
	bool     keyed;                  /* the exit destructor is armed */
	uint8_t  count[IOMEM__SWIOMMU_MAG_CLASSES];
	uint8_t  nbig;
	uint64_t page[IOMEM__SWIOMMU_MAG_CLASSES][IOMEM__SWIOMMU_MAG_DEPTH];
	uint64_t big_page[IOMEM__SWIOMMU_MAG_BIG], big_n[IOMEM__SWIOMMU_MAG_BIG];
} iomem__swiommu_mag;

static __thread iomem__swiommu_mag iomem__swiommu_tls;
static iomem__mutex iomem__swiommu_reg_lock = IOMEM__MUTEX_INITIALIZER(iomem__swiommu_reg_lock);
static iomem__swiommu *iomem__swiommu_reg;
static pthread_key_t iomem__swiommu_key;
static pthread_once_t iomem__swiommu_once = PTHREAD_ONCE_INIT;

/* Give @mag's entries back to their IOMMU if it still lives; empty it. */
IOMEM__PRIVATE void iomem__swiommu_mag_drain(iomem__swiommu_mag *mag)
{
	iomem__swiommu *s;
	unsigned k;
	if (mag->id == 0)
		return;
	iomem__mutex_lock(&iomem__swiommu_reg_lock);
	for (s = iomem__swiommu_reg; s != NULL && s->id != mag->id; s = s->next)
		;
	if (s != NULL) {
		iomem__sleep_lock_lock(&s->lock);
		for (k = 0; k < IOMEM__SWIOMMU_MAG_CLASSES; k++)
			while (mag->count[k] != 0)
				IORangeAllocator_deallocate(s->ra, mag->page[k][--mag->count[k]], k + 1);
		while (mag->nbig != 0) {
			mag->nbig--;
			IORangeAllocator_deallocate(s->ra, mag->big_page[mag->nbig], mag->big_n[mag->nbig]);
		}
		iomem__sleep_lock_unlock(&s->lock);
	}
	iomem__mutex_unlock(&iomem__swiommu_reg_lock);
	for (k = 0; k < IOMEM__SWIOMMU_MAG_CLASSES; k++)
		mag->count[k] = 0;
	mag->nbig = 0;
	mag->id = 0;
}

static void iomem__swiommu_thread_exit(void *p)
{
	iomem__swiommu_mag_drain((iomem__swiommu_mag *)p);
}

static void iomem__swiommu_key_create(void)
{
	(void)pthread_key_create(&iomem__swiommu_key, iomem__swiommu_thread_exit);
}

/* Make this thread's cache @s's (draining another IOMMU's entries). */
IOMEM__PRIVATE IOMEM__NOINLINE iomem__swiommu_mag *iomem__swiommu_mag_claim(iomem__swiommu *s)
{
	iomem__swiommu_mag *mag = &iomem__swiommu_tls;
	if (!mag->keyed) {
		(void)pthread_once(&iomem__swiommu_once, iomem__swiommu_key_create);
		if (pthread_setspecific(iomem__swiommu_key, mag) != 0)
			return NULL;         /* no destructor: do not cache */
		mag->keyed = true;
	}
	iomem__swiommu_mag_drain(mag);
	mag->id = s->id;
	return mag;
}
#endif

/* The per-thread cache's hit paths (inlined): false = take the locked
 * path. Pop: a cached range of exactly @n pages whose start is aligned to
 * @align pages (0: 1) and that ends at or below page @limit. Push: a range
 * of @n pages with nothing mapped in it (else its pages must be cleared
 * under the lock). */
IOMEM_FORCEINLINE bool iomem__swiommu_mag_pop(iomem__swiommu *s, uint64_t n, uint64_t align, uint64_t limit,
                                              uint64_t *page)
{
#if IOMEM__SWIOMMU_MAG
	iomem__swiommu_mag *mag = &iomem__swiommu_tls;
	if (IOMEM_LIKELY(mag->id == s->id && n - 1 < IOMEM__SWIOMMU_MAG_CLASSES && mag->count[n - 1] != 0)) {
		uint64_t p = mag->page[n - 1][mag->count[n - 1] - 1];
		if (IOMEM_LIKELY(!(p & (align ? align - 1 : 0)) && p + (n - 1) <= limit)) {
			mag->count[n - 1]--;
			*page = p;
			return true;
		}
	} else if (mag->id == s->id && n > IOMEM__SWIOMMU_MAG_CLASSES && mag->nbig != 0) {
		unsigned j = mag->nbig;
		while (j-- != 0) {             /* newest first */
			uint64_t p = mag->big_page[j];
			if (mag->big_n[j] == n && !(p & (align ? align - 1 : 0)) && p + (n - 1) <= limit) {
				mag->nbig--;
				mag->big_page[j] = mag->big_page[mag->nbig];
				mag->big_n[j] = mag->big_n[mag->nbig];
				*page = p;
				return true;
			}
		}
	}
#else
	(void)s; (void)n; (void)align; (void)limit; (void)page;
#endif
	return false;
}

/* Push a range known to have nothing mapped (the caller just cleared it
 * or checked). */
IOMEM_FORCEINLINE bool iomem__swiommu_mag_push_clean(iomem__swiommu *s, uint64_t page, uint64_t n)
{
#if IOMEM__SWIOMMU_MAG
	iomem__swiommu_mag *mag = &iomem__swiommu_tls;
	if (mag->id != s->id)
		return false;
	if (IOMEM_LIKELY(n - 1 < IOMEM__SWIOMMU_MAG_CLASSES)) {
		if (mag->count[n - 1] >= IOMEM__SWIOMMU_MAG_DEPTH)
			return false;
#if IOMEM__DEBUG
		{
			unsigned j;
			for (j = 0; j < mag->count[n - 1]; j++) {
				if (mag->page[n - 1][j] == page) {
					iomem__report("iomem_swiommu: IOVA page %x (%u pages) freed twice; ignored",
					              (unsigned long long)page, (unsigned long long)n);
					return true;
				}
			}
		}
#endif
		mag->page[n - 1][mag->count[n - 1]++] = page;
		return true;
	}
	if (n > IOMEM__SWIOMMU_LEAF_N || mag->nbig >= IOMEM__SWIOMMU_MAG_BIG)
		return false;
#if IOMEM__DEBUG
	{
		unsigned j;
		for (j = 0; j < mag->nbig; j++) {
			if (mag->big_page[j] == page) {
				iomem__report("iomem_swiommu: IOVA page %x (%u pages) freed twice; ignored",
				              (unsigned long long)page, (unsigned long long)n);
				return true;
			}
		}
	}
#endif
	mag->big_page[mag->nbig] = page;
	mag->big_n[mag->nbig++] = n;
	return true;
#else
	(void)s; (void)page; (void)n;
	return false;
#endif
}

/* Push a range the caller owns if nothing is mapped in it (else its pages
 * must be cleared under the lock first). */
IOMEM_FORCEINLINE bool iomem__swiommu_mag_push(iomem__swiommu *s, uint64_t page, uint64_t n)
{
#if IOMEM__SWIOMMU_MAG
	iomem__swiommu_mag *mag = &iomem__swiommu_tls;
	if (IOMEM_LIKELY(mag->id == s->id && n - 1 < IOMEM__SWIOMMU_MAG_CLASSES &&
	                 mag->count[n - 1] < IOMEM__SWIOMMU_MAG_DEPTH && iomem__swiommu_none_mapped(s, page, n)))
		return iomem__swiommu_mag_push_clean(s, page, n);
	if (mag->id == s->id && n > IOMEM__SWIOMMU_MAG_CLASSES && n <= IOMEM__SWIOMMU_LEAF_N &&
	    mag->nbig < IOMEM__SWIOMMU_MAG_BIG && iomem__swiommu_none_mapped(s, page, n))
		return iomem__swiommu_mag_push_clean(s, page, n);
#else
	(void)s; (void)page; (void)n;
#endif
	return false;
}

/* The locked path of an allocation (see iomem__swiommu_alloc). */
IOMEM__PRIVATE IOMEM__NOINLINE IOReturn iomem__swiommu_alloc_slow(iomem__swiommu *s, uint64_t n, uint64_t align,
                                                                  uint64_t limit, uint64_t *page)
{
	IOReturn st;
	iomem__sleep_lock_lock(&s->lock);
	st = iomem__range_alloc_pages(s->ra, n, 0, align, limit, page);
	iomem__sleep_lock_unlock(&s->lock);
#if IOMEM__SWIOMMU_MAG
	if (st == kIOReturnNoSpace && iomem__swiommu_tls.id == s->id) {   /* give our cached ranges back, retry */
		iomem__swiommu_mag_drain(&iomem__swiommu_tls);
		iomem__sleep_lock_lock(&s->lock);
		st = iomem__range_alloc_pages(s->ra, n, 0, align, limit, page);
		iomem__sleep_lock_unlock(&s->lock);
	}
#endif
	return st;
}

/* The locked path of a free (see iomem__swiommu_free). */
IOMEM__PRIVATE IOMEM__NOINLINE void iomem__swiommu_free_slow(iomem__swiommu *s, uint64_t page, uint64_t n)
{
#if IOMEM__SWIOMMU_MAG
	/* this thread's cache holds another IOMMU's ranges (or none): take it */
	if (iomem__swiommu_tls.id != s->id && n - 1 < IOMEM__SWIOMMU_LEAF_N &&
	    iomem__swiommu_none_mapped(s, page, n) && iomem__swiommu_mag_claim(s) != NULL &&
	    iomem__swiommu_mag_push(s, page, n))
		return;
#endif
	iomem__sleep_lock_lock(&s->lock);
	iomem__swiommu_clear(s, page, n);
	IORangeAllocator_deallocate(s->ra, page, n);
	iomem__sleep_lock_unlock(&s->lock);
}

/* Allocate @n pages aligned to @align pages (0: 1) ending at or below
 * page @limit: the thread's cache, else the range allocator under the
 * lock. Lock NOT held. */
IOMEM_FORCEINLINE IOReturn iomem__swiommu_alloc(iomem__swiommu *s, uint64_t n, uint64_t align, uint64_t limit,
                                                uint64_t *page)
{
	if (iomem__swiommu_mag_pop(s, n, align, limit, page))
		return kIOReturnSuccess;
	return iomem__swiommu_alloc_slow(s, n, align, limit, page);
}

/* Unmap and free pages [page, page + n) (inside the space). */
IOMEM_FORCEINLINE void iomem__swiommu_free(iomem__swiommu *s, uint64_t page, uint64_t n)
{
	if (!iomem__swiommu_mag_push(s, page, n))
		iomem__swiommu_free_slow(s, page, n);
}

/* The last IOVA page an access limited to @bits may use. */
IOMEM_FORCEINLINE uint64_t iomem__swiommu_limit(const iomem__swiommu *s, unsigned bits)
{
	uint64_t last = s->first + s->count - 1;
	if (bits != 0 && bits < 64) {
		uint64_t top = ((uint64_t)1 << bits) >> s->shift;   /* pages below 2^bits */
		if (top == 0)
			return 0;
		if (top - 1 < last)
			last = top - 1;
	}
	return last;
}

/* Runs of a descriptor that has no extents (sub, multi, custom kinds):
 * getPhysicalSegment pieces merged while physically contiguous (as
 * iomem_walk, which iomem_dma.h may not have declared yet in this
 * translation unit). General, buffer and device descriptors are read
 * through their extents directly (iomem__swiommu_map). */
typedef struct iomem__swiommu_walk {
	iomem_md_walk       ext;     /* the extents, when the descriptor has them */
	IOMemoryDescriptor *md;      /* NULL: the extents path */
	IOByteCount         off, end;
} iomem__swiommu_walk;

IOMEM_FORCEINLINE IOByteCount iomem__swiommu_walk_next(iomem__swiommu_walk *w, addr64_t *pa)
{
	IOByteCount len = 0;
	while (w->off < w->end) {
		IOByteCount l = 0;
		addr64_t p = IOMemoryDescriptor_getPhysicalSegment(w->md, w->off, &l, kIOMemoryMapperNone);
		if (p == 0 || l == 0)
			break;               /* (again at the next call: 0, an error) */
		if (l > w->end - w->off)
			l = w->end - w->off;
		if (len != 0 && p != *pa + len)
			break;
		if (len == 0)
			*pa = p;
		len += l;
		w->off += l;
	}
	return len;
}

IOMEM__PRIVATE uint64_t iomem__swiommu_getPageSize(IOMapper *mapper)
{
	return ((iomem__swiommu *)mapper->context)->mask + 1;
}

IOMEM__PRIVATE IOReturn iomem__swiommu_map(IOMapper *mapper, IOMemoryDescriptor *memory, uint64_t descriptorOffset,
                                           uint64_t length, uint32_t mapOptions,
                                           const IODMAMapSpecification *spec, IODMACommand *dmaCommand,
                                           const void *pageList, uint64_t *mapAddress, uint64_t *mapLength)
{
	iomem__swiommu *s = (iomem__swiommu *)mapper->context;
	uint64_t bits = IOMEM__SWIOMMU_R | ((mapOptions & kIODMAMapWriteAccess) ? IOMEM__SWIOMMU_W : 0);
	uint64_t off0, n, align = 0, page, c = 0;
	iomem__swiommu_walk w;
	addr64_t pa = 0;
	IOByteCount len = 0;
	IOReturn st = kIOReturnSuccess;
	(void)dmaCommand;
	(void)pageList;
	if (length > ~(uint64_t)0 - 2 * s->mask)
		return kIOReturnBadArgument;
	if (spec != NULL && spec->alignment > s->mask + 1) {
		if (spec->alignment & (spec->alignment - 1))
			return kIOReturnBadArgument;
		align = spec->alignment >> s->shift;
	}
	w.md = NULL;
	w.off = descriptorOffset;
	w.end = descriptorOffset + length;
	if (iomem_md_walk_init(&w.ext, memory, descriptorOffset)) {
		const iomem_md_extent *e = w.ext.e;     /* extents: read them directly */
		pa = e[w.ext.i].phys + (descriptorOffset - (w.ext.i ? e[w.ext.i - 1].end : 0));
	} else {
		w.md = memory;
		len = iomem__swiommu_walk_next(&w, &pa);
		if (len == 0)
			return kIOReturnNotReady;        /* no physical pages: not prepared */
	}
	off0 = pa & s->mask;
	n = (off0 + length + s->mask) >> s->shift;
	st = iomem__swiommu_alloc(s, n, align, iomem__swiommu_limit(s, spec ? spec->numAddressBits : 0), &page);
	if (st != kIOReturnSuccess)
		return st;
	/* Each run goes at IOVA offset at = off0 + (its descriptor offset -
	 * descriptorOffset). It must have the same offset in its page as in the
	 * IOMMU page (one contiguous IOVA run), and a run that starts inside a
	 * page shares that page with the run before: only allowed when it
	 * continues it physically. The descriptor's lock (getPhysicalSegment)
	 * nests inside ours. */
	iomem__sleep_lock_lock(&s->lock);
	if (w.md == NULL) {
		/* locals: the entry stores may alias any uint64_t in memory */
		iomem__swiommu_cur cur = { NULL, ~(uint64_t)0, 0 };
		const iomem_md_extent *e = w.ext.e;
		const uint64_t mask = s->mask, end = w.end, base_i = page - s->first;
		const unsigned shift = s->shift;
		const uint32_t ne = w.ext.n;
		IOByteCount off = descriptorOffset, start = w.ext.i ? e[w.ext.i - 1].end : 0;
		uint32_t k;
		uint64_t prev_end = pa;
		for (k = w.ext.i; off < end; k++) {
			IOByteCount ee, at, ke;
			uint64_t p;
			if (k >= ne) {
				st = kIOReturnNotReady;
				break;
			}
			ke = e[k].end;
			ee = ke < end ? ke : end;
			p = e[k].phys + (off - start);
			at = off0 + (off - descriptorOffset);
			if (((p ^ at) & mask) != 0 || ((at & mask) != 0 && p != prev_end)) {
				st = kIOReturnNotAligned;
				break;
			}
			if (!iomem__swiommu_cur_put(s, &cur, base_i + (at >> shift),
			                            ((at + (ee - off) - 1) >> shift) - (at >> shift) + 1,
			                            (p - (at & mask)) | bits, mask + 1)) {
				st = kIOReturnNoMemory;
				break;
			}
			prev_end = p + (ee - off);
			off = ee;
			start = ke;
		}
		iomem__swiommu_cur_flush(s, &cur);
	} else {
		uint64_t prev_end = pa;
		for (;;) {
			uint64_t at = off0 + c;
			if (((pa ^ at) & s->mask) != 0 || ((at & s->mask) != 0 && pa != prev_end)) {
				st = kIOReturnNotAligned;
				break;
			}
			if (!iomem__swiommu_set(s, page + (at >> s->shift),
			                        ((at + len - 1) >> s->shift) - (at >> s->shift) + 1, pa - (at & s->mask),
			                        bits)) {
				st = kIOReturnNoMemory;
				break;
			}
			prev_end = pa + len;
			c += len;
			if (c >= length)
				break;
			len = iomem__swiommu_walk_next(&w, &pa);
			if (len == 0) {
				st = kIOReturnNotReady;
				break;
			}
		}
	}
	if (st != kIOReturnSuccess) {
		iomem__swiommu_clear(s, page, n);
		IORangeAllocator_deallocate(s->ra, page, n);
	} else {
		s->maps++;
	}
	iomem__sleep_lock_unlock(&s->lock);
	if (st == kIOReturnSuccess) {
		*mapAddress = (page << s->shift) + off0;
		*mapLength = n << s->shift;
	}
	return st;
}

IOMEM__PRIVATE IOReturn iomem__swiommu_unmap(IOMapper *mapper, IOMemoryDescriptor *memory, IODMACommand *dmaCommand,
                                             uint64_t mapAddress, uint64_t mapLength)
{
	iomem__swiommu *s = (iomem__swiommu *)mapper->context;
	uint64_t page = mapAddress >> s->shift, n = (mapLength >> s->shift) + ((mapLength & s->mask) != 0);
	(void)memory;
	(void)dmaCommand;
	if (!iomem__swiommu_inside(s, page, n))
		return kIOReturnBadArgument;
#if IOMEM__SWIOMMU_MAG
	if (iomem__swiommu_tls.id == 0)      /* an empty cache: take it (no lock needed) */
		(void)iomem__swiommu_mag_claim(s);
#endif
	iomem__sleep_lock_lock(&s->lock);
	iomem__swiommu_clear(s, page, n);
	if (!iomem__swiommu_mag_push_clean(s, page, n))   /* this thread's cache, else the allocator */
		IORangeAllocator_deallocate(s->ra, page, n);
	s->unmaps++;
	iomem__sleep_lock_unlock(&s->lock);
	return kIOReturnSuccess;
}

IOMEM__PRIVATE IOReturn iomem__swiommu_insert(IOMapper *mapper, uint32_t options, uint64_t mapAddress, uint64_t offset,
                                              uint64_t physicalAddress, uint64_t length)
{
	iomem__swiommu *s = (iomem__swiommu *)mapper->context;
	uint64_t iova = mapAddress + offset, page, n, bits;
	if (iova < mapAddress || length > ~(uint64_t)0 - 2 * s->mask)
		return kIOReturnBadArgument;
	if ((iova ^ physicalAddress) & s->mask)
		return kIOReturnNotAligned;
	page = iova >> s->shift;
	n = ((iova & s->mask) + length + s->mask) >> s->shift;
	if (!iomem__swiommu_inside(s, page, n))
		return kIOReturnBadArgument;
	/* no access bits (the legacy calls): read/write */
	bits = IOMEM__SWIOMMU_R |
	       ((options & kIODMAMapWriteAccess) || !(options & kIODMAMapReadAccess) ? IOMEM__SWIOMMU_W : 0);
	iomem__sleep_lock_lock(&s->lock);
	if (!iomem__swiommu_set(s, page, n, physicalAddress & ~s->mask, bits)) {
		iomem__swiommu_clear(s, page, n);
		iomem__sleep_lock_unlock(&s->lock);
		return kIOReturnNoMemory;
	}
	iomem__sleep_lock_unlock(&s->lock);
	return kIOReturnSuccess;
}

IOMEM__PRIVATE uint64_t iomem__swiommu_to_phys(IOMapper *mapper, uint64_t mappedAddress)
{
	iomem__swiommu *s = (iomem__swiommu *)mapper->context;
	uint64_t page = mappedAddress >> s->shift, pa = 0, *e;
	if (!iomem__swiommu_inside(s, page, 1))
		return 0;
	iomem__sleep_lock_lock(&s->lock);
	e = iomem__swiommu_pte(s, page);
	if (e != NULL && (*e & IOMEM__SWIOMMU_R))
		pa = (*e & ~s->mask) | (mappedAddress & s->mask);
	iomem__sleep_lock_unlock(&s->lock);
	return pa;
}

IOMEM__PRIVATE IOReturn iomem__swiommu_iova_alloc(IOMapper *mapper, uint64_t pages, uint32_t mapOptions, uint64_t *iova)
{
	iomem__swiommu *s = (iomem__swiommu *)mapper->context;
	uint64_t page, align = 0;
	IOReturn st;
	(void)mapOptions;
	if (pages == 0 || iova == NULL)
		return kIOReturnBadArgument;
	if (s->cpu_shift > s->shift)         /* keep CPU-page numbers exact */
		align = (uint64_t)1 << (s->cpu_shift - s->shift);
	st = iomem__swiommu_alloc(s, pages, align, s->first + s->count - 1, &page);
	if (st == kIOReturnSuccess)
		*iova = page << s->shift;
	return st;
}

IOMEM__PRIVATE void iomem__swiommu_iova_free(IOMapper *mapper, uint64_t iova, uint64_t pages)
{
	iomem__swiommu *s = (iomem__swiommu *)mapper->context;
	uint64_t page = iova >> s->shift;
	if (pages == 0 || (iova & s->mask) || !iomem__swiommu_inside(s, page, pages)) {
#if IOMEM__DEBUG
		iomem__report("iomem_swiommu: iovaFree(%x, %u pages) outside the IOVA space or misaligned; ignored",
		              (unsigned long long)iova, (unsigned long long)pages);
#endif
		return;
	}
	iomem__swiommu_free(s, page, pages);
}

IOMEM__PRIVATE void iomem__swiommu_destroy(IOMapper *mapper)
{
	iomem__swiommu *s = (iomem__swiommu *)mapper->context;
	uint64_t i;
#if IOMEM__SWIOMMU_MAG
	iomem__swiommu **pp;
	iomem__mutex_lock(&iomem__swiommu_reg_lock);
	for (pp = &iomem__swiommu_reg; *pp != NULL && *pp != s; pp = &(*pp)->next)
		;
	if (*pp != NULL)
		*pp = s->next;
	iomem__mutex_unlock(&iomem__swiommu_reg_lock);
	if (iomem__swiommu_tls.id == s->id) {   /* ours: just forget them */
		iomem__swiommu_tls.id = 0;
		iomem__memset(iomem__swiommu_tls.count, 0, sizeof iomem__swiommu_tls.count);
	}
#endif
	for (i = 0; i < s->ndir; i++)
		if (s->dir[i] != NULL)
			iomem__free_internal(s->dir[i], IOMEM__SWIOMMU_LEAF_BYTES, "iomem_swiommu page table");
	iomem__free_internal(s->dir, (vm_size_t)s->ndir * sizeof(uint64_t *), "iomem_swiommu directory");
	IORangeAllocator_release(s->ra);
	iomem__sleep_lock_destroy(&s->lock);
	iomem__free_internal(s, sizeof *s, "iomem_swiommu");
}

static const iomem_mapper_ops iomem__swiommu_ops = {
	"iomem_swiommu",
	iomem__swiommu_getPageSize,
	iomem__swiommu_map,
	iomem__swiommu_unmap,
	iomem__swiommu_insert,
	iomem__swiommu_to_phys,
	iomem__swiommu_iova_alloc,
	iomem__swiommu_iova_free,
	iomem__swiommu_destroy,
	NULL, NULL, NULL          /* one IOVA run per mapping: no extent lists */
};

IOMEM_API IOMapper *iomem_swiommu_create(const iomem_swiommu_desc *desc)
{
	static uint64_t next_id;
	uint64_t pg = (desc != NULL && desc->page_size != 0) ? desc->page_size : (uint64_t)iomem__platform_page_size();
	unsigned bits = (desc != NULL && desc->address_bits != 0) ? desc->address_bits : 32u, shift = 0;
	uint64_t base, size, top_pages;
	iomem__swiommu *s;
	IOMapper *m;
	if (pg < 512 || pg > ((uint64_t)1 << 30) || (pg & (pg - 1)) || bits < 20 || bits > 64)
		return NULL;
	while (((uint64_t)1 << shift) < pg)
		shift++;
	top_pages = (uint64_t)1 << (bits - shift);        /* pages below 2^bits */
	base = (desc != NULL && desc->iova_base != 0) ? desc->iova_base : pg;
	if ((base & (pg - 1)) || (base >> shift) >= top_pages)
		return NULL;
	size = (desc != NULL && desc->iova_size != 0) ? desc->iova_size >> shift : top_pages - (base >> shift);
	if ((desc != NULL && (desc->iova_size & (pg - 1))) || size == 0 || size > ((uint64_t)1 << 30) ||
	    size > top_pages - (base >> shift))
		return NULL;
	s = (iomem__swiommu *)iomem__alloc_internal(sizeof *s, "iomem_swiommu");
	if (s == NULL)
		return NULL;
	s->shift = shift;
	s->cpu_shift = iomem__page_shift();
	s->mask = pg - 1;
	s->first = base >> shift;
	s->count = size;
	s->last32 = s->first + size - 1 < 0xFFFFFFFFu ? s->first + size - 1 : 0xFFFFFFFFu;
	s->same_page = s->cpu_shift == shift;
	s->ndir = (size + IOMEM__SWIOMMU_LEAF_N - 1) >> IOMEM__SWIOMMU_LEAF_SHIFT;
	s->dir = (uint64_t **)iomem__alloc_internal((vm_size_t)s->ndir * sizeof(uint64_t *), "iomem_swiommu directory");
	s->ra = IORangeAllocator_withRange(0, 1, 64, IOMEM_RANGE_CACHE);
	if (s->dir == NULL || s->ra == NULL || !iomem__sleep_lock_init(&s->lock)) {
		if (s->dir != NULL)
			iomem__free_internal(s->dir, (vm_size_t)s->ndir * sizeof(uint64_t *), "iomem_swiommu directory");
		IORangeAllocator_release(s->ra);
		iomem__free_internal(s, sizeof *s, "iomem_swiommu");
		return NULL;
	}
	IORangeAllocator_deallocate(s->ra, s->first, size);
	m = iomem_mapper_withOps(&iomem__swiommu_ops, s);
	if (m == NULL) {
		IORangeAllocator_release(s->ra);
		iomem__sleep_lock_destroy(&s->lock);
		iomem__free_internal(s->dir, (vm_size_t)s->ndir * sizeof(uint64_t *), "iomem_swiommu directory");
		iomem__free_internal(s, sizeof *s, "iomem_swiommu");
		return NULL;
	}
	iomem__mutex_lock(&iomem__mapper_system_lock);     /* any process-wide lock will do */
	s->id = ++next_id;
	iomem__mutex_unlock(&iomem__mapper_system_lock);
#if IOMEM__SWIOMMU_MAG
	iomem__mutex_lock(&iomem__swiommu_reg_lock);
	s->next = iomem__swiommu_reg;
	iomem__swiommu_reg = s;
	iomem__mutex_unlock(&iomem__swiommu_reg_lock);
#endif
	return m;
}

IOMEM_API bool iomem_swiommu_is(IOMapper *mapper)
{
	return iomem__swiommu_of(mapper) != NULL;
}

IOMEM_API IOReturn iomem_swiommu_translate(IOMapper *mapper, uint64_t iova, uint64_t length, bool write,
                                           IOPhysicalAddress *pa, uint64_t *contiguous)
{
	iomem__swiommu *s = iomem__swiommu_of(mapper);
	uint64_t need = IOMEM__SWIOMMU_R | (write ? IOMEM__SWIOMMU_W : 0), page, e, cont;
	uint64_t *p;
	iomem_swiommu_fault_reason why = IOMEM_SWIOMMU_FAULT_NONE;
	if (contiguous != NULL)
		*contiguous = 0;
	if (pa != NULL)
		*pa = 0;
	if (s == NULL || pa == NULL || length == 0)
		return kIOReturnBadArgument;
	page = iova >> s->shift;
	iomem__sleep_lock_lock(&s->lock);
	p = iomem__swiommu_inside(s, page, 1) ? iomem__swiommu_pte(s, page) : NULL;
	e = p != NULL ? *p : 0;
	if (!(e & IOMEM__SWIOMMU_R))
		why = IOMEM_SWIOMMU_FAULT_UNMAPPED;
	else if ((e & need) != need)
		why = IOMEM_SWIOMMU_FAULT_READONLY;
	if (why != IOMEM_SWIOMMU_FAULT_NONE) {
		s->faults++;
		s->last.iova = iova;
		s->last.write = write;
		s->last.reason = why;
		iomem__sleep_lock_unlock(&s->lock);
		return why == IOMEM_SWIOMMU_FAULT_UNMAPPED ? kIOReturnVMError : kIOReturnNotWritable;
	}
	*pa = (e & ~s->mask) | (iova & s->mask);
	cont = (s->mask + 1) - (iova & s->mask);
	while (cont < length && iomem__swiommu_inside(s, page + 1, 1)) {
		uint64_t *q = iomem__swiommu_pte(s, ++page), f = q != NULL ? *q : 0;
		if ((f & need) != need || (f & ~s->mask) != (e & ~s->mask) + s->mask + 1)
			break;
		e = f;
		cont += s->mask + 1;
	}
	iomem__sleep_lock_unlock(&s->lock);
	if (contiguous != NULL)
		*contiguous = cont < length ? cont : length;
	return kIOReturnSuccess;
}

IOMEM_API uint64_t iomem_swiommu_faults(IOMapper *mapper, iomem_swiommu_fault *last)
{
	iomem__swiommu *s = iomem__swiommu_of(mapper);
	uint64_t n = 0;
	if (last != NULL) {
		last->iova = 0;
		last->write = false;
		last->reason = IOMEM_SWIOMMU_FAULT_NONE;
	}
	if (s == NULL)
		return 0;
	iomem__sleep_lock_lock(&s->lock);
	n = s->faults;
	if (last != NULL)
		*last = s->last;
	iomem__sleep_lock_unlock(&s->lock);
	return n;
}

IOMEM_API IOReturn iomem_swiommu_get_stats(IOMapper *mapper, iomem_swiommu_stats *out)
{
	iomem__swiommu *s = iomem__swiommu_of(mapper);
	if (s == NULL || out == NULL)
		return kIOReturnBadArgument;
	iomem__memset(out, 0, sizeof *out);
	iomem__sleep_lock_lock(&s->lock);
	out->page_size = s->mask + 1;
	out->iova_base = s->first << s->shift;
	out->iova_size = s->count << s->shift;
	out->iova_free_pages = IORangeAllocator_getFreeCount(s->ra);
	out->mapped_pages = s->mapped;
	out->maps = s->maps;
	out->unmaps = s->unmaps;
	out->faults = s->faults;
	out->table_bytes = (vm_size_t)(s->ndir * sizeof(uint64_t *) + s->leaves * IOMEM__SWIOMMU_LEAF_BYTES);
	iomem__sleep_lock_unlock(&s->lock);
	return kIOReturnSuccess;
}

IOMEM_API void iomem_swiommu_flush_cache(IOMapper *mapper)
{
#if IOMEM__SWIOMMU_MAG
	iomem__swiommu *s = iomem__swiommu_of(mapper);
	if (s != NULL && iomem__swiommu_tls.id == s->id)
		iomem__swiommu_mag_drain(&iomem__swiommu_tls);
#else
	(void)mapper;
#endif
}

/* >>impl-iovm: IOMapperIOVMAlloc and friends ------------------------------ */

/* The system mapper without a reference (see the C accessors' rule). */
IOMEM_FORCEINLINE IOMapper *iomem__mapper_system_peek(void)
{
	return IOMEM__MAP_LOAD_PTR(&iomem__mapper_system);
}

/* IOMMU pages covering @pages CPU pages (@s: the software IOMMU's shifts). */
IOMEM_FORCEINLINE uint64_t iomem__swiommu_cpu_pages(const iomem__swiommu *s, unsigned pages)
{
	if (s->cpu_shift >= s->shift)
		return (uint64_t)pages << (s->cpu_shift - s->shift);
	return ((uint64_t)pages + ((uint64_t)1 << (s->shift - s->cpu_shift)) - 1) >> (s->shift - s->cpu_shift);
}

/* Another mapper: its page size, CPU pages -> its pages by division. */
IOMEM__PRIVATE uint64_t iomem__mapper_pages(IOMapper *m, unsigned pages, unsigned cpu_shift)
{
	uint64_t mpg = IOMapper_getPageSize(m), bytes = (uint64_t)pages << cpu_shift;
	return mpg ? (bytes + mpg - 1) / mpg : 0;
}

IOMEM__PRIVATE IOMEM__NOINLINE ppnum_t iomem__iovm_alloc_slow(unsigned pages)
{
	IOMapper *m = iomem__mapper_system_peek();
	iomem__swiommu *s;
	uint64_t iova, np;
	unsigned cs;
	if (m == NULL || pages == 0)
		return 0;
	s = iomem__swiommu_of(m);
	if (IOMEM_LIKELY(s != NULL)) {
		uint64_t page, align = s->cpu_shift > s->shift ? (uint64_t)1 << (s->cpu_shift - s->shift) : 0;
		np = iomem__swiommu_cpu_pages(s, pages);
		if (iomem__swiommu_alloc(s, np, align, s->first + s->count - 1, &page) != kIOReturnSuccess)
			return 0;
		iova = (page << s->shift) >> s->cpu_shift;
		if (IOMEM_UNLIKELY(iova > 0xFFFFFFFFu)) {
			iomem__swiommu_free(s, page, np);
			return 0;
		}
		return (ppnum_t)iova;
	}
	if (m->ops->iovaAlloc == NULL)
		return 0;
	cs = iomem__page_shift();
	np = iomem__mapper_pages(m, pages, cs);
	if (np == 0 || m->ops->iovaAlloc(m, np, kIODMAMapReadAccess | kIODMAMapWriteAccess, &iova) != kIOReturnSuccess)
		return 0;
	if ((iova & (((uint64_t)1 << cs) - 1)) || (iova >> cs) > 0xFFFFFFFFu || (iova >> cs) == 0) {
		if (m->ops->iovaFree != NULL)
			m->ops->iovaFree(m, iova, np);
		return 0;
	}
	return (ppnum_t)(iova >> cs);
}

IOMEM__PRIVATE IOMEM__NOINLINE void iomem__iovm_free_slow(ppnum_t addr, unsigned pages)
{
	IOMapper *m = iomem__mapper_system_peek();
	iomem__swiommu *s;
	if (m == NULL)
		return;
	if (addr == 0 || pages == 0) {
#if IOMEM__DEBUG
		iomem__report("IOMapperIOVMFree(%x, %u): no such IOVA range; ignored", (unsigned long long)addr,
		              (unsigned long long)pages);
#endif
		return;
	}
	s = iomem__swiommu_of(m);
	if (IOMEM_LIKELY(s != NULL)) {
		uint64_t iova = (uint64_t)addr << s->cpu_shift, np = iomem__swiommu_cpu_pages(s, pages);
		if (IOMEM_UNLIKELY(!iomem__swiommu_inside(s, iova >> s->shift, np))) {
#if IOMEM__DEBUG
			iomem__report("IOMapperIOVMFree(%x, %u): outside the IOVA space; ignored", (unsigned long long)addr,
			              (unsigned long long)pages);
#endif
			return;
		}
		iomem__swiommu_free(s, iova >> s->shift, np);
		return;
	}
	if (m->ops->iovaFree != NULL) {
		unsigned cs = iomem__page_shift();
		m->ops->iovaFree(m, (uint64_t)addr << cs, iomem__mapper_pages(m, pages, cs));
	}
}

/* The hot paths: the system mapper is a software IOMMU whose page is the
 * CPU's, the size is cached (1..8 pages) and this thread's cache can take
 * or give it: a few loads and stores, no lock, no atomic read-modify-write
 * (bench group iova). Everything else: the slow paths above. */
IOMEM_API ppnum_t IOMapperIOVMAlloc(unsigned pages)
{
	iomem__swiommu *s = (iomem__swiommu *)IOMEM__MAP_LOAD_PTR(&iomem__mapper_system_sw);
	uint64_t page;
	if (IOMEM_LIKELY(s != NULL && s->same_page) && iomem__swiommu_mag_pop(s, pages, 0, s->last32, &page))
		return (ppnum_t)page;
	return iomem__iovm_alloc_slow(pages);
}

IOMEM_API void IOMapperIOVMFree(ppnum_t addr, unsigned pages)
{
	iomem__swiommu *s = (iomem__swiommu *)IOMEM__MAP_LOAD_PTR(&iomem__mapper_system_sw);
	if (IOMEM_LIKELY(s != NULL && s->same_page && (uint64_t)addr - s->first < s->count &&
	                 pages <= s->count - ((uint64_t)addr - s->first)) && iomem__swiommu_mag_push(s, addr, pages))
		return;
	iomem__iovm_free_slow(addr, pages);
}

IOMEM_API ppnum_t IOMapperInsertPage(ppnum_t addr, unsigned offset, ppnum_t page)
{
	IOMapper *m = iomem__mapper_system_peek();
	unsigned cs;
	uint64_t at;
	if (m == NULL)
		return page;                       /* identity */
	if (addr == 0) {
#if IOMEM__DEBUG
		iomem__report("IOMapperInsertPage(0, %u, %x): IOVA page 0 (IOKit panics)", (unsigned long long)offset,
		              (unsigned long long)page);
#endif
		return 0;
	}
	at = (uint64_t)addr + offset;
	if (at > 0xFFFFFFFFu)
		return 0;
	cs = iomem__swiommu_of(m) != NULL ? iomem__swiommu_of(m)->cpu_shift : iomem__page_shift();
	if (IOMapper_iovmInsert(m, kIODMAMapReadAccess | kIODMAMapWriteAccess, (uint64_t)addr << cs,
	                        (uint64_t)offset << cs, (uint64_t)page << cs, (uint64_t)1 << cs) != kIOReturnSuccess)
		return 0;
	return (ppnum_t)at;
}

IOMEM_API void IOMapperInsertPPNPages(ppnum_t addr, unsigned offset, ppnum_t *pageList, IOItemCount pageCount)
{
	IOMapper *m = iomem__mapper_system_peek();
	unsigned cs;
	IOItemCount i, j;
	if (m == NULL || pageCount == 0)
		return;                            /* identity: nothing to map */
	if (addr == 0 || pageList == NULL) {
#if IOMEM__DEBUG
		iomem__report("IOMapperInsertPPNPages(%x, %u, %p, %u): IOVA page 0 or no page list", (unsigned long long)addr,
		              (unsigned long long)offset, (void *)pageList, (unsigned long long)pageCount);
#endif
		return;
	}
	cs = iomem__swiommu_of(m) != NULL ? iomem__swiommu_of(m)->cpu_shift : iomem__page_shift();
	for (i = 0; i < pageCount; i = j) {      /* one insert per physically contiguous run */
		for (j = i + 1; j < pageCount && pageList[j] == pageList[j - 1] + 1; j++)
			;
		if (IOMapper_iovmInsert(m, kIODMAMapReadAccess | kIODMAMapWriteAccess, (uint64_t)addr << cs,
		                        ((uint64_t)offset + i) << cs, (uint64_t)pageList[i] << cs,
		                        (uint64_t)(j - i) << cs) != kIOReturnSuccess) {
#if IOMEM__DEBUG
			iomem__report("IOMapperInsertPPNPages(%x, %u, ...): page %u refused by the mapper", (unsigned long long)addr,
			              (unsigned long long)offset, (unsigned long long)i);
#endif
			return;
		}
	}
}

/* >>impl-mappedio: IOMappedRead/Write ------------------------------------- */

#if defined(IOMEM_BACKEND_POSIX)
typedef struct iomem__mmio_window {
	IOPhysicalAddress         base;
	IOByteCount               length;    /* 0: a free slot */
	iomem_posix_mmio_read_fn  read_cb;
	iomem_posix_mmio_write_fn write_cb;
	void                     *context;
} iomem__mmio_window;

static iomem__mmio_window iomem__mmio[IOMEM_POSIX_MMIO_WINDOWS];
static iomem__mutex iomem__mmio_lock = IOMEM__MUTEX_INITIALIZER(iomem__mmio_lock);

IOMEM_API IOReturn iomem_posix_mmio_register(IOPhysicalAddress base, IOByteCount length,
                                             iomem_posix_mmio_read_fn read_cb,
                                             iomem_posix_mmio_write_fn write_cb, void *context)
{
	unsigned i, freeslot = IOMEM_POSIX_MMIO_WINDOWS;
	IOReturn st = kIOReturnSuccess;
	if (length == 0 || length - 1 > ~base || (read_cb == NULL && write_cb == NULL))
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__mmio_lock);
	for (i = 0; i < IOMEM_POSIX_MMIO_WINDOWS; i++) {
		const iomem__mmio_window *w = &iomem__mmio[i];
		if (w->length == 0) {
			if (freeslot == IOMEM_POSIX_MMIO_WINDOWS)
				freeslot = i;
		} else if (base <= w->base + (w->length - 1) && w->base <= base + (length - 1)) {
			st = kIOReturnBusy;
		}
	}
	if (st == kIOReturnSuccess && freeslot == IOMEM_POSIX_MMIO_WINDOWS)
		st = kIOReturnNoResources;
	if (st == kIOReturnSuccess) {
		iomem__mmio_window *w = &iomem__mmio[freeslot];
		w->base = base;
		w->length = length;
		w->read_cb = read_cb;
		w->write_cb = write_cb;
		w->context = context;
	}
	iomem__mutex_unlock(&iomem__mmio_lock);
	return st;
}

IOMEM_API IOReturn iomem_posix_mmio_unregister(IOPhysicalAddress base)
{
	unsigned i;
	IOReturn st = kIOReturnNotFound;
	iomem__mutex_lock(&iomem__mmio_lock);
	for (i = 0; i < IOMEM_POSIX_MMIO_WINDOWS; i++) {
		if (iomem__mmio[i].length != 0 && iomem__mmio[i].base == base) {
			iomem__mmio[i].length = 0;
			st = kIOReturnSuccess;
			break;
		}
	}
	iomem__mutex_unlock(&iomem__mmio_lock);
	return st;
}
#endif

/* A width's all-ones value (what a read of nothing returns). */
IOMEM_FORCEINLINE uint64_t iomem__mapped_ones(unsigned width)
{
	return width >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (8 * width)) - 1);
}

/* An aligned access of exactly @width bytes at host address @v. */
IOMEM_FORCEINLINE uint64_t iomem__mapped_volatile(void *v, unsigned width, bool write, uint64_t value)
{
	switch (width) {
	case 1:
		if (write) { *(volatile uint8_t *)v = (uint8_t)value; return 0; }
		return *(volatile uint8_t *)v;
	case 2:
		if (write) { *(volatile uint16_t *)v = (uint16_t)value; return 0; }
		return *(volatile uint16_t *)v;
	case 4:
		if (write) { *(volatile uint32_t *)v = (uint32_t)value; return 0; }
		return *(volatile uint32_t *)v;
	default:
		if (write) { *(volatile uint64_t *)v = value; return 0; }
		return *(volatile uint64_t *)v;
	}
}

/* An unaligned access: bytewise through the backend's physical copy
 * (host byte order, as a plain access would be). False: nothing there. */
IOMEM__PRIVATE bool iomem__mapped_copy(IOPhysicalAddress pa, unsigned width, bool write, uint64_t *value)
{
	union { uint64_t u64; uint32_t u32; uint16_t u16; uint8_t u8; unsigned char b[8]; } u;
	u.u64 = 0;
	if (write) {
		switch (width) {
		case 1: u.u8 = (uint8_t)*value; break;
		case 2: u.u16 = (uint16_t)*value; break;
		case 4: u.u32 = (uint32_t)*value; break;
		default: u.u64 = *value; break;
		}
		return iomem__platform_phys_copy(pa, u.b, width, true);
	}
	if (!iomem__platform_phys_copy(pa, u.b, width, false))
		return false;
	switch (width) {
	case 1: *value = u.u8; break;
	case 2: *value = u.u16; break;
	case 4: *value = u.u32; break;
	default: *value = u.u64; break;
	}
	return true;
}

/* The physical access of the backend; false when nothing is at @pa. */
IOMEM__PRIVATE bool iomem__mapped_phys(IOPhysicalAddress pa, unsigned width, bool write, uint64_t *value)
{
#if defined(IOMEM_BACKEND_POSIX)
	unsigned i;
	iomem__mmio_window w;
	void *v;
	w.length = 0;
	iomem__mutex_lock(&iomem__mmio_lock);
	for (i = 0; i < IOMEM_POSIX_MMIO_WINDOWS; i++) {
		if (iomem__mmio[i].length != 0 && pa >= iomem__mmio[i].base &&
		    pa - iomem__mmio[i].base < iomem__mmio[i].length) {
			w = iomem__mmio[i];
			break;
		}
	}
	iomem__mutex_unlock(&iomem__mmio_lock);
	if (w.length != 0) {                 /* a device register: its callback */
		if (write) {
			if (w.write_cb != NULL)
				w.write_cb(w.context, pa - w.base, width, *value);
		} else {
			*value = w.read_cb != NULL ? w.read_cb(w.context, pa - w.base, width) & iomem__mapped_ones(width)
			                           : iomem__mapped_ones(width);
		}
		return true;
	}
	v = (pa & (width - 1)) == 0 ? iomem_posix_phys_to_virt(pa) : NULL;
	if (v != NULL) {                     /* aligned: inside one page */
		uint64_t r = iomem__mapped_volatile(v, width, write, *value);
		if (!write)
			*value = r;
		return true;
	}
	return iomem__mapped_copy(pa, width, write, value);
#elif defined(IOMEM_BACKEND_BAREMETAL)
	void *v = (pa & (width - 1)) == 0 ? iomem__platform_phys_to_virt(pa) : NULL;
	if (v != NULL) {
		uint64_t r = iomem__mapped_volatile(v, width, write, *value);
		if (!write)
			*value = r;
		return true;
	}
	return iomem__mapped_copy(pa, width, write, value);
#else /* Linux */
	unsigned long pfn = (unsigned long)(pa >> PAGE_SHIFT);
	void __iomem *io;
	if (pfn_valid(pfn)) {                /* RAM: through the kernel's map */
		unsigned char *k;
		if (pa & (width - 1))
			return iomem__mapped_copy(pa, width, write, value);
		k = (unsigned char *)kmap_local_page(pfn_to_page(pfn));
		{
			uint64_t r = iomem__mapped_volatile(k + (pa & ~(IOPhysicalAddress)PAGE_MASK), width, write, *value);
			if (!write)
				*value = r;
		}
		kunmap_local(k);
		return true;
	}
	io = ioremap((resource_size_t)pa, width);
	if (io == NULL)
		return false;
	switch (width) {
	case 1:
		if (write) writeb((u8)*value, io); else *value = readb(io);
		break;
	case 2:
		if (write) writew((u16)*value, io); else *value = readw(io);
		break;
	case 4:
		if (write) writel((u32)*value, io); else *value = readl(io);
		break;
	default:
#ifdef readq
		if (write) writeq((u64)*value, io); else *value = readq(io);
#else   /* 32-bit kernels: low word first, as lo_hi_readq */
		if (write) {
			writel((u32)*value, io);
			writel((u32)(*value >> 32), (u8 __iomem *)io + 4);
		} else {
			*value = (u64)readl(io) | ((u64)readl((u8 __iomem *)io + 4) << 32);
		}
#endif
		break;
	}
	iounmap(io);
	return true;
#endif
}

/* Translate through the system mapper, then access; reports and all ones
 * when nothing is there. */
IOMEM__PRIVATE uint64_t iomem__mapped_io(IOPhysicalAddress address, unsigned width, bool write, uint64_t value,
                                         const char *what)
{
	IOMapper *m = iomem__mapper_system_peek();
	IOPhysicalAddress pa = address;
	if (m != NULL) {
		pa = IOMapper_mapToPhysicalAddress(m, address);
		if (pa == 0) {
#if IOMEM__DEBUG
			iomem__report("%s: IOVA %x is not mapped by the system mapper", what, (unsigned long long)address);
#endif
			(void)what;
			return iomem__mapped_ones(width);
		}
	}
	if (!iomem__mapped_phys(pa, width, write, &value)) {
#if IOMEM__DEBUG
		iomem__report("%s: nothing at physical %x (no RAM, no MMIO window)", what, (unsigned long long)pa);
#endif
		(void)what;
		return iomem__mapped_ones(width);
	}
	return value;
}

IOMEM_API UInt8  IOMappedRead8(IOPhysicalAddress address)  { return (UInt8)iomem__mapped_io(address, 1, false, 0, "IOMappedRead8"); }
IOMEM_API UInt16 IOMappedRead16(IOPhysicalAddress address) { return (UInt16)iomem__mapped_io(address, 2, false, 0, "IOMappedRead16"); }
IOMEM_API UInt32 IOMappedRead32(IOPhysicalAddress address) { return (UInt32)iomem__mapped_io(address, 4, false, 0, "IOMappedRead32"); }
IOMEM_API UInt64 IOMappedRead64(IOPhysicalAddress address) { return (UInt64)iomem__mapped_io(address, 8, false, 0, "IOMappedRead64"); }
IOMEM_API void IOMappedWrite8(IOPhysicalAddress address, UInt8 value)   { (void)iomem__mapped_io(address, 1, true, value, "IOMappedWrite8"); }
IOMEM_API void IOMappedWrite16(IOPhysicalAddress address, UInt16 value) { (void)iomem__mapped_io(address, 2, true, value, "IOMappedWrite16"); }
IOMEM_API void IOMappedWrite32(IOPhysicalAddress address, UInt32 value) { (void)iomem__mapped_io(address, 4, true, value, "IOMappedWrite32"); }
IOMEM_API void IOMappedWrite64(IOPhysicalAddress address, UInt64 value) { (void)iomem__mapped_io(address, 8, true, value, "IOMappedWrite64"); }

/* >>impl-cache: IOFlushProcessorCache ----------------------------------- */

IOMEM_API IOReturn IOFlushProcessorCache(task_t task, IOVirtualAddress address, IOByteCount length)
{
	if (task != kernel_task)
		return kIOReturnUnsupported;
	if (length == 0)
		return kIOReturnSuccess;
#if defined(IOMEM_BACKEND_POSIX)
	(void)address;                          /* a coherent host */
	return kIOReturnSuccess;
#elif defined(IOMEM_BACKEND_BAREMETAL)
	iomem__platform_cache_flush((const void *)address, (vm_size_t)length);
	return kIOReturnSuccess;
#elif defined(CONFIG_X86)
	(void)address;                          /* x86 DMA snoops the caches */
	return kIOReturnSuccess;
#else
	(void)address;
	return kIOReturnUnsupported;
#endif
}


/* >>impl-linuxdev: the kernel's DMA API as an extent mapper ------------ */

#if defined(IOMEM_BACKEND_LINUX)
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/dma-map-ops.h>
#include <linux/scatterlist.h>
#include <linux/swiotlb.h>

typedef struct iomem__linux_dev {
	struct device *dev;        /* not referenced: the driver keeps it alive */
	struct mutex   lock;       /* the mask narrowing around one dma_map */
} iomem__linux_dev;

/* One iovmMapExtents, in ONE allocation: the header, room for @cap extents
 * of the mapped entries, then the scatterlist array itself (@cap entries,
 * unchained: sgt.sgl points into this block; sg_alloc_table is not used,
 * so no sg_free_table). The sg_table is unmapped with its orig_nents (the
 * pieces filled). One allocation instead of two and no separate counting
 * walk of the descriptor: measured in the kernel suite (ktest_bench.h),
 * allocations under slub_debug and the counting walk were most of
 * prepare+complete. */
typedef struct iomem__linux_dmamap {
	struct sg_table         sgt;
	enum dma_data_direction dir;
	vm_size_t               bytes;    /* this allocation */
	uint32_t                count;
	uint32_t                cap;      /* extents and scatterlist entries */
	iomem_md_extent         ext[];
} iomem__linux_dmamap;

/* The allocation size for @cap pieces, the scatterlist after the extents
 * (16-byte extents keep it aligned); 0 on overflow. */
IOMEM__PRIVATE vm_size_t iomem__linux_dmamap_size(uint64_t cap)
{
	uint64_t per = sizeof(iomem_md_extent) + sizeof(struct scatterlist);
	if (cap == 0 || cap > (uint64_t)UINT_MAX || cap > (IOMEM_ALLOC_SIZE_MAX - sizeof(iomem__linux_dmamap)) / per)
		return 0;
	return (vm_size_t)(sizeof(iomem__linux_dmamap) + cap * per);
}

IOMEM__PRIVATE struct scatterlist *iomem__linux_dmamap_sgl(iomem__linux_dmamap *m)
{
	return (struct scatterlist *)(void *)(m->ext + m->cap);
}

/* is_swiotlb_active() without its GPL-only export (the same test, 6.1):
 * the mapper uses plain EXPORT_SYMBOLs only, so iomem stays usable from a
 * module of any licence. */
IOMEM__PRIVATE bool iomem__linux_swiotlb_present(struct device *dev)
{
#if defined(CONFIG_SWIOTLB)
	return dev->dma_io_tlb_mem != NULL && dev->dma_io_tlb_mem->nslabs != 0;
#else
	(void)dev;
	return false;
#endif
}

IOMEM__PRIVATE uint64_t iomem__linux_dev_page_size(IOMapper *mapper)
{
	(void)mapper;
	return PAGE_SIZE;
}

IOMEM__PRIVATE IOReturn iomem__linux_dev_map_memory(IOMapper *mapper, IOMemoryDescriptor *memory,
        uint64_t descriptorOffset, uint64_t length, uint32_t mapOptions,
        const IODMAMapSpecification *mapSpecification, IODMACommand *dmaCommand, const void *pageList,
        uint64_t *mapAddress, uint64_t *mapLength)
{
	/* the DMA API gives a segment list, not one run: iovmMapExtents only */
	(void)mapper; (void)memory; (void)descriptorOffset; (void)length; (void)mapOptions;
	(void)mapSpecification; (void)dmaCommand; (void)pageList; (void)mapAddress; (void)mapLength;
	return kIOReturnUnsupported;
}

IOMEM__PRIVATE IOReturn iomem__linux_dev_unmap_memory(IOMapper *mapper, IOMemoryDescriptor *memory,
        IODMACommand *dmaCommand, uint64_t mapAddress, uint64_t mapLength)
{
	(void)mapper; (void)memory; (void)dmaCommand; (void)mapAddress; (void)mapLength;
	return kIOReturnUnsupported;
}

/* The DMA API has no reverse lookup (an IOVA or a swiotlb slot): unknown. */
IOMEM__PRIVATE uint64_t iomem__linux_dev_to_phys(IOMapper *mapper, uint64_t mappedAddress)
{
	(void)mapper; (void)mappedAddress;
	return 0;
}

/* The page pieces of [off, off + len) of @md: counts them (sgl NULL) or
 * fills sgl[0 .. @cap) (kIOReturnNoSpace when there are more). 0 on
 * success; kIOReturn* when a byte has no RAM page behind it. *@top = the
 * highest physical address seen. */
IOMEM__PRIVATE IOReturn iomem__linux_dev_pieces(IOMemoryDescriptor *md, uint64_t off, uint64_t len,
                                                struct scatterlist *sgl, unsigned int cap,
                                                unsigned int *count, phys_addr_t *top)
{
	uint64_t done = 0;
	unsigned int n = 0;
	*top = 0;
	while (done < len) {
		IOByteCount seg = 0;
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, off + done, &seg, kIOMemoryMapperNone);
		if (pa == 0 || seg == 0)
			return kIOReturnVMError;      /* not prepared / no physical page */
		if (seg > len - done)
			seg = (IOByteCount)(len - done);
		if (pa + seg - 1 > *top)
			*top = (phys_addr_t)(pa + seg - 1);
		while (seg > 0) {
			unsigned long pfn = (unsigned long)(pa >> PAGE_SHIFT);
			unsigned int in = (unsigned int)(pa & ~(addr64_t)PAGE_MASK);
			unsigned int piece = (unsigned int)(seg < PAGE_SIZE - in ? seg : PAGE_SIZE - in);
			if (sgl != NULL) {
				if (n == cap)
					return kIOReturnNoSpace;
				if (!pfn_valid(pfn))
					return kIOReturnUnsupported;  /* MMIO: no struct page to map */
				sg_set_page(&sgl[n], pfn_to_page(pfn), piece, in);
			} else if (!pfn_valid(pfn)) {
				return kIOReturnUnsupported;
			}
			n++;
			pa += piece;
			seg -= piece;
			done += piece;
		}
	}
	*count = n;
	return kIOReturnSuccess;
}

IOMEM__PRIVATE IOReturn iomem__linux_dev_map_extents(IOMapper *mapper, IOMemoryDescriptor *memory,
        uint64_t descriptorOffset, uint64_t length, uint32_t mapOptions,
        const IODMAMapSpecification *mapSpecification, IODMACommand *dmaCommand,
        const iomem_md_extent **extents, uint32_t *count, void **handle)
{
	iomem__linux_dev *c = (iomem__linux_dev *)iomem_mapper_getContext(mapper);
	struct device *dev;
	iomem__linux_dmamap *m = NULL;
	struct scatterlist *sg;
	unsigned int pieces = 0, bits, i;
	int attempt;
	phys_addr_t top;
	u64 want = ~(u64)0, mask, cmask;
	dma_addr_t next = 0;
	uint64_t end = 0;
	vm_size_t bytes;
	IOReturn r;
	int err;
	(void)dmaCommand;
	if (c == NULL || memory == NULL || length == 0 || extents == NULL || count == NULL || handle == NULL)
		return kIOReturnBadArgument;
	dev = c->dev;
	/* One virtually contiguous range of @length bytes has at most
	 * length / PAGE_SIZE + 2 page pieces: try that room first; a descriptor
	 * with more (several ranges) is counted and allocated exactly. */
	r = kIOReturnNoSpace;
	for (attempt = 0; attempt < 2 && r == kIOReturnNoSpace; attempt++) {
		uint64_t cap = (length >> PAGE_SHIFT) + 2;
		if (attempt == 1) {
			r = iomem__linux_dev_pieces(memory, descriptorOffset, length, NULL, 0, &pieces, &top);
			if (r != kIOReturnSuccess)
				return r;
			cap = pieces;
		}
		bytes = iomem__linux_dmamap_size(cap);
		if (bytes == 0)
			return kIOReturnNoMemory;
		m = (iomem__linux_dmamap *)iomem__alloc_internal(bytes, "iomem_linux DMA mapping");
		if (m == NULL)
			return kIOReturnNoMemory;
		m->bytes = bytes;
		m->count = 0;
		m->cap = (uint32_t)cap;
		sg_init_table(iomem__linux_dmamap_sgl(m), m->cap);
		r = iomem__linux_dev_pieces(memory, descriptorOffset, length, iomem__linux_dmamap_sgl(m), m->cap,
		                            &pieces, &top);
		if (r != kIOReturnSuccess)
			iomem__free_internal(m, bytes, "iomem_linux DMA mapping");
	}
	if (r != kIOReturnSuccess)
		return r == kIOReturnNoSpace ? kIOReturnInternalError : r;
	/* the filled entries are the table */
	m->sgt.sgl = iomem__linux_dmamap_sgl(m);
	m->sgt.orig_nents = pieces;
	m->sgt.nents = pieces;
	sg_mark_end(&m->sgt.sgl[pieces - 1]);
	switch (mapOptions & (kIODMAMapReadAccess | kIODMAMapWriteAccess)) {
	case kIODMAMapReadAccess:  m->dir = DMA_TO_DEVICE; break;     /* the device reads memory */
	case kIODMAMapWriteAccess: m->dir = DMA_FROM_DEVICE; break;   /* the device writes it */
	default:                   m->dir = DMA_BIDIRECTIONAL; break;
	}

	bits = mapSpecification && mapSpecification->numAddressBits ? mapSpecification->numAddressBits : 64;
	if (bits < 64)
		want = DMA_BIT_MASK(bits);
	mutex_lock(&c->lock);
	mask = dma_get_mask(dev);
	cmask = dev->coherent_dma_mask;
	if (want < mask && get_dma_ops(dev) == NULL && (top > want || is_swiotlb_force_bounce(dev)) &&
	    (!iomem__linux_swiotlb_present(dev) || want < DMA_BIT_MASK(32))) {
		/* dma-direct must bounce, and swiotlb is absent or its pool (low
		 * memory: below 4 GiB, no nearer promise) may lie above the
		 * limit: the kernel would WARN and fail; refuse here */
		mutex_unlock(&c->lock);
		r = kIOReturnMessageTooLarge;
		goto fail;
	}
	if (want < mask && dma_set_mask_and_coherent(dev, want) != 0) {
		mutex_unlock(&c->lock);
		r = kIOReturnNoResources;   /* the platform cannot address that little */
		goto fail;
	}
	/* dma_map_sg_attrs, not dma_map_sgtable (a GPL-only export) */
	err = dma_map_sg_attrs(dev, m->sgt.sgl, m->sgt.orig_nents, m->dir, 0);
	if (err > 0)
		m->sgt.nents = (unsigned int)err;
	if (want < mask) {
		/* the mask only steers IOVA / bounce placement at map time */
		(void)dma_set_mask(dev, mask);
		(void)dma_set_coherent_mask(dev, cmask);
	}
	mutex_unlock(&c->lock);
	if (err <= 0) {
		r = kIOReturnNoResources;   /* 0: no IOVA space / swiotlb slots */
		goto fail;
	}
	/* the MAPPED entries (an IOMMU merges), adjacent ones merged again */
	for_each_sgtable_dma_sg(&m->sgt, sg, i) {
		dma_addr_t a = sg_dma_address(sg);
		unsigned int l = sg_dma_len(sg);
		if (l == 0)
			continue;
		if (m->count == 0 || a != next)
			m->ext[m->count++].phys = (IOPhysicalAddress)a;
		end += l;
		m->ext[m->count - 1].end = (IOByteCount)end;
		next = a + l;
	}
	if (end != length || m->count == 0) {
		dma_unmap_sgtable(dev, &m->sgt, m->dir, 0);
		r = kIOReturnDMAError;
		goto fail;
	}
	*extents = m->ext;
	*count = m->count;
	*handle = m;
	return kIOReturnSuccess;
fail:
	iomem__free_internal(m, bytes, "iomem_linux DMA mapping");
	return r;
}

IOMEM__PRIVATE void iomem__linux_dev_unmap_extents(IOMapper *mapper, IODMACommand *dmaCommand, void *handle)
{
	iomem__linux_dev *c = (iomem__linux_dev *)iomem_mapper_getContext(mapper);
	iomem__linux_dmamap *m = (iomem__linux_dmamap *)handle;
	(void)dmaCommand;
	if (c == NULL || m == NULL)
		return;
	dma_unmap_sgtable(c->dev, &m->sgt, m->dir, 0);   /* with the original nents */
	iomem__free_internal(m, m->bytes, "iomem_linux DMA mapping");
}

IOMEM__PRIVATE void iomem__linux_dev_sync(IOMapper *mapper, IODMACommand *dmaCommand, void *handle,
                                          IODirection direction)
{
	iomem__linux_dev *c = (iomem__linux_dev *)iomem_mapper_getContext(mapper);
	iomem__linux_dmamap *m = (iomem__linux_dmamap *)handle;
	(void)dmaCommand;
	if (c == NULL || m == NULL)
		return;
	if (direction & kIODirectionIn)
		dma_sync_sgtable_for_cpu(c->dev, &m->sgt, m->dir);
	if (direction & kIODirectionOut)
		dma_sync_sgtable_for_device(c->dev, &m->sgt, m->dir);
}

IOMEM__PRIVATE void iomem__linux_dev_free(IOMapper *mapper)
{
	iomem__linux_dev *c = (iomem__linux_dev *)iomem_mapper_getContext(mapper);
	if (c == NULL)
		return;
	mutex_destroy(&c->lock);
	iomem__free_internal(c, sizeof *c, "iomem_linux device mapper");
}

static const iomem_mapper_ops iomem__linux_dev_ops = {
	"linux-dma-api",
	iomem__linux_dev_page_size,
	iomem__linux_dev_map_memory,
	iomem__linux_dev_unmap_memory,
	NULL,                                  /* iovmInsert */
	iomem__linux_dev_to_phys,
	NULL, NULL,                            /* iovaAlloc / iovaFree */
	iomem__linux_dev_free,
	iomem__linux_dev_map_extents,
	iomem__linux_dev_unmap_extents,
	iomem__linux_dev_sync
};

IOMEM_API IOMapper *iomem_linux_mapper_for_device(struct device *dev)
{
	iomem__linux_dev *c;
	IOMapper *m;
	if (dev == NULL)
		return NULL;
	c = (iomem__linux_dev *)iomem__alloc_internal(sizeof *c, "iomem_linux device mapper");
	if (c == NULL)
		return NULL;
	c->dev = dev;
	mutex_init(&c->lock);
	m = iomem_mapper_withOps(&iomem__linux_dev_ops, c);
	if (m == NULL) {
		mutex_destroy(&c->lock);
		iomem__free_internal(c, sizeof *c, "iomem_linux device mapper");
		return NULL;
	}
	/* swiotlb keeps each byte's page offset, as an IOMMU does */
	if (dev->dma_parms != NULL && dma_get_min_align_mask(dev) < PAGE_SIZE - 1)
		(void)dma_set_min_align_mask(dev, PAGE_SIZE - 1);
	return m;
}
#endif /* IOMEM_BACKEND_LINUX */

#endif /* IOMEM_IMPLEMENTATION */
