/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pmap.h: the only code that touches the Linux page tables of managed
 * ranges: userfaultfd ioctls, madvise, PAGEMAP_SCAN.
 *
 * pmap_init() opens a userfaultfd and records what the running kernel
 * offers (pm_supported, from a UFFDIO_API probe with no features asked)
 * and what this pmap enabled (pm_features).  Every optional operation
 * checks its feature first and returns -EOPNOTSUPP without one, so callers
 * take their fallback paths on old kernels (the 6.1 guest of numa-vm).
 *
 * Resolution calls (copy, zeropage, move, poison) may stop part way: they
 * report the bytes done in *donep even on error.  -EEXIST means the page at
 * dst + *donep is already mapped; -EAGAIN that a non-cooperative event is
 * pending (read the queue and retry); -ENOENT that the range is gone.
 *
 * Locks protecting struct members in this file:
 *	I  immutable after pmap_init()   a  atomic
 */
#ifndef UPVM_PMAP_H
#define UPVM_PMAP_H

#include <stdatomic.h>
#include <stdint.h>

#include "compat.h"
#include "vm.h"

/* pmap_copy / pmap_move / pmap_poison flags */
#define PMAP_DONTWAKE	0x1	/* do not wake the faulting threads */
#define PMAP_WP		0x2	/* map write-protected (copy only) */

/* pmap_register modes */
#define PMAP_REG_MISSING	0x1
#define PMAP_REG_WP		0x2

struct pmap {
	int		pm_uffd;	/* [I] O_NONBLOCK | O_CLOEXEC */
	uint64_t	pm_supported;	/* [I] UFFD_FEATURE_* the kernel has */
	uint64_t	pm_features;	/* [I] UFFD_FEATURE_* enabled here */
	uint64_t	pm_ioctls;	/* [I] UFFDIO_* usable on ranges */
	bool		pm_pagemap_scan; /* [I] PAGEMAP_SCAN works */
	int		pm_pagemap_fd;	/* [I] /proc/self/pagemap, or -1 */
	atomic_uint_least64_t pm_move_recounts; /* [a] UFFDIO_MOVEs that
					   moved pages they did not count
					   (pmap_move) */
	atomic_bool	pm_nopeek;	/* [a] process_vm_readv refused
					   (pmap_peek) */
};

/*
 * pmap_probe: the UFFD_FEATURE_* bits the running kernel supports.
 * => returns 0 with *featuresp set, or -errno if userfaultfd is unusable
 *    (-EPERM: not allowed; see vm.unprivileged_userfaultfd).
 */
int pmap_probe(uint64_t *featuresp);

/*
 * pmap_init: open a userfaultfd with the features in `want` that the kernel
 * supports (the rest are silently left off: check pmap_has()).
 * => returns 0, or -errno with nothing open.
 */
int pmap_init(struct pmap *, uint64_t want);
void pmap_fini(struct pmap *);

/* pmap_has: the feature (UFFD_FEATURE_*) is enabled on this pmap */
static inline bool
pmap_has(const struct pmap *pm, uint64_t feature)
{
	return (pm->pm_features & feature) == feature;
}

/*
 * pmap_register: hand [va, va + len) to the userfaultfd.  The range is
 * also marked MADV_NOHUGEPAGE: upvm maps, places and pages it out page by
 * page, and khugepaged (THP "always") would otherwise collapse a fully
 * resolved 2M range into a huge page on a node of its choosing behind
 * upvm's back (seen on the 6.1 guest: interleaved pages gathered on one
 * node).  => 0 or -errno (the registration's).
 */
int pmap_register(struct pmap *, vaddr_t va, vsize_t len, int modes);
int pmap_unregister(struct pmap *, vaddr_t va, vsize_t len);

int pmap_copy(struct pmap *, vaddr_t dst, const void *src, vsize_t len,
    int flags, vsize_t *donep);
int pmap_zeropage(struct pmap *, vaddr_t dst, vsize_t len, int flags,
    vsize_t *donep);
/* -EOPNOTSUPP without UFFD_FEATURE_MOVE; -EBUSY for shared pages.  *donep
   counts the pages the kernel moved even where its own count lost some
   (Linux 6.18: see move_recount in pmap.c) */
int pmap_move(struct pmap *, vaddr_t dst, vaddr_t src, vsize_t len,
    int flags, vsize_t *donep);
int pmap_wake(struct pmap *, vaddr_t va, vsize_t len);
/* pmap_present: 1 if the page at va is in the page tables, 0 if not, or
   -errno (no /proc/self/pagemap) */
int pmap_present(struct pmap *, vaddr_t va);
/* pmap_present_mask: bit k set if page k of the n (<= 64) at va is in the
   page tables.  => 0, or -errno */
int pmap_present_mask(struct pmap *, vaddr_t va, int n, uint64_t *maskp);
/* dontwake applies to un-protecting only (protecting wakes nobody) */
int pmap_writeprotect(struct pmap *, vaddr_t va, vsize_t len, bool wp,
    bool dontwake);
/* -EOPNOTSUPP without UFFD_FEATURE_POISON */
int pmap_poison(struct pmap *, vaddr_t va, vsize_t len, int flags,
    vsize_t *donep);
/*
 * pmap_peek: the len bytes of pages at va, copied into buf by the kernel
 * (process_vm_readv), which reads them through its own mapping of
 * memory, not through va.  For pages just moved to va (UFFDIO_MOVE): the
 * first touch of a page at an address it was just moved to is a trap a
 * page on a VM with shadow page tables (this one: hashing freshly moved
 * pages in place took 4.9 us a page, the copy and a hash of it 1.0,
 * 2026-12-07).  buf must not be managed memory.
 * => buf, or (const void *)va where the kernel refused the copy (a
 *    seccomp filter; remembered) or copied less than len
 */
const void *pmap_peek(struct pmap *, void *buf, vaddr_t va, size_t len);
/* drop the pages of [va, va + len) from the page tables */
int pmap_dontneed(struct pmap *, vaddr_t va, vsize_t len);

/*
 * pmap_scan_written: collect the written (dirty) runs of [va, va + len)
 * into regs[0..nregs) and, with reprotect, write-protect them again.
 * Needs WP_ASYNC on a range registered PMAP_REG_WP.
 * => returns the number of regions filled, or -EOPNOTSUPP / -errno.
 *    *walk_endp: where the walk stopped (== va + len when complete).
 */
int pmap_scan_written(struct pmap *, vaddr_t va, vsize_t len,
    struct page_region *regs, int nregs, bool reprotect, vaddr_t *walk_endp);

/*
 * pmap_read_events: read up to n pending messages without blocking.
 * => returns the number read, 0 if none is pending, or -errno.
 */
int pmap_read_events(struct pmap *, struct uffd_msg *msgs, int n);

#endif /* UPVM_PMAP_H */
