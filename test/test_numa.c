/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_numa.c: NUMA placement and demotion, end to end, checked page by
 * page with move_pages(2).  These tests need several nodes: on a machine
 * with one, they skip; CI runs them in numa-vm guests with 2 and 4 nodes
 * (asymmetric distances, a memory-only node).  Every test also checks the
 * contents of every page it wrote.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "place.h"
#include "topo.h"
#include "upvm.h"
#include "vm.h"

#define MIB		((size_t)1 << 20)
#define NPAGES		(16 * MIB / PAGE_SIZE)

static struct numa_topo topo;

/* the machine's topology; skip unless it has at least `nodes` nodes
   with memory */
static void
need_nodes(int nodes)
{
	numa_topo_probe(&topo);
	if (__builtin_popcountll(topo.nt_memory) < nodes)
		cr_skip_test("needs %d NUMA nodes with memory, this machine "
		    "has %d: run in numa-vm (see README)", nodes,
		    __builtin_popcountll(topo.nt_memory));
}

static void
init_numa(const char *policy, const char *node_budget)
{
	struct upvm_config cfg;

	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	strcpy(cfg.numa, policy);
	if (node_budget != NULL)
		strcpy(cfg.node_budget, node_budget);
	cr_assert_eq(upvm_init(&cfg), 0, "upvm_init with numa=%s", policy);
}

/*
 * count[node] = pages of [p, p + n pages) on each node (move_pages).  A
 * page the daemon is migrating right now reads as not present for a
 * moment (-ENOENT; -EFAULT on Linux 6.1, where a migration entry looks
 * like a missing page): ask again until none does.
 */
static void
count_nodes(const char *p, size_t n, long count[NUMA_NODES_MAX])
{
	static void *pages[NPAGES * 2];
	static int status[NPAGES * 2];
	size_t i;

	cr_assert_leq(n, NPAGES * 2);
	for (int tries = 0; tries < 500; tries++) {
		memset(count, 0, sizeof(long) * NUMA_NODES_MAX);
		for (i = 0; i < n; i++)
			pages[i] = (void *)(p + i * PAGE_SIZE);
		cr_assert_eq(numa_pages_nodes(pages, (long)n, status), 0);
		for (i = 0; i < n && status[i] != -ENOENT &&
		    status[i] != -EFAULT; i++) {
			cr_assert(status[i] >= 0 &&
			    status[i] < NUMA_NODES_MAX, "page %zu: "
			    "move_pages status %d", i, status[i]);
			count[status[i]]++;
		}
		if (i == n)
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 },
		    NULL);
	}
	cr_assert_fail("page %zu stays not present (%d)", i, status[i]);
}

static char *
map_fill(size_t n, uint64_t gen)
{
	void *p;

	cr_assert_eq(upvm_map(n * PAGE_SIZE, 0, &p), 0);
	test_pattern_fill(p, n, 0, gen);
	return p;
}

static void
pin_to_node(int node)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int c = 0; c < topo.nt_maxcpu; c++)
		if (topo.nt_cpu_node[c] == node)
			CPU_SET(c, &set);
	cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0);
}

/*
 * wait_placed: the fault thread counts a piece just after its copy woke
 * the writer: let the last count land (1 s at most) before it is checked.
 */
static void
wait_placed(int node, uint64_t want)
{
	for (int i = 0; i < 100 && test_stats().node_placed[node] != want;
	    i++)
		usleep(10000);
}

Test(numa, bind_places_every_page_on_its_node, .timeout = 300)
{
	long count[NUMA_NODES_MAX];
	char policy[16], *p;

	need_nodes(2);
	for (int node = 0; node < topo.nt_nnodes; node++) {
		if (!(topo.nt_memory & (1ull << node)))
			continue;
		snprintf(policy, sizeof(policy), "bind:%d", node);
		init_numa(policy, NULL);
		p = map_fill(NPAGES, (uint64_t)node + 1);
		count_nodes(p, NPAGES, count);
		cr_assert_eq(count[node], (long)NPAGES, "%s: %ld of %zu pages "
		    "on node %d", policy, count[node], NPAGES, node);
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0,
		    (uint64_t)node + 1), -1);
		wait_placed(node, NPAGES);
		cr_assert_eq(test_stats().node_placed[node], NPAGES);
		cr_assert_eq(upvm_unmap(p, NPAGES * PAGE_SIZE), 0);
		cr_assert_eq(upvm_fini(), 0);
	}
}

/* interleave: every allowed node gets its share, give or take a page per
   fault thread (each interleaves on its own), and no other node any */
static void
check_interleave(const char *policy, nodemask_t64 nodes)
{
	long count[NUMA_NODES_MAX], share;
	int k = __builtin_popcountll(nodes);
	unsigned handlers;
	char *p;

	init_numa(policy, NULL);
	handlers = test_stats().handlers;
	p = map_fill(NPAGES, 7);
	count_nodes(p, NPAGES, count);
	share = (long)NPAGES / k;
	for (int n = 0; n < NUMA_NODES_MAX; n++) {
		if (!(nodes & (1ull << n))) {
			cr_assert_eq(count[n], 0, "%s: %ld pages on node %d",
			    policy, count[n], n);
			continue;
		}
		cr_assert(count[n] >= share - (long)handlers &&
		    count[n] <= share + (long)handlers, "%s: node %d has %ld "
		    "pages, its share is %ld", policy, n, count[n], share);
		wait_placed(n, (uint64_t)count[n]);
		cr_assert_eq(test_stats().node_placed[n], (uint64_t)count[n],
		    "%s: node %d: %lu counted as placed, %ld there", policy,
		    n, (unsigned long)test_stats().node_placed[n], count[n]);
	}
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 7), -1);
	cr_assert_eq(upvm_fini(), 0);
}

Test(numa, interleave_spreads_pages_evenly, .timeout = 300)
{
	need_nodes(2);
	check_interleave("interleave", topo.nt_memory);
	check_interleave("interleave:0-1", 0x3);
}

struct local_arg {
	int	 node;
	char	*p;
	size_t	 n;
};

static void *
local_writer(void *arg)
{
	struct local_arg *a = arg;

	pin_to_node(a->node);
	test_pattern_fill(a->p, a->n, (size_t)a->node * 2 * a->n, 3);
	return NULL;
}

Test(numa, local_follows_the_faulting_thread, .timeout = 300)
{
	struct local_arg args[NUMA_NODES_MAX];
	pthread_t th[NUMA_NODES_MAX];
	long count[NUMA_NODES_MAX];
	size_t per = NPAGES / 4;
	int nt = 0;
	void *p;

	need_nodes(2);
	init_numa("local", NULL);
	/* slices a resolution window apart: a fault resolves its neighbours
	   on its own thread's node */
	cr_assert_eq(upvm_map(2 * per * PAGE_SIZE * NUMA_NODES_MAX, 0, &p), 0);
	for (int node = 0; node < topo.nt_nnodes; node++) {
		if (topo.nt_ncpus[node] == 0 ||
		    !(topo.nt_memory & (1ull << node)))
			continue;
		args[nt] = (struct local_arg){ node, (char *)p +
		    (size_t)node * 2 * per * PAGE_SIZE, per };
		cr_assert_eq(pthread_create(&th[nt], NULL, local_writer,
		    &args[nt]), 0);
		nt++;
	}
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < nt; i++) {
		count_nodes(args[i].p, per, count);
		cr_assert_eq(count[args[i].node], (long)per, "a thread on "
		    "node %d has %ld of its %zu pages there", args[i].node,
		    count[args[i].node], per);
		cr_assert_eq(test_pattern_bad(args[i].p, per,
		    (size_t)args[i].node * 2 * per, 3), -1);
	}
	cr_assert_eq(upvm_fini(), 0);
}

/* nearest: a full local node sends pages to the nearest node with room */
Test(numa, nearest_fills_local_then_the_nearest_node, .timeout = 300)
{
	long count[NUMA_NODES_MAX], budget = (long)(4 * MIB / PAGE_SIZE);
	int order[NUMA_NODES_MAX];
	char *p;

	need_nodes(2);
	numa_node_order(&topo, 0, order);
	pin_to_node(0);
	init_numa("nearest", "0=4M");
	p = map_fill(NPAGES, 5);
	count_nodes(p, NPAGES, count);
	cr_assert_leq(count[0], budget, "node 0 holds %ld pages, budget %ld",
	    count[0], budget);
	cr_assert_geq(count[0], budget - 64, "node 0 holds only %ld pages, "
	    "budget %ld (placed there %lu)", count[0], budget,
	    (unsigned long)test_stats().node_placed[0]);
	cr_assert_eq(count[0] + count[order[1]], (long)NPAGES, "the rest "
	    "went to node %d (nearest to 0): %ld pages", order[1],
	    count[order[1]]);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 5), -1);
	cr_assert_eq(upvm_fini(), 0);
}

/* wait until node `node` holds at most `max` of the n pages at p */
static void
wait_node_at_most(const char *p, size_t n, int node, long max)
{
	long count[NUMA_NODES_MAX];

	for (int i = 0; i < 600; i++) {
		count_nodes(p, n, count);
		if (count[node] <= max)
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 },
		    NULL);
	}
	cr_assert_fail("node %d still holds %ld pages after 30 s, budget %ld",
	    node, count[node], max);
}

/*
 * wait_demotion_quiet: the daemon demotes in batches down to the node's
 * low mark, after it is already under its budget: wait until node
 * `node` has demoted nothing for 300 ms (15 s at most).
 */
static void
wait_demotion_quiet(int node)
{
	uint64_t last = UINT64_MAX, now;
	int quiet = 0;

	for (int i = 0; i < 150 && quiet < 3; i++) {
		now = test_stats().node_demoted[node];
		quiet = now == last ? quiet + 1 : 0;
		last = now;
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 },
		    NULL);
	}
}

/*
 * Demotion: node 0 (budget 8M) is overfilled by a thread on node 0; its
 * coldest pages go to the nearest node first until that node's budget
 * (4M) is reached, then to the next nearest.  Nothing goes to swap.
 */
Test(numa, demotion_goes_to_the_nearest_node_first, .timeout = 300)
{
	long count[NUMA_NODES_MAX], b0 = (long)(8 * MIB / PAGE_SIZE);
	long b1 = (long)(4 * MIB / PAGE_SIZE);
	int order[NUMA_NODES_MAX], n = NPAGES * 2;
	struct upvm_stats st;
	char budgets[64], *p;

	need_nodes(3);
	numa_node_order(&topo, 0, order);
	snprintf(budgets, sizeof(budgets), "0=8M,%d=4M", order[1]);
	pin_to_node(0);
	init_numa("local", budgets);
	p = map_fill((size_t)n, 9);
	wait_node_at_most(p, (size_t)n, 0, b0);
	count_nodes(p, (size_t)n, count);
	cr_assert_leq(count[order[1]], b1, "node %d (nearest) got %ld pages, "
	    "over its budget %ld", order[1], count[order[1]], b1);
	cr_assert_geq(count[order[1]], b1 - b1 / 16, "node %d (nearest) got "
	    "only %ld pages before node %d got %ld", order[1],
	    count[order[1]], order[2], count[order[2]]);
	cr_assert_eq(count[0] + count[order[1]] + count[order[2]], n,
	    "pages beyond the two nearest nodes (%d, %d)", order[1],
	    order[2]);
	cr_assert_eq(test_pattern_bad(p, (size_t)n, 0, 9), -1);
	st = test_stats();
	cr_assert_eq(st.pageouts, 0, "demotion paged %lu pages out",
	    (unsigned long)st.pageouts);
	cr_assert_geq(st.node_demoted[0], (uint64_t)(n - b0));
	cr_assert_eq(upvm_fini(), 0);
}

/*
 * Promotion: node 0 (budget 8M) demotes to its nearest node; then a
 * thread on a third node writes every page again.  With numa_promote,
 * each demoted unit's second write fault brings the unit to the writer's
 * node, and none stays behind; without it (the control), no page moves.
 */
static void
demote_then_write_from(bool promote)
{
	long count[NUMA_NODES_MAX], before[NUMA_NODES_MAX];
	long b0 = (long)(8 * MIB / PAGE_SIZE);
	int order[NUMA_NODES_MAX], n = NPAGES, w = -1;
	struct upvm_config cfg;
	struct upvm_stats st;
	char *p;

	need_nodes(3);
	numa_node_order(&topo, 0, order);
	for (int i = 2; i < topo.nt_nnodes && w < 0; i++)
		for (int c = 0; c < topo.nt_maxcpu; c++)
			if (topo.nt_cpu_node[c] == order[i])
				w = order[i];
	if (w < 0)
		cr_skip_test("needs CPUs on a node other than 0 and %d",
		    order[1]);
	pin_to_node(0);
	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	strcpy(cfg.numa, "local");
	strcpy(cfg.node_budget, "0=8M");
	cfg.numa_promote = promote;
	cr_assert_eq(upvm_init(&cfg), 0);
	p = map_fill((size_t)n, 21);
	wait_node_at_most(p, (size_t)n, 0, b0);
	wait_demotion_quiet(0);
	count_nodes(p, (size_t)n, before);
	cr_assert_geq(before[order[1]], n - b0, "node %d (nearest) holds %ld "
	    "demoted pages", order[1], before[order[1]]);
	pin_to_node(w);
	test_pattern_fill(p, (size_t)n, 0, 22);
	count_nodes(p, (size_t)n, count);
	st = test_stats();
	if (promote) {
		cr_assert_eq(count[order[1]], 0, "%ld pages written from node "
		    "%d stay on node %d", count[order[1]], w, order[1]);
		cr_assert_geq(count[w], n - b0);
		/* every page that arrived, upvm moved */
		cr_assert_geq(st.node_promoted[w], (uint64_t)count[w],
		    "promoted %lu to node %d; before %ld/%ld/%ld, after "
		    "%ld/%ld/%ld (nodes 0/%d/%d)",
		    (unsigned long)st.node_promoted[w], w, before[0],
		    before[order[1]], before[w], count[0], count[order[1]],
		    count[w], order[1], w);
	} else {
		for (int i = 0; i < topo.nt_nnodes; i++)
			cr_assert_eq(count[i], before[i], "without "
			    "numa_promote, node %d went from %ld pages to %ld",
			    i, before[i], count[i]);
		cr_assert_eq(st.node_promoted[w], 0);
	}
	cr_assert_eq(test_pattern_bad(p, (size_t)n, 0, 22), -1);
	cr_assert_eq(upvm_fini(), 0);
}

Test(numa, promotion_brings_written_units_to_the_writer_node,
    .timeout = 300)
{
	demote_then_write_from(true);
}

Test(numa, without_promotion_demoted_pages_stay, .timeout = 300)
{
	demote_then_write_from(false);
}

/* every node full: the rest goes to swap, and every page comes back */
Test(numa, full_nodes_page_out_to_swap, .timeout = 300)
{
	char budgets[128], *p;
	int off = 0, n = NPAGES * 2;
	struct upvm_stats st;

	need_nodes(2);
	for (int node = 0; node < topo.nt_nnodes; node++)
		if (topo.nt_memory & (1ull << node))
			off += snprintf(budgets + off, sizeof(budgets) -
			    (size_t)off, "%s%d=4M", off ? "," : "", node);
	init_numa("local", budgets);
	p = map_fill((size_t)n, 11);
	cr_assert_eq(test_pattern_bad(p, (size_t)n, 0, 11), -1);
	st = test_stats();
	cr_assert_gt(st.pageouts, 0);
	cr_assert_eq(st.budget_pages, (uint64_t)__builtin_popcountll(
	    topo.nt_memory) * (4 * MIB / PAGE_SIZE));
	cr_assert_eq(upvm_fini(), 0);
}

Test(numa, a_policy_naming_a_missing_node_fails_clearly)
{
	struct upvm_config cfg;
	char policy[32];

	numa_topo_probe(&topo);
	test_log_capture();
	upvm_config_default(&cfg);
	snprintf(policy, sizeof(policy), "bind:%d", topo.nt_nnodes);
	strcpy(cfg.numa, policy);
	cr_assert_eq(upvm_init(&cfg), -EINVAL);
	test_expect_one_line("bind to a missing node", "bind");
	upvm_config_default(&cfg);
	snprintf(cfg.node_budget, sizeof(cfg.node_budget), "%d=1G",
	    topo.nt_nnodes);
	cr_assert_eq(upvm_init(&cfg), -EINVAL);
	test_expect_one_line("a budget for a missing node", "node");
}

/* numa_promote needs node budgets, a policy with a home node, and
   writes that fault (not pageout=move) */
Test(numa, promotion_without_what_it_needs_fails_clearly)
{
	struct upvm_config cfg;

	numa_topo_probe(&topo);
	test_log_capture();
	upvm_config_default(&cfg);
	cfg.numa_promote = true;
	cr_assert_eq(upvm_init(&cfg), -EINVAL);
	test_expect_one_line("promotion without node budgets", "node_budget");
	strcpy(cfg.node_budget, "0=64M");
	strcpy(cfg.numa, "interleave");
	cr_assert_eq(upvm_init(&cfg), -EINVAL);
	test_expect_one_line("promotion with interleave", "home node");
	strcpy(cfg.numa, "local");
	cfg.pageout = UPVM_PAGEOUT_MOVE;
	cr_assert_eq(upvm_init(&cfg), -EINVAL);
	test_expect_one_line("promotion with pageout=move", "pageout=auto");
}

Test(numa, placement_off_sets_no_policy)
{
	numa_topo_probe(&topo);
	init_numa("none", NULL);
	cr_assert_eq(test_stats().numa_nodes, 0);
	cr_assert_eq(upvm_fini(), 0);
}

/* placement on or off, a sequential fill maps its clusters in pieces of
   FAULT_CHUNK pages, not page by page (every page checked) */
Test(numa, placement_keeps_copies_whole, .timeout = 60)
{
	static const char *const policies[] = { "none", "local" };
	struct upvm_stats st;
	char *p;

	numa_topo_probe(&topo);
	for (int i = 0; i < 2; i++) {
		init_numa(policies[i], NULL);
		p = map_fill(NPAGES, 23);
		cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 23), -1);
		st = test_stats();
		cr_assert_leq(st.copies * 16, st.pages_resolved, "numa=%s: "
		    "%lu UFFDIO_COPY calls for %lu pages", policies[i],
		    (unsigned long)st.copies,
		    (unsigned long)st.pages_resolved);
		cr_assert_eq(upvm_fini(), 0);
	}
}

Test(numa, preferred_places_on_its_node_while_it_has_memory, .timeout = 300)
{
	long count[NUMA_NODES_MAX];
	char policy[24], *p;
	int node;

	need_nodes(2);
	node = 63 - __builtin_clzll(topo.nt_memory);	/* the last one */
	snprintf(policy, sizeof(policy), "preferred:%d", node);
	init_numa(policy, NULL);
	p = map_fill(NPAGES, 13);
	count_nodes(p, NPAGES, count);
	cr_assert_eq(count[node], (long)NPAGES, "%s: %ld of %zu pages there",
	    policy, count[node], NPAGES);
	cr_assert_eq(test_pattern_bad(p, NPAGES, 0, 13), -1);
	cr_assert_eq(upvm_fini(), 0);
}

/* a child of fork places the pages of its own new region by the policy
   (the pages it shares with its parent are the kernel's copy-on-write),
   and both keep every page they had */
Test(numa, the_child_of_fork_places_by_policy, .timeout = 300)
{
	long count[NUMA_NODES_MAX];
	int status, node;
	char policy[24], *p, *q;
	pid_t pid;

	need_nodes(2);
	node = 63 - __builtin_clzll(topo.nt_memory);
	snprintf(policy, sizeof(policy), "bind:%d", node);
	init_numa(policy, NULL);
	p = map_fill(NPAGES / 2, 17);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (upvm_map(NPAGES / 2 * PAGE_SIZE, 0, (void **)&q) != 0)
			_exit(3);
		test_pattern_fill(q, NPAGES / 2, 0, 18);
		count_nodes(q, NPAGES / 2, count);
		_exit(test_pattern_bad(p, NPAGES / 2, 0, 17) != -1 ? 1 :
		    test_pattern_bad(q, NPAGES / 2, 0, 18) != -1 ? 1 :
		    count[node] != NPAGES / 2 ? 2 : 0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child: status %#x (1: a page lost, 2: misplaced, 3: upvm_map "
	    "failed)", status);
	cr_assert_eq(test_pattern_bad(p, NPAGES / 2, 0, 17), -1);
	q = map_fill(NPAGES / 2, 19);
	count_nodes(q, NPAGES / 2, count);
	cr_assert_eq(count[node], (long)NPAGES / 2, "parent after fork: %ld "
	    "of %zu pages on node %d", count[node], NPAGES / 2, node);
	cr_assert_eq(test_pattern_bad(q, NPAGES / 2, 0, 19), -1);
	cr_assert_eq(upvm_fini(), 0);
}
