/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pdaemon.c: the pageout daemon (mechanism; see pdaemon.h).
 *
 * A word on paging a run out.  The daemon works in phases; it holds the
 * map read lock for all of them but the write, which runs with no lock
 * (UVM's unlock and relock; amap.h, "a word on transit").  Both
 * protocols share the first and the write:
 *
 *  pd_collect: under the amap lock, the resident pages of a victim unit
 *	that no one else owns become anons in transit (ANON_TRANSIT), split
 *	into runs of contiguous pages, each clean (all have swap copies that
 *	were valid when the pages were mapped), dirty, or (move protocol)
 *	rewritten: clean pages that a PAGEMAP_SCAN of the unit shows
 *	written, from the first to the last (pd_rewrite_span).  A rewritten
 *	run whose pages hold consecutive swap slots is written back into
 *	them (pr_ownslot: as the kernel writes a swap-cache page back to its
 *	slot), so the pages keep the slots' order for the next readahead
 *	and no slot is handed out.  The run holds its
 *	amap and each anon.  From here until the finish the daemon owns
 *	them: faults on them wait, the daemon wakes them.
 *  pd_write: each dirty run gets a contiguous run of swap slots (a
 *	rewritten one keeps its own if no fork child shares them:
 *	swap_own_run) and one pager_put (several in flight).  A run of a
 *	local swap file whose slots need no growth of the file starts its
 *	write as soon as it is staged or protected, under the map read lock
 *	(pd_write_early: starting is not waiting); the others start with
 *	the map unlocked.  The daemon waits for all of them with the map
 *	unlocked, then takes the map read lock again.  An
 *	munmap, MAP_FIXED or MADV_DONTNEED meanwhile takes pages out of
 *	their slots: the finish skips those (and its last reference frees
 *	them); an mremap moves a run: the finish finds it elsewhere
 *	(pd_run_here fails) and keeps its pages resident (wp) or pages them
 *	out where they are now (move).  So no munmap waits for a write.
 *
 * The wp protocol (any kernel with uffd-wp):
 *  pd_protect: each run is write-protected (synchronous WP), so that
 *	nothing can change it any more: a writer blocks in a WP fault, which
 *	the handler leaves for the daemon.  A clean run is exactly clean,
 *	since the first write to a clean page faulted and made it dirty.
 *	Dirty runs are written from the application's pages themselves.
 *  pd_finish_wp: under the amap lock, each run that made it is dropped
 *	from the page tables (MADV_DONTNEED; only its pages still in their
 *	slots) and its anons become swapped; a run whose write failed, that
 *	got no swap or that moved, or that a direct read overlapped since
 *	just before pd_protect (dio.h: a pinned page takes the read's data
 *	without a WP fault), stays resident (dirty).
 *	Dropping under the amap lock matters: the WP-fault handler takes the
 *	same lock before it lets a write through, so a page is never dropped
 *	after a write was let through.
 *
 * The move protocol (UFFDIO_MOVE, WP_ASYNC, PAGEMAP_SCAN: Linux 6.8):
 * writes never fault (the kernel clears a page's uffd-wp bit and lets the
 * write through), so the daemon finds them instead.
 *  pd_stage: a clean run that PAGEMAP_SCAN shows written becomes dirty.
 *	Every run is then moved (UFFDIO_MOVE) out of the application's page
 *	tables into the daemon's staging area: the same physical pages, no
 *	copy; from now on an access faults and waits.  A write can land
 *	between the scan and the move, and the move does not carry the
 *	uffd-wp bit that would show it, so a clean run's staged pages are
 *	then compared with the page_hash() their pager keeps (swap slot or
 *	file page): a page that differs makes the run dirty
 *	(clean_changed).  Dirty runs are written from the staging area.
 *	Pages are not hashed when they are read (that would cost the
 *	faulting thread, for pages that may be written, unmapped or read
 *	again before they go): pd_hash_unknown hashes in place the pages of
 *	a clean run that a first scan found unwritten and whose pager keeps
 *	no hash, and a second scan follows.  If it shows no write since the
 *	page was protected clean, what was hashed is what the store holds;
 *	if it shows one, the run is dirty and the hash unused (the write
 *	that follows forgets it).  The first scan spares the hashing of
 *	runs already written (a stream of writes: every one).
 *  pd_finish_move: under the amap lock, pages of a run that made it become
 *	swapped, except those a fault is waiting for (ANON_WANTED): they are
 *	moved back (no I/O, no copy: reactivated) and write-protected, clean.
 *	A run whose write failed is moved back whole, dirty.  Then the
 *	staging area is emptied.
 * Either way the waiters are woken at the end: they find their page
 * mapped again, or fault again and page it in.  (Under the move protocol
 * only runs a fault said it waits for, ANON_WANTED; pd_stage moves the
 * runs side by side in one amap with one UFFDIO_MOVE.)
 *
 * Inactive pages (move protocol; pdaemon.h).  The staging area is a ring
 * of pdd_nstage pages, [pdd_tail, pdd_head) in use, one pd_linger record
 * per page.  pd_stage takes each run's pages at the head; pd_finish_move
 * leaves the pages of runs that made it there as inactive (pd_linger:
 * the anon stays in transit and held, ANON_STAGED with its ring index, a
 * record holds the amap) while the daemon has fewer than
 * pdd_inactive_max; the others leave as before.  pd_inactive_release lets
 * the oldest records go from the tail: a page still inactive becomes
 * swapped, one that left its slot (unmapped) goes with the record's
 * hold, one a fault took back (pd_reactivate clears pl_anon) is not the
 * record's any more.  A record's pl_anon is read and cleared under its
 * amap's lock; the rest of the ring is the daemon's.  The staging area
 * holds the readahead probes' pages too, after the ring (pdlinger.h,
 * pdprobe.c): a fault or an unmap treats them as it treats the ring's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "amap.h"
#include "kmem.h"
#include "log.h"
#include "place.h"
#include "pdaemon.h"
#include "pdlinger.h"
#include "swap.h"
#include "sys.h"
#include "vmspace.h"

#define PD_BATCH_PAGES	2048	/* pages paged out per batch, at most */
#define PD_BATCH_READS	256	/* ... while pageins are going on: a read
				   queued behind a batch waits for it */
#define PD_MAX_RUNS	64	/* runs per batch (= I/Os in flight) */
#define PD_WRITE_GROUP	64	/* pages of writes handed to the disk at
				   once while a batch is staged */
#define PD_STALL_MS	1000	/* a throttled fault waits this long for the
				   daemon to take a page out, then goes on */
#define PD_BOUNCE_LEN	ptoa((size_t)AMAP_UNIT)	/* a run, at most */

/* pd_wired: resident pages of mlock()ed entries (outside the budget) */
static long
pd_wired(struct vmspace *vs)
{
	return atomic_load_explicit(&vs->vs_wired, memory_order_relaxed) +
	    atomic_load_explicit(&vs->vs_wired_onfault, memory_order_relaxed);
}

/* pd_counted: resident pages the budget counts (mlock()ed ones do not) */
static long
pd_counted(struct vmspace *vs)
{
	return atomic_load_explicit(&vs->vs_resident, memory_order_relaxed) -
	    pd_wired(vs);
}

/*
 * pd_count_onfault: count the resident pages of MLOCK_ONFAULT entries
 * (vs_wired_onfault), which faults add to one by one.  Done by the daemon
 * before each look at the budget, only once such an entry was made.
 * => no locks held; takes the map read lock.
 */
static void
pd_count_onfault(struct vmspace *vs)
{
	struct vm_map_entry *e;
	long n = 0;

	vm_rwlock_rdlock(&vs->vs_map.m_lock);
	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL;
	    e = vm_map_next(&vs->vs_map, e))
		if (e->e_wired == VM_WIRED_ONFAULT &&
		    e->e_aref.ar_amap != NULL)
			n += amap_resident(e->e_aref.ar_amap,
			    e->e_aref.ar_pageoff, (int)vm_entry_npages(e));
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	atomic_store(&vs->vs_wired_onfault, n);
}

/* pd_deadline: *ts = CLOCK_REALTIME now + ms (pthread's timed waits) */
static void
pd_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += ms % 1000 * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

struct pd_run {
	struct amap	*pr_amap;
	vaddr_t		 pr_va;
	int		 pr_slot;	/* first amap slot */
	int		 pr_n;
	bool		 pr_clean;
	bool		 pr_rewrite;	/* was clean, found written: the
					   anons' old slots are stale */
	int		 pr_stage;	/* move: first staging page, or -1 */
	uint64_t	 pr_swslot;	/* dirty: the run's new slots; 0: none */
	uint64_t	 pr_ownslot;	/* rewrite in place: the anons' own
					   slots (consecutive), written again
					   (pd_write_run checks they are the
					   anons' alone); 0: new slots */
	struct pager	*pr_obj;	/* the entry's object (a file) or NULL,
					   referenced until pd_release: the
					   entry may go while the run's write
					   is in flight (no map lock) */
	voff_t		 pr_objoff;	/*   offset of pr_va in it */
	bool		 pr_objclean;	/* clean: the copies are pr_obj's */
	bool		 pr_shared;	/* dirty: written to pr_obj, not swap
					   (a shared file mapping) */
	bool		 pr_rdonly;	/* the entry is not writable (mprotect
					   holds off while the map is locked):
					   a move it refuses drops in place
					   (clean) or copies out (dirty) */
	bool		 pr_noread;	/* nor readable: wp writes it from
					   pdd_bounce (pd_read_forced) */
	bool		 pr_bounced;	/* pdd_bounce holds its data */
	bool		 pr_dropped;	/* clean and not writable: dropped in
					   place by pd_stage (no staging copy),
					   out of the page tables for good */
	int		 pr_error;
	bool		 pr_sent;	/* its write was started (or refused
					   its slots: pd_write_run) */
	bool		 pr_here;	/* at pr_va still (pd_run_here) */
	struct pager_req pr_req;	/* the write */
	struct anon	*pr_anons[AMAP_UNIT];	/* held (pd_collect) */
};

struct pd_batch {
	struct pd_run	 pb_runs[PD_MAX_RUNS];
	int		 pb_nruns;
	long		 pb_pages;
	uint64_t	 pb_dio;	/* wp: dio_now() before pd_protect */
	bool		 pb_shared;	/* its runs write back to files */
};

/*
 * pd_to_obj: the run's data is in (clean) or goes to (dirty) its entry's
 * object, not swap: after it made it, its slots empty (the file has the
 * pages) rather than hold swapped anons.
 */
static bool
pd_to_obj(const struct pd_run *r)
{
	return r->pr_clean ? r->pr_objclean : r->pr_shared;
}

/* pd_slot: the swap slot run r's dirty page k is written to */
static uint64_t
pd_slot(const struct pd_run *r, int k)
{
	return (r->pr_ownslot != 0 ? r->pr_ownslot : r->pr_swslot) +
	    (uint64_t)k;
}

/*
 * pd_copy: where the valid copy of run r's page k (anon an) is: its
 * file at the page's offset (ANON_OBJ), else its swap slot.  => the pager,
 * the offset in *offp.  => amap locked.
 */
static struct pager *
pd_copy(struct pdaemon *pd, const struct pd_run *r, int k,
    const struct anon *an, voff_t *offp)
{
	if (an->an_flags & ANON_OBJ) {
		*offp = r->pr_objoff + ptoa((voff_t)k);
		return r->pr_obj;
	}
	*offp = ptoa(an->an_swslot);
	return &pd->pdd_swap->sw_pager;
}

/*
 * Units for the clock: a unit is named by the page number of its first
 * page inside an entry (units are aligned in amap slot space, so a unit
 * never spans two amaps and pages of one unit share a reference bit).
 */
vaddr_t
pd_unit_end(struct vm_map_entry *e, vaddr_t va)
{
	int slot = vm_entry_slot(e, va);
	int next = (slot / AMAP_UNIT + 1) * AMAP_UNIT;

	return MIN(e->e_end, va + ptoa((vaddr_t)(next - slot)));
}

/*
 * pu_skip: move va (in e) on to the first unit of e that may hold pages
 * (amap_next_used_unit): a sparse region's empty units cost the clock a
 * bit each, not a visit.  => false: none left in e.
 */
static bool
pu_skip(struct vm_map_entry *e, vaddr_t *vap)
{
	struct amap *am = e->e_aref.ar_amap;
	int slot, end;

	if (am == NULL)
		return false;
	slot = vm_entry_slot(e, *vap);
	end = vm_entry_slot(e, e->e_end);
	if ((slot = amap_next_used_unit(am, slot, end)) >= end)
		return false;
	*vap = e->e_start + ptoa((vaddr_t)(slot - e->e_aref.ar_pageoff));
	return true;
}

static bool
pu_next(void *arg, uint64_t unit, uint64_t *nextp)
{
	struct vm_map *map = arg;
	struct vm_map_entry *e;
	vaddr_t va = unit == UINT64_MAX ? 0 : ptoa((vaddr_t)unit);
	bool wrapped = false;

	if ((e = vm_map_lookup(map, va)) != NULL &&
	    pd_unit_end(e, va) < e->e_end)
		va = pd_unit_end(e, va);
	else if ((e = vm_map_first_ge(map, e != NULL ? e->e_end : va)) !=
	    NULL)
		va = MAX(e->e_start, unit == UINT64_MAX ? 0 : va);
	else if ((e = vm_map_first_ge(map, 0)) != NULL)
		va = e->e_start, wrapped = true;
	else
		return false;
	/* on to a unit that may hold pages; once round the map at most */
	while (!pu_skip(e, &va)) {
		if ((e = vm_map_next(map, e)) == NULL) {
			if (wrapped)
				return false;
			wrapped = true;
			e = vm_map_first_ge(map, 0);
		}
		va = e->e_start;
	}
	*nextp = atop(va);
	return true;
}

static bool
pu_referenced(void *arg, uint64_t unit)
{
	struct vm_map_entry *e = vm_map_lookup(arg, ptoa((vaddr_t)unit));

	return e != NULL && e->e_aref.ar_amap != NULL &&
	    amap_test_clear_unit(e->e_aref.ar_amap,
	    vm_entry_slot(e, ptoa((vaddr_t)unit)));
}

bool
pd_slot_evictable(struct amap *am, int slot)
{
	uintptr_t s = amap_slot(am, slot);
	struct anon *an;

	if (s == SLOT_RESIDENT)
		return true;
	if ((an = amap_anon_at(am, slot)) == NULL)
		return false;
	return (an->an_flags & (ANON_RESIDENT | ANON_TRANSIT |
	    ANON_POISON)) == ANON_RESIDENT && atomic_load(&an->an_ref) == 1;
}

static long
pu_evictable(void *arg, uint64_t unit)
{
	vaddr_t va = ptoa((vaddr_t)unit), end;
	struct vm_map_entry *e = vm_map_lookup(arg, va);
	struct amap *am;
	long n = 0;

	if (e == NULL || (am = e->e_aref.ar_amap) == NULL || e->e_wired)
		return 0;
	end = pd_unit_end(e, va);
	vm_mutex_lock(&am->am_lock);
	for (int s = vm_entry_slot(e, va); s < vm_entry_slot(e, end); s++)
		n += pd_slot_evictable(am, s);
	if (n == 0)
		amap_unit_forget(am, vm_entry_slot(e, va));
	vm_mutex_unlock(&am->am_lock);
	return n;
}

const struct pdpol_unit_ops pd_unit_ops = {
	.pu_next = pu_next,
	.pu_referenced = pu_referenced,
	.pu_evictable = pu_evictable,
};

/*
 * pd_written_mask: the pages of [va, end) (one unit, at most AMAP_UNIT
 * pages) written since they were protected clean, bit k for page k; all
 * of them where that cannot be told (the scan failed, or found more
 * written stretches than it returns).  Move protocol only: under wp a
 * clean page is exactly clean (its first write faulted).
 * => map read-locked (the range is mapped).
 */
static uint64_t
pd_written_mask(struct vmspace *vs, vaddr_t va, vaddr_t end)
{
	struct page_region reg[AMAP_UNIT / 2];
	uint64_t mask = 0;
	vaddr_t walk_end;
	int n;

	n = pmap_scan_written(&vs->vs_pmap, va, end - va, reg,
	    (int)nitems(reg), false, &walk_end);
	if (n < 0)
		return ~(uint64_t)0;
	for (int i = 0; i < n; i++)
		for (vaddr_t p = reg[i].start; p < reg[i].end; p += PAGE_SIZE)
			mask |= (uint64_t)1 << atop(p - va);
	if (n == (int)nitems(reg) && walk_end < end)
		mask |= ~(uint64_t)0 << atop(walk_end - va);
	return mask;
}

/*
 * pd_rewrite_span: of the unit at slot s0 of am (n pages), the clean
 * pages to write: from the first clean page in written to the last.  The
 * unwritten ones between go with them (on this VM a write costs about
 * 60 us of the daemon's CPU, so one write of the span is cheaper than one
 * per written stretch); those before and after still drop clean (sqlite3
 * writes about half of the pages its readahead brings in).
 * => am locked.
 */
static uint64_t
pd_rewrite_span(struct amap *am, int s0, int n, uint64_t written)
{
	uint64_t clean = 0;
	struct anon *an;

	for (int k = 0; written != 0 && k < n; k++)
		if (pd_slot_evictable(am, s0 + k) &&
		    (an = amap_anon(am, s0 + k)) != NULL &&
		    (an->an_flags & ANON_CLEAN))
			clean |= (uint64_t)1 << k;
	if ((written &= clean) == 0)
		return 0;
	return (~(uint64_t)0 >> __builtin_clzll(written)) &
	    (~(uint64_t)0 << __builtin_ctzll(written));
}

/*
 * pd_collect: take the evictable pages of one unit into runs.
 * => map read-locked; takes and drops the amap lock.
 */
static void
pd_collect(struct pdaemon *pd, struct pd_batch *pb, uint64_t unit)
{
	vaddr_t va = ptoa((vaddr_t)unit), end;
	struct vm_map_entry *e = vm_map_lookup(&pd->pdd_vs->vs_map, va);
	struct pd_run *r = NULL;
	struct amap *am;
	struct anon *an;
	bool clean, objclean, rewrite, shared;
	uint64_t written, own;

	if (e == NULL || (am = e->e_aref.ar_amap) == NULL || e->e_wired)
		return;
	/*
	 * One kind a batch: swap runs, or write-back to shared files.  A
	 * program's write(2) to a mapped file holds the file's inode lock
	 * while it copies from its buffer; if that buffer's page were staged
	 * in a batch that also writes back to the file, the copy would wait
	 * for the batch and the batch's write for the lock (sqlite3 under
	 * --files hung so in CI).  Alone, a write-back batch has no page of
	 * the program's buffers in transit, and a swap batch needs no lock.
	 */
	shared = e->e_obj != NULL && !(e->e_etype & VM_ET_COPYONWRITE);
	if (pb->pb_nruns > 0 && pb->pb_shared != shared)
		return;
	pb->pb_shared = shared;
	end = pd_unit_end(e, va);
	written = pd->pdd_move ? pd_written_mask(pd->pdd_vs, va, end) : 0;
	vm_mutex_lock(&am->am_lock);
	written = pd_rewrite_span(am, vm_entry_slot(e, va),
	    vm_entry_slot(e, end) - vm_entry_slot(e, va), written);
	for (int s = vm_entry_slot(e, va); s < vm_entry_slot(e, end); s++) {
		if (!pd_slot_evictable(am, s) ||
		    (an = amap_anon(am, s)) == NULL) {
			r = NULL;
			continue;
		}
		clean = (an->an_flags & ANON_CLEAN) != 0;
		rewrite = clean && (written >> (s - vm_entry_slot(e, va)) & 1);
		clean = clean && !rewrite;
		objclean = (an->an_flags & ANON_OBJ) != 0;
		own = rewrite && !shared && !objclean ? an->an_swslot : 0;
		if (r == NULL || r->pr_clean != clean ||
		    r->pr_rewrite != rewrite ||
		    r->pr_objclean != objclean || r->pr_slot + r->pr_n != s ||
		    (r->pr_ownslot != 0) != (own != 0) ||
		    (own != 0 && r->pr_ownslot + (uint64_t)r->pr_n != own)) {
			if (pb->pb_nruns == PD_MAX_RUNS)
				break;
			r = &pb->pb_runs[pb->pb_nruns++];
			*r = (struct pd_run){ .pr_amap = am, .pr_slot = s,
			    .pr_va = e->e_start +
			    ptoa((vaddr_t)(s - e->e_aref.ar_pageoff)),
			    .pr_clean = clean, .pr_rewrite = rewrite,
			    .pr_ownslot = own, .pr_stage = -1,
			    .pr_obj = e->e_obj, .pr_objclean = objclean,
			    .pr_shared = shared,
			    .pr_rdonly = !(e->e_prot & VM_PROT_WRITE),
			    .pr_noread = !(e->e_prot & VM_PROT_READ) };
			if (e->e_obj != NULL) {
				r->pr_objoff = vm_entry_objoff(e, r->pr_va);
				pager_ref(e->e_obj);
			}
			amap_hold(am);
		}
		an->an_flags |= ANON_TRANSIT;
		anon_hold(an);
		r->pr_anons[r->pr_n++] = an;
		pb->pb_pages++;
	}
	vm_mutex_unlock(&am->am_lock);
}

/*
 * pd_set_stuck: swap is full (the cap or the disk): pages stay resident
 * past the budget and faults stop waiting for the daemon, until a later
 * allocation succeeds.  The log says so once.
 */
static void
pd_set_stuck(struct pdaemon *pd, int error)
{
	atomic_store(&pd->pdd_stuck, true);
	if (!atomic_exchange(&pd->pdd_said_full, true))
		upvm_log(LOG_WARN, "paging out failed: %s (swap %s); pages "
		    "stay resident past the budget, no data is dropped; free "
		    "disk space or raise UPVM_SWAP_MAX", strerror(-error),
		    pd->pdd_swap->sw_where);
	STAT_INC(&pd->pdd_vs->vs_stats, st_swap_full);
}

/* pd_io_error: a write to swap or a file failed: the run stays resident */
static void
pd_io_error(struct pdaemon *pd, struct pd_run *r, int error)
{
	STAT_INC(&pd->pdd_vs->vs_stats, st_io_errors);
	if (pd_to_obj(r))
		upvm_log(LOG_ERR, "writing %d pages back to their file "
		    "failed: %s; they stay resident and dirty, written again "
		    "later", r->pr_n, strerror(-error));
	else
		upvm_log(LOG_ERR, "writing %d pages to swap (%s) failed: %s; "
		    "they stay resident", r->pr_n, pd->pdd_swap->sw_where,
		    strerror(-error));
}

/* pd_write_done: pr_done of a run's write */
static void
pd_write_done(struct pager_req *req)
{
	struct pd_run *r = container_of(req, struct pd_run, pr_req);
	struct pdaemon *pd = req->pr_arg;

	atomic_fetch_sub(&pd->pdd_vs->vs_writes_inflight, 1);
	/* -EFAULT: the wp protocol writes from the application's pages, and
	   they were unmapped meanwhile: no I/O error, the finish frees them */
	if ((r->pr_error = req->pr_error) != 0 && r->pr_error != -EFAULT)
		pd_io_error(pd, r, r->pr_error);
}

/* pd_src: where a run's data is read from for its write */
static const char *
pd_src(struct pdaemon *pd, struct pd_run *r)
{
	if (r->pr_bounced)
		return pd->pdd_bounce;
	return r->pr_stage >= 0 ? pd_stage_page(pd, r->pr_stage) :
	    (const char *)r->pr_va;
}

/*
 * pd_read_forced: read run r into pdd_bounce through /proc/self/mem,
 * which reads pages the program itself may not (PROT_NONE).
 * => map read-locked: the run's pages are present, their protection
 *    cannot change.  0 or -errno.
 */
static int
pd_read_forced(struct pdaemon *pd, struct pd_run *r)
{
	size_t len = ptoa((size_t)r->pr_n);
	ssize_t got;
	int fd, error;

	if ((fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	got = sys_pread(fd, pd->pdd_bounce, len, (off_t)r->pr_va);
	error = got < 0 ? -errno : (size_t)got < len ? -EIO : 0;
	close(fd);
	return error;
}

/* pd_write_error: the outcome of starting r's write (0: started) */
static void
pd_write_error(struct pd_run *r, int error)
{
	if ((r->pr_error = error) != 0)
		upvm_log(LOG_DEBUG, "pageout run %#lx+%d: %s",
		    (unsigned long)r->pr_va, r->pr_n, strerror(-error));
}

/*
 * pd_take_slots: the swap slots dirty run r is written to: its own, if no
 * fork child shares them (swap_own_run), else new ones (swap_alloc; with
 * !grow swap_alloc_now, which never grows the file).  A write-back to
 * the run's file needs none.  => 0 or swap_alloc's -errno.
 */
static int
pd_take_slots(struct pdaemon *pd, struct pd_run *r, bool grow)
{
	struct swap *sw = pd->pdd_swap;

	if (r->pr_ownslot != 0 && !swap_own_run(sw, r->pr_ownslot, r->pr_n))
		r->pr_ownslot = 0;	/* shared with a fork child */
	if (r->pr_shared || r->pr_ownslot != 0)
		return 0;
	return grow ? swap_alloc(sw, r->pr_n, &r->pr_swslot) :
	    swap_alloc_now(sw, r->pr_n, &r->pr_swslot);
}

/*
 * pd_write_hold / pd_write_group / pd_write_go: a batch's writes go to
 * the disk PD_WRITE_GROUP pages at a time.  Each hand-over is an
 * io_uring_enter and a virtio doorbell, a VM exit that was 40 % of the
 * daemon's CPU when each run's write went alone (sqlite3: a write of 11
 * pages on average); a group still starts while the batch's later runs
 * are staged, so the disk is not left idle until the batch ends.
 */
static void
pd_write_hold(struct pdaemon *pd)
{
	pager_queue_plug(pd->pdd_q, true);
	pd->pdd_held = 0;
}

static void
pd_write_go(struct pdaemon *pd)
{
	pager_queue_plug(pd->pdd_q, false);
	pd->pdd_held = 0;
}

/* pd_write_group: n more pages of writes held; a group's worth goes */
static void
pd_write_group(struct pdaemon *pd, int n)
{
	if (!pd->pdd_q->pq_plugged)
		return;
	pd->pdd_held += n;
	if (pd->pdd_held >= PD_WRITE_GROUP) {
		pd_write_go(pd);
		pd_write_hold(pd);
	}
}

/*
 * pd_write_submit: start dirty run r's write to the slots it has (its
 * own, pr_swslot, or its file offset), from pd_src.
 * => the daemon's thread; the run's anons in transit.  Sets pr_error if
 *    the run must stay resident.
 */
static void
pd_write_submit(struct pdaemon *pd, struct pd_run *r)
{
	struct swap *sw = pd->pdd_swap;
	int error;

	r->pr_sent = true;
	if (!r->pr_shared)
		atomic_store(&pd->pdd_stuck, false);
	r->pr_req = (struct pager_req){
	    .pr_off = r->pr_shared ? r->pr_objoff : ptoa(pd_slot(r, 0)),
	    .pr_npages = r->pr_n,
	    .pr_buf = (void *)(uintptr_t)pd_src(pd, r),
	    .pr_done = pd_write_done, .pr_arg = pd };
	error = pager_put(r->pr_shared ? r->pr_obj : &sw->sw_pager, pd->pdd_q,
	    &r->pr_req);
	if (error == -EINPROGRESS) {
		atomic_fetch_add(&pd->pdd_vs->vs_writes_inflight, 1);
		pd_write_group(pd, r->pr_n);
		error = 0;
	} else if (error != 0) {
		pd_io_error(pd, r, error);
	}
	pd_write_error(r, error);
}

/*
 * pd_write_run: give dirty run r swap slots (growing the swap file if it
 * must) or its file offset, and start its write.
 * => the daemon's thread, the map unlocked; the run's anons in transit.
 *    Sets pr_error if the run must stay resident.
 */
static void
pd_write_run(struct pdaemon *pd, struct pd_run *r)
{
	int error;

	if ((error = pd_take_slots(pd, r, true)) != 0) {
		pd_set_stuck(pd, error);
		r->pr_sent = true;
		pd_write_error(r, error);
		return;
	}
	pd_write_submit(pd, r);
}

/*
 * pd_write_early: a dirty run just staged (move) or write-protected (wp)
 * starts its write now, under the map read lock that pd_stage and
 * pd_protect hold, if nothing on the way can wait on I/O: a swap batch
 * (a file's write-back may take the file's inode lock: the vnode pager
 * writes a partial last page with a buffered pwrite), a local swap file
 * neither sealed (encryption's CPU) nor remote (whose writes may fall
 * back to the network in the caller's thread), and slots that need no
 * growth of the file (swap_alloc_now: fallocate waits on the journal).
 * The disk then writes the batch's first runs while the daemon moves out
 * the others.  Any other run starts in pd_write, the map unlocked.
 */
static void
pd_write_early(struct pdaemon *pd, const struct pd_batch *pb,
    struct pd_run *r)
{
	struct swap *sw = pd->pdd_swap;

	if (pb->pb_shared || sw->sw_seal != NULL || sw->sw_remote != NULL)
		return;
	if (pd_take_slots(pd, r, false) != 0)
		return;		/* pd_write_run allocates, or says why not */
	pd_write_submit(pd, r);
}

/*
 * pd_protect: write-protect every run (wp protocol); a dirty run of a
 * PROT_NONE mapping, which the write cannot read, is read into the bounce
 * pages now, while the map lock holds its protection.
 * => map read-locked.  Sets pr_error for runs that must stay resident.
 */
static void
pd_protect(struct pdaemon *pd, struct pd_batch *pb)
{
	bool bounce_free = true;

	for (int i = 0; i < pb->pb_nruns; i++) {
		struct pd_run *r = &pb->pb_runs[i];

		r->pr_error = pmap_writeprotect(&pd->pdd_vs->vs_pmap,
		    r->pr_va, ptoa((vsize_t)r->pr_n), true, true);
		if (r->pr_error != 0 || r->pr_clean)
			continue;
		/* the write cannot read a PROT_NONE page: one such run a
		   batch goes through the bounce pages, the others wait */
		if (r->pr_noread && !bounce_free) {
			r->pr_error = -EAGAIN;
			continue;
		}
		if (r->pr_noread) {
			if ((r->pr_error = pd_read_forced(pd, r)) != 0)
				continue;
			bounce_free = false;
			r->pr_bounced = true;
			STAT_ADD(&pd->pdd_vs->vs_stats, st_copied_out,
			    (uint64_t)r->pr_n);
		}
		pd_write_early(pd, pb, r);
	}
}

/*
 * pd_write: start the write of each dirty run still going that
 * pd_write_early has not started; wait for all writes.
 * => no map lock: the runs' anons are in transit, their amaps and files
 *    referenced (pdd_writing is set: msync and unmap wait for us).  Sets
 *    pr_error for runs that must stay resident.
 */
static void
pd_write(struct pdaemon *pd, struct pd_batch *pb)
{
	int error;

	pd_write_hold(pd);
	for (int i = 0; i < pb->pb_nruns; i++) {
		struct pd_run *r = &pb->pb_runs[i];

		if (r->pr_error == 0 && !r->pr_clean && !r->pr_sent)
			pd_write_run(pd, r);
	}
	pd_write_go(pd);
	/* every write is waited for, whatever the reaping says: the runs'
	   requests live in pb and are reused by the next batch */
	while (pd->pdd_q->pq_inflight > 0)
		if ((error = pager_complete(pd->pdd_q, PD_MAX_RUNS, true)) < 0 &&
		    error != -EINTR) {
			upvm_log(LOG_WARN, "pageout: reaping writes failed: %s; "
			    "retried", strerror(-error));
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 },
			    NULL);
		}
}

/*
 * pd_unstage_at: move n staged pages at src back into place at va (no
 * copy), write-protected if clean; a page the move refuses is copied
 * back instead.  pd_unstage: the same for n pages of run r from page k.
 * => map read-locked, the run's amap locked (its faults wait for us).
 */
static void
pd_unstage_at(struct pdaemon *pd, vaddr_t va, const char *src, int n,
    bool clean)
{
	struct pmap *pm = &pd->pdd_vs->vs_pmap;
	vsize_t len = ptoa((vsize_t)n), done = 0, copied = 0;
	void (*hook)(void *, int);
	int error;

	error = pmap_move(pm, va, (vaddr_t)src, len, PMAP_DONTWAKE, &done);
	if (clean && done > 0 && (hook = atomic_load_explicit(
	    &pd->pdd_unstage_hook, memory_order_relaxed)) != NULL)
		hook((void *)va, (int)atop(done));
	/* no copy from a hole: the staging area is registered, and a copy
	   from it would fault to the uffd this thread may be the one to
	   serve (a fault thread hung so once, in UFFDIO_COPY, not
	   understood); the page then faults until fault_woken poisons it */
	if (error == -ENOENT)
		upvm_log(LOG_ERR, "pageout: the staging page of %#lx is "
		    "missing: its data is lost (an upvm bug)",
		    (unsigned long)(va + done));
	else if (error != 0 && (error = pmap_copy(pm, va + done, src + done,
	    len - done, PMAP_DONTWAKE | (clean ? PMAP_WP : 0), &copied)) != 0)
		upvm_log(LOG_ERR, "pageout: putting %zu pages back at %#lx "
		    "failed: %s; their data is lost%s", (size_t)atop(len - done -
		    copied), (unsigned long)(va + done + copied),
		    strerror(-error), error == -EEXIST ? " (a page is there "
		    "already: an upvm bug)" : "");
	/* the move drops the uffd-wp bit; a write before this is caught by
	   the check of the next pageout */
	if (clean && done > 0)
		(void)pmap_writeprotect(pm, va, done, true, true);
}

static void
pd_unstage(struct pdaemon *pd, struct pd_run *r, int k, int n, bool clean)
{
	pd_unstage_at(pd, r->pr_va + ptoa((vaddr_t)k), pd_src(pd, r) +
	    ptoa((size_t)k), n, clean);
}

/*
 * pd_move_out: move the len bytes of run pages at va to dst.  A page
 * still shared copy-on-write with another process (after fork) refuses
 * the move (-EBUSY): the daemon breaks the sharing with an atomic add of
 * zero to one of its words, which changes nothing a concurrent writer
 * could see, and moves on; a page that still refuses (pinned for I/O)
 * ends the move.
 * => map read-locked; the pages are present (the move stopped at a page
 *    it found, so touching that page cannot fault to us).
 */
static int
pd_move_out(struct pdaemon *pd, vaddr_t va, vsize_t len, char *dst,
    vsize_t *donep)
{
	struct pmap *pm = &pd->pdd_vs->vs_pmap;
	vsize_t done, more;
	vaddr_t busy = 0;
	int error;

	error = pmap_move(pm, (vaddr_t)dst, va, len, PMAP_DONTWAKE, &done);
	while (error == -EBUSY && va + done != busy) {
		busy = va + done;
		(void)__atomic_fetch_add((uint64_t *)busy, 0,
		    __ATOMIC_RELAXED);
		error = pmap_move(pm, (vaddr_t)dst + done, busy, len - done,
		    PMAP_DONTWAKE, &more);
		done += more;
	}
	*donep = done;
	return error;
}

/*
 * pd_move_check: a move of run r to dst failed (error) with `done` bytes
 * moved; the pages after those must still be in place.  One that is not
 * (the kernel moved it without saying so) but is in the staging page it
 * was going to is put back; one that is in neither is lost, and said so.
 * A kernel that cannot say (no pagemap) is trusted.  Linux 6.18.44 did
 * this about once in 500 runs of budget churn under upvmd
 * (test/daemon/churn.sh): UFFDIO_MOVE of a 64-page run answered -EEXIST
 * with nothing moved, and all 64 pages were in staging.  pmap_move now
 * counts such pages itself (move_recount in pmap.c), so what is left for
 * this check is a page found in neither place.
 * => map read-locked, the run's amap locked.
 */
static void
pd_move_check(struct pdaemon *pd, struct pd_run *r, char *dst, vsize_t done,
    int error)
{
	struct pmap *pm = &pd->pdd_vs->vs_pmap;
	int k0 = (int)atop(done), n = r->pr_n - k0, back = 0, lost = 0;
	uint64_t here, staged;

	if (n <= 0 || pmap_present_mask(pm, r->pr_va + done, n, &here) != 0 ||
	    here == (n == 64 ? ~0ull : (1ull << n) - 1) ||
	    pmap_present_mask(pm, (vaddr_t)dst + done, n, &staged) != 0)
		return;
	for (int k = 0; k < n; k++) {
		if ((here >> k) & 1)
			continue;
		if ((staged >> k) & 1) {
			pd_unstage_at(pd, r->pr_va + done + ptoa((vaddr_t)k),
			    dst + done + ptoa((size_t)k), 1, r->pr_clean);
			back++;
		} else {
			lost++;
		}
	}
	upvm_log(lost > 0 ? LOG_ERR : LOG_WARN, "pageout: moving %#lx+%d "
	    "failed (%s) after %d pages, but %d more left: %d put back, %d "
	    "lost", (unsigned long)r->pr_va, r->pr_n, strerror(-error), k0,
	    back + lost, back, lost);
}

void
pd_stage_drop_at(char *at, vsize_t len)
{
	(void)raw_madvise(at, len, MADV_DONTNEED);
}

char *
pd_stage_page(struct pdaemon *pd, long at)
{
	return pd->pdd_stage + ptoa((size_t)at);
}

/*
 * pd_copy_out: stage run r of a mapping that cannot be written (read-only
 * or PROT_NONE) by copy: read it (pd_read_forced), copy it into the
 * staging pages at dst with UFFDIO_COPY (they are registered and absent),
 * then drop the run's pages.
 * => map read-locked; the mapping's protection cannot change (mprotect
 *    takes the write lock), so nothing writes the run meanwhile.
 *    0, or -errno with the run in place.
 */
static int
pd_copy_out(struct pdaemon *pd, struct pd_run *r, char *dst)
{
	struct pmap *pm = &pd->pdd_vs->vs_pmap;
	vsize_t len = ptoa((vsize_t)r->pr_n), done = 0;
	int error;

	if ((error = pd_read_forced(pd, r)) != 0)
		return error;
	if ((error = pmap_copy(pm, (vaddr_t)dst, pd->pdd_bounce, len,
	    PMAP_DONTWAKE, &done)) == 0 &&
	    (error = pmap_dontneed(pm, r->pr_va, len)) != 0)
		done = len;
	if (error != 0) {
		/* the run stays; what was staged goes */
		if (done > 0)
			pd_stage_drop_at(dst, done);
		return error;
	}
	STAT_ADD(&pd->pdd_vs->vs_stats, st_copied_out, (uint64_t)r->pr_n);
	return 0;
}

/*
 * pd_stage_alloc: n contiguous staging pages at the ring's head (past the
 * end of the ring if they do not fit before it).  => the index of the
 * first, or -1: no room (pd_batch made room for a batch first, so a run
 * that does not fit waits for the next batch).
 */
static int
pd_stage_alloc(struct pdaemon *pd, int n)
{
	uint64_t pos = pd->pdd_head, size = (uint64_t)pd->pdd_nstage;
	uint64_t at = pos % size;

	if (at + (uint64_t)n > size) {
		pos += size - at;
		at = 0;
	}
	if (pos + (uint64_t)n - pd->pdd_tail > size)
		return -1;
	pd->pdd_head = pos + (uint64_t)n;
	return (int)at;
}

/*
 * pd_stage_drop: free the staging pages of ring positions [from, to)
 * (what they hold is not needed any more, or they are empty); an index
 * in the ring is its own position.
 */
static void
pd_stage_drop(struct pdaemon *pd, uint64_t from, uint64_t to)
{
	uint64_t size = (uint64_t)pd->pdd_nstage, at, n;

	while (from < to) {
		at = from % size;
		n = MIN(to - from, size - at);
		pd_stage_drop_at(pd_stage_page(pd, (long)at),
		    ptoa((size_t)n));
		from += n;
	}
}

/*
 * pd_hash_unknown: hash in place the pages of clean run r (writable:
 * others cannot change and drop without a compare) whose pager keeps no
 * hash of them, before pd_stage's second scan (see above).
 * => map read-locked (no unmap, no mprotect: the pages stay mapped and
 *    readable); takes and drops the amap lock.  Whether it hashed any.
 */
static bool
pd_hash_unknown(struct pdaemon *pd, const struct pd_run *r)
{
	struct pager *pgr[AMAP_UNIT];
	voff_t off[AMAP_UNIT];
	bool any = false;

	vm_mutex_lock(&r->pr_amap->am_lock);
	for (int k = 0; k < r->pr_n; k++)
		pgr[k] = pd_copy(pd, r, k, r->pr_anons[k], &off[k]);
	vm_mutex_unlock(&r->pr_amap->am_lock);
	for (int k = 0; k < r->pr_n; k++)
		if (!pager_known(pgr[k], off[k])) {
			pager_remember(pgr[k], off[k], (const void *)(r->pr_va +
			    ptoa((vaddr_t)k)), 1);
			any = true;
		}
	return any;
}

/* pd_written: a page of run r was written since it was protected clean */
static bool
pd_written(struct vmspace *vs, const struct pd_run *r)
{
	struct page_region reg;
	vaddr_t walk_end;

	return pmap_scan_written(&vs->vs_pmap, r->pr_va, ptoa((vsize_t)
	    r->pr_n), &reg, 1, false, &walk_end) != 0;
}

/*
 * pd_stage_prepare: before run r moves, a clean run that PAGEMAP_SCAN
 * shows written becomes a rewrite (pd_hash_unknown first hashes what the
 * pager does not know); the test hook runs.
 * => map read-locked; takes and drops the amap lock.
 */
static void
pd_stage_prepare(struct pdaemon *pd, struct pd_run *r)
{
	struct vmspace *vs = pd->pdd_vs;
	void (*hook)(void *, int);

	if (r->pr_clean && (pd_written(vs, r) || (!r->pr_rdonly &&
	    pd_hash_unknown(pd, r) && pd_written(vs, r))))
		r->pr_clean = false, r->pr_rewrite = true;
	if ((hook = atomic_load_explicit(&pd->pdd_stage_hook,
	    memory_order_relaxed)) != NULL)
		hook((void *)r->pr_va, r->pr_n);
}

/*
 * pd_stage_failed: r's move to staging index at stopped at `done` bytes
 * with r->pr_error (a shared or pinned page): the run stays, the pages
 * moved come back.  => map read-locked; takes and drops the amap lock.
 */
static void
pd_stage_failed(struct pdaemon *pd, struct pd_run *r, int at, vsize_t done)
{
	upvm_log(LOG_DEBUG, "pageout: moving %#lx+%d: %s",
	    (unsigned long)r->pr_va, r->pr_n, strerror(-r->pr_error));
	vm_mutex_lock(&r->pr_amap->am_lock);
	pd_move_check(pd, r, pd_stage_page(pd, at), done, r->pr_error);
	if (done > 0) {
		r->pr_stage = at;
		pd_unstage(pd, r, 0, (int)atop(done), r->pr_clean);
		r->pr_stage = -1;
	}
	vm_mutex_unlock(&r->pr_amap->am_lock);
}

/*
 * pd_stage_staged: r is in staging at index at: a dirty run's write
 * starts; a clean run's pages are compared with what their pager holds
 * (copied into pdd_cmpbuf: pmap_peek), and one that differs makes the
 * run a rewrite.
 * => map read-locked; takes and drops the amap lock.
 */
static void
pd_stage_staged(struct pdaemon *pd, struct pd_batch *pb, struct pd_run *r,
    int at)
{
	const char *src;
	int changed = 0;

	r->pr_stage = at;
	if (!r->pr_clean) {
		pd_write_early(pd, pb, r);
		return;
	}
	src = pmap_peek(&pd->pdd_vs->vs_pmap, pd->pdd_cmpbuf,
	    (vaddr_t)pd_stage_page(pd, at), ptoa((size_t)r->pr_n));
	vm_mutex_lock(&r->pr_amap->am_lock);
	for (int k = 0; k < r->pr_n; k++) {
		struct anon *an = amap_anon_at(r->pr_amap, r->pr_slot + k);
		voff_t off;
		struct pager *pgr = pd_copy(pd, r, k, an, &off);

		changed += !pager_unchanged(pgr, off, src + ptoa((size_t)k));
	}
	vm_mutex_unlock(&r->pr_amap->am_lock);
	if (changed > 0) {
		STAT_ADD(&pd->pdd_vs->vs_stats, st_clean_changed,
		    (uint64_t)changed);
		r->pr_clean = false;
		r->pr_rewrite = true;
		pd_write_early(pd, pb, r);
	}
}

/*
 * pd_stage_run: move run r into the staging area on its own (prepared:
 * pd_stage_prepare has run for it).  Sets pr_error for a run that stays.
 * => map read-locked.
 */
static void
pd_stage_run(struct pdaemon *pd, struct pd_batch *pb, struct pd_run *r,
    bool prepared)
{
	struct vmspace *vs = pd->pdd_vs;
	vsize_t len = ptoa((vsize_t)r->pr_n), done;
	int at;

	if ((at = pd_stage_alloc(pd, r->pr_n)) < 0) {
		r->pr_error = -EAGAIN;	/* the next batch takes it */
		return;
	}
	if (!prepared)
		pd_stage_prepare(pd, r);
	r->pr_error = pd_move_out(pd, r->pr_va, len, pd_stage_page(pd, at),
	    &done);
	if (r->pr_error == -EINVAL && done == 0 && r->pr_rdonly) {
		/* UFFDIO_MOVE refuses a mapping that is not writable; no
		   write can land there while we hold the map lock
		   (hostmm_mprotect): a clean run drops in place, a dirty one
		   is copied out first */
		if (r->pr_clean) {
			r->pr_error = pmap_dontneed(&vs->vs_pmap, r->pr_va,
			    len);
			r->pr_dropped = r->pr_error == 0;
			return;
		}
		r->pr_error = pd_copy_out(pd, r, pd_stage_page(pd, at));
	}
	if (r->pr_error != 0)
		pd_stage_failed(pd, r, at, done);
	else
		pd_stage_staged(pd, pb, r, at);
}

/*
 * pd_group_end: the runs from i on that pd_stage moves with one
 * UFFDIO_MOVE: writable pages side by side in one amap (a unit's clean,
 * rewritten and dirty runs).  A move costs a call and a TLB shootdown on
 * the program's CPUs however many pages it moves (here: 21 us for one
 * page, 32 us for 64 in one call, 59 us for 8), and a unit split into
 * runs by their kind took one each.
 */
static int
pd_group_end(const struct pd_batch *pb, int i)
{
	const struct pd_run *r = &pb->pb_runs[i], *q;
	int j = i + 1, n = r->pr_n;

	if (r->pr_rdonly)
		return j;
	for (; j < pb->pb_nruns; j++, r = q) {
		q = &pb->pb_runs[j];
		if (q->pr_rdonly || q->pr_amap != r->pr_amap ||
		    q->pr_slot != r->pr_slot + r->pr_n ||
		    q->pr_va != r->pr_va + ptoa((vaddr_t)r->pr_n) ||
		    n + q->pr_n > AMAP_UNIT)
			break;
		n += q->pr_n;
	}
	return j;
}

/*
 * pd_stage_group: runs [i, j) (pd_group_end's) moved with one move to
 * contiguous staging pages.  Where the move stops short, the run it
 * stopped in stays (pd_stage_failed) and those after it go on their own.
 * => map read-locked.  false if nothing moved (no room, or the first page
 *    refused): the runs, prepared, are the caller's to move one by one.
 */
static bool
pd_stage_group(struct pdaemon *pd, struct pd_batch *pb, int i, int j)
{
	uint64_t head = pd->pdd_head;
	vsize_t done, off = 0, len;
	int n = 0, at, error;
	struct pd_run *r;

	for (int k = i; k < j; k++) {
		n += pb->pb_runs[k].pr_n;
		pd_stage_prepare(pd, &pb->pb_runs[k]);
	}
	if ((at = pd_stage_alloc(pd, n)) < 0)
		return false;
	error = pd_move_out(pd, pb->pb_runs[i].pr_va, ptoa((vsize_t)n),
	    pd_stage_page(pd, at), &done);
	if (error != 0 && done == 0) {
		pd->pdd_head = head;	/* nothing there: given back */
		return false;
	}
	for (int k = i; k < j; k++, off += len) {
		r = &pb->pb_runs[k];
		len = ptoa((vsize_t)r->pr_n);
		if (off + len <= done) {
			pd_stage_staged(pd, pb, r, at + (int)atop(off));
		} else if (off < done) {
			r->pr_error = error;
			pd_stage_failed(pd, r, at + (int)atop(off), done - off);
		} else {
			pd_stage_run(pd, pb, r, true);
		}
	}
	return true;
}

/*
 * pd_stage: move every run into the staging area, runs side by side with
 * one move (pd_group_end); find the clean runs that were written (move
 * protocol).
 * => map read-locked; takes and drops the amap locks.  Sets pr_error for
 *    runs that must stay resident (not staged), pr_stage for the others.
 */
static void
pd_stage(struct pdaemon *pd, struct pd_batch *pb)
{
	for (int i = 0, j; i < pb->pb_nruns; i = j) {
		j = pd_group_end(pb, i);
		if (j - i > 1 && pd_stage_group(pd, pb, i, j))
			continue;
		for (int k = i; k < j; k++)
			pd_stage_run(pd, pb, &pb->pb_runs[k], j - i > 1);
	}
}

/* pd_count: count a run that made it, `gone` of its pages freed */
static long
pd_count(struct pdaemon *pd, struct pd_run *r, int gone)
{
	struct vm_stats *st = &pd->pdd_vs->vs_stats;

	if (r->pr_clean) {
		STAT_ADD(st, st_clean_drops, (uint64_t)gone);
	} else {
		STAT_ADD(st, st_pageouts, (uint64_t)r->pr_n);
		STAT_INC(st, st_pageout_ios);
		if (r->pr_shared)
			STAT_ADD(st, st_file_writes, (uint64_t)r->pr_n);
		if (r->pr_ownslot != 0)
			STAT_ADD(st, st_rewritten, (uint64_t)r->pr_n);
	}
	return gone;
}

/*
 * pd_run_here: the run is still where pd_collect found it: the entry at
 * pr_va maps pr_amap's slots there (the held amap cannot be reused).  A
 * run whose entry was wired meanwhile gets pr_error -EBUSY, unless it was
 * dropped in place (pr_dropped).
 * => map read-locked.
 */
static bool
pd_run_here(struct pdaemon *pd, struct pd_run *r)
{
	struct vm_map_entry *e = vm_map_lookup(&pd->pdd_vs->vs_map, r->pr_va);

	VM_ASSERT_RLOCKED(&pd->pdd_vs->vs_map.m_lock);
	if (e == NULL || e->e_aref.ar_amap != r->pr_amap ||
	    vm_entry_slot(e, r->pr_va) != r->pr_slot ||
	    r->pr_va + ptoa((vaddr_t)r->pr_n) > e->e_end)
		return false;
	/* mlock()ed while it was written: it stays resident, as a run
	   whose write failed; but not one that pd_stage dropped in place:
	   it left the page tables already, and nothing can put it back
	   (no staging copy), so it goes out as it would have (its copies
	   are valid) and the lock's faults page it in */
	if (e->e_wired && r->pr_error == 0 && !r->pr_dropped)
		r->pr_error = -EBUSY;
	return true;
}

/*
 * pd_gone: the run's pages that left their slots while the map was
 * unlocked (munmap, MADV_DONTNEED), a bit each.  => amap locked
 */
static uint64_t
pd_gone(struct pd_run *r)
{
	uint64_t gone = 0;

	VM_ASSERT_LOCKED(&r->pr_amap->am_lock);
	for (int k = 0; k < r->pr_n; k++)
		if (amap_anon_at(r->pr_amap, r->pr_slot + k) != r->pr_anons[k])
			gone |= (uint64_t)1 << k;
	return gone;
}

/*
 * pd_keep: page k of a run ends its transit; the run's hold goes (the
 * slot keeps a reference, so it is not the last).  A page that stays
 * resident (`stays`) in a run that moved lost its uffd-wp bit with the
 * mremap: if clean, it becomes dirty (region_dirty_clean skipped it
 * while it was held), which may free its anon.  A page that goes out
 * keeps its anon: the caller marks it swapped next.
 * => amap locked.
 */
static void
pd_keep(struct pdaemon *pd, struct pd_run *r, int k, bool stays)
{
	struct anon *an = r->pr_anons[k];
	uint64_t old = 0;

	an->an_flags &= ~(ANON_TRANSIT | ANON_WANTED);
	atomic_fetch_sub_explicit(&an->an_ref, 1, memory_order_relaxed);
	if (stays && !r->pr_here && (an->an_flags & ANON_CLEAN))
		amap_set_dirty(r->pr_amap, r->pr_slot + k, &old);
	if (old != 0)	/* lock order: amap -> pager */
		swap_free(pd->pdd_swap, old, 1);
}

/*
 * pd_to_file: page k of a run that made it to its file (or was a clean
 * copy of it) leaves its slot: the slot empties and the next fault reads
 * the file.  Its anon goes (the run's hold went with pd_keep).
 * => amap locked.
 */
static void
pd_to_file(struct pd_run *r, int k)
{
	anon_unref(amap_unset(r->pr_amap, r->pr_slot + k));
}

/*
 * pd_release: end the run's holds after its finish: the pages that left
 * their slots are freed by this last reference (their new swap slots
 * first), and so are all the new slots of a run that failed; wake the
 * run's waiters (wake), where it was and where it is now; drop the amap.
 * => map read-locked, the amap unlocked.
 */
static void
pd_release(struct pdaemon *pd, struct pd_run *r, uint64_t gone, bool ok,
    bool wake)
{
	struct vmspace *vs = pd->pdd_vs;

	if (!ok && r->pr_swslot != 0)
		swap_free(pd->pdd_swap, r->pr_swslot, r->pr_n);
	for (int k = 0; k < r->pr_n; k++) {
		if (!(gone & ((uint64_t)1 << k)))
			continue;
		if (ok && r->pr_swslot != 0)
			swap_free(pd->pdd_swap, r->pr_swslot + (uint64_t)k, 1);
		anon_unref(r->pr_anons[k]);
	}
	if (wake)
		pmap_wake(&vs->vs_pmap, r->pr_va, ptoa((vsize_t)r->pr_n));
	if (!r->pr_here)
		vmspace_wake_slots(vs, r->pr_amap, r->pr_slot, r->pr_n);
	amap_drop(r->pr_amap);
	if (r->pr_obj != NULL)
		pager_unref(r->pr_obj);
}

/*
 * pd_finish_wp: drop the runs that made it to swap (their pages still in
 * their slots); end every transit; wake.
 * => map read-locked; takes and drops the amap locks.
 */
static long
pd_finish_wp(struct pdaemon *pd, struct pd_batch *pb)
{
	struct vmspace *vs = pd->pdd_vs;
	long freed = 0;

	for (int i = 0; i < pb->pb_nruns; i++) {
		struct pd_run *r = &pb->pb_runs[i];
		bool ok = r->pr_error == 0 && r->pr_here &&
		    !dio_overlapped(&vs->vs_dio, pb->pb_dio, r->pr_va,
		    r->pr_va + ptoa((vaddr_t)r->pr_n));
		uint64_t gone;
		int out = 0;

		vm_mutex_lock(&r->pr_amap->am_lock);
		gone = pd_gone(r);
		for (int k = 0; k < r->pr_n; k++) {
			struct anon *an = r->pr_anons[k];
			int n = 1;

			if (gone & ((uint64_t)1 << k))
				continue;
			if (!ok) {
				pd_keep(pd, r, k, true);
				continue;
			}
			/* drop the contiguous pages still here at once */
			while (k + n < r->pr_n && !(gone & ((uint64_t)1 <<
			    (k + n))))
				n++;
			pmap_dontneed(&vs->vs_pmap, r->pr_va +
			    ptoa((vaddr_t)k), ptoa((vsize_t)n));
			for (int j = k; j < k + n; j++) {
				an = r->pr_anons[j];
				pd_keep(pd, r, j, false);
				an->an_flags &= ~ANON_RESIDENT;
				if (pd_to_obj(r)) {
					pd_to_file(r, j);
				} else if (!r->pr_clean) {
					an->an_flags |= ANON_SWAPPED;
					an->an_swslot = pd_slot(r, j);
				}
			}
			out += n;
			k += n - 1;
		}
		vm_mutex_unlock(&r->pr_amap->am_lock);
		/* a writer may wait in a WP fault, which says nothing */
		pd_release(pd, r, gone, ok, true);
		if (ok)
			freed += pd_count(pd, r, out);
	}
	atomic_fetch_sub(&vs->vs_resident, freed);
	return freed;
}

/*
 * pd_putback: a staged run whose write failed goes back whole, dirty:
 * where it is (a moved run: page by page where the map has it now).
 * => map read-locked, the run's amap locked.
 */
static void
pd_putback(struct pdaemon *pd, struct pd_run *r, uint64_t gone)
{
	vaddr_t va;

	for (int k = 0; k < r->pr_n; k++) {
		if (gone & ((uint64_t)1 << k))
			continue;
		va = r->pr_here ? r->pr_va + ptoa((vaddr_t)k) :
		    vmspace_slot_va(pd->pdd_vs, r->pr_amap, r->pr_slot + k);
		if (va != 0)
			pd_unstage_at(pd, va, pd_src(pd, r) + ptoa((size_t)k),
			    1, false);
	}
}

/*
 * pd_linger: page k of run r (made it, still where it was, staged, no
 * fault waiting) stays in memory as an inactive page: still in transit,
 * the run's hold on its anon passing to the page's record, which holds
 * the amap too.  => map read-locked, the amap locked.
 */
static void
pd_linger(struct pdaemon *pd, struct pd_run *r, int k)
{
	int at = r->pr_stage + k;
	struct pd_linger *pl = &pd->pdd_linger[at];
	struct anon *an = r->pr_anons[k];

	VM_ASSERT(pl->pl_amap == NULL && (unsigned)at <= ANON_STAGE_MAX);
	amap_hold(r->pr_amap);
	*pl = (struct pd_linger){ .pl_amap = r->pr_amap, .pl_anon = an,
	    .pl_slot = r->pr_slot + k, .pl_fresh = !r->pr_clean,
	    .pl_band = -1 };
	an->an_flags = (an->an_flags & ((1u << ANON_STAGE_SHIFT) - 1)) |
	    ANON_STAGED | ((uint32_t)at << ANON_STAGE_SHIFT);
	pd->pdd_inactive++;
}

/* pd_may_linger: run r's pages may stay as inactive pages (pd_linger) */
static bool
pd_may_linger(const struct pdaemon *pd, const struct pd_run *r)
{
	return pd->pdd_inactive_max > 0 && r->pr_here && r->pr_stage >= 0 &&
	    r->pr_obj == NULL;
}

/* pd_unlinger: anon an is inactive no more: its flags lose the state */
static void
pd_unlinger(struct anon *an, uint32_t also)
{
	an->an_flags &= ((1u << ANON_STAGE_SHIFT) - 1) & ~(ANON_STAGED |
	    ANON_TRANSIT | ANON_WANTED | also);
	atomic_fetch_sub_explicit(&an->an_ref, 1, memory_order_relaxed);
}

/*
 * pd_inactive_release: the oldest n inactive pages go (see "inactive
 * pages" above); the staging pages they leave are freed.
 * => map read-locked; takes and drops the amap locks.  => pages freed.
 */
static long
pd_inactive_release(struct pdaemon *pd, long n)
{
	struct vmspace *vs = pd->pdd_vs;
	uint64_t from = pd->pdd_tail;
	long freed = 0;

	VM_ASSERT_RLOCKED(&vs->vs_map.m_lock);
	while (pd->pdd_tail < pd->pdd_head && n > 0) {
		long at = (long)(pd->pdd_tail++ % (uint64_t)pd->pdd_nstage);

		if (pd->pdd_linger[at].pl_amap == NULL)
			continue;
		n--;
		pd->pdd_inactive--;
		freed += pd_linger_let_go(pd, at);
	}
	pd_stage_drop(pd, from, pd->pdd_tail);
	return freed;
}

int
pd_linger_let_go(struct pdaemon *pd, long at)
{
	struct vmspace *vs = pd->pdd_vs;
	struct pd_linger *pl = &pd->pdd_linger[at];
	struct amap *am = pl->pl_amap;
	struct anon *an;
	bool gone = false;
	int freed = 0;

	VM_ASSERT_RLOCKED(&vs->vs_map.m_lock);
	if (am == NULL)
		return 0;
	vm_mutex_lock(&am->am_lock);
	if ((an = pl->pl_anon) != NULL &&
	    !(gone = amap_anon_at(am, pl->pl_slot) != an)) {
		VM_ASSERT((an->an_flags & ANON_STAGED) &&
		    (long)(an->an_flags >> ANON_STAGE_SHIFT) == at);
		/* swapped: its copy is valid */
		pd_unlinger(an, ANON_RESIDENT);
		freed = 1;
	}
	pl->pl_anon = NULL;
	vm_mutex_unlock(&am->am_lock);
	/* after the lock: a fault that saw the page inactive (under it)
	   finds its record whole */
	pl->pl_amap = NULL;
	if (gone)	/* unmapped meanwhile: the last reference */
		anon_unref(an);
	amap_drop(am);
	STAT_ADD(&vs->vs_stats, st_clean_drops, (uint64_t)freed);
	atomic_fetch_sub(&vs->vs_resident, freed);
	return freed;
}

/* the daemon whose inactive pages pd_forget finds (one vmspace) */
static struct pdaemon *pd_unstage_pd;

/*
 * pd_forget: amap_set_unstage's hook: inactive anon `an` leaves its slot
 * (munmap, MADV_DONTNEED): its staging page goes now, and so does its
 * record's hold (so the remover's reference is the last: the swap slot is
 * freed with it).  ANON_RESIDENT stays: the remover counts the page out.
 * => its amap locked.
 */
static void
pd_forget(struct anon *an)
{
	struct pdaemon *pd = pd_unstage_pd;
	int at = (int)(an->an_flags >> ANON_STAGE_SHIFT);
	struct pd_linger *pl = &pd->pdd_linger[at];

	VM_ASSERT(pl->pl_anon == an);
	pl->pl_anon = NULL;
	pd_stage_drop_at(pd_stage_page(pd, at), PAGE_SIZE);
	pd_unlinger(an, 0);
}

void
pd_reactivate(struct pdaemon *pd, struct amap *am, int slot,
    struct anon *an, vaddr_t va)
{
	int at = (int)(an->an_flags >> ANON_STAGE_SHIFT);
	struct pd_linger *pl = &pd->pdd_linger[at];
	const char *src = pd_stage_page(pd, at);

	VM_ASSERT_LOCKED(&am->am_lock);
	VM_ASSERT((an->an_flags & ANON_STAGED) && pl->pl_anon == an &&
	    pl->pl_amap == am && pl->pl_slot == slot);
	(void)am;
	(void)slot;
	/* clean from now on: the pager must know what it holds */
	if (pl->pl_fresh)
		pager_remember(&pd->pdd_swap->sw_pager, ptoa(an->an_swslot),
		    src, 1);
	pd_unstage_at(pd, va, src, 1, true);
	pl->pl_anon = NULL;
	pd_unlinger(an, 0);
	if (pl->pl_band >= 0) {
		/* a probe's page read ahead, taken: a readahead hit */
		cluster_ra_hit(&pd->pdd_ra, pl->pl_band);
		STAT_INC(&pd->pdd_vs->vs_stats, st_ra_hits);
	}
	STAT_INC(&pd->pdd_vs->vs_stats, st_reactivations);
}

/*
 * pd_stage_drop_run: free staged run r's staging pages but the inactive
 * ones (bit k of keep: page k lingers)
 */
static void
pd_stage_drop_run(struct pdaemon *pd, const struct pd_run *r, uint64_t keep)
{
	uint64_t at = (uint64_t)r->pr_stage;
	int k = 0, n;

	while (k < r->pr_n) {
		for (n = 0; k + n < r->pr_n && !((keep >> (k + n)) & 1); n++)
			;
		if (n > 0)
			pd_stage_drop(pd, at + (uint64_t)k,
			    at + (uint64_t)(k + n));
		k += n + 1;	/* past the pages freed and the one kept */
	}
}

/*
 * pd_finish_move: the runs that made it to swap become swapped (or, while
 * there is room, inactive: pd_linger), but for the pages faults wait for,
 * which go back in place (a run still where it was); the others go back
 * whole; pages unmapped meanwhile are freed; end every transit; free the
 * staging pages nothing lingers in; wake.
 * => map read-locked; takes and drops the amap locks.
 */
static long
pd_finish_move(struct pdaemon *pd, struct pd_batch *pb, uint64_t stage0)
{
	struct vmspace *vs = pd->pdd_vs;
	struct swap *sw = pd->pdd_swap;
	long freed = 0, back, out, kept = 0;
	uint64_t lingered[PD_MAX_RUNS];

	for (int i = 0; i < pb->pb_nruns; i++) {
		struct pd_run *r = &pb->pb_runs[i];
		struct amap *am = r->pr_amap;
		bool ok = r->pr_error == 0, linger, waited = false;
		uint64_t gone;

		lingered[i] = 0;
		vm_mutex_lock(&am->am_lock);
		gone = pd_gone(r);
		if (!ok && r->pr_stage >= 0)
			pd_putback(pd, r, gone);
		back = out = 0;
		for (int k = 0; k < r->pr_n; k++) {
			struct anon *an = r->pr_anons[k];
			bool wanted = (an->an_flags & ANON_WANTED) != 0;

			waited |= wanted;
			if (gone & ((uint64_t)1 << k))
				continue;
			if (r->pr_rewrite) {
				/* written since its pagein: the copy is stale,
				   unless it was just written again in place */
				if (an->an_swslot != 0 &&
				    !(ok && r->pr_ownslot != 0)) {
					swap_free(sw, an->an_swslot, 1);
					an->an_swslot = 0;
				}
				an->an_flags &= ~ANON_CLEAN;
			}
			linger = ok && !wanted && pd_may_linger(pd, r) &&
			    pd->pdd_inactive < pd->pdd_inactive_max;
			if (!linger)
				pd_keep(pd, r, k, !ok);
			if (!ok)
				continue;
			if (!r->pr_clean && pd_to_obj(r)) {
				an->an_flags |= ANON_OBJ;
			} else if (!r->pr_clean) {
				an->an_flags |= ANON_SWAPPED;
				an->an_swslot = pd_slot(r, k);
			}
			if (linger) {
				pd_linger(pd, r, k);
				lingered[i] |= (uint64_t)1 << k;
				kept++;
			} else if (wanted && r->pr_here && r->pr_stage >= 0) {
				/* clean from now on: the pager remembers it */
				if (!r->pr_clean) {
					voff_t off;
					struct pager *pgr = pd_copy(pd, r, k,
					    an, &off);

					pager_remember(pgr, off, pd_src(pd, r) +
					    ptoa((size_t)k), 1);
				}
				pd_unstage(pd, r, k, 1, true);
				back++;
			} else {
				an->an_flags &= ~ANON_RESIDENT;
				if (pd_to_obj(r))
					pd_to_file(r, k);
				out++;
			}
		}
		vm_mutex_unlock(&am->am_lock);
		/* every fault that waits for a page of the run said so
		   (ANON_WANTED, fault_claim, under the amap lock while the
		   page was in transit): a run no fault waited for needs no
		   UFFDIO_WAKE (a syscall that walks the waiters with
		   interrupts off: one a run, 48k for sqlite3 below) */
		pd_release(pd, r, gone, ok, waited || !ok || !r->pr_here);
		if (!ok)
			continue;
		STAT_ADD(&vs->vs_stats, st_reactivations, (uint64_t)back);
		freed += pd_count(pd, r, (int)out);
	}
	/* the staging pages nothing lingers in: all of the batch's at once,
	   else run by run around the inactive ones */
	if (kept == 0) {
		pd_stage_drop(pd, stage0, pd->pdd_head);
	} else {
		for (int i = 0; i < pb->pb_nruns; i++)
			if (pb->pb_runs[i].pr_stage >= 0)
				pd_stage_drop_run(pd, &pb->pb_runs[i],
				    lingered[i]);
	}
	atomic_fetch_sub(&vs->vs_resident, freed);
	return freed;
}

/*
 * pd_make_room: before a batch of up to `want` pages, the oldest inactive
 * pages go: `want` of them (they free room now, with no I/O), but while
 * there are fewer than pdd_inactive_max the batch takes more (it stages
 * `want` plus what is missing, up to twice want) so that they fill up;
 * and the ring keeps room for a whole batch.
 * => map read-locked.  => pages freed; *stagep: pages to stage.
 */
static long
pd_make_room(struct pdaemon *pd, long want, long *stagep)
{
	long rel, freed;

	rel = MIN(want, pd->pdd_inactive);
	*stagep = want + MIN(want, MAX(0, pd->pdd_inactive_max -
	    (pd->pdd_inactive - rel)));
	*stagep = MIN(*stagep, PD_BATCH_PAGES);
	freed = pd_inactive_release(pd, rel);
	while (pd->pdd_tail < pd->pdd_head && pd->pdd_head - pd->pdd_tail +
	    PD_BATCH_PAGES + AMAP_UNIT > (uint64_t)pd->pdd_nstage)
		freed += pd_inactive_release(pd, AMAP_UNIT);
	return freed;
}

/*
 * pd_batch: page out up to `want` pages.
 * => no locks held; the map read lock is taken for the phases before and
 *    after the write, not across it.  Returns the pages freed; *tookp the
 *    pages the batch took (freed, or inactive now).
 */
static long
pd_batch(struct pdaemon *pd, long want, long *tookp)
{
	struct vm_map *map = &pd->pdd_vs->vs_map;
	uint64_t victims[PD_MAX_RUNS], stage0;
	struct pd_batch *pb = pd->pdd_batch;
	long freed = 0, stage = want, inactive0 = pd->pdd_inactive;
	int nv;

	pb->pb_nruns = 0;
	pb->pb_pages = 0;
	*tookp = 0;
	vm_rwlock_rdlock(&map->m_lock);
	if (pd->pdd_move)
		freed = pd_make_room(pd, MIN(want, PD_BATCH_PAGES), &stage) +
		    pd_probe_age(pd);
	stage0 = pd->pdd_head;
	nv = pdpol_select(&pd->pdd_clock, &pd_unit_ops, map,
	    MIN(stage, PD_BATCH_PAGES), victims, PD_MAX_RUNS / 2,
	    2 * (long)(atop(map->m_size) / AMAP_UNIT + map->m_nentries + 1));
	for (int i = 0; i < nv && pb->pb_nruns < PD_MAX_RUNS; i++)
		pd_collect(pd, pb, victims[i]);
	/* before the first write starts (pd_write_early) */
	if (pb->pb_nruns > 0)
		atomic_store(&pd->pdd_writing, true);
	pd_write_hold(pd);
	if (pb->pb_nruns > 0 && pd->pdd_move)
		pd_stage(pd, pb);
	else if (pb->pb_nruns > 0) {
		pb->pb_dio = dio_now(&pd->pdd_vs->vs_dio);
		pd_protect(pd, pb);
	}
	pd_write_go(pd);
	vm_rwlock_unlock(&map->m_lock);
	if (pb->pb_nruns == 0) {
		*tookp = freed;
		return freed;
	}
	pd_write(pd, pb);
	atomic_store(&pd->pdd_writing, false);
	vm_rwlock_rdlock(&map->m_lock);
	for (int i = 0; i < pb->pb_nruns; i++)
		pb->pb_runs[i].pr_here = pd_run_here(pd, &pb->pb_runs[i]);
	freed += pd->pdd_move ? pd_finish_move(pd, pb, stage0) :
	    pd_finish_wp(pd, pb);
	vm_rwlock_unlock(&map->m_lock);
	*tookp = freed + MAX(0, pd->pdd_inactive - inactive0);
	upvm_log(LOG_DEBUG, "pageout: want %ld, %d units, %d runs, %ld pages, "
	    "%ld freed, %ld inactive", want, nv, pb->pb_nruns, pb->pb_pages,
	    freed, pd->pdd_inactive);
	return freed;
}

/* pd_inactive_flush: every inactive page goes, the probes' too (the
   daemon stops) */
static void
pd_inactive_flush(struct pdaemon *pd)
{
	struct vm_map *map = &pd->pdd_vs->vs_map;

	if (pd->pdd_linger == NULL)
		return;
	vm_rwlock_rdlock(&map->m_lock);
	(void)pd_inactive_release(pd, LONG_MAX);
	pd_probe_flush(pd);
	vm_rwlock_unlock(&map->m_lock);
	VM_ASSERT(pd->pdd_inactive == 0);
}

static void *
pd_main(void *arg)
{
	struct pdaemon *pd = arg;
	struct vmspace *vs = pd->pdd_vs;
	struct timespec ts;
	bool running = false;
	long want, took, demoted;
	uint64_t ins, last_ins = 0;

	vm_tl_inside = 1;
	pthread_mutex_lock(&pd->pdd_lock);
	while (!pd->pdd_stop) {
		if (atomic_load(&vs->vs_onfault_used)) {
			pthread_mutex_unlock(&pd->pdd_lock);
			pd_count_onfault(vs);
			pthread_mutex_lock(&pd->pdd_lock);
		}
		pd->pdd_inactive_max = atomic_load(&pd->pdd_inactive_want);
		want = pdpol_want(&pd->pdd_marks, pd_counted(vs), running);
		if (vs->vs_numa != NULL && vs->vs_numa->ns_counts) {
			/* a node past its budget: demote before paging out */
			pthread_mutex_unlock(&pd->pdd_lock);
			demoted = pd_demote(pd);
			pthread_mutex_lock(&pd->pdd_lock);
			if (demoted > 0 && want == 0)
				continue;
		}
		if (want == 0) {
			running = false;
			pthread_cond_broadcast(&pd->pdd_freed);
			pd_deadline(&ts, 50);
			pthread_cond_timedwait(&pd->pdd_work, &pd->pdd_lock,
			    &ts);
			continue;
		}
		running = true;
		pthread_mutex_unlock(&pd->pdd_lock);
		/* small batches while reads wait on the same disk */
		ins = atomic_load_explicit(&vs->vs_stats.st_pageins,
		    memory_order_relaxed);
		(void)pd_batch(pd, MIN(want, ins != last_ins ?
		    PD_BATCH_READS : PD_BATCH_PAGES), &took);
		last_ins = ins;
		if (took > 0) {
			atomic_fetch_add(&pd->pdd_progress, 1);
			atomic_fetch_add(&pd->pdd_taken, (unsigned long)took);
		}
		pthread_mutex_lock(&pd->pdd_lock);
		pthread_cond_broadcast(&pd->pdd_freed);
		if (took == 0) {
			/* nothing evictable now: let faults settle */
			pthread_mutex_unlock(&pd->pdd_lock);
			nanosleep(&(struct timespec){ .tv_nsec = 2000000 },
			    NULL);
			pthread_mutex_lock(&pd->pdd_lock);
		}
	}
	pthread_mutex_unlock(&pd->pdd_lock);
	pd_inactive_flush(pd);
	pd->pdd_cpu_ns = stats_thread_cpu_ns(pthread_self());
	return NULL;
}

/*
 * pd_stage_create: the staging area of the move protocol: a ring of
 * private anonymous pages the runtime owns (the inactive pages, and room
 * for two batches), registered with the same userfaultfd (UFFDIO_MOVE
 * moves only between its own ranges), and its records.  Nothing ever
 * touches a page of it that is not there, so it never faults.
 */
static int
pd_stage_create(struct pdaemon *pd)
{
	size_t len;
	void *p;
	int error;

	pd->pdd_nstage = pd->pdd_inactive_ring + 2 * (PD_BATCH_PAGES +
	    AMAP_UNIT);
	len = ptoa((size_t)(pd->pdd_nstage + pd->pdd_nprobe));
	pd->pdd_linger = kmem_alloc((size_t)(pd->pdd_nstage +
	    pd->pdd_nprobe) * sizeof(*pd->pdd_linger));
	if (pd->pdd_linger == NULL)
		return -ENOMEM;
	memset(pd->pdd_linger, 0, (size_t)(pd->pdd_nstage + pd->pdd_nprobe) *
	    sizeof(*pd->pdd_linger));
	pd->pdd_head = pd->pdd_tail = 0;
	pd->pdd_inactive = 0;
	p = raw_mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw_mmap_failed(p)) {
		error = (int)(intptr_t)p;
		goto fail;
	}
	error = pmap_register(&pd->pdd_vs->vs_pmap, (vaddr_t)p, len,
	    pd->pdd_vs->vs_regmodes);
	if (error != 0) {
		(void)raw_munmap(p, len);
		goto fail;
	}
	pd->pdd_stage = p;
	return 0;
fail:
	kmem_free(pd->pdd_linger, (size_t)(pd->pdd_nstage + pd->pdd_nprobe) *
	    sizeof(*pd->pdd_linger));
	pd->pdd_linger = NULL;
	return error;
}

static void
pd_stage_destroy(struct pdaemon *pd)
{
	size_t len = ptoa((size_t)(pd->pdd_nstage + pd->pdd_nprobe));

	if (pd->pdd_stage == NULL)
		return;
	(void)pmap_unregister(&pd->pdd_vs->vs_pmap, (vaddr_t)pd->pdd_stage,
	    len);
	(void)raw_munmap(pd->pdd_stage, len);
	pd->pdd_stage = NULL;
	kmem_free(pd->pdd_linger, (size_t)(pd->pdd_nstage + pd->pdd_nprobe) *
	    sizeof(*pd->pdd_linger));
	pd->pdd_linger = NULL;
}

/* pd_inactive_for: the inactive pages of a budget: its share, never more
   than the ring index in an anon's flags can name; none under wp */
static long
pd_inactive_for(const struct pdaemon *pd, long budget)
{
	return pd->pdd_move ? MIN(budget / 100 *
	    (long)pd->pdd_vs->vs_inactive_pct, (long)ANON_STAGE_MAX / 2) : 0;
}

/* pd_marks_set: the watermarks of a budget.  => pdd_lock held, or the
   daemon not started */
static void
pd_marks_set(struct pdaemon *pd, long budget)
{
	pdpol_marks(budget, pd->pdd_slack, &pd->pdd_marks);
	atomic_store(&pd->pdd_budget, pd->pdd_marks.pm_budget);
	atomic_store(&pd->pdd_high, pd->pdd_marks.pm_high);
	atomic_store(&pd->pdd_limit, pd->pdd_marks.pm_limit);
}

void
pd_set_budget(struct pdaemon *pd, long budget)
{
	atomic_store(&pd->pdd_inactive_want, MIN(pd_inactive_for(pd,
	    MAX(budget, 1)), pd->pdd_inactive_ring));
	pthread_mutex_lock(&pd->pdd_lock);
	pd_marks_set(pd, MAX(budget, 1));
	pthread_cond_signal(&pd->pdd_work);
	pthread_cond_broadcast(&pd->pdd_freed);
	pthread_mutex_unlock(&pd->pdd_lock);
}

int
pd_start(struct vmspace *vs, struct swap *sw, long budget, long slack,
    struct pdaemon **out)
{
	struct pdaemon *pd;
	sigset_t all, old;
	int error;

	if ((pd = kmem_alloc(sizeof(*pd))) == NULL)
		return -ENOMEM;
	pd->pdd_vs = vs;
	pd->pdd_swap = sw;
	pd->pdd_slack = slack;
	pd_marks_set(pd, budget);
	pthread_mutex_init(&pd->pdd_lock, NULL);
	pthread_cond_init(&pd->pdd_work, NULL);
	pthread_cond_init(&pd->pdd_freed, NULL);
	atomic_init(&pd->pdd_stuck, false);
	atomic_init(&pd->pdd_said_full, false);
	atomic_init(&pd->pdd_stopped, false);
	atomic_init(&pd->pdd_peak, 0);
	atomic_init(&pd->pdd_progress, 0);
	atomic_init(&pd->pdd_stall_mark, ULONG_MAX);
	atomic_init(&pd->pdd_said_stall, false);
	atomic_init(&pd->pdd_stage_hook, NULL);
	atomic_init(&pd->pdd_unstage_hook, NULL);
	pd->pdd_stop = false;
	pd->pdd_clock.pc_valid = false;
	pd->pdd_dclock.pc_valid = false;
	pd->pdd_move = vs->vs_pageout == UPVM_PAGEOUT_MOVE;
	pd->pdd_stage = NULL;
	pd->pdd_linger = NULL;
	pd->pdd_nstage = 0;
	/* inactive pages: a share of the budget; the ring holds the share
	   of the most the budget may become (upvmd) */
	pd->pdd_inactive_max = pd_inactive_for(pd, budget);
	pd->pdd_inactive_ring = pd_inactive_for(pd, MAX(budget,
	    vs->vs_budget_most));
	atomic_init(&pd->pdd_inactive_want, pd->pdd_inactive_max);
	pd_probe_init(pd);
	if (pd->pdd_move && (error = pd_stage_create(pd)) != 0)
		goto fail;
	pd->pdd_bounce = raw_mmap(NULL, 2 * PD_BOUNCE_LEN, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw_mmap_failed(pd->pdd_bounce)) {
		error = (int)(intptr_t)pd->pdd_bounce;
		goto fail_stage;
	}
	pd->pdd_cmpbuf = pd->pdd_bounce + PD_BOUNCE_LEN;
	if ((pd->pdd_batch = kmem_alloc(sizeof(*pd->pdd_batch))) == NULL) {
		error = -ENOMEM;
		goto fail_bounce;
	}
	if ((error = pager_queue_create(&sw->sw_pager, PD_MAX_RUNS,
	    &pd->pdd_q)) != 0)
		goto fail_batch;
	/* (pd_set_budget may raise the inactive pages from none) */
	if (pd->pdd_inactive_ring > 0 || pd->pdd_nprobe > 0) {
		pd_unstage_pd = pd;
		amap_set_unstage(pd_forget);
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = -pthread_create(&pd->pdd_thread, NULL, pd_main, pd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		if (pd_unstage_pd == pd) {
			amap_set_unstage(NULL);
			pd_unstage_pd = NULL;
		}
		pager_queue_destroy(pd->pdd_q);
		goto fail_batch;
	}
	pthread_setname_np(pd->pdd_thread, "upvm-pageout");
	*out = pd;
	return 0;
fail_batch:
	kmem_free(pd->pdd_batch, sizeof(*pd->pdd_batch));
fail_bounce:
	(void)raw_munmap(pd->pdd_bounce, 2 * PD_BOUNCE_LEN);
fail_stage:
	pd_stage_destroy(pd);
fail:
	kmem_free(pd, sizeof(*pd));
	return error;
}

bool
pd_stop_within(struct pdaemon *pd, int ms)
{
	struct timespec until;
	int error;

	pthread_mutex_lock(&pd->pdd_lock);
	if (pd->pdd_stop) {
		pthread_mutex_unlock(&pd->pdd_lock);
		return false;
	}
	pd->pdd_stop = true;
	atomic_store(&pd->pdd_stopped, true);	/* no more throttling */
	pthread_cond_broadcast(&pd->pdd_work);
	pthread_cond_broadcast(&pd->pdd_freed);
	pthread_mutex_unlock(&pd->pdd_lock);
	if (ms < 0) {
		error = pthread_join(pd->pdd_thread, NULL);
	} else {
		pd_deadline(&until, ms);
		error = pthread_timedjoin_np(pd->pdd_thread, NULL, &until);
	}
	if (error != 0)
		return false;
	atomic_fetch_add(&pd->pdd_vs->vs_pd_cpu_done, pd->pdd_cpu_ns);
	return true;
}

void
pd_stop(struct pdaemon *pd)
{
	(void)pd_stop_within(pd, -1);
}

uint64_t
pd_cpu_ns(struct pdaemon *pd)
{
	return atomic_load(&pd->pdd_stopped) ? 0 :
	    stats_thread_cpu_ns(pd->pdd_thread);
}

void
pd_destroy(struct pdaemon *pd)
{
	pd_stop(pd);
	/* stopped: no page is inactive any more */
	if (pd_unstage_pd == pd) {
		amap_set_unstage(NULL);
		pd_unstage_pd = NULL;
	}
	pager_queue_destroy(pd->pdd_q);
	kmem_free(pd->pdd_batch, sizeof(*pd->pdd_batch));
	(void)raw_munmap(pd->pdd_bounce, 2 * PD_BOUNCE_LEN);
	pd_stage_destroy(pd);
	pthread_mutex_destroy(&pd->pdd_probe_lock);
	kmem_free(pd, sizeof(*pd));
}

void
pd_wait_writes(struct pdaemon *pd)
{
	while (atomic_load(&pd->pdd_writing))
		nanosleep(&(struct timespec){ .tv_nsec = 50000 }, NULL);
}

bool
pd_pressure(struct pdaemon *pd)
{
	return pd_counted(pd->pdd_vs) > atomic_load_explicit(&pd->pdd_high,
	    memory_order_relaxed);
}

void
pd_kick(struct pdaemon *pd)
{
	long res = pd_counted(pd->pdd_vs), peak;

	peak = atomic_load_explicit(&pd->pdd_peak, memory_order_relaxed);
	while (res > peak && !atomic_compare_exchange_weak(&pd->pdd_peak,
	    &peak, res))
		;
	if (res > atomic_load_explicit(&pd->pdd_high, memory_order_relaxed) ||
	    (pd->pdd_vs->vs_numa != NULL &&
	    numa_over(pd->pdd_vs->vs_numa) >= 0)) {
		pthread_mutex_lock(&pd->pdd_lock);
		pthread_cond_signal(&pd->pdd_work);
		pthread_mutex_unlock(&pd->pdd_lock);
	}
}

/*
 * pd_stalled: a throttled fault has waited since `since` while the
 * daemon's progress stayed at `seen`; past PD_STALL_MS the daemon is
 * stalled at `seen` (pdd_stall_mark): faults go on without waiting until
 * it takes pages out again (see the header).  Updates `since` and `seen`
 * when the daemon moved.
 */
static bool
pd_stalled(struct pdaemon *pd, struct timespec *since, unsigned long *seen)
{
	unsigned long now_progress = atomic_load(&pd->pdd_progress);
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now_progress != *seen) {
		*seen = now_progress;
		*since = now;
		return false;
	}
	if ((now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec -
	    since->tv_nsec) / 1000000 < PD_STALL_MS)
		return false;
	if (atomic_exchange(&pd->pdd_stall_mark, now_progress) !=
	    now_progress)
		STAT_INC(&pd->pdd_vs->vs_stats, st_stalls);
	if (!atomic_exchange(&pd->pdd_said_stall, true))
		upvm_log(LOG_WARN, "the pageout daemon took no page out for "
		    "%d ms (a pageout write that does not complete, or "
		    "nothing it may evict); faults go past the budget until "
		    "it does", PD_STALL_MS);
	return true;
}

long
pd_reserve(struct pdaemon *pd, long npages, bool wait)
{
	struct vmspace *vs = pd->pdd_vs;
	struct timespec since = { 0, 0 }, until;
	unsigned long seen = 0;
	bool waited = false;
	long cur, room, n;

	for (;;) {
		cur = atomic_load(&vs->vs_resident);
		room = atomic_load(&pd->pdd_limit) - (cur - pd_wired(vs));
		if (room > 0 || atomic_load(&pd->pdd_stuck) ||
		    atomic_load(&pd->pdd_stopped) ||
		    atomic_load(&pd->pdd_stall_mark) ==
		    atomic_load(&pd->pdd_progress)) {
			/* reserve: counted as resident until the claim */
			n = room > 0 ? MIN(room, npages) : npages;
			if (atomic_compare_exchange_weak(&vs->vs_resident,
			    &cur, cur + n))
				return n;
			continue;
		}
		if (!wait)
			return 0;
		if (!waited) {
			waited = true;
			seen = atomic_load(&pd->pdd_progress);
			clock_gettime(CLOCK_MONOTONIC, &since);
		} else if (pd_stalled(pd, &since, &seen)) {
			continue;
		}
		pthread_mutex_lock(&pd->pdd_lock);
		if (pd->pdd_stop) {
			pthread_mutex_unlock(&pd->pdd_lock);
			continue;	/* stopped: the next try reserves */
		}
		pthread_cond_signal(&pd->pdd_work);
		/* pdd_freed waits on CLOCK_REALTIME; a jump only moves the
		   next look at the stall */
		pd_deadline(&until, 100);
		pthread_cond_timedwait(&pd->pdd_freed, &pd->pdd_lock, &until);
		pthread_mutex_unlock(&pd->pdd_lock);
	}
}
