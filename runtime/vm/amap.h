/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * amap.h: the anonymous (upper) layer, one slot per page of an entry.
 *
 * As in UVM, an amap is an array of slots that map entries reference through
 * a vm_aref (amap + first slot); a page's data belongs to the anon in its
 * slot, and anons are reference counted so that amap_copy() can share them
 * copy-on-write with no shadow-object chains.
 *
 * A slot is a tagged word.  Most pages never need an anon object: a page
 * that is resident, private to one slot and has no backing copy is the tag
 * SLOT_RESIDENT ("implicit anon").  An anon object is made only when a page
 * must be shared (amap_copy) or gets a backing copy (swap slot).  So a
 * resident page costs one 8-byte slot, a shared or swapped one 8 + 16.
 *
 *	slot value		meaning
 *	SLOT_EMPTY (0)		never touched, or freed: fill from the lower layer
 *	SLOT_BUSY		a fault handler is resolving it right now
 *	SLOT_RESIDENT		in the application's page table, private
 *	struct anon *		(16-byte aligned) state in an_flags
 *
 * Locks protecting struct members in this file:
 *	I  immutable after creation   a  atomic   l  am_lock of the amap
 *	s  fields of a shared anon (an_ref > 1) are read-only; amap_cow()
 *	   replaces a shared anon, it never changes one in place.
 *
 * A word on transit.  I/O runs with no map lock held (UVM's unlock and
 * relock): whoever puts anons in transit (a pagein in fault.c, a pageout
 * run in pdaemon.c) holds the amap (amap_hold) and each anon (an_ref + 1)
 * first.  An munmap or MADV_DONTNEED meanwhile empties the slots as
 * always; the anons survive through the owner's reference (UVM's
 * PG_RELEASED), so when the I/O is done the owner finds, under the amap
 * lock, which of its anons are still in their slots (an anon's address
 * cannot be reused while it is held, so a slot that holds it is the same
 * page) and ends the transit of those; its anon_unref() of the others is
 * their last and frees them with their swap slots.  Then it drops the
 * amap.  While in transit, an_ref counts the owner's hold: everyone else
 * tests ANON_TRANSIT before an_ref, and the owner drops the hold of an
 * anon still in its slot under the amap lock, with the transit, so that
 * no one sees a private anon as shared (a WP fault would not make it
 * dirty).
 *
 * Invariants (amap_check()):
 *	am_nused == number of slots that are not SLOT_EMPTY <= am_nslot
 *	every anon in a slot has an_ref >= 1
 *	SLOT_BUSY only while the claiming fault handler holds the map read
 *	lock (so with the map write-locked there is none)
 */
#ifndef UPVM_AMAP_H
#define UPVM_AMAP_H

#include <stdatomic.h>
#include <stdint.h>

#include "lock.h"
#include "vm.h"

#define SLOT_EMPTY	((uintptr_t)0)
#define SLOT_BUSY	((uintptr_t)1)
#define SLOT_RESIDENT	((uintptr_t)3)
#define SLOT_IS_ANON(s)	((s) > SLOT_RESIDENT)

/*
 * an_flags.  A resident page with ANON_SWAPPED was clean when it was
 * mapped (write-protected): its swap copy was valid.  Under the wp pageout
 * protocol it still is: the first write faults (synchronous WP) and the
 * handler drops the copy before letting it through.  Under the move
 * protocol writes go through at once (WP_ASYNC) and the daemon finds them
 * when it pages the page out (pdaemon.c).  SLOT_RESIDENT pages are dirty
 * and have no copy.
 */
#define ANON_RESIDENT	0x1	/* data in a page table (a mapped page) */
#define ANON_SWAPPED	0x2	/* an_swslot holds a valid copy of the data */
#define ANON_TRANSIT	0x4	/* being paged out or in: its owner ends the
				   transit and wakes the page's waiters */
#define ANON_POISON	0x8	/* the data is lost (I/O error): SIGBUS */
#define ANON_MARK	0x20	/* a walk's visit mark (vmspace.c), clear
				   outside one */
#define ANON_WANTED	0x10	/* in transit, and a fault waits for it: out,
				   the daemon maps it back (move protocol);
				   in, a WP fault on the page mapped
				   before it settled (wp protocol): the
				   pagein wakes it */
#define ANON_OBJ	0x40	/* clean page of a file entry: the entry's
				   object holds its data at the slot's
				   offset (an_swslot 0); never swapped */
#define ANON_STAGED	0x80	/* in transit, lingering clean in the pageout
				   daemon's staging area (its inactive
				   pages, move protocol): a fault moves it
				   back (pd_reactivate) */
/* with ANON_STAGED, the bits above ANON_STAGE_SHIFT: its staging page */
#define ANON_STAGE_SHIFT 8
#define ANON_STAGE_MAX	((1u << (32 - ANON_STAGE_SHIFT)) - 1)
/* a resident page with either flag is clean: it has a valid copy */
#define ANON_CLEAN	(ANON_SWAPPED | ANON_OBJ)

struct anon {
	atomic_uint	an_ref;		/* [a] slots pointing here */
	uint32_t	an_flags;	/* [l,s] ANON_* */
	uint64_t	an_swslot;	/* [l,s] swap slot, 0 if none */
};

/* am_flags */
#define AMAP_OVERLAP	0x1	/* some references overlap (copy / share) */

struct amap {
	struct vm_mutex	  am_lock;
	atomic_int	  am_ref;	/* [a] arefs pointing here */
	int		  am_flags;	/* [l] AMAP_* */
	int		  am_nslot;	/* [I] slots allocated */
	int		  am_nused;	/* [l] slots not SLOT_EMPTY */
	uintptr_t	 *am_slots;	/* [l] am_nslot words (arr_alloc) */
	atomic_ulong	 *am_refbits;	/* [a] a bit per unit (arr_alloc) */
	atomic_ulong	 *am_usedbits;	/* [a] a bit per unit: a slot of it
					   may be in use (set under am_lock
					   as one fills; cleared by
					   amap_unit_forget) */
};

/* am_refbits: one "referenced" bit per AMAP_UNIT slots, for the clock */
#define AMAP_UNIT	64

/* vm_aref: an entry's reference into an amap */
struct vm_aref {
	int		 ar_pageoff;	/* slot of the entry's first page */
	struct amap	*ar_amap;	/* NULL: no anonymous pages yet */
};

/*
 * amap_next_used_unit: the first slot in [slot, end) whose unit may have
 * slots in use (am_usedbits), slot itself if its own unit may, or end:
 * the pageout clock steps over the empty units of a sparse region at 64
 * units a word.  No lock (a unit filled meanwhile is seen next time).
 * amap_unit_forget: clear the unit's bit if all its slots are empty.
 * => amap locked.
 */
int amap_next_used_unit(struct amap *, int slot, int end);
void amap_unit_forget(struct amap *, int slot);

/* amap_init_pools / amap_fini_pools: the anon and amap kmem pools */
void amap_init_pools(void);
void amap_fini_pools(void);

/*
 * amap_create: a new amap of nslot empty slots, am_ref == 1.
 * => returns 0, -EINVAL for nslot <= 0, or -ENOMEM.
 */
int amap_create(int nslot, struct amap **out);

/*
 * amap_ref: one more reference, for [slot, slot + n).  overlap: the new
 * reference covers slots another reference covers (needs-copy sharing);
 * from then on amap_unref() frees slots only with the last reference
 * (UVM without per-page reference counts).
 * => amap unlocked.
 */
void amap_ref(struct amap *, bool overlap);

/*
 * amap_unref: drop a reference that covered [slot, slot + n).  The last
 * reference frees the amap and every anon in it; an earlier one frees the
 * anons of its own range unless AMAP_OVERLAP is set.
 * => amap unlocked; takes and drops am_lock.  Frees happen after the lock
 *    is dropped.
 */
void amap_unref(struct amap *, int slot, int n);

/*
 * amap_hold / amap_drop: a reference that covers no slots, for an owner
 * of anons in transit that runs without the map lock: the amap outlives
 * the unmapping of every entry on it until the drop.  (amap_copy would
 * see the hold as sharing and copy needlessly: it runs only for
 * needs-copy entries, under the map write lock.)
 * anon_hold: one more reference on an anon (see "a word on transit").
 */
void amap_hold(struct amap *);
void amap_drop(struct amap *);
void anon_hold(struct anon *);

/*
 * amap_splitref: an entry is clipped at page offset `offset`: the tail
 * entry's aref `split` references the same amap from the clip point on.
 * => one more reference, disjoint from the original's remaining range.
 */
void amap_splitref(struct vm_aref *orig, struct vm_aref *split, int offset);

/*
 * amap_mergeref: two adjacent entries with contiguous arefs into one amap
 * became one entry: drop the now-redundant reference (never the last).
 */
void amap_mergeref(struct amap *);

/*
 * amap_copy: resolve needs-copy for an entry whose aref covers n slots:
 * if the amap has other references, give the entry a private amap sharing
 * every anon (an_ref++; implicit anons are made real first); with no other
 * reference, nothing changes.
 * => map write-locked by the caller (no SLOT_BUSY anywhere).
 * => returns 0 with *aref updated, or -ENOMEM with nothing changed.
 */
int amap_copy(struct vm_aref *aref, int n);

/*
 * amap_cow: give this amap a private anon in `slot`, whose anon is shared.
 * => amap locked by caller, still locked on return.
 * => returns 0 with *newp = fresh anon (an_ref 1, flags 0) now in the slot
 *    and *oldp = the old anon with one reference transferred to the caller
 *    (copy its data, then anon_unref()); or -ENOMEM, nothing changed;
 *    or -EINVAL if the slot does not hold a shared anon.
 */
int amap_cow(struct amap *, int slot, struct anon **newp, struct anon **oldp);

/* anon_unref: drop one reference; the last frees the anon and its swap
   slot (through the release hook). */
void anon_unref(struct anon *);

/*
 * amap_set_swap_release: the function that frees a swap slot when the last
 * anon holding it goes (set once by upvm_init; NULL: none).
 */
void amap_set_swap_release(void (*release)(uint64_t slot));

/*
 * amap_set_unstage: the function called, amap locked, for an inactive
 * anon (ANON_STAGED) that leaves its slot (munmap, MADV_DONTNEED): its
 * staging page and the daemon's hold on it go at once (NULL: none).
 */
void amap_set_unstage(void (*unstage)(struct anon *));

/*
 * amap_anon: the anon of a resident slot, made real if the slot is an
 * implicit SLOT_RESIDENT.
 * => amap locked by caller.  NULL if the slot is not resident (or ENOMEM).
 */
struct anon *amap_anon(struct amap *, int slot);

/*
 * amap_anon_at: the anon in a slot, or NULL for tags.  => amap locked
 */
struct anon *amap_anon_at(struct amap *, int slot);

/*
 * amap_set_dirty: a resident slot became dirty: its swap copy (if any) is
 * dropped, and a private anon goes back to the implicit SLOT_RESIDENT.
 * => amap locked by caller; the swap slot is released after the caller
 *    drops the lock: returned in *slotp (0: none).
 */
void amap_set_dirty(struct amap *, int slot, uint64_t *slotp);

/* amap_ref_unit / amap_test_clear_unit: the clock's reference bits;
   amap_ref_unit => whether the unit's bit was set already */
bool amap_ref_unit(struct amap *, int slot);
bool amap_test_clear_unit(struct amap *, int slot);

/*
 * amap_claim: claim the run of empty slots around `slot` inside [lo, hi)
 * for resolution, marking them SLOT_BUSY.  The run is contiguous, contains
 * `slot`, and stops at the first non-empty slot on each side.
 * => amap locked by caller; map read-locked (see SLOT_BUSY invariant).
 * => returns the number of slots claimed with *startp set, or 0 if `slot`
 *    itself is not empty (*statep = its value).
 */
int amap_claim(struct amap *, int slot, int lo, int hi, int *startp,
    uintptr_t *statep);

/*
 * amap_claim_swapped: claim for pagein the run of swapped-out anons around
 * `slot` inside [lo, hi) whose swap slots are consecutive (one read), each
 * made ANON_TRANSIT and held (an_ref + 1) in held[] for the claimer, who
 * may then drop the map lock: see "a word on transit" above.
 * => amap locked by caller; map read-locked.
 * => returns the pages claimed, with *startp the first slot and *swslotp
 *    its swap slot; 0 if `slot` is not a swapped-out anon.
 */
int amap_claim_swapped(struct amap *, int slot, int lo, int hi, int *startp,
    uint64_t *swslotp, struct anon **held);

/*
 * amap_claim_object: claim for a read from the entry's object (a file) the
 * run of empty slots around `slot` inside [lo, hi): each gets a new anon,
 * ANON_OBJ | ANON_TRANSIT, held (an_ref 2) in held[] for the claimer, as
 * amap_claim_swapped's.  The read ends each transit: mapped (resident),
 * poisoned, or the slot emptied again (amap_unset).
 * => amap locked by caller; map read-locked.
 * => returns the pages claimed (*startp the first slot); 0 if `slot` is
 *    not empty or no anons could be made (-ENOMEM, nothing claimed).
 */
int amap_claim_object(struct amap *, int slot, int lo, int hi, int *startp,
    struct anon **held);

/*
 * amap_unset: empty a slot that holds an anon; the slot's reference goes
 * to the caller (anon_unref it after dropping the lock).
 * => amap locked by caller.  Returns the anon.
 */
struct anon *amap_unset(struct amap *, int slot);

/*
 * amap_settle: end a claim of [slot, slot + n): each slot becomes `to`
 * (SLOT_RESIDENT when resolved, SLOT_EMPTY when the resolution failed).
 * => amap locked by caller.
 */
void amap_settle(struct amap *, int slot, int n, uintptr_t to);

/*
 * amap_free_range: empty [slot, slot + n) (MADV_DONTNEED semantics), unref'ing
 * anons.  No slot may be SLOT_BUSY (map write-locked by the caller).
 * => amap unlocked; takes am_lock.  Returns the number of resident pages
 *    (SLOT_RESIDENT, or anons with ANON_RESIDENT) among the slots emptied.
 */
int amap_free_range(struct amap *, int slot, int n);

/* amap_resident: resident pages in [slot, slot + n).  => amap unlocked */
int amap_resident(struct amap *, int slot, int n);

/*
 * amap_sample: how many of the slots lo, lo + stride, ... (< hi) are not
 * empty (a density probe for the cluster policy).
 * => amap locked by caller.
 */
int amap_sample(struct amap *, int lo, int hi, int stride);

/* amap_slot: the value of one slot.  => amap locked by caller. */
uintptr_t amap_slot(struct amap *, int slot);

/* amap_check: 0 if the invariants hold, else -EINVAL (logged). */
int amap_check(struct amap *);

/* anon pool statistics, for metadata accounting */
size_t amap_anon_count(void);
/* amap_count: amaps allocated now (tests) */
size_t amap_count(void);
size_t amap_meta_bytes(void);

#endif /* UPVM_AMAP_H */
