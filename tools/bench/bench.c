/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench.c: upvm-bench, upvm against the kernel's own paging in one run.
 *
 * For each workload and thread count, every repeat runs every mode back to
 * back (native, kernel-swap, upvm, native, ...), so that whatever else the
 * machine does hits the modes alike.  A run maps a fresh region, times the
 * touch phase of the workload (workload.c, runner.c), verifies it if asked,
 * and unmaps it; its counters come from the mode: the kernel's faults for
 * plain memory, and its swap traffic under kernel-swap (kswap.c, which runs
 * in a child inside a memory cgroup), upvm_stats() for upvm, with the CPU
 * time that paging took in the last two.  The modes that page
 * (kernel-swap, and upvm given a budget) also sample RssAnon.
 *
 * A mode is a way to get memory and to count its faults; add one to modes[]
 * and it runs everywhere.  With --procs N each run is N processes at once
 * (procs.c), each a fork of this one with a region of its own, under one
 * budget: kernel-swap puts the N in its cgroup, upvmd attaches them to an
 * upvmd started here with the budget, upvm gives each budget / N; upvm is
 * then started in the children only.  SIGINT and SIGTERM stop the run in
 * progress within a page's time; the swap file, the cgroup and upvmd go,
 * and upvm-bench exits 130 (a second signal tears down from the handler).
 * Exit status: 0 when every run ran (and verified), 1 when a run failed or
 * read back wrong data, 2 for bad usage or a mode that cannot run here.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "upvm.h"
#include "bench.h"

#define MAX_THREADS	1024
#define MAX_REPEAT	100000
#define MAX_LIST	64	/* items in a --threads, --workload, --mode */
#define MAX_ITEM	32	/* characters in one item */
#define MAX_OPS		((uint64_t)1 << 40)
#define MAX_THETA	10.0
#define STOP_GRACE	5	/* seconds a run has to stop when asked */
#define MAX_PROCS	64	/* --procs */

/*
 * A mode: how a run maps its region and counts its faults.  md_upvm means
 * it needs upvm_init() and its samples carry upvm's resolution counters;
 * md_child that ks_run() runs it in a child under the budget (md_map,
 * md_unmap and md_sample unused).
 */
struct mode {
	const char	*md_name;
	const char	*md_desc;	/* one line, for --help */
	bool		 md_upvm;
	bool		 md_wp;		/* upvm with pageout=wp forced */
	bool		 md_nonuma;	/* upvm with placement off */
	bool		 md_daemon;	/* upvm attached to upvmd (--procs) */
	bool		 md_child;
	int		(*md_map)(size_t, void **);
	int		(*md_unmap)(void *, size_t);
	int		(*md_sample)(struct sample *);
};

struct opts {
	size_t			  o_size;	/* bytes, whole pages */
	unsigned		  o_threads[MAX_LIST];
	size_t			  o_nthreads;
	const struct workload	 *o_wls[MAX_LIST];
	size_t			  o_nwls;
	const struct mode	 *o_modes[MAX_LIST];
	size_t			  o_nmodes;
	unsigned		  o_repeat;
	enum report_format	  o_fmt;
	const char		 *o_output;
	bool			  o_verify;
	uint64_t		  o_seed;
	size_t			  o_budget;	/* bytes, 0: none */
	const char		 *o_swapdir;
	const char		 *o_upvmswap;	/* NULL: o_swapdir */
	bool			  o_encrypt;	/* --swap-encrypt */
	bool			  o_file;	/* --backing file */
	const char		 *o_filedir;	/* NULL: o_swapdir */
	uint64_t		  o_ops;	/* 0: pages / threads */
	double			  o_theta;
	/* upvm overrides, -1 where not given */
	long			  o_cluster;
	long			  o_readahead;
	long			  o_seq_max;
	long			  o_handlers;
	long			  o_spin_us;
	long			  o_pin;
	const char		 *o_numa;	/* NULL: UPVM_NUMA's */
	const char		 *o_node_budget;
	bool			  o_promote;	/* --numa-promote */
	unsigned		  o_procs;	/* --procs, 0: none */
	const char		 *o_upvmd;	/* --upvmd, NULL: beside us */
};

static bool upvm_up;		/* upvm_init() succeeded */
static struct upvm_config upvm_cfg; /* what it runs with */
static struct upvm_config upvm_base_cfg; /* the options' and UPVM_*'s */
static bool progress_on;	/* stderr is a terminal */
static bool progress_shown;	/* a progress line is on it */
static char progress_label[160]; /* of the run in progress */
static struct timespec progress_start;	/* when that run began */
static long progress_secs;	/* elapsed seconds shown */
static size_t pagesize;
static volatile sig_atomic_t got_signal; /* SIGINT or SIGTERM, 0: none */
static int backing_fd = -1;	/* --backing file: this run's file */
static const char *backing_dir;	/* --backing file: where, else NULL */

static void
progress_clear(void)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

/* progress_show: the progress line, with the elapsed time after 2 s. */
static void
progress_show(void)
{
	fprintf(stderr, "\r%s", progress_label);
	if (progress_secs >= 2)
		fprintf(stderr, " %lds", progress_secs);
	fputs("\033[K", stderr);
	progress_shown = true;
}

/*
 * bench_tick: called about every 100 ms while a run runs, by the main
 * thread.  => -EINTR once a signal asked to stop, else 0.  If the run has
 * not stopped STOP_GRACE seconds after that (a worker stuck in a fault that
 * never resolves), it tears down and exits right here, without upvm_fini().
 */
static int
bench_tick(void)
{
	static struct timespec stop_at;
	struct timespec now;
	long secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (got_signal) {
		if (stop_at.tv_sec == 0)
			stop_at = now;
		else if (now.tv_sec - stop_at.tv_sec >= STOP_GRACE) {
			progress_clear();
			fprintf(stderr, "upvm-bench: interrupted, and the run "
			    "does not stop (a thread stuck in a page fault?); "
			    "exiting without upvm_fini\n");
			ks_teardown();
			procs_daemon_stop();
			_exit(130);
		}
		return -EINTR;
	}
	if (!progress_on)
		return 0;
	secs = (long)(now.tv_sec - progress_start.tv_sec) -
	    (now.tv_nsec < progress_start.tv_nsec);
	if (secs >= 2 && secs != progress_secs) {
		progress_secs = secs;
		progress_show();
	}
	return 0;
}

/* die: one line on stderr, upvm stopped, kernel-swap torn down, exit. */
static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	progress_clear();
	fputs("upvm-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (upvm_up)
		upvm_fini();
	ks_teardown();
	procs_daemon_stop();
	exit(status);
}

static void __attribute__((noreturn))
die_interrupted(void)
{
	die(130, "interrupted by %s; the run was stopped and everything it "
	    "set up removed", got_signal == SIGTERM ? "SIGTERM" : "SIGINT");
}

/*
 * on_signal: the first SIGINT/SIGTERM asks the run to stop (bench_tick);
 * a second one, as when the run does not stop, tears down right here.
 */
static void
on_signal(int sig)
{
	static const char msg[] = "upvm-bench: second signal: removed the "
	    "swap file and the cgroup, exiting\n";

	if (got_signal) {
		procs_emergency();
		ks_emergency();
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to do in a signal handler */
		}
		_exit(130);
	}
	got_signal = sig;
}

static void
catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* native: plain private anonymous memory; the kernel pages it. */
static int
native_map(size_t len, void **addrp)
{
	void *p;

	p = backing_fd >= 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED, backing_fd, 0) : mmap(NULL, len, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*addrp = p;
	return 0;
}

static int
native_unmap(void *addr, size_t len)
{
	return munmap(addr, len) < 0 ? -errno : 0;
}

/* native_sample: the faults and CPU of the whole process, every thread. */
static int
native_sample(struct sample *s)
{
	return usage_sample(s, NULL);
}

static int
upvm_map_plain(size_t len, void **addrp)
{
	if (backing_fd >= 0)
		return upvm_map_file(backing_fd, 0, len, UPVM_MAP_SHARED,
		    addrp);
	return upvm_map(len, 0, addrp);
}

static int
upvm_sample(struct sample *s)
{
	struct upvm_stats st;
	int error;

	if ((error = upvm_stats(&st)) != 0 ||
	    (error = usage_sample(s, NULL)) != 0)
		return error;
	s->s_faults = st.faults;
	s->s_faults_resolved = st.faults_resolved;
	s->s_pages_resolved = st.pages_resolved;
	s->s_pageins = st.pageins;
	s->s_pageouts = st.pageouts;
	s->s_cpu_ns = st.cpu_fault_ns + st.cpu_pageout_ns + st.cpu_io_ns;
	s->s_reads_max = st.reads_inflight_max;
	memcpy(s->s_cluster_hist, st.cluster_hist, sizeof(s->s_cluster_hist));
	memcpy(s->s_latency_hist, st.latency_hist, sizeof(s->s_latency_hist));
	return 0;
}

static const struct mode modes[] = {
	{
		.md_name = "native",
		.md_desc = "plain anonymous mmap(MAP_NORESERVE), paged by "
		    "the kernel",
		.md_map = native_map,
		.md_unmap = native_unmap,
		.md_sample = native_sample,
	},
	{
		.md_name = "kernel-swap",
		.md_desc = "plain mmap in a child, paged by the kernel in a "
		    "memory cgroup limited to --budget, to a swap file in "
		    "--swap-dir (root)",
		.md_child = true,
	},
	{
		.md_name = "upvm",
		.md_desc = "upvm_map(), paged by upvm within --budget",
		.md_upvm = true,
		.md_map = upvm_map_plain,
		.md_unmap = upvm_unmap,
		.md_sample = upvm_sample,
	},
	{
		.md_name = "upvmd",
		.md_desc = "with --procs: upvm_map() in each process, all of "
		    "them attached to one upvmd holding --budget (started "
		    "here, see --upvmd)",
		.md_upvm = true,
		.md_daemon = true,
		.md_map = upvm_map_plain,
		.md_unmap = upvm_unmap,
		.md_sample = upvm_sample,
	},
	{
		.md_name = "upvm-wp",
		.md_desc = "upvm with its wp pageout protocol forced "
		    "(UPVM_PAGEOUT=wp; upvm is restarted between modes)",
		.md_upvm = true,
		.md_wp = true,
		.md_map = upvm_map_plain,
		.md_unmap = upvm_unmap,
		.md_sample = upvm_sample,
	},
	{
		.md_name = "upvm-nonuma",
		.md_desc = "upvm with NUMA placement off (UPVM_NUMA=none): "
		    "against upvm, what placement costs",
		.md_upvm = true,
		.md_nonuma = true,
		.md_map = upvm_map_plain,
		.md_unmap = upvm_unmap,
		.md_sample = upvm_sample,
	},
};
#define NMODES	(sizeof(modes) / sizeof(modes[0]))

static const struct mode *
mode_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < NMODES; i++)
		if (strcmp(modes[i].md_name, name) == 0)
			return &modes[i];
	return NULL;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
"usage: upvm-bench [options]\n"
"Time paging by upvm against the kernel's, side by side.\n"
"\n"
"  -s, --size SIZE       bytes per region, K/M/G/T suffix (1G)\n"
"  -t, --threads LIST    thread counts, comma separated (1)\n"
"  -w, --workload LIST   workloads, comma separated (seq-write,rand-write)\n"
"  -m, --mode LIST       modes, comma separated (native,upvm)\n"
"  -r, --repeat N        runs of each mode per workload and threads (5)\n"
"  -f, --format FMT      table, json or csv (table)\n"
"  -o, --output FILE     write the report to FILE instead of stdout\n"
"  -b, --budget SIZE     resident memory of the paging modes (none;\n"
"                        kernel-swap needs one, upvm pages with one)\n"
"      --swap-dir DIR    where both kernel-swap and upvm swap\n"
"      --swap SPEC       where upvm swaps instead: a directory, or\n"
"                        memcached://HOST:PORT[,...][?replicas=N]\n"
"      --swap-encrypt    upvm's swap file sealed (AES-256-GCM)\n"
"                        ($TMPDIR, else /var/tmp)\n"
"      --backing KIND    anon, or file: each region a fresh file of\n"
"                        --size mapped shared (upvm: upvm_map_file),\n"
"                        checked with pread after it is unmapped (anon)\n"
"      --file-dir DIR    where --backing file makes them (--swap-dir)\n"
"      --ops N           random operations per thread per run\n"
"                        (region pages / threads)\n"
"      --zipf THETA      exponent of the zipf workload, 0..10 (0.99)\n"
"      --verify          check every word read, and read every page\n"
"                        back after each run (untimed)\n"
"      --seed N          seed of the random page orders and streams (1)\n"
"      --procs N         N processes at once, each with a region of\n"
"                        --size and T threads, under one --budget:\n"
"                        kernel-swap in one cgroup, upvmd attached to\n"
"                        one upvmd, upvm with budget / N each (root for\n"
"                        the first two); each process is a run\n"
"      --upvmd PATH      the upvmd of the upvmd mode (the one beside\n"
"                        upvm-bench, else upvmd in PATH)\n"
"upvm tuning, over UPVM_CONF and the UPVM_* variables:\n"
"      --cluster N       pages resolved around a random fault, 2^k <= 512\n"
"      --readahead N     swapped-out pages read around a random pagein,\n"
"                        2^k <= 64\n"
"      --seq-max N       widest sequential window, 2^k in 16..1024\n"
"      --handlers N      fault threads, 0 = one per CPU\n"
"      --spin-us N       microseconds a fault thread polls, 0..10000\n"
"      --pin 0|1         keep the first fault thread on its CPU too (0)\n"
"      --numa POLICY     NUMA placement of the upvm modes: none, local,\n"
"                        bind:N, preferred:N, interleave[:NODES], nearest\n"
"      --node-budget L   per-node budgets, as 0=1G,1=4G\n"
"      --numa-promote    demoted units written again move to the writer's\n"
"                        node (needs --node-budget)\n"
"  -h, --help            print this and exit\n"
"\nworkloads:\n");
	for (i = 0; i < nworkloads; i++)
		fprintf(f, "  %-12s %s\n", workloads[i].wl_name,
		    workloads[i].wl_desc);
	fprintf(f, "modes:\n");
	for (i = 0; i < NMODES; i++)
		fprintf(f, "  %-12s %s\n", modes[i].md_name, modes[i].md_desc);
}

/*
 * parse_size: "512M", "1G", "4096" into whole pages of bytes
 * (upvm_parse_size).
 * => -EINVAL if malformed, -EDOM if zero, -ERANGE if it does not fit.
 */
static int
parse_size(const char *s, size_t *out)
{
	uint64_t v;
	int error;

	if ((error = upvm_parse_size(s, &v)) != 0)
		return error;
	if (v > SIZE_MAX - pagesize)
		return -ERANGE;
	if (v == 0)
		return -EDOM;
	*out = (size_t)((v + pagesize - 1) / pagesize * pagesize);
	return 0;
}

/* parse_ulong: a plain decimal number in [min, max], or -EINVAL. */
static int
parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* opt_ulong: parse_ulong() of option name's value, or die. */
static unsigned long
opt_ulong(const char *name, const char *s, unsigned long min,
    unsigned long max)
{
	unsigned long v;

	if (parse_ulong(s, min, max, &v) != 0)
		die(2, "--%s %s is not a number in %lu..%lu; give one that is",
		    name, s, min, max);
	return v;
}

/* opt_pow2: opt_ulong() that must also be a power of two. */
static long
opt_pow2(const char *name, const char *s, unsigned long min,
    unsigned long max)
{
	unsigned long v = opt_ulong(name, s, min, max);

	if ((v & (v - 1)) != 0)
		die(2, "--%s %s is not a power of two; give one in %lu..%lu",
		    name, s, min, max);
	return (long)v;
}

/*
 * split: the comma-separated items of list into items[], or die if one is
 * empty or too long, or if there are too many.
 */
static size_t
split(const char *name, const char *list, char (*items)[MAX_ITEM])
{
	const char *p = list, *comma;
	size_t n = 0, len;

	for (;;) {
		comma = strchrnul(p, ',');
		len = (size_t)(comma - p);
		if (len == 0)
			die(2, "--%s '%s' has an empty item; give a "
			    "comma-separated list", name, list);
		if (len >= MAX_ITEM)
			die(2, "--%s: '%.*s' is too long; see --help", name,
			    (int)len, p);
		if (n == MAX_LIST)
			die(2, "--%s '%s' has more than %d items; give fewer",
			    name, list, MAX_LIST);
		memcpy(items[n], p, len);
		items[n++][len] = '\0';
		if (*comma == '\0')
			return n;
		p = comma + 1;
	}
}

static void
opt_threads(struct opts *o, const char *list)
{
	char items[MAX_LIST][MAX_ITEM];
	size_t i;

	o->o_nthreads = split("threads", list, items);
	for (i = 0; i < o->o_nthreads; i++)
		o->o_threads[i] = (unsigned)opt_ulong("threads", items[i], 1,
		    MAX_THREADS);
}

static void
opt_workloads(struct opts *o, const char *list)
{
	char items[MAX_LIST][MAX_ITEM];
	size_t i;

	o->o_nwls = split("workload", list, items);
	for (i = 0; i < o->o_nwls; i++)
		if ((o->o_wls[i] = wl_lookup(items[i])) == NULL)
			die(2, "unknown workload '%s'; see --help for the "
			    "list", items[i]);
}

static void
opt_modes(struct opts *o, const char *list)
{
	char items[MAX_LIST][MAX_ITEM];
	size_t i;

	o->o_nmodes = split("mode", list, items);
	for (i = 0; i < o->o_nmodes; i++)
		if ((o->o_modes[i] = mode_lookup(items[i])) == NULL)
			die(2, "unknown mode '%s'; see --help for the list",
			    items[i]);
}

enum {
	OPT_VERIFY = 256, OPT_SEED, OPT_CLUSTER, OPT_READAHEAD, OPT_SEQ_MAX,
	OPT_HANDLERS, OPT_SPIN_US, OPT_PIN, OPT_SWAP_DIR, OPT_OPS, OPT_ZIPF, OPT_NUMA,
	OPT_NODE_BUDGET, OPT_PROMOTE, OPT_BACKING, OPT_FILE_DIR, OPT_SWAP,
	OPT_ENCRYPT, OPT_PROCS, OPT_UPVMD,
};

static const struct option longopts[] = {
	{ "size",	required_argument,	NULL, 's' },
	{ "threads",	required_argument,	NULL, 't' },
	{ "workload",	required_argument,	NULL, 'w' },
	{ "mode",	required_argument,	NULL, 'm' },
	{ "repeat",	required_argument,	NULL, 'r' },
	{ "format",	required_argument,	NULL, 'f' },
	{ "output",	required_argument,	NULL, 'o' },
	{ "budget",	required_argument,	NULL, 'b' },
	{ "swap-dir",	required_argument,	NULL, OPT_SWAP_DIR },
	{ "swap",	required_argument,	NULL, OPT_SWAP },
	{ "swap-encrypt", no_argument,		NULL, OPT_ENCRYPT },
	{ "backing",	required_argument,	NULL, OPT_BACKING },
	{ "file-dir",	required_argument,	NULL, OPT_FILE_DIR },
	{ "ops",	required_argument,	NULL, OPT_OPS },
	{ "zipf",	required_argument,	NULL, OPT_ZIPF },
	{ "verify",	no_argument,		NULL, OPT_VERIFY },
	{ "seed",	required_argument,	NULL, OPT_SEED },
	{ "cluster",	required_argument,	NULL, OPT_CLUSTER },
	{ "readahead",	required_argument,	NULL, OPT_READAHEAD },
	{ "seq-max",	required_argument,	NULL, OPT_SEQ_MAX },
	{ "handlers",	required_argument,	NULL, OPT_HANDLERS },
	{ "spin-us",	required_argument,	NULL, OPT_SPIN_US },
	{ "pin",	required_argument,	NULL, OPT_PIN },
	{ "numa",	required_argument,	NULL, OPT_NUMA },
	{ "node-budget", required_argument,	NULL, OPT_NODE_BUDGET },
	{ "numa-promote", no_argument,		NULL, OPT_PROMOTE },
	{ "procs",	required_argument,	NULL, OPT_PROCS },
	{ "upvmd",	required_argument,	NULL, OPT_UPVMD },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL,		0,			NULL, 0 },
};

/* opt_size: parse_size() of option name's value, or die. */
static size_t
opt_size(const char *name, const char *arg)
{
	size_t v;
	int error;

	if ((error = parse_size(arg, &v)) == -EINVAL)
		die(2, "--%s %s is not a size; give one such as 512M or 2G",
		    name, arg);
	if (error == -EDOM)
		die(2, "--%s %s is empty; give a size > 0 such as 512M", name,
		    arg);
	if (error != 0)
		die(2, "--%s %s does not fit in the address space; give a "
		    "smaller one", name, arg);
	return v;
}

/* opt_theta: the zipf exponent, a number in 0..MAX_THETA, or die. */
static double
opt_theta(const char *arg)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (end == arg || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v < 0 || v > MAX_THETA)
		die(2, "--zipf %s is not a number in 0..%g; give one such as "
		    "0.99", arg, MAX_THETA);
	return v;
}

/* opt_value: the value of one option with an argument, into o. */
static void
opt_value(struct opts *o, int c, const char *arg)
{
	unsigned long long seed;
	char *end;

	switch (c) {
	case 's':
		o->o_size = opt_size("size", arg);
		break;
	case 'b':
		o->o_budget = opt_size("budget", arg);
		break;
	case OPT_SWAP_DIR:
		if (*arg == '\0')
			die(2, "--swap-dir is empty; give a directory");
		o->o_swapdir = arg;
		break;
	case OPT_SWAP:
		if (*arg == '\0')
			die(2, "--swap is empty; give a directory or "
			    "memcached://HOST:PORT");
		o->o_upvmswap = arg;
		break;
	case OPT_ENCRYPT:
		o->o_encrypt = true;
		break;
	case OPT_BACKING:
		if (strcmp(arg, "file") != 0 && strcmp(arg, "anon") != 0)
			die(2, "--backing %s is unknown; give anon or file",
			    arg);
		o->o_file = strcmp(arg, "file") == 0;
		break;
	case OPT_FILE_DIR:
		if (*arg == '\0')
			die(2, "--file-dir is empty; give a directory");
		o->o_filedir = arg;
		break;
	case OPT_OPS:
		o->o_ops = opt_ulong("ops", arg, 1, MAX_OPS);
		break;
	case OPT_ZIPF:
		o->o_theta = opt_theta(arg);
		break;
	case 't':
		opt_threads(o, arg);
		break;
	case 'w':
		opt_workloads(o, arg);
		break;
	case 'm':
		opt_modes(o, arg);
		break;
	case 'r':
		o->o_repeat = (unsigned)opt_ulong("repeat", arg, 1,
		    MAX_REPEAT);
		break;
	case 'f':
		if (strcmp(arg, "table") == 0)
			o->o_fmt = FMT_TABLE;
		else if (strcmp(arg, "json") == 0)
			o->o_fmt = FMT_JSON;
		else if (strcmp(arg, "csv") == 0)
			o->o_fmt = FMT_CSV;
		else
			die(2, "unknown format '%s'; give table, json or csv",
			    arg);
		break;
	case 'o':
		o->o_output = arg;
		break;
	case OPT_SEED:
		errno = 0;
		seed = strtoull(arg, &end, 0);
		if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0)
			die(2, "--seed %s is not a number; give one such as "
			    "42", arg);
		o->o_seed = seed;
		break;
	case OPT_CLUSTER:
		o->o_cluster = opt_pow2("cluster", arg, 1, 512);
		break;
	case OPT_READAHEAD:
		o->o_readahead = opt_pow2("readahead", arg, 1, 64);
		break;
	case OPT_SEQ_MAX:
		o->o_seq_max = opt_pow2("seq-max", arg, 16, 1024);
		break;
	case OPT_HANDLERS:
		o->o_handlers = (long)opt_ulong("handlers", arg, 0,
		    MAX_THREADS);
		break;
	case OPT_SPIN_US:
		o->o_spin_us = (long)opt_ulong("spin-us", arg, 0, 10000);
		break;
	case OPT_PIN:
		o->o_pin = (long)opt_ulong("pin", arg, 0, 1);
		break;
	case OPT_NUMA:
		o->o_numa = arg;
		break;
	case OPT_NODE_BUDGET:
		o->o_node_budget = arg;
		break;
	case OPT_PROMOTE:
		o->o_promote = true;
		break;
	case OPT_PROCS:
		o->o_procs = (unsigned)opt_ulong("procs", arg, 1, MAX_PROCS);
		break;
	case OPT_UPVMD:
		if (*arg == '\0')
			die(2, "--upvmd is empty; give the path of upvmd");
		o->o_upvmd = arg;
		break;
	}
}

/* check_procs: die if --procs and the other options do not go together */
static void
check_procs(const struct opts *o)
{
	size_t i;

	for (i = 0; i < o->o_nmodes; i++) {
		if (!o->o_modes[i]->md_daemon)
			continue;
		if (o->o_procs == 0)
			die(2, "mode upvmd runs processes; give --procs N "
			    "(--procs 1 for one)");
		if (o->o_budget == 0)
			die(2, "mode upvmd needs --budget, upvmd's budget for "
			    "all the processes");
	}
	if (o->o_procs == 0)
		return;
	if (o->o_file)
		die(2, "--procs runs anonymous regions only; leave out "
		    "--backing file");
	if (o->o_upvmswap != NULL || o->o_encrypt)
		die(2, "--procs swaps to --swap-dir (upvmd's swap too); "
		    "leave out --swap and --swap-encrypt");
	if (o->o_size > SIZE_MAX / o->o_procs)
		die(2, "--procs %u of --size %zu do not fit in the address "
		    "space; give fewer or smaller", o->o_procs, o->o_size);
}

static void
parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	*o = (struct opts){
		.o_size = (size_t)1 << 30, .o_repeat = 5, .o_seed = 1,
		.o_fmt = FMT_TABLE, .o_cluster = -1, .o_readahead = -1,
		.o_seq_max = -1,
		.o_handlers = -1, .o_spin_us = -1, .o_pin = -1,
		.o_theta = 0.99,
	};
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:t:w:m:r:f:o:b:h", longopts,
	    NULL)) != -1) {
		switch (c) {
		case OPT_VERIFY:
			o->o_verify = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			die(2, "%s needs a value; see --help",
			    argv[optind - 1]);
		case '?':
			die(2, "unknown option %s; see --help",
			    argv[optind - 1]);
		default:
			opt_value(o, c, optarg);
		}
	}
	if (optind < argc)
		die(2, "unexpected argument '%s'; options only, see --help",
		    argv[optind]);
	if (o->o_nthreads == 0)
		opt_threads(o, "1");
	if (o->o_nwls == 0)
		opt_workloads(o, "seq-write,rand-write");
	if (o->o_nmodes == 0)
		opt_modes(o, "native,upvm");
	if (o->o_swapdir == NULL && ((o->o_swapdir = getenv("TMPDIR")) ==
	    NULL || *o->o_swapdir == '\0'))
		o->o_swapdir = "/var/tmp";
	if (o->o_filedir == NULL)
		o->o_filedir = o->o_swapdir;
	check_procs(o);
}

/* wants_child: whether a mode of the list runs in a child (kernel-swap). */
static bool
wants_child(const struct opts *o)
{
	size_t i;

	for (i = 0; i < o->o_nmodes; i++)
		if (o->o_modes[i]->md_child)
			return true;
	return false;
}

/*
 * start_kswap: the kernel-swap set-up, if a mode needs it; dies with one
 * line and status 2 if it cannot be had here.
 */
static void
start_kswap(const struct opts *o, struct report_info *ri)
{
	char why[PATH_MAX + 256];

	if (!wants_child(o))
		return;
	if (o->o_budget == 0)
		die(2, "kernel-swap mode needs --budget; give one smaller than "
		    "--size, such as --budget %zuM", o->o_size / 4 >> 20 > 0 ?
		    o->o_size / 4 >> 20 : 1);
	if (ks_setup(o->o_size * (o->o_procs > 0 ? o->o_procs : 1),
	    o->o_budget, o->o_swapdir, why, sizeof(why)) != 0)
		die(2, "kernel-swap mode needs %s", why);
	if (o->o_procs > 0)
		ks_set_share(o->o_procs);
	ri->ri_kswap = ks_describe();
}

/*
 * upvm_start: (re)start upvm with cfg, the wp pageout protocol forced if
 * `wp`, placement off if `nonuma`; nothing if it already runs so.
 */
static void
upvm_start(const struct upvm_config *cfg, bool wp, bool nonuma)
{
	struct upvm_config c = *cfg;
	int error;

	if (wp)
		c.pageout = UPVM_PAGEOUT_WP;
	if (nonuma)
		strcpy(c.numa, "none");
	if (upvm_up && c.pageout == upvm_cfg.pageout &&
	    strcmp(c.numa, upvm_cfg.numa) == 0)
		return;
	if (upvm_up && (error = upvm_fini()) != 0)
		die(1, "upvm_fini: %s; report this line", strerror(-error));
	upvm_up = false;
	if ((error = upvm_init(&c)) == -EINVAL)
		die(2, "upvm_init rejected the configuration (see above); fix "
		    "the tuning options or UPVM_*");
	if (error != 0)
		die(1, "upvm_init: %s; run 'upvm-bench --mode native' to "
		    "bench without upvm", strerror(-error));
	upvm_up = true;
	upvm_cfg = c;
}

/*
 * start_upvm: upvm_init() with the environment's configuration under the
 * command line's overrides, if any mode needs upvm.
 */
static void
start_upvm(const struct opts *o, struct report_info *ri)
{
	struct upvm_stats st;
	const char *swap;
	size_t i;
	int error;

	bool any = false, plain = false;

	for (i = 0; i < o->o_nmodes; i++) {
		any |= o->o_modes[i]->md_upvm;
		plain |= o->o_modes[i]->md_upvm && !o->o_modes[i]->md_wp &&
		    !o->o_modes[i]->md_nonuma;
	}
	if (!any)
		return;
	if (upvm_config_from_env(&ri->ri_cfg) != 0)
		die(2, "the UPVM_* environment is invalid (see above); fix it "
		    "or unset it");
	if (o->o_cluster >= 0)
		ri->ri_cfg.cluster_pages = (unsigned)o->o_cluster;
	if (o->o_readahead >= 0)
		ri->ri_cfg.readahead_pages = (unsigned)o->o_readahead;
	if (o->o_seq_max >= 0)
		ri->ri_cfg.seq_max_pages = (unsigned)o->o_seq_max;
	if (o->o_handlers >= 0)
		ri->ri_cfg.handlers = (unsigned)o->o_handlers;
	if (o->o_spin_us >= 0)
		ri->ri_cfg.spin_us = (unsigned)o->o_spin_us;
	if (o->o_pin >= 0)
		ri->ri_cfg.pin_handlers = o->o_pin != 0;
	if (o->o_budget > 0)
		ri->ri_cfg.budget = o->o_budget;
	if (o->o_numa != NULL &&
	    snprintf(ri->ri_cfg.numa, sizeof(ri->ri_cfg.numa), "%s",
	    o->o_numa) >= (int)sizeof(ri->ri_cfg.numa))
		die(2, "--numa %s is too long; give a policy such as local",
		    o->o_numa);
	if (o->o_node_budget != NULL &&
	    snprintf(ri->ri_cfg.node_budget, sizeof(ri->ri_cfg.node_budget),
	    "%s", o->o_node_budget) >= (int)sizeof(ri->ri_cfg.node_budget))
		die(2, "--node-budget %s is too long", o->o_node_budget);
	if (o->o_promote)
		ri->ri_cfg.numa_promote = true;
	swap = o->o_upvmswap != NULL ? o->o_upvmswap : o->o_swapdir;
	if (strlen(swap) >= sizeof(ri->ri_cfg.swap_path))
		die(2, "swap %s is too long for upvm (%zu characters at "
		    "most); give a shorter one", swap,
		    sizeof(ri->ri_cfg.swap_path) - 1);
	strcpy(ri->ri_cfg.swap_path, swap);
	if (o->o_encrypt)
		ri->ri_cfg.swap_encrypt = true;
	upvm_base_cfg = ri->ri_cfg;
	if (o->o_procs > 0) {
		/* upvm runs in the children only: the fork stays clean */
		ri->ri_upvm = true;
		ri->ri_handlers = ri->ri_cfg.handlers;
		ri->ri_pageout = ri->ri_cfg.pageout;
		return;
	}
	/* the plain mode first: its protocol (auto) goes in the report */
	upvm_start(&ri->ri_cfg, !plain, !plain && o->o_modes[0]->md_nonuma);
	if ((error = upvm_stats(&st)) != 0)
		die(1, "upvm_stats: %s; this is a bug in upvm",
		    strerror(-error));
	ri->ri_upvm = true;
	ri->ri_handlers = st.handlers;
	ri->ri_pageout = st.pageout;
}

/*
 * start_upvmd: upvmd with --budget, if the upvmd mode is among the modes:
 * --upvmd, else the upvmd beside this upvm-bench (as in the build tree
 * and once installed), else upvmd in PATH.
 */
static void
start_upvmd(const struct opts *o)
{
	char self[PATH_MAX], beside[PATH_MAX + 8], why[PATH_MAX + 600], *slash;
	const char *path = o->o_upvmd;
	ssize_t n;
	size_t i;
	bool want = false;

	for (i = 0; i < o->o_nmodes; i++)
		want |= o->o_modes[i]->md_daemon;
	if (!want)
		return;
	if (path == NULL) {
		path = "upvmd";
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = '\0';
			if ((slash = strrchr(self, '/')) != NULL)
				*slash = '\0';
			snprintf(beside, sizeof(beside), "%s/upvmd", self);
			if (access(beside, X_OK) == 0)
				path = beside;
		}
	}
	if (procs_daemon_start(path, o->o_budget, o->o_swapdir, why,
	    sizeof(why)) != 0)
		die(2, "the upvmd mode needs %s", why);
}

/* thp_mode: the kernel's transparent huge page setting, e.g. "madvise". */
static const char *
thp_mode(void)
{
	static char buf[128];
	char *l, *r;
	FILE *f;

	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f == NULL)
		return "?";
	l = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (l == NULL || (l = strchr(buf, '[')) == NULL ||
	    (r = strchr(l, ']')) == NULL)
		return "?";
	*r = '\0';
	return l + 1;
}

/* The run of one mode: where it is, for messages. */
struct where {
	const struct opts	*wh_o;
	const struct workload	*wh_wl;
	const struct mode	*wh_md;
	unsigned		 wh_threads;
	unsigned		 wh_repeat;
};

/* add_run: account the counter deltas and results of one run to rc. */
static void
add_run(struct record *rc, const struct sample *b, const struct sample *a,
    const struct wl_result *res, uint64_t peak)
{
	struct run *r = &rc->rc_runs[rc->rc_nruns++];
	struct sample *t = &rc->rc_total;
	uint64_t fr, pr;
	int i;

	r->r_seconds = res->wr_seconds;
	r->r_bytes = res->wr_pages * pagesize;
	r->r_gib_per_s = r->r_seconds > 0 ?
	    (double)r->r_bytes / r->r_seconds / (1 << 30) : 0;
	r->r_faults = a->s_faults - b->s_faults;
	r->r_pageins = a->s_pageins - b->s_pageins;
	r->r_pageouts = a->s_pageouts - b->s_pageouts;
	r->r_cpu_ns = a->s_cpu_ns - b->s_cpu_ns;
	r->r_proc_ns = a->s_proc_ns - b->s_proc_ns;
	r->r_rss_max = res->wr_rss_max;
	r->r_peak = peak;
	fr = a->s_faults_resolved - b->s_faults_resolved;
	pr = a->s_pages_resolved - b->s_pages_resolved;
	if (rc->rc_upvm)
		r->r_pages_per_fault = fr > 0 ? (double)pr / (double)fr : 0;
	else
		r->r_pages_per_fault = r->r_faults > 0 ?
		    (double)res->wr_pages / (double)r->r_faults : 0;
	t->s_faults += r->r_faults;
	t->s_faults_resolved += fr;
	t->s_pages_resolved += pr;
	t->s_pageins += r->r_pageins;
	t->s_pageouts += r->r_pageouts;
	t->s_cpu_ns += r->r_cpu_ns;
	t->s_proc_ns += r->r_proc_ns;
	if (a->s_reads_max > t->s_reads_max)
		t->s_reads_max = a->s_reads_max;
	for (i = 0; i < UPVM_CLUSTER_BUCKETS; i++)
		t->s_cluster_hist[i] += a->s_cluster_hist[i] -
		    b->s_cluster_hist[i];
	for (i = 0; i < UPVM_LATENCY_BUCKETS; i++) {
		t->s_latency_hist[i] += a->s_latency_hist[i] -
		    b->s_latency_hist[i];
		rc->rc_ophist[i] += res->wr_hist[i];
	}
}

/* check_data: die if the run read back a wrong word. */
static void
check_data(const struct where *wh, const struct wl_result *res)
{
	const struct wl_bad *bad = &res->wr_bad;

	if (bad->wb_page == SIZE_MAX)
		return;
	die(1, "%s T=%u %s repeat %u, %s: page %zu (offset %#zx) word %zu "
	    "reads %#llx, not %#llx; %s returned wrong data, report this line",
	    wh->wh_wl->wl_name, wh->wh_threads, wh->wh_md->md_name,
	    wh->wh_repeat + 1, wl_phase_name(bad->wb_phase), bad->wb_page,
	    bad->wb_page * pagesize, bad->wb_word,
	    (unsigned long long)bad->wb_got,
	    (unsigned long long)bad->wb_expected, wh->wh_md->md_name);
}

/* backing_close: the run's file goes (it has no name) */
static void
backing_close(void)
{
	if (backing_fd >= 0)
		close(backing_fd);
	backing_fd = -1;
	ks_set_backing(-1);
}

/* run_child: run_one() of a mode that runs in a child (kernel-swap). */
static void
run_child(const struct where *wh, struct wl_ctx *c, struct record *rc)
{
	char why[256];
	struct sample before, after;
	struct wl_result res;
	uint64_t peak;
	int error;

	error = ks_run(wh->wh_wl, c, &before, &after, bench_tick, &res,
	    &peak, why, sizeof(why));
	if (error == -EINTR)
		die_interrupted();
	if (error != 0)
		die(1, "%s T=%u %s repeat %u: %s; try a larger --budget or "
		    "fewer --threads", wh->wh_wl->wl_name, wh->wh_threads,
		    wh->wh_md->md_name, wh->wh_repeat + 1, why);
	check_data(wh, &res);
	add_run(rc, &before, &after, &res, peak);
}

/* What a --procs child needs: the run (its options too), the region. */
struct proc_arg {
	const struct where	*pa_wh;
	const struct wl_ctx	*pa_c;
};

static int (*proc_inner)(struct sample *);	/* child: the mode's */
static struct procs_msg *proc_msg;		/* child: its message */

/* proc_sample: the mode's sample, the time stamped (a child's run) */
static int
proc_sample(struct sample *s)
{
	procs_mark(proc_msg);
	return proc_inner(s);
}

static void __attribute__((format(printf, 3, 4)))
proc_fail(struct procs_msg *m, int error, const char *fmt, ...)
{
	va_list ap;

	m->pm_error = error;
	va_start(ap, fmt);
	vsnprintf(m->pm_why, sizeof(m->pm_why), fmt, ap);
	va_end(ap);
}

/*
 * proc_child: process i of a --procs run, in the child: join the cgroup or
 * start upvm (its own budget / N, or attached to upvmd), map, wait for the
 * start, run, unmap, stop upvm; the result into *m.
 */
static void
proc_child(unsigned i, void *arg, struct procs_msg *m)
{
	const struct proc_arg *pa = arg;
	const struct opts *o = pa->pa_wh->wh_o;
	const struct mode *md = pa->pa_wh->wh_md;
	struct upvm_config cfg = upvm_base_cfg;
	struct wl_ctx c = *pa->pa_c;
	int (*map)(size_t, void **) = md->md_map;
	int (*unmap)(void *, size_t) = md->md_unmap;
	size_t len = c.wc_npages * c.wc_pagesize;
	void *base;
	int error;

	proc_msg = m;
	proc_inner = md->md_sample;
	/* a random stream of its own: the processes do not move in step */
	c.wc_seed ^= (i + 1) * 0x9e3779b97f4a7c15ULL;
	if (md->md_child) {
		if ((error = ks_join()) != 0) {
			proc_fail(m, error, "cannot join the cgroup: %s",
			    strerror(-error));
			return;
		}
		map = native_map;
		unmap = native_unmap;
		proc_inner = ks_sample;
	} else if (md->md_upvm) {
		if (md->md_daemon) {
			snprintf(cfg.daemon, sizeof(cfg.daemon), "%s",
			    procs_daemon_socket());
			cfg.budget = 0;		/* upvmd's grants */
		} else if (o->o_budget > 0)
			cfg.budget = o->o_budget / o->o_procs;
		upvm_start(&cfg, md->md_wp, md->md_nonuma);
	}
	if ((error = map(len, &base)) != 0) {
		proc_fail(m, error, "cannot map %zu bytes: %s", len,
		    strerror(-error));
		return;
	}
	c.wc_base = base;
	if ((error = procs_ready()) == 0)
		error = wl_run(pa->pa_wh->wh_wl, &c, proc_sample,
		    &m->pm_before, &m->pm_after, NULL, &m->pm_res);
	if (error != 0)
		proc_fail(m, error, "cannot run: %s", strerror(-error));
	if ((error = unmap(base, len)) != 0 && m->pm_error == 0)
		proc_fail(m, error, "cannot unmap: %s", strerror(-error));
	if (upvm_up && (error = upvm_fini()) != 0 && m->pm_error == 0)
		proc_fail(m, error, "upvm_fini: %s", strerror(-error));
}

/*
 * run_procs: run_one() under --procs: the mode in o_procs processes at
 * once, each a run of rc; their aggregate and summed RssAnon a procs_run.
 */
static void
run_procs(const struct where *wh, struct wl_ctx *c, struct record *rc)
{
	const struct opts *o = wh->wh_o;
	struct proc_arg pa = { .pa_wh = wh, .pa_c = c };
	struct procs_msg *ms;
	uint64_t rss, peak = 0, bytes = 0, t0 = UINT64_MAX, t1 = 0;
	char why[512];
	int fd = -1, error;
	unsigned i;

	if ((ms = calloc(o->o_procs, sizeof(*ms))) == NULL)
		die(1, "out of memory; free some memory");
	if (wh->wh_md->md_child)
		fd = ks_peak_open();
	error = procs_run(o->o_procs, proc_child, &pa, bench_tick, ms, &rss,
	    why, sizeof(why));
	if (fd >= 0) {
		peak = ks_peak_read(fd);
		close(fd);
	}
	if (error == -EINTR)
		die_interrupted();
	if (error != 0)
		die(1, "%s T=%u %s repeat %u: %s; try a larger --budget or "
		    "fewer --procs", wh->wh_wl->wl_name, wh->wh_threads,
		    wh->wh_md->md_name, wh->wh_repeat + 1, why);
	for (i = 0; i < o->o_procs; i++) {
		check_data(wh, &ms[i].pm_res);
		add_run(rc, &ms[i].pm_before, &ms[i].pm_after, &ms[i].pm_res,
		    peak);
		bytes += ms[i].pm_res.wr_pages * pagesize;
		t0 = ms[i].pm_t0_ns < t0 ? ms[i].pm_t0_ns : t0;
		t1 = ms[i].pm_t1_ns > t1 ? ms[i].pm_t1_ns : t1;
	}
	rc->rc_pruns[rc->rc_nprocs_runs++] = (struct procs_run){
		.pr_agg_gib_per_s = t1 > t0 ? (double)bytes / ((double)(t1 -
		    t0) * 1e-9) / (1 << 30) : 0,
		.pr_rss_sum_max = rss,
	};
	free(ms);
}

/*
 * run_one: map, touch, verify and unmap one region; account it to rc.
 * Dies on any failure: a benchmark that lost a run must not look whole.
 */
static void
run_one(const struct where *wh, struct wl_ctx *c, struct record *rc)
{
	const struct mode *md = wh->wh_md;
	struct sample before, after;
	struct wl_result res;
	void *base;
	int error;

	c->wc_rss = rc->rc_budget > 0 && backing_dir == NULL;
	if (rc->rc_procs > 0) {
		run_procs(wh, c, rc);
		return;
	}
	if (backing_dir != NULL &&
	    (backing_fd = fb_create(backing_dir, rc->rc_bytes)) < 0)
		die(1, "--backing file: cannot make a file of %zu bytes in "
		    "%s: %s; give a writable --file-dir with room",
		    rc->rc_bytes, backing_dir, strerror(-backing_fd));
	if (md->md_child) {
		ks_set_backing(backing_fd);
		run_child(wh, c, rc);
		backing_close();
		return;
	}
	if (md->md_upvm)
		upvm_start(&upvm_base_cfg, md->md_wp, md->md_nonuma);
	if ((error = md->md_map(rc->rc_bytes, &base)) != 0)
		die(1, "%s: cannot map %zu bytes: %s; try a smaller --size",
		    md->md_name, rc->rc_bytes, strerror(-error));
	c->wc_base = base;
	error = wl_run(wh->wh_wl, c, md->md_sample, &before, &after,
	    bench_tick, &res);
	if (error == -EINTR)
		die_interrupted();
	if (error != 0)
		die(1, "%s T=%u %s: cannot run: %s; try fewer --threads",
		    wh->wh_wl->wl_name, wh->wh_threads, md->md_name,
		    strerror(-error));
	check_data(wh, &res);
	if ((error = md->md_unmap(base, rc->rc_bytes)) != 0)
		die(1, "%s: cannot unmap %zu bytes at %p: %s; report this line",
		    md->md_name, rc->rc_bytes, base, strerror(-error));
	if (backing_fd >= 0) {
		if ((error = fb_verify(backing_fd, wh->wh_wl, c,
		    &res.wr_bad)) != 0)
			die(1, "--backing file: reading the file back: %s",
			    strerror(-error));
		check_data(wh, &res);
		backing_close();
	}
	add_run(rc, &before, &after, &res, 0);
}

/* progress_begin: a new progress line for the run about to start. */
static void
progress_begin(size_t step, size_t total, const struct where *wh)
{
	if (!progress_on)
		return;
	snprintf(progress_label, sizeof(progress_label), "[%zu/%zu] %s T=%u "
	    "%s ...", step, total, wh->wh_wl->wl_name, wh->wh_threads,
	    wh->wh_md->md_name);
	clock_gettime(CLOCK_MONOTONIC, &progress_start);
	progress_secs = 0;
	progress_show();
}

/* mode_budget: the budget that mode md runs under, 0: none. */
static uint64_t
mode_budget(const struct opts *o, const struct report_info *ri,
    const struct mode *md)
{
	if (md->md_child || md->md_daemon)
		return o->o_budget;
	if (md->md_upvm && o->o_procs > 0)
		return ri->ri_cfg.budget / o->o_procs;
	if (md->md_upvm)
		return ri->ri_cfg.budget;
	return 0;
}

/*
 * bench_group: every repeat of every mode for one workload and thread
 * count, the modes back to back within a repeat; then report them.
 */
static void
bench_group(const struct opts *o, const struct report_info *ri,
    const struct workload *wl, struct wl_ctx *c, struct report *rp,
    size_t *step, size_t total)
{
	struct record *rcs;
	struct where wh = { .wh_o = o, .wh_wl = wl,
	    .wh_threads = c->wc_nthreads };
	unsigned per = o->o_procs > 0 ? o->o_procs : 1;
	size_t m;

	if ((rcs = calloc(o->o_nmodes, sizeof(*rcs))) == NULL)
		die(1, "out of memory; free some memory");
	for (m = 0; m < o->o_nmodes; m++) {
		rcs[m] = (struct record){
			.rc_mode = o->o_modes[m]->md_name,
			.rc_workload = wl->wl_name,
			.rc_threads = c->wc_nthreads,
			.rc_bytes = o->o_size,
			.rc_pages = c->wc_npages,
			.rc_budget = mode_budget(o, ri, o->o_modes[m]),
			.rc_upvm = o->o_modes[m]->md_upvm,
			.rc_cpu = o->o_modes[m]->md_upvm ||
			    o->o_modes[m]->md_child,
			.rc_ops = (wl->wl_flags & WL_OPS) != 0,
			.rc_runs = calloc((size_t)o->o_repeat * per,
			    sizeof(struct run)),
			.rc_procs = o->o_procs,
			.rc_pruns = calloc(o->o_repeat,
			    sizeof(struct procs_run)),
		};
		rcs[m].rc_rss = rcs[m].rc_budget > 0;
		if (rcs[m].rc_runs == NULL || rcs[m].rc_pruns == NULL)
			die(1, "out of memory; free some memory");
	}
	c->wc_ops = o->o_ops != 0 ? o->o_ops :
	    c->wc_npages / c->wc_nthreads > 0 ?
	    c->wc_npages / c->wc_nthreads : 1;
	for (wh.wh_repeat = 0; wh.wh_repeat < o->o_repeat; wh.wh_repeat++) {
		for (m = 0; m < o->o_nmodes; m++) {
			if (got_signal)
				die_interrupted();
			wh.wh_md = o->o_modes[m];
			progress_begin(++*step, total, &wh);
			c->wc_gen += WL_GENS;
			run_one(&wh, c, &rcs[m]);
		}
	}
	progress_clear();
	report_group(rp, rcs, o->o_nmodes);
	for (m = 0; m < o->o_nmodes; m++) {
		free(rcs[m].rc_runs);
		free(rcs[m].rc_pruns);
	}
	free(rcs);
}

int
main(int argc, char **argv)
{
	struct report_info ri = { .ri_thp = thp_mode() };
	struct wl_ctx c = { 0 };
	struct report rp;
	struct opts o;
	size_t step = 0, total;
	size_t w, t;
	FILE *out = stdout;
	int error, status = 0;

	pagesize = (size_t)sysconf(_SC_PAGESIZE);
	parse_opts(argc, argv, &o);
	if (o.o_output != NULL && (out = fopen(o.o_output, "w")) == NULL)
		die(2, "cannot open --output %s: %s; give a writable path",
		    o.o_output, strerror(errno));
	total = o.o_nwls * o.o_nthreads * o.o_nmodes * o.o_repeat;
	progress_on = isatty(STDERR_FILENO);
	ri.ri_bytes = o.o_size;
	ri.ri_repeats = o.o_repeat;
	ri.ri_seed = o.o_seed;
	ri.ri_verify = o.o_verify;
	ri.ri_ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ri.ri_budget = o.o_budget;
	ri.ri_ops = o.o_ops;
	ri.ri_theta = o.o_theta;
	ri.ri_swapdir = o.o_swapdir;
	ri.ri_backing = o.o_file ? o.o_filedir : NULL;
	backing_dir = ri.ri_backing;
	catch_signals();
	start_kswap(&o, &ri);
	start_upvm(&o, &ri);
	start_upvmd(&o);
	ri.ri_procs = o.o_procs;
	report_begin(&rp, out, o.o_fmt, &ri);
	c.wc_npages = o.o_size / pagesize;
	c.wc_pagesize = pagesize;
	c.wc_seed = o.o_seed;
	c.wc_theta = o.o_theta;
	c.wc_verify = o.o_verify;
	for (w = 0; w < o.o_nwls; w++) {
		if ((error = wl_prepare(o.o_wls[w], &c, o.o_seed)) != 0)
			die(1, "%s: cannot prepare: %s; try a smaller --size",
			    o.o_wls[w]->wl_name, strerror(-error));
		for (t = 0; t < o.o_nthreads; t++) {
			c.wc_nthreads = o.o_threads[t];
			bench_group(&o, &ri, o.o_wls[w], &c, &rp, &step,
			    total);
		}
		wl_release(&c);
	}
	if (report_end(&rp) != 0 || (out != stdout && fclose(out) != 0))
		die(1, "cannot write the report: %s; check the disk",
		    strerror(errno));
	if (upvm_up && (error = upvm_fini()) != 0) {
		fprintf(stderr, "upvm-bench: upvm_fini: %s; report this line\n",
		    strerror(-error));
		status = 1;
	}
	if (ks_teardown() != 0)
		status = 1;
	if (procs_daemon_stop() != 0)
		status = 1;
	return status;
}
