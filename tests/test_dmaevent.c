/* SPDX-License-Identifier: MIT */
/* tests/test_dmaevent.c - IODMAController (reference §2.2) and
 * IODMAEventSource (§2.3) over a small test controller defined here, then
 * the POSIX software DMA engine (>>posixdma) with real commands. Contract
 * violations are reported only with IOMEM_DEBUG (the release preset
 * expects none). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
/* getController's wait for a controller not registered yet: short here, so
 * the lookups that must fail do not take the default second each */
#define TEST_WAIT_NS 500000000ull
#define IOMEM_DMA_CONTROLLER_WAIT_NS TEST_WAIT_NS
#include "iomem_dma.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define DBG_REPORTS(n) (IOMEM__DEBUG ? (n) : 0)

/* ---- a test controller ------------------------------------------------- */
/*
 * Four channels. A start is recorded; mode INLINE completes it inside the
 * start call, DEFER leaves it for tc_finish() (from the test or another
 * thread), REFUSE fails the start, NOINDEX makes initDMAChannel succeed
 * without assigning a channel. No IODMACommand is ever dereferenced: the
 * commands here are distinct dummy addresses.
 */
enum { TC_INLINE, TC_DEFER, TC_REFUSE, TC_NOINDEX, TC_FAILINIT };
#define TC_CHANNELS 4

typedef struct tc_chan {
	IODMAEventSource *es;
	IODMACommand     *cmd;
	bool              running;
	IODirection       dir;
	IOByteCount       count, offset;
	IOByteCount       fifo;
	UInt8             frame;
	UInt32            req;
} tc_chan;

typedef struct tc {
	pthread_mutex_t m;
	int             mode;
	tc_chan         ch[TC_CHANNELS];
	atomic_int      starts, stops, frees, signals, chan_frees;
} tc;

static IOReturn tc_init(IODMAController *c, const iomem_dma_provider *p, IODMAEventSource *es, UInt32 *idx,
                        UInt32 req)
{
	tc *t = iomem_dma_controller_getContext(c);
	(void)p;
	if (t->mode == TC_FAILINIT)
		return kIOReturnNoChannels;
	if (t->mode == TC_NOINDEX)
		return kIOReturnSuccess;
	pthread_mutex_lock(&t->m);
	for (UInt32 i = 0; i < TC_CHANNELS; i++) {
		if (t->ch[i].es == NULL) {
			t->ch[i].es = es;
			t->ch[i].req = req;
			t->ch[i].fifo = 64;
			*idx = i;
			pthread_mutex_unlock(&t->m);
			return kIOReturnSuccess;
		}
	}
	pthread_mutex_unlock(&t->m);
	return kIOReturnNoChannels;
}

static void tc_free_chan(IODMAController *c, UInt32 idx, IODMAEventSource *es)
{
	tc *t = iomem_dma_controller_getContext(c);
	pthread_mutex_lock(&t->m);
	cr_assert_eq(t->ch[idx].es, es);
	t->ch[idx].es = NULL;
	pthread_mutex_unlock(&t->m);
	atomic_fetch_add(&t->chan_frees, 1);
}

/* Complete channel @idx's command with @status/@count. */
static void tc_finish(IODMAController *c, UInt32 idx, IOReturn status, IOByteCount count)
{
	tc *t = iomem_dma_controller_getContext(c);
	pthread_mutex_lock(&t->m);
	IODMAEventSource *es = t->ch[idx].es;
	IODMACommand *cmd = t->ch[idx].cmd;
	cr_assert(t->ch[idx].running, "channel %u not running", idx);
	t->ch[idx].running = false;
	pthread_mutex_unlock(&t->m);
	IODMAController_notifyDMACommand(c, es, cmd, status, count, 1234);
	IODMAController_completeDMACommand(c, es, cmd);
}

static IOReturn tc_start(IODMAController *c, UInt32 idx, IODMACommand *cmd, IODirection dir, IOByteCount count,
                         IOByteCount offset)
{
	tc *t = iomem_dma_controller_getContext(c);
	atomic_fetch_add(&t->starts, 1);
	if (t->mode == TC_REFUSE)
		return kIOReturnNotReady;
	pthread_mutex_lock(&t->m);
	if (t->ch[idx].running) {
		pthread_mutex_unlock(&t->m);
		return kIOReturnBusy;
	}
	t->ch[idx].running = true;
	t->ch[idx].cmd = cmd;
	t->ch[idx].dir = dir;
	t->ch[idx].count = count;
	t->ch[idx].offset = offset;
	pthread_mutex_unlock(&t->m);
	if (t->mode == TC_INLINE)
		tc_finish(c, idx, kIOReturnSuccess, count);
	return kIOReturnSuccess;
}

static IOReturn tc_stop(IODMAController *c, UInt32 idx, bool flush, uint64_t timeout)
{
	tc *t = iomem_dma_controller_getContext(c);
	(void)flush; (void)timeout;
	atomic_fetch_add(&t->stops, 1);
	pthread_mutex_lock(&t->m);
	bool running = t->ch[idx].running;
	pthread_mutex_unlock(&t->m);
	if (!running)
		return kIOReturnNotReady;
	tc_finish(c, idx, kIOReturnAborted, 7);
	return kIOReturnSuccess;
}

static IOReturn tc_query(IODMAController *c, UInt32 idx, IODMACommand **cmd, IOByteCount *n, bool wait)
{
	tc *t = iomem_dma_controller_getContext(c);
	(void)wait;
	pthread_mutex_lock(&t->m);
	if (cmd)
		*cmd = t->ch[idx].cmd;
	if (n)
		*n = t->ch[idx].running ? 5 : 0;
	pthread_mutex_unlock(&t->m);
	return kIOReturnSuccess;
}

static IOByteCount tc_getfifo(IODMAController *c, UInt32 idx, IODirection d)
{
	tc *t = iomem_dma_controller_getContext(c);
	return t->ch[idx].fifo + (d == kIODirectionIn ? 1 : 0);
}
static IOReturn tc_setfifo(IODMAController *c, UInt32 idx, IOByteCount depth)
{
	tc *t = iomem_dma_controller_getContext(c);
	if (depth == 0)
		return kIOReturnBadArgument;
	t->ch[idx].fifo = depth;
	return kIOReturnSuccess;
}
static IOByteCount tc_validfifo(IODMAController *c, UInt32 idx, IOByteCount depth, IODirection d)
{
	(void)c; (void)idx; (void)d;
	return depth & ~(IOByteCount)3;
}
static IOReturn tc_setframe(IODMAController *c, UInt32 idx, UInt8 b)
{
	tc *t = iomem_dma_controller_getContext(c);
	t->ch[idx].frame = b;
	return kIOReturnSuccess;
}
static IOReturn tc_setconfig(IODMAController *c, UInt32 idx, const iomem_dma_provider *p, UInt32 req)
{
	tc *t = iomem_dma_controller_getContext(c);
	if (p == NULL)
		return kIOReturnBadArgument;
	t->ch[idx].req = req;
	return kIOReturnSuccess;
}
static bool tc_validconfig(IODMAController *c, UInt32 idx, const iomem_dma_provider *p, UInt32 req)
{
	(void)c; (void)idx;
	return p != NULL && req < 8;
}
static UInt64 tc_frames(IODMAController *c, UInt32 idx)
{
	tc *t = iomem_dma_controller_getContext(c);
	return 100 + idx + t->ch[idx].frame;
}
static void tc_signal(IODMAController *c, IODMAEventSource *es)
{
	tc *t = iomem_dma_controller_getContext(c);
	(void)es;
	atomic_fetch_add(&t->signals, 1);
}
static void tc_free(IODMAController *c)
{
	tc *t = iomem_dma_controller_getContext(c);
	atomic_fetch_add(&t->frees, 1);
}

static const iomem_dma_controller_ops tc_ops = {
	.name = "test", .initDMAChannel = tc_init, .freeDMAChannel = tc_free_chan,
	.startDMACommand = tc_start, .stopDMACommand = tc_stop, .queryDMACommand = tc_query,
	.getFIFODepth = tc_getfifo, .setFIFODepth = tc_setfifo, .validFIFODepth = tc_validfifo,
	.setFrameSize = tc_setframe, .setDMAConfig = tc_setconfig, .validDMAConfig = tc_validconfig,
	.getFrameCount = tc_frames, .signalWorkAvailable = tc_signal, .free = tc_free,
};
/* only the required hooks */
static const iomem_dma_controller_ops tc_min_ops = {
	.name = "min", .initDMAChannel = tc_init, .startDMACommand = tc_start,
	.stopDMACommand = tc_stop, .queryDMACommand = tc_query,
};

static tc T;
static const UInt32 tc_parent[] = { 0xC0FFEE01u };
static iomem_dma_provider tc_soc = { 0xC0FFEE01u, NULL, 0, NULL };
static iomem_dma_provider tc_dev = { 0x77, tc_parent, 1, NULL };

static IODMAController *tc_setup(const iomem_dma_controller_ops *ops, int mode)
{
	memset(&T, 0, sizeof T);
	pthread_mutex_init(&T.m, NULL);
	T.mode = mode;
	IODMAController *c = iomem_dma_controller_withOps(ops, &T, &tc_soc);
	cr_assert_not_null(c);
	cr_assert_eq(IODMAController_registerDMAController(c, 0), kIOReturnSuccess);
	return c;
}

static void tc_teardown(IODMAController *c)
{
	cr_assert_eq(iomem_dma_controller_unregister(c), kIOReturnSuccess);
	IODMAController_release(c);
	cr_assert_eq(atomic_load(&T.frees), 1, "controller freed %d times", atomic_load(&T.frees));
}

/* completion bookkeeping shared by the actions */
typedef struct rec_owner {
	atomic_int      completions, notifications;
	IODMACommand   *last_cmd;
	IOReturn        last_status;
	IOByteCount     last_count;
	AbsoluteTime    last_ts;
	IODMAEventSource *last_es;
	bool            release_in_action;
} rec_owner;

static void on_complete(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                        AbsoluteTime ts)
{
	rec_owner *o = owner;
	o->last_cmd = cmd;
	o->last_status = st;
	o->last_count = n;
	o->last_ts = ts;
	o->last_es = es;
	atomic_fetch_add(&o->completions, 1);
	if (o->release_in_action)
		IODMAEventSource_release(es);
}

static void on_notify(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                      AbsoluteTime ts)
{
	rec_owner *o = owner;
	(void)es; (void)cmd; (void)st; (void)n; (void)ts;
	atomic_fetch_add(&o->notifications, 1);
}

/* The usual start: the test controller (tc_ops) in @mode and one event
 * source on tc_dev for @o. */
static IODMAEventSource *tc_open(IODMAController **c, int mode, rec_owner *o, IODMAEventSource_Action completion,
                                 IODMAEventSource_Action notification)
{
	IODMAEventSource *es;
	*c = tc_setup(&tc_ops, mode);
	es = IODMAEventSource_dmaEventSource(o, &tc_dev, completion, notification, 0);
	cr_assert_not_null(es);
	return es;
}

/* ... and its end */
static void tc_close(IODMAController *c, IODMAEventSource *es)
{
	IODMAEventSource_release(es);
	tc_teardown(c);
}

static unsigned char dummy_cmds[16];
#define CMD(i) ((IODMACommand *)(void *)&dummy_cmds[(i)])

/* ---- registry and lookup ---------------------------------------------- */

IOMEM_TEST(dmaevent, controller_name_is_iokits)
{
	char name[IOMEM_DMA_CONTROLLER_NAME_SIZE];
	cr_assert_str_eq(IODMAController_createControllerName(0x1A2b3C4d, name), "IODMAController1A2B3C4D");
	cr_assert_str_eq(IODMAController_createControllerName(0, name), "IODMAController00000000");
	cr_assert_str_eq(IODMAController_createControllerName(0xFFFFFFFFu, name), "IODMAControllerFFFFFFFF");
	cr_assert_null(IODMAController_createControllerName(5, NULL));
	cr_assert_str_eq(iomem_dma_controller_getName(NULL), "");
}

IOMEM_TEST(dmaevent, withops_requires_the_pure_virtuals)
{
	iomem_dma_controller_ops ops = tc_min_ops;
	cr_assert_null(iomem_dma_controller_withOps(NULL, NULL, NULL));
	ops.initDMAChannel = NULL;
	cr_assert_null(iomem_dma_controller_withOps(&ops, NULL, NULL));
	ops = tc_min_ops; ops.startDMACommand = NULL;
	cr_assert_null(iomem_dma_controller_withOps(&ops, NULL, NULL));
	ops = tc_min_ops; ops.stopDMACommand = NULL;
	cr_assert_null(iomem_dma_controller_withOps(&ops, NULL, NULL));
	ops = tc_min_ops; ops.queryDMACommand = NULL;
	cr_assert_null(iomem_dma_controller_withOps(&ops, NULL, NULL));
	IODMAController *c = iomem_dma_controller_withOps(&tc_min_ops, &T, NULL);
	cr_assert_not_null(c);
	cr_assert_str_eq(iomem_dma_controller_getName(c), "IODMAController00000000");
	cr_assert_eq(iomem_dma_controller_getContext(c), &T);
	cr_assert_null(iomem_dma_controller_getContext(NULL));
	IODMAController_release(c);
	IODMAController_release(NULL);
	IODMAController_retain(NULL);
}

IOMEM_TEST(dmaevent, register_lookup_unregister)
{
	IODMAController *c = tc_setup(&tc_ops, TC_INLINE);
	cr_assert_str_eq(iomem_dma_controller_getName(c), "IODMAControllerC0FFEE01");
	/* a second controller with the same provider name is refused */
	IODMAController *dup = iomem_dma_controller_withOps(&tc_ops, &T, &tc_soc);
	cr_assert_eq(iomem_dma_controller_register(dup), kIOReturnExclusiveAccess);
	cr_assert_eq(iomem_dma_controller_register(c), kIOReturnExclusiveAccess);
	cr_assert_eq(iomem_dma_controller_unregister(dup), kIOReturnNotFound);
	IODMAController_release(dup);           /* frees it: T.frees 1 */
	cr_assert_eq(atomic_load(&T.frees), 1);
	atomic_store(&T.frees, 0);
	cr_assert_eq(IODMAController_registerDMAController(NULL, 0), kIOReturnBadArgument);
	cr_assert_eq(iomem_dma_controller_unregister(NULL), kIOReturnBadArgument);

	/* one dma-parent: every index */
	IODMAController *f = IODMAController_getController(&tc_dev, 0);
	cr_assert_eq(f, c);
	IODMAController_release(f);
	f = IODMAController_getController(&tc_dev, 57);
	cr_assert_eq(f, c);
	IODMAController_release(f);
	/* an array: indexed */
	const UInt32 arr[] = { 0x1, 0xC0FFEE01u, 0x2 };
	iomem_dma_provider dev3 = { 0x78, arr, 3, NULL };
	f = IODMAController_getController(&dev3, 1);
	cr_assert_eq(f, c);
	IODMAController_release(f);
	cr_assert_eq(iomem_dma_controller_wait(&dev3, 0, 0, &f), kIOReturnTimeout);   /* not registered */
	cr_assert_null(f);
	cr_assert_eq(iomem_dma_controller_wait(&dev3, 2, 0, &f), kIOReturnTimeout);
	cr_assert_null(f);
	iomem_test_expect_reports(0);
	/* out of range: IOKit panics */
	cr_assert_null(IODMAController_getController(&dev3, 3));
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IODMAController_getController");
	/* no provider, no dma-parent */
	cr_assert_null(IODMAController_getController(NULL, 0));
	iomem_dma_provider none = { 0x79, NULL, 0, NULL };
	cr_assert_null(IODMAController_getController(&none, 0));
	iomem_dma_provider empty = { 0x79, arr, 0, NULL };
	cr_assert_null(IODMAController_getController(&empty, 0));

	tc_teardown(c);
	cr_assert_eq(iomem_dma_controller_wait(&tc_dev, 0, 0, &f), kIOReturnTimeout);
	cr_assert_null(f);
}

/* ---- getController waits for a controller registered later ----------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct late_reg {
	IODMAController *c;
	unsigned         delay_ms;
	IOReturn         r;
} late_reg;

static void *late_register(void *arg)
{
	late_reg *l = arg;
	usleep(l->delay_ms * 1000u);
	l->r = iomem_dma_controller_register(l->c);
	return NULL;
}

IOMEM_TEST(dmaevent, getController_waits_for_registration)
{
	memset(&T, 0, sizeof T);
	pthread_mutex_init(&T.m, NULL);
	T.mode = TC_INLINE;
	IODMAController *c = iomem_dma_controller_withOps(&tc_ops, &T, &tc_soc);   /* not registered yet */
	IODMAController *f = c;
	cr_assert_not_null(c);

	/* timeout 0 looks once; a bounded wait gives up after its timeout */
	cr_assert_eq(iomem_dma_controller_wait(&tc_dev, 0, 0, &f), kIOReturnTimeout);
	cr_assert_null(f);
	uint64_t t0 = mono_ns();
	cr_assert_eq(iomem_dma_controller_wait(&tc_dev, 0, 30000000u, &f), kIOReturnTimeout);
	cr_assert_geq(mono_ns() - t0, 30000000u, "gave up before its timeout");
	cr_assert_null(f);

	/* another thread registers it 50 ms later: the waiter gets it then */
	late_reg l = { c, 50, kIOReturnError };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, late_register, &l), 0);
	t0 = mono_ns();
	cr_assert_eq(iomem_dma_controller_wait(&tc_dev, 0, 10000000000ull, &f), kIOReturnSuccess);
	uint64_t waited = mono_ns() - t0;
	pthread_join(th, NULL);
	cr_assert_eq(l.r, kIOReturnSuccess);
	cr_assert_eq(f, c);
	cr_assert_geq(waited, 40000000u, "found after %llu ns: it did not wait for the registration",
	              (unsigned long long)waited);
	IODMAController_release(f);

	/* a registration under another name does not end the wait */
	iomem_dma_provider other_soc = { 0xC0FFEE02u, NULL, 0, NULL };
	IODMAController *other = iomem_dma_controller_withOps(&tc_min_ops, &T, &other_soc);
	cr_assert_not_null(other);
	const UInt32 p2[] = { 0xC0FFEE02u, 0xC0FFEE03u };
	iomem_dma_provider dev2 = { 0x90, p2, 2, NULL };
	late_reg lo = { other, 10, kIOReturnError };
	cr_assert_eq(pthread_create(&th, NULL, late_register, &lo), 0);
	t0 = mono_ns();
	cr_assert_eq(iomem_dma_controller_wait(&dev2, 1, 100000000u, &f), kIOReturnTimeout);
	cr_assert_geq(mono_ns() - t0, 100000000u);
	cr_assert_null(f);
	pthread_join(th, NULL);
	cr_assert_eq(lo.r, kIOReturnSuccess);
	cr_assert_eq(iomem_dma_controller_wait(&dev2, 0, 0, &f), kIOReturnSuccess);   /* entry 0 is it */
	cr_assert_eq(f, other);
	IODMAController_release(f);
	cr_assert_eq(iomem_dma_controller_unregister(other), kIOReturnSuccess);
	IODMAController_release(other);
	atomic_store(&T.frees, 0);

	/* IODMAEventSource_dmaEventSource waits through getController */
	cr_assert_eq(iomem_dma_controller_unregister(c), kIOReturnSuccess);
	rec_owner o = { 0 };
	l.delay_ms = 20;
	l.r = kIOReturnError;
	cr_assert_eq(pthread_create(&th, NULL, late_register, &l), 0);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
	pthread_join(th, NULL);
	cr_assert_not_null(es, "the event source did not wait for its controller");
	cr_assert_eq(iomem_dma_event_source_getController(es), c);
	IODMAEventSource_release(es);

	/* getController gives up after IOMEM_DMA_CONTROLLER_WAIT_NS */
	tc_teardown(c);
	t0 = mono_ns();
	cr_assert_null(IODMAController_getController(&tc_dev, 0));
	cr_assert_geq(mono_ns() - t0, TEST_WAIT_NS, "getController did not wait its timeout");

	/* bad arguments: no wait, BadArgument */
	f = (IODMAController *)&T;
	cr_assert_eq(iomem_dma_controller_wait(NULL, 0, UINT64_MAX, &f), kIOReturnBadArgument);
	cr_assert_null(f);
	cr_assert_eq(iomem_dma_controller_wait(&tc_dev, 0, UINT64_MAX, NULL), kIOReturnBadArgument);
	iomem_dma_provider none = { 0x79, NULL, 0, NULL };
	cr_assert_eq(iomem_dma_controller_wait(&none, 0, UINT64_MAX, &f), kIOReturnBadArgument);
	cr_assert_eq(iomem_dma_controller_wait(&dev2, 2, UINT64_MAX, &f), kIOReturnBadArgument);
	iomem_test_expect_reports(DBG_REPORTS(1));   /* out of range: IOKit panics */
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IODMAController_getController");
	cr_assert_null(f);
}

IOMEM_TEST(dmaevent, event_source_creation_failures)
{
	rec_owner o = { 0 };
	cr_assert_null(IODMAEventSource_dmaEventSource(&o, NULL, on_complete, NULL, 0));
	cr_assert_null(IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0));  /* none registered */
	IODMAController *c = tc_setup(&tc_ops, TC_FAILINIT);
	cr_assert_null(IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0));
	T.mode = TC_INLINE;
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 3);
	cr_assert_not_null(es);
	cr_assert_eq(iomem_dma_event_source_getDMAIndex(es), 0);
	cr_assert_eq(T.ch[0].req, 3);
	cr_assert_eq(iomem_dma_event_source_getController(es), c);
	cr_assert_eq(iomem_dma_event_source_getOwner(es), &o);
	/* channels run out */
	IODMAEventSource *more[TC_CHANNELS];
	for (int i = 1; i < TC_CHANNELS; i++) {
		more[i] = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
		cr_assert_not_null(more[i]);
	}
	cr_assert_null(IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0));
	for (int i = 1; i < TC_CHANNELS; i++)
		IODMAEventSource_release(more[i]);
	IODMAEventSource_release(es);
	cr_assert_eq(atomic_load(&T.chan_frees), TC_CHANNELS);
	/* the accessors on NULL */
	cr_assert_eq(iomem_dma_event_source_getDMAIndex(NULL), 0xFFFFFFFFu);
	cr_assert_null(iomem_dma_event_source_getController(NULL));
	cr_assert_null(iomem_dma_event_source_getOwner(NULL));
	IODMAEventSource_release(NULL);
	IODMAEventSource_retain(NULL);
	tc_teardown(c);
}

/* ---- forwarding -------------------------------------------------------- */

static void expect_no_controller_codes(IODMAEventSource *es)
{
	IODMACommand *q = CMD(9);
	IOByteCount n = 99;
	cr_expect_eq(IODMAEventSource_startDMACommand(es, CMD(0), kIODirectionOut, 0, 0), kIOReturnError);
	cr_expect_eq(IODMAEventSource_stopDMACommand(es, false, UINT64_MAX), kIOReturnError);
	cr_expect_eq(IODMAEventSource_queryDMACommand(es, &q, &n, false), kIOReturnError);
	cr_expect_eq(q, CMD(9));
	cr_expect_eq(n, 99);
	cr_expect_eq(IODMAEventSource_getFIFODepth(es, kIODirectionNone), 0);
	cr_expect_eq(IODMAEventSource_setFIFODepth(es, 64), kIOReturnError);
	cr_expect_eq(IODMAEventSource_validFIFODepth(es, 64, kIODirectionOut), (IOByteCount)kIOReturnError);
	cr_expect_eq(IODMAEventSource_setFrameSize(es, 4), kIOReturnError);
	cr_expect_eq(IODMAEventSource_setDMAConfig(es, 1), kIOReturnError);
	cr_expect_eq(IODMAEventSource_validDMAConfig(es, 1), false);
	cr_expect_eq(iomem_dma_event_source_getFrameCount(es), 0);
}

IOMEM_TEST(dmaevent, no_controller_codes)
{
	expect_no_controller_codes(NULL);
	cr_assert_eq(iomem_dma_event_source_run(NULL), 0);
	cr_assert_eq(iomem_dma_event_source_setWorkSignal(NULL, NULL, NULL), kIOReturnBadArgument);
	IODMAEventSource_completeDMACommand(NULL, CMD(0));          /* no-ops */
	IODMAEventSource_notifyDMACommand(NULL, CMD(0), 0, 0, 0);
	/* a controller that gives no channel */
	rec_owner o = { 0 };
	IODMAController *c;
	IODMAEventSource *es = tc_open(&c, TC_NOINDEX, &o, on_complete, NULL);
	cr_assert_not_null(es);
	cr_assert_eq(iomem_dma_event_source_getDMAIndex(es), 0xFFFFFFFFu);
	expect_no_controller_codes(es);
	cr_assert_eq(atomic_load(&T.starts), 0);
	IODMAEventSource_release(es);
	cr_assert_eq(atomic_load(&T.chan_frees), 0);   /* no channel: nothing to free */
	tc_teardown(c);
}

IOMEM_TEST(dmaevent, forwarding_reaches_the_channel)
{
	IODMAController *c = tc_setup(&tc_ops, TC_DEFER);
	rec_owner o = { 0 };
	IODMAEventSource *es0 = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
	cr_assert_eq(iomem_dma_event_source_getDMAIndex(es), 1);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(1), kIODirectionIn, 300, 12), kIOReturnSuccess);
	cr_assert(T.ch[1].running);
	cr_assert_eq(T.ch[1].cmd, CMD(1));
	cr_assert_eq(T.ch[1].dir, kIODirectionIn);
	cr_assert_eq(T.ch[1].count, 300);
	cr_assert_eq(T.ch[1].offset, 12);
	cr_assert(!T.ch[0].running);
	IODMACommand *q = NULL;
	IOByteCount n = 0;
	cr_assert_eq(IODMAEventSource_queryDMACommand(es, &q, &n, false), kIOReturnSuccess);
	cr_assert_eq(q, CMD(1));
	cr_assert_eq(n, 5);
	/* a second start while the channel runs: the controller's answer */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(2), kIODirectionIn, 0, 0), kIOReturnBusy);
	cr_assert_eq(IODMAEventSource_setFIFODepth(es, 128), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_setFIFODepth(es, 0), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_getFIFODepth(es, kIODirectionOut), 128);
	cr_assert_eq(IODMAEventSource_getFIFODepth(es, kIODirectionIn), 129);
	cr_assert_eq(IODMAEventSource_validFIFODepth(es, 131, kIODirectionOut), 128);
	cr_assert_eq(IODMAEventSource_setFrameSize(es, 4), kIOReturnSuccess);
	cr_assert_eq(T.ch[1].frame, 4);
	cr_assert_eq(iomem_dma_event_source_getFrameCount(es), 105);
	cr_assert_eq(IODMAEventSource_setDMAConfig(es, 6), kIOReturnSuccess);
	cr_assert_eq(T.ch[1].req, 6);
	cr_assert(IODMAEventSource_validDMAConfig(es, 7));
	cr_assert(!IODMAEventSource_validDMAConfig(es, 8));
	/* stop: the controller completes with Aborted */
	cr_assert_eq(IODMAEventSource_stopDMACommand(es, true, 1000), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_stopDMACommand(es, false, UINT64_MAX), kIOReturnNotReady);
	cr_assert_eq(iomem_dma_event_source_run(es), 1);
	cr_assert_eq(o.last_status, kIOReturnAborted);
	cr_assert_eq(o.last_count, 7);
	IODMAEventSource_release(es);
	IODMAEventSource_release(es0);
	tc_teardown(c);
}

IOMEM_TEST(dmaevent, missing_optional_hooks)
{
	IODMAController *c = tc_setup(&tc_min_ops, TC_DEFER);
	rec_owner o = { 0 };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
	cr_assert_not_null(es);
	cr_assert_eq(IODMAEventSource_getFIFODepth(es, kIODirectionOut), 0);
	cr_assert_eq(IODMAEventSource_setFIFODepth(es, 64), kIOReturnUnsupported);
	cr_assert_eq(IODMAEventSource_validFIFODepth(es, 64, kIODirectionOut), 0);
	cr_assert_eq(IODMAEventSource_setFrameSize(es, 4), kIOReturnUnsupported);
	cr_assert_eq(IODMAEventSource_setDMAConfig(es, 1), kIOReturnUnsupported);
	cr_assert(!IODMAEventSource_validDMAConfig(es, 1));
	cr_assert_eq(iomem_dma_event_source_getFrameCount(es), 0);
	/* no signal hook: the owner polls */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(0), kIODirectionOut, 0, 0), kIOReturnSuccess);
	tc_finish(c, 0, kIOReturnSuccess, 10);
	cr_assert_eq(atomic_load(&o.completions), 0);
	cr_assert_eq(iomem_dma_event_source_run(es), 1);
	cr_assert_eq(atomic_load(&o.completions), 1);
	IODMAEventSource_release(es);     /* no freeDMAChannel hook: fine */
	cr_assert_eq(iomem_dma_controller_unregister(c), kIOReturnSuccess);
	IODMAController_release(c);
}

/* ---- asynchronous completion ------------------------------------------- */

IOMEM_TEST(dmaevent, async_completion_exactly_once_with_notify_values)
{
	rec_owner o = { 0 };
	IODMAController *c;
	IODMAEventSource *es = tc_open(&c, TC_DEFER, &o, on_complete, on_notify);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(3), kIODirectionOut, 0, 0), kIOReturnSuccess);
	cr_assert_eq(iomem_dma_event_source_run(es), 0);             /* nothing yet */
	tc_finish(c, 0, kIOReturnUnderrun, 4000);
	cr_assert_eq(atomic_load(&o.notifications), 1);              /* at once, on the controller's thread */
	cr_assert_eq(atomic_load(&T.signals), 1);                    /* the controller's callback hook */
	cr_assert_eq(atomic_load(&o.completions), 0);                /* queued, not delivered */
	cr_assert_eq(iomem_dma_event_source_run(es), 1);
	cr_assert_eq(iomem_dma_event_source_run(es), 0);
	cr_assert_eq(atomic_load(&o.completions), 1);
	cr_assert_eq(o.last_cmd, CMD(3));
	cr_assert_eq(o.last_status, kIOReturnUnderrun);
	cr_assert_eq(o.last_count, 4000);
	cr_assert_eq(o.last_ts, 1234);
	cr_assert_eq(o.last_es, es);
	/* several queued: delivered in completion order */
	T.mode = TC_INLINE;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(i), kIODirectionOut, (IOByteCount)i, 0),
		             kIOReturnSuccess);
	cr_assert_eq(iomem_dma_event_source_run(es), 5);
	cr_assert_eq(o.last_cmd, CMD(4));
	cr_assert_eq(o.last_count, 4);
	cr_assert_eq(atomic_load(&o.completions), 6);
	cr_assert_eq(atomic_load(&o.notifications), 6);
	tc_close(c, es);
}

IOMEM_TEST(dmaevent, refused_start_delivers_nothing)
{
	rec_owner o = { 0 };
	IODMAController *c;
	IODMAEventSource *es = tc_open(&c, TC_REFUSE, &o, on_complete, NULL);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(0), kIODirectionOut, 0, 0), kIOReturnNotReady);
	cr_assert_eq(iomem_dma_event_source_run(es), 0);
	/* synchronous too: returns the error, not busy afterwards */
	IODMAEventSource *ss = IODMAEventSource_dmaEventSource(&o, &tc_dev, NULL, NULL, 0);
	cr_assert_eq(IODMAEventSource_startDMACommand(ss, CMD(0), kIODirectionOut, 0, 0), kIOReturnNotReady);
	T.mode = TC_INLINE;
	cr_assert_eq(IODMAEventSource_startDMACommand(ss, CMD(0), kIODirectionOut, 0, 0), kIOReturnSuccess);
	IODMAEventSource_release(ss);
	tc_close(c, es);
}

IOMEM_TEST(dmaevent, complete_of_a_command_not_started)
{
	rec_owner o = { 0 };
	IODMAController *c;
	IODMAEventSource *es = tc_open(&c, TC_DEFER, &o, on_complete, NULL);
	IODMAController_completeDMACommand(c, es, CMD(5));
	iomem_test_expect_reports(DBG_REPORTS(1));
	if (IOMEM__DEBUG)
		iomem_test_expect_report_has("IODMAEventSource_completeDMACommand");
	cr_assert_eq(iomem_dma_event_source_run(es), 0);
	/* a doubled complete: the second is the report */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(1), kIODirectionOut, 0, 0), kIOReturnSuccess);
	tc_finish(c, 0, kIOReturnSuccess, 1);
	IODMAController_completeDMACommand(c, es, CMD(1));
	iomem_test_expect_reports(DBG_REPORTS(2));
	cr_assert_eq(iomem_dma_event_source_run(es), 1);
	cr_assert_eq(atomic_load(&o.completions), 1);
	tc_close(c, es);
}

static void count_signal(IODMAEventSource *es, void *ctx)
{
	(void)es;
	atomic_fetch_add((atomic_int *)ctx, 1);
}

IOMEM_TEST(dmaevent, work_signal_replaces_the_controller_hook)
{
	IODMAController *c = tc_setup(&tc_ops, TC_INLINE);
	rec_owner o = { 0 };
	atomic_int sig = 0;
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
	cr_assert_eq(iomem_dma_event_source_setWorkSignal(es, count_signal, &sig), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(0), kIODirectionOut, 0, 0), kIOReturnSuccess);
	cr_assert_eq(atomic_load(&sig), 1);
	cr_assert_eq(atomic_load(&T.signals), 0);
	cr_assert_eq(iomem_dma_event_source_run(es), 1);
	cr_assert_eq(iomem_dma_event_source_setWorkSignal(es, NULL, NULL), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(0), kIODirectionOut, 0, 0), kIOReturnSuccess);
	cr_assert_eq(atomic_load(&T.signals), 1);
	cr_assert_eq(iomem_dma_event_source_run(es), 1);
	tc_close(c, es);
}

IOMEM_TEST(dmaevent, callback_releases_the_event_source)
{
	IODMAController *c = tc_setup(&tc_ops, TC_DEFER);
	rec_owner o = { 0 };
	o.release_in_action = true;
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(0), kIODirectionOut, 0, 0), kIOReturnSuccess);
	/* the owner lets go of it while the command runs: the start's
	 * reference keeps it alive */
	IODMAEventSource_retain(es);
	IODMAEventSource_release(es);
	tc_finish(c, 0, kIOReturnSuccess, 1);
	cr_assert_eq(atomic_load(&T.chan_frees), 0);
	/* the drainer's thread holds its own reference, as documented: here
	 * the owner's is the one the action drops */
	cr_assert_eq(iomem_dma_event_source_run(es), 1);
	cr_assert_eq(atomic_load(&T.chan_frees), 1);      /* freed after the action */
	tc_teardown(c);
}

/* ---- synchronous ------------------------------------------------------- */

typedef struct sync_arg {
	IODMAEventSource *es;
	IODMACommand     *cmd;
	IOReturn          ret;
	atomic_int        done;
} sync_arg;

static void *sync_starter(void *p)
{
	sync_arg *a = p;
	a->ret = IODMAEventSource_startDMACommand(a->es, a->cmd, kIODirectionIn, 0, 0);
	atomic_store(&a->done, 1);
	return NULL;
}

static void wait_running(int ch)
{
	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(&T.m);
		bool r = T.ch[ch].running;
		pthread_mutex_unlock(&T.m);
		if (r)
			return;
		usleep(100);
	}
	cr_assert_fail("channel %d never started", ch);
}

IOMEM_TEST(dmaevent, sync_start_blocks_and_busy_rule)
{
	rec_owner o = { 0 };
	IODMAController *c;
	IODMAEventSource *es = tc_open(&c, TC_DEFER, &o, NULL, on_notify);
	sync_arg a = { es, CMD(2), -1, 0 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, sync_starter, &a), 0);
	wait_running(0);
	/* the first start is blocked inside the event source */
	cr_assert_eq(atomic_load(&a.done), 0);
	/* a second start while busy */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(3), kIODirectionIn, 0, 0), kIOReturnBusy);
	cr_assert_eq(atomic_load(&T.starts), 1);          /* never reached the controller */
	tc_finish(c, 0, kIOReturnSuccess, 77);
	pthread_join(th, NULL);
	cr_assert_eq(a.ret, kIOReturnSuccess);
	cr_assert_eq(atomic_load(&o.notifications), 1);
	cr_assert_eq(iomem_dma_event_source_run(es), 0);  /* nothing is queued without an action */
	cr_assert_eq(atomic_load(&T.signals), 0);
	/* not busy any more; an inline completion returns at once */
	T.mode = TC_INLINE;
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(3), kIODirectionIn, 0, 0), kIOReturnSuccess);
	tc_close(c, es);
}

/* ---- concurrency -------------------------------------------------------- */

typedef struct conc_arg {
	IODMAController *c;
	IODMAEventSource *es;
	rec_owner o;
	int n;
} conc_arg;

static void *conc_worker(void *p)
{
	conc_arg *a = p;
	UInt32 ch = iomem_dma_event_source_getDMAIndex(a->es);
	for (int i = 0; i < a->n; i++) {
		cr_assert_eq(IODMAEventSource_startDMACommand(a->es, CMD(ch), kIODirectionOut, (IOByteCount)i, 0),
		             kIOReturnSuccess);
		tc_finish(a->c, ch, kIOReturnSuccess, (IOByteCount)i);
		if (i % 3 == 0)
			iomem_dma_event_source_run(a->es);
	}
	iomem_dma_event_source_run(a->es);
	return NULL;
}

IOMEM_TEST(dmaevent, concurrent_event_sources_on_one_controller)
{
	IODMAController *c = tc_setup(&tc_ops, TC_DEFER);
	conc_arg a[TC_CHANNELS];
	pthread_t th[TC_CHANNELS];
	for (int i = 0; i < TC_CHANNELS; i++) {
		memset(&a[i], 0, sizeof a[i]);
		a[i].c = c;
		a[i].n = 2000;
		a[i].es = IODMAEventSource_dmaEventSource(&a[i].o, &tc_dev, on_complete, NULL, 0);
		cr_assert_not_null(a[i].es);
	}
	for (int i = 0; i < TC_CHANNELS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, conc_worker, &a[i]), 0);
	for (int i = 0; i < TC_CHANNELS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < TC_CHANNELS; i++) {
		cr_assert_eq(atomic_load(&a[i].o.completions), a[i].n);
		cr_assert_eq(a[i].o.last_count, (IOByteCount)(a[i].n - 1));
		IODMAEventSource_release(a[i].es);
	}
	tc_teardown(c);
}

/* ==== the POSIX software engine ========================================= */

#define PG 4096u

typedef struct eng_owner {
	pthread_mutex_t m;
	pthread_cond_t  c;
	int             completions, notifications;
	IODMACommand   *cmd;
	IOReturn        status;
	IOByteCount     count;
	AbsoluteTime    ts;
	bool            on_test_thread;
	pthread_t       test_thread;
	bool            release_es;
} eng_owner;

static void eng_owner_init(eng_owner *o)
{
	memset(o, 0, sizeof *o);
	pthread_mutex_init(&o->m, NULL);
	pthread_cond_init(&o->c, NULL);
	o->test_thread = pthread_self();
}

static void eng_owner_fini(eng_owner *o)
{
	pthread_cond_destroy(&o->c);
	pthread_mutex_destroy(&o->m);
}

static void eng_on_complete(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                            AbsoluteTime ts)
{
	eng_owner *o = owner;
	pthread_mutex_lock(&o->m);
	o->cmd = cmd;
	o->status = st;
	o->count = n;
	o->ts = ts;
	if (pthread_equal(pthread_self(), o->test_thread))
		o->on_test_thread = true;
	bool rel = o->release_es;
	o->completions++;
	pthread_cond_broadcast(&o->c);
	pthread_mutex_unlock(&o->m);
	if (rel)
		IODMAEventSource_release(es);
}

static void eng_on_notify(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                          AbsoluteTime ts)
{
	eng_owner *o = owner;
	(void)es; (void)cmd; (void)st; (void)n; (void)ts;
	pthread_mutex_lock(&o->m);
	o->notifications++;
	pthread_mutex_unlock(&o->m);
}

/* Waits for @n completions in all (no clock: CTest's timeout ends a hang). */
static void eng_wait(eng_owner *o, int n)
{
	pthread_mutex_lock(&o->m);
	while (o->completions < n)
		pthread_cond_wait(&o->c, &o->m);
	pthread_mutex_unlock(&o->m);
}

static const UInt32 eng_parent[] = { 0xE0u };
static iomem_dma_provider eng_dev = { 0x99, eng_parent, 1, NULL };

static IODMAController *eng_setup(uint64_t delay_ns, UInt32 channels)
{
	iomem_posix_dma_engine_desc d = { 0xE0u, channels, 0, delay_ns };
	IODMAController *e = iomem_posix_dma_engine_create(&d);
	cr_assert_not_null(e);
	cr_assert_eq(IODMAController_registerDMAController(e, 0), kIOReturnSuccess);
	cr_assert_str_eq(iomem_dma_controller_getName(e), "IODMAController000000E0");
	return e;
}

/* Polls until nothing iomem allocated is live: an engine freed on one of its
 * own threads finishes freeing after the test's last call returns. */
static void count_block(void *ctx, const void *a, vm_size_t sz, iomem_alloc_family f, const char *call)
{
	(void)a; (void)sz; (void)f; (void)call;
	++*(int *)ctx;
}

static void wait_no_live_blocks(void)
{
	for (int i = 0; i < 100000; i++) {
		int n = 0;
		iomem_leak_report(count_block, &n);
		if (n == 0)
			return;
		usleep(100);
	}
}

/* Call last: the engine may still be referenced by its callback thread
 * (the delivery in progress holds the event source), and is then freed
 * there a moment later. */
static void eng_teardown(IODMAController *e)
{
	cr_assert_eq(iomem_dma_controller_unregister(e), kIOReturnSuccess);
	IODMAController_release(e);
	wait_no_live_blocks();
}

static void set_layout(iomem_posix_layout l)
{
	iomem_posix_phys_layout pl = { l, 3, 11 };
	cr_assert_eq(iomem_posix_set_phys_layout(&pl), kIOReturnSuccess);
}

static IOBufferMemoryDescriptor *mk_buf(IOByteCount len)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(len, kIODirectionInOut, false);
	cr_assert_not_null(b);
	return b;
}

static IODMACommand *mk_cmd(IOMemoryDescriptor *md, UInt64 maxseg)
{
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, maxseg,
	                                                   IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	cr_assert_not_null(cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess);
	return cmd;
}

static void rm_cmd(IODMACommand *cmd)
{
	IODMACommand_clearMemoryDescriptor(cmd, true);
	IODMACommand_release(cmd);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31u + i * 7u + (i >> 8));
}

IOMEM_TEST(dmaevent, engine_create_rejects_bad_descs)
{
	iomem_posix_dma_engine_desc d = { 1, 65, 0, 0 };
	cr_assert_null(iomem_posix_dma_engine_create(&d));
	d.channels = 2;
	d.fifoDepth = 100;                            /* not a power of two */
	cr_assert_null(iomem_posix_dma_engine_create(&d));
	d.fifoDepth = 8;                              /* below 16 */
	cr_assert_null(iomem_posix_dma_engine_create(&d));
	IODMAController *e = iomem_posix_dma_engine_create(NULL);
	cr_assert_not_null(e);
	cr_assert_str_eq(iomem_dma_controller_getName(e), "IODMAController00000000");
	cr_assert_eq(iomem_posix_dma_set_device_buffer(NULL, 0, NULL, 0), kIOReturnBadArgument);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 4, NULL, 0), kIOReturnBadArgument);   /* 4 channels */
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, NULL, 5), kIOReturnBadArgument);
	cr_assert_eq(iomem_posix_dma_set_peer(e, 9, NULL), kIOReturnBadArgument);
	IODMAController *t = iomem_dma_controller_withOps(&tc_min_ops, &T, NULL);   /* not an engine */
	unsigned char b[4];
	cr_assert_eq(iomem_posix_dma_set_device_buffer(t, 0, b, 4), kIOReturnBadArgument);
	IODMAController_release(t);
	IODMAController_release(e);
}

/* Out then In on every layout, whole range and a sub-range, async. */
IOMEM_TEST(dmaevent, engine_moves_bytes_both_ways)
{
	static const iomem_posix_layout layouts[] = { IOMEM_POSIX_LAYOUT_IDENTITY, IOMEM_POSIX_LAYOUT_SCATTERED,
	                                              IOMEM_POSIX_LAYOUT_RUNS, IOMEM_POSIX_LAYOUT_HIGH };
	IODMAController *e = eng_setup(0, 2);
	for (unsigned l = 0; l < 4; l++) {
		eng_owner o;
		eng_owner_init(&o);
		set_layout(layouts[l]);
		IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, eng_on_notify, 0);
		cr_assert_not_null(es);
		UInt32 ch = iomem_dma_event_source_getDMAIndex(es);
		const IOByteCount len = 9 * PG + 300;
		IOBufferMemoryDescriptor *b = mk_buf(len);
		unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
		unsigned char *dev = malloc(len);
		IODMACommand *cmd = mk_cmd(b, l == 2 ? 1000 : 0);
		cr_assert_eq(iomem_posix_dma_set_device_buffer(e, ch, dev, len), kIOReturnSuccess);
		/* Out: memory -> device */
		fill(mem, len, l + 1);
		memset(dev, 0, len);
		cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
		eng_wait(&o, 1);
		cr_assert_eq(o.status, kIOReturnSuccess);
		cr_assert_eq(o.count, len);
		cr_assert_eq(o.cmd, cmd);
		cr_assert(!o.on_test_thread, "the action ran on the test's thread");
		cr_assert_gt(o.ts, 0);
		cr_assert_eq(memcmp(mem, dev, len), 0, "layout %s: Out mismatch", iomem_posix_layout_name(layouts[l]));
		/* In, a sub-range: device bytes 0.. land at offset 5000 */
		fill(dev, len, l + 50);
		memset(mem, 0xEE, len);
		cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionIn, 3 * PG + 17, 5000), kIOReturnSuccess);
		eng_wait(&o, 2);
		cr_assert_eq(o.status, kIOReturnSuccess);
		cr_assert_eq(o.count, 3 * PG + 17);
		cr_assert(iomem_test_all_bytes(mem, 5000, 0xEE));
		cr_assert_eq(memcmp(mem + 5000, dev, 3 * PG + 17), 0, "layout %s: In mismatch",
		             iomem_posix_layout_name(layouts[l]));
		cr_assert(iomem_test_all_bytes(mem + 5000 + 3 * PG + 17, len - 5000 - 3 * PG - 17, 0xEE));
		IODMACommand *q = NULL;
		IOByteCount n = 0;
		cr_assert_eq(IODMAEventSource_queryDMACommand(es, &q, &n, true), kIOReturnSuccess);
		cr_assert_eq(q, cmd);
		cr_assert_eq(n, 3 * PG + 17);
		pthread_mutex_lock(&o.m);
		cr_assert_eq(o.notifications, 2);
		cr_assert_eq(o.completions, 2);
		pthread_mutex_unlock(&o.m);
		rm_cmd(cmd);
		IOMemoryDescriptor_release(b);
		free(dev);
		IODMAEventSource_release(es);
		eng_owner_fini(&o);
	}
	eng_teardown(e);
}

IOMEM_TEST(dmaevent, engine_sync_start_returns_when_done)
{
	IODMAController *e = eng_setup(0, 1);
	eng_owner o;
	eng_owner_init(&o);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, NULL, eng_on_notify, 0);
	const IOByteCount len = 16 * PG;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = mk_cmd(b, 0);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	for (unsigned i = 0; i < 20; i++) {
		fill(mem, len, i);
		cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
		cr_assert_eq(memcmp(mem, dev, len), 0, "round %u", i);
	}
	pthread_mutex_lock(&o.m);
	cr_assert_eq(o.notifications, 20);
	pthread_mutex_unlock(&o.m);
	rm_cmd(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

/* A synchronous start is moved by the starting thread: a stop from another
 * thread still ends it at a segment boundary, the start returns, and the
 * notification (on the starting thread) carries the abort. */
typedef struct sync_stop_arg {
	IODMAEventSource *es;
	IOReturn          stop;
} sync_stop_arg;

static void *sync_stopper(void *p)
{
	sync_stop_arg *a = p;
	IOByteCount n = 0;
	while (n == 0) {
		cr_assert_eq(IODMAEventSource_queryDMACommand(a->es, NULL, &n, false), kIOReturnSuccess);
		usleep(200);
	}
	a->stop = IODMAEventSource_stopDMACommand(a->es, false, UINT64_MAX);
	return NULL;
}

typedef struct thread_notify {
	pthread_t   thread;
	IOReturn    status;
	IOByteCount count;
	int         n;
} thread_notify;

static void on_notify_thread(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                             AbsoluteTime ts)
{
	thread_notify *o = owner;
	(void)es; (void)cmd; (void)ts;
	o->thread = pthread_self();
	o->status = st;
	o->count = n;
	o->n++;
}

IOMEM_TEST(dmaevent, engine_sync_start_stopped_from_another_thread)
{
	IODMAController *e = eng_setup(1000000, 1);     /* 1 ms per segment */
	thread_notify o = { 0 };
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, NULL, on_notify_thread, 0);
	cr_assert_not_null(es);
	const IOByteCount len = 64 * PG;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = mk_cmd(b, 0);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	fill(mem, len, 9);
	memset(dev, 0x5A, len);
	sync_stop_arg a = { es, kIOReturnError };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, sync_stopper, &a), 0);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	pthread_join(th, NULL);
	cr_assert_eq(a.stop, kIOReturnSuccess);
	cr_assert_eq(o.n, 1);
	cr_assert(pthread_equal(o.thread, pthread_self()), "the notification ran on another thread");
	cr_assert_eq(o.status, kIOReturnAborted);
	cr_assert_gt(o.count, 0);
	cr_assert_lt(o.count, len);
	cr_assert_eq(o.count % PG, 0, "stopped at %llu, not a segment boundary", (unsigned long long)o.count);
	cr_assert_eq(memcmp(mem, dev, o.count), 0);
	cr_assert(iomem_test_all_bytes(dev + o.count, len - o.count, 0x5A), "bytes past the stop were written");
	IOByteCount q = 0;
	IODMACommand *qc = NULL;
	cr_assert_eq(IODMAEventSource_queryDMACommand(es, &qc, &q, true), kIOReturnSuccess);
	cr_assert_eq(qc, cmd);
	cr_assert_eq(q, o.count);
	cr_assert_eq(IODMAEventSource_stopDMACommand(es, false, UINT64_MAX), kIOReturnNotReady);
	rm_cmd(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	IODMAEventSource_release(es);
	eng_teardown(e);
}

/* The engine caches frame -> page translations per channel: when every page
 * is unwired the machine hands the same frames to the next buffer, and the
 * engine must reach the new buffer's bytes, not the old one's. Both the
 * worker (async) and a synchronous starter. */
IOMEM_TEST(dmaevent, engine_translation_cache_follows_rewiring)
{
	IODMAController *e = eng_setup(0, 2);
	eng_owner o;
	eng_owner_init(&o);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	IODMAEventSource *async_es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
	IODMAEventSource *sync_es = IODMAEventSource_dmaEventSource(&o, &eng_dev, NULL, NULL, 0);
	cr_assert(async_es && sync_es);
	const IOByteCount len = 8 * PG;
	unsigned char *dev = malloc(len);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, iomem_dma_event_source_getDMAIndex(async_es), dev, len),
	             kIOReturnSuccess);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, iomem_dma_event_source_getDMAIndex(sync_es), dev, len),
	             kIOReturnSuccess);
	IOPhysicalAddress first = 0;
	int done = 0;
	unsigned char *mems[6];
	for (unsigned round = 0; round < 6; round++) {
		/* pageable memory (wired only while prepared), every buffer kept
		 * to the end: each one is at its own address */
		unsigned char *mem = mems[round] = IOMallocAligned(len, PG);
		cr_assert_not_null(mem);
		IOMemoryDescriptor *b = IOMemoryDescriptor_withAddress(mem, len, kIODirectionInOut);
		cr_assert_not_null(b);
		IODMACommand *cmd = mk_cmd(b, 0);
		IODMACommand_Segment64 seg;
		UInt64 off = 0;
		UInt32 one = 1;
		IODMAEventSource *es = (round & 1) ? sync_es : async_es;
		cr_assert_eq(IODMACommand_gen64IOVMSegments(cmd, &off, &seg, &one), kIOReturnSuccess);
		if (round == 0)
			first = seg.fIOVMAddr;
		/* the premise: nothing else is wired, so the frames come back */
		cr_assert_eq(seg.fIOVMAddr, first, "round %u: the machine did not reuse the frames", round);
		fill(mem, len, 100 + round);
		memset(dev, 0, len);
		cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
		if (es == async_es)
			eng_wait(&o, ++done);
		cr_assert_eq(memcmp(dev, mem, len), 0, "round %u: the engine read another buffer's pages", round);
		fill(dev, len, 200 + round);
		cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionIn, 0, 0), kIOReturnSuccess);
		if (es == async_es) {
			eng_wait(&o, ++done);
			cr_assert_eq(o.status, kIOReturnSuccess);
		}
		cr_assert_eq(memcmp(dev, mem, len), 0, "round %u: the engine wrote another buffer's pages", round);
		rm_cmd(cmd);                 /* unwires every page: the frames are free again */
		IOMemoryDescriptor_release(b);
	}
	for (unsigned round = 0; round < 6; round++)
		IOFreeAligned(mems[round], len);
	free(dev);
	IODMAEventSource_release(sync_es);
	IODMAEventSource_release(async_es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

IOMEM_TEST(dmaevent, engine_bad_inputs)
{
	IODMAController *e = eng_setup(2000000, 1);     /* 2 ms per segment: catch it running */
	eng_owner o;
	eng_owner_init(&o);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
	const IOByteCount len = 8 * PG;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = mk_cmd(b, 0);
	/* no device side yet */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnNotReady);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len - 1), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnNoSpace);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, len - 1, 0), kIOReturnSuccess);
	eng_wait(&o, 1);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	/* NULL command, bad directions, past the prepared length */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, NULL, kIODirectionOut, 0, 0), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionInOut, 0, 0), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionNone, 0, 0), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, len + 1, 0), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 2, len - 1), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, len + 1), kIOReturnBadArgument);
	/* stop with nothing running */
	cr_assert_eq(IODMAEventSource_stopDMACommand(es, false, UINT64_MAX), kIOReturnNotReady);
	/* a second start while busy */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnBusy);
	cr_assert_eq(IODMAEventSource_setFIFODepth(es, 64), kIOReturnBusy);
	cr_assert_eq(IODMAEventSource_setFrameSize(es, 4), kIOReturnBusy);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnBusy);
	eng_wait(&o, 2);
	cr_assert_eq(o.status, kIOReturnSuccess);
	cr_assert_eq(o.count, len);
	/* an unprepared command */
	IODMACommand_clearMemoryDescriptor(cmd, true);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnNotReady);
	pthread_mutex_lock(&o.m);
	cr_assert_eq(o.completions, 2);            /* refused starts delivered nothing */
	pthread_mutex_unlock(&o.m);
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

IOMEM_TEST(dmaevent, engine_fifo_frames_and_config)
{
	IODMAController *e = eng_setup(0, 1);
	eng_owner o;
	eng_owner_init(&o);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
	cr_assert_eq(IODMAEventSource_getFIFODepth(es, kIODirectionOut), 4096);
	cr_assert_eq(IODMAEventSource_validFIFODepth(es, 100, kIODirectionOut), 64);
	cr_assert_eq(IODMAEventSource_validFIFODepth(es, 1, kIODirectionIn), 16);
	cr_assert_eq(IODMAEventSource_validFIFODepth(es, (IOByteCount)1 << 30, kIODirectionIn), (IOByteCount)1 << 20);
	cr_assert_eq(IODMAEventSource_setFIFODepth(es, 100), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_setFIFODepth(es, 64), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_getFIFODepth(es, kIODirectionIn), 64);
	cr_assert_eq(IODMAEventSource_setFrameSize(es, 0), kIOReturnBadArgument);
	cr_assert_eq(IODMAEventSource_setFrameSize(es, 3), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_setDMAConfig(es, 2), kIOReturnSuccess);
	cr_assert(IODMAEventSource_validDMAConfig(es, 2));
	IODMACommand *q = CMD(1);
	IOByteCount n = 5;
	cr_assert_eq(IODMAEventSource_queryDMACommand(es, &q, &n, false), kIOReturnSuccess);
	cr_assert_null(q);                     /* nothing ever ran */
	cr_assert_eq(n, 0);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	const IOByteCount len = 4 * PG + 2;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = mk_cmd(b, 0);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	fill(mem, len, 9);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 1);
	cr_assert_eq(memcmp(mem, dev, len), 0);   /* a 64-byte FIFO moves it all */
	cr_assert_eq(o.count, len);               /* the completion: bytes */
	cr_assert_eq(IODMAEventSource_queryDMACommand(es, &q, &n, true), kIOReturnSuccess);
	cr_assert_eq(n, len - len % 3);           /* the query: whole frames */
	cr_assert_eq(iomem_dma_event_source_getFrameCount(es), len / 3);
	rm_cmd(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

IOMEM_TEST(dmaevent, engine_stop_mid_transfer_at_a_segment_boundary)
{
	IODMAController *e = eng_setup(1000000, 1);     /* 1 ms per segment */
	eng_owner o;
	eng_owner_init(&o);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
	const IOByteCount len = 64 * PG;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = mk_cmd(b, 0);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	fill(mem, len, 3);
	memset(dev, 0x5A, len);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	/* wait until it has moved something (no clock: poll progress) */
	IOByteCount n = 0;
	while (n == 0) {
		cr_assert_eq(IODMAEventSource_queryDMACommand(es, NULL, &n, false), kIOReturnSuccess);
		usleep(200);
	}
	cr_assert_eq(IODMAEventSource_stopDMACommand(es, false, UINT64_MAX), kIOReturnSuccess);
	eng_wait(&o, 1);
	cr_assert_eq(o.status, kIOReturnAborted);
	cr_assert_gt(o.count, 0);
	cr_assert_lt(o.count, len);
	cr_assert_eq(o.count % PG, 0, "stopped at %llu, not a segment boundary", (unsigned long long)o.count);
	cr_assert_eq(memcmp(mem, dev, o.count), 0);
	cr_assert(iomem_test_all_bytes(dev + o.count, len - o.count, 0x5A), "bytes past the stop were written");
	IOByteCount q = 0;
	cr_assert_eq(IODMAEventSource_queryDMACommand(es, NULL, &q, false), kIOReturnSuccess);
	cr_assert_eq(q, o.count);
	/* a stop that times out still stops */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	IOReturn r = IODMAEventSource_stopDMACommand(es, true, 1);
	cr_assert(r == kIOReturnTimeout || r == kIOReturnSuccess, "%s", IOReturnString(r));
	eng_wait(&o, 2);
	cr_assert_eq(o.status, kIOReturnAborted);
	cr_assert_eq(IODMAEventSource_stopDMACommand(es, false, UINT64_MAX), kIOReturnNotReady);
	rm_cmd(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

IOMEM_TEST(dmaevent, engine_memory_to_memory_with_a_peer)
{
	IODMAController *e = eng_setup(0, 1);
	eng_owner o;
	eng_owner_init(&o);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, NULL, NULL, 0);
	set_layout(IOMEM_POSIX_LAYOUT_RUNS);
	const IOByteCount len = 7 * PG + 123;
	IOBufferMemoryDescriptor *a = mk_buf(len), *b = mk_buf(len + PG);
	unsigned char *ma = IOBufferMemoryDescriptor_getBytesNoCopy(a);
	unsigned char *mb = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	IODMACommand *ca = mk_cmd(a, 1500), *cb = mk_cmd(b, 0);
	cr_assert_eq(iomem_posix_dma_set_peer(e, 0, cb), kIOReturnSuccess);
	fill(ma, len, 4);
	memset(mb, 0, len + PG);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, ca, kIODirectionOut, 0, 0), kIOReturnSuccess);
	cr_assert_eq(memcmp(ma, mb, len), 0);
	cr_assert(iomem_test_all_bytes(mb + len, PG, 0));
	fill(mb, len + PG, 8);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, ca, kIODirectionIn, len - 100, 100), kIOReturnSuccess);
	cr_assert_eq(memcmp(ma + 100, mb, len - 100), 0);
	/* a peer shorter than the transfer */
	cr_assert_eq(iomem_posix_dma_set_peer(e, 0, ca), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cb, kIODirectionOut, 0, 0), kIOReturnNoSpace);
	rm_cmd(ca);
	rm_cmd(cb);
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(b);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

IOMEM_TEST(dmaevent, engine_callback_releases_the_event_source)
{
	IODMAController *e = eng_setup(0, 1);
	eng_owner o;
	eng_owner_init(&o);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	const IOByteCount len = 4 * PG;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = mk_cmd(b, 0);
	/* 1: the action drops the owner's (only) reference, engine stays */
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
	o.release_es = true;
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	es = NULL;
	eng_wait(&o, 1);
	/* the channel is free again once the event source is gone */
	IODMAEventSource *es2 = NULL;
	for (int i = 0; i < 100000 && es2 == NULL; i++) {
		es2 = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
		if (es2 == NULL)
			usleep(100);
	}
	cr_assert_not_null(es2);
	/* 2: the action drops the last reference to the engine too: it is
	 * freed on its own callback thread */
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	cr_assert_eq(iomem_dma_controller_unregister(e), kIOReturnSuccess);
	IODMAController_release(e);      /* es2 holds the last reference */
	cr_assert_eq(IODMAEventSource_startDMACommand(es2, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 2);
	rm_cmd(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	wait_no_live_blocks();
	eng_owner_fini(&o);
}

typedef struct eng_conc {
	IODMAController  *e;
	IODMAEventSource *es;
	eng_owner         o;
	unsigned          seed;
	int               rounds;
	int               bad;
} eng_conc;

static void *eng_conc_worker(void *p)
{
	eng_conc *a = p;
	const IOByteCount len = 6 * PG + 77;
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity(len, kIODirectionInOut, false);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0,
	                                                   IODMACommand_kUnmapped, 0, 1, NULL, NULL);
	IODMACommand_setMemoryDescriptor(cmd, b, true);
	iomem_posix_dma_set_device_buffer(a->e, iomem_dma_event_source_getDMAIndex(a->es), dev, len);
	for (int i = 0; i < a->rounds; i++) {
		bool out = (i & 1) != 0;
		fill(out ? mem : dev, len, a->seed + (unsigned)i);
		if (IODMAEventSource_startDMACommand(a->es, cmd, out ? kIODirectionOut : kIODirectionIn, 0, 0) !=
		    kIOReturnSuccess)
			a->bad++;
		eng_wait(&a->o, i + 1);
		if (memcmp(mem, dev, len) != 0 || a->o.status != kIOReturnSuccess || a->o.count != len)
			a->bad++;
	}
	IODMACommand_clearMemoryDescriptor(cmd, true);
	IODMACommand_release(cmd);
	IOMemoryDescriptor_release(b);
	free(dev);
	return NULL;
}

IOMEM_TEST(dmaevent, engine_concurrent_event_sources)
{
	IODMAController *e = eng_setup(0, 4);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	eng_conc a[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		memset(&a[i], 0, sizeof a[i]);
		eng_owner_init(&a[i].o);
		a[i].e = e;
		a[i].seed = 100u * (unsigned)i;
		a[i].rounds = 200;
		a[i].es = IODMAEventSource_dmaEventSource(&a[i].o, &eng_dev, eng_on_complete, NULL, 0);
		cr_assert_not_null(a[i].es);
	}
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, eng_conc_worker, &a[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(a[i].bad, 0, "event source %d: %d bad transfers", i, a[i].bad);
		cr_assert_eq(a[i].o.completions, a[i].rounds);
		IODMAEventSource_release(a[i].es);
		eng_owner_fini(&a[i].o);
	}
	eng_teardown(e);
}

/* ---- through an IOMMU -------------------------------------------------- */

static IODMACommand *mk_mapped_cmd(IOMemoryDescriptor *md, IOMapper *m)
{
	IODMACommand *cmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0,
	                                                   IODMACommand_kMapped, 0, 1, m, NULL);
	cr_assert_not_null(cmd);
	cr_assert_eq(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess);
	cr_assert_eq(iomem_dmacmd_getMapper(cmd), m);
	return cmd;
}

IOMEM_TEST(dmaevent, engine_through_the_software_iommu)
{
	IODMAController *e = eng_setup(0, 1);
	eng_owner o;
	eng_owner_init(&o);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	const IOByteCount len = 12 * PG;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	unsigned char *dev = malloc(len);
	/* the accessor: NULL unless the command maps through a mapper */
	cr_assert_null(iomem_dmacmd_getMapper(NULL));
	IODMACommand *plain = mk_cmd(b, 0);
	cr_assert_null(iomem_dmacmd_getMapper(plain));          /* kUnmapped */
	rm_cmd(plain);
	IODMACommand *idle = IODMACommand_withSpecification(kIODMACommandOutputHost64, 0, 0, IODMACommand_kMapped,
	                                                    0, 1, m, NULL);
	cr_assert_eq(iomem_dmacmd_getMapper(idle), m);          /* kMapped: its mapper, prepared or not */
	IODMACommand_release(idle);
	IODMACommand *cmd = mk_mapped_cmd(b, m);
	IODMACommand_Segment64 seg;
	UInt32 one = 1;
	UInt64 off = 0;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(cmd, &off, &seg, &one), kIOReturnSuccess);
	cr_assert_eq(seg.fLength, len);          /* one IOVA run over scattered pages */
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	fill(mem, len, 21);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 1);
	cr_assert_eq(o.status, kIOReturnSuccess);
	cr_assert_eq(memcmp(mem, dev, len), 0);
	fill(dev, len, 22);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionIn, len - PG, PG / 2), kIOReturnSuccess);
	eng_wait(&o, 2);
	cr_assert_eq(o.status, kIOReturnSuccess);
	cr_assert_eq(memcmp(mem + PG / 2, dev, len - PG), 0);
	cr_assert_eq(iomem_swiommu_faults(m, NULL), 0);
	rm_cmd(cmd);
	/* a read-only mapping (an Out-only descriptor): a device write faults,
	 * is recorded by the IOMMU and reported as kIOReturnDMAError */
	IOMemoryDescriptor *ro = IOMemoryDescriptor_withAddress(mem, len, kIODirectionOut);
	cr_assert_not_null(ro);
	cr_assert_eq(IOMemoryDescriptor_prepare(ro, kIODirectionNone), kIOReturnSuccess);
	cmd = mk_mapped_cmd(ro, m);
	memset(mem, 0x33, len);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionIn, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 3);
	cr_assert_eq(o.status, kIOReturnDMAError);
	cr_assert_eq(o.count, 0);
	cr_assert(iomem_test_all_bytes(mem, len, 0x33), "a refused write reached memory");
	iomem_swiommu_fault last;
	cr_assert_eq(iomem_swiommu_faults(m, &last), 1);
	cr_assert_eq(last.reason, IOMEM_SWIOMMU_FAULT_READONLY);
	cr_assert(last.write);
	/* reading it is fine */
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 4);
	cr_assert_eq(o.status, kIOReturnSuccess);
	cr_assert(iomem_test_all_bytes(dev, len, 0x33));
	rm_cmd(cmd);
	IOMemoryDescriptor_complete(ro, kIODirectionNone);
	IOMemoryDescriptor_release(ro);
	IOMemoryDescriptor_release(b);
	IOMapper_release(m);
	free(dev);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

/* A tiny page-table IOMMU with a hole: page HOLE of every mapping has no
 * translation, so a transfer faults in its middle. Goes through the
 * engine's generic (non-swiommu) translation path. */
#define HOLE 5u
#define HM_PAGES 64u
typedef struct hole_mapper {
	uint64_t phys[HM_PAGES];
	uint64_t base;
	int      maps;
} hole_mapper;

static uint64_t hm_page_size(IOMapper *m) { (void)m; return PG; }

static IOReturn hm_map(IOMapper *m, IOMemoryDescriptor *md, uint64_t off, uint64_t len, uint32_t opts,
                       const IODMAMapSpecification *spec, IODMACommand *cmd, const void *pl, uint64_t *addr,
                       uint64_t *maplen)
{
	hole_mapper *h = iomem_mapper_getContext(m);
	(void)opts; (void)spec; (void)cmd; (void)pl;
	uint64_t first = off & ~(uint64_t)(PG - 1);
	uint64_t npages = (off + len - first + PG - 1) / PG;
	if (npages > HM_PAGES || h->maps != 0)
		return kIOReturnNoResources;
	for (uint64_t i = 0; i < npages; i++) {
		IOByteCount l = 0;
		h->phys[i] = IOMemoryDescriptor_getPhysicalSegment(md, first + i * PG, &l, kIOMemoryMapperNone) &
		             ~(uint64_t)(PG - 1);
	}
	h->maps++;
	*addr = h->base + (off - first);
	*maplen = npages * PG;
	return kIOReturnSuccess;
}

static IOReturn hm_unmap(IOMapper *m, IOMemoryDescriptor *md, IODMACommand *cmd, uint64_t addr, uint64_t len)
{
	hole_mapper *h = iomem_mapper_getContext(m);
	(void)md; (void)cmd; (void)addr; (void)len;
	h->maps--;
	return kIOReturnSuccess;
}

static uint64_t hm_to_phys(IOMapper *m, uint64_t iova)
{
	hole_mapper *h = iomem_mapper_getContext(m);
	uint64_t i = (iova - h->base) / PG;
	if (iova < h->base || i >= HM_PAGES || i == HOLE)
		return 0;
	return h->phys[i] + (iova & (PG - 1));
}

static const iomem_mapper_ops hm_ops = {
	.name = "hole", .getPageSize = hm_page_size, .iovmMapMemory = hm_map, .iovmUnmapMemory = hm_unmap,
	.mapToPhysicalAddress = hm_to_phys,
};

/* Physical addresses that no wired page holds (no IOMMU): the engine's
 * translation refuses them - kIOReturnDMAError with the bytes moved before,
 * synchronous and asynchronous, and the same channel works afterwards. */
IOMEM_TEST(dmaevent, engine_unknown_physical_page_is_a_dma_error)
{
	IODMAController *e = eng_setup(0, 2);
	eng_owner o;
	eng_owner_init(&o);
	thread_notify sn = { 0 };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, eng_on_notify, 0);
	IODMAEventSource *ses = IODMAEventSource_dmaEventSource(&sn, &eng_dev, NULL, on_notify_thread, 0);
	cr_assert(es && ses);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	IOBufferMemoryDescriptor *b = mk_buf(2 * PG);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	IODMACommand *good = mk_cmd(b, 0);            /* prepared: its pages are wired */
	IODMACommand_Segment64 seg;
	UInt64 off = 0;
	UInt32 one = 1;
	cr_assert_eq(IODMACommand_gen64IOVMSegments(good, &off, &seg, &one), kIOReturnSuccess);
	/* one known page, then one far from every frame pool */
	IOAddressRange r[2] = { { seg.fIOVMAddr, PG }, { 0x7000000000ull, PG } };
	IOMemoryDescriptor *phys = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionInOut, NULL);
	cr_assert_not_null(phys);
	IODMACommand *cmd = mk_cmd(phys, 0);
	unsigned char *dev = malloc(2 * PG);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, 2 * PG), kIOReturnSuccess);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 1, dev, 2 * PG), kIOReturnSuccess);
	fill(mem, 2 * PG, 12);
	memset(dev, 0, 2 * PG);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 1);
	cr_assert_eq(o.status, kIOReturnDMAError);
	cr_assert_eq(o.count, PG);
	cr_assert_eq(memcmp(dev, mem, PG), 0, "the known page moved");
	cr_assert(iomem_test_all_bytes(dev + PG, PG, 0));
	/* synchronous: the start succeeds, the status comes with the notification */
	cr_assert_eq(IODMAEventSource_startDMACommand(ses, cmd, kIODirectionIn, 0, PG), kIOReturnSuccess);
	cr_assert_eq(sn.n, 1);
	cr_assert_eq(sn.status, kIOReturnDMAError);
	cr_assert_eq(sn.count, 0);
	/* the channels still work */
	memset(dev, 0, 2 * PG);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, good, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 2);
	cr_assert_eq(o.status, kIOReturnSuccess);
	cr_assert_eq(memcmp(dev, mem, 2 * PG), 0);
	fill(dev, 2 * PG, 13);
	cr_assert_eq(IODMAEventSource_startDMACommand(ses, good, kIODirectionIn, 0, 0), kIOReturnSuccess);
	cr_assert_eq(sn.status, kIOReturnSuccess);
	cr_assert_eq(memcmp(dev, mem, 2 * PG), 0);
	rm_cmd(cmd);
	IOMemoryDescriptor_release(phys);
	rm_cmd(good);
	IOMemoryDescriptor_release(b);
	free(dev);
	IODMAEventSource_release(ses);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}

IOMEM_TEST(dmaevent, engine_iommu_fault_mid_transfer)
{
	IODMAController *e = eng_setup(0, 1);
	eng_owner o;
	eng_owner_init(&o);
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &eng_dev, eng_on_complete, NULL, 0);
	hole_mapper h = { .base = 0x40000000u };
	IOMapper *m = iomem_mapper_withOps(&hm_ops, &h);
	cr_assert_not_null(m);
	set_layout(IOMEM_POSIX_LAYOUT_SCATTERED);
	const IOByteCount len = 10 * PG;
	IOBufferMemoryDescriptor *b = mk_buf(len);
	unsigned char *mem = IOBufferMemoryDescriptor_getBytesNoCopy(b);
	unsigned char *dev = malloc(len);
	IODMACommand *cmd = mk_mapped_cmd(b, m);
	cr_assert_eq(iomem_posix_dma_set_device_buffer(e, 0, dev, len), kIOReturnSuccess);
	fill(mem, len, 5);
	memset(dev, 0, len);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	eng_wait(&o, 1);
	cr_assert_eq(o.status, kIOReturnDMAError);
	cr_assert_eq(o.count, HOLE * PG, "stopped at %llu", (unsigned long long)o.count);
	cr_assert_eq(memcmp(mem, dev, HOLE * PG), 0);
	cr_assert(iomem_test_all_bytes(dev + HOLE * PG, len - HOLE * PG, 0));
	/* In: memory past the hole untouched */
	memset(mem, 0x44, len);
	fill(dev, len, 6);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, cmd, kIODirectionIn, 0, PG), kIOReturnSuccess);
	eng_wait(&o, 2);
	cr_assert_eq(o.status, kIOReturnDMAError);
	cr_assert_eq(o.count, (HOLE - 1) * PG);
	cr_assert_eq(memcmp(mem + PG, dev, (HOLE - 1) * PG), 0);
	cr_assert(iomem_test_all_bytes(mem + HOLE * PG, len - HOLE * PG, 0x44));
	rm_cmd(cmd);
	cr_assert_eq(h.maps, 0);
	IOMemoryDescriptor_release(b);
	IOMapper_release(m);
	free(dev);
	IODMAEventSource_release(es);
	eng_owner_fini(&o);
	eng_teardown(e);
}
