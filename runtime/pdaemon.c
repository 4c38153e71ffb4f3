/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pdaemon.c: the pageout daemon (mechanism; see pdaemon.h).
 *
 * A word on paging a run out.  The daemon holds the map read lock for a
 * whole batch, so no region goes away under it, and works in phases:
 *
 *  pd_collect: under the amap lock, the resident pages of a victim unit
 *	that no one else owns become anons in transit (ANON_TRANSIT), split
 *	into runs of contiguous pages, each clean (all have valid swap
 *	copies) or dirty.  From here until pd_finish the daemon owns them:
 *	faults on them wait, the daemon wakes them.
 *  pd_protect_write: each run is write-protected, so that nothing can
 *	change it any more (a writer blocks in a WP fault, which the handler
 *	leaves for the daemon); each dirty run gets a contiguous run of swap
 *	slots and one write, from the application's pages themselves.
 *  pd_finish: after the writes completed, under the amap lock, each run
 *	that made it is dropped from the page tables (MADV_DONTNEED) and its
 *	anons become swapped; a run whose write failed, or that got no swap,
 *	stays resident (dirty), and its transit ends.  Then the waiters are
 *	woken: they fault again and page the data back in.
 *
 * Dropping under the amap lock matters: the WP-fault handler takes the
 * same lock before it lets a write through, so a page is never dropped
 * after a write was let through and never written through after it was
 * dropped.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "amap.h"
#include "kmem.h"
#include "log.h"
#include "pdaemon.h"
#include "swap.h"
#include "uring.h"
#include "vmspace.h"

#define PD_BATCH_PAGES	2048	/* pages paged out per batch, at most */
#define PD_BATCH_READS	256	/* ... while pageins are going on: a read
				   queued behind a batch waits for it */
#define PD_MAX_RUNS	64	/* runs per batch (= I/Os in flight) */
#define PD_RING_DEPTH	64

struct pd_run {
	struct amap	*pr_amap;
	vaddr_t		 pr_va;
	int		 pr_slot;	/* first amap slot */
	int		 pr_n;
	bool		 pr_clean;
	uint64_t	 pr_swslot;	/* dirty: the run's slots; 0: none */
	int		 pr_error;
};

struct pd_batch {
	struct pd_run	 pb_runs[PD_MAX_RUNS];
	int		 pb_nruns;
	long		 pb_pages;
};

/*
 * Units for the clock: a unit is named by the page number of its first
 * page inside an entry (units are aligned in amap slot space, so a unit
 * never spans two amaps and pages of one unit share a reference bit).
 */
static vaddr_t
unit_end(struct vm_map_entry *e, vaddr_t va)
{
	int slot = vm_entry_slot(e, va);
	int next = (slot / AMAP_UNIT + 1) * AMAP_UNIT;

	return MIN(e->e_end, va + ptoa((vaddr_t)(next - slot)));
}

static bool
pu_next(void *arg, uint64_t unit, uint64_t *nextp)
{
	struct vm_map *map = arg;
	struct vm_map_entry *e;
	vaddr_t va = unit == UINT64_MAX ? 0 : ptoa((vaddr_t)unit);

	if ((e = vm_map_lookup(map, va)) != NULL && unit_end(e, va) < e->e_end)
		va = unit_end(e, va);
	else if ((e = vm_map_first_ge(map, e != NULL ? e->e_end : va)) !=
	    NULL)
		va = MAX(e->e_start, unit == UINT64_MAX ? 0 : va);
	else if ((e = vm_map_first_ge(map, 0)) != NULL)
		va = e->e_start;
	else
		return false;
	*nextp = atop(va);
	return true;
}

static bool
pu_referenced(void *arg, uint64_t unit)
{
	struct vm_map_entry *e = vm_map_lookup(arg, ptoa((vaddr_t)unit));

	return e != NULL && e->e_aref.ar_amap != NULL &&
	    amap_test_clear_unit(e->e_aref.ar_amap,
	    vm_entry_slot(e, ptoa((vaddr_t)unit)));
}

/* a slot the daemon may take: resident, and not owned by anyone */
static bool
slot_evictable(struct amap *am, int slot)
{
	uintptr_t s = amap_slot(am, slot);
	struct anon *an;

	if (s == SLOT_RESIDENT)
		return true;
	if ((an = amap_anon_at(am, slot)) == NULL)
		return false;
	return (an->an_flags & (ANON_RESIDENT | ANON_TRANSIT |
	    ANON_POISON)) == ANON_RESIDENT && atomic_load(&an->an_ref) == 1;
}

static long
pu_evictable(void *arg, uint64_t unit)
{
	vaddr_t va = ptoa((vaddr_t)unit), end;
	struct vm_map_entry *e = vm_map_lookup(arg, va);
	struct amap *am;
	long n = 0;

	if (e == NULL || (am = e->e_aref.ar_amap) == NULL)
		return 0;
	end = unit_end(e, va);
	vm_mutex_lock(&am->am_lock);
	for (int s = vm_entry_slot(e, va); s < vm_entry_slot(e, end); s++)
		n += slot_evictable(am, s);
	vm_mutex_unlock(&am->am_lock);
	return n;
}

static const struct pdpol_unit_ops pd_unit_ops = {
	.pu_next = pu_next,
	.pu_referenced = pu_referenced,
	.pu_evictable = pu_evictable,
};

/*
 * pd_collect: take the evictable pages of one unit into runs.
 * => map read-locked; takes and drops the amap lock.
 */
static void
pd_collect(struct pdaemon *pd, struct pd_batch *pb, uint64_t unit)
{
	vaddr_t va = ptoa((vaddr_t)unit), end;
	struct vm_map_entry *e = vm_map_lookup(&pd->pdd_vs->vs_map, va);
	struct pd_run *r = NULL;
	struct amap *am;
	struct anon *an;
	bool clean;

	if (e == NULL || (am = e->e_aref.ar_amap) == NULL)
		return;
	end = unit_end(e, va);
	vm_mutex_lock(&am->am_lock);
	for (int s = vm_entry_slot(e, va); s < vm_entry_slot(e, end); s++) {
		if (!slot_evictable(am, s) || (an = amap_anon(am, s)) == NULL) {
			r = NULL;
			continue;
		}
		clean = (an->an_flags & ANON_SWAPPED) != 0;
		if (r == NULL || r->pr_clean != clean ||
		    r->pr_slot + r->pr_n != s) {
			if (pb->pb_nruns == PD_MAX_RUNS)
				break;
			r = &pb->pb_runs[pb->pb_nruns++];
			*r = (struct pd_run){ .pr_amap = am, .pr_slot = s,
			    .pr_va = e->e_start +
			    ptoa((vaddr_t)(s - e->e_aref.ar_pageoff)),
			    .pr_clean = clean };
		}
		an->an_flags |= ANON_TRANSIT;
		r->pr_n++;
		pb->pb_pages++;
	}
	vm_mutex_unlock(&am->am_lock);
}

/*
 * pd_set_stuck: swap is full (the cap or the disk): pages stay resident
 * past the budget and faults stop waiting for the daemon, until a later
 * allocation succeeds.  The log says so once.
 */
static void
pd_set_stuck(struct pdaemon *pd, int error)
{
	atomic_store(&pd->pdd_stuck, true);
	if (!atomic_exchange(&pd->pdd_said_full, true))
		upvm_log(LOG_WARN, "paging out failed: %s (swap %s); pages "
		    "stay resident past the budget, no data is dropped; free "
		    "disk space or raise UPVM_SWAP_MAX", strerror(-error),
		    pd->pdd_swap->sw_where);
	STAT_INC(&pd->pdd_vs->vs_stats, st_swap_full);
}

/* pd_io_error: a write to swap failed: the run stays resident */
static void
pd_io_error(struct pdaemon *pd, struct pd_run *r, int error)
{
	STAT_INC(&pd->pdd_vs->vs_stats, st_io_errors);
	upvm_log(LOG_ERR, "writing %d pages to swap (%s) failed: %s; they "
	    "stay resident", r->pr_n, pd->pdd_swap->sw_where,
	    strerror(-error));
}

/*
 * pd_protect_write: write-protect every run, give dirty runs swap slots
 * and write them; wait for all writes.
 * => map read-locked.  Sets pr_error for runs that must stay resident.
 */
static void
pd_protect_write(struct pdaemon *pd, struct pd_batch *pb)
{
	struct vmspace *vs = pd->pdd_vs;
	struct ring_cqe cqe[PD_MAX_RUNS];
	int inflight = 0, n, error;

	for (int i = 0; i < pb->pb_nruns; i++) {
		struct pd_run *r = &pb->pb_runs[i];

		error = pmap_writeprotect(&vs->vs_pmap, r->pr_va,
		    ptoa((vsize_t)r->pr_n), true, true);
		if (error == 0 && !r->pr_clean) {
			error = swap_alloc(pd->pdd_swap, r->pr_n,
			    &r->pr_swslot);
			if (error != 0)
				pd_set_stuck(pd, error);
			else
				atomic_store(&pd->pdd_stuck, false);
		}
		if (error == 0 && !r->pr_clean) {
			error = swap_write(pd->pdd_swap, pd->pdd_ring,
			    r->pr_swslot, (const void *)r->pr_va, r->pr_n,
			    (uint64_t)i);
			inflight += error == 0;
			if (error != 0 && error != -EBUSY)
				pd_io_error(pd, r, error);
		}
		r->pr_error = error;
		if (error != 0)
			upvm_log(LOG_DEBUG, "pageout run %#lx+%d: %s",
			    (unsigned long)r->pr_va, r->pr_n,
			    strerror(-error));
	}
	if (inflight > 0 && (error = ring_submit(pd->pdd_ring)) < 0)
		upvm_log(LOG_ERR, "submitting swap writes failed: %s",
		    strerror(-error));
	while (inflight > 0) {
		if ((n = ring_reap(pd->pdd_ring, cqe, PD_MAX_RUNS, true)) < 0)
			break;
		for (int k = 0; k < n; k++, inflight--) {
			struct pd_run *r = &pb->pb_runs[cqe[k].rc_tag];

			if (cqe[k].rc_res == (int)ptoa((size_t)r->pr_n))
				continue;
			r->pr_error = cqe[k].rc_res < 0 ? cqe[k].rc_res : -EIO;
			pd_io_error(pd, r, r->pr_error);
		}
	}
}

/*
 * pd_finish: drop the runs that made it to swap; end every transit; wake.
 * => map read-locked; takes and drops the amap locks.
 */
static long
pd_finish(struct pdaemon *pd, struct pd_batch *pb)
{
	struct vmspace *vs = pd->pdd_vs;
	long freed = 0;

	for (int i = 0; i < pb->pb_nruns; i++) {
		struct pd_run *r = &pb->pb_runs[i];
		struct amap *am = r->pr_amap;

		vm_mutex_lock(&am->am_lock);
		if (r->pr_error == 0)
			pmap_dontneed(&vs->vs_pmap, r->pr_va,
			    ptoa((vsize_t)r->pr_n));
		for (int k = 0; k < r->pr_n; k++) {
			struct anon *an = amap_anon_at(am, r->pr_slot + k);

			an->an_flags &= ~ANON_TRANSIT;
			if (r->pr_error != 0)
				continue;
			an->an_flags &= ~ANON_RESIDENT;
			if (!r->pr_clean) {
				an->an_flags |= ANON_SWAPPED;
				an->an_swslot = r->pr_swslot + (uint64_t)k;
			}
		}
		vm_mutex_unlock(&am->am_lock);
		if (r->pr_error != 0 && r->pr_swslot != 0)
			swap_free(pd->pdd_swap, r->pr_swslot, r->pr_n);
		pmap_wake(&vs->vs_pmap, r->pr_va, ptoa((vsize_t)r->pr_n));
		if (r->pr_error != 0)
			continue;
		freed += r->pr_n;
		if (r->pr_clean) {
			STAT_ADD(&vs->vs_stats, st_clean_drops,
			    (uint64_t)r->pr_n);
		} else {
			STAT_ADD(&vs->vs_stats, st_pageouts,
			    (uint64_t)r->pr_n);
			STAT_INC(&vs->vs_stats, st_pageout_ios);
		}
	}
	atomic_fetch_sub(&vs->vs_resident, freed);
	return freed;
}

/*
 * pd_batch: page out up to `want` pages.
 * => no locks held.  Returns the pages freed.
 */
static long
pd_batch(struct pdaemon *pd, long want)
{
	struct vm_map *map = &pd->pdd_vs->vs_map;
	uint64_t victims[PD_MAX_RUNS];
	struct pd_batch pb = { .pb_nruns = 0 };
	long freed = 0;
	int nv;

	vm_rwlock_rdlock(&map->m_lock);
	nv = pdpol_select(&pd->pdd_clock, &pd_unit_ops, map,
	    MIN(want, PD_BATCH_PAGES), victims, PD_MAX_RUNS / 2,
	    2 * (long)(atop(map->m_size) / AMAP_UNIT + map->m_nentries + 1));
	for (int i = 0; i < nv && pb.pb_nruns < PD_MAX_RUNS; i++)
		pd_collect(pd, &pb, victims[i]);
	if (pb.pb_nruns > 0) {
		pd_protect_write(pd, &pb);
		freed = pd_finish(pd, &pb);
	}
	vm_rwlock_unlock(&map->m_lock);
	upvm_log(LOG_DEBUG, "pageout: want %ld, %d units, %d runs, %ld pages, "
	    "%ld freed", want, nv, pb.pb_nruns, pb.pb_pages, freed);
	return freed;
}

static void *
pd_main(void *arg)
{
	struct pdaemon *pd = arg;
	struct vmspace *vs = pd->pdd_vs;
	struct timespec ts;
	bool running = false;
	long want, freed;
	uint64_t ins, last_ins = 0;

	pthread_mutex_lock(&pd->pdd_lock);
	while (!pd->pdd_stop) {
		want = pdpol_want(&pd->pdd_marks,
		    atomic_load(&vs->vs_resident), running);
		if (want == 0) {
			running = false;
			pthread_cond_broadcast(&pd->pdd_freed);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&pd->pdd_work, &pd->pdd_lock,
			    &ts);
			continue;
		}
		running = true;
		pthread_mutex_unlock(&pd->pdd_lock);
		/* small batches while reads wait on the same disk */
		ins = atomic_load_explicit(&vs->vs_stats.st_pageins,
		    memory_order_relaxed);
		freed = pd_batch(pd, MIN(want, ins != last_ins ?
		    PD_BATCH_READS : PD_BATCH_PAGES));
		last_ins = ins;
		pthread_mutex_lock(&pd->pdd_lock);
		pthread_cond_broadcast(&pd->pdd_freed);
		if (freed == 0) {
			/* nothing evictable now: let faults settle */
			pthread_mutex_unlock(&pd->pdd_lock);
			nanosleep(&(struct timespec){ .tv_nsec = 2000000 },
			    NULL);
			pthread_mutex_lock(&pd->pdd_lock);
		}
	}
	pthread_mutex_unlock(&pd->pdd_lock);
	return NULL;
}

int
pd_start(struct vmspace *vs, struct swap *sw, long budget, long slack,
    struct pdaemon **out)
{
	struct pdaemon *pd;
	sigset_t all, old;
	int error;

	if ((pd = kmem_alloc(sizeof(*pd))) == NULL)
		return -ENOMEM;
	pd->pdd_vs = vs;
	pd->pdd_swap = sw;
	pdpol_marks(budget, slack, &pd->pdd_marks);
	pthread_mutex_init(&pd->pdd_lock, NULL);
	pthread_cond_init(&pd->pdd_work, NULL);
	pthread_cond_init(&pd->pdd_freed, NULL);
	atomic_init(&pd->pdd_stuck, false);
	atomic_init(&pd->pdd_said_full, false);
	atomic_init(&pd->pdd_stopped, false);
	atomic_init(&pd->pdd_peak, 0);
	pd->pdd_stop = false;
	pd->pdd_clock.pc_valid = false;
	if ((error = ring_create(PD_RING_DEPTH, &pd->pdd_ring)) != 0)
		goto fail;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = -pthread_create(&pd->pdd_thread, NULL, pd_main, pd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		ring_destroy(pd->pdd_ring);
		goto fail;
	}
	pthread_setname_np(pd->pdd_thread, "upvm-pageout");
	*out = pd;
	return 0;
fail:
	kmem_free(pd, sizeof(*pd));
	return error;
}

void
pd_stop(struct pdaemon *pd)
{
	pthread_mutex_lock(&pd->pdd_lock);
	if (pd->pdd_stop) {
		pthread_mutex_unlock(&pd->pdd_lock);
		return;
	}
	pd->pdd_stop = true;
	atomic_store(&pd->pdd_stopped, true);	/* no more throttling */
	pthread_cond_broadcast(&pd->pdd_work);
	pthread_cond_broadcast(&pd->pdd_freed);
	pthread_mutex_unlock(&pd->pdd_lock);
	pthread_join(pd->pdd_thread, NULL);
}

void
pd_destroy(struct pdaemon *pd)
{
	pd_stop(pd);
	ring_destroy(pd->pdd_ring);
	kmem_free(pd, sizeof(*pd));
}

bool
pd_pressure(struct pdaemon *pd)
{
	return atomic_load_explicit(&pd->pdd_vs->vs_resident,
	    memory_order_relaxed) > pd->pdd_marks.pm_high;
}

void
pd_kick(struct pdaemon *pd)
{
	long res = atomic_load_explicit(&pd->pdd_vs->vs_resident,
	    memory_order_relaxed), peak;

	peak = atomic_load_explicit(&pd->pdd_peak, memory_order_relaxed);
	while (res > peak && !atomic_compare_exchange_weak(&pd->pdd_peak,
	    &peak, res))
		;
	if (res > pd->pdd_marks.pm_high) {
		pthread_mutex_lock(&pd->pdd_lock);
		pthread_cond_signal(&pd->pdd_work);
		pthread_mutex_unlock(&pd->pdd_lock);
	}
}

long
pd_throttle(struct pdaemon *pd, long npages)
{
	struct vmspace *vs = pd->pdd_vs;
	long cur, room, n;

	for (;;) {
		cur = atomic_load(&vs->vs_resident);
		room = pd->pdd_marks.pm_limit - cur;
		if (room > 0 || atomic_load(&pd->pdd_stuck) ||
		    atomic_load(&pd->pdd_stopped)) {
			/* reserve: counted as resident until the claim */
			n = room > 0 ? MIN(room, npages) : npages;
			if (atomic_compare_exchange_weak(&vs->vs_resident,
			    &cur, cur + n))
				return n;
			continue;
		}
		pthread_mutex_lock(&pd->pdd_lock);
		if (pd->pdd_stop) {
			pthread_mutex_unlock(&pd->pdd_lock);
			continue;	/* stopped: the next try reserves */
		}
		pthread_cond_signal(&pd->pdd_work);
		pthread_cond_wait(&pd->pdd_freed, &pd->pdd_lock);
		pthread_mutex_unlock(&pd->pdd_lock);
	}
}
