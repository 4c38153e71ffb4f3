/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ringq.c: pager queues over io_uring (see ringq.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "kmem.h"
#include "log.h"
#include "ringq.h"
#include "uring.h"

struct ringq {
	struct pager_queue rq_q;	/* first: the pager's view */
	struct ring	*rq_ring;	/* [I] */
};

#define RINGQ(q)	container_of(q, struct ringq, rq_q)

int
ringq_create(struct pager *pgr, unsigned depth, struct pager_queue **out)
{
	struct ringq *rq;
	unsigned rdepth = 1;
	int error;

	while (rdepth < depth)
		rdepth <<= 1;
	if ((rq = kmem_alloc(sizeof(*rq))) == NULL)
		return -ENOMEM;
	if ((error = ring_create(rdepth, &rq->rq_ring)) != 0) {
		kmem_free(rq, sizeof(*rq));
		return error;
	}
	*out = &rq->rq_q;
	return 0;
}

void
ringq_destroy(struct pager_queue *q)
{
	struct ringq *rq = RINGQ(q);

	ring_destroy(rq->rq_ring);
	kmem_free(rq, sizeof(*rq));
}

int
ringq_fd(struct pager_queue *q)
{
	return ring_fd(RINGQ(q)->rq_ring);
}

struct ring *
ringq_ring(struct pager_queue *q)
{
	return RINGQ(q)->rq_ring;
}

uint64_t
ringq_tag(struct pager_req *req, bool write)
{
	return (uint64_t)(uintptr_t)req | (write ? 1 : 0);
}

int
ringq_submit(struct pager_queue *q, const char *who)
{
	int error;

	if (q->pq_plugged)
		return -EINPROGRESS;
	if ((error = ring_submit(RINGQ(q)->rq_ring)) < 0)
		upvm_log(LOG_WARN, "%s: io_uring submit failed: %s; retried "
		    "at the next completion", who, strerror(-error));
	return -EINPROGRESS;
}

void
ringq_flush(struct pager_queue *q)
{
	(void)ringq_submit(q, "pager queue");
}

/*
 * ringq_complete: reap up to max completions; each goes to its request's
 * pager, which finishes the request (pager_finish) or queues the rest.
 */
int
ringq_complete(struct pager_queue *q, int max, bool wait)
{
	struct ringq *rq = RINGQ(q);
	struct ring_cqe cqe[32];
	struct pager_req *req;
	int n, done = 0;
	bool write;

	n = ring_reap(rq->rq_ring, cqe, MIN(max, (int)nitems(cqe)), wait);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		req = (struct pager_req *)(uintptr_t)(cqe[i].rc_tag & ~1ULL);
		write = (cqe[i].rc_tag & 1) != 0;
		if (!req->pr_pager->pgr_ops->pgo_qresume(req->pr_pager, q, req,
		    write, cqe[i].rc_res))
			continue;
		pager_finish(q, req);
		done++;
	}
	/* the rests queued (a plugged queue's go at the unplug) */
	if (!q->pq_plugged && ring_inflight(rq->rq_ring) > 0)
		(void)ring_submit(rq->rq_ring);
	return done;
}

int
ringq_listen(struct pager_queue *q, int fd, void *buf, size_t len,
    int wakefd)
{
	return ring_listen(RINGQ(q)->rq_ring, fd, buf, len, wakefd);
}

ssize_t
ringq_heard(struct pager_queue *q)
{
	return ring_heard(RINGQ(q)->rq_ring);
}

int
ringq_unlisten(struct pager_queue *q)
{
	struct ring *r = RINGQ(q)->rq_ring;
	int error, n;

	if ((error = ring_unlisten(r)) != 0)
		return error;
	while (ring_listening(r))
		if ((n = ringq_complete(q, INT_MAX, true)) < 0 && n != -EINTR)
			return n;
	return 0;
}

bool
ringq_try_direct(int fd)
{
	struct statx stx;
	int fl;

	/* 6.1+: the alignment O_DIRECT needs; a page must satisfy it */
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) != 0 &&
	    (stx.stx_dio_offset_align == 0 ||
	    PAGE_SIZE % stx.stx_dio_offset_align != 0 ||
	    PAGE_SIZE % stx.stx_dio_mem_align != 0))
		return false;
	if ((fl = fcntl(fd, F_GETFL)) < 0)
		return false;
	/* EINVAL: the file system refuses O_DIRECT */
	return fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
}

void
ringq_dropcache(int fd, uint64_t off, size_t len)
{
	int saved = errno;

	/* best effort: the data is safe either way */
	(void)sync_file_range(fd, (off_t)off, (off_t)len,
	    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
	    SYNC_FILE_RANGE_WAIT_AFTER);
	(void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
	errno = saved;
}

/* ---------------------------------------------------------------- */
/* pager_ring: queues with no pager of their own */

static int
ring_pgo_get(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return -EOPNOTSUPP;
}

static const struct pager_ops ring_pager_ops = {
	.name = "ring",
	.pgo_get = ring_pgo_get,
	.pgo_qcreate = ringq_create,
	.pgo_qfd = ringq_fd,
	.pgo_qcomplete = ringq_complete,
	.pgo_qflush = ringq_flush,
	.pgo_qdestroy = ringq_destroy,
	.pgo_qlisten = ringq_listen,
	.pgo_qheard = ringq_heard,
	.pgo_qunlisten = ringq_unlisten,
};

static struct pager ring_pager;
static pthread_once_t ring_pager_once = PTHREAD_ONCE_INIT;

static void
ring_pager_init(void)
{
	pager_init(&ring_pager, &ring_pager_ops, 0);
}

struct pager *
pager_ring(void)
{
	(void)pthread_once(&ring_pager_once, ring_pager_init);
	return &ring_pager;
}
