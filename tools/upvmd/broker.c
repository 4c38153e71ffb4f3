/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.c: dividing upvmd's budget (broker.h).
 */
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
		c->bc_demand = c->bc_demand / 2 + rate / 2;
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

static bool
pressed(const struct bclient *c)
{
	return c->bc_grant - c->bc_resident <= spare_allowed(c);
}

/*
 * targets: what broker.h says, into bc_target.  The pressed ones share
 * `pool` by weight; one that its limit caps leaves the rest to the others
 * (a few rounds: each round caps at least one more or ends).
 */
static void
targets(const struct broker *br, struct bclient *const *c, int n)
{
	long floor = broker_floor(br, n), pool = br->br_budget;
	bool done[BROKER_MAX];
	double wsum;
	int left = 0;
	bool by_grant;

	n = MIN(n, BROKER_MAX);
	for (int i = 0; i < n; i++) {
		done[i] = !pressed(c[i]);
		if (done[i]) {
			c[i]->bc_target = capped(c[i], MAX(floor,
			    c[i]->bc_resident + spare_allowed(c[i])));
			pool -= c[i]->bc_target;
		} else {
			left++;
		}
	}
	/* nobody pressed faults: keep the proportions of the grants */
	by_grant = true;
	for (int i = 0; i < n; i++)
		if (!done[i] && c[i]->bc_demand > 0)
			by_grant = false;
	for (int round = 0; left > 0 && round < 4; round++) {
		bool capped_one = false;
		long share;

		wsum = 0;
		for (int i = 0; i < n; i++)
			if (!done[i])
				wsum += (double)c[i]->bc_share * (by_grant ?
				    (double)c[i]->bc_grant : c[i]->bc_demand);
		share = MAX(pool - left * floor, 0);
		for (int i = 0; i < n; i++) {
			double w;

			if (done[i])
				continue;
			w = (double)c[i]->bc_share * (by_grant ?
			    (double)c[i]->bc_grant : c[i]->bc_demand);
			c[i]->bc_target = floor + (wsum > 0 ?
			    (long)((double)share * w / wsum) : share / left);
			if (c[i]->bc_limit > 0 &&
			    c[i]->bc_target > c[i]->bc_limit) {
				c[i]->bc_target = c[i]->bc_limit;
				done[i] = true;
				pool -= c[i]->bc_target;
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
	long free;

	targets(br, c, n);
	for (int i = 0; i < n; i++) {
		long g = c[i]->bc_grant, t = c[i]->bc_target;

		if (t < g)
			c[i]->bc_grant = g - t <= BROKER_SETTLE ? t :
			    t + (g - t) / 2;
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
