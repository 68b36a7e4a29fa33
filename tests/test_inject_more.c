/* SPDX-License-Identifier: MIT */
/* tests/test_inject_more.c - allocation failures in the calls the injection
 * walk of test_inject.c does not visit: IODMACommand's creation forms
 * (withSpecification, weakWithSpecification, DriverKit Create), an
 * IODMAEventSource's creation and its first start, setMapping and a sub-map
 * of a live map. Each call runs with its N-th allocation point failing, N =
 * 0, 1, ... until it passes: it must fail with its documented error while
 * the injection fires, succeed once it does not, and leave nothing
 * allocated either way. Also: an event source with more completions queued
 * than its record cache keeps (the rest are freed, none lost). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_map.h"
#include "iomem_dma.h"
#include "test_desc_util.h"

TestSuite(inject_more, .fini = desc_fini);

/* live blocks, silently */
static void quiet(void *ctx, const void *a, vm_size_t s, iomem_alloc_family f, const char *call)
{
	(void)a; (void)s; (void)f; (void)call;
	(*(unsigned *)ctx)++;
}
static vm_size_t live_blocks(void)
{
	unsigned n = 0;
	return iomem_leak_report(quiet, &n);
}

/* Runs @op (true: it succeeded; it releases what it made) with allocation
 * point N failing for N = 0, 1, ...; returns the number of points. */
static uint64_t walk(const char *name, bool (*op)(void *ctx), void *ctx)
{
	vm_size_t before = live_blocks();
	uint64_t n;
#if IOMEM__DEBUG
	for (n = 0;; n++) {
		iomem_debug_fail_allocations(n, 1);
		bool ok = op(ctx);
		uint64_t points = iomem_debug_allocation_points();
		iomem_debug_fail_allocations(0, 0);
		bool fired = points > n;
		cr_assert(ok != fired, "%s: allocation point %llu of %llu %s", name, (unsigned long long)n,
		          (unsigned long long)points, fired ? "failed, yet the call succeeded" : "passed, yet the call failed");
		cr_assert_eq(live_blocks(), before, "%s: point %llu: blocks left behind", name, (unsigned long long)n);
		if (!fired)
			break;
	}
#else
	n = 0;
	cr_assert(op(ctx), "%s", name);
	cr_assert_eq(live_blocks(), before);
#endif
	return n;
}

/* ---- IODMACommand creation ---- */

static bool op_with_specification(void *ctx)
{
	(void)ctx;
	IODMACommand *c = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, 0, IODMACommand_kUnmapped, 0, 1,
	                                                 NULL, NULL);
	IODMACommand_release(c);
	return c != NULL;
}

static bool op_weak_with_specification(void *ctx)
{
	IODMACommand *c = (IODMACommand *)ctx;
	IOReturn r = IODMACommand_weakWithSpecification(&c, kIODMACommandOutputHost64, 32, 0, 0, 0, 1, NULL, NULL);
	cr_assert(r == kIOReturnSuccess || r == kIOReturnNoMemory, "%s", IOReturnString(r));
	cr_assert((r == kIOReturnSuccess) == (c != NULL), "the result only on success");
	IODMACommand_release(c);
	return r == kIOReturnSuccess;
}

static bool op_driverkit_create(void *ctx)
{
	IODMACommandSpecification spec;
	IODMACommand *c = (IODMACommand *)0x1;         /* set to NULL on failure */
	memset(&spec, 0, sizeof spec);
	spec.maxAddressBits = 40;
	kern_return_t r = IODMACommand_Create((IOMapper *)ctx, 0, &spec, &c);
	cr_assert(r == kIOReturnSuccess || r == kIOReturnNoMemory, "%s", IOReturnString(r));
	cr_assert((r == kIOReturnSuccess) == (c != NULL));
	if (c != NULL)
		cr_expect_eq(IODMACommand_getNumAddressBits(c), 40);
	IODMACommand_release(c);
	return r == kIOReturnSuccess;
}

IOMEM_TEST(inject_more, dma_command_creation)
{
	cr_expect_geq(walk("withSpecification", op_with_specification, NULL), IOMEM__DEBUG ? 1u : 0u);
	cr_expect_geq(walk("weakWithSpecification", op_weak_with_specification, (void *)0x1), IOMEM__DEBUG ? 1u : 0u);
	/* with an explicit mapper (retained by the command) */
	IOMapper *m = iomem_swiommu_create(NULL);
	cr_assert_not_null(m);
	cr_expect_geq(walk("IODMACommand_Create", op_driverkit_create, m), IOMEM__DEBUG ? 1u : 0u);
	IOMapper_release(m);
}

/* ---- a minimal controller: one channel, completes inside start ---- */

typedef struct mini {
	IODMAEventSource *es;
	unsigned starts;
} mini;

static IOReturn mini_init(IODMAController *c, const iomem_dma_provider *p, IODMAEventSource *es, UInt32 *idx,
                          UInt32 req)
{
	(void)p; (void)req;
	((mini *)iomem_dma_controller_getContext(c))->es = es;
	*idx = 0;
	return kIOReturnSuccess;
}
static IOReturn mini_start(IODMAController *c, UInt32 idx, IODMACommand *cmd, IODirection dir, IOByteCount count,
                           IOByteCount offset)
{
	mini *t = iomem_dma_controller_getContext(c);
	(void)idx; (void)dir; (void)offset;
	t->starts++;
	IODMAController_notifyDMACommand(c, t->es, cmd, kIOReturnSuccess, count, 0);
	IODMAController_completeDMACommand(c, t->es, cmd);
	return kIOReturnSuccess;
}
static IOReturn mini_stop(IODMAController *c, UInt32 idx, bool flush, uint64_t timeout)
{
	(void)c; (void)idx; (void)flush; (void)timeout;
	return kIOReturnSuccess;
}
static IOReturn mini_query(IODMAController *c, UInt32 idx, IODMACommand **cmd, IOByteCount *n, bool wait)
{
	(void)c; (void)idx; (void)wait;
	if (cmd)
		*cmd = NULL;
	if (n)
		*n = 0;
	return kIOReturnSuccess;
}
static const iomem_dma_controller_ops mini_ops = {
	.name = "mini", .initDMAChannel = mini_init, .startDMACommand = mini_start,
	.stopDMACommand = mini_stop, .queryDMACommand = mini_query,
};

static const UInt32 mini_parent[] = { 0x5EED0001u };
static iomem_dma_provider mini_soc = { 0x5EED0001u, NULL, 0, NULL };
static iomem_dma_provider mini_dev = { 0x99, mini_parent, 1, NULL };

typedef struct owner {
	unsigned completions;
	uintptr_t last;
	bool in_order;
} owner;

static void on_done(void *o, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n, AbsoluteTime ts)
{
	owner *w = o;
	(void)es; (void)n; (void)ts;
	cr_expect_eq(st, kIOReturnSuccess);
	if ((uintptr_t)cmd != w->last + 1)
		w->in_order = false;
	w->last = (uintptr_t)cmd;
	w->completions++;
}

#define FAKE_CMD(i) ((IODMACommand *)(uintptr_t)(i))   /* never dereferenced by the event source */

static IODMAController *mini_up(mini *t)
{
	memset(t, 0, sizeof *t);
	IODMAController *c = iomem_dma_controller_withOps(&mini_ops, t, &mini_soc);
	cr_assert_not_null(c);
	cr_assert_eq(IODMAController_registerDMAController(c, 0), kIOReturnSuccess);
	return c;
}

static void mini_down(IODMAController *c)
{
	cr_assert_eq(iomem_dma_controller_unregister(c), kIOReturnSuccess);
	IODMAController_release(c);
}

IOMEM_TEST(inject_more, completions_beyond_the_record_cache)
{
	mini t;
	IODMAController *c = mini_up(&t);
	owner w = { 0, 0, true };
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&w, &mini_dev, on_done, NULL, 0);
	cr_assert_not_null(es);
	/* 3 rounds of 20 queued completions: more records than the event
	 * source keeps for reuse; all delivered, in order, none leaked */
	for (int round = 0; round < 3; round++) {
		for (uintptr_t i = 1; i <= 20; i++)
			cr_assert_eq(IODMAEventSource_startDMACommand(es, FAKE_CMD(i), kIODirectionOut, 0, 0), kIOReturnSuccess);
		w.last = 0;
		cr_expect_eq(w.completions, (unsigned)round * 20, "nothing delivered before run");
		cr_expect_eq(iomem_dma_event_source_run(es), 20);
		cr_expect_eq(w.completions, (unsigned)round * 20 + 20);
		cr_expect(w.in_order, "delivered out of order");
		cr_expect_eq(iomem_dma_event_source_run(es), 0);
	}
	cr_expect_eq(t.starts, 60);
	IODMAEventSource_release(es);
	mini_down(c);
}

typedef struct es_ctx { owner w; bool start; } es_ctx;

static bool op_event_source(void *ctx)
{
	es_ctx *x = ctx;
	IODMAEventSource *es = IODMAEventSource_dmaEventSource(&x->w, &mini_dev, on_done, NULL, 0);
	if (es == NULL || !x->start) {
		IODMAEventSource_release(es);
		return es != NULL;
	}
	/* armed only now: the first start needs a record */
	IOReturn r = IODMAEventSource_startDMACommand(es, FAKE_CMD(1), kIODirectionOut, 0, 0);
	cr_assert(r == kIOReturnSuccess || r == kIOReturnNoMemory, "%s", IOReturnString(r));
	unsigned before = x->w.completions;
	cr_expect_eq(iomem_dma_event_source_run(es), r == kIOReturnSuccess ? 1 : 0, "a failed start delivers nothing");
	cr_expect_eq(x->w.completions, before + (r == kIOReturnSuccess));
	IODMAEventSource_release(es);
	return r == kIOReturnSuccess;
}

IOMEM_TEST(inject_more, event_source_creation_and_first_start)
{
	mini t;
	IODMAController *c = mini_up(&t);
	es_ctx x = { { 0, 0, true }, false };
	uint64_t create_points = walk("dmaEventSource", op_event_source, &x);
	cr_expect_geq(create_points, IOMEM__DEBUG ? 1u : 0u);
	x.start = true;
	uint64_t start_points = walk("dmaEventSource + startDMACommand", op_event_source, &x);
#if IOMEM__DEBUG   /* without the debug layer walk() runs each call once and counts nothing */
	cr_expect_gt(start_points, create_points, "the first start allocates too");
#else
	(void)start_points;
#endif
	mini_down(c);
}

/* ---- maps ---- */

typedef struct map_ctx { IOBufferMemoryDescriptor *b; IOMemoryMap *whole; } map_ctx;

static bool op_set_mapping(void *ctx)
{
	map_ctx *x = ctx;
	IOMemoryMap *m = IOMemoryDescriptor_setMapping(x->b, kernel_task,
	                                               (IOVirtualAddress)(uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(x->b),
	                                               0);
	if (m != NULL) {
		cr_expect_eq(IOMemoryMap_getVirtualAddress(m),
		             (IOVirtualAddress)(uintptr_t)IOBufferMemoryDescriptor_getBytesNoCopy(x->b));
		IOMemoryMap_release(m);
	}
	return m != NULL;
}

static bool op_sub_map(void *ctx)
{
	map_ctx *x = ctx;
	IOMemoryMap *m = IOMemoryDescriptor_createMappingInTask(x->b, kernel_task, 0, kIOMapAnywhere, DESC_PAGE, DESC_PAGE);
	if (m != NULL) {
		cr_expect_eq(IOMemoryMap_getVirtualAddress(m), IOMemoryMap_getVirtualAddress(x->whole) + DESC_PAGE,
		             "a sub-map shares the live map's address");
		IOMemoryMap_release(m);
	}
	return m != NULL;
}

IOMEM_TEST(inject_more, set_mapping_and_sub_map)
{
	map_ctx x;
	x.b = IOBufferMemoryDescriptor_withOptions(kIODirectionInOut, 2 * DESC_PAGE, DESC_PAGE);
	cr_assert_not_null(x.b);
	x.whole = NULL;
	cr_expect_geq(walk("setMapping", op_set_mapping, &x), IOMEM__DEBUG ? 1u : 0u);
	x.whole = IOMemoryDescriptor_map(x.b, kIOMapAnywhere);
	cr_assert_not_null(x.whole);
	cr_expect_geq(walk("sub-map", op_sub_map, &x), IOMEM__DEBUG ? 1u : 0u);
	IOMemoryMap_release(x.whole);
	IOMemoryDescriptor_release(x.b);
}
