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
 * The map read lock is held from lookup to the last settle of a fill:
 * upvm_unmap() takes it for writing, so no range is unregistered or
 * unmapped under a fill in progress, and no SLOT_BUSY exists while it is
 * write-locked.  A fill does no I/O (the zero pager lends zeros).
 *
 * A pagein does I/O, so it holds no lock across it (UVM's unlock and
 * relock; amap.h, "a word on transit"):
 *  fault_pagein_start: the claimed anons are ANON_TRANSIT and held by the
 *	claim; the amap is held too.  Drop the map lock and start the read
 *	on the thread's pager queue; the thread goes on with other events.
 *  fault_pagein_done (the same thread, when the read completes): take the
 *	map read lock again and re-validate: the entry at the run's address
 *	still maps the same amap slots (the held amap cannot be freed and
 *	reused meanwhile), and each anon is still in its slot.  If so, map
 *	the data write-protected (clean) and end the transit.  If the range
 *	was unmapped, the anons that left their slots are freed by the
 *	claim's anon_unref; if it moved (mremap), the pages stay swapped and
 *	the threads waiting at the new address are woken to fault again.  A
 *	read error poisons the pages (SIGBUS), never maps zeros.
 * munmap, MAP_FIXED, mremap and MADV_DONTNEED therefore never wait for a
 * disk read: they wait only for fills and UFFDIO_COPYs in progress.
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
#include "pdaemon.h"
#include "place.h"
#include "swap.h"
#include "sys.h"
#include "vmspace.h"

/* untouched stack pages cost nothing; ThreadSanitizer puts about 900 KiB
   of its own on a thread's stack at creation */
#if defined(__SANITIZE_THREAD__)
#define FAULT_STACK_SIZE	(4 * 1024 * 1024)
#else
#define FAULT_STACK_SIZE	(256 * 1024)
#endif
#define FAULT_BUF_SIZE		((size_t)FAULT_MAX_CLUSTER * PAGE_SIZE)
#define FAULT_EAGAIN_TRIES	1000
#define FAULT_IO_KEEP		16	/* pages of a pagein buffer kept
					   mapped between reads */
#define FAULT_HUGE_MIN		256	/* pages of a read that gets a huge
					   buffer (fault_io_lend) */
#define FAULT_HUGE_PAGES	512	/* pages of one huge page */
#define FAULT_RA_DEPTH		1	/* windows a file stream is read
					   ahead of the one its reader is in
					   (2 measured no faster) */
#define FAULT_WAKE_LOOP		10000	/* one thread woken this many times
					   in a row for one "resident" page:
					   upvm lost track of it */
#define FAULT_KEPT_MAX		(2 * FAULT_MAX_CLUSTER)	/* a thread's
					   pages kept past that: two
					   windows of a stream (its read and
					   its readahead) reuse their
					   buffers without faulting them in
					   and zeroing them again */

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
	uint32_t		 fc_wflags;	/* FC_WAKE: the anon's flags then
						   (0: implicit, SLOT_RESIDENT) */
	uint64_t		 fc_t0;		/* event read, ns; 0: WILLNEED */
	uint64_t		 fc_wake_ns;	/* faulting page mapped, ns */
	struct anon		**fc_held;	/* pagein: the claimed anons */
	uint64_t		 fc_swslot;	/* pagein: slot of fc_start */
	struct pager		*fc_obj;	/* pagein from a file: e_obj */
	voff_t			 fc_objoff;	/*   offset of fc_start */
	int			 fc_ckind;	/* CLUSTER_* of the claim */
	bool			 fc_probe;	/* a readahead probe (pdaemon.h) */
	bool			 fc_write;	/* a write fault, or a write
						   stream's read ahead
						   (fault_written) */
	vaddr_t			 fc_ra_va;	/* FC_WAIT: a file stream's next
						   window to read ahead */
	int			 fc_ra_n;	/*   its pages; 0: none */
	long			 fc_max;	/* pages the budget allows */
	long			 fc_reserved;	/* of those, counted resident */
	pid_t			 fc_tid;	/* faulting thread, or 0 */
	int			 fc_node;	/* its NUMA node, -1: not looked
						   up yet (numa_prepare) */
};

/*
 * A pagein in flight: one read of a run of swapped-out pages, owned by
 * the thread whose pager queue completes it.  Its anons are in transit
 * and held, and so is the amap (amap.h, "a word on transit").
 * Locks: none; only the owner thread touches it.
 */
struct fault_io {
	struct pager_req  fi_req;	/* pr_arg: this */
	struct vmspace	 *fi_vs;
	struct amap	 *fi_amap;	/* held */
	vaddr_t		  fi_va;	/* address of fi_slot when claimed */
	int		  fi_slot;	/* first amap slot */
	int		  fi_n;		/* pages */
	pid_t		  fi_tid;	/* faulting thread, 0: WILLNEED */
	bool		  fi_done;	/* completed (fault_populate waits) */
	uint64_t	  fi_t0;	/* event read, ns; 0: WILLNEED */
	int		  fi_wlo, fi_whi; /* pages [lo, hi) are mapped
					   writable: fault_written */
	int		  fi_probe;	/* a readahead probe: the faulting
					   page's index; -1: none */
	struct fault_io	 *fi_next;	/* the thread's free list */
	struct fault_thread *fi_ft;	/* owner, NULL: fault_populate */
	void		 *fi_buf;	/* FAULT_BUF_SIZE, raw mapping: its own,
					   or a huge one lent for a read */
	void		 *fi_own;	/* its own while one is lent, or NULL */
	int		  fi_huge;	/* the lent one's index, -1: none */
	int		  fi_kept;	/* its pages mapped past FAULT_IO_KEEP
					   (counted in its thread's ft_kept) */
	struct pager	 *fi_obj;	/* the file read, referenced for the
					   read (its entry may go meanwhile,
					   with the last other reference);
					   NULL: swap */
	struct anon	 *fi_anons[FAULT_MAX_CLUSTER];	/* held */
};

/* what fault_claim found */
#define FC_FILL		1	/* empty slots claimed: fill from below */
#define FC_PAGEIN	2	/* swapped-out slots claimed: read them */
#define FC_WAIT		3	/* someone owns the page: it wakes us */
#define FC_WAKE		4	/* the page is resident: wake the thread */
#define FC_POISON	5	/* the page's data is lost: SIGBUS */
#define FC_BEYOND	6	/* past the end of the entry's file: SIGBUS */

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

/* fault_run_va: the address of slot `slot` in the faulting entry */
static vaddr_t
fault_run_va(struct fault_ctx *fc, int slot)
{
	struct vm_map_entry *e = fc->fc_entry;

	return e->e_start + ptoa((vaddr_t)(slot - e->e_aref.ar_pageoff));
}

/*
 * fault_trim: cut [*lop, *hip) down to fc_max pages around fc_va (the
 * budget's room), keeping the faulting page: half of them below it, or
 * (down: a descending stream) all.
 */
static void
fault_trim(struct fault_ctx *fc, vaddr_t *lop, vaddr_t *hip, bool down)
{
	vsize_t max = ptoa((vsize_t)fc->fc_max);
	vsize_t before = down ? max - PAGE_SIZE :
	    ptoa((vsize_t)(fc->fc_max / 2));

	VM_ASSERT(fc->fc_max >= 1);
	if (*hip - *lop <= max)
		return;
	*lop = MAX(*lop, fc->fc_va - MIN(fc->fc_va - *lop, before));
	*hip = MIN(*hip, *lop + max);
	VM_ASSERT(*lop <= fc->fc_va && fc->fc_va < *hip);
}

/*
 * fault_claim_object: claim the run of empty slots around fc_va inside
 * [lo, hi) for a read from the entry's object (a file), never past its
 * end: a page wholly past it is FC_BEYOND (the size is asked again each
 * time: the file may have grown, or been truncated by anyone).
 * => map read-locked, amap locked.  FC_PAGEIN with the claim, fc_obj and
 *    fc_objoff set; FC_BEYOND; FC_WAKE when no anon could be made (the
 *    thread faults again).
 */
static int
fault_claim_object(struct fault_ctx *fc, vaddr_t lo, vaddr_t hi)
{
	struct vm_map_entry *e = fc->fc_entry;
	voff_t off = vm_entry_objoff(e, fc->fc_va), size;

	size = pager_size(e->e_obj, true);
	if (off >= size)
		return FC_BEYOND;
	if (size - vm_entry_objoff(e, lo) < (voff_t)(hi - lo))
		hi = lo + (vaddr_t)round_page(size - vm_entry_objoff(e, lo));
	VM_ASSERT(fc->fc_held != NULL);
	fc->fc_n = amap_claim_object(fc->fc_amap, vm_entry_slot(e, fc->fc_va),
	    vm_entry_slot(e, lo), vm_entry_slot(e, hi), &fc->fc_start,
	    fc->fc_held);
	if (fc->fc_n == 0) {
		STAT_INC(&fc->fc_vs->vs_stats, st_errors);
		return FC_WAKE;
	}
	fc->fc_obj = e->e_obj;
	fc->fc_objoff = vm_entry_objoff(e, e->e_start +
	    ptoa((vaddr_t)(fc->fc_start - e->e_aref.ar_pageoff)));
	return FC_PAGEIN;
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
	struct pdaemon *pd = fc->fc_vs->vs_pd;
	const struct cluster_config *cc = &fc->fc_vs->vs_cc;
	struct cluster_config ccw = *cc;
	int slot = vm_entry_slot(e, fc->fc_va), kind, flags;
	vaddr_t lo, hi, slo, shi, chosen_lo, chosen_hi, claim_lo, claim_hi;
	struct anon *an;
	bool probe = false;

	VM_ASSERT_RLOCKED(&fc->fc_vs->vs_map.m_lock);
	fc->fc_n = 0;
	fc->fc_obj = NULL;
	fc->fc_probe = false;
	vm_mutex_lock(&am->am_lock);
	fc->fc_state = amap_slot(am, slot);
	an = amap_anon_at(am, slot);
	if (an != NULL && (an->an_flags & ANON_STAGED)) {
		/* an inactive page: back from staging, no I/O */
		fc->fc_wflags = an->an_flags;	/* still ANON_STAGED: reactivated */
		pd_reactivate(fc->fc_vs->vs_pd, am, slot, an, fc->fc_va);
		amap_ref_unit(am, slot);
		vm_mutex_unlock(&am->am_lock);
		return FC_WAKE;
	}
	if (fc->fc_state == SLOT_BUSY ||
	    (an != NULL && (an->an_flags & ANON_TRANSIT))) {
		/* staged out (move protocol): the daemon maps it back */
		if (an != NULL && (an->an_flags & ANON_RESIDENT))
			an->an_flags |= ANON_WANTED;
		/* being read: the application caught up with a file
		   stream's readahead, so its next window is due */
		else if (e->e_obj != NULL)
			(void)cluster_ahead(&e->e_cluster, fc->fc_va,
			    FAULT_RA_DEPTH, &fc->fc_ra_va, &fc->fc_ra_n);
		vm_mutex_unlock(&am->am_lock);
		return FC_WAIT;
	}
	if (an != NULL && (an->an_flags & ANON_POISON)) {
		vm_mutex_unlock(&am->am_lock);
		return FC_POISON;
	}
	if (fc->fc_state != SLOT_EMPTY && (an == NULL ||
	    (an->an_flags & ANON_RESIDENT))) {
		fc->fc_wflags = an != NULL ? an->an_flags : 0;
		vm_mutex_unlock(&am->am_lock);
		return FC_WAKE;
	}
	/*
	 * A guess costs memory the budget may not have: a pagein reads the
	 * block of the entry's readahead window (cluster.h: at most
	 * cc_readahead pages, its pages with consecutive swap slots, one
	 * read), and any other fault past the high watermark resolves the
	 * page alone until a stream shows.  A swap pagein's window is capped
	 * by the readahead hits, and one in a few is a probe that reads the
	 * whole block (pdaemon.h).
	 */
	if (an != NULL && e->e_obj == NULL && pd != NULL) {
		flags = CLUSTER_F_PAGEIN;
		ccw.cc_readahead = pd_ra_window(pd, cc->cc_readahead);
		ccw.cc_ra_sure = pd_ra_sure(pd, ccw.cc_readahead);
		probe = pd_probe_due(pd);
	} else if (an != NULL || e->e_obj != NULL) {
		flags = CLUSTER_F_PAGEIN;
	} else if (pd != NULL && pd_pressure(pd)) {
		flags = CLUSTER_F_SINGLE;
	} else {
		flags = 0;
	}
	kind = fc->fc_ckind = cluster_choose(&e->e_cluster, &ccw, e->e_advice,
	    flags, e->e_start, e->e_end, fc->fc_va, &lo, &hi);
	chosen_lo = lo;
	chosen_hi = hi;
	if (probe && kind == CLUSTER_BLOCK) {
		/* one band past the window the hits allow (cluster.h) */
		cluster_ra_block(MIN(cc->cc_readahead, 2 * ccw.cc_readahead),
		    e->e_start, e->e_end, fc->fc_va, &lo, &hi);
		fc->fc_probe = true;
	}
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
	fault_trim(fc, &lo, &hi, kind == CLUSTER_DESCEND);
	if (an == NULL && e->e_obj != NULL) {
		if ((kind = fault_claim_object(fc, lo, hi)) != FC_PAGEIN) {
			vm_mutex_unlock(&am->am_lock);
			return kind;
		}
	} else if (an == NULL) {
		fc->fc_n = amap_claim(am, slot, vm_entry_slot(e, lo),
		    vm_entry_slot(e, hi), &fc->fc_start, &fc->fc_state);
		kind = FC_FILL;
	} else {
		fc->fc_n = amap_claim_swapped(am, slot, vm_entry_slot(e, lo),
		    vm_entry_slot(e, hi), &fc->fc_start, &fc->fc_swslot,
		    fc->fc_held);
		kind = FC_PAGEIN;
	}
	/*
	 * A claim cut short (the budget's room, a resident page, swap slots
	 * that do not follow on) ends before the window: the stream expects
	 * its next fault where the claim ends (a descending one, where it
	 * starts), or that fault would start it again from one page.
	 */
	claim_lo = fault_run_va(fc, fc->fc_start);
	claim_hi = fault_run_va(fc, fc->fc_start + fc->fc_n);
	if (fc->fc_ckind == CLUSTER_DESCEND) {
		if (claim_lo > chosen_lo)
			(void)cluster_advance(&e->e_cluster, chosen_lo,
			    claim_lo);
	} else if (claim_hi < chosen_hi) {
		(void)cluster_advance(&e->e_cluster, chosen_hi, claim_hi);
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
 * everything back in); with `backed`, only slots whose data is elsewhere
 * (swap, staging, a file), never an empty slot of anonymous memory.
 * => map read-locked; takes and drops the amap lock.
 * => returns FC_FILL or FC_PAGEIN with fc_va/fc_start/fc_n set, or 0 if
 *    there is none.
 */
static int
fault_claim_next(struct fault_ctx *fc, vaddr_t hi, bool backed)
{
	struct vm_map_entry *e = fc->fc_entry;
	struct amap *am = fc->fc_amap;
	int slot = vm_entry_slot(e, fc->fc_va), end = vm_entry_slot(e, hi);
	int kind = 0, lim;
	struct anon *an;

	VM_ASSERT_RLOCKED(&fc->fc_vs->vs_map.m_lock);
	fc->fc_n = 0;
	fc->fc_obj = NULL;
	vm_mutex_lock(&am->am_lock);
	for (; slot < end && kind == 0; slot++) {
		lim = MIN(end, slot + (int)fc->fc_max);
		an = amap_anon_at(am, slot);
		if (an != NULL && (an->an_flags & ANON_STAGED)) {
			pd_reactivate(fc->fc_vs->vs_pd, am, slot, an,
			    e->e_start + ptoa((vaddr_t)(slot -
			    e->e_aref.ar_pageoff)));
			amap_ref_unit(am, slot);
		} else if (amap_slot(am, slot) == SLOT_EMPTY &&
		    e->e_obj != NULL) {
			fc->fc_va = e->e_start + ptoa((vaddr_t)(slot -
			    e->e_aref.ar_pageoff));
			kind = fault_claim_object(fc, fc->fc_va,
			    e->e_start + ptoa((vaddr_t)(lim -
			    e->e_aref.ar_pageoff)));
			if (kind != FC_PAGEIN) {
				kind = 0;	/* past the end: done */
				break;
			}
		} else if (amap_slot(am, slot) == SLOT_EMPTY) {
			if (backed)
				continue;
			fc->fc_n = amap_claim(am, slot, slot, lim,
			    &fc->fc_start, &fc->fc_state);
			kind = FC_FILL;
		} else if (an != NULL && (fc->fc_n = amap_claim_swapped(am,
		    slot, slot, lim, &fc->fc_start, &fc->fc_swslot,
		    fc->fc_held)) > 0) {
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

	if (ns != NULL) {
		n = numa_prepare(ns, fc->fc_tid, &fc->fc_node, n, &tgt);
		/* under way until counted (numa_resync, which runs only
		   for the counts) */
		if (ns->ns_counts) {
			atomic_fetch_add(&ns->ns_copying, 1);
			atomic_fetch_add(&ns->ns_copies, 1);
		}
	}
	*donep = 0;
	error = pmap_copy(&vs->vs_pmap, dst, src, ptoa((vsize_t)n),
	    pmap_flags, donep);
	STAT_INC(&vs->vs_stats, st_copies);
	if (ns != NULL) {
		if (*donep > 0)
			numa_placed(ns, &tgt, dst, (long)atop(*donep));
		numa_unreserve(ns, &tgt);
		if (ns->ns_counts)
			atomic_fetch_sub(&ns->ns_copying, 1);
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
		.pr_flags = PGO_LOANOK,
		.pr_buf = fc->fc_buf,
	};
	const char *src;

	VM_ASSERT(n > 0 && n <= FAULT_MAX_CLUSTER);
	if ((error = pager_get(pgr, NULL, &req)) != 0) {
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
			fc->fc_wake_ns = stats_now_ns();
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

/*
 * fault_account: a fault resolved npages, its thread woken lat_ns after
 * the event was read.  fault_prefetched: npages resolved by WILLNEED.
 */
static void
fault_account(struct vm_stats *st, int npages, uint64_t lat_ns)
{
	STAT_INC(st, st_faults_resolved);
	STAT_INC(st, st_clusters);
	STAT_ADD(st, st_pages_resolved, (uint64_t)npages);
	STAT_INC(st, st_cluster_hist[stats_bucket((uint64_t)npages,
	    UPVM_CLUSTER_BUCKETS)]);
	STAT_INC(st, st_latency_hist[stats_bucket(lat_ns / 1000,
	    UPVM_LATENCY_BUCKETS)]);
}

static void
fault_prefetched(struct vm_stats *st, int npages)
{
	STAT_ADD(st, st_pages_prefetched, (uint64_t)npages);
	STAT_ADD(st, st_pages_resolved, (uint64_t)npages);
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
 * fault_beyond: the faulting page lies past the end of its file: SIGBUS
 * to the thread, as mmap(2) does, but no poison marker (the file may grow
 * and the page then reads its data).  Without the thread's id, poison.
 * => map read-locked.
 */
static void
fault_beyond(struct fault_ctx *fc)
{
	vsize_t done;

	if (fc->fc_tid != 0)
		tgkill(getpid(), fc->fc_tid, SIGBUS);
	else
		(void)pmap_poison(&fc->fc_vs->vs_pmap, fc->fc_va, PAGE_SIZE,
		    0, &done);
}

/*
 * fault_io_here: re-validate a pagein after its read: the entry at fi_va
 * still maps fi_amap's slots there, and every anon is still in its slot.
 * => map read-locked; takes and drops the amap lock.  On true, fc_entry
 *    is the entry.
 */
static bool
fault_io_here(struct fault_io *fi, struct fault_ctx *fc)
{
	struct vm_map_entry *e = vm_map_lookup(&fi->fi_vs->vs_map, fi->fi_va);
	bool all = true;

	VM_ASSERT_RLOCKED(&fi->fi_vs->vs_map.m_lock);
	if (e == NULL || e->e_aref.ar_amap != fi->fi_amap ||
	    vm_entry_slot(e, fi->fi_va) != fi->fi_slot ||
	    fi->fi_va + ptoa((vaddr_t)fi->fi_n) > e->e_end)
		return false;
	vm_mutex_lock(&fi->fi_amap->am_lock);
	for (int i = 0; i < fi->fi_n && all; i++)
		all = amap_anon_at(fi->fi_amap, fi->fi_slot + i) ==
		    fi->fi_anons[i];
	vm_mutex_unlock(&fi->fi_amap->am_lock);
	fc->fc_entry = e;
	return all;
}

/*
 * fault_io_settle: end the transit of fi's anons that are still in their
 * slots: those in [mlo, mhi) are resident now (dirty, if they were mapped
 * without wp; under the wp protocol also those of [fi_wlo, fi_whi), mapped
 * writable: their copies go), those in [lost_lo, lost_hi) are poisoned
 * (the read lost their data), the others stay swapped (a file's pages:
 * their slots empty again); none ends for a probe's page left inactive
 * (its fi_anons entry NULL: pd_probe_stage).  Then drop the claim's holds.
 * => map read-locked; takes and drops the amap lock.  true if a WP fault
 *    waits for one of them (ANON_WANTED: the caller wakes it).
 */
static bool
fault_io_settle(struct fault_io *fi, int mlo, int mhi, int lost_lo,
    int lost_hi, bool wp)
{
	struct amap *am = fi->fi_amap;
	struct anon *an;
	int out = 0;
	bool wanted = false, dirty, sync = wp &&
	    !pmap_has(&fi->fi_vs->vs_pmap, UFFD_FEATURE_WP_ASYNC);
	uint64_t old;

	vm_mutex_lock(&am->am_lock);
	for (int i = 0; i < fi->fi_n; i++) {
		if ((an = fi->fi_anons[i]) == NULL)
			continue;	/* inactive: resident still */
		if (i < mlo || i >= mhi)
			out++;
		if (an != amap_anon_at(am, fi->fi_slot + i))
			continue;	/* unmapped meanwhile: ours to free */
		wanted |= (an->an_flags & ANON_WANTED) != 0;
		an->an_flags &= ~(ANON_TRANSIT | ANON_WANTED);
		dirty = false;
		if (i >= mlo && i < mhi) {
			an->an_flags |= ANON_RESIDENT;
			if (!wp)
				an->an_flags &= ~ANON_OBJ;
			dirty = sync && i >= fi->fi_wlo && i < fi->fi_whi;
		} else if (i >= lost_lo && i < lost_hi) {
			an->an_flags |= ANON_POISON;
		} else if (an->an_flags & ANON_OBJ) {
			/* a file page not mapped: the file has it */
			(void)amap_unset(am, fi->fi_slot + i);
			atomic_fetch_sub_explicit(&an->an_ref, 1,
			    memory_order_relaxed);
			continue;	/* the hold goes below, the last */
		}
		/* the hold goes with the transit, under the lock: a WP
		   fault must never see a private anon as shared */
		atomic_fetch_sub_explicit(&an->an_ref, 1,
		    memory_order_relaxed);
		fi->fi_anons[i] = NULL;
		if (dirty) {	/* private (fault_io_private) */
			amap_set_dirty(am, fi->fi_slot + i, &old);
			if (old != 0)	/* lock order: amap -> pager */
				swap_free(fi->fi_vs->vs_swap, old, 1);
		}
	}
	vm_mutex_unlock(&am->am_lock);
	for (int i = 0; i < fi->fi_n; i++)
		if (fi->fi_anons[i] != NULL)
			anon_unref(fi->fi_anons[i]);
	atomic_fetch_sub(&fi->fi_vs->vs_resident, out);
	return wanted;
}

/* fault_io_account: a pagein's statistics (fault or WILLNEED) */
static void
fault_io_account(struct fault_io *fi, int error)
{
	struct vm_stats *st = &fi->fi_vs->vs_stats;

	if (error == 0) {
		STAT_ADD(st, st_pageins, (uint64_t)fi->fi_n);
		STAT_INC(st, st_pagein_ios);
		if (fi->fi_obj != NULL)
			STAT_ADD(st, st_file_reads, (uint64_t)fi->fi_n);
	} else {
		STAT_INC(st, st_io_errors);
		upvm_log(LOG_ERR, "reading %d pages from %s at offset %llu "
		    "failed: %s; accessing them raises SIGBUS", fi->fi_n,
		    fi->fi_obj != NULL ? "their file" : "swap",
		    (unsigned long long)fi->fi_req.pr_off, strerror(-error));
	}
	if (fi->fi_t0 == 0)
		fault_prefetched(st, fi->fi_n);
	else
		fault_account(st, fi->fi_n, stats_now_ns() - fi->fi_t0);
}

/*
 * fault_io_trim: the buffer's pages are memory too (not managed memory,
 * so not pmap's: the runtime's own buffer).  Its first FAULT_IO_KEEP
 * stay mapped for the next read; so do the rest while the thread keeps
 * at most FAULT_KEPT_MAX such pages (a context of fault_populate, none).
 * => the owner thread, after a read into fi's buffer.
 */
static void
fault_io_trim(struct fault_io *fi)
{
	struct fault_thread *ft = fi->fi_ft;
	int now = MAX(fi->fi_kept, fi->fi_n - FAULT_IO_KEEP);

	if (fi->fi_huge >= 0) {
		/* a lent buffer goes back whole, its pages kept */
		ft->ft_huge_busy &= ~(1U << fi->fi_huge);
		fi->fi_buf = fi->fi_own;
		fi->fi_own = NULL;
		fi->fi_huge = -1;
		return;
	}
	if (now <= 0)
		return;
	if (ft != NULL && ft->ft_kept - fi->fi_kept + now <= FAULT_KEPT_MAX) {
		ft->ft_kept += now - fi->fi_kept;
		fi->fi_kept = now;
		return;
	}
	(void)raw_madvise((char *)fi->fi_buf + ptoa(FAULT_IO_KEEP),
	    ptoa((size_t)now), MADV_DONTNEED);
	if (ft != NULL)
		ft->ft_kept -= fi->fi_kept;
	fi->fi_kept = 0;
}

/*
 * fault_probe: a probe's read came in whole: map the faulting page (page
 * fi_probe of the run: its thread goes on at once), then leave the others
 * unmapped as inactive pages (pd_probe_stage); those it cannot take (no
 * room) stay swapped, their copies valid.  => map read-locked, the run
 * here (fault_io_here).  => whether the faulting page was mapped (if
 * not, it stays swapped and its thread faults again).
 */
static bool
fault_probe(struct fault_io *fi, struct fault_ctx *fc)
{
	int k = fi->fi_probe;
	vsize_t done = 0;

	(void)fault_copy_placed(fc, fi->fi_va + ptoa((vaddr_t)k),
	    (const char *)fi->fi_buf + ptoa((size_t)k), 1, k >= fi->fi_wlo &&
	    k < fi->fi_whi ? 0 : PMAP_WP, &done);
	(void)pd_probe_stage(fi->fi_vs->vs_pd, fi->fi_amap, fi->fi_slot,
	    fi->fi_va, fi->fi_anons, fi->fi_n, k, fi->fi_buf);
	return done == PAGE_SIZE;
}

/*
 * fault_io_private: fault_written's pages are mapped writable only while
 * each is its slot's and no one else's (an_ref: the slot's and the
 * transit's holds); the range stops before the first that is not (shared
 * copy-on-write: a write must fault and copy it first).
 * => map read-locked (no amap_copy meanwhile); takes the amap lock.
 */
static void
fault_io_private(struct fault_io *fi)
{
	struct amap *am = fi->fi_amap;
	struct anon *an;

	if (fi->fi_wlo >= fi->fi_whi)
		return;
	vm_mutex_lock(&am->am_lock);
	for (int k = fi->fi_wlo; k < fi->fi_whi; k++)
		if ((an = fi->fi_anons[k]) == NULL ||
		    an != amap_anon_at(am, fi->fi_slot + k) ||
		    atomic_load(&an->an_ref) != 2) {
			fi->fi_whi = k;
			break;
		}
	vm_mutex_unlock(&am->am_lock);
}

/*
 * fault_io_piece: of fi's pages at byte `done` (before `good`), how many
 * one copy maps alike: write-protected (*flagsp PMAP_WP) or writable
 * (fault_written's, 0).
 */
static long
fault_io_piece(const struct fault_io *fi, vsize_t done, vsize_t good,
    int *flagsp)
{
	long k = (long)atop(done), n = (long)atop(good - done);

	if (k < fi->fi_wlo) {
		*flagsp = PMAP_WP;
		return MIN(n, fi->fi_wlo - k);
	}
	if (k < fi->fi_whi) {
		*flagsp = 0;
		return MIN(n, fi->fi_whi - k);
	}
	*flagsp = PMAP_WP;
	return n;
}

/*
 * fault_pagein_done: pr_done of a pagein (see "a word on page faults"):
 * re-validate, map the data write-protected (clean: its swap copy stays
 * valid; fault_written's pages writable), end the transit, wake.  A
 * readahead probe maps only its faulting page and leaves the others
 * inactive (fault_probe).
 * => no locks held on entry or return; the owner thread.
 */
static void
fault_pagein_done(struct pager_req *req)
{
	struct fault_io *fi = req->pr_arg;
	struct vmspace *vs = fi->fi_vs;
	struct fault_ctx fc = { .fc_vs = vs, .fc_amap = fi->fi_amap,
	    .fc_tid = fi->fi_tid, .fc_node = -1 };
	const char *buf = fi->fi_buf;
	vsize_t len = ptoa((vsize_t)fi->fi_n), done = 0, d, good = len;
	int rerr = req->pr_error, cerr = 0, lost_lo = fi->fi_n, lost_hi;
	/* without uffd-wp (no budget) writes go unseen: mapped dirty */
	bool here, mapped, wp = (vs->vs_regmodes & PMAP_REG_WP) != 0;
	void (*hook)(void *, int);

	/* a failed read: the pages before pr_xfer came in; pr_lost of them
	   from there are lost (0: all the rest); the others fault again */
	if (rerr != 0) {
		good = MIN(trunc_page((vsize_t)req->pr_xfer), len);
		lost_lo = (int)atop(good);
	}
	lost_hi = rerr == 0 ? lost_lo : req->pr_lost > 0 ?
	    MIN(fi->fi_n, lost_lo + req->pr_lost) : fi->fi_n;

	atomic_fetch_sub(&vs->vs_reads_inflight, 1);
	fault_io_account(fi, rerr);
	vm_rwlock_rdlock(&vs->vs_map.m_lock);
	here = fault_io_here(fi, &fc);
	if (here)
		fault_io_private(fi);
	if (here && rerr == 0 && fi->fi_probe >= 0 && wp) {
		mapped = fault_probe(fi, &fc);
		(void)fault_io_settle(fi, fi->fi_probe, fi->fi_probe + mapped,
		    lost_lo, lost_hi, wp);
		pmap_wake(&vs->vs_pmap, fi->fi_va, len);
		goto out;
	}
	for (; here && cerr == 0 && done < good; done += d) {
		int flags;
		long n = fault_io_piece(fi, done, good, &flags);

		cerr = fault_copy_placed(&fc, fi->fi_va + done, buf + done, n,
		    wp ? flags : 0, &d);
	}
	if (done > 0 && (hook = atomic_load_explicit(
	    &vs->vs_fault.fe_pagein_hook, memory_order_relaxed)) != NULL)
		hook((void *)fi->fi_va, (int)atop(done));
	/* each UFFDIO_COPY woke the threads waiting on its pages; a writer
	   that hit them write-protected in transit waits in a WP fault,
	   which said so (ANON_WANTED): one more wake for it, and only then
	   (each wake walks every thread waiting on the userfaultfd, with
	   interrupts off) */
	if (fault_io_settle(fi, 0, (int)atop(done), lost_lo, lost_hi, wp) &&
	    done > 0)
		pmap_wake(&vs->vs_pmap, fi->fi_va, done);
	if (!here) {
		/* the entry changed: whatever was not mapped faults again */
		if (done < len) {
			pmap_wake(&vs->vs_pmap, fi->fi_va + done, len - done);
			vmspace_wake_slots(vs, fi->fi_amap, fi->fi_slot,
			    fi->fi_n);
		}
	} else {
		if (lost_hi > lost_lo) {
			STAT_ADD(&vs->vs_stats, st_poisoned,
			    (uint64_t)(lost_hi - lost_lo));
			/* part of the run lost: the faulting thread's page
			   may be fine, so no signal; without UFFDIO_POISON
			   its fault finds ANON_POISON when it comes again */
			if (lost_hi - lost_lo < fi->fi_n)
				fc.fc_tid = 0;
			fault_poison(&fc, fi->fi_va + ptoa((vaddr_t)lost_lo),
			    lost_hi - lost_lo);
			if (fc.fc_tid == 0)
				pmap_wake(&vs->vs_pmap, fi->fi_va +
				    ptoa((vaddr_t)lost_lo),
				    ptoa((vsize_t)(lost_hi - lost_lo)));
		}
		/* the rest faults again: read again, or gone */
		if (done < ptoa((vsize_t)lost_lo))
			pmap_wake(&vs->vs_pmap, fi->fi_va + done,
			    ptoa((vsize_t)lost_lo) - done);
		if (ptoa((vsize_t)lost_hi) < len)
			pmap_wake(&vs->vs_pmap, fi->fi_va +
			    ptoa((vsize_t)lost_hi), len -
			    ptoa((vsize_t)lost_hi));
	}
out:
	amap_drop(fi->fi_amap);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	fault_io_trim(fi);
	if (vs->vs_pd != NULL)
		pd_kick(vs->vs_pd);
	/* the request is finished: nothing looks at its pager again */
	if (fi->fi_obj != NULL)
		pager_unref(fi->fi_obj);
	fi->fi_obj = NULL;
	fi->fi_done = true;
}

/*
 * fault_io_lend: a read of n pages into fi goes to one of its thread's
 * huge-page buffers when one is free: an O_DIRECT read of 2 MiB into one
 * huge page took a third of the time it took into 4 KiB pages here (each
 * page of a request is a segment of its own to map for the device; README:
 * Benchmarks).  A huge buffer is never trimmed: its populated pages count
 * in the thread's ft_kept, within FAULT_KEPT_MAX, so the bytes a thread
 * keeps mapped stay what they were (none lent past that: the read goes to
 * fi's own buffer, as a small one always does).  fault_io_trim gives it
 * back.  Not for a readahead probe (its pages leave the buffer one by one
 * for the staging area, which would split the huge page).
 * => the owner thread, before the read starts.
 */
static void
fault_io_lend(struct fault_io *fi, int n, bool probe)
{
	struct fault_thread *ft = fi->fi_ft;
	int need = (n + FAULT_HUGE_PAGES - 1) / FAULT_HUGE_PAGES *
	    FAULT_HUGE_PAGES;

	if (ft == NULL || n < FAULT_HUGE_MIN || probe || fi->fi_huge >= 0)
		return;
	for (int i = 0; i < FAULT_HUGE_BUFS; i++) {
		int more = MAX(need - ft->ft_huge_pop[i], 0);

		if (ft->ft_huge[i] == NULL || (ft->ft_huge_busy & (1U << i)) ||
		    ft->ft_kept + more > FAULT_KEPT_MAX)
			continue;
		ft->ft_kept += more;
		ft->ft_huge_pop[i] += more;
		ft->ft_huge_busy |= 1U << i;
		fi->fi_own = fi->fi_buf;
		fi->fi_buf = ft->ft_huge[i];
		fi->fi_huge = i;
		return;
	}
}

/*
 * fault_written: the pages of the claimed run that a pagein maps writable
 * rather than write-protected, as [*lop, *hip): the faulting page of a
 * write fault, and the whole window of a write stream (a stream's window
 * whose fault was a write, and what is read ahead of it).  The kernel's
 * swap-in maps a write fault's page writable and dirty the same way;
 * mapped write-protected, each such page took a second fault at once
 * (the write, now a WP fault: a round trip through upvm under the wp
 * protocol) and a stream's windows one a page (7 us a page here).  Under
 * the move protocol a page without its uffd-wp bit is a written page
 * (PAGEMAP_SCAN), so its data goes back to its swap slot or file when it
 * leaves, as if the program had written it; under the wp protocol the
 * pagein makes it dirty (fault_io_settle).  Only private pages
 * (fault_io_private).
 */
static void
fault_written(const struct fault_ctx *fc, int *lop, int *hip)
{
	int k;

	*lop = *hip = 0;
	if (!fc->fc_write)
		return;
	if (fc->fc_ckind == CLUSTER_STREAM) {
		*hip = fc->fc_n;
		return;
	}
	k = vm_entry_slot(fc->fc_entry, fc->fc_va) - fc->fc_start;
	if (k >= 0 && k < fc->fc_n)
		*lop = k, *hip = k + 1;
}

/*
 * fault_pagein_start: start the read of the claimed run (fc_held holds
 * its anons, fi's array), on queue q; fi is the caller's until `done`
 * (which calls fault_pagein_done) has run.
 * => map read-locked on entry, UNLOCKED on return.  The read completes
 *    in fault_pagein_done, from pager_complete(q) or before this returns.
 */
static void
fault_pagein_start(struct fault_ctx *fc, struct fault_io *fi,
    struct pager_queue *q, void (*done)(struct pager_req *))
{
	struct vmspace *vs = fc->fc_vs;
	long now;
	int error;

	VM_ASSERT(fc->fc_held == fi->fi_anons);
	fi->fi_vs = vs;
	fi->fi_amap = fc->fc_amap;
	fi->fi_va = fault_run_va(fc, fc->fc_start);
	fi->fi_slot = fc->fc_start;
	fi->fi_n = fc->fc_n;
	fi->fi_tid = fc->fc_tid;
	fi->fi_t0 = fc->fc_t0;
	fi->fi_probe = fc->fc_probe && fc->fc_n > 1 ? vm_entry_slot(
	    fc->fc_entry, fc->fc_va) - fc->fc_start : -1;
	fault_written(fc, &fi->fi_wlo, &fi->fi_whi);
	fault_io_lend(fi, fc->fc_n, fi->fi_probe >= 0);
	fi->fi_done = false;
	if ((fi->fi_obj = fc->fc_obj) != NULL)
		pager_ref(fi->fi_obj);
	fi->fi_req = (struct pager_req){ .pr_off = fc->fc_obj != NULL ?
	    fc->fc_objoff : ptoa(fc->fc_swslot),
	    .pr_npages = fc->fc_n, .pr_buf = fi->fi_buf,
	    .pr_done = done, .pr_arg = fi };
	amap_hold(fi->fi_amap);
	vm_rwlock_unlock(&vs->vs_map.m_lock);

	now = atomic_fetch_add(&vs->vs_reads_inflight, 1) + 1;
	stats_max(&vs->vs_stats.st_reads_inflight_max, (uint64_t)now);
	/* with no queue (no io_uring), synchronously */
	error = pager_get(fi->fi_obj != NULL ? fi->fi_obj :
	    &vs->vs_swap->sw_pager, q, &fi->fi_req);
	if (error != -EINPROGRESS) {
		fi->fi_req.pr_error = error;
		done(&fi->fi_req);
	}
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
		/* being paged in: its pagein wakes us once it is settled */
		if (!(an->an_flags & ANON_RESIDENT))
			an->an_flags |= ANON_WANTED;
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
 * fault_reserve: reserve up to npages of the budget's room for a fault
 * (pdaemon.h, pd_reserve).  While the thread has pageins in flight it
 * never sleeps for room: their pages count as resident and only their
 * completion lets the daemon evict them, so it completes them instead.
 * => no locks held.  Returns the pages reserved (>= 1).
 */
static long
fault_reserve(struct fault_thread *ft, long npages)
{
	struct pdaemon *pd = ft->ft_vs->vs_pd;
	long n;

	while ((n = pd_reserve(pd, npages, ft->ft_q == NULL ||
	    ft->ft_q->pq_inflight == 0)) == 0)
		(void)pager_complete(ft->ft_q, FAULT_IO_DEPTH, true);
	return n;
}

/*
 * fault_io_get: a free pagein context of the thread, completing pageins
 * until one is free.
 */
static struct fault_io *
fault_io_get(struct fault_thread *ft)
{
	struct fault_io *fi;

	while (ft->ft_free == NULL)
		(void)pager_complete(ft->ft_q, 1, true);
	fi = ft->ft_free;
	ft->ft_free = fi->fi_next;
	return fi;
}

static void
fault_io_put(struct fault_thread *ft, struct fault_io *fi)
{
	fi->fi_next = ft->ft_free;
	ft->ft_free = fi;
}

/* fault_thread_done: pr_done of a fault thread's pagein */
static void
fault_thread_done(struct pager_req *req)
{
	struct fault_io *fi = req->pr_arg;

	fault_pagein_done(req);
	fault_io_put(fi->fi_ft, fi);
}

/* fault_slot_resident: slot s holds a resident page, not in transit */
static bool
fault_slot_resident(struct amap *am, int s)
{
	struct anon *an = amap_anon_at(am, s);

	return amap_slot(am, s) == SLOT_RESIDENT || (an != NULL &&
	    (an->an_flags & (ANON_RESIDENT | ANON_TRANSIT)) == ANON_RESIDENT);
}

/*
 * fault_read_ahead: a file stream was just read up to `start`, or a fault
 * caught up with its readahead still in flight there (cluster_ahead):
 * read its next n pages too, with no thread waiting (the kernel's
 * asynchronous readahead), so the stream's next window is on its way
 * while the application consumes this one; the stream then expects its
 * next fault past them.  Nothing when the budget has no room now, no
 * pagein context is free, or the pages are not empty file pages.  write:
 * the stream's faults are writes (fault_written).
 * => no locks held.  Where the window read ends; 0: none read.
 */
static vaddr_t
fault_read_ahead(struct fault_thread *ft, vaddr_t start, int n, bool write)
{
	struct vmspace *vs = ft->ft_vs;
	vaddr_t va = start;
	struct fault_ctx fc = { .fc_vs = vs, .fc_va = va, .fc_node = -1,
	    .fc_buf = ft->ft_buf, .fc_max = n, .fc_write = write,
	    .fc_ckind = CLUSTER_STREAM };
	struct vm_map_entry *e;
	struct fault_io *fi;
	vaddr_t end;

	if (ft->ft_free == NULL || ft->ft_q == NULL)
		return 0;
	if (vs->vs_pd != NULL &&
	    (fc.fc_max = fc.fc_reserved = pd_reserve(vs->vs_pd, n, false)) == 0)
		return 0;
	fi = fault_io_get(ft);
	fc.fc_held = fi->fi_anons;
	if (fault_lookup(&fc) != 0) {
		atomic_fetch_sub(&vs->vs_resident, fc.fc_reserved);
		fault_io_put(ft, fi);
		return 0;
	}
	e = fc.fc_entry;
	vm_mutex_lock(&fc.fc_amap->am_lock);
	/* pages still resident where the window starts (a unit the pageout
	   daemon kept, which cut the last claim short) are passed over */
	for (end = MIN(e->e_end, start + ptoa((vaddr_t)n)); va < end &&
	    fault_slot_resident(fc.fc_amap, vm_entry_slot(e, va));
	    va += PAGE_SIZE)
		;
	fc.fc_va = va;
	end = MIN(e->e_end, va + ptoa((vaddr_t)fc.fc_max));
	if (e->e_obj == NULL || va >= end ||
	    amap_slot(fc.fc_amap, vm_entry_slot(e, va)) != SLOT_EMPTY ||
	    fault_claim_object(&fc, va, end) != FC_PAGEIN) {
		vm_mutex_unlock(&fc.fc_amap->am_lock);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		atomic_fetch_sub(&vs->vs_resident, fc.fc_reserved);
		fault_io_put(ft, fi);
		return 0;
	}
	end = fault_run_va(&fc, fc.fc_start + fc.fc_n);
	(void)cluster_advance(&e->e_cluster, start, end);
	vm_mutex_unlock(&fc.fc_amap->am_lock);
	atomic_fetch_add(&vs->vs_resident, fc.fc_n - fc.fc_reserved);
	/* unlocks the map; fi_t0 0: counted as prefetched */
	fault_pagein_start(&fc, fi, ft->ft_q, fault_thread_done);
	return end;
}

/*
 * fault_woken: a missing-page fault found its page resident in upvm's
 * state (FC_WAKE): normally a race (another fault mapped it meanwhile)
 * and the thread, woken, finds it.  The same page FAULT_WAKE_LOOP times
 * in a row while the kernel has no page there means upvm's state is
 * wrong (a bug, or the page dropped behind its back: MADV_DONTNEED or
 * munmap by a caller of the API): the data is gone, and waking the
 * thread again would loop for good.  It gets SIGBUS instead, with one
 * line in the log.  => map read-locked (the page cannot be unmapped and
 *    mapped again under the poison).
 */
static void
fault_woken(struct fault_thread *ft, struct fault_ctx *fc)
{
	struct vmspace *vs = ft->ft_vs;

	if (fc->fc_va != ft->ft_wake_va) {
		ft->ft_wake_va = fc->fc_va;
		ft->ft_wake_n = 0;
	}
	if (++ft->ft_wake_n < FAULT_WAKE_LOOP)
		return;
	ft->ft_wake_n = 0;
	if (pmap_present(&vs->vs_pmap, fc->fc_va) != 0)
		return;
	STAT_INC(&vs->vs_stats, st_errors);
	upvm_log(LOG_ERR, "page %#lx: upvm counts it resident but the kernel "
	    "has none (%d faults in a row): its data is lost; the thread "
	    "gets SIGBUS (an upvm bug, or the page was dropped behind its "
	    "back; slot %s, anon flags %#x)", (unsigned long)fc->fc_va,
	    FAULT_WAKE_LOOP, fc->fc_wflags == 0 ? "implicit" : "anon",
	    fc->fc_wflags);
	fault_poison(fc, fc->fc_va, 1);
}

/*
 * fault_stream_ahead: a fault at va of a file stream read up to `next`:
 * read ahead of it, window by window (n pages each), until FAULT_RA_DEPTH
 * windows are on their way past va's own.  write: the fault was a write.
 * => no locks held.
 */
static void
fault_stream_ahead(struct fault_thread *ft, vaddr_t va, vaddr_t next, int n,
    bool write)
{
	while (next != 0 && next - va < ptoa((vaddr_t)n * (FAULT_RA_DEPTH + 1)))
		next = fault_read_ahead(ft, next, n, write);
}

/*
 * fault_handle: serve one missing-page fault event at va, read at time t0.
 * => no locks held on entry or return.
 */
static void
fault_handle(struct fault_thread *ft, vaddr_t va, pid_t tid, uint64_t t0,
    bool write)
{
	struct vmspace *vs = ft->ft_vs;
	struct fault_io *fi = ft->ft_ios != NULL ? fault_io_get(ft) : NULL;
	struct fault_ctx fc = { .fc_vs = vs, .fc_va = trunc_page(va),
	    .fc_buf = ft->ft_buf, .fc_t0 = t0, .fc_wake_ns = t0,
	    .fc_tid = tid, .fc_node = -1, .fc_max = FAULT_MAX_CLUSTER,
	    .fc_write = write,
	    .fc_held = fi != NULL ? fi->fi_anons : NULL };
	int error, kind;

	STAT_INC(&vs->vs_stats, st_faults);
	if (vs->vs_pd != NULL)
		fc.fc_max = fc.fc_reserved = fault_reserve(ft,
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
		kind = 0;
	} else if ((kind = fault_claim(&fc)) == FC_PAGEIN) {
		bool ahead = fc.fc_obj != NULL && fc.fc_ckind == CLUSTER_STREAM;
		vaddr_t next = fault_run_va(&fc, fc.fc_start + fc.fc_n);
		int n = fc.fc_n;

		VM_ASSERT(fi != NULL);
		/* unlocks the map */
		fault_pagein_start(&fc, fi, ft->ft_q, fault_thread_done);
		fi = NULL;	/* the completion puts it back */
		if (ahead)
			fault_stream_ahead(ft, fc.fc_va, next, n, write);
	} else if (kind == FC_FILL) {
		fault_fill(&fc);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		fault_account(&vs->vs_stats, fc.fc_n, fc.fc_wake_ns - fc.fc_t0);
		if (vs->vs_pd != NULL)
			pd_kick(vs->vs_pd);
	} else {
		/* nothing claimed: the reservation goes back */
		atomic_fetch_sub(&vs->vs_resident, fc.fc_reserved);
		if (kind == FC_POISON)
			fault_poison(&fc, fc.fc_va, 1);
		else if (kind == FC_BEYOND)
			fault_beyond(&fc);
		else if (kind == FC_WAKE)
			fault_woken(ft, &fc);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		if (kind == FC_WAKE)
			pmap_wake(&vs->vs_pmap, fc.fc_va, PAGE_SIZE);
		STAT_INC(&vs->vs_stats, st_faults_woken);
	}
	if (fi != NULL)
		fault_io_put(ft, fi);
	if (kind == FC_WAIT && fc.fc_ra_n > 0)
		fault_stream_ahead(ft, fc.fc_va, fc.fc_ra_va, fc.fc_ra_n,
		    write);
}

/*
 * fault_populate_run: resolve the run fault_claim_next claimed; a pagein
 * is waited for on q.
 * => map read-locked on entry, unlocked on return.
 */
static void
fault_populate_run(struct fault_ctx *fc, int kind, struct fault_io *fi,
    struct pager_queue *q)
{
	struct vmspace *vs = fc->fc_vs;

	if (kind == FC_PAGEIN) {
		fault_pagein_start(fc, fi, q, fault_pagein_done);
		while (!fi->fi_done)
			(void)pager_complete(q, 1, true);
		return;
	}
	fault_fill(fc);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	fault_prefetched(&vs->vs_stats, fc->fc_n);
	if (vs->vs_pd != NULL)
		pd_kick(vs->vs_pd);
}

int
fault_populate(struct vmspace *vs, vaddr_t start, vaddr_t end, bool backed)
{
	struct fault_ctx fc = { .fc_vs = vs, .fc_max = FAULT_MAX_CLUSTER,
	    .fc_node = -1 };
	struct pager_queue *q = NULL;
	struct fault_io *fi;
	vaddr_t va = start, hi;
	int error = 0, kind;

	if ((fi = kmem_alloc(sizeof(*fi))) == NULL)
		return -ENOMEM;
	fi->fi_ft = NULL;
	fi->fi_huge = -1;	/* (fault_io_lend lends only a thread's) */
	fc.fc_held = fi->fi_anons;
	fc.fc_buf = fi->fi_buf = fault_mem_alloc(FAULT_BUF_SIZE);
	if (fi->fi_buf == NULL)
		error = -ENOMEM;
	else if (pager_queue_create(pager_ring(), 1, &q) != 0)
		q = NULL;	/* reads done synchronously */
	while (va < end && error == 0) {
		fc.fc_va = va;
		if (vs->vs_pd != NULL && fc.fc_reserved == 0)
			fc.fc_max = fc.fc_reserved = pd_reserve(vs->vs_pd,
			    FAULT_MAX_CLUSTER, true);
		if ((error = fault_lookup(&fc)) == -ERESTART) {
			error = 0;
			continue;
		}
		if (error != 0)
			break;
		hi = MIN(end, fc.fc_entry->e_end);
		if ((kind = fault_claim_next(&fc, hi, backed)) != 0) {
			va = fc.fc_va + ptoa((vaddr_t)fc.fc_n);
			fault_populate_run(&fc, kind, fi, q);
		} else {
			va = hi;
			vm_rwlock_unlock(&vs->vs_map.m_lock);
		}
	}
	atomic_fetch_sub(&vs->vs_resident, fc.fc_reserved);
	pager_queue_destroy(q);
	fault_mem_free(fi->fi_buf, FAULT_BUF_SIZE);
	kmem_free(fi, sizeof(*fi));
	return error;
}

/*
 * fault_wait: sleep until the uffd (when listening), the thread's pager
 * queue (with reads in flight) or the stop eventfd is readable.
 * => returns false when stopping.
 */
static bool
fault_wait(struct fault_thread *ft, bool listen)
{
	struct vmspace *vs = ft->ft_vs;
	struct pollfd pfd[3] = {
		{ .fd = vs->vs_fault.fe_stopfd, .events = POLLIN },
		{ .fd = listen ? vs->vs_pmap.pm_uffd : -1, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};

	if (ft->ft_q != NULL && ft->ft_q->pq_inflight > 0)
		pfd[2].fd = pager_queue_fd(ft->ft_q);
	while (poll(pfd, 3, -1) < 0 && errno == EINTR)
		;
	return !(pfd[0].revents & POLLIN) &&
	    !atomic_load(&vs->vs_fault.fe_stop);
}

/*
 * fault_pin: put the calling thread ft on its own CPU (on), or let it run
 * on any the process may use (off).  A failure leaves it where it is.
 */
static void
fault_pin(struct fault_thread *ft, bool on)
{
	cpu_set_t one;

	if (on == ft->ft_pinned || ft->ft_cpu < 0)
		return;
	CPU_ZERO(&one);
	CPU_SET(ft->ft_cpu, &one);
	if (pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t),
	    on ? &one : &ft->ft_vs->vs_fault.fe_allowed) == 0)
		ft->ft_pinned = on;
}

/* fault_helped: whether the helpers serve at now (fault.h, helpers) */
static bool
fault_helped(struct fault_engine *fe, uint64_t now)
{
	return now < atomic_load(&fe->fe_help_until);
}

/*
 * fault_call_help: n messages were read at once at now; from
 * FAULT_HELP_BATCH on, the helpers listen for FAULT_HELP_NS more.  The
 * store to fe_help_until and the load of fe_help_idle pair with a
 * helper's increment and load in fault_help_sleep (both seq_cst): either
 * the helper sees the new span or this thread sees it asleep and wakes it.
 */
static void
fault_call_help(struct vmspace *vs, int n, uint64_t now)
{
	struct fault_engine *fe = &vs->vs_fault;
	uint64_t until;

	if (n < FAULT_HELP_BATCH || fe->fe_nalloc < 2)
		return;
	/* later only (fault_listen_all's span is for good) */
	until = atomic_load(&fe->fe_help_until);
	while (until < now + FAULT_HELP_NS &&
	    !atomic_compare_exchange_weak(&fe->fe_help_until, &until,
	    now + FAULT_HELP_NS))
		;
	if (until < now)
		STAT_INC(&vs->vs_stats, st_fault_helps);
	if (atomic_load(&fe->fe_help_idle) > 0) {
		pthread_mutex_lock(&fe->fe_help_lock);
		pthread_cond_broadcast(&fe->fe_help_cv);
		pthread_mutex_unlock(&fe->fe_help_lock);
	}
}

void
fault_listen_all(struct vmspace *vs, bool on)
{
	struct fault_engine *fe = &vs->vs_fault;

	atomic_store(&fe->fe_help_until, on ? UINT64_MAX : 0);
	pthread_mutex_lock(&fe->fe_help_lock);
	pthread_cond_broadcast(&fe->fe_help_cv);
	pthread_mutex_unlock(&fe->fe_help_lock);
}

/*
 * fault_help_sleep: a helper with no reads in flight sleeps until it is
 * called to help or the engine stops.
 * => returns false when stopping.
 */
static bool
fault_help_sleep(struct fault_engine *fe)
{
	pthread_mutex_lock(&fe->fe_help_lock);
	atomic_fetch_add(&fe->fe_help_idle, 1);
	while (!atomic_load(&fe->fe_stop) &&
	    !fault_helped(fe, stats_now_ns()))
		pthread_cond_wait(&fe->fe_help_cv, &fe->fe_help_lock);
	atomic_fetch_sub(&fe->fe_help_idle, 1);
	pthread_mutex_unlock(&fe->fe_help_lock);
	return !atomic_load(&fe->fe_stop);
}

/*
 * fault_heard: the messages that ft's armed uffd read brought, into msgs
 * (where it read them).  A read this kernel cannot wait for (-EAGAIN)
 * turns listening off for good: the thread polls from then on.
 * => the number of messages, or -errno of the read.
 */
static int
fault_heard(struct fault_thread *ft)
{
	ssize_t got = pager_queue_heard(ft->ft_q);

	if (got == -EINTR)
		return 0;	/* read in the ring's task work: armed again */
	if (got == -EAGAIN) {
		upvm_log(LOG_DEBUG, "this kernel cannot read a userfaultfd "
		    "through io_uring; the fault thread polls it");
		ft->ft_listen = false;
		(void)pager_queue_unlisten(ft->ft_q);
		return 0;
	}
	if (got < 0)
		return (int)got;
	return (int)(got / (ssize_t)sizeof(struct uffd_msg));
}

/*
 * fault_wait_queue: fault_wait through ft's queue: the uffd read
 * armed into msgs[FAULT_BATCH], the stop eventfd polled, one sleep that
 * hands over the plugged reads too.  A queue that cannot listen turns
 * listening off and polls.
 * => returns false when stopping.
 */
static bool
fault_wait_queue(struct fault_thread *ft, struct uffd_msg *msgs)
{
	struct vmspace *vs = ft->ft_vs;
	int error;

	error = pager_queue_listen(ft->ft_q, vs->vs_pmap.pm_uffd, msgs,
	    sizeof(*msgs) * FAULT_BATCH, vs->vs_fault.fe_stopfd);
	if (error == 0)
		error = pager_queue_wait(ft->ft_q, FAULT_IO_DEPTH);
	if (error < 0 && error != -EINTR) {
		upvm_log(LOG_WARN, "fault thread: waiting in its io_uring "
		    "failed: %s; it polls from now on", strerror(-error));
		ft->ft_listen = false;
		if (pager_queue_unlisten(ft->ft_q) != 0)
			return false;
		return fault_wait(ft, true);
	}
	return !atomic_load(&vs->vs_fault.fe_stop);
}

/*
 * fault_read: the next batch of uffd messages, into msgs: what the armed
 * read brought (a thread that listens through its queue), what a read()
 * finds (one that polls), or none (a helper outside its span).  A helper
 * whose span ended cancels its armed read first (it must not sleep on
 * fe_help_cv with messages on the way to it) and serves what it took.
 * => the number of messages, or -errno.
 */
static int
fault_read(struct fault_thread *ft, struct uffd_msg *msgs, bool listen)
{
	struct pager_queue *q = ft->ft_q;

	if (listen && ft->ft_listen)
		return fault_heard(ft);
	if (q != NULL && q->pq_listening) {
		if (pager_queue_unlisten(q) != 0)
			return 0;	/* still armed: waited for */
		return fault_heard(ft);
	}
	return listen ? pmap_read_events(&ft->ft_vs->vs_pmap, msgs,
	    FAULT_BATCH) : 0;
}

/* fault_events: serve a batch of uffd messages read at t0 */
static void
fault_events(struct fault_thread *ft, struct uffd_msg *msgs, int n,
    uint64_t t0)
{
	for (int i = 0; i < n; i++) {
		if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
			upvm_log(LOG_DEBUG, "ignoring uffd event %u",
			    msgs[i].event);
			continue;
		}
		if (msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)
			fault_wp(ft->ft_vs, (vaddr_t)
			    msgs[i].arg.pagefault.address,
			    (pid_t)msgs[i].arg.pagefault.feat.ptid);
		else
			fault_handle(ft, (vaddr_t)
			    msgs[i].arg.pagefault.address,
			    (pid_t)msgs[i].arg.pagefault.feat.ptid, t0,
			    (msgs[i].arg.pagefault.flags &
			    UFFD_PAGEFAULT_FLAG_WRITE) != 0);
	}
}

static void *
fault_main(void *arg)
{
	struct fault_thread *ft = arg;
	struct vmspace *vs = ft->ft_vs;
	struct uffd_msg msgs[FAULT_BATCH];
	uint64_t spin_ns = (uint64_t)vs->vs_fault.fe_spin_us * 1000, idle = 0;
	uint64_t t0;
	bool helped, listen, plug, queued;
	int n, c;

	vm_tl_inside = 1;
	fault_pin(ft, !ft->ft_leader || vs->vs_fault.fe_pin);
	while (!atomic_load_explicit(&vs->vs_fault.fe_stop,
	    memory_order_relaxed)) {
		helped = fault_helped(&vs->vs_fault, stats_now_ns());
		listen = ft->ft_leader || helped;
		if (ft->ft_leader && !vs->vs_fault.fe_pin)
			fault_pin(ft, helped);
		n = fault_read(ft, msgs, listen);
		if (n < 0) {
			upvm_log(LOG_ERR, "reading userfaultfd failed: %s; "
			    "fault thread stops", strerror(-n));
			break;
		}
		t0 = stats_now_ns();
		fault_call_help(vs, n, t0);
		/* a batch's reads go to the device together: one doorbell;
		   a listening thread's go with its next wait */
		queued = listen && ft->ft_listen;
		plug = ft->ft_q != NULL && (n > 1 || (n > 0 && queued));
		if (plug)
			pager_queue_plug(ft->ft_q, true);
		fault_events(ft, msgs, n, t0);
		if (plug && !queued)
			pager_queue_plug(ft->ft_q, false);
		c = ft->ft_q == NULL ? 0 : pager_complete(ft->ft_q,
		    FAULT_IO_DEPTH, false);
		if (n > 0 || c > 0) {
			idle = 0;
			continue;
		}
		if (idle == 0)
			idle = t0;
		if (t0 - idle < spin_ns)
			continue;	/* busy-poll a little longer */
		idle = 0;
		/* a read still armed (its cancel failed) is waited for */
		queued = (listen && ft->ft_listen) ||
		    (ft->ft_q != NULL && ft->ft_q->pq_listening);
		if (!queued && ft->ft_q != NULL)
			pager_queue_plug(ft->ft_q, false);
		if (queued) {
			if (!fault_wait_queue(ft, msgs))
				break;
		} else if (!listen && (ft->ft_q == NULL ||
		    ft->ft_q->pq_inflight == 0)) {
			if (!fault_help_sleep(&vs->vs_fault))
				break;
		} else if (!fault_wait(ft, listen)) {
			break;
		}
	}
	/* a read armed as it stopped may have taken messages: serve them */
	if (ft->ft_q != NULL && ft->ft_q->pq_listening &&
	    pager_queue_unlisten(ft->ft_q) == 0 &&
	    (n = fault_heard(ft)) > 0)
		fault_events(ft, msgs, n, stats_now_ns());
	if (ft->ft_q != NULL)
		pager_queue_plug(ft->ft_q, false);
	/* the pageins in flight are this thread's to finish */
	while (ft->ft_q != NULL && ft->ft_q->pq_inflight > 0)
		(void)pager_complete(ft->ft_q, FAULT_IO_DEPTH, true);
	ft->ft_cpu_ns = stats_thread_cpu_ns(pthread_self());
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

/*
 * fault_huge_alloc: a buffer of len bytes aligned to a huge page and
 * advised MADV_HUGEPAGE (where transparent huge pages are off, or none is
 * free when it is first read into, it gets small pages: slower, no
 * worse).  => NULL if out of address space.
 */
static void *
fault_huge_alloc(size_t len)
{
	const size_t huge = ptoa((size_t)FAULT_HUGE_PAGES);
	char *raw = fault_mem_alloc(len + huge), *p;

	if (raw == NULL)
		return NULL;
	p = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	if (p > raw)
		raw_munmap(raw, (size_t)(p - raw));
	raw_munmap(p + len, (size_t)(raw + huge - p));
	(void)raw_madvise(p, len, MADV_HUGEPAGE);
	return p;
}

static void
fault_thread_free(struct fault_thread *ft)
{
	fault_mem_free(ft->ft_stack, FAULT_STACK_SIZE);
	fault_mem_free(ft->ft_buf, FAULT_BUF_SIZE);
	if (ft->ft_ios != NULL) {
		for (int i = 0; i < FAULT_IO_DEPTH; i++)
			fault_mem_free(ft->ft_ios[i].fi_huge >= 0 ?
			    ft->ft_ios[i].fi_own : ft->ft_ios[i].fi_buf,
			    FAULT_BUF_SIZE);
		kmem_free(ft->ft_ios, sizeof(*ft->ft_ios) * FAULT_IO_DEPTH);
	}
	pager_queue_destroy(ft->ft_q);
	ft->ft_q = NULL;
	ft->ft_ios = NULL;
	for (int i = 0; i < FAULT_HUGE_BUFS; i++) {
		fault_mem_free(ft->ft_huge[i], FAULT_BUF_SIZE);
		ft->ft_huge[i] = NULL;
	}
}

/*
 * fault_thread_io: the thread's pager queue and its pagein contexts, each
 * with a buffer (with a swap only).
 */
static int
fault_thread_io(struct vmspace *vs, struct fault_thread *ft)
{
	int error;

	if ((ft->ft_ios = kmem_alloc(sizeof(*ft->ft_ios) * FAULT_IO_DEPTH)) ==
	    NULL)
		return -ENOMEM;
	for (int i = 0; i < FAULT_IO_DEPTH; i++)
		ft->ft_ios[i].fi_huge = -1;	/* (fault_thread_free reads it) */
	for (int i = 0; i < FAULT_IO_DEPTH; i++) {
		ft->ft_ios[i].fi_ft = ft;
		if ((ft->ft_ios[i].fi_buf = fault_mem_alloc(FAULT_BUF_SIZE)) ==
		    NULL)
			return -ENOMEM;
		fault_io_put(ft, &ft->ft_ios[i]);
	}
	for (int i = 0; i < FAULT_HUGE_BUFS; i++)
		if ((ft->ft_huge[i] = fault_huge_alloc(FAULT_BUF_SIZE)) ==
		    NULL)
			return -ENOMEM;
	/* the queue serves file reads too; files alone do without one */
	error = pager_queue_create(vs->vs_swap != NULL ?
	    &vs->vs_swap->sw_pager : pager_ring(), FAULT_IO_DEPTH, &ft->ft_q);
	return vs->vs_swap != NULL ? error : 0;
}

/*
 * fault_thread_start: one fault thread on its own raw stack, with every
 * signal blocked (the mask is inherited from the creating thread).
 */
static int
fault_thread_start(struct vmspace *vs, struct fault_thread *ft, int cpu)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int error;

	memset(ft, 0, sizeof(*ft));
	ft->ft_vs = vs;
	ft->ft_cpu = -1;
	/* the cpu-th CPU the process may use, in turn */
	if (vs->vs_fault.fe_nallowed > 0) {
		cpu %= vs->vs_fault.fe_nallowed;
		for (int c = 0; c < CPU_SETSIZE && ft->ft_cpu < 0; c++)
			if (CPU_ISSET(c, &vs->vs_fault.fe_allowed) && cpu-- == 0)
				ft->ft_cpu = c;
	}
	ft->ft_leader = ft == &vs->vs_fault.fe_threads[0];
	ft->ft_stack = fault_mem_alloc(FAULT_STACK_SIZE);
	ft->ft_buf = fault_mem_alloc(FAULT_BUF_SIZE);
	if (ft->ft_stack == NULL || ft->ft_buf == NULL) {
		fault_thread_free(ft);
		return -ENOMEM;
	}
	if ((error = fault_thread_io(vs, ft)) != 0) {
		fault_thread_free(ft);
		return error;
	}
	/* a spinning thread polls (its spin would hold plugged reads) */
	ft->ft_listen = ft->ft_q != NULL && vs->vs_fault.fe_spin_us == 0;

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
	int error = 0, i;

	VM_ASSERT(nthreads > 0);
	fe->fe_nthreads = 0;
	fe->fe_nalloc = nthreads;
	fe->fe_spin_us = spin_us;
	fe->fe_pin = pin;
	fe->fe_nallowed = sched_getaffinity(0, sizeof(fe->fe_allowed),
	    &fe->fe_allowed) == 0 ? CPU_COUNT(&fe->fe_allowed) : 0;
	atomic_init(&fe->fe_stop, false);
	atomic_init(&fe->fe_help_until, 0);
	atomic_init(&fe->fe_help_idle, 0);
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
	pthread_mutex_init(&fe->fe_help_lock, NULL);
	pthread_cond_init(&fe->fe_help_cv, NULL);
	for (i = 0; i < nthreads && error == 0; i++) {
		error = fault_thread_start(vs, &fe->fe_threads[i], i);
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
	(void)!sys_write(fe->fe_stopfd, &one, sizeof(one));
	pthread_mutex_lock(&fe->fe_help_lock);
	pthread_cond_broadcast(&fe->fe_help_cv);
	pthread_mutex_unlock(&fe->fe_help_lock);
	for (int i = 0; i < fe->fe_nthreads; i++) {
		pthread_join(fe->fe_threads[i].ft_thread, NULL);
		atomic_fetch_add(&vs->vs_fault_cpu_done,
		    fe->fe_threads[i].ft_cpu_ns);
		fault_thread_free(&fe->fe_threads[i]);
	}
	pthread_cond_destroy(&fe->fe_help_cv);
	pthread_mutex_destroy(&fe->fe_help_lock);
	close(fe->fe_stopfd);
	kmem_free(fe->fe_threads, sizeof(*fe->fe_threads) *
	    (size_t)fe->fe_nalloc);
	fe->fe_threads = NULL;
	fe->fe_nthreads = 0;
}

uint64_t
fault_cpu_ns(struct vmspace *vs)
{
	struct fault_engine *fe = &vs->vs_fault;
	uint64_t ns = 0;

	for (int i = 0; i < fe->fe_nthreads; i++)
		ns += stats_thread_cpu_ns(fe->fe_threads[i].ft_thread);
	return ns;
}
