/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pattern.h: the page pattern of the test programs (pages.c, extremes.c),
 * which know nothing of upvm: word w of page `page` in generation `gen`
 * (never 0, so that a zero page is always wrong); generation 0 is zeros.
 */
#ifndef UPVM_TEST_PATTERN_H
#define UPVM_TEST_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG	4096UL

static inline uint64_t
pattern_word(size_t page, uint64_t gen, size_t w)
{
	uint64_t x = (page + 1) * 0x9e3779b97f4a7c15ULL ^ (gen << 48) ^ w;

	if (gen == 0)
		return 0;
	x ^= x >> 29;
	return x * 0xbf58476d1ce4e5b9ULL | 1;
}

/* write page `page`'s pattern of generation gen at p */
static inline void
pattern_fill_page(void *p, size_t page, uint64_t gen)
{
	uint64_t *w = p;

	for (size_t i = 0; i < PG / 8; i++)
		w[i] = pattern_word(page, gen, i);
}

/* p holds page `page`'s pattern of generation gen */
static inline bool
pattern_page_ok(const void *p, size_t page, uint64_t gen)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < PG / 8; i++)
		if (w[i] != pattern_word(page, gen, i))
			return false;
	return true;
}

#endif /* UPVM_TEST_PATTERN_H */
