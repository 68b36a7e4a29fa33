/* SPDX-License-Identifier: MIT */
/*
 * t_dma.c - IODMAController and IODMAEventSource on bare metal, where the
 * controller's ops table is the firmware's own: here a model "memcpy DMA
 * peripheral" with two channels. A start latches the channel's programmed
 * source, destination and length; the transfer happens when the peripheral
 * "raises its interrupt" (fw_dma_irq(), called by the test where the NVIC
 * would call the handler), which moves the bytes and reports the completion
 * (notify + complete) from interrupt context. The owner's main loop
 * delivers completions with iomem_dma_event_source_run. A channel in
 * "instant" mode completes inside the start (a synchronous start then
 * returns at once; a real one would spin on the flag until the interrupt).
 * The commands are opaque tokens: this peripheral is programmed directly.
 */
#include "bmt.h"
#include "iomem_dma.h"

#define FW_CHANNELS 2

typedef struct fw_chan {
	IODMAEventSource *es;
	IODMACommand     *cmd;          /* running, or NULL */
	const unsigned char *src;
	unsigned char    *dst;
	IOByteCount       len;
	bool              instant;
	UInt8             frame;
} fw_chan;

typedef struct fw_dma {
	fw_chan ch[FW_CHANNELS];
	int     irqs;
} fw_dma;

static fw_dma fw;

static IOReturn fw_init(IODMAController *c, const iomem_dma_provider *p, IODMAEventSource *es, UInt32 *idx,
                        UInt32 req)
{
	fw_dma *d = (fw_dma *)iomem_dma_controller_getContext(c);
	UInt32 i;
	(void)p;
	(void)req;
	for (i = 0; i < FW_CHANNELS; i++) {
		if (d->ch[i].es == NULL) {
			d->ch[i].es = es;
			d->ch[i].frame = 1;
			*idx = i;
			return kIOReturnSuccess;
		}
	}
	return kIOReturnNoChannels;
}

static void fw_free_chan(IODMAController *c, UInt32 idx, IODMAEventSource *es)
{
	fw_dma *d = (fw_dma *)iomem_dma_controller_getContext(c);
	if (d->ch[idx].es == es)
		d->ch[idx].es = NULL;
}

/* the interrupt handler of channel @idx */
static void fw_dma_irq(IODMAController *c, UInt32 idx, IOReturn status)
{
	fw_dma *d = (fw_dma *)iomem_dma_controller_getContext(c);
	fw_chan *ch = &d->ch[idx];
	IODMACommand *cmd = ch->cmd;
	IOByteCount i, n = status == kIOReturnSuccess ? ch->len : 0;
	if (cmd == NULL)
		return;
	for (i = 0; i < n; i++)
		ch->dst[i] = ch->src[i];
	ch->cmd = NULL;
	d->irqs++;
	IODMAController_notifyDMACommand(c, ch->es, cmd, status, n, (AbsoluteTime)d->irqs);
	IODMAController_completeDMACommand(c, ch->es, cmd);
}

static IOReturn fw_start(IODMAController *c, UInt32 idx, IODMACommand *cmd, IODirection dir, IOByteCount count,
                         IOByteCount offset)
{
	fw_dma *d = (fw_dma *)iomem_dma_controller_getContext(c);
	(void)dir;
	(void)offset;
	if (d->ch[idx].cmd != NULL)
		return kIOReturnBusy;
	if (count > d->ch[idx].len)
		return kIOReturnNoSpace;
	if (count != 0)
		d->ch[idx].len = count;
	d->ch[idx].cmd = cmd;
	if (d->ch[idx].instant)
		fw_dma_irq(c, idx, kIOReturnSuccess);
	return kIOReturnSuccess;
}

static IOReturn fw_stop(IODMAController *c, UInt32 idx, bool flush, uint64_t timeout)
{
	fw_dma *d = (fw_dma *)iomem_dma_controller_getContext(c);
	(void)flush;
	(void)timeout;
	if (d->ch[idx].cmd == NULL)
		return kIOReturnNotReady;
	fw_dma_irq(c, idx, kIOReturnAborted);
	return kIOReturnSuccess;
}

static IOReturn fw_query(IODMAController *c, UInt32 idx, IODMACommand **cmd, IOByteCount *n, bool wait)
{
	fw_dma *d = (fw_dma *)iomem_dma_controller_getContext(c);
	(void)wait;
	if (cmd != NULL)
		*cmd = d->ch[idx].cmd;
	if (n != NULL)
		*n = 0;
	return kIOReturnSuccess;
}

static IOReturn fw_setframe(IODMAController *c, UInt32 idx, UInt8 b)
{
	fw_dma *d = (fw_dma *)iomem_dma_controller_getContext(c);
	if (b == 0)
		return kIOReturnBadArgument;
	d->ch[idx].frame = b;
	return kIOReturnSuccess;
}

static const iomem_dma_controller_ops fw_ops = {
	"fw-memcpy-dma", fw_init, fw_free_chan, fw_start, fw_stop, fw_query,
	NULL, NULL, NULL, fw_setframe, NULL, NULL, NULL, NULL, NULL
};

typedef struct fw_owner {
	int          completions, notifications;
	IOReturn     status;
	IOByteCount  count;
	IODMACommand *cmd;
} fw_owner;

static void fw_done(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                    AbsoluteTime ts)
{
	fw_owner *o = (fw_owner *)owner;
	(void)es;
	(void)ts;
	o->completions++;
	o->status = st;
	o->count = n;
	o->cmd = cmd;
}

static void fw_note(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st, IOByteCount n,
                    AbsoluteTime ts)
{
	(void)es; (void)cmd; (void)st; (void)n; (void)ts;
	((fw_owner *)owner)->notifications++;
}

static unsigned char src[512], dst[512];
static unsigned char tokens[4];

void bmt_suite_dma(void)
{
	static const UInt32 parents[] = { 0x1000u, 0x2000u };
	iomem_dma_provider soc = { 0x2000u, NULL, 0, NULL };
	iomem_dma_provider uart = { 0x3000u, parents, 2, NULL };
	char name[IOMEM_DMA_CONTROLLER_NAME_SIZE];
	fw_owner o = { 0, 0, 0, 0, NULL };
	IODMAController *c, *found;
	IODMAEventSource *es, *ss;
	IODMACommand *t0 = (IODMACommand *)(void *)&tokens[0];
	IODMACommand *t1 = (IODMACommand *)(void *)&tokens[1];
	size_t i;

	BMT_OK(bmt_streq(IODMAController_createControllerName(0xAB12u, name), "IODMAController0000AB12"),
	       "dma: createControllerName is IODMAController%08X");
	c = iomem_dma_controller_withOps(&fw_ops, &fw, &soc);
	BMT_OK(c != NULL && IODMAController_registerDMAController(c, 0) == kIOReturnSuccess,
	       "dma: the firmware's controller registers");
	found = IODMAController_getController(&uart, 1);
	BMT_OK(found == c, "dma: getController by dma-parent index");
	IODMAController_release(found);
	BMT_OK(IODMAController_getController(&uart, 0) == NULL, "dma: an unregistered parent gives NULL");

	es = IODMAEventSource_dmaEventSource(&o, &uart, fw_done, fw_note, 1);
	BMT_OK(es != NULL && iomem_dma_event_source_getDMAIndex(es) == 0, "dma: event source on channel 0");
	if (es == NULL)
		return;
	for (i = 0; i < sizeof src; i++)
		src[i] = (unsigned char)(i * 7 + 3);
	bmt_fill(dst, sizeof dst, 0);
	fw.ch[0].src = src;
	fw.ch[0].dst = dst;
	fw.ch[0].len = sizeof src;
	BMT_OK(IODMAEventSource_startDMACommand(es, t0, kIODirectionOut, 0, 0) == kIOReturnSuccess,
	       "dma: async start");
	BMT_OK(IODMAEventSource_startDMACommand(es, t1, kIODirectionOut, 0, 0) == kIOReturnBusy,
	       "dma: a second start on the busy channel: the controller's kIOReturnBusy");
	BMT_OK(iomem_dma_event_source_run(es) == 0 && o.completions == 0, "dma: nothing before the interrupt");
	fw_dma_irq(c, 0, kIOReturnSuccess);            /* the peripheral's interrupt */
	BMT_OK(o.notifications == 1 && o.completions == 0, "dma: notification at interrupt time, completion queued");
	BMT_OK(iomem_dma_event_source_run(es) == 1 && o.completions == 1 && o.cmd == t0 &&
	       o.status == kIOReturnSuccess && o.count == sizeof src, "dma: main loop delivers it once");
	BMT_OK(iomem_dma_event_source_run(es) == 0, "dma: and only once");
	{
		bool same = true;
		for (i = 0; i < sizeof src; i++)
			same &= dst[i] == src[i];
		BMT_OK(same, "dma: the bytes moved");
	}
	BMT_OK(IODMAEventSource_stopDMACommand(es, false, UINT64_MAX) == kIOReturnNotReady,
	       "dma: stop with nothing running");
	BMT_OK(IODMAEventSource_startDMACommand(es, t1, kIODirectionOut, 16, 0) == kIOReturnSuccess &&
	       IODMAEventSource_stopDMACommand(es, true, 0) == kIOReturnSuccess &&
	       iomem_dma_event_source_run(es) == 1 && o.status == kIOReturnAborted && o.cmd == t1,
	       "dma: a stopped command completes once, Aborted");
	BMT_OK(IODMAEventSource_setFrameSize(es, 4) == kIOReturnSuccess && fw.ch[0].frame == 4 &&
	       IODMAEventSource_setFIFODepth(es, 64) == kIOReturnUnsupported &&
	       IODMAEventSource_getFIFODepth(es, kIODirectionOut) == 0,
	       "dma: forwarding and the missing hooks' defaults");

	/* synchronous: the instant channel completes inside the start */
	ss = IODMAEventSource_dmaEventSource(&o, &uart, NULL, fw_note, 1);
	BMT_OK(ss != NULL && iomem_dma_event_source_getDMAIndex(ss) == 1, "dma: sync event source on channel 1");
	if (ss != NULL) {
		int notes = o.notifications;
		bmt_fill(dst, sizeof dst, 0);
		fw.ch[1].src = src;
		fw.ch[1].dst = dst;
		fw.ch[1].len = 100;
		fw.ch[1].instant = true;
		BMT_OK(IODMAEventSource_startDMACommand(ss, t0, kIODirectionOut, 0, 0) == kIOReturnSuccess &&
		       o.notifications == notes + 1 && dst[99] == src[99] && dst[100] == 0,
		       "dma: a synchronous start returns after the completion");
		BMT_OK(iomem_dma_event_source_run(ss) == 0, "dma: nothing queued without a completion action");
		IODMAEventSource_release(ss);
	}
	BMT_OK(IODMAEventSource_dmaEventSource(&o, &soc, fw_done, NULL, 0) == NULL,
	       "dma: a provider without dma-parent has no event source");
	IODMAEventSource_release(es);
	BMT_OK(fw.ch[0].es == NULL && fw.ch[1].es == NULL, "dma: released event sources free their channels");
	BMT_OK(iomem_dma_controller_unregister(c) == kIOReturnSuccess, "dma: unregister");
	IODMAController_release(c);
}
