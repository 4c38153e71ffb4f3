/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * runner.c: one run of a workload by T threads, its phases and its timing.
 *
 * A word on timing.  wl_run() starts the workers and waits until all of
 * them are parked.  A workload with WL_POPULATE then has them write the
 * region once, untimed, and park again.  It samples the mode's counters and
 * releases them at once.  The touch phase runs from the first worker's
 * start after the release to the last worker's finish, on CLOCK_MONOTONIC:
 * thread creation, populating, the counter samples and the verification
 * all fall outside it.  Workers park again when done, so the closing sample
 * counts no fault of the verification.
 *
 * While the workers run, the main thread wakes every 100 ms to call the
 * caller's tick (progress, interruption); a tick that fails sets ru_stop,
 * which the workloads poll once per page or operation, so that a run under
 * heavy paging still stops within a page's time.  With wc_rss, a sampler
 * thread reads RssAnon from /proc/self/status every 20 ms from before the
 * populate pass to the end of the verification.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define TICK_NS		100000000L	/* main thread wake-ups */
#define RSS_NS		20000000L	/* RssAnon sampling period */

/*
 * The runner.  Workers park on ru_work until the phase moves on, the main
 * thread waits on ru_main for them to arrive.
 *
 * Locks protecting struct members:
 *	I  set before the workers start	  l  ru_lock	a  atomic
 */
enum { PH_PARK, PH_POPULATE, PH_GO, PH_VERIFY, PH_EXIT };

struct runner {
	pthread_mutex_t		 ru_lock;
	pthread_cond_t		 ru_work;	/* the phase changed */
	pthread_cond_t		 ru_main;	/* a worker arrived */
	int			 ru_phase;	/* [l] PH_* */
	unsigned		 ru_ready;	/* [l] parked to start */
	unsigned		 ru_populated;	/* [l] done populating */
	unsigned		 ru_done;	/* [l] done touching */
	unsigned		 ru_verified;	/* [l] done verifying */
	atomic_bool		 ru_stop;	/* [a] bail out */
	const struct workload	*ru_wl;		/* [I] */
	const struct wl_ctx	*ru_ctx;	/* [I] */
};

/* A worker: wk_t and the times are its own until it is joined. */
struct worker {
	struct runner	*wk_ru;		/* [I] */
	pthread_t	 wk_thread;	/* [I] */
	bool		 wk_touched;	/* ran the touch phase */
	struct timespec	 wk_start;	/* touch phase began */
	struct timespec	 wk_end;	/* and ended */
	struct wl_thread wk_t;
};

/*
 * The RssAnon sampler.
 *	I  set before the thread starts  l  rs_lock  s  the sampler's
 */
struct rss_sampler {
	pthread_mutex_t	 rs_lock;
	pthread_cond_t	 rs_cond;	/* rs_stop was set (MONOTONIC) */
	pthread_t	 rs_thread;	/* [I] */
	int		 rs_fd;		/* [I] /proc/self/status */
	bool		 rs_stop;	/* [l] */
	uint64_t	 rs_max;	/* [s] bytes */
};

/* write_all: len bytes of buf to fd.  => 0 or -errno */
int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * rss_anon: RssAnon of this process in bytes, from fd open on
 * /proc/self/status.  => -EIO if it cannot be read or has no RssAnon.
 */
int
rss_anon(int fd, uint64_t *bytes)
{
	char buf[4096], *p, *end;
	unsigned long long kb;
	ssize_t n;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return -EIO;
	buf[n] = '\0';
	if ((p = strstr(buf, "\nRssAnon:")) == NULL)
		return -EIO;
	kb = strtoull(p + 9, &end, 10);
	if (end == p + 9)
		return -EIO;
	*bytes = (uint64_t)kb << 10;
	return 0;
}

static uint64_t
tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000 + (uint64_t)tv->tv_usec *
	    1000;
}

/*
 * usage_sample: the kernel's count of this process, every thread of it,
 * into s: s_faults (minor + major) and s_proc_ns (user + system CPU); its
 * system CPU alone into *sys_ns, if not NULL.  Clears the rest of s.
 * => 0 or -errno
 */
int
usage_sample(struct sample *s, uint64_t *sys_ns)
{
	struct rusage ru;

	memset(s, 0, sizeof(*s));
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -errno;
	s->s_faults = (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
	s->s_proc_ns = tv_ns(&ru.ru_utime) + tv_ns(&ru.ru_stime);
	if (sys_ns != NULL)
		*sys_ns = tv_ns(&ru.ru_stime);
	return 0;
}

static void
deadline(struct timespec *ts, long ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ns;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void
rss_take(struct rss_sampler *rs)
{
	uint64_t b;

	if (rss_anon(rs->rs_fd, &b) == 0 && b > rs->rs_max)
		rs->rs_max = b;
}

static void *
rss_main(void *arg)
{
	struct rss_sampler *rs = arg;
	struct timespec ts;

	pthread_mutex_lock(&rs->rs_lock);
	while (!rs->rs_stop) {
		deadline(&ts, RSS_NS);
		pthread_cond_timedwait(&rs->rs_cond, &rs->rs_lock, &ts);
		pthread_mutex_unlock(&rs->rs_lock);
		rss_take(rs);
		pthread_mutex_lock(&rs->rs_lock);
	}
	pthread_mutex_unlock(&rs->rs_lock);
	return NULL;
}

static void
cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* rss_start: start sampling.  => -errno if it cannot; nothing started */
static int
rss_start(struct rss_sampler *rs)
{
	int error;

	memset(rs, 0, sizeof(*rs));
	if ((rs->rs_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	pthread_mutex_init(&rs->rs_lock, NULL);
	cond_init_monotonic(&rs->rs_cond);
	rss_take(rs);
	if ((error = pthread_create(&rs->rs_thread, NULL, rss_main, rs)) != 0) {
		close(rs->rs_fd);
		return -error;
	}
	return 0;
}

/* rss_stop: stop sampling, one last sample.  => the most bytes seen */
static uint64_t
rss_stop(struct rss_sampler *rs)
{
	pthread_mutex_lock(&rs->rs_lock);
	rs->rs_stop = true;
	pthread_cond_signal(&rs->rs_cond);
	pthread_mutex_unlock(&rs->rs_lock);
	pthread_join(rs->rs_thread, NULL);
	rss_take(rs);
	close(rs->rs_fd);
	pthread_cond_destroy(&rs->rs_cond);
	pthread_mutex_destroy(&rs->rs_lock);
	return rs->rs_max;
}

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

static void *
worker_main(void *arg)
{
	struct worker *wk = arg;
	struct runner *ru = wk->wk_ru;
	int phase;

	phase = park(ru, &ru->ru_ready, PH_PARK);
	if (phase == PH_POPULATE) {
		wl_populate(ru->ru_ctx, &wk->wk_t);
		phase = park(ru, &ru->ru_populated, PH_POPULATE);
	}
	if (phase != PH_GO)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &wk->wk_start);
	ru->ru_wl->wl_touch(ru->ru_ctx, &wk->wk_t);
	clock_gettime(CLOCK_MONOTONIC, &wk->wk_end);
	wk->wk_touched = true;
	if (park(ru, &ru->ru_done, PH_GO) != PH_VERIFY)
		return NULL;
	wl_verify(ru->ru_wl, ru->ru_ctx, &wk->wk_t);
	pthread_mutex_lock(&ru->ru_lock);
	ru->ru_verified++;
	pthread_cond_signal(&ru->ru_main);
	pthread_mutex_unlock(&ru->ru_lock);
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

/*
 * wait_count: wait until n workers have counted themselves in *count,
 * calling tick (if any) every TICK_NS.  A failing tick stops the workers
 * (they still arrive, early).  => 0, or the first error tick returned.
 */
static int
wait_count(struct runner *ru, const unsigned *count, unsigned n,
    int (*tick)(void))
{
	struct timespec ts;
	int error = 0, e;

	pthread_mutex_lock(&ru->ru_lock);
	while (*count < n) {
		if (tick == NULL) {
			pthread_cond_wait(&ru->ru_main, &ru->ru_lock);
			continue;
		}
		deadline(&ts, TICK_NS);
		if (pthread_cond_timedwait(&ru->ru_main, &ru->ru_lock,
		    &ts) != ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&ru->ru_lock);
		if ((e = tick()) != 0 && error == 0) {
			error = e;
			atomic_store(&ru->ru_stop, true);
		}
		pthread_mutex_lock(&ru->ru_lock);
	}
	pthread_mutex_unlock(&ru->ru_lock);
	return error;
}

static double
ts_sec(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}

/* collect: the touch time, counts and the lowest bad page of all workers. */
static void
collect(const struct worker *wks, unsigned n, struct wl_result *res)
{
	double start = 0, end = 0;
	bool any = false;
	unsigned i;
	int b;

	memset(res, 0, sizeof(*res));
	res->wr_bad.wb_page = SIZE_MAX;
	for (i = 0; i < n; i++) {
		if (wks[i].wk_touched) {
			if (!any || ts_sec(&wks[i].wk_start) < start)
				start = ts_sec(&wks[i].wk_start);
			if (!any || ts_sec(&wks[i].wk_end) > end)
				end = ts_sec(&wks[i].wk_end);
			any = true;
		}
		res->wr_pages += wks[i].wk_t.wt_pages;
		for (b = 0; b < UPVM_LATENCY_BUCKETS; b++)
			res->wr_hist[b] += wks[i].wk_t.wt_hist[b];
		if (wks[i].wk_t.wt_bad.wb_page < res->wr_bad.wb_page)
			res->wr_bad = wks[i].wk_t.wt_bad;
	}
	res->wr_seconds = end - start;
}

/* any_bad: whether a worker read wrong data (workers parked). */
static bool
any_bad(const struct worker *wks, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (wks[i].wk_t.wt_bad.wb_page != SIZE_MAX)
			return true;
	return false;
}

/*
 * run_phases: drive parked workers through populate (if any), the timed
 * touch and the verification (wc_verify, and nothing bad read yet).
 * => 0, or the error of tick or sample(); the workers are then told to
 *    exit.
 */
static int
run_phases(struct runner *ru, struct worker *wks, unsigned n,
    int (*sample)(struct sample *), struct sample *before,
    struct sample *after, int (*tick)(void))
{
	int error;

	if ((error = wait_count(ru, &ru->ru_ready, n, tick)) != 0)
		return error;
	if ((ru->ru_wl->wl_flags & WL_POPULATE) != 0) {
		set_phase(ru, PH_POPULATE);
		if ((error = wait_count(ru, &ru->ru_populated, n, tick)) != 0)
			return error;
	}
	if ((error = sample(before)) != 0)
		return error;
	set_phase(ru, PH_GO);
	if ((error = wait_count(ru, &ru->ru_done, n, tick)) != 0)
		return error;
	if ((error = sample(after)) != 0)
		return error;
	if (!ru->ru_ctx->wc_verify || any_bad(wks, n)) {
		set_phase(ru, PH_EXIT);
		return 0;
	}
	set_phase(ru, PH_VERIFY);
	return wait_count(ru, &ru->ru_verified, n, tick);
}

/*
 * wl_run: one timed run of wl over the region of c, with c->wc_nthreads
 * workers; sample() is called just before the release and just after the
 * last worker finishes; tick (may be NULL) about every 100 ms while the
 * workers run.  With wc_verify, the workers then read every page back,
 * untimed.  wc_pgen, if any, is reset to wc_gen first.
 * => returns 0 with *res filled (wr_bad.wb_page SIZE_MAX if every page
 *    read was good); -ENOMEM/-EAGAIN if the workers could not be created,
 *    or the error of sample() or tick: then res is not filled.
 */
int
wl_run(const struct workload *wl, const struct wl_ctx *c,
    int (*sample)(struct sample *), struct sample *before,
    struct sample *after, int (*tick)(void), struct wl_result *res)
{
	struct runner ru = {
		.ru_lock = PTHREAD_MUTEX_INITIALIZER,
		.ru_work = PTHREAD_COND_INITIALIZER,
		.ru_phase = PH_PARK,
		.ru_wl = wl,
		.ru_ctx = c,
	};
	struct rss_sampler rs;
	struct worker *wks;
	unsigned i, n = 0;
	uint64_t rss = 0;
	int error;

	if ((wks = calloc(c->wc_nthreads, sizeof(*wks))) == NULL)
		return -ENOMEM;
	cond_init_monotonic(&ru.ru_main);
	atomic_init(&ru.ru_stop, false);
	if (c->wc_pgen != NULL)
		memset(c->wc_pgen, 0, c->wc_pgen_len);
	if (c->wc_rss && (error = rss_start(&rs)) != 0)
		goto out_free;
	for (n = 0; n < c->wc_nthreads; n++) {
		wks[n].wk_ru = &ru;
		wks[n].wk_t.wt_tid = n;
		wks[n].wk_t.wt_stop = &ru.ru_stop;
		wks[n].wk_t.wt_rng = c->wc_seed ^
		    (n + 1) * 0xd1b54a32d192ed03ULL;
		wks[n].wk_t.wt_bad.wb_page = SIZE_MAX;
		error = pthread_create(&wks[n].wk_thread, NULL, worker_main,
		    &wks[n]);
		if (error != 0) {
			error = -error;
			goto out;
		}
	}
	error = run_phases(&ru, wks, n, sample, before, after, tick);
out:
	if (error != 0) {
		atomic_store(&ru.ru_stop, true);
		set_phase(&ru, PH_EXIT);
	}
	for (i = 0; i < n; i++)
		pthread_join(wks[i].wk_thread, NULL);
	if (c->wc_rss)
		rss = rss_stop(&rs);
	if (error == 0) {
		collect(wks, n, res);
		res->wr_rss_max = rss;
	}
out_free:
	pthread_cond_destroy(&ru.ru_main);
	free(wks);
	return error;
}
