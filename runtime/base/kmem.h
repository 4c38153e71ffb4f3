/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kmem.h: memory for runtime metadata, on pages upvm never manages.
 *
 * Every byte of runtime metadata (map entries, amaps, anons, slot arrays)
 * comes from here, mapped with the raw mmap syscall, never registered with
 * userfaultfd, never from the application's malloc.  A runtime thread that
 * touched managed memory could fault on itself and deadlock.
 *
 * Two allocators:
 *  - kmem_pool: fixed-size objects carved from 64 KiB slabs.  A slab header
 *    is NOT inside the slab: slabs are naturally aligned and described by a
 *    small descriptor array, so 16-byte objects cost exactly 16 bytes.
 *  - kmem_alloc/kmem_free: page-granular zeroed arrays (slot arrays, large
 *    buffers), one raw mmap each; untouched pages cost nothing.
 *
 * Locks protecting struct members in this file:
 *	I  immutable after kmem_pool_init()   l  kp_lock   a  atomic
 * Invariants (kmem_pool_check()): kp_nfree == length of kp_free list;
 * every free object lies inside one of kp_slabs at an object boundary;
 * kp_nalloc + kp_nfree == kp_nslab * objects-per-slab.
 */
#ifndef UPVM_KMEM_H
#define UPVM_KMEM_H

#include <stddef.h>

#include "lock.h"
#include "vm.h"

#define KMEM_SLAB_SIZE	(64 * 1024)

struct kmem_pool {
	struct vm_mutex	 kp_lock;
	const char	*kp_name;	/* [I] for logs and stats */
	size_t		 kp_size;	/* [I] object size, multiple of 8 */
	void		*kp_free;	/* [l] free objects, linked through word 0 */
	void		**kp_slabs;	/* [l] slab addresses (kmem_alloc array) */
	size_t		 kp_nslab;	/* [l] slabs in use */
	size_t		 kp_maxslab;	/* [l] capacity of kp_slabs */
	size_t		 kp_nalloc;	/* [l] objects handed out */
	size_t		 kp_nfree;	/* [l] objects on kp_free */
};

/*
 * kmem_pool_init: set up an empty pool of objects of size bytes (8..4096).
 * Sizes above 8 are rounded up to a multiple of 16: objects are 8-byte
 * aligned when 8 bytes large, else 16-byte aligned (amap tags the low 4
 * bits of anon pointers).
 * => takes no memory until the first get.
 */
void kmem_pool_init(struct kmem_pool *, const char *name, size_t size);

/*
 * kmem_pool_destroy: unmap every slab and destroy kp_lock.  Objects still
 * handed out become invalid; callers free what they own first.  The pool
 * needs kmem_pool_init() before any further use.
 */
void kmem_pool_destroy(struct kmem_pool *);

/*
 * kmem_pool_get: one object, zeroed.
 * => takes and drops kp_lock.
 * => returns NULL when the system is out of memory (never aborts).
 */
void *kmem_pool_get(struct kmem_pool *);

/*
 * kmem_pool_get_n: n objects, zeroed, into out[] under one lock hold.
 * => returns 0, or -ENOMEM with nothing allocated.
 */
int kmem_pool_get_n(struct kmem_pool *, void **out, size_t n);

/* kmem_pool_put: return an object from this pool.  NULL is ignored. */
void kmem_pool_put(struct kmem_pool *, void *);

/* kmem_pool_put_n: return n objects under one lock hold. */
void kmem_pool_put_n(struct kmem_pool *, void **objs, size_t n);

/* kmem_pool_bytes: bytes of slab memory the pool holds (used and free). */
size_t kmem_pool_bytes(struct kmem_pool *);

/* kmem_pool_check: 0 if the invariants above hold, else -EINVAL (logged). */
int kmem_pool_check(struct kmem_pool *);

/*
 * kmem_alloc: len bytes (rounded up to pages), zeroed, page aligned.
 * => returns NULL when out of memory or address space, or for len 0.
 */
void *kmem_alloc(size_t len);

/* kmem_free: release memory from kmem_alloc(); len as passed to it. */
void kmem_free(void *p, size_t len);

/*
 * kmem_realloc: grow or shrink a kmem_alloc() block, keeping the first
 * MIN(oldlen, newlen) bytes (mremap: no copy); a grown part is zeroed.
 * p NULL acts as kmem_alloc(newlen); newlen 0 returns NULL.  NULL on
 * failure, old block untouched.
 */
void *kmem_realloc(void *p, size_t oldlen, size_t newlen);

/* kmem_bytes: bytes currently mapped by kmem_alloc and all pools. */
size_t kmem_bytes(void);

#endif /* UPVM_KMEM_H */
