// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * iomem_ktest.c - iomem's test suite inside a real Linux kernel.
 *
 * Built twice (tests/kernel/module/Kbuild): iomem_ktest.ko as is, and
 * iomem_ktest_debug.ko with -DIOMEM_DEBUG=1, where the debug-layer cases run
 * too. Both are loaded by the QEMU harness (tests/kernel/run-qemu-test.sh)
 * in each DMA mode, with slub_debug=FZPU and init_on_alloc=0.
 *
 * It runs every case of the host suites that is portable to the kernel
 * (tests/test_types.c, tests/test_alloc.c, tests/test_debug.c; the names
 * below say which) plus kernel-only ones (kvmalloc's vmalloc fallback,
 * pageable memory is vmalloc, IOFree under a spinlock, huge sizes refused
 * without a kernel warning, the edu device and the DMA mode of the VM) and
 * the descriptors of tests/test_desc_*.c, checked against the kernel's own
 * translation (virt_to_phys, vmalloc_to_page).
 *
 * Output: TAP 13 on the kernel log, every line prefixed with
 * "<module name>: ", ending with "KTEST-RESULT pass=N fail=N skip=N":
 *
 *   iomem_ktest: TAP version 13
 *   iomem_ktest: 1..57
 *   iomem_ktest: ok 1 - ioreturn_values_match_iokit
 *   iomem_ktest: # diagnostic
 *   iomem_ktest: not ok 2 - ...
 *
 * IOMEM_PANIC is routed to a recorder: a test that provokes a contract
 * violation checks the report; a report no test asked for fails the test
 * that caused it.
 *
 * Module parameters: mode=any|direct|swiotlb|iommu (what the edu device's
 * DMA path must look like), edu_mask_bits=N (must match QEMU's
 * "-device edu,dma_mask="), inject=fail|warn (harness self-test).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

static void ktest_record_panic(const char *msg);
#define IOMEM_PANIC(msg) ktest_record_panic(msg)

#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/spinlock.h>
#include <linux/kthread.h>
#include <linux/completion.h>
#include <linux/irqflags.h>
#include <linux/preempt.h>
#include <linux/string.h>
#include <linux/limits.h>

#include "ktest_edu.h"

static char *mode = "any";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "expected DMA mode of the VM: any|direct|swiotlb|iommu");

static uint edu_mask_bits = 64;
module_param(edu_mask_bits, uint, 0444);
MODULE_PARM_DESC(edu_mask_bits, "DMA mask bits for the edu device");

static char *inject = "";
module_param(inject, charp, 0444);
MODULE_PARM_DESC(inject, "harness self-test: fail|warn");

/* ------------------------------------------------------------------ */
/* TAP framework and the IOMEM_PANIC recorder                          */

static bool cur_failed;
static const char *cur_skip;

#define DIAG(fmt, ...) pr_info("# " fmt "\n", ##__VA_ARGS__)

#define EXPECT(cond)                                                      \
	({                                                                \
		bool __c = !!(cond);                                      \
		if (!__c) {                                               \
			DIAG("%s:%d: EXPECT(%s) failed", __func__,        \
			     __LINE__, #cond);                            \
			cur_failed = true;                                \
		}                                                         \
		__c;                                                      \
	})

#define EXPECT_EQ(a, b)                                                   \
	({                                                                \
		unsigned long long __a = (unsigned long long)(a);         \
		unsigned long long __b = (unsigned long long)(b);         \
		if (__a != __b) {                                         \
			DIAG("%s:%d: EXPECT_EQ(%s, %s) failed: %#llx != %#llx", \
			     __func__, __LINE__, #a, #b, __a, __b);       \
			cur_failed = true;                                \
		}                                                         \
		__a == __b;                                               \
	})

#define EXPECT_STREQ(a, b)                                                \
	({                                                                \
		const char *__a = (a), *__b = (b);                        \
		bool __c = __a && __b && !strcmp(__a, __b);               \
		if (!__c) {                                               \
			DIAG("%s:%d: EXPECT_STREQ(%s, %s) failed: \"%s\" != \"%s\"", \
			     __func__, __LINE__, #a, #b, __a ? __a : "(null)", \
			     __b ? __b : "(null)");                       \
			cur_failed = true;                                \
		}                                                         \
		__c;                                                      \
	})

#define SKIP(reason) do { cur_skip = (reason); return; } while (0)

static DEFINE_SPINLOCK(panic_lock);
static int panic_count;		/* reports since the test began */
static int panic_checked;	/* how many of them the test looked at */
static char panic_msg[256];

static void ktest_record_panic(const char *msg)
{
	unsigned long flags;

	spin_lock_irqsave(&panic_lock, flags);
	panic_count++;
	strscpy(panic_msg, msg, sizeof(panic_msg));
	spin_unlock_irqrestore(&panic_lock, flags);
	DIAG("IOMEM_PANIC: %s", msg);
}

/* exactly @n reports since the test began */
#define EXPECT_REPORTS(n)                                                 \
	({                                                                \
		panic_checked = panic_count;                              \
		if (panic_count != (n))                                   \
			DIAG("%s:%d: expected %d report(s), got %d (last: \"%s\")", \
			     __func__, __LINE__, (n), panic_count, panic_msg); \
		EXPECT(panic_count == (n));                               \
	})

/* the last report mentions @needle */
#define EXPECT_REPORT_HAS(needle)                                         \
	({                                                                \
		if (!strstr(panic_msg, (needle)))                         \
			DIAG("report \"%s\" does not mention \"%s\"",     \
			     panic_msg, (needle));                        \
		EXPECT(strstr(panic_msg, (needle)) != NULL);              \
	})

static bool all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* tests/test_types.c                                                   */

#include "tests/common/ioreturn_table.h"

static void t_ioreturn_values_match_iokit(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(iomem_test_ioreturn_table); i++)
		if (!EXPECT_EQ((u32)iomem_test_ioreturn_table[i].code, iomem_test_ioreturn_table[i].hex))
			DIAG("  for %s", iomem_test_ioreturn_table[i].name);
	EXPECT(kIOReturnError == -536870212);
	EXPECT(kIOReturnOverrun == -536870168);
	EXPECT(kIOReturnInvalid == -536870911);
}

static void t_ioreturn_iokit_error_macros(void)
{
	EXPECT_EQ((u32)sys_iokit, 0xE0000000u);
	EXPECT_EQ(sub_iokit_common, 0);
	EXPECT(iokit_common_err(0x2bc) == kIOReturnError);
	EXPECT(iokit_common_err(0x2e8) == kIOReturnOverrun);
}

static void t_ioreturn_string_names_every_code(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(iomem_test_ioreturn_table); i++)
		EXPECT_STREQ(IOReturnString(iomem_test_ioreturn_table[i].code), iomem_test_ioreturn_table[i].name);
}

static void t_ioreturn_unknown_code_has_formatted_fallback(void)
{
	const char *s = IOReturnString((IOReturn)0xE00002CBu);	/* unused slot */

	if (!EXPECT(s))
		return;
	EXPECT_STREQ(s, "IOReturn 0xe00002cb");
	EXPECT_STREQ(IOReturnString(1), "IOReturn 0x1");
	EXPECT_STREQ(IOReturnString((IOReturn)0xE00002DCu), "IOReturn 0xe00002dc");
	EXPECT_STREQ(iomem_ioreturn_description((IOReturn)0xE00002CBu), "unknown IOReturn");
}

static void t_ioreturn_fallback_buffers_rotate(void)
{
	const char *s[8];
	char want[32];
	int i;

	for (i = 0; i < 8; i++)
		s[i] = IOReturnString(1000 + i);
	for (i = 0; i < 8; i++) {	/* the last 8 stay intact */
		snprintf(want, sizeof(want), "IOReturn 0x%x", 1000 + i);
		EXPECT_STREQ(s[i], want);
	}
}

static void t_ioreturn_description(void)
{
	size_t i;

	EXPECT_STREQ(iomem_ioreturn_description(kIOReturnNoMemory), "can't allocate memory");
	EXPECT_STREQ(iomem_ioreturn_description(kIOReturnSuccess), "success");
	for (i = 0; i < ARRAY_SIZE(iomem_test_ioreturn_table); i++)
		EXPECT(strlen(iomem_ioreturn_description(iomem_test_ioreturn_table[i].code)) > 0);
}

static void t_ioreturn_format_is_reentrant_and_truncates(void)
{
	char buf[64];

	EXPECT_EQ(iomem_ioreturn_format(kIOReturnBusy, buf, sizeof(buf)), strlen("kIOReturnBusy"));
	EXPECT_STREQ(buf, "kIOReturnBusy");
	EXPECT_EQ(iomem_ioreturn_format(kIOReturnBusy, buf, 5), strlen("kIOReturnBusy"));
	EXPECT_STREQ(buf, "kIOR");
	EXPECT_EQ(iomem_ioreturn_format((IOReturn)0xE00002CBu, buf, sizeof(buf)),
		  strlen("IOReturn 0xe00002cb"));
	EXPECT_STREQ(buf, "IOReturn 0xe00002cb");
	EXPECT_EQ(iomem_ioreturn_format(kIOReturnBusy, NULL, 10), 0);
	buf[0] = 'x';
	EXPECT_EQ(iomem_ioreturn_format(kIOReturnBusy, buf, 0), 0);
	EXPECT(buf[0] == 'x');
}

static void t_types_sizes(void)
{
	EXPECT_EQ(sizeof(IOReturn), 4);
	EXPECT_EQ(sizeof(IOOptionBits), 4);
	EXPECT_EQ(sizeof(IODirection), 4);
	EXPECT_EQ(sizeof(IOByteCount), 8);
	EXPECT_EQ(sizeof(IOPhysicalAddress), 8);
	EXPECT_EQ(sizeof(IOPhysicalAddress32), 4);
	EXPECT_EQ(sizeof(IOPhysicalAddress64), 8);
	EXPECT_EQ(sizeof(mach_vm_address_t), 8);
	EXPECT_EQ(sizeof(mach_vm_size_t), 8);
	EXPECT_EQ(sizeof(addr64_t), 8);
	EXPECT_EQ(sizeof(ppnum_t), 4);
	EXPECT_EQ(sizeof(IORangeScalar), 8);
	EXPECT_EQ(sizeof(IOVirtualAddress), sizeof(void *));
	EXPECT_EQ(sizeof(vm_size_t), sizeof(void *));
	EXPECT_EQ(sizeof(UInt8) + sizeof(UInt16) + sizeof(UInt32) + sizeof(UInt64), 15);
	EXPECT((IOReturn)-1 < 0);	/* IOReturn is signed (kern_return_t) */
	EXPECT(sizeof(IOAddressRange) == 16 && sizeof(IOPhysicalRange) == 16);
	/* the kernel's own types agree with IOKit's */
	EXPECT_EQ(sizeof(dma_addr_t), sizeof(IOPhysicalAddress64));
	EXPECT(sizeof(phys_addr_t) <= sizeof(IOPhysicalAddress));
}

static void t_types_kernel_task_is_one_object(void)
{
	task_t t = kernel_task;

	EXPECT(t != NULL);
	EXPECT(t == kernel_task);
	EXPECT(kIOMapperSystem == NULL);
}

static void t_constants_direction(void)
{
	EXPECT_EQ(kIODirectionNone, 0);
	EXPECT_EQ(kIODirectionIn, 1);
	EXPECT_EQ(kIODirectionOut, 2);
	EXPECT_EQ(kIODirectionOutIn, 3);
	EXPECT_EQ(kIODirectionInOut, 3);
	EXPECT_EQ(kIODirectionPrepareToPhys32, 0x4);
	EXPECT_EQ(kIODirectionPrepareNoFault, 0x8);
	EXPECT_EQ(kIODirectionPrepareReserved1, 0x10);
	EXPECT_EQ(kIODirectionPrepareNonCoherent, 0x20);
	EXPECT_EQ(kIODirectionPrepareAvoidThrottling, 0x100);
	EXPECT_EQ(kIODirectionCompleteWithError, 0x40);
	EXPECT_EQ(kIODirectionCompleteWithDataValid, 0x80);
}

static void t_constants_descriptor_options(void)
{
	EXPECT_EQ(kIOMemoryDirectionMask, 0x7);
	EXPECT_EQ(kIOMemoryAutoPrepare, 0x8);
	EXPECT_EQ(kIOMemoryTypeVirtual, 0x10);
	EXPECT_EQ(kIOMemoryTypePhysical, 0x20);
	EXPECT_EQ(kIOMemoryTypeUPL, 0x30);
	EXPECT_EQ(kIOMemoryTypePersistentMD, 0x40);
	EXPECT_EQ(kIOMemoryTypeUIO, 0x50);
	EXPECT_EQ(kIOMemoryTypeVirtual64, kIOMemoryTypeVirtual);	/* 64-bit kernel */
	EXPECT_EQ(kIOMemoryTypePhysical64, kIOMemoryTypePhysical);
	EXPECT_EQ(kIOMemoryTypeMask, 0xF0);
	EXPECT_EQ(kIOMemoryAsReference, 0x100);
	EXPECT_EQ(kIOMemoryBufferPageable, 0x400);
	EXPECT_EQ(kIOMemoryMapperNone, 0x800);
	EXPECT_EQ(kIOMemoryHostOnly, 0x1000);
	EXPECT_EQ(kIOMemoryRedirected, 0x4000);
	EXPECT_EQ(kIOMemoryPreparedReadOnly, 0x8000);
	EXPECT_EQ(kIOMemoryPersistent, 0x10000);
	EXPECT_EQ(kIOMemoryMapCopyOnWrite, 0x20000);
	EXPECT_EQ(kIOMemoryRemote, 0x40000);
	EXPECT_EQ(kIOMemoryThreadSafe, 0x100000);
	EXPECT_EQ(kIOMemoryClearEncrypt, 0x200000);
	EXPECT_EQ(kIOMemoryBufferPurgeable, 0x400000);
	EXPECT_EQ(kIOMemoryUseReserve, 0x800000);
	EXPECT_EQ(kIOMemoryBufferCacheMask, 0x70000000);
	EXPECT_EQ(kIOMemoryBufferCacheShift, 28);
}

static void t_constants_buffer_options_are_separate_and_translate(void)
{
	IOOptionBits bmd;

	EXPECT_EQ(kIOMemoryPhysicallyContiguous, 0x10);
	EXPECT_EQ(kIOMemoryPageable, 0x20);
	EXPECT_EQ(kIOMemoryPurgeable, 0x40);
	EXPECT_EQ(kIOMemoryHostPhysicallyContiguous, 0x80);
	EXPECT_EQ(kIOMemorySharingTypeMask, 0xF0000);
	EXPECT_EQ(kIOMemoryUnshared, 0);
	EXPECT_EQ(kIOMemoryKernelUserShared, 0x10000);
	EXPECT_EQ(kIOBufferDescriptorMemoryFlags,
		  0x7 | 0x8 | 0x100000 | 0x200000 | 0x800 | 0x800000);
	bmd = kIOMemoryPhysicallyContiguous | kIOMemoryPageable | kIOMemoryPurgeable |
	      kIOMemoryKernelUserShared | kIODirectionOut | kIOMemoryThreadSafe |
	      kIOMemoryMapperNone | kIOMapInhibitCache;
	EXPECT_EQ(iomem_buffer_options_to_memory(bmd),
		  (IOOptionBits)(kIODirectionOut | kIOMemoryThreadSafe | kIOMemoryMapperNone));
	EXPECT_EQ(iomem_buffer_options_to_memory(0), 0);
}

static void t_constants_map_options_and_cache_modes(void)
{
	static const unsigned int modes[] = { kIODefaultCache, kIOInhibitCache,
		kIOWriteThruCache, kIOCopybackCache, kIOWriteCombineCache,
		kIOCopybackInnerCache, kIOPostedWrite, kIORealTimeCache,
		kIOPostedReordered, kIOPostedCombinedReordered };
	static const unsigned int map_modes[] = { kIOMapDefaultCache, kIOMapInhibitCache,
		kIOMapWriteThruCache, kIOMapCopybackCache, kIOMapWriteCombineCache,
		kIOMapCopybackInnerCache, kIOMapPostedWrite, kIOMapRealTimeCache,
		kIOMapPostedReordered, kIOMapPostedCombinedReordered };
	unsigned int i;

	for (i = 0; i < 10; i++) {
		EXPECT_EQ(modes[i], i);
		EXPECT_EQ(map_modes[i], i << 8);
		EXPECT_EQ((map_modes[i] & kIOMapCacheMask) >> kIOMapCacheShift, i);
	}
	EXPECT_EQ(kIOMapAnywhere, 0x1);
	EXPECT_EQ(kIOMapCacheMask, 0xF00);
	EXPECT_EQ(kIOMapCacheShift, 8);
	EXPECT_EQ(kIOMapUserOptionsMask, 0xFFF);
	EXPECT_EQ(kIOMapReadOnly, 0x1000);
	EXPECT_EQ(kIOMapStatic, 0x01000000);
	EXPECT_EQ(kIOMapReference, 0x02000000);
	EXPECT_EQ(kIOMapUnique, 0x04000000);
	EXPECT_EQ(kIOMap64Bit, 0x08000000);
	EXPECT_EQ(kIOMapPrefault, 0x10000000);
	EXPECT_EQ(kIOMapOverwrite, 0x20000000);
	EXPECT_EQ((u32)kIOMapGuardedMask, 0xC0000000u);
	EXPECT_EQ((u32)kIOMapGuardedSmall, 0x40000000u);
	EXPECT_EQ((u32)kIOMapGuardedLarge, 0x80000000u);
}

static void t_constants_purgeable_operations_preparation_ids(void)
{
	EXPECT_EQ(kIOMemoryPurgeableKeepCurrent, 1);
	EXPECT_EQ(kIOMemoryPurgeableNonVolatile, 2);
	EXPECT_EQ(kIOMemoryPurgeableVolatile, 3);
	EXPECT_EQ(kIOMemoryPurgeableEmpty, 4);
	EXPECT_EQ(kIOMemoryIncoherentIOFlush, 1);
	EXPECT_EQ(kIOMemoryIncoherentIOStore, 2);
	EXPECT_EQ(kIOMemoryClearEncrypted, 50);
	EXPECT_EQ(kIOMemorySetEncrypted, 51);
	EXPECT_EQ(kIOPreparationIDUnprepared, 0);
	EXPECT_EQ(kIOPreparationIDUnsupported, 1);
	EXPECT_EQ(kIOPreparationIDAlwaysPrepared, 2);
}

static void t_version_macros(void)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", IOMEM_VERSION_MAJOR,
		 IOMEM_VERSION_MINOR, IOMEM_VERSION_PATCH);
	EXPECT_STREQ(IOMEM_VERSION_STRING, want);
}

/* ------------------------------------------------------------------ */
/* tests/test_alloc.c                                                   */

static void t_iomalloc_sizes_are_usable_and_aligned(void)
{
	static const vm_size_t sizes[] = { 1, 7, 16, 100, 4095, 4096, 4097, 65536, 1u << 20 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		unsigned char *p = IOMalloc(sizes[i]);

		if (!EXPECT(p))
			return;
		EXPECT_EQ((uintptr_t)p % IOMEM_MALLOC_ALIGN, 0);
		memset(p, 0x5a, sizes[i]);
		EXPECT(all_bytes(p, sizes[i], 0x5a));
		IOFree(p, sizes[i]);
	}
	EXPECT_REPORTS(0);
}

static void t_iomalloc_zero_size_gives_unique_pointers(void)
{
	void *a = IOMalloc(0), *b = IOMalloc(0), *z;

	EXPECT(a && b);
	EXPECT(a != b);
	IOFree(a, 0);
	IOFree(b, 0);
	z = IOMallocZero(0);
	EXPECT(z);
	IOFree(z, 0);
	EXPECT_REPORTS(0);
}

static void t_iomalloc_overflowing_sizes_return_null(void)
{
	EXPECT(!IOMalloc(IOMEM_ALLOC_SIZE_MAX + 1));
	EXPECT(!IOMalloc(~(vm_size_t)0));
	EXPECT(!IOMallocZero(~(vm_size_t)0));
	EXPECT(!IOMallocZero(IOMEM_ALLOC_SIZE_MAX + 1));
	EXPECT_REPORTS(0);
}

static void t_iomalloc_free_null_is_a_noop(void)
{
	IOFree(NULL, 0);
	IOFree(NULL, 123);
	IOFreeAligned(NULL, 64);
	IOFreePageable(NULL, 4096);
	EXPECT_REPORTS(0);
}

static void t_iomalloc_zero_variant_is_zeroed_even_on_reused_memory(void)
{
	int round;

	/* meaningful because the runner boots with init_on_alloc=0 */
	for (round = 0; round < 64; round++) {
		vm_size_t n = 24 + (vm_size_t)round * 40;
		unsigned char *dirty = IOMalloc(n), *z;

		if (!EXPECT(dirty))
			return;
		memset(dirty, 0xff, n);
		IOFree(dirty, n);
		z = IOMallocZero(n);
		if (!EXPECT(z))
			return;
		if (!EXPECT(all_bytes(z, n, 0)))
			DIAG("IOMallocZero(%zu) not zeroed", (size_t)n);
		IOFree(z, n);
	}
}

static void t_aligned_alignment_rounds_up_to_a_power_of_two(void)
{
	static const struct { vm_offset_t asked, pow2; } cases[] = {
		{ 0, 1 }, { 1, 1 }, { 2, 2 }, { 3, 4 }, { 5, 8 }, { 16, 16 }, { 33, 64 },
		{ 64, 64 }, { 100, 128 }, { 4095, 4096 }, { 4096, 4096 }, { 65536, 65536 },
		{ 1u << 20, 1u << 20 },
	};
	size_t i;
	vm_size_t size;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		for (size = 1; size <= 9000; size = size * 3 + 7) {
			unsigned char *p = IOMallocAligned(size, cases[i].asked);

			if (!EXPECT(p))
				return;
			if (!EXPECT_EQ((uintptr_t)p % cases[i].pow2, 0))
				DIAG("IOMallocAligned(%zu, %zu) = %px", (size_t)size,
				     (size_t)cases[i].asked, p);
			memset(p, 0xa5, size);	/* the whole block is ours (redzones check) */
			IOFreeAligned(p, size);
		}
	}
	EXPECT_REPORTS(0);
}

static void t_aligned_zero_size_returns_null(void)
{
	EXPECT(!IOMallocAligned(0, 64));
	EXPECT(!IOMallocAligned(0, 0));
	EXPECT_REPORTS(0);
}

static void t_aligned_alignment_beyond_32_bits_returns_null(void)
{
	EXPECT(!IOMallocAligned(64, (vm_offset_t)0x80000001u));	/* rounds to 2^32 */
	EXPECT(!IOMallocAligned(64, (vm_offset_t)0xFFFFFFFFu));
	EXPECT(!IOMallocAligned(64, (vm_offset_t)1 << 32));
	EXPECT(!IOMallocAligned(64, (vm_offset_t)1 << 40));
	EXPECT_EQ(iomem_malloc_aligned_footprint(64, (vm_offset_t)0x80000001u), 0);
	EXPECT(iomem_malloc_aligned_footprint(64, (vm_offset_t)0x80000000u) != 0);
	EXPECT_REPORTS(0);
}

static void t_aligned_overflowing_size_returns_null(void)
{
	EXPECT(!IOMallocAligned(IOMEM_ALLOC_SIZE_MAX, 64));
	EXPECT(!IOMallocAligned(~(vm_size_t)0, 1));
	EXPECT(!IOMallocAligned(IOMEM_ALLOC_SIZE_MAX - 8, 4096));
	EXPECT_EQ(iomem_malloc_aligned_footprint(IOMEM_ALLOC_SIZE_MAX, 64), 0);
	EXPECT_REPORTS(0);
}

static void t_aligned_overhead_is_at_most_alignment_plus_16(void)
{
	static const vm_offset_t aligns[] = { 0, 1, 8, 16, 64, 256, 4096, 65536 };
	static const vm_size_t sizes[] = { 1, 100, 1000, 3000, 5000, 1u << 20 };
	size_t a, s;

	for (a = 0; a < ARRAY_SIZE(aligns); a++)
		for (s = 0; s < ARRAY_SIZE(sizes); s++) {
			vm_size_t fp = iomem_malloc_aligned_footprint(sizes[s], aligns[a]);
			vm_size_t bound = (aligns[a] ? aligns[a] : 1) + 16;

			if (!EXPECT(fp > sizes[s] && fp - sizes[s] <= bound))
				DIAG("footprint(%zu, %zu) = %zu", (size_t)sizes[s],
				     (size_t)aligns[a], (size_t)fp);
		}
}

static void t_aligned_many_live_blocks_do_not_overlap(void)
{
	enum { N = 512 };
	unsigned char **p = kcalloc(N, sizeof(*p), GFP_KERNEL);
	int i;

	if (!EXPECT(p))
		return;
	for (i = 0; i < N; i++) {
		p[i] = IOMallocAligned((vm_size_t)(i % 97) + 1, (vm_offset_t)1 << (i % 13));
		if (!EXPECT(p[i]))
			break;
		memset(p[i], i & 0xff, (size_t)(i % 97) + 1);
	}
	for (i = 0; i < N && p[i]; i++) {
		EXPECT(all_bytes(p[i], (size_t)(i % 97) + 1, (unsigned char)(i & 0xff)));
		IOFreeAligned(p[i], (vm_size_t)(i % 97) + 1);
	}
	kfree(p);
	EXPECT_REPORTS(0);
}

#if !IOMEM__DEBUG
/* Without the debug layer the header is still validated. */
static void t_aligned_release_foreign_pointer_is_reported_not_freed(void)
{
	u64 *block = IOMallocZero(256);

	if (!EXPECT(block))
		return;
	IOFreeAligned(&block[8], 64);
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("IOFreeAligned");
	EXPECT_REPORT_HAS("not a live IOMallocAligned block");
	IOFree(block, 256);	/* still ours: it was not freed */
}

static void t_aligned_release_second_free_sees_the_cleared_header(void)
{
	u64 block[64] __aligned(64);
	iomem__aligned_header *hdr, copy;
	void *p;

	memset(block, 0, sizeof(block));
	p = IOMallocAligned(200, 64);
	if (!EXPECT(p))
		return;
	hdr = (iomem__aligned_header *)p - 1;
	EXPECT(hdr->check != 0);
	copy = *hdr;
	IOFreeAligned(p, 200);
	EXPECT_REPORTS(0);
	copy.check = 0;		/* what the free left behind */
	((iomem__aligned_header *)&block[32])[-1] = copy;
	IOFreeAligned(&block[32], 200);
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("double free");
}

static void t_stats_release_build_tracks_nothing(void)
{
	iomem_alloc_stats st;
	void *p;

	memset(&st, 0xff, sizeof(st));
	EXPECT(iomem_stats(&st) == kIOReturnUnsupported);
	EXPECT_EQ(st.family[IOMEM_ALLOC_MALLOC].live_blocks, 0);
	EXPECT_EQ(st.reports, 0);
	EXPECT(iomem_stats(NULL) == kIOReturnBadArgument);
	p = IOMalloc(10);
	EXPECT_EQ(iomem_leak_report(NULL, NULL), 0);
	IOFree(p, 10);
}
#endif

static void t_pageable_page_aligned_zeroed_whole_pages(void)
{
	static const vm_size_t sizes[] = { 1, 100, 4096, 5000, 65536 + 3 };
	vm_size_t page = PAGE_SIZE;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		vm_size_t rounded = (sizes[i] + page - 1) / page * page;
		unsigned char *p = IOMallocPageable(sizes[i], 0);

		if (!EXPECT(p))
			return;
		EXPECT_EQ((uintptr_t)p % page, 0);
		EXPECT(all_bytes(p, rounded, 0));
		memset(p, 0x11, rounded);	/* the whole last page is usable */
		IOFreePageable(p, sizes[i]);
		p = IOMallocPageableZero(sizes[i], page);
		if (!EXPECT(p))
			return;
		EXPECT(all_bytes(p, rounded, 0));
		IOFreePageable(p, sizes[i]);
	}
	EXPECT_REPORTS(0);
}

static void t_pageable_zero_size_is_one_page(void)
{
	unsigned char *p = IOMallocPageable(0, 1);

	if (!EXPECT(p))
		return;
	memset(p, 1, PAGE_SIZE);
	IOFreePageable(p, 0);
	EXPECT_REPORTS(0);
}

static void t_pageable_alignment_above_page_size_returns_null(void)
{
	vm_size_t page = PAGE_SIZE;
	void *p;

	EXPECT(!IOMallocPageable(4096, page * 2));
	EXPECT(!IOMallocPageable(4096, page + 1));
	EXPECT(!IOMallocPageableZero(4096, page * 2));
	EXPECT(!IOMallocPageable(4096, (vm_size_t)1 << 32));
	p = IOMallocPageable(4096, page);	/* exactly the page size is fine */
	if (EXPECT(p))
		IOFreePageable(p, 4096);
	EXPECT_REPORTS(0);
}

static void t_pageable_size_above_the_maximum_returns_null(void)
{
	EXPECT(!IOMallocPageable(IOMEM_PAGEABLE_MAX + 1, 0));
	EXPECT(!IOMallocPageable(~(vm_size_t)0, 0));
	EXPECT(!IOMallocPageableZero(IOMEM_PAGEABLE_MAX + 1, 0));
	EXPECT_REPORTS(0);
}

static void t_ionew_typed_arrays(void)
{
	u32 *a = IONew(u32, 100);
	u64 *z;
	int i;

	if (!EXPECT(a))
		return;
	for (i = 0; i < 100; i++)
		a[i] = (u32)i;
	IODelete(a, u32, 100);
	z = IONewZero(u64, 33);
	if (!EXPECT(z))
		return;
	EXPECT(all_bytes(z, 33 * sizeof(*z), 0));
	IODelete(z, u64, 33);
	EXPECT_REPORTS(0);
}

static void t_ionew_overflowing_counts_return_null(void)
{
	EXPECT_EQ(iomem_array_size(8, 4), 32);
	EXPECT_EQ(iomem_array_size(0, ~(vm_size_t)0), 0);
	EXPECT(iomem_array_size(16, IOMEM_ALLOC_SIZE_MAX / 8) > IOMEM_ALLOC_SIZE_MAX);
	EXPECT(!IONew(u64, IOMEM_ALLOC_SIZE_MAX / 4));
	EXPECT(!IONewZero(u64, ~(vm_size_t)0));
	EXPECT_REPORTS(0);
}

static void t_ionew_arguments_are_evaluated_once(void)
{
	int n = 3;
	u16 *a = IONew(u16, n++);

	EXPECT_EQ(n, 4);
	IODelete(a, u16, --n);
	EXPECT_EQ(n, 3);
	EXPECT_REPORTS(0);
}

/* ---- concurrency: kthreads instead of pthreads ---- */

struct ktest_worker {
	struct completion done;
	unsigned int seed;
	int iterations;
	int result;		/* 0 ok, 1 an allocation failed */
	void *live[64];
	vm_size_t sizes[64];
};

static int ktest_run_workers(int (*fn)(void *), unsigned int seed0, int iterations)
{
	struct ktest_worker *w;
	int i, started = 0, bad = 0;

	w = kcalloc(4, sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	for (i = 0; i < 4; i++) {
		struct task_struct *t;

		init_completion(&w[i].done);
		w[i].seed = seed0 + i;
		w[i].iterations = iterations;
		t = kthread_run(fn, &w[i], "iomem_ktest/%d", i);
		if (IS_ERR(t)) {
			bad++;
			continue;
		}
		started |= 1 << i;
	}
	for (i = 0; i < 4; i++) {
		if (!(started & (1 << i)))
			continue;
		wait_for_completion(&w[i].done);
		bad += w[i].result;
	}
	kfree(w);
	return bad;
}

static int alloc_worker(void *arg)
{
	struct ktest_worker *w = arg;
	unsigned int seed = w->seed;
	int i;

	for (i = 0; i < w->iterations; i++) {
		vm_size_t n;
		void *a, *b, *c;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % 512 + 1;
		a = IOMalloc(n);
		b = IOMallocAligned(n, 64);
		c = IOMallocZero(n);
		if (!a || !b || !c || ((uintptr_t)b & 63) || !all_bytes(c, n, 0)) {
			w->result = 1;
			IOFree(a, n);
			IOFreeAligned(b, n);
			IOFree(c, n);
			break;
		}
		memset(a, 1, n);
		memset(b, 2, n);
		IOFree(a, n);
		IOFreeAligned(b, n);
		IOFree(c, n);
		if ((i & 255) == 0)
			cond_resched();
	}
	kthread_complete_and_exit(&w->done, 0);
}

static void t_iomalloc_concurrent_use_is_safe(void)
{
	EXPECT_EQ(ktest_run_workers(alloc_worker, 1, 5000), 0);
	EXPECT_REPORTS(0);
}

/* ------------------------------------------------------------------ */
/* tests/test_debug.c (IOMEM_DEBUG builds only)                          */

#if IOMEM__DEBUG
static iomem_alloc_family_stats family_stats(iomem_alloc_family f)
{
	iomem_alloc_stats st;

	EXPECT(iomem_stats(&st) == kIOReturnSuccess);
	return st.family[f];
}

/* The module is one process: counters are cumulative, so compare deltas. */
static void t_debug_stats_count_live_bytes_and_blocks_per_family(void)
{
	iomem_alloc_family_stats m0 = family_stats(IOMEM_ALLOC_MALLOC), m;
	iomem_alloc_family_stats a0 = family_stats(IOMEM_ALLOC_ALIGNED);
	iomem_alloc_family_stats p0 = family_stats(IOMEM_ALLOC_PAGEABLE);
	void *a = IOMalloc(100), *z = IOMallocZero(28);
	void *al = IOMallocAligned(300, 128);
	void *pg = IOMallocPageable(5000, 0);

	if (!EXPECT(a && z && al && pg))
		return;
	m = family_stats(IOMEM_ALLOC_MALLOC);
	EXPECT_EQ(m.live_bytes - m0.live_bytes, 128);
	EXPECT_EQ(m.live_blocks - m0.live_blocks, 2);
	EXPECT_EQ(m.total_allocs - m0.total_allocs, 2);
	EXPECT(m.peak_bytes >= m0.live_bytes + 128);
	EXPECT_EQ(family_stats(IOMEM_ALLOC_ALIGNED).live_bytes - a0.live_bytes, 300);
	EXPECT_EQ(family_stats(IOMEM_ALLOC_PAGEABLE).live_bytes - p0.live_bytes, 5000);
	IOFree(a, 100);
	IOFree(z, 28);
	IOFreeAligned(al, 300);
	IOFreePageable(pg, 5000);
	m = family_stats(IOMEM_ALLOC_MALLOC);
	EXPECT_EQ(m.live_bytes, m0.live_bytes);
	EXPECT_EQ(m.live_blocks, m0.live_blocks);
	EXPECT_EQ(m.total_frees - m0.total_frees, 2);
	EXPECT_EQ(family_stats(IOMEM_ALLOC_ALIGNED).live_blocks, a0.live_blocks);
	EXPECT_EQ(family_stats(IOMEM_ALLOC_PAGEABLE).live_blocks, p0.live_blocks);
	EXPECT_REPORTS(0);
}

static void t_debug_failed_allocations_are_counted(void)
{
	u64 m0 = family_stats(IOMEM_ALLOC_MALLOC).failed_allocs;
	u64 a0 = family_stats(IOMEM_ALLOC_ALIGNED).failed_allocs;
	u64 p0 = family_stats(IOMEM_ALLOC_PAGEABLE).failed_allocs;

	EXPECT(!IOMalloc(~(vm_size_t)0));
	EXPECT(!IOMallocAligned(0, 64));
	EXPECT(!IOMallocPageable(100, 1u << 20));
	EXPECT_EQ(family_stats(IOMEM_ALLOC_MALLOC).failed_allocs - m0, 1);
	EXPECT_EQ(family_stats(IOMEM_ALLOC_ALIGNED).failed_allocs - a0, 1);
	EXPECT_EQ(family_stats(IOMEM_ALLOC_PAGEABLE).failed_allocs - p0, 1);
	EXPECT_REPORTS(0);
}

static void t_debug_iofree_with_wrong_size_is_reported_and_freed_with_the_real_size(void)
{
	u64 live0 = family_stats(IOMEM_ALLOC_MALLOC).live_blocks;
	char ptr[32];
	void *p = IOMalloc(100);

	if (!EXPECT(p))
		return;
	snprintf(ptr, sizeof(ptr), "%#llx", (unsigned long long)(uintptr_t)p);
	IOFree(p, 50);
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("IOFree(");
	EXPECT_REPORT_HAS(ptr);
	EXPECT_REPORT_HAS(", 50)");
	EXPECT_REPORT_HAS("allocation size 100");
	EXPECT_EQ(family_stats(IOMEM_ALLOC_MALLOC).live_blocks, live0);	/* not leaked */
}

static void t_debug_every_free_checks_the_size(void)
{
	u64 live0 = family_stats(IOMEM_ALLOC_PAGEABLE).live_blocks;
	void *al = IOMallocAligned(64, 64);
	void *pg = IOMallocPageable(8192, 0);

	if (!EXPECT(al && pg))
		return;
	IOFreeAligned(al, 65);
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("IOFreeAligned(");
	EXPECT_REPORT_HAS("allocation size 64");
	IOFreePageable(pg, 4096);	/* would free one page of two */
	EXPECT_REPORTS(2);
	EXPECT_REPORT_HAS("IOFreePageable(");
	EXPECT_REPORT_HAS("allocation size 8192");
	EXPECT_EQ(family_stats(IOMEM_ALLOC_PAGEABLE).live_blocks, live0);
}

static void t_debug_double_free_is_reported_and_frees_nothing(void)
{
	u64 frees0 = family_stats(IOMEM_ALLOC_MALLOC).total_frees;
	void *p = IOMalloc(40);

	if (!EXPECT(p))
		return;
	IOFree(p, 40);
	EXPECT_REPORTS(0);
	IOFree(p, 40);		/* the block is gone; only the side table is read */
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("IOFree(");
	EXPECT_REPORT_HAS("double free");
	EXPECT_REPORT_HAS("already freed by IOFree");
	EXPECT_EQ(family_stats(IOMEM_ALLOC_MALLOC).total_frees - frees0, 1);
}

static void t_debug_pointer_never_allocated_is_reported(void)
{
	static long not_ours[4];

	IOFree(&not_ours[1], 8);
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("IOFree(");
	EXPECT_REPORT_HAS("never allocated");
	IOFreeAligned(&not_ours[2], 8);
	EXPECT_REPORTS(2);
	EXPECT_REPORT_HAS("IOFreeAligned(");
	IOFreePageable(&not_ours[0], 4096);
	EXPECT_REPORTS(3);
	EXPECT_REPORT_HAS("IOFreePageable(");
}

static void t_debug_wrong_family_is_reported_and_freed_through_its_own_family(void)
{
	iomem_alloc_stats st0, st;
	void *al, *m, *pg;
	int f;

	EXPECT(iomem_stats(&st0) == kIOReturnSuccess);
	al = IOMallocAligned(64, 64);
	m = IOMalloc(64);
	pg = IOMallocPageable(100, 0);
	if (!EXPECT(al && m && pg))
		return;
	IOFree(al, 64);		/* kvfree() of it would free the wrong pointer */
	EXPECT_REPORTS(1);
	EXPECT_REPORT_HAS("IOFree(");
	EXPECT_REPORT_HAS("allocated by IOMallocAligned");
	IOFreeAligned(m, 64);
	EXPECT_REPORTS(2);
	EXPECT_REPORT_HAS("allocated by IOMalloc ");
	IOFree(pg, 100);	/* vmalloc memory: freed with vfree, not kvfree */
	EXPECT_REPORTS(3);
	EXPECT_REPORT_HAS("allocated by IOMallocPageable");
	EXPECT(iomem_stats(&st) == kIOReturnSuccess);
	for (f = 0; f < IOMEM_ALLOC_FAMILY_COUNT; f++)
		EXPECT_EQ(st.family[f].live_blocks, st0.family[f].live_blocks);
	EXPECT_EQ(st.reports - st0.reports, 3);
}

struct leak_seen { int n; vm_size_t bytes; int zero_calls; int aligned; };

static void on_leak(void *ctx, const void *address, vm_size_t size,
		    iomem_alloc_family family, const char *call)
{
	struct leak_seen *s = ctx;

	/* called under iomem's spinlock: no allocation, no sleeping */
	if (!address)
		s->n = -1000;
	s->n++;
	s->bytes += size;
	if (strcmp(call, "IOMallocZero") == 0)
		s->zero_calls++;
	if (family == IOMEM_ALLOC_ALIGNED)
		s->aligned++;
}

static void t_debug_leak_report_lists_live_blocks(void)
{
	void *a = IOMallocZero(10), *b = IOMallocAligned(20, 32), *c = IOMalloc(30);
	struct leak_seen seen = { 0, 0, 0, 0 };

	if (!EXPECT(a && b && c))
		return;
	EXPECT_EQ(iomem_leak_report(on_leak, &seen), 3);
	EXPECT_EQ(seen.n, 3);
	EXPECT_EQ(seen.bytes, 60);
	EXPECT_EQ(seen.zero_calls, 1);
	EXPECT_EQ(seen.aligned, 1);
	IOFree(a, 10);
	IOFreeAligned(b, 20);
	IOFree(c, 30);
	EXPECT_EQ(iomem_leak_report(on_leak, &seen), 0);
	EXPECT_REPORTS(0);
}

static void t_debug_leak_report_prints_without_a_callback(void)
{
	void *p = IOMalloc(77);

	if (!EXPECT(p))
		return;
	DIAG("one \"iomem: leak:\" line is expected next");
	EXPECT_EQ(iomem_leak_report(NULL, NULL), 1);
	IOFree(p, 77);
	EXPECT_REPORTS(0);
}

static void t_debug_bad_arguments(void)
{
	EXPECT(iomem_stats(NULL) == kIOReturnBadArgument);
	EXPECT_STREQ(iomem_alloc_family_name(IOMEM_ALLOC_MALLOC), "IOMalloc");
	EXPECT_STREQ(iomem_alloc_family_name(IOMEM_ALLOC_ALIGNED), "IOMallocAligned");
	EXPECT_STREQ(iomem_alloc_family_name(IOMEM_ALLOC_PAGEABLE), "IOMallocPageable");
	EXPECT_STREQ(iomem_alloc_family_name(IOMEM_ALLOC_INTERNAL), "internal");
	EXPECT_STREQ(iomem_alloc_family_name((iomem_alloc_family)99), "unknown");
}

static void t_debug_internal_objects_are_tracked_by_name(void)
{
	u64 live0 = family_stats(IOMEM_ALLOC_INTERNAL).live_bytes;
	void *o = iomem__alloc_internal(48, "IOMemoryDescriptor");

	if (!EXPECT(o))
		return;
	EXPECT_EQ(family_stats(IOMEM_ALLOC_INTERNAL).live_bytes - live0, 48);
	iomem__free_internal(o, 48, "IOMemoryDescriptor");
	EXPECT_EQ(family_stats(IOMEM_ALLOC_INTERNAL).live_bytes, live0);
	EXPECT_REPORTS(0);
}

static void t_debug_table_survives_growth_and_random_deletion(void)
{
	enum { N = 20000 };
	u64 live0 = family_stats(IOMEM_ALLOC_MALLOC).live_blocks;
	void **p = kvmalloc_array(N, sizeof(*p), GFP_KERNEL | __GFP_ZERO);
	int *order = kvmalloc_array(N, sizeof(*order), GFP_KERNEL);
	struct leak_seen seen = { 0, 0, 0, 0 };
	unsigned int seed = 12345;
	int i, k;

	if (!EXPECT(p && order))
		goto out;
	for (i = 0; i < N; i++) {
		p[i] = IOMalloc((vm_size_t)(i % 61) + 1);
		if (!EXPECT(p[i]))
			break;
		order[i] = i;
	}
	if (i < N) {
		while (--i >= 0)
			IOFree(p[i], (vm_size_t)(i % 61) + 1);
		goto out;
	}
	EXPECT_EQ(family_stats(IOMEM_ALLOC_MALLOC).live_blocks - live0, N);
	EXPECT_EQ(iomem_leak_report(on_leak, &seen), live0 + N);
	for (i = N - 1; i > 0; i--) {	/* Fisher-Yates */
		int j, t;

		seed = seed * 1103515245u + 12345u;
		j = (int)((seed >> 8) % (unsigned int)(i + 1));
		t = order[i]; order[i] = order[j]; order[j] = t;
	}
	for (k = 0; k < N; k++) {
		i = order[k];
		IOFree(p[i], (vm_size_t)(i % 61) + 1);
	}
	EXPECT_REPORTS(0);
	EXPECT_EQ(family_stats(IOMEM_ALLOC_MALLOC).live_blocks, live0);
out:
	kvfree(p);
	kvfree(order);
}

static int debug_worker(void *arg)
{
	struct ktest_worker *w = arg;
	unsigned int seed = w->seed, s;
	int i;

	for (i = 0; i < w->iterations; i++) {
		unsigned int slot;

		seed = seed * 1103515245u + 12345u;
		slot = (seed >> 10) % 64;
		if (w->live[slot]) {
			IOFree(w->live[slot], w->sizes[slot]);
			w->live[slot] = NULL;
		} else {
			w->sizes[slot] = (seed >> 16) % 300 + 1;
			w->live[slot] = IOMalloc(w->sizes[slot]);
			if (w->live[slot] == NULL) {
				w->result = 1;
				break;
			}
		}
		if ((i & 255) == 0)
			cond_resched();
	}
	for (s = 0; s < 64; s++)
		IOFree(w->live[s], w->sizes[s]);
	kthread_complete_and_exit(&w->done, 0);
}

static void t_debug_concurrent_tracking_is_consistent(void)
{
	iomem_alloc_family_stats m0 = family_stats(IOMEM_ALLOC_MALLOC), m;

	EXPECT_EQ(ktest_run_workers(debug_worker, 7, 5000), 0);
	EXPECT_REPORTS(0);
	m = family_stats(IOMEM_ALLOC_MALLOC);
	EXPECT_EQ(m.live_blocks, m0.live_blocks);
	EXPECT_EQ(m.live_bytes, m0.live_bytes);
	EXPECT_EQ(m.total_allocs - m0.total_allocs, m.total_frees - m0.total_frees);
}
#endif /* IOMEM__DEBUG */

/* ------------------------------------------------------------------ */
/* descriptors (tests/test_desc_*.c), checked against the kernel's view */

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)

/* the kernel's own translation of a kernel virtual address */
static phys_addr_t kphys(const void *va)
{
	if (is_vmalloc_addr(va)) {
		struct page *pg = vmalloc_to_page(va);

		return pg ? page_to_phys(pg) + offset_in_page(va) : 0;
	}
	return virt_to_phys((void *)va);
}

static void kfill(void *p, size_t n, unsigned int seed)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 31 + seed * 7 + (i >> 9));
}

/*
 * The segments of @md over bytes [@from, @from + @len) against the kernel's
 * translation of @va + (offset - @from): at the first byte, every virtual
 * page start inside and the last byte; maximal (the next byte is not
 * physically adjacent) unless @maximal is false (multi/interleaved never
 * merge across children); covering @len exactly. Returns the number of
 * segments, -1 on a mismatch.
 */
static int check_span(IOMemoryDescriptor *md, IOByteCount from, const unsigned char *va,
		      IOByteCount len, bool maximal)
{
	IOByteCount off = 0, seg;
	int nseg = 0;

	while (off < len) {
		addr64_t pa;
		IOByteCount k;

		seg = 0;
		pa = IOMemoryDescriptor_getPhysicalSegment(md, from + off, &seg, 0);
		if (!EXPECT(pa != 0 && seg != 0)) {
			DIAG("  at offset %#llx of %#llx", (unsigned long long)off,
			     (unsigned long long)len);
			return -1;
		}
		if (seg > len - off)	/* a child's run may go on: the caller's span ends */
			seg = len - off;
		for (k = 0; k < seg; k += PAGE_SIZE - offset_in_page(va + off + k)) {
			if (!EXPECT_EQ(pa + k, kphys(va + off + k))) {
				DIAG("  offset %#llx + %#llx", (unsigned long long)off,
				     (unsigned long long)k);
				return -1;
			}
		}
		if (!EXPECT_EQ(pa + seg - 1, kphys(va + off + seg - 1)))
			return -1;
		if (maximal && off + seg < len && !EXPECT(kphys(va + off + seg) != pa + seg)) {
			DIAG("  segment at %#llx (%#llx bytes) is not maximal",
			     (unsigned long long)off, (unsigned long long)seg);
			return -1;
		}
		off += seg;
		nseg++;
	}
	EXPECT_EQ(off, len);
	return nseg;
}

/* all of @md over @va: check_span, exact length, 0/0 at and after the end */
static int check_segments(IOMemoryDescriptor *md, const unsigned char *va, IOByteCount len)
{
	IOByteCount seg, off = 0;
	int n;

	EXPECT_EQ(IOMemoryDescriptor_getLength(md), len);
	n = check_span(md, 0, va, len, true);
	/* the segments cover the length exactly */
	while (off < len) {
		if (!IOMemoryDescriptor_getPhysicalSegment(md, off, &seg, 0) || !seg)
			break;
		off += seg;
	}
	EXPECT_EQ(off, len);
	seg = 77;
	EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, len, &seg, 0), 0);
	EXPECT_EQ(seg, 0);
	seg = 77;
	EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, len + PAGE_SIZE + 3, &seg, 0), 0);
	EXPECT_EQ(seg, 0);
	return n;
}

/* readBytes of all of @md equals @want; a write round trip through @md shows in @mem */
static void check_bytes(IOMemoryDescriptor *md, const unsigned char *want, size_t len)
{
	unsigned char *out = kvmalloc(len + 1, GFP_KERNEL);

	if (!EXPECT(out))
		return;
	memset(out, 0x5a, len + 1);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, out, len), len);
	EXPECT(memcmp(out, want, len) == 0);
	EXPECT_EQ(out[len], 0x5a);
	/* all or nothing */
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 1, out, len), 0);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, len + 1, out, 1), 0);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, NULL, len), 0);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(md, ~(IOByteCount)0, out, 2), 0);
	kvfree(out);
}

/* kmalloc memory (one slab object over 4 pages), unaligned start */
static void t_desc_with_address_kmalloc_segments(void)
{
	const size_t size = 3 * PAGE_SIZE + 300, skew = 37, len = 3 * PAGE_SIZE + 200;
	unsigned char *buf = kmalloc(size, GFP_KERNEL), *in = NULL, *out = NULL;
	IOMemoryDescriptor *md;
	unsigned char before;
	uint64_t id;

	if (!EXPECT(buf))
		return;
	EXPECT(!is_vmalloc_addr(buf));
	kfill(buf, size, 1);
	md = IOMemoryDescriptor_withAddress(buf + skew, len, kIODirectionInOut);
	if (!EXPECT(md))
		goto out;
	EXPECT_EQ(iomem_md_kind_of(md), IOMEM_MD_GENERAL);
	id = IOMemoryDescriptor_getPreparationID(md);
	EXPECT(id > kIOPreparationIDAlwaysPrepared);
	/* the linear map: one physically contiguous segment */
	EXPECT_EQ(check_segments(md, buf + skew, len), 1);
	EXPECT_EQ(IOMemoryDescriptor_getPhysicalAddress(md), virt_to_phys(buf + skew));
	check_bytes(md, buf + skew, len);
	/* nested prepare/complete keep the auto-prepare wiring */
	EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
	EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	EXPECT_EQ(check_segments(md, buf + skew, len), 1);
	/* writes land in the kernel's memory, zero fill with NULL, nothing past the end */
	in = kmalloc(500, GFP_KERNEL);
	out = kmalloc(500, GFP_KERNEL);
	if (EXPECT(in && out)) {
		kfill(in, 500, 9);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, PAGE_SIZE - 250, in, 500), 500);
		EXPECT(memcmp(buf + skew + PAGE_SIZE - 250, in, 500) == 0);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, 10, NULL, 300), 300);
		EXPECT(all_bytes(buf + skew + 10, 300, 0));
		before = buf[skew + len - 10];
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, len - 10, in, 11), 0);
		EXPECT_EQ(buf[skew + len - 10], before);	/* all or nothing */
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, len - 10, in, 10), 10);
		EXPECT(memcmp(buf + skew + len - 10, in, 10) == 0);
		EXPECT_EQ(IOMemoryDescriptor_readBytes(md, PAGE_SIZE - 250, out, 500), 500);
		EXPECT(memcmp(out, in, 500) == 0);
	}
	EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);	/* auto: reported */
	EXPECT_REPORTS(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		EXPECT_REPORT_HAS("IOMemoryDescriptor_complete");
	EXPECT_EQ(check_segments(md, buf + skew, len), 1);	/* the object's own wiring survives */
	IOMemoryDescriptor_release(md);
	/* one byte, and a range ending exactly at a page boundary */
	md = IOMemoryDescriptor_withAddress(buf + PAGE_SIZE - 1, 1, kIODirectionIn);
	if (EXPECT(md)) {
		EXPECT_EQ(check_segments(md, buf + PAGE_SIZE - 1, 1), 1);
		IOMemoryDescriptor_release(md);
	}
out:
	kfree(in);
	kfree(out);
	kfree(buf);
	EXPECT_REPORTS(DBG_REPORTS(1));
}

/* vmalloc memory: page by page through vmalloc_to_page, explicit prepare */
static void t_desc_with_address_vmalloc_segments(void)
{
	const size_t size = 9 * PAGE_SIZE, skew = 100, len = 8 * PAGE_SIZE + 50;
	unsigned char *v = vmalloc(size), *k = kmalloc(3000, GFP_KERNEL), *out = NULL;
	IOMemoryDescriptor *md = NULL;
	IOAddressRange r[2];
	IOByteCount seg;
	int n;

	if (!EXPECT(v && k))
		goto out;
	kfill(v, size, 2);
	kfill(k, 3000, 3);
	md = IOMemoryDescriptor_withAddress(v + skew, len, kIODirectionInOut);
	if (!EXPECT(md))
		goto out;
	n = check_segments(md, v + skew, len);
	EXPECT(n >= 1 && n <= 9);
	DIAG("vmalloc: %d segment(s) over 9 pages", n);
	check_bytes(md, v + skew, len);
	EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, 2 * PAGE_SIZE - 3, NULL, PAGE_SIZE + 6), PAGE_SIZE + 6);
	EXPECT(all_bytes(v + skew + 2 * PAGE_SIZE - 3, PAGE_SIZE + 6, 0));
	IOMemoryDescriptor_release(md);

	/* not auto-prepared: 0 until prepare (reported under IOMEM_DEBUG) */
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)v, size, kIODirectionInOut, kernel_task);
	if (!EXPECT(md))
		goto out;
	seg = 77;
	EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0);
	EXPECT_EQ(seg, 0);
	EXPECT_REPORTS(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		EXPECT_REPORT_HAS("IOMemoryDescriptor_getPhysicalSegment");
	if (EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess)) {
		check_segments(md, v, size);
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	}
	EXPECT_EQ(IOMemoryDescriptor_getPreparationID(md), kIOPreparationIDUnprepared);
	IOMemoryDescriptor_release(md);

	/* two ranges: vmalloc then kmalloc, concatenated */
	r[0].address = (uintptr_t)(v + PAGE_SIZE + 5);
	r[0].length = 2 * PAGE_SIZE;
	r[1].address = (uintptr_t)(k + 1);
	r[1].length = 2000;
	md = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionInOut, kernel_task);
	if (!EXPECT(md))
		goto out;
	if (EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess)) {
		EXPECT_EQ(IOMemoryDescriptor_getLength(md), 2 * PAGE_SIZE + 2000);
		EXPECT(check_span(md, 0, v + PAGE_SIZE + 5, 2 * PAGE_SIZE, false) >= 1);
		EXPECT_EQ(check_span(md, 2 * PAGE_SIZE, k + 1, 2000, true), 1);
		seg = 77;
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, 2 * PAGE_SIZE + 2000, &seg, 0), 0);
		EXPECT_EQ(seg, 0);
		out = kmalloc(2 * PAGE_SIZE + 2000, GFP_KERNEL);
		if (EXPECT(out)) {
			EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, out, 2 * PAGE_SIZE + 2000),
				  2 * PAGE_SIZE + 2000);
			EXPECT(!memcmp(out, v + PAGE_SIZE + 5, 2 * PAGE_SIZE));
			EXPECT(!memcmp(out + 2 * PAGE_SIZE, k + 1, 2000));
		}
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
	}
	IOMemoryDescriptor_release(md);
out:
	kfree(out);
	kfree(k);
	vfree(v);
	EXPECT_REPORTS(DBG_REPORTS(1));
}

/* buffers: vmalloc-backed, contiguous, aligned, below 4 GiB; accessors */
static void t_desc_buffer_memory(void)
{
	const size_t cap = 5 * PAGE_SIZE + 123;
	IOBufferMemoryDescriptor *b;
	unsigned char *p, *tmp = kmalloc(cap, GFP_KERNEL);
	addr64_t pa;
	IOByteCount seg;
	int n;

	if (!EXPECT(tmp))
		return;
	b = IOBufferMemoryDescriptor_withCapacity(cap, kIODirectionInOut, false);
	if (EXPECT(b)) {
		EXPECT_EQ(iomem_md_kind_of(b), IOMEM_MD_BUFFER);
		EXPECT_EQ(IOBufferMemoryDescriptor_getCapacity(b), cap);
		p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		EXPECT(p && PAGE_ALIGNED(p));
		EXPECT(all_bytes(p, cap, 0));		/* zero-filled (init_on_alloc=0) */
		n = check_segments(b, p, cap);
		EXPECT(n >= 1);
		kfill(p, cap, 4);
		check_bytes(b, p, cap);
		kfill(tmp, cap, 5);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(b, 0, tmp, cap), cap);
		EXPECT(!memcmp(p, tmp, cap));
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(b, 7, NULL, cap - 7), cap - 7);
		EXPECT(all_bytes(p + 7, cap - 7, 0));
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(b, cap - 3, tmp, 4), 0);	/* all or nothing */
		EXPECT(all_bytes(p + 7, cap - 7, 0));
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(b, ~(IOByteCount)0 - 1, tmp, 4), 0);
		/* setLength: segments end at the length */
		IOBufferMemoryDescriptor_setLength(b, cap + 1);
		EXPECT_EQ(IOMemoryDescriptor_getLength(b), cap);
		IOBufferMemoryDescriptor_setLength(b, PAGE_SIZE + 10);
		check_segments(b, p, PAGE_SIZE + 10);
		EXPECT_EQ(IOMemoryDescriptor_readBytes(b, PAGE_SIZE, tmp, 11), 0);
		EXPECT(IOBufferMemoryDescriptor_getBytesNoCopyRange(b, PAGE_SIZE + 9, 1) == p + PAGE_SIZE + 9);
		EXPECT(!IOBufferMemoryDescriptor_getBytesNoCopyRange(b, PAGE_SIZE + 9, 2));
		/* appendBytes grows across a page boundary, then truncates at the capacity */
		kfill(tmp, cap, 6);
		EXPECT(IOBufferMemoryDescriptor_appendBytes(b, tmp, 2 * PAGE_SIZE));
		EXPECT_EQ(IOMemoryDescriptor_getLength(b), 3 * PAGE_SIZE + 10);
		EXPECT(!memcmp(p + PAGE_SIZE + 10, tmp, 2 * PAGE_SIZE));
		check_segments(b, p, 3 * PAGE_SIZE + 10);
		EXPECT(IOBufferMemoryDescriptor_appendBytes(b, tmp, cap));
		EXPECT_EQ(IOMemoryDescriptor_getLength(b), cap);
		EXPECT(!memcmp(p + 3 * PAGE_SIZE + 10, tmp, cap - 3 * PAGE_SIZE - 10));
		EXPECT(!IOBufferMemoryDescriptor_appendBytes(b, NULL, 1));
		check_segments(b, p, cap);
		IOMemoryDescriptor_release(b);
	}

	/* contiguous: one segment, aligned to the capacity (a power of two) */
	b = IOBufferMemoryDescriptor_withCapacity(4 * PAGE_SIZE, kIODirectionInOut, true);
	if (EXPECT(b)) {
		p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		EXPECT_EQ(check_segments(b, p, 4 * PAGE_SIZE), 1);
		pa = IOMemoryDescriptor_getPhysicalSegment(b, 0, &seg, 0);
		EXPECT_EQ(pa & (4 * PAGE_SIZE - 1), 0);
		EXPECT_EQ(seg, 4 * PAGE_SIZE);
		IOMemoryDescriptor_release(b);
	}

	/* an alignment above the size */
	b = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIODirectionInOut, PAGE_SIZE, 16 * PAGE_SIZE);
	if (EXPECT(b)) {
		p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		EXPECT_EQ(check_segments(b, p, PAGE_SIZE), 1);
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalAddress(b) & (16 * PAGE_SIZE - 1), 0);
		EXPECT(all_bytes(p, PAGE_SIZE, 0));
		IOMemoryDescriptor_release(b);
	}
	b = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIODirectionInOut, 3 * PAGE_SIZE + 1, 1);
	if (EXPECT(b)) {
		p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		EXPECT(check_segments(b, p, 3 * PAGE_SIZE + 1) >= 1);
		IOMemoryDescriptor_release(b);
	}

	/* below 4 GiB, physically contiguous */
	b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionInOut,
							     3 * PAGE_SIZE, 0xFFFFF000ull);
	if (EXPECT(b)) {
		p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		EXPECT_EQ(check_segments(b, p, 3 * PAGE_SIZE), 1);
		pa = IOMemoryDescriptor_getPhysicalAddress(b);
		EXPECT(pa + 3 * PAGE_SIZE - 1 <= 0xFFFFFFFFull);
		EXPECT_EQ(pa, kphys(p));
		EXPECT(all_bytes(p, 3 * PAGE_SIZE, 0));
		kfill(p, 3 * PAGE_SIZE, 7);
		check_bytes(b, p, 3 * PAGE_SIZE);
		IOMemoryDescriptor_release(b);
	}
	/* 64 KiB alignment from the mask's lowest bit */
	b = IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn,
							     PAGE_SIZE, 0xFFFF0000ull);
	if (EXPECT(b)) {
		pa = IOMemoryDescriptor_getPhysicalAddress(b);
		EXPECT_EQ(pa & 0xFFFF, 0);
		EXPECT(pa + PAGE_SIZE - 1 <= 0xFFFFFFFFull);
		EXPECT_EQ(pa, kphys(IOBufferMemoryDescriptor_getBytesNoCopy(b)));
		IOMemoryDescriptor_release(b);
	}

	/* withBytes */
	kfill(tmp, 700, 8);
	b = IOBufferMemoryDescriptor_withBytes(tmp, 700, kIODirectionOut, false);
	if (EXPECT(b)) {
		p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		EXPECT(!memcmp(p, tmp, 700));
		EXPECT_EQ(check_segments(b, p, 700), 1);
		check_bytes(b, tmp, 700);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(b, 0, tmp, 1), 0);	/* Out: wired read-only */
		IOMemoryDescriptor_release(b);
	}

	/* pageable: prepare first */
	b = IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIOMemoryPageable | kIODirectionInOut,
						      2 * PAGE_SIZE, 0);
	if (EXPECT(b)) {
		p = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		if (EXPECT_EQ(IOMemoryDescriptor_prepare(b, kIODirectionNone), kIOReturnSuccess)) {
			check_segments(b, p, 2 * PAGE_SIZE);
			IOMemoryDescriptor_complete(b, kIODirectionNone);
		}
		IOMemoryDescriptor_release(b);
	}
	kfree(tmp);
	EXPECT_REPORTS(0);
}

/* requests that cannot be met: NULL, with no kernel warning (order > MAX_ORDER) */
static void t_desc_buffer_impossible_requests_without_warning(void)
{
	bool warned = test_taint(TAINT_WARN);

	EXPECT(!IOBufferMemoryDescriptor_withCapacity(64u << 20, kIODirectionIn, true));
	EXPECT(!IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIODirectionIn, PAGE_SIZE, 1u << 30));
	EXPECT(!IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn,
							       32u << 20, 0xFFFFF000ull));
	EXPECT(!IOBufferMemoryDescriptor_inTaskWithPhysicalMask(kernel_task, kIODirectionIn,
							       PAGE_SIZE, 0xFFFull));
	EXPECT(warned || !test_taint(TAINT_WARN));
	EXPECT_REPORTS(0);
}

/* physical and device descriptors over a kmalloc buffer's physical address */
static void t_desc_physical_and_device_memory(void)
{
	const size_t size = 2 * PAGE_SIZE + 64;
	unsigned char *buf = kmalloc(size, GFP_KERNEL), *out = kmalloc(size, GFP_KERNEL);
	phys_addr_t phys;
	IOMemoryDescriptor *md;
	IODeviceMemory *d, *ds;
	IOByteCount seg;

	if (!EXPECT(buf && out))
		goto out;
	kfill(buf, size, 10);
	phys = virt_to_phys(buf);
	md = IOMemoryDescriptor_withPhysicalAddress(phys + 5, size - 5, kIODirectionInOut);
	if (EXPECT(md)) {
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), phys + 5);
		EXPECT_EQ(seg, size - 5);
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, 100, &seg, 0), phys + 105);
		EXPECT_EQ(seg, size - 105);
		EXPECT_EQ(check_segments(md, buf + 5, size - 5), 1);
		check_bytes(md, buf + 5, size - 5);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, PAGE_SIZE, NULL, 100), 100);
		EXPECT(all_bytes(buf + 5 + PAGE_SIZE, 100, 0));
		EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);	/* physical: fine */
		IOMemoryDescriptor_release(md);
	}
	kfill(buf, size, 11);
	d = IODeviceMemory_withRange(phys, size);
	if (EXPECT(d)) {
		EXPECT_EQ(iomem_md_kind_of(d), IOMEM_MD_DEVICE);
		EXPECT_EQ(IOMemoryDescriptor_getDirection(d), kIODirectionNone);
		EXPECT_EQ(check_segments(d, buf, size), 1);
		check_bytes(d, buf, size);
		ds = IODeviceMemory_withSubRange(d, PAGE_SIZE - 8, 16);
		if (EXPECT(ds)) {
			EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(ds, 0, &seg, 0), phys + PAGE_SIZE - 8);
			EXPECT_EQ(seg, 16);
			check_bytes(ds, buf + PAGE_SIZE - 8, 16);
			IOMemoryDescriptor_release(ds);
		}
		EXPECT(!IODeviceMemory_withSubRange(d, size, 1));
		IOMemoryDescriptor_release(d);
	}
out:
	kfree(buf);
	kfree(out);
	EXPECT_REPORTS(0);
}

/* sub, multi and interleaved over kmalloc, vmalloc, buffer and physical children */
static void t_desc_sub_multi_interleaved(void)
{
	const size_t vsize = 4 * PAGE_SIZE, ksize = 1000;
	unsigned char *v = vmalloc(vsize), *k = kmalloc(ksize, GFP_KERNEL), *want = NULL, *out = NULL;
	IOMemoryDescriptor *vm = NULL, *ph = NULL, *buf = NULL, *s = NULL, *s2 = NULL, *m = NULL, *im = NULL;
	IOMemoryDescriptor *c[3];
	unsigned char *bp;
	IOByteCount seg, total;

	if (!EXPECT(v && k))
		goto out;
	kfill(v, vsize, 12);
	kfill(k, ksize, 13);
	vm = IOMemoryDescriptor_withAddressRange((uintptr_t)v, vsize, kIODirectionInOut, kernel_task);
	ph = IOMemoryDescriptor_withPhysicalAddress(virt_to_phys(k), ksize, kIODirectionInOut);
	buf = IOBufferMemoryDescriptor_withCapacity(2 * PAGE_SIZE, kIODirectionInOut, false);
	if (!EXPECT(vm && ph && buf))
		goto out;
	bp = IOBufferMemoryDescriptor_getBytesNoCopy(buf);
	kfill(bp, 2 * PAGE_SIZE, 14);

	/* sub of an unprepared virtual parent: its prepare wires the parent */
	s = IOSubMemoryDescriptor_withSubRange(vm, PAGE_SIZE - 10, 2 * PAGE_SIZE, kIODirectionInOut);
	if (!EXPECT(s))
		goto out;
	EXPECT_EQ(iomem_md_kind_of(s), IOMEM_MD_SUB);
	EXPECT_EQ(IOMemoryDescriptor_getLength(s), 2 * PAGE_SIZE);
	EXPECT_EQ(iomem_md_getRetainCount(vm), 2);
	if (EXPECT_EQ(IOMemoryDescriptor_prepare(s, kIODirectionNone), kIOReturnSuccess)) {
		check_segments(s, v + PAGE_SIZE - 10, 2 * PAGE_SIZE);
		check_bytes(s, v + PAGE_SIZE - 10, 2 * PAGE_SIZE);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(s, 5, NULL, 20), 20);
		EXPECT(all_bytes(v + PAGE_SIZE - 5, 20, 0));
		/* a sub of the sub */
		s2 = IOSubMemoryDescriptor_withSubRange(s, 3, PAGE_SIZE, kIODirectionIn);
		if (EXPECT(s2)) {
			EXPECT_EQ(IOMemoryDescriptor_prepare(s2, kIODirectionNone), kIOReturnSuccess);
			check_segments(s2, v + PAGE_SIZE - 7, PAGE_SIZE);
			IOMemoryDescriptor_complete(s2, kIODirectionNone);
		}
		EXPECT_EQ(IOMemoryDescriptor_complete(s, kIODirectionNone), kIOReturnSuccess);
	}

	/* multi: [sub of vmalloc, buffer, physical kmalloc] */
	c[0] = s;
	c[1] = buf;
	c[2] = ph;
	m = IOMultiMemoryDescriptor_withDescriptors(c, 3, kIODirectionInOut, false);
	if (!EXPECT(m))
		goto out;
	total = 2 * PAGE_SIZE + 2 * PAGE_SIZE + ksize;
	EXPECT_EQ(IOMemoryDescriptor_getLength(m), total);
	/* room for the multi and for the interleaved one below */
	want = kvmalloc(6 * PAGE_SIZE + ksize, GFP_KERNEL);
	out = kvmalloc(6 * PAGE_SIZE + ksize, GFP_KERNEL);
	if (!EXPECT(want && out))
		goto out;
	if (EXPECT_EQ(IOMemoryDescriptor_prepare(m, kIODirectionNone), kIOReturnSuccess)) {
		EXPECT(check_span(m, 0, v + PAGE_SIZE - 10, 2 * PAGE_SIZE, false) >= 1);
		EXPECT(check_span(m, 2 * PAGE_SIZE, bp, 2 * PAGE_SIZE, false) >= 1);
		EXPECT_EQ(check_span(m, 4 * PAGE_SIZE, k, ksize, true), 1);
		/* no merge across children: the segment at a child's last byte is 1 byte */
		IOMemoryDescriptor_getPhysicalSegment(m, 2 * PAGE_SIZE - 1, &seg, 0);
		EXPECT_EQ(seg, 1);
		seg = 77;
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(m, total, &seg, 0), 0);
		EXPECT_EQ(seg, 0);
		memcpy(want, v + PAGE_SIZE - 10, 2 * PAGE_SIZE);
		memcpy(want + 2 * PAGE_SIZE, bp, 2 * PAGE_SIZE);
		memcpy(want + 4 * PAGE_SIZE, k, ksize);
		check_bytes(m, want, total);
		/* a write across the child boundaries */
		kfill(want, total, 15);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(m, 0, want, total), total);
		EXPECT(!memcmp(v + PAGE_SIZE - 10, want, 2 * PAGE_SIZE));
		EXPECT(!memcmp(bp, want + 2 * PAGE_SIZE, 2 * PAGE_SIZE));
		EXPECT(!memcmp(k, want + 4 * PAGE_SIZE, ksize));
		EXPECT_EQ(IOMemoryDescriptor_complete(m, kIODirectionNone), kIOReturnSuccess);
	}

	/* interleaved: slices of the buffer, the physical one and the buffer again */
	im = IOInterleavedMemoryDescriptor_withCapacity(4, kIODirectionInOut);
	if (!EXPECT(im))
		goto out;
	EXPECT(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, buf, 100, PAGE_SIZE));
	EXPECT(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, ph, 10, 500));
	EXPECT(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, buf, PAGE_SIZE + 7, 50));
	EXPECT(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, vm, 0, vsize));
	total = PAGE_SIZE + 500 + 50 + vsize;
	EXPECT_EQ(IOMemoryDescriptor_getLength(im), total);
	if (EXPECT_EQ(IOMemoryDescriptor_prepare(im, kIODirectionNone), kIOReturnSuccess)) {
		EXPECT(check_span(im, 0, bp + 100, PAGE_SIZE, false) >= 1);
		EXPECT_EQ(check_span(im, PAGE_SIZE, k + 10, 500, true), 1);
		EXPECT_EQ(check_span(im, PAGE_SIZE + 500, bp + PAGE_SIZE + 7, 50, true), 1);
		EXPECT(check_span(im, PAGE_SIZE + 550, v, vsize, false) >= 1);
		IOMemoryDescriptor_getPhysicalSegment(im, PAGE_SIZE - 1, &seg, 0);
		EXPECT_EQ(seg, 1);
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(im, total - 1, NULL, 0), kphys(v + vsize - 1));
		seg = 77;
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(im, total, &seg, 0), 0);
		EXPECT_EQ(seg, 0);
		memcpy(want, bp + 100, PAGE_SIZE);
		memcpy(want + PAGE_SIZE, k + 10, 500);
		memcpy(want + PAGE_SIZE + 500, bp + PAGE_SIZE + 7, 50);
		memcpy(want + PAGE_SIZE + 550, v, vsize);
		check_bytes(im, want, total);
		EXPECT_EQ(IOMemoryDescriptor_complete(im, kIODirectionNone), kIOReturnSuccess);
	}
	EXPECT_EQ(iomem_md_getRetainCount(buf), 4);	/* ours, the multi's, two slices */
out:
	IOMemoryDescriptor_release(im);
	IOMemoryDescriptor_release(m);
	IOMemoryDescriptor_release(s2);
	IOMemoryDescriptor_release(s);
	IOMemoryDescriptor_release(buf);
	IOMemoryDescriptor_release(ph);
	IOMemoryDescriptor_release(vm);
	kvfree(want);
	kvfree(out);
	kfree(k);
	vfree(v);
	EXPECT_REPORTS(0);
}

/* the host suites' bad input, in the kernel */
static void t_desc_bad_input(void)
{
	unsigned char *buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	IOAddressRange r[2], wrap = { ~(mach_vm_address_t)0 - 10, 100 };
	IOAddressRange huge[2] = { { 0x1000, ~(mach_vm_size_t)0 - 0x2000 }, { 0x1000, 0x3000 } };
	IOMemoryDescriptor *p, *md, *c[2], *im, *m;
	IOByteCount seg;
	int reports = 0;

	if (!EXPECT(buf))
		return;
	r[0].address = (uintptr_t)buf;
	r[0].length = 64;
	r[1].address = (uintptr_t)buf + 64;
	r[1].length = 64;
	EXPECT(!IOMemoryDescriptor_withAddress(NULL, 64, kIODirectionIn));
	EXPECT(!IOMemoryDescriptor_withAddressRanges(NULL, 1, kIODirectionIn, kernel_task));
	EXPECT(!IOMemoryDescriptor_withAddressRanges(r, 0, kIODirectionIn, kernel_task));
	EXPECT(!IOMemoryDescriptor_withAddressRanges(&wrap, 1, kIODirectionIn, kernel_task));
	EXPECT(!IOMemoryDescriptor_withAddressRanges(&wrap, 1, kIODirectionIn, NULL));
	EXPECT(!IOMemoryDescriptor_withAddressRanges(huge, 2, kIODirectionIn, NULL));
	EXPECT(!IOMemoryDescriptor_withAddress(buf, ~(IOByteCount)0 - 8, kIODirectionIn));
	EXPECT(!IOMemoryDescriptor_withOptions(NULL, 1, 0, kernel_task, kIOMemoryTypeVirtual, NULL));
	EXPECT(!IOMemoryDescriptor_withOptions(r, 2, 0, NULL, kIOMemoryTypeVirtual, NULL));
	EXPECT(!IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task, kIOMemoryTypePhysical, NULL));
	EXPECT(!IOMemoryDescriptor_withOptions(r, 2, 0, kernel_task, kIOMemoryTypeUPL, NULL));
	EXPECT(!IOMemoryDescriptor_withPersistentMemoryDescriptor(NULL));
	EXPECT_EQ(IOMemoryDescriptor_prepare(NULL, 0), kIOReturnBadArgument);
	EXPECT_EQ(IOMemoryDescriptor_complete(NULL, 0), kIOReturnBadArgument);
	EXPECT_EQ(IOMemoryDescriptor_readBytes(NULL, 0, buf, 1), 0);
	EXPECT_EQ(IOMemoryDescriptor_writeBytes(NULL, 0, buf, 1), 0);
	IOMemoryDescriptor_release(NULL);
	EXPECT(!IOBufferMemoryDescriptor_withCapacity(0, kIODirectionIn, false));
	EXPECT(!IOBufferMemoryDescriptor_inTaskWithOptions(NULL, 0, 4096, 1));
	EXPECT(!IOBufferMemoryDescriptor_withBytes(NULL, 10, kIODirectionIn, false));
	EXPECT(!IOBufferMemoryDescriptor_inTaskWithOptions(kernel_task, kIOMemoryPageable |
		kIOMemoryPhysicallyContiguous, 4096, 1));
	EXPECT(!IOBufferMemoryDescriptor_withOptions(0, ~(vm_size_t)0, 1));
	EXPECT(!IOInterleavedMemoryDescriptor_withCapacity(0, kIODirectionIn));
	EXPECT_REPORTS(0);

	/* zero length: 0 with length 0 everywhere */
	md = IOMemoryDescriptor_withAddress(buf, 0, kIODirectionIn);
	if (EXPECT(md)) {
		seg = 77;
		EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0);
		EXPECT_EQ(seg, 0);
		EXPECT_EQ(IOMemoryDescriptor_readBytes(md, 0, buf, 1), 0);
		IOMemoryDescriptor_release(md);
	}
	EXPECT_REPORTS(0);

	/* sub ranges outside the parent, overflowing */
	p = IOMemoryDescriptor_withPhysicalAddress(virt_to_phys(buf), PAGE_SIZE, kIODirectionIn);
	if (EXPECT(p)) {
		EXPECT(!IOSubMemoryDescriptor_withSubRange(NULL, 0, 1, 0));
		EXPECT(!IOSubMemoryDescriptor_withSubRange(p, PAGE_SIZE + 1, 0, 0));
		EXPECT(!IOSubMemoryDescriptor_withSubRange(p, PAGE_SIZE / 2, PAGE_SIZE / 2 + 1, 0));
		EXPECT(!IOSubMemoryDescriptor_withSubRange(p, 0x10, ~(IOByteCount)0 - 8, 0));
		md = IOSubMemoryDescriptor_withSubRange(p, PAGE_SIZE, 0, 0);
		if (EXPECT(md)) {
			seg = 1;
			EXPECT_EQ(IOMemoryDescriptor_getPhysicalSegment(md, 0, &seg, 0), 0);
			EXPECT_EQ(seg, 0);
			IOMemoryDescriptor_release(md);
		}
		/* multi: NULL child, count 0, length overflow */
		c[0] = p;
		c[1] = NULL;
		EXPECT(!IOMultiMemoryDescriptor_withDescriptors(NULL, 2, kIODirectionIn, false));
		EXPECT(!IOMultiMemoryDescriptor_withDescriptors(c, 0, kIODirectionIn, false));
		EXPECT(!IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionIn, false));
		c[0] = IOMemoryDescriptor_withPhysicalAddress(0x1000, ~(IOByteCount)0 - 0x2000, kIODirectionIn);
		c[1] = c[0];
		if (EXPECT(c[0])) {	/* twice 2^64 - 0x2001 bytes overflows */
			m = IOMultiMemoryDescriptor_withDescriptors(c, 2, kIODirectionIn, false);
			EXPECT(!m);
			IOMemoryDescriptor_release(m);
			EXPECT_EQ(iomem_md_getRetainCount(c[0]), 1);
			IOMemoryDescriptor_release(c[0]);
		}
		EXPECT_EQ(iomem_md_getRetainCount(p), 1);
		/* interleaved: outside, overflow, NULL, not interleaved, full */
		im = IOInterleavedMemoryDescriptor_withCapacity(1, kIODirectionIn);
		if (EXPECT(im)) {
			EXPECT(!IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, NULL, 0, 1));
			EXPECT(!IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, p, PAGE_SIZE / 2, PAGE_SIZE / 2 + 1));
			EXPECT(!IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, p, 8, ~(IOByteCount)0 - 4));
			EXPECT(!IOInterleavedMemoryDescriptor_setMemoryDescriptor(p, p, 0, 1));
			EXPECT(IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, p, 0, 16));
			EXPECT(!IOInterleavedMemoryDescriptor_setMemoryDescriptor(im, p, 16, 16));
			IOMemoryDescriptor_release(im);
		}
		IOMemoryDescriptor_release(p);
	}
	EXPECT_REPORTS(0);

	/* complete without prepare (reported under IOMEM_DEBUG, ignored) */
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, 64, kIODirectionIn, kernel_task);
	if (EXPECT(md)) {
		EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
		reports = DBG_REPORTS(1);
		EXPECT_REPORTS(reports);
		if (IOMEM__DEBUG)
			EXPECT_REPORT_HAS("IOMemoryDescriptor_complete");
		IOMemoryDescriptor_release(md);
	}
	/* release of a prepared descriptor (reported, then completed) */
	md = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, PAGE_SIZE, kIODirectionOut, kernel_task);
	if (EXPECT(md)) {
		EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
		EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess);
		EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionIn), kIOReturnNotWritable);
		EXPECT_EQ(IOMemoryDescriptor_writeBytes(md, 0, buf, 1), 0);	/* wired read-only */
		IOMemoryDescriptor_release(md);
		reports += DBG_REPORTS(1);
		EXPECT_REPORTS(reports);
		if (IOMEM__DEBUG)
			EXPECT_REPORT_HAS("IOMemoryDescriptor_release");
	}
	/* a prepared sub released: completes the parent */
	p = IOMemoryDescriptor_withAddressRange((uintptr_t)buf, PAGE_SIZE, kIODirectionIn, kernel_task);
	if (EXPECT(p)) {
		md = IOSubMemoryDescriptor_withSubRange(p, 0, 10, kIODirectionIn);
		if (EXPECT(md)) {
			EXPECT_EQ(IOMemoryDescriptor_prepare(md, 0), kIOReturnSuccess);
			EXPECT(IOMemoryDescriptor_getPreparationID(p) > kIOPreparationIDAlwaysPrepared);
			IOMemoryDescriptor_release(md);
			reports += DBG_REPORTS(1);
			EXPECT_REPORTS(reports);
			EXPECT_EQ(IOMemoryDescriptor_getPreparationID(p), kIOPreparationIDUnprepared);
		}
		/* complete without prepare on a sub */
		md = IOSubMemoryDescriptor_withSubRange(p, 0, 10, kIODirectionIn);
		if (EXPECT(md)) {
			EXPECT_EQ(IOMemoryDescriptor_complete(md, 0), kIOReturnSuccess);
			reports += DBG_REPORTS(1);
			EXPECT_REPORTS(reports);
			IOMemoryDescriptor_release(md);
		}
		IOMemoryDescriptor_release(p);
	}
	kfree(buf);
	EXPECT_REPORTS(reports);
}

/*
 * kIOMemoryThreadSafe (and every sub descriptor) serialises prepare/complete
 * on a per-object lock, and prepare allocates and wires under it (the
 * extents; a sub prepares its parent). In the kernel that lock must allow
 * sleeping: a driver-defined kind's prepare/complete hooks record the
 * context they run in.
 */
struct ktest_ctx_probe {
	int calls;
	bool atomic;
};

static void probe_note(IOMemoryDescriptor *md)
{
	struct ktest_ctx_probe *pr = iomem_md_getContext(md);

	pr->calls++;
	if (irqs_disabled() || preempt_count() != 0)
		pr->atomic = true;
}

static addr64_t probe_segment(IOMemoryDescriptor *md, IOByteCount offset, IOByteCount *length,
			      IOOptionBits options)
{
	(void)md; (void)offset; (void)options;
	if (length)
		*length = 0;
	return 0;
}

static IOReturn probe_prepare(IOMemoryDescriptor *md, IODirection direction)
{
	(void)direction;
	probe_note(md);
	return kIOReturnSuccess;
}

static IOReturn probe_complete(IOMemoryDescriptor *md, IODirection direction)
{
	(void)direction;
	probe_note(md);
	return kIOReturnSuccess;
}

static const iomem_md_ops probe_ops = {
	.name = "ktest-context-probe",
	.getPhysicalSegment = probe_segment,
	.prepare = probe_prepare,
	.complete = probe_complete,
};

static void t_desc_thread_safe_lock_may_sleep(void)
{
	struct ktest_ctx_probe pr = { 0, false };
	IOMemoryDescriptor *c, *s;
	unsigned char *v = vmalloc(3 * PAGE_SIZE);
	IOMemoryDescriptor *md;

	c = iomem_md_withOps(&probe_ops, &pr, PAGE_SIZE, kIODirectionInOut | kIOMemoryThreadSafe);
	if (EXPECT(c)) {
		EXPECT_EQ(IOMemoryDescriptor_prepare(c, kIODirectionNone), kIOReturnSuccess);
		EXPECT_EQ(IOMemoryDescriptor_complete(c, kIODirectionNone), kIOReturnSuccess);
		EXPECT_EQ(pr.calls, 2);
		EXPECT(!pr.atomic);		/* under the object's own lock */
		pr.calls = 0;
		pr.atomic = false;
		s = IOSubMemoryDescriptor_withSubRange(c, 16, 64, kIODirectionInOut);
		if (EXPECT(s)) {
			EXPECT(IOMemoryDescriptor_getFlags(s) & kIOMemoryThreadSafe);
			EXPECT_EQ(IOMemoryDescriptor_prepare(s, kIODirectionNone), kIOReturnSuccess);
			EXPECT_EQ(IOMemoryDescriptor_complete(s, kIODirectionNone), kIOReturnSuccess);
			EXPECT_EQ(pr.calls, 2);
			EXPECT(!pr.atomic);	/* under the sub's lock, and the parent's */
			IOMemoryDescriptor_release(s);
		}
		IOMemoryDescriptor_release(c);
	}
	/* a thread-safe general descriptor over vmalloc memory: prepare builds
	 * its extents under the lock */
	if (EXPECT(v)) {
		kfill(v, 3 * PAGE_SIZE, 16);
		md = IOMemoryDescriptor_withAddressRange((uintptr_t)v + 8, 3 * PAGE_SIZE - 16,
							 kIODirectionInOut | kIOMemoryThreadSafe, kernel_task);
		if (EXPECT(md)) {
			if (EXPECT_EQ(IOMemoryDescriptor_prepare(md, kIODirectionNone), kIOReturnSuccess)) {
				check_segments(md, v + 8, 3 * PAGE_SIZE - 16);
				check_bytes(md, v + 8, 3 * PAGE_SIZE - 16);
				EXPECT_EQ(IOMemoryDescriptor_complete(md, kIODirectionNone), kIOReturnSuccess);
			}
			IOMemoryDescriptor_release(md);
		}
		vfree(v);
	}
	EXPECT_REPORTS(0);
}

/* ------------------------------------------------------------------ */
/* kernel-only                                                          */

/* Above KMALLOC_MAX_SIZE kvmalloc must fall back to vmalloc; small blocks
 * stay in the slab (physically contiguous, linear map). */
static void t_kernel_iomalloc_large_uses_vmalloc_fallback(void)
{
	const vm_size_t big = 8u << 20;
	unsigned char *small, *p;

	BUILD_BUG_ON(8u << 20 <= KMALLOC_MAX_SIZE);
	small = IOMalloc(64);
	if (EXPECT(small)) {
		EXPECT(!is_vmalloc_addr(small));
		EXPECT(virt_addr_valid(small));
		IOFree(small, 64);
	}
	p = IOMalloc(big);
	if (EXPECT(p)) {
		EXPECT(is_vmalloc_addr(p));
		memset(p, 0x3c, big);
		EXPECT(all_bytes(p, big, 0x3c));
		IOFree(p, big);
	}
	p = IOMallocZero(big);
	if (EXPECT(p)) {
		EXPECT(is_vmalloc_addr(p));
		EXPECT(all_bytes(p, big, 0));
		IOFree(p, big);
	}
	p = IOMallocAligned(big, 1u << 16);
	if (EXPECT(p)) {
		EXPECT(is_vmalloc_addr(p));
		EXPECT_EQ((uintptr_t)p & 0xffff, 0);
		memset(p, 0x77, big);
		IOFreeAligned(p, big);
	}
	EXPECT_REPORTS(0);
}

static void t_kernel_iomallocpageable_is_vmalloc(void)
{
	const vm_size_t size = 3 * PAGE_SIZE + 1;
	unsigned char *p = IOMallocPageable(size, PAGE_SIZE);
	vm_size_t off;

	if (!EXPECT(p))
		return;
	EXPECT(is_vmalloc_addr(p));
	EXPECT(PAGE_ALIGNED(p));
	for (off = 0; off < 4 * PAGE_SIZE; off += PAGE_SIZE)
		EXPECT(vmalloc_to_page(p + off) != NULL);
	memset(p, 0x42, 4 * PAGE_SIZE);
	IOFreePageable(p, size);
	EXPECT_REPORTS(0);
}

/*
 * The backend's locks are spinlocks with IRQs saved, so its bookkeeping may
 * run wherever freeing is allowed. kfree() is allowed under a spinlock with
 * IRQs off (kvfree() of vmalloc memory is not, so only slab-sized blocks
 * here). iomem's own lock must nest and leave IRQs as it found them.
 */
static DEFINE_SPINLOCK(ktest_lock);

static void t_kernel_iofree_under_spinlock(void)
{
	enum { N = 16 };
	void *m[N], *a[N];
	unsigned long flags;
	bool irqs_off = true, atomic = true;
	int i, n = 0;

	for (i = 0; i < N; i++) {
		m[i] = IOMalloc(32 + i * 50);
		a[i] = IOMallocAligned(32 + i * 50, 128);
		if (!EXPECT(m[i] && a[i]) || !EXPECT(!is_vmalloc_addr(m[i])) ||
		    !EXPECT(!is_vmalloc_addr(a[i]))) {
			IOFree(m[i], 32 + i * 50);
			IOFreeAligned(a[i], 32 + i * 50);
			break;
		}
		n++;
	}
	spin_lock_irqsave(&ktest_lock, flags);
	for (i = 0; i < n; i++) {
		IOFree(m[i], 32 + i * 50);
		irqs_off &= irqs_disabled();
		atomic &= preempt_count() != 0;
		IOFreeAligned(a[i], 32 + i * 50);
		irqs_off &= irqs_disabled();
	}
	IOFree(NULL, 0);
	spin_unlock_irqrestore(&ktest_lock, flags);
	EXPECT(irqs_off);	/* iomem did not re-enable IRQs inside our section */
	EXPECT(atomic);
	EXPECT(!irqs_disabled());
	EXPECT_REPORTS(0);
}

/*
 * kvmalloc() refuses sizes above INT_MAX with a WARN (a tainted kernel) and
 * the vmalloc path complains loudly about sizes beyond RAM; IOKit's contract
 * is a plain NULL. These are valid requests (below IOMEM_ALLOC_SIZE_MAX).
 */
static void t_kernel_huge_sizes_return_null_without_warning(void)
{
	bool warned = test_taint(TAINT_WARN);

	EXPECT(!IOMalloc(IOMEM_ALLOC_SIZE_MAX));
	EXPECT(!IOMallocZero(IOMEM_ALLOC_SIZE_MAX));
	EXPECT(!IOMalloc((vm_size_t)INT_MAX + 1));
	EXPECT(!IOMallocZero((vm_size_t)UINT_MAX + 1));
	EXPECT(!IOMallocAligned(64, (vm_offset_t)0x80000000u));	/* 2 GiB footprint */
	EXPECT(!IONew(u64, (vm_size_t)1 << 40));
	EXPECT(warned || !test_taint(TAINT_WARN));
	EXPECT_REPORTS(0);
}

static void t_kernel_page_size(void)
{
	EXPECT_EQ(iomem__platform_page_size(), PAGE_SIZE);
	EXPECT_EQ(IOMEM_MALLOC_ALIGN, ARCH_KMALLOC_MINALIGN);
}

/* the VM's DMA mode is the one the CTest test asked for, seen by a real PCI device */
static void t_kernel_edu_device_and_dma_mode(void)
{
	u32 id, v;

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	id = readl(ktest_edu->bar + KTEST_EDU_REG_ID);
	EXPECT_EQ(id, KTEST_EDU_ID);
	writel(0x12345678, ktest_edu->bar + KTEST_EDU_REG_INV);
	v = readl(ktest_edu->bar + KTEST_EDU_REG_INV);
	EXPECT_EQ(v, ~0x12345678u);
	EXPECT(ktest_edu_mode_ok(mode));
}

/* one device-driven copy, so the DMA helper the IODMACommand tests will use
 * is known to work (2 x 2 transfers of 100 ms virtual time) */
static void t_kernel_edu_dma_engine(void)
{
	struct device *dev;
	dma_addr_t ha, hb;
	u8 *a, *b;
	int i;

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	dev = &ktest_edu->pdev->dev;
	a = dma_alloc_coherent(dev, KTEST_EDU_BUF_SIZE, &ha, GFP_KERNEL);
	b = dma_alloc_coherent(dev, KTEST_EDU_BUF_SIZE, &hb, GFP_KERNEL);
	if (!EXPECT(a && b))
		goto out;
	for (i = 0; i < KTEST_EDU_BUF_SIZE; i++)
		a[i] = (u8)(i * 7 + (i >> 8));
	memset(b, 0, KTEST_EDU_BUF_SIZE);
	if (EXPECT(ktest_edu_copy(ha, hb, KTEST_EDU_BUF_SIZE) == 0))
		EXPECT(memcmp(a, b, KTEST_EDU_BUF_SIZE) == 0);
out:
	if (a)
		dma_free_coherent(dev, KTEST_EDU_BUF_SIZE, a, ha);
	if (b)
		dma_free_coherent(dev, KTEST_EDU_BUF_SIZE, b, hb);
}

/* last: nothing leaked, nothing warned */
static void t_kernel_no_leaks_no_warnings(void)
{
	iomem_alloc_stats st;

	EXPECT_EQ(iomem_leak_report(NULL, NULL), 0);
#if IOMEM__DEBUG
	if (EXPECT(iomem_stats(&st) == kIOReturnSuccess)) {
		int f;

		for (f = 0; f < IOMEM_ALLOC_FAMILY_COUNT; f++) {
			EXPECT_EQ(st.family[f].live_blocks, 0);
			EXPECT_EQ(st.family[f].live_bytes, 0);
			EXPECT_EQ(st.family[f].total_allocs, st.family[f].total_frees);
		}
		DIAG("debug layer: %llu reports, IOMalloc allocs=%llu peak=%llu bytes",
		     st.reports, st.family[IOMEM_ALLOC_MALLOC].total_allocs,
		     st.family[IOMEM_ALLOC_MALLOC].peak_bytes);
	}
#else
	EXPECT(iomem_stats(&st) == kIOReturnUnsupported);
#endif
	EXPECT(!test_taint(TAINT_WARN));
	EXPECT(!test_taint(TAINT_DIE));
	EXPECT(!test_taint(TAINT_BAD_PAGE));
}

/* IODMACommand (issue #9 item 3): physical, bounced, through the device */
#include "ktest_dmacmd.h"
/* IODMAController / IODMAEventSource: edu and dmaengine (issue #11 item 4) */
#include "ktest_dmactl.h"
/* user memory of the calling process; IOMemoryMap on vmap/ioremap (issue #9) */
#include "ktest_user.h"
#include "ktest_map.h"
/* issue #9 "Measure": IODMACommand vs the kernel's sg_table path */
#include "ktest_bench.h"

/* ------------------------------------------------------------------ */

struct ktest_case {
	const char *name;
	void (*fn)(void);
};

#define T(f) { #f + 2, f }
static const struct ktest_case tests[] = {
	/* tests/test_types.c */
	T(t_ioreturn_values_match_iokit),
	T(t_ioreturn_iokit_error_macros),
	T(t_ioreturn_string_names_every_code),
	T(t_ioreturn_unknown_code_has_formatted_fallback),
	T(t_ioreturn_fallback_buffers_rotate),
	T(t_ioreturn_description),
	T(t_ioreturn_format_is_reentrant_and_truncates),
	T(t_types_sizes),
	T(t_types_kernel_task_is_one_object),
	T(t_constants_direction),
	T(t_constants_descriptor_options),
	T(t_constants_buffer_options_are_separate_and_translate),
	T(t_constants_map_options_and_cache_modes),
	T(t_constants_purgeable_operations_preparation_ids),
	T(t_version_macros),
	/* tests/test_alloc.c */
	T(t_iomalloc_sizes_are_usable_and_aligned),
	T(t_iomalloc_zero_size_gives_unique_pointers),
	T(t_iomalloc_overflowing_sizes_return_null),
	T(t_iomalloc_free_null_is_a_noop),
	T(t_iomalloc_zero_variant_is_zeroed_even_on_reused_memory),
	T(t_aligned_alignment_rounds_up_to_a_power_of_two),
	T(t_aligned_zero_size_returns_null),
	T(t_aligned_alignment_beyond_32_bits_returns_null),
	T(t_aligned_overflowing_size_returns_null),
	T(t_aligned_overhead_is_at_most_alignment_plus_16),
	T(t_aligned_many_live_blocks_do_not_overlap),
#if !IOMEM__DEBUG
	T(t_aligned_release_foreign_pointer_is_reported_not_freed),
	T(t_aligned_release_second_free_sees_the_cleared_header),
	T(t_stats_release_build_tracks_nothing),
#endif
	T(t_pageable_page_aligned_zeroed_whole_pages),
	T(t_pageable_zero_size_is_one_page),
	T(t_pageable_alignment_above_page_size_returns_null),
	T(t_pageable_size_above_the_maximum_returns_null),
	T(t_ionew_typed_arrays),
	T(t_ionew_overflowing_counts_return_null),
	T(t_ionew_arguments_are_evaluated_once),
	T(t_iomalloc_concurrent_use_is_safe),
#if IOMEM__DEBUG
	/* tests/test_debug.c */
	T(t_debug_stats_count_live_bytes_and_blocks_per_family),
	T(t_debug_failed_allocations_are_counted),
	T(t_debug_iofree_with_wrong_size_is_reported_and_freed_with_the_real_size),
	T(t_debug_every_free_checks_the_size),
	T(t_debug_double_free_is_reported_and_frees_nothing),
	T(t_debug_pointer_never_allocated_is_reported),
	T(t_debug_wrong_family_is_reported_and_freed_through_its_own_family),
	T(t_debug_leak_report_lists_live_blocks),
	T(t_debug_leak_report_prints_without_a_callback),
	T(t_debug_bad_arguments),
	T(t_debug_internal_objects_are_tracked_by_name),
	T(t_debug_table_survives_growth_and_random_deletion),
	T(t_debug_concurrent_tracking_is_consistent),
#endif
	/* kernel-only */
	T(t_kernel_iomalloc_large_uses_vmalloc_fallback),
	T(t_kernel_iomallocpageable_is_vmalloc),
	T(t_kernel_iofree_under_spinlock),
	T(t_kernel_huge_sizes_return_null_without_warning),
	T(t_kernel_page_size),
	T(t_kernel_edu_device_and_dma_mode),
	T(t_kernel_edu_dma_engine),
	/* descriptors (tests/test_desc_*.c) against the kernel's translation */
	T(t_desc_with_address_kmalloc_segments),
	T(t_desc_with_address_vmalloc_segments),
	T(t_desc_buffer_memory),
	T(t_desc_buffer_impossible_requests_without_warning),
	T(t_desc_physical_and_device_memory),
	T(t_desc_sub_multi_interleaved),
	T(t_desc_bad_input),
	T(t_desc_thread_safe_lock_may_sleep),
	/* IODMACommand (ktest_dmacmd.h) */
	T(t_dmacmd_physical_segments),
	T(t_dmacmd_output_formats),
	T(t_dmacmd_bounce_without_device),
	T(t_dmacmd_linux_mapper_bad_input),
	T(t_dmacmd_edu_device_mapper),
	T(t_cursor_physical_segments),
	T(t_swiommu_dmacmd_iovas_translate),
	T(t_mappedio_and_cache_flush),
	KTEST_DMACTL_CASES
	KTEST_USER_CASES
	KTEST_MAP_CASES
	KTEST_BENCH_CASES
	T(t_kernel_no_leaks_no_warnings),
};

static int ktest_run_all(void)
{
	int i, pass = 0, fail = 0, skip = 0;

	pr_info("TAP version 13\n");
	pr_info("1..%zu\n", ARRAY_SIZE(tests));
	DIAG("iomem %s, IOMEM_DEBUG=%d, mode=%s, PAGE_SIZE=%lu",
	     IOMEM_VERSION_STRING, IOMEM__DEBUG, mode, PAGE_SIZE);
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		cur_failed = false;
		cur_skip = NULL;
		panic_count = 0;
		panic_checked = 0;
		tests[i].fn();
		if (panic_count != panic_checked) {
			DIAG("%d IOMEM_PANIC report(s) no check expected (last: \"%s\")",
			     panic_count - panic_checked, panic_msg);
			cur_failed = true;
		}
		if (i == 0 && !strcmp(inject, "fail")) {
			DIAG("injected failure (inject=fail)");
			cur_failed = true;
		}
		if (cur_failed) {
			fail++;
			pr_info("not ok %d - %s\n", i + 1, tests[i].name);
		} else if (cur_skip) {
			skip++;
			pr_info("ok %d - %s # SKIP %s\n", i + 1, tests[i].name, cur_skip);
		} else {
			pass++;
			pr_info("ok %d - %s\n", i + 1, tests[i].name);
		}
	}
	pr_info("KTEST-RESULT pass=%d fail=%d skip=%d\n", pass, fail, skip);
	return fail;
}

static int __init ktest_init(void)
{
	if (!strcmp(inject, "warn"))
		WARN(1, KBUILD_MODNAME ": injected warning (inject=warn)\n");
	ktest_edu_register(edu_mask_bits);
	ktest_run_all();
	/* stay loaded; the runner rmmod's us to exercise the teardown path */
	return 0;
}

static void __exit ktest_exit(void)
{
	ktest_edu_unregister();
	pr_info("unloaded\n");
}

module_init(ktest_init);
module_exit(ktest_exit);
MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("iomem test suite inside the kernel (TAP on the console)");
MODULE_AUTHOR("the iomem authors");
