/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ringq.h: pager queues over io_uring, shared by the pagers that do their
 * I/O through uring.h (swap, vnode).  Inside pager/ only.
 *
 * A ring queue is one thread's ring (uring.h).  Any pager whose ops use
 * ringq_complete as pgo_qcomplete may put requests on it (pager.h,
 * pager_queue_serves), so a fault thread waits for its swap reads and its
 * file reads on one eventfd.  A request in flight is tagged with its own
 * address and the direction (ringq_tag); each completion goes to the
 * request's pager (pr_pager) through pgo_qresume, which finishes it or
 * queues the rest of a short transfer, so that the caller sees one
 * completion per request.
 *
 * Locks: none; a queue belongs to its owner thread (pager.h).
 */
#ifndef UPVM_RINGQ_H
#define UPVM_RINGQ_H

#include "pager.h"

struct ring;

/* pgo_qcreate / pgo_qfd / pgo_qcomplete / pgo_qdestroy of ring pagers */
int ringq_create(struct pager *, unsigned depth, struct pager_queue **out);
int ringq_fd(struct pager_queue *);
int ringq_complete(struct pager_queue *, int max, bool wait);
void ringq_destroy(struct pager_queue *);

/* the queue's ring, for the backend to queue I/O on */
struct ring *ringq_ring(struct pager_queue *);

/* ringq_tag: the ring tag of req's transfer in one direction */
uint64_t ringq_tag(struct pager_req *, bool write);

/*
 * ringq_submit: hand the queued I/O to the kernel, unless the queue is
 * plugged (pager_queue_plug: ringq_flush hands it over then, and
 * ring_reap before it waits); a failed submit is logged (as `who`) and
 * retried at the next completion.
 * => -EINPROGRESS, the pgo_get / pgo_put result of a queued request.
 */
int ringq_submit(struct pager_queue *, const char *who);

/* ringq_flush: pgo_qflush of ring pagers */
void ringq_flush(struct pager_queue *);

/* pgo_qlisten / pgo_qheard / pgo_qunlisten of ring pagers */
int ringq_listen(struct pager_queue *, int fd, void *buf, size_t len,
    int wakefd);
ssize_t ringq_heard(struct pager_queue *);
int ringq_unlisten(struct pager_queue *);

/*
 * ringq_try_direct: switch fd to O_DIRECT if its file system can do page
 * I/O that way.  => whether it did (false: buffered, use the _nocache
 * ring operations and ringq_dropcache).
 */
bool ringq_try_direct(int fd);

/* ringq_dropcache: push [off, off + len) to disk and out of the page
   cache (best effort; errno kept) */
void ringq_dropcache(int fd, uint64_t off, size_t len);

#endif /* UPVM_RINGQ_H */
