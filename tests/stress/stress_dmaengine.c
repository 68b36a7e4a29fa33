/* SPDX-License-Identifier: MIT */
/*
 * tests/stress/stress_dmaengine.c - the POSIX software DMA engine and
 * IODMAEventSource under concurrency, for ThreadSanitizer (a plain program:
 * Criterion's fork-per-test does not run under TSan). Exit status 0 = pass,
 * 1 = a check failed (printed), TSan reports fail it through the sanitizer.
 *
 * Four client threads on one engine (four channels), each repeatedly:
 * creates an event source (async or sync), runs transfers in both
 * directions and checks every byte, sometimes has a stopper thread stop
 * them, queries progress, and releases the event source - sometimes from
 * inside its own completion action on the engine's callback thread. The
 * engine itself is released last from a callback. Every completion must be
 * delivered exactly once. The engine is registered only once the clients
 * run: their first event sources wait for it (IODMAController_getController).
 *
 * Build: cc -fsanitize=thread -g -O1 -I. tests/stress/stress_dmaengine.c -lpthread
 * (IOMEM_DEBUG=1 adds the debug layer's checks and the leak count at exit).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NCLIENT 4
#define ROUNDS  60
#define XFERS   8
#define LEN     (5u * 4096u + 123u)

static atomic_int failures;
static atomic_int stray_completions;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "stress_dmaengine: %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
			atomic_fetch_add(&failures, 1);                     \
		}                                                           \
	} while (0)

typedef struct client {
	int                id;
	IODMAController   *engine;
	pthread_mutex_t    m;
	pthread_cond_t     c;
	int                completions;   /* under m */
	IOReturn           status;
	IOByteCount        count;
	IODMAEventSource  *es;            /* current, for the stopper (under m) */
	bool               release_in_action;
	uint64_t           rng;
} client;

static uint64_t xs(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void on_complete(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                        AbsoluteTime ts)
{
	client *c = owner;
	bool rel;
	(void)cmd; (void)ts;
	if (c == NULL) {
		atomic_fetch_add(&stray_completions, 1);
		return;
	}
	pthread_mutex_lock(&c->m);
	c->completions++;
	c->status = st;
	c->count = n;
	rel = c->release_in_action;
	c->release_in_action = false;
	pthread_cond_broadcast(&c->c);
	pthread_mutex_unlock(&c->m);
	if (rel)
		IODMAEventSource_release(es);
}

static const UInt32 parent[] = { 0x5757u };
static iomem_dma_provider dev_provider = { 0x10, parent, 1, NULL };

static void *stopper(void *arg)
{
	client *cl = arg;
	for (int i = 0; i < 200; i++) {
		IODMAEventSource *es;
		pthread_mutex_lock(&cl->m);
		es = cl->es;
		IODMAEventSource_retain(es);
		pthread_mutex_unlock(&cl->m);
		if (es != NULL) {
			IOByteCount n = 0;
			IODMACommand *q = NULL;
			IOReturn r = IODMAEventSource_stopDMACommand(es, (i & 1) != 0, (i & 2) ? 1000 : UINT64_MAX);
			CHECK(r == kIOReturnSuccess || r == kIOReturnNotReady || r == kIOReturnTimeout, "stop: %s",
			      IOReturnString(r));
			r = IODMAEventSource_queryDMACommand(es, &q, &n, false);
			CHECK(r == kIOReturnSuccess, "query: %s", IOReturnString(r));
			(void)IODMAEventSource_getFIFODepth(es, kIODirectionOut);
			(void)iomem_dma_event_source_getFrameCount(es);
			IODMAEventSource_release(es);
		}
		usleep(50);
	}
	return NULL;
}

static void *client_main(void *arg)
{
	client *cl = arg;
	unsigned char *dev = malloc(LEN);
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(LEN, kIODirectionInOut, false);
	unsigned char *mem = b ? IOBufferMemoryDescriptor_getBytesNoCopy(b) : NULL;
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, (cl->id & 1) ? 1000 : 0,
	                                                   IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	pthread_t st;
	CHECK(dev && b && cmd, "setup");
	if (!dev || !b || !cmd)
		return NULL;
	CHECK(IODMACommand_setMemoryDescriptor(cmd, b, true) == kIOReturnSuccess, "setMemoryDescriptor");
	pthread_create(&st, NULL, stopper, cl);
	for (int r = 0; r < ROUNDS; r++) {
		bool sync = (xs(&cl->rng) & 3) == 0;
		IODMAEventSource *es = NULL;
		while (es == NULL) {   /* channels churn: wait for a free one */
			es = IODMAEventSource_dmaEventSource(cl, &dev_provider, sync ? NULL : on_complete, NULL, 0);
			if (es == NULL)
				usleep(20);
		}
		UInt32 ch = iomem_dma_event_source_getDMAIndex(es);
		CHECK(iomem_posix_dma_set_device_buffer(cl->engine, ch, dev, LEN) == kIOReturnSuccess, "device buffer");
		pthread_mutex_lock(&cl->m);
		cl->es = es;
		pthread_mutex_unlock(&cl->m);
		for (int x = 0; x < XFERS; x++) {
			bool out = (xs(&cl->rng) & 1) != 0;
			unsigned char v = (unsigned char)xs(&cl->rng);
			int before;
			memset(out ? mem : dev, v, LEN);
			pthread_mutex_lock(&cl->m);
			before = cl->completions;
			pthread_mutex_unlock(&cl->m);
			IOReturn ret = IODMAEventSource_startDMACommand(es, cmd, out ? kIODirectionOut : kIODirectionIn, 0, 0);
			CHECK(ret == kIOReturnSuccess, "start: %s", IOReturnString(ret));
			if (ret != kIOReturnSuccess || sync)
				continue;
			pthread_mutex_lock(&cl->m);
			while (cl->completions == before)
				pthread_cond_wait(&cl->c, &cl->m);
			CHECK(cl->completions == before + 1, "completions %d, expected %d", cl->completions, before + 1);
			IOReturn status = cl->status;
			IOByteCount n = cl->count;
			pthread_mutex_unlock(&cl->m);
			CHECK(status == kIOReturnSuccess || status == kIOReturnAborted, "status %s", IOReturnString(status));
			CHECK(n <= LEN && (status != kIOReturnSuccess || n == LEN), "count %llu", (unsigned long long)n);
			CHECK(memcmp(mem, dev, n) == 0, "client %d: data", cl->id);
		}
		pthread_mutex_lock(&cl->m);
		cl->es = NULL;
		pthread_mutex_unlock(&cl->m);
		if (!sync && (xs(&cl->rng) & 1)) {
			/* one more transfer whose action releases the event source */
			int before;
			pthread_mutex_lock(&cl->m);
			before = cl->completions;
			cl->release_in_action = true;
			pthread_mutex_unlock(&cl->m);
			if (IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0) == kIOReturnSuccess) {
				pthread_mutex_lock(&cl->m);
				while (cl->completions == before)
					pthread_cond_wait(&cl->c, &cl->m);
				pthread_mutex_unlock(&cl->m);
			} else {
				pthread_mutex_lock(&cl->m);
				cl->release_in_action = false;
				pthread_mutex_unlock(&cl->m);
				IODMAEventSource_release(es);
			}
		} else {
			IODMAEventSource_release(es);
		}
	}
	pthread_join(st, NULL);
	IODMACommand_clearMemoryDescriptor(cmd, true);
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	return NULL;
}

int main(void)
{
	iomem_posix_phys_layout lay = { IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0 };
	iomem_posix_dma_engine_desc d = { 0x5757u, NCLIENT, 0, 20000 };   /* 20 us per segment: stops land */
	client cl[NCLIENT];
	pthread_t th[NCLIENT];
	iomem_posix_set_phys_layout(&lay);
	IODMAController *e = iomem_posix_dma_engine_create(&d);
	if (e == NULL) {
		fprintf(stderr, "stress_dmaengine: engine creation failed\n");
		return 1;
	}
	for (int i = 0; i < NCLIENT; i++) {
		memset(&cl[i], 0, sizeof cl[i]);
		cl[i].id = i;
		cl[i].engine = e;
		cl[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
		pthread_mutex_init(&cl[i].m, NULL);
		pthread_cond_init(&cl[i].c, NULL);
	}
	for (int i = 0; i < NCLIENT; i++)
		pthread_create(&th[i], NULL, client_main, &cl[i]);
	/* registered once the clients run: their first event sources wait for
	 * it in IODMAController_getController (IOMEM_DMA_CONTROLLER_WAIT_NS) */
	usleep(20000);
	CHECK(iomem_dma_controller_register(e) == kIOReturnSuccess, "register");
	for (int i = 0; i < NCLIENT; i++)
		pthread_join(th[i], NULL);

	/* the engine's last reference dropped on its own callback thread */
	{
		client last;
		memset(&last, 0, sizeof last);
		pthread_mutex_init(&last.m, NULL);
		pthread_cond_init(&last.c, NULL);
		unsigned char dev[64];
		IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(64, kIODirectionInOut, false);
		IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0,
		                                                   IODMACommand_kUnmapped, 0, 1, NULL, NULL);
		IODMACommand_setMemoryDescriptor(cmd, b, true);
		IODMAEventSource *es = IODMAEventSource_dmaEventSource(&last, &dev_provider, on_complete, NULL, 0);
		CHECK(es != NULL, "last event source");
		if (es != NULL) {
			iomem_posix_dma_set_device_buffer(e, iomem_dma_event_source_getDMAIndex(es), dev, sizeof dev);
			iomem_dma_controller_unregister(e);
			IODMAController_release(e);
			last.release_in_action = true;
			CHECK(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0) == kIOReturnSuccess, "start");
			pthread_mutex_lock(&last.m);
			while (last.completions == 0)
				pthread_cond_wait(&last.c, &last.m);
			pthread_mutex_unlock(&last.m);
		}
		IODMACommand_clearMemoryDescriptor(cmd, true);
		IODMACommand_release(cmd);
		IOMemoryDescriptor_release(b);
		pthread_mutex_destroy(&last.m);
		pthread_cond_destroy(&last.c);
	}
#if IOMEM__DEBUG
	{
		/* the engine finishes freeing on its callback thread */
		iomem_alloc_stats s;
		for (int i = 0; i < 100000; i++) {
			if (iomem_stats(&s) != kIOReturnSuccess || s.family[IOMEM_ALLOC_INTERNAL].live_blocks == 0)
				break;
			usleep(100);
		}
		CHECK(s.family[IOMEM_ALLOC_INTERNAL].live_blocks == 0, "%llu internal blocks leaked",
		      (unsigned long long)s.family[IOMEM_ALLOC_INTERNAL].live_blocks);
	}
#endif
	CHECK(atomic_load(&stray_completions) == 0, "stray completions");
	for (int i = 0; i < NCLIENT; i++) {
		pthread_mutex_destroy(&cl[i].m);
		pthread_cond_destroy(&cl[i].c);
	}
	if (atomic_load(&failures) != 0) {
		fprintf(stderr, "stress_dmaengine: %d failure(s)\n", atomic_load(&failures));
		return 1;
	}
	printf("stress_dmaengine: ok\n");
	return 0;
}
