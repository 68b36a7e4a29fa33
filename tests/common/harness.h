/* SPDX-License-Identifier: MIT */
/*
 * tests/common/harness.h - what the fuzz targets (tests/fuzz/fuzz_util.h)
 * and the TSan stress programs (tests/stress/stress_util.h) share: programs
 * that fail by abort()ing, not Criterion suites. C11 (<stdatomic.h>).
 * Include FIRST, before iomem.h: it routes IOMEM_PANIC into a recorder, so
 * a harness can tell an expected contract report from a finding.
 *
 *   harness_reports       reports since the last reset (atomic: the stress
 *                         programs report from many threads); set it to 0
 *                         to reset
 *   harness_report_msg    the first report since the last reset
 *   HARNESS_CHECK         a failed check prints "file:line: check failed:
 *                         cond: message" and abort()s (libFuzzer keeps the
 *                         input; the stress program's exit status fails)
 *   harness_xorshift64    a tiny PRNG step (state never 0)
 */
#ifndef IOMEM_TEST_HARNESS_H
#define IOMEM_TEST_HARNESS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint harness_reports;
static char harness_report_msg[512];

static inline void harness_record_panic(const char *msg)
{
	if (atomic_fetch_add(&harness_reports, 1) == 0)
		strncpy(harness_report_msg, msg, sizeof harness_report_msg - 1);
}
#define IOMEM_PANIC(msg) harness_record_panic(msg)

#define HARNESS_CHECK(cond, ...)                                                     \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                \
			fputc('\n', stderr);                                         \
			abort();                                                     \
		}                                                                    \
	} while (0)

static inline uint64_t harness_xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#endif
