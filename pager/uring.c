/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * uring.c: the pagers' io_uring rings, over liburing.  The only file in
 * upvm that includes <liburing.h>.
 *
 * A ring belongs to one thread, so nothing here locks.  liburing does the
 * memory ordering of the shared rings itself: io_uring_get_sqe() and
 * io_uring_submit() publish the SQ tail with a release store after the
 * SQEs are written, io_uring_peek_cqe() reads the CQ tail with an acquire
 * load before the CQE is read, and io_uring_cqe_seen() releases the slot
 * only after we have copied it out.
 *
 * A word on the eventfd.  The kernel posts a CQE and then signals the
 * eventfd (io_eventfd_signal() comes after the CQ tail is committed).
 * ring_reap() therefore drains the eventfd *before* it looks at the CQ:
 * a CQE posted after the drain signals again, so a poll() on ring_fd can
 * never sleep on a completion it was not told about; at worst it wakes
 * once for a CQE that the same ring_reap() already took.  When ring_reap()
 * stops with CQEs still in the ring (out[] was full), it writes the
 * eventfd itself so that the next poll() comes back at once.  A ring
 * whose owner never asked for ring_fd waits in ring_reap only, and its
 * eventfd is left alone: a read() saved per reap.
 *
 * A word on the page cache.  A file opened without O_DIRECT (a file
 * system that refuses it) keeps what we write in the page cache: memory
 * outside upvm's budget, dirty until writeback.  ring_write_nocache()
 * links a sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER) and a
 * POSIX_FADV_DONTNEED behind the write (IOSQE_IO_LINK: each starts when
 * the previous one succeeded in full), ring_read_nocache() the fadvise
 * behind the read.  Those SQEs carry RING_TAG_INTERNAL and, where the
 * kernel has IOSQE_CQE_SKIP_SUCCESS (5.17), post a CQE only when they
 * fail; ring_reap() drops every internal CQE.  They do not count as in
 * flight: the caller sees exactly one completion per ring_read/ring_write.
 *
 * The submission queue has RING_SQ_PER_IO entries per I/O of `depth`, so
 * that `depth` uncached writes (three SQEs each) fit unsubmitted; a chain
 * is never split across two submissions (the kernel would end the link).
 * The completion queue has twice as many (liburing's default), more than
 * the caller's `depth` plus the internal failures that can be pending.
 *
 * Nothing here allocates on the I/O path: the ring and the table of
 * registered buffers come from kmem_alloc() at creation / registration.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <liburing.h>

#include "kmem.h"
#include "sys.h"
#include "uring.h"

#define RING_MAXDEPTH	4096
#define RING_SQ_PER_IO	4	/* SQEs per I/O: a chain of 3, rounded up */
#define RING_MAXLEN	((size_t)UINT_MAX)	/* an SQE's len is 32 bits */

/*
 * Locks protecting struct members: none, the ring has one owner.
 *	I  immutable after ring_create()   o  the owner thread
 */
struct ring {
	struct io_uring	 r_uring;	/* [o] liburing's view of the ring */
	int		 r_efd;		/* [I] eventfd signalled per CQE */
	unsigned	 r_depth;	/* [I] caller's I/Os in flight, max */
	unsigned	 r_inflight;	/* [o] caller's I/Os not reaped */
	bool		 r_skip;	/* [I] IOSQE_CQE_SKIP_SUCCESS works */
	int		 r_file;	/* [o] fixed file (index 0), or -1 */
	struct iovec	*r_bufs;	/* [o] fixed buffers (kmem_alloc) */
	unsigned	 r_nbuf;	/* [o] entries in r_bufs */
	uint64_t	 r_spin_ns;	/* [o] poll the CQ this long first */
	int		 r_gate;	/* [o] ring_set_gate's fd, or -1 */
	bool		 r_polled;	/* [o] ring_fd was asked for: drain */
	bool		 r_listen;	/* [o] ring_listen's read is armed */
	ssize_t		 r_heard;	/* [o] its result, not yet taken */
	int		 r_wake;	/* [o] wake poll: RING_WAKE_* */
};

/* r_wake */
#define RING_WAKE_NONE	0	/* not armed */
#define RING_WAKE_ARMED	1
#define RING_WAKE_FIRED	2	/* the next wait returns at once */
#define RING_WAKE_SPENT	3	/* a wait returned for it: never again */

/*
 * ring_create: see uring.h.
 * => -EINVAL for a bad depth, -ENOMEM, or io_uring_setup's error
 *    (-ENOSYS: no io_uring; -EPERM: kernel.io_uring_disabled).
 */
int
ring_create(unsigned depth, struct ring **out)
{
	struct io_uring_params p;
	struct ring *r;
	int error;

	if (depth == 0 || depth > RING_MAXDEPTH || (depth & (depth - 1)) != 0)
		return -EINVAL;
	if ((r = kmem_alloc(sizeof(*r))) == NULL)
		return -ENOMEM;
	/* the owner runs its completions' task work at its next system
	   call, not interrupted by it while it runs (an IPI: a VM exit);
	   liburing's peek enters the kernel when the flag says some is
	   pending (5.19; else without) */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	error = io_uring_queue_init_params(depth * RING_SQ_PER_IO,
	    &r->r_uring, &p);
	if (error == -EINVAL) {
		memset(&p, 0, sizeof(p));
		error = io_uring_queue_init_params(depth * RING_SQ_PER_IO,
		    &r->r_uring, &p);
	}
	if (error < 0)
		goto fail;
	if ((r->r_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		error = -errno;
		goto fail_uring;
	}
	if ((error = io_uring_register_eventfd(&r->r_uring, r->r_efd)) < 0)
		goto fail_efd;
	r->r_depth = depth;
	r->r_inflight = 0;
	r->r_skip = (p.features & IORING_FEAT_CQE_SKIP) != 0;
	r->r_file = -1;
	r->r_bufs = NULL;
	r->r_nbuf = 0;
	r->r_gate = -1;
	r->r_polled = false;
	r->r_listen = false;
	r->r_heard = 0;
	r->r_wake = RING_WAKE_NONE;
	*out = r;
	return 0;
fail_efd:
	close(r->r_efd);
fail_uring:
	io_uring_queue_exit(&r->r_uring);
fail:
	kmem_free(r, sizeof(*r));
	return error;
}

/*
 * ring_destroy: tear the ring down.  I/Os still in flight are cancelled
 * or waited for by the kernel; their buffers stay pinned until then.
 */
void
ring_destroy(struct ring *r)
{
	if (r == NULL)
		return;
	io_uring_queue_exit(&r->r_uring);
	close(r->r_efd);
	if (r->r_bufs != NULL)
		kmem_free(r->r_bufs, r->r_nbuf * sizeof(*r->r_bufs));
	kmem_free(r, sizeof(*r));
}

int
ring_fd(struct ring *r)
{
	r->r_polled = true;
	return r->r_efd;
}

/*
 * ring_register_file: make fd the ring's fixed file; I/O on fd then goes
 * through IOSQE_FIXED_FILE (no fget/fput per I/O).  Replaces a file
 * registered before.
 * => -EBUSY while I/Os are in flight (queued SQEs name index 0).
 */
int
ring_register_file(struct ring *r, int fd)
{
	int error;

	if (fd < 0)
		return -EBADF;
	if (r->r_inflight != 0)
		return -EBUSY;
	if (r->r_file >= 0) {
		if ((error = io_uring_unregister_files(&r->r_uring)) < 0)
			return error;
		r->r_file = -1;
	}
	if ((error = io_uring_register_files(&r->r_uring, &fd, 1)) < 0)
		return error;
	r->r_file = fd;
	return 0;
}

/*
 * ring_register_buffers: pin n buffers for the fixed-buffer opcodes,
 * replacing those registered before (n == 0: just unregister).  We keep
 * a copy of iov[] to find the buffer an I/O lies in (a linear search: a
 * ring has a few large buffers, not many small ones).
 * => -EBUSY while I/Os are in flight, -ENOMEM, or the kernel's error
 *    (-EFAULT: not anonymous memory; -ENOMEM: RLIMIT_MEMLOCK).
 */
int
ring_register_buffers(struct ring *r, const struct iovec *iov, unsigned n)
{
	struct iovec *copy = NULL;
	int error;

	if (r->r_inflight != 0)
		return -EBUSY;
	if (n > 0) {
		if ((copy = kmem_alloc(n * sizeof(*copy))) == NULL)
			return -ENOMEM;
		memcpy(copy, iov, n * sizeof(*copy));
	}
	if (r->r_bufs != NULL) {
		if ((error = io_uring_unregister_buffers(&r->r_uring)) < 0)
			goto fail;
		kmem_free(r->r_bufs, r->r_nbuf * sizeof(*r->r_bufs));
		r->r_bufs = NULL;
		r->r_nbuf = 0;
	}
	if (n == 0)
		return 0;
	if ((error = io_uring_register_buffers(&r->r_uring, copy, n)) < 0)
		goto fail;
	r->r_bufs = copy;
	r->r_nbuf = n;
	return 0;
fail:
	if (copy != NULL)
		kmem_free(copy, n * sizeof(*copy));
	return error;
}

/* ring_buf_index: the registered buffer holding [buf, buf + len), or -1 */
static int
ring_buf_index(const struct ring *r, const void *buf, size_t len)
{
	uintptr_t a = (uintptr_t)buf, base;

	for (unsigned i = 0; i < r->r_nbuf; i++) {
		base = (uintptr_t)r->r_bufs[i].iov_base;
		if (a >= base && len <= r->r_bufs[i].iov_len &&
		    a - base <= r->r_bufs[i].iov_len - len)
			return (int)i;
	}
	return -1;
}

static void ring_efd_drain(struct ring *);

/*
 * ring_sqes: nsqe free SQEs in a row (a chain must go in one submission).
 * => 0, or the error of the submission that made room.
 */
static int
ring_sqes(struct ring *r, unsigned nsqe)
{
	int error;

	if (io_uring_sq_space_left(&r->r_uring) >= nsqe)
		return 0;
	if ((error = io_uring_submit(&r->r_uring)) < 0)
		return error;
	/* the kernel consumed what it accepted; it may accept less */
	return io_uring_sq_space_left(&r->r_uring) >= nsqe ? 0 : -EAGAIN;
}

/* ring_internal: fill in the flags and tag of a cache-dropping SQE */
static void
ring_internal(struct ring *r, struct io_uring_sqe *sqe, unsigned flags)
{
	io_uring_sqe_set_data64(sqe, RING_TAG_INTERNAL);
	sqe->flags |= flags | (r->r_skip ? IOSQE_CQE_SKIP_SUCCESS : 0);
}

/*
 * ring_queue: queue one read or write, with the cache drop behind it when
 * nocache is set.
 * => 0 queued, -EBUSY (depth in flight), -EINVAL (len over 4 GiB - 1), or
 *    the error of a submission that had to make room in the SQ.
 */
static int
ring_queue(struct ring *r, bool write, int fd, void *buf, size_t len,
    uint64_t off, uint64_t tag, bool nocache)
{
	struct io_uring_sqe *sqe;
	unsigned nsqe, fixed = 0;
	int bi, sfd = fd, error;

	VM_ASSERT(tag != RING_TAG_INTERNAL);
	if (r->r_inflight >= r->r_depth)
		return -EBUSY;
	if (len > RING_MAXLEN)
		return -EINVAL;
	nsqe = (!nocache ? 1 : write ? 3 : 2) + (r->r_gate >= 0);
	if ((error = ring_sqes(r, nsqe)) != 0)
		return error;
	if (r->r_gate >= 0) {
		/* the I/O starts when the gate turns readable */
		sqe = io_uring_get_sqe(&r->r_uring);
		io_uring_prep_poll_add(sqe, r->r_gate, POLLIN);
		ring_internal(r, sqe, IOSQE_IO_LINK);
	}
	if (fd >= 0 && fd == r->r_file) {
		sfd = 0;			/* index in the file table */
		fixed = IOSQE_FIXED_FILE;
	}
	bi = ring_buf_index(r, buf, len);

	sqe = io_uring_get_sqe(&r->r_uring);
	if (write && bi >= 0)
		io_uring_prep_write_fixed(sqe, sfd, buf, (unsigned)len, off,
		    bi);
	else if (write)
		io_uring_prep_write(sqe, sfd, buf, (unsigned)len, off);
	else if (bi >= 0)
		io_uring_prep_read_fixed(sqe, sfd, buf, (unsigned)len, off, bi);
	else
		io_uring_prep_read(sqe, sfd, buf, (unsigned)len, off);
	io_uring_sqe_set_data64(sqe, tag);
	sqe->flags |= fixed | (nocache ? IOSQE_IO_LINK : 0);

	if (nocache && write) {
		sqe = io_uring_get_sqe(&r->r_uring);
		io_uring_prep_sync_file_range(sqe, sfd, (unsigned)len, off,
		    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
		    SYNC_FILE_RANGE_WAIT_AFTER);
		ring_internal(r, sqe, fixed | IOSQE_IO_LINK);
	}
	if (nocache) {
		sqe = io_uring_get_sqe(&r->r_uring);
		io_uring_prep_fadvise(sqe, sfd, off, (off_t)len,
		    POSIX_FADV_DONTNEED);
		ring_internal(r, sqe, fixed);
	}
	r->r_inflight++;
	return 0;
}

int
ring_expect(struct ring *r)
{
	if (r->r_inflight >= r->r_depth)
		return -EBUSY;
	r->r_inflight++;
	return 0;
}

void
ring_unexpect(struct ring *r)
{
	VM_ASSERT(r->r_inflight > 0);
	r->r_inflight--;
}

int
ring_msgfd(struct ring *r)
{
	return r->r_uring.ring_fd;
}

/*
 * ring_post: IORING_OP_MSG_RING from `from` (the poster's own ring) to
 * the ring whose fd is to_fd: a CQE there with user_data tag and res;
 * the kernel signals that ring's eventfd as for its own CQEs.  Waits for
 * the message's own completion on `from`.
 * => 0, or -errno (-EOVERFLOW: the target's CQ is full and cannot
 *    overflow; the caller retries).
 */
int
ring_post(struct ring *from, int to_fd, uint64_t tag, int res)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int error;

	VM_ASSERT(from->r_inflight == 0);
	if ((error = ring_sqes(from, 1)) != 0)
		return error;
	sqe = io_uring_get_sqe(&from->r_uring);
	io_uring_prep_msg_ring(sqe, to_fd, (unsigned)res, tag, 0);
	io_uring_sqe_set_data64(sqe, RING_TAG_INTERNAL);
	if ((error = io_uring_submit_and_wait(&from->r_uring, 1)) < 0)
		return error;
	if ((error = io_uring_wait_cqe(&from->r_uring, &cqe)) < 0)
		return error;
	error = cqe->res < 0 ? cqe->res : 0;
	io_uring_cqe_seen(&from->r_uring, cqe);
	ring_efd_drain(from);
	return error;
}

void
ring_set_gate(struct ring *r, int fd)
{
	r->r_gate = fd;
}

int
ring_read(struct ring *r, int fd, void *buf, size_t len, uint64_t off,
    uint64_t tag)
{
	return ring_queue(r, false, fd, buf, len, off, tag, false);
}

int
ring_write(struct ring *r, int fd, const void *buf, size_t len,
    uint64_t off, uint64_t tag)
{
	/* the kernel only reads buf; liburing's prep takes a const void * */
	return ring_queue(r, true, fd, (void *)(uintptr_t)buf, len, off, tag,
	    false);
}

int
ring_read_nocache(struct ring *r, int fd, void *buf, size_t len,
    uint64_t off, uint64_t tag)
{
	return ring_queue(r, false, fd, buf, len, off, tag, true);
}

int
ring_write_nocache(struct ring *r, int fd, const void *buf, size_t len,
    uint64_t off, uint64_t tag)
{
	return ring_queue(r, true, fd, (void *)(uintptr_t)buf, len, off, tag,
	    true);
}

int
ring_submit(struct ring *r)
{
	return io_uring_submit(&r->r_uring);
}

/*
 * ring_efd_drain / ring_efd_kick: reset the eventfd / make it readable.
 * The eventfd is non-blocking: a drain with nothing to read fails with
 * EAGAIN, which we expect on every reap, so errno is put back as found.
 */
static void
ring_efd_drain(struct ring *r)
{
	uint64_t v;
	int saved = errno;

	(void)!sys_read(r->r_efd, &v, sizeof(v));
	errno = saved;
}

static void
ring_efd_kick(struct ring *r)
{
	uint64_t one = 1;
	int saved = errno;

	(void)!sys_write(r->r_efd, &one, sizeof(one));
	errno = saved;
}

/*
 * ring_heard_cqe: the completion of ring_listen's read or wake poll.  A
 * cancelled one (ring_unlisten) leaves nothing to hear; a read of 0
 * bytes (which a userfaultfd never returns) reads as an I/O error.
 */
static void
ring_heard_cqe(struct ring *r, uint64_t tag, int res)
{
	if (tag == RING_TAG_WAKE) {
		r->r_wake = res == -ECANCELED ? RING_WAKE_NONE :
		    RING_WAKE_FIRED;
		return;
	}
	r->r_listen = false;
	if (res != -ECANCELED)
		r->r_heard = res == 0 ? -EIO : res;
}

/*
 * ring_take: move up to n CQEs into out[], dropping internal ones and
 * keeping ring_listen's results (*event set when one came).
 * => the number of the caller's completions taken.
 */
static int
ring_take(struct ring *r, struct ring_cqe *out, int n, bool *event)
{
	struct io_uring_cqe *cqe;
	uint64_t tag;
	int got = 0, res;

	while (got < n && io_uring_peek_cqe(&r->r_uring, &cqe) == 0) {
		tag = io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&r->r_uring, cqe);
		if (tag == RING_TAG_INTERNAL)
			continue;	/* a failed cache drop or cancel */
		if (tag == RING_TAG_LISTEN || tag == RING_TAG_WAKE) {
			ring_heard_cqe(r, tag, res);
			*event = true;
			continue;
		}
		VM_ASSERT(r->r_inflight > 0);
		r->r_inflight--;
		out[got].rc_tag = tag;
		out[got].rc_res = res;
		got++;
	}
	return got;
}

/*
 * ring_reap: see uring.h.  With wait, returns 0 only when nothing of the
 * caller's is in flight (there is nothing to wait for).
 * => the number reaped, or the error of the submission or of the wait
 *    (-EINTR: a signal; call again).
 */
void
ring_set_spin(struct ring *r, unsigned spin_us)
{
	r->r_spin_ns = (uint64_t)spin_us * 1000;
}

/*
 * ring_spin: poll the completion queue for up to r_spin_ns before the
 * caller sleeps: a short read completes in tens of microseconds, and on
 * a virtual machine waking a sleeping thread costs about as much.
 */
static void
ring_spin(struct ring *r)
{
	struct timespec ts;
	uint64_t t0 = 0, now;

	while (r->r_spin_ns != 0 && io_uring_cq_ready(&r->r_uring) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		if (t0 == 0)
			t0 = now;
		else if (now - t0 >= r->r_spin_ns)
			return;
		__builtin_ia32_pause();
	}
}

/* ring_armed: ring_listen's read and wake poll, armed */
static unsigned
ring_armed(const struct ring *r)
{
	return (r->r_listen ? 1 : 0) + (r->r_wake == RING_WAKE_ARMED ? 1 : 0);
}

/* ring_heard_pending: a listen result, or a wake no wait returned for */
static bool
ring_heard_pending(const struct ring *r)
{
	return r->r_heard != 0 || r->r_wake == RING_WAKE_FIRED;
}

/*
 * ring_sleep: hand over what is queued and wait for a CQE: one system
 * call (submit and wait together) unless the owner spins first.
 * => 0 or -errno.
 */
static int
ring_sleep(struct ring *r)
{
	struct io_uring_cqe *cqe;
	int error;

	if (io_uring_sq_ready(&r->r_uring) > 0) {
		error = r->r_spin_ns == 0 ?
		    io_uring_submit_and_wait(&r->r_uring, 1) :
		    io_uring_submit(&r->r_uring);
		if (error < 0)
			return error;
		if (r->r_spin_ns == 0)
			return 0;
	}
	ring_spin(r);
	if (io_uring_cq_ready(&r->r_uring) == 0 &&
	    (error = io_uring_wait_cqe(&r->r_uring, &cqe)) < 0)
		return error;
	return 0;
}

int
ring_reap(struct ring *r, struct ring_cqe *out, int n, bool wait)
{
	bool event = false;
	int got, error;

	VM_ASSERT(n >= 0);
	for (;;) {
		if (wait && n > 0 && r->r_inflight + ring_armed(r) > 0 &&
		    !ring_heard_pending(r) &&
		    io_uring_cq_ready(&r->r_uring) == 0 &&
		    (error = ring_sleep(r)) < 0)
			return error;
		/* drain first: see "a word on the eventfd" */
		if (r->r_polled)
			ring_efd_drain(r);
		got = ring_take(r, out, n, &event);
		if (r->r_polled && io_uring_cq_ready(&r->r_uring) > 0)
			ring_efd_kick(r);
		/* only internal CQEs came: wait for the caller's */
		if (!wait || got > 0 || event || n == 0 ||
		    r->r_inflight + ring_armed(r) == 0 ||
		    ring_heard_pending(r)) {
			/* the wake ends one wait, not every later one */
			if (wait && r->r_wake == RING_WAKE_FIRED)
				r->r_wake = RING_WAKE_SPENT;
			return got;
		}
	}
}

int
ring_listen(struct ring *r, int fd, void *buf, size_t len, int wakefd)
{
	struct io_uring_sqe *sqe;
	int error;

	if (r->r_listen || r->r_heard != 0)
		return 0;	/* armed, or its result not yet taken */
	if ((error = ring_sqes(r, 2)) != 0)
		return error;
	sqe = io_uring_get_sqe(&r->r_uring);
	io_uring_prep_read(sqe, fd, buf, (unsigned)MIN(len, RING_MAXLEN), 0);
	io_uring_sqe_set_data64(sqe, RING_TAG_LISTEN);
	r->r_listen = true;
	if (wakefd >= 0 && r->r_wake == RING_WAKE_NONE) {
		sqe = io_uring_get_sqe(&r->r_uring);
		io_uring_prep_poll_add(sqe, wakefd, POLLIN);
		io_uring_sqe_set_data64(sqe, RING_TAG_WAKE);
		r->r_wake = RING_WAKE_ARMED;
	}
	return 0;
}

ssize_t
ring_heard(struct ring *r)
{
	ssize_t heard = r->r_heard;

	r->r_heard = 0;
	return heard;
}

bool
ring_woken(struct ring *r)
{
	return r->r_wake == RING_WAKE_FIRED || r->r_wake == RING_WAKE_SPENT;
}

bool
ring_listening(struct ring *r)
{
	return ring_armed(r) > 0;
}

int
ring_unlisten(struct ring *r)
{
	struct io_uring_sqe *sqe;
	int error;

	if (ring_armed(r) == 0)
		return 0;
	if ((error = ring_sqes(r, 2)) != 0)
		return error;
	if (r->r_listen) {
		sqe = io_uring_get_sqe(&r->r_uring);
		io_uring_prep_cancel64(sqe, RING_TAG_LISTEN, 0);
		ring_internal(r, sqe, 0);
	}
	if (r->r_wake == RING_WAKE_ARMED) {
		sqe = io_uring_get_sqe(&r->r_uring);
		io_uring_prep_cancel64(sqe, RING_TAG_WAKE, 0);
		ring_internal(r, sqe, 0);
	}
	error = io_uring_submit(&r->r_uring);
	return error < 0 ? error : 0;
}

unsigned
ring_inflight(struct ring *r)
{
	return r->r_inflight;
}
