/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vnode.c: the vnode pager (see vnode.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kmem.h"
#include "log.h"
#include "pagehash.h"
#include "ringq.h"
#include "sys.h"
#include "uring.h"
#include "vnode.h"

/* the registry: every vnode of the process, by file and access */
static pthread_mutex_t vn_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vnode *vn_registry;	/* [r] */

bool
vnode_any(void)
{
	return __atomic_load_n(&vn_registry, __ATOMIC_RELAXED) != NULL;
}

bool
vnode_mapped(dev_t dev, ino_t ino)
{
	struct vnode *vn;

	(void)pthread_mutex_lock(&vn_registry_lock);
	for (vn = vn_registry; vn != NULL; vn = vn->vn_next)
		if (vn->vn_dev == dev && vn->vn_ino == ino)
			break;
	(void)pthread_mutex_unlock(&vn_registry_lock);
	return vn != NULL;
}

uint64_t
vnode_size(struct vnode *vn, bool refresh)
{
	struct stat st;

	if (refresh && fstat(vn->vn_fd, &st) == 0)
		atomic_store(&vn->vn_size, (uint64_t)st.st_size);
	return atomic_load(&vn->vn_size);
}

int
vnode_punch(struct vnode *vn, uint64_t off, uint64_t len)
{
	if (!vn->vn_writable)
		return -EACCES;
	if (fallocate(vn->vn_bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)off, (off_t)len) != 0)
		return -errno;
	/* the remembered pages are zeros now: "changed" */
	vm_mutex_lock(&vn->vn_pager.pgr_lock);
	for (size_t i = atop(off); i < atop(off + len) && i < vn->vn_nhash; i++)
		vn->vn_hash[i] = 0;
	vm_mutex_unlock(&vn->vn_pager.pgr_lock);
	return 0;
}

int
vnode_sync(struct vnode *vn)
{
	if (!vn->vn_writable)
		return 0;
	if (fdatasync(vn->vn_fd) != 0 ||
	    (vn->vn_bfd != vn->vn_fd && fdatasync(vn->vn_bfd) != 0))
		return -errno;
	return 0;
}

int
vnode_write_bytes(struct vnode *vn, uint64_t off, const void *buf, size_t len)
{
	uint64_t size = vnode_size(vn, true);
	ssize_t done;

	if (!vn->vn_writable)
		return -EBADF;
	if (pager_fail_next(&vn->vn_fail[1]))
		return -EIO;
	if (off >= size)
		return 0;
	len = (size_t)MIN((uint64_t)len, size - off);
	while (len > 0) {
		done = sys_pwrite(vn->vn_bfd, buf, len, (off_t)off);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return done < 0 ? -errno : -EIO;
		buf = (const char *)buf + done;
		off += (uint64_t)done;
		len -= (size_t)done;
	}
	return 0;
}

void
vnode_inject_failure(struct vnode *vn, bool write, int nth)
{
	atomic_store(&vn->vn_fail[write], nth);
}

/*
 * vn_span: the bytes of req's transfer that go through vn_fd: a read, all
 * of it (zeros past the end); a write, those before the file's end, less
 * a partial last page with O_DIRECT (vn_put_tail writes that).
 */
static size_t
vn_span(struct vnode *vn, const struct pager_req *req, bool write)
{
	size_t len = ptoa((size_t)req->pr_npages);
	uint64_t size;

	if (!write)
		return len;
	/* asked again: a file truncated meanwhile (by anyone) must not
	   grow back with what was past its new end */
	size = vnode_size(vn, true);
	if (req->pr_off >= size)
		return 0;
	len = MIN(len, size - req->pr_off);
	return vn->vn_direct ? len & ~(size_t)PAGE_MASK : len;
}

/* vn_put_tail: with O_DIRECT, write the partial last page before the end */
static int
vn_put_tail(struct vnode *vn, const struct pager_req *req)
{
	size_t len = ptoa((size_t)req->pr_npages), head;
	uint64_t size = vnode_size(vn, false);
	ssize_t done;

	if (!vn->vn_direct || req->pr_off >= size ||
	    size - req->pr_off >= len)
		return 0;
	head = (size - req->pr_off) & ~(size_t)PAGE_MASK;
	if ((size - req->pr_off) == head)
		return 0;
	done = sys_pwrite(vn->vn_bfd, (const char *)req->pr_buf + head,
	    size - req->pr_off - head, (off_t)(req->pr_off + head));
	if (done < 0)
		return -errno;
	return (uint64_t)done == size - req->pr_off - head ? 0 : -EIO;
}

/* vn_pio: the whole transfer with pread/pwrite (no queue) */
static int
vn_pio(struct vnode *vn, struct pager_req *req, bool write)
{
	size_t len = vn_span(vn, req, write), all = ptoa((size_t)req->pr_npages);
	char *buf = req->pr_buf;
	ssize_t done;

	while (req->pr_xfer < len) {
		done = write ? sys_pwrite(vn->vn_fd, buf + req->pr_xfer,
		    len - req->pr_xfer, (off_t)(req->pr_off + req->pr_xfer)) :
		    sys_pread(vn->vn_fd, buf + req->pr_xfer, len - req->pr_xfer,
		    (off_t)(req->pr_off + req->pr_xfer));
		if (done < 0 && errno == EINTR)
			continue;
		if (done < 0)
			return -errno;
		if (done == 0)
			break;
		req->pr_xfer += (size_t)done;
		if (vn->vn_direct && (req->pr_xfer & PAGE_MASK) != 0)
			break;		/* the end, inside a page */
	}
	if (write && req->pr_xfer < len)
		return -EIO;
	if (!write)
		memset(buf + req->pr_xfer, 0, all - req->pr_xfer);
	if (!vn->vn_direct)
		ringq_dropcache(vn->vn_fd, req->pr_off, len);
	return write ? vn_put_tail(vn, req) : 0;
}

/* vn_queue: queue the rest of req's transfer on q; 1: nothing left */
static int
vn_queue(struct vnode *vn, struct pager_queue *q, struct pager_req *req,
    bool write)
{
	size_t len = vn_span(vn, req, write);
	struct ring *ring = ringq_ring(q);
	char *buf = (char *)req->pr_buf + req->pr_xfer;
	uint64_t off = req->pr_off + req->pr_xfer, tag = ringq_tag(req, write);

	if (req->pr_xfer >= len)
		return 1;
	len -= req->pr_xfer;
	if (vn->vn_direct)
		return write ? ring_write(ring, vn->vn_fd, buf, len, off, tag) :
		    ring_read(ring, vn->vn_fd, buf, len, off, tag);
	return write ? ring_write_nocache(ring, vn->vn_fd, buf, len, off, tag) :
	    ring_read_nocache(ring, vn->vn_fd, buf, len, off, tag);
}

static void
vn_pgo_remember(struct pager *pgr, voff_t off, const void *buf, int n)
{
	struct vnode *vn = container_of(pgr, struct vnode, vn_pager);
	size_t need = atop(off) + (size_t)n, nhash;
	uint64_t *h;

	vm_mutex_lock(&pgr->pgr_lock);
	if (need > vn->vn_nhash) {
		nhash = MAX(need, 2 * vn->vn_nhash);
		if ((h = kmem_realloc(vn->vn_hash, vn->vn_nhash * sizeof(*h),
		    nhash * sizeof(*h))) == NULL) {
			vm_mutex_unlock(&pgr->pgr_lock);
			return;		/* not remembered: "changed" */
		}
		vn->vn_hash = h;
		vn->vn_nhash = nhash;
	}
	for (int i = 0; i < n; i++)
		vn->vn_hash[atop(off) + (size_t)i] = page_hash((const char *)buf +
		    ptoa((size_t)i), vn->vn_hashkey);
	vm_mutex_unlock(&pgr->pgr_lock);
}

/*
 * vn_forget: the file's pages [off, off + n pages) were read or written
 * without their hashes being taken: not known any more (pager.h).
 */
static void
vn_forget(struct pager *pgr, voff_t off, int n)
{
	struct vnode *vn = container_of(pgr, struct vnode, vn_pager);
	size_t lo = atop(off), hi;

	vm_mutex_lock(&pgr->pgr_lock);
	hi = MIN(lo + (size_t)n, vn->vn_nhash);
	if (lo < hi)
		memset(&vn->vn_hash[lo], 0, sizeof(uint64_t) * (hi - lo));
	vm_mutex_unlock(&pgr->pgr_lock);
}

static bool
vn_pgo_known(struct pager *pgr, voff_t off)
{
	struct vnode *vn = container_of(pgr, struct vnode, vn_pager);
	bool known;

	vm_mutex_lock(&pgr->pgr_lock);
	known = atop(off) < vn->vn_nhash && vn->vn_hash[atop(off)] != 0;
	vm_mutex_unlock(&pgr->pgr_lock);
	return known;
}

static bool
vn_pgo_unchanged(struct pager *pgr, voff_t off, const void *buf)
{
	struct vnode *vn = container_of(pgr, struct vnode, vn_pager);
	uint64_t h = page_hash(buf, vn->vn_hashkey);
	bool same;

	vm_mutex_lock(&pgr->pgr_lock);
	same = atop(off) < vn->vn_nhash && vn->vn_hash[atop(off)] == h;
	vm_mutex_unlock(&pgr->pgr_lock);
	return same;
}

/*
 * vn_hole: req's range holds no data (a hole of a sparse file, or past
 * its end): it reads as zeros without I/O.  One lseek(SEEK_DATA).
 */
static bool
vn_hole(struct vnode *vn, const struct pager_req *req)
{
	off_t data = lseek(vn->vn_fd, (off_t)req->pr_off, SEEK_DATA);

	if (data < 0)
		return errno == ENXIO;	/* no data from there on */
	return (uint64_t)data >= req->pr_off + ptoa((uint64_t)req->pr_npages);
}

/*
 * vn_io: pgo_get / pgo_put.  With a queue, queued and submitted
 * (-EINPROGRESS), or 0 when nothing is left for the ring (a write wholly
 * past the end, or only its partial page; a read of a hole); without,
 * pread/pwrite.
 * => no lock; -EBADF (a write to a read-only vnode), -EIO
 *    (vnode_inject_failure), or the queueing's -errno.
 */
static int
vn_io(struct pager *pgr, struct pager_queue *q, struct pager_req *req,
    bool write)
{
	struct vnode *vn = container_of(pgr, struct vnode, vn_pager);
	int error;

	VM_ASSERT(page_aligned(req->pr_buf));
	if (write && !vn->vn_writable)
		return req->pr_error = -EBADF;
	if (pager_fail_next(&vn->vn_fail[write]))
		return req->pr_error = -EIO;
	if (!(req->pr_flags & PGO_REMEMBER))
		vn_forget(pgr, req->pr_off, req->pr_npages);
	if (q == NULL) {
		error = vn_pio(vn, req, write);
		if (error == 0 && !write && (req->pr_flags & PGO_REMEMBER))
			vn_pgo_remember(pgr, req->pr_off, req->pr_buf,
			    req->pr_npages);
		return req->pr_error = error;
	}
	if (!write && vn_hole(vn, req)) {
		memset(req->pr_buf, 0, ptoa((size_t)req->pr_npages));
		if (req->pr_flags & PGO_REMEMBER)
			vn_pgo_remember(pgr, req->pr_off, req->pr_buf,
			    req->pr_npages);
		return req->pr_error = 0;
	}
	if (write && (error = vn_put_tail(vn, req)) != 0)
		return req->pr_error = error;
	if ((error = vn_queue(vn, q, req, write)) == 1)
		return 0;
	if (error != 0)
		return error;
	return ringq_submit(q, "vnode");
}

static int
vn_pgo_get(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return vn_io(pgr, q, req, false);
}

static int
vn_pgo_put(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return vn_io(pgr, q, req, true);
}

/*
 * vn_qresume: a completion of req's transfer.  A short read stopped at
 * the end of the file (zeros for the rest) unless more can follow; a
 * short write is continued; an error finishes the request.
 */
static bool
vn_qresume(struct pager *pgr, struct pager_queue *q, struct pager_req *req,
    bool write, int res)
{
	struct vnode *vn = container_of(pgr, struct vnode, vn_pager);
	size_t all = ptoa((size_t)req->pr_npages);
	int error;

	if (res < 0) {
		req->pr_error = res;
		return true;
	}
	req->pr_xfer += (size_t)res;
	if (res > 0 && req->pr_xfer < vn_span(vn, req, write) &&
	    (!vn->vn_direct || (req->pr_xfer & PAGE_MASK) == 0)) {
		if ((error = vn_queue(vn, q, req, write)) == 0)
			return false;
		if (error != 1) {
			req->pr_error = error;
			return true;
		}
	}
	if (write) {
		if (req->pr_xfer < vn_span(vn, req, write))
			req->pr_error = -EIO;
		return true;
	}
	if (req->pr_xfer < all)
		memset((char *)req->pr_buf + req->pr_xfer, 0,
		    all - req->pr_xfer);
	if (req->pr_flags & PGO_REMEMBER)
		vn_pgo_remember(pgr, req->pr_off, req->pr_buf,
		    req->pr_npages);
	return true;
}

static voff_t
vn_pgo_size(struct pager *pgr, bool refresh)
{
	return vnode_size(container_of(pgr, struct vnode, vn_pager), refresh);
}

/* vn_pgo_discard: nothing: the file keeps its data */
static int
vn_pgo_discard(struct pager *pgr, voff_t start, voff_t end)
{
	return 0;
}

static void
vn_pgo_destroy(struct pager *pgr)
{
	struct vnode *vn = container_of(pgr, struct vnode, vn_pager), **vp;

	(void)pthread_mutex_lock(&vn_registry_lock);
	for (vp = &vn_registry; *vp != NULL; vp = &(*vp)->vn_next)
		if (*vp == vn) {
			*vp = vn->vn_next;
			break;
		}
	(void)pthread_mutex_unlock(&vn_registry_lock);
	if (vn->vn_bfd != vn->vn_fd)
		close(vn->vn_bfd);
	close(vn->vn_fd);
	if (vn->vn_hash != NULL)
		kmem_free(vn->vn_hash, vn->vn_nhash * sizeof(*vn->vn_hash));
	kmem_free(vn, sizeof(*vn));
}

const struct pager_ops vnode_pager_ops = {
	.name = "vnode",
	.pgo_get = vn_pgo_get,
	.pgo_put = vn_pgo_put,
	.pgo_qcreate = ringq_create,
	.pgo_qfd = ringq_fd,
	.pgo_qcomplete = ringq_complete,
	.pgo_qflush = ringq_flush,
	.pgo_qdestroy = ringq_destroy,
	.pgo_qlisten = ringq_listen,
	.pgo_qheard = ringq_heard,
	.pgo_qunlisten = ringq_unlisten,
	.pgo_qresume = vn_qresume,
	.pgo_discard = vn_pgo_discard,
	.pgo_remember = vn_pgo_remember,
	.pgo_known = vn_pgo_known,
	.pgo_unchanged = vn_pgo_unchanged,
	.pgo_size = vn_pgo_size,
	.pgo_destroy = vn_pgo_destroy,
};

/* ---------------------------------------------------------------- */
/* finding and making vnodes */

/* vn_reopen: a descriptor of our own for the file open on fd */
static int
vn_reopen(int fd, bool writable)
{
	char path[64];
	int nfd;

	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (nfd < 0 && errno == ENOENT)		/* no /proc */
		nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return nfd < 0 ? -errno : nfd;
}

/* vn_make: a new vnode for fd (see vnode_find), not yet registered */
static int
vn_make(int fd, int flags, const struct stat *st, struct vnode **out)
{
	bool writable = (flags & VNODE_WRITABLE) != 0;
	struct vnode *vn;
	char path[64];
	ssize_t n;
	int error;

	if ((vn = kmem_alloc(sizeof(*vn))) == NULL)
		return -ENOMEM;
	if ((vn->vn_fd = vn_reopen(fd, writable)) < 0) {
		error = vn->vn_fd;
		kmem_free(vn, sizeof(*vn));
		return error;
	}
	/* a second descriptor, buffered, for partial pages */
	vn->vn_bfd = vn_reopen(fd, writable);
	if (vn->vn_bfd >= 0 && !(flags & VNODE_BUFFERED) &&
	    ringq_try_direct(vn->vn_fd)) {
		vn->vn_direct = true;
	} else {
		if (vn->vn_bfd >= 0)
			close(vn->vn_bfd);
		vn->vn_bfd = vn->vn_fd;
	}
	pager_init(&vn->vn_pager, &vnode_pager_ops, 0);
	vn->vn_writable = writable;
	vn->vn_flags = flags;
	vn->vn_dev = st->st_dev;
	vn->vn_ino = st->st_ino;
	atomic_init(&vn->vn_size, (uint64_t)st->st_size);
	if (getrandom(&vn->vn_hashkey, sizeof(vn->vn_hashkey), 0) !=
	    sizeof(vn->vn_hashkey))
		vn->vn_hashkey = (uint64_t)(uintptr_t)vn ^ (uint64_t)st->st_ino;
	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((n = readlink(path, vn->vn_where, sizeof(vn->vn_where) - 1)) <= 0)
		(void)snprintf(vn->vn_where, sizeof(vn->vn_where),
		    "inode %lu", (unsigned long)st->st_ino);
	*out = vn;
	return 0;
}

int
vnode_find(int fd, int flags, struct vnode **out)
{
	bool writable = (flags & VNODE_WRITABLE) != 0;
	struct vnode *vn;
	struct stat st;
	int fl, error = 0, ref;

	if ((fl = fcntl(fd, F_GETFL)) < 0 || fstat(fd, &st) != 0) {
		upvm_log(LOG_ERR, "map file: fd %d is not open; pass an open "
		    "file descriptor", fd);
		return -EBADF;
	}
	if (!S_ISREG(st.st_mode)) {
		upvm_log(LOG_ERR, "map file: fd %d is not a regular file; "
		    "upvm pages regular files only", fd);
		return -ENODEV;
	}
	if ((fl & O_ACCMODE) == O_WRONLY ||
	    (writable && (fl & O_ACCMODE) != O_RDWR)) {
		upvm_log(LOG_ERR, "map file: fd %d is open %s; a %s mapping "
		    "needs it open for %s", fd, (fl & O_ACCMODE) == O_WRONLY ?
		    "write-only" : "read-only", writable ? "shared writable" :
		    "readable", writable ? "reading and writing" : "reading");
		return -EACCES;
	}
	(void)pthread_mutex_lock(&vn_registry_lock);
	for (vn = vn_registry; vn != NULL; vn = vn->vn_next) {
		if (vn->vn_dev != st.st_dev || vn->vn_ino != st.st_ino ||
		    vn->vn_flags != flags)
			continue;
		/* a vnode whose last reference is going is not found */
		ref = atomic_load(&vn->vn_pager.pgr_ref);
		while (ref > 0 && !atomic_compare_exchange_weak(
		    &vn->vn_pager.pgr_ref, &ref, ref + 1))
			;
		if (ref > 0)
			break;
	}
	if (vn == NULL && (error = vn_make(fd, flags, &st, &vn)) == 0) {
		vn->vn_next = vn_registry;
		vn_registry = vn;
	}
	(void)pthread_mutex_unlock(&vn_registry_lock);
	if (vn == NULL) {
		upvm_log(LOG_ERR, "map file: cannot open fd %d again: %s; "
		    "check /proc is mounted and the file still exists", fd,
		    strerror(-error));
		return error;
	}
	*out = vn;
	return 0;
}
