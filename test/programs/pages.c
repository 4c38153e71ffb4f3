/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pages.c: an ordinary multi-threaded program (it knows nothing of upvm)
 * that checks every page it wrote across threads, the heap, fork, mremap,
 * munmap, madvise and the kernel's own copies (pipes, files, O_DIRECT).
 * run_programs.sh runs it natively and under `upvm run` with a budget a
 * quarter of its footprint.  Exit 0 and "pages: OK" when every page held.
 *
 * usage: pages [MiB]   (region size, default 128)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pattern.h"

#define NTHREADS	4

static size_t npages;		/* of region A */

static void
fill(char *base, size_t first, size_t n, uint64_t gen)
{
	for (size_t p = first; p < first + n; p++)
		pattern_fill_page(base + p * PG, p, gen);
}

/* the first bad page in [first, first + n), or -1; gen 0: zeros */
static long
bad(const char *base, size_t first, size_t n, uint64_t gen)
{
	for (size_t p = first; p < first + n; p++)
		if (!pattern_page_ok(base + p * PG, p, gen))
			return (long)p;
	return -1;
}

static void
check(const char *what, long b)
{
	if (b != -1) {
		printf("pages: FAILED: %s: page %ld is wrong\n", what, b);
		exit(1);
	}
}

struct slice {
	char	*base;
	size_t	 t;
	uint64_t gen;
};

/* threads fill interleaved 64-page stripes, then check the others' */
static void *
stripe_fill(void *arg)
{
	struct slice *s = arg;

	for (size_t p = s->t * 64; p < npages; p += NTHREADS * 64)
		fill(s->base, p, p + 64 <= npages ? 64 : npages - p, s->gen);
	return NULL;
}

static void *
stripe_check(void *arg)
{
	struct slice *s = arg;
	size_t first = ((s->t + 1) % NTHREADS) * 64;

	for (size_t p = first; p < npages; p += NTHREADS * 64)
		if (bad(s->base, p, p + 64 <= npages ? 64 : npages - p,
		    s->gen) != -1)
			return (void *)1;
	return NULL;
}

static void
threads(void *(*fn)(void *), char *base, uint64_t gen)
{
	pthread_t th[NTHREADS];
	struct slice s[NTHREADS];
	void *r;

	for (size_t t = 0; t < NTHREADS; t++) {
		s[t] = (struct slice){ base, t, gen };
		pthread_create(&th[t], NULL, fn, &s[t]);
	}
	for (size_t t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], &r);
		if (r != NULL)
			check("threads", 0);
	}
}

int
main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 128;
	size_t nheap = mib / 4, h;
	char *a, *b, *m, **heap, path[256];
	int fds[2], fd, status;
	pid_t pid;

	npages = mib * (1 << 20) / PG;
	/* region A, filled and checked by threads */
	a = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return perror("mmap"), 2;
	threads(stripe_fill, a, 1);
	threads(stripe_check, a, 1);
	check("A after threads", bad(a, 0, npages, 1));

	/* the heap: 1 MiB blocks, half freed and allocated again */
	heap = calloc(nheap, sizeof(*heap));
	for (h = 0; h < nheap; h++) {
		heap[h] = malloc(1 << 20);
		fill(heap[h], 0, 256, 100 + h);
	}
	for (h = 0; h < nheap; h += 2) {
		free(heap[h]);
		heap[h] = malloc(1 << 20);
		fill(heap[h], 0, 256, 200 + h);
	}
	for (h = 0; h < nheap; h++)
		check("heap", bad(heap[h], 0, 256, (h % 2 ? 100 : 200) + h));

	/* fork: each side rewrites its half, both see their own pages */
	fflush(stdout);
	if ((pid = fork()) == 0) {
		check("child: A", bad(a, 0, npages, 1));
		fill(a, 0, npages / 2, 2);
		check("child: A first half", bad(a, 0, npages / 2, 2));
		check("child: A second half", bad(a, npages / 2, npages / 2,
		    1));
		for (h = 0; h < nheap; h++)
			check("child: heap", bad(heap[h], 0, 256,
			    (h % 2 ? 100 : 200) + h));
		_exit(0);
	}
	fill(a, npages / 2, npages / 2, 3);
	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		check("the child", 0);
	check("parent: A first half", bad(a, 0, npages / 2, 1));
	check("parent: A second half", bad(a, npages / 2, npages / 2, 3));

	/* system(), posix_spawn and vfork + exec start programs under upvm */
	if (system("exit 7") != 7 << 8)
		check("system()", 0);
	{
		char *args[] = { "true", NULL };
		extern char **environ;

		if (posix_spawnp(&pid, "true", NULL, NULL, args, environ) != 0 ||
		    waitpid(pid, &status, 0) != pid || status != 0)
			check("posix_spawn", 0);
		if ((pid = vfork()) == 0) {
			execlp("true", "true", (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
			check("vfork + exec", 0);
	}
	check("A after spawning", bad(a, 0, npages / 2, 1));

	/* mremap: grow a quarter-size region, moving it */
	m = mmap(NULL, npages / 4 * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(m, 0, npages / 4, 4);
	m = mremap(m, npages / 4 * PG, npages / 2 * PG, MREMAP_MAYMOVE);
	if (m == MAP_FAILED)
		return perror("mremap"), 2;
	check("mremap: old part", bad(m, 0, npages / 4, 4));
	check("mremap: new part", bad(m, npages / 4, npages / 4, 0));
	fill(m, npages / 4, npages / 4, 5);

	/* munmap a hole in A; madvise away another part */
	munmap(a + npages / 8 * PG, npages / 8 * PG);
	madvise(a + npages / 4 * PG, npages / 8 * PG, MADV_DONTNEED);
	check("A after DONTNEED", bad(a, npages / 4, npages / 8, 0));
	fill(a, npages / 4, npages / 8, 6);

	/* the kernel copies: a pipe from A into B, a file through O_DIRECT */
	b = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pipe(fds) != 0)
		return perror("pipe"), 2;
	for (size_t p = 0; p < npages / 8; p += 16) {
		if (write(fds[1], a + p * PG, 16 * PG) != (ssize_t)(16 * PG) ||
		    read(fds[0], b + p * PG, 16 * PG) != (ssize_t)(16 * PG))
			return perror("pipe I/O"), 2;
	}
	check("B from the pipe", bad(b, 0, npages / 8, 1));
	snprintf(path, sizeof(path), "%s/pages.%d", getenv("TMPDIR") != NULL ?
	    getenv("TMPDIR") : "/var/tmp", (int)getpid());
	/* (an O_DIRECT open a file system refuses may still create it) */
	if ((fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600)) < 0 &&
	    (fd = open(path, O_RDWR | O_CREAT, 0600)) < 0)
		return perror(path), 2;
	unlink(path);
	if (pwrite(fd, a + npages / 2 * PG, npages / 4 * PG, 0) !=
	    (ssize_t)(npages / 4 * PG) || pread(fd, b + npages / 2 * PG,
	    npages / 4 * PG, 0) != (ssize_t)(npages / 4 * PG))
		return perror("file I/O"), 2;
	close(fd);
	check("B from the file", bad(b, npages / 2, npages / 4, 3));

	/* everything, twice */
	for (int pass = 0; pass < 2; pass++) {
		check("A, first eighth", bad(a, 0, npages / 8, 1));
		check("A, DONTNEED part", bad(a, npages / 4, npages / 8, 6));
		check("A, rest of first half", bad(a, 3 * npages / 8,
		    npages / 8, 1));
		check("A, second half", bad(a, npages / 2, npages / 2, 3));
		check("mremap", bad(m, 0, npages / 4, 4));
		check("mremap grown", bad(m, npages / 4, npages / 4, 5));
		for (h = 0; h < nheap; h++)
			check("heap", bad(heap[h], 0, 256,
			    (h % 2 ? 100 : 200) + h));
	}
	printf("pages: OK (%zu MiB region, %zu MiB heap, %d threads, fork, "
	    "system, posix_spawn, vfork, mremap, munmap, madvise, pipe, "
	    "file)\n", mib, nheap, NTHREADS);
	return 0;
}
