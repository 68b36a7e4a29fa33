/* SPDX-License-Identifier: MIT */
/*
 * tests/stress/stress_bmheap.c - the bare-metal backend's heap under TSan:
 * the IOMalloc family over iomem_heap.h from many threads, serialised by
 * iomem_baremetal_init's lock hooks (a pthread mutex here), each block
 * filled with its owner's byte and checked before it is freed; the heap's
 * invariants hold at the end and nothing is left allocated.
 */
#include "stress_util.h"
#define IOMEM_BACKEND_BAREMETAL 1
#define IOMEM_NO_WEAK_LIBC 1
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#define ARENA_BYTES (8u << 20)
#define ITERS 20000
#define HOLD 8

static uint64_t arena[ARENA_BYTES / 8];
static pthread_mutex_t hook = PTHREAD_MUTEX_INITIALIZER;
static void hlock(void *u) { (void)u; pthread_mutex_lock(&hook); }
static void hunlock(void *u) { (void)u; pthread_mutex_unlock(&hook); }

static void *worker(void *arg)
{
	unsigned char id = (unsigned char)((uintptr_t)arg + 1);
	uint64_t seed = id * 0x9e3779b97f4a7c15ull;
	unsigned char *p[HOLD] = { 0 };
	size_t n[HOLD] = { 0 };
	int fam[HOLD] = { 0 };
	unsigned long ops = 0;
	for (int it = 0; it < ITERS && stress_running(); it++, ops++) {
		uint64_t r = stress_rnd(&seed);
		unsigned i = (unsigned)(r % HOLD);
		if (p[i] != NULL) {
			for (size_t k = 0; k < n[i]; k++)
				STRESS_CHECK(p[i][k] == id, "thread %u: block %p byte %zu overwritten", id, (void *)p[i], k);
			if (fam[i])
				IOFreeAligned(p[i], n[i]);
			else
				IOFree(p[i], n[i]);
			p[i] = NULL;
			continue;
		}
		n[i] = 1 + (r >> 8) % 2000;
		fam[i] = (int)((r >> 20) & 1);
		p[i] = fam[i] ? (unsigned char *)IOMallocAligned(n[i], (vm_offset_t)1 << ((r >> 24) % 9))
		              : (unsigned char *)IOMalloc(n[i]);
		STRESS_CHECK(p[i] != NULL, "allocation of %zu", n[i]);
		memset(p[i], id, n[i]);
	}
	for (unsigned i = 0; i < HOLD; i++)
		if (p[i] != NULL) {
			if (fam[i])
				IOFreeAligned(p[i], n[i]);
			else
				IOFree(p[i], n[i]);
		}
	return (void *)ops;
}

int main(void)
{
	stress_begin("bmheap");
	STRESS_CHECK(iomem_baremetal_init(&(iomem_baremetal_desc){
		.heap = { { arena, ARENA_BYTES } }, .lock = hlock, .unlock = hunlock }) == kIOReturnSuccess, "init");
	stress_run("bmheap", worker);
	STRESS_CHECK(iomem_baremetal_heap_check(NULL) == kIOReturnSuccess, "heap invariants");
	STRESS_CHECK(iomem_leak_report(NULL, NULL) == 0, "leaks (listed above)");
	return stress_end("bmheap");
}
