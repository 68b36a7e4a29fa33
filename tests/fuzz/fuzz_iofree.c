/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_iofree.c - the IOFree family's debug checks (IOMEM_DEBUG)
 * against a model of the live blocks.
 *
 * The input allocates through every family (IOMalloc, IOMallocZero,
 * IOMallocAligned, IOMallocPageable(Zero), IONew) and frees through any
 * family with any size: the right one, a wrong size, the wrong family, a
 * block already freed, an interior pointer, a pointer iomem never gave out.
 * The model predicts each report of the DEBUG LAYER contract:
 *   - right family and size: no report, block freed;
 *   - wrong size: "size does not match", freed with the recorded size;
 *   - wrong family: "own family", freed through its own family;
 *   - a pointer that is not live: "double free" or "never allocated",
 *     nothing freed (an address the allocator reused since is live again,
 *     and the model knows it);
 * and iomem_stats() per family (live blocks and bytes) and the leak report
 * must match it after every operation. Zero blocks are checked zeroed; each
 * block carries its own byte, checked when it is freed.
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#define MAXLIVE 128

typedef struct blk {
	unsigned char *p;
	vm_size_t size;
	int family;          /* iomem_alloc_family */
	unsigned char fill;
} blk;

static blk live[MAXLIVE];
static unsigned nlive;
static unsigned char *gone[16];     /* freed blocks, for double frees */
static unsigned ngone;

FZ_MODEL static int find_live(const void *p)
{
	for (unsigned i = 0; i < nlive; i++)
		if (live[i].p == p)
			return (int)i;
	return -1;
}

/* Every 7th byte of @b still holds its fill (a sample: cheap, and an
 * overlapping block or a stray write covers more than 7 bytes). */
FZ_MODEL static void check_fill(const blk *b, unsigned step)
{
	for (vm_size_t k = 0; k < b->size; k += 7)
		FZ_CHECK(b->p[k] == b->fill, "step %u: block %p byte %zu overwritten", step, (void *)b->p, (size_t)k);
}

static void do_free(int fam, void *p, vm_size_t size)
{
	switch (fam) {
	case IOMEM_ALLOC_MALLOC:  IOFree(p, size); break;
	case IOMEM_ALLOC_ALIGNED: IOFreeAligned(p, size); break;
	default:                  IOFreePageable(p, size); break;
	}
}

static vm_size_t f_size(fz *f)
{
	uint8_t b = fz_u8(f);
	switch (b & 3) {
	case 0:  return b >> 2;
	case 1:  return fz_u8(f);
	case 2:  return fz_u16(f) % 20000;
	default: return (b & 4) ? ~(vm_size_t)0 - fz_u8(f) : (vm_size_t)1 << (16 + fz_u8(f) % 4);
	}
}

static void count_leak(void *ctx, const void *address, vm_size_t size, iomem_alloc_family family, const char *call)
{
	(void)address; (void)size; (void)family; (void)call;
	++*(unsigned *)ctx;
}

static void check_stats(unsigned step)
{
	iomem_alloc_stats st;
	uint64_t blocks[IOMEM_ALLOC_FAMILY_COUNT] = { 0 }, bytes[IOMEM_ALLOC_FAMILY_COUNT] = { 0 };
	FZ_CHECK(iomem_stats(&st) == kIOReturnSuccess, "iomem_stats");
	for (unsigned i = 0; i < nlive; i++) {
		blocks[live[i].family]++;
		bytes[live[i].family] += live[i].size;
	}
	for (int fam = 0; fam < IOMEM_ALLOC_INTERNAL; fam++)
		FZ_CHECK(st.family[fam].live_blocks == blocks[fam] && st.family[fam].live_bytes == bytes[fam],
		         "step %u: family %s: %llu blocks / %llu bytes, model %llu / %llu", step,
		         iomem_alloc_family_name((iomem_alloc_family)fam), (unsigned long long)st.family[fam].live_blocks,
		         (unsigned long long)st.family[fam].live_bytes, (unsigned long long)blocks[fam],
		         (unsigned long long)bytes[fam]);
	unsigned listed = 0;
	FZ_CHECK(iomem_leak_report(count_leak, &listed) == nlive && listed == nlive, "step %u: leak report", step);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz f = { data, size };
	unsigned step = 0;
	nlive = 0;
	ngone = 0;
	fz_panic_count = 0;
	while (fz_more(&f) && step < 200) {
		uint8_t op = fz_u8(&f);
		step++;
		if (op % 3 != 0 && nlive < MAXLIVE) {            /* allocate */
			vm_size_t sz = f_size(&f);
			int fam = IOMEM_ALLOC_MALLOC;
			bool zero = false, ok_size = sz <= IOMEM_ALLOC_SIZE_MAX;
			void *p;
			switch (fz_u8(&f) % 6) {
			case 0: p = IOMalloc(sz); break;
			case 1: p = IOMallocZero(sz); zero = true; break;
			case 2: {
				vm_offset_t a = (vm_offset_t)1 << (fz_u8(&f) % 14);
				fam = IOMEM_ALLOC_ALIGNED;
				p = IOMallocAligned(sz, a);
				ok_size = iomem_malloc_aligned_footprint(sz, a) != 0;
				if (p != NULL)
					FZ_CHECK(((uintptr_t)p & (a - 1)) == 0, "IOMallocAligned(%zu, %zu) misaligned", (size_t)sz, (size_t)a);
				break;
			}
			case 3:
			case 4:
				fam = IOMEM_ALLOC_PAGEABLE;
				zero = true;
				p = (op & 8) ? IOMallocPageableZero(sz, 0) : IOMallocPageable(sz, 0);
				ok_size = sz <= IOMEM_PAGEABLE_MAX;
				break;
			default: {
				vm_size_t n = fz_u8(&f);
				p = IONewZero(uint32_t, n);
				sz = iomem_array_size(sizeof(uint32_t), n);
				ok_size = true;
				zero = true;
				break;
			}
			}
			FZ_NO_REPORTS();
			if (p == NULL) {
				/* only impossible sizes (and a host out of memory for
				 * the huge ones) fail */
				FZ_CHECK(!ok_size || sz > ((vm_size_t)1 << 28), "step %u: allocation of %zu failed", step, (size_t)sz);
				continue;
			}
			FZ_CHECK(ok_size, "step %u: allocation of %zu succeeded", step, (size_t)sz);
			if (sz > ((vm_size_t)1 << 16)) {             /* first and last bytes only */
				if (zero)
					FZ_CHECK(((unsigned char *)p)[0] == 0 && ((unsigned char *)p)[sz - 1] == 0, "zeroed");
				((unsigned char *)p)[sz - 1] = 1;             /* do not keep big blocks */
				do_free(fam, p, sz);
				FZ_NO_REPORTS();
				continue;
			}
			if (zero && sz <= ((vm_size_t)1 << 16))
				for (vm_size_t k = 0; k < sz; k += 61)
					FZ_CHECK(((unsigned char *)p)[k] == 0, "step %u: zeroed block byte %zu", step, (size_t)k);
			live[nlive].p = (unsigned char *)p;
			live[nlive].size = sz;
			live[nlive].family = fam;
			live[nlive].fill = (unsigned char)step;
			memset(p, (int)(unsigned char)step, sz);
			FZ_CHECK(find_live(p) < 0, "step %u: %p given out twice", step, p);
			nlive++;
		} else {                                          /* free something */
			uint8_t how = fz_u8(&f);
			int fam = (int)(fz_u8(&f) % 3);
			unsigned char *p = NULL;
			vm_size_t sz = 0;
			int i;
			static uint64_t foreign[8];
			switch (how % 6) {
			case 0: case 1: case 2:                       /* a live block */
				if (nlive == 0)
					continue;
				i = (int)(fz_u8(&f) % nlive);
				p = live[i].p;
				sz = live[i].size;
				if (how % 6 == 0)
					fam = live[i].family;                 /* the right call */
				if (how & 8)
					sz += 1 + fz_u8(&f);                  /* wrong size */
				break;
			case 3:
				p = ngone ? gone[fz_u8(&f) % (ngone < 16 ? ngone : 16)] : NULL;
				sz = fz_u8(&f);
				break;
			case 4:
				p = (unsigned char *)&foreign[1 + fz_u8(&f) % 6];
				sz = 8;
				break;
			default:
				if (nlive == 0)
					continue;
				p = live[fz_u8(&f) % nlive].p + 16;           /* interior */
				sz = 16;
				break;
			}
			if (p == NULL)
				continue;
			i = find_live(p);
			if (i >= 0) {
				blk b = live[i];
				check_fill(&b, step);
				do_free(fam, p, sz);
				if (fam != b.family) {
					FZ_CHECK(fz_panic_count == 1 && strstr(fz_panic_msg, "own family"),
					         "step %u: wrong family not reported (%u: %s)", step, fz_panic_count, fz_panic_msg);
				} else if (sz != b.size) {
					FZ_CHECK(fz_panic_count == 1 && strstr(fz_panic_msg, "size does not match"),
					         "step %u: wrong size not reported (%u: %s)", step, fz_panic_count, fz_panic_msg);
				} else {
					FZ_NO_REPORTS();
				}
				fz_panic_count = 0;
				live[i] = live[--nlive];
				gone[ngone++ % 16] = p;
			} else {
				do_free(fam, p, sz);
				FZ_CHECK(fz_panic_count == 1 && (strstr(fz_panic_msg, "double free") ||
				                                 strstr(fz_panic_msg, "never allocated")),
				         "step %u: free of %p (not live) gave %u report(s): %s", step, (void *)p, fz_panic_count,
				         fz_panic_msg);
				fz_panic_count = 0;
			}
		}
		check_stats(step);
	}
	while (nlive > 0) {
		nlive--;
		do_free(live[nlive].family, live[nlive].p, live[nlive].size);
	}
	FZ_NO_REPORTS();
	check_stats(step);
	FZ_CHECK(iomem_leak_report(NULL, NULL) == 0, "leak");
	return 0;
}
