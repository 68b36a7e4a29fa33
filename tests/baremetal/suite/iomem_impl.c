/* SPDX-License-Identifier: MIT */
/* iomem_impl.c - the one TU that compiles iomem (IOMEM_IMPLEMENTATION), with
 * contract-violation reports recorded instead of spinning, plus the helpers
 * of bmt.h. */
#include "bm.h"

int  bmt_panic_count;
char bmt_panic_msg[256];

void bmt_record_panic(const char *msg)
{
	size_t i = 0;
	bmt_panic_count++;
	for (; msg[i] != '\0' && i + 1 < sizeof bmt_panic_msg; i++)
		bmt_panic_msg[i] = msg[i];
	bmt_panic_msg[i] = '\0';
	bm_puts("# report: ");
	bm_puts(bmt_panic_msg);
	bm_putc('\n');
}

#define IOMEM_PANIC(msg) bmt_record_panic(msg)
#define IOMEM_IMPLEMENTATION
#include "bmt.h"
#include "iomem_dma.h"   /* IODMACommand, cursors, IODMAController/IODMAEventSource */
#include "iomem_map.h"   /* IOMapper, swiommu, IOMappedRead/Write, IOMemoryMap (t_map.c) */

void bmt_reports_reset(void)
{
	bmt_panic_count = 0;
	bmt_panic_msg[0] = '\0';
}

bool bmt_contains(const char *hay, const char *needle)
{
	size_t i, j;
	for (i = 0; hay[i] != '\0'; i++) {
		for (j = 0; needle[j] != '\0' && hay[i + j] == needle[j]; j++)
			;
		if (needle[j] == '\0')
			return true;
	}
	return needle[0] == '\0';
}

bool bmt_streq(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

bool bmt_all_bytes(const void *p, size_t n, unsigned char v)
{
	const volatile unsigned char *b = (const volatile unsigned char *)p;
	size_t i;
	for (i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

void bmt_fill(void *p, size_t n, unsigned char v)
{
	volatile unsigned char *b = (volatile unsigned char *)p;
	size_t i;
	for (i = 0; i < n; i++)
		b[i] = v;
}

void bmt_diag_u(const char *label, uint64_t v)
{
	bm_puts("# ");
	bm_puts(label);
	bm_puts(" = ");
	bm_put_udec(v);
	bm_putc('\n');
}

bool bmt_target_is(const char *prefix)
{
	const char *t = bm_target_name();
	size_t i;
	for (i = 0; prefix[i] != '\0'; i++)
		if (t[i] != prefix[i])
			return false;
	return t[i] == '/' || t[i] == '\0';
}
