/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench.h: upvm-bench, upvm against the kernel's own paging in one run.
 *
 * A run maps a fresh region in one mode (bench.c: a table of modes, each a
 * way to map memory and to count its faults and paging; kswap.c: the
 * kernel's swap under a memory cgroup, run in a child process), lets T
 * threads touch it in one workload (workload.c: a table of per-thread
 * functions over a region; runner.c: the threads, the phases and their
 * timing), times the touch phase alone, and verifies every page if asked.
 * Runs are gathered into records, one per workload/threads/mode, which
 * report.c prints as a table, JSON or CSV.
 *
 * Ownership: everything here belongs to the main thread, except that
 * wl_run() hands a const struct wl_ctx to its worker threads for the run,
 * and each worker a struct wl_thread of its own.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "upvm.h"

#define MIB		((uint64_t)1 << 20)
#define WL_GENS		256	/* pattern generations per run */
#define RSS_SLACK	(64 * MIB)	/* RSS over budget + this: flagged */

/*
 * Counters of one mode, sampled just before and just after the timed
 * phase.  native fills s_faults and s_proc_ns only; kernel-swap adds
 * s_pageins and s_pageouts (the whole machine's, from /proc/vmstat) and
 * s_cpu_ns; upvm fills all.  Every counter only grows while one process
 * (and one upvm_init) lasts, so after - before is the phase's share;
 * s_reads_max is the exception, a maximum since upvm_init.
 */
struct sample {
	uint64_t	s_faults;		/* fault events */
	uint64_t	s_faults_resolved;	/* upvm: events that mapped */
	uint64_t	s_pages_resolved;	/* upvm: pages they mapped */
	uint64_t	s_pageins;		/* pages read from swap */
	uint64_t	s_pageouts;		/* pages written to swap */
	uint64_t	s_cpu_ns;		/* CPU of the paging: upvm's
						   fault threads and pageout
						   daemon; kernel-swap: the
						   child's system time plus
						   kswapd's */
	uint64_t	s_proc_ns;		/* user + system CPU of the
						   process, every thread */
	uint64_t	s_reads_max;		/* upvm: most pagein reads in
						   flight at once, ever */
	uint64_t	s_cluster_hist[UPVM_CLUSTER_BUCKETS];
	uint64_t	s_latency_hist[UPVM_LATENCY_BUCKETS];
};

/*
 * The constants of a zipf(theta) sampler over ranks 1..n by rejection
 * inversion (Hoermann and Derflinger 1996, as in Apache Commons RNG):
 * O(1) per sample, no table.
 */
struct wl_zipf {
	double		zf_theta;
	double		zf_hx1;		/* H(1.5) - 1 */
	double		zf_hn;		/* H(n + 0.5) */
	double		zf_s;		/* acceptance shortcut */
	uint64_t	zf_n;
};

/*
 * The region of one run, as its workers see it.  Immutable while the
 * workers run, except the bytes at wc_pgen: worker tid alone writes those
 * of the pages in its own slice.  wc_order and wc_pgen live in plain mmap
 * memory, never in a region under test.
 */
struct wl_ctx {
	char		*wc_base;	/* the region */
	size_t		 wc_npages;	/* its pages */
	size_t		 wc_pagesize;
	unsigned	 wc_nthreads;	/* workers */
	uint64_t	 wc_gen;	/* first generation of this run */
	uint64_t	 wc_ops;	/* random operations per thread */
	uint64_t	 wc_seed;	/* of the per-thread random streams */
	double		 wc_theta;	/* zipf exponent */
	bool		 wc_verify;	/* check every word read */
	bool		 wc_rss;	/* sample RssAnon during the run */
	uint64_t	*wc_order;	/* page order (plain mmap) or NULL */
	size_t		 wc_order_len;	/* bytes at wc_order */
	uint8_t		*wc_pgen;	/* page -> gen - wc_gen, or NULL */
	size_t		 wc_pgen_len;	/* bytes at wc_pgen */
	struct wl_zipf	 wc_zipf;	/* wl_prepare() of zipf */
};

/* A page that read back wrong. */
struct wl_bad {
	size_t		wb_page;	/* SIZE_MAX: none */
	size_t		wb_word;
	uint64_t	wb_expected;
	uint64_t	wb_got;
	int		wb_phase;	/* WL_PH_TOUCH or WL_PH_VERIFY */
};

#define WL_PH_TOUCH	1	/* the timed phase */
#define WL_PH_VERIFY	2	/* the verification after it */
#define WL_PH_FILE	3	/* --backing file: the file, after unmap */

/* A worker's own state: nobody else touches it until it is joined. */
struct wl_thread {
	unsigned	  wt_tid;
	const atomic_bool *wt_stop;	/* bail out when set */
	uint64_t	  wt_rng;	/* splitmix64 state */
	uint64_t	  wt_pages;	/* pages touched, timed phase */
	uint64_t	  wt_hist[UPVM_LATENCY_BUCKETS]; /* op latency, us */
	struct wl_bad	  wt_bad;
};

/* wl_flags */
#define WL_POPULATE	0x1	/* an untimed sequential write first */
#define WL_OPS		0x2	/* random operations, timed each */
#define WL_PGEN		0x4	/* pages change generation singly */

/*
 * A workload: what each of T threads does to the region in the timed
 * phase.  wl_prepare (optional) runs once per workload and size, untimed,
 * before any run, and fills what it needs in plain mmap memory; it is then
 * shared by every mode and repeat.  After the touch, every page holds
 * generation wc_gen + wl_final, or wc_gen + wc_pgen[page] with WL_PGEN.
 */
struct workload {
	const char	*wl_name;
	const char	*wl_desc;	/* one line, for --help */
	unsigned	 wl_flags;	/* WL_* */
	unsigned	 wl_final;
	int		(*wl_prepare)(struct wl_ctx *, uint64_t seed);
	void		(*wl_touch)(const struct wl_ctx *,
			    struct wl_thread *);
};

extern const struct workload workloads[];
extern const size_t nworkloads;

/* What wl_run() measured and found. */
struct wl_result {
	double		wr_seconds;	/* first start to last end */
	uint64_t	wr_pages;	/* pages touched in that time */
	uint64_t	wr_rss_max;	/* most RssAnon bytes, 0: none */
	uint64_t	wr_hist[UPVM_LATENCY_BUCKETS]; /* op latency, us */
	struct wl_bad	wr_bad;		/* the lowest bad page */
};

/* workload.c */
const struct workload *wl_lookup(const char *name);
uint64_t wl_pattern(size_t idx, uint64_t gen, size_t w);
int wl_prepare(const struct workload *, struct wl_ctx *, uint64_t seed);
void wl_release(struct wl_ctx *);
void wl_populate(const struct wl_ctx *, struct wl_thread *);
void wl_verify(const struct workload *, const struct wl_ctx *,
    struct wl_thread *);
const char *wl_phase_name(int phase);

/* runner.c */
int wl_run(const struct workload *, const struct wl_ctx *,
    int (*sample)(struct sample *), struct sample *before,
    struct sample *after, int (*tick)(void), struct wl_result *);
int rss_anon(int fd, uint64_t *bytes);
/* len bytes of buf to fd, through short writes and EINTR; 0 or -errno */
int write_all(int fd, const void *buf, size_t len);
int usage_sample(struct sample *, uint64_t *sys_ns);

/* fileback.c: --backing file */
/* a fresh unnamed file of bytes (sparse) in dir; => its fd or -errno */
int fb_create(const char *dir, size_t bytes);
/* check every word of the file against the run's final generations:
   => 0 with *bad set at the first wrong word (wb_page SIZE_MAX: none
   found, as the caller left it), or the read's -errno */
int fb_verify(int fd, const struct workload *, const struct wl_ctx *,
    struct wl_bad *bad);

/* kswap.c: the kernel-swap mode */
int ks_setup(size_t region, size_t budget, const char *swapdir, char *why,
    size_t len);
int ks_run(const struct workload *, const struct wl_ctx *,
    struct sample *before, struct sample *after, int (*tick)(void),
    struct wl_result *, uint64_t *peak, char *why, size_t len);
int ks_teardown(void);
/* --procs: a child joins the cgroup itself; its paging CPU counts its
   own system time and 1/n of kswapd's; the cgroup's peak, reset */
int ks_join(void);
void ks_set_share(unsigned n);
int ks_sample(struct sample *);
int ks_peak_open(void);
uint64_t ks_peak_read(int fd);
/* the kernel-swap child maps this file shared (-1: anonymous memory) and
   checks it after unmapping (fb_verify) */
void ks_set_backing(int fd);
void ks_emergency(void);
const char *ks_describe(void);

/*
 * procs.c: --procs, N processes at once.  A child's message to the
 * parent: READY once set up, then DONE with its run (pm_error 0), or DONE
 * with -errno and a line saying why.
 */
struct procs_msg {
	int		pm_kind;	/* READY or DONE (procs.c) */
	int		pm_error;
	char		pm_why[200];
	struct sample	pm_before;
	struct sample	pm_after;
	struct wl_result pm_res;
	uint64_t	pm_t0_ns;	/* CLOCK_MONOTONIC, timed phase start */
	uint64_t	pm_t1_ns;	/* and end */
};

/* runs in child i of a run: set up, procs_ready(), run, fill *m */
typedef void (*procs_child_fn)(unsigned i, void *arg, struct procs_msg *m);

/*
 * procs_run: run fn in n children at once (their timed phases start
 * together), tick (may be NULL) every 50 ms.
 * => 0 with out[0..n) and *rss_max (the most their RssAnon summed to)
 *    filled; tick's error; or -errno with why filled: a child failed (its
 *    line) or died.  No child is left behind either way.
 */
int procs_run(unsigned n, procs_child_fn, void *arg, int (*tick)(void),
    struct procs_msg *out, uint64_t *rss_max, char *why, size_t len);
/* in a child: set up; wait for the start.  => 0, or -ECANCELED */
int procs_ready(void);
/* in a child: stamp the start, then the end, of its timed phase */
void procs_mark(struct procs_msg *);
/*
 * procs_daemon_start: start upvmd (the path, or a name looked up in PATH)
 * with the budget, swapping to swapdir, its socket and log in a fresh
 * directory there.  => 0 once it serves; -errno with why filled ("<what>;
 * <what to do>", to follow "the upvmd mode needs ").
 */
int procs_daemon_start(const char *upvmd, uint64_t budget,
    const char *swapdir, char *why, size_t len);
const char *procs_daemon_socket(void);	/* NULL: no upvmd */
int procs_daemon_stop(void);
void procs_emergency(void);

/* One timed run of one mode. */
struct run {
	double		r_seconds;
	double		r_gib_per_s;	/* of pages touched */
	uint64_t	r_bytes;	/* touched */
	uint64_t	r_faults;
	double		r_pages_per_fault;
	uint64_t	r_pageins;
	uint64_t	r_pageouts;
	uint64_t	r_cpu_ns;	/* s_cpu_ns of the phase */
	uint64_t	r_proc_ns;	/* s_proc_ns of the phase */
	uint64_t	r_rss_max;	/* bytes, 0: not sampled */
	uint64_t	r_peak;		/* kernel-swap: cgroup peak */
};

/* --procs: what one repeat of N processes did together. */
struct procs_run {
	double		pr_agg_gib_per_s; /* all bytes over first start to
					     last end of the timed phases */
	uint64_t	pr_rss_sum_max;	/* bytes: the most RssAnon summed */
};

/*
 * A record: the runs of one workload/threads/mode, plus the sum of their
 * counter deltas (rc_total) for pages per fault, the histograms and CPU
 * per GiB paged.  rc_total.s_reads_max is no sum but the highest after any
 * run: since upvm_init, which may predate this workload.
 */
struct record {
	const char	*rc_mode;
	const char	*rc_workload;
	unsigned	 rc_threads;
	size_t		 rc_bytes;	/* region, per run */
	size_t		 rc_pages;	/* region, per run */
	uint64_t	 rc_budget;	/* bytes, 0: none */
	bool		 rc_upvm;	/* rc_total has upvm's counters */
	bool		 rc_cpu;	/* rc_total has s_cpu_ns (paging) */
	bool		 rc_ops;	/* rc_ophist is measured */
	bool		 rc_rss;	/* RssAnon was sampled */
	unsigned	 rc_nruns;
	struct run	*rc_runs;
	struct sample	 rc_total;
	uint64_t	 rc_ophist[UPVM_LATENCY_BUCKETS];
	unsigned	 rc_procs;	/* --procs: processes, each a run;
					   0: none */
	unsigned	 rc_nprocs_runs; /* entries of rc_pruns */
	struct procs_run *rc_pruns;	/* one per repeat */
};

enum report_format { FMT_TABLE, FMT_JSON, FMT_CSV };

/* What the report says about the whole invocation. */
struct report_info {
	size_t		 ri_bytes;
	unsigned	 ri_repeats;
	uint64_t	 ri_seed;
	bool		 ri_verify;
	long		 ri_ncpu;
	const char	*ri_thp;	/* kernel THP setting, or "?" */
	uint64_t	 ri_budget;	/* --budget, 0: none */
	uint64_t	 ri_ops;	/* --ops, 0: pages / threads */
	double		 ri_theta;
	const char	*ri_swapdir;
	const char	*ri_backing;	/* --backing file: its dir, NULL: anon */
	const char	*ri_kswap;	/* kernel-swap set-up, or NULL */
	bool		 ri_upvm;	/* ri_cfg, ri_handlers valid */
	int		 ri_pageout;	/* UPVM_PAGEOUT_* of the upvm mode */
	struct upvm_config ri_cfg;
	unsigned	 ri_handlers;	/* fault threads running */
	unsigned	 ri_procs;	/* --procs, 0: none */
};

struct report {
	FILE		*rp_out;
	enum report_format rp_fmt;
	const struct report_info *rp_info;
	unsigned	 rp_nrec;	/* records printed so far */
};

void report_begin(struct report *, FILE *, enum report_format,
    const struct report_info *);
void report_group(struct report *, const struct record *, size_t n);
int report_end(struct report *);

#endif /* BENCH_H */
