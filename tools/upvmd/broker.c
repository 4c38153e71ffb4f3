/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.c: dividing upvmd's budget (broker.h).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "broker.h"

#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))
#define BROKER_SETTLE	64	/* pages: a gap this small closes at once */

long
broker_floor(const struct broker *br, int n)
{
	(void)br;
	(void)n;
	return BROKER_FLOOR;
}

/* the budget not held: neither granted nor resident past a grant */
static long
broker_free(const struct broker *br, struct bclient *const *c, int n)
{
	long held = 0;

	for (int i = 0; i < n; i++)
		held += MAX(c[i]->bc_grant, c[i]->bc_resident);
	return br->br_budget - held;
}

static long
capped(const struct bclient *c, long pages)
{
	return c->bc_limit > 0 ? MIN(pages, c->bc_limit) : pages;
}

long
broker_admit(const struct broker *br, struct bclient *const *others, int n,
    const struct bclient *c)
{
	long fair = br->br_budget / (n + 1);
	long free = broker_free(br, others, n);

	return capped(c, MAX(broker_floor(br, n + 1), MIN(fair, free)));
}

void
broker_report(struct bclient *c, long resident, uint64_t faults, double dt)
{
	double rate;

	c->bc_resident = resident;
	if (c->bc_reported && dt > 0 && faults >= c->bc_faults) {
		rate = (double)(faults - c->bc_faults) / dt;
		/* slow: equal streams should not trade budget on noise */
		c->bc_demand += (rate - c->bc_demand) / BROKER_SMOOTH;
		c->bc_quiet = faults == c->bc_faults ? c->bc_quiet + 1 : 0;
	}
	c->bc_faults = faults;
	c->bc_reported = true;
}

/* room a process leaves unused: more than this is not pressed */
static long
spare_allowed(const struct bclient *c)
{
	return MAX(BROKER_MARGIN, c->bc_grant / 8);
}

/* idle: no fault in its last BROKER_QUIET reports (fast, where the
   smoothed demand would take seconds to fall) */
static bool
idle(const struct bclient *c)
{
	return c->bc_quiet >= BROKER_QUIET || c->bc_demand < BROKER_IDLE_RATE;
}

/* the weight of a process's claim: 0 when it is idle */
static double
weight(const struct bclient *c)
{
	/* the log of the rate: a process faulting ten times as often is
	   owed more, not ten times more (the rates of equal streams swing
	   with their budgets; in proportion, budget would chase them) */
	return idle(c) ? 0 : (double)c->bc_share * log2(2 + c->bc_demand);
}

/* pressed: it uses nearly all of its grant (half the spare allowed: a
   process held to use + spare stays unpressed until it grows) */
static bool
pressed(const struct bclient *c)
{
	return c->bc_grant - c->bc_resident < spare_allowed(c) / 2;
}

/*
 * targets: what broker.h says, into bc_target.  Each process has a cap
 * (its limit; for one not pressed, also what it uses plus the spare);
 * the budget is shared by weight (share x demand) above a floor each,
 * and what a cap leaves goes to the others (a few rounds: each round caps
 * at least one more or ends).  When nobody faults, the grants stay.
 */
static void
targets(const struct broker *br, struct bclient *const *c, int n)
{
	long floor = broker_floor(br, n), pool = br->br_budget;
	long cap[BROKER_MAX], sum = 0;
	bool done[BROKER_MAX], faulting = false;
	int left;

	n = MIN(n, BROKER_MAX);
	for (int i = 0; i < n; i++) {
		cap[i] = capped(c[i], LONG_MAX);
		if (!pressed(c[i]))
			cap[i] = MIN(cap[i], MAX(floor, c[i]->bc_resident +
			    spare_allowed(c[i])));
		cap[i] = MAX(cap[i], 1);
		done[i] = false;
		faulting |= !idle(c[i]);
		sum += c[i]->bc_grant;
	}
	if (!faulting) {
		/* as they are, scaled down only to fit a smaller budget */
		for (int i = 0; i < n; i++)
			c[i]->bc_target = MIN(cap[i], sum <= pool ?
			    c[i]->bc_grant : MAX(floor, (long)((double)
			    c[i]->bc_grant * (double)pool / (double)sum)));
		return;
	}
	left = n;
	for (int round = 0; left > 0 && round < 4; round++) {
		bool capped_one = false;
		double wsum = 0;
		long share;

		for (int i = 0; i < n; i++)
			if (!done[i])
				wsum += weight(c[i]);
		share = MAX(pool - left * floor, 0);
		for (int i = 0; i < n; i++) {
			if (done[i])
				continue;
			c[i]->bc_target = floor + (wsum > 0 ? (long)((double)
			    share * weight(c[i]) / wsum) : share / left);
			if (c[i]->bc_target > cap[i]) {
				c[i]->bc_target = cap[i];
				done[i] = true;
				pool -= cap[i];
				left--;
				capped_one = true;
			}
		}
		if (!capped_one)
			break;
	}
}

void
broker_tick(const struct broker *br, struct bclient *const *c, int n)
{
	long free, held = 0;

	targets(br, c, n);
	/* a small change of a process that uses its grant waits: moving a
	   few pages back and forth costs I/O and gains nothing; unless the
	   grants kept would not fit the budget */
	for (int i = 0; i < n; i++) {
		long g = c[i]->bc_grant, t = c[i]->bc_target;

		held += pressed(c[i]) && !idle(c[i]) &&
		    labs(t - g) < g / BROKER_DEADBAND ? g : t;
	}
	for (int i = 0; i < n && held <= br->br_budget; i++) {
		long g = c[i]->bc_grant, t = c[i]->bc_target;

		if (pressed(c[i]) && !idle(c[i]) &&
		    labs(t - g) < g / BROKER_DEADBAND)
			c[i]->bc_target = g;
	}
	for (int i = 0; i < n; i++) {
		long g = c[i]->bc_grant, t = c[i]->bc_target;

		/* down: an idle process, or one that does not use its grant,
		   at once (half the gap a tick); a busy one slowly (an eighth):
		   the demand of streams swings, and every page a grant gives
		   up is paged out */
		if (t < g && (idle(c[i]) || !pressed(c[i])))
			c[i]->bc_grant = g - t <= BROKER_SETTLE ? t :
			    t + (g - t) / 2;
		else if (t < g)
			c[i]->bc_grant = g - t <= BROKER_SETTLE ? t :
			    g - MAX(BROKER_SETTLE, (g - t) / 8);
		/* a limit holds at once */
		c[i]->bc_grant = capped(c[i], c[i]->bc_grant);
	}
	free = broker_free(br, c, n);
	for (int i = 0; i < n && free > 0; i++) {
		long add = MIN(c[i]->bc_target - c[i]->bc_grant, free);

		if (add > 0) {
			c[i]->bc_grant += add;
			free -= add;
		}
	}
	for (int i = 0; i < n; i++)
		c[i]->bc_grant = MAX(c[i]->bc_grant, 1);
}
