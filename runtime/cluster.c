/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cluster.c: fault cluster policy (pure; see cluster.h).
 */
#include <string.h>

#include "cluster.h"

/*
 * stream_match: the stream expecting a fault at page va: va lies in the
 * window just past the stream's last resolution (an application may skip
 * a few pages, and concurrent threads of one stream arrive out of order).
 */
static struct cluster_stream *
stream_match(struct cluster_state *st, vaddr_t va)
{
	for (int i = 0; i < CLUSTER_NSTREAM; i++) {
		struct cluster_stream *s = &st->cl_streams[i];

		if (s->cs_window > 0 && va >= s->cs_next &&
		    va < s->cs_next + ptoa((vaddr_t)s->cs_window))
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

void
cluster_choose(struct cluster_state *st, const struct cluster_config *cc,
    int advice, vaddr_t start, vaddr_t end, vaddr_t va, vaddr_t *lop,
    vaddr_t *hip)
{
	struct cluster_stream *s;
	vaddr_t pva = trunc_page(va), lo, hi;
	vsize_t block;

	VM_ASSERT(start <= pva && pva < end);
	if (advice == VM_ADV_RANDOM) {
		*lop = pva;
		*hip = pva + PAGE_SIZE;
		return;
	}
	if ((s = stream_match(st, pva)) != NULL) {
		/* a stream: resolve ahead of it, twice as far as last time */
		s->cs_window = MIN(s->cs_window * 2, cc->cc_seq_max);
		lo = pva;
		hi = pva + ptoa((vaddr_t)s->cs_window);
	} else if (advice == VM_ADV_SEQUENTIAL) {
		s = stream_victim(st);
		s->cs_window = cc->cc_seq_max;
		lo = pva;
		hi = pva + ptoa((vaddr_t)s->cs_window);
	} else {
		/* a new guess: the aligned block around the fault */
		s = stream_victim(st);
		block = ptoa((vsize_t)cc->cc_cluster);
		lo = pva & ~(block - 1);
		hi = lo + block;
		s->cs_window = cc->cc_cluster;
	}
	lo = MAX(lo, start);
	hi = MIN(hi, end);
	if (hi < lo)	/* wrapped past the top of the address space */
		hi = end;
	s->cs_next = hi;
	s->cs_used = ++st->cl_clock;
	*lop = lo;
	*hip = hi;
}

void
cluster_reset(struct cluster_state *st)
{
	memset(st, 0, sizeof(*st));
}
