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
 * The README's feature table says what works on which backend today.
 *
 * LICENSE: MIT (see iomem.h).
 */
#ifndef IOMEM_DMA_H_INCLUDED
#define IOMEM_DMA_H_INCLUDED

#include "iomem.h"
#include "iomem_map.h"     /* IOMapper: IODMACommand maps through it */

#ifdef __cplusplus
extern "C" {
#endif

/* >>dmacmd ================================================================ */
/*
 * IODMACommand (reference §2.1): turns a prepared descriptor into the
 * segments a device can use - addresses it can reach (numAddressBits),
 * lengths it accepts (maxSegmentSize, alignments), an IOVA when a mapper is
 * in use - and bounces the parts it cannot reach.
 *
 *   IODMACommand *cmd = IODMACommand_withSpecification(
 *           kIODMACommandOutputHost64, 32, 65536,     // 32-bit device, 64K max
 *           IODMACommand_kMapped, 0, 1, NULL, NULL);  // +1
 *   IODMACommand_setMemoryDescriptor(cmd, md, true);  // md prepared by you
 *   UInt64 off = 0; IODMACommand_Segment64 seg[16]; UInt32 n = 16;
 *   while (IODMACommand_gen64IOVMSegments(cmd, &off, seg, &n) == kIOReturnSuccess) {
 *       queue_to_device(seg, n); n = 16;              // kIOReturnOverrun: done
 *   }
 *   ... device done ...
 *   IODMACommand_clearMemoryDescriptor(cmd, true);    // completes, copies back
 *   IODMACommand_release(cmd);
 *
 * OWNERSHIP: factories return +1 (NULL on failure); the command retains the
 * descriptor it is given and releases it when cleared or freed (releasing a
 * command that still holds one completes and releases it: IOKit leaks it).
 * THREAD SAFETY (as IOKit): the caller serialises all calls on one command;
 * different commands are independent. IODMACommand_PrepareForDMA /
 * CompleteDMA take a per-command lock (DriverKit does).
 */

/* The segment formats of the output functions. */
typedef struct IODMACommand_Segment32 { UInt32 fIOVMAddr, fLength; } IODMACommand_Segment32;
typedef struct IODMACommand_Segment64 { UInt64 fIOVMAddr, fLength; } IODMACommand_Segment64;

/* Stores segment @segmentIndex into the caller's array @segments; false
 * stops generation with kIOReturnMessageTooLarge. */
typedef bool (*IODMACommand_SegmentFunction)(IODMACommand *target, IODMACommand_Segment64 segment,
                                             void *segments, UInt32 segmentIndex);

/* The device's constraints; zero fields take the defaults noted. */
typedef struct IODMACommand_SegmentOptions {
	uint8_t  fStructSize;                 /* sizeof(IODMACommand_SegmentOptions) */
	uint8_t  fNumAddressBits;             /* 0: unrestricted (32 for 32-bit outputs) */
	uint64_t fMaxSegmentSize;             /* 0: unlimited */
	uint64_t fMaxTransferSize;            /* 0: unlimited */
	uint32_t fAlignment;                  /* start of the first segment; 0 -> 1 */
	uint32_t fAlignmentLength;            /* every length a multiple; 0 -> 1 */
	uint32_t fAlignmentInternalSegments;  /* start of segments 2..n; 0 -> fAlignment */
} IODMACommand_SegmentOptions;

typedef uint32_t IODMACommand_MappingOptions;
enum {
	IODMACommand_kMapped       = 0x00000000,  /* through the mapper, if any */
	IODMACommand_kBypassed     = 0x00000001,  /* refused when a mapper exists */
	IODMACommand_kNonCoherent  = 0x00000002,  /* cache maintenance at prepare/complete */
	IODMACommand_kUnmapped     = 0x00000003,  /* CPU-physical, never the mapper */
	IODMACommand_kTypeMask     = 0x0000000f,
	IODMACommand_kNoCacheStore = 0x00000010,  /* accepted, no effect */
	IODMACommand_kOnChip       = 0x00000020,  /* accepted, no effect */
	IODMACommand_kIterateOnly  = 0x00000040   /* a pure cursor: never bounces */
};
enum { IODMACommand_kForceDoubleBuffer = 0x01000000 };   /* synchronize() */

/* The six output functions (never refuse). 32-bit: {address, length} as two
 * UInt32 at segments + 8*index; 64-bit: two UInt64 at segments + 16*index. */
IOMEM_API bool IODMACommand_OutputHost32(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex);
IOMEM_API bool IODMACommand_OutputBig32(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex);
IOMEM_API bool IODMACommand_OutputLittle32(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex);
IOMEM_API bool IODMACommand_OutputHost64(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex);
IOMEM_API bool IODMACommand_OutputBig64(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex);
IOMEM_API bool IODMACommand_OutputLittle64(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex);
#define kIODMACommandOutputHost32   IODMACommand_OutputHost32
#define kIODMACommandOutputBig32    IODMACommand_OutputBig32
#define kIODMACommandOutputLittle32 IODMACommand_OutputLittle32
#define kIODMACommandOutputHost64   IODMACommand_OutputHost64
#define kIODMACommandOutputBig64    IODMACommand_OutputBig64
#define kIODMACommandOutputLittle64 IODMACommand_OutputLittle64

/* IODMACommand's fields are private (iomem__) except fRefCon, IOKit's
 * public member; the struct is defined in the implementation section
 * below this header's declarations. */

/* ---- creation ----------------------------------------------------------- */

/**
 * IODMACommand_withSpecification - a command for a device with these limits
 * (IOKit's 8-argument form; fAlignmentLength = 1, internal alignment =
 * @alignment). @mapper: NULL = the system mapper (none unless one is set,
 * iomem_map.h); ignored for kUnmapped. +1, or NULL for any specification
 * error listed at IODMACommand_withSpecificationOptions.
 */
IOMEM_API IODMACommand *IODMACommand_withSpecification(IODMACommand_SegmentFunction outSegFunc,
        UInt8 numAddressBits, UInt64 maxSegmentSize, IODMACommand_MappingOptions mappingOptions,
        UInt64 maxTransferSize, UInt32 alignment, IOMapper *mapper, void *refCon);
/**
 * IODMACommand_withSpecificationOptions - the SegmentOptions form. Refused
 * (NULL; kIOReturnBadArgument from prepareWithSpecification): NULL
 * function or options, numAddressBits > 32 with a 32-bit output, non-zero
 * numAddressBits below the page shift, an alignment that is not a power of
 * two, kBypassed with a mapper, an unknown mapping type.
 */
IOMEM_API IODMACommand *IODMACommand_withSpecificationOptions(IODMACommand_SegmentFunction outSegFunc,
        const IODMACommand_SegmentOptions *segmentOptions, uint32_t mappingOptions,
        IOMapper *mapper, void *refCon);
/** IODMACommand_withRefCon - a command with no specification yet (use
 * prepareWithSpecification). +1 or NULL. */
IOMEM_API IODMACommand *IODMACommand_withRefCon(void *refCon);
/** IODMACommand_weakWithSpecification - as withSpecification, the result
 * (+1) in *@newCommand; kIOReturnBadArgument (NULL @newCommand or a bad
 * specification), kIOReturnNoMemory; *@newCommand NULL on failure. */
IOMEM_API IOReturn IODMACommand_weakWithSpecification(IODMACommand **newCommand,
        IODMACommand_SegmentFunction outSegFunc, UInt8 numAddressBits, UInt64 maxSegmentSize,
        IODMACommand_MappingOptions mappingOptions, UInt64 maxTransferSize, UInt32 alignment,
        IOMapper *mapper, void *refCon);
/** IODMACommand_cloneCommand - a new command (+1) with @cmd's specification
 * and mapper (not its descriptor); the alignments are copied as they are
 * (IOKit swaps two of them: not reproduced). */
IOMEM_API IODMACommand *IODMACommand_cloneCommand(IODMACommand *cmd, void *refCon);
IOMEM_API void IODMACommand_retain(IODMACommand *cmd);
IOMEM_API void IODMACommand_release(IODMACommand *cmd);

/* ---- descriptor, prepare, complete -------------------------------------- */

IOMEM_API IOReturn IODMACommand_setMemoryDescriptor(IODMACommand *cmd, const IOMemoryDescriptor *mem,
                                                    bool autoPrepare);
IOMEM_API IOReturn IODMACommand_clearMemoryDescriptor(IODMACommand *cmd, bool autoComplete);
IOMEM_API const IOMemoryDescriptor *IODMACommand_getMemoryDescriptor(const IODMACommand *cmd);
IOMEM_API const IOMemoryDescriptor *IODMACommand_getIOMemoryDescriptor(const IODMACommand *cmd);
IOMEM_API IOReturn IODMACommand_prepare(IODMACommand *cmd, UInt64 offset, UInt64 length,
                                        bool flushCache, bool synchronize);
IOMEM_API IOReturn IODMACommand_complete(IODMACommand *cmd, bool invalidateCache, bool synchronize);
IOMEM_API IOReturn IODMACommand_prepareWithSpecification(IODMACommand *cmd,
        IODMACommand_SegmentFunction outSegFunc, const IODMACommand_SegmentOptions *segmentOptions,
        uint32_t mappingOptions, IOMapper *mapper, UInt64 offset, UInt64 length,
        bool flushCache, bool synchronize);
IOMEM_API IOReturn IODMACommand_synchronize(IODMACommand *cmd, IOOptionBits options);
IOMEM_API IOReturn IODMACommand_getPreparedOffsetAndLength(IODMACommand *cmd, UInt64 *offset, UInt64 *length);
IOMEM_API UInt64 IODMACommand_readBytes(IODMACommand *cmd, UInt64 offset, void *bytes, UInt64 length);
IOMEM_API UInt64 IODMACommand_writeBytes(IODMACommand *cmd, UInt64 offset, const void *bytes, UInt64 length);

/* ---- segment generation ------------------------------------------------- */

IOMEM_API IOReturn IODMACommand_genIOVMSegments(IODMACommand *cmd, UInt64 *offset, void *segments,
                                                UInt32 *numSegments);
/** IODMACommand_genIOVMSegmentsWithFunction - IOKit's genIOVMSegments
 * overload taking an explicit output function. */
IOMEM_API IOReturn IODMACommand_genIOVMSegmentsWithFunction(IODMACommand *cmd,
        IODMACommand_SegmentFunction outSegFunc, UInt64 *offset, void *segments, UInt32 *numSegments);
IOMEM_API IOReturn IODMACommand_gen32IOVMSegments(IODMACommand *cmd, UInt64 *offset,
                                                  IODMACommand_Segment32 *segments, UInt32 *numSegments);
IOMEM_API IOReturn IODMACommand_gen64IOVMSegments(IODMACommand *cmd, UInt64 *offset,
                                                  IODMACommand_Segment64 *segments, UInt32 *numSegments);

/* ---- accessors ---------------------------------------------------------- */

IOMEM_API UInt8  IODMACommand_getNumAddressBits(const IODMACommand *cmd);
IOMEM_API UInt32 IODMACommand_getAlignment(const IODMACommand *cmd);
IOMEM_API UInt32 IODMACommand_getAlignmentLength(const IODMACommand *cmd);
IOMEM_API UInt32 IODMACommand_getAlignmentInternalSegments(const IODMACommand *cmd);

/* ---- DriverKit shapes (reference §6) ------------------------------------ */

typedef struct IODMACommandSpecification {
	uint64_t options;           /* must be 0 */
	uint64_t maxAddressBits;    /* must fit a byte */
	uint64_t _resv[16];
} IODMACommandSpecification;

/** The segment PrepareForDMA returns (same layout as IODMACommand_Segment64). */
typedef struct IOAddressSegment { uint64_t address; uint64_t length; } IOAddressSegment;

enum { kIOMemoryDirectionNone = 0, kIOMemoryDirectionIn = 1, kIOMemoryDirectionOut = 2,
       kIOMemoryDirectionOutIn = 3, kIOMemoryDirectionInOut = 3 };

IOMEM_API kern_return_t IODMACommand_Create(IOMapper *device, uint64_t options,
        const IODMACommandSpecification *specification, IODMACommand **command);
IOMEM_API kern_return_t IODMACommand_PrepareForDMA(IODMACommand *cmd, uint64_t options,
        IOMemoryDescriptor *memory, uint64_t offset, uint64_t length, uint64_t *flags,
        uint32_t *segmentsCount, IOAddressSegment *segments);
IOMEM_API kern_return_t IODMACommand_CompleteDMA(IODMACommand *cmd, uint64_t options);
IOMEM_API kern_return_t IODMACommand_GetPreparation(IODMACommand *cmd, uint64_t *offset, uint64_t *length,
        IOMemoryDescriptor **memory);
enum { kIODMACommandPerformOperationOptionRead = 0x1, kIODMACommandPerformOperationOptionWrite = 0x2,
       kIODMACommandPerformOperationOptionZero = 0x4 };
IOMEM_API kern_return_t IODMACommand_PerformOperation(IODMACommand *cmd, uint64_t options,
        uint64_t dmaOffset, uint64_t length, uint64_t dataOffset, IOMemoryDescriptor *data);

/* >>walk ================================================================== */
/*
 * The shared walk engine: maximal physically contiguous runs of any
 * descriptor kind, from an offset to an end. General, buffer and device
 * descriptors walk their extents directly (O(1) per run, the start found in
 * O(1) for fixed-stride extents, else O(log extents)); the other kinds go
 * through getPhysicalSegment and merge adjacent pieces. IODMACommand and
 * the cursors apply their own limits (address bits, segment size,
 * alignment) on these runs. Not an IOKit API; the descriptor must stay
 * prepared while a walk is in progress.
 */
typedef struct iomem_walk {
	iomem_md_walk       ext;       /* extents (general, buffer, device) */
	IOMemoryDescriptor *md;        /* NULL: the extents path */
	IOByteCount         off, end;  /* next byte, end of the walk */
	bool                error;     /* a piece with no physical address */
} iomem_walk;

/**
 * iomem_walk_init - start a walk of @md over [@offset, @end). @end is
 * clipped to the descriptor's length. Returns false (an empty walk) when
 * @offset >= @end or the descriptor has no segments at @offset
 * (an unprepared virtual descriptor).
 */
IOMEM_INLINE bool iomem_walk_init(iomem_walk *w, IOMemoryDescriptor *md, IOByteCount offset, IOByteCount end)
{
	IOByteCount len = IOMemoryDescriptor_getLength(md);
	if (end > len)
		end = len;
	w->off = offset;
	w->end = end;
	w->error = false;
	w->md = NULL;
	if (offset >= end) {
		w->ext.n = 0;
		w->ext.length = 0;
		w->ext.off = 0;
		return false;
	}
	if (iomem_md_walk_init(&w->ext, md, offset)) {
		w->ext.length = end;       /* the extent walk clips at its length */
		return true;
	}
	w->md = md;
	return true;
}

/**
 * iomem_walk_next - the next maximal run: its physical address in *@pa,
 * its length returned; 0 at the end (and then w->error says whether a piece
 * had no physical address). O(1) per run on the extents path.
 */
IOMEM_FORCEINLINE IOByteCount iomem_walk_next(iomem_walk *w, addr64_t *pa)
{
	IOByteCount len;
	if (IOMEM_LIKELY(w->md == NULL))
		return iomem_md_walk_next(&w->ext, pa);
	if (w->off >= w->end)
		return 0;
	{
		IOByteCount l = 0;
		addr64_t p = IOMemoryDescriptor_getPhysicalSegment(w->md, w->off, &l, kIOMemoryMapperNone);
		if (p == 0 || l == 0) {
			w->error = true;
			w->off = w->end;
			return 0;
		}
		if (l > w->end - w->off)
			l = w->end - w->off;
		len = l;
		*pa = p;
		/* merge the pieces that continue this run (sub/multi/custom) */
		while (w->off + len < w->end) {
			IOByteCount l2 = 0;
			addr64_t p2 = IOMemoryDescriptor_getPhysicalSegment(w->md, w->off + len, &l2, kIOMemoryMapperNone);
			if (p2 != p + len || l2 == 0)
				break;
			if (l2 > w->end - (w->off + len))
				l2 = w->end - (w->off + len);
			len += l2;
		}
	}
	w->off += len;
	return len;
}

/** iomem_walk_offset - the descriptor offset of the next run. */
IOMEM_INLINE IOByteCount iomem_walk_offset(const iomem_walk *w)
{
	return w->md == NULL ? w->ext.off : w->off;
}

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
