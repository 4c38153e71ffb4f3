/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * uring.h: io_uring for the pagers; uring.c is the only file that includes
 * <liburing.h>.
 *
 * A ring belongs to one thread (a fault thread, the pageout daemon): no
 * lock.  Reads and writes are queued with ring_read/ring_write and go to
 * the kernel in one batch at ring_submit (or when the submission queue is
 * full).  Completions are reaped with ring_reap; ring_fd is an eventfd that
 * becomes readable when completions are posted, so that a thread can wait
 * for uffd events and I/O completions in one poll(), or the ring reads
 * the uffd itself (ring_listen) and ring_reap waits for both.  Buffers
 * registered with ring_register_buffers are used with the fixed-buffer
 * opcodes when an I/O lies wholly inside one of them.
 *
 * Locks: none; every function is called by the ring's owner only.
 */
#ifndef UPVM_URING_H
#define UPVM_URING_H

#include <stdint.h>
#include <sys/uio.h>

#include "vm.h"

struct ring;

#define RING_TAG_INTERNAL	UINT64_MAX	/* reserved for uring.c */
#define RING_TAG_LISTEN		(UINT64_MAX - 1)	/* ring_listen's read */
#define RING_TAG_WAKE		(UINT64_MAX - 2)	/* its wake poll */

struct ring_cqe {
	uint64_t	rc_tag;		/* the caller's tag */
	int		rc_res;		/* bytes done, or -errno */
};

/*
 * ring_create: a ring of `depth` entries (a power of two, 1..4096) with an
 * eventfd for completions.
 * => 0, or -errno (-ENOSYS / -EPERM: io_uring unavailable).
 */
int ring_create(unsigned depth, struct ring **out);
void ring_destroy(struct ring *);

/* ring_fd: the eventfd that turns readable when completions arrive.  A
   ring whose owner never asked for it (it waits in ring_reap only) does
   not drain it: a read saved per reap */
int ring_fd(struct ring *);

/*
 * ring_register_file / ring_register_buffers: fixed file and buffers.
 * Optional: I/O works without them.  => 0 or -errno.
 */
int ring_register_file(struct ring *, int fd);
int ring_register_buffers(struct ring *, const struct iovec *, unsigned n);

/*
 * ring_read / ring_write: queue len bytes at file offset off to/from buf,
 * tagged (any tag but RING_TAG_INTERNAL).  Short transfers are the
 * caller's to handle (rc_res < len).
 * => 0 queued, -EBUSY when the ring has `depth` I/Os in flight already
 *    (reap first).
 */
int ring_read(struct ring *, int fd, void *buf, size_t len, uint64_t off,
    uint64_t tag);
int ring_write(struct ring *, int fd, const void *buf, size_t len,
    uint64_t off, uint64_t tag);

/*
 * ring_read_nocache / ring_write_nocache: ring_read / ring_write for a file
 * opened without O_DIRECT, with the range then dropped from the page cache
 * (linked sync_file_range and POSIX_FADV_DONTNEED, best effort).  One
 * completion, the transfer's, as for ring_read / ring_write.
 */
int ring_read_nocache(struct ring *, int fd, void *buf, size_t len,
    uint64_t off, uint64_t tag);
int ring_write_nocache(struct ring *, int fd, const void *buf, size_t len,
    uint64_t off, uint64_t tag);

/*
 * ring_set_gate: the I/Os queued from now on start only when fd turns
 * readable (a linked POLL_ADD before each); -1: no gate.  The tests'
 * slow disk (swap_inject_gate).
 */
void ring_set_gate(struct ring *, int fd);

/* ring_submit: hand the queued I/Os to the kernel.  => number or -errno */
int ring_submit(struct ring *);

/*
 * ring_reap: up to n completions into out[]; with wait, block until at
 * least one arrives (submitting first).  => number reaped, or -errno.
 */
int ring_reap(struct ring *, struct ring_cqe *out, int n, bool wait);

/*
 * ring_set_spin: ring_reap(wait) polls the completion queue for up to
 * spin_us microseconds before it sleeps (0, the default: sleep at once).
 */
void ring_set_spin(struct ring *, unsigned spin_us);

/*
 * ring_expect / ring_unexpect: count (or stop counting) one completion
 * that another thread will post into this ring with ring_post, as an
 * I/O in flight.  => 0, or -EBUSY (`depth` in flight already).
 */
int ring_expect(struct ring *);
void ring_unexpect(struct ring *);

/* ring_msgfd: the ring's own descriptor: ring_post's target */
int ring_msgfd(struct ring *);

/*
 * ring_post: from a thread's own ring `from` (nothing else in flight on
 * it), post a completion (tag, res) into the ring whose ring_msgfd is
 * to_fd (IORING_OP_MSG_RING, Linux 5.18).  => 0 or -errno.
 */
int ring_post(struct ring *from, int to_fd, uint64_t tag, int res);

/*
 * Listening.  ring_listen arms a read of len bytes of fd into buf, where
 * fd is pollable and non-blocking (a userfaultfd): the kernel waits for it
 * to turn readable and reads then.  The first call also arms a poll for
 * wakefd turning readable (-1: none), never armed again once it fired;
 * it ends the wait it fired in, or the next one (not every later one).
 * ring_reap(wait) returns when either completes, with nothing reaped if
 * nothing else came; neither counts against the depth nor as in flight
 * (ring_inflight).  buf is the kernel's until the read completes.
 * => 0 armed (or already), or the error of a submission that had to make
 *    room in the SQ.
 */
int ring_listen(struct ring *, int fd, void *buf, size_t len, int wakefd);

/*
 * ring_heard: the armed read's result once it completed (taken: the next
 * call returns 0): bytes read (> 0) or -errno (-EAGAIN: this kernel
 * cannot wait for fd in the ring, it tried the read at once); 0 while it
 * is armed or none is.  ring_woken: whether wakefd turned readable.
 */
ssize_t ring_heard(struct ring *);
bool ring_woken(struct ring *);

/* ring_listening: whether a read or the wake poll is armed */
bool ring_listening(struct ring *);

/*
 * ring_unlisten: cancel what ring_listen armed; the caller then reaps
 * (ring_reap with wait) until ring_listening is false.  A read that beat
 * the cancellation keeps its result for ring_heard.
 * => 0, or the error of the submission (nothing cancelled).
 */
int ring_unlisten(struct ring *);

/* ring_inflight: I/Os queued or submitted and not yet reaped */
unsigned ring_inflight(struct ring *);

#endif /* UPVM_URING_H */
