/* SPDX-License-Identifier: MIT */
/*
 * tests/stress/stress_range.c - IORangeAllocator with kLocking (with and
 * without IOMEM_RANGE_CACHE) under TSan: threads allocate (anywhere, a
 * given range, below a limit), claim every unit they got in an ownership
 * array with an atomic compare-and-swap (a unit handed out twice fails the
 * claim), hold a few ranges, and give them back; one more thread reads the
 * counters and serialises meanwhile. At the end every unit is free again
 * and the invariants hold.
 */
#include "stress_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"

#define UNITS 65536u
#define HOLD 16
#define ITERS 20000

static IORangeAllocator *ra;
static _Atomic uint8_t owner[UNITS];

static void claim(IORangeScalar s, IORangeScalar n, uint8_t id)
{
	for (IORangeScalar u = s; u < s + n; u++) {
		uint8_t zero = 0;
		STRESS_CHECK(u < UNITS && atomic_compare_exchange_strong(&owner[u], &zero, id),
		             "unit %llu handed to thread %u, owned by %u", (unsigned long long)u, id, zero);
	}
}

static void unclaim(IORangeScalar s, IORangeScalar n, uint8_t id)
{
	for (IORangeScalar u = s; u < s + n; u++) {
		uint8_t want = id;
		STRESS_CHECK(atomic_compare_exchange_strong(&owner[u], &want, 0), "unit %llu lost by thread %u", (unsigned long long)u, id);
	}
}

static void *worker(void *arg)
{
	uint8_t id = (uint8_t)((uintptr_t)arg + 1);
	uint64_t seed = id * 0x9e3779b97f4a7c15ull;
	IORangeScalar hs[HOLD], hn[HOLD];
	unsigned nh = 0;
	unsigned long ops = 0;
	if (id == 1) {                              /* the reader */
		static IORangeScalar pairs[64];
		while (stress_running() && ops < ITERS) {
			iomem_range_stats st;
			IORangeAllocator_getFreeCount(ra);
			IORangeAllocator_serialize(ra, pairs, 32);
			IORangeAllocator_getFragmentCount(ra);
			iomem_range_get_stats(ra, &st);
			ops++;
		}
		return (void *)ops;
	}
	for (int it = 0; it < ITERS && stress_running(); it++, ops++) {
		uint64_t r = stress_rnd(&seed);
		IORangeScalar n = 1 + r % 40, s = 0;
		bool ok = false;
		if (nh == HOLD || (nh > 0 && (r >> 8) % 2)) {
			unsigned i = (unsigned)((r >> 16) % nh);
			unclaim(hs[i], hn[i], id);
			IORangeAllocator_deallocate(ra, hs[i], hn[i]);
			hs[i] = hs[--nh];
			hn[i] = hn[nh];
			continue;
		}
		switch ((r >> 12) % 3) {
		case 0: ok = IORangeAllocator_allocate(ra, n, &s, (r >> 20) % 2 ? 16 : 0); break;
		case 1: s = (r >> 24) % (UNITS - 64); ok = IORangeAllocator_allocateRange(ra, s, n); break;
		default: ok = iomem__range_alloc_below(ra, n, 0, UNITS / 2, &s) == kIOReturnSuccess; break;
		}
		if (ok) {
			claim(s, n, id);
			hs[nh] = s;
			hn[nh++] = n;
		}
	}
	while (nh > 0) {
		nh--;
		unclaim(hs[nh], hn[nh], id);
		IORangeAllocator_deallocate(ra, hs[nh], hn[nh]);
	}
	return (void *)ops;
}

int main(void)
{
	stress_begin("range");
	for (int cfg = 0; cfg < 2; cfg++) {
		ra = IORangeAllocator_withRange(UNITS - 1, 1, 4, kLocking | (cfg ? IOMEM_RANGE_CACHE : 0));
		STRESS_CHECK(ra != NULL, "withRange");
		stress_run(cfg ? "range (kLocking, cache)" : "range (kLocking)", worker);
		STRESS_CHECK(iomem_range_invariants_hold(ra), "invariants");
		STRESS_CHECK(IORangeAllocator_getFreeCount(ra) == UNITS, "free count %llu",
		             (unsigned long long)IORangeAllocator_getFreeCount(ra));
		STRESS_CHECK(IORangeAllocator_getFragmentCount(ra) == 1, "fragments");
		IORangeAllocator_release(ra);
	}
	STRESS_CHECK(iomem_leak_report(NULL, NULL) == 0, "leaks (listed above)");
	return stress_end("range");
}
