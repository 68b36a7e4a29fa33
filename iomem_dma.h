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
 *     >>impl-cursor     IOMemoryCursor: the generator, specialised per byte order
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
/*
 * IOMemoryCursor and its three byte orders (reference §5): the legacy,
 * stateless way to turn a prepared descriptor into physical segments
 * (IODMACommand superseded it in 10.4.7; drivers ported from older code
 * still use it).
 *
 *   IONaturalMemoryCursor *c = IONaturalMemoryCursor_withSpecification(
 *           65536, 0, 1);                      // 64 KiB segments, +1
 *   IOPhysicalSegment seg[32];
 *   IOByteCount pos = 0, xfer;
 *   UInt32 n;
 *   while ((n = IONaturalMemoryCursor_getPhysicalSegments(c, md, pos, seg, 32, 0, &xfer)) != 0) {
 *       queue_to_device(seg, n);               // host-order {location, length}
 *       pos += xfer;                           // the caller keeps the position
 *   }                                          // 0 with pos < length: an error
 *   IOMemoryCursor_release(c);
 *
 * THE RULES (IOKit's, kept):
 *   - a call emits the first segments of [fromPosition, fromPosition +
 *     maxTransferSize): the maximal physically contiguous runs, each cut
 *     into maxSegmentSize pieces from its start; at most maxSegments of
 *     them, the last one as long as the limits allow;
 *   - the per-call maxTransferSize (a UInt32) overrides the cursor's; 0
 *     takes the cursor's, truncated to 32 bits (unlimited = 0xFFFFFFFF), so
 *     one call never moves more than 4 GiB - 1;
 *   - the cursor keeps no position: the caller advances fromPosition by
 *     *transferSize. A call costs the same at any position, never a
 *     rescan from range 0 (XNU's is O(segments x ranges)): on general,
 *     buffer and device descriptors it starts where the previous call on
 *     the descriptor stopped in O(1) (a hint kept in the descriptor),
 *     anywhere else in O(log extents) (O(1) for fixed-stride extents, e.g.
 *     scattered pages), then costs O(1) per segment; sub, multi,
 *     interleaved and custom descriptors go through getPhysicalSegment per
 *     piece (O(log children) each, merged into maximal runs).
 *
 * DECISIONS AND DEVIATIONS (reference §8.3):
 *   - maxSegmentSize 0 (IOKit's default argument!) means the largest
 *     segment, 0xFFFFFFFF; IOKit emits zero-length segments until the
 *     array is full, and a caller advancing by the transfer size (0) loops
 *     forever. Larger values are clamped to 0xFFFFFFFF, as IOKit does.
 *   - alignment: IOKit has no alignment code (only a debug assert that it
 *     is 1); any value is accepted and ignored, 0 and 1 silently, others
 *     reported under IOMEM_DEBUG.
 *   - the transfer is counted in 64 bits and capped at maxTransferSize, so
 *     it is exact; IOKit's 32-bit counter can wrap when runs pass 4 GiB,
 *     emitting more than 4 GiB and reporting the total modulo 2^32.
 *   - a piece with no physical address ends the call cleanly after the
 *     segments before it (IOKit asserts, then loops forever in release);
 *     the next call at that position returns 0 before the end: an error.
 *   - bad input (NULL cursor, descriptor or segments, maxSegments 0,
 *     fromPosition at or past the end, an unprepared descriptor) returns 0
 *     and sets *transferSize to 0 (IOKit leaves it untouched for the first
 *     ones and crashes or panics on the others); an unprepared virtual
 *     descriptor is reported under IOMEM_DEBUG (XNU panics).
 *   - addresses are CPU-physical, as getPhysicalSegment's (no system mapper
 *     for descriptors yet; IOKit returns IOVAs when one exists).
 *   - the built-in cursors write their byte order inline in the walk (no
 *     call per segment); a user segment function is called per segment.
 *
 * OWNERSHIP: the factories return +1 (NULL on failure); retain/release.
 * A call holds no reference on the descriptor; it must stay prepared for
 * the call's duration. THREAD SAFETY: a cursor is immutable after creation,
 * so any number of threads may generate with one cursor at once (better
 * than IOKit, which promises nothing); retain/release are atomic.
 */

/** IOKit's IOMemoryCursor::PhysicalSegment: 16 bytes, host order for the
 * natural cursor, the same layout byte-swapped for big/little. */
typedef struct IOPhysicalSegment {
	IOPhysicalAddress location;
	IOPhysicalLength  length;
} IOPhysicalSegment;
typedef IOPhysicalSegment IOMemoryCursor_PhysicalSegment;

/** Stores @segment as element @segmentIndex of the caller's array @segments. */
typedef void (*IOMemoryCursor_SegmentFunction)(IOPhysicalSegment segment, void *segments,
                                               UInt32 segmentIndex);
/* IOKit's legacy names of the function type */
typedef IOMemoryCursor_SegmentFunction IOMemoryCursor_OutputSegmentFunc;
typedef IOMemoryCursor_SegmentFunction OutputSegmentFunc;

/* One object type; the subclass names are typedefs of it, so any cursor
 * passes where an IOMemoryCursor * is expected. Fields are private. */
typedef struct IOMemoryCursor IOMemoryCursor;
typedef IOMemoryCursor IONaturalMemoryCursor;
typedef IOMemoryCursor IOBigMemoryCursor;
typedef IOMemoryCursor IOLittleMemoryCursor;

/**
 * IOMemoryCursor_withSpecification - a cursor that stores each segment
 * with @outSegFunc.
 * @maxSegmentSize: longest segment; 0 or > 0xFFFFFFFF -> 0xFFFFFFFF (see
 *                  DECISIONS above; IOKit's default argument is 0).
 * @maxTransferSize: most bytes per call; 0 = unlimited (IOKit's default).
 * @alignment: IOKit's default 1; accepted and ignored (no alignment logic
 *             in IOKit), reported under IOMEM_DEBUG unless 0 or 1.
 * Passing IONatural/IOBig/IOLittleMemoryCursor_outputSegment gives the
 * built-in (inlined) cursor of that byte order.
 * Returns +1, or NULL: NULL @outSegFunc, @maxTransferSize > 0xFFFFFFFF
 * (both as IOKit), out of memory. Thread-safe.
 */
IOMEM_API IOMemoryCursor *IOMemoryCursor_withSpecification(IOMemoryCursor_SegmentFunction outSegFunc,
        IOPhysicalLength maxSegmentSize, IOPhysicalLength maxTransferSize, IOPhysicalLength alignment);

/**
 * IOMemoryCursor_genPhysicalSegments - the segments of @descriptor from
 * @fromPosition, stored with the cursor's function into @segments[0..n).
 * @maxSegments: size of @segments (at most this many are written).
 * @maxTransferSize: most bytes this call; 0 = the cursor's (see the RULES).
 * @transferSize: out, may be NULL: bytes covered by the segments written.
 * Returns n, the number of segments written. 0 (and *transferSize 0) when
 * @fromPosition >= the length (exhausted), and for bad input: NULL
 * @cursor, @descriptor or @segments, @maxSegments 0, an unprepared
 * descriptor (reported under IOMEM_DEBUG), or a piece of the descriptor
 * with no physical address at @fromPosition. Never writes past
 * @maxSegments elements; allocates nothing. The descriptor is +0 and must
 * stay prepared during the call. Thread-safe (see THREAD SAFETY).
 * O(log extents) to start, then O(1) per segment for general, buffer and
 * device descriptors.
 */
IOMEM_API UInt32 IOMemoryCursor_genPhysicalSegments(IOMemoryCursor *cursor, IOMemoryDescriptor *descriptor,
        IOByteCount fromPosition, void *segments, UInt32 maxSegments, UInt32 maxTransferSize,
        IOByteCount *transferSize);

/** IOMemoryCursor_retain - one more reference (NULL: nothing). Atomic. */
IOMEM_API void IOMemoryCursor_retain(IOMemoryCursor *cursor);
/** IOMemoryCursor_release - drop one reference; the last frees the cursor
 * (NULL: nothing). Atomic. */
IOMEM_API void IOMemoryCursor_release(IOMemoryCursor *cursor);

/**
 * IONaturalMemoryCursor_outputSegment / IOBigMemoryCursor_outputSegment /
 * IOLittleMemoryCursor_outputSegment - IOKit's three segment functions:
 * store @segment at ((IOPhysicalSegment *)@segments)[@segmentIndex], its
 * location then its length, each 8 bytes in host / big-endian /
 * little-endian order (big and little accept any alignment of @segments).
 * Usable as an IOMemoryCursor_SegmentFunction; a cursor made with one of
 * them does the same stores inline instead of calling it.
 */
IOMEM_API void IONaturalMemoryCursor_outputSegment(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex);
IOMEM_API void IOBigMemoryCursor_outputSegment(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex);
IOMEM_API void IOLittleMemoryCursor_outputSegment(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex);
/* IOKit's legacy names of the three */
#define naturalOutputSegment IONaturalMemoryCursor_outputSegment
#define bigOutputSegment     IOBigMemoryCursor_outputSegment
#define littleOutputSegment  IOLittleMemoryCursor_outputSegment

/**
 * IONaturalMemoryCursor_withSpecification / IOBigMemoryCursor_withSpecification /
 * IOLittleMemoryCursor_withSpecification - IOMemoryCursor_withSpecification
 * with that class's outputSegment: same arguments (IOKit's default
 * @alignment is 1), same results.
 */
IOMEM_API IONaturalMemoryCursor *IONaturalMemoryCursor_withSpecification(IOPhysicalLength maxSegmentSize,
        IOPhysicalLength maxTransferSize, IOPhysicalLength alignment);
IOMEM_API IOBigMemoryCursor *IOBigMemoryCursor_withSpecification(IOPhysicalLength maxSegmentSize,
        IOPhysicalLength maxTransferSize, IOPhysicalLength alignment);
IOMEM_API IOLittleMemoryCursor *IOLittleMemoryCursor_withSpecification(IOPhysicalLength maxSegmentSize,
        IOPhysicalLength maxTransferSize, IOPhysicalLength alignment);

/**
 * IONaturalMemoryCursor_getPhysicalSegments / IOBigMemoryCursor_getPhysicalSegments /
 * IOLittleMemoryCursor_getPhysicalSegments - IOKit's typed inline wrappers:
 * IOMemoryCursor_genPhysicalSegments with an IOPhysicalSegment array (the
 * output is the cursor's own byte order, as in IOKit). Same results.
 */
IOMEM_INLINE UInt32 IONaturalMemoryCursor_getPhysicalSegments(IONaturalMemoryCursor *cursor,
        IOMemoryDescriptor *descriptor, IOByteCount fromPosition, IOPhysicalSegment *segments,
        UInt32 maxSegments, UInt32 maxTransferSize, IOByteCount *transferSize)
{
	return IOMemoryCursor_genPhysicalSegments(cursor, descriptor, fromPosition, segments, maxSegments,
	                                          maxTransferSize, transferSize);
}
IOMEM_INLINE UInt32 IOBigMemoryCursor_getPhysicalSegments(IOBigMemoryCursor *cursor,
        IOMemoryDescriptor *descriptor, IOByteCount fromPosition, IOPhysicalSegment *segments,
        UInt32 maxSegments, UInt32 maxTransferSize, IOByteCount *transferSize)
{
	return IOMemoryCursor_genPhysicalSegments(cursor, descriptor, fromPosition, segments, maxSegments,
	                                          maxTransferSize, transferSize);
}
IOMEM_INLINE UInt32 IOLittleMemoryCursor_getPhysicalSegments(IOLittleMemoryCursor *cursor,
        IOMemoryDescriptor *descriptor, IOByteCount fromPosition, IOPhysicalSegment *segments,
        UInt32 maxSegments, UInt32 maxTransferSize, IOByteCount *transferSize)
{
	return IOMemoryCursor_genPhysicalSegments(cursor, descriptor, fromPosition, segments, maxSegments,
	                                          maxTransferSize, transferSize);
}

/* >>dmacontroller ========================================================= */

/* >>dmaevent ============================================================== */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_DMA_H_INCLUDED */

/* >>implementation ======================================================== */

#if defined(IOMEM_IMPLEMENTATION) && !defined(IOMEM_DMA__IMPLEMENTATION_INCLUDED)
#define IOMEM_DMA__IMPLEMENTATION_INCLUDED 1

/* >>impl-cursor: IOMemoryCursor ------------------------------------------- */

/* The output formats; a constant argument of the force-inline generator,
 * so each built-in cursor gets its own loop with its stores inline. */
enum {
	IOMEM__CURSOR_USER = 0,     /* call outSeg per segment */
	IOMEM__CURSOR_NATURAL,
	IOMEM__CURSOR_BIG,
	IOMEM__CURSOR_LITTLE
};

struct IOMemoryCursor {
	IOMemoryCursor_SegmentFunction outSeg;
	IOPhysicalLength maxSegmentSize;    /* 1..0xFFFFFFFF */
	IOPhysicalLength maxTransferSize;   /* all ones: unlimited */
	IOPhysicalLength alignMask;         /* stored, never used (as IOKit) */
	uint32_t         refcount;
	uint32_t         format;            /* IOMEM__CURSOR_* */
};

#define IOMEM__CURSOR_NAME "IOMemoryCursor"
#define IOMEM__CURSOR_SEG_MAX ((IOPhysicalLength)0xFFFFFFFFu)

#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__)
#  define IOMEM__CURSOR_VECTOR_STORE 1
#  define IOMEM__CURSOR_HOST_BIG (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
#else
#  define IOMEM__CURSOR_VECTOR_STORE 0
#endif

/* Stores the segment {@location, @length} at @p (any alignment), each field
 * 8 bytes in big (@big) or little endian order; with GCC/Clang as one
 * 16-byte vector store (bswap each field first when the order differs from
 * the host's), so the three byte orders cost the same. */
IOMEM_FORCEINLINE void iomem__cursor_store_seg(void *p, uint64_t location, uint64_t length, int big)
{
#if IOMEM__CURSOR_VECTOR_STORE
	typedef uint64_t iomem__v2u64 __attribute__((vector_size(16)));
	iomem__v2u64 t;
	if (big != IOMEM__CURSOR_HOST_BIG) {
		location = __builtin_bswap64(location);
		length = __builtin_bswap64(length);
	}
	t[0] = location;
	t[1] = length;
	__builtin_memcpy(p, &t, sizeof t);   /* one 16-byte store where the target has one */
#else
	unsigned char *b = (unsigned char *)p;
	int k;
	for (k = 0; k < 8; k++) {
		b[k] = (unsigned char)(location >> (big ? 56 - 8 * k : 8 * k));
		b[8 + k] = (unsigned char)(length >> (big ? 56 - 8 * k : 8 * k));
	}
#endif
}

IOMEM_FORCEINLINE void iomem__cursor_put(const IOMemoryCursor *c, void *segments, UInt32 index,
                                         IOPhysicalAddress location, IOPhysicalLength length, int format)
{
	if (format == IOMEM__CURSOR_NATURAL) {
#if IOMEM__CURSOR_VECTOR_STORE
		/* host order: the very same store as the other two */
		iomem__cursor_store_seg((IOPhysicalSegment *)segments + index, location, length, IOMEM__CURSOR_HOST_BIG);
#else
		IOPhysicalSegment *s = (IOPhysicalSegment *)segments + index;
		s->location = location;
		s->length = length;
#endif
	} else if (format == IOMEM__CURSOR_BIG || format == IOMEM__CURSOR_LITTLE) {
		iomem__cursor_store_seg((unsigned char *)segments + (vm_size_t)index * sizeof(IOPhysicalSegment),
		                        location, length, format == IOMEM__CURSOR_BIG);
	} else {
		IOPhysicalSegment seg;
		seg.location = location;
		seg.length = length;
		c->outSeg(seg, segments, index);
	}
}

/* Sub, multi, interleaved and custom descriptors: the shared walk
 * (iomem_walk, getPhysicalSegment per piece, merged into maximal runs).
 * Out of line, so the extents loop stays small; the format is a plain
 * argument here (a predicted branch next to the getPhysicalSegment calls). */
IOMEM__PRIVATE IOMEM__NOINLINE UInt32 iomem__cursor_gen_walk(const IOMemoryCursor *c, IOMemoryDescriptor *md,
        IOByteCount pos, IOByteCount end, void *segments, UInt32 maxSegments, IOByteCount *transferSize,
        int format)
{
	const IOPhysicalLength maxSeg = c->maxSegmentSize;
	IOByteCount len, sum = 0;
	addr64_t pa = 0;
	UInt32 n = 0;
	iomem_walk w;
	if (iomem_walk_init(&w, md, pos, end)) {
		while (n < maxSegments && (len = iomem_walk_next(&w, &pa)) != 0) {
			if (IOMEM_UNLIKELY(pa == 0))
				break;             /* no physical address: end cleanly */
			while (IOMEM_UNLIKELY(len > maxSeg)) {
				iomem__cursor_put(c, segments, n++, pa, maxSeg, format);
				sum += maxSeg;
				if (n == maxSegments)
					goto out;
				pa += maxSeg;
				len -= maxSeg;
			}
			iomem__cursor_put(c, segments, n++, pa, len, format);
			sum += len;
		}
	}
out:
	if (transferSize != NULL)
		*transferSize = sum;
	return n;
}

/*
 * The generator (reference §5.1, IOKit's loop restated on maximal runs):
 * [pos, end) is cut into the maximal physically contiguous runs (the
 * descriptor's extents are maximal; the iomem_walk path merges), each run
 * into maxSegmentSize pieces from its start; the call stops when
 * maxSegments are written - the last one taking what the limits allow, as
 * IOKit's reserved last slot does. The same output as IOKit's loop.
 *
 * General, buffer and device descriptors are walked straight over their
 * extents: the start is found with the extent engine (O(1) for a fixed
 * stride, else iomem_extents_find from the descriptor's hint - where the
 * last call on it stopped, so a caller resuming there pays O(1) whatever
 * the number of extents, O(log extents) anywhere else), then one extent
 * per segment. Other kinds go through the shared walk (iomem_walk).
 */
IOMEM_FORCEINLINE UInt32 iomem__cursor_gen(const IOMemoryCursor *c, IOMemoryDescriptor *md, IOByteCount pos,
                                           void *segments, UInt32 maxSegments, IOByteCount limit,
                                           IOByteCount *transferSize, int format)
{
	const IOPhysicalLength maxSeg = c->maxSegmentSize;
	const iomem_md_extent *e = md->iomem__extents;
	IOByteCount total = 0, len, end;
	addr64_t pa = 0;
	UInt32 n = 0;

	end = md->iomem__length;           /* pos < end: checked by the caller */
	if (end - pos > limit)
		end = pos + limit;
	if (IOMEM_LIKELY(e != NULL)) {
		IOByteCount off = pos, eend;
		uint32_t i;
		if (md->iomem__ext_shift != 0)
			i = (uint32_t)((pos + md->iomem__ext_bias) >> md->iomem__ext_shift);
		else
			i = iomem_extents_find(e, md->iomem__extent_count, IOMEM__LOAD_RELAXED32(&md->iomem__hint), pos);
		pa = e[i].phys + (pos - (i ? e[i - 1].end : 0));
		for (;;) {
			/* extent i from off, with every check: the first one, the
			 * last one, one to split, one with no address */
			eend = e[i].end < end ? e[i].end : end;
			len = eend - off;
			if (IOMEM_UNLIKELY(pa == 0))
				break;                     /* no physical address: end cleanly */
			while (IOMEM_UNLIKELY(len > maxSeg)) {
				iomem__cursor_put(c, segments, n++, pa, maxSeg, format);
				total += maxSeg;
				if (n == maxSegments)
					goto done;
				pa += maxSeg;
				len -= maxSeg;
			}
			iomem__cursor_put(c, segments, n++, pa, len, format);
			total += len;
			off = eend;
			if (off >= end || n == maxSegments)
				break;
			/* the fast path: whole extents that need none of that
			 * (extent i + 1 exists while off < end); one branch */
			{
				const iomem_md_extent *x = e + i + 1;
				const unsigned shift = md->iomem__ext_shift;
				IOByteCount off0 = off;
				if (shift != 0 && ((IOByteCount)1 << shift) <= maxSeg) {
					/* fixed stride (e.g. scattered pages): every extent
					 * ending before end is 2^shift long, so only the
					 * address is loaded and the count is known */
					const IOByteCount stride = (IOByteCount)1 << shift;
					IOByteCount whole = (end - off - 1) >> shift;
					UInt32 k = whole < (IOByteCount)(maxSegments - n) ? (UInt32)whole : maxSegments - n, j;
					for (j = 0; j < k; j++) {
						IOPhysicalAddress p = x[j].phys;
						if (IOMEM_UNLIKELY(p == 0))
							break;
						iomem__cursor_put(c, segments, n + j, p, stride, format);
					}
					n += j;
					x += j;
					off += (IOByteCount)j << shift;
				} else {
					while (n < maxSegments) {
						IOPhysicalAddress p = x->phys;
						IOByteCount ee = x->end, l = ee - off;
						if (IOMEM_UNLIKELY((ee >= end) | (l > maxSeg) | (p == 0)))
							break;
						iomem__cursor_put(c, segments, n++, p, l, format);
						off = ee;
						x++;
					}
				}
				total += off - off0;
				i = (uint32_t)(x - e) - 1;
			}
			if (n == maxSegments)
				break;
			pa = e[++i].phys;
		}
done:
		/* i holds the last byte written: the next call resumes in O(1) */
		if (md->iomem__ext_shift == 0)
			IOMEM__STORE_RELAXED32(&md->iomem__hint, i);
	} else {
		return iomem__cursor_gen_walk(c, md, pos, end, segments, maxSegments, transferSize, format);
	}
	if (transferSize != NULL)
		*transferSize = total;
	return n;
}

IOMEM__PRIVATE IOMemoryCursor *iomem__cursor_create(IOMemoryCursor_SegmentFunction outSegFunc,
        IOPhysicalLength maxSegmentSize, IOPhysicalLength maxTransferSize, IOPhysicalLength alignment)
{
	IOMemoryCursor *c;
	if (outSegFunc == NULL || maxTransferSize > 0xFFFFFFFFu)
		return NULL;
#if IOMEM__DEBUG
	if (alignment > 1)
		iomem__report("IOMemoryCursor_withSpecification: alignment %u is ignored "
		              "(IOKit's cursors have no alignment code; use IODMACommand)",
		              (unsigned long long)alignment);
#endif
	c = (IOMemoryCursor *)iomem__alloc_internal(sizeof *c, IOMEM__CURSOR_NAME);
	if (c == NULL)
		return NULL;
	c->outSeg = outSegFunc;
	c->maxSegmentSize = (maxSegmentSize == 0 || maxSegmentSize > IOMEM__CURSOR_SEG_MAX)
	                    ? IOMEM__CURSOR_SEG_MAX : maxSegmentSize;
	c->maxTransferSize = maxTransferSize ? maxTransferSize : ~(IOPhysicalLength)0;
	c->alignMask = alignment - 1;
	c->refcount = 1;
	if (outSegFunc == IONaturalMemoryCursor_outputSegment)
		c->format = IOMEM__CURSOR_NATURAL;
	else if (outSegFunc == IOBigMemoryCursor_outputSegment)
		c->format = IOMEM__CURSOR_BIG;
	else if (outSegFunc == IOLittleMemoryCursor_outputSegment)
		c->format = IOMEM__CURSOR_LITTLE;
	else
		c->format = IOMEM__CURSOR_USER;
	return c;
}

IOMEM_API IOMemoryCursor *IOMemoryCursor_withSpecification(IOMemoryCursor_SegmentFunction outSegFunc,
        IOPhysicalLength maxSegmentSize, IOPhysicalLength maxTransferSize, IOPhysicalLength alignment)
{
	return iomem__cursor_create(outSegFunc, maxSegmentSize, maxTransferSize, alignment);
}

IOMEM_API IONaturalMemoryCursor *IONaturalMemoryCursor_withSpecification(IOPhysicalLength maxSegmentSize,
        IOPhysicalLength maxTransferSize, IOPhysicalLength alignment)
{
	return iomem__cursor_create(IONaturalMemoryCursor_outputSegment, maxSegmentSize, maxTransferSize, alignment);
}

IOMEM_API IOBigMemoryCursor *IOBigMemoryCursor_withSpecification(IOPhysicalLength maxSegmentSize,
        IOPhysicalLength maxTransferSize, IOPhysicalLength alignment)
{
	return iomem__cursor_create(IOBigMemoryCursor_outputSegment, maxSegmentSize, maxTransferSize, alignment);
}

IOMEM_API IOLittleMemoryCursor *IOLittleMemoryCursor_withSpecification(IOPhysicalLength maxSegmentSize,
        IOPhysicalLength maxTransferSize, IOPhysicalLength alignment)
{
	return iomem__cursor_create(IOLittleMemoryCursor_outputSegment, maxSegmentSize, maxTransferSize, alignment);
}

IOMEM_API void IOMemoryCursor_retain(IOMemoryCursor *cursor)
{
	if (cursor != NULL)
		iomem__ref_retain(&cursor->refcount);
}

IOMEM_API void IOMemoryCursor_release(IOMemoryCursor *cursor)
{
	if (cursor != NULL && iomem__ref_release(&cursor->refcount) == 0)
		iomem__free_internal(cursor, sizeof *cursor, IOMEM__CURSOR_NAME);
}

IOMEM_API void IONaturalMemoryCursor_outputSegment(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex)
{
	((IOPhysicalSegment *)segments)[segmentIndex] = segment;
}

IOMEM_API void IOBigMemoryCursor_outputSegment(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex)
{
	iomem__cursor_put(NULL, segments, segmentIndex, segment.location, segment.length, IOMEM__CURSOR_BIG);
}

IOMEM_API void IOLittleMemoryCursor_outputSegment(IOPhysicalSegment segment, void *segments, UInt32 segmentIndex)
{
	iomem__cursor_put(NULL, segments, segmentIndex, segment.location, segment.length, IOMEM__CURSOR_LITTLE);
}

IOMEM_API UInt32 IOMemoryCursor_genPhysicalSegments(IOMemoryCursor *cursor, IOMemoryDescriptor *descriptor,
        IOByteCount fromPosition, void *segments, UInt32 maxSegments, UInt32 maxTransferSize,
        IOByteCount *transferSize)
{
	IOByteCount limit;
	if (IOMEM_UNLIKELY(cursor == NULL || descriptor == NULL || segments == NULL || maxSegments == 0 ||
	                   fromPosition >= descriptor->iomem__length)) {
		if (transferSize != NULL)
			*transferSize = 0;
		return 0;
	}
	if (IOMEM_UNLIKELY(descriptor->iomem__extents == NULL &&
	                   (descriptor->iomem__kind == IOMEM_MD_GENERAL || descriptor->iomem__kind == IOMEM_MD_BUFFER ||
	                    descriptor->iomem__kind == IOMEM_MD_DEVICE))) {
#if IOMEM__DEBUG
		iomem__report("IOMemoryCursor_genPhysicalSegments(%p): descriptor %p is not prepared "
		              "(call IOMemoryDescriptor_prepare first)", (void *)cursor, (void *)descriptor);
#endif
		if (transferSize != NULL)
			*transferSize = 0;
		return 0;
	}
	/* IOKit: 0 takes the cursor's maximum truncated to 32 bits */
	limit = maxTransferSize ? maxTransferSize : (UInt32)cursor->maxTransferSize;
	switch (cursor->format) {
	case IOMEM__CURSOR_NATURAL:
		return iomem__cursor_gen(cursor, descriptor, fromPosition, segments, maxSegments, limit,
		                         transferSize, IOMEM__CURSOR_NATURAL);
	case IOMEM__CURSOR_BIG:
		return iomem__cursor_gen(cursor, descriptor, fromPosition, segments, maxSegments, limit,
		                         transferSize, IOMEM__CURSOR_BIG);
	case IOMEM__CURSOR_LITTLE:
		return iomem__cursor_gen(cursor, descriptor, fromPosition, segments, maxSegments, limit,
		                         transferSize, IOMEM__CURSOR_LITTLE);
	default:
		return iomem__cursor_gen(cursor, descriptor, fromPosition, segments, maxSegments, limit,
		                         transferSize, IOMEM__CURSOR_USER);
	}
}


#endif /* IOMEM_IMPLEMENTATION */
