/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * region.c: operations on managed regions over partly managed ranges
 * (see region.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "amap.h"
#include "cluster.h"
#include "log.h"
#include "region.h"
#include "vnode.h"
#include "swap.h"
#include "sys.h"
#include "vmspace.h"

int
region_create(struct vmspace *vs, vaddr_t addr, vsize_t len, int prot,
    int mmflags, int advice, struct vm_map_entry **ep)
{
	struct vm_map_entry *e;
	void *va;
	int error;

	va = raw_mmap((void *)addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE | (mmflags & (MAP_FIXED | MAP_FIXED_NOREPLACE)),
	    -1, 0);
	if (raw_mmap_failed(va))
		return (int)(intptr_t)va;
	error = pmap_register(&vs->vs_pmap, (vaddr_t)va, len,
	    vs->vs_regmodes);
	if (error != 0)
		goto unmap;
	e = vm_map_entry_alloc(&vs->vs_map, (vaddr_t)va, (vaddr_t)va + len);
	if (e == NULL) {
		error = -ENOMEM;
		goto unmap;
	}
	if ((error = amap_create((int)atop(len), &e->e_aref.ar_amap)) != 0) {
		vm_map_entry_free(&vs->vs_map, e);
		goto unmap;
	}
	e->e_advice = (uint8_t)advice;
	e->e_prot = vm_prot(prot);
	*ep = e;
	return 0;
unmap:
	raw_munmap(va, len);	/* unregisters too */
	return error;
}

void
region_attach_file(struct vm_map_entry *e, struct vnode *vn, voff_t off,
    bool shared, bool rdonly)
{
	e->e_obj = &vn->vn_pager;
	e->e_offset = off;
	e->e_etype = shared ? 0 : VM_ET_COPYONWRITE;
	if (rdonly)
		e->e_prot = VM_PROT_READ;
}

/* region_merge: merge what became alike in [start, end] again */
static void
region_merge(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;

	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e))
		e = vm_map_merge(map, e);
	if ((e = vm_map_lookup(map, end)) != NULL)
		vm_map_merge(map, e);
}

int
region_clip(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;
	int error;

	VM_ASSERT_WLOCKED(&map->m_lock);
	if ((e = vm_map_lookup(map, start)) != NULL &&
	    (error = vm_map_clip_start(map, e, start)) != 0)
		return error;
	if ((e = vm_map_lookup(map, end - 1)) != NULL)
		return vm_map_clip_end(map, e, end);
	return 0;
}

bool
region_managed(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e = vm_map_first_ge(map, start);

	return e != NULL && e->e_start < end;
}

int
region_remove(struct vmspace *vs, vaddr_t start, vaddr_t end, bool unmap)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e, *next, *dead = NULL;
	long nres = 0;
	int error;

	if ((error = region_clip(map, start, end)) != 0)
		return error;
	/* nothing fails from here on */
	if (unmap)
		raw_munmap((void *)start, end - start);	/* unregisters */
	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = next) {
		next = vm_map_next(map, e);
		if (!unmap)
			(void)pmap_unregister(&vs->vs_pmap, e->e_start,
			    e->e_end - e->e_start);
		vm_map_unlink(map, e);
		if (e->e_aref.ar_amap != NULL)
			nres += amap_resident(e->e_aref.ar_amap,
			    e->e_aref.ar_pageoff, (int)vm_entry_npages(e));
		if (e->e_wired == REGION_WIRED)
			atomic_fetch_sub(&vs->vs_wired,
			    (long)vm_entry_npages(e));
		/* chain through the tree link, now unused */
		e->e_rb.rbe_parent = dead;
		dead = e;
	}
	atomic_fetch_sub(&vs->vs_resident, nres);
	/* amap_unref frees anons and swap slots; no map lock needed */
	for (e = dead; e != NULL; e = next) {
		next = e->e_rb.rbe_parent;
		vm_map_entry_free(map, e);
	}
	return 0;
}

void
region_dontneed(struct vmspace *vs, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;
	vaddr_t lo, hi;
	long nres = 0;

	VM_ASSERT_WLOCKED(&vs->vs_map.m_lock);
	for (e = vm_map_first_ge(&vs->vs_map, start); e != NULL &&
	    e->e_start < end; e = vm_map_next(&vs->vs_map, e)) {
		lo = MAX(start, e->e_start);
		hi = MIN(end, e->e_end);
		pmap_dontneed(&vs->vs_pmap, lo, hi - lo);
		if (e->e_aref.ar_amap != NULL)
			nres += amap_free_range(e->e_aref.ar_amap,
			    vm_entry_slot(e, lo), (int)atop(hi - lo));
		cluster_reset(&e->e_cluster);
	}
	atomic_fetch_sub(&vs->vs_resident, nres);
}

void
region_pattern(struct vm_map *map, vaddr_t start, vaddr_t end, int advice)
{
	struct vm_map_entry *e;

	VM_ASSERT_WLOCKED(&map->m_lock);
	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e)) {
		e->e_advice = (uint8_t)advice;
		cluster_reset(&e->e_cluster);
	}
	region_merge(map, start, end);
}

int
region_adopt(struct vmspace *vs, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;
	int error;

	VM_ASSERT_WLOCKED(&vs->vs_map.m_lock);
	/* an expansion in place keeps the registration: register anew */
	(void)pmap_unregister(&vs->vs_pmap, start, end - start);
	if ((error = pmap_register(&vs->vs_pmap, start, end - start,
	    vs->vs_regmodes)) != 0)
		return error;
	if ((e = vm_map_entry_alloc(&vs->vs_map, start, end)) == NULL) {
		error = -ENOMEM;
	} else if ((error = amap_create((int)atop(end - start),
	    &e->e_aref.ar_amap)) != 0 ||
	    (error = vm_map_insert(&vs->vs_map, e)) != 0) {
		vm_map_entry_free(&vs->vs_map, e);
	}
	if (error != 0)
		(void)pmap_unregister(&vs->vs_pmap, start, end - start);
	return error;
}

/* region_dirty_clean: clean pages of entry e become dirty (no uffd-wp) */
static void
region_dirty_clean(struct vmspace *vs, struct vm_map_entry *e)
{
	struct amap *am = e->e_aref.ar_amap;
	struct anon *an;
	uint64_t old;

	if (am == NULL || (vs->vs_swap == NULL && e->e_obj == NULL))
		return;
	vm_mutex_lock(&am->am_lock);
	for (int s = e->e_aref.ar_pageoff; s < e->e_aref.ar_pageoff +
	    (int)vm_entry_npages(e); s++) {
		an = amap_anon_at(am, s);
		if (an == NULL || !(an->an_flags & ANON_RESIDENT) ||
		    !(an->an_flags & ANON_CLEAN))
			continue;
		amap_set_dirty(am, s, &old);
		if (old != 0)	/* lock order: amap -> pager */
			swap_free(vs->vs_swap, old, 1);
	}
	vm_mutex_unlock(&am->am_lock);
}

void
region_move_neighbors(struct vmspace *vs, vaddr_t start, vaddr_t end)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e, *p;
	vaddr_t lo = start, hi = end;

	VM_ASSERT_WLOCKED(&map->m_lock);
	for (p = start > 0 ? vm_map_first_ge(map, start - 1) : NULL;
	    p != NULL && p->e_end == lo; p = vm_map_prev(map, p)) {
		region_dirty_clean(vs, p);
		lo = p->e_start;
	}
	for (e = vm_map_first_ge(map, end); e != NULL && e->e_start == hi;
	    e = vm_map_next(map, e)) {
		region_dirty_clean(vs, e);
		hi = e->e_end;
	}
	if (lo < start)
		(void)pmap_register(&vs->vs_pmap, lo, start - lo,
		    vs->vs_regmodes);
	if (hi > end)
		(void)pmap_register(&vs->vs_pmap, end, hi - end,
		    vs->vs_regmodes);
}

int
region_move(struct vmspace *vs, vaddr_t start, vaddr_t end, vaddr_t nstart)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e, *next, *moved = NULL;
	vaddr_t delta = nstart - start;	/* modulo 2^64 */
	int error;

	VM_ASSERT_WLOCKED(&map->m_lock);
	for (e = vm_map_lookup(map, start); e != NULL && e->e_start < end;
	    e = next) {
		next = vm_map_next(map, e);
		vm_map_unlink(map, e);
		e->e_start += delta;
		e->e_end += delta;
		cluster_reset(&e->e_cluster);
		region_dirty_clean(vs, e);
		e->e_rb.rbe_parent = moved;
		moved = e;
	}
	for (e = moved; e != NULL; e = next) {
		next = e->e_rb.rbe_parent;
		error = vm_map_insert(map, e);
		VM_ASSERT(error == 0);	/* the kernel gave us the range */
	}
	error = pmap_register(&vs->vs_pmap, nstart, end - start,
	    vs->vs_regmodes);
	if (error != 0) {
		upvm_log(LOG_ERR, "mremap: cannot register the moved range "
		    "%#lx+%#lx: %s; its swapped-out pages are lost",
		    (unsigned long)nstart, (unsigned long)(end - start),
		    strerror(-error));
		(void)region_remove(vs, nstart, nstart + (end - start), false);
	}
	return error;
}

int
region_wire(struct vmspace *vs, vaddr_t start, vaddr_t end, int how)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	int error;

	if ((error = region_clip(map, start, end)) != 0)
		return error;
	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e)) {
		/* ONFAULT pages: counted by the daemon as they come */
		if ((e->e_wired == REGION_WIRED) != (how == REGION_WIRED))
			atomic_fetch_add(&vs->vs_wired, how == REGION_WIRED ?
			    (long)vm_entry_npages(e) :
			    -(long)vm_entry_npages(e));
		if (how == REGION_WIRED_ONFAULT)
			atomic_store(&vs->vs_onfault_used, true);
		e->e_wired = (uint16_t)how;
	}
	region_merge(map, start, end);
	return 0;
}

int
region_wired_how(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;

	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e))
		if (e->e_wired)
			return e->e_wired;
	return 0;
}

bool
region_any_wired(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	return region_wired_how(map, start, end) != 0;
}

/* inh_after: an entry's inheritance after one fork advice (region.h) */
static int
inh_after(int inh, int advice)
{
	bool dontcopy = inh == VM_INH_NONE || inh == VM_INH_NONEZERO;
	bool wipe = inh == VM_INH_ZERO || inh == VM_INH_NONEZERO;

	switch (advice) {
	case MADV_DONTFORK:
		dontcopy = true;
		break;
	case MADV_DOFORK:
		dontcopy = false;
		break;
	case MADV_WIPEONFORK:
		wipe = true;
		break;
	case MADV_KEEPONFORK:
		wipe = false;
		break;
	}
	if (dontcopy)
		return wipe ? VM_INH_NONEZERO : VM_INH_NONE;
	return wipe ? VM_INH_ZERO : VM_INH_COPY;
}

/*
 * region_set: clip the managed entries of [start, end), give each the
 * attribute `what` says (its own value from arg), merge what became alike.
 * => map write-locked; -ENOMEM (clipping).
 */
enum region_attr { RA_INHERIT, RA_FORK_ADVICE, RA_PROT };

static int
region_set(struct vm_map *map, vaddr_t start, vaddr_t end,
    enum region_attr what, int arg)
{
	struct vm_map_entry *e;
	int error;

	if ((error = region_clip(map, start, end)) != 0)
		return error;
	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e)) {
		switch (what) {
		case RA_INHERIT:
			e->e_inherit = (uint8_t)arg;
			break;
		case RA_FORK_ADVICE:
			e->e_inherit = (uint8_t)inh_after(e->e_inherit, arg);
			break;
		case RA_PROT:
			e->e_prot = vm_prot(arg);
			break;
		}
	}
	region_merge(map, start, end);
	return 0;
}

int
region_inherit(struct vm_map *map, vaddr_t start, vaddr_t end, int inh)
{
	return region_set(map, start, end, RA_INHERIT, inh);
}

int
region_protect(struct vm_map *map, vaddr_t start, vaddr_t end, int prot)
{
	return region_set(map, start, end, RA_PROT, prot);
}

int
region_fork_advice(struct vm_map *map, vaddr_t start, vaddr_t end,
    int advice)
{
	return region_set(map, start, end, RA_FORK_ADVICE, advice);
}

int
region_uninherit(struct vmspace *vs)
{
	struct vm_map_entry *e, *next;
	vaddr_t start, end;
	int error = 0, inh;

	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL && error == 0;
	    e = next) {
		next = vm_map_next(&vs->vs_map, e);
		/* memory locks are not inherited either */
		if (e->e_wired) {
			if (e->e_wired == REGION_WIRED)
				atomic_fetch_sub(&vs->vs_wired,
				    (long)vm_entry_npages(e));
			e->e_wired = 0;
		}
		if ((inh = e->e_inherit) == VM_INH_COPY)
			continue;
		start = e->e_start;
		end = e->e_end;
		if ((error = region_remove(vs, start, end, false)) == 0 &&
		    inh == VM_INH_ZERO)
			error = region_adopt(vs, start, end);
		if (error != 0)
			upvm_log(LOG_ERR, "upvm: the child of fork cannot "
			    "forget [%#lx, %#lx), which fork did not copy: %s",
			    (unsigned long)start, (unsigned long)end,
			    strerror(-error));
		next = vm_map_first_ge(&vs->vs_map, end);
	}
	return error;
}
