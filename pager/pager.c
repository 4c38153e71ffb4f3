/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pager.c: the pager_*() wrappers and the registry of backends.
 *
 * The wrappers check requests before any backend sees them (page aligned,
 * inside the pager), supply defaults for the optional ops, and count.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "pager.h"
#include "swap.h"

static const struct pager_ops *const pager_registry[] = {
	&zero_pager_ops,
	&swap_pager_ops,
};

void
pager_init(struct pager *pgr, const struct pager_ops *ops, voff_t size)
{
	pgr->pgr_ops = ops;
	vm_mutex_init(&pgr->pgr_lock);
	atomic_init(&pgr->pgr_ref, 1);
	pgr->pgr_size = size;
}

void
pager_ref(struct pager *pgr)
{
	atomic_fetch_add_explicit(&pgr->pgr_ref, 1, memory_order_relaxed);
}

void
pager_unref(struct pager *pgr)
{
	if (atomic_fetch_sub_explicit(&pgr->pgr_ref, 1,
	    memory_order_acq_rel) != 1)
		return;
	if (pgr->pgr_ops->pgo_destroy != NULL)
		pgr->pgr_ops->pgo_destroy(pgr);
}

/* pager_req_ok: the request is page aligned and inside the pager */
static bool
pager_req_ok(struct pager *pgr, const struct pager_req *req)
{
	voff_t len = ptoa((voff_t)req->pr_npages);

	if (req->pr_npages <= 0 || (req->pr_off & PAGE_MASK) != 0 ||
	    req->pr_buf == NULL)
		return false;
	return pgr->pgr_size == 0 || (req->pr_off <= pgr->pgr_size &&
	    len <= pgr->pgr_size - req->pr_off);
}

int
pager_get(struct pager *pgr, struct pager_req *req)
{
	if (!pager_req_ok(pgr, req))
		return -EINVAL;
	return pgr->pgr_ops->pgo_get(pgr, req);
}

int
pager_put(struct pager *pgr, struct pager_req *req)
{
	if (pgr->pgr_ops->pgo_put == NULL)
		return -EOPNOTSUPP;
	if (!pager_req_ok(pgr, req))
		return -EINVAL;
	return pgr->pgr_ops->pgo_put(pgr, req);
}

void
pager_cluster(struct pager *pgr, voff_t off, voff_t *lop, voff_t *hip)
{
	VM_ASSERT((off & PAGE_MASK) == 0);
	if (pgr->pgr_ops->pgo_cluster != NULL) {
		pgr->pgr_ops->pgo_cluster(pgr, off, lop, hip);
		VM_ASSERT(*lop <= off && off < *hip);
		return;
	}
	/* default: no clustering beyond the page itself */
	*lop = off;
	*hip = off + PAGE_SIZE;
}

int
pager_discard(struct pager *pgr, voff_t start, voff_t end)
{
	if (pgr->pgr_ops->pgo_discard == NULL)
		return -EOPNOTSUPP;
	if (start > end || ((start | end) & PAGE_MASK) != 0 ||
	    (pgr->pgr_size != 0 && end > pgr->pgr_size))
		return -EINVAL;
	return pgr->pgr_ops->pgo_discard(pgr, start, end);
}

const struct pager_ops *
pager_lookup(const char *name)
{
	for (size_t i = 0; i < nitems(pager_registry); i++)
		if (strcmp(pager_registry[i]->name, name) == 0)
			return pager_registry[i];
	return NULL;
}
