/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pager.h: backing stores behind one interface (UVM's uvm_pagerops).
 *
 * A pager supplies the data of the lower layer (an entry's e_obj: the zero
 * pager for anonymous memory, a file for file-backed regions) and stores
 * anonymous pages (the swap pager).  Offsets are bytes, page aligned.
 *
 * Requests are asynchronous-capable: pgo_get/pgo_put either complete before
 * they return (0) or return -EINPROGRESS and later call pr_done from the
 * fault engine's event loop.  Core code calls the pager_*() wrappers, never
 * pgr_ops directly; the wrappers hold the assertions, defaults and counters.
 *
 * Locks protecting struct members in this file:
 *	I  immutable after creation   a  atomic   p  pgr_lock
 */
#ifndef UPVM_PAGER_H
#define UPVM_PAGER_H

#include <stdatomic.h>

#include "../runtime/lock.h"
#include "../runtime/vm.h"

struct pager;

/* pr_flags */
#define PGO_LOANOK	0x1	/* get: the pager may point pr_buf at its own
				   read-only memory instead of filling it */
#define PGO_SYNC	0x2	/* complete before returning */

struct pager_req {
	voff_t		 pr_off;	/* byte offset in the pager */
	int		 pr_npages;
	int		 pr_flags;	/* PGO_* */
	void		*pr_buf;	/* in: caller's buffer of pr_npages;
					   out (PGO_LOANOK): maybe the pager's */
	int		 pr_error;	/* result, for async completion */
	void		(*pr_done)(struct pager_req *);
	void		*pr_arg;	/* caller's */
};

struct pager_ops {
	const char *name;		/* registry key, logs */
	/* => fill pr_buf with pages [pr_off, pr_off + pr_npages) */
	int	(*pgo_get)(struct pager *, struct pager_req *);
	/* optional: store pr_buf's pages at pr_off */
	int	(*pgo_put)(struct pager *, struct pager_req *);
	/* optional: widest I/O cluster [*lop, *hip) around off (bytes) */
	void	(*pgo_cluster)(struct pager *, voff_t off, voff_t *lop,
		    voff_t *hip);
	/* optional: forget backing store for [start, end) */
	int	(*pgo_discard)(struct pager *, voff_t start, voff_t end);
	/* release the pager's resources; pager_unref() calls it last */
	void	(*pgo_destroy)(struct pager *);
};

struct pager {
	const struct pager_ops *pgr_ops;	/* [I] */
	struct vm_mutex	 pgr_lock;
	atomic_int	 pgr_ref;		/* [a] entries + holders */
	voff_t		 pgr_size;		/* [p] bytes; 0 = unbounded */
};

/* pager_init: called by a backend's constructor for its embedded pager */
void pager_init(struct pager *, const struct pager_ops *, voff_t size);
void pager_ref(struct pager *);
void pager_unref(struct pager *);

/*
 * pager_get / pager_put: see pgo_get / pgo_put.
 * => pager unlocked (backends lock what they need, never across I/O).
 * => 0 done, -EINPROGRESS (pr_done called later), -EOPNOTSUPP (no put),
 *    -EINVAL (range outside the pager), -EIO.
 */
int pager_get(struct pager *, struct pager_req *);
int pager_put(struct pager *, struct pager_req *);
void pager_cluster(struct pager *, voff_t off, voff_t *lop, voff_t *hip);
int pager_discard(struct pager *, voff_t start, voff_t end);

/* the registry: backends by name; NULL if unknown */
const struct pager_ops *pager_lookup(const char *name);

/*
 * The zero pager: every page reads as zeros; nothing can be stored.  With
 * PGO_LOANOK a get lends ZERO_LOAN_PAGES of shared zeros instead of a
 * memset.  One static instance, never destroyed.
 */
#define ZERO_LOAN_PAGES	1024
extern const struct pager_ops zero_pager_ops;
struct pager *zero_pager(void);

#endif /* UPVM_PAGER_H */
