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
 *                     IOMapperIOVMAlloc / IOMapperIOVMFree / IOMapperInsertPage
 *   >>mappedio        IOMappedRead8/16/32/64, IOMappedWrite8/16/32/64
 *   >>cache           IOFlushProcessorCache
 *   >>implementation  the part compiled once (IOMEM_IMPLEMENTATION):
 *     >>impl-mapper     the IOMapper object and the system mapper
 *     >>impl-memmap     IOMemoryMap: the pieces of a descriptor, the
 *                       backends' mapping, reuse, the accessors
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
 *     Linux: only the own-address (static) case above; else Unsupported.
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
 * address to 0. The object stays valid (release it). Unmapping again is a
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
 * mapper; the previous one is released. Set it before creating commands. */
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


/* >>mappedio ============================================================== */

/* >>cache ================================================================= */

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
	iomem__mapper_system = mapper;
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

/* The backend's doMap: sets m->address (and what the map owns). */
IOMEM__PRIVATE IOReturn iomem__map_do(IOMemoryDescriptor *md, IOMemoryMap *m, mach_vm_address_t at)
{
	iomem__map_plan p;
	IOOptionBits o = m->options;
	bool own;
	IOReturn ret = iomem__map_plan_make(md, (IOByteCount)m->offset, (IOByteCount)m->length, &p);
	if (ret != kIOReturnSuccess)
		return ret;
#if defined(IOMEM_BACKEND_POSIX)
	if (p.aliasable) {
		if (!p.aligned)
			return kIOReturnNotAligned;
		return iomem__map_alias(md, m, at, &p);
	}
#endif
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
	if (map == NULL)
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__map_lock);
	r = map->reserve;
	bytes = map->reserve_bytes;
	map->reserve = 0;
	map->address = 0;
	map->task = NULL;
	iomem__mutex_unlock(&iomem__map_lock);
#if defined(IOMEM_BACKEND_POSIX)
	if (r != 0)
		munmap((void *)r, bytes);
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

#endif /* IOMEM_IMPLEMENTATION */
