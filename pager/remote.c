/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * remote.c: swap slots on memcached servers (see remote.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kmem.h"
#include "lock.h"
#include "log.h"
#include "mcache.h"
#include "remote_int.h"
#include "ringq.h"
#include "seal.h"
#include "stats.h"
#include "uring.h"

static _Atomic uint64_t remote_serials = 1;

static uint64_t
remote_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

bool
remote_is_url(const char *s)
{
	return s != NULL && strncmp(s, "memcached://", 12) == 0;
}

const char *
remote_describe(const struct remote *rs)
{
	return rs->rs_desc;
}

/* ---------------------------------------------------------------- */
/* configuration */

static int
remote_parse_opts(struct remote *rs, char *q, const char *url)
{
	char *tok, *save, *v, *end;
	long n;

	for (tok = strtok_r(q, "&", &save); tok != NULL;
	    tok = strtok_r(NULL, "&", &save)) {
		if ((v = strchr(tok, '=')) == NULL)
			goto bad;
		*v++ = '\0';
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || *v == '\0' || *end != '\0')
			goto bad;
		if (strcmp(tok, "replicas") == 0 && n >= 1 &&
		    n <= REMOTE_MAXSRV)
			rs->rs_replicas = (int)n;
		else if (strcmp(tok, "timeout_ms") == 0 && n >= 10 &&
		    n <= 600000)
			rs->rs_timeout_ms = (int)n;
		else
			goto bad;
	}
	return 0;
bad:
	upvm_log(LOG_ERR, "swap: bad option \"%s\" in %s; use replicas=N "
	    "(1..servers) and timeout_ms=T (10..600000)", tok, url);
	return -EINVAL;
}

static int
remote_parse(struct remote *rs, const char *url)
{
	char buf[1024], *hosts, *q, *tok, *save, *colon;
	struct rserver *sv;

	if (!remote_is_url(url) || strlen(url) >= sizeof(buf)) {
		upvm_log(LOG_ERR, "swap: \"%s\" is not a remote store; write "
		    "memcached://host:port[,host:port...][?replicas=N]", url);
		return -EINVAL;
	}
	(void)snprintf(buf, sizeof(buf), "%s", url + 12);
	hosts = buf;
	if ((q = strchr(buf, '?')) != NULL) {
		*q++ = '\0';
		if (remote_parse_opts(rs, q, url) != 0)
			return -EINVAL;
	}
	for (tok = strtok_r(hosts, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (rs->rs_nsrv == REMOTE_MAXSRV) {
			upvm_log(LOG_ERR, "swap: more than %d servers in %s",
			    REMOTE_MAXSRV, url);
			return -EINVAL;
		}
		if ((colon = strrchr(tok, ':')) == NULL || colon == tok ||
		    colon[1] == '\0' || strlen(colon + 1) >= 8 ||
		    (size_t)(colon - tok) >= sizeof(sv->sv_host) ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
			upvm_log(LOG_ERR, "swap: \"%s\" in %s is not host:port",
			    tok, url);
			return -EINVAL;
		}
		sv = &rs->rs_srv[rs->rs_nsrv++];
		*colon = '\0';
		(void)snprintf(sv->sv_host, sizeof(sv->sv_host), "%s", tok);
		(void)snprintf(sv->sv_port, sizeof(sv->sv_port), "%s",
		    colon + 1);
		(void)snprintf(sv->sv_name, sizeof(sv->sv_name), "%s:%s",
		    tok, colon + 1);
		sv->sv_seed = 0;
		for (const char *p = sv->sv_name; *p != '\0'; p++)
			sv->sv_seed = remote_mix(sv->sv_seed ^ (uint8_t)*p);
		atomic_init(&sv->sv_backoff, REMOTE_BACKOFF_MS);
	}
	if (rs->rs_nsrv == 0) {
		upvm_log(LOG_ERR, "swap: no server in %s", url);
		return -EINVAL;
	}
	if (rs->rs_replicas > rs->rs_nsrv) {
		upvm_log(LOG_ERR, "swap: replicas=%d but %s names %d "
		    "server(s); name more servers or ask fewer replicas",
		    rs->rs_replicas, url, rs->rs_nsrv);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* servers */

/* remote_rank: the servers of slot's group, best first */
void
remote_rank(const struct remote *rs, uint64_t slot, int *order)
{
	uint64_t g = remote_group(slot), score[REMOTE_MAXSRV], t;
	int n = rs->rs_nsrv, o;

	for (int i = 0; i < n; i++) {
		order[i] = i;
		score[i] = remote_mix(g ^ rs->rs_srv[i].sv_seed);
	}
	for (int i = 1; i < n; i++)	/* insertion sort, a handful */
		for (int j = i; j > 0 && score[j] > score[j - 1]; j--) {
			t = score[j], score[j] = score[j - 1], score[j - 1] = t;
			o = order[j], order[j] = order[j - 1], order[j - 1] = o;
		}
}

static bool
remote_usable(struct rserver *sv)
{
	return atomic_load(&sv->sv_down_until) <= stats_now_ms();
}

void
remote_mark_down(struct remote *rs, struct rserver *sv, int error)
{
	int b = atomic_load(&sv->sv_backoff);

	atomic_store(&sv->sv_down_until, stats_now_ms() + b);
	atomic_store(&sv->sv_backoff, MIN(2 * b, REMOTE_BACKOFF_MAX_MS));
	if (!atomic_exchange(&sv->sv_down, true)) {
		atomic_fetch_add(&rs->rs_st.server_down, 1);
		upvm_log(LOG_ERR, "swap: memcached server %s stopped answering "
		    "(%s); pages stored only there raise SIGBUS, the others "
		    "are read from their replicas; retried every %d s at most",
		    sv->sv_name, strerror(-error), REMOTE_BACKOFF_MAX_MS / 1000);
	}
}

/*
 * remote_mark_up: server sv answered a request (a connection is not an
 * answer: a hung server's kernel still accepts them, and taking one for
 * an answer would reset the back-off on every reconnect).
 */
void
remote_mark_up(struct remote *rs, struct rserver *sv)
{
	if (!atomic_load(&sv->sv_down) &&
	    atomic_load(&sv->sv_backoff) == REMOTE_BACKOFF_MS)
		return;		/* the common case: no shared store */
	atomic_store(&sv->sv_backoff, REMOTE_BACKOFF_MS);
	if (atomic_exchange(&sv->sv_down, false))
		upvm_log(LOG_WARN, "swap: memcached server %s answers again",
		    sv->sv_name);
}

/* remote_conn: worker w's open connection to server i, or NULL (down) */
struct mc_conn *
remote_conn(struct rworker *w, int i)
{
	struct remote *rs = w->rw_rs;
	struct mc_conn *c = &w->rw_conn[i];
	int error;

	if (c->mc_fd >= 0)
		return c;
	if (!remote_usable(&rs->rs_srv[i]))
		return NULL;
	if ((error = mc_open(c, rs->rs_timeout_ms)) != 0) {
		remote_mark_down(rs, &rs->rs_srv[i], error);
		return NULL;
	}
	return c;
}

/*
 * remote_call: one batch on server i, with one reconnect (a restarted
 * server closed the old connection).  => 0 (res[] valid) or -errno
 * (server marked down).
 */
int
remote_call(struct rworker *w, int i, bool write, const char *const *keys,
    const struct mc_val *vals, int n, int *res)
{
	struct remote *rs = w->rw_rs;
	struct mc_conn *c;
	int error = -EHOSTDOWN;

	for (int attempt = 0; attempt < 2; attempt++) {
		if ((c = remote_conn(w, i)) == NULL)
			return -EHOSTDOWN;
		error = write ? mc_set_many(c, keys, vals, n, res,
		    rs->rs_timeout_ms) : mc_get_many(c, keys, vals, n, res,
		    rs->rs_timeout_ms);
		if (error == 0) {
			remote_mark_up(rs, &rs->rs_srv[i]);
			return 0;
		}
		if (error == -ETIMEDOUT)
			break;		/* no second wait on a silent server */
	}
	remote_mark_down(rs, &rs->rs_srv[i], error);
	return error;
}

/*
 * remote_check_evictions: every REMOTE_STATS_MS, ask each server for its
 * evictions and memory: one that evicts (its count grew) is full, and
 * gets no more stores until it has an eighth of its memory free again
 * and has stopped evicting.
 */
void
remote_check_evictions(struct rworker *w)
{
	struct remote *rs = w->rw_rs;
	int64_t now = stats_now_ms(), next = atomic_load(&rs->rs_next_stats);
	uint64_t ev, bytes, limit, last;
	struct rserver *sv;
	struct mc_conn *c;

	if (now < next || !atomic_compare_exchange_strong(&rs->rs_next_stats,
	    &next, now + REMOTE_STATS_MS))
		return;
	for (int i = 0; i < rs->rs_nsrv; i++) {
		sv = &rs->rs_srv[i];
		/* a failure (a stale connection, closed) is for the
		   requests to judge: they reconnect once */
		if ((c = remote_conn(w, i)) == NULL ||
		    mc_stat(c, "evictions", &ev, rs->rs_timeout_ms) != 0 ||
		    mc_stat(c, "bytes", &bytes, rs->rs_timeout_ms) != 0 ||
		    mc_stat(c, "limit_maxbytes", &limit, rs->rs_timeout_ms) !=
		    0)
			continue;
		remote_mark_up(rs, sv);
		last = atomic_exchange(&sv->sv_evictions, ev);
		/* the first count is a baseline: evictions before us */
		if (!atomic_exchange(&sv->sv_evseen, true))
			continue;
		if (ev > last && !atomic_exchange(&sv->sv_full, true)) {
			atomic_fetch_add(&rs->rs_st.evicting, 1);
			upvm_log(LOG_ERR, "swap: memcached server %s is full "
			    "and evicts (%llu items so far): pages stored "
			    "there may be lost (SIGBUS unless replicated); no "
			    "more stores to it until it has room; give it "
			    "more memory (-m) or use replicas=2",
			    sv->sv_name, (unsigned long long)ev);
		} else if (ev == last && bytes < limit - limit / 8 &&
		    atomic_exchange(&sv->sv_full, false)) {
			upvm_log(LOG_WARN, "swap: memcached server %s has room "
			    "again; storing to it", sv->sv_name);
		}
	}
}

/* ---------------------------------------------------------------- */
/* workers */

/*
 * remote_delete: send the deletes taken from rs_del to every server that
 * answers ("noreply": nothing to wait for; a server that missed one
 * holds a value nobody reads, which its LRU evicts).
 */
static void
remote_delete(struct rworker *w, const struct rdel *d, int n)
{
	struct remote *rs = w->rw_rs;
	char keys[REMOTE_DELBATCH][MC_KEY_MAX];
	const char *kp[REMOTE_DELBATCH];
	struct mc_conn *c;

	for (int i = 0; i < n; i++) {
		remote_key(rs, d[i].slot, d[i].gen, keys[i]);
		kp[i] = keys[i];
	}
	for (int k = 0; k < rs->rs_nsrv; k++)
		if ((c = remote_conn(w, k)) != NULL &&
		    mc_delete_many(c, kp, n, rs->rs_timeout_ms) != 0)
			remote_mark_down(rs, &rs->rs_srv[k], -EIO);
	atomic_fetch_add(&rs->rs_st.deleted, (uint64_t)n);
}

/* remote_take_deletes: up to REMOTE_DELBATCH of rs_del.  => rs_lock held */
static int
remote_take_deletes(struct remote *rs, struct rdel *out)
{
	int n = (int)MIN(rs->rs_ndel, REMOTE_DELBATCH);

	rs->rs_ndel -= (size_t)n;
	memcpy(out, rs->rs_del + rs->rs_ndel, sizeof(*out) * (size_t)n);
	return n;
}

/* remote_del_shrink: a drained list gives its memory back (rs_lock) */
static void
remote_del_shrink(struct remote *rs)
{
	if (rs->rs_ndel == 0 && rs->rs_delcap > REMOTE_DELMIN) {
		kmem_free(rs->rs_del, rs->rs_delcap * sizeof(*rs->rs_del));
		rs->rs_del = NULL;
		rs->rs_delcap = 0;
	}
}

static bool
remote_deletes_due(const struct remote *rs)
{
	return rs->rs_ndel >= REMOTE_DELBATCH || (rs->rs_stop &&
	    rs->rs_ndel > 0);
}


/*
 * remote_settle: the last part of request p is done: its result goes to
 * the queue's ring (or its waiter), and the parts go back to the pool.
 */
static void
remote_settle(struct rworker *w, struct rjob *p)
{
	struct remote *rs = w->rw_rs;
	struct pager_req *req = p->rj_req;
	struct rjob *j;
	int res = 0, error;
	bool settled = false;

	for (int i = 0; i < p->rj_nparts && !settled; i++) {
		j = p->rj_parts[i];
		if (j->rj_error != 0 && (p->rj_write || j->rj_good < j->rj_n)) {
			res = remote_result(req, p->rj_write, j->rj_error,
			    j->rj_first, j->rj_good, j->rj_n);
			settled = true;
		}
	}
	if (!settled)
		res = remote_result(req, p->rj_write, 0, 0, req->pr_npages,
		    req->pr_npages);
	if (p->rj_ringfd >= 0) {
		/* the CQE carries the result; the request may be gone as
		   soon as it is posted */
		while ((error = ring_post(w->rw_ring, p->rj_ringfd,
		    ringq_tag(req, p->rj_write), res)) != 0) {
			upvm_log(LOG_WARN, "swap: posting a remote completion "
			    "failed: %s; retrying", strerror(-error));
			usleep(1000);
		}
	}
	pthread_mutex_lock(&rs->rs_lock);
	for (int i = p->rj_ringfd >= 0 ? 0 : 1; i < p->rj_nparts; i++) {
		j = p->rj_parts[i];
		j->rj_next = rs->rs_free;
		rs->rs_free = j;
	}
	if (p->rj_ringfd < 0) {
		p->rj_res = res;
		p->rj_done = true;
		pthread_cond_broadcast(&rs->rs_doneq);
	}
	pthread_mutex_unlock(&rs->rs_lock);
}

static void *
remote_main(void *arg)
{
	struct rworker *w = arg;
	struct remote *rs = w->rw_rs;
	struct rdel del[REMOTE_DELBATCH];
	struct rjob *j, *batch[REMOTE_WINDOW];
	int ndel, k;

	vm_tl_inside = 1;	/* upvm's own thread: its memory is the kernel's */
	for (;;) {
		pthread_mutex_lock(&rs->rs_lock);
		while (rs->rs_head == NULL && !remote_deletes_due(rs) &&
		    !rs->rs_stop)
			pthread_cond_wait(&rs->rs_work, &rs->rs_lock);
		ndel = remote_deletes_due(rs) ? remote_take_deletes(rs, del) :
		    0;
		remote_del_shrink(rs);
		if ((j = rs->rs_head) == NULL && ndel == 0) {
			pthread_mutex_unlock(&rs->rs_lock);
			return NULL;		/* stopped, nothing left */
		}
		k = 0;
		if (j != NULL) {
			rs->rs_head = j->rj_next;
			batch[k++] = j;
			/* one-group jobs queued behind it, the same way:
			   served together */
			while (remote_job_groups(j) == 1 && k < REMOTE_WINDOW &&
			    rs->rs_head != NULL &&
			    rs->rs_head->rj_write == j->rj_write &&
			    remote_job_groups(rs->rs_head) == 1) {
				batch[k++] = rs->rs_head;
				rs->rs_head = rs->rs_head->rj_next;
			}
			if (rs->rs_head == NULL)
				rs->rs_tail = &rs->rs_head;
		}
		pthread_mutex_unlock(&rs->rs_lock);

		if (ndel > 0)
			remote_delete(w, del, ndel);
		if (k == 1)
			j->rj_error = remote_do_range(w, j->rj_req,
			    j->rj_write, j->rj_gen, j->rj_first, j->rj_n,
			    &j->rj_good);
		else if (k > 1)
			remote_serve_batch(w, batch, k);
		for (int b = 0; b < k; b++)
			if (atomic_fetch_sub(&batch[b]->rj_parent->rj_pending,
			    1) == 1)
				remote_settle(w, batch[b]->rj_parent);
	}
}

/*
 * remote_forget: see remote.h.  The list grows as needed (an munmap of a
 * large swapped-out region frees its slots at once): 16 bytes a pending
 * delete, given back when it drains.  Only when no memory is left is a
 * delete dropped (the value stays until the server's LRU evicts it).
 */
void
remote_forget(struct remote *rs, uint64_t slot, uint64_t gen)
{
	struct rdel *d;
	size_t cap;

	pthread_mutex_lock(&rs->rs_lock);
	if (rs->rs_ndel == rs->rs_delcap) {
		cap = MAX(2 * rs->rs_delcap, (size_t)REMOTE_DELMIN);
		if ((d = kmem_alloc(cap * sizeof(*d))) != NULL) {
			if (rs->rs_del != NULL) {
				memcpy(d, rs->rs_del, rs->rs_ndel * sizeof(*d));
				kmem_free(rs->rs_del, rs->rs_delcap *
				    sizeof(*d));
			}
			rs->rs_del = d;
			rs->rs_delcap = cap;
		}
	}
	if (rs->rs_ndel < rs->rs_delcap) {
		rs->rs_del[rs->rs_ndel++] = (struct rdel){ slot, gen };
		if (rs->rs_ndel == REMOTE_DELBATCH)
			pthread_cond_signal(&rs->rs_work);
	}
	pthread_mutex_unlock(&rs->rs_lock);
}

static void
remote_workers_stop(struct remote *rs)
{
	pthread_mutex_lock(&rs->rs_lock);
	rs->rs_stop = true;
	pthread_cond_broadcast(&rs->rs_work);
	pthread_mutex_unlock(&rs->rs_lock);
	for (int i = 0; i < REMOTE_WORKERS; i++)
		if (rs->rs_workers[i].rw_started)
			pthread_join(rs->rs_workers[i].rw_thread, NULL);
}

static void
remote_worker_fini(struct rworker *w)
{
	for (int i = 0; i < w->rw_rs->rs_nsrv; i++)
		mc_fini(&w->rw_conn[i]);
	if (w->rw_ring != NULL)
		ring_destroy(w->rw_ring);
	if (w->rw_buf != NULL)
		kmem_free(w->rw_buf, REMOTE_BUFLEN);
	w->rw_ring = NULL;
	w->rw_buf = NULL;
	w->rw_started = false;
}

/* remote_start: the lock, the queue, the free jobs, the workers */
static int
remote_start(struct remote *rs)
{
	struct rworker *w;
	sigset_t all, old;
	int error = 0;

	pthread_mutex_init(&rs->rs_lock, NULL);
	pthread_cond_init(&rs->rs_work, NULL);
	pthread_cond_init(&rs->rs_doneq, NULL);
	rs->rs_head = NULL;
	rs->rs_tail = &rs->rs_head;
	rs->rs_free = NULL;
	rs->rs_stop = false;
	rs->rs_ndel = 0;		/* (a child: the parent's are its) */
	rs->rs_pid = getpid();
	for (int i = REMOTE_JOBS - 1; i >= 0; i--) {
		rs->rs_jobs[i].rj_next = rs->rs_free;
		rs->rs_free = &rs->rs_jobs[i];
	}
	for (int i = 0; i < REMOTE_WORKERS; i++) {
		w = &rs->rs_workers[i];
		w->rw_rs = rs;
		for (int k = 0; k < rs->rs_nsrv; k++)
			mc_init(&w->rw_conn[k], rs->rs_srv[k].sv_host,
			    rs->rs_srv[k].sv_port);
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < REMOTE_WORKERS && error == 0; i++) {
		w = &rs->rs_workers[i];
		if ((w->rw_buf = kmem_alloc(REMOTE_BUFLEN)) ==
		    NULL) {
			error = -ENOMEM;
			break;
		}
		if ((error = ring_create(2, &w->rw_ring)) != 0)
			break;
		if ((error = -pthread_create(&w->rw_thread, NULL, remote_main,
		    w)) != 0)
			break;
		w->rw_started = true;
		pthread_setname_np(w->rw_thread, "upvm-remote");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		remote_workers_stop(rs);
		for (int i = 0; i < REMOTE_WORKERS; i++)
			remote_worker_fini(&rs->rs_workers[i]);
		upvm_log(LOG_ERR, "swap: cannot start the remote store's "
		    "threads: %s", strerror(-error));
	}
	return error;
}

int
remote_create(const char *url, const struct seal *seal, struct remote **out)
{
	struct remote *rs;
	struct mc_conn c;
	int error, up = 0, firsterr = 0;
	const uint8_t *id = seal_id(seal);
	char *p;

	if ((rs = kmem_alloc(sizeof(*rs))) == NULL)
		return -ENOMEM;
	rs->rs_replicas = 1;
	rs->rs_timeout_ms = REMOTE_TIMEOUT_MS;
	rs->rs_serial = atomic_fetch_add(&remote_serials, 1);
	rs->rs_seal = seal;
	if ((error = remote_parse(rs, url)) != 0)
		goto fail;
	p = rs->rs_keypfx + snprintf(rs->rs_keypfx, sizeof(rs->rs_keypfx),
	    "u");
	for (int i = 0; i < 12; i++)
		p += snprintf(p, 3, "%02x", id[i]);
	*p++ = ':';
	*p = '\0';
	rs->rs_keylen = strlen(rs->rs_keypfx);
	/* a clear error at start: is anybody there? */
	for (int i = 0; i < rs->rs_nsrv; i++) {
		mc_init(&c, rs->rs_srv[i].sv_host, rs->rs_srv[i].sv_port);
		if ((error = mc_open(&c, rs->rs_timeout_ms)) == 0)
			up++;
		else {
			if (firsterr == 0)
				firsterr = error;
			upvm_log(LOG_WARN, "swap: memcached server %s does not "
			    "answer: %s", rs->rs_srv[i].sv_name,
			    strerror(-error));
			remote_mark_down(rs, &rs->rs_srv[i], error);
		}
		mc_fini(&c);
	}
	if (up == 0) {
		upvm_log(LOG_ERR, "swap: no memcached server of %s answers "
		    "(%s); start them or fix the address", url,
		    strerror(-firsterr));
		error = -EHOSTUNREACH;
		goto fail;
	}
	(void)snprintf(rs->rs_desc, sizeof(rs->rs_desc), "memcached, %d "
	    "server(s), replicas=%d", rs->rs_nsrv, rs->rs_replicas);
	if ((error = remote_start(rs)) != 0)
		goto fail;
	*out = rs;
	return 0;
fail:
	kmem_free(rs, sizeof(*rs));
	return error;
}

void
remote_destroy(struct remote *rs)
{
	if (rs == NULL)
		return;
	if (rs->rs_pid == getpid()) {
		remote_workers_stop(rs);
		for (int i = 0; i < REMOTE_WORKERS; i++)
			remote_worker_fini(&rs->rs_workers[i]);
	}
	if (rs->rs_del != NULL)
		kmem_free(rs->rs_del, rs->rs_delcap * sizeof(*rs->rs_del));
	kmem_free(rs, sizeof(*rs));
}

void
remote_fork_child(struct remote *rs)
{
	/* the parent's threads are not here; their connections are the
	   parent's streams: let go of the descriptors, start our own */
	for (int i = 0; i < REMOTE_WORKERS; i++) {
		struct rworker *w = &rs->rs_workers[i];

		for (int k = 0; k < rs->rs_nsrv; k++)
			mc_forget(&w->rw_conn[k]);
		remote_worker_fini(w);
	}
	(void)remote_start(rs);
}

/*
 * A queue's own thread does small reads itself (remote_tl_worker: its
 * own connections), saving the two thread hand-offs of a worker, which
 * on a small machine cost as much as the network's round trip.
 */
static _Thread_local struct rworker *remote_tl_w;
static _Thread_local uint64_t remote_tl_serial;
static pthread_key_t remote_tl_key;
static pthread_once_t remote_tl_once = PTHREAD_ONCE_INIT;

static void
remote_tl_free(void *arg)
{
	struct rworker *w = arg;

	if (w == NULL)
		return;
	for (int i = 0; i < REMOTE_MAXSRV; i++)
		mc_fini(&w->rw_conn[i]);
	if (w->rw_buf != NULL)
		kmem_free(w->rw_buf, REMOTE_BUFLEN);
	kmem_free(w, sizeof(*w));
	remote_tl_w = NULL;
}

static void
remote_tl_init(void)
{
	(void)pthread_key_create(&remote_tl_key, remote_tl_free);
}

/* remote_tl_worker: this thread's worker for rs, or NULL (no memory) */
static struct rworker *
remote_tl_worker(struct remote *rs)
{
	struct rworker *w = remote_tl_w;

	if (w != NULL && remote_tl_serial == rs->rs_serial)
		return w;
	(void)pthread_once(&remote_tl_once, remote_tl_init);
	remote_tl_free(w);		/* another store's */
	if ((w = kmem_alloc(sizeof(*w))) == NULL)
		return NULL;
	for (int i = 0; i < REMOTE_MAXSRV; i++)
		mc_init(&w->rw_conn[i], rs->rs_srv[i].sv_host,
		    rs->rs_srv[i].sv_port);
	if ((w->rw_buf = kmem_alloc(REMOTE_BUFLEN)) == NULL) {
		kmem_free(w, sizeof(*w));
		return NULL;
	}
	w->rw_rs = rs;
	remote_tl_w = w;
	remote_tl_serial = rs->rs_serial;
	(void)pthread_setspecific(remote_tl_key, w);
	return w;
}

int
remote_io(struct remote *rs, struct ring *ring, struct pager_req *req,
    bool write, const uint64_t *gen)
{
	struct rjob *p, *j, sync = { 0 };
	struct rworker *w;
	uint64_t slot = atop(req->pr_off);
	int error, groups, nparts, first, g0;

	VM_ASSERT(rs->rs_pid == getpid());	/* else remote_fork_child */
	req->pr_lost = 0;
	if (ring != NULL && !write && req->pr_npages <= REMOTE_INLINE_PAGES &&
	    (w = remote_tl_worker(rs)) != NULL) {
		error = remote_do(w, req, write, gen);
		return error < 0 ? error : 0;
	}
	/* the groups it spans, shared out in runs over the workers */
	groups = (int)(remote_group(slot + (uint64_t)req->pr_npages - 1) -
	    remote_group(slot) + 1);
	nparts = MIN(groups, REMOTE_WORKERS);
	if (ring != NULL && (error = ring_expect(ring)) != 0)
		return error;
	pthread_mutex_lock(&rs->rs_lock);
	if (ring == NULL) {
		p = &sync;
	} else if ((p = rs->rs_free) != NULL) {
		rs->rs_free = p->rj_next;
	} else {
		/* no job free (more requests than every queue's depth
		   together): this thread does it, rather than fail it */
		pthread_mutex_unlock(&rs->rs_lock);
		ring_unexpect(ring);
		if ((w = remote_tl_worker(rs)) == NULL)
			return -ENOMEM;
		error = remote_do(w, req, write, gen);
		return error < 0 ? error : 0;
	}
	p->rj_parts[0] = p;
	for (p->rj_nparts = 1; p->rj_nparts < nparts &&
	    (j = rs->rs_free) != NULL; p->rj_nparts++) {
		rs->rs_free = j->rj_next;
		p->rj_parts[p->rj_nparts] = j;
	}
	nparts = p->rj_nparts;
	atomic_store(&p->rj_pending, nparts);
	p->rj_ringfd = ring != NULL ? ring_msgfd(ring) : -1;
	p->rj_done = false;
	first = 0;
	for (int i = 0; i < nparts; i++) {
		j = p->rj_parts[i];
		j->rj_req = req;
		j->rj_gen = gen;
		j->rj_write = write;
		j->rj_parent = p;
		j->rj_first = first;
		/* part i: groups [groups * i / nparts, groups * (i + 1) /
		   nparts) of the request's */
		g0 = (int)remote_group(slot) + groups * (i + 1) / nparts;
		j->rj_n = i == nparts - 1 ? req->pr_npages - first :
		    MIN(req->pr_npages - first, (int)((uint64_t)g0 *
		    REMOTE_GROUP + 1 - slot) - first);
		first += j->rj_n;
		j->rj_next = NULL;
		*rs->rs_tail = j;
		rs->rs_tail = &j->rj_next;
	}
	if (nparts > 1)
		pthread_cond_broadcast(&rs->rs_work);
	else
		pthread_cond_signal(&rs->rs_work);
	if (ring != NULL) {
		pthread_mutex_unlock(&rs->rs_lock);
		return -EINPROGRESS;
	}
	while (!sync.rj_done)
		pthread_cond_wait(&rs->rs_doneq, &rs->rs_lock);
	pthread_mutex_unlock(&rs->rs_lock);
	return sync.rj_res < 0 ? sync.rj_res : 0;
}

uint64_t
remote_cpu_ns(struct remote *rs)
{
	struct timespec ts;
	clockid_t cid;
	uint64_t ns = 0;

	if (rs->rs_pid != getpid())
		return 0;
	for (int i = 0; i < REMOTE_WORKERS; i++)
		if (rs->rs_workers[i].rw_started &&
		    pthread_getcpuclockid(rs->rs_workers[i].rw_thread,
		    &cid) == 0 && clock_gettime(cid, &ts) == 0)
			ns += (uint64_t)ts.tv_sec * 1000000000u +
			    (uint64_t)ts.tv_nsec;
	return ns;
}

void
remote_stats(struct remote *rs, struct remote_stats *o)
{
	o->rs_puts = atomic_load(&rs->rs_st.puts);
	o->rs_gets = atomic_load(&rs->rs_st.gets);
	o->rs_failovers = atomic_load(&rs->rs_st.failovers);
	o->rs_misses = atomic_load(&rs->rs_st.misses);
	o->rs_badseal = atomic_load(&rs->rs_st.badseal);
	o->rs_lost = atomic_load(&rs->rs_st.lost);
	o->rs_put_fail = atomic_load(&rs->rs_st.put_fail);
	o->rs_server_down = atomic_load(&rs->rs_st.server_down);
	o->rs_evicting = atomic_load(&rs->rs_st.evicting);
	o->rs_deleted = atomic_load(&rs->rs_st.deleted);
}
