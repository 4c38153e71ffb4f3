/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * region.h: operations on the managed regions of a vmspace, over ranges
 * that may be only partly managed (the interposed system calls see any
 * range): create, clip, remove, drop pages, set the access pattern.  The
 * public API (upvm.c) and the system-call face (hostmm.c) are both built
 * on these.
 *
 * Every function here wants the map write-locked: no fault handler is
 * resolving (no SLOT_BUSY), no pageout batch is running.
 */
#ifndef UPVM_REGION_H
#define UPVM_REGION_H

#include "map.h"

struct vmspace;

/*
 * region_create: mmap and register an anonymous private region of len
 * bytes with its entry and amap, not yet in the map.  addr/mmflags as for
 * mmap(2): a hint, or MAP_FIXED (the caller removes what was managed
 * there) or MAP_FIXED_NOREPLACE; prot as for mmap(2).
 * => 0 with *ep, or -errno with nothing left mapped.
 */
int region_create(struct vmspace *, vaddr_t addr, vsize_t len, int prot,
    int mmflags, int advice, struct vm_map_entry **ep);

/*
 * region_attach_file: make e (new, not in the map yet) a mapping of vn
 * from byte off: shared (writes go back to the file) or private (copy on
 * write), read-only or not.  e takes over the caller's vnode reference.
 */
struct vnode;
void region_attach_file(struct vm_map_entry *, struct vnode *, voff_t off,
    bool shared, bool rdonly);

/*
 * region_clip: clip the entries that straddle start or end, so that the
 * managed parts of [start, end) are whole entries.
 * => -ENOMEM with nothing changed in meaning (a clip alone never is).
 */
int region_clip(struct vm_map *, vaddr_t start, vaddr_t end);

/*
 * region_remove: forget the managed parts of [start, end): their entries,
 * anons and swap slots.  unmap: munmap the whole range too; else the
 * caller replaced it already (mmap MAP_FIXED, mremap) and it is only
 * unregistered.
 * => 0, or -ENOMEM (clipping) with nothing changed.
 */
int region_remove(struct vmspace *, vaddr_t start, vaddr_t end, bool unmap);

/*
 * region_adopt: manage [start, end), which the kernel mapped already
 * (anonymous, private, no pages yet: the growth of an mremap).
 * => 0, or -errno with nothing changed.
 */
int region_adopt(struct vmspace *, vaddr_t start, vaddr_t end);

/*
 * region_move: the kernel moved the wholly managed, clipped range
 * [start, end) to nstart (mremap): move its entries there and register
 * the new range.  The move cleared the pages' uffd-wp bits, so pages that
 * were clean (a valid swap copy) become dirty.
 * => 0, or -errno from registering (then the range is forgotten: its
 *    resident pages stay, swapped ones are lost, and it says so).
 */
int region_move(struct vmspace *, vaddr_t start, vaddr_t end, vaddr_t nstart);

/* region_dontneed: drop every managed page of [start, end) (zeros next) */
void region_dontneed(struct vmspace *, vaddr_t start, vaddr_t end);

/*
 * region_pattern: set the access pattern (VM_ADV_*) of the entries in
 * [start, end), clipped by region_clip, and merge what became alike.
 */
void region_pattern(struct vm_map *, vaddr_t start, vaddr_t end, int advice);

/*
 * region_wire: the managed parts of [start, end) become wired (mlock: never
 * paged out, outside the budget; vs_wired counts the pages of mlock()ed
 * entries, the daemon those of MLOCK_ONFAULT ones that are resident) or
 * not.  how
 * is 0 (munlock), REGION_WIRED (mlock) or REGION_WIRED_ONFAULT (mlock2's
 * MLOCK_ONFAULT), kept in e_wired: mremap must know whether the kernel
 * populates what a locked mapping grows by.  Linux does not nest mlock, so
 * neither does this.
 * => -ENOMEM (clipping) with nothing changed.
 */
#define REGION_WIRED		VM_WIRED
#define REGION_WIRED_ONFAULT	VM_WIRED_ONFAULT
int region_wire(struct vmspace *, vaddr_t start, vaddr_t end, int how);

/* region_wired_how: e_wired of the first wired entry in [start, end), 0
   if none is.  => map locked */
int region_wired_how(struct vm_map *, vaddr_t start, vaddr_t end);

/* region_any_wired: some managed entry in [start, end) is wired */
bool region_any_wired(struct vm_map *, vaddr_t start, vaddr_t end);

/*
 * region_move_neighbors: after mremap moved a range from or to [start, end)
 * (its growth included): the kernel merges a moved VMA into a compatible
 * neighbor (a registered one, with the same userfaultfd, is) and then,
 * without UFFD_FEATURE_EVENT_REMAP, drops the registration of the merged
 * VMA: the neighbor's with it, and its uffd-wp bits.  The managed entries
 * that touch [start, end) on either side, as far as they run on without a
 * gap, are registered again, their clean pages made dirty (as moved pages
 * are); the old place's neighbors too (seen losing theirs on 6.18).
 * Registering a registered range again changes nothing.
 * => map write-locked.
 */
void region_move_neighbors(struct vmspace *, vaddr_t start, vaddr_t end);

/*
 * region_inherit: what a child of fork gets of [start, end) is exactly
 * `inh` (VM_INH_*: a range mremap grew or left behind takes its first
 * entry's).  region_fork_advice: the same changed by one madvise advice
 * as the kernel changes its two independent bits (VM_DONTCOPY:
 * MADV_DONTFORK sets it, MADV_DOFORK clears it; VM_WIPEONFORK:
 * MADV_WIPEONFORK sets it, MADV_KEEPONFORK clears it; DONTCOPY wins in
 * the child), so that a DOFORK after a WIPEONFORK keeps the wipe: the
 * kernel gives the child an empty range, and upvm must not think the
 * parent's pages are there (their faults would be woken forever).
 * => map write-locked; -ENOMEM (clipping).
 */
int region_inherit(struct vm_map *, vaddr_t start, vaddr_t end, int inh);
/*
 * region_protect: the managed entries of [start, end) now have protection
 * prot (PROT_*, as mprotect gave it to the kernel's mapping): the pageout
 * daemon copies the dirty pages of a mapping that cannot be written out
 * instead of moving them (UFFDIO_MOVE wants both sides writable).
 * => map write-locked, the kernel's mprotect done.  0, -ENOMEM.
 */
int region_protect(struct vm_map *, vaddr_t start, vaddr_t end, int prot);
int region_fork_advice(struct vm_map *, vaddr_t start, vaddr_t end,
    int advice);

/*
 * region_uninherit: in a child of fork (vmspace_fork_child's uninherit),
 * the entries the kernel did not copy (e_inherit, from madvise): a
 * MADV_DONTFORK range is not mapped here, a MADV_WIPEONFORK one is mapped
 * empty.  Their anons go (after the child took its own swap references,
 * so the parent's stay), and a wiped range starts anew, registered.
 * => map write-locked.  -errno (one log line) if a range cannot be.
 */
int region_uninherit(struct vmspace *);

/* region_managed: some page of [start, end) is managed */
bool region_managed(struct vm_map *, vaddr_t start, vaddr_t end);

#endif /* UPVM_REGION_H */
