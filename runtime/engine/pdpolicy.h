/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pdpolicy.h: the pageout policy, pure (no locks, threads or I/O), after
 * NetBSD's uvm_pdpolicy: when to page out, how much, and which units.
 *
 * Watermarks: the daemon starts when resident pages pass pd_high and frees
 * down to pd_low; faults wait when resident pages reach budget + slack.
 *
 * Victims: a clock (second chance) over units of AMAP_UNIT pages in
 * address order.  A unit whose reference bit is set (a fault resolved,
 * paged in or dirtied one of its pages since the hand last passed) loses
 * the bit and is skipped; a unit without it is a victim.  The units come
 * from the mechanism through pdpol_unit_ops, so the policy tests without
 * a map.
 */
#ifndef UPVM_PDPOLICY_H
#define UPVM_PDPOLICY_H

#include <stdbool.h>
#include <stdint.h>

struct pdpol_marks {
	long	pm_budget;	/* pages */
	long	pm_high;	/* start paging out above this */
	long	pm_low;		/* stop at this */
	long	pm_limit;	/* faults wait at this: budget + slack */
};

/*
 * pdpol_marks: the watermarks for a budget of `budget` pages with `slack`
 * pages of faults in flight allowed above it.  high = budget - budget/64,
 * low = budget - budget/32, each at least 64 pages apart.
 */
void pdpol_marks(long budget, long slack, struct pdpol_marks *);

/* pdpol_want: pages to free now (0: below the high watermark) */
long pdpol_want(const struct pdpol_marks *, long resident, bool running);

struct pdpol_unit_ops {
	/* the unit after `unit` in address order; wraps to the first;
	   false if there is none at all */
	bool	(*pu_next)(void *arg, uint64_t unit, uint64_t *nextp);
	/* test and clear the unit's reference bit */
	bool	(*pu_referenced)(void *arg, uint64_t unit);
	/* resident pages the unit holds that can be paged out now */
	long	(*pu_evictable)(void *arg, uint64_t unit);
};

struct pdpol_clock {
	uint64_t	pc_hand;	/* the unit the hand points at */
	bool		pc_valid;	/* pc_hand names a unit */
};

/*
 * pdpol_select: move the hand, choosing victim units until their
 * evictable pages reach `want` or `max` units are chosen, looking at no
 * more than `budget_units` units and going round no more than needed to
 * see every unit twice (one turn to clear reference bits, one to find them
 * still clear: a hand that skips empty units goes round in fewer steps),
 * and never choosing one unit twice.
 * => returns the number of units put in victims[].
 */
int pdpol_select(struct pdpol_clock *, const struct pdpol_unit_ops *,
    void *arg, long want, uint64_t *victims, int max, long budget_units);

#endif /* UPVM_PDPOLICY_H */
