/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * numa.c: `upvm numa`: show where upvm puts pages on this machine's NUMA
 * topology, counted page by page with move_pages(2): each placement
 * policy, then the demotion cascade of a node past its budget, then
 * promotion of demoted pages to the node of a thread that writes them.
 * Every page written is read back and checked.  (Run it in numa-vm where the
 * machine has one node.)
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "place.h"
#include "run.h"
#include "topo.h"
#include "upvm.h"

static struct numa_topo topo;
static size_t npages;
static int failures;

/* the value of word w of page i (never 0) */
static uint64_t
word(size_t i, size_t w)
{
	return (i << 20 | w) * 0x9e3779b97f4a7c15ull | 1;
}

static void
fill(char *p, size_t first, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t w = 0; w < 4096 / 8; w++)
			((uint64_t *)(p + i * 4096))[w] = word(first + i, w);
}

/* bad_slice: pages of [p, p + n) that do not hold pages first.. */
static size_t
bad_slice(const char *p, size_t first, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t w = 0; w < 4096 / 8; w++)
			if (((const uint64_t *)(p + i * 4096))[w] !=
			    word(first + i, w)) {
				bad++;
				break;
			}
	return bad;
}

static size_t
bad_pages(const char *p, size_t n)
{
	return bad_slice(p, 0, n);
}

/* count[node]: pages of [p, p + n) there; migrating ones (-ENOENT, or
   -EFAULT on 6.1) asked again */
static void
count_nodes(const char *p, size_t n, long *count)
{
	void **pages = malloc(n * sizeof(*pages));
	int *status = malloc(n * sizeof(*status));
	size_t i = 0;

	if (pages == NULL || status == NULL)
		run_die(1, "out of memory; try a smaller --size");
	for (int tries = 0; tries < 300; tries++) {
		memset(count, 0, sizeof(long) * NUMA_NODES_MAX);
		for (i = 0; i < n; i++)
			pages[i] = (void *)(p + i * 4096);
		if (numa_pages_nodes(pages, (long)n, status) != 0)
			run_die(1, "move_pages: %s", strerror(errno));
		for (i = 0; i < n && status[i] != -ENOENT &&
		    status[i] != -EFAULT; i++)
			if (status[i] >= 0 && status[i] < NUMA_NODES_MAX)
				count[status[i]]++;
		if (i == n)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	free(pages);
	free(status);
}

static void
start(const char *policy, const char *budgets)
{
	struct upvm_config cfg;
	int error;

	if (upvm_config_from_env(&cfg) != 0)
		run_die(2, "the UPVM_* environment is invalid (see above)");
	snprintf(cfg.numa, sizeof(cfg.numa), "%s", policy);
	snprintf(cfg.node_budget, sizeof(cfg.node_budget), "%s",
	    budgets != NULL ? budgets : "");
	if ((error = upvm_init(&cfg)) != 0)
		run_die(1, "upvm_init with numa %s: %s", policy,
		    strerror(-error));
}

static void
pin(int node)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int c = 0; c < topo.nt_maxcpu; c++)
		if (topo.nt_cpu_node[c] == node)
			CPU_SET(c, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

/* row: print a policy's counts and how many pages are where expected */
static void
row(const char *what, const long *count, long ok, size_t n, size_t bad)
{
	printf("%-22s", what);
	for (int node = 0; node < topo.nt_nnodes; node++)
		printf(" %7ld", count[node]);
	printf("   %6.2f%%  %s\n", 100.0 * (double)ok / (double)n,
	    bad == 0 ? "data ok" : "DATA LOST");
	if (bad != 0 || (size_t)ok != n)
		failures++;
}

static char *
map_region(void)
{
	void *p;
	int error;

	if ((error = upvm_map(npages * 4096, 0, &p)) != 0)
		run_die(1, "upvm_map: %s; try a smaller --size",
		    strerror(-error));
	return p;
}

static void
show_bind_interleave(void)
{
	long count[NUMA_NODES_MAX], ok, share;
	int k = __builtin_popcountll(topo.nt_memory);
	char policy[32];
	char *p;

	for (int node = -1; node < topo.nt_nnodes; node++) {
		if (node >= 0 && !(topo.nt_memory & (1ull << node)))
			continue;
		if (node >= 0)
			snprintf(policy, sizeof(policy), "bind:%d", node);
		else
			snprintf(policy, sizeof(policy), "interleave");
		start(policy, NULL);
		p = map_region();
		pin(0);
		fill(p, 0, npages);
		count_nodes(p, npages, count);
		ok = node >= 0 ? count[node] : 0;
		/* interleave: each node its share, give or take a page per
		   fault thread */
		share = (long)npages / k;
		for (int n = 0; node < 0 && n < topo.nt_nnodes; n++)
			if ((topo.nt_memory & (1ull << n)) &&
			    labs(count[n] - share) <= 16)
				ok += count[n];
		row(policy, count, ok, npages, bad_pages(p, npages));
		upvm_fini();
	}
}

struct writer {
	int	 node;
	char	*p;
	size_t	 first, n;
};

static void *
write_from(void *arg)
{
	struct writer *w = arg;

	pin(w->node);
	fill(w->p, w->first, w->n);
	return NULL;
}

static void
show_local(void)
{
	struct writer w[NUMA_NODES_MAX];
	pthread_t th[NUMA_NODES_MAX];
	long count[NUMA_NODES_MAX], all[NUMA_NODES_MAX] = { 0 }, ok = 0;
	size_t per, bad = 0;
	int nw = 0;
	char *p;

	for (int n = 0; n < topo.nt_nnodes; n++)
		nw += topo.nt_ncpus[n] > 0 && (topo.nt_memory & (1ull << n));
	/*
	 * Slices a resolution's window (up to FAULT_MAX_CLUSTER pages) apart:
	 * a fault resolves its neighbours too, on the faulting thread's
	 * node, and they would otherwise reach into the next writer's slice.
	 */
	per = npages / (size_t)nw / 2;
	start("local", NULL);
	p = map_region();
	nw = 0;
	for (int n = 0; n < topo.nt_nnodes; n++) {
		if (topo.nt_ncpus[n] == 0 || !(topo.nt_memory & (1ull << n)))
			continue;
		w[nw] = (struct writer){ n, p + (size_t)nw * 2 * per * 4096,
		    (size_t)nw * 2 * per, per };
		pthread_create(&th[nw], NULL, write_from, &w[nw]);
		nw++;
	}
	for (int i = 0; i < nw; i++) {
		pthread_join(th[i], NULL);
		count_nodes(w[i].p, per, count);
		ok += count[w[i].node];
		for (int n = 0; n < NUMA_NODES_MAX; n++)
			all[n] += count[n];
	}
	for (int i = 0; i < nw; i++)
		bad += bad_slice(w[i].p, w[i].first, per);
	row("local (a writer/node)", all, ok, per * (size_t)nw, bad);
	upvm_fini();
}

static void
show_nearest(const int *order)
{
	long count[NUMA_NODES_MAX], budget = (long)npages / 4;
	char budgets[32];
	char *p;

	snprintf(budgets, sizeof(budgets), "0=%ldK", budget * 4);
	start("nearest", budgets);
	p = map_region();
	pin(0);
	fill(p, 0, npages);
	count_nodes(p, npages, count);
	printf("  (nearest: node 0 budget %ld pages, filled to its high mark "
	    "(less 1/64, at least 64 pages); writer on node 0; then node %d, "
	    "the nearest to 0)\n", budget, order[1]);
	row("nearest", count, MIN(count[0], budget) + count[order[1]],
	    npages, bad_pages(p, npages));
	upvm_fini();
}

/* wait until node 0 is within its budget (the daemon demotes) */
static void
settle(const char *p, long *count, long budget)
{
	for (int i = 0; i < 600; i++) {
		count_nodes(p, npages, count);
		if (count[0] <= budget)
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	}
}

static void
show_demotion(const int *order, int norder)
{
	long count[NUMA_NODES_MAX], b0 = (long)npages / 2;
	long b1 = (long)npages / 4;
	struct upvm_stats st;
	char budgets[64];
	char *p;

	if (norder < 3) {
		printf("demotion: needs 3 nodes with memory\n");
		return;
	}
	snprintf(budgets, sizeof(budgets), "0=%ldK,%d=%ldK", b0 * 4,
	    order[1], b1 * 4);
	start("local", budgets);
	p = map_region();
	pin(0);
	fill(p, 0, npages);
	settle(p, count, b0);
	upvm_stats(&st);
	printf("\ndemotion: node budgets %s (pages: node 0 %ld, node %d "
	    "%ld); %zu pages written on node 0\n", budgets, b0, order[1], b1,
	    npages);
	printf("  distances from node 0:");
	for (int i = 1; i < norder; i++)
		printf(" node %d %d", order[i], topo.nt_dist[0][order[i]]);
	printf("\n  expected: node 0 keeps <= %ld, node %d (nearest) fills "
	    "to its high mark first, the rest to node %d\n", b0, order[1],
	    order[2]);
	row("local + node budgets", count,
	    (count[0] <= b0 ? count[0] : 0) +
	    (count[order[1]] <= b1 && count[order[1]] >= b1 - b1 / 16 ?
	    count[order[1]] : 0) + count[order[2]], npages,
	    bad_pages(p, npages));
	printf("  demoted off node 0: %llu pages; paged out to swap: %llu\n",
	    (unsigned long long)st.node_demoted[0],
	    (unsigned long long)st.pageouts);
	upvm_fini();
}

/* demote from node 0, then write everything from node w (a CPU node
   other than 0 and the nearest): numa_promote brings the units there */
static void
show_promotion(const int *order, int norder)
{
	long count[NUMA_NODES_MAX], b0 = (long)npages / 2;
	struct upvm_config cfg;
	struct upvm_stats st;
	int w = -1;
	char *p;

	for (int i = 2; i < norder && w < 0; i++)
		for (int c = 0; c < topo.nt_maxcpu; c++)
			if (topo.nt_cpu_node[c] == order[i])
				w = order[i];
	if (w < 0) {
		printf("promotion: needs CPUs on a third node\n");
		return;
	}
	if (upvm_config_from_env(&cfg) != 0)
		run_die(2, "the UPVM_* environment is invalid (see above)");
	snprintf(cfg.numa, sizeof(cfg.numa), "local");
	snprintf(cfg.node_budget, sizeof(cfg.node_budget), "0=%ldK", b0 * 4);
	cfg.numa_promote = true;
	if (upvm_init(&cfg) != 0)
		run_die(1, "upvm_init with numa_promote failed (see above)");
	p = map_region();
	pin(0);
	fill(p, 0, npages);
	settle(p, count, b0);
	printf("\npromotion: node budget 0=%ldK, %zu pages written on node 0, "
	    "then all written again on node %d\n", b0 * 4, npages, w);
	upvm_stats(&st);
	row("  after the demotion", count, (long)npages, npages, 0);
	printf("  demoted off node 0: %llu pages\n",
	    (unsigned long long)st.node_demoted[0]);
	pin(w);
	fill(p, 0, npages);
	count_nodes(p, npages, count);
	upvm_stats(&st);
	printf("  expected: none left on node %d (units written twice move to "
	    "the writer's node %d)\n", order[1], w);
	row("local + numa_promote", count, (long)npages - count[order[1]],
	    npages, bad_pages(p, npages));
	printf("  promoted to node %d: %llu pages\n", w,
	    (unsigned long long)st.node_promoted[w]);
	upvm_fini();
}

int
numa_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int order[NUMA_NODES_MAX], norder, c;
	char desc[512], *end;
	unsigned long mib = 32;

	run_prog = "upvm numa";
	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:", opts, NULL)) != -1)
		if (c != 's' || (mib = strtoul(optarg, &end, 10)) < 4 ||
		    mib > 4096 || (*end != '\0' && strcmp(end, "M") != 0))
			run_die(2, "use --size N or NM, N from 4 to "
			    "4096 (MiB)");
	npages = (size_t)mib << 8;
	numa_topo_probe(&topo);
	numa_topo_describe(&topo, desc, sizeof(desc));
	printf("topology: %s\ndistances:\n", desc);
	for (int i = 0; i < topo.nt_nnodes; i++) {
		printf("  node %d:", i);
		for (int j = 0; j < topo.nt_nnodes; j++)
			printf(" %3d", topo.nt_dist[i][j]);
		printf("\n");
	}
	if (__builtin_popcountll(topo.nt_memory) < 2)
		run_die(1, "this machine has one NUMA node with "
		    "memory; run it in a multi-node guest (numa-vm)");
	norder = numa_node_order(&topo, 0, order);
	printf("\n%zu pages per policy, counted with move_pages; "
	    "columns: pages per node\n%-22s", npages, "policy");
	for (int n = 0; n < topo.nt_nnodes; n++)
		printf("   node%d", n);
	printf("   as specified\n");
	show_bind_interleave();
	show_local();
	show_nearest(order);
	show_demotion(order, norder);
	show_promotion(order, norder);
	printf("%s\n", failures == 0 ? "numa: OK, every page where its policy "
	    "says and every page verified" : "numa: FAILED");
	return failures == 0 ? 0 : 1;
}
