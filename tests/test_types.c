/* SPDX-License-Identifier: MIT */
/* tests/test_types.c - IOKit types, constants, IOReturn codes and strings,
 * and the default IOMEM_PANIC. Values are checked against the reference
 * tables, written out here independently of the header's X-macro. */
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tests/common/ioreturn_table.h"

Test(ioreturn, values_match_iokit)
{
	for (size_t i = 0; i < IOMEM_TEST_IORETURN_COUNT; i++)
		cr_expect_eq((uint32_t)iomem_test_ioreturn_table[i].code, iomem_test_ioreturn_table[i].hex,
		             "%s is 0x%08x, IOKit says 0x%08x", iomem_test_ioreturn_table[i].name,
		             (uint32_t)iomem_test_ioreturn_table[i].code, iomem_test_ioreturn_table[i].hex);
	/* the signed decimal values the reference lists */
	cr_expect_eq(kIOReturnError, -536870212);
	cr_expect_eq(kIOReturnOverrun, -536870168);
	cr_expect_eq(kIOReturnInvalid, -536870911);
}

Test(ioreturn, iokit_error_macros)
{
	cr_expect_eq((uint32_t)sys_iokit, 0xE0000000u);
	cr_expect_eq(sub_iokit_common, 0);
	cr_expect_eq(iokit_common_err(0x2bc), kIOReturnError);
	cr_expect_eq(iokit_common_err(0x2e8), kIOReturnOverrun);
}

Test(ioreturn, string_names_every_code)
{
	for (size_t i = 0; i < IOMEM_TEST_IORETURN_COUNT; i++)
		cr_expect_str_eq(IOReturnString(iomem_test_ioreturn_table[i].code), iomem_test_ioreturn_table[i].name);
}

Test(ioreturn, unknown_code_has_formatted_fallback)
{
	const char *s = IOReturnString((IOReturn)0xE00002CBu);   /* unused slot */
	cr_assert_not_null(s);
	cr_expect_str_eq(s, "IOReturn 0xe00002cb");
	cr_expect_str_eq(IOReturnString(1), "IOReturn 0x1");
	cr_expect_str_eq(IOReturnString((IOReturn)0xE00002DCu), "IOReturn 0xe00002dc");
	cr_expect_str_eq(iomem_ioreturn_description((IOReturn)0xE00002CBu), "unknown IOReturn");
}

Test(ioreturn, fallback_buffers_rotate)
{
	const char *s[8];
	char want[32];
	for (int i = 0; i < 8; i++)
		s[i] = IOReturnString(1000 + i);
	for (int i = 0; i < 8; i++) {   /* the last 8 stay intact */
		snprintf(want, sizeof want, "IOReturn 0x%x", 1000 + i);
		cr_expect_str_eq(s[i], want);
	}
}

Test(ioreturn, description)
{
	cr_expect_str_eq(iomem_ioreturn_description(kIOReturnNoMemory), "can't allocate memory");
	cr_expect_str_eq(iomem_ioreturn_description(kIOReturnSuccess), "success");
	for (size_t i = 0; i < IOMEM_TEST_IORETURN_COUNT; i++)
		cr_expect(strlen(iomem_ioreturn_description(iomem_test_ioreturn_table[i].code)) > 0);
}

Test(ioreturn, format_is_reentrant_and_truncates)
{
	char buf[64];
	cr_expect_eq(iomem_ioreturn_format(kIOReturnBusy, buf, sizeof buf), strlen("kIOReturnBusy"));
	cr_expect_str_eq(buf, "kIOReturnBusy");
	cr_expect_eq(iomem_ioreturn_format(kIOReturnBusy, buf, 5), strlen("kIOReturnBusy"));
	cr_expect_str_eq(buf, "kIOR");
	cr_expect_eq(iomem_ioreturn_format((IOReturn)0xE00002CBu, buf, sizeof buf), strlen("IOReturn 0xe00002cb"));
	cr_expect_str_eq(buf, "IOReturn 0xe00002cb");
	/* bad input: no buffer */
	cr_expect_eq(iomem_ioreturn_format(kIOReturnBusy, NULL, 10), 0);
	buf[0] = 'x';
	cr_expect_eq(iomem_ioreturn_format(kIOReturnBusy, buf, 0), 0);
	cr_expect_eq(buf[0], 'x');
}

Test(types, sizes)
{
	cr_expect_eq(sizeof(IOReturn), 4);
	cr_expect_eq(sizeof(IOOptionBits), 4);
	cr_expect_eq(sizeof(IODirection), 4);
	cr_expect_eq(sizeof(IOByteCount), 8);
	cr_expect_eq(sizeof(IOPhysicalAddress), 8);
	cr_expect_eq(sizeof(IOPhysicalAddress32), 4);
	cr_expect_eq(sizeof(IOPhysicalAddress64), 8);
	cr_expect_eq(sizeof(mach_vm_address_t), 8);
	cr_expect_eq(sizeof(mach_vm_size_t), 8);
	cr_expect_eq(sizeof(addr64_t), 8);
	cr_expect_eq(sizeof(ppnum_t), 4);
	cr_expect_eq(sizeof(IORangeScalar), 8);
	cr_expect_eq(sizeof(IOVirtualAddress), sizeof(void *));
	cr_expect_eq(sizeof(vm_size_t), sizeof(void *));
	cr_expect_eq(sizeof(UInt8) + sizeof(UInt16) + sizeof(UInt32) + sizeof(UInt64), 15);
	cr_expect((IOReturn)-1 < 0, "IOReturn is signed (kern_return_t)");
	cr_expect(sizeof(IOAddressRange) == 16 && sizeof(IOPhysicalRange) == 16);
}

Test(types, kernel_task_is_one_object)
{
	task_t t = kernel_task;
	cr_expect_not_null(t);
	cr_expect_eq(t, kernel_task);
	cr_expect_null(kIOMapperSystem);
}

Test(constants, direction)
{
	cr_expect_eq(kIODirectionNone, 0);
	cr_expect_eq(kIODirectionIn, 1);
	cr_expect_eq(kIODirectionOut, 2);
	cr_expect_eq(kIODirectionOutIn, 3);
	cr_expect_eq(kIODirectionInOut, 3);
	cr_expect_eq(kIODirectionPrepareToPhys32, 0x4);
	cr_expect_eq(kIODirectionPrepareNoFault, 0x8);
	cr_expect_eq(kIODirectionPrepareReserved1, 0x10);
	cr_expect_eq(kIODirectionPrepareNonCoherent, 0x20);
	cr_expect_eq(kIODirectionPrepareAvoidThrottling, 0x100);
	cr_expect_eq(kIODirectionCompleteWithError, 0x40);
	cr_expect_eq(kIODirectionCompleteWithDataValid, 0x80);
}

Test(constants, descriptor_options)
{
	cr_expect_eq(kIOMemoryDirectionMask, 0x7);
	cr_expect_eq(kIOMemoryAutoPrepare, 0x8);
	cr_expect_eq(kIOMemoryTypeVirtual, 0x10);
	cr_expect_eq(kIOMemoryTypePhysical, 0x20);
	cr_expect_eq(kIOMemoryTypeUPL, 0x30);
	cr_expect_eq(kIOMemoryTypePersistentMD, 0x40);
	cr_expect_eq(kIOMemoryTypeUIO, 0x50);
	if (sizeof(void *) == 8) {
		cr_expect_eq(kIOMemoryTypeVirtual64, kIOMemoryTypeVirtual);
		cr_expect_eq(kIOMemoryTypePhysical64, kIOMemoryTypePhysical);
	}
	cr_expect_eq(kIOMemoryTypeMask, 0xF0);
	cr_expect_eq(kIOMemoryAsReference, 0x100);
	cr_expect_eq(kIOMemoryBufferPageable, 0x400);
	cr_expect_eq(kIOMemoryMapperNone, 0x800);
	cr_expect_eq(kIOMemoryHostOnly, 0x1000);
	cr_expect_eq(kIOMemoryRedirected, 0x4000);
	cr_expect_eq(kIOMemoryPreparedReadOnly, 0x8000);
	cr_expect_eq(kIOMemoryPersistent, 0x10000);
	cr_expect_eq(kIOMemoryMapCopyOnWrite, 0x20000);
	cr_expect_eq(kIOMemoryRemote, 0x40000);
	cr_expect_eq(kIOMemoryThreadSafe, 0x100000);
	cr_expect_eq(kIOMemoryClearEncrypt, 0x200000);
	cr_expect_eq(kIOMemoryBufferPurgeable, 0x400000);
	cr_expect_eq(kIOMemoryUseReserve, 0x800000);
	cr_expect_eq(kIOMemoryBufferCacheMask, 0x70000000);
	cr_expect_eq(kIOMemoryBufferCacheShift, 28);
}

Test(constants, buffer_options_are_separate_and_translate)
{
	cr_expect_eq(kIOMemoryPhysicallyContiguous, 0x10);
	cr_expect_eq(kIOMemoryPageable, 0x20);
	cr_expect_eq(kIOMemoryPurgeable, 0x40);
	cr_expect_eq(kIOMemoryHostPhysicallyContiguous, 0x80);
	cr_expect_eq(kIOMemorySharingTypeMask, 0xF0000);
	cr_expect_eq(kIOMemoryUnshared, 0);
	cr_expect_eq(kIOMemoryKernelUserShared, 0x10000);
	cr_expect_eq(kIOBufferDescriptorMemoryFlags,
	             0x7 | 0x8 | 0x100000 | 0x200000 | 0x800 | 0x800000);
	/* the overlapping bits (contiguous = TypeVirtual, pageable = TypePhysical,
	 * KernelUserShared = Persistent) must not leak into descriptor options */
	IOOptionBits bmd = kIOMemoryPhysicallyContiguous | kIOMemoryPageable | kIOMemoryPurgeable |
	                   kIOMemoryKernelUserShared | kIODirectionOut | kIOMemoryThreadSafe |
	                   kIOMemoryMapperNone | kIOMapInhibitCache;
	cr_expect_eq(iomem_buffer_options_to_memory(bmd),
	             (IOOptionBits)(kIODirectionOut | kIOMemoryThreadSafe | kIOMemoryMapperNone));
	cr_expect_eq(iomem_buffer_options_to_memory(0), 0);
}

Test(constants, map_options_and_cache_modes)
{
	static const unsigned modes[] = { kIODefaultCache, kIOInhibitCache, kIOWriteThruCache,
		kIOCopybackCache, kIOWriteCombineCache, kIOCopybackInnerCache, kIOPostedWrite,
		kIORealTimeCache, kIOPostedReordered, kIOPostedCombinedReordered };
	static const unsigned map_modes[] = { kIOMapDefaultCache, kIOMapInhibitCache,
		kIOMapWriteThruCache, kIOMapCopybackCache, kIOMapWriteCombineCache,
		kIOMapCopybackInnerCache, kIOMapPostedWrite, kIOMapRealTimeCache,
		kIOMapPostedReordered, kIOMapPostedCombinedReordered };
	for (unsigned i = 0; i < 10; i++) {
		cr_expect_eq(modes[i], i);
		cr_expect_eq(map_modes[i], i << 8);
		cr_expect_eq((map_modes[i] & kIOMapCacheMask) >> kIOMapCacheShift, i);
	}
	cr_expect_eq(kIOMapAnywhere, 0x1);
	cr_expect_eq(kIOMapCacheMask, 0xF00);
	cr_expect_eq(kIOMapCacheShift, 8);
	cr_expect_eq(kIOMapUserOptionsMask, 0xFFF);
	cr_expect_eq(kIOMapReadOnly, 0x1000);
	cr_expect_eq(kIOMapStatic, 0x01000000);
	cr_expect_eq(kIOMapReference, 0x02000000);
	cr_expect_eq(kIOMapUnique, 0x04000000);
	cr_expect_eq(kIOMap64Bit, 0x08000000);
	cr_expect_eq(kIOMapPrefault, 0x10000000);
	cr_expect_eq(kIOMapOverwrite, 0x20000000);
	cr_expect_eq(kIOMapGuardedMask, 0xC0000000u);
	cr_expect_eq(kIOMapGuardedSmall, 0x40000000u);
	cr_expect_eq(kIOMapGuardedLarge, 0x80000000u);
}

Test(constants, purgeable_operations_preparation_ids)
{
	cr_expect_eq(kIOMemoryPurgeableKeepCurrent, 1);
	cr_expect_eq(kIOMemoryPurgeableNonVolatile, 2);
	cr_expect_eq(kIOMemoryPurgeableVolatile, 3);
	cr_expect_eq(kIOMemoryPurgeableEmpty, 4);
	cr_expect_eq(kIOMemoryIncoherentIOFlush, 1);
	cr_expect_eq(kIOMemoryIncoherentIOStore, 2);
	cr_expect_eq(kIOMemoryClearEncrypted, 50);
	cr_expect_eq(kIOMemorySetEncrypted, 51);
	cr_expect_eq(kIOPreparationIDUnprepared, 0);
	cr_expect_eq(kIOPreparationIDUnsupported, 1);
	cr_expect_eq(kIOPreparationIDAlwaysPrepared, 2);
}

Test(version, macros)
{
	char want[32];
	snprintf(want, sizeof want, "%d.%d.%d", IOMEM_VERSION_MAJOR, IOMEM_VERSION_MINOR,
	         IOMEM_VERSION_PATCH);
	cr_expect_str_eq(IOMEM_VERSION_STRING, want);
}

/* This file keeps the default IOMEM_PANIC: on POSIX a contract violation
 * prints and aborts. A foreign pointer to IOFreeAligned is one in both
 * modes (debug: never allocated; release: header check). */
Test(panic, default_hook_aborts, .signal = SIGABRT)
{
	static uint64_t not_ours[8];
	IOFreeAligned(&not_ours[4], 16);
}

/* The reports' formatter (private, reachable from this implementation TU):
 * decimal and hex without 64-bit division, against printf. */
Test(format, numbers_match_printf)
{
	static const unsigned long long v[] = { 0, 1, 9, 10, 99, 100, 12345, 4294967295ull,
		4294967296ull, 10000000000000000000ull, 18446744073709551615ull, 0xabcdefull };
	char got[64], want[64];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		iomem__format(got, sizeof got, "%u %x", v[i], v[i]);
		snprintf(want, sizeof want, "%llu 0x%llx", v[i], v[i]);
		cr_expect_str_eq(got, want);
	}
	cr_expect_eq(iomem__format(got, 4, "%s", "abcdef"), 6);
	cr_expect_str_eq(got, "abc");
	iomem__format(got, sizeof got, "%p %s %%", (void *)0x10, (const char *)NULL);
	cr_expect_str_eq(got, "0x10 (null) %");
}
