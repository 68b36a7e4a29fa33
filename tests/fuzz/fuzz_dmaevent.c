/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_dmaevent.c - IODMAEventSource over the POSIX software DMA
 * engine, against a byte model of the transfer.
 *
 * Deterministic although the engine is threaded: every transfer is waited
 * for before the next call, and in the asynchronous mode the event source
 * has a work signal (iomem_dma_event_source_setWorkSignal), so completion
 * actions run on the fuzzer's thread when it drains the queue
 * (iomem_dma_event_source_run), never on the engine's callback thread. The
 * timing of a stop is the one thing a single thread cannot fix; stops are
 * only made with nothing running (a refused stop is checked).
 *
 * Once per process (the expensive part: threads, memfd-backed buffers): one
 * engine (two channels), three buffers wired under different physical
 * layouts (scattered, runs of frames, all above 4 GiB), a peer buffer and
 * a device buffer. Per input: the contents, an IODMACommand over one of
 * the buffers (address bits 32 over the high buffer: bouncing; a maximum
 * segment size; mapped or not) prepared on any window, an event source
 * (asynchronous with a completion action, or synchronous), then up to 12
 * operations: set the device side (a device buffer of any length, or a peer
 * command on any window), start in either direction with any count and
 * offset (and bad directions), FIFO depth and frame size (good and bad),
 * a stop with nothing running, a query. Checked: every return code against
 * the documented rules (BadArgument, NotReady, NoSpace), exactly one
 * completion per accepted start with status success and the byte count,
 * the notification's values, every byte moved (and nothing else touched)
 * after the command's complete (which copies bounced bytes back), the
 * query's command and whole-frame count. At the end, everything the input
 * created is gone: the live allocation count and wired pages are back to
 * what the process setup left, no report.
 */
#include "fuzz_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"

#include <pthread.h>
#include <unistd.h>

#define PGS 16
#define NBUF 3

static IODMAController *eng;
static IOBufferMemoryDescriptor *bufs[NBUF], *peerbuf;
static unsigned char *mem[NBUF], *pmem;
static IOByteCount cap;
static unsigned char dev[PGS * 16384];
static unsigned char shadow[PGS * 16384];     /* what memory should hold */
static unsigned baseline_blocks;
static uint64_t baseline_wired;
static const UInt32 parents[] = { 0xE5u };
static iomem_dma_provider fdev = { 0x55, parents, 1, NULL };

/* the owner: completions and notifications seen, under m */
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned signals, completions, notifications;
static IOReturn last_status, last_nstatus;
static IOByteCount last_count, last_ncount;
static IODMACommand *last_cmd;
static pthread_t fuzz_thread;
static bool wrong_thread;

static void on_complete(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                        AbsoluteTime ts)
{
	(void)owner; (void)es; (void)ts;
	pthread_mutex_lock(&m);
	completions++;
	last_status = st;
	last_count = n;
	last_cmd = cmd;
	wrong_thread |= !pthread_equal(pthread_self(), fuzz_thread);
	pthread_mutex_unlock(&m);
}

static void on_notify(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                      AbsoluteTime ts)
{
	(void)owner; (void)es; (void)cmd; (void)ts;
	pthread_mutex_lock(&m);
	notifications++;
	last_nstatus = st;
	last_ncount = n;
	pthread_mutex_unlock(&m);
}

static void on_signal(IODMAEventSource *es, void *ctx)
{
	(void)es; (void)ctx;
	pthread_mutex_lock(&m);
	signals++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&m);
}

static void count_block(void *ctx, const void *a, vm_size_t sz, iomem_alloc_family f, const char *call)
{
	(void)a; (void)sz; (void)f; (void)call;
	++*(unsigned *)ctx;
}

static unsigned live_blocks(void)
{
	unsigned n = 0;
	iomem_leak_report(count_block, &n);
	return n;
}

static uint64_t wired(void)
{
	iomem_posix_machine_stats_t st;
	iomem_posix_machine_stats(&st);
	return st.wired_pages;
}

static void setup(void)
{
	static const iomem_posix_layout lay[NBUF] = { IOMEM_POSIX_LAYOUT_SCATTERED, IOMEM_POSIX_LAYOUT_RUNS,
	                                              IOMEM_POSIX_LAYOUT_HIGH };
	iomem_posix_dma_engine_desc d = { 0xE5u, 2, 0, 0 };
	cap = PGS * (IOByteCount)iomem__platform_page_size();
	FZ_CHECK(cap <= sizeof dev, "page size");
	eng = iomem_posix_dma_engine_create(&d);
	FZ_CHECK(eng != NULL && IODMAController_registerDMAController(eng, 0) == kIOReturnSuccess, "engine");
	for (unsigned i = 0; i <= NBUF; i++) {
		iomem_posix_phys_layout l = { i < NBUF ? lay[i] : IOMEM_POSIX_LAYOUT_RUNS, 3, 7 + i };
		IOBufferMemoryDescriptor *b;
		FZ_CHECK(iomem_posix_set_phys_layout(&l) == kIOReturnSuccess, "layout");
		b = IOBufferMemoryDescriptor_withCapacity(cap, kIODirectionInOut, false);
		FZ_CHECK(b != NULL, "buffer");
		if (i < NBUF) {
			bufs[i] = b;
			mem[i] = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		} else {
			peerbuf = b;
			pmem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		}
	}
	{       /* a channel allocates its translation cache at its first
		 * binding and keeps it for the engine's life: bind both before
		 * the baseline is taken */
		IODMAEventSource *e0 = IODMAEventSource_dmaEventSource(NULL, &fdev, NULL, NULL, 0);
		IODMAEventSource *e1 = IODMAEventSource_dmaEventSource(NULL, &fdev, NULL, NULL, 0);
		FZ_CHECK(e0 != NULL && e1 != NULL, "binding the channels");
		IODMAEventSource_release(e1);
		IODMAEventSource_release(e0);
	}
	fuzz_thread = pthread_self();
	baseline_blocks = live_blocks();
	baseline_wired = wired();
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t x = harness_xorshift64(&s);
		memcpy(p + i, &x, 8);
	}
}

/* The command's window [poff, poff + plen) of buffer b. */
typedef struct cmdw { IODMACommand *cmd; unsigned b; UInt64 poff, plen; bool bounced; } cmdw;

static IODMACommand *mk_cmd(fz *f, IOMemoryDescriptor *md, IOByteCount len, UInt64 *poff, UInt64 *plen,
                            unsigned *bits_out)
{
	static const unsigned bitsv[4] = { 0, 64, 32, 40 };
	unsigned bits = bitsv[fz_u8(f) % 4];
	UInt64 maxseg = (fz_u8(f) & 1) ? 0 : 1 + fz_u16(f);
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, (UInt8)bits, maxseg,
	                                                   IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	IOReturn r;
	FZ_CHECK(cmd != NULL, "command (bits %u, maxSeg %llu)", bits, (unsigned long long)maxseg);
	FZ_CHECK(IODMACommand_setMemoryDescriptor(cmd, md, false) == kIOReturnSuccess, "setMemoryDescriptor");
	*poff = fz_u16(f) % len;
	*plen = 1 + fz_u16(f) % (len - *poff);
	if (fz_u8(f) % 4 == 0) {
		*poff = 0;
		*plen = len;
	}
	r = IODMACommand_prepare(cmd, *poff, *plen, true, true);
	FZ_CHECK(r == kIOReturnSuccess, "prepare(%llu, %llu): %#x", (unsigned long long)*poff,
	         (unsigned long long)*plen, (unsigned)r);
	*bits_out = bits;
	return cmd;
}

static void rm_cmd(IODMACommand *cmd)
{
	FZ_CHECK(IODMACommand_complete(cmd, true, true) == kIOReturnSuccess, "complete");
	FZ_CHECK(IODMACommand_clearMemoryDescriptor(cmd, false) == kIOReturnSuccess, "clear");
	IODMACommand_release(cmd);
}

/* Waits until the asynchronous completion is queued, then delivers it on
 * this thread. */
static void drain(IODMAEventSource *es, unsigned want_signals)
{
	UInt32 ran;
	pthread_mutex_lock(&m);
	while (signals < want_signals)
		pthread_cond_wait(&cv, &m);
	pthread_mutex_unlock(&m);
	ran = iomem_dma_event_source_run(es);
	FZ_CHECK(ran == 1, "%u actions ran for one completion", ran);
}

FZ_MODEL static bool same(const unsigned char *a, const unsigned char *b, size_t n)
{
	return memcmp(a, b, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	fz f = { data, size };
	IODMAEventSource *es;
	IODMACommand *cmd, *peer = NULL;
	UInt64 poff, plen, peer_off = 0, peer_len = 0;
	unsigned b, bits, peer_bits, frame = 1, expect_signals = 0, expect_completions = 0;
	bool async, have_dev = false;
	IOByteCount devlen = 0;
	UInt32 ch;

	if (!ready) {
		setup();
		ready = true;
	}
	fz_panic_count = 0;
	b = fz_u8(&f) % NBUF;
	fill(mem[b], cap, fz_u64(&f));
	memcpy(shadow, mem[b], cap);
	cmd = mk_cmd(&f, bufs[b], cap, &poff, &plen, &bits);
	async = fz_u8(&f) & 1;
	pthread_mutex_lock(&m);
	signals = completions = notifications = 0;
	last_cmd = NULL;
	wrong_thread = false;
	pthread_mutex_unlock(&m);
	es = IODMAEventSource_dmaEventSource(NULL, &fdev, async ? on_complete : NULL, on_notify, 0);
	FZ_CHECK(es != NULL, "event source");
	if (async)
		FZ_CHECK(iomem_dma_event_source_setWorkSignal(es, on_signal, NULL) == kIOReturnSuccess, "setWorkSignal");
	ch = iomem_dma_event_source_getDMAIndex(es);
	FZ_CHECK(ch < 2, "channel %u", ch);

	for (int op = 0; op < 12 && fz_more(&f); op++) {
		uint8_t k = fz_u8(&f);
		switch (k % 8) {
		case 0: {                          /* the device side: a buffer */
			IOByteCount l = (fz_u8(&f) & 1) ? cap : fz_u16(&f) % (cap + 1);
			IOReturn r = iomem_posix_dma_set_device_buffer(eng, ch, l ? dev : NULL, l);
			FZ_CHECK(r == kIOReturnSuccess, "set_device_buffer(%llu): %#x", (unsigned long long)l, (unsigned)r);
			fill(dev, cap, fz_u64(&f));
			have_dev = l != 0;
			devlen = l;
			if (peer != NULL) {
				rm_cmd(peer);
				peer = NULL;
			}
			break;
		}
		case 1: {                          /* the device side: a peer command */
			IOReturn r;
			if (peer != NULL)
				rm_cmd(peer);
			fill(pmem, cap, fz_u64(&f));
			peer = mk_cmd(&f, peerbuf, cap, &peer_off, &peer_len, &peer_bits);
			r = iomem_posix_dma_set_peer(eng, ch, peer);
			FZ_CHECK(r == kIOReturnSuccess, "set_peer: %#x", (unsigned)r);
			have_dev = true;
			devlen = peer_len;
			break;
		}
		case 2: case 3: case 4: {          /* a transfer */
			IODirection dir = (k & 8) ? kIODirectionIn : kIODirectionOut;
			IOByteCount off = fz_u8(&f) % 4 == 0 ? plen + fz_u8(&f) % 3 : fz_u16(&f) % (plen + 1);
			IOByteCount cnt = fz_u8(&f) % 3 == 0 ? 0 : fz_u16(&f) % (plen + 2), n;
			IOReturn want = kIOReturnSuccess, r;
			unsigned char *side = peer ? pmem + peer_off : dev;
			if (off > plen || (cnt != 0 && cnt > plen - off))
				want = kIOReturnBadArgument;
			n = cnt ? cnt : (off <= plen ? plen - off : 0);
			if (want == kIOReturnSuccess && !have_dev)
				want = kIOReturnNotReady;
			if (want == kIOReturnSuccess && devlen < n)
				want = kIOReturnNoSpace;
			r = IODMAEventSource_startDMACommand(es, cmd, dir, cnt, off);
			FZ_CHECK(r == want, "start(%s, count %llu, offset %llu of %llu, device %llu): %#x, expected %#x",
			         dir == kIODirectionIn ? "In" : "Out", (unsigned long long)cnt, (unsigned long long)off,
			         (unsigned long long)plen, (unsigned long long)devlen, (unsigned)r, (unsigned)want);
			if (r != kIOReturnSuccess)
				break;
			expect_completions++;
			if (async) {
				drain(es, ++expect_signals);
				pthread_mutex_lock(&m);
				FZ_CHECK(completions == expect_completions && last_status == kIOReturnSuccess && last_count == n &&
				         last_cmd == cmd && !wrong_thread, "completion %u/%u: status %#x count %llu (want %llu)",
				         completions, expect_completions, (unsigned)last_status, (unsigned long long)last_count,
				         (unsigned long long)n);
				pthread_mutex_unlock(&m);
			}
			pthread_mutex_lock(&m);
			FZ_CHECK(notifications == expect_completions && last_nstatus == kIOReturnSuccess && last_ncount == n,
			         "notification %u/%u: status %#x count %llu (want %llu)", notifications, expect_completions,
			         (unsigned)last_nstatus, (unsigned long long)last_ncount, (unsigned long long)n);
			pthread_mutex_unlock(&m);
			{
				IODMACommand *q = NULL;
				IOByteCount qn = 0;
				FZ_CHECK(IODMAEventSource_queryDMACommand(es, &q, &qn, true) == kIOReturnSuccess && q == cmd &&
				         qn == n - n % frame, "query: %p %llu, want %p %llu", (void *)q, (unsigned long long)qn,
				         (void *)cmd, (unsigned long long)(n - n % frame));
			}
			/* the bytes: complete (copies bounced In bytes back), check, re-prepare */
			FZ_CHECK(IODMACommand_complete(cmd, true, true) == kIOReturnSuccess, "complete");
			if (dir == kIODirectionOut) {
				FZ_CHECK(same(side, shadow + poff + off, n), "Out: %llu bytes at %llu differ",
				         (unsigned long long)n, (unsigned long long)(poff + off));
			} else {
				memcpy(shadow + poff + off, side, n);
				FZ_CHECK(same(mem[b], shadow, cap), "In: memory differs from the model (%llu bytes at %llu)",
				         (unsigned long long)n, (unsigned long long)(poff + off));
			}
			FZ_CHECK(IODMACommand_prepare(cmd, poff, plen, true, true) == kIOReturnSuccess, "re-prepare");
			if (peer != NULL) {          /* the peer's bounce (if any) back too */
				FZ_CHECK(IODMACommand_complete(peer, true, true) == kIOReturnSuccess, "peer complete");
				FZ_CHECK(IODMACommand_prepare(peer, peer_off, peer_len, true, true) == kIOReturnSuccess,
				         "peer re-prepare");
			}
			break;
		}
		case 5: {                          /* FIFO depth, frame size */
			IOByteCount depth = (IOByteCount)1 << fz_u8(&f) % 24;
			UInt8 fr = fz_u8(&f) % 9;
			IOReturn r;
			if (fz_u8(&f) & 1)
				depth += 1 + fz_u8(&f);
			r = IODMAEventSource_setFIFODepth(es, depth);
			FZ_CHECK(r == ((depth >= 16 && depth <= ((IOByteCount)1 << 20) && !(depth & (depth - 1)))
			               ? kIOReturnSuccess : kIOReturnBadArgument),
			         "setFIFODepth(%llu): %#x", (unsigned long long)depth, (unsigned)r);
			if (r == kIOReturnSuccess)
				FZ_CHECK(IODMAEventSource_getFIFODepth(es, kIODirectionIn) == depth, "getFIFODepth");
			r = IODMAEventSource_setFrameSize(es, fr);
			FZ_CHECK(r == (fr ? kIOReturnSuccess : kIOReturnBadArgument), "setFrameSize(%u): %#x", fr, (unsigned)r);
			if (fr)
				frame = fr;
			break;
		}
		case 6: {                          /* nothing running: a stop is refused, bad directions */
			FZ_CHECK(IODMAEventSource_stopDMACommand(es, k & 16, (k & 32) ? 1000 : UINT64_MAX) == kIOReturnNotReady,
			         "stop with nothing running");
			FZ_CHECK(IODMAEventSource_startDMACommand(es, cmd, (k & 64) ? kIODirectionInOut : kIODirectionNone, 0, 0) ==
			         kIOReturnBadArgument, "start with a bad direction");
			FZ_CHECK(IODMAEventSource_startDMACommand(es, NULL, kIODirectionOut, 0, 0) == kIOReturnBadArgument,
			         "start of NULL");
			break;
		}
		default: {                         /* an unprepared command */
			IODMACommand *u = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kUnmapped,
			                                                 0, 1, NULL, NULL);
			FZ_CHECK(u != NULL, "command");
			FZ_CHECK(IODMAEventSource_startDMACommand(es, u, kIODirectionOut, 0, 0) == kIOReturnNotReady,
			         "start of an unprepared command");
			IODMACommand_release(u);
			break;
		}
		}
		FZ_NO_REPORTS();
	}

	pthread_mutex_lock(&m);
	FZ_CHECK(completions == (async ? expect_completions : 0), "%u completions, %u expected", completions,
	         async ? expect_completions : 0);
	pthread_mutex_unlock(&m);
	FZ_CHECK(iomem_posix_dma_set_device_buffer(eng, ch, NULL, 0) == kIOReturnSuccess, "clear the device side");
	IODMAEventSource_release(es);
	if (peer != NULL)
		rm_cmd(peer);
	rm_cmd(cmd);
	iomem_bounce_pool_trim();
	FZ_NO_REPORTS();
	{       /* the engine's threads drop their last references a moment after
		 * the delivery: wait for them (bounded) */
		unsigned n = live_blocks();
		for (int i = 0; i < 20000 && n != baseline_blocks; i++) {
			usleep(100);
			n = live_blocks();
		}
		FZ_CHECK(n == baseline_blocks, "%u live blocks, %u after setup", n, baseline_blocks);
	}
	FZ_CHECK(wired() == baseline_wired, "%llu pages wired, %llu after setup", (unsigned long long)wired(),
	         (unsigned long long)baseline_wired);
	return 0;
}
