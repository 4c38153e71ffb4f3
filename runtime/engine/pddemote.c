/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pddemote.c: the demotion cascade of the pageout daemon (pdaemon.h).
 *
 * A node past its budget (numa_over) gives its coldest pages to the
 * nearest node by distance that has room (numa_demote_target).  Coldness
 * is the pageout clock's: units whose reference bit stayed clear for a
 * turn of the demotion hand.  Of a victim unit's resident pages, those
 * the kernel reports on the full node (move_pages without moving) are
 * moved with move_pages(MPOL_MF_MOVE); the kernel migrates them under
 * the application, which keeps running (a migrating page is briefly
 * unmapped; an access waits for it in the kernel, never in upvm).
 *
 * The map is read-locked throughout, so no range is unmapped under a
 * move.  Pages shared after fork stay where they are: MPOL_MF_MOVE moves
 * only pages mapped once (their status says -EACCES), and they are not
 * counted as demoted.
 *
 * With numa_promote, the pages moved are write-protected (runs of
 * contiguous pages, one call each), so that a write to one faults and
 * can bring its unit back (place.h).  A page written between its move
 * and the protection just faults on its next write.
 */
#include <string.h>

#include "amap.h"
#include "log.h"
#include "map.h"
#include "pdaemon.h"
#include "place.h"
#include "vmspace.h"

#define PD_DEMOTE_PAGES	1024	/* pages examined per call, at most */
#define PD_DEMOTE_UNITS	32

/* protect_moved: write-protect the pages moved (status == to) */
static void
protect_moved(struct pmap *pm, void **pages, const int *status, int k,
    int to)
{
	vaddr_t lo = 0, hi = 0, va;

	for (int i = 0; i <= k; i++) {
		va = i < k && status[i] == to ? (vaddr_t)pages[i] : 0;
		if (va != 0 && va == hi) {
			hi += PAGE_SIZE;
			continue;
		}
		if (hi > lo)
			(void)pmap_writeprotect(pm, lo, hi - lo, true, false);
		lo = va;
		hi = va != 0 ? va + PAGE_SIZE : 0;
	}
}

/* demote_collect: the resident, evictable pages of unit into pages[] */
static int
demote_collect(struct vm_map *map, uint64_t unit, void **pages, int n,
    int max)
{
	vaddr_t va = ptoa((vaddr_t)unit), end;
	struct vm_map_entry *e = vm_map_lookup(map, va);
	struct amap *am;

	if (e == NULL || (am = e->e_aref.ar_amap) == NULL || e->e_wired)
		return n;
	end = pd_unit_end(e, va);
	vm_mutex_lock(&am->am_lock);
	for (; va < end && n < max; va += PAGE_SIZE)
		if (pd_slot_evictable(am, vm_entry_slot(e, va)))
			pages[n++] = (void *)va;
	vm_mutex_unlock(&am->am_lock);
	return n;
}

long
pd_demote(struct pdaemon *pd)
{
	struct vmspace *vs = pd->pdd_vs;
	struct numa_state *ns = vs->vs_numa;
	struct vm_map *map = &vs->vs_map;
	static void *pages[PD_DEMOTE_PAGES];	/* the daemon's thread only */
	static int status[PD_DEMOTE_PAGES];
	uint64_t victims[PD_DEMOTE_UNITS];
	long want, room, moved = 0;
	int from, to, nv, n = 0, k = 0, error;

	vm_rwlock_rdlock(&map->m_lock);
	numa_resync(ns, map);
	if ((from = numa_over(ns)) < 0)
		goto out;
	want = atomic_load(&ns->ns_resident[from]) - ns->ns_low[from];
	to = numa_demote_target(&ns->ns_topo, from, ns->ns_allowed,
	    &numa_room_ops, ns, 1);
	if (to < 0)
		goto out;	/* every node in reach is full: swap's turn */
	if (ns->ns_budgeted & (1ull << to)) {
		room = numa_budget_room(ns, to, ns->ns_high[to]);
		want = MIN(want, room);
	}
	want = MIN(want, PD_DEMOTE_PAGES);
	nv = pdpol_select(&pd->pdd_dclock, &pd_unit_ops, map, want, victims,
	    PD_DEMOTE_UNITS, 2 * (long)(atop(map->m_size) / AMAP_UNIT +
	    map->m_nentries + 1));
	for (int i = 0; i < nv; i++)
		n = demote_collect(map, victims[i], pages, n, PD_DEMOTE_PAGES);
	if (n == 0 || numa_pages_nodes(pages, n, status) != 0)
		goto out;
	/* keep the pages that are on the full node, at most want */
	for (int i = 0; i < n && k < want; i++)
		if (status[i] == from)
			pages[k++] = pages[i];
	if (k == 0)
		goto out;
	if ((error = numa_pages_move(pages, k, to, status)) != 0) {
		upvm_log(LOG_WARN, "demoting %d pages from node %d to node %d "
		    "failed: %s", k, from, to, strerror(-error));
		goto out;
	}
	for (int i = 0; i < k; i++)
		moved += status[i] == to;
	if (ns->ns_promote)
		protect_moved(&vs->vs_pmap, pages, status, k, to);
	atomic_fetch_sub(&ns->ns_resident[from], moved);
	atomic_fetch_add(&ns->ns_resident[to], moved);
	atomic_fetch_add(&ns->ns_demoted[from], (uint64_t)moved);
out:
	vm_rwlock_unlock(&map->m_lock);
	if (moved > 0)
		upvm_log(LOG_DEBUG, "demoted %ld pages from node %d to node %d",
		    moved, from, to);
	return moved;
}
