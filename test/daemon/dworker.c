/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dworker.c: an ordinary program (it knows nothing of upvm or upvmd) for
 * the daemon tests: it maps a region, writes every page, optionally forks
 * workers that inherit it, and each process then passes over its region
 * again and again, in order or at random, checking every page it reads
 * against the pattern (page index, generation) before writing the next
 * generation; after --idle seconds of sleep it checks everything once
 * more.  Prints one line per process; exits 0 only if every page held.
 *
 * usage: dworker --mib N [--seconds S] [--random] [--idle S]
 *                [--forks K] [--touch-only]
 *   --touch-only: write the region once, then only the idle and the check
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../programs/pattern.h"

static size_t npages;
static uint8_t *gens;		/* each page's generation (outside the region:
				   small, the heap) */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
check(const char *base, size_t p)
{
	if (!pattern_page_ok(base + p * PG, p, gens[p])) {
		printf("dworker %d: FAILED: page %zu (at %p) does not hold "
		    "generation %u\n", (int)getpid(), p, (void *)(base + p *
		    PG), gens[p]);
		fflush(stdout);
		_exit(1);
	}
}

static void
step(char *base, size_t p)
{
	check(base, p);
	gens[p] = (uint8_t)(gens[p] % 250 + 1);
	pattern_fill_page(base + p * PG, p, gens[p]);
}

int
main(int argc, char **argv)
{
	double seconds = 0, idle = 0, t0;
	bool random = false, touch_only = false;
	uint64_t seed, passes = 0, checked = 0;
	int forks = 0, failed = 0, status;
	size_t mib = 0;
	char *base;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--random") == 0)
			random = true;
		else if (strcmp(a, "--touch-only") == 0)
			touch_only = true;
		else if (v != NULL && strcmp(a, "--mib") == 0 && ++i)
			mib = strtoul(v, NULL, 10);
		else if (v != NULL && strcmp(a, "--seconds") == 0 && ++i)
			seconds = atof(v);
		else if (v != NULL && strcmp(a, "--idle") == 0 && ++i)
			idle = atof(v);
		else if (v != NULL && strcmp(a, "--forks") == 0 && ++i)
			forks = atoi(v);
		else {
			fprintf(stderr, "usage: dworker --mib N [--seconds S] "
			    "[--random] [--idle S] [--forks K] "
			    "[--touch-only]\n");
			return 2;
		}
	}
	if (mib == 0)
		mib = 64;
	npages = mib << 20 >> 12;
	base = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	gens = calloc(npages, 1);
	if (base == MAP_FAILED || gens == NULL) {
		perror("dworker: mmap");
		return 1;
	}
	for (size_t p = 0; p < npages; p++) {
		gens[p] = 1;
		pattern_fill_page(base + p * PG, p, 1);
	}
	/* the workers inherit the region and its generations */
	for (int k = 0; k < forks; k++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("dworker: fork");
			return 1;
		}
		if (pid == 0) {
			forks = 0;
			break;
		}
	}
	seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL | 1;
	t0 = now();
	while (!touch_only && now() - t0 < seconds) {
		for (size_t k = 0; k < npages; k++) {
			size_t p = random ? rnd(&seed) % npages : k;

			step(base, p);
			checked++;
			if (random && (k & 255) == 0 && now() - t0 >= seconds)
				break;
		}
		passes++;
	}
	if (idle > 0)
		usleep((useconds_t)(idle * 1e6));
	for (size_t p = 0; p < npages; p++)
		check(base, p);
	checked += npages;
	printf("dworker %d: OK: %zu pages, %llu checked in %llu passes%s\n",
	    (int)getpid(), npages, (unsigned long long)checked,
	    (unsigned long long)passes, random ? " (random)" : "");
	fflush(stdout);
	while (forks > 0 && wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	return failed == 0 ? 0 : 1;
}
