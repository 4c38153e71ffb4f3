/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * place.c: NUMA placement mechanism (see place.h).
 *
 * No libnuma here: the memory-policy and move_pages calls are raw system
 * calls (<linux/mempolicy.h>), and nothing on the fault path reads files
 * through stdio (its buffers come from malloc: managed memory under
 * `upvm run`, which a fault thread must never touch).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "amap.h"
#include "kmem.h"
#include "log.h"
#include "map.h"
#include "pdpolicy.h"
#include "place.h"
#include "procstat.h"
#include "sys.h"

#define NUMA_FREE_NS	(10 * 1000 * 1000)	/* free memory sample age */
#define NUMA_TID_NS	(10 * 1000 * 1000)	/* a thread's CPU, cached */
#define NUMA_TID_CACHE	16
#define NUMA_MAPS_BUF	(64 * 1024)

static uint64_t
numa_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* the memory policy this fault thread has now (set_mempolicy is per
   thread); valid once set */
static _Thread_local struct numa_target tl_policy;
static _Thread_local bool tl_policy_valid;
/* the last CPU of threads whose affinity spans nodes */
static _Thread_local struct {
	pid_t		tid;
	int		node;
	uint64_t	at;
} tl_tid_cache[NUMA_TID_CACHE];

int
numa_state_create(const struct upvm_config *cfg, struct numa_state **out)
{
	struct numa_state *ns;
	uint64_t bytes[NUMA_NODES_MAX];
	struct pdpol_marks m;
	char err[192];

	*out = NULL;
	if (strcmp(cfg->numa, "none") == 0 && cfg->node_budget[0] == '\0')
		return 0;
	if ((ns = kmem_alloc(sizeof(*ns))) == NULL)
		return -ENOMEM;
	numa_topo_probe(&ns->ns_topo);
	if (numa_policy_parse(cfg->numa, &ns->ns_pol, err, sizeof(err)) != 0 ||
	    numa_policy_check(&ns->ns_pol, &ns->ns_topo, err,
	    sizeof(err)) != 0 || (cfg->node_budget[0] != '\0' &&
	    numa_budgets_parse(cfg->node_budget, bytes, err,
	    sizeof(err)) != 0))
		goto bad;
	ns->ns_allowed = numa_allowed(&ns->ns_pol, &ns->ns_topo);
	for (int n = 0; cfg->node_budget[0] != '\0' && n < NUMA_NODES_MAX;
	    n++) {
		if (bytes[n] == 0)
			continue;
		if (!(ns->ns_topo.nt_memory & (1ull << n))) {
			snprintf(err, sizeof(err), "node budget for node %d, "
			    "which has no memory here", n);
			goto bad;
		}
		if (bytes[n] < (1u << 20)) {
			snprintf(err, sizeof(err), "node %d's budget %llu is "
			    "too small; give at least 1M", n,
			    (unsigned long long)bytes[n]);
			goto bad;
		}
		ns->ns_budget[n] = (long)atop(bytes[n]);
		ns->ns_budgeted |= 1ull << n;
		pdpol_marks(ns->ns_budget[n], 0, &m);
		ns->ns_high[n] = m.pm_high;
		ns->ns_low[n] = m.pm_low;
	}
	ns->ns_counts = ns->ns_budgeted != 0 ||
	    ns->ns_pol.np_kind == NUMA_NEAREST;
	ns->ns_promote = cfg->numa_promote;
	if (ns->ns_promote && ns->ns_budgeted == 0) {
		snprintf(err, sizeof(err), "numa_promote needs node budgets "
		    "(node_budget): pages leave their node only by demotion");
		goto bad;
	}
	if (ns->ns_promote && ns->ns_pol.np_kind != NUMA_LOCAL &&
	    ns->ns_pol.np_kind != NUMA_NEAREST &&
	    ns->ns_pol.np_kind != NUMA_PREFERRED) {
		snprintf(err, sizeof(err), "numa_promote needs a policy with a "
		    "home node (local, nearest or preferred:N), not %.40s",
		    cfg->numa);
		goto bad;
	}
	*out = ns;
	return 0;
bad:
	upvm_log(LOG_ERR, "upvm_init: %s", err);
	kmem_free(ns, sizeof(*ns));
	return -EINVAL;
}

void
numa_state_destroy(struct numa_state *ns)
{
	if (ns != NULL)
		kmem_free(ns, sizeof(*ns));
}

uint64_t
numa_budget_total(const struct numa_state *ns)
{
	uint64_t total = 0;

	if (ns == NULL || ns->ns_budgeted == 0)
		return 0;
	for (int n = 0; n < ns->ns_topo.nt_nnodes; n++)
		if (ns->ns_budgeted & (1ull << n))
			total += ptoa((uint64_t)ns->ns_budget[n]);
		else if (ns->ns_topo.nt_memory & (1ull << n))
			total += ns->ns_topo.nt_mem_bytes[n];
	return total;
}

/* tid_last_cpu: the CPU thread tid last ran on (stat field 39), or -1 */
static int
tid_last_cpu(pid_t tid)
{
	char buf[1024];
	const char *f3, *f39;

	if (proc_stat_read(0, tid, buf, sizeof(buf), &f3) != 0 ||
	    (f39 = proc_stat_field(f3, 39)) == NULL || *f39 < '0' ||
	    *f39 > '9')
		return -1;
	return atoi(f39);
}

int
numa_thread_node(const struct numa_state *ns, pid_t tid)
{
	const struct numa_topo *t = &ns->ns_topo;
	uint64_t now;
	cpu_set_t set;
	int node = -1, cpu, slot;

	if (t->nt_nnodes == 1)
		return 0;
	if (sched_getaffinity(tid, sizeof(set), &set) == 0) {
		for (cpu = 0; cpu < t->nt_maxcpu; cpu++) {
			if (!CPU_ISSET(cpu, &set))
				continue;
			if (node < 0)
				node = numa_cpu_node(t, cpu);
			else if (node != numa_cpu_node(t, cpu))
				break;
		}
		if (node >= 0 && cpu == t->nt_maxcpu)
			return node;
	}
	if (tid == 0)
		return numa_cpu_node(t, sched_getcpu());
	slot = (int)((unsigned)tid % NUMA_TID_CACHE);
	now = numa_now_ns();
	if (tl_tid_cache[slot].tid == tid &&
	    now - tl_tid_cache[slot].at < NUMA_TID_NS)
		return tl_tid_cache[slot].node;
	cpu = tid_last_cpu(tid);
	node = numa_cpu_node(t, cpu);
	tl_tid_cache[slot].tid = tid;
	tl_tid_cache[slot].node = node;
	tl_tid_cache[slot].at = now;
	return node;
}

long
numa_budget_room(struct numa_state *ns, int node, long mark)
{
	return mark - atomic_load_explicit(&ns->ns_resident[node],
	    memory_order_relaxed) - atomic_load_explicit(
	    &ns->ns_reserved[node], memory_order_relaxed);
}

bool
numa_has_room(struct numa_state *ns, int node, long npages)
{
	uint64_t now;

	if (ns->ns_budgeted & (1ull << node))
		return numa_budget_room(ns, node, ns->ns_high[node]) >= npages;
	now = numa_now_ns();
	if (now - atomic_load_explicit(&ns->ns_free_at,
	    memory_order_relaxed) > NUMA_FREE_NS) {
		atomic_store_explicit(&ns->ns_free_at, now,
		    memory_order_relaxed);
		for (int n = 0; n < ns->ns_topo.nt_nnodes; n++)
			if (ns->ns_topo.nt_memory & (1ull << n))
				atomic_store_explicit(&ns->ns_free[n],
				    (long)atop(numa_node_free(&ns->ns_topo,
				    n)), memory_order_relaxed);
	}
	/* keep 1/64 of the node for the kernel and everyone else */
	return atomic_load_explicit(&ns->ns_free[node], memory_order_relaxed) -
	    npages > (long)atop(ns->ns_topo.nt_mem_bytes[node] / 64);
}

static bool
room_cb(void *arg, int node, long npages)
{
	return numa_has_room(arg, node, npages);
}

const struct numa_room_ops numa_room_ops = { .nr_has_room = room_cb };

/* room_reserve_cb: has_room that, on a budgeted node, also counts the
   pages there at once (the first node that has room is the one chosen) */
struct reserve_arg {
	struct numa_state	*ra_ns;
	int			 ra_node;	/* reserved on, or -1 */
};

static bool
room_reserve_cb(void *arg, int node, long npages)
{
	struct reserve_arg *ra = arg;
	struct numa_state *ns = ra->ra_ns;
	long cur;

	if (!(ns->ns_budgeted & (1ull << node)))
		return numa_has_room(ns, node, npages);
	cur = atomic_load(&ns->ns_reserved[node]);
	do {
		if (atomic_load(&ns->ns_resident[node]) + cur + npages >
		    ns->ns_high[node])
			return false;
	} while (!atomic_compare_exchange_weak(&ns->ns_reserved[node], &cur,
	    cur + npages));
	ra->ra_node = node;
	return true;
}

static const struct numa_room_ops numa_reserve_ops = {
	.nr_has_room = room_reserve_cb,
};

/* set_policy: make t the calling thread's memory policy */
static int
set_policy(const struct numa_target *t)
{
	static const int modes[] = {
		[NUMA_MODE_DEFAULT] = MPOL_DEFAULT,
		[NUMA_MODE_BIND] = MPOL_BIND,
		[NUMA_MODE_PREFERRED] = MPOL_PREFERRED,
		[NUMA_MODE_INTERLEAVE] = MPOL_INTERLEAVE,
	};
	unsigned long mask = (unsigned long)t->nt_mask;

	if (syscall(SYS_set_mempolicy, modes[t->nt_mode],
	    t->nt_mode == NUMA_MODE_DEFAULT ? NULL : &mask,
	    t->nt_mode == NUMA_MODE_DEFAULT ? 0 : NUMA_NODES_MAX + 1) != 0)
		return -errno;
	return 0;
}

/* nearest_fit: of npages, how many fit below the local node's high mark
   (all when it has no budget, or when none fit: they go elsewhere) */
static long
nearest_fit(struct numa_state *ns, int local, long npages)
{
	long room;

	if (local < 0 || !(ns->ns_budgeted & (1ull << local)))
		return npages;
	room = numa_budget_room(ns, local, ns->ns_high[local]);
	return room > 0 && room < npages ? room : npages;
}

long
numa_prepare(struct numa_state *ns, pid_t tid, int *localp, long npages,
    struct numa_target *t)
{
	static atomic_bool said;
	int error;

	if (*localp < 0)
		*localp = ns->ns_pol.np_kind == NUMA_LOCAL ||
		    ns->ns_pol.np_kind == NUMA_NEAREST ?
		    numa_thread_node(ns, tid) : 0;
	if (ns->ns_pol.np_kind == NUMA_NEAREST) {
		struct reserve_arg ra = { ns, -1 };

		npages = nearest_fit(ns, *localp, npages);

		numa_place(&ns->ns_pol, &ns->ns_topo, *localp,
		    &numa_reserve_ops, &ra, npages, t);
		t->nt_reserved = ra.ra_node >= 0 ? npages : 0;
	} else {
		numa_place(&ns->ns_pol, &ns->ns_topo, *localp, &numa_room_ops,
		    ns, npages, t);
	}
	if (tl_policy_valid && tl_policy.nt_mode == t->nt_mode &&
	    tl_policy.nt_mask == t->nt_mask)
		return npages;
	if ((error = set_policy(t)) != 0) {
		if (!atomic_exchange(&said, true))
			upvm_log(LOG_WARN, "set_mempolicy failed: %s; pages go "
			    "where the kernel puts them", strerror(-error));
		numa_unreserve(ns, t);
		t->nt_mode = NUMA_MODE_DEFAULT;
		t->nt_node = -1;
		tl_policy_valid = false;
		return npages;
	}
	tl_policy = *t;
	tl_policy_valid = true;
	return npages;
}

int
numa_pages_nodes(void **pages, long n, int *status)
{
	if (syscall(SYS_move_pages, 0, (unsigned long)n, pages, NULL, status,
	    0) != 0)
		return -errno;
	return 0;
}

int
numa_pages_move(void **pages, long n, int node, int *status)
{
	int nodes[512];

	for (long i = 0; i < n; i += 512) {
		long k = n - i < 512 ? n - i : 512;

		for (long j = 0; j < k; j++)
			nodes[j] = node;
		if (syscall(SYS_move_pages, 0, (unsigned long)k, pages + i,
		    nodes, status + i, MPOL_MF_MOVE) < 0)
			return -errno;
	}
	return 0;
}

void
numa_unreserve(struct numa_state *ns, struct numa_target *t)
{
	if (t->nt_reserved > 0)
		atomic_fetch_sub(&ns->ns_reserved[t->nt_node],
		    t->nt_reserved);
	t->nt_reserved = 0;
}

void
numa_placed(struct numa_state *ns, struct numa_target *t, vaddr_t va, long n)
{
	long counted = MIN(n, t->nt_reserved);
	void *pages[256];
	int status[256];

	if (t->nt_node >= 0) {
		/* counted as resident before the reservation goes */
		atomic_fetch_add_explicit(&ns->ns_placed[t->nt_node],
		    (uint64_t)n, memory_order_relaxed);
		atomic_fetch_add_explicit(&ns->ns_resident[t->nt_node], n,
		    memory_order_relaxed);
		if (counted > 0)
			atomic_fetch_sub(&ns->ns_reserved[t->nt_node],
			    counted);
		t->nt_reserved -= counted;
		return;
	}
	/* interleaved (or the kernel's choice): ask where they went */
	for (long i = 0; i < n; i += 256) {
		long k = n - i < 256 ? n - i : 256;

		for (long j = 0; j < k; j++)
			pages[j] = (void *)(va + ptoa((vaddr_t)(i + j)));
		if (numa_pages_nodes(pages, k, status) != 0)
			return;
		for (long j = 0; j < k; j++)
			if (status[j] >= 0 && status[j] < NUMA_NODES_MAX) {
				atomic_fetch_add_explicit(
				    &ns->ns_placed[status[j]], 1,
				    memory_order_relaxed);
				atomic_fetch_add_explicit(
				    &ns->ns_resident[status[j]], 1,
				    memory_order_relaxed);
			}
	}
}

/* numa_maps_line: add the N<node>=<pages> counts of one line if its VMA
   is managed */
static void
numa_maps_line(struct vm_map *map, char *line, long *count)
{
	unsigned long start = strtoul(line, &line, 16);
	char *p = line;
	int node;

	if (vm_map_lookup(map, (vaddr_t)start) == NULL)
		return;
	while ((p = strstr(p, " N")) != NULL) {
		p += 2;
		node = (int)strtol(p, &p, 10);
		if (*p == '=' && node >= 0 && node < NUMA_NODES_MAX)
			count[node] += strtol(p + 1, &p, 10);
	}
}

void
numa_resync(struct numa_state *ns, struct vm_map *map)
{
	long count[NUMA_NODES_MAX] = { 0 };
	uint64_t placed[NUMA_NODES_MAX], now = numa_now_ns(), copies;
	long copying;
	size_t have = 0;
	char *buf, *line, *nl;
	ssize_t n;
	int fd;

	if (now - atomic_load(&ns->ns_synced_at) <
	    (uint64_t)NUMA_RESYNC_MS * 1000000)
		return;
	atomic_store(&ns->ns_synced_at, now);
	if ((buf = kmem_alloc(NUMA_MAPS_BUF)) == NULL)
		return;
	for (int i = 0; i < ns->ns_topo.nt_nnodes; i++)
		placed[i] = atomic_load(&ns->ns_placed[i]);
	copying = atomic_load(&ns->ns_copying);
	copies = atomic_load(&ns->ns_copies);
	if ((fd = open("/proc/self/numa_maps", O_RDONLY | O_CLOEXEC)) < 0)
		goto out;
	while ((n = sys_read(fd, buf + have, NUMA_MAPS_BUF - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		for (line = buf; (nl = strchr(line, '\n')) != NULL;
		    line = nl + 1) {
			*nl = '\0';
			numa_maps_line(map, line, count);
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == NUMA_MAPS_BUF - 1)	/* a line longer than all */
			have = 0;
	}
	close(fd);
	/* a placement under way may be in count and counted again later */
	if ((copying != 0 || atomic_load(&ns->ns_copies) != copies) &&
	    ++ns->ns_resync_skips <= NUMA_RESYNC_SKIPS)
		goto out;
	ns->ns_resync_skips = 0;
	/*
	 * Placements during the read may be in count already, or not:
	 * count + those is an upper bound, and so is the running count
	 * (placements and moves add, frees it never sees); keep the
	 * smaller.  Without placements during the read, count is exact.
	 * (A CAS: a placement counted meanwhile is not lost.)
	 */
	for (int i = 0; i < ns->ns_topo.nt_nnodes; i++) {
		long during, running = atomic_load(&ns->ns_resident[i]);

		do {
			during = (long)(atomic_load(&ns->ns_placed[i]) -
			    placed[i]);
		} while (!atomic_compare_exchange_weak(&ns->ns_resident[i],
		    &running, during == 0 ? count[i] :
		    MIN(count[i] + during, running)));
	}
out:
	kmem_free(buf, NUMA_MAPS_BUF);
}

long
numa_promote(struct numa_state *ns, pid_t tid, vaddr_t lo, vaddr_t hi)
{
	void *pages[AMAP_UNIT];
	int status[AMAP_UNIT], from[AMAP_UNIT], to;
	long n = 0, k = 0, moved = 0;

	to = ns->ns_pol.np_kind == NUMA_PREFERRED ? ns->ns_pol.np_node :
	    numa_thread_node(ns, tid);
	if (to < 0 || !(ns->ns_topo.nt_memory & (1ull << to)))
		return 0;
	for (vaddr_t va = lo; va < hi && n < AMAP_UNIT; va += PAGE_SIZE)
		pages[n++] = (void *)va;
	if (numa_pages_nodes(pages, n, status) != 0)
		return 0;
	for (long i = 0; i < n; i++)
		if (status[i] >= 0 && status[i] < NUMA_NODES_MAX &&
		    status[i] != to) {
			from[k] = status[i];
			pages[k++] = pages[i];
		}
	if (k == 0)
		return 0;
	if ((ns->ns_budgeted & (1ull << to)) ?
	    numa_budget_room(ns, to, ns->ns_low[to]) < k :
	    !numa_has_room(ns, to, k))
		return 0;
	if (numa_pages_move(pages, k, to, status) != 0)
		return 0;
	for (long i = 0; i < k; i++)
		if (status[i] == to) {
			atomic_fetch_sub(&ns->ns_resident[from[i]], 1);
			moved++;
		}
	atomic_fetch_add(&ns->ns_resident[to], moved);
	atomic_fetch_add(&ns->ns_promoted[to], (uint64_t)moved);
	upvm_log(LOG_DEBUG, "promoted %ld of %ld pages at %#lx (the first from "
	    "node %d) to node %d", moved, k, (unsigned long)lo, from[0], to);
	return moved;
}

int
numa_over(const struct numa_state *ns)
{
	for (int n = 0; ns->ns_budgeted != 0 && n < ns->ns_topo.nt_nnodes;
	    n++)
		if ((ns->ns_budgeted & (1ull << n)) &&
		    atomic_load_explicit(&ns->ns_resident[n],
		    memory_order_relaxed) > ns->ns_high[n])
			return n;
	return -1;
}

void
numa_stats(const struct numa_state *ns, struct upvm_stats *st)
{
	long r;

	st->numa_nodes = ns->ns_topo.nt_nnodes;
	for (int n = 0; n < ns->ns_topo.nt_nnodes && n < UPVM_NUMA_MAX; n++) {
		r = atomic_load(&ns->ns_resident[n]);
		st->node_resident[n] = r > 0 ? (uint64_t)r : 0;
		st->node_placed[n] = atomic_load(&ns->ns_placed[n]);
		st->node_demoted[n] = atomic_load(&ns->ns_demoted[n]);
		st->node_promoted[n] = atomic_load(&ns->ns_promoted[n]);
		st->node_budget[n] = (uint64_t)ns->ns_budget[n];
	}
}
