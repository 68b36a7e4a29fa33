/* SPDX-License-Identifier: MIT */
/*
 * examples/rx_buffer.c - the README's first example, as a program: hand a
 * device the scatter/gather list of a 64 KiB receive buffer.
 *
 *   cc -I. examples/rx_buffer.c -o rx_buffer && ./rx_buffer
 */
#define IOMEM_IMPLEMENTATION                 /* in exactly one .c file */
#include "iomem.h"

#include <stdio.h>

/* Hand a device the scatter/gather list of a new 64 KiB receive buffer. */
IOBufferMemoryDescriptor *rx_buffer(void (*post)(addr64_t pa, IOByteCount len))
{
    IOBufferMemoryDescriptor *buf =          /* +1, wired: release after the DMA */
        IOBufferMemoryDescriptor_withCapacity(64 * 1024, kIODirectionIn, false);
    IOByteCount off, len;
    for (off = 0; buf != NULL && off < IOMemoryDescriptor_getLength(buf); off += len) {
        addr64_t pa = IOMemoryDescriptor_getPhysicalSegment(buf, off, &len, 0);
        post(pa, len);                       /* one entry per physically contiguous run */
    }
    return buf;                              /* NULL: out of memory */
}

/* A pretend device: counts what it was given. */
static IOByteCount posted_bytes;
static unsigned posted_entries;

static void post_to_device(addr64_t pa, IOByteCount len)
{
    printf("  S/G entry %u: phys 0x%llx, %llu bytes\n", posted_entries,
           (unsigned long long)pa, (unsigned long long)len);
    posted_bytes += len;
    posted_entries++;
}

int main(void)
{
    /* a machine whose pages are scattered, so the list has many entries */
    iomem_posix_phys_layout layout = { IOMEM_POSIX_LAYOUT_RUNS, 4, 1 };
    IOBufferMemoryDescriptor *buf;

    iomem_posix_set_phys_layout(&layout);
    buf = rx_buffer(post_to_device);
    if (buf == NULL)
        return 1;
    printf("%u entries, %llu bytes\n", posted_entries, (unsigned long long)posted_bytes);
    IOMemoryDescriptor_release(buf);         /* the DMA is "done" */
    return posted_bytes == 64 * 1024 && posted_entries > 1 ? 0 : 1;
}
