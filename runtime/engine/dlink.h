/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dlink.h: a process's link to upvmd (UPVM_DAEMON=SOCKET, upvm run
 * --daemon).
 *
 * upvmd holds one budget for every process attached to it and moves it
 * between them; each process still serves its own faults and pages out
 * through its own swap file, as without a daemon (tools/upvmd/README in
 * the top README says why: the faults stay in the process, so no fault
 * waits for another process, and the daemon's death costs nothing but
 * the rebalancing).  The link is one SOCK_SEQPACKET connection
 * (dproto.h): HELLO at upvm_init gives the first budget (upvm_init fails
 * when no upvmd answers); a thread of its own then sends a REPORT every
 * DPROTO_REPORT_MS and applies each GRANT (vmspace_set_budget).  When
 * upvmd goes away the process keeps its last budget, says so once in the
 * log, and tries to attach again every second.  A fork child attaches by
 * itself as a process of its own (its thread starts with the child's
 * runtime); exec attaches again through the preload.
 *
 * Locks protecting struct members in this file:
 *	I  immutable after dlink_attach   t  the link's thread, or the
 *	caller of dlink_start/stop while it does not run
 */
#ifndef UPVM_DLINK_H
#define UPVM_DLINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "upvm.h"

struct vmspace;

struct dlink {
	char		dl_path[UPVM_PATH_MAX]; /* [I] "": not attached */
	uint64_t	dl_limit;	/* [I] pages, the process's cap; 0: none */
	uint64_t	dl_most;	/* [I] pages: the most upvmd may grant
					   (its budget, or dl_limit) */
	int		dl_fd;		/* [t] the connection, -1: none */
	pid_t		dl_pid;		/* [t] the process that opened it */
	int		dl_wake;	/* [I] eventfd: the thread stops */
	bool		dl_running;	/* [t] the thread exists */
	bool		dl_said_gone;	/* [t] the log said upvmd went away */
	uint64_t	dl_retry_ns;	/* [t] next try to attach again */
	uint64_t	dl_hist[UPVM_LATENCY_BUCKETS]; /* [t] at last report */
	pthread_t	dl_thread;	/* [t] */
};

/*
 * dlink_attach: connect to upvmd at `path`, say HELLO (cfg->budget, if
 * any, is the process's own cap) and wait up to a second for its
 * answer: cfg->budget becomes the first grant, and upvmd's swap and
 * placement settings replace the process's (checked again here).
 * => 0, or -errno, logged in one line that says what to do.  Nothing
 * started; dlink_detach() undoes it.
 */
int dlink_attach(struct dlink *, const char *path, struct upvm_config *cfg);

/*
 * dlink_start: start the link's thread (nothing if not attached).  In a
 * fork child, first attach as a process of its own (the connection is
 * the parent's), and take the budget that grants.  => the vmspace's
 * fault threads and daemon running.  dlink_stop: stop the thread (the
 * connection stays): before those stop.
 */
void dlink_start(struct vmspace *);
void dlink_stop(struct vmspace *);

/*
 * dlink_bye: stop the thread and say BYE (a preloaded program's exit:
 * the connection closes with the process; the budget stays as it is).  dlink_detach: stop, say BYE,
 * close.  Idempotent.
 */
void dlink_bye(struct vmspace *);
void dlink_detach(struct vmspace *);

#endif /* UPVM_DLINK_H */
