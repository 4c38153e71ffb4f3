/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_amap.c: amaps, anons, references, needs-copy, copy-on-write, the
 * fault engine's claim protocol, and the metadata cost of a resident page.
 *
 * Every test starts with amap_init_pools() and runs amap_check() on every
 * amap it touched after each mutation.  amap_check() takes am_lock, so the
 * helpers below lock only around the calls that assert it (claim, settle,
 * cow, slot) and check after unlocking.  Nothing here maps managed memory:
 * slots are only tags, anons only reference counts.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "amap.h"
#include "kmem.h"
#include "log.h"
#include "vm.h"

#define CHECK(am)	cr_assert_eq(amap_check(am), 0, "amap_check")

static struct amap *
mk(int nslot)
{
	struct amap *am = NULL;

	cr_assert_eq(amap_create(nslot, &am), 0, "amap_create(%d)", nslot);
	cr_assert_not_null(am);
	CHECK(am);
	return am;
}

static uintptr_t
slot_of(struct amap *am, int slot)
{
	uintptr_t s;

	vm_mutex_lock(&am->am_lock);
	s = amap_slot(am, slot);
	vm_mutex_unlock(&am->am_lock);
	return s;
}

static struct anon *
anon_of(struct amap *am, int slot)
{
	uintptr_t s = slot_of(am, slot);

	cr_assert(SLOT_IS_ANON(s), "slot %d holds %#lx, not an anon", slot,
	    (unsigned long)s);
	return (struct anon *)s;
}

/* claim exactly [lo, hi) (all empty) and settle it to `to` */
static void
fill(struct amap *am, int lo, int hi, uintptr_t to)
{
	uintptr_t state = 0xdead;
	int start = -1, n;

	vm_mutex_lock(&am->am_lock);
	n = amap_claim(am, lo, lo, hi, &start, &state);
	vm_mutex_unlock(&am->am_lock);
	cr_assert_eq(n, hi - lo, "claim [%d, %d) got %d slots", lo, hi, n);
	cr_assert_eq(start, lo);
	cr_assert_eq(state, SLOT_EMPTY);
	CHECK(am);
	vm_mutex_lock(&am->am_lock);
	amap_settle(am, lo, n, to);
	vm_mutex_unlock(&am->am_lock);
	CHECK(am);
}

static int
claim(struct amap *am, int slot, int lo, int hi, int *startp,
    uintptr_t *statep)
{
	int n;

	vm_mutex_lock(&am->am_lock);
	n = amap_claim(am, slot, lo, hi, startp, statep);
	vm_mutex_unlock(&am->am_lock);
	CHECK(am);
	return n;
}

static void
settle(struct amap *am, int slot, int n, uintptr_t to)
{
	vm_mutex_lock(&am->am_lock);
	amap_settle(am, slot, n, to);
	vm_mutex_unlock(&am->am_lock);
	CHECK(am);
}

/* every slot of [lo, hi) holds v */
static void
expect_slots(struct amap *am, int lo, int hi, uintptr_t v)
{
	for (int i = lo; i < hi; i++)
		cr_assert_eq(slot_of(am, i), v, "slot %d: %#lx, want %#lx", i,
		    (unsigned long)slot_of(am, i), (unsigned long)v);
}

/* the pools of an amap of nslot slots (its header, and its arrays when
   small) have their first slabs, so later kmem deltas are slot arrays */
static void
warm_amap_pool(int nslot)
{
	struct amap *am = mk(nslot);

	amap_unref(am, 0, nslot);
}

Test(amap, create_rejects_nonpositive_nslot, .timeout = 10)
{
	struct amap *am = (struct amap *)0x1234;

	amap_init_pools();
	cr_assert_eq(amap_create(0, &am), -EINVAL);
	cr_assert_eq(am, (struct amap *)0x1234, "out untouched on error");
	cr_assert_eq(amap_create(-1, &am), -EINVAL);
	cr_assert_eq(amap_create(INT32_MIN, &am), -EINVAL);
	cr_assert_eq(am, (struct amap *)0x1234, "out untouched on error");
}

Test(amap, create_gives_empty_amap_with_one_ref, .timeout = 10)
{
	struct amap *am;

	amap_init_pools();
	am = mk(37);
	cr_assert_eq(am->am_nslot, 37);
	cr_assert_eq(am->am_nused, 0);
	cr_assert_eq(atomic_load(&am->am_ref), 1);
	cr_assert_eq(am->am_flags & AMAP_OVERLAP, 0);
	expect_slots(am, 0, 37, SLOT_EMPTY);
	cr_assert_eq(amap_resident(am, 0, 37), 0);
	amap_unref(am, 0, 37);
}

Test(amap, claim_takes_whole_empty_run, .timeout = 10)
{
	struct amap *am;
	uintptr_t state = 0xdead;
	int start = -1;

	amap_init_pools();
	am = mk(16);
	cr_assert_eq(claim(am, 5, 0, 16, &start, &state), 16);
	cr_assert_eq(start, 0);
	cr_assert_eq(state, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 16, "busy slots count as used");
	expect_slots(am, 0, 16, SLOT_BUSY);
	cr_assert_eq(amap_resident(am, 0, 16), 0, "busy is not resident");
	settle(am, 0, 16, SLOT_EMPTY);
	amap_unref(am, 0, 16);
}

Test(amap, claim_at_edges, .timeout = 10)
{
	struct amap *am;
	uintptr_t state;
	int start;

	amap_init_pools();
	am = mk(16);
	fill(am, 8, 9, SLOT_RESIDENT);

	/* first slot: the run goes right up to the resident slot */
	start = -1;
	cr_assert_eq(claim(am, 0, 0, 16, &start, &state), 8);
	cr_assert_eq(start, 0);
	expect_slots(am, 0, 8, SLOT_BUSY);
	/* last slot: the run goes left down to the resident slot */
	start = -1;
	cr_assert_eq(claim(am, 15, 0, 16, &start, &state), 7);
	cr_assert_eq(start, 9);
	expect_slots(am, 9, 16, SLOT_BUSY);
	cr_assert_eq(slot_of(am, 8), SLOT_RESIDENT);
	cr_assert_eq(am->am_nused, 16);
	settle(am, 0, 8, SLOT_RESIDENT);
	settle(am, 9, 7, SLOT_RESIDENT);
	cr_assert_eq(amap_resident(am, 0, 16), 16);

	/* one-slot amap: the only slot is both edges */
	{
		struct amap *one = mk(1);

		start = -1;
		cr_assert_eq(claim(one, 0, 0, 1, &start, &state), 1);
		cr_assert_eq(start, 0);
		cr_assert_eq(slot_of(one, 0), SLOT_BUSY);
		settle(one, 0, 1, SLOT_RESIDENT);
		cr_assert_eq(one->am_nused, 1);
		amap_unref(one, 0, 1);
	}
	amap_unref(am, 0, 16);
}

Test(amap, claim_refuses_nonempty_slot_and_reports_state, .timeout = 10)
{
	struct amap *am, *cp;
	struct vm_aref ar;
	uintptr_t state;
	int start, nused;

	amap_init_pools();
	am = mk(8);
	fill(am, 2, 3, SLOT_RESIDENT);
	cr_assert_eq(claim(am, 5, 5, 6, &start, &state), 1);
	nused = am->am_nused;

	state = 0xdead;
	cr_assert_eq(claim(am, 2, 0, 8, &start, &state), 0, "resident slot");
	cr_assert_eq(state, SLOT_RESIDENT);
	state = 0xdead;
	cr_assert_eq(claim(am, 5, 0, 8, &start, &state), 0, "busy slot");
	cr_assert_eq(state, SLOT_BUSY);
	cr_assert_eq(am->am_nused, nused, "a refused claim changes nothing");
	expect_slots(am, 0, 2, SLOT_EMPTY);
	expect_slots(am, 3, 5, SLOT_EMPTY);
	expect_slots(am, 6, 8, SLOT_EMPTY);
	settle(am, 5, 1, SLOT_EMPTY);

	/* an anon slot reports the anon itself */
	amap_ref(am, true);
	ar.ar_amap = am;
	ar.ar_pageoff = 0;
	cr_assert_eq(amap_copy(&ar, 8), 0);
	cp = ar.ar_amap;
	CHECK(cp);
	CHECK(am);
	state = 0xdead;
	cr_assert_eq(claim(cp, 2, 0, 8, &start, &state), 0, "anon slot");
	cr_assert_eq(state, (uintptr_t)anon_of(cp, 2));
	state = 0xdead;
	cr_assert_eq(claim(am, 2, 0, 8, &start, &state), 0, "anon slot");
	cr_assert_eq(state, (uintptr_t)anon_of(am, 2));
	amap_unref(cp, 0, 8);
	amap_unref(am, 0, 8);
}

Test(amap, claim_stops_at_nonempty_neighbours, .timeout = 10)
{
	struct amap *am;
	uintptr_t state;
	int start = -1;

	amap_init_pools();
	am = mk(16);
	fill(am, 3, 4, SLOT_RESIDENT);
	cr_assert_eq(claim(am, 10, 10, 11, &start, &state), 1); /* busy */
	start = -1;
	cr_assert_eq(claim(am, 6, 0, 16, &start, &state), 6);
	cr_assert_eq(start, 4);
	expect_slots(am, 4, 11, SLOT_BUSY);
	expect_slots(am, 0, 3, SLOT_EMPTY);
	cr_assert_eq(slot_of(am, 3), SLOT_RESIDENT);
	expect_slots(am, 11, 16, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 8);

	/* a neighbour on one side only */
	start = -1;
	cr_assert_eq(claim(am, 1, 0, 16, &start, &state), 3);
	cr_assert_eq(start, 0);
	start = -1;
	cr_assert_eq(claim(am, 13, 0, 16, &start, &state), 5);
	cr_assert_eq(start, 11);
	cr_assert_eq(am->am_nused, 16);
	settle(am, 0, 3, SLOT_EMPTY);
	settle(am, 4, 7, SLOT_EMPTY);
	settle(am, 11, 5, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 1);
	amap_unref(am, 0, 16);
}

Test(amap, claim_stops_at_lo_and_hi, .timeout = 10)
{
	struct amap *am;
	uintptr_t state;
	int start = -1;

	amap_init_pools();
	am = mk(16);
	cr_assert_eq(claim(am, 6, 4, 9, &start, &state), 5);
	cr_assert_eq(start, 4);
	expect_slots(am, 0, 4, SLOT_EMPTY);
	expect_slots(am, 4, 9, SLOT_BUSY);
	expect_slots(am, 9, 16, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 5);

	/* slot == lo and slot == hi - 1 */
	start = -1;
	cr_assert_eq(claim(am, 9, 9, 12, &start, &state), 3);
	cr_assert_eq(start, 9);
	start = -1;
	cr_assert_eq(claim(am, 2, 1, 3, &start, &state), 2);
	cr_assert_eq(start, 1);
	expect_slots(am, 0, 1, SLOT_EMPTY);
	expect_slots(am, 12, 16, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 10);
	settle(am, 1, 2, SLOT_RESIDENT);
	settle(am, 4, 5, SLOT_RESIDENT);
	settle(am, 9, 3, SLOT_RESIDENT);
	cr_assert_eq(amap_resident(am, 0, 16), 10);
	amap_unref(am, 0, 16);
}

Test(amap, settle_both_ways_counts_used, .timeout = 10)
{
	struct amap *am;
	uintptr_t state;
	int start;

	amap_init_pools();
	am = mk(32);
	cr_assert_eq(claim(am, 2, 2, 6, &start, &state), 4);
	settle(am, 2, 4, SLOT_RESIDENT);
	cr_assert_eq(am->am_nused, 4);
	expect_slots(am, 2, 6, SLOT_RESIDENT);
	cr_assert_eq(amap_resident(am, 0, 32), 4);

	cr_assert_eq(claim(am, 8, 8, 12, &start, &state), 4);
	cr_assert_eq(am->am_nused, 8);
	settle(am, 8, 4, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 4, "failed resolution gives slots back");
	expect_slots(am, 8, 12, SLOT_EMPTY);
	cr_assert_eq(amap_resident(am, 0, 32), 4);

	/* a partly failed resolution: first 3 resolved, the other 5 not */
	cr_assert_eq(claim(am, 20, 16, 24, &start, &state), 8);
	cr_assert_eq(start, 16);
	settle(am, 16, 3, SLOT_RESIDENT);
	settle(am, 19, 5, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 7);
	expect_slots(am, 16, 19, SLOT_RESIDENT);
	expect_slots(am, 19, 24, SLOT_EMPTY);
	cr_assert_eq(amap_resident(am, 0, 32), 7);

	/* the emptied slots can be claimed again */
	cr_assert_eq(claim(am, 10, 0, 32, &start, &state), 10);
	cr_assert_eq(start, 6, "run [6, 16) between resident slots");
	settle(am, 6, 10, SLOT_RESIDENT);
	cr_assert_eq(am->am_nused, 17);
	cr_assert_eq(amap_resident(am, 0, 32), 17);
	amap_unref(am, 0, 32);
}

Test(amap, free_range_counts_resident_pages, .timeout = 10)
{
	struct amap *am;

	amap_init_pools();
	am = mk(32);
	fill(am, 0, 10, SLOT_RESIDENT);
	fill(am, 20, 24, SLOT_RESIDENT);
	cr_assert_eq(am->am_nused, 14);

	cr_assert_eq(amap_free_range(am, 3, 4), 4);
	CHECK(am);
	cr_assert_eq(am->am_nused, 10);
	expect_slots(am, 3, 7, SLOT_EMPTY);
	expect_slots(am, 0, 3, SLOT_RESIDENT);
	expect_slots(am, 7, 10, SLOT_RESIDENT);
	cr_assert_eq(amap_resident(am, 0, 32), 10);

	cr_assert_eq(amap_free_range(am, 3, 4), 0, "already empty");
	CHECK(am);
	cr_assert_eq(amap_free_range(am, 10, 10), 0, "never touched");
	CHECK(am);
	cr_assert_eq(amap_free_range(am, 0, 0), 0, "nothing");
	CHECK(am);
	cr_assert_eq(am->am_nused, 10);

	/* a range with gaps */
	cr_assert_eq(amap_free_range(am, 5, 27), 7);
	CHECK(am);
	cr_assert_eq(am->am_nused, 3);
	cr_assert_eq(amap_resident(am, 0, 32), 3);
	cr_assert_eq(amap_free_range(am, 0, 32), 3);
	CHECK(am);
	cr_assert_eq(am->am_nused, 0);
	expect_slots(am, 0, 32, SLOT_EMPTY);
	amap_unref(am, 0, 32);
}

Test(amap, free_range_counts_only_resident_anons, .timeout = 10)
{
	struct amap *am, *cp;
	struct vm_aref ar = { 0, NULL };
	size_t anons;

	amap_init_pools();
	am = mk(8);
	fill(am, 0, 8, SLOT_RESIDENT);
	anons = amap_anon_count();
	amap_ref(am, true);
	ar.ar_amap = am;
	cr_assert_eq(amap_copy(&ar, 8), 0);
	cp = ar.ar_amap;
	CHECK(am);
	CHECK(cp);
	cr_assert_eq(amap_anon_count(), anons + 8);
	/* the source gives up its references: the copy owns every anon */
	amap_unref(am, 0, 8);
	cr_assert_eq(amap_anon_count(), anons + 8);
	CHECK(cp);
	/* pretend two pages went to swap (no longer in a page table) */
	vm_mutex_lock(&cp->am_lock);
	for (int i = 2; i < 4; i++)
		((struct anon *)amap_slot(cp, i))->an_flags = ANON_SWAPPED;
	vm_mutex_unlock(&cp->am_lock);
	cr_assert_eq(amap_resident(cp, 0, 8), 6);
	cr_assert_eq(amap_free_range(cp, 0, 5), 3, "swapped pages not counted");
	CHECK(cp);
	cr_assert_eq(cp->am_nused, 3);
	cr_assert_eq(amap_anon_count(), anons + 3, "freed anons go back");
	amap_unref(cp, 0, 8);
	cr_assert_eq(amap_anon_count(), anons);
}

Test(amap, free_range_releases_more_anons_than_one_batch, .timeout = 10)
{
	struct amap *am, *cp;
	struct vm_aref ar;
	size_t anons;
	const int n = 1000;	/* several of amap.c's 256-anon batches */

	amap_init_pools();
	anons = amap_anon_count();
	am = mk(n);
	fill(am, 0, n, SLOT_RESIDENT);
	amap_ref(am, true);
	ar.ar_amap = am;
	ar.ar_pageoff = 0;
	cr_assert_eq(amap_copy(&ar, n), 0);
	cp = ar.ar_amap;
	CHECK(am);
	CHECK(cp);
	cr_assert_eq(amap_anon_count(), anons + n);
	cr_assert_eq(amap_free_range(cp, 0, n), n);
	CHECK(cp);
	CHECK(am);
	cr_assert_eq(cp->am_nused, 0);
	expect_slots(cp, 0, n, SLOT_EMPTY);
	cr_assert_eq(amap_anon_count(), anons + n, "source still holds them");
	for (int i = 0; i < n; i++)
		cr_assert_eq(atomic_load(&anon_of(am, i)->an_ref), 1,
		    "slot %d", i);
	amap_unref(cp, 0, n);
	amap_unref(am, 0, n);
	cr_assert_eq(amap_anon_count(), anons);
}

Test(amap, copy_with_one_reference_is_noop, .timeout = 10)
{
	struct amap *am;
	struct vm_aref ar;
	size_t anons;

	amap_init_pools();
	am = mk(8);
	fill(am, 1, 5, SLOT_RESIDENT);
	anons = amap_anon_count();
	ar.ar_amap = am;
	ar.ar_pageoff = 2;
	cr_assert_eq(amap_copy(&ar, 6), 0);
	cr_assert_eq(ar.ar_amap, am, "same amap");
	cr_assert_eq(ar.ar_pageoff, 2, "same offset");
	cr_assert_eq(atomic_load(&am->am_ref), 1);
	CHECK(am);
	expect_slots(am, 0, 1, SLOT_EMPTY);
	expect_slots(am, 1, 5, SLOT_RESIDENT);
	expect_slots(am, 5, 8, SLOT_EMPTY);
	cr_assert_eq(am->am_nused, 4);
	cr_assert_eq(amap_anon_count(), anons, "no anon made");
	amap_unref(am, 0, 8);
}

Test(amap, copy_shares_anons_and_makes_implicit_ones_real, .timeout = 10)
{
	struct amap *src, *cp;
	struct vm_aref ar;
	size_t anons;

	amap_init_pools();
	src = mk(10);
	fill(src, 0, 4, SLOT_RESIDENT);		/* 0..3 */
	fill(src, 6, 9, SLOT_RESIDENT);		/* 6..8; 4, 5, 9 empty */
	anons = amap_anon_count();
	amap_ref(src, true);
	cr_assert_eq(atomic_load(&src->am_ref), 2);
	cr_assert_neq(src->am_flags & AMAP_OVERLAP, 0);
	CHECK(src);

	/* the entry covers slots [2, 8) of src */
	ar.ar_amap = src;
	ar.ar_pageoff = 2;
	cr_assert_eq(amap_copy(&ar, 6), 0);
	cp = ar.ar_amap;
	CHECK(src);
	CHECK(cp);
	cr_assert_neq(cp, src, "a new amap");
	cr_assert_eq(ar.ar_pageoff, 0);
	cr_assert_eq(cp->am_nslot, 6);
	cr_assert_eq(atomic_load(&cp->am_ref), 1);
	cr_assert_eq(atomic_load(&src->am_ref), 1, "entry moved off src");
	cr_assert_eq(cp->am_nused, 4);
	cr_assert_eq(src->am_nused, 7);
	cr_assert_eq(amap_anon_count(), anons + 4, "one anon per shared page");

	for (int i = 0; i < 6; i++) {
		uintptr_t s = slot_of(src, 2 + i), c = slot_of(cp, i);

		cr_assert_eq(c, s, "copy slot %d shares src slot %d", i, 2 + i);
		if (i == 2 || i == 3) {
			cr_assert_eq(s, SLOT_EMPTY, "slot %d", 2 + i);
			continue;
		}
		cr_assert(SLOT_IS_ANON(s), "src slot %d became an anon", 2 + i);
		cr_assert_eq(atomic_load(&((struct anon *)s)->an_ref), 2);
		cr_assert_eq(((struct anon *)s)->an_flags, ANON_RESIDENT);
		cr_assert_eq(((struct anon *)s)->an_swslot, 0);
	}
	/* slots outside the entry stay implicit */
	expect_slots(src, 0, 2, SLOT_RESIDENT);
	cr_assert_eq(slot_of(src, 8), SLOT_RESIDENT);
	cr_assert_eq(slot_of(src, 9), SLOT_EMPTY);
	cr_assert_eq(amap_resident(src, 0, 10), 7);
	cr_assert_eq(amap_resident(cp, 0, 6), 4);

	amap_unref(cp, 0, 6);
	cr_assert_eq(amap_anon_count(), anons + 4, "src still holds them");
	for (int i = 2; i < 8; i++)
		if (i != 4 && i != 5)
			cr_assert_eq(atomic_load(&anon_of(src, i)->an_ref), 1);
	CHECK(src);
	amap_unref(src, 0, 10);
	cr_assert_eq(amap_anon_count(), anons);
}

Test(amap, cow_leaves_other_amap_untouched, .timeout = 10)
{
	struct amap *src, *cp;
	struct anon *old, *nw, *shared3;
	struct vm_aref ar;
	size_t anons;

	amap_init_pools();
	src = mk(4);
	fill(src, 0, 4, SLOT_RESIDENT);
	amap_ref(src, true);
	ar.ar_amap = src;
	ar.ar_pageoff = 0;
	cr_assert_eq(amap_copy(&ar, 4), 0);
	cp = ar.ar_amap;
	CHECK(src);
	CHECK(cp);
	anons = amap_anon_count();
	old = anon_of(src, 1);
	shared3 = anon_of(cp, 3);

	vm_mutex_lock(&cp->am_lock);
	cr_assert_eq(amap_cow(cp, 1, &nw, &old), 0);
	vm_mutex_unlock(&cp->am_lock);
	CHECK(cp);
	CHECK(src);
	cr_assert_eq(old, anon_of(src, 1), "caller gets the shared anon");
	cr_assert_neq(nw, old);
	cr_assert_eq(anon_of(cp, 1), nw, "copy's slot holds the new anon");
	cr_assert_eq(atomic_load(&nw->an_ref), 1);
	cr_assert_eq(nw->an_flags, 0);
	cr_assert_eq(atomic_load(&old->an_ref), 2, "slot's ref moved to us");
	cr_assert_eq(amap_anon_count(), anons + 1);
	cr_assert_eq(cp->am_nused, 4);
	cr_assert_eq(src->am_nused, 4);
	anon_unref(old);
	cr_assert_eq(atomic_load(&old->an_ref), 1);
	cr_assert_eq(anon_of(src, 1), old, "other amap's slot untouched");
	cr_assert_eq(old->an_flags, ANON_RESIDENT);
	cr_assert_eq(amap_anon_count(), anons + 1);
	CHECK(src);
	CHECK(cp);
	/* the other slots are still shared */
	cr_assert_eq(anon_of(src, 3), shared3);
	cr_assert_eq(atomic_load(&shared3->an_ref), 2);

	/* the unshared slots refuse a second cow, nothing changed */
	vm_mutex_lock(&cp->am_lock);
	cr_assert_eq(amap_cow(cp, 1, &nw, &old), -EINVAL, "own anon");
	vm_mutex_unlock(&cp->am_lock);
	vm_mutex_lock(&src->am_lock);
	cr_assert_eq(amap_cow(src, 1, &nw, &old), -EINVAL, "now private");
	vm_mutex_unlock(&src->am_lock);
	cr_assert_eq(amap_anon_count(), anons + 1);
	CHECK(src);
	CHECK(cp);

	amap_unref(cp, 0, 4);
	cr_assert_eq(amap_anon_count(), anons, "cp's own anon freed");
	amap_unref(src, 0, 4);
}

Test(amap, cow_refuses_slots_without_shared_anon, .timeout = 10)
{
	struct amap *am;
	struct anon *nw = NULL, *old = NULL;
	size_t anons;

	amap_init_pools();
	am = mk(4);
	fill(am, 0, 1, SLOT_RESIDENT);
	anons = amap_anon_count();
	vm_mutex_lock(&am->am_lock);
	cr_assert_eq(amap_cow(am, 0, &nw, &old), -EINVAL, "implicit anon");
	cr_assert_eq(amap_cow(am, 1, &nw, &old), -EINVAL, "empty");
	vm_mutex_unlock(&am->am_lock);
	cr_assert_null(nw);
	cr_assert_null(old);
	cr_assert_eq(slot_of(am, 0), SLOT_RESIDENT);
	cr_assert_eq(slot_of(am, 1), SLOT_EMPTY);
	cr_assert_eq(amap_anon_count(), anons);
	CHECK(am);
	amap_unref(am, 0, 4);
}

Test(amap, unref_split_reference_frees_only_its_range, .timeout = 10)
{
	struct amap *am;
	struct vm_aref orig, split;

	amap_init_pools();
	am = mk(16);
	fill(am, 0, 16, SLOT_RESIDENT);
	orig.ar_amap = am;
	orig.ar_pageoff = 0;
	amap_splitref(&orig, &split, 10);
	cr_assert_eq(split.ar_amap, am);
	cr_assert_eq(split.ar_pageoff, 10);
	cr_assert_eq(atomic_load(&am->am_ref), 2);
	cr_assert_eq(am->am_flags & AMAP_OVERLAP, 0, "split is disjoint");
	CHECK(am);

	amap_unref(am, split.ar_pageoff, 6);
	CHECK(am);
	cr_assert_eq(atomic_load(&am->am_ref), 1);
	cr_assert_eq(am->am_nused, 10);
	expect_slots(am, 0, 10, SLOT_RESIDENT);
	expect_slots(am, 10, 16, SLOT_EMPTY);
	cr_assert_eq(amap_resident(am, 0, 16), 10);
	amap_unref(am, 0, 10);
}

Test(amap, unref_split_reference_releases_its_anons, .timeout = 10)
{
	struct amap *src, *am;
	struct vm_aref ar, split;
	size_t anons;

	amap_init_pools();
	anons = amap_anon_count();
	src = mk(16);
	fill(src, 0, 16, SLOT_RESIDENT);
	amap_ref(src, true);
	ar.ar_amap = src;
	ar.ar_pageoff = 0;
	cr_assert_eq(amap_copy(&ar, 16), 0);
	am = ar.ar_amap;
	amap_unref(src, 0, 16);		/* am owns all 16 anons */
	CHECK(am);
	cr_assert_eq(amap_anon_count(), anons + 16);

	/* split at 4, then at 12 from the tail: three disjoint refs */
	{
		struct vm_aref tail;

		amap_splitref(&ar, &split, 4);
		amap_splitref(&split, &tail, 8);
		cr_assert_eq(tail.ar_pageoff, 12);
		cr_assert_eq(atomic_load(&am->am_ref), 3);
		amap_unref(am, split.ar_pageoff, 8);	/* the middle */
		CHECK(am);
		cr_assert_eq(amap_anon_count(), anons + 8);
		expect_slots(am, 4, 12, SLOT_EMPTY);
		cr_assert_eq(am->am_nused, 8);
		for (int i = 0; i < 16; i++)
			if (i < 4 || i >= 12)
				cr_assert_eq(atomic_load(
				    &anon_of(am, i)->an_ref), 1);
		amap_unref(am, tail.ar_pageoff, 4);
		CHECK(am);
		cr_assert_eq(amap_anon_count(), anons + 4);
		cr_assert_eq(am->am_nused, 4);
	}
	amap_unref(am, 0, 4);
	cr_assert_eq(amap_anon_count(), anons);
}

Test(amap, overlap_amap_frees_nothing_until_last_reference, .timeout = 10)
{
	struct amap *am;
	size_t kmem0, namaps;

	amap_init_pools();
	warm_amap_pool(16);
	kmem0 = kmem_bytes();
	namaps = amap_count();
	am = mk(16);
	cr_assert_eq(amap_count(), namaps + 1);
	cr_assert_eq(kmem_bytes(), kmem0, "a small amap's arrays come from "
	    "the pools");
	fill(am, 0, 16, SLOT_RESIDENT);
	amap_ref(am, true);
	amap_ref(am, true);
	cr_assert_eq(atomic_load(&am->am_ref), 3);
	cr_assert_neq(am->am_flags & AMAP_OVERLAP, 0);
	CHECK(am);

	amap_unref(am, 0, 8);
	CHECK(am);
	cr_assert_eq(am->am_nused, 16, "partial drop of a shared amap");
	expect_slots(am, 0, 16, SLOT_RESIDENT);
	amap_unref(am, 8, 8);
	CHECK(am);
	cr_assert_eq(atomic_load(&am->am_ref), 1);
	cr_assert_eq(am->am_nused, 16);
	cr_assert_eq(amap_resident(am, 0, 16), 16);

	amap_unref(am, 0, 16);
	cr_assert_eq(amap_count(), namaps, "last reference frees the amap");
	cr_assert_eq(kmem_bytes(), kmem0);
}

Test(amap, mergeref_drops_redundant_reference, .timeout = 10)
{
	struct amap *am;
	struct vm_aref orig, split;

	amap_init_pools();
	am = mk(8);
	fill(am, 0, 8, SLOT_RESIDENT);
	orig.ar_amap = am;
	orig.ar_pageoff = 0;
	amap_splitref(&orig, &split, 3);
	cr_assert_eq(atomic_load(&am->am_ref), 2);
	amap_mergeref(am);
	CHECK(am);
	cr_assert_eq(atomic_load(&am->am_ref), 1);
	cr_assert_eq(am->am_nused, 8, "merging frees nothing");
	expect_slots(am, 0, 8, SLOT_RESIDENT);
	amap_unref(am, 0, 8);
}

Test(amap, last_unref_frees_anons_and_slots, .timeout = 10)
{
	struct amap *src, *cp;
	struct vm_aref ar;
	size_t anons, kmem0;

	amap_init_pools();
	warm_amap_pool(1);
	anons = amap_anon_count();
	kmem0 = kmem_bytes();
	src = mk(1024);
	fill(src, 0, 1024, SLOT_RESIDENT);
	amap_ref(src, true);
	ar.ar_amap = src;
	ar.ar_pageoff = 0;
	cr_assert_eq(amap_copy(&ar, 1024), 0);
	cp = ar.ar_amap;
	cr_assert_eq(amap_anon_count(), anons + 1024);
	amap_unref(src, 0, 1024);
	amap_unref(cp, 0, 1024);
	cr_assert_eq(amap_anon_count(), anons);
	/* anon slabs stay in the pool; only slot arrays go back */
	cr_assert_leq(kmem_bytes(), kmem0 + 2 * KMEM_SLAB_SIZE);
}

Test(amap, check_catches_broken_invariants, .timeout = 10)
{
	struct amap *am;
	int fd[2];

	amap_init_pools();
	cr_assert_eq(pipe(fd), 0);
	upvm_log_set_fd(fd[1]);	/* keep the expected errors quiet */
	am = mk(4);
	fill(am, 0, 2, SLOT_RESIDENT);
	am->am_nused = 3;
	cr_assert_eq(amap_check(am), -EINVAL, "am_nused off by one");
	am->am_nused = 2;
	CHECK(am);
	am->am_slots[3] = 2;		/* no such tag */
	am->am_nused = 3;
	cr_assert_eq(amap_check(am), -EINVAL, "bad tag");
	am->am_slots[3] = (uintptr_t)0x1008;	/* misaligned "anon" */
	cr_assert_eq(amap_check(am), -EINVAL, "misaligned anon");
	am->am_slots[3] = SLOT_EMPTY;
	am->am_nused = 2;
	CHECK(am);
	upvm_log_set_fd(2);
	amap_unref(am, 0, 4);
}

/*
 * A resident page costs its 8-byte slot and nothing more but its share of
 * the clock's reference bits (one per AMAP_UNIT pages): 1M slots (4 GiB of
 * pages) all resolved cost 8 MiB + 4 KiB of kmem and no anon.  The
 * pools are warmed first so that the slabs of the amap header and of the
 * reference bits, a per-pool cost, are not charged to this amap's pages.
 */
Test(amap, resident_page_costs_one_slot, .timeout = 60)
{
	const int n = 1 << 20;
	struct amap *am;
	size_t kmem0, anons, used;
	uintptr_t state;
	int start = -1;

	amap_init_pools();
	warm_amap_pool(n);
	kmem0 = kmem_bytes();
	anons = amap_anon_count();
	am = mk(n);
	cr_assert_eq(claim(am, n / 2, 0, n, &start, &state), n);
	cr_assert_eq(start, 0);
	settle(am, 0, n, SLOT_RESIDENT);
	cr_assert_eq(am->am_nused, n);
	cr_assert_eq(amap_resident(am, 0, n), n);

	used = kmem_bytes() - kmem0;
	cr_assert_leq(used, (size_t)n * 8 + round_page(n / AMAP_UNIT / 8),
	    "%zu bytes of kmem for %d pages "
	    "(%.3f per page)", used, n, (double)used / n);
	cr_assert_eq(amap_anon_count(), anons, "no anon for a private page");

	cr_assert_eq(amap_free_range(am, 0, n), n);
	CHECK(am);
	amap_unref(am, 0, n);
	cr_assert_eq(kmem_bytes(), kmem0);
}

/*
 * A shared page costs its slot plus a 16-byte anon: sharing 64K pages adds
 * 1 MiB of anon slabs (rounded up to a slab at most).
 */
Test(amap, shared_page_costs_sixteen_byte_anon, .timeout = 60)
{
	const int n = 1 << 16;
	struct amap *src, *cp;
	struct vm_aref ar;
	size_t meta0, used;

	amap_init_pools();
	warm_amap_pool(1);
	src = mk(n);
	fill(src, 0, n, SLOT_RESIDENT);
	meta0 = amap_meta_bytes();
	amap_ref(src, true);
	ar.ar_amap = src;
	ar.ar_pageoff = 0;
	cr_assert_eq(amap_copy(&ar, n), 0);
	cp = ar.ar_amap;
	CHECK(src);
	CHECK(cp);
	cr_assert_eq(sizeof(struct anon), 16);
	used = amap_meta_bytes() - meta0;
	cr_assert_leq(used, (size_t)n * 16 + KMEM_SLAB_SIZE,
	    "%zu bytes of anons and amaps for %d shared pages", used, n);
	amap_unref(cp, 0, n);
	amap_unref(src, 0, n);
}

Test(amap, sample_counts_nonempty_probes, .timeout = 10)
{
	struct amap *am;
	uintptr_t state;
	int start, n;

	amap_init_pools();
	am = mk(256);
	/* blocks 0, 3 and 15 of 16 resolved; block 7 only from page 2 on */
	for (int b = 0; b < 16; b++) {
		if (b != 0 && b != 3 && b != 15 && b != 7)
			continue;
		vm_mutex_lock(&am->am_lock);
		n = amap_claim(am, b * 16 + 2, b * 16 + (b == 7 ? 2 : 0),
		    b * 16 + 16, &start, &state);
		amap_settle(am, start, n, SLOT_RESIDENT);
		vm_mutex_unlock(&am->am_lock);
		cr_assert_eq(amap_check(am), 0);
	}
	vm_mutex_lock(&am->am_lock);
	cr_assert_eq(amap_sample(am, 0, 256, 16), 3);
	cr_assert_eq(amap_sample(am, 2, 256, 16), 4);
	cr_assert_eq(amap_sample(am, 16, 48, 16), 0);
	cr_assert_eq(amap_sample(am, 0, 1, 16), 1);
	vm_mutex_unlock(&am->am_lock);
	cr_assert_eq(amap_check(am), 0);
	amap_unref(am, 0, 256);
}

/*
 * A pagein claim extends its run to neighbours whose swap slots follow the
 * faulting page's, backwards no further than slot 1: slot 0 means "none",
 * and a neighbour must never be read from it (a read at offset 0 failed
 * with EINVAL under a readahead of 16 pages: the neighbour had slot 77).
 */
Test(amap, claim_swapped_stops_at_swap_slot_one, .timeout = 10)
{
	struct amap *am, *cp;
	struct vm_aref ar = { 0, NULL };
	struct anon *held[8], *an;
	uint64_t swslot = 0;
	const uint64_t want[8] = { 0, 0, 9, 77, 1, 2, 3, 0 };
	int start = -1, n;

	amap_init_pools();
	am = mk(8);
	fill(am, 0, 8, SLOT_RESIDENT);
	amap_ref(am, true);
	ar.ar_amap = am;
	cr_assert_eq(amap_copy(&ar, 8), 0);
	cp = ar.ar_amap;
	amap_unref(am, 0, 8);
	/* pages 2..6 swapped out at slots 9, 77, 1, 2, 3 */
	vm_mutex_lock(&cp->am_lock);
	for (int i = 2; i < 7; i++) {
		an = (struct anon *)amap_slot(cp, i);
		an->an_flags = ANON_SWAPPED;
		an->an_swslot = want[i];
	}
	n = amap_claim_swapped(cp, 5, 0, 8, &start, &swslot, held);
	cr_assert_eq(n, 3, "the run is slots 1..3 at pages 4..6, not %d", n);
	cr_assert_eq(start, 4);
	cr_assert_eq(swslot, 1);
	for (int i = 0; i < n; i++) {
		cr_assert(held[i]->an_flags & ANON_TRANSIT);
		held[i]->an_flags &= ~ANON_TRANSIT;
		atomic_fetch_sub(&held[i]->an_ref, 1);
	}
	for (int i = 2; i < 7; i++)
		((struct anon *)amap_slot(cp, i))->an_swslot = 0;
	vm_mutex_unlock(&cp->am_lock);
	amap_unref(cp, 0, 8);
}
