/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * flusher.h: the periodic write-back of shared file regions, the
 * kernel's flusher threads (dirty_writeback_centisecs, dirty_expire):
 * every vs_flush_s seconds a thread writes the dirty pages of every
 * shared file entry back (wb_range, no fdatasync), so that a program
 * killed by a signal it cannot catch loses at most the writes of the last
 * interval to its shared mappings, instead of every write not yet
 * evicted, synced or unmapped.  (The kernel's page cache outlives the
 * process and loses nothing but what a crash of the machine takes; a
 * page written again is written again an interval later, as there.)
 *
 * Only with a budget: without uffd-wp writes cannot be seen and every
 * resident page would be written each time.  The address space is
 * walked a chunk (FLUSH_CHUNK) at a time under the map write lock, as
 * msync does, so a fault waits at most one chunk's writes, and after a
 * chunk that wrote the flusher sleeps as long as it held the lock (a
 * pass takes at most half of the faults' time while it runs); a write that
 * fails ends the pass (wb_range logs it once and keeps the pages dirty),
 * the next interval tries again.  A pass that ran to the end counts in
 * st_flushes.
 *
 * Locks protecting struct members:
 *	I  immutable while running   f  fl_lock
 */
#ifndef UPVM_FLUSHER_H
#define UPVM_FLUSHER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vmspace;

struct flusher {
	struct vmspace	*fl_vs;		/* [I] */
	pthread_t	 fl_thread;	/* [I] */
	pthread_mutex_t	 fl_lock;
	pthread_cond_t	 fl_wake;	/* [f] stop requested */
	bool		 fl_stop;	/* [f] */
	unsigned	 fl_interval_s;	/* [I] */
	uint64_t	 fl_cpu_ns;	/* the thread's CPU, set as it ends */
};

/*
 * flusher_start: the flusher of vs, every vs->vs_flush_s seconds; none
 * (vs_flusher NULL, 0 returned) when that is 0 or vs has no budget.
 * => 0, or -errno (logged) with none running.  No locks held.
 */
int flusher_start(struct vmspace *);

/*
 * flusher_stop: stop and free it (a pass under way ends after its chunk).
 * Nothing when none runs.  => no locks held.
 */
void flusher_stop(struct vmspace *);

/* flusher_cpu_ns: the CPU time its thread took so far (0: none runs) */
uint64_t flusher_cpu_ns(struct vmspace *);

#endif /* UPVM_FLUSHER_H */
