/* SPDX-License-Identifier: MIT */
/*
 * bm_dma_controller.c - bare-metal firmware: a DMA controller driver for a
 * pretend memory-to-memory scatter-gather DMA engine, written against
 * iomem's IODMAController ops table, used through IODMAEventSource and
 * IODMACommand.
 *
 * THE PRETEND ENGINE ("m2m"), as a datasheet would describe it:
 *   - 2 channels; each takes a list of up to M2M_MAX_DESC hardware
 *     descriptors {source physical address, destination physical address,
 *     length}, a START bit, and raises its interrupt when the list is done;
 *   - it reads and writes physical memory, segment by segment, and cannot
 *     cross a 1 KiB boundary inside one descriptor (M2M_MAX_SEG).
 *   On QEMU there is no such device: m2m_irq_pending() plays the hardware
 *   (it runs the latched descriptor list) and the main loop calls the
 *   interrupt handler, as the NVIC would.
 *
 * THE DRIVER (the ops table, m2m_ops):
 *   initDMAChannel  hands out a free channel to an IODMAEventSource;
 *   startDMACommand turns the command's segments (the SOURCE) and the
 *                   destination command the client attached to the
 *                   channel (m2m_set_destination) into hardware
 *                   descriptors with IODMACommand_gen64IOVMSegments - both
 *                   commands were created with maxSegmentSize = 1 KiB, so
 *                   every segment fits one descriptor - and sets START;
 *   the interrupt   IODMAController_notifyDMACommand (interrupt time) and
 *                   IODMAController_completeDMACommand (queued: the main
 *                   loop's iomem_dma_event_source_run delivers it);
 *   stop / query    abort the list / report the running command.
 *
 * THE CLIENT (main): one heap arena for iomem; a source and a destination
 * buffer from IOMallocAligned described by IOMemoryDescriptors; two
 * IODMACommands (1 KiB segments, 32-bit engine); an IODMAEventSource on
 * channel "dma-parent" 0x51; start, wait in the main loop for the
 * completion, check every byte, repeat with an offset, then tear down.
 * Prints TAP (via the harness's bm.h) so tests/baremetal/run-example.sh
 * can judge it; CTest: baremetal.example.
 *
 * Build (cm4, say): tests/baremetal/build.sh cm4 /tmp/ex.elf
 *   examples/bm_dma_controller.c with EXTRA_CFLAGS=-I. (the repository
 *   root); run: tests/baremetal/run.sh cm4 /tmp/ex.elf.
 */
#include "bm.h"
#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"

#define M2M_CHANNELS 2
#define M2M_MAX_DESC 32
#define M2M_MAX_SEG  1024u
#define M2M_PHANDLE  0x51u

/* ---- the hardware's registers (a struct here, MMIO on a real chip) ---- */
typedef struct m2m_hw_desc { uint64_t src, dst, len; } m2m_hw_desc;

typedef struct m2m_channel {
	IODMAEventSource *es;          /* owner, NULL when free */
	IODMACommand     *running;     /* the source command being moved */
	IODMACommand     *dest;        /* attached by the client */
	m2m_hw_desc       list[M2M_MAX_DESC];
	unsigned          count;       /* descriptors latched */
	bool              start;       /* the START bit */
	IOByteCount       moved;
} m2m_channel;

typedef struct m2m_engine {
	m2m_channel ch[M2M_CHANNELS];
	uint64_t    irqs;
} m2m_engine;

static m2m_engine m2m;

/* The engine works on physical addresses; this board's translation is
 * the identity (iomem_baremetal_init without translation hooks). */
static void *m2m_phys(uint64_t pa)
{
	return (void *)(uintptr_t)pa;
}

/* ---- the ops table ------------------------------------------------------- */

static IOReturn m2m_init_channel(IODMAController *c, const iomem_dma_provider *p, IODMAEventSource *es,
                                 UInt32 *idx, UInt32 req)
{
	m2m_engine *e = (m2m_engine *)iomem_dma_controller_getContext(c);
	UInt32 i;
	(void)p;
	(void)req;
	for (i = 0; i < M2M_CHANNELS; i++) {
		if (e->ch[i].es == NULL) {
			e->ch[i].es = es;
			*idx = i;
			return kIOReturnSuccess;
		}
	}
	return kIOReturnNoChannels;
}

static void m2m_free_channel(IODMAController *c, UInt32 idx, IODMAEventSource *es)
{
	m2m_engine *e = (m2m_engine *)iomem_dma_controller_getContext(c);
	if (e->ch[idx].es == es) {
		e->ch[idx].es = NULL;
		e->ch[idx].dest = NULL;
	}
}

/* Pair source and destination segments into <= 1 KiB descriptors. */
static IOReturn m2m_program(m2m_channel *ch, IODMACommand *src, IOByteCount count)
{
	IODMACommand_Segment64 s, d;
	UInt64 soff = 0, doff = 0;
	IOByteCount sleft = 0, dleft = 0, total = 0;
	uint64_t spa = 0, dpa = 0;
	ch->count = 0;
	while (total < count) {
		UInt32 n = 1;
		uint64_t len;
		if (sleft == 0) {
			if (IODMACommand_gen64IOVMSegments(src, &soff, &s, &n) != kIOReturnSuccess)
				return kIOReturnUnderrun;
			spa = s.fIOVMAddr;
			sleft = (IOByteCount)s.fLength;
		}
		n = 1;
		if (dleft == 0) {
			if (IODMACommand_gen64IOVMSegments(ch->dest, &doff, &d, &n) != kIOReturnSuccess)
				return kIOReturnNoSpace;        /* destination shorter than the transfer */
			dpa = d.fIOVMAddr;
			dleft = (IOByteCount)d.fLength;
		}
		len = sleft < dleft ? sleft : dleft;
		if (len > count - total)
			len = count - total;
		if (ch->count == M2M_MAX_DESC)
			return kIOReturnNoResources;
		ch->list[ch->count].src = spa;
		ch->list[ch->count].dst = dpa;
		ch->list[ch->count].len = len;
		ch->count++;
		spa += len;
		dpa += len;
		sleft -= (IOByteCount)len;
		dleft -= (IOByteCount)len;
		total += (IOByteCount)len;
	}
	return kIOReturnSuccess;
}

static IOReturn m2m_start(IODMAController *c, UInt32 idx, IODMACommand *cmd, IODirection dir, IOByteCount count,
                          IOByteCount offset)
{
	m2m_engine *e = (m2m_engine *)iomem_dma_controller_getContext(c);
	m2m_channel *ch = &e->ch[idx];
	UInt64 plen = 0;
	IOReturn r;
	(void)dir;
	(void)offset;
	if (ch->running != NULL)
		return kIOReturnBusy;
	if (ch->dest == NULL)
		return kIOReturnNotReady;
	if (IODMACommand_getPreparedOffsetAndLength(cmd, NULL, &plen) != kIOReturnSuccess)
		return kIOReturnNotReady;
	if (count == 0 || count > plen)
		count = (IOByteCount)plen;
	r = m2m_program(ch, cmd, count);
	if (r != kIOReturnSuccess)
		return r;
	ch->running = cmd;
	ch->moved = 0;
	ch->start = true;                       /* the START bit */
	return kIOReturnSuccess;
}

static IOReturn m2m_stop(IODMAController *c, UInt32 idx, bool flush, uint64_t timeout)
{
	m2m_engine *e = (m2m_engine *)iomem_dma_controller_getContext(c);
	m2m_channel *ch = &e->ch[idx];
	IODMACommand *cmd = ch->running;
	(void)flush;
	(void)timeout;
	if (cmd == NULL)
		return kIOReturnNotReady;
	ch->start = false;
	ch->running = NULL;
	IODMAController_notifyDMACommand(c, ch->es, cmd, kIOReturnAborted, ch->moved, (AbsoluteTime)e->irqs);
	IODMAController_completeDMACommand(c, ch->es, cmd);
	return kIOReturnSuccess;
}

static IOReturn m2m_query(IODMAController *c, UInt32 idx, IODMACommand **cmd, IOByteCount *n, bool wait)
{
	m2m_engine *e = (m2m_engine *)iomem_dma_controller_getContext(c);
	(void)wait;
	if (cmd != NULL)
		*cmd = e->ch[idx].running;
	if (n != NULL)
		*n = e->ch[idx].moved;
	return kIOReturnSuccess;
}

static const iomem_dma_controller_ops m2m_ops = {
	.name = "m2m-sg-dma",
	.initDMAChannel = m2m_init_channel,
	.freeDMAChannel = m2m_free_channel,
	.startDMACommand = m2m_start,
	.stopDMACommand = m2m_stop,
	.queryDMACommand = m2m_query,
};

/* The client's extra register: where the channel writes. */
static void m2m_set_destination(UInt32 idx, IODMACommand *dest)
{
	m2m.ch[idx].dest = dest;
}

/* ---- "hardware" and interrupt ------------------------------------------- */

/* What the silicon does while the CPU is elsewhere: run a started list.
 * Returns true when the channel's interrupt line is raised. */
static bool m2m_irq_pending(UInt32 idx)
{
	m2m_channel *ch = &m2m.ch[idx];
	unsigned i;
	if (!ch->start)
		return false;
	for (i = 0; i < ch->count; i++) {
		iomem__memcpy(m2m_phys(ch->list[i].dst), m2m_phys(ch->list[i].src), (size_t)ch->list[i].len);
		ch->moved += (IOByteCount)ch->list[i].len;
	}
	ch->start = false;
	return true;
}

/* The interrupt handler of channel @idx. */
static void m2m_irq_handler(IODMAController *c, UInt32 idx)
{
	m2m_channel *ch = &m2m.ch[idx];
	IODMACommand *cmd = ch->running;
	if (cmd == NULL)
		return;
	ch->running = NULL;
	m2m.irqs++;
	IODMAController_notifyDMACommand(c, ch->es, cmd, kIOReturnSuccess, ch->moved, (AbsoluteTime)m2m.irqs);
	IODMAController_completeDMACommand(c, ch->es, cmd);
}

/* ---- the client ---------------------------------------------------------- */

typedef struct client {
	int          done, notes;
	IOReturn     status;
	IOByteCount  count;
} client;

static void on_complete(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                        AbsoluteTime ts)
{
	client *cl = (client *)owner;
	(void)es; (void)cmd; (void)ts;
	cl->done++;
	cl->status = st;
	cl->count = n;
}

static void on_notify(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                      AbsoluteTime ts)
{
	(void)es; (void)cmd; (void)st; (void)n; (void)ts;
	((client *)owner)->notes++;
}

static uint64_t arena[96 * 1024 / 8];

#define XFER (5u * 1024u + 300u)

int main(void)
{
	static const UInt32 parents[] = { M2M_PHANDLE };
	iomem_dma_provider soc = { M2M_PHANDLE, NULL, 0, NULL };
	iomem_dma_provider dev = { 0x60u, parents, 1, NULL };
	iomem_baremetal_desc desc = { .heap = { { arena, sizeof arena } } };
	client cl = { 0, 0, 0, 0 };
	IODMAController *ctl;
	IODMAEventSource *es;
	IOMemoryDescriptor *smd, *dmd;
	IODMACommand *scmd, *dcmd;
	unsigned char *src, *dst;
	IOByteCount i;
	bool same;
	int spins;

	bm_puts("# examples/bm_dma_controller.c: an IODMAController ops table for a pretend m2m DMA engine\n");
	BM_OK(iomem_baremetal_init(&desc) == kIOReturnSuccess, "init: one heap arena");
	ctl = iomem_dma_controller_withOps(&m2m_ops, &m2m, &soc);
	BM_OK(ctl != NULL && IODMAController_registerDMAController(ctl, 0) == kIOReturnSuccess,
	      "controller: registered under its phandle");
	es = IODMAEventSource_dmaEventSource(&cl, &dev, on_complete, on_notify, 0);
	BM_OK(es != NULL, "event source: a channel of the engine, found through dma-parent");
	if (ctl == NULL || es == NULL)
		return bm_tap_done();

	src = (unsigned char *)IOMallocAligned(XFER + 100, 64);
	dst = (unsigned char *)IOMallocAligned(XFER + 100, 64);
	smd = src != NULL ? IOMemoryDescriptor_withAddress(src, XFER + 100, kIODirectionOut) : NULL;
	dmd = dst != NULL ? IOMemoryDescriptor_withAddress(dst, XFER + 100, kIODirectionIn) : NULL;
	scmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, M2M_MAX_SEG, IODMACommand_kMapped, 0, 1,
	                                      NULL, NULL);
	dcmd = IODMACommand_withSpecification(kIODMACommandOutputHost64, 32, M2M_MAX_SEG, IODMACommand_kMapped, 0, 1,
	                                      NULL, NULL);
	BM_OK(smd != NULL && dmd != NULL && scmd != NULL && dcmd != NULL, "buffers, descriptors, commands");
	if (smd == NULL || dmd == NULL || scmd == NULL || dcmd == NULL)
		return bm_tap_done();
	for (i = 0; i < XFER + 100; i++) {
		src[i] = (unsigned char)(i * 13u + 5u);
		dst[i] = 0;
	}
	BM_OK(IODMACommand_setMemoryDescriptor(scmd, smd, false) == kIOReturnSuccess &&
	      IODMACommand_setMemoryDescriptor(dcmd, dmd, false) == kIOReturnSuccess &&
	      IODMACommand_prepare(scmd, 0, XFER, true, true) == kIOReturnSuccess &&
	      IODMACommand_prepare(dcmd, 0, XFER, true, true) == kIOReturnSuccess,
	      "commands prepared for the transfer");
	m2m_set_destination(iomem_dma_event_source_getDMAIndex(es), dcmd);

	BM_OK(IODMAEventSource_startDMACommand(es, scmd, kIODirectionOut, 0, 0) == kIOReturnSuccess,
	      "start: the driver programmed the descriptor list");
	BM_OK(m2m.ch[0].count >= XFER / M2M_MAX_SEG, "start: at least one hardware descriptor per KiB");
	/* the main loop: wait for the interrupt, deliver the completion */
	for (spins = 0; cl.done == 0 && spins < 10; spins++) {
		if (m2m_irq_pending(0))
			m2m_irq_handler(ctl, 0);           /* the NVIC would call it */
		(void)iomem_dma_event_source_run(es);
	}
	BM_OK(cl.done == 1 && cl.notes == 1 && cl.status == kIOReturnSuccess && cl.count == XFER,
	      "completion: once, success, every byte counted");
	same = true;
	for (i = 0; i < XFER; i++)
		same &= dst[i] == src[i];
	BM_OK(same && dst[XFER] == 0, "data: every byte moved, nothing past the end");

	/* abort path: start, stop before the interrupt */
	BM_OK(IODMAEventSource_startDMACommand(es, scmd, kIODirectionOut, 1000, 0) == kIOReturnSuccess &&
	      IODMAEventSource_stopDMACommand(es, true, 0) == kIOReturnSuccess &&
	      iomem_dma_event_source_run(es) == 1 && cl.done == 2 && cl.status == kIOReturnAborted,
	      "stop: an aborted transfer completes once with kIOReturnAborted");
	BM_OK(!m2m.ch[0].start && m2m.ch[0].running == NULL && !m2m_irq_pending(0),
	      "stop: START clear, nothing running, no interrupt raised");

	IODMACommand_complete(scmd, true, true);
	IODMACommand_complete(dcmd, true, true);
	IODMACommand_clearMemoryDescriptor(scmd, true);
	IODMACommand_clearMemoryDescriptor(dcmd, true);
	IODMACommand_release(scmd);
	IODMACommand_release(dcmd);
	IOMemoryDescriptor_release(smd);
	IOMemoryDescriptor_release(dmd);
	IOFreeAligned(src, XFER + 100);
	IOFreeAligned(dst, XFER + 100);
	IODMAEventSource_release(es);
	BM_OK(m2m.ch[0].es == NULL, "teardown: the channel is free again");
	BM_OK(iomem_dma_controller_unregister(ctl) == kIOReturnSuccess, "teardown: controller unregistered");
	IODMAController_release(ctl);
	BM_OK(iomem_baremetal_heap_check(NULL) == kIOReturnSuccess, "teardown: heap invariants hold");
	return bm_tap_done();
}
