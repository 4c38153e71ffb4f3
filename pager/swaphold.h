/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swaphold.h: which process holds which swap slot references.  Inside
 * pager/ only: the swap pager (swap.c) keeps the table in the state that
 * the processes forked from swap_create()'s caller share, and calls these
 * with ss_lock held unless a function says otherwise.
 *
 * Why.  A slot's reference count is shared by every process of the
 * family (a fork child holds references on its parent's swapped-out
 * pages), but a process that exits, is killed or execs without calling
 * upvm_fini never drops its references: the slots stayed allocated until
 * the last process closed the file, and a program that forked while
 * pages were swapped out grew the file up to its cap.  So each process
 * is a holder: one bit per slot, set while it holds one of the slot's
 * references (a process holds at most one: an anon shared inside a
 * process holds its slot once).  A holder whose process has gone, or
 * whose process has exec'd another image (it no longer maps the shared
 * state), is reaped by a live one: each of its bits gives back one
 * reference.
 *
 * Order against the counts, so that a process killed halfway through an
 * update (the robust ss_lock) leaks a reference rather than giving back
 * one it did not hold: a reference is counted before its bit is set, and
 * its bit cleared before it is uncounted.
 *
 * A fork child's references are taken by its parent before the fork.
 * Through upvm_fork (the preload's fork) the parent records them in an
 * entry pending for the child (swh_pend), which the child adopts in its
 * fork handler or the parent gives the child's pid once fork returns, and
 * which the parent gives back when the fork failed: a child killed before
 * its fork handler ran is reaped like any other process.  A fork that
 * does not go through upvm_fork (fork(2) called from a program that links
 * upvm rather than preloading it, glibc's own internal forks) leaves them
 * to the child to record (swap_hold).
 *
 * References that are never given back by a reap, and stay allocated
 * until the last process closes the file: those of a process forked when
 * the table is full (SWAP_HOLDERS processes share the file, even after a
 * reap) hold its references untracked (sw_holder == SWH_NONE), as before;
 * outside upvm_fork, those a parent takes for a child in a fork that
 * fails, or for a child killed before its fork handler ran; through it,
 * those of a parent killed between its fork and the child's pid recorded
 * while its child died before its fork handler ran; and those of a holder
 * that /proc did not show as itself when it claimed its entry (no /proc
 * mounted, a /proc of another pid namespace), or of another pid namespace
 * than the reaper's.
 *
 * Locks protecting struct members in this file:
 *	I  immutable after swh_init()   s  ss_lock (swap.c)
 * Invariants (swh_check()): a free entry has no bit set; a bit set at or
 * past its entry's sh_hi is not; every holder's bits for a slot number
 * at most the slot's count.
 */
#ifndef UPVM_SWAPHOLD_H
#define UPVM_SWAPHOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SWAP_HOLDERS	32		/* processes recorded at once */
#define SWH_NONE	(-1)		/* a holder not recorded */

/* an entry is free, a process's, or pending: claimed by a parent for a
   child it is about to fork, whose pid is not known yet (never reaped:
   swh_adopt makes it the child's) */
enum swh_state { SWH_FREE = 0, SWH_LIVE, SWH_PENDING };

struct swap_holder {
	pid_t		 sh_pid;	/* [s] its process */
	int		 sh_state;	/* [s] enum swh_state */
	uint64_t	 sh_start;	/* [s] its start time (proc(5) stat
					   field 22): a pid reused is not it;
					   pending: swh_pend's nonce */
	uint64_t	 sh_pidns;	/* [s] its pid namespace (inode) */
	bool		 sh_reapable;	/* [s] /proc showed it as sh_pid
					   when it claimed: swh_gone may
					   judge it */
	uint64_t	 sh_hi;		/* [s] no bit at or past this */
	uint64_t	 sh_held;	/* [s] bits set */
};

struct swap_holders {
	uint64_t	 sh_words;	/* [I] bitmap words per holder */
	uint64_t	*sh_bits;	/* [I] SWAP_HOLDERS bitmaps; contents
					   [s] */
	uintptr_t	 sh_area;	/* [I] the shared state's address (the
					   same in every process of the
					   family) and the inode behind it:
					   a process maps it iff it still
					   runs the image that forked */
	unsigned long	 sh_ino;	/* [I] 0: not known (no exec check) */
	int		 sh_nlive;	/* [s] entries not free */
	uint64_t	 sh_pends;	/* [s] pending entries ever made */
	struct swap_holder sh_tab[SWAP_HOLDERS]; /* [s] */
};

/* swh_bytes: the bitmaps' size for nslots, whole words */
size_t swh_bytes(uint64_t nslots);

/*
 * swh_init: an empty table whose bitmaps are at bits (zeroed, swh_bytes),
 * in the shared area at area (mapped already: its inode is looked up).
 */
void swh_init(struct swap_holders *, uint64_t *bits, uint64_t nslots,
    const void *area);

/*
 * swh_self: the calling process's pid, start time and pid namespace for
 * swh_claim (call it without ss_lock: it reads /proc).
 * => true when /proc shows this process as that pid (reapable), false
 *    when it does not (no /proc, a /proc of another pid namespace).
 */
bool swh_self(pid_t *pid, uint64_t *start, uint64_t *pidns);

/*
 * swh_child: swh_self for a child of the calling process, by its pid
 * (read without ss_lock).  => true when both show as themselves in /proc.
 */
bool swh_child(pid_t child, uint64_t *start, uint64_t *pidns);

/*
 * swh_claim: a free entry for the process swh_self described.
 * => the entry, or SWH_NONE when the table is full.
 */
int swh_claim(struct swap_holders *, pid_t pid, uint64_t start,
    uint64_t pidns, bool reapable);

/*
 * swh_pend: a free entry, pending (swh_state), marked with a number no
 * other pending entry of the family had (*nonce), so that the fork it is
 * for finds it as its own even if it went and was claimed again
 * meanwhile.  => it, or SWH_NONE
 */
int swh_pend(struct swap_holders *, uint64_t *nonce);

/* swh_pending: entry h is still the one swh_pend marked with nonce */
bool swh_pending(const struct swap_holders *, int h, uint64_t nonce);

/*
 * swh_adopt: entry h, pending with nonce, becomes the process that
 * swh_self (or swh_child, for it) described; an entry that process
 * adopted already stays as it is.
 * => true if h is that process's now, false if it is not (it went).
 */
bool swh_adopt(struct swap_holders *, int h, uint64_t nonce, pid_t pid,
    uint64_t start, uint64_t pidns, bool reapable);

/* swh_set / swh_clear: holder h's bit of slot index i (h may be SWH_NONE:
   nothing recorded, and swh_clear says true) */
void swh_set(struct swap_holders *, int h, uint64_t i);
bool swh_clear(struct swap_holders *, int h, uint64_t i);

/* swh_next: holder h's first bit set at or past i, or UINT64_MAX */
uint64_t swh_next(const struct swap_holders *, int h, uint64_t i);

/* swh_free: entry h, whose bits are all clear, is free again */
void swh_free(struct swap_holders *, int h);

/*
 * swh_gone: the process of holder entry e (a copy taken under ss_lock)
 * has exited or runs another image, as seen from pid namespace pidns
 * (the caller's, swh_self).  Reads /proc; call it WITHOUT ss_lock.  Any
 * doubt is "alive" (swaphold.c): a reference is never given back wrongly.
 */
bool swh_gone(const struct swap_holders *, const struct swap_holder *e,
    uint64_t pidns);

/* swh_check: the invariants, with counts for the last: NULL or what is
   wrong (*badp: the slot index or entry) */
const char *swh_check(const struct swap_holders *, const uint32_t *counts,
    uint64_t nslots, uint64_t *badp);

#endif /* UPVM_SWAPHOLD_H */
