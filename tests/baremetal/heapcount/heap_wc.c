/* SPDX-License-Identifier: MIT */
/*
 * heap_wc.c - the firmware tools/bm-heapcount traces: the same adversarial
 * sequence as bench/bench_bmheap.c's x86-64 worst-case count (a heap
 * fragmented with free blocks in most power-of-two lists, then random
 * allocate / aligned allocate / free with frees in runs so that both
 * neighbours are free), scaled to a 512 KiB arena. The heap runs its
 * default power-of-two policy; built with -DWC_EXACT_FIT=1, the exact-fit
 * one (tools/bm-heapcount --exact). Each measured call goes through a noinline
 * wrapper (wc_alloc, wc_alloc_aligned, wc_free) called from wc_run, so a
 * one-instruction-per-block QEMU trace can count each call from the
 * wrapper's entry to its return. It also reads the DWT cycle counter, to
 * show whether the emulator models it.
 */
#include "bm.h"
#define IOMEM_HEAP_API static __attribute__((unused))
#define IOMEM__HEAP_IMPLEMENTATION 1
#include "backends/iomem_heap.h"

#define WC_SLOTS 512u
#define WC_OPS 3000u

static uint64_t arena[512 * 1024 / 8];
static iomem__heap h;
static void *slot[WC_SLOTS];
static void *keep[2048];

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

__attribute__((noinline)) void *wc_alloc(iomem__heap *hp, size_t n)
{
	return iomem__heap_alloc(hp, n);
}
__attribute__((noinline)) void *wc_alloc_aligned(iomem__heap *hp, size_t n, size_t a)
{
	return iomem__heap_alloc_aligned(hp, n, a);
}
__attribute__((noinline)) bool wc_free(iomem__heap *hp, void *p)
{
	return iomem__heap_free(hp, p);
}

__attribute__((noinline)) void wc_run(uint64_t *s)
{
	unsigned op;
	for (op = 0; op < WC_OPS; op++) {
		uint64_t r = xorshift64(s);
		unsigned k = (unsigned)(r % WC_SLOTS);
		if (slot[k] != NULL) {
			wc_free(&h, slot[k]);
			slot[k] = NULL;
			if (k + 1 < WC_SLOTS && slot[k + 1] != NULL) {
				wc_free(&h, slot[k + 1]);
				slot[k + 1] = NULL;
			}
		} else {
			size_t sz = (size_t)(r >> 20) % ((r >> 60) & 1 ? 8192 : 512);
			if (((r >> 56) & 3) == 0)
				slot[k] = wc_alloc_aligned(&h, sz, (size_t)16 << ((r >> 40) % 9));
			else
				slot[k] = wc_alloc(&h, sz);
		}
	}
}

int main(void)
{
	uint64_t s = 0x0123456789abcdefull;
	unsigned r, i, n;
	bool ok;
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
	volatile uint32_t *demcr = (volatile uint32_t *)0xE000EDFCu, *dwt_ctrl = (volatile uint32_t *)0xE0001000u,
	                  *cyccnt = (volatile uint32_t *)0xE0001004u;
	uint32_t c0, c1;
	*demcr |= 1u << 24;             /* TRCENA */
	*cyccnt = 0;
	*dwt_ctrl |= 1u;                /* CYCCNTENA */
	c0 = *cyccnt;
	for (i = 0; i < 1000; i++)
		__asm__ volatile("nop");
	c1 = *cyccnt;
	bm_puts("# DWT CYCCNT across 1000 nops: ");
	bm_put_udec(c1 - c0);
	bm_puts(c1 == c0 ? " (the emulator does not model the cycle counter)\n" : "\n");
#endif
	iomem__heap_init(&h);
#if defined(WC_EXACT_FIT) && WC_EXACT_FIT
	h.exact_fit = true;
	bm_puts("# heap policy: exact fit\n");
#else
	bm_puts("# heap policy: power of two\n");
#endif
	ok = iomem__heap_add_arena(&h, arena, sizeof arena);
	for (r = 0; r < 3; r++) {      /* holes of every size class */
		n = 0;
		for (i = 0; i < 2048; i++) {
			size_t sz = (size_t)8 << (xorshift64(&s) % 10);
			sz += xorshift64(&s) % sz;
			keep[n] = iomem__heap_alloc(&h, sz);
			if (keep[n] != NULL)
				n++;
		}
		for (i = 0; i < n; i += 2)
			iomem__heap_free(&h, keep[i]);
	}
	wc_run(&s);
	BM_OK(ok && iomem__heap_check(&h, NULL), "heap worst-case sequence ran; invariants hold");
	return bm_tap_done();
}
