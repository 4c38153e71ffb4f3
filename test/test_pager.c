/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pager.c: the pager_*() wrappers, the registry and the zero pager.
 *
 * The wrappers are checked against a small in-memory backend defined here
 * (struct mem_pager embeds struct pager first, as real backends do) that
 * counts every call, so a test can tell a request the wrapper rejected
 * from one the backend saw.  mem_check() is this file's consistency check:
 * the backing array holds exactly what was put, page by page.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "pager.h"
#include "swap.h"
#include "vm.h"

#define GARBAGE		0xa5

static void *
garbage_pages(size_t npages)
{
	void *buf = malloc(ptoa(npages));

	cr_assert_not_null(buf);
	memset(buf, GARBAGE, ptoa(npages));
	return buf;
}

/* ---------------------------------------------------------------- */
/* the zero pager */

Test(pager, zero_get_fills_buffer_with_zeros, .timeout = 10)
{
	struct pager *zp = zero_pager();
	struct pager_req req = { 0 };
	char *buf = garbage_pages(9);

	req.pr_off = ptoa(3);
	req.pr_npages = 8;
	req.pr_buf = buf;
	cr_assert_eq(pager_get(zp, NULL, &req), 0);
	cr_assert_eq(req.pr_buf, buf, "no loan without PGO_LOANOK");
	cr_assert(test_all_bytes(buf, 0, ptoa(8)), "every byte zero");
	cr_assert_eq(test_zero_bad(buf, 8), -1);
	cr_assert(test_all_bytes(buf + ptoa(8), GARBAGE, PAGE_SIZE),
	    "the page past the request is untouched");
	free(buf);
}

Test(pager, zero_get_at_large_offset, .timeout = 10)
{
	struct pager *zp = zero_pager();
	struct pager_req req = { 0 };
	char *buf = garbage_pages(1);

	req.pr_off = (voff_t)1 << 50;	/* size 0: unbounded */
	req.pr_npages = 1;
	req.pr_buf = buf;
	req.pr_flags = 0;
	cr_assert_eq(pager_get(zp, NULL, &req), 0);
	cr_assert(test_all_bytes(buf, 0, PAGE_SIZE));
	free(buf);
}

Test(pager, zero_loan_lends_shared_zeros, .timeout = 10)
{
	struct pager *zp = zero_pager();
	struct pager_req req = { 0 };
	char *buf = garbage_pages(ZERO_LOAN_PAGES);
	void *loan;

	req.pr_off = 0;
	req.pr_npages = 16;
	req.pr_flags = PGO_LOANOK;
	req.pr_buf = buf;
	cr_assert_eq(pager_get(zp, NULL, &req), 0);
	loan = req.pr_buf;
	cr_assert_neq(loan, buf, "16 pages are lent");
	cr_assert(page_aligned(loan));
	cr_assert(test_all_bytes(loan, 0, ptoa(16)));
	cr_assert(test_all_bytes(buf, GARBAGE, ptoa(ZERO_LOAN_PAGES)),
	    "a loan leaves the caller's buffer alone");

	/* the largest loan, at another offset: the same zeros */
	req.pr_off = ptoa(1000);
	req.pr_npages = ZERO_LOAN_PAGES;
	req.pr_buf = buf;
	cr_assert_eq(pager_get(zp, NULL, &req), 0);
	cr_assert_neq(req.pr_buf, buf, "ZERO_LOAN_PAGES pages are lent");
	cr_assert_eq(req.pr_buf, loan, "one shared run of zeros");
	cr_assert(test_all_bytes(req.pr_buf, 0, ptoa(ZERO_LOAN_PAGES)));
	cr_assert(test_all_bytes(buf, GARBAGE, ptoa(ZERO_LOAN_PAGES)));
	free(buf);
}

/*
 * map_prot: the "rwxp" permissions of the mapping holding addr, from
 * /proc/self/maps (a write to check would be a SIGSEGV, which ASan turns
 * into an abort).
 */
static void
map_prot(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi;
	char line[512];
	bool found = false;

	cr_assert_not_null(f);
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
			continue;
		found = lo <= (uintptr_t)addr && (uintptr_t)addr < hi;
	}
	fclose(f);
	cr_assert(found, "%p is not mapped", addr);
}

Test(pager, zero_loan_is_read_only, .timeout = 10)
{
	struct pager *zp = zero_pager();
	struct pager_req req = { 0 };
	char *buf = garbage_pages(1), perms[5];

	req.pr_npages = 1;
	req.pr_flags = PGO_LOANOK;
	req.pr_buf = buf;
	cr_assert_eq(pager_get(zp, NULL, &req), 0);
	cr_assert_neq(req.pr_buf, buf);
	map_prot(req.pr_buf, perms);
	cr_assert_eq(perms[0], 'r', "loan perms %s", perms);
	cr_assert_eq(perms[1], '-', "loan is writable: %s", perms);
	map_prot((char *)req.pr_buf + ptoa(ZERO_LOAN_PAGES - 1), perms);
	cr_assert_eq(perms[1], '-', "loan's last page writable: %s", perms);
	free(buf);
}

Test(pager, zero_loan_too_large_fills_buffer, .timeout = 10)
{
	struct pager *zp = zero_pager();
	struct pager_req req = { 0 };
	const int n = ZERO_LOAN_PAGES + 1;
	char *buf = garbage_pages((size_t)n + 1);

	req.pr_off = ptoa(7);
	req.pr_npages = n;
	req.pr_flags = PGO_LOANOK;
	req.pr_buf = buf;
	cr_assert_eq(pager_get(zp, NULL, &req), 0);
	cr_assert_eq(req.pr_buf, buf, "too large to lend: filled instead");
	cr_assert(test_all_bytes(buf, 0, ptoa((size_t)n)));
	cr_assert(test_all_bytes(buf + ptoa((size_t)n), GARBAGE, PAGE_SIZE));
	free(buf);
}

Test(pager, zero_put_and_discard_not_supported, .timeout = 10)
{
	struct pager *zp = zero_pager();
	struct pager_req req = { 0 };
	char *buf = garbage_pages(2);

	req.pr_off = 0;
	req.pr_npages = 2;
	req.pr_buf = buf;
	req.pr_flags = 0;
	cr_assert_eq(pager_put(zp, NULL, &req), -EOPNOTSUPP);
	cr_assert(test_all_bytes(buf, GARBAGE, ptoa(2)));
	cr_assert_eq(pager_discard(zp, 0, ptoa(2)), -EOPNOTSUPP);
	/* and still reads zeros */
	cr_assert_eq(pager_get(zp, NULL, &req), 0);
	cr_assert(test_all_bytes(buf, 0, ptoa(2)));
	free(buf);
}

Test(pager, zero_get_rejects_bad_requests, .timeout = 10)
{
	struct pager *zp = zero_pager();
	struct pager_req req;
	char *buf = garbage_pages(4);
	const struct {
		voff_t	off;
		int	npages;
		const char *what;
	} bad[] = {
		{ 100, 1, "unaligned offset" },
		{ ptoa(2) + 1, 1, "unaligned offset" },
		{ PAGE_SIZE - 1, 4, "unaligned offset" },
		{ 0, 0, "no pages" },
		{ ptoa(5), -1, "negative pages" },
		{ 0, INT32_MIN, "negative pages" },
	};

	for (size_t i = 0; i < nitems(bad); i++) {
		for (int loan = 0; loan < 2; loan++) {
			memset(&req, 0, sizeof(req));
			req.pr_off = bad[i].off;
			req.pr_npages = bad[i].npages;
			req.pr_flags = loan ? PGO_LOANOK : 0;
			req.pr_buf = buf;
			cr_assert_eq(pager_get(zp, NULL, &req), -EINVAL,
			    "%s: off %#llx npages %d", bad[i].what,
			    (unsigned long long)bad[i].off, bad[i].npages);
			cr_assert_eq(req.pr_buf, buf);
			cr_assert(test_all_bytes(buf, GARBAGE, ptoa(4)),
			    "%s: buffer touched", bad[i].what);
		}
	}
	free(buf);
}

Test(pager, zero_cluster_covers_offset, .timeout = 10)
{
	struct pager *zp = zero_pager();
	const voff_t offs[] = { 0, PAGE_SIZE, ptoa(12345), (voff_t)1 << 40,
	    ((voff_t)1 << 62) - PAGE_SIZE };
	voff_t lo, hi;

	for (size_t i = 0; i < nitems(offs); i++) {
		lo = hi = 1;
		pager_cluster(zp, offs[i], &lo, &hi);
		cr_assert(lo <= offs[i] && offs[i] < hi, "off %#llx: [%#llx, "
		    "%#llx)", (unsigned long long)offs[i],
		    (unsigned long long)lo, (unsigned long long)hi);
		cr_assert_eq(lo & PAGE_MASK, 0);
		cr_assert_eq(hi & PAGE_MASK, 0);
	}
}

Test(pager, zero_pager_is_one_static_instance, .timeout = 10)
{
	struct pager *zp = zero_pager();

	cr_assert_eq(zero_pager(), zp);
	cr_assert_eq(zp->pgr_ops, &zero_pager_ops);
	cr_assert_eq(zp->pgr_size, 0, "unbounded");
	cr_assert_geq(atomic_load(&zp->pgr_ref), 1);
}

Test(pager, lookup_finds_backends_by_name, .timeout = 10)
{
	cr_assert_eq(pager_lookup("zero"), &zero_pager_ops);
	cr_assert_str_eq(pager_lookup("zero")->name, "zero");
	cr_assert_eq(pager_lookup("swap"), &swap_pager_ops);
	cr_assert_null(pager_lookup("nope"));
	cr_assert_null(pager_lookup(""));
	cr_assert_null(pager_lookup("zer"));
	cr_assert_null(pager_lookup("zero "));
}

/* ---------------------------------------------------------------- */
/* an in-memory backend that counts what reaches it */

#define MEM_NPAGES	16

struct mem_pager {
	struct pager	 mp_pgr;	/* first: container_of back */
	char		*mp_data;	/* MEM_NPAGES pages */
	int		 mp_nget, mp_nput, mp_ncluster, mp_ndiscard;
	int		 mp_ndestroy;
	voff_t		 mp_lastoff;
	int		 mp_lastn;
};

static int mem_destroyed;	/* destroys of heap mem_pagers */

static struct mem_pager *
mem_of(struct pager *pgr)
{
	return container_of(pgr, struct mem_pager, mp_pgr);
}

static int
mem_get(struct pager *pgr, struct pager_queue *q,
    struct pager_req *req)
{
	struct mem_pager *mp = mem_of(pgr);

	mp->mp_nget++;
	mp->mp_lastoff = req->pr_off;
	mp->mp_lastn = req->pr_npages;
	cr_assert_leq(req->pr_off + ptoa((voff_t)req->pr_npages),
	    ptoa((voff_t)MEM_NPAGES), "backend got an out-of-range get");
	memcpy(req->pr_buf, mp->mp_data + req->pr_off,
	    ptoa((size_t)req->pr_npages));
	return 0;
}

static int
mem_put(struct pager *pgr, struct pager_queue *q,
    struct pager_req *req)
{
	struct mem_pager *mp = mem_of(pgr);

	mp->mp_nput++;
	mp->mp_lastoff = req->pr_off;
	mp->mp_lastn = req->pr_npages;
	cr_assert_leq(req->pr_off + ptoa((voff_t)req->pr_npages),
	    ptoa((voff_t)MEM_NPAGES), "backend got an out-of-range put");
	memcpy(mp->mp_data + req->pr_off, req->pr_buf,
	    ptoa((size_t)req->pr_npages));
	return 0;
}

/* widest cluster: the aligned 4-page group around off */
static void
mem_cluster(struct pager *pgr, voff_t off, voff_t *lop, voff_t *hip)
{
	mem_of(pgr)->mp_ncluster++;
	*lop = off & ~(voff_t)(ptoa(4) - 1);
	*hip = *lop + ptoa(4);
}

static int
mem_discard(struct pager *pgr, voff_t start, voff_t end)
{
	struct mem_pager *mp = mem_of(pgr);

	mp->mp_ndiscard++;
	/* out of range: record it, don't scribble past mp_data */
	if (end > ptoa((voff_t)MEM_NPAGES))
		return -EFAULT;
	memset(mp->mp_data + start, 0, end - start);
	return 0;
}

static void
mem_destroy(struct pager *pgr)
{
	mem_of(pgr)->mp_ndestroy++;
}

static void
mem_destroy_free(struct pager *pgr)
{
	struct mem_pager *mp = mem_of(pgr);

	mem_destroyed++;
	free(mp->mp_data);
	free(mp);
}

static const struct pager_ops mem_pager_ops = {
	.name = "test-mem", .pgo_get = mem_get, .pgo_put = mem_put,
	.pgo_cluster = mem_cluster, .pgo_discard = mem_discard,
	.pgo_destroy = mem_destroy,
};

/* the minimal backend: get only, defaults for the rest */
static const struct pager_ops mem_min_ops = {
	.name = "test-min", .pgo_get = mem_get, .pgo_destroy = mem_destroy,
};

static const struct pager_ops mem_heap_ops = {
	.name = "test-heap", .pgo_get = mem_get,
	.pgo_destroy = mem_destroy_free,
};

static void
mem_init(struct mem_pager *mp, const struct pager_ops *ops)
{
	memset(mp, 0, sizeof(*mp));
	mp->mp_data = calloc(MEM_NPAGES, PAGE_SIZE);
	cr_assert_not_null(mp->mp_data);
	pager_init(&mp->mp_pgr, ops, ptoa((voff_t)MEM_NPAGES));
	cr_assert_eq(mp->mp_pgr.pgr_ops, ops);
	cr_assert_eq(mp->mp_pgr.pgr_size, ptoa((voff_t)MEM_NPAGES));
	cr_assert_eq(atomic_load(&mp->mp_pgr.pgr_ref), 1);
}

/* mem_check: page p of the backing store holds generation gen[p] (0: zero) */
static void
mem_check(struct mem_pager *mp, const uint64_t gen[MEM_NPAGES])
{
	for (int p = 0; p < MEM_NPAGES; p++) {
		const char *pg = mp->mp_data + ptoa((size_t)p);

		if (gen[p] == 0)
			cr_assert_eq(test_zero_bad(pg, 1), -1, "page %d", p);
		else
			cr_assert_eq(test_pattern_bad(pg, 1, (size_t)p,
			    gen[p]), -1, "page %d gen %llu", p,
			    (unsigned long long)gen[p]);
	}
}

static void
mem_fini(struct mem_pager *mp)
{
	pager_unref(&mp->mp_pgr);
	free(mp->mp_data);
}

static struct pager_req
mkreq(voff_t off, int npages, void *buf)
{
	struct pager_req req = { 0 };

	req.pr_off = off;
	req.pr_npages = npages;
	req.pr_flags = 0;
	req.pr_buf = buf;
	return req;
}

Test(pager, wrappers_route_calls_to_backend, .timeout = 10)
{
	struct mem_pager mp;
	struct pager_req req;
	uint64_t gen[MEM_NPAGES] = { 0 };
	char *buf = garbage_pages(MEM_NPAGES);
	voff_t lo, hi;

	mem_init(&mp, &mem_pager_ops);
	mem_check(&mp, gen);

	/* put pages [3, 9) in generation 1 */
	test_pattern_fill(buf, 6, 3, 1);
	req = mkreq(ptoa(3), 6, buf);
	cr_assert_eq(pager_put(&mp.mp_pgr, NULL, &req), 0);
	cr_assert_eq(mp.mp_nput, 1);
	cr_assert_eq(mp.mp_lastoff, ptoa(3));
	cr_assert_eq(mp.mp_lastn, 6);
	for (int p = 3; p < 9; p++)
		gen[p] = 1;
	mem_check(&mp, gen);

	/* overwrite [5, 6) in generation 2 */
	test_pattern_fill(buf, 1, 5, 2);
	req = mkreq(ptoa(5), 1, buf);
	cr_assert_eq(pager_put(&mp.mp_pgr, NULL, &req), 0);
	gen[5] = 2;
	mem_check(&mp, gen);

	/* get [2, 10) back: zero, 1, 1, 2, 1, 1, 1, zero */
	memset(buf, GARBAGE, ptoa(MEM_NPAGES));
	req = mkreq(ptoa(2), 8, buf);
	cr_assert_eq(pager_get(&mp.mp_pgr, NULL, &req), 0);
	cr_assert_eq(mp.mp_nget, 1);
	cr_assert_eq(mp.mp_lastoff, ptoa(2));
	cr_assert_eq(mp.mp_lastn, 8);
	cr_assert_eq(test_zero_bad(buf, 1), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(1), 2, 3, 1), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(3), 1, 5, 2), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(4), 3, 6, 1), -1);
	cr_assert_eq(test_zero_bad(buf + ptoa(7), 1), -1);
	cr_assert(test_all_bytes(buf + ptoa(8), GARBAGE, ptoa(8)));

	/* cluster goes to the backend's op */
	pager_cluster(&mp.mp_pgr, ptoa(6), &lo, &hi);
	cr_assert_eq(mp.mp_ncluster, 1);
	cr_assert_eq(lo, ptoa(4));
	cr_assert_eq(hi, ptoa(8));

	/* discard [4, 6) */
	cr_assert_eq(pager_discard(&mp.mp_pgr, ptoa(4), ptoa(6)), 0);
	cr_assert_eq(mp.mp_ndiscard, 1);
	gen[4] = gen[5] = 0;
	mem_check(&mp, gen);
	cr_assert_eq(mp.mp_ndestroy, 0);
	mem_fini(&mp);
	cr_assert_eq(mp.mp_ndestroy, 1);
	free(buf);
}

static int
fail_get(struct pager *pgr, struct pager_queue *q,
    struct pager_req *req)
{
	mem_of(pgr)->mp_nget++;
	return -EIO;
}

static int
async_put(struct pager *pgr, struct pager_queue *q,
    struct pager_req *req)
{
	mem_of(pgr)->mp_nput++;
	return -EINPROGRESS;
}

static void
count_done(struct pager_req *req)
{
	(*(int *)req->pr_arg)++;
}

Test(pager, wrappers_pass_backend_results_through, .timeout = 10)
{
	static const struct pager_ops failing = {
		.name = "test-fail", .pgo_get = fail_get, .pgo_put = async_put,
		.pgo_discard = mem_discard, .pgo_destroy = mem_destroy,
	};
	struct mem_pager mp;
	struct pager_req req;
	struct pager_queue *q;
	char *buf = garbage_pages(1);
	int ndone = 0;

	mem_init(&mp, &failing);
	req = mkreq(0, 1, buf);
	cr_assert_eq(pager_get(&mp.mp_pgr, NULL, &req), -EIO);
	/* a request in flight is counted on its queue until it finishes */
	cr_assert_eq(pager_queue_create(&mp.mp_pgr, 1, &q), 0);
	req.pr_done = count_done;
	req.pr_arg = &ndone;
	cr_assert_eq(pager_put(&mp.mp_pgr, q, &req), -EINPROGRESS);
	cr_assert_eq(q->pq_inflight, 1);
	cr_assert_eq(pager_put(&mp.mp_pgr, q, &req), -EBUSY, "depth 1");
	pager_finish(q, &req);
	cr_assert_eq(q->pq_inflight, 0);
	cr_assert_eq(ndone, 1);
	pager_queue_destroy(q);
	cr_assert_eq(mp.mp_nget, 1);
	cr_assert_eq(mp.mp_nput, 1);
	cr_assert_eq(pager_discard(&mp.mp_pgr, 0, 0), 0, "empty discard");
	cr_assert_eq(mp.mp_ndiscard, 1);
	mem_fini(&mp);
	cr_assert_eq(mp.mp_ndestroy, 1);
	free(buf);
}

Test(pager, get_and_put_out_of_range_never_reach_backend, .timeout = 10)
{
	struct mem_pager mp;
	struct pager_req req;
	char *buf = garbage_pages(MEM_NPAGES + 2);
	const struct {
		voff_t	off;
		int	npages;
	} bad[] = {
		{ ptoa(15), 2 },		/* straddles the end */
		{ ptoa(16), 1 },		/* starts at the end */
		{ ptoa(17), 1 },		/* past the end */
		{ 0, MEM_NPAGES + 1 },		/* longer than pager */
		{ ptoa(1), MEM_NPAGES },
		{ (voff_t)-PAGE_SIZE, 1 },	/* off + len wraps */
		{ (voff_t)-PAGE_SIZE, 2 },
		{ ptoa(3) + 8, 1 },		/* unaligned */
		{ ptoa(3), 0 },			/* empty */
		{ ptoa(3), -2 },
	};

	mem_init(&mp, &mem_pager_ops);
	for (size_t i = 0; i < nitems(bad); i++) {
		req = mkreq(bad[i].off, bad[i].npages, buf);
		cr_assert_eq(pager_get(&mp.mp_pgr, NULL, &req), -EINVAL,
		    "get off %#llx npages %d", (unsigned long long)bad[i].off,
		    bad[i].npages);
		req = mkreq(bad[i].off, bad[i].npages, buf);
		cr_assert_eq(pager_put(&mp.mp_pgr, NULL, &req), -EINVAL,
		    "put off %#llx npages %d", (unsigned long long)bad[i].off,
		    bad[i].npages);
	}
	req = mkreq(0, 1, NULL);
	cr_assert_eq(pager_get(&mp.mp_pgr, NULL, &req), -EINVAL, "no buffer");
	cr_assert_eq(pager_put(&mp.mp_pgr, NULL, &req), -EINVAL, "no buffer");
	cr_assert_eq(mp.mp_nget, 0, "backend saw a bad get");
	cr_assert_eq(mp.mp_nput, 0, "backend saw a bad put");
	cr_assert(test_all_bytes(buf, GARBAGE, ptoa(MEM_NPAGES + 2)));

	/* the edges themselves are fine */
	req = mkreq(ptoa(15), 1, buf);
	cr_assert_eq(pager_get(&mp.mp_pgr, NULL, &req), 0);
	req = mkreq(0, MEM_NPAGES, buf);
	cr_assert_eq(pager_put(&mp.mp_pgr, NULL, &req), 0);
	cr_assert_eq(mp.mp_nget, 1);
	cr_assert_eq(mp.mp_nput, 1);
	mem_fini(&mp);
	free(buf);
}

Test(pager, discard_bad_range_never_reaches_backend, .timeout = 10)
{
	struct mem_pager mp;

	mem_init(&mp, &mem_pager_ops);
	cr_assert_eq(pager_discard(&mp.mp_pgr, ptoa(2) + 1, ptoa(4)),
	    -EINVAL, "unaligned start");
	cr_assert_eq(pager_discard(&mp.mp_pgr, ptoa(2), ptoa(4) - 1),
	    -EINVAL, "unaligned end");
	cr_assert_eq(pager_discard(&mp.mp_pgr, ptoa(4), ptoa(2)), -EINVAL,
	    "start > end");
	cr_assert_eq(mp.mp_ndiscard, 0);
	mem_fini(&mp);
}

/*
 * pager.c: "The wrappers check requests before any backend sees them
 * (page aligned, inside the pager)": a discard past pgr_size too.
 */
Test(pager, discard_out_of_range_never_reaches_backend, .timeout = 10)
{
	struct mem_pager mp;

	mem_init(&mp, &mem_pager_ops);
	cr_assert_eq(pager_discard(&mp.mp_pgr, ptoa(14), ptoa(18)), -EINVAL,
	    "discard straddling the end");
	cr_assert_eq(pager_discard(&mp.mp_pgr, ptoa(20), ptoa(24)), -EINVAL,
	    "discard past the end");
	cr_assert_eq(mp.mp_ndiscard, 0, "backend saw %d out-of-range discards",
	    mp.mp_ndiscard);
	mem_fini(&mp);
}

Test(pager, missing_ops_get_defaults, .timeout = 10)
{
	struct mem_pager mp;
	struct pager_req req;
	char *buf = garbage_pages(1);
	const voff_t offs[] = { 0, ptoa(5), ptoa(15) };
	voff_t lo, hi;

	mem_init(&mp, &mem_min_ops);
	for (size_t i = 0; i < nitems(offs); i++) {
		lo = hi = 1;
		pager_cluster(&mp.mp_pgr, offs[i], &lo, &hi);
		cr_assert_eq(lo, offs[i], "default cluster is the page");
		cr_assert_eq(hi, offs[i] + PAGE_SIZE);
	}
	cr_assert_eq(mp.mp_ncluster, 0);
	req = mkreq(0, 1, buf);
	cr_assert_eq(pager_put(&mp.mp_pgr, NULL, &req), -EOPNOTSUPP);
	cr_assert_eq(pager_discard(&mp.mp_pgr, 0, PAGE_SIZE), -EOPNOTSUPP);
	cr_assert_eq(mp.mp_nput + mp.mp_ndiscard, 0);
	cr_assert(test_all_bytes(buf, GARBAGE, PAGE_SIZE));
	mem_fini(&mp);
	free(buf);
}

Test(pager, last_unref_destroys_once, .timeout = 10)
{
	struct mem_pager mp;

	mem_init(&mp, &mem_pager_ops);
	pager_ref(&mp.mp_pgr);
	pager_ref(&mp.mp_pgr);
	cr_assert_eq(atomic_load(&mp.mp_pgr.pgr_ref), 3);
	pager_unref(&mp.mp_pgr);
	pager_unref(&mp.mp_pgr);
	cr_assert_eq(mp.mp_ndestroy, 0, "destroyed with a reference left");
	cr_assert_eq(atomic_load(&mp.mp_pgr.pgr_ref), 1);
	pager_unref(&mp.mp_pgr);
	cr_assert_eq(mp.mp_ndestroy, 1);
	free(mp.mp_data);
}

Test(pager, destroy_may_free_the_pager, .timeout = 10)
{
	struct mem_pager *mp = malloc(sizeof(*mp));

	cr_assert_not_null(mp);
	mem_init(mp, &mem_heap_ops);
	pager_ref(&mp->mp_pgr);
	pager_unref(&mp->mp_pgr);
	cr_assert_eq(mem_destroyed, 0);
	pager_unref(&mp->mp_pgr);	/* frees mp: not touched after */
	cr_assert_eq(mem_destroyed, 1);
}

Test(pager, unref_without_destroy_op, .timeout = 10)
{
	static const struct pager_ops nodestroy = {
		.name = "test-nodestroy", .pgo_get = mem_get,
	};
	struct mem_pager mp;

	mem_init(&mp, &nodestroy);
	pager_ref(&mp.mp_pgr);
	pager_unref(&mp.mp_pgr);
	pager_unref(&mp.mp_pgr);
	cr_assert_eq(atomic_load(&mp.mp_pgr.pgr_ref), 0);
	free(mp.mp_data);
}
