/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_dmaengine.c - the POSIX software DMA engine (DMA controller
 * issue targets).
 *
 *   throughput: one 1 MiB transfer (memory -> device buffer) of a buffer
 *     whose 256 pages of 4 KiB are scattered (SCATTERED layout: 256
 *     segments), started synchronously through an IODMAEventSource, against
 *     a plain memcpy of the same 1 MiB into the same device buffer. Target:
 *     engine throughput >= 70% of memcpy's, i.e. time ratio <= 1/0.7.
 *   the same asynchronously (worker thread, completion on the callback
 *     thread), in process CPU time: informational;
 *   latency: a 4 KiB transfer from IODMAEventSource_startDMACommand to
 *     the completion action on the engine's callback thread, median and
 *     p99 over many transfers (informational).
 *
 * The engine's worker and callback threads inherit the bench's CPU pinning,
 * so every hand-off is a context switch on one CPU: the latency includes
 * them, as a driver on a loaded machine would see. A synchronous start is
 * moved by the starting thread (no hand-off), so the framework's
 * comparison counts the whole transfer with either clock (--cputime: the
 * thread's CPU time); the same ratio in process CPU time (all threads,
 * interleaved rounds) is printed too, as a check that no work went
 * uncounted to another thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iomem_dma.h"

#include "bench.h"

#define XFER_BYTES ((IOByteCount)1 << 20)

typedef struct xfer_state {
    IODMAEventSource *es;
    IODMACommand *cmd;
    unsigned char *mem, *dev;
    IOByteCount len;
} xfer_state;

/* one synchronous 1 MiB engine transfer per iteration */
static BENCH_KERNEL int k_engine(void *st_, uint64_t iters)
{
    xfer_state *st = (xfer_state *)st_;
    for (uint64_t i = 0; i < iters; i++) {
        if (IODMAEventSource_startDMACommand(st->es, st->cmd, kIODirectionOut, 0, 0) != kIOReturnSuccess)
            return -1;
        BENCH_ESCAPE(st->dev);
    }
    return 0;
}

/* the same bytes with one plain memcpy */
static BENCH_KERNEL int k_memcpy(void *st_, uint64_t iters)
{
    xfer_state *st = (xfer_state *)st_;
    for (uint64_t i = 0; i < iters; i++) {
        memcpy(st->dev, st->mem, st->len);
        BENCH_ESCAPE(st->dev);
    }
    return 0;
}

/* ---- latency ---- */

typedef struct lat_state {
    pthread_mutex_t m;
    pthread_cond_t c;
    uint64_t t_done;
    int done;
} lat_state;

static void lat_action(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn status,
                       IOByteCount n, AbsoluteTime ts)
{
    lat_state *l = (lat_state *)owner;
    uint64_t now = bench_now_ns();
    (void)es; (void)cmd; (void)n; (void)ts;
    pthread_mutex_lock(&l->m);
    l->t_done = now;
    l->done = status == kIOReturnSuccess ? 1 : -1;
    pthread_cond_signal(&l->c);
    pthread_mutex_unlock(&l->m);
}

/* one asynchronous transfer of @cmd, waited for; 0 or -1 */
static int async_transfer(lat_state *l, IODMAEventSource *es, IODMACommand *cmd)
{
    pthread_mutex_lock(&l->m);
    l->done = 0;
    pthread_mutex_unlock(&l->m);
    if (IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0) != kIOReturnSuccess)
        return -1;
    pthread_mutex_lock(&l->m);
    while (l->done == 0)
        pthread_cond_wait(&l->c, &l->m);
    pthread_mutex_unlock(&l->m);
    return l->done > 0 ? 0 : -1;
}

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const UInt32 bench_parent[] = { 0xBE7Cu };
static iomem_dma_provider bench_dev = { 0x1, bench_parent, 1, NULL };

static IODMACommand *make_cmd(IOMemoryDescriptor *md)
{
    IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kUnmapped,
                                                       0, 1, NULL, NULL);
    if (cmd != NULL && IODMACommand_setMemoryDescriptor(cmd, md, true) != kIOReturnSuccess) {
        IODMACommand_release(cmd);
        cmd = NULL;
    }
    return cmd;
}

int bench_group_dmaengine(bench_ctx *ctx)
{
    int rc = -1;
    iomem_posix_phys_layout scattered = { IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0 };
    iomem_posix_dma_engine_desc d = { 0xBE7Cu, 2, 0, 0 };
    IODMAController *eng = NULL;
    IODMAEventSource *sync_es = NULL, *async_es = NULL;
    IOBufferMemoryDescriptor *big = NULL, *small = NULL;
    IODMACommand *cbig = NULL, *csmall = NULL;
    unsigned char *dev = NULL;
    uint64_t *lat = NULL;
    lat_state ls;
    xfer_state xs;
    bench_stats st;
    uint32_t nseg = 0;

    pthread_mutex_init(&ls.m, NULL);
    pthread_cond_init(&ls.c, NULL);
    iomem_posix_set_phys_layout(&scattered);
    eng = iomem_posix_dma_engine_create(&d);
    if (eng == NULL || iomem_dma_controller_register(eng) != kIOReturnSuccess) {
        bench_fail(ctx, "engine creation failed");
        goto out;
    }
    sync_es = IODMAEventSource_dmaEventSource(NULL, &bench_dev, NULL, NULL, 0);
    async_es = IODMAEventSource_dmaEventSource(&ls, &bench_dev, lat_action, NULL, 0);
    big = IOBufferMemoryDescriptor_withCapacity(XFER_BYTES, kIODirectionInOut, false);
    small = IOBufferMemoryDescriptor_withCapacity(4096, kIODirectionInOut, false);
    dev = malloc(XFER_BYTES);
    if (!sync_es || !async_es || !big || !small || !dev) {
        bench_fail(ctx, "setup failed");
        goto out;
    }
    cbig = make_cmd(big);
    csmall = make_cmd(small);
    if (!cbig || !csmall) {
        bench_fail(ctx, "command setup failed");
        goto out;
    }
    {
        /* how scattered is it: count the command's segments */
        IODMACommand_Segment64 seg[64];
        UInt64 off = 0;
        UInt32 n = 64;
        while (IODMACommand_gen64IOVMSegments(cbig, &off, seg, &n) == kIOReturnSuccess) {
            nseg += n;
            n = 64;
        }
    }
    memset(IOBufferMemoryDescriptor_getBytesNoCopy(big), 0x5A, XFER_BYTES);
    memset(dev, 0, XFER_BYTES);
    if (iomem_posix_dma_set_device_buffer(eng, iomem_dma_event_source_getDMAIndex(sync_es), dev, XFER_BYTES) !=
            kIOReturnSuccess ||
        iomem_posix_dma_set_device_buffer(eng, iomem_dma_event_source_getDMAIndex(async_es), dev, XFER_BYTES) !=
            kIOReturnSuccess) {
        bench_fail(ctx, "device buffer setup failed");
        goto out;
    }
    bench_note(ctx, "1 MiB buffer on the scattered layout: %u segments", nseg);

    /* ---- throughput ---- */
    xs.es = sync_es;
    xs.cmd = cbig;
    xs.mem = IOBufferMemoryDescriptor_getBytesNoCopy(big);
    xs.dev = dev;
    xs.len = XFER_BYTES;
    {
        bench_kernel a = {.name = "engine 1 MiB scattered (sync start)", .fn = k_engine, .state = &xs};
        bench_kernel b = {.name = "memcpy 1 MiB", .fn = k_memcpy, .state = &xs};
        if (bench_compare(ctx, &a, &b, BENCH_RATIO_LE(1.0 / 0.7)) != 0)
            goto out;
        if (memcmp(dev, xs.mem, XFER_BYTES) != 0) {
            bench_fail(ctx, "engine moved wrong bytes");
            goto out;
        }
        if (bench_last_stats(ctx, &st) == 0) {
            bench_exact(ctx, "dmaengine throughput", "engine GB/s (median)", (double)XFER_BYTES / st.ns_median,
                        "GB/s", -1);
            bench_exact(ctx, "dmaengine throughput", "memcpy GB/s (median)",
                        (double)XFER_BYTES / st.base_ns_median, "GB/s", -1);
            bench_exact(ctx, "dmaengine throughput", "engine / memcpy throughput, median (target >= 70)",
                        100.0 / st.ratio_median, "%", -1);
        }
    }
    /* The same in process CPU time (every thread of the process: the
     * worker's copy and any hand-off count, the time other processes hold
     * the CPU does not), engine and memcpy interleaved over several rounds:
     * median and best of the per-round ratios. A synchronous start runs on
     * the starting thread, so the thread-clock comparison above (--cputime)
     * already counts the whole transfer; this one would also catch work
     * moved to the engine's threads. */
    {
        enum { ROUNDS = 15 };
        int n = bench_quick(ctx) ? 10 : 40;
        double ratio[ROUNDS];
        int nr = 0;
        for (int round = 0; round < ROUNDS; round++) {
            uint64_t c0, c1, c2;
            c0 = process_cpu_ns();
            if (k_engine(&xs, (uint64_t)n) != 0) {
                bench_fail(ctx, "engine transfer failed");
                goto out;
            }
            c1 = process_cpu_ns();
            k_memcpy(&xs, (uint64_t)n);
            c2 = process_cpu_ns();
            if (c2 > c1 && c1 > c0)
                ratio[nr++] = (double)(c1 - c0) / (double)(c2 - c1);
        }
        if (nr > 0) {
            double best;
            qsort(ratio, (size_t)nr, sizeof ratio[0], cmp_double);
            best = ratio[0];
            bench_exact(ctx, "dmaengine throughput", "engine CPU time per MiB, % of memcpy's, median (<= 143)",
                        100.0 * ratio[nr / 2], "%", 100.0 / 0.7);
            bench_exact(ctx, "dmaengine throughput", "engine CPU time per MiB, % of memcpy's, best", 100.0 * best,
                        "%", -1);
            bench_exact(ctx, "dmaengine throughput", "engine / memcpy throughput, CPU time (median)",
                        100.0 / ratio[nr / 2], "%", -1);
        }
    }

    /* The asynchronous path (the worker moves the bytes, the callback
     * thread delivers): same 1 MiB, same clock and rounds, informational -
     * it adds the two hand-offs per transfer the synchronous start saves. */
    {
        enum { ROUNDS = 15 };
        int n = bench_quick(ctx) ? 10 : 40;
        double ratio[ROUNDS];
        int nr = 0;
        for (int round = 0; round < ROUNDS; round++) {
            uint64_t c0, c1, c2;
            c0 = process_cpu_ns();
            for (int i = 0; i < n; i++) {
                if (async_transfer(&ls, async_es, cbig) != 0) {
                    bench_fail(ctx, "async engine transfer failed");
                    goto out;
                }
            }
            c1 = process_cpu_ns();
            k_memcpy(&xs, (uint64_t)n);
            c2 = process_cpu_ns();
            if (c2 > c1 && c1 > c0)
                ratio[nr++] = (double)(c1 - c0) / (double)(c2 - c1);
        }
        if (nr > 0) {
            qsort(ratio, (size_t)nr, sizeof ratio[0], cmp_double);
            bench_exact(ctx, "dmaengine async", "async 1 MiB: engine / memcpy throughput, CPU time (median)",
                        100.0 / ratio[nr / 2], "%", -1);
            bench_exact(ctx, "dmaengine async", "async 1 MiB: engine / memcpy throughput, CPU time (best)",
                        100.0 / ratio[0], "%", -1);
        }
    }

    /* ---- latency: submit -> completion action ---- */
    {
        int n = bench_quick(ctx) ? 500 : 4000;
        lat = malloc(sizeof *lat * (size_t)n);
        if (!lat) {
            bench_fail(ctx, "out of memory");
            goto out;
        }
        for (int i = 0; i < n + 50; i++) {
            uint64_t t0;
            pthread_mutex_lock(&ls.m);
            ls.done = 0;
            pthread_mutex_unlock(&ls.m);
            t0 = bench_now_ns();
            if (IODMAEventSource_startDMACommand(async_es, csmall, kIODirectionOut, 0, 0) != kIOReturnSuccess) {
                bench_fail(ctx, "4 KiB start failed");
                goto out;
            }
            pthread_mutex_lock(&ls.m);
            while (ls.done == 0)
                pthread_cond_wait(&ls.c, &ls.m);
            pthread_mutex_unlock(&ls.m);
            if (ls.done < 0) {
                bench_fail(ctx, "4 KiB transfer failed");
                goto out;
            }
            if (i >= 50) /* warm-up */
                lat[i - 50] = ls.t_done - t0;
        }
        qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
        bench_exact(ctx, "dmaengine latency", "4 KiB submit -> callback, median", (double)lat[n / 2], "ns", -1);
        bench_exact(ctx, "dmaengine latency", "4 KiB submit -> callback, p99", (double)lat[(n * 99) / 100], "ns",
                    -1);
    }
    rc = 0;
out:
    free(lat);
    if (cbig) {
        IODMACommand_clearMemoryDescriptor(cbig, true);
        IODMACommand_release(cbig);
    }
    if (csmall) {
        IODMACommand_clearMemoryDescriptor(csmall, true);
        IODMACommand_release(csmall);
    }
    IODMAEventSource_release(sync_es);
    IODMAEventSource_release(async_es);
    if (big)
        IOMemoryDescriptor_release(big);
    if (small)
        IOMemoryDescriptor_release(small);
    if (eng) {
        iomem_dma_controller_unregister(eng);
        IODMAController_release(eng);
    }
    free(dev);
    return rc;
}
