/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pagehash.c: page_hash(), which decides whether a page the pageout
 * daemon moved out may be dropped clean (a write it missed must change
 * the hash): never 0, the same for the same bytes and key whatever their
 * alignment and whichever code the CPU runs, and different for every
 * change the tests can think of: each single bit, words moved, the key,
 * and many pages of the paging tests' own pattern.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "pagehash.h"
#include "vm.h"

static uint64_t rng = 0x853c49e6748fea9bULL;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
random_page(void *page)
{
	uint64_t *w = page;

	for (size_t i = 0; i < PAGE_SIZE / sizeof(*w); i++)
		w[i] = next_rand();
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* no two of the n hashes at h are equal (sorts them) */
static void
assert_distinct(uint64_t *h, size_t n, const char *what)
{
	qsort(h, n, sizeof(*h), cmp_u64);
	for (size_t i = 1; i < n; i++)
		cr_assert_neq(h[i], h[i - 1], "%s: two hashes equal", what);
}

static void *
page_alloc(void)
{
	void *p = aligned_alloc(PAGE_SIZE, 2 * PAGE_SIZE);

	cr_assert_not_null(p);
	return p;
}

Test(pagehash, never_zero_and_the_same_for_the_same_bytes, .timeout = 30)
{
	char *p = page_alloc();

	memset(p, 0, PAGE_SIZE);
	for (uint64_t key = 0; key < 4096; key++) {
		uint64_t h = page_hash(p, key);

		cr_assert_neq(h, 0, "0 means \"not known\"");
		cr_assert_eq(page_hash(p, key), h);
	}
	random_page(p);
	cr_assert_eq(page_hash(p, 7), page_hash(p, 7));
	free(p);
}

Test(pagehash, both_codes_agree_at_any_alignment, .timeout = 30)
{
	char *p = page_alloc(), *q = page_alloc();

	for (int i = 0; i < 2000; i++) {
		uint64_t key = next_rand();
		size_t off = (size_t)(next_rand() % 64);

		random_page(p);
		memmove(q + off, p, PAGE_SIZE);
		cr_assert_eq(page_hash(p, key), page_hash_portable(p, key),
		    "the SIMD code and the portable one differ");
		cr_assert_eq(page_hash(q + off, key), page_hash(p, key),
		    "at offset %zu", off);
	}
	free(p);
	free(q);
}

Test(pagehash, every_single_bit_changes_it, .timeout = 60)
{
	size_t nbits = PAGE_SIZE * 8;
	uint64_t *h = calloc(nbits + 1, sizeof(*h));
	unsigned char *p = page_alloc();

	cr_assert_not_null(h);
	for (int round = 0; round < 2; round++) {
		uint64_t key = next_rand();

		/* a random page, then one all zero but for the flipped bit */
		if (round == 0)
			random_page(p);
		else
			memset(p, 0, PAGE_SIZE);
		h[nbits] = page_hash(p, key);
		for (size_t b = 0; b < nbits; b++) {
			p[b / 8] ^= (unsigned char)(1u << (b % 8));
			h[b] = page_hash(p, key);
			p[b / 8] ^= (unsigned char)(1u << (b % 8));
		}
		assert_distinct(h, nbits + 1, "single bit flips");
	}
	free(h);
	free(p);
}

Test(pagehash, a_word_moved_changes_it, .timeout = 30)
{
	size_t nw = PAGE_SIZE / sizeof(uint64_t);
	uint64_t *h = calloc(2 * nw, sizeof(*h)), *w = page_alloc();
	uint64_t key = next_rand(), t;

	cr_assert_not_null(h);
	/* one word, all its halves set or not, at each place in a zero page */
	for (int v = 0; v < 2; v++) {
		for (size_t i = 0; i < nw; i++) {
			memset(w, 0, PAGE_SIZE);
			w[i] = v == 0 ? 0x00000000ffffffffULL :
			    0x0123456789abcdefULL;
			h[v * nw + i] = page_hash(w, key);
		}
	}
	assert_distinct(h, 2 * nw, "one word at each place");
	/* two neighbours swapped, at each place of a random page */
	random_page(w);
	h[0] = page_hash(w, key);
	for (size_t i = 0; i + 1 < nw; i++) {
		t = w[i], w[i] = w[i + 1], w[i + 1] = t;
		h[i + 1] = page_hash(w, key);
		t = w[i], w[i] = w[i + 1], w[i + 1] = t;
	}
	assert_distinct(h, nw, "neighbours swapped");
	free(h);
	free(w);
}

Test(pagehash, another_key_another_hash, .timeout = 30)
{
	enum { NKEYS = 20000 };
	uint64_t *h = calloc(NKEYS, sizeof(*h));
	char *p = page_alloc();

	cr_assert_not_null(h);
	random_page(p);
	for (int k = 0; k < NKEYS; k++)
		h[k] = page_hash(p, (uint64_t)k);
	assert_distinct(h, NKEYS, "keys");
	free(h);
	free(p);
}

/* the paging tests' pattern: page index and generation in every word */
Test(pagehash, pattern_pages_of_every_generation_differ, .timeout = 60)
{
	enum { NPG = 16384, NGEN = 4 };
	uint64_t *h = calloc(NPG * NGEN, sizeof(*h)), key = next_rand();
	char *p = page_alloc();

	cr_assert_not_null(h);
	for (uint64_t gen = 1; gen <= NGEN; gen++)
		for (size_t pg = 0; pg < NPG; pg++) {
			test_pattern_fill(p, 1, pg, gen);
			h[(gen - 1) * NPG + pg] = page_hash(p, key);
		}
	assert_distinct(h, NPG * NGEN, "pattern pages");
	free(h);
	free(p);
}
