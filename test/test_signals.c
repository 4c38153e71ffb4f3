/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_signals.c: signals and thread death while a fault is being
 * served.  A thread that waits in a userfaultfd fault sleeps
 * interruptibly: a signal runs its handler (the fault is retried when the
 * handler returns), and a cancellation ends the thread with its fault
 * still open.  The swap's reads are held by a gate (upvm_inject_swap_gate)
 * so that the fault is known to be waiting; every page is checked after,
 * and upvm goes on serving faults.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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
#define HPAGES		64			/* the handler's region */

static char *
anon(size_t len)
{
	return test_hostmm_anon(len, PROT_READ | PROT_WRITE, 0);
}

struct reader {
	char		*r_page;
	size_t		 r_index;
	bool		 r_async;	/* asynchronous cancellation */
	atomic_bool	 r_started;
	long		 r_bad;
};

static void *
read_page(void *arg)
{
	struct reader *r = arg;

	if (r->r_async)
		(void)pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	atomic_store(&r->r_started, true);
	r->r_bad = test_pattern_bad(r->r_page, 1, r->r_index, 1);
	return NULL;
}

/* the handler's work: fresh pages written and read back, no disk */
static char *h_region;
static atomic_int h_runs;
static atomic_long h_bad = -1;

static void
on_usr1(int sig)
{
	int run = atomic_load(&h_runs);
	long bad;

	(void)sig;
	if (run < HPAGES) {
		test_pattern_fill(h_region + (size_t)run * PAGE_SIZE, 1,
		    (size_t)run, 5);
		if ((bad = test_pattern_bad(h_region, (size_t)run + 1, 0, 5)) !=
		    -1)
			atomic_store(&h_bad, bad);
	}
	atomic_fetch_add(&h_runs, 1);
}

/*
 * A thread waits in a fault whose read is held; its signal handler runs
 * meanwhile, several times, and writes and reads managed memory of its
 * own (zero-fill faults, served while the first fault is still open).
 * When the read completes, the thread reads its page right.
 */
Test(signals, handler_touches_managed_memory_while_its_thread_waits,
    .timeout = 120)
{
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	struct reader r = { .r_index = 0 };
	pthread_t th;
	char *p;

	test_hostmm_start(BUDGET);
	h_region = anon(HPAGES * PAGE_SIZE);
	p = test_paged_region(NPAGES);
	r.r_index = test_swapped_page(p, 0, 256);
	r.r_page = p + r.r_index * PAGE_SIZE;
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	cr_assert_eq(upvm_inject_swap_gate(false, true), 0);
	pthread_create(&th, NULL, read_page, &r);
	test_wait_inflight(false);
	for (int k = 1; k <= 8; k++) {
		cr_assert_eq(pthread_kill(th, SIGUSR1), 0);
		for (int i = 0; i < 10000 && atomic_load(&h_runs) < k; i++)
			usleep(1000);
		cr_assert_eq(atomic_load(&h_runs), k, "signal %d was not "
		    "handled while the fault waited", k);
	}
	cr_assert_eq(atomic_load(&h_bad), -1, "the handler read page %ld "
	    "wrong", atomic_load(&h_bad));
	cr_assert_gt(test_stats().reads_inflight, 0, "the read was held "
	    "throughout");
	cr_assert_eq(upvm_inject_swap_gate(false, false), 0);
	pthread_join(th, NULL);
	cr_assert_eq(r.r_bad, -1, "the page read while signals came");
	cr_assert_eq(test_pattern_bad(h_region, 8, 0, 5), -1);
	cr_assert_eq(test_zero_bad(h_region + 8 * PAGE_SIZE, HPAGES - 8), -1);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 1), -1);
	cr_assert_eq(sigaction(SIGUSR1, &old, NULL), 0);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}

static void
on_usr2_exit(int sig)
{
	(void)sig;
	pthread_exit((void *)2);
}

/*
 * A thread cancelled (asynchronously) while it waits in a fault whose
 * read is held, and another that leaves through pthread_exit() from its
 * signal handler in the same state: the reads complete into no waiter,
 * the pages are right for whoever reads them next, nothing leaks, and
 * faults go on being served.
 */
Test(signals, threads_that_die_with_a_fault_open, .timeout = 120)
{
	struct sigaction sa = { .sa_handler = on_usr2_exit }, old;
	struct reader r[2] = { { .r_async = true }, { .r_async = false } };
	pthread_t th;
	void *ret;
	char *p;

	test_hostmm_start(BUDGET);
	p = test_paged_region(NPAGES);
	cr_assert_eq(sigaction(SIGUSR2, &sa, &old), 0);
	for (int k = 0; k < 2; k++) {
		/* the upper half: past the read-ahead that the check of the
		   lower half ran into it */
		size_t from = k == 0 ? 0 : NPAGES / 2 + 1024;

		r[k].r_index = test_swapped_page(p, from, from + 256);
		r[k].r_page = p + r[k].r_index * PAGE_SIZE;
		cr_assert_eq(upvm_inject_swap_gate(false, true), 0);
		pthread_create(&th, NULL, read_page, &r[k]);
		test_wait_inflight(false);
		cr_assert(atomic_load(&r[k].r_started));
		if (k == 0)
			cr_assert_eq(pthread_cancel(th), 0);
		else
			cr_assert_eq(pthread_kill(th, SIGUSR2), 0);
		cr_assert_eq(pthread_join(th, &ret), 0);
		cr_assert_eq(ret, k == 0 ? PTHREAD_CANCELED : (void *)2,
		    "the thread ended with its fault open");
		cr_assert_gt(test_stats().reads_inflight, 0);
		cr_assert_eq(upvm_inject_swap_gate(false, false), 0);
		cr_assert_eq(test_pattern_bad(p + (size_t)k * LEN / 2,
		    NPAGES / 2, (size_t)k * NPAGES / 2, 1), -1,
		    "after thread %d died", k);
	}
	cr_assert_eq(sigaction(SIGUSR2, &old, NULL), 0);
	test_pattern_fill(p, NPAGES, 0, 2);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 2), -1);
	cr_assert_eq(hostmm_munmap(p, LEN), 0);
	cr_assert_eq(test_stats_gone().swap_used_pages, 0);
	upvm_fini();
}
