/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * place.h: NUMA placement mechanism of one vmspace.
 *
 * A page lands on node N because the fault thread that resolves it (its
 * UFFDIO_COPY allocates the page) has its own memory policy set to N at
 * that moment: numa_prepare() sets it with set_mempolicy(2) before each
 * resolution, and only when it differs from the thread's current one (a
 * per-thread cache), so a run of faults for one node costs one system
 * call.  (The alternative, one fault thread per node and a hand-off from
 * the thread that read the event, costs a wake-up per fault; see the
 * README's NUMA section for the measurement.)  Regions carry no policy of
 * their own (no mbind), so the thread's policy decides.
 *
 * Pages mapped without a fault thread (the kernel's copy-on-write after
 * fork, pages moved back by UFFDIO_MOVE) stay where the kernel put them;
 * the per-node resident counts learn about them at the next resync.
 *
 * Per-node resident counts: placements add, demotions move, and the
 * pageout daemon resyncs them from /proc/self/numa_maps (the kernel's
 * count per VMA) at most every NUMA_RESYNC_MS while node budgets or the
 * nearest policy need them; pageouts and unmaps show up there.  Pages
 * placed while numa_maps is read may or may not be in it, and a page
 * mapped before the read but counted after it would be counted twice
 * (its node then looked full early: `nearest` sent the rest of a fill
 * elsewhere 64 pages short of the node's mark, once in a CI run): so a
 * resync that any placement overlapped (ns_copying, ns_copies) is left
 * undone, up to NUMA_RESYNC_SKIPS in a row; after that the smaller of
 * two upper bounds stands (the read plus the placements counted during
 * it, the running count), never too few.  `nearest` reserves pages
 * on a budgeted node (ns_reserved) before it maps them, so that fault
 * threads cannot overfill the node together; a resync leaves
 * reservations alone.
 *
 * Promotion (numa_promote): the daemon write-protects the pages it
 * demotes; a write to one faults, and the fault thread learns who wrote
 * (UFFD_FEATURE_THREAD_ID).  A second write fault in the same unit of
 * AMAP_UNIT pages within a turn of the clock (its reference bit already
 * set) moves the unit's pages that are elsewhere to the writer's node
 * (the policy's node for it), while the writer waits in its fault, if
 * that node stays at or below its low mark.  Reads of a demoted page do
 * not fault and do not promote: user space has no per-page read signal
 * for a mapped anonymous page (idle page tracking is rarely built in).
 * Writes fault only under the wp pageout protocol (WP_ASYNC never
 * blocks a writer), so promotion selects it.
 *
 * Locks protecting struct members in this file:
 *	I  immutable while the vmspace is initialized   a  atomic
 */
#ifndef UPVM_NUMA_PLACE_H
#define UPVM_NUMA_PLACE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"
#include "topo.h"
#include "upvm.h"
#include "vm.h"

#define NUMA_RESYNC_MS	100
#define NUMA_RESYNC_SKIPS 10	/* then a resync overlapped by placements
				   goes ahead (place.h) */

struct vm_map;

struct numa_state {
	struct numa_topo	ns_topo;	/* [I] */
	struct numa_policy	ns_pol;		/* [I] */
	nodemask_t64		ns_allowed;	/* [I] nodes pages may be on */
	nodemask_t64		ns_budgeted;	/* [I] nodes with a budget */
	long			ns_budget[NUMA_NODES_MAX]; /* [I] pages */
	long			ns_high[NUMA_NODES_MAX]; /* [I] demote above */
	long			ns_low[NUMA_NODES_MAX];	/* [I] ... down to */
	bool			ns_counts;	/* [I] keep ns_resident true
						   (budgets or nearest) */
	bool			ns_promote;	/* [I] numa_promote */
	atomic_long		ns_resident[NUMA_NODES_MAX];	/* [a] */
	atomic_long		ns_reserved[NUMA_NODES_MAX];	/* [a] by
						   `nearest`, not mapped yet */
	atomic_uint_least64_t	ns_placed[NUMA_NODES_MAX];	/* [a] */
	atomic_uint_least64_t	ns_demoted[NUMA_NODES_MAX];	/* [a] out */
	atomic_uint_least64_t	ns_promoted[NUMA_NODES_MAX];	/* [a] in */
	atomic_long		ns_free[NUMA_NODES_MAX]; /* [a] free pages,
							    sampled */
	atomic_uint_least64_t	ns_free_at;	/* [a] when, ns */
	atomic_uint_least64_t	ns_synced_at;	/* [a] last resync, ns */
	atomic_long		ns_copying;	/* [a] placements under way:
						   mapped, maybe not counted */
	atomic_uint_least64_t	ns_copies;	/* [a] placements begun */
	int			ns_resync_skips; /* resyncs in a row left
						   undone (the daemon's) */
};

/*
 * numa_state_create: the placement state for cfg (numa, node_budget).
 * => 0 with *out NULL when cfg->numa is "none" and there are no node
 *    budgets (upvm then never touches memory policies); 0 with *out set;
 *    or -EINVAL (logged) for a policy or budget this machine cannot honour.
 */
int numa_state_create(const struct upvm_config *, struct numa_state **out);
void numa_state_destroy(struct numa_state *);

/*
 * numa_budget_total: with node budgets and no global budget, the budget
 * that pages out to swap only when every node is full: the node budgets
 * plus the memory of nodes without one.  0 without node budgets.
 */
uint64_t numa_budget_total(const struct numa_state *);

/*
 * numa_thread_node: the node of thread tid (0: the calling thread): the
 * node of its CPU affinity when that is one node, else the node of the
 * CPU it last ran on.
 */
int numa_thread_node(const struct numa_state *, pid_t tid);

/*
 * numa_prepare: choose where the npages about to be resolved for thread
 * tid go, and set the calling (fault) thread's memory policy to it.
 * *localp caches tid's node across the chunks of one resolution: -1 the
 * first time (looked up if the policy needs it).
 * => the target (for numa_placed()), and how many of the npages go there
 *    (1..npages): `nearest` fills the local node's budget exactly, the
 *    rest goes to the next target.  A failed set_mempolicy is logged once
 *    and leaves the kernel's default placement.
 */
long numa_prepare(struct numa_state *, pid_t tid, int *localp, long npages,
    struct numa_target *);

/*
 * numa_placed: n pages at va were mapped under target t: count them.
 * numa_unreserve: the resolution is over: give back what `nearest`
 * reserved on a budgeted node (so that concurrent fault threads cannot
 * overfill it together) and no page used.
 */
void numa_placed(struct numa_state *, struct numa_target *t, vaddr_t va,
    long n);
void numa_unreserve(struct numa_state *, struct numa_target *t);

/*
 * numa_pages_nodes: the node of each page (move_pages(2) without moving):
 * status[i] = node, or -errno (-ENOENT: not present).  => 0 or -errno.
 */
int numa_pages_nodes(void **pages, long n, int *status);

/*
 * numa_pages_move: move pages to `node` (move_pages(2), MPOL_MF_MOVE):
 * status[i] = the node the page is on afterwards, or -errno.
 * => 0 or -errno for the call as a whole.
 */
int numa_pages_move(void **pages, long n, int node, int *status);

/* numa_budget_room: pages a budgeted node can still take below `mark`
   (its ns_high or ns_low): mark - resident - reserved; may be negative */
long numa_budget_room(struct numa_state *, int node, long mark);

/* numa_has_room: node has room for npages more (policy.h's rule) */
bool numa_has_room(struct numa_state *, int node, long npages);

/* numa_room_ops: numa_has_room for the pure policy (arg: the state) */
extern const struct numa_room_ops numa_room_ops;

/*
 * numa_resync: make ns_resident the kernel's count of managed pages per
 * node (numa_maps), if NUMA_RESYNC_MS passed since the last one.
 * => map read-locked by the caller (only VMAs inside managed entries
 *    count).  Callers: the daemon, upvm_stats() (polled: hence the
 *    rate limit); two at once both store the kernel's counts, so either
 *    result stands.
 */
void numa_resync(struct numa_state *, struct vm_map *);

/*
 * numa_promote: thread tid's write faulted in the unit [lo, hi) a second
 * time this turn of the clock: move the unit's pages that are on other
 * nodes to tid's node by the policy, if it has room for them below its
 * low mark.  Pages not present are skipped by the kernel.
 * => map read-locked (the range stays managed); the pages moved.
 */
long numa_promote(struct numa_state *, pid_t tid, vaddr_t lo, vaddr_t hi);

/* numa_over: the first node past its high mark, or -1.  No locks. */
int numa_over(const struct numa_state *);

/* numa_stats: the per-node counters into st */
void numa_stats(const struct numa_state *, struct upvm_stats *st);

#endif /* UPVM_NUMA_PLACE_H */
