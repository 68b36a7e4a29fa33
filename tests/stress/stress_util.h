/* SPDX-License-Identifier: MIT */
/*
 * tests/stress/stress_util.h - shared by the TSan stress programs
 * (tests/stress/stress_<name>.c). Plain executables (Criterion forks and
 * crashes under TSan): exit status 0 = pass. Include FIRST, before iomem.h
 * (tests/common/harness.h, shared with the fuzz targets, routes IOMEM_PANIC
 * into a recorder: harness_reports counts, harness_report_msg keeps the
 * first).
 *
 * Each program runs STRESS_THREADS threads until every thread has done its
 * iterations or the time bound has passed (IOMEM_STRESS_MS, default 2500 ms
 * per program), whichever comes first: the bound keeps the run short on a
 * loaded machine, the iteration count keeps it short on a fast one. What is
 * checked is correctness (TSan reports, ownership, contents, leaks), never
 * speed.
 */
#ifndef IOMEM_STRESS_UTIL_H
#define IOMEM_STRESS_UTIL_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/harness.h"    /* IOMEM_PANIC recorder, HARNESS_CHECK */

#ifndef STRESS_THREADS
#  define STRESS_THREADS 8
#endif

#define STRESS_CHECK HARNESS_CHECK

static struct timespec stress_t0;
static long stress_ms = 2500;

static inline void stress_begin(const char *name)
{
	const char *e = getenv("IOMEM_STRESS_MS");
	if (e && *e)
		stress_ms = strtol(e, NULL, 10);
	clock_gettime(CLOCK_MONOTONIC, &stress_t0);
	printf("stress %s: %d threads, at most %ld ms\n", name, STRESS_THREADS, stress_ms);
	fflush(stdout);
}

/* True while the time bound has not passed. */
static inline int stress_running(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - stress_t0.tv_sec) * 1000 + (t.tv_nsec - stress_t0.tv_nsec) / 1000000 < stress_ms;
}

static inline uint64_t stress_rnd(uint64_t *s) { return harness_xorshift64(s); }

/* Runs fn(i) on STRESS_THREADS threads and joins them; each returns its
 * operation count. Prints the total. */
static inline unsigned long stress_run(const char *what, void *(*fn)(void *))
{
	pthread_t t[STRESS_THREADS];
	unsigned long total = 0;
	for (uintptr_t i = 0; i < STRESS_THREADS; i++)
		STRESS_CHECK(pthread_create(&t[i], NULL, fn, (void *)i) == 0, "pthread_create");
	for (int i = 0; i < STRESS_THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		total += (unsigned long)(uintptr_t)r;
	}
	printf("stress %s: %lu operations\n", what, total);
	fflush(stdout);
	return total;
}

static inline int stress_end(const char *name)
{
	unsigned n = atomic_load(&harness_reports);
	STRESS_CHECK(n == 0, "%u report(s), first: %s", n, harness_report_msg);
	printf("stress %s: passed\n", name);
	return 0;
}

#endif
