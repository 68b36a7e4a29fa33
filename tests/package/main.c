/* SPDX-License-Identifier: MIT */
/*
 * main.c - the consumer program of the package tests (tests/package/).
 * Built against an installed iomem (find_package, pkg-config) and against
 * the source tree (FetchContent, add_subdirectory). Prints
 * "kIOReturnSuccess" and exits 0.
 */
#define IOMEM_IMPLEMENTATION
#include <iomem.h>

#include <stdio.h>

int main(void)
{
	void *p = IOMalloc(64);

	if (p == NULL) {
		fprintf(stderr, "consumer: IOMalloc(64) returned NULL\n");
		return 1;
	}
	IOFree(p, 64);
	printf("%s\n", IOReturnString(0));
	return 0;
}
