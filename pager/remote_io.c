/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * remote_io.c: serving one request of the remote store (see remote.h):
 * keys, the windows of groups a worker sends and receives, the parts of
 * a request and the batches of small ones.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "remote_int.h"
#include "vm.h"

/* ---------------------------------------------------------------- */
/* one request */

/* remote_hex: v in lower-case hex at p, no leading zeros.  => the end */
static char *
remote_hex(char *p, uint64_t v)
{
	char tmp[16];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* remote_key: "u<id>:<slot>.<gen>" (a page's key: formatted per page, so
   without printf) */
void
remote_key(const struct remote *rs, uint64_t slot, uint64_t gen, char *key)
{
	char *p = key + rs->rs_keylen;

	memcpy(key, rs->rs_keypfx, rs->rs_keylen);
	p = remote_hex(p, slot);
	*p++ = '.';
	p = remote_hex(p, gen);
	*p = '\0';
}


/* remote_keys: the keys of group g's pages into rw_keys */
static void
remote_keys(struct rworker *w, const struct rgroup *g, const uint64_t *gen)
{
	for (int i = 0; i < g->g_n; i++) {
		uint64_t s = g->g_slot + (uint64_t)i;

		remote_key(w->rw_rs, s, gen[s], w->rw_keys[g->g_off + i]);
		w->rw_kp[g->g_off + i] = w->rw_keys[g->g_off + i];
		w->rw_vp[g->g_off + i] = w->rw_buf + (size_t)(g->g_off + i) *
		    REMOTE_VLEN;
	}
}

/*
 * remote_put_window: store the ng groups (sealed from buf) on the first
 * `replicas` servers of each one's ranking that take them.
 * => 0 when every page is on at least one server, else -errno.
 */
static int
remote_put_window(struct rworker *w, struct rgroup *gs, int ng,
    const uint64_t *gen)
{
	struct remote *rs = w->rw_rs;
	int order[REMOTE_MAXSRV], *res = w->rw_res, *copies = w->rw_copies;
	int error, lasterr = -ENOSPC, stored, npages = 0;
	struct rgroup *g;
	struct mc_conn *c;

	for (int k = 0; k < ng; k++)
		for (int i = 0; i < gs[k].g_n; i++)
			copies[gs[k].g_off + i] = 0;
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		remote_keys(w, g, gen);
		for (int i = 0; i < g->g_n; i++) {
			uint64_t s = g->g_slot + (uint64_t)i;
			char *v = w->rw_vp[g->g_off + i];

			if ((error = seal_page(rs->rs_seal, s, gen[s],
			    g->g_buf + ptoa((size_t)i), v, (uint8_t *)v +
			    PAGE_SIZE)) != 0)
				return error;
		}
		npages += g->g_n;
		/* round one: the first `replicas` usable, not full */
		remote_rank(rs, g->g_slot, order);
		g->g_nsrv = 0;
		for (int r = 0; r < rs->rs_nsrv && g->g_nsrv <
		    rs->rs_replicas; r++) {
			if (atomic_load(&rs->rs_srv[order[r]].sv_full) ||
			    (c = remote_conn(w, order[r])) == NULL)
				continue;
			if ((error = mc_set_send(c, w->rw_kp + g->g_off,
			    (const void *const *)w->rw_vp + g->g_off,
			    REMOTE_VLEN, g->g_n, rs->rs_timeout_ms)) != 0) {
				lasterr = error;	/* round two retries */
				continue;
			}
			g->g_srv[g->g_nsrv++] = order[r];
		}
	}
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		for (int j = 0; j < g->g_nsrv; j++) {
			c = &w->rw_conn[g->g_srv[j]];
			if ((error = mc_set_recv(c, g->g_n, res + g->g_off,
			    rs->rs_timeout_ms)) != 0) {
				lasterr = error;	/* round two retries */
				g->g_srv[j] = -1;
				continue;
			}
			for (int i = 0; i < g->g_n; i++)
				if (res[g->g_off + i] == 0)
					copies[g->g_off + i]++;
				else
					lasterr = res[g->g_off + i];
		}
	}
	/* round two, a group at a time, while a page has fewer copies than
	   asked: the servers that did not take them in round one */
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		stored = INT32_MAX;
		for (int i = 0; i < g->g_n; i++)
			stored = MIN(stored, copies[g->g_off + i]);
		remote_rank(rs, g->g_slot, order);
		for (int r = 0; r < rs->rs_nsrv && stored < rs->rs_replicas;
		    r++) {
			bool tried = false;

			for (int j = 0; j < g->g_nsrv; j++)
				tried |= g->g_srv[j] == order[r];
			if (tried || atomic_load(&rs->rs_srv[order[r]].sv_full))
				continue;
			if ((error = remote_call(w, order[r], true,
			    w->rw_kp + g->g_off, w->rw_vp + g->g_off, g->g_n,
			    res + g->g_off)) != 0) {
				lasterr = error;
				continue;
			}
			stored = INT32_MAX;
			for (int i = 0; i < g->g_n; i++) {
				if (res[g->g_off + i] == 0)
					copies[g->g_off + i]++;
				else
					lasterr = res[g->g_off + i];
				stored = MIN(stored, copies[g->g_off + i]);
			}
		}
	}
	error = 0;
	for (int i = 0; i < npages; i++)
		if (copies[i] == 0) {
			atomic_fetch_add(&rs->rs_st.put_fail, 1);
			error = lasterr;
		}
	if (error == 0)
		atomic_fetch_add(&rs->rs_st.puts, (uint64_t)npages);
	return error;
}

/* remote_open: page i of the window from its value; => 0 or -EBADMSG */
static int
remote_open(struct rworker *w, const struct rgroup *g, int i,
    const uint64_t *gen, int r)
{
	struct remote *rs = w->rw_rs;
	uint64_t s = g->g_slot + (uint64_t)i;
	char *v = w->rw_vp[g->g_off + i];

	if (seal_open(rs->rs_seal, s, gen[s], v, g->g_buf + ptoa((size_t)i),
	    (uint8_t *)v + PAGE_SIZE) != 0) {
		atomic_fetch_add(&rs->rs_st.badseal, 1);
		return -EBADMSG;
	}
	if (r > 0)
		atomic_fetch_add(&rs->rs_st.failovers, 1);
	return 0;
}

/*
 * remote_get_window: read the ng groups into buf.  => the pages read and
 * opened before the first lost one (all: every page), *errp the reason
 * of the first lost one.
 */
static int
remote_get_window(struct rworker *w, struct rgroup *gs, int ng,
    const uint64_t *gen, int *errp)
{
	struct remote *rs = w->rw_rs;
	int order[REMOTE_MAXSRV], *res = w->rw_res, *why = w->rw_copies;
	int npages = 0, good, nwant;
	bool *ok = w->rw_ok;
	struct rgroup *g;
	struct mc_conn *c;

	/* round one: each group from the first server that answers */
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		remote_keys(w, g, gen);
		for (int i = 0; i < g->g_n; i++) {
			ok[g->g_off + i] = false;
			why[g->g_off + i] = -ENODATA;
		}
		npages += g->g_n;
		remote_rank(rs, g->g_slot, order);
		g->g_nsrv = 0;
		for (int r = 0; r < rs->rs_nsrv && g->g_nsrv == 0; r++) {
			if ((c = remote_conn(w, order[r])) == NULL)
				continue;
			/* a failure here may be a stale connection (the
			   server restarted): round two reconnects */
			if (mc_get_send(c, w->rw_kp + g->g_off, g->g_n,
			    rs->rs_timeout_ms) != 0)
				break;
			g->g_srv[g->g_nsrv++] = order[r];
			g->g_rank = r;
		}
	}
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		g->g_replied = false;
		if (g->g_nsrv == 0)
			continue;
		c = &w->rw_conn[g->g_srv[0]];
		if (mc_get_recv(c, w->rw_kp + g->g_off,
		    w->rw_vp + g->g_off, REMOTE_VLEN, g->g_n,
		    res + g->g_off, rs->rs_timeout_ms) != 0)
			continue;		/* round two reconnects */
		g->g_replied = true;
		for (int i = 0; i < g->g_n; i++) {
			if (res[g->g_off + i] != 0) {
				atomic_fetch_add(&rs->rs_st.misses, 1);
				continue;
			}
			if ((why[g->g_off + i] = remote_open(w, g, i, gen,
			    g->g_rank)) == 0)
				ok[g->g_off + i] = true;
		}
	}
	/* round two, a group at a time, down the ranking */
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		remote_rank(rs, g->g_slot, order);
		for (int r = 0; r < rs->rs_nsrv; r++) {
			int want[REMOTE_BATCH];

			if (g->g_replied && order[r] == g->g_srv[0])
				continue;		/* answered round one */
			nwant = 0;
			for (int i = 0; i < g->g_n; i++)
				if (!ok[g->g_off + i])
					want[nwant++] = i;
			if (nwant == 0)
				break;
			/* the keys and values of the pages still wanted
			   move to the front of the group's arrays */
			for (int j = 0; j < nwant; j++) {
				w->rw_kp[g->g_off + j] =
				    w->rw_keys[g->g_off + want[j]];
				w->rw_vp[g->g_off + j] = w->rw_buf + (size_t)
				    (g->g_off + want[j]) * REMOTE_VLEN;
			}
			if (remote_call(w, order[r], false, w->rw_kp + g->g_off,
			    w->rw_vp + g->g_off, nwant, res + g->g_off) != 0)
				continue;
			for (int j = 0; j < nwant; j++) {
				int i = want[j];

				if (res[g->g_off + j] != 0) {
					atomic_fetch_add(&rs->rs_st.misses, 1);
					continue;
				}
				w->rw_vp[g->g_off + i] = w->rw_buf + (size_t)
				    (g->g_off + i) * REMOTE_VLEN;
				if ((why[g->g_off + i] = remote_open(w, g, i,
				    gen, r)) == 0)
					ok[g->g_off + i] = true;
			}
			/* back in place for the next round */
			for (int i = 0; i < g->g_n; i++) {
				w->rw_kp[g->g_off + i] =
				    w->rw_keys[g->g_off + i];
				w->rw_vp[g->g_off + i] = w->rw_buf + (size_t)
				    (g->g_off + i) * REMOTE_VLEN;
			}
		}
	}
	for (good = 0; good < npages && ok[good]; good++)
		;
	for (int i = 0; i < npages; i++)
		atomic_fetch_add(ok[i] ? &rs->rs_st.gets : &rs->rs_st.lost, 1);
	*errp = good < npages ? why[good] : 0;
	return good;
}

/*
 * remote_do_range: pages [first, first + n) of the request.  => 0, or
 * -errno; a read sets *goodp to the pages read and opened before the
 * first lost one (n: all).
 */
int
remote_do_range(struct rworker *w, struct pager_req *req, bool write,
    const uint64_t *gen, int first, int n, int *goodp)
{
	uint64_t slot = atop(req->pr_off) + (uint64_t)first;
	uint64_t end = slot + (uint64_t)n;
	struct rgroup gs[REMOTE_WINDOW];
	char *buf = (char *)req->pr_buf + ptoa((size_t)first);
	int ng, npages, good, error = 0;

	remote_check_evictions(w);
	*goodp = n;
	for (uint64_t s = slot; s < end; s += (uint64_t)npages) {
		/* a window: up to REMOTE_WINDOW groups */
		ng = npages = 0;
		for (uint64_t t = s; t < end && ng < REMOTE_WINDOW; ng++) {
			int m = (int)MIN(end - t, REMOTE_GROUP - t %
			    REMOTE_GROUP);

			gs[ng] = (struct rgroup){ .g_slot = t, .g_n = m,
			    .g_off = npages, .g_buf = buf + ptoa(t - slot) };
			npages += m;
			t += (uint64_t)m;
		}
		if (write) {
			if ((error = remote_put_window(w, gs, ng, gen)) != 0)
				return error;
			continue;
		}
		good = remote_get_window(w, gs, ng, gen, &error);
		if (good < npages) {
			*goodp = (int)(s - slot) + good;
			return error;
		}
	}
	return 0;
}

/*
 * remote_result: a request's result from the first part's outcome that
 * fell short (parts in page order): the bytes, or -errno with pr_xfer
 * and pr_lost set for a read that lost a page.
 */
int
remote_result(struct pager_req *req, bool write, int error, int first,
    int good, int n)
{
	if (write && error != 0)
		return error;
	if (!write && good < n) {
		req->pr_xfer = ptoa((size_t)(first + good));
		req->pr_lost = 1;
		return error;
	}
	req->pr_xfer = ptoa((size_t)req->pr_npages);
	return (int)MIN(req->pr_xfer, (size_t)INT32_MAX);
}

/* remote_do: the whole request in one thread.  => bytes, or -errno */
int
remote_do(struct rworker *w, struct pager_req *req, bool write,
    const uint64_t *gen)
{
	int good, error;

	req->pr_lost = 0;
	error = remote_do_range(w, req, write, gen, 0, req->pr_npages, &good);
	return remote_result(req, write, error, 0, good, req->pr_npages);
}

/* remote_job_groups: how many groups a job's pages span */
int
remote_job_groups(const struct rjob *j)
{
	uint64_t slot = atop(j->rj_req->pr_off) + (uint64_t)j->rj_first;

	return (int)((slot + (uint64_t)j->rj_n - 1) / REMOTE_GROUP -
	    slot / REMOTE_GROUP + 1);
}

/*
 * remote_serve_batch: k jobs of one group each, in one direction, served
 * as one window (their first rounds all sent before any reply is read):
 * random pageins and small pageout runs of several threads overlap.
 */
void
remote_serve_batch(struct rworker *w, struct rjob **jobs, int k)
{
	struct rgroup gs[REMOTE_WINDOW];
	bool write = jobs[0]->rj_write;
	int npages = 0, error = 0, good;
	struct rjob *j;

	for (int b = 0; b < k; b++) {
		j = jobs[b];
		gs[b] = (struct rgroup){ .g_slot = atop(j->rj_req->pr_off) +
		    (uint64_t)j->rj_first, .g_n = j->rj_n, .g_off = npages,
		    .g_buf = (char *)j->rj_req->pr_buf +
		    ptoa((size_t)j->rj_first) };
		npages += j->rj_n;
	}
	remote_check_evictions(w);
	if (write)
		error = remote_put_window(w, gs, k, jobs[0]->rj_gen);
	else
		(void)remote_get_window(w, gs, k, jobs[0]->rj_gen, &error);
	for (int b = 0; b < k; b++) {
		j = jobs[b];
		j->rj_error = 0;
		j->rj_good = j->rj_n;
		for (good = 0; good < j->rj_n; good++)
			if (write ? w->rw_copies[gs[b].g_off + good] == 0 :
			    !w->rw_ok[gs[b].g_off + good])
				break;
		if (good < j->rj_n) {
			j->rj_good = good;
			j->rj_error = write ? (error != 0 ? error : -EIO) :
			    w->rw_copies[gs[b].g_off + good];
		}
	}
}
