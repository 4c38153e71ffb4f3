/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vmspace.c: starting and stopping a vmspace's threads, and fork.
 *
 * A word on fork.  The runtime's threads do not exist in a child, the
 * child's regions lose their userfaultfd registration (so a swapped-out
 * page would read back as zeros) and their uffd-wp bits.  upvm.c's
 * pthread_atfork handlers therefore stop every thread of the runtime
 * before fork (vmspace_stop: nothing half done, no lock held), start them
 * again in the parent, and in the child fix up the inherited metadata
 * (vmspace_fork_child) and start a runtime of its own before fork()
 * returns there.  The swap file and its slot table are shared: slots
 * referenced by both processes count both references.
 */
#include <errno.h>
#include <string.h>

#include "amap.h"
#include "log.h"
#include "pdaemon.h"
#include "swap.h"
#include "vmspace.h"

int
vmspace_start(struct vmspace *vs)
{
	int error;

	error = fault_start(vs, vs->vs_nthreads, vs->vs_spin_us, vs->vs_pin);
	if (error != 0) {
		upvm_log(LOG_ERR, "upvm: cannot start fault threads: %s",
		    strerror(-error));
		return error;
	}
	if (vs->vs_swap != NULL && (error = pd_start(vs, vs->vs_swap,
	    vs->vs_budget, vs->vs_slack, &vs->vs_pd)) != 0) {
		fault_stop(vs);
		upvm_log(LOG_ERR, "upvm: cannot start the pageout daemon: %s",
		    strerror(-error));
		return error;
	}
	return 0;
}

void
vmspace_stop(struct vmspace *vs)
{
	/* the daemon first: a fault thread may wait for it to free pages */
	if (vs->vs_pd != NULL)
		pd_stop(vs->vs_pd);
	fault_stop(vs);
	if (vs->vs_pd != NULL)
		pd_destroy(vs->vs_pd);
	vs->vs_pd = NULL;
}

/*
 * anons_walk: call fn once for every anon of every region (an anon that
 * several slots share is visited once).
 * => map write-locked.
 */
static void
anons_walk(struct vmspace *vs, void (*fn)(struct vmspace *, struct anon *))
{
	struct vm_map_entry *e;
	struct amap *am;
	struct anon *an;

	for (int pass = 0; pass < 2; pass++)
		for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL;
		    e = vm_map_next(&vs->vs_map, e)) {
			if ((am = e->e_aref.ar_amap) == NULL)
				continue;
			vm_mutex_lock(&am->am_lock);
			for (int s = e->e_aref.ar_pageoff; s <
			    e->e_aref.ar_pageoff + (int)vm_entry_npages(e);
			    s++) {
				if ((an = amap_anon_at(am, s)) == NULL)
					continue;
				if (pass == 0 &&
				    !(an->an_flags & ANON_MARK)) {
					an->an_flags |= ANON_MARK;
					fn(vs, an);
				} else if (pass == 1) {
					an->an_flags &= ~ANON_MARK;
				}
			}
			vm_mutex_unlock(&am->am_lock);
		}
}

static void
anon_fork_child(struct vmspace *vs, struct anon *an)
{
	if (!(an->an_flags & ANON_SWAPPED))
		return;
	if (an->an_flags & ANON_RESIDENT) {
		/* unprotected in the child: dirty; the slot is the parent's */
		an->an_flags &= ~ANON_SWAPPED;
		an->an_swslot = 0;
	} else {
		swap_ref(vs->vs_swap, an->an_swslot, 1);
	}
}

int
vmspace_fork_child(struct vmspace *vs)
{
	uint64_t features = vs->vs_pmap.pm_features;
	struct vm_map_entry *e;
	int error;

	/* the inherited descriptor is the parent's userfaultfd */
	pmap_fini(&vs->vs_pmap);
	if ((error = pmap_init(&vs->vs_pmap, features)) != 0) {
		upvm_log(LOG_ERR, "upvm: the child of fork cannot open a "
		    "userfaultfd: %s; its swapped-out pages are lost",
		    strerror(-error));
		return error;
	}
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL && error == 0;
	    e = vm_map_next(&vs->vs_map, e))
		if ((error = pmap_register(&vs->vs_pmap, e->e_start,
		    e->e_end - e->e_start, vs->vs_regmodes)) != 0)
			upvm_log(LOG_ERR, "upvm: the child of fork cannot "
			    "register [%#lx, %#lx): %s", (unsigned long)
			    e->e_start, (unsigned long)e->e_end,
			    strerror(-error));
	if (error == 0 && vs->vs_swap != NULL)
		anons_walk(vs, anon_fork_child);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	return error;
}

void
vmspace_wake_slots(struct vmspace *vs, struct amap *am, int slot, int n)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	int lo, hi;

	VM_ASSERT_RLOCKED(&map->m_lock);
	for (e = vm_map_first_ge(map, 0); e != NULL; e = vm_map_next(map, e)) {
		if (e->e_aref.ar_amap != am)
			continue;
		lo = MAX(slot, e->e_aref.ar_pageoff);
		hi = MIN(slot + n, e->e_aref.ar_pageoff +
		    (int)vm_entry_npages(e));
		if (lo < hi)
			pmap_wake(&vs->vs_pmap, e->e_start +
			    ptoa((vaddr_t)(lo - e->e_aref.ar_pageoff)),
			    ptoa((vsize_t)(hi - lo)));
	}
}

vaddr_t
vmspace_slot_va(struct vmspace *vs, struct amap *am, int slot)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;

	VM_ASSERT_RLOCKED(&map->m_lock);
	for (e = vm_map_first_ge(map, 0); e != NULL; e = vm_map_next(map, e))
		if (e->e_aref.ar_amap == am && slot >= e->e_aref.ar_pageoff &&
		    slot < e->e_aref.ar_pageoff + (int)vm_entry_npages(e))
			return e->e_start +
			    ptoa((vaddr_t)(slot - e->e_aref.ar_pageoff));
	return 0;
}
