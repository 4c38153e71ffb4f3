/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pdprobe.c: readahead probes (see pdaemon.h and cluster.h, "readahead
 * hits").
 *
 * The probes' records are a ring of their own after the daemon's, in the
 * same staging area: positions [pdd_probe_tail, pdd_probe_head), each one
 * page, taken in order by pd_probe_stage and let go oldest first when a
 * new probe needs room, or all at once when the daemon stops.  Every
 * step that moves the head or the tail runs under pdd_probe_lock, and so
 * does the filling of the records it takes: a record is never let go
 * before it was filled.  A fault takes a page back (pd_reactivate) or an
 * unmap drops it (pd_forget) under the page's amap lock alone, as for
 * the daemon's inactive pages; the record then stays until the tail
 * passes it.
 */
#include <errno.h>
#include <string.h>

#include "amap.h"
#include "pdaemon.h"
#include "pdlinger.h"
#include "place.h"
#include "pmap.h"
#include "vmspace.h"

#define PD_PROBE_PAGES	2048	/* the probes' ring, at most */
#define PD_PROBE_EVERY	32	/* random swap pageins per probe */
#define PD_PROBE_SHARE	16	/* a probe's pages in use: at most a
				   budget / PD_PROBE_SHARE */

/*
 * pd_probe_init: probes need the staging area (the move protocol), and
 * one NUMA node: a probe's pages are copied into staging by the fault
 * thread and moved into place by whichever fault takes them, so they
 * would land where no placement policy put them.
 */
void
pd_probe_init(struct pdaemon *pd)
{
	const struct numa_state *ns = pd->pdd_vs->vs_numa;

	pd->pdd_nprobe = pd->pdd_move && (ns == NULL ||
	    ns->ns_topo.nt_nnodes <= 1) ? PD_PROBE_PAGES : 0;
	pthread_mutex_init(&pd->pdd_probe_lock, NULL);
	pd->pdd_probe_head = pd->pdd_probe_tail = 0;
	pd->pdd_probe_closed = false;
	atomic_init(&pd->pdd_probe_tick, 0);
	atomic_init(&pd->pdd_taken, 0);
	memset(&pd->pdd_ra, 0, sizeof(pd->pdd_ra));
}

bool
pd_probe_due(struct pdaemon *pd)
{
	return pd->pdd_nprobe > 0 && atomic_fetch_add_explicit(
	    &pd->pdd_probe_tick, 1, memory_order_relaxed) % PD_PROBE_EVERY ==
	    PD_PROBE_EVERY - 1;
}

int
pd_ra_window(struct pdaemon *pd, int readahead)
{
	return pd->pdd_nprobe > 0 ? cluster_ra_cap(&pd->pdd_ra, readahead) :
	    readahead;
}

int
pd_ra_sure(struct pdaemon *pd, int readahead)
{
	return pd->pdd_nprobe > 0 ? cluster_ra_sure(&pd->pdd_ra, readahead) :
	    1;
}

unsigned long
pd_probe_ring(struct pdaemon *pd)
{
	unsigned long n;

	pthread_mutex_lock(&pd->pdd_probe_lock);
	n = (unsigned long)(pd->pdd_probe_head - pd->pdd_probe_tail);
	pthread_mutex_unlock(&pd->pdd_probe_lock);
	return n;
}

/* probe_cap: the probes' positions in use, at most (a share of the
   budget, which may change) */
static uint64_t
probe_cap(struct pdaemon *pd)
{
	return (uint64_t)MIN(pd->pdd_nprobe, atomic_load_explicit(
	    &pd->pdd_budget, memory_order_relaxed) / PD_PROBE_SHARE);
}

/* probe_at: the staging index of probe position pos */
static long
probe_at(const struct pdaemon *pd, uint64_t pos)
{
	return pd->pdd_nstage + (long)(pos % (uint64_t)pd->pdd_nprobe);
}

/*
 * probe_let_go: the oldest n positions go.
 * => map read-locked, pdd_probe_lock held; takes the amap locks.
 * => pages freed (those still inactive).
 */
static long
probe_let_go(struct pdaemon *pd, uint64_t n)
{
	long freed = 0;

	while (n-- > 0 && pd->pdd_probe_tail < pd->pdd_probe_head) {
		long at = probe_at(pd, pd->pdd_probe_tail++);

		freed += pd_linger_let_go(pd, at);
		pd_stage_drop_at(pd_stage_page(pd, at), PAGE_SIZE);
	}
	return freed;
}

int
pd_probe_stage(struct pdaemon *pd, struct amap *am, int slot, vaddr_t va,
    struct anon **anons, int n, int k, const char *buf)
{
	struct vmspace *vs = pd->pdd_vs;
	struct pmap *pm = &vs->vs_pmap;
	unsigned long taken = atomic_load(&pd->pdd_taken);
	uint64_t pos0, cap = probe_cap(pd), want = (uint64_t)n - 1;
	bool copied[AMAP_UNIT];
	int staged = 0;
	vsize_t done;

	VM_ASSERT_RLOCKED(&vs->vs_map.m_lock);
	VM_ASSERT(n > 1 && n <= AMAP_UNIT && k >= 0 && k < n);
	pthread_mutex_lock(&pd->pdd_probe_lock);
	if (pd->pdd_probe_closed || want > cap) {
		pthread_mutex_unlock(&pd->pdd_probe_lock);
		return 0;
	}
	if (pd->pdd_probe_head - pd->pdd_probe_tail + want > cap)
		(void)probe_let_go(pd, pd->pdd_probe_head -
		    pd->pdd_probe_tail + want - cap);
	pos0 = pd->pdd_probe_head;
	pd->pdd_probe_head += want;
	/* the data first, into staging pages no one else looks at yet */
	for (int i = 0, j = 0; i < n; i++) {
		if (i == k)
			continue;
		copied[i] = pmap_copy(pm, (vaddr_t)pd_stage_page(pd,
		    probe_at(pd, pos0 + (uint64_t)j++)), buf + ptoa((size_t)i),
		    PAGE_SIZE, PMAP_DONTWAKE, &done) == 0;
	}
	vm_mutex_lock(&am->am_lock);
	for (int i = 0, j = 0; i < n; i++) {
		struct anon *an = anons[i];
		long at;

		if (i == k)
			continue;
		at = probe_at(pd, pos0 + (uint64_t)j++);
		if (!copied[i] || amap_anon_at(am, slot + i) != an) {
			/* unmapped meanwhile, or no copy: the caller's */
			pd_stage_drop_at(pd_stage_page(pd, at), PAGE_SIZE);
			continue;
		}
		VM_ASSERT((an->an_flags & (ANON_TRANSIT | ANON_SWAPPED)) ==
		    (ANON_TRANSIT | ANON_SWAPPED) && (unsigned long)at <=
		    ANON_STAGE_MAX);
		amap_hold(am);
		pd->pdd_linger[at] = (struct pd_linger){ .pl_amap = am,
		    .pl_anon = an, .pl_slot = slot + i, .pl_taken = taken,
		    /* the copy is the slot's, whose hash the pager may not
		       keep (a dirty pageout does not hash): pd_reactivate
		       gives it one, or a write between its move and its
		       write-protect would go unseen */
		    .pl_fresh = true,
		    .pl_band = (signed char)cluster_ra_band(va +
		    ptoa((vaddr_t)k), va + ptoa((vaddr_t)i)) };
		/* resident (counted so), clean, in transit: inactive */
		an->an_flags = (an->an_flags & ((1u << ANON_STAGE_SHIFT) - 1)) |
		    ANON_RESIDENT | ANON_STAGED |
		    ((uint32_t)at << ANON_STAGE_SHIFT);
		cluster_ra_staged(&pd->pdd_ra, pd->pdd_linger[at].pl_band);
		anons[i] = NULL;	/* its hold is the record's now */
		staged++;
	}
	vm_mutex_unlock(&am->am_lock);
	pthread_mutex_unlock(&pd->pdd_probe_lock);
	STAT_ADD(&vs->vs_stats, st_ra_probed, (uint64_t)staged);
	return staged;
}

long
pd_probe_age(struct pdaemon *pd)
{
	unsigned long now = atomic_load(&pd->pdd_taken), budget =
	    (unsigned long)atomic_load(&pd->pdd_budget);
	uint64_t cap = probe_cap(pd);
	long freed = 0;

	if (pd->pdd_nprobe == 0)
		return 0;
	VM_ASSERT_RLOCKED(&pd->pdd_vs->vs_map.m_lock);
	pthread_mutex_lock(&pd->pdd_probe_lock);
	/* down to a sixteenth of the budget (it may have shrunk), then the
	   old ones; a position whose copy failed holds no record */
	if (pd->pdd_probe_head - pd->pdd_probe_tail > cap)
		freed += probe_let_go(pd, pd->pdd_probe_head -
		    pd->pdd_probe_tail - cap);
	while (pd->pdd_probe_tail < pd->pdd_probe_head) {
		const struct pd_linger *pl = &pd->pdd_linger[probe_at(pd,
		    pd->pdd_probe_tail)];

		if (pl->pl_amap != NULL && pl->pl_taken + budget > now)
			break;
		freed += probe_let_go(pd, 1);
	}
	pthread_mutex_unlock(&pd->pdd_probe_lock);
	return freed;
}

void
pd_probe_flush(struct pdaemon *pd)
{
	if (pd->pdd_nprobe == 0)
		return;
	VM_ASSERT_RLOCKED(&pd->pdd_vs->vs_map.m_lock);
	pthread_mutex_lock(&pd->pdd_probe_lock);
	pd->pdd_probe_closed = true;
	(void)probe_let_go(pd, pd->pdd_probe_head - pd->pdd_probe_tail);
	pthread_mutex_unlock(&pd->pdd_probe_lock);
}
