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
 *   >>desc                IOMemoryDescriptor and its kinds (coming)
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
/* IOMemoryDescriptor and its kinds: see the memory descriptor issue. */

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
