/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * map.c: the map of managed ranges, its entries, clipping and merging.
 *
 * The entries sit in a red-black tree (libbsd's <sys/tree.h>, as in UVM)
 * keyed by e_start.  Entries never overlap, so e_end grows with e_start
 * and one descent answers "the first entry ending above va"
 * (vm_map_first_ge), which every lookup is built on.  A last-hit hint
 * short-cuts the fault engine's lookups, which mostly land in the entry
 * the previous fault hit.
 *
 * A word on clipping.  Each entry's aref points at the amap slot of its
 * own first page (ar_pageoff), and its e_offset at the object offset of
 * its own first page.  Splitting [start, end) at va gives two entries
 * over the same amap: the part holding start keeps the original ar_pageoff,
 * the part holding va gets ar_pageoff + atop(va - start) through
 * amap_splitref(), which also counts the new reference.  clip_end keeps
 * `e` as the front part, so the new entry is the tail and takes the split
 * reference; clip_start keeps `e` as the tail part, so the new entry is
 * the front: it takes e's original aref, and e's aref becomes the split.
 * Both parts keep one pager reference each.  Merging undoes this:
 * the survivor is the left entry (it keeps its ar_pageoff and e_offset),
 * amap_mergeref() drops the right one's amap reference and pager_unref()
 * its pager reference.
 *
 * Stream detectors (e_cluster) are copied to the new entry on a clip: a
 * stream remembers an address, so one that expects its next fault in the
 * other part keeps working there, and one that does not simply ages out.
 * On a merge the survivor keeps its own.  Both happen with the map
 * write-locked, so no fault handler (they hold the read lock) is updating
 * them.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <bsd/sys/tree.h>

#include "amap.h"
#include "cluster.h"
#include "kmem.h"
#include "lock.h"
#include "log.h"
#include "map.h"
#include "pager.h"
#include "vm.h"

static int
vm_map_entry_cmp(struct vm_map_entry *a, struct vm_map_entry *b)
{
	return a->e_start < b->e_start ? -1 : a->e_start > b->e_start;
}

/*
 * RB_GENERATE_STATIC() spells its attribute `__unused`, which libbsd leaves
 * undefined on Linux (a kernel header has a member of that name), so name
 * the attribute ourselves.
 */
RB_GENERATE_INTERNAL(vm_map_tree, vm_map_entry, e_rb, vm_map_entry_cmp,
    static __attribute__((unused)))

/*
 * The hint is read and written with relaxed atomics: it is only ever a
 * pointer to an entry in the tree (unlink, under the write lock, clears
 * it), and the entry's fields were published by the write-lock release
 * that preceded every reader's read lock, so the pointer needs no
 * ordering of its own.
 */
static inline struct vm_map_entry *
vm_map_hint(struct vm_map *map)
{
	return atomic_load_explicit(&map->m_hint, memory_order_relaxed);
}

static inline void
vm_map_set_hint(struct vm_map *map, struct vm_map_entry *e)
{
	atomic_store_explicit(&map->m_hint, e, memory_order_relaxed);
}

/* vm_map_init: an empty map; its entry pool takes no memory yet. */
void
vm_map_init(struct vm_map *map)
{
	vm_rwlock_init(&map->m_lock);
	RB_INIT(&map->m_tree);
	atomic_init(&map->m_hint, NULL);
	map->m_nentries = 0;
	map->m_size = 0;
	kmem_pool_init(&map->m_entries, "vm_map_entry",
	    sizeof(struct vm_map_entry));
}

/*
 * vm_map_destroy: free every entry with its amap and pager references,
 * then the entry pool and the lock.
 * => nobody else uses the map any more (so freeing under the write lock,
 *    taken only to satisfy the assertions, cannot hold anyone up).
 */
void
vm_map_destroy(struct vm_map *map)
{
	struct vm_map_entry *e;

	vm_rwlock_wrlock(&map->m_lock);
	while ((e = RB_MIN(vm_map_tree, &map->m_tree)) != NULL) {
		vm_map_unlink(map, e);
		vm_map_entry_free(map, e);
	}
	VM_ASSERT(map->m_nentries == 0 && map->m_size == 0);
	vm_rwlock_unlock(&map->m_lock);
	kmem_pool_destroy(&map->m_entries);
	vm_rwlock_destroy(&map->m_lock);
}

/*
 * vm_map_entry_alloc: a new unlinked entry for [start, end): zero-fill,
 * no amap, VM_PROT_RW (max VM_PROT_ALL), VM_INH_COPY, VM_ADV_NORMAL,
 * VM_ET_COPYONWRITE, not wired, fresh stream detectors.
 * => start, end page aligned, start < end.
 * => returns NULL when out of memory; the caller owns the entry.
 */
struct vm_map_entry *
vm_map_entry_alloc(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;

	VM_ASSERT(page_aligned(start) && page_aligned(end) && start < end);
	if ((e = kmem_pool_get(&map->m_entries)) == NULL)
		return NULL;
	/* the pool zeroes: e_obj, e_offset, e_aref, e_wired are 0 */
	e->e_start = start;
	e->e_end = end;
	e->e_prot = VM_PROT_RW;
	e->e_maxprot = VM_PROT_ALL;
	e->e_inherit = VM_INH_COPY;
	e->e_advice = VM_ADV_NORMAL;
	e->e_etype = VM_ET_COPYONWRITE;
	cluster_reset(&e->e_cluster);
	return e;
}

/*
 * vm_map_entry_free: release an unlinked entry, its amap reference (for
 * its own slots) and its pager reference.
 * => the entry is in no tree and is not the map's hint.
 * => takes and drops the amap's and the pager's locks: call it with no
 *    amap or pager lock held.
 */
void
vm_map_entry_free(struct vm_map *map, struct vm_map_entry *e)
{
	VM_ASSERT(vm_map_hint(map) != e);
	if (e->e_aref.ar_amap != NULL)
		amap_unref(e->e_aref.ar_amap, e->e_aref.ar_pageoff,
		    (int)vm_entry_npages(e));
	if (e->e_obj != NULL)
		pager_unref(e->e_obj);
	kmem_pool_put(&map->m_entries, e);
}

/*
 * vm_map_insert: link an entry into the map.
 * => map write-locked.
 * => returns 0, or -EEXIST if the entry overlaps one in the map (nothing
 *    changed; the caller still owns the entry).
 */
int
vm_map_insert(struct vm_map *map, struct vm_map_entry *e)
{
	struct vm_map_entry *next;

	VM_ASSERT_WLOCKED(&map->m_lock);
	VM_ASSERT(page_aligned(e->e_start) && page_aligned(e->e_end) &&
	    e->e_start < e->e_end);
	next = vm_map_first_ge(map, e->e_start);
	if (next != NULL && next->e_start < e->e_end)
		return -EEXIST;
	if (RB_INSERT(vm_map_tree, &map->m_tree, e) != NULL)
		return -EEXIST;		/* same start: caught above already */
	map->m_nentries++;
	map->m_size += e->e_end - e->e_start;
	return 0;
}

/*
 * vm_map_unlink: take an entry out of the map; the caller owns it after.
 * => map write-locked.  Clears the hint if it points at the entry.
 */
void
vm_map_unlink(struct vm_map *map, struct vm_map_entry *e)
{
	VM_ASSERT_WLOCKED(&map->m_lock);
	VM_ASSERT(map->m_nentries > 0);
	RB_REMOVE(vm_map_tree, &map->m_tree, e);
	map->m_nentries--;
	map->m_size -= e->e_end - e->e_start;
	/* no reader runs under the write lock: a plain check is enough */
	if (vm_map_hint(map) == e)
		vm_map_set_hint(map, NULL);
}

/*
 * vm_map_lookup: the entry containing va, or NULL.  Tries the hint first
 * and makes a hit the new hint.
 * => map locked (read or write).
 */
struct vm_map_entry *
vm_map_lookup(struct vm_map *map, vaddr_t va)
{
	struct vm_map_entry *e;

	VM_ASSERT_RLOCKED(&map->m_lock);
	e = vm_map_hint(map);
	if (e != NULL && e->e_start <= va && va < e->e_end)
		return e;
	e = vm_map_first_ge(map, va);
	if (e == NULL || e->e_start > va)
		return NULL;
	vm_map_set_hint(map, e);
	return e;
}

/*
 * vm_map_first_ge: the first entry with e_end > va, or NULL: the entry
 * containing va, else the first one above it.  One descent, O(log n).
 * => map locked (read or write).
 */
struct vm_map_entry *
vm_map_first_ge(struct vm_map *map, vaddr_t va)
{
	struct vm_map_entry *e, *best = NULL;

	VM_ASSERT_RLOCKED(&map->m_lock);
	e = RB_ROOT(&map->m_tree);
	while (e != NULL) {
		if (e->e_end > va) {
			best = e;
			e = RB_LEFT(e, e_rb);
		} else
			e = RB_RIGHT(e, e_rb);
	}
	return best;
}

/* vm_map_next: the entry after e, or NULL.  => map locked */
struct vm_map_entry *
vm_map_next(struct vm_map *map, struct vm_map_entry *e)
{
	VM_ASSERT_RLOCKED(&map->m_lock);
	return RB_NEXT(vm_map_tree, &map->m_tree, e);
}

/* vm_map_prev: the entry before e, or NULL.  => map locked */
struct vm_map_entry *
vm_map_prev(struct vm_map *map, struct vm_map_entry *e)
{
	VM_ASSERT_RLOCKED(&map->m_lock);
	return RB_PREV(vm_map_tree, &map->m_tree, e);
}

/*
 * vm_map_clip_new: a copy of e, unlinked, for the caller to give a range,
 * an aref and a pager reference.  NULL when out of memory.
 */
static struct vm_map_entry *
vm_map_clip_new(struct vm_map *map, struct vm_map_entry *e)
{
	struct vm_map_entry *n;

	if ((n = kmem_pool_get(&map->m_entries)) == NULL)
		return NULL;
	*n = *e;
	memset(&n->e_rb, 0, sizeof(n->e_rb));
	n->e_aref.ar_amap = NULL;
	n->e_aref.ar_pageoff = 0;
	return n;
}

/*
 * vm_map_clip_start: split e at va so that e becomes [va, e_end); the new
 * entry [e_start, va) keeps e's original aref and offset, and e gets the
 * split aref (ar_pageoff + atop(va - e_start)) and offset.
 * => map write-locked.  va page aligned, inside [e_start, e_end]; an
 *    edge is a no-op.
 * => returns 0, or -ENOMEM with nothing changed.
 */
int
vm_map_clip_start(struct vm_map *map, struct vm_map_entry *e, vaddr_t va)
{
	struct vm_map_entry *front;
	vsize_t delta;

	VM_ASSERT_WLOCKED(&map->m_lock);
	VM_ASSERT(page_aligned(va) && e->e_start <= va && va <= e->e_end);
	if (va == e->e_start || va == e->e_end)
		return 0;
	if ((front = vm_map_clip_new(map, e)) == NULL)
		return -ENOMEM;
	delta = va - e->e_start;
	front->e_end = va;
	if (e->e_aref.ar_amap != NULL) {
		front->e_aref = e->e_aref;
		e->e_aref.ar_amap = NULL;
		amap_splitref(&front->e_aref, &e->e_aref, (int)atop(delta));
	}
	if (e->e_obj != NULL)
		pager_ref(e->e_obj);
	/* e keeps its place in the tree: nothing lies in [e_start, va) */
	e->e_start = va;
	e->e_offset += delta;
	if (RB_INSERT(vm_map_tree, &map->m_tree, front) != NULL)
		VM_ASSERT(!"clip_start: front part collides");
	map->m_nentries++;
	return 0;
}

/*
 * vm_map_clip_end: split e at va so that e becomes [e_start, va); the new
 * entry [va, e_end) gets the split aref and the offset of va.
 * => map write-locked.  va page aligned, inside [e_start, e_end]; an
 *    edge is a no-op.
 * => returns 0, or -ENOMEM with nothing changed.
 */
int
vm_map_clip_end(struct vm_map *map, struct vm_map_entry *e, vaddr_t va)
{
	struct vm_map_entry *tail;
	vsize_t delta;

	VM_ASSERT_WLOCKED(&map->m_lock);
	VM_ASSERT(page_aligned(va) && e->e_start <= va && va <= e->e_end);
	if (va == e->e_start || va == e->e_end)
		return 0;
	if ((tail = vm_map_clip_new(map, e)) == NULL)
		return -ENOMEM;
	delta = va - e->e_start;
	tail->e_start = va;
	tail->e_offset = e->e_offset + delta;
	if (e->e_aref.ar_amap != NULL)
		amap_splitref(&e->e_aref, &tail->e_aref, (int)atop(delta));
	if (e->e_obj != NULL)
		pager_ref(e->e_obj);
	e->e_end = va;
	if (RB_INSERT(vm_map_tree, &map->m_tree, tail) != NULL)
		VM_ASSERT(!"clip_end: tail part collides");
	map->m_nentries++;
	return 0;
}

/*
 * vm_map_joinable: may right (just after left) be folded into left?
 * Adjacent, same attributes, same object at contiguous offsets (any
 * offsets when zero-fill), and no amap on either or the same amap at
 * contiguous slots.
 */
static bool
vm_map_joinable(const struct vm_map_entry *left,
    const struct vm_map_entry *right)
{
	if (left->e_end != right->e_start)
		return false;
	if (left->e_prot != right->e_prot ||
	    left->e_maxprot != right->e_maxprot ||
	    left->e_inherit != right->e_inherit ||
	    left->e_advice != right->e_advice ||
	    left->e_etype != right->e_etype ||
	    left->e_wired != right->e_wired)
		return false;
	if (left->e_obj != right->e_obj)
		return false;
	if (left->e_obj != NULL &&
	    left->e_offset + (left->e_end - left->e_start) != right->e_offset)
		return false;
	if (left->e_aref.ar_amap != right->e_aref.ar_amap)
		return false;
	if (left->e_aref.ar_amap != NULL &&
	    left->e_aref.ar_pageoff + (int)vm_entry_npages(left) !=
	    right->e_aref.ar_pageoff)
		return false;
	return true;
}

/*
 * vm_map_join: fold right into left and free right.  Right's amap
 * reference is redundant once left covers its slots (amap_mergeref, never
 * the last one: left holds another), and so is its pager reference.
 * => map write-locked; vm_map_joinable(left, right).
 */
static void
vm_map_join(struct vm_map *map, struct vm_map_entry *left,
    struct vm_map_entry *right)
{
	vm_map_unlink(map, right);
	if (right->e_aref.ar_amap != NULL) {
		amap_mergeref(right->e_aref.ar_amap);
		right->e_aref.ar_amap = NULL;
	}
	if (right->e_obj != NULL) {
		/* left holds a reference of its own: this is never the last */
		pager_unref(right->e_obj);
		right->e_obj = NULL;
	}
	/* left's key (e_start) is unchanged: it keeps its place */
	left->e_end = right->e_end;
	map->m_size += right->e_end - right->e_start;
	kmem_pool_put(&map->m_entries, right);
}

/*
 * vm_map_merge: merge e with its neighbours where they are joinable.
 * => map write-locked.
 * => returns the surviving entry: e's left neighbour if it absorbed e
 *    (e is freed then), else e.
 */
struct vm_map_entry *
vm_map_merge(struct vm_map *map, struct vm_map_entry *e)
{
	struct vm_map_entry *prev, *next;

	VM_ASSERT_WLOCKED(&map->m_lock);
	prev = vm_map_prev(map, e);
	if (prev != NULL && vm_map_joinable(prev, e)) {
		vm_map_join(map, prev, e);
		e = prev;
	}
	next = vm_map_next(map, e);
	if (next != NULL && vm_map_joinable(e, next))
		vm_map_join(map, e, next);
	return e;
}

/*
 * vm_map_range_managed: true if entries cover [start, end) with no gap
 * (an empty range is covered).
 * => map locked (read or write).
 */
bool
vm_map_range_managed(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;
	vaddr_t va = start;

	VM_ASSERT_RLOCKED(&map->m_lock);
	e = vm_map_first_ge(map, start);
	while (va < end) {
		if (e == NULL || e->e_start > va)
			return false;
		va = e->e_end;
		e = vm_map_next(map, e);
	}
	return true;
}

/*
 * vm_map_check_entry: the invariants of one entry given its predecessor.
 * => returns 0, or -EINVAL after logging what is wrong.
 */
static int
vm_map_check_entry(const struct vm_map_entry *prev,
    const struct vm_map_entry *e)
{
	const struct amap *am = e->e_aref.ar_amap;

	if (!page_aligned(e->e_start) || !page_aligned(e->e_end) ||
	    e->e_start >= e->e_end) {
		upvm_log(LOG_ERR, "vm_map: entry [%#lx, %#lx) is empty or "
		    "not page aligned", (unsigned long)e->e_start,
		    (unsigned long)e->e_end);
		return -EINVAL;
	}
	if (prev != NULL && prev->e_end > e->e_start) {
		upvm_log(LOG_ERR, "vm_map: entry [%#lx, %#lx) overlaps or "
		    "precedes [%#lx, %#lx)", (unsigned long)e->e_start,
		    (unsigned long)e->e_end, (unsigned long)prev->e_start,
		    (unsigned long)prev->e_end);
		return -EINVAL;
	}
	if (am != NULL && (e->e_aref.ar_pageoff < 0 ||
	    (vsize_t)e->e_aref.ar_pageoff + vm_entry_npages(e) >
	    (vsize_t)am->am_nslot)) {
		upvm_log(LOG_ERR, "vm_map: entry [%#lx, %#lx) slots %d+%zu "
		    "run past its amap's %d", (unsigned long)e->e_start,
		    (unsigned long)e->e_end, e->e_aref.ar_pageoff,
		    (size_t)vm_entry_npages(e), am->am_nslot);
		return -EINVAL;
	}
	return 0;
}

/*
 * vm_map_check: 0 if the invariants in map.h hold, else -EINVAL after
 * logging the first violation.
 * => map locked (read or write) by the caller.
 */
int
vm_map_check(struct vm_map *map)
{
	struct vm_map_entry *e, *prev = NULL, *hint;
	vsize_t size = 0;
	bool hint_found = false;
	int n = 0;

	VM_ASSERT_RLOCKED(&map->m_lock);
	hint = vm_map_hint(map);
	RB_FOREACH(e, vm_map_tree, &map->m_tree) {
		if (vm_map_check_entry(prev, e) != 0)
			return -EINVAL;
		if (e == hint)
			hint_found = true;
		size += e->e_end - e->e_start;
		n++;
		prev = e;
	}
	if (n != map->m_nentries || size != map->m_size) {
		upvm_log(LOG_ERR, "vm_map: %d entries of %zu bytes in the "
		    "tree, but m_nentries %d, m_size %zu", n, (size_t)size,
		    map->m_nentries, (size_t)map->m_size);
		return -EINVAL;
	}
	if (hint != NULL && !hint_found) {
		upvm_log(LOG_ERR, "vm_map: hint %p is not an entry of the map",
		    (void *)hint);
		return -EINVAL;
	}
	return 0;
}
