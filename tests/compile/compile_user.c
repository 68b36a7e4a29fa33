/* SPDX-License-Identifier: MIT */
/*
 * compile_user.c - second translation unit of the compile.*.link tests.
 *
 * Includes the headers WITHOUT IOMEM_IMPLEMENTATION (after some libc
 * headers, as a real user file would) and is linked with compile_all.c,
 * which holds the implementation. A symbol defined in the public part of a
 * header would show up here as a duplicate definition at link time.
 */
#include <stdio.h>
#include <string.h>

#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

int iomem_compile_all_smoke(void);

int main(void)
{
	void *p = IOMalloc(64);
	const char *s = IOReturnString(kIOReturnSuccess);

	if (p == NULL) {
		fprintf(stderr, "IOMalloc(64) returned NULL\n");
		return 1;
	}
	IOFree(p, 64);
	if (s == NULL || strcmp(s, "kIOReturnSuccess") != 0) {
		fprintf(stderr, "IOReturnString(kIOReturnSuccess) = \"%s\"\n", s ? s : "(null)");
		return 1;
	}
	if (iomem_compile_all_smoke() != 2) {
		fprintf(stderr, "iomem_compile_all_smoke() failed\n");
		return 1;
	}
	printf("%s\n", s);
	return 0;
}
