/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pager.c: the pager_*() wrappers and the registry of backends.
 *
 * The wrappers check requests before any backend sees them (page aligned,
 * inside the pager), supply defaults for the optional ops, and count.
 */
#include <errno.h>
#include <string.h>

#include "kmem.h"
#include "log.h"
#include "pager.h"
#include "swap.h"
#include "vnode.h"

static const struct pager_ops *const pager_registry[] = {
	&zero_pager_ops,
	&swap_pager_ops,
	&vnode_pager_ops,
};

void
pager_init(struct pager *pgr, const struct pager_ops *ops, voff_t size)
{
	pgr->pgr_ops = ops;
	vm_mutex_init(&pgr->pgr_lock);
	atomic_init(&pgr->pgr_ref, 1);
	pgr->pgr_size = size;
}

void
pager_ref(struct pager *pgr)
{
	atomic_fetch_add_explicit(&pgr->pgr_ref, 1, memory_order_relaxed);
}

void
pager_unref(struct pager *pgr)
{
	if (atomic_fetch_sub_explicit(&pgr->pgr_ref, 1,
	    memory_order_acq_rel) != 1)
		return;
	if (pgr->pgr_ops->pgo_destroy != NULL)
		pgr->pgr_ops->pgo_destroy(pgr);
}

int
pager_queue_create(struct pager *pgr, unsigned depth, struct pager_queue **out)
{
	struct pager_queue *q;
	int error;

	if (depth == 0 || depth > 4096)
		return -EINVAL;
	if (pgr->pgr_ops->pgo_qcreate != NULL) {
		if ((error = pgr->pgr_ops->pgo_qcreate(pgr, depth, &q)) != 0)
			return error;
	} else if ((q = kmem_alloc(sizeof(*q))) == NULL) {
		return -ENOMEM;
	}
	q->pq_pager = pgr;
	q->pq_depth = depth;
	q->pq_inflight = 0;
	q->pq_plugged = false;
	q->pq_listening = false;
	*out = q;
	return 0;
}

void
pager_queue_plug(struct pager_queue *q, bool on)
{
	const struct pager_ops *ops = q->pq_pager->pgr_ops;

	if (q->pq_plugged == on)
		return;
	q->pq_plugged = on;
	if (!on && ops->pgo_qflush != NULL)
		ops->pgo_qflush(q);
}

void
pager_queue_destroy(struct pager_queue *q)
{
	if (q == NULL)
		return;
	VM_ASSERT(q->pq_inflight == 0);
	if (q->pq_pager->pgr_ops->pgo_qdestroy != NULL)
		q->pq_pager->pgr_ops->pgo_qdestroy(q);
	else
		kmem_free(q, sizeof(*q));
}

bool
pager_queue_serves(const struct pager_queue *q, const struct pager *pgr)
{
	return q->pq_pager == pgr || (pgr->pgr_ops->pgo_qcomplete != NULL &&
	    pgr->pgr_ops->pgo_qcomplete ==
	    q->pq_pager->pgr_ops->pgo_qcomplete);
}

int
pager_queue_fd(struct pager_queue *q)
{
	if (q->pq_pager->pgr_ops->pgo_qfd == NULL)
		return -1;
	return q->pq_pager->pgr_ops->pgo_qfd(q);
}

int
pager_queue_listen(struct pager_queue *q, int fd, void *buf, size_t len,
    int wakefd)
{
	const struct pager_ops *ops = q->pq_pager->pgr_ops;
	int error;

	if (ops->pgo_qlisten == NULL)
		return -EOPNOTSUPP;
	if ((error = ops->pgo_qlisten(q, fd, buf, len, wakefd)) == 0)
		q->pq_listening = true;
	return error;
}

int
pager_queue_wait(struct pager_queue *q, int max)
{
	const struct pager_ops *ops = q->pq_pager->pgr_ops;

	VM_ASSERT(ops->pgo_qcomplete != NULL);
	q->pq_plugged = false;	/* the wait hands the queued over */
	return ops->pgo_qcomplete(q, max, true);
}

ssize_t
pager_queue_heard(struct pager_queue *q)
{
	if (q->pq_pager->pgr_ops->pgo_qheard == NULL)
		return 0;
	return q->pq_pager->pgr_ops->pgo_qheard(q);
}

int
pager_queue_unlisten(struct pager_queue *q)
{
	int error = 0;

	if (q->pq_listening)
		error = q->pq_pager->pgr_ops->pgo_qunlisten(q);
	q->pq_listening = false;
	return error;
}

/* pager_req_ok: the request is page aligned and inside the pager */
static bool
pager_req_ok(struct pager *pgr, const struct pager_req *req)
{
	voff_t len = ptoa((voff_t)req->pr_npages);

	if (req->pr_npages <= 0 || (req->pr_off & PAGE_MASK) != 0 ||
	    req->pr_buf == NULL)
		return false;
	return pgr->pgr_size == 0 || (req->pr_off <= pgr->pgr_size &&
	    len <= pgr->pgr_size - req->pr_off);
}

/*
 * pager_start: the common part of get and put: check, count what goes
 * in flight.
 */
static int
pager_start(struct pager *pgr, struct pager_queue *q, struct pager_req *req,
    int (*op)(struct pager *, struct pager_queue *, struct pager_req *))
{
	int error;

	if (!pager_req_ok(pgr, req))
		return -EINVAL;
	VM_ASSERT(q == NULL || pager_queue_serves(q, pgr));
	if (q != NULL && q->pq_inflight >= q->pq_depth)
		return -EBUSY;
	req->pr_error = 0;
	req->pr_xfer = 0;
	req->pr_lost = 0;
	req->pr_priv = NULL;
	req->pr_pager = pgr;
	error = op(pgr, q, req);
	if (error == -EINPROGRESS) {
		VM_ASSERT(q != NULL);
		q->pq_inflight++;
	}
	return error;
}

int
pager_get(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return pager_start(pgr, q, req, pgr->pgr_ops->pgo_get);
}

int
pager_put(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	if (pgr->pgr_ops->pgo_put == NULL)
		return -EOPNOTSUPP;
	return pager_start(pgr, q, req, pgr->pgr_ops->pgo_put);
}

int
pager_complete(struct pager_queue *q, int max, bool wait)
{
	const struct pager_ops *ops = q->pq_pager->pgr_ops;

	if (ops->pgo_qcomplete == NULL ||
	    (q->pq_inflight == 0 && !q->pq_listening))
		return 0;
	return ops->pgo_qcomplete(q, max, wait);
}

void
pager_finish(struct pager_queue *q, struct pager_req *req)
{
	VM_ASSERT(q->pq_inflight > 0);
	q->pq_inflight--;
	req->pr_done(req);
}

/* pager_sync_done: pr_done of a synchronous wait: pr_arg is the flag */
static void
pager_sync_done(struct pager_req *req)
{
	*(bool *)req->pr_arg = true;
}

/*
 * pager_sync: start the transfer, then complete requests of q until it
 * is done.  pr_done and pr_arg are the wrapper's.
 */
static int
pager_sync(struct pager *pgr, struct pager_queue *q, struct pager_req *req,
    bool put)
{
	bool done = false;
	int error;

	req->pr_done = pager_sync_done;
	req->pr_arg = &done;
	error = put ? pager_put(pgr, q, req) : pager_get(pgr, q, req);
	while (error == -EBUSY && pager_complete(q, 1, true) >= 0)
		error = put ? pager_put(pgr, q, req) : pager_get(pgr, q, req);
	while (error == -EINPROGRESS && !done)
		if ((error = pager_complete(q, 1, true)) >= 0 ||
		    error == -EINTR)
			error = -EINPROGRESS;
	req->pr_arg = NULL;	/* `done` goes out of scope */
	/* a broken ring loses the I/O: its error, else the request's */
	return done ? req->pr_error : error;
}

int
pager_get_sync(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return pager_sync(pgr, q, req, false);
}

int
pager_put_sync(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return pager_sync(pgr, q, req, true);
}

bool
pager_fail_next(atomic_int *countdown)
{
	int n = atomic_load_explicit(countdown, memory_order_relaxed);

	while (n > 0 && !atomic_compare_exchange_weak(countdown, &n, n - 1))
		;
	return n == 1;
}

voff_t
pager_size(struct pager *pgr, bool refresh)
{
	if (pgr->pgr_ops->pgo_size == NULL)
		return VOFF_MAX;
	return pgr->pgr_ops->pgo_size(pgr, refresh);
}

void
pager_cluster(struct pager *pgr, voff_t off, voff_t *lop, voff_t *hip)
{
	VM_ASSERT((off & PAGE_MASK) == 0);
	if (pgr->pgr_ops->pgo_cluster != NULL) {
		pgr->pgr_ops->pgo_cluster(pgr, off, lop, hip);
		VM_ASSERT(*lop <= off && off < *hip);
		return;
	}
	/* default: no clustering beyond the page itself */
	*lop = off;
	*hip = off + PAGE_SIZE;
}

int
pager_discard(struct pager *pgr, voff_t start, voff_t end)
{
	if (pgr->pgr_ops->pgo_discard == NULL)
		return -EOPNOTSUPP;
	if (start > end || ((start | end) & PAGE_MASK) != 0 ||
	    (pgr->pgr_size != 0 && end > pgr->pgr_size))
		return -EINVAL;
	return pgr->pgr_ops->pgo_discard(pgr, start, end);
}

void
pager_remember(struct pager *pgr, voff_t off, const void *buf, int n)
{
	if (pgr->pgr_ops->pgo_remember != NULL)
		pgr->pgr_ops->pgo_remember(pgr, off, buf, n);
}

bool
pager_unchanged(struct pager *pgr, voff_t off, const void *buf)
{
	return pgr->pgr_ops->pgo_unchanged != NULL &&
	    pgr->pgr_ops->pgo_unchanged(pgr, off, buf);
}

bool
pager_known(struct pager *pgr, voff_t off)
{
	return pgr->pgr_ops->pgo_known == NULL ||
	    pgr->pgr_ops->pgo_known(pgr, off);
}

const struct pager_ops *
pager_lookup(const char *name)
{
	for (size_t i = 0; i < nitems(pager_registry); i++)
		if (strcmp(pager_registry[i]->name, name) == 0)
			return pager_registry[i];
	return NULL;
}
