/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pmap.c: the userfaultfd wrappers on a real userfaultfd.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "pmap.h"

#define NPAGES	64

static struct pmap pm;
static char *region;
static char *src;

static void
setup_region(uint64_t features, int modes)
{
	cr_assert_eq(pmap_init(&pm, features), 0);
	region = mmap(NULL, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = mmap(NULL, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(region != MAP_FAILED && src != MAP_FAILED);
	cr_assert_eq(pmap_register(&pm, (vaddr_t)region, NPAGES * PAGE_SIZE,
	    modes), 0);
	test_pattern_fill(src, NPAGES, 0, 1);
}

Test(pmap, probe_reports_missing_support, .timeout = 10)
{
	uint64_t f = 0;

	cr_assert_eq(pmap_probe(&f), 0);
	/* every kernel with UFFDIO_API reports features; THREAD_ID is 4.14 */
	cr_assert(f & UFFD_FEATURE_THREAD_ID);
}

Test(pmap, features_enabled_are_a_subset_of_supported, .timeout = 10)
{
	cr_assert_eq(pmap_init(&pm, ~(uint64_t)0 &
	    ~(uint64_t)(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
	    UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)), 0);
	cr_assert_eq(pm.pm_features & ~pm.pm_supported, 0);
	cr_assert(pmap_has(&pm, UFFD_FEATURE_THREAD_ID));
	pmap_fini(&pm);
}

Test(pmap, copy_maps_every_page_then_eexist, .timeout = 10)
{
	vsize_t done;

	setup_region(0, PMAP_REG_MISSING);
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region, src, NPAGES * PAGE_SIZE,
	    0, &done), 0);
	cr_assert_eq(done, NPAGES * PAGE_SIZE);
	cr_assert_eq(test_pattern_bad(region, NPAGES, 0, 1), -1);
	/* a second copy over a mapped page stops there */
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region + PAGE_SIZE, src,
	    PAGE_SIZE, 0, &done), -EEXIST);
	cr_assert_eq(done, 0);
}

Test(pmap, partial_copy_reports_bytes_done, .timeout = 10)
{
	vsize_t done;

	setup_region(0, PMAP_REG_MISSING);
	/* page 5 exists: a copy of 0..9 maps 0..4 and stops at 5 */
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region + 5 * PAGE_SIZE,
	    src + 5 * PAGE_SIZE, PAGE_SIZE, 0, &done), 0);
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region, src, 10 * PAGE_SIZE, 0,
	    &done), -EEXIST);
	cr_assert_eq(done, 5 * PAGE_SIZE);
	cr_assert_eq(test_pattern_bad(region, 6, 0, 1), -1);
}

Test(pmap, dontneed_makes_pages_missing_again, .timeout = 10)
{
	vsize_t done;

	setup_region(0, PMAP_REG_MISSING);
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region, src, NPAGES * PAGE_SIZE,
	    0, &done), 0);
	cr_assert_eq(pmap_dontneed(&pm, (vaddr_t)region, 8 * PAGE_SIZE), 0);
	/* missing again: a copy of generation 2 succeeds where 1 was */
	test_pattern_fill(src, 8, 0, 2);
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region, src, 8 * PAGE_SIZE, 0,
	    &done), 0);
	cr_assert_eq(test_pattern_bad(region, 8, 0, 2), -1);
	test_pattern_fill(src, NPAGES, 0, 1);
	cr_assert_eq(test_pattern_bad(region + 8 * PAGE_SIZE, NPAGES - 8, 8,
	    1), -1);
}

Test(pmap, zeropage_maps_zeros, .timeout = 10)
{
	vsize_t done;

	setup_region(0, PMAP_REG_MISSING);
	cr_assert_eq(pmap_zeropage(&pm, (vaddr_t)region, NPAGES * PAGE_SIZE,
	    0, &done), 0);
	cr_assert_eq(test_zero_bad(region, NPAGES), -1);
	/* written after: the kernel gives a private page */
	memset(region, 0x5a, PAGE_SIZE);
	cr_assert_eq(region[PAGE_SIZE - 1], 0x5a);
}

struct toucher {
	char	*addr;
	uint64_t got;
};

static void *
touch_page(void *arg)
{
	struct toucher *t = arg;

	t->got = *(volatile uint64_t *)t->addr;
	return NULL;
}

Test(pmap, read_events_reports_a_fault_and_copy_wakes_it, .timeout = 10)
{
	struct uffd_msg msg[4];
	struct toucher t;
	pthread_t th;
	vsize_t done;
	int n;

	setup_region(UFFD_FEATURE_THREAD_ID, PMAP_REG_MISSING);
	t.addr = region + 3 * PAGE_SIZE + 8;
	cr_assert_eq(pthread_create(&th, NULL, touch_page, &t), 0);
	while ((n = pmap_read_events(&pm, msg, 4)) == 0)
		usleep(100);
	cr_assert_eq(n, 1);
	cr_assert_eq(msg[0].event, UFFD_EVENT_PAGEFAULT);
	cr_assert_eq(trunc_page(msg[0].arg.pagefault.address),
	    (vaddr_t)region + 3 * PAGE_SIZE);
	cr_assert_neq(msg[0].arg.pagefault.feat.ptid, 0);
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region + 3 * PAGE_SIZE,
	    src + 3 * PAGE_SIZE, PAGE_SIZE, 0, &done), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.got, test_word(3, 1, 1));
	cr_assert_eq(pmap_read_events(&pm, msg, 4), 0);
}

Test(pmap, wake_after_eexist_releases_the_thread, .timeout = 10)
{
	struct uffd_msg msg;
	struct toucher t;
	pthread_t th;
	vsize_t done;

	setup_region(0, PMAP_REG_MISSING);
	t.addr = region;
	cr_assert_eq(pthread_create(&th, NULL, touch_page, &t), 0);
	while (pmap_read_events(&pm, &msg, 1) == 0)
		usleep(100);
	/* resolved without waking, as a racing handler would */
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region, src, PAGE_SIZE,
	    PMAP_DONTWAKE, &done), 0);
	cr_assert_eq(pmap_wake(&pm, (vaddr_t)region, PAGE_SIZE), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.got, test_word(0, 1, 0));
}

/* setup_move: the region, and a stage of NPAGES pattern pages (gen) to
   move in from */
static char *
setup_move(uint64_t gen)
{
	char *stage;

	setup_region(UFFD_FEATURE_MOVE, PMAP_REG_MISSING);
	stage = mmap(NULL, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(stage != MAP_FAILED);
	test_pattern_fill(stage, NPAGES, 0, gen);
	return stage;
}

Test(pmap, move_moves_pages_without_copying, .timeout = 10)
{
	vsize_t done;
	char *stage;

	NEED_UFFD_FEATURE(UFFD_FEATURE_MOVE);
	stage = setup_move(7);
	cr_assert_eq(pmap_move(&pm, (vaddr_t)region, (vaddr_t)stage,
	    NPAGES * PAGE_SIZE, 0, &done), 0);
	cr_assert_eq(done, NPAGES * PAGE_SIZE);
	cr_assert_eq(test_pattern_bad(region, NPAGES, 0, 7), -1);
	/* the source is empty now: it reads as zeros */
	cr_assert_eq(test_zero_bad(stage, NPAGES), -1);
}

/* a page already at the destination stops the move there, counted
   exactly: the pages before it moved, it and the rest did not */
Test(pmap, move_stops_at_a_page_already_there, .timeout = 10)
{
	vsize_t done;
	char *stage;

	NEED_UFFD_FEATURE(UFFD_FEATURE_MOVE);
	stage = setup_move(7);
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region + 5 * PAGE_SIZE, src +
	    5 * PAGE_SIZE, PAGE_SIZE, 0, &done), 0);
	cr_assert_eq(pmap_move(&pm, (vaddr_t)region, (vaddr_t)stage,
	    NPAGES * PAGE_SIZE, 0, &done), -EEXIST);
	cr_assert_eq(done, 5 * PAGE_SIZE);
	cr_assert_eq(test_pattern_bad(region, 5, 0, 7), -1);
	cr_assert_eq(test_pattern_bad(region + 5 * PAGE_SIZE, 1, 5, 1), -1);
	cr_assert_eq(test_pattern_bad(stage + 5 * PAGE_SIZE, NPAGES - 5, 5,
	    7), -1);
	cr_assert_eq(atomic_load(&pm.pm_move_recounts), 0);
}

static atomic_bool cold_stop;

/* cold_loop: MADV_COLD over both areas, again and again: it clears the
   ptes' accessed bits, which a move in progress sees as a changed pte */
static void *
cold_loop(void *arg)
{
	char **areas = arg;

	while (!atomic_load(&cold_stop))
		for (int i = 0; i < 2; i++)
			(void)madvise(areas[i], NPAGES * PAGE_SIZE, MADV_COLD);
	return NULL;
}

/*
 * Linux 6.18's batched UFFDIO_MOVE can move a batch and fail with -EEXIST
 * without counting it (an -EAGAIN inside its loop is never cleared, and
 * the retry finds its own page at the destination).  pmap_move counts
 * the pages that left: every move of the whole area reports all of it,
 * beside a thread changing the ptes under the moves, and every page keeps
 * its data.
 */
Test(pmap, move_counts_every_page_it_moved, .timeout = 60)
{
	char *stage, *areas[2];
	vsize_t done;
	pthread_t th;
	int r;

	NEED_UFFD_FEATURE(UFFD_FEATURE_MOVE);
	stage = setup_move(1);
	cr_assert_eq(pmap_register(&pm, (vaddr_t)stage, NPAGES * PAGE_SIZE,
	    PMAP_REG_MISSING), 0);
	areas[0] = region;
	areas[1] = stage;
	atomic_store(&cold_stop, false);
	cr_assert_eq(pthread_create(&th, NULL, cold_loop, areas), 0);
	for (int i = 0; i < 2000; i++) {
		char *from = areas[(i + 1) % 2], *to = areas[i % 2];

		r = pmap_move(&pm, (vaddr_t)to, (vaddr_t)from,
		    NPAGES * PAGE_SIZE, PMAP_DONTWAKE, &done);
		if (r != 0 || done != NPAGES * PAGE_SIZE)
			break;
	}
	atomic_store(&cold_stop, true);
	pthread_join(th, NULL);
	cr_log_info("%llu moves counted from the page tables",
	    (unsigned long long)atomic_load(&pm.pm_move_recounts));
	cr_assert_eq(r, 0, "move %d: %s", r, strerror(-r));
	cr_assert_eq(done, NPAGES * PAGE_SIZE, "%lu bytes of %u counted",
	    (unsigned long)done, NPAGES * PAGE_SIZE);
	/* an even number of moves: the pages are back in stage */
	cr_assert_eq(test_pattern_bad(stage, NPAGES, 0, 1), -1);
}

Test(pmap, move_without_feature_is_eopnotsupp, .timeout = 10)
{
	vsize_t done;

	setup_region(0, PMAP_REG_MISSING);
	cr_assert_eq(pmap_move(&pm, (vaddr_t)region, (vaddr_t)src, PAGE_SIZE,
	    0, &done), -EOPNOTSUPP);
	cr_assert_eq(pmap_poison(&pm, (vaddr_t)region, PAGE_SIZE, 0, &done),
	    -EOPNOTSUPP);
}

static sigjmp_buf bus_jmp;

static void
on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

Test(pmap, poisoned_page_raises_sigbus, .timeout = 10)
{
	volatile int got_bus = 0;
	vsize_t done;

	NEED_UFFD_FEATURE(UFFD_FEATURE_POISON);
	setup_region(UFFD_FEATURE_POISON, PMAP_REG_MISSING);
	cr_assert_eq(pmap_poison(&pm, (vaddr_t)region, PAGE_SIZE, 0, &done),
	    0);
	signal(SIGBUS, on_sigbus);
	if (sigsetjmp(bus_jmp, 1) == 0)
		(void)*(volatile char *)region;
	else
		got_bus = 1;
	cr_assert_eq(got_bus, 1);
}

Test(pmap, writeprotect_then_scan_finds_written_pages, .timeout = 10)
{
	struct page_region regs[8];
	vaddr_t walk_end;
	vsize_t done;
	int n;

	NEED_UFFD_FEATURE(UFFD_FEATURE_WP_ASYNC);
	setup_region(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	    PMAP_REG_MISSING | PMAP_REG_WP);
	if (!pm.pm_pagemap_scan)
		cr_skip_test("kernel lacks PAGEMAP_SCAN");
	cr_assert_eq(pmap_copy(&pm, (vaddr_t)region, src, NPAGES * PAGE_SIZE,
	    PMAP_WP, &done), 0);
	/* mapped write-protected: nothing written yet */
	n = pmap_scan_written(&pm, (vaddr_t)region, NPAGES * PAGE_SIZE, regs,
	    8, true, &walk_end);
	cr_assert_eq(n, 0);
	region[10 * PAGE_SIZE] = 1;	/* WP_ASYNC: the kernel lets it */
	region[11 * PAGE_SIZE] = 1;
	region[40 * PAGE_SIZE] = 1;
	n = pmap_scan_written(&pm, (vaddr_t)region, NPAGES * PAGE_SIZE, regs,
	    8, true, &walk_end);
	cr_assert_eq(n, 2);
	cr_assert_eq(regs[0].start, (vaddr_t)region + 10 * PAGE_SIZE);
	cr_assert_eq(regs[0].end, (vaddr_t)region + 12 * PAGE_SIZE);
	cr_assert_eq(regs[1].start, (vaddr_t)region + 40 * PAGE_SIZE);
	cr_assert_eq(walk_end, (vaddr_t)region + NPAGES * PAGE_SIZE);
	/* re-protected by the scan: clean again */
	n = pmap_scan_written(&pm, (vaddr_t)region, NPAGES * PAGE_SIZE, regs,
	    8, true, &walk_end);
	cr_assert_eq(n, 0);
}

Test(pmap, unregister_wakes_and_stops_events, .timeout = 10)
{
	struct toucher t;
	struct uffd_msg msg;
	pthread_t th;

	setup_region(0, PMAP_REG_MISSING);
	t.addr = region + PAGE_SIZE;
	cr_assert_eq(pthread_create(&th, NULL, touch_page, &t), 0);
	while (pmap_read_events(&pm, &msg, 1) == 0)
		usleep(100);
	/* unregistered: the thread refaults as ordinary memory (zeros) */
	cr_assert_eq(pmap_unregister(&pm, (vaddr_t)region, NPAGES *
	    PAGE_SIZE), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.got, 0);
}
