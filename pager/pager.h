/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pager.h: backing stores behind one interface (UVM's uvm_pagerops).
 *
 * A pager supplies the data of the lower layer (an entry's e_obj: the zero
 * pager for anonymous memory, a file for file-backed regions) and stores
 * anonymous pages (the swap pager).  Offsets are bytes, page aligned.
 *
 * Every transfer goes through pager_get / pager_put; nothing outside
 * pager/ does I/O to a backing store.  Requests are asynchronous: a
 * thread submits them on a pager queue of its own (pager_queue_create),
 * and they either complete before the call returns (0, or -errno) or
 * return -EINPROGRESS and complete later, in that same thread, when it
 * calls pager_complete(): pr_done runs there, with pr_error set.  A queue
 * has a file descriptor that turns readable when completions are ready,
 * so a thread waits for its I/O and other events in one poll(); a ring
 * queue can instead read the other descriptor itself and wait for both
 * in one system call (pager_queue_listen).  A queue
 * serves every pager of its kind (pager_queue_serves: the io_uring pagers
 * share ringq.h's queues), so one thread's swap and file I/O wait on one
 * queue; the swap's remote store (remote.h) does its network I/O in
 * threads of its own and posts each completion into the requesting
 * queue's ring, so it arrives there like a disk's.  A
 * request with no queue (NULL) is done synchronously, for tests and
 * tools.  Core code calls the pager_*() wrappers, never pgr_ops directly;
 * the wrappers hold the assertions, defaults and counters.
 *
 * A get may fail for part of its pages: pr_xfer says how many bytes at
 * the start were read correctly, pr_lost how many pages from there are
 * lost (0: all the rest); the caller maps the good ones, poisons the lost
 * ones (SIGBUS) and leaves the others to fault again.  A remote store
 * that lost one server's pages must not take its neighbours' with them.
 *
 * A pager that can tell whether a page still holds what it stored
 * (pgo_unchanged) lets the move pageout protocol drop a clean page
 * without I/O: the pager keeps a keyed hash of what it holds at an
 * offset, from a get with PGO_REMEMBER or from pager_remember, and the
 * key never leaves the pager.  A hash is kept only while it is the
 * store's: the swap pager forgets a slot's when the slot is handed out
 * or written, the vnode pager a page's when it is read or written without
 * PGO_REMEMBER (the file may have changed).  pager_known says whether it
 * has one; the pageout daemon hashes a clean page in place, before the
 * scan that proves it unwritten, only when it has not (pdaemon.c).
 *
 * Locks protecting struct members in this file:
 *	I  immutable after creation   a  atomic   p  pgr_lock
 *	q  the queue's owner thread (a queue is never shared)
 *	r  the request's owner until pr_done returns
 */
#ifndef UPVM_PAGER_H
#define UPVM_PAGER_H

#include <stdatomic.h>

#include "lock.h"
#include "vm.h"

struct pager;
struct pager_queue;

/* pr_flags */
#define PGO_LOANOK	0x1	/* get: the pager may point pr_buf at its own
				   read-only memory instead of filling it */
#define PGO_REMEMBER	0x4	/* get: remember the content read, for
				   pager_unchanged() (else the vnode pager
				   forgets it) */

struct pager_req {
	voff_t		 pr_off;	/* [r] byte offset in the pager */
	int		 pr_npages;	/* [r] */
	int		 pr_flags;	/* [r] PGO_* */
	void		*pr_buf;	/* [r] in: caller's buffer of pr_npages
					   (page aligned); out (PGO_LOANOK):
					   maybe the pager's */
	int		 pr_error;	/* [r] result: 0 or -errno */
	size_t		 pr_xfer;	/* [r] backend's: bytes done so far;
					   on a failed get, the bytes read
					   correctly before the failure */
	int		 pr_lost;	/* [r] failed get: 0, everything from
					   pr_xfer on is lost; n > 0, only
					   the n pages at pr_xfer are (the
					   rest is unread: ask again) */
	void		*pr_priv;	/* [r] backend's, while in flight */
	struct pager	*pr_pager;	/* [r] set by pager_get / pager_put */
	void		(*pr_done)(struct pager_req *);	/* [r] completion */
	void		*pr_arg;	/* [r] caller's */
};

struct pager_ops {
	const char *name;		/* registry key, logs */
	/* => start or do the get of pr_buf's pages [pr_off, +pr_npages);
	   q NULL: synchronously.  0 done, -EINPROGRESS, or -errno */
	int	(*pgo_get)(struct pager *, struct pager_queue *,
		    struct pager_req *);
	/* optional: store pr_buf's pages at pr_off; as pgo_get */
	int	(*pgo_put)(struct pager *, struct pager_queue *,
		    struct pager_req *);
	/* optional (asynchronous backends): a queue of `depth` requests
	   in flight; its fd; reap up to max completions (calling pr_done),
	   waiting for one if wait; destroy (nothing in flight) */
	int	(*pgo_qcreate)(struct pager *, unsigned depth,
		    struct pager_queue **);
	int	(*pgo_qfd)(struct pager_queue *);
	int	(*pgo_qcomplete)(struct pager_queue *, int max, bool wait);
	void	(*pgo_qdestroy)(struct pager_queue *);
	/* optional: hand the transfers queued while plugged to the
	   device (pager_queue_plug) */
	void	(*pgo_qflush)(struct pager_queue *);
	/* optional (queues that wait for a descriptor themselves): arm a
	   read of fd into buf and a poll of wakefd; take the read's result;
	   cancel both (pager_queue_listen) */
	int	(*pgo_qlisten)(struct pager_queue *, int fd, void *buf,
		    size_t len, int wakefd);
	ssize_t	(*pgo_qheard)(struct pager_queue *);
	int	(*pgo_qunlisten)(struct pager_queue *);
	/* ring pagers (ringq.h): a completion of res bytes (or -errno) of
	   req's transfer; => true: finished (pr_error set), false: the
	   rest is queued again */
	bool	(*pgo_qresume)(struct pager *, struct pager_queue *,
		    struct pager_req *, bool write, int res);
	/* optional: widest I/O cluster [*lop, *hip) around off (bytes) */
	void	(*pgo_cluster)(struct pager *, voff_t off, voff_t *lop,
		    voff_t *hip);
	/* optional: forget backing store for [start, end) */
	int	(*pgo_discard)(struct pager *, voff_t start, voff_t end);
	/* optional: the store at off holds the n pages at buf now; and:
	   is the page at buf still what the store holds at off? */
	void	(*pgo_remember)(struct pager *, voff_t off, const void *buf,
		    int n);
	bool	(*pgo_unchanged)(struct pager *, voff_t off, const void *buf);
	/* optional: does the pager keep a hash of what it holds at off? */
	bool	(*pgo_known)(struct pager *, voff_t off);
	/* optional: the object's size in bytes (refresh: ask the store,
	   else as last seen); pages from there on are past its end */
	voff_t	(*pgo_size)(struct pager *, bool refresh);
	/* release the pager's resources; pager_unref() calls it last */
	void	(*pgo_destroy)(struct pager *);
};

struct pager {
	const struct pager_ops *pgr_ops;	/* [I] */
	struct vm_mutex	 pgr_lock;
	atomic_int	 pgr_ref;		/* [a] entries + holders */
	voff_t		 pgr_size;		/* [p] bytes; 0 = unbounded */
};

/*
 * A thread's channel to one pager.  Backends with a queue of their own
 * embed it first; synchronous backends get this bare struct from
 * pager_queue_create.
 */
struct pager_queue {
	struct pager	*pq_pager;	/* [I] */
	unsigned	 pq_depth;	/* [I] requests in flight, at most */
	unsigned	 pq_inflight;	/* [q] -EINPROGRESS, pr_done not run */
	bool		 pq_plugged;	/* [q] transfers queued, not yet handed
					   to the device (pager_queue_plug) */
	bool		 pq_listening;	/* [q] pager_queue_listen'ed, not yet
					   unlistened */
};

/* pager_init: called by a backend's constructor for its embedded pager */
void pager_init(struct pager *, const struct pager_ops *, voff_t size);
void pager_ref(struct pager *);
void pager_unref(struct pager *);

/*
 * pager_queue_create / pager_queue_destroy: a queue for the calling
 * thread, `depth` requests in flight at most (1..4096).  Destroy only
 * with nothing in flight (pager_complete until pq_inflight == 0).
 * => 0, or -errno (-ENOSYS/-EPERM: the backend's I/O is unavailable).
 */
int pager_queue_create(struct pager *, unsigned depth,
    struct pager_queue **out);
void pager_queue_destroy(struct pager_queue *);

/*
 * pager_queue_plug: while q is plugged (on), the transfers started on it
 * are queued but not handed to the device; unplugging (off) hands them
 * over together.  A fault thread plugs its queue while it serves a batch
 * of faults: on virtio each hand-over is a doorbell, a VM exit of about
 * 10 us, a third of the thread's CPU per pagein.  A wait for a completion
 * (pager_complete with wait, the _sync calls) hands over what is queued
 * first, so a plugged queue never waits on a transfer it holds back.
 */
void pager_queue_plug(struct pager_queue *, bool on);

/* pager_queue_serves: q takes requests for pgr (same queue kind) */
bool pager_queue_serves(const struct pager_queue *, const struct pager *);

/* pager_queue_fd: readable when completions are ready; -1: never (a
   synchronous backend: every request completes at once) */
int pager_queue_fd(struct pager_queue *);

/*
 * Listening: a thread that waits for its completions and for another
 * descriptor's data (a fault thread: its userfaultfd's messages) does it
 * in one system call where the queue can read that descriptor itself (an
 * io_uring read, armed until the descriptor turns readable), instead of
 * a poll() and a read() beside each wait.
 *
 * pager_queue_listen: arm a read of len bytes of fd (pollable and
 * non-blocking) into buf, unless one is armed or its result is not yet
 * taken, and, the first time, a poll of wakefd (-1: none).  buf is the
 * queue's until the result is taken.
 * => 0, -EOPNOTSUPP (the queue cannot: poll pager_queue_fd and fd), or
 *    -errno of the submission.
 */
int pager_queue_listen(struct pager_queue *, int fd, void *buf, size_t len,
    int wakefd);

/*
 * pager_queue_wait: hand over what is queued (unplugging q) and sleep
 * until a request completes, the armed read completes or wakefd turns
 * readable; run pr_done of what completed.
 * => the number completed, or -errno (-EINTR: call again).
 */
int pager_queue_wait(struct pager_queue *, int max);

/*
 * pager_queue_heard: the armed read's result, taken: bytes (> 0), 0
 * (nothing yet), or -errno (-EAGAIN: this kernel cannot wait for fd
 * that way: poll it).  Reaped by pager_complete and pager_queue_wait.
 * (A wakefd that turned readable only ends the wait; the caller knows
 * why it wrote it.)
 */
ssize_t pager_queue_heard(struct pager_queue *);

/*
 * pager_queue_unlisten: cancel the armed read and poll and wait until
 * they are gone (completing requests meanwhile).  A read that completed
 * first keeps its result for pager_queue_heard.  => 0 or -errno.
 */
int pager_queue_unlisten(struct pager_queue *);

/*
 * pager_get / pager_put: start a transfer (see pgo_get / pgo_put).
 * => pager unlocked (backends lock what they need, never across I/O).
 * => 0 done (pr_done not called), -EINPROGRESS (pr_done called later by
 *    pager_complete on q), -EBUSY (q has pq_depth in flight: complete
 *    some first), -EOPNOTSUPP (no put), -EINVAL (range outside the
 *    pager), -EIO or another -errno (failed, nothing in flight).
 */
int pager_get(struct pager *, struct pager_queue *, struct pager_req *);
int pager_put(struct pager *, struct pager_queue *, struct pager_req *);

/*
 * pager_complete: run pr_done for up to max finished requests of q;
 * with wait, sleep until at least one finishes (if any is in flight).
 * => the number completed, or -errno of the wait (-EINTR: call again).
 */
int pager_complete(struct pager_queue *, int max, bool wait);

/*
 * pager_finish: a backend's end of a request that returned -EINPROGRESS
 * on q: counts it out of flight and calls its pr_done.
 * => called by the backend's pgo_qcomplete, in q's owner thread.
 */
void pager_finish(struct pager_queue *, struct pager_req *);

/* pager_get_sync / pager_put_sync: the whole transfer, waited for on q
   (which may have other requests in flight: they complete too) */
int pager_get_sync(struct pager *, struct pager_queue *, struct pager_req *);
int pager_put_sync(struct pager *, struct pager_queue *, struct pager_req *);

void pager_cluster(struct pager *, voff_t off, voff_t *lop, voff_t *hip);
int pager_discard(struct pager *, voff_t start, voff_t end);

/*
 * pager_fail_next: fault injection (swap_inject_failure and the like): a
 * countdown the tests arm with N; the Nth call from then on returns true
 * (that transfer fails), every other false.  No locks.
 */
bool pager_fail_next(atomic_int *countdown);

/* pager_size: see pgo_size; VOFF_MAX without it (no end) */
voff_t pager_size(struct pager *, bool refresh);

/*
 * pager_ring: a pager that does no I/O of its own, whose queues serve
 * every io_uring pager (swap, vnode): the queue maker of threads that
 * read from files with no swap configured.  One static instance.
 */
struct pager *pager_ring(void);

/* pager_remember / pager_unchanged / pager_known: see pgo_remember /
   pgo_unchanged / pgo_known; without them, nothing is remembered, no page
   is unchanged and every page is known (nothing to hash) */
void pager_remember(struct pager *, voff_t off, const void *buf, int n);
bool pager_unchanged(struct pager *, voff_t off, const void *buf);
bool pager_known(struct pager *, voff_t off);

/* the registry: backends by name; NULL if unknown */
const struct pager_ops *pager_lookup(const char *name);

/*
 * The zero pager: every page reads as zeros; nothing can be stored.  With
 * PGO_LOANOK a get lends ZERO_LOAN_PAGES of shared zeros instead of a
 * memset.  One static instance, never destroyed.
 */
#define ZERO_LOAN_PAGES	1024
extern const struct pager_ops zero_pager_ops;
struct pager *zero_pager(void);

#endif /* UPVM_PAGER_H */
