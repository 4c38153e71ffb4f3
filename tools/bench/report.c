/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * report.c: upvm-bench's output, as a table, JSON or CSV.
 *
 * Records arrive a group at a time (one workload and thread count, every
 * mode), so that a long run shows its results as they come.  A record
 * reports the median and the extremes of its runs' throughput (of the pages
 * the timed phase touched), the median of their fault, pagein and pageout
 * counts, the most RssAnon any run reached, and pages per fault, fault
 * latency and op latency from the sum of their counter deltas and
 * histograms: summing first keeps the rare slow faults of every run in the
 * tail instead of averaging percentiles.  CPU seconds per GiB paged are
 * likewise the sum of the runs' paging CPU over the sum of the bytes they
 * paged in and out, so that a run that paged little weighs little.  After
 * each group the table gives the ratios of the modes' throughputs.  Under
 * --procs each process is a run, and a record adds, over its repeats, the
 * median and least aggregate throughput (every process's bytes over the
 * first start to the last end of their timed phases) and the most their
 * RssAnon summed to.  JSON
 * is written by hand; every string in it comes from the tables of bench.c
 * and workload.c and needs no escaping.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "upvm.h"

/* What a record says, in a line. */
struct summary {
	double		sm_seconds;	/* median */
	double		sm_gib;		/* median */
	double		sm_gib_min;
	double		sm_gib_max;
	uint64_t	sm_faults;	/* median */
	double		sm_pages_per_fault;
	uint64_t	sm_p50_us;	/* upvm only */
	uint64_t	sm_p99_us;
	uint64_t	sm_pageins;	/* median */
	uint64_t	sm_pageouts;	/* median */
	uint64_t	sm_op_p50_us;	/* rc_ops only */
	uint64_t	sm_op_p99_us;
	uint64_t	sm_rss_max;	/* bytes, most of any run */
	uint64_t	sm_peak;	/* bytes, most of any run */
	bool		sm_over;	/* sm_rss_max over budget + slack */
	double		sm_cpu_s;	/* median, paging's CPU (sm_cpu) */
	double		sm_proc_s;	/* median, the process's CPU */
	uint64_t	sm_paged;	/* median, bytes paged in and out */
	double		sm_cpu_per_gib;	/* of the sums (sm_per_gib) */
	bool		sm_cpu;		/* paging's CPU was measured */
	bool		sm_per_gib;	/* and something was paged */
	double		sm_agg;		/* --procs: median aggregate GiB/s */
	double		sm_agg_min;
	uint64_t	sm_rss_sum;	/* --procs: most RssAnon summed */
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* median: of the n values at v (sorts them). */
static double
median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* median_u64: of the n values at f (sorts them). */
static uint64_t
median_u64(uint64_t *f, unsigned n)
{
	qsort(f, n, sizeof(*f), cmp_u64);
	return n % 2 ? f[n / 2] : (f[n / 2 - 1] + f[n / 2]) / 2;
}

/* run_paged: the bytes run r of rc paged in and out. */
static uint64_t
run_paged(const struct record *rc, const struct run *r)
{
	return (r->r_pageins + r->r_pageouts) * (rc->rc_bytes / rc->rc_pages);
}

/* summarize_cpu: the medians of CPU and paging, v and f as scratch. */
static void
summarize_cpu(const struct record *rc, struct summary *sm, double *v,
    uint64_t *f)
{
	unsigned i, n = rc->rc_nruns;

	for (i = 0; i < n; i++)
		v[i] = (double)rc->rc_runs[i].r_cpu_ns * 1e-9;
	sm->sm_cpu_s = median(v, n);
	for (i = 0; i < n; i++)
		v[i] = (double)rc->rc_runs[i].r_proc_ns * 1e-9;
	sm->sm_proc_s = median(v, n);
	for (i = 0; i < n; i++)
		f[i] = run_paged(rc, &rc->rc_runs[i]);
	sm->sm_paged = median_u64(f, n);
}

/* summarize_procs: a --procs record's aggregates, v as scratch. */
static void
summarize_procs(const struct record *rc, struct summary *sm, double *v)
{
	unsigned i, n = rc->rc_nprocs_runs;

	if (rc->rc_procs == 0 || n == 0)
		return;
	for (i = 0; i < n; i++) {
		v[i] = rc->rc_pruns[i].pr_agg_gib_per_s;
		if (rc->rc_pruns[i].pr_rss_sum_max > sm->sm_rss_sum)
			sm->sm_rss_sum = rc->rc_pruns[i].pr_rss_sum_max;
	}
	sm->sm_agg = median(v, n);
	sm->sm_agg_min = v[0];	/* sorted by median() */
}

/* summarize_runs: the medians and extremes over rc's runs. */
static void
summarize_runs(const struct record *rc, struct summary *sm)
{
	unsigned i, n = rc->rc_nruns;
	uint64_t *f;
	double *v;

	v = calloc(n, sizeof(*v));
	f = calloc(n, sizeof(*f));
	if (v != NULL && f != NULL) {
		for (i = 0; i < n; i++)
			v[i] = rc->rc_runs[i].r_seconds;
		sm->sm_seconds = median(v, n);
		for (i = 0; i < n; i++)
			v[i] = rc->rc_runs[i].r_gib_per_s;
		sm->sm_gib = median(v, n);
		sm->sm_gib_min = v[0];
		sm->sm_gib_max = v[n - 1];
		for (i = 0; i < n; i++)
			f[i] = rc->rc_runs[i].r_faults;
		sm->sm_faults = median_u64(f, n);
		for (i = 0; i < n; i++)
			f[i] = rc->rc_runs[i].r_pageins;
		sm->sm_pageins = median_u64(f, n);
		for (i = 0; i < n; i++)
			f[i] = rc->rc_runs[i].r_pageouts;
		sm->sm_pageouts = median_u64(f, n);
		summarize_cpu(rc, sm, v, f);
		summarize_procs(rc, sm, v);
	}
	free(v);
	free(f);
	for (i = 0; i < n; i++) {
		if (rc->rc_runs[i].r_rss_max > sm->sm_rss_max)
			sm->sm_rss_max = rc->rc_runs[i].r_rss_max;
		if (rc->rc_runs[i].r_peak > sm->sm_peak)
			sm->sm_peak = rc->rc_runs[i].r_peak;
	}
}

/* summarize_per_gib: CPU seconds per GiB paged, from rc's sums. */
static void
summarize_per_gib(const struct record *rc, struct summary *sm)
{
	const struct sample *t = &rc->rc_total;
	double gib;

	/* no CPU at all: a runtime that does not count it (yet), not free */
	sm->sm_cpu = rc->rc_cpu && t->s_cpu_ns > 0;
	gib = (double)((t->s_pageins + t->s_pageouts) *
	    (rc->rc_bytes / rc->rc_pages)) / (1 << 30);
	sm->sm_per_gib = sm->sm_cpu && gib > 0;
	if (sm->sm_per_gib)
		sm->sm_cpu_per_gib = (double)t->s_cpu_ns * 1e-9 / gib;
}

/* summarize: the line that rc makes.  => rc_nruns > 0 */
static void
summarize(const struct record *rc, struct summary *sm)
{
	uint64_t pages = 0;
	unsigned i;

	memset(sm, 0, sizeof(*sm));
	summarize_runs(rc, sm);
	sm->sm_over = rc->rc_rss && rc->rc_budget > 0 &&
	    sm->sm_rss_max > rc->rc_budget + RSS_SLACK;
	summarize_per_gib(rc, sm);
	if (rc->rc_ops) {
		sm->sm_op_p50_us = upvm_stats_percentile(rc->rc_ophist,
		    UPVM_LATENCY_BUCKETS, 50);
		sm->sm_op_p99_us = upvm_stats_percentile(rc->rc_ophist,
		    UPVM_LATENCY_BUCKETS, 99);
	}
	if (rc->rc_upvm) {
		pages = rc->rc_total.s_pages_resolved;
		if (rc->rc_total.s_faults_resolved > 0)
			sm->sm_pages_per_fault = (double)pages /
			    (double)rc->rc_total.s_faults_resolved;
		sm->sm_p50_us = upvm_stats_percentile(
		    rc->rc_total.s_latency_hist, UPVM_LATENCY_BUCKETS, 50);
		sm->sm_p99_us = upvm_stats_percentile(
		    rc->rc_total.s_latency_hist, UPVM_LATENCY_BUCKETS, 99);
	} else {
		for (i = 0; i < rc->rc_nruns; i++)
			pages += rc->rc_runs[i].r_bytes / (rc->rc_bytes /
			    rc->rc_pages);
		if (rc->rc_total.s_faults > 0)
			sm->sm_pages_per_fault = (double)pages /
			    (double)rc->rc_total.s_faults;
	}
}

/*
 * hist_format: the non-empty buckets of a cluster histogram into buf, as
 * "1:n 2:n 4:n", labelled by the smallest size a bucket holds.
 */
static void
hist_format(char *buf, size_t len, const uint64_t *hist)
{
	size_t off = 0;
	int i, m;

	buf[0] = '\0';
	for (i = 0; i < UPVM_CLUSTER_BUCKETS && off < len; i++) {
		if (hist[i] == 0)
			continue;
		m = snprintf(buf + off, len - off, "%s%llu%s:%llu",
		    off > 0 ? " " : "",
		    i == 0 ? 0ULL : 1ULL << (i - 1),
		    i == UPVM_CLUSTER_BUCKETS - 1 ? "+" : "",
		    (unsigned long long)hist[i]);
		if (m < 0)
			break;
		off += (size_t)m;
	}
}

/* size_format: bytes as "512 MiB", "1 GiB", "1.50 GiB" or "4 KiB". */
static void
size_format(char *buf, size_t len, size_t bytes)
{
	if (bytes >= (size_t)1 << 30 && bytes % ((size_t)1 << 30) != 0)
		snprintf(buf, len, "%.2f GiB", (double)bytes / (1 << 30));
	else if (bytes >= (size_t)1 << 30)
		snprintf(buf, len, "%zu GiB", bytes >> 30);
	else if (bytes % ((size_t)1 << 20) == 0)
		snprintf(buf, len, "%zu MiB", bytes >> 20);
	else
		snprintf(buf, len, "%zu KiB", bytes >> 10);
}

static void
table_begin(struct report *rp)
{
	const struct report_info *ri = rp->rp_info;
	const struct upvm_config *cfg = &ri->ri_cfg;
	char size[32], budget[32], ops[48];

	size_format(size, sizeof(size), ri->ri_bytes);
	fprintf(rp->rp_out, "# upvm-bench %s: %s per run, %u repeat%s, "
	    "seed %llu%s, %ld CPUs, THP %s\n", UPVM_VERSION,
	    size, ri->ri_repeats,
	    ri->ri_repeats == 1 ? "" : "s", (unsigned long long)ri->ri_seed,
	    ri->ri_verify ? ", verified" : "", ri->ri_ncpu, ri->ri_thp);
	if (ri->ri_budget > 0)
		size_format(budget, sizeof(budget), ri->ri_budget);
	else
		snprintf(budget, sizeof(budget), "none");
	if (ri->ri_ops > 0)
		snprintf(ops, sizeof(ops), "%llu",
		    (unsigned long long)ri->ri_ops);
	else
		snprintf(ops, sizeof(ops), "region pages / threads");
	fprintf(rp->rp_out, "# budget %s, swap in %s, random ops per thread "
	    "%s, zipf theta %.3g\n", budget, ri->ri_swapdir, ops,
	    ri->ri_theta);
	if (ri->ri_kswap != NULL)
		fprintf(rp->rp_out, "# kernel-swap: %s\n", ri->ri_kswap);
	if (ri->ri_procs > 0)
		fprintf(rp->rp_out, "# procs: %u process%s at once per run, "
		    "each with a region of its own and a run in the rows "
		    "below; one budget: kernel-swap one cgroup, upvmd one "
		    "upvmd, upvm budget / %u each\n", ri->ri_procs,
		    ri->ri_procs == 1 ? "" : "es", ri->ri_procs);
	if (ri->ri_backing != NULL)
		fprintf(rp->rp_out, "# backing: a fresh file per run in %s, "
		    "mapped shared (upvm: upvm_map_file), checked with pread "
		    "after unmapping\n", ri->ri_backing);
	if (ri->ri_upvm) {
		if (cfg->budget > 0)
			size_format(budget, sizeof(budget), cfg->budget);
		else
			snprintf(budget, sizeof(budget), "none");
		fprintf(rp->rp_out, "# upvm: cluster %u, readahead %u, "
		    "seq_max %u, handlers %u, spin_us %u, pin %d, budget %s, "
		    "swap %s%s, pageout %s, numa %s%s%s\n",
		    cfg->cluster_pages, cfg->readahead_pages,
		    cfg->seq_max_pages, ri->ri_handlers, cfg->spin_us,
		    cfg->pin_handlers, budget,
		    cfg->swap_path[0] != '\0' ? cfg->swap_path : "default",
		    cfg->swap_encrypt ? " (sealed)" : "",
		    ri->ri_pageout == UPVM_PAGEOUT_MOVE ? "move" :
		    ri->ri_pageout == UPVM_PAGEOUT_WP ? "wp" :
		    ri->ri_procs > 0 ? "auto" : "none",
		    cfg->numa, cfg->node_budget[0] != '\0' ?
		    ", node budgets " : "", cfg->node_budget);
	}
	/* the widths of table_row() */
	fprintf(rp->rp_out, "%-12s %2s  %-11s %9s %7s %7s %7s %11s %7s %9s "
	    "%7s %9s %7s %9s %14s %15s %8s\n", "workload", "T", "mode",
	    "seconds", "GiB/s", "min", "max", "faults", "pg/flt", "pageins",
	    "in MiB", "pageouts", "out MiB", "cpu s/GiB", "op p50/p99 us",
	    "flt p50/p99 us", "rss MiB");
}

/* pct_format: "p50/p99" into buf, or "-" if not measured. */
static void
pct_format(char *buf, size_t len, bool measured, uint64_t p50, uint64_t p99)
{
	if (measured)
		snprintf(buf, len, "%llu/%llu", (unsigned long long)p50,
		    (unsigned long long)p99);
	else
		snprintf(buf, len, "-");
}

/*
 * num_format: v with prec decimals into buf, or none if it was not
 * measured ("-" in the table, "null" in JSON, nothing in CSV).
 */
static void
num_format(char *buf, size_t len, bool measured, int prec, double v,
    const char *none)
{
	if (measured)
		snprintf(buf, len, "%.*f", prec, v);
	else
		snprintf(buf, len, "%s", none);
}

static void
table_row(struct report *rp, const struct record *rc,
    const struct summary *sm)
{
	uint64_t pgsz = rc->rc_bytes / rc->rc_pages;
	char hist[256], op[32], flt[32], rss[32], cpu[32];

	num_format(cpu, sizeof(cpu), sm->sm_per_gib, 3, sm->sm_cpu_per_gib,
	    "-");
	pct_format(op, sizeof(op), rc->rc_ops, sm->sm_op_p50_us,
	    sm->sm_op_p99_us);
	pct_format(flt, sizeof(flt), rc->rc_upvm, sm->sm_p50_us,
	    sm->sm_p99_us);
	if (rc->rc_rss)
		snprintf(rss, sizeof(rss), "%llu",
		    (unsigned long long)(sm->sm_rss_max / MIB));
	else
		snprintf(rss, sizeof(rss), "-");
	fprintf(rp->rp_out, "%-12s %2u  %-11s %9.3f %7.2f %7.2f %7.2f "
	    "%11llu %7.2f %9llu %7llu %9llu %7llu %9s %14s %15s %8s%s\n",
	    rc->rc_workload, rc->rc_threads, rc->rc_mode,
	    sm->sm_seconds, sm->sm_gib, sm->sm_gib_min, sm->sm_gib_max,
	    (unsigned long long)sm->sm_faults, sm->sm_pages_per_fault,
	    (unsigned long long)sm->sm_pageins,
	    (unsigned long long)(sm->sm_pageins * pgsz / MIB),
	    (unsigned long long)sm->sm_pageouts,
	    (unsigned long long)(sm->sm_pageouts * pgsz / MIB),
	    cpu, op, flt, rss, sm->sm_over ? "  RSS OVER BUDGET" : "");
	if (rc->rc_procs > 0)
		fprintf(rp->rp_out, "%17s %u process%s at once, each a run: "
		    "aggregate %.3f GiB/s (min %.3f), RssAnon summed at most "
		    "%llu MiB (budget %llu MiB)\n", "", rc->rc_procs,
		    rc->rc_procs == 1 ? "" : "es", sm->sm_agg, sm->sm_agg_min,
		    (unsigned long long)(sm->sm_rss_sum / MIB),
		    (unsigned long long)(rp->rp_info->ri_budget / MIB));
	if (!rc->rc_upvm)
		return;
	hist_format(hist, sizeof(hist), rc->rc_total.s_cluster_hist);
	fprintf(rp->rp_out, "%17s pages/fault over %u run%s: %s\n", "",
	    rc->rc_nruns, rc->rc_nruns == 1 ? "" : "s",
	    hist[0] != '\0' ? hist : "none");
}

/* find_mode: the index of the record of mode name, or n. */
static size_t
find_mode(const struct record *rcs, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(rcs[i].rc_mode, name) == 0)
			break;
	return i;
}

/* table_ratios: the throughput ratios of the modes that ran. */
static void
table_ratios(struct report *rp, const struct record *rcs,
    const struct summary *sms, size_t n)
{
	static const char *const pairs[][2] = {
		{ "upvm", "native" },
		{ "upvm", "kernel-swap" },
		{ "upvm-wp", "kernel-swap" },
		{ "upvm", "upvm-wp" },
		{ "upvmd", "kernel-swap" },
		{ "upvmd", "upvm" },
		{ "kernel-swap", "native" },
	};
	size_t p, a, b;

	for (p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
		a = find_mode(rcs, n, pairs[p][0]);
		b = find_mode(rcs, n, pairs[p][1]);
		if (a == n || b == n)
			continue;
		fprintf(rp->rp_out, "ratio %s/%s: median %.2fx "
		    "(min-to-min %.2fx)\n", pairs[p][0], pairs[p][1],
		    sms[b].sm_gib > 0 ? sms[a].sm_gib / sms[b].sm_gib : 0,
		    sms[b].sm_gib_min > 0 ?
		    sms[a].sm_gib_min / sms[b].sm_gib_min : 0);
	}
}

/* json_paging: the paging fields of a record. */
static void
json_paging(struct report *rp, const struct record *rc,
    const struct summary *sm)
{
	uint64_t pgsz = rc->rc_bytes / rc->rc_pages;
	FILE *out = rp->rp_out;

	fprintf(out, ", \"budget\": %llu, \"pageins\": %llu, "
	    "\"pageouts\": %llu, \"pagein_bytes\": %llu, "
	    "\"pageout_bytes\": %llu", (unsigned long long)rc->rc_budget,
	    (unsigned long long)sm->sm_pageins,
	    (unsigned long long)sm->sm_pageouts,
	    (unsigned long long)(sm->sm_pageins * pgsz),
	    (unsigned long long)(sm->sm_pageouts * pgsz));
	if (rc->rc_ops)
		fprintf(out, ", \"op_p50_us\": %llu, \"op_p99_us\": %llu",
		    (unsigned long long)sm->sm_op_p50_us,
		    (unsigned long long)sm->sm_op_p99_us);
	else
		fputs(", \"op_p50_us\": null, \"op_p99_us\": null", out);
	if (rc->rc_rss)
		fprintf(out, ", \"rss_max_mib\": %.1f, \"rss_over_budget\": %s",
		    (double)sm->sm_rss_max / MIB, sm->sm_over ? "true" :
		    "false");
	else
		fputs(", \"rss_max_mib\": null", out);
	if (sm->sm_peak > 0)
		fprintf(out, ", \"cgroup_peak_mib\": %.1f",
		    (double)sm->sm_peak / MIB);
}

/* json_cpu: the CPU of a record, and the bytes it paged. */
static void
json_cpu(struct report *rp, const struct summary *sm)
{
	char cpu[32], per_gib[32];

	num_format(cpu, sizeof(cpu), sm->sm_cpu, 6, sm->sm_cpu_s, "null");
	num_format(per_gib, sizeof(per_gib), sm->sm_per_gib, 4,
	    sm->sm_cpu_per_gib, "null");
	fprintf(rp->rp_out, ", \"cpu_s\": %s, \"proc_cpu_s\": %.6f, "
	    "\"paged_bytes\": %llu, \"cpu_s_per_gib\": %s", cpu,
	    sm->sm_proc_s, (unsigned long long)sm->sm_paged, per_gib);
}

/* json_run: run r of rc, the i-th. */
static void
json_run(struct report *rp, const struct record *rc,
    const struct summary *sm, const struct run *r, unsigned i)
{
	FILE *out = rp->rp_out;
	char cpu[32];

	fprintf(out, "%s{\"seconds\": %.6f, \"gib_per_s\": %.4f, "
	    "\"bytes_touched\": %llu, \"faults\": %llu, "
	    "\"pages_per_fault\": %.3f, \"pageins\": %llu, "
	    "\"pageouts\": %llu", i > 0 ? ", " : "", r->r_seconds,
	    r->r_gib_per_s, (unsigned long long)r->r_bytes,
	    (unsigned long long)r->r_faults, r->r_pages_per_fault,
	    (unsigned long long)r->r_pageins,
	    (unsigned long long)r->r_pageouts);
	num_format(cpu, sizeof(cpu), sm->sm_cpu, 6, (double)r->r_cpu_ns * 1e-9,
	    "null");
	fprintf(out, ", \"cpu_s\": %s, \"proc_cpu_s\": %.6f, "
	    "\"paged_bytes\": %llu", cpu, (double)r->r_proc_ns * 1e-9,
	    (unsigned long long)run_paged(rc, r));
	if (rc->rc_rss)
		fprintf(out, ", \"rss_max_mib\": %.1f",
		    (double)r->r_rss_max / MIB);
	fputc('}', out);
}

static void
json_record(struct report *rp, const struct record *rc,
    const struct summary *sm)
{
	const struct upvm_config *cfg = &rp->rp_info->ri_cfg;
	FILE *out = rp->rp_out;
	unsigned i;
	int b, sep;

	fprintf(out, "%s\n  {\"mode\": \"%s\", \"workload\": \"%s\", "
	    "\"threads\": %u, \"bytes\": %zu, \"pages\": %zu, "
	    "\"repeats\": %u, \"seconds\": %.6f, \"gib_per_s\": %.4f, "
	    "\"gib_per_s_min\": %.4f, \"gib_per_s_max\": %.4f, "
	    "\"faults\": %llu, \"pages_per_fault\": %.3f",
	    rp->rp_nrec > 0 ? "," : "", rc->rc_mode, rc->rc_workload,
	    rc->rc_threads, rc->rc_bytes, rc->rc_pages, rc->rc_nruns,
	    sm->sm_seconds, sm->sm_gib, sm->sm_gib_min, sm->sm_gib_max,
	    (unsigned long long)sm->sm_faults, sm->sm_pages_per_fault);
	json_paging(rp, rc, sm);
	json_cpu(rp, sm);
	if (rc->rc_procs > 0)
		fprintf(out, ", \"procs\": %u, \"aggregate_gib_per_s\": %.4f, "
		    "\"aggregate_gib_per_s_min\": %.4f, "
		    "\"rss_sum_max_mib\": %.1f", rc->rc_procs, sm->sm_agg,
		    sm->sm_agg_min, (double)sm->sm_rss_sum / MIB);
	if (rc->rc_upvm) {
		fprintf(out, ", \"lat_p50_us\": %llu, \"lat_p99_us\": %llu, "
		    "\"reads_inflight_max\": %llu, \"cluster_hist\": {",
		    (unsigned long long)sm->sm_p50_us,
		    (unsigned long long)sm->sm_p99_us,
		    (unsigned long long)rc->rc_total.s_reads_max);
		for (b = 0, sep = 0; b < UPVM_CLUSTER_BUCKETS; b++) {
			if (rc->rc_total.s_cluster_hist[b] == 0)
				continue;
			fprintf(out, "%s\"%llu\": %llu", sep++ ? ", " : "",
			    b == 0 ? 0ULL : 1ULL << (b - 1),
			    (unsigned long long)rc->rc_total.s_cluster_hist[b]);
		}
		fprintf(out, "}, \"upvm_config\": {\"cluster\": %u, "
		    "\"readahead\": %u, \"seq_max\": %u, \"handlers\": %u, "
		    "\"spin_us\": %u, \"pin\": %d, \"budget\": %llu}",
		    cfg->cluster_pages, cfg->readahead_pages,
		    cfg->seq_max_pages, rp->rp_info->ri_handlers, cfg->spin_us,
		    cfg->pin_handlers, (unsigned long long)cfg->budget);
	}
	fputs(", \"runs\": [", out);
	for (i = 0; i < rc->rc_nruns; i++)
		json_run(rp, rc, sm, &rc->rc_runs[i], i);
	fputs("]}", out);
}

/* csv_cpu: the CPU columns of a record, and the end of its line. */
static void
csv_cpu(struct report *rp, const struct record *rc,
    const struct summary *sm)
{
	char cpu[32], per_gib[32];

	num_format(cpu, sizeof(cpu), sm->sm_cpu, 6, sm->sm_cpu_s, "");
	num_format(per_gib, sizeof(per_gib), sm->sm_per_gib, 4,
	    sm->sm_cpu_per_gib, "");
	fprintf(rp->rp_out, ",%s,%.6f,%llu,%s", cpu, sm->sm_proc_s,
	    (unsigned long long)sm->sm_paged, per_gib);
	if (rc->rc_upvm)
		fprintf(rp->rp_out, ",%llu",
		    (unsigned long long)rc->rc_total.s_reads_max);
	else
		fputc(',', rp->rp_out);
	if (rc->rc_procs > 0)
		fprintf(rp->rp_out, ",%u,%.4f,%.1f\n", rc->rc_procs,
		    sm->sm_agg, (double)sm->sm_rss_sum / MIB);
	else
		fputs(",,,\n", rp->rp_out);
}

static void
csv_record(struct report *rp, const struct record *rc,
    const struct summary *sm)
{
	uint64_t pgsz = rc->rc_bytes / rc->rc_pages;
	FILE *out = rp->rp_out;
	char hist[256];

	fprintf(out, "%s,%s,%u,%zu,%u,%.6f,%.4f,%.4f,%.4f,%llu,%.3f",
	    rc->rc_mode, rc->rc_workload, rc->rc_threads, rc->rc_bytes,
	    rc->rc_nruns, sm->sm_seconds, sm->sm_gib, sm->sm_gib_min,
	    sm->sm_gib_max, (unsigned long long)sm->sm_faults,
	    sm->sm_pages_per_fault);
	if (rc->rc_upvm) {
		hist_format(hist, sizeof(hist), rc->rc_total.s_cluster_hist);
		fprintf(out, ",%llu,%llu,%s", (unsigned long long)sm->sm_p50_us,
		    (unsigned long long)sm->sm_p99_us, hist);
	} else
		fputs(",,,", out);
	fprintf(out, ",%llu,%llu,%llu,%llu,%llu",
	    (unsigned long long)rc->rc_budget,
	    (unsigned long long)sm->sm_pageins,
	    (unsigned long long)sm->sm_pageouts,
	    (unsigned long long)(sm->sm_pageins * pgsz),
	    (unsigned long long)(sm->sm_pageouts * pgsz));
	if (rc->rc_ops)
		fprintf(out, ",%llu,%llu",
		    (unsigned long long)sm->sm_op_p50_us,
		    (unsigned long long)sm->sm_op_p99_us);
	else
		fputs(",,", out);
	if (rc->rc_rss)
		fprintf(out, ",%.1f", (double)sm->sm_rss_max / MIB);
	else
		fputc(',', out);
	if (sm->sm_peak > 0)
		fprintf(out, ",%.1f", (double)sm->sm_peak / MIB);
	else
		fputc(',', out);
	csv_cpu(rp, rc, sm);
}

/* report_begin: start a report in format fmt on out. */
void
report_begin(struct report *rp, FILE *out, enum report_format fmt,
    const struct report_info *ri)
{
	rp->rp_out = out;
	rp->rp_fmt = fmt;
	rp->rp_info = ri;
	rp->rp_nrec = 0;
	switch (fmt) {
	case FMT_TABLE:
		table_begin(rp);
		break;
	case FMT_JSON:
		fputc('[', out);
		break;
	case FMT_CSV:
		fputs("mode,workload,threads,bytes,repeats,seconds,gib_per_s,"
		    "gib_per_s_min,gib_per_s_max,faults,pages_per_fault,"
		    "lat_p50_us,lat_p99_us,cluster_hist,budget,pageins,"
		    "pageouts,pagein_bytes,pageout_bytes,op_p50_us,op_p99_us,"
		    "rss_max_mib,cgroup_peak_mib,cpu_s,proc_cpu_s,paged_bytes,"
		    "cpu_s_per_gib,reads_inflight_max,procs,"
		    "aggregate_gib_per_s,rss_sum_max_mib\n", out);
		break;
	}
	fflush(out);
}

/*
 * report_group: print the n records of one workload and thread count.
 * => every record has at least one run.
 */
void
report_group(struct report *rp, const struct record *rcs, size_t n)
{
	struct summary *sms;
	size_t i;

	if ((sms = calloc(n, sizeof(*sms))) == NULL)
		return;
	for (i = 0; i < n; i++) {
		summarize(&rcs[i], &sms[i]);
		switch (rp->rp_fmt) {
		case FMT_TABLE:
			table_row(rp, &rcs[i], &sms[i]);
			break;
		case FMT_JSON:
			json_record(rp, &rcs[i], &sms[i]);
			break;
		case FMT_CSV:
			csv_record(rp, &rcs[i], &sms[i]);
			break;
		}
		rp->rp_nrec++;
	}
	if (rp->rp_fmt == FMT_TABLE)
		table_ratios(rp, rcs, sms, n);
	free(sms);
	fflush(rp->rp_out);
}

/* report_end: finish the report.  => -EIO if any of it failed to write */
int
report_end(struct report *rp)
{
	if (rp->rp_fmt == FMT_JSON)
		fputs(rp->rp_nrec > 0 ? "\n]\n" : "]\n", rp->rp_out);
	if (fflush(rp->rp_out) != 0 || ferror(rp->rp_out))
		return -EIO;
	return 0;
}
