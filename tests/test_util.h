/* SPDX-License-Identifier: MIT */
/*
 * tests/test_util.h - shared by the Criterion suites.
 *
 * Include it FIRST in a test file that defines IOMEM_IMPLEMENTATION: it
 * routes IOMEM_PANIC into a recorder so a test can provoke a contract
 * violation and check the report instead of aborting. Criterion runs every
 * test in its own process, so the recorder starts empty in each test.
 */
#ifndef IOMEM_TEST_UTIL_H
#define IOMEM_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static char iomem_test_panic_msg[512];
static int  iomem_test_panic_count;

static void iomem_test_record_panic(const char *msg)
{
	iomem_test_panic_count++;
	strncpy(iomem_test_panic_msg, msg, sizeof iomem_test_panic_msg - 1);
}

#define IOMEM_PANIC(msg) iomem_test_record_panic(msg)

/* True when all @n bytes at @p equal @v. */
static inline bool iomem_test_all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = (const unsigned char *)p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

/* Asserts that exactly @n reports were made since the test began. */
#define iomem_test_expect_reports(n) \
	cr_assert_eq(iomem_test_panic_count, (n), "expected %d report(s), got %d (last: \"%s\")", \
	             (n), iomem_test_panic_count, iomem_test_panic_msg)

/* Asserts that the last report mentions @needle. */
#define iomem_test_expect_report_has(needle) \
	cr_assert(strstr(iomem_test_panic_msg, (needle)) != NULL, \
	          "report \"%s\" does not mention \"%s\"", iomem_test_panic_msg, (needle))

/* Asserts that nothing iomem allocated is still live (with IOMEM_DEBUG; a
 * no-op without it, since nothing is tracked then). */
#define iomem_test_assert_no_leaks()                                                \
	do {                                                                        \
		vm_size_t iomem_test_live_ = iomem_leak_report(NULL, NULL);         \
		cr_assert_eq(iomem_test_live_, 0, "%zu block(s) leaked (listed above)", \
		             (size_t)iomem_test_live_);                             \
	} while (0)

/* IOMEM_TEST(suite, name) { body } - a Criterion test that fails when the
 * body leaves anything allocated. (Criterion ignores assertion failures in
 * a suite's .fini hook - the test still counts as passing - so the check
 * runs inside the test, where it fails that test by name.)
 * Tests that need Criterion options (.signal, .init) use Test() and call
 * iomem_test_assert_no_leaks() themselves. */
#define IOMEM_TEST(suite, name)                                                     \
	static void suite##_##name##_body(void);                                    \
	Test(suite, name)                                                           \
	{                                                                           \
		suite##_##name##_body();                                            \
		iomem_test_assert_no_leaks();                                       \
	}                                                                           \
	static void suite##_##name##_body(void)

#endif
