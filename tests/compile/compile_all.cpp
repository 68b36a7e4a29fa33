// SPDX-License-Identifier: MIT
//
// compile_all.cpp - the compile_all.c check from C++: every header, with
// the implementation, included twice, in a C++ translation unit.

#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

// second time: must be a no-op
#include "iomem.h"
#include "iomem_dma.h"
#include "iomem_map.h"

int iomem_compile_all_cxx_smoke();

int iomem_compile_all_cxx_smoke()
{
	void *p = IOMalloc(64);
	const char *s = IOReturnString(kIOReturnSuccess);
	int ok = 0;

	if (p != nullptr) {
		IOFree(p, 64);
		ok++;
	}
	if (s != nullptr && s[0] == 'k')
		ok++;
	return ok;
}
