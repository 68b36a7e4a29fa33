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
 *                         IOMallocPageable and their frees, IONew/IODelete,
 *                         iomem_debug_fail_allocations (test hook)
 *   >>debug               iomem_stats, iomem_leak_report
 *   >>range               IORangeAllocator
 *   >>desc                IOMemoryDescriptor and its kinds, the extent walk
 *   >>implementation      the part compiled once (IOMEM_IMPLEMENTATION):
 *     >>impl-format         the reports' formatter (no libc)
 *     >>impl-ioreturn       IOReturnString and friends
 *     >>impl-debug          the debug layer's tracking table
 *     >>impl-alloc          IOMallocPageable family, aligned-free reports
 *     >>impl-desc           descriptors: wiring, extents, every kind
 *     >>impl-range          IORangeAllocator: tree, size classes, cache
 *     >>impl-backend        the out-of-line part of the selected backend
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
 *       // a DMA buffer and its physical segments (the scatter/gather list)
 *       IOBufferMemoryDescriptor *bmd = IOBufferMemoryDescriptor_withCapacity(
 *               16384, kIODirectionInOut, false);      // +1, prepared
 *       IOByteCount off = 0, seg;
 *       while (off < IOMemoryDescriptor_getLength(bmd)) {
 *           addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(bmd, off, &seg, 0);
 *           program_device(pa, seg);                   // your hardware
 *           off += seg;
 *       }
 *       IOMemoryDescriptor_release(bmd);
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
 *   IOMEM_USE_INTRINSICS 0|1   global  compiler builtins for bit scans
 *                                      (default 1); 0 = portable C, for
 *                                      compilers without them (both tested)
 *   IOMEM_DMA_SPECIALIZE 0|1   impl    IODMACommand's engine compiled once
 *                                      per built-in output format (1, the
 *                                      hosted default: no indirect call per
 *                                      segment) or once (0, the bare-metal
 *                                      default: ~50 KiB less code)
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
 *   iomem_debug_fail_allocations() makes the library's own allocations fail
 *   from the N-th on (tests of the error paths: tests/test_inject.c).
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
/* The hot paths' bigger helpers (getPhysicalSegment, the walks, pieces of
 * IODMACommand's engine): forced inline for speed, but in a size-optimised
 * build (-Os/-Oz: __OPTIMIZE_SIZE__) plain inline, so the compiler keeps one
 * out-of-line copy instead of one per caller (tools/bm-size, Cortex-M4:
 * a descriptor + an IODMACommand firmware 9.4 KiB smaller). */
#if defined(__OPTIMIZE_SIZE__)
#  define IOMEM__HOT_INLINE IOMEM_INLINE
#else
#  define IOMEM__HOT_INLINE IOMEM_FORCEINLINE
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define IOMEM_LIKELY(x)   __builtin_expect(!!(x), 1)
#  define IOMEM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define IOMEM_LIKELY(x)   (x)
#  define IOMEM_UNLIKELY(x) (x)
#endif

/* Cold paths kept out of line, and a write prefetch. "__noinline__", not
 * "noinline": the kernel defines noinline as a macro. */
#if defined(__GNUC__) || defined(__clang__)
#  define IOMEM__NOINLINE __attribute__((__noinline__))
#  define IOMEM__PREFETCHW(p) __builtin_prefetch((p), 1, 3)
#else
#  define IOMEM__NOINLINE
#  define IOMEM__PREFETCHW(p) ((void)(p))
#endif

#ifndef IOMEM_USE_INTRINSICS   /* 0: portable bit scans instead of builtins */
#  define IOMEM_USE_INTRINSICS 1
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

/* An address space. iomem has one of its own, kernel_task; the Linux backend
 * also knows user processes (iomem_current_task). */
struct iomem_task { int iomem__id; };      /* opaque: compare, don't look */
typedef struct iomem_task *task_t;
IOMEM_API struct iomem_task iomem_kernel_task;
#define kernel_task (&iomem_kernel_task)

/**
 * iomem_current_task - the task of the calling thread (Mach's current_task(),
 * which IOKit drivers pass for a user client's memory; renamed because
 * current_task is a per-CPU variable of the x86 Linux kernel).
 * Linux: in a user process, a handle of its address space (its mm; the same
 * value for every thread of the process), usable as the @task of
 * IOMemoryDescriptor_withAddressRange(s)/withOptions for user addresses;
 * in a kernel thread, kernel_task. POSIX and bare metal: kernel_task (one
 * address space). +0, no reference: valid while the process lives; only
 * compare it. Any context, thread-safe, never fails.
 */
IOMEM_API task_t iomem_current_task(void);

/* Forward declarations of the object types the three headers define. */
typedef struct IOMapper IOMapper;                 /* iomem_map.h */
typedef struct IODMACommand IODMACommand;         /* iomem_dma.h */
typedef struct IOMemoryMap IOMemoryMap;           /* iomem_map.h */
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

/* The descriptors' per-object lock (kIOMemoryThreadSafe, every sub): prepare
 * allocates and wires under it, so it must allow that. A backend whose
 * iomem__mutex does not (Linux: a spinlock with IRQs off) defines
 * IOMEM__HAVE_SLEEP_LOCK and iomem__sleep_lock with the same four calls. */
#ifndef IOMEM__HAVE_SLEEP_LOCK
typedef iomem__mutex iomem__sleep_lock;
IOMEM_INLINE bool iomem__sleep_lock_init(iomem__sleep_lock *l)    { return iomem__mutex_init(l); }
IOMEM_INLINE void iomem__sleep_lock_destroy(iomem__sleep_lock *l) { iomem__mutex_destroy(l); }
IOMEM_INLINE void iomem__sleep_lock_lock(iomem__sleep_lock *l)    { iomem__mutex_lock(l); }
IOMEM_INLINE void iomem__sleep_lock_unlock(iomem__sleep_lock *l)  { iomem__mutex_unlock(l); }
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

#if IOMEM__DEBUG
/**
 * iomem_debug_fail_allocations - test hook, IOMEM_DEBUG builds only (it does
 * not exist otherwise, so it costs nothing there): make the library's own
 * allocations fail, to drive every error path.
 * @after_n: this many allocation points still succeed...
 * @count:   ...then this many fail (0 disarms; UINT64_MAX: all that follow).
 *
 * An allocation point is each of the library's internal allocations
 * (iomem__alloc_internal: descriptors, their extents, locks, range
 * allocators and their slots, ...) and each platform allocation it makes on
 * its own behalf (buffer RAM, page wiring, scratch arrays). The IOMalloc
 * family called by the user is never failed. Every call also restarts the
 * count iomem_debug_allocation_points() returns. Process-wide, thread-safe;
 * meant for single-threaded tests.
 */
IOMEM_API void iomem_debug_fail_allocations(uint64_t after_n, uint64_t count);
/** iomem_debug_allocation_points - allocation points passed (failed ones
 * included) since the last iomem_debug_fail_allocations(). Thread-safe. */
IOMEM_API uint64_t iomem_debug_allocation_points(void);
/* true when this allocation point must fail (one per point, in order) */
IOMEM_API bool iomem__debug_fail_point(void);
#  define IOMEM__FAIL_POINT() IOMEM_UNLIKELY(iomem__debug_fail_point())
#else
#  define IOMEM__FAIL_POINT() 0
#endif

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
	if (IOMEM__FAIL_POINT())
		return NULL;
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
/*
 * IORangeAllocator - a free list of numeric ranges (bus or IOVA addresses,
 * resource numbers, slots...). IOKit's object and rules, iomem's engine.
 *
 * IOKIT'S RULES, KEPT (iokit-semantics.md §3.4)
 *   - Ranges are closed: a fragment is [start, end], end inclusive. Scalars
 *     are IORangeScalar (64-bit); any value 0..2^64-1 is a valid unit.
 *   - withRange(endOfRange, ...): endOfRange is the LAST free unit, so the
 *     allocator starts with one fragment [0, endOfRange] (its size rounded up
 *     to the default alignment, exactly as IOKit's init does by calling
 *     deallocate(0, endOfRange + 1)); endOfRange 0 starts empty (a range of
 *     just unit 0 cannot be made by withRange; add ranges with deallocate).
 *     endOfRange = 2^64-1 gives the whole 64-bit space.
 *   - Default alignment 0 means 1; it must be a power of two. Every size
 *     (allocate, allocateRange, deallocate) is rounded up to the DEFAULT
 *     alignment. A per-call alignment of allocate() REPLACES the default for
 *     the start address (it does not combine with it); 0 means the default.
 *   - allocateRange() does not align or check its start; it succeeds only if
 *     the whole (rounded) range is free.
 *   - deallocate() may free any range, allocated or not (that is how an
 *     allocator made with endOfRange 0 is populated), and coalesces with
 *     both neighbours. Overlapping frees are absorbed: the free set becomes
 *     the union (IOKit extends fragments the same way).
 *   - Fragments = free intervals: getFragmentCount() counts them,
 *     getFreeCount() sums their sizes.
 *
 * CAPACITY (how IOKit's fragment array maps onto this engine)
 *   Each free fragment occupies one slot of 40 bytes (a tree node); the
 *   capacity is the number of slots, so getFragmentCount() <=
 *   getFragmentCapacity() always, and an operation that needs one more
 *   fragment than there are slots grows the slot array first - exactly when
 *   IOKit grows its array (a split of a fragment in allocate/allocateRange,
 *   a deallocate that touches no free fragment). The first growth allocates
 *   `capacity` slots (withRange's argument, 0 meaning 1), as IOKit does.
 *   Later growth adds max(increment, capacity / 2) slots (IOKit adds exactly
 *   the increment, an O(n) copy each time; geometric growth keeps every
 *   operation amortised O(1)). Slots are never given back.
 *   With an increment of 0 the array never grows (IOKit then writes past
 *   its array); here an allocate/allocateRange that would need a new slot
 *   returns false with nothing changed, and a deallocate that would need
 *   one drops the range - IOKit's behaviour when it cannot grow - counts it
 *   in iomem_range_stats.lost_* and, with IOMEM_DEBUG, reports it.
 *
 * ENGINE (vmem-style instant fit; see performance-anchors.md §3, §6.3)
 *   - Free fragments live in a red-black tree ordered by start (32-bit slot
 *     indices, parent links) and, at the same time, on one of 64
 *     power-of-two size-class lists with a 64-bit bitmap of the non-empty
 *     ones. The first allocation below a limit (the IOVA API) also turns on
 *     a per-subtree "largest class" index, kept from then on.
 *   - allocate: the first non-empty class that is guaranteed to fit (ctz on
 *     the bitmap) gives a fragment in O(1); the range is cut from its
 *     aligned start. Only when no such class exists are the smaller classes
 *     that may hold a fit scanned (then O(fragments in those classes)), so
 *     allocate fails only when no fragment fits, as in IOKit.
 *   - deallocate / allocateRange: one O(log n) branch-free descent finds
 *     the fragments around the address; coalescing with both neighbours is
 *     O(1) amortised (red-black rebalancing).
 *   - Results are not IOKit's first-fit addresses (the rules above hold; the
 *     order of results is not part of the contract).
 *   - Option IOMEM_RANGE_CACHE adds a per-allocator cache of recently freed
 *     ranges of 1..8 default-alignment quanta (16 per size, LIFO): a hit is
 *     a few loads and stores with no call (bench: ~9 ns per allocate +
 *     deallocate pair). Cached ranges count as free everywhere they can be
 *     observed: getFreeCount includes them, and getFragmentCount,
 *     serialize, a failing allocate or an allocateRange that touches one
 *     put them back into the tree first. Putting them back never allocates:
 *     such an allocator keeps 128 slots in reserve (not counted by
 *     getFragmentCapacity, unless putting ranges back had to use them) and
 *     allocates its slot array at creation, also with endOfRange 0; the
 *     cache takes no range while the reserve is not whole. Without
 *     IOMEM_DEBUG, double or overlapping frees
 *     are not detected where a cached range is involved (one freed into the
 *     cache is not looked up in the tree, one freed into the tree is not
 *     compared with the cache), so such a range may be handed out twice, as
 *     with any slab or magazine cache; the allocator's own structure stays
 *     consistent. Use the option for callers that free exactly what they
 *     allocated (the IOMapper IOVA space does). With IOMEM_DEBUG both are
 *     checked, reported, and the union is kept.
 *
 * BAD INPUT
 *   allocate: size 0, NULL result, an alignment that is not a power of two,
 *   or a size that overflows when rounded -> false, nothing changed.
 *   allocateRange: size 0, a range past 2^64-1, a range not wholly free ->
 *   false. deallocate: size 0 or a range past 2^64-1 -> ignored; a range
 *   that overlaps free space (double or overlapping deallocation) -> the
 *   union is kept. With IOMEM_DEBUG the three deallocate cases, and a range
 *   dropped for lack of slots, are reported through IOMEM_PANIC with the
 *   call, the allocator and the ranges. No input corrupts the allocator.
 *
 * THREAD SAFETY
 *   With kLocking every call takes the allocator's own lock (IOKit shares ONE
 *   global lock among all allocators; a lock per object never serialises
 *   unrelated allocators). getFreeCount takes it too (IOKit sums without
 *   it). Without kLocking the caller serialises all calls, as in IOKit.
 *   retain/release are atomic in both cases. A call that must grow the slot
 *   array allocates with the lock dropped (the Linux backend's lock is a
 *   spinlock), so it may block where IOMalloc may; pass a capacity large
 *   enough to avoid growth where blocking is not allowed.
 */

typedef struct IORangeAllocator IORangeAllocator;

/* IOKit's option (IORangeAllocator.h). */
enum { kLocking = 0x00000001 };

/* iomem's addition: the per-allocator cache of hot sizes (see above). */
enum { IOMEM_RANGE_CACHE = 0x00010000 };

/**
 * IORangeAllocator_withRange - create an allocator.
 * @endOfRange: last free unit of the initial fragment [0, endOfRange]; 0 for
 *              an empty allocator (IOKit default 0).
 * @defaultAlignment: power of two; 0 means 1 (IOKit default 0). Sizes are
 *              rounded up to it; allocate() aligns to it by default.
 * @capacity: fragment slots of the first allocation and the initial growth
 *              increment; 0 means 1 (IOKit default 0).
 * @options: kLocking, IOMEM_RANGE_CACHE; other bits are ignored (IOKit
 *              default 0).
 *
 * Returns +1 (release with IORangeAllocator_release), or NULL when out of
 * memory or @defaultAlignment is not a power of two (IOKit accepts it and
 * then misaligns). Allocates; thread-safe; O(1).
 */
IOMEM_API IORangeAllocator *IORangeAllocator_withRange(IORangeScalar endOfRange,
                                                       IORangeScalar defaultAlignment,
                                                       UInt32 capacity, IOOptionBits options);

/** IORangeAllocator_retain - take a reference (+1). NULL is ignored.
 * Atomic, O(1). */
IOMEM_API void IORangeAllocator_retain(IORangeAllocator *ra);

/** IORangeAllocator_release - drop a reference; the last one frees the
 * allocator and everything it holds. NULL is ignored. Atomic, O(1) (O(1)
 * frees on the last reference). */
IOMEM_API void IORangeAllocator_release(IORangeAllocator *ra);

/**
 * IORangeAllocator_allocate - take @size units from anywhere free.
 * @size: rounded up to the default alignment.
 * @result: receives the first unit of the range (written only on success).
 * @alignment: power of two the start must be a multiple of; replaces the
 *             default alignment; 0 means the default (IOKit default 0).
 *
 * Returns true on success. False, with nothing changed, for size 0, a NULL
 * @result, an alignment that is not a power of two, a rounded size that
 * overflows, when no free fragment can hold the aligned range, or when the
 * range would split a fragment and no slot can be had (increment 0 at
 * capacity, or out of memory). Ownership: the range is the caller's until
 * deallocated. O(1) when a fragment of the guaranteed size class exists
 * (see ENGINE); amortised O(1) growth. Locking: see THREAD SAFETY.
 */
IOMEM_API bool IORangeAllocator_allocate(IORangeAllocator *ra, IORangeScalar size,
                                         IORangeScalar *result, IORangeScalar alignment);

/**
 * IORangeAllocator_allocateRange - take the specific range
 * [@start, @start + rounded @size - 1].
 *
 * @start is used as given (not aligned, not checked against the default
 * alignment, as in IOKit). Returns true if the whole range was free and is
 * now taken. False, with nothing changed, for size 0, a range past 2^64-1,
 * a range not wholly free (in use, outside every fragment, or spanning a
 * gap), or a split with no slot available. O(log n).
 */
IOMEM_API bool IORangeAllocator_allocateRange(IORangeAllocator *ra, IORangeScalar start,
                                              IORangeScalar size);

/**
 * IORangeAllocator_deallocate - give [@start, @start + rounded @size - 1]
 * back (or to the allocator for the first time).
 *
 * Coalesces with the free neighbours. Overlapping free space is absorbed
 * (the union is kept) and, with IOMEM_DEBUG, reported as a double or
 * overlapping deallocation. Size 0 and ranges past 2^64-1 are ignored
 * (reported with IOMEM_DEBUG). When a new fragment is needed and no slot
 * can be had, the range is dropped (IOKit does the same), counted and, with
 * IOMEM_DEBUG, reported. O(log n) search + amortised O(1) coalescing; O(1)
 * for a cache hit with IOMEM_RANGE_CACHE (O(log n) with IOMEM_DEBUG).
 */
IOMEM_API void IORangeAllocator_deallocate(IORangeAllocator *ra, IORangeScalar start,
                                           IORangeScalar size);

/** IORangeAllocator_getFragmentCount - number of free fragments (maximal
 * free intervals). Puts cached ranges back first. O(1), or O(cached) with
 * IOMEM_RANGE_CACHE. 0 for NULL. */
IOMEM_API UInt32 IORangeAllocator_getFragmentCount(IORangeAllocator *ra);

/** IORangeAllocator_getFragmentCapacity - fragment slots currently
 * available without growing (see CAPACITY). O(1). 0 for NULL. */
IOMEM_API UInt32 IORangeAllocator_getFragmentCapacity(IORangeAllocator *ra);

/** IORangeAllocator_setFragmentCapacityIncrement - slots added (at least)
 * when the slot array is full; 0 stops growth (see CAPACITY). O(1). */
IOMEM_API void IORangeAllocator_setFragmentCapacityIncrement(IORangeAllocator *ra, UInt32 count);

/** IORangeAllocator_getFreeCount - total free units (cached ranges
 * included). When the whole 2^64-unit space is free the true count does not
 * fit: 2^64-1 is returned (IOKit's sum wraps to 0). O(1). 0 for NULL. */
IOMEM_API IORangeScalar IORangeAllocator_getFreeCount(IORangeAllocator *ra);

/**
 * IORangeAllocator_serialize - C form of IOKit's serialize(): the free
 * fragments as start/end pairs, in address order.
 * @pairs: flat array; pairs[2*i] = start, pairs[2*i + 1] = end (inclusive)
 *         of the i-th fragment. May be NULL when @maxPairs is 0.
 * @maxPairs: number of pairs @pairs can hold (2 * maxPairs scalars).
 *
 * Returns the number of fragments (the number of pairs needed); writes
 * min(that, @maxPairs) pairs, lowest addresses first. Puts cached ranges
 * back first. O(n). 0 for NULL.
 */
IOMEM_API UInt32 IORangeAllocator_serialize(IORangeAllocator *ra, IORangeScalar *pairs,
                                            UInt32 maxPairs);

/** Counters of one allocator (iomem_range_get_stats). */
typedef struct iomem_range_stats {
	UInt32        fragments;      /* free fragments in the tree (cache not put back) */
	UInt32        capacity;       /* fragment slots */
	UInt32        increment;      /* current capacity increment */
	UInt32        cached_ranges;  /* ranges held by the IOMEM_RANGE_CACHE cache */
	IORangeScalar free_units;     /* as getFreeCount */
	IORangeScalar cached_units;
	UInt64        lost_ranges;    /* deallocations dropped for lack of a slot */
	IORangeScalar lost_units;
	vm_size_t     footprint;      /* bytes owned: object + slot array + cache */
	vm_size_t     slot_size;      /* bytes per fragment slot */
} iomem_range_stats;

/**
 * iomem_range_get_stats - snapshot of @ra's counters into @out (zeroed
 * first). Returns kIOReturnSuccess, or kIOReturnBadArgument for a NULL
 * argument. Does not put cached ranges back. O(1); takes the lock with
 * kLocking.
 */
IOMEM_API IOReturn iomem_range_get_stats(IORangeAllocator *ra, iomem_range_stats *out);

/**
 * iomem_range_invariants_hold - full self-check (o1heap style): red-black
 * and order properties, fragments disjoint and coalesced, size classes,
 * bitmap and lists, counters, slot chain, cache reservations. True when all
 * hold (and for NULL). O(n log n); for tests and debugging. Takes the lock
 * with kLocking.
 */
IOMEM_API bool iomem_range_invariants_hold(IORangeAllocator *ra);

/* --- internal API for IOMapper's IOVA space (iomem_map.h) -------------- */

/**
 * iomem__range_alloc_below - allocate as IORangeAllocator_allocate, with the
 * whole range at or below @limit (inclusive last unit; 2^64-1 = no limit).
 *
 * Returns kIOReturnSuccess and *@result; kIOReturnBadArgument (NULL @ra or
 * @result, size 0, alignment not a power of two); kIOReturnNoSpace (no fit
 * below @limit); kIOReturnNoResources (a split with increment 0 at
 * capacity); kIOReturnNoMemory (slot growth failed). Nothing changes on
 * failure. Cost: as allocate when the guaranteed-class fragment the bitmap
 * finds lies below @limit; otherwise O(log n) for the lowest guaranteed fit
 * through the tree's per-subtree size classes, and a walk of the smaller
 * classes' fragments below @limit only if that fails.
 */
IOMEM_API IOReturn iomem__range_alloc_below(IORangeAllocator *ra, IORangeScalar size,
                                            IORangeScalar alignment, IORangeScalar limit,
                                            IORangeScalar *result);

/**
 * iomem__range_alloc_pages - allocate @npages pages of (1 << @page_shift)
 * units, aligned to @align_pages pages (0 = the default alignment; else a
 * power of two), ending at or below unit @limit. An IOVA space kept in bytes
 * passes the page shift; one kept in page numbers passes 0.
 *
 * Returns as iomem__range_alloc_below; kIOReturnBadArgument also when
 * @npages is 0, @page_shift >= 64 or a product overflows. *@out is the first
 * unit (not a page number).
 */
IOMEM_API IOReturn iomem__range_alloc_pages(IORangeAllocator *ra, IORangeScalar npages,
                                            unsigned page_shift, IORangeScalar align_pages,
                                            IORangeScalar limit, IORangeScalar *out);

/** iomem__range_free_pages - give back what iomem__range_alloc_pages
 * returned: deallocate(@start, @npages << @page_shift). */
IOMEM_API void iomem__range_free_pages(IORangeAllocator *ra, IORangeScalar start,
                                       IORangeScalar npages, unsigned page_shift);


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
 * against each other. That lock may sleep (Linux: a struct mutex, as
 * IOKit's IORecursiveLock), so those calls need process context there. Buffer accessors (setLength, appendBytes, ...) are
 * never locked: the caller serialises.
 *
 * THE WALK ENGINE: prepare compresses the wired pages into extents (runs of
 * physically contiguous memory), 16 bytes each: {physical address, end
 * offset}. When the extents have one power-of-two length (fully scattered
 * pages), getPhysicalSegment indexes them directly, O(1) at any offset;
 * otherwise it is O(1) for a sequential walk (a hint, then hint + 1) and
 * O(log extents) at a random offset (branch-free binary search).
 * iomem_md_extents() and iomem_md_walk expose them to the DMA layer.
 *
 * DEVIATIONS from IOKit (deliberate, see the issue and reference §8.3):
 *   - no system mapper exists yet: every address is CPU-physical and the
 *     options of getPhysicalSegment are ignored;
 *   - only kernel_task has virtual memory (another task -> NULL), except on
 *     Linux: iomem_current_task() of the creating process (user memory,
 *     pinned at prepare; readBytes/writeBytes need it prepared);
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
	uint32_t               iomem__dma_active;      /* IODMACommands holding it (iomem_dma.h) */
	uint32_t               iomem__auto_prepared;   /* prepares the object owns */
	uint64_t               iomem__preparation_id;
	const iomem_md_ops    *iomem__ops;
	iomem__sleep_lock     *iomem__lock;      /* kIOMemoryThreadSafe only */
	IOMemoryMap           *iomem__maps;      /* its live maps, a weak list (iomem_map.h) */
	union {
		struct {                         /* general, buffer, device */
			IOAddressRange *ranges;
			uint32_t        count;
			IOAddressRange  inline_range;
			void           *user;    /* backend state of a user task, else NULL */
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
IOMEM__HOT_INLINE uint32_t iomem_extents_find(const iomem_md_extent *e, uint32_t n,
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
IOMEM__HOT_INLINE addr64_t IOMemoryDescriptor_getPhysicalSegment(IOMemoryDescriptor *md, IOByteCount offset,
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
 * @task: kernel_task, or (Linux) iomem_current_task() of the calling
 * process: user memory. The descriptor keeps that address space (not its
 * mappings) alive; it must be created in that process, prepared in any
 * process context (the pages are pinned - FOLL_WRITE when the direction
 * includes kIODirectionIn - and unpinned, dirtied, at the last complete).
 * prepare of user memory fails with kIOReturnCannotWire when a page is not
 * mapped, cannot be pinned (I/O or PFN mappings, a write to a read-only
 * mapping) or the process has exited, kIOReturnNoMemory when the kernel has
 * no memory; nothing stays pinned. Not with that mm's mmap_lock held
 * (prepare takes it). NULL for another task, a user task from a kernel
 * thread or another process, or without IOMEM_LINUX_USER_TASKS.
 */
IOMEM_API IOMemoryDescriptor *IOMemoryDescriptor_withAddressRange(mach_vm_address_t address,
                                                                  mach_vm_size_t length,
                                                                  IOOptionBits options, task_t task);
/**
 * IOMemoryDescriptor_withAddressRanges - @count ranges, concatenated.
 * NULL for a NULL array, count 0, a total length that overflows, a range
 * that wraps, or a task other than kernel_task / NULL (Linux: or the
 * calling process's iomem_current_task(), see withAddressRange).
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
 * kIOReturnSuccess for the general, buffer, device and interleaved kinds
 * (as IOKit); a multi or sub descriptor returns the first error a child's
 * complete returned (IOMultiMemoryDescriptor's loop), a custom kind its
 * hook's; NULL: kIOReturnBadArgument. Without a matching prepare nothing
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

IOMEM_API task_t iomem_current_task(void)
{
#if defined(IOMEM_BACKEND_LINUX)
	/* a user process's mm stands for its task; a kernel thread has none */
	void *mm = iomem__platform_current_mm();
	return mm != NULL ? (task_t)mm : kernel_task;
#else
	return kernel_task;
#endif
}

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

/* No 64-bit division: on 32-bit cores it would need libgcc's helpers.
 * Hex is shifts; decimal subtracts powers of ten (at most 9 per digit). */
IOMEM__PRIVATE void iomem__fmt_num(iomem__fmt_buf *b, unsigned long long v, unsigned base, bool prefix)
{
	static const unsigned long long pow10[20] = {
		10000000000000000000ull, 1000000000000000000ull, 100000000000000000ull,
		10000000000000000ull, 1000000000000000ull, 100000000000000ull, 10000000000000ull,
		1000000000000ull, 100000000000ull, 10000000000ull, 1000000000ull, 100000000ull,
		10000000ull, 1000000ull, 100000ull, 10000ull, 1000ull, 100ull, 10ull, 1ull };
	bool started = false;
	int k;
	if (prefix) { iomem__fmt_putc(b, '0'); iomem__fmt_putc(b, 'x'); }
	if (base == 16) {
		for (k = 60; k >= 0; k -= 4) {
			unsigned d = (unsigned)(v >> k) & 0xfu;
			if (d == 0 && !started && k > 0)
				continue;
			started = true;
			iomem__fmt_putc(b, (char)(d < 10 ? '0' + d : 'a' + d - 10));
		}
		return;
	}
	for (k = 0; k < 20; k++) {
		unsigned d = 0;
		while (v >= pow10[k]) { v -= pow10[k]; d++; }
		if (d == 0 && !started && k < 19)
			continue;
		started = true;
		iomem__fmt_putc(b, (char)('0' + d));
	}
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

/* The allocation-failure injection of iomem_debug_fail_allocations. */
static struct {
	uint64_t passed, after, count;
} iomem__dbg_inject;

IOMEM_API void iomem_debug_fail_allocations(uint64_t after_n, uint64_t count)
{
	iomem__mutex_lock(&iomem__dbg_lock);
	iomem__dbg_inject.passed = 0;
	iomem__dbg_inject.after = after_n;
	iomem__dbg_inject.count = count;
	iomem__mutex_unlock(&iomem__dbg_lock);
}

IOMEM_API uint64_t iomem_debug_allocation_points(void)
{
	uint64_t n;
	iomem__mutex_lock(&iomem__dbg_lock);
	n = iomem__dbg_inject.passed;
	iomem__mutex_unlock(&iomem__dbg_lock);
	return n;
}

IOMEM_API bool iomem__debug_fail_point(void)
{
	uint64_t i;
	bool fail;
	iomem__mutex_lock(&iomem__dbg_lock);
	i = iomem__dbg_inject.passed++;
	fail = iomem__dbg_inject.count != 0 && i >= iomem__dbg_inject.after &&
	       i - iomem__dbg_inject.after < iomem__dbg_inject.count;
	if (fail)
		iomem__dbg.stats.family[IOMEM_ALLOC_INTERNAL].failed_allocs++;
	iomem__mutex_unlock(&iomem__dbg_lock);
	return fail;
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
		iomem__sleep_lock_lock(md->iomem__lock);
}

IOMEM__PRIVATE void iomem__md_unlock(IOMemoryDescriptor *md)
{
	if (md->iomem__lock != NULL)
		iomem__sleep_lock_unlock(md->iomem__lock);
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
		md->iomem__lock = (iomem__sleep_lock *)iomem__alloc_internal(sizeof *md->iomem__lock, "IOMemoryDescriptor lock");
		if (md->iomem__lock == NULL || !iomem__sleep_lock_init(md->iomem__lock)) {
			if (md->iomem__lock != NULL)
				iomem__free_internal(md->iomem__lock, sizeof *md->iomem__lock, "IOMemoryDescriptor lock");
			iomem__free_internal(md, sizeof *md, IOMEM__MD_NAME);
			return NULL;
		}
	}
	return md;
}

/* ---- extents ---------------------------------------------------------- */

/* Pages spanned by one range (0 for an empty range). A shift, not a 64-bit
 * division (libgcc's __aeabi_uldivmod on 32-bit cores): the page size is a
 * power of two. */
IOMEM__PRIVATE vm_size_t iomem__range_pages(const IOAddressRange *r, vm_size_t page)
{
	uint64_t first, last, span;
	if (r->length == 0)
		return 0;
	first = r->address & ~(uint64_t)(page - 1);
	last = (r->address + r->length - 1) & ~(uint64_t)(page - 1);
	for (span = last - first; page > 1; page >>= 1)
		span >>= 1;
	return (vm_size_t)(span + 1);
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

IOMEM__PRIVATE void iomem__md_unwire_ranges(IOMemoryDescriptor *md, uint32_t upto, bool abort)
{
	vm_size_t page = iomem__platform_page_size();
	uint32_t i;
	(void)abort;
#if defined(IOMEM__HAVE_USER_TASKS)
	if (md->iomem__u.g.user != NULL) {
		iomem__platform_user_unwire((iomem__utask *)md->iomem__u.g.user, abort);
		return;
	}
#endif
	for (i = 0; i < upto; i++) {
		const IOAddressRange *r = &md->iomem__u.g.ranges[i];
		vm_size_t n = iomem__range_pages(r, page);
		if (n)
			iomem__platform_unwire((uintptr_t)(r->address & ~(uint64_t)(page - 1)), n);
	}
}

/* Virtual ranges: wire every page, then compress into extents. */
IOMEM__PRIVATE IOReturn iomem__md_wire(IOMemoryDescriptor *md, bool write)
{
	vm_size_t page = iomem__platform_page_size(), total = 0, k;
	IOPhysicalAddress *pa;
	iomem__xb b;
	iomem_md_extent *ext = NULL;
	uint32_t i, pass;
	IOReturn ret;
	(void)write;                      /* user memory only */
	for (i = 0; i < md->iomem__u.g.count; i++)
		total += iomem__range_pages(&md->iomem__u.g.ranges[i], page);
	if (total == 0)
		return kIOReturnSuccess;
	pa = IOMEM__FAIL_POINT() ? NULL
	     : (IOPhysicalAddress *)iomem__platform_malloc(iomem_array_size(sizeof *pa, total));
	if (pa == NULL)
		return kIOReturnNoMemory;
#if defined(IOMEM__HAVE_USER_TASKS)
	if (md->iomem__u.g.user != NULL) {
		/* user memory: the backend pins all ranges at once (and keeps the
		 * pages to unpin) */
		ret = iomem__platform_user_wire((iomem__utask *)md->iomem__u.g.user, md->iomem__u.g.ranges,
		                                md->iomem__u.g.count, total, pa, write);
		if (ret != kIOReturnSuccess) {
			iomem__platform_free(pa);
			return ret;
		}
	} else
#endif
	for (i = 0, k = 0; i < md->iomem__u.g.count; i++) {
		const IOAddressRange *r = &md->iomem__u.g.ranges[i];
		vm_size_t n = iomem__range_pages(r, page);
		if (n == 0)
			continue;
		ret = IOMEM__FAIL_POINT() ? kIOReturnNoResources
		      : iomem__platform_wire((uintptr_t)(r->address & ~(uint64_t)(page - 1)), n, pa + k);
		if (ret != kIOReturnSuccess) {
			iomem__md_unwire_ranges(md, i, true);
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
				iomem__md_unwire_ranges(md, md->iomem__u.g.count, true);
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

IOMEM__PRIVATE void iomem__md_unwire(IOMemoryDescriptor *md, bool abort)
{
	iomem__md_free_extents(md);
	iomem__md_unwire_ranges(md, md->iomem__u.g.count, abort);
	md->iomem__flags &= ~(IOOptionBits)kIOMemoryPreparedReadOnly;
	md->iomem__preparation_id = kIOPreparationIDUnprepared;
}

/* ---- general descriptor ------------------------------------------------ */

IOMEM__PRIVATE void iomem__md_user_detach(void *user)
{
#if defined(IOMEM__HAVE_USER_TASKS)
	iomem__platform_task_detach((iomem__utask *)user);
#else
	(void)user;
#endif
}

IOMEM__PRIVATE IOMemoryDescriptor *iomem__gmd_create(iomem_md_kind kind, const IOAddressRange *ranges,
                                                     UInt32 count, IOOptionBits options, task_t task)
{
	IOMemoryDescriptor *md;
	bool physical = (task == NULL);
	IOByteCount total = 0;
	void *user = NULL;
	UInt32 i;
	if (ranges == NULL || count == 0)
		return NULL;
	if (!physical && task != kernel_task) {
#if !defined(IOMEM__HAVE_USER_TASKS)
		return NULL;                             /* one address space */
#else
		user = iomem__platform_task_attach((void *)task);
		if (user == NULL)
			return NULL;
#endif
	}
	for (i = 0; i < count; i++) {
		uint64_t a = ranges[i].address, l = ranges[i].length;
		if ((l > ~(uint64_t)0 - a || l > ~(uint64_t)0 - total) ||
		    (!physical && l != 0 && (a == 0 || (uint64_t)(uintptr_t)(a + l - 1) != a + l - 1))) {
			iomem__md_user_detach(user);
			return NULL;
		}
		total += l;
	}
	options &= ~(IOOptionBits)kIOMemoryTypeMask;
	options |= physical ? kIOMemoryTypePhysical64 : kIOMemoryTypeVirtual64;
	if (options & (kIOMemoryHostOnly | kIOMemoryRemote))
		options |= kIOMemoryMapperNone;
	md = iomem__md_alloc(kind, options);
	if (md == NULL) {
		iomem__md_user_detach(user);
		return NULL;
	}
	md->iomem__u.g.user = user;               /* md_free detaches it */
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
	tmp = IOMEM__FAIL_POINT() ? NULL
	      : (IOAddressRange *)iomem__platform_malloc(iomem_array_size(sizeof *tmp, count));
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

/* Reference counts of the library's objects (descriptors, commands,
 * mappers, maps): atomic where the compiler has atomics; on bare metal no
 * read-modify-write atomics are assumed (Cortex-M0), the platform lock
 * hooks instead. iomem__ref_release returns the count left. */
IOMEM__PRIVATE void iomem__ref_retain(uint32_t *count)
{
#if (defined(__GNUC__) || defined(__clang__)) && !defined(IOMEM_BACKEND_BAREMETAL)
	__atomic_fetch_add(count, 1u, __ATOMIC_RELAXED);
#else
	iomem__mutex_lock(&iomem__md_id_lock);
	(*count)++;
	iomem__mutex_unlock(&iomem__md_id_lock);
#endif
}

IOMEM__PRIVATE uint32_t iomem__ref_release(uint32_t *count)
{
	uint32_t left;
#if (defined(__GNUC__) || defined(__clang__)) && !defined(IOMEM_BACKEND_BAREMETAL)
	left = __atomic_sub_fetch(count, 1u, __ATOMIC_ACQ_REL);
#else
	iomem__mutex_lock(&iomem__md_id_lock);
	left = --(*count);
	iomem__mutex_unlock(&iomem__md_id_lock);
#endif
	return left;
}

IOMEM_API void IOMemoryDescriptor_retain(IOMemoryDescriptor *md)
{
	if (md != NULL)
		iomem__ref_retain(&md->iomem__refcount);
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
		iomem__md_user_detach(md->iomem__u.g.user);
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
		iomem__sleep_lock_destroy(md->iomem__lock);
		iomem__free_internal(md->iomem__lock, sizeof *md->iomem__lock, "IOMemoryDescriptor lock");
	}
	iomem__free_internal(md, sizeof *md, IOMEM__MD_NAME);
}

IOMEM_API void IOMemoryDescriptor_release(IOMemoryDescriptor *md)
{
	if (md != NULL && iomem__ref_release(&md->iomem__refcount) == 0)
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
			ret = iomem__md_wire(md, (direction & kIODirectionIn) != 0);
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
	bool abort = (direction & kIODirectionCompleteWithError) != 0;
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
			iomem__md_unwire(md, abort);
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
#if IOMEM__DEBUG
		if (IOMEM__LOAD_RELAXED32(&md->iomem__dma_active) != 0 && md->iomem__prepare_count == 1)
			iomem__report("IOMemoryDescriptor_complete(%p): final complete while an IODMACommand "
			              "holds the descriptor (DMA active: clear the command first)", (void *)md);
#endif
		ret = iomem__md_complete_locked(md, direction);
	}
	iomem__md_unlock(md);
	return ret;
}

/* ---- bytes --------------------------------------------------------------- */

/* Up to this many ranges, readBytes/writeBytes of prepared virtual memory
 * scan the ranges and copy through their addresses; above, the extents
 * find the place in O(log n) and the copy goes through physical memory. */
#define IOMEM__MD_COPY_VIRTUAL_RANGES 16u

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
	if (IOMEM__MD_IS_GENERAL(md) && !md->iomem__physical && md->iomem__extents != NULL &&
	    md->iomem__u.g.user == NULL && md->iomem__u.g.count <= IOMEM__MD_COPY_VIRTUAL_RANGES) {
		/* prepared kernel_task memory: its virtual ranges are CPU addresses,
		 * so copy run by run through them (one memcpy per range, no
		 * physical lookup per page); a scan of the ranges is cheaper than
		 * the physical path for the few-range descriptors this serves */
		const IOAddressRange *r = md->iomem__u.g.ranges;
		IOByteCount skip = offset;
		uint32_t i;
		for (i = 0; i < md->iomem__u.g.count && done < length; i++) {
			IOByteCount n;
			unsigned char *va;
			if (skip >= r[i].length) {
				skip -= r[i].length;
				continue;
			}
			va = (unsigned char *)(uintptr_t)r[i].address + skip;
			n = r[i].length - skip;
			if (n > length - done)
				n = length - done;
			if (!to_md)
				iomem__memcpy(b + done, va, n);
			else if (b != NULL)
				iomem__memcpy(va, b + done, n);
			else
				iomem__memset(va, 0, n);
			done += n;
			skip = 0;
		}
		iomem__md_unlock(md);
		return done;
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
#if defined(IOMEM_BACKEND_BAREMETAL)
		/* a non-coherent core: Flush = clean + invalidate, Store = clean,
		 * of the segment's CPU view (the platform's maintenance or hooks) */
		if (options == kIOMemoryIncoherentIOFlush || options == kIOMemoryIncoherentIOStore) {
			void *va = iomem__platform_phys_to_virt(pa);
			if (va != NULL && options == kIOMemoryIncoherentIOFlush)
				iomem__platform_cache_flush(va, (vm_size_t)seg);
			else if (va != NULL)
				iomem__platform_cache_clean(va, (vm_size_t)seg);
		}
#endif
		/* elsewhere a coherent host: the cache operation itself is a no-op */
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
	if (alignment > ((mach_vm_address_t)1 << 31))
		return NULL;                              /* from the mask: would truncate in vm_size_t */
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
	if (IOMEM__FAIL_POINT() ||
	    iomem__platform_ram_alloc(&md->iomem__u.g.ram, (vm_size_t)capacity, (vm_size_t)alignment,
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

/* >>impl-range: IORangeAllocator.
 * Free fragments are nodes of a slot array (index 0 is the nil sentinel of
 * the red-black tree). Each node is at once in the tree (ordered by start,
 * parent links, augmented with the largest size class of its subtree) and
 * on the doubly linked list of its size class. Never call into iomem (the
 * allocator, the debug layer, reports) with ra->lock held: on bare metal
 * every iomem lock is the same hook lock. */

#ifndef IOMEM_RANGE_CACHE_CLASSES   /* impl: cached sizes are 1..N quanta */
#  define IOMEM_RANGE_CACHE_CLASSES 8
#endif
#ifndef IOMEM_RANGE_CACHE_DEPTH     /* impl: cached ranges per size */
#  define IOMEM_RANGE_CACHE_DEPTH 16
#endif


#define IOMEM__RANGE_BINS      64u
#define IOMEM__RANGE_MAX_SLOTS 0x7fffffffu
#define IOMEM__RANGE_ALL       (~(IORangeScalar)0)
#define IOMEM__RANGE_CACHE_SLOTS ((uint32_t)(IOMEM_RANGE_CACHE_CLASSES * IOMEM_RANGE_CACHE_DEPTH))

typedef struct iomem__range_node {
	IORangeScalar start;          /* first free unit */
	uint32_t      kid[2];         /* [0] left, [1] right (next to start: the
	                               * descent reads only these 16 bytes) */
	IORangeScalar end;            /* last free unit (inclusive, as IOKit) */
	uint32_t      parent;
	uint32_t      prev, next;     /* size-class list; next also chains unused slots */
	uint8_t       bin;            /* size class: floor(log2(size)), 63 at most */
	uint8_t       maxbin;         /* 1 + largest class in this subtree; 0 = nil */
	uint8_t       red;
	uint8_t       odd;            /* start or end + 1 not a multiple of the quantum */
} iomem__range_node;
IOMEM__STATIC_ASSERT(sizeof(iomem__range_node) <= 40, iomem_range_node_is_40_bytes);

/* Only the per-class counts change on a hit (no shared counters: each
 * would add a store-to-load chain to every operation); totals are summed
 * when asked for. */
typedef struct iomem__range_cache {
	uint8_t       count[IOMEM_RANGE_CACHE_CLASSES];
	IORangeScalar start[IOMEM_RANGE_CACHE_CLASSES][IOMEM_RANGE_CACHE_DEPTH];
} iomem__range_cache;

struct IORangeAllocator {
	iomem__range_node  *nodes;    /* [0] nil, [1..capacity] slots */
	uint32_t            root;
	uint32_t            capacity; /* slots in the array, reserve included */
	uint32_t            reserve;  /* slots kept for the cache's ranges */
	uint32_t            gate;     /* cache accepts ranges: capacity - count >= reserve */
	uint32_t            count;    /* fragments in the tree */
	uint32_t            unused;   /* head of the unused-slot chain */
	uint32_t            increment;
	uint32_t            odd;      /* fragments with an unaligned boundary */
	uint32_t            refcount;
	uint32_t            aug;      /* per-subtree classes maintained (see alloc_below) */
	IOOptionBits        options;
	unsigned            qshift;   /* log2(default alignment) */
	IORangeScalar       mask;     /* default alignment - 1 */
	uint64_t            binmap;   /* bit b: class b's list is not empty */
	IORangeScalar       units;    /* sum of the fragments' sizes, mod 2^64 */
	iomem__range_cache *cache;    /* IOMEM_RANGE_CACHE only */
	uint64_t            lost_ranges;
	IORangeScalar       lost_units;
	uint32_t            head[IOMEM__RANGE_BINS];
	iomem__mutex        lock;     /* kLocking only */
};

/* --- bit scans (x != 0) ------------------------------------------------ */

IOMEM_FORCEINLINE unsigned iomem__ctz64(uint64_t x)
{
#if IOMEM_USE_INTRINSICS && (defined(__GNUC__) || defined(__clang__))
#  if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ >= 8
	return (unsigned)__builtin_ctzll(x);
#  else
	uint32_t lo = (uint32_t)x;
	return lo ? (unsigned)__builtin_ctz(lo) : 32u + (unsigned)__builtin_ctz((uint32_t)(x >> 32));
#  endif
#else
	unsigned n = 0;
	if ((x & 0xffffffffu) == 0) { n += 32; x >>= 32; }
	if ((x & 0xffffu) == 0)     { n += 16; x >>= 16; }
	if ((x & 0xffu) == 0)       { n += 8;  x >>= 8; }
	if ((x & 0xfu) == 0)        { n += 4;  x >>= 4; }
	if ((x & 0x3u) == 0)        { n += 2;  x >>= 2; }
	return n + (unsigned)((x & 1u) == 0);
#endif
}

/* floor(log2(x)) */
IOMEM_FORCEINLINE unsigned iomem__flog2(uint64_t x)
{
#if IOMEM_USE_INTRINSICS && (defined(__GNUC__) || defined(__clang__))
#  if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ >= 8
	return 63u - (unsigned)__builtin_clzll(x);
#  else
	uint32_t hi = (uint32_t)(x >> 32);
	return hi ? 63u - (unsigned)__builtin_clz(hi) : 31u - (unsigned)__builtin_clz((uint32_t)x);
#  endif
#else
	unsigned n = 0;
	if (x >> 32) { n += 32; x >>= 32; }
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8)  { n += 8;  x >>= 8; }
	if (x >> 4)  { n += 4;  x >>= 4; }
	if (x >> 2)  { n += 2;  x >>= 2; }
	return n + (unsigned)(x >> 1);
#endif
}

/* --- small helpers --------------------------------------------------- */

IOMEM_FORCEINLINE void iomem__range_lock(IORangeAllocator *ra)
{
	if (ra->options & kLocking)
		iomem__mutex_lock(&ra->lock);
}

IOMEM_FORCEINLINE void iomem__range_unlock(IORangeAllocator *ra)
{
	if (ra->options & kLocking)
		iomem__mutex_unlock(&ra->lock);
}

/* Size class of [s, e]; the whole 2^64 space is class 63. */
IOMEM_FORCEINLINE unsigned iomem__range_bin(IORangeScalar s, IORangeScalar e)
{
	IORangeScalar span = e - s;
	return span == IOMEM__RANGE_ALL ? 63u : iomem__flog2(span + 1);
}

IOMEM_FORCEINLINE uint8_t iomem__range_isodd(const IORangeAllocator *ra, IORangeScalar s, IORangeScalar e)
{
	return (uint8_t)(((s | (e + 1)) & ra->mask) != 0);
}

/* Does a fragment ending at @e touch (overlap or adjoin) one starting at @s2 >= its start? */
IOMEM_FORCEINLINE bool iomem__range_touches(IORangeScalar e, IORangeScalar s2)
{
	return e == IOMEM__RANGE_ALL || e + 1 >= s2;
}

/* A free slot not reserved for the cache? (The array always holds the
 * reserve: a cached allocator gets its array at creation.) */
IOMEM_FORCEINLINE bool iomem__range_have_slot(const IORangeAllocator *ra)
{
	return ra->capacity - ra->count > ra->reserve;
}

/* Re-open or close the cache's door after the fragment count or the
 * capacity changed: a full cache must always fit in the free slots. */
IOMEM_FORCEINLINE void iomem__range_gate(IORangeAllocator *ra)
{
	ra->gate = ra->capacity - ra->count >= ra->reserve;
}

IOMEM_FORCEINLINE uint32_t iomem__range_cache_entries(const iomem__range_cache *c)
{
	uint32_t k, e = 0;
	if (c)
		for (k = 0; k < IOMEM_RANGE_CACHE_CLASSES; k++)
			e += c->count[k];
	return e;
}

IOMEM_FORCEINLINE IORangeScalar iomem__range_cache_units(const IORangeAllocator *ra)
{
	IORangeScalar u = 0;
	uint32_t k;
	if (ra->cache)
		for (k = 0; k < IOMEM_RANGE_CACHE_CLASSES; k++)
			u += (IORangeScalar)ra->cache->count[k] * (((IORangeScalar)k + 1) << ra->qshift);
	return u;
}

/* --- size-class lists -------------------------------------------------- */

IOMEM__PRIVATE void iomem__range_bin_push(IORangeAllocator *ra, uint32_t i)
{
	iomem__range_node *n = ra->nodes;
	unsigned b = n[i].bin;
	uint32_t h = ra->head[b];
	n[i].prev = 0;
	n[i].next = h;
	if (h)
		n[h].prev = i;
	ra->head[b] = i;
	ra->binmap |= (uint64_t)1 << b;
}

IOMEM__PRIVATE void iomem__range_bin_unlink(IORangeAllocator *ra, uint32_t i)
{
	iomem__range_node *n = ra->nodes;
	uint32_t p = n[i].prev, x = n[i].next;
	if (p) {
		n[p].next = x;
	} else {
		ra->head[n[i].bin] = x;
		if (!x)
			ra->binmap &= ~((uint64_t)1 << n[i].bin);
	}
	if (x)
		n[x].prev = p;
}

/* --- red-black tree with the maxbin augmentation ----------------------- */

IOMEM_FORCEINLINE uint8_t iomem__range_calc(const iomem__range_node *n, uint32_t i)
{
	uint8_t m = (uint8_t)(n[i].bin + 1), l = n[n[i].kid[0]].maxbin, r = n[n[i].kid[1]].maxbin;
	if (l > m) m = l;
	if (r > m) m = r;
	return m;
}

/* Recompute maxbin from @i upwards, stopping at @stop or once unchanged. */
IOMEM__PRIVATE void iomem__range_aug_walk(iomem__range_node *n, uint32_t i, uint32_t stop)
{
	while (i != stop) {
		uint8_t m = iomem__range_calc(n, i);
		if (m == n[i].maxbin)
			break;
		n[i].maxbin = m;
		i = n[i].parent;
	}
}

IOMEM__PRIVATE void iomem__range_rotate_left(IORangeAllocator *ra, uint32_t x)
{
	iomem__range_node *n = ra->nodes;
	uint32_t y = n[x].kid[1], p = n[x].parent;
	n[x].kid[1] = n[y].kid[0];
	if (n[y].kid[0])
		n[n[y].kid[0]].parent = x;
	n[y].parent = p;
	if (!p)
		ra->root = y;
	else if (x == n[p].kid[0])
		n[p].kid[0] = y;
	else
		n[p].kid[1] = y;
	n[y].kid[0] = x;
	n[x].parent = y;
	n[y].maxbin = n[x].maxbin;
	n[x].maxbin = iomem__range_calc(n, x);
}

IOMEM__PRIVATE void iomem__range_rotate_right(IORangeAllocator *ra, uint32_t x)
{
	iomem__range_node *n = ra->nodes;
	uint32_t y = n[x].kid[0], p = n[x].parent;
	n[x].kid[0] = n[y].kid[1];
	if (n[y].kid[1])
		n[n[y].kid[1]].parent = x;
	n[y].parent = p;
	if (!p)
		ra->root = y;
	else if (x == n[p].kid[1])
		n[p].kid[1] = y;
	else
		n[p].kid[0] = y;
	n[y].kid[1] = x;
	n[x].parent = y;
	n[y].maxbin = n[x].maxbin;
	n[x].maxbin = iomem__range_calc(n, x);
}

IOMEM_FORCEINLINE uint32_t iomem__range_min(const iomem__range_node *n, uint32_t i)
{
	while (n[i].kid[0])
		i = n[i].kid[0];
	return i;
}

IOMEM_FORCEINLINE uint32_t iomem__range_next(const iomem__range_node *n, uint32_t i)
{
	uint32_t p;
	if (n[i].kid[1])
		return iomem__range_min(n, n[i].kid[1]);
	for (p = n[i].parent; p && i == n[p].kid[1]; p = n[p].parent)
		i = p;
	return p;
}

/* One descent: the last fragment starting at or below @key (or 0), and in
 * *@succ the first one starting above it (or 0). Branch-free steps: the
 * keys are random, so a branch per level would mostly mispredict. Both
 * children are read with the start and picked with a mask (gcc turns a
 * ternary here into a branch), so each level waits for one load, not for
 * the start and then kid[go]. */
IOMEM_FORCEINLINE uint32_t iomem__range_find_around(const IORangeAllocator *ra, IORangeScalar key, uint32_t *succ)
{
	const iomem__range_node *n = ra->nodes;
	uint32_t x = ra->root, best = 0, after = 0;
	while (x) {
		uint32_t l = n[x].kid[0], r = n[x].kid[1];
		uint32_t m = (uint32_t)0 - (uint32_t)(n[x].start <= key);   /* all ones: go right */
		best = (x & m) | (best & ~m);
		after = (after & m) | (x & ~m);
		x = l ^ ((l ^ r) & m);
	}
	*succ = after;
	return best;
}

IOMEM_FORCEINLINE uint32_t iomem__range_find_le(const IORangeAllocator *ra, IORangeScalar key)
{
	uint32_t succ;
	return iomem__range_find_around(ra, key, &succ);
}

/* Link node @z (fields start..odd set) between @p and its in-order
 * successor @after (either may be 0: the ends; @after may be passed as
 * IOMEM__RANGE_UNKNOWN), then rebalance. */
#define IOMEM__RANGE_UNKNOWN 0xffffffffu
IOMEM__PRIVATE void iomem__range_insert_after(IORangeAllocator *ra, uint32_t p, uint32_t after, uint32_t z)
{
	iomem__range_node *n = ra->nodes;
	uint32_t q;
	n[z].kid[0] = n[z].kid[1] = 0;
	n[z].red = 1;
	n[z].maxbin = (uint8_t)(n[z].bin + 1);
	if (!ra->root) {
		ra->root = z;
		n[z].parent = 0;
	} else {
		if (p && !n[p].kid[1]) {
			q = p;
			n[q].kid[1] = z;
		} else {
			/* the successor has no left child: it is the minimum of
			 * p's right subtree (or of the tree) */
			if (after == IOMEM__RANGE_UNKNOWN)
				after = iomem__range_min(n, p ? n[p].kid[1] : ra->root);
			q = after;
			n[q].kid[0] = z;
		}
		n[z].parent = q;
		for (; ra->aug && q && n[q].maxbin < n[z].maxbin; q = n[q].parent)
			n[q].maxbin = n[z].maxbin;
	}
	while (n[n[z].parent].red) {
		uint32_t zp = n[z].parent, zpp = n[zp].parent, y;
		if (zp == n[zpp].kid[0]) {
			y = n[zpp].kid[1];
			if (n[y].red) {
				n[zp].red = 0; n[y].red = 0; n[zpp].red = 1;
				z = zpp;
			} else {
				if (z == n[zp].kid[1]) {
					z = zp;
					iomem__range_rotate_left(ra, z);
					zp = n[z].parent;
				}
				n[zp].red = 0; n[zpp].red = 1;
				iomem__range_rotate_right(ra, zpp);
			}
		} else {
			y = n[zpp].kid[0];
			if (n[y].red) {
				n[zp].red = 0; n[y].red = 0; n[zpp].red = 1;
				z = zpp;
			} else {
				if (z == n[zp].kid[0]) {
					z = zp;
					iomem__range_rotate_right(ra, z);
					zp = n[z].parent;
				}
				n[zp].red = 0; n[zpp].red = 1;
				iomem__range_rotate_left(ra, zpp);
			}
		}
	}
	n[ra->root].red = 0;
}

IOMEM_FORCEINLINE void iomem__range_transplant(IORangeAllocator *ra, uint32_t u, uint32_t v)
{
	iomem__range_node *n = ra->nodes;
	uint32_t p = n[u].parent;
	if (!p)
		ra->root = v;
	else if (u == n[p].kid[0])
		n[p].kid[0] = v;
	else
		n[p].kid[1] = v;
	if (v)
		n[v].parent = p;
}

IOMEM__PRIVATE void iomem__range_erase(IORangeAllocator *ra, uint32_t z)
{
	iomem__range_node *n = ra->nodes;
	uint32_t x, xp, y;
	uint8_t yred = n[z].red;
	if (!n[z].kid[0] || !n[z].kid[1]) {
		x = n[z].kid[0] ? n[z].kid[0] : n[z].kid[1];
		xp = n[z].parent;
		iomem__range_transplant(ra, z, x);
		if (ra->aug)
			iomem__range_aug_walk(n, xp, 0);
	} else {
		y = iomem__range_min(n, n[z].kid[1]);
		yred = n[y].red;
		x = n[y].kid[1];
		if (n[y].parent == z) {
			xp = y;
		} else {
			xp = n[y].parent;
			iomem__range_transplant(ra, y, x);
			n[y].kid[1] = n[z].kid[1];
			n[n[y].kid[1]].parent = y;
		}
		iomem__range_transplant(ra, z, y);
		n[y].kid[0] = n[z].kid[0];
		n[n[y].kid[0]].parent = y;
		n[y].red = n[z].red;
		if (ra->aug) {
			if (xp != y)
				iomem__range_aug_walk(n, xp, y);
			n[y].maxbin = iomem__range_calc(n, y);
			iomem__range_aug_walk(n, n[y].parent, 0);
		}
	}
	if (yred)
		return;
	while (x != ra->root && !n[x].red) {
		uint32_t w;
		if (x == n[xp].kid[0]) {
			w = n[xp].kid[1];
			if (n[w].red) {
				n[w].red = 0; n[xp].red = 1;
				iomem__range_rotate_left(ra, xp);
				w = n[xp].kid[1];
			}
			if (!n[n[w].kid[0]].red && !n[n[w].kid[1]].red) {
				n[w].red = 1;
				x = xp;
				xp = n[x].parent;
			} else {
				if (!n[n[w].kid[1]].red) {
					n[n[w].kid[0]].red = 0; n[w].red = 1;
					iomem__range_rotate_right(ra, w);
					w = n[xp].kid[1];
				}
				n[w].red = n[xp].red; n[xp].red = 0; n[n[w].kid[1]].red = 0;
				iomem__range_rotate_left(ra, xp);
				x = ra->root;
			}
		} else {
			w = n[xp].kid[0];
			if (n[w].red) {
				n[w].red = 0; n[xp].red = 1;
				iomem__range_rotate_right(ra, xp);
				w = n[xp].kid[0];
			}
			if (!n[n[w].kid[0]].red && !n[n[w].kid[1]].red) {
				n[w].red = 1;
				x = xp;
				xp = n[x].parent;
			} else {
				if (!n[n[w].kid[0]].red) {
					n[n[w].kid[1]].red = 0; n[w].red = 1;
					iomem__range_rotate_left(ra, w);
					w = n[xp].kid[0];
				}
				n[w].red = n[xp].red; n[xp].red = 0; n[n[w].kid[0]].red = 0;
				iomem__range_rotate_right(ra, xp);
				x = ra->root;
			}
		}
	}
	n[x].red = 0;
	n[0].red = 0;
	n[0].maxbin = 0;
}

/* --- fragments ------------------------------------------------------- */

/* Give fragment @i the bounds [s, e], keeping its tree position (callers
 * never move a fragment past a neighbour). */
IOMEM__PRIVATE void iomem__range_set(IORangeAllocator *ra, uint32_t i, IORangeScalar s, IORangeScalar e)
{
	iomem__range_node *n = ra->nodes;
	unsigned b = iomem__range_bin(s, e), ob = n[i].bin;
	uint8_t odd = iomem__range_isodd(ra, s, e);
	n[i].start = s;
	n[i].end = e;
	ra->odd = ra->odd - n[i].odd + odd;
	n[i].odd = odd;
	if (b == ob)
		return;
	iomem__range_bin_unlink(ra, i);
	n[i].bin = (uint8_t)b;
	iomem__range_bin_push(ra, i);
	if (!ra->aug)
		return;
	if (b > ob) {
		uint32_t x;
		for (x = i; x && n[x].maxbin < b + 1; x = n[x].parent)
			n[x].maxbin = (uint8_t)(b + 1);
	} else if (n[i].maxbin == ob + 1) {
		iomem__range_aug_walk(n, i, 0);
	}
}

/* New fragment [s, e] between @p and @after (see insert_after). A free
 * slot must exist. */
IOMEM__PRIVATE uint32_t iomem__range_new(IORangeAllocator *ra, uint32_t p, uint32_t after, IORangeScalar s,
                                         IORangeScalar e)
{
	iomem__range_node *n = ra->nodes;
	uint32_t i = ra->unused;
	ra->unused = n[i].next;
	ra->count++;
	n[i].start = s;
	n[i].end = e;
	n[i].bin = (uint8_t)iomem__range_bin(s, e);
	n[i].odd = iomem__range_isodd(ra, s, e);
	ra->odd += n[i].odd;
	iomem__range_bin_push(ra, i);
	iomem__range_insert_after(ra, p, after, i);
	return i;
}

IOMEM__PRIVATE void iomem__range_delete(IORangeAllocator *ra, uint32_t i)
{
	iomem__range_node *n = ra->nodes;
	iomem__range_bin_unlink(ra, i);
	ra->odd -= n[i].odd;
	iomem__range_erase(ra, i);
	n[i].next = ra->unused;
	ra->unused = i;
	ra->count--;
}

/* Take [d, de] out of fragment @f, which holds it. A free slot must exist
 * when both ends of @f remain. */
IOMEM__PRIVATE void iomem__range_carve(IORangeAllocator *ra, uint32_t f, IORangeScalar d, IORangeScalar de)
{
	iomem__range_node *n = ra->nodes;
	IORangeScalar fs = n[f].start, fe = n[f].end;
	if (d == fs) {
		if (de == fe)
			iomem__range_delete(ra, f);
		else
			iomem__range_set(ra, f, de + 1, fe);
	} else {
		iomem__range_set(ra, f, fs, d - 1);
		if (de != fe)
			iomem__range_new(ra, f, IOMEM__RANGE_UNKNOWN, de + 1, fe);
	}
	ra->units -= de - d + 1;
}

/* What a deallocation met: the first free range it overlapped. */
typedef struct iomem__range_overlap {
	bool          hit;
	IORangeScalar start, end;
} iomem__range_overlap;

IOMEM_FORCEINLINE void iomem__range_note_overlap(iomem__range_overlap *ov, IORangeScalar s, IORangeScalar e,
                                                 IORangeScalar fs, IORangeScalar fe)
{
	if (ov->hit)
		return;
	ov->hit = true;
	ov->start = fs > s ? fs : s;
	ov->end = fe < e ? fe : e;
}

/* Where [s, e] goes: p/q = the fragments around s (find_around), and
 * whether each touches (overlaps or adjoins) the range. No new fragment
 * is needed when one of them does. */
typedef struct iomem__range_spot {
	uint32_t p, q;
	bool     tp, tq;
} iomem__range_spot;

IOMEM_FORCEINLINE iomem__range_spot iomem__range_locate(const IORangeAllocator *ra, IORangeScalar s, IORangeScalar e)
{
	const iomem__range_node *n = ra->nodes;
	iomem__range_spot w;
	w.p = iomem__range_find_around(ra, s, &w.q);
	w.tp = w.p && (s == 0 || n[w.p].end >= s - 1);
	w.tq = w.q && iomem__range_touches(e, n[w.q].start);
	return w;
}

/* Add [s, e] to the free set (union), coalescing. @w from locate(); a free
 * slot must exist when neither neighbour touches. */
IOMEM__PRIVATE void iomem__range_free_at(IORangeAllocator *ra, iomem__range_spot w, IORangeScalar s, IORangeScalar e,
                                         iomem__range_overlap *ov)
{
	iomem__range_node *n = ra->nodes;
	IORangeScalar ns, ne, units = ra->units;
	uint32_t a, x;
	/* The size-class list neighbours of the fragment that grows are about
	 * to be written (it likely changes class): fetch them now. */
	a = w.tp ? w.p : w.q;
	if (a) {
		IOMEM__PREFETCHW(&n[n[a].prev]);
		IOMEM__PREFETCHW(&n[n[a].next]);
	}
	if (w.tp) {
		a = w.p;
		if (n[a].end >= s)
			iomem__range_note_overlap(ov, s, e, n[a].start, n[a].end);
		ns = n[a].start;
		ne = n[a].end > e ? n[a].end : e;
		x = w.q;                                 /* may touch too */
	} else if (w.tq) {
		a = w.q;
		if (n[a].start <= e)
			iomem__range_note_overlap(ov, s, e, n[a].start, n[a].end);
		ns = s;
		ne = n[a].end > e ? n[a].end : e;
		x = e > n[a].end ? iomem__range_next(n, a) : 0;
	} else {
		iomem__range_new(ra, w.p, w.q, s, e);
		ra->units = units + (e - s + 1);
		return;
	}
	units -= n[a].end - n[a].start + 1;
	/* Absorb followers; past the first only an overlapping range reaches. */
	while (x && iomem__range_touches(ne, n[x].start)) {
		uint32_t nx = e > n[x].end ? iomem__range_next(n, x) : 0;
		if (n[x].start <= ne)
			iomem__range_note_overlap(ov, s, e, n[x].start, n[x].end);
		if (n[x].end > ne)
			ne = n[x].end;
		units -= n[x].end - n[x].start + 1;
		iomem__range_delete(ra, x);
		x = nx;
	}
	iomem__range_set(ra, a, ns, ne);
	ra->units = units + (ne - ns + 1);
}

/* --- the cache (IOMEM_RANGE_CACHE) ------------------------------------- */

/* Put every cached range back into the tree; each uses at most the slot
 * it reserved, so this never allocates. */
IOMEM__PRIVATE void iomem__range_flush(IORangeAllocator *ra, iomem__range_overlap *ov)
{
	iomem__range_cache *c = ra->cache;
	unsigned k;
	if (!c)
		return;
	for (k = 0; k < IOMEM_RANGE_CACHE_CLASSES; k++) {
		IORangeScalar size = ((IORangeScalar)k + 1) << ra->qshift;
		while (c->count[k]) {
			IORangeScalar s = c->start[k][--c->count[k]];
			iomem__range_free_at(ra, iomem__range_locate(ra, s, s + (size - 1)), s, s + (size - 1), ov);
		}
	}
	iomem__range_gate(ra);   /* putting ranges back may have used the reserve */
}

/* Does any cached range overlap [s, e]? */
IOMEM__PRIVATE bool iomem__range_cache_overlaps(const IORangeAllocator *ra, IORangeScalar s, IORangeScalar e)
{
	const iomem__range_cache *c = ra->cache;
	unsigned k, j;
	if (!c)
		return false;
	for (k = 0; k < IOMEM_RANGE_CACHE_CLASSES; k++) {
		IORangeScalar last = (((IORangeScalar)k + 1) << ra->qshift) - 1;
		for (j = 0; j < c->count[k]; j++)
			if (c->start[k][j] <= e && s <= c->start[k][j] + last)
				return true;
	}
	return false;
}

/* --- growing the slot array ---------------------------------------- */

/* Called with the lock held; drops it around the allocation (the caller
 * must re-examine the allocator afterwards). */
IOMEM__PRIVATE IOReturn iomem__range_grow(IORangeAllocator *ra)
{
	uint32_t cap = ra->capacity, vis, add, want, i;
	iomem__range_node *nn, *old;
	vm_size_t bytes, oldbytes;
	if (ra->increment == 0 && cap != 0)
		return kIOReturnNoResources;
	vis = cap ? cap - ra->reserve : 0;              /* what getFragmentCapacity shows */
	add = vis / 2 > ra->increment ? vis / 2 : ra->increment;
	if (cap == 0)
		add += ra->reserve;
	if (add > IOMEM__RANGE_MAX_SLOTS - cap)
		add = IOMEM__RANGE_MAX_SLOTS - cap;
	if (add == 0)
		return kIOReturnNoResources;
	want = cap + add;
	bytes = iomem_array_size(sizeof(iomem__range_node), (vm_size_t)want + 1);
	iomem__range_unlock(ra);
	nn = (iomem__range_node *)iomem__alloc_internal(bytes, "IORangeAllocator fragments");
	iomem__range_lock(ra);
	if (!nn)
		return kIOReturnNoMemory;
	cap = ra->capacity;
	old = ra->nodes;
	if (cap >= want) {                      /* another thread grew it */
		old = nn;
		oldbytes = bytes;
	} else {
		oldbytes = (vm_size_t)(cap + 1) * sizeof(iomem__range_node);
		if (old)
			iomem__memcpy(nn, old, oldbytes);
		for (i = cap + 1; i < want; i++)
			nn[i].next = i + 1;
		nn[want].next = ra->unused;
		ra->unused = cap + 1;
		ra->nodes = nn;
		ra->capacity = want;
		iomem__range_gate(ra);
	}
	if (old) {
		iomem__range_unlock(ra);
		iomem__free_internal(old, oldbytes, "IORangeAllocator fragments");
		iomem__range_lock(ra);
	}
	return kIOReturnSuccess;
}

/* Make a free slot available: put cached ranges back, else grow. */
IOMEM__PRIVATE IOReturn iomem__range_make_slot(IORangeAllocator *ra, iomem__range_overlap *ov)
{
	if (iomem__range_cache_entries(ra->cache)) {
		iomem__range_flush(ra, ov);
		return kIOReturnSuccess;
	}
	if (ra->increment == 0)
		return kIOReturnNoResources;
	return iomem__range_grow(ra);
}

/* --- allocation ------------------------------------------------------ */

/* Aligned fit of @n units in fragment @f ending at or below @limit? */
IOMEM_FORCEINLINE bool iomem__range_fit(const iomem__range_node *f, IORangeScalar n, IORangeScalar amask,
                                        IORangeScalar limit, IORangeScalar *d)
{
	IORangeScalar s = (f->start + amask) & ~amask, de = s + (n - 1);
	*d = s;
	return s >= f->start && de >= s && de <= f->end && de <= limit;
}

/* Leftmost fragment of @x's subtree with maxbin >= @mb, or 0. */
IOMEM__PRIVATE uint32_t iomem__range_leftmost_class(const iomem__range_node *n, uint32_t x, unsigned mb)
{
	if (n[x].maxbin < mb)
		return 0;
	for (;;) {
		if (n[n[x].kid[0]].maxbin >= mb)
			x = n[x].kid[0];
		else if (n[x].bin + 1u >= mb)
			return x;
		else
			x = n[x].kid[1];
	}
}

/* Next fragment after @x (in address order) of class >= mb - 1, or 0. */
IOMEM__PRIVATE uint32_t iomem__range_next_class(const iomem__range_node *n, uint32_t x, unsigned mb)
{
	uint32_t p;
	if (n[n[x].kid[1]].maxbin >= mb)
		return iomem__range_leftmost_class(n, n[x].kid[1], mb);
	for (p = n[x].parent; p; x = p, p = n[p].parent) {
		if (x != n[p].kid[0])
			continue;
		if (n[p].bin + 1u >= mb)
			return p;
		if (n[n[p].kid[1]].maxbin >= mb)
			return iomem__range_leftmost_class(n, n[p].kid[1], mb);
	}
	return 0;
}

/* Turn on the per-subtree class index (maxbin) that the below-a-limit
 * search needs: computed once in post-order, O(n), then maintained by every
 * update (allocators that never search below a limit do not pay for it). */
IOMEM__PRIVATE void iomem__range_aug_enable(IORangeAllocator *ra)
{
	iomem__range_node *n = ra->nodes;
	uint32_t x = ra->root;
	ra->aug = 1;
	if (!x)
		return;
	for (;;) {                                  /* first node in post-order */
		while (n[x].kid[0])
			x = n[x].kid[0];
		if (!n[x].kid[1])
			break;
		x = n[x].kid[1];
	}
	while (x) {
		uint32_t p = n[x].parent;
		n[x].maxbin = iomem__range_calc(n, x);
		if (p && x == n[p].kid[0] && n[p].kid[1]) {
			x = n[p].kid[1];
			for (;;) {
				while (n[x].kid[0])
					x = n[x].kid[0];
				if (!n[x].kid[1])
					break;
				x = n[x].kid[1];
			}
		} else {
			x = p;
		}
	}
}

/* Find a fragment for @n units aligned by @amask ending at or below @limit. */
IOMEM__PRIVATE uint32_t iomem__range_find(IORangeAllocator *ra, IORangeScalar n, IORangeScalar amask,
                                          IORangeScalar limit, IORangeScalar *d)
{
	iomem__range_node *nd = ra->nodes;
	IORangeScalar pad, need;
	unsigned c, lo;
	uint64_t m;
	uint32_t x;
	if (!ra->root)
		return 0;
	/* Worst-case padding to the aligned start: none when all fragment
	 * boundaries sit on the quantum and the alignment is not above it. */
	if (ra->odd)
		pad = amask;
	else
		pad = amask > ra->mask ? amask - ra->mask : 0;
	need = n + pad;
	c = need < n ? 64u : (need == 1 ? 0u : iomem__flog2(need - 1) + 1);
	lo = iomem__flog2(n);
	if (c < 64 && (m = ra->binmap & (~(uint64_t)0 << c)) != 0) {
		x = ra->head[iomem__ctz64(m)];
		if (iomem__range_fit(&nd[x], n, amask, limit, d))
			return x;
	}
	if (limit == IOMEM__RANGE_ALL) {
		/* Instant fit found nothing: scan the classes that may hold one. */
		for (m = ra->binmap & (~(uint64_t)0 << lo); m; m &= m - 1)
			for (x = ra->head[iomem__ctz64(m)]; x; x = nd[x].next)
				if (iomem__range_fit(&nd[x], n, amask, limit, d))
					return x;
		return 0;
	}
	/* Below a limit: the lowest guaranteed-class fragment (O(log n)),
	 * then the lower classes in address order up to the limit. */
	if (!ra->aug)
		iomem__range_aug_enable(ra);
	if (c < 64 && (x = iomem__range_leftmost_class(nd, ra->root, c + 1)) != 0 &&
	    iomem__range_fit(&nd[x], n, amask, limit, d))
		return x;
	for (x = iomem__range_leftmost_class(nd, ra->root, lo + 1); x && nd[x].start <= limit;
	     x = iomem__range_next_class(nd, x, lo + 1))
		if (iomem__range_fit(&nd[x], n, amask, limit, d))
			return x;
	return 0;
}

/* Allocate (lock held). @n is rounded, non-zero. */
IOMEM__PRIVATE IOReturn iomem__range_alloc_locked(IORangeAllocator *ra, IORangeScalar n, IORangeScalar amask,
                                                  IORangeScalar limit, IORangeScalar *result)
{
	iomem__range_overlap ov = { false, 0, 0 };
	for (;;) {
		IORangeScalar d;
		uint32_t f = iomem__range_find(ra, n, amask, limit, &d);
		IOReturn st;
		if (!f) {
			if (iomem__range_cache_entries(ra->cache)) {
				iomem__range_flush(ra, &ov);
				continue;
			}
			return kIOReturnNoSpace;
		}
		if (d != ra->nodes[f].start && d + (n - 1) != ra->nodes[f].end && !iomem__range_have_slot(ra)) {
			st = iomem__range_make_slot(ra, &ov);
			if (st != kIOReturnSuccess)
				return st;
			continue;
		}
		iomem__range_carve(ra, f, d, d + (n - 1));
		*result = d;
		return kIOReturnSuccess;
	}
}

/* Everything but an unlocked cache hit at the top of its class. */
IOMEM__PRIVATE IOMEM__NOINLINE IOReturn iomem__range_alloc_slow(IORangeAllocator *ra, IORangeScalar n,
                                                                      IORangeScalar amask, IORangeScalar limit,
                                                                      IORangeScalar *result)
{
	iomem__range_cache *c;
	IOReturn st;
	iomem__range_lock(ra);
	c = ra->cache;
	if (c) {
		IORangeScalar k = (n - 1) >> ra->qshift;
		if (k < IOMEM_RANGE_CACHE_CLASSES) {
			unsigned j = c->count[k];
			while (j--) {
				IORangeScalar s = c->start[k][j];
				if (!(s & amask) && s + (n - 1) <= limit) {
					c->start[k][j] = c->start[k][--c->count[k]];
					iomem__range_unlock(ra);
					*result = s;
					return kIOReturnSuccess;
				}
			}
		}
	}
	st = iomem__range_alloc_locked(ra, n, amask, limit, result);
	iomem__range_gate(ra);
	iomem__range_unlock(ra);
	return st;
}

IOMEM_FORCEINLINE IOReturn iomem__range_alloc(IORangeAllocator *ra, IORangeScalar size, IORangeScalar alignment,
                                              IORangeScalar limit, IORangeScalar *result)
{
	IORangeScalar amask, n;
	iomem__range_cache *c;
	if (IOMEM_UNLIKELY(!ra || !result || !size))
		return kIOReturnBadArgument;
	amask = alignment ? alignment - 1 : ra->mask;
	if (IOMEM_UNLIKELY(alignment & amask))
		return kIOReturnBadArgument;
	n = (size + ra->mask) & ~ra->mask;
	if (IOMEM_UNLIKELY(n < size))
		return kIOReturnNoSpace;
	c = ra->cache;
	if (c && !(ra->options & kLocking)) {     /* hot path: the top of the class, */
		IORangeScalar k = (n - 1) >> ra->qshift;  /* no call, nothing saved */
		if (k < IOMEM_RANGE_CACHE_CLASSES && c->count[k]) {
			unsigned j = c->count[k] - 1u;
			IORangeScalar s = c->start[k][j];
			if (IOMEM_LIKELY(!(s & amask) && s + (n - 1) <= limit)) {
				c->count[k] = (uint8_t)j;
				*result = s;
				return kIOReturnSuccess;
			}
		}
	}
	return iomem__range_alloc_slow(ra, n, amask, limit, result);
}

/* --- public API ------------------------------------------------------ */

IOMEM_API IORangeAllocator *IORangeAllocator_withRange(IORangeScalar endOfRange, IORangeScalar defaultAlignment,
                                                       UInt32 capacity, IOOptionBits options)
{
	IORangeAllocator *ra;
	if (defaultAlignment == 0)
		defaultAlignment = 1;
	if (defaultAlignment & (defaultAlignment - 1))
		return NULL;
	if (capacity == 0)
		capacity = 1;
	if (capacity > IOMEM__RANGE_MAX_SLOTS - IOMEM__RANGE_CACHE_SLOTS)
		capacity = IOMEM__RANGE_MAX_SLOTS - IOMEM__RANGE_CACHE_SLOTS;
	ra = (IORangeAllocator *)iomem__alloc_internal(sizeof *ra, "IORangeAllocator");
	if (!ra)
		return NULL;
	ra->refcount = 1;
	ra->options = options;
	ra->mask = defaultAlignment - 1;
	ra->qshift = iomem__flog2(defaultAlignment);
	ra->increment = capacity;
	if (!iomem__mutex_init(&ra->lock)) {   /* always: retain/release may need it */
		iomem__free_internal(ra, sizeof *ra, "IORangeAllocator");
		return NULL;
	}
	if (options & IOMEM_RANGE_CACHE) {
		ra->cache = (iomem__range_cache *)iomem__alloc_internal(sizeof *ra->cache, "IORangeAllocator cache");
		ra->reserve = IOMEM__RANGE_CACHE_SLOTS;
		if (ra->cache && !endOfRange) {
			IOReturn st;
			iomem__range_lock(ra);              /* grow drops it to allocate */
			st = iomem__range_grow(ra);
			iomem__range_unlock(ra);
			if (st != kIOReturnSuccess) {
				IORangeAllocator_release(ra);
				return NULL;
			}
		}
		if (!ra->cache) {
			IORangeAllocator_release(ra);
			return NULL;
		}
	}
	if (endOfRange) {
		/* IOKit: deallocate(0, endOfRange + 1), size rounded; a size that
		 * wraps (or rounds past 2^64) reaches the top of the space. */
		IORangeScalar size = endOfRange + 1, rounded = (size + ra->mask) & ~ra->mask;
		IORangeScalar e = (size == 0 || rounded < size) ? IOMEM__RANGE_ALL : rounded - 1;
		IOReturn st;
		iomem__range_lock(ra);
		st = iomem__range_grow(ra);
		if (st == kIOReturnSuccess) {
			iomem__range_new(ra, 0, 0, 0, e);
			ra->units = e + 1;
		}
		iomem__range_unlock(ra);
		if (st != kIOReturnSuccess) {
			IORangeAllocator_release(ra);
			return NULL;
		}
	}
	iomem__range_gate(ra);
	return ra;
}

IOMEM_API void IORangeAllocator_retain(IORangeAllocator *ra)
{
	if (!ra)
		return;
#if defined(__GNUC__) || defined(__clang__)
	__atomic_fetch_add(&ra->refcount, 1u, __ATOMIC_RELAXED);
#else
	iomem__mutex_lock(&ra->lock);
	ra->refcount++;
	iomem__mutex_unlock(&ra->lock);
#endif
}

IOMEM_API void IORangeAllocator_release(IORangeAllocator *ra)
{
	uint32_t left;
	if (!ra)
		return;
#if defined(__GNUC__) || defined(__clang__)
	left = __atomic_sub_fetch(&ra->refcount, 1u, __ATOMIC_ACQ_REL);
#else
	iomem__mutex_lock(&ra->lock);
	left = --ra->refcount;
	iomem__mutex_unlock(&ra->lock);
#endif
	if (left)
		return;
	if (ra->nodes)
		iomem__free_internal(ra->nodes, (vm_size_t)(ra->capacity + 1) * sizeof(iomem__range_node),
		                     "IORangeAllocator fragments");
	if (ra->cache)
		iomem__free_internal(ra->cache, sizeof *ra->cache, "IORangeAllocator cache");
	iomem__mutex_destroy(&ra->lock);
	iomem__free_internal(ra, sizeof *ra, "IORangeAllocator");
}

IOMEM_API bool IORangeAllocator_allocate(IORangeAllocator *ra, IORangeScalar size, IORangeScalar *result,
                                         IORangeScalar alignment)
{
	return iomem__range_alloc(ra, size, alignment, IOMEM__RANGE_ALL, result) == kIOReturnSuccess;
}

IOMEM_API bool IORangeAllocator_allocateRange(IORangeAllocator *ra, IORangeScalar start, IORangeScalar size)
{
	iomem__range_overlap ov = { false, 0, 0 };
	IORangeScalar n, e;
	bool ok = false;
	if (!ra || !size)
		return false;
	n = (size + ra->mask) & ~ra->mask;
	if (n < size || n - 1 > ~start)
		return false;
	e = start + (n - 1);
	iomem__range_lock(ra);
	for (;;) {
		uint32_t p = iomem__range_find_le(ra, start);
		const iomem__range_node *f;
		if (!p || ra->nodes[p].end < e) {
			if (iomem__range_cache_overlaps(ra, start, e)) {
				iomem__range_flush(ra, &ov);
				continue;
			}
			break;
		}
		f = &ra->nodes[p];
		if (start != f->start && e != f->end && !iomem__range_have_slot(ra)) {
			if (iomem__range_make_slot(ra, &ov) != kIOReturnSuccess)
				break;
			continue;
		}
		iomem__range_carve(ra, p, start, e);
		ok = true;
		break;
	}
	iomem__range_gate(ra);
	iomem__range_unlock(ra);
	return ok;
}

/* Push [start, start + n - 1] onto its cache class if it may go there
 * (lock held). */
IOMEM_FORCEINLINE bool iomem__range_cache_push(IORangeAllocator *ra, iomem__range_cache *c, IORangeScalar start,
                                               IORangeScalar n)
{
	IORangeScalar k = (n - 1) >> ra->qshift;
	if (ra->gate && k < IOMEM_RANGE_CACHE_CLASSES && !(start & ra->mask) && c->count[k] < IOMEM_RANGE_CACHE_DEPTH) {
#if IOMEM__DEBUG
		/* debug: a range already free (tree or cache) takes the tree
		 * path, which reports it and keeps the union */
		IORangeScalar e = start + (n - 1);
		uint32_t p = iomem__range_find_le(ra, e);
		if ((p && ra->nodes[p].end >= start) || iomem__range_cache_overlaps(ra, start, e))
			return false;
#endif
		c->start[k][c->count[k]++] = start;
		return true;
	}
	return false;
}

/* Everything but an unlocked cache push: the cache with the lock, the
 * tree, the debug checks and reports. */
IOMEM__PRIVATE IOMEM__NOINLINE void iomem__range_free_slow(IORangeAllocator *ra, IORangeScalar start,
                                                                 IORangeScalar size, IORangeScalar e)
{
	iomem__range_overlap ov = { false, 0, 0 };
	bool lost = false;
	iomem__range_lock(ra);
	if (ra->cache && iomem__range_cache_push(ra, ra->cache, start, e - start + 1)) {
		iomem__range_unlock(ra);
		return;
	}
#if IOMEM__DEBUG
	if (iomem__range_cache_overlaps(ra, start, e))
		iomem__range_flush(ra, &ov);     /* the tree path then sees the overlap */
#endif
	for (;;) {
		iomem__range_spot w = iomem__range_locate(ra, start, e);
		if (!w.tp && !w.tq && !iomem__range_have_slot(ra)) {
			if (iomem__range_make_slot(ra, &ov) != kIOReturnSuccess) {
				lost = true;
				ra->lost_ranges++;
				ra->lost_units += e - start + 1;
				break;
			}
			continue;
		}
		iomem__range_free_at(ra, w, start, e, &ov);
		break;
	}
	iomem__range_gate(ra);
	iomem__range_unlock(ra);
#if IOMEM__DEBUG
	if (ov.hit)
		iomem__report("IORangeAllocator_deallocate(%p, %x, %x): double or overlapping deallocation: "
		              "[%x, %x] is already free (the union is kept)", (void *)ra,
		              (unsigned long long)start, (unsigned long long)size,
		              (unsigned long long)ov.start, (unsigned long long)ov.end);
	if (lost)
		iomem__report("IORangeAllocator_deallocate(%p, %x, %x): no fragment slot (increment 0 or out of "
		              "memory); the range is lost", (void *)ra, (unsigned long long)start,
		              (unsigned long long)size);
#else
	(void)lost;
	(void)size;
#endif
}

IOMEM_API void IORangeAllocator_deallocate(IORangeAllocator *ra, IORangeScalar start, IORangeScalar size)
{
	IORangeScalar n, e;
	iomem__range_cache *c;
	if (IOMEM_UNLIKELY(!ra))
		return;
	n = (size + ra->mask) & ~ra->mask;
	if (IOMEM_UNLIKELY(size == 0 || n < size || n - 1 > ~start)) {
#if IOMEM__DEBUG
		iomem__report("IORangeAllocator_deallocate(%p, %x, %x): %s; ignored", (void *)ra,
		              (unsigned long long)start, (unsigned long long)size,
		              size == 0 ? "size 0" : "the range runs past 2^64-1");
#endif
		return;
	}
	e = start + (n - 1);
	c = ra->cache;
	if (c && !(ra->options & kLocking) && !IOMEM__DEBUG) {   /* hot path: no call */
		IORangeScalar k = (n - 1) >> ra->qshift;
		if (ra->gate && k < IOMEM_RANGE_CACHE_CLASSES && !(start & ra->mask) &&
		    c->count[k] < IOMEM_RANGE_CACHE_DEPTH) {
			c->start[k][c->count[k]++] = start;
			return;
		}
	}
	iomem__range_free_slow(ra, start, size, e);
}

IOMEM_API UInt32 IORangeAllocator_getFragmentCount(IORangeAllocator *ra)
{
	iomem__range_overlap ov = { false, 0, 0 };
	UInt32 count;
	if (!ra)
		return 0;
	iomem__range_lock(ra);
	iomem__range_flush(ra, &ov);
	count = ra->count;
	iomem__range_unlock(ra);
	return count;
}

IOMEM_API UInt32 IORangeAllocator_getFragmentCapacity(IORangeAllocator *ra)
{
	/* Putting cached ranges back may use reserve slots: they then count. */
	if (!ra || !ra->capacity)
		return 0;
	return ra->capacity - ra->reserve > ra->count ? ra->capacity - ra->reserve : ra->count;
}

IOMEM_API void IORangeAllocator_setFragmentCapacityIncrement(IORangeAllocator *ra, UInt32 count)
{
	if (!ra)
		return;
	iomem__range_lock(ra);
	ra->increment = count;
	iomem__range_unlock(ra);
}

IOMEM_API IORangeScalar IORangeAllocator_getFreeCount(IORangeAllocator *ra)
{
	IORangeScalar units;
	bool any;
	if (!ra)
		return 0;
	iomem__range_lock(ra);
	units = ra->units + iomem__range_cache_units(ra);
	any = ra->count != 0 || iomem__range_cache_entries(ra->cache) != 0;
	iomem__range_unlock(ra);
	return (units == 0 && any) ? IOMEM__RANGE_ALL : units;
}

IOMEM_API UInt32 IORangeAllocator_serialize(IORangeAllocator *ra, IORangeScalar *pairs, UInt32 maxPairs)
{
	iomem__range_overlap ov = { false, 0, 0 };
	UInt32 count, i = 0;
	uint32_t x;
	if (!ra)
		return 0;
	if (!pairs)
		maxPairs = 0;
	iomem__range_lock(ra);
	iomem__range_flush(ra, &ov);
	count = ra->count;
	for (x = ra->root ? iomem__range_min(ra->nodes, ra->root) : 0; x && i < maxPairs;
	     x = iomem__range_next(ra->nodes, x), i++) {
		pairs[2 * (vm_size_t)i] = ra->nodes[x].start;
		pairs[2 * (vm_size_t)i + 1] = ra->nodes[x].end;
	}
	iomem__range_unlock(ra);
	return count;
}

IOMEM_API IOReturn iomem_range_get_stats(IORangeAllocator *ra, iomem_range_stats *out)
{
	if (!out)
		return kIOReturnBadArgument;
	iomem__memset(out, 0, sizeof *out);
	if (!ra)
		return kIOReturnBadArgument;
	iomem__range_lock(ra);
	out->fragments = ra->count;
	out->capacity = !ra->capacity ? 0 : ra->capacity - ra->reserve > ra->count ? ra->capacity - ra->reserve : ra->count;
	out->increment = ra->increment;
	out->cached_ranges = iomem__range_cache_entries(ra->cache);
	out->cached_units = iomem__range_cache_units(ra);
	out->free_units = ra->units + out->cached_units;
	if (out->free_units == 0 && (ra->count || out->cached_ranges))
		out->free_units = IOMEM__RANGE_ALL;
	out->lost_ranges = ra->lost_ranges;
	out->lost_units = ra->lost_units;
	out->slot_size = sizeof(iomem__range_node);
	out->footprint = sizeof *ra + (ra->nodes ? (vm_size_t)(ra->capacity + 1) * sizeof(iomem__range_node) : 0) +
	                 (ra->cache ? sizeof *ra->cache : 0);
	iomem__range_unlock(ra);
	return kIOReturnSuccess;
}

IOMEM__PRIVATE bool iomem__range_check(const IORangeAllocator *ra)
{
	const iomem__range_node *n = ra->nodes;
	const iomem__range_cache *c = ra->cache;
	uint32_t x, prev = 0, count = 0, odd = 0, listed = 0, chain = 0, black = 0;
	IORangeScalar units = 0;
	unsigned b, k, j;
	if (!n)
		return ra->root == 0 && ra->count == 0 && ra->capacity == 0 && ra->binmap == 0 && ra->units == 0;
	if (n[0].red || n[0].maxbin || (ra->root && (n[ra->root].parent || n[ra->root].red)))
		return false;
	/* in-order walk: order, disjoint + coalesced, per-node fields */
	for (x = ra->root ? iomem__range_min(n, ra->root) : 0; x; prev = x, x = iomem__range_next(n, x)) {
		uint32_t y, h = 0;
		if (++count > ra->capacity || n[x].start > n[x].end)
			return false;
		if (prev && (n[prev].end == IOMEM__RANGE_ALL || n[prev].end + 1 >= n[x].start))
			return false;
		if (n[x].bin != iomem__range_bin(n[x].start, n[x].end) ||
		    (ra->aug && n[x].maxbin != iomem__range_calc(n, x)) ||
		    n[x].odd != iomem__range_isodd(ra, n[x].start, n[x].end))
			return false;
		if ((n[x].kid[0] && n[n[x].kid[0]].parent != x) || (n[x].kid[1] && n[n[x].kid[1]].parent != x))
			return false;
		if (n[x].red && (n[n[x].kid[0]].red || n[n[x].kid[1]].red))
			return false;
		if (!n[x].kid[0] || !n[x].kid[1]) {        /* black height of every nil path */
			for (y = x; y; y = n[y].parent)
				h += !n[y].red;
			if (black == 0)
				black = h;
			else if (h != black)
				return false;
		}
		odd += n[x].odd;
		units += n[x].end - n[x].start + 1;
	}
	if (count != ra->count || odd != ra->odd || units != ra->units)
		return false;
	for (b = 0; b < IOMEM__RANGE_BINS; b++) {
		uint32_t p = 0;
		if (!ra->head[b] != !(ra->binmap & ((uint64_t)1 << b)))
			return false;
		for (x = ra->head[b]; x; p = x, x = n[x].next) {
			if (n[x].bin != b || n[x].prev != p || ++listed > count)
				return false;
		}
	}
	if (listed != count)
		return false;
	for (x = ra->unused; x; x = n[x].next)
		if (x > ra->capacity || ++chain > ra->capacity)
			return false;
	if (chain != ra->capacity - ra->count)
		return false;
	if (c) {
		uint32_t entries = 0;
		IORangeScalar cu = 0;
		for (k = 0; k < IOMEM_RANGE_CACHE_CLASSES; k++) {
			IORangeScalar size = ((IORangeScalar)k + 1) << ra->qshift;
			if (c->count[k] > IOMEM_RANGE_CACHE_DEPTH)
				return false;
			for (j = 0; j < c->count[k]; j++) {
				IORangeScalar s = c->start[k][j];
				uint32_t p = iomem__range_find_le(ra, s + (size - 1));
				if ((s & ra->mask) || s + (size - 1) < s || (p && n[p].end >= s))
					return false;
				entries++;
				cu += size;
			}
		}
		if (entries != iomem__range_cache_entries(c) || cu != iomem__range_cache_units(ra) ||
		    entries > ra->capacity - ra->count || entries > ra->reserve ||
		    ra->gate != (ra->capacity - ra->count >= ra->reserve))
			return false;
	}
	return true;
}

IOMEM_API bool iomem_range_invariants_hold(IORangeAllocator *ra)
{
	bool ok;
	if (!ra)
		return true;
	iomem__range_lock(ra);
	ok = iomem__range_check(ra);
	iomem__range_unlock(ra);
	return ok;
}

IOMEM_API IOReturn iomem__range_alloc_below(IORangeAllocator *ra, IORangeScalar size, IORangeScalar alignment,
                                            IORangeScalar limit, IORangeScalar *result)
{
	return iomem__range_alloc(ra, size, alignment, limit, result);
}

IOMEM_API IOReturn iomem__range_alloc_pages(IORangeAllocator *ra, IORangeScalar npages, unsigned page_shift,
                                            IORangeScalar align_pages, IORangeScalar limit, IORangeScalar *out)
{
	if (!npages || page_shift >= 64 || npages > (IOMEM__RANGE_ALL >> page_shift) ||
	    align_pages > (IOMEM__RANGE_ALL >> page_shift))
		return kIOReturnBadArgument;
	return iomem__range_alloc(ra, npages << page_shift, align_pages << page_shift, limit, out);
}

IOMEM_API void iomem__range_free_pages(IORangeAllocator *ra, IORangeScalar start, IORangeScalar npages,
                                       unsigned page_shift)
{
	if (!npages || page_shift >= 64 || npages > (IOMEM__RANGE_ALL >> page_shift)) {
#if IOMEM__DEBUG
		iomem__report("iomem__range_free_pages(%p, %x, %u pages << %u): bad size; ignored", (void *)ra,
		              (unsigned long long)start, (unsigned long long)npages, (unsigned long long)page_shift);
#endif
		return;
	}
	IORangeAllocator_deallocate(ra, start, npages << page_shift);
}


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
