/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vmspace.c: a vmspace's set-up and teardown (userfaultfd features, swap,
 * threads), starting and stopping its threads, and fork.
 *
 * A word on fork.  The runtime's threads do not exist in a child, the
 * child's regions lose their userfaultfd registration (so a swapped-out
 * page would read back as zeros) and their uffd-wp bits.  upvm.c's
 * pthread_atfork handlers (which hold the API lock) therefore stop every
 * thread of the runtime before fork (vmspace_stop: nothing half done, no
 * lock held, no I/O in flight), start them again in the parent
 * (vmspace_fork_parent), and in the child fix up the inherited metadata
 * and start a runtime of its own before fork() returns there
 * (vmspace_fork_child).  The swap file and its slot table are shared: slots
 * referenced by both processes count both references, and each process's
 * are recorded as its own, so that a process gone without upvm_fini
 * (exited, killed, exec'd) has them given back by another (swaphold.h).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>

#include <unistd.h>

#include "amap.h"
#include "config.h"
#include "flusher.h"
#include "kmem.h"
#include "log.h"
#include "pdaemon.h"
#include "remote.h"
#include "place.h"
#include "swap.h"
#include "sys.h"
#include "vmspace.h"
#include "vnode.h"
#include "writeback.h"

/* features asked of the kernel; each use checks pmap_has() */
#define UPVM_WANT_FEATURES	(UFFD_FEATURE_THREAD_ID |		\
				 UFFD_FEATURE_PAGEFAULT_FLAG_WP |	\
				 UFFD_FEATURE_POISON)

/* and for the move pageout protocol (see pdaemon.h) */
#define UPVM_MOVE_FEATURES	(UFFD_FEATURE_MOVE | UFFD_FEATURE_WP_ASYNC)

/* the smallest budget that leaves the daemon room to work: 4 MiB */
#define UPVM_MIN_BUDGET		1024

static struct swap *vs_release_swap;		/* for the anon release hook */

static void
vmspace_swap_release(uint64_t slot)
{
	swap_free(vs_release_swap, slot, 1);
}


/*
 * handlers_default: one fault thread per CPU.  A fault thread never
 * waits for a pagein read (it keeps up to FAULT_IO_DEPTH in flight), so
 * more threads than CPUs would only add wake-ups; and all but the first
 * serve faults only while faults come in bursts (fault.h, helpers).
 */
static int
handlers_default(bool paging)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

/*
 * pmap_setup: open the userfaultfd with the features the configuration
 * needs.  WP_ASYNC changes every write-protect fault of the descriptor, so
 * it is on only when the move pageout protocol runs: with a budget, and
 * when MOVE, WP_ASYNC and PAGEMAP_SCAN are all there (pageout=auto) or
 * asked for (pageout=move: an error without them).  numa_promote needs
 * writes to fault: the wp protocol.
 * => 0, or -errno (logged) with nothing open.
 */
static int
pmap_setup(struct pmap *pm, const struct upvm_config *cfg)
{
	bool try_move = cfg->budget != 0 && cfg->pageout != UPVM_PAGEOUT_WP &&
	    !cfg->numa_promote;
	int error;

	if (cfg->numa_promote && cfg->pageout == UPVM_PAGEOUT_MOVE) {
		upvm_log(LOG_ERR, "upvm_init: numa_promote needs writes to "
		    "demoted pages to fault, which pageout=move never makes "
		    "them do; use pageout=auto or wp");
		return -EINVAL;
	}

	error = pmap_init(pm, UPVM_WANT_FEATURES |
	    (try_move ? UPVM_MOVE_FEATURES : 0));
	if (error != 0) {
		upvm_log(LOG_ERR, "upvm_init: userfaultfd is unavailable: %s; "
		    "run as root or set vm.unprivileged_userfaultfd=1",
		    strerror(-error));
		return error;
	}
	if (!try_move || (pmap_has(pm, UPVM_MOVE_FEATURES) &&
	    pm->pm_pagemap_scan))
		return 0;
	pmap_fini(pm);
	if (cfg->pageout == UPVM_PAGEOUT_MOVE) {
		upvm_log(LOG_ERR, "upvm_init: pageout=move needs UFFDIO_MOVE, "
		    "UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN (Linux 6.8 or "
		    "later); use pageout=auto or wp");
		return -EOPNOTSUPP;
	}
	return pmap_init(pm, UPVM_WANT_FEATURES);
}

/*
 * paging_setup: with a budget, the swap file and write-protect mode for
 * the regions (dirty tracking); the daemon starts after the fault threads.
 * => -errno, logged, with nothing left behind.
 */
static int
paging_setup(struct vmspace *vs, const struct upvm_config *cfg)
{
	bool remote = remote_is_url(cfg->swap_path);
	bool tier = cfg->swap_tier[0] != '\0';
	bool tier_remote = tier && remote_is_url(cfg->swap_tier);
	/* the directory of the file tier: the swap's, or the second's */
	const char *dir = !remote ? cfg->swap_path : tier ? cfg->swap_tier :
	    "";
	struct swap_config sc = {
		.sc_path = dir[0] != '\0' ? dir : NULL,
		.sc_remote = remote ? cfg->swap_path : tier_remote ?
		    cfg->swap_tier : NULL,
		.sc_file_tier = tier,
		.sc_remote_first = remote,
		.sc_max = cfg->swap_max,
		.sc_encrypt = cfg->swap_encrypt,
	};
	int error;

	vs->vs_regmodes = PMAP_REG_MISSING;
	if (cfg->budget == 0)
		return 0;
	if (atop(cfg->budget) < UPVM_MIN_BUDGET) {
		upvm_log(LOG_ERR, "upvm_init: budget %llu bytes is too small; "
		    "give at least 4M", (unsigned long long)cfg->budget);
		return -EINVAL;
	}
	if (!pmap_has(&vs->vs_pmap, UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		upvm_log(LOG_ERR, "upvm_init: a budget needs userfaultfd "
		    "write-protection (Linux 5.7 or later); run without one");
		return -EOPNOTSUPP;
	}
	if (tier && remote == tier_remote) {
		upvm_log(LOG_ERR, "upvm_init: swap %s with a second tier %s: "
		    "one must be memcached://..., the other a directory",
		    cfg->swap_path[0] != '\0' ? cfg->swap_path : "(default)",
		    cfg->swap_tier);
		return -EINVAL;
	}
	if ((error = swap_create(&sc, &vs->vs_swap)) != 0)
		return error;
	vs->vs_pageout = pmap_has(&vs->vs_pmap, UPVM_MOVE_FEATURES) ?
	    UPVM_PAGEOUT_MOVE : UPVM_PAGEOUT_WP;
	vs_release_swap = vs->vs_swap;
	amap_set_swap_release(vmspace_swap_release);
	vs->vs_regmodes |= PMAP_REG_WP;
	return 0;
}

static void
paging_teardown(struct vmspace *vs)
{
	if (vs->vs_pd != NULL)
		pd_destroy(vs->vs_pd);
	vs->vs_pd = NULL;
	amap_set_swap_release(NULL);
	if (vs->vs_swap != NULL)
		swap_destroy(vs->vs_swap);
	vs->vs_swap = vs_release_swap = NULL;
}

int
vmspace_init(struct vmspace *vs, const struct upvm_config *cfgp)
{
	struct upvm_config cfg = *cfgp;
	int error, nthreads;

	memset(vs, 0, sizeof(*vs));
	vs->vs_dlink.dl_fd = vs->vs_dlink.dl_wake = -1;
	/* with upvmd, the budget is what it grants; UPVM_BUDGET caps it */
	if (cfg.daemon[0] != '\0' &&
	    (error = dlink_attach(&vs->vs_dlink, cfg.daemon, &cfg)) != 0)
		return error;
	if ((error = numa_state_create(&cfg, &vs->vs_numa)) != 0) {
		dlink_detach(vs);
		return error;
	}
	/* node budgets without a budget: swap once every node is full */
	if (cfg.budget == 0)
		cfg.budget = numa_budget_total(vs->vs_numa);
	if ((error = pmap_setup(&vs->vs_pmap, &cfg)) != 0) {
		numa_state_destroy(vs->vs_numa);
		dlink_detach(vs);
		return error;
	}
	amap_init_pools();
	vm_map_init(&vs->vs_map);
	vs->vs_cc.cc_cluster = (int)cfg.cluster_pages;
	vs->vs_cc.cc_seq_max = (int)cfg.seq_max_pages;
	vs->vs_cc.cc_readahead = (int)cfg.readahead_pages;
	vs->vs_cc.cc_ra_sure = 0;	/* a swap pagein's: the probes' (fault.c) */
	nthreads = cfg.handlers != 0 ? (int)cfg.handlers :
	    handlers_default(cfg.budget != 0);
	if ((error = paging_setup(vs, &cfg)) != 0)
		goto fail;
	vs->vs_nthreads = nthreads;
	vs->vs_spin_us = cfg.spin_us;
	vs->vs_pin = cfg.pin_handlers;
	vs->vs_inactive_pct = cfg.inactive_pct;
	vs->vs_flush_s = cfg.flush_s;
	vs->vs_budget = (long)atop(cfg.budget);
	atomic_store(&vs->vs_budget_now, vs->vs_budget);
	vs->vs_budget_most = MAX(vs->vs_budget,
	    (long)MIN(vs->vs_dlink.dl_most, (uint64_t)LONG_MAX / 2));
	/* slack: one window in flight per fault thread */
	vs->vs_slack = (long)nthreads * cfg.seq_max_pages;
	vs->vs_threshold = round_page(cfg.threshold);
	vs->vs_files = cfg.files;
	if ((error = vmspace_start(vs)) != 0)
		goto fail;
	upvm_log(LOG_INFO, "upvm %s: %d fault threads, cluster %u, seq_max "
	    "%u, budget %llu, features %#llx", UPVM_VERSION, nthreads,
	    cfg.cluster_pages, cfg.seq_max_pages,
	    (unsigned long long)cfg.budget,
	    (unsigned long long)vs->vs_pmap.pm_features);
	return 0;
fail:
	dlink_detach(vs);
	paging_teardown(vs);
	vm_map_destroy(&vs->vs_map);
	amap_fini_pools();
	numa_state_destroy(vs->vs_numa);
	pmap_fini(&vs->vs_pmap);
	return error;
}

int
vmspace_pagein(struct vmspace *vs)
{
	struct vm_map_entry *e;
	vaddr_t va = 0, start, end;
	int error = 0, failed;

	for (;;) {
		vm_rwlock_rdlock(&vs->vs_map.m_lock);
		/* without swap, only files have pages elsewhere */
		for (e = vm_map_first_ge(&vs->vs_map, va); e != NULL &&
		    vs->vs_swap == NULL && e->e_obj == NULL;
		    e = vm_map_next(&vs->vs_map, e))
			;
		if (e != NULL) {
			start = MAX(va, e->e_start);
			end = e->e_end;
		}
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		if (e == NULL)
			return error;
		if ((failed = fault_populate(vs, start, end, true)) != 0) {
			error = failed;
			upvm_log(LOG_ERR, "paging [%#lx, %#lx) back in failed: "
			    "%s; what could not be read raises SIGBUS",
			    (unsigned long)start, (unsigned long)end,
			    strerror(-error));
		}
		va = end;
	}
}

/*
 * fini_files: each shared file region is written back and replaced by
 * the kernel's own mapping of its file (MAP_SHARED | MAP_FIXED), which
 * then holds all its data; one whose write-back failed stays, to be paged
 * in as private memory (its data kept, no longer the file's).
 * => no locks held; takes the map write lock.
 */
static void
fini_files(struct vmspace *vs)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e, *next;
	struct vnode *vn;
	void *p;

	vm_rwlock_wrlock(&map->m_lock);
	for (e = vm_map_first_ge(map, 0); e != NULL; e = next) {
		next = vm_map_next(map, e);
		if (e->e_obj == NULL || (e->e_etype & VM_ET_COPYONWRITE))
			continue;
		vn = container_of(e->e_obj, struct vnode, vn_pager);
		if (wb_range(vs, e->e_start, e->e_end, true) != 0) {
			upvm_log(LOG_ERR, "upvm_fini: [%#lx, %#lx) of %s could "
			    "not be written back; it stays as private memory "
			    "with its data", (unsigned long)e->e_start,
			    (unsigned long)e->e_end, vn->vn_where);
			continue;
		}
		p = raw_mmap((void *)e->e_start, e->e_end - e->e_start,
		    (e->e_prot & VM_PROT_WRITE) ? PROT_READ | PROT_WRITE :
		    PROT_READ, MAP_SHARED | MAP_FIXED, vn->vn_bfd,
		    (off_t)e->e_offset);
		if (raw_mmap_failed(p)) {
			upvm_log(LOG_ERR, "upvm_fini: cannot map %s at %#lx "
			    "again: %s; it stays as private memory",
			    vn->vn_where, (unsigned long)e->e_start,
			    strerror(-(int)(intptr_t)p));
			continue;
		}
		/* the kernel's mapping now: upvm forgets the range */
		atomic_fetch_sub(&vs->vs_resident, amap_resident(
		    e->e_aref.ar_amap, e->e_aref.ar_pageoff,
		    (int)vm_entry_npages(e)));
		vm_map_unlink(map, e);
		vm_map_entry_free(map, e);
	}
	vm_rwlock_unlock(&map->m_lock);
}

void
vmspace_fini(struct vmspace *vs)
{
	struct vm_map_entry *e;
	int left = 0;

	/* what is still mapped becomes ordinary memory: shared file regions
	   the kernel's mappings of their files, the rest paged in */
	flusher_stop(vs);
	dlink_detach(vs);
	if (vs->vs_pd != NULL)
		pd_stop(vs->vs_pd);
	fini_files(vs);
	(void)vmspace_pagein(vs);
	fault_stop(vs);
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL;
	    e = vm_map_next(&vs->vs_map, e), left++)
		pmap_unregister(&vs->vs_pmap, e->e_start,
		    e->e_end - e->e_start);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vm_map_destroy(&vs->vs_map);
	paging_teardown(vs);
	amap_fini_pools();
	numa_state_destroy(vs->vs_numa);
	vs->vs_numa = NULL;
	pmap_fini(&vs->vs_pmap);
	if (left > 0)
		upvm_log(LOG_INFO, "upvm_fini: %d regions stay mapped as "
		    "ordinary memory", left);
}

uint64_t
vmspace_fork_parent(struct vmspace *vs)
{
	if (vmspace_start(vs) != 0)
		upvm_log(LOG_ERR, "upvm: cannot restart after fork; faults "
		    "on managed memory will hang");
	return vs->vs_swap != NULL ? swap_fork_parent(vs->vs_swap) : 0;
}

void
vmspace_fork_done(struct vmspace *vs, uint64_t token, pid_t pid)
{
	if (vs->vs_swap != NULL)
		swap_fork_done(vs->vs_swap, token, pid);
}


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
	    atomic_load(&vs->vs_budget_now), vs->vs_slack, &vs->vs_pd)) != 0) {
		fault_stop(vs);
		upvm_log(LOG_ERR, "upvm: cannot start the pageout daemon: %s",
		    strerror(-error));
		return error;
	}
	/* without its flusher a program only risks more of its file
	   writes if it is killed: go on */
	(void)flusher_start(vs);
	dlink_start(vs);
	return 0;
}

void
vmspace_set_budget(struct vmspace *vs, long pages)
{
	pages = MAX(pages, 1);
	if (atomic_exchange(&vs->vs_budget_now, pages) == pages)
		return;
	if (vs->vs_pd != NULL)
		pd_set_budget(vs->vs_pd, pages);
}

void
vmspace_stop(struct vmspace *vs, void (*touch)(void))
{
	/* the link first (it sets the daemon's budget), then the daemon: a
	   fault thread may wait for it to free pages */
	flusher_stop(vs);
	dlink_stop(vs);
	if (vs->vs_pd != NULL)
		pd_stop(vs->vs_pd);
	if (touch != NULL)
		touch();
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

/* a swapped-out page's slot: the child's copy of its anon needs it too */
static bool
anon_child_needs_slot(const struct anon *an)
{
	return (an->an_flags & ANON_SWAPPED) &&
	    !(an->an_flags & ANON_RESIDENT) && an->an_swslot != 0;
}

static void
anon_fork_ref(struct vmspace *vs, struct anon *an)
{
	if (anon_child_needs_slot(an))
		swap_ref(vs->vs_swap, an->an_swslot, 1);
}

/*
 * vmspace_fork_prepare: the child's references on the slots of swapped-out
 * pages, taken in the parent before fork: the parent goes on as soon as
 * fork returns, and a slot it freed before the child took its reference
 * was free for the taking (the child's page overwritten, or the count
 * found at 0: chaos seed 300 with fork, three threads).  They are
 * recorded as the child's, so that they are given back when it is gone,
 * even without upvm_fini (swap_reap): with `told`, by the parent, in an
 * entry pending for the child that the parent gives back if the fork
 * fails (vmspace_fork_done); else by the child (anon_fork_child:
 * swap_hold), and a fork that fails leaks them (the slots stay allocated
 * until the swap file is closed).
 */
void
vmspace_fork_prepare(struct vmspace *vs, bool told)
{
	if (vs->vs_swap == NULL)
		return;
	if (told)
		(void)swap_fork_pend(vs->vs_swap);
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	anons_walk(vs, anon_fork_ref);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
}

/* anon_fork_unclean: a clean resident page, unprotected in the child,
   is dirty there; its slot is the parent's */
static void
anon_fork_unclean(struct vmspace *vs, struct anon *an)
{
	if (!(an->an_flags & ANON_CLEAN) || !(an->an_flags & ANON_RESIDENT))
		return;
	an->an_flags &= ~ANON_CLEAN;
	an->an_swslot = 0;
}

/* anon_fork_child: anon_fork_unclean, and a swapped-out page's slot
   reference (vmspace_fork_prepare's) recorded as this process's */
static void
anon_fork_child(struct vmspace *vs, struct anon *an)
{
	if (anon_child_needs_slot(an))
		swap_hold(vs->vs_swap, an->an_swslot, 1);
	else
		anon_fork_unclean(vs, an);
}

static int
vmspace_fork_fixup(struct vmspace *vs, int (*uninherit)(struct vmspace *))
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
		if (e->e_inherit == VM_INH_COPY &&
		    (error = pmap_register(&vs->vs_pmap, e->e_start,
		    e->e_end - e->e_start, vs->vs_regmodes)) != 0)
			upvm_log(LOG_ERR, "upvm: the child of fork cannot "
			    "register [%#lx, %#lx): %s", (unsigned long)
			    e->e_start, (unsigned long)e->e_end,
			    strerror(-error));
	if (error == 0 && vs->vs_swap != NULL)
		anons_walk(vs, swap_fork_child(vs->vs_swap) ?
		    anon_fork_unclean : anon_fork_child);
	if (error == 0 && uninherit != NULL)
		error = uninherit(vs);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	return error;
}

void
vmspace_fork_child(struct vmspace *vs, int (*uninherit)(struct vmspace *))
{
	if (vmspace_fork_fixup(vs, uninherit) != 0 || vmspace_start(vs) != 0)
		upvm_log(LOG_ERR, "upvm: the child of fork runs without upvm; "
		    "faults on its managed memory will hang");
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
