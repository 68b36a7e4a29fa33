/* SPDX-License-Identifier: MIT */
/*
 * compile_all.c - compile-matrix translation unit (tests/compile/).
 *
 * Pulls in every public header with the implementation enabled, then
 * includes each header a second time: the STB rule says the declarations
 * are include-guarded and the implementation has its own guard, so a
 * second include (e.g. through a user's own header) must be harmless.
 *
 * Built by CTest as C99/C11 -pedantic, freestanding (bare-metal backend)
 * and with two backends defined (which must fail), with both gcc and
 * clang, under -Wall -Wextra -Werror. It uses no libc of its own so the
 * same file serves the freestanding builds.
 */

#if defined(IOMEM_TEST_PUBLIC_FIRST)
/* The usual real-world order: the declarations arrive first through some
 * user header, and only later does this TU ask for the implementation. */
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"
#endif

#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

/* second time: must be a no-op */
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

int iomem_compile_all_smoke(void);

int iomem_compile_all_smoke(void)
{
	void *p = IOMalloc(64);
	const char *s = IOReturnString(kIOReturnSuccess);
	int ok = 0;

	if (p != 0) {
		IOFree(p, 64);
		ok++;
	}
	if (s != 0 && s[0] == 'k')
		ok++;
	return ok;
}
