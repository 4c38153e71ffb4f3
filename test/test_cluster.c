/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_cluster.c: the fault cluster policy (pure: no threads, no faults).
 *
 * Every call goes through choose(), which also asserts the contract that
 * holds for any input: the range is page aligned, lies inside the entry,
 * contains the faulting page, is one page under RANDOM advice, and is at
 * most MAX(cc_cluster, cc_seq_max) pages.  The policy has no check
 * function; its state is checked through the ranges it hands out.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cluster.h"
#include "vm.h"

#define BASE		((vaddr_t)0x100000000)
#define PG(n)		(BASE + ptoa((vaddr_t)(n)))
#define NPG(a)		((long)(((a) - BASE) >> PAGE_SHIFT))

static const struct cluster_config cc_default = { 16, 512, 1, 0 };

/*
 * range_bad: why [lo, hi) breaks the contract for this fault, or NULL.
 */
static const char *
range_bad(const struct cluster_config *cc, int advice, vaddr_t start,
    vaddr_t end, vaddr_t va, vaddr_t lo, vaddr_t hi)
{
	vaddr_t pva = trunc_page(va);
	vsize_t widest = ptoa((vsize_t)MAX(cc->cc_cluster, cc->cc_seq_max));

	if (!page_aligned(lo) || !page_aligned(hi))
		return "not page aligned";
	if (lo < start || hi > end)
		return "outside the entry";
	if (lo > pva || pva >= hi)
		return "misses the faulting page";
	if (advice == VM_ADV_RANDOM && hi - lo != PAGE_SIZE)
		return "RANDOM advice must give one page";
	if (hi - lo > widest)
		return "wider than MAX(cc_cluster, cc_seq_max)";
	return NULL;
}

static void
choose_flags(struct cluster_state *st, const struct cluster_config *cc,
    int advice, int flags, vaddr_t start, vaddr_t end, vaddr_t va,
    vaddr_t *lop, vaddr_t *hip)
{
	const char *why;

	*lop = *hip = 0xbad;
	cluster_choose(st, cc, advice, flags, start, end, va, lop, hip);
	why = range_bad(cc, advice, start, end, va, *lop, *hip);
	cr_assert_null(why, "%s: flags %d: entry [%#lx, %#lx) va %#lx advice "
	    "%d -> [%#lx, %#lx)", why, flags, (unsigned long)start,
	    (unsigned long)end,
	    (unsigned long)va, advice, (unsigned long)*lop,
	    (unsigned long)*hip);
}

static void
choose(struct cluster_state *st, const struct cluster_config *cc,
    int advice, vaddr_t start, vaddr_t end, vaddr_t va, vaddr_t *lop,
    vaddr_t *hip)
{
	choose_flags(st, cc, advice, 0, start, end, va, lop, hip);
}

/* a NORMAL fault at page `page` (plus `byte`) must resolve pages [lo, hi) */
static void
expect(struct cluster_state *st, const struct cluster_config *cc,
    int advice, long first, long last, long page, long byte, long lo,
    long hi)
{
	vaddr_t l, h;

	choose(st, cc, advice, PG(first), PG(last), PG(page) + (vaddr_t)byte,
	    &l, &h);
	cr_assert(l == PG(lo) && h == PG(hi), "fault at page %ld of [%ld, "
	    "%ld): got [%ld, %ld), want [%ld, %ld)", page, first, last,
	    NPG(l), NPG(h), lo, hi);
}

Test(cluster, random_fault_gets_aligned_block, .timeout = 10)
{
	struct cluster_state st;

	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1024, 37, 123, 32, 48);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1024, 500, 0, 496, 512);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1024, 1023, 4095, 1008,
	    1024);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1024, 0, 1, 0, 16);
}

Test(cluster, block_size_follows_config, .timeout = 10)
{
	struct cluster_config one = { 1, 16, 1, 0 }, big = { 512, 1024, 1, 0 };
	struct cluster_state st;

	cluster_reset(&st);
	expect(&st, &one, VM_ADV_NORMAL, 0, 4096, 77, 9, 77, 78);
	cluster_reset(&st);
	expect(&st, &big, VM_ADV_NORMAL, 0, 4096, 1500, 0, 1024, 1536);
}

Test(cluster, random_block_clamped_to_entry, .timeout = 10)
{
	struct cluster_state st;

	/* entry [5, 20): blocks [0, 16) and [16, 32) stick out */
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 5, 20, 6, 0, 5, 16);
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 5, 20, 18, 7, 16, 20);
	/* an entry smaller than one block */
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 33, 35, 34, 0, 33, 35);
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 40, 41, 40, 0, 40, 41);
}

Test(cluster, fault_at_stream_next_doubles_window, .timeout = 10)
{
	struct cluster_state st;
	long page = 0, win = 16;

	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 0, 0, 0, 16);
	page = 16;
	for (int i = 0; i < 8; i++) {
		win = MIN(win * 2, 512);
		expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, page, 0,
		    page, page + win);
		page += win;
	}
	cr_assert_eq(win, 512, "window stops at cc_seq_max");
}

Test(cluster, fault_just_past_stream_next_extends_stream, .timeout = 10)
{
	struct cluster_state st;

	/* the application skipped a few pages: still the same stream */
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 0, 0, 0, 16);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 19, 0, 19, 51);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 51, 0, 51, 115);
}

Test(cluster, stream_window_clamped_to_entry, .timeout = 10)
{
	struct cluster_state st;

	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 100, 0, 0, 0, 16);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 100, 16, 0, 16, 48);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 100, 48, 0, 48, 100);
}

Test(cluster, sequential_advice_starts_at_seq_max, .timeout = 10)
{
	struct cluster_state st;
	struct cluster_config cc = { 16, 256, 1, 0 };

	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_SEQUENTIAL, 0, 8192, 100, 5, 100,
	    612);
	expect(&st, &cc_default, VM_ADV_SEQUENTIAL, 0, 8192, 612, 0, 612,
	    1124);
	/* a new stream elsewhere also starts wide, clamped to the entry */
	expect(&st, &cc_default, VM_ADV_SEQUENTIAL, 0, 8192, 8000, 0, 8000,
	    8192);
	cluster_reset(&st);
	expect(&st, &cc, VM_ADV_SEQUENTIAL, 0, 8192, 3, 0, 3, 259);
}

Test(cluster, random_advice_gives_one_page, .timeout = 10)
{
	struct cluster_state st;

	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_RANDOM, 0, 8192, 100, 17, 100, 101);
	expect(&st, &cc_default, VM_ADV_RANDOM, 0, 8192, 101, 0, 101, 102);
	/* even where a stream expects its next fault */
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 0, 0, 0, 16);
	expect(&st, &cc_default, VM_ADV_RANDOM, 0, 8192, 16, 0, 16, 17);
	expect(&st, &cc_default, VM_ADV_RANDOM, 0, 8192, 8191, 4095, 8191,
	    8192);
}

/*
 * Four threads each write their own quarter of a 4096-page region, one
 * fault each in turn: four streams, each doubling on its own.
 */
Test(cluster, four_interleaved_streams_grow_independently, .timeout = 10)
{
	struct cluster_state st;
	long next[4], win[4];

	cluster_reset(&st);
	for (int t = 0; t < 4; t++) {
		next[t] = t * 1024;
		win[t] = 16;
	}
	for (int t = 0; t < 4; t++) {
		expect(&st, &cc_default, VM_ADV_NORMAL, 0, 4096, next[t], 0,
		    next[t], next[t] + 16);
		next[t] += 16;
	}
	for (int round = 1; round < 6; round++) {
		for (int t = 0; t < 4; t++) {
			win[t] *= 2;
			expect(&st, &cc_default, VM_ADV_NORMAL, 0, 4096,
			    next[t], 0, next[t], next[t] + win[t]);
			next[t] += win[t];
		}
	}
	for (int t = 0; t < 4; t++)
		cr_assert_eq(win[t], 512, "stream %d reached cc_seq_max", t);
}

/*
 * The same, as the threads would see it: each touches the first page of
 * its quarter not yet resolved.  Alone, each quarter takes 7 faults
 * (16 + 32 + ... + 512 + 16); a policy that lost the streams in the
 * interleaving would take up to 64 per quarter.
 */
Test(cluster, four_writers_resolve_quarters_in_few_faults, .timeout = 10)
{
	static bool resolved[4096];
	struct cluster_state st;
	long cur[4], faults[4] = { 0 }, total = 0;
	vaddr_t lo, hi;
	bool busy;

	cluster_reset(&st);
	for (int t = 0; t < 4; t++)
		cur[t] = t * 1024;
	do {
		busy = false;
		for (int t = 0; t < 4; t++) {
			while (cur[t] < (t + 1) * 1024 && resolved[cur[t]])
				cur[t]++;
			if (cur[t] == (t + 1) * 1024)
				continue;
			busy = true;
			choose(&st, &cc_default, VM_ADV_NORMAL, PG(0),
			    PG(4096), PG(cur[t]), &lo, &hi);
			for (long p = NPG(lo); p < NPG(hi); p++)
				resolved[p] = true;
			faults[t]++;
			total++;
			cr_assert_lt(total, 4096, "no progress");
		}
	} while (busy);
	for (int t = 0; t < 4; t++)
		cr_assert_leq(faults[t], 8, "writer %d took %ld faults", t,
		    faults[t]);
	for (long p = 0; p < 4096; p++)
		cr_assert(resolved[p], "page %ld", p);
}

Test(cluster, fifth_stream_evicts_least_recently_used, .timeout = 10)
{
	struct cluster_state st;

	cluster_reset(&st);
	/* streams 0..3 at the four quarters, one fault each */
	for (long t = 0; t < 4; t++)
		expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, t * 1024, 0,
		    t * 1024, t * 1024 + 16);
	/* 1, 2, 3 go on: stream 0 is now the least recently used */
	for (long t = 1; t < 4; t++)
		expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192,
		    t * 1024 + 16, 0, t * 1024 + 16, t * 1024 + 48);
	/* a fifth stream replaces stream 0 */
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 6000, 0, 6000, 6016);
	/* the survivors and the newcomer still double */
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 3120, 0, 3120, 3184);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 6016, 0, 6016, 6048);
	/* stream 0 is forgotten: its next page is a random fault again */
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 16, 0, 16, 32);
	/* ... which replaced stream 1 (then the LRU), not stream 2 */
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 2096, 0, 2096, 2160);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 1072, 0, 1072, 1088);
}

/*
 * stream_run: `faults` NORMAL faults of one stream from page `first` on,
 * each at the page the last one's window ended: the first gets the
 * 16-page block, the next double the window up to 512.  => the page the
 * stream expects next.
 */
static long
stream_run(struct cluster_state *st, long first, int faults)
{
	long p = first, w = 16;

	expect(st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, p, 0, p, p + w);
	p += w;
	for (int i = 1; i < faults; i++) {
		w = MIN(w * 2, 512);
		expect(st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, p, 0, p,
		    p + w);
		p += w;
	}
	return p;
}

/*
 * A stream the entry's later faults passed by is dead: a fill that
 * restarted behind its own stream left the old one mid-entry, and a random
 * pagein landing at its next page long after must not read its whole
 * window (the uniform random pagein test read 1.9 pages per fault so).
 */
Test(cluster, stream_passed_by_for_long_is_dead, .timeout = 10)
{
	struct cluster_state st;
	vaddr_t lo, hi;
	long page;

	cluster_reset(&st);
	/* a stream grown to the widest window (16 .. 512: 6 faults) */
	page = stream_run(&st, 0, 6);
	/* another stream goes on for CLUSTER_STREAM_AGE faults ... */
	(void)stream_run(&st, 100000, CLUSTER_STREAM_AGE);
	/* ... and a pagein at the first stream's next page reads one page */
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL,
	    CLUSTER_F_PAGEIN, BASE, PG(1 << 20), PG(page), &lo, &hi),
	    CLUSTER_BLOCK);
	cr_assert_eq(NPG(lo), page);
	cr_assert_eq(NPG(hi), page + 1);
}

/* ... while one matched a moment ago still grows */
Test(cluster, stream_passed_by_briefly_lives, .timeout = 10)
{
	struct cluster_state st;

	cluster_reset(&st);
	(void)stream_run(&st, 0, 1);
	(void)stream_run(&st, 100000, CLUSTER_STREAM_AGE - 1);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, 16, 0, 16, 48);
}

Test(cluster, reset_forgets_streams, .timeout = 10)
{
	static const struct cluster_state zero;
	struct cluster_state st;

	memset(&st, 0x5a, sizeof(st));
	cluster_reset(&st);
	cr_assert_eq(memcmp(&st, &zero, sizeof(st)), 0, "state cleared");
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 0, 0, 0, 16);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 16, 0, 16, 48);
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 48, 0, 48, 64);
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_SEQUENTIAL, 0, 8192, 64, 0, 64, 576);
	cluster_reset(&st);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 8192, 576, 0, 576, 592);
}

/* xorshift64*: a fixed seed makes every run the same */
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t
rnd(uint64_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (rng * 0x2545f4914f6cdd1dULL) % n;
}

/*
 * Property: any config, entry, advice and fault sequence gives a range
 * that holds the contract (choose() checks it).  Faults mix continuing
 * streams, near misses and random pages; some entries sit at the very
 * top of the address space, where hi could wrap; some keep the streams
 * of the previous entry (a clipped entry keeps its state).
 */
Test(cluster, any_fault_gets_aligned_range_inside_entry, .timeout = 60)
{
	const vaddr_t top = (vaddr_t)0 - PAGE_SIZE;
	struct cluster_state st;
	struct cluster_config cc;
	vaddr_t start, end, va, lo = 0, hi = 0;
	uint64_t npages;
	int advice;

	cluster_reset(&st);
	for (int e = 0; e < 20000; e++) {
		cc.cc_cluster = 1 << rnd(10);
		cc.cc_seq_max = 16 << rnd(7);
		cc.cc_readahead = 1 << rnd(7);	/* MIN() evaluates twice */
		cc.cc_readahead = MIN(cc.cc_readahead, cc.cc_seq_max);
		cc.cc_ra_sure = rnd(2) == 0 ? 0 : 1 << rnd(7);
		cc.cc_ra_sure = MIN(cc.cc_ra_sure, cc.cc_readahead);
		switch (rnd(3)) {
		case 0:
			npages = 1 + rnd(64);
			break;
		case 1:
			npages = 1 + rnd(4096);
			break;
		default:
			npages = 1 + rnd(1 << 20);
			break;
		}
		if (rnd(16) == 0) {
			end = top;
		} else {
			start = ptoa(rnd(atop(VM_MAX_ADDRESS) - npages));
			end = start + ptoa(npages);
		}
		start = end - ptoa(npages);
		if (rnd(2) == 0)
			cluster_reset(&st);
		lo = hi = start;
		for (int f = 0; f < 40; f++) {
			switch (rnd(5)) {
			case 0:
				va = start + ptoa(rnd(npages));
				break;
			case 1:
				va = hi + ptoa(rnd(32));
				break;
			case 2:	/* below the last range: descending */
				va = lo - ptoa(1 + rnd(32));
				break;
			default:
				va = hi;
				break;
			}
			if (va >= end || va < start)
				va = start + ptoa(rnd(npages));
			va += rnd(PAGE_SIZE);
			advice = rnd(8) == 0 ? VM_ADV_RANDOM : rnd(8) == 0 ?
			    VM_ADV_SEQUENTIAL : VM_ADV_NORMAL;
			choose_flags(&st, &cc, advice, (int)rnd(4) & (CLUSTER_F_SINGLE |
			    CLUSTER_F_PAGEIN), start, end, va, &lo, &hi);
		}
	}
}

Test(cluster, choose_reports_what_it_chose, .timeout = 10)
{
	struct cluster_state st;
	vaddr_t lo, hi;

	memset(&st, 0, sizeof(st));
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_RANDOM, 0, BASE,
	    PG(4096), PG(100), &lo, &hi), CLUSTER_ONE);
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL, 0, BASE,
	    PG(4096), PG(100), &lo, &hi), CLUSTER_BLOCK);
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL, 0, BASE,
	    PG(4096), hi, &lo, &hi), CLUSTER_STREAM);
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_SEQUENTIAL, 0, BASE,
	    PG(4096), PG(3000), &lo, &hi), CLUSTER_STREAM);
}

Test(cluster, superblock_is_aligned_capped_and_clamped, .timeout = 10)
{
	struct cluster_config cc = { 16, 512, 1, 0 }, small = { 64, 128, 1, 0 };
	vaddr_t lo, hi;

	/* 16 blocks of 16 pages: the aligned 256 pages around the fault */
	cluster_superblock(&cc, BASE, PG(4096), PG(1000), &lo, &hi);
	cr_assert_eq(NPG(lo), 768);
	cr_assert_eq(NPG(hi), 1024);
	/* capped at seq_max: 16 * 64 > 128 */
	cluster_superblock(&small, BASE, PG(4096), PG(1000), &lo, &hi);
	cr_assert_eq(NPG(lo), 896);
	cr_assert_eq(NPG(hi), 1024);
	/* clamped to an entry that starts and ends inside it */
	cluster_superblock(&cc, PG(800), PG(900), PG(850), &lo, &hi);
	cr_assert_eq(NPG(lo), 800);
	cr_assert_eq(NPG(hi), 900);
}

Test(cluster, single_guess_is_one_page_and_streams_still_grow, .timeout = 10)
{
	struct cluster_state st;
	vaddr_t lo, hi, va = PG(1000);
	long want[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512 };

	memset(&st, 0, sizeof(st));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL,
		    CLUSTER_F_SINGLE, BASE, PG(1 << 20), va, &lo, &hi),
		    i == 0 ? CLUSTER_BLOCK : CLUSTER_STREAM);
		cr_assert_eq(lo, va);
		cr_assert_eq(NPG(hi) - NPG(lo), want[i], "step %zu", i);
		va = hi;
	}
	/* a fault elsewhere: one page again */
	cluster_choose(&st, &cc_default, VM_ADV_NORMAL, CLUSTER_F_SINGLE,
	    BASE, PG(1 << 20), PG(50), &lo, &hi);
	cr_assert_eq(NPG(lo), 50);
	cr_assert_eq(NPG(hi), 51);
}

/*
 * Faults that walk down, page after page below the last one (sort(1)
 * filling its line records from the top of its buffer): each lands just
 * below the stream's last range and doubles its window, which ends at the
 * faulting page.  Under pressure (a new guess is one page) every such page
 * used to be a fault of its own.
 */
Test(cluster, descending_faults_grow_a_window_below, .timeout = 10)
{
	struct cluster_state st;
	vaddr_t lo, hi, va = PG(100000);
	long want[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512 };

	memset(&st, 0, sizeof(st));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL,
		    CLUSTER_F_SINGLE, BASE, PG(1 << 20), va, &lo, &hi),
		    i == 0 ? CLUSTER_BLOCK : CLUSTER_DESCEND, "step %zu", i);
		cr_assert_eq(hi, va + PAGE_SIZE, "step %zu: the faulting page "
		    "on top", i);
		cr_assert_eq(NPG(hi) - NPG(lo), want[i], "step %zu", i);
		va = lo - PAGE_SIZE;
	}
	/* without pressure: the 16-page block, then 32 below it */
	memset(&st, 0, sizeof(st));
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, 1000, 0, 992,
	    1008);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, 991, 5, 960, 992);
	/* a fault a little further down (a skipped page) still continues */
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, 950, 0, 887, 951);
	/* clamped at the entry's start */
	expect(&st, &cc_default, VM_ADV_NORMAL, 880, 1 << 20, 886, 0, 880,
	    887);
	memset(&st, 0, sizeof(st));
	expect(&st, &cc_default, VM_ADV_NORMAL, 980, 1 << 20, 1000, 0, 992,
	    1008);
	expect(&st, &cc_default, VM_ADV_NORMAL, 980, 1 << 20, 991, 0, 980,
	    992);
	/* a fault far below is a new guess, not the stream */
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL, 0, BASE,
	    PG(1 << 20), PG(500), &lo, &hi), CLUSTER_BLOCK);
	cr_assert_eq(NPG(lo), 496);
	/* and turning up again from a descending stream is a stream */
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL, 0, BASE,
	    PG(1 << 20), PG(512), &lo, &hi), CLUSTER_STREAM);
	/* pageins do not run down: their readahead is sized otherwise */
	memset(&st, 0, sizeof(st));
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL,
	    CLUSTER_F_PAGEIN, BASE, PG(1 << 20), PG(1000), &lo, &hi),
	    CLUSTER_BLOCK);
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL,
	    CLUSTER_F_PAGEIN, BASE, PG(1 << 20), PG(999), &lo, &hi),
	    CLUSTER_BLOCK);
}

/*
 * A descending claim cut short (a resident page below the faulting one):
 * the stream expects its next fault below where the claim started, and
 * the readahead marker (cluster_ahead) is for ascending streams only.
 */
Test(cluster, a_descending_claim_cut_short_keeps_its_stream, .timeout = 10)
{
	struct cluster_state st;
	vaddr_t lo, hi, next;
	int n;

	memset(&st, 0, sizeof(st));
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, 1000, 0, 992,
	    1008);
	expect(&st, &cc_default, VM_ADV_NORMAL, 0, 1 << 20, 991, 0, 960, 992);
	/* pages [960, 980) were resident: the claim was [980, 992) */
	cr_assert(cluster_advance(&st, PG(960), PG(980)));
	/* the application skips the resident pages and faults at 959 */
	cr_assert_eq(cluster_choose(&st, &cc_default, VM_ADV_NORMAL, 0, BASE,
	    PG(1 << 20), PG(959), &lo, &hi), CLUSTER_DESCEND);
	cr_assert_eq(NPG(hi), 960);
	cr_assert_eq(NPG(lo), 960 - 64);
	cr_assert_not(cluster_ahead(&st, PG(950), 4, &next, &n),
	    "no ascending readahead for a descending stream");
}

/* choose a random pagein at page pg; => its block [*lop, *hip) in pages */
static int
pagein(struct cluster_state *st, const struct cluster_config *cc, long pg,
    long *lop, long *hip)
{
	vaddr_t lo, hi;
	int kind;

	kind = cluster_choose(st, cc, VM_ADV_NORMAL, CLUSTER_F_PAGEIN, BASE,
	    PG(1 << 20), PG(pg) + 17, &lo, &hi);
	*lop = NPG(lo);
	*hip = NPG(hi);
	return kind;
}

/* a random pagein at page pg must read pages [lo, hi) */
static void
expect_pagein(struct cluster_state *st, const struct cluster_config *cc,
    long pg, long lo, long hi)
{
	long l, h;

	pagein(st, cc, pg, &l, &h);
	cr_assert(l == lo && h == hi, "pagein at page %ld: got [%ld, %ld), "
	    "want [%ld, %ld)", pg, l, h, lo, hi);
}

Test(cluster, pagein_window_grows_with_locality_and_shrinks_without,
    .timeout = 10)
{
	struct cluster_config cc = { 16, 512, 8, 0 };
	struct cluster_state st;
	vaddr_t vlo, vhi;
	long lo, hi;

	memset(&st, 0, sizeof(st));
	/* a first random pagein: the page alone */
	cr_assert_eq(pagein(&st, &cc, 1003, &lo, &hi), CLUSTER_BLOCK);
	cr_assert_eq(lo, 1003);
	cr_assert_eq(hi, 1004);
	/* near it (pages 960..1023 are one unit): 1 near of the last 8 is
	   chance, 2 give 4 aligned pages, 3 give 8 */
	expect_pagein(&st, &cc, 1013, 1013, 1014);
	expect_pagein(&st, &cc, 1001, 1000, 1004);
	expect_pagein(&st, &cc, 995, 992, 1000);
	/* capped at cc_readahead */
	expect_pagein(&st, &cc, 970, 968, 976);
	/* the next fault past a block is a stream: its window doubles */
	cr_assert_eq(cluster_choose(&st, &cc, VM_ADV_NORMAL, CLUSTER_F_PAGEIN,
	    BASE, PG(1 << 20), PG(976), &vlo, &vhi), CLUSTER_STREAM);
	cr_assert_eq(NPG(vhi) - NPG(vlo), 16);
	/* far pageins: the window shrinks as the near ones age out */
	for (int i = 1, last = 8; i <= 8; i++) {
		pagein(&st, &cc, 100000L * i, &lo, &hi);
		cr_assert_leq(hi - lo, last, "far pagein %d: %ld pages", i,
		    hi - lo);
		last = (int)(hi - lo);
	}
	cr_assert_eq(hi - lo, 1, "8 far pageins: the page alone");
	/* clamped to the entry; RANDOM advice reads the page alone */
	cr_assert_eq(cluster_choose(&st, &cc, VM_ADV_NORMAL, CLUSTER_F_PAGEIN,
	    PG(2002), PG(2005), PG(2003), &vlo, &vhi), CLUSTER_BLOCK);
	cr_assert(NPG(vlo) >= 2002 && NPG(vhi) <= 2005);
	cr_assert_eq(cluster_choose(&st, &cc, VM_ADV_RANDOM, CLUSTER_F_PAGEIN,
	    BASE, PG(4096), PG(3001), &vlo, &vhi), CLUSTER_ONE);
	cr_assert_eq(NPG(vhi) - NPG(vlo), 1);
}

/*
 * The window the hits prove used (cc_ra_sure) is read by every random
 * pagein, far from the last ones too: a merge of more runs than the
 * locality history holds reads each run in order, every pagein far from
 * the one before.  Locality still widens it up to cc_readahead.
 */
Test(cluster, a_window_proven_used_is_read_far_from_the_last_pageins,
    .timeout = 10)
{
	struct cluster_config cc = { 16, 512, 8, 4 };
	struct cluster_state st;
	long lo, hi;

	memset(&st, 0, sizeof(st));
	for (int i = 1; i <= 16; i++) {
		cr_assert_eq(pagein(&st, &cc, 50000L * i + 6, &lo, &hi),
		    CLUSTER_BLOCK);
		cr_assert(lo == 50000L * i + 4 && hi == 50000L * i + 8,
		    "far pagein %d: [%ld, %ld)", i, lo, hi);
	}
	/* near ones (pages 900992..901055 are one unit): locality opens it
	   up to cc_readahead, from 3 near of the last 8 */
	expect_pagein(&st, &cc, 901003, 901000, 901004);
	expect_pagein(&st, &cc, 901013, 901012, 901016);
	expect_pagein(&st, &cc, 900995, 900992, 900996);
	expect_pagein(&st, &cc, 901042, 901040, 901048);
}

/*
 * Readahead hits: pages fall in bands by the highest bit in which their
 * page number differs from the faulting page's; the cap is the widest
 * window whose bands are each hit CLUSTER_RA_HIT_PCT percent, bands with
 * too few pages counted pass, and old counts fade as new ones come.
 */
Test(cluster, readahead_is_capped_by_its_hits, .timeout = 10)
{
	struct cluster_ra_hits rh;
	vaddr_t lo, hi;

	cr_assert_eq(cluster_ra_band(PG(1000), PG(1001)), 0);
	cr_assert_eq(cluster_ra_band(PG(1001), PG(1002)), 1);
	cr_assert_eq(cluster_ra_band(PG(1003), PG(1000)), 1);
	cr_assert_eq(cluster_ra_band(PG(1000), PG(1007)), 2);
	cr_assert_eq(cluster_ra_band(PG(1008), PG(1016)), 3);
	cr_assert_eq(cluster_ra_band(PG(1007), PG(1008)), 4);
	/* nothing counted: as wide as allowed */
	memset(&rh, 0, sizeof(rh));
	cr_assert_eq(cluster_ra_cap(&rh, 8), 8);
	cr_assert_eq(cluster_ra_cap(&rh, 1), 1);
	/* band 0 hit 1 in 2, band 1 1 in 4, band 2 never */
	for (int i = 0; i < 64; i++) {
		cluster_ra_staged(&rh, 0);
		if (i % 2 == 0)
			cluster_ra_hit(&rh, 0);
		for (int j = 0; j < 2; j++) {
			cluster_ra_staged(&rh, 1);
			if ((2 * i + j) % 4 == 0)
				cluster_ra_hit(&rh, 1);
		}
		for (int j = 0; j < 4; j++)
			cluster_ra_staged(&rh, 2);
	}
	cr_assert_eq(cluster_ra_cap(&rh, 8), 2, "band 1 fails");
	cr_assert_eq(cluster_ra_cap(&rh, 2), 2);
	/* proven used: band 0 only at 50 %, below CLUSTER_RA_SURE_PCT */
	cr_assert_eq(cluster_ra_sure(&rh, 8), 1);
	/* band 1 used now: the next band decides; counts out of range are
	   ignored */
	for (int i = 0; i < 512; i++) {
		cluster_ra_staged(&rh, 1);
		cluster_ra_hit(&rh, 1);
	}
	cluster_ra_staged(&rh, CLUSTER_RA_BANDS);
	cluster_ra_hit(&rh, -1);
	cr_assert_eq(cluster_ra_cap(&rh, 8), 4, "band 2 fails");
	/* band 0 used more (every one of 512 more), band 1 always: proven
	   to 4 pages; band 2, never used, stops it there, and a band with
	   too few pages counted proves nothing */
	for (int i = 0; i < 512; i++) {
		cluster_ra_staged(&rh, 0);
		cluster_ra_hit(&rh, 0);
	}
	cr_assert_eq(cluster_ra_sure(&rh, 8), 4);
	cr_assert_eq(cluster_ra_sure(&rh, 2), 2);
	{
		struct cluster_ra_hits few;

		memset(&few, 0, sizeof(few));
		cr_assert_eq(cluster_ra_sure(&few, 8), 1, "nothing counted");
		for (int i = 0; i < CLUSTER_RA_SAMPLES - 1; i++) {
			cluster_ra_staged(&few, 0);
			cluster_ra_hit(&few, 0);
		}
		cr_assert_eq(cluster_ra_sure(&few, 8), 1, "too few counted");
		cluster_ra_staged(&few, 0);
		cluster_ra_hit(&few, 0);
		cr_assert_eq(cluster_ra_sure(&few, 8), 2);
	}
	/* band 0 never used from now on: its count fades, and one page it
	   is */
	for (int i = 0; i < 4 * CLUSTER_RA_DECAY; i++)
		cluster_ra_staged(&rh, 0);
	cr_assert_eq(cluster_ra_cap(&rh, 8), 1);
	cr_assert_lt(atomic_load(&rh.rh_staged[0]), CLUSTER_RA_DECAY);
	/* a probe reads the aligned block of cc_readahead, inside the entry */
	cluster_ra_block(8, BASE, PG(4096), PG(1003), &lo, &hi);
	cr_assert(NPG(lo) == 1000 && NPG(hi) == 1008);
	cluster_ra_block(2, BASE, PG(4096), PG(1003), &lo, &hi);
	cr_assert(NPG(lo) == 1002 && NPG(hi) == 1004);
	cluster_ra_block(8, PG(1002), PG(1005), PG(1003), &lo, &hi);
	cr_assert(NPG(lo) == 1002 && NPG(hi) == 1005);
}

/*
 * Asynchronous readahead: a stream read ahead (cluster_advance) that a
 * fault catches up with while the readahead is still in flight is due
 * its next window (cluster_ahead: the kernel's readahead marker); a fault
 * in the window read for the fault before it is not, nor one anywhere on
 * a dead stream.
 */
Test(cluster, a_fault_in_the_readahead_window_asks_for_the_next, .timeout = 10)
{
	struct cluster_state st;
	vaddr_t next = 0;
	long page;
	int n = 0;

	cluster_reset(&st);
	/* 16 .. 512: the last window is [496, 1008) */
	page = stream_run(&st, 0, 6);
	cr_assert_eq(page, 1008);
	/* read ahead: the next 512 pages, without a fault */
	cr_assert(cluster_advance(&st, PG(page), PG(page + 512)));
	cr_assert_not(cluster_advance(&st, PG(page), PG(page + 1024)),
	    "the stream expects its next fault past the readahead now");
	/* a fault in the readahead window: the next window is due */
	cr_assert(cluster_ahead(&st, PG(page + 100) + 8, 1, &next, &n));
	cr_assert_eq(NPG(next), page + 512);
	cr_assert_eq(n, 512);
	/* its last page too */
	cr_assert(cluster_ahead(&st, PG(page + 511), 1, &next, &n));
	/* the window the stream's own fault read: not at depth 1, at 2 */
	cr_assert_not(cluster_ahead(&st, PG(page - 1), 1, &next, &n));
	cr_assert(cluster_ahead(&st, PG(page - 1), 2, &next, &n));
	cr_assert_eq(NPG(next), page + 512);
	/* past the readahead, or before the stream: nothing */
	cr_assert_not(cluster_ahead(&st, PG(page + 512), 1, &next, &n));
	cr_assert_not(cluster_ahead(&st, PG(page - 513), 2, &next, &n));
	/* once read ahead again, the marker moves with it */
	cr_assert(cluster_advance(&st, PG(page + 512), PG(page + 1024)));
	cr_assert_not(cluster_ahead(&st, PG(page + 100), 1, &next, &n));
	cr_assert(cluster_ahead(&st, PG(page + 600), 1, &next, &n));
	cr_assert_eq(NPG(next), page + 1024);
	/* a stream passed by for CLUSTER_STREAM_AGE decisions is dead */
	(void)stream_run(&st, 100000, CLUSTER_STREAM_AGE);
	cr_assert_not(cluster_ahead(&st, PG(page + 600), 1, &next, &n));
}
