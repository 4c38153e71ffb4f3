/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hostmm.c: mmap, munmap, mremap and madvise over managed memory (see
 * hostmm.h).
 *
 * A word on races with the program's other threads.  Every call that
 * changes what is managed holds the map write lock across both the system
 * call and the metadata change, so no fault is resolved and no page paged
 * out in between.  A MAP_FIXED mapping over a managed range forgets the
 * old metadata and replaces the mapping under that one lock, rather than
 * unmapping first: between an munmap and a later mmap another thread's
 * mmap could take the hole.
 *
 * mremap of managed memory: the kernel moves the page tables (what is
 * resident) and drops the range's userfaultfd registration and uffd-wp
 * bits (no EVENT_REMAP); the entries follow to the new address, the range
 * is registered again and its clean pages become dirty, so swapped-out
 * pages fault back in from the new address.  Growth becomes a new managed
 * entry; a shrunk tail is forgotten.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "amap.h"
#include "compat.h"
#include "hostmm.h"
#include "log.h"
#include "pdaemon.h"
#include "region.h"
#include "sys.h"
#include "vmspace.h"
#include "vnode.h"
#include "writeback.h"

static atomic_bool hostmm_on;
static atomic_bool hostmm_wp;	/* the wp protocol pages: reads announce
				   direct I/O (hostmm_dio_begin) */

void
hostmm_enable(void)
{
	struct vmspace *vs;

	if ((vs = vmspace_enter()) != NULL) {
		atomic_store(&hostmm_wp, vs->vs_pageout == UPVM_PAGEOUT_WP);
		vmspace_exit();
	}
	atomic_store(&hostmm_on, true);
}

/* the vmspace to manage these calls with, or NULL: pass them through */
static struct vmspace *
hostmm_enter(void)
{
	return atomic_load_explicit(&hostmm_on, memory_order_relaxed) ?
	    vmspace_enter() : NULL;
}

static void *
sys_failed(int error)
{
	errno = -error;
	return MAP_FAILED;
}

static int
sys_result(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

/*
 * file_manageable: with files on (UPVM_FILES), the vnode of a mapping of
 * a regular file that upvm takes: large, readable, not executable, not
 * special, an offset the kernel would take, and a descriptor whose access
 * allows it (else the kernel answers, as it would).  NULL: not ours.
 */
static struct vnode *
file_manageable(struct vmspace *vs, size_t len, int prot, int flags, int fd,
    off_t off)
{
	int type = flags & MAP_TYPE, fl;
	struct vnode *vn;
	struct stat st;

	if (!vs->vs_files || fd < 0 || (flags & MAP_ANONYMOUS) ||
	    (type != MAP_SHARED && type != MAP_PRIVATE &&
	    type != MAP_SHARED_VALIDATE) || (flags & (MAP_HUGETLB |
	    MAP_STACK | MAP_GROWSDOWN | MAP_LOCKED | MAP_POPULATE)) ||
	    (prot & PROT_EXEC) || !(prot & PROT_READ) || off < 0 ||
	    !page_aligned((vaddr_t)off) || round_page(len) < vs->vs_threshold ||
	    len > VM_MAX_REGION)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (fl = fcntl(fd, F_GETFL)) < 0 || (fl & O_ACCMODE) == O_WRONLY ||
	    (type != MAP_PRIVATE && (prot & PROT_WRITE) &&
	    (fl & O_ACCMODE) != O_RDWR))
		return NULL;
	/* shared on a read-write descriptor: writable, for an mprotect */
	if (vnode_find(fd, type != MAP_PRIVATE && (fl & O_ACCMODE) == O_RDWR ?
	    VNODE_WRITABLE : 0, &vn) != 0)
		return NULL;
	return vn;
}

/* a mapping upvm takes: anonymous, private, large, not special */
static bool
manageable(struct vmspace *vs, size_t len, int prot, int flags, int fd)
{
	return fd == -1 && (flags & MAP_ANONYMOUS) &&
	    (flags & MAP_TYPE) == MAP_PRIVATE &&
	    !(flags & (MAP_HUGETLB | MAP_STACK | MAP_GROWSDOWN | MAP_LOCKED |
	    MAP_POPULATE)) && !(prot & PROT_EXEC) &&
	    round_page(len) >= vs->vs_threshold && len <= VM_MAX_REGION;
}

void *
hostmm_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct vmspace *vs;
	struct vm_map_entry *e;
	vaddr_t start = (vaddr_t)addr, end = start + round_page(len);
	bool manage, fixed = (flags & MAP_FIXED) != 0;
	struct vnode *vn = NULL;
	int error;
	void *p;

	if ((vs = hostmm_enter()) == NULL)
		return raw_mmap_failed(p = raw_mmap(addr, len, prot, flags,
		    fd, off)) ? sys_failed((int)(intptr_t)p) : p;
	manage = manageable(vs, len, prot, flags, fd) ||
	    (vn = file_manageable(vs, len, prot, flags, fd, off)) != NULL;
	if (!manage && !fixed) {
		vmspace_exit();
		return raw_mmap_failed(p = raw_mmap(addr, len, prot, flags,
		    fd, off)) ? sys_failed((int)(intptr_t)p) : p;
	}
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	error = 0;
	/* a shared file's pages replaced reach the file first */
	if (fixed && page_aligned(start) && end > start &&
	    region_managed(&vs->vs_map, start, end) &&
	    (error = wb_range(vs, start, end, false)) == 0)
		error = region_remove(vs, start, end, false);
	if (error == 0 && manage) {
		error = region_create(vs, start, round_page(len), prot, flags,
		    VM_ADV_NORMAL, &e);
		if (error == 0 && vn != NULL) {
			region_attach_file(e, vn, (voff_t)off,
			    (flags & MAP_TYPE) != MAP_PRIVATE,
			    !(prot & PROT_WRITE));
			vn = NULL;
		}
		if (error == 0 && (error = vm_map_insert(&vs->vs_map, e)) != 0) {
			/* the kernel reused a range unmapped behind our back */
			upvm_log(LOG_ERR, "mmap: new region %#lx overlaps one "
			    "upvm still manages", (unsigned long)e->e_start);
			raw_munmap((void *)e->e_start, e->e_end - e->e_start);
			vm_map_entry_free(&vs->vs_map, e);
			error = -ENOMEM;
		}
		p = error == 0 ? (void *)e->e_start : NULL;
	} else if (error == 0) {
		p = raw_mmap(addr, len, prot, flags, fd, off);
		if (raw_mmap_failed(p))
			error = (int)(intptr_t)p;
	}
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	if (vn != NULL)
		pager_unref(&vn->vn_pager);
	return error != 0 ? sys_failed(error) : p;
}

int
hostmm_munmap(void *addr, size_t len)
{
	vaddr_t start = (vaddr_t)addr, end = start + round_page(len);
	struct vmspace *vs;
	int error;

	if (!page_aligned(start) || len == 0 || end < start ||
	    (vs = hostmm_enter()) == NULL)
		return sys_result(raw_munmap(addr, len));
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	/* shared file pages reach the file first; if they cannot, nothing
	   is unmapped (the data stays, the error says why) */
	if (!region_managed(&vs->vs_map, start, end))
		error = raw_munmap(addr, len);
	else if ((error = wb_range(vs, start, end, false)) == 0)
		error = region_remove(vs, start, end, true);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	return sys_result(error);
}

/*
 * each_piece: call fn on the managed (true) and unmanaged (false) pieces
 * of [start, end) in order.  => map locked.
 */
static void
each_piece(struct vm_map *map, vaddr_t start, vaddr_t end,
    void (*fn)(vaddr_t, vaddr_t, bool, void *), void *arg)
{
	struct vm_map_entry *e;
	vaddr_t va = start;

	while (va < end) {
		if ((e = vm_map_first_ge(map, va)) == NULL ||
		    e->e_start >= end) {
			fn(va, end, false, arg);
			return;
		}
		if (e->e_start > va)
			fn(va, e->e_start, false, arg);
		va = MAX(va, e->e_start);
		fn(va, MIN(end, e->e_end), true, arg);
		va = MIN(end, e->e_end);
	}
}

struct advise_arg {
	struct vmspace	*aa_vs;
	int		 aa_advice;
	int		 aa_error;	/* the first raw madvise error */
};

/*
 * MADV_REMOVE, as the kernel does it: only a shared file mapping may free
 * its backing store (-EINVAL for anonymous memory, -EACCES for a private
 * file mapping, nothing changed: remove_allowed checks first).  The pages
 * go without write-back, then the file gets a hole.  => map write-locked.
 */
static int
remove_allowed(struct vm_map *map, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;

	for (e = vm_map_first_ge(map, start); e != NULL && e->e_start < end;
	    e = vm_map_next(map, e)) {
		if (e->e_obj == NULL)
			return -EINVAL;
		if (e->e_etype & VM_ET_COPYONWRITE)
			return -EACCES;
	}
	return 0;
}

static void
advise_remove(struct advise_arg *aa, vaddr_t lo, vaddr_t hi)
{
	struct vm_map_entry *e;
	vaddr_t a, b;
	int error;

	region_dontneed(aa->aa_vs, lo, hi);
	for (e = vm_map_first_ge(&aa->aa_vs->vs_map, lo); e != NULL &&
	    e->e_start < hi; e = vm_map_next(&aa->aa_vs->vs_map, e)) {
		a = MAX(lo, e->e_start);
		b = MIN(hi, e->e_end);
		error = vnode_punch(container_of(e->e_obj, struct vnode,
		    vn_pager), vm_entry_objoff(e, a), b - a);
		if (error != 0 && aa->aa_error == 0)
			aa->aa_error = error;
	}
}

static void
advise_piece(vaddr_t lo, vaddr_t hi, bool managed, void *arg)
{
	struct advise_arg *aa = arg;
	int error;

	if (managed) {
		/* a shared file's pages stay in the file, as the kernel's
		   page cache keeps them */
		if (aa->aa_advice == MADV_REMOVE)
			advise_remove(aa, lo, hi);
		else if ((aa->aa_advice == MADV_DONTNEED || aa->aa_advice ==
		    MADV_FREE) && wb_range(aa->aa_vs, lo, hi, false) == 0)
			region_dontneed(aa->aa_vs, lo, hi);
		return;
	}
	error = raw_madvise((void *)lo, hi - lo, aa->aa_advice);
	if (aa->aa_error == 0)
		aa->aa_error = error;
}

/*
 * advise_thp: MADV_HUGEPAGE and MADV_NOHUGEPAGE reach the kernel for the
 * unmanaged parts only.  Managed memory stays NOHUGEPAGE (pmap_register
 * says why), all of it: a region whose pieces differed would be several
 * VMAs to the kernel, and mremap refuses a range over several (EFAULT
 * where the program, which advised the whole of it, expects success).
 */
static void
thp_piece(vaddr_t lo, vaddr_t hi, bool managed, void *arg)
{
	struct advise_arg *aa = arg;
	int error;

	if (!managed && (error = raw_madvise((void *)lo, hi - lo,
	    aa->aa_advice)) != 0 && aa->aa_error == 0)
		aa->aa_error = error;
}

static int
advise_thp(vaddr_t start, vaddr_t end, int advice)
{
	struct advise_arg aa = { .aa_advice = advice };
	struct vmspace *vs;

	if (!page_aligned(start) || end < start ||
	    (vs = hostmm_enter()) == NULL)
		return raw_madvise((void *)start, end - start, advice);
	vm_rwlock_rdlock(&vs->vs_map.m_lock);
	each_piece(&vs->vs_map, start, end, thp_piece, &aa);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	return aa.aa_error;
}

/*
 * advise_inherit: what a child of fork gets of a range (the kernel's
 * VM_DONTCOPY and VM_WIPEONFORK), kept in the entries too, as UVM's
 * inheritance: the child's runtime forgets what the kernel did not give it
 * (region_uninherit).
 */
static int
advise_inherit(vaddr_t start, vaddr_t end, int advice)
{
	struct vmspace *vs;
	int error;

	if ((error = raw_madvise((void *)start, end - start, advice)) != 0 ||
	    (vs = hostmm_enter()) == NULL)
		return error;
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	if (region_managed(&vs->vs_map, start, end))
		error = region_fork_advice(&vs->vs_map, start, end, advice);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	return error;
}

/*
 * hostmm_mprotect: the kernel's mprotect, under the map write lock when
 * it touches managed ranges, whose entries learn the new protection: the
 * pageout daemon, which holds the map lock while it takes pages out,
 * needs to know that a mapping cannot be written while it copies its
 * pages (region_protect).  The kernel does the checking (EACCES, ENOMEM
 * for unmapped pages, pkeys).
 */
int
hostmm_mprotect(void *addr, size_t len, int prot)
{
	vaddr_t start = (vaddr_t)addr, end = start + round_page(len);
	struct vmspace *vs;
	int error, rerror;

	if (!page_aligned(start) || end <= start ||
	    (vs = hostmm_enter()) == NULL)
		return sys_result(raw_mprotect(addr, len, prot));
	/* most calls are about the program's own small mappings: the read
	   lock keeps them unmanaged while the kernel changes them */
	vm_rwlock_rdlock(&vs->vs_map.m_lock);
	if (!region_managed(&vs->vs_map, start, end)) {
		error = raw_mprotect(addr, len, prot);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		vmspace_exit();
		return sys_result(error);
	}
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	if ((error = raw_mprotect(addr, len, prot)) == 0 &&
	    region_managed(&vs->vs_map, start, end) &&
	    (rerror = region_protect(&vs->vs_map, start, end, prot)) != 0)
		upvm_log(LOG_WARN, "mprotect: upvm cannot record the new "
		    "protection of [%#lx, %#lx): %s; if it is read-only, its "
		    "dirty pages may stay resident", (unsigned long)start,
		    (unsigned long)end, strerror(-rerror));
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	return sys_result(error);
}

int
hostmm_madvise(void *addr, size_t len, int advice)
{
	vaddr_t start = (vaddr_t)addr, end = start + round_page(len);
	struct advise_arg aa = { .aa_advice = advice };
	struct vmspace *vs;
	int pattern = -1, error;

	switch (advice) {
	case MADV_NORMAL:	pattern = VM_ADV_NORMAL; break;
	case MADV_SEQUENTIAL:	pattern = VM_ADV_SEQUENTIAL; break;
	case MADV_RANDOM:	pattern = VM_ADV_RANDOM; break;
	case MADV_DONTNEED: case MADV_FREE: case MADV_REMOVE:
	case MADV_WILLNEED:
		break;
	case MADV_HUGEPAGE: case MADV_NOHUGEPAGE:
		return sys_result(advise_thp(start, end, advice));
	case MADV_DONTFORK: case MADV_DOFORK:
	case MADV_WIPEONFORK: case MADV_KEEPONFORK:
		return sys_result(advise_inherit(start, end, advice));
	default:
		/* the kernel's business (HUGEPAGE, DONTDUMP, ...) */
		return sys_result(raw_madvise(addr, len, advice));
	}
	if (!page_aligned(start) || end < start ||
	    (vs = hostmm_enter()) == NULL)
		return sys_result(raw_madvise(addr, len, advice));
	aa.aa_vs = vs;
	if (advice == MADV_WILLNEED) {
		/* page in what is managed; the kernel reads ahead the rest */
		vm_rwlock_rdlock(&vs->vs_map.m_lock);
		bool managed = region_managed(&vs->vs_map, start, end);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		if (managed)
			(void)fault_populate(vs, start, end, false);
		vmspace_exit();
		return managed ? 0 : sys_result(raw_madvise(addr, len,
		    advice));
	}
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	/* as the kernel: locked pages cannot be dropped */
	if (pattern < 0 && region_any_wired(&vs->vs_map, start, end)) {
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		vmspace_exit();
		return sys_result(-EINVAL);
	}
	error = advice == MADV_REMOVE ? remove_allowed(&vs->vs_map, start,
	    end) : 0;
	if (error == 0 && pattern >= 0)
		error = region_clip(&vs->vs_map, start, end);
	if (error == 0 && pattern >= 0)
		region_pattern(&vs->vs_map, start, end, pattern);
	if (error == 0)
		each_piece(&vs->vs_map, start, end, advise_piece, &aa);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	return sys_result(error != 0 ? error : aa.aa_error);
}

/* msync of the managed pieces: write back (and invalidate) */
struct msync_arg {
	struct vmspace	*ma_vs;
	int		 ma_flags;
	int		 ma_error;
};

static void
msync_piece(vaddr_t lo, vaddr_t hi, bool managed, void *arg)
{
	struct msync_arg *ma = arg;
	int error;

	if (managed) {
		error = wb_range(ma->ma_vs, lo, hi, ma->ma_flags & MS_SYNC);
		if (error == 0 && (ma->ma_flags & MS_INVALIDATE))
			(void)wb_invalidate(ma->ma_vs, lo, hi);
	} else {
		error = raw_msync((void *)lo, hi - lo, ma->ma_flags);
	}
	if (ma->ma_error == 0)
		ma->ma_error = error;
}

int
hostmm_msync(void *addr, size_t len, int flags)
{
	vaddr_t start = (vaddr_t)addr, end = start + round_page(len);
	struct msync_arg ma = { .ma_flags = flags };
	struct vmspace *vs;

	if (!page_aligned(start) || end < start ||
	    (flags & (MS_SYNC | MS_ASYNC)) == (MS_SYNC | MS_ASYNC) ||
	    (vs = hostmm_enter()) == NULL)
		return sys_result(raw_msync(addr, len, flags));
	ma.ma_vs = vs;
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	each_piece(&vs->vs_map, start, end, msync_piece, &ma);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
	return sys_result(ma.ma_error);
}

int
hostmm_dio_begin(int fd, uintptr_t lo, uintptr_t hi)
{
	struct vmspace *vs;
	int flags, token = HOSTMM_DIO_NONE;

	/* every read comes here: the flag spares them upvm's lock */
	if (hi <= lo || !atomic_load_explicit(&hostmm_wp,
	    memory_order_relaxed) || (vs = hostmm_enter()) == NULL)
		return HOSTMM_DIO_NONE;
	if (vs->vs_pageout == UPVM_PAGEOUT_WP &&
	    (flags = (int)syscall(SYS_fcntl, fd, F_GETFL)) >= 0 &&
	    (flags & O_DIRECT))
		token = dio_begin(&vs->vs_dio, trunc_page(lo),
		    round_page(hi));
	vmspace_exit();
	return token;
}

void
hostmm_dio_end(int token, uintptr_t lo, uintptr_t hi)
{
	struct vmspace *vs;

	if (token == HOSTMM_DIO_NONE || (vs = hostmm_enter()) == NULL)
		return;
	dio_end(&vs->vs_dio, token, trunc_page(lo), round_page(hi));
	vmspace_exit();
}

bool
hostmm_file_io_wanted(int fd)
{
	return fd >= 0 && atomic_load_explicit(&hostmm_on,
	    memory_order_relaxed) && vnode_any();
}

/*
 * file_va_range: the part of e that maps [off, off + len) of its object,
 * pages rounded outward; false when none.
 */
static bool
file_va_range(const struct vm_map_entry *e, uint64_t off, uint64_t len,
    vaddr_t *lop, vaddr_t *hip)
{
	uint64_t lo = MAX(off, e->e_offset), hi = MIN(off + len,
	    e->e_offset + (e->e_end - e->e_start));

	if (lo >= hi)
		return false;
	*lop = e->e_start + trunc_page(lo - e->e_offset);
	*hip = MIN(e->e_end, e->e_start + round_page(hi - e->e_offset));
	return true;
}

/* file_entry_range: e maps the file (dev, ino), and file_va_range */
static bool
file_entry_range(const struct vm_map_entry *e, dev_t dev, ino_t ino,
    uint64_t off, uint64_t len, vaddr_t *lop, vaddr_t *hip)
{
	const struct vnode *vn;

	if (e->e_obj == NULL)
		return false;
	vn = container_of(e->e_obj, struct vnode, vn_pager);
	return vn->vn_dev == dev && vn->vn_ino == ino &&
	    file_va_range(e, off, len, lop, hip);
}

bool
hostmm_files_mapped(void)
{
	return vnode_any();
}

void
hostmm_truncated(dev_t dev, ino_t ino, uint64_t size)
{
	uint64_t end = round_page(size);
	struct vm_map_entry *e;
	struct vmspace *vs;
	vaddr_t lo, hi;

	if (!vnode_mapped(dev, ino) || (vs = vmspace_enter()) == NULL)
		return;
	/* the size needs no refresh here: faults and writes ask for it */
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL;
	    e = vm_map_next(&vs->vs_map, e))
		if (file_entry_range(e, dev, ino, end, UINT64_MAX - end, &lo,
		    &hi))
			region_dontneed(vs, lo, hi);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
}

/*
 * file_io_pass: one pass of hostmm_file_io over the entries of the file
 * (dev, ino).  Before a read or write, the dirty pages over the range are
 * written back, and the pass is busy while a page there is in transit (a
 * pageout's write still in flight would land after the call's and put
 * old data over it).  After a write, the pages over the range leave
 * (wb_overwritten); busy while one being paged out stays.
 * => map write-locked.
 */
static bool
file_io_pass(struct vmspace *vs, const struct stat *st, uint64_t off,
    uint64_t len, bool after_write)
{
	struct vm_map_entry *e;
	vaddr_t lo, hi;
	bool busy = false;

	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL;
	    e = vm_map_next(&vs->vs_map, e)) {
		if (!file_entry_range(e, st->st_dev, st->st_ino, off, len, &lo,
		    &hi))
			continue;
		if (after_write) {
			busy |= wb_overwritten(vs, e, lo, hi, off, off + len);
		} else {
			(void)wb_range(vs, lo, hi, false);
			busy |= wb_transit(vs, lo, hi);
		}
	}
	return busy;
}

void
hostmm_file_io(int fd, uint64_t off, uint64_t len, bool after_write)
{
	struct vmspace *vs;
	struct stat st;
	bool busy;

	if (len == 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !vnode_mapped(st.st_dev, st.st_ino) ||
	    (vs = hostmm_enter()) == NULL)
		return;
	/* a page in transit is waited for (file_io_pass); its owner needs
	   the map lock to finish */
	for (int tries = 0;; tries++) {
		vm_rwlock_wrlock(&vs->vs_map.m_lock);
		busy = file_io_pass(vs, &st, off, len, after_write);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		if (!busy)
			break;
		if (tries == 10000)
			upvm_log(LOG_WARN, "a %s of a mapped file has waited "
			    "1 s for paging I/O over its range; still waiting",
			    after_write ? "write" : "read or write");
		usleep(tries < 100 ? 10 : 100);
	}
	vmspace_exit();
}

void
hostmm_exit_bye(void)
{
	struct vmspace *vs;

	if ((vs = hostmm_enter()) == NULL)
		return;
	dlink_bye(vs);
	vmspace_exit();
}

void
hostmm_exit_writeback(void)
{
	struct vmspace *vs;

	if ((vs = hostmm_enter()) == NULL)
		return;
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	(void)wb_range(vs, 0, VM_MAX_ADDRESS, true);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vmspace_exit();
}

/*
 * mremap_grow_file: the growth adopted at va follows a file entry: it
 * maps the file on from where that entry ends.  => map write-locked.
 */
static void
mremap_grow_file(struct vmspace *vs, vaddr_t va)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e = vm_map_lookup(map, va), *prev;

	if (e == NULL || e->e_obj != NULL || e->e_start != va ||
	    (prev = vm_map_prev(map, e)) == NULL || prev->e_end != va ||
	    prev->e_obj == NULL)
		return;
	pager_ref(prev->e_obj);
	e->e_obj = prev->e_obj;
	e->e_offset = prev->e_offset + (prev->e_end - prev->e_start);
	e->e_etype = prev->e_etype;
	e->e_prot = prev->e_prot;
	(void)vm_map_merge(map, e);
}

/* whether [start, end) holds a file entry.  => map locked */
static bool
mremap_has_file(struct vmspace *vs, vaddr_t start, vaddr_t end)
{
	struct vm_map_entry *e;

	for (e = vm_map_first_ge(&vs->vs_map, start); e != NULL &&
	    e->e_start < end; e = vm_map_next(&vs->vs_map, e))
		if (e->e_obj != NULL)
			return true;
	return false;
}

static void (*_Atomic hostmm_move_hook)(void *, size_t);

void
hostmm_inject_move_hook(void (*hook)(void *, size_t))
{
	atomic_store(&hostmm_move_hook, hook);
}

/*
 * thp_off: no transparent huge page for the process from now on (the
 * moving range's HUGEPAGE advice must not make one).  => what thp_restore
 * needs, or -1: it cannot be done (the range is then not isolated).
 */
static int
thp_off(void)
{
	int was = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);

	if (was < 0 || was == 1)	/* 1: off already, completely */
		return was;
	return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 ? was : -1;
}

/* thp_restore: the process's huge-page setting as before thp_off */
static void
thp_restore(int was)
{
	if (was == 0)
		(void)prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	else if (was > 0 && (was & PR_THP_DISABLE_EXCEPT_ADVISED))
		(void)prctl(PR_SET_THP_DISABLE, 1,
		    PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0);
}

/*
 * mremap_managed: mremap a wholly managed range and keep it managed: the
 * kernel moves the pages it has, the metadata follows (the swapped-out
 * pages with it), growth is adopted (wired and inherited by a child as
 * the range was), a shrunk tail forgotten.
 *
 * A locked range that grows: the kernel faults the growth in before
 * mremap returns, and those faults need the map lock held here.  So the
 * range is unlocked in the kernel first (its pages are resident: wired
 * pages never leave) and *relockp asks the caller to mlock the result
 * again once the map is unlocked.
 *
 * A moving range is kept apart from its neighbors: the kernel merges a
 * moved VMA into a compatible neighbor and then drops the registration
 * of the merged VMA (no EVENT_REMAP), the neighbor's with it, and another
 * thread's fault there would get zeros from the kernel before
 * region_move_neighbors registered it again.  Managed VMAs are all
 * NOHUGEPAGE (pmap_register), so the range is made HUGEPAGE for the
 * move: no neighbor is compatible, and registering it at its new place
 * makes it NOHUGEPAGE again.  A kernel without THP refuses the advice:
 * then region_move_neighbors mends what the merge dropped, as before.
 * Meanwhile the process makes no huge page at all (PR_SET_THP_DISABLE,
 * thp_off): HUGEPAGE is also what invites khugepaged, which the advice
 * wakes, and which collapses a 2 MiB block of the moved range while it is
 * unregistered, filling its absent (swapped-out) pages with zeros (seen:
 * 256 pages of zeros after one mremap in 50 under ASan).
 * => map write-locked.  Returns the new address, or -errno in *errorp.
 */
static vaddr_t
mremap_managed(struct vmspace *vs, vaddr_t start, size_t oldlen,
    size_t newlen, int flags, vaddr_t newaddr, int *errorp, bool *relockp)
{
	vaddr_t end = start + round_page(oldlen), keep;
	int how = region_wired_how(&vs->vs_map, start, end);
	struct vm_map_entry *first = vm_map_first_ge(&vs->vs_map, start);
	int inh = first != NULL ? first->e_inherit : VM_INH_COPY;
	void (*hook)(void *, size_t);
	bool isolated;
	int thp = -1;
	long r;
	int error;

	keep = MIN(round_page(oldlen), round_page(newlen));
	if ((flags & MREMAP_DONTUNMAP) && mremap_has_file(vs, start, end)) {
		upvm_log(LOG_WARN, "mremap: MREMAP_DONTUNMAP of a file mapping "
		    "upvm manages is not supported; map it anew instead");
		*errorp = -EINVAL;
		return 0;
	}
	/* a shrunk tail of a shared file goes back to the file first */
	if ((error = region_clip(&vs->vs_map, start, end)) != 0 ||
	    (error = wb_range(vs, start + keep, end, false)) != 0) {
		*errorp = error;
		return 0;
	}
	*relockp = how == REGION_WIRED && round_page(newlen) > keep;
	if (*relockp && syscall(SYS_munlock, start, oldlen) != 0) {
		*errorp = -errno;
		*relockp = false;
		return 0;
	}
	/* kept apart from its neighbors while it moves (see above) */
	isolated = (flags & MREMAP_MAYMOVE) && (thp = thp_off()) >= 0 &&
	    raw_madvise((void *)start, end - start, MADV_HUGEPAGE) == 0;
	r = syscall(SYS_mremap, start, oldlen, newlen, flags, newaddr);
	if (r == -1)
		*errorp = -errno;
	if (isolated && (r == -1 || (vaddr_t)r == start ||
	    (flags & MREMAP_DONTUNMAP)))
		(void)raw_madvise((void *)start, (vaddr_t)r == start ?
		    round_page(newlen) : end - start, MADV_NOHUGEPAGE);
	if (r == -1) {
		thp_restore(thp);
		return 0;
	}
	if ((vaddr_t)r != start && (hook = atomic_load(&hostmm_move_hook)) !=
	    NULL)
		hook((void *)r, round_page(newlen));
	*errorp = 0;
	if (keep < round_page(oldlen))
		(void)region_remove(vs, start + keep, end, false);
	if ((vaddr_t)r != start)
		*errorp = region_move(vs, start, start + keep, (vaddr_t)r);
	/* MREMAP_DONTUNMAP leaves the old range mapped, empty and still
	   registered: it is managed anew (zeros), or given back to the
	   kernel, never left registered with no entry (its faults would
	   be woken forever) */
	if (*errorp == 0 && (flags & MREMAP_DONTUNMAP) &&
	    (vaddr_t)r != start) {
		if (region_adopt(vs, start, end) != 0)
			(void)pmap_unregister(&vs->vs_pmap, start,
			    end - start);
		else
			(void)region_inherit(&vs->vs_map, start, end, inh);
	}
	if (*errorp == 0 && round_page(newlen) > keep &&
	    (*errorp = region_adopt(vs, (vaddr_t)r + keep, (vaddr_t)r +
	    round_page(newlen))) != 0)
		upvm_log(LOG_WARN, "mremap: the new %zu bytes at %#lx are not "
		    "managed: %s", (size_t)(round_page(newlen) - keep),
		    (unsigned long)(r + keep), strerror(-*errorp));
	else if (round_page(newlen) > keep)
		mremap_grow_file(vs, (vaddr_t)r + keep);
	if ((vaddr_t)r != start && !isolated) {
		region_move_neighbors(vs, (vaddr_t)r, (vaddr_t)r +
		    round_page(newlen));
		region_move_neighbors(vs, start, end);
	}
	/* the kernel's VMA grew with its flags: so does the region */
	if (how != 0 && round_page(newlen) > keep)
		(void)region_wire(vs, (vaddr_t)r, (vaddr_t)r +
		    round_page(newlen), how);
	if (inh != VM_INH_COPY && round_page(newlen) > keep)
		(void)region_inherit(&vs->vs_map, (vaddr_t)r + keep,
		    (vaddr_t)r + round_page(newlen), inh);
	thp_restore(thp);	/* registered again: NOHUGEPAGE */
	*errorp = 0;	/* the data is where the program wants it */
	return (vaddr_t)r;
}

void *
hostmm_mremap(void *old, size_t oldlen, size_t newlen, int flags,
    void *newaddr)
{
	vaddr_t start = (vaddr_t)old, end = start + round_page(oldlen);
	vaddr_t nstart = (vaddr_t)newaddr, nend = nstart + round_page(newlen);
	struct vmspace *vs;
	vaddr_t r = 0;
	bool relock = false;
	int error = 0;

	if (!page_aligned(start) || end <= start ||
	    (vs = hostmm_enter()) == NULL)
		return (void *)syscall(SYS_mremap, old, oldlen, newlen, flags,
		    newaddr);
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	if ((flags & MREMAP_FIXED) && page_aligned(nstart) && nend > nstart &&
	    region_managed(&vs->vs_map, nstart, nend) &&
	    (error = wb_range(vs, nstart, nend, false)) == 0)
		error = region_remove(vs, nstart, nend, false);
	if (error == 0 && vm_map_range_managed(&vs->vs_map, start, end)) {
		r = mremap_managed(vs, start, oldlen, newlen, flags, nstart,
		    &error, &relock);
	} else if (error == 0 && region_managed(&vs->vs_map, start, end)) {
		/* partly managed: the kernel refuses a range over two
		   mappings anyway */
		error = -EFAULT;
	} else if (error == 0) {
		r = (vaddr_t)syscall(SYS_mremap, old, oldlen, newlen, flags,
		    newaddr);
		error = (long)r == -1 ? -errno : 0;
	}
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	/* locked again, the growth faulted in by the kernel through upvm (or
	   the old range, when mremap failed); ENOMEM: locked, but a page
	   could not be faulted in (PROT_NONE), as the kernel's own mremap */
	if (relock && syscall(SYS_mlock2, error != 0 ? start : r, error != 0 ?
	    oldlen : newlen, 0) != 0 && errno != ENOMEM)
		upvm_log(LOG_WARN, "mremap: cannot lock the remapped range "
		    "again: %s", strerror(errno));
	vmspace_exit();
	return error != 0 ? sys_failed(error) : (void *)r;
}

/*
 * hostmm_lock: (un)wire the managed parts of the range and (un)lock it in
 * the kernel.  Wiring comes first on mlock, so that the daemon leaves the
 * pages alone and the budget stops counting them before the kernel faults
 * them all in; unwiring comes after munlock.
 */
static int
hostmm_lock(const void *addr, size_t len, unsigned flags, bool lock)
{
	vaddr_t start = trunc_page((vaddr_t)addr);
	vaddr_t end = round_page((vaddr_t)addr + len);
	struct vmspace *vs;
	bool managed;
	long r;
	int error = 0;

	if (end <= start || (vs = hostmm_enter()) == NULL)
		return lock ? sys_result(syscall(SYS_mlock2, addr, len, flags) ?
		    -errno : 0) : sys_result(syscall(SYS_munlock, addr, len) ?
		    -errno : 0);
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	managed = region_managed(&vs->vs_map, start, end);
	if (managed && lock)
		error = region_wire(vs, start, end, (flags & MLOCK_ONFAULT) ?
		    REGION_WIRED_ONFAULT : REGION_WIRED);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	if (error == 0) {
		r = lock ? syscall(SYS_mlock2, addr, len, flags) :
		    syscall(SYS_munlock, addr, len);
		error = r != 0 ? -errno : 0;
	}
	if (managed && (!lock || error != 0)) {
		vm_rwlock_wrlock(&vs->vs_map.m_lock);
		(void)region_wire(vs, start, end, 0);
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		if (vs->vs_pd != NULL)
			pd_kick(vs->vs_pd);	/* over the budget again? */
	}
	vmspace_exit();
	return sys_result(error);
}

int
hostmm_mlock(const void *addr, size_t len, unsigned flags)
{
	return hostmm_lock(addr, len, flags, true);
}

int
hostmm_munlock(const void *addr, size_t len)
{
	return hostmm_lock(addr, len, 0, false);
}
