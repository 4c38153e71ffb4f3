/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fault.c: the fault engine.
 *
 * A word on page faults.  A fault event names an address.  Resolving it
 * goes in phases over a fault context (the BSDs' uvm_faultctx):
 *
 *  fault_lookup: take the map read lock and find the entry.  No entry: the
 *	range was unmapped after the fault was queued (unregistering woke the
 *	thread; it will refault or take SIGSEGV), so there is nothing to do.
 *	An entry without a private amap (needs-copy) is fixed under the write
 *	lock and the lookup restarts (-ERESTART).
 *  fault_claim: under the amap lock, look at the faulting page's slot.
 *	RESIDENT: another fault resolved it; wake the thread.  BUSY: another
 *	handler is resolving it right now; its UFFDIO_COPY will wake every
 *	thread waiting in its range, so there is nothing to do.  EMPTY: ask
 *	the cluster policy for a range, and claim the run of empty slots
 *	around the page inside it (marking them BUSY).
 *  fault_fill: get the data from the lower layer (the zero pager lends a
 *	run of shared zeros) and UFFDIO_COPY it in chunks: the faulting
 *	page's chunk first, which wakes the thread, then the rest while the
 *	application already runs.  Each chunk is settled (BUSY -> RESIDENT)
 *	under the amap lock as soon as it is mapped.
 *
 * The map read lock is held from lookup to the last settle: upvm_unmap()
 * takes it for writing, so no range is unregistered or unmapped under a
 * resolution in progress, and no SLOT_BUSY exists while it is write-locked.
 *
 * Failures.  -EEXIST for a page whose slot was empty means a page appeared
 * behind our back (it is settled RESIDENT and counted as an error); -EAGAIN
 * (a non-cooperative event pending) is retried; anything else (-ENOMEM,
 * -ENOENT for a range unmapped behind our back) settles the rest EMPTY and
 * wakes the threads, which fault again and retry.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "amap.h"
#include "fault.h"
#include "kmem.h"
#include "log.h"
#include "pager.h"
#include "pagehash.h"
#include "pdaemon.h"
#include "place.h"
#include "swap.h"
#include "uring.h"
#include "sys.h"
#include "vmspace.h"

#define FAULT_STACK_SIZE	(256 * 1024)
#define FAULT_BUF_SIZE		((size_t)FAULT_MAX_CLUSTER * PAGE_SIZE)
#define FAULT_EAGAIN_TRIES	1000
#define FAULT_RING_DEPTH	16
#define FAULT_READ_SPIN_US	200	/* a 4 KiB read: ~50-80 us */

static void *fault_mem_alloc(size_t);
struct fault_ctx;
static vaddr_t fault_run_va(struct fault_ctx *, int);
static void fault_mem_free(void *, size_t);

struct fault_ctx {
	struct vmspace		*fc_vs;
	vaddr_t			 fc_va;		/* faulting page */
	void			*fc_buf;	/* FAULT_BUF_SIZE for the pager */
	struct vm_map_entry	*fc_entry;	/* [map locked] */
	struct amap		*fc_amap;
	int			 fc_start;	/* claimed slots: first */
	int			 fc_n;		/*   and how many */
	uintptr_t		 fc_state;	/* slot value if none claimed */
	uint64_t		 fc_t0;		/* event read, ns; 0: WILLNEED */
	uint64_t		 fc_wake_ns;	/* faulting page mapped, ns */
	struct ring		*fc_ring;	/* pagein I/O (with a swap) */
	uint64_t		 fc_swslot;	/* pagein: swap slot of fc_start */
	long			 fc_max;	/* pages the budget allows */
	long			 fc_reserved;	/* of those, counted resident */
	pid_t			 fc_tid;	/* faulting thread, or 0 */
	int			 fc_node;	/* its NUMA node, -1: not looked
						   up yet (numa_prepare) */
};

/* what fault_claim found */
#define FC_FILL		1	/* empty slots claimed: fill from below */
#define FC_PAGEIN	2	/* swapped-out slots claimed: read them */
#define FC_WAIT		3	/* someone owns the page: it wakes us */
#define FC_WAKE		4	/* the page is resident: wake the thread */
#define FC_POISON	5	/* the page's data is lost: SIGBUS */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * fault_amap_fix: give the entry at va a private amap (needs-copy, or no
 * amap yet).
 * => map unlocked on entry and return; takes the write lock.
 */
static int
fault_amap_fix(struct vmspace *vs, vaddr_t va)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	int error = 0;

	vm_rwlock_wrlock(&map->m_lock);
	e = vm_map_lookup(map, va);
	if (e != NULL && (e->e_aref.ar_amap == NULL ||
	    (e->e_etype & VM_ET_NEEDSCOPY))) {
		error = amap_copy(&e->e_aref, (int)vm_entry_npages(e));
		if (error == 0)
			e->e_etype &= (uint16_t)~VM_ET_NEEDSCOPY;
	}
	vm_rwlock_unlock(&map->m_lock);
	return error;
}

/*
 * fault_lookup: find the entry of fc_va.
 * => on 0, map read-locked and fc_entry/fc_amap set.
 * => -EFAULT: no entry (map unlocked).  -ERESTART: the amap was fixed,
 *    look up again (map unlocked).  -ENOMEM (map unlocked).
 */
static int
fault_lookup(struct fault_ctx *fc)
{
	struct vm_map *map = &fc->fc_vs->vs_map;
	struct vm_map_entry *e;
	int error;

	vm_rwlock_rdlock(&map->m_lock);
	e = vm_map_lookup(map, fc->fc_va);
	if (e == NULL) {
		vm_rwlock_unlock(&map->m_lock);
		return -EFAULT;
	}
	if (e->e_aref.ar_amap == NULL || (e->e_etype & VM_ET_NEEDSCOPY)) {
		vm_rwlock_unlock(&map->m_lock);
		error = fault_amap_fix(fc->fc_vs, fc->fc_va);
		return error != 0 ? error : -ERESTART;
	}
	fc->fc_entry = e;
	fc->fc_amap = e->e_aref.ar_amap;
	return 0;
}

/*
 * fault_trim: cut [*lop, *hip) down to fc_max pages around fc_va (the
 * budget's room), keeping the faulting page.
 */
static void
fault_trim(struct fault_ctx *fc, vaddr_t *lop, vaddr_t *hip)
{
	vsize_t max = ptoa((vsize_t)fc->fc_max);
	vsize_t before = ptoa((vsize_t)(fc->fc_max / 2));

	VM_ASSERT(fc->fc_max >= 1);
	if (*hip - *lop <= max)
		return;
	*lop = MAX(*lop, fc->fc_va - MIN(fc->fc_va - *lop, before));
	*hip = MIN(*hip, *lop + max);
	VM_ASSERT(*lop <= fc->fc_va && fc->fc_va < *hip);
}

/*
 * fault_claim: look at the faulting page's slot and claim what resolving
 * it takes: the run of empty slots around it where the cluster policy says
 * (FC_FILL), or the run of swapped-out pages with consecutive swap slots
 * (FC_PAGEIN), both trimmed to the budget's room.
 * => map read-locked; takes and drops the amap lock.
 * => returns FC_*; fc_start/fc_n (and fc_swslot) for the claims.
 */
static int
fault_claim(struct fault_ctx *fc)
{
	struct vm_map_entry *e = fc->fc_entry;
	struct amap *am = fc->fc_amap;
	const struct cluster_config *cc = &fc->fc_vs->vs_cc;
	int slot = vm_entry_slot(e, fc->fc_va), kind, flags;
	vaddr_t lo, hi, slo, shi;
	struct anon *an;

	VM_ASSERT_RLOCKED(&fc->fc_vs->vs_map.m_lock);
	fc->fc_n = 0;
	vm_mutex_lock(&am->am_lock);
	fc->fc_state = amap_slot(am, slot);
	an = amap_anon_at(am, slot);
	if (fc->fc_state == SLOT_BUSY ||
	    (an != NULL && (an->an_flags & ANON_TRANSIT))) {
		/* staged out (move protocol): the daemon maps it back */
		if (an != NULL && (an->an_flags & ANON_RESIDENT))
			an->an_flags |= ANON_WANTED;
		vm_mutex_unlock(&am->am_lock);
		return FC_WAIT;
	}
	if (an != NULL && (an->an_flags & ANON_POISON)) {
		vm_mutex_unlock(&am->am_lock);
		return FC_POISON;
	}
	if (fc->fc_state != SLOT_EMPTY && (an == NULL ||
	    (an->an_flags & ANON_RESIDENT))) {
		vm_mutex_unlock(&am->am_lock);
		return FC_WAKE;
	}
	/*
	 * A guess costs memory the budget may not have: pageins, and any
	 * fault past the high watermark, resolve the page alone until a
	 * stream shows.
	 */
	flags = an != NULL || (fc->fc_vs->vs_pd != NULL &&
	    pd_pressure(fc->fc_vs->vs_pd)) ? CLUSTER_F_SINGLE : 0;
	kind = cluster_choose(&e->e_cluster, cc, e->e_advice, flags,
	    e->e_start, e->e_end, fc->fc_va, &lo, &hi);
	if (kind == CLUSTER_BLOCK && flags == 0) {
		/* a densely filling area: claim the super-block */
		cluster_superblock(cc, e->e_start, e->e_end, fc->fc_va, &slo,
		    &shi);
		if (amap_sample(am, vm_entry_slot(e, slo),
		    vm_entry_slot(e, shi), cc->cc_cluster) >=
		    CLUSTER_DENSE_MIN) {
			lo = slo;
			hi = shi;
		}
	}
	fault_trim(fc, &lo, &hi);
	if (an == NULL) {
		fc->fc_n = amap_claim(am, slot, vm_entry_slot(e, lo),
		    vm_entry_slot(e, hi), &fc->fc_start, &fc->fc_state);
		kind = FC_FILL;
	} else {
		fc->fc_n = amap_claim_swapped(am, slot, vm_entry_slot(e, lo),
		    vm_entry_slot(e, hi), &fc->fc_start, &fc->fc_swslot);
		kind = FC_PAGEIN;
	}
	amap_ref_unit(am, slot);
	vm_mutex_unlock(&am->am_lock);
	VM_ASSERT(fc->fc_n > 0 && (fc->fc_reserved == 0 ||
	    fc->fc_n <= fc->fc_reserved));
	/* the claim becomes resident: from the reservation, if any */
	atomic_fetch_add(&fc->fc_vs->vs_resident, fc->fc_n - fc->fc_reserved);
	fc->fc_reserved = 0;
	return kind;
}

/*
 * fault_claim_next: claim the first run of empty or swapped-out slots in
 * [fc_va, hi), FAULT_MAX_CLUSTER at most (WILLNEED, and upvm_fini paging
 * everything back in).
 * => map read-locked; takes and drops the amap lock.
 * => returns FC_FILL or FC_PAGEIN with fc_va/fc_start/fc_n set, or 0 if
 *    there is none.
 */
static int
fault_claim_next(struct fault_ctx *fc, vaddr_t hi)
{
	struct vm_map_entry *e = fc->fc_entry;
	struct amap *am = fc->fc_amap;
	int slot = vm_entry_slot(e, fc->fc_va), end = vm_entry_slot(e, hi);
	int kind = 0, lim;
	struct anon *an;

	VM_ASSERT_RLOCKED(&fc->fc_vs->vs_map.m_lock);
	fc->fc_n = 0;
	vm_mutex_lock(&am->am_lock);
	for (; slot < end && kind == 0; slot++) {
		lim = MIN(end, slot + (int)fc->fc_max);
		an = amap_anon_at(am, slot);
		if (amap_slot(am, slot) == SLOT_EMPTY) {
			fc->fc_n = amap_claim(am, slot, slot, lim,
			    &fc->fc_start, &fc->fc_state);
			kind = FC_FILL;
		} else if (an != NULL && (fc->fc_n = amap_claim_swapped(am,
		    slot, slot, lim, &fc->fc_start, &fc->fc_swslot)) > 0) {
			kind = FC_PAGEIN;
		}
	}
	vm_mutex_unlock(&am->am_lock);
	if (kind != 0) {
		fc->fc_va = e->e_start + ptoa((vaddr_t)(fc->fc_start -
		    e->e_aref.ar_pageoff));
		atomic_fetch_add(&fc->fc_vs->vs_resident, fc->fc_n -
		    fc->fc_reserved);
		fc->fc_reserved = 0;
	}
	return kind;
}

/* fault_settle: end the claim of n slots from `slot` as `to` */
static void
fault_settle(struct fault_ctx *fc, int slot, int n, uintptr_t to)
{
	if (n == 0)
		return;
	vm_mutex_lock(&fc->fc_amap->am_lock);
	amap_settle(fc->fc_amap, slot, n, to);
	vm_mutex_unlock(&fc->fc_amap->am_lock);
	/* claimed pages counted as resident already */
	if (to == SLOT_EMPTY)
		atomic_fetch_sub(&fc->fc_vs->vs_resident, n);
}

/*
 * fault_copy_placed: UFFDIO_COPY the first piece of n pages at src to dst
 * that one placement covers (all n, or fewer where `nearest` fills a
 * node's budget exactly), on the node the policy chooses, and count them
 * there.  pmap_flags: pmap_copy's.
 * => pmap_copy's error; *donep the bytes mapped (less than n pages with
 *    no error: the rest is the next piece's).
 */
static int
fault_copy_placed(struct fault_ctx *fc, vaddr_t dst, const char *src,
    long n, int pmap_flags, vsize_t *donep)
{
	struct vmspace *vs = fc->fc_vs;
	struct numa_state *ns = vs->vs_numa;
	struct numa_target tgt;
	int error;

	if (ns != NULL)
		n = numa_prepare(ns, fc->fc_tid, &fc->fc_node, n, &tgt);
	*donep = 0;
	error = pmap_copy(&vs->vs_pmap, dst, src, ptoa((vsize_t)n),
	    pmap_flags, donep);
	STAT_INC(&vs->vs_stats, st_copies);
	if (ns != NULL) {
		if (*donep > 0)
			numa_placed(ns, &tgt, dst, (long)atop(*donep));
		numa_unreserve(ns, &tgt);
	}
	return error;
}

/*
 * fault_copy_run: UFFDIO_COPY slots [slot, slot + n) from src, settling
 * each page as the kernel reports it.  When the run fails as a whole (a
 * hole made behind upvm's back fails every COPY that spans it), it is
 * retried page by page, so that the pages that can be resolved are.
 * => map read-locked.  Returns 0, or the first -errno, with each page that
 *    could not be resolved settled EMPTY and its threads woken (they fault
 *    again: a retry, or SIGSEGV where the mapping is gone).
 */
static int
fault_copy_run(struct fault_ctx *fc, int slot, int n, const char *src)
{
	struct vmspace *vs = fc->fc_vs;
	struct vm_map_entry *e = fc->fc_entry;
	vaddr_t dst = e->e_start + ptoa((vaddr_t)(slot - e->e_aref.ar_pageoff));
	int error, first_error = 0, tries = 0, np, failed = 0;
	bool single = false;
	vsize_t done;

	while (n > 0) {
		error = fault_copy_placed(fc, dst, src, single ? 1 : n, 0,
		    &done);
		np = (int)atop(done);
		fault_settle(fc, slot, np, SLOT_RESIDENT);
		slot += np, n -= np, dst += done, src += done;
		if (error == 0)
			continue;
		if (error == -EAGAIN && ++tries < FAULT_EAGAIN_TRIES) {
			STAT_INC(&vs->vs_stats, st_retries);
			sched_yield();
			continue;
		}
		if (error != -EEXIST && !single && n > 1) {
			single = true;
			continue;
		}
		if (error == -EEXIST) {
			/* present though never resolved by us: keep it */
			STAT_INC(&vs->vs_stats, st_errors);
			fault_settle(fc, slot, 1, SLOT_RESIDENT);
		} else {
			if (failed++ == 0)
				first_error = error;
			fault_settle(fc, slot, 1, SLOT_EMPTY);
			pmap_wake(&vs->vs_pmap, dst, PAGE_SIZE);
		}
		slot++, n--, dst += PAGE_SIZE, src += PAGE_SIZE;
	}
	if (failed > 0) {
		upvm_log(LOG_WARN, "resolving %d pages up to %#lx failed: %s; "
		    "the threads will fault again", failed, (unsigned long)dst,
		    strerror(-first_error));
		STAT_ADD(&vs->vs_stats, st_errors, (uint64_t)failed);
	}
	return first_error;
}

/*
 * fault_fill: bring in the claimed run: data from the lower layer, copied
 * in FAULT_CHUNK pieces, the faulting page's piece first.
 * => map read-locked.  fc_n > 0 slots claimed; all are settled on return.
 */
static int
fault_fill(struct fault_ctx *fc)
{
	struct vm_map_entry *e = fc->fc_entry;
	struct pager *pgr = e->e_obj != NULL ? e->e_obj : zero_pager();
	int first = fc->fc_start, n = fc->fc_n, error, r, mid, c0;
	struct pager_req req = {
		.pr_off = e->e_offset + ptoa((voff_t)(first -
		    e->e_aref.ar_pageoff)),
		.pr_npages = n,
		.pr_flags = PGO_LOANOK | PGO_SYNC,
		.pr_buf = fc->fc_buf,
	};
	const char *src;

	VM_ASSERT(n > 0 && n <= FAULT_MAX_CLUSTER);
	if ((error = pager_get(pgr, &req)) != 0) {
		fault_settle(fc, first, n, SLOT_EMPTY);
		pmap_wake(&fc->fc_vs->vs_pmap, e->e_start +
		    ptoa((vaddr_t)(first - e->e_aref.ar_pageoff)),
		    ptoa((vsize_t)n));
		return error;
	}
	src = req.pr_buf;
	/*
	 * The chunk holding the faulting page, then up, then down.  Every
	 * chunk is tried even after one failed: each must end its claim.
	 */
	mid = vm_entry_slot(e, fc->fc_va);
	c0 = first + ((mid - first) / FAULT_CHUNK) * FAULT_CHUNK;
	for (int s = c0; s < first + n; s += FAULT_CHUNK) {
		r = fault_copy_run(fc, s, MIN(FAULT_CHUNK, first + n - s),
		    src + ptoa((size_t)(s - first)));
		error = error != 0 ? error : r;
		if (s == c0 && fc->fc_t0 != 0)
			fc->fc_wake_ns = now_ns();
	}
	for (int s = c0 - FAULT_CHUNK; s > first - FAULT_CHUNK;
	    s -= FAULT_CHUNK) {
		int lo = MAX(s, first);

		r = fault_copy_run(fc, lo, s + FAULT_CHUNK - lo,
		    src + ptoa((size_t)(lo - first)));
		error = error != 0 ? error : r;
	}
	return error;
}

static void
fault_account(struct fault_ctx *fc, int npages)
{
	struct vm_stats *st = &fc->fc_vs->vs_stats;

	STAT_INC(st, st_faults_resolved);
	STAT_INC(st, st_clusters);
	STAT_ADD(st, st_pages_resolved, (uint64_t)npages);
	STAT_INC(st, st_cluster_hist[stats_bucket((uint64_t)npages,
	    UPVM_CLUSTER_BUCKETS)]);
	STAT_INC(st, st_latency_hist[stats_bucket((fc->fc_wake_ns -
	    fc->fc_t0) / 1000, UPVM_LATENCY_BUCKETS)]);
}

/* fault_run_va: the address of slot `slot` in the faulting entry */
static vaddr_t
fault_run_va(struct fault_ctx *fc, int slot)
{
	struct vm_map_entry *e = fc->fc_entry;

	return e->e_start + ptoa((vaddr_t)(slot - e->e_aref.ar_pageoff));
}

/*
 * fault_poison: the data of [va, va + n pages) is lost: make every access
 * raise SIGBUS (UFFDIO_POISON; on kernels without it, signal the faulting
 * thread), never map zeros there.
 * => map read-locked.
 */
static void
fault_poison(struct fault_ctx *fc, vaddr_t va, int n)
{
	vsize_t done;

	if (pmap_poison(&fc->fc_vs->vs_pmap, va, ptoa((vsize_t)n), 0,
	    &done) == 0)
		return;
	if (fc->fc_tid != 0)
		tgkill(getpid(), fc->fc_tid, SIGBUS);
}

/*
 * fault_pagein: read the claimed run of swapped-out pages and map it
 * write-protected (clean: its swap copy stays valid).
 * => map read-locked; all claimed pages settled on return.
 */
static int
fault_pagein(struct fault_ctx *fc)
{
	struct vmspace *vs = fc->fc_vs;
	struct amap *am = fc->fc_amap;
	vaddr_t va = fault_run_va(fc, fc->fc_start);
	int n = fc->fc_n, error, done_pages;
	vsize_t done = 0;

	/*
	 * The faulting thread waits for this read.  When it is the only
	 * pagein in flight, its CPU is idle: poll for the completion rather
	 * than pay a sleep and a wakeup; with more, the CPUs have
	 * application threads to run.
	 */
	if (fc->fc_ring != NULL)
		ring_set_spin(fc->fc_ring, atomic_fetch_add(
		    &vs->vs_reads_inflight, 1) == 0 ? FAULT_READ_SPIN_US : 0);
	error = fc->fc_ring == NULL ? -ENXIO : swap_read_sync(vs->vs_swap,
	    fc->fc_ring, fc->fc_swslot, fc->fc_buf, n);
	if (fc->fc_ring != NULL)
		atomic_fetch_sub(&vs->vs_reads_inflight, 1);
	if (error == 0) {
		STAT_ADD(&vs->vs_stats, st_pageins, (uint64_t)n);
		STAT_INC(&vs->vs_stats, st_pagein_ios);
		/* the move protocol checks a clean page against this hash
		   before it drops it (pdaemon.c); the slots' data is the
		   same for every process sharing them */
		for (int i = 0; vs->vs_pageout == UPVM_PAGEOUT_MOVE && i < n;
		    i++)
			swap_set_hash(vs->vs_swap, fc->fc_swslot +
			    (uint64_t)i, page_hash((char *)fc->fc_buf +
			    ptoa((size_t)i), vs->vs_swap->sw_hashkey));
		for (vsize_t d; error == 0 && done < ptoa((vsize_t)n);
		    done += d)
			error = fault_copy_placed(fc, va + done,
			    (char *)fc->fc_buf + done, n - (long)atop(done),
			    PMAP_WP, &d);
	} else {
		STAT_INC(&vs->vs_stats, st_io_errors);
		upvm_log(LOG_ERR, "reading %d pages from swap failed: %s; "
		    "accessing them raises SIGBUS", n, strerror(-error));
	}
	done_pages = (int)atop(done);
	if (fc->fc_t0 != 0)
		fc->fc_wake_ns = now_ns();
	/* the buffer's pages are memory too: give them back (not managed
	   memory, so not pmap's: the runtime's own buffer) */
	raw_madvise(fc->fc_buf, ptoa((size_t)n), MADV_DONTNEED);
	vm_mutex_lock(&am->am_lock);
	for (int i = 0; i < n; i++) {
		struct anon *an = amap_anon_at(am, fc->fc_start + i);

		an->an_flags &= ~ANON_TRANSIT;
		if (i < done_pages)
			an->an_flags |= ANON_RESIDENT;
		else if (error != 0 && error != -EEXIST && error != -EAGAIN &&
		    done == 0)
			an->an_flags |= ANON_POISON;
	}
	vm_mutex_unlock(&am->am_lock);
	atomic_fetch_sub(&vs->vs_resident, n - done_pages);
	/* a writer that hit the fresh pages in transit waits in a WP fault */
	if (done_pages > 0)
		pmap_wake(&vs->vs_pmap, va, done);
	if (done_pages < n) {
		vaddr_t rest = va + done;

		if (done == 0 && error != 0 && error != -EEXIST &&
		    error != -EAGAIN) {
			STAT_ADD(&vs->vs_stats, st_poisoned, (uint64_t)n);
			fault_poison(fc, rest, n);
		} else {
			/* the rest faults again and is read again */
			pmap_wake(&vs->vs_pmap, rest,
			    ptoa((vsize_t)(n - done_pages)));
		}
	}
	return error;
}

/*
 * fault_resolve: resolve what fault_claim claimed (kind FC_FILL or
 * FC_PAGEIN), account it.
 * => map read-locked.
 */
static void
fault_resolve(struct fault_ctx *fc, int kind)
{
	struct vmspace *vs = fc->fc_vs;

	if (kind == FC_PAGEIN)
		fault_pagein(fc);
	else
		fault_fill(fc);
	if (vs->vs_pd != NULL)
		pd_kick(vs->vs_pd);
}

/*
 * fault_wp: a write hit a write-protected page: a clean page becomes dirty
 * (its swap copy is dropped) and the write goes through; a page being
 * paged out keeps the writer waiting until the daemon wakes it.  With
 * numa_promote, a second write fault in a unit this turn of the clock
 * brings the unit's pages to the writer's node first (place.h).
 * => no locks held on entry or return.
 */
static void
fault_wp(struct vmspace *vs, vaddr_t va, pid_t tid)
{
	struct fault_ctx fc = { .fc_vs = vs, .fc_va = trunc_page(va),
	    .fc_node = -1 };
	struct vm_map_entry *e;
	struct amap *am;
	struct anon *an;
	uint64_t old = 0;
	bool unprotect = false, wait = false, again;
	int slot, error;

	STAT_INC(&vs->vs_stats, st_faults);
	while ((error = fault_lookup(&fc)) == -ERESTART)
		;
	if (error != 0) {
		STAT_INC(&vs->vs_stats, st_faults_unmapped);
		pmap_wake(&vs->vs_pmap, fc.fc_va, PAGE_SIZE);
		return;
	}
	am = fc.fc_amap;
	slot = vm_entry_slot(fc.fc_entry, fc.fc_va);
	vm_mutex_lock(&am->am_lock);
	an = amap_anon_at(am, slot);
	if (an != NULL && (an->an_flags & ANON_TRANSIT)) {
		wait = true;
	} else if (amap_slot(am, slot) == SLOT_RESIDENT) {
		unprotect = true;
	} else if (an != NULL && (an->an_flags & ANON_RESIDENT)) {
		amap_set_dirty(am, slot, &old);
		unprotect = true;
	}
	again = amap_ref_unit(am, slot);
	vm_mutex_unlock(&am->am_lock);
	if (unprotect && again && vs->vs_numa != NULL &&
	    vs->vs_numa->ns_promote) {
		e = fc.fc_entry;
		numa_promote(vs->vs_numa, tid, MAX(e->e_start, fc.fc_va -
		    ptoa((vaddr_t)(slot % AMAP_UNIT))), MIN(e->e_end,
		    fc.fc_va + ptoa((vaddr_t)(AMAP_UNIT - slot % AMAP_UNIT))));
	}
	if (unprotect)
		pmap_writeprotect(&vs->vs_pmap, fc.fc_va, PAGE_SIZE, false,
		    false);
	else if (!wait)
		pmap_wake(&vs->vs_pmap, fc.fc_va, PAGE_SIZE);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	if (old != 0)
		swap_free(vs->vs_swap, old, 1);
	STAT_INC(&vs->vs_stats, st_faults_woken);
}

/*
 * fault_handle: serve one missing-page fault event at va, read at time t0.
 * => no locks held on entry or return.
 */
static void
fault_handle(struct fault_thread *ft, vaddr_t va, pid_t tid, uint64_t t0)
{
	struct vmspace *vs = ft->ft_vs;
	struct fault_ctx fc = { .fc_vs = vs, .fc_va = trunc_page(va),
	    .fc_buf = ft->ft_buf, .fc_t0 = t0, .fc_wake_ns = t0,
	    .fc_ring = ft->ft_ring, .fc_tid = tid, .fc_node = -1,
	    .fc_max = FAULT_MAX_CLUSTER };
	int error, kind;

	STAT_INC(&vs->vs_stats, st_faults);
	if (vs->vs_pd != NULL)
		fc.fc_max = fc.fc_reserved = pd_throttle(vs->vs_pd,
		    FAULT_MAX_CLUSTER);
	while ((error = fault_lookup(&fc)) == -ERESTART)
		;
	if (error != 0) {
		atomic_fetch_sub(&vs->vs_resident, fc.fc_reserved);
		if (error == -EFAULT)
			STAT_INC(&vs->vs_stats, st_faults_unmapped);
		else
			STAT_INC(&vs->vs_stats, st_errors);
		/* harmless if the range is gone; needed if it is not */
		pmap_wake(&vs->vs_pmap, fc.fc_va, PAGE_SIZE);
		return;
	}
	kind = fault_claim(&fc);
	if (kind == FC_FILL || kind == FC_PAGEIN) {
		fault_resolve(&fc, kind);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		fault_account(&fc, fc.fc_n);
		return;
	}
	/* nothing claimed: the reservation goes back */
	atomic_fetch_sub(&vs->vs_resident, fc.fc_reserved);
	if (kind == FC_POISON)
		fault_poison(&fc, fc.fc_va, 1);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	if (kind == FC_WAKE)
		pmap_wake(&vs->vs_pmap, fc.fc_va, PAGE_SIZE);
	STAT_INC(&vs->vs_stats, st_faults_woken);
}

int
fault_populate(struct vmspace *vs, vaddr_t start, vaddr_t end)
{
	struct fault_ctx fc = { .fc_vs = vs, .fc_max = FAULT_MAX_CLUSTER,
	    .fc_node = -1 };
	vaddr_t va = start, hi;
	int error = 0, kind;

	if ((fc.fc_buf = fault_mem_alloc(FAULT_BUF_SIZE)) == NULL)
		return -ENOMEM;
	if (vs->vs_swap != NULL &&
	    (error = ring_create(4, &fc.fc_ring)) != 0) {
		fault_mem_free(fc.fc_buf, FAULT_BUF_SIZE);
		return error;
	}
	while (va < end && error == 0) {
		fc.fc_va = va;
		if (vs->vs_pd != NULL && fc.fc_reserved == 0)
			fc.fc_max = fc.fc_reserved = pd_throttle(vs->vs_pd,
			    FAULT_MAX_CLUSTER);
		if ((error = fault_lookup(&fc)) == -ERESTART) {
			error = 0;
			continue;
		}
		if (error != 0)
			break;
		hi = MIN(end, fc.fc_entry->e_end);
		if ((kind = fault_claim_next(&fc, hi)) != 0) {
			fault_resolve(&fc, kind);
			STAT_ADD(&vs->vs_stats, st_pages_prefetched,
			    (uint64_t)fc.fc_n);
			STAT_ADD(&vs->vs_stats, st_pages_resolved,
			    (uint64_t)fc.fc_n);
			va = fc.fc_va + ptoa((vaddr_t)fc.fc_n);
		} else {
			va = hi;
		}
		vm_rwlock_unlock(&vs->vs_map.m_lock);
	}
	atomic_fetch_sub(&vs->vs_resident, fc.fc_reserved);
	if (fc.fc_ring != NULL)
		ring_destroy(fc.fc_ring);
	fault_mem_free(fc.fc_buf, FAULT_BUF_SIZE);
	return error;
}

/*
 * fault_wait: sleep until the uffd (or the stop eventfd) is readable.
 * => returns false when stopping.
 */
static bool
fault_wait(struct vmspace *vs)
{
	struct pollfd pfd[2] = {
		{ .fd = vs->vs_pmap.pm_uffd, .events = POLLIN },
		{ .fd = vs->vs_fault.fe_stopfd, .events = POLLIN },
	};

	while (poll(pfd, 2, -1) < 0 && errno == EINTR)
		;
	return !(pfd[1].revents & POLLIN) &&
	    !atomic_load(&vs->vs_fault.fe_stop);
}

static void *
fault_main(void *arg)
{
	struct fault_thread *ft = arg;
	struct vmspace *vs = ft->ft_vs;
	struct uffd_msg msgs[FAULT_BATCH];
	uint64_t spin_ns = (uint64_t)vs->vs_fault.fe_spin_us * 1000, idle = 0;
	uint64_t t0;
	int n;

	if (ft->ft_cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(ft->ft_cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!atomic_load_explicit(&vs->vs_fault.fe_stop,
	    memory_order_relaxed)) {
		n = pmap_read_events(&vs->vs_pmap, msgs, FAULT_BATCH);
		if (n < 0) {
			upvm_log(LOG_ERR, "reading userfaultfd failed: %s; "
			    "fault thread stops", strerror(-n));
			break;
		}
		if (n == 0) {
			t0 = now_ns();
			if (idle == 0)
				idle = t0;
			if (t0 - idle < spin_ns)
				continue;	/* busy-poll a little longer */
			idle = 0;
			if (!fault_wait(vs))
				break;
			continue;
		}
		idle = 0;
		t0 = now_ns();
		for (int i = 0; i < n; i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
				upvm_log(LOG_DEBUG, "ignoring uffd event %u",
				    msgs[i].event);
				continue;
			}
			if (msgs[i].arg.pagefault.flags &
			    UFFD_PAGEFAULT_FLAG_WP)
				fault_wp(vs, (vaddr_t)
				    msgs[i].arg.pagefault.address,
				    (pid_t)msgs[i].arg.pagefault.feat.ptid);
			else
				fault_handle(ft, (vaddr_t)
				    msgs[i].arg.pagefault.address,
				    (pid_t)msgs[i].arg.pagefault.feat.ptid, t0);
		}
	}
	return NULL;
}

/*
 * Stacks and pager buffers are runtime memory, not metadata: raw mappings,
 * outside kmem's accounting (untouched buffer pages cost nothing).
 */
static void *
fault_mem_alloc(size_t len)
{
	void *p = raw_mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return raw_mmap_failed(p) ? NULL : p;
}

static void
fault_mem_free(void *p, size_t len)
{
	if (p != NULL)
		raw_munmap(p, len);
}

static void
fault_thread_free(struct fault_thread *ft)
{
	fault_mem_free(ft->ft_stack, FAULT_STACK_SIZE);
	fault_mem_free(ft->ft_buf, FAULT_BUF_SIZE);
	if (ft->ft_ring != NULL)
		ring_destroy(ft->ft_ring);
	ft->ft_ring = NULL;
}

/*
 * fault_thread_start: one fault thread on its own kmem stack, with every
 * signal blocked (the mask is inherited from the creating thread).
 */
static int
fault_thread_start(struct vmspace *vs, struct fault_thread *ft, int cpu)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int error;

	ft->ft_vs = vs;
	ft->ft_cpu = cpu;
	ft->ft_ring = NULL;
	ft->ft_stack = fault_mem_alloc(FAULT_STACK_SIZE);
	ft->ft_buf = fault_mem_alloc(FAULT_BUF_SIZE);
	if (ft->ft_stack == NULL || ft->ft_buf == NULL) {
		fault_thread_free(ft);
		return -ENOMEM;
	}
	if (vs->vs_swap != NULL &&
	    (error = ring_create(FAULT_RING_DEPTH, &ft->ft_ring)) != 0) {
		fault_thread_free(ft);
		return error;
	}

	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, ft->ft_stack, FAULT_STACK_SIZE);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = -pthread_create(&ft->ft_thread, &attr, fault_main, ft);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (error != 0)
		fault_thread_free(ft);
	else
		pthread_setname_np(ft->ft_thread, "upvm-fault");
	return error;
}

int
fault_start(struct vmspace *vs, int nthreads, unsigned spin_us, bool pin)
{
	struct fault_engine *fe = &vs->vs_fault;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int error = 0, i;

	VM_ASSERT(nthreads > 0);
	fe->fe_nthreads = 0;
	fe->fe_nalloc = nthreads;
	fe->fe_spin_us = spin_us;
	atomic_init(&fe->fe_stop, false);
	fe->fe_threads = kmem_alloc(sizeof(*fe->fe_threads) *
	    (size_t)nthreads);
	if (fe->fe_threads == NULL)
		return -ENOMEM;
	if ((fe->fe_stopfd = eventfd(0, EFD_CLOEXEC)) < 0) {
		error = -errno;
		kmem_free(fe->fe_threads, sizeof(*fe->fe_threads) *
		    (size_t)nthreads);
		return error;
	}
	for (i = 0; i < nthreads && error == 0; i++) {
		error = fault_thread_start(vs, &fe->fe_threads[i],
		    pin ? (int)(i % MAX(ncpu, 1)) : -1);
		if (error == 0)
			fe->fe_nthreads++;
	}
	if (error != 0) {
		fault_stop(vs);
		return error;
	}
	return 0;
}

void
fault_stop(struct vmspace *vs)
{
	struct fault_engine *fe = &vs->vs_fault;
	uint64_t one = 1;

	atomic_store(&fe->fe_stop, true);
	(void)!write(fe->fe_stopfd, &one, sizeof(one));
	for (int i = 0; i < fe->fe_nthreads; i++) {
		pthread_join(fe->fe_threads[i].ft_thread, NULL);
		fault_thread_free(&fe->fe_threads[i]);
	}
	close(fe->fe_stopfd);
	kmem_free(fe->fe_threads, sizeof(*fe->fe_threads) *
	    (size_t)fe->fe_nalloc);
	fe->fe_threads = NULL;
	fe->fe_nthreads = 0;
}
