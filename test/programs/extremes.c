/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * extremes.c: an ordinary program (it knows nothing of upvm) that pushes
 * one dimension of memory use to an extreme and checks every page it
 * wrote.  extremes.sh runs it under `upvm run` with a small budget.
 *
 * usage: extremes maps N      N mappings of 64 KiB alive at once, one
 *                             page of each written; half of them unmapped
 *                             and mapped again (allocator churn)
 *        extremes threads N   N threads fault at once on one region
 *                             (4 MiB each), then check each other's
 *        extremes sparse GIB  a GIB-GiB mapping, one page written every
 *                             64 MiB, read back, written again
 *        extremes forks N     N forks, each after 64 MiB of the heap
 *                             (malloc) was written again, so that under
 *                             a small budget the allocator's own cold
 *                             metadata is paged out when fork() locks it;
 *                             each child checks the heap and allocates
 *        extremes threadforks N  N threads in turn fork as their first
 *                             act, never having allocated (the allocator
 *                             sets the thread up inside fork's handlers:
 *                             a new arena, mapped then), each child
 *                             checks 32 MiB written before; then the
 *                             main thread forks once more
 * Exit 0 and "extremes: OK ..." when every page held.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pattern.h"

#define MIB	(1UL << 20)

static void
fail(const char *what, size_t page)
{
	printf("extremes: FAILED: %s: page %zu is wrong\n", what, page);
	exit(1);
}

/* the process's mappings (VMAs) now, for the messages */
static int
nvmas(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int c, n = 0;

	if (f == NULL)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void *
map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		printf("extremes: mmap of %zu bytes: %m (%d VMAs)\n", len,
		    nvmas());
		exit(2);
	}
	return p;
}

static int
maps(size_t n)
{
	const size_t len = 64 * 1024;
	char **m = calloc(n, sizeof(*m));
	int vmas;

	if (m == NULL)
		return printf("extremes: out of memory\n"), 2;
	for (size_t i = 0; i < n; i++)
		pattern_fill_page(m[i] = map(len), i, 1);
	for (size_t i = 0; i < n; i += 2) {
		if (munmap(m[i], len) != 0)
			return printf("extremes: munmap: %m\n"), 2;
		pattern_fill_page(m[i] = map(len), i, 2);
	}
	for (size_t i = 0; i < n; i++)
		if (!pattern_page_ok(m[i], i, i % 2 == 0 ? 2 : 1))
			fail("maps", i);
	vmas = nvmas();
	for (size_t i = 0; i < n; i++)
		(void)munmap(m[i], len);
	free(m);
	printf("extremes: OK: %zu mappings alive at once, %zu remapped (%d "
	    "VMAs)\n", n, (n + 1) / 2, vmas);
	return 0;
}

struct slice {
	char		*base;
	size_t		 t, n, npages;
	pthread_barrier_t *bar;
	size_t		 bad;
};

static void *
slice_run(void *arg)
{
	struct slice *s = arg;
	size_t first = s->t * s->npages, other;

	pthread_barrier_wait(s->bar);
	for (size_t p = first; p < first + s->npages; p++)
		pattern_fill_page(s->base + p * PG, p, 1);
	pthread_barrier_wait(s->bar);
	other = (s->t + 1) % s->n * s->npages;
	for (size_t p = other; p < other + s->npages; p++)
		if (!pattern_page_ok(s->base + p * PG, p, 1) && s->bad == SIZE_MAX)
			s->bad = p;
	return NULL;
}

static int
threads(size_t n)
{
	size_t npages = 4 * MIB / PG;
	pthread_barrier_t bar;
	pthread_t *th = calloc(n, sizeof(*th));
	struct slice *s = calloc(n, sizeof(*s));
	char *base = map(n * npages * PG);

	if (th == NULL || s == NULL)
		return printf("extremes: out of memory\n"), 2;
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	for (size_t t = 0; t < n; t++) {
		s[t] = (struct slice){ base, t, n, npages, &bar, SIZE_MAX };
		if (pthread_create(&th[t], NULL, slice_run, &s[t]) != 0)
			return printf("extremes: pthread_create: %m\n"), 2;
	}
	for (size_t t = 0; t < n; t++) {
		pthread_join(th[t], NULL);
		if (s[t].bad != SIZE_MAX)
			fail("threads", s[t].bad);
	}
	for (size_t p = 0; p < n * npages; p++)
		if (!pattern_page_ok(base + p * PG, p, 1))
			fail("threads, at the end", p);
	printf("extremes: OK: %zu threads faulted at once on %zu MiB\n", n,
	    n * npages * PG / MIB);
	return 0;
}

static int
sparse(size_t gib)
{
	size_t len = gib << 30, step = 64 * MIB, n = len / step;
	char *p = map(len);

	for (uint64_t gen = 1; gen <= 2; gen++) {
		for (size_t i = 0; i < n; i++)
			pattern_fill_page(p + i * step, i, gen);
		pattern_fill_page(p + len - PG, n, gen);
		for (size_t i = 0; i < n; i++)
			if (!pattern_page_ok(p + i * step, i, gen))
				fail("sparse", i * step / PG);
		if (!pattern_page_ok(p + len - PG, n, gen))
			fail("sparse, the last page", len / PG - 1);
	}
	if (munmap(p, len) != 0)
		return printf("extremes: munmap: %m\n"), 2;
	printf("extremes: OK: %zu GiB mapped, %zu pages written twice\n", gib,
	    n + 1);
	return 0;
}

/* a thread's allocation: jemalloc gives threads arenas of their own,
   whose metadata goes cold when the thread is gone */
static void *
alloc_once(void *arg)
{
	char *x = malloc(64 * 1024);

	(void)arg;
	if (x != NULL)
		memset(x, 1, 64 * 1024);
	free(x);
	return NULL;
}

static int
forks(size_t n)
{
	const size_t nblk = 64, blk = MIB;
	pthread_t th[8];
	char *b[64];
	int status;
	pid_t pid;

	for (int t = 0; t < 8; t++)
		if (pthread_create(&th[t], NULL, alloc_once, NULL) != 0)
			return printf("extremes: pthread_create: %m\n"), 2;
	for (int t = 0; t < 8; t++)
		pthread_join(th[t], NULL);
	for (size_t k = 0; k < nblk; k++)
		if ((b[k] = malloc(blk)) == NULL)
			return printf("extremes: out of memory\n"), 2;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < nblk; k++)
			for (size_t p = 0; p < blk / PG; p++)
				pattern_fill_page(b[k] + p * PG, k * 256 + p, i + 1);
		fflush(stdout);
		if ((pid = fork()) < 0)
			return printf("extremes: fork: %m\n"), 2;
		if (pid == 0) {
			char *x = malloc(blk);

			for (size_t k = 0; k < nblk; k++)
				for (size_t p = 0; p < blk / PG; p++)
					if (!pattern_page_ok(b[k] + p * PG, k * 256 + p,
					    i + 1))
						_exit(1);
			if (x == NULL)
				_exit(2);
			pattern_fill_page(x, 0, 1);
			free(x);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			fail("forks: a child", i);
	}
	for (size_t k = 0; k < nblk; k++)
		free(b[k]);
	printf("extremes: OK: %zu forks of a 64 MiB heap\n", n);
	return 0;
}

static char *tf_mem;		/* threadforks: the region the children check */
static size_t tf_pages;

/* fork_check: fork; the child checks tf_mem; false if it did not */
static bool
fork_check(void)
{
	int status;
	pid_t pid;

	if ((pid = fork()) < 0)
		return false;
	if (pid == 0) {
		for (size_t p = 0; p < tf_pages; p++)
			if (!pattern_page_ok(tf_mem + p * PG, p, 3))
				_exit(1);
		_exit(0);
	}
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0;
}

static void *
fork_first(void *arg)
{
	*(bool *)arg = fork_check();
	return NULL;
}

static int
threadforks(size_t n)
{
	pthread_t th;
	bool ok;

	tf_pages = 32 * MIB / PG;
	tf_mem = mmap(NULL, tf_pages * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tf_mem == MAP_FAILED)
		return printf("extremes: mmap: %m\n"), 2;
	for (size_t p = 0; p < tf_pages; p++)
		pattern_fill_page(tf_mem + p * PG, p, 3);
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		ok = false;
		if (pthread_create(&th, NULL, fork_first, &ok) != 0)
			return printf("extremes: pthread_create: %m\n"), 2;
		pthread_join(th, NULL);
		if (!ok)
			fail("threadforks: a child of a new thread", i);
	}
	if (!fork_check())
		fail("threadforks: a child of the main thread", n);
	printf("extremes: OK: %zu threads forked first thing, then main; "
	    "every child read 32 MiB right\n", n);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;

	if (argc == 3 && n > 0 && strcmp(argv[1], "maps") == 0)
		return maps(n);
	if (argc == 3 && n > 0 && strcmp(argv[1], "threads") == 0)
		return threads(n);
	if (argc == 3 && n > 0 && strcmp(argv[1], "sparse") == 0)
		return sparse(n);
	if (argc == 3 && n > 0 && strcmp(argv[1], "forks") == 0)
		return forks(n);
	if (argc == 3 && n > 0 && strcmp(argv[1], "threadforks") == 0)
		return threadforks(n);
	fprintf(stderr, "usage: extremes maps|threads|sparse|forks|"
	    "threadforks N\n");
	return 2;
}
