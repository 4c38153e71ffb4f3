/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * policy.h: NUMA placement policy, pure (no locks, threads or system
 * calls): which node a resolution's pages go to, and which node a full
 * node's pages are demoted to.  The mechanism (place.c, the pageout
 * daemon) asks; the policy answers from the topology and a room test the
 * mechanism provides.
 *
 *	policy		the pages of a fault go to
 *	none		wherever the kernel puts them (upvm sets no policy)
 *	local		the node of the faulting thread's CPU (default)
 *	bind:N		node N, strictly (the kernel fails rather than spill)
 *	preferred:N	node N; another node when N is out of memory
 *	interleave[:NODES]  page by page round robin over NODES (default:
 *			every node with memory); NODES as numactl: 0,2 or 0-3
 *	nearest		the faulting thread's node while it has room, else
 *			the nearest node by distance that has room
 *
 * Room: a node with a budget (node_budget) has room while its resident
 * pages stay within its high mark (the budget less a gap, where demotion
 * starts: filling to the budget itself would only feed demotion); a node
 * without one while the kernel reports free memory above 1/64 of the
 * node.  When no node has room, `nearest`
 * answers the local node (the pageout daemon makes room).
 *
 * Demotion: a node past its budget sends its coldest pages to the nearest
 * node (by distance from it) that has room; -1 when none has: then the
 * pages stay, and the global budget pages them out to swap.
 */
#ifndef UPVM_NUMA_POLICY_H
#define UPVM_NUMA_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "topo.h"

enum numa_kind {
	NUMA_NONE,
	NUMA_LOCAL,
	NUMA_BIND,
	NUMA_PREFERRED,
	NUMA_INTERLEAVE,
	NUMA_NEAREST,
};

struct numa_policy {
	enum numa_kind	np_kind;
	int		np_node;	/* BIND, PREFERRED */
	nodemask_t64	np_nodes;	/* INTERLEAVE; 0: all with memory */
};

/*
 * numa_policy_parse: a policy from its text (table above).
 * => 0, or -EINVAL with a reason in err (no log: the caller logs it).
 */
int numa_policy_parse(const char *s, struct numa_policy *, char *err,
    int errlen);

/*
 * numa_policy_check: the policy names only nodes of this topology that
 * have memory.  => 0, or -EINVAL with a reason in err.
 */
int numa_policy_check(const struct numa_policy *, const struct numa_topo *,
    char *err, int errlen);

/* numa_policy_name: the policy as numa_policy_parse() reads it */
void numa_policy_name(const struct numa_policy *, char *buf, int len);

/*
 * numa_nodelist_parse: "0,2", "0-3", "1" (also ';' between items, for
 * UPVM_CONF) into a mask.  => 0, or -EINVAL (empty, malformed, a node
 * past NUMA_NODES_MAX - 1).
 */
int numa_nodelist_parse(const char *s, nodemask_t64 *);

/*
 * numa_budgets_parse: "0=1G,1=512M" (or ';'): bytes per node; nodes not
 * named get 0 (no budget).  Sizes take K/M/G/T suffixes.
 * => 0, or -EINVAL with a reason in err.
 */
int numa_budgets_parse(const char *s, uint64_t bytes[NUMA_NODES_MAX],
    char *err, int errlen);

/* where a resolution's pages go: the memory policy for the kernel */
enum numa_mode {
	NUMA_MODE_DEFAULT,	/* no policy: the kernel's default */
	NUMA_MODE_BIND,		/* the nodes in nt_mask only */
	NUMA_MODE_PREFERRED,	/* nt_node first */
	NUMA_MODE_INTERLEAVE,	/* round robin over nt_mask */
};

struct numa_target {
	enum numa_mode	nt_mode;
	int		nt_node;	/* BIND, PREFERRED: the node; else -1 */
	nodemask_t64	nt_mask;
	long		nt_reserved;	/* pages already counted on nt_node
					   (the mechanism's; 0 here) */
};

/* the mechanism's answer to "does this node have room for n pages?" */
struct numa_room_ops {
	bool	(*nr_has_room)(void *arg, int node, long npages);
};

/*
 * numa_place: the target for npages faulted by a thread on node `local`.
 */
void numa_place(const struct numa_policy *, const struct numa_topo *,
    int local, const struct numa_room_ops *, void *arg, long npages,
    struct numa_target *);

/*
 * numa_demote_target: the nearest node to `from` (not `from`) with room
 * for npages, or -1.  allowed: nodes the pages may go to (a bind policy
 * allows only its node: nothing to demote to).
 */
int numa_demote_target(const struct numa_topo *, int from,
    nodemask_t64 allowed, const struct numa_room_ops *, void *arg,
    long npages);

/* numa_allowed: the nodes a policy lets pages live on */
nodemask_t64 numa_allowed(const struct numa_policy *,
    const struct numa_topo *);

#endif /* UPVM_NUMA_POLICY_H */
