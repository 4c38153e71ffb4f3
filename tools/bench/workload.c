/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * workload.c: the workloads of upvm-bench and the runner that times them.
 *
 * A workload is a per-thread function over a region: thread tid of T
 * touches its share of the pages, and that is all it knows.  Anything a
 * workload needs beyond the region (a page order) it builds in wl_prepare,
 * before any run and outside the timing, in plain mmap memory: a region
 * under test must never hold the benchmark's own bookkeeping, or its faults
 * would be counted and timed as the workload's.
 *
 * Writing a page stores every 64-bit word of it with wl_pattern(page,
 * generation, word), so that a page written to the wrong place, a page left
 * zero, a stale page of an earlier run (each run has its own generation) or
 * a torn page all show up when the region is read back.
 *
 * A word on timing.  wl_run() starts the workers, waits until all of them
 * are parked, samples the mode's counters, and releases them at once.  The
 * touch phase runs from the first worker's start after the release to the
 * last worker's finish, on CLOCK_MONOTONIC: thread creation, the counter
 * samples and the verification all fall outside it.  Workers park again
 * when done, so the closing sample counts no fault of the verification.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench.h"

#define PATTERN_MUL	0x9e3779b97f4a7c15ULL

/*
 * wl_pattern: word w of page idx in generation gen.  Odd, so never zero;
 * the multiply spreads the page, generation and word over all 64 bits.
 */
uint64_t
wl_pattern(size_t idx, uint64_t gen, size_t w)
{
	return (((uint64_t)idx << 20 ^ gen << 52 ^ (uint64_t)(w + 1)) *
	    PATTERN_MUL) | 1;
}

/* page_write: store the pattern of page idx over the whole page. */
static inline void
page_write(const struct wl_ctx *c, size_t idx)
{
	uint64_t *p = (uint64_t *)(void *)(c->wc_base + idx * c->wc_pagesize);
	uint64_t base = (uint64_t)idx << 20 ^ c->wc_gen << 52;
	size_t w, nw = c->wc_pagesize / sizeof(uint64_t);

	for (w = 0; w < nw; w++)
		p[w] = ((base ^ (uint64_t)(w + 1)) * PATTERN_MUL) | 1;
}

/* page_check: the first bad word of page idx, or SIZE_MAX if it is good. */
static size_t
page_check(const struct wl_ctx *c, size_t idx)
{
	const uint64_t *p;
	size_t w, nw = c->wc_pagesize / sizeof(uint64_t);

	p = (const uint64_t *)(const void *)(c->wc_base + idx * c->wc_pagesize);
	for (w = 0; w < nw; w++)
		if (p[w] != wl_pattern(idx, c->wc_gen, w))
			return w;
	return SIZE_MAX;
}

/* slice: the share [*lo, *hi) of thread tid, in page or order indices. */
static void
slice(const struct wl_ctx *c, unsigned tid, size_t *lo, size_t *hi)
{
	*lo = c->wc_npages * tid / c->wc_nthreads;
	*hi = c->wc_npages * (tid + 1) / c->wc_nthreads;
}

/* seq_write: first-touch write of my contiguous 1/T, ascending. */
static void
seq_write(const struct wl_ctx *c, unsigned tid)
{
	size_t i, lo, hi;

	slice(c, tid, &lo, &hi);
	for (i = lo; i < hi; i++)
		page_write(c, i);
}

/* order_write: first-touch write of my contiguous 1/T of wc_order. */
static void
order_write(const struct wl_ctx *c, unsigned tid)
{
	size_t i, lo, hi;

	slice(c, tid, &lo, &hi);
	for (i = lo; i < hi; i++)
		page_write(c, (size_t)c->wc_order[i]);
}

/* splitmix64: the next number of a seeded stream (Vigna). */
static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * prepare_permutation: wc_order = a random permutation of every page index,
 * Fisher-Yates from seed, in plain mmap memory.
 * => -ENOMEM if the order cannot be mapped.
 */
static int
prepare_permutation(struct wl_ctx *c, uint64_t seed)
{
	uint64_t *order, state = seed, t;
	size_t i, j, len;

	len = c->wc_npages * sizeof(*order);
	order = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (order == MAP_FAILED)
		return -errno;
	for (i = 0; i < c->wc_npages; i++)
		order[i] = i;
	for (i = c->wc_npages; i > 1; i--) {
		/* the modulo bias is below 2^-32 for any region upvm maps */
		j = (size_t)(splitmix64(&state) % i);
		t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	c->wc_order = order;
	c->wc_order_len = len;
	return 0;
}

const struct workload workloads[] = {
	{
		.wl_name = "seq-write",
		.wl_desc = "first-touch write, each thread its own 1/T, "
		    "ascending",
		.wl_touch = seq_write,
	},
	{
		.wl_name = "rand-write",
		.wl_desc = "first-touch write in a seeded random page "
		    "order, 1/T each",
		.wl_prepare = prepare_permutation,
		.wl_touch = order_write,
	},
};
const size_t nworkloads = sizeof(workloads) / sizeof(workloads[0]);

/* wl_lookup: the workload called name, or NULL. */
const struct workload *
wl_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < nworkloads; i++)
		if (strcmp(workloads[i].wl_name, name) == 0)
			return &workloads[i];
	return NULL;
}

/*
 * wl_prepare: build what wl needs besides the region (wc_npages set).
 * => -ENOMEM if it cannot; wl_release() undoes it.
 */
int
wl_prepare(const struct workload *wl, struct wl_ctx *c, uint64_t seed)
{
	c->wc_order = NULL;
	c->wc_order_len = 0;
	if (wl->wl_prepare == NULL)
		return 0;
	return wl->wl_prepare(c, seed);
}

/* wl_release: free what wl_prepare() built. */
void
wl_release(struct wl_ctx *c)
{
	if (c->wc_order != NULL)
		munmap(c->wc_order, c->wc_order_len);
	c->wc_order = NULL;
	c->wc_order_len = 0;
}

/*
 * The runner.  Workers park on ru_work until the phase leaves PH_PARK, and
 * again after touching; the main thread waits on ru_main for them to
 * arrive.
 *
 * Locks protecting struct members:
 *	I  set before the workers start	  l  ru_lock
 *	w  the worker's own until it is joined
 */
enum { PH_PARK, PH_GO, PH_VERIFY, PH_EXIT };

struct runner {
	pthread_mutex_t		 ru_lock;
	pthread_cond_t		 ru_work;	/* the phase changed */
	pthread_cond_t		 ru_main;	/* a worker arrived */
	int			 ru_phase;	/* [l] PH_* */
	unsigned		 ru_ready;	/* [l] parked to start */
	unsigned		 ru_done;	/* [l] workers done touching */
	const struct workload	*ru_wl;		/* [I] */
	const struct wl_ctx	*ru_ctx;	/* [I] */
};

struct worker {
	struct runner	*wk_ru;		/* [I] */
	unsigned	 wk_tid;	/* [I] */
	pthread_t	 wk_thread;	/* [I] */
	struct timespec	 wk_start;	/* [w] touch phase began */
	struct timespec	 wk_end;	/* [w] and ended */
	size_t		 wk_bad_page;	/* [w] first bad page, or SIZE_MAX */
	size_t		 wk_bad_word;	/* [w] */
};

/* park: count myself in *count and wait for the phase to leave from. */
static int
park(struct runner *ru, unsigned *count, int from)
{
	int phase;

	pthread_mutex_lock(&ru->ru_lock);
	(*count)++;
	pthread_cond_signal(&ru->ru_main);
	while (ru->ru_phase == from)
		pthread_cond_wait(&ru->ru_work, &ru->ru_lock);
	phase = ru->ru_phase;
	pthread_mutex_unlock(&ru->ru_lock);
	return phase;
}

/* verify_slice: check my contiguous 1/T of the pages, in page order. */
static void
verify_slice(struct worker *wk)
{
	const struct wl_ctx *c = wk->wk_ru->ru_ctx;
	size_t i, lo, hi, w;

	slice(c, wk->wk_tid, &lo, &hi);
	for (i = lo; i < hi; i++) {
		if ((w = page_check(c, i)) != SIZE_MAX) {
			wk->wk_bad_page = i;
			wk->wk_bad_word = w;
			return;
		}
	}
}

static void *
worker_main(void *arg)
{
	struct worker *wk = arg;
	struct runner *ru = wk->wk_ru;

	if (park(ru, &ru->ru_ready, PH_PARK) != PH_GO)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &wk->wk_start);
	ru->ru_wl->wl_touch(ru->ru_ctx, wk->wk_tid);
	clock_gettime(CLOCK_MONOTONIC, &wk->wk_end);
	if (park(ru, &ru->ru_done, PH_GO) == PH_VERIFY)
		verify_slice(wk);
	return NULL;
}

/* set_phase: move the workers on to phase. */
static void
set_phase(struct runner *ru, int phase)
{
	pthread_mutex_lock(&ru->ru_lock);
	ru->ru_phase = phase;
	pthread_cond_broadcast(&ru->ru_work);
	pthread_mutex_unlock(&ru->ru_lock);
}

/* wait_count: wait until n workers have counted themselves in *count. */
static void
wait_count(struct runner *ru, const unsigned *count, unsigned n)
{
	pthread_mutex_lock(&ru->ru_lock);
	while (*count < n)
		pthread_cond_wait(&ru->ru_main, &ru->ru_lock);
	pthread_mutex_unlock(&ru->ru_lock);
}

static double
ts_sec(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}

/* collect: the touch time and the first bad page over all workers. */
static void
collect(const struct wl_ctx *c, const struct worker *wks, unsigned n,
    struct wl_result *res)
{
	double start = 0, end = 0;
	unsigned i;

	res->wr_bad_page = SIZE_MAX;
	for (i = 0; i < n; i++) {
		if (i == 0 || ts_sec(&wks[i].wk_start) < start)
			start = ts_sec(&wks[i].wk_start);
		if (i == 0 || ts_sec(&wks[i].wk_end) > end)
			end = ts_sec(&wks[i].wk_end);
		if (wks[i].wk_bad_page < res->wr_bad_page) {
			res->wr_bad_page = wks[i].wk_bad_page;
			res->wr_bad_word = wks[i].wk_bad_word;
		}
	}
	res->wr_seconds = end - start;
	if (res->wr_bad_page != SIZE_MAX) {
		res->wr_expected = wl_pattern(res->wr_bad_page, c->wc_gen,
		    res->wr_bad_word);
		res->wr_got = ((const uint64_t *)(const void *)(c->wc_base +
		    res->wr_bad_page * c->wc_pagesize))[res->wr_bad_word];
	}
}

/*
 * wl_run: one timed run of wl over the region of c, with c->wc_nthreads
 * workers; sample() is called just before the release and just after the
 * last worker finishes.  With verify, the workers then read every page
 * back, untimed.
 * => returns 0 with *res filled (wr_bad_page SIZE_MAX if every page was
 *    good, or not verified); -ENOMEM/-EAGAIN if the workers could not be
 *    created, or sample()'s error: then res is not filled.
 */
int
wl_run(const struct workload *wl, const struct wl_ctx *c,
    int (*sample)(struct sample *), struct sample *before,
    struct sample *after, bool verify, struct wl_result *res)
{
	struct runner ru = {
		.ru_lock = PTHREAD_MUTEX_INITIALIZER,
		.ru_work = PTHREAD_COND_INITIALIZER,
		.ru_main = PTHREAD_COND_INITIALIZER,
		.ru_phase = PH_PARK,
		.ru_wl = wl,
		.ru_ctx = c,
	};
	struct worker *wks;
	unsigned i, n = 0;
	int error;

	if ((wks = calloc(c->wc_nthreads, sizeof(*wks))) == NULL)
		return -ENOMEM;
	for (n = 0; n < c->wc_nthreads; n++) {
		wks[n].wk_ru = &ru;
		wks[n].wk_tid = n;
		wks[n].wk_bad_page = SIZE_MAX;
		error = pthread_create(&wks[n].wk_thread, NULL, worker_main,
		    &wks[n]);
		if (error != 0) {
			error = -error;
			goto out;
		}
	}
	wait_count(&ru, &ru.ru_ready, n);
	if ((error = sample(before)) != 0)
		goto out;
	set_phase(&ru, PH_GO);
	wait_count(&ru, &ru.ru_done, n);
	error = sample(after);
	set_phase(&ru, error == 0 && verify ? PH_VERIFY : PH_EXIT);
out:
	if (error != 0)
		set_phase(&ru, PH_EXIT);
	for (i = 0; i < n; i++)
		pthread_join(wks[i].wk_thread, NULL);
	if (error == 0)
		collect(c, wks, n, res);
	free(wks);
	return error;
}
