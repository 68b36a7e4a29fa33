/* SPDX-License-Identifier: MIT */
/* tests/test_dmaengine_random.c - the POSIX software DMA engine under
 * random load: 10,000 transfers with random descriptors (buffer and
 * virtual, odd offsets), layouts, segment limits, directions, sub-ranges,
 * plain / bounced (32-bit device on high frames, misaligned starts) /
 * mapped (software IOMMU), on four channels at once, some stopped at a
 * random point. Every byte is checked and every completion must arrive
 * exactly once. The seed is printed; IOMEM_SEED=<n> replays a run. */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PG       4096u
#define NCH      4
#define NXFER    10000
#define MAXLEN   (12u * PG)

typedef struct slot {
	/* the transfer */
	int                 kind;        /* 0 plain, 1 bounced, 2 mapped */
	IOMemoryDescriptor *md;
	IOBufferMemoryDescriptor *bmd;   /* for buffer descriptors */
	unsigned char      *raw;         /* malloc'd memory of virtual descriptors */
	unsigned char      *mem;         /* the descriptor's first byte */
	unsigned char      *dev;
	unsigned char      *expect;      /* what memory must hold afterwards (In) */
	IOByteCount         len, off, count;
	bool                out, stopped;
	IODMACommand       *cmd;
	/* completion, written by the action */
	int                 completions;
	IOReturn            status;
	IOByteCount         done;
	bool                busy;
} slot;

typedef struct rnd_state {
	pthread_mutex_t m;
	pthread_cond_t  c;
	slot            s[NCH];
	IODMAEventSource *es[NCH];
	int             total_completions;
	uint64_t        rng;
} rnd_state;

static rnd_state R;

static uint64_t rnd(void)
{
	uint64_t x = R.rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	R.rng = x;
	return x;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static void on_done(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                    AbsoluteTime ts)
{
	slot *s = owner;
	(void)es; (void)ts;
	pthread_mutex_lock(&R.m);
	cr_assert_eq(cmd, s->cmd, "a completion for another channel's command");
	s->completions++;
	s->status = st;
	s->done = n;
	R.total_completions++;
	pthread_cond_broadcast(&R.c);
	pthread_mutex_unlock(&R.m);
}

static void set_layout(iomem_posix_layout l)
{
	iomem_posix_phys_layout pl = { l, 1 + (uint32_t)rnd_below(4), rnd() | 1 };
	cr_assert_eq(iomem_posix_set_phys_layout(&pl), kIOReturnSuccess);
}

static void fill_rand(unsigned char *p, size_t n)
{
	uint64_t x = rnd();
	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
}

static void launch(IODMAController *e, IOMapper *iommu, int ch, int index)
{
	slot *s = &R.s[ch];
	static const iomem_posix_layout layouts[] = { IOMEM_POSIX_LAYOUT_IDENTITY, IOMEM_POSIX_LAYOUT_CONTIGUOUS,
	                                              IOMEM_POSIX_LAYOUT_SCATTERED, IOMEM_POSIX_LAYOUT_RUNS };
	IOMapper *mapper = NULL;
	uint32_t mapping = IODMACommand_kUnmapped;
	UInt8 bits = 0;
	UInt32 align = 1;
	memset(s, 0, sizeof *s);
	s->kind = (int)rnd_below(3);
	s->len = 1 + rnd_below(MAXLEN);
	s->out = rnd_below(2) != 0;
	if (s->kind == 1 && rnd_below(2) == 0) {
		set_layout(IOMEM_POSIX_LAYOUT_HIGH);      /* every frame above 4 GiB: 32-bit device bounces */
		bits = 32;
	} else {
		set_layout(layouts[rnd_below(4)]);
		if (s->kind == 1)
			align = 64;                         /* with an odd start below: double buffer */
	}
	if (s->kind == 2) {
		mapper = iommu;
		mapping = IODMACommand_kMapped;
	}
	/* memory: a buffer descriptor, or a virtual one at a random offset
	 * (page-aligned when mapped: the IOMMU maps whole pages) */
	if (s->kind == 2 || rnd_below(2) == 0) {
		s->bmd = IOBufferMemoryDescriptor_withCapacity(s->len, kIODirectionInOut, false);
		cr_assert_not_null(s->bmd);
		s->md = s->bmd;
		s->mem = IOBufferMemoryDescriptor_getBytesNoCopy(s->bmd);
	} else {
		size_t lead = s->kind == 1 ? 1 + 2 * rnd_below(PG / 2 - 1) : rnd_below(PG);
		s->raw = malloc(lead + s->len);
		cr_assert_not_null(s->raw);
		s->mem = s->raw + lead;
		s->md = IOMemoryDescriptor_withAddress(s->mem, s->len, kIODirectionInOut);
		cr_assert_not_null(s->md);
		cr_assert_eq(IOMemoryDescriptor_prepare(s->md, kIODirectionNone), kIOReturnSuccess);
	}
	s->off = rnd_below(s->len);
	if (align > 1)           /* a start the device accepts (cursor mode checks it) */
		s->off &= ~(IOByteCount)(align - 1);
	s->count = rnd_below(4) == 0 ? s->len - s->off : 1 + rnd_below(s->len - s->off);
	s->dev = malloc(s->count + 64);
	s->expect = malloc(s->len);
	cr_assert(s->dev && s->expect);
	fill_rand(s->mem, s->len);
	fill_rand(s->dev, s->count + 64);
	memcpy(s->expect, s->mem, s->len);
	if (!s->out)
		memcpy(s->expect + s->off, s->dev, s->count);
	{
		IODMACommand_SegmentOptions so = { sizeof so, bits, 0, 0, align, 1, 0 };
		if (rnd_below(3) == 0)
			so.fMaxSegmentSize = 512 + 64 * rnd_below(3 * PG / 64);
		s->cmd = IODMACommand_withSpecificationOptions(kIODMACommandOutputHost64, &so, mapping, mapper, NULL);
		cr_assert_not_null(s->cmd, "transfer %d: kind %d", index, s->kind);
	}
	cr_assert_eq(IODMACommand_setMemoryDescriptor(s->cmd, s->md, true), kIOReturnSuccess, "transfer %d", index);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, (UInt32)iomem_dma_event_source_getDMAIndex(R.es[ch]),
	                                               s->dev, s->count + 64), kIOReturnSuccess);
	pthread_mutex_lock(&R.m);
	s->busy = true;
	pthread_mutex_unlock(&R.m);
	cr_assert_eq(IODMAEventSource_startDMACommand(R.es[ch], s->cmd, s->out ? kIODirectionOut : kIODirectionIn,
	                                              s->count, s->off), kIOReturnSuccess, "transfer %d", index);
	if (rnd_below(16) == 0) {
		/* cancel at a random point: maybe at once, maybe after it ended */
		if (rnd_below(2))
			usleep((useconds_t)rnd_below(30));
		IOReturn r = IODMAEventSource_stopDMACommand(R.es[ch], rnd_below(2) != 0, UINT64_MAX);
		cr_assert(r == kIOReturnSuccess || r == kIOReturnNotReady, "stop: %s", IOReturnString(r));
		s->stopped = true;
	}
}

/* Checks a finished transfer (lock not held) and frees it. */
static void retire(slot *s, int index)
{
	IOByteCount moved = s->done;
	cr_assert_eq(s->completions, 1, "transfer %d: %d completions", index, s->completions);
	if (s->stopped && s->status == kIOReturnAborted) {
		cr_assert_leq(moved, s->count, "transfer %d", index);
	} else {
		cr_assert_eq(s->status, kIOReturnSuccess, "transfer %d (kind %d): %s", index, s->kind,
		             IOReturnString(s->status));
		cr_assert_eq(moved, s->count, "transfer %d", index);
	}
	/* complete (bounced In data is copied back here) */
	cr_assert_eq(IODMACommand_clearMemoryDescriptor(s->cmd, true), kIOReturnSuccess);
	if (s->out) {
		cr_assert_eq(memcmp(s->dev, s->mem + s->off, moved), 0, "transfer %d (kind %d): Out data", index, s->kind);
		cr_assert_eq(memcmp(s->mem, s->expect, s->len), 0, "transfer %d: Out changed memory", index);
	} else {
		if (moved < s->count)   /* stopped: the rest keeps its old bytes */
			memcpy(s->expect + s->off + moved, s->mem + s->off + moved, s->count - moved);
		cr_assert_eq(memcmp(s->mem, s->expect, s->len), 0, "transfer %d (kind %d, off %llu count %llu): In data",
		             index, s->kind, (unsigned long long)s->off, (unsigned long long)s->count);
	}
	IODMACommand_release(s->cmd);
	if (s->bmd == NULL)
		IOMemoryDescriptor_complete(s->md, kIODirectionNone);
	IOMemoryDescriptor_release(s->md);
	free(s->raw);
	free(s->dev);
	free(s->expect);
}

static const UInt32 rnd_parent[] = { 0xD1u };
static iomem_dma_provider rnd_dev = { 0x5, rnd_parent, 1, NULL };

IOMEM_TEST(dmaengine_random, ten_thousand_transfers)
{
	const char *env = getenv("IOMEM_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	fprintf(stderr, "dmaengine_random: seed %llu (IOMEM_SEED=%llu replays it)\n", (unsigned long long)seed,
	        (unsigned long long)seed);
	memset(&R, 0, sizeof R);
	R.rng = seed | 1;
	pthread_mutex_init(&R.m, NULL);
	pthread_cond_init(&R.c, NULL);
	iomem_posix_dma_engine_desc d = { 0xD1u, NCH, 0, 0 };
	IODMAController *e = iomem_posix_dma_engine_create(&d);
	cr_assert_not_null(e);
	cr_assert_eq(iomem_dma_controller_register(e), kIOReturnSuccess);
	IOMapper *iommu = iomem_swiommu_create(NULL);
	cr_assert_not_null(iommu);
	for (int i = 0; i < NCH; i++) {
		R.es[i] = IODMAEventSource_dmaEventSource(&R.s[i], &rnd_dev, on_done, NULL, 0);
		cr_assert_not_null(R.es[i]);
	}
	int launched = 0, retired = 0, index[NCH] = { 0 };
	int kinds[3] = { 0 }, stops = 0, aborted = 0;
	while (retired < NXFER) {
		for (int ch = 0; ch < NCH && launched < NXFER; ch++) {
			pthread_mutex_lock(&R.m);
			bool busy = R.s[ch].busy;
			pthread_mutex_unlock(&R.m);
			if (!busy) {
				index[ch] = launched++;
				launch(e, iommu, ch, index[ch]);
			}
		}
		pthread_mutex_lock(&R.m);
		int ch = -1;
		while (ch < 0) {
			for (int i = 0; i < NCH; i++)
				if (R.s[i].busy && R.s[i].completions > 0)
					ch = i;
			if (ch < 0)
				pthread_cond_wait(&R.c, &R.m);
		}
		pthread_mutex_unlock(&R.m);
		/* a doubled completion would arrive while we check: look after */
		kinds[R.s[ch].kind]++;
		stops += R.s[ch].stopped;
		aborted += R.s[ch].status == kIOReturnAborted;
		retire(&R.s[ch], index[ch]);
		pthread_mutex_lock(&R.m);
		cr_assert_eq(R.s[ch].completions, 1, "transfer %d completed twice", index[ch]);
		R.s[ch].busy = false;
		pthread_mutex_unlock(&R.m);
		retired++;
	}
	pthread_mutex_lock(&R.m);
	cr_assert_eq(R.total_completions, NXFER);
	pthread_mutex_unlock(&R.m);
	cr_assert_eq(iomem_swiommu_faults(iommu, NULL), 0);
	fprintf(stderr, "dmaengine_random: %d plain, %d bounced, %d mapped; %d stops (%d aborted)\n", kinds[0], kinds[1],
	        kinds[2], stops, aborted);
	cr_assert_gt(kinds[0], 0);
	cr_assert_gt(kinds[1], 0);
	cr_assert_gt(kinds[2], 0);
	for (int i = 0; i < NCH; i++)
		IODMAEventSource_release(R.es[i]);
	IOMapper_release(iommu);
	cr_assert_eq(iomem_dma_controller_unregister(e), kIOReturnSuccess);
	IODMAController_release(e);
	/* the engine may finish freeing on its callback thread */
	for (int i = 0; i < 100000; i++) {
		iomem_alloc_stats st;
		if (iomem_stats(&st) != kIOReturnSuccess || st.family[IOMEM_ALLOC_INTERNAL].live_blocks == 0)
			break;
		usleep(100);
	}
	pthread_cond_destroy(&R.c);
	pthread_mutex_destroy(&R.m);
}
