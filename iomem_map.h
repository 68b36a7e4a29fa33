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
 *   >>implementation  the part compiled once (IOMEM_IMPLEMENTATION)
 *
 * All of these arrive with the mapped-memory issue; until then this header
 * declares nothing beyond iomem.h (kIOMapperSystem and the map options and
 * cache modes are already in iomem.h). The README's feature table says what
 * works on which backend today.
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

/* >>mappedio ============================================================== */

/* >>cache ================================================================= */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_MAP_H_INCLUDED */

/* >>implementation ======================================================== */

#if defined(IOMEM_IMPLEMENTATION) && !defined(IOMEM_MAP__IMPLEMENTATION_INCLUDED)
#define IOMEM_MAP__IMPLEMENTATION_INCLUDED 1

#endif /* IOMEM_IMPLEMENTATION */
