/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fault.h: the fault engine of one managed address space.
 *
 * fe_nthreads fault threads share the vmspace's userfaultfd.  Each runs an
 * event loop: read a batch of uffd messages, resolve each fault (map
 * lookup, amap claim, clustered UFFDIO_COPY), spin for fe_spin_us when the
 * queue runs dry, then sleep in poll() on the uffd and the stop eventfd
 * (later: the io_uring completion eventfd, in the same loop).
 *
 * Fault threads run on stacks from kmem (never managed memory) with every
 * signal blocked, so that no application signal handler ever runs on them.
 *
 * Locks protecting struct members in this file:
 *	I  immutable between fault_start() and fault_stop()   a  atomic
 */
#ifndef UPVM_FAULT_H
#define UPVM_FAULT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "vm.h"

struct vmspace;

#define FAULT_BATCH	64	/* uffd messages read at once */
#define FAULT_CHUNK	64	/* pages per UFFDIO_COPY: the faulting page's
				   chunk first, the rest while it runs */

struct fault_thread {
	pthread_t	 ft_thread;	/* [I] */
	struct vmspace	*ft_vs;		/* [I] */
	int		 ft_cpu;	/* [I] pinned CPU, or -1 */
	void		*ft_stack;	/* [I] kmem_alloc'd */
	void		*ft_buf;	/* [I] pager data (FAULT_MAX_CLUSTER) */
	struct ring	*ft_ring;	/* [I] pagein I/O; NULL: no swap */
};

struct fault_engine {
	int		 fe_nthreads;	/* [I] threads running */
	int		 fe_nalloc;	/* [I] fe_threads capacity */
	unsigned	 fe_spin_us;	/* [I] */
	int		 fe_stopfd;	/* [I] eventfd: readable when stopping */
	atomic_bool	 fe_stop;	/* [a] */
	struct fault_thread *fe_threads; /* [I] kmem_alloc'd */
};

/*
 * fault_start: start nthreads fault threads (pinned to CPUs 0.. if pin).
 * => returns 0, or -errno with no thread left running.
 */
int fault_start(struct vmspace *, int nthreads, unsigned spin_us, bool pin);

/* fault_stop: stop and join the fault threads. */
void fault_stop(struct vmspace *);

/*
 * fault_populate: resolve every empty page of [start, end) now, from the
 * calling thread (WILLNEED).
 * => no locks held on entry; takes the map read lock per run.
 * => returns 0, -EFAULT if part of the range is not managed (the pages
 *    before it are resolved), or -ENOMEM.
 */
int fault_populate(struct vmspace *, vaddr_t start, vaddr_t end);

/* the pages resolved per UFFDIO_COPY at most (a zero-pager loan) */
#define FAULT_MAX_CLUSTER	1024

#endif /* UPVM_FAULT_H */
