/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_kmem.c: slab pools and page arrays.
 *
 * Single-threaded tests run kmem_pool_check() after every mutation.  The
 * many-slab tests mutate in batches (get_n/put_n), so a check after each
 * batch is a check after each mutation there too, except in the one phase
 * of many_slabs that puts 50000 objects one by one: a check walks the
 * whole free list, so that phase checks after every 997th put and at the
 * end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "kmem.h"
#include "vm.h"

#define CHECK(kp)	cr_assert_eq(kmem_pool_check(kp), 0, "pool check")

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static size_t
objs_per_slab(struct kmem_pool *kp)
{
	return KMEM_SLAB_SIZE / kp->kp_size;
}

Test(kmem, put_then_get_reuses_object, .timeout = 30)
{
	struct kmem_pool kp;
	void *a, *b, *c;

	kmem_pool_init(&kp, "t", 64);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nslab, 0, "init takes no memory");
	a = kmem_pool_get(&kp);
	cr_assert_not_null(a);
	CHECK(&kp);
	b = kmem_pool_get(&kp);
	cr_assert_not_null(b);
	cr_assert_neq(a, b);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nalloc, 2);
	kmem_pool_put(&kp, a);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nalloc, 1);
	c = kmem_pool_get(&kp);
	CHECK(&kp);
	cr_assert_eq(c, a, "the object just put is handed out next");
	kmem_pool_put(&kp, b);
	CHECK(&kp);
	kmem_pool_put(&kp, c);
	CHECK(&kp);
	kmem_pool_put(&kp, NULL);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nalloc, 0);
	cr_assert_eq(kp.kp_nfree, objs_per_slab(&kp));
	kmem_pool_destroy(&kp);
}

Test(kmem, objects_come_back_zeroed, .timeout = 30)
{
	struct kmem_pool kp;
	void *objs[300];
	size_t sz;

	kmem_pool_init(&kp, "t", 200);
	sz = kp.kp_size;
	cr_assert_geq(sz, 200);
	for (int i = 0; i < 300; i++) {
		objs[i] = kmem_pool_get(&kp);
		cr_assert_not_null(objs[i]);
		cr_assert(test_all_bytes(objs[i], 0, sz), "fresh object %d", i);
		memset(objs[i], 0xa5, sz);
		CHECK(&kp);
	}
	for (int i = 0; i < 300; i++) {
		kmem_pool_put(&kp, objs[i]);
		CHECK(&kp);
	}
	for (int i = 0; i < 300; i++) {
		objs[i] = kmem_pool_get(&kp);
		cr_assert(test_all_bytes(objs[i], 0, sz), "reused object %d", i);
		CHECK(&kp);
	}
	cr_assert_eq(kmem_pool_get_n(&kp, objs, 0), 0);
	kmem_pool_put_n(&kp, objs, 300);
	CHECK(&kp);
	cr_assert_eq(kmem_pool_get_n(&kp, objs, 300), 0);
	CHECK(&kp);
	for (int i = 0; i < 300; i++)
		cr_assert(test_all_bytes(objs[i], 0, sz), "get_n object %d", i);
	kmem_pool_destroy(&kp);
}

Test(kmem, get_n_put_n, .timeout = 30)
{
	struct kmem_pool kp;
	void *objs[5000];
	size_t per;

	kmem_pool_init(&kp, "t", 48);
	per = objs_per_slab(&kp);
	cr_assert_eq(kmem_pool_get_n(&kp, objs, 5000), 0);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nalloc, 5000);
	cr_assert_eq(kp.kp_nslab, (5000 + per - 1) / per);
	qsort(objs, 5000, sizeof(void *), cmp_ptr);
	for (int i = 1; i < 5000; i++)
		cr_assert((uintptr_t)objs[i] >= (uintptr_t)objs[i - 1] +
		    kp.kp_size, "objects %d and %d overlap", i - 1, i);
	kmem_pool_put_n(&kp, objs, 2500);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nalloc, 2500);
	kmem_pool_put_n(&kp, objs + 2500, 2500);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nalloc, 0);
	cr_assert_eq(kp.kp_nfree, kp.kp_nslab * per);
	/* all free again: another get_n takes no new slab */
	cr_assert_eq(kmem_pool_get_n(&kp, objs, 5000), 0);
	CHECK(&kp);
	cr_assert_eq(kp.kp_nslab, (5000 + per - 1) / per);
	kmem_pool_destroy(&kp);
}

Test(kmem, sixteen_byte_objects_are_aligned_and_dense, .timeout = 30)
{
	struct kmem_pool kp;
	size_t n = 2 * KMEM_SLAB_SIZE / 16;
	void **objs = calloc(n, sizeof(void *));

	cr_assert_not_null(objs);
	kmem_pool_init(&kp, "anon-like", 16);
	cr_assert_eq(kp.kp_size, 16);
	for (size_t i = 0; i < n; i++) {
		objs[i] = kmem_pool_get(&kp);
		cr_assert_not_null(objs[i]);
		cr_assert_eq((uintptr_t)objs[i] & 15, 0, "object %zu at %p",
		    i, objs[i]);
	}
	CHECK(&kp);
	/* 16 bytes each and no header: exactly two slabs, nothing free */
	cr_assert_eq(kmem_pool_bytes(&kp), 2 * KMEM_SLAB_SIZE);
	cr_assert_eq(kp.kp_nfree, 0);
	kmem_pool_put_n(&kp, objs, n);
	CHECK(&kp);
	kmem_pool_destroy(&kp);
	free(objs);
}

Test(kmem, objects_are_aligned_for_their_size, .timeout = 30)
{
	static const size_t sizes[] = { 8, 16, 24, 40, 72, 100, 160, 1000,
	    4096 };
	struct kmem_pool kp;
	void *objs[200];
	size_t align;

	for (size_t s = 0; s < nitems(sizes); s++) {
		align = sizes[s] <= 8 ? 8 : 16;
		kmem_pool_init(&kp, "t", sizes[s]);
		cr_assert_geq(kp.kp_size, sizes[s]);
		cr_assert_eq(kp.kp_size % 8, 0);
		cr_assert_eq(kmem_pool_get_n(&kp, objs, 200), 0);
		CHECK(&kp);
		for (int i = 0; i < 200; i++) {
			cr_assert_eq((uintptr_t)objs[i] % align, 0,
			    "size %zu object %d at %p", sizes[s], i, objs[i]);
			/* writing the whole object must not hurt the pool */
			memset(objs[i], 0xff, sizes[s]);
		}
		CHECK(&kp);
		kmem_pool_put_n(&kp, objs, 200);
		CHECK(&kp);
		kmem_pool_destroy(&kp);
	}
}

Test(kmem, many_slabs, .timeout = 30)
{
	enum { N = 100000, BATCH = 1000 };
	struct kmem_pool kp;
	uint64_t **objs = calloc(N, sizeof(*objs));
	size_t per;

	cr_assert_not_null(objs);
	kmem_pool_init(&kp, "t", 32);
	per = objs_per_slab(&kp);
	for (int i = 0; i < N; i += BATCH) {
		cr_assert_eq(kmem_pool_get_n(&kp, (void **)objs + i, BATCH),
		    0);
		CHECK(&kp);
		for (int j = i; j < i + BATCH; j++) {
			objs[j][0] = (uint64_t)j;
			objs[j][3] = ~(uint64_t)j;
		}
	}
	cr_assert_eq(kp.kp_nslab, (N + per - 1) / per);
	cr_assert_eq(kmem_pool_bytes(&kp), kp.kp_nslab * KMEM_SLAB_SIZE);
	for (int i = 0; i < N; i++)
		cr_assert(objs[i][0] == (uint64_t)i &&
		    objs[i][3] == ~(uint64_t)i, "object %d overwritten", i);
	/* give back the odd ones one by one, the even ones in batches */
	for (int i = 1; i < N; i += 2) {
		kmem_pool_put(&kp, objs[i]);
		if (i % 997 == 1)
			CHECK(&kp);
	}
	CHECK(&kp);
	for (int i = 0; i < N; i += 2)
		cr_assert(objs[i][0] == (uint64_t)i, "object %d overwritten",
		    i);
	for (int i = 0; i < N; i += 2 * BATCH) {
		void *even[BATCH];

		for (int j = 0; j < BATCH; j++)
			even[j] = objs[i + 2 * j];
		kmem_pool_put_n(&kp, even, BATCH);
		CHECK(&kp);
	}
	cr_assert_eq(kp.kp_nalloc, 0);
	cr_assert_eq(kp.kp_nfree, kp.kp_nslab * per);
	kmem_pool_destroy(&kp);
	free(objs);
}

Test(kmem, slab_array_grows, .timeout = 30)
{
	enum { N = 40000, BATCH = 500 };
	struct kmem_pool kp;
	void **objs = calloc(N, sizeof(void *));
	size_t base = kmem_bytes(), first_cap = PAGE_SIZE / sizeof(void *);

	cr_assert_not_null(objs);
	kmem_pool_init(&kp, "t", 1024);
	for (int i = 0; i < N; i += BATCH) {
		cr_assert_eq(kmem_pool_get_n(&kp, objs + i, BATCH), 0);
		CHECK(&kp);
		for (int j = i; j < i + BATCH; j++)
			*(int *)objs[j] = j;
	}
	/* 64 objects a slab: more slabs than the first array holds */
	cr_assert_eq(kp.kp_nslab, N / 64);
	cr_assert_gt(kp.kp_nslab, first_cap);
	cr_assert_geq(kp.kp_maxslab, kp.kp_nslab);
	for (int i = 0; i < N; i++)
		cr_assert_eq(*(int *)objs[i], i, "object %d", i);
	cr_assert_eq(kmem_bytes(), base + kp.kp_nslab * KMEM_SLAB_SIZE +
	    kp.kp_maxslab * sizeof(void *));
	for (int i = N - BATCH; i >= 0; i -= BATCH) {
		kmem_pool_put_n(&kp, objs + i, BATCH);
		CHECK(&kp);
	}
	cr_assert_eq(kp.kp_nalloc, 0);
	kmem_pool_destroy(&kp);
	cr_assert_eq(kmem_bytes(), base);
	free(objs);
}

Test(kmem, accounting_goes_up_and_back_down, .timeout = 30)
{
	struct kmem_pool kp;
	size_t base = kmem_bytes();
	void *objs[4096];

	kmem_pool_init(&kp, "t", 64);
	cr_assert_eq(kmem_pool_bytes(&kp), 0);
	cr_assert_eq(kmem_bytes(), base, "init maps nothing");
	objs[0] = kmem_pool_get(&kp);
	CHECK(&kp);
	cr_assert_eq(kmem_pool_bytes(&kp), KMEM_SLAB_SIZE);
	/* one slab plus the page holding the slab array */
	cr_assert_eq(kmem_bytes(), base + KMEM_SLAB_SIZE + PAGE_SIZE);
	cr_assert_eq(kmem_pool_get_n(&kp, objs + 1, 4095), 0);
	CHECK(&kp);
	cr_assert_eq(kmem_pool_bytes(&kp), 4 * KMEM_SLAB_SIZE);
	cr_assert_eq(kmem_bytes(), base + 4 * KMEM_SLAB_SIZE + PAGE_SIZE);
	/* putting objects back keeps the slabs */
	kmem_pool_put_n(&kp, objs, 4096);
	CHECK(&kp);
	cr_assert_eq(kmem_pool_bytes(&kp), 4 * KMEM_SLAB_SIZE);
	kmem_pool_destroy(&kp);
	cr_assert_eq(kmem_bytes(), base, "destroy unmaps everything");
	/* and a destroyed pool can be set up again */
	kmem_pool_init(&kp, "t", 64);
	cr_assert_not_null(kmem_pool_get(&kp));
	CHECK(&kp);
	kmem_pool_destroy(&kp);
	cr_assert_eq(kmem_bytes(), base);
}

Test(kmem, check_catches_broken_free_list, .timeout = 30)
{
	struct kmem_pool kp;
	void *a, *b, *saved;

	kmem_pool_init(&kp, "t", 32);
	a = kmem_pool_get(&kp);
	b = kmem_pool_get(&kp);
	CHECK(&kp);
	kp.kp_nfree++;
	cr_assert_eq(kmem_pool_check(&kp), -EINVAL, "count off by one");
	kp.kp_nfree--;
	CHECK(&kp);
	/* a free list entry that is not an object boundary */
	saved = kp.kp_free;
	kp.kp_free = (char *)saved + 8;
	cr_assert_eq(kmem_pool_check(&kp), -EINVAL, "misaligned object");
	kp.kp_free = saved;
	/* a free list entry outside the pool */
	kp.kp_free = &saved;
	cr_assert_eq(kmem_pool_check(&kp), -EINVAL, "foreign object");
	kp.kp_free = saved;
	/* a cycle, as a double put makes */
	*(void **)a = a;
	kp.kp_free = a;
	cr_assert_eq(kmem_pool_check(&kp), -EINVAL, "cycle");
	*(void **)a = saved;
	kp.kp_nalloc--;
	kp.kp_nfree++;
	CHECK(&kp);
	kmem_pool_put(&kp, b);
	CHECK(&kp);
	kmem_pool_destroy(&kp);
}

struct worker {
	struct kmem_pool *kp;
	int		 id;
	int		 bad;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t *held[64];
	unsigned seed = (unsigned)w->id * 7919u + 1;
	int n, i, k;

	for (i = 0; i < 3000; i++) {
		n = 1 + (int)(rand_r(&seed) % 64);
		if (rand_r(&seed) % 2) {
			if (kmem_pool_get_n(w->kp, (void **)held,
			    (size_t)n) != 0) {
				w->bad++;
				return NULL;
			}
		} else {
			for (k = 0; k < n; k++)
				if ((held[k] = kmem_pool_get(w->kp)) == NULL) {
					w->bad++;
					return NULL;
				}
		}
		for (k = 0; k < n; k++) {
			if (held[k][0] != 0 || held[k][5] != 0 ||
			    ((uintptr_t)held[k] & 15) != 0)
				w->bad++;
			held[k][0] = (uint64_t)w->id << 32 | (uint64_t)k;
			held[k][5] = (uint64_t)i;
		}
		for (k = 0; k < n; k++)
			if (held[k][0] != ((uint64_t)w->id << 32 | (uint64_t)k)
			    || held[k][5] != (uint64_t)i)
				w->bad++;
		if (rand_r(&seed) % 2)
			kmem_pool_put_n(w->kp, (void **)held, (size_t)n);
		else
			for (k = 0; k < n; k++)
				kmem_pool_put(w->kp, held[k]);
	}
	return NULL;
}

Test(kmem, concurrent_get_put, .timeout = 30)
{
	struct kmem_pool kp;
	struct worker w[8];
	pthread_t th[8];

	kmem_pool_init(&kp, "t", 48);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .kp = &kp, .id = i + 1 };
		cr_assert_eq(pthread_create(&th[i], NULL, worker_run, &w[i]),
		    0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].bad, 0, "thread %d saw %d bad objects", i,
		    w[i].bad);
	}
	CHECK(&kp);
	cr_assert_eq(kp.kp_nalloc, 0);
	/* at most 8 * 64 objects were out at once */
	cr_assert_leq(kp.kp_nslab * objs_per_slab(&kp),
	    8 * 64 + objs_per_slab(&kp) * 8);
	kmem_pool_destroy(&kp);
}

Test(kmem, alloc_is_zeroed_and_page_aligned, .timeout = 30)
{
	size_t base = kmem_bytes();
	char *p;

	p = kmem_alloc(10000);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p & PAGE_MASK, 0);
	cr_assert(test_all_bytes(p, 0, 3 * PAGE_SIZE), "zeroed, rounded to pages");
	cr_assert_eq(kmem_bytes(), base + 3 * PAGE_SIZE);
	memset(p, 0x5a, 3 * PAGE_SIZE);
	kmem_free(p, 10000);
	cr_assert_eq(kmem_bytes(), base);
	cr_assert_null(kmem_alloc(0));
	cr_assert_eq(kmem_bytes(), base);
}

Test(kmem, realloc_keeps_contents, .timeout = 30)
{
	size_t base = kmem_bytes();
	uint64_t *p, *q;
	size_t words = PAGE_SIZE / 8;

	p = kmem_alloc(2 * PAGE_SIZE);
	cr_assert_not_null(p);
	for (size_t i = 0; i < 2 * words; i++)
		p[i] = i * 0x9e3779b97f4a7c15ULL + 1;
	q = kmem_realloc(p, 2 * PAGE_SIZE, 256 * PAGE_SIZE);
	cr_assert_not_null(q);
	cr_assert_eq((uintptr_t)q & PAGE_MASK, 0);
	cr_assert_eq(kmem_bytes(), base + 256 * PAGE_SIZE);
	for (size_t i = 0; i < 2 * words; i++)
		cr_assert_eq(q[i], i * 0x9e3779b97f4a7c15ULL + 1, "word %zu",
		    i);
	cr_assert(test_all_bytes(q + 2 * words, 0, 254 * PAGE_SIZE),
	    "grown tail is zeroed");
	q[256 * words - 1] = 7;
	p = kmem_realloc(q, 256 * PAGE_SIZE, PAGE_SIZE + 1);
	cr_assert_not_null(p);
	cr_assert_eq(kmem_bytes(), base + 2 * PAGE_SIZE);
	for (size_t i = 0; i < 2 * words; i++)
		cr_assert_eq(p[i], i * 0x9e3779b97f4a7c15ULL + 1, "word %zu",
		    i);
	/* same page count: nothing to do */
	cr_assert_eq(kmem_realloc(p, PAGE_SIZE + 1, 2 * PAGE_SIZE), p);
	kmem_free(p, 2 * PAGE_SIZE);
	cr_assert_eq(kmem_bytes(), base);
}
