/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fault.h: the fault engine of one managed address space.
 *
 * fe_nthreads fault threads share the vmspace's userfaultfd.  Each runs an
 * event loop: read a batch of uffd messages and resolve each fault (map
 * lookup, amap claim, clustered UFFDIO_COPY), finish the pageins of its
 * own pager queue that completed, spin for fe_spin_us (0 by default) when
 * both run dry, then sleep until the uffd, its queue or the stop eventfd
 * has something.  A listening thread sleeps in its queue
 * (pager_queue_listen): the read of the uffd is armed on its io_uring
 * with its pageins, so that one system call hands the reads over and
 * waits for either, and a pagein costs three (that, the wait for the
 * read, the UFFDIO_COPY) where poll() beside a queue cost six or seven;
 * each is a microsecond here (6.1 and 6.18 both wait for the uffd in the
 * ring).  A helper cancels its armed read when its span ends.  A
 * spinning thread (spin_us), and one whose kernel cannot read a
 * userfaultfd through io_uring (the read fails at once with EAGAIN) or
 * whose queue cannot listen, poll() the uffd, the queue's completion fd
 * and the stop eventfd.  A fault on a swapped-out page claims the run
 * to read, starts the read on the thread's queue and goes on with the
 * next event: up to FAULT_IO_DEPTH reads per thread are in flight, none
 * of them holding the map lock (fault.c, "a word on page faults").
 *
 * Helpers join on demand.  The first thread (the leader) always listens
 * to the uffd; the others (helpers) listen only while fe_help_until lies
 * ahead, which a thread that reads FAULT_HELP_BATCH or more messages at
 * once moves FAULT_HELP_NS past its read.  Outside those spans a helper
 * finishes its reads in flight and sleeps on fe_help_cv.  Every poller of
 * a uffd is woken by every fault, and on a machine with few CPUs each
 * useless wake-up of an idle vCPU costs the faulting thread time and the
 * machine CPU; one thread serves a few faulting threads faster than two
 * (README, Benchmarks), many faulting threads need them all.  Each helper
 * runs on a CPU of its own (ft_cpu, fe_allowed's CPUs in turn);
 * the leader runs where the scheduler puts it (it follows the disk's
 * interrupts and the faulting thread) and on its own CPU only while the
 * helpers serve, or always with `pin`.
 *
 * Fault threads run on stacks from kmem (never managed memory) with every
 * signal blocked, so that no application signal handler ever runs on them.
 *
 * Locks protecting struct members in this file:
 *	I  immutable between fault_start() and fault_stop()   a  atomic
 *	t  the fault thread itself   h  fe_help_lock
 */
#ifndef UPVM_FAULT_H
#define UPVM_FAULT_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "vm.h"

struct vmspace;

#define FAULT_BATCH	64	/* uffd messages read at once */
#define FAULT_CHUNK	64	/* pages per UFFDIO_COPY: the faulting page's
				   chunk first, the rest while it runs */

#define FAULT_IO_DEPTH	32	/* pageins in flight per fault thread */
#define FAULT_HUGE_BUFS	2	/* huge-page buffers per fault thread, lent
				   to its reads of FAULT_HUGE_MIN pages or
				   more (fault.c: fault_io_lend) */

#define FAULT_HELP_BATCH 8	/* messages read at once that call helpers */
#define FAULT_HELP_NS	50000000ULL	/* how long helpers listen after */

struct fault_io;			/* fault.c: one pagein in flight */
struct pager_queue;

struct fault_thread {
	pthread_t	 ft_thread;	/* [I] */
	struct vmspace	*ft_vs;		/* [I] */
	int		 ft_cpu;	/* [I] its CPU, or -1: none allowed */
	bool		 ft_leader;	/* [I] always listens to the uffd */
	bool		 ft_pinned;	/* [t] on ft_cpu now */
	bool		 ft_listen;	/* [t] waits in ft_q for the uffd too
					   when it listens (while its queue
					   and kernel can) */
	void		*ft_stack;	/* [I] raw mapping */
	void		*ft_buf;	/* [I] pager data (FAULT_MAX_CLUSTER) */
	struct pager_queue *ft_q;	/* [I] pagein I/O; NULL: no swap */
	struct fault_io	*ft_ios;	/* [I] FAULT_IO_DEPTH, kmem_alloc'd */
	struct fault_io	*ft_free;	/* [t] the free ones, linked */
	long		 ft_kept;	/* [t] pagein buffer pages kept mapped
					   past FAULT_IO_KEEP, all contexts,
					   and the huge buffers' populated */
	void		*ft_huge[FAULT_HUGE_BUFS]; /* [I] 2 MiB aligned,
					   MADV_HUGEPAGE (raw mappings) */
	int		 ft_huge_pop[FAULT_HUGE_BUFS]; /* [t] pages of each
					   populated (in 2 MiB steps) */
	unsigned	 ft_huge_busy;	/* [t] bit i: ft_huge[i] lent */
	vaddr_t		 ft_wake_va;	/* [t] page of its last FC_WAKE */
	unsigned	 ft_wake_n;	/* [t] FC_WAKEs in a row there */
	uint64_t	 ft_cpu_ns;	/* [t] its CPU time when it stopped */
};

struct fault_engine {
	int		 fe_nthreads;	/* [I] threads running */
	int		 fe_nalloc;	/* [I] fe_threads capacity */
	unsigned	 fe_spin_us;	/* [I] */
	bool		 fe_pin;	/* [I] the leader always on its CPU */
	cpu_set_t	 fe_allowed;	/* [I] the CPUs the process may use */
	int		 fe_nallowed;	/* [I] how many; 0: unknown, no pinning */
	int		 fe_stopfd;	/* [I] eventfd: readable when stopping */
	atomic_bool	 fe_stop;	/* [a] */
	_Atomic uint64_t fe_help_until;	/* [a] helpers listen until (ns) */
	atomic_int	 fe_help_idle;	/* [a] helpers asleep on fe_help_cv */
	pthread_mutex_t	 fe_help_lock;	/* sleeping helpers' */
	pthread_cond_t	 fe_help_cv;	/* [h] fe_help_until moved or stop */
	struct fault_thread *fe_threads; /* [I] kmem_alloc'd */
	void (*_Atomic	 fe_pagein_hook)(void *, int); /* [a] tests only:
					   upvm_inject_pagein_hook() */
};

/*
 * fault_start: start nthreads fault threads, the leader pinned too if pin.
 * => returns 0, or -errno with no thread left running.
 */
int fault_start(struct vmspace *, int nthreads, unsigned spin_us, bool pin);

/* fault_stop: stop and join the fault threads, each once its pageins in
   flight are done. */
void fault_stop(struct vmspace *);

/*
 * fault_listen_all: every fault thread listens from now on (on), or only
 * when faults come in bursts again (off): a test's pagein hook holds one
 * thread while another must serve the faults it provokes.
 */
void fault_listen_all(struct vmspace *, bool on);

/* fault_cpu_ns: CPU time the fault threads running now have taken */
uint64_t fault_cpu_ns(struct vmspace *);

/*
 * fault_populate: resolve every empty page of [start, end) now, from the
 * calling thread (WILLNEED); with `backed`, only the pages whose data is
 * elsewhere (swap, staging, a file): what is left empty reads zeros
 * without upvm once the range is no longer registered.
 * => no locks held on entry; takes the map read lock per run.
 * => returns 0, -EFAULT if part of the range is not managed (the pages
 *    before it are resolved), or -ENOMEM.
 */
int fault_populate(struct vmspace *, vaddr_t start, vaddr_t end,
    bool backed);

/* the pages resolved per UFFDIO_COPY at most (a zero-pager loan) */
#define FAULT_MAX_CLUSTER	1024

#endif /* UPVM_FAULT_H */
