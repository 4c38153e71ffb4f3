/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zero.c: the zero pager, the lower layer of anonymous memory.
 *
 * Every page reads as zeros and nothing can be stored (no pgo_put): an
 * anonymous page that must be kept goes to an anon and the swap pager.
 * With PGO_LOANOK a get lends a shared, read-only run of zeros, so that
 * resolving a cluster of never-touched pages costs no memset: the
 * UFFDIO_COPY reads the same cached zeros for every page.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "pager.h"
#include "sys.h"

static struct pager zero_pgr;
static void *zero_loan;		/* ZERO_LOAN_PAGES read-only zero pages */
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static int
zero_get(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	if ((req->pr_flags & PGO_LOANOK) && zero_loan != NULL &&
	    req->pr_npages <= ZERO_LOAN_PAGES) {
		req->pr_buf = zero_loan;
		return 0;
	}
	memset(req->pr_buf, 0, ptoa((size_t)req->pr_npages));
	return 0;
}

static void
zero_cluster(struct pager *pgr, voff_t off, voff_t *lop, voff_t *hip)
{
	/* any cluster costs the same: no I/O behind it */
	*lop = 0;
	*hip = (voff_t)-1 & ~(voff_t)PAGE_MASK;
}

const struct pager_ops zero_pager_ops = {
	.name = "zero",
	.pgo_get = zero_get,
	.pgo_cluster = zero_cluster,
};

static void
zero_setup(void)
{
	/* never written: the kernel backs every page with its zero page */
	void *p = raw_mmap(NULL, ptoa((size_t)ZERO_LOAN_PAGES), PROT_READ,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	zero_loan = raw_mmap_failed(p) ? NULL : p;
	pager_init(&zero_pgr, &zero_pager_ops, 0);
}

struct pager *
zero_pager(void)
{
	pthread_once(&zero_once, zero_setup);
	return &zero_pgr;
}
