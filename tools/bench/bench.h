/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench.h: upvm-bench, upvm against the kernel's own paging in one run.
 *
 * A run maps a fresh region in one mode (bench.c: a table of modes, each a
 * way to map memory and to count its faults), lets T threads touch it in
 * one workload (workload.c: a table of per-thread functions over a region),
 * times the touch phase alone, and verifies every page if asked.  Runs are
 * gathered into records, one per workload/threads/mode, which report.c
 * prints as a table, JSON or CSV.
 *
 * Ownership: everything here belongs to the main thread, except that
 * wl_run() hands a const struct wl_ctx to its worker threads for the run.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "upvm.h"

/*
 * Counters of one mode, sampled just before and just after the timed
 * phase.  A mode without upvm fills s_faults only.
 */
struct sample {
	uint64_t	s_faults;		/* fault events */
	uint64_t	s_faults_resolved;	/* upvm: events that mapped */
	uint64_t	s_pages_resolved;	/* upvm: pages they mapped */
	uint64_t	s_cluster_hist[UPVM_CLUSTER_BUCKETS];
	uint64_t	s_latency_hist[UPVM_LATENCY_BUCKETS];
};

/*
 * The region of one run, as its workers see it.  Immutable while the
 * workers run.
 */
struct wl_ctx {
	char		*wc_base;	/* the region */
	size_t		 wc_npages;	/* its pages */
	size_t		 wc_pagesize;
	unsigned	 wc_nthreads;	/* workers */
	uint64_t	 wc_gen;	/* pattern generation of this run */
	uint64_t	*wc_order;	/* page order (plain mmap) or NULL */
	size_t		 wc_order_len;	/* bytes mapped at wc_order */
};

/*
 * A workload: what each of T threads does to the region in the timed
 * phase.  wl_prepare (optional) runs once per workload and size, untimed,
 * before any run, and fills wc_order from plain mmap memory, never from
 * a region under test; the order is then shared by every mode and repeat.
 */
struct workload {
	const char	*wl_name;
	const char	*wl_desc;	/* one line, for --help */
	int		(*wl_prepare)(struct wl_ctx *, uint64_t seed);
	void		(*wl_touch)(const struct wl_ctx *, unsigned tid);
};

extern const struct workload workloads[];
extern const size_t nworkloads;

/* What wl_run() measured and found. */
struct wl_result {
	double		wr_seconds;	/* first start to last finish */
	size_t		wr_bad_page;	/* first bad page, or SIZE_MAX */
	size_t		wr_bad_word;	/* its first bad word */
	uint64_t	wr_expected;
	uint64_t	wr_got;
};

const struct workload *wl_lookup(const char *name);
uint64_t wl_pattern(size_t idx, uint64_t gen, size_t w);
int wl_prepare(const struct workload *, struct wl_ctx *, uint64_t seed);
void wl_release(struct wl_ctx *);
int wl_run(const struct workload *, const struct wl_ctx *,
    int (*sample)(struct sample *), struct sample *before,
    struct sample *after, bool verify, struct wl_result *);

/* One timed run of one mode. */
struct run {
	double		r_seconds;
	double		r_gib_per_s;
	uint64_t	r_faults;
	double		r_pages_per_fault;
};

/*
 * A record: the runs of one workload/threads/mode, plus the sum of their
 * counter deltas (rc_total) for pages per fault and the histograms.
 */
struct record {
	const char	*rc_mode;
	const char	*rc_workload;
	unsigned	 rc_threads;
	size_t		 rc_bytes;	/* per run */
	size_t		 rc_pages;	/* per run */
	bool		 rc_upvm;	/* rc_total has upvm's counters */
	unsigned	 rc_nruns;
	struct run	*rc_runs;
	struct sample	 rc_total;
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
	bool		 ri_upvm;	/* ri_cfg and ri_handlers are valid */
	struct upvm_config ri_cfg;
	unsigned	 ri_handlers;	/* fault threads running */
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
