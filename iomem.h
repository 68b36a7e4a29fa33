/* SPDX-License-Identifier: MIT */
/*
 * iomem.h - the memory half of Apple's IOKit as a header-only C99 library
 *           v0.1.0 (see IOMEM_VERSION_* below)
 *
 * iomem re-creates IOKit's "Memory" API - IOMalloc and friends,
 * IORangeAllocator, every IOMemoryDescriptor kind, IODMACommand, IOMemoryMap,
 * IOMapper, IOMemoryCursor - with IOKit's names, values and return codes, on
 * three platforms: the Linux kernel, bare metal, and POSIX user space.
 *
 * TABLE OF CONTENTS                        (search for ">>name" to jump)
 *   USAGE                 how to include iomem in a driver
 *   BACKENDS              IOMEM_BACKEND_* and auto-detection
 *   CONFIGURATION         every macro, its default, where it must be defined
 *   DEBUG LAYER           IOMEM_DEBUG: what it checks, how it reports
 *   >>config              config header, version, linkage, static assert
 *   >>backend-select      exactly one backend, or #error
 *   >>types               IOKit scalar types (IOByteCount, IOPhysicalAddress...)
 *   >>ioreturn            IOReturn codes (X-macro), IOReturnString
 *   >>constants           direction, descriptor, buffer, map, cache options
 *   >>platform            the backend header (platform contract)
 *   >>alloc               IOMalloc / IOMallocZero / IOMallocAligned /
 *                         IOMallocPageable and their frees, IONew/IODelete
 *   >>debug               iomem_stats, iomem_leak_report
 *   >>range               IORangeAllocator
 *   >>desc                IOMemoryDescriptor and its kinds
 *   >>implementation      the part compiled once (IOMEM_IMPLEMENTATION)
 *
 * USAGE
 * =====
 *   In exactly ONE C file of your driver:
 *
 *       #define IOMEM_IMPLEMENTATION
 *       #include "iomem.h"          // also pulls in iomem_dma.h/iomem_map.h
 *                                   // implementations if you include them
 *
 *   Everywhere else just #include "iomem.h" (and iomem_dma.h, iomem_map.h).
 *
 *       void *buf = IOMalloc(512);                 // +1: you own it
 *       if (!buf) return kIOReturnNoMemory;
 *       ...
 *       IOFree(buf, 512);                          // IOKit wants the size back
 *
 *       void *ring = IOMallocAligned(4096, 64);    // 64-byte aligned
 *       IOFreeAligned(ring, 4096);
 *
 * BACKENDS
 * ========
 *   Define at most one, globally (every TU, e.g. with -D):
 *     IOMEM_BACKEND_POSIX      user space: a thin layer over malloc/mmap
 *     IOMEM_BACKEND_LINUX      Linux kernel module (kvmalloc, vmalloc, ...)
 *     IOMEM_BACKEND_BAREMETAL  freestanding firmware: <stddef.h> <stdint.h>
 *                              <stdbool.h> only, platform hooks given at
 *                              start-up with iomem_baremetal_init()
 *   With none defined: __KERNEL__ selects LINUX, __STDC_HOSTED__ == 0 selects
 *   BAREMETAL, anything else POSIX. Two defined is an #error.
 *
 * CONFIGURATION
 * =============
 *   "global" = must be identical in every TU that includes iomem;
 *   "impl"   = only read in the IOMEM_IMPLEMENTATION TU.
 *
 *   IOMEM_CONFIG_HEADER "f.h"  global  included first; the place to put the
 *                                      macros below when -D is awkward (Kbuild)
 *   IOMEM_DEBUG                global  0/undefined = off (zero cost),
 *                                      defined empty or non-zero = on
 *   IOMEM_PANIC(msg)           impl    what a reported contract violation
 *                                      does; msg is a const char *. Default:
 *                                      POSIX prints and abort()s, Linux WARNs
 *                                      and the call returns its error, bare
 *                                      metal calls the panic hook of
 *                                      iomem_baremetal_init (or spins)
 *   IOMEM_ASSERT(cond)         impl    internal invariants; default reports
 *                                      through IOMEM_PANIC
 *   IOMEM_MALLOC(size)         global  replace the system allocator under the
 *   IOMEM_FREE(ptr)                    IOMalloc family; both or neither.
 *                                      IOMEM_MALLOC must return memory
 *                                      aligned to IOMEM_MALLOC_ALIGN
 *   IOMEM_MALLOC_ALIGN         global  alignment IOMEM_MALLOC guarantees
 *                                      (default: the platform's)
 *   IOMEM_PAGEABLE_MAX         global  largest IOMallocPageable request
 *                                      (default 512 MiB, as XNU on x86_64)
 *   IOMEM_API                  global  linkage of out-of-line functions
 *                                      (default extern; static with
 *                                      IOMEM_STATIC, for one-TU programs)
 *
 * DEBUG LAYER
 * ===========
 *   With IOMEM_DEBUG every block of the IOMalloc family is tracked in a side
 *   table (no headers are added, so layout does not change), and these IOKit
 *   contract violations - which XNU panics on - are reported through
 *   IOMEM_PANIC with a message naming the call, the pointer and the sizes:
 *     - a free with a size other than the allocation's  (the block is then
 *       freed with the recorded size, as XNU's tracking builds do);
 *     - a free through the wrong family, e.g. IOFree of an IOMallocAligned
 *       block (the block is then freed through its own family);
 *     - a double free, or a pointer iomem never allocated (nothing is freed).
 *   iomem_stats() reports live bytes/blocks per family and
 *   iomem_leak_report() lists what is still allocated.
 *
 * THREAD SAFETY
 * =============
 *   The IOMalloc family is thread-safe (as the system allocator is); the
 *   debug table is protected by one internal lock.
 *
 * LICENSE: MIT, see the end of this file.
 */
#ifndef IOMEM_H_INCLUDED
#define IOMEM_H_INCLUDED

/* >>config ================================================================ */

#ifdef IOMEM_CONFIG_HEADER
#include IOMEM_CONFIG_HEADER
#endif

#define IOMEM_VERSION_MAJOR 0
#define IOMEM_VERSION_MINOR 1
#define IOMEM_VERSION_PATCH 0
#define IOMEM_VERSION_STRING "0.1.0"

#if defined(IOMEM_DEBUG)
/* "#define IOMEM_DEBUG" (empty) means on; 0 means off. */
#  if (0 - IOMEM_DEBUG - 1) == 1
#    define IOMEM__DEBUG 1
#  elif IOMEM_DEBUG
#    define IOMEM__DEBUG 1
#  else
#    define IOMEM__DEBUG 0
#  endif
#else
#  define IOMEM__DEBUG 0
#endif

#if defined(IOMEM_MALLOC) != defined(IOMEM_FREE)
#  error "iomem: define both IOMEM_MALLOC and IOMEM_FREE, or neither"
#endif

#ifndef IOMEM_API
#  ifdef IOMEM_STATIC
#    define IOMEM_API static
#  else
#    define IOMEM_API extern
#  endif
#endif

/* Always "static inline": C99's plain inline emits no external definition,
 * and the kernel redefines inline. */
#define IOMEM_INLINE static inline
#if defined(__KERNEL__)
#  define IOMEM_FORCEINLINE static __always_inline
#elif defined(__GNUC__) || defined(__clang__)
#  define IOMEM_FORCEINLINE static inline __attribute__((always_inline))
#else
#  define IOMEM_FORCEINLINE static inline
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define IOMEM_LIKELY(x)   __builtin_expect(!!(x), 1)
#  define IOMEM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define IOMEM_LIKELY(x)   (x)
#  define IOMEM_UNLIKELY(x) (x)
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#  define IOMEM__STATIC_ASSERT(cond, msg) static_assert(cond, #msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#  define IOMEM__STATIC_ASSERT(cond, msg) _Static_assert(cond, #msg)
#else
#  define IOMEM__STATIC_ASSERT(cond, msg) \
	typedef char iomem__static_assert_##msg[(cond) ? 1 : -1]
#endif

/* >>backend-select ======================================================== */

#if (defined(IOMEM_BACKEND_POSIX) + defined(IOMEM_BACKEND_LINUX) + \
     defined(IOMEM_BACKEND_BAREMETAL)) > 1
#  error "iomem: more than one IOMEM_BACKEND_* is defined; define exactly one (POSIX, LINUX or BAREMETAL) or none for auto-detection"
#  define IOMEM__BACKEND_CONFLICT 1   /* include no backend: one clear error */
#endif
#if !defined(IOMEM_BACKEND_POSIX) && !defined(IOMEM_BACKEND_LINUX) && \
    !defined(IOMEM_BACKEND_BAREMETAL)
#  if defined(__KERNEL__)
#    define IOMEM_BACKEND_LINUX 1
#  elif defined(__STDC_HOSTED__) && __STDC_HOSTED__ == 0
#    define IOMEM_BACKEND_BAREMETAL 1
#  else
#    define IOMEM_BACKEND_POSIX 1
#  endif
#endif
#if defined(IOMEM_BACKEND_LINUX) && !defined(__KERNEL__)
#  error "iomem: IOMEM_BACKEND_LINUX is for kernel modules (Kbuild defines __KERNEL__); use IOMEM_BACKEND_POSIX in user space"
#endif
#if defined(IOMEM_BACKEND_POSIX) && defined(__STDC_HOSTED__) && __STDC_HOSTED__ == 0
#  error "iomem: IOMEM_BACKEND_POSIX needs a hosted C library; use IOMEM_BACKEND_BAREMETAL with -ffreestanding"
#endif

/* Nothing else is compiled after a backend error: one clear message. */
#ifndef IOMEM__BACKEND_CONFLICT

/* >>types ================================================================= */

#if defined(__KERNEL__)
#  include <linux/types.h>
#else
#  include <stddef.h>
#  include <stdint.h>
#  include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef uint8_t  UInt8;
typedef uint16_t UInt16;
typedef uint32_t UInt32;
typedef uint64_t UInt64;
typedef int8_t   SInt8;
typedef int16_t  SInt16;
typedef int32_t  SInt32;
typedef int64_t  SInt64;

typedef int32_t  kern_return_t;
typedef kern_return_t IOReturn;

typedef uint32_t IOOptionBits;
typedef IOOptionBits IODirection;
typedef uint32_t IOItemCount;
typedef uint32_t IOCacheMode;

/* Mach VM types: pointer-sized in the library's own address space. */
typedef uintptr_t vm_size_t;
typedef uintptr_t vm_offset_t;
typedef uintptr_t vm_address_t;
typedef uint64_t  mach_vm_address_t;
typedef uint64_t  mach_vm_size_t;
typedef uint64_t  mach_vm_offset_t;
typedef uint64_t  addr64_t;
typedef uint32_t  ppnum_t;          /* physical page number */

/* As on every 64-bit IOKit kernel, byte counts and physical addresses are
 * 64-bit on all targets (a 32-bit core may still see > 4 GiB via LPAE or an
 * IOMMU); virtual addresses are pointer-sized. */
typedef uint64_t  IOByteCount;
typedef uint32_t  IOByteCount32;
typedef uint64_t  IOByteCount64;
typedef uintptr_t IOVirtualAddress;
typedef uint64_t  IOPhysicalAddress;
typedef uint32_t  IOPhysicalAddress32;
typedef uint64_t  IOPhysicalAddress64;
typedef uint64_t  IOPhysicalLength;
typedef uint32_t  IOPhysicalLength32;
typedef uint64_t  IOPhysicalLength64;
typedef IOByteCount IORangeScalar;

typedef struct IOVirtualRange  { IOVirtualAddress  address; IOByteCount    length; } IOVirtualRange;
typedef struct IOAddressRange  { mach_vm_address_t address; mach_vm_size_t length; } IOAddressRange;
typedef struct IOPhysicalRange { IOPhysicalAddress address; IOByteCount    length; } IOPhysicalRange;

/* An address space. iomem has one of its own, kernel_task; other tasks exist
 * only where a backend can map into them (see iomem_map.h). */
struct iomem_task { int iomem__id; };      /* opaque: compare, don't look */
typedef struct iomem_task *task_t;
IOMEM_API struct iomem_task iomem_kernel_task;
#define kernel_task (&iomem_kernel_task)

/* Forward declarations of the object types the three headers define. */
typedef struct IOMapper IOMapper;
#define kIOMapperSystem ((IOMapper *)0)   /* "use the system mapper" */

/* >>ioreturn ============================================================== */

/* IOKit's common error space: sys_iokit | sub_iokit_common | code, i.e.
 * 0xE0000000 | code, written so every value is an int constant. */
#define sys_iokit             ((IOReturn)(0x38u << 26))
#define sub_iokit_common      ((IOReturn)0)
#define iokit_common_err(ret) ((IOReturn)(-0x20000000 + (ret)))

/* X(name, code, description) - one row per IOReturn IOKit defines. */
#define IOMEM_IORETURN_LIST(X)                                                   \
	X(kIOReturnSuccess,          0,                       "success")                             \
	X(kIOReturnError,            iokit_common_err(0x2bc), "general error")                       \
	X(kIOReturnNoMemory,         iokit_common_err(0x2bd), "can't allocate memory")               \
	X(kIOReturnNoResources,      iokit_common_err(0x2be), "resource shortage")                   \
	X(kIOReturnIPCError,         iokit_common_err(0x2bf), "error during IPC")                    \
	X(kIOReturnNoDevice,         iokit_common_err(0x2c0), "no such device")                      \
	X(kIOReturnNotPrivileged,    iokit_common_err(0x2c1), "privilege violation")                 \
	X(kIOReturnBadArgument,      iokit_common_err(0x2c2), "invalid argument")                    \
	X(kIOReturnLockedRead,       iokit_common_err(0x2c3), "device read locked")                  \
	X(kIOReturnLockedWrite,      iokit_common_err(0x2c4), "device write locked")                 \
	X(kIOReturnExclusiveAccess,  iokit_common_err(0x2c5), "exclusive access and device already open") \
	X(kIOReturnBadMessageID,     iokit_common_err(0x2c6), "sent/received messages had different msg_id") \
	X(kIOReturnUnsupported,      iokit_common_err(0x2c7), "unsupported function")                \
	X(kIOReturnVMError,          iokit_common_err(0x2c8), "misc. VM failure")                    \
	X(kIOReturnInternalError,    iokit_common_err(0x2c9), "internal error")                      \
	X(kIOReturnIOError,          iokit_common_err(0x2ca), "general I/O error")                   \
	X(kIOReturnCannotLock,       iokit_common_err(0x2cc), "can't acquire lock")                  \
	X(kIOReturnNotOpen,          iokit_common_err(0x2cd), "device not open")                     \
	X(kIOReturnNotReadable,      iokit_common_err(0x2ce), "read not supported")                  \
	X(kIOReturnNotWritable,      iokit_common_err(0x2cf), "write not supported")                 \
	X(kIOReturnNotAligned,       iokit_common_err(0x2d0), "alignment error")                     \
	X(kIOReturnBadMedia,         iokit_common_err(0x2d1), "media error")                         \
	X(kIOReturnStillOpen,        iokit_common_err(0x2d2), "device(s) still open")                \
	X(kIOReturnRLDError,         iokit_common_err(0x2d3), "rld failure")                         \
	X(kIOReturnDMAError,         iokit_common_err(0x2d4), "DMA failure")                         \
	X(kIOReturnBusy,             iokit_common_err(0x2d5), "device busy")                         \
	X(kIOReturnTimeout,          iokit_common_err(0x2d6), "I/O timeout")                         \
	X(kIOReturnOffline,          iokit_common_err(0x2d7), "device offline")                      \
	X(kIOReturnNotReady,         iokit_common_err(0x2d8), "not ready")                           \
	X(kIOReturnNotAttached,      iokit_common_err(0x2d9), "device not attached")                 \
	X(kIOReturnNoChannels,       iokit_common_err(0x2da), "no DMA channels left")                \
	X(kIOReturnNoSpace,          iokit_common_err(0x2db), "no space for data")                   \
	X(kIOReturnPortExists,       iokit_common_err(0x2dd), "port already exists")                 \
	X(kIOReturnCannotWire,       iokit_common_err(0x2de), "can't wire down physical memory")     \
	X(kIOReturnNoInterrupt,      iokit_common_err(0x2df), "no interrupt attached")               \
	X(kIOReturnNoFrames,         iokit_common_err(0x2e0), "no DMA frames enqueued")              \
	X(kIOReturnMessageTooLarge,  iokit_common_err(0x2e1), "message too large")                   \
	X(kIOReturnNotPermitted,     iokit_common_err(0x2e2), "not permitted")                       \
	X(kIOReturnNoPower,          iokit_common_err(0x2e3), "no power to device")                  \
	X(kIOReturnNoMedia,          iokit_common_err(0x2e4), "media not present")                   \
	X(kIOReturnUnformattedMedia, iokit_common_err(0x2e5), "media not formatted")                 \
	X(kIOReturnUnsupportedMode,  iokit_common_err(0x2e6), "no such mode")                        \
	X(kIOReturnUnderrun,         iokit_common_err(0x2e7), "data underrun")                       \
	X(kIOReturnOverrun,          iokit_common_err(0x2e8), "data overrun")                        \
	X(kIOReturnDeviceError,      iokit_common_err(0x2e9), "the device is not working properly")  \
	X(kIOReturnNoCompletion,     iokit_common_err(0x2ea), "a completion routine is required")    \
	X(kIOReturnAborted,          iokit_common_err(0x2eb), "operation aborted")                   \
	X(kIOReturnNoBandwidth,      iokit_common_err(0x2ec), "bus bandwidth would be exceeded")     \
	X(kIOReturnNotResponding,    iokit_common_err(0x2ed), "device not responding")               \
	X(kIOReturnIsoTooOld,        iokit_common_err(0x2ee), "isochronous I/O request for distant past") \
	X(kIOReturnIsoTooNew,        iokit_common_err(0x2ef), "isochronous I/O request for distant future") \
	X(kIOReturnNotFound,         iokit_common_err(0x2f0), "data was not found")                  \
	X(kIOReturnInvalid,          iokit_common_err(0x1),   "should never be seen")

#define IOMEM__IORETURN_ENUM(name, value, text) name = (value),
enum { IOMEM_IORETURN_LIST(IOMEM__IORETURN_ENUM) iomem__ioreturn_enum_end = 0 };
#undef IOMEM__IORETURN_ENUM

/**
 * IOReturnString - the IOKit name of a return code ("kIOReturnNoMemory").
 * @ret: any value.
 *
 * Never returns NULL. A code IOKit does not define gets a formatted fallback
 * ("IOReturn 0xe00002cb") placed in one of 8 rotating static buffers: copy it
 * if you keep it, or use iomem_ioreturn_format(). Thread-safe for names;
 * the fallback is safe for up to 8 concurrent unknown codes.
 */
IOMEM_API const char *IOReturnString(IOReturn ret);

/**
 * iomem_ioreturn_description - IOKit's one-line meaning of a code
 * ("can't allocate memory"), or "unknown IOReturn". Never NULL; thread-safe.
 */
IOMEM_API const char *iomem_ioreturn_description(IOReturn ret);

/**
 * iomem_ioreturn_format - reentrant form of IOReturnString.
 * @ret: any value. @buf/@cap: where to write; always NUL-terminated if cap > 0.
 *
 * Returns the length the full string needs (excluding the NUL), like
 * snprintf; 0 and nothing written when buf is NULL or cap is 0.
 */
IOMEM_API vm_size_t iomem_ioreturn_format(IOReturn ret, char *buf, vm_size_t cap);

/* >>constants ============================================================= */

/* Transfer direction (IODirection). In = device writes memory. */
enum {
	kIODirectionNone                  = 0x0,
	kIODirectionIn                    = 0x1,
	kIODirectionOut                   = 0x2,
	kIODirectionOutIn                 = kIODirectionOut | kIODirectionIn,
	kIODirectionInOut                 = kIODirectionIn | kIODirectionOut,
	/* prepare()-only bits */
	kIODirectionPrepareToPhys32       = 0x00000004,
	kIODirectionPrepareNoFault        = 0x00000008,
	kIODirectionPrepareReserved1      = 0x00000010,
	kIODirectionPrepareNoZeroFill     = 0x00000010,
	kIODirectionPrepareNonCoherent    = 0x00000020,
	kIODirectionPrepareAvoidThrottling = 0x00000100,
	/* complete()-only bits */
	kIODirectionCompleteWithError     = 0x00000040,
	kIODirectionCompleteWithDataValid = 0x00000080
};

/* IOMemoryDescriptor withOptions/initWithOptions options. NOT the same
 * namespace as the buffer options below: 0x10 is kIOMemoryTypeVirtual here
 * and kIOMemoryPhysicallyContiguous there. */
enum {
	kIOMemoryDirectionMask     = 0x00000007,
	kIOMemoryAutoPrepare       = 0x00000008,  /* private in IOKit, shared with BMD */
	kIOMemoryTypeVirtual       = 0x00000010,
	kIOMemoryTypePhysical      = 0x00000020,
	kIOMemoryTypeUPL           = 0x00000030,
	kIOMemoryTypePersistentMD  = 0x00000040,
	kIOMemoryTypeUIO           = 0x00000050,
#if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ >= 8
	kIOMemoryTypeVirtual64     = kIOMemoryTypeVirtual,
	kIOMemoryTypePhysical64    = kIOMemoryTypePhysical,
#else
	kIOMemoryTypeVirtual64     = 0x00000060,
	kIOMemoryTypePhysical64    = 0x00000070,
#endif
	kIOMemoryTypeMask          = 0x000000F0,
	kIOMemoryAsReference       = 0x00000100,
	kIOMemoryBufferPageable    = 0x00000400,
	kIOMemoryMapperNone        = 0x00000800,
	kIOMemoryHostOnly          = 0x00001000,
	kIOMemoryRedirected        = 0x00004000,  /* private state bit */
	kIOMemoryPreparedReadOnly  = 0x00008000,  /* private state bit */
	kIOMemoryPersistent        = 0x00010000,
	kIOMemoryMapCopyOnWrite    = 0x00020000,
	kIOMemoryRemote            = 0x00040000,
	kIOMemoryThreadSafe        = 0x00100000,
	kIOMemoryClearEncrypt      = 0x00200000,
	kIOMemoryBufferPurgeable   = 0x00400000,  /* private */
	kIOMemoryUseReserve        = 0x00800000,
	kIOMemoryBufferCacheMask   = 0x70000000,  /* private */
	kIOMemoryBufferCacheShift  = 28
};

/* IOBufferMemoryDescriptor options (a separate enum on purpose, see above).
 * Translate to descriptor options with iomem_buffer_options_to_memory(). */
enum {
	kIOMemoryPhysicallyContiguous     = 0x00000010,
	kIOMemoryPageable                 = 0x00000020,
	kIOMemoryPurgeable                = 0x00000040,
	kIOMemoryHostPhysicallyContiguous = 0x00000080,
	kIOMemorySharingTypeMask          = 0x000F0000,
	kIOMemoryUnshared                 = 0x00000000,
	kIOMemoryKernelUserShared         = 0x00010000,
	kIOBufferDescriptorMemoryFlags    = kIOMemoryDirectionMask | kIOMemoryAutoPrepare |
	                                    kIOMemoryThreadSafe | kIOMemoryClearEncrypt |
	                                    kIOMemoryMapperNone | kIOMemoryUseReserve
};

/**
 * iomem_buffer_options_to_memory - the descriptor options a buffer
 * descriptor created with buffer @options passes to its general layer: only
 * the kIOBufferDescriptorMemoryFlags bits survive, as in IOKit.
 */
IOMEM_INLINE IOOptionBits iomem_buffer_options_to_memory(IOOptionBits options)
{
	return options & (IOOptionBits)kIOBufferDescriptorMemoryFlags;
}

/* Cache modes (IOCacheMode) and the same values as map options (<< 8). */
enum {
	kIODefaultCache              = 0,
	kIOInhibitCache              = 1,
	kIOWriteThruCache            = 2,
	kIOCopybackCache             = 3,
	kIOWriteCombineCache         = 4,
	kIOCopybackInnerCache        = 5,
	kIOPostedWrite               = 6,
	kIORealTimeCache             = 7,
	kIOPostedReordered           = 8,
	kIOPostedCombinedReordered   = 9
};

enum {
	kIOMapAnywhere                = 0x00000001,
	kIOMapCacheMask               = 0x00000F00,
	kIOMapCacheShift              = 8,
	kIOMapDefaultCache            = kIODefaultCache            << kIOMapCacheShift,
	kIOMapInhibitCache            = kIOInhibitCache            << kIOMapCacheShift,
	kIOMapWriteThruCache          = kIOWriteThruCache          << kIOMapCacheShift,
	kIOMapCopybackCache           = kIOCopybackCache           << kIOMapCacheShift,
	kIOMapWriteCombineCache       = kIOWriteCombineCache       << kIOMapCacheShift,
	kIOMapCopybackInnerCache      = kIOCopybackInnerCache      << kIOMapCacheShift,
	kIOMapPostedWrite             = kIOPostedWrite             << kIOMapCacheShift,
	kIOMapRealTimeCache           = kIORealTimeCache           << kIOMapCacheShift,
	kIOMapPostedReordered         = kIOPostedReordered         << kIOMapCacheShift,
	kIOMapPostedCombinedReordered = kIOPostedCombinedReordered << kIOMapCacheShift,
	kIOMapUserOptionsMask         = 0x00000FFF,
	kIOMapReadOnly                = 0x00001000,
	kIOMapStatic                  = 0x01000000,
	kIOMapReference               = 0x02000000,
	kIOMapUnique                  = 0x04000000,
	kIOMap64Bit                   = 0x08000000,
	kIOMapPrefault                = 0x10000000,
	kIOMapOverwrite               = 0x20000000
};
/* Above INT_MAX, so not enumerators in portable C. */
#define kIOMapGuardedMask  ((IOOptionBits)0xC0000000u)
#define kIOMapGuardedSmall ((IOOptionBits)0x40000000u)
#define kIOMapGuardedLarge ((IOOptionBits)0x80000000u)

/* setPurgeable states, performOperation operations, preparation IDs. */
enum {
	kIOMemoryPurgeableKeepCurrent = 1,
	kIOMemoryPurgeableNonVolatile = 2,
	kIOMemoryPurgeableVolatile    = 3,
	kIOMemoryPurgeableEmpty       = 4
};
enum {
	kIOMemoryIncoherentIOFlush = 1,
	kIOMemoryIncoherentIOStore = 2,
	kIOMemoryClearEncrypted    = 50,
	kIOMemorySetEncrypted      = 51
};
enum {
	kIOPreparationIDUnprepared     = 0,
	kIOPreparationIDUnsupported    = 1,
	kIOPreparationIDAlwaysPrepared = 2
};

#ifdef __cplusplus
} /* extern "C" */
#endif

/* >>platform ============================================================== */
/*
 * Each backend header implements, as static inline functions, the part of the
 * platform contract the library uses (DESIGN.md §3):
 *
 *   IOMEM_MALLOC_ALIGN                  alignment of iomem__platform_malloc
 *   iomem__platform_malloc/calloc/free  wired general-purpose memory
 *   iomem__platform_alloc_pages(bytes, zero) / iomem__platform_free_pages(p, bytes)
 *                                       page-granular, page-aligned, pageable
 *   iomem__platform_page_size()         the CPU page size
 *   iomem__mutex, IOMEM__MUTEX_INITIALIZER(name), iomem__mutex_init/destroy/
 *                                       lock/unlock
 *   iomem__platform_log(msg), iomem__platform_panic(msg)
 *   iomem__memset/iomem__memcpy         (no libc on bare metal)
 *
 * Each backend header also documents the rest of the contract (translation,
 * wiring, physical access, cache maintenance, mapping, DMA-reachable memory,
 * the IOMMU) that the descriptor, DMA and mapping layers add.
 */
#if defined(IOMEM_BACKEND_POSIX)
#  include "backends/iomem_posix.h"
#elif defined(IOMEM_BACKEND_LINUX)
#  include "backends/iomem_linux.h"
#else
#  include "backends/iomem_baremetal.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* >>alloc ================================================================= */

#ifndef IOMEM_PAGEABLE_MAX
#  define IOMEM_PAGEABLE_MAX ((vm_size_t)512u << 20)
#endif

/* The allocation families the debug layer tracks separately. A block must be
 * freed through its own family. */
typedef enum iomem_alloc_family {
	IOMEM_ALLOC_MALLOC = 0,   /* IOMalloc, IOMallocZero       -> IOFree         */
	IOMEM_ALLOC_ALIGNED,      /* IOMallocAligned               -> IOFreeAligned  */
	IOMEM_ALLOC_PAGEABLE,     /* IOMallocPageable(Zero)        -> IOFreePageable */
	IOMEM_ALLOC_INTERNAL,     /* iomem's own objects (descriptors, commands...) */
	IOMEM_ALLOC_FAMILY_COUNT
} iomem_alloc_family;

/* Largest size any allocator accepts: like XNU, a size with the top bit set
 * (e.g. an overflowed count * size) is refused rather than attempted. */
#define IOMEM_ALLOC_SIZE_MAX (((vm_size_t)-1) >> 1)

/* Private header below an IOMallocAligned block (XNU's layout: two words
 * right below the returned pointer). */
typedef struct iomem__aligned_header {
	uintptr_t check;    /* mask ^ address ^ IOMEM__ALIGNED_MAGIC */
	uintptr_t back;     /* distance back to the system allocation */
} iomem__aligned_header;
#define IOMEM__ALIGNED_MAGIC ((uintptr_t)0x5a17c0de5a17c0deull)
#define IOMEM__ALIGNED_HDR \
	((sizeof(iomem__aligned_header) + IOMEM_MALLOC_ALIGN - 1) & ~(vm_size_t)(IOMEM_MALLOC_ALIGN - 1))

#if IOMEM__DEBUG
IOMEM_API void *iomem__debug_alloc(vm_size_t size, vm_offset_t alignment,
                                   iomem_alloc_family family, bool zero, const char *call);
IOMEM_API void  iomem__debug_free(void *address, vm_size_t size,
                                  iomem_alloc_family family, const char *call);
#endif
IOMEM_API void  iomem__report_bad_aligned_free(void *address, vm_size_t size, const char *call);

/* --- raw allocators (no tracking); the public calls below add the debug
 *     layer on top when IOMEM_DEBUG is on. ------------------------------ */

IOMEM_FORCEINLINE void *iomem__malloc_raw(vm_size_t size)
{
	if (IOMEM_UNLIKELY(size > IOMEM_ALLOC_SIZE_MAX))
		return NULL;
	return iomem__platform_malloc(size + (size == 0));   /* 0 -> unique pointer */
}

IOMEM_FORCEINLINE void *iomem__calloc_raw(vm_size_t size)
{
	if (IOMEM_UNLIKELY(size > IOMEM_ALLOC_SIZE_MAX))
		return NULL;
	return iomem__platform_calloc(size + (size == 0));
}

/* Alignment as IOKit treats it: rounded up to a power of two (0 and 1 mean
 * 1); one that does not fit 32 bits fails (returns 0). The result is at
 * least IOMEM_MALLOC_ALIGN, which the header placement needs. */
IOMEM_FORCEINLINE vm_size_t iomem__aligned_effective(vm_offset_t alignment)
{
	uint64_t a = (uint64_t)alignment;
	if (a <= IOMEM_MALLOC_ALIGN)
		return IOMEM_MALLOC_ALIGN;
	if (IOMEM_UNLIKELY(a > 0x80000000u))
		return 0;                                   /* 2^32 does not fit */
	a -= 1;
	a |= a >> 1; a |= a >> 2; a |= a >> 4; a |= a >> 8; a |= a >> 16;
	return (vm_size_t)(a + 1);
}

/**
 * iomem_malloc_aligned_footprint - bytes IOMallocAligned(@size, @alignment)
 * asks of the system allocator: size + header + (alignment - the system's
 * natural alignment), so the overhead is at most alignment + 16 bytes.
 * Returns 0 where IOMallocAligned would return NULL (size 0, alignment above
 * 2^31, overflow). Pure function; thread-safe.
 */
IOMEM_FORCEINLINE vm_size_t iomem_malloc_aligned_footprint(vm_size_t size, vm_offset_t alignment)
{
	vm_size_t align = iomem__aligned_effective(alignment);
	vm_size_t extra;
	if (IOMEM_UNLIKELY(size == 0 || align == 0))
		return 0;
	extra = IOMEM__ALIGNED_HDR + (align - IOMEM_MALLOC_ALIGN);
	if (IOMEM_UNLIKELY(size > IOMEM_ALLOC_SIZE_MAX - extra))
		return 0;
	return size + extra;
}

IOMEM_FORCEINLINE void *iomem__aligned_alloc_raw(vm_size_t size, vm_offset_t alignment)
{
	vm_size_t footprint = iomem_malloc_aligned_footprint(size, alignment);
	uintptr_t mask, raw, addr;
	iomem__aligned_header *hdr;
	if (IOMEM_UNLIKELY(footprint == 0))
		return NULL;
	raw = (uintptr_t)iomem__platform_malloc(footprint);
	if (IOMEM_UNLIKELY(raw == 0))
		return NULL;
	mask = (uintptr_t)iomem__aligned_effective(alignment) - 1;
	addr = (raw + IOMEM__ALIGNED_HDR + mask) & ~mask;
	hdr = (iomem__aligned_header *)addr - 1;
	hdr->back = addr - raw;
	hdr->check = mask ^ addr ^ IOMEM__ALIGNED_MAGIC;
	return (void *)addr;
}

/* Validates the header (XNU panics on an inconsistent one) and frees. The
 * check word is cleared first, so a second free of the same block is caught
 * even without IOMEM_DEBUG. */
IOMEM_FORCEINLINE void iomem__aligned_free_raw(void *address, vm_size_t size, const char *call)
{
	uintptr_t addr = (uintptr_t)address, mask, back;
	iomem__aligned_header *hdr;
	if (address == NULL)
		return;
	hdr = (iomem__aligned_header *)addr - 1;
	mask = hdr->check ^ addr ^ IOMEM__ALIGNED_MAGIC;
	back = hdr->back;
	if (IOMEM_UNLIKELY((mask & (mask + 1)) != 0 || mask > 0x7fffffffu || (addr & mask) != 0 ||
	                   back < IOMEM__ALIGNED_HDR || back - IOMEM__ALIGNED_HDR > mask)) {
		iomem__report_bad_aligned_free(address, size, call);
		return;
	}
	hdr->check = 0;
	iomem__platform_free((void *)(addr - back));
}

/* --- IOKit's allocation API ------------------------------------------- */

/**
 * IOMalloc - allocate wired memory from the general heap.
 * @size: bytes; 0 returns a unique pointer (XNU gives its smallest bucket).
 *
 * Returns +1 memory aligned to IOMEM_MALLOC_ALIGN, to be freed with
 * IOFree(ptr, size); NULL when out of memory or when size has its top bit
 * set (an overflowed computation). May block. Thread-safe.
 */
IOMEM_FORCEINLINE void *IOMalloc(vm_size_t size)
{
#if IOMEM__DEBUG
	return iomem__debug_alloc(size, 0, IOMEM_ALLOC_MALLOC, false, "IOMalloc");
#else
	return iomem__malloc_raw(size);
#endif
}

/**
 * IOMallocZero - IOMalloc, zero-filled. Same contract as IOMalloc.
 */
IOMEM_FORCEINLINE void *IOMallocZero(vm_size_t size)
{
#if IOMEM__DEBUG
	return iomem__debug_alloc(size, 0, IOMEM_ALLOC_MALLOC, true, "IOMallocZero");
#else
	return iomem__calloc_raw(size);
#endif
}

/**
 * IOFree - free memory from IOMalloc or IOMallocZero.
 * @address: the block, or NULL (then nothing happens).
 * @size: the size it was allocated with - part of IOKit's contract.
 *
 * With IOMEM_DEBUG a wrong size, a double free, a foreign pointer or a block
 * of another family is reported (see DEBUG LAYER). Thread-safe.
 */
IOMEM_FORCEINLINE void IOFree(void *address, vm_size_t size)
{
#if IOMEM__DEBUG
	iomem__debug_free(address, size, IOMEM_ALLOC_MALLOC, "IOFree");
#else
	(void)size;
	iomem__platform_free(address);
#endif
}

/**
 * IOMallocAligned - allocate wired memory aligned to @alignment.
 * @size: bytes; 0 returns NULL (as XNU).
 * @alignment: rounded up to a power of two; 0 and 1 mean no constraint;
 *             above 2^31 (not representable in 32 bits once rounded) -> NULL.
 *
 * Returns +1 memory to be freed with IOFreeAligned(ptr, size), or NULL. The
 * block carries XNU's two-word header just below it; the footprint is
 * iomem_malloc_aligned_footprint(). Thread-safe.
 *
 * Deviation from XNU, on purpose: XNU skips the header and takes whole VM
 * pages once size + header reaches a page, so the size given to
 * IOFreeAligned selects the free path and a wrong one corrupts memory. iomem
 * uses the header for every size: the size still belongs to the contract
 * (IOMEM_DEBUG checks it) but can no longer pick the wrong path.
 */
IOMEM_FORCEINLINE void *IOMallocAligned(vm_size_t size, vm_offset_t alignment)
{
#if IOMEM__DEBUG
	return iomem__debug_alloc(size, alignment, IOMEM_ALLOC_ALIGNED, false, "IOMallocAligned");
#else
	return iomem__aligned_alloc_raw(size, alignment);
#endif
}

/**
 * IOFreeAligned - free memory from IOMallocAligned.
 * @address: the block, or NULL (no-op). @size: its allocation size.
 *
 * The header is validated on every build: an inconsistent one (a foreign
 * pointer, a double free, an overwritten header) is reported through
 * IOMEM_PANIC and nothing is freed. IOMEM_DEBUG adds the size check.
 */
IOMEM_FORCEINLINE void IOFreeAligned(void *address, vm_size_t size)
{
#if IOMEM__DEBUG
	iomem__debug_free(address, size, IOMEM_ALLOC_ALIGNED, "IOFreeAligned");
#else
	iomem__aligned_free_raw(address, size, "IOFreeAligned");
#endif
}

/**
 * IOMallocPageable - allocate pageable (not wired) memory, whole pages.
 * @size: bytes, rounded up to pages; 0 is one page (as XNU on arm64).
 * @alignment: at most the page size (the result is always page-aligned);
 *             larger, or not representable in 32 bits -> NULL.
 *
 * Returns +1 zero-filled memory to be freed with IOFreePageable(ptr, size),
 * or NULL, also when size exceeds IOMEM_PAGEABLE_MAX. Such memory must be
 * wired (prepare() through a descriptor) before DMA. Thread-safe.
 */
IOMEM_API void *IOMallocPageable(vm_size_t size, vm_size_t alignment);

/** IOMallocPageableZero - IOMallocPageable, guaranteed zero-filled. */
IOMEM_API void *IOMallocPageableZero(vm_size_t size, vm_size_t alignment);

/**
 * IOFreePageable - free memory from IOMallocPageable(Zero).
 * @address: the block or NULL (no-op). @size: its allocation size, which
 * decides how many pages are released (checked with IOMEM_DEBUG).
 */
IOMEM_API void IOFreePageable(void *address, vm_size_t size);

/**
 * iomem_array_size - @count * @elem_size, or a size with the top bit set
 * (which every allocator refuses) when the product overflows. XNU's trick
 * for IONew; use it whenever a size is a product.
 */
IOMEM_FORCEINLINE vm_size_t iomem_array_size(vm_size_t elem_size, vm_size_t count)
{
	if (elem_size != 0 && count > IOMEM_ALLOC_SIZE_MAX / elem_size)
		return ~(vm_size_t)0;
	return elem_size * count;
}

/* IONew/IONewZero/IODelete: typed array allocation; each argument is
 * evaluated once. IODelete takes the same type and count as IONew. */
#define IONew(type, count)     ((type *)IOMalloc(iomem_array_size(sizeof(type), (count))))
#define IONewZero(type, count) ((type *)IOMallocZero(iomem_array_size(sizeof(type), (count))))
#define IODelete(ptr, type, count) IOFree((ptr), iomem_array_size(sizeof(type), (count)))

/* Library-internal objects (descriptors, commands, allocators...) come from
 * the IOMalloc heap too but are tracked as their own family, so a leaked
 * object shows up by name in iomem_leak_report(). */
IOMEM_FORCEINLINE void *iomem__alloc_internal(vm_size_t size, const char *what)
{
#if IOMEM__DEBUG
	return iomem__debug_alloc(size, 0, IOMEM_ALLOC_INTERNAL, true, what);
#else
	(void)what;
	return iomem__calloc_raw(size);
#endif
}

IOMEM_FORCEINLINE void iomem__free_internal(void *address, vm_size_t size, const char *what)
{
#if IOMEM__DEBUG
	iomem__debug_free(address, size, IOMEM_ALLOC_INTERNAL, what);
#else
	(void)size; (void)what;
	iomem__platform_free(address);
#endif
}

/* >>debug ================================================================= */

/** Counters of one allocation family (see iomem_stats). */
typedef struct iomem_alloc_family_stats {
	uint64_t live_bytes;     /* requested bytes still allocated */
	uint64_t live_blocks;
	uint64_t peak_bytes;     /* highest live_bytes seen */
	uint64_t total_allocs;   /* successful allocations */
	uint64_t total_frees;    /* successful frees */
	uint64_t failed_allocs;  /* allocations that returned NULL */
} iomem_alloc_family_stats;

typedef struct iomem_alloc_stats {
	iomem_alloc_family_stats family[IOMEM_ALLOC_FAMILY_COUNT];
	uint64_t reports;        /* contract violations reported so far */
} iomem_alloc_stats;

/**
 * iomem_stats - snapshot of the debug layer's counters.
 * @out: filled in (zeroed first).
 *
 * Returns kIOReturnSuccess; kIOReturnBadArgument if @out is NULL;
 * kIOReturnUnsupported (with @out zeroed) when IOMEM_DEBUG is off, since
 * nothing is tracked then. Thread-safe.
 */
IOMEM_API IOReturn iomem_stats(iomem_alloc_stats *out);

/** Called once per live block by iomem_leak_report. @call names the
 * allocating call ("IOMalloc", or the object kind for internal blocks). */
typedef void (*iomem_leak_fn)(void *context, const void *address, vm_size_t size,
                              iomem_alloc_family family, const char *call);

/**
 * iomem_leak_report - list every block the debug layer still tracks.
 * @fn: called per block (under the debug lock: it must not allocate or free
 *      through iomem); NULL prints one line per block through the
 *      platform log (stderr, printk, or the bare-metal log hook).
 * @context: passed to @fn.
 *
 * Returns the number of live blocks (0 when IOMEM_DEBUG is off).
 */
IOMEM_API vm_size_t iomem_leak_report(iomem_leak_fn fn, void *context);

/** iomem_alloc_family_name - "IOMalloc", "IOMallocAligned",
 * "IOMallocPageable", "internal", or "unknown". Never NULL. */
IOMEM_API const char *iomem_alloc_family_name(iomem_alloc_family family);

/* >>range ================================================================= */
/* IORangeAllocator: see the IORangeAllocator issue. */

/* >>desc ================================================================== */
/*
 * IOMemoryDescriptor and its kinds (reference §1). One struct type; the
 * IOKit class names are typedefs of it, so any kind passes where an
 * IOMemoryDescriptor * is expected. Built-in kinds dispatch on a tag with a
 * switch (getPhysicalSegment of a general/buffer/device descriptor is fully
 * inline); a driver's own kind plugs in an iomem_md_ops table.
 *
 * OWNERSHIP: every factory returns +1 (or NULL); IOMemoryDescriptor_release
 * drops one. A sub retains its parent, a multi its children, an interleaved
 * its slices. Getters return +0.
 *
 * THREAD SAFETY (as IOKit): retain/release, getPhysicalSegment and the
 * accessors are safe from any thread on a descriptor that is not being
 * prepared or completed at the same time. prepare/complete/readBytes/
 * writeBytes serialise on a per-object lock only with kIOMemoryThreadSafe
 * (sub descriptors always have it); otherwise the caller serialises them
 * against each other. Buffer accessors (setLength, appendBytes, ...) are
 * never locked: the caller serialises.
 *
 * THE WALK ENGINE: prepare compresses the wired pages into extents (runs of
 * physically contiguous memory), 16 bytes each: {physical address, end
 * offset}. getPhysicalSegment is O(1) for a sequential walk (a hint, then
 * hint + 1) and O(log extents) at a random offset (branch-free binary
 * search). iomem_md_extents() exposes them to the DMA layer.
 *
 * DEVIATIONS from IOKit (deliberate, see the issue and reference §8.3):
 *   - no system mapper exists yet: every address is CPU-physical and the
 *     options of getPhysicalSegment are ignored;
 *   - only kernel_task has virtual memory (another task -> NULL);
 *     kIOMemoryTypeUPL/UIO/PersistentMD are not supported (-> NULL);
 *   - ranges are always copied, also with kIOMemoryAsReference / multi
 *     asReference (the caller's array may be freed after creation);
 *   - a general descriptor's segments merge every physically contiguous run,
 *     across range boundaries too (IOKit merges across ranges only for
 *     physical descriptors); multi/interleaved never merge across children;
 *   - physical page numbers are not limited to 32 bits;
 *   - sub-range and slice bounds are overflow-checked (IOKit: not);
 *   - interleaved: a NULL length pointer is allowed, a failed prepare rolls
 *     back the slices already prepared, prepare nests like a counter, and
 *     clearMemoryDescriptors clears the prepared state (the three upstream
 *     bugs of reference §1.7, fixed);
 *   - withCapacity(contiguous) with a non-power-of-two capacity rounds the
 *     alignment request up to a power of two.
 */

typedef struct IOMemoryDescriptor IOMemoryDescriptor;
typedef IOMemoryDescriptor IOGeneralMemoryDescriptor;
typedef IOMemoryDescriptor IOBufferMemoryDescriptor;
typedef IOMemoryDescriptor IODeviceMemory;
typedef IOMemoryDescriptor IOSubMemoryDescriptor;
typedef IOMemoryDescriptor IOMultiMemoryDescriptor;
typedef IOMemoryDescriptor IOInterleavedMemoryDescriptor;

/** The kind of a descriptor (iomem_md_kind()). */
typedef enum iomem_md_kind {
	IOMEM_MD_GENERAL = 0,     /* IOGeneralMemoryDescriptor (virtual or physical) */
	IOMEM_MD_BUFFER,          /* IOBufferMemoryDescriptor */
	IOMEM_MD_DEVICE,          /* IODeviceMemory (physical, mapper-none) */
	IOMEM_MD_SUB,             /* IOSubMemoryDescriptor */
	IOMEM_MD_MULTI,           /* IOMultiMemoryDescriptor */
	IOMEM_MD_INTERLEAVED,     /* IOInterleavedMemoryDescriptor */
	IOMEM_MD_CUSTOM           /* a driver's own kind (iomem_md_withOps) */
} iomem_md_kind;

/** One extent: the bytes [previous extent's end, end) of the descriptor
 * live at phys... physically contiguous. 16 bytes. */
typedef struct iomem_md_extent {
	IOPhysicalAddress phys;
	IOByteCount       end;
} iomem_md_extent;

/** A driver's own descriptor kind. Every hook gets the descriptor; its
 * context is iomem_md_getContext(md). */
typedef struct iomem_md_ops {
	const char *name;
	/* required: as IOMemoryDescriptor_getPhysicalSegment (length may be NULL) */
	addr64_t (*getPhysicalSegment)(IOMemoryDescriptor *md, IOByteCount offset,
	                               IOByteCount *length, IOOptionBits options);
	IOReturn (*prepare)(IOMemoryDescriptor *md, IODirection direction);   /* NULL: success */
	IOReturn (*complete)(IOMemoryDescriptor *md, IODirection direction);  /* NULL: success */
	IOReturn (*setPurgeable)(IOMemoryDescriptor *md, IOOptionBits newState,
	                         IOOptionBits *oldState);                     /* NULL: unsupported */
	IOReturn (*getPageCounts)(IOMemoryDescriptor *md, IOByteCount *resident,
	                          IOByteCount *dirty);                        /* NULL: not ready */
	uint64_t (*getPreparationID)(IOMemoryDescriptor *md);                 /* NULL: unsupported */
	void     (*free)(IOMemoryDescriptor *md);                             /* NULL: nothing */
} iomem_md_ops;

typedef struct iomem__md_slice {       /* interleaved slice */
	IOMemoryDescriptor *md;
	IOByteCount offset, length;
} iomem__md_slice;

/* Keep away from the fields: they are private (iomem__), visible only so
 * the hot path can be inline. */
struct IOMemoryDescriptor {
	const iomem_md_extent *iomem__extents;   /* NULL: not prepared / not general */
	uint32_t               iomem__extent_count;
	uint32_t               iomem__hint;      /* last extent found (relaxed atomic) */
	IOByteCount            iomem__length;
	/* Fixed stride, set with the extents (iomem__md_set_stride): when
	 * every extent but the first and last is 2^shift bytes, the one
	 * holding offset o is (o + bias) >> shift, found with no hint (whose
	 * store and reload chain sequential calls). With bias 0, offsets
	 * below ext_limit (the last multiple of 2^shift <= length, else 0)
	 * take a shorter path: no bias, no clip at the length. */
	IOByteCount            iomem__ext_limit;
	uint32_t               iomem__ext_bias;  /* 2^shift - length of extent 0 */
	uint32_t               iomem__ext_mask;  /* 2^shift - 1 */
	uint8_t                iomem__kind;
	uint8_t                iomem__physical;  /* general: physical ranges */
	uint8_t                iomem__ext_shift; /* 0: extents not uniform */
	uint16_t               iomem__mapper_options;
	uint32_t               iomem__refcount;
	IOOptionBits           iomem__flags;
	IOOptionBits           iomem__tag;
	uint32_t               iomem__prepare_count;
	uint32_t               iomem__auto_prepared;   /* prepares the object owns */
	uint64_t               iomem__preparation_id;
	const iomem_md_ops    *iomem__ops;
	iomem__mutex          *iomem__lock;      /* kIOMemoryThreadSafe only */
	union {
		struct {                         /* general, buffer, device */
			IOAddressRange *ranges;
			uint32_t        count;
			IOAddressRange  inline_range;
			/* buffer only */
			iomem__ram      ram;
			vm_size_t       capacity;
			IOOptionBits    purgeable_state;
		} g;
		struct { IOMemoryDescriptor *parent; IOByteCount offset; } sub;
		struct { IOMemoryDescriptor **child; IOByteCount *end; uint32_t count; } multi;
		struct { iomem__md_slice *slice; IOByteCount *end; uint32_t count, capacity; } il;
		struct { void *context; } custom;
	} iomem__u;
};

#if defined(IOMEM_BACKEND_BAREMETAL)
/* an aligned 32-bit volatile access is single-copy atomic on every core
 * iomem targets, and needs no libatomic on Cortex-M0 */
#  define IOMEM__LOAD_RELAXED32(p)     (*(volatile const uint32_t *)(p))
#  define IOMEM__STORE_RELAXED32(p, v) (*(volatile uint32_t *)(p) = (v))
#elif defined(__GNUC__) || defined(__clang__)
#  define IOMEM__LOAD_RELAXED32(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#  define IOMEM__STORE_RELAXED32(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#  define IOMEM__LOAD_RELAXED32(p)     (*(p))
#  define IOMEM__STORE_RELAXED32(p, v) (*(p) = (v))
#endif

/* ---- the walk engine ---------------------------------------------------- */

/**
 * iomem_extents_find - index of the extent holding byte @offset.
 * @e/@n: the extents (n >= 1); @offset < e[n-1].end (caller checks);
 * @hint: a likely index (tried, then hint + 1), any value is safe.
 * O(1) for a hit, else a branch-free binary search, O(log n). Pure.
 */
IOMEM_FORCEINLINE uint32_t iomem_extents_find(const iomem_md_extent *e, uint32_t n,
                                              uint32_t hint, IOByteCount offset)
{
	uint32_t len = n;
	if (IOMEM_LIKELY(hint < n)) {
		IOByteCount start = hint ? e[hint - 1].end : 0;
		if (offset >= start) {
			if (offset < e[hint].end)
				return hint;
			if (hint + 1 < n && offset < e[hint + 1].end)
				return hint + 1;
		}
	}
	{
		uint32_t idx = 0;
		while (len > 1) {
			uint32_t half = len / 2;
			/* branch-free: a mask instead of a (mispredicted) branch */
			idx += half & (uint32_t)(0u - (uint32_t)(e[idx + half - 1].end <= offset));
			len -= half;
		}
		return idx;
	}
}

/**
 * iomem_md_walk - explicit walk state over a descriptor's extents, for
 * callers that walk many segments (IODMACommand, cursors): kept in the
 * caller's registers, so a step is one index increment and two loads, with
 * no hint stored in the descriptor. Not an IOKit API.
 */
typedef struct iomem_md_walk {
	const iomem_md_extent *e;
	uint32_t n, i;
	IOByteCount off, length;
} iomem_md_walk;

/**
 * iomem_md_walk_init - start a walk of a prepared general/buffer/device
 * descriptor at @offset. Returns false (and an empty walk) for other kinds,
 * an unprepared descriptor or @offset >= length: use getPhysicalSegment
 * then. O(log extents). The descriptor must stay prepared during the walk.
 */
IOMEM_INLINE bool iomem_md_walk_init(iomem_md_walk *w, const IOMemoryDescriptor *md, IOByteCount offset)
{
	w->e = md->iomem__extents;
	w->n = w->e ? md->iomem__extent_count : 0;
	w->length = md->iomem__length;
	w->off = offset;
	w->i = 0;
	if (w->e == NULL || offset >= w->length) {
		w->n = 0;
		return false;
	}
	if (md->iomem__ext_shift != 0)     /* fixed stride: O(1), see getPhysicalSegment */
		w->i = (uint32_t)((offset + md->iomem__ext_bias) >> md->iomem__ext_shift);
	else
		w->i = iomem_extents_find(w->e, w->n, 0, offset);
	return true;
}

/**
 * iomem_md_walk_next - the next maximal segment: its physical address in
 * *@pa and its length returned; 0 at the end. O(1).
 */
IOMEM_FORCEINLINE IOByteCount iomem_md_walk_next(iomem_md_walk *w, addr64_t *pa)
{
	IOByteCount start, end;
	if (w->off >= w->length || w->i >= w->n)
		return 0;
	start = w->i ? w->e[w->i - 1].end : 0;
	end = w->e[w->i].end < w->length ? w->e[w->i].end : w->length;
	*pa = w->e[w->i].phys + (w->off - start);
	start = end - w->off;
	w->off = end;
	w->i++;
	return start;
}

IOMEM_API addr64_t iomem__md_segment_slow(IOMemoryDescriptor *md, IOByteCount offset,
                                          IOByteCount *length, IOOptionBits options);

/**
 * IOMemoryDescriptor_getPhysicalSegment - the physical segment at @offset.
 * @length: out, may be NULL: bytes physically contiguous from @offset, up
 *          to the end of the descriptor (general kinds: the maximal run).
 * @options: accepted and ignored (no system mapper yet: always CPU-physical,
 *           as with kIOMemoryMapperNone).
 * Returns the physical address, or 0 with *length = 0 at or past the end,
 * or for a virtual descriptor that is not prepared (a contract violation
 * XNU panics on; reported under IOMEM_DEBUG). Thread-safe on a prepared
 * descriptor; O(1) sequential, O(log extents) random.
 */
IOMEM_FORCEINLINE addr64_t IOMemoryDescriptor_getPhysicalSegment(IOMemoryDescriptor *md, IOByteCount offset,
                                                                 IOByteCount *length, IOOptionBits options)
{
	const iomem_md_extent *e = md->iomem__extents;
	IOByteCount mdlen = md->iomem__length;
	if (IOMEM_LIKELY(offset < md->iomem__ext_limit)) {
		/* fixed stride from offset 0 (bias 0), below the last multiple of
		 * 2^shift <= length: index and length are arithmetic, only phys
		 * is loaded, so a sequential walk's next offset never waits on
		 * memory (the hint path's store and reload cost ~11 cycles a
		 * call), and no clip at the length is needed */
		IOByteCount mask = md->iomem__ext_mask, w = offset & mask;
		if (length != NULL)
			*length = mask + 1 - w;                /* to e[i].end */
		return e[offset >> md->iomem__ext_shift].phys + w;
	}
	if (md->iomem__ext_shift != 0 && offset < mdlen) {
		/* any fixed stride: as above in t = offset + bias, where extents
		 * start at multiples of 2^shift; t < extent_count << shift < 2^63 */
		IOByteCount mask = md->iomem__ext_mask, t = offset + md->iomem__ext_bias, w = t & mask;
		if (length != NULL) {
			IOByteCount seg = mask + 1 - w;        /* to e[i].end */
			*length = seg < mdlen - offset ? seg : mdlen - offset;
		}
		/* offset - extent start is w, except in extent 0, which starts at
		 * 0 rather than at -bias: there w = offset + bias >= offset */
		return e[t >> md->iomem__ext_shift].phys + (w < offset ? w : offset);
	}
	if (IOMEM_LIKELY(e != NULL && offset < mdlen)) {
		uint32_t h = IOMEM__LOAD_RELAXED32(&md->iomem__hint), n = md->iomem__extent_count, i;
		IOByteCount start, end;
		addr64_t pa;
		if (IOMEM_LIKELY(h + 1 < n && offset == e[h].end)) {
			/* sequential walk: the segment right after the last one */
			i = h + 1;
			start = offset;
		} else {
			i = iomem_extents_find(e, n, h, offset);
			start = i ? e[i - 1].end : 0;
		}
		end = e[i].end;
		pa = e[i].phys + (offset - start);
		IOMEM__STORE_RELAXED32(&md->iomem__hint, i);
		if (length != NULL)
			*length = (end < mdlen ? end : mdlen) - offset;
		return pa;
	}
	{
		/* a local, so the caller's length is never address-taken and can
		 * stay in a register on the inline paths */
		IOByteCount l;
		addr64_t pa = iomem__md_segment_slow(md, offset, &l, options);
		if (length != NULL)
			*length = l;
		return pa;
	}
}

/** IOMemoryDescriptor_getPhysicalAddress - getPhysicalSegment(md, 0, NULL, 0). */
IOMEM_FORCEINLINE IOPhysicalAddress IOMemoryDescriptor_getPhysicalAddress(IOMemoryDescriptor *md)
{
	return IOMemoryDescriptor_getPhysicalSegment(md, 0, NULL, 0);
}

/**
 * iomem_md_extents - the extents of a prepared general/buffer/device
 * descriptor (+0, valid until its final complete), or NULL (other kinds,
 * not prepared, length 0). @count receives their number (may be NULL).
 */
IOMEM_INLINE const iomem_md_extent *iomem_md_extents(const IOMemoryDescriptor *md, uint32_t *count)
{
	if (count != NULL)
		*count = md->iomem__extents ? md->iomem__extent_count : 0;
	return md->iomem__extents;
}

/* ---- base accessors (plain; thread-safe reads) -------------------------- */

/** IOMemoryDescriptor_getDirection - the direction bits of the flags. */
IOMEM_INLINE IODirection IOMemoryDescriptor_getDirection(const IOMemoryDescriptor *md)
{
	return md->iomem__flags & (IOOptionBits)kIOMemoryDirectionMask;
}
/** IOMemoryDescriptor_getLength - total bytes described. */
IOMEM_INLINE IOByteCount IOMemoryDescriptor_getLength(const IOMemoryDescriptor *md)
{
	return md->iomem__length;
}
/** IOMemoryDescriptor_setTag / getTag - an opaque 32-bit value, never interpreted. */
IOMEM_INLINE void IOMemoryDescriptor_setTag(IOMemoryDescriptor *md, IOOptionBits tag) { md->iomem__tag = tag; }
IOMEM_INLINE IOOptionBits IOMemoryDescriptor_getTag(const IOMemoryDescriptor *md) { return md->iomem__tag; }
/** IOMemoryDescriptor_getFlags - options, direction and private state bits. */
IOMEM_INLINE uint64_t IOMemoryDescriptor_getFlags(const IOMemoryDescriptor *md) { return md->iomem__flags; }
/** IOMemoryDescriptor_setMapperOptions / getMapperOptions - stored, not interpreted yet. */
IOMEM_INLINE void IOMemoryDescriptor_setMapperOptions(IOMemoryDescriptor *md, uint16_t options) { md->iomem__mapper_options = options; }
IOMEM_INLINE uint16_t IOMemoryDescriptor_getMapperOptions(const IOMemoryDescriptor *md) { return md->iomem__mapper_options; }
/** iomem_md_kind - which kind @md is (IODeviceMemory reports IOMEM_MD_DEVICE). */
IOMEM_INLINE iomem_md_kind iomem_md_kind_of(const IOMemoryDescriptor *md) { return (iomem_md_kind)md->iomem__kind; }

/* ---- reference counting ------------------------------------------------- */

/** IOMemoryDescriptor_retain - +1. NULL is a no-op. Thread-safe. */
IOMEM_API void IOMemoryDescriptor_retain(IOMemoryDescriptor *md);
/**
 * IOMemoryDescriptor_release - -1; the last release frees the descriptor
 * and releases what it retained. NULL is a no-op. Thread-safe. Releasing a
 * descriptor that is still prepared (more prepare than complete calls) is
 * reported under IOMEM_DEBUG; it is then completed (as IOKit's free()).
 */
IOMEM_API void IOMemoryDescriptor_release(IOMemoryDescriptor *md);
/** iomem_md_getRetainCount - the current reference count (diagnostics). */
IOMEM_API uint32_t iomem_md_getRetainCount(IOMemoryDescriptor *md);

/* ---- general descriptor factories (all +1 or NULL) ---------------------- */

/**
 * IOMemoryDescriptor_withAddress - kernel_task virtual memory, prepared at
 * creation (kIOMemoryAutoPrepare). NULL when @address is NULL with a
 * non-zero @length, when the range overflows, or when wiring fails.
 */
IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withAddress(void *address, IOByteCount length,
                                                             IODirection direction);
/** IOMemoryDescriptor_withPhysicalAddress - one physical range (always prepared). */
IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withPhysicalAddress(IOPhysicalAddress address,
                                                                     IOByteCount length,
                                                                     IODirection direction);
/**
 * IOMemoryDescriptor_withAddressRange - one range: virtual in @task, or
 * physical when @task is NULL. @options: direction and descriptor options.
 * Virtual descriptors must be prepared before use (not auto-prepared).
 */
IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withAddressRange(mach_vm_address_t address,
                                                                  mach_vm_size_t length,
                                                                  IOOptionBits options, task_t task);
/**
 * IOMemoryDescriptor_withAddressRanges - @count ranges, concatenated.
 * NULL for a NULL array, count 0, a total length that overflows, a range
 * that wraps, or a task other than kernel_task / NULL.
 */
IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withAddressRanges(IOAddressRange *ranges, UInt32 count,
                                                                   IOOptionBits options, task_t task);
/**
 * IOMemoryDescriptor_withOptions - the general factory. @buffers is an
 * IOVirtualRange array (kIOMemoryTypeVirtual), IOAddressRange
 * (kIOMemoryTypeVirtual64/Physical64) or IOPhysicalRange
 * (kIOMemoryTypePhysical); virtual types need a task, physical ones none.
 * @offset is unused (UPL only); @mapper is ignored (no mapper yet).
 */
IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withOptions(void *buffers, UInt32 count, UInt32 offset,
                                                             task_t task, IOOptionBits options,
                                                             IOMapper *mapper);
/**
 * IOMemoryDescriptor_withPersistentMemoryDescriptor - @original retained
 * (its backing never changes here) when it is a general descriptor created
 * with kIOMemoryPersistent; else NULL.
 */
IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withPersistentMemoryDescriptor(IOMemoryDescriptor *original);

/* ---- base operations ---------------------------------------------------- */

/**
 * IOMemoryDescriptor_prepare - wire the memory for I/O (a nesting count:
 * only the first prepare wires, building the extents).
 * @direction: kIODirectionNone = the descriptor's own direction.
 * Returns kIOReturnSuccess; kIOReturnNotWritable when wired Out-only and In
 * is asked; kIOReturnNoResources / kIOReturnNoMemory / kIOReturnCannotWire
 * when wiring fails (nothing stays wired). Physical descriptors: success.
 */
IOMEM_API IOReturn IOMemoryDescriptor_prepare(IOMemoryDescriptor *md, IODirection direction);
/**
 * IOMemoryDescriptor_complete - undo one prepare; the last one unwires.
 * Always kIOReturnSuccess (as IOKit); without a matching prepare nothing
 * happens and IOMEM_DEBUG reports "IOMemoryDescriptor_complete".
 */
IOMEM_API IOReturn IOMemoryDescriptor_complete(IOMemoryDescriptor *md, IODirection direction);
/**
 * IOMemoryDescriptor_readBytes - copy @length bytes at @offset to @bytes.
 * Returns the bytes copied: 0 when the range is not inside the descriptor
 * (modern IOKit: all or nothing), when @bytes is NULL, or when the memory
 * is not prepared; fewer when a segment is not RAM.
 */
IOMEM_API IOByteCount IOMemoryDescriptor_readBytes(IOMemoryDescriptor *md, IOByteCount offset,
                                                   void *bytes, IOByteCount length);
/**
 * IOMemoryDescriptor_writeBytes - copy @length bytes from @bytes (NULL:
 * zero-fill) to @offset. Same range rule; 0 when wired read-only (prepared
 * for kIODirectionOut only).
 */
IOMEM_API IOByteCount IOMemoryDescriptor_writeBytes(IOMemoryDescriptor *md, IOByteCount offset,
                                                    const void *bytes, IOByteCount length);
/**
 * IOMemoryDescriptor_performOperation - kIOMemoryIncoherentIOFlush/Store
 * (cache maintenance per segment: a no-op on this coherent host) and the
 * encrypt toggles (no-ops). @length is clamped to getLength() - @offset.
 * kIOReturnUnsupported for another op; kIOReturnUnderrun when the walk
 * stops early (e.g. @offset past the end).
 */
IOMEM_API IOReturn IOMemoryDescriptor_performOperation(IOMemoryDescriptor *md, IOOptionBits options,
                                                       IOByteCount offset, IOByteCount length);
/**
 * IOMemoryDescriptor_setPurgeable - purgeable buffers (kIOMemoryPurgeable):
 * sets @newState (kIOMemoryPurgeableKeepCurrent only reads), previous state
 * in @oldState (may be NULL); Empty discards (zero-fills) the contents.
 * kIOReturnBadArgument for an unknown state; kIOReturnUnsupported for memory
 * that is not purgeable. Sub forwards, multi aggregates.
 */
IOMEM_API IOReturn IOMemoryDescriptor_setPurgeable(IOMemoryDescriptor *md, IOOptionBits newState,
                                                   IOOptionBits *oldState);
/**
 * IOMemoryDescriptor_getPageCounts - pages resident and dirty (either may be
 * NULL). Virtual memory: every page spanned is resident and counted dirty.
 * kIOReturnNotReady for physical and interleaved descriptors (no VM object).
 */
IOMEM_API IOReturn IOMemoryDescriptor_getPageCounts(IOMemoryDescriptor *md, IOByteCount *residentPageCount,
                                                    IOByteCount *dirtyPageCount);
/**
 * IOMemoryDescriptor_getPreparationID - a unique 64-bit id for the current
 * preparation (changes after the final complete), or
 * kIOPreparationIDUnprepared / kIOPreparationIDUnsupported.
 */
IOMEM_API uint64_t IOMemoryDescriptor_getPreparationID(IOMemoryDescriptor *md);

/* ---- a driver's own kind ------------------------------------------------ */

/**
 * iomem_md_withOps - a descriptor of a driver-defined kind: @ops (kept, must
 * outlive it; getPhysicalSegment required) and @context (iomem_md_getContext).
 * @options: direction and descriptor options. +1 or NULL.
 */
IOMEM_API IOMemoryDescriptor *iomem_md_withOps(const iomem_md_ops *ops, void *context,
                                               IOByteCount length, IOOptionBits options);
/** iomem_md_getContext - the context of a custom descriptor (else NULL). */
IOMEM_API void *iomem_md_getContext(IOMemoryDescriptor *md);

/* ---- IOBufferMemoryDescriptor ------------------------------------------- */

/**
 * IOBufferMemoryDescriptor_inTaskWithPhysicalMask - a buffer that owns
 * zero-filled memory of @capacity bytes (length = capacity), wired and
 * prepared unless kIOMemoryPageable. @options: BUFFER options
 * (kIOMemoryPhysicallyContiguous, kIOMemoryPageable, kIOMemoryPurgeable, ...
 * plus direction). @physicalMask: 0 = none; else the alignment is its lowest
 * set bit (at least a page) and every byte lies at or below
 * mask | (alignment - 1), physically contiguous.
 * NULL for capacity 0, a task other than kernel_task, or a mask that cannot
 * be met. Memory: one page-granular block per buffer.
 */
IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_inTaskWithPhysicalMask(task_t inTask,
        IOOptionBits options, mach_vm_size_t capacity, mach_vm_address_t physicalMask);
/** IOBufferMemoryDescriptor_inTaskWithOptions - @alignment (1 = none; >
 * page forces physical contiguity). See inTaskWithPhysicalMask. */
IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_inTaskWithOptions(task_t inTask,
        IOOptionBits options, vm_size_t capacity, vm_offset_t alignment);
/** IOBufferMemoryDescriptor_inTaskWithOptionsTagged - the VM tags are ignored. */
IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_inTaskWithOptionsTagged(task_t inTask,
        IOOptionBits options, vm_size_t capacity, vm_offset_t alignment, uint32_t kernTag, uint32_t userTag);
/** IOBufferMemoryDescriptor_withOptions - inTaskWithOptions(kernel_task, ...). */
IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_withOptions(IOOptionBits options,
        vm_size_t capacity, vm_offset_t alignment);
/** IOBufferMemoryDescriptor_withCapacity - @direction; @contiguous uses
 * alignment = capacity (rounded up to a power of two). */
IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_withCapacity(vm_size_t capacity,
        IODirection direction, bool contiguous);
/** IOBufferMemoryDescriptor_withBytes - a buffer of @length bytes copied
 * from @bytes (NULL bytes or length 0 -> NULL). */
IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_withBytes(const void *bytes, vm_size_t length,
        IODirection direction, bool contiguous);
/** IOBufferMemoryDescriptor_setLength - ignored when @length > capacity. Caller serialises. */
IOMEM_API void IOBufferMemoryDescriptor_setLength(IOBufferMemoryDescriptor *bmd, vm_size_t length);
/** IOBufferMemoryDescriptor_getCapacity - the requested capacity. */
IOMEM_API vm_size_t IOBufferMemoryDescriptor_getCapacity(IOBufferMemoryDescriptor *bmd);
/** IOBufferMemoryDescriptor_setDirection - overwrite the direction bits. */
IOMEM_API void IOBufferMemoryDescriptor_setDirection(IOBufferMemoryDescriptor *bmd, IODirection direction);
/** IOBufferMemoryDescriptor_getBytesNoCopy - the buffer's address (+0). */
IOMEM_API void *IOBufferMemoryDescriptor_getBytesNoCopy(IOBufferMemoryDescriptor *bmd);
/** IOBufferMemoryDescriptor_getBytesNoCopyRange - address of @start, or NULL
 * unless start < length and start + len <= length (no overflow). */
IOMEM_API void *IOBufferMemoryDescriptor_getBytesNoCopyRange(IOBufferMemoryDescriptor *bmd,
                                                             vm_size_t start, vm_size_t len);
/** IOBufferMemoryDescriptor_appendBytes - copy min(@length, capacity -
 * length) bytes at the end and grow; true (IOKit truncates silently);
 * false only for NULL @bytes with a non-zero @length (IOKit would crash). */
IOMEM_API bool IOBufferMemoryDescriptor_appendBytes(IOBufferMemoryDescriptor *bmd, const void *bytes,
                                                    vm_size_t length);

/* ---- IODeviceMemory ----------------------------------------------------- */

typedef struct IODeviceMemory_InitElement {
	IOPhysicalAddress start;
	IOPhysicalLength  length;
	IOOptionBits      tag;
} IODeviceMemory_InitElement;

/** IODeviceMemory_withRange - physical range, direction None, kIOMemoryMapperNone. +1 or NULL. */
IOMEM_API IODeviceMemory *IODeviceMemory_withRange(IOPhysicalAddress start, IOPhysicalLength length);
/** IODeviceMemory_withSubRange - a sub descriptor of @of, direction None. */
IOMEM_API IODeviceMemory *IODeviceMemory_withSubRange(IODeviceMemory *of, IOPhysicalAddress offset,
                                                      IOPhysicalLength length);
/**
 * IODeviceMemory_arrayFromList - one descriptor per element, tag set from it,
 * returned as a +1 C array of @count +1 descriptors (IOKit: an OSArray);
 * free with iomem_device_memory_array_release(array, count). NULL (and
 * nothing allocated) when @count is 0, @list is NULL or any element fails.
 */
IOMEM_API IODeviceMemory **IODeviceMemory_arrayFromList(const IODeviceMemory_InitElement list[], IOItemCount count);
/** iomem_device_memory_array_release - release each element and the array. */
IOMEM_API void iomem_device_memory_array_release(IODeviceMemory **array, IOItemCount count);

/* ---- IOSubMemoryDescriptor ---------------------------------------------- */

/**
 * IOSubMemoryDescriptor_withSubRange - bytes [@offset, @offset + @length)
 * of @of (retained; its tag copied). Flags: direction | kIOMemoryThreadSafe.
 * prepare/complete wire the whole parent. NULL when @of is NULL or the range
 * is outside the parent (overflow-checked). Zero length is allowed.
 */
IOMEM_API IOSubMemoryDescriptor *IOSubMemoryDescriptor_withSubRange(IOMemoryDescriptor *of, IOByteCount offset,
                                                                    IOByteCount length, IOOptionBits options);

/* ---- IOMultiMemoryDescriptor -------------------------------------------- */

/**
 * IOMultiMemoryDescriptor_withDescriptors - @descriptors concatenated
 * (each retained; the array is copied even with @asReference). Tag = first
 * non-zero child tag. NULL for a NULL array, count 0, a NULL child, a
 * total length that overflows, or children that disagree on pageability.
 */
IOMEM_API IOMultiMemoryDescriptor *IOMultiMemoryDescriptor_withDescriptors(IOMemoryDescriptor **descriptors,
        UInt32 withCount, IODirection withDirection, bool asReference);

/* ---- IOInterleavedMemoryDescriptor -------------------------------------- */

/** IOInterleavedMemoryDescriptor_withCapacity - room for @capacity slices
 * (0 or too large -> NULL). Length 0 until slices are added. */
IOMEM_API IOInterleavedMemoryDescriptor *IOInterleavedMemoryDescriptor_withCapacity(IOByteCount capacity,
        IODirection direction);
/**
 * IOInterleavedMemoryDescriptor_setMemoryDescriptor - append the slice
 * [@offset, @offset + @length) of @descriptor (retained). false when the
 * object is prepared or full, @descriptor is NULL, the slice is outside it
 * or the total length would overflow. Caller serialises.
 */
IOMEM_API bool IOInterleavedMemoryDescriptor_setMemoryDescriptor(IOInterleavedMemoryDescriptor *imd,
        IOMemoryDescriptor *descriptor, IOByteCount offset, IOByteCount length);
/** IOInterleavedMemoryDescriptor_clearMemoryDescriptors - complete what is
 * prepared, release every slice, length 0; @direction != None replaces
 * the direction. */
IOMEM_API void IOInterleavedMemoryDescriptor_clearMemoryDescriptors(IOInterleavedMemoryDescriptor *imd,
        IODirection direction);


#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* !IOMEM__BACKEND_CONFLICT */
#endif /* IOMEM_H_INCLUDED */

/* >>implementation ======================================================== */

#if defined(IOMEM_IMPLEMENTATION) && !defined(IOMEM__IMPLEMENTATION_INCLUDED) && \
    !defined(IOMEM__BACKEND_CONFLICT)
#define IOMEM__IMPLEMENTATION_INCLUDED 1

#ifndef IOMEM_PANIC
#  define IOMEM_PANIC(msg) iomem__platform_panic(msg)
#endif
/* Internal helpers: file-local, and quiet when a configuration leaves one
 * unused. Tests may redefine it (to nothing) to reach them. */
#ifndef IOMEM__PRIVATE
#  if defined(__GNUC__) || defined(__clang__)
#    define IOMEM__PRIVATE static __attribute__((unused))
#  else
#    define IOMEM__PRIVATE static
#  endif
#endif
#ifndef IOMEM_ASSERT
#  define IOMEM_ASSERT(cond) \
	((cond) ? (void)0 : iomem__assert_failed(#cond, __FILE__, __LINE__))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#ifndef IOMEM_STATIC   /* with IOMEM_STATIC the declaration above defines it */
struct iomem_task iomem_kernel_task;
#endif

/* >>impl-format: a tiny formatter (no libc on bare metal, none in reports).
 * Conversions: %s (const char *), %p (void *), %x / %u (unsigned long long,
 * hex with 0x / decimal), %% . */

#if defined(IOMEM_BACKEND_BAREMETAL) && (defined(__GNUC__) || defined(__clang__))
/* the builtins, so bare metal needs no header beyond the three it allows */
typedef __builtin_va_list iomem__va_list;
#  define IOMEM__VA_START(ap, last) __builtin_va_start(ap, last)
#  define IOMEM__VA_ARG(ap, type)   __builtin_va_arg(ap, type)
#  define IOMEM__VA_END(ap)         __builtin_va_end(ap)
#else
#  if defined(__KERNEL__)
#    include <linux/stdarg.h>
#  else
#    include <stdarg.h>
#  endif
typedef va_list iomem__va_list;
#  define IOMEM__VA_START(ap, last) va_start(ap, last)
#  define IOMEM__VA_ARG(ap, type)   va_arg(ap, type)
#  define IOMEM__VA_END(ap)         va_end(ap)
#endif

typedef struct iomem__fmt_buf { char *buf; vm_size_t cap, len; } iomem__fmt_buf;

IOMEM__PRIVATE void iomem__fmt_putc(iomem__fmt_buf *b, char c)
{
	if (b->len + 1 < b->cap)
		b->buf[b->len] = c;
	b->len++;
}

IOMEM__PRIVATE void iomem__fmt_num(iomem__fmt_buf *b, unsigned long long v, unsigned base, bool prefix)
{
	char tmp[24];
	int n = 0;
	if (prefix) { iomem__fmt_putc(b, '0'); iomem__fmt_putc(b, 'x'); }
	do {
		unsigned d = (unsigned)(v % base);
		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v != 0);
	while (n > 0)
		iomem__fmt_putc(b, tmp[--n]);
}

IOMEM__PRIVATE vm_size_t iomem__vformat(char *buf, vm_size_t cap, const char *fmt, iomem__va_list ap)
{
	iomem__fmt_buf b;
	b.buf = buf; b.cap = buf ? cap : 0; b.len = 0;
	for (; *fmt; fmt++) {
		const char *s;
		if (*fmt != '%') { iomem__fmt_putc(&b, *fmt); continue; }
		switch (*++fmt) {
		case 's':
			for (s = IOMEM__VA_ARG(ap, const char *), s = s ? s : "(null)"; *s; s++)
				iomem__fmt_putc(&b, *s);
			break;
		case 'p': iomem__fmt_num(&b, (unsigned long long)(uintptr_t)IOMEM__VA_ARG(ap, void *), 16, true); break;
		case 'x': iomem__fmt_num(&b, IOMEM__VA_ARG(ap, unsigned long long), 16, true); break;
		case 'u': iomem__fmt_num(&b, IOMEM__VA_ARG(ap, unsigned long long), 10, false); break;
		case '%': iomem__fmt_putc(&b, '%'); break;
		default:  iomem__fmt_putc(&b, '?'); if (!*fmt) fmt--; break;
		}
	}
	if (b.cap > 0)
		b.buf[b.len < b.cap ? b.len : b.cap - 1] = '\0';
	return b.len;
}

IOMEM__PRIVATE vm_size_t iomem__format(char *buf, vm_size_t cap, const char *fmt, ...)
{
	iomem__va_list ap;
	vm_size_t n;
	IOMEM__VA_START(ap, fmt);
	n = iomem__vformat(buf, cap, fmt, ap);
	IOMEM__VA_END(ap);
	return n;
}

/* Contract violations: formatted, counted, and handed to IOMEM_PANIC. */
IOMEM__PRIVATE void iomem__debug_count_report(void);

IOMEM__PRIVATE void iomem__report(const char *fmt, ...)
{
	char msg[256];
	iomem__va_list ap;
	IOMEM__VA_START(ap, fmt);
	iomem__vformat(msg, sizeof msg, fmt, ap);
	IOMEM__VA_END(ap);
	iomem__debug_count_report();
	IOMEM_PANIC(msg);
}

IOMEM__PRIVATE void iomem__assert_failed(const char *cond, const char *file, int line)
{
	iomem__report("assertion failed: %s (%s:%u)", cond, file, (unsigned long long)line);
}

/* >>impl-ioreturn */

IOMEM_API const char *IOReturnString(IOReturn ret)
{
	static char fallback[8][24];
	static unsigned next;
	unsigned slot;
	switch (ret) {
#define IOMEM__IORETURN_NAME(name, value, text) case name: return #name;
	IOMEM_IORETURN_LIST(IOMEM__IORETURN_NAME)
#undef IOMEM__IORETURN_NAME
	default: break;
	}
#if defined(__GNUC__) || defined(__clang__)
	slot = __atomic_fetch_add(&next, 1u, __ATOMIC_RELAXED) & 7u;
#else
	slot = next++ & 7u;
#endif
	iomem_ioreturn_format(ret, fallback[slot], sizeof fallback[slot]);
	return fallback[slot];
}

IOMEM_API const char *iomem_ioreturn_description(IOReturn ret)
{
	switch (ret) {
#define IOMEM__IORETURN_TEXT(name, value, text) case name: return text;
	IOMEM_IORETURN_LIST(IOMEM__IORETURN_TEXT)
#undef IOMEM__IORETURN_TEXT
	default: return "unknown IOReturn";
	}
}

IOMEM_API vm_size_t iomem_ioreturn_format(IOReturn ret, char *buf, vm_size_t cap)
{
	if (buf == NULL || cap == 0)
		return 0;
	switch (ret) {
#define IOMEM__IORETURN_FMT(name, value, text) case name: return iomem__format(buf, cap, "%s", #name);
	IOMEM_IORETURN_LIST(IOMEM__IORETURN_FMT)
#undef IOMEM__IORETURN_FMT
	default:
		return iomem__format(buf, cap, "IOReturn %x", (unsigned long long)(uint32_t)ret);
	}
}

/* >>impl-debug: the tracking table.
 * An open-addressing hash keyed by address (linear probing, backward-shift
 * deletion, so no tombstones), plus a ring of recently freed blocks that lets
 * a report tell "double free" from "never allocated". Grows at 50% load; the
 * table's own memory comes straight from the platform (untracked). */

#if IOMEM__DEBUG

typedef struct iomem__dbg_entry {
	const void *address;         /* NULL = empty slot */
	vm_size_t   size;
	const char *call;            /* the allocating call */
	unsigned    family;
} iomem__dbg_entry;

typedef struct iomem__dbg_freed {
	const void *address;
	const char *call;            /* the freeing call */
} iomem__dbg_freed;

#define IOMEM__DBG_FREED_RING 64

static iomem__mutex iomem__dbg_lock = IOMEM__MUTEX_INITIALIZER(iomem__dbg_lock);
static struct {
	iomem__dbg_entry   *slots;
	vm_size_t           capacity;  /* power of two, or 0 */
	vm_size_t           count;
	iomem__dbg_freed    freed[IOMEM__DBG_FREED_RING];
	unsigned            freed_next;
	iomem_alloc_stats   stats;
} iomem__dbg;   /* zero-initialised: empty table */

IOMEM__PRIVATE vm_size_t iomem__dbg_hash(const void *address, vm_size_t capacity)
{
	uint64_t h = (uint64_t)(uintptr_t)address;
	h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33;
	return (vm_size_t)h & (capacity - 1);
}

/* Index of @address, or capacity when absent. Lock held. */
IOMEM__PRIVATE vm_size_t iomem__dbg_find(const void *address)
{
	vm_size_t i;
	if (iomem__dbg.capacity == 0)
		return 0;
	for (i = iomem__dbg_hash(address, iomem__dbg.capacity);
	     iomem__dbg.slots[i].address != NULL; i = (i + 1) & (iomem__dbg.capacity - 1))
		if (iomem__dbg.slots[i].address == address)
			return i;
	return iomem__dbg.capacity;
}

IOMEM__PRIVATE void iomem__dbg_place(iomem__dbg_entry *slots, vm_size_t capacity, const iomem__dbg_entry *e)
{
	vm_size_t i = iomem__dbg_hash(e->address, capacity);
	while (slots[i].address != NULL)
		i = (i + 1) & (capacity - 1);
	slots[i] = *e;
}

/* Makes room for one more entry. Allocates outside the lock (the kernel's
 * lock is a spinlock), so it is entered and left with the lock held. */
IOMEM__PRIVATE bool iomem__dbg_reserve(void)
{
	while ((iomem__dbg.count + 1) * 2 > iomem__dbg.capacity) {
		vm_size_t want = iomem__dbg.capacity ? iomem__dbg.capacity * 2 : 256, i;
		iomem__dbg_entry *slots, *old;
		vm_size_t old_cap;
		iomem__mutex_unlock(&iomem__dbg_lock);
		slots = (iomem__dbg_entry *)iomem__platform_calloc(want * sizeof *slots);
		iomem__mutex_lock(&iomem__dbg_lock);
		if (slots == NULL)
			return false;
		if (want <= iomem__dbg.capacity) {       /* another thread grew it */
			iomem__mutex_unlock(&iomem__dbg_lock);
			iomem__platform_free(slots);
			iomem__mutex_lock(&iomem__dbg_lock);
			continue;
		}
		old = iomem__dbg.slots;
		old_cap = iomem__dbg.capacity;
		for (i = 0; i < old_cap; i++)
			if (old[i].address != NULL)
				iomem__dbg_place(slots, want, &old[i]);
		iomem__dbg.slots = slots;
		iomem__dbg.capacity = want;
		if (old != NULL) {
			iomem__mutex_unlock(&iomem__dbg_lock);
			iomem__platform_free(old);
			iomem__mutex_lock(&iomem__dbg_lock);
		}
	}
	return true;
}

/* Backward-shift deletion keeps every probe chain intact. Lock held. */
IOMEM__PRIVATE void iomem__dbg_remove_at(vm_size_t i)
{
	vm_size_t mask = iomem__dbg.capacity - 1, j = i;
	iomem__dbg.slots[i].address = NULL;
	for (;;) {
		vm_size_t home;
		j = (j + 1) & mask;
		if (iomem__dbg.slots[j].address == NULL)
			break;
		home = iomem__dbg_hash(iomem__dbg.slots[j].address, iomem__dbg.capacity);
		/* move j back to i if its home is not in (i, j] cyclically */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			iomem__dbg.slots[i] = iomem__dbg.slots[j];
			iomem__dbg.slots[j].address = NULL;
			i = j;
		}
	}
	iomem__dbg.count--;
}

IOMEM__PRIVATE void iomem__debug_count_report(void)
{
	iomem__mutex_lock(&iomem__dbg_lock);
	iomem__dbg.stats.reports++;
	iomem__mutex_unlock(&iomem__dbg_lock);
}

IOMEM__PRIVATE void *iomem__family_alloc(iomem_alloc_family family, vm_size_t size, vm_offset_t alignment, bool zero);
IOMEM__PRIVATE void  iomem__family_free(iomem_alloc_family family, void *address, vm_size_t size);

IOMEM_API void *iomem__debug_alloc(vm_size_t size, vm_offset_t alignment,
                                   iomem_alloc_family family, bool zero, const char *call)
{
	iomem_alloc_family_stats *st = &iomem__dbg.stats.family[family];
	void *p = iomem__family_alloc(family, size, alignment, zero);
	iomem__dbg_entry e;
	unsigned k;
	iomem__mutex_lock(&iomem__dbg_lock);
	if (p == NULL || !iomem__dbg_reserve()) {
		st->failed_allocs++;
		iomem__mutex_unlock(&iomem__dbg_lock);
		if (p != NULL)
			iomem__family_free(family, p, size);
		return NULL;
	}
	e.address = p; e.size = size; e.call = call; e.family = (unsigned)family;
	iomem__dbg_place(iomem__dbg.slots, iomem__dbg.capacity, &e);
	iomem__dbg.count++;
	for (k = 0; k < IOMEM__DBG_FREED_RING; k++)      /* address reused */
		if (iomem__dbg.freed[k].address == p)
			iomem__dbg.freed[k].address = NULL;
	st->live_bytes += size;
	st->live_blocks++;
	st->total_allocs++;
	if (st->live_bytes > st->peak_bytes)
		st->peak_bytes = st->live_bytes;
	iomem__mutex_unlock(&iomem__dbg_lock);
	return p;
}

IOMEM_API void iomem__debug_free(void *address, vm_size_t size,
                                 iomem_alloc_family family, const char *call)
{
	vm_size_t i;
	iomem__dbg_entry e;
	unsigned k;
	const char *freed_by = NULL;
	if (address == NULL)
		return;
	iomem__mutex_lock(&iomem__dbg_lock);
	i = iomem__dbg_find(address);
	if (i == iomem__dbg.capacity) {
		for (k = 0; k < IOMEM__DBG_FREED_RING; k++)
			if (iomem__dbg.freed[k].address == address)
				freed_by = iomem__dbg.freed[k].call;
		iomem__mutex_unlock(&iomem__dbg_lock);
		if (freed_by != NULL)
			iomem__report("%s(%p, %u): double free (the block was already freed by %s)",
			              call, address, (unsigned long long)size, freed_by);
		else
			iomem__report("%s(%p, %u): pointer was never allocated by iomem",
			              call, address, (unsigned long long)size);
		return;
	}
	e = iomem__dbg.slots[i];
	iomem__dbg_remove_at(i);
	iomem__dbg.freed[iomem__dbg.freed_next].address = address;
	iomem__dbg.freed[iomem__dbg.freed_next].call = call;
	iomem__dbg.freed_next = (iomem__dbg.freed_next + 1) % IOMEM__DBG_FREED_RING;
	iomem__dbg.stats.family[e.family].live_bytes -= e.size;
	iomem__dbg.stats.family[e.family].live_blocks--;
	iomem__dbg.stats.family[e.family].total_frees++;
	iomem__mutex_unlock(&iomem__dbg_lock);

	/* Report, then free with what was recorded: nothing leaks, nothing is
	 * freed through the wrong allocator. */
	if (e.family != (unsigned)family)
		iomem__report("%s(%p, %u): block was allocated by %s (%u bytes); free it through its own family",
		              call, address, (unsigned long long)size, e.call, (unsigned long long)e.size);
	else if (e.size != size)
		iomem__report("%s(%p, %u): size does not match the allocation size %u (allocated by %s)",
		              call, address, (unsigned long long)size, (unsigned long long)e.size, e.call);
	iomem__family_free((iomem_alloc_family)e.family, address, e.size);
}

IOMEM_API IOReturn iomem_stats(iomem_alloc_stats *out)
{
	if (out == NULL)
		return kIOReturnBadArgument;
	iomem__mutex_lock(&iomem__dbg_lock);
	*out = iomem__dbg.stats;
	iomem__mutex_unlock(&iomem__dbg_lock);
	return kIOReturnSuccess;
}

IOMEM_API vm_size_t iomem_leak_report(iomem_leak_fn fn, void *context)
{
	vm_size_t i, n = 0;
	iomem__mutex_lock(&iomem__dbg_lock);
	for (i = 0; i < iomem__dbg.capacity; i++) {
		const iomem__dbg_entry *e = &iomem__dbg.slots[i];
		if (e->address == NULL)
			continue;
		n++;
		if (fn != NULL) {
			fn(context, e->address, e->size, (iomem_alloc_family)e->family, e->call);
		} else {
			char line[160];
			iomem__format(line, sizeof line, "iomem: leak: %u bytes at %p from %s (%s)",
			              (unsigned long long)e->size, e->address, e->call,
			              iomem_alloc_family_name((iomem_alloc_family)e->family));
			iomem__platform_log(line);
		}
	}
	iomem__mutex_unlock(&iomem__dbg_lock);
	return n;
}

#else /* !IOMEM__DEBUG */

IOMEM__PRIVATE void iomem__debug_count_report(void) {}

IOMEM_API IOReturn iomem_stats(iomem_alloc_stats *out)
{
	if (out == NULL)
		return kIOReturnBadArgument;
	iomem__memset(out, 0, sizeof *out);
	return kIOReturnUnsupported;
}

IOMEM_API vm_size_t iomem_leak_report(iomem_leak_fn fn, void *context)
{
	(void)fn; (void)context;
	return 0;
}

#endif /* IOMEM__DEBUG */

IOMEM_API const char *iomem_alloc_family_name(iomem_alloc_family family)
{
	switch (family) {
	case IOMEM_ALLOC_MALLOC:   return "IOMalloc";
	case IOMEM_ALLOC_ALIGNED:  return "IOMallocAligned";
	case IOMEM_ALLOC_PAGEABLE: return "IOMallocPageable";
	case IOMEM_ALLOC_INTERNAL: return "internal";
	default:                   return "unknown";
	}
}

/* >>impl-alloc */

IOMEM_API void iomem__report_bad_aligned_free(void *address, vm_size_t size, const char *call)
{
	iomem__report("%s(%p, %u): not a live IOMallocAligned block (header inconsistent: "
	              "foreign pointer, double free or overwritten memory); nothing freed",
	              call, address, (unsigned long long)size);
}

IOMEM__PRIVATE void *iomem__pageable_alloc_raw(vm_size_t size, vm_size_t alignment, bool zero)
{
	vm_size_t page = iomem__platform_page_size();
	/* page < 2^32, so this also refuses alignments that do not fit 32 bits
	 * (written without a 64-bit compare: -Wtype-limits on 32-bit targets) */
	if (alignment > page || size > IOMEM_PAGEABLE_MAX)
		return NULL;
	size = (size + (size == 0) + page - 1) & ~(page - 1);
	return iomem__platform_alloc_pages(size, zero);
}

IOMEM__PRIVATE void iomem__pageable_free_raw(void *address, vm_size_t size)
{
	vm_size_t page = iomem__platform_page_size();
	if (address == NULL)
		return;
	iomem__platform_free_pages(address, (size + (size == 0) + page - 1) & ~(page - 1));
}

#if IOMEM__DEBUG
IOMEM__PRIVATE void *iomem__family_alloc(iomem_alloc_family family, vm_size_t size, vm_offset_t alignment, bool zero)
{
	switch (family) {
	case IOMEM_ALLOC_ALIGNED:  return iomem__aligned_alloc_raw(size, alignment);
	case IOMEM_ALLOC_PAGEABLE: return iomem__pageable_alloc_raw(size, alignment, zero);
	default:                   return zero ? iomem__calloc_raw(size) : iomem__malloc_raw(size);
	}
}

IOMEM__PRIVATE void iomem__family_free(iomem_alloc_family family, void *address, vm_size_t size)
{
	switch (family) {
	case IOMEM_ALLOC_ALIGNED:  iomem__aligned_free_raw(address, size, "IOFreeAligned"); break;
	case IOMEM_ALLOC_PAGEABLE: iomem__pageable_free_raw(address, size); break;
	default:                   iomem__platform_free(address); break;
	}
}
#endif

IOMEM_API void *IOMallocPageable(vm_size_t size, vm_size_t alignment)
{
#if IOMEM__DEBUG
	return iomem__debug_alloc(size, alignment, IOMEM_ALLOC_PAGEABLE, true, "IOMallocPageable");
#else
	return iomem__pageable_alloc_raw(size, alignment, true);
#endif
}

IOMEM_API void *IOMallocPageableZero(vm_size_t size, vm_size_t alignment)
{
#if IOMEM__DEBUG
	return iomem__debug_alloc(size, alignment, IOMEM_ALLOC_PAGEABLE, true, "IOMallocPageableZero");
#else
	return iomem__pageable_alloc_raw(size, alignment, true);
#endif
}

IOMEM_API void IOFreePageable(void *address, vm_size_t size)
{
#if IOMEM__DEBUG
	iomem__debug_free(address, size, IOMEM_ALLOC_PAGEABLE, "IOFreePageable");
#else
	iomem__pageable_free_raw(address, size);
#endif
}

/* >>impl-desc: IOMemoryDescriptor and its kinds. */

#if defined(IOMEM_BACKEND_POSIX)
#  define IOMEM__POSIX_IMPLEMENTATION 1
#  include "backends/iomem_posix.h"
#endif

#define IOMEM__MD_NAME "IOMemoryDescriptor"
#define IOMEM__MD_IS_GENERAL(md) ((md)->iomem__kind <= IOMEM_MD_DEVICE)

static iomem__mutex iomem__md_id_lock = IOMEM__MUTEX_INITIALIZER(iomem__md_id_lock);
static uint64_t iomem__md_next_id;

IOMEM__PRIVATE uint64_t iomem__md_new_id(void)
{
	uint64_t id;
	iomem__mutex_lock(&iomem__md_id_lock);
	if (iomem__md_next_id == 0)
		iomem__md_next_id = (uint64_t)1 << 32;      /* as XNU's gIOMDPreparationID */
	id = iomem__md_next_id++;
	iomem__mutex_unlock(&iomem__md_id_lock);
	return id;
}

IOMEM__PRIVATE void iomem__md_lock(IOMemoryDescriptor *md)
{
	if (md->iomem__lock != NULL)
		iomem__mutex_lock(md->iomem__lock);
}

IOMEM__PRIVATE void iomem__md_unlock(IOMemoryDescriptor *md)
{
	if (md->iomem__lock != NULL)
		iomem__mutex_unlock(md->iomem__lock);
}

IOMEM__PRIVATE unsigned iomem__page_shift(void)
{
	vm_size_t p = iomem__platform_page_size();
	unsigned s = 0;
	while (((vm_size_t)1 << s) < p)
		s++;
	return s;
}

/* A new descriptor of @kind, refcount 1, lock if kIOMemoryThreadSafe. */
IOMEM__PRIVATE IOMemoryDescriptor *iomem__md_alloc(iomem_md_kind kind, IOOptionBits flags)
{
	IOMemoryDescriptor *md = (IOMemoryDescriptor *)iomem__alloc_internal(sizeof *md, IOMEM__MD_NAME);
	if (md == NULL)
		return NULL;
	md->iomem__kind = (uint8_t)kind;
	md->iomem__refcount = 1;
	md->iomem__flags = flags;
	if (flags & kIOMemoryThreadSafe) {
		md->iomem__lock = (iomem__mutex *)iomem__alloc_internal(sizeof *md->iomem__lock, "IOMemoryDescriptor lock");
		if (md->iomem__lock == NULL || !iomem__mutex_init(md->iomem__lock)) {
			if (md->iomem__lock != NULL)
				iomem__free_internal(md->iomem__lock, sizeof *md->iomem__lock, "IOMemoryDescriptor lock");
			iomem__free_internal(md, sizeof *md, IOMEM__MD_NAME);
			return NULL;
		}
	}
	return md;
}

/* ---- extents ---------------------------------------------------------- */

/* Pages spanned by one range (0 for an empty range). */
IOMEM__PRIVATE vm_size_t iomem__range_pages(const IOAddressRange *r, vm_size_t page)
{
	uint64_t first, last;
	if (r->length == 0)
		return 0;
	first = r->address & ~(uint64_t)(page - 1);
	last = (r->address + r->length - 1) & ~(uint64_t)(page - 1);
	return (vm_size_t)((last - first) / page + 1);
}

/* Extent builder: append @len bytes at @phys, merging with the last extent
 * when contiguous. @out NULL = count only. */
typedef struct iomem__xb {
	iomem_md_extent *out;
	uint32_t n;
	IOByteCount off;
	IOPhysicalAddress next_phys;   /* end of the last extent */
} iomem__xb;

IOMEM__PRIVATE void iomem__xb_add(iomem__xb *b, IOPhysicalAddress phys, IOByteCount len)
{
	if (len == 0)
		return;
	if (b->n > 0 && phys == b->next_phys) {
		if (b->out)
			b->out[b->n - 1].end += len;
	} else {
		if (b->out) {
			b->out[b->n].phys = phys;
			b->out[b->n].end = b->off + len;
		}
		b->n++;
	}
	b->off += len;
	b->next_phys = phys + len;
}

IOMEM__PRIVATE void iomem__md_free_extents(IOMemoryDescriptor *md)
{
	if (md->iomem__extents != NULL)
		iomem__free_internal((void *)(uintptr_t)md->iomem__extents,
		                     (vm_size_t)md->iomem__extent_count * sizeof(iomem_md_extent),
		                     "IOMemoryDescriptor extents");
	md->iomem__extents = NULL;
	md->iomem__extent_count = 0;
	md->iomem__hint = 0;
	md->iomem__ext_shift = 0;
	md->iomem__ext_bias = 0;
	md->iomem__ext_mask = 0;
	md->iomem__ext_limit = 0;
}

/* The aligned fixed-stride limit for the current length: with bias 0,
 * the last multiple of 2^shift <= length (below it every extent ends at
 * the next multiple, before the length); else 0. Call whenever the length
 * or the extents change. */
IOMEM__PRIVATE void iomem__md_set_ext_limit(IOMemoryDescriptor *md)
{
	md->iomem__ext_limit = md->iomem__ext_shift != 0 && md->iomem__ext_bias == 0
	                     ? md->iomem__length & ~(IOByteCount)md->iomem__ext_mask : 0;
}

/* Sets the fixed stride of the @n extents @e (see iomem__ext_shift), or
 * clears it. The stride L is the smallest power of two >= every extent
 * length (>= 2, as shift 0 means none); uniform when every extent but the
 * first and last is exactly L long. Then extent i covers
 * [i*L - bias, (i+1)*L - bias) with bias = L - length of extent 0.
 * L <= 2^31 keeps bias and mask in 32 bits and offset + bias < n * L <
 * 2^63. Segments are extent-bounded on both paths, so results are the
 * same; they are maximal because the builder merges physically adjacent
 * runs (no two consecutive extents are adjacent). */
IOMEM__PRIVATE void iomem__md_set_stride(IOMemoryDescriptor *md, const iomem_md_extent *e, uint32_t n)
{
	IOByteCount prev = 0, max = 0, L;
	unsigned i, k = 1;
	md->iomem__ext_shift = 0;
	md->iomem__ext_bias = 0;
	md->iomem__ext_mask = 0;
	md->iomem__ext_limit = 0;
	for (i = 0; i < n; i++) {
		if (e[i].end - prev > max)
			max = e[i].end - prev;
		prev = e[i].end;
	}
	while (k < 31 && ((IOByteCount)1 << k) < max)
		k++;
	L = (IOByteCount)1 << k;
	if (n == 0 || L < max || e[0].end == 0 || e[n - 1].end < md->iomem__length)
		return;
	for (i = 1; i + 1 < n; i++)
		if (e[i].end - e[i - 1].end != L)
			return;
	md->iomem__ext_bias = (uint32_t)(L - e[0].end);
	md->iomem__ext_mask = (uint32_t)(L - 1);
	md->iomem__ext_shift = (uint8_t)k;
	iomem__md_set_ext_limit(md);
}

/* Physical ranges -> extents (at creation). */
IOMEM__PRIVATE bool iomem__md_build_physical(IOMemoryDescriptor *md)
{
	iomem__xb b;
	uint32_t i, pass;
	iomem_md_extent *ext = NULL;
	for (pass = 0; pass < 2; pass++) {
		b.out = ext; b.n = 0; b.off = 0; b.next_phys = 0;
		for (i = 0; i < md->iomem__u.g.count; i++)
			iomem__xb_add(&b, md->iomem__u.g.ranges[i].address, md->iomem__u.g.ranges[i].length);
		if (pass == 0) {
			if (b.n == 0)
				return true;
			ext = (iomem_md_extent *)iomem__alloc_internal((vm_size_t)b.n * sizeof *ext, "IOMemoryDescriptor extents");
			if (ext == NULL)
				return false;
		}
	}
	md->iomem__extent_count = b.n;
	iomem__md_set_stride(md, ext, b.n);
	md->iomem__extents = ext;
	return true;
}

IOMEM__PRIVATE void iomem__md_unwire_ranges(IOMemoryDescriptor *md, uint32_t upto)
{
	vm_size_t page = iomem__platform_page_size();
	uint32_t i;
	for (i = 0; i < upto; i++) {
		const IOAddressRange *r = &md->iomem__u.g.ranges[i];
		vm_size_t n = iomem__range_pages(r, page);
		if (n)
			iomem__platform_unwire((uintptr_t)(r->address & ~(uint64_t)(page - 1)), n);
	}
}

/* Virtual ranges: wire every page, then compress into extents. */
IOMEM__PRIVATE IOReturn iomem__md_wire(IOMemoryDescriptor *md)
{
	vm_size_t page = iomem__platform_page_size(), total = 0, k;
	IOPhysicalAddress *pa;
	iomem__xb b;
	iomem_md_extent *ext = NULL;
	uint32_t i, pass;
	IOReturn ret;
	for (i = 0; i < md->iomem__u.g.count; i++)
		total += iomem__range_pages(&md->iomem__u.g.ranges[i], page);
	if (total == 0)
		return kIOReturnSuccess;
	pa = (IOPhysicalAddress *)iomem__platform_malloc(iomem_array_size(sizeof *pa, total));
	if (pa == NULL)
		return kIOReturnNoMemory;
	for (i = 0, k = 0; i < md->iomem__u.g.count; i++) {
		const IOAddressRange *r = &md->iomem__u.g.ranges[i];
		vm_size_t n = iomem__range_pages(r, page);
		if (n == 0)
			continue;
		ret = iomem__platform_wire((uintptr_t)(r->address & ~(uint64_t)(page - 1)), n, pa + k);
		if (ret != kIOReturnSuccess) {
			iomem__md_unwire_ranges(md, i);
			iomem__platform_free(pa);
			return ret;
		}
		k += n;
	}
	for (pass = 0; pass < 2; pass++) {
		b.out = ext; b.n = 0; b.off = 0; b.next_phys = 0;
		for (i = 0, k = 0; i < md->iomem__u.g.count; i++) {
			const IOAddressRange *r = &md->iomem__u.g.ranges[i];
			uint64_t a = r->address, left = r->length;
			while (left > 0) {
				uint64_t in = a & (page - 1), chunk = page - in;
				if (chunk > left)
					chunk = left;
				iomem__xb_add(&b, pa[k] + in, chunk);
				k++;
				a += chunk;
				left -= chunk;
			}
		}
		if (pass == 0) {
			ext = (iomem_md_extent *)iomem__alloc_internal((vm_size_t)b.n * sizeof *ext, "IOMemoryDescriptor extents");
			if (ext == NULL) {
				iomem__md_unwire_ranges(md, md->iomem__u.g.count);
				iomem__platform_free(pa);
				return kIOReturnNoMemory;
			}
		}
	}
	iomem__platform_free(pa);
	md->iomem__extent_count = b.n;
	md->iomem__hint = 0;
	iomem__md_set_stride(md, ext, b.n);
	md->iomem__extents = ext;
	return kIOReturnSuccess;
}

IOMEM__PRIVATE void iomem__md_unwire(IOMemoryDescriptor *md)
{
	iomem__md_free_extents(md);
	iomem__md_unwire_ranges(md, md->iomem__u.g.count);
	md->iomem__flags &= ~(IOOptionBits)kIOMemoryPreparedReadOnly;
	md->iomem__preparation_id = kIOPreparationIDUnprepared;
}

/* ---- general descriptor ------------------------------------------------ */

IOMEM__PRIVATE IOMemoryDescriptor *iomem__gmd_create(iomem_md_kind kind, const IOAddressRange *ranges,
                                                     UInt32 count, IOOptionBits options, task_t task)
{
	IOMemoryDescriptor *md;
	bool physical = (task == NULL);
	IOByteCount total = 0;
	UInt32 i;
	if (ranges == NULL || count == 0)
		return NULL;
	if (!physical && task != kernel_task)
		return NULL;
	for (i = 0; i < count; i++) {
		uint64_t a = ranges[i].address, l = ranges[i].length;
		if (l > ~(uint64_t)0 - a || l > ~(uint64_t)0 - total)
			return NULL;
		if (!physical && l != 0 && (a == 0 || (uint64_t)(uintptr_t)(a + l - 1) != a + l - 1))
			return NULL;
		total += l;
	}
	options &= ~(IOOptionBits)kIOMemoryTypeMask;
	options |= physical ? kIOMemoryTypePhysical64 : kIOMemoryTypeVirtual64;
	if (options & (kIOMemoryHostOnly | kIOMemoryRemote))
		options |= kIOMemoryMapperNone;
	md = iomem__md_alloc(kind, options);
	if (md == NULL)
		return NULL;
	md->iomem__physical = physical;
	md->iomem__length = total;
	md->iomem__u.g.count = count;
	if (count == 1) {
		md->iomem__u.g.inline_range = ranges[0];
		md->iomem__u.g.ranges = &md->iomem__u.g.inline_range;
	} else {
		md->iomem__u.g.ranges = (IOAddressRange *)iomem__alloc_internal(
			iomem_array_size(sizeof(IOAddressRange), count), "IOMemoryDescriptor ranges");
		if (md->iomem__u.g.ranges == NULL) {
			md->iomem__u.g.count = 0;
			IOMemoryDescriptor_release(md);
			return NULL;
		}
		iomem__memcpy(md->iomem__u.g.ranges, ranges, (vm_size_t)count * sizeof *ranges);
	}
	if (physical) {
		if (!iomem__md_build_physical(md)) {
			IOMemoryDescriptor_release(md);
			return NULL;
		}
	} else if (options & kIOMemoryAutoPrepare) {
		if (IOMemoryDescriptor_prepare(md, kIODirectionNone) != kIOReturnSuccess) {
			IOMemoryDescriptor_release(md);
			return NULL;
		}
		md->iomem__auto_prepared = 1;
	}
	return md;
}

IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withAddressRanges(IOAddressRange *ranges, UInt32 count,
                                                                   IOOptionBits options, task_t task)
{
	return iomem__gmd_create(IOMEM_MD_GENERAL, ranges, count, options, task);
}

IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withAddressRange(mach_vm_address_t address,
                                                                  mach_vm_size_t length,
                                                                  IOOptionBits options, task_t task)
{
	IOAddressRange r;
	r.address = address;
	r.length = length;
	return iomem__gmd_create(IOMEM_MD_GENERAL, &r, 1, options, task);
}

IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withAddress(void *address, IOByteCount length,
                                                             IODirection direction)
{
	IOAddressRange r;
	r.address = (mach_vm_address_t)(uintptr_t)address;
	r.length = length;
	return iomem__gmd_create(IOMEM_MD_GENERAL, &r, 1,
	                         (direction & kIOMemoryDirectionMask) | kIOMemoryAutoPrepare, kernel_task);
}

IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withPhysicalAddress(IOPhysicalAddress address,
                                                                     IOByteCount length,
                                                                     IODirection direction)
{
	return IOMemoryDescriptor_withAddressRange(address, length, direction & kIOMemoryDirectionMask, NULL);
}

IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withOptions(void *buffers, UInt32 count, UInt32 offset,
                                                             task_t task, IOOptionBits options,
                                                             IOMapper *mapper)
{
	IOOptionBits type = options & kIOMemoryTypeMask;
	IOAddressRange *tmp;
	IOMemoryDescriptor *md;
	UInt32 i;
	(void)offset; (void)mapper;
	if (buffers == NULL || count == 0)
		return NULL;
	if (type == kIOMemoryTypeVirtual64 || type == kIOMemoryTypePhysical64)
		return task == NULL ? (type == kIOMemoryTypePhysical64 ?
		                       iomem__gmd_create(IOMEM_MD_GENERAL, (IOAddressRange *)buffers, count, options, NULL) : NULL)
		                    : (type == kIOMemoryTypeVirtual64 ?
		                       iomem__gmd_create(IOMEM_MD_GENERAL, (IOAddressRange *)buffers, count, options, task) : NULL);
	if (type != kIOMemoryTypeVirtual && type != kIOMemoryTypePhysical)
		return NULL;                               /* UPL, UIO, persistent: unsupported */
	if ((type == kIOMemoryTypeVirtual) != (task != NULL))
		return NULL;
	tmp = (IOAddressRange *)iomem__platform_malloc(iomem_array_size(sizeof *tmp, count));
	if (tmp == NULL)
		return NULL;
	for (i = 0; i < count; i++) {
		if (type == kIOMemoryTypeVirtual) {
			tmp[i].address = ((IOVirtualRange *)buffers)[i].address;
			tmp[i].length = ((IOVirtualRange *)buffers)[i].length;
		} else {
			tmp[i].address = ((IOPhysicalRange *)buffers)[i].address;
			tmp[i].length = ((IOPhysicalRange *)buffers)[i].length;
		}
	}
	md = iomem__gmd_create(IOMEM_MD_GENERAL, tmp, count, options, task);
	iomem__platform_free(tmp);
	return md;
}

IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withPersistentMemoryDescriptor(IOMemoryDescriptor *original)
{
	if (original == NULL || !IOMEM__MD_IS_GENERAL(original) || !(original->iomem__flags & kIOMemoryPersistent))
		return NULL;
	IOMemoryDescriptor_retain(original);
	return original;
}

/* ---- dispatch ------------------------------------------------------------ */

IOMEM__PRIVATE IOByteCount iomem__clip(IOByteCount a, IOByteCount b) { return a < b ? a : b; }

IOMEM_API addr64_t iomem__md_segment_slow(IOMemoryDescriptor *md, IOByteCount offset,
                                          IOByteCount *length, IOOptionBits options)
{
	IOByteCount l = 0;
	addr64_t pa = 0;
	if (length != NULL)
		*length = 0;
	if (offset >= md->iomem__length)
		return 0;
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_GENERAL:
	case IOMEM_MD_BUFFER:
	case IOMEM_MD_DEVICE:
		/* extents are NULL: a virtual descriptor that is not prepared */
#if IOMEM__DEBUG
		iomem__report("IOMemoryDescriptor_getPhysicalSegment(%p, %u): descriptor is not prepared "
		              "(virtual memory must be wired with IOMemoryDescriptor_prepare first)",
		              (void *)md, (unsigned long long)offset);
#endif
		return 0;
	case IOMEM_MD_SUB:
		pa = IOMemoryDescriptor_getPhysicalSegment(md->iomem__u.sub.parent, md->iomem__u.sub.offset + offset,
		                                           &l, options);
		l = iomem__clip(l, md->iomem__length - offset);
		break;
	case IOMEM_MD_MULTI: {
		uint32_t lo = 0, hi = md->iomem__u.multi.count - 1;
		IOByteCount start;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (md->iomem__u.multi.end[mid] > offset) hi = mid; else lo = mid + 1;
		}
		start = lo ? md->iomem__u.multi.end[lo - 1] : 0;
		pa = IOMemoryDescriptor_getPhysicalSegment(md->iomem__u.multi.child[lo], offset - start, &l, options);
		l = iomem__clip(l, md->iomem__u.multi.end[lo] - offset);
		break;
	}
	case IOMEM_MD_INTERLEAVED: {
		uint32_t lo = 0, hi = md->iomem__u.il.count - 1;
		IOByteCount start;
		const iomem__md_slice *s;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (md->iomem__u.il.end[mid] > offset) hi = mid; else lo = mid + 1;
		}
		start = lo ? md->iomem__u.il.end[lo - 1] : 0;
		s = &md->iomem__u.il.slice[lo];
		pa = IOMemoryDescriptor_getPhysicalSegment(s->md, s->offset + (offset - start), &l, options);
		l = iomem__clip(l, md->iomem__u.il.end[lo] - offset);
		break;
	}
	case IOMEM_MD_CUSTOM:
		pa = md->iomem__ops->getPhysicalSegment(md, offset, &l, options);
		l = iomem__clip(l, md->iomem__length - offset);
		break;
	}
	if (pa == 0)
		l = 0;
	if (length != NULL)
		*length = l;
	return pa;
}

IOMEM_API void IOMemoryDescriptor_retain(IOMemoryDescriptor *md)
{
	if (md == NULL)
		return;
#if (defined(__GNUC__) || defined(__clang__)) && !defined(IOMEM_BACKEND_BAREMETAL)
	__atomic_fetch_add(&md->iomem__refcount, 1u, __ATOMIC_RELAXED);
#else
	/* bare metal: no read-modify-write atomics assumed (Cortex-M0), the
	 * platform lock hooks instead */
	iomem__mutex_lock(&iomem__md_id_lock);
	md->iomem__refcount++;
	iomem__mutex_unlock(&iomem__md_id_lock);
#endif
}

IOMEM_API uint32_t iomem_md_getRetainCount(IOMemoryDescriptor *md)
{
	return md ? IOMEM__LOAD_RELAXED32(&md->iomem__refcount) : 0;
}

IOMEM__PRIVATE IOReturn iomem__md_complete_locked(IOMemoryDescriptor *md, IODirection direction);

IOMEM__PRIVATE void iomem__md_free(IOMemoryDescriptor *md)
{
	uint32_t i, owned = md->iomem__auto_prepared;
	if (md->iomem__prepare_count > owned) {
#if IOMEM__DEBUG
		iomem__report("IOMemoryDescriptor_release(%p): descriptor freed while prepared "
		              "(%u prepare call(s) without complete); completing it",
		              (void *)md, (unsigned long long)(md->iomem__prepare_count - owned));
#endif
	}
	while (md->iomem__prepare_count > 0)
		iomem__md_complete_locked(md, kIODirectionNone);
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_GENERAL:
	case IOMEM_MD_BUFFER:
	case IOMEM_MD_DEVICE:
		iomem__md_free_extents(md);
		if (md->iomem__u.g.ranges != NULL && md->iomem__u.g.ranges != &md->iomem__u.g.inline_range)
			iomem__free_internal(md->iomem__u.g.ranges, (vm_size_t)md->iomem__u.g.count * sizeof(IOAddressRange),
			                     "IOMemoryDescriptor ranges");
		if (md->iomem__kind == IOMEM_MD_BUFFER)
			iomem__platform_ram_free(&md->iomem__u.g.ram);
		break;
	case IOMEM_MD_SUB:
		IOMemoryDescriptor_release(md->iomem__u.sub.parent);
		break;
	case IOMEM_MD_MULTI:
		for (i = 0; i < md->iomem__u.multi.count; i++)
			IOMemoryDescriptor_release(md->iomem__u.multi.child[i]);
		if (md->iomem__u.multi.child != NULL)
			iomem__free_internal(md->iomem__u.multi.child,
			                     (vm_size_t)md->iomem__u.multi.count * (sizeof(IOMemoryDescriptor *) + sizeof(IOByteCount)),
			                     "IOMultiMemoryDescriptor children");
		break;
	case IOMEM_MD_INTERLEAVED:
		for (i = 0; i < md->iomem__u.il.count; i++)
			IOMemoryDescriptor_release(md->iomem__u.il.slice[i].md);
		iomem__free_internal(md->iomem__u.il.slice,
		                     (vm_size_t)md->iomem__u.il.capacity * (sizeof(iomem__md_slice) + sizeof(IOByteCount)),
		                     "IOInterleavedMemoryDescriptor slices");
		break;
	case IOMEM_MD_CUSTOM:
		if (md->iomem__ops->free != NULL)
			md->iomem__ops->free(md);
		break;
	}
	if (md->iomem__lock != NULL) {
		iomem__mutex_destroy(md->iomem__lock);
		iomem__free_internal(md->iomem__lock, sizeof *md->iomem__lock, "IOMemoryDescriptor lock");
	}
	iomem__free_internal(md, sizeof *md, IOMEM__MD_NAME);
}

IOMEM_API void IOMemoryDescriptor_release(IOMemoryDescriptor *md)
{
	uint32_t left;
	if (md == NULL)
		return;
#if (defined(__GNUC__) || defined(__clang__)) && !defined(IOMEM_BACKEND_BAREMETAL)
	left = __atomic_sub_fetch(&md->iomem__refcount, 1u, __ATOMIC_ACQ_REL);
#else
	iomem__mutex_lock(&iomem__md_id_lock);
	left = --md->iomem__refcount;
	iomem__mutex_unlock(&iomem__md_id_lock);
#endif
	if (left == 0)
		iomem__md_free(md);
}

/* ---- prepare / complete -------------------------------------------------- */

IOMEM__PRIVATE IOReturn iomem__md_prepare_locked(IOMemoryDescriptor *md, IODirection direction)
{
	IOReturn ret = kIOReturnSuccess;
	uint32_t i;
	if (!(direction & kIODirectionOutIn))
		direction = IOMemoryDescriptor_getDirection(md);
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_GENERAL:
	case IOMEM_MD_BUFFER:
	case IOMEM_MD_DEVICE:
		if (md->iomem__physical)
			return kIOReturnSuccess;           /* always prepared, not counted */
		if (md->iomem__prepare_count == 0) {
			ret = iomem__md_wire(md);
			if (ret != kIOReturnSuccess)
				return ret;
			if ((direction & kIODirectionOutIn) == kIODirectionOut)
				md->iomem__flags |= kIOMemoryPreparedReadOnly;
		} else if ((md->iomem__flags & kIOMemoryPreparedReadOnly) && (direction & kIODirectionIn)) {
			return kIOReturnNotWritable;
		}
		break;
	case IOMEM_MD_SUB:
		ret = IOMemoryDescriptor_prepare(md->iomem__u.sub.parent, direction);
		break;
	case IOMEM_MD_MULTI:
		for (i = 0; i < md->iomem__u.multi.count; i++) {
			ret = IOMemoryDescriptor_prepare(md->iomem__u.multi.child[i], direction);
			if (ret != kIOReturnSuccess) {
				while (i-- > 0)
					IOMemoryDescriptor_complete(md->iomem__u.multi.child[i], direction);
				return ret;
			}
		}
		break;
	case IOMEM_MD_INTERLEAVED:
		for (i = 0; i < md->iomem__u.il.count; i++) {
			ret = IOMemoryDescriptor_prepare(md->iomem__u.il.slice[i].md, direction);
			if (ret != kIOReturnSuccess) {       /* fixed: roll back the prepared ones */
				while (i-- > 0)
					IOMemoryDescriptor_complete(md->iomem__u.il.slice[i].md, direction);
				return ret;
			}
		}
		break;
	case IOMEM_MD_CUSTOM:
		if (md->iomem__ops->prepare != NULL)
			ret = md->iomem__ops->prepare(md, direction);
		break;
	}
	if (ret == kIOReturnSuccess)
		md->iomem__prepare_count++;
	return ret;
}

IOMEM_API IOReturn IOMemoryDescriptor_prepare(IOMemoryDescriptor *md, IODirection direction)
{
	IOReturn ret;
	if (md == NULL)
		return kIOReturnBadArgument;
	iomem__md_lock(md);
	ret = iomem__md_prepare_locked(md, direction);
	iomem__md_unlock(md);
	return ret;
}

IOMEM__PRIVATE IOReturn iomem__md_complete_locked(IOMemoryDescriptor *md, IODirection direction)
{
	IOReturn ret = kIOReturnSuccess, r;
	uint32_t i;
	if (!(direction & kIODirectionOutIn))
		direction = IOMemoryDescriptor_getDirection(md);
	if (md->iomem__prepare_count == 0)
		return kIOReturnSuccess;
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_GENERAL:
	case IOMEM_MD_BUFFER:
	case IOMEM_MD_DEVICE:
		if (md->iomem__prepare_count == 1)
			iomem__md_unwire(md);
		break;
	case IOMEM_MD_SUB:
		IOMemoryDescriptor_complete(md->iomem__u.sub.parent, direction);
		break;
	case IOMEM_MD_MULTI:
		for (i = 0; i < md->iomem__u.multi.count; i++) {
			r = IOMemoryDescriptor_complete(md->iomem__u.multi.child[i], direction);
			if (r != kIOReturnSuccess)
				ret = r;
		}
		break;
	case IOMEM_MD_INTERLEAVED:
		for (i = 0; i < md->iomem__u.il.count; i++)
			IOMemoryDescriptor_complete(md->iomem__u.il.slice[i].md, direction);
		break;
	case IOMEM_MD_CUSTOM:
		if (md->iomem__ops->complete != NULL)
			ret = md->iomem__ops->complete(md, direction);
		break;
	}
	md->iomem__prepare_count--;
	return ret;
}

IOMEM_API IOReturn IOMemoryDescriptor_complete(IOMemoryDescriptor *md, IODirection direction)
{
	IOReturn ret = kIOReturnSuccess;
	if (md == NULL)
		return kIOReturnBadArgument;
	iomem__md_lock(md);
	if (IOMEM__MD_IS_GENERAL(md) && md->iomem__physical) {
		/* physical: always prepared, success */
	} else if (md->iomem__prepare_count <= md->iomem__auto_prepared) {
#if IOMEM__DEBUG
		iomem__report("IOMemoryDescriptor_complete(%p): complete without a matching prepare "
		              "(prepare count %u); ignored", (void *)md,
		              (unsigned long long)md->iomem__prepare_count);
#endif
	} else {
		ret = iomem__md_complete_locked(md, direction);
	}
	iomem__md_unlock(md);
	return ret;
}

/* ---- bytes --------------------------------------------------------------- */

IOMEM__PRIVATE IOByteCount iomem__md_copy(IOMemoryDescriptor *md, IOByteCount offset, void *buf,
                                          IOByteCount length, bool to_md)
{
	IOByteCount done = 0;
	unsigned char *b = (unsigned char *)buf;
	if (length == 0 || offset > md->iomem__length || length > md->iomem__length - offset)
		return 0;
	iomem__md_lock(md);
	if (to_md && (md->iomem__flags & kIOMemoryPreparedReadOnly)) {
		iomem__md_unlock(md);
		return 0;
	}
	while (done < length) {
		IOByteCount seg;
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, offset + done, &seg, kIOMemoryMapperNone);
		if (pa == 0 || seg == 0)
			break;
		if (seg > length - done)
			seg = length - done;
		if (!iomem__platform_phys_copy(pa, b ? b + done : NULL, seg, to_md))
			break;
		done += seg;
	}
	iomem__md_unlock(md);
	return done;
}

IOMEM_API IOByteCount IOMemoryDescriptor_readBytes(IOMemoryDescriptor *md, IOByteCount offset,
                                                   void *bytes, IOByteCount length)
{
	if (md == NULL || bytes == NULL)
		return 0;
	return iomem__md_copy(md, offset, bytes, length, false);
}

IOMEM_API IOByteCount IOMemoryDescriptor_writeBytes(IOMemoryDescriptor *md, IOByteCount offset,
                                                    const void *bytes, IOByteCount length)
{
	if (md == NULL)
		return 0;
	return iomem__md_copy(md, offset, (void *)(uintptr_t)bytes, length, true);
}

IOMEM_API IOReturn IOMemoryDescriptor_performOperation(IOMemoryDescriptor *md, IOOptionBits options,
                                                       IOByteCount offset, IOByteCount length)
{
	IOByteCount remaining;
	if (md == NULL)
		return kIOReturnBadArgument;
	switch (options) {
	case kIOMemoryIncoherentIOFlush:
	case kIOMemoryIncoherentIOStore:
	case kIOMemoryClearEncrypted:
	case kIOMemorySetEncrypted:
		break;
	default:
		return kIOReturnUnsupported;
	}
	/* as XNU: min(length, getLength() - offset), unsigned */
	remaining = iomem__clip(length, md->iomem__length - offset);
	iomem__md_lock(md);
	while (remaining > 0) {
		IOByteCount seg;
		addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(md, offset, &seg, kIOMemoryMapperNone);
		if (pa == 0)
			break;
		if (seg > remaining)
			seg = remaining;
		/* coherent host: the cache operation itself is a no-op */
		offset += seg;
		remaining -= seg;
	}
	iomem__md_unlock(md);
	return remaining ? kIOReturnUnderrun : kIOReturnSuccess;
}

IOMEM_API IOReturn IOMemoryDescriptor_setPurgeable(IOMemoryDescriptor *md, IOOptionBits newState,
                                                   IOOptionBits *oldState)
{
	IOReturn ret = kIOReturnUnsupported;
	uint32_t i;
	if (md == NULL || newState < kIOMemoryPurgeableKeepCurrent || newState > kIOMemoryPurgeableEmpty)
		return kIOReturnBadArgument;
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_BUFFER:
		if (!(md->iomem__flags & kIOMemoryBufferPurgeable))
			break;
		iomem__md_lock(md);
		if (oldState != NULL)
			*oldState = md->iomem__u.g.purgeable_state;
		if (newState != kIOMemoryPurgeableKeepCurrent) {
			if (newState == kIOMemoryPurgeableEmpty)
				iomem__memset(md->iomem__u.g.ram.address, 0, md->iomem__u.g.ram.bytes);
			md->iomem__u.g.purgeable_state = newState;
		}
		iomem__md_unlock(md);
		ret = kIOReturnSuccess;
		break;
	case IOMEM_MD_SUB:
		ret = IOMemoryDescriptor_setPurgeable(md->iomem__u.sub.parent, newState, oldState);
		break;
	case IOMEM_MD_MULTI: {
		IOOptionBits agg = kIOMemoryPurgeableNonVolatile;
		for (i = 0; i < md->iomem__u.multi.count; i++) {
			IOOptionBits st = kIOMemoryPurgeableNonVolatile;
			ret = IOMemoryDescriptor_setPurgeable(md->iomem__u.multi.child[i], newState, &st);
			if (ret != kIOReturnSuccess)
				break;
			if (st == kIOMemoryPurgeableEmpty || agg == kIOMemoryPurgeableEmpty)
				agg = kIOMemoryPurgeableEmpty;
			else if (st == kIOMemoryPurgeableVolatile)
				agg = kIOMemoryPurgeableVolatile;
		}
		if (ret == kIOReturnSuccess && oldState != NULL)
			*oldState = agg;
		break;
	}
	case IOMEM_MD_CUSTOM:
		if (md->iomem__ops->setPurgeable != NULL)
			ret = md->iomem__ops->setPurgeable(md, newState, oldState);
		break;
	default:
		break;
	}
	return ret;
}

IOMEM_API IOReturn IOMemoryDescriptor_getPageCounts(IOMemoryDescriptor *md, IOByteCount *residentPageCount,
                                                    IOByteCount *dirtyPageCount)
{
	IOByteCount res = 0, dirty = 0, r1, d1;
	IOReturn ret = kIOReturnSuccess;
	uint32_t i;
	if (md == NULL)
		return kIOReturnBadArgument;
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_GENERAL:
	case IOMEM_MD_BUFFER:
	case IOMEM_MD_DEVICE:
		if (md->iomem__physical)
			return kIOReturnNotReady;
		for (i = 0; i < md->iomem__u.g.count; i++)
			res += iomem__range_pages(&md->iomem__u.g.ranges[i], iomem__platform_page_size());
		dirty = res;
		break;
	case IOMEM_MD_SUB:
		return IOMemoryDescriptor_getPageCounts(md->iomem__u.sub.parent, residentPageCount, dirtyPageCount);
	case IOMEM_MD_MULTI:
		for (i = 0; i < md->iomem__u.multi.count; i++) {
			ret = IOMemoryDescriptor_getPageCounts(md->iomem__u.multi.child[i], &r1, &d1);
			if (ret != kIOReturnSuccess)
				return ret;
			res += r1;
			dirty += d1;
		}
		break;
	case IOMEM_MD_CUSTOM:
		if (md->iomem__ops->getPageCounts == NULL)
			return kIOReturnNotReady;
		return md->iomem__ops->getPageCounts(md, residentPageCount, dirtyPageCount);
	default:
		return kIOReturnNotReady;
	}
	if (residentPageCount != NULL)
		*residentPageCount = res;
	if (dirtyPageCount != NULL)
		*dirtyPageCount = dirty;
	return kIOReturnSuccess;
}

IOMEM_API uint64_t IOMemoryDescriptor_getPreparationID(IOMemoryDescriptor *md)
{
	uint64_t id;
	uint32_t i;
	if (md == NULL)
		return kIOPreparationIDUnsupported;
	switch ((iomem_md_kind)md->iomem__kind) {
	case IOMEM_MD_GENERAL:
	case IOMEM_MD_BUFFER:
	case IOMEM_MD_DEVICE:
		if (!md->iomem__physical && md->iomem__prepare_count == 0)
			return kIOPreparationIDUnprepared;
		break;
	case IOMEM_MD_SUB:
		return IOMemoryDescriptor_getPreparationID(md->iomem__u.sub.parent);
	case IOMEM_MD_MULTI:
		for (i = 0; i < md->iomem__u.multi.count; i++) {
			id = IOMemoryDescriptor_getPreparationID(md->iomem__u.multi.child[i]);
			if (id == kIOPreparationIDUnsupported || id == kIOPreparationIDUnprepared)
				return id;
		}
		break;
	case IOMEM_MD_CUSTOM:
		return md->iomem__ops->getPreparationID ? md->iomem__ops->getPreparationID(md)
		                                        : (uint64_t)kIOPreparationIDUnsupported;
	default:
		return kIOPreparationIDUnsupported;
	}
	iomem__md_lock(md);
	if (md->iomem__preparation_id == kIOPreparationIDUnprepared)
		md->iomem__preparation_id = iomem__md_new_id();
	id = md->iomem__preparation_id;
	iomem__md_unlock(md);
	return id;
}

/* ---- custom kinds -------------------------------------------------------- */

IOMEM_API IOMemoryDescriptor *iomem_md_withOps(const iomem_md_ops *ops, void *context,
                                               IOByteCount length, IOOptionBits options)
{
	IOMemoryDescriptor *md;
	if (ops == NULL || ops->getPhysicalSegment == NULL)
		return NULL;
	md = iomem__md_alloc(IOMEM_MD_CUSTOM, options);
	if (md == NULL)
		return NULL;
	md->iomem__ops = ops;
	md->iomem__u.custom.context = context;
	md->iomem__length = length;
	return md;
}

IOMEM_API void *iomem_md_getContext(IOMemoryDescriptor *md)
{
	return md != NULL && md->iomem__kind == IOMEM_MD_CUSTOM ? md->iomem__u.custom.context : NULL;
}

/* ---- IOBufferMemoryDescriptor ------------------------------------------- */

IOMEM__PRIVATE IOBufferMemoryDescriptor *iomem__bmd_create(task_t task, IOOptionBits options,
                                                           mach_vm_size_t capacity, mach_vm_address_t alignment,
                                                           mach_vm_address_t physicalMask)
{
	vm_size_t page = iomem__platform_page_size();
	IOPhysicalAddress highest = ~(IOPhysicalAddress)0;
	bool contiguous, pageable = (options & kIOMemoryPageable) != 0;
	IOOptionBits mdopts;
	IOMemoryDescriptor *md;
	IOAddressRange r;
	if (capacity == 0 || task != kernel_task || capacity > IOMEM_ALLOC_SIZE_MAX / 2)
		return NULL;
	if (alignment > ((mach_vm_address_t)1 << 31))
		return NULL;
	if (alignment & (alignment - 1)) {            /* round up to a power of two */
		mach_vm_address_t a = 1;
		while (a < alignment)
			a <<= 1;
		alignment = a;
	}
	if (physicalMask != 0 && alignment <= 1) {
		alignment = physicalMask & (~physicalMask + 1);   /* lowest set bit */
		if (alignment < page)
			alignment = page;
		highest = physicalMask | (alignment - 1);
	} else if (physicalMask != 0) {
		highest = physicalMask | (alignment - 1);
	}
	if ((options & (kIOMemorySharingTypeMask)) || (options & kIOMemoryClearEncrypt))
		if (alignment < page)
			alignment = page;
	if (alignment > page)
		options |= kIOMemoryPhysicallyContiguous;
	contiguous = (options & (kIOMemoryPhysicallyContiguous | kIOMemoryHostPhysicallyContiguous)) != 0 ||
	             physicalMask != 0;
	if (pageable && contiguous)
		return NULL;
	mdopts = iomem_buffer_options_to_memory(options) & ~(IOOptionBits)kIOMemoryAutoPrepare;
	if (pageable)
		mdopts |= kIOMemoryBufferPageable;
	if (options & kIOMemoryPurgeable)
		mdopts |= kIOMemoryBufferPurgeable;
	md = iomem__md_alloc(IOMEM_MD_BUFFER, mdopts | kIOMemoryTypeVirtual64);
	if (md == NULL)
		return NULL;
	if (iomem__platform_ram_alloc(&md->iomem__u.g.ram, (vm_size_t)capacity, (vm_size_t)alignment,
	                              highest, contiguous) != kIOReturnSuccess) {
		iomem__md_free(md);
		return NULL;
	}
	r.address = (mach_vm_address_t)(uintptr_t)md->iomem__u.g.ram.address;
	r.length = capacity;
	md->iomem__u.g.inline_range = r;
	md->iomem__u.g.ranges = &md->iomem__u.g.inline_range;
	md->iomem__u.g.count = 1;
	md->iomem__u.g.capacity = (vm_size_t)capacity;
	md->iomem__u.g.purgeable_state = kIOMemoryPurgeableNonVolatile;
	md->iomem__length = capacity;
	if (!pageable) {
		if (IOMemoryDescriptor_prepare(md, kIODirectionNone) != kIOReturnSuccess) {
			iomem__md_free(md);
			return NULL;
		}
		md->iomem__auto_prepared = 1;
		md->iomem__flags |= kIOMemoryAutoPrepare;
	}
	return md;
}

IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_inTaskWithPhysicalMask(task_t inTask,
        IOOptionBits options, mach_vm_size_t capacity, mach_vm_address_t physicalMask)
{
	return iomem__bmd_create(inTask, options, capacity, 1, physicalMask);
}

IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_inTaskWithOptions(task_t inTask,
        IOOptionBits options, vm_size_t capacity, vm_offset_t alignment)
{
	return iomem__bmd_create(inTask, options, capacity, alignment, 0);
}

IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_inTaskWithOptionsTagged(task_t inTask,
        IOOptionBits options, vm_size_t capacity, vm_offset_t alignment, uint32_t kernTag, uint32_t userTag)
{
	(void)kernTag; (void)userTag;
	return iomem__bmd_create(inTask, options, capacity, alignment, 0);
}

IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_withOptions(IOOptionBits options,
        vm_size_t capacity, vm_offset_t alignment)
{
	return iomem__bmd_create(kernel_task, options, capacity, alignment, 0);
}

IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_withCapacity(vm_size_t capacity,
        IODirection direction, bool contiguous)
{
	return iomem__bmd_create(kernel_task,
	                         (direction & kIOMemoryDirectionMask) | kIOMemoryUnshared |
	                         (contiguous ? kIOMemoryPhysicallyContiguous : 0),
	                         capacity, contiguous ? capacity : 1, 0);
}

IOMEM_API IOBufferMemoryDescriptor *IOBufferMemoryDescriptor_withBytes(const void *bytes, vm_size_t length,
        IODirection direction, bool contiguous)
{
	vm_size_t page = iomem__platform_page_size();
	IOBufferMemoryDescriptor *md;
	if (bytes == NULL || length == 0)
		return NULL;
	md = iomem__bmd_create(kernel_task,
	                       (direction & kIOMemoryDirectionMask) | kIOMemoryUnshared |
	                       (contiguous ? kIOMemoryPhysicallyContiguous : 0),
	                       length, length < page ? length : page, 0);
	if (md == NULL)
		return NULL;
	IOBufferMemoryDescriptor_setLength(md, 0);
	IOBufferMemoryDescriptor_appendBytes(md, bytes, length);
	return md;
}

IOMEM_API void IOBufferMemoryDescriptor_setLength(IOBufferMemoryDescriptor *bmd, vm_size_t length)
{
	if (bmd == NULL || bmd->iomem__kind != IOMEM_MD_BUFFER || length > bmd->iomem__u.g.capacity)
		return;
	/* the range (what is wired and unwired) keeps the capacity; segments
	 * and byte access are clipped at the length */
	bmd->iomem__length = length;
	iomem__md_set_ext_limit(bmd);
}

IOMEM_API vm_size_t IOBufferMemoryDescriptor_getCapacity(IOBufferMemoryDescriptor *bmd)
{
	return bmd != NULL && bmd->iomem__kind == IOMEM_MD_BUFFER ? bmd->iomem__u.g.capacity : 0;
}

IOMEM_API void IOBufferMemoryDescriptor_setDirection(IOBufferMemoryDescriptor *bmd, IODirection direction)
{
	if (bmd == NULL)
		return;
	bmd->iomem__flags = (bmd->iomem__flags & ~(IOOptionBits)kIOMemoryDirectionMask) |
	                    (direction & kIOMemoryDirectionMask);
}

IOMEM_API void *IOBufferMemoryDescriptor_getBytesNoCopy(IOBufferMemoryDescriptor *bmd)
{
	return bmd != NULL && bmd->iomem__kind == IOMEM_MD_BUFFER ? bmd->iomem__u.g.ram.address : NULL;
}

IOMEM_API void *IOBufferMemoryDescriptor_getBytesNoCopyRange(IOBufferMemoryDescriptor *bmd,
                                                             vm_size_t start, vm_size_t len)
{
	if (bmd == NULL || bmd->iomem__kind != IOMEM_MD_BUFFER)
		return NULL;
	if (start >= bmd->iomem__length || len > bmd->iomem__length - start)
		return NULL;
	return (unsigned char *)bmd->iomem__u.g.ram.address + start;
}

IOMEM_API bool IOBufferMemoryDescriptor_appendBytes(IOBufferMemoryDescriptor *bmd, const void *bytes,
                                                    vm_size_t length)
{
	vm_size_t room, n;
	if (bmd == NULL || bmd->iomem__kind != IOMEM_MD_BUFFER)
		return false;
	if (bytes == NULL && length != 0)
		return false;
	room = bmd->iomem__u.g.capacity - (vm_size_t)bmd->iomem__length;
	n = length < room ? length : room;
	if (n)
		iomem__memcpy((unsigned char *)bmd->iomem__u.g.ram.address + bmd->iomem__length, bytes, n);
	IOBufferMemoryDescriptor_setLength(bmd, (vm_size_t)bmd->iomem__length + n);
	return true;
}

/* ---- IODeviceMemory ------------------------------------------------------ */

IOMEM_API IODeviceMemory *IODeviceMemory_withRange(IOPhysicalAddress start, IOPhysicalLength length)
{
	IOAddressRange r;
	r.address = start;
	r.length = length;
	return iomem__gmd_create(IOMEM_MD_DEVICE, &r, 1, kIODirectionNone | kIOMemoryMapperNone, NULL);
}

IOMEM_API IODeviceMemory *IODeviceMemory_withSubRange(IODeviceMemory *of, IOPhysicalAddress offset,
                                                      IOPhysicalLength length)
{
	return IOSubMemoryDescriptor_withSubRange(of, offset, length, kIODirectionNone);
}

IOMEM_API IODeviceMemory **IODeviceMemory_arrayFromList(const IODeviceMemory_InitElement list[], IOItemCount count)
{
	IODeviceMemory **a;
	IOItemCount i;
	if (list == NULL || count == 0)
		return NULL;
	a = (IODeviceMemory **)iomem__alloc_internal(iomem_array_size(sizeof *a, count), "IODeviceMemory array");
	if (a == NULL)
		return NULL;
	for (i = 0; i < count; i++) {
		a[i] = IODeviceMemory_withRange(list[i].start, list[i].length);
		if (a[i] == NULL) {
			while (i-- > 0)
				IOMemoryDescriptor_release(a[i]);
			iomem__free_internal(a, (vm_size_t)count * sizeof *a, "IODeviceMemory array");
			return NULL;
		}
		IOMemoryDescriptor_setTag(a[i], list[i].tag);
	}
	return a;
}

IOMEM_API void iomem_device_memory_array_release(IODeviceMemory **array, IOItemCount count)
{
	IOItemCount i;
	if (array == NULL)
		return;
	for (i = 0; i < count; i++)
		IOMemoryDescriptor_release(array[i]);
	iomem__free_internal(array, (vm_size_t)count * sizeof *array, "IODeviceMemory array");
}

/* ---- IOSubMemoryDescriptor ------------------------------------------------ */

IOMEM_API IOSubMemoryDescriptor *IOSubMemoryDescriptor_withSubRange(IOMemoryDescriptor *of, IOByteCount offset,
                                                                    IOByteCount length, IOOptionBits options)
{
	IOMemoryDescriptor *md;
	if (of == NULL || offset > of->iomem__length || length > of->iomem__length - offset)
		return NULL;
	md = iomem__md_alloc(IOMEM_MD_SUB, (options & kIOMemoryDirectionMask) | kIOMemoryThreadSafe);
	if (md == NULL)
		return NULL;
	IOMemoryDescriptor_retain(of);
	md->iomem__u.sub.parent = of;
	md->iomem__u.sub.offset = offset;
	md->iomem__length = length;
	md->iomem__tag = of->iomem__tag;
	return md;
}

/* ---- IOMultiMemoryDescriptor --------------------------------------------- */

IOMEM_API IOMultiMemoryDescriptor *IOMultiMemoryDescriptor_withDescriptors(IOMemoryDescriptor **descriptors,
        UInt32 withCount, IODirection withDirection, bool asReference)
{
	IOMemoryDescriptor *md;
	IOByteCount total = 0;
	IOOptionBits pageable;
	UInt32 i;
	vm_size_t bytes;
	(void)asReference;
	if (descriptors == NULL || withCount == 0 || descriptors[0] == NULL)
		return NULL;
	pageable = descriptors[0]->iomem__flags & kIOMemoryBufferPageable;
	for (i = 0; i < withCount; i++) {
		if (descriptors[i] == NULL || (descriptors[i]->iomem__flags & kIOMemoryBufferPageable) != pageable ||
		    descriptors[i]->iomem__length > ~(IOByteCount)0 - total)
			return NULL;
		total += descriptors[i]->iomem__length;
	}
	md = iomem__md_alloc(IOMEM_MD_MULTI, withDirection & kIOMemoryDirectionMask);
	if (md == NULL)
		return NULL;
	bytes = iomem_array_size(sizeof(IOMemoryDescriptor *) + sizeof(IOByteCount), withCount);
	md->iomem__u.multi.child = (IOMemoryDescriptor **)iomem__alloc_internal(bytes, "IOMultiMemoryDescriptor children");
	if (md->iomem__u.multi.child == NULL) {
		iomem__md_free(md);
		return NULL;
	}
	md->iomem__u.multi.end = (IOByteCount *)(void *)(md->iomem__u.multi.child + withCount);
	total = 0;
	for (i = 0; i < withCount; i++) {
		IOMemoryDescriptor_retain(descriptors[i]);
		md->iomem__u.multi.child[i] = descriptors[i];
		total += descriptors[i]->iomem__length;
		md->iomem__u.multi.end[i] = total;
		if (md->iomem__tag == 0)
			md->iomem__tag = descriptors[i]->iomem__tag;
	}
	md->iomem__u.multi.count = withCount;
	md->iomem__length = total;
	md->iomem__flags |= pageable;
	return md;
}

/* ---- IOInterleavedMemoryDescriptor ---------------------------------------- */

IOMEM_API IOInterleavedMemoryDescriptor *IOInterleavedMemoryDescriptor_withCapacity(IOByteCount capacity,
        IODirection direction)
{
	IOMemoryDescriptor *md;
	if (capacity == 0 || capacity > 0xFFFFFFFFu)
		return NULL;
	md = iomem__md_alloc(IOMEM_MD_INTERLEAVED, direction & kIOMemoryDirectionMask);
	if (md == NULL)
		return NULL;
	md->iomem__u.il.slice = (iomem__md_slice *)iomem__alloc_internal(
		iomem_array_size(sizeof(iomem__md_slice) + sizeof(IOByteCount), (vm_size_t)capacity),
		"IOInterleavedMemoryDescriptor slices");
	if (md->iomem__u.il.slice == NULL) {
		iomem__free_internal(md, sizeof *md, IOMEM__MD_NAME);
		return NULL;
	}
	md->iomem__u.il.end = (IOByteCount *)(void *)(md->iomem__u.il.slice + capacity);
	md->iomem__u.il.capacity = (uint32_t)capacity;
	return md;
}

IOMEM_API bool IOInterleavedMemoryDescriptor_setMemoryDescriptor(IOInterleavedMemoryDescriptor *imd,
        IOMemoryDescriptor *descriptor, IOByteCount offset, IOByteCount length)
{
	iomem__md_slice *s;
	if (imd == NULL || imd->iomem__kind != IOMEM_MD_INTERLEAVED || descriptor == NULL)
		return false;
	if (imd->iomem__prepare_count != 0 || imd->iomem__u.il.count >= imd->iomem__u.il.capacity)
		return false;
	if (offset > descriptor->iomem__length || length > descriptor->iomem__length - offset ||
	    length > ~(IOByteCount)0 - imd->iomem__length)
		return false;
	IOMemoryDescriptor_retain(descriptor);
	s = &imd->iomem__u.il.slice[imd->iomem__u.il.count];
	s->md = descriptor;
	s->offset = offset;
	s->length = length;
	imd->iomem__length += length;
	imd->iomem__u.il.end[imd->iomem__u.il.count] = imd->iomem__length;
	imd->iomem__u.il.count++;
	return true;
}

IOMEM_API void IOInterleavedMemoryDescriptor_clearMemoryDescriptors(IOInterleavedMemoryDescriptor *imd,
        IODirection direction)
{
	uint32_t i;
	if (imd == NULL || imd->iomem__kind != IOMEM_MD_INTERLEAVED)
		return;
	while (imd->iomem__prepare_count > 0)               /* fixed: clears the state */
		iomem__md_complete_locked(imd, kIODirectionNone);
	for (i = 0; i < imd->iomem__u.il.count; i++)
		IOMemoryDescriptor_release(imd->iomem__u.il.slice[i].md);
	imd->iomem__u.il.count = 0;
	imd->iomem__length = 0;
	imd->iomem__tag = 0;
	if (direction & kIODirectionOutIn)
		imd->iomem__flags = (imd->iomem__flags & ~(IOOptionBits)kIOMemoryDirectionMask) |
		                    (direction & kIOMemoryDirectionMask);
}

/* >>impl-range: IORangeAllocator (see the IORangeAllocator issue). */

/* >>impl-backend: the out-of-line part of the selected backend. */
#if defined(IOMEM_BACKEND_BAREMETAL)
#  define IOMEM__BAREMETAL_IMPLEMENTATION 1
#  include "backends/iomem_baremetal.h"
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOMEM_IMPLEMENTATION */

/*
 * MIT License
 *
 * Copyright (c) 2026 the iomem authors
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy
 * of this software and associated documentation files (the "Software"), to
 * deal in the Software without restriction, including without limitation the
 * rights to use, copy, modify, merge, publish, distribute, sublicense, and/or
 * sell copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in
 * all copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
 * FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS
 * IN THE SOFTWARE.
 */
