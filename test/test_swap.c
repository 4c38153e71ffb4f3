/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_swap.c: the swap pager (pager/swap.c) on real files and file
 * systems.
 *
 * Each test makes its own directory under $TMPDIR (else /tmp), and checks
 * it is left as found: an unnamed swap file never shows in the listing,
 * a named one goes with swap_destroy().  Real failures are provoked, not
 * simulated: a 2 MiB tmpfs fills up, ramfs refuses O_DIRECT and
 * fallocate, a forked child allocates beside its parent.  Mounting needs
 * root; without it those tests skip and say so.  Every page written is
 * checked when read back (the harness pattern, keyed by slot number), and
 * swap_check() == 0 after every change to the allocator.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "log.h"
#include "swap.h"
#include "swaphold.h"
#include "uring.h"
#include "vm.h"

#define CHECK(sw)	cr_assert_eq(swap_check(sw), 0, "swap_check")
#define MiB		((uint64_t)1 << 20)
#define GiB		((uint64_t)1 << 30)

/* ---------------------------------------------------------------- */
/* directories and mounts, undone by cleanup() whatever the outcome */

static char made[4][PATH_MAX];	/* directories made, in order */
static bool mounted[4];		/* made[i] is a mount point */
static int nmade;

static void
cleanup(void)
{
	while (nmade > 0) {
		nmade--;
		if (mounted[nmade])
			(void)umount2(made[nmade], MNT_DETACH);
		(void)rmdir(made[nmade]);
	}
}

static const char *
tmpdir(void)
{
	const char *d = getenv("TMPDIR");

	return d != NULL && *d != '\0' ? d : "/tmp";
}

/* a new empty directory under parent */
static const char *
fresh_dir_in(const char *parent)
{
	char *d;

	cr_assert_lt(nmade, (int)nitems(made));
	d = made[nmade];
	snprintf(d, PATH_MAX, "%s/upvm-test-swap.XXXXXX", parent);
	cr_assert_not_null(mkdtemp(d), "mkdtemp in %s: %s", parent,
	    strerror(errno));
	mounted[nmade++] = false;
	return d;
}

static const char *
fresh_dir(void)
{
	return fresh_dir_in(tmpdir());
}

/* a fresh file system of type fstype; skips the test when not root */
static const char *
mount_fs(const char *fstype, const char *opts)
{
	const char *d = fresh_dir();

	if (mount("none", d, fstype, 0, opts) != 0) {
		int error = errno;

		cleanup();
		if (error == EPERM)
			cr_skip_test("mounting %s needs root (mount(2): %s)",
			    fstype, strerror(error));
		cr_assert_fail("mount %s on %s: %s", fstype, d,
		    strerror(error));
	}
	mounted[nmade - 1] = true;
	return d;
}

static int
dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d, "opendir %s", path);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* ---------------------------------------------------------------- */
/* swaps, rings, buffers */

static struct swap *
mkswap(const char *path, uint64_t max, bool nodirect)
{
	struct swap_config sc = { .sc_path = path, .sc_max = max,
	    .sc_nodirect = nodirect };
	struct swap *sw = NULL;
	int error = swap_create(&sc, &sw);

	cr_assert_eq(error, 0, "swap_create(%s): %s", path ? path : "NULL",
	    strerror(-error));
	cr_assert_not_null(sw);
	cr_assert_eq(swap_used(sw), 0);
	CHECK(sw);
	return sw;
}


static char *
pages(size_t n)
{
	void *p = mmap(NULL, ptoa(n), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static uint64_t
alloc(struct swap *sw, int n)
{
	uint64_t slot = 0;
	int error = swap_alloc(sw, n, &slot);

	cr_assert_eq(error, 0, "swap_alloc(%d): %s", n, strerror(-error));
	cr_assert_geq(slot, 1);
	cr_assert_leq(slot + (uint64_t)n - 1, sw->sw_maxslots);
	for (int i = 0; i < n; i++)
		cr_assert_eq(swap_count(sw, slot + (uint64_t)i), 1);
	CHECK(sw);
	return slot;
}

/* an unnamed file: /proc says "(deleted)" */
static void
expect_unnamed(struct swap *sw)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", sw->sw_fd);
	n = readlink(link, target, sizeof(target) - 1);
	cr_assert_gt(n, 0);
	target[n] = '\0';
	cr_assert_not_null(strstr(target, "(deleted)"), "swap file %s has a "
	    "name", target);
}

/* write n pages (generation gen, keyed by slot) then read them back */
static void
sync_roundtrip(struct swap *sw, struct ring *r, uint64_t slot, int n,
    uint64_t gen)
{
	char *buf = pages((size_t)n);

	test_pattern_fill(buf, (size_t)n, slot, gen);
	cr_assert_eq(swap_write_sync(sw, r, slot, buf, n), 0);
	memset(buf, 0, ptoa((size_t)n));
	cr_assert_eq(swap_read_sync(sw, r, slot, buf, n), 0);
	cr_assert_eq(test_pattern_bad(buf, (size_t)n, slot, gen), -1,
	    "first bad page of slot %llu", (unsigned long long)slot);
	munmap(buf, ptoa((size_t)n));
}

/* ---------------------------------------------------------------- */
/* the log, captured in a pipe */

/* ---------------------------------------------------------------- */
/* round trips */

Test(swap, every_page_survives_async_roundtrip, .timeout = 20,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw = mkswap(dir, 0, false);
	struct ring *r = test_ring(8);
	char *buf = pages(64);
	struct iovec iov = { buf, ptoa(64) };
	struct ring_cqe cqe[8];
	uint64_t slot;
	int got, k;

	cr_assert_eq(sw->sw_maxslots, (64 * GiB) / PAGE_SIZE);
	cr_assert_str_eq(sw->sw_where, dir);
	cr_assert_eq(dir_entries(dir), 0, "the swap file shows in %s", dir);
	expect_unnamed(sw);
	cr_assert_eq(ring_register_file(r, sw->sw_fd), 0);
	cr_assert_eq(ring_register_buffers(r, &iov, 1), 0);

	slot = alloc(sw, 64);
	cr_assert_eq(swap_used(sw), 64);
	test_pattern_fill(buf, 64, slot, 1);
	for (int c = 0; c < 8; c++)
		cr_assert_eq(swap_write(sw, r, slot + 8 * (uint64_t)c,
		    buf + ptoa(8 * c), 8, (uint64_t)c), 0);
	cr_assert_eq(ring_submit(r), 8);
	for (got = 0; got < 8; got += k) {
		k = ring_reap(r, cqe, 8, true);
		cr_assert_gt(k, 0);
		for (int i = 0; i < k; i++)
			cr_assert_eq(cqe[i].rc_res, (int)ptoa(8), "tag %llu: "
			    "%d", (unsigned long long)cqe[i].rc_tag,
			    cqe[i].rc_res);
	}

	memset(buf, 0, ptoa(64));
	for (int c = 7; c >= 0; c--)
		cr_assert_eq(swap_read(sw, r, slot + 8 * (uint64_t)c,
		    buf + ptoa(8 * c), 8, (uint64_t)c), 0);
	for (got = 0; got < 8; got += k) {
		k = ring_reap(r, cqe, 8, true);
		cr_assert_gt(k, 0);
		for (int i = 0; i < k; i++)
			cr_assert_eq(cqe[i].rc_res, (int)ptoa(8));
	}
	cr_assert_eq(test_pattern_bad(buf, 64, slot, 1), -1, "first bad page");
	CHECK(sw);

	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0, "swap_destroy left a file");
}

Test(swap, every_page_survives_sync_roundtrip, .timeout = 20,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw = mkswap(dir, 0, false);
	struct ring *r = test_ring(4);
	char *buf = pages(64);
	uint64_t slot = alloc(sw, 64);

	/* all 64 in one transfer; back one page at a time, backwards */
	test_pattern_fill(buf, 64, slot, 2);
	cr_assert_eq(swap_write_sync(sw, r, slot, buf, 64), 0);
	cr_assert_eq(ring_inflight(r), 0);
	memset(buf, 0, ptoa(64));
	for (int p = 63; p >= 0; p--)
		cr_assert_eq(swap_read_sync(sw, r, slot + (uint64_t)p,
		    buf + ptoa(p), 1), 0);
	cr_assert_eq(test_pattern_bad(buf, 64, slot, 2), -1, "first bad page");

	/* overwrite the middle, generation 3 */
	test_pattern_fill(buf, 16, slot + 24, 3);
	cr_assert_eq(swap_write_sync(sw, r, slot + 24, buf, 16), 0);
	memset(buf, 0, ptoa(64));
	cr_assert_eq(swap_read_sync(sw, r, slot, buf, 64), 0);
	cr_assert_eq(test_pattern_bad(buf, 24, slot, 2), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(24), 16, slot + 24, 3), -1);
	cr_assert_eq(test_pattern_bad(buf + ptoa(40), 24, slot + 40, 2), -1);
	CHECK(sw);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/* the pager view: offset slot * PAGE_SIZE is the ring view's slot */
Test(swap, pager_ops_see_the_same_slots, .timeout = 20, .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw = mkswap(dir, MiB, false);
	struct pager *pgr = &sw->sw_pager;
	struct pager_req req = { 0 };
	struct ring *r = test_ring(4);
	char *buf = pages(16);
	uint64_t slot;

	cr_assert_eq(pgr->pgr_ops, &swap_pager_ops);
	cr_assert_str_eq(swap_pager_ops.name, "swap");
	slot = alloc(sw, 16);

	test_pattern_fill(buf, 16, slot, 4);
	req.pr_off = ptoa(slot);
	req.pr_npages = 16;
	req.pr_flags = 0;
	req.pr_buf = buf;
	cr_assert_eq(pager_put(pgr, NULL, &req), 0);
	memset(buf, 0, ptoa(16));
	cr_assert_eq(swap_read_sync(sw, r, slot, buf, 16), 0);
	cr_assert_eq(test_pattern_bad(buf, 16, slot, 4), -1);

	test_pattern_fill(buf, 16, slot, 5);
	cr_assert_eq(swap_write_sync(sw, r, slot, buf, 16), 0);
	memset(buf, 0, ptoa(16));
	cr_assert_eq(pager_get(pgr, NULL, &req), 0);
	cr_assert_eq(req.pr_buf, buf);
	cr_assert_eq(test_pattern_bad(buf, 16, slot, 5), -1);

	/* offset 0 is "no slot"; the last slot is in range, past it not */
	req.pr_off = 0;
	req.pr_npages = 1;
	cr_assert_eq(pager_get(pgr, NULL, &req), -EINVAL);
	cr_assert_eq(pager_put(pgr, NULL, &req), -EINVAL);
	(void)alloc(sw, 256 - 16);
	req.pr_off = ptoa(256);
	test_pattern_fill(buf, 1, 256, 6);
	cr_assert_eq(pager_put(pgr, NULL, &req), 0);
	memset(buf, 0, PAGE_SIZE);
	cr_assert_eq(swap_read_sync(sw, r, 256, buf, 1), 0);
	cr_assert_eq(test_pattern_bad(buf, 1, 256, 6), -1);
	req.pr_off = ptoa(257);
	cr_assert_eq(pager_put(pgr, NULL, &req), -EINVAL);
	req.pr_off = ptoa(256);
	req.pr_npages = 2;
	cr_assert_eq(pager_get(pgr, NULL, &req), -EINVAL);

	/* discard forgets nothing: slots go by swap_free */
	cr_assert_eq(pager_discard(pgr, ptoa(slot), ptoa(slot + 16)), 0);
	cr_assert_eq(swap_count(sw, slot), 1);
	CHECK(sw);

	/* a pager reference keeps the swap past swap_destroy */
	pager_ref(pgr);
	swap_destroy(sw);
	cr_assert_eq(swap_count(sw, slot), 1);
	CHECK(sw);
	ring_destroy(r);
	pager_unref(pgr);
	cr_assert_eq(dir_entries(dir), 0);
}

static void
plug_done(struct pager_req *req)
{
	(*(int *)req->pr_arg)++;
}

/*
 * A plugged queue holds its reads back: nothing completes while it is
 * plugged (the queue's fd stays quiet for 200 ms, where a read takes well
 * under a millisecond), and unplugging hands them over together.  A wait
 * on a plugged queue hands them over first: it must not wait on reads
 * it holds back.  Every page checked.
 */
Test(swap, a_plugged_queue_holds_its_reads_until_unplugged, .timeout = 20,
    .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir(), MiB, false);
	struct pager *pgr = &sw->sw_pager;
	struct pager_queue *q;
	struct pager_req req[4];
	struct pollfd pfd;
	char *buf = pages(16);
	uint64_t slot = alloc(sw, 16);
	struct ring *r = test_ring(4);
	int done = 0;

	test_pattern_fill(buf, 16, slot, 7);
	cr_assert_eq(swap_write_sync(sw, r, slot, buf, 16), 0);
	ring_destroy(r);
	memset(buf, 0, ptoa(16));
	cr_assert_eq(pager_queue_create(pgr, 8, &q), 0);
	for (int round = 0; round < 2; round++) {
		pager_queue_plug(q, true);
		for (int i = 0; i < 4; i++) {
			req[i] = (struct pager_req){ .pr_off = ptoa(slot + 4 *
			    (uint64_t)i), .pr_npages = 4, .pr_buf = buf +
			    ptoa(4 * (size_t)i), .pr_done = plug_done,
			    .pr_arg = &done };
			cr_assert_eq(pager_get(pgr, q, &req[i]), -EINPROGRESS);
		}
		pfd = (struct pollfd){ .fd = pager_queue_fd(q),
		    .events = POLLIN };
		cr_assert_eq(poll(&pfd, 1, 200), 0, "a read went out plugged");
		cr_assert_eq(pager_complete(q, 4, false), 0);
		cr_assert_eq(done, 4 * round);
		if (round == 0)
			pager_queue_plug(q, false);	/* hands them over */
		while (q->pq_inflight > 0)	/* round 1: plugged still */
			cr_assert_geq(pager_complete(q, 4, true), 0);
		cr_assert_eq(done, 4 * (round + 1));
		for (int i = 0; i < 4; i++)
			cr_assert_eq(req[i].pr_error, 0);
		cr_assert_eq(test_pattern_bad(buf, 16, slot, 7), -1);
		memset(buf, 0, ptoa(16));
	}
	pager_queue_plug(q, false);
	pager_queue_destroy(q);
	swap_free(sw, slot, 16);
	CHECK(sw);
	swap_destroy(sw);
}

Test(swap, default_directory_is_tmpdir, .timeout = 10, .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw;

	cr_assert_eq(setenv("TMPDIR", dir, 1), 0);
	sw = mkswap(NULL, MiB, false);
	cr_assert_str_eq(sw->sw_where, dir);
	cr_assert_eq(dir_entries(dir), 0);
	swap_destroy(sw);

	cr_assert_eq(setenv("TMPDIR", "", 1), 0);
	sw = mkswap(NULL, MiB, false);
	cr_assert_str_eq(sw->sw_where, "/var/tmp");
	expect_unnamed(sw);
	swap_destroy(sw);
	cr_assert_eq(unsetenv("TMPDIR"), 0);
	sw = mkswap(NULL, MiB, false);
	cr_assert_str_eq(sw->sw_where, "/var/tmp");
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/* a missing $TMPDIR is an error, not the name of a file to create */
Test(swap, missing_tmpdir_is_not_a_file_name, .timeout = 10,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap_config sc = { .sc_max = MiB };
	struct swap *sw = NULL;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/absent", dir);
	cr_assert_eq(setenv("TMPDIR", path, 1), 0);
	test_log_capture();
	cr_assert_eq(swap_create(&sc, &sw), -ENOENT);
	cr_assert_null(sw);
	test_expect_one_line("TMPDIR absent", path);
	cr_assert_eq(dir_entries(dir), 0, "created a file named $TMPDIR");
}

/* ---------------------------------------------------------------- */
/* the allocator */

Test(swap, runs_are_contiguous_and_reused, .timeout = 10, .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir(), 0, false);
	uint64_t a, b, c, d;

	a = alloc(sw, 16);
	b = alloc(sw, 16);
	cr_assert(b >= a + 16 || b + 16 <= a, "runs overlap");
	cr_assert_eq(swap_used(sw), 32);
	swap_free(sw, a, 16);
	CHECK(sw);
	cr_assert_eq(swap_used(sw), 16);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(swap_count(sw, a + (uint64_t)i), 0);

	c = alloc(sw, 8);
	cr_assert_eq(c, a, "8 slots do not reuse the freed run");
	d = alloc(sw, 32);
	cr_assert(d >= b + 16 || d + 32 <= a, "32 slots overlap: a %llu b "
	    "%llu d %llu", (unsigned long long)a, (unsigned long long)b,
	    (unsigned long long)d);
	cr_assert(d + 32 <= c || d >= c + 8, "32 slots overlap the 8");
	cr_assert_eq(swap_used(sw), 16 + 8 + 32);
	swap_destroy(sw);
}

Test(swap, refcounts_release_on_last_free, .timeout = 10, .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir(), 0, false);
	uint64_t a = alloc(sw, 4), b;

	swap_ref(sw, a, 4);
	CHECK(sw);
	swap_ref(sw, a + 1, 2);
	CHECK(sw);
	cr_assert_eq(swap_count(sw, a), 2);
	cr_assert_eq(swap_count(sw, a + 1), 3);
	cr_assert_eq(swap_count(sw, a + 2), 3);
	cr_assert_eq(swap_count(sw, a + 3), 2);
	swap_free(sw, a, 4);
	CHECK(sw);
	swap_free(sw, a, 4);
	CHECK(sw);
	cr_assert_eq(swap_used(sw), 2, "slots a+1, a+2 still held");
	cr_assert_eq(swap_count(sw, a), 0);
	cr_assert_eq(swap_count(sw, a + 1), 1);
	swap_free(sw, a + 1, 2);
	CHECK(sw);
	cr_assert_eq(swap_used(sw), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(swap_count(sw, a + (uint64_t)i), 0);
	b = alloc(sw, 4);
	cr_assert_eq(b, a, "released slots not reused");
	/* outside the swap: no references */
	cr_assert_eq(swap_count(sw, 0), 0);
	cr_assert_eq(swap_count(sw, sw->sw_maxslots + 1), 0);
	swap_destroy(sw);
}

/* next fit skips a hole too small, and wraps to find one that fits */
Test(swap, next_fit_wraps_once, .timeout = 10, .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir(), ptoa(64), false);
	uint64_t run[6], s;

	cr_assert_eq(sw->sw_maxslots, 64);
	for (int i = 0; i < 6; i++) {
		run[i] = alloc(sw, 10);
		cr_assert_eq(run[i], 1 + 10 * (uint64_t)i);
	}
	swap_free(sw, run[1], 10);		/* hole: slots 11..20 */
	CHECK(sw);
	cr_assert_eq(swap_alloc(sw, 12, &s), -ENOSPC, "no 12 in a row");
	CHECK(sw);
	cr_assert_eq(alloc(sw, 4), 11);		/* 15..20 left */
	cr_assert_eq(alloc(sw, 5), 15);		/* 20 left, and 61..64 */
	cr_assert_eq(alloc(sw, 4), 61);		/* 20 skipped: too small */
	cr_assert_eq(alloc(sw, 1), 20, "no wrap to the hole behind");
	cr_assert_eq(swap_used(sw), 64);
	cr_assert_eq(swap_alloc(sw, 1, &s), -ENOSPC);
	CHECK(sw);
	swap_destroy(sw);
}

Test(swap, cap_of_one_mib_is_256_slots, .timeout = 20, .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir(), MiB, false);
	uint64_t slot = 0, s;
	struct stat st;

	cr_assert_eq(sw->sw_maxslots, 256);
	cr_assert_eq(swap_alloc(sw, 257, &s), -ENOSPC);
	cr_assert_eq(swap_used(sw), 0);
	for (uint64_t i = 1; i <= 256; i++) {
		cr_assert_eq(swap_alloc(sw, 1, &slot), 0, "slot %llu",
		    (unsigned long long)i);
		cr_assert_eq(slot, i);
	}
	CHECK(sw);
	cr_assert_eq(swap_used(sw), 256);
	s = 999;
	cr_assert_eq(swap_alloc(sw, 1, &s), -ENOSPC, "the 257th page");
	cr_assert_eq(s, 999, "*slotp written on failure");
	cr_assert_eq(swap_used(sw), 256, "a failed alloc allocated");
	CHECK(sw);
	/* the file stops at the cap, not at a SWAP_GROW step */
	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, MiB);

	swap_free(sw, 100, 1);
	CHECK(sw);
	cr_assert_eq(swap_alloc(sw, 2, &s), -ENOSPC);
	cr_assert_eq(alloc(sw, 1), 100);
	swap_free(sw, 1, 256);
	CHECK(sw);
	cr_assert_eq(swap_used(sw), 0);
	cr_assert_eq(alloc(sw, 256), 1);
	swap_destroy(sw);
}

Test(swap, alloc_rejects_bad_counts, .timeout = 10, .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir(), ptoa(8), false);
	uint64_t s;

	cr_assert_eq(swap_alloc(sw, 0, &s), -EINVAL);
	cr_assert_eq(swap_alloc(sw, -1, &s), -EINVAL);
	cr_assert_eq(swap_alloc(sw, 9, &s), -ENOSPC);
	cr_assert_eq(swap_used(sw), 0);
	CHECK(sw);
	swap_destroy(sw);
}

Test(swap, file_grows_in_steps, .timeout = 20, .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir(), 0, false);
	struct stat st;
	uint64_t per = SWAP_GROW / PAGE_SIZE, a;

	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert_eq(st.st_size, 0, "the file starts empty");
	a = alloc(sw, 1);
	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, SWAP_GROW);
	cr_assert_geq((uint64_t)st.st_blocks * 512, SWAP_GROW,
	    "fallocate reserved the blocks");
	(void)alloc(sw, (int)per - 1);		/* exactly the first step */
	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, SWAP_GROW);
	(void)alloc(sw, 1);
	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, 2 * SWAP_GROW);
	/* freeing never shrinks it */
	swap_free(sw, a, (int)per);
	CHECK(sw);
	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, 2 * SWAP_GROW);
	swap_destroy(sw);
}

Test(swap, cap_below_a_page_is_refused, .timeout = 10, .fini = cleanup)
{
	struct swap_config sc = { .sc_path = fresh_dir(), .sc_max = 4095 };
	struct swap *sw = NULL;

	test_log_capture();
	cr_assert_eq(swap_create(&sc, &sw), -EINVAL);
	cr_assert_null(sw);
	test_expect_one_line("cap 4095", "UPVM_SWAP_MAX");
	cr_assert_eq(dir_entries(sc.sc_path), 0);
}

#ifdef UPVM_DEBUG_CHECKS
Test(swap, freeing_a_free_slot_asserts, .timeout = 10, .fini = cleanup,
    .signal = SIGABRT)
{
	struct swap *sw = mkswap(fresh_dir(), 0, false);
	uint64_t a = alloc(sw, 2);

	cleanup();		/* abort() skips .fini: rmdir now */
	swap_free(sw, a, 2);
	test_log_capture();			/* keep the expected line quiet */
	swap_free(sw, a + 1, 1);
}
#endif

/* ---------------------------------------------------------------- */
/* file systems */

Test(swap, full_disk_is_enospc_and_keeps_data, .timeout = 30,
    .fini = cleanup)
{
	const char *dir = mount_fs("tmpfs", "size=2m");
	struct swap *sw = mkswap(dir, GiB, false);
	struct ring *r = test_ring(4);
	char *buf = pages(16);
	uint64_t run[64], s = 0, used;
	int nrun = 0, error;

	for (;;) {
		error = swap_alloc(sw, 16, &s);
		if (error != 0)
			break;
		CHECK(sw);
		cr_assert_lt(nrun, 64, "a 2 MiB tmpfs took %d runs", nrun);
		run[nrun++] = s;
		test_pattern_fill(buf, 16, s, 8);
		cr_assert_eq(swap_write_sync(sw, r, s, buf, 16), 0);
	}
	cr_assert_eq(error, -ENOSPC, "alloc %d: %s", nrun, strerror(-error));
	cr_log_info("2 MiB tmpfs: %d runs of 16 pages, then -ENOSPC", nrun);
	used = swap_used(sw);
	cr_assert_eq(used, 16 * (uint64_t)nrun, "the failed alloc kept slots");
	CHECK(sw);
	cr_assert_geq(nrun, 16, "only %d runs of 16 pages on 2 MiB", nrun);
	cr_assert_leq(nrun, 32);
	cr_assert_eq(swap_alloc(sw, 16, &s), -ENOSPC, "still full");
	cr_assert_eq(swap_used(sw), used);

	/* everything written is there */
	for (int i = 0; i < nrun; i++) {
		memset(buf, 0, ptoa(16));
		cr_assert_eq(swap_read_sync(sw, r, run[i], buf, 16), 0);
		cr_assert_eq(test_pattern_bad(buf, 16, run[i], 8), -1,
		    "run %d", i);
	}
	/* room inside the file is used again */
	swap_free(sw, run[3], 16);
	CHECK(sw);
	cr_assert_eq(alloc(sw, 16), run[3]);
	sync_roundtrip(sw, r, run[3], 16, 9);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

Test(swap, direct_io_on_var_tmp, .timeout = 20, .fini = cleanup)
{
	const char *dir = fresh_dir_in("/var/tmp");
	struct swap *sw = mkswap(dir, 0, false);
	struct ring *r = test_ring(8);
	uint64_t a;

	if (!sw->sw_direct) {
		swap_destroy(sw);
		cr_skip_test("%s refuses O_DIRECT", dir);
	}
	cr_assert_neq(fcntl(sw->sw_fd, F_GETFL) & O_DIRECT, 0);
	a = alloc(sw, 64);
	sync_roundtrip(sw, r, a, 64, 10);
	sync_roundtrip(sw, r, a + 63, 1, 11);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

Test(swap, nodirect_is_buffered, .timeout = 20, .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw = mkswap(dir, 0, true);
	struct ring *r = test_ring(8);

	cr_assert(!sw->sw_direct);
	cr_assert_eq(fcntl(sw->sw_fd, F_GETFL) & O_DIRECT, 0);
	sync_roundtrip(sw, r, alloc(sw, 64), 64, 12);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/*
 * tmpfs: buffered with sc_nodirect.  Without it, the outcome depends on
 * the kernel (tmpfs accepts O_DIRECT since 6.6); either must work.
 */
Test(swap, tmpfs_buffered_and_default, .timeout = 20, .fini = cleanup)
{
	const char *dir = mount_fs("tmpfs", "size=64m");
	struct swap *sw = mkswap(dir, 32 * MiB, true);
	struct ring *r = test_ring(8);

	cr_assert(!sw->sw_direct);
	sync_roundtrip(sw, r, alloc(sw, 64), 64, 13);
	swap_destroy(sw);

	sw = mkswap(dir, 32 * MiB, false);
	cr_log_info("tmpfs: sw_direct %d", sw->sw_direct);
	sync_roundtrip(sw, r, alloc(sw, 64), 64, 14);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/* ramfs refuses O_DIRECT and fallocate: buffered, grown by ftruncate */
Test(swap, ramfs_falls_back_to_buffered, .timeout = 20, .fini = cleanup)
{
	const char *dir = mount_fs("ramfs", "");
	struct swap *sw = mkswap(dir, 0, false);
	struct ring *r = test_ring(8);
	struct stat st;
	uint64_t a;

	cr_assert(!sw->sw_direct, "ramfs took O_DIRECT");
	a = alloc(sw, 64);
	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, SWAP_GROW);
	cr_assert_lt((uint64_t)st.st_blocks * 512, SWAP_GROW, "not sparse");
	sync_roundtrip(sw, r, a, 64, 15);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/* buffered: what pager_put wrote does not stay in the page cache */
Test(swap, buffered_put_leaves_no_page_cache, .timeout = 20,
    .fini = cleanup)
{
	struct swap *sw = mkswap(fresh_dir_in("/var/tmp"), 0, true);
	struct pager_req req = { 0 };
	char *buf = pages(32);
	unsigned char vec[32];
	uint64_t a = alloc(sw, 32);
	void *map;
	int resident = 0;

	test_pattern_fill(buf, 32, a, 16);
	req.pr_off = ptoa(a);
	req.pr_npages = 32;
	req.pr_flags = 0;
	req.pr_buf = buf;
	cr_assert_eq(pager_put(&sw->sw_pager, NULL, &req), 0);
	map = mmap(NULL, ptoa(32), PROT_READ, MAP_SHARED, sw->sw_fd,
	    (off_t)ptoa(a - 1));
	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mincore(map, ptoa(32), vec), 0);
	for (int i = 0; i < 32; i++)
		resident += vec[i] & 1;
	cr_assert_eq(resident, 0, "%d of 32 pages stayed in the page cache",
	    resident);
	munmap(map, ptoa(32));
	memset(buf, 0, ptoa(32));
	cr_assert_eq(pager_get(&sw->sw_pager, NULL, &req), 0);
	cr_assert_eq(test_pattern_bad(buf, 32, a, 16), -1);
	swap_destroy(sw);
}

/* ---------------------------------------------------------------- */
/* paths */

Test(swap, missing_directory_fails_with_one_line, .timeout = 10)
{
	struct swap_config sc = { .sc_path = "/nonexistent/dir" };
	struct swap *sw = NULL;
	int error;

	test_log_capture();
	error = swap_create(&sc, &sw);
	cr_assert_eq(error, -ENOENT, "error %d", error);
	cr_assert_null(sw);
	test_expect_one_line("/nonexistent/dir", "/nonexistent/dir");
	cr_assert_not_null(strstr(test_log_last(), "UPVM_SWAP"), "%s",
	    test_log_last());
}

Test(swap, existing_file_is_refused, .timeout = 10, .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap_config sc = { 0 };
	struct swap *sw = NULL;
	char path[PATH_MAX], back[8] = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/mine", dir);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "keep me", 7), 7);
	sc.sc_path = path;
	test_log_capture();
	cr_assert_eq(swap_create(&sc, &sw), -EEXIST);
	cr_assert_null(sw);
	test_expect_one_line("existing file", path);
	cr_assert_eq(pread(fd, back, 7, 0), 7);
	cr_assert_str_eq(back, "keep me");
	close(fd);
	cr_assert_eq(unlink(path), 0);
}

/*
 * A new file's path: the file is made there (the caller's file system,
 * mode 0600) and unlinked at once, so that nothing is ever left behind
 * and the next program given the same path makes its own.
 */
Test(swap, named_file_is_created_and_unlinked_at_once, .timeout = 20,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw, *sw2;
	struct ring *r = test_ring(4);
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/swapfile", dir);
	sw = mkswap(path, 0, false);
	cr_assert_str_eq(sw->sw_where, path);
	cr_assert_eq(fstat(sw->sw_fd, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	cr_assert_eq(st.st_nlink, 0, "the file kept its name");
	cr_assert_eq(dir_entries(dir), 0);
	sw2 = mkswap(path, 0, false);	/* the same path again */
	sync_roundtrip(sw, r, alloc(sw, 8), 8, 17);
	sync_roundtrip(sw2, r, alloc(sw2, 8), 8, 18);
	ring_destroy(r);
	swap_destroy(sw);
	swap_destroy(sw2);
	cr_assert_eq(dir_entries(dir), 0);
}

/* ---------------------------------------------------------------- */
/* fork */

#define FORK_RUNS	200
#define FORK_N		4

struct fork_result {
	int		fr_error;	/* the child's first failure, or 0 */
	int		fr_line;	/* ... at this line */
	uint64_t	fr_slot[FORK_RUNS];
};

#define CHILD_CHECK(e)	do {						\
	if (!(e)) {							\
		res->fr_error = 1;					\
		res->fr_line = __LINE__;				\
		_exit(1);						\
	}								\
} while (0)

/* fork_results: a fork_result the child writes and the parent reads */
static struct fork_result *
fork_results(void)
{
	struct fork_result *res = mmap(NULL, sizeof(*res), PROT_READ |
	    PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(res, MAP_FAILED);
	return res;
}

/* fork_child_ok: child pid exited 0 (else the line it failed at) */
static void
fork_child_ok(pid_t pid, const struct fork_result *res)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child failed at line %d (status %#x)", res->fr_line, status);
}

/*
 * fork_child: allocate FORK_RUNS runs while the parent does too, write
 * each, take a reference on the parent's run, then tear its swap down.
 * No Criterion assertions here: failures go back through res.
 */
static void
fork_child(struct swap *sw, struct fork_result *res, uint64_t parent_run)
{
	struct ring *r;
	char *buf;

	CHILD_CHECK(ring_create(4, &r) == 0);
	buf = mmap(NULL, ptoa(FORK_N), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(buf != MAP_FAILED);
	for (int i = 0; i < FORK_RUNS; i++) {
		CHILD_CHECK(swap_alloc(sw, FORK_N, &res->fr_slot[i]) == 0);
		test_pattern_fill(buf, FORK_N, res->fr_slot[i], 20);
		CHILD_CHECK(swap_write_sync(sw, r, res->fr_slot[i], buf,
		    FORK_N) == 0);
		CHILD_CHECK(swap_check(sw) == 0);
	}
	swap_ref(sw, parent_run, FORK_N);
	CHILD_CHECK(swap_count(sw, parent_run) == 2);
	ring_destroy(r);
	swap_destroy(sw);		/* the child's view only */
	_exit(0);
}

static bool
overlaps(uint64_t a, uint64_t b, uint64_t n)
{
	return a < b + n && b < a + n;
}

Test(swap, fork_shares_bitmap_and_counts, .timeout = 60, .fini = cleanup)
{
	const char *dir = fresh_dir();
	char path[PATH_MAX];
	struct swap *sw;
	struct fork_result *res;
	uint64_t mine[FORK_RUNS], pre;
	struct ring *r;
	char *buf;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/swapfile", dir);
	sw = mkswap(path, 0, false);
	res = fork_results();
	pre = alloc(sw, FORK_N);

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		fork_child(sw, res, pre);

	/* meanwhile, the parent allocates too */
	for (int i = 0; i < FORK_RUNS; i++) {
		cr_assert_eq(swap_alloc(sw, FORK_N, &mine[i]), 0);
		cr_assert_eq(swap_check(sw), 0);
	}
	fork_child_ok(pid, res);
	CHECK(sw);

	/* one bitmap: no two runs overlap, theirs or ours */
	for (int i = 0; i < FORK_RUNS; i++) {
		cr_assert(!overlaps(res->fr_slot[i], pre, FORK_N));
		cr_assert(!overlaps(mine[i], pre, FORK_N));
		for (int j = 0; j < FORK_RUNS; j++) {
			cr_assert(!overlaps(res->fr_slot[i], mine[j], FORK_N),
			    "child run %llu and parent run %llu overlap",
			    (unsigned long long)res->fr_slot[i],
			    (unsigned long long)mine[j]);
			cr_assert(j == i || (!overlaps(res->fr_slot[i],
			    res->fr_slot[j], FORK_N) && !overlaps(mine[i],
			    mine[j], FORK_N)));
		}
	}
	/* one set of counts */
	cr_assert_eq(swap_used(sw), (uint64_t)FORK_N * (2 * FORK_RUNS + 1));
	cr_assert_eq(swap_count(sw, pre), 2, "the child's reference");
	for (int i = 0; i < FORK_RUNS; i++)
		for (int k = 0; k < FORK_N; k++)
			cr_assert_eq(swap_count(sw, res->fr_slot[i] +
			    (uint64_t)k), 1);
	/* and one file: the child's data reads back here */
	r = test_ring(4);
	buf = pages(FORK_N);
	for (int i = 0; i < FORK_RUNS; i++) {
		memset(buf, 0, ptoa(FORK_N));
		cr_assert_eq(swap_read_sync(sw, r, res->fr_slot[i], buf,
		    FORK_N), 0);
		cr_assert_eq(test_pattern_bad(buf, FORK_N, res->fr_slot[i],
		    20), -1, "child run %d", i);
	}
	/* the parent frees what the child held */
	for (int i = 0; i < FORK_RUNS; i++)
		swap_free(sw, res->fr_slot[i], FORK_N);
	swap_free(sw, pre, FORK_N);
	CHECK(sw);
	cr_assert_eq(swap_count(sw, pre), 1);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/*
 * Holders (swaphold.h).  The parent writes a run (pattern generation 30)
 * and takes the child's reference on it before fork, as
 * vmspace_fork_prepare does; the child records it (swap_fork_child,
 * swap_hold), or with `pend` the parent records it in an entry pending
 * for the child (swap_fork_pend) that the child adopts while the parent
 * tells it the child's pid (swap_fork_done: either may come first); the
 * child allocates and writes a run of its own, and then leaves the way
 * the test asks: `how`.
 */
enum hold_exit { HOLD_KILLED, HOLD_EXEC, HOLD_LIVES, HOLD_LEADER_EXITS };

/* proc_state: /proc/PID/stat's state letter, or 0 */
static char
proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (p = strrchr(buf, ')')) != NULL && p[1] == ' ' ? p[2] : 0;
}

/* what a holding child checks once the parent has reaped */
struct hold_args {
	struct swap		*ha_sw;
	struct fork_result	*ha_res;
	struct ring		*ha_ring;
	char			*ha_buf;
	uint64_t		 ha_run;
	int			 ha_gate;
};

static void *
hold_check(void *arg)
{
	struct hold_args *ha = arg;
	struct fork_result *res = ha->ha_res;
	char c;

	CHILD_CHECK(read(ha->ha_gate, &c, 1) == 0);
	memset(ha->ha_buf, 0, ptoa(FORK_N));
	CHILD_CHECK(swap_read_sync(ha->ha_sw, ha->ha_ring, ha->ha_run,
	    ha->ha_buf, FORK_N) == 0);
	CHILD_CHECK(test_pattern_bad(ha->ha_buf, FORK_N, ha->ha_run, 30) ==
	    -1);
	CHILD_CHECK(swap_read_sync(ha->ha_sw, ha->ha_ring, res->fr_slot[0],
	    ha->ha_buf, FORK_N) == 0);
	CHILD_CHECK(test_pattern_bad(ha->ha_buf, FORK_N, res->fr_slot[0],
	    31) == -1);
	_exit(0);
}

static void
hold_child(struct swap *sw, struct fork_result *res, uint64_t parent_run,
    int gate, enum hold_exit how, bool pend)
{
	static struct hold_args ha;
	pthread_t t;
	struct ring *r;
	char *buf;

	CHILD_CHECK(swap_fork_child(sw) == pend);
	if (!pend)
		swap_hold(sw, parent_run, FORK_N);
	CHILD_CHECK(ring_create(4, &r) == 0);
	buf = mmap(NULL, ptoa(FORK_N), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(buf != MAP_FAILED);
	CHILD_CHECK(swap_alloc(sw, FORK_N, &res->fr_slot[0]) == 0);
	test_pattern_fill(buf, FORK_N, res->fr_slot[0], 31);
	CHILD_CHECK(swap_write_sync(sw, r, res->fr_slot[0], buf, FORK_N) == 0);
	CHILD_CHECK(swap_check(sw) == 0);
	res->fr_error = -1;		/* ready */
	switch (how) {
	case HOLD_KILLED:
		for (;;)
			pause();
	case HOLD_EXEC:
		/* another image, same pid, waiting on the gate */
		(void)dup2(gate, 0);
		execl("/bin/sh", "sh", "-c", "read x || :", (char *)NULL);
		_exit(2);
	case HOLD_LIVES:
	case HOLD_LEADER_EXITS:
		/* the parent reaps while we wait; our pages must hold */
		ha = (struct hold_args){ .ha_sw = sw, .ha_res = res,
		    .ha_ring = r, .ha_buf = buf, .ha_run = parent_run,
		    .ha_gate = gate };
		if (how == HOLD_LIVES)
			(void)hold_check(&ha);
		/* the first thread goes: a zombie in /proc, its process
		   alive in the other */
		CHILD_CHECK(pthread_create(&t, NULL, hold_check, &ha) == 0);
		pthread_exit(NULL);
	}
	_exit(3);
}

static void
hold_case(enum hold_exit how, bool pend)
{
	const char *dir = fresh_dir();
	struct fork_result *res;
	struct swap *sw;
	struct ring *r;
	uint64_t pre;
	int gate[2], status;
	char *buf;
	pid_t pid;

	sw = mkswap(dir, 0, false);
	res = fork_results();
	r = test_ring(4);
	buf = pages(FORK_N);
	pre = alloc(sw, FORK_N);
	test_pattern_fill(buf, FORK_N, pre, 30);
	cr_assert_eq(swap_write_sync(sw, r, pre, buf, FORK_N), 0);
	cr_assert_eq(pipe(gate), 0);
	if (pend)
		cr_assert(swap_fork_pend(sw));
	swap_ref(sw, pre, FORK_N);		/* the child's */

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(gate[1]);
		hold_child(sw, res, pre, gate[0], how, pend);
	}
	swap_fork_done(sw, swap_fork_parent(sw), pid);
	close(gate[0]);
	for (int i = 0; i < 1000 && res->fr_error == 0; i++)
		usleep(10000);
	cr_assert_eq(res->fr_error, -1, "child failed at line %d",
	    res->fr_line);
	if (how == HOLD_EXEC) {		/* until it runs the shell */
		for (int i = 0; i < 500 && !test_proc_runs(pid, "sh"); i++)
			usleep(10000);
		cr_assert(test_proc_runs(pid, "sh"), "the child exec'd");
	}
	if (how == HOLD_KILLED) {
		cr_assert_eq(kill(pid, SIGKILL), 0);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
	}
	cr_assert_eq(swap_count(sw, pre), 2);
	cr_assert_eq(swap_count(sw, res->fr_slot[0]), 1);
	CHECK(sw);

	if (how == HOLD_LEADER_EXITS) {
		for (int i = 0; i < 500 && proc_state(pid) != 'Z'; i++)
			usleep(10000);
		cr_assert_eq(proc_state(pid), 'Z', "the first thread exited");
	}
	if (how == HOLD_LIVES || how == HOLD_LEADER_EXITS) {
		cr_assert_eq(swap_reap(sw), 0, "a live child was reaped");
		cr_assert_eq(swap_count(sw, pre), 2);
		cr_assert_eq(swap_count(sw, res->fr_slot[0]), 1);
		close(gate[1]);		/* it checks its pages and exits */
		fork_child_ok(pid, res);
	}
	/* gone (killed, exec'd, exited without swap_destroy): its
	   references come back, once */
	cr_assert_eq(swap_reap(sw), 1);
	cr_assert_eq(swap_reap(sw), 0);
	CHECK(sw);
	cr_assert_eq(swap_count(sw, pre), 1, "the child's reference");
	cr_assert_eq(swap_count(sw, res->fr_slot[0]), 0, "the child's run");
	cr_assert_eq(swap_used(sw), (uint64_t)FORK_N);
	/* and ours is untouched */
	memset(buf, 0, ptoa(FORK_N));
	cr_assert_eq(swap_read_sync(sw, r, pre, buf, FORK_N), 0);
	cr_assert_eq(test_pattern_bad(buf, FORK_N, pre, 30), -1);
	if (how == HOLD_EXEC) {
		close(gate[1]);		/* the shell's read ends */
		fork_child_ok(pid, res);
	} else if (how == HOLD_KILLED) {
		close(gate[1]);
	}
	swap_free(sw, pre, FORK_N);
	cr_assert_eq(swap_used(sw), 0);
	CHECK(sw);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

Test(swap, a_killed_childs_references_are_given_back, .timeout = 60,
    .fini = cleanup)
{
	hold_case(HOLD_KILLED, false);
}

Test(swap, an_exec_gives_back_the_references_of_the_image_it_left,
    .timeout = 60, .fini = cleanup)
{
	hold_case(HOLD_EXEC, false);
}

Test(swap, a_live_child_keeps_its_references_through_a_reap,
    .timeout = 60, .fini = cleanup)
{
	hold_case(HOLD_LIVES, false);
}

/* its first thread gone, its process still alive in another */
Test(swap, a_child_whose_first_thread_exited_keeps_its_references,
    .timeout = 60, .fini = cleanup)
{
	hold_case(HOLD_LEADER_EXITS, false);
}

/* the same, the child's references recorded by its parent before fork */
Test(swap, a_killed_childs_pending_references_are_given_back, .timeout = 60,
    .fini = cleanup)
{
	hold_case(HOLD_KILLED, true);
}

Test(swap, a_live_child_keeps_its_pending_references_through_a_reap,
    .timeout = 60, .fini = cleanup)
{
	hold_case(HOLD_LIVES, true);
}

/*
 * A child killed before its fork handler ran never records anything
 * itself: the references its parent took for it are reaped through the
 * entry pending for it, which the parent gave its pid.
 */
Test(swap, a_child_killed_before_its_fork_handler_is_reaped, .timeout = 60,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw = mkswap(dir, 0, false);
	uint64_t pre = alloc(sw, FORK_N);
	int status;
	pid_t pid;

	cr_assert(swap_fork_pend(sw));
	swap_ref(sw, pre, FORK_N);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		raise(SIGKILL);		/* before any fork handler of ours */
	swap_fork_done(sw, swap_fork_parent(sw), pid);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status));
	cr_assert_eq(swap_count(sw, pre), 2);
	CHECK(sw);
	cr_assert_eq(swap_reap(sw), 1);
	cr_assert_eq(swap_count(sw, pre), 1);
	CHECK(sw);
	swap_free(sw, pre, FORK_N);
	cr_assert_eq(swap_used(sw), 0);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/*
 * A fork that failed: the parent gives back what it took for the child,
 * once; a token kept past that names nothing, even when its entry is
 * pending again for another fork.  (upvm_fork's real failure, a fork
 * refused by the kernel: test_api.)
 */
Test(swap, a_failed_forks_pending_references_go_back_once, .timeout = 60,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct swap *sw = mkswap(dir, 0, false);
	uint64_t pre = alloc(sw, FORK_N), token, again;

	cr_assert_eq(swap_fork_parent(sw), 0, "nothing pending");
	cr_assert(swap_fork_pend(sw));
	swap_ref(sw, pre, FORK_N);
	token = swap_fork_parent(sw);
	cr_assert_neq(token, 0);
	cr_assert_eq(swap_count(sw, pre), 2);
	CHECK(sw);
	swap_fork_done(sw, token, -EAGAIN);
	cr_assert_eq(swap_count(sw, pre), 1);
	CHECK(sw);
	swap_fork_done(sw, token, -EAGAIN);
	cr_assert_eq(swap_count(sw, pre), 1, "given back twice");
	/* the same entry, pending for the next fork */
	cr_assert(swap_fork_pend(sw));
	swap_ref(sw, pre, FORK_N);
	again = swap_fork_parent(sw);
	cr_assert_eq(again % SWAP_HOLDERS, token % SWAP_HOLDERS);
	swap_fork_done(sw, token, -EAGAIN);
	cr_assert_eq(swap_count(sw, pre), 2, "another fork's references");
	swap_fork_done(sw, again, -ENOMEM);
	cr_assert_eq(swap_count(sw, pre), 1);
	CHECK(sw);
	cr_assert_eq(swap_reap(sw), 0);
	swap_free(sw, pre, FORK_N);
	cr_assert_eq(swap_used(sw), 0);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/* put_file: write text to path.  => 0 or -1 (for a child: no asserts) */
static int
put_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * A holder in another pid namespace is never judged: its pid there names
 * no process here (kill says ESRCH), which would read as "gone".  The
 * holder is pid 32700 of a namespace of its own (ns_last_pid set there),
 * holds the parent's run and checks it after the parent reaped.
 */
Test(swap, a_holder_in_another_pid_namespace_is_never_reaped, .timeout = 60,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct fork_result *res;
	struct swap *sw;
	struct ring *r;
	uint64_t pre;
	int gate[2], status;
	char *buf, c;
	pid_t pid, g;

	sw = mkswap(dir, 0, false);
	res = fork_results();
	r = test_ring(4);
	buf = pages(FORK_N);
	pre = alloc(sw, FORK_N);
	test_pattern_fill(buf, FORK_N, pre, 32);
	cr_assert_eq(swap_write_sync(sw, r, pre, buf, FORK_N), 0);
	cr_assert_eq(pipe(gate), 0);
	swap_ref(sw, pre, FORK_N);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(gate[1]);
		if (unshare(CLONE_NEWPID) != 0) {
			res->fr_error = -2;	/* skip: no privilege */
			_exit(0);
		}
		for (int depth = 0; depth < 2; depth++) {
			if ((g = fork()) != 0) {
				CHILD_CHECK(g > 0 &&
				    waitpid(g, &status, 0) == g);
				_exit(WIFEXITED(status) ?
				    WEXITSTATUS(status) : 9);
			}
			/* pid 1 of the namespace: the next pid is 32700 */
			if (depth == 0)
				CHILD_CHECK(put_file(
				    "/proc/sys/kernel/ns_last_pid",
				    "32699") == 0);
		}
		CHILD_CHECK(getpid() == 32700);
		ring_destroy(r);
		swap_fork_child(sw);
		swap_hold(sw, pre, FORK_N);
		CHILD_CHECK(ring_create(4, &r) == 0);
		res->fr_error = -1;
		CHILD_CHECK(read(gate[0], &c, 1) == 0);
		memset(buf, 0, ptoa(FORK_N));
		CHILD_CHECK(swap_read_sync(sw, r, pre, buf, FORK_N) == 0);
		CHILD_CHECK(test_pattern_bad(buf, FORK_N, pre, 32) == -1);
		_exit(0);
	}
	close(gate[0]);
	for (int i = 0; i < 1000 && res->fr_error == 0; i++)
		usleep(10000);
	if (res->fr_error == -2) {
		close(gate[1]);
		(void)waitpid(pid, &status, 0);
		swap_destroy(sw);
		cr_skip_test("unshare(CLONE_NEWPID) needs CAP_SYS_ADMIN");
	}
	cr_assert_eq(res->fr_error, -1, "child failed at line %d",
	    res->fr_line);
	cr_assert_eq(swap_count(sw, pre), 2);
	cr_assert_eq(swap_reap(sw), 0, "a holder of another pid namespace "
	    "was reaped");
	cr_assert_eq(swap_count(sw, pre), 2);
	close(gate[1]);
	fork_child_ok(pid, res);
	/* gone now, but still never judged: its reference stays */
	cr_assert_eq(swap_reap(sw), 0);
	cr_assert_eq(swap_count(sw, pre), 2);
	CHECK(sw);
	swap_free(sw, pre, FORK_N);
	ring_destroy(r);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/*
 * A full swap is first a reap: the slots a gone child held are room.  A
 * cap of two runs; the child holds both (one shared with the parent,
 * which then frees its reference, one of its own) and exits.
 */
Test(swap, a_full_swap_takes_back_what_gone_children_held, .timeout = 60,
    .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct fork_result *res;
	struct swap *sw;
	uint64_t pre, again;
	pid_t pid;

	sw = mkswap(dir, ptoa(2 * FORK_N), false);
	res = fork_results();
	pre = alloc(sw, FORK_N);
	swap_ref(sw, pre, FORK_N);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		swap_fork_child(sw);
		swap_hold(sw, pre, FORK_N);
		CHILD_CHECK(swap_alloc(sw, FORK_N, &res->fr_slot[0]) == 0);
		_exit(0);
	}
	fork_child_ok(pid, res);
	swap_free(sw, pre, FORK_N);
	cr_assert_eq(swap_used(sw), (uint64_t)(2 * FORK_N), "all held");
	cr_assert_eq(swap_alloc(sw, FORK_N, &again), 0,
	    "full of a gone child's slots");
	CHECK(sw);
	cr_assert_eq(swap_used(sw), (uint64_t)FORK_N);
	swap_free(sw, again, FORK_N);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}

/*
 * A process that frees its references and closes the swap leaves no
 * holder; one that closes it still holding some gives them back.
 */
Test(swap, closing_the_swap_gives_back_what_the_process_held,
    .timeout = 60, .fini = cleanup)
{
	const char *dir = fresh_dir();
	struct fork_result *res;
	struct swap *sw;
	uint64_t pre;
	pid_t pid;

	sw = mkswap(dir, 0, false);
	res = fork_results();
	pre = alloc(sw, FORK_N);
	swap_ref(sw, pre, FORK_N);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		swap_fork_child(sw);
		swap_hold(sw, pre, FORK_N);
		CHILD_CHECK(swap_alloc(sw, FORK_N, &res->fr_slot[0]) == 0);
		CHILD_CHECK(swap_check(sw) == 0);
		swap_destroy(sw);
		_exit(0);
	}
	fork_child_ok(pid, res);
	cr_assert_eq(swap_count(sw, pre), 1);
	cr_assert_eq(swap_count(sw, res->fr_slot[0]), 0);
	cr_assert_eq(swap_reap(sw), 0, "nothing left to reap");
	swap_free(sw, pre, FORK_N);
	cr_assert_eq(swap_used(sw), 0);
	CHECK(sw);
	swap_destroy(sw);
	cr_assert_eq(dir_entries(dir), 0);
}
