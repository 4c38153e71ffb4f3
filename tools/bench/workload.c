/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * workload.c: the workloads of upvm-bench.
 *
 * A workload is a per-thread function over a region: thread tid of T
 * touches its share of the pages, and that is all it knows.  Anything a
 * workload needs beyond the region (a page order, page generations, zipf
 * constants) it builds in wl_prepare, before any run and outside the
 * timing, in plain mmap memory: a region under test must never hold the
 * benchmark's own bookkeeping, or its faults would be counted and timed as
 * the workload's.  runner.c runs the threads and times them.
 *
 * Writing a page stores every 64-bit word of it with wl_pattern(page,
 * generation, word), so that a page written to the wrong place, a page left
 * zero, a stale page of an earlier run (each run owns WL_GENS generations
 * from wc_gen) or a torn page all show up when the region is read back.
 * The workloads that read (seq-read, rand-read, rand-rw, zipf) first
 * populate the region, untimed, with generation wc_gen, and check what they
 * read: every word with --verify, else one word per 512 bytes.
 *
 * Random operations (WL_OPS) are timed one by one, clock_gettime() around
 * the access alone, into a log2 histogram of microseconds per thread, in
 * the buckets of upvm's own fault latency.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench.h"

#define PATTERN_MUL	0x9e3779b97f4a7c15ULL
#define SPARSE_STRIDE	(512 / sizeof(uint64_t))	/* words */

/*
 * wl_pattern: word w of page idx in generation gen.  Odd, so never zero;
 * the multiply spreads the page, generation and word over all 64 bits.
 */
uint64_t
wl_pattern(size_t idx, uint64_t gen, size_t w)
{
	return (((uint64_t)idx << 20 ^ gen << 52 ^ (uint64_t)(w + 1)) *
	    PATTERN_MUL) | 1;
}

static inline uint64_t *
page_at(const struct wl_ctx *c, size_t idx)
{
	return (uint64_t *)(void *)(c->wc_base + idx * c->wc_pagesize);
}

/* page_write: store the pattern of page idx, generation gen. */
static inline void
page_write(const struct wl_ctx *c, size_t idx, uint64_t gen)
{
	uint64_t *p = page_at(c, idx);
	uint64_t base = (uint64_t)idx << 20 ^ gen << 52;
	size_t w, nw = c->wc_pagesize / sizeof(uint64_t);

	for (w = 0; w < nw; w++)
		p[w] = ((base ^ (uint64_t)(w + 1)) * PATTERN_MUL) | 1;
}

/*
 * page_read: check page idx against generation gen, every word if full,
 * else one word per 512 bytes.  A bad word goes to t->wt_bad (the first
 * one the thread found) and makes it return false.
 */
static bool
page_read(const struct wl_ctx *c, struct wl_thread *t, size_t idx,
    uint64_t gen, bool full, int phase)
{
	const uint64_t *p = page_at(c, idx);
	uint64_t base = (uint64_t)idx << 20 ^ gen << 52, want;
	size_t w, nw = c->wc_pagesize / sizeof(uint64_t);
	size_t stride = full ? 1 : SPARSE_STRIDE;

	for (w = 0; w < nw; w += stride) {
		want = ((base ^ (uint64_t)(w + 1)) * PATTERN_MUL) | 1;
		if (p[w] == want)
			continue;
		if (t->wt_bad.wb_page == SIZE_MAX)
			t->wt_bad = (struct wl_bad){ .wb_page = idx,
			    .wb_word = w, .wb_expected = want, .wb_got = p[w],
			    .wb_phase = phase };
		return false;
	}
	return true;
}

/* page_sum: read every word of page idx, for reads that check sparsely. */
static inline uint64_t
page_sum(const struct wl_ctx *c, size_t idx)
{
	const uint64_t *p = page_at(c, idx);
	size_t w, nw = c->wc_pagesize / sizeof(uint64_t);
	uint64_t sum = 0;

	for (w = 0; w < nw; w++)
		sum += p[w];
	return sum;
}

static inline bool
stopped(const struct wl_thread *t)
{
	return atomic_load_explicit(t->wt_stop, memory_order_relaxed);
}

static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* hist_add: count ns in the log2 microsecond bucket upvm_stats uses. */
static inline void
hist_add(uint64_t *hist, uint64_t ns)
{
	uint64_t us = ns / 1000;
	int b = us == 0 ? 0 : 64 - __builtin_clzll(us);

	hist[b < UPVM_LATENCY_BUCKETS ? b : UPVM_LATENCY_BUCKETS - 1]++;
}

/* slice: the share [*lo, *hi) of thread tid, in page or order indices. */
static void
slice(const struct wl_ctx *c, unsigned tid, size_t *lo, size_t *hi)
{
	*lo = c->wc_npages * tid / c->wc_nthreads;
	*hi = c->wc_npages * (tid + 1) / c->wc_nthreads;
}

/* splitmix64: the next number of a seeded stream (Vigna). */
static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* rand_below: uniform in [0, n); the modulo bias is below 2^-32 here. */
static inline size_t
rand_below(uint64_t *state, size_t n)
{
	return (size_t)(splitmix64(state) % n);
}

/* rand_unit: uniform in [0, 1). */
static inline double
rand_unit(uint64_t *state)
{
	return (double)(splitmix64(state) >> 11) * 0x1p-53;
}

/*
 * The zipf sampler.  H is the integral of h(x) = x^-theta; a uniform u
 * between H(1.5) - 1 and H(n + 0.5) is inverted to x and rounded to the
 * rank k, accepted unless u falls in the part of k's interval that h(k)
 * does not cover.  helper1 and helper2 keep log1p(x)/x and expm1(x)/x
 * exact near x = 0, i.e. theta near 1.
 */
static double
zipf_helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x :
	    1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double
zipf_helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x :
	    1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}

static double
zipf_h(const struct wl_zipf *z, double x)
{
	return exp(-z->zf_theta * log(x));
}

static double
zipf_hint(const struct wl_zipf *z, double x)
{
	double lx = log(x);

	return zipf_helper2((1 - z->zf_theta) * lx) * lx;
}

static double
zipf_hinv(const struct wl_zipf *z, double x)
{
	double t = x * (1 - z->zf_theta);

	if (t < -1)
		t = -1;
	return exp(zipf_helper1(t) * x);
}

static void
zipf_init(struct wl_zipf *z, uint64_t n, double theta)
{
	z->zf_theta = theta;
	z->zf_n = n;
	z->zf_hx1 = zipf_hint(z, 1.5) - 1;
	z->zf_hn = zipf_hint(z, (double)n + 0.5);
	z->zf_s = 2 - zipf_hinv(z, zipf_hint(z, 2.5) - zipf_h(z, 2));
}

/* zipf_rank: a rank in 1..n, rank k with probability ~ k^-theta. */
static uint64_t
zipf_rank(const struct wl_zipf *z, uint64_t *state)
{
	double u, x;
	uint64_t k;

	for (;;) {
		u = z->zf_hn + rand_unit(state) * (z->zf_hx1 - z->zf_hn);
		x = zipf_hinv(z, u);
		k = x < 1.5 ? 1 : (uint64_t)(x + 0.5);
		if (k > z->zf_n)
			k = z->zf_n;
		if ((double)k - x <= z->zf_s ||
		    u >= zipf_hint(z, (double)k + 0.5) - zipf_h(z, (double)k))
			return k;
	}
}

/* wl_populate: write my contiguous 1/T with generation wc_gen, untimed. */
void
wl_populate(const struct wl_ctx *c, struct wl_thread *t)
{
	size_t i, lo, hi;

	slice(c, t->wt_tid, &lo, &hi);
	for (i = lo; i < hi && !stopped(t); i++)
		page_write(c, i, c->wc_gen);
}

/*
 * wl_verify: check every word of my contiguous 1/T, in page order, against
 * the generation wl left there.
 */
void
wl_verify(const struct workload *wl, const struct wl_ctx *c,
    struct wl_thread *t)
{
	size_t i, lo, hi;
	uint64_t gen;

	slice(c, t->wt_tid, &lo, &hi);
	for (i = lo; i < hi && !stopped(t); i++) {
		gen = c->wc_gen + (c->wc_pgen != NULL ? c->wc_pgen[i] :
		    wl->wl_final);
		if (!page_read(c, t, i, gen, true, WL_PH_VERIFY))
			return;
	}
}

/* wl_phase_name: WL_PH_* in words, for messages. */
const char *
wl_phase_name(int phase)
{
	return phase == WL_PH_TOUCH ? "timed phase" : phase == WL_PH_FILE ?
	    "the file after unmapping" : "verification";
}

/* seq_write: first-touch write of my contiguous 1/T, ascending. */
static void
seq_write(const struct wl_ctx *c, struct wl_thread *t)
{
	size_t i, lo, hi;

	slice(c, t->wt_tid, &lo, &hi);
	for (i = lo; i < hi && !stopped(t); i++)
		page_write(c, i, c->wc_gen);
	t->wt_pages = i - lo;
}

/* seq_rewrite: write my populated 1/T again, generation wc_gen + 1. */
static void
seq_rewrite(const struct wl_ctx *c, struct wl_thread *t)
{
	size_t i, lo, hi;

	slice(c, t->wt_tid, &lo, &hi);
	for (i = lo; i < hi && !stopped(t); i++)
		page_write(c, i, c->wc_gen + 1);
	t->wt_pages = i - lo;
}

/*
 * seq_read: read my populated 1/T, ascending: every word checked with
 * --verify, else every word summed and one per 512 bytes checked.
 */
static void
seq_read(const struct wl_ctx *c, struct wl_thread *t)
{
	volatile uint64_t sink;
	uint64_t sum = 0;
	size_t i, lo, hi;

	slice(c, t->wt_tid, &lo, &hi);
	for (i = lo; i < hi && !stopped(t); i++) {
		if (!c->wc_verify)
			sum += page_sum(c, i);
		if (!page_read(c, t, i, c->wc_gen, c->wc_verify, WL_PH_TOUCH))
			break;
	}
	sink = sum;
	(void)sink;
	t->wt_pages = i - lo;
}

/* order_write: first-touch write of my contiguous 1/T of wc_order. */
static void
order_write(const struct wl_ctx *c, struct wl_thread *t)
{
	size_t i, lo, hi;

	slice(c, t->wt_tid, &lo, &hi);
	for (i = lo; i < hi && !stopped(t); i++)
		page_write(c, (size_t)c->wc_order[i], c->wc_gen);
	t->wt_pages = i - lo;
}

/*
 * timed_read: one random read of page idx, generation wc_gen, timed into
 * my histogram.  => false if it read wrong.
 */
static inline bool
timed_read(const struct wl_ctx *c, struct wl_thread *t, size_t idx,
    uint64_t gen)
{
	uint64_t t0 = now_ns();
	bool ok = page_read(c, t, idx, gen, c->wc_verify, WL_PH_TOUCH);

	hist_add(t->wt_hist, now_ns() - t0);
	t->wt_pages++;
	return ok;
}

/* rand_read: wc_ops reads of uniformly random pages of the region. */
static void
rand_read(const struct wl_ctx *c, struct wl_thread *t)
{
	uint64_t i;

	for (i = 0; i < c->wc_ops && !stopped(t); i++)
		if (!timed_read(c, t, rand_below(&t->wt_rng, c->wc_npages),
		    c->wc_gen))
			return;
}

/*
 * zipf: wc_ops reads of zipf(theta) pages; rank k is page wc_order[k - 1],
 * a fixed random permutation, so the hot pages are spread over the region.
 */
static void
zipf_read(const struct wl_ctx *c, struct wl_thread *t)
{
	uint64_t i, k;

	for (i = 0; i < c->wc_ops && !stopped(t); i++) {
		k = zipf_rank(&c->wc_zipf, &t->wt_rng);
		if (!timed_read(c, t, (size_t)c->wc_order[k - 1], c->wc_gen))
			return;
	}
}

/*
 * rand_rw: wc_ops operations on random pages of my own 1/T, half reads,
 * half writes of the whole page with its next generation; wc_pgen (mine
 * alone in my slice) says which generation a page holds.
 */
static void
rand_rw(const struct wl_ctx *c, struct wl_thread *t)
{
	size_t lo, hi, idx;
	uint64_t i, r, t0;
	uint8_t g;

	slice(c, t->wt_tid, &lo, &hi);
	if (hi == lo)
		return;
	for (i = 0; i < c->wc_ops && !stopped(t); i++) {
		r = splitmix64(&t->wt_rng);
		idx = lo + (size_t)((r >> 1) % (hi - lo));
		if ((r & 1) == 0) {
			if (!timed_read(c, t, idx, c->wc_gen +
			    c->wc_pgen[idx]))
				return;
			continue;
		}
		g = (uint8_t)(c->wc_pgen[idx] + 1);
		t0 = now_ns();
		page_write(c, idx, c->wc_gen + g);
		hist_add(t->wt_hist, now_ns() - t0);
		c->wc_pgen[idx] = g;
		t->wt_pages++;
	}
}

/* plain_alloc: len zeroed bytes of plain mmap memory. */
static void *
plain_alloc(size_t len)
{
	void *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * prepare_permutation: wc_order = a random permutation of every page index,
 * Fisher-Yates from seed, in plain mmap memory.
 * => -ENOMEM if the order cannot be mapped.
 */
static int
prepare_permutation(struct wl_ctx *c, uint64_t seed)
{
	uint64_t *order, state = seed, t;
	size_t i, j, len;

	len = c->wc_npages * sizeof(*order);
	if ((order = plain_alloc(len)) == NULL)
		return -ENOMEM;
	for (i = 0; i < c->wc_npages; i++)
		order[i] = i;
	for (i = c->wc_npages; i > 1; i--) {
		j = rand_below(&state, i);
		t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	c->wc_order = order;
	c->wc_order_len = len;
	return 0;
}

/* prepare_zipf: the rank scramble (a permutation) and the constants. */
static int
prepare_zipf(struct wl_ctx *c, uint64_t seed)
{
	zipf_init(&c->wc_zipf, c->wc_npages, c->wc_theta);
	return prepare_permutation(c, seed);
}

const struct workload workloads[] = {
	{
		.wl_name = "seq-write",
		.wl_desc = "first-touch write, each thread its own 1/T, "
		    "ascending",
		.wl_touch = seq_write,
	},
	{
		.wl_name = "rand-write",
		.wl_desc = "first-touch write in a seeded random page "
		    "order, 1/T each",
		.wl_prepare = prepare_permutation,
		.wl_touch = order_write,
	},
	{
		.wl_name = "seq-rewrite",
		.wl_desc = "populate (untimed), then write it all again, "
		    "1/T each, ascending",
		.wl_flags = WL_POPULATE,
		.wl_final = 1,
		.wl_touch = seq_rewrite,
	},
	{
		.wl_name = "seq-read",
		.wl_desc = "populate (untimed), then read it all, 1/T each, "
		    "ascending",
		.wl_flags = WL_POPULATE,
		.wl_touch = seq_read,
	},
	{
		.wl_name = "rand-read",
		.wl_desc = "populate (untimed), then --ops uniform random page "
		    "reads per thread",
		.wl_flags = WL_POPULATE | WL_OPS,
		.wl_touch = rand_read,
	},
	{
		.wl_name = "rand-rw",
		.wl_desc = "populate (untimed), then --ops random reads and "
		    "rewrites (1:1) of my 1/T",
		.wl_flags = WL_POPULATE | WL_OPS | WL_PGEN,
		.wl_touch = rand_rw,
	},
	{
		.wl_name = "zipf",
		.wl_desc = "populate (untimed), then --ops page reads, "
		    "zipf(--zipf) hot pages spread out",
		.wl_flags = WL_POPULATE | WL_OPS,
		.wl_prepare = prepare_zipf,
		.wl_touch = zipf_read,
	},
};
const size_t nworkloads = sizeof(workloads) / sizeof(workloads[0]);

/* wl_lookup: the workload called name, or NULL. */
const struct workload *
wl_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < nworkloads; i++)
		if (strcmp(workloads[i].wl_name, name) == 0)
			return &workloads[i];
	return NULL;
}

/*
 * wl_prepare: build what wl needs besides the region (wc_npages and
 * wc_theta set).
 * => -ENOMEM if it cannot, with nothing left; wl_release() undoes it.
 */
int
wl_prepare(const struct workload *wl, struct wl_ctx *c, uint64_t seed)
{
	int error;

	c->wc_order = NULL;
	c->wc_order_len = 0;
	c->wc_pgen = NULL;
	c->wc_pgen_len = 0;
	if ((wl->wl_flags & WL_PGEN) != 0) {
		if ((c->wc_pgen = plain_alloc(c->wc_npages)) == NULL)
			return -ENOMEM;
		c->wc_pgen_len = c->wc_npages;
	}
	if (wl->wl_prepare != NULL &&
	    (error = wl->wl_prepare(c, seed)) != 0) {
		wl_release(c);
		return error;
	}
	return 0;
}

/* wl_release: free what wl_prepare() built. */
void
wl_release(struct wl_ctx *c)
{
	if (c->wc_order != NULL)
		munmap(c->wc_order, c->wc_order_len);
	if (c->wc_pgen != NULL)
		munmap(c->wc_pgen, c->wc_pgen_len);
	c->wc_order = NULL;
	c->wc_order_len = 0;
	c->wc_pgen = NULL;
	c->wc_pgen_len = 0;
}
