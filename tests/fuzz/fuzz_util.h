/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_util.h - shared by the libFuzzer targets (fuzz_<name>.c).
 * Include it FIRST, before iomem.h: through tests/common/harness.h (shared
 * with the stress programs) it routes IOMEM_PANIC into a recorder, so a
 * target can tell an expected contract report from a finding.
 *
 *   fz_*        a byte reader over the fuzzer's input: reads past the end
 *               give 0, so every input is a valid program
 *   FZ_CHECK    a failed check prints and abort()s: libFuzzer records the
 *               input as a crash (a model mismatch is a finding like any)
 *   FZ_MODEL    on a function of a target's model: no coverage
 *               instrumentation, so the model's loops are neither coverage
 *               feedback (they would fill the corpus with inputs that only
 *               exercise the checker) nor a per-comparison callback (most of
 *               the time per input). test_dma_ref.h's pure helpers get it
 *               through DMA_REF_PURE. Only for code that does not call the
 *               library: library code inlined there would lose its coverage.
 */
#ifndef IOMEM_FUZZ_UTIL_H
#define IOMEM_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/harness.h"    /* IOMEM_PANIC recorder, HARNESS_CHECK */

/* the names the targets use */
#define fz_panic_count harness_reports
#define fz_panic_msg   harness_report_msg
#define FZ_CHECK       HARNESS_CHECK

/* No report was made since the last call (and forget the count). */
#define FZ_NO_REPORTS()                                                              \
	do {                                                                         \
		FZ_CHECK(fz_panic_count == 0, "unexpected report: %s", fz_panic_msg); \
	} while (0)

#define FZ_MODEL __attribute__((no_sanitize("coverage")))
/* test_dma_ref.h's pure helpers (random numbers, fills) */
#define DMA_REF_PURE FZ_MODEL __attribute__((noinline))

typedef struct fz {
	const uint8_t *p;
	size_t n;
} fz;

static inline bool fz_more(const fz *f) { return f->n > 0; }

static inline uint8_t fz_u8(fz *f)
{
	if (f->n == 0)
		return 0;
	f->n--;
	return *f->p++;
}

static inline uint16_t fz_u16(fz *f) { return (uint16_t)(fz_u8(f) | (uint16_t)fz_u8(f) << 8); }
static inline uint32_t fz_u32(fz *f) { return fz_u16(f) | (uint32_t)fz_u16(f) << 16; }
static inline uint64_t fz_u64(fz *f) { return fz_u32(f) | (uint64_t)fz_u32(f) << 32; }

/* A value in [0, n) (n >= 1). */
static inline uint32_t fz_below(fz *f, uint32_t n)
{
	return n <= 256 ? fz_u8(f) % n : fz_u16(f) % n;
}

#endif
