/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upvm.c: the upvm command.  "upvm demo" writes a region in page order and
 * another in random order, reads both back (every word of every page has a
 * pattern from its page and region), and prints for each phase what
 * upvm_stats() says it took: faults, pages per fault, fault latency.
 * Exit status: 0 OK, 1 an API error or bad data, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "upvm.h"

#define MAX_THREADS	64

/* A phase over one region; each thread runs a copy for its own 1/T. */
struct job {
	char		*jb_base;
	size_t		 jb_npages;
	const size_t	*jb_order;	/* page order, or NULL: ascending */
	uint64_t	 jb_gen;	/* the region's pattern generation */
	const char	*jb_what;	/* the region, for messages */
	bool		 jb_check;	/* read back instead of write */
	unsigned	 jb_nthreads;
	size_t		 jb_lo, jb_hi;	/* a thread's share of the order */
	size_t		 jb_bad, jb_word; /* first bad page, SIZE_MAX: none */
	pthread_t	 jb_thread;
};

static size_t pagesize;

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("upvm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static uint64_t
pattern(size_t idx, uint64_t gen, size_t w)
{
	return (((uint64_t)idx << 20 ^ gen << 52 ^ (uint64_t)(w + 1)) *
	    0x9e3779b97f4a7c15ULL) | 1;
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	size_t i, idx, w, nw = pagesize / sizeof(uint64_t);
	uint64_t *p;

	for (i = j->jb_lo; i < j->jb_hi; i++) {
		idx = j->jb_order != NULL ? j->jb_order[i] : i;
		p = (uint64_t *)(void *)(j->jb_base + idx * pagesize);
		for (w = 0; w < nw; w++) {
			if (!j->jb_check)
				p[w] = pattern(idx, j->jb_gen, w);
			else if (p[w] != pattern(idx, j->jb_gen, w)) {
				j->jb_bad = idx;
				j->jb_word = w;
				return NULL;
			}
		}
	}
	return NULL;
}

/* run_job: run j on its threads; the seconds it took.  Dies on bad data. */
static double
run_job(const struct job *j)
{
	struct job t[MAX_THREADS], bad = { .jb_bad = SIZE_MAX };
	struct timespec t0, t1;
	unsigned i;
	int error;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < j->jb_nthreads; i++) {
		t[i] = *j;
		t[i].jb_lo = j->jb_npages * i / j->jb_nthreads;
		t[i].jb_hi = j->jb_npages * (i + 1) / j->jb_nthreads;
		t[i].jb_bad = SIZE_MAX;
		if ((error = pthread_create(&t[i].jb_thread, NULL, worker,
		    &t[i])) != 0)
			die(1, "cannot start a thread: %s; use fewer --threads",
			    strerror(error));
	}
	for (i = 0; i < j->jb_nthreads; i++) {
		pthread_join(t[i].jb_thread, NULL);
		if (t[i].jb_bad < bad.jb_bad)
			bad = t[i];
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (bad.jb_bad != SIZE_MAX)
		die(1, "demo: FAILED: page %zu of the %s region (offset %#zx) "
		    "word %zu reads %#llx, not %#llx", bad.jb_bad, j->jb_what,
		    bad.jb_bad * pagesize, bad.jb_word, (unsigned long long)
		    ((uint64_t *)(void *)(j->jb_base + bad.jb_bad *
		    pagesize))[bad.jb_word], (unsigned long long)
		    pattern(bad.jb_bad, j->jb_gen, bad.jb_word));
	return (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
}

static void
stats(struct upvm_stats *st)
{
	int error;

	if ((error = upvm_stats(st)) != 0)
		die(1, "upvm_stats: %s; this is a bug in upvm",
		    strerror(-error));
}

/* phase: run jobs j[0..n), then print what upvm_stats() changed. */
static void
phase(const char *name, const struct job *j, int n)
{
	struct upvm_stats b, a;
	unsigned long long fr, pr, c;
	uint64_t h[UPVM_LATENCY_BUCKETS];
	double bytes = 0, sec = 0;
	int i;

	stats(&b);
	for (i = 0; i < n; i++) {
		sec += run_job(&j[i]);
		bytes += (double)(j[i].jb_npages * pagesize);
	}
	stats(&a);
	fr = a.faults_resolved - b.faults_resolved;
	pr = a.pages_resolved - b.pages_resolved;
	printf("%-11s %.4g MiB in %.3f s = %.2f GiB/s\n"
	    "%11s %llu faults, %llu pages resolved, %.1f pages/fault\n"
	    "%11s pages/fault:", name, bytes / (1 << 20), sec,
	    bytes / sec / (1 << 30), "",
	    (unsigned long long)(a.faults - b.faults), pr,
	    fr > 0 ? (double)pr / (double)fr : 0.0, "");
	for (i = 0; i < UPVM_CLUSTER_BUCKETS; i++)
		if ((c = a.cluster_hist[i] - b.cluster_hist[i]) != 0)
			printf(" %llu%s:%llu", i == 0 ? 0ULL : 1ULL << (i - 1),
			    i == UPVM_CLUSTER_BUCKETS - 1 ? "+" : "", c);
	for (i = 0; i < UPVM_LATENCY_BUCKETS; i++)
		h[i] = a.latency_hist[i] - b.latency_hist[i];
	printf("%s\n%11s fault latency p50 %llu us, p99 %llu us\n",
	    fr ? "" : " none", "",
	    (unsigned long long)upvm_stats_percentile(h,
	    UPVM_LATENCY_BUCKETS, 50), (unsigned long long)
	    upvm_stats_percentile(h, UPVM_LATENCY_BUCKETS, 99));
	if (a.budget_pages != 0)
		printf("%11s paging: %llu pages out in %llu writes, %llu in in "
		    "%llu reads, %llu dropped clean, %llu moved back; peak "
		    "resident %.4g MiB of a %.4g MiB budget\n", "",
		    (unsigned long long)(a.pageouts - b.pageouts),
		    (unsigned long long)(a.pageout_ios - b.pageout_ios),
		    (unsigned long long)(a.pageins - b.pageins),
		    (unsigned long long)(a.pagein_ios - b.pagein_ios),
		    (unsigned long long)(a.clean_drops - b.clean_drops),
		    (unsigned long long)(a.reactivations - b.reactivations),
		    (double)a.resident_peak * (double)pagesize / (1 << 20),
		    (double)a.budget_pages * (double)pagesize / (1 << 20));
}

/* parse_size: "512M" into whole pages of bytes, or 0 if malformed. */
static size_t
parse_size(const char *s)
{
	uint64_t v;

	if (upvm_parse_size(s, &v) != 0 || v > SIZE_MAX - pagesize)
		return 0;
	return (size_t)(v + pagesize - 1) / pagesize * pagesize;
}

/* shuffled: a random order of n pages, in malloc memory (never upvm's). */
static size_t *
shuffled(size_t n)
{
	uint64_t rnd = 1;
	size_t i, k, t, *order;

	if ((order = malloc(n * sizeof(*order))) == NULL)
		die(1, "no memory for the page order; try a smaller --size");
	for (i = 0; i < n; i++)
		order[i] = i;
	for (i = n; i > 1; i--) {
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		k = (size_t)((rnd >> 16) % i);
		t = order[i - 1];
		order[i - 1] = order[k];
		order[k] = t;
	}
	return order;
}

static int
demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct upvm_config cfg;
	struct upvm_stats st;
	struct job j[2];
	unsigned long nt = 1;
	size_t size = 512 << 20, *order;
	char *end;
	void *p;
	int c, error;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:t:", opts, NULL)) != -1) {
		if (c == 's' && (size = parse_size(optarg)) == 0)
			die(2, "--size %s is not a size > 0; give one such as "
			    "512M", optarg);
		else if (c == 't' && ((nt = strtoul(optarg, &end, 10)) < 1 ||
		    nt > MAX_THREADS || *end != '\0'))
			die(2, "--threads %s is not in 1..%d; give one that is",
			    optarg, MAX_THREADS);
		else if (c == '?' || c == ':')
			die(2, "demo: bad option %s; see upvm --help",
			    argv[optind - 1]);
	}
	if (optind < argc)
		die(2, "demo: unexpected '%s'; see upvm --help", argv[optind]);
	if (upvm_config_from_env(&cfg) != 0)
		die(2, "the UPVM_* environment is invalid (see above); fix it");
	/* the demo pages: a budget of one region for two, unless UPVM_* says */
	if (cfg.budget == 0 && getenv("UPVM_BUDGET") == NULL &&
	    (getenv("UPVM_CONF") == NULL ||
	    strstr(getenv("UPVM_CONF"), "budget") == NULL))
		cfg.budget = size > ((size_t)8 << 20) ? size :
		    (size_t)8 << 20;
	if ((error = upvm_init(&cfg)) != 0)
		die(1, "upvm_init: %s; userfaultfd must be usable (see "
		    "vm.unprivileged_userfaultfd)", strerror(-error));
	stats(&st);
	printf("upvm %s demo: 2 regions of %.4g MiB, %lu thread%s; cluster "
	    "%u, seq_max %u, %u fault threads, budget %.4g MiB, pageout "
	    "%s\n", UPVM_VERSION, (double)size / (1 << 20), nt,
	    nt > 1 ? "s" : "", cfg.cluster_pages, cfg.seq_max_pages,
	    st.handlers, (double)cfg.budget / (1 << 20),
	    st.pageout == UPVM_PAGEOUT_MOVE ? "move" :
	    st.pageout == UPVM_PAGEOUT_WP ? "wp" : "none");
	order = shuffled(size / pagesize);
	for (c = 0; c < 2; c++) {	/* map one, write it; then the next */
		if ((error = upvm_map(size, 0, &p)) != 0)
			die(1, "upvm_map of %zu bytes: %s; try a smaller "
			    "--size", size, strerror(-error));
		j[c] = (struct job){ .jb_base = p, .jb_nthreads = (unsigned)nt,
		    .jb_npages = size / pagesize, .jb_gen = (uint64_t)c + 1,
		    .jb_order = c ? order : NULL,
		    .jb_what = c ? "random" : "sequential" };
		phase(c ? "rand-write" : "seq-write", &j[c], 1);
	}
	j[0].jb_check = j[1].jb_check = true;
	j[1].jb_order = NULL;
	phase("read-back", j, 2);
	free(order);
	stats(&st);
	printf("metadata    %llu bytes for %llu managed pages (%llu resident, "
	    "%llu in swap) = %.2f bytes/page (map + amaps + anons)\n",
	    (unsigned long long)st.meta_bytes,
	    (unsigned long long)(st.mapped_bytes / pagesize),
	    (unsigned long long)st.resident_pages,
	    (unsigned long long)st.swap_used_pages,
	    (double)st.meta_bytes / (double)(st.mapped_bytes / pagesize));
	for (c = 0; c < 2; c++)
		if ((error = upvm_unmap(j[c].jb_base, size)) != 0)
			die(1, "upvm_unmap: %s; this is a bug in upvm",
			    strerror(-error));
	if ((error = upvm_fini()) != 0)
		die(1, "upvm_fini: %s; this is a bug in upvm",
		    strerror(-error));
	printf("demo: OK, every page verified\n");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	pagesize = (size_t)sysconf(_SC_PAGESIZE);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
		if (c == 'v') {
			printf("upvm %s\n", UPVM_VERSION);
			return 0;
		} else if (c != 'h')
			die(2, "unknown option %s; see upvm --help",
			    argv[optind - 1]);
		printf("usage: upvm run [options] -- PROGRAM [ARGS...]\n"
		    "       upvm demo [--size SIZE] [--threads T]\n"
		    "       upvm numa [--size MIB]\n"
		    "       upvm stat [PID] [--json] | top | ctl ...   "
		    "(with upvmd)\n"
		    "       upvm --version | --help\n\n"
		    "  run    run PROGRAM with its memory paged by upvm "
		    "(upvm run --help)\n"
		    "  demo   write a region in page order and one in random "
		    "order, read both\n         back, and show how upvm paged "
		    "them (--size K/M/G, default 512M;\n         --threads "
		    "1..%d, default 1); the budget is --size (one region\n"
		    "         for two) unless UPVM_BUDGET says otherwise\n"
		    "  numa   place --size MiB (32) under each NUMA policy and "
		    "a node budget,\n         and count the pages per node "
		    "(move_pages); needs 2+ nodes\n"
		    "  stat   upvmd's budget and its processes (--json); top: "
		    "the same, live;\n         ctl: change the budget, a "
		    "process's limit or share (--help)\n\n"
		    "Configure "
		    "upvm with UPVM_CONF or the UPVM_* variables (see upvm.h)."
		    "\n", MAX_THREADS);
		return 0;
	}
	if (optind == argc)
		die(2, "no command; see upvm --help");
	if (strcmp(argv[optind], "demo") != 0 &&
	    strcmp(argv[optind], "run") != 0 &&
	    strcmp(argv[optind], "numa") != 0 &&
	    strcmp(argv[optind], "stat") != 0 &&
	    strcmp(argv[optind], "top") != 0 &&
	    strcmp(argv[optind], "ctl") != 0)
		die(2, "unknown command '%s'; see upvm --help", argv[optind]);
	argv += optind;
	argc -= optind;
	optind = 0;		/* 0: glibc starts over on a new vector */
	if (strcmp(argv[0], "numa") == 0)
		return numa_main(argc, argv);
	if (strcmp(argv[0], "stat") == 0)
		return stat_main(argc, argv);
	if (strcmp(argv[0], "top") == 0)
		return top_main(argc, argv);
	if (strcmp(argv[0], "ctl") == 0)
		return ctl_main(argc, argv);
	return strcmp(argv[0], "run") == 0 ? run_main(argc, argv) :
	    demo(argc, argv);
}
