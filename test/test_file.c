/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_file.c: file-backed regions (upvm_map_file over the vnode pager),
 * end to end under a budget, on real files in $TMPDIR (else /tmp).
 *
 * Every page is checked against the harness pattern keyed by its file
 * page: what the file held (generation 1) or what the test wrote, through
 * eviction (clean drops, write-back, private pages to swap), re-reads,
 * pread of the file after unmap and sync, fork, two regions on one file,
 * threads faulting on the same pages, the end of the file, and I/O
 * errors.  meson runs it under both pageout protocols.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "hostmm.h"
#include "upvm.h"
#include "upvm_int.h"
#include "vm.h"

#define MIB		((size_t)1 << 20)
#define BUDGET		(8 * MIB)
#define NPAGES		(32 * MIB / PAGE_SIZE)	/* 4x the budget */

static char path[256];
static char *pbuf;		/* NPAGES + 1 pages, for pread/pwrite */

static char fullfs[64];		/* a tmpfs mounted by a test, or "" */

static void
cleanup(void)
{
	if (path[0] != '\0')
		(void)unlink(path);
	path[0] = '\0';
	if (fullfs[0] != '\0') {
		(void)umount2(fullfs, MNT_DETACH);
		(void)rmdir(fullfs);
	}
	fullfs[0] = '\0';
}

static void
init_budget(size_t budget)
{
	struct upvm_config cfg;

	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	cfg.budget = budget;
	cr_assert_eq(upvm_init(&cfg), 0);
}

/* a new file of npages pattern pages (generation 1) and `tail` bytes;
   => its fd, read-write */
static int
make_file(size_t npages, size_t tail)
{
	const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	int fd;

	if (pbuf == NULL)
		cr_assert_neq(pbuf = aligned_alloc(PAGE_SIZE,
		    (NPAGES + 1) * PAGE_SIZE), NULL);
	(void)snprintf(path, sizeof(path), "%s/upvm-file-XXXXXX", dir);
	cr_assert_geq(fd = mkstemp(path), 0);
	/* gone from the directory at once: a test killed by its timeout
	   leaves nothing behind (reopen_file opens it again) */
	cr_assert_eq(unlink(path), 0);
	path[0] = '\0';
	test_pattern_fill(pbuf, npages + 1, 0, 1);
	cr_assert_eq(pwrite(fd, pbuf, ptoa(npages) + tail, 0),
	    (ssize_t)(ptoa(npages) + tail));
	return fd;
}

/* reopen_file: the file open on fd, opened again with flags */
static int
reopen_file(int fd, int flags)
{
	char proc[64];

	(void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return open(proc, flags);
}

static char *
map_file(int fd, size_t off, size_t len, int flags)
{
	void *p;

	cr_assert_eq(upvm_map_file(fd, (long long)off, len, flags, &p), 0);
	return p;
}

/* the file's pages [0, n) hold generation gen(pg) */
static void
check_file(int fd, size_t n, uint64_t (*gen)(size_t))
{
	cr_assert_eq(pread(fd, pbuf, ptoa(n), 0), (ssize_t)ptoa(n));
	for (size_t pg = 0; pg < n; pg++)
		cr_assert_eq(test_pattern_bad(pbuf + ptoa(pg), 1, pg,
		    gen(pg)), -1, "file page %zu: generation %lu expected", pg,
		    (unsigned long)gen(pg));
}

static uint64_t gen1(size_t pg) { (void)pg; return 1; }
static uint64_t gen2(size_t pg) { (void)pg; return 2; }
static uint64_t gen_even2(size_t pg) { return pg % 2 == 0 ? 2 : 1; }

/* the region's pages [0, n) hold generation gen(pg) */
static void
check_map(const char *p, size_t n, uint64_t (*gen)(size_t))
{
	for (size_t pg = 0; pg < n; pg++)
		cr_assert_eq(test_pattern_bad(p + ptoa(pg), 1, pg, gen(pg)),
		    -1, "page %zu: generation %lu expected", pg,
		    (unsigned long)gen(pg));
}

/* the budget is a promise: never more than budget + slack resident */
static void
check_peak(void)
{
	test_check_peak(test_stats());
}

Test(file, read_only_pages_come_from_the_file_and_drop_clean,
    .timeout = 120, .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	struct upvm_stats st;
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_PRIVATE | UPVM_MAP_RDONLY);
	close(fd);	/* the vnode has its own descriptor */
	for (int pass = 0; pass < 3; pass++)
		check_map(p, NPAGES, gen1);
	st = test_stats();
	cr_log_info("%lu pages read from the file in %lu reads, %lu dropped "
	    "clean, %lu written", (unsigned long)st.file_reads,
	    (unsigned long)st.pagein_ios, (unsigned long)st.clean_drops,
	    (unsigned long)st.pageouts);
	/* each pass reads again all but what the budget and its slack
	   kept from the last one */
	cr_assert_geq(st.file_reads, 2 * NPAGES,
	    "read again after each eviction (%lu pages read)",
	    (unsigned long)st.file_reads);
	cr_assert_gt(st.clean_drops, 0);
	cr_assert_eq(st.pageouts, 0, "clean pages are never written");
	cr_assert_lt(st.pagein_ios, st.file_reads / 4, "clustered reads");
	check_peak();
	cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0);
	upvm_fini();
}

Test(file, private_writes_page_to_swap_and_never_reach_the_file,
    .timeout = 120, .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	struct upvm_stats st;
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_PRIVATE);
	for (size_t pg = 0; pg < NPAGES; pg += 2)
		test_pattern_fill(p + ptoa(pg), 1, pg, 2);
	for (int pass = 0; pass < 2; pass++)
		check_map(p, NPAGES, gen_even2);
	st = test_stats();
	cr_assert_gt(st.pageouts, 0, "written pages went to swap");
	cr_assert_eq(st.file_writes, 0);
	cr_assert_gt(st.clean_drops, 0, "unwritten ones were dropped");
	check_file(fd, NPAGES, gen1);
	cr_assert_eq(upvm_sync(p, ptoa(NPAGES), UPVM_SYNC_SYNC), 0);
	check_file(fd, NPAGES, gen1);
	/* DONTNEED drops the private copies: the file shows again */
	cr_assert_eq(upvm_advise(p, ptoa(NPAGES), UPVM_ADV_DONTNEED), 0);
	check_map(p, NPAGES, gen1);
	check_peak();
	cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0);
	check_file(fd, NPAGES, gen1);
	upvm_fini();
	close(fd);
}

Test(file, shared_writes_reach_the_file_by_pageout_sync_and_unmap,
    .timeout = 120, .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	struct upvm_stats st;
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_SHARED);
	for (size_t pg = 0; pg < NPAGES; pg++)
		test_pattern_fill(p + ptoa(pg), 1, pg, 2);
	st = test_stats();
	cr_assert_gt(st.file_writes, 0, "pageout wrote to the file");
	cr_assert_eq(st.swap_used_pages, 0, "no swap for shared pages");
	check_map(p, NPAGES, gen2);
	cr_assert_eq(upvm_sync(p, ptoa(NPAGES), UPVM_SYNC_SYNC), 0);
	check_file(fd, NPAGES, gen2);
	/* generation 3 on even pages, then unmap: written back */
	for (size_t pg = 0; pg < NPAGES; pg += 2)
		test_pattern_fill(p + ptoa(pg), 1, pg, 3);
	for (size_t pg = 0; pg < NPAGES; pg++)
		cr_assert_eq(test_pattern_bad(p + ptoa(pg), 1, pg,
		    pg % 2 == 0 ? 3 : 2), -1, "page %zu", pg);
	cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0);
	cr_assert_eq(pread(fd, pbuf, ptoa(NPAGES), 0), (ssize_t)ptoa(NPAGES));
	for (size_t pg = 0; pg < NPAGES; pg++)
		cr_assert_eq(test_pattern_bad(pbuf + ptoa(pg), 1, pg,
		    pg % 2 == 0 ? 3 : 2), -1, "file page %zu", pg);
	check_peak();
	upvm_fini();
	close(fd);
}

/* a sync between writes: only what changed since is written again */
Test(file, sync_writes_only_dirty_pages, .timeout = 120, .fini = cleanup)
{
	int fd = make_file(256, 0);
	uint64_t before;
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(256), UPVM_MAP_SHARED);
	check_map(p, 256, gen1);
	before = test_stats().file_writes;
	cr_assert_eq(upvm_sync(p, ptoa(256), UPVM_SYNC_SYNC), 0);
	cr_assert_eq(test_stats().file_writes, before, "nothing was dirty");
	test_pattern_fill(p + ptoa(10), 3, 10, 2);
	cr_assert_eq(upvm_sync(p, ptoa(256), UPVM_SYNC_ASYNC), 0);
	cr_assert_eq(test_stats().file_writes, before + 3);
	cr_assert_eq(upvm_sync(p, ptoa(256), UPVM_SYNC_SYNC), 0);
	cr_assert_eq(test_stats().file_writes, before + 3, "clean again");
	test_pattern_fill(p + ptoa(10), 1, 10, 3);
	cr_assert_eq(upvm_sync(p, ptoa(256), UPVM_SYNC_SYNC), 0);
	cr_assert_eq(test_stats().file_writes, before + 4, "written again");
	cr_assert_eq(pread(fd, pbuf, ptoa(256), 0), (ssize_t)ptoa(256));
	cr_assert_eq(test_pattern_bad(pbuf + ptoa(10), 1, 10, 3), -1);
	cr_assert_eq(test_pattern_bad(pbuf + ptoa(11), 2, 11, 2), -1);
	cr_assert_eq(test_pattern_bad(pbuf + ptoa(13), 200, 13, 1), -1);
	cr_assert_eq(upvm_unmap(p, ptoa(256)), 0);
	upvm_fini();
	close(fd);
}

/*
 * The end of the file: the last page's bytes past it read zeros and are
 * never written (the size is kept); a page past it raises SIGBUS, until
 * the file grows.
 */
Test(file, end_of_file_follows_mmap, .timeout = 60, .fini = cleanup)
{
	int fd = make_file(4, 100);
	char *p, want[100];
	struct stat sb;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(8), UPVM_MAP_SHARED);
	check_map(p, 4, gen1);
	test_pattern_fill(pbuf, 5, 0, 1);
	memcpy(want, pbuf + ptoa(4), 100);
	cr_assert_eq(memcmp(p + ptoa(4), want, 100), 0);
	cr_assert(test_all_bytes(p + ptoa(4) + 100, 0, PAGE_SIZE - 100));
	cr_assert(test_raises_sigbus(p + ptoa(5)), "past the end: SIGBUS");
	cr_assert(test_raises_sigbus(p + ptoa(7) + 9));
	/* the whole last page written: only its first 100 bytes land */
	memset(p + ptoa(4), 0x5a, PAGE_SIZE);
	cr_assert_eq(upvm_sync(p, ptoa(8), UPVM_SYNC_SYNC), 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq(sb.st_size, (off_t)ptoa(4) + 100, "the size is kept");
	cr_assert_eq(pread(fd, pbuf, PAGE_SIZE, (off_t)ptoa(4)), 100);
	cr_assert(test_all_bytes(pbuf, 0x5a, 100));
	/* grown: page 6 exists now, and reads zeros */
	cr_assert_eq(ftruncate(fd, (off_t)ptoa(7)), 0);
	cr_assert(test_all_bytes(p + ptoa(6), 0, PAGE_SIZE));
	cr_assert(test_raises_sigbus(p + ptoa(7)));
	cr_assert_eq(upvm_unmap(p, ptoa(8)), 0);
	upvm_fini();
	close(fd);
}

/*
 * A file truncated under a region, as the kernel does it: pages past the
 * new end raise SIGBUS, those never read (the size is asked again at each
 * fault) and, through hostmm_truncated (what the preload's ftruncate and
 * truncate call), resident and written ones too, private copies included;
 * the pages before the end keep their data.  Grown again, the file shows
 * zeros there.
 */
Test(file, truncated_file_raises_sigbus_past_the_new_end, .timeout = 60,
    .fini = cleanup)
{
	int fd = make_file(8, 0);
	struct stat sb;
	char *p, *q;

	init_budget(BUDGET);
	cr_assert_eq(fstat(fd, &sb), 0);
	p = map_file(fd, 0, ptoa(8), UPVM_MAP_SHARED);
	q = map_file(fd, 0, ptoa(8), UPVM_MAP_PRIVATE);
	/* pages 0-3 resident, read backwards: no stream, so no readahead
	   reads pages 6 and 7 (resident, they would stay readable) */
	for (size_t pg = 4; pg-- > 0;)
		cr_assert_eq(test_pattern_bad(p + ptoa(pg), 1, pg, 1), -1);
	test_pattern_fill(q + ptoa(3), 1, 3, 2);	/* a private copy */
	/* pages 6 and 7 were never read */
	cr_assert_eq(ftruncate(fd, (off_t)ptoa(6)), 0);
	cr_assert(test_raises_sigbus(p + ptoa(6)), "never read, past the end");
	cr_assert(test_raises_sigbus(q + ptoa(7)));
	cr_assert_eq(test_pattern_bad(p + ptoa(4), 2, 4, 1), -1);
	/* pages 2-5 resident, 3 written in both */
	test_pattern_fill(p + ptoa(3), 1, 3, 3);
	cr_assert_eq(ftruncate(fd, (off_t)ptoa(2)), 0);
	hostmm_truncated(sb.st_dev, sb.st_ino, ptoa(2));
	for (size_t pg = 2; pg < 6; pg++) {
		cr_assert(test_raises_sigbus(p + ptoa(pg)), "page %zu", pg);
		cr_assert(test_raises_sigbus(q + ptoa(pg)), "private %zu", pg);
	}
	check_map(p, 2, gen1);
	check_map(q, 2, gen1);
	cr_assert_eq(ftruncate(fd, (off_t)ptoa(8)), 0);
	cr_assert(test_all_bytes(p + ptoa(3), 0, PAGE_SIZE), "grown: zeros");
	cr_assert_eq(upvm_unmap(p, ptoa(8)), 0);
	cr_assert_eq(upvm_unmap(q, ptoa(8)), 0);
	upvm_fini();
	close(fd);
}

/*
 * Truncated by someone else (no hostmm_truncated: another process) while
 * the region holds written pages past the new end: the write-back asks
 * the size again and never grows the file back with them.
 */
Test(file, write_back_never_regrows_a_truncated_file, .timeout = 60,
    .fini = cleanup)
{
	int fd = make_file(8, 0);
	struct stat sb;
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(8), UPVM_MAP_SHARED);
	for (size_t pg = 0; pg < 8; pg++)
		test_pattern_fill(p + ptoa(pg), 1, pg, 2);
	cr_assert_eq(ftruncate(fd, (off_t)ptoa(2)), 0);
	cr_assert_eq(upvm_sync(p, ptoa(8), UPVM_SYNC_SYNC), 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq(sb.st_size, (off_t)ptoa(2), "the size stays: %lld",
	    (long long)sb.st_size);
	check_file(fd, 2, gen2);
	cr_assert_eq(upvm_unmap(p, ptoa(8)), 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	cr_assert_eq(sb.st_size, (off_t)ptoa(2));
	upvm_fini();
	close(fd);
}

/* two regions on one file, at different offsets, and a third read-only */
Test(file, regions_on_one_file_each_see_it, .timeout = 60, .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	char *a, *b, *c;

	init_budget(BUDGET);
	a = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_PRIVATE);
	b = map_file(fd, ptoa(NPAGES / 2), ptoa(NPAGES / 2), UPVM_MAP_PRIVATE);
	c = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_PRIVATE | UPVM_MAP_RDONLY);
	for (int pass = 0; pass < 2; pass++) {
		check_map(a, NPAGES, gen1);
		cr_assert_eq(test_pattern_bad(b, NPAGES / 2, NPAGES / 2, 1),
		    -1);
		check_map(c, NPAGES, gen1);
	}
	/* private writes stay in their region */
	test_pattern_fill(a, 1, 0, 5);
	check_map(c, 1, gen1);
	cr_assert_eq(upvm_unmap(a, ptoa(NPAGES)), 0);
	cr_assert_eq(upvm_unmap(b, ptoa(NPAGES / 2)), 0);
	cr_assert_eq(upvm_unmap(c, ptoa(NPAGES)), 0);
	check_file(fd, NPAGES, gen1);
	upvm_fini();
	close(fd);
}

/* fork of a private mapping: each side keeps its own writes */
Test(file, fork_of_a_private_mapping, .timeout = 120, .fini = cleanup)
{
	int fd = make_file(NPAGES, 0), status;
	char *p;
	pid_t pid;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_PRIVATE);
	for (size_t pg = 0; pg < NPAGES; pg += 2)
		test_pattern_fill(p + ptoa(pg), 1, pg, 2);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		long bad = -1;

		for (size_t pg = 1; pg < NPAGES && bad < 0; pg += 2)
			test_pattern_fill(p + ptoa(pg), 1, pg, 3);
		for (size_t pg = 0; pg < NPAGES && bad < 0; pg++)
			if (test_pattern_bad(p + ptoa(pg), 1, pg,
			    pg % 2 == 0 ? 2 : 3) != -1)
				bad = (long)pg;
		_exit(bad < 0 ? 0 : 1);
	}
	check_map(p, NPAGES, gen_even2);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the child saw wrong data");
	check_map(p, NPAGES, gen_even2);
	check_file(fd, NPAGES, gen1);
	cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0);
	upvm_fini();
	close(fd);
}

struct reader {
	const char	*p;
	unsigned	 seed;
	long		 bad;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;

	r->bad = -1;
	for (int i = 0; i < 4000 && r->bad < 0; i++) {
		size_t pg = (size_t)rand_r(&r->seed) % NPAGES;

		if (test_pattern_bad(r->p + ptoa(pg), 1, pg, 1) != -1)
			r->bad = (long)pg;
	}
	return NULL;
}

/* threads fault on the same pages at once: each sees the file's data */
Test(file, threads_faulting_on_the_same_pages, .timeout = 120,
    .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	struct reader r[6];
	pthread_t th[6];
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_PRIVATE | UPVM_MAP_RDONLY);
	for (int i = 0; i < 6; i++) {
		r[i] = (struct reader){ .p = p, .seed = (unsigned)(i % 3) };
		pthread_create(&th[i], NULL, reader_main, &r[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(r[i].bad, -1, "thread %d page %ld", i, r[i].bad);
	}
	check_peak();
	cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0);
	upvm_fini();
	close(fd);
}

/*
 * The last region of a file unmapped while its reads (the read-ahead of a
 * stream, which no thread waits for) and its pageout writes are in
 * flight: the file's pager lives until they complete (it was freed under
 * them, and their completions read freed memory), and every page written
 * reaches the file.
 */
Test(file, unmap_with_io_in_flight, .timeout = 120, .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	char *p;

	init_budget(BUDGET);
	for (int round = 0; round < 40; round++) {
		size_t n = 64 + (size_t)round * 197 % (NPAGES / 2);
		int shared = round % 2;

		p = map_file(fd, 0, ptoa(NPAGES), shared ? UPVM_MAP_SHARED :
		    UPVM_MAP_PRIVATE | UPVM_MAP_RDONLY);
		if (shared) {
			/* written past the budget: pageouts to the file */
			test_pattern_fill(p, n + BUDGET / PAGE_SIZE, 0,
			    (uint64_t)round + 2);
		} else {
			/* a stream: its next window is read ahead */
			check_map(p, n, gen1);
		}
		cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0, "round %d", round);
		if (shared) {
			cr_assert_eq(pread(fd, pbuf, ptoa(NPAGES), 0),
			    (ssize_t)ptoa(NPAGES));
			for (size_t pg = 0; pg < n + BUDGET / PAGE_SIZE; pg++) {
				uint64_t g = 0;

				if (test_pattern_bad(pbuf + ptoa(pg), 1, pg,
				    (uint64_t)round + 2) == -1)
					continue;
				while (g < 64 && test_pattern_bad(pbuf +
				    ptoa(pg), 1, pg, g) != -1)
					g++;
				cr_assert_fail("round %d: file page %zu holds "
				    "generation %llu, not %d (64: none)", round,
				    pg, (unsigned long long)g, round + 2);
			}
			/* the rest generation 1 again, for the next rounds */
			test_pattern_fill(pbuf, n + BUDGET / PAGE_SIZE, 0, 1);
			cr_assert_eq(pwrite(fd, pbuf, ptoa(n + BUDGET /
			    PAGE_SIZE), 0), (ssize_t)ptoa(n + BUDGET /
			    PAGE_SIZE));
		}
	}
	check_file(fd, NPAGES, gen1);
	upvm_fini();
	close(fd);
}

/* invalidate: the file changed behind the mapping; the clean pages go */
Test(file, invalidate_rereads_the_file, .timeout = 60, .fini = cleanup)
{
	int fd = make_file(64, 0);
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(64), UPVM_MAP_PRIVATE | UPVM_MAP_RDONLY);
	check_map(p, 64, gen1);
	test_pattern_fill(pbuf, 64, 0, 2);
	cr_assert_eq(pwrite(fd, pbuf, ptoa(64), 0), (ssize_t)ptoa(64));
	cr_assert_eq(upvm_sync(p, ptoa(64), UPVM_SYNC_SYNC |
	    UPVM_SYNC_INVALIDATE), 0);
	check_map(p, 64, gen2);
	cr_assert_eq(upvm_unmap(p, ptoa(64)), 0);
	upvm_fini();
	close(fd);
}

static uint64_t gen_even2_odd3(size_t pg) { return pg % 2 == 0 ? 2 : 3; }

/*
 * invalidate beside writes: of pages read (clean, and never hashed: the
 * move protocol hashes a page only when it may drop it), the ones written
 * since stay, dirty, and reach the file; the others are read again and
 * show what changed in the file behind the mapping
 */
Test(file, invalidate_keeps_the_pages_written_since_they_were_read,
    .timeout = 60, .fini = cleanup)
{
	int fd = make_file(64, 0);
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(64), UPVM_MAP_SHARED);
	check_map(p, 64, gen1);
	for (size_t pg = 0; pg < 64; pg += 2)
		test_pattern_fill(p + ptoa(pg), 1, pg, 2);
	/* the odd pages change in the file, by a write the runtime does not
	   see (the raw system call, as another process's would be) */
	for (size_t pg = 1; pg < 64; pg += 2) {
		test_pattern_fill(pbuf, 1, pg, 3);
		cr_assert_eq(syscall(SYS_pwrite64, fd, pbuf, PAGE_SIZE,
		    (off_t)ptoa(pg)), (long)PAGE_SIZE);
	}
	cr_assert_eq(upvm_sync(p, ptoa(64), UPVM_SYNC_SYNC |
	    UPVM_SYNC_INVALIDATE), 0);
	check_map(p, 64, gen_even2_odd3);
	cr_assert_eq(upvm_unmap(p, ptoa(64)), 0);
	check_file(fd, 64, gen_even2_odd3);
	upvm_fini();
	close(fd);
}

static char *race_map;
static atomic_bool race_stop;
static atomic_int race_rounds;

/* rewrite every page of race_map, round after round: round r writes
   generation r + 1 */
static void *
race_writer(void *arg)
{
	(void)arg;
	for (int r = 1; !atomic_load(&race_stop) || r < 4; r++) {
		for (size_t pg = 0; pg < 64; pg++)
			test_pattern_fill(race_map + ptoa(pg), 1, pg,
			    (uint64_t)r + 1);
		atomic_store(&race_rounds, r);
	}
	return NULL;
}

static uint64_t race_gen(size_t pg)
{
	(void)pg;
	return (uint64_t)atomic_load(&race_rounds) + 1;
}

/*
 * invalidate beside a writer: a page read again after an invalidation
 * is clean and not hashed; a write that lands on it between the sync's
 * scan and the invalidation must keep it (it is hashed, then found
 * written), never drop it as clean.  Every page ends as the writer's
 * last round, in memory and in the file.
 */
Test(file, invalidate_beside_a_writer_loses_no_write, .timeout = 120,
    .fini = cleanup)
{
	int fd = make_file(64, 0);
	pthread_t t;

	init_budget(BUDGET);
	race_map = map_file(fd, 0, ptoa(64), UPVM_MAP_SHARED);
	atomic_store(&race_stop, false);
	atomic_store(&race_rounds, 0);
	cr_assert_eq(pthread_create(&t, NULL, race_writer, NULL), 0);
	for (int i = 0; i < 3000; i++)
		cr_assert_eq(upvm_sync(race_map, ptoa(64), UPVM_SYNC_SYNC |
		    UPVM_SYNC_INVALIDATE), 0);
	atomic_store(&race_stop, true);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_log_info("%d rounds of writes beside 3000 invalidations",
	    atomic_load(&race_rounds));
	check_map(race_map, 64, race_gen);
	cr_assert_eq(upvm_unmap(race_map, ptoa(64)), 0);
	check_file(fd, 64, race_gen);
	upvm_fini();
	close(fd);
}

/* a failed read raises SIGBUS, never zeros; the next read works */
Test(file, read_error_raises_sigbus, .timeout = 60, .fini = cleanup)
{
	int fd = make_file(64, 0);
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(64), UPVM_MAP_PRIVATE | UPVM_MAP_RANDOM);
	cr_assert_eq(upvm_inject_file_failure(p, false, 1), 0);
	cr_assert(test_raises_sigbus(p + ptoa(3)), "lost read: SIGBUS");
	cr_assert(test_raises_sigbus(p + ptoa(3)), "and it stays so");
	cr_assert_geq(test_stats().io_errors, 1);
	cr_assert_eq(test_pattern_bad(p + ptoa(4), 1, 4, 1), -1);
	cr_assert_eq(upvm_unmap(p, ptoa(64)), 0);
	upvm_fini();
	close(fd);
}

/* a failed write-back: -EIO, the pages stay dirty, the next sync works */
Test(file, write_back_error_keeps_pages_dirty, .timeout = 60,
    .fini = cleanup)
{
	int fd = make_file(64, 0);
	char *p;

	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(64), UPVM_MAP_SHARED);
	test_pattern_fill(p, 64, 0, 2);
	cr_assert_eq(upvm_inject_file_failure(p, true, 1), 0);
	test_log_capture();
	cr_assert_eq(upvm_sync(p, ptoa(64), UPVM_SYNC_SYNC), -EIO);
	test_expect_one_line("a failed write-back", "written again");
	check_map(p, 64, gen2);
	cr_assert_eq(upvm_sync(p, ptoa(64), UPVM_SYNC_SYNC), 0);
	check_file(fd, 64, gen2);
	cr_assert_eq(upvm_unmap(p, ptoa(64)), 0);
	upvm_fini();
	close(fd);
}

/* bad arguments: a negative errno and one line each, nothing mapped */
Test(file, bad_arguments_refused_with_one_line, .timeout = 30,
    .fini = cleanup)
{
	int fd = make_file(4, 0), ro = reopen_file(fd, O_RDONLY);
	void *p;

	init_budget(BUDGET);
	test_log_capture();
	cr_assert_eq(upvm_map_file(fd, 0, ptoa(4), 0, &p), -EINVAL);
	test_expect_one_line("no SHARED or PRIVATE", "exactly one");
	cr_assert_eq(upvm_map_file(fd, 0, ptoa(4), UPVM_MAP_SHARED |
	    UPVM_MAP_PRIVATE, &p), -EINVAL);
	test_expect_one_line("both", "exactly one");
	cr_assert_eq(upvm_map_file(fd, 100, ptoa(4), UPVM_MAP_SHARED, &p),
	    -EINVAL);
	test_expect_one_line("unaligned offset", "page aligned");
	cr_assert_eq(upvm_map_file(fd, -4096, ptoa(4), UPVM_MAP_SHARED, &p),
	    -EINVAL);
	test_expect_one_line("negative offset", "offset");
	cr_assert_eq(upvm_map_file(fd, 0, 0, UPVM_MAP_SHARED, &p), -EINVAL);
	test_expect_one_line("length 0", "length 0");
	cr_assert_eq(upvm_map_file(fd, 0, (size_t)1 << 62, UPVM_MAP_SHARED,
	    &p), -EINVAL);
	test_expect_one_line("absurd length", "8 TiB");
	cr_assert_eq(upvm_map_file(-1, 0, ptoa(4), UPVM_MAP_SHARED, &p),
	    -EBADF);
	test_expect_one_line("closed fd", "not open");
	cr_assert_eq(upvm_map_file(ro, 0, ptoa(4), UPVM_MAP_SHARED, &p),
	    -EACCES);
	test_expect_one_line("read-only fd, shared", "read-only");
	cr_assert_eq(upvm_sync(NULL, PAGE_SIZE, UPVM_SYNC_SYNC |
	    UPVM_SYNC_ASYNC), -EINVAL);
	test_expect_one_line("sync and async", "UPVM_SYNC_ASYNC");
	cr_assert_eq(test_stats().regions, 0, "nothing mapped");
	upvm_fini();
	close(fd);
	close(ro);
}

/* ---------------------------------------------------------------- */
/* unmodified programs: hostmm's mmap of files (UPVM_FILES, the preload) */

static void
init_files(void)
{
	struct upvm_config cfg;

	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	cfg.budget = BUDGET;
	cfg.threshold = MIB;
	cfg.files = true;
	cr_assert_eq(upvm_init(&cfg), 0);
	hostmm_enable();
}

static char *
host_map(size_t len, int prot, int flags, int fd, off_t off)
{
	char *p = hostmm_mmap(NULL, len, prot, flags, fd, off);

	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

Test(file, program_file_mappings_are_paged_by_upvm, .timeout = 120,
    .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	uint64_t reads;
	char *s, *q, *small;

	init_files();
	s = host_map(ptoa(NPAGES), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	q = host_map(ptoa(NPAGES), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	/* below the threshold: the kernel's */
	small = host_map(PAGE_SIZE * 4, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_eq(test_stats().regions, 2, "the large two are managed");
	reads = test_stats().file_reads;
	check_map(s, NPAGES, gen1);
	cr_assert_gt(test_stats().file_reads, reads, "read by upvm");
	for (size_t pg = 0; pg < NPAGES; pg++)
		test_pattern_fill(s + ptoa(pg), 1, pg, 2);
	for (size_t pg = 0; pg < NPAGES; pg += 2)
		test_pattern_fill(q + ptoa(pg), 1, pg, 3);
	cr_assert_eq(hostmm_msync(s, ptoa(NPAGES), MS_SYNC), 0);
	check_file(fd, NPAGES, gen2);
	/* the private one: its own pages where written, the file's (as
	   written back meanwhile, or as it was) elsewhere, never the file */
	for (size_t pg = 0; pg < NPAGES; pg += 2)
		cr_assert_eq(test_pattern_bad(q + ptoa(pg), 1, pg, 3), -1);
	check_file(fd, NPAGES, gen2);
	/* DONTNEED keeps a shared file's data: it is in the file */
	test_pattern_fill(s, 8, 0, 4);
	cr_assert_eq(hostmm_madvise(s, ptoa(8), MADV_DONTNEED), 0);
	cr_assert_eq(test_pattern_bad(s, 8, 0, 4), -1);
	/* munmap writes back */
	test_pattern_fill(s + ptoa(100), 1, 100, 5);
	cr_assert_eq(hostmm_munmap(s, ptoa(NPAGES)), 0);
	cr_assert_eq(pread(fd, pbuf, PAGE_SIZE, (off_t)ptoa(100)),
	    (ssize_t)PAGE_SIZE);
	cr_assert_eq(test_pattern_bad(pbuf, 1, 100, 5), -1);
	cr_assert_eq(hostmm_munmap(q, ptoa(NPAGES)), 0);
	cr_assert_eq(hostmm_munmap(small, PAGE_SIZE * 4), 0);
	upvm_fini();
	close(fd);
}

/* mremap of a file mapping: growth maps the file on, a move keeps it */
Test(file, program_mremap_of_a_file_mapping, .timeout = 120,
    .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	char *p;

	init_files();
	p = host_map(ptoa(NPAGES / 2), PROT_READ, MAP_SHARED, fd, 0);
	check_map(p, NPAGES / 2, gen1);
	p = hostmm_mremap(p, ptoa(NPAGES / 2), ptoa(NPAGES), MREMAP_MAYMOVE,
	    NULL);
	cr_assert_neq(p, MAP_FAILED, "mremap: %s", strerror(errno));
	for (int pass = 0; pass < 2; pass++)
		check_map(p, NPAGES, gen1);
	cr_assert_eq(hostmm_munmap(p, ptoa(NPAGES)), 0);
	upvm_fini();
	close(fd);
}

/*
 * The flusher (flusher.h): a program killed with SIGKILL (no exit
 * handler, no msync, nothing evicted: the file fits in the budget) keeps
 * the writes to its shared mapping that a write-back pass reached, as the
 * kernel's page cache would keep them.  The child writes every page, waits
 * for a pass of its 1-second flusher that began after the writes (the
 * second to end), and kills itself; the file must hold every page it
 * wrote.  With flush 0 the file keeps generation 1 (the writes are lost).
 */
Test(file, a_killed_program_keeps_what_the_flusher_wrote, .timeout = 60,
    .fini = cleanup)
{
	const size_t n = 1024;		/* 4 MiB, half the budget */
	int fd = make_file(n, 0), status;
	pid_t pid;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {		/* no cr_assert here: its own exit codes */
		struct upvm_config cfg;
		struct upvm_stats st;
		uint64_t before;
		void *p;

		if (upvm_config_from_env(&cfg) != 0)
			_exit(2);
		cfg.budget = BUDGET;
		cfg.flush_s = 1;
		if (upvm_init(&cfg) != 0 || upvm_map_file(fd, 0, ptoa(n),
		    UPVM_MAP_SHARED, &p) != 0)
			_exit(2);
		test_pattern_fill(p, n, 0, 2);
		if (upvm_stats(&st) != 0 || st.pageouts != 0)
			_exit(3);	/* something was evicted: no test */
		before = st.flushes;
		for (int i = 0; i < 1000 && st.flushes < before + 2; i++) {
			usleep(10000);
			(void)upvm_stats(&st);
		}
		if (st.flushes < before + 2)
			_exit(4);
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "child: status %#x (exit 2: upvm failed, 3: pages were evicted, "
	    "4: no flusher pass in 10 s)", status);
	check_file(fd, n, gen2);
	close(fd);
}

/*
 * The flusher's passes beside writers and pageout: two threads rewrite
 * their halves of a shared mapping four times the budget, generation
 * after generation, while a 1-second flusher writes back and the daemon
 * pages out, until three passes ended during the writes (the writers'
 * last rounds beside the end of the third).  Every page of the region,
 * then of the file after unmap (which writes back only what is dirty),
 * holds its thread's last generation: no pass may mark a page clean that
 * a write changed.
 */
struct rewriter {
	char		*p;
	size_t		 first, n;
	atomic_uint_least64_t gen;	/* the last generation written whole */
	atomic_bool	*stop;
};

/* rounds of generations over the thread's pages; a stop ends the thread
   after the round under way, so every page holds w->gen */
static void *
rewriter_main(void *arg)
{
	struct rewriter *w = arg;

	for (uint64_t gen = 2;; gen++) {
		test_pattern_fill(w->p + ptoa(w->first), w->n, w->first, gen);
		atomic_store(&w->gen, gen);
		if (atomic_load(w->stop))
			return NULL;
	}
}

static uint64_t rewrite_gen[2];
static uint64_t gen_rewritten(size_t pg)
{
	return rewrite_gen[pg < NPAGES / 2 ? 0 : 1];
}

Test(file, flusher_beside_writers_and_pageout_loses_nothing,
    .timeout = 120, .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	struct upvm_config cfg;
	static struct rewriter w[2];
	pthread_t th[2];
	atomic_bool stop = false;
	uint64_t before;
	char *p;

	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	cfg.budget = BUDGET;
	cfg.flush_s = 1;
	cr_assert_eq(upvm_init(&cfg), 0);
	p = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_SHARED);
	before = test_stats().flushes;
	for (int i = 0; i < 2; i++) {
		w[i] = (struct rewriter){ .p = p, .first = i * (NPAGES / 2),
		    .n = NPAGES / 2, .stop = &stop };
		cr_assert_eq(pthread_create(&th[i], NULL, rewriter_main,
		    &w[i]), 0);
	}
	/* until two passes ended during the writes, and then the moment
	   a third ends: the writers' last rounds run beside that pass */
	for (int i = 0; i < 3000 && (test_stats().flushes < before + 2 ||
	    atomic_load(&w[0].gen) < 3 || atomic_load(&w[1].gen) < 3); i++)
		usleep(10000);
	for (uint64_t f = test_stats().flushes, i = 0; i < 300 &&
	    test_stats().flushes == f; i++)
		usleep(10000);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		rewrite_gen[i] = atomic_load(&w[i].gen);
	}
	cr_assert_geq(test_stats().flushes, before + 2, "no flusher pass");
	cr_log_info("flusher beside writers: %llu passes, generations %llu "
	    "and %llu, %llu pages written to the file",
	    (unsigned long long)(test_stats().flushes - before),
	    (unsigned long long)rewrite_gen[0],
	    (unsigned long long)rewrite_gen[1],
	    (unsigned long long)test_stats().file_writes);
	check_map(p, NPAGES, gen_rewritten);
	check_peak();
	cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0);
	check_file(fd, NPAGES, gen_rewritten);
	upvm_fini();
	close(fd);
}

/* at exit, the preload writes shared file regions back */
Test(file, program_exit_writes_back, .timeout = 60, .fini = cleanup)
{
	int fd = make_file(256, 0);
	char *p;

	init_files();
	p = host_map(ptoa(256), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (size_t pg = 0; pg < 256; pg++)
		test_pattern_fill(p + ptoa(pg), 1, pg, 2);
	hostmm_exit_writeback();
	check_file(fd, 256, gen2);
	cr_assert_eq(hostmm_munmap(p, ptoa(256)), 0);
	upvm_fini();
	close(fd);
}

/*
 * A full file system, for real: a shared mapping of a sparse file on a
 * 1 MiB tmpfs, 4 MiB written.  The write-back fails (ENOSPC), upvm_sync
 * and upvm_unmap say so, every page stays (dirty, resident past the budget
 * if it must), and once there is room the next sync writes them all.
 */
Test(file, full_file_system_keeps_the_pages, .timeout = 120,
    .fini = cleanup)
{
	const size_t n = 1024;		/* 4 MiB */
	struct upvm_stats st;
	char *dir = fullfs, *p;
	int fd;

	(void)close(make_file(1, 0));	/* pbuf */
	cleanup();
	(void)snprintf(fullfs, sizeof(fullfs), "%s", "/tmp/upvm-fullfs-XXXXXX");
	cr_assert_neq(mkdtemp(fullfs), NULL);
	/* mounted in a mount namespace of this thread's own (the threads
	   it starts share it): a test killed by its timeout leaves no
	   mount behind, only the empty directory */
	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("none", dir, "tmpfs", 0, "size=1m") != 0) {
		int error = errno;

		rmdir(dir);
		fullfs[0] = '\0';
		if (error == EPERM)
			cr_skip_test("mounting tmpfs needs root: %s",
			    strerror(error));
		cr_assert_fail("mount tmpfs: %s", strerror(error));
	}
	(void)snprintf(path, sizeof(path), "%s/f", dir);
	cr_assert_geq(fd = open(path, O_RDWR | O_CREAT, 0600), 0);
	cr_assert_eq(ftruncate(fd, (off_t)ptoa(n)), 0);
	init_budget(BUDGET);
	p = map_file(fd, 0, ptoa(n), UPVM_MAP_SHARED);
	for (size_t pg = 0; pg < n; pg++)
		test_pattern_fill(p + ptoa(pg), 1, pg, 2);
	test_log_capture();
	cr_assert_eq(upvm_sync(p, ptoa(n), UPVM_SYNC_SYNC), -ENOSPC);
	(void)test_log_read();
	cr_assert_eq(upvm_unmap(p, ptoa(n)), -ENOSPC, "nothing unmapped");
	(void)test_log_read();
	for (int pass = 0; pass < 2; pass++)
		check_map(p, n, gen2);
	st = test_stats();
	cr_assert_gt(st.io_errors, 0);
	/* room again: everything reaches the file */
	cr_assert_eq(mount("none", dir, "tmpfs", MS_REMOUNT, "size=8m"), 0);
	cr_assert_eq(upvm_sync(p, ptoa(n), UPVM_SYNC_SYNC), 0);
	check_file(fd, n, gen2);
	cr_assert_eq(upvm_unmap(p, ptoa(n)), 0);
	upvm_fini();
	close(fd);
}

/*
 * write(2) beside a file region (the preload's read and write family,
 * hostmm_file_io): what a region wrote reaches the file before a write or
 * read of that range; after a write, the regions show it.
 */
static ssize_t
program_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	ssize_t r;

	hostmm_file_io(fd, (uint64_t)off, n, false);
	r = pwrite(fd, buf, n, off);
	if (r > 0)
		hostmm_file_io(fd, (uint64_t)off, (uint64_t)r, true);
	return r;
}

Test(file, program_writes_beside_its_mappings_are_seen, .timeout = 60,
    .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	char *s, *q, *page = aligned_alloc(PAGE_SIZE, PAGE_SIZE);

	init_files();
	s = host_map(ptoa(NPAGES), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	q = host_map(ptoa(NPAGES), PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert(hostmm_file_io_wanted(fd));
	check_map(s, NPAGES, gen1);
	check_map(q, NPAGES, gen1);
	/* clean copies in both regions, then the file changes under them */
	test_pattern_fill(page, 1, 10, 7);
	cr_assert_eq(program_pwrite(fd, page, PAGE_SIZE, (off_t)ptoa(10)),
	    (ssize_t)PAGE_SIZE);
	cr_assert_eq(test_pattern_bad(s + ptoa(10), 1, 10, 7), -1);
	cr_assert_eq(test_pattern_bad(q + ptoa(10), 1, 10, 7), -1);
	/* a region's dirty page, then a write of part of it: both land */
	test_pattern_fill(s + ptoa(20), 1, 20, 8);
	memset(page, 0x5a, 100);
	cr_assert_eq(program_pwrite(fd, page, 100, (off_t)ptoa(20) + 8), 100);
	cr_assert(test_all_bytes(s + ptoa(20) + 8, 0x5a, 100));
	cr_assert_eq(test_pattern_bad(s + ptoa(21), 1, 21, 1), -1);
	test_pattern_fill(page, 1, 20, 8);
	cr_assert_eq(memcmp(s + ptoa(20) + 108, page + 108, PAGE_SIZE - 108),
	    0, "the rest of the region's write survives");
	cr_assert_eq(hostmm_munmap(s, ptoa(NPAGES)), 0);
	cr_assert_eq(hostmm_munmap(q, ptoa(NPAGES)), 0);
	cr_assert_eq(pread(fd, page, PAGE_SIZE, (off_t)ptoa(20)),
	    (ssize_t)PAGE_SIZE);
	cr_assert(test_all_bytes(page + 8, 0x5a, 100));
	free(page);
	upvm_fini();
	close(fd);
}

/*
 * No budget (no uffd-wp: every resident page counts as dirty): a shared
 * read-only mapping of a read-only descriptor is never written back (it
 * cannot hold writes), and reads its file.
 */
Test(file, no_budget_read_only_shared_never_written, .timeout = 60,
    .fini = cleanup)
{
	int fd = make_file(NPAGES, 0), ro = reopen_file(fd, O_RDONLY);
	struct upvm_config cfg;
	char *p;

	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	cfg.budget = 0;
	cfg.threshold = MIB;
	cfg.files = true;
	cr_assert_eq(upvm_init(&cfg), 0);
	hostmm_enable();
	p = host_map(ptoa(NPAGES), PROT_READ, MAP_SHARED, ro, 0);
	check_map(p, NPAGES, gen1);
	test_log_capture();
	hostmm_exit_writeback();
	cr_assert_eq(hostmm_munmap(p, ptoa(NPAGES)), 0);
	test_expect_no_log("no write-back of a read-only mapping");
	cr_assert_eq(test_stats().file_writes, 0);
	upvm_fini();
	close(ro);
	close(fd);
}

/*
 * A sequential reader is read ahead past pages still resident where a
 * window ends (a unit the pageout daemon kept): such a page cuts the
 * stream's read short, and the readahead after it starts past it, not at
 * it (where it found nothing to read, and the next window was read while
 * the reader waited).  Without a budget, so that the resident pages stay.
 */
Test(file, a_stream_reads_ahead_past_resident_pages, .timeout = 60,
    .fini = cleanup)
{
	int fd = make_file(NPAGES, 0);
	struct upvm_stats st0, st;
	char *p;

	init_budget(0);
	p = map_file(fd, 0, ptoa(NPAGES), UPVM_MAP_PRIVATE | UPVM_MAP_RDONLY);
	close(fd);
	/* the last page of every 512, each read alone (no two near) */
	for (size_t pg = 511; pg < NPAGES; pg += 512)
		cr_assert_eq(test_pattern_bad(p + ptoa(pg), 1, pg, 1), -1);
	st0 = test_stats();
	cr_assert_eq(st0.file_reads, NPAGES / 512, "one page each (%lu read)",
	    (unsigned long)st0.file_reads);
	check_map(p, NPAGES, gen1);
	st = test_stats();
	cr_log_info("%lu pages read ahead of %lu, in %lu faults",
	    (unsigned long)(st.pages_prefetched - st0.pages_prefetched),
	    (unsigned long)(st.file_reads - st0.file_reads),
	    (unsigned long)(st.faults - st0.faults));
	cr_assert_eq(st.file_reads - st0.file_reads, NPAGES - NPAGES / 512,
	    "every other page read once");
	/* where every window lands before the reader gets there (a fast
	   disk, one fault thread), the reader's fault past it is the only
	   sign of the stream and reads the next window while it waits, the
	   one after ahead: about half the pages (47 % in the 6.1 guest);
	   stopped at each resident page, as before the fix, none */
	cr_assert_geq(st.pages_prefetched - st0.pages_prefetched, NPAGES / 4,
	    "pages read ahead of the reader");
	cr_assert_eq(upvm_unmap(p, ptoa(NPAGES)), 0);
	upvm_fini();
}
