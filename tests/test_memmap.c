/* SPDX-License-Identifier: MIT */
/* tests/test_memmap.c - IOMemoryMap (reference §4.2, §1.1 map /
 * createMappingInTask / setMapping, §0.4 options, §6 CreateMapping) on the
 * POSIX software machine: a map is a second virtual mapping of the same
 * memfd pages. Faults are checked in a forked child with its own SIGSEGV /
 * SIGBUS handler (so ASan's handler never reports them). */
#include "test_util.h"
#define IOMEM_IMPLEMENTATION
#include "iomem_map.h"
#include "test_desc_util.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(memmap, .fini = desc_fini);

#define PG DESC_PAGE

/* ---- helpers ---- */

static void fault_exit(int sig)
{
	_exit(100 + sig);
}

/* Touches *@p (a write when @write) in a child; returns true when the child
 * died of SIGSEGV or SIGBUS there, false when the access worked. */
static bool access_faults(volatile unsigned char *p, bool write)
{
	pid_t pid = fork();
	int st = 0;
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = fault_exit;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		if (write)
			p[0] = 0x5a;
		else
			(void)p[0];
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "child status %d", st);
	cr_assert(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 100 + SIGSEGV || WEXITSTATUS(st) == 100 + SIGBUS,
	          "child exit %d", WEXITSTATUS(st));
	return WEXITSTATUS(st) != 0;
}

static unsigned char *map_ptr(IOMemoryMap *m)
{
	return (unsigned char *)(uintptr_t)IOMemoryMap_getVirtualAddress(m);
}

/* Every byte of [@a, +@n) and [@b, +@n) is the same memory: a pattern
 * written through one is read through the other, both ways. */
static void expect_alias(unsigned char *a, unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		a[i] = (unsigned char)(i * 7 + seed);
	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(i * 7 + seed))
			cr_assert_fail("byte %zu written through %p not seen through %p", i, (void *)a, (void *)b);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 13 + seed + 1);
	for (size_t i = 0; i < n; i++)
		if (a[i] != (unsigned char)(i * 13 + seed + 1))
			cr_assert_fail("byte %zu written through %p not seen through %p", i, (void *)b, (void *)a);
}

static IOBufferMemoryDescriptor *new_buffer(IOByteCount bytes)
{
	IOBufferMemoryDescriptor *b = IOBufferMemoryDescriptor_withCapacity((vm_size_t)bytes, kIODirectionInOut, false);
	cr_assert_not_null(b);
	return b;
}

static unsigned char *bytes_of(IOBufferMemoryDescriptor *b)
{
	return (unsigned char *)IOBufferMemoryDescriptor_getBytesNoCopy(b);
}

/* ---- basic aliasing and the accessors ---- */

Test(memmap, buffer_map_is_a_second_mapping_both_ways)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 5);
		IOBufferMemoryDescriptor *b = new_buffer(3 * PG);
		IOMemoryMap *m = IOMemoryDescriptor_map(b, 0);
		cr_assert_not_null(m);
		unsigned char *p = map_ptr(m);
		cr_expect_neq(p, bytes_of(b), "a real second mapping, not the buffer's address");
		cr_expect_eq((uintptr_t)p % PG, 0);
		expect_alias(p, bytes_of(b), 3 * PG, (unsigned)l);
		cr_expect_eq(IOMemoryMap_getAddress(m), (mach_vm_address_t)(uintptr_t)p);
		cr_expect_eq(IOMemoryMap_GetAddress(m), (uint64_t)(uintptr_t)p);
		cr_expect_eq(IOMemoryMap_getLength(m), 3 * PG);
		cr_expect_eq(IOMemoryMap_getSize(m), 3 * PG);
		cr_expect_eq(IOMemoryMap_GetLength(m), 3 * PG);
		cr_expect_eq(IOMemoryMap_GetOffset(m), 0);
		cr_expect_eq(IOMemoryMap_getAddressTask(m), kernel_task);
		cr_expect_eq(IOMemoryMap_getMemoryDescriptor(m), b);
		cr_expect_eq(IOMemoryMap_getMapOptions(m), kIOMapAnywhere);
		cr_expect_eq(iomem_map_getRetainCount(m), 1);
		cr_expect_eq(iomem_md_getRetainCount(b), 2, "the map retains its descriptor");
		for (IOByteCount off = 0; off < 3 * PG; off += PG / 2) {
			IOByteCount ml, dl;
			IOPhysicalAddress mp = IOMemoryMap_getPhysicalSegment(m, off, &ml, 0);
			IOPhysicalAddress dp = IOMemoryDescriptor_getPhysicalSegment(b, off, &dl, 0);
			cr_expect_eq(mp, dp);
			cr_expect_eq(ml, dl);
			cr_expect_eq(mp, iomem_posix_virt_to_phys(bytes_of(b) + off));
		}
		cr_expect_eq(IOMemoryMap_getPhysicalAddress(m), IOMemoryDescriptor_getPhysicalAddress(b));
		IOByteCount len = 99;
		cr_expect_eq(IOMemoryMap_getPhysicalSegment(m, 3 * PG, &len, 0), 0, "past the map");
		cr_expect_eq(len, 0);
		IOMemoryMap_release(m);
		cr_expect_eq(iomem_md_getRetainCount(b), 1);
		IOMemoryDescriptor_release(b);
	}
}

Test(memmap, null_accessors)
{
	IOByteCount len = 5;
	cr_expect_eq(IOMemoryMap_getVirtualAddress(NULL), 0);
	cr_expect_eq(IOMemoryMap_getAddress(NULL), 0);
	cr_expect_eq(IOMemoryMap_getLength(NULL), 0);
	cr_expect_eq(IOMemoryMap_getSize(NULL), 0);
	cr_expect_null(IOMemoryMap_getAddressTask(NULL));
	cr_expect_null(IOMemoryMap_getMemoryDescriptor(NULL));
	cr_expect_eq(IOMemoryMap_getMapOptions(NULL), 0);
	cr_expect_eq(IOMemoryMap_getPhysicalSegment(NULL, 0, &len, 0), 0);
	cr_expect_eq(len, 0);
	cr_expect_eq(IOMemoryMap_getPhysicalAddress(NULL), 0);
	cr_expect_eq(IOMemoryMap_unmap(NULL), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryMap_redirect(NULL, NULL, 0, 0), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryMap_wireRange(NULL, kIODirectionIn, 0, 1), kIOReturnBadArgument);
	cr_expect_eq(iomem_map_getRetainCount(NULL), 0);
	cr_expect_eq(IOMemoryMap_GetAddress(NULL), 0);
	cr_expect_eq(IOMemoryMap_GetLength(NULL), 0);
	cr_expect_eq(IOMemoryMap_GetOffset(NULL), 0);
	IOMemoryMap_retain(NULL);
	IOMemoryMap_release(NULL);
	cr_expect_null(IOMemoryDescriptor_map(NULL, 0));
	cr_expect_null(IOMemoryDescriptor_createMappingInTask(NULL, kernel_task, 0, kIOMapAnywhere, 0, 0));
	cr_expect_null(IOMemoryDescriptor_setMapping(NULL, kernel_task, 0x1000, 0));
	cr_expect_eq(iomem_md_createMappingInTask(NULL, kernel_task, 0, kIOMapAnywhere, 0, 0, NULL),
	             kIOReturnBadArgument);
}

/* ---- reuse, unique, reference ---- */

Test(memmap, reuse_returns_the_same_object_unique_a_new_one)
{
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	IOMemoryMap *m1 = IOMemoryDescriptor_map(b, 0);
	IOMemoryMap *m2 = IOMemoryDescriptor_map(b, 0);
	cr_assert_not_null(m1);
	cr_expect_eq(m1, m2, "a compatible live map is reused");
	cr_expect_eq(iomem_map_getRetainCount(m1), 2);
	IOMemoryMap *r = IOMemoryDescriptor_map(b, kIOMapReference);
	cr_expect_eq(r, m1, "kIOMapReference finds it");
	cr_expect_eq(iomem_map_getRetainCount(m1), 3);
	IOMemoryMap *u = IOMemoryDescriptor_map(b, kIOMapUnique);
	cr_assert_not_null(u);
	cr_expect_neq(u, m1);
	cr_expect_neq(map_ptr(u), map_ptr(m1), "unique: its own address space");
	cr_expect(IOMemoryMap_getMapOptions(u) & kIOMapUnique);
	expect_alias(map_ptr(u), map_ptr(m1), 2 * PG, 3);
	expect_alias(map_ptr(u), bytes_of(b), 2 * PG, 4);
	/* a unique map is never shared */
	IOMemoryMap *m3 = IOMemoryDescriptor_map(b, 0);
	cr_expect_eq(m3, m1);
	IOMemoryMap_release(m3);
	IOMemoryMap_release(r);
	IOMemoryMap_release(m2);
	cr_expect_eq(iomem_map_getRetainCount(m1), 1);
	IOMemoryMap_release(m1);
	/* the last release removed it: a new request maps anew */
	IOMemoryMap *tmp = NULL;
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere | kIOMapReference, 0, 0, &tmp),
	             kIOReturnNotFound, "only the unique map is left, and it is not shared");
	cr_expect_null(tmp);
	IOMemoryMap_release(u);
	IOMemoryDescriptor_release(b);
}

Test(memmap, reference_without_a_map_fails)
{
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	IOMemoryMap *m = (IOMemoryMap *)1;
	cr_expect_null(IOMemoryDescriptor_map(b, kIOMapReference));
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere | kIOMapReference, 0, 0, &m),
	             kIOReturnNotFound);
	cr_expect_null(m);
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0,
	                                          kIOMapAnywhere | kIOMapReference | kIOMapUnique, 0, 0, &m),
	             kIOReturnNotFound, "reference + unique never creates one");
	cr_expect_eq(iomem_md_getRetainCount(b), 1);
	IOMemoryDescriptor_release(b);
}

Test(memmap, read_only_and_cache_modes_decide_compatibility)
{
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	IOMemoryMap *ic = IOMemoryDescriptor_map(b, kIOMapInhibitCache);
	cr_assert_not_null(ic);
	cr_expect_eq(IOMemoryMap_getMapOptions(ic) & kIOMapCacheMask, kIOMapInhibitCache, "cache mode recorded");
	IOMemoryMap *d = IOMemoryDescriptor_map(b, 0);
	cr_expect_eq(d, ic, "a default-cache request takes any cache mode");
	IOMemoryMap *wc = IOMemoryDescriptor_map(b, kIOMapWriteCombineCache);
	cr_assert_not_null(wc);
	cr_expect_neq(wc, ic, "another explicit cache mode: not compatible");
	IOMemoryMap *ro = IOMemoryDescriptor_map(b, kIOMapReadOnly);
	cr_assert_not_null(ro);
	cr_expect_neq(ro, ic, "read-only is not compatible with read-write");
	IOMemoryMap *ro2 = IOMemoryDescriptor_map(b, kIOMapReadOnly);
	cr_expect_eq(ro2, ro);
	IOMemoryMap *g = IOMemoryDescriptor_map(b, kIOMapGuardedSmall);
	cr_assert_not_null(g);
	cr_expect_neq(g, ic, "guard bits must match");
	IOMemoryMap_release(g);
	IOMemoryMap_release(ro2);
	IOMemoryMap_release(ro);
	IOMemoryMap_release(wc);
	IOMemoryMap_release(d);
	IOMemoryMap_release(ic);
	IOMemoryDescriptor_release(b);
}

/* ---- offsets, lengths, sub-maps ---- */

Test(memmap, offset_length_maps_and_sub_maps)
{
	IOBufferMemoryDescriptor *b = new_buffer(4 * PG);
	unsigned char *buf = bytes_of(b);
	/* no live map: a new mapping of just that range */
	IOMemoryMap *part = IOMemoryDescriptor_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, PG + 100, PG);
	cr_assert_not_null(part);
	cr_expect_eq((uintptr_t)map_ptr(part) % PG, 100, "the page offset is kept");
	cr_expect_eq(IOMemoryMap_getLength(part), PG);
	cr_expect_eq(IOMemoryMap_GetOffset(part), PG + 100);
	expect_alias(map_ptr(part), buf + PG + 100, PG, 1);
	cr_expect_eq(IOMemoryMap_getPhysicalAddress(part), iomem_posix_virt_to_phys(buf + PG + 100));
	IOByteCount len;
	IOMemoryMap_getPhysicalSegment(part, PG - 10, &len, 0);
	cr_expect_leq(len, 10, "clipped to the map");

	/* a whole map, then a range inside it: a sub-map sharing its address */
	IOMemoryMap *whole = IOMemoryDescriptor_map(b, 0);
	cr_assert_not_null(whole);
	cr_expect_neq(whole, part, "the partial map does not cover the whole");
	IOMemoryMap *sub = IOMemoryDescriptor_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, 2 * PG, PG);
	cr_assert_not_null(sub);
	cr_expect(sub != whole && sub != part);
	cr_expect_eq(map_ptr(sub), map_ptr(whole) + 2 * PG, "a sub-map shares the live map's address");
	cr_expect_eq(IOMemoryMap_getAddressTask(sub), kernel_task);
	cr_expect_eq(iomem_map_getRetainCount(whole), 2, "the sub-map retains its super-map");
	IOMemoryMap *sub2 = IOMemoryDescriptor_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, 2 * PG, PG);
	cr_expect_eq(sub2, sub, "the same range again: the sub-map itself");
	IOMemoryMap_release(sub2);
	IOMemoryMap_release(whole);
	/* the super-map lives on through the sub-map */
	expect_alias(map_ptr(sub), buf + 2 * PG, PG, 2);
	cr_expect_eq(IOMemoryMap_unmap(sub), kIOReturnSuccess);
	cr_expect_eq(IOMemoryMap_getAddress(sub), 0);
	cr_expect_null(IOMemoryMap_getAddressTask(sub));
	IOMemoryMap_release(sub);
	IOMemoryMap_release(part);
	IOMemoryDescriptor_release(b);
}

Test(memmap, bad_offsets_and_lengths)
{
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	IOMemoryMap *m = NULL;
	const mach_vm_size_t L = 2 * PG;
	struct { mach_vm_size_t off, len; } bad[] = {
		{ L, 1 }, { L + 1, 0 }, { 1, L }, { 0, L + 1 }, { PG, 0 } /* 0 = whole: PG + L > L */,
		{ ~(mach_vm_size_t)0, 2 }, { 2, ~(mach_vm_size_t)0 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, bad[i].off, bad[i].len, &m),
		             kIOReturnBadArgument, "case %zu", i);
		cr_expect_null(m);
		cr_expect_null(IOMemoryDescriptor_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere,
		                                                      bad[i].off, bad[i].len));
	}
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, kIOMapGuardedSmall, 0, 0, &m),
	             kIOReturnBadArgument, "a guard needs kIOMapAnywhere");
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, 0, 0, 0, &m), kIOReturnBadArgument,
	             "fixed at address 0");
	cr_expect_eq(iomem_md_createMappingInTask(b, NULL, 0, kIOMapAnywhere, 0, 0, &m), kIOReturnBadArgument);
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, L - 1, 1, &m), kIOReturnSuccess,
	             "the last byte is fine");
	cr_expect_eq(IOMemoryMap_getLength(m), 1);
	IOMemoryMap_release(m);
	/* a buffer whose length shrank: the map follows the length */
	IOBufferMemoryDescriptor_setLength(b, PG);
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, PG, 1, &m), kIOReturnBadArgument);
	m = IOMemoryDescriptor_map(b, 0);
	cr_assert_not_null(m);
	cr_expect_eq(IOMemoryMap_getLength(m), PG);
	IOMemoryMap_release(m);
	cr_expect_eq(iomem_md_getRetainCount(b), 1, "failures leave no reference behind");
	IOMemoryDescriptor_release(b);
	IOBufferMemoryDescriptor *empty = IOBufferMemoryDescriptor_withCapacity(PG, kIODirectionInOut, false);
	IOBufferMemoryDescriptor_setLength(empty, 0);
	cr_expect_null(IOMemoryDescriptor_map(empty, 0), "nothing to map");
	IOMemoryDescriptor_release(empty);
}

Test(memmap, other_task_is_unsupported)
{
	struct iomem_task other = { 1 };
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	IOMemoryMap *m = (IOMemoryMap *)1;
	cr_expect_eq(iomem_md_createMappingInTask(b, &other, 0, kIOMapAnywhere, 0, 0, &m), kIOReturnUnsupported);
	cr_expect_null(m);
	cr_expect_null(IOMemoryDescriptor_createMappingInTask(b, &other, 0, kIOMapAnywhere, 0, 0));
	cr_expect_null(IOMemoryDescriptor_setMapping(b, &other, 0x10000, 0));
	cr_expect_eq(iomem_md_getRetainCount(b), 1);
	IOMemoryDescriptor_release(b);
}

/* ---- fixed addresses ---- */

Test(memmap, fixed_address_free_and_taken)
{
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	/* find a free range, give it back, map there */
	void *hole = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(hole, MAP_FAILED);
	munmap(hole, 2 * PG);
	IOMemoryMap *m = IOMemoryDescriptor_createMappingInTask(b, kernel_task, (uintptr_t)hole, 0, 0, 0);
	cr_assert_not_null(m, "a free fixed address");
	cr_expect_eq(map_ptr(m), (unsigned char *)hole);
	cr_expect_eq(IOMemoryMap_getMapOptions(m) & kIOMapAnywhere, 0);
	expect_alias(map_ptr(m), bytes_of(b), 2 * PG, 9);
	/* the same fixed address again: the live map is compatible */
	IOMemoryMap *again = IOMemoryDescriptor_createMappingInTask(b, kernel_task, (uintptr_t)hole, 0, 0, 0);
	cr_expect_eq(again, m);
	IOMemoryMap_release(again);
	/* a fixed address inside it for a sub-range: a sub-map there */
	IOMemoryMap *s = IOMemoryDescriptor_createMappingInTask(b, kernel_task, (uintptr_t)hole + PG, 0, PG, PG);
	cr_assert_not_null(s);
	cr_expect_eq(map_ptr(s), (unsigned char *)hole + PG);
	IOMemoryMap_release(s);

	/* a taken address: kIOReturnNoSpace, and it is left alone */
	IOMemoryMap *u = NULL;
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, (uintptr_t)hole, kIOMapUnique, 0, 0, &u),
	             kIOReturnNoSpace);
	cr_expect_null(u);
	void *mine = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(mine, MAP_FAILED);
	memset(mine, 0x33, 2 * PG);
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, (uintptr_t)mine, 0, 0, 0, &u), kIOReturnNoSpace);
	cr_expect(iomem_test_all_bytes(mine, 2 * PG, 0x33), "the taken range is untouched");
	/* a page offset that does not match the memory's */
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, (uintptr_t)hole + 8, kIOMapUnique, 0, 0, &u),
	             kIOReturnNotAligned);
	/* kIOMapOverwrite replaces what is there */
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, (uintptr_t)mine, kIOMapOverwrite, 0, 0, &u),
	             kIOReturnSuccess);
	cr_expect_eq(map_ptr(u), (unsigned char *)mine);
	expect_alias((unsigned char *)mine, bytes_of(b), 2 * PG, 10);
	IOMemoryMap_release(u);              /* unmaps 'mine' too */
	IOMemoryMap_release(m);
	cr_expect(access_faults((unsigned char *)hole, false), "the released map is gone");
	IOMemoryDescriptor_release(b);
}

/* ---- read-only, unmap, lifetime ---- */

Test(memmap, read_only_really_faults_on_write)
{
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	memset(bytes_of(b), 0x41, 2 * PG);
	IOMemoryMap *ro = IOMemoryDescriptor_map(b, kIOMapReadOnly);
	cr_assert_not_null(ro);
	cr_expect(IOMemoryMap_getMapOptions(ro) & kIOMapReadOnly);
	unsigned char *p = map_ptr(ro);
	cr_expect_neq(p, bytes_of(b));
	cr_expect(iomem_test_all_bytes(p, 2 * PG, 0x41), "reads work");
	bytes_of(b)[PG + 3] = 0x42;
	cr_expect_eq(p[PG + 3], 0x42, "and see the buffer's writes");
	cr_expect_not(access_faults(p + PG, false));
	cr_expect(access_faults(p + PG, true), "a write through a read-only map faults");
	cr_expect(access_faults(p, true));
	cr_expect_eq(bytes_of(b)[0], 0x41);
	IOMemoryMap *rw = IOMemoryDescriptor_map(b, 0);
	cr_expect_not(access_faults(map_ptr(rw), true), "the read-write map is writable");
	IOMemoryMap_release(rw);
	IOMemoryMap_release(ro);
	IOMemoryDescriptor_release(b);
}

Test(memmap, unmap_twice)
{
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	IOMemoryMap *m = IOMemoryDescriptor_map(b, 0);
	cr_assert_not_null(m);
	unsigned char *p = map_ptr(m);
	cr_expect_eq(IOMemoryMap_unmap(m), kIOReturnSuccess);
	cr_expect_eq(IOMemoryMap_getAddress(m), 0);
	cr_expect_eq(IOMemoryMap_getLength(m), PG, "the length stays");
	cr_expect_null(IOMemoryMap_getAddressTask(m));
	cr_expect(access_faults(p, false), "the address space is gone");
	cr_expect_eq(IOMemoryMap_unmap(m), kIOReturnSuccess, "a second unmap is a no-op");
	cr_expect_eq(IOMemoryMap_redirect(m, NULL, 0, 0), kIOReturnNotReady);
	cr_expect_eq(IOMemoryMap_wireRange(m, kIODirectionIn, 0, 1), kIOReturnNotReady);
	/* an unmapped map is never reused */
	IOMemoryMap *m2 = IOMemoryDescriptor_map(b, 0);
	cr_assert_not_null(m2);
	cr_expect_neq(m2, m);
	IOMemoryMap_release(m2);
	IOMemoryMap_release(m);
	IOMemoryDescriptor_release(b);
}

Test(memmap, maps_keep_the_descriptor_alive)
{
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	memset(bytes_of(b), 0x17, 2 * PG);
	IOMemoryMap *m = IOMemoryDescriptor_map(b, 0);
	IOMemoryMap *s = IOMemoryDescriptor_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, PG, PG);
	cr_assert_not_null(m);
	cr_assert_not_null(s);
	cr_expect_eq(iomem_md_getRetainCount(b), 3);
	IOMemoryDescriptor_release(b);          /* the client's reference */
	cr_expect_eq(IOMemoryMap_getMemoryDescriptor(m), b);
	cr_expect_eq(iomem_md_getRetainCount(b), 2, "alive through its maps");
	cr_expect(iomem_test_all_bytes(map_ptr(m), 2 * PG, 0x17));
	map_ptr(s)[0] = 0x99;
	cr_expect_eq(map_ptr(m)[PG], 0x99);
	cr_expect_eq(IOMemoryDescriptor_getPhysicalAddress(b), IOMemoryMap_getPhysicalAddress(m));
	IOMemoryMap_release(m);
	cr_expect_eq(map_ptr(s)[0], 0x99, "the sub-map keeps its super-map");
	IOMemoryMap_release(s);                  /* frees map, super-map and buffer; fini checks */
}

/* ---- composed descriptors ---- */

Test(memmap, multi_sub_and_interleaved_map_piecewise)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 11);
		IOBufferMemoryDescriptor *a = new_buffer(2 * PG), *c = new_buffer(3 * PG);
		IOMemoryDescriptor *kids[2] = { a, c };
		IOMultiMemoryDescriptor *mm = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
		cr_assert_not_null(mm);
		IOMemoryMap *m = IOMemoryDescriptor_map(mm, 0);
		cr_assert_not_null(m);
		cr_expect_eq(IOMemoryMap_getLength(m), 5 * PG);
		expect_alias(map_ptr(m), bytes_of(a), 2 * PG, 1);
		expect_alias(map_ptr(m) + 2 * PG, bytes_of(c), 3 * PG, 2);
		IOMemoryMap_release(m);

		IOSubMemoryDescriptor *s = IOSubMemoryDescriptor_withSubRange(mm, PG + 8, 2 * PG, kIODirectionInOut);
		cr_assert_not_null(s);
		m = IOMemoryDescriptor_map(s, 0);
		cr_assert_not_null(m, "a sub across two children: pieces meet on a page");
		cr_expect_eq((uintptr_t)map_ptr(m) % PG, 8);
		expect_alias(map_ptr(m), bytes_of(a) + PG + 8, PG - 8, 3);
		expect_alias(map_ptr(m) + PG - 8, bytes_of(c), PG + 8, 4);
		IOMemoryMap_release(m);
		IOMemoryDescriptor_release(s);

		IOInterleavedMemoryDescriptor *il = IOInterleavedMemoryDescriptor_withCapacity(2, kIODirectionInOut);
		cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(il, c, 2 * PG, PG));
		cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(il, a, 0, PG));
		m = IOMemoryDescriptor_map(il, kIOMapUnique);
		cr_assert_not_null(m);
		expect_alias(map_ptr(m), bytes_of(c) + 2 * PG, PG, 5);
		expect_alias(map_ptr(m) + PG, bytes_of(a), PG, 6);
		IOMemoryMap_release(m);
		IOMemoryDescriptor_release(il);
		IOMemoryDescriptor_release(mm);
		IOMemoryDescriptor_release(a);
		IOMemoryDescriptor_release(c);
	}
}

Test(memmap, general_ranges_over_buffer_ram_map_in_descriptor_order)
{
	IOBufferMemoryDescriptor *b = new_buffer(3 * PG);
	unsigned char *buf = bytes_of(b);
	IOAddressRange r[2] = { { (uintptr_t)(buf + 2 * PG), PG }, { (uintptr_t)buf, PG } };
	IOMemoryDescriptor *g = IOMemoryDescriptor_withAddressRanges(r, 2, kIODirectionInOut, kernel_task);
	cr_assert_not_null(g);
	IOMemoryMap *m = IOMemoryDescriptor_map(g, 0);
	cr_assert_not_null(m, "not prepared: mapping needs no wiring");
	expect_alias(map_ptr(m), buf + 2 * PG, PG, 1);
	expect_alias(map_ptr(m) + PG, buf, PG, 2);
	IOMemoryMap_release(m);

	/* separate pieces that do not meet on a page boundary cannot be mapped */
	IOAddressRange bad[2] = { { (uintptr_t)buf, 100 }, { (uintptr_t)(buf + 2 * PG), PG } };
	IOMemoryDescriptor *g2 = IOMemoryDescriptor_withAddressRanges(bad, 2, kIODirectionInOut, kernel_task);
	cr_assert_not_null(g2);
	cr_expect_eq(iomem_md_createMappingInTask(g2, kernel_task, 0, kIOMapAnywhere, 0, 0, &m), kIOReturnNotAligned);
	cr_expect_null(m);
	/* virtually contiguous pieces merge, wherever they meet */
	IOAddressRange ok[2] = { { (uintptr_t)buf, 100 }, { (uintptr_t)(buf + 100), PG } };
	IOMemoryDescriptor *g3 = IOMemoryDescriptor_withAddressRanges(ok, 2, kIODirectionInOut, kernel_task);
	m = IOMemoryDescriptor_map(g3, 0);
	cr_assert_not_null(m);
	expect_alias(map_ptr(m), buf, PG + 100, 3);
	IOMemoryMap_release(m);
	IOMemoryDescriptor_release(g3);
	IOMemoryDescriptor_release(g2);
	IOMemoryDescriptor_release(g);
	IOMemoryDescriptor_release(b);
}

Test(memmap, physical_descriptors_of_buffer_ram_map_back)
{
	for (int l = 0; l < DESC_NLAYOUTS; l++) {
		desc_set_layout(desc_layouts[l], 2, 13);
		IOBufferMemoryDescriptor *b = new_buffer(3 * PG);
		IOAddressRange r[8];
		UInt32 n = 0;
		for (IOByteCount off = 0, seg; off < 3 * PG && n < 8; off += seg) {
			r[n].address = IOMemoryDescriptor_getPhysicalSegment(b, off, &seg, 0);
			r[n++].length = seg;
		}
		IOMemoryDescriptor *ph = IOMemoryDescriptor_withAddressRanges(r, n, kIODirectionInOut, NULL);
		cr_assert_not_null(ph);
		IOMemoryMap *m = IOMemoryDescriptor_map(ph, 0);
		cr_assert_not_null(m, "layout %s", iomem_posix_layout_name(desc_layouts[l]));
		expect_alias(map_ptr(m), bytes_of(b), 3 * PG, (unsigned)l);
		cr_expect_eq(IOMemoryMap_getPhysicalAddress(m), r[0].address);
		IOMemoryMap_release(m);
		IOMemoryDescriptor_release(ph);
		IOMemoryDescriptor_release(b);
	}
	desc_set_layout(IOMEM_POSIX_LAYOUT_IDENTITY, 0, 0);
	IODeviceMemory *dev = IODeviceMemory_withRange(0xFE000000, 0x1000);
	IOMemoryMap *m = NULL;
	cr_expect_eq(iomem_md_createMappingInTask(dev, kernel_task, 0, kIOMapAnywhere, 0, 0, &m), kIOReturnUnsupported,
	             "device frames are not RAM: no mapping in user space");
	cr_expect_null(m);
	IOMemoryDescriptor_release(dev);
}

/* ---- memory that cannot be aliased ---- */

Test(memmap, non_memfd_memory_maps_to_its_own_address_or_fails)
{
	unsigned char *heap = IOMallocAligned(2 * PG, PG);
	cr_assert_not_null(heap);
	IOMemoryDescriptor *g = IOMemoryDescriptor_withAddress(heap, 2 * PG, kIODirectionInOut);
	cr_assert_not_null(g);
	IOMemoryMap *m = IOMemoryDescriptor_map(g, 0);
	cr_assert_not_null(m);
	cr_expect_eq(map_ptr(m), heap, "IOKit's same-task rule: its own address");
	cr_expect(IOMemoryMap_getMapOptions(m) & kIOMapStatic);
	IOMemoryMap *again = IOMemoryDescriptor_map(g, 0);
	cr_expect_eq(again, m);
	IOMemoryMap_release(again);
	IOMemoryMap *x = (IOMemoryMap *)1;
	cr_expect_eq(iomem_md_createMappingInTask(g, kernel_task, 0, kIOMapAnywhere | kIOMapUnique, 0, 0, &x),
	             kIOReturnUnsupported, "a real alias is impossible");
	cr_expect_null(x);
	cr_expect_eq(iomem_md_createMappingInTask(g, kernel_task, 0, kIOMapAnywhere | kIOMapReadOnly, 0, 0, &x),
	             kIOReturnUnsupported, "read-only cannot be enforced");
	cr_expect_eq(iomem_md_createMappingInTask(g, kernel_task, 0, kIOMapAnywhere, PG, PG, &x), kIOReturnSuccess,
	             "a sub-range of the live own-address map");
	cr_expect_eq(map_ptr(x), heap + PG);
	IOMemoryMap_release(x);
	cr_expect_eq(IOMemoryMap_unmap(m), kIOReturnSuccess);
	heap[0] = 1;                             /* still the caller's memory */
	IOMemoryMap_release(m);
	cr_expect_eq(iomem_md_createMappingInTask(g, kernel_task, 0, kIOMapAnywhere, PG, PG, &x),
	             kIOReturnUnsupported, "not from offset 0, no live map");
	IOMemoryDescriptor_release(g);
	IOFreeAligned(heap, 2 * PG);
}

/* Memory that cannot be aliased and is not one virtual range: no map. */
Test(memmap, non_memfd_ranges_apart_cannot_be_mapped)
{
	unsigned char *heap = IOMallocAligned(3 * PG, PG);
	cr_assert_not_null(heap);
	IOAddressRange apart[2] = { { (uintptr_t)heap, PG }, { (uintptr_t)heap + 2 * PG, PG } };
	IOAddressRange apart_odd[2] = { { (uintptr_t)heap, PG - 8 }, { (uintptr_t)heap + 2 * PG, PG } };
	IOMemoryMap *x = (IOMemoryMap *)1;
	IOMemoryDescriptor *g = IOMemoryDescriptor_withAddressRanges(apart, 2, kIODirectionInOut, kernel_task);
	cr_assert_not_null(g);
	cr_assert_eq(IOMemoryDescriptor_prepare(g, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(iomem_md_createMappingInTask(g, kernel_task, 0, kIOMapAnywhere, 0, 0, &x), kIOReturnUnsupported,
	             "page-aligned pieces apart");
	cr_expect_null(x);
	IOMemoryDescriptor_complete(g, kIODirectionNone);
	IOMemoryDescriptor_release(g);
	g = IOMemoryDescriptor_withAddressRanges(apart_odd, 2, kIODirectionInOut, kernel_task);
	cr_assert_not_null(g);
	cr_assert_eq(IOMemoryDescriptor_prepare(g, kIODirectionNone), kIOReturnSuccess);
	cr_expect_eq(iomem_md_createMappingInTask(g, kernel_task, 0, kIOMapAnywhere, 0, 0, &x), kIOReturnNotAligned,
	             "a piece that ends inside a page");
	IOMemoryDescriptor_complete(g, kIODirectionNone);
	IOMemoryDescriptor_release(g);
	IOFreeAligned(heap, 3 * PG);
}

/* A driver's own kind is mapped through its physical segments: each must
 * be RAM; the failure of a child fails a multi or interleaved parent. */
typedef struct seg_src { addr64_t base; IOByteCount len; } seg_src;
static addr64_t src_seg(IOMemoryDescriptor *md, IOByteCount off, IOByteCount *len, IOOptionBits o)
{
	seg_src *x = iomem_md_getContext(md);
	(void)o;
	if (x->base == 0 || off >= x->len)
		return 0;
	if (len)
		*len = x->len - off;
	return x->base + off;
}
static const iomem_md_ops src_ops = { "segments", src_seg, NULL, NULL, NULL, NULL, NULL, NULL };

Test(memmap, custom_kind_pieces_must_be_ram)
{
	seg_src nowhere = { 0, 2 * PG }, not_ram = { 0x40000000ull, 2 * PG };
	IOMemoryMap *x = (IOMemoryMap *)1;
	IOMemoryDescriptor *a = iomem_md_withOps(&src_ops, &nowhere, 2 * PG, kIODirectionInOut);
	IOMemoryDescriptor *b = iomem_md_withOps(&src_ops, &not_ram, 2 * PG, kIODirectionInOut);
	cr_assert(a != NULL && b != NULL);
	cr_expect_eq(iomem_md_createMappingInTask(a, kernel_task, 0, kIOMapAnywhere, 0, 0, &x), kIOReturnUnsupported,
	             "no physical address");
	cr_expect_null(x);
	cr_expect_eq(iomem_md_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere, 0, 0, &x), kIOReturnUnsupported,
	             "not RAM");
	IOBufferMemoryDescriptor *ok = new_buffer(2 * PG);
	IOMemoryDescriptor *kids[2] = { ok, b };
	IOMultiMemoryDescriptor *multi = IOMultiMemoryDescriptor_withDescriptors(kids, 2, kIODirectionInOut, false);
	cr_assert_not_null(multi);
	cr_expect_eq(iomem_md_createMappingInTask(multi, kernel_task, 0, kIOMapAnywhere, 0, 0, &x), kIOReturnUnsupported,
	             "a multi with a child that is not RAM");
	IOInterleavedMemoryDescriptor *il = IOInterleavedMemoryDescriptor_withCapacity(2, kIODirectionInOut);
	cr_assert_not_null(il);
	cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(il, ok, 0, PG));
	cr_assert(IOInterleavedMemoryDescriptor_setMemoryDescriptor(il, b, 0, PG));
	cr_expect_eq(iomem_md_createMappingInTask(il, kernel_task, 0, kIOMapAnywhere, 0, 0, &x), kIOReturnUnsupported,
	             "an interleaved slice that is not RAM");
	/* a short piece of real RAM: mapped, the bytes are the buffer's */
	seg_src ram = { iomem_posix_virt_to_phys(bytes_of(ok)), 0x100 };
	IOMemoryDescriptor *c = iomem_md_withOps(&src_ops, &ram, 0x100, kIODirectionInOut);
	cr_assert_not_null(c);
	cr_assert_eq(iomem_md_createMappingInTask(c, kernel_task, 0, kIOMapAnywhere, 0, 0, &x), kIOReturnSuccess);
	expect_alias(map_ptr(x), bytes_of(ok), 0x100, 5);
	IOMemoryMap_release(x);
	IOMemoryDescriptor_release(c);
	IOMemoryDescriptor_release(il);
	IOMemoryDescriptor_release(multi);
	IOMemoryDescriptor_release(ok);
	IOMemoryDescriptor_release(b);
	IOMemoryDescriptor_release(a);
}

/* ---- setMapping ---- */

Test(memmap, set_mapping_records_and_is_reused)
{
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	IOVirtualAddress at = (IOVirtualAddress)bytes_of(b);
	IOMemoryMap *st = IOMemoryDescriptor_setMapping(b, kernel_task, at, 0);
	cr_assert_not_null(st);
	cr_expect_eq(IOMemoryMap_getVirtualAddress(st), at);
	cr_expect(IOMemoryMap_getMapOptions(st) & kIOMapStatic);
	IOMemoryMap *m = IOMemoryDescriptor_map(b, 0);
	cr_expect_eq(m, st, "map() finds the recorded mapping");
	IOMemoryMap_release(m);
	cr_expect_eq(IOMemoryMap_redirect(st, NULL, 0, 0), kIOReturnUnsupported, "not iomem's address space");
	cr_expect_eq(IOMemoryMap_unmap(st), kIOReturnSuccess);
	bytes_of(b)[0] = 3;                      /* a static mapping is never deallocated */
	IOMemoryMap_release(st);
	cr_expect_null(IOMemoryDescriptor_setMapping(b, kernel_task, 0, 0), "address 0");
	IOMemoryDescriptor_release(b);
}

/* ---- guards ---- */

Test(memmap, guard_pages_fault)
{
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	IOMemoryMap *m = IOMemoryDescriptor_map(b, kIOMapGuardedSmall);
	cr_assert_not_null(m);
	unsigned char *p = map_ptr(m);
	expect_alias(p, bytes_of(b), PG, 1);
	cr_expect(access_faults(p - 1, false), "the guard page before");
	cr_expect(access_faults(p + PG, false), "the guard page after");
	IOMemoryMap_release(m);
	m = IOMemoryDescriptor_map(b, kIOMapGuardedLarge);
	cr_assert_not_null(m);
	p = map_ptr(m);
	cr_expect(access_faults(p - 65536, false));
	cr_expect(access_faults(p + PG + 65535, false));
	IOMemoryMap_release(m);
	IOMemoryDescriptor_release(b);
}

/* ---- redirect ---- */

Test(memmap, redirect_blocks_and_repoints_unique_maps)
{
	IOBufferMemoryDescriptor *a = new_buffer(2 * PG), *c = new_buffer(3 * PG);
	memset(bytes_of(a), 0xAA, 2 * PG);
	memset(bytes_of(c), 0xCC, 3 * PG);
	IOMemoryMap *u = IOMemoryDescriptor_map(a, kIOMapUnique);
	cr_assert_not_null(u);
	unsigned char *p = map_ptr(u);
	cr_expect_eq(IOMemoryMap_redirect(u, NULL, 0, 0), kIOReturnSuccess);
	cr_expect(access_faults(p, false), "blocked");
	cr_expect_eq(IOMemoryMap_redirect(u, a, 0, 0), kIOReturnSuccess, "back to itself: unblocked");
	cr_expect_eq(p[0], 0xAA);
	cr_expect_not(access_faults(p, true));
	cr_expect_eq(bytes_of(a)[0], 0x5A, "the child's write went to the shared pages");
	cr_expect_eq(IOMemoryMap_redirect(u, c, 0, 2 * PG), kIOReturnBadArgument, "c has no 2 pages at 2 pages");
	cr_expect_eq(IOMemoryMap_redirect(u, c, 0, PG), kIOReturnSuccess);
	cr_expect_eq(map_ptr(u), p, "same address");
	cr_expect_eq(IOMemoryMap_getMemoryDescriptor(u), c);
	cr_expect_eq(IOMemoryMap_GetOffset(u), PG);
	cr_expect_eq(iomem_md_getRetainCount(a), 1, "the old descriptor released");
	cr_expect_eq(iomem_md_getRetainCount(c), 2);
	cr_expect(iomem_test_all_bytes(p, 2 * PG, 0xCC));
	expect_alias(p, bytes_of(c) + PG, 2 * PG, 7);

	/* a shared map can be blocked, not re-pointed */
	IOMemoryMap *s = IOMemoryDescriptor_map(a, 0);
	cr_assert_not_null(s);
	cr_expect_eq(IOMemoryMap_redirect(s, c, 0, 0), kIOReturnUnsupported);
	cr_expect_eq(IOMemoryMap_redirect(s, NULL, 0, 0), kIOReturnSuccess);
	cr_expect(access_faults(map_ptr(s), true));
	cr_expect_eq(IOMemoryMap_redirect(s, a, 0, 0), kIOReturnSuccess);
	cr_expect_not(access_faults(map_ptr(s), true));
	IOMemoryMap_release(s);
	/* memory that cannot be aliased */
	unsigned char *heap = IOMallocAligned(2 * PG, PG);
	IOMemoryDescriptor *g = IOMemoryDescriptor_withAddress(heap, 2 * PG, kIODirectionInOut);
	cr_expect_eq(IOMemoryMap_redirect(u, g, 0, 0), kIOReturnUnsupported);
	cr_expect_eq(IOMemoryMap_getMemoryDescriptor(u), c, "unchanged");
	IOMemoryDescriptor_release(g);
	IOFreeAligned(heap, 2 * PG);
	IOMemoryMap_release(u);
	cr_expect_eq(iomem_md_getRetainCount(c), 1);
	IOMemoryDescriptor_release(a);
	IOMemoryDescriptor_release(c);
}

/* ---- wireRange ---- */

Test(memmap, wire_range)
{
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	IOMemoryMap *m = IOMemoryDescriptor_map(b, 0);
	cr_assert_not_null(m);
	IOReturn r = IOMemoryMap_wireRange(m, kIODirectionInOut, 10, PG);
	cr_expect(r == kIOReturnSuccess || r == kIOReturnNoResources || r == kIOReturnNotPrivileged,
	          "mlock: %s", IOReturnString(r));
	cr_expect_eq(IOMemoryMap_wireRange(m, kIODirectionNone, 10, PG), kIOReturnSuccess, "unwire");
	cr_expect_eq(IOMemoryMap_wireRange(m, kIODirectionIn, 0, 0), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryMap_wireRange(m, kIODirectionIn, 2 * PG, 1), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryMap_wireRange(m, kIODirectionIn, PG, PG + 1), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryMap_wireRange(m, kIODirectionIn, 1, ~(mach_vm_size_t)0), kIOReturnBadArgument);
	IOMemoryMap_release(m);
	IOMemoryDescriptor_release(b);
}

/* ---- DriverKit CreateMapping ---- */

Test(memmap, driverkit_create_mapping)
{
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	IOMemoryMap *m = NULL;
	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, 0, 0, 0, 0, 0, &m), kIOReturnSuccess);
	cr_assert_not_null(m);
	cr_expect_eq(IOMemoryMap_getMapOptions(m) & (kIOMapAnywhere | kIOMapGuardedMask),
	             kIOMapAnywhere | kIOMapGuardedSmall, "not fixed: anywhere, small guards by default");
	cr_expect(access_faults((unsigned char *)(uintptr_t)IOMemoryMap_GetAddress(m) - 1, false));
	expect_alias((unsigned char *)(uintptr_t)IOMemoryMap_GetAddress(m), bytes_of(b), 2 * PG, 1);
	IOMemoryMap_release(m);

	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, kIOMemoryMapReadOnly | kIOMemoryMapGuardedNone |
	                                              kIOMemoryMapCacheModeInhibit, 0, PG, PG, 0, &m),
	             kIOReturnSuccess);
	cr_assert_not_null(m);
	cr_expect_eq(IOMemoryMap_GetOffset(m), PG);
	cr_expect_eq(IOMemoryMap_GetLength(m), PG);
	cr_expect_eq(IOMemoryMap_getMapOptions(m) & (kIOMapReadOnly | kIOMapGuardedMask | kIOMapCacheMask),
	             kIOMapReadOnly | kIOMapInhibitCache);
	cr_expect(access_faults((unsigned char *)(uintptr_t)IOMemoryMap_GetAddress(m), true));
	IOMemoryMap_release(m);

	void *hole = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(hole, MAP_FAILED);
	munmap(hole, 2 * PG);
	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, kIOMemoryMapFixedAddress, (uintptr_t)hole, 0, 0, 0, &m),
	             kIOReturnSuccess);
	cr_expect_eq(IOMemoryMap_GetAddress(m), (uint64_t)(uintptr_t)hole);
	cr_expect_eq(IOMemoryMap_getMapOptions(m) & kIOMapGuardedMask, 0, "fixed: no guard");
	IOMemoryMap *m2 = (IOMemoryMap *)1;
	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, kIOMemoryMapFixedAddress, (uintptr_t)bytes_of(b), 0, 0, 0, &m2),
	             kIOReturnError, "taken");
	cr_expect_null(m2);
	IOMemoryMap_release(m);

	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, 0x300, 0, 0, 0, 0, &m), kIOReturnBadArgument, "cache mode");
	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, 0x10, 0, 0, 0, 0, &m), kIOReturnBadArgument, "guard value");
	cr_expect_eq(IOMemoryDescriptor_CreateMapping(NULL, 0, 0, 0, 0, 0, &m), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, 0, 0, 0, 0, 0, NULL), kIOReturnBadArgument);
	cr_expect_eq(IOMemoryDescriptor_CreateMapping(b, 0, 0, PG, 2 * PG, 0, &m), kIOReturnError, "past the end");
	cr_expect_null(m);
	IOMemoryDescriptor_release(b);
}

/* each DriverKit cache mode is the IOKit map cache mode; large guards are
 * 64 KiB on each side */
Test(memmap, driverkit_create_mapping_cache_modes_and_large_guards)
{
	static const struct { uint64_t dk; IOOptionBits map; } modes[] = {
		{ kIOMemoryMapCacheModeDefault, kIOMapDefaultCache },
		{ kIOMemoryMapCacheModeInhibit, kIOMapInhibitCache },
		{ kIOMemoryMapCacheModeCopyback, kIOMapCopybackCache },
		{ kIOMemoryMapCacheModeWriteThrough, kIOMapWriteThruCache },
		{ kIOMemoryMapCacheModeRealTime, kIOMapRealTimeCache },
	};
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	IOMemoryMap *m = NULL;
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		cr_assert_eq(IOMemoryDescriptor_CreateMapping(b, modes[i].dk, 0, 0, 0, 0, &m), kIOReturnSuccess,
		             "cache mode %zu", i);
		cr_assert_not_null(m);
		cr_expect_eq(IOMemoryMap_getMapOptions(m) & kIOMapCacheMask, modes[i].map, "cache mode %zu", i);
		expect_alias((unsigned char *)(uintptr_t)IOMemoryMap_GetAddress(m), bytes_of(b), 2 * PG, 3);
		IOMemoryMap_release(m);
	}
	cr_assert_eq(IOMemoryDescriptor_CreateMapping(b, kIOMemoryMapGuardedLarge, 0, 0, 0, 0, &m), kIOReturnSuccess);
	cr_assert_not_null(m);
	cr_expect_eq(IOMemoryMap_getMapOptions(m) & (kIOMapAnywhere | kIOMapGuardedMask),
	             kIOMapAnywhere | kIOMapGuardedLarge);
	unsigned char *a = (unsigned char *)(uintptr_t)IOMemoryMap_GetAddress(m);
	cr_expect(access_faults(a - 1, false));
	cr_expect(access_faults(a - 65536, false), "64 KiB guard below");
	cr_expect(access_faults(a + 2 * PG, false));
	cr_expect(access_faults(a + 2 * PG + 65535, false), "64 KiB guard above");
	IOMemoryMap_release(m);
	IOMemoryDescriptor_release(b);
}

/* a retained map outlives the creator's release */
Test(memmap, retain_keeps_the_map)
{
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	IOMemoryMap *m = IOMemoryDescriptor_map(b, kIOMapAnywhere);
	cr_assert_not_null(m);
	unsigned char *p = map_ptr(m);
	IOMemoryMap_retain(m);
	IOMemoryMap_release(m);
	cr_expect_eq(map_ptr(m), p, "still mapped after one of two releases");
	expect_alias(p, bytes_of(b), PG, 9);
	IOMemoryMap_release(m);
	cr_expect(access_faults(p, false), "the last release unmaps");
	IOMemoryMap_retain(NULL);
	IOMemoryDescriptor_release(b);
}

/* ---- concurrency: reuse and release from two threads ---- */

#include <pthread.h>

static void *reuse_thread(void *arg)
{
	IOMemoryDescriptor *md = (IOMemoryDescriptor *)arg;
	for (int i = 0; i < 2000; i++) {
		IOMemoryMap *m = IOMemoryDescriptor_map(md, 0);
		if (m == NULL)
			return (void *)1;
		((volatile unsigned char *)map_ptr(m))[i % 64] = (unsigned char)i;
		IOMemoryMap_release(m);
	}
	return NULL;
}

Test(memmap, concurrent_map_and_release)
{
	IOBufferMemoryDescriptor *b = new_buffer(PG);
	pthread_t t[2];
	void *r0, *r1;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, reuse_thread, b), 0);
	pthread_join(t[0], &r0);
	pthread_join(t[1], &r1);
	cr_expect_null(r0);
	cr_expect_null(r1);
	cr_expect_eq(iomem_md_getRetainCount(b), 1, "every map gone");
	cr_expect_null(IOMemoryDescriptor_map(b, kIOMapReference));
	IOMemoryDescriptor_release(b);
}

/* ---- a driver's own kind, and machine pages larger than the host's ---- */

static addr64_t custom_segment(IOMemoryDescriptor *md, IOByteCount offset, IOByteCount *length, IOOptionBits options)
{
	return IOMemoryDescriptor_getPhysicalSegment((IOMemoryDescriptor *)iomem_md_getContext(md), offset, length,
	                                             options);
}

static const iomem_md_ops custom_ops = { .name = "memmap-test", .getPhysicalSegment = custom_segment };

Test(memmap, custom_kind_maps_through_its_physical_segments)
{
	desc_set_layout(IOMEM_POSIX_LAYOUT_SCATTERED, 0, 0);
	IOBufferMemoryDescriptor *b = new_buffer(3 * PG);
	IOMemoryDescriptor *c = iomem_md_withOps(&custom_ops, b, 3 * PG, kIODirectionInOut);
	cr_assert_not_null(c);
	IOMemoryMap *m = IOMemoryDescriptor_map(c, 0);
	cr_assert_not_null(m);
	expect_alias(map_ptr(m), bytes_of(b), 3 * PG, 1);
	IOMemoryMap_release(m);
	IOMemoryDescriptor_release(c);
	IOMemoryDescriptor_release(b);
}

Test(memmap, machine_pages_larger_than_the_host_page)
{
	if (iomem_posix_set_page_size(16384) != kIOReturnSuccess)
		cr_skip_test("host page larger than 16 KiB");
	cr_assert_eq(PG, 16384);
	IOBufferMemoryDescriptor *b = new_buffer(2 * PG);
	IOMemoryMap *m = IOMemoryDescriptor_createMappingInTask(b, kernel_task, 0, kIOMapAnywhere | kIOMapGuardedSmall,
	                                                        PG / 2 + 3, PG);
	cr_assert_not_null(m);
	cr_expect_eq((uintptr_t)map_ptr(m) % sysconf(_SC_PAGESIZE), (PG / 2 + 3) % sysconf(_SC_PAGESIZE));
	expect_alias(map_ptr(m), bytes_of(b) + PG / 2 + 3, PG, 2);
	cr_expect(access_faults(map_ptr(m) - (PG / 2 + 3) % sysconf(_SC_PAGESIZE) - 1, false),
	          "a guard of one machine page before the first host page");
	IOMemoryMap_release(m);
	IOMemoryDescriptor_release(b);
}
