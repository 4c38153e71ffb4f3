/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.h: how upvmd divides its one budget between the processes
 * attached to it.  Pure: no I/O, no clocks, no locks (the daemon is one
 * thread); test_broker drives it with made-up reports.
 *
 * Every process holds a grant, its budget; its own pageout daemon keeps
 * its resident pages under it.  The sum of max(grant, resident) over all
 * processes stays at or below the budget: budget moves to a process only
 * once another has given it up in fact (paged out), not when its grant
 * was lowered, so the processes' resident pages together stay within the
 * budget plus their own fault slack (and one floor per process attached
 * in the last tick).
 *
 * Every tick (DPROTO_REPORT_MS) broker_tick sets a target for each:
 *  - the budget goes to the processes by their demand, the log of the
 *    rate of their faults (first touches, pageins and inactive pages
 *    taken back, averaged over about BROKER_SMOOTH reports) times their
 *    share, each at least the floor: budget flows to where the faults
 *    are, and an idle process (no fault in BROKER_QUIET reports) keeps
 *    only the floor, so its pages go before an active one's;
 *  - a process that uses its grant keeps it while its target is within
 *    1/BROKER_DEADBAND of it: equal streams do not trade pages on noise;
 *  - a process that is not pressed (its grant exceeds its resident pages
 *    by half the margin or more: it does not use what it has) gets no
 *    more than what it uses plus the margin (BROKER_MARGIN or an eighth
 *    of its grant);
 *  - a limit (the process's own UPVM_BUDGET, or `upvm ctl limit`) caps a
 *    target; what a cap frees goes to the others.
 * When nobody faults, grants stay as they are.  A grant above its target
 * comes down by half the gap each tick for a process idle or not using
 * it, by an eighth for a busy one (its process pages out meanwhile); one
 * below rises by what is free.
 */
#ifndef UPVM_BROKER_H
#define UPVM_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#define BROKER_FLOOR	1024	/* pages: the least grant (4 MiB, the
				   runtime's least budget) */
#define BROKER_MARGIN	1024	/* pages above use for a process not pressed */
#define BROKER_MAX	1024	/* processes attached at once */
#define BROKER_IDLE_RATE 1.0	/* faults per second: idle below */
#define BROKER_QUIET	3	/* reports without a fault: idle */
#define BROKER_SMOOTH	8	/* demand: an average over ~8 reports */
#define BROKER_DEADBAND	32	/* a pressed process's grant moves only
				   by more than 1/32 of it */

struct bclient {
	long		bc_grant;	/* pages granted now */
	long		bc_resident;	/* pages, as last reported */
	long		bc_limit;	/* pages, 0: none */
	unsigned	bc_share;	/* 1..1000, 100 by default */
	double		bc_demand;	/* faults per second, smoothed */
	uint64_t	bc_faults;	/* the count at the last report */
	bool		bc_reported;	/* bc_faults is valid */
	unsigned	bc_quiet;	/* reports in a row without a fault */
	long		bc_target;	/* the last tick's, for upvm stat */
};

struct broker {
	long		br_budget;	/* pages */
};

/* broker_floor: the least grant (BROKER_FLOOR: the runtime takes no
   smaller budget) */
long broker_floor(const struct broker *, int n);

/*
 * broker_admit: the first grant of a process that attaches (c->bc_limit
 * set), with the n others (c not among them): its fair share if that is
 * free, else what is free, at least the floor.
 */
long broker_admit(const struct broker *, struct bclient *const *others,
    int n, const struct bclient *c);

/* broker_report: a report came: resident pages and the fault count */
void broker_report(struct bclient *, long resident, uint64_t faults,
    double dt);

/*
 * broker_tick: new targets and grants for the n processes (bc_grant
 * updated; the caller sends those that changed).
 */
void broker_tick(const struct broker *, struct bclient *const *c, int n);

#endif /* UPVM_BROKER_H */
