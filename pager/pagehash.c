/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pagehash.c: page_hash().  Four independent multiply-rotate lanes over
 * the page's 64-bit words (so the multiplies pipeline: several GB/s on one
 * core), each lane seeded from the key, folded and finalized with a
 * 64-bit avalanche mix.
 */

#include "pagehash.h"
#include "vm.h"

#define PH_K1	0x9e3779b97f4a7c15ULL
#define PH_K2	0xc2b2ae3d27d4eb4fULL
#define PH_K3	0x165667b19e3779f9ULL

static inline uint64_t
rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t
lane(uint64_t acc, uint64_t w)
{
	return rotl64(acc + w * PH_K2, 31) * PH_K1;
}

static inline uint64_t
fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t
page_hash(const void *page, uint64_t key)
{
	const uint64_t *w = page;
	uint64_t a = key + PH_K1 + PH_K2, b = key + PH_K2, c = key,
	    d = key - PH_K1;

	for (size_t i = 0; i < PAGE_SIZE / sizeof(uint64_t); i += 4) {
		a = lane(a, w[i]);
		b = lane(b, w[i + 1]);
		c = lane(c, w[i + 2]);
		d = lane(d, w[i + 3]);
	}
	a = fmix64(rotl64(a, 1) + rotl64(b, 7) + rotl64(c, 12) +
	    rotl64(d, 18) + PH_K3 * PAGE_SIZE);
	return a != 0 ? a : 1;		/* 0: "not known" (pagehash.h) */
}
