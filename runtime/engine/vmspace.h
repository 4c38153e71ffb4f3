/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vmspace.h: one managed address space: its map, its pmap (userfaultfd),
 * its fault engine and counters.  In-process mode has one, the global
 * upvm_vs of upvm.c, in static storage (never managed memory).
 *
 * Locks protecting struct members in this file:
 *	I  immutable while the vmspace is initialized   a  atomic
 */
#ifndef UPVM_VMSPACE_H
#define UPVM_VMSPACE_H

#include "cluster.h"
#include "dio.h"
#include "dlink.h"
#include "fault.h"
#include "map.h"
#include "pmap.h"
#include "stats.h"

struct flusher;
struct numa_state;
struct pdaemon;
struct swap;

struct vmspace {
	struct vm_map		vs_map;
	struct pmap		vs_pmap;	/* [I] */
	struct cluster_config	vs_cc;		/* [I] */
	struct fault_engine	vs_fault;
	struct vm_stats		vs_stats;	/* [a] */
	atomic_long		vs_resident;	/* [a] managed pages resident
						   or claimed to become so */
	struct swap		*vs_swap;	/* [I] NULL: no budget */
	struct pdaemon		*vs_pd;		/* [I] NULL: no budget */
	struct flusher		*vs_flusher;	/* [I] NULL: none (flusher.h) */
	struct numa_state	*vs_numa;	/* [I] NULL: placement off */
	int			vs_regmodes;	/* [I] PMAP_REG_* for regions */
	int			vs_pageout;	/* [I] UPVM_PAGEOUT_MOVE or _WP
						   with a budget, else AUTO */
	struct dio_table	vs_dio;		/* [a] direct reads in flight
						   (wp protocol) */
	atomic_long		vs_reads_inflight; /* [a] pagein reads in flight */
	atomic_long		vs_writes_inflight; /* [a] pageout writes */
	atomic_uint_least64_t	vs_fault_cpu_done; /* [a] CPU ns of fault
						   threads stopped so far */
	atomic_uint_least64_t	vs_pd_cpu_done;	/* [a] same, pageout daemons
						   and flushers */
	atomic_long		vs_wired;	/* [a] pages of mlock()ed entries:
						   resident, outside the budget */
	atomic_long		vs_wired_onfault; /* [a] resident pages of
						   MLOCK_ONFAULT entries, as
						   the daemon last counted */
	atomic_bool		vs_onfault_used; /* [a] some entry was */
	/* how the threads run: vmspace_start() (re)starts them so */
	int			vs_nthreads;	/* [I] fault threads */
	unsigned		vs_spin_us;	/* [I] */
	bool			vs_pin;		/* [I] */
	unsigned		vs_inactive_pct; /* [I] of the budget */
	unsigned		vs_flush_s;	/* [I] flusher interval, 0: none */
	long			vs_budget;	/* [I] pages, 0: none: at start */
	long			vs_budget_most;	/* [I] pages: the most the budget
						   may become (upvmd), for the
						   staging ring's size */
	atomic_long		vs_budget_now;	/* [a] pages: vs_budget, or what
						   upvmd grants (dlink.h) */
	long			vs_slack;	/* [I] pages in flight allowed */
	vsize_t			vs_threshold;	/* [I] smallest managed mmap */
	bool			vs_files;	/* [I] hostmm manages files */
	struct dlink		vs_dlink;	/* see dlink.h */
};

/*
 * vmspace_enter: the in-process vmspace, with upvm_lock read-held so that
 * it stays initialized; NULL (and no lock) if upvm is not running, or if
 * the calling thread is inside upvm (vm_tl_inside: one of upvm's threads,
 * or a call nested in an interposed or API call, or init/fini/fork):
 * what such a thread maps is upvm's own memory, which the kernel keeps,
 * and managing it would take locks the thread may already hold.
 * vmspace_exit: release it.  (upvm.c)
 */
struct vmspace *vmspace_enter(void);
void vmspace_exit(void);

/*
 * vmspace_start: start the fault threads and, with a budget, the pageout
 * daemon and the flusher, as vs_nthreads...vs_flush_s say.
 * => 0, or -errno (logged) with none running.
 */
int vmspace_start(struct vmspace *);

/*
 * vmspace_set_budget: the budget becomes `pages` (> 0; only with a
 * budget at start: the swap file and daemon exist).  The daemon's
 * watermarks follow at once.  => the vmspace's threads running (the
 * caller is one of them: dlink's thread, stopped by vmspace_stop first).
 */
void vmspace_set_budget(struct vmspace *, long pages);

/*
 * vmspace_stop: stop and free the flusher, the daemon and the fault
 * threads (their rings and buffers).  Faults then wait in the kernel
 * until the next vmspace_start().  Work in progress is finished first:
 * afterwards no slot is BUSY, no anon in transit, the staging area is
 * gone.  touch, if not NULL, runs between the two: nothing is paged out
 * any more, faults are still served (fork: what the other fork handlers
 * will touch).
 */
void vmspace_stop(struct vmspace *, void (*touch)(void));

/*
 * vmspace_init: set a vmspace up from a checked configuration: NUMA
 * state, the userfaultfd with the features it needs, the map, with a
 * budget the swap file, then the threads (vmspace_start).
 * => 0, or -errno (logged) with nothing left behind.
 * vmspace_fini: the reverse; swapped-out pages are paged back in first,
 * so that the regions still mapped stay ordinary memory with their data.
 */
struct upvm_config;
int vmspace_init(struct vmspace *, const struct upvm_config *);

/*
 * vmspace_pagein: bring every page whose data is elsewhere (swap,
 * staging, a file) back in: before upvm_fini() leaves the regions mapped
 * as ordinary memory, and before a core dump.  Pages never written stay
 * empty (zeros either way).  Past the budget unless the daemon throttles.
 * => no locks held.  0, or the last error (each logged; the pages that
 *    could not be read raise SIGBUS).
 */
int vmspace_pagein(struct vmspace *);
void vmspace_fini(struct vmspace *);

/*
 * vmspace_fork_prepare: before fork, after vmspace_stop(): the child's
 * references on swap slots (vmspace.c says why); with `told`, the caller
 * passes the fork's outcome to vmspace_fork_done, and the references are
 * recorded for the child before the fork (swaphold.h).
 */
void vmspace_fork_prepare(struct vmspace *, bool told);

/*
 * vmspace_fork_done: in the parent, once fork returned pid (-errno if it
 * failed), token from vmspace_fork_parent: a failed fork gives back the
 * references taken for the child.  Not in the fork handlers: the caller
 * holds the API lock (read), as any call that uses vs.
 */
void vmspace_fork_done(struct vmspace *, uint64_t token, pid_t pid);

/*
 * vmspace_fork_parent: in the parent after fork(): start the threads
 * vmspace_stop() stopped before it.  => a token for vmspace_fork_done (0:
 * nothing to tell it).
 * vmspace_fork_child: in a child of fork(), stopped by vmspace_stop()
 * before the fork: make the inherited metadata true of the child and
 * start its own runtime.  The child's ranges lost their userfaultfd
 * registration and their uffd-wp bits in the fork: open a userfaultfd of
 * its own, register every region; a resident page that was clean is now
 * dirty (its write would not fault) and leaves its swap slot to the
 * parent; a swapped-out page takes a reference of its own on its slot
 * (the counts are shared, so neither process frees the other's data).
 * uninherit (may be NULL), called with the map write-locked once the
 * child holds its references, forgets the ranges fork did not copy.
 * A child that cannot is left with its regions unmanaged (logged).
 */
uint64_t vmspace_fork_parent(struct vmspace *);
void vmspace_fork_child(struct vmspace *,
    int (*uninherit)(struct vmspace *));

/*
 * vmspace_wake_slots: wake the threads waiting for amap am's slots
 * [slot, slot + n) wherever the map has them now (a run that an mremap
 * moved while its I/O ran; a walk of the map, for that rare path).
 * vmspace_slot_va: where the map has am's slot now, 0 if nowhere.
 * => map read-locked.
 */
struct amap;
void vmspace_wake_slots(struct vmspace *, struct amap *, int slot, int n);
vaddr_t vmspace_slot_va(struct vmspace *, struct amap *, int slot);

#endif /* UPVM_VMSPACE_H */
