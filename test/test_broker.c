/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_broker.c: upvmd's division of its budget (tools/upvmd/broker.c),
 * driven with simulated processes: each tick every process reports, its
 * resident pages follow its grant as its pageout daemon would (down at
 * once, up by its faults), then the broker ticks.
 */
#include <criterion/criterion.h>

#include "../tools/upvmd/broker.h"

#define B	65536L		/* a 256 MiB budget */

struct sim {
	struct bclient	 c[8];
	struct bclient	*p[8];
	double		 rate[8];	/* faults per second it makes */
	long		 want[8];	/* pages it would hold */
	uint64_t	 faults[8];
	int		 n;
};

static void
sim_init(struct sim *s, int n)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	for (int i = 0; i < n; i++) {
		s->p[i] = &s->c[i];
		s->c[i].bc_share = 100;
	}
}

/* one tick of 100 ms; returns max over it of sum(max(grant, resident)) */
static long
sim_tick(struct broker *br, struct sim *s)
{
	long held = 0;

	for (int i = 0; i < s->n; i++) {
		struct bclient *c = &s->c[i];
		long r = c->bc_resident;

		/* paged down to the grant; grown toward what it wants */
		if (r > c->bc_grant)
			r = c->bc_grant;
		if (r < s->want[i])
			r = s->want[i] < c->bc_grant ? s->want[i] : c->bc_grant;
		s->faults[i] += (uint64_t)(s->rate[i] / 10);
		broker_report(c, r, s->faults[i], 0.1);
	}
	broker_tick(br, s->p, s->n);
	for (int i = 0; i < s->n; i++) {
		cr_assert_geq(s->c[i].bc_grant, 1);
		held += s->c[i].bc_grant > s->c[i].bc_resident ?
		    s->c[i].bc_grant : s->c[i].bc_resident;
	}
	return held;
}

Test(broker, budget_follows_the_faults_of_the_one_active_process)
{
	struct broker br = { .br_budget = B };
	struct sim s;
	int t;

	sim_init(&s, 4);
	for (int i = 0; i < 4; i++) {
		s.c[i].bc_grant = s.c[i].bc_resident = B / 4;
		s.want[i] = B / 4;
	}
	for (t = 0; t < 5; t++)
		cr_assert_leq(sim_tick(&br, &s), B);
	/* process 3 starts a random workload larger than the budget */
	s.rate[3] = 20000;
	s.want[3] = 4 * B;
	for (t = 0; t < 20 && s.c[3].bc_grant < B * 8 / 10; t++)
		cr_assert_leq(sim_tick(&br, &s), B, "tick %d", t);
	cr_assert_lt(t, 20, "after 2 s the active process holds %ld of %ld",
	    s.c[3].bc_grant, B);
	for (int i = 0; i < 3; i++)
		cr_assert_geq(s.c[i].bc_grant, BROKER_FLOOR);
}

Test(broker, nobody_faulting_changes_nothing)
{
	struct broker br = { .br_budget = B };
	struct sim s;

	sim_init(&s, 3);
	s.c[0].bc_grant = s.c[0].bc_resident = s.want[0] = B / 2;
	s.c[1].bc_grant = s.c[1].bc_resident = s.want[1] = B / 4;
	s.c[2].bc_grant = s.c[2].bc_resident = s.want[2] = B / 4;
	for (int t = 0; t < 30; t++)
		sim_tick(&br, &s);
	cr_assert_eq(s.c[0].bc_grant, B / 2);
	cr_assert_eq(s.c[1].bc_grant, B / 4);
	cr_assert_eq(s.c[2].bc_grant, B / 4);
}

Test(broker, equal_faulting_processes_get_equal_shares_and_shares_weigh)
{
	struct broker br = { .br_budget = B };
	struct sim s;

	sim_init(&s, 2);
	s.c[0].bc_grant = B - BROKER_FLOOR;
	s.c[1].bc_grant = BROKER_FLOOR;
	for (int i = 0; i < 2; i++) {
		s.rate[i] = 5000;
		s.want[i] = 2 * B;
	}
	for (int t = 0; t < 40; t++)
		cr_assert_leq(sim_tick(&br, &s), B);
	/* within the dead band (1/32 of a grant, each way) */
	cr_assert_lt(labs(s.c[0].bc_grant - s.c[1].bc_grant), B / 16,
	    "%ld vs %ld", s.c[0].bc_grant, s.c[1].bc_grant);
	s.c[0].bc_share = 300;
	for (int t = 0; t < 40; t++)
		cr_assert_leq(sim_tick(&br, &s), B);
	cr_assert_gt(s.c[0].bc_grant, 2 * s.c[1].bc_grant, "%ld vs %ld",
	    s.c[0].bc_grant, s.c[1].bc_grant);
}

Test(broker, a_limit_caps_one_and_the_rest_goes_to_the_others)
{
	struct broker br = { .br_budget = B };
	struct sim s;

	sim_init(&s, 2);
	s.c[0].bc_grant = s.c[1].bc_grant = B / 2;
	s.c[0].bc_limit = B / 8;
	for (int i = 0; i < 2; i++) {
		s.rate[i] = 5000;
		s.want[i] = 2 * B;
	}
	for (int t = 0; t < 40; t++)
		cr_assert_leq(sim_tick(&br, &s), B);
	cr_assert_leq(s.c[0].bc_grant, B / 8);
	cr_assert_geq(s.c[1].bc_grant, B - B / 8 - BROKER_FLOOR);
}

Test(broker, a_process_that_does_not_use_its_grant_gives_it_up)
{
	struct broker br = { .br_budget = B };
	struct sim s;

	sim_init(&s, 2);
	s.c[0].bc_grant = B / 2;
	s.want[0] = 1000;		/* holds 4 MiB of its 128 */
	s.rate[0] = 100;
	s.c[1].bc_grant = B / 2;
	s.want[1] = 2 * B;
	s.rate[1] = 100;
	for (int t = 0; t < 40; t++)
		cr_assert_leq(sim_tick(&br, &s), B);
	cr_assert_leq(s.c[0].bc_grant, 1000 + BROKER_MARGIN + B / 16);
	cr_assert_geq(s.c[1].bc_grant, B - 1000 - BROKER_MARGIN - B / 16);
}

Test(broker, a_smaller_budget_brings_every_grant_under_it)
{
	struct broker br = { .br_budget = B };
	struct sim s;
	long sum = 0;

	sim_init(&s, 3);
	for (int i = 0; i < 3; i++) {
		s.c[i].bc_grant = s.c[i].bc_resident = B / 3;
		s.want[i] = B;
		s.rate[i] = 1000;
	}
	br.br_budget = B / 4;
	for (int t = 0; t < 40; t++)
		sim_tick(&br, &s);
	for (int i = 0; i < 3; i++)
		sum += s.c[i].bc_grant;
	cr_assert_leq(sum, B / 4);
	cr_assert_leq(sim_tick(&br, &s), B / 4);
}

Test(broker, admission_gives_the_fair_share_if_free_else_the_floor)
{
	struct broker br = { .br_budget = B };
	struct bclient a = { .bc_grant = B / 4, .bc_share = 100 };
	struct bclient all = { .bc_grant = B, .bc_share = 100 };
	struct bclient n = { .bc_share = 100 }, lim = { .bc_share = 100,
	    .bc_limit = 2000 };
	struct bclient *one[1] = { &a }, *full[1] = { &all };

	cr_assert_eq(broker_admit(&br, one, 1, &n), B / 2);
	cr_assert_eq(broker_admit(&br, full, 1, &n), BROKER_FLOOR);
	cr_assert_eq(broker_admit(&br, one, 1, &lim), 2000);
	cr_assert_eq(broker_admit(&br, NULL, 0, &n), B);
}
