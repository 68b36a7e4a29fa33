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
 *   >>posixdma        the POSIX software DMA engine (a controller on a
 *                     worker thread)                         (DMA controller issue)
 *   >>linuxdma        Linux: a controller over a dmaengine channel
 *   >>implementation  the part compiled once (IOMEM_IMPLEMENTATION):
 *     >>impl-dmacmd     IODMACommand: output functions, the bounce pool,
 *                       specification, prepare/complete, the engine,
 *                       DriverKit shapes
 *     >>impl-cursor     IOMemoryCursor: the generator, specialised per byte order
 *     >>impl-dmacontroller  the controller object and the registry
 *     >>impl-dmaevent       the event source: records, queue, sync wait
 *     >>impl-posixdma       the software engine: channels, worker, callback thread
 *     >>impl-linuxdma       Linux: the controller over a dmaengine channel
 *
 * The README's feature table says what works on which backend today.
 *
 * LICENSE: MIT (see iomem.h).
 */
#ifndef IOMEM_DMA_H_INCLUDED
#define IOMEM_DMA_H_INCLUDED

#include "iomem.h"
#include "iomem_map.h"     /* IOMapper: IODMACommand maps through it */

/* Nothing else after a backend error (iomem.h): one clear message. */
#ifndef IOMEM__BACKEND_CONFLICT

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

/* The six output functions (never refuse; @target unused, may be NULL).
 * 32-bit: {address, length} as two UInt32 at segments + 8*index (truncated:
 * the specification rule keeps 32-bit devices at <= 32 address bits; set
 * maxSegmentSize too); 64-bit: two UInt64 at segments + 16*index. Host =
 * native order, Big/Little byte-swapped as named. genIOVMSegments
 * recognises them and inlines the store (a user function is called). */
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
 * public member; the struct is defined after the >>walk section (it keeps
 * a walk state). */

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
 * IODMACommand_withSpecificationOptions - the SegmentOptions form (the
 * options are copied). Refused (NULL; kIOReturnBadArgument from
 * prepareWithSpecification / weakWithSpecification): NULL function or
 * options, numAddressBits > 32 with a 32-bit output (0 becomes 32 there),
 * non-zero numAddressBits below the page shift, an alignment that is not a
 * power of two, kBypassed while a mapper exists (given or system), an
 * unknown mapping type (kTypeMask value other than kMapped, kBypassed,
 * kNonCoherent, kUnmapped). maxSegmentSize/maxTransferSize 0 = unlimited.
 * @mapper: retained by the command; NULL = the system mapper (retained
 * too) for every type but kUnmapped. NULL also when out of memory.
 */
IOMEM_API IODMACommand *IODMACommand_withSpecificationOptions(IODMACommand_SegmentFunction outSegFunc,
        const IODMACommand_SegmentOptions *segmentOptions, uint32_t mappingOptions,
        IOMapper *mapper, void *refCon);
/** IODMACommand_withRefCon - a command with no specification yet (use
 * prepareWithSpecification; until then prepare returns kIOReturnNotReady).
 * +1 or NULL (no memory). */
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
/** IODMACommand_retain / release - +1 / -1 (NULL: no-op; thread-safe).
 * The last release completes and releases a descriptor still attached
 * (IOKit leaks it) and releases the mapper. */
IOMEM_API void IODMACommand_retain(IODMACommand *cmd);
IOMEM_API void IODMACommand_release(IODMACommand *cmd);

/* ---- descriptor, prepare, complete -------------------------------------- */
/*
 * DEVIATIONS from IOKit (reference §2.1, §8.3):
 *   - a refused nested prepare (other range: kIOReturnNotReady) or a first
 *     prepare refused for its length alignment (kIOReturnNotAligned) does
 *     NOT leave the active count raised (IOKit's quirk, item 8, fixed): no
 *     complete is owed for it;
 *   - whether to bounce is decided from the prepared range's real physical
 *     addresses (a preflight walk), never from "the top of RAM";
 *   - kNonCoherent uses the mapper like kMapped;
 *   - synchronize(kForceDoubleBuffer) on a nested preparation -> Busy;
 *   - generation clips a run at the prepared end BEFORE the address,
 *     size and alignment rules (IOKit: after), so no rule looks at bytes
 *     outside the prepared range; a resumed walk at any offset re-seeks in
 *     O(log extents) (IOKit restarts from the descriptor's start);
 *   - the internal-alignment trim (step d) is skipped for the segment that
 *     ends the prepared range (there is no next segment to align);
 *   - cloneCommand does not swap the two alignment fields;
 *   - the bounce pages come from a pool of 64-page low chunks (bitmap +
 *     ctz); the double buffer is an IOBufferMemoryDescriptor below
 *     min(4 GiB, the device limit), aligned to max(page, alignment).
 */

/**
 * IODMACommand_setMemoryDescriptor - attach @mem (retained; the command
 * does not wire it: prepare it first). The same descriptor again: success
 * (with !@autoPrepare every preparation is completed first). Another one
 * while prepared -> kIOReturnBusy; otherwise the previous one is cleared.
 * NULL = clear. @autoPrepare: prepare(0, 0, true, true); its failure is
 * returned and the descriptor is cleared again. Without a mapper the
 * descriptor is marked DMA active (IOMEM_DEBUG reports its final complete
 * until the command lets go). kIOReturnBadArgument for a NULL @cmd.
 */
IOMEM_API IOReturn IODMACommand_setMemoryDescriptor(IODMACommand *cmd, const IOMemoryDescriptor *mem,
                                                    bool autoPrepare);
/** IODMACommand_clearMemoryDescriptor - completes every preparation
 * (@autoComplete; else kIOReturnNotReady while prepared) and releases the
 * descriptor. Success with none attached; kIOReturnBadArgument (NULL). */
IOMEM_API IOReturn IODMACommand_clearMemoryDescriptor(IODMACommand *cmd, bool autoComplete);
/** IODMACommand_getMemoryDescriptor - the client's descriptor (+0) or NULL. */
IOMEM_API const IOMemoryDescriptor *IODMACommand_getMemoryDescriptor(const IODMACommand *cmd);
/** IODMACommand_getIOMemoryDescriptor - the double buffer while one is in
 * use, else the client's descriptor (+0), or NULL. */
IOMEM_API const IOMemoryDescriptor *IODMACommand_getIOMemoryDescriptor(const IODMACommand *cmd);
/**
 * IODMACommand_prepare - prepare [@offset, @offset + @length) of the
 * descriptor (@length 0 = the descriptor's length) for DMA: bounce what
 * the device cannot reach (copy-in when the direction has Out or is None
 * and @synchronize), map it through the mapper (kMapped with a mapper:
 * one iovmMapMemory; a mapper with iovmMapExtents - the Linux DMA API -
 * instead gives a list of device-address extents, generated from like a
 * descriptor's, never bounced here, with iovmSync(Out) after mapping,
 * (In) at the last complete, both from synchronize), flush the cache
 * (kNonCoherent and @flushCache).
 * Nested calls with the same range only count. Errors, in this order:
 * kIOReturnBadArgument (NULL @cmd), kIOReturnNotReady (no specification
 * or no descriptor), kIOReturnNoSpace (@length > maxTransferSize),
 * kIOReturnBadArgument (range outside the descriptor), kIOReturnNotReady
 * (prepared with another range), kIOReturnNotAligned (@length not a
 * multiple of fAlignmentLength), kIOReturnNotReady (a piece with no
 * physical address: descriptor not prepared), kIOReturnNoResources (no
 * bounce memory; nothing kept, the command still usable), or the mapper's
 * error. On any error the command is not prepared by this call.
 */
IOMEM_API IOReturn IODMACommand_prepare(IODMACommand *cmd, UInt64 offset, UInt64 length,
                                        bool flushCache, bool synchronize);
/** IODMACommand_complete - undo one prepare; the last one invalidates the
 * cache (kNonCoherent and @invalidateCache), copies the bounce data back
 * (direction In or None, and @synchronize), unmaps and frees the bounce
 * memory. kIOReturnNotReady when not prepared; kIOReturnBadArgument (NULL). */
IOMEM_API IOReturn IODMACommand_complete(IODMACommand *cmd, bool invalidateCache, bool synchronize);
/** IODMACommand_prepareWithSpecification - set a new specification (rules
 * and errors of withSpecificationOptions: kIOReturnBadArgument), then
 * prepare (its errors). kIOReturnNotPermitted while prepared. */
IOMEM_API IOReturn IODMACommand_prepareWithSpecification(IODMACommand *cmd,
        IODMACommand_SegmentFunction outSegFunc, const IODMACommand_SegmentOptions *segmentOptions,
        uint32_t mappingOptions, IOMapper *mapper, UInt64 offset, UInt64 length,
        bool flushCache, bool synchronize);
/**
 * IODMACommand_synchronize - kIODirectionOut: copy descriptor -> bounce;
 * kIODirectionIn: bounce -> descriptor (whatever the descriptor's
 * direction; a no-op success when nothing is bounced);
 * kForceDoubleBuffer: success if double-buffered, else complete (copying
 * back) and prepare again with a double buffer. kIOReturnBadArgument (NULL
 * @cmd, both In and Out, or none of In/Out/kForceDoubleBuffer),
 * kIOReturnNotReady (not prepared), kIOReturnBusy (kForceDoubleBuffer on a
 * nested preparation), or prepare's errors.
 */
IOMEM_API IOReturn IODMACommand_synchronize(IODMACommand *cmd, IOOptionBits options);
/** IODMACommand_getPreparedOffsetAndLength - either pointer may be NULL.
 * kIOReturnNotReady when not prepared; kIOReturnBadArgument (NULL @cmd). */
IOMEM_API IOReturn IODMACommand_getPreparedOffsetAndLength(IODMACommand *cmd, UInt64 *offset, UInt64 *length);
/** IODMACommand_readBytes / writeBytes - copy at @offset relative to the
 * prepared offset, clamped to the prepared length, through the DMA view
 * (the bounce copy where bounced). Returns the bytes copied: 0 when not
 * prepared, @offset >= prepared length, or NULL @cmd/@bytes; fewer when
 * the descriptor refuses (writeBytes on memory wired Out-only). */
IOMEM_API UInt64 IODMACommand_readBytes(IODMACommand *cmd, UInt64 offset, void *bytes, UInt64 length);
IOMEM_API UInt64 IODMACommand_writeBytes(IODMACommand *cmd, UInt64 offset, const void *bytes, UInt64 length);

/* ---- segment generation ------------------------------------------------- */

/**
 * IODMACommand_genIOVMSegments - up to *@numSegments segments from *@offset
 * (relative to the prepared offset) through the command's output function:
 * CPU-physical addresses, IOVAs with a mapper, bounce pages where bounced;
 * cut at the address limit (straddling), maxSegmentSize, trimmed to
 * fAlignmentLength multiples and so the next segment starts aligned to
 * fAlignmentInternalSegments. On success *@offset = the byte after the last
 * segment, *@numSegments = segments written. Resuming at the previous end
 * is O(1); any other offset O(log extents). Errors (in/out unchanged,
 * segments already stored stay): kIOReturnBadArgument (NULL @cmd,
 * @offset, @segments or @numSegments, *@numSegments 0),
 * kIOReturnNotReady (not prepared, or the descriptor has no physical
 * address there), kIOReturnOverrun (*@offset at or past the prepared
 * length: the normal end), kIOReturnMessageTooLarge (a segment beyond the
 * address limit that cannot be bounced - cursor/kIterateOnly, mapped - or
 * the output function returned false), kIOReturnNotAligned (a cursor met
 * a misaligned segment). Caller serialises calls on one command.
 */
IOMEM_API IOReturn IODMACommand_genIOVMSegments(IODMACommand *cmd, UInt64 *offset, void *segments,
                                                UInt32 *numSegments);
/** IODMACommand_genIOVMSegmentsWithFunction - IOKit's genIOVMSegments
 * overload taking an explicit output function (NULL: kIOReturnBadArgument);
 * otherwise as genIOVMSegments. */
IOMEM_API IOReturn IODMACommand_genIOVMSegmentsWithFunction(IODMACommand *cmd,
        IODMACommand_SegmentFunction outSegFunc, UInt64 *offset, void *segments, UInt32 *numSegments);
/** IODMACommand_gen32IOVMSegments / gen64IOVMSegments - genIOVMSegments
 * with a typed array (the command's output function must match it). */
IOMEM_API IOReturn IODMACommand_gen32IOVMSegments(IODMACommand *cmd, UInt64 *offset,
                                                  IODMACommand_Segment32 *segments, UInt32 *numSegments);
IOMEM_API IOReturn IODMACommand_gen64IOVMSegments(IODMACommand *cmd, UInt64 *offset,
                                                  IODMACommand_Segment64 *segments, UInt32 *numSegments);

/* ---- accessors ---------------------------------------------------------- */
/* The specification as stored (alignments as values: mask + 1; address
 * bits as given, 32 for a 32-bit output given 0). 0 for a NULL @cmd. */

IOMEM_API UInt8  IODMACommand_getNumAddressBits(const IODMACommand *cmd);
IOMEM_API UInt32 IODMACommand_getAlignment(const IODMACommand *cmd);
IOMEM_API UInt32 IODMACommand_getAlignmentLength(const IODMACommand *cmd);
IOMEM_API UInt32 IODMACommand_getAlignmentInternalSegments(const IODMACommand *cmd);
/** iomem_dmacmd_getMapper - the mapper whose IOVAs genIOVMSegments emits
 * (+0): set for kMapped/kNonCoherent with a mapper; NULL when the segments
 * are CPU-physical (kUnmapped, kBypassed, no mapper) or @cmd is NULL. Not an
 * IOKit API (a software DMA engine translates through it). */
IOMEM_API IOMapper *iomem_dmacmd_getMapper(const IODMACommand *cmd);

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

/**
 * IODMACommand_Create - a command for @device's IOMMU (@device: the
 * IOMapper; NULL = the system mapper, none = CPU-physical): OutputHost64,
 * maxAddressBits, no size or alignment limits, kMapped. +1 in *@command.
 * kIOReturnBadArgument (NULL @command or @specification, non-zero
 * @options or specification->options, maxAddressBits > 255 or below the
 * page shift), kIOReturnNoMemory; *@command NULL on failure.
 */
IOMEM_API kern_return_t IODMACommand_Create(IOMapper *device, uint64_t options,
        const IODMACommandSpecification *specification, IODMACommand **command);
/**
 * IODMACommand_PrepareForDMA - under the command's lock: prepare (wire)
 * @memory with its own direction, attach it, prepare [@offset, @length)
 * (0 = all), generate up to min(*@segmentsCount, 32) segments from 0 into
 * @segments; *@flags (may be NULL) = kIOMemoryDirectionOut if the device
 * may read, In if it may write. Any failure undoes all three steps.
 * kIOReturnBadArgument (NULL @cmd/@memory/@segmentsCount/@segments,
 * *@segmentsCount 0, non-zero @options), kIOReturnBusy (a descriptor is
 * attached), or the error of the failing step (descriptor prepare,
 * IODMACommand_prepare, genIOVMSegments). Segments may not cover the
 * whole range (as DriverKit): sum them.
 */
IOMEM_API kern_return_t IODMACommand_PrepareForDMA(IODMACommand *cmd, uint64_t options,
        IOMemoryDescriptor *memory, uint64_t offset, uint64_t length, uint64_t *flags,
        uint32_t *segmentsCount, IOAddressSegment *segments);
/** IODMACommand_CompleteDMA - detach (completing the command), then
 * complete the descriptor if PrepareForDMA prepared it. kIOReturnBadArgument
 * (NULL @cmd, non-zero @options), kIOReturnNotReady (not prepared). */
IOMEM_API kern_return_t IODMACommand_CompleteDMA(IODMACommand *cmd, uint64_t options);
/** IODMACommand_GetPreparation - the prepared offset, length and the
 * descriptor (+1; any pointer may be NULL). kIOReturnBadArgument (NULL
 * @cmd), kIOReturnNotReady (not prepared). */
IOMEM_API kern_return_t IODMACommand_GetPreparation(IODMACommand *cmd, uint64_t *offset, uint64_t *length,
        IOMemoryDescriptor **memory);
enum { kIODMACommandPerformOperationOptionRead = 0x1, kIODMACommandPerformOperationOptionWrite = 0x2,
       kIODMACommandPerformOperationOptionZero = 0x4 };
/**
 * IODMACommand_PerformOperation - exactly one of Read (DMA memory at
 * @dmaOffset -> @data at @dataOffset), Write (@data -> DMA memory), Zero
 * (DMA memory; @data unused, may be NULL), @length bytes, through the DMA
 * view (the bounce copy where bounced) and a 256-byte stack buffer.
 * kIOReturnBadArgument (NULL @cmd, another @options value, NULL @data for
 * Read/Write, a range outside the prepared range or @data),
 * kIOReturnNotReady (not prepared), kIOReturnUnderrun (a short copy, e.g.
 * writing memory wired Out-only).
 */
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
		w->ext.e = NULL;
		w->ext.n = 0;
		w->ext.i = 0;
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
IOMEM__HOT_INLINE IOByteCount iomem_walk_next(iomem_walk *w, addr64_t *pa)
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

/* ---- the IODMACommand object (after >>walk: it keeps a walk) ----------- */

struct iomem__dma_bounce_page;   /* one sparse bounce page (implementation) */

/* Keep away from the fields but fRefCon: they are private (iomem__). */
struct IODMACommand {
	void *fRefCon;                                  /* IOKit's public member */
	/* -- what genIOVMSegments reads on every call, packed together (the
	 *    first 64 bytes, then the walk): a driver with many commands in
	 *    flight takes few cache misses -- */
	uint32_t  iomem__active;                        /* prepare nesting */
	uint8_t   iomem__fmt;                           /* which built-in output, or generic */
	uint8_t   iomem__simple;                        /* no alignment rule, no sparse page */
	uint8_t   iomem__single;                        /* simple, and one run: at iomem__single_pa */
	uint8_t   iomem__seg_shift;                     /* log2(max_seg) if a power of two, else 64 */
	IOByteCount iomem__pos;                         /* the walk's relative offset; ~0: none */
	IOByteCount iomem__prep_len;
	uint64_t  iomem__max_seg;                       /* ~0: unlimited */
	uint64_t  iomem__lim;                           /* the limit the engine checks; ~0: none can bite */
	addr64_t  iomem__single_pa;                     /* the run's address (iomem__single) */
	IOByteCount iomem__run_len;                     /* rest of the current run */
	addr64_t    iomem__run_pa;
	iomem_walk  iomem__walk;                        /* the resumable walk at iomem__pos */
	/* -- the rest of the preparation -- */
	IOByteCount iomem__prep_off;
	uint8_t   iomem__cursor;                        /* no bouncing possible: misfits are errors */
	uint8_t   iomem__bounce;                        /* IOMEM__DMA_BOUNCE_* */
	uint8_t   iomem__mapped;                        /* 1: one IOVA run, 2: mapper extents */
	uint8_t   iomem__dma_marked;                    /* raised the descriptor's DMA-active count */
	uint8_t   iomem__dk_prepared;                   /* PrepareForDMA prepared the descriptor */
	uint8_t   iomem__bits;                          /* as given (32-bit outputs: <= 32) */
	IOMemoryDescriptor *iomem__md;                  /* retained */
	IODMACommand_SegmentFunction iomem__out_fn;     /* NULL: no specification yet (withRefCon) */
	/* -- the specification -- */
	uint64_t  iomem__max_xfer;                      /* ~0: unlimited */
	uint64_t  iomem__max_phys;                      /* highest reachable byte; ~0: all */
	uint32_t  iomem__align_mask;                    /* first segment's start */
	uint32_t  iomem__align_mask_len;                /* every length */
	uint32_t  iomem__align_mask_int;                /* start of segments 2..n */
	uint32_t  iomem__mapping_options;
	IOMapper *iomem__mapper;                        /* retained; NULL: none */
	uint32_t  iomem__refcount;
	/* -- bouncing and mapping -- */
	uint32_t  iomem__npages, iomem__pages_cap, iomem__page_hint;
	IOMemoryDescriptor *iomem__copy_md;             /* the double buffer, or NULL */
	struct iomem__dma_bounce_page *iomem__pages;    /* sparse bounce pages, by offset */
	uint64_t  iomem__iova, iomem__iova_len;
	const iomem_md_extent *iomem__xext;             /* iovmMapExtents: device-address extents */
	uint32_t  iomem__xcount;
	void     *iomem__xhandle;
	iomem__sleep_lock iomem__dk_lock;               /* PrepareForDMA / CompleteDMA */
};

/**
 * iomem_bounce_pool_reserve - keep at least @pages low pages (below 4 GiB)
 * in IODMACommand's bounce pool (chunks of 64 pages), allocated now, so
 * bounce slots never hit the platform allocator; 0 releases the reserve.
 * Beyond the reserve the pool caches ONE empty chunk (hysteresis: a steady
 * stream of bounced I/O never pays the platform allocation). Not an IOKit
 * API. Thread-safe. kIOReturnNoResources when the memory cannot be had
 * (what was allocated stays reserved).
 */
IOMEM_API IOReturn iomem_bounce_pool_reserve(uint32_t pages);
/**
 * iomem_bounce_pool_trim - give every empty chunk back to the platform
 * (reserve or not): its low frames stop being wired. For tests' teardown
 * (a clean machine) and memory pressure. Not an IOKit API. Thread-safe.
 */
IOMEM_API void iomem_bounce_pool_trim(void);

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
/*
 * IODMAController (reference §2.2): a DMA engine. In IOKit it is an abstract
 * IOService a platform driver subclasses; here it is an ops table the
 * platform (or a test, or iomem's POSIX software engine, >>posixdma)
 * implements, wrapped in a reference-counted object.
 *
 * There is no IOService/IORegistry in iomem. What IOKit reads from the
 * registry is given in a small provider record, iomem_dma_provider:
 *   - phandle       the provider's "AAPL,phandle": a controller created for
 *                   this provider is named "IODMAController%08X" after it
 *                   (IODMAController_createControllerName);
 *   - dmaParent     the "dma-parent" property of a device that uses DMA: one
 *                   phandle (dmaParentCount 1: every dmaIndex uses it) or an
 *                   array indexed by dmaIndex.
 * IODMAController_registerDMAController puts a controller in a process-wide
 * registry (IOKit's registerService); IODMAController_getController looks a
 * device's controller up by dma-parent and index. Lookup rules are IOKit's:
 * a controller that is not registered yet is waited for (IOKit's
 * waitForService, which waits for ever; here for at most
 * IOMEM_DMA_CONTROLLER_WAIT_NS, then NULL - iomem_dma_controller_wait takes
 * the timeout as a parameter and says why it failed). An out-of-range
 * dmaIndex, which IOKit panics on, is reported under IOMEM_DEBUG and gives
 * NULL.
 *
 *   static const iomem_dma_controller_ops my_ops = { "mydma", my_init, ... };
 *   iomem_dma_provider soc = { 0x42, NULL, 0, NULL };        // AAPL,phandle
 *   IODMAController *c = iomem_dma_controller_withOps(&my_ops, me, &soc);
 *   IODMAController_registerDMAController(c, 0);            // "IODMAController00000042"
 *   ...
 *   UInt32 parents[] = { 0x42 };
 *   iomem_dma_provider dev = { 0x77, parents, 1, NULL };
 *   IODMAEventSource *es = IODMAEventSource_dmaEventSource(drv, &dev, done, NULL, 0);
 *
 * OWNERSHIP: iomem_dma_controller_withOps returns +1; the registry holds its
 * own reference until iomem_dma_controller_unregister; every event source
 * bound to the controller holds one. Providers are +0: they must outlive
 * what was created from them.
 * THREAD SAFETY: registry calls are thread-safe (one internal lock); the
 * ops are called from any thread that calls the event source, and must be
 * thread-safe themselves.
 */

/* IOKit's completion/notification timestamp. iomem: nanoseconds of a
 * monotonic clock (the controller decides; the POSIX engine uses
 * CLOCK_MONOTONIC). */
typedef UInt64 AbsoluteTime;

typedef struct IODMAController IODMAController;
typedef struct IODMAEventSource IODMAEventSource;

/** What IOKit reads from a provider's registry entry (see above). */
typedef struct iomem_dma_provider {
	UInt32        phandle;         /* "AAPL,phandle" of this provider */
	const UInt32 *dmaParent;       /* "dma-parent" phandles, or NULL (none) */
	UInt32        dmaParentCount;  /* entries in dmaParent; 1 = for every index */
	void         *context;         /* the platform's, never read by iomem */
} iomem_dma_provider;

/* "IODMAController" + 8 hex digits + NUL. */
#define IOMEM_DMA_CONTROLLER_NAME_SIZE 24

/* How long IODMAController_getController (and so IODMAEventSource_
 * dmaEventSource) waits for a controller that is not registered yet, in
 * ns. IOKit waits for ever; a bounded wait turns a controller that never
 * comes into a NULL instead of a hang. Define it before including iomem_dma.h
 * (in the file with IOMEM_IMPLEMENTATION) to change it; 0: no wait. */
#ifndef IOMEM_DMA_CONTROLLER_WAIT_NS
#define IOMEM_DMA_CONTROLLER_WAIT_NS 1000000000ull   /* 1 s */
#endif

/**
 * iomem_dma_controller_ops - IODMAController's pure virtual interface, with
 * the controller as first argument (its context: iomem_dma_controller_getContext).
 * Required: initDMAChannel, startDMACommand, stopDMACommand, queryDMACommand.
 * A NULL optional hook gives: getFIFODepth/validFIFODepth 0, setFIFODepth/
 * setFrameSize/setDMAConfig kIOReturnUnsupported, validDMAConfig false,
 * getFrameCount 0.
 *   initDMAChannel     bind @dmaES to a channel for @provider's request
 *                      line @reqIndex; store the channel in *@dmaIndex.
 *   freeDMAChannel     (iomem) the event source bound to @dmaIndex is being
 *                      freed: forget it. Optional.
 *   startDMACommand    start moving @byteCount bytes (0: the rest of the
 *                      prepared range) at @byteOffset of the prepared @cmd in
 *                      @direction; completion is reported later through
 *                      IODMAController_notifyDMACommand (status, count) then
 *                      IODMAController_completeDMACommand, exactly once per
 *                      successful start, from any thread (even from inside
 *                      this call: the event source copes).
 *   stopDMACommand     stop the channel (@flush: drain the FIFO; @timeout in
 *                      ns, UINT64_MAX = wait for ever).
 *   queryDMACommand    the running (or last) command and bytes moved so far.
 *   getFrameCount      (iomem) frames moved so far by the running or last
 *                      command on the channel. Optional.
 *   signalWorkAvailable (iomem) a completion was queued on @es and nobody
 *                      has installed a work signal (iomem_dma_event_source_
 *                      setWorkSignal): run iomem_dma_event_source_run(@es)
 *                      on a callback thread; @es is valid only during the
 *                      call (retain it to run it later). Optional: without
 *                      it the owner must call iomem_dma_event_source_run.
 *   free               the last release. Optional.
 */
typedef struct iomem_dma_controller_ops {
	const char *name;
	IOReturn    (*initDMAChannel)(IODMAController *controller, const iomem_dma_provider *provider,
	                              IODMAEventSource *dmaES, UInt32 *dmaIndex, UInt32 reqIndex);
	void        (*freeDMAChannel)(IODMAController *controller, UInt32 dmaIndex, IODMAEventSource *dmaES);
	IOReturn    (*startDMACommand)(IODMAController *controller, UInt32 dmaIndex, IODMACommand *dmaCommand,
	                               IODirection direction, IOByteCount byteCount, IOByteCount byteOffset);
	IOReturn    (*stopDMACommand)(IODMAController *controller, UInt32 dmaIndex, bool flush, uint64_t timeout);
	IOReturn    (*queryDMACommand)(IODMAController *controller, UInt32 dmaIndex, IODMACommand **dmaCommand,
	                               IOByteCount *transferCount, bool waitForIdle);
	IOByteCount (*getFIFODepth)(IODMAController *controller, UInt32 dmaIndex, IODirection direction);
	IOReturn    (*setFIFODepth)(IODMAController *controller, UInt32 dmaIndex, IOByteCount depth);
	IOByteCount (*validFIFODepth)(IODMAController *controller, UInt32 dmaIndex, IOByteCount depth,
	                              IODirection direction);
	IOReturn    (*setFrameSize)(IODMAController *controller, UInt32 dmaIndex, UInt8 byteCount);
	IOReturn    (*setDMAConfig)(IODMAController *controller, UInt32 dmaIndex, const iomem_dma_provider *provider,
	                            UInt32 reqIndex);
	bool        (*validDMAConfig)(IODMAController *controller, UInt32 dmaIndex, const iomem_dma_provider *provider,
	                              UInt32 reqIndex);
	UInt64      (*getFrameCount)(IODMAController *controller, UInt32 dmaIndex);
	void        (*signalWorkAvailable)(IODMAController *controller, IODMAEventSource *dmaES);
	void        (*free)(IODMAController *controller);
} iomem_dma_controller_ops;

/**
 * iomem_dma_controller_withOps - a controller over @ops (kept: must outlive
 * it) and @context, whose own provider is @provider (+0, may be NULL: phandle
 * 0). +1, or NULL: NULL @ops, a required hook missing, no memory.
 * Not registered yet. Thread-safe.
 */
IOMEM_API IODMAController *iomem_dma_controller_withOps(const iomem_dma_controller_ops *ops, void *context,
                                                        const iomem_dma_provider *provider);
/** IODMAController_retain - one more reference. NULL: no-op. Thread-safe. */
IOMEM_API void  IODMAController_retain(IODMAController *controller);
/** IODMAController_release - drop one reference; the last one calls
 * ops->free (on the releasing thread), then frees the object. NULL: no-op.
 * Thread-safe. */
IOMEM_API void  IODMAController_release(IODMAController *controller);
/** iomem_dma_controller_getContext - the @context given at creation (NULL
 * for NULL). */
IOMEM_API void *iomem_dma_controller_getContext(IODMAController *controller);
/** The controller's name, "IODMAController%08X" of its provider's phandle
 * (+0, lives as long as the controller); "" for NULL. */
IOMEM_API const char *iomem_dma_controller_getName(const IODMAController *controller);

/**
 * IODMAController_createControllerName - IOKit's name of the controller
 * of provider @phandle, "IODMAController%08X" (upper-case hex), written to
 * @name (IOMEM_DMA_CONTROLLER_NAME_SIZE bytes; NULL: nothing written).
 * Returns @name. (IOKit returns an OSSymbol.)
 */
IOMEM_API char *IODMAController_createControllerName(UInt32 phandle, char *name);

/**
 * IODMAController_registerDMAController - name the controller after its
 * provider's phandle and make it findable by IODMAController_getController.
 * The registry takes a reference. @options: IOKit's registerService
 * options, accepted and ignored (registration is synchronous). Returns
 * kIOReturnSuccess; kIOReturnBadArgument (NULL); kIOReturnExclusiveAccess
 * when a controller of that name is already registered (IOKit would keep
 * both and match the first: refused here so lookups are unambiguous).
 * Thread-safe.
 */
IOMEM_API IOReturn IODMAController_registerDMAController(IODMAController *controller, IOOptionBits options);
/** iomem_dma_controller_register - IODMAController_registerDMAController(c, 0). */
IOMEM_API IOReturn iomem_dma_controller_register(IODMAController *controller);
/** iomem_dma_controller_unregister - take it out of the registry and drop
 * the registry's reference (event sources keep theirs). kIOReturnNotFound
 * when it is not registered; kIOReturnBadArgument for NULL. Thread-safe. */
IOMEM_API IOReturn iomem_dma_controller_unregister(IODMAController *controller);

/**
 * IODMAController_getController - the registered controller serving
 * @provider's DMA request @dmaIndex: the provider's dmaParent phandle (the
 * only one when dmaParentCount is 1, else entry @dmaIndex) names it. When
 * none of that name is registered yet, waits for its registration (by
 * another thread) for at most IOMEM_DMA_CONTROLLER_WAIT_NS, as IOKit waits
 * for the matching service: iomem_dma_controller_wait with that timeout.
 * +1 (release it), or NULL: NULL provider, no dma-parent, @dmaIndex out of
 * range (IOKit panics: reported under IOMEM_DEBUG), or no such controller
 * registered within the wait. Thread-safe; may sleep (Linux: process
 * context only; bare metal does not wait).
 */
IOMEM_API IODMAController *IODMAController_getController(const iomem_dma_provider *provider, UInt32 dmaIndex);

/**
 * iomem_dma_controller_wait - IODMAController_getController with the wait
 * as a parameter and the reason of a failure: the controller (+1) in
 * *@controller (NULL on failure), waiting up to @timeout ns for it to be
 * registered (0: look once; UINT64_MAX: wait for ever, as IOKit). Returns
 * kIOReturnSuccess; kIOReturnBadArgument (NULL @provider or @controller,
 * no dma-parent, @dmaIndex out of range - reported under IOMEM_DEBUG);
 * kIOReturnTimeout (not registered within @timeout). A controller
 * registered and unregistered again while waiting may be missed (it is
 * looked up when woken). Thread-safe; may sleep (Linux: process context
 * only). Bare metal has no other thread to register it: it looks once and
 * never waits (kIOReturnTimeout).
 */
IOMEM_API IOReturn iomem_dma_controller_wait(const iomem_dma_provider *provider, UInt32 dmaIndex,
                                             uint64_t timeout, IODMAController **controller);

/**
 * IODMAController_completeDMACommand / IODMAController_notifyDMACommand -
 * what a controller calls when a command started on @dmaES finishes:
 * notify first (status, bytes actually moved, timestamp), then complete,
 * once each per successful startDMACommand, from any thread (not with a
 * lock held that the actions take). They forward to the event source
 * (reference §2.3): notify stores the values and calls the notification
 * action at once, on the calling (controller's) thread; complete queues
 * the command for the completion action (or wakes a synchronous starter). A complete for a command the event source did
 * not start is reported under IOMEM_DEBUG and ignored (no doubled
 * completion). @controller may be NULL (unused, as in IOKit).
 */
IOMEM_API void IODMAController_completeDMACommand(IODMAController *controller, IODMAEventSource *dmaES,
                                                  IODMACommand *dmaCommand);
IOMEM_API void IODMAController_notifyDMACommand(IODMAController *controller, IODMAEventSource *dmaES,
                                                IODMACommand *dmaCommand, IOReturn status,
                                                IOByteCount actualByteCount, AbsoluteTime timeStamp);

/* >>dmaevent ============================================================== */
/*
 * IODMAEventSource (reference §2.3): a driver's handle on one channel of a
 * DMA controller, forwarding each call to the controller with the channel
 * index, and delivering completions to the owner.
 *
 * The "work loop" (iomem has none): a completion with a completion action
 * is queued in the event source, and the action runs when someone drains
 * the queue with iomem_dma_event_source_run(es) - one action per queued
 * completion, in completion order, on the draining thread. Who drains:
 *   - an owner that has its own thread (its "work loop") installs a work
 *     signal with iomem_dma_event_source_setWorkSignal and calls run on that
 *     thread when signalled;
 *   - otherwise the controller's signalWorkAvailable hook is used: the
 *     POSIX software engine drains on its own callback thread (one per
 *     engine; documented at >>posixdma); a controller without the hook
 *     leaves the draining to the owner (polling run).
 * Without a completion action, startDMACommand is synchronous: it blocks
 * until the controller completes the command (IOKit sleeps on the work-loop
 * gate; here a condition variable - POSIX -, a wait queue - Linux - or a
 * spin on the flag - bare metal, where completion comes from an interrupt).
 * While a synchronous start is waiting any other start gets kIOReturnBusy.
 *
 * OWNERSHIP: IODMAEventSource_dmaEventSource returns +1. Each started
 * command holds a reference on the event source until its completion has
 * been delivered, so an action may release the owner's reference (even
 * the last one). The event source holds a reference on its controller.
 * THREAD SAFETY: every call may be made from any thread; completions of
 * one event source are delivered one at a time if only one thread drains.
 */

/** IOKit's Action: @owner as given at creation (IOKit's OSObject *). */
typedef void (*IODMAEventSource_Action)(void *owner, IODMAEventSource *dmaES, IODMACommand *dmaCommand,
                                        IOReturn status, IOByteCount actualByteCount, AbsoluteTime timeStamp);

/**
 * IODMAEventSource_dmaEventSource - an event source for @provider's DMA
 * request @dmaIndex (IOKit defaults: completion NULL, notification NULL,
 * dmaIndex 0). Finds the controller (IODMAController_getController) and
 * asks it for a channel (initDMAChannel(provider, es, &channel, dmaIndex)).
 * @completion NULL makes every start synchronous. +1, or NULL: NULL
 * @provider, no controller found (after IODMAController_getController's
 * wait), initDMAChannel failed, no memory.
 */
IOMEM_API IODMAEventSource *IODMAEventSource_dmaEventSource(void *owner, const iomem_dma_provider *provider,
        IODMAEventSource_Action completion, IODMAEventSource_Action notification, UInt32 dmaIndex);
/** IODMAEventSource_retain - one more reference. NULL: no-op. Thread-safe. */
IOMEM_API void IODMAEventSource_retain(IODMAEventSource *dmaES);
/** IODMAEventSource_release - drop one reference; the last one (never
 * while a command is in flight or a completion undelivered: they hold
 * references) tells the controller (freeDMAChannel) and releases it.
 * NULL: no-op. Thread-safe, also from inside an action. */
IOMEM_API void IODMAEventSource_release(IODMAEventSource *dmaES);

/*
 * The forwarding calls. With no event source (NULL), or no channel (the
 * controller's initDMAChannel left the index at 0xFFFFFFFF), they return
 * IOKit's no-controller values: kIOReturnError; getFIFODepth 0;
 * validFIFODepth (IOByteCount)kIOReturnError (IOKit's type quirk, kept);
 * validDMAConfig false; getFrameCount 0. Otherwise they return what the
 * controller returns.
 */

/**
 * IODMAEventSource_startDMACommand - start @dmaCommand (prepared) in
 * @direction, @byteCount bytes (0: to the end of the prepared range) at
 * @byteOffset of the prepared range (IOKit defaults 0, 0). Asynchronous with
 * a completion action: the action receives the result. Synchronous without
 * one: returns after the controller completed it (the status is the one
 * given to the notification action and queryDMACommand; this call returns
 * kIOReturnSuccess). Errors: kIOReturnError (no controller/channel),
 * kIOReturnBusy (a synchronous start is in progress), kIOReturnNoMemory,
 * or the controller's startDMACommand error (nothing is then delivered).
 * Never call the synchronous form from the thread that drains completions.
 */
IOMEM_API IOReturn IODMAEventSource_startDMACommand(IODMAEventSource *dmaES, IODMACommand *dmaCommand,
        IODirection direction, IOByteCount byteCount, IOByteCount byteOffset);
/** IODMAEventSource_stopDMACommand - stop the channel's command (IOKit
 * defaults false, UINT64_MAX; @timeout in ns). The stopped command still
 * completes (once), with the controller's status. kIOReturnError (no
 * controller/channel), or the controller's answer. */
IOMEM_API IOReturn IODMAEventSource_stopDMACommand(IODMAEventSource *dmaES, bool flush, uint64_t timeout);
/** IODMAEventSource_queryDMACommand - the channel's running (or last)
 * command in *@dmaCommand and its progress in *@transferCount (either may
 * be NULL); @waitForIdle: after it finished (IOKit default false).
 * kIOReturnError (no controller/channel), or the controller's answer. */
IOMEM_API IOReturn IODMAEventSource_queryDMACommand(IODMAEventSource *dmaES, IODMACommand **dmaCommand,
        IOByteCount *transferCount, bool waitForIdle);
/** IODMAEventSource_getFIFODepth - the channel's FIFO depth in bytes for
 * @direction (IOKit default kIODirectionNone); 0 without a controller/
 * channel or getFIFODepth hook. */
IOMEM_API IOByteCount IODMAEventSource_getFIFODepth(IODMAEventSource *dmaES, IODirection direction);
/** IODMAEventSource_setFIFODepth - kIOReturnError (no controller/channel),
 * kIOReturnUnsupported (no hook), or the controller's answer. */
IOMEM_API IOReturn IODMAEventSource_setFIFODepth(IODMAEventSource *dmaES, IOByteCount depth);
/** IODMAEventSource_validFIFODepth - the depth the controller would use
 * for @depth; (IOByteCount)kIOReturnError without a controller/channel
 * (IOKit's quirk), 0 without a hook. */
IOMEM_API IOByteCount IODMAEventSource_validFIFODepth(IODMAEventSource *dmaES, IOByteCount depth,
                                                      IODirection direction);
/** IODMAEventSource_setFrameSize - bytes per frame. kIOReturnError (no
 * controller/channel), kIOReturnUnsupported (no hook), or the controller's
 * answer. */
IOMEM_API IOReturn IODMAEventSource_setFrameSize(IODMAEventSource *dmaES, UInt8 byteCount);
/** IODMAEventSource_setDMAConfig - the controller's setDMAConfig(channel,
 * the event source's provider, @dmaIndex). kIOReturnError (no controller/
 * channel), kIOReturnUnsupported (no hook), or the controller's answer. */
IOMEM_API IOReturn IODMAEventSource_setDMAConfig(IODMAEventSource *dmaES, UInt32 dmaIndex);
/** IODMAEventSource_validDMAConfig - the controller's validDMAConfig;
 * false without a controller/channel or hook. */
IOMEM_API bool IODMAEventSource_validDMAConfig(IODMAEventSource *dmaES, UInt32 dmaIndex);
/** iomem_dma_event_source_getFrameCount - (iomem) frames moved so far by
 * the running or last command (the controller's getFrameCount). */
IOMEM_API UInt64 iomem_dma_event_source_getFrameCount(IODMAEventSource *dmaES);

/* The two calls a controller makes (IODMAController_* forward here; see
 * IODMAController_completeDMACommand). NULL @dmaES: no-op. */
IOMEM_API void IODMAEventSource_completeDMACommand(IODMAEventSource *dmaES, IODMACommand *dmaCommand);
IOMEM_API void IODMAEventSource_notifyDMACommand(IODMAEventSource *dmaES, IODMACommand *dmaCommand,
        IOReturn status, IOByteCount actualByteCount, AbsoluteTime timeStamp);

/* ---- iomem additions: the owner's side ---------------------------------- */

/**
 * iomem_dma_event_source_run - deliver every queued completion on the
 * calling thread: for each, the completion action with the command and
 * the status/count/timestamp of its notify. Returns how many actions ran.
 * The caller must hold a reference on @dmaES (an action may drop others).
 * NULL: 0. Thread-safe (two drainers deliver different completions).
 */
IOMEM_API UInt32 iomem_dma_event_source_run(IODMAEventSource *dmaES);
/**
 * iomem_dma_event_source_setWorkSignal - call @signal(@dmaES, @context)
 * whenever a completion is queued (IOKit's signalWorkAvailable), instead of
 * the controller's callback thread; the owner then runs the queue on its own
 * thread. @signal runs on the controller's completing thread, must not
 * block, and may not release @dmaES (retain it to keep it past the call).
 * NULL @signal restores the controller's default. Set it before starting
 * commands. kIOReturnBadArgument for a NULL event source.
 */
IOMEM_API IOReturn iomem_dma_event_source_setWorkSignal(IODMAEventSource *dmaES,
        void (*signal)(IODMAEventSource *dmaES, void *context), void *context);
/** iomem_dma_event_source_getDMAIndex - the channel (0xFFFFFFFF: none). */
IOMEM_API UInt32 iomem_dma_event_source_getDMAIndex(const IODMAEventSource *dmaES);
/** iomem_dma_event_source_getController - +0, NULL for NULL. */
IOMEM_API IODMAController *iomem_dma_event_source_getController(const IODMAEventSource *dmaES);
/** iomem_dma_event_source_getOwner - the owner given at creation. */
IOMEM_API void *iomem_dma_event_source_getOwner(const IODMAEventSource *dmaES);

/* >>posixdma ============================================================== */
/*
 * The POSIX software DMA engine (iomem addition): an IODMAController that
 * really moves bytes, on the software machine of backends/iomem_posix.h.
 *
 * A transfer is startDMACommand(channel, cmd, direction, count, offset) on
 * a prepared IODMACommand: the engine walks the command's segments
 * (genIOVMSegments from @offset, relative to the prepared offset) and
 * copies @count bytes (0: to the end of the prepared range) between the
 * machine's physical memory and the channel's other side:
 *   - a device buffer (iomem_posix_dma_set_device_buffer): ordinary host
 *     memory standing for the device; kIODirectionOut = memory -> device
 *     buffer, kIODirectionIn = device buffer -> memory; device byte i is
 *     transfer byte i;
 *   - or a peer command (iomem_posix_dma_set_peer), memory to memory: Out
 *     copies the command's bytes to the peer's, In the peer's to the
 *     command's, the peer from its prepared offset 0.
 * Segments that are IOVAs (the command maps through an IOMapper) are
 * translated through the mapper, page by page (the simulated IOMMU's
 * permission checks apply when the mapper is one): an access the mapper
 * refuses stops the transfer there with kIOReturnDMAError - never a
 * silent success.
 *
 * Threads: one worker thread per engine moves the bytes of every channel,
 * a batch of segments of one channel at a time, round robin; one callback
 * thread per engine delivers completions of event sources that installed
 * no work signal: it is "the owner's callback thread" of every event
 * source bound to the engine, so actions run on it one at a time. A
 * synchronous start (an event source without a completion action) is
 * moved by the starting thread itself, which would otherwise only sleep
 * until the worker had finished: no thread hand-off; stops, queries and
 * progress behave the same. Notification actions run on the thread that
 * moved the bytes (the worker, or a synchronous starter): they must not
 * wait for the engine (a synchronous start, stopDMACommand,
 * queryDMACommand with waitForIdle) - that would wait for the thread they
 * run on.
 *
 * Address translation: physical addresses reach host memory through the
 * software machine's reverse map, cached per channel (a frame -> page
 * translation cache emptied by any unwire), and a run of pages that are
 * adjacent both physically and in host memory is copied at once (within
 * the FIFO depth). Memory a command covers must stay prepared until its
 * transfer completes, as on hardware: unwiring it under a running transfer
 * may let the engine write pages no longer wired.
 *
 * Progress: the byte count is published after every chunk of at most the
 * FIFO depth (getFIFODepth); queryDMACommand reports it in whole frames
 * (setFrameSize, default 1 byte), getFrameCount in frames. A stop
 * (stopDMACommand) takes effect at the next segment boundary (the FIFO is
 * then empty, so @flush changes nothing): the command completes with
 * kIOReturnAborted and the bytes moved up to that boundary.
 *
 * Completion status (notify, then the completion action): kIOReturnSuccess
 * (count = bytes asked), kIOReturnAborted (stopped), kIOReturnDMAError (an
 * address the machine or the mapper refused; count = bytes before it),
 * or the error genIOVMSegments gave.
 *
 * Channel calls' errors (the controller's ops, through IODMAEventSource):
 *   startDMACommand  kIOReturnBadArgument (NULL command, a direction other
 *                    than In or Out, @offset/@count beyond the prepared
 *                    length), kIOReturnNotReady (command not prepared, or
 *                    the channel has neither a device buffer nor a peer),
 *                    kIOReturnNoSpace (the device buffer or the peer's
 *                    prepared range is shorter than the transfer),
 *                    kIOReturnBusy (the channel is running a command),
 *                    kIOReturnOffline (the engine is shutting down);
 *   stopDMACommand   kIOReturnNotReady (nothing running), kIOReturnTimeout
 *                    (@timeout ns passed before it stopped; it still will);
 *   queryDMACommand  success; *cmd = the running or last command (NULL
 *                    before the first), *count its progress; @waitForIdle
 *                    waits for the channel to finish first;
 *   setFIFODepth     kIOReturnBadArgument (not validFIFODepth(depth): a
 *                    power of two in [16, 1 MiB]), kIOReturnBusy (running);
 *   setFrameSize     kIOReturnBadArgument (0), kIOReturnBusy (running);
 *   setDMAConfig     kIOReturnBadArgument (NULL provider).
 *   initDMAChannel   the first free channel; kIOReturnNoChannels if none,
 *                    kIOReturnNoMemory (its translation cache, allocated
 *                    at a channel's first binding).
 */
#if defined(IOMEM_BACKEND_POSIX)

/** Engine parameters; zero fields take the defaults noted. */
typedef struct iomem_posix_dma_engine_desc {
	UInt32      phandle;      /* its provider's phandle: the registry name */
	UInt32      channels;     /* 0 = 4; at most 64 */
	IOByteCount fifoDepth;    /* initial FIFO depth of each channel, 0 = 4096 */
	uint64_t    segmentDelayNs; /* a slow device: the worker pauses this long
	                               before each segment (0: none) - lets tests
	                               catch a transfer in flight */
} iomem_posix_dma_engine_desc;

/**
 * iomem_posix_dma_engine_create - a software DMA engine with its worker and
 * callback threads running. +1, not registered (IODMAController_register-
 * DMAController makes it findable), or NULL: bad @desc (channels > 64, a
 * FIFO depth validFIFODepth refuses), no memory, no threads. NULL @desc:
 * all defaults. The last release stops and joins the threads (from any
 * thread, an engine thread included).
 */
IOMEM_API IODMAController *iomem_posix_dma_engine_create(const iomem_posix_dma_engine_desc *desc);

/**
 * iomem_posix_dma_set_device_buffer - the device side of channel @dmaIndex:
 * @length bytes at @buffer (+0: must outlive its use; NULL clears). Clears
 * the peer. kIOReturnBadArgument (not an engine, no such channel, NULL
 * buffer with a length), kIOReturnBusy (the channel is running).
 */
IOMEM_API IOReturn iomem_posix_dma_set_device_buffer(IODMAController *engine, UInt32 dmaIndex,
                                                     void *buffer, IOByteCount length);
/**
 * iomem_posix_dma_set_peer - make channel @dmaIndex copy memory to memory
 * with the prepared command @peer (+0: keep it prepared while in use; NULL
 * clears). Clears the device buffer. Errors as set_device_buffer.
 */
IOMEM_API IOReturn iomem_posix_dma_set_peer(IODMAController *engine, UInt32 dmaIndex, IODMACommand *peer);

#endif /* IOMEM_BACKEND_POSIX */

/* >>linuxdma ============================================================== */
/*
 * Linux (iomem addition): an IODMAController over one channel of the
 * kernel's dmaengine (a memcpy-capable struct dma_chan: DMA_MEMCPY), moving
 * memory to memory between an IODMACommand and a peer command, as the
 * POSIX engine's peer mode (>>posixdma): kIODirectionOut copies the
 * command's bytes [offset, offset + count) of its prepared range to the
 * peer's bytes [0, count), kIODirectionIn the peer's to the command's.
 * The segments of both commands are paired (IODMACommand_gen64IOVMSegments)
 * into one dmaengine_prep_dma_memcpy descriptor per piece, submitted, and
 * started with dma_async_issue_pending; each descriptor's callback counts
 * its bytes (queryDMACommand progress) and the last one reports the command
 * (notify, then complete). The segments must be addresses for the channel's
 * device: create both commands with the mapper
 * iomem_linux_mapper_for_device(dmaengine_get_dma_device(chan)).
 *
 * Completions: the dmaengine callbacks run in softirq (tasklet) context,
 * where notify and complete may run (the event source's lock is a
 * spinlock with IRQs saved) - so the notification action runs there and
 * must not sleep; completion actions are run on the system workqueue (the
 * controller's signalWorkAvailable), unless the owner installed a work
 * signal.
 *
 * One channel (dmaIndex 0) per controller. Errors of the channel calls:
 *   startDMACommand  kIOReturnBadArgument (NULL command, direction not In
 *                    or Out, offset/count beyond the prepared length, an
 *                    empty transfer), kIOReturnNotReady (the command or the
 *                    peer is not prepared, no peer set), kIOReturnNoSpace
 *                    (the peer's prepared range is shorter than the
 *                    transfer), kIOReturnBusy (running), kIOReturnNoMemory,
 *                    kIOReturnNoResources (the channel refused a
 *                    descriptor: nothing was started), or genIOVMSegments'
 *                    error;
 *   stopDMACommand   kIOReturnNotReady (nothing running); otherwise
 *                    dmaengine_terminate_sync (process context: it sleeps;
 *                    @flush and @timeout are not used), then the command
 *                    completes with kIOReturnAborted and the bytes of the
 *                    descriptors that completed;
 *   queryDMACommand  success: the running or last command, bytes moved;
 *                    @waitForIdle sleeps until it finished (not from the
 *                    notification action).
 *   initDMAChannel   kIOReturnNoChannels when an event source has it.
 */
/* dmaengine's channel requests and flush_work are GPL-only exports: a module
 * under another licence builds with IOMEM_LINUX_GPL_SYMBOLS=0 and goes
 * without this controller. */
#if defined(IOMEM_BACKEND_LINUX) && (!defined(IOMEM_LINUX_GPL_SYMBOLS) || IOMEM_LINUX_GPL_SYMBOLS)
struct dma_chan;

/**
 * iomem_linux_dmaengine_controller_create - an IODMAController over
 * @chan (+0: the caller requested it and releases it with
 * dma_release_channel after the controller is freed), named after
 * @provider's phandle (+0, may be NULL). +1, not registered (register it
 * for IODMAController_getController), or NULL: NULL @chan, a channel
 * without DMA_MEMCPY, no memory. Process context.
 */
IOMEM_API IODMAController *iomem_linux_dmaengine_controller_create(struct dma_chan *chan,
                                                                   const iomem_dma_provider *provider);
/**
 * iomem_linux_dmaengine_set_peer - the other side of channel @dmaIndex:
 * the prepared command @peer (+0: keep it prepared while in use; NULL
 * clears). kIOReturnBadArgument (not a dmaengine controller, no such
 * channel), kIOReturnBusy (running). Thread-safe.
 */
IOMEM_API IOReturn iomem_linux_dmaengine_set_peer(IODMAController *controller, UInt32 dmaIndex,
                                                  IODMACommand *peer);
#endif /* IOMEM_BACKEND_LINUX */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* !IOMEM__BACKEND_CONFLICT */
#endif /* IOMEM_DMA_H_INCLUDED */

/* >>implementation ======================================================== */

#if defined(IOMEM_IMPLEMENTATION) && !defined(IOMEM_DMA__IMPLEMENTATION_INCLUDED) && \
    !defined(IOMEM__BACKEND_CONFLICT)
#define IOMEM_DMA__IMPLEMENTATION_INCLUDED 1

/* IOMapper's implementation (its struct: the ops) before ours, also when
 * the declarations were included first (the map header's own guard makes
 * this a no-op otherwise) */
#include "iomem_map.h"

/* >>impl-dmacmd: IODMACommand ------------------------------------------- */

enum {
	IOMEM__DMA_FMT_HOST32 = 0, IOMEM__DMA_FMT_BIG32, IOMEM__DMA_FMT_LITTLE32,
	IOMEM__DMA_FMT_HOST64, IOMEM__DMA_FMT_BIG64, IOMEM__DMA_FMT_LITTLE64,
	IOMEM__DMA_FMT_USER
};
enum { IOMEM__DMA_BOUNCE_NONE = 0, IOMEM__DMA_BOUNCE_DOUBLE, IOMEM__DMA_BOUNCE_SPARSE };
#define IOMEM__DMA_ALL ((uint64_t)~(uint64_t)0)
#define IOMEM__DMA_NOPOS ((IOByteCount)~(IOByteCount)0)

/* ---- byte order: one swapped store (builtins), else byte stores ------- */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && \
    defined(__ORDER_LITTLE_ENDIAN__) && defined(__ORDER_BIG_ENDIAN__)
#  define IOMEM__DMA_BSWAP 1
IOMEM_FORCEINLINE void iomem__st32(unsigned char *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
#  if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#    define IOMEM__BE32(v) __builtin_bswap32(v)
#    define IOMEM__LE32(v) (v)
#  else
#    define IOMEM__BE32(v) (v)
#    define IOMEM__LE32(v) __builtin_bswap32(v)
#  endif
#endif

#ifdef IOMEM__DMA_BSWAP
IOMEM_FORCEINLINE void iomem__st_be32(unsigned char *p, uint32_t v) { iomem__st32(p, IOMEM__BE32(v)); }
IOMEM_FORCEINLINE void iomem__st_le32(unsigned char *p, uint32_t v) { iomem__st32(p, IOMEM__LE32(v)); }
#else
IOMEM_FORCEINLINE void iomem__st_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}
IOMEM_FORCEINLINE void iomem__st_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;         p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__)
#  define IOMEM__SEG_VECTOR_STORE 1
#  define IOMEM__HOST_BIG (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
#else
#  define IOMEM__SEG_VECTOR_STORE 0
#endif

/* Stores the segment {@location, @length} at @p (any alignment), each field
 * 8 bytes in big (@big) or little endian order; with GCC/Clang as one
 * 16-byte vector store (bswap each field first when the order differs from
 * the host's), so the three byte orders cost the same. */
IOMEM_FORCEINLINE void iomem__st_seg64(void *p, uint64_t location, uint64_t length, int big)
{
#if IOMEM__SEG_VECTOR_STORE
	typedef uint64_t iomem__v2u64 __attribute__((vector_size(16)));
	iomem__v2u64 t;
	if (big != IOMEM__HOST_BIG) {
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

/* Stores one segment in format @fmt (a constant after inlining). */
IOMEM_FORCEINLINE bool iomem__dma_emit(unsigned fmt, IODMACommand_SegmentFunction fn, IODMACommand *cmd,
                                       void *segs, UInt32 i, UInt64 addr, UInt64 len)
{
	unsigned char *p;
	switch (fmt) {
	case IOMEM__DMA_FMT_HOST32: {
		IODMACommand_Segment32 *s = (IODMACommand_Segment32 *)segs + i;
		s->fIOVMAddr = (UInt32)addr;
		s->fLength = (UInt32)len;
		return true;
	}
	case IOMEM__DMA_FMT_BIG32:
		p = (unsigned char *)segs + (size_t)i * 8;
		iomem__st_be32(p, (uint32_t)addr);
		iomem__st_be32(p + 4, (uint32_t)len);
		return true;
	case IOMEM__DMA_FMT_LITTLE32:
		p = (unsigned char *)segs + (size_t)i * 8;
		iomem__st_le32(p, (uint32_t)addr);
		iomem__st_le32(p + 4, (uint32_t)len);
		return true;
	case IOMEM__DMA_FMT_HOST64: {
		IODMACommand_Segment64 *s = (IODMACommand_Segment64 *)segs + i;
		s->fIOVMAddr = addr;
		s->fLength = len;
		return true;
	}
	case IOMEM__DMA_FMT_BIG64:
		p = (unsigned char *)segs + (size_t)i * 16;
		iomem__st_seg64(p, addr, len, 1);      /* one 16-byte store, as Host64 */
		return true;
	case IOMEM__DMA_FMT_LITTLE64:
		p = (unsigned char *)segs + (size_t)i * 16;
		iomem__st_seg64(p, addr, len, 0);
		return true;
	default: {
		IODMACommand_Segment64 s;
		s.fIOVMAddr = addr;
		s.fLength = len;
		return fn(cmd, s, segs, i);
	}
	}
}

IOMEM_API bool IODMACommand_OutputHost32(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex)
{
	return iomem__dma_emit(IOMEM__DMA_FMT_HOST32, NULL, target, segments, segmentIndex, segment.fIOVMAddr, segment.fLength);
}
IOMEM_API bool IODMACommand_OutputBig32(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex)
{
	return iomem__dma_emit(IOMEM__DMA_FMT_BIG32, NULL, target, segments, segmentIndex, segment.fIOVMAddr, segment.fLength);
}
IOMEM_API bool IODMACommand_OutputLittle32(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex)
{
	return iomem__dma_emit(IOMEM__DMA_FMT_LITTLE32, NULL, target, segments, segmentIndex, segment.fIOVMAddr, segment.fLength);
}
IOMEM_API bool IODMACommand_OutputHost64(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex)
{
	return iomem__dma_emit(IOMEM__DMA_FMT_HOST64, NULL, target, segments, segmentIndex, segment.fIOVMAddr, segment.fLength);
}
IOMEM_API bool IODMACommand_OutputBig64(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex)
{
	return iomem__dma_emit(IOMEM__DMA_FMT_BIG64, NULL, target, segments, segmentIndex, segment.fIOVMAddr, segment.fLength);
}
IOMEM_API bool IODMACommand_OutputLittle64(IODMACommand *target, IODMACommand_Segment64 segment, void *segments, UInt32 segmentIndex)
{
	return iomem__dma_emit(IOMEM__DMA_FMT_LITTLE64, NULL, target, segments, segmentIndex, segment.fIOVMAddr, segment.fLength);
}

IOMEM__PRIVATE unsigned iomem__dma_fmt_of(IODMACommand_SegmentFunction fn)
{
	if (fn == IODMACommand_OutputHost64)   return IOMEM__DMA_FMT_HOST64;
	if (fn == IODMACommand_OutputHost32)   return IOMEM__DMA_FMT_HOST32;
	if (fn == IODMACommand_OutputBig32)    return IOMEM__DMA_FMT_BIG32;
	if (fn == IODMACommand_OutputLittle32) return IOMEM__DMA_FMT_LITTLE32;
	if (fn == IODMACommand_OutputBig64)    return IOMEM__DMA_FMT_BIG64;
	if (fn == IODMACommand_OutputLittle64) return IOMEM__DMA_FMT_LITTLE64;
	return IOMEM__DMA_FMT_USER;
}

/* ---- the bounce pool: low pages in chunks of 64, a bitmap each --------- *
 * Chunks with a free slot are on a doubly linked list; a slot is the lowest
 * set bit of its chunk's bitmap (ctz), so allocate and free are O(1). A
 * chunk that empties is returned to the platform unless the reserve
 * (iomem_bounce_pool_reserve) keeps it. */

#define IOMEM__BOUNCE_SLOTS 64u

typedef struct iomem__bounce_chunk {
	struct iomem__bounce_chunk *prev, *next;   /* the list of chunks with a free slot */
	iomem__ram ram;
	uint64_t   free;                           /* bit i: slot i is free */
	vm_size_t  page;
	bool       listed, arena;
} iomem__bounce_chunk;

typedef struct iomem__dma_bounce_page {
	IOByteCount          doff;     /* descriptor offset of the first byte */
	IOByteCount          len;      /* bytes, inside one source page */
	IOPhysicalAddress    pa;       /* the bounce address of the first byte */
	unsigned char       *va;       /* its CPU address */
	iomem__bounce_chunk *chunk;
	uint32_t             slot;
	uint32_t             in;       /* offset in the page */
} iomem__dma_bounce_page;

static iomem__mutex iomem__bounce_lock = IOMEM__MUTEX_INITIALIZER(iomem__bounce_lock);
static struct {
	iomem__bounce_chunk *list;         /* chunks with a free slot */
	uint64_t chunks, reserve;          /* chunks held, chunks to keep */
	uint64_t empty;                    /* chunks with every slot free */
} iomem__bounce_pool;

IOMEM__PRIVATE iomem__bounce_chunk *iomem__bounce_chunk_new(vm_size_t page)
{
	vm_size_t bytes = page * IOMEM__BOUNCE_SLOTS;
	/* the pool is a process-wide cache (iomem_bounce_pool_trim empties
	 * it): its records are not tracked as allocations */
	iomem__bounce_chunk *c = (iomem__bounce_chunk *)iomem__platform_calloc(sizeof *c);
	if (c == NULL)
		return NULL;
	c->page = page;
	c->free = ~(uint64_t)0;
#if defined(IOMEM_BACKEND_BAREMETAL)
	{
		/* the platform's bounce arena first: it lies in the DMA window */
		void *p = iomem__platform_bounce_alloc(bytes, page);
		if (p != NULL) {
			c->ram.address = p;
			c->ram.bytes = bytes;
			c->ram.phys = (IOPhysicalAddress)iomem__platform_virt_to_phys(p);
			c->arena = true;
			return c;
		}
	}
#endif
	if (IOMEM__FAIL_POINT() ||
	    iomem__platform_ram_alloc(&c->ram, bytes, page, (IOPhysicalAddress)0xFFFFFFFFull, true) != kIOReturnSuccess) {
		iomem__platform_free(c);
		return NULL;
	}
	return c;
}

IOMEM__PRIVATE void iomem__bounce_chunk_free(iomem__bounce_chunk *c)
{
#if defined(IOMEM_BACKEND_BAREMETAL)
	if (c->arena)
		iomem__platform_bounce_free(c->ram.address);
	else
#endif
		iomem__platform_ram_free(&c->ram);
	iomem__platform_free(c);
}

/* Lock held. */
IOMEM__PRIVATE void iomem__bounce_list_add(iomem__bounce_chunk *c)
{
	c->prev = NULL;
	c->next = iomem__bounce_pool.list;
	if (c->next != NULL)
		c->next->prev = c;
	iomem__bounce_pool.list = c;
	c->listed = true;
}

IOMEM__PRIVATE void iomem__bounce_list_remove(iomem__bounce_chunk *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		iomem__bounce_pool.list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->listed = false;
}

/* Low pages for pg[0..count): chunk, slot, and the page's addresses in
 * pa/va (the caller adds the in-page offset). One lock round for the
 * batch; O(1) a page unless a new chunk must come from the platform.
 * Returns how many were allocated (fewer when memory runs out: the caller
 * frees what it got). */
IOMEM__PRIVATE uint32_t iomem__bounce_alloc(iomem__dma_bounce_page *pg, uint32_t count, vm_size_t page)
{
	uint32_t k = 0;
	iomem__mutex_lock(&iomem__bounce_lock);
	while (k < count) {
		iomem__bounce_chunk *c = iomem__bounce_pool.list;
		uint32_t s;
		if (IOMEM_UNLIKELY(c == NULL || c->page != page)) {
			/* allocated outside the lock: the platform may sleep */
			iomem__mutex_unlock(&iomem__bounce_lock);
			c = iomem__bounce_chunk_new(page);
			iomem__mutex_lock(&iomem__bounce_lock);
			if (c == NULL)
				break;
			iomem__bounce_pool.chunks++;
			iomem__bounce_pool.empty++;
			iomem__bounce_list_add(c);
		}
		if (c->free == ~(uint64_t)0)
			iomem__bounce_pool.empty--;
		s = (uint32_t)iomem__ctz64(c->free);
		c->free &= c->free - 1;
		if (c->free == 0)
			iomem__bounce_list_remove(c);
		pg[k].chunk = c;
		pg[k].slot = s;
		pg[k].pa = c->ram.phys + (IOPhysicalAddress)s * page;
		pg[k].va = (unsigned char *)c->ram.address + (vm_size_t)s * page;
		k++;
	}
	iomem__mutex_unlock(&iomem__bounce_lock);
	return k;
}

/* Gives back the low pages of pg[0..count); a chunk that empties goes back
 * to the platform unless the reserve keeps it. One lock round. */
IOMEM__PRIVATE void iomem__bounce_free(iomem__dma_bounce_page *pg, uint32_t count)
{
	iomem__bounce_chunk *drop = NULL;
	uint32_t k;
	iomem__mutex_lock(&iomem__bounce_lock);
	for (k = 0; k < count; k++) {
		iomem__bounce_chunk *c = pg[k].chunk;
		if (c == NULL)
			continue;
		pg[k].chunk = NULL;
		c->free |= (uint64_t)1 << pg[k].slot;
		if (!c->listed)
			iomem__bounce_list_add(c);
		if (c->free == ~(uint64_t)0) {
			/* hysteresis: one empty chunk stays cached (beyond the
			 * reserve), so a steady stream of bounced I/O never
			 * goes back to the platform */
			if (iomem__bounce_pool.chunks > iomem__bounce_pool.reserve && iomem__bounce_pool.empty >= 1) {
				iomem__bounce_list_remove(c);
				iomem__bounce_pool.chunks--;
				c->next = drop;
				drop = c;
			} else {
				iomem__bounce_pool.empty++;
			}
		}
	}
	iomem__mutex_unlock(&iomem__bounce_lock);
	while (drop != NULL) {
		iomem__bounce_chunk *c = drop;
		drop = c->next;
		iomem__bounce_chunk_free(c);
	}
}

/* Drops empty chunks until @keep chunks are held (or none is empty). */
IOMEM__PRIVATE void iomem__bounce_drop_empty(uint64_t keep)
{
	iomem__mutex_lock(&iomem__bounce_lock);
	while (iomem__bounce_pool.chunks > keep && iomem__bounce_pool.empty != 0) {
		iomem__bounce_chunk *c = iomem__bounce_pool.list;
		while (c != NULL && c->free != ~(uint64_t)0)
			c = c->next;
		if (c == NULL)
			break;
		iomem__bounce_list_remove(c);
		iomem__bounce_pool.chunks--;
		iomem__bounce_pool.empty--;
		iomem__mutex_unlock(&iomem__bounce_lock);
		iomem__bounce_chunk_free(c);
		iomem__mutex_lock(&iomem__bounce_lock);
	}
	iomem__mutex_unlock(&iomem__bounce_lock);
}

IOMEM_API IOReturn iomem_bounce_pool_reserve(uint32_t pages)
{
	uint64_t want = ((uint64_t)pages + IOMEM__BOUNCE_SLOTS - 1) / IOMEM__BOUNCE_SLOTS;
	iomem__mutex_lock(&iomem__bounce_lock);
	iomem__bounce_pool.reserve = want;
	iomem__mutex_unlock(&iomem__bounce_lock);
	for (;;) {
		iomem__bounce_chunk *c;
		iomem__mutex_lock(&iomem__bounce_lock);
		if (iomem__bounce_pool.chunks >= iomem__bounce_pool.reserve) {
			iomem__mutex_unlock(&iomem__bounce_lock);
			break;
		}
		iomem__mutex_unlock(&iomem__bounce_lock);
		c = iomem__bounce_chunk_new(iomem__platform_page_size());
		if (c == NULL)
			return kIOReturnNoResources;
		iomem__mutex_lock(&iomem__bounce_lock);
		iomem__bounce_pool.chunks++;
		iomem__bounce_pool.empty++;
		iomem__bounce_list_add(c);
		iomem__mutex_unlock(&iomem__bounce_lock);
	}
	/* beyond the new reserve: the cached empty chunk (hysteresis) stays */
	iomem__bounce_drop_empty(want + 1);
	return kIOReturnSuccess;
}

IOMEM_API void iomem_bounce_pool_trim(void)
{
	iomem__bounce_drop_empty(0);
}

/* ---- creation and the specification -------------------------------------- */

IOMEM__PRIVATE bool iomem__dma_pow2(uint32_t v)
{
	return (v & (v - 1)) == 0;
}

IOMEM__PRIVATE unsigned iomem__dma_page_shift(void)
{
	return iomem__flog2((uint64_t)iomem__platform_page_size());
}

/* Validates and installs a specification (reference §2.1 setSpecification);
 * the mapper resolved (+1 kept). Nothing changes on an error. */
IOMEM__PRIVATE IOReturn iomem__dma_set_spec(IODMACommand *cmd, IODMACommand_SegmentFunction fn,
                                            const IODMACommand_SegmentOptions *opt, uint32_t mappingOptions,
                                            IOMapper *mapper)
{
	unsigned fmt;
	uint32_t type = mappingOptions & IODMACommand_kTypeMask;
	uint32_t align, align_len, align_int;
	UInt8 bits;
	IOMapper *m = NULL;
	if (fn == NULL || opt == NULL)
		return kIOReturnBadArgument;
	fmt = iomem__dma_fmt_of(fn);
	bits = opt->fNumAddressBits;
	if (fmt <= IOMEM__DMA_FMT_LITTLE32) {
		if (bits == 0)
			bits = 32;
		else if (bits > 32)
			return kIOReturnBadArgument;
	}
	if (bits != 0 && bits < iomem__dma_page_shift())
		return kIOReturnBadArgument;
	align = opt->fAlignment ? opt->fAlignment : 1;
	align_len = opt->fAlignmentLength ? opt->fAlignmentLength : 1;
	align_int = opt->fAlignmentInternalSegments ? opt->fAlignmentInternalSegments : align;
	if (!iomem__dma_pow2(align) || !iomem__dma_pow2(align_len) || !iomem__dma_pow2(align_int))
		return kIOReturnBadArgument;
	switch (type) {
	case IODMACommand_kMapped:
	case IODMACommand_kNonCoherent:
		if (mapper != NULL) {
			IOMapper_retain(mapper);
			m = mapper;
		} else {
			m = iomem_mapper_copy_system();
		}
		break;
	case IODMACommand_kBypassed:
		m = mapper != NULL ? (IOMapper_retain(mapper), mapper) : iomem_mapper_copy_system();
		if (m != NULL) {
			IOMapper_release(m);
			return kIOReturnBadArgument;
		}
		break;
	case IODMACommand_kUnmapped:
		break;
	default:
		return kIOReturnBadArgument;
	}
	IOMapper_release(cmd->iomem__mapper);
	cmd->iomem__mapper = m;
	cmd->iomem__out_fn = fn;
	cmd->iomem__fmt = (uint8_t)fmt;
	cmd->iomem__bits = bits;
	cmd->iomem__max_phys = (bits >= 1 && bits <= 63) ? (((uint64_t)1 << bits) - 1) : IOMEM__DMA_ALL;
	cmd->iomem__max_seg = opt->fMaxSegmentSize ? opt->fMaxSegmentSize : IOMEM__DMA_ALL;
	cmd->iomem__seg_shift = (uint8_t)((opt->fMaxSegmentSize & (opt->fMaxSegmentSize - 1)) == 0 &&
	                                  opt->fMaxSegmentSize != 0 ? iomem__flog2(opt->fMaxSegmentSize) : 64);
	cmd->iomem__max_xfer = opt->fMaxTransferSize ? opt->fMaxTransferSize : IOMEM__DMA_ALL;
	cmd->iomem__align_mask = align - 1;
	cmd->iomem__align_mask_len = align_len - 1;
	cmd->iomem__align_mask_int = align_int - 1;
	cmd->iomem__mapping_options = mappingOptions;
	return kIOReturnSuccess;
}

IOMEM__PRIVATE IODMACommand *iomem__dma_alloc(void *refCon)
{
	IODMACommand *cmd = (IODMACommand *)iomem__alloc_internal(sizeof *cmd, "IODMACommand");
	if (cmd == NULL)
		return NULL;
	if (!iomem__sleep_lock_init(&cmd->iomem__dk_lock)) {
		iomem__free_internal(cmd, sizeof *cmd, "IODMACommand");
		return NULL;
	}
	cmd->fRefCon = refCon;
	cmd->iomem__refcount = 1;
	cmd->iomem__pos = IOMEM__DMA_NOPOS;
	return cmd;
}

IOMEM__PRIVATE void iomem__dma_free(IODMACommand *cmd)
{
	IODMACommand_clearMemoryDescriptor(cmd, true);
	if (cmd->iomem__pages != NULL)
		iomem__free_internal(cmd->iomem__pages, (vm_size_t)cmd->iomem__pages_cap * sizeof *cmd->iomem__pages,
		                     "IODMACommand bounce pages");
	IOMapper_release(cmd->iomem__mapper);
	iomem__sleep_lock_destroy(&cmd->iomem__dk_lock);
	iomem__free_internal(cmd, sizeof *cmd, "IODMACommand");
}

IOMEM__PRIVATE void iomem__dma_legacy_options(IODMACommand_SegmentOptions *o, UInt8 numAddressBits,
                                              UInt64 maxSegmentSize, UInt64 maxTransferSize, UInt32 alignment)
{
	iomem__memset(o, 0, sizeof *o);
	o->fStructSize = (uint8_t)sizeof *o;
	o->fNumAddressBits = numAddressBits;
	o->fMaxSegmentSize = maxSegmentSize;
	o->fMaxTransferSize = maxTransferSize;
	o->fAlignment = alignment;
	o->fAlignmentLength = 1;
	o->fAlignmentInternalSegments = alignment;
}

IOMEM_API IODMACommand *IODMACommand_withSpecificationOptions(IODMACommand_SegmentFunction outSegFunc,
        const IODMACommand_SegmentOptions *segmentOptions, uint32_t mappingOptions,
        IOMapper *mapper, void *refCon)
{
	IODMACommand *cmd;
	if (outSegFunc == NULL || segmentOptions == NULL)
		return NULL;
	cmd = iomem__dma_alloc(refCon);
	if (cmd == NULL)
		return NULL;
	if (iomem__dma_set_spec(cmd, outSegFunc, segmentOptions, mappingOptions, mapper) != kIOReturnSuccess) {
		iomem__dma_free(cmd);
		return NULL;
	}
	return cmd;
}

IOMEM_API IODMACommand *IODMACommand_withSpecification(IODMACommand_SegmentFunction outSegFunc,
        UInt8 numAddressBits, UInt64 maxSegmentSize, IODMACommand_MappingOptions mappingOptions,
        UInt64 maxTransferSize, UInt32 alignment, IOMapper *mapper, void *refCon)
{
	IODMACommand_SegmentOptions o;
	iomem__dma_legacy_options(&o, numAddressBits, maxSegmentSize, maxTransferSize, alignment);
	return IODMACommand_withSpecificationOptions(outSegFunc, &o, mappingOptions, mapper, refCon);
}

IOMEM_API IODMACommand *IODMACommand_withRefCon(void *refCon)
{
	return iomem__dma_alloc(refCon);
}

IOMEM_API IOReturn IODMACommand_weakWithSpecification(IODMACommand **newCommand,
        IODMACommand_SegmentFunction outSegFunc, UInt8 numAddressBits, UInt64 maxSegmentSize,
        IODMACommand_MappingOptions mappingOptions, UInt64 maxTransferSize, UInt32 alignment,
        IOMapper *mapper, void *refCon)
{
	IODMACommand_SegmentOptions o;
	IODMACommand *cmd;
	IOReturn r;
	if (newCommand == NULL)
		return kIOReturnBadArgument;
	*newCommand = NULL;
	cmd = iomem__dma_alloc(refCon);
	if (cmd == NULL)
		return kIOReturnNoMemory;
	iomem__dma_legacy_options(&o, numAddressBits, maxSegmentSize, maxTransferSize, alignment);
	r = iomem__dma_set_spec(cmd, outSegFunc, &o, mappingOptions, mapper);
	if (r != kIOReturnSuccess) {
		iomem__dma_free(cmd);
		return r;
	}
	*newCommand = cmd;
	return kIOReturnSuccess;
}

IOMEM_API IODMACommand *IODMACommand_cloneCommand(IODMACommand *cmd, void *refCon)
{
	IODMACommand_SegmentOptions o;
	if (cmd == NULL)
		return NULL;
	if (cmd->iomem__out_fn == NULL)
		return IODMACommand_withRefCon(refCon);
	iomem__memset(&o, 0, sizeof o);
	o.fStructSize = (uint8_t)sizeof o;
	o.fNumAddressBits = cmd->iomem__bits;
	o.fMaxSegmentSize = cmd->iomem__max_seg == IOMEM__DMA_ALL ? 0 : cmd->iomem__max_seg;
	o.fMaxTransferSize = cmd->iomem__max_xfer == IOMEM__DMA_ALL ? 0 : cmd->iomem__max_xfer;
	o.fAlignment = cmd->iomem__align_mask + 1;
	o.fAlignmentLength = cmd->iomem__align_mask_len + 1;
	o.fAlignmentInternalSegments = cmd->iomem__align_mask_int + 1;
	return IODMACommand_withSpecificationOptions(cmd->iomem__out_fn, &o, cmd->iomem__mapping_options,
	                                             cmd->iomem__mapper, refCon);
}

IOMEM_API void IODMACommand_retain(IODMACommand *cmd)
{
	if (cmd != NULL)
		iomem__ref_retain(&cmd->iomem__refcount);
}

IOMEM_API void IODMACommand_release(IODMACommand *cmd)
{
	if (cmd == NULL || iomem__ref_release(&cmd->iomem__refcount) != 0)
		return;
	iomem__dma_free(cmd);
}

/* ---- accessors ------------------------------------------------------------ */

IOMEM__PRIVATE bool iomem__dma_uses_mapper(const IODMACommand *cmd)
{
	uint32_t type = cmd->iomem__mapping_options & IODMACommand_kTypeMask;
	return cmd->iomem__mapper != NULL && (type == IODMACommand_kMapped || type == IODMACommand_kNonCoherent);
}


IOMEM_API UInt8 IODMACommand_getNumAddressBits(const IODMACommand *cmd)
{
	return cmd ? cmd->iomem__bits : 0;
}
IOMEM_API UInt32 IODMACommand_getAlignment(const IODMACommand *cmd)
{
	return cmd ? cmd->iomem__align_mask + 1 : 0;
}
IOMEM_API UInt32 IODMACommand_getAlignmentLength(const IODMACommand *cmd)
{
	return cmd ? cmd->iomem__align_mask_len + 1 : 0;
}
IOMEM_API UInt32 IODMACommand_getAlignmentInternalSegments(const IODMACommand *cmd)
{
	return cmd ? cmd->iomem__align_mask_int + 1 : 0;
}
IOMEM_API IOMapper *iomem_dmacmd_getMapper(const IODMACommand *cmd)
{
	return cmd != NULL && iomem__dma_uses_mapper(cmd) ? cmd->iomem__mapper : NULL;
}

IOMEM_API const IOMemoryDescriptor *IODMACommand_getMemoryDescriptor(const IODMACommand *cmd)
{
	return cmd ? cmd->iomem__md : NULL;
}
IOMEM_API const IOMemoryDescriptor *IODMACommand_getIOMemoryDescriptor(const IODMACommand *cmd)
{
	if (cmd == NULL)
		return NULL;
	return cmd->iomem__copy_md ? cmd->iomem__copy_md : cmd->iomem__md;
}

/* ---- bouncing ------------------------------------------------------------- */

IOMEM__PRIVATE void iomem__dma_free_bounce(IODMACommand *cmd)
{
	if (cmd->iomem__copy_md != NULL) {
		IOMemoryDescriptor_release(cmd->iomem__copy_md);
		cmd->iomem__copy_md = NULL;
	}
	if (cmd->iomem__npages != 0)
		iomem__bounce_free(cmd->iomem__pages, cmd->iomem__npages);
	/* the array stays for the next preparation (freed with the command) */
	cmd->iomem__npages = 0;
	cmd->iomem__page_hint = 0;
	cmd->iomem__bounce = IOMEM__DMA_BOUNCE_NONE;
}

/* The whole prepared range in one physically contiguous low buffer. */
IOMEM__PRIVATE bool iomem__dma_alloc_double(IODMACommand *cmd)
{
	uint64_t limit = cmd->iomem__max_phys < 0xFFFFFFFFull ? cmd->iomem__max_phys : 0xFFFFFFFFull;
	uint64_t a = (uint64_t)cmd->iomem__align_mask + 1, page = iomem__platform_page_size();
	IOByteCount l = 0;
	addr64_t pa;
	if (a < page)
		a = page;
	if ((limit & ~(a - 1)) == 0)
		return false;                     /* a mask of 0 would mean "anywhere" */
	cmd->iomem__copy_md = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionInOut,
	        cmd->iomem__prep_len, (mach_vm_address_t)(limit & ~(a - 1)));
	if (cmd->iomem__copy_md == NULL)
		return false;
	/* trust, but check: one run, below the limit */
	pa = IOMemoryDescriptor_getPhysicalSegment(cmd->iomem__copy_md, 0, &l, kIOMemoryMapperNone);
	if (pa == 0 || l < cmd->iomem__prep_len || pa + cmd->iomem__prep_len - 1 > limit) {
		IOMemoryDescriptor_release(cmd->iomem__copy_md);
		cmd->iomem__copy_md = NULL;
		return false;
	}
	cmd->iomem__bounce = IOMEM__DMA_BOUNCE_DOUBLE;
	return true;
}

/* Sparse: a low page for each piece of the prepared range lying in a page
 * above the limit (@count of them, found by the preflight). */
IOMEM__PRIVATE bool iomem__dma_alloc_sparse(IODMACommand *cmd, uint32_t count, vm_size_t page)
{
	iomem_walk w;
	addr64_t pa;
	IOByteCount len, doff, pmask = page - 1;
	uint64_t maxp = cmd->iomem__max_phys;
	uint32_t k = 0, got, j;
	iomem__dma_bounce_page *pg = cmd->iomem__pages;
	if (count > cmd->iomem__pages_cap) {
		/* grown only: kept across preparations */
		pg = (iomem__dma_bounce_page *)iomem__alloc_internal((vm_size_t)count * sizeof *pg,
		                                                      "IODMACommand bounce pages");
		if (pg == NULL)
			return false;
		if (cmd->iomem__pages != NULL)
			iomem__free_internal(cmd->iomem__pages, (vm_size_t)cmd->iomem__pages_cap * sizeof *pg,
			                     "IODMACommand bounce pages");
		cmd->iomem__pages = pg;
		cmd->iomem__pages_cap = count;
	}
	/* the pieces, in descriptor order */
	iomem__memset(&w, 0, sizeof w);
	iomem_walk_init(&w, cmd->iomem__md, cmd->iomem__prep_off, cmd->iomem__prep_off + cmd->iomem__prep_len);
	doff = cmd->iomem__prep_off;
	while ((len = iomem_walk_next(&w, &pa)) != 0) {
		addr64_t p = pa, e = pa + len;
		if (e - 1 > maxp) {
			if (p <= maxp)
				p = maxp + 1;
			while (p < e && k < count) {
				IOByteCount piece = (pmask + 1) - (p & pmask);
				if (piece > e - p)
					piece = e - p;
				pg[k].doff = doff + (p - pa);
				pg[k].len = piece;
				pg[k].in = (uint32_t)(p & pmask);
				pg[k].chunk = NULL;
				k++;
				p += piece;
			}
		}
		doff += len;
	}
	if (k != count)
		return false;
	got = iomem__bounce_alloc(pg, count, page);    /* pa/va: the pages */
	cmd->iomem__npages = got;
	cmd->iomem__bounce = IOMEM__DMA_BOUNCE_SPARSE;
	if (got != count)
		return false;
	for (j = 0; j < count; j++) {
		if (pg[j].pa + page - 1 > maxp)
			return false;                  /* the pool is above this device's limit */
		pg[j].pa += pg[j].in;
		pg[j].va += pg[j].in;
	}
	return true;
}

/* Copies between the descriptor and the bounce storage. */
IOMEM__PRIVATE void iomem__dma_sync(IODMACommand *cmd, bool to_md)
{
	IOMemoryDescriptor *md = cmd->iomem__md;
	if (cmd->iomem__bounce == IOMEM__DMA_BOUNCE_DOUBLE) {
		void *b = IOBufferMemoryDescriptor_getBytesNoCopy(cmd->iomem__copy_md);
		if (to_md)
			IOMemoryDescriptor_writeBytes(md, cmd->iomem__prep_off, b, cmd->iomem__prep_len);
		else
			IOMemoryDescriptor_readBytes(md, cmd->iomem__prep_off, b, cmd->iomem__prep_len);
	} else if (cmd->iomem__bounce == IOMEM__DMA_BOUNCE_SPARSE) {
		uint32_t i = 0, n = cmd->iomem__npages;
		const iomem__dma_bounce_page *p = cmd->iomem__pages;
		while (i < n) {
			/* one copy for consecutive pieces whose bounce pages follow
			 * each other too (slots of one chunk) */
			IOByteCount len = p[i].len;
			uint32_t j = i + 1;
			while (j < n && p[j].doff == p[i].doff + len && p[j].va == p[i].va + len) {
				len += p[j].len;
				j++;
			}
			if (to_md)
				IOMemoryDescriptor_writeBytes(md, p[i].doff, p[i].va, len);
			else
				IOMemoryDescriptor_readBytes(md, p[i].doff, p[i].va, len);
			i = j;
		}
	}
}

/* The sparse page holding descriptor offset @doff (sorted by offset). */
IOMEM__HOT_INLINE const iomem__dma_bounce_page *iomem__dma_find_page(IODMACommand *cmd, IOByteCount doff)
{
	const iomem__dma_bounce_page *p = cmd->iomem__pages;
	uint32_t n = cmd->iomem__npages, h = cmd->iomem__page_hint, lo = 0;
	if (h < n && doff >= p[h].doff && doff < p[h].doff + p[h].len)
		return &p[h];
	if (h + 1 < n && doff >= p[h + 1].doff && doff < p[h + 1].doff + p[h + 1].len) {
		cmd->iomem__page_hint = h + 1;
		return &p[h + 1];
	}
	while (n > 1) {                   /* the last page starting at or before doff */
		uint32_t half = n / 2;
		if (p[lo + half].doff <= doff)
			lo += half;
		n -= half;
	}
	if (cmd->iomem__npages == 0 || doff < p[lo].doff || doff >= p[lo].doff + p[lo].len)
		return NULL;
	cmd->iomem__page_hint = lo;
	return &p[lo];
}

/* ---- descriptor attachment, prepare, complete ----------------------------- */

IOMEM__PRIVATE IOReturn iomem__dma_prepare(IODMACommand *cmd, UInt64 offset, UInt64 length, bool flushCache,
                                           bool synchronize, bool forceDouble)
{
	IOMemoryDescriptor *md, *src;
	IOByteCount mdlen;
	IODirection dir;
	bool use_mapper, check_addr, need_align, misaligned = false, preflown = false;
	uint32_t high = 0;
	vm_size_t page = 0;                   /* read once: sysconf on POSIX */
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if (cmd->iomem__out_fn == NULL || cmd->iomem__md == NULL)
		return kIOReturnNotReady;
	md = cmd->iomem__md;
	mdlen = IOMemoryDescriptor_getLength(md);
	if (length == 0)
		length = mdlen;
	if (length > cmd->iomem__max_xfer)
		return kIOReturnNoSpace;
	if (offset > mdlen || length > mdlen - offset)
		return kIOReturnBadArgument;
	if (cmd->iomem__active != 0) {
		/* nested: the same range only. Unlike IOKit, a refused prepare
		 * does not leave the count raised (reference §8.3 item 8) */
		if (offset != cmd->iomem__prep_off || length != cmd->iomem__prep_len)
			return kIOReturnNotReady;
		cmd->iomem__active++;
		return kIOReturnSuccess;
	}
	if (length & cmd->iomem__align_mask_len)
		return kIOReturnNotAligned;

	cmd->iomem__prep_off = offset;
	cmd->iomem__prep_len = length;
	cmd->iomem__bounce = IOMEM__DMA_BOUNCE_NONE;
	cmd->iomem__cursor = 0;
	dir = IOMemoryDescriptor_getDirection(md);
	use_mapper = iomem__dma_uses_mapper(cmd);
	check_addr = !use_mapper && cmd->iomem__max_phys != IOMEM__DMA_ALL;
	need_align = (cmd->iomem__align_mask | cmd->iomem__align_mask_len | cmd->iomem__align_mask_int) != 0;

	if ((cmd->iomem__mapping_options & IODMACommand_kIterateOnly) || length == 0) {
		cmd->iomem__cursor = 1;
	} else if (forceDouble) {
		misaligned = true;
	} else if (use_mapper && cmd->iomem__mapper->ops->iovmMapExtents != NULL) {
		/* an extents mapper (the Linux DMA API) bounces itself: never
		 * here; the rules still cut and trim, misfits are not errors */
	} else if (use_mapper) {
		/* one IOVA run: only its first byte's page offset can misfit (the
		 * mapper aligns the rest) */
		if (need_align) {
			IOByteCount l;
			addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, offset, &l, kIOMemoryMapperNone);
			uint64_t pmask = iomem__platform_page_size() - 1;
			if (pa == 0)
				return kIOReturnNotReady;
			misaligned = (pa & cmd->iomem__align_mask & pmask) != 0;
		}
		if (!misaligned)
			cmd->iomem__cursor = 1;
	} else if (check_addr || need_align) {
		/* the preflight walk: what misfits, how many pages are too high */
		iomem_walk w;
		addr64_t pa;
		IOByteCount len, pos = 0;
		unsigned shift;
		page = iomem__platform_page_size();
		shift = iomem__flog2((uint64_t)page);
		iomem__memset(&w, 0, sizeof w);        /* (a compiler cannot see it is set) */
		iomem_walk_init(&w, md, offset, offset + length);
		uint64_t maxp = check_addr ? cmd->iomem__max_phys : IOMEM__DMA_ALL;
		uint64_t mlen = cmd->iomem__align_mask_len, mint = cmd->iomem__align_mask_int;
		while ((len = iomem_walk_next(&w, &pa)) != 0) {
			if (pa + len - 1 > maxp) {
				addr64_t hi = pa > maxp ? pa : maxp + 1;
				high += (uint32_t)(((pa + len - 1) >> shift) - (hi >> shift) + 1);
			}
			if (!need_align) {
				pos += len;
				continue;
			}
			{
				/* the segments the engine will emit (steps a-d, a
				 * bounce page for each page above the limit), checked
				 * as a cursor would (step e) */
				addr64_t a = pa;
				IOByteCount rest = len;
				while (rest != 0) {
					IOByteCount l = rest;
					uint64_t r;
					if (a + l - 1 > maxp) {
						if (a <= maxp) {
							l = maxp + 1 - a;
						} else {
							IOByteCount pe = page - (a & (page - 1));
							if (l > pe)
								l = pe;
						}
					}
					if (l > cmd->iomem__max_seg)
						l = cmd->iomem__max_seg;
					if ((l & mlen) != 0 && l > mlen)
						l &= ~mlen;
					if (pos + l < length) {
						r = (a + l) & mint;
						if (r != 0 && r < l)
							l -= r;
					}
					if ((a & (pos == 0 ? cmd->iomem__align_mask : mint)) != 0 || (l & mlen) != 0) {
						misaligned = true;
						break;
					}
					a += l;
					rest -= l;
					pos += l;
				}
				if (misaligned)
					break;
			}
		}
		if (!misaligned && pos != length)
			return kIOReturnNotReady;        /* no physical address: not prepared */
		preflown = check_addr && !misaligned;
		if (!misaligned && high == 0)
			cmd->iomem__cursor = 1;
	} else {
		cmd->iomem__cursor = 1;
	}

	if (misaligned) {
		if (!iomem__dma_alloc_double(cmd))
			return kIOReturnNoResources;
	} else if (high != 0) {
		if (!iomem__dma_alloc_sparse(cmd, high, page)) {
			/* IOKit's rule 4: no page list -> the double buffer */
			iomem__dma_free_bounce(cmd);
			if (!iomem__dma_alloc_double(cmd))
				return kIOReturnNoResources;
		}
	}
	if (synchronize && cmd->iomem__bounce != IOMEM__DMA_BOUNCE_NONE &&
	    ((dir & kIODirectionOut) || (dir & kIODirectionOutIn) == 0))
		iomem__dma_sync(cmd, false);

	src = cmd->iomem__copy_md ? cmd->iomem__copy_md : md;
	if (use_mapper && length != 0) {
		IODMAMapSpecification spec;
		uint32_t mopt = kIODMAMapReadAccess;
		IOReturn r;
		iomem__memset(&spec, 0, sizeof spec);
		spec.alignment = (uint64_t)cmd->iomem__align_mask + 1;
		spec.numAddressBits = (uint8_t)(cmd->iomem__bits ? cmd->iomem__bits : 64);
		if (cmd->iomem__copy_md != NULL || (dir & kIODirectionOutIn) != kIODirectionOut)
			mopt |= kIODMAMapWriteAccess;
		if (cmd->iomem__mapper->ops->iovmMapExtents != NULL) {
			/* a list of device-address extents (the Linux DMA API) */
			const iomem_md_extent *x = NULL;
			uint32_t xn = 0;
			void *h = NULL;
			r = cmd->iomem__mapper->ops->iovmMapExtents(cmd->iomem__mapper, src, cmd->iomem__copy_md ? 0 : offset,
			                                            length, mopt, &spec, cmd, &x, &xn, &h);
			if (r == kIOReturnSuccess && (x == NULL || xn == 0 || x[xn - 1].end != length)) {
				if (cmd->iomem__mapper->ops->iovmUnmapExtents != NULL)
					cmd->iomem__mapper->ops->iovmUnmapExtents(cmd->iomem__mapper, cmd, h);
				r = kIOReturnInternalError;     /* the mapper broke its contract */
			}
			if (r != kIOReturnSuccess) {
				iomem__dma_free_bounce(cmd);
				return r;
			}
			cmd->iomem__xext = x;
			cmd->iomem__xcount = xn;
			cmd->iomem__xhandle = h;
			cmd->iomem__mapped = 2;
			if (synchronize && ((dir & kIODirectionOut) || (dir & kIODirectionOutIn) == 0) &&
			    cmd->iomem__mapper->ops->iovmSync != NULL)
				cmd->iomem__mapper->ops->iovmSync(cmd->iomem__mapper, cmd, h, kIODirectionOut);
		} else {
			r = IOMapper_iovmMapMemory(cmd->iomem__mapper, src, cmd->iomem__copy_md ? 0 : offset, length, mopt,
			                           &spec, cmd, NULL, &cmd->iomem__iova, &cmd->iomem__iova_len);
			if (r != kIOReturnSuccess) {
				iomem__dma_free_bounce(cmd);
				return r;
			}
			cmd->iomem__mapped = 1;
		}
	}
	if (flushCache && (cmd->iomem__mapping_options & IODMACommand_kTypeMask) == IODMACommand_kNonCoherent &&
	    length != 0)
		IOMemoryDescriptor_performOperation(src, kIOMemoryIncoherentIOStore,
		                                    cmd->iomem__copy_md ? 0 : offset, length);
	cmd->iomem__simple = !need_align && cmd->iomem__bounce != IOMEM__DMA_BOUNCE_SPARSE;
	/* the preflight found nothing above the limit (or the double buffer
	 * is below it): the engine skips the check */
	cmd->iomem__lim = (preflown && high == 0) || cmd->iomem__bounce == IOMEM__DMA_BOUNCE_DOUBLE
	                  ? IOMEM__DMA_ALL : cmd->iomem__max_phys;
	/* one run (an IOVA range, a double buffer, contiguous memory): the
	 * engine's shortcut, no walk at all */
	cmd->iomem__single = 0;
	if (cmd->iomem__simple && length != 0) {
		if (cmd->iomem__mapped == 1) {
			cmd->iomem__single_pa = cmd->iomem__iova;
			cmd->iomem__single = 1;
		} else if (cmd->iomem__mapped == 2) {
			if (cmd->iomem__xcount == 1) {
				cmd->iomem__single_pa = cmd->iomem__xext[0].phys;
				cmd->iomem__single = 1;
			}
		} else {
			IOByteCount l = 0;
			addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(src, cmd->iomem__copy_md ? 0 : offset, &l,
			                                                    kIOMemoryMapperNone);
			if (pa != 0 && l >= length) {
				cmd->iomem__single_pa = pa;
				cmd->iomem__single = 1;
			}
		}
	}
	cmd->iomem__pos = IOMEM__DMA_NOPOS;
	cmd->iomem__active = 1;
	return kIOReturnSuccess;
}

IOMEM_API IOReturn IODMACommand_prepare(IODMACommand *cmd, UInt64 offset, UInt64 length,
                                        bool flushCache, bool synchronize)
{
	return iomem__dma_prepare(cmd, offset, length, flushCache, synchronize, false);
}

IOMEM_API IOReturn IODMACommand_complete(IODMACommand *cmd, bool invalidateCache, bool synchronize)
{
	IODirection dir;
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if (cmd->iomem__active == 0)
		return kIOReturnNotReady;
	if (--cmd->iomem__active != 0)
		return kIOReturnSuccess;
	dir = IOMemoryDescriptor_getDirection(cmd->iomem__md);
	if (invalidateCache && (cmd->iomem__mapping_options & IODMACommand_kTypeMask) == IODMACommand_kNonCoherent &&
	    cmd->iomem__prep_len != 0)
		IOMemoryDescriptor_performOperation(cmd->iomem__copy_md ? cmd->iomem__copy_md : cmd->iomem__md,
		                                    kIOMemoryIncoherentIOFlush,
		                                    cmd->iomem__copy_md ? 0 : cmd->iomem__prep_off, cmd->iomem__prep_len);
	if (synchronize && cmd->iomem__mapped == 2 && ((dir & kIODirectionIn) || (dir & kIODirectionOutIn) == 0) &&
	    cmd->iomem__mapper->ops->iovmSync != NULL)
		cmd->iomem__mapper->ops->iovmSync(cmd->iomem__mapper, cmd, cmd->iomem__xhandle, kIODirectionIn);
	if (synchronize && cmd->iomem__bounce != IOMEM__DMA_BOUNCE_NONE &&
	    ((dir & kIODirectionIn) || (dir & kIODirectionOutIn) == 0))
		iomem__dma_sync(cmd, true);
	if (cmd->iomem__mapped == 2) {
		const iomem_mapper_ops *ops = cmd->iomem__mapper->ops;
		if (ops->iovmUnmapExtents != NULL)
			ops->iovmUnmapExtents(cmd->iomem__mapper, cmd, cmd->iomem__xhandle);
		cmd->iomem__xext = NULL;
		cmd->iomem__xcount = 0;
		cmd->iomem__xhandle = NULL;
		cmd->iomem__mapped = 0;
	} else if (cmd->iomem__mapped) {
		IOMapper_iovmUnmapMemory(cmd->iomem__mapper,
		                         cmd->iomem__copy_md ? cmd->iomem__copy_md : cmd->iomem__md,
		                         cmd, cmd->iomem__iova, cmd->iomem__iova_len);
		cmd->iomem__mapped = 0;
	}
	iomem__dma_free_bounce(cmd);
	cmd->iomem__cursor = 0;
	cmd->iomem__pos = IOMEM__DMA_NOPOS;
	return kIOReturnSuccess;
}

IOMEM_API IOReturn IODMACommand_clearMemoryDescriptor(IODMACommand *cmd, bool autoComplete)
{
	IOMemoryDescriptor *md;
	if (cmd == NULL)
		return kIOReturnBadArgument;
	md = cmd->iomem__md;
	if (md == NULL)
		return kIOReturnSuccess;
	if (cmd->iomem__active != 0 && !autoComplete)
		return kIOReturnNotReady;
	while (cmd->iomem__active != 0)
		IODMACommand_complete(cmd, true, true);
	if (cmd->iomem__dma_marked) {
		(void)iomem__ref_release(&md->iomem__dma_active);   /* shared by commands: atomic */
		cmd->iomem__dma_marked = 0;
	}
	cmd->iomem__md = NULL;
	cmd->iomem__pos = IOMEM__DMA_NOPOS;
	IOMemoryDescriptor_release(md);
	return kIOReturnSuccess;
}

IOMEM_API IOReturn IODMACommand_setMemoryDescriptor(IODMACommand *cmd, const IOMemoryDescriptor *mem,
                                                    bool autoPrepare)
{
	IOMemoryDescriptor *md = (IOMemoryDescriptor *)(uintptr_t)mem;
	IOReturn r;
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if (md != NULL && md == cmd->iomem__md) {
		if (!autoPrepare)
			while (cmd->iomem__active != 0)
				IODMACommand_complete(cmd, true, true);
		return kIOReturnSuccess;
	}
	if (cmd->iomem__md != NULL) {
		if (cmd->iomem__active != 0)
			return kIOReturnBusy;
		IODMACommand_clearMemoryDescriptor(cmd, true);
	}
	if (md == NULL)
		return kIOReturnSuccess;
	IOMemoryDescriptor_retain(md);
	cmd->iomem__md = md;
	cmd->iomem__pos = IOMEM__DMA_NOPOS;
	if (!iomem__dma_uses_mapper(cmd)) {
		/* IOKit marks the descriptor "DMA active" (its final complete
		 * panics until the command lets go); counted, reported in debug */
		iomem__ref_retain(&md->iomem__dma_active);
		cmd->iomem__dma_marked = 1;
	}
	if (autoPrepare) {
		r = IODMACommand_prepare(cmd, 0, 0, true, true);
		if (r != kIOReturnSuccess) {
			IODMACommand_clearMemoryDescriptor(cmd, true);
			return r;
		}
	}
	return kIOReturnSuccess;
}

IOMEM_API IOReturn IODMACommand_prepareWithSpecification(IODMACommand *cmd,
        IODMACommand_SegmentFunction outSegFunc, const IODMACommand_SegmentOptions *segmentOptions,
        uint32_t mappingOptions, IOMapper *mapper, UInt64 offset, UInt64 length,
        bool flushCache, bool synchronize)
{
	IOReturn r;
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if (cmd->iomem__active != 0)
		return kIOReturnNotPermitted;
	r = iomem__dma_set_spec(cmd, outSegFunc, segmentOptions, mappingOptions, mapper);
	if (r != kIOReturnSuccess)
		return r;
	return IODMACommand_prepare(cmd, offset, length, flushCache, synchronize);
}

IOMEM_API IOReturn IODMACommand_synchronize(IODMACommand *cmd, IOOptionBits options)
{
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if ((options & kIODirectionIn) && (options & kIODirectionOut))
		return kIOReturnBadArgument;
	if (cmd->iomem__active == 0)
		return kIOReturnNotReady;
	if (options & IODMACommand_kForceDoubleBuffer) {
		UInt64 off = cmd->iomem__prep_off, len = cmd->iomem__prep_len;
		if (cmd->iomem__bounce == IOMEM__DMA_BOUNCE_DOUBLE)
			return kIOReturnSuccess;
		if (cmd->iomem__active != 1)
			return kIOReturnBusy;        /* nested preparations would lose their mapping */
		IODMACommand_complete(cmd, false, true);
		return iomem__dma_prepare(cmd, off, len, false, true, true);
	}
	if (!(options & (kIODirectionIn | kIODirectionOut)))
		return kIOReturnBadArgument;
	if ((options & kIODirectionIn) && cmd->iomem__mapped == 2 && cmd->iomem__mapper->ops->iovmSync != NULL)
		cmd->iomem__mapper->ops->iovmSync(cmd->iomem__mapper, cmd, cmd->iomem__xhandle, kIODirectionIn);
	if (cmd->iomem__bounce != IOMEM__DMA_BOUNCE_NONE)
		iomem__dma_sync(cmd, (options & kIODirectionIn) != 0);
	if ((options & kIODirectionOut) && cmd->iomem__mapped == 2 && cmd->iomem__mapper->ops->iovmSync != NULL)
		cmd->iomem__mapper->ops->iovmSync(cmd->iomem__mapper, cmd, cmd->iomem__xhandle, kIODirectionOut);
	return kIOReturnSuccess;
}

IOMEM_API IOReturn IODMACommand_getPreparedOffsetAndLength(IODMACommand *cmd, UInt64 *offset, UInt64 *length)
{
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if (cmd->iomem__active == 0)
		return kIOReturnNotReady;
	if (offset != NULL)
		*offset = cmd->iomem__prep_off;
	if (length != NULL)
		*length = cmd->iomem__prep_len;
	return kIOReturnSuccess;
}

/* readBytes/writeBytes through the DMA view: the bounce copy when bounced. */
IOMEM__PRIVATE UInt64 iomem__dma_rw(IODMACommand *cmd, UInt64 offset, unsigned char *buf, UInt64 length, bool write)
{
	IOMemoryDescriptor *md;
	IOByteCount abs, done = 0;
	if (cmd == NULL || buf == NULL || cmd->iomem__active == 0 || offset >= cmd->iomem__prep_len)
		return 0;
	if (length > cmd->iomem__prep_len - offset)
		length = cmd->iomem__prep_len - offset;
	if (length == 0)
		return 0;
	md = cmd->iomem__md;
	if (cmd->iomem__bounce == IOMEM__DMA_BOUNCE_DOUBLE) {
		md = cmd->iomem__copy_md;
		abs = offset;
	} else {
		abs = cmd->iomem__prep_off + offset;
	}
	if (cmd->iomem__bounce != IOMEM__DMA_BOUNCE_SPARSE)
		return write ? IOMemoryDescriptor_writeBytes(md, abs, buf, length)
		             : IOMemoryDescriptor_readBytes(md, abs, buf, length);
	while (done < length) {
		IOByteCount at = abs + done, chunk = length - done, got;
		const iomem__dma_bounce_page *p = iomem__dma_find_page(cmd, at);
		if (p != NULL) {
			IOByteCount in = at - p->doff;
			if (chunk > p->len - in)
				chunk = p->len - in;
			if (write)
				iomem__memcpy(p->va + in, buf + done, chunk);
			else
				iomem__memcpy(buf + done, p->va + in, chunk);
			done += chunk;
			continue;
		}
		{
			/* up to the next bounced page */
			uint32_t i;
			for (i = 0; i < cmd->iomem__npages; i++)
				if (cmd->iomem__pages[i].doff > at) {
					if (chunk > cmd->iomem__pages[i].doff - at)
						chunk = cmd->iomem__pages[i].doff - at;
					break;
				}
		}
		got = write ? IOMemoryDescriptor_writeBytes(md, at, buf + done, chunk)
		            : IOMemoryDescriptor_readBytes(md, at, buf + done, chunk);
		done += got;
		if (got != chunk)
			break;
	}
	return done;
}

IOMEM_API UInt64 IODMACommand_readBytes(IODMACommand *cmd, UInt64 offset, void *bytes, UInt64 length)
{
	return iomem__dma_rw(cmd, offset, (unsigned char *)bytes, length, false);
}

IOMEM_API UInt64 IODMACommand_writeBytes(IODMACommand *cmd, UInt64 offset, const void *bytes, UInt64 length)
{
	return iomem__dma_rw(cmd, offset, (unsigned char *)(uintptr_t)bytes, length, true);
}

/* ---- segment generation --------------------------------------------------- */

/* Positions the command's walk at relative offset @pos of the preparation
 * (the state is valid for @pos whatever the caller then does). */
IOMEM__PRIVATE void iomem__dma_seek(IODMACommand *cmd, IOByteCount pos)
{
	iomem_walk *w = &cmd->iomem__walk;
	cmd->iomem__run_len = 0;
	cmd->iomem__pos = pos;
	if (cmd->iomem__mapped == 2) {
		/* the mapper's extents, offsets relative to the prepared start:
		 * walked exactly as a descriptor's */
		iomem__memset(w, 0, sizeof *w);
		w->ext.e = cmd->iomem__xext;
		w->ext.n = cmd->iomem__xcount;
		w->ext.length = cmd->iomem__prep_len;
		w->ext.off = pos;
		w->ext.i = iomem_extents_find(cmd->iomem__xext, cmd->iomem__xcount, 0, pos);
		w->off = pos;
		w->end = cmd->iomem__prep_len;
	} else if (cmd->iomem__mapped) {
		/* one IOVA run; the walk stays empty */
		iomem__memset(w, 0, sizeof *w);
		cmd->iomem__run_pa = cmd->iomem__iova + pos;
		cmd->iomem__run_len = cmd->iomem__prep_len - pos;
	} else if (cmd->iomem__copy_md != NULL) {
		iomem_walk_init(w, cmd->iomem__copy_md, pos, cmd->iomem__prep_len);
	} else {
		iomem_walk_init(w, cmd->iomem__md, cmd->iomem__prep_off + pos,
		                cmd->iomem__prep_off + cmd->iomem__prep_len);
	}
}

/* The index of the extent holding byte @xend - 1, looked for in
 * [@xi, @xi + @room] only: beyond that, any index past the range (no
 * extent there is reached). O(1) for the usual end, else O(log room). */
IOMEM_FORCEINLINE uint32_t iomem__dma_xlast(const iomem_md_extent *e, uint32_t xn, uint32_t xi, uint32_t room,
                                            IOByteCount xend)
{
	uint32_t hi = (xn - 1 - xi) < room ? xn - 1 : xi + room;
	if (e[hi].end < xend)
		return hi + 1;
	/* hint: the end is usually in the last or next-to-last reachable one */
	return xi + iomem_extents_find(e + xi, hi - xi + 1, hi > xi ? hi - xi - 1 : 0, xend - 1);
}

/* Whole extents [*xi, stop) of the extent fast path, each one segment or,
 * longer than max_seg, split in place when max_seg is a power of two (2^
 * @sshift); else (or when the slots run out) the rest is left in *run_pa
 * and *run_len for the piece path. @limit (a constant, except at -Os where
 * one copy serves both calls) checks the address limit. */
IOMEM__HOT_INLINE IOReturn iomem__dma_whole(unsigned fmt, bool limit, IODMACommand_SegmentFunction fn,
                                            IODMACommand *cmd, void *segs, UInt32 *ip, UInt32 n, uint32_t stop,
                                            uint32_t *xip, IOByteCount *xoffp, const iomem_md_extent *e,
                                            uint64_t max_seg, unsigned sshift, uint64_t max_phys,
                                            addr64_t *run_pa, IOByteCount *run_len)
{
	UInt32 i = *ip;
	uint32_t xi = *xip;
	IOByteCount xoff = *xoffp;
	IOReturn r = kIOReturnSuccess;
	while (xi < stop) {
		IOByteCount eend = e[xi].end, l = eend - xoff;
		addr64_t a = e[xi].phys;
		xi++;
		xoff = eend;
		if (limit && IOMEM_UNLIKELY(a + l - 1 > max_phys)) {
			r = kIOReturnMessageTooLarge;
			break;
		}
		if (IOMEM_UNLIKELY(l > max_seg)) {
			uint64_t k, j;
			if (sshift >= 64) {
				*run_pa = a;              /* not a power of two: the piece path */
				*run_len = l;
				break;
			}
			/* split in place: k full pieces, then the last one below */
			k = (l - 1) >> sshift;
			if (k >= (uint64_t)(n - i)) {
				k = n - i;                /* no room for all: the rest is pending */
				for (j = 0; j < k; j++)
					if (!iomem__dma_emit(fmt, fn, cmd, segs, i + (UInt32)j, a + (j << sshift), max_seg))
						return kIOReturnMessageTooLarge;
				i += (UInt32)k;
				*run_pa = a + (k << sshift);
				*run_len = l - (k << sshift);
				break;
			}
			for (j = 0; j < k; j++)
				if (!iomem__dma_emit(fmt, fn, cmd, segs, i + (UInt32)j, a + (j << sshift), max_seg))
					return kIOReturnMessageTooLarge;
			i += (UInt32)k;
			a += k << sshift;
			l -= k << sshift;
			/* extents left to visit: no more than the slots after this one */
			if (stop - xi > n - i - 1)
				stop = xi + (n - i - 1);
		}
		if (!iomem__dma_emit(fmt, fn, cmd, segs, i, a, l)) {
			r = kIOReturnMessageTooLarge;
			break;
		}
		i++;
	}
	*ip = i;
	*xip = xi;
	*xoffp = xoff;
	return r;
}

/* The engine, specialised per output format @fmt (a constant). */
IOMEM_FORCEINLINE IOReturn iomem__dma_gen(IODMACommand *cmd, unsigned fmt, IODMACommand_SegmentFunction fn,
                                          UInt64 *offsetP, void *segs, UInt32 *numP)
{
	iomem_walk w;
	addr64_t run_pa;
	IOByteCount pos, end, run_len;
	uint64_t max_seg, max_phys;
	UInt32 n, i = 0;
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if (cmd->iomem__active == 0)
		return kIOReturnNotReady;
	if (offsetP == NULL || segs == NULL || numP == NULL || *numP == 0 || fn == NULL)
		return kIOReturnBadArgument;
	pos = *offsetP;
	end = cmd->iomem__prep_len;
	if (pos >= end)
		return kIOReturnOverrun;
	n = *numP;
	max_seg = cmd->iomem__max_seg;
	max_phys = cmd->iomem__lim;
	if (cmd->iomem__single) {
		/* one run, no walk: the common IOMMU case */
		addr64_t a = cmd->iomem__single_pa + pos;
		IOByteCount l = end - pos;
		if (IOMEM_LIKELY(l <= max_seg && a + l - 1 <= max_phys)) {
			if (!iomem__dma_emit(fmt, fn, cmd, segs, 0, a, l))
				return kIOReturnMessageTooLarge;
			*offsetP = end;
			*numP = 1;
			return kIOReturnSuccess;
		}
	}
	if (IOMEM_UNLIKELY(pos != cmd->iomem__pos))
		iomem__dma_seek(cmd, pos);                 /* else resume: O(1) */
	run_pa = cmd->iomem__run_pa;
	run_len = cmd->iomem__run_len;
	if (IOMEM_LIKELY(cmd->iomem__simple && cmd->iomem__walk.md == NULL)) {
		/* no alignment rule, no sparse page, extents: runs straight out
		 * of the extent array, split at max_seg; a run past the limit can
		 * only be an error here. The walk's fields live in locals (few
		 * enough to stay in registers); the relative offset is derived
		 * from the extent offset at the end. */
		const iomem_md_extent *e = cmd->iomem__walk.ext.e;
		uint32_t xi = cmd->iomem__walk.ext.i, xn = cmd->iomem__walk.ext.n, xlast;
		IOByteCount xoff = cmd->iomem__walk.ext.off, xend = cmd->iomem__walk.ext.length;
		IOByteCount delta = pos - (xoff - run_len);
		unsigned sshift = cmd->iomem__seg_shift;
		if (xn == 0)
			xend = xoff;
		else if (xend > e[xn - 1].end)
			xend = e[xn - 1].end;             /* xoff < xend: xi < n */
		if (run_len == 0 && xoff < xend && xoff != (xi != 0 ? e[xi - 1].end : 0)) {
			/* the walk starts inside an extent: that piece first */
			IOByteCount eend = e[xi].end < xend ? e[xi].end : xend;
			run_pa = e[xi].phys + (xoff - (xi != 0 ? e[xi - 1].end : 0));
			run_len = eend - xoff;
			xoff = eend;
			xi++;
		}
		for (;;) {
			uint32_t stop;
			IOReturn r;
			if (run_len != 0) {
				/* a piece: a split run's rest, a partial extent */
				addr64_t a = run_pa;
				IOByteCount l = run_len;
				if (IOMEM_UNLIKELY(a + l - 1 > max_phys))
					return kIOReturnMessageTooLarge;
				if (l > max_seg && sshift < 64) {
					/* split, power of two: a counted loop of
					 * fixed-size pieces (no division) */
					uint64_t k = (l - 1) >> sshift, j;
					if (k > (uint64_t)(n - i))
						k = n - i;
					for (j = 0; j < k; j++)
						if (!iomem__dma_emit(fmt, fn, cmd, segs, i + (UInt32)j, a + (j << sshift), max_seg))
							return kIOReturnMessageTooLarge;
					i += (UInt32)k;
					a += k << sshift;
					l -= k << sshift;
				}
				while (l > max_seg && i < n) {
					/* split: fixed-size pieces, no division */
					if (!iomem__dma_emit(fmt, fn, cmd, segs, i, a, max_seg))
						return kIOReturnMessageTooLarge;
					i++;
					a += max_seg;
					l -= max_seg;
				}
				if (i >= n) {
					run_pa = a;                /* the rest: next call */
					run_len = l;
					break;
				}
				if (!iomem__dma_emit(fmt, fn, cmd, segs, i, a, l))
					return kIOReturnMessageTooLarge;
				i++;
				run_len = 0;
			}
			if (i >= n || xoff >= xend)
				break;
			/* the extent holding the last byte (the only one clipped),
			 * searched no further than the segments left can reach */
			xlast = iomem__dma_xlast(e, xn, xi, n - i, xend);
			/* whole extents before the last: no clip, one check each */
			stop = xi + ((n - i) < (xlast - xi) ? (n - i) : (xlast - xi));
			if (max_phys == IOMEM__DMA_ALL)
				r = iomem__dma_whole(fmt, false, fn, cmd, segs, &i, n, stop, &xi, &xoff, e, max_seg, sshift,
				                     max_phys, &run_pa, &run_len);
			else
				r = iomem__dma_whole(fmt, true, fn, cmd, segs, &i, n, stop, &xi, &xoff, e, max_seg, sshift,
				                     max_phys, &run_pa, &run_len);
			if (r != kIOReturnSuccess)
				return r;
			if (run_len == 0 && xi == xlast && i < n && xoff < xend) {
				/* the last extent, clipped at the end */
				IOByteCount eend = e[xi].end < xend ? e[xi].end : xend;
				run_pa = e[xi].phys;
				run_len = eend - xoff;
				xoff = eend;
				xi++;
			}
		}
		/* only scalars go back: no whole-walk copy */
		cmd->iomem__walk.ext.i = xi;
		cmd->iomem__walk.ext.off = xoff;
		pos = xoff - run_len + delta;
		if (i == 0)
			return kIOReturnNotReady;
		cmd->iomem__pos = pos;
		cmd->iomem__run_pa = run_pa;
		cmd->iomem__run_len = run_len;
		*offsetP = pos;
		*numP = i;
		return kIOReturnSuccess;
	}
	w = cmd->iomem__walk;
	if (IOMEM_LIKELY(cmd->iomem__simple)) {
		/* the same on the other walks (IOVA run, sub/multi/custom kinds) */
		while (i < n) {
			if (run_len == 0) {
				run_len = iomem_walk_next(&w, &run_pa);
				if (run_len == 0)
					break;
			}
			if (IOMEM_UNLIKELY(run_pa + run_len - 1 > max_phys))
				return kIOReturnMessageTooLarge;
			if (IOMEM_LIKELY(run_len <= max_seg)) {
				if (!iomem__dma_emit(fmt, fn, cmd, segs, i, run_pa, run_len))
					return kIOReturnMessageTooLarge;
				pos += run_len;
				run_len = 0;
				i++;
				continue;
			}
			if (!iomem__dma_emit(fmt, fn, cmd, segs, i, run_pa, max_seg))
				return kIOReturnMessageTooLarge;
			run_pa += max_seg;
			run_len -= max_seg;
			pos += max_seg;
			i++;
		}
	} else {
		uint64_t mlen = cmd->iomem__align_mask_len, mint = cmd->iomem__align_mask_int;
		bool cursor = cmd->iomem__cursor != 0;
		while (i < n) {
			addr64_t a;
			IOByteCount l;
			if (run_len == 0) {
				run_len = iomem_walk_next(&w, &run_pa);
				if (run_len == 0)
					break;
			}
			a = run_pa;
			l = run_len;
			/* a. the address limit */
			if (a + l - 1 > max_phys) {
				if (cmd->iomem__bounce != IOMEM__DMA_BOUNCE_SPARSE)
					return kIOReturnMessageTooLarge;
				if (a <= max_phys) {
					l = max_phys + 1 - a;           /* straddles: cut */
				} else {
					IOByteCount doff = cmd->iomem__prep_off + pos;
					const iomem__dma_bounce_page *p = iomem__dma_find_page(cmd, doff);
					if (p == NULL)
						return kIOReturnMessageTooLarge;
					/* one bounce page at a time (reference §2.1 a) */
					a = p->pa + (doff - p->doff);
					if (l > p->len - (doff - p->doff))
						l = p->len - (doff - p->doff);
				}
			}
			/* b. the segment size */
			if (l > max_seg)
				l = max_seg;
			/* c. whole multiples of the length alignment */
			if ((l & mlen) != 0 && l > mlen)
				l &= ~mlen;
			/* d. the next segment starts aligned (when there is one) */
			if (pos + l < end) {
				uint64_t r = (a + l) & mint;
				if (r != 0 && r < l)
					l -= r;
			}
			/* e. a cursor cannot fix a misfit */
			if (cursor && (((a & (pos == 0 ? cmd->iomem__align_mask : mint)) != 0) || (l & mlen) != 0))
				return kIOReturnNotAligned;
			if (!iomem__dma_emit(fmt, fn, cmd, segs, i, a, l))
				return kIOReturnMessageTooLarge;
			run_pa += l;      /* also when a bounce page stood in for these bytes */
			run_len -= l;
			pos += l;
			i++;
		}
	}
	if (i == 0)
		return kIOReturnNotReady;                      /* the walk found no physical address */
	cmd->iomem__walk = w;
	cmd->iomem__pos = pos;
	cmd->iomem__run_pa = run_pa;
	cmd->iomem__run_len = run_len;
	*offsetP = pos;
	*numP = i;
	return kIOReturnSuccess;
}

/* IOMEM_DMA_SPECIALIZE (impl): 1 compiles the engine once per built-in
 * output format (no indirect call per segment: the hosted default); 0
 * compiles it once and calls the output function per segment (the
 * bare-metal default: about 13 KiB less .text on Cortex-M4 at -Os; the six
 * output functions are real functions, so the results are identical). */
#ifndef IOMEM_DMA_SPECIALIZE
#  if defined(IOMEM_BACKEND_BAREMETAL)
#    define IOMEM_DMA_SPECIALIZE 0
#  else
#    define IOMEM_DMA_SPECIALIZE 1
#  endif
#endif

#define IOMEM__DMA_GEN_INSTANCE(name, fmt)                                                        \
	IOMEM__PRIVATE IOReturn name(IODMACommand *cmd, IODMACommand_SegmentFunction fn,          \
	                             UInt64 *offsetP, void *segs, UInt32 *numP)                   \
	{                                                                                         \
		return iomem__dma_gen(cmd, fmt, fn, offsetP, segs, numP);                         \
	}
IOMEM__DMA_GEN_INSTANCE(iomem__dma_gen_user, IOMEM__DMA_FMT_USER)
#if IOMEM_DMA_SPECIALIZE
IOMEM__DMA_GEN_INSTANCE(iomem__dma_gen_host32, IOMEM__DMA_FMT_HOST32)
IOMEM__DMA_GEN_INSTANCE(iomem__dma_gen_big32, IOMEM__DMA_FMT_BIG32)
IOMEM__DMA_GEN_INSTANCE(iomem__dma_gen_little32, IOMEM__DMA_FMT_LITTLE32)
IOMEM__DMA_GEN_INSTANCE(iomem__dma_gen_host64, IOMEM__DMA_FMT_HOST64)
IOMEM__DMA_GEN_INSTANCE(iomem__dma_gen_big64, IOMEM__DMA_FMT_BIG64)
IOMEM__DMA_GEN_INSTANCE(iomem__dma_gen_little64, IOMEM__DMA_FMT_LITTLE64)
#else
#  define iomem__dma_gen_host32   iomem__dma_gen_user
#  define iomem__dma_gen_big32    iomem__dma_gen_user
#  define iomem__dma_gen_little32 iomem__dma_gen_user
#  define iomem__dma_gen_host64   iomem__dma_gen_user
#  define iomem__dma_gen_big64    iomem__dma_gen_user
#  define iomem__dma_gen_little64 iomem__dma_gen_user
#endif
#undef IOMEM__DMA_GEN_INSTANCE

/* The end-of-walk call, answered before the dispatch and the engine's
 * prologue (every loop ends with one). Same checks, same order. */
IOMEM_FORCEINLINE bool iomem__dma_at_end(const IODMACommand *cmd, const UInt64 *offset, const void *segments,
                                         const UInt32 *numSegments)
{
	return cmd != NULL && cmd->iomem__active != 0 && offset != NULL && segments != NULL &&
	       numSegments != NULL && *numSegments != 0 && *offset >= cmd->iomem__prep_len;
}

IOMEM_API IOReturn IODMACommand_genIOVMSegmentsWithFunction(IODMACommand *cmd,
        IODMACommand_SegmentFunction outSegFunc, UInt64 *offset, void *segments, UInt32 *numSegments)
{
	if (outSegFunc != NULL && iomem__dma_at_end(cmd, offset, segments, numSegments))
		return kIOReturnOverrun;
	/* one comparison chain per call picks the specialised engine */
	if (outSegFunc == IODMACommand_OutputHost64)
		return iomem__dma_gen_host64(cmd, outSegFunc, offset, segments, numSegments);
	if (outSegFunc == IODMACommand_OutputHost32)
		return iomem__dma_gen_host32(cmd, outSegFunc, offset, segments, numSegments);
	if (outSegFunc == IODMACommand_OutputBig64)
		return iomem__dma_gen_big64(cmd, outSegFunc, offset, segments, numSegments);
	if (outSegFunc == IODMACommand_OutputLittle64)
		return iomem__dma_gen_little64(cmd, outSegFunc, offset, segments, numSegments);
	if (outSegFunc == IODMACommand_OutputBig32)
		return iomem__dma_gen_big32(cmd, outSegFunc, offset, segments, numSegments);
	if (outSegFunc == IODMACommand_OutputLittle32)
		return iomem__dma_gen_little32(cmd, outSegFunc, offset, segments, numSegments);
	return iomem__dma_gen_user(cmd, outSegFunc, offset, segments, numSegments);
}

IOMEM_API IOReturn IODMACommand_genIOVMSegments(IODMACommand *cmd, UInt64 *offset, void *segments,
                                                UInt32 *numSegments)
{
	if (cmd == NULL)
		return kIOReturnBadArgument;
	if (cmd->iomem__out_fn != NULL && iomem__dma_at_end(cmd, offset, segments, numSegments))
		return kIOReturnOverrun;
	switch (cmd->iomem__fmt) {
	case IOMEM__DMA_FMT_HOST64:   return iomem__dma_gen_host64(cmd, cmd->iomem__out_fn, offset, segments, numSegments);
	case IOMEM__DMA_FMT_HOST32:   return iomem__dma_gen_host32(cmd, cmd->iomem__out_fn, offset, segments, numSegments);
	case IOMEM__DMA_FMT_BIG32:    return iomem__dma_gen_big32(cmd, cmd->iomem__out_fn, offset, segments, numSegments);
	case IOMEM__DMA_FMT_LITTLE32: return iomem__dma_gen_little32(cmd, cmd->iomem__out_fn, offset, segments, numSegments);
	case IOMEM__DMA_FMT_BIG64:    return iomem__dma_gen_big64(cmd, cmd->iomem__out_fn, offset, segments, numSegments);
	case IOMEM__DMA_FMT_LITTLE64: return iomem__dma_gen_little64(cmd, cmd->iomem__out_fn, offset, segments, numSegments);
	default:
		if (cmd->iomem__out_fn == NULL)
			return kIOReturnNotReady;
		return iomem__dma_gen_user(cmd, cmd->iomem__out_fn, offset, segments, numSegments);
	}
}

IOMEM_API IOReturn IODMACommand_gen32IOVMSegments(IODMACommand *cmd, UInt64 *offset,
                                                  IODMACommand_Segment32 *segments, UInt32 *numSegments)
{
	return IODMACommand_genIOVMSegments(cmd, offset, segments, numSegments);
}

IOMEM_API IOReturn IODMACommand_gen64IOVMSegments(IODMACommand *cmd, UInt64 *offset,
                                                  IODMACommand_Segment64 *segments, UInt32 *numSegments)
{
	return IODMACommand_genIOVMSegments(cmd, offset, segments, numSegments);
}

/* ---- DriverKit shapes (reference §6) -------------------------------------- */

IOMEM_API kern_return_t IODMACommand_Create(IOMapper *device, uint64_t options,
        const IODMACommandSpecification *specification, IODMACommand **command)
{
	IODMACommand_SegmentOptions o;
	IODMACommand *cmd;
	IOReturn r;
	if (command == NULL)
		return kIOReturnBadArgument;
	*command = NULL;
	if (specification == NULL || options != 0 || specification->options != 0 ||
	    specification->maxAddressBits > 0xFF)
		return kIOReturnBadArgument;
	cmd = iomem__dma_alloc(NULL);
	if (cmd == NULL)
		return kIOReturnNoMemory;
	iomem__dma_legacy_options(&o, (UInt8)specification->maxAddressBits, 0, 0, 1);
	r = iomem__dma_set_spec(cmd, IODMACommand_OutputHost64, &o, IODMACommand_kMapped, device);
	if (r != kIOReturnSuccess) {
		iomem__dma_free(cmd);
		return r;
	}
	*command = cmd;
	return kIOReturnSuccess;
}

IOMEM_API kern_return_t IODMACommand_PrepareForDMA(IODMACommand *cmd, uint64_t options,
        IOMemoryDescriptor *memory, uint64_t offset, uint64_t length, uint64_t *flags,
        uint32_t *segmentsCount, IOAddressSegment *segments)
{
	IODirection dir;
	IOReturn r;
	UInt64 off = 0;
	UInt32 n;
	if (cmd == NULL || memory == NULL || segmentsCount == NULL || segments == NULL ||
	    options != 0 || *segmentsCount == 0)
		return kIOReturnBadArgument;
	iomem__sleep_lock_lock(&cmd->iomem__dk_lock);
	if (cmd->iomem__md != NULL) {
		iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
		return kIOReturnBusy;
	}
	dir = IOMemoryDescriptor_getDirection(memory);
	r = IOMemoryDescriptor_prepare(memory, dir);
	if (r == kIOReturnSuccess) {
		r = IODMACommand_setMemoryDescriptor(cmd, memory, false);
		if (r == kIOReturnSuccess) {
			r = IODMACommand_prepare(cmd, offset, length, true, true);
			if (r == kIOReturnSuccess) {
				n = *segmentsCount < 32 ? *segmentsCount : 32;
				r = IODMACommand_genIOVMSegmentsWithFunction(cmd, IODMACommand_OutputHost64, &off,
				                                             segments, &n);
				if (r == kIOReturnSuccess) {
					cmd->iomem__dk_prepared = 1;
					*segmentsCount = n;
					if (flags != NULL) {
						*flags = 0;
						if ((dir & kIODirectionOut) || (dir & kIODirectionOutIn) == 0)
							*flags |= kIOMemoryDirectionOut;
						if ((dir & kIODirectionIn) || (dir & kIODirectionOutIn) == 0)
							*flags |= kIOMemoryDirectionIn;
					}
					iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
					return kIOReturnSuccess;
				}
				IODMACommand_complete(cmd, false, false);
			}
			IODMACommand_clearMemoryDescriptor(cmd, true);
		}
		IOMemoryDescriptor_complete(memory, dir);
	}
	iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
	return r;
}

IOMEM_API kern_return_t IODMACommand_CompleteDMA(IODMACommand *cmd, uint64_t options)
{
	IOMemoryDescriptor *md;
	bool owned;
	if (cmd == NULL || options != 0)
		return kIOReturnBadArgument;
	iomem__sleep_lock_lock(&cmd->iomem__dk_lock);
	md = cmd->iomem__md;
	if (md == NULL || cmd->iomem__active == 0) {
		iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
		return kIOReturnNotReady;
	}
	owned = cmd->iomem__dk_prepared != 0;
	cmd->iomem__dk_prepared = 0;
	IOMemoryDescriptor_retain(md);
	IODMACommand_clearMemoryDescriptor(cmd, true);
	if (owned)
		IOMemoryDescriptor_complete(md, IOMemoryDescriptor_getDirection(md));
	IOMemoryDescriptor_release(md);
	iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
	return kIOReturnSuccess;
}

IOMEM_API kern_return_t IODMACommand_GetPreparation(IODMACommand *cmd, uint64_t *offset, uint64_t *length,
        IOMemoryDescriptor **memory)
{
	if (cmd == NULL)
		return kIOReturnBadArgument;
	iomem__sleep_lock_lock(&cmd->iomem__dk_lock);
	if (cmd->iomem__active == 0) {
		iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
		return kIOReturnNotReady;
	}
	if (offset != NULL)
		*offset = cmd->iomem__prep_off;
	if (length != NULL)
		*length = cmd->iomem__prep_len;
	if (memory != NULL) {
		IOMemoryDescriptor_retain(cmd->iomem__md);
		*memory = cmd->iomem__md;
	}
	iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
	return kIOReturnSuccess;
}

IOMEM_API kern_return_t IODMACommand_PerformOperation(IODMACommand *cmd, uint64_t options,
        uint64_t dmaOffset, uint64_t length, uint64_t dataOffset, IOMemoryDescriptor *data)
{
	unsigned char tmp[256];
	uint64_t done = 0;
	IOReturn r = kIOReturnSuccess;
	if (cmd == NULL || (options != kIODMACommandPerformOperationOptionRead &&
	                    options != kIODMACommandPerformOperationOptionWrite &&
	                    options != kIODMACommandPerformOperationOptionZero))
		return kIOReturnBadArgument;
	if (data == NULL && options != kIODMACommandPerformOperationOptionZero)
		return kIOReturnBadArgument;
	iomem__sleep_lock_lock(&cmd->iomem__dk_lock);
	if (cmd->iomem__active == 0) {
		iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
		return kIOReturnNotReady;
	}
	if (length > cmd->iomem__prep_len ||
	    (data != NULL && options != kIODMACommandPerformOperationOptionZero &&
	     length > IOMemoryDescriptor_getLength(data))) {
		iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
		return kIOReturnBadArgument;
	}
	{
		/* a range that runs past either end: a short copy (Underrun) */
		uint64_t room = dmaOffset < cmd->iomem__prep_len ? cmd->iomem__prep_len - dmaOffset : 0;
		if (data != NULL && options != kIODMACommandPerformOperationOptionZero) {
			uint64_t dl = IOMemoryDescriptor_getLength(data);
			uint64_t droom = dataOffset < dl ? dl - dataOffset : 0;
			if (droom < room)
				room = droom;
		}
		if (room < length) {
			length = room;
			r = kIOReturnUnderrun;
		}
	}
	if (options == kIODMACommandPerformOperationOptionZero)
		iomem__memset(tmp, 0, sizeof tmp);
	while (done < length) {
		uint64_t chunk = length - done < sizeof tmp ? length - done : sizeof tmp, got;
		if (options == kIODMACommandPerformOperationOptionRead) {
			/* DMA memory -> data */
			got = IODMACommand_readBytes(cmd, dmaOffset + done, tmp, chunk);
			if (got == chunk)
				got = IOMemoryDescriptor_writeBytes(data, dataOffset + done, tmp, chunk);
		} else if (options == kIODMACommandPerformOperationOptionWrite) {
			/* data -> DMA memory */
			got = IOMemoryDescriptor_readBytes(data, dataOffset + done, tmp, chunk);
			if (got == chunk)
				got = IODMACommand_writeBytes(cmd, dmaOffset + done, tmp, chunk);
		} else {
			got = IODMACommand_writeBytes(cmd, dmaOffset + done, tmp, chunk);
		}
		if (got != chunk) {
			r = kIOReturnUnderrun;
			break;
		}
		done += chunk;
	}
	iomem__sleep_lock_unlock(&cmd->iomem__dk_lock);
	return r;     /* kIOReturnUnderrun also after a clamped (short) copy */
}

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

IOMEM_FORCEINLINE void iomem__cursor_put(const IOMemoryCursor *c, void *segments, UInt32 index,
                                         IOPhysicalAddress location, IOPhysicalLength length, int format)
{
	if (format == IOMEM__CURSOR_NATURAL) {
#if IOMEM__SEG_VECTOR_STORE
		/* host order: the very same store as the other two */
		iomem__st_seg64((IOPhysicalSegment *)segments + index, location, length, IOMEM__HOST_BIG);
#else
		IOPhysicalSegment *s = (IOPhysicalSegment *)segments + index;
		s->location = location;
		s->length = length;
#endif
	} else if (format == IOMEM__CURSOR_BIG || format == IOMEM__CURSOR_LITTLE) {
		iomem__st_seg64((unsigned char *)segments + (vm_size_t)index * sizeof(IOPhysicalSegment),
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

#if defined(IOMEM_BACKEND_LINUX)
#include <linux/wait.h>
#include <linux/sched.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#endif

/* >>impl-dmacontroller: the controller object and the registry ---------- */

struct IODMAController {
	const iomem_dma_controller_ops *ops;
	void                           *context;
	uint32_t                        refcount;
	UInt32                          phandle;
	bool                            registered;   /* under the registry lock */
	IODMAController                *next;         /* registry list */
	char                            name[IOMEM_DMA_CONTROLLER_NAME_SIZE];
};

/* The registry is IOKit's IORegistry for this one class: process-wide by
 * nature (a lookup by name from any driver), hence a global. */
static iomem__mutex iomem__dmac_registry_lock = IOMEM__MUTEX_INITIALIZER(iomem__dmac_registry_lock);
static IODMAController *iomem__dmac_registry;

/* Waiting for a registration (getController): registrations are counted
 * (iomem__dmac_registry_gen, under the registry lock); a waiter sleeps
 * until the count moves or its deadline passes, then looks again.
 * iomem__dmac_wait(gen, deadline) is called with the lock held and returns
 * with it held; false once the deadline (iomem__dmac_now clock,
 * IOMEM__DMAC_FOREVER: none) has passed. */
static uint64_t iomem__dmac_registry_gen;
#define IOMEM__DMAC_FOREVER (~(uint64_t)0)   /* UINT64_MAX: the kernel has no <stdint.h> one */
#if defined(IOMEM_BACKEND_POSIX)
#  include <time.h>
static pthread_cond_t iomem__dmac_registry_cv = PTHREAD_COND_INITIALIZER;
/* The condition variable's clock (CLOCK_REALTIME, its default); a strict
 * ISO C build hides clock_gettime: whole seconds of time() there. */
IOMEM__PRIVATE uint64_t iomem__dmac_now(void)
{
#  if defined(CLOCK_REALTIME)
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#  else
	return (uint64_t)time(NULL) * 1000000000u;
#  endif
}
IOMEM__PRIVATE bool iomem__dmac_wait(uint64_t gen, uint64_t deadline)
{
	while (iomem__dmac_registry_gen == gen) {
		if (deadline == IOMEM__DMAC_FOREVER) {
			pthread_cond_wait(&iomem__dmac_registry_cv, &iomem__dmac_registry_lock);
		} else {
			struct timespec ts;
			if (iomem__dmac_now() >= deadline)
				return false;
			ts.tv_sec = (time_t)(deadline / 1000000000u);
			ts.tv_nsec = (long)(deadline % 1000000000u);
			pthread_cond_timedwait(&iomem__dmac_registry_cv, &iomem__dmac_registry_lock, &ts);
		}
	}
	return true;
}
IOMEM__PRIVATE void iomem__dmac_wake_locked(void)
{
	iomem__dmac_registry_gen++;
	pthread_cond_broadcast(&iomem__dmac_registry_cv);
}
#elif defined(IOMEM_BACKEND_LINUX)
static DECLARE_WAIT_QUEUE_HEAD(iomem__dmac_registry_wq);
/* jiffies, not ktime_get: the wait must link in a module of any licence
 * (ktime_get and nsecs_to_jiffies are GPL-only exports); a tick is plenty
 * for a timeout of about a second. */
IOMEM__PRIVATE uint64_t iomem__dmac_now(void)
{
	return jiffies64_to_nsecs(get_jiffies_64());
}
/* the registry lock is a spinlock: sleep on the wait queue without it */
IOMEM__PRIVATE bool iomem__dmac_wait(uint64_t gen, uint64_t deadline)
{
	while (READ_ONCE(iomem__dmac_registry_gen) == gen) {
		uint64_t now = iomem__dmac_now();
		if (deadline != IOMEM__DMAC_FOREVER && now >= deadline)
			return false;
		iomem__mutex_unlock(&iomem__dmac_registry_lock);
		if (deadline == IOMEM__DMAC_FOREVER)
			wait_event(iomem__dmac_registry_wq, READ_ONCE(iomem__dmac_registry_gen) != gen);
		else
			wait_event_timeout(iomem__dmac_registry_wq, READ_ONCE(iomem__dmac_registry_gen) != gen,
			                   usecs_to_jiffies((unsigned int)min_t(uint64_t,
			                                    div_u64(deadline - now, 1000), UINT_MAX / 2)) + 1);
		iomem__mutex_lock(&iomem__dmac_registry_lock);
	}
	return true;
}
IOMEM__PRIVATE void iomem__dmac_wake_locked(void)
{
	WRITE_ONCE(iomem__dmac_registry_gen, iomem__dmac_registry_gen + 1);
	wake_up_all(&iomem__dmac_registry_wq);
}
#else /* bare metal: one thread, nobody to register it while we wait */
IOMEM__PRIVATE uint64_t iomem__dmac_now(void)
{
	return 0;
}
IOMEM__PRIVATE bool iomem__dmac_wait(uint64_t gen, uint64_t deadline)
{
	(void)gen;
	(void)deadline;
	return false;
}
IOMEM__PRIVATE void iomem__dmac_wake_locked(void)
{
	iomem__dmac_registry_gen++;
}
#endif

IOMEM_API char *IODMAController_createControllerName(UInt32 phandle, char *name)
{
	static const char prefix[] = "IODMAController";
	static const char hex[] = "0123456789ABCDEF";
	unsigned i;
	if (name == NULL)
		return NULL;
	for (i = 0; i < sizeof prefix - 1; i++)
		name[i] = prefix[i];
	for (i = 0; i < 8; i++)
		name[sizeof prefix - 1 + i] = hex[(phandle >> (28 - 4 * i)) & 0xF];
	name[sizeof prefix - 1 + 8] = '\0';
	return name;
}

IOMEM_API IODMAController *iomem_dma_controller_withOps(const iomem_dma_controller_ops *ops, void *context,
                                                        const iomem_dma_provider *provider)
{
	IODMAController *c;
	if (ops == NULL || ops->initDMAChannel == NULL || ops->startDMACommand == NULL ||
	    ops->stopDMACommand == NULL || ops->queryDMACommand == NULL)
		return NULL;
	c = (IODMAController *)iomem__alloc_internal(sizeof *c, "IODMAController");
	if (c == NULL)
		return NULL;
	c->ops = ops;
	c->context = context;
	c->refcount = 1;
	c->phandle = provider ? provider->phandle : 0;
	c->registered = false;
	c->next = NULL;
	IODMAController_createControllerName(c->phandle, c->name);
	return c;
}

IOMEM_API void IODMAController_retain(IODMAController *controller)
{
	if (controller != NULL)
		iomem__ref_retain(&controller->refcount);
}

IOMEM_API void IODMAController_release(IODMAController *controller)
{
	if (controller == NULL || iomem__ref_release(&controller->refcount) != 0)
		return;
	if (controller->ops->free != NULL)
		controller->ops->free(controller);
	iomem__free_internal(controller, sizeof *controller, "IODMAController");
}

IOMEM_API void *iomem_dma_controller_getContext(IODMAController *controller)
{
	return controller ? controller->context : NULL;
}

IOMEM_API const char *iomem_dma_controller_getName(const IODMAController *controller)
{
	return controller ? controller->name : "";
}

IOMEM__PRIVATE bool iomem__dmac_name_eq(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

IOMEM_API IOReturn IODMAController_registerDMAController(IODMAController *controller, IOOptionBits options)
{
	IODMAController *c;
	(void)options;
	if (controller == NULL)
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__dmac_registry_lock);
	for (c = iomem__dmac_registry; c != NULL; c = c->next) {
		if (c == controller || iomem__dmac_name_eq(c->name, controller->name)) {
			iomem__mutex_unlock(&iomem__dmac_registry_lock);
			return kIOReturnExclusiveAccess;
		}
	}
	IODMAController_retain(controller);
	controller->registered = true;
	controller->next = iomem__dmac_registry;
	iomem__dmac_registry = controller;
	iomem__dmac_wake_locked();            /* getController may be waiting for it */
	iomem__mutex_unlock(&iomem__dmac_registry_lock);
	return kIOReturnSuccess;
}

IOMEM_API IOReturn iomem_dma_controller_register(IODMAController *controller)
{
	return IODMAController_registerDMAController(controller, 0);
}

IOMEM_API IOReturn iomem_dma_controller_unregister(IODMAController *controller)
{
	IODMAController **pp;
	if (controller == NULL)
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__dmac_registry_lock);
	for (pp = &iomem__dmac_registry; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == controller) {
			*pp = controller->next;
			controller->next = NULL;
			controller->registered = false;
			iomem__mutex_unlock(&iomem__dmac_registry_lock);
			IODMAController_release(controller);
			return kIOReturnSuccess;
		}
	}
	iomem__mutex_unlock(&iomem__dmac_registry_lock);
	return kIOReturnNotFound;
}

IOMEM_API IOReturn iomem_dma_controller_wait(const iomem_dma_provider *provider, UInt32 dmaIndex,
                                             uint64_t timeout, IODMAController **controller)
{
	char name[IOMEM_DMA_CONTROLLER_NAME_SIZE];
	IODMAController *c;
	UInt32 phandle;
	uint64_t deadline = IOMEM__DMAC_FOREVER;
	if (controller == NULL)
		return kIOReturnBadArgument;
	*controller = NULL;
	if (provider == NULL || provider->dmaParent == NULL || provider->dmaParentCount == 0)
		return kIOReturnBadArgument;
	if (provider->dmaParentCount == 1) {
		phandle = provider->dmaParent[0];
	} else {
		if (dmaIndex >= provider->dmaParentCount) {
#if IOMEM__DEBUG
			iomem__report("IODMAController_getController: dmaIndex %u out of range (dma-parent has %u entries)",
			              (unsigned long long)dmaIndex, (unsigned long long)provider->dmaParentCount);
#endif
			return kIOReturnBadArgument;
		}
		phandle = provider->dmaParent[dmaIndex];
	}
	IODMAController_createControllerName(phandle, name);
	if (timeout != IOMEM__DMAC_FOREVER && timeout != 0) {
		uint64_t now = iomem__dmac_now();
		deadline = timeout > IOMEM__DMAC_FOREVER - 1 - now ? IOMEM__DMAC_FOREVER - 1 : now + timeout;
	}
	iomem__mutex_lock(&iomem__dmac_registry_lock);
	for (;;) {
		uint64_t gen = iomem__dmac_registry_gen;
		for (c = iomem__dmac_registry; c != NULL; c = c->next)
			if (iomem__dmac_name_eq(c->name, name))
				break;
		if (c != NULL || timeout == 0 || !iomem__dmac_wait(gen, deadline))
			break;
	}
	IODMAController_retain(c);
	iomem__mutex_unlock(&iomem__dmac_registry_lock);
	*controller = c;
	return c != NULL ? kIOReturnSuccess : kIOReturnTimeout;
}

IOMEM_API IODMAController *IODMAController_getController(const iomem_dma_provider *provider, UInt32 dmaIndex)
{
	IODMAController *c = NULL;
	(void)iomem_dma_controller_wait(provider, dmaIndex, IOMEM_DMA_CONTROLLER_WAIT_NS, &c);
	return c;
}

IOMEM_API void IODMAController_completeDMACommand(IODMAController *controller, IODMAEventSource *dmaES,
                                                  IODMACommand *dmaCommand)
{
	(void)controller;
	IODMAEventSource_completeDMACommand(dmaES, dmaCommand);
}

IOMEM_API void IODMAController_notifyDMACommand(IODMAController *controller, IODMAEventSource *dmaES,
                                                IODMACommand *dmaCommand, IOReturn status,
                                                IOByteCount actualByteCount, AbsoluteTime timeStamp)
{
	(void)controller;
	IODMAEventSource_notifyDMACommand(dmaES, dmaCommand, status, actualByteCount, timeStamp);
}

/* >>impl-dmaevent: the event source --------------------------------------- */

/* The synchronous start's wait (IOKit's sleepGate/wakeupGate on the busy
 * flag): wait until 'pending' is cleared by the completing thread. */
#if defined(IOMEM_BACKEND_POSIX)
typedef struct iomem__dma_waiter {
	pthread_mutex_t m;
	pthread_cond_t  c;
	bool            pending;
} iomem__dma_waiter;
IOMEM__PRIVATE bool iomem__dma_waiter_init(iomem__dma_waiter *w)
{
	w->pending = false;
	if (pthread_mutex_init(&w->m, NULL) != 0)
		return false;
	if (pthread_cond_init(&w->c, NULL) != 0) {
		pthread_mutex_destroy(&w->m);
		return false;
	}
	return true;
}
IOMEM__PRIVATE void iomem__dma_waiter_destroy(iomem__dma_waiter *w)
{
	pthread_cond_destroy(&w->c);
	pthread_mutex_destroy(&w->m);
}
IOMEM__PRIVATE void iomem__dma_waiter_arm(iomem__dma_waiter *w)
{
	pthread_mutex_lock(&w->m);
	w->pending = true;
	pthread_mutex_unlock(&w->m);
}
IOMEM__PRIVATE void iomem__dma_waiter_wait(iomem__dma_waiter *w)
{
	pthread_mutex_lock(&w->m);
	while (w->pending)
		pthread_cond_wait(&w->c, &w->m);
	pthread_mutex_unlock(&w->m);
}
IOMEM__PRIVATE void iomem__dma_waiter_wake(iomem__dma_waiter *w)
{
	pthread_mutex_lock(&w->m);
	w->pending = false;
	pthread_cond_broadcast(&w->c);
	pthread_mutex_unlock(&w->m);
}
#elif defined(IOMEM_BACKEND_LINUX)
typedef struct iomem__dma_waiter {
	wait_queue_head_t wq;
	int               pending;
} iomem__dma_waiter;
IOMEM__PRIVATE bool iomem__dma_waiter_init(iomem__dma_waiter *w)
{
	init_waitqueue_head(&w->wq);
	w->pending = 0;
	return true;
}
IOMEM__PRIVATE void iomem__dma_waiter_destroy(iomem__dma_waiter *w) { (void)w; }
IOMEM__PRIVATE void iomem__dma_waiter_arm(iomem__dma_waiter *w)     { WRITE_ONCE(w->pending, 1); smp_mb(); }
IOMEM__PRIVATE void iomem__dma_waiter_wait(iomem__dma_waiter *w)
{
	wait_event(w->wq, smp_load_acquire(&w->pending) == 0);
}
IOMEM__PRIVATE void iomem__dma_waiter_wake(iomem__dma_waiter *w)
{
	smp_store_release(&w->pending, 0);
	wake_up_all(&w->wq);
}
#else /* bare metal: completion comes from an interrupt handler */
typedef struct iomem__dma_waiter { volatile uint32_t pending; } iomem__dma_waiter;
IOMEM__PRIVATE bool iomem__dma_waiter_init(iomem__dma_waiter *w)    { w->pending = 0; return true; }
IOMEM__PRIVATE void iomem__dma_waiter_destroy(iomem__dma_waiter *w) { (void)w; }
IOMEM__PRIVATE void iomem__dma_waiter_arm(iomem__dma_waiter *w)     { w->pending = 1; }
IOMEM__PRIVATE void iomem__dma_waiter_wait(iomem__dma_waiter *w)
{
	while (w->pending != 0)
		;
}
IOMEM__PRIVATE void iomem__dma_waiter_wake(iomem__dma_waiter *w)    { w->pending = 0; }
#endif

/* One started command: where notify's values wait for the completion
 * (IOKit keeps them in the command's reserved fields and links the
 * command itself into the completed queue; iomem's IODMACommand is not
 * ours to extend, so a small record per start does both). */
typedef struct iomem__dma_rec {
	struct iomem__dma_rec *next;
	IODMACommand          *cmd;
	IOReturn               status;
	IOByteCount            count;
	AbsoluteTime           ts;
	bool                   sync;
} iomem__dma_rec;

#define IOMEM__DMA_REC_CACHE 8u   /* records kept for reuse: no allocation per start */

struct IODMAEventSource {
	uint32_t                  refcount;
	void                     *owner;
	const iomem_dma_provider *provider;
	IODMAController          *controller;   /* +1 */
	UInt32                    dmaIndex;     /* 0xFFFFFFFF: no channel */
	IODMAEventSource_Action   completion, notification;
	void                    (*signal)(IODMAEventSource *, void *);
	void                     *signal_ctx;
	iomem__mutex              lock;         /* everything below */
	iomem__dma_rec           *inflight, *inflight_tail;   /* started, FIFO */
	iomem__dma_rec           *done, *done_tail;           /* completed, undelivered */
	iomem__dma_rec           *spare;
	uint32_t                  nspare;
	bool                      sync_busy;
	iomem__dma_waiter         waiter;
};

IOMEM_API IODMAEventSource *IODMAEventSource_dmaEventSource(void *owner, const iomem_dma_provider *provider,
        IODMAEventSource_Action completion, IODMAEventSource_Action notification, UInt32 dmaIndex)
{
	IODMAEventSource *es;
	IODMAController *c;
	if (provider == NULL)
		return NULL;
	c = IODMAController_getController(provider, dmaIndex);
	if (c == NULL)
		return NULL;
	es = (IODMAEventSource *)iomem__alloc_internal(sizeof *es, "IODMAEventSource");
	if (es == NULL) {
		IODMAController_release(c);
		return NULL;
	}
	es->refcount = 1;
	es->owner = owner;
	es->provider = provider;
	es->controller = c;
	es->dmaIndex = 0xFFFFFFFFu;
	es->completion = completion;
	es->notification = notification;
	if (!iomem__mutex_init(&es->lock))
		goto fail;
	if (!iomem__dma_waiter_init(&es->waiter)) {
		iomem__mutex_destroy(&es->lock);
		goto fail;
	}
	if (c->ops->initDMAChannel(c, provider, es, &es->dmaIndex, dmaIndex) != kIOReturnSuccess) {
		iomem__dma_waiter_destroy(&es->waiter);
		iomem__mutex_destroy(&es->lock);
		goto fail;
	}
	return es;
fail:
	IODMAController_release(c);
	iomem__free_internal(es, sizeof *es, "IODMAEventSource");
	return NULL;
}

IOMEM_API void IODMAEventSource_retain(IODMAEventSource *dmaES)
{
	if (dmaES != NULL)
		iomem__ref_retain(&dmaES->refcount);
}

IOMEM_API void IODMAEventSource_release(IODMAEventSource *dmaES)
{
	iomem__dma_rec *r;
	if (dmaES == NULL || iomem__ref_release(&dmaES->refcount) != 0)
		return;
	/* Nothing is in flight or queued: each of those holds a reference. */
	if (dmaES->dmaIndex != 0xFFFFFFFFu && dmaES->controller->ops->freeDMAChannel != NULL)
		dmaES->controller->ops->freeDMAChannel(dmaES->controller, dmaES->dmaIndex, dmaES);
	IODMAController_release(dmaES->controller);
	while ((r = dmaES->spare) != NULL) {
		dmaES->spare = r->next;
		iomem__free_internal(r, sizeof *r, "IODMAEventSource record");
	}
	iomem__dma_waiter_destroy(&dmaES->waiter);
	iomem__mutex_destroy(&dmaES->lock);
	iomem__free_internal(dmaES, sizeof *dmaES, "IODMAEventSource");
}

/* Every start on @es is synchronous (no completion action): for a
 * controller of this file that may run such a start on the caller. */
IOMEM__PRIVATE bool iomem__dmaes_is_sync(const IODMAEventSource *es)
{
	return es->completion == NULL;
}

IOMEM__PRIVATE bool iomem__dmaes_ok(const IODMAEventSource *es)
{
	return es != NULL && es->controller != NULL && es->dmaIndex != 0xFFFFFFFFu;
}

/* A record from the spare list (under the lock) or a new one. */
IOMEM__PRIVATE iomem__dma_rec *iomem__dmaes_rec_get(IODMAEventSource *es)
{
	iomem__dma_rec *r;
	iomem__mutex_lock(&es->lock);
	r = es->spare;
	if (r != NULL) {
		es->spare = r->next;
		es->nspare--;
	}
	iomem__mutex_unlock(&es->lock);
	if (r == NULL)
		r = (iomem__dma_rec *)iomem__alloc_internal(sizeof *r, "IODMAEventSource record");
	return r;
}

/* Called with the lock held. */
IOMEM__PRIVATE void iomem__dmaes_rec_put_locked(IODMAEventSource *es, iomem__dma_rec *r, iomem__dma_rec **to_free)
{
	if (es->nspare < IOMEM__DMA_REC_CACHE) {
		r->next = es->spare;
		es->spare = r;
		es->nspare++;
	} else {
		r->next = *to_free;
		*to_free = r;
	}
}

IOMEM__PRIVATE void iomem__dmaes_free_recs(iomem__dma_rec *r)
{
	while (r != NULL) {
		iomem__dma_rec *n = r->next;
		iomem__free_internal(r, sizeof *r, "IODMAEventSource record");
		r = n;
	}
}

/* Unlink the first in-flight record of @cmd (lock held); NULL if none. */
IOMEM__PRIVATE iomem__dma_rec *iomem__dmaes_take_inflight_locked(IODMAEventSource *es, IODMACommand *cmd)
{
	iomem__dma_rec **pp, *prev = NULL;
	for (pp = &es->inflight; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		iomem__dma_rec *r = *pp;
		if (r->cmd == cmd) {
			*pp = r->next;
			if (es->inflight_tail == r)
				es->inflight_tail = prev;
			r->next = NULL;
			return r;
		}
	}
	return NULL;
}

IOMEM_API IOReturn IODMAEventSource_startDMACommand(IODMAEventSource *dmaES, IODMACommand *dmaCommand,
        IODirection direction, IOByteCount byteCount, IOByteCount byteOffset)
{
	iomem__dma_rec *r, *to_free = NULL;
	IOReturn ret;
	bool sync;
	if (!iomem__dmaes_ok(dmaES))
		return kIOReturnError;
	sync = dmaES->completion == NULL;
	r = iomem__dmaes_rec_get(dmaES);
	if (r == NULL)
		return kIOReturnNoMemory;
	r->cmd = dmaCommand;
	r->status = kIOReturnSuccess;
	r->count = 0;
	r->ts = 0;
	r->sync = sync;
	r->next = NULL;
	IODMAEventSource_retain(dmaES);           /* until the completion is delivered */
	iomem__mutex_lock(&dmaES->lock);
	if (dmaES->sync_busy) {
		iomem__dmaes_rec_put_locked(dmaES, r, &to_free);
		iomem__mutex_unlock(&dmaES->lock);
		iomem__dmaes_free_recs(to_free);
		IODMAEventSource_release(dmaES);
		return kIOReturnBusy;
	}
	if (sync) {
		dmaES->sync_busy = true;
		iomem__dma_waiter_arm(&dmaES->waiter);
	}
	/* in flight before the controller sees it: it may complete at once */
	if (dmaES->inflight_tail != NULL)
		dmaES->inflight_tail->next = r;
	else
		dmaES->inflight = r;
	dmaES->inflight_tail = r;
	iomem__mutex_unlock(&dmaES->lock);

	ret = dmaES->controller->ops->startDMACommand(dmaES->controller, dmaES->dmaIndex, dmaCommand,
	                                              direction, byteCount, byteOffset);
	if (ret != kIOReturnSuccess) {
		iomem__dma_rec *mine;
		iomem__mutex_lock(&dmaES->lock);
		/* a controller must not complete a start it refused; if it did,
		 * the record is gone and the completion was already counted */
		mine = iomem__dmaes_take_inflight_locked(dmaES, dmaCommand);
		if (sync)
			dmaES->sync_busy = false;
		if (mine != NULL)
			iomem__dmaes_rec_put_locked(dmaES, mine, &to_free);
		iomem__mutex_unlock(&dmaES->lock);
		iomem__dmaes_free_recs(to_free);
		if (sync)
			iomem__dma_waiter_wake(&dmaES->waiter);
		if (mine != NULL)
			IODMAEventSource_release(dmaES);
		return ret;
	}
	if (sync)
		iomem__dma_waiter_wait(&dmaES->waiter);
	return kIOReturnSuccess;
}

IOMEM_API void IODMAEventSource_notifyDMACommand(IODMAEventSource *dmaES, IODMACommand *dmaCommand,
        IOReturn status, IOByteCount actualByteCount, AbsoluteTime timeStamp)
{
	iomem__dma_rec *r;
	if (dmaES == NULL)
		return;
	iomem__mutex_lock(&dmaES->lock);
	for (r = dmaES->inflight; r != NULL; r = r->next) {
		if (r->cmd == dmaCommand) {
			r->status = status;
			r->count = actualByteCount;
			r->ts = timeStamp;
			break;
		}
	}
	iomem__mutex_unlock(&dmaES->lock);
	if (dmaES->notification != NULL)
		dmaES->notification(dmaES->owner, dmaES, dmaCommand, status, actualByteCount, timeStamp);
}

IOMEM_API void IODMAEventSource_completeDMACommand(IODMAEventSource *dmaES, IODMACommand *dmaCommand)
{
	iomem__dma_rec *r, *to_free = NULL;
	void (*signal)(IODMAEventSource *, void *);
	void *signal_ctx;
	if (dmaES == NULL)
		return;
	iomem__mutex_lock(&dmaES->lock);
	r = iomem__dmaes_take_inflight_locked(dmaES, dmaCommand);
	if (r == NULL) {
		iomem__mutex_unlock(&dmaES->lock);
#if IOMEM__DEBUG
		iomem__report("IODMAEventSource_completeDMACommand: command %p is not in flight on event source %p",
		              (void *)dmaCommand, (void *)dmaES);
#endif
		return;
	}
	if (r->sync) {
		dmaES->sync_busy = false;
		iomem__dmaes_rec_put_locked(dmaES, r, &to_free);
		iomem__mutex_unlock(&dmaES->lock);
		iomem__dmaes_free_recs(to_free);
		iomem__dma_waiter_wake(&dmaES->waiter);
		IODMAEventSource_release(dmaES);        /* the start's reference */
		return;
	}
	if (dmaES->done_tail != NULL)
		dmaES->done_tail->next = r;
	else
		dmaES->done = r;
	dmaES->done_tail = r;
	signal = dmaES->signal;
	signal_ctx = dmaES->signal_ctx;
	/* a concurrent drainer may deliver it (and drop the start's reference)
	 * before the signal below: hold one of our own */
	IODMAEventSource_retain(dmaES);
	iomem__mutex_unlock(&dmaES->lock);
	if (signal != NULL)
		signal(dmaES, signal_ctx);
	else if (dmaES->controller->ops->signalWorkAvailable != NULL)
		dmaES->controller->ops->signalWorkAvailable(dmaES->controller, dmaES);
	IODMAEventSource_release(dmaES);
}

IOMEM_API UInt32 iomem_dma_event_source_run(IODMAEventSource *dmaES)
{
	UInt32 n = 0;
	if (dmaES == NULL)
		return 0;
	IODMAEventSource_retain(dmaES);     /* an action may drop the owner's */
	for (;;) {
		iomem__dma_rec *r, *to_free = NULL;
		IODMACommand *cmd;
		IOReturn status;
		IOByteCount count;
		AbsoluteTime ts;
		iomem__mutex_lock(&dmaES->lock);
		r = dmaES->done;
		if (r != NULL) {
			dmaES->done = r->next;
			if (dmaES->done == NULL)
				dmaES->done_tail = NULL;
			cmd = r->cmd;
			status = r->status;
			count = r->count;
			ts = r->ts;
			iomem__dmaes_rec_put_locked(dmaES, r, &to_free);
		}
		iomem__mutex_unlock(&dmaES->lock);
		if (r == NULL)
			break;
		iomem__dmaes_free_recs(to_free);
		dmaES->completion(dmaES->owner, dmaES, cmd, status, count, ts);
		n++;
		IODMAEventSource_release(dmaES);    /* the start's reference */
	}
	IODMAEventSource_release(dmaES);
	return n;
}

IOMEM_API IOReturn iomem_dma_event_source_setWorkSignal(IODMAEventSource *dmaES,
        void (*signal)(IODMAEventSource *dmaES, void *context), void *context)
{
	if (dmaES == NULL)
		return kIOReturnBadArgument;
	iomem__mutex_lock(&dmaES->lock);
	dmaES->signal = signal;
	dmaES->signal_ctx = context;
	iomem__mutex_unlock(&dmaES->lock);
	return kIOReturnSuccess;
}

IOMEM_API UInt32 iomem_dma_event_source_getDMAIndex(const IODMAEventSource *dmaES)
{
	return dmaES ? dmaES->dmaIndex : 0xFFFFFFFFu;
}

IOMEM_API IODMAController *iomem_dma_event_source_getController(const IODMAEventSource *dmaES)
{
	return dmaES ? dmaES->controller : NULL;
}

IOMEM_API void *iomem_dma_event_source_getOwner(const IODMAEventSource *dmaES)
{
	return dmaES ? dmaES->owner : NULL;
}

IOMEM_API IOReturn IODMAEventSource_stopDMACommand(IODMAEventSource *dmaES, bool flush, uint64_t timeout)
{
	if (!iomem__dmaes_ok(dmaES))
		return kIOReturnError;
	return dmaES->controller->ops->stopDMACommand(dmaES->controller, dmaES->dmaIndex, flush, timeout);
}

IOMEM_API IOReturn IODMAEventSource_queryDMACommand(IODMAEventSource *dmaES, IODMACommand **dmaCommand,
        IOByteCount *transferCount, bool waitForIdle)
{
	if (!iomem__dmaes_ok(dmaES))
		return kIOReturnError;
	return dmaES->controller->ops->queryDMACommand(dmaES->controller, dmaES->dmaIndex, dmaCommand,
	                                               transferCount, waitForIdle);
}

IOMEM_API IOByteCount IODMAEventSource_getFIFODepth(IODMAEventSource *dmaES, IODirection direction)
{
	if (!iomem__dmaes_ok(dmaES) || dmaES->controller->ops->getFIFODepth == NULL)
		return 0;
	return dmaES->controller->ops->getFIFODepth(dmaES->controller, dmaES->dmaIndex, direction);
}

IOMEM_API IOReturn IODMAEventSource_setFIFODepth(IODMAEventSource *dmaES, IOByteCount depth)
{
	if (!iomem__dmaes_ok(dmaES))
		return kIOReturnError;
	if (dmaES->controller->ops->setFIFODepth == NULL)
		return kIOReturnUnsupported;
	return dmaES->controller->ops->setFIFODepth(dmaES->controller, dmaES->dmaIndex, depth);
}

IOMEM_API IOByteCount IODMAEventSource_validFIFODepth(IODMAEventSource *dmaES, IOByteCount depth,
                                                      IODirection direction)
{
	if (!iomem__dmaes_ok(dmaES))
		return (IOByteCount)kIOReturnError;   /* IOKit's quirk: an IOReturn as a count */
	if (dmaES->controller->ops->validFIFODepth == NULL)
		return 0;
	return dmaES->controller->ops->validFIFODepth(dmaES->controller, dmaES->dmaIndex, depth, direction);
}

IOMEM_API IOReturn IODMAEventSource_setFrameSize(IODMAEventSource *dmaES, UInt8 byteCount)
{
	if (!iomem__dmaes_ok(dmaES))
		return kIOReturnError;
	if (dmaES->controller->ops->setFrameSize == NULL)
		return kIOReturnUnsupported;
	return dmaES->controller->ops->setFrameSize(dmaES->controller, dmaES->dmaIndex, byteCount);
}

IOMEM_API IOReturn IODMAEventSource_setDMAConfig(IODMAEventSource *dmaES, UInt32 dmaIndex)
{
	if (!iomem__dmaes_ok(dmaES))
		return kIOReturnError;
	if (dmaES->controller->ops->setDMAConfig == NULL)
		return kIOReturnUnsupported;
	return dmaES->controller->ops->setDMAConfig(dmaES->controller, dmaES->dmaIndex, dmaES->provider, dmaIndex);
}

IOMEM_API bool IODMAEventSource_validDMAConfig(IODMAEventSource *dmaES, UInt32 dmaIndex)
{
	if (!iomem__dmaes_ok(dmaES) || dmaES->controller->ops->validDMAConfig == NULL)
		return false;
	return dmaES->controller->ops->validDMAConfig(dmaES->controller, dmaES->dmaIndex, dmaES->provider, dmaIndex);
}

IOMEM_API UInt64 iomem_dma_event_source_getFrameCount(IODMAEventSource *dmaES)
{
	if (!iomem__dmaes_ok(dmaES) || dmaES->controller->ops->getFrameCount == NULL)
		return 0;
	return dmaES->controller->ops->getFrameCount(dmaES->controller, dmaES->dmaIndex);
}

/* >>impl-posixdma: the POSIX software DMA engine ------------------------- */
#if defined(IOMEM_BACKEND_POSIX)

#include <time.h>
#include <errno.h>

/* RUNNING: the worker moves the bytes; INLINE: the thread of a synchronous
 * start does (see iomem__pdma_start) - both are "running" to every call. */
enum { IOMEM__PDMA_IDLE = 0, IOMEM__PDMA_RUNNING = 1, IOMEM__PDMA_INLINE = 2 };
#define IOMEM__PDMA_BATCH 16u          /* segments generated per call */
#define IOMEM__PDMA_SLICE (256u << 10) /* bytes of one channel before the next */
#define IOMEM__PDMA_TLB   512u         /* translation-cache entries per channel */

/* A channel's cache of frame -> host page translations: the machine's
 * reverse map costs a lock and a hash probe per page, as much as a quarter
 * of copying the page. Direct-mapped on the frame number like a hardware
 * TLB (the pages of one buffer, however scattered, rarely collide); an
 * entry is valid for the generation of the machine it was read in
 * (iomem__posix_phys_generation): any unwire anywhere retires every entry,
 * without a flush. Used only by the thread running the channel's transfer
 * (the engine lock hands the channel over). It caches only frames of
 * prepared commands, which stay wired while their transfer runs. */
typedef struct iomem__pdma_tlb {
	uint64_t       frame[IOMEM__PDMA_TLB];   /* 0: empty (frame 0 is never wired) */
	uint64_t       gen[IOMEM__PDMA_TLB];
	unsigned char *host[IOMEM__PDMA_TLB];
} iomem__pdma_tlb;

typedef struct iomem__pdma_chan {
	IODMAEventSource *es;          /* bound (+0; freeDMAChannel clears) */
	IODMAEventSource *run_es;      /* +1: completions to deliver */
	UInt32            req;
	unsigned char    *devbuf;
	IOByteCount       devlen;
	IODMACommand     *peer;
	IOByteCount       fifo;
	UInt8             frame;
	int               state;
	bool              stop;        /* read by the worker at segment boundaries */
	/* the transfer (written at start, read by the worker) */
	IODMACommand     *cmd;         /* running, or the last one */
	IODirection       dir;
	UInt64            pos, end;    /* command offsets (relative to the prepared one) */
	UInt64            ppos;        /* peer offset of the next peer segment */
	IODMACommand_Segment64 pseg;   /* the peer segment in use (rest of it) */
	IOByteCount       done;        /* published progress (atomic) */
	uint64_t          seq;         /* transfers started */
	iomem__pdma_tlb  *tlb;         /* from the first binding to the engine's end */
} iomem__pdma_chan;

typedef struct iomem__pdma {
	IODMAController  *ctrl;
	pthread_mutex_t   m;
	pthread_cond_t    work;        /* worker: a channel to run, or shutdown */
	pthread_cond_t    idle;        /* a channel went idle */
	pthread_cond_t    cbwork;      /* callback thread: an event source to run */
	pthread_cond_t    delay;       /* segmentDelayNs: never signalled but at shutdown */
	uint64_t          delay_ns;
	pthread_t         worker, cb;
	bool              shutdown;
	int               self_free;   /* 0, or 1/2: that thread frees the engine at exit */
	UInt32            nch, rr, nrunning, ncb;
	iomem__pdma_chan *ch;
} iomem__pdma;

/* Timestamps and stop deadlines: CLOCK_MONOTONIC in ns. A strict ISO C
 * build (-std=c99, no POSIX feature macro) hides clock_gettime: there the
 * clock is time() (the condition variable's default realtime clock) in
 * whole seconds. */
#if defined(CLOCK_MONOTONIC)
#  define IOMEM__PDMA_MONOTONIC 1
#else
#  define IOMEM__PDMA_MONOTONIC 0
#endif

IOMEM__PRIVATE AbsoluteTime iomem__pdma_now(void)
{
#if IOMEM__PDMA_MONOTONIC
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (AbsoluteTime)ts.tv_sec * 1000000000u + (AbsoluteTime)ts.tv_nsec;
#else
	return (AbsoluteTime)time(NULL) * 1000000000u;
#endif
}

IOMEM__PRIVATE IOByteCount iomem__pdma_valid_fifo(IOByteCount depth)
{
	IOByteCount v = 16;
	if (depth < 16)
		return 16;
	if (depth > ((IOByteCount)1 << 20))
		return (IOByteCount)1 << 20;
	while (v * 2 <= depth)
		v *= 2;
	return v;
}

/* The CPU-physical address of the device address @addr of @cmd's segments
 * and how many bytes from there are contiguous (<= @len); false: the mapper
 * refuses the access (a fault). Without a mapper: identity. */
IOMEM__PRIVATE bool iomem__pdma_resolve(IOMapper *m, UInt64 addr, UInt64 len, bool write,
                                        IOPhysicalAddress *pa, UInt64 *contig)
{
	if (m == NULL) {
		*pa = addr;
		*contig = len;
		return true;
	}
	if (iomem_swiommu_is(m)) {
		/* the simulated IOMMU checks permissions and records faults */
		uint64_t n = 0;
		if (iomem_swiommu_translate(m, addr, len, write, pa, &n) != kIOReturnSuccess || n == 0)
			return false;
		*contig = n;
		return true;
	}
	{
		/* another mapper: page by page through mapToPhysicalAddress */
		uint64_t psz = IOMapper_getPageSize(m);
		uint64_t p, left;
		if (psz == 0)
			return false;
		p = IOMapper_mapToPhysicalAddress(m, addr & ~(psz - 1));
		if (p == 0)
			return false;
		left = psz - (addr & (psz - 1));
		*pa = p + (addr & (psz - 1));
		*contig = left < len ? left : len;
		return true;
	}
}

/* The host address of physical @pa and, in *@run, how many bytes from
 * there (<= @len) are in that page; NULL when no wired page holds the
 * frame. Through the channel's translation cache. */
IOMEM__PRIVATE unsigned char *iomem__pdma_host_page(iomem__pdma_tlb *t, unsigned shift, IOPhysicalAddress pa,
                                                    UInt64 len, UInt64 *run)
{
	uint64_t g = iomem__posix_phys_generation(), f = pa >> shift, mask = ((uint64_t)1 << shift) - 1;
	uint32_t i = (uint32_t)(f & (IOMEM__PDMA_TLB - 1));
	unsigned char *h;
	if (t->frame[i] == f && t->gen[i] == g) {
		h = t->host[i];
	} else {
		uint64_t g2;
		h = (unsigned char *)iomem__posix_phys_frame_host(f, &g2);
		if (h == NULL)
			return NULL;
		t->frame[i] = f;
		t->gen[i] = g2;
		t->host[i] = h;
	}
	*run = mask + 1 - (pa & mask);
	if (*run > len)
		*run = len;
	return h + (pa & mask);
}

/* The same for up to @len bytes at @pa, extended across pages while the
 * following frames hold the following host pages (one copy per run). */
IOMEM__PRIVATE unsigned char *iomem__pdma_host_run(iomem__pdma_tlb *t, unsigned shift, IOPhysicalAddress pa,
                                                   UInt64 len, UInt64 *run)
{
	UInt64 n, m;
	unsigned char *h = iomem__pdma_host_page(t, shift, pa, len, &n);
	if (h == NULL)
		return NULL;
	while (n < len && iomem__pdma_host_page(t, shift, pa + n, len - n, &m) == h + n)
		n += m;
	*run = n;
	return h;
}

/* Move [@addr, +@len) of the command's device space (cmd side) to/from the
 * other side at transfer byte @xoff, in chunks of at most the FIFO depth.
 * Returns the status; *@moved = bytes moved (progress published after
 * every chunk). */
IOMEM__PRIVATE IOReturn iomem__pdma_move(iomem__pdma_chan *c, unsigned shift, IOMapper *cm, IOMapper *pm,
                                         UInt64 addr, UInt64 len, IOByteCount xoff, IOByteCount *moved)
{
	bool in = (c->dir & kIODirectionIn) != 0;     /* memory is written */
	IOByteCount fifo = c->fifo;
	*moved = 0;
	while (len > 0) {
		IOPhysicalAddress pa;
		UInt64 n;
		unsigned char *h;
		/* the IOMMU checks every page it translates */
		if (!iomem__pdma_resolve(cm, addr, len < fifo ? len : fifo, in, &pa, &n))
			return kIOReturnDMAError;
		h = iomem__pdma_host_run(c->tlb, shift, pa, n, &n);
		if (h == NULL)
			return kIOReturnDMAError;
		if (c->peer == NULL) {
			unsigned char *d = c->devbuf + xoff + *moved;
			if (in)
				memmove(h, d, (size_t)n);
			else
				memmove(d, h, (size_t)n);
		} else {
			IOPhysicalAddress ppa;
			UInt64 pn;
			unsigned char *ph;
			if (c->pseg.fLength == 0) {
				UInt32 one = 1;
				UInt64 off = c->ppos;
				IOReturn r = IODMACommand_gen64IOVMSegments(c->peer, &off, &c->pseg, &one);
				if (r != kIOReturnSuccess || one == 0)
					return r != kIOReturnSuccess ? r : kIOReturnInternalError;
				c->ppos = off;
			}
			if (!iomem__pdma_resolve(pm, c->pseg.fIOVMAddr, c->pseg.fLength < n ? c->pseg.fLength : n, !in,
			                         &ppa, &pn))
				return kIOReturnDMAError;
			ph = iomem__pdma_host_run(c->tlb, shift, ppa, pn, &pn);
			if (ph == NULL)
				return kIOReturnDMAError;
			if (n > pn)
				n = pn;
			if (in)
				memmove(h, ph, (size_t)n);
			else
				memmove(ph, h, (size_t)n);
			c->pseg.fIOVMAddr += n;
			c->pseg.fLength -= n;
		}
		addr += n;
		len -= n;
		*moved += n;
		__atomic_store_n(&c->done, (IOByteCount)(xoff + *moved), __ATOMIC_RELEASE);
	}
	return kIOReturnSuccess;
}

/* One slice of channel @i's transfer, without the lock. Returns true when
 * the transfer is over (*status set). */
IOMEM__PRIVATE bool iomem__pdma_wait_until(iomem__pdma *e, pthread_cond_t *cv, uint64_t deadline);

IOMEM__PRIVATE void iomem__pdma_delay(iomem__pdma *e)
{
	pthread_mutex_lock(&e->m);
	if (!e->shutdown)
		iomem__pdma_wait_until(e, &e->delay, iomem__pdma_now() + e->delay_ns);
	pthread_mutex_unlock(&e->m);
}

IOMEM__PRIVATE bool iomem__pdma_slice(iomem__pdma *e, iomem__pdma_chan *c, IOReturn *status)
{
	IODMACommand_Segment64 seg[IOMEM__PDMA_BATCH];
	IOMapper *cm = iomem_dmacmd_getMapper(c->cmd);
	IOMapper *pm = c->peer ? iomem_dmacmd_getMapper(c->peer) : NULL;
	IOByteCount budget = IOMEM__PDMA_SLICE;
	unsigned shift = 0;
	while (((UInt64)1 << shift) < (UInt64)iomem__platform_page_size())
		shift++;
	while (budget > 0) {
		UInt32 n = IOMEM__PDMA_BATCH, i;
		UInt64 off = c->pos;
		IOReturn r;
		if (c->pos >= c->end) {
			*status = kIOReturnSuccess;
			return true;
		}
		r = IODMACommand_gen64IOVMSegments(c->cmd, &off, seg, &n);
		if (r != kIOReturnSuccess) {
			*status = r;
			return true;
		}
		for (i = 0; i < n; i++) {
			UInt64 len = seg[i].fLength, seg_start = c->pos;
			IOByteCount moved;
			if (e->delay_ns != 0)
				iomem__pdma_delay(e);
			if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
				*status = kIOReturnAborted;
				return true;
			}
			if (len > c->end - seg_start)
				len = c->end - seg_start;
			r = iomem__pdma_move(c, shift, cm, pm, seg[i].fIOVMAddr, len,
			                     __atomic_load_n(&c->done, __ATOMIC_RELAXED), &moved);
			c->pos += moved;
			if (r != kIOReturnSuccess) {
				*status = r;
				return true;
			}
			if (c->pos >= c->end) {
				*status = kIOReturnSuccess;
				return true;
			}
			budget = moved >= budget ? 0 : budget - moved;
		}
	}
	return false;
}

IOMEM__PRIVATE void iomem__pdma_free_tlbs(iomem__pdma *e)
{
	UInt32 i;
	for (i = 0; i < e->nch; i++)
		if (e->ch[i].tlb != NULL)
			iomem__free_internal(e->ch[i].tlb, sizeof *e->ch[i].tlb, "iomem_posix_dma_engine TLB");
}

IOMEM__PRIVATE void iomem__pdma_destroy(iomem__pdma *e)
{
	iomem__pdma_free_tlbs(e);
	pthread_cond_destroy(&e->delay);
	pthread_cond_destroy(&e->cbwork);
	pthread_cond_destroy(&e->idle);
	pthread_cond_destroy(&e->work);
	pthread_mutex_destroy(&e->m);
	iomem__free_internal(e->ch, sizeof *e->ch * e->nch, "iomem_posix_dma_engine channels");
	iomem__free_internal(e, sizeof *e, "iomem_posix_dma_engine");
}

/* Channel @c's transfer is over (lock not held): idle, then notify and
 * complete through its event source. The last release of the event source
 * may be the engine's (on the worker: see self_free). */
IOMEM__PRIVATE void iomem__pdma_finish(iomem__pdma *e, iomem__pdma_chan *c, IOReturn status)
{
	IODMAEventSource *es;
	IODMACommand *cmd;
	IOByteCount done;
	IODMAController *ctrl;
	pthread_mutex_lock(&e->m);
	es = c->es;
	cmd = c->cmd;
	done = __atomic_load_n(&c->done, __ATOMIC_RELAXED);
	ctrl = e->ctrl;
	/* the start's event-source record keeps @es alive until complete; the
	 * engine itself is kept by @es's reference */
	IODMAEventSource_retain(es);
	if (c->state == IOMEM__PDMA_RUNNING)
		e->nrunning--;
	c->state = IOMEM__PDMA_IDLE;
	c->stop = false;
	pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->m);
	IODMAController_notifyDMACommand(ctrl, es, cmd, status, done, iomem__pdma_now());
	IODMAController_completeDMACommand(ctrl, es, cmd);
	IODMAEventSource_release(es);
}

IOMEM__PRIVATE void *iomem__pdma_worker(void *arg)
{
	iomem__pdma *e = (iomem__pdma *)arg;
	pthread_mutex_lock(&e->m);
	for (;;) {
		iomem__pdma_chan *c = NULL;
		UInt32 k;
		IOReturn status = kIOReturnSuccess;
		bool over;
		if (e->shutdown)
			break;
		for (k = 0; k < e->nch; k++) {
			UInt32 i = (e->rr + k) % e->nch;
			if (e->ch[i].state == IOMEM__PDMA_RUNNING) {
				c = &e->ch[i];
				e->rr = i + 1;
				break;
			}
		}
		if (c == NULL) {
			pthread_cond_wait(&e->work, &e->m);
			continue;
		}
		pthread_mutex_unlock(&e->m);
		over = iomem__pdma_slice(e, c, &status);
		if (over)
			iomem__pdma_finish(e, c, status);   /* may free the engine: see self_free */
		pthread_mutex_lock(&e->m);
	}
	pthread_mutex_unlock(&e->m);
	if (e->self_free == 1)
		iomem__pdma_destroy(e);
	return NULL;
}

IOMEM__PRIVATE void *iomem__pdma_callback(void *arg)
{
	iomem__pdma *e = (iomem__pdma *)arg;
	pthread_mutex_lock(&e->m);
	for (;;) {
		IODMAEventSource *es = NULL;
		UInt32 i;
		if (e->ncb == 0) {
			if (e->shutdown)
				break;
			pthread_cond_wait(&e->cbwork, &e->m);
			continue;
		}
		for (i = 0; i < e->nch; i++) {
			if (e->ch[i].run_es != NULL) {
				es = e->ch[i].run_es;
				e->ch[i].run_es = NULL;
				e->ncb--;
				break;
			}
		}
		pthread_mutex_unlock(&e->m);
		if (es != NULL) {
			iomem_dma_event_source_run(es);
			IODMAEventSource_release(es);   /* may free the engine: see self_free */
		}
		pthread_mutex_lock(&e->m);
	}
	pthread_mutex_unlock(&e->m);
	if (e->self_free == 2)
		iomem__pdma_destroy(e);
	return NULL;
}

IOMEM__PRIVATE iomem__pdma *iomem__pdma_of(IODMAController *c);

IOMEM__PRIVATE IOReturn iomem__pdma_init(IODMAController *ctrl, const iomem_dma_provider *provider,
                                         IODMAEventSource *es, UInt32 *dmaIndex, UInt32 reqIndex)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	UInt32 i;
	(void)provider;
	pthread_mutex_lock(&e->m);
	for (i = 0; i < e->nch; i++) {
		if (e->ch[i].es == NULL) {
			if (e->ch[i].tlb == NULL) {
				/* kept from the channel's first binding to the engine's end */
				e->ch[i].tlb = (iomem__pdma_tlb *)iomem__alloc_internal(sizeof *e->ch[i].tlb,
				                                                        "iomem_posix_dma_engine TLB");
				if (e->ch[i].tlb == NULL) {
					pthread_mutex_unlock(&e->m);
					return kIOReturnNoMemory;
				}
			}
			e->ch[i].es = es;
			e->ch[i].req = reqIndex;
			*dmaIndex = i;
			pthread_mutex_unlock(&e->m);
			return kIOReturnSuccess;
		}
	}
	pthread_mutex_unlock(&e->m);
	return kIOReturnNoChannels;
}

IOMEM__PRIVATE void iomem__pdma_free_chan(IODMAController *ctrl, UInt32 dmaIndex, IODMAEventSource *es)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	pthread_mutex_lock(&e->m);
	if (dmaIndex < e->nch && e->ch[dmaIndex].es == es) {
		iomem__pdma_chan *c = &e->ch[dmaIndex];
		/* nothing runs: a running command holds a reference on @es */
		c->es = NULL;
		c->devbuf = NULL;
		c->devlen = 0;
		c->peer = NULL;
		c->cmd = NULL;
		c->frame = 1;
		__atomic_store_n(&c->done, (IOByteCount)0, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&e->m);
}

IOMEM__PRIVATE IOReturn iomem__pdma_start(IODMAController *ctrl, UInt32 dmaIndex, IODMACommand *cmd,
                                          IODirection direction, IOByteCount byteCount, IOByteCount byteOffset)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	iomem__pdma_chan *c;
	UInt64 poff, plen, peer_len = 0;
	IODirection d = direction & kIODirectionInOut;
	bool run_here;
	if (cmd == NULL || dmaIndex >= e->nch || (d != kIODirectionIn && d != kIODirectionOut))
		return kIOReturnBadArgument;
	if (IODMACommand_getPreparedOffsetAndLength(cmd, &poff, &plen) != kIOReturnSuccess)
		return kIOReturnNotReady;
	if (byteOffset > plen)
		return kIOReturnBadArgument;
	if (byteCount == 0)
		byteCount = plen - byteOffset;
	if (byteCount > plen - byteOffset)
		return kIOReturnBadArgument;
	c = &e->ch[dmaIndex];
	pthread_mutex_lock(&e->m);
	if (e->shutdown) {
		pthread_mutex_unlock(&e->m);
		return kIOReturnOffline;
	}
	if (c->state != IOMEM__PDMA_IDLE) {
		pthread_mutex_unlock(&e->m);
		return kIOReturnBusy;
	}
	if (c->peer == NULL && c->devbuf == NULL) {
		pthread_mutex_unlock(&e->m);
		return kIOReturnNotReady;
	}
	if (c->peer != NULL) {
		UInt64 po;
		if (IODMACommand_getPreparedOffsetAndLength(c->peer, &po, &peer_len) != kIOReturnSuccess) {
			pthread_mutex_unlock(&e->m);
			return kIOReturnNotReady;
		}
	} else {
		peer_len = c->devlen;
	}
	if (peer_len < byteCount) {
		pthread_mutex_unlock(&e->m);
		return kIOReturnNoSpace;
	}
	c->cmd = cmd;
	c->dir = d;
	c->pos = byteOffset;
	c->end = byteOffset + byteCount;
	c->ppos = 0;
	c->pseg.fIOVMAddr = 0;
	c->pseg.fLength = 0;
	c->stop = false;
	c->seq++;
	__atomic_store_n(&c->done, (IOByteCount)0, __ATOMIC_RELAXED);
	/* A synchronous start's thread would only sleep until the worker had
	 * moved the bytes: it moves them itself, sparing two thread hand-offs
	 * (each a context switch when the threads share a CPU). Stops, queries
	 * and progress work the same; the notification runs on this thread. */
	run_here = c->es != NULL && iomem__dmaes_is_sync(c->es);
	if (run_here) {
		c->state = IOMEM__PDMA_INLINE;
	} else {
		c->state = IOMEM__PDMA_RUNNING;
		e->nrunning++;
		/* under the lock: once it is dropped the transfer may complete and
		 * its action release the last reference (the engine with it) */
		pthread_cond_signal(&e->work);
	}
	pthread_mutex_unlock(&e->m);
	if (run_here) {
		IOReturn status = kIOReturnSuccess;
		while (!iomem__pdma_slice(e, c, &status)) {
		}
		iomem__pdma_finish(e, c, status);  /* the starter holds a reference: never the last */
	}
	return kIOReturnSuccess;
}

/* One wait on @cv (lock held) until signalled or @deadline (iomem__pdma_now
 * clock, UINT64_MAX: none); false when the deadline has passed. */
IOMEM__PRIVATE bool iomem__pdma_wait_until(iomem__pdma *e, pthread_cond_t *cv, uint64_t deadline)
{
	struct timespec ts;
	if (deadline == UINT64_MAX) {
		pthread_cond_wait(cv, &e->m);
		return true;
	}
	if (iomem__pdma_now() >= deadline)
		return false;
	ts.tv_sec = (time_t)(deadline / 1000000000u);
	ts.tv_nsec = (long)(deadline % 1000000000u);
	pthread_cond_timedwait(cv, &e->m, &ts);
	return true;
}

/* Wait (lock held) until transfer @seq of @c is over or @deadline passes;
 * false on timeout. */
IOMEM__PRIVATE bool iomem__pdma_wait_idle(iomem__pdma *e, iomem__pdma_chan *c, uint64_t seq, uint64_t deadline)
{
	while (c->state != IOMEM__PDMA_IDLE && c->seq == seq)
		if (!iomem__pdma_wait_until(e, &e->idle, deadline))
			return false;
	return true;
}

IOMEM__PRIVATE IOReturn iomem__pdma_stop(IODMAController *ctrl, UInt32 dmaIndex, bool flush, uint64_t timeout)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	iomem__pdma_chan *c;
	uint64_t deadline = UINT64_MAX;
	bool ok;
	(void)flush;   /* stops happen at segment boundaries: the FIFO is empty */
	if (dmaIndex >= e->nch)
		return kIOReturnBadArgument;
	c = &e->ch[dmaIndex];
	if (timeout != UINT64_MAX) {
		uint64_t now = iomem__pdma_now();
		deadline = timeout > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + timeout;
	}
	pthread_mutex_lock(&e->m);
	if (c->state == IOMEM__PDMA_IDLE) {
		pthread_mutex_unlock(&e->m);
		return kIOReturnNotReady;
	}
	__atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
	ok = iomem__pdma_wait_idle(e, c, c->seq, deadline);
	pthread_mutex_unlock(&e->m);
	return ok ? kIOReturnSuccess : kIOReturnTimeout;
}

IOMEM__PRIVATE IOReturn iomem__pdma_query(IODMAController *ctrl, UInt32 dmaIndex, IODMACommand **cmd,
                                          IOByteCount *transferCount, bool waitForIdle)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	iomem__pdma_chan *c;
	IOByteCount done;
	if (dmaIndex >= e->nch)
		return kIOReturnBadArgument;
	c = &e->ch[dmaIndex];
	pthread_mutex_lock(&e->m);
	if (waitForIdle)
		iomem__pdma_wait_idle(e, c, c->seq, UINT64_MAX);
	done = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
	if (cmd != NULL)
		*cmd = c->cmd;
	if (transferCount != NULL)
		*transferCount = done - done % c->frame;
	pthread_mutex_unlock(&e->m);
	return kIOReturnSuccess;
}

IOMEM__PRIVATE IOByteCount iomem__pdma_getfifo(IODMAController *ctrl, UInt32 dmaIndex, IODirection direction)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	IOByteCount d;
	(void)direction;
	if (dmaIndex >= e->nch)
		return 0;
	pthread_mutex_lock(&e->m);
	d = e->ch[dmaIndex].fifo;
	pthread_mutex_unlock(&e->m);
	return d;
}

IOMEM__PRIVATE IOByteCount iomem__pdma_validfifo(IODMAController *ctrl, UInt32 dmaIndex, IOByteCount depth,
                                                 IODirection direction)
{
	(void)ctrl; (void)dmaIndex; (void)direction;
	return iomem__pdma_valid_fifo(depth);
}

IOMEM__PRIVATE IOReturn iomem__pdma_setfifo(IODMAController *ctrl, UInt32 dmaIndex, IOByteCount depth)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	IOReturn r = kIOReturnSuccess;
	if (dmaIndex >= e->nch || depth != iomem__pdma_valid_fifo(depth))
		return kIOReturnBadArgument;
	pthread_mutex_lock(&e->m);
	if (e->ch[dmaIndex].state != IOMEM__PDMA_IDLE)
		r = kIOReturnBusy;
	else
		e->ch[dmaIndex].fifo = depth;
	pthread_mutex_unlock(&e->m);
	return r;
}

IOMEM__PRIVATE IOReturn iomem__pdma_setframe(IODMAController *ctrl, UInt32 dmaIndex, UInt8 byteCount)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	IOReturn r = kIOReturnSuccess;
	if (dmaIndex >= e->nch || byteCount == 0)
		return kIOReturnBadArgument;
	pthread_mutex_lock(&e->m);
	if (e->ch[dmaIndex].state != IOMEM__PDMA_IDLE)
		r = kIOReturnBusy;
	else
		e->ch[dmaIndex].frame = byteCount;
	pthread_mutex_unlock(&e->m);
	return r;
}

IOMEM__PRIVATE UInt64 iomem__pdma_frames(IODMAController *ctrl, UInt32 dmaIndex)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	UInt64 f;
	if (dmaIndex >= e->nch)
		return 0;
	pthread_mutex_lock(&e->m);
	f = __atomic_load_n(&e->ch[dmaIndex].done, __ATOMIC_ACQUIRE) / e->ch[dmaIndex].frame;
	pthread_mutex_unlock(&e->m);
	return f;
}

IOMEM__PRIVATE IOReturn iomem__pdma_setconfig(IODMAController *ctrl, UInt32 dmaIndex,
                                              const iomem_dma_provider *provider, UInt32 reqIndex)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	if (dmaIndex >= e->nch || provider == NULL)
		return kIOReturnBadArgument;
	pthread_mutex_lock(&e->m);
	e->ch[dmaIndex].req = reqIndex;
	pthread_mutex_unlock(&e->m);
	return kIOReturnSuccess;
}

IOMEM__PRIVATE bool iomem__pdma_validconfig(IODMAController *ctrl, UInt32 dmaIndex,
                                            const iomem_dma_provider *provider, UInt32 reqIndex)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	(void)reqIndex;
	return dmaIndex < e->nch && provider != NULL;
}

IOMEM__PRIVATE void iomem__pdma_signal(IODMAController *ctrl, IODMAEventSource *es)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	UInt32 i = iomem_dma_event_source_getDMAIndex(es);
	bool wake = false;
	if (i >= e->nch)
		return;
	pthread_mutex_lock(&e->m);
	if (e->ch[i].run_es == NULL) {
		IODMAEventSource_retain(es);
		e->ch[i].run_es = es;
		e->ncb++;
		wake = true;
	}
	pthread_mutex_unlock(&e->m);
	/* after the unlock (the caller's reference on @es keeps the engine): a
	 * woken callback thread that preempts us does not then block on the
	 * lock we hold - a second context switch on a shared CPU */
	if (wake)
		pthread_cond_signal(&e->cbwork);
}

IOMEM__PRIVATE void iomem__pdma_free(IODMAController *ctrl)
{
	iomem__pdma *e = iomem__pdma_of(ctrl);
	pthread_t self = pthread_self();
	bool on_worker = pthread_equal(self, e->worker) != 0;
	bool on_cb = pthread_equal(self, e->cb) != 0;
	pthread_mutex_lock(&e->m);
	e->shutdown = true;
	e->ctrl = NULL;
	e->self_free = on_worker ? 1 : on_cb ? 2 : 0;
	pthread_cond_broadcast(&e->work);
	pthread_cond_broadcast(&e->cbwork);
	pthread_cond_broadcast(&e->delay);
	pthread_mutex_unlock(&e->m);
	/* the last reference went with the last event source, so nothing is
	 * running or queued; a thread of the engine itself finishes and frees */
	if (on_worker)
		pthread_detach(e->worker);
	else
		pthread_join(e->worker, NULL);
	if (on_cb)
		pthread_detach(e->cb);
	else
		pthread_join(e->cb, NULL);
	if (!on_worker && !on_cb)
		iomem__pdma_destroy(e);
}

static const iomem_dma_controller_ops iomem__pdma_ops = {
	"iomem_posix_dma_engine",
	iomem__pdma_init, iomem__pdma_free_chan, iomem__pdma_start, iomem__pdma_stop, iomem__pdma_query,
	iomem__pdma_getfifo, iomem__pdma_setfifo, iomem__pdma_validfifo, iomem__pdma_setframe,
	iomem__pdma_setconfig, iomem__pdma_validconfig, iomem__pdma_frames, iomem__pdma_signal,
	iomem__pdma_free
};

IOMEM__PRIVATE iomem__pdma *iomem__pdma_of(IODMAController *c)
{
	return (iomem__pdma *)iomem_dma_controller_getContext(c);
}

IOMEM_API IODMAController *iomem_posix_dma_engine_create(const iomem_posix_dma_engine_desc *desc)
{
	iomem_posix_dma_engine_desc d = { 0, 0, 0, 0 };
	iomem_dma_provider prov = { 0, NULL, 0, NULL };
	pthread_condattr_t ca;
	iomem__pdma *e;
	UInt32 i;
	int stage = 0;
	if (desc != NULL)
		d = *desc;
	if (d.channels == 0)
		d.channels = 4;
	if (d.fifoDepth == 0)
		d.fifoDepth = 4096;
	if (d.channels > 64 || iomem__pdma_valid_fifo(d.fifoDepth) != d.fifoDepth)
		return NULL;
	e = (iomem__pdma *)iomem__alloc_internal(sizeof *e, "iomem_posix_dma_engine");
	if (e == NULL)
		return NULL;
	e->nch = d.channels;
	e->ch = (iomem__pdma_chan *)iomem__alloc_internal(sizeof *e->ch * e->nch, "iomem_posix_dma_engine channels");
	if (e->ch == NULL) {
		iomem__free_internal(e, sizeof *e, "iomem_posix_dma_engine");
		return NULL;
	}
	e->delay_ns = d.segmentDelayNs;
	for (i = 0; i < e->nch; i++) {
		e->ch[i].fifo = d.fifoDepth;
		e->ch[i].frame = 1;
	}
	prov.phandle = d.phandle;
	e->ctrl = iomem_dma_controller_withOps(&iomem__pdma_ops, e, &prov);
	if (e->ctrl == NULL)
		goto fail;
	if (pthread_mutex_init(&e->m, NULL) != 0)
		goto fail;
	stage = 1;
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
#if IOMEM__PDMA_MONOTONIC
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
#endif
	if (pthread_cond_init(&e->idle, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto fail;
	}
	if (pthread_cond_init(&e->delay, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		pthread_cond_destroy(&e->idle);
		goto fail;
	}
	pthread_condattr_destroy(&ca);
	stage = 2;
	if (pthread_cond_init(&e->work, NULL) != 0)
		goto fail;
	stage = 3;
	if (pthread_cond_init(&e->cbwork, NULL) != 0)
		goto fail;
	stage = 4;
	if (pthread_create(&e->worker, NULL, iomem__pdma_worker, e) != 0)
		goto fail;
	stage = 5;
	if (pthread_create(&e->cb, NULL, iomem__pdma_callback, e) != 0)
		goto fail;
	return e->ctrl;
fail:
	if (stage >= 5) {
		pthread_mutex_lock(&e->m);
		e->shutdown = true;
		pthread_cond_broadcast(&e->work);
		pthread_mutex_unlock(&e->m);
		pthread_join(e->worker, NULL);
	}
	if (stage >= 4)
		pthread_cond_destroy(&e->cbwork);
	if (stage >= 3)
		pthread_cond_destroy(&e->work);
	if (stage >= 2) {
		pthread_cond_destroy(&e->delay);
		pthread_cond_destroy(&e->idle);
	}
	if (stage >= 1)
		pthread_mutex_destroy(&e->m);
	if (e->ctrl != NULL) {
		/* not through release: its free hook would join threads */
		iomem__free_internal(e->ctrl, sizeof *e->ctrl, "IODMAController");
	}
	iomem__free_internal(e->ch, sizeof *e->ch * e->nch, "iomem_posix_dma_engine channels");
	iomem__free_internal(e, sizeof *e, "iomem_posix_dma_engine");
	return NULL;
}

IOMEM__PRIVATE IOReturn iomem__pdma_config(IODMAController *engine, UInt32 dmaIndex, void *buffer,
                                           IOByteCount length, IODMACommand *peer)
{
	iomem__pdma *e;
	IOReturn r = kIOReturnSuccess;
	if (engine == NULL || engine->ops != &iomem__pdma_ops)
		return kIOReturnBadArgument;
	e = iomem__pdma_of(engine);
	if (dmaIndex >= e->nch || (buffer == NULL && length != 0))
		return kIOReturnBadArgument;
	pthread_mutex_lock(&e->m);
	if (e->ch[dmaIndex].state != IOMEM__PDMA_IDLE) {
		r = kIOReturnBusy;
	} else {
		e->ch[dmaIndex].devbuf = (unsigned char *)buffer;
		e->ch[dmaIndex].devlen = length;
		e->ch[dmaIndex].peer = peer;
	}
	pthread_mutex_unlock(&e->m);
	return r;
}

IOMEM_API IOReturn iomem_posix_dma_set_device_buffer(IODMAController *engine, UInt32 dmaIndex,
                                                     void *buffer, IOByteCount length)
{
	return iomem__pdma_config(engine, dmaIndex, buffer, length, NULL);
}

IOMEM_API IOReturn iomem_posix_dma_set_peer(IODMAController *engine, UInt32 dmaIndex, IODMACommand *peer)
{
	return iomem__pdma_config(engine, dmaIndex, NULL, 0, peer);
}

#endif /* IOMEM_BACKEND_POSIX */

/* >>impl-linuxdma: a controller over a dmaengine channel ------------------ */
#if defined(IOMEM_BACKEND_LINUX) && (!defined(IOMEM_LINUX_GPL_SYMBOLS) || IOMEM_LINUX_GPL_SYMBOLS)
#include <linux/dmaengine.h>
#include <linux/workqueue.h>
#include <linux/completion.h>
#include <linux/ktime.h>

/* One memcpy descriptor: its callback's record. */
typedef struct iomem__lde_piece {
	struct iomem__lde   *owner;
	IOByteCount          len;
} iomem__lde_piece;

typedef struct iomem__lde {
	struct dma_chan     *chan;
	IODMAController     *ctl;           /* +0: back pointer */
	spinlock_t           lock;          /* everything below; taken in softirq */
	IODMAEventSource    *es;            /* the channel's owner (+0) */
	IODMACommand        *peer, *running, *last;
	iomem__lde_piece    *pieces;        /* of the running or last command: freed
	                                       in process context once no callback
	                                       can run (all done, or after
	                                       dmaengine_terminate_sync) */
	uint32_t             npieces, ndone;
	IOByteCount          moved;
	bool                 stopping;
	struct completion    idle;
	struct work_struct   work;          /* runs the event sources' queues */
	IODMAEventSource    *work_es;       /* +1 while queued */
} iomem__lde;

/* The command is over: report it. Called with the lock held (flags @f). */
IOMEM__PRIVATE void iomem__lde_finish_unlock(iomem__lde *d, IOReturn status, unsigned long f)
{
	IODMACommand *cmd = d->running;
	IODMAEventSource *es = d->es;
	IOByteCount moved = d->moved;

	d->last = cmd;
	d->running = NULL;
	d->stopping = false;
	complete_all(&d->idle);
	spin_unlock_irqrestore(&d->lock, f);
	IODMAController_notifyDMACommand(d->ctl, es, cmd, status, moved, (AbsoluteTime)ktime_get_ns());
	IODMAController_completeDMACommand(d->ctl, es, cmd);
}

static void iomem__lde_callback(void *param, const struct dmaengine_result *result)
{
	iomem__lde_piece *p = (iomem__lde_piece *)param;
	iomem__lde *d = p->owner;
	unsigned long f;

	spin_lock_irqsave(&d->lock, f);
	if (d->running == NULL || d->pieces == NULL || p < d->pieces || p >= d->pieces + d->npieces) {
		spin_unlock_irqrestore(&d->lock, f);   /* stopped meanwhile */
		return;
	}
	if (result != NULL && result->result != DMA_TRANS_NOERROR) {
		iomem__lde_finish_unlock(d, kIOReturnDMAError, f);
		return;
	}
	d->moved += p->len;
	if (++d->ndone == d->npieces)
		iomem__lde_finish_unlock(d, kIOReturnSuccess, f);
	else
		spin_unlock_irqrestore(&d->lock, f);
}

/* Pair @cmd's range [off, off + count) with @peer's [0, count) into
 * pieces; with @chan NULL only count them (*@n), else prepare and submit
 * one descriptor per piece into @pieces. Out: @cmd is the source. */
IOMEM__PRIVATE IOReturn iomem__lde_walk(iomem__lde *d, struct dma_chan *chan, IODMACommand *cmd,
                                        IODMACommand *peer, bool out, UInt64 off, UInt64 count,
                                        iomem__lde_piece *pieces, uint32_t *n)
{
	IODMACommand_Segment64 a = { 0, 0 }, b = { 0, 0 };
	UInt64 aoff = off, boff = 0, done = 0;
	uint32_t i = 0;

	while (done < count) {
		UInt64 len;
		if (a.fLength == 0) {
			UInt32 k = 1;
			IOReturn r = IODMACommand_gen64IOVMSegments(cmd, &aoff, &a, &k);
			if (r != kIOReturnSuccess)
				return r;
		}
		if (b.fLength == 0) {
			UInt32 k = 1;
			IOReturn r = IODMACommand_gen64IOVMSegments(peer, &boff, &b, &k);
			if (r != kIOReturnSuccess)
				return r == kIOReturnOverrun ? kIOReturnNoSpace : r;
		}
		len = a.fLength < b.fLength ? a.fLength : b.fLength;
		if (len > count - done)
			len = count - done;
		if (chan != NULL) {
			struct dma_async_tx_descriptor *tx;
			dma_addr_t src = (dma_addr_t)(out ? a.fIOVMAddr : b.fIOVMAddr);
			dma_addr_t dst = (dma_addr_t)(out ? b.fIOVMAddr : a.fIOVMAddr);
			if (i >= *n)
				return kIOReturnInternalError;
			tx = dmaengine_prep_dma_memcpy(chan, dst, src, (size_t)len, DMA_PREP_INTERRUPT);
			if (tx == NULL)
				return kIOReturnNoResources;
			pieces[i].owner = d;
			pieces[i].len = (IOByteCount)len;
			tx->callback_result = iomem__lde_callback;
			tx->callback_param = &pieces[i];
			if (dma_submit_error(dmaengine_submit(tx)))
				return kIOReturnNoResources;
		}
		i++;
		a.fIOVMAddr += len;
		a.fLength -= len;
		b.fIOVMAddr += len;
		b.fLength -= len;
		done += len;
	}
	*n = i;
	return kIOReturnSuccess;
}

/* Free a finished command's pieces (process context): first make sure no
 * callback of it can still run (an error ended it early). */
IOMEM__PRIVATE void iomem__lde_retire(iomem__lde *d, iomem__lde_piece *p, uint32_t n, uint32_t ndone)
{
	if (p == NULL)
		return;
	if (ndone != n)
		dmaengine_terminate_sync(d->chan);
	iomem__free_internal(p, (vm_size_t)n * sizeof *p, "iomem dmaengine pieces");
}

IOMEM__PRIVATE iomem__lde *iomem__lde_of(IODMAController *c)
{
	return (iomem__lde *)iomem_dma_controller_getContext(c);
}

static IOReturn iomem__lde_init_channel(IODMAController *c, const iomem_dma_provider *provider,
                                        IODMAEventSource *es, UInt32 *dmaIndex, UInt32 reqIndex)
{
	iomem__lde *d = iomem__lde_of(c);
	IOReturn r = kIOReturnNoChannels;
	unsigned long f;
	(void)provider;
	(void)reqIndex;
	spin_lock_irqsave(&d->lock, f);
	if (d->es == NULL) {
		d->es = es;
		*dmaIndex = 0;
		r = kIOReturnSuccess;
	}
	spin_unlock_irqrestore(&d->lock, f);
	return r;
}

static void iomem__lde_free_channel(IODMAController *c, UInt32 dmaIndex, IODMAEventSource *es)
{
	iomem__lde *d = iomem__lde_of(c);
	unsigned long f;
	(void)dmaIndex;
	spin_lock_irqsave(&d->lock, f);
	if (d->es == es) {
		d->es = NULL;
		d->last = NULL;
	}
	spin_unlock_irqrestore(&d->lock, f);
}

static IOReturn iomem__lde_start(IODMAController *c, UInt32 dmaIndex, IODMACommand *cmd, IODirection direction,
                                 IOByteCount byteCount, IOByteCount byteOffset)
{
	iomem__lde *d = iomem__lde_of(c);
	iomem__lde_piece *pieces, *old;
	IODMACommand *peer;
	UInt64 plen = 0, peerlen = 0;
	uint32_t n = 0, oldn, olddone;
	unsigned long f;
	IOReturn r;
	(void)dmaIndex;
	if (cmd == NULL || (direction != kIODirectionIn && direction != kIODirectionOut))
		return kIOReturnBadArgument;
	if (IODMACommand_getPreparedOffsetAndLength(cmd, NULL, &plen) != kIOReturnSuccess)
		return kIOReturnNotReady;
	if (byteOffset > plen || byteCount > plen - byteOffset)
		return kIOReturnBadArgument;
	if (byteCount == 0)
		byteCount = (IOByteCount)(plen - byteOffset);
	if (byteCount == 0)
		return kIOReturnBadArgument;
	spin_lock_irqsave(&d->lock, f);
	if (d->running != NULL) {
		spin_unlock_irqrestore(&d->lock, f);
		return kIOReturnBusy;
	}
	peer = d->peer;
	old = d->pieces;
	oldn = d->npieces;
	olddone = d->ndone;
	d->running = cmd;          /* claimed: set_peer and other starts see busy */
	d->moved = 0;
	d->ndone = 0;
	d->npieces = 0;
	d->pieces = NULL;
	d->stopping = false;
	reinit_completion(&d->idle);
	spin_unlock_irqrestore(&d->lock, f);
	iomem__lde_retire(d, old, oldn, olddone);

	if (peer == NULL || IODMACommand_getPreparedOffsetAndLength(peer, NULL, &peerlen) != kIOReturnSuccess)
		r = kIOReturnNotReady;
	else if (peerlen < byteCount)
		r = kIOReturnNoSpace;
	else
		r = iomem__lde_walk(d, NULL, cmd, peer, direction == kIODirectionOut, byteOffset, byteCount, NULL, &n);
	pieces = NULL;
	if (r == kIOReturnSuccess) {
		pieces = (iomem__lde_piece *)iomem__alloc_internal((vm_size_t)n * sizeof *pieces,
		                                                   "iomem dmaengine pieces");
		if (pieces == NULL)
			r = kIOReturnNoMemory;
	}
	if (r == kIOReturnSuccess) {
		spin_lock_irqsave(&d->lock, f);
		d->pieces = pieces;
		d->npieces = n;
		spin_unlock_irqrestore(&d->lock, f);
		r = iomem__lde_walk(d, d->chan, cmd, peer, direction == kIODirectionOut, byteOffset, byteCount,
		                    pieces, &n);
		if (r != kIOReturnSuccess)
			dmaengine_terminate_sync(d->chan);   /* nothing was issued: drop what was submitted */
	}
	if (r != kIOReturnSuccess) {
		spin_lock_irqsave(&d->lock, f);
		d->running = NULL;
		d->pieces = NULL;
		d->npieces = 0;
		complete_all(&d->idle);
		spin_unlock_irqrestore(&d->lock, f);
		if (pieces != NULL)
			iomem__free_internal(pieces, (vm_size_t)n * sizeof *pieces, "iomem dmaengine pieces");
		return r;
	}
	dma_async_issue_pending(d->chan);
	return kIOReturnSuccess;
}

static IOReturn iomem__lde_stop(IODMAController *c, UInt32 dmaIndex, bool flush, uint64_t timeout)
{
	iomem__lde *d = iomem__lde_of(c);
	iomem__lde_piece *p;
	uint32_t n;
	unsigned long f;
	(void)dmaIndex;
	(void)flush;
	(void)timeout;
	spin_lock_irqsave(&d->lock, f);
	if (d->running == NULL || d->stopping) {
		spin_unlock_irqrestore(&d->lock, f);
		return kIOReturnNotReady;
	}
	d->stopping = true;
	spin_unlock_irqrestore(&d->lock, f);
	/* after it, no callback of the command runs any more */
	dmaengine_terminate_sync(d->chan);
	spin_lock_irqsave(&d->lock, f);
	p = d->pieces;
	n = d->npieces;
	d->pieces = NULL;
	d->npieces = 0;
	if (d->running != NULL)
		iomem__lde_finish_unlock(d, kIOReturnAborted, f);   /* it did not finish meanwhile */
	else
		spin_unlock_irqrestore(&d->lock, f);
	iomem__lde_retire(d, p, n, n);
	return kIOReturnSuccess;
}

static IOReturn iomem__lde_query(IODMAController *c, UInt32 dmaIndex, IODMACommand **dmaCommand,
                                 IOByteCount *transferCount, bool waitForIdle)
{
	iomem__lde *d = iomem__lde_of(c);
	unsigned long f;
	(void)dmaIndex;
	if (waitForIdle)
		wait_for_completion(&d->idle);
	spin_lock_irqsave(&d->lock, f);
	if (dmaCommand != NULL)
		*dmaCommand = d->running != NULL ? d->running : d->last;
	if (transferCount != NULL)
		*transferCount = d->moved;
	spin_unlock_irqrestore(&d->lock, f);
	return kIOReturnSuccess;
}

static void iomem__lde_work(struct work_struct *w)
{
	iomem__lde *d = container_of(w, iomem__lde, work);
	IODMAEventSource *es;
	unsigned long f;

	spin_lock_irqsave(&d->lock, f);
	es = d->work_es;
	d->work_es = NULL;
	spin_unlock_irqrestore(&d->lock, f);
	if (es != NULL) {
		(void)iomem_dma_event_source_run(es);
		IODMAEventSource_release(es);
	}
}

/* one channel, so one event source: a queued run drains every completion */
static void iomem__lde_signal(IODMAController *c, IODMAEventSource *es)
{
	iomem__lde *d = iomem__lde_of(c);
	IODMAEventSource *drop = NULL;
	unsigned long f;

	IODMAEventSource_retain(es);
	spin_lock_irqsave(&d->lock, f);
	if (d->work_es == NULL)
		d->work_es = es;
	else
		drop = es;
	spin_unlock_irqrestore(&d->lock, f);
	if (drop != NULL)
		IODMAEventSource_release(drop);
	else
		queue_work(system_wq, &d->work);
}

static void iomem__lde_free(IODMAController *c)
{
	iomem__lde *d = iomem__lde_of(c);

	iomem__lde_retire(d, d->pieces, d->npieces, d->ndone);
	/* the last reference may be dropped by our own work item (it held
	 * the event source's, which held ours): it touches nothing after */
	if (current_work() != &d->work)
		flush_work(&d->work);
	iomem__free_internal(d, sizeof *d, "iomem dmaengine controller");
}

static const iomem_dma_controller_ops iomem__lde_ops = {
	.name = "linux-dmaengine",
	.initDMAChannel = iomem__lde_init_channel,
	.freeDMAChannel = iomem__lde_free_channel,
	.startDMACommand = iomem__lde_start,
	.stopDMACommand = iomem__lde_stop,
	.queryDMACommand = iomem__lde_query,
	.signalWorkAvailable = iomem__lde_signal,
	.free = iomem__lde_free,
};

IOMEM_API IODMAController *iomem_linux_dmaengine_controller_create(struct dma_chan *chan,
                                                                   const iomem_dma_provider *provider)
{
	iomem__lde *d;
	if (chan == NULL || chan->device == NULL || !dma_has_cap(DMA_MEMCPY, chan->device->cap_mask))
		return NULL;
	d = (iomem__lde *)iomem__alloc_internal(sizeof *d, "iomem dmaengine controller");
	if (d == NULL)
		return NULL;
	memset(d, 0, sizeof *d);
	d->chan = chan;
	spin_lock_init(&d->lock);
	init_completion(&d->idle);
	complete_all(&d->idle);
	INIT_WORK(&d->work, iomem__lde_work);
	d->ctl = iomem_dma_controller_withOps(&iomem__lde_ops, d, provider);
	if (d->ctl == NULL) {
		iomem__free_internal(d, sizeof *d, "iomem dmaengine controller");
		return NULL;
	}
	return d->ctl;
}

IOMEM_API IOReturn iomem_linux_dmaengine_set_peer(IODMAController *controller, UInt32 dmaIndex,
                                                  IODMACommand *peer)
{
	iomem__lde *d;
	IOReturn r = kIOReturnSuccess;
	unsigned long f;
	if (controller == NULL || controller->ops != &iomem__lde_ops || dmaIndex != 0)
		return kIOReturnBadArgument;
	d = iomem__lde_of(controller);
	spin_lock_irqsave(&d->lock, f);
	if (d->running != NULL)
		r = kIOReturnBusy;
	else
		d->peer = peer;
	spin_unlock_irqrestore(&d->lock, f);
	return r;
}

#endif /* IOMEM_BACKEND_LINUX */

#endif /* IOMEM_IMPLEMENTATION */
