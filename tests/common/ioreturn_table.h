/* SPDX-License-Identifier: MIT */
/*
 * tests/common/ioreturn_table.h - every IOReturn code IOKit defines, with
 * the value from the reference tables (iokit-semantics §0.1), written out
 * independently of iomem.h's X-macro. Shared by the host suite
 * (tests/test_types.c) and the kernel module (tests/kernel/module/), so the
 * expectation exists once. Include after iomem.h.
 */
#ifndef IOMEM_TEST_IORETURN_TABLE_H
#define IOMEM_TEST_IORETURN_TABLE_H

static const struct iomem_test_ioreturn { IOReturn code; uint32_t hex; const char *name; }
iomem_test_ioreturn_table[] = {
	{ kIOReturnSuccess,          0x00000000u, "kIOReturnSuccess" },
	{ kIOReturnError,            0xE00002BCu, "kIOReturnError" },
	{ kIOReturnNoMemory,         0xE00002BDu, "kIOReturnNoMemory" },
	{ kIOReturnNoResources,      0xE00002BEu, "kIOReturnNoResources" },
	{ kIOReturnIPCError,         0xE00002BFu, "kIOReturnIPCError" },
	{ kIOReturnNoDevice,         0xE00002C0u, "kIOReturnNoDevice" },
	{ kIOReturnNotPrivileged,    0xE00002C1u, "kIOReturnNotPrivileged" },
	{ kIOReturnBadArgument,      0xE00002C2u, "kIOReturnBadArgument" },
	{ kIOReturnLockedRead,       0xE00002C3u, "kIOReturnLockedRead" },
	{ kIOReturnLockedWrite,      0xE00002C4u, "kIOReturnLockedWrite" },
	{ kIOReturnExclusiveAccess,  0xE00002C5u, "kIOReturnExclusiveAccess" },
	{ kIOReturnBadMessageID,     0xE00002C6u, "kIOReturnBadMessageID" },
	{ kIOReturnUnsupported,      0xE00002C7u, "kIOReturnUnsupported" },
	{ kIOReturnVMError,          0xE00002C8u, "kIOReturnVMError" },
	{ kIOReturnInternalError,    0xE00002C9u, "kIOReturnInternalError" },
	{ kIOReturnIOError,          0xE00002CAu, "kIOReturnIOError" },
	{ kIOReturnCannotLock,       0xE00002CCu, "kIOReturnCannotLock" },
	{ kIOReturnNotOpen,          0xE00002CDu, "kIOReturnNotOpen" },
	{ kIOReturnNotReadable,      0xE00002CEu, "kIOReturnNotReadable" },
	{ kIOReturnNotWritable,      0xE00002CFu, "kIOReturnNotWritable" },
	{ kIOReturnNotAligned,       0xE00002D0u, "kIOReturnNotAligned" },
	{ kIOReturnBadMedia,         0xE00002D1u, "kIOReturnBadMedia" },
	{ kIOReturnStillOpen,        0xE00002D2u, "kIOReturnStillOpen" },
	{ kIOReturnRLDError,         0xE00002D3u, "kIOReturnRLDError" },
	{ kIOReturnDMAError,         0xE00002D4u, "kIOReturnDMAError" },
	{ kIOReturnBusy,             0xE00002D5u, "kIOReturnBusy" },
	{ kIOReturnTimeout,          0xE00002D6u, "kIOReturnTimeout" },
	{ kIOReturnOffline,          0xE00002D7u, "kIOReturnOffline" },
	{ kIOReturnNotReady,         0xE00002D8u, "kIOReturnNotReady" },
	{ kIOReturnNotAttached,      0xE00002D9u, "kIOReturnNotAttached" },
	{ kIOReturnNoChannels,       0xE00002DAu, "kIOReturnNoChannels" },
	{ kIOReturnNoSpace,          0xE00002DBu, "kIOReturnNoSpace" },
	{ kIOReturnPortExists,       0xE00002DDu, "kIOReturnPortExists" },
	{ kIOReturnCannotWire,       0xE00002DEu, "kIOReturnCannotWire" },
	{ kIOReturnNoInterrupt,      0xE00002DFu, "kIOReturnNoInterrupt" },
	{ kIOReturnNoFrames,         0xE00002E0u, "kIOReturnNoFrames" },
	{ kIOReturnMessageTooLarge,  0xE00002E1u, "kIOReturnMessageTooLarge" },
	{ kIOReturnNotPermitted,     0xE00002E2u, "kIOReturnNotPermitted" },
	{ kIOReturnNoPower,          0xE00002E3u, "kIOReturnNoPower" },
	{ kIOReturnNoMedia,          0xE00002E4u, "kIOReturnNoMedia" },
	{ kIOReturnUnformattedMedia, 0xE00002E5u, "kIOReturnUnformattedMedia" },
	{ kIOReturnUnsupportedMode,  0xE00002E6u, "kIOReturnUnsupportedMode" },
	{ kIOReturnUnderrun,         0xE00002E7u, "kIOReturnUnderrun" },
	{ kIOReturnOverrun,          0xE00002E8u, "kIOReturnOverrun" },
	{ kIOReturnDeviceError,      0xE00002E9u, "kIOReturnDeviceError" },
	{ kIOReturnNoCompletion,     0xE00002EAu, "kIOReturnNoCompletion" },
	{ kIOReturnAborted,          0xE00002EBu, "kIOReturnAborted" },
	{ kIOReturnNoBandwidth,      0xE00002ECu, "kIOReturnNoBandwidth" },
	{ kIOReturnNotResponding,    0xE00002EDu, "kIOReturnNotResponding" },
	{ kIOReturnIsoTooOld,        0xE00002EEu, "kIOReturnIsoTooOld" },
	{ kIOReturnIsoTooNew,        0xE00002EFu, "kIOReturnIsoTooNew" },
	{ kIOReturnNotFound,         0xE00002F0u, "kIOReturnNotFound" },
	{ kIOReturnInvalid,          0xE0000001u, "kIOReturnInvalid" },
};

#define IOMEM_TEST_IORETURN_COUNT \
	(sizeof iomem_test_ioreturn_table / sizeof iomem_test_ioreturn_table[0])

#endif
