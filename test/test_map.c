/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_map.c: the map's tree, lookups, clipping and merging.
 *
 * Every test keeps its map write-locked from start to end (the functions
 * under test assert their lock claims) and runs vm_map_check() after each
 * mutation.  Nothing here maps memory: entries are only address ranges.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "amap.h"
#include "map.h"
#include "pager.h"
#include "vm.h"

#define BASE		((vaddr_t)0x100000000)
#define PG(n)		(BASE + ptoa((vaddr_t)(n)))
#define CHECK(m)	cr_assert_eq(vm_map_check(m), 0, "map check")

/* a pager that only counts: entries hold references to it */
static int tp_destroyed;

static int
tp_get(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return -EIO;
}

static void
tp_destroy(struct pager *pgr)
{
	tp_destroyed++;
}

static const struct pager_ops test_pager_ops = {
	.name = "test-map", .pgo_get = tp_get, .pgo_destroy = tp_destroy,
};

static void
map_begin(struct vm_map *map)
{
	vm_map_init(map);
	vm_rwlock_wrlock(&map->m_lock);
	CHECK(map);
}

static void
map_end(struct vm_map *map)
{
	CHECK(map);
	vm_rwlock_unlock(&map->m_lock);
	vm_map_destroy(map);
}

/* an entry for pages [s, e) linked into map */
static struct vm_map_entry *
ins(struct vm_map *map, int s, int e)
{
	struct vm_map_entry *ent = vm_map_entry_alloc(map, PG(s), PG(e));

	cr_assert_not_null(ent);
	cr_assert_eq(vm_map_insert(map, ent), 0, "insert [%d, %d)", s, e);
	CHECK(map);
	return ent;
}

static int
refs(struct amap *am)
{
	return atomic_load(&am->am_ref);
}

static int
pgrefs(struct pager *pgr)
{
	return atomic_load(&pgr->pgr_ref);
}

Test(map, entry_alloc_defaults, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *e;

	map_begin(&map);
	e = vm_map_entry_alloc(&map, PG(1), PG(3));
	cr_assert_not_null(e);
	cr_assert_eq(e->e_start, PG(1));
	cr_assert_eq(e->e_end, PG(3));
	cr_assert_null(e->e_obj);
	cr_assert_null(e->e_aref.ar_amap);
	cr_assert_eq(e->e_prot, VM_PROT_RW);
	cr_assert_eq(e->e_inherit, VM_INH_COPY);
	cr_assert_eq(e->e_advice, VM_ADV_NORMAL);
	cr_assert_eq(e->e_etype, VM_ET_COPYONWRITE);
	cr_assert_eq(e->e_wired, 0);
	cr_assert_eq(vm_entry_npages(e), 2);
	vm_map_entry_free(&map, e);
	cr_assert_eq(map.m_nentries, 0);
	map_end(&map);
}

Test(map, insert_and_lookup, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *a, *b, *c;

	map_begin(&map);
	b = ins(&map, 20, 30);
	a = ins(&map, 0, 10);
	c = ins(&map, 30, 31);
	cr_assert_eq(map.m_nentries, 3);
	cr_assert_eq(map.m_size, ptoa(21));
	cr_assert_eq(vm_map_lookup(&map, PG(0)), a);
	cr_assert_eq(vm_map_lookup(&map, PG(10) - 1), a);
	cr_assert_eq(vm_map_lookup(&map, PG(5) + 123), a);
	cr_assert_null(vm_map_lookup(&map, PG(10)));
	cr_assert_null(vm_map_lookup(&map, PG(19) + 4095));
	cr_assert_eq(vm_map_lookup(&map, PG(20)), b);
	cr_assert_eq(vm_map_lookup(&map, PG(29) + 7), b);
	cr_assert_eq(vm_map_lookup(&map, PG(30)), c);
	cr_assert_null(vm_map_lookup(&map, PG(31)));
	cr_assert_null(vm_map_lookup(&map, BASE - 1));
	cr_assert_null(vm_map_lookup(&map, 0));
	cr_assert_null(vm_map_lookup(&map, VM_MAX_ADDRESS));
	CHECK(&map);
	map_end(&map);
}

Test(map, overlap_is_rejected_and_changes_nothing, .timeout = 30)
{
	static const int bad[][2] = {
		{ 10, 20 }, { 15, 25 }, { 5, 11 }, { 12, 13 }, { 0, 100 },
		{ 19, 20 }, { 9, 21 }, { 10, 11 }, { 19, 40 },
	};
	struct vm_map map;
	struct vm_map_entry *a, *e;

	map_begin(&map);
	a = ins(&map, 10, 20);
	for (size_t i = 0; i < nitems(bad); i++) {
		e = vm_map_entry_alloc(&map, PG(bad[i][0]), PG(bad[i][1]));
		cr_assert_not_null(e);
		cr_assert_eq(vm_map_insert(&map, e), -EEXIST, "[%d, %d)",
		    bad[i][0], bad[i][1]);
		CHECK(&map);
		cr_assert_eq(map.m_nentries, 1);
		cr_assert_eq(map.m_size, ptoa(10));
		cr_assert_eq(a->e_start, PG(10));
		cr_assert_eq(a->e_end, PG(20));
		cr_assert_eq(vm_map_lookup(&map, PG(bad[i][0])),
		    bad[i][0] >= 10 && bad[i][0] < 20 ? a : NULL);
		vm_map_entry_free(&map, e);
	}
	/* touching neighbours are fine */
	ins(&map, 5, 10);
	ins(&map, 20, 25);
	cr_assert_eq(map.m_nentries, 3);
	cr_assert_eq(map.m_size, ptoa(20));
	map_end(&map);
}

Test(map, lookup_sets_and_unlink_clears_hint, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *a, *b;

	map_begin(&map);
	a = ins(&map, 0, 4);
	b = ins(&map, 8, 12);
	cr_assert_null(atomic_load(&map.m_hint));
	cr_assert_eq(vm_map_lookup(&map, PG(1)), a);
	cr_assert_eq(atomic_load(&map.m_hint), a);
	cr_assert_eq(vm_map_lookup(&map, PG(2)), a, "hit through the hint");
	cr_assert_eq(vm_map_lookup(&map, PG(9)), b, "hint misses, tree hits");
	cr_assert_eq(atomic_load(&map.m_hint), b);
	cr_assert_null(vm_map_lookup(&map, PG(5)));
	cr_assert_eq(atomic_load(&map.m_hint), b, "a miss keeps the hint");
	/* a hint that does not contain va must not be returned */
	cr_assert_null(vm_map_lookup(&map, PG(12)));
	CHECK(&map);
	vm_map_unlink(&map, a);
	cr_assert_eq(atomic_load(&map.m_hint), b, "other entry keeps hint");
	CHECK(&map);
	vm_map_entry_free(&map, a);
	vm_map_unlink(&map, b);
	cr_assert_null(atomic_load(&map.m_hint));
	CHECK(&map);
	cr_assert_null(vm_map_lookup(&map, PG(9)));
	vm_map_entry_free(&map, b);
	cr_assert_eq(map.m_nentries, 0);
	cr_assert_eq(map.m_size, 0);
	map_end(&map);
}

Test(map, first_ge_next_prev, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *e[5], *x;
	static const int r[5][2] = {
		{ 2, 4 }, { 4, 5 }, { 9, 12 }, { 100, 200 }, { 300, 301 },
	};
	int i;

	map_begin(&map);
	/* insert out of order */
	for (i = 4; i >= 0; i -= 2)
		e[i] = ins(&map, r[i][0], r[i][1]);
	for (i = 1; i < 5; i += 2)
		e[i] = ins(&map, r[i][0], r[i][1]);
	cr_assert_eq(vm_map_first_ge(&map, 0), e[0]);
	cr_assert_eq(vm_map_first_ge(&map, PG(2)), e[0]);
	cr_assert_eq(vm_map_first_ge(&map, PG(4) - 1), e[0]);
	cr_assert_eq(vm_map_first_ge(&map, PG(4)), e[1]);
	cr_assert_eq(vm_map_first_ge(&map, PG(5)), e[2]);
	cr_assert_eq(vm_map_first_ge(&map, PG(8)), e[2]);
	cr_assert_eq(vm_map_first_ge(&map, PG(12)), e[3]);
	cr_assert_eq(vm_map_first_ge(&map, PG(150)), e[3]);
	cr_assert_eq(vm_map_first_ge(&map, PG(200)), e[4]);
	cr_assert_null(vm_map_first_ge(&map, PG(301)));
	cr_assert_null(vm_map_first_ge(&map, VM_MAX_ADDRESS));
	for (x = vm_map_first_ge(&map, 0), i = 0; x != NULL;
	    x = vm_map_next(&map, x), i++)
		cr_assert_eq(x, e[i], "forward %d", i);
	cr_assert_eq(i, 5);
	for (x = e[4], i = 4; x != NULL; x = vm_map_prev(&map, x), i--)
		cr_assert_eq(x, e[i], "backward %d", i);
	cr_assert_eq(i, -1);
	/* unlink the middle one: neighbours close up */
	vm_map_unlink(&map, e[2]);
	CHECK(&map);
	cr_assert_eq(vm_map_next(&map, e[1]), e[3]);
	cr_assert_eq(vm_map_prev(&map, e[3]), e[1]);
	cr_assert_eq(vm_map_first_ge(&map, PG(5)), e[3]);
	cr_assert_null(vm_map_lookup(&map, PG(10)));
	cr_assert_eq(map.m_nentries, 4);
	cr_assert_eq(map.m_size, ptoa(2 + 1 + 100 + 1));
	vm_map_entry_free(&map, e[2]);
	map_end(&map);
}

Test(map, range_managed, .timeout = 30)
{
	struct vm_map map;

	map_begin(&map);
	ins(&map, 0, 4);
	ins(&map, 4, 8);
	ins(&map, 10, 12);
	cr_assert(vm_map_range_managed(&map, PG(0), PG(8)));
	cr_assert(vm_map_range_managed(&map, PG(1), PG(7)));
	cr_assert(vm_map_range_managed(&map, PG(3) + 5, PG(4) + 1));
	cr_assert(vm_map_range_managed(&map, PG(10), PG(12)));
	cr_assert(vm_map_range_managed(&map, PG(11), PG(11)), "empty");
	cr_assert_not(vm_map_range_managed(&map, PG(0), PG(9)));
	cr_assert_not(vm_map_range_managed(&map, PG(7), PG(8) + 1));
	cr_assert_not(vm_map_range_managed(&map, PG(8), PG(10)));
	cr_assert_not(vm_map_range_managed(&map, PG(3), PG(11)));
	cr_assert_not(vm_map_range_managed(&map, PG(11), PG(13)));
	cr_assert_not(vm_map_range_managed(&map, BASE - PAGE_SIZE, PG(1)));
	cr_assert_not(vm_map_range_managed(&map, PG(20), PG(21)));
	map_end(&map);
}

/*
 * A 16-page entry with an object at offset 5 pages, non-default attributes
 * and (if am != NULL) slots [4, 20) of am.
 */
static struct vm_map_entry *
ins16(struct vm_map *map, struct pager *pgr, struct amap *am)
{
	struct vm_map_entry *e = vm_map_entry_alloc(map, PG(0), PG(16));

	cr_assert_not_null(e);
	pager_ref(pgr);
	e->e_obj = pgr;
	e->e_offset = ptoa(5);
	e->e_prot = VM_PROT_READ;
	e->e_advice = VM_ADV_SEQUENTIAL;
	e->e_inherit = VM_INH_SHARE;
	e->e_cluster.cl_clock = 77;
	if (am != NULL) {
		e->e_aref.ar_amap = am;
		e->e_aref.ar_pageoff = 4;
	}
	cr_assert_eq(vm_map_insert(map, e), 0);
	CHECK(map);
	return e;
}

/* the two parts of ins16's entry split at page k */
static void
assert_split(struct vm_map *map, struct vm_map_entry *lo,
    struct vm_map_entry *hi, int k, struct amap *am)
{
	struct vm_map_entry *p[2] = { lo, hi };

	cr_assert_eq(map->m_nentries, 2, "k %d", k);
	cr_assert_eq(map->m_size, ptoa(16));
	cr_assert_eq(vm_map_next(map, lo), hi);
	cr_assert_eq(lo->e_start, PG(0));
	cr_assert_eq(lo->e_end, PG(k));
	cr_assert_eq(hi->e_start, PG(k));
	cr_assert_eq(hi->e_end, PG(16));
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(p[i]->e_offset, ptoa(5) + p[i]->e_start - PG(0),
		    "k %d part %d offset", k, i);
		cr_assert_eq(p[i]->e_prot, VM_PROT_READ);
		cr_assert_eq(p[i]->e_advice, VM_ADV_SEQUENTIAL);
		cr_assert_eq(p[i]->e_inherit, VM_INH_SHARE);
		cr_assert_eq(p[i]->e_cluster.cl_clock, 77, "stream state kept");
		cr_assert_eq(p[i]->e_aref.ar_amap, am);
		if (am != NULL)
			cr_assert_eq(p[i]->e_aref.ar_pageoff,
			    4 + (int)atop(p[i]->e_start - PG(0)),
			    "k %d part %d pageoff", k, i);
	}
	cr_assert_eq(vm_map_lookup(map, PG(k) - 1), lo);
	cr_assert_eq(vm_map_lookup(map, PG(k)), hi);
	if (am != NULL)
		cr_assert_eq(refs(am), 2, "k %d", k);
}

/* after merging back: one entry exactly like ins16's */
static void
assert_whole(struct vm_map *map, struct vm_map_entry *e, struct amap *am,
    struct pager *pgr)
{
	cr_assert_eq(map->m_nentries, 1);
	cr_assert_eq(map->m_size, ptoa(16));
	cr_assert_eq(e->e_start, PG(0));
	cr_assert_eq(e->e_end, PG(16));
	cr_assert_eq(e->e_offset, ptoa(5));
	cr_assert_eq(e->e_aref.ar_amap, am);
	if (am != NULL) {
		cr_assert_eq(e->e_aref.ar_pageoff, 4);
		cr_assert_eq(refs(am), 1);
	}
	cr_assert_eq(pgrefs(pgr), 2, "the test's and the entry's");
	cr_assert_eq(vm_map_lookup(map, PG(0)), e);
}

static void
clip_every_page(bool use_amap, bool at_start)
{
	struct vm_map map;
	struct vm_map_entry *e, *other, *lo, *hi;
	struct amap *am = NULL;
	struct pager pgr;

	amap_init_pools();
	pager_init(&pgr, &test_pager_ops, 0);
	if (use_amap)
		cr_assert_eq(amap_create(24, &am), 0);
	map_begin(&map);
	e = ins16(&map, &pgr, am);
	/* edges are no-ops */
	cr_assert_eq(vm_map_clip_start(&map, e, PG(0)), 0);
	cr_assert_eq(vm_map_clip_end(&map, e, PG(16)), 0);
	cr_assert_eq(vm_map_clip_end(&map, e, PG(0)), 0);
	cr_assert_eq(vm_map_clip_start(&map, e, PG(16)), 0);
	CHECK(&map);
	assert_whole(&map, e, am, &pgr);
	for (int k = 1; k < 16; k++) {
		if (at_start) {
			cr_assert_eq(vm_map_clip_start(&map, e, PG(k)), 0);
			cr_assert_eq(e->e_start, PG(k), "e is the tail");
			other = vm_map_prev(&map, e);
			lo = other;
			hi = e;
		} else {
			cr_assert_eq(vm_map_clip_end(&map, e, PG(k)), 0);
			cr_assert_eq(e->e_end, PG(k), "e is the front");
			other = vm_map_next(&map, e);
			lo = e;
			hi = other;
		}
		CHECK(&map);
		cr_assert_not_null(other);
		assert_split(&map, lo, hi, k, am);
		cr_assert_eq(pgrefs(&pgr), 3, "one reference per part");
		/* merge from either side gives the left part back */
		e = vm_map_merge(&map, k % 2 ? lo : hi);
		CHECK(&map);
		cr_assert_eq(e, lo, "the left entry survives");
		assert_whole(&map, e, am, &pgr);
	}
	map_end(&map);
	cr_assert_eq(pgrefs(&pgr), 1, "destroy dropped the entry's reference");
	cr_assert_eq(tp_destroyed, 0);
	amap_fini_pools();
}

Test(map, clip_end_at_every_page, .timeout = 30)
{
	clip_every_page(false, false);
}

Test(map, clip_start_at_every_page, .timeout = 30)
{
	clip_every_page(false, true);
}

Test(map, clip_end_at_every_page_with_amap, .timeout = 30)
{
	clip_every_page(true, false);
}

Test(map, clip_start_at_every_page_with_amap, .timeout = 30)
{
	clip_every_page(true, true);
}

Test(map, clip_to_single_pages_and_merge_back, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *e, *x;
	struct amap *am;
	struct pager pgr;
	int i;

	amap_init_pools();
	pager_init(&pgr, &test_pager_ops, 0);
	cr_assert_eq(amap_create(24, &am), 0);
	map_begin(&map);
	e = ins16(&map, &pgr, am);
	/* alternate sides: from the back with clip_end, front with start */
	for (i = 1; i < 16; i++) {
		x = vm_map_lookup(&map, PG(i));
		if (i % 2)
			cr_assert_eq(vm_map_clip_start(&map, x, PG(i)), 0);
		else
			cr_assert_eq(vm_map_clip_end(&map,
			    vm_map_lookup(&map, PG(i - 1)), PG(i)), 0);
		CHECK(&map);
	}
	cr_assert_eq(map.m_nentries, 16);
	cr_assert_eq(refs(am), 16);
	cr_assert_eq(pgrefs(&pgr), 17);
	for (i = 0, x = vm_map_first_ge(&map, 0); x != NULL;
	    x = vm_map_next(&map, x), i++) {
		cr_assert_eq(x->e_start, PG(i));
		cr_assert_eq(x->e_end, PG(i + 1));
		cr_assert_eq(x->e_aref.ar_pageoff, 4 + i, "page %d", i);
		cr_assert_eq(x->e_offset, ptoa(5 + i));
		cr_assert_eq(vm_entry_slot(x, PG(i) + 100), 4 + i);
	}
	/* merge in a scattered order (7 is prime to 16: every page once) */
	for (i = 0; i < 16; i++) {
		int page = (i * 7) % 16;

		x = vm_map_merge(&map, vm_map_lookup(&map, PG(page)));
		CHECK(&map);
		cr_assert_leq(x->e_start, PG(page));
		cr_assert_gt(x->e_end, PG(page));
		cr_assert_eq(refs(am), map.m_nentries);
		cr_assert_eq(pgrefs(&pgr), map.m_nentries + 1);
	}
	e = vm_map_first_ge(&map, 0);
	assert_whole(&map, e, am, &pgr);
	map_end(&map);
	cr_assert_eq(pgrefs(&pgr), 1);
	amap_fini_pools();
}

Test(map, entry_free_releases_only_its_slots, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *e, *mid;
	struct amap *am;
	struct pager pgr;

	amap_init_pools();
	pager_init(&pgr, &test_pager_ops, 0);
	cr_assert_eq(amap_create(24, &am), 0);
	vm_mutex_lock(&am->am_lock);
	for (int i = 0; i < 24; i++) {
		am->am_slots[i] = SLOT_RESIDENT;
		am->am_nused++;
	}
	vm_mutex_unlock(&am->am_lock);
	map_begin(&map);
	e = ins16(&map, &pgr, am);
	cr_assert_eq(vm_map_clip_end(&map, e, PG(6)), 0);
	CHECK(&map);
	mid = vm_map_next(&map, e);
	cr_assert_eq(vm_map_clip_end(&map, mid, PG(9)), 0);
	CHECK(&map);
	cr_assert_eq(refs(am), 3);
	cr_assert_eq(pgrefs(&pgr), 4);
	/* mid is [6, 9): slots 10, 11, 12 */
	vm_map_unlink(&map, mid);
	CHECK(&map);
	vm_map_entry_free(&map, mid);
	cr_assert_eq(refs(am), 2);
	cr_assert_eq(pgrefs(&pgr), 3);
	cr_assert_eq(am->am_nused, 21);
	for (int i = 0; i < 24; i++)
		cr_assert_eq(am->am_slots[i], i >= 10 && i < 13 ? SLOT_EMPTY :
		    SLOT_RESIDENT, "slot %d", i);
	cr_assert_eq(amap_check(am), 0);
	cr_assert_not(vm_map_range_managed(&map, PG(0), PG(16)));
	cr_assert(vm_map_range_managed(&map, PG(9), PG(16)));
	/* the gap stops merging */
	cr_assert_eq(vm_map_merge(&map, e), e);
	cr_assert_eq(map.m_nentries, 2);
	CHECK(&map);
	map_end(&map);
	cr_assert_eq(pgrefs(&pgr), 1);
	amap_fini_pools();
}

/* two adjacent 4-page entries, [0, 4) and [4, 8), of one clipped entry */
static void
pair(struct vm_map *map, struct amap *am, struct pager *pgr,
    struct vm_map_entry **lp, struct vm_map_entry **rp)
{
	struct vm_map_entry *e = vm_map_entry_alloc(map, PG(0), PG(8));

	cr_assert_not_null(e);
	if (am != NULL) {
		e->e_aref.ar_amap = am;
		e->e_aref.ar_pageoff = 2;
	}
	if (pgr != NULL) {
		pager_ref(pgr);
		e->e_obj = pgr;
		e->e_offset = ptoa(3);
	}
	cr_assert_eq(vm_map_insert(map, e), 0);
	cr_assert_eq(vm_map_clip_end(map, e, PG(4)), 0);
	CHECK(map);
	*lp = e;
	*rp = vm_map_next(map, e);
	cr_assert_eq(map->m_nentries, 2);
}

/* merging r or l changes nothing */
static void
assert_no_merge(struct vm_map *map, struct vm_map_entry *l,
    struct vm_map_entry *r, const char *why)
{
	cr_assert_eq(vm_map_merge(map, r), r, "%s", why);
	CHECK(map);
	cr_assert_eq(vm_map_merge(map, l), l, "%s", why);
	CHECK(map);
	cr_assert_eq(map->m_nentries, 2, "%s", why);
	cr_assert_eq(vm_map_next(map, l), r, "%s", why);
	cr_assert_eq(l->e_end, r->e_start, "%s", why);
}

static void
remove_all(struct vm_map *map)
{
	struct vm_map_entry *e;

	while ((e = vm_map_first_ge(map, 0)) != NULL) {
		vm_map_unlink(map, e);
		CHECK(map);
		vm_map_entry_free(map, e);
	}
}

Test(map, merge_refuses_incompatible_neighbours, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *l, *r, *x;
	struct amap *am, *am2;
	struct pager pgr, pgr2;

	amap_init_pools();
	pager_init(&pgr, &test_pager_ops, 0);
	pager_init(&pgr2, &test_pager_ops, 0);
	cr_assert_eq(amap_create(16, &am), 0);
	map_begin(&map);

	pair(&map, am, &pgr, &l, &r);
	r->e_prot = VM_PROT_READ;
	assert_no_merge(&map, l, r, "prot");
	r->e_prot = l->e_prot;
	r->e_maxprot = VM_PROT_READ;
	assert_no_merge(&map, l, r, "maxprot");
	r->e_maxprot = l->e_maxprot;
	r->e_advice = VM_ADV_RANDOM;
	assert_no_merge(&map, l, r, "advice");
	r->e_advice = l->e_advice;
	r->e_inherit = VM_INH_NONE;
	assert_no_merge(&map, l, r, "inherit");
	r->e_inherit = l->e_inherit;
	r->e_etype |= VM_ET_NEEDSCOPY;
	assert_no_merge(&map, l, r, "etype");
	r->e_etype = l->e_etype;
	r->e_wired = 1;
	assert_no_merge(&map, l, r, "wired");
	r->e_wired = 0;
	r->e_aref.ar_pageoff++;
	assert_no_merge(&map, l, r, "amap slots not contiguous");
	r->e_aref.ar_pageoff--;
	r->e_offset += PAGE_SIZE;
	assert_no_merge(&map, l, r, "object offsets not contiguous");
	r->e_offset -= PAGE_SIZE;
	cr_assert_eq(refs(am), 2);
	/* all restored: now they merge, from the right */
	x = vm_map_merge(&map, r);
	CHECK(&map);
	cr_assert_eq(x, l);
	cr_assert_eq(map.m_nentries, 1);
	cr_assert_eq(l->e_end, PG(8));
	cr_assert_eq(refs(am), 1);
	cr_assert_eq(pgrefs(&pgr), 2);
	remove_all(&map);
	cr_assert_eq(pgrefs(&pgr), 1);

	/* different amaps at "contiguous" slots */
	cr_assert_eq(amap_create(16, &am), 0);
	cr_assert_eq(amap_create(16, &am2), 0);
	pair(&map, am, NULL, &l, &r);
	cr_assert_eq(refs(am), 2);
	amap_unref(am, r->e_aref.ar_pageoff, 4);
	r->e_aref.ar_amap = am2;
	assert_no_merge(&map, l, r, "different amaps");
	/* one with an amap, one without */
	amap_unref(am2, r->e_aref.ar_pageoff, 4);
	r->e_aref.ar_amap = NULL;
	assert_no_merge(&map, l, r, "amap and no amap");
	cr_assert_eq(refs(am), 1);
	remove_all(&map);

	/* different objects, object and zero-fill */
	pair(&map, NULL, &pgr, &l, &r);
	pager_unref(&pgr);
	pager_ref(&pgr2);
	r->e_obj = &pgr2;
	assert_no_merge(&map, l, r, "different objects");
	pager_unref(&pgr2);
	r->e_obj = NULL;
	assert_no_merge(&map, l, r, "object and zero-fill");
	remove_all(&map);
	cr_assert_eq(pgrefs(&pgr), 1);
	cr_assert_eq(pgrefs(&pgr2), 1);

	/* a gap of one page */
	l = ins(&map, 0, 4);
	r = ins(&map, 5, 8);
	cr_assert_eq(vm_map_merge(&map, r), r);
	cr_assert_eq(vm_map_merge(&map, l), l);
	cr_assert_eq(map.m_nentries, 2);
	CHECK(&map);
	map_end(&map);
	cr_assert_eq(tp_destroyed, 0);
	amap_fini_pools();
}

Test(map, merge_joins_both_sides, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *a, *b, *c, *x;

	map_begin(&map);
	/* zero-fill entries without amap merge whatever their offsets */
	a = ins(&map, 0, 2);
	c = ins(&map, 5, 9);
	b = ins(&map, 2, 5);
	x = ins(&map, 10, 11);
	cr_assert_eq(vm_map_lookup(&map, PG(3)), b);
	cr_assert_eq(vm_map_merge(&map, b), a);
	CHECK(&map);
	cr_assert_eq(map.m_nentries, 2);
	cr_assert_eq(a->e_start, PG(0));
	cr_assert_eq(a->e_end, PG(9));
	cr_assert_eq(vm_map_lookup(&map, PG(3)), a, "no stale hint");
	cr_assert_eq(vm_map_lookup(&map, PG(8)), a);
	cr_assert_eq(vm_map_next(&map, a), x);
	cr_assert_eq(map.m_size, ptoa(10));
	(void)c;
	map_end(&map);
}

Test(map, check_catches_corruption, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *a, *loose;
	struct amap *am;

	amap_init_pools();
	map_begin(&map);
	a = ins(&map, 0, 4);
	map.m_size += PAGE_SIZE;
	cr_assert_eq(vm_map_check(&map), -EINVAL, "m_size");
	map.m_size -= PAGE_SIZE;
	map.m_nentries++;
	cr_assert_eq(vm_map_check(&map), -EINVAL, "m_nentries");
	map.m_nentries--;
	CHECK(&map);
	loose = vm_map_entry_alloc(&map, PG(8), PG(9));
	atomic_store(&map.m_hint, loose);
	cr_assert_eq(vm_map_check(&map), -EINVAL, "hint not in the tree");
	atomic_store(&map.m_hint, NULL);
	vm_map_entry_free(&map, loose);
	cr_assert_eq(amap_create(4, &am), 0);
	a->e_aref.ar_amap = am;
	a->e_aref.ar_pageoff = 1;
	cr_assert_eq(vm_map_check(&map), -EINVAL, "slots past the amap");
	a->e_aref.ar_pageoff = 0;
	CHECK(&map);
	a->e_end = PG(4) - 8;
	cr_assert_eq(vm_map_check(&map), -EINVAL, "unaligned end");
	a->e_end = PG(4);
	CHECK(&map);
	map_end(&map);
	amap_fini_pools();
}

/*
 * The reference model for random_ops: per page, the id of the insert that
 * made it (each insert has its own amap) or -1, and the range of the entry
 * now covering it.
 */
#define RP	256
#define NOPS	2000
struct model {
	int		 id[RP];	/* insert id, -1: unmapped */
	int		 lo[RP], hi[RP];	/* entry range, pages */
	int		 start0[NOPS];	/* insert id -> first page */
	int		 pageoff0[NOPS];	/* insert id -> ar_pageoff */
	struct amap	*am[NOPS];	/* insert id -> its amap */
};

static void
model_compare(struct vm_map *map, struct model *m, int nids)
{
	struct vm_map_entry *e;
	int counts[NOPS], n = 0, pages = 0, p;

	memset(counts, 0, sizeof(counts));
	for (p = 0; p < RP; p++) {
		e = vm_map_lookup(map, PG(p) + 17);
		if (m->id[p] < 0) {
			cr_assert_null(e, "page %d should be unmapped", p);
			continue;
		}
		pages++;
		cr_assert_not_null(e, "page %d should be mapped", p);
		cr_assert_eq(e->e_start, PG(m->lo[p]), "page %d start", p);
		cr_assert_eq(e->e_end, PG(m->hi[p]), "page %d end", p);
		cr_assert_eq(e->e_aref.ar_amap, m->am[m->id[p]]);
		cr_assert_eq(vm_entry_slot(e, PG(p)), m->pageoff0[m->id[p]] +
		    p - m->start0[m->id[p]], "page %d slot", p);
		if (m->lo[p] == p) {
			counts[m->id[p]]++;
			n++;
		}
	}
	cr_assert_eq(map->m_nentries, n);
	cr_assert_eq(map->m_size, ptoa(pages));
	for (int i = 0; i < nids; i++)
		if (counts[i] > 0)
			cr_assert_eq(refs(m->am[i]), counts[i], "amap of id %d",
			    i);
}

static void
model_set(struct model *m, int lo, int hi)
{
	for (int p = lo; p < hi; p++) {
		m->lo[p] = lo;
		m->hi[p] = hi;
	}
}

Test(map, random_ops_match_reference, .timeout = 30)
{
	struct vm_map map;
	struct vm_map_entry *e;
	struct model *m = calloc(1, sizeof(*m));
	unsigned seed = 12345;
	int nids = 0, op, s, len, p, k, lo, hi, i;
	bool free_run;

	cr_assert_not_null(m);
	amap_init_pools();
	for (p = 0; p < RP; p++)
		m->id[p] = -1;
	map_begin(&map);
	for (i = 0; i < NOPS; i++) {
		op = rand_r(&seed) % 10;
		p = rand_r(&seed) % RP;
		e = vm_map_lookup(&map, PG(p));
		if (op < 5) {
			/* insert [s, s + len) with its own amap */
			s = p;
			len = 1 + rand_r(&seed) % 16;
			if (s + len > RP)
				len = RP - s;
			free_run = true;
			for (k = s; k < s + len; k++)
				if (m->id[k] >= 0)
					free_run = false;
			e = vm_map_entry_alloc(&map, PG(s), PG(s + len));
			cr_assert_not_null(e);
			m->pageoff0[nids] = rand_r(&seed) % 4;
			cr_assert_eq(amap_create(len + m->pageoff0[nids] +
			    rand_r(&seed) % 3, &m->am[nids]), 0);
			e->e_aref.ar_amap = m->am[nids];
			e->e_aref.ar_pageoff = m->pageoff0[nids];
			m->start0[nids] = s;
			if (vm_map_insert(&map, e) != 0) {
				cr_assert_not(free_run, "insert %d [%d, %d)",
				    i, s, s + len);
				vm_map_entry_free(&map, e);
			} else {
				cr_assert(free_run, "insert %d [%d, %d)", i, s,
				    s + len);
				for (k = s; k < s + len; k++)
					m->id[k] = nids;
				model_set(m, s, s + len);
			}
			nids++;
		} else if (op < 7) {
			/* remove the entry at p */
			cr_assert_eq(e != NULL, m->id[p] >= 0, "op %d", i);
			if (e == NULL)
				continue;
			lo = m->lo[p];
			hi = m->hi[p];
			vm_map_unlink(&map, e);
			vm_map_entry_free(&map, e);
			for (k = lo; k < hi; k++)
				m->id[k] = -1;
		} else if (op < 9) {
			/* clip the entry at p at p's page */
			if (e == NULL || m->lo[p] == p)
				continue;
			lo = m->lo[p];
			hi = m->hi[p];
			if (op == 7)
				cr_assert_eq(vm_map_clip_start(&map, e, PG(p)),
				    0);
			else
				cr_assert_eq(vm_map_clip_end(&map, e, PG(p)),
				    0);
			model_set(m, lo, p);
			model_set(m, p, hi);
		} else {
			/* merge: joins pieces of one insert that touch */
			if (e == NULL)
				continue;
			e = vm_map_merge(&map, e);
			lo = m->lo[p];
			hi = m->hi[p];
			if (lo > 0 && m->id[lo - 1] == m->id[p])
				lo = m->lo[lo - 1];
			if (hi < RP && m->id[hi] == m->id[p])
				hi = m->hi[hi];
			model_set(m, lo, hi);
			cr_assert_eq(e->e_start, PG(lo), "merge %d", i);
			cr_assert_eq(e->e_end, PG(hi), "merge %d", i);
		}
		CHECK(&map);
		model_compare(&map, m, nids);
	}
	cr_assert_gt(map.m_nentries, 5, "the test left something to check");
	map_end(&map);
	amap_fini_pools();
	free(m);
}
