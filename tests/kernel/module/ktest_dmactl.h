/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * ktest_dmactl.h - IODMAController and IODMAEventSource inside the kernel
 * (issue #11 item 4): QEMU's edu device's DMA engine as an IODMAController,
 * found through the controller registry and driven through IODMAEventSource
 * with IODMACommands mapped by iomem_linux_mapper_for_device; and the
 * Linux backend's dmaengine controller (iomem_linux_dmaengine_controller_create),
 * which SKIPs when the kernel has no memcpy channel (Debian's cloud kernel:
 * CONFIG_DMADEVICES is not set).
 *
 * Included once by iomem_ktest.c after its TAP helpers and ktest_dmacmd.h;
 * KTEST_DMACTL_CASES goes into its table. The edu cases run in the plain
 * module only (the first module binds the device).
 *
 * THE EDU CONTROLLER ("kc_"): one channel; its device side is edu's 4 KiB
 * buffer. startDMACommand(cmd, dir, count, offset) moves the command's
 * bytes [offset, offset + count) of the prepared range to (kIODirectionOut)
 * or from (kIODirectionIn) edu buffer bytes [0, count): the segments come
 * from IODMACommand_gen64IOVMSegments one at a time (dma_addr_ts the kernel
 * mapped), each moved in edu transfers of at most KC_EDU_PIECE bytes (its
 * "FIFO depth": a stop takes effect between them). Each transfer raises
 * edu's DMA interrupt (cmd bit 0x4; MSI, INTx in the swiotlb run): the hard
 * handler acks it, the threaded handler (process context: genIOVMSegments
 * may sleep) programs the
 * next segment or finishes: notify (status, bytes moved, ktime ns) then
 * complete. Completions are delivered on the system workqueue (the
 * signalWorkAvailable hook runs iomem_dma_event_source_run there): the
 * "work loop" of the owner.
 *
 * Errors (mirroring the POSIX engine, iomem_dma.h >>posixdma):
 *   start  kIOReturnBadArgument (NULL command, direction not In or Out,
 *          offset/count beyond the prepared length, an empty transfer),
 *          kIOReturnNotReady (command not prepared), kIOReturnNoSpace (more
 *          than KC_EDU_WINDOW bytes: the device buffer), kIOReturnBusy
 *          (running), or genIOVMSegments' error for the first segment;
 *   stop   kIOReturnNotReady (nothing running), kIOReturnTimeout; edu
 *          cannot abort a transfer in flight, so the stop takes effect at
 *          the next segment boundary: status kIOReturnAborted and the bytes
 *          moved so far;
 *   query  success: the running or last command and its bytes moved;
 *          waitForIdle waits for the running one (never from the
 *          notification action: it runs on the IRQ thread).
 */
#ifndef KTEST_DMACTL_H
#define KTEST_DMACTL_H

#include <linux/interrupt.h>
#include <linux/workqueue.h>
#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/ktime.h>

#define KC_EDU_REG_IRQ_STATUS	0x24
#define KC_EDU_REG_IRQ_ACK	0x64
#define KC_EDU_IRQ_DMA		0x100
#define KC_EDU_DMA_IRQ		0x4	/* cmd bit: raise KC_EDU_IRQ_DMA when done */
/* QEMU 7.2's edu aborts the VM on a transfer that ends exactly at the end
 * of its buffer (tests/kernel/README.md pitfall 2): one byte less. */
#define KC_EDU_WINDOW		(KTEST_EDU_BUF_SIZE - 1)
/* The controller moves at most this much per edu transfer (its "FIFO"):
 * a stop takes effect at the next piece even inside one long IOVA run. */
#define KC_EDU_PIECE		1024u
#define KC_EDU_PHANDLE		0xED0u	/* the controller's "AAPL,phandle" */
#define KC_CLIENT_PHANDLE	0x1EDu

struct kc_edu {
	struct ktest_edu   *edu;
	IODMAController    *ctl;
	iomem_dma_provider  self;
	int                 irq;
	bool                msi;
	struct mutex        lock;		/* everything below */
	IODMAEventSource   *es;		/* the channel's owner, or NULL */
	IODMACommand       *running, *last;
	IODirection         dir;
	UInt64              off, end;	/* next/end offset in the command */
	UInt64              next_gen;	/* genIOVMSegments' resume offset */
	IODMACommand_Segment64 seg;	/* the segment being moved */
	UInt64              seg_done;	/* bytes of @seg already moved */
	UInt64              cur;		/* bytes of the transfer in flight */
	IOByteCount         moved;
	bool                stop_req;
	struct completion   idle;
	u64                 irqs;
	/* the completion "work loop" */
	struct work_struct  work;
	spinlock_t          work_lock;
	IODMAEventSource   *work_es;	/* +1 while queued */
};

/* Program edu for the next piece: the rest of the current segment (a new
 * one when it is used up), at most up to the end of the transfer. The lock
 * is held. kIOReturnSuccess, or genIOVMSegments' error. */
static IOReturn kc_program(struct kc_edu *k)
{
	void __iomem *bar = k->edu->bar;
	u64 len, dev, addr;

	if (k->seg_done == k->seg.fLength) {
		UInt32 n = 1;
		UInt64 o = k->next_gen;
		IOReturn r = IODMACommand_gen64IOVMSegments(k->running, &o, &k->seg, &n);

		if (r != kIOReturnSuccess)
			return r;
		if (n != 1 || k->seg.fLength == 0)
			return kIOReturnUnderrun;
		k->next_gen = o;
		k->seg_done = 0;
	}
	len = min_t(u64, k->seg.fLength - k->seg_done, k->end - k->off);
	len = min_t(u64, len, KC_EDU_PIECE);
	addr = k->seg.fIOVMAddr + k->seg_done;
	dev = KTEST_EDU_BUF + k->moved;
	k->cur = len;
	if (k->dir == kIODirectionOut) {	/* memory -> device buffer */
		writeq(addr, bar + KTEST_EDU_REG_DMA_SRC);
		writeq(dev, bar + KTEST_EDU_REG_DMA_DST);
	} else {				/* device buffer -> memory */
		writeq(dev, bar + KTEST_EDU_REG_DMA_SRC);
		writeq(addr, bar + KTEST_EDU_REG_DMA_DST);
	}
	writeq(len, bar + KTEST_EDU_REG_DMA_CNT);
	writeq(KTEST_EDU_DMA_RUN | KC_EDU_DMA_IRQ | (k->dir == kIODirectionIn ? KTEST_EDU_DMA_TO_RAM : 0),
	       bar + KTEST_EDU_REG_DMA_CMD);
	return kIOReturnSuccess;
}

/* The command is over (lock held on entry, dropped here): report it. */
static void kc_finish_unlock(struct kc_edu *k, IOReturn status)
{
	IODMACommand *cmd = k->running;
	IODMAEventSource *es = k->es;
	IOByteCount moved = k->moved;

	k->last = cmd;
	k->running = NULL;
	k->stop_req = false;
	/* idle before the unlock: a start made from the completion action
	 * re-arms it, and must not find it completed by this one */
	complete_all(&k->idle);
	mutex_unlock(&k->lock);
	IODMAController_notifyDMACommand(k->ctl, es, cmd, status, moved, (AbsoluteTime)ktime_get_ns());
	IODMAController_completeDMACommand(k->ctl, es, cmd);
}

static irqreturn_t kc_hardirq(int irq, void *data)
{
	struct kc_edu *k = data;
	u32 st = readl(k->edu->bar + KC_EDU_REG_IRQ_STATUS);

	if (!(st & KC_EDU_IRQ_DMA))
		return IRQ_NONE;
	writel(KC_EDU_IRQ_DMA, k->edu->bar + KC_EDU_REG_IRQ_ACK);
	return IRQ_WAKE_THREAD;
}

static irqreturn_t kc_irq_thread(int irq, void *data)
{
	struct kc_edu *k = data;
	IOReturn r;

	mutex_lock(&k->lock);
	k->irqs++;
	if (!k->running) {
		mutex_unlock(&k->lock);
		return IRQ_HANDLED;
	}
	k->moved += (IOByteCount)k->cur;
	k->off += k->cur;
	k->seg_done += k->cur;
	k->cur = 0;
	if (k->off == k->end) {
		kc_finish_unlock(k, kIOReturnSuccess);
	} else if (k->stop_req) {
		kc_finish_unlock(k, kIOReturnAborted);
	} else {
		r = kc_program(k);
		if (r != kIOReturnSuccess)
			kc_finish_unlock(k, r);
		else
			mutex_unlock(&k->lock);
	}
	return IRQ_HANDLED;
}

/* ---- the ops table ------------------------------------------------------- */

static IOReturn kc_init_channel(IODMAController *c, const iomem_dma_provider *p, IODMAEventSource *es,
				UInt32 *idx, UInt32 req)
{
	struct kc_edu *k = iomem_dma_controller_getContext(c);
	IOReturn r = kIOReturnNoChannels;

	mutex_lock(&k->lock);
	if (!k->es) {
		k->es = es;
		*idx = 0;
		r = kIOReturnSuccess;
	}
	mutex_unlock(&k->lock);
	return r;
}

static void kc_free_channel(IODMAController *c, UInt32 idx, IODMAEventSource *es)
{
	struct kc_edu *k = iomem_dma_controller_getContext(c);

	mutex_lock(&k->lock);
	if (k->es == es) {
		k->es = NULL;
		k->last = NULL;
	}
	mutex_unlock(&k->lock);
}

static IOReturn kc_start(IODMAController *c, UInt32 idx, IODMACommand *cmd, IODirection dir,
			 IOByteCount count, IOByteCount offset)
{
	struct kc_edu *k = iomem_dma_controller_getContext(c);
	UInt64 plen = 0;
	IOReturn r;

	if (!cmd || (dir != kIODirectionIn && dir != kIODirectionOut))
		return kIOReturnBadArgument;
	if (IODMACommand_getPreparedOffsetAndLength(cmd, NULL, &plen) != kIOReturnSuccess)
		return kIOReturnNotReady;
	if (offset > plen || count > plen - offset)
		return kIOReturnBadArgument;
	if (count == 0)
		count = (IOByteCount)(plen - offset);
	if (count == 0)
		return kIOReturnBadArgument;
	if (count > KC_EDU_WINDOW)
		return kIOReturnNoSpace;
	mutex_lock(&k->lock);
	if (k->running) {
		mutex_unlock(&k->lock);
		return kIOReturnBusy;
	}
	k->running = cmd;
	k->dir = dir;
	k->off = offset;
	k->end = (UInt64)offset + count;
	k->next_gen = offset;
	k->seg.fLength = 0;
	k->seg_done = 0;
	k->moved = 0;
	k->stop_req = false;
	reinit_completion(&k->idle);
	r = kc_program(k);
	if (r != kIOReturnSuccess) {
		k->running = NULL;
		complete_all(&k->idle);
	}
	mutex_unlock(&k->lock);
	return r;
}

static IOReturn kc_stop(IODMAController *c, UInt32 idx, bool flush, uint64_t timeout)
{
	struct kc_edu *k = iomem_dma_controller_getContext(c);
	unsigned long j;

	mutex_lock(&k->lock);
	if (!k->running) {
		mutex_unlock(&k->lock);
		return kIOReturnNotReady;
	}
	k->stop_req = true;
	mutex_unlock(&k->lock);
	if (timeout == U64_MAX) {
		wait_for_completion(&k->idle);
		return kIOReturnSuccess;
	}
	j = nsecs_to_jiffies(timeout);
	return wait_for_completion_timeout(&k->idle, j ? j : 1) ? kIOReturnSuccess : kIOReturnTimeout;
}

static IOReturn kc_query(IODMAController *c, UInt32 idx, IODMACommand **cmd, IOByteCount *n, bool wait)
{
	struct kc_edu *k = iomem_dma_controller_getContext(c);

	if (wait)
		wait_for_completion(&k->idle);
	mutex_lock(&k->lock);
	if (cmd)
		*cmd = k->running ? k->running : k->last;
	if (n)
		*n = k->moved;
	mutex_unlock(&k->lock);
	return kIOReturnSuccess;
}

static UInt64 kc_frames(IODMAController *c, UInt32 idx)
{
	struct kc_edu *k = iomem_dma_controller_getContext(c);
	UInt64 n;

	mutex_lock(&k->lock);
	n = k->moved;
	mutex_unlock(&k->lock);
	return n;
}

static IOByteCount kc_fifo_depth(IODMAController *c, UInt32 idx, IODirection dir)
{
	return KC_EDU_PIECE;
}

static void kc_work(struct work_struct *w)
{
	struct kc_edu *k = container_of(w, struct kc_edu, work);
	IODMAEventSource *es;

	spin_lock_irq(&k->work_lock);
	es = k->work_es;
	k->work_es = NULL;
	spin_unlock_irq(&k->work_lock);
	if (es) {
		iomem_dma_event_source_run(es);
		IODMAEventSource_release(es);
	}
}

/* a completion is queued on @es: drain it on the system workqueue */
static void kc_signal(IODMAController *c, IODMAEventSource *es)
{
	struct kc_edu *k = iomem_dma_controller_getContext(c);
	IODMAEventSource *drop = NULL;

	IODMAEventSource_retain(es);
	spin_lock_irq(&k->work_lock);
	if (k->work_es == es)
		drop = es;		/* the queued run drains this one too */
	else if (k->work_es)
		drop = k->work_es;	/* one channel: cannot happen; keep the newest */
	if (drop != es)
		k->work_es = es;
	spin_unlock_irq(&k->work_lock);
	if (drop == es) {
		IODMAEventSource_release(es);
	} else {
		if (drop)
			IODMAEventSource_release(drop);
		queue_work(system_wq, &k->work);
	}
}

static const iomem_dma_controller_ops kc_ops = {
	.name = "edu",
	.initDMAChannel = kc_init_channel,
	.freeDMAChannel = kc_free_channel,
	.startDMACommand = kc_start,
	.stopDMACommand = kc_stop,
	.queryDMACommand = kc_query,
	.getFIFODepth = kc_fifo_depth,
	.getFrameCount = kc_frames,
	.signalWorkAvailable = kc_signal,
};

/* The edu controller: IRQ wired, created and registered. NULL on failure
 * (DIAG says why). */
static struct kc_edu *kc_edu_create(void)
{
	struct pci_dev *pdev = ktest_edu->pdev;
	struct kc_edu *k = kzalloc(sizeof(*k), GFP_KERNEL);
	int ret;

	if (!k)
		return NULL;
	k->edu = ktest_edu;
	k->irq = -1;
	k->self.phandle = KC_EDU_PHANDLE;
	mutex_init(&k->lock);
	init_completion(&k->idle);
	complete_all(&k->idle);
	spin_lock_init(&k->work_lock);
	INIT_WORK(&k->work, kc_work);
	/* MSI where it can; the swiotlb run takes legacy INTx (a shared,
	 * level-triggered line), so the suite exercises both paths */
	ret = pci_alloc_irq_vectors(pdev, 1, 1, strcmp(mode, "swiotlb") ? PCI_IRQ_MSI | PCI_IRQ_LEGACY
								    : PCI_IRQ_LEGACY);
	if (ret < 0) {
		DIAG("pci_alloc_irq_vectors: %d", ret);
		goto fail;
	}
	k->msi = pdev->msi_enabled;
	ret = request_threaded_irq(pci_irq_vector(pdev, 0), kc_hardirq, kc_irq_thread,
				   k->msi ? 0 : IRQF_SHARED, KBUILD_MODNAME, k);
	if (ret) {
		DIAG("request_threaded_irq: %d", ret);
		pci_free_irq_vectors(pdev);
		goto fail;
	}
	k->irq = pci_irq_vector(pdev, 0);
	writel(~0u, k->edu->bar + KC_EDU_REG_IRQ_ACK);	/* nothing stale */
	k->ctl = iomem_dma_controller_withOps(&kc_ops, k, &k->self);
	if (!k->ctl || IODMAController_registerDMAController(k->ctl, 0) != kIOReturnSuccess) {
		DIAG("controller creation or registration failed");
		goto fail;
	}
	DIAG("edu controller %s: irq %d (%s)", iomem_dma_controller_getName(k->ctl), k->irq,
	     k->msi ? "MSI" : "INTx");
	return k;
fail:
	if (k->irq >= 0) {
		free_irq(k->irq, k);
		pci_free_irq_vectors(pdev);
	}
	IODMAController_release(k->ctl);
	kfree(k);
	return NULL;
}

static void kc_edu_destroy(struct kc_edu *k)
{
	if (!k)
		return;
	EXPECT(!k->running);
	EXPECT_EQ(iomem_dma_controller_unregister(k->ctl), kIOReturnSuccess);
	IODMAController_release(k->ctl);
	flush_work(&k->work);
	free_irq(k->irq, k);
	pci_free_irq_vectors(k->edu->pdev);
	mutex_destroy(&k->lock);
	kfree(k);
}

/* ---- the client (the owner of the event source) --------------------------- */

struct kc_client {
	int                 completions, notifications;
	IODMAEventSource   *es;
	IODMACommand       *cmd;
	IOReturn            status, nstatus;
	IOByteCount         count, ncount;
	AbsoluteTime        ts;
	bool                wrong_es;
	struct completion   done;
};

static void kc_on_complete(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st,
			   IOByteCount n, AbsoluteTime ts)
{
	struct kc_client *cl = owner;

	cl->wrong_es |= es != cl->es;
	cl->cmd = cmd;
	cl->status = st;
	cl->count = n;
	cl->ts = ts;
	cl->completions++;
	complete(&cl->done);
}

static void kc_on_notify(void *owner, IODMAEventSource *es, IODMACommand *cmd, IOReturn st,
			 IOByteCount n, AbsoluteTime ts)
{
	struct kc_client *cl = owner;

	cl->wrong_es |= es != cl->es;
	cl->nstatus = st;
	cl->ncount = n;
	cl->notifications++;
}

/* wait for the next completion action (5 s) */
static bool kc_wait(struct kc_client *cl)
{
	return EXPECT(wait_for_completion_timeout(&cl->done, msecs_to_jiffies(5000)) > 0);
}

/* a device-mapped command over @md, @len bytes from offset 0, prepared */
static IODMACommand *kc_cmd(IOMapper *mapper, IOMemoryDescriptor *md)
{
	IODMACommand *cmd = IODMACommand_withSpecification(IODMACommand_OutputHost64, (UInt8)edu_mask_bits, 0,
							   IODMACommand_kMapped, 0, 1, mapper, NULL);

	if (cmd && !EXPECT_EQ(IODMACommand_setMemoryDescriptor(cmd, md, true), kIOReturnSuccess)) {
		IODMACommand_release(cmd);
		cmd = NULL;
	}
	return cmd;
}

struct kc_env {
	struct kc_edu      *k;
	IOMapper           *mapper;
	struct kc_client    cl;
	iomem_dma_provider  dev;
	UInt32              parent;
};

static bool kc_env_open(struct kc_env *e, bool async)
{
	memset(e, 0, sizeof(*e));
	init_completion(&e->cl.done);
	e->parent = KC_EDU_PHANDLE;
	e->dev.phandle = KC_CLIENT_PHANDLE;
	e->dev.dmaParent = &e->parent;
	e->dev.dmaParentCount = 1;
	e->k = kc_edu_create();
	e->mapper = iomem_linux_mapper_for_device(&ktest_edu->pdev->dev);
	if (!EXPECT(e->k && e->mapper))
		return false;
	e->cl.es = IODMAEventSource_dmaEventSource(&e->cl, &e->dev, async ? kc_on_complete : NULL,
						   kc_on_notify, 0);
	return EXPECT(e->cl.es != NULL) && EXPECT_EQ(iomem_dma_event_source_getDMAIndex(e->cl.es), 0);
}

static void kc_env_close(struct kc_env *e)
{
	if (e->k)
		flush_work(&e->k->work);	/* its reference on the event source */
	IODMAEventSource_release(e->cl.es);
	if (e->k)
		EXPECT(e->k->es == NULL);	/* freeDMAChannel ran */
	kc_edu_destroy(e->k);
	IOMapper_release(e->mapper);
	EXPECT(!e->cl.wrong_es);
}

/* ---- the cases ------------------------------------------------------------ */

/* the registry: IOKit's name, lookup by dma-parent, one controller per name */
static void t_dmactl_edu_registry(void)
{
	UInt32 parents[2] = { 0x1234u, KC_EDU_PHANDLE };
	iomem_dma_provider two = { 0x77u, parents, 2, NULL };
	IODMAController *c, *dup;
	struct kc_edu *k;

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	k = kc_edu_create();
	if (!EXPECT(k))
		return;
	EXPECT_STREQ(iomem_dma_controller_getName(k->ctl), "IODMAController00000ED0");
	c = IODMAController_getController(&two, 1);
	EXPECT(c == k->ctl);
	IODMAController_release(c);
	EXPECT(IODMAController_getController(&two, 0) == NULL);	/* 0x1234: nobody */
	dup = iomem_dma_controller_withOps(&kc_ops, k, &k->self);
	if (EXPECT(dup)) {
		EXPECT_EQ(IODMAController_registerDMAController(dup, 0), kIOReturnExclusiveAccess);
		IODMAController_release(dup);
	}
	kc_edu_destroy(k);
	EXPECT(IODMAController_getController(&two, 1) == NULL);	/* unregistered */
	EXPECT_REPORTS(0);
}

/* Both directions through the event source: memory -> edu buffer (Out) from
 * a vmalloc buffer, edu buffer -> memory (In) into a kmalloc buffer with
 * guard bytes; every byte checked; completion and notification once each
 * with IOKit's arguments; queryDMACommand progress; then a synchronous
 * event source, and a partial transfer at a byte offset. */
static void t_dmactl_edu_event_source(void)
{
	const size_t len = 3 * PAGE_SIZE, n = KC_EDU_WINDOW, guard = 64;
	unsigned char *src = NULL, *dst = NULL;
	IOMemoryDescriptor *smd = NULL, *dmd = NULL;
	IODMACommand *scmd = NULL, *dcmd = NULL, *q = NULL;
	IOByteCount done = 1;
	struct kc_env e;
	u64 irqs0;

	if (!ktest_edu)
		SKIP("edu device absent or bound by the other test module");
	if (!kc_env_open(&e, true))
		goto out;
	src = vmalloc(len);
	dst = kmalloc(n + 2 * guard, GFP_KERNEL);
	if (!EXPECT(src && dst))
		goto out;
	/* 300 bytes into a vmalloc page: the transfer spans 2 pages */
	kfill(src, len, 31);
	memset(dst, 0x6b, n + 2 * guard);
	smd = kd_md(src + 300, n, kIODirectionOut);
	dmd = kd_md(dst + guard, n, kIODirectionIn);
	if (!EXPECT(smd && dmd))
		goto out;
	scmd = kc_cmd(e.mapper, smd);
	dcmd = kc_cmd(e.mapper, dmd);
	if (!EXPECT(scmd && dcmd))
		goto out;

	/* Out: the whole prepared range (byteCount 0) */
	irqs0 = e.k->irqs;
	if (!EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, scmd, kIODirectionOut, 0, 0), kIOReturnSuccess))
		goto out;
	EXPECT_EQ(IODMAEventSource_queryDMACommand(e.cl.es, &q, &done, false), kIOReturnSuccess);
	EXPECT(q == scmd);
	EXPECT(done < n);				/* 100 ms of virtual time per transfer */
	if (!kc_wait(&e.cl))
		goto out;
	EXPECT_EQ(e.cl.completions, 1);
	EXPECT_EQ(e.cl.notifications, 1);
	EXPECT(e.cl.cmd == scmd);
	EXPECT_EQ(e.cl.status, kIOReturnSuccess);
	EXPECT_EQ(e.cl.count, n);
	EXPECT_EQ(e.cl.nstatus, kIOReturnSuccess);
	EXPECT_EQ(e.cl.ncount, n);
	EXPECT(e.cl.ts > 0 && e.cl.ts <= ktime_get_ns());
	EXPECT(e.k->irqs - irqs0 >= 2);			/* at least one per page */
	EXPECT_EQ(IODMAEventSource_queryDMACommand(e.cl.es, &q, &done, true), kIOReturnSuccess);
	EXPECT(q == scmd);
	EXPECT_EQ(done, n);
	EXPECT_EQ(iomem_dma_event_source_getFrameCount(e.cl.es), n);
	EXPECT_EQ(IODMAEventSource_getFIFODepth(e.cl.es, kIODirectionNone), KC_EDU_PIECE);

	/* In: the device buffer back into other memory */
	if (!EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, dcmd, kIODirectionIn, n, 0), kIOReturnSuccess) ||
	    !kc_wait(&e.cl))
		goto out;
	EXPECT_EQ(e.cl.completions, 2);
	EXPECT_EQ(e.cl.notifications, 2);
	EXPECT(e.cl.cmd == dcmd);
	EXPECT_EQ(e.cl.status, kIOReturnSuccess);
	EXPECT_EQ(e.cl.count, n);
	/* the last complete syncs the mapping for the CPU (swiotlb copies back) */
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(dcmd, true), kIOReturnSuccess);
	EXPECT(memcmp(dst + guard, src + 300, n) == 0);
	EXPECT(all_bytes(dst, guard, 0x6b));
	EXPECT(all_bytes(dst + guard + n, guard, 0x6b));

	/* a part: 1000 bytes at offset 3000 of the source (across a page
	 * boundary) into the device, then back to the start of dst */
	memset(dst, 0x6b, n + 2 * guard);
	if (!EXPECT_EQ(IODMACommand_setMemoryDescriptor(dcmd, dmd, true), kIOReturnSuccess))
		goto out;
	if (!EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, scmd, kIODirectionOut, 1000, 3000),
		       kIOReturnSuccess) || !kc_wait(&e.cl))
		goto out;
	EXPECT_EQ(e.cl.count, 1000);
	if (!EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, dcmd, kIODirectionIn, 1000, 0),
		       kIOReturnSuccess) || !kc_wait(&e.cl))
		goto out;
	EXPECT_EQ(e.cl.completions, 4);
	EXPECT_EQ(e.cl.notifications, 4);
	EXPECT_EQ(e.cl.count, 1000);
	EXPECT_EQ(IODMACommand_synchronize(dcmd, kIODirectionIn), kIOReturnSuccess);
	EXPECT(memcmp(dst + guard, src + 300 + 3000, 1000) == 0);
	EXPECT(all_bytes(dst, guard, 0x6b));
	EXPECT(all_bytes(dst + guard + 1000, n - 1000 + guard, 0x6b));
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(dcmd, true), kIOReturnSuccess);
out:
	IODMACommand_release(scmd);
	IODMACommand_release(dcmd);
	kd_md_done(smd);
	kd_md_done(dmd);
	kc_env_close(&e);
	vfree(src);
	kfree(dst);
	EXPECT_REPORTS(0);
}

/* no completion action: startDMACommand returns after the IRQ completed it */
static void t_dmactl_edu_synchronous(void)
{
	const size_t n = 3000;	/* a + 2500: across a page boundary */
	unsigned char *a = vmalloc(2 * PAGE_SIZE), *b = vmalloc(2 * PAGE_SIZE);
	IOMemoryDescriptor *amd = NULL, *bmd = NULL;
	IODMACommand *acmd = NULL, *bcmd = NULL, *q = NULL;
	IOByteCount done = 0;
	struct kc_env e;

	if (!ktest_edu) {
		vfree(a);
		vfree(b);
		SKIP("edu device absent or bound by the other test module");
	}
	if (!kc_env_open(&e, false) || !EXPECT(a && b))
		goto out;
	kfill(a, 2 * PAGE_SIZE, 41);
	memset(b, 0x6b, 2 * PAGE_SIZE);
	amd = kd_md(a + 2500, n, kIODirectionOut);
	bmd = kd_md(b + 200, n, kIODirectionIn);
	if (!EXPECT(amd && bmd))
		goto out;
	acmd = kc_cmd(e.mapper, amd);
	bcmd = kc_cmd(e.mapper, bmd);
	if (!EXPECT(acmd && bcmd))
		goto out;
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, acmd, kIODirectionOut, 0, 0), kIOReturnSuccess);
	EXPECT_EQ(e.cl.notifications, 1);		/* before the start returned */
	EXPECT_EQ(e.cl.ncount, n);
	EXPECT_EQ(IODMAEventSource_queryDMACommand(e.cl.es, &q, &done, false), kIOReturnSuccess);
	EXPECT(q == acmd);
	EXPECT_EQ(done, n);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, bcmd, kIODirectionIn, 0, 0), kIOReturnSuccess);
	EXPECT_EQ(e.cl.notifications, 2);
	EXPECT_EQ(e.cl.nstatus, kIOReturnSuccess);
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(bcmd, true), kIOReturnSuccess);
	EXPECT(memcmp(a + 2500, b + 200, n) == 0);
	EXPECT(all_bytes(b, 200, 0x6b));
	EXPECT(all_bytes(b + 200 + n, 2 * PAGE_SIZE - 200 - n, 0x6b));
	EXPECT_EQ(e.cl.completions, 0);			/* no action: nothing queued */
out:
	IODMACommand_release(acmd);
	IODMACommand_release(bcmd);
	kd_md_done(amd);
	kd_md_done(bmd);
	kc_env_close(&e);
	vfree(a);
	vfree(b);
	EXPECT_REPORTS(0);
}

/* stop mid-transfer: the piece in flight finishes, the rest does not move;
 * one completion with kIOReturnAborted and the bytes moved */
static void t_dmactl_edu_stop(void)
{
	const size_t n = KC_EDU_WINDOW;
	unsigned char *a = vmalloc(2 * PAGE_SIZE);
	IOMemoryDescriptor *md = NULL;
	IODMACommand *cmd = NULL;
	struct kc_env e;

	if (!ktest_edu) {
		vfree(a);
		SKIP("edu device absent or bound by the other test module");
	}
	if (!kc_env_open(&e, true) || !EXPECT(a))
		goto out;
	kfill(a, 2 * PAGE_SIZE, 51);
	md = kd_md(a + 2000, n, kIODirectionOut);	/* 2 pages: >= 2 pieces */
	cmd = md ? kc_cmd(e.mapper, md) : NULL;
	if (!EXPECT(cmd))
		goto out;
	if (!EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, 0, 0), kIOReturnSuccess))
		goto out;
	EXPECT_EQ(IODMAEventSource_stopDMACommand(e.cl.es, false, U64_MAX), kIOReturnSuccess);
	if (!kc_wait(&e.cl))
		goto out;
	EXPECT_EQ(e.cl.completions, 1);
	EXPECT_EQ(e.cl.notifications, 1);
	EXPECT_EQ(e.cl.status, kIOReturnAborted);
	/* the first piece was in flight: it, and nothing after it */
	if (!EXPECT(e.cl.count > 0 && e.cl.count <= KC_EDU_PIECE))
		DIAG("stopped after %zu of %zu bytes", (size_t)e.cl.count, n);
	/* nothing runs now */
	EXPECT_EQ(IODMAEventSource_stopDMACommand(e.cl.es, false, 0), kIOReturnNotReady);
	msleep(1);
	EXPECT_EQ(e.cl.completions, 1);
	/* the channel works again after a stop */
	if (EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, 100, 0), kIOReturnSuccess) &&
	    kc_wait(&e.cl)) {
		EXPECT_EQ(e.cl.status, kIOReturnSuccess);
		EXPECT_EQ(e.cl.count, 100);
	}
	EXPECT_EQ(e.cl.completions, 2);
out:
	IODMACommand_release(cmd);
	kd_md_done(md);
	kc_env_close(&e);
	vfree(a);
	EXPECT_REPORTS(0);
}

/* bad input (issue #11): unprepared command, byte count beyond the prepared
 * length, second start while busy, stop with nothing running; nothing is
 * delivered for a refused start, the running one completes exactly once */
static void t_dmactl_edu_bad_input(void)
{
	const size_t n = 2 * PAGE_SIZE;
	unsigned char *a = vmalloc(3 * PAGE_SIZE);
	IOMemoryDescriptor *md = NULL;
	IODMACommand *cmd = NULL, *unprepared = NULL, *big = NULL;
	IOMemoryDescriptor *bigmd = NULL;
	struct kc_env e;

	if (!ktest_edu) {
		vfree(a);
		SKIP("edu device absent or bound by the other test module");
	}
	EXPECT_EQ(IODMAEventSource_startDMACommand(NULL, NULL, kIODirectionOut, 0, 0), kIOReturnError);
	EXPECT_EQ(IODMAEventSource_stopDMACommand(NULL, false, 0), kIOReturnError);
	EXPECT_EQ(IODMAEventSource_queryDMACommand(NULL, NULL, NULL, false), kIOReturnError);
	if (!kc_env_open(&e, true) || !EXPECT(a))
		goto out;
	kfill(a, 3 * PAGE_SIZE, 61);
	md = kd_md(a, n, kIODirectionOut);
	bigmd = kd_md(a, 3 * PAGE_SIZE, kIODirectionOut);
	unprepared = IODMACommand_withSpecification(IODMACommand_OutputHost64, (UInt8)edu_mask_bits, 0,
						    IODMACommand_kMapped, 0, 1, e.mapper, NULL);
	cmd = md ? kc_cmd(e.mapper, md) : NULL;
	big = bigmd ? kc_cmd(e.mapper, bigmd) : NULL;
	if (!EXPECT(unprepared && cmd && big))
		goto out;
	/* a second event source: the only channel is taken */
	EXPECT(IODMAEventSource_dmaEventSource(&e.cl, &e.dev, kc_on_complete, NULL, 0) == NULL);

	EXPECT_EQ(IODMAEventSource_stopDMACommand(e.cl.es, false, 0), kIOReturnNotReady);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, unprepared, kIODirectionOut, 0, 0), kIOReturnNotReady);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, NULL, kIODirectionOut, 0, 0), kIOReturnBadArgument);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, n + 1, 0), kIOReturnBadArgument);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, 2, n - 1), kIOReturnBadArgument);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, 0, n + 1), kIOReturnBadArgument);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, 0, n), kIOReturnBadArgument);
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionInOut, 10, 0), kIOReturnBadArgument);
	/* more than edu's buffer */
	EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, big, kIODirectionOut, 0, 0), kIOReturnNoSpace);
	msleep(1);
	EXPECT_EQ(e.cl.completions + e.cl.notifications, 0);

	/* busy */
	if (EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, 3000, 0), kIOReturnSuccess)) {
		EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, cmd, kIODirectionOut, 10, 0), kIOReturnBusy);
		EXPECT_EQ(IODMAEventSource_startDMACommand(e.cl.es, big, kIODirectionIn, 10, 0), kIOReturnBusy);
		if (kc_wait(&e.cl)) {
			EXPECT_EQ(e.cl.status, kIOReturnSuccess);
			EXPECT_EQ(e.cl.count, 3000);
		}
		EXPECT_EQ(IODMAEventSource_queryDMACommand(e.cl.es, NULL, NULL, true), kIOReturnSuccess);
		msleep(1);
		EXPECT_EQ(e.cl.completions, 1);
		EXPECT_EQ(e.cl.notifications, 1);
	}
	EXPECT_EQ(IODMAEventSource_stopDMACommand(e.cl.es, true, 0), kIOReturnNotReady);
	/* the unsupported optional hooks say so */
	EXPECT_EQ(IODMAEventSource_setFIFODepth(e.cl.es, 64), kIOReturnUnsupported);
	EXPECT_EQ(IODMAEventSource_setDMAConfig(e.cl.es, 0), kIOReturnUnsupported);
	EXPECT(!IODMAEventSource_validDMAConfig(e.cl.es, 0));
out:
	IODMACommand_release(unprepared);
	IODMACommand_release(cmd);
	IODMACommand_release(big);
	kd_md_done(md);
	kd_md_done(bigmd);
	kc_env_close(&e);
	vfree(a);
	EXPECT_REPORTS(0);
}

/* ---- the Linux backend's dmaengine controller ---------------------------- */

#include <linux/dmaengine.h>

/* One memcpy through iomem_linux_dmaengine_controller_create on @chan:
 * a vmalloc buffer's command (Out) into a peer command over another,
 * through the event source; every byte and the guards checked. */
static void kc_dmaengine_copy(struct dma_chan *chan)
{
	const size_t n = 5 * PAGE_SIZE - 700;
	unsigned char *a = vmalloc(6 * PAGE_SIZE), *b = vmalloc(6 * PAGE_SIZE);
	struct device *dev = dmaengine_get_dma_device(chan);
	IOMapper *mapper = iomem_linux_mapper_for_device(dev);
	iomem_dma_provider self = { 0xD4Au, NULL, 0, NULL };
	UInt32 parent = 0xD4Au;
	iomem_dma_provider user = { 0xD4Bu, &parent, 1, NULL };
	IOMemoryDescriptor *amd = NULL, *bmd = NULL;
	IODMACommand *acmd = NULL, *bcmd = NULL;
	IODMAController *ctl = iomem_linux_dmaengine_controller_create(chan, &self);
	struct kc_client cl = { 0 };

	init_completion(&cl.done);
	if (!EXPECT(a && b && mapper && ctl) ||
	    !EXPECT_EQ(IODMAController_registerDMAController(ctl, 0), kIOReturnSuccess))
		goto out;
	kfill(a, 6 * PAGE_SIZE, 71);
	memset(b, 0x6b, 6 * PAGE_SIZE);
	amd = kd_md(a + 300, n, kIODirectionOut);
	bmd = kd_md(b + 500, n, kIODirectionIn);
	acmd = amd ? kc_cmd(mapper, amd) : NULL;
	bcmd = bmd ? kc_cmd(mapper, bmd) : NULL;
	cl.es = IODMAEventSource_dmaEventSource(&cl, &user, kc_on_complete, kc_on_notify, 0);
	if (!EXPECT(acmd && bcmd && cl.es))
		goto unreg;
	EXPECT_EQ(IODMAEventSource_startDMACommand(cl.es, acmd, kIODirectionOut, 0, 0), kIOReturnNotReady);
	EXPECT_EQ(iomem_linux_dmaengine_set_peer(ctl, 0, bcmd), kIOReturnSuccess);
	if (EXPECT_EQ(IODMAEventSource_startDMACommand(cl.es, acmd, kIODirectionOut, 0, 0), kIOReturnSuccess) &&
	    kc_wait(&cl)) {
		EXPECT_EQ(cl.status, kIOReturnSuccess);
		EXPECT_EQ(cl.count, n);
		EXPECT_EQ(cl.notifications, 1);
	}
	EXPECT_EQ(IODMAEventSource_stopDMACommand(cl.es, false, 0), kIOReturnNotReady);
	EXPECT_EQ(IODMACommand_clearMemoryDescriptor(bcmd, true), kIOReturnSuccess);
	EXPECT(memcmp(a + 300, b + 500, n) == 0);
	EXPECT(all_bytes(b, 500, 0x6b));
	EXPECT(all_bytes(b + 500 + n, 6 * PAGE_SIZE - 500 - n, 0x6b));
	EXPECT_EQ(iomem_linux_dmaengine_set_peer(ctl, 0, NULL), kIOReturnSuccess);
unreg:
	IODMAEventSource_release(cl.es);
	EXPECT_EQ(iomem_dma_controller_unregister(ctl), kIOReturnSuccess);
out:
	IODMACommand_release(acmd);
	IODMACommand_release(bcmd);
	kd_md_done(amd);
	kd_md_done(bmd);
	IODMAController_release(ctl);
	IOMapper_release(mapper);
	vfree(a);
	vfree(b);
}

/* iomem_linux_dmaengine_controller_create: bad input always; a real copy
 * when the kernel has a memcpy channel (Debian's cloud kernel has none:
 * CONFIG_DMADEVICES is not set, so no provider can register one) */
static void t_dmactl_dmaengine_memcpy(void)
{
	IODMAController *other = iomem_dma_controller_withOps(&kc_ops, NULL, NULL);
	struct dma_chan *chan;
	dma_cap_mask_t mask;

	EXPECT(iomem_linux_dmaengine_controller_create(NULL, NULL) == NULL);
	EXPECT_EQ(iomem_linux_dmaengine_set_peer(NULL, 0, NULL), kIOReturnBadArgument);
	if (EXPECT(other))
		EXPECT_EQ(iomem_linux_dmaengine_set_peer(other, 0, NULL), kIOReturnBadArgument);
	IODMAController_release(other);
	dma_cap_zero(mask);
	dma_cap_set(DMA_MEMCPY, mask);
	chan = dma_request_chan_by_mask(&mask);
	if (IS_ERR_OR_NULL(chan)) {
		DIAG("dma_request_chan_by_mask(DMA_MEMCPY): %ld", chan ? PTR_ERR(chan) : 0L);
		SKIP("no dmaengine memcpy channel");
	}
	DIAG("dmaengine channel %s", dma_chan_name(chan));
	kc_dmaengine_copy(chan);
	dma_release_channel(chan);
	EXPECT_REPORTS(0);
}

#define KTEST_DMACTL_CASES                                \
	T(t_dmactl_edu_registry),                         \
	T(t_dmactl_edu_event_source),                     \
	T(t_dmactl_edu_synchronous),                      \
	T(t_dmactl_edu_stop),                             \
	T(t_dmactl_edu_bad_input),                        \
	T(t_dmactl_dmaengine_memcpy),

#endif /* KTEST_DMACTL_H */
