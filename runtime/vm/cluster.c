/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cluster.c: fault cluster policy (pure; see cluster.h).
 */
#include <stdatomic.h>
#include <string.h>

#include "cluster.h"

/* stream_live: s was extended within the entry's last
   CLUSTER_STREAM_AGE decisions */
static bool
stream_live(const struct cluster_state *st, const struct cluster_stream *s)
{
	return s->cs_window > 0 &&
	    st->cl_clock - s->cs_used < CLUSTER_STREAM_AGE;
}

/*
 * stream_match: the live stream expecting a fault at page va: va lies in
 * the window just past the stream's last resolution (an application may
 * skip a few pages, and concurrent threads of one stream arrive out of
 * order).  A stream the last CLUSTER_STREAM_AGE decisions passed by is
 * dead: its window must not catch a random fault long after (a fill whose
 * stream restarted behind itself leaves one in the middle of the entry).
 */
static struct cluster_stream *
stream_match(struct cluster_state *st, vaddr_t va)
{
	for (int i = 0; i < CLUSTER_NSTREAM; i++) {
		struct cluster_stream *s = &st->cl_streams[i];

		if (stream_live(st, s) && va >= s->cs_next &&
		    va < s->cs_next + ptoa((vaddr_t)s->cs_window))
			return s;
	}
	return NULL;
}

/*
 * stream_below: the live stream whose last range starts just above va:
 * va lies in the window below it (a descending stream, or one turning).
 */
static struct cluster_stream *
stream_below(struct cluster_state *st, vaddr_t va)
{
	for (int i = 0; i < CLUSTER_NSTREAM; i++) {
		struct cluster_stream *s = &st->cl_streams[i];

		if (stream_live(st, s) && va < s->cs_low &&
		    s->cs_low - va <= ptoa((vaddr_t)s->cs_window))
			return s;
	}
	return NULL;
}

static struct cluster_stream *
stream_victim(struct cluster_state *st)
{
	struct cluster_stream *v = &st->cl_streams[0];

	for (int i = 1; i < CLUSTER_NSTREAM; i++)
		if (st->cl_streams[i].cs_used < v->cs_used)
			v = &st->cl_streams[i];
	return v;
}

/* clamp: the aligned [lo, lo + len) around va, inside [start, end) */
static void
clamp(vaddr_t lo, vsize_t len, vaddr_t start, vaddr_t end, vaddr_t *lop,
    vaddr_t *hip)
{
	vaddr_t hi = lo + len;

	if (hi < lo)	/* wrapped past the top of the address space */
		hi = end;
	*lop = MAX(lo, start);
	*hip = MIN(hi, end);
}

/*
 * ra_window: the readahead window for a random pagein at page va, after
 * learning whether it lands near the last ones (see cluster.h).
 */
static int
ra_window(struct cluster_state *st, const struct cluster_config *cc,
    vaddr_t va)
{
	vaddr_t unit = atop(va) / CLUSTER_RA_UNIT + 1;
	bool near = false;
	int w = 1, want;

	for (int i = 0; i < CLUSTER_RA_HISTORY; i++)
		near |= st->cl_ra_units[i] == unit;
	if (!near) {
		st->cl_ra_units[st->cl_ra_next] = unit;
		st->cl_ra_next = (st->cl_ra_next + 1) % CLUSTER_RA_HISTORY;
	}
	st->cl_ra_near = (uint8_t)(st->cl_ra_near << 1 | near);
	want = 2 * __builtin_popcount(st->cl_ra_near) - 1;
	while (w < want && w < cc->cc_readahead)
		w *= 2;
	return w;
}

int
cluster_choose(struct cluster_state *st, const struct cluster_config *cc,
    int advice, int flags, vaddr_t start, vaddr_t end, vaddr_t va,
    vaddr_t *lop, vaddr_t *hip)
{
	struct cluster_stream *s;
	vaddr_t pva = trunc_page(va), lo;
	vsize_t len;
	int kind = CLUSTER_STREAM;

	VM_ASSERT(start <= pva && pva < end);
	if (advice == VM_ADV_RANDOM) {
		*lop = pva;
		*hip = pva + PAGE_SIZE;
		return CLUSTER_ONE;
	}
	if ((s = stream_match(st, pva)) != NULL) {
		/* a stream: resolve ahead of it, twice as far as last time */
		s->cs_window = MIN(s->cs_window * 2, cc->cc_seq_max);
		lo = pva;
	} else if (!(flags & CLUSTER_F_PAGEIN) &&
	    (s = stream_below(st, pva)) != NULL) {
		/* going down: the window below the fault, its page on top */
		s->cs_window = MIN(s->cs_window * 2, cc->cc_seq_max);
		lo = pva + PAGE_SIZE - MIN(ptoa((vsize_t)s->cs_window),
		    pva + PAGE_SIZE - start);
		kind = CLUSTER_DESCEND;
	} else if (advice == VM_ADV_SEQUENTIAL) {
		s = stream_victim(st);
		s->cs_window = cc->cc_seq_max;
		lo = pva;
	} else if (flags & (CLUSTER_F_SINGLE | CLUSTER_F_PAGEIN)) {
		/* a new guess, kept small: a stream must show itself */
		s = stream_victim(st);
		s->cs_window = (flags & CLUSTER_F_PAGEIN) ?
		    ra_window(st, cc, pva) : 1;
		if ((flags & CLUSTER_F_PAGEIN) && s->cs_window < cc->cc_ra_sure)
			s->cs_window = cc->cc_ra_sure;
		lo = pva & ~(ptoa((vsize_t)s->cs_window) - 1);
		kind = CLUSTER_BLOCK;
	} else {
		/* a new guess: the aligned block around the fault */
		s = stream_victim(st);
		s->cs_window = cc->cc_cluster;
		lo = pva & ~(ptoa((vsize_t)cc->cc_cluster) - 1);
		kind = CLUSTER_BLOCK;
	}
	/* a descending window ends at the faulting page, even when the
	   entry's start cut it */
	len = kind == CLUSTER_DESCEND ? pva + PAGE_SIZE - lo :
	    ptoa((vsize_t)s->cs_window);
	clamp(lo, len, start, end, lop, hip);
	s->cs_down = kind == CLUSTER_DESCEND;
	s->cs_low = *lop;
	s->cs_next = *hip;
	s->cs_used = ++st->cl_clock;
	return kind;
}

void
cluster_superblock(const struct cluster_config *cc, vaddr_t start,
    vaddr_t end, vaddr_t va, vaddr_t *lop, vaddr_t *hip)
{
	vsize_t len = ptoa((vsize_t)MIN(CLUSTER_SUPER * cc->cc_cluster,
	    cc->cc_seq_max));

	clamp(trunc_page(va) & ~(len - 1), len, start, end, lop, hip);
}

bool
cluster_advance(struct cluster_state *st, vaddr_t next, vaddr_t to)
{
	for (int i = 0; i < CLUSTER_NSTREAM; i++) {
		struct cluster_stream *s = &st->cl_streams[i];

		if (s->cs_window == 0)
			continue;
		if (!s->cs_down && s->cs_next == next) {
			s->cs_next = to;
			return true;
		}
		if (s->cs_down && s->cs_low == next) {
			s->cs_low = to;
			return true;
		}
	}
	return false;
}

bool
cluster_ahead(const struct cluster_state *st, vaddr_t va, int depth,
    vaddr_t *nextp, int *np)
{
	vaddr_t pva = trunc_page(va);

	for (int i = 0; i < CLUSTER_NSTREAM; i++) {
		const struct cluster_stream *s = &st->cl_streams[i];

		if (stream_live(st, s) && !s->cs_down && pva < s->cs_next &&
		    s->cs_next - pva <= ptoa((vaddr_t)s->cs_window *
		    (vaddr_t)depth)) {
			*nextp = s->cs_next;
			*np = s->cs_window;
			return true;
		}
	}
	return false;
}

void
cluster_reset(struct cluster_state *st)
{
	memset(st, 0, sizeof(*st));
}

int
cluster_ra_band(vaddr_t fva, vaddr_t va)
{
	vaddr_t d = atop(fva) ^ atop(va);

	VM_ASSERT(d != 0);
	return 63 - __builtin_clzll((unsigned long long)d);
}

/* ra_decay: band b's counts halve once it holds CLUSTER_RA_DECAY blocks */
static void
ra_decay(struct cluster_ra_hits *rh, int b, uint32_t staged)
{
	if (staged < (uint32_t)CLUSTER_RA_DECAY << b)
		return;
	atomic_store_explicit(&rh->rh_staged[b], staged / 2,
	    memory_order_relaxed);
	atomic_store_explicit(&rh->rh_hits[b], atomic_load_explicit(
	    &rh->rh_hits[b], memory_order_relaxed) / 2, memory_order_relaxed);
}

void
cluster_ra_staged(struct cluster_ra_hits *rh, int b)
{
	if (b < 0 || b >= CLUSTER_RA_BANDS)
		return;
	ra_decay(rh, b, atomic_fetch_add_explicit(&rh->rh_staged[b], 1,
	    memory_order_relaxed) + 1);
}

void
cluster_ra_hit(struct cluster_ra_hits *rh, int b)
{
	if (b >= 0 && b < CLUSTER_RA_BANDS)
		atomic_fetch_add_explicit(&rh->rh_hits[b], 1,
		    memory_order_relaxed);
}

/*
 * ra_hit_window: the widest window (at most `readahead` pages) whose bands
 * are each hit at least pct percent; a band with fewer than
 * CLUSTER_RA_SAMPLES pages counted passes if `unsure_passes`.
 */
static int
ra_hit_window(const struct cluster_ra_hits *rh, int readahead, int pct,
    bool unsure_passes)
{
	int w = 1;

	for (int b = 0; b < CLUSTER_RA_BANDS && 2 * w <= readahead; b++) {
		uint32_t n = atomic_load_explicit(&rh->rh_staged[b],
		    memory_order_relaxed);
		uint32_t h = atomic_load_explicit(&rh->rh_hits[b],
		    memory_order_relaxed);

		if (n < CLUSTER_RA_SAMPLES ? !unsure_passes :
		    (uint64_t)h * 100 < (uint64_t)n * (uint64_t)pct)
			break;
		w *= 2;
	}
	return w;
}

int
cluster_ra_cap(const struct cluster_ra_hits *rh, int readahead)
{
	return ra_hit_window(rh, readahead, CLUSTER_RA_HIT_PCT, true);
}

int
cluster_ra_sure(const struct cluster_ra_hits *rh, int readahead)
{
	return ra_hit_window(rh, readahead, CLUSTER_RA_SURE_PCT, false);
}

void
cluster_ra_block(int npages, vaddr_t start, vaddr_t end, vaddr_t va,
    vaddr_t *lop, vaddr_t *hip)
{
	vsize_t len = ptoa((vsize_t)npages);

	clamp(trunc_page(va) & ~(len - 1), len, start, end, lop, hip);
}
