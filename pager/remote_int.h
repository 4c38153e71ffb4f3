/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * remote_int.h: the remote store's insides, shared by remote.c (servers,
 * workers, the API) and remote_io.c (serving a request: windows of
 * groups over the servers).  Inside pager/ only.
 *
 * Locks protecting struct members (see remote.h):
 *	I  immutable after remote_create   l  rs_lock   a  atomic
 *	w  the worker that owns it
 */
#ifndef UPVM_REMOTE_INT_H
#define UPVM_REMOTE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mcache.h"
#include "remote.h"
#include "seal.h"

#define REMOTE_WORKERS		3
#define REMOTE_JOBS		1024	/* requests queued or in service */
#define REMOTE_VLEN		(PAGE_SIZE + SEAL_TAG)
#define REMOTE_BATCH		REMOTE_GROUP	/* pages per server round */
#define REMOTE_WINDOW		8	/* groups of a request in flight */
#define REMOTE_WPAGES		(REMOTE_WINDOW * REMOTE_GROUP)
#define REMOTE_BUFLEN		((size_t)REMOTE_WPAGES * REMOTE_VLEN)
#define REMOTE_TIMEOUT_MS	1000
#define REMOTE_BACKOFF_MS	1000
#define REMOTE_BACKOFF_MAX_MS	16000
#define REMOTE_STATS_MS		1000	/* eviction check interval */
#define REMOTE_DELMIN		4096	/* room for pending deletes, first */
#define REMOTE_DELBATCH		256	/* deletes sent at once */
#define REMOTE_INLINE_PAGES	16	/* reads this small: inline */

/* a server, as every worker sees it */
struct rserver {
	char		 sv_host[64];	/* [I] */
	char		 sv_port[8];	/* [I] */
	char		 sv_name[80];	/* [I] host:port */
	uint64_t	 sv_seed;	/* [I] rendezvous hash seed */
	_Atomic int64_t	 sv_down_until;	/* [a] ms: skipped before then */
	atomic_int	 sv_backoff;	/* [a] ms of the next back-off */
	atomic_bool	 sv_down;	/* [a] logged down */
	atomic_bool	 sv_full;	/* [a] evicting: no stores to it */
	_Atomic uint64_t sv_evictions;	/* [a] the count last seen */
	atomic_bool	 sv_evseen;	/* [a] sv_evictions is a baseline */
};

/*
 * A request large enough is cut into parts, one job each, so that the
 * workers read, open and copy its groups in parallel.  The part that
 * finishes last (rj_pending of the first part, the parent) settles the
 * request: its result, the completion posted or the waiter woken, the
 * parts freed.
 */
struct rjob {
	struct rjob	*rj_next;	/* [l] queue or free list */
	struct pager_req *rj_req;	/* [w] */
	const uint64_t	*rj_gen;	/* [w] */
	bool		 rj_write;	/* [w] */
	int		 rj_ringfd;	/* [w] post the completion there, or
					   -1: a waiter (rj_done) */
	int		 rj_first;	/* [w] the part: its first page */
	int		 rj_n;		/* [w] and pages */
	int		 rj_error;	/* [w] the part's outcome */
	int		 rj_good;	/* [w] */
	struct rjob	*rj_parent;	/* [I] the first part (itself) */
	atomic_int	 rj_pending;	/* [a] parent's: parts not done */
	int		 rj_nparts;	/* [w] parent's */
	struct rjob	*rj_parts[REMOTE_WORKERS];	/* [w] parent's */
	int		 rj_res;	/* [l] a waiter's result */
	bool		 rj_done;	/* [l] */
};

struct rworker {
	struct remote	*rw_rs;		/* [I] */
	pthread_t	 rw_thread;	/* [I] */
	struct ring	*rw_ring;	/* [w] ring_post's */
	struct mc_conn	 rw_conn[REMOTE_MAXSRV];	/* [w] */
	char		*rw_buf;	/* [w] a window's sealed pages, each
					   at its index in the window */
	/* [w] per value of a window (at most one per page): key, where
	   its pages are, the window's pages it holds, result */
	char		 rw_keys[REMOTE_WPAGES][MC_KEY_MAX];
	const char	*rw_kp[REMOTE_WPAGES];
	struct mc_val	 rw_val[REMOTE_WPAGES];
	int		 rw_vpage[REMOTE_WPAGES];
	int		 rw_vn[REMOTE_WPAGES];
	int		 rw_vres[REMOTE_WPAGES];
	/* [w] per page of a window: copies stored (a write's), or the
	   reason it is not read yet (a read's); read and opened */
	int		 rw_copies[REMOTE_WPAGES];
	bool		 rw_ok[REMOTE_WPAGES];
	bool		 rw_started;	/* [I] */
};

struct remote {
	struct rserver	 rs_srv[REMOTE_MAXSRV];	/* [I] */
	int		 rs_nsrv;	/* [I] */
	int		 rs_replicas;	/* [I] */
	int		 rs_timeout_ms;	/* [I] */
	const struct seal *rs_seal;	/* [I] */
	char		 rs_keypfx[48];	/* [I] "u<id>:" */
	size_t		 rs_keylen;	/* [I] its length */
	char		 rs_desc[256];	/* [I] */
	pid_t		 rs_pid;	/* [l] the process the workers serve */
	pthread_mutex_t	 rs_lock;
	pthread_cond_t	 rs_work;	/* [l] a job queued, or rs_stop */
	pthread_cond_t	 rs_doneq;	/* [l] a waiter's job done */
	struct rjob	*rs_head;	/* [l] queued jobs */
	struct rjob	**rs_tail;	/* [l] */
	struct rjob	*rs_free;	/* [l] */
	bool		 rs_stop;	/* [l] */
	size_t		 rs_ndel;	/* [l] entries in rs_del */
	size_t		 rs_delcap;	/* [l] its room (entries) */
	struct rdel {
		uint64_t slot, gen;
	}		*rs_del;	/* [l] values to delete (kmem) */
	_Atomic int64_t	 rs_next_stats;	/* [a] ms of the next eviction check */
	uint64_t	 rs_serial;	/* [I] unique per remote_create */
	struct rjob	 rs_jobs[REMOTE_JOBS];
	struct rworker	 rs_workers[REMOTE_WORKERS];
	struct {
		_Atomic uint64_t puts, gets, failovers, misses, badseal, lost,
		    put_fail, server_down, evicting, deleted;
	} rs_st;
};

/*
 * A request is served a window of groups at a time: every group's first
 * round goes out to its servers before any reply is read, so the servers
 * work in parallel and the round trips overlap.  What the first round
 * did not settle (a server down, a page missing or refused) is retried
 * group by group down the ranking.
 */
struct rgroup {
	uint64_t	 g_slot;	/* first slot */
	int		 g_n;		/* pages */
	int		 g_off;		/* index of its first page in the
					   window */
	int		 g_voff;	/* and of its first value */
	int		 g_nv;		/* its values */
	char		*g_buf;		/* its pages' data (the request's) */
	int		 g_srv[REMOTE_MAXSRV];	/* first round: servers sent to */
	int		 g_nsrv;
	int		 g_rank;	/* a read's: the rank of g_srv[0] */
	bool		 g_replied;	/* a read's: g_srv[0] answered */
};

/* remote.c */
void remote_rank(const struct remote *, uint64_t slot, int *order);
struct mc_conn *remote_conn(struct rworker *, int i);
int remote_call(struct rworker *, int i, bool write, const char *const *keys,
    const struct mc_val *vals, int n, int *res);
void remote_mark_down(struct remote *, struct rserver *, int error);
void remote_mark_up(struct remote *, struct rserver *);
void remote_check_evictions(struct rworker *);

/* remote_io.c */
void remote_key(const struct remote *, uint64_t slot, uint64_t gen,
    char *key);
int remote_do_range(struct rworker *, struct pager_req *, bool write,
    const uint64_t *gen, int first, int n, int *goodp);
int remote_result(struct pager_req *, bool write, int error, int first,
    int good, int n);
int remote_do(struct rworker *, struct pager_req *, bool write,
    const uint64_t *gen);
int remote_job_groups(const struct rjob *);
void remote_serve_batch(struct rworker *, struct rjob **jobs, int k);

#endif /* UPVM_REMOTE_INT_H */
