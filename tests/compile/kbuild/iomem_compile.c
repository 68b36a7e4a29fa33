// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * iomem_compile.c - out-of-tree module that compiles every iomem header,
 * implementation included, with the kernel's own flags (-std=gnu11, -Wvla,
 * -Werror=strict-prototypes, no FP, ...). The Linux backend is chosen by
 * the headers from __KERNEL__. Each header is included twice (STB rule).
 *
 * Loading it allocates and frees 64 bytes and logs one line.
 */
#define IOMEM_IMPLEMENTATION
/* -DIOMEM_COMPILE_PROPRIETARY=1 (kbuild.module_proprietary): a module under
 * a GPL-incompatible licence must link without GPL-only exports; the user
 * task support (mmput/mmdrop) and the dmaengine controller are then off. */
#if defined(IOMEM_COMPILE_PROPRIETARY) && IOMEM_COMPILE_PROPRIETARY
#  define IOMEM_LINUX_GPL_SYMBOLS 0
#endif
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

/* second time: must be a no-op */
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

#include <linux/errno.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init iomem_compile_init(void)
{
	void *p = IOMalloc(64);

	if (!p)
		return -ENOMEM;
	IOFree(p, 64);
	pr_info("iomem_compile: IOMalloc/IOFree ok, %s\n",
		IOReturnString(kIOReturnSuccess));
	return 0;
}

static void __exit iomem_compile_exit(void)
{
}

module_init(iomem_compile_init);
module_exit(iomem_compile_exit);

#if defined(IOMEM_COMPILE_PROPRIETARY) && IOMEM_COMPILE_PROPRIETARY
MODULE_LICENSE("Proprietary");
#else
MODULE_LICENSE("Dual MIT/GPL");
#endif
MODULE_DESCRIPTION("iomem compile test: every header built as a kernel module");
MODULE_AUTHOR("the iomem authors");
