/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_numa_policy.c: NUMA placement policy, pure: parsing, checking and
 * naming policies, node lists and budgets, and placement and demotion over
 * topologies made with numa_topo_build() (no libnuma, no system calls).
 *
 * The main topology has 4 nodes of 1 GiB; node 2 is nearer to node 0 than
 * node 1 is, and node 3 has memory but no CPUs:
 *
 *	     0   1   2   3
 *	0   10  31  21  41
 *	1   31  10  21  31
 *	2   21  21  10  21
 *	3   41  31  21  10
 *
 * Room is simulated: a node has room unless its bit is set in `full`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "policy.h"
#include "topo.h"

#define GiB		(1ULL << 30)
#define MiB		(1ULL << 20)
#define BIT(n)		((nodemask_t64)1 << (n))
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const int dist4[16] = {
	10, 31, 21, 41,
	31, 10, 21, 31,
	21, 21, 10, 21,
	41, 31, 21, 10,
};
static const int cpus4[4] = { 1, 1, 1, 0 };

/* the 4-node topology; mem2: node 2's memory (0: memory-less) */
static void
topo4(struct numa_topo *t, uint64_t mem2)
{
	const uint64_t mem[4] = { GiB, GiB, mem2, GiB };

	cr_assert_eq(numa_topo_build(t, 4, dist4, cpus4, mem), 0);
}

/* 2 nodes of 2 CPUs (0-1, 2-3), or 1 node of 4 CPUs; 1 GiB each */
static void
topo_small(struct numa_topo *t, int n)
{
	const int dist[4] = { 10, 20, 20, 10 }, cpus[2] = { 4 / n, 2 };
	const uint64_t mem[2] = { GiB, GiB };

	cr_assert_eq(numa_topo_build(t, n, dist, cpus, mem), 0);
}

/* the room test: no room on the nodes in *(nodemask_t64 *)arg */
static bool
room_has(void *arg, int node, long npages)
{
	cr_assert(node >= 0 && node < NUMA_NODES_MAX, "asked of node %d", node);
	cr_assert_gt(npages, 0);
	return (*(const nodemask_t64 *)arg & BIT(node)) == 0;
}

static const struct numa_room_ops room_ops = { room_has };

static struct numa_policy
parse_ok(const char *s)
{
	struct numa_policy p;
	char err[128] = "";

	memset(&p, 0, sizeof p);
	cr_assert_eq(numa_policy_parse(s, &p, err, (int)sizeof err), 0,
	    "\"%s\" rejected: %s", s, err);
	return p;
}

/* where `pol` puts a page faulted on node `local` */
static struct numa_target
place(const char *pol, const struct numa_topo *t, int local,
    nodemask_t64 full)
{
	struct numa_policy p = parse_ok(pol);
	struct numa_target tg;

	memset(&tg, 0, sizeof tg);
	numa_place(&p, t, local, &room_ops, &full, 1, &tg);
	return tg;
}

static int
demote(const struct numa_topo *t, int from, nodemask_t64 allowed,
    nodemask_t64 full)
{
	return numa_demote_target(t, from, allowed, &room_ops, &full, 8);
}

/* numa_node_order() from `from` must be exactly want[0..n-1] */
static void
expect_order(const struct numa_topo *t, int from, const int *want, int n)
{
	int order[NUMA_NODES_MAX];

	cr_assert_eq(numa_node_order(t, from, order), n, "from %d", from);
	for (int i = 0; i < n; i++)
		cr_assert_eq(order[i], want[i], "from %d, [%d]", from, i);
}

Test(numa_policy, build_four_nodes, .timeout = 5)
{
	struct numa_topo t;

	topo4(&t, GiB);
	cr_assert_eq(t.nt_nnodes, 4);
	cr_assert_eq(t.nt_present, 0xf);
	cr_assert_eq(t.nt_memory, 0xf, "node 3 is memory-only, not absent");
	cr_assert_eq(t.nt_ncpus[0], 1);
	cr_assert_eq(t.nt_ncpus[3], 0);
	cr_assert_eq(t.nt_mem_bytes[2], GiB);
	cr_assert_eq(t.nt_maxcpu, 3);
	cr_assert_not(t.nt_fallback);
	cr_assert_eq(numa_distance_of(&t, 0, 2), 21);
	cr_assert_eq(numa_distance_of(&t, 3, 0), 41);
	topo4(&t, 0);
	cr_assert_eq(t.nt_present, 0xf, "node 2 has a CPU");
	cr_assert_eq(t.nt_memory, 0xb);
}

Test(numa_policy, build_rejects_bad_input, .timeout = 5)
{
	static int big[65 * 65], bigcpus[65];
	static uint64_t bigmem[65];
	const uint64_t mem4[4] = { GiB, GiB, GiB, GiB };
	struct numa_topo t;
	int d[16];

	for (int i = 0; i < 65; i++) {
		for (int j = 0; j < 65; j++)
			big[i * 65 + j] = i == j ? 10 : 20;
		bigcpus[i] = 1;
		bigmem[i] = GiB;
	}
	cr_assert_eq(numa_topo_build(&t, 0, dist4, cpus4, mem4), -EINVAL);
	cr_assert_eq(numa_topo_build(&t, 65, big, bigcpus, bigmem), -EINVAL);
	for (int i = 0; i < 64; i++)		/* row stride 64 now */
		for (int j = 0; j < 64; j++)
			big[i * 64 + j] = i == j ? 10 : 20;
	cr_assert_eq(numa_topo_build(&t, 64, big, bigcpus, bigmem), 0);
	memcpy(d, dist4, sizeof d);
	d[5] = 20;				/* dist(1, 1) */
	cr_assert_eq(numa_topo_build(&t, 4, d, cpus4, mem4), -EINVAL);
	memcpy(d, dist4, sizeof d);
	d[1] = d[4] = 9;			/* dist(0, 1) below local */
	cr_assert_eq(numa_topo_build(&t, 4, d, cpus4, mem4), -EINVAL);
}

Test(numa_policy, cpu_node_follows_cpu_blocks, .timeout = 5)
{
	struct numa_topo t;

	topo4(&t, GiB);
	for (int cpu = 0; cpu < 3; cpu++)
		cr_assert_eq(numa_cpu_node(&t, cpu), cpu);
	cr_assert_eq(numa_cpu_node(&t, 3), 0, "no such CPU");
	cr_assert_eq(numa_cpu_node(&t, -1), 0);
	cr_assert_eq(numa_cpu_node(&t, NUMA_CPUS_MAX + 5), 0);
	topo_small(&t, 2);
	cr_assert_eq(numa_cpu_node(&t, 1), 0);
	cr_assert_eq(numa_cpu_node(&t, 2), 1);
	cr_assert_eq(numa_cpu_node(&t, 3), 1);
}

Test(numa_policy, node_order_by_distance_then_number, .timeout = 5)
{
	struct numa_topo t;

	topo4(&t, GiB);
	expect_order(&t, 0, (const int[]){ 0, 2, 1, 3 }, 4);
	expect_order(&t, 1, (const int[]){ 1, 2, 0, 3 }, 4);	/* 0=3 */
	expect_order(&t, 2, (const int[]){ 2, 0, 1, 3 }, 4);	/* 0=1=3 */
	expect_order(&t, 3, (const int[]){ 3, 2, 1, 0 }, 4);
}

Test(numa_policy, node_order_skips_nodes_without_memory, .timeout = 5)
{
	struct numa_topo t;

	topo4(&t, 0);
	expect_order(&t, 0, (const int[]){ 0, 1, 3 }, 3);
	expect_order(&t, 2, (const int[]){ 0, 1, 3 }, 3);	/* not 2 */
	expect_order(&t, 3, (const int[]){ 3, 1, 0 }, 3);
	topo_small(&t, 2);
	expect_order(&t, 1, (const int[]){ 1, 0 }, 2);
	topo_small(&t, 1);
	expect_order(&t, 0, (const int[]){ 0 }, 1);
}

/* every form of policy, and what it parses to */
static const struct {
	const char	*s;
	enum numa_kind	 kind;
	int		 node;		/* BIND, PREFERRED */
	nodemask_t64	 nodes;		/* INTERLEAVE */
} forms[] = {
	{ "none", NUMA_NONE, 0, 0 },
	{ "local", NUMA_LOCAL, 0, 0 },
	{ "bind:2", NUMA_BIND, 2, 0 },
	{ "bind:63", NUMA_BIND, 63, 0 },
	{ "preferred:1", NUMA_PREFERRED, 1, 0 },
	{ "interleave", NUMA_INTERLEAVE, 0, 0 },	/* 0: all with memory */
	{ "interleave:0,2", NUMA_INTERLEAVE, 0, 0x5 },
	{ "interleave:0-3", NUMA_INTERLEAVE, 0, 0xf },
	{ "nearest", NUMA_NEAREST, 0, 0 },
};

/* p and the form must agree on the fields that its kind uses */
static void
expect_form(const struct numa_policy *p, size_t i, const char *what)
{
	cr_assert_eq(p->np_kind, forms[i].kind, "%s: %s", forms[i].s, what);
	if (p->np_kind == NUMA_BIND || p->np_kind == NUMA_PREFERRED)
		cr_assert_eq(p->np_node, forms[i].node, "%s", what);
	if (p->np_kind == NUMA_INTERLEAVE)
		cr_assert_eq(p->np_nodes, forms[i].nodes, "%s", what);
}

Test(numa_policy, parse_every_form, .timeout = 5)
{
	for (size_t i = 0; i < NELEM(forms); i++) {
		struct numa_policy p = parse_ok(forms[i].s);

		expect_form(&p, i, forms[i].s);
	}
}

Test(numa_policy, parse_rejects_bad_policies_with_a_reason, .timeout = 5)
{
	static const char *const bad[] = {
		"", "bind", "bind:x", "bind:-1", "bind:64", "interleave:",
		"interleave:3-1", "fast", "local:1",
	};

	for (size_t i = 0; i < NELEM(bad); i++) {
		struct numa_policy p;
		char err[128] = "";

		cr_assert_eq(numa_policy_parse(bad[i], &p, err,
		    (int)sizeof err), -EINVAL, "\"%s\" accepted", bad[i]);
		cr_assert_neq(err[0], '\0', "\"%s\": no reason", bad[i]);
	}
}

Test(numa_policy, name_round_trips_through_parse, .timeout = 5)
{
	for (size_t i = 0; i < NELEM(forms); i++) {
		struct numa_policy p = parse_ok(forms[i].s), q;
		char name[128];

		numa_policy_name(&p, name, (int)sizeof name);
		q = parse_ok(name);
		expect_form(&q, i, name);
		if (strpbrk(forms[i].s, ",-") == NULL)	/* one spelling */
			cr_assert_str_eq(name, forms[i].s);
	}
}

/* numa_policy_check(parse_ok(s), t): a failure must give a reason */
static int
check(const char *s, const struct numa_topo *t)
{
	struct numa_policy p = parse_ok(s);
	char err[128] = "";
	int rc = numa_policy_check(&p, t, err, (int)sizeof err);

	cr_assert(rc == 0 || err[0] != '\0', "%s: no reason", s);
	return rc;
}

Test(numa_policy, check_names_only_nodes_with_memory, .timeout = 5)
{
	static const char *const good[] = { "none", "local", "nearest",
	    "interleave", "bind:3", "interleave:0,3" };
	struct numa_topo t4, tm;

	topo4(&t4, GiB);
	topo4(&tm, 0);				/* node 2 without memory */
	cr_assert_eq(check("bind:5", &t4), -EINVAL);
	cr_assert_eq(check("preferred:4", &t4), -EINVAL);
	cr_assert_eq(check("interleave:0-5", &t4), -EINVAL);
	cr_assert_eq(check("bind:2", &tm), -EINVAL);
	cr_assert_eq(check("preferred:2", &tm), -EINVAL);
	cr_assert_eq(check("interleave:0,2", &tm), -EINVAL);
	for (size_t i = 0; i < NELEM(good); i++)
		cr_assert_eq(check(good[i], &tm), 0, "%s", good[i]);
}

static nodemask_t64
nodelist(const char *s)
{
	nodemask_t64 m = 0;

	cr_assert_eq(numa_nodelist_parse(s, &m), 0, "\"%s\" rejected", s);
	return m;
}

Test(numa_policy, nodelist_parse, .timeout = 5)
{
	static const char *const bad[] = { "", "x", "64", "3-1", "0-64",
	    "1-", "0,", "-1" };
	nodemask_t64 m;

	cr_assert_eq(nodelist("1"), 0x2);
	cr_assert_eq(nodelist("0,2"), 0x5);
	cr_assert_eq(nodelist("0;2"), 0x5);
	cr_assert_eq(nodelist("0-3"), 0xf);
	cr_assert_eq(nodelist("0-1,3"), 0xb);
	cr_assert_eq(nodelist("63"), BIT(63));
	for (size_t i = 0; i < NELEM(bad); i++)
		cr_assert_eq(numa_nodelist_parse(bad[i], &m), -EINVAL,
		    "\"%s\" accepted", bad[i]);
}

Test(numa_policy, budgets_parse, .timeout = 5)
{
	static const char *const bad[] = { "0=", "=1G", "x=1G", "0=abc",
	    "64=1G", "0=1G,0=2G" };
	uint64_t b[NUMA_NODES_MAX];
	char err[128] = "";

	memset(b, 0xa5, sizeof b);	/* unnamed nodes must become 0 */
	cr_assert_eq(numa_budgets_parse("0=1G,1=512M", b, err,
	    (int)sizeof err), 0, "%s", err);
	cr_assert(b[0] == GiB && b[1] == 512 * MiB);
	for (int i = 2; i < NUMA_NODES_MAX; i++)
		cr_assert_eq(b[i], 0, "node %d", i);
	cr_assert_eq(numa_budgets_parse("0=1G;2=4M", b, err,
	    (int)sizeof err), 0, "%s", err);
	cr_assert(b[0] == GiB && b[1] == 0 && b[2] == 4 * MiB);
	cr_assert_eq(numa_budgets_parse("3=2048K,63=1T", b, err,
	    (int)sizeof err), 0, "%s", err);
	cr_assert(b[3] == 2 * MiB && b[63] == 1024 * GiB);
	for (size_t i = 0; i < NELEM(bad); i++) {
		err[0] = '\0';
		cr_assert_eq(numa_budgets_parse(bad[i], b, err,
		    (int)sizeof err), -EINVAL, "\"%s\" accepted", bad[i]);
		cr_assert_neq(err[0], '\0', "\"%s\": no reason", bad[i]);
	}
}

Test(numa_policy, place_each_kind, .timeout = 5)
{
	struct numa_target tg;
	struct numa_topo t;

	topo4(&t, GiB);
	tg = place("none", &t, 1, 0);
	cr_assert(tg.nt_mode == NUMA_MODE_DEFAULT && tg.nt_node == -1);
	tg = place("local", &t, 1, 0);
	cr_assert(tg.nt_mode == NUMA_MODE_PREFERRED && tg.nt_node == 1);
	tg = place("preferred:2", &t, 0, 0);
	cr_assert(tg.nt_mode == NUMA_MODE_PREFERRED && tg.nt_node == 2);
	tg = place("bind:3", &t, 0, 0xf);	/* strict: even when full */
	cr_assert(tg.nt_mode == NUMA_MODE_BIND && tg.nt_node == 3);
	cr_assert_eq(tg.nt_mask, BIT(3));
	tg = place("interleave", &t, 0, 0);
	cr_assert(tg.nt_mode == NUMA_MODE_INTERLEAVE && tg.nt_node == -1);
	cr_assert_eq(tg.nt_mask, 0xf);
	tg = place("interleave:0,2", &t, 3, 0);
	cr_assert(tg.nt_mode == NUMA_MODE_INTERLEAVE && tg.nt_node == -1);
	cr_assert_eq(tg.nt_mask, 0x5);
	topo4(&t, 0);
	cr_assert_eq(place("interleave", &t, 0, 0).nt_mask, 0xb);
	topo_small(&t, 1);
	cr_assert_eq(place("interleave", &t, 0, 0).nt_mask, 0x1);
}

/* `nearest` from `local` with the nodes in `full` full: PREFERRED where? */
static int
nearest(const struct numa_topo *t, int local, nodemask_t64 full)
{
	struct numa_target tg = place("nearest", t, local, full);

	cr_assert_eq(tg.nt_mode, NUMA_MODE_PREFERRED);
	return tg.nt_node;
}

Test(numa_policy, place_nearest_falls_back_by_distance, .timeout = 5)
{
	struct numa_topo t;

	topo4(&t, GiB);
	cr_assert_eq(nearest(&t, 0, 0), 0, "local has room");
	cr_assert_eq(nearest(&t, 0, 0x2), 0);
	cr_assert_eq(nearest(&t, 0, 0x1), 2);
	cr_assert_eq(nearest(&t, 0, 0x5), 1);
	cr_assert_eq(nearest(&t, 0, 0x7), 3);
	cr_assert_eq(nearest(&t, 0, 0xf), 0, "all full: local");
	cr_assert_eq(nearest(&t, 1, 0x6), 0, "0 and 3 tie: lower first");
	cr_assert_eq(nearest(&t, 3, 0x8), 2);
	topo_small(&t, 2);
	cr_assert_eq(nearest(&t, 1, 0x2), 0);
	cr_assert_eq(nearest(&t, 1, 0x3), 1);
	topo_small(&t, 1);
	cr_assert_eq(nearest(&t, 0, 0x1), 0);
}

Test(numa_policy, demote_target_nearest_with_room, .timeout = 5)
{
	struct numa_topo t;

	topo4(&t, GiB);
	cr_assert_eq(demote(&t, 0, 0xf, 0), 2);
	cr_assert_eq(demote(&t, 0, 0xb, 0), 1, "2 not allowed");
	cr_assert_eq(demote(&t, 1, 0xf, 0), 2);
	cr_assert_eq(demote(&t, 2, BIT(2), 0), -1, "bind: nowhere to go");
	cr_assert_eq(demote(&t, 0, 0xf, 0x4), 1);
	cr_assert_eq(demote(&t, 1, 0xf, 0x4), 0, "0 and 3 tie");
	cr_assert_eq(demote(&t, 0, 0xf, 0xe), -1, "not to itself");
	cr_assert_eq(demote(&t, 0, 0xf, 0xf), -1);
	topo_small(&t, 1);
	cr_assert_eq(demote(&t, 0, 0x1, 0), -1);
}

Test(numa_policy, allowed_nodes_per_policy, .timeout = 5)
{
	static const char *const all[] = { "none", "local", "nearest",
	    "preferred:1", "interleave" };
	struct numa_policy p;
	struct numa_topo t;

	topo4(&t, GiB);
	p = parse_ok("bind:2");
	cr_assert_eq(numa_allowed(&p, &t), BIT(2));
	p = parse_ok("interleave:0,2");
	cr_assert_eq(numa_allowed(&p, &t), 0x5);
	for (size_t i = 0; i < NELEM(all); i++) {
		p = parse_ok(all[i]);
		cr_assert_eq(numa_allowed(&p, &t), 0xf, "%s", all[i]);
	}
	topo4(&t, 0);
	p = parse_ok("local");
	cr_assert_eq(numa_allowed(&p, &t), 0xb);
}
