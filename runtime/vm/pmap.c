/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pmap.c: userfaultfd and page-table operations on managed ranges.
 *
 * Nothing else in upvm issues UFFDIO_* ioctls, madvise or PAGEMAP_SCAN on
 * managed memory (DESIGN invariant 3).  Every wrapper returns 0 or -errno
 * and never touches errno's value for its caller.
 *
 * A word on partial resolutions.  UFFDIO_COPY (and ZEROPAGE, MOVE, POISON)
 * resolve page after page; when one page fails after others succeeded, the
 * ioctl returns -EAGAIN with the bytes done in the struct, having woken the
 * done part.  The wrappers loop over such partial results, so that callers
 * see either success for the whole range or the error of the first page
 * that failed, at dst + *donep.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "pmap.h"
#include "sys.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW	_IO(0xAA, 0x00)
#endif

/*
 * uffd_open: a new userfaultfd; through /dev/userfaultfd when the syscall
 * is refused to unprivileged users (vm.unprivileged_userfaultfd=0).
 */
static int
uffd_open(void)
{
	int fd, devfd, error;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	error = -errno;
	devfd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (devfd < 0)
		return error;
	fd = ioctl(devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		fd = -errno;
	close(devfd);
	return fd < 0 ? error : fd;
}

int
pmap_probe(uint64_t *featuresp)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd, error = 0;

	if ((fd = uffd_open()) < 0)
		return fd;
	if (ioctl(fd, UFFDIO_API, &api) != 0)
		error = -errno;
	else
		*featuresp = api.features;
	close(fd);
	return error;
}

/*
 * pagemap_scan_works: a dry PAGEMAP_SCAN over one page of our own stack:
 * kernels before 6.7 answer ENOTTY.
 */
static bool
pagemap_scan_works(int fd)
{
	struct page_region reg;
	struct pm_scan_arg arg;
	vaddr_t va = trunc_page((vaddr_t)&reg);

	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.start = va;
	arg.end = va + PAGE_SIZE;
	arg.vec = (uintptr_t)&reg;
	arg.vec_len = 1;
	arg.category_anyof_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	return ioctl(fd, PAGEMAP_SCAN, &arg) >= 0;
}

int
pmap_init(struct pmap *pm, uint64_t want)
{
	struct uffdio_api api = { .api = UFFD_API };
	uint64_t supported;
	int error, fd;

	if ((error = pmap_probe(&supported)) != 0)
		return error;
	if ((fd = uffd_open()) < 0)
		return fd;
	api.features = want & supported;
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		error = -errno;
		close(fd);
		return error;
	}
	pm->pm_uffd = fd;
	pm->pm_supported = supported;
	pm->pm_features = want & supported;
	pm->pm_ioctls = 0;
	atomic_init(&pm->pm_move_recounts, 0);
	atomic_init(&pm->pm_nopeek, false);
	pm->pm_pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	pm->pm_pagemap_scan = pm->pm_pagemap_fd >= 0 &&
	    pagemap_scan_works(pm->pm_pagemap_fd);
	return 0;
}

void
pmap_fini(struct pmap *pm)
{
	if (pm->pm_pagemap_fd >= 0)
		close(pm->pm_pagemap_fd);
	close(pm->pm_uffd);
	pm->pm_uffd = pm->pm_pagemap_fd = -1;
}

int
pmap_register(struct pmap *pm, vaddr_t va, vsize_t len, int modes)
{
	struct uffdio_register reg = {
		.range = { .start = va, .len = len },
	};

	if (modes & PMAP_REG_MISSING)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (modes & PMAP_REG_WP)
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	if (ioctl(pm->pm_uffd, UFFDIO_REGISTER, &reg) != 0)
		return -errno;
	pm->pm_ioctls = reg.ioctls;
	/* best effort: a kernel without THP refuses it (EINVAL) */
	(void)raw_madvise((void *)va, len, MADV_NOHUGEPAGE);
	return 0;
}

int
pmap_unregister(struct pmap *pm, vaddr_t va, vsize_t len)
{
	struct uffdio_range r = { .start = va, .len = len };

	return ioctl(pm->pm_uffd, UFFDIO_UNREGISTER, &r) != 0 ? -errno : 0;
}

/*
 * mfill_result: fold one resolution ioctl's outcome into the loop of the
 * callers below.  `ret` is the ioctl's return, `got` the struct's count
 * (bytes, or -errno).  Returns 1 to go on with *donep advanced, 0 when the
 * whole range is done, or -errno for the page at dst + *donep.
 */
static int
mfill_result(int ret, int64_t got, vsize_t len, vsize_t *donep)
{
	if (got > 0)
		*donep += (vsize_t)got;
	if (ret == 0 && *donep >= len)
		return 0;
	if (got > 0)
		return *donep < len ? 1 : 0;
	return got < 0 ? (int)got : -EAGAIN;
}

int
pmap_copy(struct pmap *pm, vaddr_t dst, const void *src, vsize_t len,
    int flags, vsize_t *donep)
{
	struct uffdio_copy c;
	int ret, r;

	*donep = 0;
	do {
		c.dst = dst + *donep;
		c.src = (uintptr_t)src + *donep;
		c.len = len - *donep;
		c.mode = ((flags & PMAP_DONTWAKE) ? UFFDIO_COPY_MODE_DONTWAKE :
		    0) | ((flags & PMAP_WP) ? UFFDIO_COPY_MODE_WP : 0);
		c.copy = 0;
		ret = ioctl(pm->pm_uffd, UFFDIO_COPY, &c) != 0 ? -errno : 0;
		if (ret != 0 && c.copy == 0)
			c.copy = ret;
	} while ((r = mfill_result(ret, c.copy, len, donep)) == 1);
	return r;
}

int
pmap_zeropage(struct pmap *pm, vaddr_t dst, vsize_t len, int flags,
    vsize_t *donep)
{
	struct uffdio_zeropage z;
	int ret, r;

	*donep = 0;
	do {
		z.range.start = dst + *donep;
		z.range.len = len - *donep;
		z.mode = (flags & PMAP_DONTWAKE) ?
		    UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0;
		z.zeropage = 0;
		ret = ioctl(pm->pm_uffd, UFFDIO_ZEROPAGE, &z) != 0 ? -errno : 0;
		if (ret != 0 && z.zeropage == 0)
			z.zeropage = ret;
	} while ((r = mfill_result(ret, z.zeropage, len, donep)) == 1);
	return r;
}

/*
 * move_recount: the bytes from dst/src (len at most) that a failed
 * UFFDIO_MOVE moved without counting them: pages present at dst and gone
 * from src, up to the first that is not.  Linux 6.18's batched move
 * (move_pages_ptes) does that: an -EAGAIN inside its loop is never
 * cleared, so a batch that then moves is not counted and the loop tries
 * the same address again, finds its own page at dst and fails -EEXIST
 * (a pte whose accessed bit changed under the move is enough; the
 * pmap test provokes it with MADV_COLD).  Believing the count would lose
 * those pages: the caller thinks they are still at src.  A page that was
 * already at dst is told apart by src: its own page is still there.
 */
static vsize_t
move_recount(struct pmap *pm, vaddr_t dst, vaddr_t src, vsize_t len)
{
	uint64_t at_dst, at_src;
	vsize_t found = 0;
	int n, k;

	while (found < len) {
		n = (int)MIN(atop(len - found), 64);
		if (pmap_present_mask(pm, dst + found, n, &at_dst) != 0 ||
		    pmap_present_mask(pm, src + found, n, &at_src) != 0)
			return found;
		for (k = 0; k < n && ((at_dst & ~at_src) >> k & 1); k++)
			found += PAGE_SIZE;
		if (k < n)
			break;
	}
	return found;
}

int
pmap_move(struct pmap *pm, vaddr_t dst, vaddr_t src, vsize_t len, int flags,
    vsize_t *donep)
{
	struct uffdio_move m;
	vsize_t lost;
	int ret, r;

	*donep = 0;
	if (!pmap_has(pm, UFFD_FEATURE_MOVE))
		return -EOPNOTSUPP;
	do {
		m.dst = dst + *donep;
		m.src = src + *donep;
		m.len = len - *donep;
		m.mode = (flags & PMAP_DONTWAKE) ? UFFDIO_MOVE_MODE_DONTWAKE : 0;
		m.move = 0;
		ret = ioctl(pm->pm_uffd, UFFDIO_MOVE, &m) != 0 ? -errno : 0;
		if (ret != 0 && m.move == 0)
			m.move = ret;
		r = mfill_result(ret, m.move, len, donep);
		if (r == -EEXIST && (lost = move_recount(pm, dst + *donep,
		    src + *donep, len - *donep)) > 0) {
			/* the kernel woke nobody for the pages it lost */
			if (!(flags & PMAP_DONTWAKE))
				(void)pmap_wake(pm, dst + *donep, lost);
			*donep += lost;
			atomic_fetch_add_explicit(&pm->pm_move_recounts, 1,
			    memory_order_relaxed);
			r = *donep < len ? 1 : 0;
		}
	} while (r == 1);
	return r;
}

int
pmap_present_mask(struct pmap *pm, vaddr_t va, int n, uint64_t *maskp)
{
	uint64_t ent[64];

	VM_ASSERT(n > 0 && n <= 64);
	*maskp = 0;
	if (pm->pm_pagemap_fd < 0)
		return -ENOSYS;
	if (sys_pread(pm->pm_pagemap_fd, ent, sizeof(ent[0]) * (size_t)n,
	    (off_t)(atop(va) * sizeof(ent[0]))) != (ssize_t)(sizeof(ent[0]) *
	    (size_t)n))
		return -errno;
	for (int k = 0; k < n; k++)
		*maskp |= ((ent[k] >> 63) & 1) << k;	/* bit 63: present */
	return 0;
}

int
pmap_present(struct pmap *pm, vaddr_t va)
{
	uint64_t m;
	int error;

	return (error = pmap_present_mask(pm, va, 1, &m)) != 0 ? error :
	    (int)m;
}

int
pmap_wake(struct pmap *pm, vaddr_t va, vsize_t len)
{
	struct uffdio_range r = { .start = va, .len = len };

	return ioctl(pm->pm_uffd, UFFDIO_WAKE, &r) != 0 ? -errno : 0;
}

int
pmap_writeprotect(struct pmap *pm, vaddr_t va, vsize_t len, bool wp,
    bool dontwake)
{
	/* the kernel refuses DONTWAKE with WP: protecting wakes nobody */
	struct uffdio_writeprotect w = {
		.range = { .start = va, .len = len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP :
		    dontwake ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0,
	};

	return ioctl(pm->pm_uffd, UFFDIO_WRITEPROTECT, &w) != 0 ? -errno : 0;
}

int
pmap_poison(struct pmap *pm, vaddr_t va, vsize_t len, int flags,
    vsize_t *donep)
{
	struct uffdio_poison p;
	int ret, r;

	*donep = 0;
	if (!pmap_has(pm, UFFD_FEATURE_POISON))
		return -EOPNOTSUPP;
	do {
		p.range.start = va + *donep;
		p.range.len = len - *donep;
		p.mode = (flags & PMAP_DONTWAKE) ?
		    UFFDIO_POISON_MODE_DONTWAKE : 0;
		p.updated = 0;
		ret = ioctl(pm->pm_uffd, UFFDIO_POISON, &p) != 0 ? -errno : 0;
		if (ret != 0 && p.updated == 0)
			p.updated = ret;
	} while ((r = mfill_result(ret, p.updated, len, donep)) == 1);
	return r;
}

const void *
pmap_peek(struct pmap *pm, void *buf, vaddr_t va, size_t len)
{
	ssize_t got;

	if (atomic_load_explicit(&pm->pm_nopeek, memory_order_relaxed))
		return (const void *)va;
	if ((got = sys_vm_read(buf, (const void *)va, len)) == (ssize_t)len)
		return buf;
	if (got == -EPERM || got == -ENOSYS) {
		atomic_store(&pm->pm_nopeek, true);
		upvm_log(LOG_DEBUG, "process_vm_readv: %s; moved pages are "
		    "read in place", strerror((int)-got));
	}
	return (const void *)va;
}

int
pmap_dontneed(struct pmap *pm, vaddr_t va, vsize_t len)
{
	return raw_madvise((void *)va, len, MADV_DONTNEED);
}

int
pmap_scan_written(struct pmap *pm, vaddr_t va, vsize_t len,
    struct page_region *regs, int nregs, bool reprotect, vaddr_t *walk_endp)
{
	struct pm_scan_arg arg;
	int ret;

	if (!pm->pm_pagemap_scan || !pmap_has(pm, UFFD_FEATURE_WP_ASYNC))
		return -EOPNOTSUPP;
	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.flags = reprotect ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC :
	    0;
	arg.start = va;
	arg.end = va + len;
	arg.vec = (uintptr_t)regs;
	arg.vec_len = (uint64_t)nregs;
	arg.category_mask = PAGE_IS_WRITTEN;
	arg.return_mask = PAGE_IS_WRITTEN;
	ret = ioctl(pm->pm_pagemap_fd, PAGEMAP_SCAN, &arg);
	if (ret < 0)
		return -errno;
	*walk_endp = arg.walk_end;
	return ret;
}

int
pmap_read_events(struct pmap *pm, struct uffd_msg *msgs, int n)
{
	ssize_t got = sys_read(pm->pm_uffd, msgs, sizeof(*msgs) * (size_t)n);

	if (got < 0)
		return errno == EAGAIN ? 0 : -errno;
	return (int)(got / (ssize_t)sizeof(*msgs));
}
