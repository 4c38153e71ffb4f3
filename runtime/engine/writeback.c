/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * writeback.c: write-back of shared file mappings (see writeback.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "amap.h"
#include "log.h"
#include "pager.h"
#include "pagehash.h"
#include "pdaemon.h"
#include "sys.h"
#include "vmspace.h"
#include "vnode.h"
#include "writeback.h"

struct wb_run {
	int		 wr_slot;		/* first amap slot */
	int		 wr_n;
	struct anon	*wr_anons[AMAP_UNIT];	/* held */
};

bool
wb_shared(const struct vm_map_entry *e)
{
	return e->e_obj != NULL && !(e->e_etype & VM_ET_COPYONWRITE) &&
	    e->e_aref.ar_amap != NULL &&
	    container_of(e->e_obj, struct vnode, vn_pager)->vn_writable;
}

/* wb_dirty: slot s holds a dirty resident page nobody else owns */
static bool
wb_dirty(struct amap *am, int s)
{
	struct anon *an;

	if (amap_slot(am, s) == SLOT_RESIDENT)
		return true;
	an = amap_anon_at(am, s);
	return an != NULL && atomic_load(&an->an_ref) == 1 &&
	    (an->an_flags & (ANON_RESIDENT | ANON_TRANSIT | ANON_POISON |
	    ANON_CLEAN)) == ANON_RESIDENT;
}

/* wb_clean: an is a resident clean file page (its copy is the file's),
   not in transit, that nobody else owns.  => amap locked */
static bool
wb_clean(const struct anon *an)
{
	return an != NULL && atomic_load(&an->an_ref) == 1 &&
	    (an->an_flags & (ANON_RESIDENT | ANON_TRANSIT | ANON_OBJ)) ==
	    (ANON_RESIDENT | ANON_OBJ);
}

/*
 * wb_scan_written: move protocol: the clean pages of [va, end) that
 * were written become dirty; the scan write-protects them again.  A page
 * the scan reports that this pass does not take (a run the pageout
 * daemon holds in transit; a page shared after fork) gets its
 * written state back: its run is un-protected again, or that write would
 * be lost to the next scan.  (The run's other pages are dirty now, and
 * wb_entry protects them before it writes them.)
 * => amap unlocked; takes it.
 */
static void
wb_scan_written(struct vmspace *vs, struct vm_map_entry *e, vaddr_t va,
    vaddr_t end)
{
	struct amap *am = e->e_aref.ar_amap;
	struct page_region reg[16];
	bool back[nitems(reg)];
	vaddr_t walk_end, p;
	uint64_t old;
	int n, s;

	while (va < end) {
		n = pmap_scan_written(&vs->vs_pmap, va, end - va, reg,
		    (int)nitems(reg), true, &walk_end);
		if (n < 0)
			return;
		vm_mutex_lock(&am->am_lock);
		for (int i = 0; i < n; i++) {
			back[i] = false;
			for (p = reg[i].start; p < reg[i].end; p += PAGE_SIZE) {
				s = vm_entry_slot(e, p);
				if (wb_clean(amap_anon_at(am, s)))
					amap_set_dirty(am, s, &old);
				else if (!wb_dirty(am, s))
					back[i] = true;
			}
		}
		vm_mutex_unlock(&am->am_lock);
		for (int i = 0; i < n; i++)
			if (back[i])
				(void)pmap_writeprotect(&vs->vs_pmap,
				    reg[i].start, reg[i].end - reg[i].start,
				    false, true);
		if (walk_end <= va)
			return;
		va = walk_end;
	}
}

/*
 * wb_collect: the next run of dirty pages in [*vap, end), at most a unit:
 * in transit and held.  => amap unlocked; takes it.  The pages taken; 0:
 * none left; -ENOMEM.
 */
static int
wb_collect(struct vm_map_entry *e, vaddr_t *vap, vaddr_t end,
    struct wb_run *r)
{
	struct amap *am = e->e_aref.ar_amap;
	int s = vm_entry_slot(e, *vap), hi = vm_entry_slot(e, end);
	struct anon *an;

	vm_mutex_lock(&am->am_lock);
	while (s < hi && !wb_dirty(am, s))
		s++;
	r->wr_slot = s;
	r->wr_n = 0;
	while (s < hi && r->wr_n < AMAP_UNIT && wb_dirty(am, s) &&
	    (an = amap_anon(am, s)) != NULL) {
		an->an_flags |= ANON_TRANSIT;
		anon_hold(an);
		r->wr_anons[r->wr_n++] = an;
		s++;
	}
	/* no anon for a dirty page: out of memory */
	if (r->wr_n == 0 && s < hi) {
		vm_mutex_unlock(&am->am_lock);
		return -ENOMEM;
	}
	vm_mutex_unlock(&am->am_lock);
	*vap = e->e_start + ptoa((vaddr_t)(s - e->e_aref.ar_pageoff));
	return r->wr_n;
}

/*
 * wb_finish: end the run's transit: written (wp), the pages still in
 * their slots are clean copies of the file now; the others (unmapped
 * meanwhile) go with the hold.  => amap unlocked; takes it.
 */
static void
wb_finish(struct vmspace *vs, struct vm_map_entry *e, struct wb_run *r,
    vaddr_t va, bool clean)
{
	struct amap *am = e->e_aref.ar_amap;
	struct anon *an;
	bool gone[AMAP_UNIT];

	vm_mutex_lock(&am->am_lock);
	for (int k = 0; k < r->wr_n; k++) {
		an = r->wr_anons[k];
		gone[k] = amap_anon_at(am, r->wr_slot + k) != an;
		if (gone[k])
			continue;
		an->an_flags &= ~ANON_TRANSIT;
		if (clean) {
			an->an_flags |= ANON_OBJ;
			pager_remember(e->e_obj, vm_entry_objoff(e, va +
			    ptoa((vaddr_t)k)), (const void *)(va +
			    ptoa((vaddr_t)k)), 1);
		}
		atomic_fetch_sub_explicit(&an->an_ref, 1,
		    memory_order_relaxed);
	}
	vm_mutex_unlock(&am->am_lock);
	for (int k = 0; k < r->wr_n; k++)
		if (gone[k])
			anon_unref(r->wr_anons[k]);
	/* writers that waited in a WP fault (wp protocol) */
	pmap_wake(&vs->vs_pmap, va, ptoa((vsize_t)r->wr_n));
}

/* wb_entry: write back [va, end) of shared file entry e */
static int
wb_entry(struct vmspace *vs, struct vm_map_entry *e, vaddr_t va,
    vaddr_t end, int *failedp)
{
	bool wp = (vs->vs_regmodes & PMAP_REG_WP) != 0;
	struct wb_run r;
	struct pager_req req;
	vaddr_t rva;
	int error, first = 0;

	if (wp && vs->vs_pageout == UPVM_PAGEOUT_MOVE)
		wb_scan_written(vs, e, va, end);
	while ((error = wb_collect(e, &va, end, &r)) > 0) {
		rva = va - ptoa((vaddr_t)r.wr_n);
		if (wp)
			(void)pmap_writeprotect(&vs->vs_pmap, rva,
			    ptoa((vsize_t)r.wr_n), true, true);
		req = (struct pager_req){ .pr_off = vm_entry_objoff(e, rva),
		    .pr_npages = r.wr_n, .pr_buf = (void *)rva };
		error = pager_put(e->e_obj, NULL, &req);
		if (error == 0) {
			STAT_ADD(&vs->vs_stats, st_file_writes,
			    (uint64_t)r.wr_n);
		} else {
			STAT_INC(&vs->vs_stats, st_io_errors);
			*failedp += r.wr_n;
			if (first == 0)
				first = error;
		}
		wb_finish(vs, e, &r, rva, wp && error == 0);
	}
	return first != 0 ? first : error;
}

int
wb_range(struct vmspace *vs, vaddr_t start, vaddr_t end, bool sync)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	int error, first = 0, failed = 0;

	VM_ASSERT_WLOCKED(&map->m_lock);
	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e)) {
		if (!wb_shared(e))
			continue;
		error = wb_entry(vs, e, MAX(start, e->e_start),
		    MIN(end, e->e_end), &failed);
		if (error == 0 && sync)
			error = vnode_sync(container_of(e->e_obj, struct vnode,
			    vn_pager));
		if (first == 0)
			first = error;
	}
	/* pages of the range in transit are the daemon's pageout, its writes
	   on their way to the file without the map lock: they land first */
	if (vs->vs_pd != NULL && wb_transit(vs, start, end))
		pd_wait_writes(vs->vs_pd);
	if (first != 0)
		upvm_log(LOG_ERR, "writing back to a mapped file failed: %s; "
		    "%d pages stay dirty in memory, written again at the next "
		    "sync or pageout", strerror(-first), failed);
	return first;
}

/* ---------------------------------------------------------------- */
/* invalidation */

/* wb_clean_run: the next run of clean file pages in [*vap, end), a unit
   at most; => its length in pages (0: none), *vap past it.  amap locked */
static int
wb_clean_run(struct vm_map_entry *e, vaddr_t *vap, vaddr_t end, vaddr_t *rvap)
{
	struct amap *am = e->e_aref.ar_amap;
	int s = vm_entry_slot(e, *vap), hi = vm_entry_slot(e, end), n = 0;

	for (;; s++) {
		if (s < hi && n < AMAP_UNIT && wb_clean(amap_anon_at(am, s))) {
			if (n++ == 0)
				*rvap = e->e_start + ptoa((vaddr_t)(s -
				    e->e_aref.ar_pageoff));
			continue;
		}
		if (n > 0 || s >= hi)
			break;
	}
	*vap = e->e_start + ptoa((vaddr_t)(s - e->e_aref.ar_pageoff));
	return n;
}

/*
 * wb_hash_unknown: move protocol: hash in place the clean pages of
 * [va, end) whose file page the vnode keeps no hash of (pages are not
 * hashed when read; pdaemon.c), before wb_scan_written shows which were
 * written since they were protected clean: those become dirty, and the
 * others' hashes are the file's.
 * => map write-locked (the pages stay mapped); takes the amap lock.
 */
static void
wb_hash_unknown(struct vm_map_entry *e, vaddr_t va, vaddr_t end)
{
	struct amap *am = e->e_aref.ar_amap;
	voff_t off;

	vm_mutex_lock(&am->am_lock);
	for (; va < end; va += PAGE_SIZE) {
		if (!wb_clean(amap_anon_at(am, vm_entry_slot(e, va))))
			continue;
		off = vm_entry_objoff(e, va);
		if (!pager_known(e->e_obj, off))
			pager_remember(e->e_obj, off, (const void *)va, 1);
	}
	vm_mutex_unlock(&am->am_lock);
}

/* wb_drop: page va (slot s) leaves: the file has it.  => amap locked */
static void
wb_drop(struct vmspace *vs, struct vm_map_entry *e, int s)
{
	anon_unref(amap_unset(e->e_aref.ar_amap, s));
	atomic_fetch_sub(&vs->vs_resident, 1);
}

/*
 * wb_area: where the move protocol takes pages out of reach of stores
 * (wa_scratch, registered like the regions) and the buffer the kernel
 * copies them into for their compare (wa_cmp, not registered: see
 * pmap_peek).  Raw mappings of wa_len bytes each, or NULL.
 */
struct wb_area {
	char		*wa_scratch;
	char		*wa_cmp;
	size_t		 wa_len;
};

/*
 * wb_invalidate_run: drop the n clean pages at va (move protocol: through
 * the scratch area of wa, or wa NULL).  => map write-locked, amap locked.
 * => pages dropped
 */
static long
wb_invalidate_run(struct vmspace *vs, struct vm_map_entry *e, vaddr_t va,
    int n, const struct wb_area *wa)
{
	struct amap *am = e->e_aref.ar_amap;
	char *scratch = wa == NULL ? NULL : wa->wa_scratch;
	const char *copy;
	vsize_t done = 0, back;
	long dropped = 0;
	int s = vm_entry_slot(e, va);

	/* without a move (wp protocol) no write can land meanwhile: a
	   writer faults and waits for the map lock */
	if (scratch == NULL) {
		(void)pmap_dontneed(&vs->vs_pmap, va, ptoa((vsize_t)n));
		for (int k = 0; k < n; k++)
			wb_drop(vs, e, s + k);
		return n;
	}
	if (pmap_move(&vs->vs_pmap, (vaddr_t)scratch, va, ptoa((vsize_t)n),
	    PMAP_DONTWAKE, &done) == -EINVAL && done == 0 &&
	    !(e->e_prot & VM_PROT_WRITE)) {
		/* a read-only mapping, which the move refuses: no write
		   can land there */
		(void)pmap_dontneed(&vs->vs_pmap, va, ptoa((vsize_t)n));
		for (int k = 0; k < n; k++)
			wb_drop(vs, e, s + k);
		return n;
	}
	copy = pmap_peek(&vs->vs_pmap, wa->wa_cmp, (vaddr_t)scratch, done);
	for (int k = 0; k < (int)atop(done); k++) {
		vaddr_t pva = va + ptoa((vaddr_t)k);
		const char *page = scratch + ptoa((size_t)k);
		uint64_t old;

		if (pager_unchanged(e->e_obj, vm_entry_objoff(e, pva),
		    copy + ptoa((size_t)k))) {
			wb_drop(vs, e, s + k);
			dropped++;
			continue;
		}
		/* written after all: back in place, dirty (no uffd-wp) */
		if (pmap_move(&vs->vs_pmap, pva, (vaddr_t)page, PAGE_SIZE,
		    PMAP_DONTWAKE, &back) != 0 && pmap_copy(&vs->vs_pmap, pva,
		    page, PAGE_SIZE, PMAP_DONTWAKE, &back) != 0)
			upvm_log(LOG_ERR, "invalidate: cannot put page %#lx "
			    "back", (unsigned long)pva);
		amap_set_dirty(am, s + k, &old);
	}
	(void)raw_madvise(scratch, ptoa((size_t)n), MADV_DONTNEED);
	return dropped;
}

static void
wb_area_free(struct wb_area *wa)
{
	if (wa->wa_scratch != NULL)
		raw_munmap(wa->wa_scratch, wa->wa_len);	/* unregisters too */
	if (wa->wa_cmp != NULL)
		raw_munmap(wa->wa_cmp, wa->wa_len);
	wa->wa_scratch = wa->wa_cmp = NULL;
}

/* wb_area_make: wa for len bytes.  => 0, or -1 with none made */
static int
wb_area_make(struct vmspace *vs, size_t len, struct wb_area *wa)
{
	wa->wa_len = len;
	wa->wa_scratch = raw_mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	wa->wa_cmp = raw_mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw_mmap_failed(wa->wa_scratch))
		wa->wa_scratch = NULL;
	if (raw_mmap_failed(wa->wa_cmp))
		wa->wa_cmp = NULL;
	if (wa->wa_scratch == NULL || wa->wa_cmp == NULL ||
	    pmap_register(&vs->vs_pmap, (vaddr_t)wa->wa_scratch, len,
	    vs->vs_regmodes) != 0) {
		wb_area_free(wa);
		return -1;
	}
	return 0;
}

long
wb_invalidate(struct vmspace *vs, vaddr_t start, vaddr_t end)
{
	struct vm_map *map = &vs->vs_map;
	size_t slen = ptoa((size_t)AMAP_UNIT);
	struct vm_map_entry *e;
	struct wb_area area, *wa = NULL;
	vaddr_t va, rva = 0;
	long dropped = 0;
	int n;

	VM_ASSERT_WLOCKED(&map->m_lock);
	if (vs->vs_pageout == UPVM_PAGEOUT_MOVE &&
	    wb_area_make(vs, slen, (wa = &area)) != 0) {
		upvm_log(LOG_ERR, "invalidate: no scratch area; the clean "
		    "pages stay");
		return 0;
	}
	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e)) {
		if (e->e_obj == NULL || e->e_aref.ar_amap == NULL)
			continue;
		va = MAX(start, e->e_start);
		if (wa != NULL && (vs->vs_regmodes & PMAP_REG_WP) &&
		    (e->e_prot & VM_PROT_WRITE)) {
			wb_hash_unknown(e, va, MIN(end, e->e_end));
			wb_scan_written(vs, e, va, MIN(end, e->e_end));
		}
		vm_mutex_lock(&e->e_aref.ar_amap->am_lock);
		while ((n = wb_clean_run(e, &va, MIN(end, e->e_end), &rva)) > 0)
			dropped += wb_invalidate_run(vs, e, rva, n, wa);
		vm_mutex_unlock(&e->e_aref.ar_amap->am_lock);
	}
	if (wa != NULL)
		wb_area_free(wa);
	return dropped;
}

bool
wb_transit(struct vmspace *vs, vaddr_t start, vaddr_t end)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	struct anon *an;
	bool busy = false;

	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end &&
	    !busy; e = vm_map_next(map, e)) {
		struct amap *am = e->e_aref.ar_amap;

		if (e->e_obj == NULL || am == NULL)
			continue;
		vm_mutex_lock(&am->am_lock);
		for (int s = vm_entry_slot(e, MAX(start, e->e_start));
		    s < vm_entry_slot(e, MIN(end, e->e_end)) && !busy; s++)
			busy = amap_slot(am, s) == SLOT_BUSY ||
			    ((an = amap_anon_at(am, s)) != NULL &&
			    (an->an_flags & ANON_TRANSIT));
		vm_mutex_unlock(&am->am_lock);
	}
	return busy;
}

/* ---------------------------------------------------------------- */
/* a write(2) beside the mapping */

/*
 * wb_keep_uncovered: the bytes of page va of shared entry e (its data at
 * page, out of reach of stores) outside the file range [off, end), which
 * the page overlaps, go to the file.  => 0 or -errno
 */
static int
wb_keep_uncovered(struct vm_map_entry *e, vaddr_t va, const char *page,
    uint64_t off, uint64_t end)
{
	struct vnode *vn = container_of(e->e_obj, struct vnode, vn_pager);
	uint64_t po = vm_entry_objoff(e, va), pe = po + PAGE_SIZE;
	int error = 0;

	if (po < off)
		error = vnode_write_bytes(vn, po, page, (size_t)(off - po));
	if (error == 0 && end < pe)
		error = vnode_write_bytes(vn, end, page + (end - po),
		    (size_t)(pe - end));
	return error;
}

/* wb_resident: slot s holds a resident page */
static bool
wb_resident(struct amap *am, int s)
{
	struct anon *an = amap_anon_at(am, s);

	return amap_slot(am, s) == SLOT_RESIDENT ||
	    (an != NULL && (an->an_flags & ANON_RESIDENT));
}

/* wb_busy_out: slot s holds a resident page in transit (a pageout) */
static bool
wb_busy_out(struct amap *am, int s)
{
	struct anon *an = amap_anon_at(am, s);

	return an != NULL && (an->an_flags & (ANON_RESIDENT | ANON_TRANSIT)) ==
	    (ANON_RESIDENT | ANON_TRANSIT);
}

/*
 * wb_partial: page va (slot s) of shared entry e lies partly in [off,
 * end): out of reach of stores, its uncovered bytes written unless it is
 * a clean copy.  => 0: it may go (moved to scratch, or still mapped and
 * write-protected); -errno: it stays, mapped, dirty.  => map write-locked,
 * amap unlocked.
 */
static int
wb_partial(struct vmspace *vs, struct vm_map_entry *e, vaddr_t va, int s,
    const struct wb_area *wa, uint64_t off, uint64_t end, bool *movedp)
{
	struct amap *am = e->e_aref.ar_amap;
	char *scratch = wa->wa_scratch;
	const char *page = (const char *)va;
	struct anon *an;
	vsize_t done = 0, back;
	bool clean;
	uint64_t old;
	int error;

	*movedp = false;
	if (scratch != NULL && pmap_move(&vs->vs_pmap, (vaddr_t)scratch, va,
	    PAGE_SIZE, PMAP_DONTWAKE, &done) == 0 && done == PAGE_SIZE) {
		*movedp = true;
		page = pmap_peek(&vs->vs_pmap, wa->wa_cmp, (vaddr_t)scratch,
		    PAGE_SIZE);
	} else if (scratch != NULL && (e->e_prot & VM_PROT_WRITE)) {
		upvm_log(LOG_ERR, "write beside a mapping: cannot take page "
		    "%#lx out of reach (move failed); its bytes outside the "
		    "write are written as they are", (unsigned long)va);
	} else if (vs->vs_regmodes & PMAP_REG_WP) {
		(void)pmap_writeprotect(&vs->vs_pmap, va, PAGE_SIZE, true,
		    true);
	}
	vm_mutex_lock(&am->am_lock);
	an = amap_anon_at(am, s);
	clean = an != NULL && (an->an_flags & ANON_OBJ) && (!*movedp ||
	    pager_unchanged(e->e_obj, vm_entry_objoff(e, va), page));
	vm_mutex_unlock(&am->am_lock);
	if (clean || (error = wb_keep_uncovered(e, va, page, off, end)) == 0)
		return 0;
	STAT_INC(&vs->vs_stats, st_io_errors);
	upvm_log(LOG_ERR, "writing the rest of page %#lx beside a write to "
	    "its file failed: %s; the page stays dirty and its old copy of "
	    "the written bytes may reach the file later", (unsigned long)va,
	    strerror(-error));
	if (*movedp) {
		if (pmap_move(&vs->vs_pmap, va, (vaddr_t)scratch, PAGE_SIZE,
		    PMAP_DONTWAKE, &back) != 0 && pmap_copy(&vs->vs_pmap, va,
		    scratch, PAGE_SIZE, PMAP_DONTWAKE, &back) != 0)
			upvm_log(LOG_ERR, "cannot put page %#lx back",
			    (unsigned long)va);
		(void)raw_madvise(scratch, PAGE_SIZE, MADV_DONTNEED);
	} else if (vs->vs_regmodes & PMAP_REG_WP) {
		(void)pmap_writeprotect(&vs->vs_pmap, va, PAGE_SIZE, false,
		    false);
	}
	vm_mutex_lock(&am->am_lock);
	amap_set_dirty(am, s, &old);	/* a file page: no swap slot */
	vm_mutex_unlock(&am->am_lock);
	return error;
}

/* wb_free: the pages of [va, va + n pages) of entry e leave memory */
static void
wb_free(struct vmspace *vs, struct vm_map_entry *e, vaddr_t va, int n)
{
	(void)pmap_dontneed(&vs->vs_pmap, va, ptoa((vsize_t)n));
	atomic_fetch_sub(&vs->vs_resident, amap_free_range(e->e_aref.ar_amap,
	    vm_entry_slot(e, va), n));
}

bool
wb_overwritten(struct vmspace *vs, struct vm_map_entry *e, vaddr_t lo,
    vaddr_t hi, uint64_t off, uint64_t end)
{
	struct amap *am = e->e_aref.ar_amap;
	struct wb_area wa = { NULL, NULL, 0 };
	bool busy = false, moved, partial, out;
	vaddr_t va, run;
	uint64_t po;

	VM_ASSERT_WLOCKED(&vs->vs_map.m_lock);
	if (am == NULL)
		return false;
	if (!wb_shared(e)) {
		(void)wb_invalidate(vs, lo, hi);
		return wb_transit(vs, lo, hi);
	}
	/* the pages wholly inside the range go in runs; a partial one
	   (the first or the last) alone */
	for (va = lo, run = lo; va <= hi; va += PAGE_SIZE) {
		po = va < hi ? vm_entry_objoff(e, va) : 0;
		partial = va < hi && (po < off || po + PAGE_SIZE > end);
		vm_mutex_lock(&am->am_lock);
		out = va < hi && wb_busy_out(am, vm_entry_slot(e, va));
		vm_mutex_unlock(&am->am_lock);
		busy |= out;
		if (va == hi || out || partial || va - run == ptoa(AMAP_UNIT)) {
			if (va > run)
				wb_free(vs, e, run, (int)atop(va - run));
			run = va + (out || partial ? PAGE_SIZE : 0);
		}
		if (va == hi || out || !partial)
			continue;
		/* only a resident page can hold bytes the file lacks */
		vm_mutex_lock(&am->am_lock);
		partial = wb_resident(am, vm_entry_slot(e, va));
		vm_mutex_unlock(&am->am_lock);
		/* made only when a page needs it: most writes have none */
		if (partial && wa.wa_scratch == NULL &&
		    vs->vs_pageout == UPVM_PAGEOUT_MOVE &&
		    (vs->vs_regmodes & PMAP_REG_WP))
			(void)wb_area_make(vs, PAGE_SIZE, &wa);
		if (!partial || wb_partial(vs, e, va, vm_entry_slot(e, va),
		    &wa, off, end, &moved) == 0) {
			wb_free(vs, e, va, 1);
			if (partial && !moved)
				(void)pmap_wake(&vs->vs_pmap, va, PAGE_SIZE);
			if (partial && moved)
				(void)raw_madvise(wa.wa_scratch, PAGE_SIZE,
				    MADV_DONTNEED);
		}
	}
	wb_area_free(&wa);
	return busy;
}
