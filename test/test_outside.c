/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_outside.c: another process reading and writing managed memory, as
 * debuggers, checkpointers and profilers do (peek.c, spawned): the kernel
 * copies to and from our pages on its side (process_vm_readv/writev,
 * /proc/PID/mem, PTRACE_PEEKDATA), and a page that is paged out faults to
 * upvm's fault threads like our own access would.  Every page checked,
 * resident and paged out, except where the kernel itself refuses: its
 * access_remote_vm (/proc/PID/mem, PTRACE_PEEKDATA) may not wait for a
 * userfaultfd handler and answers EIO for a page that is not there.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "upvm.h"
#include "upvm_int.h"
#include "vm.h"

#define MIB		((size_t)1 << 20)
#define BUDGET		(8 * MIB)
#define NPAGES		(32 * MIB / PAGE_SIZE)	/* 4x the budget */

extern char **environ;

static char *region;
static char *buf;		/* NPAGES, malloc'd: not managed */
static char path[256];		/* peek's input file, or "" */
static size_t peek_got;		/* bytes the last peek read */

static void
setup(void)
{
	struct upvm_config cfg;
	void *p;

	/* root may trace anyone; others need this under Yama */
	(void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	cfg.budget = BUDGET;
	cr_assert_eq(upvm_init(&cfg), 0);
	cr_assert_eq(upvm_map(ptoa(NPAGES), 0, &p), 0);
	region = p;
	cr_assert_neq(buf = malloc(ptoa(NPAGES)), NULL);
	test_pattern_fill(region, NPAGES, 0, 1);
}

static void
teardown(void)
{
	if (path[0] != '\0')
		(void)unlink(path);
	path[0] = '\0';
}

/* peek MODE over pages [first, first + n) of the region: its stdout into
   buf (read modes) or file `in` written into the region (write modes);
   => peek's exit status: 0 done, 3 EIO (see peek.c) */
static int
peek(const char *mode, size_t first, size_t n, const char *in)
{
	char pid[32], addr[32], np[32], exe[512];
	char *argv[] = { exe, pid, addr, np, (char *)mode, (char *)in, NULL };
	posix_spawn_file_actions_t fa;
	size_t got = 0;
	ssize_t r;
	pid_t child;
	int fds[2], status;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(addr, sizeof(addr), "%#lx",
	    (unsigned long)(region + ptoa(first)));
	snprintf(np, sizeof(np), "%zu", n);
	/* peek sits next to this binary */
	cr_assert_gt(r = readlink("/proc/self/exe", exe, sizeof(exe) - 8), 0);
	exe[r] = '\0';
	strcpy(strrchr(exe, '/') + 1, "peek");
	cr_assert_eq(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	cr_assert_eq(posix_spawn(&child, exe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while ((r = read(fds[0], buf + got, ptoa(n) - got)) > 0 ||
	    (r < 0 && errno == EINTR))
		got += r > 0 ? (size_t)r : 0;
	close(fds[0]);
	peek_got = got;
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
	    WEXITSTATUS(status) == 3), "peek %s failed (status %#x)", mode,
	    status);
	if (WEXITSTATUS(status) == 0 && (strstr(mode, "-read") != NULL ||
	    strcmp(mode, "ptrace") == 0))
		cr_assert_eq(got, ptoa(n), "peek %s gave %zu bytes", mode, got);
	return WEXITSTATUS(status);
}

static void
check_peeked(const char *mode, size_t first, size_t n, uint64_t gen)
{
	long bad = test_pattern_bad(buf, n, first, gen);

	cr_assert_eq(bad, -1, "%s: page %ld read from outside holds the "
	    "wrong data", mode, bad + (long)first);
}

/*
 * process_vm_readv reads every page, paged out or not; /proc/PID/mem and
 * PTRACE_PEEKDATA read resident pages, and answer EIO for a page that is
 * not there (paged out, or never touched), never wrong data: the kernel's
 * access_remote_vm may not wait for a userfaultfd handler.
 */
Test(outside, readers_see_every_page, .init = setup, .fini = teardown,
    .timeout = 120)
{
	struct upvm_stats st0 = test_stats(), st;
	void *fresh;
	int rc;

	/* most of the region is paged out: the reads page it in */
	cr_assert_eq(peek("vm-read", 0, NPAGES, NULL), 0);
	check_peeked("process_vm_readv", 0, NPAGES, 1);
	st = test_stats();
	cr_assert_gt(st.pageins, st0.pageins, "the reader paged pages in");
	/* resident pages: every way works (a debugger stopping this thread
	   alone; the fault threads run on) */
	cr_assert_eq(test_pattern_bad(region, 64, 0, 1), -1);
	cr_assert_eq(peek("mem-read", 0, 64, NULL), 0);
	check_peeked("/proc/PID/mem", 0, 64, 1);
	cr_assert_eq(peek("ptrace", 0, 64, NULL), 0);
	check_peeked("PTRACE_PEEKDATA", 0, 64, 1);
	/* pages paged out since: the data, or EIO, or the data up to the
	   first page not there (clean-clone CI under ASan read short once) */
	rc = peek("mem-read", NPAGES / 4, NPAGES / 4, NULL);
	check_peeked("/proc/PID/mem", NPAGES / 4, rc == 0 ? NPAGES / 4 :
	    peek_got / PAGE_SIZE, 1);
	cr_log_info("/proc/PID/mem over a quarter of the region paged out: "
	    "%s, %zu pages read", rc == 0 ? "read (it was resident)" :
	    "stopped at a page not there", peek_got / PAGE_SIZE);
	/* a page never touched: EIO (natively, zeros) */
	cr_assert_eq(upvm_map(ptoa(16), 0, &fresh), 0);
	region = fresh;
	cr_assert_eq(peek("mem-read", 0, 16, NULL), 3);
	cr_assert_eq(peek("vm-read", 0, 16, NULL), 0);
	cr_assert_eq(test_zero_bad(buf, 16), -1);
	test_check_peak(test_stats());
}

/* process_vm_writev writes every page; /proc/PID/mem resident ones */
Test(outside, writers_reach_every_page, .init = setup, .fini = teardown,
    .timeout = 120)
{
	const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	const size_t hot = NPAGES / 2, nhot = 64;
	int fd;

	snprintf(path, sizeof(path), "%s/upvm-peek-XXXXXX", dir);
	cr_assert_geq(fd = mkstemp(path), 0);
	/* generation 2 over the first half by process_vm_writev */
	test_pattern_fill(buf, NPAGES / 2, 0, 2);
	cr_assert_eq(pwrite(fd, buf, ptoa(NPAGES / 2), 0),
	    (ssize_t)ptoa(NPAGES / 2));
	cr_assert_eq(peek("vm-write", 0, NPAGES / 2, path), 0);
	/* generation 3 over resident pages by /proc/PID/mem */
	cr_assert_eq(test_pattern_bad(region + ptoa(hot), nhot, hot, 1), -1);
	test_pattern_fill(buf, nhot, hot, 3);
	cr_assert_eq(pwrite(fd, buf, ptoa(nhot), 0), (ssize_t)ptoa(nhot));
	close(fd);
	cr_assert_eq(peek("mem-write", hot, nhot, path), 0);
	/* both writers' pages, through eviction and back */
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(test_pattern_bad(region, NPAGES / 2, 0, 2), -1,
		    "pass %d", pass);
		cr_assert_eq(test_pattern_bad(region + ptoa(hot), nhot, hot,
		    3), -1, "pass %d", pass);
		cr_assert_eq(test_pattern_bad(region + ptoa(hot + nhot),
		    NPAGES - hot - nhot, hot + nhot, 1), -1, "pass %d", pass);
	}
	test_check_peak(test_stats());
}

/* /proc/PID/smaps and numa_maps read whole while pages are paged out */
Test(outside, smaps_and_numa_maps_stay_readable, .init = setup,
    .fini = teardown, .timeout = 60)
{
	const char *files[] = { "/proc/self/smaps", "/proc/self/numa_maps" };
	char line[512], want[32];

	snprintf(want, sizeof(want), "%lx-", (unsigned long)region);
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		bool found = false;

		if (f == NULL && errno == ENOENT)
			continue;	/* no numa_maps without CONFIG_NUMA */
		cr_assert_neq(f, NULL, "%s: %s", files[i], strerror(errno));
		while (fgets(line, sizeof(line), f) != NULL)
			found |= strncmp(line, want, strlen(want)) == 0 ||
			    strncmp(line, want, strlen(want) - 1) == 0;
		fclose(f);
		cr_assert(found, "%s lists the region", files[i]);
	}
	cr_assert_eq(test_pattern_bad(region, NPAGES, 0, 1), -1);
}
