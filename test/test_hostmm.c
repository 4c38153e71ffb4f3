/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_hostmm.c: the memory system calls as an unmodified program makes
 * them (what interpose.c forwards), under a budget 8x smaller than the
 * memory: which mappings are managed, MAP_FIXED over managed memory,
 * partial munmap, madvise, mremap, PROT_NONE reservations opened later,
 * and the kernel reading and writing paged-out buffers (pipes, files,
 * O_DIRECT).  Every page is checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "hostmm.h"
#include "lock.h"
#include "upvm.h"
#include "upvm_int.h"
#include "vm.h"
#include "vmspace.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25	/* Linux 6.1; glibc 2.36 lacks the name */
#endif

#define MIB		((size_t)1 << 20)
#define BUDGET		(8 * MIB)
#define NPAGES		(64 * MIB / PAGE_SIZE)
#define LEN		(NPAGES * PAGE_SIZE)

static void
start(void)
{
	test_hostmm_start(BUDGET);
}

/* filled, then read back: the pages went out to swap and came back */
static char *
paged_region(void)
{
	char *p = test_paged_region(NPAGES);

	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	return p;
}

/*
 * Memory calls made inside upvm go to the kernel: upvm's own memory is
 * never managed, and managing it would take the map lock the caller may
 * hold.  The pageout daemon, holding it for reading, hung so under
 * `programs` (xz): a log line's strerror() was its thread's first
 * malloc, jemalloc mapped an arena through upvm's mmap, whose write lock
 * on the map waited for the daemon itself.  Here: inside an interposed
 * call (vmspace_enter), holding the map's read lock, map and unmap.
 */
Test(hostmm, memory_calls_from_inside_upvm_go_to_the_kernel, .timeout = 30)
{
	struct vmspace *vs;
	uint64_t before;
	char *q;

	start();
	before = test_stats().regions;
	cr_assert_not_null(vs = vmspace_enter());
	vm_rwlock_rdlock(&vs->vs_map.m_lock);
	q = hostmm_mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(q, MAP_FAILED);
	memset(q, 7, 2 * MIB);
	cr_assert_eq(hostmm_munmap(q, 2 * MIB), 0);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	cr_assert_eq(test_stats().regions, before, "upvm's own mapping was "
	    "managed");
	upvm_fini();
}

Test(hostmm, large_anonymous_private_mappings_are_managed, .timeout = 60)
{
	char path[] = "/tmp/upvm-hostmm-XXXXXX";
	uint64_t before;
	char *p, *q;
	int fd;

	start();
	before = test_stats().regions;
	p = test_hostmm_anon(2 * MIB, PROT_READ | PROT_WRITE, 0);
	cr_assert_eq(test_stats().regions, before + 1);
	/* small, shared, file, executable, populated: left alone */
	q = test_hostmm_anon(MIB / 2, PROT_READ | PROT_WRITE, 0);
	cr_assert_eq(test_stats().regions, before + 1);
	cr_assert_eq(hostmm_munmap(q, MIB / 2), 0);
	q = hostmm_mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(q, MAP_FAILED);
	cr_assert_eq(test_stats().regions, before + 1);
	cr_assert_eq(hostmm_munmap(q, 2 * MIB), 0);
	cr_assert_geq(fd = mkstemp(path), 0);
	cr_assert_eq(ftruncate(fd, 2 * MIB), 0);
	q = hostmm_mmap(NULL, 2 * MIB, PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert_neq(q, MAP_FAILED);
	cr_assert_eq(test_stats().regions, before + 1);
	cr_assert_eq(hostmm_munmap(q, 2 * MIB), 0);
	close(fd);
	unlink(path);
	q = test_hostmm_anon(2 * MIB, PROT_READ | PROT_WRITE, MAP_POPULATE);
	cr_assert_eq(test_stats().regions, before + 1);
	cr_assert_eq(hostmm_munmap(q, 2 * MIB), 0);
	/* bad calls fail as the kernel's do, errno set */
	errno = 0;
	cr_assert_eq(hostmm_mmap(NULL, 0, PROT_READ, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0), MAP_FAILED);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(hostmm_munmap(p + 1, PAGE_SIZE), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(hostmm_munmap(p, 2 * MIB), 0);
	cr_assert_eq(test_stats().regions, before);
	upvm_fini();
}

Test(hostmm, partial_munmap_keeps_the_rest, .timeout = 120)
{
	char *p;

	start();
	p = paged_region();
	/* a hole in the middle, and the first page */
	cr_assert_eq(hostmm_munmap(p + LEN / 4, LEN / 4), 0);
	cr_assert_eq(hostmm_munmap(p, PAGE_SIZE), 0);
	cr_assert_eq(test_pattern_bad(p + PAGE_SIZE, NPAGES / 4 - 1, 1, 1),
	    -1);
	cr_assert_eq(test_pattern_bad(p + LEN / 2, NPAGES / 2, NPAGES / 2,
	    1), -1);
	/* a range over the hole and managed pages */
	cr_assert_eq(hostmm_munmap(p, LEN / 2 + PAGE_SIZE), 0);
	cr_assert_eq(test_pattern_bad(p + LEN / 2 + PAGE_SIZE, NPAGES / 2 - 1,
	    NPAGES / 2 + 1, 1), -1);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0, "every slot freed");
	cr_assert_eq(test_stats().regions, 0);
	upvm_fini();
}

Test(hostmm, map_fixed_over_managed_memory_replaces_it, .timeout = 120)
{
	char *p, *q;

	start();
	p = paged_region();
	/* a managed mapping over the second quarter */
	q = hostmm_mmap(p + LEN / 4, LEN / 4, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(q, p + LEN / 4);
	cr_assert_eq(test_zero_bad(q, NPAGES / 4), -1, "fresh zeros");
	test_pattern_fill(q, NPAGES / 4, NPAGES / 4, 2);
	/* an unmanaged one (shared) over the third */
	q = hostmm_mmap(p + LEN / 2, LEN / 4, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(q, p + LEN / 2);
	cr_assert_eq(test_zero_bad(q, NPAGES / 4), -1);
	test_pattern_fill(q, NPAGES / 4, NPAGES / 2, 3);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(test_pattern_bad(p, NPAGES / 4, 0, 1), -1);
		cr_assert_eq(test_pattern_bad(p + LEN / 4, NPAGES / 4,
		    NPAGES / 4, 2), -1);
		cr_assert_eq(test_pattern_bad(p + LEN / 2, NPAGES / 4,
		    NPAGES / 2, 3), -1);
		cr_assert_eq(test_pattern_bad(p + 3 * LEN / 4, NPAGES / 4,
		    3 * NPAGES / 4, 1), -1);
	}
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}

Test(hostmm, madvise_drops_and_advises_managed_pages, .timeout = 120)
{
	char *p, *small;

	start();
	p = paged_region();
	cr_assert_eq(hostmm_madvise(p, LEN / 4, MADV_DONTNEED), 0);
	cr_assert_eq(hostmm_madvise(p + LEN / 4, LEN / 4, MADV_FREE), 0);
	cr_assert_eq(hostmm_madvise(p + LEN / 2, LEN / 4, MADV_SEQUENTIAL),
	    0);
	cr_assert_eq(hostmm_madvise(p + LEN / 2, LEN / 4, MADV_WILLNEED), 0);
	cr_assert_eq(hostmm_madvise(p, LEN, MADV_HUGEPAGE), 0, "passed on");
	cr_assert_eq(test_zero_bad(p, NPAGES / 2), -1);
	cr_assert_eq(test_pattern_bad(p + LEN / 2, NPAGES / 2, NPAGES / 2, 1),
	    -1);
	cr_assert_eq(hostmm_madvise(p, LEN, MADV_RANDOM), 0);
	cr_assert_eq(hostmm_madvise(p, LEN, MADV_NORMAL), 0);
	/* a range that is partly unmanaged */
	small = test_hostmm_anon(MIB / 2, PROT_READ | PROT_WRITE, 0);
	memset(small, 7, MIB / 2);
	cr_assert_eq(hostmm_madvise(small, MIB / 2, MADV_DONTNEED), 0);
	cr_assert(test_all_bytes(small, 0, MIB / 2));
	cr_assert_eq(hostmm_madvise(p + 1, PAGE_SIZE, MADV_DONTNEED), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(hostmm_munmap(small, MIB / 2), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}

Test(hostmm, mremap_keeps_the_data, .timeout = 120)
{
	char *p, *q;

	start();
	p = paged_region();
	/* grow and move: the data comes along */
	q = hostmm_mremap(p, LEN / 2, LEN, MREMAP_MAYMOVE, NULL);
	cr_assert_neq(q, MAP_FAILED, "mremap: %s", strerror(errno));
	cr_assert_eq(test_pattern_bad(q, NPAGES / 2, 0, 1), -1);
	cr_assert_eq(test_zero_bad(q + LEN / 2, NPAGES / 2), -1);
	/* the rest of the old region stays managed and intact */
	cr_assert_eq(test_pattern_bad(p + LEN / 2, NPAGES / 2, NPAGES / 2, 1),
	    -1);
	/* still managed where it went: it pages, every page comes back */
	test_pattern_fill(q + LEN / 2, NPAGES / 2, NPAGES / 2, 2);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(test_pattern_bad(q, NPAGES / 2, 0, 1), -1);
		cr_assert_eq(test_pattern_bad(q + LEN / 2, NPAGES / 2,
		    NPAGES / 2, 2), -1);
	}
	cr_assert_eq(test_stats().regions, 3, "moved, grown, the old rest");
	/* shrink in place: the tail's slots are freed */
	cr_assert_eq(hostmm_mremap(q, LEN, LEN / 4, 0, NULL), q);
	cr_assert_eq(test_pattern_bad(q, NPAGES / 4, 0, 1), -1);
	cr_assert_eq(hostmm_munmap(q, LEN / 4), 0);
	cr_assert_eq(hostmm_munmap(q + LEN / 4, 3 * LEN / 4), 0,
	    "unmapped already: not an error");
	cr_assert_eq(hostmm_munmap(p + LEN / 2, LEN / 2), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}

Test(hostmm, prot_none_reservation_opened_later, .timeout = 120)
{
	char *p;

	start();
	p = test_hostmm_anon(LEN, PROT_NONE, MAP_NORESERVE);
	cr_assert_eq(test_stats().regions, 1, "the reservation is managed");
	cr_assert_eq(hostmm_mprotect(p, LEN / 2, PROT_READ | PROT_WRITE), 0);
	test_pattern_fill(p, NPAGES / 2, 0, 1);
	cr_assert_eq(hostmm_mprotect(p + LEN / 2, LEN / 2, PROT_READ |
	    PROT_WRITE), 0);
	test_pattern_fill(p + LEN / 2, NPAGES / 2, NPAGES / 2, 1);
	for (int pass = 0; pass < 2; pass++)
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	cr_assert_gt(test_stats().pageins, 0);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	upvm_fini();
}

/* the kernel's own copies fault on paged-out pages and are served */
Test(hostmm, syscalls_on_paged_out_buffers, .timeout = 120)
{
	char path[] = "/var/tmp/upvm-hostmm-XXXXXX";
	char *p, *q;
	int fds[2], fd, dio;
	size_t chunk = 64 * 1024;

	start();
	p = paged_region();
	q = test_hostmm_anon(LEN, PROT_READ | PROT_WRITE, 0);
	/* a pipe: write(2) from paged-out pages, read(2) into fresh ones */
	cr_assert_eq(pipe(fds), 0);
	for (size_t off = 0; off < LEN / 4; off += chunk) {
		cr_assert_eq(write(fds[1], p + off, chunk), (ssize_t)chunk);
		cr_assert_eq(read(fds[0], q + off, chunk), (ssize_t)chunk);
	}
	close(fds[0]);
	close(fds[1]);
	/* a file, with O_DIRECT where the file system takes it */
	/* /var/tmp takes O_DIRECT where /tmp (tmpfs) does not; the 6.1
	   guest's /var/tmp is read-only */
	if ((fd = mkstemp(path)) < 0) {
		strcpy(path, "/tmp/upvm-hostmm-XXXXXX");
		fd = mkstemp(path);
	}
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	unlink(path);
	close(fd);
	/* (an O_DIRECT open a file system refuses may still create it) */
	if ((fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600)) < 0)
		fd = open(path, O_RDWR | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(pwrite(fd, p + LEN / 4, LEN / 4, 0), (ssize_t)(LEN / 4));
	/* announced as the preload does (interpose.c, ip_read): on the wp
	   protocol the daemon must not drop pages the read has pinned */
	dio = hostmm_dio_begin(fd, (uintptr_t)(q + LEN / 4),
	    (uintptr_t)(q + LEN / 2));
	cr_assert_eq(pread(fd, q + LEN / 4, LEN / 4, 0), (ssize_t)(LEN / 4));
	hostmm_dio_end(dio, (uintptr_t)(q + LEN / 4), (uintptr_t)(q + LEN / 2));
	close(fd);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(test_pattern_bad(q, NPAGES / 2, 0, 1), -1);
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	}
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(hostmm_munmap(q, LEN), 0);
	upvm_fini();
}

/*
 * mlock()ed managed pages stay resident and outside the budget: a locked
 * range twice the budget, with other memory paging around it; munlock
 * makes it pageable again.  DONTNEED on it fails, as the kernel's does.
 */
Test(hostmm, mlocked_pages_stay_resident_outside_the_budget, .timeout = 300)
{
	size_t nlock = 2 * BUDGET / PAGE_SIZE;
	struct upvm_stats st;
	char *p, *l;

	start();
	l = test_hostmm_anon(nlock * PAGE_SIZE, PROT_READ | PROT_WRITE, 0);
	test_pattern_fill(l, nlock, 0, 7);
	cr_assert_eq(hostmm_mlock(l, nlock * PAGE_SIZE, 0), 0, "mlock: %s",
	    strerror(errno));
	p = paged_region();
	for (int pass = 0; pass < 2; pass++)
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	st = test_stats();
	cr_assert_geq(st.resident_pages, nlock, "the locked pages stay");
	cr_assert_leq(st.resident_pages, nlock + BUDGET / PAGE_SIZE +
	    (size_t)st.handlers * 512, "the rest keeps to the budget");
	cr_assert_eq(hostmm_madvise(l, PAGE_SIZE, MADV_DONTNEED), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(test_pattern_bad(l, nlock, 0, 7), -1);
	/* unlocked: it pages like the rest */
	cr_assert_eq(hostmm_munlock(l, nlock * PAGE_SIZE), 0);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	st = test_stats();
	cr_assert_lt(st.resident_pages, nlock, "the unlocked pages went");
	cr_assert_eq(test_pattern_bad(l, nlock, 0, 7), -1);
	cr_assert_eq(hostmm_munmap(l, nlock * PAGE_SIZE), 0);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	upvm_fini();
}

/*
 * mlock2(MLOCK_ONFAULT) wires only the pages that fault in: a range 4x
 * the budget locked that way, a few pages of it touched, leaves the
 * budget to the rest (before, the whole range counted as wired, resident
 * or not, and the budget never throttled: everything else stayed
 * resident).
 */
Test(hostmm, mlock_onfault_wires_only_the_pages_that_fault_in,
    .timeout = 300)
{
	size_t nlock = 4 * BUDGET / PAGE_SIZE, touched = 64;
	struct upvm_stats st;
	char *p, *l;

	start();
	l = test_hostmm_anon(nlock * PAGE_SIZE, PROT_READ | PROT_WRITE, 0);
	cr_assert_eq(hostmm_mlock(l, nlock * PAGE_SIZE, MLOCK_ONFAULT), 0,
	    "mlock2: %s", strerror(errno));
	test_pattern_fill(l, touched, 0, 7);
	p = paged_region();
	for (int pass = 0; pass < 2; pass++)
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	st = test_stats();
	cr_assert_leq(st.resident_pages, touched + 64 + BUDGET / PAGE_SIZE +
	    (size_t)st.handlers * 512, "%lu pages resident: the region "
	    "beside the locked range keeps to the budget",
	    (unsigned long)st.resident_pages);
	cr_assert_eq(test_pattern_bad(l, touched, 0, 7), -1);
	cr_assert_eq(hostmm_munlock(l, nlock * PAGE_SIZE), 0);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	cr_assert_eq(hostmm_munmap(l, nlock * PAGE_SIZE), 0);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	upvm_fini();
}

/*
 * What the chaos test (test/chaos) found, one case each.
 */

/* MREMAP_DONTUNMAP: the data goes, the old range stays mapped and empty
   (it hung: registered, with no entry behind it) */
Test(hostmm, mremap_dontunmap_leaves_an_empty_managed_range, .timeout = 60)
{
	char *p, *q;

	start();
	p = paged_region();
	q = hostmm_mremap(p, LEN, LEN, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
	    NULL);
	cr_assert_neq(q, MAP_FAILED, "mremap: %s", strerror(errno));
	cr_assert_eq(test_pattern_bad(q, NPAGES, 0, 1), -1);
	cr_assert_eq(test_zero_bad(p, NPAGES), -1, "the old range: zeros");
	test_pattern_fill(p, NPAGES, 0, 2);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(test_pattern_bad(q, NPAGES, 0, 1), -1);
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 2), -1);
	}
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(hostmm_munmap(q, LEN), 0);
	upvm_fini();
}

/* an mlocked region that grows: the kernel faults the growth in inside
   mremap (it deadlocked on upvm's map lock) */
Test(hostmm, mremap_grows_an_mlocked_region, .timeout = 60)
{
	size_t n = 2 * MIB / PAGE_SIZE;
	char *l, *q;

	start();
	l = test_hostmm_anon(n * PAGE_SIZE, PROT_READ | PROT_WRITE, 0);
	test_pattern_fill(l, n, 0, 3);
	cr_assert_eq(hostmm_mlock(l, n * PAGE_SIZE, 0), 0);
	q = hostmm_mremap(l, n * PAGE_SIZE, 2 * n * PAGE_SIZE, MREMAP_MAYMOVE,
	    NULL);
	cr_assert_neq(q, MAP_FAILED, "mremap: %s", strerror(errno));
	cr_assert_eq(test_pattern_bad(q, n, 0, 3), -1);
	cr_assert_eq(test_zero_bad(q + n * PAGE_SIZE, n), -1);
	cr_assert_geq(test_stats().resident_pages, 2 * n, "locked: resident");
	cr_assert_eq(hostmm_munlock(q, 2 * n * PAGE_SIZE), 0);
	cr_assert_eq(hostmm_munmap(q, 2 * n * PAGE_SIZE), 0);
	upvm_fini();
}

/* MADV_REMOVE is for shared file mappings: on anonymous memory the
   kernel refuses it and keeps the data (upvm dropped the pages) */
Test(hostmm, madvise_remove_of_anonymous_memory_is_refused, .timeout = 60)
{
	char *p;

	start();
	p = paged_region();
	cr_assert_eq(hostmm_madvise(p, LEN / 2, MADV_REMOVE), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	upvm_fini();
}

/* huge page advice on part of a region: the region stays one VMA, so
   mremap of all of it works (it failed with EFAULT) */
Test(hostmm, huge_page_advice_on_part_keeps_the_region_whole, .timeout = 60)
{
	char *p, *to, *q;

	start();
	p = paged_region();
	cr_assert_eq(hostmm_madvise(p, LEN / 2, MADV_HUGEPAGE), 0);
	to = test_hostmm_anon(LEN, PROT_NONE, MAP_NORESERVE);
	q = hostmm_mremap(p, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	cr_assert_eq(q, to, "mremap: %s", strerror(errno));
	cr_assert_eq(test_pattern_bad(q, NPAGES, 0, 1), -1);
	cr_assert_eq(hostmm_munmap(q, LEN), 0);
	upvm_fini();
}

/* a region moved next to another: the kernel merged the two VMAs and
   dropped the registration of both; the neighbor's paged-out pages then
   read as zeros */
Test(hostmm, mremap_next_to_a_region_keeps_the_neighbor_paged, .timeout = 120)
{
	char *x, *y, *q;

	start();
	x = test_hostmm_anon(2 * LEN, PROT_READ | PROT_WRITE, 0);
	cr_assert_eq(hostmm_munmap(x + LEN, LEN), 0);
	test_pattern_fill(x, NPAGES, 0, 4);
	y = test_hostmm_anon(LEN / 4, PROT_READ | PROT_WRITE, 0);
	test_pattern_fill(y, NPAGES / 4, 0, 5);
	cr_assert_eq(test_pattern_bad(x, NPAGES, 0, 4), -1);
	q = hostmm_mremap(y, LEN / 4, LEN / 4, MREMAP_MAYMOVE | MREMAP_FIXED,
	    x + LEN);
	cr_assert_eq(q, x + LEN, "mremap: %s", strerror(errno));
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(test_pattern_bad(x, NPAGES, 0, 4), -1);
		cr_assert_eq(test_pattern_bad(q, NPAGES / 4, 0, 5), -1);
	}
	cr_assert_eq(hostmm_munmap(x, LEN + LEN / 4), 0);
	upvm_fini();
}

/* child_ok: the fork child pid exited 0; `codes` says what others mean */
static void
child_ok(pid_t pid, const char *codes)
{
	int status;

	cr_assert_gt(pid, 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %#x%s", status, codes);
}

/* MADV_DONTFORK and MADV_WIPEONFORK: the child's runtime forgets what
   the kernel did not copy (it registered a range missing in the child,
   failed, and the child hung on its other paged-out pages) */
Test(hostmm, fork_leaves_out_dontfork_and_wipes_wipeonfork, .timeout = 120)
{
	char *a, *b, *c;
	pid_t pid;

	start();
	a = test_hostmm_anon(LEN / 4, PROT_READ | PROT_WRITE, 0);
	b = test_hostmm_anon(LEN / 4, PROT_READ | PROT_WRITE, 0);
	test_pattern_fill(a, NPAGES / 4, 0, 6);
	test_pattern_fill(b, NPAGES / 4, 0, 7);
	c = paged_region();
	cr_assert_eq(hostmm_madvise(a, LEN / 4, MADV_DONTFORK), 0);
	cr_assert_eq(hostmm_madvise(b, LEN / 4, MADV_WIPEONFORK), 0);
	cr_assert_eq(hostmm_mlock(b, PAGE_SIZE, 0), 0);
	if ((pid = fork()) == 0) {
		alarm(60);
		/* a: not mapped here; b: zeros and not locked; c: intact */
		if (madvise(a, PAGE_SIZE, MADV_NORMAL) == 0 || errno != ENOMEM)
			_exit(1);
		if (test_zero_bad(b, NPAGES / 4) != -1)
			_exit(2);
		if (hostmm_madvise(b, PAGE_SIZE, MADV_DONTNEED) != 0)
			_exit(3);
		for (int pass = 0; pass < 2; pass++)
			if (test_pattern_bad(c, NPAGES, 0, 1) != -1)
				_exit(4);
		_exit(0);
	}
	child_ok(pid, "");
	cr_assert_eq(test_pattern_bad(a, NPAGES / 4, 0, 6), -1);
	cr_assert_eq(test_pattern_bad(b, NPAGES / 4, 0, 7), -1);
	cr_assert_eq(test_pattern_bad(c, NPAGES, 0, 1), -1);
	upvm_fini();
}

/*
 * The parent frees its swapped-out pages the moment fork returns and
 * writes as much again, which reuses their swap slots: the child's copies
 * must hold.  Before, the child took its references on the slots in its
 * own fork handler, racing the parent: a slot the parent freed first was
 * reused under the child (chaos seed 300, three threads, with fork: a
 * slot count found at 0 in the child).
 */
Test(hostmm, fork_child_keeps_its_swapped_pages_as_the_parent_frees_them,
    .timeout = 120)
{
	char *c, *d;
	pid_t pid;

	start();
	c = paged_region();
	d = test_hostmm_anon(LEN, PROT_READ | PROT_WRITE, 0);
	if ((pid = fork()) == 0) {
		alarm(60);
		usleep(300000);
		for (int pass = 0; pass < 2; pass++)
			if (test_pattern_bad(c, NPAGES, 0, 1) != -1)
				_exit(1);
		_exit(0);
	}
	cr_assert_eq(hostmm_madvise(c, LEN, MADV_DONTNEED), 0);
	test_pattern_fill(d, NPAGES, 0, 9);
	child_ok(pid, " (1: the child read a page wrong; 6: an assertion "
	    "in its runtime)");
	cr_assert_eq(test_zero_bad(c, NPAGES), -1);
	cr_assert_eq(test_pattern_bad(d, NPAGES, 0, 9), -1);
	upvm_fini();
}

/* swap_used_pages now */
static uint64_t
swap_used_now(void)
{
	struct upvm_stats st;

	cr_assert_eq(upvm_stats(&st), 0);
	return st.swap_used_pages;
}

/*
 * A program that forks while its pages are swapped out, and rewrites
 * them after each child is gone without upvm_fini: the child's
 * references on the old slots come back (upvm_swap_reap here; the
 * allocator reaps before the file grows and when it is full, at most
 * once a second), so the swap holds what the live processes hold.
 * Before, each generation a child had seen stayed allocated: 28k slots
 * for 16k pages after the first child, the file growing to the cap.
 * Children go each way: exit, SIGKILL, exec (the process lives on in
 * another image), and one lives through the reap and reads its pages
 * after it.
 */
Test(hostmm, children_gone_without_upvm_fini_give_their_swap_back,
    .timeout = 300)
{
	int gate[2], status;
	pid_t pid;
	char *c, x;

	start();
	c = paged_region();
	for (int g = 1; g <= 4; g++) {
		cr_assert_eq(pipe(gate), 0);
		if ((pid = fork()) == 0) {
			alarm(120);
			close(gate[1]);
			if (test_pattern_bad(c, NPAGES, 0, g) != -1)
				_exit(1);
			if (g == 2)
				raise(SIGKILL);
			if (g == 3) {
				(void)dup2(gate[0], 0);
				execl("/bin/sh", "sh", "-c", "read x || :",
				    (char *)NULL);
				_exit(2);
			}
			if (g == 4) {
				/* the parent rewrites and reaps meanwhile */
				if (read(gate[0], &x, 1) != 0 ||
				    test_pattern_bad(c, NPAGES, 0, g) != -1)
					_exit(3);
			}
			_exit(0);
		}
		close(gate[0]);
		cr_assert_gt(pid, 0);
		if (g == 3)	/* until it runs the shell, its old image gone */
			for (int i = 0; i < 3000 &&
			    !test_proc_runs(pid, "sh"); i++)
				usleep(10000);
		if (g == 1 || g == 2) {
			cr_assert_eq(waitpid(pid, &status, 0), pid);
			cr_assert(g == 1 ? WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0 : WIFSIGNALED(status),
			    "child %d status %#x", g, status);
		}
		test_pattern_fill(c, NPAGES, 0, g + 1);
		cr_assert_eq(test_pattern_bad(c, NPAGES, 0, g + 1), -1);
		cr_assert_geq(upvm_swap_reap(), 0, "upvm_swap_reap failed");
		if (g != 4)
			cr_assert_leq(swap_used_now(), (uint64_t)NPAGES,
			    "child %d: %llu slots for %zu pages", g,
			    (unsigned long long)swap_used_now(), NPAGES);
		else	/* the live child's references on the old pages */
			cr_assert_gt(swap_used_now(), (uint64_t)NPAGES,
			    "a live child's references were given back");
		close(gate[1]);
		if (g >= 3)
			child_ok(pid, " (1: a page read wrong before the "
			    "reap; 3: after it)");
	}
	cr_assert_geq(upvm_swap_reap(), 0, "upvm_swap_reap failed");
	cr_assert_leq(swap_used_now(), (uint64_t)NPAGES);
	cr_assert_eq(test_pattern_bad(c, NPAGES, 0, 5), -1);
	upvm_fini();
}

/*
 * refuse_forks: from now on the kernel refuses this thread's forks
 * (clone without CLONE_THREAD or CLONE_VM: EAGAIN, as when a pids limit
 * is reached); threads it starts are still made (clone3 says ENOSYS,
 * and glibc falls back to clone for them), and so is LeakSanitizer's
 * tracer at exit (CLONE_VM).
 */
static void
refuse_forks(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD | CLONE_VM,
		    1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(f) / sizeof(f[0]), .filter = f,
	};

	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		cr_skip_test("this kernel has no seccomp filters: %s",
		    strerror(errno));
}

/*
 * upvm_fork gives back the references taken for a child when the kernel
 * refuses the fork: after the program rewrites its pages the swap holds
 * one copy of them, where a plain fork() left the old slots allocated
 * (the child's references, nobody's) until the swap file closed.
 */
Test(hostmm, a_refused_upvm_fork_gives_the_childs_swap_back, .timeout = 120)
{
	char *c;

	start();
	c = paged_region();
	refuse_forks();
	for (int g = 2; g <= 3; g++) {
		errno = 0;
		cr_assert_eq(upvm_fork(), -1, "the fork was not refused");
		cr_assert_eq(errno, EAGAIN, "%s", strerror(errno));
		test_pattern_fill(c, NPAGES, 0, g);
		cr_assert_eq(test_pattern_bad(c, NPAGES, 0, g), -1);
		cr_assert_leq(swap_used_now(), (uint64_t)NPAGES,
		    "fork %d: %llu slots for %zu pages", g,
		    (unsigned long long)swap_used_now(), NPAGES);
	}
	upvm_fini();
}

/* a child killed before any of upvm's fork handlers ran in it (this
   test's own, registered before upvm's, kills it) */
static void
die_in_child(void)
{
	raise(SIGKILL);
}

/*
 * upvm_fork's child killed before upvm runs in it: it never recorded the
 * references its parent took for it; upvm_fork recorded them for its pid,
 * and they come back once it is gone (here by upvm_swap_reap).
 */
Test(hostmm, an_upvm_fork_child_killed_at_birth_gives_its_swap_back,
    .timeout = 120)
{
	int status;
	pid_t pid;
	char *c;

	cr_assert_eq(pthread_atfork(NULL, NULL, die_in_child), 0);
	start();
	c = paged_region();
	for (int g = 2; g <= 3; g++) {
		pid = upvm_fork();
		cr_assert_gt(pid, 0);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		    "child status %#x", status);
		test_pattern_fill(c, NPAGES, 0, g);
		cr_assert_eq(test_pattern_bad(c, NPAGES, 0, g), -1);
		/* (the allocator may have reaped it already, as the file
		   grew) */
		cr_assert_geq(upvm_swap_reap(), 0, "upvm_swap_reap failed");
		cr_assert_leq(swap_used_now(), (uint64_t)NPAGES,
		    "fork %d: %llu slots for %zu pages", g,
		    (unsigned long long)swap_used_now(), NPAGES);
	}
	cr_assert_eq(test_pattern_bad(c, NPAGES, 0, 3), -1);
	upvm_fini();
}

/* the kernel keeps VM_DONTCOPY and VM_WIPEONFORK as two bits: a DOFORK
   after a WIPEONFORK leaves the range wiped in the child (upvm thought it
   copied, and the child's faults there were woken forever: a hang the
   chaos model found), KEEPONFORK leaves a DONTFORK range out */
Test(hostmm, fork_advice_bits_as_the_kernel_keeps_them, .timeout = 120)
{
	static const int advice[3][3] = {
		{ MADV_WIPEONFORK, MADV_DOFORK, -1 },		/* wiped */
		{ MADV_WIPEONFORK, MADV_DONTFORK, MADV_DOFORK },/* wiped */
		{ MADV_DONTFORK, MADV_WIPEONFORK, MADV_KEEPONFORK },/* out */
	};
	char *r[3], *c;
	pid_t pid;

	start();
	for (int i = 0; i < 3; i++) {
		r[i] = test_hostmm_anon(LEN / 8, PROT_READ | PROT_WRITE, 0);
		test_pattern_fill(r[i], NPAGES / 8, 0, 10 + (uint64_t)i);
		for (int k = 0; k < 3 && advice[i][k] >= 0; k++)
			cr_assert_eq(hostmm_madvise(r[i], LEN / 8,
			    advice[i][k]), 0);
	}
	c = paged_region();
	if ((pid = fork()) == 0) {
		alarm(60);
		for (int i = 0; i < 2; i++)
			if (test_zero_bad(r[i], NPAGES / 8) != -1)
				_exit(1 + i);
		if (madvise(r[2], PAGE_SIZE, MADV_NORMAL) == 0 ||
		    errno != ENOMEM)
			_exit(3);
		if (test_pattern_bad(c, NPAGES, 0, 1) != -1)
			_exit(4);
		_exit(0);
	}
	child_ok(pid, " (1, 2: a wiped range not zeros; 3: a range left out "
	    "is mapped; 14: SIGALRM, a hang)");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(test_pattern_bad(r[i], NPAGES / 8, 0,
		    10 + (uint64_t)i), -1, "region %d", i);
	cr_assert_eq(test_pattern_bad(c, NPAGES, 0, 1), -1);
	upvm_fini();
}

/* a region moved while the daemon pages its clean pages out: a clean run
   that moved under its write went out, but the daemon had made it an
   implicit resident page (and written to its freed anon): lost data and
   faults woken forever, move protocol (found by the DONTUNMAP test) */
Test(hostmm, mremap_while_clean_pages_page_out, .timeout = 300)
{
	char *p, *q;
	uint64_t gen = 1;

	start();
	p = paged_region();
	for (int round = 0; round < 12; round++) {
		/* pages read back are clean; every other round the region
		   is written again (dirty) and its first half read back
		   (clean): the daemon's batches mix both */
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, gen), -1,
		    "round %d", round);
		if (round % 2 == 1) {
			test_pattern_fill(p, NPAGES, 0, ++gen);
			cr_assert_eq(test_pattern_bad(p, NPAGES / 2, 0, gen),
			    -1);
		}
		q = hostmm_mmap(NULL, LEN, PROT_NONE, MAP_PRIVATE |
		    MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		cr_assert_neq(q, MAP_FAILED);
		q = hostmm_mremap(p, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED,
		    q);
		cr_assert_neq(q, MAP_FAILED, "mremap: %s", strerror(errno));
		p = q;
	}
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, gen), -1);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0, "every slot freed");
	upvm_fini();
}

static int collapse_tried, collapse_done;

/* the move hook: khugepaged's part, now: collapse each 2 MiB block
   that moved (the blocks made are counted) */
static void
collapse_moved(void *addr, size_t len)
{
	collapse_tried++;
	for (size_t off = 0; off + 2 * MIB <= len; off += 2 * MIB)
		if (madvise((char *)addr + off, 2 * MIB, MADV_COLLAPSE) == 0)
			collapse_done++;
}

/*
 * The MADV_HUGEPAGE that keeps a moving range apart from its neighbors
 * woke khugepaged, which could collapse a 2 MiB block of the range while
 * it was unregistered after the move: the block's swapped-out pages came
 * back as zeros (file-wp under ASan, 2 % of runs).  Here the collapse is
 * made to happen in that window every time (MADV_COLLAPSE from the move
 * hook): no huge page may be made, and every page comes back.
 */
Test(hostmm, no_huge_page_collapses_a_range_while_it_moves, .timeout = 120)
{
	char *p, *q;

	start();
	p = paged_region();
	/* a page of each 2 MiB back in: each block partly resident */
	for (size_t pg = 0; pg < NPAGES / 2; pg += 512)
		cr_assert_eq(test_pattern_bad(p + pg * PAGE_SIZE, 1, pg, 1),
		    -1);
	hostmm_inject_move_hook(collapse_moved);
	q = hostmm_mremap(p, LEN / 2, LEN, MREMAP_MAYMOVE, NULL);
	hostmm_inject_move_hook(NULL);
	cr_assert_neq(q, MAP_FAILED, "mremap: %s", strerror(errno));
	cr_assert_neq(q, p, "the range did not move");
	cr_assert_eq(collapse_tried, 1);
	cr_assert_eq(collapse_done, 0, "a huge page was made of the range "
	    "while it moved");
	for (size_t pg = 0; pg < NPAGES / 2; pg++)
		cr_assert_eq(test_pattern_bad(q + pg * PAGE_SIZE, 1, pg, 1),
		    -1, "page %zu came back wrong after mremap", pg);
	cr_assert_eq(hostmm_munmap(q, LEN), 0);
	cr_assert_eq(hostmm_munmap(p + LEN / 2, LEN / 2), 0);
	upvm_fini();
}

/* resident pages of [p, p + n pages), by mincore */
static size_t
resident_pages(char *p, size_t n)
{
	static unsigned char vec[NPAGES];
	size_t in = 0;

	cr_assert_leq(n, NPAGES);
	cr_assert_eq(mincore(p, n * PAGE_SIZE, vec), 0);
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	return in;
}

/*
 * Dirty pages of ranges the program made read-only or PROT_NONE with
 * mprotect page out like the others (UFFDIO_MOVE refuses them: the move
 * protocol copies them out; before, they stayed resident, and once they
 * filled the budget the program hung), read back into the read-only
 * range as it is, and into both once they are writable again.
 */
Test(hostmm, dirty_pages_of_read_only_and_prot_none_ranges_page_out,
    .timeout = 120)
{
	size_t na = 6 * MIB / PAGE_SIZE, half = na / 2;
	char *a, *p;

	start();
	a = test_hostmm_anon(na * PAGE_SIZE, PROT_READ | PROT_WRITE, 0);
	test_pattern_fill(a, na, 0, 1);
	cr_assert_eq(hostmm_mprotect(a, half * PAGE_SIZE, PROT_READ), 0);
	cr_assert_eq(hostmm_mprotect(a + half * PAGE_SIZE, half * PAGE_SIZE,
	    PROT_NONE), 0);
	/* 8x the budget through another region, twice: a is the coldest */
	p = test_hostmm_anon(LEN, PROT_READ | PROT_WRITE, 0);
	test_pattern_fill(p, NPAGES, 0, 2);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 2), -1);
	cr_log_info("resident of a: %zu of %zu read-only, %zu of %zu "
	    "PROT_NONE; %llu copied out", resident_pages(a, half), half,
	    resident_pages(a + half * PAGE_SIZE, half), half,
	    (unsigned long long)test_stats().copied_out);
	cr_assert_lt(resident_pages(a, half), half / 4);
	cr_assert_lt(resident_pages(a + half * PAGE_SIZE, half), half / 4);
	cr_assert_eq(test_pattern_bad(a, half, 0, 1), -1, "read-only");
	cr_assert_eq(hostmm_mprotect(a, na * PAGE_SIZE, PROT_READ |
	    PROT_WRITE), 0);
	cr_assert_eq(test_pattern_bad(a, na, 0, 1), -1, "writable again");
	test_pattern_fill(a, na, 0, 3);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 2), -1);
	cr_assert_eq(test_pattern_bad(a, na, 0, 3), -1);
	upvm_fini();
}

/* the daemon's runs staged (move protocol) in [ro_lo, ro_hi), and in all */
static char *ro_lo, *ro_hi;
static atomic_long ro_staged, all_staged;

static void
ro_stage_hook(void *addr, int npages)
{
	atomic_fetch_add(&all_staged, 1);
	if ((char *)addr >= ro_lo && (char *)addr < ro_hi)
		atomic_fetch_add(&ro_staged, 1);
	(void)npages;
}

struct filler {
	char		*f_p;
	uint64_t	 f_gen;
};

static void *
fill_region(void *arg)
{
	struct filler *f = arg;

	test_pattern_fill(f->f_p, NPAGES, 0, f->f_gen);
	return NULL;
}

/*
 * A read-only range mlock()ed while the daemon pages out its clean pages
 * (move protocol): UFFDIO_MOVE refuses a mapping that cannot be written,
 * so a clean run of one is dropped in place, with no staging copy; the
 * batch's dirty runs are written with no map lock held, and an mlock
 * then wires the range.  The finish kept a run wired meanwhile resident
 * "as a run whose write failed", but that run had left the page tables
 * already: upvm counted the pages resident that the kernel no longer
 * had, and their next access faulted 10 000 times and got SIGBUS
 * (the chaos test, in fork children: mprotect 3 -> 1, then mlock2
 * ONFAULT).  Here the swap writes are held (so a batch that took some
 * of the read-only range's clean pages waits in its write), the range is
 * locked with MLOCK_ONFAULT (nothing faulted in by the kernel), and
 * every page is read.
 */
Test(hostmm, mlock_while_clean_read_only_pages_are_dropped_keeps_the_data,
    .timeout = 300)
{
	size_t na = 4 * MIB / PAGE_SIZE;
	struct filler f;
	int hits = 0, round;
	pthread_t th;
	char *a, *p;

	start();
	a = test_hostmm_anon(na * PAGE_SIZE, PROT_READ | PROT_WRITE, 0);
	test_pattern_fill(a, na, 0, 1);
	p = paged_region();		/* a went out to swap */
	ro_lo = a;
	ro_hi = a + na * PAGE_SIZE;
	/* the wp protocol drops nothing in place (nor stages) */
	if (upvm_inject_stage_hook(ro_stage_hook) != 0) {
		upvm_fini();
		cr_skip_test("the move pageout protocol is not in use");
	}
	for (round = 0; round < 16 && hits < 4; round++) {
		bool locked = false;

		/* read back: clean pages, their swap copies valid */
		cr_assert_eq(test_pattern_bad(a, na, 0, 1), -1, "round %d",
		    round);
		cr_assert_eq(hostmm_mprotect(a, na * PAGE_SIZE, PROT_READ), 0);
		cr_assert_eq(upvm_inject_swap_gate(true, true), 0);
		atomic_store(&ro_staged, 0);
		/* dirty pages elsewhere: batches that mix both, whose
		   writes the gate holds */
		f = (struct filler){ .f_p = p, .f_gen = 2 + (uint64_t)round };
		pthread_create(&th, NULL, fill_region, &f);
		test_wait_inflight(true);
		if (atomic_load(&ro_staged) > 0) {
			cr_assert_eq(hostmm_mlock(a, na * PAGE_SIZE,
			    MLOCK_ONFAULT), 0, "mlock2: %s", strerror(errno));
			locked = true;
			hits++;
		}
		cr_assert_eq(upvm_inject_swap_gate(true, false), 0);
		pthread_join(th, NULL);
		/* before: SIGBUS here, on a page dropped but kept */
		cr_assert_eq(test_pattern_bad(a, na, 0, 1), -1, "round %d, "
		    "%s", round, locked ? "locked" : "not locked");
		if (locked)
			cr_assert_eq(hostmm_munlock(a, na * PAGE_SIZE), 0);
		cr_assert_eq(hostmm_mprotect(a, na * PAGE_SIZE, PROT_READ |
		    PROT_WRITE), 0);
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, f.f_gen), -1);
	}
	cr_assert_eq(upvm_inject_stage_hook(NULL), 0);
	cr_log_info("%d rounds, %d with the range locked while its pages "
	    "were staged; %ld runs staged", round, hits,
	    atomic_load(&all_staged));
	cr_assert_gt(hits, 0, "no round locked the range in time");
	cr_assert_eq(hostmm_munmap(a, na * PAGE_SIZE), 0);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	upvm_fini();
}
