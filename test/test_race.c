/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_race.c: munmap, mremap, MAP_FIXED and MADV_DONTNEED racing pageins
 * and pageout writes that are in flight, with no map lock held across
 * the I/O (fault.c and pdaemon.c, "a word on ...").
 *
 * The swap's reads or writes are held in the kernel by a gate
 * (upvm_inject_swap_gate: each io_uring I/O waits for an eventfd), so
 * that the test knows an I/O is in flight while it unmaps or remaps; a
 * call that returns while the gate still holds the I/O did not wait for
 * it.  Every page is checked afterwards, and the swap slots of pages
 * unmapped in flight are freed (swap_used_pages returns to 0).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "hostmm.h"
#include "upvm.h"
#include "upvm_int.h"
#include "vm.h"

#define MIB		((size_t)1 << 20)
#define BUDGET		(8 * MIB)
#define NPAGES		(64 * MIB / PAGE_SIZE)	/* 8x the budget */
#define LEN		(NPAGES * PAGE_SIZE)

static void
start(void)
{
	test_hostmm_start(BUDGET);
}

static char *
anon(size_t len)
{
	return test_hostmm_anon(len, PROT_READ | PROT_WRITE, 0);
}

static void
still_inflight(bool write, const char *what)
{
	struct upvm_stats st = test_stats();

	cr_assert_gt(write ? st.writes_inflight : st.reads_inflight, 0,
	    "%s waited for the %s held in flight", what,
	    write ? "write" : "read");
}

struct toucher {
	char		*t_page;	/* page to read */
	size_t		 t_index;	/* its pattern index */
	uint64_t	 t_gen;		/* and generation; 0: zeros */
	size_t		 t_willneed;	/* first WILLNEED this many bytes */
	long		 t_bad;
};

static void *
touch_page(void *arg)
{
	struct toucher *t = arg;

	if (t->t_willneed != 0 && hostmm_madvise(t->t_page, t->t_willneed,
	    MADV_WILLNEED) != 0) {
		t->t_bad = -2;
		return NULL;
	}
	t->t_bad = t->t_gen == 0 ? test_zero_bad(t->t_page, 1) :
	    test_pattern_bad(t->t_page, 1, t->t_index, t->t_gen);
	return NULL;
}

/*
 * A thread faults on a swapped-out page whose read the gate holds; an
 * munmap of another region and a DONTNEED of other pages of the same
 * region return while the read is still in flight (before, the fault
 * thread held the map lock across the read, and both waited for it).
 */
Test(race, munmap_does_not_wait_for_a_pagein, .timeout = 120)
{
	struct toucher t = { .t_index = 0, .t_gen = 1 };
	char *p, *q;
	pthread_t th;

	start();
	q = anon(4 * MIB);
	test_pattern_fill(q, 4 * MIB / PAGE_SIZE, 7, 3);
	p = test_paged_region(NPAGES);
	t.t_page = p;
	cr_assert_eq(upvm_inject_swap_gate(false, true), 0);
	pthread_create(&th, NULL, touch_page, &t);
	test_wait_inflight(false);
	cr_assert_eq(hostmm_munmap(q, 4 * MIB), 0);
	still_inflight(false, "munmap");
	cr_assert_eq(hostmm_madvise(p + LEN / 2, 64 * PAGE_SIZE,
	    MADV_DONTNEED), 0);
	still_inflight(false, "madvise(DONTNEED)");
	cr_assert_eq(upvm_inject_swap_gate(false, false), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.t_bad, -1, "the page read in flight");
	cr_assert_eq(test_pattern_bad(p, NPAGES / 2, 0, 1), -1);
	cr_assert_eq(test_zero_bad(p + LEN / 2, 64), -1);
	cr_assert_eq(test_pattern_bad(p + LEN / 2 + 64 * PAGE_SIZE,
	    NPAGES / 2 - 64, NPAGES / 2 + 64, 1), -1);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}

/*
 * DONTNEED of the very page being read: the read completes into nothing
 * (the page left its slot), the faulting thread faults again and reads
 * zeros, as DONTNEED says; the swap slot is freed, not leaked.  munmap
 * of the page being read (from the region's other half) likewise.
 */
Test(race, dontneed_and_munmap_of_pages_being_read, .timeout = 120)
{
	size_t mid = NPAGES / 2;
	struct toucher t = { .t_gen = 0 };
	size_t pg;
	char *p;
	pthread_t th;

	start();
	p = test_paged_region(NPAGES);
	t.t_index = test_swapped_page(p, 0, 8);
	t.t_page = p + t.t_index * PAGE_SIZE;
	cr_assert_eq(upvm_inject_swap_gate(false, true), 0);
	pthread_create(&th, NULL, touch_page, &t);
	test_wait_inflight(false);
	cr_assert_eq(hostmm_madvise(p, 8 * PAGE_SIZE, MADV_DONTNEED), 0);
	still_inflight(false, "madvise(DONTNEED)");
	cr_assert_eq(upvm_inject_swap_gate(false, false), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.t_bad, -1, "DONTNEED'd in flight: zeros");
	cr_assert_eq(test_zero_bad(p, 8), -1);
	cr_assert_eq(test_pattern_bad(p + 8 * PAGE_SIZE, mid - 8, 8, 1), -1);

	/* read the first page of the upper half: unmap the rest of it */
	test_pattern_fill(p, mid, 0, 2);	/* the upper half goes out */
	pg = test_swapped_page(p, mid + 1024, mid + 1088);	/* past read-ahead */
	t = (struct toucher){ .t_page = p + pg * PAGE_SIZE, .t_index = pg,
	    .t_gen = 1 };
	cr_assert_eq(upvm_inject_swap_gate(false, true), 0);
	pthread_create(&th, NULL, touch_page, &t);
	test_wait_inflight(false);
	cr_assert_eq(hostmm_munmap(p + (pg + 1) * PAGE_SIZE, LEN - (pg + 1) *
	    PAGE_SIZE), 0);
	still_inflight(false, "munmap");
	cr_assert_eq(upvm_inject_swap_gate(false, false), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.t_bad, -1);
	cr_assert_eq(test_pattern_bad(p, mid, 0, 2), -1);
	cr_assert_eq(test_pattern_bad(p + mid * PAGE_SIZE, pg - mid, mid, 1),
	    -1);
	cr_assert_eq(hostmm_munmap(p, (pg + 1) * PAGE_SIZE), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}

/*
 * mremap and MAP_FIXED of the pages of a read in flight: a thread asks
 * for pages [64, 192) with WILLNEED (one read of the run of consecutive
 * swap slots); pages of the run move (mremap) or are replaced
 * (MAP_FIXED) while the gate holds the read.  The moved pages read back
 * right at their new address, the replaced ones read zeros.
 */
Test(race, mremap_and_map_fixed_around_a_read_in_flight, .timeout = 120)
{
	struct toucher t = { .t_index = 64, .t_gen = 1,
	    .t_willneed = 128 * PAGE_SIZE };
	size_t half = NPAGES / 2;
	char *p, *m, *f;
	pthread_t th;

	start();
	p = test_paged_region(NPAGES);
	/* the first half back in and out again */
	cr_assert_eq(test_pattern_bad(p, half, 0, 1), -1);
	test_pattern_fill(p + half * PAGE_SIZE, half, half, 1);
	t.t_page = p + 64 * PAGE_SIZE;
	cr_assert_eq(upvm_inject_swap_gate(false, true), 0);
	pthread_create(&th, NULL, touch_page, &t);
	test_wait_inflight(false);
	f = hostmm_mmap(p + 72 * PAGE_SIZE, 8 * PAGE_SIZE, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(f, p + 72 * PAGE_SIZE);
	still_inflight(false, "mmap(MAP_FIXED)");
	/* grown, it cannot stay where it is: it moves */
	m = hostmm_mremap(p + 96 * PAGE_SIZE, 64 * PAGE_SIZE,
	    128 * PAGE_SIZE, MREMAP_MAYMOVE, NULL);
	cr_assert_neq(m, MAP_FAILED, "mremap: %s", strerror(errno));
	cr_assert_neq(m, p + 96 * PAGE_SIZE);
	still_inflight(false, "mremap");
	cr_assert_eq(upvm_inject_swap_gate(false, false), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.t_bad, -1, "the first page asked for");
	cr_assert_eq(test_pattern_bad(p, 72, 0, 1), -1);
	cr_assert_eq(test_zero_bad(f, 8), -1, "replaced in flight");
	cr_assert_eq(test_pattern_bad(p + 80 * PAGE_SIZE, 16, 80, 1), -1);
	cr_assert_eq(test_pattern_bad(m, 64, 96, 1), -1, "moved in flight");
	cr_assert_eq(test_zero_bad(m + 64 * PAGE_SIZE, 64), -1);
	cr_assert_eq(test_pattern_bad(p + 160 * PAGE_SIZE, NPAGES - 160, 160,
	    1), -1);
	upvm_fini();
}

struct filler {
	char		*f_p;
	size_t		 f_first, f_n;
};

static void *
fill_pages(void *arg)
{
	struct filler *f = arg;

	test_pattern_fill(f->f_p + f->f_first * PAGE_SIZE, f->f_n,
	    f->f_first, 2);
	return NULL;
}

/*
 * The daemon's writes held in flight: munmap of part of the region
 * being paged out, and of another region, return at once; after the
 * writes complete, the pages that stayed mapped read back right and the
 * slots written for the unmapped pages are freed.
 */
Test(race, munmap_does_not_wait_for_a_pageout_write, .timeout = 120)
{
	size_t q4 = 256;	/* written before the writes were held */
	struct filler f = { .f_first = q4, .f_n = NPAGES - q4 };
	char *p, *q;
	pthread_t th;

	start();
	q = anon(4 * MIB);
	test_pattern_fill(q, 4 * MIB / PAGE_SIZE, 5, 3);
	p = f.f_p = anon(LEN);
	/* here, not by the filler: the filler could still be writing them
	   when the first write is held (a stream's windows run ahead of it,
	   and count against the budget), and their munmap would kill it */
	test_pattern_fill(p, q4, 0, 2);
	cr_assert_eq(upvm_inject_swap_gate(true, true), 0);
	pthread_create(&th, NULL, fill_pages, &f);
	test_wait_inflight(true);
	cr_assert_eq(hostmm_munmap(q, 4 * MIB), 0);
	still_inflight(true, "munmap of another region");
	cr_assert_eq(hostmm_munmap(p, q4 * PAGE_SIZE), 0);
	still_inflight(true, "munmap of pages being written");
	cr_assert_eq(upvm_inject_swap_gate(true, false), 0);
	pthread_join(th, NULL);
	cr_assert_eq(test_pattern_bad(p + q4 * PAGE_SIZE, NPAGES - q4, q4,
	    2), -1);
	cr_assert_eq(hostmm_munmap(p + q4 * PAGE_SIZE, LEN - q4 * PAGE_SIZE),
	    0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}

/*
 * A disk that takes the daemon's writes and never answers: the daemon
 * waits for them and frees nothing, so faults past the budget would wait
 * for it for good (the 6.1 guest's chaos hang, where the write's io-wq
 * worker itself faulted on the page it wrote).  They go on after a
 * second instead, past the budget, counted in stalls; once the writes
 * land, every page reads back right.
 */
Test(race, faults_go_on_when_the_pageout_writes_never_complete,
    .timeout = 120)
{
	struct upvm_stats st;
	char *p;

	start();
	p = anon(LEN);
	test_pattern_fill(p, 256, 0, 4);
	cr_assert_eq(upvm_inject_swap_gate(true, true), 0);
	test_pattern_fill(p + 256 * PAGE_SIZE, NPAGES - 256, 256, 4);
	st = test_stats();
	cr_assert_gt(st.writes_inflight, 0, "the writes are still held");
	cr_assert_gt(st.stalls, 0);
	cr_assert_gt(st.resident_pages, st.budget_pages,
	    "past the budget while the daemon waits");
	cr_assert_eq(upvm_inject_swap_gate(true, false), 0);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 4), -1);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}
