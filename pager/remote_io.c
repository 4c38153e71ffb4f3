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


/*
 * remote_values: group g's pages cut into the values that hold them
 * (remote.h: a value's pages have consecutive generations, the first a
 * multiple of REMOTE_VPAGES), numbered from *nvp on: their keys, the
 * window's pages each holds, and where those pages are (rw_buf, page by
 * page: a write stores them, a read wants them out of the whole value).
 */
static void
remote_values(struct rworker *w, struct rgroup *g, const uint64_t *gen,
    bool write, int *nvp)
{
	uint64_t s, vslot, vgen;
	int nv = *nvp, m;

	g->g_voff = nv;
	for (int i = 0; i < g->g_n; i += m, nv++) {
		s = g->g_slot + (uint64_t)i;
		for (m = 1; i + m < g->g_n && gen[s + (uint64_t)m] == gen[s] +
		    (uint64_t)m && gen[s + (uint64_t)m] % REMOTE_VPAGES != 0;
		    m++)
			;
		remote_value_of(s, gen[s], &vslot, &vgen);
		/* a write's values are whole (swp_seal_out) */
		VM_ASSERT(!write || vslot == s);
		remote_key(w->rw_rs, vslot, vgen, w->rw_keys[nv]);
		w->rw_kp[nv] = w->rw_keys[nv];
		w->rw_val[nv] = (struct mc_val){
		    .mv_buf = w->rw_buf + (size_t)(g->g_off + i) * REMOTE_VLEN,
		    .mv_skip = (size_t)(s - vslot) * REMOTE_VLEN,
		    .mv_len = (size_t)m * REMOTE_VLEN };
		w->rw_vpage[nv] = g->g_off + i;
		w->rw_vn[nv] = m;
	}
	g->g_nv = nv - g->g_voff;
	*nvp = nv;
}

/* remote_stored: value v's store on one server: its pages' copies */
static void
remote_stored(struct rworker *w, int v, int *lasterr)
{
	if (w->rw_vres[v] != 0) {
		*lasterr = w->rw_vres[v];
		return;
	}
	for (int p = w->rw_vpage[v]; p < w->rw_vpage[v] + w->rw_vn[v]; p++)
		w->rw_copies[p]++;
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
	int order[REMOTE_MAXSRV], *copies = w->rw_copies;
	int error, lasterr = -ENOSPC, stored, npages = 0, nv = 0;
	struct rgroup *g;
	struct mc_conn *c;

	for (int k = 0; k < ng; k++)
		for (int i = 0; i < gs[k].g_n; i++)
			copies[gs[k].g_off + i] = 0;
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		remote_values(w, g, gen, true, &nv);
		for (int i = 0; i < g->g_n; i++) {
			uint64_t s = g->g_slot + (uint64_t)i;
			char *v = w->rw_buf + (size_t)(g->g_off + i) *
			    REMOTE_VLEN;

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
			if ((error = mc_set_send(c, w->rw_kp + g->g_voff,
			    w->rw_val + g->g_voff, g->g_nv,
			    rs->rs_timeout_ms)) != 0) {
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
			if ((error = mc_set_recv(c, g->g_nv, w->rw_vres +
			    g->g_voff, rs->rs_timeout_ms)) != 0) {
				lasterr = error;	/* round two retries */
				g->g_srv[j] = -1;
				continue;
			}
			remote_mark_up(rs, &rs->rs_srv[g->g_srv[j]]);
			for (int v = g->g_voff; v < g->g_voff + g->g_nv; v++)
				remote_stored(w, v, &lasterr);
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
			    w->rw_kp + g->g_voff, w->rw_val + g->g_voff,
			    g->g_nv, w->rw_vres + g->g_voff)) != 0) {
				lasterr = error;
				continue;
			}
			for (int v = g->g_voff; v < g->g_voff + g->g_nv; v++)
				remote_stored(w, v, &lasterr);
			stored = INT32_MAX;
			for (int i = 0; i < g->g_n; i++)
				stored = MIN(stored, copies[g->g_off + i]);
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

/*
 * remote_open_value: the pages of value v that a server returned (from
 * the server of rank r) and that are not read yet, opened into the
 * request's buffer: ok, or why not.
 */
static void
remote_open_value(struct rworker *w, const struct rgroup *g, int v,
    const uint64_t *gen, int r)
{
	struct remote *rs = w->rw_rs;
	bool *ok = w->rw_ok;
	int *why = w->rw_copies, i;
	uint64_t s;
	char *sealed;

	for (int p = w->rw_vpage[v]; p < w->rw_vpage[v] + w->rw_vn[v]; p++) {
		if (ok[p])
			continue;
		if (w->rw_vres[v] != 0) {
			atomic_fetch_add(&rs->rs_st.misses, 1);
			continue;
		}
		i = p - g->g_off;
		s = g->g_slot + (uint64_t)i;
		sealed = w->rw_buf + (size_t)p * REMOTE_VLEN;
		if (seal_open(rs->rs_seal, s, gen[s], sealed, g->g_buf +
		    ptoa((size_t)i), (uint8_t *)sealed + PAGE_SIZE) != 0) {
			atomic_fetch_add(&rs->rs_st.badseal, 1);
			why[p] = -EBADMSG;
			continue;
		}
		if (r > 0)
			atomic_fetch_add(&rs->rs_st.failovers, 1);
		ok[p] = true;
	}
}

/* remote_wanted: whether a page of value v is still to be read */
static bool
remote_wanted(const struct rworker *w, int v)
{
	for (int p = w->rw_vpage[v]; p < w->rw_vpage[v] + w->rw_vn[v]; p++)
		if (!w->rw_ok[p])
			return true;
	return false;
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
	int order[REMOTE_MAXSRV], *why = w->rw_copies;
	int npages = 0, good, nwant, nv = 0;
	bool *ok = w->rw_ok;
	struct rgroup *g;
	struct mc_conn *c;

	/* round one: each group from the first server that answers */
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		remote_values(w, g, gen, false, &nv);
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
			if (mc_get_send(c, w->rw_kp + g->g_voff, g->g_nv,
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
		if (mc_get_recv(c, w->rw_kp + g->g_voff, w->rw_val + g->g_voff,
		    g->g_nv, w->rw_vres + g->g_voff, rs->rs_timeout_ms) != 0)
			continue;		/* round two reconnects */
		remote_mark_up(rs, &rs->rs_srv[g->g_srv[0]]);
		g->g_replied = true;
		for (int v = g->g_voff; v < g->g_voff + g->g_nv; v++)
			remote_open_value(w, g, v, gen, g->g_rank);
	}
	/* round two, a group at a time, down the ranking: the values
	   still wanted */
	for (int k = 0; k < ng; k++) {
		g = &gs[k];
		remote_rank(rs, g->g_slot, order);
		for (int r = 0; r < rs->rs_nsrv; r++) {
			const char *kp[REMOTE_GROUP];
			struct mc_val val[REMOTE_GROUP];
			int want[REMOTE_GROUP], res[REMOTE_GROUP];

			if (g->g_replied && order[r] == g->g_srv[0])
				continue;		/* answered round one */
			nwant = 0;
			for (int v = g->g_voff; v < g->g_voff + g->g_nv; v++)
				if (remote_wanted(w, v)) {
					kp[nwant] = w->rw_kp[v];
					val[nwant] = w->rw_val[v];
					want[nwant++] = v;
				}
			if (nwant == 0)
				break;
			if (remote_call(w, order[r], false, kp, val, nwant,
			    res) != 0)
				continue;
			for (int j = 0; j < nwant; j++) {
				w->rw_vres[want[j]] = res[j];
				remote_open_value(w, g, want[j], gen, r);
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
			int m = (int)MIN(end - t, REMOTE_GROUP - (t - 1) %
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

	return (int)(remote_group(slot + (uint64_t)j->rj_n - 1) -
	    remote_group(slot) + 1);
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
