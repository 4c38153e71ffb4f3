/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pdpolicy_clock.c: watermarks and the second-chance clock (pure; see
 * pdpolicy.h).
 */
#include "pdpolicy.h"
#include "vm.h"

#define PD_MIN_GAP	64	/* pages between watermarks, at least */

void
pdpol_marks(long budget, long slack, struct pdpol_marks *m)
{
	/* narrow: memory freed below the budget is cache thrown away */
	long gap = MAX(budget / 64, PD_MIN_GAP);

	m->pm_budget = budget;
	m->pm_high = MAX(budget - gap, 1);
	m->pm_low = MAX(budget - 2 * gap, 0);
	m->pm_limit = budget + slack;
}

long
pdpol_want(const struct pdpol_marks *m, long resident, bool running)
{
	/* hysteresis: once started, go on down to the low watermark */
	if (resident > m->pm_high || (running && resident > m->pm_low))
		return resident - m->pm_low;
	return 0;
}

int
pdpol_select(struct pdpol_clock *c, const struct pdpol_unit_ops *ops,
    void *arg, long want, uint64_t *victims, int max, long budget_units)
{
	uint64_t u;
	long got = 0, n;
	int nv = 0, turns = 0;

	if (!c->pc_valid) {
		if (!ops->pu_next(arg, UINT64_MAX, &c->pc_hand))
			return 0;
		c->pc_valid = true;
	}
	for (long seen = 0; seen < budget_units && got < want && nv < max;
	    seen++) {
		u = c->pc_hand;
		if (nv > 0 && u == victims[0])
			break;	/* full circle: never choose a unit twice */
		if (!ops->pu_next(arg, u, &c->pc_hand)) {
			c->pc_valid = false;
			break;
		}
		turns += c->pc_hand <= u;	/* wrapped */
		/* a referenced unit gets a second chance */
		if (!ops->pu_referenced(arg, u) &&
		    (n = ops->pu_evictable(arg, u)) > 0) {
			victims[nv++] = u;
			got += n;
		}
		if (turns > 2)
			break;	/* every unit seen twice at least */
	}
	return nv;
}
