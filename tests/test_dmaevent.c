/* SPDX-License-Identifier: MIT */
/* tests/test_dmaevent.c - IODMAController (reference §2.2) and
 * IODMAEventSource (§2.3) over a small test controller defined here, then
 * the POSIX software DMA engine (>>posixdma) with real commands. Contract
 * violations are reported only with IOMEM_DEBUG (the release preset
 * expects none). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_dma.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
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
	cr_assert_null(IODMAController_getController(&dev3, 0));   /* not registered: NULL, no wait */
	cr_assert_null(IODMAController_getController(&dev3, 2));
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
	cr_assert_null(IODMAController_getController(&tc_dev, 0));
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
	IODMAController *c = tc_setup(&tc_ops, TC_NOINDEX);
	rec_owner o = { 0 };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
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
	IODMAController *c = tc_setup(&tc_ops, TC_DEFER);
	rec_owner o = { 0 };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, on_notify, 0);
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
	IODMAEventSource_release(es);
	tc_teardown(c);
}

IOMEM_TEST(dmaevent, refused_start_delivers_nothing)
{
	IODMAController *c = tc_setup(&tc_ops, TC_REFUSE);
	rec_owner o = { 0 };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
	cr_assert_eq(IODMAEventSource_startDMACommand(es, CMD(0), kIODirectionOut, 0, 0), kIOReturnNotReady);
	cr_assert_eq(iomem_dma_event_source_run(es), 0);
	/* synchronous too: returns the error, not busy afterwards */
	IODMAEventSource *ss = IODMAEventSource_dmaEventSource(&o, &tc_dev, NULL, NULL, 0);
	cr_assert_eq(IODMAEventSource_startDMACommand(ss, CMD(0), kIODirectionOut, 0, 0), kIOReturnNotReady);
	T.mode = TC_INLINE;
	cr_assert_eq(IODMAEventSource_startDMACommand(ss, CMD(0), kIODirectionOut, 0, 0), kIOReturnSuccess);
	IODMAEventSource_release(ss);
	IODMAEventSource_release(es);
	tc_teardown(c);
}

IOMEM_TEST(dmaevent, complete_of_a_command_not_started)
{
	IODMAController *c = tc_setup(&tc_ops, TC_DEFER);
	rec_owner o = { 0 };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, on_complete, NULL, 0);
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
	IODMAEventSource_release(es);
	tc_teardown(c);
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
	IODMAEventSource_release(es);
	tc_teardown(c);
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
	IODMAController *c = tc_setup(&tc_ops, TC_DEFER);
	rec_owner o = { 0 };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&o, &tc_dev, NULL, on_notify, 0);
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
	IODMAEventSource_release(es);
	tc_teardown(c);
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
