/* SPDX-License-Identifier: MIT */
/*
 * iomem_dma.h - IOKit's DMA objects for iomem: IODMACommand, the
 *               IOMemoryCursor family, IODMAController, IODMAEventSource
 *
 * Include after (or instead of) iomem.h; it includes iomem.h itself. The
 * implementation is compiled in the TU that defines IOMEM_IMPLEMENTATION,
 * like iomem.h's. Backends, configuration macros and the debug layer are
 * described at the top of iomem.h.
 *
 * TABLE OF CONTENTS                        (search for ">>name" to jump)
 *   >>dmacmd          IODMACommand: specification, prepare/complete,
 *                     genIOVMSegments, the six output functions, bouncing,
 *                     DriverKit-shaped calls                 (IODMACommand issue)
 *   >>walk            the shared segment-walk engine         (IODMACommand issue)
 *   >>cursor          IOMemoryCursor, IONaturalMemoryCursor, IOBigMemoryCursor,
 *                     IOLittleMemoryCursor                   (memory cursor issue)
 *   >>dmacontroller   IODMAController ops table and registry (DMA controller issue)
 *   >>dmaevent        IODMAEventSource                       (DMA controller issue)
 *   >>implementation  the part compiled once (IOMEM_IMPLEMENTATION)
 *
 * Until those sections land this header declares nothing beyond iomem.h;
 * the README's feature table says what works on which backend today.
 *
 * LICENSE: MIT (see iomem.h).
 */
#ifndef IOMEM_DMA_H_INCLUDED
#define IOMEM_DMA_H_INCLUDED

#include "iomem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* >>dmacmd ================================================================ */

/* >>walk ================================================================== */

/* >>cursor ================================================================ */

/* >>dmacontroller ========================================================= */

/* >>dmaevent ============================================================== */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_DMA_H_INCLUDED */

/* >>implementation ======================================================== */

#if defined(IOMEM_IMPLEMENTATION) && !defined(IOMEM_DMA__IMPLEMENTATION_INCLUDED)
#define IOMEM_DMA__IMPLEMENTATION_INCLUDED 1

#endif /* IOMEM_IMPLEMENTATION */
