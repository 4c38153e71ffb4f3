/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * filewrite.c: an ordinary program (it knows nothing of upvm) that writes
 * a file with pwrite(2) while it reads the file through a read-only
 * shared mapping, and grows both as sqlite3 does (ftruncate, mremap,
 * pwrite of the new page).  Every word of every page read through the
 * mapping must hold what the last pwrite of that page stored.  Under
 * `upvm run --files` the mapping is upvm's: this is the case of the write
 * family beside a file region (hostmm_file_io), which once let stale
 * pages be written back over pwrite's data.  files.sh runs it on both
 * pageout protocols and without a budget.
 *
 * usage: filewrite FILE NPAGES ITERATIONS SEED
 * Exit 0 and "filewrite: OK ..." when every page read held; 1 with the
 * iteration, page and words on a mismatch; 2 on a failed system call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG		4096UL
#define WORDS		(PG / 8)
#define GROW_MAX	4096	/* pages the file may grow by */
#define RUN_MAX		8	/* pages per pwrite */
#define READ_MAX	64	/* pages per stretch read */

static int		 fd;
static uint32_t		*gen;	/* per page: the generation the file holds */
static uint64_t		 buf[RUN_MAX * WORDS];

static void __attribute__((noreturn))
die(const char *what)
{
	perror(what);
	exit(2);
}

/* pwrite pages [p, p + n) with their generations */
static void
write_pages(size_t p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		for (size_t w = 0; w < WORDS; w++)
			buf[k * WORDS + w] = (uint64_t)(p + k) << 32 | gen[p + k];
	if (pwrite(fd, buf, n * PG, (off_t)(p * PG)) != (ssize_t)(n * PG))
		die("pwrite");
}

/* page p read through the mapping holds its generation, or exit 1 */
static void
check_page(const char *m, size_t p, size_t iter)
{
	const uint64_t *q = (const uint64_t *)(m + p * PG);
	uint64_t want = (uint64_t)p << 32 | gen[p];
	size_t w = 0;

	while (w < WORDS && q[w] == want)
		w++;
	if (w == WORDS)
		return;
	if (pread(fd, buf, PG, (off_t)(p * PG)) != (ssize_t)PG)
		die("pread");
	fprintf(stderr, "filewrite: iteration %zu, page %zu word %zu: the "
	    "mapping holds %#llx, pwrite stored %#llx, the file holds %#llx\n",
	    iter, p, w, (unsigned long long)q[w], (unsigned long long)want,
	    (unsigned long long)buf[w]);
	exit(1);
}

int
main(int argc, char **argv)
{
	size_t np, iters, cap, grown = 0, written = 0, read = 0;
	const char *m;

	if (argc != 5) {
		fprintf(stderr, "usage: filewrite FILE NPAGES ITERATIONS "
		    "SEED\n");
		return 2;
	}
	np = strtoul(argv[2], NULL, 0);
	iters = strtoul(argv[3], NULL, 0);
	srandom((unsigned)strtoul(argv[4], NULL, 0));
	if (np == 0 || np > (1UL << 24)) {
		fprintf(stderr, "filewrite: NPAGES is 1 to 2^24\n");
		return 2;
	}
	cap = np + GROW_MAX;
	if ((gen = calloc(cap, sizeof(*gen))) == NULL)
		die("calloc");
	if ((fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
		die(argv[1]);
	for (size_t p = 0; p < np; p += RUN_MAX)
		write_pages(p, p + RUN_MAX <= np ? RUN_MAX : np - p);
	m = mmap(NULL, np * PG, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < iters; i++) {
		size_t p = (size_t)random() % np, n;
		int op = (int)(random() % 4);

		if (random() % 64 == 0 && np < cap) {
			/* grow by a page: ftruncate, mremap, pwrite */
			if (ftruncate(fd, (off_t)((np + 1) * PG)) != 0)
				die("ftruncate");
			m = mremap((void *)(uintptr_t)m, np * PG, (np + 1) * PG,
			    MREMAP_MAYMOVE);
			if (m == MAP_FAILED)
				die("mremap");
			if (random() % 2 &&
			    ((const uint64_t *)(m + np * PG))[7] != 0) {
				fprintf(stderr, "filewrite: iteration %zu: the "
				    "page the file grew by is not zeros\n", i);
				return 1;
			}
			gen[np] = 1;
			write_pages(np, 1);
			np++;
			grown++;
		} else if (op == 0) {
			n = 1 + (size_t)random() % RUN_MAX;
			n = p + n > np ? np - p : n;
			for (size_t k = 0; k < n; k++)
				gen[p + k]++;
			write_pages(p, n);
			written += n;
		} else {
			n = 1 + (size_t)random() % READ_MAX;
			n = p + n > np ? np - p : n;
			for (size_t k = 0; k < n; k++)
				check_page(m, p + k, i);
			read += n;
		}
	}
	printf("filewrite: OK %zu iterations: %zu pages written, %zu read "
	    "and checked, grown by %zu pages\n", iters, written, read, grown);
	return 0;
}
