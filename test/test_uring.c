/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_uring.c: the pagers' io_uring rings (pager/uring.c) on real files.
 *
 * Every transfer goes to a private file (O_TMPFILE) in $TMPDIR, else /tmp,
 * from page buffers filled with the harness pattern, and every page read
 * back is checked.  The fixed-file and fixed-buffer paths are run alongside
 * the plain ones; the fixed file is shown to be the one used by closing
 * the descriptor before the I/O.  ring_fd is checked with poll(): readable
 * when completions wait, not once they are reaped, and never silent while
 * a completion is left in the ring.  Listening (ring_listen) is checked on
 * a non-blocking pipe, as a fault thread reads its userfaultfd: the read
 * waits for data, ends a wait, keeps its result until taken, and a
 * cancelled read loses no data.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "uring.h"
#include "vm.h"

#define NPAGES		16
#define POLL_MS		5000	/* a completion that never comes: fail */

static const char *
tmpdir(void)
{
	const char *d = getenv("TMPDIR");

	return d != NULL && *d != '\0' ? d : "/tmp";
}

/* a private file, flags O_RDWR etc. */
static int
tmpfile_fd(int flags)
{
	int fd = open(tmpdir(), O_TMPFILE | O_CLOEXEC | flags, 0600);

	if (fd < 0 && errno == EINVAL && (flags & O_DIRECT) != 0)
		return -1;
	cr_assert_geq(fd, 0, "O_TMPFILE in %s: %s", tmpdir(),
	    strerror(errno));
	return fd;
}

static char *
pages(size_t n)
{
	void *p = mmap(NULL, ptoa(n), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	return p;
}


/*
 * reap_all: reap n completions, waiting; each tag in [0, n) once, each
 * transferring `len` bytes.
 */
static void
reap_all(struct ring *r, int n, int len)
{
	struct ring_cqe cqe[8];
	bool seen[64] = { false };
	int got = 0, k;

	cr_assert_leq(n, 64);
	while (got < n) {
		k = ring_reap(r, cqe, 8, true);
		cr_assert_gt(k, 0, "ring_reap: %d with %d in flight", k,
		    (int)ring_inflight(r));
		for (int i = 0; i < k; i++) {
			cr_assert_lt(cqe[i].rc_tag, (uint64_t)n, "tag %llu",
			    (unsigned long long)cqe[i].rc_tag);
			cr_assert(!seen[cqe[i].rc_tag], "tag %llu twice",
			    (unsigned long long)cqe[i].rc_tag);
			seen[cqe[i].rc_tag] = true;
			cr_assert_eq(cqe[i].rc_res, len, "tag %llu: res %d",
			    (unsigned long long)cqe[i].rc_tag, cqe[i].rc_res);
		}
		got += k;
	}
	cr_assert_eq(ring_inflight(r), 0);
	cr_assert_eq(ring_reap(r, cqe, 8, false), 0, "a completion too many");
}

enum { RT_PLAIN = 0, RT_BUFS = 1, RT_FILE = 2, RT_NOCACHE = 4 };

/*
 * roundtrip: write NPAGES pages one I/O each, read them back one I/O each
 * into a zeroed buffer, and check every page.
 */
static void
roundtrip(unsigned how, int oflags)
{
	struct ring *r = test_ring(NPAGES);
	char *buf = pages(NPAGES);
	struct iovec iov = { buf, ptoa(NPAGES) };
	int fd = tmpfile_fd(O_RDWR | oflags), error;

	if ((oflags & O_DIRECT) != 0 && fd < 0)
		cr_skip_test("O_DIRECT refused in %s", tmpdir());
	if (how & RT_BUFS)
		cr_assert_eq(ring_register_buffers(r, &iov, 1), 0);
	if (how & RT_FILE)
		cr_assert_eq(ring_register_file(r, fd), 0);
	test_pattern_fill(buf, NPAGES, 0, 7);
	for (int p = 0; p < NPAGES; p++) {
		error = (how & RT_NOCACHE) ?
		    ring_write_nocache(r, fd, buf + ptoa(p), PAGE_SIZE,
		    ptoa(p), (uint64_t)p) :
		    ring_write(r, fd, buf + ptoa(p), PAGE_SIZE, ptoa(p),
		    (uint64_t)p);
		cr_assert_eq(error, 0, "write %d: %d", p, error);
	}
	cr_assert_eq(ring_inflight(r), NPAGES);
	cr_assert_geq(ring_submit(r), NPAGES);
	reap_all(r, NPAGES, (int)PAGE_SIZE);

	memset(buf, 0, ptoa(NPAGES));
	for (int p = NPAGES - 1; p >= 0; p--) {
		error = (how & RT_NOCACHE) ?
		    ring_read_nocache(r, fd, buf + ptoa(p), PAGE_SIZE,
		    ptoa(p), (uint64_t)p) :
		    ring_read(r, fd, buf + ptoa(p), PAGE_SIZE, ptoa(p),
		    (uint64_t)p);
		cr_assert_eq(error, 0, "read %d: %d", p, error);
	}
	/* no ring_submit: ring_reap with wait submits first */
	reap_all(r, NPAGES, (int)PAGE_SIZE);
	cr_assert_eq(test_pattern_bad(buf, NPAGES, 0, 7), -1,
	    "first bad page");
	ring_destroy(r);
	close(fd);
	munmap(buf, ptoa(NPAGES));
}

Test(uring, create_and_destroy, .timeout = 10)
{
	struct ring *r = test_ring(1), *r2 = test_ring(4096);

	cr_assert_neq(ring_fd(r), ring_fd(r2));
	ring_destroy(r);
	ring_destroy(r2);
	ring_destroy(NULL);
}

Test(uring, create_rejects_bad_depth, .timeout = 10)
{
	const unsigned bad[] = { 0, 3, 6, 100, 8192, 1u << 31 };
	struct ring *r = NULL;

	for (size_t i = 0; i < nitems(bad); i++)
		cr_assert_eq(ring_create(bad[i], &r), -EINVAL, "depth %u",
		    bad[i]);
	cr_assert_null(r);
}

Test(uring, roundtrip_plain, .timeout = 10)
{
	roundtrip(RT_PLAIN, 0);
}

Test(uring, roundtrip_registered_buffers, .timeout = 10)
{
	roundtrip(RT_BUFS, 0);
}

Test(uring, roundtrip_registered_file, .timeout = 10)
{
	roundtrip(RT_FILE, 0);
}

Test(uring, roundtrip_registered_both_direct, .timeout = 10)
{
	roundtrip(RT_BUFS | RT_FILE, O_DIRECT);
}

Test(uring, roundtrip_nocache, .timeout = 10)
{
	roundtrip(RT_NOCACHE, 0);
}

Test(uring, roundtrip_nocache_registered_both, .timeout = 10)
{
	roundtrip(RT_NOCACHE | RT_BUFS | RT_FILE, 0);
}

/* a chain of 3 SQEs fits a ring of depth 1 */
Test(uring, nocache_on_depth_one, .timeout = 10)
{
	struct ring *r = test_ring(1);
	char *buf = pages(1);
	int fd = tmpfile_fd(O_RDWR);

	for (uint64_t gen = 1; gen <= 4; gen++) {
		test_pattern_fill(buf, 1, 0, gen);
		cr_assert_eq(ring_write_nocache(r, fd, buf, PAGE_SIZE, 0, 0),
		    0);
		cr_assert_eq(ring_write_nocache(r, fd, buf, PAGE_SIZE, 0, 1),
		    -EBUSY);
		reap_all(r, 1, (int)PAGE_SIZE);
		memset(buf, 0, PAGE_SIZE);
		cr_assert_eq(ring_read_nocache(r, fd, buf, PAGE_SIZE, 0, 0),
		    0);
		reap_all(r, 1, (int)PAGE_SIZE);
		cr_assert_eq(test_pattern_bad(buf, 1, 0, gen), -1);
	}
	ring_destroy(r);
	close(fd);
}

/* the registered file is used: the fd number alone is not enough */
Test(uring, registered_file_outlives_close, .timeout = 10)
{
	struct ring *r = test_ring(4);
	char *buf = pages(2);
	int fd = tmpfile_fd(O_RDWR);

	test_pattern_fill(buf, 2, 0, 3);
	cr_assert_eq(pwrite(fd, buf, ptoa(2), 0), (ssize_t)ptoa(2));
	cr_assert_eq(ring_register_file(r, fd), 0);
	close(fd);		/* nothing opens in between: same number */
	memset(buf, 0, ptoa(2));
	cr_assert_eq(ring_read(r, fd, buf, ptoa(2), 0, 0), 0);
	reap_all(r, 1, (int)ptoa(2));
	cr_assert_eq(test_pattern_bad(buf, 2, 0, 3), -1);
	ring_destroy(r);
}

/* an I/O partly outside the registered buffer still works (not fixed) */
Test(uring, io_straddling_registered_buffer, .timeout = 10)
{
	struct ring *r = test_ring(4);
	char *buf = pages(4);
	struct iovec iov = { buf, ptoa(2) };
	int fd = tmpfile_fd(O_RDWR);

	cr_assert_eq(ring_register_buffers(r, &iov, 1), 0);
	test_pattern_fill(buf, 4, 0, 5);
	cr_assert_eq(ring_write(r, fd, buf + ptoa(1), ptoa(2), 0, 0), 0);
	cr_assert_eq(ring_write(r, fd, buf, ptoa(2), ptoa(2), 1), 0);
	reap_all(r, 2, (int)ptoa(2));
	memset(buf, 0, ptoa(4));
	cr_assert_eq(ring_read(r, fd, buf, ptoa(4), 0, 0), 0);
	reap_all(r, 1, (int)ptoa(4));
	cr_assert_eq(test_pattern_bad(buf, 2, 1, 5), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(2), 2, 0, 5), -1);
	/* unregister, and register again */
	cr_assert_eq(ring_register_buffers(r, NULL, 0), 0);
	iov.iov_len = ptoa(4);
	cr_assert_eq(ring_register_buffers(r, &iov, 1), 0);
	ring_destroy(r);
	close(fd);
}

Test(uring, registration_refused_while_in_flight, .timeout = 10)
{
	struct ring *r = test_ring(2);
	char *buf = pages(1);
	struct iovec iov = { buf, PAGE_SIZE };
	int fd = tmpfile_fd(O_RDWR);

	cr_assert_eq(ring_write(r, fd, buf, PAGE_SIZE, 0, 0), 0);
	cr_assert_eq(ring_register_file(r, fd), -EBUSY);
	cr_assert_eq(ring_register_buffers(r, &iov, 1), -EBUSY);
	reap_all(r, 1, (int)PAGE_SIZE);
	cr_assert_eq(ring_register_file(r, fd), 0);
	cr_assert_eq(ring_register_buffers(r, &iov, 1), 0);
	cr_assert_eq(ring_register_file(r, -1), -EBADF);
	ring_destroy(r);
	close(fd);
}

Test(uring, many_in_flight_then_busy, .timeout = 10)
{
	const unsigned depth = 64;
	struct ring *r = test_ring(depth);
	char *buf = pages(depth + 1);
	int fd = tmpfile_fd(O_RDWR);

	test_pattern_fill(buf, depth + 1, 0, 9);
	for (unsigned p = 0; p < depth; p++)
		cr_assert_eq(ring_write(r, fd, buf + ptoa(p), PAGE_SIZE,
		    ptoa(p), p), 0, "write %u", p);
	cr_assert_eq(ring_inflight(r), depth);
	cr_assert_eq(ring_write(r, fd, buf + ptoa(depth), PAGE_SIZE,
	    ptoa(depth), depth), -EBUSY);
	cr_assert_eq(ring_read(r, fd, buf, PAGE_SIZE, 0, depth), -EBUSY);
	cr_assert_eq(ring_write_nocache(r, fd, buf, PAGE_SIZE, 0, depth),
	    -EBUSY);
	cr_assert_eq(ring_inflight(r), depth, "-EBUSY queued nothing");
	cr_assert_eq(ring_submit(r), (int)depth);
	cr_assert_eq(ring_write(r, fd, buf, PAGE_SIZE, 0, depth), -EBUSY,
	    "submitted is still in flight");
	reap_all(r, (int)depth, (int)PAGE_SIZE);

	/* all of them landed */
	memset(buf, 0, ptoa(depth));
	cr_assert_eq(pread(fd, buf, ptoa(depth), 0), (ssize_t)ptoa(depth));
	cr_assert_eq(test_pattern_bad(buf, depth, 0, 9), -1);
	/* and the ring takes I/O again */
	cr_assert_eq(ring_read(r, fd, buf, PAGE_SIZE, 0, 0), 0);
	reap_all(r, 1, (int)PAGE_SIZE);
	ring_destroy(r);
	close(fd);
}

static int
readable(struct ring *r, int ms)
{
	struct pollfd pfd = { .fd = ring_fd(r), .events = POLLIN };
	int n = poll(&pfd, 1, ms);

	cr_assert_geq(n, 0);
	return n > 0 && (pfd.revents & POLLIN) != 0;
}

Test(uring, ring_fd_readable_after_completion_not_after_reap, .timeout = 20)
{
	struct ring *r = test_ring(8);
	struct ring_cqe cqe[8];
	char *buf = pages(8);
	int fd = tmpfile_fd(O_RDWR), got = 0, k;

	cr_assert(!readable(r, 0), "readable before any I/O");
	test_pattern_fill(buf, 8, 0, 2);
	for (int p = 0; p < 8; p++)
		cr_assert_eq(ring_write(r, fd, buf + ptoa(p), PAGE_SIZE,
		    ptoa(p), (uint64_t)p), 0);
	cr_assert(!readable(r, 0), "readable before submission");
	cr_assert_eq(ring_submit(r), 8);
	while (got < 8) {
		cr_assert(readable(r, POLL_MS), "completions, fd silent");
		k = ring_reap(r, cqe, 8, false);
		cr_assert_geq(k, 0);
		got += k;
	}
	/*
	 * A completion posted while ring_reap ran may leave one stale
	 * wakeup; the next reap (finding nothing) clears it for good.
	 */
	if (readable(r, 0))
		cr_assert_eq(ring_reap(r, cqe, 8, false), 0);
	cr_assert(!readable(r, 0), "readable after everything was reaped");
	ring_destroy(r);
	close(fd);
}

/*
 * Reaping one at a time: the fd stays readable while CQEs are left.  The
 * reads hit the page cache, so they complete inside ring_submit(): all 8
 * CQEs wait before the first reap drains the eventfd.
 */
Test(uring, ring_fd_readable_while_completions_left, .timeout = 20)
{
	struct ring *r = test_ring(8);
	struct ring_cqe cqe;
	char *buf = pages(8);
	int fd = tmpfile_fd(O_RDWR), got = 0, k;

	test_pattern_fill(buf, 8, 0, 4);
	cr_assert_eq(pwrite(fd, buf, ptoa(8), 0), (ssize_t)ptoa(8));
	memset(buf, 0, ptoa(8));
	for (int p = 0; p < 8; p++)
		cr_assert_eq(ring_read(r, fd, buf + ptoa(p), PAGE_SIZE,
		    ptoa(p), (uint64_t)p), 0);
	cr_assert_eq(ring_submit(r), 8);
	while (got < 8) {
		cr_assert(readable(r, POLL_MS), "%d reaped, %u left, fd "
		    "silent", got, ring_inflight(r));
		k = ring_reap(r, &cqe, 1, false);
		cr_assert_geq(k, 0);
		got += k;
	}
	cr_assert_eq(ring_inflight(r), 0);
	cr_assert_eq(test_pattern_bad(buf, 8, 0, 4), -1);
	ring_destroy(r);
	close(fd);
}

Test(uring, errors_come_back_in_rc_res, .timeout = 10)
{
	struct ring *r = test_ring(4);
	struct ring_cqe cqe;
	char *buf = pages(1);
	int wfd = tmpfile_fd(O_WRONLY), rfd, fd = tmpfile_fd(O_RDWR);
	char path[64];

	/* read on a write-only fd */
	cr_assert_eq(ring_read(r, wfd, buf, PAGE_SIZE, 0, 11), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 1);
	cr_assert_eq(cqe.rc_tag, 11);
	cr_assert_eq(cqe.rc_res, -EBADF, "res %d", cqe.rc_res);

	/* the same through the fixed file */
	cr_assert_eq(ring_register_file(r, wfd), 0);
	cr_assert_eq(ring_read(r, wfd, buf, PAGE_SIZE, 0, 12), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 1);
	cr_assert_eq(cqe.rc_tag, 12);
	cr_assert_eq(cqe.rc_res, -EBADF, "res %d", cqe.rc_res);

	/* a write on a read-only fd, uncached: one completion, its error */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(rfd, 0);
	cr_assert_eq(ring_write_nocache(r, rfd, buf, PAGE_SIZE, 0, 13), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 1);
	cr_assert_eq(cqe.rc_tag, 13);
	cr_assert_eq(cqe.rc_res, -EBADF, "res %d", cqe.rc_res);
	cr_assert_eq(ring_inflight(r), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0,
	    "the cancelled cache drops surfaced");

	/* a read past the end of the file: 0 bytes */
	cr_assert_eq(ring_read(r, fd, buf, PAGE_SIZE, ptoa(100), 14), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 1);
	cr_assert_eq(cqe.rc_tag, 14);
	cr_assert_eq(cqe.rc_res, 0);

	/* a bad fd */
	cr_assert_eq(ring_write(r, 12345, buf, PAGE_SIZE, 0, 15), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 1);
	cr_assert_eq(cqe.rc_res, -EBADF);
	ring_destroy(r);
	close(rfd);
	close(fd);
	close(wfd);
}

Test(uring, reap_with_nothing_in_flight_returns, .timeout = 10)
{
	struct ring *r = test_ring(4);
	struct ring_cqe cqe;

	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, false), 0);
	cr_assert_eq(ring_submit(r), 0);
	ring_destroy(r);
}

/* ---------------------------------------------------------------- */
/* listening: a descriptor's read armed beside the I/O (ring_listen) */

struct late_write {
	int	 fd;
	unsigned ms;
	const char *what;
};

static void *
late_write_main(void *arg)
{
	struct late_write *lw = arg;

	usleep(lw->ms * 1000);
	cr_assert_eq(write(lw->fd, lw->what, strlen(lw->what)),
	    (ssize_t)strlen(lw->what));
	return NULL;
}

/* a non-blocking pipe, as a userfaultfd is opened */
static void
nb_pipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/*
 * The armed read waits for the pipe (nothing is read at once), a wait
 * returns when it completes with nothing of the caller's reaped, and an
 * I/O in flight beside it completes as before.
 */
Test(uring, listen_reads_when_the_fd_turns_readable, .timeout = 20)
{
	struct ring *r = test_ring(4);
	struct ring_cqe cqe;
	struct late_write lw;
	char msg[64] = { 0 }, *buf = pages(1);
	int p[2], fd = tmpfile_fd(O_RDWR);
	pthread_t t;

	nb_pipe(p);
	cr_assert_eq(ring_listen(r, p[0], msg, sizeof(msg), -1), 0);
	cr_assert(ring_listening(r));
	cr_assert_eq(ring_inflight(r), 0, "the armed read counts in flight");
	cr_assert_eq(ring_submit(r), 1);
	cr_assert_eq(ring_reap(r, &cqe, 1, false), 0);
	cr_assert_eq(ring_heard(r), 0, "heard before anything was written");

	/* an I/O beside it completes alone */
	test_pattern_fill(buf, 1, 0, 5);
	cr_assert_eq(ring_write(r, fd, buf, PAGE_SIZE, 0, 21), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 1);
	cr_assert_eq(cqe.rc_tag, 21);
	cr_assert_eq(cqe.rc_res, PAGE_SIZE);
	cr_assert_eq(ring_heard(r), 0);

	/* the wait returns for the listened fd, nothing reaped */
	lw = (struct late_write){ p[1], 50, "three messages" };
	cr_assert_eq(pthread_create(&t, NULL, late_write_main, &lw), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert_eq(ring_heard(r), (ssize_t)strlen(lw.what));
	cr_assert_str_eq(msg, lw.what);
	cr_assert_eq(ring_heard(r), 0, "a result taken twice");
	cr_assert(!ring_listening(r));
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0,
	    "a wait with nothing armed or in flight slept");
	pthread_join(t, NULL);
	ring_destroy(r);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/*
 * A result not yet taken is never overwritten: listening again arms
 * nothing, and a wait returns at once.
 */
Test(uring, listen_keeps_an_untaken_result, .timeout = 20)
{
	struct ring *r = test_ring(4);
	struct ring_cqe cqe;
	char msg[16] = { 0 };
	int p[2];

	nb_pipe(p);
	cr_assert_eq(ring_listen(r, p[0], msg, sizeof(msg) - 1, -1), 0);
	cr_assert_eq(write(p[1], "first", 5), 5);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert_eq(write(p[1], "second", 6), 6);
	cr_assert_eq(ring_listen(r, p[0], msg, sizeof(msg) - 1, -1), 0);
	cr_assert(!ring_listening(r), "armed over an untaken result");
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert_eq(ring_heard(r), 5);
	cr_assert_str_eq(msg, "first");
	cr_assert_eq(ring_listen(r, p[0], msg, sizeof(msg) - 1, -1), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert_eq(ring_heard(r), 6);
	cr_assert_eq(memcmp(msg, "second", 6), 0);
	ring_destroy(r);
	close(p[0]);
	close(p[1]);
}

/*
 * The wake fd ends a wait (one: the next sleeps) and is armed once;
 * unlistening cancels the read, and a message is never lost: either the cancelled read got it
 * (ring_heard) or it is still in the pipe.
 */
Test(uring, listen_wakes_and_unlisten_loses_nothing, .timeout = 20)
{
	struct ring *r = test_ring(4);
	struct ring_cqe cqe;
	struct late_write racer = { -1, 0, "racer" }, late;
	char msg[16] = { 0 }, left[16] = { 0 };
	uint64_t one = 1;
	int p[2], efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ssize_t heard;
	pthread_t t;

	cr_assert_geq(efd, 0);
	nb_pipe(p);
	cr_assert_eq(ring_listen(r, p[0], msg, sizeof(msg) - 1, efd), 0);
	cr_assert_eq(write(efd, &one, sizeof(one)), sizeof(one));
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert(ring_woken(r));
	cr_assert(ring_listening(r), "the read went with the wake");
	cr_assert_eq(ring_heard(r), 0);

	/* the wake ended that wait only: the next one sleeps for data */
	late = (struct late_write){ p[1], 50, "late" };
	cr_assert_eq(pthread_create(&t, NULL, late_write_main, &late), 0);
	cr_assert_eq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert_eq(ring_heard(r), 4, "a later wait returned for the wake");
	cr_assert_str_eq(msg, "late");
	pthread_join(t, NULL);
	cr_assert(ring_woken(r));

	/* cancelled with nothing written: nothing heard (no wake armed
	   again: it fired) */
	cr_assert_eq(ring_listen(r, p[0], msg, sizeof(msg) - 1, efd), 0);
	cr_assert_eq(ring_unlisten(r), 0);
	while (ring_listening(r))
		cr_assert_geq(ring_reap(r, &cqe, 1, true), 0);
	cr_assert_eq(ring_heard(r), 0);

	/* a message racing the cancellation lands on one side only */
	cr_assert_eq(ring_listen(r, p[0], msg, sizeof(msg) - 1, -1), 0);
	cr_assert_eq(ring_submit(r), 1);
	racer.fd = p[1];
	cr_assert_eq(pthread_create(&t, NULL, late_write_main, &racer), 0);
	pthread_join(t, NULL);
	cr_assert_eq(ring_unlisten(r), 0);
	while (ring_listening(r))
		cr_assert_geq(ring_reap(r, &cqe, 1, true), 0);
	heard = ring_heard(r);
	if (heard > 0) {
		cr_assert_eq(heard, 5);
		cr_assert_str_eq(msg, "racer");
		cr_assert_eq(read(p[0], left, sizeof(left)), -1);
	} else {
		cr_assert_eq(heard, 0);
		cr_assert_eq(read(p[0], left, sizeof(left)), 5);
		cr_assert_str_eq(left, "racer");
	}
	ring_destroy(r);
	close(p[0]);
	close(p[1]);
	close(efd);
}
