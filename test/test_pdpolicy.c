/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pdpolicy.c: the pageout policy, pure: watermarks, hysteresis, and
 * the second-chance clock over a simulated set of units.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "pdpolicy.h"

Test(pdpolicy, watermarks_order_and_gap, .timeout = 5)
{
	struct pdpol_marks m;

	pdpol_marks(262144, 1024, &m);		/* 1 GiB */
	cr_assert_eq(m.pm_budget, 262144);
	cr_assert_eq(m.pm_high, 262144 - 4096);
	cr_assert_eq(m.pm_low, 262144 - 8192);
	cr_assert_eq(m.pm_limit, 262144 + 1024);
	pdpol_marks(1024, 64, &m);		/* small: 64-page gaps */
	cr_assert_eq(m.pm_high, 1024 - 64);
	cr_assert_eq(m.pm_low, 1024 - 128);
	cr_assert(m.pm_low < m.pm_high && m.pm_high < m.pm_budget);
}

Test(pdpolicy, want_has_hysteresis, .timeout = 5)
{
	struct pdpol_marks m;

	pdpol_marks(100000, 100, &m);		/* high 98438, low 96876 */
	cr_assert_eq(m.pm_low, 96876);
	cr_assert_eq(pdpol_want(&m, 98000, false), 0, "below high: idle");
	cr_assert_eq(pdpol_want(&m, 99000, false), 99000 - 96876);
	cr_assert_eq(pdpol_want(&m, 98000, true), 98000 - 96876,
	    "running: on to low");
	cr_assert_eq(pdpol_want(&m, 96876, true), 0);
}

/* a simulated address space: units 0..n-1 with reference bits */
#define NU	64

struct sim {
	bool	ref[NU];
	long	pages[NU];
	int	nunits;
	int	looked;
};

static bool
sim_next(void *arg, uint64_t u, uint64_t *np)
{
	struct sim *s = arg;

	if (s->nunits == 0)
		return false;
	*np = u == UINT64_MAX || u + 1 >= (uint64_t)s->nunits ? 0 : u + 1;
	return true;
}

static bool
sim_ref(void *arg, uint64_t u)
{
	struct sim *s = arg;
	bool r = s->ref[u];

	s->looked++;
	s->ref[u] = false;
	return r;
}

static long
sim_evictable(void *arg, uint64_t u)
{
	return ((struct sim *)arg)->pages[u];
}

static const struct pdpol_unit_ops sim_ops = {
	sim_next, sim_ref, sim_evictable,
};

Test(pdpolicy, referenced_units_get_a_second_chance, .timeout = 5)
{
	struct pdpol_clock c = { 0 };
	struct sim s = { .nunits = 8 };
	uint64_t v[8];
	int n;

	for (int i = 0; i < 8; i++) {
		s.pages[i] = 64;
		s.ref[i] = i % 2 == 0;	/* even units are hot */
	}
	n = pdpol_select(&c, &sim_ops, &s, 4 * 64, v, 8, 16);
	cr_assert_eq(n, 4);
	for (int i = 0; i < n; i++)
		cr_assert_eq(v[i] % 2, 1, "a cold unit: %lu", v[i]);
	for (int i = 0; i < 8; i += 2)
		cr_assert_eq(s.ref[i], false, "the hand cleared it");
}

Test(pdpolicy, all_hot_still_yields_victims_on_the_second_turn, .timeout = 5)
{
	struct pdpol_clock c = { 0 };
	struct sim s = { .nunits = 8 };
	uint64_t v[8];

	for (int i = 0; i < 8; i++) {
		s.pages[i] = 10;
		s.ref[i] = true;
	}
	cr_assert_eq(pdpol_select(&c, &sim_ops, &s, 20, v, 8, 16), 2);
	cr_assert_eq(v[0], 0);
	cr_assert_eq(v[1], 1);
}

Test(pdpolicy, hand_moves_on_between_calls, .timeout = 5)
{
	struct pdpol_clock c = { 0 };
	struct sim s = { .nunits = 6 };
	uint64_t v[6];

	for (int i = 0; i < 6; i++)
		s.pages[i] = 1;
	cr_assert_eq(pdpol_select(&c, &sim_ops, &s, 2, v, 6, 12), 2);
	cr_assert_eq(v[0], 0);
	cr_assert_eq(v[1], 1);
	cr_assert_eq(pdpol_select(&c, &sim_ops, &s, 2, v, 6, 12), 2);
	cr_assert_eq(v[0], 2, "continues where it stopped");
	cr_assert_eq(v[1], 3);
}

Test(pdpolicy, empty_units_are_skipped_and_looking_is_bounded, .timeout = 5)
{
	struct pdpol_clock c = { 0 };
	struct sim s = { .nunits = 10 };
	uint64_t v[10];

	/* nothing evictable anywhere: stop after the bound */
	cr_assert_eq(pdpol_select(&c, &sim_ops, &s, 100, v, 10, 20), 0);
	cr_assert_eq(s.looked, 20);
	s.pages[7] = 5;
	cr_assert_eq(pdpol_select(&c, &sim_ops, &s, 100, v, 10, 20), 1);
	cr_assert_eq(v[0], 7);
	/* no units at all */
	s.nunits = 0;
	c.pc_valid = false;
	cr_assert_eq(pdpol_select(&c, &sim_ops, &s, 1, v, 10, 20), 0);
}

Test(pdpolicy, max_victims_is_respected, .timeout = 5)
{
	struct pdpol_clock c = { 0 };
	struct sim s = { .nunits = 20 };
	uint64_t v[3];

	for (int i = 0; i < 20; i++)
		s.pages[i] = 1;
	cr_assert_eq(pdpol_select(&c, &sim_ops, &s, 1000, v, 3, 40), 3);
}
