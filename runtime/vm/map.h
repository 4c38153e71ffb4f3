/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * map.h: the map of one managed address space and its entries.
 *
 * A vm_map holds only upvm-managed ranges, as a red-black tree of
 * non-overlapping entries keyed by address (libbsd's <sys/tree.h>, the
 * macros UVM is written with), with a last-hit hint for lookups.  Each
 * entry describes [e_start, e_end): its upper layer (e_aref into an amap),
 * its lower layer (e_obj + e_offset, NULL meaning zero-fill), protection,
 * inheritance, advice and the fault engine's stream detectors.
 *
 * Locks protecting struct members in this file:
 *	m  m_lock: written with it write-locked, read with it held
 *	h  m_hint: atomic, may be updated under the read lock
 *	c  the e_aref amap's am_lock (stream state, updated by fault handlers
 *	   that hold the map only read-locked)
 *
 * Invariants (vm_map_check()):
 *	entries are page aligned, e_start < e_end, ordered, non-overlapping
 *	m_nentries == entries in the tree; m_size == sum of entry sizes
 *	an entry's aref covers its pages: ar_pageoff + npages <= am_nslot
 *	m_hint is NULL or an entry in the tree
 */
#ifndef UPVM_MAP_H
#define UPVM_MAP_H

#include <stdatomic.h>
#include <stdint.h>

#include <bsd/sys/tree.h>

#include "amap.h"
#include "cluster.h"
#include "kmem.h"
#include "lock.h"
#include "vm.h"

struct pager;

/* e_etype */
#define VM_ET_COPYONWRITE	0x1	/* private: writes go to the amap */
#define VM_ET_NEEDSCOPY		0x2	/* amap shared: copy before writing */

/* e_wired: mlock (every page resident, all counted in vs_wired) or
   mlock2's MLOCK_ONFAULT (the pages that faulted in: vs_wired_onfault) */
#define VM_WIRED		1
#define VM_WIRED_ONFAULT	2

struct vm_map_entry {
	RB_ENTRY(vm_map_entry) e_rb;	/* [m] tree linkage */
	vaddr_t		e_start;	/* [m] first address */
	vaddr_t		e_end;		/* [m] one past the last */
	struct pager	*e_obj;		/* [m] lower layer; NULL: zero-fill */
	voff_t		e_offset;	/* [m] offset of e_start in e_obj */
	struct vm_aref	e_aref;		/* [m] upper layer */
	uint8_t		e_prot;		/* [m] VM_PROT_* */
	uint8_t		e_maxprot;	/* [m] VM_PROT_* */
	uint8_t		e_inherit;	/* [m] VM_INH_* */
	uint8_t		e_advice;	/* [m] VM_ADV_* */
	uint16_t	e_etype;	/* [m] VM_ET_* */
	uint16_t	e_wired;	/* [m] 0, or how it is wired:
					   VM_WIRED, VM_WIRED_ONFAULT */
	struct cluster_state e_cluster;	/* [c] stream detectors */
};

RB_HEAD(vm_map_tree, vm_map_entry);

struct vm_map {
	struct vm_rwlock m_lock;
	struct vm_map_tree m_tree;	/* [m] */
	_Atomic(struct vm_map_entry *) m_hint;	/* [h] last lookup hit */
	int		m_nentries;	/* [m] */
	vsize_t		m_size;		/* [m] bytes covered by entries */
	struct kmem_pool m_entries;	/* entry allocator (own lock) */
};

static inline vsize_t
vm_entry_npages(const struct vm_map_entry *e)
{
	return atop(e->e_end - e->e_start);
}

/* the amap slot of address va in entry e */
static inline int
vm_entry_slot(const struct vm_map_entry *e, vaddr_t va)
{
	return e->e_aref.ar_pageoff + (int)atop(va - e->e_start);
}

/* the offset in e_obj of address va in entry e */
static inline voff_t
vm_entry_objoff(const struct vm_map_entry *e, vaddr_t va)
{
	return e->e_offset + (voff_t)(va - e->e_start);
}

void vm_map_init(struct vm_map *);

/*
 * vm_map_destroy: free every entry (their amap and pager references too).
 * => nobody else uses the map any more.
 */
void vm_map_destroy(struct vm_map *);

/*
 * vm_map_entry_alloc: a new, unlinked entry for [start, end), zero-fill,
 * no amap, VM_PROT_RW (max VM_PROT_ALL), VM_INH_COPY, VM_ADV_NORMAL,
 * COPYONWRITE.
 * => returns NULL when out of memory.
 */
struct vm_map_entry *vm_map_entry_alloc(struct vm_map *, vaddr_t start,
    vaddr_t end);

/*
 * vm_map_entry_free: release an unlinked entry with its amap reference
 * (amap_unref of its own range) and its pager reference.
 * => the entry is unlinked (so not the hint); no map lock needed.
 */
void vm_map_entry_free(struct vm_map *, struct vm_map_entry *);

/*
 * vm_map_insert: link an entry.
 * => map write-locked.
 * => returns 0, or -EEXIST if it overlaps an entry (nothing changed).
 */
int vm_map_insert(struct vm_map *, struct vm_map_entry *);

/* vm_map_unlink: take an entry out of the tree (not freed). => write-locked */
void vm_map_unlink(struct vm_map *, struct vm_map_entry *);

/*
 * vm_map_lookup: the entry containing va, or NULL.  Tries the hint first.
 * => map locked (read or write).
 */
struct vm_map_entry *vm_map_lookup(struct vm_map *, vaddr_t va);

/* vm_map_first_ge: first entry with e_end > va, or NULL.  => map locked */
struct vm_map_entry *vm_map_first_ge(struct vm_map *, vaddr_t va);

/* tree neighbours; NULL at the ends.  => map locked */
struct vm_map_entry *vm_map_next(struct vm_map *, struct vm_map_entry *);
struct vm_map_entry *vm_map_prev(struct vm_map *, struct vm_map_entry *);

/*
 * vm_map_clip_start / vm_map_clip_end: split the entry at va (page aligned,
 * strictly inside it), so that the entry starts (clip_start) or ends
 * (clip_end) at va.  The other part becomes a new entry with the same
 * attributes, its aref split (amap_splitref) and its own pager reference.
 * A va at the entry's edge is a no-op.
 * => map write-locked.
 * => returns 0, or -ENOMEM with nothing changed.
 */
int vm_map_clip_start(struct vm_map *, struct vm_map_entry *, vaddr_t va);
int vm_map_clip_end(struct vm_map *, struct vm_map_entry *, vaddr_t va);

/*
 * vm_map_merge: merge the entry with its neighbours where they are
 * compatible (adjacent; same attributes; same object with contiguous
 * offsets; both without amap, or the same amap at contiguous slots).
 * => map write-locked.  Returns the surviving entry (`e` may be freed).
 */
struct vm_map_entry *vm_map_merge(struct vm_map *, struct vm_map_entry *e);

/*
 * vm_map_range_managed: true if [start, end) is covered by entries with no
 * gap.  => map locked.
 */
bool vm_map_range_managed(struct vm_map *, vaddr_t start, vaddr_t end);

/* vm_map_check: 0 if the invariants hold, else -EINVAL (logged).
 * => map locked (read or write). */
int vm_map_check(struct vm_map *);

#endif /* UPVM_MAP_H */
