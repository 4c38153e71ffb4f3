/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pdaemon.h: the pageout daemon of one vmspace (mechanism; the policy is
 * pdpolicy_clock.c).
 *
 * With a budget, the vmspace has a swap file and a pdaemon thread.  The
 * daemon wakes when resident managed pages pass the high watermark and
 * pages out down to the low one: victim units from the clock, split into
 * runs of contiguous resident pages, each run either clean (every page has
 * a valid swap copy) or dirty.  A dirty run is written to a contiguous run
 * of swap slots (io_uring, several runs in flight), then the run leaves
 * the page tables and its waiters are woken: they fault again and page the
 * data back in.  A clean run needs no I/O.  Two protocols make sure that
 * no write is lost meanwhile (pdaemon.c has the details):
 *
 *  move (UPVM_PAGEOUT_MOVE: UFFDIO_MOVE + WP_ASYNC + PAGEMAP_SCAN, Linux
 *	6.8): writes never fault; the daemon moves each run out of the page
 *	tables into its staging area (no copy), checks clean runs against
 *	the content hash kept with their slots, and writes dirty runs from
 *	there; a page that faults meanwhile is moved back, no I/O.
 *  wp (UPVM_PAGEOUT_WP: any kernel with uffd-wp): a run is write-protected
 *	(synchronous WP: a writer blocks in a WP fault until the run is
 *	done), written from the application's pages, and dropped.
 *
 * Inactive pages (move protocol, UPVM_INACTIVE percent of the budget):
 * the pages of a run that made it do not leave memory at once.  They stay
 * in the staging area, clean (their swap copies valid), in transit and
 * held (ANON_STAGED), in first-in first-out order; a fault on one moves
 * it back (pd_reactivate: no I/O, no copy) and marks its unit referenced;
 * the oldest leave memory when the daemon needs room.  This is the
 * kernel's inactive list, with a fault in place of the hardware accessed
 * bit: the clock over units sees only faults, so a page read often
 * without faulting (a B-tree's inner node, a hash table's head) would
 * otherwise be written out with its cold unit and read back at once.
 * Only swap-backed pages of entries without a file linger.  The daemon
 * lets every inactive page go before it stops (fork, fini).
 *
 * Pages of mlock()ed entries (e_wired) are never paged out and do not
 * count against the budget: all of an mlock()ed entry's (vs_wired), the
 * resident ones of an MLOCK_ONFAULT entry (vs_wired_onfault, counted by
 * the daemon before each look at the budget).
 *
 * Faults throttle at budget + slack (pdd_marks.pm_limit): a fault thread
 * about to map new pages waits for the daemon (pd_reserve), except when
 * swap is full or failing, when pages stay resident past the budget (said
 * once in the log, counted in swap_full) rather than lose data.  Nor does
 * a fault wait longer than PD_STALL_MS while the daemon takes no page out
 * (pdd_progress stands still): the daemon may
 * itself wait for the fault, as when its write's io-wq worker faults on
 * the page it writes (a page zapped under it), or have nothing it may
 * evict (everything wired or in transit); faults then go past the budget
 * until the daemon moves again (said once, counted in stalls) instead of
 * hanging the program.  Writes that complete are not progress: the
 * daemon may write runs again and again that it must keep (pinned by a
 * direct read, wanted by a fault), freeing nothing.
 *
 * Readahead probes (pdprobe.c; move protocol).  One random swap pagein
 * in PD_PROBE_EVERY reads a readahead block one band wider than the
 * window (cluster.h) and maps only the faulting page: the fault thread
 * leaves the others as inactive pages in a ring of their own after the
 * daemon's (pdd_nprobe pages, at most a sixteenth of the budget in use),
 * oldest first out, and gone once the daemon has taken a budget's worth
 * of pages out since (pd_probe_age); a fault that takes one back counts
 * a readahead hit by its band.  The
 * readahead window of every random swap pagein is capped by those hits
 * (pd_ra_window), and opened to what they prove used (pd_ra_sure).  The
 * daemon flushes the probes with its inactive pages.
 *
 * Locks protecting struct members in this file:
 *	I  immutable while running   a  atomic   p  pdd_lock
 *	d  the daemon thread only    q  pdd_probe_lock (before any amap
 *				        lock, after the map lock)
 */
#ifndef UPVM_PDAEMON_H
#define UPVM_PDAEMON_H

#include <pthread.h>
#include <stdatomic.h>

#include "cluster.h"
#include "pdpolicy.h"
#include "vm.h"

struct vmspace;
struct swap;
struct amap;
struct anon;
struct pd_linger;
struct pager_queue;
struct pd_batch;

struct pdaemon {
	struct vmspace	 *pdd_vs;	/* [I] */
	struct swap	 *pdd_swap;	/* [I] */
	struct pager_queue *pdd_q;	/* [d] the swap writes */
	long		  pdd_held;	/* [d] pages of writes held back in
					   pdd_q, plugged (pd_write_group) */
	struct pd_batch	 *pdd_batch;	/* [d] the batch (kmem) */
	uint64_t	  pdd_cpu_ns;	/* [d] its CPU when it stopped */
	bool		  pdd_move;	/* [I] the move protocol */
	char		 *pdd_stage;	/* [I] move: pdd_nstage pages of staging,
					   a ring: [tail, head) in use */
	long		  pdd_nstage;	/* [I] */
	char		 *pdd_bounce;	/* [I] a run's worth of pages, not
					   registered (pd_read_forced) */
	char		 *pdd_cmpbuf;	/* [I] as many, for a clean run's
					   compare (pmap_peek) */
	uint64_t	  pdd_head;	/* [d] next free ring position */
	uint64_t	  pdd_tail;	/* [d] oldest position in use */
	struct pd_linger *pdd_linger;	/* [I] pdd_nstage records, one per
					   staging page (the page's anon
					   while it is inactive) */
	long		  pdd_inactive;	/* [d] records in use */
	long		  pdd_inactive_max; /* [d] 0: no inactive pages */
	long		  pdd_inactive_ring; /* [I] the most it may become (the
					   ring holds that many) */
	atomic_long	  pdd_inactive_want; /* [a] pd_set_budget's; the daemon
					   takes it into pdd_inactive_max */
	/* readahead probes (pdprobe.c), the area's last pdd_nprobe pages */
	long		  pdd_nprobe;	/* [I] 0: no probes */
	pthread_mutex_t	  pdd_probe_lock;
	uint64_t	  pdd_probe_head; /* [q] next free position */
	uint64_t	  pdd_probe_tail; /* [q] oldest position in use */
	bool		  pdd_probe_closed; /* [q] flushed: no more probes */
	atomic_uint	  pdd_probe_tick; /* [a] random swap pageins */
	atomic_ulong	  pdd_taken;	/* [a] pages batches took out, ever */
	struct cluster_ra_hits pdd_ra;	/* [a] */
	struct pdpol_marks pdd_marks;	/* [p] (pd_set_budget) */
	long		  pdd_slack;	/* [I] pages */
	atomic_long	  pdd_budget;	/* [a] pdd_marks' three, read */
	atomic_long	  pdd_high;	/* [a]   without the lock */
	atomic_long	  pdd_limit;	/* [a] */
	struct pdpol_clock pdd_clock;	/* [d] */
	struct pdpol_clock pdd_dclock;	/* [d] demotion's own hand */
	pthread_t	  pdd_thread;	/* [I] */
	pthread_mutex_t	  pdd_lock;
	pthread_cond_t	  pdd_work;	/* [p] the daemon waits here */
	pthread_cond_t	  pdd_freed;	/* [p] throttled faults wait here */
	bool		  pdd_stop;	/* [p] */
	atomic_bool	  pdd_stuck;	/* [a] swap full/failing: no throttle */
	atomic_bool	  pdd_said_full; /* [a] the log said so already */
	atomic_bool	  pdd_stopped;	/* [a] pdd_stop, read without the lock */
	atomic_bool	  pdd_writing;	/* [a] a batch's writes may be in
					   flight: set before the first one
					   starts (under the map lock),
					   cleared when every write has
					   landed */
	atomic_long	  pdd_peak;	/* [a] most resident pages seen */
	atomic_ulong	  pdd_progress;	/* [a] batches that took pages out */
	atomic_ulong	  pdd_stall_mark; /* [a] == pdd_progress: stalled, no
					   throttle; ULONG_MAX never was */
	atomic_bool	  pdd_said_stall; /* [a] the log said so already */
	void (*_Atomic	  pdd_stage_hook)(void *, int); /* [a] tests only:
					   upvm_inject_stage_hook() */
	void (*_Atomic	  pdd_unstage_hook)(void *, int); /* [a] tests only:
					   upvm_inject_unstage_hook() */
};

/*
 * pd_start: create the daemon for a budget of `budget` pages with `slack`
 * pages of faults in flight.
 * => 0, or -errno with nothing started.
 */
int pd_start(struct vmspace *, struct swap *, long budget, long slack,
    struct pdaemon **out);
/*
 * pd_set_budget: a new budget, in pages (upvmd moves budget between the
 * processes it serves): new watermarks at once; a smaller budget wakes the
 * daemon, a larger one the faults waiting for room.  No locks held.
 */
void pd_set_budget(struct pdaemon *, long budget);

/* pd_stop: stop the thread; faults no longer throttle.  pd_destroy: free */
void pd_stop(struct pdaemon *);

/*
 * pd_stop_within: pd_stop, waiting at most `ms` milliseconds (< 0: for
 * good) for the daemon to finish its batch.  A daemon that does not is
 * left to finish alone (no throttling from now on either way).
 * => true if this call stopped the daemon and it is gone; false if it was
 *    stopped already or is still running.  No locks held.
 */
bool pd_stop_within(struct pdaemon *, int ms);
void pd_destroy(struct pdaemon *);

/* pd_pressure: resident pages are past the high watermark.  No locks. */
bool pd_pressure(struct pdaemon *);

/* pd_kick: resident pages went up; wake the daemon if needed.  No locks. */
void pd_kick(struct pdaemon *);

/*
 * pd_reserve: reserve up to `npages` of the room under the limit: they
 * count as resident from now on, so that concurrent faults cannot
 * overshoot the limit together.  The caller gives back what it does not
 * map.  With no room (and paging not stuck), wait for the daemon to free
 * some, or with !wait return 0.
 * => no locks held.  Returns the pages reserved (>= 1), or 0.
 */
long pd_reserve(struct pdaemon *, long npages, bool wait);

/*
 * pd_reactivate: a fault (or a populate) found anon `an` of slot `slot`
 * inactive (ANON_STAGED): move it back to va, write-protected (clean), and
 * end its transit; its unit is the caller's to mark referenced.
 * => map read-locked, the amap locked; va not mapped.  The thread is not
 *    woken.
 */
void pd_reactivate(struct pdaemon *, struct amap *, int slot,
    struct anon *an, vaddr_t va);

/*
 * pd_probe_due: this random swap pagein is a probe (one in PD_PROBE_EVERY,
 * where probes can be).  pd_ra_window: the readahead window, at most
 * `readahead` pages, that the probes' hits allow (cluster_ra_cap).
 * pd_ra_sure: the window they prove is used (cluster_ra_sure; 1 without
 * probes).
 * => no locks needed.
 */
bool pd_probe_due(struct pdaemon *);
int pd_ra_window(struct pdaemon *, int readahead);
int pd_ra_sure(struct pdaemon *, int readahead);

/* pd_probe_ring: positions of the probes' ring in use now */
unsigned long pd_probe_ring(struct pdaemon *);

/*
 * pd_probe_stage: a probe's read of n pages into buf (slots from `slot`
 * of am, at va, anons[i] in transit and held by the caller) came in:
 * leave every page but page k unmapped as an inactive page.  Each page
 * staged passes its hold to its record and its anons[] entry becomes
 * NULL; the others are the caller's still.
 * => map read-locked, no amap lock held; takes pdd_probe_lock, then the
 *    amap lock.  => pages staged (0: no room, or the daemon stopped).
 */
int pd_probe_stage(struct pdaemon *, struct amap *, int slot, vaddr_t va,
    struct anon **anons, int n, int k, const char *buf);

/*
 * pd_wait_writes: wait until the writes of the daemon's batch in flight
 * have landed (a write of a shared file's pages goes on without the map
 * lock; an msync, a write(2) or an unmap of that range must not pass
 * it).  The daemon starts no other batch meanwhile: it collects under the
 * map lock the caller holds.
 * => map write-locked.
 */
void pd_wait_writes(struct pdaemon *);

/* pd_cpu_ns: the CPU time the daemon thread has taken (0: stopped) */
uint64_t pd_cpu_ns(struct pdaemon *);

/*
 * pd_demote: with node budgets (engine/place.h), resync the per-node counts
 * and, if a node is past its high mark, move up to a batch of its
 * coldest pages (its own clock hand over the same units) to the nearest
 * node with room (move_pages).  Nothing when every node in reach is full:
 * the global budget then pages out.  (pddemote.c)
 * => the daemon's thread; no locks held.  Returns the pages moved.
 */
long pd_demote(struct pdaemon *);

/* the clock's view of the map, shared with pddemote.c (pdaemon.c) */
struct amap;
struct vm_map_entry;
extern const struct pdpol_unit_ops pd_unit_ops;
/* a slot the daemon may take: resident, and not owned by anyone */
bool pd_slot_evictable(struct amap *, int slot);
/* the end of the unit holding va, inside entry e */
vaddr_t pd_unit_end(struct vm_map_entry *, vaddr_t va);

#endif /* UPVM_PDAEMON_H */
