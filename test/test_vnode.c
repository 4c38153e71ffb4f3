/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_vnode.c: the vnode pager (pager/vnode.c) on real files: ext4 under
 * $TMPDIR (else /tmp; O_DIRECT) and tmpfs in /dev/shm (buffered where
 * tmpfs refuses O_DIRECT).  Every page read is checked against the
 * harness pattern the file was written with (keyed by file page), the
 * file against what it must hold after every write (pread), and the end
 * of the file against mmap(2)'s rules: zeros past it, nothing written
 * past it.  Files are unlinked by each test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "kmem.h"
#include "pager.h"
#include "vnode.h"

#define NPAGES	64

static char path[256];

static void
unlink_file(void)
{
	if (path[0] != '\0')
		(void)unlink(path);
	path[0] = '\0';
}

/*
 * make_file: a new file in dir holding npages pattern pages (generation
 * 1) and `tail` bytes of page npages; => its fd, open read-write.
 */
static int
make_file(const char *dir, size_t npages, size_t tail)
{
	char *buf = kmem_alloc(ptoa(npages + 1));
	int fd;

	if (dir == NULL)
		dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	(void)snprintf(path, sizeof(path), "%s/upvm-vnode-XXXXXX", dir);
	cr_assert_geq(fd = mkstemp(path), 0, "mkstemp %s", path);
	test_pattern_fill(buf, npages + 1, 0, 1);
	cr_assert_eq(pwrite(fd, buf, ptoa(npages) + tail, 0),
	    (ssize_t)(ptoa(npages) + tail));
	kmem_free(buf, ptoa(npages + 1));
	return fd;
}

static int vflags;	/* VNODE_BUFFERED for the buffered variants */

static struct vnode *
find(int fd, bool writable)
{
	struct vnode *vn;

	cr_assert_eq(vnode_find(fd, vflags | (writable ? VNODE_WRITABLE :
	    0), &vn), 0);
	cr_assert(!(vflags & VNODE_BUFFERED) || !vn->vn_direct,
	    "buffered when asked");
	return vn;
}

/* get n pages at page `first` of vn, through q (NULL: synchronously) */
static int
get(struct vnode *vn, struct pager_queue *q, void *buf, size_t first, int n)
{
	struct pager_req req = { .pr_off = ptoa(first), .pr_npages = n,
	    .pr_buf = buf, .pr_flags = PGO_REMEMBER };

	return q != NULL ? pager_get_sync(&vn->vn_pager, q, &req) :
	    pager_get(&vn->vn_pager, NULL, &req);
}

static int
put(struct vnode *vn, struct pager_queue *q, void *buf, size_t first, int n)
{
	struct pager_req req = { .pr_off = ptoa(first), .pr_npages = n,
	    .pr_buf = buf };

	return q != NULL ? pager_put_sync(&vn->vn_pager, q, &req) :
	    pager_put(&vn->vn_pager, NULL, &req);
}

static struct pager_queue *
queue(struct vnode *vn)
{
	struct pager_queue *q;
	int error = pager_queue_create(&vn->vn_pager, 8, &q);

	if (error == -ENOSYS || error == -EPERM)
		cr_skip_test("io_uring is unavailable: %s", strerror(-error));
	cr_assert_eq(error, 0);
	return q;
}

/*
 * reads: every page of a file of 10 pages and 100 bytes, read one at a
 * time and in runs, synchronously and queued: pattern pages, then the
 * 100 bytes and zeros, then whole pages of zeros past the end.
 */
static void
reads(const char *dir, bool queued)
{
	int fd = make_file(dir, 10, 100);
	struct vnode *vn = find(fd, false);
	struct pager_queue *q = queued ? queue(vn) : NULL;
	char *buf = kmem_alloc(ptoa(16)), *want = kmem_alloc(PAGE_SIZE);

	cr_log_info("%s: %s", vn->vn_where, vn->vn_direct ? "O_DIRECT" :
	    "buffered");
	cr_assert_eq(vnode_size(vn, false), ptoa(10) + 100);
	for (size_t pg = 0; pg < 10; pg++) {
		cr_assert_eq(get(vn, q, buf, pg, 1), 0);
		cr_assert_eq(test_pattern_bad(buf, 1, pg, 1), -1, "page %zu",
		    pg);
	}
	memset(buf, 0xa5, ptoa(16));
	cr_assert_eq(get(vn, q, buf, 0, 16), 0);
	cr_assert_eq(test_pattern_bad(buf, 10, 0, 1), -1);
	test_pattern_fill(want, 1, 10, 1);
	cr_assert_eq(memcmp(buf + ptoa(10), want, 100), 0, "the last bytes");
	cr_assert(test_all_bytes(buf + ptoa(10) + 100, 0,
	    PAGE_SIZE - 100 + ptoa(5)), "zeros past the end");
	memset(buf, 0xa5, PAGE_SIZE);
	cr_assert_eq(get(vn, q, buf, 40, 1), 0);
	cr_assert(test_all_bytes(buf, 0, PAGE_SIZE), "a page past the end");
	pager_queue_destroy(q);
	pager_unref(&vn->vn_pager);
	kmem_free(buf, ptoa(16));
	kmem_free(want, PAGE_SIZE);
	close(fd);
	unlink_file();
}

Test(vnode, reads_pattern_then_zeros_past_the_end_disk) { reads(NULL, true); }
Test(vnode, reads_pattern_then_zeros_past_the_end_tmpfs) { reads("/dev/shm", true); }
Test(vnode, reads_without_a_queue) { reads(NULL, false); }
Test(vnode, reads_buffered) { vflags = VNODE_BUFFERED; reads(NULL, true); }
Test(vnode, reads_buffered_without_a_queue)
{
	vflags = VNODE_BUFFERED;
	reads(NULL, false);
}

/*
 * writes: pages 2..5 rewritten (generation 2), and pages 9..11 of a file
 * that ends 100 bytes into page 10: the file keeps its size, page 10's
 * first 100 bytes are written and nothing past them.
 */
static void
writes(const char *dir, bool queued)
{
	int fd = make_file(dir, 10, 100);
	struct vnode *vn = find(fd, true);
	struct pager_queue *q = queued ? queue(vn) : NULL;
	char *buf = kmem_alloc(ptoa(NPAGES)), *want = kmem_alloc(PAGE_SIZE);
	struct stat st;

	test_pattern_fill(buf, 4, 2, 2);
	cr_assert_eq(put(vn, q, buf, 2, 4), 0);
	test_pattern_fill(buf, 3, 9, 2);
	cr_assert_eq(put(vn, q, buf, 9, 3), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, (off_t)ptoa(10) + 100, "the size is kept");
	cr_assert_eq(pread(fd, buf, ptoa(11), 0), (ssize_t)ptoa(10) + 100);
	cr_assert_eq(test_pattern_bad(buf, 2, 0, 1), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(2), 4, 2, 2), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(6), 3, 6, 1), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(9), 1, 9, 2), -1);
	test_pattern_fill(want, 1, 10, 2);
	cr_assert_eq(memcmp(buf + ptoa(10), want, 100), 0);
	/* a write wholly past the end writes nothing */
	cr_assert_eq(put(vn, q, buf, 20, 2), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, (off_t)ptoa(10) + 100);
	pager_queue_destroy(q);
	pager_unref(&vn->vn_pager);
	kmem_free(buf, ptoa(NPAGES));
	kmem_free(want, PAGE_SIZE);
	close(fd);
	unlink_file();
}

Test(vnode, writes_stop_at_the_end_disk) { writes(NULL, true); }
Test(vnode, writes_stop_at_the_end_tmpfs) { writes("/dev/shm", true); }
Test(vnode, writes_without_a_queue) { writes(NULL, false); }
Test(vnode, writes_buffered) { vflags = VNODE_BUFFERED; writes(NULL, true); }
Test(vnode, writes_buffered_without_a_queue)
{
	vflags = VNODE_BUFFERED;
	writes(NULL, false);
}

/* a file grown after the vnode was made: vnode_size(refresh) sees it */
Test(vnode, a_grown_file_is_seen_on_refresh)
{
	int fd = make_file(NULL, 4, 0);
	struct vnode *vn = find(fd, false);

	cr_assert_eq(ftruncate(fd, (off_t)ptoa(8)), 0);
	cr_assert_eq(vnode_size(vn, false), ptoa(4), "as last seen");
	cr_assert_eq(vnode_size(vn, true), ptoa(8));
	pager_unref(&vn->vn_pager);
	close(fd);
	unlink_file();
}

/* one vnode per file and access; the caller's fd may close */
Test(vnode, one_vnode_per_file_and_access)
{
	int fd = make_file(NULL, 4, 0), fd2 = open(path, O_RDONLY);
	struct vnode *a = find(fd, false), *b = find(fd2, false);
	struct vnode *w = find(fd, true);
	char *buf = kmem_alloc(PAGE_SIZE);

	cr_assert_eq(a, b, "two descriptors of one file: one vnode");
	cr_assert_neq(a, w, "read-only and writable: two");
	close(fd);
	close(fd2);
	cr_assert_eq(get(a, NULL, buf, 3, 1), 0, "its own descriptor");
	cr_assert_eq(test_pattern_bad(buf, 1, 3, 1), -1);
	pager_unref(&a->vn_pager);
	pager_unref(&b->vn_pager);
	pager_unref(&w->vn_pager);
	kmem_free(buf, PAGE_SIZE);
	unlink_file();
}

/* bad descriptors: a negative errno and one line each */
Test(vnode, bad_descriptors_refused_with_one_line)
{
	int fd = make_file(NULL, 1, 0), ro = open(path, O_RDONLY);
	int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
	int wo = open(path, O_WRONLY);
	struct vnode *vn;

	test_log_capture();
	cr_assert_eq(vnode_find(-1, 0, &vn), -EBADF);
	test_expect_one_line("a closed fd", "fd -1");
	cr_assert_eq(vnode_find(dir, 0, &vn), -ENODEV);
	test_expect_one_line("a directory", "regular file");
	cr_assert_eq(vnode_find(ro, VNODE_WRITABLE, &vn), -EACCES);
	test_expect_one_line("read-only fd, shared writable", "read-only");
	cr_assert_eq(vnode_find(wo, 0, &vn), -EACCES);
	test_expect_one_line("a write-only fd", "write-only");
	vn = find(ro, false);
	cr_assert_eq(put(vn, NULL, (char *)kmem_alloc(PAGE_SIZE), 0, 1),
	    -EBADF, "no writes through a read-only vnode");
	pager_unref(&vn->vn_pager);
	close(fd);
	close(ro);
	close(dir);
	close(wo);
	unlink_file();
}

/* an injected failure is the transfer's error, the next one works */
Test(vnode, injected_failures_fail_one_transfer)
{
	int fd = make_file(NULL, 4, 0);
	struct vnode *vn = find(fd, true);
	struct pager_queue *q = queue(vn);
	char *buf = kmem_alloc(PAGE_SIZE);

	vnode_inject_failure(vn, false, 1);
	cr_assert_eq(get(vn, q, buf, 1, 1), -EIO);
	cr_assert_eq(get(vn, q, buf, 1, 1), 0);
	cr_assert_eq(test_pattern_bad(buf, 1, 1, 1), -1);
	vnode_inject_failure(vn, true, 1);
	cr_assert_eq(put(vn, q, buf, 1, 1), -EIO);
	pager_queue_destroy(q);
	pager_unref(&vn->vn_pager);
	kmem_free(buf, PAGE_SIZE);
	close(fd);
	unlink_file();
}

/* pages read with PGO_REMEMBER are unchanged until a byte changes */
Test(vnode, remembered_pages_are_unchanged_until_written)
{
	int fd = make_file(NULL, NPAGES, 0);
	struct vnode *vn = find(fd, false);
	char *buf = kmem_alloc(ptoa(NPAGES));

	cr_assert_eq(get(vn, NULL, buf, 0, NPAGES), 0);
	for (size_t pg = 0; pg < NPAGES; pg++)
		cr_assert(pager_unchanged(&vn->vn_pager, ptoa(pg),
		    buf + ptoa(pg)), "page %zu", pg);
	buf[ptoa(7) + 13] ^= 1;
	cr_assert_not(pager_unchanged(&vn->vn_pager, ptoa(7), buf + ptoa(7)));
	cr_assert_not(pager_unchanged(&vn->vn_pager, ptoa(NPAGES + 5), buf),
	    "never read");
	pager_unref(&vn->vn_pager);
	kmem_free(buf, ptoa(NPAGES));
	close(fd);
	unlink_file();
}

/* a hole of a sparse file reads zeros without I/O; data beside it reads */
Test(vnode, holes_read_zeros_without_io)
{
	int fd = make_file(NULL, 0, 0);
	struct vnode *vn;
	struct pager_queue *q;
	struct pager_req req;
	char *buf = kmem_alloc(ptoa(8));

	test_pattern_fill(buf, 1, 10, 1);
	cr_assert_eq(pwrite(fd, buf, PAGE_SIZE, (off_t)ptoa(10)),
	    (ssize_t)PAGE_SIZE);
	cr_assert_eq(ftruncate(fd, (off_t)ptoa(64)), 0);
	vn = find(fd, false);
	q = queue(vn);
	memset(buf, 0xa5, ptoa(8));
	req = (struct pager_req){ .pr_off = 0, .pr_npages = 8, .pr_buf = buf };
	cr_assert_eq(pager_get(&vn->vn_pager, q, &req), 0,
	    "done at once: no I/O");
	cr_assert(test_all_bytes(buf, 0, ptoa(8)));
	memset(buf, 0xa5, ptoa(8));
	cr_assert_eq(get(vn, q, buf, 8, 4), 0);
	cr_assert(test_all_bytes(buf, 0, ptoa(2)));
	cr_assert_eq(test_pattern_bad(buf + ptoa(2), 1, 10, 1), -1);
	cr_assert(test_all_bytes(buf + ptoa(3), 0, PAGE_SIZE));
	pager_queue_destroy(q);
	pager_unref(&vn->vn_pager);
	kmem_free(buf, ptoa(8));
	close(fd);
	unlink_file();
}
