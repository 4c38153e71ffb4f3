/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kmem.c: slab pools and page-granular arrays on raw-mmap memory.
 *
 * Everything here comes from the raw mmap syscall (sys.h): never from the
 * application's malloc, never from libc's mmap (which libupvm.so interposes),
 * and never from a range registered with userfaultfd, so a runtime thread
 * allocating metadata can never fault on itself.
 *
 * A word on slabs.  A pool carves fixed-size objects out of 64 KiB slabs.
 * The slab carries no header: its address sits in kp_slabs[], a kmem_alloc'd
 * array kept sorted by address, so a 16-byte anon costs exactly 16 bytes.
 * Slabs are naturally aligned (a slab starts at a multiple of
 * KMEM_SLAB_SIZE), so the slab of an object is its address masked, which
 * lets kmem_pool_put() check an object in O(1) and kmem_pool_check() find
 * it by binary search.  A new slab has all its objects pushed on kp_free at
 * once: that keeps the header's invariant simple (every object is either
 * handed out or on the free list) at the price of touching the slab's 16
 * pages, which the first gets would touch anyway.
 *
 * Alignment guarantee: objects of kp_size 8 are 8-byte aligned; every
 * larger object is 16-byte aligned, i.e. every object is aligned to
 * MIN(16, its size rounded up to a power of two).  kmem_pool_init() rounds
 * sizes above 8 up to a multiple of 16 to keep that (a 16-byte object still
 * costs 16 bytes); amap slots rely on it, since they keep a tag in the low
 * four bits of an anon pointer.
 *
 * kmem_alloc() arrays are one raw mmap each, page aligned and zeroed by the
 * kernel; kmem_realloc() moves them with mremap, so growing an array never
 * copies it and the grown tail reads as zeros too.
 *
 * A word on placement.  Arrays and slabs are asked for (a hint, never
 * MAP_FIXED) in two areas of their own, far below where the kernel puts
 * the program's mappings, each at a bump pointer that starts at a random
 * offset: they sit next to each other and merge into few VMAs.  Left to
 * the kernel, each region's slot array landed right next to the region,
 * so no two managed regions could merge: 100 000 small regions took
 * 200 000 VMAs, past vm.max_map_count, where the kernel alone needs a few
 * dozen.  A hint that is taken is simply not honored: the kernel puts the
 * mapping elsewhere, which costs nothing but that merge.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kmem.h"
#include "lock.h"
#include "log.h"
#include "sys.h"
#include "vm.h"

#define KMEM_SLAB_MASK	((uintptr_t)KMEM_SLAB_SIZE - 1)
#define KMEM_MIN_SIZE	8
#define KMEM_MAX_SIZE	4096
/* first kp_slabs array: one page of slab addresses (32 MiB of slabs) */
#define KMEM_SLABS_INIT	(PAGE_SIZE / sizeof(void *))

/*
 * Bytes mapped by kmem_alloc() and by every pool's slabs.  Relaxed: it is
 * a statistic, nothing is ordered by it.
 */
static atomic_size_t kmem_mapped;

static inline void
kmem_account(size_t add, size_t sub)
{
	if (add != 0)
		atomic_fetch_add_explicit(&kmem_mapped, add,
		    memory_order_relaxed);
	if (sub != 0)
		atomic_fetch_sub_explicit(&kmem_mapped, sub,
		    memory_order_relaxed);
}

static inline size_t
kmem_pool_perslab(const struct kmem_pool *kp)
{
	return KMEM_SLAB_SIZE / kp->kp_size;
}

static inline void *
kmem_next(void *obj)
{
	return *(void **)obj;
}

static inline void
kmem_set_next(void *obj, void *next)
{
	*(void **)obj = next;
}

#define KMEM_AREA_BASE	((uintptr_t)1 << 44)	/* 16 TiB */
#define KMEM_AREA_SIZE	((uintptr_t)1 << 42)	/* 4 TiB each */
enum { KMEM_ARRAYS, KMEM_SLABS };
static _Atomic uintptr_t kmem_bump[2];	/* offsets in the areas; 0: unset */

/* kmem_hint: where to ask for len bytes of an area (see "placement") */
static void *
kmem_hint(int area, size_t len)
{
	uintptr_t off = atomic_load_explicit(&kmem_bump[area],
	    memory_order_relaxed), start;

	if (off == 0) {
		/* a random start in the area's first 1/16 (ASLR's spirit) */
		if (getrandom(&start, sizeof(start), GRND_NONBLOCK) !=
		    sizeof(start))
			start = (uintptr_t)&start;
		start = (start % (KMEM_AREA_SIZE / 16)) & ~KMEM_SLAB_MASK;
		start += KMEM_SLAB_SIZE;	/* never 0 */
		(void)atomic_compare_exchange_strong(&kmem_bump[area], &off,
		    start);
	}
	off = atomic_fetch_add_explicit(&kmem_bump[area], len,
	    memory_order_relaxed) % KMEM_AREA_SIZE;
	if (off + len > KMEM_AREA_SIZE)
		off = KMEM_SLAB_SIZE;		/* wrapped: reuse the holes */
	return (void *)(KMEM_AREA_BASE + (uintptr_t)area * KMEM_AREA_SIZE +
	    off);
}

/*
 * kmem_slab_map: one naturally aligned, zeroed slab.
 * => returns NULL when out of memory or address space.
 *
 * The kernel hands out page-aligned ranges only, so when the first try is
 * not slab aligned, map twice the size and trim the unaligned ends.
 */
static void *
kmem_slab_map(void)
{
	char *p, *slab;
	size_t head;

	p = raw_mmap(kmem_hint(KMEM_SLABS, KMEM_SLAB_SIZE), KMEM_SLAB_SIZE,
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw_mmap_failed(p))
		return NULL;
	if (((uintptr_t)p & KMEM_SLAB_MASK) == 0)
		return p;
	(void)raw_munmap(p, KMEM_SLAB_SIZE);

	p = raw_mmap(NULL, 2 * KMEM_SLAB_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw_mmap_failed(p))
		return NULL;
	slab = (char *)(((uintptr_t)p + KMEM_SLAB_MASK) & ~KMEM_SLAB_MASK);
	head = (size_t)(slab - p);
	if (head != 0)
		(void)raw_munmap(p, head);
	(void)raw_munmap(slab + KMEM_SLAB_SIZE, KMEM_SLAB_SIZE - head);
	return slab;
}

/*
 * kmem_slab_find: index of the slab at address slab in kp_slabs, or -1.
 * => kp_lock held.
 */
static long
kmem_slab_find(struct kmem_pool *kp, uintptr_t slab)
{
	size_t lo = 0, hi = kp->kp_nslab, mid;
	uintptr_t s;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		s = (uintptr_t)kp->kp_slabs[mid];
		if (s == slab)
			return (long)mid;
		if (s < slab)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * kmem_pool_grow: add one slab and push its objects on the free list.
 * => kp_lock held (the mmap happens under it: it is no I/O, and whoever
 *    waits for the lock needs an object from this very slab anyway).
 * => returns 0, or -ENOMEM with nothing changed.
 */
static int
kmem_pool_grow(struct kmem_pool *kp)
{
	void **slabs;
	char *slab, *obj;
	size_t n, i, pos, newmax;

	VM_ASSERT_LOCKED(&kp->kp_lock);
	if (kp->kp_nslab == kp->kp_maxslab) {
		newmax = kp->kp_maxslab == 0 ? KMEM_SLABS_INIT :
		    2 * kp->kp_maxslab;
		if (kp->kp_slabs == NULL)
			slabs = kmem_alloc(newmax * sizeof(void *));
		else
			slabs = kmem_realloc(kp->kp_slabs,
			    kp->kp_maxslab * sizeof(void *),
			    newmax * sizeof(void *));
		if (slabs == NULL)
			return -ENOMEM;
		kp->kp_slabs = slabs;
		kp->kp_maxslab = newmax;
	}
	if ((slab = kmem_slab_map()) == NULL)
		return -ENOMEM;
	kmem_account(KMEM_SLAB_SIZE, 0);

	/* keep kp_slabs sorted: kmem_slab_find() bisects it */
	for (pos = kp->kp_nslab; pos > 0; pos--) {
		if ((uintptr_t)kp->kp_slabs[pos - 1] < (uintptr_t)slab)
			break;
		kp->kp_slabs[pos] = kp->kp_slabs[pos - 1];
	}
	kp->kp_slabs[pos] = slab;
	kp->kp_nslab++;

	/* push backwards so that gets hand out ascending addresses */
	n = kmem_pool_perslab(kp);
	for (i = n; i > 0; i--) {
		obj = slab + (i - 1) * kp->kp_size;
		kmem_set_next(obj, kp->kp_free);
		kp->kp_free = obj;
	}
	kp->kp_nfree += n;
	return 0;
}

/*
 * kmem_pool_pop: take one object off the free list (not yet zeroed).
 * => kp_lock held; the free list is not empty.
 */
static void *
kmem_pool_pop(struct kmem_pool *kp)
{
	void *obj;

	VM_ASSERT_LOCKED(&kp->kp_lock);
	VM_ASSERT(kp->kp_free != NULL && kp->kp_nfree > 0);
	obj = kp->kp_free;
	kp->kp_free = kmem_next(obj);
	kp->kp_nfree--;
	kp->kp_nalloc++;
	return obj;
}

/*
 * kmem_pool_owns: is obj an object of this pool (inside one of its slabs,
 * at an object boundary)?
 * => kp_lock held.
 */
static bool
kmem_pool_owns(struct kmem_pool *kp, const void *obj)
{
	uintptr_t a = (uintptr_t)obj, off = a & KMEM_SLAB_MASK;

	return off % kp->kp_size == 0 &&
	    off / kp->kp_size < kmem_pool_perslab(kp) &&
	    kmem_slab_find(kp, a & ~KMEM_SLAB_MASK) >= 0;
}

/*
 * kmem_pool_push: put one object back on the free list.
 * => kp_lock held; obj handed out by this pool (asserted with debug
 *    checks: O(log nslab)).
 */
static void
kmem_pool_push(struct kmem_pool *kp, void *obj)
{
	VM_ASSERT_LOCKED(&kp->kp_lock);
	VM_ASSERT(kp->kp_nalloc > 0);
	VM_ASSERT(kmem_pool_owns(kp, obj));
	kmem_set_next(obj, kp->kp_free);
	kp->kp_free = obj;
	kp->kp_nfree++;
	kp->kp_nalloc--;
}

/*
 * kmem_pool_init: set up an empty pool of objects of size bytes.
 * => size outside 8..4096 is a programmer error.
 * => sizes above 8 are rounded up to a multiple of 16 (see the alignment
 *    guarantee above); kp_size is the rounded size.
 */
void
kmem_pool_init(struct kmem_pool *kp, const char *name, size_t size)
{
	VM_ASSERT(size >= KMEM_MIN_SIZE && size <= KMEM_MAX_SIZE);
	memset(kp, 0, sizeof(*kp));
	vm_mutex_init(&kp->kp_lock);
	kp->kp_name = name;
	kp->kp_size = size <= 8 ? 8 : (size + 15) & ~(size_t)15;
}

/*
 * kmem_pool_destroy: unmap every slab and the slab array.
 * => nobody uses the pool any more; objects still out become invalid.
 *    kmem_pool_init() makes it usable again.
 */
void
kmem_pool_destroy(struct kmem_pool *kp)
{
	size_t i;

	vm_mutex_lock(&kp->kp_lock);
	for (i = 0; i < kp->kp_nslab; i++)
		(void)raw_munmap(kp->kp_slabs[i], KMEM_SLAB_SIZE);
	kmem_account(0, kp->kp_nslab * KMEM_SLAB_SIZE);
	if (kp->kp_slabs != NULL)
		kmem_free(kp->kp_slabs, kp->kp_maxslab * sizeof(void *));
	kp->kp_slabs = NULL;
	kp->kp_nslab = kp->kp_maxslab = 0;
	kp->kp_free = NULL;
	kp->kp_nfree = kp->kp_nalloc = 0;
	vm_mutex_unlock(&kp->kp_lock);
	vm_mutex_destroy(&kp->kp_lock);
}

/*
 * kmem_pool_get: one zeroed object.
 * => takes and drops kp_lock; zeroes the object after dropping it.
 * => returns NULL when out of memory.
 */
void *
kmem_pool_get(struct kmem_pool *kp)
{
	void *obj;

	vm_mutex_lock(&kp->kp_lock);
	if (kp->kp_free == NULL && kmem_pool_grow(kp) != 0) {
		vm_mutex_unlock(&kp->kp_lock);
		return NULL;
	}
	obj = kmem_pool_pop(kp);
	vm_mutex_unlock(&kp->kp_lock);
	memset(obj, 0, kp->kp_size);
	return obj;
}

/*
 * kmem_pool_get_n: n zeroed objects into out[] under one lock hold.
 * => returns 0, or -ENOMEM with nothing handed out (slabs added on the way
 *    stay in the pool, free).
 */
int
kmem_pool_get_n(struct kmem_pool *kp, void **out, size_t n)
{
	size_t i;

	vm_mutex_lock(&kp->kp_lock);
	while (kp->kp_nfree < n) {
		if (kmem_pool_grow(kp) != 0) {
			vm_mutex_unlock(&kp->kp_lock);
			return -ENOMEM;
		}
	}
	for (i = 0; i < n; i++)
		out[i] = kmem_pool_pop(kp);
	vm_mutex_unlock(&kp->kp_lock);
	for (i = 0; i < n; i++)
		memset(out[i], 0, kp->kp_size);
	return 0;
}

/* kmem_pool_put: return an object to its pool.  NULL is ignored. */
void
kmem_pool_put(struct kmem_pool *kp, void *obj)
{
	if (obj == NULL)
		return;
	vm_mutex_lock(&kp->kp_lock);
	kmem_pool_push(kp, obj);
	vm_mutex_unlock(&kp->kp_lock);
}

/* kmem_pool_put_n: return n objects under one lock hold; NULLs ignored. */
void
kmem_pool_put_n(struct kmem_pool *kp, void **objs, size_t n)
{
	size_t i;

	vm_mutex_lock(&kp->kp_lock);
	for (i = 0; i < n; i++)
		if (objs[i] != NULL)
			kmem_pool_push(kp, objs[i]);
	vm_mutex_unlock(&kp->kp_lock);
}

/* kmem_pool_bytes: slab bytes the pool holds.  => takes kp_lock */
size_t
kmem_pool_bytes(struct kmem_pool *kp)
{
	size_t bytes;

	vm_mutex_lock(&kp->kp_lock);
	bytes = kp->kp_nslab * KMEM_SLAB_SIZE;
	vm_mutex_unlock(&kp->kp_lock);
	return bytes;
}

/*
 * kmem_pool_check_locked: the body of kmem_pool_check().
 * => kp_lock held.  Returns 0 or -EINVAL after logging the first violation.
 */
static int
kmem_pool_check_locked(struct kmem_pool *kp)
{
	size_t i, n, perslab;
	uintptr_t a;
	void *obj;

	VM_ASSERT_LOCKED(&kp->kp_lock);
	perslab = kmem_pool_perslab(kp);
	if (kp->kp_nslab > kp->kp_maxslab ||
	    (kp->kp_maxslab != 0) != (kp->kp_slabs != NULL)) {
		upvm_log(LOG_ERR, "kmem pool %s: %zu slabs in an array of %zu",
		    kp->kp_name, kp->kp_nslab, kp->kp_maxslab);
		return -EINVAL;
	}
	for (i = 0; i < kp->kp_nslab; i++) {
		a = (uintptr_t)kp->kp_slabs[i];
		if ((a & KMEM_SLAB_MASK) != 0 ||
		    (i > 0 && a <= (uintptr_t)kp->kp_slabs[i - 1])) {
			upvm_log(LOG_ERR, "kmem pool %s: slab %zu at %#lx is "
			    "misaligned or out of order", kp->kp_name, i,
			    (unsigned long)a);
			return -EINVAL;
		}
	}
	if (kp->kp_nalloc + kp->kp_nfree != kp->kp_nslab * perslab) {
		upvm_log(LOG_ERR, "kmem pool %s: %zu allocated + %zu free != "
		    "%zu slabs * %zu objects", kp->kp_name, kp->kp_nalloc,
		    kp->kp_nfree, kp->kp_nslab, perslab);
		return -EINVAL;
	}
	/* bounded walk: a cycle (double put) shows up as a too-long list */
	for (n = 0, obj = kp->kp_free; obj != NULL && n <= kp->kp_nfree;
	    n++, obj = kmem_next(obj)) {
		if (!kmem_pool_owns(kp, obj)) {
			upvm_log(LOG_ERR, "kmem pool %s: free object %zu at "
			    "%p is not an object of this pool", kp->kp_name,
			    n, obj);
			return -EINVAL;
		}
	}
	if (obj != NULL) {
		upvm_log(LOG_ERR, "kmem pool %s: free list longer than "
		    "kp_nfree %zu (an object put twice?)", kp->kp_name,
		    kp->kp_nfree);
		return -EINVAL;
	}
	if (n != kp->kp_nfree) {
		upvm_log(LOG_ERR, "kmem pool %s: kp_nfree %zu but the free "
		    "list holds %zu", kp->kp_name, kp->kp_nfree, n);
		return -EINVAL;
	}
	return 0;
}

/* kmem_pool_check: 0 if the invariants hold, else -EINVAL (logged). */
int
kmem_pool_check(struct kmem_pool *kp)
{
	int error;

	vm_mutex_lock(&kp->kp_lock);
	error = kmem_pool_check_locked(kp);
	vm_mutex_unlock(&kp->kp_lock);
	return error;
}

/*
 * kmem_alloc: len bytes rounded up to pages, zeroed, page aligned.
 * => returns NULL for len 0 or when out of memory or address space.
 */
void *
kmem_alloc(size_t len)
{
	size_t rlen = round_page(len);
	void *p;

	if (len == 0 || rlen < len)
		return NULL;
	/*
	 * NORESERVE: a slot array covers a region's every page but is
	 * touched only where pages are; strict overcommit accounting would
	 * refuse a large, sparse region for memory it never uses.
	 */
	p = raw_mmap(kmem_hint(KMEM_ARRAYS, rlen), rlen, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw_mmap_failed(p))
		return NULL;
	kmem_account(rlen, 0);
	return p;
}

/* kmem_free: release a kmem_alloc() block; len as passed.  NULL ignored. */
void
kmem_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	VM_ASSERT(page_aligned(p) && len > 0);
	(void)raw_munmap(p, round_page(len));
	kmem_account(0, round_page(len));
}

/*
 * kmem_realloc: resize a kmem_alloc() block with mremap (no copy); a grown
 * tail is zeroed by the kernel.  p NULL behaves as kmem_alloc(newlen).
 * => returns the (maybe moved) block, or NULL with the old one untouched
 *    (newlen 0 is refused the same way: use kmem_free).
 */
void *
kmem_realloc(void *p, size_t oldlen, size_t newlen)
{
	size_t oldr = round_page(oldlen), newr = round_page(newlen);
	long ret;

	if (p == NULL)
		return kmem_alloc(newlen);
	VM_ASSERT(page_aligned(p) && oldlen > 0);
	if (newlen == 0 || newr < newlen)
		return NULL;
	if (oldr == newr)
		return p;
	ret = syscall(SYS_mremap, p, oldr, newr, MREMAP_MAYMOVE);
	if (ret == -1)
		return NULL;
	kmem_account(newr, oldr);
	return (void *)ret;
}

/* kmem_bytes: bytes mapped by kmem_alloc() and all pools' slabs. */
size_t
kmem_bytes(void)
{
	return atomic_load_explicit(&kmem_mapped, memory_order_relaxed);
}
