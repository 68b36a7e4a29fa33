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
 *                     the accessors, unmap, redirect, wireRange
 *   >>mapper          IOMapper: system and per-device mappers, iovmMapMemory /
 *                     iovmUnmapMemory / iovmInsert / mapToPhysicalAddress,
 *                     IOMapperIOVMAlloc / IOMapperIOVMFree / IOMapperInsertPage
 *   >>mappedio        IOMappedRead8/16/32/64, IOMappedWrite8/16/32/64
 *   >>cache           IOFlushProcessorCache
 *   >>implementation  the part compiled once (IOMEM_IMPLEMENTATION):
 *     >>impl-mapper     the IOMapper object and the system mapper
 *
 * The map options and cache modes are in iomem.h. The README's feature
 * table says what works on which backend today.
 *
 * LICENSE: MIT (see iomem.h).
 */
#ifndef IOMEM_MAP_H_INCLUDED
#define IOMEM_MAP_H_INCLUDED

#include "iomem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* >>memmap ================================================================ */

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

#endif /* IOMEM_MAP_H_INCLUDED */

/* >>implementation ======================================================== */

#if defined(IOMEM_IMPLEMENTATION) && !defined(IOMEM_MAP__IMPLEMENTATION_INCLUDED)
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

#endif /* IOMEM_IMPLEMENTATION */
